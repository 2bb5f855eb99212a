/* SPDX-License-Identifier: Apache-2.0 */
/* dp_log: one partition's durable segment log for the store role. Batches
 * are stored as received (after CRC validation) with the log assigning
 * baseOffset; writes and group-committed fdatasyncs go through dp_ring. */
#ifndef DP_LOG_H
#define DP_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "dp_batch.h"
#include "dp_metrics.h"
#include "dp_ring.h"

/** When the log issues fdatasync for written data. */
typedef enum {
    DP_LOG_FLUSH_EVERY = 0, /**< as soon as writes complete (acks=all) */
    DP_LOG_FLUSH_INTERVAL,  /**< at dp_log_tick once flush_interval_ms passed */
    DP_LOG_FLUSH_BYTES,     /**< once flush_bytes are written and unsynced */
} dp_log_flush_t;

/** How the EVERY policy makes a write durable (a diagnostic choice; the
 * default measured best, docs/internals/store-bench.md). */
typedef enum {
    DP_LOG_SYNC_RWF_DSYNC = 0, /**< each write carries RWF_DSYNC */
    DP_LOG_SYNC_O_DSYNC,       /**< the write fd is opened O_DSYNC */
    DP_LOG_SYNC_FDATASYNC,     /**< plain write, then an fdatasync */
} dp_log_sync_t;

/** Per-partition limits and policies; see dp_log_config_defaults. */
typedef struct dp_log_config {
    uint64_t segment_bytes;        /**< preallocated size of a segment (128 MiB) */
    uint32_t index_interval_bytes; /**< bytes between sparse index entries (4 KiB) */
    uint32_t batch_bytes_max;      /**< largest batch accepted (1 MiB + 12) */
    uint32_t segments_max;         /**< segments a partition may hold (4096) */
    dp_log_flush_t flush;          /**< flush policy (EVERY) */
    uint32_t flush_interval_ms;    /**< for DP_LOG_FLUSH_INTERVAL (1000) */
    uint64_t flush_bytes;          /**< for DP_LOG_FLUSH_BYTES (1 MiB) */
    int64_t retention_ms;          /**< delete segments older than this; -1 never */
    int64_t retention_bytes;       /**< keep the log under this size; -1 never */
    dp_counter_t *commits_total;   /**< optional: bumped per durable commit (shared metric) */
    int read_direct;               /**< 1: also open segments O_DIRECT for reads (1) */
    dp_log_sync_t sync_mode;       /**< how EVERY makes a write durable (RWF_DSYNC) */
    dp_hist_t *write_latency;      /**< optional: each segment write, submitted to completed */
    dp_hist_t *append_latency;     /**< optional: each append, accepted to its callback */
} dp_log_config_t;

/** Counters, readable at any time from the owning thread. */
typedef struct dp_log_stats {
    uint64_t appends;          /**< batches accepted */
    uint64_t bytes;            /**< bytes accepted */
    uint64_t syncs;            /**< durable commits: RWF_DSYNC writes and fdatasyncs */
    uint64_t rolls;            /**< segments created by appends */
    uint64_t segments_deleted; /**< by retention or log start advancement */
    uint64_t truncations;      /**< torn tails cut at open */
    uint64_t index_rebuilds;   /**< segment indexes rewritten at open */
} dp_log_stats_t;

typedef struct dp_log dp_log_t;
typedef struct dp_log_append dp_log_append_t;

/**
 * Append completion: `result` is 0 (req->base_offset/last_offset hold the
 * assigned offsets) or -errno. req may be reused once this runs.
 */
typedef void (*dp_log_append_cb)(dp_log_append_t *req, int result);

/** dp_log_append flag: complete when written, not when synced (acks=1). */
#define DP_LOG_APPEND_WRITTEN 0x1u
/**
 * dp_log_append flag: the caller already ran dp_batch_validate(STRICT) on
 * this exact buffer, so the CRC is not computed a second time; the header
 * is still parsed and its size checked.
 */
#define DP_LOG_APPEND_VALIDATED 0x2u

/**
 * A caller-owned, embedded append request: nothing is allocated per append.
 * Fields are private except base_offset and last_offset.
 */
struct dp_log_append {
    dp_log_append_t *next; /**< private: queue link */
    dp_log_t *log;         /**< private */
    const uint8_t *buf;    /**< private: the batch, caller-owned */
    uint32_t len;          /**< private */
    uint64_t pos;          /**< private: file position */
    int64_t seg_base;      /**< private: segment base offset */
    int64_t base_offset;   /**< assigned first offset */
    int64_t last_offset;   /**< assigned last offset */
    unsigned flags;        /**< private: DP_LOG_APPEND_* */
    uint64_t t0_ns;        /**< private: accepted (CLOCK_MONOTONIC), with append_latency */
    int written;           /**< private */
    int result;            /**< private */
    dp_log_append_cb cb;   /**< private */
    void *ctx;             /**< caller's context */
};

/** A byte range of whole batches in one segment file. */
typedef struct dp_log_slice {
    int fd;               /**< segment file (owned by the log) */
    int dfd;              /**< the same file opened O_DIRECT, or -1 (owned by the log) */
    uint64_t pos;         /**< file position of the first batch */
    uint32_t len;         /**< bytes, whole batches only */
    int64_t first_offset; /**< base offset of the first batch */
    int64_t next_offset;  /**< offset after the last batch */
} dp_log_slice_t;

/** Fills cfg with the defaults documented on dp_log_config_t. */
void dp_log_config_defaults(dp_log_config_t *cfg);

/**
 * Opens (creating if needed) `<data_dir>/<topic>-<partition>/` and recovers
 * it: every batch of every segment is read and checked (header, CRC32C,
 * offset continuity); a torn or corrupt tail is truncated; damage in a
 * non-tail segment fails the open with -EBADMSG and a message naming file
 * and position in `err`. Indexes are rebuilt when missing or inconsistent.
 * Synchronous; call at start-up, not on the hot path. Returns 0 or -errno.
 */
int dp_log_open(dp_log_t **out, dp_ring_t *ring, const char *data_dir, const char *topic,
                int32_t partition, const dp_log_config_t *cfg, char *err, size_t errlen);

/**
 * Closes the log. Returns -EBUSY (and does nothing) while appends or syncs
 * are in flight: run the ring until dp_log_idle is true first.
 */
int dp_log_close(dp_log_t *log);

/** True when no append and no sync is in flight. */
int dp_log_idle(const dp_log_t *log);

/**
 * Appends one record batch v2 (`len` must be exactly its size). The batch is
 * validated, its baseOffset/partitionLeaderEpoch rewritten in place, and it is
 * written through the ring; `batch` must stay valid until `cb`. `cb` runs
 * from the ring once the covering fdatasync completes, or once written with
 * DP_LOG_APPEND_WRITTEN. On error nothing is appended and cb is never called:
 * -EBADMSG (CRC), -EINVAL (header), -EMSGSIZE, -ENOSPC (segments_max), or the
 * log's failure error.
 */
int dp_log_append(dp_log_t *log, dp_log_append_t *req, void *batch, size_t len,
                  int32_t leader_epoch, unsigned flags, dp_log_append_cb cb, void *ctx);

/**
 * Makes everything appended so far durable whatever the policy: syncs are
 * issued as soon as its writes complete.
 */
void dp_log_flush(dp_log_t *log);

/**
 * Drives the interval flush policy: `now_ms` is a monotonic clock in ms
 * (CLOCK_MONOTONIC); a sync is issued once flush_interval_ms passed since the
 * last one. Call from the worker's timer.
 */
void dp_log_tick(dp_log_t *log, uint64_t now_ms);

/**
 * Finds the batch holding `offset` (sparse index, then a header scan).
 * Fills `out` with that one batch. Returns 0, -ERANGE when offset is below
 * the log start or at/after the written end.
 */
int dp_log_find(dp_log_t *log, int64_t offset, dp_log_slice_t *out);

/**
 * Collects whole batches from the one holding `offset`, up to `max_bytes`
 * (the first batch is returned even if larger, as Kafka does) and below
 * `max_offset` (-1: the written end), as at most `nmax` slices (contiguous
 * batches of a segment merge into one slice). Returns the number of slices
 * (0 at the end), or -ERANGE for an offset outside [start, end].
 */
int dp_log_read(dp_log_t *log, int64_t offset, uint32_t max_bytes, int64_t max_offset,
                dp_log_slice_t *out, int nmax);

/** A byte range of one segment starting at a batch boundary (see dp_log_read_range). */
typedef struct dp_log_range {
    int fd;               /**< segment file, buffered (owned by the log) */
    int dfd;              /**< the same file opened O_DIRECT, or -1 */
    uint64_t pos;         /**< start of a batch at or before the requested offset */
    uint64_t end;         /**< end of the readable bytes of this segment */
    int64_t first_offset; /**< a lower bound of the first batch's base offset */
} dp_log_range_t;

/**
 * The fetch path's read plan, with no I/O: the segment holding `offset`, the
 * position of a batch at or before it from the sparse index (the batches
 * between it and `offset` hold under index_interval_bytes, so returning them
 * is what Kafka allows: clients skip records below their fetch offset), and
 * where the readable bytes of that segment end. `max_offset` is -1 or the
 * written offset (what the high watermark is under every flush policy);
 * any other bound in the segment being written answers -EAGAIN: use
 * dp_log_read. The caller reads [pos, min(end, pos + budget)) and cuts it
 * to whole batches in memory, checking each header as it goes.
 * Returns 1, 0 (nothing to read), -ERANGE, -EAGAIN or -EIO.
 */
int dp_log_read_range(dp_log_t *log, int64_t offset, int64_t max_offset, dp_log_range_t *out);

/**
 * ListOffsets by timestamp: the base offset of the first batch whose
 * maxTimestamp >= ts, in `*offset`. Returns 0 or -ENOENT when none.
 */
int dp_log_find_time(dp_log_t *log, int64_t ts, int64_t *offset);

/**
 * Iterates the batch headers of the log, in offset order, from the batch
 * holding `from_offset` (clamped to the log start, so a batch straddling
 * the start is included) up to the written end, calling `cb` once per batch
 * with its decoded header (base_offset as stored; the CRC is not re-checked,
 * recovery did that at open). A non-zero return from `cb` stops the scan and
 * is returned. Synchronous (one pread per batch): for start-up, e.g.
 * rebuilding producer state, not for the hot path. `cb` must not append to
 * or otherwise change the log. Returns 0 (also when there is nothing to
 * scan), cb's value, or -errno (-EIO for a header out of sequence).
 */
int dp_log_scan(dp_log_t *log, int64_t from_offset, int (*cb)(const dp_batch_hdr_t *hdr, void *ctx),
                void *ctx);

/**
 * Applies retention at `now_ms` (wall clock, ms): deletes whole old
 * segments by time (largest timestamp older than retention_ms) and by size,
 * never the active one nor any with unsynced data, and advances the log
 * start offset. Returns the number of segments deleted or -errno.
 */
int dp_log_retain(dp_log_t *log, int64_t now_ms);

/**
 * DeleteRecords: moves the log start offset to `offset` (at most the durable
 * end), persists it, and deletes segments wholly below it. Returns 0,
 * -ERANGE or -errno.
 */
int dp_log_delete_records(dp_log_t *log, int64_t offset);

/** First offset still in the log. */
int64_t dp_log_start_offset(const dp_log_t *log);
/** Next offset to be assigned. */
int64_t dp_log_end_offset(const dp_log_t *log);
/** Every offset below this is written (readable). */
int64_t dp_log_written_offset(const dp_log_t *log);
/** Every offset below this is on stable storage. */
int64_t dp_log_durable_offset(const dp_log_t *log);
/** Number of segments. */
uint32_t dp_log_segment_count(const dp_log_t *log);
/** Counters. */
const dp_log_stats_t *dp_log_stats(const dp_log_t *log);
/** Failure message once the log has failed (write or sync error), else "". */
const char *dp_log_error(const dp_log_t *log);

#endif
