/* SPDX-License-Identifier: Apache-2.0 */
/* Store worker: one thread, one io_uring ring. The loop submits and waits on
 * the ring, then drains the cross-thread inbox and the local message queue.
 * The inbox is a lock-free multi-producer stack (reversed on drain, so each
 * sender's messages stay in order) with an eventfd wake-up written only on
 * the empty -> non-empty transition. A 10 ms tick drives log flush timers,
 * fetch deadlines, group sessions and retention. */
#include "dp_srv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "dp_group.h"
#include "wc_log.h"

#define TICK_MS 10

uint64_t dp_worker_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t dp_worker_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

dp_worker_t *dp_worker_control(dp_store_t *st)
{
    return &st->workers[0];
}

bool dp_worker_leads(const dp_store_t *st, int32_t p)
{
    return p % st->cfg.replicas == st->cfg.replica_index;
}

uint64_t dp_worker_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

dp_worker_t *dp_worker_owner(dp_store_t *st, const dp_topic_t *t, int32_t p)
{
    /* Consecutive local partitions of a topic land on consecutive workers,
     * starting at a per-topic offset so small topics spread too. */
    uint64_t local = (uint64_t)(p / st->cfg.replicas);

    return &st->workers[(dp_worker_hash(t->name, strlen(t->name)) + local) %
                        (uint64_t)st->nworkers];
}

void dp_worker_post(dp_worker_t *from, dp_worker_t *to, dp_msg_t *m, dp_msg_fn fn)
{
    dp_msg_t *head;

    m->fn = fn;
    m->next = NULL;
    if (from == to) {
        if (to->local_tail != NULL)
            to->local_tail->next = m;
        else
            to->local_head = m;
        to->local_tail = m;
        return;
    }
    head = atomic_load_explicit(&to->inbox, memory_order_relaxed);
    do {
        m->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&to->inbox, &head, m, memory_order_release,
                                                    memory_order_relaxed));
    if (head == NULL) {
        uint64_t one = 1;

        /* The receiver re-arms its eventfd read before it drains, so a
         * wake-up written here is never lost. */
        if (write(to->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            wc_log(WC_LOG_ERROR, "store", "eventfd write failed", "{s:s}", "error",
                   strerror(errno));
    }
}

static void drain_inbox(dp_worker_t *w)
{
    dp_msg_t *list = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
    dp_msg_t *rev = NULL;

    while (list != NULL) {
        dp_msg_t *next = list->next;

        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev != NULL) {
        dp_msg_t *next = rev->next;

        rev->fn(w, rev);
        rev = next;
    }
}

static void drain_local(dp_worker_t *w)
{
    while (w->local_head != NULL) {
        dp_msg_t *m = w->local_head;

        w->local_head = m->next;
        if (w->local_head == NULL)
            w->local_tail = NULL;
        m->fn(w, m);
    }
}

static void efd_cb(dp_ring_op_t *op);

static void arm_efd(dp_worker_t *w)
{
    if (dp_ring_prep_read(&w->ring, &w->efd_op, w->efd, &w->efd_buf, sizeof(w->efd_buf), 0, efd_cb,
                          w) != 0)
        w->failed = -EBUSY;
}

static void efd_cb(dp_ring_op_t *op)
{
    dp_worker_t *w = op->ctx;

    arm_efd(w);
    drain_inbox(w);
}

static void accept_cb(dp_ring_op_t *op);

static void arm_accept(dp_worker_t *w)
{
    if (w->stopping || w->listen_fd < 0)
        return;
    if (dp_ring_prep_accept(&w->ring, &w->accept_op, w->listen_fd, NULL, NULL, SOCK_CLOEXEC,
                            accept_cb, w) != 0)
        wc_log(WC_LOG_ERROR, "store", "cannot queue accept", "{s:i}", "worker", w->index);
}

static void accept_cb(dp_ring_op_t *op)
{
    dp_worker_t *w = op->ctx;

    if (op->res >= 0) {
        if (w->stopping)
            close(op->res);
        else
            dp_conn_accept(w, op->res);
    } else if (op->res != -ECANCELED && op->res != -EINVAL) {
        wc_log(WC_LOG_WARN, "store", "accept failed", "{s:s}", "error", strerror(-op->res));
    }
    arm_accept(w);
}

static void tick_cb(dp_ring_op_t *op);

static void arm_tick(dp_worker_t *w)
{
    if (dp_ring_prep_timeout(&w->ring, &w->tick_op, TICK_MS, tick_cb, w) != 0)
        w->failed = -EBUSY;
}

static void tick_cb(dp_ring_op_t *op)
{
    dp_worker_t *w = op->ctx;
    dp_store_t *st = w->st;

    w->now_ms = dp_worker_now_ns() / 1000000u;
    dp_part_tick_all(w);
    dp_fetch_tick(w);
    if (w->index == 0) {
        if (st->groups != NULL)
            dp_group_tick(st->groups, w->now_ms);
        dp_catalog_reclaim(st->catalog);
    }
    if (w->now_ms - w->last_retention_ms >= st->cfg.retention_check_ms) {
        w->last_retention_ms = w->now_ms;
        dp_part_retain_all(w);
    }
    dp_part_reap(w, false);
    /* Connections paused for want of pool memory freed by other ones. */
    if (w->pool.stats.denied != w->denied_seen) {
        w->denied_seen = w->pool.stats.denied;
        dp_conn_resume_paused(w);
    }
    arm_tick(w);
}

/* A stopping worker may leave once its connections are gone and no request
 * anywhere is alive: only live requests send partition ops, so after that no
 * message can reach this worker any more. */
static bool worker_quiet(dp_worker_t *w)
{
    return w->conns == NULL && w->local_head == NULL && atomic_load(&w->inbox) == NULL &&
           atomic_load(&w->st->live_reqs) == 0;
}

static void begin_stop(dp_worker_t *w)
{
    w->stopping = true;
    if (w->listen_fd >= 0) {
        shutdown(w->listen_fd, SHUT_RDWR);
        close(w->listen_fd);
        w->listen_fd = -1;
    }
    dp_conn_close_all(w);
    dp_fetch_tick(w); /* parked fetches answer now */
}

static void *worker_main(void *arg)
{
    dp_worker_t *w = arg;
    dp_store_t *st = w->st;
    int rc;

    w->now_ms = dp_worker_now_ns() / 1000000u;
    w->last_retention_ms = w->now_ms;
    arm_efd(w);
    arm_tick(w);
    arm_accept(w);
    for (;;) {
        dp_catalog_quiesce(st->catalog, w->catalog_slot);
        rc = dp_ring_run_once(&w->ring, 1, -1);
        if (rc < 0 && rc != -EINTR && rc != -ETIME) {
            wc_log(WC_LOG_ERROR, "store", "ring failed", "{s:i, s:s}", "worker", w->index, "error",
                   strerror(-rc));
            w->failed = rc;
            break;
        }
        drain_inbox(w);
        drain_local(w);
        dp_part_check_watchers(w);
        drain_local(w);
        if (atomic_load(&st->stop) && !w->stopping)
            begin_stop(w);
        /* Answer parked joins and syncs so their requests can finish. */
        if (w->stopping && w->index == 0 && st->groups != NULL && dp_group_mgr_idle(st->groups) &&
            dp_group_mgr_close(st->groups) == 0)
            st->groups = NULL;
        if (w->stopping && worker_quiet(w))
            break;
    }
    /* Flush and close every partition: drive the ring until logs are idle. */
    while (!dp_part_reap(w, true))
        dp_ring_run_once(&w->ring, 1, TICK_MS);
    while (w->index == 0 && st->groups != NULL && dp_group_mgr_close(st->groups) == -EBUSY)
        dp_ring_run_once(&w->ring, 1, TICK_MS);
    if (w->index == 0)
        st->groups = NULL;
    return NULL;
}

int dp_worker_init(dp_worker_t *w, dp_store_t *st, int index, char *err, size_t errlen)
{
    int rc;

    memset(w, 0, sizeof(*w));
    w->st = st;
    w->index = index;
    w->listen_fd = -1;
    w->efd = -1;
    dp_pool_init(&w->pool, st->cfg.worker_memory_bytes);
    rc = dp_ring_init(&w->ring, 4096, st->cfg.sqpoll ? DP_RING_SQPOLL : 0);
    if (rc != 0) {
        snprintf(err, errlen, "io_uring setup: %s", strerror(-rc));
        return rc;
    }
    w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->efd < 0) {
        rc = -errno;
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        dp_ring_dispose(&w->ring);
        return rc;
    }
    w->parts_buckets = 1024;
    w->parts = calloc(w->parts_buckets, sizeof(*w->parts));
    if (w->parts == NULL) {
        close(w->efd);
        dp_ring_dispose(&w->ring);
        return -ENOMEM;
    }
    w->catalog_slot = dp_catalog_reader(st->catalog);
    return 0;
}

int dp_worker_listen(dp_worker_t *w, const char *host, int port, char *err, size_t errlen)
{
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr *sa = (struct sockaddr *)&a6;
    socklen_t salen = sizeof(a6);
    int fd, rc, one = 1, zero = 0, family = AF_INET6;

    if (host != NULL && inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        family = AF_INET;
        sa = (struct sockaddr *)&a4;
        salen = sizeof(a4);
    } else if (host != NULL && inet_pton(AF_INET6, host, &a6.sin6_addr) != 1) {
        snprintf(err, errlen, "bind address %s is not an IP address", host);
        return -EINVAL;
    } else if (host == NULL) {
        a6.sin6_addr = in6addr_any;
    }
    fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    /* One listener per worker on the same port: the kernel spreads new
     * connections across workers. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    if (family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, sa, salen) != 0 || listen(fd, 1024) != 0)
        goto fail;
    w->listen_fd = fd;
    return 0;
fail:
    rc = -errno;
    snprintf(err, errlen, "listen on port %d: %s", port, strerror(-rc));
    if (fd >= 0)
        close(fd);
    return rc;
}

int dp_worker_spawn(dp_worker_t *w)
{
    return -pthread_create(&w->thread, NULL, worker_main, w);
}

int dp_worker_join(dp_worker_t *w)
{
    pthread_join(w->thread, NULL);
    return w->failed;
}

void dp_worker_wake(dp_worker_t *w)
{
    uint64_t one = 1;

    (void)!write(w->efd, &one, sizeof(one));
}

void dp_worker_dispose(dp_worker_t *w)
{
    if (w->listen_fd >= 0)
        close(w->listen_fd);
    if (w->efd >= 0)
        close(w->efd);
    free(w->parts);
    dp_ring_dispose(&w->ring);
    dp_pool_dispose(&w->pool);
}
