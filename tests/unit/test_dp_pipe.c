/* Description: pipeline engine: data-driven cases (tests/data/pipe), checkpoints, backpressure, UDF
 * hook, compile errors. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_nexmark.h"
#include "dp_pipe.h"
#include "wc_spec.h"

/* ---- capture: every emitted record as one JSON object ---- */

typedef struct cap {
    json_t *recs; /* array of {"out", "key", "payload"|"raw", "headers", "part_key", "ts"} */
    const json_t *spec;
    uint64_t n;
} cap_t;

static json_t *strn(const char *s, size_t n)
{
    return s != NULL ? json_stringn(s, n) : json_null();
}

static void cap_emit(void *ctx, const dp_pipe_out_t *o)
{
    cap_t *c = ctx;
    json_t *r, *h;
    const char *name = "DLQ";

    c->n++;
    if (c->recs == NULL)
        return;
    r = json_object();
    h = json_object();
    if (o->output != DP_PIPE_DLQ)
        name = json_string_value(json_object_get(
            json_array_get(json_object_get(c->spec, "outputs"), o->output), "name"));
    json_object_set_new(r, "out", json_string(name));
    json_object_set_new(r, "key", strn(o->key, o->key_len));
    if (o->payload != NULL) {
        json_t *pv = json_loadb(o->payload, o->payload_len, JSON_DECODE_ANY, NULL);

        if (pv != NULL)
            json_object_set_new(r, "payload", pv);
        else
            json_object_set_new(r, "raw", json_stringn(o->payload, o->payload_len));
        json_object_set_new(r, "bytes", json_stringn(o->payload, o->payload_len));
    } else {
        json_object_set_new(r, "payload", json_null());
    }
    for (uint32_t k = 0; k < o->nhdrs; k++)
        json_object_set_new(h, o->hdrs[k].name, strn(o->hdrs[k].val, o->hdrs[k].val_len));
    json_object_set_new(r, "headers", h);
    if (o->part_key != NULL)
        json_object_set_new(r, "part_key", json_stringn(o->part_key, o->part_key_len));
    json_object_set_new(r, "ts", json_integer(o->ts_ms));
    json_array_append_new(c->recs, r);
}

/* Does actual record `a` match expected `e`? Only the fields `e` names are
 * compared; a header expected as null must be absent; a header value
 * starting with '~' is a substring match. */
static bool rec_match(const json_t *e, const json_t *a)
{
    const char *k;
    json_t *v;

    json_object_foreach ((json_t *)e, k, v) {
        json_t *av = json_object_get(a, k);

        if (strcmp(k, "headers") == 0) {
            const char *hk;
            json_t *hv;

            json_object_foreach (v, hk, hv) {
                json_t *ah = json_object_get(av, hk);
                const char *es = json_string_value(hv);

                if (json_is_null(hv)) {
                    if (ah != NULL)
                        return false;
                } else if (es != NULL && es[0] == '~') {
                    if (!json_is_string(ah) || strstr(json_string_value(ah), es + 1) == NULL)
                        return false;
                } else if (ah == NULL || !json_equal(hv, ah)) {
                    return false;
                }
            }
            continue;
        }
        if (av == NULL || !json_equal(v, av))
            return false;
    }
    return true;
}

/* ---- data-driven cases ---- */

static json_t *load_jsonl(const char *path)
{
    FILE *f = fopen(path, "r");
    json_t *arr = json_array();
    char line[65536];
    int ln = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        json_error_t je;
        json_t *v;

        ln++;
        if (line[strspn(line, " \t\r\n")] == '\0' || line[0] == '#')
            continue;
        v = json_loads(line, 0, &je);
        if (v == NULL)
            fail_msg("%s:%d: %s", path, ln, je.text);
        json_array_append_new(arr, v);
    }
    fclose(f);
    return arr;
}

static void hdrs_of(const json_t *h, dp_hdr_t *out, uint32_t *n)
{
    const char *k;
    json_t *v;

    *n = 0;
    json_object_foreach ((json_t *)h, k, v) {
        out[*n].name = k;
        out[*n].name_len = (uint32_t)strlen(k);
        out[*n].val = json_string_value(v);
        out[*n].val_len = json_is_string(v) ? (uint32_t)json_string_length(v) : 0;
        (*n)++;
    }
}

static dp_pipe_t *pipe_new(const json_t *spec, cap_t *c, size_t state_max)
{
    dp_pipe_opts_t o = {.emit = cap_emit, .ctx = c, .state_bytes_max = state_max};
    dp_pipe_t *p = NULL;
    char err[512];
    int rc = dp_pipe_new(spec, &o, &p, err, sizeof(err));

    if (rc != 0)
        fail_msg("dp_pipe_new: %s", err);
    return p;
}

/* Saves `*pp`, frees it, and loads the state into a fresh pipe. */
static void checkpoint_swap(dp_pipe_t **pp, const json_t *spec, cap_t *c, int64_t now)
{
    dp_ser_w_t w = {0};
    dp_ser_r_t r;
    dp_pipe_t *np;

    assert_int_equal(dp_pipe_save(*pp, &w), 0);
    np = pipe_new(spec, c, 0);
    dp_ser_rinit(&r, w.buf, w.len);
    assert_int_equal(dp_pipe_load(np, &r), 0);
    assert_int_equal(r.off, r.len);
    dp_pipe_free(*pp);
    dp_ser_wdispose(&w);
    *pp = np;
    dp_pipe_tick(np, now); /* same instant: the clock resumes where it was */
}

/* Runs a case's input lines. With `checkpoints`, the pipe is saved and
 * replaced by a restored one after every tick line. */
static void run_case(const char *dir, const json_t *spec, const json_t *input, cap_t *c,
                     bool checkpoints)
{
    dp_pipe_t *p = pipe_new(spec, c, 0);
    int64_t now = 0;
    size_t i;
    json_t *l;

    json_array_foreach (input, i, l) {
        json_t *v;
        dp_hdr_t hdrs[32];
        dp_pipe_rec_t rec = {0};
        char *payload = NULL;
        int rc;

        if (json_object_get(l, "now") != NULL)
            now = json_integer_value(json_object_get(l, "now"));
        if (json_object_get(l, "tick") != NULL) {
            now = json_integer_value(json_object_get(l, "tick"));
            dp_pipe_tick(p, now);
            if (checkpoints)
                checkpoint_swap(&p, spec, c, now);
            continue;
        }
        if (json_object_get(l, "stats") != NULL) {
            const dp_pipe_stats_t *st = dp_pipe_stats(p);
            const char *k;

            if (checkpoints)
                continue; /* counters restart with a restored pipe */
            json_object_foreach (json_object_get(l, "stats"), k, v) {
                uint64_t got = strcmp(k, "dead_letters") == 0   ? st->dead_letters
                               : strcmp(k, "filtered") == 0     ? st->filtered
                               : strcmp(k, "late_dropped") == 0 ? st->late_dropped
                               : strcmp(k, "late_side") == 0    ? st->late_side
                               : strcmp(k, "late_upserts") == 0 ? st->late_upserts
                               : strcmp(k, "records_out") == 0  ? st->records_out
                               : strcmp(k, "records_in") == 0   ? st->records_in
                                                                : UINT64_MAX;

                if (got != (uint64_t)json_integer_value(v))
                    fail_msg("%s line %zu: stats.%s = %" PRIu64 ", expected %" PRId64, dir, i + 1,
                             k, got, (int64_t)json_integer_value(v));
            }
            continue;
        }
        if (json_object_get(l, "watermark") != NULL) {
            json_t *w = json_object_get(l, "watermark");
            int64_t want = json_is_null(w) ? INT64_MIN : json_integer_value(w);

            if (dp_pipe_watermark(p) != want)
                fail_msg("%s line %zu: watermark %" PRId64 ", expected %" PRId64, dir, i + 1,
                         dp_pipe_watermark(p), want);
            continue;
        }
        rec.partition = (int32_t)json_integer_value(json_object_get(l, "p"));
        rec.offset = json_integer_value(json_object_get(l, "off"));
        rec.ts_ms = json_integer_value(json_object_get(l, "ts"));
        if ((v = json_object_get(l, "key")) != NULL && json_is_string(v)) {
            rec.key = json_string_value(v);
            rec.key_len = (uint32_t)json_string_length(v);
        }
        if ((v = json_object_get(l, "raw")) != NULL) {
            rec.payload = json_string_value(v);
            rec.payload_len = (uint32_t)json_string_length(v);
        } else if ((v = json_object_get(l, "v")) != NULL) {
            payload = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            rec.payload = payload;
            rec.payload_len = (uint32_t)strlen(payload);
        }
        hdrs_of(json_object_get(l, "h"), hdrs, &rec.nhdrs);
        rec.hdrs = hdrs;
        rc = dp_pipe_push(p, (uint32_t)json_integer_value(json_object_get(l, "in")), &rec, now);
        free(payload);
        if (json_is_true(json_object_get(l, "enobufs")))
            assert_int_equal(rc, -ENOBUFS);
        else if (rc != 0)
            fail_msg("%s line %zu: push returned %d", dir, i + 1, rc);
    }
    dp_pipe_free(p);
}

static void compare(const char *dir, const char *what, const json_t *exp, const json_t *act)
{
    size_t n =
        json_array_size(exp) > json_array_size(act) ? json_array_size(exp) : json_array_size(act);

    for (size_t k = 0; k < n; k++) {
        json_t *e = json_array_get(exp, k), *a = json_array_get(act, k);

        if (e == NULL || a == NULL || !rec_match(e, a)) {
            char *es = e ? json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

            fprintf(stderr, "%s (%s): record %zu differs\n  expected %s\nactual stream:\n", dir,
                    what, k + 1, es ? es : "(nothing)");
            for (size_t q = 0; q < json_array_size(act); q++) {
                char *as = json_dumps(json_array_get(act, q), JSON_COMPACT | JSON_SORT_KEYS);

                fprintf(stderr, "  %zu %s\n", q + 1, as);
                free(as);
            }
            free(es);
            fail_msg("%s: output differs (%s)", dir, what);
        }
    }
}

static void run_dir(const char *name)
{
    const char *root = getenv("WEIR_SOURCE_DIR");
    char dir[1024], path[1100], err[512];
    json_t *spec, *input, *expected;
    cap_t c = {0};

    snprintf(dir, sizeof(dir), "%s/tests/data/pipe/%s", root ? root : "..", name);
    snprintf(path, sizeof(path), "%s/spec.json", dir);
    if (wc_spec_load_file(path, &spec, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    snprintf(path, sizeof(path), "%s/input.jsonl", dir);
    input = load_jsonl(path);
    snprintf(path, sizeof(path), "%s/expected.jsonl", dir);
    expected = load_jsonl(path);
    c.spec = spec;
    c.recs = json_array();
    run_case(name, spec, input, &c, false);
    compare(name, "uninterrupted", expected, c.recs);
    json_array_clear(c.recs);
    run_case(name, spec, input, &c, true);
    compare(name, "checkpoint and restore at every tick", expected, c.recs);
    json_decref(c.recs);
    json_decref(expected);
    json_decref(input);
    json_decref(spec);
}

#define CASE(n)                                                                                    \
    static void test_case_##n(void **state)                                                        \
    {                                                                                              \
        run_dir(#n);                                                                               \
    }
CASE(passthrough)
CASE(filter_map)
CASE(project)
CASE(time_payload_s)
CASE(time_header_rfc3339)
CASE(tumbling_ooo)
CASE(hopping)
CASE(session)
CASE(idle_partition)
CASE(late_drop)
CASE(late_side)
CASE(late_upsert)
CASE(early_firing)
CASE(idle_release)
CASE(window_chain)
CASE(join_window_inner)
CASE(join_window_left)
CASE(join_window_full)
CASE(join_interval)
CASE(join_table)
CASE(partition_header)
CASE(stage_chain)
CASE(map_chain)
CASE(proc_tumbling)
CASE(proc_input_time)
CASE(hopping_2p_ooo)
CASE(session_2p_bridge)
CASE(join_q8_selfsplit)
CASE(map_set_root)

/* ---- hand-written cases ---- */

static json_t *spec_parse(const char *text)
{
    json_error_t je;
    json_t *s = json_loads(text, 0, &je);
    char err[512];

    if (s == NULL)
        fail_msg("spec: %s", je.text);
    if (wc_spec_validate(s, err, sizeof(err)) != 0)
        fail_msg("spec invalid: %s", err);
    return s;
}

#define CL "\"cluster\":{\"protocol\":\"kafka\",\"bootstrap\":\"127.0.0.1:9092\"}"
#define IN(name, extra) "{\"name\":\"" name "\",\"topic\":\"t-" name "\"," CL extra "}"
#define OUT(name, from)                                                                            \
    "{\"name\":\"" name "\",\"topic\":\"t-" name "\"," CL ",\"from\":\"" from "\"}"

static void expect_compile_error(const char *ops, const char *extra, const char *want)
{
    char text[4096];
    json_t *spec;
    dp_pipe_opts_t o = {.emit = cap_emit};
    dp_pipe_t *p = NULL;
    char err[512] = "";
    json_error_t je;

    snprintf(text, sizeof(text),
             "{\"version\":1,\"name\":\"e\",\"inputs\":[" IN("in", "") "],\"operators\":[%s],"
                                                                       "\"outputs\":[" OUT(
                                                                           "out", "x") "]%s}",
             ops, extra);
    spec = json_loads(text, 0, &je);
    assert_non_null(spec);
    assert_int_equal(dp_pipe_new(spec, &o, &p, err, sizeof(err)), -EINVAL);
    assert_null(p);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    json_decref(spec);
}

/* Description-level: compile errors name the JSON pointer and the problem. */
static void test_compile_errors(void **state)
{
    expect_compile_error(
        "{\"id\":\"x\",\"type\":\"filter\",\"from\":[\"in\"],\"expr\":\"payload.a > (1\"}", "",
        "/operators/0/expr: column ");
    expect_compile_error(
        "{\"id\":\"x\",\"type\":\"map\",\"from\":[\"in\"],\"set\":{\"header.h\":\"1\"}}", "",
        "/operators/0/set/header.h: only payload paths");
    expect_compile_error("{\"id\":\"x\",\"type\":\"window\",\"from\":[\"in\"],\"window\":{\"kind\":"
                         "\"tumbling\",\"sizeMs\":10},\"aggregations\":[{\"name\":\"key\",\"fn\":"
                         "\"count\"}]}",
                         "", "/operators/0/aggregations/0/name");
    expect_compile_error(
        "{\"id\":\"x\",\"type\":\"join\",\"from\":[\"in\",\"in\"],\"kind\":\"interval\","
        "\"joinType\":\"full\",\"leftKey\":\"key\",\"rightKey\":\"key\",\"lowerMs\":0,"
        "\"upperMs\":1}",
        "", "/operators/0: not supported");
    expect_compile_error("{\"id\":\"x\",\"type\":\"udf\",\"from\":[\"in\"],\"udf\":\"up\"}",
                         ",\"udfs\":[{\"name\":\"up\",\"endpoint\":\"127.0.0.1:55554\"}]",
                         "no UDF channel");
    expect_compile_error("{\"id\":\"x\",\"type\":\"map\",\"from\":[\"in\"],\"set\":{\"payload.a\":"
                         "\"nosuch(1)\"}}",
                         "", "/operators/0/set/payload.a: column 1");
}

/* ---- backpressure ---- */

static const char k_bp_spec[] = "{\"version\":1,\"name\":\"bp\",\"inputs\":[" IN(
    "in",
    ",\"partitions\":{\"count\":2},"
    "\"watermark\":{\"maxOutOfOrdernessMs\":0}") "],\"operators\":[{\"id\":\"w\",\"type\":"
                                                 "\"window\",\"from\":[\"in\"],\"key\":\"payload."
                                                 "k\","
                                                 "\"window\":{\"kind\":\"tumbling\",\"sizeMs\":"
                                                 "10000},\"aggregations\":[{\"name\":\"n\","
                                                 "\"fn\":\"count\"}]}],\"outputs\":[" OUT("out",
                                                                                          "w") "]}";

static int push_json(dp_pipe_t *p, int32_t part, int64_t ts, const char *payload, int64_t now)
{
    dp_pipe_rec_t r = {.partition = part,
                       .ts_ms = ts,
                       .payload = payload,
                       .payload_len = (uint32_t)strlen(payload)};

    return dp_pipe_push(p, 0, &r, now);
}

static void test_backpressure(void **state)
{
    json_t *spec = spec_parse(k_bp_spec);
    cap_t c = {.spec = spec, .recs = json_array()};
    dp_pipe_t *p = pipe_new(spec, &c, 64 * 1024);
    char buf[64];
    uint32_t in;
    int32_t part;
    int rc = 0, i;
    size_t before;
    dp_pipe_stats_t st;

    /* Distinct keys on partition 0 fill the state; partition 1 (no record
     * yet) holds the watermark, so partition 0 is refused at the bound. */
    for (i = 0; i < 100000; i++) {
        snprintf(buf, sizeof(buf), "{\"k\":%d}", i);
        rc = push_json(p, 0, 1000, buf, 0);
        if (rc != 0)
            break;
    }
    assert_int_equal(rc, -ENOBUFS);
    assert_true(dp_pipe_state_bytes(p) >= 64 * 1024);
    assert_true(dp_pipe_backpressured(p, &in, &part));
    assert_int_equal(in, 0);
    assert_int_equal(part, 1);
    /* A refused record changed nothing. */
    before = dp_pipe_state_bytes(p);
    st = *dp_pipe_stats(p);
    assert_int_equal(push_json(p, 0, 1000, "{\"k\":-1}", 0), -ENOBUFS);
    assert_int_equal(dp_pipe_state_bytes(p), before);
    assert_int_equal(dp_pipe_stats(p)->records_in, st.records_in);
    assert_int_equal(dp_pipe_stats(p)->backpressure, st.backpressure + 1);
    /* The slowest partition is still accepted: its records close windows. */
    assert_int_equal(push_json(p, 1, 20000, "{\"k\":-2}", 0), 0);
    assert_true(dp_pipe_backpressured(p, &in, &part));
    assert_int_equal(part, 0); /* now partition 0 holds the watermark */
    assert_int_equal(push_json(p, 0, 21000, "{\"k\":-3}", 0), 0);
    assert_int_equal(json_array_size(c.recs), 0);
    dp_pipe_tick(p, 1);
    assert_int_equal(json_array_size(c.recs), (size_t)i); /* every key of [0, 10000) */
    assert_false(dp_pipe_backpressured(p, &in, &part));
    assert_int_equal(push_json(p, 0, 21000, "{\"k\":-1}", 2), 0);
    dp_pipe_free(p);

    /* One partition: it is the slowest, so it may go past the bound, up to twice. */
    p = pipe_new(spec, &c, 64 * 1024);
    for (i = 0; i < 100000; i++) {
        snprintf(buf, sizeof(buf), "{\"k\":%d}", i);
        rc = push_json(p, 0, 1000, buf, 0);
        if (rc != 0)
            break;
        rc = push_json(p, 1, 1000, buf, 0);
        if (rc != 0)
            break;
    }
    assert_int_equal(rc, -ENOBUFS);
    assert_true(dp_pipe_state_bytes(p) >= 64 * 1024);
    dp_pipe_free(p);
    json_decref(c.recs);
    json_decref(spec);
}

/* ---- checkpoints: a foreign or damaged state is refused ---- */

static void test_load_mismatch(void **state)
{
    json_t *spec = spec_parse(k_bp_spec), *other;
    cap_t c = {.spec = spec, .recs = json_array()};
    dp_pipe_t *p = pipe_new(spec, &c, 0), *q;
    dp_ser_w_t w = {0};
    dp_ser_r_t r;

    assert_int_equal(push_json(p, 0, 1000, "{\"k\":1}", 0), 0);
    assert_int_equal(dp_pipe_save(p, &w), 0);
    other = json_deep_copy(spec);
    json_object_set_new(
        json_object_get(json_array_get(json_object_get(other, "operators"), 0), "window"), "sizeMs",
        json_integer(5000));
    q = pipe_new(other, &c, 0);
    dp_ser_rinit(&r, w.buf, w.len);
    assert_int_equal(dp_pipe_load(q, &r), -EBADMSG);
    assert_int_equal(dp_pipe_state_bytes(q) <= dp_pipe_state_bytes(p), true);
    dp_pipe_free(q);
    /* truncated */
    q = pipe_new(spec, &c, 0);
    dp_ser_rinit(&r, w.buf, w.len - 3);
    assert_int_equal(dp_pipe_load(q, &r), -EBADMSG);
    /* and a good one still loads into the same pipe afterwards */
    dp_ser_rinit(&r, w.buf, w.len);
    assert_int_equal(dp_pipe_load(q, &r), 0);
    assert_int_equal(dp_pipe_state_bytes(q), dp_pipe_state_bytes(p));
    dp_pipe_free(q);
    dp_pipe_free(p);
    dp_ser_wdispose(&w);
    json_decref(other);
    json_decref(c.recs);
    json_decref(spec);
}

/* ---- UDF hook ---- */

typedef struct udf_log {
    int calls;
    int window_calls;
    uint32_t last_nrecs;
    uint32_t op;
    char payload[256];
    uint32_t payload_len;
    bool partial;
} udf_log_t;

static int fake_submit(void *ctx, const dp_pipe_udf_req_t *q)
{
    udf_log_t *l = ctx;

    l->calls++;
    l->op = q->op;
    if (q->window) {
        l->window_calls++;
        l->last_nrecs = q->nrecs;
        l->partial = q->partial;
        return 0;
    }
    assert_true(q->payload_len < sizeof(l->payload));
    memcpy(l->payload, q->payload, q->payload_len);
    l->payload_len = q->payload_len;
    return 0;
}

static void test_udf(void **state)
{
    json_t *spec = spec_parse("{\"version\":1,\"name\":\"u\",\"inputs\":[" IN(
        "in", ",\"partitions\":{\"count\":1}") "],"
                                               "\"operators\":[{\"id\":\"m\",\"type\":\"map\","
                                               "\"from\":[\"in\"],\"set\":{\"payload.b\":\"1\"}},"
                                               "{\"id\":\"up\",\"type\":\"udf\",\"from\":[\"m\"],"
                                               "\"udf\":\"upper\"},"
                                               "{\"id\":\"f\",\"type\":\"filter\",\"from\":[\"up\"]"
                                               ",\"expr\":\"payload.a == \\\"X\\\"\"},"
                                               "{\"id\":\"w\",\"type\":\"window\",\"from\":[\"in\"]"
                                               ",\"udf\":\"agg\",\"window\":{\"kind\":"
                                               "\"tumbling\",\"sizeMs\":100}}],"
                                               "\"outputs\":[" OUT("out", "f") "," OUT(
                                                   "wout", "w") "],"
                                                                "\"udfs\":[{\"name\":\"upper\","
                                                                "\"endpoint\":\"127.0.0.1:55554\"},"
                                                                "{\"name\":\"agg\",\"endpoint\":"
                                                                "\"127.0.0.1:55555\"}]}");
    cap_t c = {.spec = spec, .recs = json_array()};
    udf_log_t log = {0};
    dp_pipe_opts_t o = {.emit = cap_emit, .ctx = &c, .udf_submit = fake_submit, .udf_ctx = &log};
    dp_pipe_udf_reply_t rep = {.op = 1, .event_ms = 5, .ts_ms = 5, .input = 0, .offset = 9};
    dp_pipe_t *p = NULL;
    char err[256];
    json_t *rec;

    assert_int_equal(dp_pipe_new(spec, &o, &p, err, sizeof(err)), 0);
    assert_int_equal(push_json(p, 0, 5, "{\"a\":\"x\"}", 0), 0);
    assert_int_equal(log.calls, 1);
    assert_int_equal(log.op, 1);
    /* the map's edit is encoded before the call */
    assert_string_equal("{\"a\":\"x\",\"b\":1}", (log.payload[log.payload_len] = 0, log.payload));
    rep.payload = "{\"a\":\"X\"}";
    rep.payload_len = 9;
    assert_int_equal(dp_pipe_udf_result(p, &rep, 1), 0);
    assert_int_equal(json_array_size(c.recs), 1);
    rec = json_array_get(c.recs, 0);
    assert_string_equal(json_string_value(json_object_get(rec, "out")), "out");
    assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "payload"), "a")),
                        "X");
    /* a failed call is dead-lettered with the gRPC status */
    rep.grpc_status = 4;
    rep.error = "deadline exceeded";
    assert_int_equal(dp_pipe_udf_result(p, &rep, 2), 0);
    rec = json_array_get(c.recs, 1);
    assert_string_equal(json_string_value(json_object_get(rec, "out")), "DLQ");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "headers"), "weir.grpc.status")),
        "4");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "headers"), "weir.source.offset")),
        "9");
    /* the window UDF gets the window's records when it fires */
    assert_int_equal(push_json(p, 0, 50, "{\"a\":\"y\"}", 3), 0);
    assert_int_equal(push_json(p, 0, 250, "{\"a\":\"z\"}", 3), 0);
    dp_pipe_tick(p, 4);
    assert_int_equal(log.window_calls, 1);
    assert_int_equal(log.last_nrecs, 2);
    rep.op = 3;
    assert_int_equal(dp_pipe_udf_result(p, &rep, 5), 0); /* still the failure: DLQ */
    rep.op = 0;
    assert_int_equal(dp_pipe_udf_result(p, &rep, 5), -EINVAL); /* a map is no UDF */
    dp_pipe_free(p);
    json_decref(c.recs);
    json_decref(spec);
}

/* ---- per-record cost (printed, not asserted) ---- */

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void bench_query(const char *name, const char *ops, const char *from, uint64_t n)
{
    char text[4096];
    json_t *spec;
    cap_t c = {0};
    dp_pipe_opts_t o = {.emit = cap_emit, .ctx = &c, .blackhole = true};
    dp_pipe_t *p = NULL;
    dp_nexmark_cfg_t cfg;
    dp_nexmark_gen_t gen;
    dp_nexmark_event_t ev;
    int slot_of[DP_NEXMARK_NPATHS];
    dp_val_t *slots;
    char err[512];
    uint64_t bids = 0;
    double t0, t1;

    snprintf(text, sizeof(text),
             "{\"version\":1,\"name\":\"b\",\"inputs\":[" IN(
                 "bids",
                 ",\"partitions\":{\"count\":1},"
                 "\"watermark\":{\"maxOutOfOrdernessMs\":4000}") "],\"operators\":[%s],\"outputs\":"
                                                                 "[" OUT("out", "%s") "]}",
             ops, from);
    spec = spec_parse(text);
    c.spec = spec;
    assert_int_equal(dp_pipe_new(spec, &o, &p, err, sizeof(err)), 0);
    for (unsigned k = 0; k < DP_NEXMARK_NPATHS; k++)
        slot_of[k] = dp_pipe_slot(p, dp_nexmark_paths[k]);
    slots = calloc(dp_pipe_nslots(p) + 1, sizeof(*slots));
    dp_nexmark_cfg_init(&cfg);
    assert_int_equal(dp_nexmark_gen_init(&gen, &cfg, 0, 1), 0);
    t0 = now_s();
    for (uint64_t k = 0; k < n; k++) {
        dp_row_t row = {.slots = slots, .nslots = dp_pipe_nslots(p), .offset = (int64_t)k};

        dp_nexmark_gen_next(&gen, &ev);
        if (ev.type != DP_NEXMARK_BID)
            continue;
        dp_nexmark_fill_slots(&ev, slot_of, slots);
        dp_nexmark_row_times(&ev, &row);
        assert_int_equal(dp_pipe_push_row(p, 0, &row, 0), 0);
        if (++bids % 4096 == 0)
            dp_pipe_tick(p, 0);
    }
    dp_pipe_tick(p, 0);
    t1 = now_s();
    printf("# %-26s %8.1f ns/bid (%.2f M bids/s incl. generator), %" PRIu64 " out\n", name,
           (t1 - t0) * 1e9 / (double)bids, (double)bids / (t1 - t0) / 1e6, c.n);
    free(slots);
    dp_pipe_free(p);
    json_decref(spec);
}

static void test_bench(void **state)
{
    uint64_t n =
        getenv("WEIR_PIPE_BENCH_N") ? strtoull(getenv("WEIR_PIPE_BENCH_N"), NULL, 10) : 300000;
    dp_nexmark_cfg_t cfg;
    dp_nexmark_gen_t gen;
    dp_nexmark_event_t ev;
    uint64_t bids = 0;
    double t0;

    /* The generator alone, to subtract from the figures below. */
    dp_nexmark_cfg_init(&cfg);
    assert_int_equal(dp_nexmark_gen_init(&gen, &cfg, 0, 1), 0);
    t0 = now_s();
    for (uint64_t k = 0; k < n; k++) {
        dp_nexmark_gen_next(&gen, &ev);
        bids += ev.type == DP_NEXMARK_BID;
    }
    printf("# %-26s %8.1f ns/bid\n", "generator only", (now_s() - t0) * 1e9 / (double)bids);

    bench_query("q0 pass-through", "", "bids", n);
    bench_query("q1 map price*0.908",
                "{\"id\":\"m\",\"type\":\"map\",\"from\":[\"bids\"],\"set\":{\"payload.bid.price\":"
                "\"payload.bid.price * 0.908\"}}",
                "m", n);
    bench_query("q2 filter auction%123==0",
                "{\"id\":\"f\",\"type\":\"filter\",\"from\":[\"bids\"],\"expr\":"
                "\"payload.bid.auction % 123 == 0\"}",
                "f", n);
    bench_query(
        "q5-like hopping count",
        "{\"id\":\"w\",\"type\":\"window\",\"from\":[\"bids\"],\"key\":\"payload.bid.auction\","
        "\"window\":{\"kind\":\"hopping\",\"sizeMs\":10000,\"slideMs\":2000},"
        "\"aggregations\":[{\"name\":\"n\",\"fn\":\"count\"}]}",
        "w", n);
    bench_query(
        "q7-like tumbling max",
        "{\"id\":\"w\",\"type\":\"window\",\"from\":[\"bids\"],"
        "\"window\":{\"kind\":\"tumbling\",\"sizeMs\":10000},"
        "\"aggregations\":[{\"name\":\"m\",\"fn\":\"max\",\"field\":\"payload.bid.price\"}]}",
        "w", n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_case_passthrough),
        cmocka_unit_test(test_case_filter_map),
        cmocka_unit_test(test_case_project),
        cmocka_unit_test(test_case_time_payload_s),
        cmocka_unit_test(test_case_time_header_rfc3339),
        cmocka_unit_test(test_case_tumbling_ooo),
        cmocka_unit_test(test_case_hopping),
        cmocka_unit_test(test_case_session),
        cmocka_unit_test(test_case_idle_partition),
        cmocka_unit_test(test_case_late_drop),
        cmocka_unit_test(test_case_late_side),
        cmocka_unit_test(test_case_late_upsert),
        cmocka_unit_test(test_case_early_firing),
        cmocka_unit_test(test_case_idle_release),
        cmocka_unit_test(test_case_window_chain),
        cmocka_unit_test(test_case_join_window_inner),
        cmocka_unit_test(test_case_join_window_left),
        cmocka_unit_test(test_case_join_window_full),
        cmocka_unit_test(test_case_join_interval),
        cmocka_unit_test(test_case_join_table),
        cmocka_unit_test(test_case_partition_header),
        cmocka_unit_test(test_case_stage_chain),
        cmocka_unit_test(test_case_map_chain),
        cmocka_unit_test(test_case_map_set_root),
        cmocka_unit_test(test_case_proc_tumbling),
        cmocka_unit_test(test_case_proc_input_time),
        cmocka_unit_test(test_case_hopping_2p_ooo),
        cmocka_unit_test(test_case_session_2p_bridge),
        cmocka_unit_test(test_case_join_q8_selfsplit),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_load_mismatch),
        cmocka_unit_test(test_udf),
        cmocka_unit_test(test_bench),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
