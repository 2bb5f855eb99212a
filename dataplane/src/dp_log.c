/* SPDX-License-Identifier: Apache-2.0 */
/* dp_log: per-partition segment log. Segments are preallocated files named
 * by base offset with mmap'd sparse offset and time indexes; appends are
 * written through the worker's ring and group-committed with fdatasync.
 * Design and recovery rules: docs/internals/store-log.md. */
#include "dp_log.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "dp_batch.h"

#define IDX_ENTRY 8   /* rel offset u32, position u32 (big-endian) */
#define TIDX_ENTRY 16 /* max timestamp i64, rel offset u32, position u32 */
#define START_FILE "log-start-offset"

#define DIO_ALIGN 4096u

typedef struct wbuf {
    uint8_t *p;    /* DIO_ALIGN-aligned, wb_cap bytes */
    uint64_t base; /* file position of p[0], DIO_ALIGN-aligned */
    uint32_t len;  /* bytes held */
} wbuf_t;

typedef struct seg {
    int64_t base_offset;
    int64_t next_offset;   /* offset after the last batch placed here */
    uint64_t size;         /* bytes placed (written or in flight) */
    uint64_t alloc_bytes;  /* preallocated file size */
    int64_t max_timestamp; /* largest batch maxTimestamp, INT64_MIN if none */
    int fd, idx_fd, tidx_fd;
    int dfd;             /* O_DIRECT read fd, or -1 */
    uint8_t *idx, *tidx; /* MAP_SHARED, idx_cap entries each */
    uint32_t idx_n, tidx_n, idx_cap;
    uint64_t idx_last_pos, tidx_last_pos;
    int idx_dirty; /* recovery found the on-disk index different */
} seg_t;

struct dp_log {
    dp_ring_t *ring;
    dp_log_config_t cfg;
    char dir[PATH_MAX];
    int dir_fd;
    seg_t *segs; /* cfg.segments_max slots; segs[nsegs - 1] is active */
    uint32_t nsegs;
    int64_t start_offset;
    int64_t end_offset;
    int64_t written_offset;
    int64_t durable_offset;
    int64_t written_seg;     /* segment holding written_offset's batch end */
    uint64_t written_endpos; /* its file position of written_offset */
    uint64_t unsynced_bytes;
    /* Appends not yet written, in offset order; stage_next is the first
     * one not yet copied into the fill buffer. */
    dp_log_append_t *wq_head, *wq_tail, *stage_next;
    /* Written appends waiting for the covering fdatasync, in order. */
    dp_log_append_t *sq_head, *sq_tail;
    dp_ring_op_t sync_op;
    int held; /* the next segment's appends wait for this one's sync */
    int sync_inflight;
    /* Write-behind: appends are copied into the fill buffer; one write at a
     * time takes the whole fill buffer to the file (a group commit), and the
     * other buffer, seeded with the partial last block, becomes the fill.
     * With O_DIRECT, writes cover whole 4 KiB blocks, so the partial last
     * block is rewritten by the next write; one write in flight at a time
     * keeps two writes from racing on that block. */
    wbuf_t wb[2];
    uint32_t wb_cap;
    int fill;              /* index of the buffer appends are copied into */
    int64_t fill_seg_base; /* segment the buffers belong to; -1 none yet */
    int wfd;               /* that segment's write fd (O_DIRECT if possible) */
    int direct;            /* wfd is O_DIRECT: block-aligned writes */
    int dsync;             /* writes carry RWF_DSYNC (flush every) */
    uint64_t written_pos;  /* file position written in the fill segment */
    dp_ring_op_t write_op;
    int write_inflight;
    int write_buf; /* buffer of the write in flight */
    uint64_t write_pos, write_len, write_done, write_end;
    uint64_t write_t0_ns; /* write_latency: when the write in flight was queued */
    int64_t flush_upto;   /* dp_log_flush: sync regardless until durable here */
    int64_t sync_target;
    uint64_t sync_bytes;
    uint64_t clock_ms;     /* last dp_log_tick time */
    uint64_t last_sync_ms; /* clock_ms when the last sync completed */
    int error;             /* sticky failure, -errno */
    char errmsg[256];
    uint8_t *scan_buf; /* batch_bytes_max, for open-time scans */
    dp_log_stats_t stats;
};

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void dp_log_config_defaults(dp_log_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->segment_bytes = 128u << 20;
    cfg->index_interval_bytes = 4096;
    cfg->batch_bytes_max = (1u << 20) + DP_BATCH_LOG_OVERHEAD;
    cfg->segments_max = 4096;
    cfg->flush = DP_LOG_FLUSH_EVERY;
    cfg->flush_interval_ms = 1000;
    cfg->flush_bytes = 1u << 20;
    cfg->retention_ms = -1;
    cfg->retention_bytes = -1;
    cfg->read_direct = 1;
}

static void seg_name(char *buf, size_t len, int64_t base, const char *ext)
{
    snprintf(buf, len, "%020" PRId64 ".%s", base, ext);
}

/* ---- indexes ---------------------------------------------------------- */

/* Records a batch placed at `pos` in the sparse indexes. At open time the
 * entry is compared with what the file held, to count rebuilds. */
static void seg_note_batch(seg_t *s, uint64_t pos, const dp_batch_hdr_t *h, uint32_t interval)
{
    uint32_t rel = (uint32_t)(h->base_offset - s->base_offset);
    uint8_t e[TIDX_ENTRY];

    assert(h->base_offset >= s->base_offset);
    assert(pos <= UINT32_MAX);
    if (pos > 0 && pos - s->idx_last_pos >= interval) {
        assert(s->idx_n < s->idx_cap);
        put32(e, rel);
        put32(e + 4, (uint32_t)pos);
        if (memcmp(s->idx + (size_t)s->idx_n * IDX_ENTRY, e, IDX_ENTRY) != 0) {
            memcpy(s->idx + (size_t)s->idx_n * IDX_ENTRY, e, IDX_ENTRY);
            s->idx_dirty = 1;
        }
        s->idx_n++;
        s->idx_last_pos = pos;
    }
    if (h->max_timestamp > s->max_timestamp) {
        s->max_timestamp = h->max_timestamp;
        if (s->tidx_n == 0 || pos - s->tidx_last_pos >= interval) {
            assert(s->tidx_n < s->idx_cap);
            put32(e, (uint32_t)((uint64_t)h->max_timestamp >> 32));
            put32(e + 4, (uint32_t)h->max_timestamp);
            put32(e + 8, rel);
            put32(e + 12, (uint32_t)pos);
            if (memcmp(s->tidx + (size_t)s->tidx_n * TIDX_ENTRY, e, TIDX_ENTRY) != 0) {
                memcpy(s->tidx + (size_t)s->tidx_n * TIDX_ENTRY, e, TIDX_ENTRY);
                s->idx_dirty = 1;
            }
            s->tidx_n++;
            s->tidx_last_pos = pos;
        }
    }
}

/* Zeroes index slots past the live entries (a truncated tail's, or stale). */
static void seg_index_clear_rest(seg_t *s)
{
    size_t used = (size_t)s->idx_n * IDX_ENTRY, cap = (size_t)s->idx_cap * IDX_ENTRY;
    size_t tused = (size_t)s->tidx_n * TIDX_ENTRY, tcap = (size_t)s->idx_cap * TIDX_ENTRY;

    for (size_t i = used; i < cap; i++) {
        if (s->idx[i] != 0) {
            memset(s->idx + used, 0, cap - used);
            s->idx_dirty = 1;
            break;
        }
    }
    for (size_t i = tused; i < tcap; i++) {
        if (s->tidx[i] != 0) {
            memset(s->tidx + tused, 0, tcap - tused);
            s->idx_dirty = 1;
            break;
        }
    }
}

static int map_index(seg_t *s, int fd, size_t bytes, uint8_t **map)
{
    struct stat st;
    void *p;

    if (fstat(fd, &st) < 0)
        return -errno;
    if ((size_t)st.st_size != bytes) {
        s->idx_dirty = st.st_size != 0 || s->idx_dirty;
        if (ftruncate(fd, (off_t)bytes) < 0)
            return -errno;
    }
    p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    *map = p;
    return 0;
}

/* ---- segments --------------------------------------------------------- */

static void seg_close(seg_t *s)
{
    if (s->idx != NULL)
        munmap(s->idx, (size_t)s->idx_cap * IDX_ENTRY);
    if (s->tidx != NULL)
        munmap(s->tidx, (size_t)s->idx_cap * TIDX_ENTRY);
    if (s->fd >= 0)
        close(s->fd);
    if (s->dfd >= 0)
        close(s->dfd);
    if (s->idx_fd >= 0)
        close(s->idx_fd);
    if (s->tidx_fd >= 0)
        close(s->tidx_fd);
    s->idx = s->tidx = NULL;
    s->fd = s->dfd = s->idx_fd = s->tidx_fd = -1;
}

static void seg_unlink(dp_log_t *log, int64_t base)
{
    char name[40];

    seg_name(name, sizeof(name), base, "log");
    unlinkat(log->dir_fd, name, 0);
    seg_name(name, sizeof(name), base, "index");
    unlinkat(log->dir_fd, name, 0);
    seg_name(name, sizeof(name), base, "timeindex");
    unlinkat(log->dir_fd, name, 0);
}

/* Opens (create = 1: creates and preallocates) the files of segment `base`. */
static int seg_open(dp_log_t *log, seg_t *s, int64_t base, int create)
{
    char name[40];
    struct stat st;
    int oflags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
    int rc;

    memset(s, 0, sizeof(*s));
    s->fd = s->dfd = s->idx_fd = s->tidx_fd = -1;
    s->base_offset = base;
    s->next_offset = base;
    s->max_timestamp = INT64_MIN;
    s->idx_cap = (uint32_t)(log->cfg.segment_bytes / log->cfg.index_interval_bytes) + 2;
    seg_name(name, sizeof(name), base, "log");
    s->fd = openat(log->dir_fd, name, oflags, 0644);
    if (s->fd < 0) {
        rc = -errno;
        goto out;
    }
    if (fstat(s->fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    s->alloc_bytes = (uint64_t)st.st_size;
    /* Fetches read batches with O_DIRECT into aligned buffers: writes go
     * around the page cache, so buffered reads would come from the disk
     * anyway, through readahead and a copy. The buffered fd then serves
     * only batch headers (index scans) and recovery. Where O_DIRECT is
     * refused, fetches read buffered with a large readahead window.
     * Advice is advisory, so its errors are moot. */
    if (log->cfg.read_direct)
        s->dfd = openat(log->dir_fd, name, O_RDONLY | O_CLOEXEC | O_DIRECT);
    (void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if (s->alloc_bytes < log->cfg.segment_bytes) {
        /* Preallocate so appends never extend the file: fdatasync then has
         * no size change to journal, and recovery sees zeros past the end. */
        rc = fallocate(s->fd, 0, 0, (off_t)log->cfg.segment_bytes);
        if (rc < 0) {
            rc = -errno;
            goto out;
        }
        s->alloc_bytes = log->cfg.segment_bytes;
    }
    if (s->alloc_bytes / log->cfg.index_interval_bytes + 2 > s->idx_cap)
        s->idx_cap = (uint32_t)(s->alloc_bytes / log->cfg.index_interval_bytes) + 2;
    seg_name(name, sizeof(name), base, "index");
    s->idx_fd = openat(log->dir_fd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->idx_fd < 0) {
        rc = -errno;
        goto out;
    }
    seg_name(name, sizeof(name), base, "timeindex");
    s->tidx_fd = openat(log->dir_fd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->tidx_fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = map_index(s, s->idx_fd, (size_t)s->idx_cap * IDX_ENTRY, &s->idx);
    if (rc < 0)
        goto out;
    rc = map_index(s, s->tidx_fd, (size_t)s->idx_cap * TIDX_ENTRY, &s->tidx);
    if (rc < 0)
        goto out;
    if (create && fsync(log->dir_fd) < 0) {
        rc = -errno;
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        seg_close(s);
    return rc;
}

/* ---- failure ---------------------------------------------------------- */

static void log_fail(dp_log_t *log, int err, const char *fmt, ...)
{
    va_list ap;

    if (log->error != 0)
        return;
    log->error = err < 0 ? err : -EIO;
    va_start(ap, fmt);
    vsnprintf(log->errmsg, sizeof(log->errmsg), fmt, ap);
    va_end(ap);
}

/* ---- write path ------------------------------------------------------- */

static void write_cb(dp_ring_op_t *op);
static void sync_cb(dp_ring_op_t *op);
static void progress(dp_log_t *log);

static void note_commit(dp_log_t *log)
{
    log->stats.syncs++;
    if (log->cfg.commits_total != NULL)
        dp_counter_add(log->cfg.commits_total, 1);
}

static uint64_t align_down(uint64_t v)
{
    return v & ~(uint64_t)(DIO_ALIGN - 1);
}

static uint64_t align_up(uint64_t v)
{
    return align_down(v + DIO_ALIGN - 1);
}

/* Segment holding `offset`, or NULL. */
static seg_t *seg_for(dp_log_t *log, int64_t offset)
{
    uint32_t lo = 0, hi = log->nsegs;

    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (log->segs[mid].base_offset <= offset)
            lo = mid;
        else
            hi = mid;
    }
    if (log->nsegs == 0 || log->segs[lo].base_offset > offset)
        return NULL;
    return &log->segs[lo];
}

/*
 * Points the write-behind buffers at segment s, whose data ends at `pos`:
 * opens its write fd (O_DIRECT where the filesystem allows it) and seeds
 * the fill buffer with the partial block before pos, so the first aligned
 * write rewrites it unchanged.
 */
static int fill_open(dp_log_t *log, seg_t *s, uint64_t pos)
{
    char name[40];
    wbuf_t *f;
    int fd;

    if (log->wb[0].p == NULL) {
        for (int i = 0; i < 2; i++) {
            if (posix_memalign((void **)&log->wb[i].p, DIO_ALIGN, log->wb_cap) != 0)
                return -ENOMEM;
        }
    }
    seg_name(name, sizeof(name), s->base_offset, "log");
    {
        int dsync =
            log->cfg.flush == DP_LOG_FLUSH_EVERY && log->cfg.sync_mode == DP_LOG_SYNC_O_DSYNC
                ? O_DSYNC
                : 0;

        fd = openat(log->dir_fd, name, O_WRONLY | O_CLOEXEC | O_DIRECT | dsync);
        log->direct = fd >= 0;
        if (fd < 0 && errno == EINVAL) /* no O_DIRECT here (e.g. some tmpfs) */
            fd = openat(log->dir_fd, name, O_WRONLY | O_CLOEXEC | dsync);
    }
    if (fd < 0)
        return -errno;
    if (log->wfd >= 0)
        close(log->wfd);
    log->wfd = fd;
    log->fill_seg_base = s->base_offset;
    log->written_pos = pos;
    f = &log->wb[log->fill];
    f->base = log->direct ? align_down(pos) : pos;
    f->len = (uint32_t)(pos - f->base);
    if (f->len > 0 && pread(s->fd, f->p, f->len, (off_t)f->base) != (ssize_t)f->len)
        return -EIO;
    return 0;
}

/* Copies queued appends of the fill segment into the fill buffer. */
static void stage(dp_log_t *log)
{
    wbuf_t *f = &log->wb[log->fill];
    dp_log_append_t *a;

    while ((a = log->stage_next) != NULL) {
        if (a->seg_base != log->fill_seg_base || f->len + a->len > log->wb_cap)
            break;
        assert(a->pos == f->base + f->len);
        memcpy(f->p + f->len, a->buf, a->len);
        f->len += a->len;
        log->stage_next = a->next;
    }
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int submit_write(dp_log_t *log)
{
    uint64_t len = log->write_len - log->write_done;
    int rc;

    rc = dp_ring_prep_write_flags(
        log->ring, &log->write_op, log->wfd, log->wb[log->write_buf].p + log->write_done,
        (unsigned)len, log->write_pos + log->write_done,
        log->dsync && log->cfg.sync_mode == DP_LOG_SYNC_RWF_DSYNC ? RWF_DSYNC : 0, write_cb, log);
    if (rc < 0) {
        log_fail(log, rc, "%s: cannot queue write: %s", log->dir, strerror(-rc));
        return rc;
    }
    log->write_inflight = 1;
    if (log->cfg.write_latency != NULL)
        log->write_t0_ns = now_ns();
    return 0;
}

/* Writes the fill buffer and swaps in the other one. */
static void write_fill(dp_log_t *log)
{
    wbuf_t *f = &log->wb[log->fill], *o = &log->wb[log->fill ^ 1];
    uint64_t end = f->base + f->len, keep;

    log->write_buf = log->fill;
    log->write_pos = f->base;
    log->write_done = 0;
    log->write_end = end;
    if (log->direct) {
        log->write_len = align_up(f->len);
        memset(f->p + f->len, 0, log->write_len - f->len);
        keep = f->len - align_down(f->len);
    } else {
        /* Buffered: write only what is new. */
        log->write_done = log->written_pos - f->base;
        log->write_len = f->len;
        keep = 0;
    }
    o->base = end - keep;
    o->len = (uint32_t)keep;
    memcpy(o->p, f->p + (f->len - keep), keep);
    log->fill ^= 1;
    if (submit_write(log) == 0)
        stage(log); /* keep copying while the write is in flight */
}

/* Starts the next write if none is in flight and there is data for one. */
static void kick(dp_log_t *log)
{
    wbuf_t *f;
    seg_t *s;
    int rc;

    if (log->write_inflight || log->error != 0)
        return;
    if (log->fill_seg_base >= 0)
        stage(log);
    f = &log->wb[log->fill];
    if (log->fill_seg_base >= 0 && f->base + f->len > log->written_pos) {
        write_fill(log);
        return;
    }
    if (log->stage_next == NULL || log->stage_next->seg_base == log->fill_seg_base)
        return;
    /* The next append starts another segment. Its writes begin only once
     * everything before it is durable, so [durable, written) always lies in
     * one segment and one fdatasync of that segment covers it. */
    if (log->durable_offset < log->written_offset) {
        log->held = 1;
        return;
    }
    log->held = 0;
    s = seg_for(log, log->stage_next->seg_base);
    assert(s != NULL && s->base_offset == log->stage_next->seg_base);
    rc = fill_open(log, s, log->stage_next->pos);
    if (rc < 0) {
        log_fail(log, rc, "%s: cannot open segment %020" PRId64 " for writing: %s", log->dir,
                 s->base_offset, strerror(-rc));
        return;
    }
    stage(log);
    if (f = &log->wb[log->fill], f->base + f->len > log->written_pos)
        write_fill(log);
}

static void write_cb(dp_ring_op_t *op)
{
    dp_log_t *log = op->ctx;
    dp_log_append_t *a;

    assert(log->write_inflight);
    log->write_inflight = 0;
    if (log->cfg.write_latency != NULL)
        dp_hist_record_ns(log->cfg.write_latency, now_ns() - log->write_t0_ns);
    if (op->res < 0) {
        log_fail(log, op->res, "%s: write at %" PRIu64 " failed: %s", log->dir, log->write_pos,
                 strerror(-op->res));
    } else if (op->res == 0) {
        log_fail(log, -EIO, "%s: write at %" PRIu64 " made no progress", log->dir, log->write_pos);
    } else if (log->error == 0) {
        assert((uint64_t)op->res <= log->write_len - log->write_done);
        log->write_done += (uint64_t)op->res;
        if (log->write_done < log->write_len) {
            /* A short write continues where it stopped (block-aligned for
             * O_DIRECT, which only stops at a block boundary). */
            if (log->direct && (log->write_done & (DIO_ALIGN - 1)) != 0)
                log_fail(log, -EIO, "%s: unaligned short write at %" PRIu64, log->dir,
                         log->write_pos);
            else
                submit_write(log);
            progress(log);
            return;
        }
        log->written_pos = log->write_end;
        for (a = log->wq_head; a != NULL && a != log->stage_next; a = a->next) {
            if (a->seg_base == log->fill_seg_base && a->pos + a->len <= log->written_pos)
                a->written = 1;
        }
        if (log->dsync)
            note_commit(log);
    }
    progress(log);
}

static int sync_due(dp_log_t *log)
{
    /* A held append waits for the previous segment's sync: never delay it. */
    if (log->flush_upto > log->durable_offset || log->held)
        return 1;
    switch (log->cfg.flush) {
    case DP_LOG_FLUSH_EVERY:
        return 1;
    case DP_LOG_FLUSH_BYTES:
        return log->unsynced_bytes >= log->cfg.flush_bytes;
    case DP_LOG_FLUSH_INTERVAL:
        return log->clock_ms - log->last_sync_ms >= log->cfg.flush_interval_ms;
    }
    return 1;
}

static void maybe_sync(dp_log_t *log)
{
    seg_t *s;
    int rc;

    if (log->sync_inflight || log->error != 0)
        return;
    if (log->written_offset == log->durable_offset)
        return;
    if (!sync_due(log))
        return;
    /* Writes into a segment start only once everything before it is
     * durable, so [durable, written) lies in the segment holding durable. */
    s = seg_for(log, log->durable_offset);
    assert(s != NULL);
    assert(log->written_offset <= s->next_offset);
    rc = dp_ring_prep_fsync(log->ring, &log->sync_op, s->fd, 1, sync_cb, log);
    if (rc < 0) {
        log_fail(log, rc, "%s: cannot queue fdatasync: %s", log->dir, strerror(-rc));
        return;
    }
    log->sync_inflight = 1;
    log->sync_target = log->written_offset;
    log->sync_bytes = log->unsynced_bytes;
}

static void sync_cb(dp_ring_op_t *op)
{
    dp_log_t *log = op->ctx;

    assert(log->sync_inflight);
    log->sync_inflight = 0;
    if (op->res < 0) {
        log_fail(log, op->res, "%s: fdatasync failed: %s", log->dir, strerror(-op->res));
    } else {
        assert(log->sync_target >= log->durable_offset);
        log->durable_offset = log->sync_target;
        log->unsynced_bytes -= log->sync_bytes;
        log->last_sync_ms = log->clock_ms;
        note_commit(log);
    }
    progress(log);
}

static void fire(dp_log_t *log, dp_log_append_t **list)
{
    uint64_t t = log->cfg.append_latency != NULL && *list != NULL ? now_ns() : 0;

    while (*list != NULL) {
        dp_log_append_t *a = *list;

        *list = a->next;
        a->next = NULL;
        if (t != 0)
            dp_hist_record_ns(log->cfg.append_latency, t - a->t0_ns);
        a->cb(a, a->result);
    }
}

/* Moves completed work forward; callbacks run last, after state is final. */
static void progress(dp_log_t *log)
{
    dp_log_append_t *done = NULL, **done_tail = &done;
    dp_log_append_t *a;

    if (log->error != 0) {
        /* Fail everything queued. Appends were copied (or never will be),
         * so none is referenced by the ring; a write still in flight uses
         * the log's own buffers and dp_log_idle waits for it. */
        *done_tail = log->wq_head;
        for (a = log->wq_head; a != NULL; a = a->next) {
            a->result = log->error;
            done_tail = &a->next;
        }
        *done_tail = log->sq_head;
        for (a = log->sq_head; a != NULL; a = a->next)
            a->result = log->error;
        log->wq_head = log->wq_tail = log->stage_next = NULL;
        log->sq_head = log->sq_tail = NULL;
        log->held = 0;
        fire(log, &done);
        return;
    }
    while (log->wq_head != NULL && log->wq_head->written) {
        a = log->wq_head;
        log->wq_head = a->next;
        if (log->wq_head == NULL)
            log->wq_tail = NULL;
        a->next = NULL;
        assert(a->base_offset == log->written_offset);
        log->written_offset = a->last_offset + 1;
        log->written_seg = a->seg_base;
        log->written_endpos = a->pos + a->len;
        log->unsynced_bytes += a->len;
        if (a->flags & DP_LOG_APPEND_WRITTEN) {
            a->result = 0;
            *done_tail = a;
            done_tail = &a->next;
        } else if (log->sq_tail != NULL) {
            log->sq_tail->next = a;
            log->sq_tail = a;
        } else {
            log->sq_head = log->sq_tail = a;
        }
    }
    if (log->dsync) {
        /* RWF_DSYNC: a completed write is on stable storage. */
        log->durable_offset = log->written_offset;
        log->unsynced_bytes = 0;
    }
    while (log->sq_head != NULL && log->sq_head->last_offset < log->durable_offset) {
        a = log->sq_head;
        log->sq_head = a->next;
        if (log->sq_head == NULL)
            log->sq_tail = NULL;
        a->next = NULL;
        a->result = 0;
        *done_tail = a;
        done_tail = &a->next;
    }
    kick(log);
    maybe_sync(log);
    if (log->error != 0) {
        fire(log, &done);
        progress(log);
        return;
    }
    fire(log, &done);
}

static int roll(dp_log_t *log)
{
    seg_t *s;
    int rc;

    if (log->nsegs >= log->cfg.segments_max)
        return -ENOSPC;
    s = &log->segs[log->nsegs];
    rc = seg_open(log, s, log->end_offset, 1);
    if (rc < 0) {
        log_fail(log, rc, "%s: cannot create segment %020" PRId64 ": %s", log->dir, log->end_offset,
                 strerror(-rc));
        return rc;
    }
    log->nsegs++;
    log->stats.rolls++;
    return 0;
}

int dp_log_append(dp_log_t *log, dp_log_append_t *req, void *batch, size_t len,
                  int32_t leader_epoch, unsigned flags, dp_log_append_cb cb, void *ctx)
{
    dp_batch_hdr_t h;
    seg_t *s;
    int rc;

    assert(log != NULL);
    assert(req != NULL);
    assert(cb != NULL);
    if (log->error != 0) {
        rc = log->error;
        goto out;
    }
    if (len > log->cfg.batch_bytes_max || len > log->cfg.segment_bytes) {
        rc = -EMSGSIZE;
        goto out;
    }
    if (flags & DP_LOG_APPEND_VALIDATED)
        rc = dp_batch_parse_header(batch, len, &h);
    else
        rc = dp_batch_validate(batch, len, DP_BATCH_STRICT, &h);
    if (rc < 0)
        goto out;
    if (dp_batch_size(&h) != len) {
        rc = -EINVAL;
        goto out;
    }
    s = &log->segs[log->nsegs - 1];
    if (s->size + len > s->alloc_bytes) {
        rc = roll(log);
        if (rc < 0)
            goto out;
        s = &log->segs[log->nsegs - 1];
    }
    dp_batch_set_base_offset(batch, log->end_offset, leader_epoch);
    h.base_offset = log->end_offset;
    memset(req, 0, sizeof(*req));
    req->log = log;
    req->buf = batch;
    req->len = (uint32_t)len;
    req->pos = s->size;
    req->seg_base = s->base_offset;
    req->base_offset = h.base_offset;
    req->last_offset = dp_batch_last_offset(&h);
    req->flags = flags;
    req->cb = cb;
    req->ctx = ctx;
    if (log->cfg.append_latency != NULL)
        req->t0_ns = now_ns();
    seg_note_batch(s, s->size, &h, log->cfg.index_interval_bytes);
    s->size += len;
    s->next_offset = req->last_offset + 1;
    log->end_offset = s->next_offset;
    if (log->wq_tail != NULL)
        log->wq_tail->next = req;
    else
        log->wq_head = req;
    log->wq_tail = req;
    if (log->stage_next == NULL)
        log->stage_next = req;
    log->stats.appends++;
    log->stats.bytes += len;
    kick(log);
    if (log->error != 0) {
        /* The log has failed; the request is failed through its callback
         * like everything else queued. */
        progress(log);
    } else if (log->held) {
        maybe_sync(log);
    }
    rc = 0;
out:
    return rc;
}

void dp_log_flush(dp_log_t *log)
{
    log->flush_upto = log->end_offset;
    maybe_sync(log);
}

void dp_log_tick(dp_log_t *log, uint64_t now_ms)
{
    if (log->clock_ms == 0 && log->last_sync_ms == 0)
        log->last_sync_ms = now_ms; /* first tick starts the interval */
    log->clock_ms = now_ms;
    maybe_sync(log);
}

int dp_log_idle(const dp_log_t *log)
{
    return log->wq_head == NULL && log->sq_head == NULL && !log->sync_inflight &&
           !log->write_inflight;
}

/* ---- read path -------------------------------------------------------- */

static int read_header(seg_t *s, uint64_t pos, dp_batch_hdr_t *h)
{
    uint8_t b[DP_BATCH_HEADER_SIZE];
    ssize_t n = pread(s->fd, b, sizeof(b), (off_t)pos);

    if (n < 0)
        return -errno;
    if (n != (ssize_t)sizeof(b))
        return -EIO;
    return dp_batch_parse_header(b, sizeof(b), h);
}

/* Start position for a scan to `offset` in segment s (sparse index). */
static uint64_t index_lookup(const seg_t *s, int64_t offset)
{
    uint32_t rel = (uint32_t)(offset - s->base_offset);
    uint32_t lo = 0, hi = s->idx_n;
    uint64_t pos = 0;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const uint8_t *e = s->idx + (size_t)mid * IDX_ENTRY;

        if (get32(e) <= rel) {
            pos = get32(e + 4);
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return pos;
}

static int locate(dp_log_t *log, int64_t offset, seg_t **sp, uint64_t *posp, dp_batch_hdr_t *h)
{
    seg_t *s;
    uint64_t pos;
    int rc;

    if (offset < log->start_offset || offset >= log->written_offset)
        return -ERANGE;
    s = seg_for(log, offset);
    /* Offsets below start but inside the first segment are still present. */
    if (s == NULL || offset >= s->next_offset)
        return -ERANGE;
    pos = index_lookup(s, offset);
    for (;;) {
        if (pos >= s->size)
            return -EIO;
        rc = read_header(s, pos, h);
        if (rc < 0)
            return rc;
        if (dp_batch_last_offset(h) >= offset)
            break;
        pos += dp_batch_size(h);
    }
    *sp = s;
    *posp = pos;
    return 0;
}

int dp_log_find(dp_log_t *log, int64_t offset, dp_log_slice_t *out)
{
    dp_batch_hdr_t h;
    uint64_t pos;
    seg_t *s;
    int rc;

    rc = locate(log, offset, &s, &pos, &h);
    if (rc < 0)
        return rc;
    out->fd = s->fd;
    out->dfd = s->dfd;
    out->pos = pos;
    out->len = (uint32_t)dp_batch_size(&h);
    out->first_offset = h.base_offset;
    out->next_offset = dp_batch_last_offset(&h) + 1;
    return 0;
}

int dp_log_read(dp_log_t *log, int64_t offset, uint32_t max_bytes, int64_t max_offset,
                dp_log_slice_t *out, int nmax)
{
    int64_t limit = log->written_offset;
    uint64_t total = 0, pos;
    dp_batch_hdr_t h;
    int n = 0, rc;
    seg_t *s;

    assert(nmax > 0);
    if (max_offset >= 0 && max_offset < limit)
        limit = max_offset;
    if (offset < log->start_offset || offset > log->written_offset)
        return -ERANGE;
    if (offset >= limit)
        return 0;
    rc = locate(log, offset, &s, &pos, &h);
    if (rc < 0)
        return rc;
    for (;;) {
        uint32_t sz = (uint32_t)dp_batch_size(&h);

        if (h.base_offset >= limit)
            break;
        if (total > 0 && total + sz > max_bytes)
            break;
        if (n > 0 && out[n - 1].fd == s->fd && out[n - 1].pos + out[n - 1].len == pos) {
            out[n - 1].len += sz;
        } else {
            if (n == nmax)
                break;
            out[n].fd = s->fd;
            out[n].dfd = s->dfd;
            out[n].pos = pos;
            out[n].len = sz;
            out[n].first_offset = h.base_offset;
            n++;
        }
        out[n - 1].next_offset = dp_batch_last_offset(&h) + 1;
        total += sz;
        pos += sz;
        if (pos >= s->size) {
            if (s == &log->segs[log->nsegs - 1])
                break;
            s++;
            pos = 0;
            if (s->size == 0)
                break;
        }
        if (out[n - 1].next_offset >= limit)
            break;
        rc = read_header(s, pos, &h);
        if (rc < 0)
            return rc;
    }
    return n;
}

int dp_log_read_range(dp_log_t *log, int64_t offset, int64_t max_offset, dp_log_range_t *out)
{
    seg_t *s;

    if (offset < log->start_offset || offset > log->written_offset)
        return -ERANGE;
    if (max_offset < 0 || max_offset > log->written_offset)
        max_offset = log->written_offset;
    if (offset >= max_offset)
        return 0;
    s = seg_for(log, offset);
    if (s == NULL || offset >= s->next_offset)
        return -ERANGE;
    if (log->written_seg == s->base_offset) {
        /* The segment being written: its written bytes end at a known
         * position, which only serves max_offset == written_offset. */
        if (max_offset != log->written_offset)
            return -EAGAIN;
        out->end = log->written_endpos;
    } else if (s->base_offset > log->written_seg) {
        return -ERANGE; /* cannot be: offset < written_offset */
    } else if (s->next_offset <= max_offset) {
        out->end = s->size; /* a whole, written segment */
    } else {
        return -EAGAIN;
    }
    out->fd = s->fd;
    out->dfd = s->dfd;
    out->pos = index_lookup(s, offset);
    out->first_offset = s->base_offset; /* at least; the batch at pos is the first */
    if (out->pos >= out->end)
        return -EIO;
    return 1;
}

int dp_log_find_time(dp_log_t *log, int64_t ts, int64_t *offset)
{
    for (uint32_t i = 0; i < log->nsegs; i++) {
        seg_t *s = &log->segs[i];
        uint64_t pos = 0;
        int64_t at = s->base_offset; /* base offset of the batch at pos */
        uint32_t lo = 0, hi = s->tidx_n;

        if (s->max_timestamp < ts || s->next_offset <= log->start_offset)
            continue;
        /* Entries are (running max ts, batch): start at the last one below ts. */
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            const uint8_t *e = s->tidx + (size_t)mid * TIDX_ENTRY;
            int64_t ets = (int64_t)((uint64_t)get32(e) << 32 | get32(e + 4));

            if (ets < ts) {
                pos = get32(e + 12);
                at = s->base_offset + get32(e + 8);
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        while (pos < s->size) {
            dp_batch_hdr_t h;
            int rc;

            /* Never read past the written end: the bytes may be in flight. */
            if (at >= log->written_offset)
                return -ENOENT;
            rc = read_header(s, pos, &h);
            if (rc < 0)
                return rc;
            assert(h.base_offset == at);
            if (h.max_timestamp >= ts && dp_batch_last_offset(&h) >= log->start_offset) {
                *offset = h.base_offset > log->start_offset ? h.base_offset : log->start_offset;
                return 0;
            }
            pos += dp_batch_size(&h);
            at = dp_batch_last_offset(&h) + 1;
        }
    }
    return -ENOENT;
}

int dp_log_scan(dp_log_t *log, int64_t from_offset, int (*cb)(const dp_batch_hdr_t *hdr, void *ctx),
                void *ctx)
{
    /* Bytes past the written end may still be in flight: never read them. */
    int64_t end = log->written_offset, at;
    dp_batch_hdr_t h;
    uint64_t pos;
    seg_t *s;
    int rc;

    assert(cb != NULL);
    if (from_offset < log->start_offset)
        from_offset = log->start_offset;
    if (from_offset >= end) {
        rc = 0;
        goto out;
    }
    rc = locate(log, from_offset, &s, &pos, &h);
    if (rc < 0)
        goto out;
    for (;;) {
        rc = cb(&h, ctx);
        if (rc != 0)
            goto out;
        at = dp_batch_last_offset(&h) + 1;
        if (at >= end)
            break;
        pos += dp_batch_size(&h);
        while (pos >= s->size && s < &log->segs[log->nsegs - 1]) {
            s++;
            pos = 0;
        }
        if (pos >= s->size) {
            rc = -EIO;
            goto out;
        }
        rc = read_header(s, pos, &h);
        if (rc < 0)
            goto out;
        if (h.base_offset != at) {
            rc = -EIO;
            goto out;
        }
    }
    rc = 0;
out:
    return rc;
}

/* ---- retention -------------------------------------------------------- */

/* Persists `start` as the log start offset; the caller adopts it only once
 * this succeeded, so the log never serves from an unsaved start. */
static int write_start_file(dp_log_t *log, int64_t start)
{
    char buf[32];
    int fd, n, rc;

    n = snprintf(buf, sizeof(buf), "%" PRId64 "\n", start);
    fd = openat(log->dir_fd, START_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    rc = 0;
    errno = 0;
    if (write(fd, buf, (size_t)n) != n || fsync(fd) < 0)
        rc = errno != 0 ? -errno : -EIO;
    close(fd);
    if (rc == 0 && renameat(log->dir_fd, START_FILE ".tmp", log->dir_fd, START_FILE) < 0)
        rc = -errno;
    if (rc == 0 && fsync(log->dir_fd) < 0)
        rc = -errno;
    return rc;
}

static uint64_t log_bytes(const dp_log_t *log)
{
    uint64_t total = 0;

    for (uint32_t i = 0; i < log->nsegs; i++)
        total += log->segs[i].size;
    return total;
}

/* Deletes expired leading segments; `policies` 0 applies only the start. */
static int retain(dp_log_t *log, int64_t now_ms, int policies)
{
    uint64_t total = log_bytes(log);
    int deleted = 0;

    while (log->nsegs > 1) {
        seg_t *s = &log->segs[0];
        int expired = 0;

        /* Only whole, durable, inactive segments (no I/O can refer to them). */
        if (s->next_offset > log->durable_offset || s->next_offset > log->written_offset)
            break;
        if (s->next_offset <= log->start_offset)
            expired = 1;
        if (policies && log->cfg.retention_ms >= 0 && s->max_timestamp != INT64_MIN &&
            s->max_timestamp < now_ms - log->cfg.retention_ms)
            expired = 1;
        if (policies && log->cfg.retention_bytes >= 0 &&
            total - s->size >= (uint64_t)log->cfg.retention_bytes)
            expired = 1;
        if (!expired)
            break;
        total -= s->size;
        seg_close(s);
        seg_unlink(log, s->base_offset);
        memmove(&log->segs[0], &log->segs[1], (log->nsegs - 1) * sizeof(seg_t));
        log->nsegs--;
        log->stats.segments_deleted++;
        deleted++;
        if (log->start_offset < log->segs[0].base_offset)
            log->start_offset = log->segs[0].base_offset;
    }
    return deleted;
}

int dp_log_retain(dp_log_t *log, int64_t now_ms)
{
    return retain(log, now_ms, 1);
}

int dp_log_delete_records(dp_log_t *log, int64_t offset)
{
    int rc;

    if (offset < 0 || offset > log->durable_offset)
        return -ERANGE;
    if (offset <= log->start_offset)
        return 0;
    rc = write_start_file(log, offset);
    if (rc < 0)
        return rc;
    log->start_offset = offset;
    rc = retain(log, 0, 0);
    return rc < 0 ? rc : 0;
}

/* ---- open and recovery ------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* True when the segment holds no batch at all (never written). */
static int seg_file_empty(dp_log_t *log, int64_t base)
{
    uint8_t b[DP_BATCH_LOG_OVERHEAD];
    char name[40];
    ssize_t n;
    int fd, empty = 1;

    seg_name(name, sizeof(name), base, "log");
    fd = openat(log->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = pread(fd, b, sizeof(b), 0);
    if (n == (ssize_t)sizeof(b)) {
        for (size_t i = 0; i < sizeof(b); i++)
            if (b[i] != 0)
                empty = 0;
    } else if (n != 0) {
        empty = 0;
    }
    close(fd);
    return empty;
}

/*
 * Scans segment s from position 0, expecting offsets from s->base_offset.
 * Sets s->size/next_offset to the end of the valid prefix. Returns 0 when
 * the data ends cleanly (zeros or end of file), or 1 with `why` set when
 * it stops at a torn, corrupt or misplaced batch.
 */
static int seg_scan(dp_log_t *log, seg_t *s, const char **why)
{
    uint64_t pos = 0;
    int64_t expect = s->base_offset;
    dp_batch_hdr_t h;
    int rc;

    for (;;) {
        uint8_t *b = log->scan_buf;
        size_t size;
        ssize_t n;
        int zero = 1;

        if (pos + DP_BATCH_LOG_OVERHEAD > s->alloc_bytes)
            break;
        n = pread(s->fd, b, DP_BATCH_HEADER_SIZE, (off_t)pos);
        if (n < 0)
            return -errno;
        for (ssize_t i = 0; i < n && i < DP_BATCH_LOG_OVERHEAD; i++)
            if (b[i] != 0)
                zero = 0;
        if (zero && n >= DP_BATCH_LOG_OVERHEAD)
            break;
        *why = "torn batch header";
        if (n < DP_BATCH_HEADER_SIZE)
            goto bad;
        *why = "invalid batch header";
        rc = dp_batch_parse_header(b, (size_t)n, &h);
        if (rc < 0)
            goto bad;
        size = dp_batch_size(&h);
        *why = "batch larger than batch_bytes_max";
        if (size > log->cfg.batch_bytes_max)
            goto bad;
        *why = "torn batch (extends past the file)";
        if (pos + size > s->alloc_bytes)
            goto bad;
        n = pread(s->fd, b, size, (off_t)pos);
        if (n < 0)
            return -errno;
        if ((size_t)n != size)
            goto bad;
        *why = "batch CRC32C mismatch (torn or corrupt)";
        if (dp_batch_validate(b, size, 0, &h) < 0)
            goto bad;
        *why = "batch base offset out of sequence";
        if (h.base_offset != expect)
            goto bad;
        seg_note_batch(s, pos, &h, log->cfg.index_interval_bytes);
        pos += size;
        expect = dp_batch_last_offset(&h) + 1;
    }
    s->size = pos;
    s->next_offset = expect;
    return 0;
bad:
    s->size = pos;
    s->next_offset = expect;
    return 1;
}

/* Cuts segment s back to its valid prefix; the space stays preallocated
 * and zeroed, so stale bytes past the end can never pass for batches once
 * new appends land in front of them. */
static int seg_truncate(dp_log_t *log, seg_t *s, int torn)
{
    if (ftruncate(s->fd, (off_t)s->size) < 0)
        return -errno;
    if (fallocate(s->fd, 0, 0, (off_t)s->alloc_bytes) < 0)
        return -errno;
    if (fdatasync(s->fd) < 0)
        return -errno;
    if (torn)
        log->stats.truncations++;
    return 0;
}

static int64_t read_start_file(dp_log_t *log)
{
    char buf[32];
    ssize_t n;
    int fd = openat(log->dir_fd, START_FILE, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtoll(buf, NULL, 10);
}

/* Lists segment base offsets (files named by 20 digits + ".log"), sorted. */
static int list_segments(dp_log_t *log, int64_t *bases, uint32_t *n)
{
    DIR *d;
    struct dirent *e;
    int fd, rc = 0;

    *n = 0;
    fd = dup(log->dir_fd);
    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (d == NULL) {
        rc = -errno;
        close(fd);
        goto out;
    }
    for (;;) {
        size_t len;
        int digits = 1;

        errno = 0;
        e = readdir(d);
        if (e == NULL)
            break;
        len = strlen(e->d_name);
        if (len != 24 || strcmp(e->d_name + 20, ".log") != 0)
            continue;
        for (int i = 0; i < 20; i++)
            if (e->d_name[i] < '0' || e->d_name[i] > '9')
                digits = 0;
        if (!digits)
            continue;
        if (*n >= log->cfg.segments_max) {
            rc = -EMFILE;
            break;
        }
        bases[(*n)++] = strtoll(e->d_name, NULL, 10);
    }
    closedir(d);
    qsort(bases, *n, sizeof(*bases), cmp_i64);
out:
    return rc;
}

static int recover(dp_log_t *log, char *err, size_t errlen)
{
    int64_t *bases = calloc(log->cfg.segments_max, sizeof(*bases));
    int64_t file_start;
    uint32_t n;
    int rc;

    if (bases == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    rc = list_segments(log, bases, &n);
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot list segments: %s", log->dir, strerror(-rc));
        goto out_free;
    }
    file_start = read_start_file(log);
    for (uint32_t i = 0; i < n; i++) {
        seg_t *s = &log->segs[log->nsegs];
        const char *why = NULL;
        int64_t want_next;
        int bad;

        rc = seg_open(log, s, bases[i], 0);
        if (rc < 0) {
            snprintf(err, errlen, "%s/%020" PRId64 ".log: cannot open: %s", log->dir, bases[i],
                     strerror(-rc));
            goto out_free;
        }
        log->nsegs++;
        bad = seg_scan(log, s, &why);
        if (bad < 0) {
            rc = bad;
            snprintf(err, errlen, "%s/%020" PRId64 ".log: read failed: %s", log->dir, bases[i],
                     strerror(-rc));
            goto out_free;
        }
        want_next = i + 1 < n ? bases[i + 1] : s->next_offset;
        if (!bad && s->next_offset != want_next) {
            bad = 1;
            why = "segment ends before the next segment's base offset";
        }
        if (bad && i + 1 < n) {
            /* Not the tail: only acceptable if no later segment ever got
             * data (a crash right after a roll); otherwise it is damage in
             * the middle of the log and must never be served. */
            int later_empty = 1;

            for (uint32_t j = i + 1; j < n; j++)
                if (!seg_file_empty(log, bases[j]))
                    later_empty = 0;
            if (!later_empty) {
                rc = -EBADMSG;
                snprintf(err, errlen,
                         "%s/%020" PRId64 ".log: %s at position %" PRIu64
                         " (expected offset %" PRId64 "); partition failed",
                         log->dir, bases[i], why, s->size, s->next_offset);
                goto out_free;
            }
            for (uint32_t j = i + 1; j < n; j++)
                seg_unlink(log, bases[j]);
            n = i + 1;
        }
        if (bad || i + 1 == n) {
            rc = seg_truncate(log, s, bad);
            if (rc < 0) {
                snprintf(err, errlen, "%s/%020" PRId64 ".log: cannot truncate: %s", log->dir,
                         bases[i], strerror(-rc));
                goto out_free;
            }
        }
        seg_index_clear_rest(s);
        if (s->idx_dirty)
            log->stats.index_rebuilds++;
    }
    if (log->nsegs == 0) {
        int64_t base = file_start > 0 ? file_start : 0;

        rc = seg_open(log, &log->segs[0], base, 1);
        if (rc < 0) {
            snprintf(err, errlen, "%s: cannot create first segment: %s", log->dir, strerror(-rc));
            goto out_free;
        }
        log->nsegs = 1;
    }
    log->start_offset = log->segs[0].base_offset;
    if (file_start > log->start_offset)
        log->start_offset = file_start;
    log->end_offset = log->segs[log->nsegs - 1].next_offset;
    if (log->start_offset > log->end_offset)
        log->start_offset = log->end_offset;
    log->written_offset = log->durable_offset = log->end_offset;
    log->written_seg = log->segs[log->nsegs - 1].base_offset;
    log->written_endpos = log->segs[log->nsegs - 1].size;
    rc = 0;
out_free:
    free(bases);
out:
    return rc;
}

int dp_log_open(dp_log_t **out, dp_ring_t *ring, const char *data_dir, const char *topic,
                int32_t partition, const dp_log_config_t *cfg, char *err, size_t errlen)
{
    dp_log_t *log = NULL;
    int rc, n;

    assert(out != NULL && ring != NULL && cfg != NULL);
    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (cfg->segment_bytes < 4096 || cfg->segment_bytes > INT32_MAX ||
        cfg->index_interval_bytes == 0 || cfg->segments_max == 0 ||
        cfg->batch_bytes_max < DP_BATCH_HEADER_SIZE) {
        snprintf(err, errlen, "invalid log configuration");
        rc = -EINVAL;
        goto out;
    }
    log = calloc(1, sizeof(*log));
    if (log == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    log->dir_fd = -1;
    log->wfd = -1;
    log->fill_seg_base = -1;
    log->ring = ring;
    log->cfg = *cfg;
    /* A completed write is durable: RWF_DSYNC or O_DSYNC under EVERY. */
    log->dsync = cfg->flush == DP_LOG_FLUSH_EVERY && cfg->sync_mode != DP_LOG_SYNC_FDATASYNC;
    /* Room for the largest batch after a partial block, and at least 1 MiB
     * so one write can carry a large group commit. */
    log->wb_cap = (uint32_t)align_up((uint64_t)cfg->batch_bytes_max + DIO_ALIGN);
    if (log->wb_cap < (1u << 20))
        log->wb_cap = 1u << 20;
    n = snprintf(log->dir, sizeof(log->dir), "%s/%s-%" PRId32, data_dir, topic, partition);
    if (n < 0 || (size_t)n >= sizeof(log->dir)) {
        rc = -ENAMETOOLONG;
        goto out;
    }
    log->segs = calloc(cfg->segments_max, sizeof(seg_t));
    log->scan_buf = malloc(cfg->batch_bytes_max);
    if (log->segs == NULL || log->scan_buf == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (mkdir(log->dir, 0755) < 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "%s: mkdir: %s", log->dir, strerror(errno));
        goto out;
    }
    log->dir_fd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->dir_fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: open: %s", log->dir, strerror(errno));
        goto out;
    }
    rc = recover(log, err, errlen);
    if (rc < 0)
        goto out;
    *out = log;
    log = NULL;
out:
    if (log != NULL) {
        for (uint32_t i = 0; i < log->nsegs; i++)
            seg_close(&log->segs[i]);
        if (log->dir_fd >= 0)
            close(log->dir_fd);
        free(log->segs);
        free(log->scan_buf);
        free(log);
    }
    return rc;
}

int dp_log_close(dp_log_t *log)
{
    if (log == NULL)
        return 0;
    if (!dp_log_idle(log))
        return -EBUSY;
    for (uint32_t i = 0; i < log->nsegs; i++)
        seg_close(&log->segs[i]);
    if (log->wfd >= 0)
        close(log->wfd);
    free(log->wb[0].p);
    free(log->wb[1].p);
    close(log->dir_fd);
    free(log->segs);
    free(log->scan_buf);
    free(log);
    return 0;
}

int64_t dp_log_start_offset(const dp_log_t *log)
{
    return log->start_offset;
}

int64_t dp_log_end_offset(const dp_log_t *log)
{
    return log->end_offset;
}

int64_t dp_log_written_offset(const dp_log_t *log)
{
    return log->written_offset;
}

int64_t dp_log_durable_offset(const dp_log_t *log)
{
    return log->durable_offset;
}

uint32_t dp_log_segment_count(const dp_log_t *log)
{
    return log->nsegs;
}

const dp_log_stats_t *dp_log_stats(const dp_log_t *log)
{
    return &log->stats;
}

const char *dp_log_error(const dp_log_t *log)
{
    return log->errmsg;
}
