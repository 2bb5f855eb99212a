/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kbench: a librdkafka load generator for the store benchmark
 * (tests/bench/store_bench.sh, docs/internals/store-bench.md). It talks to
 * any Kafka-protocol broker, so the Weir store and Apache Kafka are driven by
 * exactly the same client code. Each run prints one JSON object on stdout.
 *
 *   kbench create  -b BOOT -t TOPIC [--partitions N] [-c KEY=VAL]...
 *   kbench produce -b BOOT -t TOPIC (--bytes-total B | --seconds S)
 *                  [--size 1024] [--rate MSGS_PER_S] [--acks all]
 *                  [--linger-ms L] [--batch-size B] [--partitions-hint N]
 *   kbench consume -b BOOT -t TOPIC [--records N]
 *
 * Every mode takes -X KEY=VAL (any librdkafka property) and --timeout-s.
 * Exit status: 0 done, 1 the run failed (broker error, timeout), 64 usage.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define EXIT_USAGE 64
/* Put a limit on everything: -X and -c pairs, partitions read by consume. */
#define PROPS_MAX 64
#define PARTITIONS_MAX 4096
#define CONSUME_BATCH 1024

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

/* CPU seconds (user + system) of this whole process, librdkafka's threads
 * included: the client's share of a machine it shares with the broker. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*
 * Latency histogram, log-linear like HdrHistogram: values below 64 ns have a
 * bucket each, and every power of two above is cut into 64 sub-buckets, so a
 * bucket is at most 1/64 (1.6%) wide relative to its value. Fixed size, no
 * allocation per record, and it covers the whole uint64_t range.
 */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (HIST_SUB + (64 - HIST_SUB_BITS) * HIST_SUB)

typedef struct {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t max_ns;
    double sum_ns;
} hist_t;

static unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    /* v >> shift lies in [HIST_SUB, 2 * HIST_SUB). */
    return HIST_SUB + shift * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* Largest value that falls into bucket idx. */
static uint64_t hist_upper(unsigned idx)
{
    if (idx < HIST_SUB)
        return idx;
    unsigned shift = (idx - HIST_SUB) / HIST_SUB;
    uint64_t m = (idx - HIST_SUB) % HIST_SUB + HIST_SUB;
    return ((m + 1) << shift) - 1; /* wraps to UINT64_MAX for the last bucket */
}

static void hist_add(hist_t *h, uint64_t v)
{
    unsigned idx = hist_index(v);
    assert(idx < HIST_BUCKETS);
    h->counts[idx]++;
    h->total++;
    h->sum_ns += (double)v;
    if (v > h->max_ns)
        h->max_ns = v;
}

/* The q-quantile (0 < q <= 1), as the upper bound of its bucket, in ns. */
static uint64_t hist_quantile(const hist_t *h, double q)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->total);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t up = hist_upper(i);
            return up < h->max_ns ? up : h->max_ns;
        }
    }
    return h->max_ns;
}

/* ------------------------------------------------------------ options -- */

typedef struct {
    const char *mode;
    const char *bootstrap;
    const char *topic;
    const char *props[PROPS_MAX][2]; /* -X KEY=VAL, librdkafka properties */
    int nprops;
    const char *configs[PROPS_MAX][2]; /* -c KEY=VAL, topic configs (create) */
    int nconfigs;
    double timeout_s;
    /* produce */
    uint64_t bytes_total;
    double seconds;
    size_t size;
    double rate;
    const char *acks;
    const char *linger_ms;
    const char *batch_size;
    int partitions_hint;
    /* consume */
    uint64_t records;
    /* create */
    int partitions;
    int replication;
    bool if_not_exists;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: kbench create  -b BOOT -t TOPIC [--partitions N] [--replication R]\n"
               "                      [-c KEY=VAL]... [--if-not-exists]\n"
               "       kbench produce -b BOOT -t TOPIC (--bytes-total B | --seconds S)\n"
               "                      [--size 1024] [--rate MSGS_PER_S (0=max)] [--acks all]\n"
               "                      [--linger-ms L] [--batch-size B] [--partitions-hint N]\n"
               "       kbench consume -b BOOT -t TOPIC [--records N (0=up to the end)]\n"
               "common: -X KEY=VAL (librdkafka property), --timeout-s S (default 60)\n");
}

static int split_kv(const char *arg, const char *(*slot)[2], int *n)
{
    if (*n >= PROPS_MAX) {
        fprintf(stderr, "kbench: more than %d KEY=VAL options\n", PROPS_MAX);
        return -1;
    }
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg) {
        fprintf(stderr, "kbench: expected KEY=VAL, got '%s'\n", arg);
        return -1;
    }
    /* optarg points into argv, which outlives the run: split it in place. */
    char *key = (char *)arg;
    key[eq - arg] = '\0';
    slot[*n][0] = key;
    slot[*n][1] = eq + 1;
    (*n)++;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* Accept 1e9 and the K/M/G (binary) suffixes for byte counts. */
    const char *suffixes = "KkMmGg";
    const char *sfx = *end != '\0' ? strchr(suffixes, *end) : NULL;
    if (sfx != NULL) {
        v *= pow(1024.0, (double)((sfx - suffixes) / 2 + 1));
        end++;
    }
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 1.8e19)
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
    OPT_BYTES_TOTAL = 256,
    OPT_SECONDS,
    OPT_SIZE,
    OPT_RATE,
    OPT_ACKS,
    OPT_LINGER,
    OPT_BATCH,
    OPT_PHINT,
    OPT_RECORDS,
    OPT_PARTITIONS,
    OPT_REPLICATION,
    OPT_IF_NOT_EXISTS,
    OPT_TIMEOUT,
};

static int parse_opts(int argc, char **argv, opts_t *o)
{
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"property", required_argument, NULL, 'X'},
        {"config", required_argument, NULL, 'c'},
        {"bytes-total", required_argument, NULL, OPT_BYTES_TOTAL},
        {"seconds", required_argument, NULL, OPT_SECONDS},
        {"size", required_argument, NULL, OPT_SIZE},
        {"rate", required_argument, NULL, OPT_RATE},
        {"acks", required_argument, NULL, OPT_ACKS},
        {"linger-ms", required_argument, NULL, OPT_LINGER},
        {"batch-size", required_argument, NULL, OPT_BATCH},
        {"partitions-hint", required_argument, NULL, OPT_PHINT},
        {"records", required_argument, NULL, OPT_RECORDS},
        {"partitions", required_argument, NULL, OPT_PARTITIONS},
        {"replication", required_argument, NULL, OPT_REPLICATION},
        {"if-not-exists", no_argument, NULL, OPT_IF_NOT_EXISTS},
        {"timeout-s", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t u;
    int c;

    memset(o, 0, sizeof(*o));
    o->mode = argv[0];
    o->timeout_s = 60;
    o->size = 1024;
    o->acks = "all";
    o->partitions = 1;
    o->replication = 1;
    optind = 1;
    for (;;) {
        c = getopt_long(argc, argv, "b:t:X:c:h", longopts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 'b':
            o->bootstrap = optarg;
            break;
        case 't':
            o->topic = optarg;
            break;
        case 'X':
            if (split_kv(optarg, o->props, &o->nprops) != 0)
                return -1;
            break;
        case 'c':
            if (split_kv(optarg, o->configs, &o->nconfigs) != 0)
                return -1;
            break;
        case OPT_BYTES_TOTAL:
            if (parse_u64(optarg, &o->bytes_total) != 0 || o->bytes_total == 0)
                goto bad;
            break;
        case OPT_SECONDS:
            if (parse_double(optarg, &o->seconds) != 0 || o->seconds <= 0)
                goto bad;
            break;
        case OPT_SIZE:
            if (parse_u64(optarg, &u) != 0 || u == 0 || u > 64u * 1024 * 1024)
                goto bad;
            o->size = (size_t)u;
            break;
        case OPT_RATE:
            if (parse_double(optarg, &o->rate) != 0)
                goto bad;
            break;
        case OPT_ACKS:
            o->acks = optarg;
            break;
        case OPT_LINGER:
            o->linger_ms = optarg;
            break;
        case OPT_BATCH:
            o->batch_size = optarg;
            break;
        case OPT_PHINT:
            if (parse_u64(optarg, &u) != 0 || u > PARTITIONS_MAX)
                goto bad;
            o->partitions_hint = (int)u;
            break;
        case OPT_RECORDS:
            if (parse_u64(optarg, &o->records) != 0)
                goto bad;
            break;
        case OPT_PARTITIONS:
            if (parse_u64(optarg, &u) != 0 || u == 0 || u > PARTITIONS_MAX)
                goto bad;
            o->partitions = (int)u;
            break;
        case OPT_REPLICATION:
            if (parse_u64(optarg, &u) != 0 || u == 0 || u > 32)
                goto bad;
            o->replication = (int)u;
            break;
        case OPT_IF_NOT_EXISTS:
            o->if_not_exists = true;
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
    if (optind != argc) {
        fprintf(stderr, "kbench: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->bootstrap == NULL || o->topic == NULL) {
        fprintf(stderr, "kbench: -b BOOTSTRAP and -t TOPIC are required\n");
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "kbench: bad value '%s'\n", optarg);
    return -1;
}

/* ----------------------------------------------------------- helpers -- */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *val)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, val, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kbench: %s=%s: %s\n", key, val, errstr);
        return -1;
    }
    return 0;
}

/* Configuration: bootstrap, then the mode's npre KEY, VAL pairs in pre (NULL
 * values are skipped), then -X, so that the user's -X always wins. */
static rd_kafka_conf_t *conf_new(const opts_t *o, const char *const *pre, int npre)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", o->bootstrap) != 0)
        goto err;
    if (conf_set(conf, "client.id", "kbench") != 0)
        goto err;
    for (int i = 0; i < npre; i++)
        if (pre[2 * i + 1] != NULL && conf_set(conf, pre[2 * i], pre[2 * i + 1]) != 0)
            goto err;
    for (int i = 0; i < o->nprops; i++)
        if (conf_set(conf, o->props[i][0], o->props[i][1]) != 0)
            goto err;
    return conf;
err:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Partition count of topic (all with a leader), waiting up to timeout_s. */
static int topic_partitions(rd_kafka_t *rk, const char *topic, double timeout_s)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    uint64_t deadline = now_ns() + (uint64_t)(timeout_s * 1e9);
    rd_kafka_resp_err_t last = RD_KAFKA_RESP_ERR_NO_ERROR;
    int n = -1;

    if (rkt == NULL) {
        fprintf(stderr, "kbench: topic %s: %s\n", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    while (n < 0 && !interrupted) {
        const struct rd_kafka_metadata *md = NULL;
        last = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (last == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) {
            const struct rd_kafka_metadata_topic *t = &md->topics[0];
            bool ready = t->err == RD_KAFKA_RESP_ERR_NO_ERROR && t->partition_cnt > 0;
            for (int i = 0; ready && i < t->partition_cnt; i++)
                ready = t->partitions[i].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                        t->partitions[i].leader >= 0;
            if (ready)
                n = t->partition_cnt;
            else
                last = t->err ? t->err : RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
        }
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        if (n < 0) {
            if (now_ns() >= deadline)
                break;
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    rd_kafka_topic_destroy(rkt);
    if (n < 0) {
        fprintf(stderr, "kbench: topic %s not ready: %s\n", topic, rd_kafka_err2str(last));
        return -1;
    }
    if (n > PARTITIONS_MAX) {
        fprintf(stderr, "kbench: topic %s has %d partitions (max %d)\n", topic, n, PARTITIONS_MAX);
        return -1;
    }
    return n;
}

/* ------------------------------------------------------------ create -- */

static int cmd_create(const opts_t *o)
{
    char errstr[512];
    rd_kafka_conf_t *conf = conf_new(o, NULL, 0);
    rd_kafka_t *rk = NULL;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_AdminOptions_t *ao = NULL;
    rd_kafka_event_t *ev = NULL;
    int rc = 1;
    bool existed = false;

    if (conf == NULL)
        return 1;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "kbench: %s\n", errstr);
        return 1;
    }
    nt = rd_kafka_NewTopic_new(o->topic, o->partitions, o->replication, errstr, sizeof(errstr));
    if (nt == NULL) {
        fprintf(stderr, "kbench: %s\n", errstr);
        goto out;
    }
    for (int i = 0; i < o->nconfigs; i++) {
        rd_kafka_resp_err_t err =
            rd_kafka_NewTopic_set_config(nt, o->configs[i][0], o->configs[i][1]);
        if (err) {
            fprintf(stderr, "kbench: config %s: %s\n", o->configs[i][0], rd_kafka_err2str(err));
            goto out;
        }
    }
    q = rd_kafka_queue_new(rk);
    ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    int op_timeout_ms = (int)(o->timeout_s * 1000);
    if (rd_kafka_AdminOptions_set_operation_timeout(ao, op_timeout_ms, errstr, sizeof(errstr)) ||
        rd_kafka_AdminOptions_set_request_timeout(ao, op_timeout_ms, errstr, sizeof(errstr))) {
        fprintf(stderr, "kbench: %s\n", errstr);
        goto out;
    }
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    ev = rd_kafka_queue_poll(q, op_timeout_ms + 5000);
    if (ev == NULL) {
        fprintf(stderr, "kbench: CreateTopics timed out\n");
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "kbench: CreateTopics: %s\n", rd_kafka_event_error_string(ev));
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
    if (cnt != 1) {
        fprintf(stderr, "kbench: CreateTopics returned %zu results\n", cnt);
        goto out;
    }
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[0]);
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS && o->if_not_exists) {
        existed = true;
    } else if (err) {
        const char *msg = rd_kafka_topic_result_error_string(tr[0]);
        fprintf(stderr, "kbench: create %s: %s (%s)\n", o->topic, rd_kafka_err2name(err),
                msg ? msg : rd_kafka_err2str(err));
        goto out;
    }
    /* CreateTopics returns before every broker knows the leaders. */
    int n = topic_partitions(rk, o->topic, o->timeout_s);
    if (n < 0)
        goto out;
    printf("{\"mode\":\"create\",\"topic\":");
    json_string(stdout, o->topic);
    printf(",\"partitions\":%d,\"existed\":%s}\n", n, existed ? "true" : "false");
    rc = 0;
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (ao != NULL)
        rd_kafka_AdminOptions_destroy(ao);
    if (nt != NULL)
        rd_kafka_NewTopic_destroy(nt);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

/* ----------------------------------------------------------- produce -- */

typedef struct {
    hist_t lat; /* send (rd_kafka_produce) -> delivery report, ns */
    uint64_t delivered;
    uint64_t delivered_bytes;
    uint64_t failed;
    rd_kafka_resp_err_t first_err;
    uint64_t last_dr_ns;
} produce_stats_t;

/* The send time travels in the message opaque: nothing is allocated per
 * record, and the payload is one shared buffer that librdkafka neither
 * copies nor frees (msgflags 0). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    produce_stats_t *st = opaque;
    uint64_t t = now_ns();
    (void)rk;
    st->last_dr_ns = t;
    if (m->err) {
        if (st->failed++ == 0)
            st->first_err = m->err;
        return;
    }
    st->delivered++;
    st->delivered_bytes += m->len;
    uint64_t sent = (uint64_t)(uintptr_t)m->_private;
    hist_add(&st->lat, t > sent ? t - sent : 0);
}

static void print_latency(FILE *f, const hist_t *h)
{
    double mean = h->total ? h->sum_ns / (double)h->total : 0;
    fprintf(f,
            "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
            "\"max\":%.1f,\"mean\":%.1f}",
            hist_quantile(h, 0.50) / 1e3, hist_quantile(h, 0.90) / 1e3,
            hist_quantile(h, 0.99) / 1e3, hist_quantile(h, 0.999) / 1e3, h->max_ns / 1e3,
            mean / 1e3);
}

static int cmd_produce(const opts_t *o)
{
    static produce_stats_t st; /* 30 KiB histogram: keep it off the stack */
    char errstr[512];
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    char *payload = NULL;
    int rc = 1;

    if ((o->bytes_total != 0) == (o->seconds != 0)) {
        fprintf(stderr, "kbench: produce needs exactly one of --bytes-total and --seconds\n");
        return EXIT_USAGE;
    }
    payload = malloc(o->size);
    if (payload == NULL) {
        fprintf(stderr, "kbench: out of memory\n");
        return 1;
    }
    /* Incompressible bytes, in case someone adds compression.type with -X. */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < o->size; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        payload[i] = (char)x;
    }

    const char *pre[] = {"acks", o->acks, "linger.ms", o->linger_ms, "batch.size", o->batch_size};
    conf = conf_new(o, pre, 3);
    if (conf == NULL)
        goto out;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &st);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kbench: %s\n", errstr);
        goto out;
    }
    conf = NULL; /* owned by rk now */

    /* Metadata first: the connection and leader lookup stay out of the timing. */
    int nparts = topic_partitions(rk, o->topic, o->timeout_s);
    if (nparts < 0)
        goto out;
    if (o->partitions_hint > 0 && o->partitions_hint < nparts)
        nparts = o->partitions_hint;
    rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    if (rkt == NULL) {
        fprintf(stderr, "kbench: topic: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }

    const double cpu0 = cpu_s();
    const uint64_t t0 = now_ns();
    const uint64_t end_ns = o->seconds > 0 ? t0 + (uint64_t)(o->seconds * 1e9) : UINT64_MAX;
    const uint64_t records_max =
        o->bytes_total ? (o->bytes_total + o->size - 1) / o->size : UINT64_MAX;
    const double interval_ns = o->rate > 0 ? 1e9 / o->rate : 0;
    uint64_t sent = 0, queue_full = 0, lag_max_ns = 0;

    while (sent < records_max && !interrupted && st.failed == 0) {
        uint64_t now = now_ns();
        if (now >= end_ns)
            break;
        if (interval_ns > 0) {
            /* Open loop: record i is due at t0 + i / rate, whatever happened to
             * the ones before, so a slow broker shows up as lag, not as a
             * quietly lower rate. */
            uint64_t due = t0 + (uint64_t)((double)sent * interval_ns);
            if (now < due) {
                /* Sleep in poll (it wakes up for delivery reports, which keeps
                 * their timestamps honest), at least 1 ms: no busy loop stealing a
                 * core from the broker. */
                uint64_t wait = due - now;
                if (due > end_ns)
                    wait = end_ns - now;
                int ms = (int)((wait + 999999) / 1000000);
                rd_kafka_poll(rk, ms < 1 ? 1 : ms);
                continue;
            }
            if (now - due > lag_max_ns)
                lag_max_ns = now - due;
        }
        int32_t part = (int32_t)(sent % (uint64_t)nparts);
        uint64_t ts = now_ns();
        if (rd_kafka_produce(rkt, part, 0, payload, o->size, NULL, 0, (void *)(uintptr_t)ts) != 0) {
            rd_kafka_resp_err_t err = rd_kafka_last_error();
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                queue_full++;
                rd_kafka_poll(rk, 5);
                continue;
            }
            fprintf(stderr, "kbench: produce: %s\n", rd_kafka_err2str(err));
            goto out;
        }
        sent++;
        if (interval_ns > 0 || sent % 256 == 0)
            rd_kafka_poll(rk, 0);
    }

    uint64_t flush_deadline = now_ns() + (uint64_t)(o->timeout_s * 1e9);
    while (rd_kafka_outq_len(rk) > 0 && !interrupted) {
        if (now_ns() >= flush_deadline) {
            fprintf(stderr, "kbench: %d messages still undelivered after %.0f s\n",
                    rd_kafka_outq_len(rk), o->timeout_s);
            goto out;
        }
        rd_kafka_poll(rk, 100);
    }
    if (interrupted)
        goto out;

    double secs = st.last_dr_ns > t0 ? (double)(st.last_dr_ns - t0) / 1e9 : 0;
    double mbps = secs > 0 ? (double)st.delivered_bytes / 1e6 / secs : 0;
    double rps = secs > 0 ? (double)st.delivered / secs : 0;
    printf("{\"mode\":\"produce\",\"topic\":");
    json_string(stdout, o->topic);
    printf(",\"partitions\":%d,\"size\":%zu,\"acks\":", nparts, o->size);
    json_string(stdout, o->acks);
    printf(",\"rate_target\":%.0f,\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"errors\":%" PRIu64
           ",\"seconds\":%.3f,\"records_per_s\":%.0f,\"mb_per_s\":%.2f,",
           o->rate, st.delivered, st.delivered_bytes, st.failed, secs, rps, mbps);
    print_latency(stdout, &st.lat);
    printf(",\"schedule_lag_max_us\":%.1f,\"queue_full\":%" PRIu64 ",\"client_cpu_s\":%.3f}\n",
           lag_max_ns / 1e3, queue_full, cpu_s() - cpu0);
    if (st.failed) {
        fprintf(stderr, "kbench: %" PRIu64 " records failed, first: %s\n", st.failed,
                rd_kafka_err2str(st.first_err));
        goto out;
    }
    rc = 0;
out:
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    if (rk != NULL) {
        /* Anything still queued is failed on destroy; do not wait for it. */
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(rk);
    }
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    free(payload);
    return rc;
}

/* ----------------------------------------------------------- consume -- */

static int cmd_consume(const opts_t *o)
{
    static rd_kafka_message_t *msgs[CONSUME_BATCH];
    char errstr[512];
    rd_kafka_conf_t *conf = conf_new(o, NULL, 0);
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    rd_kafka_queue_t *q = NULL;
    int nparts = 0, started = 0, rc = 1;

    if (conf == NULL)
        return 1;
    /* The legacy queue API: partitions are assigned by hand from the
     * beginning, with no consumer group and no offset commits at all. */
    rd_kafka_topic_conf_t *tconf = rd_kafka_topic_conf_new();
    if (rd_kafka_topic_conf_set(tconf, "auto.commit.enable", "false", errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kbench: %s\n", errstr);
        rd_kafka_topic_conf_destroy(tconf);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kbench: %s\n", errstr);
        rd_kafka_topic_conf_destroy(tconf);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    nparts = topic_partitions(rk, o->topic, o->timeout_s);
    if (nparts < 0) {
        rd_kafka_topic_conf_destroy(tconf);
        goto out;
    }
    rkt = rd_kafka_topic_new(rk, o->topic, tconf);
    if (rkt == NULL) {
        fprintf(stderr, "kbench: topic: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }

    uint64_t want = o->records;
    if (want == 0) {
        for (int p = 0; p < nparts; p++) {
            int64_t lo = 0, hi = 0;
            rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, o->topic, p, &lo, &hi,
                                                                       (int)(o->timeout_s * 1000));
            if (err) {
                fprintf(stderr, "kbench: watermarks of %s/%d: %s\n", o->topic, p,
                        rd_kafka_err2str(err));
                goto out;
            }
            want += (uint64_t)(hi - lo);
        }
    }

    q = rd_kafka_queue_new(rk);
    const double cpu0 = cpu_s();
    const uint64_t t0 = now_ns();
    for (int p = 0; p < nparts; p++) {
        if (rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q) != 0) {
            fprintf(stderr, "kbench: consume_start %d: %s\n", p,
                    rd_kafka_err2str(rd_kafka_last_error()));
            goto out;
        }
        started++;
    }

    uint64_t got = 0, bytes = 0, t_last = t0, t_first = 0;
    uint64_t idle_deadline = t0 + (uint64_t)(o->timeout_s * 1e9);
    while (got < want && !interrupted) {
        ssize_t n = rd_kafka_consume_batch_queue(q, 100, msgs, CONSUME_BATCH);
        uint64_t now = now_ns();
        if (n < 0) {
            fprintf(stderr, "kbench: consume: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
            goto out;
        }
        bool progress = false;
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                got++;
                bytes += m->len + m->key_len;
                progress = true;
            } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fprintf(stderr, "kbench: consume %s/%" PRId32 ": %s\n", o->topic, m->partition,
                        rd_kafka_message_errstr(m));
                for (; i < n; i++)
                    rd_kafka_message_destroy(msgs[i]);
                goto out;
            }
            rd_kafka_message_destroy(m);
        }
        if (progress) {
            if (t_first == 0)
                t_first = now;
            t_last = now;
            idle_deadline = now + (uint64_t)(o->timeout_s * 1e9);
        } else if (now >= idle_deadline) {
            fprintf(stderr, "kbench: no records for %.0f s (%" PRIu64 " of %" PRIu64 ")\n",
                    o->timeout_s, got, want);
            goto out;
        }
    }
    if (interrupted)
        goto out;

    double secs = (double)(t_last - t0) / 1e9;
    printf("{\"mode\":\"consume\",\"topic\":");
    json_string(stdout, o->topic);
    printf(",\"partitions\":%d,\"records\":%" PRIu64 ",\"bytes\":%" PRIu64
           ",\"seconds\":%.3f,\"first_record_ms\":%.1f,\"records_per_s\":%.0f,"
           "\"mb_per_s\":%.2f,\"client_cpu_s\":%.3f}\n",
           nparts, got, bytes, secs, t_first ? (double)(t_first - t0) / 1e6 : 0.0,
           secs > 0 ? (double)got / secs : 0.0, secs > 0 ? (double)bytes / 1e6 / secs : 0.0,
           cpu_s() - cpu0);
    rc = 0;
out:
    for (int p = 0; p < started; p++)
        rd_kafka_consume_stop(rkt, p);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

int main(int argc, char **argv)
{
    opts_t o;

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (parse_opts(argc - 1, argv + 1, &o) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (strcmp(o.mode, "create") == 0)
        return cmd_create(&o);
    if (strcmp(o.mode, "produce") == 0)
        return cmd_produce(&o);
    if (strcmp(o.mode, "consume") == 0)
        return cmd_consume(&o);
    fprintf(stderr, "kbench: unknown mode '%s'\n", o.mode);
    usage(stderr);
    return EXIT_USAGE;
}
