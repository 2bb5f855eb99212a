/* SPDX-License-Identifier: Apache-2.0 */
/* Owner side of the store's partitions: the worker that owns a partition
 * runs every append, read, offset lookup and watch on it, on its own
 * thread, then sends the op back to the worker that asked. */
#include "dp_srv.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp_batch.h"
#include <jansson.h>

#include "wc_log.h"

static uint32_t bucket(const dp_worker_t *w, uint64_t topic_id, int32_t p)
{
    uint64_t h = topic_id * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uint32_t)p * 0xbf58476d1ce4e5b9ull;

    return (uint32_t)(h >> 32) & (w->parts_buckets - 1);
}

dp_part_t *dp_part_find(dp_worker_t *w, uint64_t topic_id, int32_t p)
{
    dp_part_t *part = w->parts[bucket(w, topic_id, p)];

    while (part != NULL && (part->topic_id != topic_id || part->partition != p))
        part = part->hnext;
    return part;
}

static void unlink_part(dp_worker_t *w, dp_part_t *part)
{
    dp_part_t **pp = &w->parts[bucket(w, part->topic_id, part->partition)];

    while (*pp != part)
        pp = &(*pp)->hnext;
    *pp = part->hnext;
    w->nparts--;
}

int64_t dp_part_hw(const dp_part_t *part)
{
    /* With fdatasync per write (the default), consumers only see durable
     * records: nothing a crash can take back. Relaxed policies expose
     * written records, as Kafka does without fsync. */
    if (part->log == NULL)
        return 0;
    return part->flush_every ? dp_log_durable_offset(part->log) : dp_log_written_offset(part->log);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void dp_part_rm_tree(const char *dir)
{
    if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        wc_log(WC_LOG_WARN, "store", "could not remove directory", "{s:s, s:s}", "dir", dir,
               "error", strerror(errno));
}

int dp_part_open_topic(dp_worker_t *w, const dp_topic_t *t, bool fresh, char *err, size_t errlen)
{
    dp_store_t *st = w->st;

    for (int32_t p = 0; p < t->partitions; p++) {
        dp_log_config_t lc = st->cfg.log;
        dp_part_t *part;
        char dir[4400];
        int rc;

        if (!dp_worker_leads(st, p) || dp_worker_owner(st, t, p) != w ||
            dp_part_find(w, t->id, p) != NULL)
            continue;
        if (fresh) {
            /* Leftovers of a topic of the same name deleted before a crash. */
            snprintf(dir, sizeof(dir), "%s/%s-%" PRId32, st->cfg.data_dir, t->name, p);
            dp_part_rm_tree(dir);
        }
        part = calloc(1, sizeof(*part));
        if (part == NULL)
            return -ENOMEM;
        part->ra_fd = -1;
        for (int i = 0; i < 2; i++) {
            part->pf[i].seg = -1;
            part->pf[i].part = part;
            part->pf[i].w = w;
        }
        part->topic_id = t->id;
        part->partition = p;
        snprintf(part->topic, sizeof(part->topic), "%s", t->name);
        lc.segment_bytes = t->segment_bytes;
        lc.retention_ms = t->retention_ms;
        lc.retention_bytes = t->retention_bytes;
        lc.commits_total = &w->m.log_commits;
        lc.write_latency = &w->m.log_write_latency;
        lc.append_latency = &w->m.log_append_latency;
        part->flush_every = lc.flush == DP_LOG_FLUSH_EVERY;
        rc = dp_log_open(&part->log, &w->ring, st->cfg.data_dir, t->name, p, &lc, err, errlen);
        if (rc == 0)
            rc = dp_pidmap_init(&part->pids, st->cfg.producers_max);
        if (rc == 0) {
            rc = dp_pidmap_rebuild(&part->pids, part->log);
            if (rc != 0)
                snprintf(err, errlen, "%s-%d: producer state rebuild: %s", t->name, p,
                         strerror(-rc));
        }
        if (rc == -EBADMSG && part->log == NULL) {
            /* Damage before the tail: acknowledged records lie beyond it,
             * so the partition is neither truncated nor served. It stays
             * offline (KAFKA_STORAGE_ERROR) and the rest of the store runs. */
            wc_log(WC_LOG_ERROR, "store", "partition failed recovery: offline", "{s:s, s:i, s:s}",
                   "topic", t->name, "partition", p, "error", err);
            dp_pidmap_dispose(&part->pids);
            dp_gauge_add(&w->m.offline_partitions, 1);
            rc = 0;
        } else if (rc != 0) {
            if (part->log != NULL)
                dp_log_close(part->log);
            dp_pidmap_dispose(&part->pids);
            free(part);
            return rc;
        } else {
            const dp_log_stats_t *ls = dp_log_stats(part->log);

            if (ls->truncations > 0)
                wc_log(WC_LOG_WARN, "store", "recovery truncated a torn or corrupt tail",
                       "{s:s, s:i, s:I, s:I}", "topic", t->name, "partition", p, "truncations",
                       (json_int_t)ls->truncations, "end_offset",
                       (json_int_t)dp_log_end_offset(part->log));
        }
        {
            uint32_t b = bucket(w, t->id, p);

            part->hnext = w->parts[b];
            w->parts[b] = part;
            w->nparts++;
        }
    }
    return 0;
}

/* The offset below which a duplicate's original satisfies its acks. */
static int64_t dup_ready(const dp_part_t *part, const dp_pop_t *op)
{
    return op->u.produce.flags & DP_LOG_APPEND_WRITTEN ? dp_log_written_offset(part->log)
                                                       : dp_log_durable_offset(part->log);
}

static void watch_list_add(dp_worker_t *w, dp_part_t *part)
{
    if (!part->on_watch_list) {
        part->on_watch_list = true;
        part->wnext = w->watched;
        w->watched = part;
    }
}

static void reply(dp_worker_t *w, dp_pop_t *op);

/* Answers parked duplicates whose originals are now readable (or failed). */
static void settle_dups(dp_worker_t *w, dp_part_t *part)
{
    dp_pop_t **pp = &part->dups, *op;
    bool failed = dp_log_error(part->log)[0] != '\0';

    while ((op = *pp) != NULL) {
        if (!failed && !part->deleting && op->u.produce.dup_last >= dup_ready(part, op)) {
            pp = &op->dnext;
            continue;
        }
        *pp = op->dnext;
        if (failed || part->deleting)
            op->error = DP_KERR_KAFKA_STORAGE_ERROR;
        op->log_start = dp_log_start_offset(part->log);
        reply(w, op);
    }
}

static void fire_watch(dp_worker_t *w, dp_part_t *part, dp_watch_t *wt)
{
    if (wt->prev != NULL)
        wt->prev->next = wt->next;
    else
        part->watchers = wt->next;
    if (wt->next != NULL)
        wt->next->prev = wt->prev;
    wt->linked = false;
    wt->next = wt->prev = NULL;
    dp_worker_post(w, wt->origin, &wt->msg, dp_fetch_watch_reply);
}

static void fire_all(dp_worker_t *w, dp_part_t *part)
{
    while (part->watchers != NULL)
        fire_watch(w, part, part->watchers);
}

static void to_dying(dp_worker_t *w, dp_part_t *part, bool remove_files)
{
    unlink_part(w, part);
    part->deleting = true;
    part->remove_files = remove_files;
    fire_all(w, part);
    part->dnext = w->dying;
    w->dying = part;
}

void dp_part_drop_topic(dp_worker_t *w, uint64_t topic_id)
{
    for (uint32_t b = 0; b < w->parts_buckets; b++) {
        dp_part_t *part = w->parts[b], *next;

        for (; part != NULL; part = next) {
            char dir[4096];

            next = part->hnext;
            if (part->topic_id != topic_id)
                continue;
            /* Rename now, remove once idle: a topic re-created under the
             * same name never meets the old files. */
            snprintf(dir, sizeof(dir), "%s/%s-%" PRId32, w->st->cfg.data_dir, part->topic,
                     part->partition);
            snprintf(part->dead_dir, sizeof(part->dead_dir), "%s.%" PRIu64 ".deleted", dir,
                     part->topic_id);
            if (rename(dir, part->dead_dir) != 0)
                wc_log(WC_LOG_WARN, "store", "could not rename deleted partition", "{s:s, s:s}",
                       "dir", dir, "error", strerror(errno));
            to_dying(w, part, true);
        }
    }
}

bool dp_part_reap(dp_worker_t *w, bool all)
{
    dp_part_t **pp, *part;

    if (all) {
        for (uint32_t b = 0; b < w->parts_buckets; b++)
            while (w->parts[b] != NULL)
                to_dying(w, w->parts[b], false);
    }
    for (pp = &w->dying; (part = *pp) != NULL;) {
        if (part->log != NULL &&
            (part->on_watch_list || part->reads_inflight > 0 || !dp_log_idle(part->log))) {
            if (all)
                dp_log_flush(part->log);
            pp = &part->dnext;
            continue;
        }
        *pp = part->dnext;
        if (part->log == NULL) {
            dp_gauge_add(&w->m.offline_partitions, -1);
        } else {
            if (dp_log_error(part->log)[0] != '\0')
                w->failed = -EIO;
            dp_log_close(part->log);
        }
        dp_pidmap_dispose(&part->pids);
        for (int i = 0; i < 2; i++)
            if (part->pf[i].mem != NULL)
                dp_pool_free(&w->pool, part->pf[i].mem);
        if (part->remove_files)
            dp_part_rm_tree(part->dead_dir);
        free(part);
    }
    return w->dying == NULL;
}

static void each_part(dp_worker_t *w, void (*fn)(dp_worker_t *w, dp_part_t *part))
{
    for (uint32_t b = 0; b < w->parts_buckets; b++)
        for (dp_part_t *part = w->parts[b]; part != NULL; part = part->hnext)
            fn(w, part);
}

static void tick_one(dp_worker_t *w, dp_part_t *part)
{
    if (part->log != NULL)
        dp_log_tick(part->log, w->now_ms);
}

void dp_part_tick_all(dp_worker_t *w)
{
    each_part(w, tick_one);
}

static void retain_one(dp_worker_t *w, dp_part_t *part)
{
    int rc;

    (void)w;
    if (part->log == NULL || part->reads_inflight > 0)
        return; /* offline, or a read may still use a segment retention would drop */
    rc = dp_log_retain(part->log, dp_worker_wall_ms());
    if (rc > 0)
        wc_log(WC_LOG_INFO, "store", "retention deleted segments", "{s:s, s:i, s:i, s:I}", "topic",
               part->topic, "partition", part->partition, "segments", rc, "log_start_offset",
               (json_int_t)dp_log_start_offset(part->log));
}

void dp_part_retain_all(dp_worker_t *w)
{
    each_part(w, retain_one);
}

void dp_part_check_watchers(dp_worker_t *w)
{
    dp_part_t **pp = &w->watched, *part;

    while ((part = *pp) != NULL) {
        int64_t hw = dp_part_hw(part);
        dp_watch_t *wt = part->watchers, *next;

        for (; wt != NULL; wt = next) {
            next = wt->next;
            if (hw > wt->offset || part->deleting)
                fire_watch(w, part, wt);
        }
        settle_dups(w, part);
        if (part->watchers == NULL && part->dups == NULL) {
            part->on_watch_list = false;
            *pp = part->wnext;
        } else {
            pp = &part->wnext;
        }
    }
}

/* ---- ops ---- */

static void reply(dp_worker_t *w, dp_pop_t *op)
{
    op->part = NULL;
    dp_worker_post(w, op->origin, &op->msg, op->reply_fn);
}

static int16_t append_error(int rc)
{
    switch (rc) {
    case -EBADMSG:
        return DP_KERR_CORRUPT_MESSAGE;
    case -EINVAL:
        return DP_KERR_INVALID_RECORD;
    case -EMSGSIZE:
        return DP_KERR_MESSAGE_TOO_LARGE;
    default:
        return DP_KERR_KAFKA_STORAGE_ERROR;
    }
}

static void append_cb(dp_log_append_t *req, int result)
{
    dp_pop_t *op = req->ctx;
    dp_part_t *part = op->part;
    dp_worker_t *w = op->owner;

    if (result < 0) {
        op->error = DP_KERR_KAFKA_STORAGE_ERROR;
        wc_log(WC_LOG_ERROR, "store", "append failed", "{s:s, s:i, s:s}", "topic", part->topic,
               "partition", part->partition, "error", dp_log_error(part->log));
    } else {
        op->u.produce.base_offset = req->base_offset;
    }
    op->log_start = dp_log_start_offset(part->log);
    reply(w, op);
}

static void exec_produce(dp_worker_t *w, dp_pop_t *op, dp_part_t *part)
{
    dp_batch_hdr_t h;
    int64_t dup_base, dup_last;
    int rc;

    /* The CRC is checked here, once, before the producer state judges the
     * batch (as Kafka does): a damaged retry is CORRUPT_MESSAGE, never a
     * duplicate or a sequence error. dp_log_append is told not to redo it. */
    rc = dp_batch_validate(op->u.produce.batch, op->u.produce.len, DP_BATCH_STRICT, &h);
    if (rc == 0 && dp_batch_size(&h) != op->u.produce.len)
        rc = -EINVAL; /* v3+ produce carries exactly one batch per partition */
    if (rc == 0 && (h.attributes & (DP_BATCH_ATTR_TRANSACTIONAL | DP_BATCH_ATTR_CONTROL)))
        rc = -EINVAL; /* no transactions: see docs/internals/kafka-protocol.md */
    if (rc != 0) {
        op->error = rc == -EBADMSG ? DP_KERR_CORRUPT_MESSAGE : DP_KERR_INVALID_RECORD;
        goto done;
    }
    switch (dp_pidmap_check(&part->pids, &h, &dup_base, &dup_last)) {
    case DP_PID_OK:
        break;
    case DP_PID_DUPLICATE:
        /* A retry of a batch already in the log: answer with where it is,
         * but only once the original is as durable as this request asks. */
        op->u.produce.base_offset = dup_base;
        op->u.produce.dup_last = dup_last;
        if (dup_last < dup_ready(part, op))
            goto done;
        op->part = part;
        op->dnext = part->dups;
        part->dups = op;
        watch_list_add(w, part);
        return;
    case DP_PID_OUT_OF_ORDER:
        op->error = DP_KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
        goto done;
    case DP_PID_INVALID_EPOCH:
        op->error = DP_KERR_INVALID_PRODUCER_EPOCH;
        goto done;
    case DP_PID_UNKNOWN:
        /* As Kafka since KIP-360: a producer whose state is gone (its
         * batches left with retention) may continue at any sequence. */
        break;
    default:
        op->error = DP_KERR_UNKNOWN_SERVER_ERROR;
        goto done;
    }
    op->part = part;
    rc = dp_log_append(part->log, &op->u.produce.app, op->u.produce.batch, op->u.produce.len, 0,
                       op->u.produce.flags | DP_LOG_APPEND_VALIDATED, append_cb, op);
    if (rc != 0) {
        op->part = NULL;
        op->error = append_error(rc);
        goto done;
    }
    /* Offsets are assigned at submission, so the next batch of this
     * producer is judged against this one even before it is durable. */
    dp_pidmap_update(&part->pids, &h, op->u.produce.app.base_offset, op->u.produce.app.last_offset);
    return;
done:
    op->log_start = dp_log_start_offset(part->log);
    reply(w, op);
}

static void read_cb(dp_ring_op_t *rop)
{
    dp_pop_t *op = rop->ctx;
    int i = (int)(rop - op->u.fetch.rop);

    if (rop->res != (int32_t)op->u.fetch.sl[i].len)
        op->u.fetch.read_error = rop->res < 0 ? rop->res : -EIO;
    op->part->reads_inflight--;
    if (--op->u.fetch.reads > 0)
        return;
    if (op->u.fetch.read_error != 0) {
        op->error = DP_KERR_KAFKA_STORAGE_ERROR;
        op->u.fetch.got = 0;
        wc_log(WC_LOG_ERROR, "store", "segment read failed", "{s:s, s:i, s:s}", "topic",
               op->part->topic, "partition", op->part->partition, "error",
               strerror(-op->u.fetch.read_error));
    }
    reply(op->owner, op);
}

/* Bytes of readahead hinted past a fetch: a few fetches' worth. */
#define RA_BYTES (4u << 20)

static void ra_cb(dp_ring_op_t *rop)
{
    dp_part_t *part = rop->ctx;

    part->ra_inflight = false;
    part->reads_inflight--;
}

/* Hints the kernel to read ahead of a sequential consumer whose last read
 * ended at `end` of `fd`. A hint that cannot be queued is simply skipped. */
static void hint_readahead(dp_worker_t *w, dp_part_t *part, int fd, uint64_t end)
{
    uint64_t from;

    if (part->ra_inflight)
        return;
    if (part->ra_fd == fd && end + RA_BYTES / 2 <= part->ra_end)
        return; /* still well inside the last hinted range */
    from = part->ra_fd == fd && part->ra_end > end ? part->ra_end : end;
    if (dp_ring_prep_fadvise(&w->ring, &part->ra_op, fd, from, RA_BYTES, POSIX_FADV_WILLNEED, ra_cb,
                             part) != 0)
        return;
    part->ra_inflight = true;
    part->reads_inflight++;
    part->ra_fd = fd;
    part->ra_end = from + RA_BYTES;
}

/* ---- range reads: one direct read per fetch op, cut in memory ---- */

static uint64_t fa_down(uint64_t v)
{
    return v & ~(uint64_t)(DP_FETCH_ALIGN - 1);
}

static uint64_t fa_up(uint64_t v)
{
    return fa_down(v + DP_FETCH_ALIGN - 1);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void range_fail(dp_worker_t *w, dp_pop_t *op, const char *why, int err)
{
    op->error = DP_KERR_KAFKA_STORAGE_ERROR;
    op->u.fetch.got = 0;
    wc_log(WC_LOG_ERROR, "store", "segment read failed", "{s:s, s:i, s:s, s:s, s:I}", "topic",
           op->part->topic, "partition", op->part->partition, "error", why, "detail",
           err < 0 ? strerror(-err) : "", "position", (json_int_t)op->u.fetch.rg.pos);
    reply(w, op);
}

static int range_submit(dp_worker_t *w, dp_pop_t *op, uint64_t upto);
static void range_cut(dp_worker_t *w, dp_pop_t *op);

/* ---- direct read-ahead: two windows per partition ---- */

/* A window's bytes: its pool block is one DP_PF_BYTES class, aligned inside. */
#define PF_CAP (DP_PF_BYTES - DP_FETCH_ALIGN)

/* Gives idle windows back to the pool: the consumer reached the tail. */
static void pf_release(dp_worker_t *w, dp_part_t *part)
{
    for (int i = 0; i < 2; i++) {
        struct dp_part_pf *pf = &part->pf[i];

        if (pf->mem != NULL && !pf->inflight && pf->waiters == NULL) {
            dp_pool_free(&w->pool, pf->mem);
            pf->mem = pf->buf = NULL;
            pf->seg = -1;
            pf->len = 0;
        }
    }
}

static dp_worker_t *w_of(const struct dp_part_pf *pf)
{
    return pf->w;
}

static void pf_serve(dp_worker_t *w, dp_pop_t *op, struct dp_part_pf *pf);

static void pf_cb(dp_ring_op_t *rop)
{
    struct dp_part_pf *pf = rop->ctx;
    dp_pop_t *op;
    uint64_t len;

    pf->inflight = false;
    pf->part->reads_inflight--;
    if (rop->res <= 0) {
        pf->seg = -1;
        pf->len = 0;
    } else {
        len = (uint64_t)rop->res;
        if (pf->a0 + len > pf->valid_end)
            len = pf->valid_end - pf->a0; /* bytes past it were not readable yet */
        pf->len = (uint32_t)len;
    }
    /* Ops that waited for this window: served from it, or read on. */
    while ((op = pf->waiters) != NULL) {
        pf->waiters = op->dnext;
        op->dnext = NULL;
        op->part->reads_inflight--;
        if (pf->len > 0 && pf->a0 <= op->u.fetch.rg_a0 && op->u.fetch.rg_a0 < pf->a0 + pf->len) {
            pf_serve(w_of(pf), op, pf);
        } else if (range_submit(w_of(pf), op, op->u.fetch.rg.pos + op->u.fetch.want) != 0) {
            range_fail(w_of(pf), op, "cannot queue segment read", -EBUSY);
        }
    }
}

/* Starts reading the window at `from` (aligned) of rg's segment, unless one
 * holds or is reading it, or both are busy. Best effort: no memory or no
 * SQE means no read-ahead. */
static void pf_start(dp_worker_t *w, dp_part_t *part, const dp_log_range_t *rg, uint64_t from,
                     const struct dp_part_pf *keep)
{
    struct dp_part_pf *v = NULL;
    uint64_t len;
    size_t cap;

    from = fa_down(from);
    if (rg->dfd < 0)
        return;
    if (from >= rg->end) {
        /* Nothing past this read: a consumer at the tail needs no window
         * (a later segment starts its own), so the memory goes back. */
        if (keep == NULL)
            pf_release(w, part);
        return;
    }
    for (int i = 0; i < 2; i++) {
        struct dp_part_pf *pf = &part->pf[i];
        uint64_t span = pf->inflight ? PF_CAP : pf->len;

        if (pf->seg == rg->first_offset && pf->a0 <= from && from < pf->a0 + span)
            return;
    }
    /* The victim: an empty window, else the idle one further behind. */
    for (int i = 0; i < 2; i++) {
        struct dp_part_pf *pf = &part->pf[i];

        if (pf->inflight || pf == keep)
            continue;
        if (v == NULL || pf->seg < 0 || (v->seg >= 0 && pf->seg < v->seg) ||
            (v->seg >= 0 && pf->seg == v->seg && pf->a0 < v->a0))
            v = pf;
    }
    if (v == NULL)
        return;
    if (v->mem == NULL) {
        v->mem = dp_pool_alloc(&w->pool, DP_PF_BYTES, &cap);
        if (v->mem == NULL)
            return;
        v->buf = (uint8_t *)fa_up((uintptr_t)v->mem);
    }
    len = fa_up(rg->end) - from;
    if (len > PF_CAP)
        len = PF_CAP;
    if (dp_ring_prep_read(&w->ring, &v->op, rg->dfd, v->buf, (unsigned)len, from, pf_cb, v) != 0)
        return;
    v->seg = rg->first_offset;
    v->a0 = from;
    v->len = 0;
    v->valid_end = rg->end;
    v->inflight = true;
    part->reads_inflight++;
}

/* The window holding (or reading) aligned position a0 of rg's segment. */
static struct dp_part_pf *pf_find(dp_part_t *part, const dp_log_range_t *rg, uint64_t a0)
{
    for (int i = 0; i < 2; i++) {
        struct dp_part_pf *pf = &part->pf[i];
        uint64_t span = pf->inflight ? PF_CAP : pf->len;

        if (pf->seg == rg->first_offset && pf->a0 <= a0 && a0 < pf->a0 + span)
            return pf;
    }
    return NULL;
}

/* Copies an op's range from an idle window and cuts it; keeps the other
 * window reading ahead. Answers the op (or reads on past the window). */
static void pf_serve(dp_worker_t *w, dp_pop_t *op, struct dp_part_pf *pf)
{
    const dp_log_range_t *rg = &op->u.fetch.rg;
    uint64_t a0 = op->u.fetch.rg_a0, n = pf->a0 + pf->len - a0;
    uint64_t lim = fa_up(rg->pos + op->u.fetch.want) - a0;
    dp_log_range_t next = *rg;

    if (n > lim)
        n = lim;
    memcpy(op->u.fetch.rbase, pf->buf + (a0 - pf->a0), n);
    op->u.fetch.rlen = (uint32_t)n;
    pf_start(w, op->part, &next, pf->a0 + pf->len, pf);
    range_cut(w, op); /* answers: op is not ours after it */
}

/*
 * Cuts what was read to whole batches: skips leading batches that end
 * before the fetch offset (the index points up to one interval early),
 * then keeps batches while they fit in `want` (the first one always). Each
 * kept header is parsed and offsets must follow on, so damage on disk is an
 * error, never served. Answers the op, or queues a read past rlen when the
 * first batch kept is larger than what was read.
 */
static void range_cut(dp_worker_t *w, dp_pop_t *op)
{
    const dp_log_range_t *rg = &op->u.fetch.rg;
    uint64_t head = rg->pos - op->u.fetch.rg_a0;
    uint64_t have = op->u.fetch.rlen > head ? op->u.fetch.rlen - head : 0;
    uint32_t bmax = w->st->cfg.log.batch_bytes_max;
    const uint8_t *d = op->u.fetch.rbase + head;
    uint64_t at = 0, start = 0, kept = 0;
    int64_t next = -1;

    if (have > rg->end - rg->pos)
        have = rg->end - rg->pos;
    for (;;) {
        dp_batch_hdr_t h;
        uint64_t size;

        if (at >= rg->end - rg->pos)
            break; /* the readable end of the segment */
        if (at + DP_BATCH_LOG_OVERHEAD > have)
            goto more;
        size = DP_BATCH_LOG_OVERHEAD + (uint64_t)be32(d + at + 8);
        if (size < DP_BATCH_HEADER_SIZE || size > bmax || rg->pos + at + size > rg->end) {
            range_fail(w, op, "bad batch length in segment", 0);
            return;
        }
        if (kept > 0 && (at - start) + size > op->u.fetch.want)
            break;
        if (at + size > have)
            goto more;
        if (dp_batch_parse_header(d + at, size, &h) != 0 || (next >= 0 && h.base_offset != next) ||
            (next < 0 &&
             (h.base_offset < rg->first_offset || h.base_offset > op->u.fetch.offset))) {
            range_fail(w, op, "bad batch header in segment", 0);
            return;
        }
        next = dp_batch_last_offset(&h) + 1;
        at += size;
        if (kept == 0 && next <= op->u.fetch.offset) {
            start = at; /* before the fetch offset: skip */
            continue;
        }
        kept = at - start;
    }
    op->u.fetch.dst = (uint8_t *)d + start;
    op->u.fetch.got = (uint32_t)kept;
    reply(w, op);
    return;
more:
    /* Nothing kept yet and the batch at `at` is not all here: read on. */
    if (kept > 0) {
        op->u.fetch.dst = (uint8_t *)d + start;
        op->u.fetch.got = (uint32_t)kept;
        reply(w, op);
        return;
    }
    {
        uint64_t need = at + DP_BATCH_LOG_OVERHEAD;

        if (at + DP_BATCH_LOG_OVERHEAD <= have)
            need = at + DP_BATCH_LOG_OVERHEAD + be32(d + at + 8);
        else if (need < at + DP_BATCH_HEADER_SIZE)
            need = at + DP_BATCH_HEADER_SIZE;
        if (need > rg->end - rg->pos)
            need = rg->end - rg->pos;
        if (range_submit(w, op, rg->pos + need) != 0)
            range_fail(w, op, "cannot queue segment read", -EBUSY);
    }
}

static void range_cb(dp_ring_op_t *rop)
{
    dp_pop_t *op = rop->ctx;
    dp_worker_t *w = op->owner;
    uint32_t asked = op->u.fetch.asked;

    op->part->reads_inflight--;
    if (rop->res < 0) {
        range_fail(w, op, "segment read", rop->res);
        return;
    }
    op->u.fetch.rlen += (uint32_t)rop->res;
    if ((uint32_t)rop->res < asked && op->u.fetch.rg_a0 + op->u.fetch.rlen < op->u.fetch.rg.end) {
        range_fail(w, op, "short segment read", -EIO);
        return;
    }
    /* A consumer behind the tail: read the next window while it works. */
    pf_start(w, op->part, &op->u.fetch.rg, op->u.fetch.rg_a0 + op->u.fetch.rlen, NULL);
    range_cut(w, op);
}

/* Reads on from rbase + rlen to file position `upto` (aligned up for a
 * direct read), within the fetch buffer. */
static int range_submit(dp_worker_t *w, dp_pop_t *op, uint64_t upto)
{
    const dp_log_range_t *rg = &op->u.fetch.rg;
    bool direct = rg->dfd >= 0;
    uint64_t from = op->u.fetch.rg_a0 + op->u.fetch.rlen, to = direct ? fa_up(upto) : upto;
    uint8_t *end = op->u.fetch.dst + op->u.fetch.dst_cap;
    uint32_t len;

    if (direct && (from & (DP_FETCH_ALIGN - 1)) != 0) {
        /* After a copy from a window that ended at the readable end. */
        from = fa_down(from);
        op->u.fetch.rlen = (uint32_t)(from - op->u.fetch.rg_a0);
    }

    if (to <= from || op->u.fetch.rbase + (to - op->u.fetch.rg_a0) > end)
        return -ENOSPC;
    len = (uint32_t)(to - from);
    op->u.fetch.asked = len;
    if (dp_ring_prep_read(&w->ring, &op->u.fetch.rop[0], direct ? rg->dfd : rg->fd,
                          op->u.fetch.rbase + op->u.fetch.rlen, len, from, range_cb, op) != 0)
        return -EBUSY;
    op->part->reads_inflight++;
    return 0;
}

/* Plans and queues the read of a fetch op; 1 when queued, 0 to use the
 * slice path (dp_log_read), or the op was answered (< 0). */
static int range_fetch(dp_worker_t *w, dp_pop_t *op, dp_part_t *part)
{
    dp_log_range_t *rg = &op->u.fetch.rg;
    uint64_t want, room;
    uint8_t *base;
    int rc;

    rc = dp_log_read_range(part->log, op->u.fetch.offset, op->hw, rg);
    if (rc == -EAGAIN)
        return 0;
    if (rc <= 0) {
        if (rc < 0)
            op->error = rc == -ERANGE ? DP_KERR_OFFSET_OUT_OF_RANGE : DP_KERR_KAFKA_STORAGE_ERROR;
        reply(w, op);
        return -1;
    }
    want = rg->end - rg->pos;
    if (want > op->u.fetch.max_bytes)
        want = op->u.fetch.max_bytes;
    if (rg->dfd >= 0) {
        base = (uint8_t *)fa_up((uintptr_t)op->u.fetch.dst);
        op->u.fetch.rg_a0 = fa_down(rg->pos);
    } else {
        base = op->u.fetch.dst;
        op->u.fetch.rg_a0 = rg->pos;
    }
    room = (uint64_t)(op->u.fetch.dst + op->u.fetch.dst_cap - base);
    /* Whatever fits, aligned: at least a header, the rest is read on. */
    if ((rg->pos - op->u.fetch.rg_a0) + want > room)
        want = room > rg->pos - op->u.fetch.rg_a0 + DP_FETCH_ALIGN
                   ? fa_down(room) - (rg->pos - op->u.fetch.rg_a0)
                   : DP_BATCH_HEADER_SIZE;
    op->part = part;
    op->u.fetch.rbase = base;
    op->u.fetch.rlen = 0;
    op->u.fetch.want = (uint32_t)want;
    op->u.fetch.got = 0;
    if (rg->dfd >= 0) {
        struct dp_part_pf *pf = pf_find(part, rg, op->u.fetch.rg_a0);

        if (pf != NULL && pf->inflight) {
            /* The read-ahead is on its way: wait for it, not read twice. */
            op->dnext = pf->waiters;
            pf->waiters = op;
            part->reads_inflight++;
            return 1;
        }
        if (pf != NULL) {
            pf_serve(w, op, pf); /* one copy, no wait */
            return 1;
        }
    }
    if (range_submit(w, op, rg->pos + want) != 0) {
        op->error = DP_KERR_KAFKA_STORAGE_ERROR;
        reply(w, op);
        return -1;
    }
    return 1;
}

static void exec_fetch(dp_worker_t *w, dp_pop_t *op, dp_part_t *part)
{
    int64_t off = op->u.fetch.offset;
    uint32_t acc = 0;
    int n;

    op->u.fetch.got = 0;
    /* Out of range is judged against the log end, as Kafka does: an offset
     * between the high watermark and the end (written, not yet durable) is
     * valid and just has nothing to read yet. */
    if (off < op->log_start || off > dp_log_end_offset(part->log)) {
        op->error = DP_KERR_OFFSET_OUT_OF_RANGE;
        goto done;
    }
    if (off >= op->hw || op->u.fetch.max_bytes == 0)
        goto done;
    if (range_fetch(w, op, part) != 0)
        return;
    n = dp_log_read(part->log, off, op->u.fetch.max_bytes, op->hw, op->u.fetch.sl, DP_POP_SLICES);
    if (n < 0) {
        op->error = n == -ERANGE ? DP_KERR_OFFSET_OUT_OF_RANGE : DP_KERR_KAFKA_STORAGE_ERROR;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (acc + op->u.fetch.sl[i].len > op->u.fetch.dst_cap) {
            n = i; /* only whole slices that fit; the first always fits */
            break;
        }
        acc += op->u.fetch.sl[i].len;
    }
    if (n == 0)
        goto done;
    op->part = part;
    op->u.fetch.reads = 0;
    op->u.fetch.read_error = 0;
    acc = 0;
    for (int i = 0; i < n; i++) {
        dp_log_slice_t *sl = &op->u.fetch.sl[i];

        if (dp_ring_prep_read(&w->ring, &op->u.fetch.rop[i], sl->fd, op->u.fetch.dst + acc, sl->len,
                              sl->pos, read_cb, op) != 0) {
            op->u.fetch.read_error = -EBUSY;
            break;
        }
        op->u.fetch.reads++;
        part->reads_inflight++;
        acc += sl->len;
    }
    op->u.fetch.got = acc;
    if (op->u.fetch.reads > 0) {
        const dp_log_slice_t *last = &op->u.fetch.sl[op->u.fetch.reads - 1];

        hint_readahead(w, part, last->fd, last->pos + last->len);
        return;
    }
    op->error = DP_KERR_KAFKA_STORAGE_ERROR;
    op->u.fetch.got = 0;
done:
    reply(w, op);
}

typedef struct time_seek {
    int64_t ts;
    int64_t offset;
    int64_t found_ts;
} time_seek_t;

static int time_seek_cb(const dp_batch_record_t *rec, void *ctx)
{
    time_seek_t *t = ctx;

    if (rec->timestamp < t->ts)
        return 0;
    t->offset = rec->offset;
    t->found_ts = rec->timestamp;
    return 1;
}

/*
 * ListOffsets by time answers the first record with timestamp >= ts, as
 * Kafka does: the index finds the batch, then its records are decoded. A
 * compressed batch answers its base offset and max timestamp (records are
 * not decompressed here). Synchronous pread: a rare control-path request.
 */
static void record_at_time(dp_part_t *part, int64_t ts, int64_t base, int64_t *offset,
                           int64_t *found_ts)
{
    time_seek_t t = {.ts = ts, .offset = base, .found_ts = -1};
    dp_log_slice_t sl;
    uint8_t *buf;

    *offset = base;
    *found_ts = -1;
    if (dp_log_find(part->log, base, &sl) != 0)
        return;
    buf = malloc(sl.len);
    if (buf == NULL)
        return;
    if (pread(sl.fd, buf, sl.len, (off_t)sl.pos) == (ssize_t)sl.len &&
        dp_batch_foreach_record(buf, sl.len, time_seek_cb, &t) == 1) {
        *offset = t.offset;
        *found_ts = t.found_ts;
    } else {
        dp_batch_hdr_t h;

        if (dp_batch_parse_header(buf, sl.len, &h) == 0)
            *found_ts = h.max_timestamp;
    }
    free(buf);
}

static void exec_offsets(dp_worker_t *w, dp_pop_t *op, dp_part_t *part)
{
    int64_t ts = op->u.offsets.timestamp, off;

    op->u.offsets.found_ts = -1;
    if (ts == -2) {
        op->u.offsets.offset = op->log_start;
    } else if (ts == -1) {
        op->u.offsets.offset = op->hw;
    } else if (ts >= 0) {
        if (dp_log_find_time(part->log, ts, &off) == 0 && off < op->hw) {
            record_at_time(part, ts, off, &op->u.offsets.offset, &op->u.offsets.found_ts);
        } else {
            op->u.offsets.offset = -1;
        }
    } else {
        op->error = DP_KERR_INVALID_REQUEST; /* -3 (max timestamp) is not served */
    }
    reply(w, op);
}

void dp_part_exec(dp_worker_t *w, dp_msg_t *m)
{
    dp_pop_t *op = (dp_pop_t *)m;
    dp_part_t *part = dp_part_find(w, op->topic_id, op->partition);

    if (part == NULL) {
        op->error = DP_KERR_UNKNOWN_TOPIC_OR_PARTITION;
        reply(w, op);
        return;
    }
    if (part->log == NULL || dp_log_error(part->log)[0] != '\0') {
        op->error = DP_KERR_KAFKA_STORAGE_ERROR;
        reply(w, op);
        return;
    }
    op->hw = dp_part_hw(part);
    op->log_start = dp_log_start_offset(part->log);
    switch (op->kind) {
    case DP_POP_PRODUCE:
        exec_produce(w, op, part);
        break;
    case DP_POP_FETCH:
        exec_fetch(w, op, part);
        break;
    case DP_POP_OFFSETS:
        exec_offsets(w, op, part);
        break;
    default:
        op->error = DP_KERR_UNKNOWN_SERVER_ERROR;
        reply(w, op);
        break;
    }
}

void dp_part_watch(dp_worker_t *w, dp_msg_t *m)
{
    dp_watch_t *wt = (dp_watch_t *)m;
    dp_part_t *part = dp_part_find(w, wt->topic_id, wt->partition);

    if (part == NULL || part->log == NULL || dp_part_hw(part) > wt->offset) {
        dp_worker_post(w, wt->origin, &wt->msg, dp_fetch_watch_reply);
        return;
    }
    wt->linked = true;
    wt->prev = NULL;
    wt->next = part->watchers;
    if (part->watchers != NULL)
        part->watchers->prev = wt;
    part->watchers = wt;
    watch_list_add(w, part);
}

void dp_part_unwatch(dp_worker_t *w, dp_msg_t *m)
{
    dp_watch_t *wt = (dp_watch_t *)((uint8_t *)m - offsetof(dp_watch_t, cancel));
    dp_part_t *part;

    /* Not linked: it already fired and its reply is on the way. */
    if (!wt->linked)
        return;
    part = dp_part_find(w, wt->topic_id, wt->partition);
    if (part == NULL) {
        /* Linked parts are found: dying parts fired all their watchers. */
        return;
    }
    fire_watch(w, part, wt);
}
