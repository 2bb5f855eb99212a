/* Description: dp_metrics: histogram bucket layout, quantile accuracy against
 * sorted samples for several distributions, merge, concurrent writers and a
 * reader, mbuf limits, and Prometheus text rendering. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_metrics.h"

/* ---- helpers ---------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

/* Uniform in (0, 1). */
static double rng_unit(void)
{
    return ((double)(rng() >> 11) + 0.5) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static dp_hist_t *hist_new(void)
{
    dp_hist_t *h = malloc(sizeof(*h));

    assert_non_null(h);
    dp_hist_init(h);
    return h;
}

/* ---- layout ----------------------------------------------------------- */

static void test_bucket_layout(void **state)
{
    unsigned i;
    uint64_t v;

    (void)state;
    assert_int_equal(dp_hist__bucket_lo_ns(0), 0);
    for (i = 0; i + 1 < DP_HIST_BUCKETS; i++) {
        uint64_t lo = dp_hist__bucket_lo_ns(i), hi = dp_hist__bucket_hi_ns(i);

        assert_true(lo < hi);
        assert_int_equal(hi, dp_hist__bucket_lo_ns(i + 1)); /* contiguous */
        assert_int_equal(dp_hist__index(lo), i);
        assert_int_equal(dp_hist__index(hi - 1), i);
        if (lo >= 1024)
            assert_true((hi - lo) * 16 <= lo); /* relative width <= 1/16 */
        else
            assert_int_equal(hi - lo, 64);
    }
    assert_int_equal(dp_hist__bucket_hi_ns(DP_HIST_BUCKETS - 1), DP_HIST_MAX_NS);
    assert_int_equal(dp_hist__index(DP_HIST_MAX_NS - 1), DP_HIST_BUCKETS - 1);
    assert_int_equal(dp_hist__index(DP_HIST_MAX_NS), DP_HIST_BUCKETS - 1);
    assert_int_equal(dp_hist__index(UINT64_MAX), DP_HIST_BUCKETS - 1);
    assert_int_equal(dp_hist__index(0), 0);
    /* 1 us .. 100 s is covered without saturating. */
    assert_true(dp_hist__index(100000000000ull) < DP_HIST_BUCKETS - 1);
    for (i = 0; i < 100000; i++) {
        v = rng() >> (rng() % 64);
        unsigned ix = dp_hist__index(v);
        if (v < DP_HIST_MAX_NS) {
            assert_true(dp_hist__bucket_lo_ns(ix) <= v);
            assert_true(v < dp_hist__bucket_hi_ns(ix));
        }
    }
}

/* ---- quantiles -------------------------------------------------------- */

typedef enum { D_UNIFORM, D_EXP, D_LOGNORMAL, D_BIMODAL, D_CONST, D_TINY } dist_t;

static uint64_t sample(dist_t d)
{
    double u = rng_unit(), v;

    switch (d) {
    case D_UNIFORM: /* 1 us .. 100 ms */
        return 1000 + (uint64_t)(u * 99999000.0);
    case D_EXP: /* mean 2 ms */
        return 1000 + (uint64_t)(-log(u) * 2e6);
    case D_LOGNORMAL: /* median ~1 ms, heavy tail up to seconds */
        v = sqrt(-2.0 * log(u)) * cos(2 * M_PI * rng_unit());
        return (uint64_t)exp(log(1e6) + 2.0 * v);
    case D_BIMODAL: /* 90% ~50 us, 10% ~800 ms */
        return rng() % 10 ? 40000 + rng() % 20000 : 700000000 + rng() % 200000000;
    case D_CONST:
        return 123456789;
    case D_TINY: /* sub-microsecond: absolute error 64 ns */
        return rng() % 1000;
    }
    return 0;
}

static void check_dist(dist_t d, size_t n)
{
    static const double qs[] = {0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0};
    uint64_t *v = malloc(n * sizeof(*v)), sum = 0;
    dp_hist_t *h = hist_new();
    size_t i, k;

    assert_non_null(v);
    for (i = 0; i < n; i++) {
        v[i] = sample(d);
        sum += v[i];
        dp_hist_record_ns(h, v[i]);
    }
    qsort(v, n, sizeof(*v), cmp_u64);
    assert_int_equal(dp_hist_count(h), n);
    assert_int_equal(dp_hist_sum_ns(h), sum);
    for (k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        size_t rank = (size_t)ceil(qs[k] * (double)n);
        uint64_t truth = v[rank == 0 ? 0 : rank - 1];
        uint64_t est = dp_hist_quantile_ns(h, qs[k]);

        /* Upper edge of truth's bucket: above it, by at most 1/16 (or 64 ns
         * below 1 us). */
        if (est <= truth || (truth >= 1024 ? (est - truth) * 16 > truth : est - truth > 64))
            fail_msg("dist %d q=%g: truth %" PRIu64 " est %" PRIu64, (int)d, qs[k], truth, est);
    }
    free(v);
    free(h);
}

static void test_quantile_accuracy(void **state)
{
    (void)state;
    check_dist(D_UNIFORM, 100000);
    check_dist(D_EXP, 100000);
    check_dist(D_LOGNORMAL, 200000);
    check_dist(D_BIMODAL, 100000);
    check_dist(D_CONST, 1000);
    check_dist(D_TINY, 10000);
    check_dist(D_LOGNORMAL, 1);
    check_dist(D_EXP, 7);
}

static void test_quantile_edges(void **state)
{
    dp_hist_t *h = hist_new();

    (void)state;
    assert_int_equal(dp_hist_quantile_ns(h, 0.5), 0); /* empty */
    dp_hist_record_ns(h, 1000ull * 1000000000ull);    /* 1000 s saturates */
    assert_int_equal(dp_hist_quantile_ns(h, 0.5), DP_HIST_MAX_NS);
    assert_int_equal(dp_hist_sum_ns(h), 1000ull * 1000000000ull);
    dp_hist_record_ns(h, 5000);
    assert_true(dp_hist_quantile_ns(h, -1.0) > 5000); /* clamped to 0 */
    assert_true(dp_hist_quantile_ns(h, NAN) <= 5400); /* NaN as 0 */
    assert_int_equal(dp_hist_quantile_ns(h, 2.0), DP_HIST_MAX_NS);
    assert_true(dp_hist_quantile_ns(h, 0.5) <= 5400);
    free(h);
}

/* ---- merge ------------------------------------------------------------ */

static void test_merge(void **state)
{
    dp_hist_t *a = hist_new(), *b = hist_new(), *all = hist_new(), *m = hist_new();
    unsigned i;

    (void)state;
    for (i = 0; i < 50000; i++) {
        uint64_t x = sample(D_LOGNORMAL), y = sample(D_BIMODAL);
        dp_hist_record_ns(a, x);
        dp_hist_record_ns(b, y);
        dp_hist_record_ns(all, x);
        dp_hist_record_ns(all, y);
    }
    dp_hist_merge(m, a);
    dp_hist_merge(m, b);
    assert_int_equal(dp_hist_count(m), 100000);
    assert_int_equal(dp_hist_count(m), dp_hist_count(all));
    assert_int_equal(dp_hist_sum_ns(m), dp_hist_sum_ns(all));
    for (i = 0; i < DP_HIST_BUCKETS; i++)
        assert_int_equal(atomic_load(&m->buckets[i]), atomic_load(&all->buckets[i]));
    assert_int_equal(dp_hist_quantile_ns(m, 0.99), dp_hist_quantile_ns(all, 0.99));
    /* Merging into a non-empty histogram adds. */
    dp_hist_merge(m, a);
    assert_int_equal(dp_hist_count(m), 150000);
    free(a);
    free(b);
    free(all);
    free(m);
}

/* ---- rendering -------------------------------------------------------- */

/* Returns the sample value on the line that starts with `prefix`, or -1. */
static long long find_value(const char *text, const char *prefix)
{
    const char *p = text;
    size_t n = strlen(prefix);

    while (p != NULL && *p != '\0') {
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

static const char *const les[] = {
    "0.00005", "0.0001", "0.00015", "0.0002", "0.00025", "0.0003", "0.0004", "0.0005", "0.00075",
    "0.001",   "0.0015", "0.002",   "0.0025", "0.005",   "0.01",   "0.025",  "0.05",   "0.1",
    "0.25",    "0.5",    "1",       "2.5",    "5",       "10",     "+Inf"};

/* Checks that every line of a histogram rendering is well formed: `le` bounds
 * in the documented order, cumulative counts, +Inf == _count. Returns the
 * count, or -1 (with a message) when malformed; safe off the main thread. */
static long long check_hist_text(const char *text, const char *name, const char *labels)
{
    char prefix[256];
    long long prev = 0, v = 0, count;
    size_t i;

    for (i = 0; i < sizeof(les) / sizeof(les[0]); i++) {
        snprintf(prefix, sizeof(prefix), "%s_bucket{%s%sle=\"%s\"}", name, labels,
                 labels[0] != '\0' ? "," : "", les[i]);
        v = find_value(text, prefix);
        if (v < prev) {
            fprintf(stderr, "%s: %lld < %lld\n%s", prefix, v, prev, text);
            return -1;
        }
        prev = v;
    }
    snprintf(prefix, sizeof(prefix), labels[0] != '\0' ? "%s_count{%s}" : "%s_count%s", name,
             labels);
    count = find_value(text, prefix);
    if (count != v) {
        fprintf(stderr, "%s %lld != +Inf %lld\n%s", prefix, count, v, text);
        return -1;
    }
    return count;
}

static void test_render_counter_gauge(void **state)
{
    dp_mbuf_t b;

    (void)state;
    dp_mbuf_init(&b);
    assert_int_equal(dp_metrics_counter(&b, "weir_store_produce_bytes_total",
                                        "Bytes appended.\nBy produce \\ requests.", NULL, 42),
                     0);
    assert_string_equal(b.data,
                        "# HELP weir_store_produce_bytes_total Bytes appended.\\nBy produce \\\\ "
                        "requests.\n"
                        "# TYPE weir_store_produce_bytes_total counter\n"
                        "weir_store_produce_bytes_total 42\n");
    dp_mbuf_reset(&b);
    assert_int_equal(dp_metrics_family(&b, "weir_processor_records_in_total", "Records read.",
                                       DP_METRIC_COUNTER),
                     0);
    assert_int_equal(dp_metrics_counter(&b, "weir_processor_records_in_total", NULL,
                                        "input=\"orders\",partition=\"0\"", UINT64_MAX),
                     0);
    assert_int_equal(dp_metrics_counter(&b, "weir_processor_records_in_total", NULL,
                                        "input=\"orders\",partition=\"1\"", 7),
                     0);
    assert_string_equal(b.data,
                        "# HELP weir_processor_records_in_total Records read.\n"
                        "# TYPE weir_processor_records_in_total counter\n"
                        "weir_processor_records_in_total{input=\"orders\",partition=\"0\"} "
                        "18446744073709551615\n"
                        "weir_processor_records_in_total{input=\"orders\",partition=\"1\"} 7\n");
    dp_mbuf_reset(&b);
    assert_int_equal(dp_metrics_gauge(&b, "weir_processor_watermark_ms", "Watermark.", "", -5), 0);
    assert_string_equal(b.data, "# HELP weir_processor_watermark_ms Watermark.\n"
                                "# TYPE weir_processor_watermark_ms gauge\n"
                                "weir_processor_watermark_ms -5\n");
    dp_mbuf_reset(&b);
    assert_int_equal(dp_metrics_gauge(&b, "9bad", "x", NULL, 1), -EINVAL);
    assert_int_equal(dp_metrics_counter(&b, "bad-name", NULL, NULL, 1), -EINVAL);
    assert_int_equal(dp_metrics_family(&b, "", "x", DP_METRIC_GAUGE), -EINVAL);
    assert_int_equal(dp_metrics_hist(&b, "a b", NULL, NULL, NULL), -EINVAL);
    assert_int_equal(b.len, 0);
    dp_mbuf_dispose(&b);
}

static void test_render_hist(void **state)
{
    dp_hist_t *h = hist_new();
    dp_mbuf_t b;
    const char *name = "weir_store_fsync_seconds";
    unsigned i;

    (void)state;
    dp_mbuf_init(&b);
    /* Empty histogram: all zero, sum 0. */
    assert_int_equal(dp_metrics_hist(&b, name, "Fsync latency.", NULL, h), 0);
    assert_non_null(strstr(b.data, "# TYPE weir_store_fsync_seconds histogram\n"));
    assert_int_equal(check_hist_text(b.data, name, ""), 0);
    assert_non_null(strstr(b.data, "\nweir_store_fsync_seconds_sum 0.000000000\n"));

    /* Known values, well inside their `le` bounds. */
    dp_hist_record_ns(h, 40000);       /* 40 us  -> le 0.00005 */
    dp_hist_record_ns(h, 90000);       /* 90 us  -> le 0.0001 */
    dp_hist_record_ns(h, 3000000);     /* 3 ms   -> le 0.005 */
    dp_hist_record_ns(h, 3000000);     /* 3 ms   -> le 0.005 */
    dp_hist_record_ns(h, 700000000);   /* 700 ms -> le 1 */
    dp_hist_record_ns(h, 30000000000); /* 30 s   -> +Inf only */
    dp_mbuf_reset(&b);
    assert_int_equal(dp_metrics_hist(&b, name, NULL, "topic=\"t\"", h), 0);
    assert_null(strstr(b.data, "# HELP"));
    assert_int_equal(check_hist_text(b.data, name, "topic=\"t\""), 6);
    assert_int_equal(
        find_value(b.data, "weir_store_fsync_seconds_bucket{topic=\"t\",le=\"0.00005\"}"), 1);
    assert_int_equal(
        find_value(b.data, "weir_store_fsync_seconds_bucket{topic=\"t\",le=\"0.0001\"}"), 2);
    assert_int_equal(
        find_value(b.data, "weir_store_fsync_seconds_bucket{topic=\"t\",le=\"0.0025\"}"), 2);
    assert_int_equal(
        find_value(b.data, "weir_store_fsync_seconds_bucket{topic=\"t\",le=\"0.005\"}"), 4);
    assert_int_equal(find_value(b.data, "weir_store_fsync_seconds_bucket{topic=\"t\",le=\"0.5\"}"),
                     4);
    assert_int_equal(find_value(b.data, "weir_store_fsync_seconds_bucket{topic=\"t\",le=\"1\"}"),
                     5);
    assert_int_equal(find_value(b.data, "weir_store_fsync_seconds_bucket{topic=\"t\",le=\"10\"}"),
                     5);
    assert_int_equal(find_value(b.data, "weir_store_fsync_seconds_bucket{topic=\"t\",le=\"+Inf\"}"),
                     6);
    assert_non_null(strstr(b.data, "\nweir_store_fsync_seconds_sum{topic=\"t\"} 30.706130000\n"));

    /* No bucket ever counts a value above its bound: record values just
     * above and just below every bound and compare with exact counts. */
    dp_hist_init(h);
    for (i = 0; i < DP_METRICS_HIST_LE_COUNT; i++) {
        dp_hist_record_ns(h, dp_metrics_hist_le_ns[i] + 1);
        dp_hist_record_ns(h, dp_metrics_hist_le_ns[i] - dp_metrics_hist_le_ns[i] / 15);
    }
    dp_mbuf_reset(&b);
    assert_int_equal(dp_metrics_hist(&b, name, NULL, NULL, h), 0);
    assert_int_equal(check_hist_text(b.data, name, ""), 2 * DP_METRICS_HIST_LE_COUNT);
    for (i = 0; i < DP_METRICS_HIST_LE_COUNT; i++) {
        char prefix[128];

        /* Exactly the values below each bound: 2 per smaller bound + 1. */
        snprintf(prefix, sizeof(prefix), "%s_bucket{le=\"%s\"}", name, les[i]);
        assert_int_equal(find_value(b.data, prefix), 2 * i + 1);
    }
    dp_mbuf_dispose(&b);
    free(h);
}

static void test_mbuf(void **state)
{
    dp_mbuf_t b;
    char big[4096];
    size_t i;

    (void)state;
    dp_mbuf_init(&b);
    assert_null(b.data);
    memset(big, 'x', sizeof(big));
    for (i = 0; i < 100; i++)
        assert_int_equal(dp_mbuf_append(&b, big, sizeof(big)), 0);
    assert_int_equal(dp_mbuf_printf(&b, "%s-%d", "end", 7), 0);
    assert_int_equal(b.len, 100 * sizeof(big) + 5);
    assert_string_equal(b.data + 100 * sizeof(big), "end-7");
    assert_int_equal(strlen(b.data), b.len);
    /* Past the hard limit: sticky -ENOBUFS, contents unchanged. */
    while (b.len + sizeof(big) < DP_MBUF_MAX_BYTES)
        assert_int_equal(dp_mbuf_append(&b, big, sizeof(big)), 0);
    i = b.len;
    assert_int_equal(dp_mbuf_append(&b, big, sizeof(big)), -ENOBUFS);
    assert_int_equal(dp_mbuf_printf(&b, "x"), -ENOBUFS);
    assert_int_equal(b.len, i);
    assert_int_equal(strlen(b.data), b.len);
    assert_int_equal(dp_metrics_counter(&b, "ok_total", NULL, NULL, 1), -ENOBUFS);
    dp_mbuf_reset(&b);
    assert_int_equal(b.err, 0);
    assert_int_equal(dp_mbuf_printf(&b, "%d", 1), 0);
    assert_string_equal(b.data, "1");
    dp_mbuf_dispose(&b);
}

/* ---- concurrency ------------------------------------------------------ */

#define WRITES_PER_THREAD 500000

typedef struct {
    dp_hist_t *h;
    dp_counter_t *c;
    dp_gauge_t *g;
    atomic_int *done;
    unsigned seed;
    int failures; /* reader only */
    int scrapes;  /* reader only */
} conc_t;

static void *writer(void *arg)
{
    conc_t *c = arg;
    uint64_t x = c->seed;
    unsigned i;

    for (i = 0; i < WRITES_PER_THREAD; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        dp_hist_record_ns(c->h, (x >> 33) % 2000000000u);
        dp_counter_add(c->c, 1);
        dp_gauge_add(c->g, (i & 1) ? -1 : 1);
    }
    atomic_fetch_add(c->done, 1);
    return NULL;
}

static void *reader(void *arg)
{
    conc_t *c = arg;
    dp_mbuf_t b;
    long long last = 0, n;
    dp_hist_t *scratch = malloc(sizeof(*scratch));

    /* No cmocka asserts here: failures are counted for the main thread. */
    dp_mbuf_init(&b);
    while (scratch != NULL) {
        int fin = atomic_load(c->done) == 2; /* one last scrape after the writers */

        dp_mbuf_reset(&b);
        if (dp_metrics_hist(&b, "weir_test_seconds", NULL, NULL, c->h) != 0)
            c->failures++;
        n = check_hist_text(b.data, "weir_test_seconds", "");
        if (n < last) /* malformed, or not monotonic between scrapes */
            c->failures++;
        last = n;
        if (dp_counter_get(c->c) > 2 * WRITES_PER_THREAD)
            c->failures++;
        dp_hist_init(scratch);
        dp_hist_merge(scratch, c->h);
        (void)dp_hist_quantile_ns(scratch, 0.99);
        c->scrapes++;
        if (fin) {
            if (n != 2 * WRITES_PER_THREAD)
                c->failures++;
            break;
        }
    }
    if (scratch == NULL)
        c->failures++;
    dp_mbuf_dispose(&b);
    free(scratch);
    return NULL;
}

static void test_concurrency(void **state)
{
    dp_hist_t *h = hist_new();
    dp_counter_t c = {0};
    dp_gauge_t g = {0};
    atomic_int done = 0;
    conc_t w1 = {h, &c, &g, &done, 1, 0, 0}, w2 = {h, &c, &g, &done, 2, 0, 0};
    conc_t r = {h, &c, &g, &done, 0, 0, 0};
    pthread_t t1, t2, tr;
    uint64_t sum = 0;
    unsigned i;

    (void)state;
    assert_int_equal(pthread_create(&tr, NULL, reader, &r), 0);
    assert_int_equal(pthread_create(&t1, NULL, writer, &w1), 0);
    assert_int_equal(pthread_create(&t2, NULL, writer, &w2), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_join(tr, NULL);
    assert_int_equal(r.failures, 0);
    assert_true(r.scrapes > 0);
    assert_int_equal(dp_hist_count(h), 2 * WRITES_PER_THREAD);
    for (i = 0; i < DP_HIST_BUCKETS; i++)
        sum += atomic_load(&h->buckets[i]);
    assert_int_equal(sum, 2 * WRITES_PER_THREAD);
    assert_int_equal(dp_counter_get(&c), 2 * WRITES_PER_THREAD);
    assert_int_equal(dp_gauge_get(&g), 0);
    dp_gauge_set(&g, -3);
    assert_int_equal(dp_gauge_get(&g), -3);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_layout),
        cmocka_unit_test(test_quantile_accuracy),
        cmocka_unit_test(test_quantile_edges),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_render_counter_gauge),
        cmocka_unit_test(test_render_hist),
        cmocka_unit_test(test_mbuf),
        cmocka_unit_test(test_concurrency),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
