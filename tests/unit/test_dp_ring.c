/* Description: dp_ring: file read/write/fsync/fallocate/open/close, sockets,
 * timeouts, SQ-full resubmission, msg_ring and callbacks-after-drain. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dp_ring.h"

typedef struct {
    int calls;
    int saw_all_res; /* set when, at first callback, all peers had res */
    dp_ring_op_t *peers;
    int npeers;
} counter_t;

static void count_cb(dp_ring_op_t *op)
{
    counter_t *c = op->ctx;

    c->calls++;
}

static int ring_setup(void **state)
{
    static dp_ring_t ring;
    int rc = dp_ring_init(&ring, 8, 0);

    if (rc < 0) {
        fprintf(stderr, "skip: io_uring unavailable (%d)\n", rc);
        exit(77);
    }
    *state = &ring;
    return 0;
}

static int ring_teardown(void **state)
{
    dp_ring_dispose(*state);
    return 0;
}

static void run_until(dp_ring_t *ring, int *calls, int want)
{
    for (int i = 0; i < 1000 && *calls < want; i++)
        assert_true(dp_ring_run_once(ring, 1, 1000) >= 0);
    assert_int_equal(*calls, want);
}

static void test_file_ops(void **state)
{
    dp_ring_t *ring = *state;
    char path[] = "/tmp/dp_ring_XXXXXX";
    char wbuf[64], rbuf[64];
    dp_ring_op_t op, op2;
    counter_t c = {0};
    int fd, dfd;

    assert_non_null(mkdtemp(path));
    dfd = open(path, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    assert_int_equal(dp_ring_prep_openat(ring, &op, dfd, "f", O_RDWR | O_CREAT, 0644, count_cb, &c),
                     0);
    run_until(ring, &c.calls, 1);
    assert_true(op.res >= 0);
    fd = op.res;
    assert_int_equal(dp_ring_prep_fallocate(ring, &op, fd, 0, 0, 4096, count_cb, &c), 0);
    run_until(ring, &c.calls, 2);
    assert_int_equal(op.res, 0);
    memset(wbuf, 'x', sizeof(wbuf));
    assert_int_equal(dp_ring_prep_write(ring, &op, fd, wbuf, sizeof(wbuf), 100, count_cb, &c), 0);
    run_until(ring, &c.calls, 3);
    assert_int_equal(op.res, (int)sizeof(wbuf));
    assert_int_equal(dp_ring_prep_fsync(ring, &op, fd, 1, count_cb, &c), 0);
    assert_int_equal(dp_ring_prep_read(ring, &op2, fd, rbuf, sizeof(rbuf), 100, count_cb, &c), 0);
    run_until(ring, &c.calls, 5);
    assert_int_equal(op.res, 0);
    assert_int_equal(op2.res, (int)sizeof(rbuf));
    assert_memory_equal(wbuf, rbuf, sizeof(rbuf));
    {
        struct iovec iov[2] = {{wbuf, 10}, {wbuf + 10, 20}};
        struct iovec riov[1] = {{rbuf, 30}};

        memset(wbuf, 'y', sizeof(wbuf));
        assert_int_equal(dp_ring_prep_writev(ring, &op, fd, iov, 2, 0, count_cb, &c), 0);
        run_until(ring, &c.calls, 6);
        assert_int_equal(op.res, 30);
        assert_int_equal(dp_ring_prep_readv(ring, &op, fd, riov, 1, 0, count_cb, &c), 0);
        run_until(ring, &c.calls, 7);
        assert_int_equal(op.res, 30);
        assert_memory_equal(rbuf, wbuf, 30);
    }
    assert_int_equal(dp_ring_prep_close(ring, &op, fd, count_cb, &c), 0);
    run_until(ring, &c.calls, 8);
    assert_int_equal(op.res, 0);
    assert_int_equal(unlinkat(dfd, "f", 0), 0);
    close(dfd);
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(ring->inflight, 0);
}

/* More ops than SQ slots: prep must submit to make room, none lost. */
static void test_sq_full(void **state)
{
    dp_ring_t *ring = *state;
    dp_ring_op_t ops[64];
    counter_t c = {0};

    for (int i = 0; i < 64; i++)
        assert_int_equal(dp_ring_prep_timeout(ring, &ops[i], 1, count_cb, &c), 0);
    run_until(ring, &c.calls, 64);
    for (int i = 0; i < 64; i++)
        assert_int_equal(ops[i].res, -ETIME);
}

static void drain_check_cb(dp_ring_op_t *op)
{
    counter_t *c = op->ctx;

    if (c->calls == 0) {
        c->saw_all_res = 1;
        for (int i = 0; i < c->npeers; i++)
            if (c->peers[i].res != 1)
                c->saw_all_res = 0;
    }
    c->calls++;
}

static void test_sockets_and_drain_order(void **state)
{
    dp_ring_t *ring = *state;
    dp_ring_op_t sends[4], recv_op;
    counter_t c = {0};
    char rbuf[8];
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    c.peers = sends;
    c.npeers = 4;
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            dp_ring_prep_send(ring, &sends[i], sv[0], "abcd" + i, 1, 0, drain_check_cb, &c), 0);
    /* Sends on a socket with room complete at submission: all four CQEs are
     * ready together and every res is filled before the first callback. */
    assert_int_equal(dp_ring_submit(ring), 4);
    run_until(ring, &c.calls, 4);
    assert_true(c.saw_all_res);
    c.calls = 0;
    assert_int_equal(dp_ring_prep_recv(ring, &recv_op, sv[1], rbuf, sizeof(rbuf), 0, count_cb, &c),
                     0);
    run_until(ring, &c.calls, 1);
    assert_int_equal(recv_op.res, 4);
    assert_memory_equal(rbuf, "abcd", 4);
    close(sv[0]);
    close(sv[1]);
}

static void test_accept(void **state)
{
    dp_ring_t *ring = *state;
    dp_ring_op_t op;
    counter_t c = {0};
    struct sockaddr_un {
        sa_family_t family;
        char path[108];
    } addr;
    char dir[] = "/tmp/dp_ring_XXXXXX";
    int lfd, cfd;

    assert_non_null(mkdtemp(dir));
    memset(&addr, 0, sizeof(addr));
    addr.family = AF_UNIX;
    snprintf(addr.path, sizeof(addr.path), "%s/s", dir);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(dp_ring_prep_accept(ring, &op, lfd, NULL, NULL, 0, count_cb, &c), 0);
    assert_true(dp_ring_submit(ring) >= 0);
    cfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(connect(cfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    run_until(ring, &c.calls, 1);
    assert_true(op.res >= 0);
    close(op.res);
    close(cfd);
    close(lfd);
    unlink(addr.path);
    rmdir(dir);
}

static void test_msg_ring(void **state)
{
    dp_ring_t *ring = *state;
    dp_ring_t other;
    dp_ring_op_t src_op, dst_op;
    counter_t src = {0}, dst = {0};

    assert_int_equal(dp_ring_init(&other, 4, 0), 0);
    dst_op.cb = count_cb;
    dst_op.ctx = &dst;
    dp_ring_expect(&other);
    assert_int_equal(
        dp_ring_prep_msg_ring(ring, &src_op, dp_ring_fd(&other), &dst_op, 42, count_cb, &src), 0);
    run_until(ring, &src.calls, 1);
    if (src_op.res == -EINVAL || src_op.res == -EOPNOTSUPP) {
        dp_ring_dispose(&other);
        skip();
    }
    assert_int_equal(src_op.res, 0);
    run_until(&other, &dst.calls, 1);
    assert_int_equal(dst_op.res, 42);
    assert_int_equal(other.inflight, 0);
    dp_ring_dispose(&other);
}

static void test_run_once_timeout(void **state)
{
    dp_ring_t *ring = *state;

    assert_int_equal(dp_ring_run_once(ring, 1, 10), 0);
    assert_int_equal(dp_ring_run_once(ring, 0, 0), 0);
}

static void test_sqpoll(void **state)
{
    dp_ring_t r;
    dp_ring_op_t op;
    counter_t c = {0};
    int rc = dp_ring_init(&r, 4, DP_RING_SQPOLL);

    if (rc < 0)
        skip();
    assert_int_equal(dp_ring_prep_timeout(&r, &op, 1, count_cb, &c), 0);
    run_until(&r, &c.calls, 1);
    assert_int_equal(op.res, -ETIME);
    dp_ring_dispose(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_ops),
        cmocka_unit_test(test_sq_full),
        cmocka_unit_test(test_sockets_and_drain_order),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_msg_ring),
        cmocka_unit_test(test_run_once_timeout),
        cmocka_unit_test(test_sqpoll),
    };
    return cmocka_run_group_tests(tests, ring_setup, ring_teardown);
}
