/* SPDX-License-Identifier: Apache-2.0 */
/* Fetch and ListOffsets (origin side).
 *
 * A fetch reads its partitions one after the other into one pooled records
 * buffer, each op carrying the bytes still allowed, so max_bytes and the
 * "first batch even if larger" rule hold without splitting the buffer up
 * front. If fewer than min_bytes came back and max_wait allows, the fetch
 * parks: it registers one watch per partition with the owners and waits
 * for the first to fire (data arrived) or its deadline; every watch then
 * comes back exactly once (fired or cancelled) before the fetch runs
 * again. */
#include "dp_srv.h"

#include <assert.h>
#include <string.h>

typedef struct fetch_state {
    dp_kfetch_tresp_t *topics;
    dp_kfetch_presp_t *parts;
    dp_watch_t *watches;
    struct iovec *iov;
    int iov_max;
    uint8_t *buf;     /* records */
    uint32_t buf_cap; /* bytes of buf */
    uint32_t limit;   /* response max_bytes (capped) */
    uint32_t used;    /* bytes of buf taken, alignment slack of direct reads included */
    uint32_t bytes;   /* record bytes this pass returns (metric, min_bytes) */
    int next;         /* next op of the current pass */
    int outstanding;  /* parallel pass: ops not yet back */
    uint32_t region;  /* parallel pass: buffer bytes per op, 0 = sequential */
    int watches_out;  /* registered, reply not yet seen */
    bool woken;
    bool parked;
    uint64_t deadline_ms;
    dp_req_t *pnext; /* worker's parked list */
} fetch_state_t;

#define FETCH_CAP_BYTES (8u << 20)

static void fetch_pass(dp_req_t *r);

static int enc_fetch(dp_req_t *r, dp_kwr_t *w)
{
    const dp_kreq_fetch_t *f = &r->k.u.fetch;
    fetch_state_t *s = r->api;
    int rc;

    /* The response is the encoder's scatter list: framing in w, records
     * from the fetch buffer (dp_broker_finish keeps it). */
    rc = dp_kproto_fetch_resp(w, r->k.hdr.api_version, r->k.hdr.correlation_id, 0, DP_KERR_NONE, 0,
                              f->topic_count, s->topics, s->iov, s->iov_max, &r->iovcnt);
    r->iov = rc == 0 ? s->iov : NULL;
    if (rc != 0)
        r->iovcnt = 0;
    return rc;
}

static void fetch_respond(dp_req_t *r)
{
    const dp_kreq_fetch_t *f = &r->k.u.fetch;
    fetch_state_t *s = r->api;
    size_t hint = 256;
    int k = 0;

    for (int32_t i = 0; i < f->topic_count; i++) {
        hint += (size_t)f->topics[i].name.len + 16 + (size_t)f->topics[i].part_count * 64;
        for (int32_t j = 0; j < f->topics[i].part_count; j++, k++) {
            dp_pop_t *op = &r->pops[k];
            dp_kfetch_presp_t *pr = &s->parts[k];

            pr->partition = op->partition;
            pr->error_code = op->error;
            pr->high_watermark = op->error == 0 ? op->hw : -1;
            pr->last_stable_offset = pr->high_watermark;
            pr->log_start_offset = op->error == 0 ? op->log_start : -1;
            pr->records = op->u.fetch.got > 0 ? op->u.fetch.dst : NULL;
            pr->records_len = (int32_t)op->u.fetch.got;
        }
    }
    dp_counter_add(&r->w->m.fetch_bytes, s->bytes);
    dp_hist_record_ns(&r->w->m.fetch_latency, dp_worker_now_ns() - r->t0_ns);
    dp_broker_respond(r, hint, enc_fetch);
}

static void park(dp_req_t *r)
{
    fetch_state_t *s = r->api;
    dp_worker_t *w = r->w;

    s->parked = true;
    s->woken = false;
    s->pnext = w->parked;
    w->parked = r;
    s->watches_out = 0;
    for (int i = 0; i < r->npops; i++) {
        dp_pop_t *op = &r->pops[i];
        dp_watch_t *wt = &s->watches[i];

        if (op->owner == NULL || op->error != 0)
            continue;
        memset(wt, 0, sizeof(*wt));
        wt->req = r;
        wt->origin = w;
        wt->topic_id = op->topic_id;
        wt->partition = op->partition;
        wt->offset = op->hw; /* wake once anything past what we saw lands */
        wt->out = true;
        s->watches_out++;
    }
    /* A pass parks only with at least one healthy partition (errors and
     * empty requests answer at once), so there is a watch to wait for. */
    assert(s->watches_out > 0);
    for (int i = 0; i < r->npops; i++) {
        if (s->watches[i].out)
            dp_worker_post(w, r->pops[i].owner, &s->watches[i].msg, dp_part_watch);
    }
}

static void unpark(dp_req_t *r)
{
    fetch_state_t *s = r->api;
    dp_req_t **pp = &r->w->parked;

    while (*pp != r)
        pp = &((fetch_state_t *)(*pp)->api)->pnext;
    *pp = s->pnext;
    s->parked = false;
}

/* The fetch woke (data or deadline): cancel the watches still out. */
static void wake(dp_req_t *r)
{
    fetch_state_t *s = r->api;

    if (s->woken)
        return;
    s->woken = true;
    for (int i = 0; i < r->npops; i++)
        if (s->watches[i].out)
            dp_worker_post(r->w, r->pops[i].owner, &s->watches[i].cancel, dp_part_unwatch);
}

/* Every watch is back: run again, or answer if the deadline passed. */
static void settle(dp_req_t *r)
{
    fetch_state_t *s = r->api;
    dp_worker_t *w = r->w;

    if (s->watches_out > 0 || !s->woken || !s->parked)
        return;
    unpark(r);
    if (w->now_ms >= s->deadline_ms || w->stopping || r->conn->closing) {
        fetch_respond(r);
        return;
    }
    s->used = 0;
    s->bytes = 0;
    s->next = 0;
    fetch_pass(r);
}

void dp_fetch_watch_reply(dp_worker_t *w, dp_msg_t *m)
{
    dp_watch_t *wt = (dp_watch_t *)m;
    dp_req_t *r = wt->req;
    fetch_state_t *s = r->api;

    (void)w;
    wt->out = false;
    s->watches_out--;
    wake(r);
    settle(r);
}

void dp_fetch_tick(dp_worker_t *w)
{
    dp_req_t *r = w->parked, *next;

    for (; r != NULL; r = next) {
        fetch_state_t *s = r->api;

        next = s->pnext;
        if (w->now_ms >= s->deadline_ms || w->stopping || r->conn->closing) {
            s->deadline_ms = 0;
            wake(r);
            settle(r);
        }
    }
}

static void fetch_pass_done(dp_req_t *r);

/* Parallel pass: every op back, the pass is complete. */
static void fetch_par_reply(dp_worker_t *w, dp_msg_t *m)
{
    dp_pop_t *op = (dp_pop_t *)m;
    dp_req_t *r = op->req;
    fetch_state_t *s = r->api;

    (void)w;
    s->used += op->u.fetch.got;
    s->bytes += op->u.fetch.got;
    if (--s->outstanding == 0)
        fetch_pass_done(r);
}

/*
 * When every partition's share fits the response (n * (partition max +
 * one largest batch) <= limit), the ops run at once, each into its own
 * region of the buffer, so the partitions' disk reads overlap instead of
 * queueing one behind the other. Returns false to run the pass in turn.
 */
static bool fetch_par_start(dp_req_t *r)
{
    fetch_state_t *s = r->api;
    uint32_t batch_max = r->w->st->cfg.log.batch_bytes_max;
    uint64_t region = 0, pmax = 0;
    int live = 0;

    for (int i = 0; i < r->npops; i++) {
        if (r->pops[i].owner == NULL)
            continue;
        live++;
        if (r->pops[i].u.fetch.partition_max == 0)
            return false;
        if (r->pops[i].u.fetch.partition_max > pmax)
            pmax = r->pops[i].u.fetch.partition_max;
    }
    if (live < 2 || (uint64_t)live * (pmax + batch_max) > s->limit)
        return false;
    region = (pmax + batch_max + 4 * DP_FETCH_ALIGN + 63) & ~(uint64_t)63;
    if ((uint64_t)live * region > s->buf_cap)
        return false;
    s->region = (uint32_t)region;
    s->outstanding = live;
    live = 0;
    for (int i = 0; i < r->npops; i++) {
        dp_pop_t *op = &r->pops[i];

        if (op->owner == NULL)
            continue;
        op->error = 0;
        op->u.fetch.got = 0;
        op->u.fetch.dst = s->buf + (size_t)live * region;
        op->u.fetch.dst_cap = (uint32_t)region;
        op->u.fetch.max_bytes = op->u.fetch.partition_max;
        op->req = r;
        op->origin = r->w;
        op->reply_fn = fetch_par_reply;
        live++;
    }
    /* Replies run on this worker's thread once this returns, so every op
     * is set up before any comes back. */
    for (int i = 0; i < r->npops; i++)
        if (r->pops[i].owner != NULL)
            dp_worker_post(r->w, r->pops[i].owner, &r->pops[i].msg, dp_part_exec);
    return true;
}

static void fetch_step_reply(dp_worker_t *w, dp_msg_t *m)
{
    dp_pop_t *op = (dp_pop_t *)m;
    dp_req_t *r = op->req;
    fetch_state_t *s = r->api;

    (void)w;
    /* A partition's records may start past where it was told to write
     * (an aligned direct read): the next one writes after them. */
    if (op->u.fetch.got > 0)
        s->used = (uint32_t)(op->u.fetch.dst + op->u.fetch.got - s->buf);
    s->bytes += op->u.fetch.got;
    s->next++;
    fetch_pass(r);
}

static void fetch_pass(dp_req_t *r)
{
    fetch_state_t *s = r->api;

    if (s->next == 0 && s->used == 0 && fetch_par_start(r))
        return;
    while (s->next < r->npops) {
        dp_pop_t *op = &r->pops[s->next];

        if (op->owner == NULL) {
            s->next++;
            continue;
        }
        op->error = 0;
        op->u.fetch.got = 0;
        op->u.fetch.dst = s->buf + s->used;
        op->u.fetch.dst_cap = s->buf_cap - s->used;
        /* Once the response is full, later partitions only report their
         * offsets; the first batch is always whole (it fits: buf_cap
         * reserves a largest batch past the limit). */
        op->u.fetch.max_bytes = s->used >= s->limit ? 0 : s->limit - s->used;
        if (op->u.fetch.max_bytes > op->u.fetch.partition_max)
            op->u.fetch.max_bytes = op->u.fetch.partition_max;
        op->req = r;
        op->origin = r->w;
        op->reply_fn = fetch_step_reply;
        dp_worker_post(r->w, op->owner, &op->msg, dp_part_exec);
        return;
    }
    fetch_pass_done(r);
}

static void fetch_pass_done(dp_req_t *r)
{
    const dp_kreq_fetch_t *f = &r->k.u.fetch;
    fetch_state_t *s = r->api;

    {
        bool errors = false;

        for (int i = 0; i < r->npops; i++)
            if (r->pops[i].error != 0)
                errors = true;
        /* min_bytes <= 0 asks for an immediate answer, as in Kafka. */
        if (f->min_bytes <= 0 || s->bytes >= (uint32_t)f->min_bytes || errors ||
            f->max_wait_ms <= 0 || r->w->now_ms >= s->deadline_ms || r->w->stopping ||
            r->conn->closing || r->npops == 0) {
            fetch_respond(r);
            return;
        }
    }
    park(r);
}

void dp_fetch_start(dp_req_t *r)
{
    const dp_kreq_fetch_t *f = &r->k.u.fetch;
    const dp_catalog_snap_t *snap = dp_catalog_get(r->w->st->catalog);
    dp_store_t *st = r->w->st;
    uint32_t limit, batch_max = st->cfg.log.batch_bytes_max;
    size_t fixed, bytes;
    fetch_state_t *s;
    int n = 0, k = 0;
    uint8_t *mem = NULL;

    for (int32_t i = 0; i < f->topic_count; i++)
        n += f->topics[i].part_count;
    fixed = sizeof(*s) +
            (size_t)n * (sizeof(dp_pop_t) + sizeof(dp_watch_t) + sizeof(dp_kfetch_presp_t) +
                         2 * sizeof(struct iovec)) +
            (size_t)f->topic_count * sizeof(dp_kfetch_tresp_t) + sizeof(struct iovec) + 256;
    fixed = (fixed + 63) & ~(size_t)63;
    limit = f->max_bytes > 0 ? (uint32_t)f->max_bytes : FETCH_CAP_BYTES;
    if (limit > FETCH_CAP_BYTES)
        limit = FETCH_CAP_BYTES;
    /* Under memory pressure, shrink the response rather than fail it. */
    for (;; limit /= 2) {
        /* + room for a direct read (dp_part.c): the buffer's alignment, the
         * range's start and end alignment, and up to one index interval of
         * batches before the fetch offset, each under 4 KiB. */
        bytes = fixed + limit + batch_max + 4 * DP_FETCH_ALIGN;
        mem = dp_pool_alloc(&r->w->pool, bytes, &r->aux_cap);
        if (mem != NULL || limit < 4096)
            break;
    }
    if (mem == NULL) {
        dp_conn_abort(r, "memory budget exhausted");
        return;
    }
    memset(mem, 0, fixed);
    r->aux = mem;
    s = r->api = mem;
    r->pops = (dp_pop_t *)(s + 1);
    r->npops = n;
    s->watches = (dp_watch_t *)(r->pops + n);
    s->parts = (dp_kfetch_presp_t *)(s->watches + n);
    s->topics = (dp_kfetch_tresp_t *)(s->parts + n);
    s->iov = (struct iovec *)(s->topics + f->topic_count);
    s->iov_max = 2 * n + 1;
    s->buf = mem + fixed;
    s->buf_cap = (uint32_t)(r->aux_cap - fixed);
    s->limit = limit;
    {
        uint32_t wait = f->max_wait_ms > 0 ? (uint32_t)f->max_wait_ms : 0;

        if (wait > st->cfg.fetch_wait_max_ms)
            wait = st->cfg.fetch_wait_max_ms;
        s->deadline_ms = dp_worker_now_ns() / 1000000u + wait;
    }
    for (int32_t i = 0; i < f->topic_count; i++) {
        const dp_kfetch_topic_t *t = &f->topics[i];

        s->topics[i].name = t->name;
        s->topics[i].part_count = t->part_count;
        s->topics[i].parts = &s->parts[k];
        for (int32_t j = 0; j < t->part_count; j++, k++) {
            dp_pop_t *op = &r->pops[k];

            op->kind = DP_POP_FETCH;
            op->partition = t->parts[j].partition;
            op->u.fetch.offset = t->parts[j].fetch_offset;
            op->u.fetch.partition_max =
                t->parts[j].partition_max_bytes > 0 ? (uint32_t)t->parts[j].partition_max_bytes : 0;
            op->error = dp_broker_route(r, snap, t->name, op->partition, op);
        }
    }
    r->resume = NULL;
    fetch_pass(r);
}

/* ---- ListOffsets ---- */

typedef struct offsets_state {
    dp_klist_offsets_tresp_t *topics;
    dp_klist_offsets_presp_t *parts;
} offsets_state_t;

static int enc_offsets(dp_req_t *r, dp_kwr_t *w)
{
    const dp_kreq_list_offsets_t *l = &r->k.u.list_offsets;
    offsets_state_t *s = r->api;

    return dp_kproto_list_offsets_resp(w, r->k.hdr.api_version, r->k.hdr.correlation_id, 0,
                                       l->topic_count, s->topics);
}

static void offsets_done(dp_req_t *r)
{
    const dp_kreq_list_offsets_t *l = &r->k.u.list_offsets;
    offsets_state_t *s = r->api;
    size_t hint = 256;

    for (int32_t i = 0; i < l->topic_count; i++)
        hint += (size_t)l->topics[i].name.len + 16 + (size_t)l->topics[i].part_count * 40;
    for (int k = 0; k < r->npops; k++) {
        dp_pop_t *op = &r->pops[k];
        dp_klist_offsets_presp_t *pr = &s->parts[k];

        pr->partition = op->partition;
        pr->error_code = op->error;
        pr->offset = op->error == 0 ? op->u.offsets.offset : -1;
        pr->timestamp = op->error == 0 ? op->u.offsets.found_ts : -1;
        pr->leader_epoch = 0;
    }
    dp_broker_respond(r, hint, enc_offsets);
}

void dp_offsets_start(dp_req_t *r)
{
    const dp_kreq_list_offsets_t *l = &r->k.u.list_offsets;
    const dp_catalog_snap_t *snap = dp_catalog_get(r->w->st->catalog);
    offsets_state_t *s;
    int n = 0, k = 0;
    size_t bytes;
    uint8_t *mem;

    for (int32_t i = 0; i < l->topic_count; i++)
        n += l->topics[i].part_count;
    bytes = sizeof(*s) + (size_t)n * (sizeof(dp_pop_t) + sizeof(dp_klist_offsets_presp_t)) +
            (size_t)l->topic_count * sizeof(dp_klist_offsets_tresp_t) + 64;
    mem = dp_broker_aux(r, bytes);
    if (mem == NULL)
        return;
    s = (offsets_state_t *)mem;
    r->pops = (dp_pop_t *)(s + 1);
    r->npops = n;
    s->parts = (dp_klist_offsets_presp_t *)(r->pops + n);
    s->topics = (dp_klist_offsets_tresp_t *)(s->parts + n);
    for (int32_t i = 0; i < l->topic_count; i++) {
        const dp_klist_offsets_topic_t *t = &l->topics[i];

        s->topics[i].name = t->name;
        s->topics[i].part_count = t->part_count;
        s->topics[i].parts = &s->parts[k];
        for (int32_t j = 0; j < t->part_count; j++, k++) {
            dp_pop_t *op = &r->pops[k];

            op->kind = DP_POP_OFFSETS;
            op->partition = t->parts[j].partition;
            op->u.offsets.timestamp = t->parts[j].timestamp;
            op->error = dp_broker_route(r, snap, t->name, op->partition, op);
        }
    }
    r->resume = offsets_done;
    dp_broker_send_pops(r);
}
