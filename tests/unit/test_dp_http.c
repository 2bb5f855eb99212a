/* Description: dp_http: /metrics, /healthz, /readyz, 404 and 405 over real
 * sockets on an ephemeral port; content types, a 150 KiB body, render errors,
 * readiness flips, keep-alive, concurrent clients, restart and port clashes. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dp_http.h"

/* ---- a tiny HTTP/1.1 client ------------------------------------------- */

typedef struct {
    int status;
    char ctype[128];
    long clen; /* content-length header, -1 if absent */
    char *body;
    size_t body_len;
    int closed; /* server closed the connection after the response */
} resp_t;

static void resp_free(resp_t *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static int connect_port(int port)
{
    struct sockaddr_in sa;
    struct timeval tv = {10, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *s)
{
    size_t n = strlen(s), off = 0;

    while (off < n) {
        ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

/* Reads one response (headers, then content-length bytes). With `expect_close`
 * also checks that EOF follows. Returns 0 or -1. */
static int read_resp(int fd, resp_t *r, int expect_close)
{
    size_t cap = 1 << 16, len = 0, hdr_len = 0;
    char *buf = malloc(cap), *eoh, *line, *save;
    int rc = -1;

    memset(r, 0, sizeof(*r));
    r->clen = -1;
    if (buf == NULL)
        return -1;
    /* Read byte-wise until the end of the headers so nothing of a
     * following response is consumed. */
    for (;;) {
        ssize_t n = recv(fd, buf + len, 1, 0);
        if (n <= 0)
            goto out;
        len++;
        if (len >= 4 && memcmp(buf + len - 4, "\r\n\r\n", 4) == 0)
            break;
        if (len + 1 >= cap)
            goto out;
    }
    hdr_len = len;
    buf[hdr_len - 2] = '\0';
    eoh = buf;
    if (sscanf(eoh, "HTTP/1.%*d %d", &r->status) != 1)
        goto out;
    for (line = strtok_r(eoh, "\r\n", &save); line != NULL; line = strtok_r(NULL, "\r\n", &save)) {
        if (strncasecmp(line, "content-type:", 13) == 0)
            snprintf(r->ctype, sizeof(r->ctype), "%s", line + 13 + strspn(line + 13, " "));
        else if (strncasecmp(line, "content-length:", 15) == 0)
            r->clen = strtol(line + 15, NULL, 10);
    }
    if (r->clen < 0)
        goto out;
    r->body = malloc((size_t)r->clen + 1);
    if (r->body == NULL)
        goto out;
    while (r->body_len < (size_t)r->clen) {
        ssize_t n = recv(fd, r->body + r->body_len, (size_t)r->clen - r->body_len, 0);
        if (n <= 0)
            goto out;
        r->body_len += (size_t)n;
    }
    r->body[r->body_len] = '\0';
    if (expect_close) {
        char c;
        r->closed = recv(fd, &c, 1, 0) == 0;
        if (!r->closed)
            goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

/* One request on a fresh connection with "Connection: close". */
static int request(int port, const char *method, const char *path, const char *extra, resp_t *r)
{
    char req[1024];
    int fd = connect_port(port), rc = -1;

    memset(r, 0, sizeof(*r));
    if (fd < 0)
        return -1;
    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n%s\r\n",
             method, path, extra != NULL ? extra : "");
    if (send_all(fd, req) == 0)
        rc = read_resp(fd, r, 1);
    close(fd);
    return rc;
}

static int get(int port, const char *path, resp_t *r)
{
    return request(port, "GET", path, NULL, r);
}

/* ---- the process under test ------------------------------------------- */

#define BIG_BYTES (150 * 1024)
#define HUGE_BYTES (8 * 1024 * 1024)

typedef struct {
    atomic_int ready;
    atomic_int renders;
    atomic_int big;        /* 1: render a BIG_BYTES page, 2: HUGE_BYTES */
    atomic_int render_err; /* render fails with this -errno */
} app_t;

static int app_render(dp_mbuf_t *out, void *ctx)
{
    app_t *a = ctx;
    int i;

    atomic_fetch_add(&a->renders, 1);
    if (atomic_load(&a->render_err) != 0)
        return atomic_load(&a->render_err);
    dp_metrics_counter(out, "weir_test_requests_total", "Test counter.", NULL, 7);
    if (atomic_load(&a->big)) {
        size_t want = atomic_load(&a->big) == 1 ? BIG_BYTES : HUGE_BYTES;

        /* Deterministic filler up to exactly `want` bytes. */
        for (i = 0; out->len + 16 <= want; i++)
            dp_mbuf_printf(out, "# filler %06d\n", i % 1000000);
        while (out->len < want)
            dp_mbuf_append(out, "#", 1);
    }
    return out->err;
}

static int app_ready(char *reason, size_t reasonlen, void *ctx)
{
    app_t *a = ctx;

    if (atomic_load(&a->ready))
        return 1;
    snprintf(reason, reasonlen, "loading 3 partitions");
    return 0;
}

typedef struct {
    app_t app;
    dp_http_t *srv;
    int port;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    dp_http_handlers_t h = {app_render, app_ready, NULL};
    char err[256];
    int rc;

    if (f == NULL)
        return -1;
    h.ctx = &f->app;
    rc = dp_http_start(&f->srv, "127.0.0.1", 0, &h, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "dp_http_start: %d %s\n", rc, err);
        free(f);
        return -1;
    }
    f->port = dp_http_port(f->srv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    dp_http_stop(f->srv);
    free(f);
    return 0;
}

/* ---- tests ------------------------------------------------------------ */

static void test_paths(void **state)
{
    fixture_t *f = *state;
    resp_t r;

    assert_true(f->port > 0);
    assert_int_equal(get(f->port, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    assert_string_equal(r.ctype, "text/plain; charset=utf-8");
    resp_free(&r);

    assert_int_equal(get(f->port, "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
    assert_string_equal(r.body, "# HELP weir_test_requests_total Test counter.\n"
                                "# TYPE weir_test_requests_total counter\n"
                                "weir_test_requests_total 7\n");
    resp_free(&r);

    assert_int_equal(get(f->port, "/metrics?name[]=x", &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    assert_int_equal(get(f->port, "/nope", &r), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    assert_int_equal(get(f->port, "/", &r), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    assert_int_equal(get(f->port, "/metrics/x", &r), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);
}

static void test_methods(void **state)
{
    fixture_t *f = *state;
    static const char *const methods[] = {"POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};
    resp_t r;
    size_t i;

    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (request(f->port, methods[i], "/metrics", NULL, &r) != 0)
            fail_msg("%s: no response", methods[i]);
        if (r.status != 405)
            fail_msg("%s: status %d", methods[i], r.status);
        resp_free(&r);
    }
    /* With a request body, which the server must read past. */
    assert_int_equal(request(f->port, "POST", "/healthz",
                             "Content-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
                             &r),
                     0);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    /* The server is still fine. */
    assert_int_equal(get(f->port, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_large_body(void **state)
{
    fixture_t *f = *state;
    resp_t r;
    size_t i;

    atomic_store(&f->app.big, 1);
    for (i = 0; i < 3; i++) {
        assert_int_equal(get(f->port, "/metrics", &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, BIG_BYTES);
        assert_int_equal(strlen(r.body), BIG_BYTES);
        assert_non_null(strstr(r.body, "# filler 000100\n"));
        assert_non_null(strstr(r.body, "# filler 009000\n"));
        assert_int_equal(r.body[BIG_BYTES - 1], '#');
        resp_free(&r);
    }
    atomic_store(&f->app.big, 0);
}

static void test_render_error(void **state)
{
    fixture_t *f = *state;
    resp_t r;

    atomic_store(&f->app.render_err, -EAGAIN);
    assert_int_equal(get(f->port, "/metrics", &r), 0);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.body, "render failed"));
    resp_free(&r);
    atomic_store(&f->app.render_err, 0);
    assert_int_equal(get(f->port, "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_readiness(void **state)
{
    fixture_t *f = *state;
    resp_t r;

    atomic_store(&f->app.ready, 0);
    assert_int_equal(get(f->port, "/readyz", &r), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "loading 3 partitions\n");
    resp_free(&r);
    /* Liveness is independent of readiness. */
    assert_int_equal(get(f->port, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    atomic_store(&f->app.ready, 1);
    assert_int_equal(get(f->port, "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    resp_free(&r);
    atomic_store(&f->app.ready, 0);
    assert_int_equal(get(f->port, "/readyz", &r), 0);
    assert_int_equal(r.status, 503);
    resp_free(&r);
}

static void test_keepalive(void **state)
{
    fixture_t *f = *state;
    int fd = connect_port(f->port);
    resp_t r;

    assert_true(fd >= 0);
    atomic_store(&f->app.big, 1);
    assert_int_equal(send_all(fd, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    assert_int_equal(read_resp(fd, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, BIG_BYTES);
    resp_free(&r);
    assert_int_equal(send_all(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    assert_int_equal(read_resp(fd, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    resp_free(&r);
    assert_int_equal(send_all(fd, "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"), 0);
    assert_int_equal(read_resp(fd, &r, 1), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    close(fd);
    atomic_store(&f->app.big, 0);
}

#define CLIENTS 8
#define REQUESTS 25

typedef struct {
    int port;
    int failures;
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    static const char *const paths[] = {"/metrics", "/healthz", "/readyz", "/x"};
    static const int want[] = {200, 200, 503, 404};
    resp_t r;
    int i;

    /* No cmocka asserts off the main thread. */
    for (i = 0; i < REQUESTS; i++) {
        int k = i % 4;

        if (get(c->port, paths[k], &r) != 0 || r.status != want[k] ||
            (k == 0 && r.body_len != BIG_BYTES))
            c->failures++;
        resp_free(&r);
    }
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    fixture_t *f = *state;
    pthread_t t[CLIENTS];
    client_t c[CLIENTS];
    int i, before = atomic_load(&f->app.renders);

    atomic_store(&f->app.big, 1);
    atomic_store(&f->app.ready, 0);
    for (i = 0; i < CLIENTS; i++) {
        c[i].port = f->port;
        c[i].failures = 0;
        assert_int_equal(pthread_create(&t[i], NULL, client_main, &c[i]), 0);
    }
    for (i = 0; i < CLIENTS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(c[i].failures, 0);
    }
    /* REQUESTS / 4 (rounded up) /metrics requests per client. */
    assert_int_equal(atomic_load(&f->app.renders) - before, CLIENTS * ((REQUESTS + 3) / 4));
    atomic_store(&f->app.big, 0);
}

/* A client that stops reading a huge page stalls only itself; stopping the
 * server with that response half-sent frees everything. */
static void test_stalled_client(void **state)
{
    fixture_t *f = *state;
    int small = 4096, fd = socket(AF_INET, SOCK_STREAM, 0), fd2;
    struct sockaddr_in sa;
    char head[64];
    resp_t r;

    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)f->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    atomic_store(&f->app.big, 2);
    assert_int_equal(send_all(fd, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    assert_true(recv(fd, head, sizeof(head), 0) > 0); /* it started */
    atomic_store(&f->app.big, 0);
    assert_int_equal(get(f->port, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* A second stalled connection, then stop with both in flight. */
    fd2 = connect_port(f->port);
    assert_true(fd2 >= 0);
    atomic_store(&f->app.big, 2);
    assert_int_equal(send_all(fd2, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    assert_true(recv(fd2, head, sizeof(head), 0) > 0);
    dp_http_stop(f->srv);
    f->srv = NULL;
    close(fd);
    close(fd2);
}

/* The server's fd tables are sized DP_HTTP_MAX_FDS, not by the fd limit: it
 * must still serve when the process holds far more (a store's segments and
 * sockets), so its own fds have numbers above that size. */
static void test_high_fd_numbers(void **state)
{
    (void)state;
    int hold[DP_HTTP_MAX_FDS + 128], n = 0;
    dp_http_handlers_t h = {app_render, app_ready, NULL};
    app_t app = {0};
    dp_http_t *srv = NULL;
    char err[256];
    resp_t r;

    h.ctx = &app;
    while (n < (int)(sizeof(hold) / sizeof(hold[0]))) {
        hold[n] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(hold[n] >= 0);
        n++;
    }
    assert_true(hold[n - 1] > DP_HTTP_MAX_FDS);
    assert_int_equal(dp_http_start(&srv, "127.0.0.1", 0, &h, err, sizeof(err)), 0);
    for (int i = 0; i < 3; i++) { /* a few connections, each on a high fd */
        assert_int_equal(get(dp_http_port(srv), "/healthz", &r), 0);
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    assert_int_equal(get(dp_http_port(srv), "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    dp_http_stop(srv);
    while (n > 0)
        close(hold[--n]);
}

static void test_restart_and_clash(void **state)
{
    app_t app;
    dp_http_handlers_t h = {app_render, NULL, &app};
    dp_http_t *a = NULL, *b = NULL;
    char err[256];
    resp_t r;
    int round, port, rc, idle;

    (void)state;
    memset(&app, 0, sizeof(app));
    for (round = 0; round < 2; round++) {
        assert_int_equal(dp_http_start(&a, NULL, 0, &h, err, sizeof(err)), 0);
        port = dp_http_port(a);
        assert_true(port > 0);
        /* NULL `ready` is always ready; all-interfaces bind takes IPv4. */
        assert_int_equal(get(port, "/readyz", &r), 0);
        assert_int_equal(r.status, 200);
        resp_free(&r);
        /* The same port cannot be taken twice. */
        rc = dp_http_start(&b, "127.0.0.1", port, &h, err, sizeof(err));
        assert_int_equal(rc, -EADDRINUSE);
        assert_null(b);
        assert_true(err[0] != '\0');
        /* Stop with an idle client still connected. */
        idle = connect_port(port);
        assert_true(idle >= 0);
        dp_http_stop(a);
        a = NULL;
        close(idle);
    }
    /* Bad arguments. */
    assert_int_equal(dp_http_start(&a, NULL, 70000, &h, err, sizeof(err)), -EINVAL);
    assert_null(a);
    assert_int_equal(dp_http_start(&a, "203.0.113.1", 0, &h, NULL, 0), -EADDRNOTAVAIL);
    assert_null(a);
    assert_int_equal(dp_http_start(&a, "eth0", 0, &h, err, sizeof(err)), -EINVAL);
    assert_null(a);
    assert_non_null(strstr(err, "not an IP address"));
    dp_http_stop(NULL);
}

static void test_ipv6_loopback(void **state)
{
    app_t app;
    dp_http_handlers_t h = {app_render, NULL, &app};
    struct sockaddr_in6 sa;
    struct timeval tv = {10, 0};
    dp_http_t *srv = NULL;
    resp_t r;
    int fd, rc;

    (void)state;
    memset(&app, 0, sizeof(app));
    rc = dp_http_start(&srv, "::1", 0, &h, NULL, 0);
    if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT)
        skip(); /* no IPv6 loopback here */
    assert_int_equal(rc, 0);
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    memset(&sa, 0, sizeof(sa));
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((uint16_t)dp_http_port(srv));
    sa.sin6_addr = in6addr_loopback;
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(send_all(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
                     0);
    assert_int_equal(read_resp(fd, &r, 1), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    close(fd);
    /* Bound to ::1 only: IPv4 loopback is refused. */
    assert_true(connect_port(dp_http_port(srv)) < 0);
    dp_http_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readiness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_client, setup, teardown),
        cmocka_unit_test(test_restart_and_clash),
        cmocka_unit_test(test_high_fd_numbers),
        cmocka_unit_test(test_ipv6_loopback),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
