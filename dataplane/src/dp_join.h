/* SPDX-License-Identifier: Apache-2.0 */
/* dp_join: the join operator's state engine. Window, interval and
 * stream-table joins over two inputs (side 0 left, side 1 right): the caller
 * evaluates the join keys and the event time, this module keeps copies of the
 * records it must remember, emits joined pairs through a callback and frees
 * state as the watermark advances. Pure and single-threaded: no I/O, no
 * clock, no locks. Design and semantics: docs/internals/joins.md. */
#ifndef DP_JOIN_H
#define DP_JOIN_H

#include "dp_ser.h"
#include "dp_val.h"

#include <stddef.h>
#include <stdint.h>

/** dp_join_add results (errors are negative errno values). */
#define DP_JOIN_OK 0    /**< stored, or emitted at once (table join stream side) */
#define DP_JOIN_LATE 1  /**< not stored: its window fired / its partners expired */
#define DP_JOIN_NOKEY 2 /**< key MISSING/NULL/NaN: emitted unmatched or dropped (counted) */

/** Sides, the `side` argument of dp_join_add. */
#define DP_JOIN_SIDE_LEFT 0
#define DP_JOIN_SIDE_RIGHT 1

/** Most windows one record may belong to (hopping: ceil(size / slide)). */
#define DP_JOIN_MAX_HOPS 256

/** Timestamps, window sizes and bounds must lie within +-2^60 ms. */
#define DP_JOIN_TIME_LIMIT_MS ((int64_t)1 << 60)

/** Join kinds: the pipeline spec's opJoin `kind`. */
typedef enum dp_join_kind {
    DP_JOIN_WINDOW = 0, /**< both sides buffered per (window, key), emitted when the window fires */
    DP_JOIN_INTERVAL,   /**< right b joins left a when a.ts + lower <= b.ts <= a.ts + upper */
    DP_JOIN_TABLE,      /**< right is a table (latest value per key), left a stream */
} dp_join_kind_t;

/** Join types: the pipeline spec's opJoin `joinType`. */
typedef enum dp_join_type {
    DP_JOIN_INNER = 0,
    DP_JOIN_LEFT, /**< plus unmatched left records, right = NULL */
    DP_JOIN_FULL, /**< plus unmatched right records, left = NULL (window joins only) */
} dp_join_type_t;

/** Window shapes: the spec's windowShape `kind`. Session is not supported. */
typedef enum dp_join_win {
    DP_JOIN_WIN_TUMBLING = 0,
    DP_JOIN_WIN_HOPPING,
    DP_JOIN_WIN_SESSION, /**< rejected by dp_join_new with -ENOTSUP */
} dp_join_win_t;

/** Configuration, copied by dp_join_new. Zero fields not used by the kind. */
typedef struct dp_join_cfg {
    dp_join_kind_t kind;
    dp_join_type_t type;
    dp_join_win_t win;        /**< window joins: shape */
    int64_t size_ms;          /**< window joins: window length */
    int64_t slide_ms;         /**< hopping: window start spacing (<= size_ms) */
    int64_t lower_ms;         /**< interval joins: lower bound (may be negative) */
    int64_t upper_ms;         /**< interval joins: upper bound (>= lower_ms) */
    int64_t bucket_ms;        /**< interval joins: expiry granularity; 0: (upper-lower)/8, min 1 */
    size_t state_limit_bytes; /**< state budget (spec state.maxBytes share); 0: unlimited */
} dp_join_cfg_t;

/**
 * A record as stored (or, for the stream side of a table join and for
 * unmatched records whose key cannot match, as viewed in the caller's row).
 * All pointers are owned by the join and valid only during the emit callback.
 */
typedef struct dp_join_rec {
    int64_t event_ms;     /**< event time given to dp_join_add */
    int64_t ts_ms;        /**< the record's own timestamp (dp_row_t.ts_ms) */
    int64_t offset;       /**< source offset (-1: none) */
    const char *payload;  /**< NULL: none (distinct from empty) */
    const char *key;      /**< record key bytes; NULL: none */
    const dp_hdr_t *hdrs; /**< nhdrs headers; NULL value: null header */
    uint32_t payload_len;
    uint32_t key_len;
    uint32_t nhdrs;
    int32_t partition; /**< source partition (-1: none) */
} dp_join_rec_t;

/** One output row: a matched pair, or one side with the other NULL. */
typedef struct dp_join_pair {
    const dp_join_rec_t *left;  /**< NULL: unmatched right record (full join) */
    const dp_join_rec_t *right; /**< NULL: unmatched left record (left/full join) */
    const dp_val_t *key;        /**< the join key (borrowed) */
    int64_t event_ms;           /**< window/interval: max of both sides; table: the stream's */
    int64_t win_start_ms;       /**< window joins: [start, end); 0 otherwise */
    int64_t win_end_ms;
} dp_join_pair_t;

/**
 * Receives each output row. Runs inside dp_join_add or dp_join_advance; it
 * must not call back into the same dp_join_t. Everything `p` points to is
 * borrowed and valid only until the callback returns.
 */
typedef void (*dp_join_emit_cb)(void *ctx, const dp_join_pair_t *p);

/** Counters. "Records" count stored copies (a hopping record once per window). */
typedef struct dp_join_stats {
    uint64_t added[2];     /**< records accepted, per side (once per dp_join_add) */
    uint64_t late[2];      /**< DP_JOIN_LATE returns */
    uint64_t late_partial; /**< hopping: accepted, but some of its windows had fired */
    uint64_t nokey[2];     /**< DP_JOIN_NOKEY returns */
    uint64_t dropped[2];   /**< records that left without output (inner misses, NOKEY drops) */
    uint64_t denied;       /**< -ENOBUFS returns */
    uint64_t pairs;        /**< matched rows emitted */
    uint64_t unmatched;    /**< one-sided rows emitted */
    uint64_t expired[2];   /**< stored records freed by the watermark */
    uint64_t windows_fired;
    uint64_t tombstones; /**< table joins: keys deleted */
    uint64_t records;    /**< stored records now */
} dp_join_stats_t;

typedef struct dp_join dp_join_t;

/** Checks a configuration: 0, -EINVAL (bad numbers) or -ENOTSUP (session, full interval/table). */
int dp_join_cfg_check(const dp_join_cfg_t *cfg);

/**
 * Creates an empty join in *jp. Returns 0, or an error of dp_join_cfg_check,
 * or -ENOMEM; on error *jp is NULL and `emit` is never called.
 */
int dp_join_new(dp_join_t **jp, const dp_join_cfg_t *cfg, dp_join_emit_cb emit, void *ctx);

/** Frees the join and all its state (NULL is ignored). Emits nothing. */
void dp_join_free(dp_join_t *j);

/**
 * Adds one record of `side`. `key` is the evaluated join key (borrowed; an
 * ERR key is a programmer error: dead-letter it first), `event_ms` its event
 * time, `rec` the row (borrowed; payload, record key and headers are copied
 * if kept). May emit rows before returning (interval and table joins).
 * Returns DP_JOIN_OK, DP_JOIN_LATE, DP_JOIN_NOKEY, or
 *  -ENOBUFS   the state budget would be exceeded: nothing was stored or
 *             emitted; pause inputs, advance the watermark, retry;
 *  -EMSGSIZE  the record can never fit the budget (dead-letter it);
 *  -ERANGE    event_ms outside +-DP_JOIN_TIME_LIMIT_MS;
 *  -ENOMEM    malloc failed (nothing stored or emitted).
 */
int dp_join_add(dp_join_t *j, int side, const dp_val_t *key, int64_t event_ms, const dp_row_t *rec);

/**
 * Advances the watermark: no record with event time < watermark_ms is
 * expected any more. Fires window joins' windows with end <= watermark
 * (emitting their rows), expires interval state; a smaller value than the
 * current watermark is ignored.
 */
void dp_join_advance(dp_join_t *j, int64_t watermark_ms);

/** The current watermark (INT64_MIN before the first advance). */
int64_t dp_join_watermark(const dp_join_t *j);

/** Bytes held for state (arena chunks, tables, entries), as charged to the budget. */
size_t dp_join_state_bytes(const dp_join_t *j);

/** Counters (borrowed, live). */
const dp_join_stats_t *dp_join_stats(const dp_join_t *j);

/** Appends the state (not the counters) to `w`. Returns 0 or w->err. */
int dp_join_save(const dp_join_t *j, dp_ser_w_t *w);

/**
 * Restores state saved by a join with the same configuration into a fresh
 * one (nothing added yet), consuming its section of `r`. Returns 0;
 * -EBADMSG for damaged bytes or another configuration; -ENOMEM; -EINVAL if
 * `j` is not empty. On error the join is left empty. The budget is not
 * enforced on load: a larger checkpoint loads, and adds see -ENOBUFS until
 * the watermark frees enough.
 */
int dp_join_load(dp_join_t *j, dp_ser_r_t *r);

#endif
