/* Description: field paths, row decoding (JSON and raw) and JSON patch/build encoding. */
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

#include "dp_expr.h"
#include "dp_fields.h"

#define SLOT(f, p) dp_fields_slot((f), (p), strlen(p))

static void assert_str_val(dp_val_t v, const char *want)
{
    if (v.type != DP_VAL_STR)
        fail_msg("type %d, want STR '%s'", v.type, want);
    if (v.len != strlen(want) || memcmp(v.u.s, want, v.len) != 0)
        fail_msg("got '%.*s', want '%s'", (int)v.len, v.u.s, want);
}

static void test_paths(void **state)
{
    static const char *good[] = {
        "payload",           "payload.a", "payload.a.b.c", "payload.odd name", "header.x",
        "header.weir.error", "key",       "timestamp",     "eventtime"};
    static const struct {
        const char *path;
        const char *msg;
    } bad[] = {
        {"", "empty field path"},
        {"foo", "path 'foo' must start with payload, header, key, timestamp or eventtime"},
        {"payloads.a", "must start with payload"},
        {"payload.", "path 'payload.' has an empty segment at byte 9"},
        {"payload..a", "has an empty segment at byte 9"},
        {"header", "path 'header' needs a header name (header.NAME)"},
        {"key.x", "path 'key.x': key has no sub-fields"},
        {"timestamp.x", "timestamp has no sub-fields"},
    };
    dp_fields_t *f;
    char err[200];
    char big[DP_FIELDS_PATH_MAX + 8];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(dp_fields_check_path(good[i], strlen(good[i]), err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(dp_fields_check_path(bad[i].path, strlen(bad[i].path), err, sizeof(err)),
                         -EINVAL);
        if (strstr(err, bad[i].msg) == NULL)
            fail_msg("'%s': got '%s', want '%s'", bad[i].path, err, bad[i].msg);
    }
    assert_int_equal(dp_fields_check_path("payload.a\0b", 11, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "NUL"));
    memset(big, 'a', sizeof(big));
    memcpy(big, "payload.", 8);
    assert_int_equal(dp_fields_check_path(big, sizeof(big), err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "longer than 1024 bytes"));
    {
        char deep[DP_FIELDS_SEG_MAX * 2 + 16] = "payload";

        for (int i = 0; i <= DP_FIELDS_SEG_MAX; i++)
            strcat(deep, ".a");
        assert_int_equal(dp_fields_check_path(deep, strlen(deep), err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "more than 64 segments"));
    }

    /* interning */
    assert_int_equal(dp_fields_new(&f), 0);
    assert_int_equal(SLOT(f, "payload.a"), 0);
    assert_int_equal(SLOT(f, "key"), 1);
    assert_int_equal(SLOT(f, "payload.a"), 0);
    assert_int_equal(dp_fields_resolve(f, "payload.a.b", 9), 0); /* length counts */
    assert_int_equal(SLOT(f, "nope"), -EINVAL);
    assert_int_equal(dp_fields_count(f), 2);
    assert_string_equal(dp_fields_path(f, 1), "key");
    assert_null(dp_fields_path(f, 2));
    assert_int_equal(dp_fields_kind(f, 0), DP_FIELD_PAYLOAD);
    assert_int_equal(dp_fields_kind(f, 1), DP_FIELD_KEY);
    assert_int_equal(dp_fields_kind(f, 9), -EINVAL);
    for (int i = 2; i < DP_FIELDS_MAX; i++) {
        char p[32];

        snprintf(p, sizeof(p), "payload.f%d", i);
        assert_int_equal(SLOT(f, p), i);
    }
    assert_int_equal(SLOT(f, "payload.one_too_many"), -ENOSPC);
    dp_fields_free(f);
    dp_fields_free(NULL);
}

/* A table with every kind of path, a row, and a doc. */
typedef struct fx {
    dp_fields_t *f;
    dp_val_t slots[32];
    dp_row_t row;
    dp_fields_doc_t doc;
    char arena[256];
    dp_hdr_t hdrs[4];
} fx_t;

static const char *k_paths[] = {
    "payload",          /* 0 */
    "payload.a",        /* 1 */
    "payload.b.c",      /* 2 */
    "payload.n",        /* 3 */
    "payload.nope",     /* 4 */
    "payload.t",        /* 5 */
    "payload.f",        /* 6 */
    "payload.d",        /* 7 */
    "payload.s",        /* 8 */
    "payload.b",        /* 9 */
    "payload.arr",      /* 10 */
    "payload.a.x",      /* 11: below a scalar */
    "header.region",    /* 12 */
    "header.nullh",     /* 13 */
    "header.absent",    /* 14 */
    "key",              /* 15 */
    "timestamp",        /* 16 */
    "eventtime",        /* 17 */
    "payload.odd name", /* 18 */
};
#define NPATHS (sizeof(k_paths) / sizeof(k_paths[0]))

static int fx_setup(void **state)
{
    fx_t *x = calloc(1, sizeof(*x));

    assert_int_equal(dp_fields_new(&x->f), 0);
    for (size_t i = 0; i < NPATHS; i++)
        assert_int_equal(SLOT(x->f, k_paths[i]), (int)i);
    x->hdrs[0] = (dp_hdr_t){"region", "us", 6, 2};
    x->hdrs[1] = (dp_hdr_t){"nullh", "x", 5, 1};
    x->hdrs[2] = (dp_hdr_t){"region", "eu", 6, 2}; /* the last one wins */
    x->hdrs[3] = (dp_hdr_t){"nullh", NULL, 5, 0};
    x->row = (dp_row_t){.slots = x->slots,
                        .nslots = 32,
                        .hdrs = x->hdrs,
                        .nhdrs = 4,
                        .key = "k1",
                        .key_len = 2,
                        .ts_ms = 1700000000123,
                        .event_ms = 42};
    dp_fields_doc_init(&x->doc, x->arena, sizeof(x->arena));
    *state = x;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *x = *state;

    dp_fields_doc_reset(&x->doc);
    dp_fields_free(x->f);
    free(x);
    return 0;
}

static void set_payload(fx_t *x, const char *p)
{
    x->row.payload = p;
    x->row.payload_len = p != NULL ? (uint32_t)strlen(p) : 0;
}

static void test_decode_json(void **state)
{
    fx_t *x = *state;
    const char *p = "{\"a\": 7, \"b\": {\"c\": \"deep\", \"z\": [1, 2.5]}, \"n\": null, "
                    "\"t\": true, \"f\": false, \"d\": 2.5, \"s\": \"caf\\u00e9 \\\"q\\\"\", "
                    "\"arr\": [1, {\"k\": \"v\"}, null], \"odd name\": -1}";

    set_payload(x, p);
    assert_int_equal(dp_fields_decode(x->f, &x->row, DP_FIELDS_JSON, &x->doc), 0);
    assert_str_val(x->slots[0], p); /* the container payload: its bytes as received */
    assert_int_equal(x->slots[1].type, DP_VAL_INT);
    assert_int_equal(x->slots[1].u.i, 7);
    assert_str_val(x->slots[2], "deep");
    assert_int_equal(x->slots[3].type, DP_VAL_NULL);
    assert_int_equal(x->slots[4].type, DP_VAL_MISSING);
    assert_true(x->slots[5].type == DP_VAL_BOOL && x->slots[5].u.b);
    assert_true(x->slots[6].type == DP_VAL_BOOL && !x->slots[6].u.b);
    assert_int_equal(x->slots[7].type, DP_VAL_DOUBLE);
    assert_true(x->slots[7].u.d == 2.5);
    assert_str_val(x->slots[8], "caf\xc3\xa9 \"q\"");
    assert_str_val(x->slots[9], "{\"c\":\"deep\",\"z\":[1,2.5]}"); /* containers: compact JSON */
    assert_str_val(x->slots[10], "[1,{\"k\":\"v\"},null]");
    assert_int_equal(x->slots[11].type, DP_VAL_MISSING);
    assert_str_val(x->slots[12], "eu");
    assert_int_equal(x->slots[13].type, DP_VAL_NULL);
    assert_int_equal(x->slots[14].type, DP_VAL_MISSING);
    assert_str_val(x->slots[15], "k1");
    assert_int_equal(x->slots[16].u.i, 1700000000123);
    assert_int_equal(x->slots[17].u.i, 42);
    assert_int_equal(x->slots[18].u.i, -1);
    assert_non_null(x->doc.root);
    dp_fields_doc_reset(&x->doc);
    assert_null(x->doc.root);

    /* the arena is too small for a container: that slot alone is an error */
    dp_fields_doc_init(&x->doc, x->arena, 8);
    assert_int_equal(dp_fields_decode(x->f, &x->row, DP_FIELDS_JSON, &x->doc), 0);
    assert_int_equal(x->slots[9].type, DP_VAL_ERR);
    assert_int_equal(x->slots[9].u.err, DP_VERR_NOMEM);
    assert_str_val(x->slots[2], "deep");
    dp_fields_doc_reset(&x->doc);
    dp_fields_doc_init(&x->doc, x->arena, sizeof(x->arena));

    /* a non-object payload: payload paths below it are MISSING, payload is the scalar */
    set_payload(x, "  42 ");
    assert_int_equal(dp_fields_decode(x->f, &x->row, DP_FIELDS_JSON, &x->doc), 0);
    assert_int_equal(x->slots[0].type, DP_VAL_INT);
    assert_int_equal(x->slots[0].u.i, 42);
    assert_int_equal(x->slots[1].type, DP_VAL_MISSING);
    dp_fields_doc_reset(&x->doc);
    set_payload(x, "[1,2]");
    assert_int_equal(dp_fields_decode(x->f, &x->row, DP_FIELDS_JSON, &x->doc), 0);
    assert_str_val(x->slots[0], "[1,2]");
    assert_int_equal(x->slots[1].type, DP_VAL_MISSING);
    dp_fields_doc_reset(&x->doc);

    /* no payload (a tombstone) and no key */
    set_payload(x, NULL);
    x->row.key = NULL;
    assert_int_equal(dp_fields_decode(x->f, &x->row, DP_FIELDS_JSON, &x->doc), 0);
    assert_int_equal(x->slots[0].type, DP_VAL_NULL);
    assert_int_equal(x->slots[1].type, DP_VAL_MISSING);
    assert_int_equal(x->slots[15].type, DP_VAL_NULL);
    dp_fields_doc_reset(&x->doc);

    /* too few slots */
    x->row.nslots = 3;
    assert_int_equal(dp_fields_decode(x->f, &x->row, DP_FIELDS_JSON, &x->doc), -ENOSPC);
}

static void test_decode_bad_json(void **state)
{
    fx_t *x = *state;
    static const struct {
        const char *payload;
        const char *msg;
    } cases[] = {
        {"{\"a\": 1,}", "payload is not JSON: line 1 column 9: "},
        {"{\"a\": tru}", "payload is not JSON: line 1 column "},
        {"", "payload is not JSON: "},
        {"{\"a\": 1} x", "payload is not JSON: line 1 column "},
        {"{\"a\": 99999999999999999999}", "payload is not JSON: "},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        set_payload(x, cases[i].payload);
        assert_int_equal(dp_fields_decode(x->f, &x->row, DP_FIELDS_JSON, &x->doc), -EBADMSG);
        if (strncmp(x->doc.err, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("'%s': got '%s', want prefix '%s'", cases[i].payload, x->doc.err,
                     cases[i].msg);
        assert_true(strlen(x->doc.err) < DP_FIELDS_ERR_MAX);
        dp_fields_doc_reset(&x->doc);
    }
}

static void test_decode_raw(void **state)
{
    fx_t *x = *state;

    set_payload(x, "not json at all {");
    assert_int_equal(dp_fields_decode(x->f, &x->row, DP_FIELDS_RAW, &x->doc), 0);
    assert_str_val(x->slots[0], "not json at all {");
    assert_int_equal(x->slots[1].type, DP_VAL_MISSING);
    assert_int_equal(x->slots[2].type, DP_VAL_MISSING);
    assert_str_val(x->slots[12], "eu");
    assert_null(x->doc.root);
    dp_fields_doc_reset(&x->doc);
}

/* A JSON payload that no path reads is not parsed. */
static void test_decode_lazy(void **state)
{
    dp_fields_t *f;
    dp_val_t slots[2];
    dp_row_t row = {.slots = slots, .nslots = 2, .payload = "{bad", .payload_len = 4};
    dp_fields_doc_t doc;

    dp_fields_doc_init(&doc, NULL, 0);
    assert_int_equal(dp_fields_new(&f), 0);
    assert_int_equal(SLOT(f, "timestamp"), 0);
    assert_int_equal(dp_fields_decode(f, &row, DP_FIELDS_JSON, &doc), 0);
    assert_null(doc.root);
    assert_int_equal(SLOT(f, "payload.x"), 1);
    assert_int_equal(dp_fields_decode(f, &row, DP_FIELDS_JSON, &doc), -EBADMSG);
    dp_fields_doc_reset(&doc);
    dp_fields_free(f);
}

/* Decode plus expressions: the table is the resolver. */
static void test_with_expr(void **state)
{
    fx_t *x = *state;
    dp_expr_t *e = NULL;
    char err[128];
    char sbuf[64];
    dp_expr_scratch_t s;

    assert_int_equal(dp_expr_compile("payload.amount > 100 && header.region == 'eu'",
                                     dp_fields_resolve, x->f, &e, err, sizeof(err)),
                     0);
    assert_int_equal(dp_fields_count(x->f), NPATHS + 1); /* payload.amount is new */
    dp_expr_scratch_init(&s, sbuf, sizeof(sbuf));
    set_payload(x, "{\"amount\": 150.5}");
    assert_int_equal(dp_fields_decode(x->f, &x->row, DP_FIELDS_JSON, &x->doc), 0);
    assert_int_equal(dp_expr_filter(e, &x->row, &s, NULL), DP_EXPR_PASS);
    dp_fields_doc_reset(&x->doc);
    set_payload(x, "{\"other\": 1}");
    assert_int_equal(dp_fields_decode(x->f, &x->row, DP_FIELDS_JSON, &x->doc), 0);
    assert_int_equal(dp_expr_filter(e, &x->row, &s, NULL), DP_EXPR_ERROR);
    dp_fields_doc_reset(&x->doc);
    dp_expr_free(e);
    assert_int_equal(dp_expr_compile("key.x", dp_fields_resolve, x->f, &e, err, sizeof(err)),
                     -EINVAL);
}

static void check_patch(const char *in, const char *const *sp, const dp_val_t *sv, size_t ns,
                        const char *const *rp, size_t nr, int want_rc, const char *want)
{
    dp_fields_buf_t b = {0};
    char err[160];
    int rc =
        dp_fields_patch_json(in, in ? strlen(in) : 0, sp, sv, ns, rp, nr, &b, err, sizeof(err));

    if (rc != want_rc)
        fail_msg("patch '%s': rc %d (%s), want %d", in ? in : "(null)", rc, err, want_rc);
    if (rc == 0 && (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0))
        fail_msg("patch '%s': got '%.*s', want '%s'", in, (int)b.len, b.data, want);
    if (rc != 0 && strstr(err, want) == NULL)
        fail_msg("patch '%s': error '%s', want '%s'", in, err, want);
    dp_fields_buf_dispose(&b);
}

static void test_patch(void **state)
{
    const char *sp[] = {"payload.x", "payload.b.c.d", "payload.a"};
    dp_val_t sv[] = {dp_val_int(1), dp_val_str("v", 1), dp_val_double(0.1)};
    const char *rp[] = {"payload.gone", "payload.keep.sub", "payload.absent.deeper"};

    check_patch("{\"a\":1,\"gone\":true,\"keep\":{\"sub\":1,\"y\":2.0}}", sp, sv, 3, rp, 3, 0,
                "{\"a\":0.1,\"keep\":{\"y\":2.0},\"x\":1,\"b\":{\"c\":{\"d\":\"v\"}}}");
    /* intermediate objects merge with existing ones */
    check_patch("{\"b\":{\"q\":1}}", sp + 1, sv + 1, 1, NULL, 0, 0,
                "{\"b\":{\"q\":1,\"c\":{\"d\":\"v\"}}}");
    /* a NULL payload starts as {} */
    check_patch(NULL, sp, sv, 1, NULL, 0, 0, "{\"x\":1}");
    /* MISSING sets nothing; null sets null; set-then-remove removes */
    {
        dp_val_t v2[] = {dp_val_missing(), dp_val_null()};
        const char *p2[] = {"payload.a", "payload.n"};
        const char *r2[] = {"payload.n"};

        check_patch("{\"a\":1}", p2, v2, 2, NULL, 0, 0, "{\"a\":1,\"n\":null}");
        check_patch("{\"a\":1}", p2, v2, 2, r2, 1, 0, "{\"a\":1}");
    }
    /* replacing the whole payload */
    {
        const char *p3[] = {"payload"};
        dp_val_t v3[] = {dp_val_str("raw", 3)};

        check_patch("{\"a\":1}", p3, v3, 1, NULL, 0, 0, "\"raw\"");
    }
    /* errors */
    {
        const char *ph[] = {"header.x"};
        const char *pr[] = {"payload"};
        const char *pb[] = {"payload..x"};
        dp_val_t verr[] = {dp_val_err(DP_VERR_TYPE)};
        dp_val_t vbad[] = {dp_val_str("\xff", 1)};

        check_patch("{}", ph, sv, 1, NULL, 0, -EINVAL, "'header.x' is not a payload path");
        check_patch("{}", NULL, NULL, 0, pr, 1, -EINVAL, "cannot remove the whole payload");
        check_patch("{}", pb, sv, 1, NULL, 0, -EINVAL, "empty segment");
        check_patch("{}", sp, verr, 1, NULL, 0, -EINVAL, "value has no JSON form");
        check_patch("{}", sp, vbad, 1, NULL, 0, -EILSEQ, "not valid UTF-8");
        check_patch("{\"b\":5}", sp + 1, sv + 1, 1, NULL, 0, -ENOTDIR,
                    "'c' is inside a value that is not an object");
        check_patch("[1]", sp, sv, 1, NULL, 0, -ENOTDIR, "not an object");
        check_patch("{\"a\":", sp, sv, 1, NULL, 0, -EBADMSG, "payload is not JSON: line 1");
    }
}

static void test_build(void **state)
{
    dp_fields_buf_t b = {0};
    const char *names[] = {"i", "d", "whole", "s", "t", "f", "n", "skip", "neg", "e\"sc"};
    dp_val_t vals[] = {dp_val_int(-42),     dp_val_double(2.5), dp_val_double(3.0),
                       dp_val_str("hi", 2), dp_val_bool(true),  dp_val_bool(false),
                       dp_val_null(),       dp_val_missing(),   dp_val_int(INT64_MIN),
                       dp_val_double(1e-7)};
    const char *want = "{\"i\":-42,\"d\":2.5,\"whole\":3.0,\"s\":\"hi\",\"t\":true,\"f\":false,"
                       "\"n\":null,\"neg\":-9223372036854775808,\"e\\\"sc\":1e-07}";
    void *data;

    assert_int_equal(dp_fields_build_json(names, vals, 10, &b), 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    /* the buffer is reused: no reallocation for a smaller output */
    data = b.data;
    assert_int_equal(dp_fields_build_json(names, vals, 1, &b), 0);
    assert_ptr_equal(b.data, data);
    assert_memory_equal(b.data, "{\"i\":-42}", b.len);
    assert_int_equal(dp_fields_build_json(names, vals, 0, &b), 0);
    assert_memory_equal(b.data, "{}", b.len);
    /* errors */
    vals[1] = dp_val_err(DP_VERR_TYPE);
    assert_int_equal(dp_fields_build_json(names, vals, 2, &b), -EINVAL);
    assert_int_equal(b.len, 0);
    vals[1] = dp_val_str("\xc3", 1); /* truncated UTF-8 */
    assert_int_equal(dp_fields_build_json(names, vals, 2, &b), -EILSEQ);
    vals[1] = dp_val_str("\xed\xa0\x80", 3); /* a surrogate */
    assert_int_equal(dp_fields_build_json(names, vals, 2, &b), -EILSEQ);
    vals[1] = dp_val_str("\xc0\xaf", 2); /* overlong */
    assert_int_equal(dp_fields_build_json(names, vals, 2, &b), -EILSEQ);
    /* the bound */
    b.max = 8;
    vals[1] = dp_val_str("longer than eight", 17);
    assert_int_equal(dp_fields_build_json(names, vals, 2, &b), -E2BIG);
    dp_fields_buf_dispose(&b);
}

/* Strings with quotes, control characters and UTF-8 survive build -> decode. */
static void test_escape_roundtrip(void **state)
{
    static const char *strs[] = {
        "plain",
        "quote \" and backslash \\",
        "ctl \x01\x02\x1f\b\f\n\r\t end",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
        "",
        "slash / and \x7f",
    };
    char s_nul[] = "nul\0inside";
    dp_fields_t *f;
    dp_fields_buf_t b = {0};
    dp_val_t slots[1];
    dp_fields_doc_t doc;

    assert_int_equal(dp_fields_new(&f), 0);
    assert_int_equal(SLOT(f, "payload.v"), 0);
    dp_fields_doc_init(&doc, NULL, 0);
    for (size_t i = 0; i <= sizeof(strs) / sizeof(strs[0]); i++) {
        const char *name = "v";
        const char *s = i < sizeof(strs) / sizeof(strs[0]) ? strs[i] : s_nul;
        size_t n = i < sizeof(strs) / sizeof(strs[0]) ? strlen(s) : sizeof(s_nul) - 1;
        dp_val_t v = dp_val_str(s, (uint32_t)n);
        dp_row_t row = {.slots = slots, .nslots = 1};

        assert_int_equal(dp_fields_build_json(&name, &v, 1, &b), 0);
        for (size_t k = 0; k < b.len; k++)
            assert_true((unsigned char)b.data[k] >= 0x20); /* control characters are escaped */
        row.payload = b.data;
        row.payload_len = (uint32_t)b.len;
        assert_int_equal(dp_fields_decode(f, &row, DP_FIELDS_JSON, &doc), 0);
        assert_int_equal(slots[0].type, DP_VAL_STR);
        assert_int_equal(slots[0].len, n);
        assert_memory_equal(slots[0].u.s, s, n);
        dp_fields_doc_reset(&doc);
    }
    dp_fields_buf_dispose(&b);
    dp_fields_free(f);
}

/* Doubles keep their value and their type through build -> decode. */
static void test_double_roundtrip(void **state)
{
    static const double ds[] = {0.1, 3.0, -0.0, 1e300, 5e-324, 123456789.125, 1.0 / 3};
    dp_fields_t *f;
    dp_fields_buf_t b = {0};
    dp_val_t slots[1];
    dp_fields_doc_t doc;

    assert_int_equal(dp_fields_new(&f), 0);
    assert_int_equal(SLOT(f, "payload.v"), 0);
    dp_fields_doc_init(&doc, NULL, 0);
    for (size_t i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
        const char *name = "v";
        dp_val_t v = dp_val_double(ds[i]);
        dp_row_t row = {.slots = slots, .nslots = 1};

        assert_int_equal(dp_fields_build_json(&name, &v, 1, &b), 0);
        row.payload = b.data;
        row.payload_len = (uint32_t)b.len;
        assert_int_equal(dp_fields_decode(f, &row, DP_FIELDS_JSON, &doc), 0);
        assert_int_equal(slots[0].type, DP_VAL_DOUBLE);
        assert_true(slots[0].u.d == ds[i]);
        dp_fields_doc_reset(&doc);
    }
    dp_fields_buf_dispose(&b);
    dp_fields_free(f);
}

static void test_large(void **state)
{
    size_t n = 4 << 20;
    char *big = malloc(n + 64);
    char *blob = malloc(n);
    dp_fields_t *f;
    dp_val_t slots[2];
    dp_row_t row = {.slots = slots, .nslots = 2};
    dp_fields_doc_t doc;
    dp_fields_buf_t b = {0};
    const char *sp[] = {"payload.tail"};
    dp_val_t sv[] = {dp_val_int(1)};
    int len;

    memset(blob, 'x', n - 1);
    blob[n - 1] = '\0';
    len = snprintf(big, n + 64, "{\"blob\":\"%s\",\"id\":12345}", blob);
    assert_int_equal(dp_fields_new(&f), 0);
    assert_int_equal(SLOT(f, "payload.blob"), 0);
    assert_int_equal(SLOT(f, "payload.id"), 1);
    dp_fields_doc_init(&doc, NULL, 0);
    row.payload = big;
    row.payload_len = (uint32_t)len;
    assert_int_equal(dp_fields_decode(f, &row, DP_FIELDS_JSON, &doc), 0);
    assert_int_equal(slots[0].len, n - 1);
    assert_int_equal(slots[1].u.i, 12345);
    dp_fields_doc_reset(&doc);
    assert_int_equal(dp_fields_patch_json(big, (size_t)len, sp, sv, 1, NULL, 0, &b, NULL, 0), 0);
    assert_int_equal(b.len, (size_t)len + strlen(",\"tail\":1"));
    assert_memory_equal(b.data + b.len - 11, "5,\"tail\":1}", 11);
    /* under a bound it is refused, not truncated */
    b.max = 1 << 20;
    dp_fields_buf_dispose(&b);
    assert_int_equal(dp_fields_patch_json(big, (size_t)len, sp, sv, 1, NULL, 0, &b, NULL, 0),
                     -E2BIG);
    assert_int_equal(b.len, 0);
    dp_fields_buf_dispose(&b);
    dp_fields_free(f);
    free(big);
    free(blob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test_setup_teardown(test_decode_json, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_decode_bad_json, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_decode_raw, fx_setup, fx_teardown),
        cmocka_unit_test(test_decode_lazy),
        cmocka_unit_test_setup_teardown(test_with_expr, fx_setup, fx_teardown),
        cmocka_unit_test(test_patch),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_escape_roundtrip),
        cmocka_unit_test(test_double_roundtrip),
        cmocka_unit_test(test_large),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
