/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_generate: `weirctl generate KIND`: wctl_gen records into a topic
 * (librdkafka, acks=all) or to stdout, at a wall-clock rate, with progress
 * on stderr every second. */
#include "wctl_cmd.h"
#include "wctl_gen.h"
#include "wctl_kafka.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: weirctl generate KIND (--topic TOPIC | --print) [options]\n"
    "KIND: nexmark, cards, users, clicks, iot, scores\n"
    "  --topic T          write to topic T (created with --partitions if missing)\n"
    "  --print            write JSON lines to stdout instead\n"
    "  --bootstrap B      cluster (default: the local store)\n"
    "  --count N          records (default 1000; users: the population; 0 = forever)\n"
    "  --rate R           records per wall-clock second (default 0: as fast as possible)\n"
    "  --seed S           random seed (default 0); same seed, same records\n"
    "  --start-time MS    event time of record 0, epoch ms or 'now' (default 2026-01-01)\n"
    "  --event-rate R     records per second of event time (cards 50, others 10,\n"
    "                     nexmark 10000)\n"
    "  --population N     cards (1000), users (100), sensors (20), players (50)\n"
    "  --teams N          scores: teams (5)\n"
    "  --error-percent P  iot: share of ERROR readings (5)\n"
    "  --partitions P     partitions when the topic is created (default 1)\n"
    "  --quiet            no progress lines\n"
    "Progress: one JSON line per second on stderr; a summary at the end.\n";

static volatile sig_atomic_t interrupted;
static wctl_kafka_delivery_t dlv = {.cmd = "generate"};

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static long long mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno != 0 || end == s || *end != '\0' || s[0] == '-' ? -EINVAL : 0;
}

int wctl_generate_main(int argc, char **argv)
{
    static const struct option lo[] = {{"topic", required_argument, NULL, 'T'},
                                       {"print", no_argument, NULL, 'P'},
                                       {"bootstrap", required_argument, NULL, 'b'},
                                       {"count", required_argument, NULL, 'n'},
                                       {"rate", required_argument, NULL, 'r'},
                                       {"seed", required_argument, NULL, 's'},
                                       {"start-time", required_argument, NULL, 'S'},
                                       {"event-rate", required_argument, NULL, 'e'},
                                       {"population", required_argument, NULL, 'o'},
                                       {"teams", required_argument, NULL, 't'},
                                       {"error-percent", required_argument, NULL, 'E'},
                                       {"partitions", required_argument, NULL, 'p'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *topic = NULL, *bootstrap = NULL;
    uint64_t count = 1000, v;
    double rate = 0;
    int print = 0, quiet = 0, partitions = 1, count_set = 0, c, rc = 1;
    wctl_gen_kind_t kind;
    wctl_gen_cfg_t cfg;
    char bbuf[256], err[512], key[WCTL_GEN_KEY_MAX], *val = NULL;
    rd_kafka_t *rk = NULL;
    struct sigaction sa;
    long long t0, last_report, produced = 0;

    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        goto usage;
    }
    if (wctl_gen_kind_parse(argv[1], &kind) != 0) {
        fprintf(stderr, "weirctl generate: unknown kind \"%s\"\n", argv[1]);
        goto usage;
    }
    wctl_gen_cfg_init(&cfg, kind);
    optind = 2;
    while ((c = getopt_long(argc, argv, "T:Pb:n:r:s:S:e:o:t:E:p:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'T':
            topic = optarg;
            break;
        case 'P':
            print = 1;
            break;
        case 'b':
            bootstrap = optarg;
            break;
        case 'n':
            if (parse_u64(optarg, &count) != 0)
                goto usage;
            count_set = 1;
            break;
        case 'r':
            rate = atof(optarg);
            if (rate < 0)
                goto usage;
            break;
        case 's':
            if (parse_u64(optarg, &cfg.seed) != 0)
                goto usage;
            break;
        case 'S':
            if (strcmp(optarg, "now") == 0) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                cfg.start_ms = (int64_t)ts.tv_sec * 1000 / 5000 * 5000;
            } else {
                if (parse_u64(optarg, &v) != 0)
                    goto usage;
                cfg.start_ms = (int64_t)v;
            }
            break;
        case 'e':
            if (parse_u64(optarg, &v) != 0 || v == 0 || v > 10000000)
                goto usage;
            cfg.event_rate = (uint32_t)v;
            break;
        case 'o':
            if (parse_u64(optarg, &v) != 0 || v == 0 || v > 100000000)
                goto usage;
            cfg.population = (uint32_t)v;
            break;
        case 't':
            if (parse_u64(optarg, &v) != 0 || v == 0 || v > 1000000)
                goto usage;
            cfg.teams = (uint32_t)v;
            break;
        case 'E':
            if (parse_u64(optarg, &v) != 0 || v > 100)
                goto usage;
            cfg.error_pct = (uint32_t)v;
            break;
        case 'p':
            partitions = atoi(optarg);
            if (partitions < 1 || partitions > 65536)
                goto usage;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            goto usage;
        }
    }
    if (optind != argc || (topic == NULL) == !print)
        goto usage;
    if (kind == WCTL_GEN_USERS && !count_set)
        count = cfg.population;
    if (wctl_gen_cfg_finish(&cfg) != 0) {
        fprintf(stderr, "weirctl generate: invalid settings for %s\n", argv[1]);
        return 64;
    }
    val = malloc(WCTL_GEN_VALUE_MAX);
    if (val == NULL)
        return 1;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (!print) {
        const char *props[] = {"acks=all", "enable.idempotence=true", "linger.ms=5", NULL};
        json_t *topics;

        if (bootstrap == NULL)
            bootstrap = wctl_kafka_default_bootstrap(bbuf, sizeof(bbuf));
        rk = wctl_kafka_new(RD_KAFKA_PRODUCER, bootstrap, props, &dlv, err, sizeof(err));
        if (rk == NULL) {
            fprintf(stderr, "weirctl generate: %s\n", err);
            goto out;
        }
        if (wctl_kafka_wait_ready(rk, 15000) != 0) {
            fprintf(stderr, "weirctl generate: no answer from %s\n", bootstrap);
            goto out;
        }
        topics = json_pack("[{s:s, s:i}]", "topic", topic, "partitions", partitions);
        if (wctl_kafka_create_topics(rk, topics, 10000, err, sizeof(err)) != 0)
            fprintf(stderr, "weirctl generate: %s (producing anyway)\n", err);
        json_decref(topics);
    }
    t0 = last_report = mono_us();
    for (uint64_t n = 0; (count == 0 || n < count) && !interrupted; n++) {
        size_t klen, vlen;
        int64_t ts;
        long long now;

        vlen = wctl_gen_record(&cfg, n, key, &klen, val, WCTL_GEN_VALUE_MAX, &ts);
        if (print) {
            fwrite(val, 1, vlen, stdout);
            fputc('\n', stdout);
        } else {
            rd_kafka_resp_err_t e;

            for (;;) {
                e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
                                      RD_KAFKA_V_VALUE(val, vlen), RD_KAFKA_V_TIMESTAMP(ts),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || interrupted)
                    break;
                rd_kafka_poll(rk, 20);
            }
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "weirctl generate: %s\n", rd_kafka_err2str(e));
                dlv.failed++;
            }
            rd_kafka_poll(rk, 0);
        }
        produced++;
        now = mono_us();
        if (!quiet && now - last_report >= 1000000) {
            fprintf(stderr,
                    "{\"msg\":\"progress\",\"kind\":\"%s\",\"generated\":%lld,"
                    "\"records_per_sec\":%.0f,\"elapsed_s\":%.1f}\n",
                    argv[1], produced, produced * 1e6 / (double)(now - t0), (now - t0) / 1e6);
            last_report = now;
        }
        if (rate > 0) {
            /* Pace against the start, so a slow moment is caught up. */
            long long due = t0 + (long long)((double)(n + 1) * 1e6 / rate);

            if (due > now) {
                struct timespec d = {(time_t)((due - now) / 1000000),
                                     (long)((due - now) % 1000000) * 1000};
                nanosleep(&d, NULL);
            }
        }
    }
    if (print)
        fflush(stdout);
    if (rk != NULL && rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        dlv.failed += rd_kafka_outq_len(rk);
        fprintf(stderr, "weirctl generate: records left undelivered after 30 s\n");
    }
    {
        double s = (mono_us() - t0) / 1e6;

        fprintf(stderr,
                "{\"msg\":\"done\",\"kind\":\"%s\",\"topic\":\"%s\",\"generated\":%lld,"
                "\"failed\":%lld,\"seconds\":%.2f,\"records_per_sec\":%.0f}\n",
                argv[1], topic ? topic : "-", produced, dlv.failed, s, s > 0 ? produced / s : 0.0);
    }
    rc = dlv.failed == 0 ? 0 : 1;
out:
    if (rk != NULL)
        rd_kafka_destroy(rk);
    free(val);
    return rc;
usage:
    fputs(usage, stderr);
    return 64;
}
