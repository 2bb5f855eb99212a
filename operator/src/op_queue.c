/* SPDX-License-Identifier: Apache-2.0 */
/* op_queue: deduplicating work queue with per-key exponential backoff. One
 * mutex, one condition variable on CLOCK_MONOTONIC, and a flat table of keys
 * scanned linearly: an operator tracks hundreds of objects, not millions,
 * and the table is bounded by max_keys. */
#include "op_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
    char *key;
    bool queued;     /* ready to be handed out (seq orders them FIFO) */
    bool processing; /* handed out, op_queue_done not yet called */
    bool dirty;      /* added while processing: queue again on done */
    bool low;        /* the pending readiness is low priority (op_queue_add_low) */
    bool ran_low;    /* handed out as low priority: counts in q->low_running */
    uint64_t due_ms; /* delayed add pending until this time, 0 = none */
    bool due_low;    /* that delayed add is low priority */
    uint64_t seq;
    uint64_t ready_ns; /* when it became ready (queued), for the wait */
    unsigned failures;
} entry_t;

struct op_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    entry_t *e;
    size_t n, cap, max_keys;
    uint64_t seq, base_ms, max_ms, low_age_ns;
    size_t low_running, low_limit; /* low-priority keys being processed; 0 = no limit */
    bool shutdown;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ms(void)
{
    return now_ns() / 1000000u;
}

op_queue_t *op_queue_new(uint64_t base_ms, uint64_t max_ms, size_t max_keys)
{
    op_queue_t *q = calloc(1, sizeof(*q));
    pthread_condattr_t ca;
    if (!q)
        return NULL;
    q->base_ms = base_ms ? base_ms : 1;
    q->max_ms = max_ms < q->base_ms ? q->base_ms : max_ms;
    q->max_keys = max_keys ? max_keys : 1;
    q->low_age_ns = OP_QUEUE_LOW_AGE_MS * UINT64_C(1000000);
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    return q;
}

void op_queue_free(op_queue_t *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n; i++)
        free(q->e[i].key);
    free(q->e);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static entry_t *find(op_queue_t *q, const char *key)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->e[i].key, key) == 0)
            return &q->e[i];
    return NULL;
}

/* Drops entries that carry no state any more, so the table stays small. */
static void gc(op_queue_t *q, entry_t *x)
{
    if (x->queued || x->processing || x->dirty || x->due_ms || x->failures)
        return;
    free(x->key);
    *x = q->e[--q->n];
}

static int lookup_or_add(op_queue_t *q, const char *key, entry_t **out)
{
    entry_t *x;
    if (!key || !*key || strlen(key) >= OP_QUEUE_KEY_MAX)
        return -EINVAL;
    if (q->shutdown)
        return -ESHUTDOWN;
    x = find(q, key);
    if (!x) {
        if (q->n == q->max_keys)
            return -ENOSPC;
        if (q->n == q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 16;
            entry_t *ne = realloc(q->e, cap * sizeof(*ne));
            if (!ne)
                return -ENOMEM;
            q->e = ne;
            q->cap = cap;
        }
        x = &q->e[q->n];
        memset(x, 0, sizeof(*x));
        x->key = strdup(key);
        if (!x->key)
            return -ENOMEM;
        q->n++;
    }
    *out = x;
    return 0;
}

/* Marks `x` ready (or dirty while it is being processed). A normal add
 * raises a pending low one; a low add never lowers a pending normal one. */
static void make_ready(op_queue_t *q, entry_t *x, bool low)
{
    bool pending = x->processing ? x->dirty : x->queued;
    x->due_ms = 0;
    x->low = pending ? x->low && low : low;
    if (x->processing) {
        x->dirty = true;
        return;
    }
    if (!x->queued) {
        x->queued = true;
        x->seq = ++q->seq;
        x->ready_ns = now_ns();
    }
}

int op_queue_add(op_queue_t *q, const char *key)
{
    return op_queue_add_after(q, key, 0);
}

int op_queue_add_low(op_queue_t *q, const char *key)
{
    entry_t *x;
    int rc;
    pthread_mutex_lock(&q->mu);
    rc = lookup_or_add(q, key, &x);
    if (rc == 0) {
        make_ready(q, x, true);
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

/* Adds `key` after `delay_ms` at priority `low`; the caller holds q->mu.
 * Merging with a pending delayed add keeps the earlier time and the higher
 * priority of the two. */
static void add_delayed(op_queue_t *q, entry_t *x, uint64_t delay_ms, bool low)
{
    if (delay_ms == 0) {
        make_ready(q, x, low);
    } else if (!x->queued && !x->dirty) {
        uint64_t due = now_ms() + delay_ms;
        x->due_low = x->due_ms ? x->due_low && low : low;
        if (x->due_ms == 0 || due < x->due_ms)
            x->due_ms = due;
    }
    pthread_cond_broadcast(&q->cv);
}

static int add_after(op_queue_t *q, const char *key, uint64_t delay_ms, bool low)
{
    entry_t *x;
    int rc;
    pthread_mutex_lock(&q->mu);
    rc = lookup_or_add(q, key, &x);
    if (rc == 0)
        add_delayed(q, x, delay_ms, low);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int op_queue_add_after(op_queue_t *q, const char *key, uint64_t delay_ms)
{
    return add_after(q, key, delay_ms, false);
}

int op_queue_add_after_low(op_queue_t *q, const char *key, uint64_t delay_ms)
{
    return add_after(q, key, delay_ms, true);
}

static uint64_t delay_for(const op_queue_t *q, unsigned failures)
{
    uint64_t d = q->base_ms;
    for (unsigned i = 0; i < failures && d < q->max_ms; i++)
        d *= 2;
    return d < q->max_ms ? d : q->max_ms;
}

int op_queue_add_rate_limited(op_queue_t *q, const char *key)
{
    entry_t *x;
    uint64_t d;
    int rc;
    pthread_mutex_lock(&q->mu);
    rc = lookup_or_add(q, key, &x);
    if (rc == 0) {
        d = delay_for(q, x->failures);
        if (x->failures < 64)
            x->failures++;
        add_delayed(q, x, d, x->processing ? x->ran_low : x->queued && x->low);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void op_queue_forget(op_queue_t *q, const char *key)
{
    entry_t *x;
    pthread_mutex_lock(&q->mu);
    x = find(q, key);
    if (x) {
        x->failures = 0;
        gc(q, x);
    }
    pthread_mutex_unlock(&q->mu);
}

unsigned op_queue_failures(op_queue_t *q, const char *key)
{
    entry_t *x;
    unsigned f = 0;
    pthread_mutex_lock(&q->mu);
    x = find(q, key);
    if (x)
        f = x->failures;
    pthread_mutex_unlock(&q->mu);
    return f;
}

uint64_t op_queue_next_delay_ms(op_queue_t *q, const char *key)
{
    uint64_t d;
    pthread_mutex_lock(&q->mu);
    entry_t *x = find(q, key);
    d = delay_for(q, x ? x->failures : 0);
    pthread_mutex_unlock(&q->mu);
    return d;
}

/* Promotes due delayed keys; returns the earliest remaining due time or 0. */
static uint64_t promote(op_queue_t *q, uint64_t now)
{
    uint64_t next = 0;
    for (size_t i = 0; i < q->n; i++) {
        entry_t *x = &q->e[i];
        if (!x->due_ms)
            continue;
        if (x->due_ms <= now)
            make_ready(q, x, x->due_low);
        else if (!next || x->due_ms < next)
            next = x->due_ms;
    }
    return next;
}

void op_queue_set_low_age_ms(op_queue_t *q, uint64_t ms)
{
    pthread_mutex_lock(&q->mu);
    q->low_age_ns = ms * UINT64_C(1000000);
    pthread_mutex_unlock(&q->mu);
}

void op_queue_set_low_limit(op_queue_t *q, size_t n)
{
    pthread_mutex_lock(&q->mu);
    q->low_limit = n;
    pthread_mutex_unlock(&q->mu);
}

/* Whether `x` counts as low priority now (not yet aged). */
static bool is_low(const op_queue_t *q, const entry_t *x, uint64_t now)
{
    return x->low && now - x->ready_ns < q->low_age_ns;
}

/* Whether ready `a` goes before ready `b`: normal priority first (a low
 * key counts as normal once it has waited the low age), then FIFO. */
static bool before(const op_queue_t *q, const entry_t *a, const entry_t *b, uint64_t now)
{
    bool la = is_low(q, a, now), lb = is_low(q, b, now);
    if (la != lb)
        return lb;
    return a->seq < b->seq;
}

int op_queue_get(op_queue_t *q, char *key, size_t keylen, int timeout_ms, uint64_t *waited_ns)
{
    return op_queue_get_ex(q, key, keylen, timeout_ms, waited_ns, NULL);
}

int op_queue_get_ex(op_queue_t *q, char *key, size_t keylen, int timeout_ms, uint64_t *waited_ns,
                    bool *low)
{
    uint64_t deadline = timeout_ms < 0 ? 0 : now_ms() + (uint64_t)timeout_ms;
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        uint64_t now = now_ms(), next, wake, tnow;
        bool at_limit;
        entry_t *best = NULL;
        if (q->shutdown) {
            rc = -ESHUTDOWN;
            break;
        }
        next = promote(q, now);
        tnow = now_ns();
        /* At the limit, low keys (aged or not: the limit is about where the
         * work came from, aging only about order) stay queued, so a worker
         * stays free for the next normal one. */
        at_limit = q->low_limit && q->low_running >= q->low_limit;
        for (size_t i = 0; i < q->n; i++)
            if (q->e[i].queued && !(at_limit && q->e[i].low) &&
                (!best || before(q, &q->e[i], best, tnow)))
                best = &q->e[i];
        if (best && strlen(best->key) < keylen) {
            memcpy(key, best->key, strlen(best->key) + 1);
            if (waited_ns)
                *waited_ns = tnow > best->ready_ns ? tnow - best->ready_ns : 0;
            best->queued = false;
            best->processing = true;
            best->ran_low = best->low;
            if (best->ran_low)
                q->low_running++;
            if (low)
                *low = best->ran_low;
            rc = 1;
            break;
        }
        if (timeout_ms >= 0 && now >= deadline)
            break;
        wake = next;
        if (timeout_ms >= 0 && (!wake || deadline < wake))
            wake = deadline;
        if (!wake) {
            pthread_cond_wait(&q->cv, &q->mu);
        } else {
            /* Absolute CLOCK_MONOTONIC deadline for the condition variable. */
            struct timespec ts;
            uint64_t rel = wake > now ? wake - now : 0;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += (time_t)(rel / 1000u);
            ts.tv_nsec += (long)(rel % 1000u) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&q->cv, &q->mu, &ts);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void op_queue_done(op_queue_t *q, const char *key)
{
    entry_t *x;
    pthread_mutex_lock(&q->mu);
    x = find(q, key);
    if (x && x->processing) {
        x->processing = false;
        if (x->ran_low) {
            x->ran_low = false;
            q->low_running--;
            pthread_cond_broadcast(&q->cv); /* a held-back low key may go */
        }
        if (x->dirty) {
            x->dirty = false;
            make_ready(q, x, x->low);
            pthread_cond_broadcast(&q->cv);
        }
        gc(q, x);
    }
    pthread_mutex_unlock(&q->mu);
}

size_t op_queue_len(op_queue_t *q)
{
    size_t n = 0;
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < q->n; i++)
        if (q->e[i].queued || q->e[i].due_ms || q->e[i].dirty)
            n++;
    pthread_mutex_unlock(&q->mu);
    return n;
}

void op_queue_shutdown(op_queue_t *q)
{
    pthread_mutex_lock(&q->mu);
    q->shutdown = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}
