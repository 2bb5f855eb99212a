/* SPDX-License-Identifier: Apache-2.0 */
/* Store connections: receive Kafka frames into a pooled buffer, copy each
 * complete frame into its own request block and dispatch it, then send
 * responses strictly in request order (the protocol requires it), several
 * requests in flight per connection. A frame larger than the receive
 * buffer is received straight into its request block. A connection that
 * breaks the protocol is closed; nothing it did affects other connections. */
#include "dp_srv.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "wc_log.h"

#define RBUF_BYTES (64u * 1024u)

static void conn_recv_cb(dp_ring_op_t *op);
static void conn_send_cb(dp_ring_op_t *op);
static void conn_maybe_free(dp_conn_t *c);
static void conn_pump(dp_conn_t *c);

static void conn_close(dp_conn_t *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    if (why != NULL)
        wc_log(WC_LOG_DEBUG, "store", "closing connection", "{s:I, s:s}", "conn", (json_int_t)c->id,
               "reason", why);
    /* Wakes a pending recv (it completes with 0) and fails pending sends. */
    shutdown(c->fd, SHUT_RDWR);
}

/* Every entry into a connection (ring callbacks, request completions) is
 * bracketed so that the connection is freed only by the outermost frame,
 * never under a caller still using it. */
static void conn_enter(dp_conn_t *c)
{
    c->busy++;
}

static void conn_leave(dp_conn_t *c)
{
    if (--c->busy == 0)
        conn_maybe_free(c);
}

static void req_free(dp_req_t *r)
{
    dp_worker_t *w = r->w;

    dp_pool_free(&w->pool, r->out);
    dp_pool_free(&w->pool, r->aux);
    dp_pool_free(&w->pool, r);
    atomic_fetch_sub(&w->st->live_reqs, 1);
}

static void conn_unlink_req(dp_conn_t *c, dp_req_t *r)
{
    dp_req_t **pp = &c->head, *prev = NULL;

    while (*pp != r) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = r->next;
    if (c->tail == r)
        c->tail = prev;
    c->nreq--;
}

static void conn_maybe_free(dp_conn_t *c)
{
    dp_worker_t *w = c->w;

    if (!c->closing || c->recv_inflight || c->send_inflight || c->busy > 0)
        return;
    /* Requests still running on other workers finish first; completed
     * ones are dropped unsent. */
    while (c->head != NULL && c->head->state == DP_REQ_DONE) {
        dp_req_t *r = c->head;

        conn_unlink_req(c, r);
        req_free(r);
    }
    if (c->head != NULL || c->closed)
        return;
    c->closed = true;
    if (c->big != NULL) {
        req_free(c->big);
        c->big = NULL;
    }
    close(c->fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->nconns--;
    dp_gauge_add(&w->m.open_connections, -1);
    dp_pool_free(&w->pool, c->rbuf);
    dp_pool_free(&w->pool, c);
}

void dp_conn_accept(dp_worker_t *w, int fd)
{
    dp_conn_t *c;
    int one = 1;

    if (w->nconns >= w->st->cfg.conns_max) {
        wc_log(WC_LOG_WARN, "store", "connection limit reached", "{s:i}", "worker", w->index);
        close(fd);
        return;
    }
    c = dp_pool_alloc(&w->pool, sizeof(*c), NULL);
    if (c == NULL) {
        close(fd);
        return;
    }
    memset(c, 0, sizeof(*c));
    c->rbuf = dp_pool_alloc(&w->pool, RBUF_BYTES, &c->rcap);
    if (c->rbuf == NULL) {
        dp_pool_free(&w->pool, c);
        close(fd);
        return;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->w = w;
    c->fd = fd;
    c->id = ((uint64_t)w->index << 48) | ++w->next_conn_id;
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    dp_counter_add(&w->m.connections, 1);
    dp_gauge_add(&w->m.open_connections, 1);
    conn_enter(c);
    conn_pump(c);
    conn_leave(c);
}

static void arm_recv(dp_conn_t *c)
{
    uint8_t *dst;
    size_t room;

    if (c->closing || c->recv_inflight)
        return;
    if (c->big != NULL) {
        dst = c->big->frame + c->big_have;
        room = c->big->frame_len - c->big_have;
    } else {
        dst = c->rbuf + c->rlen;
        room = c->rcap - c->rlen;
    }
    if (dp_ring_prep_recv(&c->w->ring, &c->recv_op, c->fd, dst, room, 0, conn_recv_cb, c) != 0) {
        conn_close(c, "no submission slot");
        return;
    }
    c->recv_inflight = true;
}

/* A request block: the dp_req_t, the decode arena, then the frame. */
static dp_req_t *req_new(dp_conn_t *c, uint32_t frame_len)
{
    dp_worker_t *w = c->w;
    size_t arena = (size_t)frame_len * 32 + 4096;
    size_t hdr = (sizeof(dp_req_t) + 63) & ~(size_t)63;
    dp_req_t *r;

    if (arena > DP_KPROTO_ARENA_BYTES)
        arena = DP_KPROTO_ARENA_BYTES;
    r = dp_pool_alloc(&w->pool, hdr + arena + frame_len, NULL);
    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->conn = c;
    r->w = w;
    dp_karena_init(&r->arena, (uint8_t *)r + hdr, arena);
    r->frame = (uint8_t *)r + hdr + arena;
    r->frame_len = frame_len;
    atomic_fetch_add(&w->st->live_reqs, 1);
    return r;
}

static void req_start(dp_conn_t *c, dp_req_t *r)
{
    int rc;

    r->next = NULL;
    if (c->tail != NULL)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->nreq++;
    r->t0_ns = dp_worker_now_ns();
    rc = dp_kproto_req_decode(r->frame, r->frame_len, &r->arena, &r->k);
    dp_broker_dispatch(r, rc);
}

/* Parses every complete frame in rbuf. Returns false when reading must
 * pause (request limit or memory budget). */
static bool conn_parse(dp_conn_t *c)
{
    dp_store_t *st = c->w->st;
    size_t off = 0;
    bool go = true;

    while (!c->closing) {
        int64_t size;
        dp_req_t *r;

        if (c->nreq >= st->cfg.inflight_max) {
            go = false;
            break;
        }
        size = dp_kproto_frame_size(c->rbuf + off, c->rlen - off, st->cfg.max_request_bytes);
        if (size == -EAGAIN)
            break;
        if (size < 0) {
            dp_counter_add(&c->w->m.protocol_errors, 1);
            wc_log(WC_LOG_WARN, "store", "bad frame size: closing connection", "{s:I}", "conn",
                   (json_int_t)c->id);
            conn_close(c, "bad frame size");
            break;
        }
        /* Incomplete but small enough for the buffer: read more first. */
        if (c->rlen - off < 4 + (size_t)size && 4 + (size_t)size <= c->rcap)
            break;
        r = req_new(c, (uint32_t)size);
        if (r == NULL) {
            go = false; /* memory budget: resume when requests finish */
            break;
        }
        if (c->rlen - off >= 4 + (size_t)size) {
            memcpy(r->frame, c->rbuf + off + 4, (size_t)size);
            off += 4 + (size_t)size;
            req_start(c, r);
            continue;
        }
        /* Larger than the buffer: take what we have, receive the rest
         * directly into the request. */
        c->big = r;
        c->big_have = (uint32_t)(c->rlen - off - 4);
        memcpy(r->frame, c->rbuf + off + 4, c->big_have);
        off = c->rlen;
        break;
    }
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    return go;
}

/* Reads and parses as far as the limits allow; re-arms the receive. */
static void conn_pump(dp_conn_t *c)
{
    if (c->closing || c->recv_inflight || c->big != NULL)
        goto arm;
    c->paused = !conn_parse(c);
arm:
    if (!c->paused)
        arm_recv(c);
}

static void conn_recv_cb(dp_ring_op_t *op)
{
    dp_conn_t *c = op->ctx;

    c->recv_inflight = false;
    conn_enter(c);
    if (c->closing)
        goto out;
    if (op->res <= 0) {
        conn_close(c, op->res == 0 ? "peer closed" : strerror(-op->res));
        goto out;
    }
    if (c->big != NULL) {
        c->big_have += (uint32_t)op->res;
        if (c->big_have == c->big->frame_len) {
            dp_req_t *r = c->big;

            c->big = NULL;
            req_start(c, r);
        }
    } else {
        c->rlen += (size_t)op->res;
    }
    conn_pump(c);
out:
    conn_leave(c);
}

static void conn_send_next(dp_conn_t *c)
{
    dp_req_t *r;

    while (!c->send_inflight && (r = c->head) != NULL && r->state == DP_REQ_DONE) {
        if (c->closing || r->no_response || r->iovcnt == 0) {
            conn_unlink_req(c, r);
            req_free(r);
            continue;
        }
        c->siovcnt = r->iovcnt < 64 ? r->iovcnt : 64;
        memcpy(c->siov, r->iov, (size_t)c->siovcnt * sizeof(struct iovec));
        if (dp_ring_prep_writev(&c->w->ring, &c->send_op, c->fd, c->siov, (unsigned)c->siovcnt, 0,
                                conn_send_cb, c) != 0) {
            conn_close(c, "no submission slot");
            return;
        }
        c->send_inflight = true;
    }
    if (c->paused && !c->closing) {
        c->paused = false;
        conn_pump(c);
    }
}

static void conn_send_cb(dp_ring_op_t *op)
{
    dp_conn_t *c = op->ctx;
    dp_req_t *r = c->head;
    size_t n;
    int i = 0;

    c->send_inflight = false;
    conn_enter(c);
    if (op->res < 0 || c->closing) {
        conn_close(c, op->res < 0 ? strerror(-op->res) : NULL);
        goto out;
    }
    /* Advance through the request's iovecs by what was written. */
    n = (size_t)op->res;
    while (i < r->iovcnt && n >= r->iov[i].iov_len) {
        n -= r->iov[i].iov_len;
        i++;
    }
    if (i == r->iovcnt) {
        conn_unlink_req(c, r);
        req_free(r);
    } else {
        r->iov += i;
        r->iovcnt -= i;
        r->iov[0].iov_base = (uint8_t *)r->iov[0].iov_base + n;
        r->iov[0].iov_len -= n;
    }
    conn_send_next(c);
out:
    conn_leave(c);
}

void dp_conn_done(dp_req_t *r)
{
    dp_conn_t *c = r->conn;

    r->state = DP_REQ_DONE;
    conn_enter(c);
    conn_send_next(c);
    conn_leave(c);
}

void dp_conn_abort(dp_req_t *r, const char *why)
{
    dp_conn_t *c = r->conn;

    dp_counter_add(&r->w->m.protocol_errors, 1);
    wc_log(WC_LOG_WARN, "store", "protocol error: closing connection", "{s:I, s:s, s:i, s:i}",
           "conn", (json_int_t)c->id, "reason", why, "api_key", (int)r->k.hdr.api_key,
           "api_version", (int)r->k.hdr.api_version);
    r->no_response = true;
    conn_enter(c);
    conn_close(c, why);
    dp_conn_done(r);
    conn_leave(c);
}

void dp_conn_resume_paused(dp_worker_t *w)
{
    dp_conn_t *c, *next;

    for (c = w->conns; c != NULL; c = next) {
        next = c->next;
        if (c->paused && !c->closing) {
            c->paused = false;
            conn_enter(c);
            conn_pump(c);
            conn_leave(c);
        }
    }
}

void dp_conn_close_all(dp_worker_t *w)
{
    dp_conn_t *c = w->conns, *next;

    for (; c != NULL; c = next) {
        next = c->next;
        conn_enter(c);
        conn_close(c, "store stopping");
        conn_leave(c);
    }
}
