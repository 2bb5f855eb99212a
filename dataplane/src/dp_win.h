/* SPDX-License-Identifier: Apache-2.0 */
/* dp_win: the keyed window operator's state engine. Tumbling, hopping and
 * session windows over values the caller has already evaluated (key and one
 * input per aggregation); watermark-driven firing, allowed lateness with
 * DROP / UPSERT / SIDE_OUTPUT, early and idle (partial) emission, a byte
 * budget that answers -ENOBUFS instead of growing, and checkpoint save/load.
 * Pure and single-threaded: one worker owns a dp_win_t. Design and rules:
 * docs/internals/windows.md. */
#ifndef DP_WIN_H
#define DP_WIN_H

#include "dp_ser.h"
#include "dp_val.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Most aggregations per operator (the pipeline schema's maxItems). */
#define DP_WIN_AGGS_MAX 64

/** Largest accepted duration (size, slide, gap, lateness, timers): 2^40 ms, ~35 years. */
#define DP_WIN_DURATION_MAX ((int64_t)1 << 40)

/** Accepted record times are within +-2^62 ms so window arithmetic cannot overflow. */
#define DP_WIN_TS_LIMIT ((int64_t)1 << 62)

/** Window shapes. */
typedef enum dp_win_kind {
    DP_WIN_TUMBLING = 0, /**< [k*size, (k+1)*size) */
    DP_WIN_HOPPING,      /**< [k*slide, k*slide+size), slide <= size */
    DP_WIN_SESSION,      /**< per key: records closer than gap_ms share a session */
} dp_win_kind_t;

/** Time domain. For PROCESSING the caller passes now_ms as record time and watermark. */
typedef enum dp_win_time {
    DP_WIN_EVENT_TIME = 0,
    DP_WIN_PROCESSING_TIME,
} dp_win_time_t;

/** Aggregation functions. */
typedef enum dp_win_fn {
    DP_WIN_COUNT = 0, /**< records in the window; its input is ignored */
    DP_WIN_SUM,       /**< INT stays INT, overflow or any DOUBLE makes it DOUBLE */
    DP_WIN_MIN,       /**< numbers (numerically) or strings (bytewise); numbers < strings */
    DP_WIN_MAX,
    DP_WIN_AVG,   /**< DOUBLE */
    DP_WIN_FIRST, /**< value with the smallest event time, ties: earliest arrival */
    DP_WIN_LAST,  /**< value with the largest event time, ties: latest arrival */
} dp_win_fn_t;

/** What happens to a record whose windows are all purged (end + lateness <= watermark). */
typedef enum dp_win_late {
    DP_WIN_LATE_DROP = 0,
    DP_WIN_LATE_UPSERT,      /**< same as DROP beyond lateness; see windows.md */
    DP_WIN_LATE_SIDE_OUTPUT, /**< dp_win_add returns DP_WIN_LATE_SIDE */
} dp_win_late_t;

/** dp_win_add results (non-negative); errors are negative errno. */
enum {
    DP_WIN_OK = 0,            /**< added to open windows only */
    DP_WIN_LATE_DROPPED = 1,  /**< all its windows are purged; the record was not added */
    DP_WIN_LATE_SIDE = 2,     /**< as DROPPED, and the caller routes it to the side output */
    DP_WIN_LATE_UPSERTED = 3, /**< added to at least one fired-but-kept window, re-emitted UPSERT */
};

/** Result flags (dp_win_result_t.flags). Exactly one of them is set. */
#define DP_WIN_F_FINAL 0x1u   /**< the watermark passed the window's end */
#define DP_WIN_F_EARLY 0x2u   /**< periodic result of a still-open window */
#define DP_WIN_F_PARTIAL 0x4u /**< idle release: the window's state is dropped after this */
#define DP_WIN_F_UPSERT 0x8u  /**< a late record changed a fired window: replaces its result */

/** One kept record (keep_records), valid during the emit callback only. */
typedef struct dp_win_rec {
    const char *payload; /**< NULL when the record had none */
    const dp_hdr_t *hdrs;
    int64_t ts_ms; /**< the time it was added with */
    uint32_t payload_len;
    uint32_t nhdrs;
} dp_win_rec_t;

/** One emitted window result; everything is borrowed for the callback's duration. */
typedef struct dp_win_result {
    dp_val_t key;
    int64_t start_ms;
    int64_t end_ms;       /**< exclusive */
    const dp_val_t *aggs; /**< naggs values; NULL value for no non-null input */
    uint32_t naggs;
    uint32_t flags;           /**< one DP_WIN_F_* */
    uint64_t count;           /**< records in the window */
    const dp_win_rec_t *recs; /**< keep_records: the records in arrival order */
    uint32_t nrecs;
} dp_win_result_t;

/** Emission callback. It must not call back into the same dp_win_t. */
typedef void (*dp_win_emit_cb)(void *ctx, const dp_win_result_t *r);

/** Operator configuration (copied by dp_win_new). */
typedef struct dp_win_cfg {
    dp_win_kind_t kind;
    dp_win_time_t time;
    int64_t size_ms;  /**< TUMBLING, HOPPING */
    int64_t slide_ms; /**< HOPPING */
    int64_t gap_ms;   /**< SESSION */
    uint32_t naggs;
    dp_win_fn_t aggs[DP_WIN_AGGS_MAX];
    dp_win_late_t late_mode;
    int64_t allowed_lateness_ms;
    int64_t early_firing_ms;  /**< 0: off */
    int64_t idle_timeout_ms;  /**< 0: off (srp.window.idle.timeout) */
    bool keep_records;        /**< windows keep copies of their records for a UDF */
    size_t state_limit_bytes; /**< 0: unlimited */
    dp_win_emit_cb emit;
    void *ctx;
} dp_win_cfg_t;

/** Counters (monotonic, saved in checkpoints). */
typedef struct dp_win_stats {
    uint64_t added;         /**< records accepted */
    uint64_t late_dropped;  /**< DP_WIN_LATE_DROPPED results */
    uint64_t late_side;     /**< DP_WIN_LATE_SIDE results */
    uint64_t late_upserted; /**< DP_WIN_LATE_UPSERTED results */
    uint64_t fired;         /**< FINAL emissions */
    uint64_t early;         /**< EARLY emissions */
    uint64_t partial;       /**< PARTIAL emissions */
    uint64_t upserts;       /**< UPSERT emissions */
    uint64_t enobufs;       /**< adds refused by the budget */
} dp_win_stats_t;

typedef struct dp_win dp_win_t;

/**
 * Creates an empty operator. Returns 0 and *out, -EINVAL for an invalid
 * configuration (sizes <= 0 or > DP_WIN_DURATION_MAX, slide > size, no emit
 * callback, naggs > DP_WIN_AGGS_MAX, unknown enum) or -ENOMEM.
 */
int dp_win_new(const dp_win_cfg_t *cfg, dp_win_t **out);

/** Frees the operator and all its state (NULL is ignored). Nothing is emitted. */
void dp_win_free(dp_win_t *w);

/**
 * Adds one record. `key` and the `agg_in` values (cfg.naggs of them, COUNT's
 * entry ignored; may be NULL when naggs is 0) are borrowed; strings are
 * copied. `rec` is required with keep_records and ignored otherwise. `now_ms`
 * is processing time (idle timeout). Returns a DP_WIN_* result, or before
 * changing any state: -EINVAL (an ERR key or input, a non-numeric SUM/AVG
 * input, a BOOL MIN/MAX input, ts out of range: dead-letter the record),
 * -ENOBUFS (the budget is full: retry the same record after the watermark
 * advanced), -EMSGSIZE (the record alone exceeds the budget), -ENOMEM.
 * A late-accepted record emits UPSERT results through the callback before
 * returning. Processing time only moves forward: a smaller now_ms than seen
 * before is read as the largest seen.
 */
int dp_win_add(dp_win_t *w, const dp_val_t *key, int64_t ts_ms, const dp_val_t *agg_in,
               const dp_row_t *rec, int64_t now_ms);

/**
 * Moves time forward (a smaller watermark or now is ignored): emits FINAL for
 * windows with end <= watermark_ms (by end, then key insertion order), purges
 * state past allowed lateness, releases idle keys' open windows (PARTIAL) and
 * emits EARLY results when early_firing_ms of processing time have passed.
 */
void dp_win_advance(dp_win_t *w, int64_t watermark_ms, int64_t now_ms);

/** Live state bytes (the figure checked against state_limit_bytes). */
size_t dp_win_state_bytes(const dp_win_t *w);

/** Number of keys with state. */
size_t dp_win_keys(const dp_win_t *w);

/** Current watermark (INT64_MIN before the first advance). */
int64_t dp_win_watermark(const dp_win_t *w);

/** Counters (borrowed, live). */
const dp_win_stats_t *dp_win_stats(const dp_win_t *w);

/**
 * Appends the complete state to `out` (check out->err for -ENOMEM). Returns
 * 0 or out->err.
 */
int dp_win_save(const dp_win_t *w, dp_ser_w_t *out);

/**
 * Replaces the state with one read from `in` (saved by an operator with the
 * same shape: kind, sizes, time domain, aggregations, keep_records).
 * Returns 0, -EBADMSG (mismatch or damaged input; the state is left empty)
 * or -ENOMEM (state left empty). The budget is not enforced while loading.
 */
int dp_win_load(dp_win_t *w, dp_ser_r_t *in);

#endif
