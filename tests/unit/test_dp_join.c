/* Description: join state engine: window, interval and table joins, budget, checkpoints. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_crc32c.h"
#include "dp_join.h"

/* ---- capture ------------------------------------------------------------ */

typedef struct cap {
    char **rows;
    size_t n;
    size_t cap;
    uint64_t count; /* count-only mode (throughput) */
    bool count_only;
} cap_t;

static size_t fmt_rec(char *b, size_t n, const dp_join_rec_t *r)
{
    size_t o;

    if (r == NULL)
        return (size_t)snprintf(b, n, "-");
    o = (size_t)snprintf(b, n, "%.*s", (int)r->payload_len, r->payload ? r->payload : "");
    if (r->payload == NULL && o < n)
        o += (size_t)snprintf(b + o, n - o, "<nopayload>");
    if (r->key != NULL && o < n)
        o += (size_t)snprintf(b + o, n - o, "/key=%.*s", (int)r->key_len, r->key);
    for (uint32_t i = 0; i < r->nhdrs && o < n; i++) {
        const dp_hdr_t *h = &r->hdrs[i];

        if (h->val != NULL)
            o += (size_t)snprintf(b + o, n - o, "/%.*s=%.*s", (int)h->name_len, h->name,
                                  (int)h->val_len, h->val);
        else
            o += (size_t)snprintf(b + o, n - o, "/%.*s=null", (int)h->name_len, h->name);
    }
    return o;
}

static void fmt_key(char *b, size_t n, const dp_val_t *k)
{
    switch (k->type) {
    case DP_VAL_INT:
        snprintf(b, n, "%" PRId64, k->u.i);
        break;
    case DP_VAL_STR:
        snprintf(b, n, "'%.*s'", (int)k->len, k->u.s);
        break;
    case DP_VAL_DOUBLE:
        snprintf(b, n, "%gd", k->u.d);
        break;
    case DP_VAL_BOOL:
        snprintf(b, n, "%s", k->u.b ? "true" : "false");
        break;
    case DP_VAL_NULL:
        snprintf(b, n, "null");
        break;
    default:
        snprintf(b, n, "missing");
        break;
    }
}

static void on_emit(void *ctx, const dp_join_pair_t *p)
{
    cap_t *c = ctx;
    char l[512], r[512], k[128], line[1400];

    if (c->count_only) {
        c->count++;
        return;
    }
    fmt_rec(l, sizeof(l), p->left);
    fmt_rec(r, sizeof(r), p->right);
    fmt_key(k, sizeof(k), p->key);
    if (p->win_start_ms != 0 || p->win_end_ms != 0)
        snprintf(line, sizeof(line), "%s+%s k=%s t=%" PRId64 " w=%" PRId64 "-%" PRId64, l, r, k,
                 p->event_ms, p->win_start_ms, p->win_end_ms);
    else
        snprintf(line, sizeof(line), "%s+%s k=%s t=%" PRId64, l, r, k, p->event_ms);
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->rows = realloc(c->rows, c->cap * sizeof(*c->rows));
        assert_non_null(c->rows);
    }
    c->rows[c->n] = strdup(line);
    assert_non_null(c->rows[c->n]);
    c->n++;
}

static void cap_clear(cap_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->rows[i]);
    c->n = 0;
}

static void cap_dispose(cap_t *c)
{
    cap_clear(c);
    free(c->rows);
    memset(c, 0, sizeof(*c));
}

/* Checks the captured rows, in order, then forgets them. */
static void expect_rows(cap_t *c, const char *const *want, size_t n)
{
    for (size_t i = 0; i < c->n && i < n; i++) {
        if (strcmp(c->rows[i], want[i]) != 0)
            fail_msg("row %zu: got \"%s\", want \"%s\"", i, c->rows[i], want[i]);
    }
    if (c->n != n) {
        for (size_t i = 0; i < c->n; i++)
            print_message("  got[%zu] %s\n", i, c->rows[i]);
        fail_msg("got %zu rows, want %zu", c->n, n);
    }
    cap_clear(c);
}

#define EXPECT(c, ...)                                                                             \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__};                                          \
        expect_rows((c), want_, sizeof(want_) / sizeof(want_[0]));                                 \
    } while (0)
#define EXPECT_NONE(c) expect_rows((c), NULL, 0)

/* ---- inputs ------------------------------------------------------------- */

static dp_row_t mkrow(const char *payload)
{
    dp_row_t r = {0};

    r.payload = payload;
    r.payload_len = payload != NULL ? (uint32_t)strlen(payload) : 0;
    r.offset = -1;
    r.partition = -1;
    return r;
}

static int addv(dp_join_t *j, int side, dp_val_t k, int64_t ts, const char *payload)
{
    dp_row_t r = mkrow(payload);

    return dp_join_add(j, side, &k, ts, &r);
}

static int addi(dp_join_t *j, int side, int64_t key, int64_t ts, const char *payload)
{
    return addv(j, side, dp_val_int(key), ts, payload);
}

static int adds(dp_join_t *j, int side, const char *key, int64_t ts, const char *payload)
{
    return addv(j, side, dp_val_str(key, (uint32_t)strlen(key)), ts, payload);
}

#define L DP_JOIN_SIDE_LEFT
#define R DP_JOIN_SIDE_RIGHT

static dp_join_t *mk(const dp_join_cfg_t *cfg, cap_t *c)
{
    dp_join_t *j = NULL;

    assert_int_equal(dp_join_new(&j, cfg, on_emit, c), 0);
    assert_non_null(j);
    return j;
}

static dp_join_cfg_t win_cfg(dp_join_type_t type, int64_t size, int64_t slide)
{
    dp_join_cfg_t cfg = {.kind = DP_JOIN_WINDOW, .type = type, .size_ms = size};

    cfg.win = slide > 0 ? DP_JOIN_WIN_HOPPING : DP_JOIN_WIN_TUMBLING;
    cfg.slide_ms = slide;
    return cfg;
}

static dp_join_cfg_t ivl_cfg(dp_join_type_t type, int64_t lower, int64_t upper, int64_t bucket)
{
    dp_join_cfg_t cfg = {.kind = DP_JOIN_INTERVAL,
                         .type = type,
                         .lower_ms = lower,
                         .upper_ms = upper,
                         .bucket_ms = bucket};

    return cfg;
}

/* ---- configuration ------------------------------------------------------ */

static void test_cfg(void **state)
{
    dp_join_cfg_t c;
    dp_join_t *j = (dp_join_t *)1;
    cap_t cap = {0};

    c = win_cfg(DP_JOIN_INNER, 10, 0);
    assert_int_equal(dp_join_cfg_check(&c), 0);
    c.win = DP_JOIN_WIN_SESSION;
    assert_int_equal(dp_join_new(&j, &c, on_emit, &cap), -ENOTSUP);
    assert_null(j);
    c = win_cfg(DP_JOIN_FULL, 0, 0);
    assert_int_equal(dp_join_cfg_check(&c), -EINVAL);
    c = win_cfg(DP_JOIN_FULL, 10, 20);
    assert_int_equal(dp_join_cfg_check(&c), -ENOTSUP); /* gaps between windows */
    c = win_cfg(DP_JOIN_FULL, 1000, 1);
    assert_int_equal(dp_join_cfg_check(&c), -EINVAL); /* > DP_JOIN_MAX_HOPS windows per record */
    c = win_cfg(DP_JOIN_FULL, 256, 1);
    assert_int_equal(dp_join_cfg_check(&c), 0);
    c = ivl_cfg(DP_JOIN_FULL, 0, 1, 0);
    assert_int_equal(dp_join_cfg_check(&c), -ENOTSUP);
    c = ivl_cfg(DP_JOIN_LEFT, 5, 1, 0);
    assert_int_equal(dp_join_cfg_check(&c), -EINVAL);
    c = ivl_cfg(DP_JOIN_INNER, -5, -1, 0);
    assert_int_equal(dp_join_cfg_check(&c), 0);
    c = (dp_join_cfg_t){.kind = DP_JOIN_TABLE, .type = DP_JOIN_FULL};
    assert_int_equal(dp_join_cfg_check(&c), -ENOTSUP);
    c.type = DP_JOIN_LEFT;
    assert_int_equal(dp_join_cfg_check(&c), 0);
    c.kind = (dp_join_kind_t)7;
    assert_int_equal(dp_join_cfg_check(&c), -EINVAL);
    dp_join_free(NULL);
}

/* ---- window joins ------------------------------------------------------- */

static void test_window_inner(void **state)
{
    cap_t c = {0};
    dp_join_cfg_t cfg = win_cfg(DP_JOIN_INNER, 10, 0);
    dp_join_t *j = mk(&cfg, &c);

    /* Out of order inside the watermark, several matches per key. */
    assert_int_equal(addi(j, R, 1, 3, "r1"), DP_JOIN_OK);
    assert_int_equal(addi(j, L, 1, 5, "a1"), DP_JOIN_OK);
    assert_int_equal(addi(j, L, 2, 1, "b1"), DP_JOIN_OK);
    assert_int_equal(addi(j, R, 1, 2, "r2"), DP_JOIN_OK);
    assert_int_equal(addi(j, L, 1, 7, "a2"), DP_JOIN_OK);
    assert_int_equal(addi(j, R, 2, 12, "x"), DP_JOIN_OK); /* next window */
    assert_int_equal(addi(j, R, 3, 4, "c"), DP_JOIN_OK);
    dp_join_advance(j, 5);
    assert_int_equal(addi(j, L, 2, 9, "b2"), DP_JOIN_OK);
    assert_int_equal(addi(j, L, 1, -3, "neg"), DP_JOIN_LATE); /* window [-10,0) has fired */
    dp_join_advance(j, 9);
    EXPECT_NONE(&c);
    assert_true(dp_join_state_bytes(j) > 0);
    assert_int_equal(dp_join_stats(j)->records, 8);

    dp_join_advance(j, 10);
    EXPECT(&c, "a1+r1 k=1 t=5 w=0-10", "a1+r2 k=1 t=5 w=0-10", "a2+r1 k=1 t=7 w=0-10",
           "a2+r2 k=1 t=7 w=0-10");
    assert_int_equal(dp_join_stats(j)->pairs, 4);
    assert_int_equal(dp_join_stats(j)->dropped[0], 2); /* b1, b2 */
    assert_int_equal(dp_join_stats(j)->dropped[1], 1); /* c */
    assert_int_equal(addi(j, L, 2, 15, "b3"), DP_JOIN_OK);
    dp_join_advance(j, 9); /* backwards: ignored */
    assert_int_equal(dp_join_watermark(j), 10);
    dp_join_advance(j, 20);
    EXPECT(&c, "b3+x k=2 t=15 w=10-20");
    assert_int_equal(dp_join_state_bytes(j), 0);
    assert_int_equal(dp_join_stats(j)->records, 0);
    assert_int_equal(dp_join_stats(j)->windows_fired, 2);
    assert_int_equal(dp_join_stats(j)->late[0], 1);
    dp_join_free(j);
    cap_dispose(&c);
}

static void feed_outer(dp_join_t *j, int full)
{
    assert_int_equal(addi(j, L, 1, 1, "a"), DP_JOIN_OK);
    assert_int_equal(addi(j, R, 1, 2, "r"), DP_JOIN_OK);
    assert_int_equal(addi(j, L, 2, 3, "b"), DP_JOIN_OK);
    assert_int_equal(addi(j, R, 3, 4, "c"), DP_JOIN_OK);
    assert_int_equal(addv(j, L, dp_val_null(), 5, "n"), DP_JOIN_NOKEY);
    assert_int_equal(addv(j, R, dp_val_missing(), 6, "m"), DP_JOIN_NOKEY);
    assert_int_equal(addv(j, L, dp_val_missing(), 7, "n2"), DP_JOIN_NOKEY);
    assert_int_equal(addi(j, R, 2, 8, "late-ish"), DP_JOIN_OK);
    assert_int_equal(addi(j, L, 2, 9, "b2"), DP_JOIN_OK);
    (void)full;
}

static void test_window_left_full(void **state)
{
    cap_t c = {0};
    dp_join_cfg_t cfg = win_cfg(DP_JOIN_LEFT, 10, 0);
    dp_join_t *j = mk(&cfg, &c);

    feed_outer(j, 0);
    dp_join_advance(j, 10);
    EXPECT(&c, "a+r k=1 t=2 w=0-10", "b+late-ish k=2 t=8 w=0-10", "b2+late-ish k=2 t=9 w=0-10",
           "n+- k=null t=5 w=0-10", "n2+- k=null t=7 w=0-10");
    assert_int_equal(dp_join_stats(j)->dropped[1], 2); /* c (unmatched right), m (no key) */
    dp_join_free(j);

    cfg.type = DP_JOIN_FULL;
    j = mk(&cfg, &c);
    feed_outer(j, 1);
    assert_int_equal(addi(j, L, 4, 9, "d"), DP_JOIN_OK);
    dp_join_advance(j, 10);
    EXPECT(&c, "a+r k=1 t=2 w=0-10", "b+late-ish k=2 t=8 w=0-10", "b2+late-ish k=2 t=9 w=0-10",
           "-+c k=3 t=4 w=0-10", "n+- k=null t=5 w=0-10", "n2+- k=null t=7 w=0-10",
           "-+m k=null t=6 w=0-10", "d+- k=4 t=9 w=0-10");
    assert_int_equal(dp_join_stats(j)->unmatched, 5);
    assert_int_equal(dp_join_stats(j)->nokey[0], 2);
    assert_int_equal(dp_join_stats(j)->nokey[1], 1);
    dp_join_free(j);

    /* Inner: keys that cannot match are dropped at once, not stored. */
    cfg.type = DP_JOIN_INNER;
    j = mk(&cfg, &c);
    assert_int_equal(addv(j, L, dp_val_null(), 5, "n"), DP_JOIN_NOKEY);
    assert_int_equal(dp_join_state_bytes(j), 0);
    assert_int_equal(dp_join_stats(j)->dropped[0], 1);
    dp_join_free(j);
    cap_dispose(&c);
}

static void test_window_hopping(void **state)
{
    cap_t c = {0};
    dp_join_cfg_t cfg = win_cfg(DP_JOIN_INNER, 10, 5);
    dp_join_t *j = mk(&cfg, &c);

    /* 7 and 8 share [0,10) and [5,15); 7 and 12 share only [5,15). */
    assert_int_equal(addi(j, L, 1, 7, "a"), DP_JOIN_OK);
    assert_int_equal(addi(j, R, 1, 8, "r"), DP_JOIN_OK);
    assert_int_equal(addi(j, R, 1, 12, "s"), DP_JOIN_OK);
    assert_int_equal(dp_join_stats(j)->records, 6);
    dp_join_advance(j, 10);
    EXPECT(&c, "a+r k=1 t=8 w=0-10");
    dp_join_advance(j, 100);
    EXPECT(&c, "a+r k=1 t=8 w=5-15", "a+s k=1 t=12 w=5-15");
    assert_int_equal(dp_join_stats(j)->windows_fired, 3);
    assert_int_equal(dp_join_state_bytes(j), 0);
    dp_join_free(j);

    /* Late: all windows fired, or only some (accepted into the rest). */
    j = mk(&cfg, &c);
    dp_join_advance(j, 10);
    assert_int_equal(addi(j, L, 1, 4, "x"), DP_JOIN_LATE); /* [-5,5), [0,10) */
    assert_int_equal(addi(j, L, 1, 7, "a"), DP_JOIN_OK);   /* [0,10) fired, [5,15) open */
    assert_int_equal(dp_join_stats(j)->late_partial, 1);
    assert_int_equal(addi(j, R, 1, 9, "r"), DP_JOIN_OK);
    dp_join_advance(j, 15);
    EXPECT(&c, "a+r k=1 t=9 w=5-15");
    assert_int_equal(dp_join_stats(j)->late[0], 1);
    dp_join_free(j);

    /* Tumbling: below the watermark but in an open window is still accepted. */
    cfg = win_cfg(DP_JOIN_INNER, 10, 0);
    j = mk(&cfg, &c);
    dp_join_advance(j, 12);
    assert_int_equal(addi(j, L, 1, 11, "a"), DP_JOIN_OK);
    assert_int_equal(addi(j, R, 1, 9, "r"), DP_JOIN_LATE);
    assert_int_equal(addi(j, R, 1, 10, "r"), DP_JOIN_OK);
    dp_join_advance(j, 20);
    EXPECT(&c, "a+r k=1 t=11 w=10-20");
    dp_join_free(j);
    cap_dispose(&c);
}

static void test_window_keys(void **state)
{
    cap_t c = {0};
    dp_join_cfg_t cfg = win_cfg(DP_JOIN_INNER, 10, 0);
    dp_join_t *j = mk(&cfg, &c);

    /* Same type and value: INT 3 and DOUBLE 3.0 differ; -0.0 == 0.0; NaN never matches. */
    assert_int_equal(addv(j, L, dp_val_int(3), 1, "i"), DP_JOIN_OK);
    assert_int_equal(addv(j, R, dp_val_double(3.0), 1, "d"), DP_JOIN_OK);
    assert_int_equal(addv(j, L, dp_val_double(-0.0), 1, "mz"), DP_JOIN_OK);
    assert_int_equal(addv(j, R, dp_val_double(0.0), 1, "z"), DP_JOIN_OK);
    assert_int_equal(addv(j, L, dp_val_double(NAN), 1, "nan"), DP_JOIN_NOKEY);
    assert_int_equal(addv(j, R, dp_val_double(NAN), 1, "nan"), DP_JOIN_NOKEY);
    assert_int_equal(addv(j, L, dp_val_bool(true), 1, "t"), DP_JOIN_OK);
    assert_int_equal(addv(j, R, dp_val_bool(true), 1, "T"), DP_JOIN_OK);
    assert_int_equal(addv(j, R, dp_val_bool(false), 1, "F"), DP_JOIN_OK);
    assert_int_equal(adds(j, L, "ab", 1, "s"), DP_JOIN_OK);
    assert_int_equal(adds(j, R, "AB", 1, "S"), DP_JOIN_OK);
    assert_int_equal(addv(j, R, dp_val_str("ab\0", 3), 1, "S0"), DP_JOIN_OK);
    assert_int_equal(adds(j, R, "ab", 1, "s2"), DP_JOIN_OK);
    assert_int_equal(adds(j, L, "", 1, "e"), DP_JOIN_OK);
    assert_int_equal(addv(j, R, dp_val_str(NULL, 0), 1, "E"), DP_JOIN_OK);
    /* Many distinct keys: the tables grow and keep finding. */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(addi(j, i % 2 ? R : L, 100 + i / 2, 2, i % 2 ? "y" : "x"), DP_JOIN_OK);
    dp_join_advance(j, 10);
    assert_int_equal(c.n, 4 + 500);
    assert_string_equal(c.rows[0], "mz+z k=-0d t=1 w=0-10");
    assert_string_equal(c.rows[1], "t+T k=true t=1 w=0-10");
    assert_string_equal(c.rows[2], "s+s2 k='ab' t=1 w=0-10");
    assert_string_equal(c.rows[3], "e+E k='' t=1 w=0-10"); /* "" is a key like any other */
    assert_string_equal(c.rows[4], "x+y k=100 t=2 w=0-10");
    cap_clear(&c);
    dp_join_free(j);
    cap_dispose(&c);
}

static void test_record_copies(void **state)
{
    cap_t c = {0};
    dp_join_cfg_t cfg = win_cfg(DP_JOIN_INNER, 10, 0);
    dp_join_t *j = mk(&cfg, &c);
    char payload[] = "{\"id\":1}";
    char rkey[] = "k1";
    char hn[] = "trace", hv[] = "abc", hn2[] = "nullhdr";
    char kb[] = "key";
    dp_hdr_t hdrs[2] = {{.name = hn, .val = hv, .name_len = 5, .val_len = 3},
                        {.name = hn2, .val = NULL, .name_len = 7}};
    dp_row_t row = mkrow(payload);
    dp_val_t k = dp_val_str(kb, 3);

    row.key = rkey;
    row.key_len = 2;
    row.hdrs = hdrs;
    row.nhdrs = 2;
    row.offset = 42;
    row.partition = 3;
    assert_int_equal(dp_join_add(j, L, &k, 5, &row), DP_JOIN_OK);
    row = mkrow("");
    assert_int_equal(dp_join_add(j, R, &k, 6, &row), DP_JOIN_OK); /* empty, not absent */
    row = mkrow(NULL);
    assert_int_equal(dp_join_add(j, R, &k, 7, &row), DP_JOIN_OK);
    /* The caller's buffers are reused before the window fires. */
    memset(payload, 'X', sizeof(payload) - 1);
    memset(rkey, 'X', 2);
    memset(hv, 'X', 3);
    memset(kb, 'X', 3);
    dp_join_advance(j, 10);
    EXPECT(&c, "{\"id\":1}/key=k1/trace=abc/nullhdr=null+ k='key' t=6 w=0-10",
           "{\"id\":1}/key=k1/trace=abc/nullhdr=null+<nopayload> k='key' t=7 w=0-10");
    dp_join_free(j);
    cap_dispose(&c);
}

/* ---- interval joins ----------------------------------------------------- */

static void test_interval_bounds(void **state)
{
    cap_t c = {0};
    dp_join_cfg_t cfg = ivl_cfg(DP_JOIN_INNER, -2, 3, 0);
    dp_join_t *j = mk(&cfg, &c);

    assert_int_equal(addi(j, L, 1, 10, "a"), DP_JOIN_OK);
    assert_int_equal(addi(j, R, 1, 7, "r7"), DP_JOIN_OK); /* 10 - 2 > 7 */
    EXPECT_NONE(&c);
    assert_int_equal(addi(j, R, 1, 8, "r8"), DP_JOIN_OK);   /* lower bound, inclusive */
    EXPECT(&c, "a+r8 k=1 t=10");                            /* eagerly */
    assert_int_equal(addi(j, R, 1, 13, "r13"), DP_JOIN_OK); /* upper bound, inclusive */
    EXPECT(&c, "a+r13 k=1 t=13");
    assert_int_equal(addi(j, R, 1, 14, "r14"), DP_JOIN_OK);
    assert_int_equal(addi(j, R, 2, 10, "other"), DP_JOIN_OK);
    EXPECT_NONE(&c);
    /* b at 11 takes rights in [9, 14], in their arrival order. */
    assert_int_equal(addi(j, L, 1, 11, "b"), DP_JOIN_OK);
    EXPECT(&c, "b+r13 k=1 t=13", "b+r14 k=1 t=14");
    dp_join_free(j);

    /* Both bounds negative: b.ts in [a.ts - 5, a.ts - 1]. */
    cfg = ivl_cfg(DP_JOIN_INNER, -5, -1, 1);
    j = mk(&cfg, &c);
    assert_int_equal(adds(j, R, "k", 100, "r100"), DP_JOIN_OK);
    assert_int_equal(adds(j, R, "k", 95, "r95"), DP_JOIN_OK);
    assert_int_equal(adds(j, R, "k", 94, "r94"), DP_JOIN_OK);
    assert_int_equal(adds(j, L, "k", 100, "a"), DP_JOIN_OK);
    EXPECT(&c, "a+r95 k='k' t=100");
    assert_int_equal(adds(j, L, "k", 101, "b"), DP_JOIN_OK);
    EXPECT(&c, "b+r100 k='k' t=101");
    /* Right 100 is needed while wm <= 100 + 5. */
    dp_join_advance(j, 105);
    assert_int_equal(adds(j, L, "k", 105, "c"), DP_JOIN_OK);
    EXPECT(&c, "c+r100 k='k' t=105");
    dp_join_advance(j, 106);
    assert_int_equal(adds(j, L, "k", 106, "d"), DP_JOIN_OK);
    EXPECT_NONE(&c);
    dp_join_free(j);
    cap_dispose(&c);
}

static void test_interval_expiry(void **state)
{
    cap_t c = {0};
    dp_join_cfg_t cfg = ivl_cfg(DP_JOIN_LEFT, 0, 5, 1);
    dp_join_t *j = mk(&cfg, &c);

    assert_int_equal(addi(j, L, 1, 10, "a"), DP_JOIN_OK);
    assert_int_equal(addi(j, L, 2, 11, "b"), DP_JOIN_OK);
    assert_int_equal(addi(j, R, 1, 12, "r"), DP_JOIN_OK);
    EXPECT(&c, "a+r k=1 t=12");
    assert_int_equal(addv(j, L, dp_val_null(), 12, "n"), DP_JOIN_NOKEY);
    EXPECT(&c, "n+- k=null t=12"); /* can never match: out at once */
    dp_join_advance(j, 15);        /* r (12) expired: 15 > 12 - 0 */
    EXPECT_NONE(&c);
    assert_int_equal(dp_join_stats(j)->expired[1], 1);
    assert_int_equal(dp_join_stats(j)->records, 2);
    dp_join_advance(j, 16); /* a (10) expired, matched: nothing */
    EXPECT_NONE(&c);
    dp_join_advance(j, 17); /* b (11) expired unmatched */
    EXPECT(&c, "b+- k=2 t=11");
    assert_int_equal(dp_join_stats(j)->records, 0);
    assert_int_equal(dp_join_state_bytes(j), 0);
    /* Late: a partner could have expired. */
    assert_int_equal(addi(j, L, 3, 16, "late"), DP_JOIN_LATE);
    assert_int_equal(addi(j, R, 3, 16, "late"), DP_JOIN_LATE);
    assert_int_equal(addi(j, R, 3, 17, "ok"), DP_JOIN_OK);
    assert_int_equal(dp_join_stats(j)->late[0], 1);
    assert_int_equal(dp_join_stats(j)->late[1], 1);
    dp_join_free(j);

    /* Inner: unmatched left records go silently. Default buckets are coarser:
     * expiry waits until the whole bucket has expired, matching is exact. */
    cfg = ivl_cfg(DP_JOIN_INNER, 0, 80, 0); /* bucket 10 ms */
    j = mk(&cfg, &c);
    assert_int_equal(addi(j, L, 1, 100, "a"), DP_JOIN_OK);
    assert_int_equal(addi(j, L, 1, 109, "b"), DP_JOIN_OK);
    dp_join_advance(j, 181);
    assert_int_equal(dp_join_stats(j)->records, 2); /* bucket [100,110) held until > 189 */
    assert_int_equal(addi(j, R, 1, 181, "r"), DP_JOIN_OK);
    EXPECT(&c, "b+r k=1 t=181"); /* not a: 181 > 100 + 80 */
    dp_join_advance(j, 190);
    assert_int_equal(dp_join_stats(j)->expired[0], 2);
    assert_int_equal(dp_join_stats(j)->dropped[0], 1);
    EXPECT_NONE(&c);
    dp_join_free(j);
    cap_dispose(&c);
}

/* ---- table joins -------------------------------------------------------- */

static void test_table(void **state)
{
    cap_t c = {0};
    dp_join_cfg_t cfg = {.kind = DP_JOIN_TABLE, .type = DP_JOIN_LEFT};
    dp_join_t *j = mk(&cfg, &c);
    char big[600];

    assert_int_equal(adds(j, R, "k1", 1, "v1"), DP_JOIN_OK);
    assert_int_equal(adds(j, L, "k1", 50, "s1"), DP_JOIN_OK);
    EXPECT(&c, "s1+v1 k='k1' t=50");
    assert_int_equal(adds(j, R, "k1", 2, "v2"), DP_JOIN_OK);  /* update in place */
    assert_int_equal(adds(j, L, "k1", 40, "s2"), DP_JOIN_OK); /* processing time: no LATE */
    EXPECT(&c, "s2+v2 k='k1' t=40");
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(adds(j, R, "k1", 3, big), DP_JOIN_OK);   /* grows */
    assert_int_equal(adds(j, R, "k1", 4, "v4"), DP_JOIN_OK);  /* shrinks */
    assert_int_equal(adds(j, L, "K1", 41, "s3"), DP_JOIN_OK); /* bytewise keys */
    assert_int_equal(adds(j, L, "k1", 42, "s4"), DP_JOIN_OK);
    EXPECT(&c, "s3+- k='K1' t=41", "s4+v4 k='k1' t=42");
    assert_int_equal(adds(j, R, "k1", 5, NULL), DP_JOIN_OK); /* tombstone */
    assert_int_equal(adds(j, R, "k9", 5, ""), DP_JOIN_OK);   /* tombstone of nothing */
    assert_int_equal(adds(j, L, "k1", 43, "s5"), DP_JOIN_OK);
    EXPECT(&c, "s5+- k='k1' t=43");
    assert_int_equal(dp_join_stats(j)->tombstones, 1);
    assert_int_equal(dp_join_state_bytes(j), 0);
    assert_int_equal(addv(j, L, dp_val_missing(), 44, "s6"), DP_JOIN_NOKEY);
    EXPECT(&c, "s6+- k=missing t=44");
    assert_int_equal(addv(j, R, dp_val_null(), 44, "v"), DP_JOIN_NOKEY);
    dp_join_advance(j, 1000); /* no watermark state */
    for (int i = 0; i < 500; i++)
        assert_int_equal(addi(j, R, i, 1, "t"), DP_JOIN_OK);
    for (int i = 0; i < 500; i += 2)
        assert_int_equal(addi(j, R, i, 1, NULL), DP_JOIN_OK);
    for (int i = 0; i < 500; i++)
        assert_int_equal(addi(j, L, i, 1, "s"), DP_JOIN_OK);
    assert_int_equal(c.n, 500);
    assert_string_equal(c.rows[0], "s+- k=0 t=1");
    assert_string_equal(c.rows[1], "s+t k=1 t=1");
    cap_clear(&c);
    assert_int_equal(dp_join_stats(j)->records, 250);
    dp_join_free(j);

    cfg.type = DP_JOIN_INNER;
    j = mk(&cfg, &c);
    assert_int_equal(adds(j, R, "k1", 1, "v1"), DP_JOIN_OK);
    assert_int_equal(adds(j, L, "k2", 2, "s"), DP_JOIN_OK);
    assert_int_equal(adds(j, L, "k1", 3, "s"), DP_JOIN_OK);
    EXPECT(&c, "s+v1 k='k1' t=3");
    assert_int_equal(dp_join_stats(j)->dropped[0], 1);
    dp_join_free(j);
    cap_dispose(&c);
}

/* ---- budget ------------------------------------------------------------- */

static void test_budget(void **state)
{
    cap_t c = {0};
    dp_join_cfg_t cfg = win_cfg(DP_JOIN_INNER, 10, 0);
    dp_join_t *j;
    char pay[1001];
    size_t before;
    int rc = 0, n = 0;

    memset(pay, 'p', 1000);
    pay[1000] = 0;
    cfg.state_limit_bytes = 256 * 1024;
    j = mk(&cfg, &c);
    while (n < 1000) {
        rc = addi(j, n % 2 ? R : L, n % 7, 5, pay);
        if (rc != DP_JOIN_OK)
            break;
        n++;
    }
    assert_int_equal(rc, -ENOBUFS);
    assert_true(n > 100);
    assert_true(dp_join_state_bytes(j) <= cfg.state_limit_bytes);
    before = dp_join_state_bytes(j);
    assert_int_equal(addi(j, R, 1, 5, pay), -ENOBUFS);
    assert_int_equal(dp_join_state_bytes(j), before); /* nothing stored */
    assert_int_equal(dp_join_stats(j)->records, (uint64_t)n);
    assert_int_equal(dp_join_stats(j)->denied, 2);
    EXPECT_NONE(&c);
    /* A new window needs memory too. */
    assert_int_equal(addi(j, R, 1, 15, pay), -ENOBUFS);
    dp_join_advance(j, 10);
    assert_true(c.n > 0);
    cap_clear(&c);
    assert_int_equal(dp_join_state_bytes(j), 0);
    assert_int_equal(addi(j, R, 1, 15, pay), DP_JOIN_OK); /* the retry succeeds */
    {
        static char huge[300 * 1024];

        memset(huge, 'h', sizeof(huge) - 1);
        assert_int_equal(addi(j, R, 1, 15, huge), -EMSGSIZE);
    }
    assert_int_equal(addi(j, R, 1, INT64_MAX / 2, "x"), -ERANGE);
    dp_join_free(j);

    /* Interval and table joins obey the same budget. */
    cfg = ivl_cfg(DP_JOIN_INNER, 0, 10, 5);
    cfg.state_limit_bytes = 256 * 1024;
    j = mk(&cfg, &c);
    n = 0;
    do {
        rc = addi(j, L, n, 100 + n / 100, pay);
        n++;
    } while (rc == DP_JOIN_OK && n < 10000);
    assert_int_equal(rc, -ENOBUFS);
    dp_join_advance(j, 10000);
    assert_int_equal(dp_join_state_bytes(j), 0);
    assert_int_equal(addi(j, L, n, 10000, pay), DP_JOIN_OK);
    dp_join_free(j);

    cfg = (dp_join_cfg_t){.kind = DP_JOIN_TABLE, .state_limit_bytes = 64 * 1024};
    j = mk(&cfg, &c);
    n = 0;
    do {
        rc = addi(j, R, n, 1, pay);
        n++;
    } while (rc == DP_JOIN_OK && n < 10000);
    assert_int_equal(rc, -ENOBUFS);
    assert_int_equal(addi(j, R, 0, 1, NULL), DP_JOIN_OK); /* tombstones always fit */
    assert_int_equal(addi(j, R, n + 1, 1, pay), DP_JOIN_OK);
    dp_join_free(j);
    cap_dispose(&c);
}

/* ---- checkpoints -------------------------------------------------------- */

typedef struct gen {
    uint64_t s;
    int64_t ts;
    int64_t max_ts;
    int i;
} gen_t;

static uint32_t rnd(gen_t *g)
{
    g->s = g->s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(g->s >> 33);
}

/* One pseudo-random step: an add (keys ints, strings or null; headers
 * sometimes) or a watermark advance. Both copies see the same steps. */
static void step(dp_join_t *j, gen_t *g, bool table)
{
    char pay[64], rk[16], hv[16], ks[16];
    dp_hdr_t h[2] = {{.name = "h", .name_len = 1}, {.name = "nul", .name_len = 3}};
    dp_row_t row;
    dp_val_t key;
    uint32_t x = rnd(g);
    int side = (int)(x & 1);

    g->i++;
    if (x % 13 == 0) {
        dp_join_advance(j, g->max_ts - 20);
        return;
    }
    g->ts += (int64_t)(rnd(g) % 5);
    {
        int64_t ts = g->ts - (int64_t)(rnd(g) % 15);
        int kind = (int)(rnd(g) % 10);
        int kv = (int)(rnd(g) % 12);

        if (ts > g->max_ts)
            g->max_ts = ts;
        snprintf(pay, sizeof(pay), "p%d", g->i);
        row = mkrow(table && side == R && kv == 11 ? NULL : pay);
        if (kind == 0) {
            key = dp_val_null();
        } else if (kind < 4) {
            snprintf(ks, sizeof(ks), "s%d", kv);
            key = dp_val_str(ks, (uint32_t)strlen(ks));
        } else {
            key = dp_val_int(kv);
        }
        if (rnd(g) % 3 == 0) {
            snprintf(rk, sizeof(rk), "rk%d", g->i);
            row.key = rk;
            row.key_len = (uint32_t)strlen(rk);
            snprintf(hv, sizeof(hv), "v%d", g->i);
            h[0].val = hv;
            h[0].val_len = (uint32_t)strlen(hv);
            row.hdrs = h;
            row.nhdrs = 2;
        }
        row.offset = g->i;
        row.partition = side;
        row.ts_ms = ts + 1;
        (void)dp_join_add(j, side, &key, ts, &row);
    }
}

static void save(dp_join_t *j, dp_ser_w_t *w)
{
    memset(w, 0, sizeof(*w));
    assert_int_equal(dp_join_save(j, w), 0);
}

static void check_same(const cap_t *a, const cap_t *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        assert_string_equal(a->rows[i], b->rows[i]);
}

static const dp_join_cfg_t ckpt_cfgs[] = {
    {.kind = DP_JOIN_WINDOW, .type = DP_JOIN_FULL, .win = DP_JOIN_WIN_TUMBLING, .size_ms = 50},
    {.kind = DP_JOIN_WINDOW,
     .type = DP_JOIN_LEFT,
     .win = DP_JOIN_WIN_HOPPING,
     .size_ms = 40,
     .slide_ms = 15},
    {.kind = DP_JOIN_INTERVAL, .type = DP_JOIN_LEFT, .lower_ms = -10, .upper_ms = 25},
    {.kind = DP_JOIN_INTERVAL,
     .type = DP_JOIN_INNER,
     .lower_ms = 0,
     .upper_ms = 30,
     .bucket_ms = 1},
    {.kind = DP_JOIN_TABLE, .type = DP_JOIN_LEFT},
};

static void test_save_load_continue(void **state)
{
    for (size_t ci = 0; ci < sizeof(ckpt_cfgs) / sizeof(ckpt_cfgs[0]); ci++) {
        const dp_join_cfg_t *cfg = &ckpt_cfgs[ci];
        bool table = cfg->kind == DP_JOIN_TABLE;
        cap_t c1 = {0}, c2 = {0};
        dp_join_t *a = mk(cfg, &c1), *b = mk(cfg, &c2);
        gen_t g1 = {.s = 42 + ci}, g2;
        dp_ser_w_t w, w2;
        dp_ser_r_t r;

        for (int i = 0; i < 3000; i++)
            step(a, &g1, table);
        assert_true(dp_join_stats(a)->records > 0);
        save(a, &w);
        dp_ser_rinit(&r, w.buf, w.len);
        assert_int_equal(dp_join_load(b, &r), 0);
        assert_int_equal(r.off, w.len);
        assert_int_equal(dp_join_stats(b)->records, dp_join_stats(a)->records);
        assert_int_equal(dp_join_watermark(b), dp_join_watermark(a));
        /* Saving the copy gives the same bytes: nothing lost or reordered. */
        save(b, &w2);
        if (cfg->kind != DP_JOIN_TABLE) {
            assert_int_equal(w2.len, w.len);
            assert_memory_equal(w2.buf, w.buf, w.len);
        }
        dp_ser_wdispose(&w2);
        cap_clear(&c1);
        g2 = g1;
        for (int i = 0; i < 3000; i++) {
            step(a, &g1, table);
            step(b, &g2, table);
        }
        dp_join_advance(a, INT64_MAX);
        dp_join_advance(b, INT64_MAX);
        assert_true(c1.n > 100);
        check_same(&c1, &c2);
        dp_ser_wdispose(&w);
        dp_join_free(a);
        dp_join_free(b);
        cap_dispose(&c1);
        cap_dispose(&c2);
    }
}

/* Rewrites the section CRC after a deliberate change to its body. */
static void fix_crc(uint8_t *buf, size_t len)
{
    uint32_t crc = dp_crc32c(0, buf + 20, len - 20);

    for (int i = 0; i < 4; i++)
        buf[16 + i] = (uint8_t)(crc >> (8 * i));
}

static void test_load_damaged(void **state)
{
    for (size_t ci = 0; ci < sizeof(ckpt_cfgs) / sizeof(ckpt_cfgs[0]); ci++) {
        const dp_join_cfg_t *cfg = &ckpt_cfgs[ci];
        cap_t c = {0};
        dp_join_t *a = mk(cfg, &c), *b;
        gen_t g = {.s = 7 + ci};
        dp_ser_w_t w;
        dp_ser_r_t r;
        uint8_t *buf;

        for (int i = 0; i < 300; i++)
            step(a, &g, cfg->kind == DP_JOIN_TABLE);
        save(a, &w);
        buf = malloc(w.len);
        assert_non_null(buf);
        /* Truncated anywhere. */
        for (size_t n = 0; n < w.len; n++) {
            b = mk(cfg, &c);
            dp_ser_rinit(&r, w.buf, n);
            assert_int_equal(dp_join_load(b, &r), -EBADMSG);
            assert_int_equal(dp_join_state_bytes(b), 0);
            assert_int_equal(dp_join_stats(b)->records, 0);
            dp_join_free(b);
        }
        /* Any flipped bit. */
        for (size_t n = 0; n < w.len; n++) {
            memcpy(buf, w.buf, w.len);
            buf[n] ^= (uint8_t)(1u << (n % 8));
            b = mk(cfg, &c);
            dp_ser_rinit(&r, buf, w.len);
            assert_int_equal(dp_join_load(b, &r), -EBADMSG);
            assert_int_equal(dp_join_state_bytes(b), 0);
            dp_join_free(b);
        }
        /* Garbage behind a valid CRC: refused or accepted, never a crash or leak. */
        for (size_t n = 20; n < w.len; n++) {
            memcpy(buf, w.buf, w.len);
            buf[n] ^= (uint8_t)(0x81u << (n % 2));
            fix_crc(buf, w.len);
            b = mk(cfg, &c);
            dp_ser_rinit(&r, buf, w.len);
            if (dp_join_load(b, &r) != 0)
                assert_int_equal(dp_join_state_bytes(b), 0);
            else
                dp_join_advance(b, INT64_MAX);
            cap_clear(&c);
            dp_join_free(b);
        }
        /* Another configuration, or a join that is not fresh. */
        for (size_t oi = 0; oi < sizeof(ckpt_cfgs) / sizeof(ckpt_cfgs[0]); oi++) {
            if (oi == ci)
                continue;
            b = mk(&ckpt_cfgs[oi], &c);
            dp_ser_rinit(&r, w.buf, w.len);
            assert_int_equal(dp_join_load(b, &r), -EBADMSG);
            dp_join_free(b);
        }
        b = mk(cfg, &c);
        dp_join_advance(b, 1);
        dp_ser_rinit(&r, w.buf, w.len);
        assert_int_equal(dp_join_load(b, &r), -EINVAL);
        dp_join_free(b);
        free(buf);
        dp_ser_wdispose(&w);
        dp_join_free(a);
        cap_dispose(&c);
    }
}

/* ---- throughput --------------------------------------------------------- */

/* Nexmark q8 shape: persons (left, 10%) x auctions (right, 90%) on id =
 * seller, 10 s tumbling windows, 10k keys, 10k events per event-time second
 * (10 windows of 100k records). */
static void test_q8_throughput(void **state)
{
    static const char person[] = "{\"id\":1234,\"name\":\"Walter Shultz\",\"emailAddress\":"
                                 "\"wshultz@example.com\",\"city\":\"Phoenix\",\"state\":\"AZ\"}";
    static const char auction[] = "{\"id\":98765,\"itemName\":\"vintage lamp\",\"description\":"
                                  "\"a very nice lamp\",\"initialBid\":100,\"reserve\":250,"
                                  "\"seller\":1234,\"category\":10,\"expires\":1700000010000}";
    const size_t n = 1000000;
    cap_t c = {.count_only = true};
    dp_join_cfg_t cfg = win_cfg(DP_JOIN_INNER, 10000, 0);
    dp_join_t *j;
    dp_row_t prow = mkrow(person), arow = mkrow(auction);
    struct timespec t0, t1;
    uint64_t s = 1;
    double sec;

    cfg.state_limit_bytes = (size_t)1 << 30;
    j = mk(&cfg, &c);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < n; i++) {
        int64_t ts = (int64_t)(i / 10);
        dp_val_t k;
        int rc;

        s = s * 6364136223846793005ull + 1442695040888963407ull;
        k = dp_val_int((int64_t)((s >> 33) % 10000));
        if (i % 10 == 0)
            rc = dp_join_add(j, L, &k, ts, &prow);
        else
            rc = dp_join_add(j, R, &k, ts, &arow);
        if (rc != DP_JOIN_OK)
            fail_msg("add %zu: %d", i, rc);
        if (i % 1000 == 999)
            dp_join_advance(j, ts - 1000);
    }
    dp_join_advance(j, INT64_MAX);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("dp_join q8-like: %zu adds (90%% right, 10k keys, 10 s tumbling) + %" PRIu64
           " pairs in %.3f s = %.2f M adds/s\n",
           n, c.count, sec, (double)n / sec / 1e6);
    assert_true(c.count > 0);
    assert_int_equal(dp_join_state_bytes(j), 0);
    dp_join_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cfg),
        cmocka_unit_test(test_window_inner),
        cmocka_unit_test(test_window_left_full),
        cmocka_unit_test(test_window_hopping),
        cmocka_unit_test(test_window_keys),
        cmocka_unit_test(test_record_copies),
        cmocka_unit_test(test_interval_bounds),
        cmocka_unit_test(test_interval_expiry),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_save_load_continue),
        cmocka_unit_test(test_load_damaged),
        cmocka_unit_test(test_q8_throughput),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
