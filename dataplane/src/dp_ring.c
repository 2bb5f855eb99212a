/* SPDX-License-Identifier: Apache-2.0 */
/* dp_ring: per-worker io_uring wrapper. SQEs carry user_data = dp_ring_op_t
 * pointer; dp_ring_run_once drains the CQ into a local list before running
 * any callback, so callbacks may freely prep and submit more work. */
#include "dp_ring.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

int dp_ring_init(dp_ring_t *ring, unsigned entries, unsigned flags)
{
    struct io_uring_params p;
    int rc;

    assert(ring != NULL);
    assert(entries > 0);
    memset(ring, 0, sizeof(*ring));
    memset(&p, 0, sizeof(p));
    if (flags & DP_RING_SQPOLL) {
        p.flags |= IORING_SETUP_SQPOLL;
        p.sq_thread_idle = 100;
    }
    /* Twice as many CQ slots as SQ slots: a burst of completions must not
     * overflow while callbacks queue follow-up work. */
    p.flags |= IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 2;
    rc = io_uring_queue_init_params(entries, &ring->uring, &p);
    if (rc < 0)
        goto out;
    ring->flags = flags;
    rc = 0;
out:
    return rc;
}

void dp_ring_dispose(dp_ring_t *ring)
{
    assert(ring != NULL);
    io_uring_queue_exit(&ring->uring);
    memset(ring, 0, sizeof(*ring));
}

int dp_ring_fd(const dp_ring_t *ring)
{
    return ring->uring.ring_fd;
}

void dp_ring_expect(dp_ring_t *ring)
{
    ring->inflight++;
}

/* Returns an SQE tagged with op, submitting once to make room if the SQ is
 * full; NULL when even that fails. */
static struct io_uring_sqe *get_sqe(dp_ring_t *ring, dp_ring_op_t *op, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe;

    assert(ring != NULL);
    assert(op != NULL);
    assert(cb != NULL);
    sqe = io_uring_get_sqe(&ring->uring);
    if (sqe == NULL) {
        if (io_uring_submit(&ring->uring) < 0)
            return NULL;
        sqe = io_uring_get_sqe(&ring->uring);
        if (sqe == NULL)
            return NULL;
    }
    op->cb = cb;
    op->ctx = ctx;
    op->res = 0;
    op->cqe_flags = 0;
    op->next = NULL;
    ring->inflight++;
    return sqe;
}

static void tag(struct io_uring_sqe *sqe, dp_ring_op_t *op)
{
    io_uring_sqe_set_data(sqe, op);
}

int dp_ring_prep_read(dp_ring_t *ring, dp_ring_op_t *op, int fd, void *buf, unsigned len,
                      uint64_t off, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_read(sqe, fd, buf, len, off);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_write(dp_ring_t *ring, dp_ring_op_t *op, int fd, const void *buf, unsigned len,
                       uint64_t off, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_write(sqe, fd, buf, len, off);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_write_flags(dp_ring_t *ring, dp_ring_op_t *op, int fd, const void *buf,
                             unsigned len, uint64_t off, int rw_flags, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_write(sqe, fd, buf, len, off);
    sqe->rw_flags = rw_flags;
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_fadvise(dp_ring_t *ring, dp_ring_op_t *op, int fd, uint64_t off, uint32_t len,
                         int advice, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_fadvise(sqe, fd, off, len, advice);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_readv(dp_ring_t *ring, dp_ring_op_t *op, int fd, const struct iovec *iov,
                       unsigned iovcnt, uint64_t off, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_readv(sqe, fd, iov, iovcnt, off);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_writev(dp_ring_t *ring, dp_ring_op_t *op, int fd, const struct iovec *iov,
                        unsigned iovcnt, uint64_t off, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_writev(sqe, fd, iov, iovcnt, off);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_fsync(dp_ring_t *ring, dp_ring_op_t *op, int fd, int datasync, dp_ring_cb cb,
                       void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_fallocate(dp_ring_t *ring, dp_ring_op_t *op, int fd, int mode, uint64_t off,
                           uint64_t len, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_fallocate(sqe, fd, mode, (off_t)off, (off_t)len);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_openat(dp_ring_t *ring, dp_ring_op_t *op, int dfd, const char *path, int flags,
                        unsigned mode, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_openat(sqe, dfd, path, flags, mode);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_close(dp_ring_t *ring, dp_ring_op_t *op, int fd, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_close(sqe, fd);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_send(dp_ring_t *ring, dp_ring_op_t *op, int fd, const void *buf, size_t len,
                      int flags, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_send(sqe, fd, buf, len, flags);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_recv(dp_ring_t *ring, dp_ring_op_t *op, int fd, void *buf, size_t len, int flags,
                      dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_recv(sqe, fd, buf, len, flags);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_connect(dp_ring_t *ring, dp_ring_op_t *op, int fd, const struct sockaddr *addr,
                         socklen_t addrlen, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_connect(sqe, fd, addr, addrlen);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_accept(dp_ring_t *ring, dp_ring_op_t *op, int fd, struct sockaddr *addr,
                        socklen_t *addrlen, int flags, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_accept(sqe, fd, addr, addrlen, flags);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_timeout(dp_ring_t *ring, dp_ring_op_t *op, uint64_t timeout_ms, dp_ring_cb cb,
                         void *ctx)
{
    struct io_uring_sqe *sqe = get_sqe(ring, op, cb, ctx);

    if (sqe == NULL)
        return -EBUSY;
    op->ts.tv_sec = (long long)(timeout_ms / 1000u);
    op->ts.tv_nsec = (long long)(timeout_ms % 1000u) * 1000000;
    io_uring_prep_timeout(sqe, &op->ts, 0, 0);
    tag(sqe, op);
    return 0;
}

int dp_ring_prep_msg_ring(dp_ring_t *ring, dp_ring_op_t *op, int target_fd, dp_ring_op_t *target_op,
                          int32_t res, dp_ring_cb cb, void *ctx)
{
    struct io_uring_sqe *sqe;

    assert(target_op != NULL);
    sqe = get_sqe(ring, op, cb, ctx);
    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_msg_ring(sqe, target_fd, (unsigned)res, (uint64_t)(uintptr_t)target_op, 0);
    tag(sqe, op);
    return 0;
}

int dp_ring_submit(dp_ring_t *ring)
{
    assert(ring != NULL);
    return io_uring_submit(&ring->uring);
}

int dp_ring_run_once(dp_ring_t *ring, unsigned wait_nr, int timeout_ms)
{
    struct io_uring_cqe *cqe = NULL;
    struct __kernel_timespec ts;
    dp_ring_op_t *head = NULL;
    dp_ring_op_t **tailp = &head;
    unsigned head_idx, n = 0;
    int rc, ran = 0;

    assert(ring != NULL);
    if (wait_nr > 0 && timeout_ms != 0) {
        ts.tv_sec = timeout_ms > 0 ? timeout_ms / 1000 : 0;
        ts.tv_nsec = timeout_ms > 0 ? (long long)(timeout_ms % 1000) * 1000000 : 0;
        rc = io_uring_submit_and_wait_timeout(&ring->uring, &cqe, wait_nr,
                                              timeout_ms > 0 ? &ts : NULL, NULL);
    } else {
        rc = io_uring_submit(&ring->uring);
    }
    /* -EBUSY/-EAGAIN: the completion queue is full (or the kernel is short
     * of resources): draining it below is exactly the remedy, so only other
     * errors are fatal. */
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN)
        goto out;
    /* Drain everything first; no callback runs while we walk the CQ. */
    io_uring_for_each_cqe (&ring->uring, head_idx, cqe) {
        dp_ring_op_t *op = io_uring_cqe_get_data(cqe);

        n++;
        /* user_data 0 or LIBURING_UDATA_TIMEOUT: liburing's own wait timer. */
        if (op == NULL || cqe->user_data == LIBURING_UDATA_TIMEOUT)
            continue;
        assert(ring->inflight > 0);
        ring->inflight--;
        op->res = cqe->res;
        op->cqe_flags = cqe->flags;
        op->next = NULL;
        *tailp = op;
        tailp = &op->next;
    }
    io_uring_cq_advance(&ring->uring, n);
    while (head != NULL) {
        dp_ring_op_t *op = head;

        head = op->next;
        op->next = NULL;
        assert(op->cb != NULL);
        op->cb(op);
        ran++;
    }
    rc = ran;
out:
    return rc;
}
