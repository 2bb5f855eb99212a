/* Description: op_kube watch line parser fed recorded apiserver streams split at every byte
 * boundary. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_kube.h"

static char data_dir[PATH_MAX];

/* What the callback saw: "ADDED:rec1:257 MODIFIED:..." */
typedef struct {
    char log[4096];
    int calls;
    int stop_after; /* 0: never */
} seen_t;

static int record(op_kube_event_t type, json_t *obj, void *arg)
{
    seen_t *s = arg;
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    size_t n = strlen(s->log);

    snprintf(s->log + n, sizeof(s->log) - n, "%s%s:%s:%s", n ? " " : "", op_kube_event_str(type),
             name ? name : "-", rv ? rv : "-");
    s->calls++;
    return s->stop_after && s->calls >= s->stop_after;
}

static char *load(const char *name, size_t *len)
{
    char path[PATH_MAX + 64];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/%s", data_dir, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/* Feeds `buf` as the given chunks (cuts are offsets), then finishes. */
static op_kube_err_t run(const char *buf, size_t len, const size_t *cuts, int ncuts,
                         size_t max_line, seen_t *s, op_kube_watch_parser_t *p, char *err,
                         size_t errlen)
{
    size_t at = 0;
    op_kube_err_t rc = OP_KUBE_OK;

    op_kube_watch_parser_init(p, max_line, "100", record, s, err, errlen);
    for (int i = 0; i <= ncuts && rc == OP_KUBE_OK && !p->stopped; i++) {
        size_t end = i < ncuts ? cuts[i] : len;

        rc = op_kube_watch_parser_feed(p, buf + at, end - at);
        at = end;
    }
    if (rc == OP_KUBE_OK)
        rc = op_kube_watch_parser_finish(p);
    op_kube_watch_parser_dispose(p);
    return rc;
}

static const char *expected_cm = "ADDED:rec1:257 MODIFIED:rec1:258 DELETED:rec1:259 "
                                 "BOOKMARK:-:259 BOOKMARK:-:259";

static void test_recorded_stream_every_split(void **state)
{
    op_kube_watch_parser_t p;
    char err[256];
    size_t len, cut;
    char *buf = load("watch-configmaps.jsonl", &len);

    for (cut = 0; cut <= len; cut++) {
        seen_t s = {0};

        assert_int_equal(run(buf, len, &cut, 1, 0, &s, &p, err, sizeof(err)), OP_KUBE_OK);
        if (strcmp(s.log, expected_cm) != 0)
            fail_msg("split at %zu: got \"%s\"", cut, s.log);
        assert_string_equal(p.rv, "259");
        assert_int_equal(p.events, 3);
        assert_int_equal(p.bookmarks, 2);
        assert_false(p.stopped);
    }
    free(buf);
}

static void test_recorded_stream_byte_by_byte(void **state)
{
    op_kube_watch_parser_t p;
    seen_t s = {0};
    char err[256];
    size_t len;
    char *buf = load("watch-configmaps.jsonl", &len);
    size_t *cuts = malloc(len * sizeof(*cuts));

    for (size_t i = 0; i < len; i++)
        cuts[i] = i;
    assert_int_equal(run(buf, len, cuts, (int)len, 0, &s, &p, err, sizeof(err)), OP_KUBE_OK);
    assert_string_equal(s.log, expected_cm);
    free(cuts);
    free(buf);
}

static void test_gone_every_split(void **state)
{
    op_kube_watch_parser_t p;
    char err[256];
    size_t len, cut;
    char *buf = load("watch-gone.jsonl", &len);

    for (cut = 0; cut <= len; cut++) {
        seen_t s = {0};

        err[0] = '\0';
        assert_int_equal(run(buf, len, &cut, 1, 0, &s, &p, err, sizeof(err)), OP_KUBE_ERR_GONE);
        assert_int_equal(s.calls, 0);
        assert_string_equal(err, "watch: ERROR event: The resourceVersion for the provided watch "
                                 "is too old. (code 410)");
        assert_string_equal(p.rv, "100"); /* untouched: the caller relists */
    }
    free(buf);
}

static void test_events_then_gone(void **state)
{
    op_kube_watch_parser_t p;
    seen_t s = {0};
    char err[256];
    size_t l1, l2;
    char *a = load("watch-configmaps.jsonl", &l1), *b = load("watch-gone.jsonl", &l2);
    char *both = malloc(l1 + l2);

    memcpy(both, a, l1);
    memcpy(both + l1, b, l2);
    for (size_t cut = l1 - 3; cut <= l1 + 3; cut++) {
        memset(&s, 0, sizeof(s));
        assert_int_equal(run(both, l1 + l2, &cut, 1, 0, &s, &p, err, sizeof(err)),
                         OP_KUBE_ERR_GONE);
        assert_string_equal(s.log, expected_cm);
        assert_string_equal(p.rv, "259");
    }
    free(both);
    free(a);
    free(b);
}

static void test_oversize_line(void **state)
{
    op_kube_watch_parser_t p;
    char err[256];
    size_t len, cut;
    char *buf = load("watch-configmaps.jsonl", &len);

    /* The first event line is ~450 bytes: a 300-byte cap refuses it
     * wherever the stream is cut, before any event is dispatched. */
    for (cut = 0; cut <= len; cut++) {
        seen_t s = {0};

        assert_int_equal(run(buf, len, &cut, 1, 300, &s, &p, err, sizeof(err)),
                         OP_KUBE_ERR_INVALID);
        assert_int_equal(s.calls, 0);
        assert_string_equal(err, "watch: event line longer than 300 bytes");
    }
    /* A cap that fits every line accepts the stream; the buffer never
     * grows past it. */
    {
        seen_t s = {0};
        size_t cuts[3] = {10, 700, 1500};

        assert_int_equal(run(buf, len, cuts, 3, 700, &s, &p, err, sizeof(err)), OP_KUBE_OK);
        assert_string_equal(s.log, expected_cm);
    }
    free(buf);
}

static void test_callback_stops(void **state)
{
    op_kube_watch_parser_t p;
    seen_t s = {.stop_after = 2};
    char err[256];
    size_t len;
    char *buf = load("watch-configmaps.jsonl", &len);

    assert_int_equal(run(buf, len, NULL, 0, 0, &s, &p, err, sizeof(err)), OP_KUBE_OK);
    assert_true(p.stopped);
    assert_int_equal(s.calls, 2);
    assert_string_equal(p.rv, "258");
    free(buf);
}

static void test_framing_edge_cases(void **state)
{
    /* CRLF, blank keep-alive lines, a last line without newline. */
    const char *text =
        "\n\r\n{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\","
        "\"resourceVersion\":\"7\"}}}\r\n  \n"
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}";
    op_kube_watch_parser_t p;
    char err[256];

    for (size_t cut = 0; cut <= strlen(text); cut++) {
        seen_t s = {0};

        assert_int_equal(run(text, strlen(text), &cut, 1, 0, &s, &p, err, sizeof(err)), OP_KUBE_OK);
        assert_string_equal(s.log, "ADDED:a:7 BOOKMARK:-:9");
        assert_string_equal(p.rv, "9");
    }
}

static void expect_bad(const char *text, op_kube_err_t want, const char *needle)
{
    op_kube_watch_parser_t p;
    seen_t s = {0};
    char err[256] = "";

    assert_int_equal(run(text, strlen(text), NULL, 0, 0, &s, &p, err, sizeof(err)), want);
    if (!strstr(err, needle))
        fail_msg("\"%s\" does not contain \"%s\"", err, needle);
}

static void test_bad_events(void **state)
{
    expect_bad("not json\n", OP_KUBE_ERR_INVALID, "unparsable event");
    expect_bad("{\"type\":\"ADDED\"}\n", OP_KUBE_ERR_INVALID, "without type or object");
    expect_bad("{\"type\":\"WHAT\",\"object\":{}}\n", OP_KUBE_ERR_INVALID, "unknown event type");
    expect_bad("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500,"
               "\"message\":\"etcd down\"}}\n",
               OP_KUBE_ERR_TRANSIENT, "etcd down (code 500)");
    expect_bad("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":403,"
               "\"message\":\"no\"}}\n",
               OP_KUBE_ERR_AUTH, "no (code 403)");
    expect_bad("{\"type\":\"ERROR\",\"object\":{}}\n", OP_KUBE_ERR_TRANSIENT, "(no message)");
    /* The error is sticky: later events are not dispatched. */
    {
        op_kube_watch_parser_t p;
        seen_t s = {0};
        char err[256];
        const char *t = "garbage\n{\"type\":\"ADDED\",\"object\":{}}\n";

        op_kube_watch_parser_init(&p, 0, NULL, record, &s, err, sizeof(err));
        assert_int_equal(op_kube_watch_parser_feed(&p, t, strlen(t)), OP_KUBE_ERR_INVALID);
        assert_int_equal(op_kube_watch_parser_feed(&p, t + 8, strlen(t + 8)), OP_KUBE_ERR_INVALID);
        assert_int_equal(s.calls, 0);
        op_kube_watch_parser_dispose(&p);
    }
}

static int setup(void **state)
{
    const char *src = getenv("WEIR_SOURCE_DIR");

    if (src)
        snprintf(data_dir, sizeof(data_dir), "%s/tests/data/kube", src);
    else if (!realpath("data/kube", data_dir))
        return -1;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recorded_stream_every_split),
        cmocka_unit_test(test_recorded_stream_byte_by_byte),
        cmocka_unit_test(test_gone_every_split),
        cmocka_unit_test(test_events_then_gone),
        cmocka_unit_test(test_oversize_line),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_framing_edge_cases),
        cmocka_unit_test(test_bad_events),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
