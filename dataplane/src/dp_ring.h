/* SPDX-License-Identifier: Apache-2.0 */
/* dp_ring: a thin io_uring wrapper, one per worker thread. Every I/O carries a
 * caller-owned intrusive completion (dp_ring_op_t) as its SQE user_data; the
 * CQ is drained first and the callbacks run afterwards. See docs/internals/. */
#ifndef DP_RING_H
#define DP_RING_H

#include <liburing.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

typedef struct dp_ring_op dp_ring_op_t;

/** Completion callback; op->res holds the CQE result (>= 0 or -errno). */
typedef void (*dp_ring_cb)(dp_ring_op_t *op);

/**
 * One in-flight operation. The caller owns and embeds it; it must stay
 * valid (and untouched) from a successful prep until its callback runs.
 * Nothing is allocated per I/O.
 */
struct dp_ring_op {
    dp_ring_cb cb;               /**< called once, after the CQ drain */
    void *ctx;                   /**< caller's context */
    int32_t res;                 /**< CQE res: bytes, fd, or -errno */
    uint32_t cqe_flags;          /**< CQE flags (IORING_CQE_F_*) */
    dp_ring_op_t *next;          /**< internal: completed list link */
    struct __kernel_timespec ts; /**< storage for timeout ops */
};

/** A worker's ring. Embedded by the worker; init/dispose on that thread. */
typedef struct dp_ring {
    struct io_uring uring; /**< the liburing ring */
    unsigned inflight;     /**< ops prepared and not yet completed */
    unsigned flags;        /**< DP_RING_* flags given at init */
} dp_ring_t;

/** dp_ring_init flag: kernel SQ polling thread (IORING_SETUP_SQPOLL). */
#define DP_RING_SQPOLL 0x1u

/**
 * Initialises `ring` with `entries` SQ slots (power of two rounded by the
 * kernel). Returns 0 or -errno (e.g. -ENOSYS without io_uring).
 */
int dp_ring_init(dp_ring_t *ring, unsigned entries, unsigned flags);

/** Tears the ring down. Operations still in flight never complete. */
void dp_ring_dispose(dp_ring_t *ring);

/** Registered fd of the ring, the target for dp_ring_prep_msg_ring. */
int dp_ring_fd(const dp_ring_t *ring);

/**
 * Each prep helper takes an SQE (submitting first if the SQ is full), fills
 * it, tags it with `op` and returns 0, or -EBUSY when no SQE can be had; on
 * error the callback is never called. Buffers must stay valid until the
 * callback. Submission happens at dp_ring_submit or dp_ring_run_once.
 */
int dp_ring_prep_read(dp_ring_t *ring, dp_ring_op_t *op, int fd, void *buf, unsigned len,
                      uint64_t off, dp_ring_cb cb, void *ctx);
/** Write `len` bytes at file offset `off`. See dp_ring_prep_read. */
int dp_ring_prep_write(dp_ring_t *ring, dp_ring_op_t *op, int fd, const void *buf, unsigned len,
                       uint64_t off, dp_ring_cb cb, void *ctx);
/** As dp_ring_prep_write, with RWF_* flags (e.g. RWF_DSYNC: complete once durable). */
int dp_ring_prep_write_flags(dp_ring_t *ring, dp_ring_op_t *op, int fd, const void *buf,
                             unsigned len, uint64_t off, int rw_flags, dp_ring_cb cb, void *ctx);
/** posix_fadvise(fd, off, len, advice), e.g. POSIX_FADV_WILLNEED to start readahead. */
int dp_ring_prep_fadvise(dp_ring_t *ring, dp_ring_op_t *op, int fd, uint64_t off, uint32_t len,
                         int advice, dp_ring_cb cb, void *ctx);
/** Vectored read; `iov` must stay valid until the callback. */
int dp_ring_prep_readv(dp_ring_t *ring, dp_ring_op_t *op, int fd, const struct iovec *iov,
                       unsigned iovcnt, uint64_t off, dp_ring_cb cb, void *ctx);
/** Vectored write; `iov` must stay valid until the callback. */
int dp_ring_prep_writev(dp_ring_t *ring, dp_ring_op_t *op, int fd, const struct iovec *iov,
                        unsigned iovcnt, uint64_t off, dp_ring_cb cb, void *ctx);
/** fdatasync(fd) when `datasync` is true, fsync(fd) otherwise. */
int dp_ring_prep_fsync(dp_ring_t *ring, dp_ring_op_t *op, int fd, int datasync, dp_ring_cb cb,
                       void *ctx);
/** fallocate(fd, mode, off, len). */
int dp_ring_prep_fallocate(dp_ring_t *ring, dp_ring_op_t *op, int fd, int mode, uint64_t off,
                           uint64_t len, dp_ring_cb cb, void *ctx);
/** openat(dfd, path, flags, mode); op->res is the new fd. */
int dp_ring_prep_openat(dp_ring_t *ring, dp_ring_op_t *op, int dfd, const char *path, int flags,
                        unsigned mode, dp_ring_cb cb, void *ctx);
/** close(fd). */
int dp_ring_prep_close(dp_ring_t *ring, dp_ring_op_t *op, int fd, dp_ring_cb cb, void *ctx);
/** send(fd, buf, len, flags). */
int dp_ring_prep_send(dp_ring_t *ring, dp_ring_op_t *op, int fd, const void *buf, size_t len,
                      int flags, dp_ring_cb cb, void *ctx);
/** recv(fd, buf, len, flags). */
int dp_ring_prep_recv(dp_ring_t *ring, dp_ring_op_t *op, int fd, void *buf, size_t len, int flags,
                      dp_ring_cb cb, void *ctx);
/** accept4(fd, addr, addrlen, flags); op->res is the new socket. */
int dp_ring_prep_accept(dp_ring_t *ring, dp_ring_op_t *op, int fd, struct sockaddr *addr,
                        socklen_t *addrlen, int flags, dp_ring_cb cb, void *ctx);
/**
 * connect(fd, addr, addrlen) on a (typically non-blocking) socket; op->res is
 * 0 once connected or -errno (e.g. -ECONNREFUSED). `addr` must stay valid
 * until the callback.
 */
int dp_ring_prep_connect(dp_ring_t *ring, dp_ring_op_t *op, int fd, const struct sockaddr *addr,
                         socklen_t addrlen, dp_ring_cb cb, void *ctx);
/**
 * Relative timeout of `timeout_ms`; op->res is -ETIME when it fires.
 * The timespec lives in op->ts.
 */
int dp_ring_prep_timeout(dp_ring_t *ring, dp_ring_op_t *op, uint64_t timeout_ms, dp_ring_cb cb,
                         void *ctx);
/**
 * Posts a CQE to another ring (`target_fd`, see dp_ring_fd) whose
 * user_data is `target_op` and whose res is `res`; the target ring then runs
 * target_op's callback on its own thread. `op` completes on this ring. The
 * target ring owns target_op's accounting: call dp_ring_expect(target) for
 * it before posting, from the target's thread.
 */
int dp_ring_prep_msg_ring(dp_ring_t *ring, dp_ring_op_t *op, int target_fd, dp_ring_op_t *target_op,
                          int32_t res, dp_ring_cb cb, void *ctx);

/** Counts an op that another ring will post here (see msg_ring). */
void dp_ring_expect(dp_ring_t *ring);

/** Submits prepared SQEs. Returns the number submitted or -errno. */
int dp_ring_submit(dp_ring_t *ring);

/**
 * Submits, waits for at least `wait_nr` completions or `timeout_ms`
 * (negative: no limit; 0 never blocks), drains every ready CQE into a local
 * list, then runs the callbacks in completion order. Callbacks may prep and
 * submit new ops. Returns the number of callbacks run or -errno.
 */
int dp_ring_run_once(dp_ring_t *ring, unsigned wait_nr, int timeout_ms);

#endif
