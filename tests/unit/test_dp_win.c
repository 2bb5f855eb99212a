/* Description: dp_win: window shapes vs naive references, lateness, budget, checkpoints. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_win.c" /* internals: the emission list bound */

/* ---- emission log: every result as one canonical line ---- */

typedef struct elog {
    char **v;
    size_t n, cap;
} elog_t;

static void elog_push(elog_t *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        assert_non_null(l->v);
    }
    l->v[l->n++] = s;
}

static void elog_clear(elog_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

static void elog_dispose(elog_t *l)
{
    elog_clear(l);
    free(l->v);
    *l = (elog_t){0};
}

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    int k;

    for (;;) {
        va_start(ap, fmt);
        k = vsnprintf(b->p ? b->p + b->n : NULL, b->cap - b->n, fmt, ap);
        va_end(ap);
        if ((size_t)k < b->cap - b->n)
            break;
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    b->n += (size_t)k;
}

static void sb_val(sbuf_t *b, const dp_val_t *v)
{
    switch (v->type) {
    case DP_VAL_NULL:
        sb_printf(b, "null");
        break;
    case DP_VAL_MISSING:
        sb_printf(b, "missing");
        break;
    case DP_VAL_BOOL:
        sb_printf(b, "b:%d", v->u.b);
        break;
    case DP_VAL_INT:
        sb_printf(b, "i:%" PRId64, v->u.i);
        break;
    case DP_VAL_DOUBLE:
        sb_printf(b, "d:%.17g", v->u.d);
        break;
    case DP_VAL_STR:
        sb_printf(b, "s:%.*s", (int)v->len, v->u.s);
        break;
    default:
        sb_printf(b, "err");
        break;
    }
}

static char *fmt_result(const dp_win_result_t *r)
{
    sbuf_t b = {0};
    const char *f = r->flags == DP_WIN_F_FINAL     ? "FINAL"
                    : r->flags == DP_WIN_F_EARLY   ? "EARLY"
                    : r->flags == DP_WIN_F_PARTIAL ? "PARTIAL"
                    : r->flags == DP_WIN_F_UPSERT  ? "UPSERT"
                                                   : "?";

    sb_printf(&b, "%s [%" PRId64 ",%" PRId64 ") key=", f, r->start_ms, r->end_ms);
    sb_val(&b, &r->key);
    sb_printf(&b, " n=%" PRIu64, r->count);
    for (uint32_t i = 0; i < r->naggs; i++) {
        sb_printf(&b, " a%u=", i);
        sb_val(&b, &r->aggs[i]);
    }
    if (r->nrecs > 0) {
        sb_printf(&b, " recs=");
        for (uint32_t i = 0; i < r->nrecs; i++) {
            const dp_win_rec_t *x = &r->recs[i];
            sb_printf(&b, "%s%.*s@%" PRId64, i ? "," : "", (int)x->payload_len,
                      x->payload ? x->payload : "", x->ts_ms);
            for (uint32_t j = 0; j < x->nhdrs; j++)
                sb_printf(&b, "{%.*s=%.*s}", (int)x->hdrs[j].name_len, x->hdrs[j].name,
                          (int)x->hdrs[j].val_len, x->hdrs[j].val ? x->hdrs[j].val : "<null>");
        }
    }
    return b.p;
}

static void on_emit(void *ctx, const dp_win_result_t *r)
{
    elog_push(ctx, fmt_result(r));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static dp_win_cfg_t cfg_base(dp_win_kind_t kind, int64_t size, int64_t slide, elog_t *log)
{
    dp_win_cfg_t c = {.kind = kind,
                      .size_ms = size,
                      .slide_ms = slide,
                      .gap_ms = size,
                      .emit = on_emit,
                      .ctx = log};
    return c;
}

static dp_win_t *mk(const dp_win_cfg_t *c)
{
    dp_win_t *w = NULL;

    assert_int_equal(dp_win_new(c, &w), 0);
    assert_non_null(w);
    return w;
}

static dp_val_t S(const char *s)
{
    return dp_val_str(s, (uint32_t)strlen(s));
}

static void expect_log(elog_t *l, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n && i < l->n; i++) {
        if (strcmp(l->v[i], want[i]) != 0)
            fail_msg("emission %zu:\n got  %s\n want %s", i, l->v[i], want[i]);
    }
    if (l->n != n) {
        for (size_t i = 0; i < l->n; i++)
            print_message("  got[%zu] %s\n", i, l->v[i]);
        fail_msg("got %zu emissions, want %zu", l->n, n);
    }
    elog_clear(l);
}

/* ---- crafted tests ---- */

static void test_config(void **state)
{
    elog_t log = {0};
    dp_win_t *w = NULL;
    dp_win_cfg_t c = cfg_base(DP_WIN_HOPPING, 10, 20, &log);

    assert_int_equal(dp_win_new(&c, &w), -EINVAL); /* slide > size */
    c.slide_ms = 0;
    assert_int_equal(dp_win_new(&c, &w), -EINVAL);
    c = cfg_base(DP_WIN_TUMBLING, 0, 0, &log);
    assert_int_equal(dp_win_new(&c, &w), -EINVAL);
    c = cfg_base(DP_WIN_TUMBLING, 10, 0, &log);
    c.emit = NULL;
    assert_int_equal(dp_win_new(&c, &w), -EINVAL);
    c = cfg_base(DP_WIN_TUMBLING, 10, 0, &log);
    c.naggs = DP_WIN_AGGS_MAX + 1;
    assert_int_equal(dp_win_new(&c, &w), -EINVAL);
    c = cfg_base(DP_WIN_SESSION, 10, 0, &log);
    c.allowed_lateness_ms = -1;
    assert_int_equal(dp_win_new(&c, &w), -EINVAL);
    assert_null(w);
    dp_win_free(NULL);
}

static void test_tumbling_order(void **state)
{
    elog_t log = {0};
    dp_win_cfg_t c = cfg_base(DP_WIN_TUMBLING, 10, 0, &log);
    c.naggs = 2;
    c.aggs[0] = DP_WIN_COUNT;
    c.aggs[1] = DP_WIN_SUM;
    dp_win_t *w = mk(&c);
    dp_val_t in[2] = {dp_val_missing(), dp_val_int(1)};

    /* Out of order but ahead of the watermark; key order c, a, b. */
    const char *keys[] = {"c", "a", "b"};
    for (int i = 0; i < 3; i++) {
        dp_val_t k = S(keys[i]);
        in[1] = dp_val_int(i + 1);
        assert_int_equal(dp_win_add(w, &k, 15 - i, in, NULL, 0), DP_WIN_OK);
        in[1] = dp_val_int(10 * (i + 1));
        assert_int_equal(dp_win_add(w, &k, 9 - i, in, NULL, 0), DP_WIN_OK);
    }
    dp_val_t a = S("a");
    in[1] = dp_val_double(0.5);
    assert_int_equal(dp_win_add(w, &a, 0, in, NULL, 0), DP_WIN_OK);
    in[1] = dp_val_null();
    assert_int_equal(dp_win_add(w, &a, 3, in, NULL, 0), DP_WIN_OK);
    assert_int_equal(dp_win_keys(w), 3);
    dp_win_advance(w, 9, 0);
    assert_int_equal(log.n, 0);
    dp_win_advance(w, 20, 0);
    const char *want[] = {
        "FINAL [0,10) key=s:c n=1 a0=i:1 a1=i:10", "FINAL [0,10) key=s:a n=3 a0=i:3 a1=d:20.5",
        "FINAL [0,10) key=s:b n=1 a0=i:1 a1=i:30", "FINAL [10,20) key=s:c n=1 a0=i:1 a1=i:1",
        "FINAL [10,20) key=s:a n=1 a0=i:1 a1=i:2", "FINAL [10,20) key=s:b n=1 a0=i:1 a1=i:3",
    };
    expect_log(&log, want, 6);
    assert_int_equal(dp_win_keys(w), 0);
    assert_int_equal(dp_win_stats(w)->fired, 6);
    /* Keys come back in their new insertion order. */
    dp_val_t b = S("b");
    assert_int_equal(dp_win_add(w, &b, 25, in, NULL, 0), DP_WIN_OK);
    assert_int_equal(dp_win_add(w, &a, 21, in, NULL, 0), DP_WIN_OK);
    dp_win_advance(w, 30, 0);
    const char *want2[] = {
        "FINAL [20,30) key=s:b n=1 a0=i:1 a1=null",
        "FINAL [20,30) key=s:a n=1 a0=i:1 a1=null",
    };
    expect_log(&log, want2, 2);
    dp_win_free(w);
    elog_dispose(&log);
}

static void test_types_and_errors(void **state)
{
    elog_t log = {0};
    dp_win_cfg_t c = cfg_base(DP_WIN_TUMBLING, 10, 0, &log);
    c.naggs = 5;
    c.aggs[0] = DP_WIN_SUM;
    c.aggs[1] = DP_WIN_MIN;
    c.aggs[2] = DP_WIN_MAX;
    c.aggs[3] = DP_WIN_AVG;
    c.aggs[4] = DP_WIN_FIRST;
    dp_win_t *w = mk(&c);
    dp_val_t k = dp_val_int(7), bad = dp_val_err(DP_VERR_TYPE);
    dp_val_t in[5] = {S("x"), dp_val_int(1), dp_val_int(1), dp_val_int(1), dp_val_int(1)};

    assert_int_equal(dp_win_add(w, &k, 1, in, NULL, 0), -EINVAL); /* SUM of a string */
    in[0] = dp_val_bool(true);
    assert_int_equal(dp_win_add(w, &k, 1, in, NULL, 0), -EINVAL);
    in[0] = dp_val_int(INT64_MAX);
    in[1] = dp_val_bool(false);
    assert_int_equal(dp_win_add(w, &k, 1, in, NULL, 0), -EINVAL); /* MIN of a bool */
    in[1] = bad;
    assert_int_equal(dp_win_add(w, &k, 1, in, NULL, 0), -EINVAL);
    in[1] = dp_val_int(1);
    assert_int_equal(dp_win_add(w, &bad, 1, in, NULL, 0), -EINVAL);
    assert_int_equal(dp_win_add(w, &k, DP_WIN_TS_LIMIT, in, NULL, 0), -EINVAL);
    assert_int_equal(dp_win_keys(w), 0);
    assert_int_equal(dp_win_stats(w)->added, 0);

    /* INT overflow continues as DOUBLE; numbers sort before strings; FIRST takes a bool. */
    in[4] = dp_val_bool(true);
    assert_int_equal(dp_win_add(w, &k, 2, in, NULL, 0), DP_WIN_OK);
    in[0] = dp_val_int(1);
    in[1] = S("zz");
    in[2] = S("zz");
    in[3] = dp_val_double(2.0);
    in[4] = S("late-first");
    assert_int_equal(dp_win_add(w, &k, 3, in, NULL, 0), DP_WIN_OK);
    in[1] = dp_val_double(-0.5);
    in[2] = dp_val_double(NAN);
    in[3] = dp_val_missing();
    in[4] = dp_val_null();
    assert_int_equal(dp_win_add(w, &k, 3, in, NULL, 0), DP_WIN_OK);
    dp_win_advance(w, 10, 0);
    const char *want[] = {"FINAL [0,10) key=i:7 n=3 a0=d:9.2233720368547758e+18 a1=d:-0.5 "
                          "a2=s:zz a3=d:1.5 a4=b:1"};
    expect_log(&log, want, 1);
    dp_win_free(w);
    elog_dispose(&log);
}

/* Lateness in each mode, tumbling 10 ms. */
static void run_late(dp_win_late_t mode, int64_t L, elog_t *log)
{
    dp_win_cfg_t c = cfg_base(DP_WIN_TUMBLING, 10, 0, log);
    c.late_mode = mode;
    c.allowed_lateness_ms = L;
    c.naggs = 1;
    c.aggs[0] = DP_WIN_COUNT;
    dp_win_t *w = mk(&c);
    dp_val_t k = S("k"), in = dp_val_missing();
    int beyond = mode == DP_WIN_LATE_SIDE_OUTPUT ? DP_WIN_LATE_SIDE : DP_WIN_LATE_DROPPED;

    assert_int_equal(dp_win_add(w, &k, 5, &in, NULL, 0), DP_WIN_OK);
    dp_win_advance(w, 10, 0);
    const char *fin[] = {"FINAL [0,10) key=s:k n=1 a0=i:1"};
    expect_log(log, fin, 1);
    if (L == 0) {
        assert_int_equal(dp_win_add(w, &k, 7, &in, NULL, 0), beyond);
        assert_int_equal(log->n, 0);
    } else {
        assert_int_equal(dp_win_add(w, &k, 7, &in, NULL, 0), DP_WIN_LATE_UPSERTED);
        const char *up[] = {"UPSERT [0,10) key=s:k n=2 a0=i:2"};
        expect_log(log, up, 1);
        dp_win_advance(w, 10 + L - 1, 0);
        assert_int_equal(dp_win_add(w, &k, 9, &in, NULL, 0), DP_WIN_LATE_UPSERTED);
        const char *up2[] = {"UPSERT [0,10) key=s:k n=3 a0=i:3"};
        expect_log(log, up2, 1);
        dp_win_advance(w, 10 + L, 0); /* purged now */
        assert_int_equal(dp_win_keys(w), 0);
        assert_int_equal(dp_win_add(w, &k, 8, &in, NULL, 0), beyond);
    }
    assert_int_equal(dp_win_add(w, &k, 10 + L, &in, NULL, 0), DP_WIN_OK);
    const dp_win_stats_t *st = dp_win_stats(w);
    assert_int_equal(st->late_side + st->late_dropped, 1);
    assert_int_equal(st->late_side, mode == DP_WIN_LATE_SIDE_OUTPUT);
    assert_int_equal(st->late_upserted, L > 0 ? 2 : 0);
    dp_win_free(w);
}

static void test_late_modes(void **state)
{
    elog_t log = {0};

    for (int mode = DP_WIN_LATE_DROP; mode <= DP_WIN_LATE_SIDE_OUTPUT; mode++) {
        run_late((dp_win_late_t)mode, 0, &log);
        run_late((dp_win_late_t)mode, 5, &log);
    }
    /* Hopping: late only when every window of the record is purged. */
    dp_win_cfg_t c = cfg_base(DP_WIN_HOPPING, 10, 5, &log);
    c.late_mode = DP_WIN_LATE_SIDE_OUTPUT;
    c.naggs = 1;
    dp_win_t *w = mk(&c);
    dp_val_t k = dp_val_int(1), in = dp_val_missing();
    assert_int_equal(dp_win_add(w, &k, 7, &in, NULL, 0), DP_WIN_OK);
    dp_win_advance(w, 10, 0);
    assert_int_equal(dp_win_add(w, &k, 8, &in, NULL, 0), DP_WIN_OK); /* [5,15) still open */
    assert_int_equal(dp_win_add(w, &k, 3, &in, NULL, 0), DP_WIN_LATE_SIDE);
    dp_win_advance(w, 20, 0);
    const char *want[] = {
        "FINAL [0,10) key=i:1 n=1 a0=i:1",
        "FINAL [5,15) key=i:1 n=2 a0=i:2",
    };
    expect_log(&log, want, 2);
    dp_win_free(w);
    elog_dispose(&log);
}

static void test_upsert_content(void **state)
{
    elog_t log = {0};
    dp_win_cfg_t c = cfg_base(DP_WIN_HOPPING, 10, 5, &log);
    c.late_mode = DP_WIN_LATE_UPSERT;
    c.allowed_lateness_ms = 100;
    c.naggs = 4;
    c.aggs[0] = DP_WIN_SUM;
    c.aggs[1] = DP_WIN_MAX;
    c.aggs[2] = DP_WIN_LAST;
    c.aggs[3] = DP_WIN_FIRST;
    dp_win_t *w = mk(&c);
    dp_val_t k = S("auction"), in[4];

    for (int i = 0; i < 2; i++) {
        in[0] = in[1] = in[2] = in[3] = dp_val_int(5 + 2 * i);
        assert_int_equal(dp_win_add(w, &k, 6 + i, in, NULL, 0), DP_WIN_OK);
    }
    dp_win_advance(w, 15, 0);
    const char *fin[] = {
        "FINAL [0,10) key=s:auction n=2 a0=i:12 a1=i:7 a2=i:7 a3=i:5",
        "FINAL [5,15) key=s:auction n=2 a0=i:12 a1=i:7 a2=i:7 a3=i:5",
    };
    expect_log(&log, fin, 2);
    /* ts 8 is in both fired windows: both re-fire, oldest end first. */
    in[0] = in[1] = in[2] = in[3] = dp_val_int(10);
    assert_int_equal(dp_win_add(w, &k, 8, in, NULL, 0), DP_WIN_LATE_UPSERTED);
    const char *up[] = {
        "UPSERT [0,10) key=s:auction n=3 a0=i:22 a1=i:10 a2=i:10 a3=i:5",
        "UPSERT [5,15) key=s:auction n=3 a0=i:22 a1=i:10 a2=i:10 a3=i:5",
    };
    expect_log(&log, up, 2);
    /* ts 1: only [0,10) (and [-5,5), which never had data). FIRST moves, LAST does not. */
    in[0] = in[1] = in[2] = in[3] = dp_val_int(1);
    assert_int_equal(dp_win_add(w, &k, 1, in, NULL, 0), DP_WIN_LATE_UPSERTED);
    const char *up2[] = {
        "UPSERT [-5,5) key=s:auction n=1 a0=i:1 a1=i:1 a2=i:1 a3=i:1",
        "UPSERT [0,10) key=s:auction n=4 a0=i:23 a1=i:10 a2=i:10 a3=i:1",
    };
    expect_log(&log, up2, 2);
    /* ts 14 reaches [5,15) (fired) and [10,20) (open): one UPSERT only. */
    in[0] = in[1] = in[2] = in[3] = dp_val_int(3);
    assert_int_equal(dp_win_add(w, &k, 14, in, NULL, 0), DP_WIN_LATE_UPSERTED);
    const char *up3[] = {"UPSERT [5,15) key=s:auction n=4 a0=i:25 a1=i:10 a2=i:3 a3=i:5"};
    expect_log(&log, up3, 1);
    assert_int_equal(dp_win_stats(w)->upserts, 5);
    assert_int_equal(dp_win_stats(w)->late_upserted, 3);
    dp_win_free(w);
    elog_dispose(&log);
}

static void test_session_merge(void **state)
{
    elog_t log = {0};
    dp_win_cfg_t c = cfg_base(DP_WIN_SESSION, 0, 0, &log);
    c.gap_ms = 5;
    c.naggs = 7;
    for (int i = 0; i < 7; i++)
        c.aggs[i] = (dp_win_fn_t)i;
    c.keep_records = true;
    dp_win_t *w = mk(&c);
    dp_val_t k = S("user"), in[7];
    dp_hdr_t h = {.name = "h", .val = "v", .name_len = 1, .val_len = 1};
    dp_row_t rec = {.payload = "p1", .payload_len = 2, .hdrs = &h, .nhdrs = 1};
    struct {
        int64_t ts;
        const char *s;
        int64_t v;
    } rows[] = {{0, "m", 4}, {20, "b", 10}, {2, "z", 1}, {22, "a", -3}};

    for (int i = 0; i < 4; i++) {
        in[0] = dp_val_missing();
        in[1] = in[4] = dp_val_int(rows[i].v);
        in[2] = in[3] = in[5] = in[6] = S(rows[i].s);
        char pl[16];
        snprintf(pl, sizeof(pl), "p%d", i);
        rec.payload = pl;
        assert_int_equal(dp_win_add(w, &k, rows[i].ts, in, &rec, 0), DP_WIN_OK);
    }
    assert_int_equal(dp_win_keys(w), 1);
    /* ts 12: [12,17) touches nothing ([0,7) ends at 7, [20,27) starts at 20). */
    in[1] = in[4] = dp_val_int(100);
    in[2] = in[3] = in[5] = in[6] = S("q");
    rec.payload = "p4";
    assert_int_equal(dp_win_add(w, &k, 12, in, &rec, 0), DP_WIN_OK);
    /* ts 7 bridges [0,7) and [12,17); ts 16 bridges the result and [20,27). */
    in[1] = in[4] = dp_val_null();
    in[2] = in[3] = in[5] = in[6] = dp_val_null();
    rec.payload = "p5";
    assert_int_equal(dp_win_add(w, &k, 7, in, &rec, 0), DP_WIN_OK);
    dp_win_advance(w, 16, 0);
    assert_int_equal(log.n, 0);
    rec.payload = "p6";
    rec.nhdrs = 0;
    assert_int_equal(dp_win_add(w, &k, 16, in, &rec, 0), DP_WIN_OK);
    dp_win_advance(w, 26, 0);
    assert_int_equal(log.n, 0);
    dp_win_advance(w, 27, 0);
    const char *want[] = {
        "FINAL [0,27) key=s:user n=7 a0=i:7 a1=i:112 a2=s:a a3=s:z a4=d:22.399999999999999 "
        "a5=s:m a6=s:a recs=p0@0{h=v},p1@20{h=v},p2@2{h=v},p3@22{h=v},p4@12{h=v},p5@7{h=v},"
        "p6@16"};
    expect_log(&log, want, 1);
    assert_int_equal(dp_win_keys(w), 0);
    assert_int_equal(dp_win_state_bytes(w), 16 * 16); /* only the empty table remains */
    dp_win_free(w);
    elog_dispose(&log);
}

static void test_session_late(void **state)
{
    elog_t log = {0};
    dp_win_cfg_t c = cfg_base(DP_WIN_SESSION, 0, 0, &log);
    c.gap_ms = 5;
    c.allowed_lateness_ms = 10;
    c.naggs = 1;
    dp_win_t *w = mk(&c);
    dp_val_t k = dp_val_int(3), in = dp_val_missing();

    assert_int_equal(dp_win_add(w, &k, 0, &in, NULL, 0), DP_WIN_OK);
    assert_int_equal(dp_win_add(w, &k, 10, &in, NULL, 0), DP_WIN_OK);
    dp_win_advance(w, 6, 0);
    const char *f1[] = {"FINAL [0,5) key=i:3 n=1 a0=i:1"};
    expect_log(&log, f1, 1);
    /* Kept session [0,5) takes ts 1 and re-fires. */
    assert_int_equal(dp_win_add(w, &k, 1, &in, NULL, 0), DP_WIN_LATE_UPSERTED);
    const char *u1[] = {"UPSERT [0,6) key=i:3 n=2 a0=i:2"};
    expect_log(&log, u1, 1);
    /* ts 5 bridges the fired [0,6) and the open [10,15): one open session. */
    assert_int_equal(dp_win_add(w, &k, 5, &in, NULL, 0), DP_WIN_OK);
    assert_int_equal(log.n, 0);
    dp_win_advance(w, 15, 0);
    const char *f2[] = {"FINAL [0,15) key=i:3 n=4 a0=i:4"};
    expect_log(&log, f2, 1);
    dp_win_advance(w, 25, 0);
    assert_int_equal(dp_win_add(w, &k, 9, &in, NULL, 0), DP_WIN_LATE_DROPPED);
    /* A brand-new session already past the watermark but within lateness. */
    assert_int_equal(dp_win_add(w, &k, 18, &in, NULL, 0), DP_WIN_LATE_UPSERTED);
    const char *u2[] = {"UPSERT [18,23) key=i:3 n=1 a0=i:1"};
    expect_log(&log, u2, 1);
    dp_win_free(w);
    elog_dispose(&log);
}

static void test_early_firing(void **state)
{
    elog_t log = {0};
    dp_win_cfg_t c = cfg_base(DP_WIN_TUMBLING, 10000, 0, &log);
    c.early_firing_ms = 1000;
    c.naggs = 1;
    dp_win_t *w = mk(&c);
    dp_val_t k = S("k"), in = dp_val_missing();

    dp_win_advance(w, 0, 0);
    assert_int_equal(dp_win_add(w, &k, 100, &in, NULL, 500), DP_WIN_OK);
    dp_win_advance(w, 0, 999);
    assert_int_equal(log.n, 0);
    dp_win_advance(w, 0, 1000);
    const char *e1[] = {"EARLY [0,10000) key=s:k n=1 a0=i:1"};
    expect_log(&log, e1, 1);
    dp_win_advance(w, 0, 2500); /* unchanged since: nothing */
    assert_int_equal(log.n, 0);
    assert_int_equal(dp_win_add(w, &k, 200, &in, NULL, 2600), DP_WIN_OK);
    assert_int_equal(dp_win_add(w, &k, 10200, &in, NULL, 2600), DP_WIN_OK);
    dp_win_advance(w, 0, 3000);
    assert_int_equal(log.n, 0); /* 2500 + 1000 not reached */
    dp_win_advance(w, 0, 3500);
    const char *e2[] = {"EARLY [0,10000) key=s:k n=2 a0=i:2",
                        "EARLY [10000,20000) key=s:k n=1 a0=i:1"};
    expect_log(&log, e2, 2);
    dp_win_advance(w, 10000, 3600);
    const char *f[] = {"FINAL [0,10000) key=s:k n=2 a0=i:2"};
    expect_log(&log, f, 1);
    assert_int_equal(dp_win_stats(w)->early, 3);
    dp_win_free(w);
    elog_dispose(&log);
}

static void test_idle_release(void **state)
{
    elog_t log = {0};
    dp_win_cfg_t c = cfg_base(DP_WIN_TUMBLING, 10000, 0, &log);
    c.idle_timeout_ms = 5000;
    c.naggs = 1;
    dp_win_t *w = mk(&c);
    dp_val_t a = S("a"), b = S("b"), in = dp_val_missing();

    assert_int_equal(dp_win_add(w, &a, 100, &in, NULL, 0), DP_WIN_OK);
    assert_int_equal(dp_win_add(w, &a, 12000, &in, NULL, 1000), DP_WIN_OK);
    assert_int_equal(dp_win_add(w, &b, 200, &in, NULL, 3000), DP_WIN_OK);
    dp_win_advance(w, 0, 5999);
    assert_int_equal(log.n, 0);
    dp_win_advance(w, 0, 6000);
    const char *p1[] = {"PARTIAL [0,10000) key=s:a n=1 a0=i:1",
                        "PARTIAL [10000,20000) key=s:a n=1 a0=i:1"};
    expect_log(&log, p1, 2);
    assert_int_equal(dp_win_keys(w), 1);
    dp_win_advance(w, 0, 8000);
    const char *p2[] = {"PARTIAL [0,10000) key=s:b n=1 a0=i:1"};
    expect_log(&log, p2, 1);
    assert_int_equal(dp_win_keys(w), 0);
    /* The stream resumes: a new window instance starts from scratch. */
    assert_int_equal(dp_win_add(w, &a, 300, &in, NULL, 9000), DP_WIN_OK);
    dp_win_advance(w, 10000, 9001);
    const char *f[] = {"FINAL [0,10000) key=s:a n=1 a0=i:1"};
    expect_log(&log, f, 1);
    assert_int_equal(dp_win_stats(w)->partial, 3);
    dp_win_free(w);
    elog_dispose(&log);
}

static void test_budget(void **state)
{
    elog_t log = {0};
    dp_win_cfg_t c = cfg_base(DP_WIN_TUMBLING, 10, 0, &log);
    c.naggs = 1;
    c.aggs[0] = DP_WIN_MAX;
    c.state_limit_bytes = 8192;
    dp_win_t *w = mk(&c);
    dp_val_t in = S("a-fairly-long-string-value-to-charge");
    char name[32];
    int i, rc = 0;

    for (i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "key-%d", i);
        dp_val_t k = S(name);
        rc = dp_win_add(w, &k, 5, &in, NULL, 0);
        if (rc != DP_WIN_OK)
            break;
        assert_true(dp_win_state_bytes(w) <= c.state_limit_bytes);
    }
    assert_int_equal(rc, -ENOBUFS);
    assert_true(i > 5);
    size_t keys = dp_win_keys(w), bytes = dp_win_state_bytes(w);
    assert_int_equal(dp_win_stats(w)->enobufs, 1);
    /* Refused: nothing changed; an update needing no new bytes still goes in. */
    dp_val_t k0 = S("key-0"), small = S("a");
    assert_int_equal(dp_win_add(w, &k0, 6, &small, NULL, 0), DP_WIN_OK);
    assert_int_equal(dp_win_keys(w), keys);
    assert_int_equal(dp_win_state_bytes(w), bytes);
    /* The watermark frees the windows; the same record then fits. */
    dp_win_advance(w, 10, 0);
    assert_int_equal(log.n, keys);
    dp_val_t k = S(name);
    assert_int_equal(dp_win_add(w, &k, 15, &in, NULL, 0), DP_WIN_OK);
    dp_win_free(w);

    /* A record larger than the whole budget can never fit. */
    c = cfg_base(DP_WIN_TUMBLING, 10, 0, &log);
    c.keep_records = true;
    c.state_limit_bytes = 4096;
    w = mk(&c);
    static char big[8192];
    dp_row_t rec = {.payload = big, .payload_len = sizeof(big)};
    assert_int_equal(dp_win_add(w, &k, 1, NULL, &rec, 0), -EMSGSIZE);
    rec.payload_len = 100;
    assert_int_equal(dp_win_add(w, &k, 1, NULL, &rec, 0), DP_WIN_OK);
    dp_win_free(w);
    elog_dispose(&log);
}

/* ---- randomized streams ---- */

static uint64_t rng_s;

static uint64_t rnd(void)
{
    rng_s ^= rng_s << 13;
    rng_s ^= rng_s >> 7;
    rng_s ^= rng_s << 17;
    return rng_s;
}

static int64_t rr(int64_t n)
{
    return (int64_t)(rnd() % (uint64_t)n);
}

#define NAGG 9
static const dp_win_fn_t prop_fns[NAGG] = {DP_WIN_COUNT, DP_WIN_SUM, DP_WIN_MIN,
                                           DP_WIN_MAX,   DP_WIN_AVG, DP_WIN_FIRST,
                                           DP_WIN_LAST,  DP_WIN_MIN, DP_WIN_MAX};

typedef struct prec {
    int key;
    int64_t ts;
    uint64_t seq;
    char str[3][8];
    char payload[16];
    dp_val_t in[NAGG];
} prec_t;

/* Numbers: even INTs and odd-and-a-half DOUBLEs never tie across types. */
static dp_val_t rnd_num(void)
{
    int64_t r = rr(10);
    if (r == 0)
        return dp_val_null();
    if (r < 3)
        return dp_val_double((double)(2 * rr(100) - 99) + 0.5);
    return dp_val_int(2 * rr(100) - 100);
}

static void rnd_rec(prec_t *p, int nkeys, int64_t t, int64_t ooo)
{
    p->key = (int)rr(nkeys);
    p->ts = t - rr(ooo);
    for (int i = 0; i < 3; i++) {
        int n = 1 + (int)rr(5);
        for (int j = 0; j < n; j++)
            p->str[i][j] = (char)('a' + rr(5));
        p->str[i][n] = 0;
    }
    p->in[0] = dp_val_missing();
    p->in[1] = rnd_num();
    p->in[2] = rr(10) ? dp_val_str(p->str[0], (uint32_t)strlen(p->str[0])) : dp_val_missing();
    p->in[3] = dp_val_str(p->str[1], (uint32_t)strlen(p->str[1]));
    p->in[4] = rr(8) ? dp_val_int(rr(1000)) : dp_val_null();
    p->in[5] = dp_val_str(p->str[2], (uint32_t)strlen(p->str[2]));
    p->in[6] = rr(6) ? dp_val_int(rr(50)) : dp_val_null();
    p->in[7] = rnd_num();
    p->in[8] = rnd_num();
}

static int num_cmp(const dp_val_t *a, const dp_val_t *b)
{
    if (a->type == DP_VAL_STR || b->type == DP_VAL_STR) {
        if (a->type != b->type)
            return a->type == DP_VAL_STR ? 1 : -1;
        uint32_t n = a->len < b->len ? a->len : b->len;
        int c = memcmp(a->u.s, b->u.s, n);
        return c != 0 ? c : (a->len > b->len) - (a->len < b->len);
    }
    double x = a->type == DP_VAL_INT ? (double)a->u.i : a->u.d;
    double y = b->type == DP_VAL_INT ? (double)b->u.i : b->u.d;
    return (x > y) - (x < y);
}

/* The naive reference: fold a window's records in arrival order. */
static char *ref_result(uint32_t flags, int key, int64_t start, int64_t end, prec_t **rs, size_t n,
                        bool keep)
{
    dp_val_t out[NAGG];
    char kbuf[16];
    dp_win_rec_t recs[4096];

    assert_true(n <= 4096);
    snprintf(kbuf, sizeof(kbuf), "k%d", key);
    for (int a = 0; a < NAGG; a++) {
        dp_win_fn_t fn = prop_fns[a];
        const prec_t *best = NULL;
        int64_t isum = 0, cnt = 0;
        double dsum = 0;
        bool dbl = false;
        if (fn == DP_WIN_COUNT) {
            out[a] = dp_val_int((int64_t)n);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            const dp_val_t *v = &rs[i]->in[a];
            if (v->type == DP_VAL_NULL || v->type == DP_VAL_MISSING)
                continue;
            cnt++;
            if (fn == DP_WIN_SUM || fn == DP_WIN_AVG) {
                if (v->type == DP_VAL_DOUBLE)
                    dbl = true;
                if (v->type == DP_VAL_DOUBLE)
                    dsum += v->u.d;
                else
                    isum += v->u.i;
                continue;
            }
            if (best == NULL) {
                best = rs[i];
                continue;
            }
            const dp_val_t *bv = &best->in[a];
            bool take = false;
            switch (fn) {
            case DP_WIN_MIN:
                take = num_cmp(v, bv) < 0;
                break;
            case DP_WIN_MAX:
                take = num_cmp(v, bv) > 0;
                break;
            case DP_WIN_FIRST:
                take = rs[i]->ts < best->ts;
                break;
            case DP_WIN_LAST:
                take = rs[i]->ts >= best->ts;
                break;
            default:
                break;
            }
            if (take)
                best = rs[i];
        }
        if (cnt == 0)
            out[a] = dp_val_null();
        else if (fn == DP_WIN_SUM)
            out[a] = dbl ? dp_val_double(dsum + (double)isum) : dp_val_int(isum);
        else if (fn == DP_WIN_AVG)
            out[a] = dp_val_double((dsum + (double)isum) / (double)cnt);
        else
            out[a] = best->in[a];
    }
    for (size_t i = 0; keep && i < n; i++)
        recs[i] = (dp_win_rec_t){.payload = rs[i]->payload,
                                 .payload_len = (uint32_t)strlen(rs[i]->payload),
                                 .ts_ms = rs[i]->ts};
    dp_win_result_t r = {.key = dp_val_str(kbuf, (uint32_t)strlen(kbuf)),
                         .start_ms = start,
                         .end_ms = end,
                         .aggs = out,
                         .naggs = NAGG,
                         .flags = flags,
                         .count = n,
                         .recs = keep ? recs : NULL,
                         .nrecs = keep ? (uint32_t)n : 0};
    return fmt_result(&r);
}

#define RK 12     /* keys */
#define RW 400    /* window slots */
#define RT 150000 /* event time span */

typedef struct ref {
    int64_t size, slide, L;
    bool keep;
    prec_t **win[RK][RW];
    size_t nwin[RK][RW], capwin[RK][RW];
    int64_t wm;
} ref_t;

static int64_t floordiv(int64_t a, int64_t b);

static size_t slot(const ref_t *r, int64_t start)
{
    int64_t s = floordiv(start, r->slide) + 16;
    assert_true(s >= 0 && s < RW);
    return (size_t)s;
}

static int64_t floordiv(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* Returns the expected dp_win_add result and appends expected UPSERTs. */
static int ref_add(ref_t *r, prec_t *p, elog_t *want)
{
    int64_t first = floordiv(p->ts - r->size, r->slide) * r->slide + r->slide;
    bool added = false, upsert = false;

    for (int64_t st = first; st <= p->ts; st += r->slide) {
        int64_t end = st + r->size;
        if (r->wm != INT64_MIN && end + r->L <= r->wm)
            continue;
        size_t s = slot(r, st);
        if (r->nwin[p->key][s] == r->capwin[p->key][s]) {
            r->capwin[p->key][s] = r->capwin[p->key][s] ? r->capwin[p->key][s] * 2 : 8;
            r->win[p->key][s] = realloc(r->win[p->key][s], r->capwin[p->key][s] * sizeof(void *));
        }
        r->win[p->key][s][r->nwin[p->key][s]++] = p;
        added = true;
        if (r->wm != INT64_MIN && end <= r->wm) {
            upsert = true;
            elog_push(want, ref_result(DP_WIN_F_UPSERT, p->key, st, end, r->win[p->key][s],
                                       r->nwin[p->key][s], r->keep));
        }
    }
    return !added ? DP_WIN_LATE_DROPPED : upsert ? DP_WIN_LATE_UPSERTED : DP_WIN_OK;
}

static void ref_advance(ref_t *r, int64_t wm, elog_t *want)
{
    if (wm <= r->wm)
        return;
    for (int64_t st = floordiv(-r->size, r->slide) * r->slide; st <= RT; st += r->slide) {
        int64_t end = st + r->size;
        if (!((r->wm == INT64_MIN || end > r->wm) && end <= wm))
            continue;
        for (int k = 0; k < RK; k++) {
            size_t s = slot(r, st);
            if (r->nwin[k][s] > 0)
                elog_push(want, ref_result(DP_WIN_F_FINAL, k, st, end, r->win[k][s], r->nwin[k][s],
                                           r->keep));
        }
    }
    r->wm = wm;
}

/* Sorts the lines of one step so key insertion order does not matter. */
static void compare_step(elog_t *got, elog_t *want, int step)
{
    if (got->n > 1)
        qsort(got->v, got->n, sizeof(char *), cmp_str);
    if (want->n > 1)
        qsort(want->v, want->n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < got->n && i < want->n; i++) {
        if (strcmp(got->v[i], want->v[i]) != 0)
            fail_msg("step %d line %zu:\n got  %s\n want %s", step, i, got->v[i], want->v[i]);
    }
    if (got->n != want->n)
        fail_msg("step %d: got %zu lines, want %zu", step, got->n, want->n);
    elog_clear(got);
    elog_clear(want);
}

static void run_reference(int64_t size, int64_t slide, int64_t L, bool keep, uint64_t seed)
{
    elog_t got = {0}, want = {0};
    ref_t *r = calloc(1, sizeof(*r));
    dp_win_cfg_t c = cfg_base(slide == size ? DP_WIN_TUMBLING : DP_WIN_HOPPING, size, slide, &got);
    const int N = 4000;
    prec_t *recs = calloc(N, sizeof(*recs));
    int64_t t = 0;

    assert_non_null(r);
    assert_non_null(recs);
    c.allowed_lateness_ms = L;
    c.naggs = NAGG;
    memcpy(c.aggs, prop_fns, sizeof(prop_fns));
    c.keep_records = keep;
    dp_win_t *w = mk(&c);
    *r = (ref_t){.size = size, .slide = slide, .L = L, .keep = keep, .wm = INT64_MIN};
    rng_s = seed;
    for (int i = 0; i < N; i++) {
        prec_t *p = &recs[i];
        t += rr(60);
        rnd_rec(p, RK, t, 4000);
        if (p->ts < 0)
            p->ts = 0;
        p->seq = (uint64_t)i;
        snprintf(p->payload, sizeof(p->payload), "r%d", i);
        char kbuf[16];
        snprintf(kbuf, sizeof(kbuf), "k%d", p->key);
        dp_val_t k = dp_val_str(kbuf, (uint32_t)strlen(kbuf));
        dp_row_t row = {.payload = p->payload, .payload_len = (uint32_t)strlen(p->payload)};
        int want_rc = ref_add(r, p, &want);
        int rc = dp_win_add(w, &k, p->ts, p->in, keep ? &row : NULL, 0);
        if (rc != want_rc)
            fail_msg("record %d ts %" PRId64 ": rc %d, want %d", i, p->ts, rc, want_rc);
        compare_step(&got, &want, i);
        if (rr(20) == 0) {
            int64_t wm = t - 2500;
            ref_advance(r, wm, &want);
            dp_win_advance(w, wm, 0);
            compare_step(&got, &want, i);
        }
    }
    ref_advance(r, RT + 2 * size, &want);
    dp_win_advance(w, RT + 2 * size + L, 0);
    compare_step(&got, &want, N);
    assert_int_equal(dp_win_keys(w), 0);
    assert_true(dp_win_stats(w)->fired > 100);
    dp_win_free(w);
    for (int k = 0; k < RK; k++)
        for (int s = 0; s < RW; s++)
            free(r->win[k][s]);
    free(r);
    free(recs);
    elog_dispose(&got);
    elog_dispose(&want);
}

static void test_slices_vs_reference(void **state)
{
    run_reference(10000, 2000, 0, false, 0x1234567);
    run_reference(10000, 4000, 0, true, 0x9e3779b9); /* pane 2000, 2-3 windows per record */
    run_reference(10000, 4000, 3000, false, 0xabcdef);
    run_reference(6000, 6000, 1500, true, 0x55aa55);
    run_reference(9000, 3000, 2000, true, 0x77);
}

/* Sessions: the reference keeps each key's live records and re-clusters
 * them (sorted by time, split where the next ts > previous + gap) on every
 * question, so merging is recomputed from scratch each time. */
typedef struct sref {
    prec_t **live[RK];
    size_t n[RK], cap[RK];
    int64_t gap, L, wm;
    bool keep;
} sref_t;

typedef struct cluster {
    int64_t start, end;
    size_t from, to; /* in the sorted array */
} cluster_t;

static int cmp_ts(const void *a, const void *b)
{
    const prec_t *x = *(prec_t *const *)a, *y = *(prec_t *const *)b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_seq(const void *a, const void *b)
{
    const prec_t *x = *(prec_t *const *)a, *y = *(prec_t *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts key k's records by time and returns its clusters. */
static size_t clusters(sref_t *r, int k, cluster_t *out)
{
    size_t nc = 0;

    if (r->n[k] > 1)
        qsort(r->live[k], r->n[k], sizeof(void *), cmp_ts);
    for (size_t i = 0; i < r->n[k]; i++) {
        int64_t ts = r->live[k][i]->ts;
        if (nc > 0 && ts <= out[nc - 1].end) {
            out[nc - 1].end = ts + r->gap;
            out[nc - 1].to = i + 1;
        } else {
            out[nc++] = (cluster_t){.start = ts, .end = ts + r->gap, .from = i, .to = i + 1};
        }
    }
    return nc;
}

static char *sref_emit(sref_t *r, int k, const cluster_t *c, uint32_t flag)
{
    size_t n = c->to - c->from;
    prec_t **tmp = malloc(n * sizeof(*tmp));
    memcpy(tmp, r->live[k] + c->from, n * sizeof(*tmp));
    qsort(tmp, n, sizeof(*tmp), cmp_seq);
    char *line = ref_result(flag, k, c->start, c->end, tmp, n, r->keep);
    free(tmp);
    return line;
}

static int sref_add(sref_t *r, prec_t *p, elog_t *want)
{
    static cluster_t cs[4096];
    int k = p->key;
    int64_t me = p->ts + r->gap;
    size_t nc = clusters(r, k, cs);

    for (size_t i = 0; i < nc; i++) {
        if (cs[i].start <= p->ts + r->gap && cs[i].end >= p->ts && cs[i].end > me)
            me = cs[i].end;
    }
    if (r->wm != INT64_MIN && me + r->L <= r->wm)
        return DP_WIN_LATE_DROPPED;
    if (r->n[k] == r->cap[k]) {
        r->cap[k] = r->cap[k] ? 2 * r->cap[k] : 16;
        r->live[k] = realloc(r->live[k], r->cap[k] * sizeof(void *));
    }
    r->live[k][r->n[k]++] = p;
    if (r->wm == INT64_MIN || me > r->wm)
        return DP_WIN_OK;
    nc = clusters(r, k, cs);
    for (size_t i = 0; i < nc; i++) {
        if (cs[i].start <= p->ts && p->ts < cs[i].end)
            elog_push(want, sref_emit(r, k, &cs[i], DP_WIN_F_UPSERT));
    }
    return DP_WIN_LATE_UPSERTED;
}

static void sref_advance(sref_t *r, int64_t wm, elog_t *want)
{
    static cluster_t cs[4096];

    if (wm <= r->wm)
        return;
    for (int k = 0; k < RK; k++) {
        size_t nc = clusters(r, k, cs), keep = 0;
        for (size_t i = 0; i < nc; i++) {
            if ((r->wm == INT64_MIN || cs[i].end > r->wm) && cs[i].end <= wm)
                elog_push(want, sref_emit(r, k, &cs[i], DP_WIN_F_FINAL));
        }
        /* Drop purged clusters' records. */
        for (size_t i = 0; i < nc; i++) {
            if (cs[i].end + r->L <= wm)
                continue;
            for (size_t j = cs[i].from; j < cs[i].to; j++)
                r->live[k][keep++] = r->live[k][j];
        }
        r->n[k] = keep;
    }
    r->wm = wm;
}

static void run_session_reference(int64_t gap, int64_t L, bool keep, uint64_t seed)
{
    elog_t got = {0}, want = {0};
    sref_t r = {.gap = gap, .L = L, .wm = INT64_MIN, .keep = keep};
    dp_win_cfg_t c = cfg_base(DP_WIN_SESSION, 0, 0, &got);
    const int N = 4000;
    prec_t *recs = calloc(N, sizeof(*recs));
    int64_t t = 0;

    c.gap_ms = gap;
    c.allowed_lateness_ms = L;
    c.naggs = NAGG;
    memcpy(c.aggs, prop_fns, sizeof(prop_fns));
    c.keep_records = keep;
    dp_win_t *w = mk(&c);
    rng_s = seed;
    for (int i = 0; i < N; i++) {
        prec_t *p = &recs[i];
        t += rr(80);
        rnd_rec(p, RK, t, 3000);
        p->seq = (uint64_t)i;
        snprintf(p->payload, sizeof(p->payload), "r%d", i);
        char kbuf[16];
        snprintf(kbuf, sizeof(kbuf), "k%d", p->key);
        dp_val_t k = dp_val_str(kbuf, (uint32_t)strlen(kbuf));
        dp_row_t row = {.payload = p->payload, .payload_len = (uint32_t)strlen(p->payload)};
        int want_rc = sref_add(&r, p, &want);
        int rc = dp_win_add(w, &k, p->ts, p->in, keep ? &row : NULL, 0);
        if (rc != want_rc)
            fail_msg("record %d ts %" PRId64 ": rc %d, want %d", i, p->ts, rc, want_rc);
        compare_step(&got, &want, i);
        if (rr(25) == 0) {
            int64_t wm = t - 2000;
            sref_advance(&r, wm, &want);
            dp_win_advance(w, wm, 0);
            compare_step(&got, &want, i);
        }
    }
    sref_advance(&r, t + gap + L + 1, &want);
    dp_win_advance(w, t + gap + L + 1, 0);
    compare_step(&got, &want, N);
    assert_int_equal(dp_win_keys(w), 0);
    assert_true(dp_win_stats(w)->fired > 100);
    dp_win_free(w);
    for (int k = 0; k < RK; k++)
        free(r.live[k]);
    free(recs);
    elog_dispose(&got);
    elog_dispose(&want);
}

static void test_sessions_vs_reference(void **state)
{
    run_session_reference(300, 0, false, 11);
    run_session_reference(500, 0, true, 12);
    run_session_reference(400, 1500, true, 13);
    run_session_reference(150, 3000, false, 14);
}

/* ---- checkpoints ---- */

typedef struct step {
    int key;
    int64_t ts;
    int64_t now;
    dp_val_t in[NAGG];
    char str[3][8];
    char payload[16];
    bool advance;
    int64_t wm;
} step_t;

static step_t *mk_steps(int n, uint64_t seed)
{
    step_t *s = calloc((size_t)n, sizeof(*s));
    int64_t t = 0;
    prec_t p;

    assert_non_null(s);
    rng_s = seed;
    for (int i = 0; i < n; i++) {
        t += rr(40);
        if (rr(15) == 0) {
            s[i].advance = true;
            s[i].wm = t - 3000;
            s[i].now = t + rr(3);
            continue;
        }
        rnd_rec(&p, 30, t, 5000);
        s[i].key = p.key;
        s[i].ts = p.ts;
        s[i].now = t;
        memcpy(s[i].str, p.str, sizeof(p.str));
        for (int a = 0; a < NAGG; a++) {
            s[i].in[a] = p.in[a];
            /* Re-point strings at this step's own copies. */
            for (int j = 0; j < 3; j++) {
                if (p.in[a].type == DP_VAL_STR && p.in[a].u.s == p.str[j])
                    s[i].in[a].u.s = s[i].str[j];
            }
        }
        snprintf(s[i].payload, sizeof(s[i].payload), "r%d", i);
    }
    return s;
}

static void run_steps(dp_win_t *w, const step_t *s, int from, int to, int *rcs)
{
    dp_hdr_t h[2] = {{.name = "a", .val = "1", .name_len = 1, .val_len = 1},
                     {.name = "nul", .val = NULL, .name_len = 3}};
    for (int i = from; i < to; i++) {
        if (s[i].advance) {
            dp_win_advance(w, s[i].wm, s[i].now);
            continue;
        }
        char kbuf[16];
        snprintf(kbuf, sizeof(kbuf), "k%d", s[i].key);
        dp_val_t k = s[i].key == 0 ? dp_val_null() : dp_val_str(kbuf, (uint32_t)strlen(kbuf));
        dp_row_t row = {.payload = s[i].payload,
                        .payload_len = (uint32_t)strlen(s[i].payload),
                        .hdrs = h,
                        .nhdrs = (uint32_t)(i % 3)};
        rcs[i] = dp_win_add(w, &k, s[i].ts, s[i].in, &row, s[i].now);
    }
}

static dp_win_cfg_t ckpt_cfg(dp_win_kind_t kind, elog_t *log)
{
    dp_win_cfg_t c = cfg_base(kind, 10000, 4000, log);
    c.gap_ms = 700;
    c.naggs = NAGG;
    memcpy(c.aggs, prop_fns, sizeof(prop_fns));
    c.keep_records = true;
    c.allowed_lateness_ms = 2000;
    c.late_mode = DP_WIN_LATE_UPSERT;
    c.early_firing_ms = 700;
    c.idle_timeout_ms = 2500;
    return c;
}

static void run_ckpt(dp_win_kind_t kind, uint64_t seed)
{
    const int N = 3000, CUT = 1700;
    elog_t la = {0}, lb = {0};
    dp_win_cfg_t ca = ckpt_cfg(kind, &la), cb = ckpt_cfg(kind, &lb);
    dp_win_t *a = mk(&ca), *b = mk(&cb);
    step_t *s = mk_steps(N, seed);
    int *ra = calloc(N, sizeof(int)), *rb = calloc(N, sizeof(int));
    dp_ser_w_t out = {0}, out2 = {0};
    dp_ser_r_t in;

    run_steps(a, s, 0, CUT, ra);
    assert_true(dp_win_keys(a) > 0);
    assert_int_equal(dp_win_save(a, &out), 0);
    dp_ser_rinit(&in, out.buf, out.len);
    assert_int_equal(dp_win_load(b, &in), 0);
    assert_int_equal(in.off, out.len);
    assert_int_equal(dp_win_keys(b), dp_win_keys(a));
    /* a's table may have grown for keys since purged; b's is sized for now. */
    assert_true(dp_win_state_bytes(b) <= dp_win_state_bytes(a));
    assert_memory_equal(dp_win_stats(b), dp_win_stats(a), sizeof(dp_win_stats_t));
    /* Saving the restored state gives the same bytes. */
    assert_int_equal(dp_win_save(b, &out2), 0);
    assert_int_equal(out2.len, out.len);
    assert_memory_equal(out2.buf, out.buf, out.len);
    elog_clear(&la);
    run_steps(a, s, CUT, N, ra);
    run_steps(b, s, CUT, N, rb);
    dp_win_advance(a, INT64_MAX, INT64_MAX);
    dp_win_advance(b, INT64_MAX, INT64_MAX);
    assert_memory_equal(ra + CUT, rb + CUT, (N - CUT) * sizeof(int));
    assert_int_equal(la.n, lb.n);
    assert_true(la.n > 50);
    for (size_t i = 0; i < la.n; i++)
        assert_string_equal(la.v[i], lb.v[i]);
    assert_memory_equal(dp_win_stats(b), dp_win_stats(a), sizeof(dp_win_stats_t));
    assert_int_equal(dp_win_keys(a), 0);
    dp_win_free(a);
    dp_win_free(b);
    dp_ser_wdispose(&out);
    dp_ser_wdispose(&out2);
    free(s);
    free(ra);
    free(rb);
    elog_dispose(&la);
    elog_dispose(&lb);
}

static void test_save_load_equivalence(void **state)
{
    run_ckpt(DP_WIN_HOPPING, 42);
    run_ckpt(DP_WIN_TUMBLING, 43);
    run_ckpt(DP_WIN_SESSION, 44);
}

#ifndef DAMAGE_ITERS
#define DAMAGE_ITERS 3000
#endif

static void run_damaged(dp_win_kind_t kind)
{
    elog_t log = {0};
    dp_win_cfg_t c = ckpt_cfg(kind, &log);
    dp_win_t *a = mk(&c), *b = mk(&c);
    step_t *s = mk_steps(300, 7);
    int rcs[300];
    dp_ser_w_t out = {0};
    dp_ser_r_t in;
    size_t empty = dp_win_state_bytes(b);

    run_steps(a, s, 0, 250, rcs);
    assert_int_equal(dp_win_save(a, &out), 0);
    assert_true(out.len > 200);
    for (size_t len = 0; len < out.len; len += (len < 512 ? 1 : 7)) {
        dp_ser_rinit(&in, out.buf, len);
        assert_int_equal(dp_win_load(b, &in), -EBADMSG);
        assert_int_equal(dp_win_keys(b), 0);
    }
    uint8_t *copy = malloc(out.len);
    assert_non_null(copy);
    rng_s = 99;
    int ok = 0;
    for (int i = 0; i < DAMAGE_ITERS; i++) {
        memcpy(copy, out.buf, out.len);
        for (int j = 0; j < 1 + (int)rr(3); j++)
            copy[rr((int64_t)out.len)] ^= (uint8_t)(1 + rr(255));
        dp_ser_rinit(&in, copy, out.len);
        int rc = dp_win_load(b, &in);
        assert_true(rc == 0 || rc == -EBADMSG);
        if (rc == 0) {
            ok++;
            dp_win_advance(b, INT64_MAX, INT64_MAX);
            assert_int_equal(dp_win_keys(b), 0);
            elog_clear(&log);
        } else {
            assert_int_equal(dp_win_keys(b), 0);
        }
    }
    print_message("damaged checkpoints: %d of %d still loaded (values changed)\n", ok,
                  DAMAGE_ITERS);
    /* Another shape is refused. */
    dp_win_cfg_t c2 = c;
    c2.gap_ms += 1;
    c2.size_ms += 2000;
    dp_win_t *d = mk(&c2);
    dp_ser_rinit(&in, out.buf, out.len);
    assert_int_equal(dp_win_load(d, &in), -EBADMSG);
    dp_win_free(d);
    dp_ser_rinit(&in, out.buf, out.len);
    assert_int_equal(dp_win_load(b, &in), 0);
    assert_int_equal(dp_win_keys(b), dp_win_keys(a));
    dp_ser_rinit(&in, out.buf, 10);
    assert_int_equal(dp_win_load(b, &in), -EBADMSG);
    assert_int_equal(dp_win_state_bytes(b), empty);
    free(copy);
    free(s);
    dp_ser_wdispose(&out);
    dp_win_free(a);
    dp_win_free(b);
    elog_dispose(&log);
}

static void test_load_damaged(void **state)
{
    run_damaged(DP_WIN_SESSION);
    run_damaged(DP_WIN_HOPPING);
}

/* When the emission list may not grow, firing goes one end at a time and
 * the output is the same. */
static void test_bounded_emission(void **state)
{
    elog_t la = {0}, lb = {0};
    dp_win_cfg_t ca = ckpt_cfg(DP_WIN_HOPPING, &la), cb = ckpt_cfg(DP_WIN_HOPPING, &lb);
    ca.slide_ms = cb.slide_ms = 1000;
    ca.idle_timeout_ms = cb.idle_timeout_ms = 0;
    dp_win_t *a = mk(&ca), *b = mk(&cb);
    step_t *s = mk_steps(2000, 5);
    int *ra = calloc(2000, sizeof(int)), *rb = calloc(2000, sizeof(int));

    b->fire_max = b->fire_cap; /* 64 entries; 30 keys x up to 10 windows need more */
    for (int i = 0; i < 2000; i++)
        s[i].advance = s[i].advance && i > 1500; /* one big jump, then small steps */
    run_steps(a, s, 0, 2000, ra);
    run_steps(b, s, 0, 2000, rb);
    dp_win_advance(a, INT64_MAX, INT64_MAX);
    dp_win_advance(b, INT64_MAX, INT64_MAX);
    assert_true(b->fire_cap < 128);
    assert_true(b->fire_rounds > 0);
    assert_int_equal(a->fire_rounds, 0);
    assert_int_equal(la.n, lb.n);
    assert_true(la.n > 300);
    for (size_t i = 0; i < la.n; i++)
        assert_string_equal(la.v[i], lb.v[i]);
    dp_win_free(a);
    dp_win_free(b);
    free(s);
    free(ra);
    free(rb);
    elog_dispose(&la);
    elog_dispose(&lb);
}

/* ---- throughput (printed, not asserted) ---- */

static uint64_t emitted;

static void count_emit(void *ctx, const dp_win_result_t *r)
{
    emitted += r->count;
}

static double bench(dp_win_kind_t kind, int64_t size, int64_t slide, dp_win_fn_t fn)
{
    dp_win_cfg_t c = {
        .kind = kind, .size_ms = size, .slide_ms = slide, .naggs = 1, .emit = count_emit};
    c.aggs[0] = fn;
    dp_win_t *w = mk(&c);
    const int N = 1000000, KEYS = 10000;
    struct timespec t0, t1;

    rng_s = 2024;
    emitted = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++) {
        int64_t ts = i / 10; /* 10k events per second of event time */
        dp_val_t k = dp_val_int((int64_t)(rnd() % KEYS));
        dp_val_t v = dp_val_int((int64_t)(rnd() % 100000));
        int rc = dp_win_add(w, &k, ts - (int64_t)(rnd() % 1000), &v, NULL, 0);
        assert_true(rc >= 0);
        if (i % 1000 == 999)
            dp_win_advance(w, ts - 4000, 0);
    }
    dp_win_advance(w, INT64_MAX, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    dp_win_free(w);
    return N / sec;
}

static void test_throughput(void **state)
{
    double q5 = bench(DP_WIN_HOPPING, 10000, 2000, DP_WIN_COUNT);
    print_message("dp_win throughput: hopping 10s/2s count, 10k keys: %.0f adds/s\n", q5);
    double q7 = bench(DP_WIN_TUMBLING, 10000, 0, DP_WIN_MAX);
    print_message("dp_win throughput: tumbling 10s max, 10k keys: %.0f adds/s\n", q7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_tumbling_order),
        cmocka_unit_test(test_types_and_errors),
        cmocka_unit_test(test_late_modes),
        cmocka_unit_test(test_upsert_content),
        cmocka_unit_test(test_session_merge),
        cmocka_unit_test(test_session_late),
        cmocka_unit_test(test_early_firing),
        cmocka_unit_test(test_idle_release),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_slices_vs_reference),
        cmocka_unit_test(test_sessions_vs_reference),
        cmocka_unit_test(test_save_load_equivalence),
        cmocka_unit_test(test_load_damaged),
        cmocka_unit_test(test_bounded_emission),
        cmocka_unit_test(test_throughput),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
