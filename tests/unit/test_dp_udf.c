/* Description: dp_udf: gRPC message framing across arbitrary splits,
 * GrpcMessage encode/decode against protobuf-c, status mapping, and the
 * client's failure paths (refused connect, backpressure, close). */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_udf.c" /* internals: framing and protobuf codec */
#include "dp_udf_pb.h"

typedef Org__Springframework__Cloud__Function__Grpc__GrpcMessage pb_msg_t;
typedef Org__Springframework__Cloud__Function__Grpc__GrpcMessage__HeadersEntry pb_entry_t;
typedef Org__Springframework__Cloud__Function__Grpc__GrpcPayloadCollection pb_coll_t;

/* ---- framing ---- */

typedef struct {
    unsigned n;
    uint32_t lens[16];
    char *data[16];
} got_t;

static int collect_cb(void *ctx, const char *msg, uint32_t len)
{
    got_t *g = ctx;

    assert_true(g->n < 16);
    g->lens[g->n] = len;
    g->data[g->n] = malloc(len + 1);
    assert_non_null(g->data[g->n]);
    if (len > 0)
        memcpy(g->data[g->n], msg, len);
    g->n++;
    return 0;
}

static void got_free(got_t *g)
{
    for (unsigned i = 0; i < g->n; i++)
        free(g->data[i]);
    memset(g, 0, sizeof(*g));
}

/* Builds a stream of framed messages of the given sizes (byte i of message
 * m is (m * 31 + i) & 0xff). */
static uint8_t *build_stream(const uint32_t *sizes, unsigned n, size_t *len)
{
    size_t total = 0, off = 0;
    uint8_t *buf;

    for (unsigned m = 0; m < n; m++)
        total += GRPC_PREFIX + sizes[m];
    buf = malloc(total ? total : 1);
    assert_non_null(buf);
    for (unsigned m = 0; m < n; m++) {
        grpc_prefix(buf + off, sizes[m]);
        off += GRPC_PREFIX;
        for (uint32_t i = 0; i < sizes[m]; i++)
            buf[off + i] = (uint8_t)(m * 31 + i);
        off += sizes[m];
    }
    *len = total;
    return buf;
}

static void check_got(const got_t *g, const uint32_t *sizes, unsigned n)
{
    assert_int_equal(g->n, n);
    for (unsigned m = 0; m < n; m++) {
        assert_int_equal(g->lens[m], sizes[m]);
        for (uint32_t i = 0; i < sizes[m]; i++)
            assert_int_equal((uint8_t)g->data[m][i], (uint8_t)(m * 31 + i));
    }
}

static void test_frame_every_split(void **state)
{
    const uint32_t sizes[] = {0, 1, 7, 300, 0, 5};
    size_t len;
    uint8_t *s = build_stream(sizes, 6, &len);

    /* Every pair of cut points: three pieces of every possible size. */
    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b += 3) {
            udf_dec_t d = {.max = 1000};
            got_t g = {0};

            assert_int_equal(dec_feed(&d, s, a, collect_cb, &g), 0);
            assert_int_equal(dec_feed(&d, s + a, b - a, collect_cb, &g), 0);
            assert_int_equal(dec_feed(&d, s + b, len - b, collect_cb, &g), 0);
            assert_true(dec_idle(&d));
            check_got(&g, sizes, 6);
            got_free(&g);
            dec_dispose(&d);
        }
    }
    free(s);
}

static void test_frame_random_splits(void **state)
{
    const uint32_t sizes[] = {70000, 3, 16384, 16385, 0, 100000};
    size_t len;
    uint8_t *s = build_stream(sizes, 6, &len);
    unsigned seed = 12345;

    for (int round = 0; round < 200; round++) {
        udf_dec_t d = {.max = 100000};
        got_t g = {0};
        size_t off = 0;

        while (off < len) {
            seed = seed * 1103515245u + 12345u;
            size_t n = (seed >> 8) % (round < 100 ? 17 : 40000) + 1;

            if (n > len - off)
                n = len - off;
            assert_int_equal(dec_feed(&d, s + off, n, collect_cb, &g), 0);
            off += n;
            /* Mid-message at a split means the decoder is not idle. */
        }
        assert_true(dec_idle(&d));
        check_got(&g, sizes, 6);
        got_free(&g);
        dec_dispose(&d);
    }
    free(s);
}

static void test_frame_errors(void **state)
{
    uint8_t compressed[] = {1, 0, 0, 0, 1, 'x'};
    uint8_t big[] = {0, 0, 0, 4, 1};
    uint8_t partial[] = {0, 0, 0, 0, 9, 'a', 'b'};
    udf_dec_t d = {.max = 1024};
    got_t g = {0};

    assert_int_equal(dec_feed(&d, compressed, sizeof(compressed), collect_cb, &g), -EPROTO);
    dec_reset(&d);
    /* 1025 > max: refused on the prefix, before any body byte is buffered. */
    assert_int_equal(dec_feed(&d, big, sizeof(big), collect_cb, &g), -EMSGSIZE);
    assert_null(d.buf);
    dec_reset(&d);
    assert_int_equal(dec_feed(&d, partial, sizeof(partial), collect_cb, &g), 0);
    assert_false(dec_idle(&d));
    assert_int_equal(g.n, 0);
    dec_dispose(&d);
}

/* ---- protobuf ---- */

static uint8_t *pack_pb(const pb_msg_t *m, size_t *len)
{
    *len = org__springframework__cloud__function__grpc__grpc_message__get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);

    assert_non_null(buf);
    org__springframework__cloud__function__grpc__grpc_message__pack(m, buf);
    return buf;
}

/* Our encoder's bytes == protobuf-c's for the same message. */
static void check_encode(const char *payload, size_t plen, const dp_hdr_t *hdrs, unsigned n)
{
    pb_msg_t m = ORG__SPRINGFRAMEWORK__CLOUD__FUNCTION__GRPC__GRPC_MESSAGE__INIT;
    pb_entry_t ent[8], *ptrs[8];
    char keys[8][256], vals[8][256];
    dp_udf_msg_t mine = {
        .payload = payload, .payload_len = (uint32_t)plen, .hdrs = hdrs, .nhdrs = n};
    size_t want_len, got_len = pb_msg_size(&mine);
    uint8_t *want, *got = malloc(got_len ? got_len : 1);

    assert_true(n <= 8);
    m.payload.data = (uint8_t *)payload;
    m.payload.len = plen;
    for (unsigned i = 0; i < n; i++) {
        pb_entry_t init =
            ORG__SPRINGFRAMEWORK__CLOUD__FUNCTION__GRPC__GRPC_MESSAGE__HEADERS_ENTRY__INIT;

        ent[i] = init;
        snprintf(keys[i], sizeof(keys[i]), "%.*s", (int)hdrs[i].name_len, hdrs[i].name);
        snprintf(vals[i], sizeof(vals[i]), "%.*s", (int)hdrs[i].val_len,
                 hdrs[i].val ? hdrs[i].val : "");
        ent[i].key = keys[i];
        ent[i].value = vals[i];
        ptrs[i] = &ent[i];
    }
    m.n_headers = n;
    m.headers = ptrs;
    want = pack_pb(&m, &want_len);
    assert_non_null(got);
    assert_ptr_equal(pb_msg_encode(&mine, got), got + got_len);
    /* protobuf-c omits empty map strings ("" is the proto3 default) where
     * protoc's C++ writes them; compare by decoding both ways then. */
    bool empty_str = false;

    for (unsigned i = 0; i < n; i++)
        empty_str |= hdrs[i].name_len == 0 || hdrs[i].val == NULL || hdrs[i].val_len == 0;
    if (!empty_str) {
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, want_len);
    }
    /* protobuf-c parses our bytes back to the same message. */
    pb_msg_t *back =
        org__springframework__cloud__function__grpc__grpc_message__unpack(NULL, got_len, got);
    assert_non_null(back);
    assert_int_equal(back->payload.len, plen);
    if (plen > 0)
        assert_memory_equal(back->payload.data, payload, plen);
    assert_int_equal(back->n_headers, n);
    for (unsigned i = 0; i < n; i++) {
        assert_string_equal(back->headers[i]->key, keys[i]);
        assert_string_equal(back->headers[i]->value, vals[i]);
    }
    org__springframework__cloud__function__grpc__grpc_message__free_unpacked(back, NULL);
    /* And our decoder reads protobuf-c's bytes. */
    const char *p;
    uint32_t pl, nh, cap = 0;
    dp_hdr_t *hd = NULL;

    assert_int_equal(pb_msg_decode(want, want_len, &p, &pl, &hd, &nh, &cap), 0);
    assert_int_equal(pl, plen);
    if (plen > 0)
        assert_memory_equal(p, payload, plen);
    assert_int_equal(nh, n);
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(hd[i].name_len, strlen(keys[i]));
        assert_memory_equal(hd[i].name, keys[i], hd[i].name_len);
        assert_int_equal(hd[i].val_len, strlen(vals[i]));
        assert_memory_equal(hd[i].val, vals[i], hd[i].val_len);
    }
    free(hd);
    free(want);
    free(got);
}

#define H(k, v)                                                                                    \
    {                                                                                              \
        .name = (k), .val = (v), .name_len = sizeof(k) - 1, .val_len = sizeof(v) - 1               \
    }

static void test_pb_encode_matches_protobuf_c(void **state)
{
    static char big[300], key[131];
    dp_hdr_t h1[] = {H("contentType", "text/plain")};
    dp_hdr_t h3[] = {H("a", "1"), H("b", "2"), H("contentType", "application/json")};
    dp_hdr_t hnull[] = {{.name = "n", .name_len = 1, .val = NULL}, H("e", "")};
    dp_hdr_t hlong[1];

    for (int i = 0; i < 300; i++)
        big[i] = (char)i;
    memset(key, 'k', 130);
    hlong[0] = (dp_hdr_t){.name = key, .name_len = 130, .val = "v", .val_len = 1};
    check_encode("", 0, NULL, 0);
    check_encode("hi", 2, h1, 1);
    check_encode(big, 300, NULL, 0);
    check_encode("x", 1, h3, 3);
    check_encode("", 0, hlong, 1);
    check_encode("p", 1, hnull, 2);
}

static void test_pb_golden(void **state)
{
    /* The harness doc's hand-computed bytes (harness-udf-python.md). */
    static const uint8_t golden[] = "\x0a\x02hi\x12\x19\x0a\x0b"
                                    "contentType\x12\x0atext/plain";
    dp_hdr_t h[] = {H("contentType", "text/plain")};
    dp_udf_msg_t m = {.payload = "hi", .payload_len = 2, .hdrs = h, .nhdrs = 1};
    uint8_t out[64];

    assert_int_equal(pb_msg_size(&m), sizeof(golden) - 1);
    pb_msg_encode(&m, out);
    assert_memory_equal(out, golden, sizeof(golden) - 1);
    /* Empty value written in full, as protoc's C++ runtime does. */
    dp_hdr_t e[] = {H("a", "")};
    dp_udf_msg_t me = {.hdrs = e, .nhdrs = 1};

    assert_int_equal(pb_msg_size(&me), 7);
    pb_msg_encode(&me, out);
    assert_memory_equal(out,
                        "\x12\x05\x0a\x01"
                        "a\x12\x00",
                        7);
}

static void test_pb_decode_edge_cases(void **state)
{
    const char *p;
    uint32_t pl, nh, cap = 0;
    dp_hdr_t *hd = NULL;
    /* Unknown fields of every wire type are skipped; a map entry with only a
     * key (value omitted, protobuf-c style) has value "". */
    static const uint8_t unk[] = {0x18, 0x96, 0x01,                           /* field 3 varint */
                                  0x21, 1,    2,    3,   4,   5,    6, 7,  8, /* field 4 fixed64 */
                                  0x2d, 1,    2,    3,   4,                   /* field 5 fixed32 */
                                  0x32, 2,    'z',  'z',                      /* field 6 bytes */
                                  0x0a, 1,    'P',                            /* payload */
                                  0x12, 3,    0x0a, 1,   'k',                 /* {k: ""} */
                                  0x12, 6,    0x12, 1,   'v', 0x0a, 1, 'j'};  /* value first */

    assert_int_equal(pb_msg_decode(unk, sizeof(unk), &p, &pl, &hd, &nh, &cap), 0);
    assert_int_equal(pl, 1);
    assert_memory_equal(p, "P", 1);
    assert_int_equal(nh, 2);
    assert_int_equal(hd[0].name_len, 1);
    assert_memory_equal(hd[0].name, "k", 1);
    assert_int_equal(hd[0].val_len, 0);
    assert_memory_equal(hd[1].name, "j", 1);
    assert_memory_equal(hd[1].val, "v", 1);

    /* Malformed: truncated length, truncated varint, group wire type, tag 0. */
    static const uint8_t bad1[] = {0x0a, 5, 'a'};
    static const uint8_t bad2[] = {0x0a, 0x80};
    static const uint8_t bad3[] = {0x0b};
    static const uint8_t bad4[] = {0x00, 0x01};
    static const uint8_t bad5[] = {0x12, 3, 0x0a, 5, 'k'};

    assert_int_equal(pb_msg_decode(bad1, sizeof(bad1), &p, &pl, &hd, &nh, &cap), -EBADMSG);
    assert_int_equal(pb_msg_decode(bad2, sizeof(bad2), &p, &pl, &hd, &nh, &cap), -EBADMSG);
    assert_int_equal(pb_msg_decode(bad3, sizeof(bad3), &p, &pl, &hd, &nh, &cap), -EBADMSG);
    assert_int_equal(pb_msg_decode(bad4, sizeof(bad4), &p, &pl, &hd, &nh, &cap), -EBADMSG);
    assert_int_equal(pb_msg_decode(bad5, sizeof(bad5), &p, &pl, &hd, &nh, &cap), -EBADMSG);
    /* Empty message: no payload, no headers. */
    assert_int_equal(pb_msg_decode((const uint8_t *)"", 0, &p, &pl, &hd, &nh, &cap), 0);
    assert_int_equal(pl, 0);
    assert_int_equal(nh, 0);
    free(hd);
}

/* A window call's payload: GrpcPayloadCollection round trip via protobuf-c,
 * inside a GrpcMessage made by our encoder. */
static void test_pb_collection(void **state)
{
    pb_coll_t coll = ORG__SPRINGFRAMEWORK__CLOUD__FUNCTION__GRPC__GRPC_PAYLOAD_COLLECTION__INIT;
    ProtobufCBinaryData items[2] = {{1, (uint8_t *)"a"}, {2, (uint8_t *)"bc"}};
    uint8_t cbuf[32], mbuf[128];
    size_t clen;

    coll.n_payload = 2;
    coll.payload = items;
    clen = org__springframework__cloud__function__grpc__grpc_payload_collection__pack(&coll, cbuf);
    assert_int_equal(clen, 7);
    assert_memory_equal(cbuf,
                        "\x0a\x01"
                        "a\x0a\x02"
                        "bc",
                        7);
    dp_hdr_t h[] = {H("contentType", "multipart/json"), H("windowStartTime", "1000"),
                    H("windowEndTime", "6000"), H("partial", "false")};
    dp_udf_msg_t m = {
        .payload = (const char *)cbuf, .payload_len = (uint32_t)clen, .hdrs = h, .nhdrs = 4};
    size_t n = pb_msg_size(&m);

    assert_true(n <= sizeof(mbuf));
    pb_msg_encode(&m, mbuf);
    pb_msg_t *back =
        org__springframework__cloud__function__grpc__grpc_message__unpack(NULL, n, mbuf);
    assert_non_null(back);
    pb_coll_t *c2 = org__springframework__cloud__function__grpc__grpc_payload_collection__unpack(
        NULL, back->payload.len, back->payload.data);
    assert_non_null(c2);
    assert_int_equal(c2->n_payload, 2);
    assert_memory_equal(c2->payload[1].data, "bc", 2);
    assert_string_equal(back->headers[1]->key, "windowStartTime");
    org__springframework__cloud__function__grpc__grpc_payload_collection__free_unpacked(c2, NULL);
    org__springframework__cloud__function__grpc__grpc_message__free_unpacked(back, NULL);
}

/* ---- status mapping ---- */

static void test_status_mapping(void **state)
{
    char out[32];

    assert_int_equal(status_from_http(404), DP_UDF_UNIMPLEMENTED);
    assert_int_equal(status_from_http(503), DP_UDF_UNAVAILABLE);
    assert_int_equal(status_from_http(429), DP_UDF_UNAVAILABLE);
    assert_int_equal(status_from_http(401), DP_UDF_UNAUTHENTICATED);
    assert_int_equal(status_from_http(500), DP_UDF_UNKNOWN);
    assert_int_equal(status_from_h2(NGHTTP2_REFUSED_STREAM), DP_UDF_UNAVAILABLE);
    assert_int_equal(status_from_h2(NGHTTP2_CANCEL), DP_UDF_CANCELLED);
    assert_int_equal(status_from_h2(NGHTTP2_ENHANCE_YOUR_CALM), DP_UDF_RESOURCE_EXHAUSTED);
    assert_int_equal(status_from_h2(NGHTTP2_PROTOCOL_ERROR), DP_UDF_INTERNAL);
    assert_string_equal(dp_udf_status_str(DP_UDF_UNAVAILABLE), "UNAVAILABLE");
    assert_string_equal(dp_udf_status_str(17), "?");
    assert_true(dp_udf_status_retryable(DP_UDF_UNAVAILABLE));
    assert_true(dp_udf_status_retryable(DP_UDF_RESOURCE_EXHAUSTED));
    assert_false(dp_udf_status_retryable(DP_UDF_DEADLINE_EXCEEDED));
    percent_decode(out, sizeof(out), (const uint8_t *)"a%20b%zz%4", 10);
    assert_string_equal(out, "a b%zz%4");
    percent_decode(out, 4, (const uint8_t *)"abcdef", 6);
    assert_string_equal(out, "abc");
}

/* ---- client failure paths, no server ---- */

typedef struct {
    int calls;
    int status[8];
    int closed;
} obs_t;

static void obs_cb(void *ctx, const dp_udf_reply_t *r)
{
    obs_t *o = ctx;

    assert_true(o->calls < 8);
    o->status[o->calls++] = r->status;
    assert_non_null(r->message);
    assert_null(r->payload);
}

static void obs_close(void *ctx)
{
    ((obs_t *)ctx)->closed = 1;
}

static void test_client_refused(void **state)
{
    dp_ring_t ring;
    dp_udf_client_t *c;
    dp_udf_cfg_t cfg = {
        .max_in_flight = 2, .timeout_ms = 1000, .reconnect_min_ms = 5000, .reconnect_max_ms = 5000};
    dp_udf_msg_t req = {.payload = "x", .payload_len = 1};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    obs_t o = {0};
    dp_udf_stats_t st;
    int fd;

    if (dp_ring_init(&ring, 64, 0) < 0) {
        fprintf(stderr, "skip: io_uring unavailable\n");
        exit(77);
    }
    /* A bound socket that does not listen: connects to it are refused. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);

    assert_int_equal(dp_udf_client_new(&ring, "127.0.0.1", 0, NULL, &c), -EINVAL);
    dp_udf_cfg_t bad = {.connections = 65};
    assert_int_equal(dp_udf_client_new(&ring, "127.0.0.1", 1, &bad, &c), -EINVAL);
    assert_int_equal(dp_udf_client_new(&ring, "no.such.host.invalid", 1, NULL, &c), -ENOENT);
    assert_int_equal(dp_udf_client_new(&ring, "127.0.0.1", ntohs(sa.sin_port), &cfg, &c), 0);
    /* Both calls queue on the connecting connection; a third is refused. */
    assert_int_equal(dp_udf_call(c, &req, obs_cb, &o), 0);
    assert_int_equal(dp_udf_call(c, &req, obs_cb, &o), 0);
    assert_int_equal(dp_udf_call(c, &req, obs_cb, &o), -EBUSY);
    for (int i = 0; i < 100 && o.calls < 2; i++)
        assert_true(dp_ring_run_once(&ring, 1, 1000) >= 0);
    assert_int_equal(o.calls, 2);
    assert_int_equal(o.status[0], DP_UDF_UNAVAILABLE);
    assert_int_equal(o.status[1], DP_UDF_UNAVAILABLE);
    /* Now in backoff: a new call fails fast, from the ring, not inline. */
    assert_int_equal(dp_udf_call(c, &req, obs_cb, &o), 0);
    assert_int_equal(o.calls, 2);
    for (int i = 0; i < 100 && o.calls < 3; i++)
        assert_true(dp_ring_run_once(&ring, 1, 1000) >= 0);
    assert_int_equal(o.status[2], DP_UDF_UNAVAILABLE);
    dp_udf_client_stats(c, &st);
    assert_int_equal(st.calls, 3);
    assert_int_equal(st.failed, 3);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.conns_ready, 0);
    /* A message above the limit is refused without a callback. */
    static char huge[(4u << 20) + 1];
    dp_udf_msg_t big = {.payload = huge, .payload_len = sizeof(huge)};
    assert_int_equal(dp_udf_call(c, &big, obs_cb, &o), -EMSGSIZE);

    dp_udf_client_close(c, obs_close, &o);
    assert_int_equal(dp_udf_call(c, &req, obs_cb, &o), -ESHUTDOWN);
    for (int i = 0; i < 100 && !o.closed; i++)
        assert_true(dp_ring_run_once(&ring, 1, 1000) >= 0);
    assert_true(o.closed);
    assert_int_equal(o.calls, 3);
    close(fd);
    dp_ring_dispose(&ring);
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct {
    int calls;
    int status;
    char message[128];
    int64_t at_ms;
} dl_t;

static void dl_cb(void *ctx, const dp_udf_reply_t *r)
{
    dl_t *d = ctx;

    d->calls++;
    d->status = r->status;
    d->at_ms = mono_ms();
    snprintf(d->message, sizeof(d->message), "%s", r->message);
}

/* A peer that accepts TCP (the kernel's backlog) but never speaks HTTP/2:
 * only the client's own deadline timer can end the calls. */
static void test_client_deadline_silent_peer(void **state)
{
    dp_ring_t ring;
    dp_udf_client_t *c;
    dp_udf_cfg_t cfg = {.max_in_flight = 4, .timeout_ms = 100};
    dp_udf_msg_t req = {.payload = "x", .payload_len = 1};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    dl_t d[3] = {{0}};
    obs_t o = {0};
    dp_udf_stats_t st;
    int64_t t0;
    int fd;

    if (dp_ring_init(&ring, 64, 0) < 0) {
        fprintf(stderr, "skip: io_uring unavailable\n");
        exit(77);
    }
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    assert_int_equal(dp_udf_client_new(&ring, "127.0.0.1", ntohs(sa.sin_port), &cfg, &c), 0);
    t0 = mono_ms();
    for (int i = 0; i < 3; i++)
        assert_int_equal(dp_udf_call(c, &req, dl_cb, &d[i]), 0);
    for (int i = 0; i < 200 && d[2].calls == 0; i++)
        assert_true(dp_ring_run_once(&ring, 1, 1000) >= 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d[i].calls, 1);
        assert_int_equal(d[i].status, DP_UDF_DEADLINE_EXCEEDED);
        assert_string_equal(d[i].message, "deadline of 100 ms exceeded");
        /* Never early; late by at most a tick (10 ms here) plus scheduling. */
        assert_true(d[i].at_ms - t0 >= 100);
        assert_true(d[i].at_ms - t0 < 100 + 10 + 40);
    }
    dp_udf_client_stats(c, &st);
    assert_int_equal(st.deadline, 3);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.conns_ready, 1);
    dp_udf_client_close(c, obs_close, &o);
    for (int i = 0; i < 100 && !o.closed; i++)
        assert_true(dp_ring_run_once(&ring, 1, 1000) >= 0);
    assert_true(o.closed);
    close(fd);
    dp_ring_dispose(&ring);
}

/* biStream against a peer that accepts and reads but never answers: the
 * requests go out as length-prefixed messages on one stream (the peer sees
 * all three), and each call still ends at its own deadline. */
static void test_client_bistream_silent_peer(void **state)
{
    dp_ring_t ring;
    dp_udf_client_t *c;
    dp_udf_cfg_t cfg = {.max_in_flight = 4, .timeout_ms = 100, .bistream = 1};
    dp_udf_msg_t req = {.payload = "x", .payload_len = 1};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    static const uint8_t framed[] = {0, 0, 0, 0, 3, 0x0a, 1, 'x'};
    uint8_t buf[4096];
    size_t have = 0;
    dl_t d[3] = {{0}};
    obs_t o = {0};
    dp_udf_stats_t st;
    int64_t t0;
    int fd, peer, found = 0;

    if (dp_ring_init(&ring, 64, 0) < 0) {
        fprintf(stderr, "skip: io_uring unavailable\n");
        exit(77);
    }
    dp_udf_cfg_t bad1 = {.bistream = 2}, bad2 = {.bistream = 1, .streams = 65};
    assert_int_equal(dp_udf_client_new(&ring, "127.0.0.1", 1, &bad1, &c), -EINVAL);
    assert_int_equal(dp_udf_client_new(&ring, "127.0.0.1", 1, &bad2, &c), -EINVAL);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    assert_int_equal(dp_udf_client_new(&ring, "127.0.0.1", ntohs(sa.sin_port), &cfg, &c), 0);
    t0 = mono_ms();
    for (int i = 0; i < 3; i++)
        assert_int_equal(dp_udf_call(c, &req, dl_cb, &d[i]), 0);
    for (int i = 0; i < 200 && d[2].calls == 0; i++)
        assert_true(dp_ring_run_once(&ring, 1, 1000) >= 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d[i].calls, 1);
        assert_int_equal(d[i].status, DP_UDF_DEADLINE_EXCEEDED);
        assert_true(d[i].at_ms - t0 >= 100);
        assert_true(d[i].at_ms - t0 < 100 + 10 + 40);
    }
    dp_udf_client_stats(c, &st);
    assert_int_equal(st.deadline, 3);
    assert_int_equal(st.streams, 1);
    assert_int_equal(st.connects, 1);
    peer = accept(fd, NULL, NULL);
    assert_true(peer >= 0);
    for (;;) {
        ssize_t n = recv(peer, buf + have, sizeof(buf) - have, MSG_DONTWAIT);

        if (n <= 0)
            break;
        have += (size_t)n;
    }
    for (size_t i = 0; i + sizeof(framed) <= have; i++)
        if (memcmp(buf + i, framed, sizeof(framed)) == 0)
            found++;
    assert_int_equal(found, 3);
    dp_udf_client_close(c, obs_close, &o);
    for (int i = 0; i < 100 && !o.closed; i++)
        assert_true(dp_ring_run_once(&ring, 1, 1000) >= 0);
    assert_true(o.closed);
    close(peer);
    close(fd);
    dp_ring_dispose(&ring);
}

/* A peer that answers HTTP/2 but not gRPC: a 200 with content-type
 * text/html and an HTML body (a plain web server or proxy on the UDF's
 * port; grpcio cannot send this). Hand-written frames: SETTINGS, HEADERS
 * (HPACK: :status 200 indexed, content-type literal), DATA. The call fails
 * UNKNOWN naming the content type, in unary and in biStream mode. */
static void test_client_wrong_content_type(void **state)
{
    static const uint8_t frames[] = {
        0,    0,    0,    4, 0,   0,   0,   0,   0,                       /* SETTINGS */
        0,    0,    13,   1, 4,   0,   0,   0,   1,                       /* HEADERS, END_HEADERS */
        0x88, 0x0f, 0x10, 9, 't', 'e', 'x', 't', '/', 'h', 't', 'm', 'l', /* block */
        0,    0,    6,    0, 1,   0,   0,   0,   1,   '<', 'h', 't', 'm',
        'l',  '>'}; /* DATA, END_STREAM */

    for (unsigned mode = 0; mode < 2; mode++) {
        dp_ring_t ring;
        dp_udf_client_t *c;
        dp_udf_cfg_t cfg = {.max_in_flight = 2, .timeout_ms = 2000, .bistream = mode};
        dp_udf_msg_t req = {.payload = "x", .payload_len = 1};
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof(sa);
        dl_t d = {0};
        obs_t o = {0};
        dp_udf_stats_t st;
        uint8_t buf[4096];
        int fd, peer;

        if (dp_ring_init(&ring, 64, 0) < 0) {
            fprintf(stderr, "skip: io_uring unavailable\n");
            exit(77);
        }
        fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 4), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
        assert_int_equal(dp_udf_client_new(&ring, "127.0.0.1", ntohs(sa.sin_port), &cfg, &c), 0);
        assert_int_equal(dp_udf_call(c, &req, dl_cb, &d), 0);
        /* Let the connect and the request (stream 1) go out, then answer. */
        ssize_t got = 0;

        for (int i = 0; i < 100; i++) {
            assert_true(dp_ring_run_once(&ring, 1, 20) >= 0);
            dp_udf_client_stats(c, &st);
            if (st.conns_ready == 1)
                break;
        }
        assert_int_equal(st.conns_ready, 1);
        peer = accept(fd, NULL, NULL);
        assert_true(peer >= 0);
        for (int i = 0; i < 100 && got <= 100; i++) {
            ssize_t n;

            assert_true(dp_ring_run_once(&ring, 0, 0) >= 0);
            n = recv(peer, buf, sizeof(buf), MSG_DONTWAIT);
            if (n > 0)
                got += n;
            else
                usleep(10000);
        }
        assert_true(got > 100); /* preface, SETTINGS, WINDOW_UPDATE (58), HEADERS, DATA */
        assert_int_equal(send(peer, frames, sizeof(frames), 0), (ssize_t)sizeof(frames));
        for (int i = 0; i < 100 && d.calls == 0; i++)
            assert_true(dp_ring_run_once(&ring, 1, 100) >= 0);
        assert_int_equal(d.calls, 1);
        assert_int_equal(d.status, DP_UDF_UNKNOWN);
        assert_string_equal(d.message,
                            "reply content-type 'text/html' is not application/grpc (HTTP 200)");
        dp_udf_client_stats(c, &st);
        assert_int_equal(st.failed, 1);
        assert_int_equal(st.conn_lost, 0); /* the connection stays */
        dp_udf_client_close(c, obs_close, &o);
        for (int i = 0; i < 100 && !o.closed; i++)
            assert_true(dp_ring_run_once(&ring, 1, 1000) >= 0);
        assert_true(o.closed);
        close(peer);
        close(fd);
        dp_ring_dispose(&ring);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_every_split),
        cmocka_unit_test(test_frame_random_splits),
        cmocka_unit_test(test_frame_errors),
        cmocka_unit_test(test_pb_encode_matches_protobuf_c),
        cmocka_unit_test(test_pb_golden),
        cmocka_unit_test(test_pb_decode_edge_cases),
        cmocka_unit_test(test_pb_collection),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_client_refused),
        cmocka_unit_test(test_client_deadline_silent_peer),
        cmocka_unit_test(test_client_bistream_silent_peer),
        cmocka_unit_test(test_client_wrong_content_type),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
