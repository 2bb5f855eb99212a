/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nexmark_gen: writes a Nexmark event stream (docs/internals/nexmark.md) as
 * JSON records into a Kafka-protocol topic, the Weir store or Apache Kafka
 * alike, or as JSON lines to stdout. The end-to-end benchmark feeds the
 * processor with it.
 *
 *   nexmark_gen --bootstrap HOST:PORT --topic T --events N [--rate R]
 *               [--partitions P] [--acks 1] [--print] [options]
 *
 * Records are keyed by bid.auction / auction.id / person.id in decimal. With
 * --partitions P the topic is created with P partitions when absent and a
 * record goes to partition key mod P; without it librdkafka's murmur2
 * partitioner (Java's) picks. At the end one JSON line
 * {"events", "seconds", "events_per_sec", "bytes", "failed"} goes to stdout
 * (to stderr with --print, whose stdout is the events). A record's timestamp
 * is the event's dateTime (--timestamp event, the default; 2015 with the
 * default base time, so a broker with time-based retention deletes it at
 * once: topics created here get retention.ms=-1) or the send time
 * (--timestamp now).
 * Exit status: 0 done, 1 the run failed (broker error, timeout), 64 usage.
 *
 * tests/tools/ programs link only librdkafka and libm, so the generator's
 * source is compiled in here rather than linked from dp_core.
 */
#include "../../dataplane/src/dp_nexmark.c"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_USAGE 64
/* Put a limit on everything. */
#define PROPS_MAX 64
#define PARTITIONS_MAX 4096

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct {
    const char *bootstrap;
    const char *topic;
    const char *props[PROPS_MAX][2]; /* -X KEY=VAL, librdkafka properties */
    int nprops;
    uint64_t events;
    double rate;         /* wall-clock events/s, 0 = as fast as possible */
    uint64_t event_rate; /* event-time events/s, 0 = rate (or the default) */
    int partitions;      /* 0: librdkafka partitions by key */
    const char *acks;
    const char *linger_ms;
    const char *batch_size;
    const char *compression;
    bool print;
    bool timestamp_now;
    uint64_t first_event;
    uint64_t seed;
    uint64_t max_delay_ms;
    int64_t base_time_ms;
    bool base_time_set;
    uint64_t gen_index;
    uint64_t gen_count;
    double timeout_s;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nexmark_gen --bootstrap HOST:PORT --topic T --events N [--rate R]\n"
            "                   [--partitions P] [--acks 1] [--print]\n"
            "  --events N         events to write (this generator's share of ids 0..N-1)\n"
            "  --rate R           wall-clock events/s (default 0: as fast as possible)\n"
            "  --event-rate E     event-time events/s (default R, or 10000 when R is 0)\n"
            "  --partitions P     create the topic with P partitions if absent; key mod P\n"
            "  --acks A           producer acks (default 1)\n"
            "  --print            JSON lines to stdout instead of Kafka\n"
            "  --timestamp W      record timestamp: event (dateTime, default) or now\n"
            "  --first-event ID   id of event 0 (default 0)\n"
            "  --seed S           random seed (default 0)\n"
            "  --max-delay-ms D   out-of-orderness bound of event times (default 0)\n"
            "  --base-time-ms T   event time of event 0 (default 1436918400000)\n"
            "  --generator I/K    produce only events I, I+K, ... (default 0/1)\n"
            "  --linger-ms L, --batch-size B, --compression C (defaults 5, 1048576, none)\n"
            "  -X KEY=VAL         any librdkafka property (wins over the above)\n"
            "  --timeout-s S      wait for delivery at most S seconds at the end (default 60)\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end); /* accepts 1e6 */
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0) || v > 1.8e19)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0))
        return -1;
    *out = v;
    return 0;
}

enum {
    OPT_EVENTS = 256,
    OPT_RATE,
    OPT_EVENT_RATE,
    OPT_PARTITIONS,
    OPT_ACKS,
    OPT_PRINT,
    OPT_TIMESTAMP,
    OPT_FIRST,
    OPT_SEED,
    OPT_DELAY,
    OPT_BASE,
    OPT_GENERATOR,
    OPT_LINGER,
    OPT_BATCH,
    OPT_COMPRESSION,
    OPT_TIMEOUT,
};

static int parse_opts(int argc, char **argv, opts_t *o)
{
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"property", required_argument, NULL, 'X'},
        {"events", required_argument, NULL, OPT_EVENTS},
        {"rate", required_argument, NULL, OPT_RATE},
        {"event-rate", required_argument, NULL, OPT_EVENT_RATE},
        {"partitions", required_argument, NULL, OPT_PARTITIONS},
        {"acks", required_argument, NULL, OPT_ACKS},
        {"print", no_argument, NULL, OPT_PRINT},
        {"timestamp", required_argument, NULL, OPT_TIMESTAMP},
        {"first-event", required_argument, NULL, OPT_FIRST},
        {"seed", required_argument, NULL, OPT_SEED},
        {"max-delay-ms", required_argument, NULL, OPT_DELAY},
        {"base-time-ms", required_argument, NULL, OPT_BASE},
        {"generator", required_argument, NULL, OPT_GENERATOR},
        {"linger-ms", required_argument, NULL, OPT_LINGER},
        {"batch-size", required_argument, NULL, OPT_BATCH},
        {"compression", required_argument, NULL, OPT_COMPRESSION},
        {"timeout-s", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t u;
    char *end;
    int c;

    memset(o, 0, sizeof(*o));
    o->acks = "1";
    o->linger_ms = "5";
    o->batch_size = "1048576";
    o->compression = "none";
    o->gen_count = 1;
    o->timeout_s = 60;
    for (;;) {
        c = getopt_long(argc, argv, "b:t:X:h", longopts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 'b':
            o->bootstrap = optarg;
            break;
        case 't':
            o->topic = optarg;
            break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (o->nprops >= PROPS_MAX || eq == NULL || eq == optarg)
                goto bad;
            *eq = '\0'; /* optarg points into argv, which outlives the run */
            o->props[o->nprops][0] = optarg;
            o->props[o->nprops][1] = eq + 1;
            o->nprops++;
            break;
        }
        case OPT_EVENTS:
            if (parse_u64(optarg, &o->events) != 0 || o->events == 0)
                goto bad;
            break;
        case OPT_RATE:
            if (parse_double(optarg, &o->rate) != 0)
                goto bad;
            break;
        case OPT_EVENT_RATE:
            if (parse_u64(optarg, &o->event_rate) != 0 || o->event_rate == 0)
                goto bad;
            break;
        case OPT_PARTITIONS:
            if (parse_u64(optarg, &u) != 0 || u == 0 || u > PARTITIONS_MAX)
                goto bad;
            o->partitions = (int)u;
            break;
        case OPT_ACKS:
            o->acks = optarg;
            break;
        case OPT_PRINT:
            o->print = true;
            break;
        case OPT_TIMESTAMP:
            if (strcmp(optarg, "now") == 0)
                o->timestamp_now = true;
            else if (strcmp(optarg, "event") != 0)
                goto bad;
            break;
        case OPT_FIRST:
            if (parse_u64(optarg, &o->first_event) != 0)
                goto bad;
            break;
        case OPT_SEED:
            errno = 0;
            o->seed = strtoull(optarg, &end, 0);
            if (errno != 0 || end == optarg || *end != '\0')
                goto bad;
            break;
        case OPT_DELAY:
            if (parse_u64(optarg, &o->max_delay_ms) != 0)
                goto bad;
            break;
        case OPT_BASE:
            errno = 0;
            o->base_time_ms = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0')
                goto bad;
            o->base_time_set = true;
            break;
        case OPT_GENERATOR:
            errno = 0;
            o->gen_index = strtoull(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '/')
                goto bad;
            o->gen_count = strtoull(end + 1, &end, 10);
            if (errno != 0 || *end != '\0' || o->gen_count == 0 || o->gen_index >= o->gen_count)
                goto bad;
            break;
        case OPT_LINGER:
            o->linger_ms = optarg;
            break;
        case OPT_BATCH:
            o->batch_size = optarg;
            break;
        case OPT_COMPRESSION:
            o->compression = optarg;
            break;
        case OPT_TIMEOUT:
            if (parse_double(optarg, &o->timeout_s) != 0 || o->timeout_s <= 0)
                goto bad;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind != argc || o->events == 0) {
        fprintf(stderr, "nexmark_gen: --events N is required\n");
        return -1;
    }
    if (!o->print && (o->bootstrap == NULL || o->topic == NULL)) {
        fprintf(stderr, "nexmark_gen: --bootstrap and --topic are required without --print\n");
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "nexmark_gen: bad value for %s: '%s'\n", argv[optind - 1], optarg);
    return -1;
}

/* ------------------------------------------------------------ kafka -- */

typedef struct {
    uint64_t delivered;
    uint64_t failed;
    rd_kafka_resp_err_t first_err;
} stats_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    stats_t *st = opaque;
    (void)rk;
    if (m->err) {
        if (st->failed++ == 0)
            st->first_err = m->err;
    } else {
        st->delivered++;
    }
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *val)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, val, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "nexmark_gen: %s=%s: %s\n", key, val, errstr);
        return -1;
    }
    return 0;
}

/* A producer tuned for throughput: large batches, a short linger, and room
 * for a million queued records; -X settings win. */
static rd_kafka_t *producer_new(const opts_t *o, stats_t *st)
{
    const char *pre[][2] = {
        {"bootstrap.servers", o->bootstrap},
        {"client.id", "nexmark_gen"},
        {"acks", o->acks},
        {"linger.ms", o->linger_ms},
        {"batch.size", o->batch_size},
        {"compression.codec", o->compression},
        {"queue.buffering.max.messages", "1000000"},
        {"queue.buffering.max.kbytes", "1048576"},
        {"partitioner", "murmur2_random"},
        {"enable.idempotence", "false"},
    };
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
        if (conf_set(conf, pre[i][0], pre[i][1]) != 0)
            goto err;
    }
    for (int i = 0; i < o->nprops; i++) {
        if (conf_set(conf, o->props[i][0], o->props[i][1]) != 0)
            goto err;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, st);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "nexmark_gen: %s\n", errstr);
        goto err;
    }
    return rk; /* rd_kafka_new took conf */
err:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Creates the topic with `partitions` partitions unless it exists, then
 * checks that its partition count is that. 0 or -1. */
static int topic_ensure(rd_kafka_t *rk, const opts_t *o)
{
    char errstr[512];
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_event_t *ev = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = NULL;
    int timeout_ms = (int)(o->timeout_s * 1000), rc = -1;

    nt = rd_kafka_NewTopic_new(o->topic, o->partitions, 1, errstr, sizeof(errstr));
    if (nt == NULL) {
        fprintf(stderr, "nexmark_gen: %s\n", errstr);
        goto out;
    }
    /* Event times start in 2015 by default: keep them however old. */
    if (rd_kafka_NewTopic_set_config(nt, "retention.ms", "-1") != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "nexmark_gen: retention.ms config refused\n");
        goto out;
    }
    if (rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, errstr, sizeof(errstr)) ||
        rd_kafka_AdminOptions_set_request_timeout(ao, timeout_ms, errstr, sizeof(errstr))) {
        fprintf(stderr, "nexmark_gen: %s\n", errstr);
        goto out;
    }
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (ev == NULL || rd_kafka_event_error(ev)) {
        fprintf(stderr, "nexmark_gen: CreateTopics: %s\n",
                ev == NULL ? "timed out" : rd_kafka_event_error_string(ev));
        goto out;
    }
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    rd_kafka_resp_err_t err =
        cnt == 1 ? rd_kafka_topic_result_error(tr[0]) : RD_KAFKA_RESP_ERR__BAD_MSG;
    if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        fprintf(stderr, "nexmark_gen: create %s: %s\n", o->topic, rd_kafka_err2str(err));
        goto out;
    }

    /* CreateTopics may return before every partition has a leader. */
    rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    uint64_t deadline = now_ns() + (uint64_t)(o->timeout_s * 1e9);
    for (;;) {
        int n = -1;
        err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && md->topics[0].err == 0) {
            const struct rd_kafka_metadata_topic *t = &md->topics[0];
            n = t->partition_cnt;
            for (int i = 0; i < t->partition_cnt; i++) {
                if (t->partitions[i].err != 0 || t->partitions[i].leader < 0)
                    n = -1;
            }
        }
        if (md != NULL) {
            rd_kafka_metadata_destroy(md);
            md = NULL;
        }
        if (n > 0 && n != o->partitions) {
            fprintf(stderr, "nexmark_gen: topic %s has %d partitions, not %d\n", o->topic, n,
                    o->partitions);
            goto out;
        }
        if (n > 0)
            break;
        if (now_ns() >= deadline || interrupted) {
            fprintf(stderr, "nexmark_gen: topic %s not ready\n", o->topic);
            goto out;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    rc = 0;
out:
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (nt != NULL)
        rd_kafka_NewTopic_destroy(nt);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    return rc;
}

/* Sleeps until `done` events fit the wall-clock rate since `start_ns`. */
static void pace(const opts_t *o, uint64_t start_ns, uint64_t done)
{
    if (o->rate <= 0)
        return;
    uint64_t due = start_ns + (uint64_t)((double)done * 1e9 / o->rate), now = now_ns();
    if (due > now) {
        struct timespec ts = {(time_t)((due - now) / 1000000000u),
                              (long)((due - now) % 1000000000u)};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv)
{
    opts_t o;
    dp_nexmark_cfg_t cfg;
    dp_nexmark_gen_t gen;
    dp_nexmark_event_t e;
    static char json[DP_NEXMARK_JSON_MAX + 1];
    char key[DP_NEXMARK_KEY_MAX];
    stats_t st = {0};
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    uint64_t events = 0, bytes = 0;
    int rc = 1;

    if (parse_opts(argc, argv, &o) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    dp_nexmark_cfg_init(&cfg);
    cfg.first_event_id = o.first_event;
    cfg.events = o.events;
    cfg.seed = o.seed;
    cfg.max_delay_ms = o.max_delay_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)o.max_delay_ms;
    if (o.event_rate > 0)
        cfg.events_per_sec = o.event_rate;
    else if (o.rate >= 1)
        cfg.events_per_sec = (uint64_t)o.rate;
    if (o.base_time_set)
        cfg.base_time_ms = o.base_time_ms;
    if (dp_nexmark_gen_init(&gen, &cfg, o.gen_index, o.gen_count) != 0) {
        fprintf(stderr, "nexmark_gen: invalid generator settings\n");
        return EXIT_USAGE;
    }

    if (o.print) {
        static char outbuf[1 << 20];
        setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    } else {
        rk = producer_new(&o, &st);
        if (rk == NULL)
            return 1;
        if (o.partitions > 0 && topic_ensure(rk, &o) != 0)
            goto out;
        rkt = rd_kafka_topic_new(rk, o.topic, NULL);
        if (rkt == NULL) {
            fprintf(stderr, "nexmark_gen: topic %s: %s\n", o.topic,
                    rd_kafka_err2str(rd_kafka_last_error()));
            goto out;
        }
    }

    uint64_t start = now_ns();
    while (!interrupted && dp_nexmark_gen_next(&gen, &e)) {
        size_t len = dp_nexmark_json(&e, json, sizeof json);
        if (len >= sizeof json) { /* cannot happen: cfg_check bounds the sizes */
            fprintf(stderr, "nexmark_gen: event %" PRIu64 " too large\n", e.n);
            goto out;
        }
        if (o.print) {
            json[len] = '\n';
            if (fwrite(json, 1, len + 1, stdout) != len + 1) {
                fprintf(stderr, "nexmark_gen: stdout: %s\n", strerror(errno));
                goto out;
            }
        } else {
            size_t klen = dp_nexmark_key(&e, key, sizeof key);
            int32_t part = RD_KAFKA_PARTITION_UA;
            if (o.partitions > 0)
                part = (int32_t)((uint64_t)dp_nexmark_key_id(&e) % (uint64_t)o.partitions);
            int64_t ts = o.timestamp_now ? 0 : dp_nexmark_date_time(&e); /* 0: now */
            for (;;) {
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(part),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(json, len),
                    RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
                if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
                    break;
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || interrupted) {
                    fprintf(stderr, "nexmark_gen: produce: %s\n", rd_kafka_err2str(err));
                    goto out;
                }
                rd_kafka_poll(rk, 10); /* wait for deliveries to make room */
            }
            rd_kafka_poll(rk, 0);
            if (st.failed > 0) {
                fprintf(stderr, "nexmark_gen: delivery failed: %s\n",
                        rd_kafka_err2str(st.first_err));
                goto out;
            }
        }
        events++;
        bytes += len;
        pace(&o, start, events);
    }

    if (o.print) {
        if (fflush(stdout) != 0) {
            fprintf(stderr, "nexmark_gen: stdout: %s\n", strerror(errno));
            goto out;
        }
    } else {
        rd_kafka_resp_err_t err = rd_kafka_flush(rk, (int)(o.timeout_s * 1000));
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR || st.failed > 0 || st.delivered != events) {
            fprintf(stderr, "nexmark_gen: %" PRIu64 " of %" PRIu64 " delivered: %s\n", st.delivered,
                    events, rd_kafka_err2str(st.failed > 0 ? st.first_err : err));
            goto out;
        }
    }
    double secs = (double)(now_ns() - start) / 1e9;
    fprintf(o.print ? stderr : stdout,
            "{\"events\":%" PRIu64 ",\"seconds\":%.3f,\"events_per_sec\":%.0f,\"bytes\":%" PRIu64
            ",\"failed\":%" PRIu64 "}\n",
            events, secs, secs > 0 ? (double)events / secs : 0.0, bytes, st.failed);
    rc = interrupted ? 1 : 0;
out:
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    if (rk != NULL) {
        rd_kafka_flush(rk, 1000);
        rd_kafka_destroy(rk);
    }
    return rc;
}
