/* SPDX-License-Identifier: Apache-2.0 */
/* Configuration parsing for weir-dataplane. Every knob has an environment
 * variable (for pods) and a flag (for people); the flag wins. */
#include "dp_config.h"

#include "wc_err.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char dp_config_usage[] =
    "usage: weir-dataplane --role store|processor [options]\n"
    "       weir-dataplane validate SPEC.json\n"
    "options (environment variable in brackets):\n"
    "  --role R             store or processor [WEIR_ROLE]\n"
    "  --spec FILE          pipeline spec for the processor role [WEIR_SPEC]\n"
    "  --data-dir DIR       data / checkpoint root [WEIR_DATA_DIR]\n"
    "  --pod-name NAME      StatefulSet pod name; ordinal = replica index [WEIR_POD_NAME]\n"
    "  --replicas N         replica count for placement [WEIR_REPLICAS]\n"
    "  --kafka-port P       store listener port, default 9092 [WEIR_KAFKA_PORT]\n"
    "  --advertised-host H  host announced to clients [WEIR_ADVERTISED_HOST]\n"
    "  --http-port P        metrics/health port, 0 disables, default 9400 [WEIR_HTTP_PORT]\n"
    "  --workers N          worker threads, 0 = one per CPU [WEIR_WORKERS]\n"
    "processor options:\n"
    "  --checkpoint-dir DIR checkpoint directory; overrides the spec's checkpoint.dir\n"
    "                       (default: the spec's, else DATA_DIR/checkpoints)\n"
    "store options:\n"
    "  --segment-bytes N    preallocated segment size, default 134217728 [WEIR_SEGMENT_BYTES]\n"
    "  --flush POLICY       every | interval:MS | bytes:N, default every [WEIR_FLUSH]\n"
    "  --retention-ms N     default topic retention, -1 forever [WEIR_RETENTION_MS]\n"
    "  --retention-bytes N  default topic size limit, -1 none [WEIR_RETENTION_BYTES]\n"
    "  --default-partitions N  partitions of auto-created topics, default 1\n"
    "                       [WEIR_DEFAULT_PARTITIONS]\n"
    "  --auto-create-topics true|false  default true [WEIR_AUTO_CREATE_TOPICS]\n"
    "  --worker-memory-mb N request/response memory per worker, default 512\n"
    "                       [WEIR_WORKER_MEMORY_MB]\n"
    "  --sqpoll true|false  kernel submission polling threads [WEIR_SQPOLL]\n"
    "  --help\n";

static int parse_ll(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
        *out = 1;
    else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
        *out = 0;
    else
        return -EINVAL;
    return 0;
}

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

void dp_config_defaults(dp_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->data_dir = "/var/lib/weir";
    cfg->advertised_host = "127.0.0.1";
    cfg->replicas = 1;
    cfg->kafka_port = 9092;
    cfg->http_port = 9400;
    cfg->auto_create = -1;
}

int dp_config_parse_role(const char *s, dp_role_t *out)
{
    if (strcmp(s, "store") == 0)
        *out = DP_ROLE_STORE;
    else if (strcmp(s, "processor") == 0)
        *out = DP_ROLE_PROCESSOR;
    else
        return -EINVAL;
    return 0;
}

int dp_config_pod_ordinal(const char *pod_name)
{
    const char *dash = strrchr(pod_name, '-');
    int v;

    /* Digits only: strtol would also take "+1" or " 1". */
    if (dash == NULL || dash[1] == '\0' || strspn(dash + 1, "0123456789") != strlen(dash + 1) ||
        parse_int(dash + 1, 0, INT_MAX, &v) != 0)
        return -EINVAL;
    return v;
}

/* One setter shared by the environment and the flags, so both accept and
 * reject exactly the same values. */
static int set_option(dp_config_t *cfg, const char *name, const char *value, char *err,
                      size_t errlen)
{
    int rc = 0;

    if (strcmp(name, "role") == 0) {
        rc = dp_config_parse_role(value, &cfg->role);
    } else if (strcmp(name, "spec") == 0) {
        cfg->spec_path = value;
    } else if (strcmp(name, "data-dir") == 0) {
        cfg->data_dir = value;
    } else if (strcmp(name, "pod-name") == 0) {
        int ord = dp_config_pod_ordinal(value);

        cfg->pod_name = value;
        if (ord < 0)
            return wc_fail(err, errlen, "pod name \"%s\" has no ordinal suffix", value);
        cfg->replica_index = ord;
    } else if (strcmp(name, "replicas") == 0) {
        rc = parse_int(value, 1, 1024, &cfg->replicas);
    } else if (strcmp(name, "kafka-port") == 0) {
        rc = parse_int(value, 1, 65535, &cfg->kafka_port);
    } else if (strcmp(name, "advertised-host") == 0) {
        cfg->advertised_host = value;
    } else if (strcmp(name, "http-port") == 0) {
        rc = parse_int(value, 0, 65535, &cfg->http_port);
        cfg->http_port_set = rc == 0;
    } else if (strcmp(name, "checkpoint-dir") == 0) {
        if (value[0] == '\0')
            return wc_fail(err, errlen, "invalid value \"\" for checkpoint-dir");
        cfg->checkpoint_dir = value;
    } else if (strcmp(name, "workers") == 0) {
        rc = parse_int(value, 0, 256, &cfg->workers);
    } else if (strcmp(name, "segment-bytes") == 0) {
        rc = parse_ll(value, 1 << 16, 1LL << 34, &cfg->segment_bytes);
    } else if (strcmp(name, "flush") == 0) {
        rc = -EINVAL;
        if (strcmp(value, "every") == 0) {
            cfg->flush = DP_CONFIG_FLUSH_EVERY;
            cfg->flush_value = 0;
            rc = 0;
        } else if (strncmp(value, "interval:", 9) == 0) {
            cfg->flush = DP_CONFIG_FLUSH_INTERVAL;
            rc = parse_ll(value + 9, 1, 3600000, &cfg->flush_value);
        } else if (strncmp(value, "bytes:", 6) == 0) {
            cfg->flush = DP_CONFIG_FLUSH_BYTES;
            rc = parse_ll(value + 6, 1, 1LL << 40, &cfg->flush_value);
        }
    } else if (strcmp(name, "retention-ms") == 0) {
        rc = parse_ll(value, -1, INT64_MAX, &cfg->retention_ms);
    } else if (strcmp(name, "retention-bytes") == 0) {
        rc = parse_ll(value, -1, INT64_MAX, &cfg->retention_bytes);
    } else if (strcmp(name, "default-partitions") == 0) {
        rc = parse_int(value, 1, 4096, &cfg->default_partitions);
    } else if (strcmp(name, "auto-create-topics") == 0) {
        rc = parse_bool(value, &cfg->auto_create);
    } else if (strcmp(name, "worker-memory-mb") == 0) {
        rc = parse_int(value, 16, 1 << 20, &cfg->memory_mb);
    } else if (strcmp(name, "sqpoll") == 0) {
        rc = parse_bool(value, &cfg->sqpoll);
    } else {
        return wc_fail(err, errlen, "unknown option \"%s\"", name);
    }
    if (rc != 0)
        return wc_fail(err, errlen, "invalid value \"%s\" for %s", value, name);
    return 0;
}

static const struct {
    const char *env;
    const char *option;
} env_map[] = {
    {"WEIR_ROLE", "role"},
    {"WEIR_SPEC", "spec"},
    {"WEIR_DATA_DIR", "data-dir"},
    {"WEIR_POD_NAME", "pod-name"},
    {"WEIR_REPLICAS", "replicas"},
    {"WEIR_KAFKA_PORT", "kafka-port"},
    {"WEIR_ADVERTISED_HOST", "advertised-host"},
    {"WEIR_HTTP_PORT", "http-port"},
    {"WEIR_WORKERS", "workers"},
    {"WEIR_SEGMENT_BYTES", "segment-bytes"},
    {"WEIR_FLUSH", "flush"},
    {"WEIR_RETENTION_MS", "retention-ms"},
    {"WEIR_RETENTION_BYTES", "retention-bytes"},
    {"WEIR_DEFAULT_PARTITIONS", "default-partitions"},
    {"WEIR_AUTO_CREATE_TOPICS", "auto-create-topics"},
    {"WEIR_WORKER_MEMORY_MB", "worker-memory-mb"},
    {"WEIR_SQPOLL", "sqpoll"},
};

int dp_config_apply_env(dp_config_t *cfg, char *const *env, char *err, size_t errlen)
{
    for (char *const *e = env; e != NULL && *e != NULL; e++) {
        const char *eq = strchr(*e, '=');

        if (eq == NULL)
            continue;
        for (size_t i = 0; i < sizeof(env_map) / sizeof(env_map[0]); i++) {
            size_t n = strlen(env_map[i].env);
            char msg[256];

            if ((size_t)(eq - *e) != n || strncmp(*e, env_map[i].env, n) != 0)
                continue;
            if (set_option(cfg, env_map[i].option, eq + 1, msg, sizeof(msg)) != 0)
                return wc_fail(err, errlen, "%s: %s", env_map[i].env, msg);
        }
    }
    return 0;
}

int dp_config_apply_args(dp_config_t *cfg, int argc, char **argv, char *err, size_t errlen)
{
    static const struct option opts[] = {
        {"role", required_argument, NULL, 0},
        {"spec", required_argument, NULL, 0},
        {"data-dir", required_argument, NULL, 0},
        {"pod-name", required_argument, NULL, 0},
        {"replicas", required_argument, NULL, 0},
        {"kafka-port", required_argument, NULL, 0},
        {"advertised-host", required_argument, NULL, 0},
        {"http-port", required_argument, NULL, 0},
        {"workers", required_argument, NULL, 0},
        {"segment-bytes", required_argument, NULL, 0},
        {"flush", required_argument, NULL, 0},
        {"retention-ms", required_argument, NULL, 0},
        {"retention-bytes", required_argument, NULL, 0},
        {"default-partitions", required_argument, NULL, 0},
        {"auto-create-topics", required_argument, NULL, 0},
        {"worker-memory-mb", required_argument, NULL, 0},
        {"sqpoll", required_argument, NULL, 0},
        {"checkpoint-dir", required_argument, NULL, 0},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int idx, c, rc;

    optind = 1;
    opterr = 0;
    for (;;) {
        c = getopt_long(argc, argv, "h", opts, &idx);
        if (c == -1)
            break;
        if (c == 'h')
            return 1;
        if (c == '?')
            return wc_fail(err, errlen, "unknown or incomplete option \"%s\"", argv[optind - 1]);
        rc = set_option(cfg, opts[idx].name, optarg, err, errlen);
        if (rc != 0)
            return rc;
    }
    if (optind < argc)
        return wc_fail(err, errlen, "unexpected argument \"%s\"", argv[optind]);
    return 0;
}
