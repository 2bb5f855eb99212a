/* SPDX-License-Identifier: Apache-2.0 */
/* dp_metrics: histogram queries and merging, and Prometheus text exposition
 * (format 0.0.4) of counters, gauges and histograms into a growable buffer.
 * The hot-path updates are inline in dp_metrics.h. */
#include "dp_metrics.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Compile-time check that the last index fits the array. */
_Static_assert(16u * (36u - 10u) + 31u == DP_HIST_BUCKETS - 1, "DP_HIST_BUCKETS");

const uint64_t dp_metrics_hist_le_ns[DP_METRICS_HIST_LE_COUNT] = {
    50000,    100000,    150000,    200000,    250000,     300000,     400000,     500000,
    750000,   1000000,   1500000,   2000000,   2500000,    5000000,    10000000,   25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};

/* The same bounds as Prometheus `le` label values, in seconds. Finer from
 * 50 us to 2.5 ms, where the store's latency goal (0.5 ms) lives. */
static const char *const le_text[DP_METRICS_HIST_LE_COUNT] = {
    "0.00005", "0.0001", "0.00015", "0.0002", "0.00025", "0.0003", "0.0004", "0.0005",
    "0.00075", "0.001",  "0.0015",  "0.002",  "0.0025",  "0.005",  "0.01",   "0.025",
    "0.05",    "0.1",    "0.25",    "0.5",    "1",       "2.5",    "5",      "10",
};

/* ---- Histograms ------------------------------------------------------- */

/* Range number and sub-bucket of fine bucket i (inverse of dp_hist__index). */
static void bucket_split(unsigned i, unsigned *b, uint64_t *sub)
{
    assert(i < DP_HIST_BUCKETS);
    *b = i < 32 ? 0 : i / 16 - 1;
    *sub = i - 16u * *b;
}

uint64_t dp_hist__bucket_lo_ns(unsigned i)
{
    unsigned b;
    uint64_t sub;

    bucket_split(i, &b, &sub);
    return sub << (b + 6);
}

uint64_t dp_hist__bucket_hi_ns(unsigned i)
{
    unsigned b;
    uint64_t sub;

    bucket_split(i, &b, &sub);
    return (sub + 1) << (b + 6);
}

void dp_hist_init(dp_hist_t *h)
{
    unsigned i;

    assert(h != NULL);
    for (i = 0; i < DP_HIST_BUCKETS; i++)
        atomic_init(&h->buckets[i], 0);
    atomic_init(&h->count, 0);
    atomic_init(&h->sum_ns, 0);
}

/* Readers take a const histogram; C11 atomic_load wants a non-const object. */
static uint64_t load(const _Atomic uint64_t *p)
{
    return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_relaxed);
}

uint64_t dp_hist_count(const dp_hist_t *h)
{
    return load(&h->count);
}

uint64_t dp_hist_sum_ns(const dp_hist_t *h)
{
    return load(&h->sum_ns);
}

void dp_hist_merge(dp_hist_t *dst, const dp_hist_t *src)
{
    unsigned i;
    uint64_t v;

    assert(dst != NULL && src != NULL && dst != src);
    for (i = 0; i < DP_HIST_BUCKETS; i++) {
        v = load(&src->buckets[i]);
        if (v != 0)
            atomic_fetch_add_explicit(&dst->buckets[i], v, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&dst->count, load(&src->count), memory_order_relaxed);
    atomic_fetch_add_explicit(&dst->sum_ns, load(&src->sum_ns), memory_order_relaxed);
}

uint64_t dp_hist_quantile_ns(const dp_hist_t *h, double q)
{
    uint64_t snap[DP_HIST_BUCKETS];
    uint64_t n = 0, rank, cum = 0, out = 0;
    unsigned i;

    assert(h != NULL);
    /* Work on one pass of loads so that the rank and the walk agree even
     * while a writer is running. */
    for (i = 0; i < DP_HIST_BUCKETS; i++) {
        snap[i] = load(&h->buckets[i]);
        n += snap[i];
    }
    if (n == 0)
        goto out;
    if (!(q > 0.0)) /* also catches NaN */
        q = 0.0;
    if (q > 1.0)
        q = 1.0;
    rank = (uint64_t)(q * (double)n);
    if ((double)rank < q * (double)n)
        rank++;
    if (rank == 0)
        rank = 1;
    if (rank > n)
        rank = n;
    for (i = 0; i < DP_HIST_BUCKETS; i++) {
        cum += snap[i];
        if (cum >= rank) {
            out = dp_hist__bucket_hi_ns(i);
            break;
        }
    }
out:
    return out;
}

/* ---- Growable buffer -------------------------------------------------- */

void dp_mbuf_init(dp_mbuf_t *b)
{
    memset(b, 0, sizeof(*b));
}

void dp_mbuf_dispose(dp_mbuf_t *b)
{
    free(b->data);
    dp_mbuf_init(b);
}

void dp_mbuf_reset(dp_mbuf_t *b)
{
    b->len = 0;
    b->err = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

/* Makes room for `n` more bytes plus the NUL. */
static int reserve(dp_mbuf_t *b, size_t n)
{
    size_t want, cap;
    char *p;
    int rc = b->err;

    if (rc != 0)
        goto out;
    if (n >= DP_MBUF_MAX_BYTES || b->len + n >= DP_MBUF_MAX_BYTES) {
        rc = -ENOBUFS;
        goto out;
    }
    want = b->len + n + 1;
    if (want <= b->cap)
        goto out;
    cap = b->cap != 0 ? b->cap : 4096;
    while (cap < want)
        cap *= 2;
    p = realloc(b->data, cap);
    if (p == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    b->data = p;
    b->cap = cap;
out:
    b->err = rc;
    return rc;
}

int dp_mbuf_append(dp_mbuf_t *b, const char *s, size_t n)
{
    int rc = reserve(b, n);

    if (rc != 0)
        goto out;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
out:
    return rc;
}

int dp_mbuf_printf(dp_mbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    size_t room = b->cap - b->len;
    int n, rc = b->err;

    if (rc != 0)
        goto out;
    /* Try into the free space first; grow and format again if it did not
     * fit. A failed attempt only ever wrote past len, which the NUL below
     * (or the retry) takes back. */
    va_start(ap, fmt);
    n = vsnprintf(b->data != NULL ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        rc = b->err = -EINVAL;
        goto out;
    }
    rc = reserve(b, (size_t)n);
    if (rc != 0)
        goto out;
    if ((size_t)n >= room) {
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
out:
    if (b->data != NULL)
        b->data[b->len] = '\0';
    return rc;
}

/* ---- Prometheus exposition -------------------------------------------- */

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static bool name_ok(const char *name)
{
    const char *p;

    if (name == NULL || name[0] == '\0' || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (p = name; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':'))
            return false;
    }
    return true;
}

static const char *type_name(dp_metric_type_t type)
{
    switch (type) {
    case DP_METRIC_COUNTER:
        return "counter";
    case DP_METRIC_GAUGE:
        return "gauge";
    case DP_METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

int dp_metrics_family(dp_mbuf_t *buf, const char *name, const char *help, dp_metric_type_t type)
{
    const char *p;
    int rc;

    if (!name_ok(name)) {
        rc = -EINVAL;
        goto out;
    }
    dp_mbuf_printf(buf, "# HELP %s ", name);
    /* HELP text escapes only backslash and newline. */
    for (p = help != NULL ? help : ""; *p != '\0'; p++) {
        if (*p == '\\')
            dp_mbuf_append(buf, "\\\\", 2);
        else if (*p == '\n')
            dp_mbuf_append(buf, "\\n", 2);
        else
            dp_mbuf_append(buf, p, 1);
    }
    rc = dp_mbuf_printf(buf, "\n# TYPE %s %s\n", name, type_name(type));
out:
    return rc;
}

/* Writes `{labels}` or nothing. */
static void put_labels(dp_mbuf_t *buf, const char *labels)
{
    if (labels != NULL && labels[0] != '\0')
        dp_mbuf_printf(buf, "{%s}", labels);
}

int dp_metrics_counter(dp_mbuf_t *buf, const char *name, const char *help, const char *labels,
                       uint64_t value)
{
    int rc = 0;

    if (help != NULL)
        rc = dp_metrics_family(buf, name, help, DP_METRIC_COUNTER);
    else if (!name_ok(name))
        rc = -EINVAL;
    if (rc != 0)
        goto out;
    dp_mbuf_append(buf, name, strlen(name));
    put_labels(buf, labels);
    rc = dp_mbuf_printf(buf, " %" PRIu64 "\n", value);
out:
    return rc;
}

int dp_metrics_gauge(dp_mbuf_t *buf, const char *name, const char *help, const char *labels,
                     int64_t value)
{
    int rc = 0;

    if (help != NULL)
        rc = dp_metrics_family(buf, name, help, DP_METRIC_GAUGE);
    else if (!name_ok(name))
        rc = -EINVAL;
    if (rc != 0)
        goto out;
    dp_mbuf_append(buf, name, strlen(name));
    put_labels(buf, labels);
    rc = dp_mbuf_printf(buf, " %" PRId64 "\n", value);
out:
    return rc;
}

int dp_metrics_hist(dp_mbuf_t *buf, const char *name, const char *help, const char *labels,
                    const dp_hist_t *h)
{
    uint64_t cum = 0, sum_ns;
    unsigned i, le = 0;
    const char *sep = labels != NULL && labels[0] != '\0' ? "," : "";
    int rc = 0;

    if (labels == NULL)
        labels = "";
    if (help != NULL)
        rc = dp_metrics_family(buf, name, help, DP_METRIC_HISTOGRAM);
    else if (!name_ok(name))
        rc = -EINVAL;
    if (rc != 0)
        goto out;
    /* Walk the fine buckets once, closing each `le` bound as soon as the
     * next fine bucket could hold a value above it. Every bucket is loaded
     * exactly once, so the output is cumulative even under concurrent
     * writes, and _count (the +Inf value) matches the buckets. */
    for (i = 0; i < DP_HIST_BUCKETS; i++) {
        while (le < DP_METRICS_HIST_LE_COUNT &&
               dp_hist__bucket_hi_ns(i) - 1 > dp_metrics_hist_le_ns[le]) {
            dp_mbuf_printf(buf, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels, sep,
                           le_text[le], cum);
            le++;
        }
        cum += load(&h->buckets[i]);
    }
    for (; le < DP_METRICS_HIST_LE_COUNT; le++)
        dp_mbuf_printf(buf, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels, sep,
                       le_text[le], cum);
    dp_mbuf_printf(buf, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, cum);
    /* Seconds with nanosecond precision, printed exactly (no double). */
    sum_ns = load(&h->sum_ns);
    dp_mbuf_printf(buf, "%s_sum", name);
    put_labels(buf, labels);
    dp_mbuf_printf(buf, " %" PRIu64 ".%09" PRIu64 "\n", sum_ns / 1000000000u, sum_ns % 1000000000u);
    dp_mbuf_printf(buf, "%s_count", name);
    put_labels(buf, labels);
    rc = dp_mbuf_printf(buf, " %" PRIu64 "\n", cum);
out:
    return rc;
}
