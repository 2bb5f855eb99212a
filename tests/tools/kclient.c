/* SPDX-License-Identifier: Apache-2.0 */
/* kclient: a small librdkafka client for the store's real-client tests
 * (tests/integration/store_*.sh). `produce` writes numbered records and logs
 * every acknowledged one; `consume` prints what a partition holds; `create`
 * makes a topic through the admin API. Run `kclient help` for the options. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

/* Exit codes: 0 ok, 1 failure (a delivery or a commit failed), 2 timeout
 * (consume saw fewer records than expected), 3 fatal client error, 64 usage. */
enum { KC_EXIT_FAIL = 1, KC_EXIT_TIMEOUT = 2, KC_EXIT_FATAL = 3, KC_EXIT_USAGE = 64 };

/* Put a limit on everything: records, value sizes, partitions, -X pairs. */
#define KC_PARTITIONS_MAX 1024
#define KC_VALUE_BYTES_MAX (16 * 1024 * 1024)
#define KC_PROPS_MAX 64
#define KC_ERRORS_SHOWN_MAX 20

static const char kc_usage[] =
    "usage: kclient produce -b BOOT -t TOPIC -n N [options]\n"
    "       kclient consume -b BOOT -t TOPIC [options]\n"
    "       kclient create  -b BOOT -t TOPIC [-p PARTITIONS] [-c NAME=VALUE]...\n"
    "       kclient committed -b BOOT -t TOPIC --group G\n"
    "common:\n"
    "  -b BOOT               bootstrap servers\n"
    "  -t TOPIC              topic\n"
    "  -X PROP=VALUE         extra librdkafka property (repeatable)\n"
    "  -q                    quiet: no librdkafka log lines on stderr\n"
    "produce (value \"<prefix>-<seq %08d>\", key \"<prefix><seq %08d>\"):\n"
    "  -n N                  records to produce (seq START .. START+N-1)\n"
    "  --start SEQ           first seq (0)\n"
    "  --acks all|1|0        (all)\n"
    "  --idempotent          enable.idempotence=true\n"
    "  --key-prefix K        prefix of keys and values (k)\n"
    "  --size BYTES          pad each value to BYTES with a seq-dependent filler\n"
    "  --partition P         produce to partition P (default: hash of the key)\n"
    "  --acked-log FILE      append \"seq partition offset\" per acked record\n"
    "  --linger-ms X         linger.ms (5)\n"
    "  --rate R              at most R records per second (0: unlimited)\n"
    "  --message-timeout-ms T  delivery deadline per record (60000)\n"
    "  --flush-timeout-ms T  wait this long for outstanding deliveries at the end\n"
    "                        or on SIGTERM/SIGINT, then purge (message timeout + 10 s)\n"
    "  --tolerate-errors     failed deliveries do not fail the run (crash tests)\n"
    "consume (prints \"partition offset key value\" per record):\n"
    "  --group G             subscribe as member of G, commit at the end\n"
    "  --from-beginning      group mode: auto.offset.reset=earliest (else latest)\n"
    "  --expect N            stop after N records; exit 2 if fewer by the timeout\n"
    "                        (without it: stop at the end of every partition)\n"
    "  --timeout-ms T        overall deadline (30000)\n"
    "create:\n"
    "  -p PARTITIONS         (1)\n"
    "  -c NAME=VALUE         topic config, e.g. segment.bytes=65536 (repeatable)\n"
    "committed (OffsetFetch; prints \"partition offset\", -1 when none):\n"
    "  --group G             the group to ask about\n";

/* Set from the signal handler; read by the produce and consume loops. */
static volatile sig_atomic_t kc_stop;

typedef struct kc_common {
    const char *brokers;
    const char *topic;
    const char *props[KC_PROPS_MAX]; /* "name=value" from -X, borrowed from argv */
    int nprops;
    const char *configs[KC_PROPS_MAX]; /* topic configs from -c (create) */
    int nconfigs;
    int quiet;
} kc_common_t;

typedef struct kc_produce {
    kc_common_t c;
    int64_t n;
    int64_t start;
    const char *acks;
    int idempotent;
    const char *prefix;
    long size;
    int32_t partition;
    const char *acked_log_path;
    long linger_ms;
    double rate;
    long message_timeout_ms;
    long flush_timeout_ms;
    int tolerate_errors;
    /* Run state, updated by the delivery report callback. */
    FILE *acked_log;
    int64_t acked;
    int64_t failed;
    int64_t dr_total;
} kc_produce_t;

typedef struct kc_consume {
    kc_common_t c;
    const char *group;
    int from_beginning;
    int64_t expect;
    long timeout_ms;
    /* Run state. */
    int32_t parts[KC_PARTITIONS_MAX]; /* assigned partitions */
    char eof[KC_PARTITIONS_MAX];      /* at end, nothing consumed since */
    int nparts;
    int assigned; /* an assignment was received (group mode) */
    int commit_failed;
} kc_consume_t;

static void kc_on_signal(int sig)
{
    (void)sig;
    kc_stop = 1;
}

static void kc_install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kc_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int64_t kc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void kc_err(const char *fmt, ...)
{
    va_list ap;

    fputs("kclient: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int kc_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
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

static int kc_parse_long(const char *s, long lo, long hi, long *out)
{
    int64_t v;
    int rc = kc_parse_i64(s, lo, hi, &v);

    if (rc == 0)
        *out = (long)v;
    return rc;
}

/* Times the idempotent producer drained a partition to retry requests that
 * were in flight when a connection died (librdkafka's "DRAIN ... drain
 * before retrying"): the crash test shows it so that its no-duplicate check
 * is known to have been exercised. Updated from librdkafka's threads. */
static atomic_long kc_retry_drains;

/* Logger: as librdkafka's own, except that -q drops the lines (broker-down
 * chatter is expected in the crash tests and would bury their output). */
static void kc_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const kc_common_t *c = rd_kafka_opaque(rk);

    if (strcmp(fac, "DRAIN") == 0 && strstr(buf, "drain before retrying") != NULL)
        atomic_fetch_add(&kc_retry_drains, 1);
    if (c == NULL || !c->quiet)
        fprintf(stderr, "%%%d|%s|%s| %s\n", level, fac, rd_kafka_name(rk), buf);
}

static int kc_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        kc_err("%s=%s: %s", name, value, errstr);
        return -EINVAL;
    }
    return 0;
}

/* Builds the configuration shared by every subcommand; -X pairs go last so
 * they override the defaults chosen here. Returns NULL after printing why. */
static rd_kafka_conf_t *kc_conf_new(const kc_common_t *c, const char *const *defaults)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char name[256];

    if (kc_conf_set(conf, "bootstrap.servers", c->brokers) != 0)
        goto err;
    if (kc_conf_set(conf, "client.id", "weir-kclient") != 0)
        goto err;
    for (int i = 0; defaults != NULL && defaults[i] != NULL; i += 2)
        if (kc_conf_set(conf, defaults[i], defaults[i + 1]) != 0)
            goto err;
    for (int i = 0; i < c->nprops; i++) {
        const char *eq = strchr(c->props[i], '=');
        size_t len = eq != NULL ? (size_t)(eq - c->props[i]) : 0;

        if (len == 0 || len >= sizeof(name)) {
            kc_err("-X %s: expected PROP=VALUE", c->props[i]);
            goto err;
        }
        memcpy(name, c->props[i], len);
        name[len] = '\0';
        if (kc_conf_set(conf, name, eq + 1) != 0)
            goto err;
    }
    rd_kafka_conf_set_log_cb(conf, kc_log_cb);
    return conf;
err:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* opaque is the kc_produce_t or kc_consume_t: both start with kc_common_t. */
static void kc_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    const kc_common_t *c = opaque;

    /* Broker-down errors are the point of the crash test: keep them short. */
    if (c->quiet &&
        (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN))
        return;
    kc_err("%s error: %s: %s", rd_kafka_name(rk), rd_kafka_err2name((rd_kafka_resp_err_t)err),
           reason);
}

/* ---------------------------------------------------------------- produce */

/* Writes the key or value of record seq into buf (NUL-terminated), returns
 * its length. The value is padded to p->size with a filler that depends on
 * seq and position, so a shifted or swapped byte shows. */
static size_t kc_format(const kc_produce_t *p, int64_t seq, int value, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, value ? "%s-%08" PRId64 : "%s%08" PRId64, p->prefix, seq);
    size_t len = n < 0 ? 0 : (size_t)n;

    if (len >= cap)
        len = cap - 1;
    if (value && p->size > 0 && (size_t)p->size < cap) {
        if (len < (size_t)p->size)
            buf[len++] = '.';
        while (len < (size_t)p->size) {
            buf[len] = (char)('a' + (int)((seq + (int64_t)len) % 26));
            len++;
        }
        buf[len] = '\0';
    }
    return len;
}

static void kc_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kc_produce_t *p = opaque;
    int64_t seq = (int64_t)(intptr_t)m->_private;

    (void)rk;
    p->dr_total++;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->failed++;
        if (p->failed <= KC_ERRORS_SHOWN_MAX)
            kc_err("delivery of seq %" PRId64 " failed: %s: %s", seq, rd_kafka_err2name(m->err),
                   rd_kafka_err2str(m->err));
        else if (p->failed == KC_ERRORS_SHOWN_MAX + 1)
            kc_err("(further delivery failures are only counted)");
        return;
    }
    p->acked++;
    if (p->acked_log != NULL) {
        /* One line per ack, flushed at once: the store may be killed at any
         * moment and the test must know every record it acknowledged. */
        fprintf(p->acked_log, "%" PRId64 " %" PRId32 " %" PRId64 "\n", seq, m->partition,
                (int64_t)m->offset);
        fflush(p->acked_log);
    }
}

/* Produces record seq, waiting while the local queue is full. Returns 0,
 * 1 when interrupted, or -1 on a non-retriable error. */
static int kc_produce_one(rd_kafka_t *rk, kc_produce_t *p, int64_t seq, char *vbuf, size_t vcap)
{
    char key[256];
    size_t klen = kc_format(p, seq, 0, key, sizeof(key));
    size_t vlen = kc_format(p, seq, 1, vbuf, vcap);

    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(p->c.topic), RD_KAFKA_V_PARTITION(p->partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, klen),
            RD_KAFKA_V_VALUE(vbuf, vlen), RD_KAFKA_V_OPAQUE((void *)(intptr_t)seq), RD_KAFKA_V_END);

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            kc_err("produce seq %" PRId64 ": %s", seq, rd_kafka_err2str(err));
            return -1;
        }
        if (kc_stop)
            return 1;
        rd_kafka_poll(rk, 50);
    }
}

static int kc_produce_run(kc_produce_t *p)
{
    char linger[32], mto[32];
    const char *defaults[] = {
        "acks", p->acks, "enable.idempotence", p->idempotent ? "true" : "false", "linger.ms",
        linger, "message.timeout.ms", mto,
        /* Fast reconnects after a store restart. */
        "reconnect.backoff.ms", "50", "reconnect.backoff.max.ms", "500", "retry.backoff.ms", "50",
        /* Last: with -q the eos debug context feeds kc_retry_drains; cut
         * off without -q, where it would print. */
        "debug", "eos", NULL};
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    char errstr[512];
    char *vbuf = NULL;
    size_t vcap = (size_t)(p->size > 0 ? p->size : 0) + 256;
    int64_t t0, sent = 0;
    int rc = KC_EXIT_FAIL, fatal = 0;

    snprintf(linger, sizeof(linger), "%ld", p->linger_ms);
    snprintf(mto, sizeof(mto), "%ld", p->message_timeout_ms);
    if (!p->c.quiet)
        defaults[sizeof(defaults) / sizeof(defaults[0]) - 3] = NULL;
    if (p->acked_log_path != NULL) {
        p->acked_log = fopen(p->acked_log_path, "a");
        if (p->acked_log == NULL) {
            kc_err("%s: %s", p->acked_log_path, strerror(errno));
            goto out;
        }
    }
    vbuf = malloc(vcap);
    if (vbuf == NULL)
        goto out;
    conf = kc_conf_new(&p->c, defaults);
    if (conf == NULL) {
        rc = KC_EXIT_USAGE;
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, kc_dr_cb);
    rd_kafka_conf_set_error_cb(conf, kc_error_cb);
    rd_kafka_conf_set_opaque(conf, p);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        kc_err("rd_kafka_new: %s", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    t0 = kc_now_ms();
    for (int64_t i = 0; i < p->n && !kc_stop; i++) {
        int r;

        if (p->rate > 0) {
            int64_t due = t0 + (int64_t)((double)i * 1000.0 / p->rate);

            for (int64_t now = kc_now_ms(); !kc_stop && now < due; now = kc_now_ms())
                rd_kafka_poll(rk, (int)(due - now));
        }
        if (rd_kafka_fatal_error(rk, errstr, sizeof(errstr)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fatal = 1;
            break;
        }
        r = kc_produce_one(rk, p, p->start + i, vbuf, vcap);
        if (r < 0)
            goto out;
        if (r > 0)
            break;
        sent++;
        rd_kafka_poll(rk, 0);
    }
    /* Drain: a fresh deadline, so a stop signal still lets the in-flight
     * records finish against a live store. */
    kc_stop = 0;
    t0 = kc_now_ms();
    while (rd_kafka_outq_len(rk) > 0 && !kc_stop && kc_now_ms() - t0 < p->flush_timeout_ms)
        rd_kafka_flush(rk, 100);
    if (rd_kafka_outq_len(rk) > 0) {
        kc_err("%d records still outstanding after the flush; purging", rd_kafka_outq_len(rk));
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(rk, 5000);
    }
    if (rd_kafka_fatal_error(rk, errstr, sizeof(errstr)) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fatal = 1;
    fprintf(stderr,
            "kclient: produce: %" PRId64 " sent, %" PRId64 " acked, %" PRId64 " failed, %" PRId64
            " unreported, %ld drains to retry in-flight requests%s\n",
            sent, p->acked, p->failed, sent - p->dr_total, (long)atomic_load(&kc_retry_drains),
            p->c.quiet ? "" : " (counted with -q only)");
    if (fatal) {
        kc_err("fatal producer error: %s", errstr);
        rc = KC_EXIT_FATAL;
    } else if ((p->failed > 0 || sent != p->dr_total || sent < p->n) && !p->tolerate_errors) {
        rc = KC_EXIT_FAIL;
    } else {
        rc = 0;
    }
out:
    if (rk != NULL)
        rd_kafka_destroy(rk);
    if (p->acked_log != NULL)
        fclose(p->acked_log);
    free(vbuf);
    return rc;
}

/* ---------------------------------------------------------------- consume */

static int kc_part_index(const kc_consume_t *k, int32_t partition)
{
    for (int i = 0; i < k->nparts; i++)
        if (k->parts[i] == partition)
            return i;
    return -1;
}

static void kc_set_parts(kc_consume_t *k, const rd_kafka_topic_partition_list_t *list)
{
    k->nparts = 0;
    for (int i = 0; list != NULL && i < list->cnt && k->nparts < KC_PARTITIONS_MAX; i++) {
        if (strcmp(list->elems[i].topic, k->c.topic) != 0)
            continue;
        k->parts[k->nparts] = list->elems[i].partition;
        k->eof[k->nparts] = 0;
        k->nparts++;
    }
}

static void kc_commit(rd_kafka_t *rk, kc_consume_t *k)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(rk, NULL, 0);

    /* _NO_OFFSET: nothing consumed since the last commit. */
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        kc_err("commit failed: %s", rd_kafka_err2str(err));
        k->commit_failed = 1;
    }
}

static void kc_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kc_consume_t *k = opaque;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        kc_set_parts(k, parts);
        k->assigned = 1;
        rd_kafka_assign(rk, parts);
    } else {
        if (k->assigned)
            kc_commit(rk, k);
        k->nparts = 0;
        k->assigned = 0;
        rd_kafka_assign(rk, NULL);
    }
}

/* Assign mode: every partition of the topic from its beginning. Retries the
 * metadata request until the topic shows up or the deadline passes. */
static int kc_assign_all(rd_kafka_t *rk, kc_consume_t *k, int64_t deadline)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, k->c.topic, NULL);
    int rc = -ETIMEDOUT;

    if (rkt == NULL)
        return -ENOMEM;
    while (!kc_stop && kc_now_ms() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        rd_kafka_topic_partition_list_t *list;

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err != 0 ||
            md->topics[0].partition_cnt == 0) {
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
                rd_kafka_metadata_destroy(md);
            rd_kafka_poll(rk, 200);
            continue;
        }
        list = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (int i = 0; i < md->topics[0].partition_cnt; i++)
            rd_kafka_topic_partition_list_add(list, k->c.topic, md->topics[0].partitions[i].id)
                ->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
        kc_set_parts(k, list);
        err = rd_kafka_assign(rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        rc = err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -EIO;
        if (rc != 0)
            kc_err("assign: %s", rd_kafka_err2str(err));
        break;
    }
    rd_kafka_topic_destroy(rkt);
    return rc;
}

static int kc_all_eof(const kc_consume_t *k)
{
    if (k->nparts == 0)
        return 0;
    for (int i = 0; i < k->nparts; i++)
        if (!k->eof[i])
            return 0;
    return 1;
}

static void kc_print(const rd_kafka_message_t *m, FILE *out)
{
    fprintf(out, "%" PRId32 " %" PRId64 " ", m->partition, (int64_t)m->offset);
    if (m->key != NULL)
        fwrite(m->key, 1, m->key_len, out);
    fputc(' ', out);
    if (m->payload != NULL)
        fwrite(m->payload, 1, m->len, out);
    fputc('\n', out);
}

static int kc_consume_run(kc_consume_t *k)
{
    const char *defaults[] = {"check.crcs", /* verify every batch the server sends */
                              "true",
                              "enable.partition.eof",
                              "true",
                              "enable.auto.commit",
                              "false",
                              "auto.offset.reset",
                              k->from_beginning || k->group == NULL ? "earliest" : "latest",
                              "group.id",
                              k->group != NULL ? k->group : "weir-kclient-unused",
                              "session.timeout.ms",
                              "10000",
                              "reconnect.backoff.ms",
                              "50",
                              "reconnect.backoff.max.ms",
                              "500",
                              NULL};
    int64_t deadline = kc_now_ms() + k->timeout_ms, seen = 0;
    rd_kafka_conf_t *conf = kc_conf_new(&k->c, defaults);
    rd_kafka_t *rk = NULL;
    char errstr[512];
    int rc = KC_EXIT_FAIL, done = 0;

    if (conf == NULL)
        return KC_EXIT_USAGE;
    rd_kafka_conf_set_error_cb(conf, kc_error_cb);
    rd_kafka_conf_set_opaque(conf, k);
    if (k->group != NULL)
        rd_kafka_conf_set_rebalance_cb(conf, kc_rebalance_cb);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        kc_err("rd_kafka_new: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return KC_EXIT_FAIL;
    }
    rd_kafka_poll_set_consumer(rk);
    if (k->group != NULL) {
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_resp_err_t err;

        rd_kafka_topic_partition_list_add(sub, k->c.topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            kc_err("subscribe: %s", rd_kafka_err2str(err));
            goto out;
        }
    } else {
        int r = kc_assign_all(rk, k, deadline);

        if (r == -ETIMEDOUT) {
            kc_err("topic %s has no partitions (metadata) within %ld ms", k->c.topic,
                   k->timeout_ms);
            rc = KC_EXIT_TIMEOUT;
            goto out;
        }
        if (r < 0)
            goto out;
    }
    while (!kc_stop && !done && kc_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        int i;

        if (m == NULL)
            continue;
        i = kc_part_index(k, m->partition);
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (i >= 0)
                k->eof[i] = 1;
            if (k->expect < 0 && kc_all_eof(k))
                done = 1;
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            kc_err("consume: %s [%" PRId32 "] @%" PRId64 ": %s", k->c.topic, m->partition,
                   (int64_t)m->offset, rd_kafka_message_errstr(m));
        } else {
            kc_print(m, stdout);
            seen++;
            if (i >= 0)
                k->eof[i] = 0;
            if (k->expect >= 0 && seen >= k->expect)
                done = 1;
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    if (k->group != NULL && k->assigned)
        kc_commit(rk, k);
    fprintf(stderr, "kclient: consume: %" PRId64 " records%s\n", seen,
            done ? "" : " (deadline or signal before the end)");
    if (!done)
        rc = KC_EXIT_TIMEOUT;
    else if (k->commit_failed)
        rc = KC_EXIT_FAIL;
    else
        rc = 0;
out:
    rd_kafka_consumer_close(rk);
    if (k->commit_failed && rc == 0)
        rc = KC_EXIT_FAIL;
    rd_kafka_destroy(rk);
    return rc;
}

/* -------------------------------------------------------------- committed */

/* Prints the group's committed offset of every partition (OffsetFetch
 * through rd_kafka_committed), without joining the group. */
static int kc_committed_run(kc_consume_t *k)
{
    const char *defaults[] = {"group.id", k->group, "enable.auto.commit", "false", NULL};
    int64_t deadline = kc_now_ms() + k->timeout_ms;
    rd_kafka_conf_t *conf = kc_conf_new(&k->c, defaults);
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t err;
    rd_kafka_t *rk;
    char errstr[512];
    int rc = KC_EXIT_FAIL;

    if (conf == NULL)
        return KC_EXIT_USAGE;
    rd_kafka_conf_set_error_cb(conf, kc_error_cb);
    rd_kafka_conf_set_opaque(conf, k);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        kc_err("rd_kafka_new: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return KC_EXIT_FAIL;
    }
    /* Learn the partitions the way assign mode does, without assigning. */
    if (kc_assign_all(rk, k, deadline) != 0) {
        kc_err("topic %s has no partitions (metadata)", k->c.topic);
        goto out;
    }
    rd_kafka_assign(rk, NULL);
    list = rd_kafka_topic_partition_list_new(k->nparts);
    for (int i = 0; i < k->nparts; i++)
        rd_kafka_topic_partition_list_add(list, k->c.topic, k->parts[i]);
    err = rd_kafka_committed(rk, list, (int)(deadline - kc_now_ms()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        kc_err("committed: %s", rd_kafka_err2str(err));
        goto out;
    }
    rd_kafka_topic_partition_list_sort(list, NULL, NULL);
    for (int i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];

        if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            kc_err("committed %s [%" PRId32 "]: %s", tp->topic, tp->partition,
                   rd_kafka_err2str(tp->err));
            goto out;
        }
        printf("%" PRId32 " %" PRId64 "\n", tp->partition, tp->offset < 0 ? -1 : tp->offset);
    }
    rc = 0;
out:
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* ----------------------------------------------------------------- create */

static int kc_create_run(const kc_common_t *c, int partitions)
{
    rd_kafka_conf_t *conf = kc_conf_new(c, NULL);
    rd_kafka_t *rk;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    char errstr[512];
    int rc = KC_EXIT_FAIL;

    if (conf == NULL)
        return KC_EXIT_USAGE;
    rd_kafka_conf_set_opaque(conf, (void *)c); /* for kc_log_cb; never written */
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        kc_err("rd_kafka_new: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return KC_EXIT_FAIL;
    }
    nt = rd_kafka_NewTopic_new(c->topic, partitions, 1, errstr, sizeof(errstr));
    if (nt == NULL) {
        kc_err("NewTopic: %s", errstr);
        goto out;
    }
    for (int i = 0; i < c->nconfigs; i++) {
        char name[256];
        const char *eq = strchr(c->configs[i], '=');
        size_t len = eq != NULL ? (size_t)(eq - c->configs[i]) : 0;

        if (len == 0 || len >= sizeof(name)) {
            kc_err("-c %s: expected NAME=VALUE", c->configs[i]);
            goto out;
        }
        memcpy(name, c->configs[i], len);
        name[len] = '\0';
        if (rd_kafka_NewTopic_set_config(nt, name, eq + 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            kc_err("-c %s: rejected", c->configs[i]);
            goto out;
        }
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (ev == NULL) {
        kc_err("CreateTopics: no answer within 30 s");
        goto out;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        kc_err("CreateTopics: %s", rd_kafka_event_error_string(ev));
        goto out;
    } else {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);

        for (size_t i = 0; i < n; i++) {
            rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[i]);

            if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                kc_err("CreateTopics %s: %s: %s", rd_kafka_topic_result_name(tr[i]),
                       rd_kafka_err2name(err), rd_kafka_topic_result_error_string(tr[i]));
                goto out;
            }
        }
        if (n != 1) {
            kc_err("CreateTopics: %zu topic results, expected 1", n);
            goto out;
        }
    }
    rc = 0;
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (nt != NULL)
        rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    return rc;
}

/* ------------------------------------------------------------------- main */

enum {
    OPT_START = 256,
    OPT_ACKS,
    OPT_IDEMPOTENT,
    OPT_KEY_PREFIX,
    OPT_SIZE,
    OPT_PARTITION,
    OPT_ACKED_LOG,
    OPT_LINGER_MS,
    OPT_RATE,
    OPT_MESSAGE_TIMEOUT_MS,
    OPT_FLUSH_TIMEOUT_MS,
    OPT_TOLERATE_ERRORS,
    OPT_GROUP,
    OPT_FROM_BEGINNING,
    OPT_EXPECT,
    OPT_TIMEOUT_MS,
};

static const struct option kc_options[] = {
    {"start", required_argument, NULL, OPT_START},
    {"acks", required_argument, NULL, OPT_ACKS},
    {"idempotent", no_argument, NULL, OPT_IDEMPOTENT},
    {"key-prefix", required_argument, NULL, OPT_KEY_PREFIX},
    {"size", required_argument, NULL, OPT_SIZE},
    {"partition", required_argument, NULL, OPT_PARTITION},
    {"acked-log", required_argument, NULL, OPT_ACKED_LOG},
    {"linger-ms", required_argument, NULL, OPT_LINGER_MS},
    {"rate", required_argument, NULL, OPT_RATE},
    {"message-timeout-ms", required_argument, NULL, OPT_MESSAGE_TIMEOUT_MS},
    {"flush-timeout-ms", required_argument, NULL, OPT_FLUSH_TIMEOUT_MS},
    {"tolerate-errors", no_argument, NULL, OPT_TOLERATE_ERRORS},
    {"group", required_argument, NULL, OPT_GROUP},
    {"from-beginning", no_argument, NULL, OPT_FROM_BEGINNING},
    {"expect", required_argument, NULL, OPT_EXPECT},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT_MS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef enum { KC_CMD_PRODUCE, KC_CMD_CONSUME, KC_CMD_CREATE, KC_CMD_COMMITTED } kc_cmd_t;

/* Parses argv (after the subcommand) into the options of cmd. Options of
 * other subcommands are rejected. Returns 0, 1 for --help, or -EINVAL. */
static int kc_parse_args(kc_cmd_t cmd, int argc, char **argv, kc_produce_t *p, kc_consume_t *k,
                         long *partitions)
{
    int consumer = cmd == KC_CMD_CONSUME || cmd == KC_CMD_COMMITTED;
    kc_common_t *c = consumer ? &k->c : &p->c;
    char name[64];
    int64_t v;
    int opt;

    for (;;) {
        int li = -1, is_produce, is_consume, is_create;

        opt = getopt_long(argc, argv, "b:t:n:p:c:X:qh", kc_options, &li);
        if (opt == -1)
            break;
        if (li >= 0)
            snprintf(name, sizeof(name), "--%s", kc_options[li].name);
        else
            snprintf(name, sizeof(name), "-%c", opt);
        is_produce = opt == 'n' || (opt >= OPT_START && opt <= OPT_TOLERATE_ERRORS);
        is_consume = opt >= OPT_GROUP && opt <= OPT_TIMEOUT_MS;
        is_create = opt == 'p' || opt == 'c';
        /* committed takes only --group and --timeout-ms of the consume options. */
        if (cmd == KC_CMD_COMMITTED && is_consume && opt != OPT_GROUP && opt != OPT_TIMEOUT_MS)
            is_consume = 2;
        if ((is_produce && cmd != KC_CMD_PRODUCE) || (is_consume == 1 && !consumer) ||
            is_consume == 2 || (is_create && cmd != KC_CMD_CREATE)) {
            kc_err("option not valid for this subcommand: %s", name);
            return -EINVAL;
        }
        switch (opt) {
        case 'b':
            c->brokers = optarg;
            break;
        case 't':
            c->topic = optarg;
            break;
        case 'X':
            if (c->nprops >= KC_PROPS_MAX) {
                kc_err("at most %d -X options", KC_PROPS_MAX);
                return -EINVAL;
            }
            c->props[c->nprops++] = optarg;
            break;
        case 'q':
            c->quiet = 1;
            break;
        case 'c':
            if (c->nconfigs >= KC_PROPS_MAX) {
                kc_err("at most %d -c options", KC_PROPS_MAX);
                return -EINVAL;
            }
            c->configs[c->nconfigs++] = optarg;
            break;
        case 'h':
            return 1;
        case 'n':
            if (kc_parse_i64(optarg, 0, INT64_MAX / 2, &p->n) != 0)
                goto bad;
            break;
        case 'p':
            if (kc_parse_long(optarg, 1, KC_PARTITIONS_MAX, partitions) != 0)
                goto bad;
            break;
        case OPT_START:
            if (kc_parse_i64(optarg, 0, INT64_MAX / 2, &p->start) != 0)
                goto bad;
            break;
        case OPT_ACKS:
            if (strcmp(optarg, "all") != 0 && strcmp(optarg, "-1") != 0 &&
                strcmp(optarg, "1") != 0 && strcmp(optarg, "0") != 0)
                goto bad;
            p->acks = strcmp(optarg, "-1") == 0 ? "all" : optarg;
            break;
        case OPT_IDEMPOTENT:
            p->idempotent = 1;
            break;
        case OPT_KEY_PREFIX:
            if (strlen(optarg) > 200 || strpbrk(optarg, " \t\n:") != NULL)
                goto bad;
            p->prefix = optarg;
            break;
        case OPT_SIZE:
            if (kc_parse_long(optarg, 0, KC_VALUE_BYTES_MAX, &p->size) != 0)
                goto bad;
            break;
        case OPT_PARTITION:
            if (kc_parse_i64(optarg, 0, KC_PARTITIONS_MAX - 1, &v) != 0)
                goto bad;
            p->partition = (int32_t)v;
            break;
        case OPT_ACKED_LOG:
            p->acked_log_path = optarg;
            break;
        case OPT_LINGER_MS:
            if (kc_parse_long(optarg, 0, 900000, &p->linger_ms) != 0)
                goto bad;
            break;
        case OPT_RATE:
            if (kc_parse_i64(optarg, 0, 10000000, &v) != 0)
                goto bad;
            p->rate = (double)v;
            break;
        case OPT_MESSAGE_TIMEOUT_MS:
            if (kc_parse_long(optarg, 1, 2147483647L, &p->message_timeout_ms) != 0)
                goto bad;
            break;
        case OPT_FLUSH_TIMEOUT_MS:
            if (kc_parse_long(optarg, 0, 2147483647L, &p->flush_timeout_ms) != 0)
                goto bad;
            break;
        case OPT_TOLERATE_ERRORS:
            p->tolerate_errors = 1;
            break;
        case OPT_GROUP:
            k->group = optarg;
            break;
        case OPT_FROM_BEGINNING:
            k->from_beginning = 1;
            break;
        case OPT_EXPECT:
            if (kc_parse_i64(optarg, 0, INT64_MAX / 2, &k->expect) != 0)
                goto bad;
            break;
        case OPT_TIMEOUT_MS:
            if (kc_parse_long(optarg, 1, 86400000L, &k->timeout_ms) != 0)
                goto bad;
            break;
        default:
            return -EINVAL;
        }
    }
    if (optind != argc) {
        kc_err("unexpected argument: %s", argv[optind]);
        return -EINVAL;
    }
    if (c->brokers == NULL || c->topic == NULL) {
        kc_err("-b and -t are required");
        return -EINVAL;
    }
    if (cmd == KC_CMD_COMMITTED && k->group == NULL) {
        kc_err("committed needs --group");
        return -EINVAL;
    }
    if (cmd == KC_CMD_PRODUCE && p->n < 0) {
        kc_err("produce needs -n");
        return -EINVAL;
    }
    return 0;
bad:
    kc_err("invalid value for %s: %s", name, optarg);
    return -EINVAL;
}

int main(int argc, char **argv)
{
    kc_produce_t p;
    kc_consume_t k;
    long partitions = 1;
    kc_cmd_t cmd;
    int rc;

    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(kc_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? KC_EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "produce") == 0) {
        cmd = KC_CMD_PRODUCE;
    } else if (strcmp(argv[1], "consume") == 0) {
        cmd = KC_CMD_CONSUME;
    } else if (strcmp(argv[1], "create") == 0) {
        cmd = KC_CMD_CREATE;
    } else if (strcmp(argv[1], "committed") == 0) {
        cmd = KC_CMD_COMMITTED;
    } else {
        kc_err("unknown subcommand: %s", argv[1]);
        fputs(kc_usage, stderr);
        return KC_EXIT_USAGE;
    }

    memset(&p, 0, sizeof(p));
    p.n = -1;
    p.acks = "all";
    p.prefix = "k";
    p.partition = RD_KAFKA_PARTITION_UA;
    p.linger_ms = 5;
    p.message_timeout_ms = 60000;
    p.flush_timeout_ms = -1;
    memset(&k, 0, sizeof(k));
    k.expect = -1;
    k.timeout_ms = 30000;

    rc = kc_parse_args(cmd, argc - 1, argv + 1, &p, &k, &partitions);
    if (rc == 1) {
        fputs(kc_usage, stdout);
        return 0;
    }
    if (rc < 0)
        return KC_EXIT_USAGE;
    if (p.flush_timeout_ms < 0)
        p.flush_timeout_ms = p.message_timeout_ms + 10000;

    /* Line-buffered stderr keeps messages whole when the tests interleave
     * them with other processes' output. */
    setvbuf(stderr, NULL, _IOLBF, 0);
    kc_install_signals();
    switch (cmd) {
    case KC_CMD_PRODUCE:
        return kc_produce_run(&p);
    case KC_CMD_CONSUME:
        return kc_consume_run(&k);
    case KC_CMD_CREATE:
        return kc_create_run(&p.c, (int)partitions);
    case KC_CMD_COMMITTED:
        return kc_committed_run(&k);
    }
    return KC_EXIT_USAGE;
}
