/* SPDX-License-Identifier: Apache-2.0 */
/* dp_proc: the processor role (docs/internals/processor.md). One loop thread
 * owns everything: librdkafka consumers (explicit assignment, offsets from
 * the checkpoint, never committed to Kafka), the dp_pipe engine, the
 * producers, the clock and the checkpoints. It sleeps in io_uring on an
 * eventfd the consumer queues signal, a signalfd and a 10 ms timeout.
 * librdkafka's own threads do the network I/O; the HTTP thread only reads
 * atomics. */
#include "dp_proc.h"

#include "dp_ckpt.h"
#include "dp_http.h"
#include "dp_metrics.h"
#include "dp_pipe.h"
#include "dp_proc_creds.h"
#include "dp_ring.h"
#include "dp_ser.h"
#include "dp_udf.h"
#include "dp_udf_pb.h"
#include "wc_log.h"
#include "wc_spec.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define COMPONENT "processor"

/* Put a limit on everything. */
#define TICK_MS 10                /* engine tick and the longest sleep */
#define BATCH_MAX 1024            /* records taken from a consumer queue at once */
#define HELD_SOFT (2 * BATCH_MAX) /* stop polling with this many records not yet pushed */
#define HELD_MAX 65536            /* never hold more (backpressure catch-up) */
#define TOPIC_WAIT_MS 60000       /* inputs/outputs must exist within this at start */
#define METADATA_TIMEOUT_MS 5000  /* one metadata / watermark request */
#define FLUSH_TIMEOUT_MS 30000    /* outputs must be delivered within this for a checkpoint */
#define LAG_EVERY_MS 1000         /* consumer lag refresh */
#define LOG_EVERY_MS 1000         /* repeated warnings: at most one line per kind per second */
#define CLUSTERS_MAX 64           /* distinct clusters (consumers or producers) */
#define HDRS_MAX 65536            /* headers of one record handed to the engine */
#define UDF_READY_MS 60000        /* default bound on the start-up wait for a UDF */
#define UDF_DRAIN_MS 30000        /* UDF calls must finish within this for a checkpoint */
#define UDF_CLOSE_MS 5000         /* closing the UDF clients at exit */
#define UDF_STATUS_N 17           /* gRPC status codes 0..16 */

typedef struct proc proc_t;

/* One owned input partition. Counters are read by the HTTP thread. */
typedef struct proc_part {
    uint32_t input;
    int32_t partition;
    int64_t next_offset;  /* next offset to read: last pushed + 1, or where we started */
    bool blocked;         /* the engine refused its head record in this walk */
    bool paused;          /* paused in librdkafka (backpressure) */
    dp_counter_t records; /* records pushed */
    dp_gauge_t lag;       /* high watermark - next_offset (cached metadata) */
} proc_part_t;

typedef struct proc_input {
    const char *name;
    const char *topic;
    uint32_t consumer;
    uint32_t first_part; /* its partitions are parts[first_part .. first_part+nparts) */
    uint32_t nparts;
    int32_t max_part;
    int32_t *part_index; /* partition number -> index into parts[], -1 if not owned */
    bool start_latest;
    const rd_kafka_topic_t *rkt; /* the consumer's handle, learnt from the first record */
} proc_input_t;

/* A librdkafka client for one cluster (bootstrap + properties). */
typedef struct proc_client {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue; /* consumers: the consumer queue */
    const json_t *cluster;   /* borrowed from the spec */
    char *key;               /* canonical cluster JSON, to share clients */
    bool assigned;           /* consumers: rd_kafka_assign done (records may come) */
} proc_client_t;

typedef struct proc_output {
    const char *name;
    const char *topic;
    uint32_t producer;
    int32_t partitions;
    rd_kafka_topic_t *rkt;
    dp_counter_t records;
} proc_output_t;

/* One spec udf: its dp_udf client and counters (read by the HTTP thread). */
typedef struct proc_udf {
    const char *name;
    char host[256];
    uint16_t port;
    dp_udf_client_t *client;
    char content_type[128];
    char multipart[160]; /* window calls: multipart/<subtype of contentType> */
    uint32_t timeout_ms, ready_ms;
    uint32_t retry_max, backoff_min_ms, backoff_max_ms;
    bool non_idempotent;
    bool bistream; /* mode: bistream */
    bool closed;
    dp_counter_t calls;   /* attempts accepted by dp_udf */
    dp_counter_t retries; /* attempts that were retries */
    dp_counter_t errors[UDF_STATUS_N];
    dp_counter_t dead_letters; /* records given up after the retry budget */
    dp_gauge_t in_flight;      /* attempts outstanding in dp_udf */
    dp_gauge_t waiting;        /* calls waiting for a slot or a retry backoff */
    dp_hist_t latency;         /* per attempt, accept to completion */
} proc_udf_t;

/* The per-UDF counters and gauges /metrics renders, one series per UDF. */
typedef struct udf_series {
    const char *name, *help;
    size_t off; /* of a dp_counter_t, or of a dp_gauge_t when gauge */
    bool gauge;
} udf_series_t;

static const udf_series_t udf_series[] = {
    {"weir_processor_udf_calls_total", "UDF call attempts accepted (retries included)",
     offsetof(proc_udf_t, calls), false},
    {"weir_processor_udf_retries_total", "UDF call attempts that were retries",
     offsetof(proc_udf_t, retries), false},
    {"weir_processor_udf_dead_letters_total", "Records dead-lettered after the UDF retry budget",
     offsetof(proc_udf_t, dead_letters), false},
    {"weir_processor_udf_in_flight", "UDF call attempts outstanding",
     offsetof(proc_udf_t, in_flight), true},
    {"weir_processor_udf_waiting", "UDF calls waiting for a free slot or a retry backoff",
     offsetof(proc_udf_t, waiting), true},
};

/* One UDF call (a record, or a window's records), with its own copy of the
 * request so it can be retried, and of the reply until the loop feeds it to
 * the engine (completions never call into the engine: they may run inside
 * the emit callback's producer wait). */
typedef struct udf_call {
    struct udf_call *next;
    struct proc *p;
    uint32_t udf, op;
    const char *key;
    const char *payload;
    dp_hdr_t *hdrs; /* the record's headers, then contentType (and window headers) */
    uint32_t key_len, payload_len, nhdrs, nrec_hdrs;
    int64_t event_ms, ts_ms, offset;
    int32_t partition;
    uint32_t input;
    bool window;
    uint32_t attempts;
    int64_t retry_at_ms; /* monotonic; 0: send now */
    int64_t sent_ns;
    /* the outcome */
    int status;
    char *error; /* failures */
    char *rbuf;  /* OK: reply payload and header bytes */
    dp_hdr_t *rhdrs;
    uint32_t rpayload_len, nrhdrs;
    bool multipart;    /* OK: the reply is a GrpcPayloadCollection */
    char wvals[3][24]; /* window calls: windowStartTime, windowEndTime, partial */
} udf_call_t;

typedef struct proc_held {
    rd_kafka_message_t *msg;
    uint32_t part;
} proc_held_t;

/* Published for the HTTP thread (relaxed atomics). */
typedef struct proc_metrics {
    dp_counter_t records_in, records_out, dead_letters, dead_letters_dropped, filtered;
    dp_counter_t late_dropped, late_side, late_upserts, windows_fired, joins_emitted;
    dp_counter_t backpressure, delivery_errors, consume_errors;
    dp_counter_t checkpoints, checkpoint_failures;
    dp_gauge_t state_bytes, watermark_ms, paused, checkpoint_last_id, checkpoint_bytes;
    dp_hist_t checkpoint_latency;
} proc_metrics_t;

struct proc {
    const dp_proc_config_t *cfg;
    json_t *spec;
    const char *name;
    uint64_t spec_hash;
    int64_t ckpt_interval_ms;
    uint32_t ckpt_retain;
    char ckpt_dir[4096];
    int http_port;
    dp_proc_creds_t creds; /* WEIR_KAFKA_* credentials, applied to every client */

    dp_pipe_t *pipe;
    dp_ckpt_t *ckpt;
    dp_http_t *http;
    dp_ring_t ring;
    bool ring_ok;

    proc_input_t *inputs;
    uint32_t ninputs;
    proc_part_t *parts;
    uint32_t nparts;
    proc_output_t *outputs; /* spec outputs, then the dead-letter output if any */
    uint32_t noutputs;
    proc_output_t *dlq;
    proc_client_t consumers[CLUSTERS_MAX];
    uint32_t nconsumers;
    proc_client_t producers[CLUSTERS_MAX];
    uint32_t nproducers;

    proc_held_t *held;
    uint32_t nheld;
    dp_hdr_t *hdrs;
    uint32_t hdrs_cap;
    dp_ser_w_t state_buf; /* reused by every checkpoint */
    dp_ckpt_offset_t *ckpt_offs;

    /* io_uring wake-ups */
    int efd, sfd;
    uint64_t ev_buf;
    struct signalfd_siginfo sig_buf;
    dp_ring_op_t ev_op, sig_op;

    /* What the last checkpoint saw: an idle processor skips checkpoints
     * that would only repeat it. */
    bool have_ckpt;
    uint64_t pushed_since_ckpt;
    uint64_t ckpt_records_out, ckpt_dead_letters;
    int64_t ckpt_watermark;
    size_t ckpt_state_bytes;

    proc_udf_t *udfs;
    uint32_t nudfs;
    udf_call_t *pend_head, *pend_tail; /* to send: new (slots full) or backing off */
    udf_call_t *done_head, *done_tail; /* completed, to feed to the engine */
    uint64_t udf_outstanding;          /* calls submitted and not yet fed back */
    uint64_t udf_pend_ready;           /* pending calls with no backoff (slot wait) */
    uint64_t udf_limit;                /* outstanding calls above which inputs wait */
    bool udf_closing;
    uint64_t rng;
    dp_counter_t udf_blocked_total; /* passes in which inputs waited for UDF slots */
    dp_gauge_t udf_blocked;

    bool bp_active;    /* inputs paused for backpressure */
    int64_t bp_target; /* the part left running, -1: none */
    bool stop;
    int stop_signal;
    bool output_lost; /* an output was given up: no checkpoint may claim its input */
    bool fatal;
    /* The last authentication failure a client reported (loop thread), so
     * that the start-up wait for topics names it instead of a bare
     * "transport failure". */
    char auth_error[256];
    _Atomic bool ready;
    _Atomic bool stopping;
    int64_t last_log_ms[8];
    proc_metrics_t m;
};

enum { LOGK_CONSUME, LOGK_DELIVERY, LOGK_PRODUCE, LOGK_CLIENT, LOGK_DLQ, LOGK_UDF };

void dp_proc_config_defaults(dp_proc_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->data_dir = "/var/lib/weir";
    cfg->http_port = -1;
    cfg->replicas = 1;
}

/* ---- clocks and small helpers ------------------------------------------- */

static int64_t realtime_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
    return mono_ns() / 1000000;
}

/* Repeated warnings (a broker down, a stream of failed deliveries) are
 * written at most once per second per kind; counters carry the totals. */
static bool log_allowed(proc_t *p, int kind)
{
    int64_t now = mono_ms();

    if (p->last_log_ms[kind] != 0 && now - p->last_log_ms[kind] < LOG_EVERY_MS)
        return false;
    p->last_log_ms[kind] = now;
    return true;
}

static const char *jstr(const json_t *o, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : def;
}

static json_int_t jint(const json_t *o, const char *key, json_int_t def)
{
    json_t *v = json_object_get(o, key);

    return json_is_integer(v) ? json_integer_value(v) : def;
}

/* ---- librdkafka callbacks ------------------------------------------------ */

/* Runs on librdkafka threads: wc_log writes each line with one fwrite. */
static void rk_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    wc_log_level_t l = level <= 3   ? WC_LOG_ERROR
                       : level == 4 ? WC_LOG_WARN
                       : level <= 6 ? WC_LOG_INFO
                                    : WC_LOG_DEBUG;

    wc_log(l, "librdkafka", buf, "{s:s, s:s}", "client", rd_kafka_name(rk), "facility", fac);
}

/* Runs on the loop thread (from rd_kafka_poll, flush or the consumer queue). */
static void rk_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    proc_t *p = opaque;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));

        wc_log(WC_LOG_ERROR, COMPONENT, "fatal Kafka client error", "{s:s, s:s, s:s}", "client",
               rd_kafka_name(rk), "error", rd_kafka_err2name(orig), "reason", why);
        p->fatal = true;
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION)
        snprintf(p->auth_error, sizeof(p->auth_error), "%s", reason);
    if (log_allowed(p, LOGK_CLIENT))
        wc_log(WC_LOG_WARN, COMPONENT, "Kafka client error", "{s:s, s:s, s:s}", "client",
               rd_kafka_name(rk), "error", rd_kafka_err2name(err), "reason", reason);
}

/* Delivery reports. With message.timeout.ms=0 librdkafka retries every
 * retriable error until it succeeds, so a failure here is permanent (too
 * large, not authorized, purged at exit): replaying would fail again. */
static void rk_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    proc_t *p = opaque;

    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    dp_counter_add(&p->m.delivery_errors, 1);
    if (msg->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
        msg->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT && log_allowed(p, LOGK_DELIVERY))
        wc_log(WC_LOG_ERROR, COMPONENT, "output record not delivered", "{s:s, s:i, s:s, s:I}",
               "topic", rd_kafka_topic_name(msg->rkt), "partition", (int)msg->partition, "error",
               rd_kafka_err2str(msg->err), "failed_total",
               (json_int_t)dp_counter_get(&p->m.delivery_errors));
}

/* ---- clients -------------------------------------------------------------- */

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errlen)
{
    char why[256];

    if (rd_kafka_conf_set(conf, k, v, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        /* librdkafka's reason can quote the value too: say nothing of a secret. */
        if (dp_proc_creds_sensitive(k))
            snprintf(err, errlen, "librdkafka property %s: value refused (redacted)", k);
        else
            snprintf(err, errlen, "librdkafka property %s=%s: %s", k, v, why);
        return -EINVAL;
    }
    return 0;
}

/* Index of the client for `cluster` in `set`, creating the slot (not the
 * handle) when new. -ENOSPC past CLUSTERS_MAX. */
static int client_slot(proc_client_t *set, uint32_t *n, const json_t *cluster)
{
    char *key = json_dumps(cluster, JSON_COMPACT | JSON_SORT_KEYS);

    if (key == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < *n; i++)
        if (strcmp(set[i].key, key) == 0) {
            free(key);
            return (int)i;
        }
    if (*n == CLUSTERS_MAX) {
        free(key);
        return -ENOSPC;
    }
    set[*n].key = key;
    set[*n].cluster = cluster;
    return (int)(*n)++;
}

static const char *env_get(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

static int client_new(proc_t *p, proc_client_t *c, rd_kafka_type_t type, uint32_t idx, char *err,
                      size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const json_t *props = json_object_get(c->cluster, "properties");
    const char *k;
    json_t *v;
    char id[300], why[512];
    int rc = 0;

    snprintf(id, sizeof(id), "weir-%s-%s%u", p->name, type == RD_KAFKA_CONSUMER ? "in" : "out",
             idx);
    /* Precedence, lowest first: the WEIR_KAFKA_* credentials from the
     * environment; the spec's extra properties (the user wrote them for this
     * cluster, so they override a Secret's defaults); Weir's own settings
     * below, which the guarantees rest on, so they win. */
    rc = dp_proc_creds_apply(&p->creds, conf, err, errlen);
    json_object_foreach ((json_t *)props, k, v) {
        if (rc == 0)
            rc = conf_set(conf, k, json_string_value(v), err, errlen);
    }
    if (rc == 0)
        rc = conf_set(conf, "bootstrap.servers", jstr(c->cluster, "bootstrap", ""), err, errlen);
    if (rc == 0)
        rc = conf_set(conf, "client.id", id, err, errlen);
    if (type == RD_KAFKA_CONSUMER) {
        char group[300];

        /* librdkafka's assign() needs a group id; nothing joins the group
         * and no offset is ever committed to it. */
        snprintf(group, sizeof(group), "weir-processor-%s", p->name);
        if (rc == 0)
            rc = conf_set(conf, "group.id", group, err, errlen);
        if (rc == 0)
            rc = conf_set(conf, "enable.auto.commit", "false", err, errlen);
        if (rc == 0)
            rc = conf_set(conf, "enable.auto.offset.store", "false", err, errlen);
        if (rc == 0)
            rc = conf_set(conf, "enable.partition.eof", "false", err, errlen);
        /* A checkpointed offset that retention deleted: replay what is left. */
        if (rc == 0)
            rc = conf_set(conf, "auto.offset.reset", "earliest", err, errlen);
    } else {
        if (rc == 0)
            rc = conf_set(conf, "acks", "all", err, errlen);
        if (rc == 0)
            rc = conf_set(conf, "enable.idempotence", "true", err, errlen);
        if (rc == 0)
            rc = conf_set(conf, "message.timeout.ms", "0", err, errlen);
        if (rc == 0)
            rc = conf_set(conf, "partitioner", "murmur2_random", err, errlen);
        if (rc == 0)
            rc = conf_set(conf, "linger.ms", "5", err, errlen);
        rd_kafka_conf_set_dr_msg_cb(conf, rk_dr_cb);
    }
    if (rc != 0) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_log_cb(conf, rk_log_cb);
    rd_kafka_conf_set_error_cb(conf, rk_error_cb);
    rd_kafka_conf_set_opaque(conf, p);
    c->rk = rd_kafka_new(type, conf, why, sizeof(why));
    if (c->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "librdkafka %s for %s: %s%s",
                 type == RD_KAFKA_CONSUMER ? "consumer" : "producer",
                 jstr(c->cluster, "bootstrap", "?"), why,
                 p->creds.n > 0 ? " (with the WEIR_KAFKA_* credentials from the environment)" : "");
        return -EINVAL;
    }
    if (type == RD_KAFKA_CONSUMER) {
        static const uint64_t one = 1;

        rd_kafka_poll_set_consumer(c->rk);
        c->queue = rd_kafka_queue_get_consumer(c->rk);
        /* The queue writes 8 bytes to the eventfd when it becomes non-empty:
         * the loop sleeps in io_uring and wakes for records. */
        rd_kafka_queue_io_event_enable(c->queue, p->efd, &one, sizeof(one));
    }
    return 0;
}

/* ---- emit: engine output to a producer ---------------------------------- */

static void on_emit(void *ctx, const dp_pipe_out_t *out)
{
    proc_t *p = ctx;
    proc_output_t *o;
    rd_kafka_t *rk;
    rd_kafka_headers_t *hdrs = NULL;
    const char *pk = out->part_key != NULL ? out->part_key : out->key;
    uint32_t pklen = out->part_key != NULL ? out->part_key_len : out->key_len;
    int32_t part = RD_KAFKA_PARTITION_UA;
    rd_kafka_resp_err_t e;

    if (out->output == DP_PIPE_DLQ) {
        if (p->dlq == NULL) {
            dp_counter_add(&p->m.dead_letters_dropped, 1);
            if (log_allowed(p, LOGK_DLQ))
                wc_log(WC_LOG_WARN, COMPONENT,
                       "dead letter dropped: the spec has no deadLetter output", NULL);
            return;
        }
        o = p->dlq;
    } else {
        if (out->output >= p->noutputs) {
            dp_counter_add(&p->m.dead_letters_dropped, 1);
            return;
        }
        o = &p->outputs[out->output];
    }
    rk = p->producers[o->producer].rk;
    /* Kafka's default partitioner: murmur2 of the key bytes, positive, mod
     * the partition count. A record with no key at all goes where
     * librdkafka's murmur2_random puts it (a random partition). */
    if (pk != NULL && o->partitions > 0)
        part = rd_kafka_msg_partitioner_murmur2(o->rkt, pk, pklen, o->partitions, NULL, NULL);
    if (out->nhdrs > 0) {
        hdrs = rd_kafka_headers_new(out->nhdrs);
        for (uint32_t i = 0; i < out->nhdrs; i++)
            rd_kafka_header_add(hdrs, out->hdrs[i].name, (ssize_t)out->hdrs[i].name_len,
                                out->hdrs[i].val,
                                out->hdrs[i].val ? (ssize_t)out->hdrs[i].val_len : 0);
    }
    for (;;) {
        e = rd_kafka_producev(
            rk, RD_KAFKA_V_RKT(o->rkt), RD_KAFKA_V_PARTITION(part),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(out->key, out->key ? out->key_len : 0),
            RD_KAFKA_V_VALUE((void *)out->payload, out->payload ? out->payload_len : 0),
            RD_KAFKA_V_TIMESTAMP(out->ts_ms > 0 ? out->ts_ms : 0), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || p->fatal)
            break;
        /* Output backpressure: the producer's queue is full, so wait for
         * deliveries; the loop (and so the inputs) stalls meanwhile. A
         * signal still ends the wait: the record is then given up, and so
         * is every later checkpoint of this run. */
        rd_kafka_poll(rk, TICK_MS);
        dp_ring_run_once(&p->ring, 0, 0);
        if (p->stop) {
            p->output_lost = true;
            break;
        }
    }
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        dp_counter_add(&o->records, 1);
        return;
    }
    if (hdrs != NULL)
        rd_kafka_headers_destroy(hdrs); /* not taken over on failure */
    dp_counter_add(&p->m.delivery_errors, 1);
    if (log_allowed(p, LOGK_PRODUCE))
        wc_log(WC_LOG_ERROR, COMPONENT, "output record refused by the producer",
               "{s:s, s:s, s:i, s:s}", "output", o->name, "topic", o->topic, "partition", (int)part,
               "error", rd_kafka_err2str(e));
}

/* ---- UDF channel: dp_udf clients behind dp_pipe's udf_submit ------------ */

static uint64_t udf_rand(proc_t *p)
{
    /* xorshift64*: jitter only */
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return p->rng * 2685821657736338717ULL;
}

static void udf_call_free(udf_call_t *c)
{
    if (c == NULL)
        return;
    free(c->error);
    free(c->rbuf);
    free(c->rhdrs);
    free(c);
}

static void udf_pend_push(proc_t *p, udf_call_t *c)
{
    c->next = NULL;
    if (p->pend_tail != NULL)
        p->pend_tail->next = c;
    else
        p->pend_head = c;
    p->pend_tail = c;
    if (c->retry_at_ms == 0)
        p->udf_pend_ready++;
    dp_gauge_add(&p->udfs[c->udf].waiting, 1);
}

static void udf_done_push(proc_t *p, udf_call_t *c)
{
    c->next = NULL;
    if (p->done_tail != NULL)
        p->done_tail->next = c;
    else
        p->done_head = c;
    p->done_tail = c;
}

/* Whether a failed attempt is retried: UNAVAILABLE, RESOURCE_EXHAUSTED and
 * CANCELLED not caused by our own close (grpcio's graceful shutdown) always;
 * with retry.nonIdempotent also the failures after which the UDF may have
 * run the call (DEADLINE_EXCEEDED, UNKNOWN, INTERNAL, ABORTED). */
static bool udf_retryable(const proc_t *p, const proc_udf_t *u, int status)
{
    if (p->udf_closing)
        return false;
    if (dp_udf_status_retryable(status) || status == DP_UDF_CANCELLED)
        return true;
    return u->non_idempotent && (status == DP_UDF_DEADLINE_EXCEEDED || status == DP_UDF_UNKNOWN ||
                                 status == DP_UDF_INTERNAL || status == DP_UDF_ABORTED);
}

static void udf_done_cb(void *ctx, const dp_udf_reply_t *r);

/* Inputs wait while a call waits for a dp_udf slot (-EBUSY), or while more
 * calls are outstanding (in flight, backing off or not yet fed back) than
 * twice the UDFs' maxInFlight: a UDF outage does not pile up retries. */
static bool udf_blocked(const proc_t *p)
{
    return p->nudfs > 0 && (p->udf_pend_ready > 0 || p->udf_outstanding >= p->udf_limit);
}

/* Hands one attempt to dp_udf. Returns 0, -EBUSY (no slot), or another
 * -errno (the call has failed for good). */
static int udf_send(proc_t *p, udf_call_t *c)
{
    proc_udf_t *u = &p->udfs[c->udf];
    dp_udf_msg_t m = {
        .payload = c->payload, .payload_len = c->payload_len, .hdrs = c->hdrs, .nhdrs = c->nhdrs};
    int rc;

    if (u->client == NULL)
        return -ESHUTDOWN;
    c->sent_ns = mono_ns();
    rc = dp_udf_call(u->client, &m, udf_done_cb, c);
    if (rc == 0) {
        c->attempts++;
        dp_counter_add(&u->calls, 1);
        if (c->attempts > 1)
            dp_counter_add(&u->retries, 1);
        dp_gauge_add(&u->in_flight, 1);
    }
    return rc;
}

/* Records a final failure (the engine dead-letters it with
 * weir.grpc.status) on the done list. */
static void udf_fail(proc_t *p, udf_call_t *c, int status, const char *why)
{
    char buf[512];

    snprintf(buf, sizeof(buf), "%s after %u attempt%s: %s", dp_udf_status_str(status), c->attempts,
             c->attempts == 1 ? "" : "s", why);
    free(c->error);
    c->error = strdup(buf);
    c->status = status != 0 ? status : DP_UDF_UNKNOWN;
    dp_counter_add(&p->udfs[c->udf].dead_letters, 1);
    udf_done_push(p, c);
}

/* dp_udf completion: runs from a ring callback, possibly while on_emit
 * waits for the producer, so it only records the outcome. */
static void udf_done_cb(void *ctx, const dp_udf_reply_t *r)
{
    udf_call_t *c = ctx;
    proc_t *p = c->p;
    proc_udf_t *u = &p->udfs[c->udf];
    size_t need = r->payload_len;

    dp_gauge_add(&u->in_flight, -1);
    dp_hist_record_ns(&u->latency, (uint64_t)(mono_ns() - c->sent_ns));
    if (r->status >= 0 && r->status < UDF_STATUS_N && r->status != DP_UDF_OK)
        dp_counter_add(&u->errors[r->status], 1);
    if (p->udf_closing) {
        udf_call_free(c);
        return;
    }
    if (r->status != DP_UDF_OK) {
        if (udf_retryable(p, u, r->status) && c->attempts <= u->retry_max) {
            /* exponential backoff, half of it jitter */
            uint64_t d = u->backoff_min_ms;

            for (uint32_t i = 1; i < c->attempts && d < u->backoff_max_ms; i++)
                d *= 2;
            if (d > u->backoff_max_ms)
                d = u->backoff_max_ms;
            d = d / 2 + udf_rand(p) % (d / 2 + 1);
            c->retry_at_ms = mono_ms() + (int64_t)(d > 0 ? d : 1);
            udf_pend_push(p, c);
            return;
        }
        if (log_allowed(p, LOGK_UDF))
            wc_log(WC_LOG_WARN, COMPONENT, "UDF call failed, record dead-lettered",
                   "{s:s, s:s, s:s, s:i}", "udf", u->name, "status", dp_udf_status_str(r->status),
                   "message", r->message ? r->message : "", "attempts", (int)c->attempts);
        udf_fail(p, c, r->status, r->message ? r->message : "");
        return;
    }
    for (uint32_t i = 0; i < r->nhdrs; i++)
        need += (size_t)r->hdrs[i].name_len + (r->hdrs[i].val ? r->hdrs[i].val_len : 0);
    c->rbuf = malloc(need ? need : 1);
    c->rhdrs = calloc(r->nhdrs ? r->nhdrs : 1, sizeof(*c->rhdrs));
    if (c->rbuf == NULL || c->rhdrs == NULL) {
        udf_fail(p, c, DP_UDF_RESOURCE_EXHAUSTED, "out of memory for the reply");
        return;
    }
    if (r->payload_len > 0)
        memcpy(c->rbuf, r->payload, r->payload_len);
    c->rpayload_len = r->payload_len;
    need = r->payload_len;
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        const dp_hdr_t *h = &r->hdrs[i];

        memcpy(c->rbuf + need, h->name, h->name_len);
        c->rhdrs[i].name = c->rbuf + need;
        c->rhdrs[i].name_len = h->name_len;
        need += h->name_len;
        if (h->val != NULL) {
            memcpy(c->rbuf + need, h->val, h->val_len);
            c->rhdrs[i].val = c->rbuf + need;
            c->rhdrs[i].val_len = h->val_len;
            need += h->val_len;
        } else {
            c->rhdrs[i].val = "";
        }
        if (c->window && h->name_len == 11 && memcmp(h->name, "contentType", 11) == 0 &&
            h->val != NULL && h->val_len >= 10 && memcmp(h->val, "multipart/", 10) == 0)
            c->multipart = true;
    }
    c->nrhdrs = r->nhdrs;
    c->status = DP_UDF_OK;
    udf_done_push(p, c);
}

/* Sends pending calls whose backoff is over, in order, until dp_udf has no
 * slot left. */
static void udf_pump(proc_t *p)
{
    udf_call_t **pp = &p->pend_head, *prev = NULL;
    int64_t now = -1;

    while (*pp != NULL) {
        udf_call_t *c = *pp;
        int rc;

        if (c->retry_at_ms != 0) {
            if (now < 0)
                now = mono_ms();
            if (c->retry_at_ms > now) {
                prev = c;
                pp = &c->next;
                continue;
            }
        }
        rc = udf_send(p, c);
        if (rc == -EBUSY)
            break; /* in order: nothing after it goes first */
        *pp = c->next;
        if (p->pend_tail == c)
            p->pend_tail = prev;
        if (c->retry_at_ms == 0)
            p->udf_pend_ready--;
        dp_gauge_add(&p->udfs[c->udf].waiting, -1);
        if (rc != 0)
            udf_fail(p, c, DP_UDF_RESOURCE_EXHAUSTED, strerror(-rc));
    }
}

/* Feeds completed calls to the engine. Never called from inside the engine
 * (nor from on_emit). Returns the number fed. */
static uint32_t udf_feed(proc_t *p, int64_t now)
{
    uint32_t n = 0;

    while (p->done_head != NULL) {
        udf_call_t *c = p->done_head;
        dp_pipe_udf_reply_t r = {.op = c->op,
                                 .grpc_status = c->status,
                                 .error = c->error,
                                 .key = c->key,
                                 .key_len = c->key_len,
                                 .event_ms = c->event_ms,
                                 .ts_ms = c->ts_ms,
                                 .offset = c->offset,
                                 .partition = c->partition,
                                 .input = c->input};

        p->done_head = c->next;
        if (p->done_head == NULL)
            p->done_tail = NULL;
        if (c->status != DP_UDF_OK) {
            r.payload = c->payload;
            r.payload_len = c->payload_len;
            r.hdrs = c->hdrs;
            r.nhdrs = c->nrec_hdrs;
            dp_pipe_udf_result(p->pipe, &r, now);
        } else if (c->multipart) {
            /* a window UDF answering with a GrpcPayloadCollection: one
             * output record per payload, each with the reply's headers */
            Org__Springframework__Cloud__Function__Grpc__GrpcPayloadCollection *col =
                org__springframework__cloud__function__grpc__grpc_payload_collection__unpack(
                    NULL, c->rpayload_len, (const uint8_t *)c->rbuf);

            r.hdrs = c->rhdrs;
            r.nhdrs = c->nrhdrs;
            if (col == NULL) {
                r.grpc_status = DP_UDF_INTERNAL;
                r.error = "malformed GrpcPayloadCollection reply";
                r.payload = c->payload;
                r.payload_len = c->payload_len;
                r.hdrs = c->hdrs;
                r.nhdrs = c->nrec_hdrs;
                dp_pipe_udf_result(p->pipe, &r, now);
            } else {
                for (size_t i = 0; i < col->n_payload; i++) {
                    r.payload = (const char *)col->payload[i].data;
                    r.payload_len = (uint32_t)col->payload[i].len;
                    dp_pipe_udf_result(p->pipe, &r, now);
                }
                org__springframework__cloud__function__grpc__grpc_payload_collection__free_unpacked(
                    col, NULL);
            }
        } else {
            r.payload = c->rbuf;
            r.payload_len = c->rpayload_len;
            r.hdrs = c->rhdrs;
            r.nhdrs = c->nrhdrs;
            dp_pipe_udf_result(p->pipe, &r, now);
        }
        p->udf_outstanding--;
        udf_call_free(c);
        n++;
    }
    return n;
}

static size_t hdr_bytes(const dp_hdr_t *h, uint32_t n)
{
    size_t b = 0;

    for (uint32_t i = 0; i < n; i++)
        b += (size_t)h[i].name_len + (h[i].val ? h[i].val_len : 0);
    return b;
}

/* dp_pipe's udf_submit: copies the request (a record, or a window's records
 * packed as a GrpcPayloadCollection) and sends it, or queues it when every
 * dp_udf slot is taken (the loop then stops pushing records). */
static int udf_submit(void *ctx, const dp_pipe_udf_req_t *q)
{
    proc_t *p = ctx;
    proc_udf_t *u;
    Org__Springframework__Cloud__Function__Grpc__GrpcPayloadCollection col =
        ORG__SPRINGFRAMEWORK__CLOUD__FUNCTION__GRPC__GRPC_PAYLOAD_COLLECTION__INIT;
    ProtobufCBinaryData *items = NULL;
    char win[3][32];
    size_t plen = q->payload_len, need;
    uint32_t nrec = q->window ? 0 : q->nhdrs, nh;
    udf_call_t *c;
    char *w;
    int rc;

    if (q->udf >= p->nudfs)
        return -EINVAL;
    u = &p->udfs[q->udf];
    if (q->window) {
        items = calloc(q->nrecs ? q->nrecs : 1, sizeof(*items));
        if (items == NULL)
            return -ENOMEM;
        for (uint32_t i = 0; i < q->nrecs; i++) {
            items[i].data = (uint8_t *)(uintptr_t)q->recs[i].payload;
            items[i].len = q->recs[i].payload ? q->recs[i].payload_len : 0;
        }
        col.n_payload = q->nrecs;
        col.payload = items;
        plen =
            org__springframework__cloud__function__grpc__grpc_payload_collection__get_packed_size(
                &col);
        snprintf(win[0], sizeof(win[0]), "%" PRId64, q->win_start_ms);
        snprintf(win[1], sizeof(win[1]), "%" PRId64, q->win_end_ms);
        snprintf(win[2], sizeof(win[2]), "%s", q->partial ? "true" : "false");
    }
    nh = nrec + 1 + (q->window ? 3 : 0);
    need = sizeof(*c) + sizeof(dp_hdr_t) * nh + q->key_len + plen + hdr_bytes(q->hdrs, nrec);
    c = calloc(1, need);
    if (c == NULL) {
        free(items);
        return -ENOMEM;
    }
    c->p = p;
    c->udf = q->udf;
    c->op = q->op;
    c->hdrs = (dp_hdr_t *)(c + 1);
    w = (char *)(c->hdrs + nh);
    if (q->key != NULL) {
        memcpy(w, q->key, q->key_len);
        c->key = w;
        c->key_len = q->key_len;
        w += q->key_len;
    }
    if (q->window) {
        org__springframework__cloud__function__grpc__grpc_payload_collection__pack(&col,
                                                                                   (uint8_t *)w);
        free(items);
        c->payload = w;
        c->payload_len = (uint32_t)plen;
        w += plen;
    } else if (q->payload != NULL) {
        memcpy(w, q->payload, q->payload_len);
        c->payload = w;
        c->payload_len = q->payload_len;
        w += q->payload_len;
    }
    /* The record's headers (a contentType of its own is replaced by the
     * UDF's), then contentType; the dead-letter path sends the first
     * nrec_hdrs back as the original headers. */
    for (uint32_t i = 0; i < nrec; i++) {
        const dp_hdr_t *h = &q->hdrs[i];
        dp_hdr_t *d = &c->hdrs[c->nhdrs];

        memcpy(w, h->name, h->name_len);
        d->name = w;
        d->name_len = h->name_len;
        w += h->name_len;
        d->val = NULL;
        if (h->val != NULL) {
            memcpy(w, h->val, h->val_len);
            d->val = w;
            d->val_len = h->val_len;
            w += h->val_len;
        }
        if (h->name_len == 11 && memcmp(h->name, "contentType", 11) == 0)
            continue; /* written over by the next header */
        c->nhdrs++;
    }
    c->nrec_hdrs = c->nhdrs;
    c->hdrs[c->nhdrs++] =
        (dp_hdr_t){.name = "contentType",
                   .name_len = 11,
                   .val = q->window ? u->multipart : u->content_type,
                   .val_len = (uint32_t)strlen(q->window ? u->multipart : u->content_type)};
    if (q->window) {
        static const char *const names[3] = {"windowStartTime", "windowEndTime", "partial"};

        for (int i = 0; i < 3; i++) {
            memcpy(c->wvals[i], win[i], sizeof(c->wvals[i]));
            c->hdrs[c->nhdrs++] = (dp_hdr_t){.name = names[i],
                                             .name_len = (uint32_t)strlen(names[i]),
                                             .val = c->wvals[i],
                                             .val_len = (uint32_t)strlen(c->wvals[i])};
        }
    }
    c->event_ms = q->event_ms;
    c->ts_ms = q->ts_ms;
    c->offset = q->offset;
    c->partition = q->partition;
    c->input = q->input;
    c->window = q->window;
    p->udf_outstanding++;
    rc = p->udf_pend_ready > 0 ? -EBUSY : udf_send(p, c);
    if (rc == -EBUSY) {
        udf_pend_push(p, c); /* the loop stops pushing records until it is sent */
        return 0;
    }
    if (rc != 0) {
        p->udf_outstanding--;
        free(c);
        return rc;
    }
    return 0;
}

/* Sends what can be sent and feeds what completed. */
static uint32_t udf_service(proc_t *p, int64_t now)
{
    if (p->nudfs == 0)
        return 0;
    udf_pump(p);
    return udf_feed(p, now);
}

/* Every submitted call is answered and fed to the engine (so a checkpoint
 * never claims an offset whose UDF output is not produced yet), within
 * UDF_DRAIN_MS. Returns 0 or -ETIMEDOUT. */
static int udf_drain(proc_t *p)
{
    int64_t deadline = mono_ms() + UDF_DRAIN_MS;

    for (;;) {
        udf_service(p, realtime_ms());
        if (p->udf_outstanding == 0)
            return 0;
        if (mono_ms() >= deadline)
            return -ETIMEDOUT;
        dp_ring_run_once(&p->ring, 1, TICK_MS);
    }
}

static void ring_sleep(proc_t *p, int ms);

/* Creates a dp_udf client per spec udf and waits (readyTimeoutMs, default
 * 60 s) until each has a connection. Returns 0, -ECANCELED on a signal,
 * or an exit code. */
static int udf_start(proc_t *p)
{
    const json_t *arr = json_object_get(p->spec, "udfs");
    size_t n = json_array_size(arr);
    int64_t t0 = mono_ms(), next_log = t0;

    p->rng = (uint64_t)mono_ns() | 1;
    if (n == 0)
        return 0;
    p->udfs = calloc(n, sizeof(*p->udfs));
    if (p->udfs == NULL)
        return DP_PROC_EXIT_FAIL;
    p->nudfs = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        const json_t *js = json_array_get(arr, i);
        const json_t *rt = json_object_get(js, "retry");
        proc_udf_t *u = &p->udfs[i];
        const char *ep = jstr(js, "endpoint", ""), *colon = strrchr(ep, ':');
        const char *ct = jstr(js, "contentType", "application/json"), *slash = strchr(ct, '/');
        dp_udf_cfg_t cfg = {0};
        long port = colon ? strtol(colon + 1, NULL, 10) : 0;
        int rc;

        u->name = jstr(js, "name", "?");
        dp_hist_init(&u->latency);
        snprintf(u->content_type, sizeof(u->content_type), "%s", ct);
        snprintf(u->multipart, sizeof(u->multipart), "multipart/%s", slash ? slash + 1 : ct);
        u->timeout_ms = (uint32_t)jint(js, "timeoutMs", 5000);
        u->ready_ms = (uint32_t)jint(js, "readyTimeoutMs", UDF_READY_MS);
        u->retry_max = (uint32_t)jint(rt, "max", 5);
        u->backoff_min_ms = (uint32_t)jint(rt, "initialBackoffMs", 50);
        u->backoff_max_ms = (uint32_t)jint(rt, "maxBackoffMs", 5000);
        if (u->backoff_max_ms < u->backoff_min_ms)
            u->backoff_max_ms = u->backoff_min_ms;
        u->non_idempotent = json_is_true(json_object_get(rt, "nonIdempotent"));
        if (colon == NULL || colon == ep || (size_t)(colon - ep) >= sizeof(u->host) || port <= 0 ||
            port > 65535) {
            wc_log(WC_LOG_ERROR, COMPONENT, "bad UDF endpoint", "{s:s, s:s}", "udf", u->name,
                   "endpoint", ep);
            return DP_PROC_EXIT_DATAERR;
        }
        memcpy(u->host, ep, (size_t)(colon - ep));
        u->port = (uint16_t)port;
        cfg.connections = (unsigned)jint(js, "connections", 1);
        cfg.max_in_flight = (unsigned)jint(js, "maxInFlight", 256);
        p->udf_limit += 2 * (uint64_t)cfg.max_in_flight;
        cfg.timeout_ms = u->timeout_ms;
        u->bistream = strcmp(jstr(js, "mode", "unary"), "bistream") == 0;
        cfg.bistream = u->bistream;
        cfg.streams = (unsigned)jint(js, "streams", 1);
        rc = dp_udf_client_new(&p->ring, u->host, u->port, &cfg, &u->client);
        if (rc != 0) {
            wc_log(WC_LOG_ERROR, COMPONENT, "cannot create the UDF client", "{s:s, s:s, s:s}",
                   "udf", u->name, "endpoint", ep, "error", strerror(-rc));
            return rc == -EINVAL || rc == -ENOENT ? DP_PROC_EXIT_DATAERR : DP_PROC_EXIT_FAIL;
        }
    }
    for (;;) {
        uint32_t waiting = 0;
        int64_t now = mono_ms();

        for (uint32_t i = 0; i < p->nudfs; i++) {
            proc_udf_t *u = &p->udfs[i];
            dp_udf_stats_t st;
            char ep[300];

            dp_udf_client_stats(u->client, &st);
            if (st.conns_ready > 0)
                continue;
            waiting++;
            snprintf(ep, sizeof(ep), "%s:%u", u->host, (unsigned)u->port);
            if (now - t0 >= u->ready_ms) {
                wc_log(WC_LOG_ERROR, COMPONENT, "UDF not reachable in time, giving up",
                       "{s:s, s:s, s:i}", "udf", u->name, "endpoint", ep, "waited_ms",
                       (int)u->ready_ms);
                return DP_PROC_EXIT_UNAVAILABLE;
            }
            if (now >= next_log)
                wc_log(WC_LOG_WARN, COMPONENT, "waiting for UDF", "{s:s, s:s, s:I, s:I}", "udf",
                       u->name, "endpoint", ep, "waited_ms", (json_int_t)(now - t0),
                       "gives_up_in_ms", (json_int_t)(u->ready_ms - (now - t0)));
        }
        if (waiting == 0)
            break;
        if (now >= next_log)
            next_log = now + 1000;
        ring_sleep(p, 50);
        if (p->stop)
            return -ECANCELED;
    }
    for (uint32_t i = 0; i < p->nudfs; i++)
        wc_log(WC_LOG_INFO, COMPONENT, "UDF connected", "{s:s, s:s, s:i, s:s, s:I, s:i}", "udf",
               p->udfs[i].name, "host", p->udfs[i].host, "port", (int)p->udfs[i].port, "mode",
               p->udfs[i].bistream ? "bistream" : "unary", "waited_ms",
               (json_int_t)(mono_ms() - t0), "timeout_ms", (int)p->udfs[i].timeout_ms);
    return 0;
}

static void udf_closed_cb(void *ctx)
{
    *(bool *)ctx = true;
}

/* Closes the clients (outstanding calls are dropped: nothing claims them)
 * and frees every call. */
static void udf_close_all(proc_t *p)
{
    int64_t deadline = mono_ms() + UDF_CLOSE_MS;
    bool open = false;

    p->udf_closing = true;
    for (uint32_t i = 0; i < p->nudfs; i++)
        if (p->udfs[i].client != NULL) {
            dp_udf_client_close(p->udfs[i].client, udf_closed_cb, &p->udfs[i].closed);
            open = true;
        }
    while (open && mono_ms() < deadline) {
        open = false;
        for (uint32_t i = 0; i < p->nudfs; i++)
            if (p->udfs[i].client != NULL && !p->udfs[i].closed)
                open = true;
        if (open)
            dp_ring_run_once(&p->ring, 1, TICK_MS);
    }
    if (open)
        wc_log(WC_LOG_WARN, COMPONENT, "UDF clients did not close in time", NULL);
    for (udf_call_t *c = p->pend_head, *n; c != NULL; c = n) {
        n = c->next;
        udf_call_free(c);
    }
    for (udf_call_t *c = p->done_head, *n; c != NULL; c = n) {
        n = c->next;
        udf_call_free(c);
    }
    p->pend_head = p->pend_tail = p->done_head = p->done_tail = NULL;
    free(p->udfs);
    p->udfs = NULL;
    p->nudfs = 0;
}

static void render_udf_metrics(dp_mbuf_t *out, proc_t *p)
{
    char labels[512];

    if (p->nudfs == 0)
        return;
    for (size_t m = 0; m < sizeof(udf_series) / sizeof(udf_series[0]); m++) {
        const udf_series_t *u = &udf_series[m];

        dp_metrics_family(out, u->name, u->help, u->gauge ? DP_METRIC_GAUGE : DP_METRIC_COUNTER);
        for (uint32_t i = 0; i < p->nudfs; i++) {
            const char *field = (const char *)&p->udfs[i] + u->off;

            snprintf(labels, sizeof(labels), "udf=\"%s\"", p->udfs[i].name);
            if (u->gauge)
                dp_metrics_gauge(out, u->name, NULL, labels,
                                 dp_gauge_get((const dp_gauge_t *)(const void *)field));
            else
                dp_metrics_counter(out, u->name, NULL, labels,
                                   dp_counter_get((const dp_counter_t *)(const void *)field));
        }
    }
    dp_metrics_family(out, "weir_processor_udf_errors_total",
                      "Failed UDF call attempts by gRPC status", DP_METRIC_COUNTER);
    for (uint32_t i = 0; i < p->nudfs; i++)
        for (int s = 1; s < UDF_STATUS_N; s++) {
            uint64_t v = dp_counter_get(&p->udfs[i].errors[s]);

            if (v == 0)
                continue;
            snprintf(labels, sizeof(labels), "udf=\"%s\",status=\"%s\"", p->udfs[i].name,
                     dp_udf_status_str(s));
            dp_metrics_counter(out, "weir_processor_udf_errors_total", NULL, labels, v);
        }
    dp_metrics_counter(out, "weir_processor_udf_blocked_total",
                       "Loop passes in which inputs waited for the UDF channel", NULL,
                       dp_counter_get(&p->udf_blocked_total));
    dp_metrics_gauge(out, "weir_processor_udf_inputs_blocked",
                     "1 while inputs wait for the UDF channel (slots full)", NULL,
                     dp_gauge_get(&p->udf_blocked));
    dp_metrics_family(out, "weir_processor_udf_latency_seconds",
                      "UDF call attempt latency, accept to completion", DP_METRIC_HISTOGRAM);
    for (uint32_t i = 0; i < p->nudfs; i++) {
        snprintf(labels, sizeof(labels), "udf=\"%s\"", p->udfs[i].name);
        dp_metrics_hist(out, "weir_processor_udf_latency_seconds", NULL, labels,
                        &p->udfs[i].latency);
    }
}

/* ---- start-up ------------------------------------------------------------ */

/* Sleeps up to ms in the ring (signals still wake it). */
static void ring_sleep(proc_t *p, int ms)
{
    dp_ring_run_once(&p->ring, 1, ms);
}

static void ev_cb(dp_ring_op_t *op);
static void sig_cb(dp_ring_op_t *op);

static void arm_ev(proc_t *p)
{
    if (dp_ring_prep_read(&p->ring, &p->ev_op, p->efd, &p->ev_buf, sizeof(p->ev_buf), 0, ev_cb,
                          p) != 0)
        wc_log(WC_LOG_WARN, COMPONENT, "cannot arm the consumer wake-up read", NULL);
}

static void arm_sig(proc_t *p)
{
    if (dp_ring_prep_read(&p->ring, &p->sig_op, p->sfd, &p->sig_buf, sizeof(p->sig_buf), 0, sig_cb,
                          p) != 0)
        wc_log(WC_LOG_WARN, COMPONENT, "cannot arm the signal read", NULL);
}

static void ev_cb(dp_ring_op_t *op)
{
    arm_ev(op->ctx);
}

static void sig_cb(dp_ring_op_t *op)
{
    proc_t *p = op->ctx;

    if (op->res == (int32_t)sizeof(p->sig_buf)) {
        p->stop = true;
        p->stop_signal = (int)p->sig_buf.ssi_signo;
        return; /* one signal is enough; later ones stay pending */
    }
    arm_sig(p);
}

/* Resolves one topic's partition count with a bounded wait. Returns the
 * count, 0 when stopped meanwhile, or -ENOENT after TOPIC_WAIT_MS. */
static int topic_partitions(proc_t *p, rd_kafka_t *rk, const char *topic, const char *what,
                            int32_t need_part)
{
    int64_t deadline = mono_ms() + TOPIC_WAIT_MS;
    int attempt = 0;

    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t e;
        const char *why = NULL;
        int n = 0;

        if (rkt == NULL)
            return -ENOMEM;
        e = rd_kafka_metadata(rk, 0, rkt, &md, METADATA_TIMEOUT_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            why = rd_kafka_err2str(e);
        else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
            why = md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "no topic metadata";
        else if (md->topics[0].partition_cnt <= need_part)
            why = "fewer partitions than the spec assigns";
        else
            n = md->topics[0].partition_cnt;
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        /* Serve the producers' error callbacks (nothing is produced yet):
         * an authentication failure then explains the wait. */
        for (uint32_t i = 0; i < p->nproducers; i++)
            rd_kafka_poll(p->producers[i].rk, 0);
        /* And the consumers' not yet assigned (rd_kafka_poll on a consumer
         * is wrong: its main queue is redirected to the consumer queue).
         * Serving that queue calls the error callback or hands an error
         * back as a message; before rd_kafka_assign it holds no records,
         * so nothing is lost: keep the authentication failure. */
        for (uint32_t i = 0; i < p->nconsumers; i++) {
            rd_kafka_message_t *em[8];
            ssize_t k;

            if (p->consumers[i].assigned || p->consumers[i].queue == NULL)
                continue;
            k = rd_kafka_consume_batch_queue(p->consumers[i].queue, 0, em, 8);
            for (ssize_t j = 0; j < k; j++) {
                if (em[j]->err == RD_KAFKA_RESP_ERR__AUTHENTICATION)
                    snprintf(p->auth_error, sizeof(p->auth_error), "%s",
                             rd_kafka_message_errstr(em[j]));
                rd_kafka_message_destroy(em[j]);
            }
        }
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            p->auth_error[0] = '\0'; /* the cluster answered: any earlier failure passed */
        else if (p->auth_error[0] != '\0')
            why = p->auth_error;
        if (n > 0) {
            if (attempt > 0)
                wc_log(WC_LOG_INFO, COMPONENT, "topic found", "{s:s, s:s, s:i}", "role", what,
                       "topic", topic, "partitions", n);
            return n;
        }
        if (mono_ms() >= deadline) {
            wc_log(WC_LOG_ERROR, COMPONENT, "topic not available in time, giving up",
                   "{s:s, s:s, s:s, s:i}", "role", what, "topic", topic, "error", why, "waited_ms",
                   TOPIC_WAIT_MS);
            return -ENOENT;
        }
        wc_log(WC_LOG_WARN, COMPONENT, "waiting for topic", "{s:s, s:s, s:s, s:i, s:i}", "role",
               what, "topic", topic, "error", why, "attempt", ++attempt, "gives_up_in_ms",
               (int)(deadline - mono_ms()));
        ring_sleep(p, 1000);
        if (p->stop)
            return 0;
    }
}

/* Builds inputs[] and parts[] from the engine's view of the spec. */
static int setup_inputs(proc_t *p, char *err, size_t errlen)
{
    const json_t *ins = json_object_get(p->spec, "inputs");
    uint32_t n = 0;

    p->ninputs = dp_pipe_inputs(p->pipe);
    p->inputs = calloc(p->ninputs ? p->ninputs : 1, sizeof(*p->inputs));
    if (p->inputs == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < p->ninputs; i++) {
        const int32_t *parts;
        uint32_t np;

        dp_pipe_input_partitions(p->pipe, i, &parts, &np);
        n += np;
    }
    p->nparts = n;
    p->parts = calloc(n ? n : 1, sizeof(*p->parts));
    p->ckpt_offs = calloc(n ? n : 1, sizeof(*p->ckpt_offs));
    if (p->parts == NULL || p->ckpt_offs == NULL)
        return -ENOMEM;
    n = 0;
    for (uint32_t i = 0; i < p->ninputs; i++) {
        proc_input_t *in = &p->inputs[i];
        const json_t *js = json_array_get(ins, i);
        const int32_t *parts;
        uint32_t np;
        int slot;

        in->name = jstr(js, "name", "?");
        in->topic = dp_pipe_input_topic(p->pipe, i);
        in->start_latest = strcmp(jstr(js, "startOffset", "earliest"), "latest") == 0;
        slot = client_slot(p->consumers, &p->nconsumers, json_object_get(js, "cluster"));
        if (slot < 0) {
            snprintf(err, errlen, "too many distinct input clusters (at most %d)", CLUSTERS_MAX);
            return slot;
        }
        /* One consumer cannot read a partition twice: two inputs on the
         * same topic of the same cluster get their own consumer. */
        for (uint32_t j = 0; j < i; j++)
            if (p->inputs[j].consumer == (uint32_t)slot &&
                strcmp(p->inputs[j].topic, in->topic) == 0) {
                if (p->nconsumers == CLUSTERS_MAX) {
                    snprintf(err, errlen, "too many input consumers (at most %d)", CLUSTERS_MAX);
                    return -ENOSPC;
                }
                p->consumers[p->nconsumers].key = strdup(p->consumers[slot].key);
                p->consumers[p->nconsumers].cluster = p->consumers[slot].cluster;
                if (p->consumers[p->nconsumers].key == NULL)
                    return -ENOMEM;
                slot = (int)p->nconsumers++;
                break;
            }
        in->consumer = (uint32_t)slot;
        dp_pipe_input_partitions(p->pipe, i, &parts, &np);
        in->first_part = n;
        in->nparts = np;
        in->max_part = -1;
        for (uint32_t k = 0; k < np; k++)
            if (parts[k] > in->max_part)
                in->max_part = parts[k];
        in->part_index =
            malloc(sizeof(int32_t) * (size_t)(in->max_part + 1 > 0 ? in->max_part + 1 : 1));
        if (in->part_index == NULL)
            return -ENOMEM;
        for (int32_t k = 0; k <= in->max_part; k++)
            in->part_index[k] = -1;
        for (uint32_t k = 0; k < np; k++) {
            proc_part_t *pp = &p->parts[n];

            pp->input = i;
            pp->partition = parts[k];
            pp->next_offset = in->start_latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
            in->part_index[parts[k]] = (int32_t)n;
            n++;
        }
    }
    return 0;
}

static int setup_outputs(proc_t *p, char *err, size_t errlen)
{
    const json_t *outs = json_object_get(p->spec, "outputs");
    const json_t *dl = json_object_get(p->spec, "deadLetter");
    uint32_t nout = (uint32_t)json_array_size(outs);

    p->noutputs = nout;
    p->outputs = calloc(nout + 1, sizeof(*p->outputs));
    if (p->outputs == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i <= nout; i++) {
        const json_t *js = i < nout ? json_array_get(outs, i) : dl;
        proc_output_t *o = &p->outputs[i];
        int slot;

        if (js == NULL)
            break;
        o->name = i < nout ? jstr(js, "name", "?") : "deadLetter";
        o->topic = jstr(js, "topic", "?");
        o->partitions = (int32_t)jint(js, "partitions", 0);
        slot = client_slot(p->producers, &p->nproducers, json_object_get(js, "cluster"));
        if (slot < 0) {
            snprintf(err, errlen, "too many distinct output clusters (at most %d)", CLUSTERS_MAX);
            return slot;
        }
        o->producer = (uint32_t)slot;
        if (i == nout)
            p->dlq = o;
    }
    return 0;
}

/* Applies the checkpoint's offsets to parts[]. */
static void restore_offsets(proc_t *p, const dp_ckpt_data_t *d)
{
    for (uint32_t k = 0; k < d->noffsets; k++) {
        const dp_ckpt_offset_t *o = &d->offsets[k];

        for (uint32_t i = 0; i < p->ninputs; i++) {
            proc_input_t *in = &p->inputs[i];

            if (strcmp(in->topic, o->topic) != 0 || o->partition > in->max_part ||
                in->part_index[o->partition] < 0)
                continue;
            p->parts[in->part_index[o->partition]].next_offset = o->next_offset;
        }
    }
}

/* Waits for every input and output topic, resolves `latest` start offsets
 * and assigns the partitions. Returns 0, -ECANCELED when a signal came
 * meanwhile, or an exit code. */
static int assign_inputs(proc_t *p)
{
    for (uint32_t i = 0; i < p->noutputs + (p->dlq ? 1 : 0); i++) {
        proc_output_t *o = &p->outputs[i];
        int n;

        if (o->partitions > 0)
            continue; /* the spec says; no need to ask */
        n = topic_partitions(p, p->producers[o->producer].rk, o->topic, "output", 0);
        if (n == 0)
            return -ECANCELED;
        if (n < 0)
            return DP_PROC_EXIT_UNAVAILABLE;
        o->partitions = n;
    }
    for (uint32_t c = 0; c < p->nconsumers; c++) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)p->nparts);
        json_t *desc = json_array();
        rd_kafka_resp_err_t e;

        for (uint32_t i = 0; i < p->ninputs; i++) {
            proc_input_t *in = &p->inputs[i];
            int n;

            if (in->consumer != c)
                continue;
            n = topic_partitions(p, p->consumers[c].rk, in->topic, "input", in->max_part);
            if (n <= 0) {
                rd_kafka_topic_partition_list_destroy(l);
                json_decref(desc);
                return n == 0 ? -ECANCELED : DP_PROC_EXIT_UNAVAILABLE;
            }
            for (uint32_t k = 0; k < in->nparts; k++) {
                proc_part_t *pp = &p->parts[in->first_part + k];

                if (pp->next_offset == RD_KAFKA_OFFSET_END) {
                    /* Resolve `latest` now, so that the first checkpoint
                     * can name a real offset even before a record comes. */
                    int64_t lo = 0, hi = 0;

                    e = rd_kafka_query_watermark_offsets(p->consumers[c].rk, in->topic,
                                                         pp->partition, &lo, &hi,
                                                         METADATA_TIMEOUT_MS);
                    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                        pp->next_offset = hi;
                }
                rd_kafka_topic_partition_list_add(l, in->topic, pp->partition)->offset =
                    pp->next_offset;
                json_array_append_new(desc,
                                      json_pack("{s:s, s:s, s:i, s:I}", "input", in->name, "topic",
                                                in->topic, "partition", (int)pp->partition,
                                                "offset", (json_int_t)pp->next_offset));
            }
        }
        e = rd_kafka_assign(p->consumers[c].rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            wc_log(WC_LOG_ERROR, COMPONENT, "cannot assign input partitions", "{s:s, s:o}", "error",
                   rd_kafka_err2str(e), "partitions", desc);
            return DP_PROC_EXIT_FAIL;
        }
        p->consumers[c].assigned = true;
        wc_log(WC_LOG_INFO, COMPONENT, "assigned partitions", "{s:s, s:o}", "bootstrap",
               jstr(p->consumers[c].cluster, "bootstrap", "?"), "partitions", desc);
    }
    return 0;
}

/* ---- the loop ------------------------------------------------------------ */

/* Index into parts[] of a consumed record, or -1. */
static int part_of(proc_t *p, uint32_t consumer, const rd_kafka_message_t *msg)
{
    for (uint32_t i = 0; i < p->ninputs; i++) {
        proc_input_t *in = &p->inputs[i];

        if (in->consumer != consumer)
            continue;
        if (in->rkt != msg->rkt) {
            if (in->rkt != NULL || strcmp(rd_kafka_topic_name(msg->rkt), in->topic) != 0)
                continue;
            in->rkt = msg->rkt; /* stable for the consumer's lifetime */
        }
        if (msg->partition < 0 || msg->partition > in->max_part)
            return -1;
        return in->part_index[msg->partition];
    }
    return -1;
}

/* Takes up to `budget` records from each consumer into held[]. Returns the
 * number of records taken. */
static uint32_t poll_inputs(proc_t *p, uint32_t budget)
{
    rd_kafka_message_t *msgs[BATCH_MAX];
    uint32_t taken = 0;

    if (budget > BATCH_MAX)
        budget = BATCH_MAX;
    for (uint32_t c = 0; c < p->nconsumers && budget > 0; c++) {
        ssize_t n = rd_kafka_consume_batch_queue(p->consumers[c].queue, 0, msgs, budget);

        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            int part;

            if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                dp_counter_add(&p->m.consume_errors, 1);
                if (log_allowed(p, LOGK_CONSUME))
                    wc_log(WC_LOG_WARN, COMPONENT, "input error", "{s:s, s:i, s:s}", "topic",
                           m->rkt ? rd_kafka_topic_name(m->rkt) : "", (int)m->partition, "error",
                           rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                continue;
            }
            part = part_of(p, c, m);
            if (part < 0) {
                rd_kafka_message_destroy(m); /* not ours: cannot happen with assign() */
                continue;
            }
            p->held[p->nheld].msg = m;
            p->held[p->nheld].part = (uint32_t)part;
            p->nheld++;
            taken++;
        }
        if (n > 0)
            budget -= (uint32_t)n;
    }
    return taken;
}

/* Headers of a consumed record as dp_hdr_t, in a buffer reused across records. */
static uint32_t map_headers(proc_t *p, rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    uint32_t n = 0;

    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR || h == NULL)
        return 0;
    for (size_t idx = 0; n < HDRS_MAX; idx++) {
        const char *name;
        const void *val;
        size_t size;

        if (rd_kafka_header_get_all(h, idx, &name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        if (n == p->hdrs_cap) {
            uint32_t cap = p->hdrs_cap ? p->hdrs_cap * 2 : 16;
            dp_hdr_t *nh = realloc(p->hdrs, cap * sizeof(*nh));

            if (nh == NULL)
                break;
            p->hdrs = nh;
            p->hdrs_cap = cap;
        }
        p->hdrs[n].name = name;
        p->hdrs[n].name_len = (uint32_t)strlen(name);
        p->hdrs[n].val = val;
        p->hdrs[n].val_len = (uint32_t)size;
        n++;
    }
    return n;
}

/* Pushes held records in order, keeping each partition's order: once the
 * engine refuses a partition's record (-ENOBUFS), that partition's later
 * records wait behind it. Returns true when anything was pushed. */
static bool push_held(proc_t *p, int64_t now, bool *refused)
{
    uint32_t w = 0;
    bool progress = false;

    *refused = false;
    for (uint32_t i = 0; i < p->nparts; i++)
        p->parts[i].blocked = false;
    for (uint32_t i = 0; i < p->nheld; i++) {
        proc_held_t h = p->held[i];
        proc_part_t *pp = &p->parts[h.part];
        rd_kafka_message_t *m = h.msg;
        dp_pipe_rec_t rec;
        int rc;

        if (pp->blocked || udf_blocked(p)) {
            /* a UDF has no free slot (-EBUSY): the rest waits, in order */
            p->held[w++] = h;
            continue;
        }
        rec.key = m->key;
        rec.key_len = m->key ? (uint32_t)m->key_len : 0;
        rec.payload = m->payload;
        rec.payload_len = m->payload ? (uint32_t)m->len : 0;
        rec.nhdrs = map_headers(p, m);
        rec.hdrs = rec.nhdrs ? p->hdrs : NULL;
        rec.ts_ms = rd_kafka_message_timestamp(m, NULL);
        rec.offset = m->offset;
        rec.partition = m->partition;
        rc = dp_pipe_push(p->pipe, pp->input, &rec, now);
        if (rc == -ENOBUFS) {
            pp->blocked = true;
            *refused = true;
            p->held[w++] = h;
            continue;
        }
        pp->next_offset = m->offset + 1;
        p->pushed_since_ckpt++;
        dp_counter_add(&pp->records, 1);
        rd_kafka_message_destroy(m);
        progress = true;
    }
    p->nheld = w;
    return progress;
}

static void pause_parts(proc_t *p, bool pause_others, int64_t keep)
{
    for (uint32_t c = 0; c < p->nconsumers; c++) {
        rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(4);
        rd_kafka_topic_partition_list_t *rl = rd_kafka_topic_partition_list_new(4);

        for (uint32_t i = 0; i < p->nparts; i++) {
            proc_part_t *pp = &p->parts[i];
            bool want = pause_others && (int64_t)i != keep;

            if (p->inputs[pp->input].consumer != c || want == pp->paused)
                continue;
            rd_kafka_topic_partition_list_add(want ? pl : rl, p->inputs[pp->input].topic,
                                              pp->partition);
            pp->paused = want;
        }
        if (pl->cnt > 0)
            rd_kafka_pause_partitions(p->consumers[c].rk, pl);
        if (rl->cnt > 0)
            rd_kafka_resume_partitions(p->consumers[c].rk, rl);
        rd_kafka_topic_partition_list_destroy(pl);
        rd_kafka_topic_partition_list_destroy(rl);
    }
}

/* While state is at its bound, only the partition the engine names keeps
 * being read (its records move the watermark, so windows close and free
 * state); every other one is paused until the engine is below the bound. */
static void manage_backpressure(proc_t *p)
{
    uint32_t in = 0;
    int32_t part = 0;
    int64_t target = -1;

    if (!dp_pipe_backpressured(p->pipe, &in, &part)) {
        if (p->bp_active) {
            pause_parts(p, false, -1);
            p->bp_active = false;
            dp_gauge_set(&p->m.paused, 0);
            wc_log(WC_LOG_INFO, COMPONENT, "backpressure released, inputs resumed", "{s:I}",
                   "state_bytes", (json_int_t)dp_pipe_state_bytes(p->pipe));
        }
        return;
    }
    if (in < p->ninputs && part >= 0 && part <= p->inputs[in].max_part)
        target = p->inputs[in].part_index[part];
    if (p->bp_active && p->bp_target == target)
        return;
    /* No partition to favour (none has a watermark yet): pause nothing, so
     * the first records of a silent partition can still arrive; refused
     * records wait in held[] and polling stops at HELD_SOFT. */
    pause_parts(p, target >= 0, target);
    p->bp_active = true;
    p->bp_target = target;
    dp_gauge_set(&p->m.paused, 1);
    wc_log(WC_LOG_WARN, COMPONENT, "backpressure: state at its bound, pausing the other inputs",
           "{s:s, s:i, s:I}", "input", in < p->ninputs ? p->inputs[in].name : "?", "partition",
           (int)part, "state_bytes", (json_int_t)dp_pipe_state_bytes(p->pipe));
}

static bool held_has(const proc_t *p, int64_t part)
{
    for (uint32_t i = 0; i < p->nheld; i++)
        if ((int64_t)p->held[i].part == part)
            return true;
    return false;
}

static void publish_stats(proc_t *p)
{
    const dp_pipe_stats_t *s = dp_pipe_stats(p->pipe);

    atomic_store_explicit(&p->m.records_in.v, s->records_in, memory_order_relaxed);
    atomic_store_explicit(&p->m.records_out.v, s->records_out, memory_order_relaxed);
    atomic_store_explicit(&p->m.dead_letters.v, s->dead_letters, memory_order_relaxed);
    atomic_store_explicit(&p->m.filtered.v, s->filtered, memory_order_relaxed);
    atomic_store_explicit(&p->m.late_dropped.v, s->late_dropped, memory_order_relaxed);
    atomic_store_explicit(&p->m.late_side.v, s->late_side, memory_order_relaxed);
    atomic_store_explicit(&p->m.late_upserts.v, s->late_upserts, memory_order_relaxed);
    atomic_store_explicit(&p->m.windows_fired.v, s->windows_fired, memory_order_relaxed);
    atomic_store_explicit(&p->m.joins_emitted.v, s->joins_emitted, memory_order_relaxed);
    atomic_store_explicit(&p->m.backpressure.v, s->backpressure, memory_order_relaxed);
    dp_gauge_set(&p->m.state_bytes, (int64_t)dp_pipe_state_bytes(p->pipe));
    dp_gauge_set(&p->m.watermark_ms, dp_pipe_watermark(p->pipe));
}

/* Cached high watermarks (no request): lag per owned partition. */
static void refresh_lag(proc_t *p)
{
    for (uint32_t i = 0; i < p->nparts; i++) {
        proc_part_t *pp = &p->parts[i];
        proc_input_t *in = &p->inputs[pp->input];
        int64_t lo = -1, hi = -1;

        if (rd_kafka_get_watermark_offsets(p->consumers[in->consumer].rk, in->topic, pp->partition,
                                           &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi < 0)
            continue;
        dp_gauge_set(&pp->lag,
                     pp->next_offset >= 0 ? hi - pp->next_offset : (lo >= 0 ? hi - lo : hi));
    }
}

/* ---- checkpoints --------------------------------------------------------- */

/* (a) every output so far is delivered, (b) the engine's state, (c) the
 * next offset of every partition as of the last pushed record, (d) written
 * durably. Returns 0 or -errno (logged). */
static int checkpoint(proc_t *p, const char *why, bool forced)
{
    int64_t t0 = mono_ns();
    const dp_pipe_stats_t *st = dp_pipe_stats(p->pipe);
    dp_ckpt_data_t d;
    uint64_t id = 0;
    char err[512];
    int rc;

    if (!forced && p->have_ckpt && p->pushed_since_ckpt == 0 &&
        st->records_out == p->ckpt_records_out && st->dead_letters == p->ckpt_dead_letters &&
        dp_pipe_watermark(p->pipe) == p->ckpt_watermark &&
        dp_pipe_state_bytes(p->pipe) == p->ckpt_state_bytes)
        return 0; /* nothing happened since the last one */
    if (p->nudfs > 0 && udf_drain(p) != 0) {
        dp_counter_add(&p->m.checkpoint_failures, 1);
        wc_log(WC_LOG_WARN, COMPONENT, "checkpoint postponed: UDF calls not answered in time",
               "{s:s, s:I, s:i}", "reason", why, "outstanding", (json_int_t)p->udf_outstanding,
               "timeout_ms", UDF_DRAIN_MS);
        return -ETIMEDOUT;
    }
    st = dp_pipe_stats(p->pipe);
    for (uint32_t i = 0; i < p->nproducers; i++) {
        rd_kafka_resp_err_t e = rd_kafka_flush(p->producers[i].rk, FLUSH_TIMEOUT_MS);

        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            dp_counter_add(&p->m.checkpoint_failures, 1);
            wc_log(WC_LOG_WARN, COMPONENT, "checkpoint postponed: outputs not delivered in time",
                   "{s:s, s:s, s:i, s:i}", "reason", why, "error", rd_kafka_err2str(e),
                   "undelivered", rd_kafka_outq_len(p->producers[i].rk), "timeout_ms",
                   FLUSH_TIMEOUT_MS);
            return -ETIMEDOUT;
        }
    }
    if (p->fatal)
        return -EIO;
    if (p->output_lost) {
        dp_counter_add(&p->m.checkpoint_failures, 1);
        wc_log(WC_LOG_ERROR, COMPONENT,
               "checkpoint refused: an output record was given up while stopping", "{s:s}",
               "reason", why);
        return -EIO;
    }
    p->state_buf.len = 0;
    p->state_buf.err = 0;
    rc = dp_pipe_save(p->pipe, &p->state_buf);
    if (rc == 0)
        rc = p->state_buf.err;
    if (rc != 0) {
        dp_counter_add(&p->m.checkpoint_failures, 1);
        wc_log(WC_LOG_ERROR, COMPONENT, "checkpoint failed: cannot save engine state", "{s:s, s:s}",
               "reason", why, "error", strerror(-rc));
        return rc;
    }
    for (uint32_t i = 0; i < p->nparts; i++) {
        p->ckpt_offs[i].topic = p->inputs[p->parts[i].input].topic;
        p->ckpt_offs[i].partition = p->parts[i].partition;
        p->ckpt_offs[i].next_offset =
            p->parts[i].next_offset >= 0 ? p->parts[i].next_offset : DP_CKPT_OFFSET_BEGINNING;
    }
    memset(&d, 0, sizeof(d));
    d.spec_hash = p->spec_hash;
    d.wall_ms = realtime_ms();
    d.offsets = p->ckpt_offs;
    d.noffsets = p->nparts;
    d.state = p->state_buf.buf;
    d.state_len = p->state_buf.len;
    rc = dp_ckpt_write(p->ckpt, &d, &id, err, sizeof(err));
    if (rc != 0) {
        dp_counter_add(&p->m.checkpoint_failures, 1);
        wc_log(WC_LOG_ERROR, COMPONENT, "checkpoint failed", "{s:s, s:s}", "reason", why, "error",
               err);
        return rc;
    }
    p->have_ckpt = true;
    p->pushed_since_ckpt = 0;
    p->ckpt_records_out = st->records_out;
    p->ckpt_dead_letters = st->dead_letters;
    p->ckpt_watermark = dp_pipe_watermark(p->pipe);
    p->ckpt_state_bytes = dp_pipe_state_bytes(p->pipe);
    dp_hist_record_ns(&p->m.checkpoint_latency, (uint64_t)(mono_ns() - t0));
    dp_counter_add(&p->m.checkpoints, 1);
    dp_gauge_set(&p->m.checkpoint_last_id, (int64_t)id);
    dp_gauge_set(&p->m.checkpoint_bytes, (int64_t)p->state_buf.len);
    wc_log(WC_LOG_INFO, COMPONENT, "checkpoint written", "{s:I, s:s, s:I, s:I, s:I}", "id",
           (json_int_t)id, "reason", why, "state_bytes", (json_int_t)p->state_buf.len,
           "watermark_ms", (json_int_t)p->ckpt_watermark, "duration_us",
           (json_int_t)((mono_ns() - t0) / 1000));
    return 0;
}

/* ---- HTTP ---------------------------------------------------------------- */

static int render_metrics(dp_mbuf_t *out, void *ctx)
{
    proc_t *p = ctx;
    proc_metrics_t *m = &p->m;
    char labels[512];

    dp_metrics_counter(out, "weir_processor_records_processed_total",
                       "Records the engine consumed from the inputs", NULL,
                       dp_counter_get(&m->records_in));
    dp_metrics_family(out, "weir_processor_records_in_total", "Records read per input partition",
                      DP_METRIC_COUNTER);
    for (uint32_t i = 0; i < p->nparts; i++) {
        snprintf(labels, sizeof(labels), "input=\"%s\",partition=\"%d\"",
                 p->inputs[p->parts[i].input].name, (int)p->parts[i].partition);
        dp_metrics_counter(out, "weir_processor_records_in_total", NULL, labels,
                           dp_counter_get(&p->parts[i].records));
    }
    dp_metrics_family(out, "weir_processor_consumer_lag_records",
                      "High watermark minus next offset per input partition (cached)",
                      DP_METRIC_GAUGE);
    for (uint32_t i = 0; i < p->nparts; i++) {
        snprintf(labels, sizeof(labels), "input=\"%s\",partition=\"%d\"",
                 p->inputs[p->parts[i].input].name, (int)p->parts[i].partition);
        dp_metrics_gauge(out, "weir_processor_consumer_lag_records", NULL, labels,
                         dp_gauge_get(&p->parts[i].lag));
    }
    dp_metrics_family(out, "weir_processor_records_out_total", "Records produced per output",
                      DP_METRIC_COUNTER);
    for (uint32_t i = 0; i < p->noutputs + (p->dlq ? 1 : 0); i++) {
        snprintf(labels, sizeof(labels), "output=\"%s\"", p->outputs[i].name);
        dp_metrics_counter(out, "weir_processor_records_out_total", NULL, labels,
                           dp_counter_get(&p->outputs[i].records));
    }
    dp_metrics_counter(out, "weir_processor_records_emitted_total", "Records the engine emitted",
                       NULL, dp_counter_get(&m->records_out));
    dp_metrics_counter(out, "weir_processor_dead_letters_total",
                       "Records sent to the dead-letter output", NULL,
                       dp_counter_get(&m->dead_letters));
    dp_metrics_counter(out, "weir_processor_dead_letters_dropped_total",
                       "Dead letters dropped: the spec has no deadLetter output", NULL,
                       dp_counter_get(&m->dead_letters_dropped));
    dp_metrics_counter(out, "weir_processor_filtered_total", "Records removed by filters", NULL,
                       dp_counter_get(&m->filtered));
    dp_metrics_family(out, "weir_processor_late_records_total",
                      "Records behind the watermark, by what happened to them", DP_METRIC_COUNTER);
    dp_metrics_counter(out, "weir_processor_late_records_total", NULL, "action=\"dropped\"",
                       dp_counter_get(&m->late_dropped));
    dp_metrics_counter(out, "weir_processor_late_records_total", NULL, "action=\"side_output\"",
                       dp_counter_get(&m->late_side));
    dp_metrics_counter(out, "weir_processor_late_records_total", NULL, "action=\"upsert\"",
                       dp_counter_get(&m->late_upserts));
    dp_metrics_counter(out, "weir_processor_windows_fired_total", "Window results emitted", NULL,
                       dp_counter_get(&m->windows_fired));
    dp_metrics_counter(out, "weir_processor_joins_emitted_total", "Join results emitted", NULL,
                       dp_counter_get(&m->joins_emitted));
    dp_metrics_counter(out, "weir_processor_backpressure_total",
                       "Records the engine refused because state was at its bound", NULL,
                       dp_counter_get(&m->backpressure));
    dp_metrics_gauge(out, "weir_processor_inputs_paused",
                     "1 while inputs are paused for backpressure", NULL, dp_gauge_get(&m->paused));
    dp_metrics_counter(out, "weir_processor_delivery_errors_total",
                       "Output records that could not be delivered", NULL,
                       dp_counter_get(&m->delivery_errors));
    dp_metrics_counter(out, "weir_processor_consume_errors_total",
                       "Errors reported by the input consumers", NULL,
                       dp_counter_get(&m->consume_errors));
    dp_metrics_gauge(out, "weir_processor_state_bytes", "Bytes of operator state", NULL,
                     dp_gauge_get(&m->state_bytes));
    dp_metrics_gauge(out, "weir_processor_watermark_ms",
                     "The processor's event-time watermark (ms since the epoch)", NULL,
                     dp_gauge_get(&m->watermark_ms));
    dp_metrics_counter(out, "weir_processor_checkpoints_total", "Checkpoints written", NULL,
                       dp_counter_get(&m->checkpoints));
    dp_metrics_counter(out, "weir_processor_checkpoint_failures_total",
                       "Checkpoints postponed or failed", NULL,
                       dp_counter_get(&m->checkpoint_failures));
    dp_metrics_gauge(out, "weir_processor_checkpoint_last_id", "Id of the last checkpoint written",
                     NULL, dp_gauge_get(&m->checkpoint_last_id));
    dp_metrics_gauge(out, "weir_processor_checkpoint_state_bytes",
                     "Engine state bytes in the last checkpoint", NULL,
                     dp_gauge_get(&m->checkpoint_bytes));
    dp_metrics_hist(out, "weir_processor_checkpoint_seconds",
                    "Checkpoint duration: output flush, state save, durable write", NULL,
                    &m->checkpoint_latency);
    render_udf_metrics(out, p);
    return out->err;
}

static int ready(char *reason, size_t len, void *ctx)
{
    proc_t *p = ctx;

    if (atomic_load(&p->stopping)) {
        snprintf(reason, len, "stopping");
        return 0;
    }
    if (!atomic_load(&p->ready)) {
        snprintf(reason, len, "inputs not assigned yet");
        return 0;
    }
    return 1;
}

/* ---- run ----------------------------------------------------------------- */

/* Loads and validates the spec, applying the pod name's replica index. */
static int load_spec(proc_t *p, char *err, size_t errlen)
{
    const dp_proc_config_t *cfg = p->cfg;
    int rc = wc_spec_load_file(cfg->spec_path, &p->spec, err, errlen);

    if (rc != 0)
        return rc;
    if (cfg->pod_name != NULL) {
        json_t *rep = json_object_get(p->spec, "replica");
        json_int_t count = rep ? jint(rep, "count", 1) : cfg->replicas;

        /* The pod's ordinal is this replica's index: one rendered spec
         * serves every pod of the StatefulSet. */
        json_object_set_new(
            p->spec, "replica",
            json_pack("{s:I, s:I}", "index", (json_int_t)cfg->replica_index, "count", count));
        rc = wc_spec_validate(p->spec, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void cleanup(proc_t *p)
{
    if (p->ring_ok && p->nudfs > 0)
        udf_close_all(p);
    for (uint32_t i = 0; i < p->nheld; i++)
        rd_kafka_message_destroy(p->held[i].msg);
    p->nheld = 0;
    for (uint32_t c = 0; c < p->nconsumers; c++) {
        if (p->consumers[c].rk != NULL) {
            rd_kafka_queue_io_event_enable(p->consumers[c].queue, -1, NULL, 0);
            rd_kafka_queue_destroy(p->consumers[c].queue);
            rd_kafka_consumer_close(p->consumers[c].rk);
            rd_kafka_destroy(p->consumers[c].rk);
        }
        free(p->consumers[c].key);
    }
    for (uint32_t i = 0; i < p->noutputs + 1; i++)
        if (p->outputs != NULL && p->outputs[i].rkt != NULL)
            rd_kafka_topic_destroy(p->outputs[i].rkt);
    for (uint32_t c = 0; c < p->nproducers; c++) {
        if (p->producers[c].rk != NULL) {
            /* Whatever is still queued (a failed final flush) is given up:
             * no checkpoint claims it, so a restart produces it again. */
            rd_kafka_purge(p->producers[c].rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(p->producers[c].rk, 0);
            rd_kafka_destroy(p->producers[c].rk);
        }
        free(p->producers[c].key);
    }
    if (p->http != NULL)
        dp_http_stop(p->http);
    dp_pipe_free(p->pipe);
    dp_ckpt_free(p->ckpt);
    if (p->ring_ok)
        dp_ring_dispose(&p->ring);
    if (p->efd >= 0)
        close(p->efd);
    if (p->sfd >= 0)
        close(p->sfd);
    for (uint32_t i = 0; i < p->ninputs; i++)
        free(p->inputs[i].part_index);
    free(p->inputs);
    free(p->parts);
    free(p->outputs);
    free(p->held);
    free(p->hdrs);
    free(p->ckpt_offs);
    dp_ser_wdispose(&p->state_buf);
    json_decref(p->spec);
}

/* The steady state. Returns an exit code. */
static int run_loop(proc_t *p)
{
    int64_t next_ckpt = mono_ms() + p->ckpt_interval_ms, next_lag = 0;

    while (!p->stop && !p->fatal) {
        int64_t now = realtime_ms(), mnow;
        uint32_t taken = 0;
        bool refused = false, pushed = false;
        int wait;

        /* Past HELD_SOFT, poll only to reach the partition backpressure
         * keeps running when none of its records is held yet. */
        if (p->nheld < HELD_SOFT || (p->nheld < HELD_MAX && p->bp_active && p->bp_target >= 0 &&
                                     !held_has(p, p->bp_target)))
            taken = poll_inputs(p, HELD_MAX - p->nheld);
        if (udf_service(p, now) > 0)
            pushed = true;
        if (p->nheld > 0 && !udf_blocked(p))
            pushed = push_held(p, now, &refused) || pushed;
        else if (p->nheld > 0)
            dp_counter_add(&p->udf_blocked_total, 1);
        dp_gauge_set(&p->udf_blocked, udf_blocked(p));
        dp_pipe_tick(p->pipe, now);
        if (refused || p->bp_active)
            manage_backpressure(p);
        for (uint32_t i = 0; i < p->nproducers; i++)
            rd_kafka_poll(p->producers[i].rk, 0);
        publish_stats(p);
        mnow = mono_ms();
        if (mnow >= next_lag) {
            refresh_lag(p);
            next_lag = mnow + LAG_EVERY_MS;
        }
        if (mnow >= next_ckpt) {
            checkpoint(p, "interval", false);
            mnow = mono_ms();
            next_ckpt = mnow + p->ckpt_interval_ms;
        }
        /* Sleep only when the queues are drained: a full batch means more
         * is waiting. The eventfd wakes us when records arrive. */
        wait = TICK_MS;
        if (next_ckpt - mnow < wait)
            wait = next_ckpt - mnow > 0 ? (int)(next_ckpt - mnow) : 0;
        if (taken == BATCH_MAX || (pushed && !refused))
            wait = 0;
        if (wait > 0)
            dp_ring_run_once(&p->ring, 1, wait);
        else
            dp_ring_run_once(&p->ring, 0, 0);
    }
    if (p->fatal) {
        wc_log(WC_LOG_ERROR, COMPONENT, "stopping after a fatal client error, no final checkpoint",
               NULL);
        return DP_PROC_EXIT_FAIL;
    }
    atomic_store(&p->stopping, true);
    wc_log(WC_LOG_INFO, COMPONENT, "stopping", "{s:i, s:i}", "signal", p->stop_signal,
           "records_not_consumed", (int)p->nheld);
    /* Records taken from librdkafka but not pushed are not claimed by the
     * final checkpoint: the next run reads them again. */
    dp_pipe_tick(p->pipe, realtime_ms());
    publish_stats(p);
    if (checkpoint(p, "shutdown", true) != 0) {
        wc_log(WC_LOG_ERROR, COMPONENT,
               "stopped without a final checkpoint: the next run resumes from the previous one",
               NULL);
        return DP_PROC_EXIT_FAIL;
    }
    return DP_PROC_EXIT_OK;
}

int dp_proc_run(const dp_proc_config_t *cfg)
{
    proc_t *p = calloc(1, sizeof(*p));
    dp_pipe_opts_t opts = {.emit = on_emit};
    dp_ckpt_image_t img;
    sigset_t set;
    char err[1024];
    int rc, code = DP_PROC_EXIT_FAIL;
    const json_t *ck, *http;

    if (p == NULL)
        return DP_PROC_EXIT_FAIL;
    memset(&img, 0, sizeof(img));
    p->cfg = cfg;
    p->efd = p->sfd = -1;
    p->bp_target = -1;
    opts.ctx = p;
    opts.udf_submit = udf_submit;
    opts.udf_ctx = p;
    dp_hist_init(&p->m.checkpoint_latency);

    rc = load_spec(p, err, sizeof(err));
    if (rc != 0) {
        wc_log(WC_LOG_ERROR, COMPONENT, "invalid pipeline spec", "{s:s}", "error", err);
        code = rc == -EINVAL ? DP_PROC_EXIT_DATAERR : DP_PROC_EXIT_FAIL;
        goto out;
    }
    p->name = jstr(p->spec, "name", "processor");
    rc = dp_proc_creds_from_env(&p->creds, env_get, NULL, err, sizeof(err));
    if (rc != 0) {
        wc_log(WC_LOG_ERROR, COMPONENT, "invalid Kafka credentials in the environment", "{s:s}",
               "error", err);
        code = rc == -EINVAL ? DP_PROC_EXIT_DATAERR : DP_PROC_EXIT_FAIL;
        goto out;
    }
    if (p->creds.n > 0) {
        json_t *from = json_array();

        /* Names and non-secret values only: never the password. */
        for (unsigned i = 0; i < p->creds.n; i++)
            json_array_append_new(from,
                                  json_pack("{s:s, s:s, s:s}", "property", p->creds.key[i], "from",
                                            p->creds.var[i] ? p->creds.var[i] : "default", "value",
                                            dp_proc_creds_sensitive(p->creds.key[i]) ||
                                                    strcmp(p->creds.key[i], "ssl.ca.pem") == 0
                                                ? "(set)"
                                                : p->creds.value[i]));
        wc_log(WC_LOG_INFO, COMPONENT, "Kafka credentials from the environment", "{s:o}",
               "properties", from);
    }
    p->spec_hash = dp_ckpt_spec_hash(p->spec);
    ck = json_object_get(p->spec, "checkpoint");
    p->ckpt_interval_ms = jint(ck, "intervalMs", 10000);
    p->ckpt_retain = (uint32_t)jint(ck, "retain", DP_CKPT_RETAIN_DEFAULT);
    if (cfg->checkpoint_dir != NULL)
        snprintf(p->ckpt_dir, sizeof(p->ckpt_dir), "%s", cfg->checkpoint_dir);
    else if (jstr(ck, "dir", NULL) != NULL)
        snprintf(p->ckpt_dir, sizeof(p->ckpt_dir), "%s", jstr(ck, "dir", NULL));
    else
        snprintf(p->ckpt_dir, sizeof(p->ckpt_dir), "%s/checkpoints",
                 cfg->data_dir ? cfg->data_dir : "/var/lib/weir");
    http = json_object_get(p->spec, "http");
    p->http_port = cfg->http_port >= 0 ? cfg->http_port : (int)jint(http, "port", 9400);

    /* Signals are read from a signalfd in the loop's ring: block them here,
     * before librdkafka and the HTTP server start threads that inherit it. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* Blocking descriptors: io_uring turns a read of one into a poll, while
     * a non-blocking one would just fail with -EAGAIN. */
    p->sfd = signalfd(-1, &set, SFD_CLOEXEC);
    p->efd = eventfd(0, EFD_CLOEXEC);
    if (p->sfd < 0 || p->efd < 0) {
        wc_log(WC_LOG_ERROR, COMPONENT, "signalfd/eventfd failed", "{s:s}", "error",
               strerror(errno));
        goto out;
    }
    rc = dp_ring_init(&p->ring, 256, 0);
    if (rc != 0) {
        wc_log(WC_LOG_ERROR, COMPONENT, "io_uring unavailable", "{s:s}", "error", strerror(-rc));
        goto out;
    }
    p->ring_ok = true;
    arm_sig(p);
    arm_ev(p);

    rc = dp_pipe_new(p->spec, &opts, &p->pipe, err, sizeof(err));
    if (rc != 0) {
        wc_log(WC_LOG_ERROR, COMPONENT, "pipeline does not compile", "{s:s}", "error", err);
        code = rc == -EINVAL ? DP_PROC_EXIT_DATAERR : DP_PROC_EXIT_FAIL;
        goto out;
    }
    rc = setup_inputs(p, err, sizeof(err));
    if (rc == 0)
        rc = setup_outputs(p, err, sizeof(err));
    p->held = calloc(HELD_MAX, sizeof(*p->held));
    if (rc == 0 && p->held == NULL)
        rc = -ENOMEM;
    if (rc != 0) {
        wc_log(WC_LOG_ERROR, COMPONENT, "cannot set up inputs and outputs", "{s:s}", "error",
               rc == -ENOMEM ? "out of memory" : err);
        goto out;
    }
    wc_log(WC_LOG_INFO, COMPONENT, "spec loaded", "{s:s, s:s, s:i, s:i, s:i, s:s, s:I, s:s, s:i}",
           "spec", cfg->spec_path, "name", p->name, "inputs", (int)p->ninputs, "partitions",
           (int)p->nparts, "outputs", (int)p->noutputs, "dead_letter", p->dlq ? p->dlq->topic : "",
           "checkpoint_interval_ms", (json_int_t)p->ckpt_interval_ms, "checkpoint_dir", p->ckpt_dir,
           "replica", (int)jint(json_object_get(p->spec, "replica"), "index", 0));

    rc = dp_ckpt_open(&p->ckpt, p->ckpt_dir, p->ckpt_retain, err, sizeof(err));
    if (rc != 0) {
        wc_log(WC_LOG_ERROR, COMPONENT, "cannot open the checkpoint directory", "{s:s}", "error",
               err);
        goto out;
    }
    rc = dp_ckpt_load(p->ckpt, p->spec_hash, &img, err, sizeof(err));
    if (rc == -ENOENT) {
        wc_log(WC_LOG_INFO, COMPONENT, "no checkpoint, starting from the inputs' startOffset",
               "{s:s}", "dir", p->ckpt_dir);
    } else if (rc != 0) {
        wc_log(WC_LOG_ERROR, COMPONENT, "cannot restore a checkpoint", "{s:s}", "error", err);
        code = rc == -ESTALE || rc == -EBADMSG ? DP_PROC_EXIT_DATAERR : DP_PROC_EXIT_FAIL;
        goto out;
    } else {
        dp_ser_r_t r;

        dp_ser_rinit(&r, img.data.state, img.data.state_len);
        rc = dp_pipe_load(p->pipe, &r);
        if (rc != 0) {
            wc_log(WC_LOG_ERROR, COMPONENT,
                   "checkpoint engine state does not load into this pipeline", "{s:s, s:s, s:s}",
                   "dir", p->ckpt_dir, "file", img.name, "error", strerror(-rc));
            code = DP_PROC_EXIT_DATAERR;
            goto out;
        }
        restore_offsets(p, &img.data);
        wc_log(WC_LOG_INFO, COMPONENT, "checkpoint restored", "{s:I, s:s, s:I, s:i, s:I}", "id",
               (json_int_t)img.data.id, "file", img.name, "state_bytes",
               (json_int_t)img.data.state_len, "offsets", (int)img.data.noffsets, "written_ms",
               (json_int_t)img.data.wall_ms);
        dp_gauge_set(&p->m.checkpoint_last_id, (int64_t)img.data.id);
        dp_ckpt_image_dispose(&img);
        /* The restored state is on disk: until something happens, there
         * is nothing new to checkpoint. */
        p->have_ckpt = true;
        p->ckpt_records_out = dp_pipe_stats(p->pipe)->records_out;
        p->ckpt_dead_letters = dp_pipe_stats(p->pipe)->dead_letters;
        p->ckpt_watermark = dp_pipe_watermark(p->pipe);
        p->ckpt_state_bytes = dp_pipe_state_bytes(p->pipe);
    }

    if (p->http_port > 0) {
        dp_http_handlers_t h = {.render = render_metrics, .ready = ready, .ctx = p};

        rc = dp_http_start(&p->http, cfg->bind_host, p->http_port, &h, err, sizeof(err));
        if (rc != 0) {
            wc_log(WC_LOG_ERROR, COMPONENT, "cannot serve metrics", "{s:i, s:s}", "port",
                   p->http_port, "error", err);
            goto out;
        }
    }
    for (uint32_t i = 0; i < p->nproducers; i++) {
        rc = client_new(p, &p->producers[i], RD_KAFKA_PRODUCER, i, err, sizeof(err));
        if (rc != 0) {
            wc_log(WC_LOG_ERROR, COMPONENT, "cannot create a producer", "{s:s}", "error", err);
            code = rc == -EINVAL ? DP_PROC_EXIT_DATAERR : DP_PROC_EXIT_FAIL;
            goto out;
        }
    }
    for (uint32_t i = 0; i < p->noutputs + (p->dlq ? 1 : 0); i++) {
        proc_output_t *o = &p->outputs[i];

        o->rkt = rd_kafka_topic_new(p->producers[o->producer].rk, o->topic, NULL);
        if (o->rkt == NULL) {
            wc_log(WC_LOG_ERROR, COMPONENT, "cannot create an output topic handle", "{s:s, s:s}",
                   "topic", o->topic, "error", rd_kafka_err2str(rd_kafka_last_error()));
            goto out;
        }
    }
    for (uint32_t i = 0; i < p->nconsumers; i++) {
        rc = client_new(p, &p->consumers[i], RD_KAFKA_CONSUMER, i, err, sizeof(err));
        if (rc != 0) {
            wc_log(WC_LOG_ERROR, COMPONENT, "cannot create a consumer", "{s:s}", "error", err);
            code = rc == -EINVAL ? DP_PROC_EXIT_DATAERR : DP_PROC_EXIT_FAIL;
            goto out;
        }
    }
    rc = udf_start(p);
    if (rc == 0)
        rc = assign_inputs(p);
    if (rc == -ECANCELED) {
        wc_log(WC_LOG_INFO, COMPONENT, "stopped before the inputs were assigned", "{s:i}", "signal",
               p->stop_signal);
        code = DP_PROC_EXIT_OK;
        goto out;
    }
    if (rc != 0) {
        code = rc;
        goto out;
    }
    atomic_store(&p->ready, true);
    code = run_loop(p);
out:
    dp_ckpt_image_dispose(&img);
    atomic_store(&p->stopping, true);
    cleanup(p);
    wc_log(code == 0 ? WC_LOG_INFO : WC_LOG_ERROR, COMPONENT, "stopped", "{s:i}", "exit", code);
    free(p);
    return code;
}
