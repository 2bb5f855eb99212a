/* SPDX-License-Identifier: Apache-2.0 */
/* dp_udf: gRPC client for UDF sidecars (unary requestReply, or biStream
 * with many records pipelined per stream). nghttp2 does the HTTP/2 state
 * machine on memory buffers (mem_send/mem_recv); every socket operation
 * (connect, send, recv) and every timer goes through the caller's dp_ring.
 * Call slots are allocated once, at creation, from max_in_flight. Design and
 * wire format: docs/internals/udf.md. */
#include "dp_udf.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef WEIR_VERSION
#define WEIR_VERSION "dev"
#endif

#define CONNS_MAX 64u
#define RBUF_BYTES 65536u
/* mem_send output is batched into one send up to this size. */
#define SEND_BATCH_BYTES 65536u
/* gRPC message prefix: compressed flag (1 byte) + length (u32 big endian). */
#define GRPC_PREFIX 5u
#define MESSAGE_MAX 256u
#define STREAMS_MAX 64u
/* A biStream stream whose server owes this many replies to calls that
 * already expired is reset (its server is stuck or far behind). */
#define BS_SKIP_MAX 1024u

/* ------------------------------------------------------------------------ */
/* gRPC length-prefixed message decoder: bytes arrive in arbitrary pieces    */
/* (HTTP/2 DATA frames split wherever the peer likes).                      */

typedef struct udf_dec {
    uint8_t hdr[GRPC_PREFIX];
    uint32_t hdr_have; /* prefix bytes collected for the current message */
    uint32_t msg_len;  /* current message length, valid once hdr_have == 5 */
    uint32_t msg_have; /* body bytes collected */
    uint32_t max;      /* message size limit */
    uint32_t cap;
    char *buf; /* current message body; retained across messages and calls */
} udf_dec_t;

/* Called per complete message; `msg` is valid until the next dec_feed. */
typedef int (*udf_dec_cb)(void *ctx, const char *msg, uint32_t len);

static void dec_reset(udf_dec_t *d)
{
    d->hdr_have = 0;
    d->msg_len = 0;
    d->msg_have = 0;
}

static void dec_dispose(udf_dec_t *d)
{
    free(d->buf);
    d->buf = NULL;
    d->cap = 0;
}

/* True when the decoder stopped between messages (no partial one pending). */
static bool dec_idle(const udf_dec_t *d)
{
    return d->hdr_have == 0;
}

/*
 * Feeds `len` bytes. Returns 0, -EMSGSIZE (a message above d->max), -EPROTO
 * (compressed flag set: we never offer grpc-accept-encoding), -ENOMEM, or the
 * callback's negative result, after which the decoder must be reset.
 */
static int dec_feed(udf_dec_t *d, const uint8_t *data, size_t len, udf_dec_cb cb, void *ctx)
{
    while (len > 0) {
        if (d->hdr_have < GRPC_PREFIX) {
            size_t n = GRPC_PREFIX - d->hdr_have;

            if (n > len)
                n = len;
            memcpy(d->hdr + d->hdr_have, data, n);
            d->hdr_have += (uint32_t)n;
            data += n;
            len -= n;
            if (d->hdr_have < GRPC_PREFIX)
                return 0;
            if (d->hdr[0] != 0)
                return -EPROTO;
            d->msg_len = (uint32_t)d->hdr[1] << 24 | (uint32_t)d->hdr[2] << 16 |
                         (uint32_t)d->hdr[3] << 8 | (uint32_t)d->hdr[4];
            d->msg_have = 0;
            if (d->msg_len > d->max)
                return -EMSGSIZE;
            if (d->msg_len > d->cap) {
                char *nb = realloc(d->buf, d->msg_len);

                if (nb == NULL)
                    return -ENOMEM;
                d->buf = nb;
                d->cap = d->msg_len;
            }
        }
        size_t n = d->msg_len - d->msg_have;

        if (n > len)
            n = len;
        if (n > 0) {
            memcpy(d->buf + d->msg_have, data, n);
            d->msg_have += (uint32_t)n;
            data += n;
            len -= n;
        }
        if (d->msg_have == d->msg_len) {
            int rc = cb(ctx, d->buf, d->msg_len);

            d->hdr_have = 0;
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* Writes the 5-byte gRPC prefix for a message of `len` bytes. */
static void grpc_prefix(uint8_t *out, uint32_t len)
{
    out[0] = 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

/* ------------------------------------------------------------------------ */
/* GrpcMessage protobuf encoding (hand-rolled, zero-copy into the request    */
/* buffer; the unit tests check it against protobuf-c's dp_udf_pb.c).       */

static size_t varint_len(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static size_t ld_len(size_t n)
{
    return 1 + varint_len(n) + n;
}

static uint8_t *ld_put(uint8_t *p, uint8_t tag, const void *data, size_t n)
{
    *p++ = tag;
    p = varint_put(p, n);
    if (n > 0)
        memcpy(p, data, n);
    return p + n;
}

/* A map entry: both key and value are always written, as protoc's C++ and
 * Java runtimes do (docs/internals/harness-udf-python.md). */
static size_t entry_len(const dp_hdr_t *h)
{
    uint32_t vl = h->val != NULL ? h->val_len : 0;

    return ld_len(h->name_len) + ld_len(vl);
}

/* Encoded size of GrpcMessage{payload = 1; map<string,string> headers = 2}. */
static size_t pb_msg_size(const dp_udf_msg_t *m)
{
    size_t n = m->payload_len > 0 ? ld_len(m->payload_len) : 0; /* proto3: default omitted */

    for (uint32_t i = 0; i < m->nhdrs; i++)
        n += ld_len(entry_len(&m->hdrs[i]));
    return n;
}

/* Encodes `m` at `out` (pb_msg_size(m) bytes); returns the end. */
static uint8_t *pb_msg_encode(const dp_udf_msg_t *m, uint8_t *out)
{
    if (m->payload_len > 0)
        out = ld_put(out, 0x0a, m->payload, m->payload_len);
    for (uint32_t i = 0; i < m->nhdrs; i++) {
        const dp_hdr_t *h = &m->hdrs[i];
        uint32_t vl = h->val != NULL ? h->val_len : 0;

        *out++ = 0x12;
        out = varint_put(out, entry_len(h));
        out = ld_put(out, 0x0a, h->name, h->name_len);
        out = ld_put(out, 0x12, h->val != NULL ? h->val : "", vl);
    }
    return out;
}

/* Reads a varint at *p (< end). Returns 0 or -EBADMSG. */
static int varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;

    if (*p < end && **p < 0x80) { /* tags and short lengths: one byte */
        *out = *(*p)++;
        return 0;
    }
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -EBADMSG;
        uint8_t b = *(*p)++;

        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return 0;
        }
    }
    return -EBADMSG;
}

/* Next field of a message: tag, and for length-delimited fields the bytes.
 * Unknown wire types 0/1/5 are skipped by the caller via *skip. */
static int field_next(const uint8_t **p, const uint8_t *end, uint32_t *field, unsigned *wt,
                      const uint8_t **data, size_t *len)
{
    uint64_t tag, v;

    if (varint_get(p, end, &tag) < 0 || tag >> 3 == 0 || tag >> 3 > UINT32_MAX)
        return -EBADMSG;
    *field = (uint32_t)(tag >> 3);
    *wt = (unsigned)(tag & 7);
    switch (*wt) {
    case 0:
        return varint_get(p, end, &v);
    case 1:
        if (end - *p < 8)
            return -EBADMSG;
        *p += 8;
        return 0;
    case 5:
        if (end - *p < 4)
            return -EBADMSG;
        *p += 4;
        return 0;
    case 2:
        if (varint_get(p, end, &v) < 0 || v > (uint64_t)(end - *p))
            return -EBADMSG;
        *data = *p;
        *len = (size_t)v;
        *p += v;
        return 0;
    default: /* groups (3, 4) are not valid in proto3 */
        return -EBADMSG;
    }
}

/*
 * Decodes a GrpcMessage. The payload and header strings point into `buf`;
 * headers go to *hdrs (grown as needed, retained by the caller). Unknown
 * fields are skipped. Returns 0, -EBADMSG or -ENOMEM.
 */
static int pb_msg_decode(const uint8_t *buf, size_t len, const char **payload,
                         uint32_t *payload_len, dp_hdr_t **hdrs, uint32_t *nhdrs,
                         uint32_t *hdrs_cap)
{
    const uint8_t *p = buf, *end = buf + len;

    *payload = NULL;
    *payload_len = 0;
    *nhdrs = 0;
    while (p < end) {
        uint32_t field;
        unsigned wt;
        const uint8_t *data = NULL;
        size_t dlen = 0;

        if (field_next(&p, end, &field, &wt, &data, &dlen) < 0)
            return -EBADMSG;
        if (field == 1 && wt == 2) {
            *payload = (const char *)data;
            *payload_len = (uint32_t)dlen;
        } else if (field == 2 && wt == 2) {
            const uint8_t *q = data, *qend = data + dlen;
            dp_hdr_t h = {.name = "", .val = ""};

            while (q < qend) {
                uint32_t f2;
                unsigned wt2;
                const uint8_t *d2 = NULL;
                size_t l2 = 0;

                if (field_next(&q, qend, &f2, &wt2, &d2, &l2) < 0)
                    return -EBADMSG;
                if (wt2 != 2)
                    continue;
                if (f2 == 1) {
                    h.name = (const char *)d2;
                    h.name_len = (uint32_t)l2;
                } else if (f2 == 2) {
                    h.val = (const char *)d2;
                    h.val_len = (uint32_t)l2;
                }
            }
            if (*nhdrs == *hdrs_cap) {
                uint32_t ncap = *hdrs_cap ? *hdrs_cap * 2 : 8;
                dp_hdr_t *nh = realloc(*hdrs, ncap * sizeof(*nh));

                if (nh == NULL)
                    return -ENOMEM;
                *hdrs = nh;
                *hdrs_cap = ncap;
            }
            (*hdrs)[(*nhdrs)++] = h;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Status mapping (grpc/doc/http-grpc-status-mapping.md, PROTOCOL-HTTP2.md). */

static const char *const status_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *dp_udf_status_str(int status)
{
    if (status < 0 || status >= (int)(sizeof(status_names) / sizeof(status_names[0])))
        return "?";
    return status_names[status];
}

int dp_udf_status_retryable(int status)
{
    return status == DP_UDF_UNAVAILABLE || status == DP_UDF_RESOURCE_EXHAUSTED;
}

/* HTTP status of a response without grpc-status. */
static int status_from_http(int http)
{
    switch (http) {
    case 400:
        return DP_UDF_INTERNAL;
    case 401:
        return DP_UDF_UNAUTHENTICATED;
    case 403:
        return DP_UDF_PERMISSION_DENIED;
    case 404:
        return DP_UDF_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return DP_UDF_UNAVAILABLE;
    default:
        return DP_UDF_UNKNOWN;
    }
}

/* RST_STREAM error code of a stream that ended without grpc-status. */
static int status_from_h2(uint32_t code)
{
    switch (code) {
    case NGHTTP2_REFUSED_STREAM: /* the server did not process it: safe to retry */
        return DP_UDF_UNAVAILABLE;
    case NGHTTP2_CANCEL:
        return DP_UDF_CANCELLED;
    case NGHTTP2_ENHANCE_YOUR_CALM:
        return DP_UDF_RESOURCE_EXHAUSTED;
    case NGHTTP2_INADEQUATE_SECURITY:
        return DP_UDF_PERMISSION_DENIED;
    default:
        return DP_UDF_INTERNAL;
    }
}

/* grpc-message is percent-encoded (PROTOCOL-HTTP2.md); decodes into out. */
static void percent_decode(char *out, size_t cap, const uint8_t *in, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        if (in[i] == '%' && i + 2 < len) {
            char hex[3] = {(char)in[i + 1], (char)in[i + 2], 0};
            char *end;
            unsigned long v = strtoul(hex, &end, 16);

            if (*end == '\0') {
                out[o++] = (char)v;
                i += 2;
                continue;
            }
        }
        out[o++] = (char)in[i];
    }
    out[o] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Client state.                                                            */

enum call_state { CALL_FREE, CALL_ACTIVE, CALL_DONE };

enum conn_state {
    CONN_IDLE,       /* no socket (client closing) */
    CONN_CONNECTING, /* connect op in flight; requests queue in the session */
    CONN_READY,      /* connected: recv armed, sends flow */
    CONN_CLOSING,    /* failed: waiting for its ring ops before close(fd) */
    CONN_BACKOFF,    /* closed, reconnects at retry_at_ms; calls fail fast */
};

typedef struct udf_conn udf_conn_t;
typedef struct udf_bs udf_bs_t;

typedef struct udf_call {
    struct udf_call *next, *prev; /* active list (doubly), free and done lists (next) */
    dp_udf_client_t *client;
    udf_conn_t *conn;       /* NULL when failed fast */
    udf_bs_t *bs;           /* biStream: the stream it awaits a reply on */
    struct udf_call *bnext; /* biStream: next call on the same stream */
    dp_udf_cb cb;
    void *ctx;
    enum call_state state;
    int32_t stream_id;
    int status;
    int grpc_status; /* -1: none received */
    int http_status;
    bool have_reply;
    int64_t deadline_ms;
    uint8_t *req; /* 5-byte prefix + GrpcMessage; retained across calls */
    uint32_t req_len, req_off, req_cap;
    const char *reply; /* into dec.buf */
    uint32_t reply_len;
    udf_dec_t dec;
    dp_hdr_t *hdrs; /* decoded reply headers; retained */
    uint32_t hdrs_cap;
    char message[MESSAGE_MAX];
} udf_call_t;

/*
 * One long-lived biStream stream. Requests are appended, framed, to obuf and
 * handed to nghttp2 by a data provider that defers while obuf is empty;
 * replies are matched to requests in order (q_head is the oldest unanswered).
 */
struct udf_bs {
    udf_conn_t *conn;
    int32_t stream_id;           /* -1: not open */
    udf_call_t *q_head, *q_tail; /* sent, awaiting replies, in order */
    unsigned nq;
    unsigned skip; /* replies still owed to calls that already expired */
    bool deferred; /* data provider parked: resume when obuf gets bytes */
    int grpc_status;
    int http_status;
    uint8_t *obuf; /* framed requests not yet taken by nghttp2 */
    size_t olen, ooff, ocap;
    udf_dec_t dec;
    char message[MESSAGE_MAX];
};

struct udf_conn {
    dp_udf_client_t *client;
    udf_bs_t *bs; /* biStream mode: cfg.streams streams */
    enum conn_state state;
    int fd;
    nghttp2_session *h2;
    unsigned active; /* calls bound to this connection */
    unsigned ops;    /* ring ops in flight (connect, recv, send) */
    bool sending;    /* op_send in flight: sbuf is the kernel's until it completes */
    bool want_flush; /* nghttp2 may have output; flushed in client_after */
    bool draining;   /* GOAWAY received or stream ids exhausted: no new calls */
    uint32_t backoff_ms;
    int64_t retry_at_ms;
    dp_ring_op_t op_connect, op_recv, op_send;
    uint8_t *rbuf;
    uint8_t *sbuf;
    size_t slen, scap;
};

struct dp_udf_client {
    dp_ring_t *ring;
    dp_udf_cfg_t cfg;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char authority[128];
    char timeout_hdr[16]; /* grpc-timeout value, from cfg.timeout_ms */
    nghttp2_session_callbacks *cbs;
    udf_conn_t *conns;
    udf_call_t *calls;
    udf_call_t *free_head;
    udf_call_t *act_head, *act_tail; /* submission order == deadline order */
    udf_call_t *done_head, *done_tail;
    unsigned ops; /* tick and kick in flight */
    bool tick_armed, kick_armed;
    bool dispatching; /* inside one of our ring callbacks: client_after runs next */
    bool closing;
    void (*close_cb)(void *ctx);
    void *close_ctx;
    uint32_t tick_ms;
    uint64_t rng;
    dp_udf_stats_t st;
    char message[MESSAGE_MAX]; /* the completing call's message: its slot may be reused */
    dp_ring_op_t op_tick, op_kick;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rng_next(dp_udf_client_t *c)
{
    /* xorshift64*: jitter only, not security. */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 0x2545F4914F6CDD1DULL;
}

static void arm_kick(dp_udf_client_t *c);
static void conn_flush(udf_conn_t *conn);

static void act_unlink(dp_udf_client_t *c, udf_call_t *call)
{
    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        c->act_head = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    else
        c->act_tail = call->prev;
    call->next = call->prev = NULL;
}

/*
 * Ends an active call with `status`: it moves to the done list and its
 * callback runs in client_after, never here (this may be inside an nghttp2
 * callback or inside dp_udf_call).
 */
static void bs_expire(udf_call_t *call);

static void call_finish(udf_call_t *call, int status, const char *msg)
{
    dp_udf_client_t *c = call->client;

    if (call->state != CALL_ACTIVE)
        return;
    if (call->bs != NULL)
        bs_expire(call);
    act_unlink(c, call);
    if (call->conn != NULL) {
        assert(call->conn->active > 0);
        call->conn->active--;
    }
    call->state = CALL_DONE;
    call->status = status;
    if (msg != NULL)
        snprintf(call->message, sizeof(call->message), "%s", msg);
    call->next = NULL;
    if (c->done_tail != NULL)
        c->done_tail->next = call;
    else
        c->done_head = call;
    c->done_tail = call;
    if (!c->dispatching)
        arm_kick(c);
}

/* The call nghttp2 reports for (session, stream), if it is still ours. */
static udf_call_t *stream_call(udf_conn_t *conn, int32_t stream_id)
{
    udf_call_t *call = nghttp2_session_get_stream_user_data(conn->h2, stream_id);

    /* A call ended early (deadline) keeps its stream until the RST_STREAM
     * goes out, and its slot may already serve another stream: check. */
    if (call == NULL || call->state != CALL_ACTIVE || call->conn != conn ||
        call->stream_id != stream_id)
        return NULL;
    return call;
}

/* ------------------------------------------------------------------------ */
/* biStream streams.                                                        */

/* A call that ends before its reply (deadline, close) leaves the queue; its
 * reply, if it ever comes, is dropped. All calls share one timeout and enter
 * the stream in submission order, so an expiring call is always the head. */
static void bs_expire(udf_call_t *call)
{
    udf_bs_t *bs = call->bs;
    udf_call_t **pp = &bs->q_head, *prev = NULL;

    assert(bs->q_head == call);
    while (*pp != NULL && *pp != call) {
        prev = *pp;
        pp = &(*pp)->bnext;
    }
    if (*pp == call) {
        *pp = call->bnext;
        if (bs->q_tail == call)
            bs->q_tail = prev;
        bs->nq--;
        bs->skip++;
    }
    call->bs = NULL;
    call->bnext = NULL;
}

/* Forgets the stream (it is closed or being reset): queued calls are
 * detached (their caller finishes them), buffers kept. */
static void bs_reset(udf_bs_t *bs)
{
    for (udf_call_t *call = bs->q_head, *next; call != NULL; call = next) {
        next = call->bnext;
        call->bs = NULL;
        call->bnext = NULL;
    }
    bs->q_head = bs->q_tail = NULL;
    bs->nq = 0;
    bs->skip = 0;
    bs->stream_id = -1;
    bs->deferred = false;
    bs->grpc_status = -1;
    bs->http_status = 0;
    bs->message[0] = '\0';
    bs->olen = bs->ooff = 0;
    dec_reset(&bs->dec);
}

/*
 * Ends the stream's calls: the oldest unanswered one gets `head_status`
 * (in the in-order contract, the request the server failed on), the others
 * `status`; with `rst` the stream is reset too. The next call reopens it.
 */
static void bs_abort(udf_bs_t *bs, int head_status, const char *head_msg, int status,
                     const char *msg, bool rst)
{
    udf_conn_t *conn = bs->conn;
    udf_call_t *call = bs->q_head;

    if (rst && bs->stream_id > 0 && conn->h2 != NULL) {
        nghttp2_submit_rst_stream(conn->h2, NGHTTP2_FLAG_NONE, bs->stream_id, NGHTTP2_CANCEL);
        conn->want_flush = true;
    }
    bs->q_head = bs->q_tail = NULL; /* detached here, in order */
    bs_reset(bs);
    for (bool first = true; call != NULL; first = false) {
        udf_call_t *next = call->bnext;

        call->bs = NULL;
        call->bnext = NULL;
        call_finish(call, first ? head_status : status, first ? head_msg : msg);
        call = next;
    }
}

static ssize_t bs_read_cb(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t len,
                          uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    udf_conn_t *conn = user_data;
    udf_bs_t *bs = source->ptr;
    size_t n;

    if (bs->conn != conn || bs->stream_id != stream_id)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stale stream */
    n = bs->olen - bs->ooff;
    if (n == 0) {
        bs->deferred = true; /* never EOF: the stream lives until reset */
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n > len)
        n = len;
    memcpy(buf, bs->obuf + bs->ooff, n);
    bs->ooff += n;
    if (bs->ooff == bs->olen)
        bs->olen = bs->ooff = 0;
    return (ssize_t)n;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                                  \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                           \
    }

/* Opens the stream (HEADERS without END_STREAM, no grpc-timeout: deadlines
 * are per record, enforced locally). Returns 0 or an nghttp2 error. */
static int bs_open(udf_bs_t *bs)
{
    dp_udf_client_t *c = bs->conn->client;
    nghttp2_nv nva[] = {
        NV(":method", "POST"),
        NV(":scheme", "http"),
        NV(":path", DP_UDF_PATH_BI_STREAM),
        NV(":authority", c->authority),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
        NV("user-agent", "weir-udf/" WEIR_VERSION),
    };
    nghttp2_data_provider dp = {.source.ptr = bs, .read_callback = bs_read_cb};
    int32_t sid;

    bs_reset(bs);
    sid = nghttp2_submit_request(bs->conn->h2, NULL, nva, sizeof(nva) / sizeof(nva[0]), &dp, bs);
    if (sid < 0)
        return sid;
    bs->stream_id = sid;
    c->st.streams++;
    return 0;
}

/* Appends one framed request; the data provider is resumed if parked. */
static int bs_append(udf_bs_t *bs, const dp_udf_msg_t *req, size_t body)
{
    size_t need = GRPC_PREFIX + body;

    if (bs->ooff > 0 && bs->olen + need > bs->ocap) {
        memmove(bs->obuf, bs->obuf + bs->ooff, bs->olen - bs->ooff);
        bs->olen -= bs->ooff;
        bs->ooff = 0;
    }
    if (bs->olen + need > bs->ocap) {
        size_t ncap = bs->ocap ? bs->ocap * 2 : 4096;
        uint8_t *nb;

        while (ncap < bs->olen + need)
            ncap *= 2;
        nb = realloc(bs->obuf, ncap);
        if (nb == NULL)
            return -ENOMEM;
        bs->obuf = nb;
        bs->ocap = ncap;
    }
    grpc_prefix(bs->obuf + bs->olen, (uint32_t)body);
    pb_msg_encode(req, bs->obuf + bs->olen + GRPC_PREFIX);
    bs->olen += need;
    if (bs->deferred) {
        bs->deferred = false;
        nghttp2_session_resume_data(bs->conn->h2, bs->stream_id);
    }
    return 0;
}

/* One reply message: it answers the oldest unanswered request. */
static int bs_msg_cb(void *ctx, const char *msg, uint32_t len)
{
    udf_bs_t *bs = ctx;
    udf_call_t *call;

    if (bs->skip > 0) {
        bs->skip--;
        bs->conn->client->st.late++;
        return 0;
    }
    call = bs->q_head;
    if (call == NULL)
        return -ENOMSG;
    if (len > call->dec.cap) {
        char *nb = realloc(call->dec.buf, len);

        if (nb == NULL)
            return -ENOMEM;
        call->dec.buf = nb;
        call->dec.cap = len;
    }
    bs->q_head = call->bnext;
    if (bs->q_head == NULL)
        bs->q_tail = NULL;
    bs->nq--;
    call->bs = NULL;
    call->bnext = NULL;
    if (len > 0)
        memcpy(call->dec.buf, msg, len);
    call->reply = len > 0 ? call->dec.buf : "";
    call->reply_len = len;
    call->have_reply = true;
    call_finish(call, DP_UDF_OK, NULL);
    return 0;
}

/* The biStream of (conn, stream_id), if it is still that stream. */
static udf_bs_t *stream_bs(udf_conn_t *conn, int32_t stream_id)
{
    udf_bs_t *bs = nghttp2_session_get_stream_user_data(conn->h2, stream_id);

    if (bs == NULL || bs->conn != conn || bs->stream_id != stream_id)
        return NULL;
    return bs;
}

static void bs_on_data(udf_conn_t *conn, udf_bs_t *bs, const uint8_t *data, size_t len)
{
    int rc = dec_feed(&bs->dec, data, len, bs_msg_cb, bs);

    if (rc == 0)
        return;
    bs_abort(bs, DP_UDF_INTERNAL,
             rc == -EMSGSIZE ? "reply message larger than limit"
             : rc == -EPROTO ? "compressed reply without grpc-encoding"
             : rc == -ENOMSG ? "biStream reply without a request"
                             : "out of memory",
             DP_UDF_UNAVAILABLE, "biStream reset after a bad reply to an earlier request", true);
}

static void bs_on_close(udf_bs_t *bs, uint32_t error_code)
{
    char detail[MESSAGE_MAX], msg[MESSAGE_MAX];
    int st;

    if (bs->grpc_status > 0) {
        memcpy(msg, bs->message, sizeof(msg));
        snprintf(detail, sizeof(detail), "biStream ended with %s on an earlier request",
                 dp_udf_status_str(bs->grpc_status));
        bs_abort(bs, bs->grpc_status, msg, DP_UDF_UNAVAILABLE, detail, false);
        return;
    }
    if (bs->grpc_status == DP_UDF_OK) {
        st = DP_UDF_UNAVAILABLE;
        snprintf(detail, sizeof(detail), "biStream ended with %u requests unanswered", bs->nq);
    } else if (error_code != NGHTTP2_NO_ERROR) {
        st = status_from_h2(error_code);
        snprintf(detail, sizeof(detail), "biStream reset: %s", nghttp2_http2_strerror(error_code));
    } else if (bs->http_status != 200) {
        st = status_from_http(bs->http_status);
        snprintf(detail, sizeof(detail), "HTTP status %d without grpc-status", bs->http_status);
    } else {
        st = DP_UDF_INTERNAL;
        snprintf(detail, sizeof(detail), "biStream ended without grpc-status");
    }
    bs_abort(bs, st, detail, st, detail, false);
}

/* ------------------------------------------------------------------------ */
/* nghttp2 callbacks. They never call back into the session's I/O.          */

static int reply_msg_cb(void *ctx, const char *msg, uint32_t len)
{
    udf_call_t *call = ctx;

    if (call->have_reply)
        return -EPROTO;
    call->have_reply = true;
    call->reply = msg != NULL ? msg : ""; /* an empty GrpcMessage is 0 bytes */
    call->reply_len = len;
    return 0;
}

static int h2_on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id,
                            const uint8_t *data, size_t len, void *user_data)
{
    udf_conn_t *conn = user_data;
    udf_call_t *call;
    int rc;

    if (conn->client->cfg.bistream) {
        udf_bs_t *bs = stream_bs(conn, stream_id);

        if (bs != NULL)
            bs_on_data(conn, bs, data, len);
        return 0;
    }
    call = stream_call(conn, stream_id);
    if (call == NULL)
        return 0;
    rc = dec_feed(&call->dec, data, len, reply_msg_cb, call);
    if (rc < 0) {
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
        conn->want_flush = true;
        if (rc == -EMSGSIZE)
            call_finish(call, DP_UDF_RESOURCE_EXHAUSTED, "reply message larger than limit");
        else if (rc == -EPROTO && call->have_reply && call->dec.hdr[0] == 0)
            call_finish(call, DP_UDF_INTERNAL, "more than one message in a unary reply");
        else if (rc == -EPROTO)
            call_finish(call, DP_UDF_INTERNAL, "compressed reply without grpc-encoding");
        else
            call_finish(call, DP_UDF_INTERNAL, "out of memory");
    }
    return 0;
}

static bool name_is(const uint8_t *name, size_t len, const char *want)
{
    size_t wl = strlen(want);

    return len == wl && memcmp(name, want, wl) == 0;
}

static int h2_on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *user_data)
{
    udf_conn_t *conn = user_data;
    udf_call_t *call = NULL;
    udf_bs_t *bs = NULL;
    int *http_status, *grpc_status;
    char *message;

    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (conn->client->cfg.bistream) {
        bs = stream_bs(conn, frame->hd.stream_id);
        if (bs == NULL)
            return 0;
        http_status = &bs->http_status;
        grpc_status = &bs->grpc_status;
        message = bs->message;
    } else {
        call = stream_call(conn, frame->hd.stream_id);
        if (call == NULL)
            return 0;
        http_status = &call->http_status;
        grpc_status = &call->grpc_status;
        message = call->message;
    }
    if (name_is(name, namelen, ":status")) {
        int v = 0;

        for (size_t i = 0; i < valuelen && i < 3 && value[i] >= '0' && value[i] <= '9'; i++)
            v = v * 10 + (value[i] - '0');
        *http_status = v;
    } else if (name_is(name, namelen, "grpc-status")) {
        int v = 0;

        for (size_t i = 0; i < valuelen && i < 6; i++) {
            if (value[i] < '0' || value[i] > '9') {
                v = DP_UDF_UNKNOWN;
                break;
            }
            v = v * 10 + (value[i] - '0');
        }
        *grpc_status = v > DP_UDF_UNAUTHENTICATED ? DP_UDF_UNKNOWN : v;
    } else if (name_is(name, namelen, "grpc-message")) {
        percent_decode(message, MESSAGE_MAX, value, valuelen);
    } else if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE &&
               name_is(name, namelen, "content-type") &&
               (valuelen < 16 || memcmp(value, "application/grpc", 16) != 0 ||
                (valuelen > 16 && value[16] != '+' && value[16] != ';'))) {
        /* Not a gRPC response (a plain HTTP server or proxy on the port):
         * its body is not gRPC framing; fail from the HTTP status
         * (200 -> UNKNOWN), as gRPC's http-grpc-status-mapping says. */
        char detail[MESSAGE_MAX];
        int st = status_from_http(*http_status);

        snprintf(detail, sizeof(detail),
                 "reply content-type '%.*s' is not application/grpc (HTTP %d)",
                 (int)(valuelen < 64 ? valuelen : 64), (const char *)value, *http_status);
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_CANCEL);
        conn->want_flush = true;
        if (bs != NULL)
            bs_abort(bs, st, detail, st, detail, false);
        else
            call_finish(call, st, detail);
    }
    return 0;
}

static int h2_on_stream_close(nghttp2_session *h2, int32_t stream_id, uint32_t error_code,
                              void *user_data)
{
    udf_conn_t *conn = user_data;
    udf_call_t *call;
    char detail[96];

    if (conn->client->cfg.bistream) {
        udf_bs_t *bs = stream_bs(conn, stream_id);

        if (bs != NULL)
            bs_on_close(bs, error_code);
        return 0;
    }
    call = stream_call(conn, stream_id);
    if (call == NULL)
        return 0;
    if (call->grpc_status >= 0) {
        if (call->grpc_status == DP_UDF_OK && !call->have_reply)
            call_finish(call, DP_UDF_INTERNAL, "OK status without a reply message");
        else if (call->grpc_status == DP_UDF_OK && !dec_idle(&call->dec))
            call_finish(call, DP_UDF_INTERNAL, "truncated reply message");
        else
            call_finish(call, call->grpc_status, NULL);
    } else if (error_code != NGHTTP2_NO_ERROR) {
        snprintf(detail, sizeof(detail), "stream reset: %s", nghttp2_http2_strerror(error_code));
        call_finish(call, status_from_h2(error_code), detail);
    } else if (call->http_status != 200) {
        snprintf(detail, sizeof(detail), "HTTP status %d without grpc-status", call->http_status);
        call_finish(call, status_from_http(call->http_status), detail);
    } else {
        call_finish(call, DP_UDF_INTERNAL, "stream ended without grpc-status");
    }
    return 0;
}

static int h2_on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *user_data)
{
    udf_conn_t *conn = user_data;

    if (frame->hd.type == NGHTTP2_SETTINGS && (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
        /* The peer speaks HTTP/2: the next loss starts a fresh backoff. */
        conn->backoff_ms = conn->client->cfg.reconnect_min_ms;
    } else if (frame->hd.type == NGHTTP2_GOAWAY) {
        /* Streams above last_stream_id are closed by nghttp2 with
         * REFUSED_STREAM (-> UNAVAILABLE); the rest may still finish. */
        conn->draining = true;
    }
    return 0;
}

static int h2_on_frame_not_send(nghttp2_session *h2, const nghttp2_frame *frame, int lib_error,
                                void *user_data)
{
    udf_conn_t *conn = user_data;
    dp_udf_client_t *c = conn->client;
    char detail[96];

    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (c->cfg.bistream) {
        for (unsigned i = 0; i < c->cfg.streams; i++) {
            udf_bs_t *bs = &conn->bs[i];

            if (bs->stream_id == frame->hd.stream_id) {
                snprintf(detail, sizeof(detail), "biStream not opened: %s",
                         nghttp2_strerror(lib_error));
                bs_abort(bs, DP_UDF_UNAVAILABLE, detail, DP_UDF_UNAVAILABLE, detail, false);
            }
        }
        return 0;
    }
    /* The stream may never have opened, so no stream user data: scan. */
    for (udf_call_t *call = c->act_head; call != NULL; call = call->next) {
        if (call->conn == conn && call->stream_id == frame->hd.stream_id) {
            snprintf(detail, sizeof(detail), "request not sent: %s", nghttp2_strerror(lib_error));
            call_finish(call, DP_UDF_UNAVAILABLE, detail);
            break;
        }
    }
    return 0;
}

static ssize_t req_read_cb(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t len,
                           uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    udf_conn_t *conn = user_data;
    udf_call_t *call = source->ptr;
    size_t n;

    if (call->state != CALL_ACTIVE || call->conn != conn || call->stream_id != stream_id)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stale stream */
    n = call->req_len - call->req_off;
    if (n > len)
        n = len;
    memcpy(buf, call->req + call->req_off, n);
    call->req_off += (uint32_t)n;
    if (call->req_off == call->req_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ------------------------------------------------------------------------ */
/* Connections.                                                             */

static void on_connect(dp_ring_op_t *op);
static void on_recv(dp_ring_op_t *op);
static void on_send(dp_ring_op_t *op);
static void client_after(dp_udf_client_t *c);

/* Closes the socket once no ring op refers to it, then waits to reconnect. */
static void conn_maybe_closed(udf_conn_t *conn)
{
    dp_udf_client_t *c = conn->client;

    if (conn->state != CONN_CLOSING || conn->ops > 0)
        return;
    if (conn->fd >= 0) {
        close(conn->fd);
        conn->fd = -1;
    }
    conn->slen = 0;
    conn->sending = false;
    conn->want_flush = false;
    conn->draining = false;
    if (c->closing) {
        conn->state = CONN_IDLE;
        return;
    }
    /* Full backoff +-20% jitter, so replicas do not reconnect in lockstep. */
    uint32_t b = conn->backoff_ms;
    uint32_t j = (uint32_t)(rng_next(c) % (b / 5 * 2 + 1));

    conn->state = CONN_BACKOFF;
    conn->retry_at_ms = now_ms() + (int64_t)(b - b / 5 + j);
    conn->backoff_ms = b * 2 > c->cfg.reconnect_max_ms ? c->cfg.reconnect_max_ms : b * 2;
}

/*
 * Tears a connection down: its calls fail with `status`, the session goes,
 * and the socket is shut down so in-flight recv/send complete. Never called
 * from inside an nghttp2 callback.
 */
static void conn_fail(udf_conn_t *conn, int status, const char *why)
{
    dp_udf_client_t *c = conn->client;
    char detail[MESSAGE_MAX];
    udf_call_t *call, *next;

    if (conn->state != CONN_CONNECTING && conn->state != CONN_READY)
        return;
    snprintf(detail, sizeof(detail), "connection to %s: %.100s", c->authority, why);
    for (unsigned i = 0; c->cfg.bistream && i < c->cfg.streams; i++)
        bs_reset(&conn->bs[i]);
    for (call = c->act_head; call != NULL; call = next) {
        next = call->next;
        if (call->conn == conn)
            call_finish(call, status, detail);
    }
    assert(conn->active == 0);
    nghttp2_session_del(conn->h2);
    conn->h2 = NULL;
    if (conn->fd >= 0)
        shutdown(conn->fd, SHUT_RDWR);
    conn->state = CONN_CLOSING;
    c->st.conn_lost++;
    conn_maybe_closed(conn);
}

static void conn_start(udf_conn_t *conn)
{
    dp_udf_client_t *c = conn->client;
    nghttp2_settings_entry iv[2] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->cfg.stream_window_bytes},
    };
    int one = 1, syncnt = 3, rc;

    assert(conn->state == CONN_BACKOFF || conn->state == CONN_IDLE);
    conn->fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (conn->fd < 0)
        goto out_backoff;
    /* Small request/reply messages: no Nagle delay. A dead host fails in a
     * few seconds of SYN retries rather than the default two minutes. */
    setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(conn->fd, IPPROTO_TCP, TCP_SYNCNT, &syncnt, sizeof(syncnt));
    if (nghttp2_session_client_new(&conn->h2, c->cbs, conn) != 0)
        goto out_close;
    if (nghttp2_submit_settings(conn->h2, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        nghttp2_session_set_local_window_size(conn->h2, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)c->cfg.session_window_bytes) != 0)
        goto out_session;
    rc = dp_ring_prep_connect(c->ring, &conn->op_connect, conn->fd,
                              (const struct sockaddr *)&c->addr, c->addrlen, on_connect, conn);
    if (rc < 0)
        goto out_session;
    conn->ops++;
    conn->state = CONN_CONNECTING;
    conn->draining = false;
    return;

out_session:
    nghttp2_session_del(conn->h2);
    conn->h2 = NULL;
out_close:
    close(conn->fd);
    conn->fd = -1;
out_backoff:
    /* Reuse the backoff path: count it as a failed connect. */
    conn->state = CONN_CLOSING;
    c->st.conn_lost++;
    conn_maybe_closed(conn);
}

static void conn_arm_recv(udf_conn_t *conn)
{
    dp_udf_client_t *c = conn->client;

    if (dp_ring_prep_recv(c->ring, &conn->op_recv, conn->fd, conn->rbuf, RBUF_BYTES, 0, on_recv,
                          conn) < 0) {
        conn_fail(conn, DP_UDF_UNAVAILABLE, "ring full (recv)");
        return;
    }
    conn->ops++;
}

/* Moves nghttp2's pending output into sbuf and sends it (one send at a time). */
static void conn_flush(udf_conn_t *conn)
{
    dp_udf_client_t *c = conn->client;

    conn->want_flush = false;
    if (conn->state != CONN_READY || conn->sending)
        return;
    while (conn->slen < SEND_BATCH_BYTES) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(conn->h2, &p);

        if (n < 0) {
            conn_fail(conn, DP_UDF_UNAVAILABLE, nghttp2_strerror((int)n));
            return;
        }
        if (n == 0)
            break;
        if (conn->slen + (size_t)n > conn->scap) {
            /* Grows to the largest burst once; the buffer is then kept. */
            size_t ncap = conn->scap * 2;
            uint8_t *nb;

            while (ncap < conn->slen + (size_t)n)
                ncap *= 2;
            nb = realloc(conn->sbuf, ncap);
            if (nb == NULL) {
                conn_fail(conn, DP_UDF_RESOURCE_EXHAUSTED, "out of memory");
                return;
            }
            conn->sbuf = nb;
            conn->scap = ncap;
        }
        memcpy(conn->sbuf + conn->slen, p, (size_t)n);
        conn->slen += (size_t)n;
    }
    if (conn->slen == 0)
        return;
    if (dp_ring_prep_send(c->ring, &conn->op_send, conn->fd, conn->sbuf, conn->slen, MSG_NOSIGNAL,
                          on_send, conn) < 0) {
        conn_fail(conn, DP_UDF_UNAVAILABLE, "ring full (send)");
        return;
    }
    conn->ops++;
    conn->sending = true;
}

static void on_connect(dp_ring_op_t *op)
{
    udf_conn_t *conn = op->ctx;
    dp_udf_client_t *c = conn->client;

    c->dispatching = true;
    conn->ops--;
    if (conn->state != CONN_CONNECTING) {
        conn_maybe_closed(conn);
    } else if (op->res < 0) {
        conn_fail(conn, DP_UDF_UNAVAILABLE, strerror(-op->res));
    } else {
        conn->state = CONN_READY;
        c->st.connects++;
        conn_arm_recv(conn);
        conn->want_flush = true;
    }
    client_after(c);
}

static void on_recv(dp_ring_op_t *op)
{
    udf_conn_t *conn = op->ctx;
    dp_udf_client_t *c = conn->client;
    ssize_t rv;

    c->dispatching = true;
    conn->ops--;
    if (conn->state != CONN_READY) {
        conn_maybe_closed(conn);
    } else if (op->res <= 0) {
        conn_fail(conn, DP_UDF_UNAVAILABLE, op->res == 0 ? "closed by peer" : strerror(-op->res));
    } else {
        rv = nghttp2_session_mem_recv(conn->h2, conn->rbuf, (size_t)op->res);
        if (rv < 0) {
            conn_fail(conn, DP_UDF_UNAVAILABLE, nghttp2_strerror((int)rv));
        } else {
            conn->want_flush = true; /* WINDOW_UPDATE, SETTINGS ACK, PING ACK, RST */
            conn_arm_recv(conn);
        }
    }
    client_after(c);
}

static void on_send(dp_ring_op_t *op)
{
    udf_conn_t *conn = op->ctx;
    dp_udf_client_t *c = conn->client;

    c->dispatching = true;
    conn->ops--;
    conn->sending = false;
    if (conn->state != CONN_READY) {
        conn_maybe_closed(conn);
    } else if (op->res < 0) {
        conn_fail(conn, DP_UDF_UNAVAILABLE, strerror(-op->res));
    } else {
        size_t n = (size_t)op->res;

        assert(n <= conn->slen);
        memmove(conn->sbuf, conn->sbuf + n, conn->slen - n);
        conn->slen -= n;
        conn->want_flush = true;
    }
    client_after(c);
}

/* ------------------------------------------------------------------------ */
/* Timers, dispatch, close.                                                 */

static void on_kick(dp_ring_op_t *op)
{
    dp_udf_client_t *c = op->ctx;

    c->dispatching = true;
    c->ops--;
    c->kick_armed = false;
    client_after(c);
}

/* Runs the done list soon, from a ring callback (a zero timeout). */
static void arm_kick(dp_udf_client_t *c)
{
    if (c->kick_armed)
        return;
    /* On a full ring the tick dispatches instead, a few ms later. */
    if (dp_ring_prep_timeout(c->ring, &c->op_kick, 0, on_kick, c) == 0) {
        c->kick_armed = true;
        c->ops++;
    }
}

static void on_tick(dp_ring_op_t *op);

static void arm_tick(dp_udf_client_t *c)
{
    if (c->tick_armed || c->closing)
        return;
    if (dp_ring_prep_timeout(c->ring, &c->op_tick, c->tick_ms, on_tick, c) == 0) {
        c->tick_armed = true;
        c->ops++;
    }
}

static void on_tick(dp_ring_op_t *op)
{
    dp_udf_client_t *c = op->ctx;
    int64_t now = now_ms();
    char detail[64];

    c->dispatching = true;
    c->ops--;
    c->tick_armed = false;
    if (!c->closing) {
        /* One deadline for every call, so the active list is in deadline order. */
        while (c->act_head != NULL && c->act_head->deadline_ms <= now) {
            udf_call_t *call = c->act_head;
            udf_conn_t *conn = call->conn;

            if (conn != NULL && conn->h2 != NULL && call->stream_id > 0) {
                nghttp2_submit_rst_stream(conn->h2, NGHTTP2_FLAG_NONE, call->stream_id,
                                          NGHTTP2_CANCEL);
                conn->want_flush = true;
            }
            snprintf(detail, sizeof(detail), "deadline of %u ms exceeded",
                     (unsigned)c->cfg.timeout_ms);
            c->st.deadline++;
            call_finish(call, DP_UDF_DEADLINE_EXCEEDED, detail);
        }
        for (unsigned i = 0; i < c->cfg.connections; i++) {
            udf_conn_t *conn = &c->conns[i];

            for (unsigned j = 0; c->cfg.bistream && j < c->cfg.streams; j++)
                if (conn->bs[j].skip >= BS_SKIP_MAX)
                    bs_abort(&conn->bs[j], DP_UDF_UNAVAILABLE,
                             "biStream reset: too many replies overdue", DP_UDF_UNAVAILABLE,
                             "biStream reset: too many replies overdue", true);

            if (conn->state == CONN_BACKOFF && conn->retry_at_ms <= now)
                conn_start(conn);
        }
    }
    arm_tick(c);
    client_after(c);
}

static void call_release(dp_udf_client_t *c, udf_call_t *call)
{
    call->state = CALL_FREE;
    call->conn = NULL;
    call->cb = NULL;
    call->next = c->free_head;
    c->free_head = call;
    assert(c->st.in_flight > 0);
    c->st.in_flight--;
}

static void call_complete(dp_udf_client_t *c, udf_call_t *call)
{
    dp_udf_reply_t r = {.status = call->status, .message = c->message};

    if (r.status == DP_UDF_OK) {
        int rc = pb_msg_decode((const uint8_t *)call->reply, call->reply_len, &r.payload,
                               &r.payload_len, &call->hdrs, &r.nhdrs, &call->hdrs_cap);

        if (rc < 0) {
            r.status = DP_UDF_INTERNAL;
            snprintf(call->message, sizeof(call->message), "%s",
                     rc == -ENOMEM ? "out of memory" : "malformed GrpcMessage reply");
            r.payload = NULL;
            r.payload_len = 0;
            r.nhdrs = 0;
        } else {
            r.hdrs = call->hdrs;
        }
    }
    /* NUL-terminated and usually empty: copy what is there, not MESSAGE_MAX. */
    memcpy(c->message, call->message, strnlen(call->message, sizeof(c->message) - 1) + 1);
    c->message[sizeof(c->message) - 1] = '\0';
    if (r.status == DP_UDF_OK)
        c->st.ok++;
    else
        c->st.failed++;
    dp_udf_cb cb = call->cb;
    void *ctx = call->ctx;

    /* The slot is free before the callback, so the callback can reuse it;
     * the reply still points into it, which nothing touches until then. */
    call_release(c, call);
    cb(ctx, &r);
}

static void client_free(dp_udf_client_t *c)
{
    void (*cb)(void *) = c->close_cb;
    void *ctx = c->close_ctx;

    for (unsigned i = 0; i < c->cfg.max_in_flight; i++) {
        free(c->calls[i].req);
        free(c->calls[i].hdrs);
        dec_dispose(&c->calls[i].dec);
    }
    for (unsigned i = 0; i < c->cfg.connections; i++) {
        free(c->conns[i].rbuf);
        free(c->conns[i].sbuf);
        for (unsigned j = 0; c->conns[i].bs != NULL && j < c->cfg.streams; j++) {
            free(c->conns[i].bs[j].obuf);
            dec_dispose(&c->conns[i].bs[j].dec);
        }
        free(c->conns[i].bs);
    }
    nghttp2_session_callbacks_del(c->cbs);
    free(c->calls);
    free(c->conns);
    free(c);
    if (cb != NULL)
        cb(ctx);
}

/*
 * The tail of each of our ring callbacks: completion callbacks run here,
 * after the ring's CQ drain, then output is flushed; repeated because a
 * failed flush can fail calls. Last, a closing client with nothing in
 * flight is freed.
 */
static void client_after(dp_udf_client_t *c)
{
    bool more;

    do {
        while (c->done_head != NULL) {
            udf_call_t *call = c->done_head;

            c->done_head = call->next;
            if (c->done_head == NULL)
                c->done_tail = NULL;
            call_complete(c, call);
        }
        for (unsigned i = 0; i < c->cfg.connections; i++) {
            udf_conn_t *conn = &c->conns[i];

            if (conn->state == CONN_READY && conn->draining && conn->active == 0)
                conn_fail(conn, DP_UDF_UNAVAILABLE, "drained after GOAWAY");
            else if (conn->want_flush)
                conn_flush(conn);
        }
        more = c->done_head != NULL;
    } while (more);
    c->dispatching = false;
    if (c->closing && c->ops == 0) {
        for (unsigned i = 0; i < c->cfg.connections; i++)
            if (c->conns[i].ops > 0 || c->conns[i].fd >= 0)
                return;
        client_free(c);
    }
}

void dp_udf_client_close(dp_udf_client_t *c, void (*close_cb)(void *ctx), void *ctx)
{
    udf_call_t *call, *next;

    if (c->closing)
        return;
    c->closing = true;
    c->close_cb = close_cb;
    c->close_ctx = ctx;
    for (call = c->act_head; call != NULL; call = next) {
        next = call->next;
        call_finish(call, DP_UDF_CANCELLED, "client closed");
    }
    for (unsigned i = 0; i < c->cfg.connections; i++) {
        udf_conn_t *conn = &c->conns[i];

        if (conn->state == CONN_BACKOFF)
            conn->state = CONN_IDLE;
        else
            conn_fail(conn, DP_UDF_CANCELLED, "client closed");
    }
    /* The kick (or the pending tick) delivers the CANCELLED completions
     * and frees the client once every op has come back. */
    if (!c->dispatching)
        arm_kick(c);
}

/* ------------------------------------------------------------------------ */
/* Public API.                                                              */

static void cfg_defaults(dp_udf_cfg_t *cfg)
{
    if (cfg->connections == 0)
        cfg->connections = 1;
    if (cfg->max_in_flight == 0)
        cfg->max_in_flight = 64;
    if (cfg->timeout_ms == 0)
        cfg->timeout_ms = 5000;
    if (cfg->reconnect_min_ms == 0)
        cfg->reconnect_min_ms = 100;
    if (cfg->reconnect_max_ms == 0)
        cfg->reconnect_max_ms = 5000;
    if (cfg->max_message_bytes == 0)
        cfg->max_message_bytes = 4u << 20;
    if (cfg->stream_window_bytes == 0)
        cfg->stream_window_bytes = 1u << 20;
    if (cfg->session_window_bytes == 0)
        cfg->session_window_bytes = 16u << 20;
    if (cfg->streams == 0)
        cfg->streams = 1;
}

static int resolve(dp_udf_client_t *c, const char *host, uint16_t port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char serv[8];
    int rc;

    snprintf(serv, sizeof(serv), "%u", (unsigned)port);
    rc = getaddrinfo(host, serv, &hints, &res);
    if (rc != 0 || res == NULL)
        return rc == EAI_MEMORY ? -ENOMEM : -ENOENT;
    memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
    c->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int dp_udf_client_new(dp_ring_t *ring, const char *host, uint16_t port, const dp_udf_cfg_t *cfg,
                      dp_udf_client_t **out)
{
    dp_udf_client_t *c;
    int rc = -ENOMEM;

    *out = NULL;
    if (ring == NULL || host == NULL || port == 0)
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    if (cfg != NULL)
        c->cfg = *cfg;
    cfg_defaults(&c->cfg);
    if (c->cfg.connections > CONNS_MAX || c->cfg.max_in_flight > (1u << 20) ||
        c->cfg.reconnect_min_ms > c->cfg.reconnect_max_ms ||
        c->cfg.max_message_bytes > (1u << 30) || c->cfg.stream_window_bytes > INT32_MAX ||
        c->cfg.session_window_bytes > INT32_MAX || c->cfg.timeout_ms > 99999999u ||
        c->cfg.bistream > 1 || c->cfg.streams > STREAMS_MAX) {
        rc = -EINVAL;
        goto out;
    }
    c->ring = ring;
    rc = resolve(c, host, port);
    if (rc < 0)
        goto out;
    rc = -ENOMEM;
    if (c->addr.ss_family == AF_INET6)
        snprintf(c->authority, sizeof(c->authority), "[%s]:%u", host, (unsigned)port);
    else
        snprintf(c->authority, sizeof(c->authority), "%s:%u", host, (unsigned)port);
    snprintf(c->timeout_hdr, sizeof(c->timeout_hdr), "%um", (unsigned)c->cfg.timeout_ms);
    /* A tenth of the deadline, within [2, 50] ms: deadlines fire a little
     * late, never early, and an idle client wakes at most 500 times/s. */
    c->tick_ms = c->cfg.timeout_ms / 10;
    c->tick_ms = c->tick_ms < 2 ? 2 : c->tick_ms > 50 ? 50 : c->tick_ms;
    c->rng = (uint64_t)now_ms() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)c;
    if (c->rng == 0)
        c->rng = 1;

    if (nghttp2_session_callbacks_new(&c->cbs) != 0)
        goto out;
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c->cbs, h2_on_data_chunk);
    nghttp2_session_callbacks_set_on_header_callback(c->cbs, h2_on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(c->cbs, h2_on_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(c->cbs, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(c->cbs, h2_on_frame_not_send);

    c->calls = calloc(c->cfg.max_in_flight, sizeof(*c->calls));
    c->conns = calloc(c->cfg.connections, sizeof(*c->conns));
    if (c->calls == NULL || c->conns == NULL)
        goto out;
    for (unsigned i = c->cfg.max_in_flight; i-- > 0;) {
        udf_call_t *call = &c->calls[i];

        call->client = c;
        call->dec.max = c->cfg.max_message_bytes;
        call->next = c->free_head;
        c->free_head = call;
    }
    for (unsigned i = 0; i < c->cfg.connections; i++) {
        udf_conn_t *conn = &c->conns[i];

        conn->client = c;
        conn->fd = -1;
        conn->state = CONN_IDLE;
        conn->backoff_ms = c->cfg.reconnect_min_ms;
        conn->scap = SEND_BATCH_BYTES;
        conn->rbuf = malloc(RBUF_BYTES);
        conn->sbuf = malloc(conn->scap);
        if (conn->rbuf == NULL || conn->sbuf == NULL)
            goto out;
        if (c->cfg.bistream) {
            conn->bs = calloc(c->cfg.streams, sizeof(*conn->bs));
            if (conn->bs == NULL)
                goto out;
            for (unsigned j = 0; j < c->cfg.streams; j++) {
                conn->bs[j].conn = conn;
                conn->bs[j].dec.max = c->cfg.max_message_bytes;
                bs_reset(&conn->bs[j]);
            }
        }
    }
    for (unsigned i = 0; i < c->cfg.connections; i++)
        conn_start(&c->conns[i]);
    arm_tick(c);
    *out = c;
    return 0;

out:
    if (c->conns != NULL) {
        for (unsigned i = 0; i < c->cfg.connections; i++) {
            free(c->conns[i].rbuf);
            free(c->conns[i].sbuf);
            free(c->conns[i].bs);
        }
    }
    free(c->conns);
    free(c->calls);
    if (c->cbs != NULL)
        nghttp2_session_callbacks_del(c->cbs);
    free(c);
    return rc;
}

/* The connection for a new call: the least loaded connected one, else one
 * that is connecting (the request waits in its session), else NULL. */
static udf_conn_t *pick_conn(dp_udf_client_t *c)
{
    udf_conn_t *best = NULL;

    for (unsigned i = 0; i < c->cfg.connections; i++) {
        udf_conn_t *conn = &c->conns[i];

        if ((conn->state != CONN_READY && conn->state != CONN_CONNECTING) || conn->draining)
            continue;
        if (best == NULL || (conn->state == CONN_READY && best->state != CONN_READY) ||
            (conn->state == best->state && conn->active < best->active))
            best = conn;
    }
    return best;
}

/* Takes the free slot `call` into the active list. */
static void call_begin(dp_udf_client_t *c, udf_call_t *call, dp_udf_cb cb, void *ctx)
{
    c->free_head = call->next;
    call->cb = cb;
    call->ctx = ctx;
    call->state = CALL_ACTIVE;
    call->stream_id = -1;
    call->status = DP_UDF_UNKNOWN;
    call->grpc_status = -1;
    call->http_status = 0;
    call->have_reply = false;
    call->reply = NULL;
    call->reply_len = 0;
    call->bs = NULL;
    call->bnext = NULL;
    call->message[0] = '\0';
    call->deadline_ms = now_ms() + c->cfg.timeout_ms;
    call->next = NULL;
    call->prev = c->act_tail;
    if (c->act_tail != NULL)
        c->act_tail->next = call;
    else
        c->act_head = call;
    c->act_tail = call;
    c->st.calls++;
    c->st.in_flight++;
}

static void call_no_conn(dp_udf_client_t *c, udf_call_t *call)
{
    /* Fail fast while reconnecting, so the caller can back off. */
    char detail[MESSAGE_MAX];

    snprintf(detail, sizeof(detail), "no connection to %s (reconnecting)", c->authority);
    call_finish(call, DP_UDF_UNAVAILABLE, detail);
}

/* dp_udf_call in biStream mode: the request goes, framed, onto the least
 * loaded stream of the least loaded connection (opened if needed). */
static int bs_call(dp_udf_client_t *c, udf_call_t *call, const dp_udf_msg_t *req, size_t body,
                   dp_udf_cb cb, void *ctx)
{
    udf_conn_t *conn;
    udf_bs_t *bs = NULL;
    char detail[MESSAGE_MAX];
    int rc;

    call_begin(c, call, cb, ctx);
    conn = pick_conn(c);
    call->conn = conn;
    if (conn == NULL) {
        call_no_conn(c, call);
        return 0;
    }
    conn->active++;
    for (unsigned i = 0; i < c->cfg.streams; i++) {
        udf_bs_t *b = &conn->bs[i];

        /* Least loaded first; on a tie an open stream beats a closed one,
         * so a second stream opens only once the first has calls queued. */
        if (bs == NULL || b->nq < bs->nq ||
            (b->nq == bs->nq && b->stream_id > 0 && bs->stream_id < 0))
            bs = b;
    }
    if (bs->stream_id < 0 && (rc = bs_open(bs)) < 0) {
        snprintf(detail, sizeof(detail), "cannot open a biStream: %s", nghttp2_strerror(rc));
        call_finish(call, DP_UDF_UNAVAILABLE, detail);
        return 0;
    }
    if (bs_append(bs, req, body) < 0) {
        call_finish(call, DP_UDF_RESOURCE_EXHAUSTED, "out of memory");
        return 0;
    }
    call->bs = bs;
    if (bs->q_tail != NULL)
        bs->q_tail->bnext = call;
    else
        bs->q_head = call;
    bs->q_tail = call;
    bs->nq++;
    if (c->dispatching)
        conn->want_flush = true;
    else
        conn_flush(conn);
    return 0;
}

int dp_udf_call(dp_udf_client_t *c, const dp_udf_msg_t *req, dp_udf_cb cb, void *ctx)
{
    udf_call_t *call;
    udf_conn_t *conn;
    size_t body;
    int32_t sid;

    if (c->closing)
        return -ESHUTDOWN;
    if (cb == NULL || (req->payload_len > 0 && req->payload == NULL) ||
        (req->nhdrs > 0 && req->hdrs == NULL))
        return -EINVAL;
    body = pb_msg_size(req);
    if (body > c->cfg.max_message_bytes)
        return -EMSGSIZE;
    call = c->free_head;
    if (call == NULL)
        return -EBUSY;
    if (c->cfg.bistream)
        return bs_call(c, call, req, body, cb, ctx);
    if (call->req_cap < GRPC_PREFIX + body) {
        uint8_t *nb = realloc(call->req, GRPC_PREFIX + body);

        if (nb == NULL)
            return -ENOMEM;
        call->req = nb;
        call->req_cap = (uint32_t)(GRPC_PREFIX + body);
    }
    call_begin(c, call, cb, ctx);
    grpc_prefix(call->req, (uint32_t)body);
    pb_msg_encode(req, call->req + GRPC_PREFIX);
    call->req_len = (uint32_t)(GRPC_PREFIX + body);
    call->req_off = 0;
    dec_reset(&call->dec);

    conn = pick_conn(c);
    call->conn = conn;
    if (conn == NULL) {
        call_no_conn(c, call);
        return 0;
    }
    conn->active++;

    nghttp2_nv nva[] = {
        NV(":method", "POST"),
        NV(":scheme", "http"),
        NV(":path", DP_UDF_PATH_REQUEST_REPLY),
        NV(":authority", c->authority),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
        NV("grpc-timeout", c->timeout_hdr),
        NV("user-agent", "weir-udf/" WEIR_VERSION),
    };
    nghttp2_data_provider dp = {.source.ptr = call, .read_callback = req_read_cb};

    sid = nghttp2_submit_request(conn->h2, NULL, nva, sizeof(nva) / sizeof(nva[0]), &dp, call);
    if (sid < 0) {
        if (sid == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE)
            conn->draining = true; /* reconnect once its streams are done */
        call_finish(call, DP_UDF_UNAVAILABLE, nghttp2_strerror(sid));
        return 0;
    }
    call->stream_id = sid;
    if (c->dispatching)
        conn->want_flush = true; /* batched: flushed once in client_after */
    else
        conn_flush(conn);
    return 0;
}

void dp_udf_client_stats(const dp_udf_client_t *c, dp_udf_stats_t *out)
{
    *out = c->st;
    out->conns_ready = 0;
    for (unsigned i = 0; i < c->cfg.connections; i++)
        if (c->conns[i].state == CONN_READY)
            out->conns_ready++;
}
