/* SPDX-License-Identifier: Apache-2.0 */
/*
 * weir_udf: see weir_udf.h. The pieces, top to bottom:
 *   1. replies and collections (protobuf-c, from dp_udf_pb.h);
 *   2. one gRPC call = one HTTP/2 stream: requestReply collects the request
 *      DATA, calls the handler at END_STREAM, answers HEADERS + DATA +
 *      trailers; biStream calls the handler per request message as it
 *      arrives and streams one reply per request, in order;
 *   3. nghttp2 callbacks;
 *   4. the poll() loop: accept, read into nghttp2, write what it wants.
 */
#include "weir_udf.h"

#include "dp_udf_pb.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef Org__Springframework__Cloud__Function__Grpc__GrpcMessage pb_msg;
typedef Org__Springframework__Cloud__Function__Grpc__GrpcMessage__HeadersEntry pb_header;
typedef Org__Springframework__Cloud__Function__Grpc__GrpcPayloadCollection pb_coll;

#define SERVICE_PATH "/org.springframework.cloud.function.grpc.MessagingService/"
#define DEFAULT_PORT 55554
#define DEFAULT_MAX_MESSAGE (4u << 20)
#define MAX_CONNS 64

/* ------------------------------------------------------------ 1. replies -- */

struct weir_udf_reply {
    uint8_t *payload;
    size_t payload_len;
    char **keys, **values;
    size_t n_headers;
    ProtobufCBinaryData *elements;
    size_t n_elements;
    int status; /* gRPC status; 0 = OK */
    char message[256];
};

static int copy_bytes(uint8_t **dst, const void *data, size_t len)
{
    *dst = malloc(len ? len : 1);
    if (*dst == NULL)
        return -1;
    if (len)
        memcpy(*dst, data, len);
    return 0;
}

int weir_udf_reply_payload(weir_udf_reply *rep, const void *data, size_t len)
{
    free(rep->payload);
    rep->payload = NULL;
    rep->payload_len = 0;
    if (copy_bytes(&rep->payload, data, len) != 0)
        return -1;
    rep->payload_len = len;
    return 0;
}

int weir_udf_reply_header(weir_udf_reply *rep, const char *key, const char *value)
{
    char **k = realloc(rep->keys, (rep->n_headers + 1) * sizeof(*k));
    if (k == NULL)
        return -1;
    rep->keys = k;
    char **v = realloc(rep->values, (rep->n_headers + 1) * sizeof(*v));
    if (v == NULL)
        return -1;
    rep->values = v;
    k[rep->n_headers] = strdup(key);
    v[rep->n_headers] = strdup(value);
    if (k[rep->n_headers] == NULL || v[rep->n_headers] == NULL) {
        free(k[rep->n_headers]);
        free(v[rep->n_headers]);
        return -1;
    }
    rep->n_headers++;
    return 0;
}

int weir_udf_reply_element(weir_udf_reply *rep, const void *data, size_t len)
{
    ProtobufCBinaryData *e = realloc(rep->elements, (rep->n_elements + 1) * sizeof(*e));
    if (e == NULL)
        return -1;
    rep->elements = e;
    if (copy_bytes(&e[rep->n_elements].data, data, len) != 0)
        return -1;
    e[rep->n_elements].len = len;
    rep->n_elements++;
    return 0;
}

void weir_udf_reply_error(weir_udf_reply *rep, int status, const char *message)
{
    rep->status = status ? status : WEIR_GRPC_INTERNAL;
    snprintf(rep->message, sizeof(rep->message), "%s", message ? message : "");
}

static void reply_free(weir_udf_reply *rep)
{
    free(rep->payload);
    for (size_t i = 0; i < rep->n_headers; i++) {
        free(rep->keys[i]);
        free(rep->values[i]);
    }
    free(rep->keys);
    free(rep->values);
    for (size_t i = 0; i < rep->n_elements; i++)
        free(rep->elements[i].data);
    free(rep->elements);
}

/* Serialize REP as a GrpcMessage with the 5-byte gRPC message prefix
 * (0 = uncompressed, 4-byte big-endian length). Returns a malloc'd buffer. */
static uint8_t *reply_frame(const weir_udf_reply *rep, size_t *out_len)
{
    pb_msg msg;
    org__springframework__cloud__function__grpc__grpc_message__init(&msg);
    uint8_t *coll_buf = NULL;
    if (rep->n_elements > 0) {
        pb_coll coll;
        org__springframework__cloud__function__grpc__grpc_payload_collection__init(&coll);
        coll.n_payload = rep->n_elements;
        coll.payload = rep->elements;
        size_t n =
            org__springframework__cloud__function__grpc__grpc_payload_collection__get_packed_size(
                &coll);
        coll_buf = malloc(n ? n : 1);
        if (coll_buf == NULL)
            return NULL;
        org__springframework__cloud__function__grpc__grpc_payload_collection__pack(&coll, coll_buf);
        msg.payload.data = coll_buf;
        msg.payload.len = n;
    } else {
        msg.payload.data = rep->payload;
        msg.payload.len = rep->payload_len;
    }
    pb_header *entries = calloc(rep->n_headers + 1, sizeof(*entries));
    pb_header **ptrs = calloc(rep->n_headers + 1, sizeof(*ptrs));
    uint8_t *buf = NULL;
    if (entries == NULL || ptrs == NULL)
        goto out;
    for (size_t i = 0; i < rep->n_headers; i++) {
        org__springframework__cloud__function__grpc__grpc_message__headers_entry__init(&entries[i]);
        entries[i].key = rep->keys[i];
        entries[i].value = rep->values[i];
        ptrs[i] = &entries[i];
    }
    msg.n_headers = rep->n_headers;
    msg.headers = ptrs;

    size_t n = org__springframework__cloud__function__grpc__grpc_message__get_packed_size(&msg);
    if (n > UINT32_MAX)
        goto out;
    buf = malloc(5 + n);
    if (buf == NULL)
        goto out;
    buf[0] = 0;
    buf[1] = (uint8_t)(n >> 24);
    buf[2] = (uint8_t)(n >> 16);
    buf[3] = (uint8_t)(n >> 8);
    buf[4] = (uint8_t)n;
    org__springframework__cloud__function__grpc__grpc_message__pack(&msg, buf + 5);
    *out_len = 5 + n;
out:
    free(entries);
    free(ptrs);
    free(coll_buf);
    return buf;
}

const char *weir_udf_header_get(const weir_udf_request *req, const char *key)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcmp(req->headers[i].key, key) == 0)
            return req->headers[i].value;
    return NULL;
}

struct weir_udf_collection {
    pb_coll *pb;
};

weir_udf_collection *weir_udf_collection_decode(const uint8_t *data, size_t len)
{
    weir_udf_collection *c = malloc(sizeof(*c));
    if (c == NULL)
        return NULL;
    c->pb = org__springframework__cloud__function__grpc__grpc_payload_collection__unpack(NULL, len,
                                                                                         data);
    if (c->pb == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

size_t weir_udf_collection_size(const weir_udf_collection *c)
{
    return c->pb->n_payload;
}

const uint8_t *weir_udf_collection_item(const weir_udf_collection *c, size_t i, size_t *len)
{
    *len = c->pb->payload[i].len;
    return c->pb->payload[i].data;
}

void weir_udf_collection_free(weir_udf_collection *c)
{
    if (c == NULL)
        return;
    org__springframework__cloud__function__grpc__grpc_payload_collection__free_unpacked(c->pb,
                                                                                        NULL);
    free(c);
}

/* ----------------------------------------------------------- 2. calls -- */

typedef struct server {
    const weir_udf_options *opt;
    const char *name;
    weir_udf_fn fn;
    void *arg;
} server;

typedef struct conn {
    int fd;
    uint8_t *obuf; /* nghttp2 output not yet taken by send(): one send per batch */
    size_t olen, ooff, ocap;
    nghttp2_session *session;
    const server *srv;
} conn;

/* One HTTP/2 stream = one gRPC call. */
typedef struct call {
    char path[256];
    uint8_t *in; /* request DATA: gRPC-framed message(s) */
    size_t in_len, in_cap;
    bool too_big;
    uint8_t *out; /* framed reply message(s) */
    size_t out_len, out_off, out_cap;
    /* biStream */
    bool bistream;
    bool ended;     /* the client half-closed: trailers after the last reply */
    bool deferred;  /* data provider parked until a reply is queued */
    int err_status; /* a handler failed: end the stream with this status */
    char err_msg[256];
} call;

static void call_free(call *c)
{
    free(c->in);
    free(c->out);
    free(c);
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE             \
    }

/* grpc-message is percent-encoded (gRPC over HTTP/2 spec). */
static void percent_encode(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%')
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", *p);
    }
    out[o] = '\0';
}

/* A failed call: "Trailers-Only" response, one HEADERS frame with
 * grpc-status and END_STREAM. */
static int send_error(nghttp2_session *s, int32_t id, int status, const char *message)
{
    char st[16], msg[768];
    snprintf(st, sizeof(st), "%d", status);
    percent_encode(message, msg, sizeof(msg));
    nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                        NV("grpc-status", st), NV("grpc-message", msg)};
    return nghttp2_submit_response(s, id, nva, sizeof(nva) / sizeof(nva[0]), NULL);
}

/* Data provider: hands out call->out, then ends the stream with trailers. */
static ssize_t read_reply(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                          uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    call *c = source->ptr;
    size_t n = c->out_len - c->out_off;
    if (n > length)
        n = length;
    memcpy(buf, c->out + c->out_off, n);
    c->out_off += n;
    if (c->out_off == c->out_len) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_nv trailers[] = {NV("grpc-status", "0")};
        if (nghttp2_submit_trailer(s, id, trailers, 1) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

/* Decodes one request GrpcMessage, runs the handler and frames its reply
 * (malloc'd, in *out). Returns 0, or a gRPC status with `msg` set. */
static int run_handler(conn *cn, const uint8_t *in, size_t len, uint8_t **out, size_t *out_len,
                       char *msg, size_t msg_cap)
{
    pb_msg *m = org__springframework__cloud__function__grpc__grpc_message__unpack(NULL, len, in);
    if (m == NULL) {
        snprintf(msg, msg_cap, "malformed GrpcMessage");
        return WEIR_GRPC_INVALID_ARGUMENT;
    }
    weir_udf_header *hs = calloc(m->n_headers + 1, sizeof(*hs));
    if (hs == NULL) {
        org__springframework__cloud__function__grpc__grpc_message__free_unpacked(m, NULL);
        snprintf(msg, msg_cap, "out of memory");
        return WEIR_GRPC_RESOURCE_EXHAUSTED;
    }
    for (size_t i = 0; i < m->n_headers; i++) {
        hs[i].key = m->headers[i]->key ? m->headers[i]->key : "";
        hs[i].value = m->headers[i]->value ? m->headers[i]->value : "";
    }
    weir_udf_request req = {m->payload.data, m->payload.len, hs, m->n_headers};
    weir_udf_reply rep = {0};
    cn->srv->fn(&req, &rep, cn->srv->arg);
    free(hs);
    org__springframework__cloud__function__grpc__grpc_message__free_unpacked(m, NULL);
    int st = 0;
    if (rep.status != 0) {
        st = rep.status;
        snprintf(msg, msg_cap, "%s", rep.message);
    } else if ((*out = reply_frame(&rep, out_len)) == NULL) {
        st = WEIR_GRPC_INTERNAL;
        snprintf(msg, msg_cap, "cannot serialize reply");
    }
    reply_free(&rep);
    return st;
}

/* biStream data provider: the queued replies; when none is queued, waits
 * (DEFERRED) unless the request side ended or a handler failed, in which
 * case the trailers end the stream. */
static ssize_t read_stream(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                           uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    call *c = source->ptr;
    size_t n = c->out_len - c->out_off;
    if (n == 0 && !c->ended && c->err_status == 0) {
        c->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n > length)
        n = length;
    memcpy(buf, c->out + c->out_off, n);
    c->out_off += n;
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->ended || c->err_status != 0) {
            char st[16], msg[768];
            snprintf(st, sizeof(st), "%d", c->err_status);
            percent_encode(c->err_msg, msg, sizeof(msg));
            nghttp2_nv trailers[] = {NV("grpc-status", st), NV("grpc-message", msg)};
            *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (nghttp2_submit_trailer(s, id, trailers, c->err_status ? 2 : 1) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)n;
}

/* biStream: runs the handler on every complete request message in c->in
 * and queues the replies; a failure ends the stream after the replies
 * already queued (one reply per request, in order, until then). */
static int stream_process(conn *cn, int32_t id, call *c)
{
    size_t off = 0;
    while (c->err_status == 0 && c->in_len - off >= 5) {
        const uint8_t *p = c->in + off;
        size_t len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
        if (p[0] != 0) {
            c->err_status = WEIR_GRPC_UNIMPLEMENTED;
            snprintf(c->err_msg, sizeof(c->err_msg), "compressed messages not supported");
            break;
        }
        if (len > cn->srv->opt->max_message) {
            c->err_status = WEIR_GRPC_RESOURCE_EXHAUSTED;
            snprintf(c->err_msg, sizeof(c->err_msg), "request message too large");
            break;
        }
        if (c->in_len - off - 5 < len)
            break; /* incomplete */
        uint8_t *r = NULL;
        size_t rlen = 0;
        int st = run_handler(cn, p + 5, len, &r, &rlen, c->err_msg, sizeof(c->err_msg));
        off += 5 + len;
        if (st != 0) {
            c->err_status = st;
            break;
        }
        if (c->out_len + rlen > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 4096;
            while (cap < c->out_len + rlen)
                cap *= 2;
            uint8_t *nb = realloc(c->out, cap);
            if (nb == NULL) {
                free(r);
                c->err_status = WEIR_GRPC_RESOURCE_EXHAUSTED;
                snprintf(c->err_msg, sizeof(c->err_msg), "out of memory");
                break;
            }
            c->out = nb;
            c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, r, rlen);
        c->out_len += rlen;
        free(r);
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (c->deferred && (c->out_len > c->out_off || c->ended || c->err_status != 0)) {
        c->deferred = false;
        return nghttp2_session_resume_data(cn->session, id);
    }
    return 0;
}

/* A biStream's request HEADERS: answer the response HEADERS at once; the
 * replies follow as the requests arrive. */
static int stream_start(conn *cn, int32_t id, call *c)
{
    nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
    nghttp2_data_provider dp = {.source.ptr = c, .read_callback = read_stream};
    c->bistream = true;
    return nghttp2_submit_response(cn->session, id, nva, 2, &dp);
}

/* The request is complete: decode, call the handler, submit the reply. */
static int handle_call(conn *cn, int32_t id, call *c)
{
    nghttp2_session *s = cn->session;
    if (c->bistream) {
        c->ended = true;
        return stream_process(cn, id, c);
    }
    if (strcmp(c->path, SERVICE_PATH "requestReply") != 0) {
        char m[320];
        snprintf(m, sizeof(m), "method %s is not implemented", c->path);
        return send_error(s, id, WEIR_GRPC_UNIMPLEMENTED, m);
    }
    if (c->too_big)
        return send_error(s, id, WEIR_GRPC_RESOURCE_EXHAUSTED, "request message too large");
    /* Exactly one message: flag byte, 4-byte big-endian length, body. */
    if (c->in_len < 5)
        return send_error(s, id, WEIR_GRPC_INVALID_ARGUMENT, "missing request message");
    if (c->in[0] != 0)
        return send_error(s, id, WEIR_GRPC_UNIMPLEMENTED, "compressed messages not supported");
    size_t len = (size_t)c->in[1] << 24 | (size_t)c->in[2] << 16 | (size_t)c->in[3] << 8 | c->in[4];
    if (5 + len != c->in_len)
        return send_error(s, id, WEIR_GRPC_INVALID_ARGUMENT,
                          "expected exactly one request message");
    char msg[256];
    int st = run_handler(cn, c->in + 5, len, &c->out, &c->out_len, msg, sizeof(msg));
    if (st != 0)
        return send_error(s, id, st, msg);
    nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
    nghttp2_data_provider dp = {.source.ptr = c, .read_callback = read_reply};
    return nghttp2_submit_response(s, id, nva, 2, &dp);
}

/* ------------------------------------------------- 3. nghttp2 callbacks -- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    call *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream */
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, c);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    call *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (c != NULL && f->hd.type == NGHTTP2_HEADERS && nlen == 5 && memcmp(name, ":path", 5) == 0)
        snprintf(c->path, sizeof(c->path), "%.*s", (int)vlen, (const char *)value);
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    conn *cn = ud;
    call *c = nghttp2_session_get_stream_user_data(s, id);
    if (c == NULL || c->too_big || (c->bistream && c->err_status != 0))
        return 0; /* a failed biStream drops what follows */
    if (!c->bistream && c->in_len + len > cn->srv->opt->max_message + 5) {
        c->too_big = true; /* keep reading, answer RESOURCE_EXHAUSTED at the end */
        return 0;
    }
    if (c->in_len + len > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 1024;
        while (cap < c->in_len + len)
            cap *= 2;
        uint8_t *p = realloc(c->in, cap);
        if (p == NULL)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        c->in = p;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, data, len);
    c->in_len += len;
    if (c->bistream && stream_process(cn, id, c) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST &&
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        call *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (c != NULL && strcmp(c->path, SERVICE_PATH "biStream") == 0 &&
            stream_start(ud, f->hd.stream_id, c) != 0)
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                      NGHTTP2_INTERNAL_ERROR);
        return 0;
    }
    if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    call *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (c == NULL)
        return 0;
    if (handle_call(ud, f->hd.stream_id, c) != 0)
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_INTERNAL_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud)
{
    call *c = nghttp2_session_get_stream_user_data(s, id);
    if (c != NULL) {
        nghttp2_session_set_stream_user_data(s, id, NULL);
        call_free(c);
    }
    return 0;
}

/* ------------------------------------------------------ 4. poll() loop -- */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static conn *conn_new(int fd, const server *srv)
{
    conn *cn = calloc(1, sizeof(*cn));
    nghttp2_session_callbacks *cb;
    if (cn == NULL || nghttp2_session_callbacks_new(&cb) != 0) {
        free(cn);
        return NULL;
    }
    cn->fd = fd;
    cn->srv = srv;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    int rv = nghttp2_session_server_new(&cn->session, cb, cn);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    if (rv != 0 || nghttp2_submit_settings(cn->session, NGHTTP2_FLAG_NONE, iv, 1) != 0) {
        nghttp2_session_del(cn->session);
        free(cn);
        return NULL;
    }
    return cn;
}

static void conn_free(conn *cn)
{
    nghttp2_session_del(cn->session); /* closes streams: frees their calls */
    free(cn->obuf);
    close(cn->fd);
    free(cn);
}

/* Collects nghttp2's output (every frame that is ready, up to 64 KiB) and
 * writes it with one send(): a reply's HEADERS, DATA and trailers, and the
 * replies of a whole read, leave in one segment. Returns false on error. */
static bool conn_flush(conn *cn)
{
    for (;;) {
        while (cn->olen > cn->ooff) {
            ssize_t n = send(cn->fd, cn->obuf + cn->ooff, cn->olen - cn->ooff, MSG_NOSIGNAL);
            if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
            cn->ooff += (size_t)n;
        }
        cn->olen = cn->ooff = 0;
        for (;;) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(cn->session, &data);
            if (n < 0)
                return false;
            if (n == 0)
                break;
            if (cn->olen + (size_t)n > cn->ocap) {
                size_t cap = cn->ocap ? cn->ocap : 16384;
                while (cap < cn->olen + (size_t)n)
                    cap *= 2;
                uint8_t *nb = realloc(cn->obuf, cap);
                if (nb == NULL)
                    return false;
                cn->obuf = nb;
                cn->ocap = cap;
            }
            memcpy(cn->obuf + cn->olen, data, (size_t)n);
            cn->olen += (size_t)n;
            if (cn->olen >= 65536)
                break;
        }
        if (cn->olen == 0)
            return true;
    }
}

/* Read what is there and feed nghttp2; then write what it wants.
 * Returns false when the connection is finished. */
static bool conn_io(conn *cn, short revents)
{
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        uint8_t buf[16384];
        for (;;) {
            ssize_t n = recv(cn->fd, buf, sizeof(buf), 0);
            if (n == 0)
                return false; /* peer closed */
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                if (errno == EINTR)
                    continue;
                return false;
            }
            if (nghttp2_session_mem_recv(cn->session, buf, (size_t)n) < 0)
                return false; /* protocol error: nghttp2 queued GOAWAY; drop */
        }
    }
    return conn_flush(cn) && (nghttp2_session_want_read(cn->session) ||
                              nghttp2_session_want_write(cn->session) || cn->olen > cn->ooff);
}

static int listen_on(const char *host, int port, int *bound_port)
{
    char ports[16], h[256];
    snprintf(ports, sizeof(ports), "%d", port);
    snprintf(h, sizeof(h), "%s", host);
    if (h[0] == '[') { /* "[::]" -> "::" */
        memmove(h, h + 1, strlen(h));
        h[strcspn(h, "]")] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    if (getaddrinfo(h, ports, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int weir_udf_serve(const weir_udf_options *o, const char *name, weir_udf_fn fn, void *arg)
{
    server srv = {o, name, fn, arg};
    int port = 0;
    int lfd = listen_on(o->host, o->port, &port);
    if (lfd < 0) {
        printf("{\"level\":\"error\",\"msg\":\"udf bind failed\",\"host\":\"%s\",\"port\":%d,"
               "\"error\":\"%s\"}\n",
               o->host, o->port, strerror(errno));
        fflush(stdout);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: poll() wakes up */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    printf("{\"level\":\"info\",\"msg\":\"udf ready\",\"port\":%d,\"host\":\"%s\",\"udf\":\"%s\","
           "\"pid\":%d}\n",
           port, o->host, name, (int)getpid());
    fflush(stdout);

    conn *conns[MAX_CONNS];
    size_t n = 0;
    while (!stop_signal) {
        struct pollfd pfd[MAX_CONNS + 1];
        pfd[0] = (struct pollfd){.fd = lfd, .events = n < MAX_CONNS ? POLLIN : 0};
        for (size_t i = 0; i < n; i++) {
            short ev = 0;
            if (nghttp2_session_want_read(conns[i]->session))
                ev |= POLLIN;
            if (nghttp2_session_want_write(conns[i]->session) || conns[i]->olen > conns[i]->ooff)
                ev |= POLLOUT;
            pfd[i + 1] = (struct pollfd){.fd = conns[i]->fd, .events = ev};
        }
        if (poll(pfd, n + 1, 1000) < 0)
            continue; /* EINTR: the loop condition checks for a signal */

        /* Connections first: conns[] and pfd[] line up until we accept. */
        for (size_t i = n; i-- > 0;) {
            if (pfd[i + 1].revents == 0)
                continue;
            if (!conn_io(conns[i], pfd[i + 1].revents)) {
                conn_free(conns[i]);
                conns[i] = conns[--n];
            }
        }
        if (pfd[0].revents & POLLIN) {
            int fd;
            while (n < MAX_CONNS &&
                   (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                conn *cn = conn_new(fd, &srv);
                if (cn == NULL) {
                    close(fd);
                    continue;
                }
                conns[n++] = cn;
                if (!conn_io(cn, 0)) /* send our SETTINGS */
                    conn_free(conns[--n]);
            }
        }
    }

    printf("{\"level\":\"info\",\"msg\":\"udf stopping\",\"signal\":%d}\n", (int)stop_signal);
    for (size_t i = 0; i < n; i++) {
        nghttp2_session_terminate_session(conns[i]->session, NGHTTP2_NO_ERROR); /* GOAWAY */
        conn_flush(conns[i]);
        conn_free(conns[i]);
    }
    close(lfd);
    printf("{\"level\":\"info\",\"msg\":\"udf stopped\",\"port\":%d}\n", port);
    fflush(stdout);
    return 0;
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--host ADDR] [--port N] [options]\n"
            "  --host ADDR  bind address (default 127.0.0.1; 0.0.0.0 in a container)\n"
            "  --port N     TCP port (default $UDF_PORT, else %d; 0 = any free port)\n",
            prog, DEFAULT_PORT);
}

static int parse_port(const char *s, int *port)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

int weir_udf_parse_args(weir_udf_options *o, int argc, char **argv, weir_udf_extra_opt extra,
                        void *arg)
{
    *o = (weir_udf_options){
        .host = "127.0.0.1", .port = DEFAULT_PORT, .max_message = DEFAULT_MAX_MESSAGE};
    const char *env = getenv("UDF_PORT");
    if (env != NULL && *env != '\0' && parse_port(env, &o->port) != 0) {
        fprintf(stderr, "%s: UDF_PORT must be a port number, got '%s'\n", argv[0], env);
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "--host") == 0 && val != NULL) {
            o->host = val;
        } else if (strcmp(opt, "--port") == 0 && val != NULL) {
            if (parse_port(val, &o->port) != 0) {
                fprintf(stderr, "%s: --port must be 0..65535\n", argv[0]);
                return -1;
            }
        } else if (strncmp(opt, "--", 2) == 0 && strcmp(opt, "--help") != 0 && extra != NULL &&
                   extra(opt, val, arg) == 0) {
            /* accepted by the program */
        } else {
            usage(argv[0]);
            return -1;
        }
        i++; /* every option takes a value */
    }
    return 0;
}
