/* SPDX-License-Identifier: Apache-2.0 */
/* dp_pipe: a compiled pipeline (docs/architecture.md section 3) as a pure,
 * single-threaded engine. Records go in (already read from Kafka, or made
 * by the in-process Nexmark generator); output records come out through a
 * callback. No I/O happens here: dp_proc owns librdkafka, the clock, the
 * checkpoint files and backpressure, so the engine can be unit-tested on
 * crafted streams and benchmarked without a broker.
 *
 * Per record: decode the fields the pipeline reads into slots (dp_fields),
 * take the event time, advance that partition's watermark, then run the
 * operator DAG depth-first (filter, map, window, join, udf hook). Output
 * payloads are encoded only at the sink, and only when they changed. */
#ifndef DP_PIPE_H
#define DP_PIPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_ser.h"
#include "dp_val.h"
#include "dp_win.h"

typedef struct dp_pipe dp_pipe_t;

/** Output index of the dead-letter output in dp_pipe_out_t.output. */
#define DP_PIPE_DLQ UINT32_MAX

/**
 * One output record, valid only during the emit callback. For the
 * dead-letter output, the headers carry `weir.error`, `weir.source.topic`,
 * `weir.source.partition`, `weir.source.offset` (and the original headers),
 * and the payload and key are the original bytes.
 */
typedef struct dp_pipe_out {
    uint32_t output;      /**< index into spec outputs[], or DP_PIPE_DLQ */
    const char *key;      /**< record key (NULL: none) */
    const char *payload;  /**< payload bytes (NULL: none) */
    const dp_hdr_t *hdrs; /**< headers, incl. `watermark`/`eventtime` when enabled */
    const char *part_key; /**< bytes to hash for the partition (murmur2, as Kafka); NULL: use key */
    int64_t ts_ms;        /**< record timestamp to write */
    uint32_t key_len;
    uint32_t payload_len;
    uint32_t nhdrs;
    uint32_t part_key_len;
} dp_pipe_out_t;

/** Output callback. Must not call back into the pipe. */
typedef void (*dp_pipe_emit_cb)(void *ctx, const dp_pipe_out_t *out);

/**
 * One call to a UDF (operators of type udf, and windows with `udf`), handed
 * to dp_pipe_opts_t.udf_submit. Everything is borrowed for the duration of
 * the submit call: the UDF channel copies what it sends and keeps `op` and
 * the source fields to echo them in its dp_pipe_udf_reply_t.
 */
typedef struct dp_pipe_udf_req {
    uint32_t op;              /**< operator index in spec operators[] */
    uint32_t udf;             /**< index in spec udfs[] */
    const char *key;          /**< record key (NULL: none) */
    const char *payload;      /**< record payload, encoded (NULL: none; window calls: NULL) */
    const dp_hdr_t *hdrs;     /**< record headers (window calls: none) */
    const dp_win_rec_t *recs; /**< window calls: the window's records, in arrival order */
    int64_t event_ms;         /**< event time of the record (window: end - 1) */
    int64_t ts_ms;            /**< record timestamp */
    int64_t win_start_ms;     /**< window calls: [start, end) */
    int64_t win_end_ms;
    int64_t offset;    /**< source offset (-1: a derived record) */
    int32_t partition; /**< source partition (-1: a derived record) */
    uint32_t input;    /**< source input index (UINT32_MAX: a derived record) */
    uint32_t key_len;
    uint32_t payload_len;
    uint32_t nhdrs;
    uint32_t nrecs;
    bool window;  /**< a window call (GrpcPayloadCollection of recs) */
    bool partial; /**< window calls: idle release (srp `partial` header) */
} dp_pipe_udf_req_t;

/**
 * Submits a UDF call asynchronously. Returns 0 when the channel took the call
 * (it must later answer with dp_pipe_udf_result, success or failure), or a
 * negative errno: the record is then dead-lettered with that error. It must
 * not call back into the pipe. Flow control (in-flight limits) is the
 * channel's: it pauses inputs through dp_proc, it does not refuse here.
 */
typedef int (*dp_pipe_udf_submit_cb)(void *ctx, const dp_pipe_udf_req_t *req);

/**
 * A UDF answer (one per output record: a window UDF answering with a
 * GrpcPayloadCollection of n payloads calls dp_pipe_udf_result n times).
 */
typedef struct dp_pipe_udf_reply {
    uint32_t op;          /**< the request's op */
    int grpc_status;      /**< 0: OK; else a failure: dead-letter with weir.grpc.status */
    const char *error;    /**< failures: text for weir.error (NUL-terminated; NULL: none) */
    const char *key;      /**< OK: the output key; failure: the request's key */
    const char *payload;  /**< OK: the UDF's payload; failure: the request's payload */
    const dp_hdr_t *hdrs; /**< OK: the UDF's headers; failure: the request's headers */
    int64_t event_ms;     /**< event time for the output record (the request's) */
    int64_t ts_ms;        /**< timestamp for the output record (the request's) */
    int64_t offset;       /**< the request's source fields, for the dead-letter headers */
    int32_t partition;
    uint32_t input;
    uint32_t key_len;
    uint32_t payload_len;
    uint32_t nhdrs;
} dp_pipe_udf_reply_t;

/** Options for dp_pipe_new. */
typedef struct dp_pipe_opts {
    dp_pipe_emit_cb emit; /**< required */
    void *ctx;
    size_t state_bytes_max; /**< 0: the spec's state.maxBytes (default 256 MiB) */
    bool blackhole;         /**< benchmark sink: run everything but skip output encoding */
    /**
     * UDF channel (docs/internals/pipeline-engine.md, "UDFs"). Required when
     * the spec has a udf operator or a window with `udf`: dp_pipe_new fails
     * with -EINVAL if it is NULL then. Answers come back through
     * dp_pipe_udf_result.
     */
    dp_pipe_udf_submit_cb udf_submit;
    void *udf_ctx;
} dp_pipe_opts_t;

/** A record as read from an input (borrowed for the duration of the call). */
typedef struct dp_pipe_rec {
    const char *key;
    const char *payload;
    const dp_hdr_t *hdrs;
    int64_t ts_ms;  /**< the record's timestamp */
    int64_t offset; /**< its offset in the partition */
    uint32_t key_len;
    uint32_t payload_len;
    uint32_t nhdrs;
    int32_t partition;
} dp_pipe_rec_t;

/** Counters (monotonic). */
typedef struct dp_pipe_stats {
    uint64_t records_in;
    uint64_t records_out;
    uint64_t dead_letters;
    uint64_t filtered;
    uint64_t late_dropped;
    uint64_t late_side;
    uint64_t late_upserts;
    uint64_t windows_fired;
    uint64_t joins_emitted;
    uint64_t backpressure; /**< pushes refused with -ENOBUFS */
} dp_pipe_stats_t;

/**
 * Compiles a validated spec (borrowed; wc_spec_validate must have passed):
 * resolves every field path to a slot, compiles every expression, builds
 * the operator DAG and its state. Returns 0, or -EINVAL with a message that
 * names the JSON pointer and the problem (e.g. an expression syntax error
 * with its column) in err.
 */
int dp_pipe_new(const json_t *spec, const dp_pipe_opts_t *opts, dp_pipe_t **out, char *err,
                size_t errlen);

/** Frees the pipe and all its state. */
void dp_pipe_free(dp_pipe_t *pipe);

/** Number of inputs in the spec. */
uint32_t dp_pipe_inputs(const dp_pipe_t *pipe);

/** Input `i`'s topic (borrowed). */
const char *dp_pipe_input_topic(const dp_pipe_t *pipe, uint32_t i);

/**
 * The partitions of input `i` this replica owns (spec `assigned`, else
 * p mod replica.count == replica.index), in *parts (borrowed) and *n.
 */
void dp_pipe_input_partitions(const dp_pipe_t *pipe, uint32_t i, const int32_t **parts,
                              uint32_t *n);

/**
 * Processes one record of input `i` at processing time `now_ms`. Returns 0
 * (consumed: processed, filtered, late-handled or dead-lettered), or
 * -ENOBUFS when state is at its bound: the record was NOT consumed and must
 * be pushed again later (the caller pauses that input; see
 * dp_pipe_backpressured). Never fails otherwise.
 */
int dp_pipe_push(dp_pipe_t *pipe, uint32_t i, const dp_pipe_rec_t *rec, int64_t now_ms);

/**
 * Slot of `path` (e.g. "payload.bid.price") in this pipeline's rows, or -1
 * when no operator reads it. For producers that make rows directly.
 */
int dp_pipe_slot(const dp_pipe_t *pipe, const char *path);

/** Number of slots a row of this pipeline has. */
uint32_t dp_pipe_nslots(const dp_pipe_t *pipe);

/**
 * As dp_pipe_push, for a row whose slots the caller already filled (the
 * in-process generator): row->partition, event_ms and ts_ms must be set.
 */
int dp_pipe_push_row(dp_pipe_t *pipe, uint32_t i, dp_row_t *row, int64_t now_ms);

/**
 * Feeds one UDF answer into the pipe at processing time `now_ms`: on success
 * the record runs through everything downstream of operator reply->op (its
 * payload decoded per the UDF's contentType: JSON for application/json, raw
 * otherwise); on failure it goes to the dead-letter output with
 * `weir.error`, `weir.grpc.status` and the source headers. Returns 0, or
 * -EINVAL when reply->op is not a UDF operator or UDF window.
 */
int dp_pipe_udf_result(dp_pipe_t *pipe, const dp_pipe_udf_reply_t *reply, int64_t now_ms);

/**
 * Advances processing time: idle partitions stop holding the watermark
 * back, the watermark moves, windows fire, early and idle-timeout emissions
 * run, expired join state is freed. Call every few ms and after pushes.
 */
void dp_pipe_tick(dp_pipe_t *pipe, int64_t now_ms);

/** The processor's watermark: min over active partitions (INT64_MIN before any record). */
int64_t dp_pipe_watermark(const dp_pipe_t *pipe);

/**
 * While state is over its bound: the (input, partition) whose watermark is
 * lowest, i.e. the one to keep consuming so windows can close and free
 * state; the others should be paused. Returns false when not over the bound.
 */
bool dp_pipe_backpressured(const dp_pipe_t *pipe, uint32_t *input, int32_t *partition);

/** Bytes of operator state (windows, joins, tables). */
size_t dp_pipe_state_bytes(const dp_pipe_t *pipe);

/** Counters. */
const dp_pipe_stats_t *dp_pipe_stats(const dp_pipe_t *pipe);

/**
 * Saves the engine's state (operator state, per-partition watermarks and
 * idleness) for a checkpoint. Input offsets are the caller's. Returns 0 or
 * -ENOMEM.
 */
int dp_pipe_save(const dp_pipe_t *pipe, dp_ser_w_t *out);

/**
 * Restores state saved by dp_pipe_save from a pipe compiled from the same
 * spec. Returns 0, or -EBADMSG (damaged, or saved by a different spec: the
 * state records a hash of the spec) leaving the pipe empty.
 */
int dp_pipe_load(dp_pipe_t *pipe, dp_ser_r_t *in);

#endif
