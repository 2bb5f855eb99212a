/* SPDX-License-Identifier: Apache-2.0 */
/* dp_pool: a worker's buffer pool. Power-of-two size classes from 4 KiB to
 * 256 MiB with per-class free lists and one byte budget for live plus cached
 * blocks, so a worker's request and response memory is bounded by
 * configuration and, once warm, nothing reaches malloc. Single-threaded. */
#ifndef DP_POOL_H
#define DP_POOL_H

#include <stddef.h>
#include <stdint.h>

/** Smallest class: 4 KiB. */
#define DP_POOL_MIN_SHIFT 12
/** Largest class: 256 MiB. */
#define DP_POOL_MAX_SHIFT 28
/** Number of size classes. */
#define DP_POOL_CLASSES (DP_POOL_MAX_SHIFT - DP_POOL_MIN_SHIFT + 1)

/** Pool counters. */
typedef struct dp_pool_stats {
    size_t live_bytes;   /**< handed out */
    size_t cached_bytes; /**< on free lists */
    uint64_t allocs;     /**< successful dp_pool_alloc calls */
    uint64_t mallocs;    /**< allocations that reached malloc */
    uint64_t denied;     /**< allocations refused by the budget */
} dp_pool_stats_t;

/** Embedded by the worker; see dp_pool_init. */
typedef struct dp_pool {
    size_t budget_bytes;
    void *free[DP_POOL_CLASSES];
    dp_pool_stats_t stats;
} dp_pool_t;

/** Starts an empty pool that never holds more than `budget_bytes`. */
void dp_pool_init(dp_pool_t *pool, size_t budget_bytes);

/** Frees every cached block. Live blocks must have been freed first. */
void dp_pool_dispose(dp_pool_t *pool);

/**
 * Returns a block of at least `len` usable bytes (its real size in *cap
 * when cap is not NULL), or NULL when `len` exceeds the largest class, the
 * budget would be exceeded after dropping cached blocks, or malloc fails.
 */
void *dp_pool_alloc(dp_pool_t *pool, size_t len, size_t *cap);

/** Returns a block to its free list (NULL is ignored). */
void dp_pool_free(dp_pool_t *pool, void *p);

/** Bytes that could still be allocated without exceeding the budget. */
size_t dp_pool_available(const dp_pool_t *pool);

#endif
