/* SPDX-License-Identifier: Apache-2.0 */
/* weir-dataplane: the store and processor roles, plus `validate` for pipeline
 * specs. Thin: everything it calls lives in dp_core / weir_common. */
#include "dp_config.h"
#include "dp_proc.h"
#include "dp_store.h"
#include "wc_log.h"
#include "wc_spec.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* Exit codes follow sysexits: 64 usage, 65 bad input, 78 configuration. */
enum { EXIT_USAGE = 64, EXIT_DATAERR = 65, EXIT_CONFIG = 78 };

static int cmd_validate(int argc, char **argv)
{
    if (argc != 3) {
        fputs(dp_config_usage, stderr);
        return EXIT_USAGE;
    }
    return wc_spec_validate_cli(argv[2], stdout, stderr);
}

/* Maps the process configuration onto the store's. */
static void store_config(const dp_config_t *c, dp_store_config_t *s)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    dp_store_config_defaults(s);
    s->data_dir = c->data_dir;
    s->advertised_host = c->advertised_host;
    s->pod_name = c->pod_name;
    s->port = c->kafka_port;
    s->http_port = c->http_port;
    s->workers = c->workers > 0 ? c->workers : (cpus > 0 ? (int)cpus : 1);
    s->replica_index = c->replica_index; /* dp_store_start checks it against replicas */
    s->replicas = c->replicas;
    if (c->segment_bytes > 0)
        s->log.segment_bytes = (uint64_t)c->segment_bytes;
    if (c->retention_ms != 0)
        s->log.retention_ms = c->retention_ms;
    if (c->retention_bytes != 0)
        s->log.retention_bytes = c->retention_bytes;
    if (c->default_partitions > 0)
        s->default_partitions = c->default_partitions;
    if (c->auto_create >= 0)
        s->auto_create_topics = c->auto_create != 0;
    if (c->memory_mb > 0)
        s->worker_memory_bytes = (size_t)c->memory_mb << 20;
    s->sqpoll = c->sqpoll != 0;
    if (c->flush == DP_CONFIG_FLUSH_INTERVAL) {
        s->log.flush = DP_LOG_FLUSH_INTERVAL;
        s->log.flush_interval_ms = (uint32_t)c->flush_value;
    } else if (c->flush == DP_CONFIG_FLUSH_BYTES) {
        s->log.flush = DP_LOG_FLUSH_BYTES;
        s->log.flush_bytes = (uint64_t)c->flush_value;
    }
}

/* Runs the store until SIGTERM or SIGINT, then stops it cleanly. */
static int run_store(const dp_config_t *c)
{
    dp_store_config_t sc;
    dp_store_t *st;
    sigset_t set;
    char err[512];
    int sig = 0, rc;

    store_config(c, &sc);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by every thread */
    rc = dp_store_start(&st, &sc, err, sizeof(err));
    if (rc != 0) {
        wc_log(WC_LOG_ERROR, "store", "start failed", "{s:s}", "error", err);
        return rc == -EBADMSG ? EXIT_DATAERR : 1;
    }
    wc_log(WC_LOG_INFO, "store", "listening", "{s:i, s:i, s:i, s:s, s:i, s:i}", "port",
           dp_store_port(st), "http_port", sc.http_port, "workers", sc.workers, "data_dir",
           sc.data_dir, "replica", sc.replica_index, "replicas", sc.replicas);
    sigwait(&set, &sig);
    wc_log(WC_LOG_INFO, "store", "stopping", "{s:i}", "signal", sig);
    rc = dp_store_stop(st);
    wc_log(rc == 0 ? WC_LOG_INFO : WC_LOG_ERROR, "store", "stopped", "{s:i}", "result", rc);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    dp_config_t cfg;
    char err[512];
    int rc;

    wc_log_init_from_env();
    if (argc >= 2 && strcmp(argv[1], "validate") == 0)
        return cmd_validate(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("weir-dataplane %s (pipeline spec v%d)\n", WEIR_VERSION, WC_SPEC_VERSION);
        return 0;
    }

    dp_config_defaults(&cfg);
    rc = dp_config_apply_env(&cfg, environ, err, sizeof(err));
    if (rc == 0)
        rc = dp_config_apply_args(&cfg, argc, argv, err, sizeof(err));
    if (rc == 1) {
        fputs(dp_config_usage, stdout);
        return 0;
    }
    if (rc != 0) {
        wc_log(WC_LOG_ERROR, "dataplane", "bad configuration", "{s:s}", "error", err);
        return EXIT_USAGE;
    }

    switch (cfg.role) {
    case DP_ROLE_STORE:
        return run_store(&cfg);
    case DP_ROLE_PROCESSOR: {
        dp_proc_config_t pc;

        if (cfg.spec_path == NULL) {
            wc_log(WC_LOG_ERROR, "dataplane", "the processor role needs --spec or WEIR_SPEC", NULL);
            return EXIT_USAGE;
        }
        dp_proc_config_defaults(&pc);
        pc.spec_path = cfg.spec_path;
        pc.checkpoint_dir = cfg.checkpoint_dir;
        pc.data_dir = cfg.data_dir;
        pc.pod_name = cfg.pod_name;
        pc.replica_index = cfg.replica_index;
        pc.replicas = cfg.replicas;
        pc.http_port = cfg.http_port_set ? cfg.http_port : -1;
        return dp_proc_run(&pc);
    }
    case DP_ROLE_NONE:
    default:
        fputs(dp_config_usage, stderr);
        return EXIT_USAGE;
    }
}
