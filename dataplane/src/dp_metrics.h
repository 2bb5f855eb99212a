/* SPDX-License-Identifier: Apache-2.0 */
/* dp_metrics: lock-free counters, gauges and log-linear latency histograms that
 * worker threads update with relaxed atomics, plus Prometheus text rendering
 * for the HTTP thread. See docs/internals/metrics-http.md. */
#ifndef DP_METRICS_H
#define DP_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Counters and gauges ---------------------------------------------- */

/** Monotonic counter. Zero-initialise (static storage or memset) to use. */
typedef struct dp_counter {
    _Atomic uint64_t v; /**< current value; use the accessors */
} dp_counter_t;

/** Adds `v` to `c` (relaxed; safe from any number of threads). */
static inline void dp_counter_add(dp_counter_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(&c->v, v, memory_order_relaxed);
}

/** Reads `c` (relaxed). */
static inline uint64_t dp_counter_get(const dp_counter_t *c)
{
    return atomic_load_explicit(&((dp_counter_t *)c)->v, memory_order_relaxed);
}

/** Signed gauge. Zero-initialise to use. */
typedef struct dp_gauge {
    _Atomic int64_t v; /**< current value; use the accessors */
} dp_gauge_t;

/** Sets `g` to `v` (relaxed). */
static inline void dp_gauge_set(dp_gauge_t *g, int64_t v)
{
    atomic_store_explicit(&g->v, v, memory_order_relaxed);
}

/** Adds `v` (may be negative) to `g` (relaxed). */
static inline void dp_gauge_add(dp_gauge_t *g, int64_t v)
{
    atomic_fetch_add_explicit(&g->v, v, memory_order_relaxed);
}

/** Reads `g` (relaxed). */
static inline int64_t dp_gauge_get(const dp_gauge_t *g)
{
    return atomic_load_explicit(&((dp_gauge_t *)g)->v, memory_order_relaxed);
}

/* ---- Histograms ------------------------------------------------------- */

/*
 * Layout (HdrHistogram with 64 ns units and 32 sub-buckets, half of them
 * linear per power of two). Range b >= 0 covers [2^(b+10), 2^(b+11)) ns for
 * b >= 1 and [0, 2048) ns for b = 0, split into sub-buckets of 2^(b+6) ns:
 *
 *     b     = max(0, floor(log2(ns)) - 10)
 *     index = 16 * b + (ns >> (b + 6))
 *
 * so every bucket from 1024 ns up is at most 1/16 of its lower edge wide.
 * Values at or above DP_HIST_MAX_NS (2^37 ns, about 137 s) land in the last
 * bucket; _sum stays exact.
 */
/** Number of fine buckets. */
#define DP_HIST_BUCKETS 448
/** First value (ns) that no longer has its own bucket: 2^37, about 137 s. */
#define DP_HIST_MAX_NS (UINT64_C(1) << 37)

/**
 * A fixed log-linear latency histogram in nanoseconds; no allocation.
 * Zero-initialise (or dp_hist_init) to use. Normally one writer per histogram
 * (each worker owns its own) and any number of concurrent readers; several
 * writers are also safe, since every update is an atomic add. A reader sees
 * each bucket exactly but the set of buckets, count and sum need not be a
 * single instant's snapshot.
 */
typedef struct dp_hist {
    _Atomic uint64_t buckets[DP_HIST_BUCKETS]; /**< per-bucket counts */
    _Atomic uint64_t count;                    /**< number of records */
    _Atomic uint64_t sum_ns;                   /**< sum of recorded values */
} dp_hist_t;

/** Fine-bucket index of value `ns` (internal; exposed for the inline path). */
static inline unsigned dp_hist__index(uint64_t ns)
{
    unsigned b;

    if (ns >= DP_HIST_MAX_NS)
        ns = DP_HIST_MAX_NS - 1;
    /* `| 2047` puts everything below 2048 ns in range 0 (64 ns steps). */
    b = (unsigned)(63 - __builtin_clzll(ns | 2047u)) - 10u;
    return 16u * b + (unsigned)(ns >> (b + 6u));
}

/** Records one value of `ns` nanoseconds: three relaxed atomic adds. */
static inline void dp_hist_record_ns(dp_hist_t *h, uint64_t ns)
{
    atomic_fetch_add_explicit(&h->buckets[dp_hist__index(ns)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

/** Zeroes `h`. Not atomic as a whole: no concurrent writer may run. */
void dp_hist_init(dp_hist_t *h);

/** Number of values recorded (relaxed read). */
uint64_t dp_hist_count(const dp_hist_t *h);

/** Sum of values recorded, in ns (relaxed read). */
uint64_t dp_hist_sum_ns(const dp_hist_t *h);

/**
 * Adds every bucket, the count and the sum of `src` into `dst`, e.g. to
 * aggregate per-worker histograms into a scratch one on the HTTP thread.
 * Safe while `src` is being written (its concurrent records may or may not be
 * included) and while `dst` is being read.
 */
void dp_hist_merge(dp_hist_t *dst, const dp_hist_t *src);

/**
 * The value at quantile `q` (clamped to [0, 1]): the exclusive upper edge of
 * the fine bucket holding the ceil(q * n)-th smallest record (at least the
 * first). It is never below the true value and, for values >= 1024 ns, at
 * most 1/16 above it (below 1024 ns, at most 64 ns above). 0 when empty.
 */
uint64_t dp_hist_quantile_ns(const dp_hist_t *h, double q);

/** Inclusive lower edge of fine bucket `i` in ns (internal; for tests). */
uint64_t dp_hist__bucket_lo_ns(unsigned i);

/** Exclusive upper edge of fine bucket `i` in ns (internal; for tests). */
uint64_t dp_hist__bucket_hi_ns(unsigned i);

/* ---- Prometheus text rendering ---------------------------------------- */

/** Hard limit on one rendered page; appends beyond it fail with -ENOBUFS. */
#define DP_MBUF_MAX_BYTES (16u << 20)

/**
 * A growable, NUL-terminated char buffer for rendering (not the hot path).
 * Embedded by the caller: dp_mbuf_init, appends, dp_mbuf_dispose. The first
 * failure (-ENOMEM, -ENOBUFS) is sticky: later appends do nothing and return
 * it, so a renderer may append everything and check `err` once.
 */
typedef struct dp_mbuf {
    char *data; /**< NUL-terminated contents (NULL until the first append) */
    size_t len; /**< bytes used, excluding the NUL */
    size_t cap; /**< bytes allocated */
    int err;    /**< 0 or the first -errno */
} dp_mbuf_t;

/** Initialises an empty buffer; allocates nothing. */
void dp_mbuf_init(dp_mbuf_t *b);

/** Frees the contents and re-initialises `b`. */
void dp_mbuf_dispose(dp_mbuf_t *b);

/** Empties `b`, keeping its allocation, and clears `err`. */
void dp_mbuf_reset(dp_mbuf_t *b);

/** Appends `n` bytes. Returns 0 or the (sticky) -errno. */
int dp_mbuf_append(dp_mbuf_t *b, const char *s, size_t n);

/** Appends printf-formatted text. Returns 0 or the (sticky) -errno. */
int dp_mbuf_printf(dp_mbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Prometheus metric types, as written on the # TYPE line. */
typedef enum dp_metric_type {
    DP_METRIC_COUNTER,
    DP_METRIC_GAUGE,
    DP_METRIC_HISTOGRAM,
} dp_metric_type_t;

/**
 * Writes the "# HELP" and "# TYPE" lines of family `name`. Call it once per
 * name, before that family's samples; `help` is escaped as the format needs.
 * Returns 0, -EINVAL for an invalid metric name, or the buffer's -errno.
 */
int dp_metrics_family(dp_mbuf_t *buf, const char *name, const char *help, dp_metric_type_t type);

/*
 * Sample writers. `labels` is the inside of the braces, already escaped:
 * `topic="orders",partition="3"`, or NULL / "" for none. When `help` is
 * non-NULL the family header is written first (dp_metrics_family), which
 * suits a single-series metric; for a family of several series pass `help`
 * on the first sample only (or call dp_metrics_family and pass NULL on all).
 * Each returns 0, -EINVAL for an invalid name, or the buffer's -errno.
 */

/** Writes counter sample `name{labels} value`. See the note above. */
int dp_metrics_counter(dp_mbuf_t *buf, const char *name, const char *help, const char *labels,
                       uint64_t value);

/** Writes gauge sample `name{labels} value`. See the note above. */
int dp_metrics_gauge(dp_mbuf_t *buf, const char *name, const char *help, const char *labels,
                     int64_t value);

/**
 * Writes histogram `h` in seconds: `name_bucket{labels,le="..."}` for every
 * bound in dp_metrics_hist_le_ns (0.00005 .. 10, then +Inf), `name_sum` and
 * `name_count`. A fine bucket counts under the first `le` at or above its
 * largest value, so a bucket never includes a value above its `le` but may
 * miss values up to 1/16 below it. _count is the +Inf bucket (the sum of the
 * buckets read), so the two always agree. `name` is the base name, e.g.
 * "weir_store_fsync_seconds".
 */
int dp_metrics_hist(dp_mbuf_t *buf, const char *name, const char *help, const char *labels,
                    const dp_hist_t *h);

/** Number of finite `le` bounds dp_metrics_hist writes (+Inf comes after). */
#define DP_METRICS_HIST_LE_COUNT 24

/**
 * The finite `le` bounds, in ns: 50 100 150 200 250 300 400 500 750 us, 1 1.5 2
 * 2.5 5 10 25 50 100 250 500 ms, 1 2.5 5 10 s.
 */
extern const uint64_t dp_metrics_hist_le_ns[DP_METRICS_HIST_LE_COUNT];

#endif
