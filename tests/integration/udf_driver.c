/* Description: dp_udf against real UDF servers (run by
 * tests/integration/udf_client.sh and tests/bench/udf_bench.sh): a load run,
 * an outage run (server killed and restarted under load), a deadline/status
 * run (slow server), unary or biStream (UDF_DRIVER_MODE=bistream), the
 * biStream deadline/status run, and the benchmark (unary, biStream, and a
 * new connection per call as the baseline). */
/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#include "dp_ring.h"
#include "dp_udf.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "udf_driver: FAIL: " __VA_ARGS__);                                         \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

static dp_ring_t ring;
static dp_udf_client_t *client;
static const char *udf_name = "python-uppercase"; /* UDF_DRIVER_NAME */
static unsigned mode_bistream;                    /* UDF_DRIVER_MODE=bistream */

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const dp_hdr_t *find_hdr(const dp_udf_reply_t *r, const char *name)
{
    for (uint32_t i = 0; i < r->nhdrs; i++)
        if (r->hdrs[i].name_len == strlen(name) &&
            memcmp(r->hdrs[i].name, name, r->hdrs[i].name_len) == 0)
            return &r->hdrs[i];
    return NULL;
}

static bool hdr_is(const dp_udf_reply_t *r, const char *name, const char *val)
{
    const dp_hdr_t *h = find_hdr(r, name);

    return h != NULL && h->val_len == strlen(val) && memcmp(h->val, val, h->val_len) == 0;
}

/* Checks an uppercase reply to request `seq` (payload "req-SEQ-hello",
 * headers contentType, seq). */
static void check_upper(const dp_udf_reply_t *r, uint64_t seq, const char *want_udf)
{
    char want[64], seqs[32];

    snprintf(want, sizeof(want), "REQ-%llu-HELLO", (unsigned long long)seq);
    snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);
    if (r->payload_len != strlen(want) || memcmp(r->payload, want, r->payload_len) != 0)
        FAIL("call %llu: payload '%.*s', want '%s'", (unsigned long long)seq, (int)r->payload_len,
             r->payload ? r->payload : "", want);
    if (!hdr_is(r, "seq", seqs) || !hdr_is(r, "contentType", "text/plain") ||
        !hdr_is(r, "udf", want_udf) || r->nhdrs != 3)
        FAIL("call %llu: headers not echoed (%u headers)", (unsigned long long)seq, r->nhdrs);
}

static int call_upper(uint64_t seq, dp_udf_cb cb, void *ctx)
{
    char payload[64], seqs[32];
    dp_hdr_t hdrs[2] = {{.name = "contentType", .name_len = 11, .val = "text/plain", .val_len = 10},
                        {.name = "seq", .name_len = 3, .val = seqs}};
    dp_udf_msg_t m = {.payload = payload, .hdrs = hdrs, .nhdrs = 2};

    m.payload_len =
        (uint32_t)snprintf(payload, sizeof(payload), "req-%llu-hello", (unsigned long long)seq);
    hdrs[1].val_len = (uint32_t)snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);
    return dp_udf_call(client, &m, cb, ctx);
}

static void client_up(const char *host, int port, const dp_udf_cfg_t *cfg)
{
    dp_udf_cfg_t c = *cfg;
    int rc = dp_ring_init(&ring, 1024, 0);

    c.bistream = mode_bistream;
    cfg = &c;
    if (rc < 0) {
        fprintf(stderr, "udf_driver: skip: io_uring unavailable (%d)\n", rc);
        exit(77);
    }
    rc = dp_udf_client_new(&ring, host, (uint16_t)port, cfg, &client);
    if (rc < 0)
        FAIL("dp_udf_client_new: %s", strerror(-rc));
}

static bool closed;

static void on_closed(void *ctx)
{
    closed = true;
}

static void client_down(void)
{
    dp_udf_client_close(client, on_closed, NULL);
    while (!closed)
        if (dp_ring_run_once(&ring, 1, 1000) < 0)
            FAIL("dp_ring_run_once");
    dp_ring_dispose(&ring);
}

/* ---- load: N calls, INFLIGHT outstanding ---- */

static struct {
    uint64_t n, issued, done;
    unsigned inflight;
    int64_t *t0;
    int64_t *lat;
} L;

static void load_fill(void);

static bool bench_mode; /* fixed request, cheap check: measure the client, not printf */

static void load_cb(void *ctx, const dp_udf_reply_t *r)
{
    uint64_t seq = (uint64_t)(uintptr_t)ctx;

    if (r->status != DP_UDF_OK)
        FAIL("call %llu: %s: %s", (unsigned long long)seq, dp_udf_status_str(r->status),
             r->message);
    if (!bench_mode)
        check_upper(r, seq, udf_name);
    else if (r->payload_len != 20 || memcmp(r->payload, "REQ-BENCH-HELLO-WEIR", 20) != 0 ||
             !hdr_is(r, "udf", udf_name))
        FAIL("bench call %llu: reply '%.*s'", (unsigned long long)seq, (int)r->payload_len,
             r->payload ? r->payload : "");
    L.lat[L.done++] = now_ns() - L.t0[seq];
    L.inflight--;
    load_fill();
}

static int call_bench_cb(dp_udf_cb cb, void *ctx)
{
    static const dp_hdr_t hdrs[2] = {
        {.name = "contentType", .name_len = 11, .val = "text/plain", .val_len = 10},
        {.name = "seq", .name_len = 3, .val = "bench", .val_len = 5}};
    dp_udf_msg_t m = {
        .payload = "req-bench-hello-weir", .payload_len = 20, .hdrs = hdrs, .nhdrs = 2};

    return dp_udf_call(client, &m, cb, ctx);
}

static void load_fill(void)
{
    while (L.issued < L.n) {
        L.t0[L.issued] = now_ns();
        int rc = bench_mode ? call_bench_cb(load_cb, (void *)(uintptr_t)L.issued)
                            : call_upper(L.issued, load_cb, (void *)(uintptr_t)L.issued);

        if (rc == -EBUSY)
            return;
        if (rc < 0)
            FAIL("dp_udf_call: %s", strerror(-rc));
        L.issued++;
        L.inflight++;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static int run_load(const char *host, int port, uint64_t n, unsigned inflight, unsigned conns)
{
    dp_udf_cfg_t cfg = {.connections = conns, .max_in_flight = inflight, .timeout_ms = 10000};
    dp_udf_stats_t st;
    int64_t t0;

    client_up(host, port, &cfg);
    L.n = n;
    L.t0 = calloc(n, sizeof(int64_t));
    L.lat = calloc(n, sizeof(int64_t));
    if (L.t0 == NULL || L.lat == NULL)
        FAIL("out of memory");
    t0 = now_ns();
    load_fill();
    if (L.inflight != inflight && L.inflight != n)
        FAIL("only %u calls accepted, want %u in flight", L.inflight, inflight);
    while (L.done < n)
        if (dp_ring_run_once(&ring, 1, 1000) < 0)
            FAIL("dp_ring_run_once");
    double secs = (double)(now_ns() - t0) / 1e9;

    qsort(L.lat, n, sizeof(int64_t), cmp_i64);
    dp_udf_client_stats(client, &st);
    if (st.ok != n || st.failed != 0 || st.connects != conns ||
        (mode_bistream ? st.streams < 1 || st.streams > conns : st.streams != 0))
        FAIL("stats: ok %llu failed %llu connects %llu", (unsigned long long)st.ok,
             (unsigned long long)st.failed, (unsigned long long)st.connects);
    printf("load: %llu calls ok, %u in flight, %u conn(s): %.0f calls/s, latency p50 %.2f ms "
           "p99 %.2f ms max %.2f ms\n",
           (unsigned long long)n, inflight, conns, (double)n / secs, (double)L.lat[n / 2] / 1e6,
           (double)L.lat[n * 99 / 100] / 1e6, (double)L.lat[n - 1] / 1e6);
    free(L.t0);
    free(L.lat);
    client_down();
    return 0;
}

/* ---- outage: constant load while the script kills and restarts the server ---- */

static struct {
    uint64_t seq, ok, unavailable, ok_after;
    unsigned inflight, max;
    int64_t pause_until;
    int phase; /* 0: before, 1: steady printed, 2: UNAVAILABLE seen */
} O;

static void outage_fill(void);

static void outage_cb(void *ctx, const dp_udf_reply_t *r)
{
    uint64_t seq = (uint64_t)(uintptr_t)ctx;

    O.inflight--;
    if (r->status == DP_UDF_OK) {
        check_upper(r, seq, udf_name);
        O.ok++;
        if (O.phase == 2)
            O.ok_after++;
        if (O.phase == 0 && O.ok >= 2000) {
            O.phase = 1;
            printf("steady: %llu ok\n", (unsigned long long)O.ok);
            fflush(stdout);
        }
    } else if (r->status == DP_UDF_UNAVAILABLE) {
        if (O.phase == 0)
            FAIL("UNAVAILABLE before the server was killed: %s", r->message);
        if (O.phase == 1) {
            O.phase = 2;
            printf("unavailable: %s\n", r->message);
            fflush(stdout);
        }
        if (O.ok_after > 0)
            FAIL("UNAVAILABLE after recovery: %s", r->message);
        O.unavailable++;
        /* The caller's retry policy: back off briefly, do not spin. */
        O.pause_until = now_ns() + 20 * 1000000;
    } else {
        FAIL("call %llu: unexpected %s: %s", (unsigned long long)seq, dp_udf_status_str(r->status),
             r->message);
    }
    outage_fill();
}

static void outage_fill(void)
{
    if (O.ok_after >= 2000 || now_ns() < O.pause_until)
        return;
    while (O.inflight < O.max) {
        int rc = call_upper(O.seq, outage_cb, (void *)(uintptr_t)O.seq);

        if (rc == -EBUSY)
            return;
        if (rc < 0)
            FAIL("dp_udf_call: %s", strerror(-rc));
        O.seq++;
        O.inflight++;
    }
}

static int run_outage(const char *host, int port)
{
    dp_udf_cfg_t cfg = {.connections = 1,
                        .max_in_flight = 64,
                        .timeout_ms = 5000,
                        .reconnect_min_ms = 50,
                        .reconnect_max_ms = 500};
    int64_t deadline = now_ns() + 120 * 1000000000LL;
    dp_udf_stats_t st;

    client_up(host, port, &cfg);
    O.max = 64;
    while (O.ok_after < 2000) {
        if (now_ns() > deadline)
            FAIL("outage: timed out (phase %d, ok %llu, unavailable %llu, ok after %llu)", O.phase,
                 (unsigned long long)O.ok, (unsigned long long)O.unavailable,
                 (unsigned long long)O.ok_after);
        outage_fill();
        if (dp_ring_run_once(&ring, 1, 10) < 0)
            FAIL("dp_ring_run_once");
    }
    while (O.inflight > 0)
        if (dp_ring_run_once(&ring, 1, 1000) < 0)
            FAIL("dp_ring_run_once");
    dp_udf_client_stats(client, &st);
    printf("outage: %llu ok, %llu UNAVAILABLE, %llu ok after reconnect; %llu connects, %llu "
           "connections lost\n",
           (unsigned long long)O.ok, (unsigned long long)O.unavailable,
           (unsigned long long)O.ok_after, (unsigned long long)st.connects,
           (unsigned long long)st.conn_lost);
    if (st.connects < 2)
        FAIL("expected a reconnect");
    if (mode_bistream && st.streams < 2)
        FAIL("biStream mode: %llu streams opened, want one per connection at least",
             (unsigned long long)st.streams);
    if (!mode_bistream && st.streams != 0)
        FAIL("unary mode opened %llu biStream streams", (unsigned long long)st.streams);
    client_down();
    return 0;
}

/* ---- deadline and status mapping against udf_slow_server.py ---- */

typedef struct {
    bool done;
    int status;
    int64_t t0, t1;
    char message[256];
    char payload[64];
    uint32_t payload_len;
} one_t;

static void one_cb(void *ctx, const dp_udf_reply_t *r)
{
    one_t *o = ctx;

    o->done = true;
    o->status = r->status;
    o->t1 = now_ns();
    snprintf(o->message, sizeof(o->message), "%s", r->message);
    o->payload_len = r->payload_len;
    if (r->payload_len > 0)
        memcpy(o->payload, r->payload, r->payload_len < 64 ? r->payload_len : 64);
}

#define load_cb_one one_cb

static void one_start(one_t *o, const char *payload, uint32_t len)
{
    dp_udf_msg_t m = {.payload = payload, .payload_len = len};
    int rc;

    memset(o, 0, sizeof(*o));
    o->t0 = now_ns();
    rc = dp_udf_call(client, &m, one_cb, o);
    if (rc < 0)
        FAIL("dp_udf_call: %s", strerror(-rc));
}

static void wait_all(one_t *o, int n)
{
    for (int i = 0; i < n; i++)
        while (!o[i].done)
            if (dp_ring_run_once(&ring, 1, 1000) < 0)
                FAIL("dp_ring_run_once");
}

static void expect(const one_t *o, int status, const char *message)
{
    if (o->status != status)
        FAIL("got %s (%s), want %s", dp_udf_status_str(o->status), o->message,
             dp_udf_status_str(status));
    if (message != NULL && strcmp(o->message, message) != 0)
        FAIL("message '%s', want '%s'", o->message, message);
}

static int run_deadline(const char *host, int port)
{
    const uint32_t timeout_ms = 300;
    dp_udf_cfg_t cfg = {.connections = 1, .max_in_flight = 16, .timeout_ms = timeout_ms};
    one_t o[8];
    dp_udf_stats_t st;

    client_up(host, port, &cfg);
    /* Warm up the connection so the deadline measures the call alone. */
    one_start(&o[0], "warm", 4);
    wait_all(o, 1);
    expect(&o[0], DP_UDF_OK, NULL);

    /* 4 slow calls and one fast one, concurrently on one connection: the
     * slow ones hit the deadline, the fast one is not held up by them. */
    for (int i = 0; i < 4; i++)
        one_start(&o[i], "sleep:2000", 10);
    one_start(&o[4], "sleep:50", 8);
    wait_all(o, 5);
    for (int i = 0; i < 4; i++) {
        double ms = (double)(o[i].t1 - o[i].t0) / 1e6;

        expect(&o[i], DP_UDF_DEADLINE_EXCEEDED, NULL);
        /* The server may end the call itself from grpc-timeout (same status);
         * either way, not before the deadline and not much after it. */
        if (ms < timeout_ms - 5 || ms > timeout_ms + 150)
            FAIL("deadline call took %.1f ms, deadline %u ms", ms, timeout_ms);
        printf("deadline: call %d DEADLINE_EXCEEDED after %.1f ms (%s)\n", i, ms, o[i].message);
    }
    expect(&o[4], DP_UDF_OK, NULL);
    if (o[4].payload_len != 8 || memcmp(o[4].payload, "SLEEP:50", 8) != 0)
        FAIL("fast call reply '%.*s'", (int)o[4].payload_len, o[4].payload);

    /* Status and grpc-message (percent-encoded on the wire) pass through. */
    static const char s1[] = "status:5:no such thing";
    static const char s2[] = "status:14:down 100% \xc3\xa9t\xc3\xa9";
    static const char s3[] = "status:8:slow down";
    one_start(&o[0], s1, sizeof(s1) - 1);
    one_start(&o[1], s2, sizeof(s2) - 1);
    one_start(&o[2], s3, sizeof(s3) - 1);
    wait_all(o, 3);
    expect(&o[0], DP_UDF_NOT_FOUND, "no such thing");
    expect(&o[1], DP_UDF_UNAVAILABLE, "down 100% \xc3\xa9t\xc3\xa9");
    expect(&o[2], DP_UDF_RESOURCE_EXHAUSTED, "slow down");
    printf("status: NOT_FOUND, UNAVAILABLE, RESOURCE_EXHAUSTED with their grpc-message\n");

    /* A 1 MiB request and reply: several DATA frames and WINDOW_UPDATEs. */
    size_t big_len = 1u << 20;
    char *big = malloc(big_len);

    if (big == NULL)
        FAIL("out of memory");
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    one_start(&o[0], big, (uint32_t)big_len);
    wait_all(o, 1);
    expect(&o[0], DP_UDF_OK, NULL);
    if (o[0].payload_len != big_len || memcmp(o[0].payload, "ABCDEFGHIJ", 10) != 0)
        FAIL("1 MiB reply: %u bytes", o[0].payload_len);
    free(big);
    printf("large: 1 MiB request and reply ok\n");

    dp_udf_client_stats(client, &st);
    if (st.connects != 1 || st.conn_lost != 0)
        FAIL("deadlines must not cost the connection (connects %llu lost %llu)",
             (unsigned long long)st.connects, (unsigned long long)st.conn_lost);
    client_down();
    return 0;
}

/* ---- biStream deadlines and statuses against udf_slow_server.py ---- */

static int run_bsdeadline(const char *host, int port)
{
    const uint32_t timeout_ms = 300;
    dp_udf_cfg_t cfg = {.connections = 1, .max_in_flight = 16, .timeout_ms = timeout_ms};
    one_t o[8];
    dp_udf_stats_t st;

    mode_bistream = 1;
    client_up(host, port, &cfg);
    one_start(&o[0], "warm", 4);
    wait_all(o, 1);
    expect(&o[0], DP_UDF_OK, NULL);

    /* One slow request and three fast ones behind it on the same stream:
     * the replies come in order, so all four miss the deadline; their late
     * replies are dropped and the stream carries on. */
    one_start(&o[0], "sleep:700", 9);
    one_start(&o[1], "a", 1);
    one_start(&o[2], "b", 1);
    one_start(&o[3], "c", 1);
    wait_all(o, 4);
    for (int i = 0; i < 4; i++) {
        double ms = (double)(o[i].t1 - o[i].t0) / 1e6;

        expect(&o[i], DP_UDF_DEADLINE_EXCEEDED, NULL);
        if (ms < timeout_ms - 5 || ms > timeout_ms + 150)
            FAIL("biStream deadline after %.1f ms, deadline %u ms", ms, timeout_ms);
    }
    printf("bsdeadline: 4 pipelined calls DEADLINE_EXCEEDED behind a slow one\n");
    for (int64_t end = now_ns() + 2000000000LL; now_ns() < end;) {
        dp_udf_client_stats(client, &st);
        if (st.late == 4)
            break;
        dp_ring_run_once(&ring, 1, 50);
    }
    one_start(&o[0], "after", 5);
    wait_all(o, 1);
    expect(&o[0], DP_UDF_OK, NULL);
    if (o[0].payload_len != 5 || memcmp(o[0].payload, "AFTER", 5) != 0)
        FAIL("reply after the late ones: '%.*s'", (int)o[0].payload_len, o[0].payload);
    dp_udf_client_stats(client, &st);
    if (st.late != 4 || st.streams != 1 || st.connects != 1)
        FAIL("late %llu streams %llu connects %llu, want 4 1 1", (unsigned long long)st.late,
             (unsigned long long)st.streams, (unsigned long long)st.connects);
    printf("bsdeadline: 4 late replies dropped, next call matched, same stream\n");

    /* A failed request ends the stream with its status; it goes to that
     * request; the next call opens a new stream. */
    one_start(&o[0], "status:5:no such thing", 22);
    wait_all(o, 1);
    expect(&o[0], DP_UDF_NOT_FOUND, "no such thing");
    one_start(&o[0], "again", 5);
    one_start(&o[1], "again2", 6);
    wait_all(o, 2);
    expect(&o[0], DP_UDF_OK, NULL);
    expect(&o[1], DP_UDF_OK, NULL);
    dp_udf_client_stats(client, &st);
    if (st.streams != 2 || st.connects != 1)
        FAIL("streams %llu connects %llu, want 2 1", (unsigned long long)st.streams,
             (unsigned long long)st.connects);
    printf("bsdeadline: NOT_FOUND ends the stream, a new stream serves the next calls\n");
    client_down();
    return 0;
}

/* ---- bench: one line of figures per run ---- */

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void bench_print(const char *mode, uint64_t n, unsigned inflight, double secs, double cpu)
{
    qsort(L.lat, n, sizeof(int64_t), cmp_i64);
    printf("bench mode=%s calls=%llu inflight=%u wall_s=%.3f cpu_s=%.3f wall_rps=%.0f "
           "rps_per_core=%.0f cpu_us_per_call=%.2f p50_us=%.1f p99_us=%.1f\n",
           mode, (unsigned long long)n, inflight, secs, cpu, (double)n / secs,
           cpu > 0 ? (double)n / cpu : 0, cpu * 1e6 / (double)n, (double)L.lat[n / 2] / 1e3,
           (double)L.lat[n * 99 / 100] / 1e3);
    fflush(stdout);
}

static one_t pc;
static unsigned closing;

static void on_closed_count(void *ctx)
{
    closing--;
}

/* The baseline: what streaming-runtimes did, a new gRPC channel (TCP +
 * HTTP/2 connection) per call: the same client code, created, used once,
 * closed (the close completes in the background, as a dropped channel's). */
static int run_percall(const char *host, int port, uint64_t n)
{
    dp_udf_cfg_t cfg = {.connections = 1, .max_in_flight = 1, .timeout_ms = 10000};
    int rc = dp_ring_init(&ring, 1024, 0);
    double cpu0;
    int64_t t0;

    if (rc < 0)
        exit(77);
    L.lat = calloc(n, sizeof(int64_t));
    if (L.lat == NULL)
        FAIL("out of memory");
    cpu0 = cpu_seconds();
    t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        int64_t c0 = now_ns();

        rc = dp_udf_client_new(&ring, host, (uint16_t)port, &cfg, &client);
        if (rc < 0)
            FAIL("dp_udf_client_new: %s", strerror(-rc));
        pc.done = false;
        rc = call_bench_cb(load_cb_one, &pc);
        if (rc < 0)
            FAIL("dp_udf_call: %s", strerror(-rc));
        while (!pc.done)
            if (dp_ring_run_once(&ring, 1, 1000) < 0)
                FAIL("dp_ring_run_once");
        if (pc.status != DP_UDF_OK || pc.payload_len != 20 ||
            memcmp(pc.payload, "REQ-BENCH-HELLO-WEIR", 20) != 0)
            FAIL("per-call %llu: %s: %s", (unsigned long long)i, dp_udf_status_str(pc.status),
                 pc.message);
        L.lat[i] = now_ns() - c0;
        closing++;
        dp_udf_client_close(client, on_closed_count, NULL);
    }
    while (closing > 0)
        if (dp_ring_run_once(&ring, 1, 1000) < 0)
            FAIL("dp_ring_run_once");
    bench_print("percall", n, 1, (double)(now_ns() - t0) / 1e9, cpu_seconds() - cpu0);
    dp_ring_dispose(&ring);
    free(L.lat);
    return 0;
}

static int run_bench(const char *host, int port, uint64_t n, unsigned inflight, const char *mode)
{
    dp_udf_cfg_t cfg = {.connections = 1,
                        .max_in_flight = inflight,
                        .timeout_ms = 10000,
                        .streams = inflight >= 256 ? 2 : 1};
    double cpu0;
    int64_t t0;

    bench_mode = true;
    if (strcmp(mode, "percall") == 0)
        return run_percall(host, port, n);
    mode_bistream = strcmp(mode, "bistream") == 0;
    client_up(host, port, &cfg);
    /* warm up: the connection (and stream) exist before the clock starts */
    L.n = inflight < 64 ? 64 : inflight;
    L.t0 = calloc(n > L.n ? n : L.n, sizeof(int64_t));
    L.lat = calloc(n > L.n ? n : L.n, sizeof(int64_t));
    if (L.t0 == NULL || L.lat == NULL)
        FAIL("out of memory");
    load_fill();
    while (L.done < L.n)
        if (dp_ring_run_once(&ring, 1, 1000) < 0)
            FAIL("dp_ring_run_once");
    L.n = n;
    L.issued = L.done = 0;
    L.inflight = 0;
    cpu0 = cpu_seconds();
    t0 = now_ns();
    load_fill();
    while (L.done < n)
        if (dp_ring_run_once(&ring, 1, 1000) < 0)
            FAIL("dp_ring_run_once");
    bench_print(mode, n, inflight, (double)(now_ns() - t0) / 1e9, cpu_seconds() - cpu0);
    if (mode_bistream) {
        dp_udf_stats_t st;

        dp_udf_client_stats(client, &st);
        /* Under this load every configured stream carries calls. */
        if (st.streams != cfg.streams)
            FAIL("biStream bench opened %llu streams, want %u", (unsigned long long)st.streams,
                 cfg.streams);
    }
    free(L.t0);
    free(L.lat);
    client_down();
    return 0;
}

/* ---- the platform's floor: a plain TCP ping-pong over loopback ---- */

/* pingserve PORT: echoes every byte of one connection at a time. */
static int run_pingserve(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
    char buf[4096];

    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4) != 0)
        FAIL("pingserve: cannot listen on %d: %s", port, strerror(errno));
    printf("{\"msg\":\"udf ready\",\"port\":%d}\n", port);
    fflush(stdout);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        ssize_t n;

        if (fd < 0)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            if (write(fd, buf, (size_t)n) != n)
                break;
        close(fd);
    }
}

/* pingpong HOST PORT N SIZE: N round trips of SIZE bytes each way, blocking
 * read/write: what two processes pay to wake each other over loopback. */
static int run_pingpong(const char *host, int port, uint64_t n, size_t size)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    char buf[4096] = {0};
    double cpu0;
    int64_t t0;

    if (size > sizeof(buf) || inet_pton(AF_INET, host, &sa.sin_addr) != 1 || fd < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        FAIL("pingpong: cannot connect: %s", strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    L.lat = calloc(n, sizeof(int64_t));
    if (L.lat == NULL)
        FAIL("out of memory");
    cpu0 = cpu_seconds();
    t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        int64_t c0 = now_ns();
        size_t got = 0;

        if (write(fd, buf, size) != (ssize_t)size)
            FAIL("pingpong: write: %s", strerror(errno));
        while (got < size) {
            ssize_t r = read(fd, buf + got, size - got);

            if (r <= 0)
                FAIL("pingpong: read: %s", r == 0 ? "EOF" : strerror(errno));
            got += (size_t)r;
        }
        L.lat[i] = now_ns() - c0;
    }
    bench_print("tcp", n, 1, (double)(now_ns() - t0) / 1e9, cpu_seconds() - cpu0);
    close(fd);
    free(L.lat);
    return 0;
}

int main(int argc, char **argv)
{
    const char *env_mode = getenv("UDF_DRIVER_MODE"), *env_name = getenv("UDF_DRIVER_NAME");

    if (env_mode != NULL && strcmp(env_mode, "bistream") == 0)
        mode_bistream = 1;
    if (env_name != NULL && env_name[0] != '\0')
        udf_name = env_name;
    if (argc == 7 && strcmp(argv[1], "bench") == 0)
        return run_bench(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10),
                         (unsigned)atoi(argv[5]), argv[6]);
    if (argc == 3 && strcmp(argv[1], "pingserve") == 0)
        return run_pingserve(atoi(argv[2]));
    if (argc == 6 && strcmp(argv[1], "pingpong") == 0)
        return run_pingpong(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10),
                            (size_t)atoi(argv[5]));
    if (argc == 4 && strcmp(argv[1], "bsdeadline") == 0)
        return run_bsdeadline(argv[2], atoi(argv[3]));
    if (argc >= 4 && strcmp(argv[1], "load") == 0) {
        uint64_t n = argc > 4 ? strtoull(argv[4], NULL, 10) : 10000;
        unsigned inflight = argc > 5 ? (unsigned)atoi(argv[5]) : 64;
        unsigned conns = argc > 6 ? (unsigned)atoi(argv[6]) : 1;

        return run_load(argv[2], atoi(argv[3]), n, inflight, conns);
    }
    if (argc == 4 && strcmp(argv[1], "outage") == 0)
        return run_outage(argv[2], atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "deadline") == 0)
        return run_deadline(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: udf_driver load HOST PORT [N [INFLIGHT [CONNS]]]\n"
                    "       udf_driver bench HOST PORT N INFLIGHT unary|bistream|percall\n"
                    "       udf_driver bsdeadline HOST PORT\n"
                    "       udf_driver pingserve PORT | pingpong HOST PORT N SIZE\n"
                    "       udf_driver outage HOST PORT\n"
                    "       udf_driver deadline HOST PORT\n");
    return 2;
}
