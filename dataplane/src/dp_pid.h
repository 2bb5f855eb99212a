/* SPDX-License-Identifier: Apache-2.0 */
/* dp_pid: idempotent producers for the store role. dp_pidmap_* is one
 * partition's producer state table (Kafka's ProducerStateManager: epoch and
 * last five batches per producer id); dp_pidalloc_* hands out producer ids
 * for InitProducerId. Design: docs/internals/store-idempotence.md. */
#ifndef DP_PID_H
#define DP_PID_H

#include <stddef.h>
#include <stdint.h>

#include "dp_batch.h"
#include "dp_log.h"

/** Batches remembered per producer: Kafka's max.in.flight bound of 5. */
#define DP_PID_BATCHES 5

/** Largest producers_max dp_pidmap_init accepts. */
#define DP_PIDMAP_PRODUCERS_MAX (1u << 24)

/** What dp_pidmap_check says about an incoming batch. */
typedef enum {
    DP_PID_OK = 0,        /**< append it (then dp_pidmap_update) */
    DP_PID_DUPLICATE,     /**< one of the last 5 batches again: answer success with
                               the original offsets, do not append */
    DP_PID_OUT_OF_ORDER,  /**< sequence gap/overlap: OUT_OF_ORDER_SEQUENCE_NUMBER (45) */
    DP_PID_INVALID_EPOCH, /**< epoch below the current one: INVALID_PRODUCER_EPOCH (47) */
    DP_PID_UNKNOWN,       /**< no state for this producer and sequence != 0; the
                               store accepts it, as Kafka does since KIP-360 */
} dp_pid_verdict_t;

/** Metadata of one appended batch. */
typedef struct dp_pid_batch {
    int32_t base_sequence; /**< first sequence */
    int32_t last_sequence; /**< base + lastOffsetDelta, wrapping past INT32_MAX to 0 */
    int64_t base_offset;   /**< offset the log assigned to the first record */
    int64_t last_offset;   /**< offset of the last record */
    int64_t timestamp;     /**< the batch's maxTimestamp */
} dp_pid_batch_t;

/** One producer's state. */
typedef struct dp_pid_entry {
    int64_t producer_id; /**< >= 0 */
    int16_t epoch;       /**< epoch of the batches below */
    uint8_t nbatches;    /**< 1..DP_PID_BATCHES */
    uint8_t newest;      /**< index in batches[] of the newest; older ones precede it
                              (mod DP_PID_BATCHES) */
    dp_pid_batch_t batches[DP_PID_BATCHES]; /**< ring of the last nbatches batches */
} dp_pid_entry_t;

/** Private: an open-addressing slot; producer_id -1 marks it empty. */
typedef struct dp_pid_slot {
    int64_t producer_id;
    uint32_t entry; /**< index into entries */
} dp_pid_slot_t;

/**
 * A partition's producer state table. Embedded by the partition and used
 * only by its owning worker thread. Everything is allocated by
 * dp_pidmap_init; check, update and expire never allocate. Fields are
 * private except count and evictions.
 */
typedef struct dp_pidmap {
    dp_pid_slot_t *slots;    /**< private: linear probing, slots_mask + 1 slots */
    dp_pid_entry_t *entries; /**< private: dense, count used of producers_max */
    uint32_t slots_mask;     /**< private: power of two >= 2 * producers_max, minus 1 */
    uint32_t producers_max;  /**< private: capacity */
    uint32_t count;          /**< producers held */
    uint64_t evictions;      /**< producers evicted to make room */
} dp_pidmap_t;

/**
 * Allocates an empty table for up to `producers_max` producer ids
 * (1..DP_PIDMAP_PRODUCERS_MAX). Returns 0, -EINVAL or -ENOMEM.
 */
int dp_pidmap_init(dp_pidmap_t *m, uint32_t producers_max);

/** Frees the table; `m` may then be init'ed again. Safe on a zeroed map. */
void dp_pidmap_dispose(dp_pidmap_t *m);

/** Forgets every producer (keeps the allocation). */
void dp_pidmap_clear(dp_pidmap_t *m);

/**
 * Judges the incoming batch `hdr` (as parsed by dp_batch_parse_header or
 * dp_batch_validate) against the producer's state, as Kafka does:
 * - producer_id < 0 (not idempotent) or a control batch: DP_PID_OK.
 * - epoch < 0: DP_PID_INVALID_EPOCH; base_sequence < 0: DP_PID_OUT_OF_ORDER.
 * - unknown producer: DP_PID_OK for sequence 0, else DP_PID_UNKNOWN.
 * - epoch below the current: DP_PID_INVALID_EPOCH.
 * - epoch above the current: DP_PID_OK for sequence 0, else OUT_OF_ORDER.
 * - same epoch: DP_PID_DUPLICATE when base and last sequence equal those of
 *   one of the last 5 batches (its offsets go to *dup_base_offset and
 *   *dup_last_offset); DP_PID_OK when base_sequence follows the newest
 *   batch's last sequence (INT32_MAX is followed by 0); else OUT_OF_ORDER.
 * Pure: nothing changes; the output pointers are written only on DUPLICATE.
 */
dp_pid_verdict_t dp_pidmap_check(const dp_pidmap_t *m, const dp_batch_hdr_t *hdr,
                                 int64_t *dup_base_offset, int64_t *dup_last_offset);

/**
 * Records the batch `hdr` that the log has just placed at
 * [base_offset, last_offset]: call right after dp_log_append returned 0
 * (offsets from req->base_offset/last_offset), before the next batch of the
 * partition is checked. Does not validate (a start-up rebuild replays what
 * the log holds): a new epoch replaces the producer's batches; an unknown
 * producer is added, evicting the one whose newest batch has the oldest
 * maxTimestamp when the table is full. Ignores producer_id < 0 and control
 * batches. Never fails, never allocates.
 */
void dp_pidmap_update(dp_pidmap_t *m, const dp_batch_hdr_t *hdr, int64_t base_offset,
                      int64_t last_offset);

/**
 * The state of `producer_id`, or NULL. Borrowed: valid until the next
 * update, expire, clear or rebuild.
 */
const dp_pid_entry_t *dp_pidmap_find(const dp_pidmap_t *m, int64_t producer_id);

/**
 * Removes producers whose newest batch's maxTimestamp is at least
 * `expiration_ms` older than `now_ms` (wall clock, ms), like Kafka's
 * producer.id.expiration.ms. O(count); call from a timer. Returns the
 * number removed.
 */
uint32_t dp_pidmap_expire(dp_pidmap_t *m, int64_t now_ms, int64_t expiration_ms);

/**
 * Start-up rebuild: clears `m` and replays every batch from the log start
 * to the written end through dp_pidmap_update (dp_log_scan). Synchronous;
 * call right after dp_log_open, before the partition accepts produce.
 * Returns 0 or -errno from the scan.
 */
int dp_pidmap_rebuild(dp_pidmap_t *m, dp_log_t *log);

/* ---- producer id allocation ------------------------------------------- */

/** Ids reserved (and persisted) at a time. */
#define DP_PIDALLOC_BLOCK 1000
/** Bits of an id below the replica index: ids are (replica_index << 47) | n. */
#define DP_PIDALLOC_LOCAL_BITS 47
/** Largest `replicas` dp_pidalloc_open accepts (the index fills bits 47-62). */
#define DP_PIDALLOC_REPLICAS_MAX 65536

typedef struct dp_pidalloc dp_pidalloc_t;

/**
 * Opens the allocator of store replica `replica_index` (0 <= index <
 * replicas <= DP_PIDALLOC_REPLICAS_MAX), persisting its reservation in
 * `<data_dir>/producer-ids` (data_dir must exist). A missing file starts the
 * counter from the wall clock (seconds * 1024), so a replica that lost its
 * volume does not reissue its old ids. Returns 0, -EINVAL, -EBADMSG (a
 * corrupt file: never silently reset) or -errno, with a message in `err`.
 */
int dp_pidalloc_open(dp_pidalloc_t **out, const char *data_dir, uint32_t replica_index,
                     uint32_t replicas, char *err, size_t errlen);

/**
 * Hands out the next producer id into *pid. Once per DP_PIDALLOC_BLOCK ids
 * it persists a new reservation first (write temp, fdatasync, rename,
 * fsync directory): synchronous, meant for the rare InitProducerId.
 * Thread-safe. Returns 0, -EOVERFLOW (local space exhausted) or -errno
 * (nothing handed out).
 */
int dp_pidalloc_next(dp_pidalloc_t *a, int64_t *pid);

/** Closes the allocator; ids not handed out from the block are skipped. */
void dp_pidalloc_close(dp_pidalloc_t *a);

#endif
