/* SPDX-License-Identifier: Apache-2.0 */
/* op_queue: the reconcilers' work queue (client-go's rate-limited workqueue).
 * Keys are deduplicated, a key being processed is never handed out twice, and
 * failed keys come back after a per-key exponential delay. Thread-safe.
 * Design: docs/internals/operator.md. */
#ifndef OP_QUEUE_H
#define OP_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A work queue of string keys. */
typedef struct op_queue op_queue_t;

/** Longest key (including the NUL): "<kind>/<namespace>/<name>". */
#define OP_QUEUE_KEY_MAX 512

/**
 * Creates a queue. A key's n-th consecutive rate-limited add waits
 * min(`max_ms`, `base_ms` * 2^n); at most `max_keys` distinct keys are tracked
 * (adds beyond that fail with -ENOSPC). Returns NULL on allocation failure.
 */
op_queue_t *op_queue_new(uint64_t base_ms, uint64_t max_ms, size_t max_keys);

/** Frees the queue. No thread may be using it. NULL is fine. */
void op_queue_free(op_queue_t *q);

/** Queues `key` now (a no-op if already queued; if it is being processed it
 * is queued again when op_queue_done is called). 0, -EINVAL, -ENOSPC,
 * -ENOMEM or -ESHUTDOWN. */
int op_queue_add(op_queue_t *q, const char *key);

/** How long a low-priority key may be passed over: after this wait it is
 * ordered by arrival among the normal ones, so none starves. */
#define OP_QUEUE_LOW_AGE_MS 2000

/**
 * Queues `key` now at low priority (controller-runtime's priority queue):
 * it is handed out after every ready normal key, unless it has waited
 * OP_QUEUE_LOW_AGE_MS. For work that follows from other objects (a child's
 * status, a dependency, a resync) rather than from the key's own change. A
 * pending normal add stays normal; a later normal add raises it.
 */
int op_queue_add_low(op_queue_t *q, const char *key);

/** At most `n` low-priority keys (aged or not) are processed at once (0,
 * the default: no limit); with n below the number of workers, a normal key
 * never waits for low work to finish. */
void op_queue_set_low_limit(op_queue_t *q, size_t n);

/** Sets the low-priority age (default OP_QUEUE_LOW_AGE_MS; tests). */
void op_queue_set_low_age_ms(op_queue_t *q, uint64_t ms);

/** Queues `key` after `delay_ms` (an earlier pending add wins), at normal
 * priority. */
int op_queue_add_after(op_queue_t *q, const char *key, uint64_t delay_ms);

/** As op_queue_add_after at low priority: for a poll a reconcile asks for
 * (a broker to check again, a child to look at later). A pending normal
 * delayed add keeps normal priority. */
int op_queue_add_after_low(op_queue_t *q, const char *key, uint64_t delay_ms);

/** Queues `key` after its next backoff delay and counts one more failure.
 * The retry keeps the priority the key was last handed out at (a failed
 * low reconcile retries low), or, when it is not being processed, the
 * priority it is pending at (normal when it is not pending either). */
int op_queue_add_rate_limited(op_queue_t *q, const char *key);

/** Clears the failure count of `key` (after a successful reconcile). */
void op_queue_forget(op_queue_t *q, const char *key);

/** Consecutive failures counted for `key`. */
unsigned op_queue_failures(op_queue_t *q, const char *key);

/** The delay the next op_queue_add_rate_limited of `key` would use. */
uint64_t op_queue_next_delay_ms(op_queue_t *q, const char *key);

/**
 * Waits up to `timeout_ms` (-1: forever) for a ready key, copies it into
 * `key` (capacity `keylen`, at least OP_QUEUE_KEY_MAX) and marks it being
 * processed; `waited_ns` (may be NULL) gets how long it was ready before
 * (the queue wait). Normal-priority keys first, each class FIFO. Returns 1
 * (got one), 0 (timeout) or -ESHUTDOWN.
 */
int op_queue_get(op_queue_t *q, char *key, size_t keylen, int timeout_ms, uint64_t *waited_ns);

/** As op_queue_get; `low` (may be NULL) gets whether the key was handed out
 * as low priority (aged or not), for metrics by priority. */
int op_queue_get_ex(op_queue_t *q, char *key, size_t keylen, int timeout_ms, uint64_t *waited_ns,
                    bool *low);

/** Ends processing of `key`; re-queues it if it was added meanwhile. */
void op_queue_done(op_queue_t *q, const char *key);

/** Keys ready now plus keys waiting for their delay. */
size_t op_queue_len(op_queue_t *q);

/** Wakes every waiter; later gets return -ESHUTDOWN and adds fail. */
void op_queue_shutdown(op_queue_t *q);

#endif
