/* SPDX-License-Identifier: Apache-2.0 */
/* Worker buffer pool: size-classed free lists under one byte budget. Each
 * block carries a 64-byte header naming its class, so frees need no size and
 * the payload stays 64-byte aligned for the kernel and for memcpy. */
#include "dp_pool.h"

#include <assert.h>
#include <stdlib.h>

#define HDR 64u
#define MAGIC 0x504f4f4cu /* "POOL" */

typedef struct blk {
    uint32_t magic;
    uint32_t cls;
    struct blk *next; /* free-list link while cached */
} blk_t;

static size_t class_bytes(unsigned cls)
{
    return (size_t)1 << (cls + DP_POOL_MIN_SHIFT);
}

static int class_of(size_t len)
{
    unsigned cls = 0;

    while (cls < DP_POOL_CLASSES && class_bytes(cls) < len)
        cls++;
    return cls < DP_POOL_CLASSES ? (int)cls : -1;
}

void dp_pool_init(dp_pool_t *pool, size_t budget_bytes)
{
    *pool = (dp_pool_t){.budget_bytes = budget_bytes};
}

/* Drops cached blocks, largest first, until `need` more bytes fit. */
static void shrink(dp_pool_t *pool, size_t need)
{
    for (int cls = DP_POOL_CLASSES - 1; cls >= 0; cls--) {
        while (pool->free[cls] != NULL &&
               pool->stats.live_bytes + pool->stats.cached_bytes + need > pool->budget_bytes) {
            blk_t *b = pool->free[cls];

            pool->free[cls] = b->next;
            pool->stats.cached_bytes -= class_bytes((unsigned)cls);
            free(b);
        }
    }
}

void dp_pool_dispose(dp_pool_t *pool)
{
    assert(pool->stats.live_bytes == 0);
    for (unsigned cls = 0; cls < DP_POOL_CLASSES; cls++) {
        while (pool->free[cls] != NULL) {
            blk_t *b = pool->free[cls];

            pool->free[cls] = b->next;
            free(b);
        }
    }
    pool->stats.cached_bytes = 0;
}

void *dp_pool_alloc(dp_pool_t *pool, size_t len, size_t *cap)
{
    int cls = class_of(len);
    size_t bytes;
    blk_t *b;

    if (cls < 0) {
        pool->stats.denied++;
        return NULL;
    }
    bytes = class_bytes((unsigned)cls);
    b = pool->free[cls];
    if (b != NULL) {
        pool->free[cls] = b->next;
        pool->stats.cached_bytes -= bytes;
    } else {
        if (pool->stats.live_bytes + pool->stats.cached_bytes + bytes > pool->budget_bytes)
            shrink(pool, bytes);
        if (pool->stats.live_bytes + pool->stats.cached_bytes + bytes > pool->budget_bytes) {
            pool->stats.denied++;
            return NULL;
        }
        if (posix_memalign((void **)&b, HDR, HDR + bytes) != 0) {
            pool->stats.denied++;
            return NULL;
        }
        pool->stats.mallocs++;
        b->magic = MAGIC;
        b->cls = (uint32_t)cls;
    }
    b->next = NULL;
    pool->stats.live_bytes += bytes;
    pool->stats.allocs++;
    if (cap != NULL)
        *cap = bytes;
    return (uint8_t *)b + HDR;
}

void dp_pool_free(dp_pool_t *pool, void *p)
{
    blk_t *b;

    if (p == NULL)
        return;
    b = (blk_t *)((uint8_t *)p - HDR);
    assert(b->magic == MAGIC && b->cls < DP_POOL_CLASSES);
    pool->stats.live_bytes -= class_bytes(b->cls);
    b->next = pool->free[b->cls];
    pool->free[b->cls] = b;
    pool->stats.cached_bytes += class_bytes(b->cls);
}

size_t dp_pool_available(const dp_pool_t *pool)
{
    size_t live = pool->stats.live_bytes;

    return live >= pool->budget_bytes ? 0 : pool->budget_bytes - live;
}
