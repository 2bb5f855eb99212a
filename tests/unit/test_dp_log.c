/* Description: dp_log segment log: append/read across rolls, read ranges, group commit,
 * restart recovery, torn tails at random positions, mid-log corruption,
 * retention, DeleteRecords, offset and timestamp lookup. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dp_batch.h"
#include "dp_log.h"
#include "dp_ring.h"

#define MAXB 64
#define BATCH_CAP 2048

typedef struct {
    dp_ring_t ring;
    char root[64];
    char part[128];
    dp_log_config_t cfg;
    dp_log_t *log;
    uint8_t bufs[MAXB][BATCH_CAP];
    int lens[MAXB];
    dp_log_append_t reqs[MAXB];
    int fired[MAXB];
    int results[MAXB];
    int64_t durable_at_cb[MAXB];
} fx_t;

static fx_t *fx;
static int check_epoch = 1;

static void rm_tree(const char *dir)
{
    char path[512];
    struct dirent *e;
    DIR *d = opendir(dir);

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) < 0)
            rm_tree(path);
    }
    closedir(d);
    rmdir(dir);
}

static int setup(void **state)
{
    fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    if (dp_ring_init(&fx->ring, 64, 0) < 0) {
        fprintf(stderr, "skip: io_uring unavailable\n");
        free(fx);
        exit(77);
    }
    snprintf(fx->root, sizeof(fx->root), "/tmp/dp_log_XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    snprintf(fx->part, sizeof(fx->part), "%s/t-0", fx->root);
    dp_log_config_defaults(&fx->cfg);
    fx->cfg.segment_bytes = 64 * 1024;
    fx->cfg.index_interval_bytes = 512;
    fx->cfg.batch_bytes_max = BATCH_CAP;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    if (fx->log != NULL) {
        for (int i = 0; i < 1000 && !dp_log_idle(fx->log); i++)
            dp_ring_run_once(&fx->ring, 1, 100);
        assert_int_equal(dp_log_close(fx->log), 0);
    }
    rm_tree(fx->part);
    rm_tree(fx->root);
    dp_ring_dispose(&fx->ring);
    free(fx);
    fx = NULL;
    return 0;
}

static void open_log(void)
{
    char err[256];
    int rc = dp_log_open(&fx->log, &fx->ring, fx->root, "t", 0, &fx->cfg, err, sizeof(err));

    if (rc != 0)
        fail_msg("open: %d %s", rc, err);
}

static void close_log(void)
{
    assert_int_equal(dp_log_close(fx->log), 0);
    fx->log = NULL;
}

/* A batch of `nrec` records with ~`vlen`-byte values, timestamps from ts. */
static int make_batch(uint8_t *buf, int nrec, int vlen, int64_t ts, int seed)
{
    dp_batch_build_rec_t recs[16];
    char val[16][256];

    assert_true(nrec <= 16 && vlen <= 256);
    for (int i = 0; i < nrec; i++) {
        memset(val[i], 'a' + (seed + i) % 26, (size_t)vlen);
        recs[i] = (dp_batch_build_rec_t){"key", 3, val[i], vlen, i};
    }
    return dp_batch_build(buf, BATCH_CAP, ts, recs, nrec);
}

static void append_cb(dp_log_append_t *req, int result)
{
    int i = (int)(req - fx->reqs);

    assert_true(i >= 0 && i < MAXB);
    assert_int_equal(fx->fired[i], 0);
    fx->fired[i] = 1;
    fx->results[i] = result;
    fx->durable_at_cb[i] = dp_log_durable_offset(req->log);
}

static void drive(void)
{
    for (int i = 0; i < 300 && !dp_log_idle(fx->log); i++)
        assert_true(dp_ring_run_once(&fx->ring, 1, 100) >= 0);
    assert_true(dp_log_idle(fx->log));
}

/* Appends slot i (already built) and returns immediately. */
static void append_slot(int i, unsigned flags)
{
    fx->fired[i] = 0;
    assert_int_equal(dp_log_append(fx->log, &fx->reqs[i], fx->bufs[i], (size_t)fx->lens[i], 3,
                                   flags, append_cb, NULL),
                     0);
}

/* Appends `n` batches of `nrec` records; returns the first base offset. */
static int64_t append_n(int n, int nrec, int vlen, int64_t ts, int64_t ts_step)
{
    int64_t first = dp_log_end_offset(fx->log);

    for (int done = 0; done < n;) {
        int k = n - done < MAXB ? n - done : MAXB;

        for (int i = 0; i < k; i++) {
            fx->lens[i] = make_batch(fx->bufs[i], nrec, vlen, ts + (done + i) * ts_step, done + i);
            assert_true(fx->lens[i] > 0);
            append_slot(i, 0);
        }
        drive();
        for (int i = 0; i < k; i++) {
            assert_int_equal(fx->fired[i], 1);
            assert_int_equal(fx->results[i], 0);
        }
        done += k;
    }
    return first;
}

/* Reads everything from `from` via dp_log_read, checks each batch's CRC
 * and that offsets are contiguous; returns the offset reached. */
static int64_t read_all(int64_t from, uint32_t max_bytes)
{
    static uint8_t buf[64 * 1024];
    dp_log_slice_t sl[4];
    int64_t next = from;

    for (;;) {
        int n = dp_log_read(fx->log, next, max_bytes, -1, sl, 4);

        assert_true(n >= 0);
        if (n == 0)
            break;
        for (int i = 0; i < n; i++) {
            size_t pos = 0;

            assert_true(sl[i].len <= sizeof(buf));
            assert_int_equal(pread(sl[i].fd, buf, sl[i].len, (off_t)sl[i].pos), (ssize_t)sl[i].len);
            assert_true(sl[i].first_offset <= next);
            while (pos < sl[i].len) {
                dp_batch_hdr_t h;

                assert_int_equal(dp_batch_validate(buf + pos, sl[i].len - pos, 0, &h), 0);
                if (check_epoch)
                    assert_int_equal(h.partition_leader_epoch, 3);
                if (pos == 0)
                    assert_int_equal(h.base_offset, sl[i].first_offset);
                else
                    assert_int_equal(h.base_offset, next);
                next = dp_batch_last_offset(&h) + 1;
                pos += dp_batch_size(&h);
            }
            assert_int_equal(pos, sl[i].len);
            assert_int_equal(next, sl[i].next_offset);
        }
    }
    return next;
}

static int count_files(const char *suffix)
{
    struct dirent *e;
    DIR *d = opendir(fx->part);
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);

        if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void seg_path(char *buf, size_t len, int64_t base, const char *ext)
{
    snprintf(buf, len, "%s/%020lld.%s", fx->part, (long long)base, ext);
}

/* ---------------------------------------------------------------------- */

static void test_append_read_across_rolls(void **state)
{
    dp_log_slice_t s;
    char path[256];
    struct stat st;

    open_log();
    assert_int_equal(dp_log_end_offset(fx->log), 0);
    assert_int_equal(append_n(300, 3, 200, 1000, 1), 0);
    assert_int_equal(dp_log_end_offset(fx->log), 900);
    assert_int_equal(dp_log_durable_offset(fx->log), 900);
    assert_true(dp_log_segment_count(fx->log) >= 3);
    assert_int_equal(count_files(".log"), (int)dp_log_segment_count(fx->log));
    assert_int_equal(count_files(".index"), (int)dp_log_segment_count(fx->log));
    assert_int_equal(count_files(".timeindex"), (int)dp_log_segment_count(fx->log));
    seg_path(path, sizeof(path), 0, "log");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 64 * 1024); /* preallocated */
    /* whole log in one pass per call, small and large max_bytes */
    assert_int_equal(read_all(0, 1), 900);
    assert_int_equal(read_all(0, 1 << 20), 900);
    assert_int_equal(read_all(451, 5000), 900);
    for (int64_t off = 0; off < 900; off += 7) {
        assert_int_equal(dp_log_find(fx->log, off, &s), 0);
        assert_true(s.first_offset <= off && off < s.next_offset);
        assert_int_equal(s.next_offset - s.first_offset, 3);
    }
    assert_int_equal(dp_log_find(fx->log, 900, &s), -ERANGE);
    assert_int_equal(dp_log_read(fx->log, 900, 100, -1, &s, 1), 0);
    assert_int_equal(dp_log_read(fx->log, 901, 100, -1, &s, 1), -ERANGE);
    /* max_offset bounds what is returned */
    assert_int_equal(dp_log_read(fx->log, 0, 1 << 20, 6, &s, 1), 1);
    assert_int_equal(s.next_offset, 6);
    assert_true(dp_log_stats(fx->log)->rolls >= 2);
}

/* dp_log_read_range: every plan starts at a batch boundary at or before the
 * offset, within one index interval of its batch, and the bytes up to `end`
 * are whole batches with consecutive offsets (what dp_part cuts in memory). */
static void test_read_range(void **state)
{
    static uint8_t seg[64 * 1024];
    dp_log_range_t rg;

    open_log();
    assert_int_equal(append_n(300, 3, 200, 1000, 1), 0);
    for (int64_t off = 0; off < 900; off += 5) {
        uint64_t at, skipped = 0;
        int64_t next = -1;
        ssize_t n;

        assert_int_equal(dp_log_read_range(fx->log, off, -1, &rg), 1);
        assert_true(rg.pos < rg.end && rg.end <= sizeof(seg));
        n = pread(rg.fd, seg, rg.end - rg.pos, (off_t)rg.pos);
        assert_int_equal(n, (ssize_t)(rg.end - rg.pos));
        for (at = 0; at < rg.end - rg.pos;) {
            dp_batch_hdr_t h;

            assert_true(at + DP_BATCH_HEADER_SIZE <= rg.end - rg.pos);
            assert_int_equal(dp_batch_parse_header(seg + at, rg.end - rg.pos - at, &h), 0);
            assert_true(at + dp_batch_size(&h) <= rg.end - rg.pos);
            if (next < 0)
                assert_true(h.base_offset >= rg.first_offset && h.base_offset <= off);
            else
                assert_int_equal(h.base_offset, next);
            next = dp_batch_last_offset(&h) + 1;
            if (next <= off)
                skipped += dp_batch_size(&h);
            at += dp_batch_size(&h);
        }
        assert_int_equal(at, rg.end - rg.pos); /* ends on a batch boundary */
        assert_true(next > off);
        assert_true(skipped < fx->cfg.index_interval_bytes); /* sparse index */
    }
    /* The tail segment ends where the written data ends. */
    assert_int_equal(dp_log_read_range(fx->log, 899, -1, &rg), 1);
    {
        dp_log_slice_t s;

        assert_int_equal(dp_log_find(fx->log, 897, &s), 0);
        assert_int_equal(rg.end, s.pos + s.len);
    }
    assert_int_equal(dp_log_read_range(fx->log, 900, -1, &rg), 0);
    assert_int_equal(dp_log_read_range(fx->log, 901, -1, &rg), -ERANGE);
    /* Any bound inside a segment but the written end is the slice path's
     * job, in the segment being written or in an older one. */
    assert_int_equal(dp_log_read_range(fx->log, 897, 899, &rg), -EAGAIN);
    assert_int_equal(dp_log_read_range(fx->log, 0, 3, &rg), -EAGAIN);
}

static void test_append_rejects_bad_batches(void **state)
{
    dp_log_append_t req;

    open_log();
    fx->lens[0] = make_batch(fx->bufs[0], 2, 10, 0, 0);
    fx->bufs[0][fx->lens[0] - 1] ^= 1;
    assert_int_equal(
        dp_log_append(fx->log, &req, fx->bufs[0], (size_t)fx->lens[0], 0, 0, append_cb, NULL),
        -EBADMSG);
    fx->bufs[0][fx->lens[0] - 1] ^= 1;
    assert_int_equal(
        dp_log_append(fx->log, &req, fx->bufs[0], (size_t)fx->lens[0] + 1, 0, 0, append_cb, NULL),
        -EINVAL);
    assert_int_equal(
        dp_log_append(fx->log, &req, fx->bufs[0], BATCH_CAP + 1, 0, 0, append_cb, NULL), -EMSGSIZE);
    assert_int_equal(dp_log_end_offset(fx->log), 0);
    assert_true(dp_log_idle(fx->log));
}

static void test_group_commit(void **state)
{
    uint64_t syncs;

    open_log();
    /* acks=all: 32 appends issued back to back share few fdatasyncs. */
    for (int i = 0; i < 32; i++) {
        fx->lens[i] = make_batch(fx->bufs[i], 2, 50, 0, i);
        append_slot(i, 0);
    }
    drive();
    syncs = dp_log_stats(fx->log)->syncs;
    assert_true(syncs >= 1 && syncs <= 3);
    for (int i = 0; i < 32; i++) {
        assert_int_equal(fx->results[i], 0);
        assert_true(fx->durable_at_cb[i] > fx->reqs[i].last_offset);
    }

    /* Interval policy: nothing is acked until a sync; one sync covers 10. */
    close_log();
    fx->cfg.flush = DP_LOG_FLUSH_INTERVAL;
    fx->cfg.flush_interval_ms = 3600 * 1000;
    open_log();
    syncs = dp_log_stats(fx->log)->syncs;
    for (int i = 0; i < 10; i++) {
        fx->lens[i] = make_batch(fx->bufs[i], 2, 50, 0, i);
        append_slot(i, 0);
    }
    fx->lens[10] = make_batch(fx->bufs[10], 1, 50, 0, 10);
    append_slot(10, DP_LOG_APPEND_WRITTEN); /* acks=1 */
    for (int i = 0; i < 100 && dp_log_written_offset(fx->log) < dp_log_end_offset(fx->log); i++)
        assert_true(dp_ring_run_once(&fx->ring, 1, 1000) >= 0);
    assert_int_equal(dp_log_written_offset(fx->log), 64 + 21);
    assert_int_equal(dp_ring_run_once(&fx->ring, 0, 0), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(fx->fired[i], 0);
    assert_int_equal(fx->fired[10], 1); /* written is enough for it */
    assert_int_equal(dp_log_durable_offset(fx->log), 64);
    /* written data is readable before it is durable */
    assert_int_equal(read_all(64, 1 << 20), 85);
    dp_log_flush(fx->log);
    drive();
    assert_int_equal(dp_log_stats(fx->log)->syncs, syncs + 1);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(fx->fired[i], 1);
        assert_int_equal(fx->results[i], 0);
    }
    assert_int_equal(dp_log_durable_offset(fx->log), 85);

    /* Bytes policy: syncs only once flush_bytes are pending. */
    close_log();
    fx->cfg.flush = DP_LOG_FLUSH_BYTES;
    fx->cfg.flush_bytes = 4 * 1024;
    open_log();
    syncs = dp_log_stats(fx->log)->syncs;
    for (int i = 0; i < 40; i++) {
        fx->lens[i] = make_batch(fx->bufs[i], 1, 200, 0, i);
        append_slot(i, 0);
    }
    for (int i = 0; i < 100 && dp_log_written_offset(fx->log) < dp_log_end_offset(fx->log); i++)
        assert_true(dp_ring_run_once(&fx->ring, 1, 1000) >= 0);
    for (int i = 0; i < 100 && dp_log_durable_offset(fx->log) == 85; i++)
        assert_true(dp_ring_run_once(&fx->ring, 1, 1000) >= 0);
    assert_true(dp_log_durable_offset(fx->log) > 85);
    dp_log_flush(fx->log);
    drive();
    assert_true(dp_log_stats(fx->log)->syncs - syncs <= 3);
    assert_int_equal(dp_log_durable_offset(fx->log), 125);
}

static void test_restart_recovery(void **state)
{
    char path[256];

    open_log();
    append_n(200, 2, 150, 5000, 1);
    close_log();
    open_log();
    assert_int_equal(dp_log_end_offset(fx->log), 400);
    assert_int_equal(dp_log_durable_offset(fx->log), 400);
    assert_int_equal(dp_log_stats(fx->log)->truncations, 0);
    assert_int_equal(dp_log_stats(fx->log)->index_rebuilds, 0);
    assert_int_equal(read_all(0, 1 << 20), 400);
    assert_int_equal(append_n(5, 2, 150, 9000, 1), 400);
    close_log();

    /* Lost and damaged indexes are rebuilt from the scan. */
    seg_path(path, sizeof(path), 0, "index");
    assert_int_equal(unlink(path), 0);
    seg_path(path, sizeof(path), 0, "timeindex");
    {
        int fd = open(path, O_WRONLY);

        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "garbage!", 8, 0), 8);
        close(fd);
    }
    open_log();
    assert_int_equal(dp_log_stats(fx->log)->index_rebuilds, 1);
    assert_int_equal(dp_log_end_offset(fx->log), 410);
    assert_int_equal(read_all(0, 1 << 20), 410);
    for (int64_t off = 0; off < 410; off += 3) {
        dp_log_slice_t s;

        assert_int_equal(dp_log_find(fx->log, off, &s), 0);
        assert_true(s.first_offset <= off && off < s.next_offset);
    }
    close_log();
    open_log();
    assert_int_equal(dp_log_stats(fx->log)->index_rebuilds, 0);
}

/* Torn or corrupt tail at 200 random positions: every batch wholly before
 * the damage survives, nothing at or after it is served, appends continue. */
static void test_torn_tail_random(void **state)
{
    enum { NB = 24 };
    static uint8_t pristine[64 * 1024];
    uint64_t ends[NB];
    char path[256];
    uint64_t data_end;
    const char *env_seed = getenv("WEIR_TEST_SEED");
    unsigned seed = env_seed ? (unsigned)strtoul(env_seed, NULL, 10) : (unsigned)time(NULL);
    int fd;

    fx->cfg.segment_bytes = 64 * 1024;
    open_log();
    for (int i = 0; i < NB; i++) {
        fx->lens[0] = make_batch(fx->bufs[0], 1 + i % 4, 100 + i * 5, 100 + i, i);
        append_slot(0, 0);
        drive();
        ends[i] = (i ? ends[i - 1] : 0) + (uint64_t)fx->lens[0];
    }
    assert_int_equal(dp_log_segment_count(fx->log), 1);
    data_end = ends[NB - 1];
    close_log();
    seg_path(path, sizeof(path), 0, "log");
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, pristine, sizeof(pristine), 0), (ssize_t)sizeof(pristine));
    close(fd);
    fprintf(stderr, "torn tail seed %u (set WEIR_TEST_SEED to replay)\n", seed);
    check_epoch = 0;
    srand(seed);
    for (int iter = 0; iter < 200; iter++) {
        static uint8_t img[64 * 1024];
        int mode = iter % 3;
        uint64_t p = (uint64_t)rand() % data_end;
        int survivors = 0;
        int64_t want_end;

        /* Damage an in-memory image, then the file the same way. */
        memcpy(img, pristine, sizeof(img));
        if (mode == 0) {
            memset(img + p, 0, sizeof(img) - p); /* torn: file cut at p */
        } else if (mode == 1) {
            img[p] ^= (uint8_t)(1 + rand() % 255); /* one corrupt byte */
        } else {
            size_t n = 1 + (size_t)rand() % 4096; /* zeroed range */

            if (p + n > sizeof(img))
                n = sizeof(img) - p;
            memset(img + p, 0, n);
        }
        fd = open(path, O_RDWR);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, img, sizeof(img), 0), (ssize_t)sizeof(img));
        if (mode == 0)
            assert_int_equal(ftruncate(fd, (off_t)p), 0);
        close(fd);
        /* A batch survives iff its bytes are unchanged (zeroing a byte that
         * was already zero is no damage). partitionLeaderEpoch (bytes
         * 12-15) is outside the CRC, as in Kafka: a change there alone is
         * not detectable, so it is not counted as damage here. */
        for (survivors = 0; survivors < NB; survivors++) {
            uint64_t b0 = survivors ? ends[survivors - 1] : 0;
            int changed = 0;

            for (uint64_t x = b0; x < ends[survivors]; x++)
                if (img[x] != pristine[x] && !(x - b0 >= 12 && x - b0 < 16))
                    changed = 1;
            if (changed)
                break;
        }
        want_end = 0;
        for (int i = 0; i < survivors; i++)
            want_end += 1 + i % 4;
        open_log();
        if (dp_log_end_offset(fx->log) != want_end)
            fail_msg("iter %d mode %d pos %llu: end %lld want %lld", iter, mode,
                     (unsigned long long)p, (long long)dp_log_end_offset(fx->log),
                     (long long)want_end);
        assert_int_equal(read_all(0, 1 << 20), want_end);
        /* a new append lands right after the survivors and survives reopen */
        fx->lens[0] = make_batch(fx->bufs[0], 2, 30, 7, iter);
        append_slot(0, 0);
        drive();
        assert_int_equal(fx->reqs[0].base_offset, want_end);
        close_log();
        open_log();
        assert_int_equal(dp_log_end_offset(fx->log), want_end + 2);
        assert_int_equal(read_all(0, 1 << 20), want_end + 2);
        close_log();
    }
    check_epoch = 1;
}

static void corrupt_byte(int64_t base, off_t pos)
{
    char path[256];
    uint8_t b;
    int fd;

    seg_path(path, sizeof(path), base, "log");
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, pos), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, pos), 1);
    close(fd);
}

static void test_mid_log_corruption(void **state)
{
    char err[256];
    int rc;

    fx->cfg.segment_bytes = 8 * 1024;
    open_log();
    append_n(100, 2, 150, 0, 1);
    assert_true(dp_log_segment_count(fx->log) >= 3);
    close_log();
    /* flip a CRC'd byte of some batch in the middle of the first segment */
    corrupt_byte(0, 2000);
    rc = dp_log_open(&fx->log, &fx->ring, fx->root, "t", 0, &fx->cfg, err, sizeof(err));
    assert_int_equal(rc, -EBADMSG);
    assert_null(fx->log);
    assert_non_null(strstr(err, "00000000000000000000.log"));
    assert_non_null(strstr(err, "position"));
    assert_non_null(strstr(err, "CRC"));
    /* still refused on a second attempt: never silently served */
    rc = dp_log_open(&fx->log, &fx->ring, fx->root, "t", 0, &fx->cfg, err, sizeof(err));
    assert_int_equal(rc, -EBADMSG);
    corrupt_byte(0, 2000); /* undo */
    open_log();
    assert_int_equal(dp_log_end_offset(fx->log), 200);
    close_log();

    /* A batch's baseOffset rewritten (outside the CRC) is misplaced. */
    corrupt_byte(0, 7);
    rc = dp_log_open(&fx->log, &fx->ring, fx->root, "t", 0, &fx->cfg, err, sizeof(err));
    assert_int_equal(rc, -EBADMSG);
    assert_non_null(strstr(err, "out of sequence"));
    corrupt_byte(0, 7);

    /* A non-tail segment cut short (a gap before the next one) fails. */
    {
        char path[256];
        struct stat st;

        seg_path(path, sizeof(path), 0, "log");
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(truncate(path, 3000), 0);
        rc = dp_log_open(&fx->log, &fx->ring, fx->root, "t", 0, &fx->cfg, err, sizeof(err));
        assert_int_equal(rc, -EBADMSG);
        assert_non_null(strstr(err, "00000000000000000000.log"));
    }
}

/* A crash right after a roll: the new tail never got data, the segment
 * before it is torn. That is a tail, and is truncated, not a failure. */
static void test_torn_before_empty_tail(void **state)
{
    char path[256];
    dp_log_slice_t last;
    int64_t second;
    int fd;

    fx->cfg.segment_bytes = 8 * 1024;
    open_log();
    while (dp_log_segment_count(fx->log) < 2)
        append_n(1, 2, 150, 0, 1);
    second = dp_log_end_offset(fx->log) - 2; /* the new segment's base */
    assert_int_equal(dp_log_find(fx->log, second - 1, &last), 0);
    assert_true(last.first_offset < second);
    close_log();
    /* the new tail never got its data; the batch before it is torn */
    seg_path(path, sizeof(path), second, "log");
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 0), 0);
    close(fd);
    seg_path(path, sizeof(path), 0, "log");
    assert_int_equal(truncate(path, (off_t)(last.pos + last.len / 2)), 0);
    open_log();
    assert_int_equal(dp_log_segment_count(fx->log), 1);
    assert_int_equal(dp_log_end_offset(fx->log), last.first_offset);
    assert_int_equal(dp_log_stats(fx->log)->truncations, 1);
    assert_int_equal(count_files(".log"), 1);
    assert_int_equal(read_all(0, 1 << 20), last.first_offset);
    assert_int_equal(append_n(1, 2, 150, 0, 1), last.first_offset);
}

static void test_retention(void **state)
{
    int64_t now = 100LL * 24 * 3600 * 1000;
    int64_t day = 24LL * 3600 * 1000;
    uint32_t nseg;
    dp_log_slice_t s;

    fx->cfg.segment_bytes = 8 * 1024;
    open_log();
    append_n(60, 2, 150, now - 10 * day, 1); /* old */
    append_n(60, 2, 150, now, 1);            /* fresh */
    nseg = dp_log_segment_count(fx->log);
    assert_true(nseg >= 4);
    close_log();

    /* by time: the old segments go, the log start moves to a segment base */
    fx->cfg.retention_ms = day;
    open_log();
    assert_true(dp_log_retain(fx->log, now) >= 1);
    assert_true(dp_log_start_offset(fx->log) > 0);
    assert_true(dp_log_start_offset(fx->log) <= 120);
    assert_int_equal(count_files(".log"), (int)dp_log_segment_count(fx->log));
    assert_int_equal(dp_log_find(fx->log, 0, &s), -ERANGE);
    assert_int_equal(dp_log_read(fx->log, 0, 100, -1, &s, 1), -ERANGE);
    assert_int_equal(read_all(dp_log_start_offset(fx->log), 1 << 20), 240);
    assert_int_equal(dp_log_retain(fx->log, now), 0); /* idempotent */
    close_log();
    open_log();
    assert_true(dp_log_start_offset(fx->log) > 0);
    assert_int_equal(dp_log_end_offset(fx->log), 240);
    close_log();

    /* by bytes: keeps the log under the limit, never the active segment */
    fx->cfg.retention_ms = -1;
    fx->cfg.retention_bytes = 10 * 1024;
    open_log();
    assert_true(dp_log_retain(fx->log, now) >= 1);
    assert_true(dp_log_segment_count(fx->log) >= 1);
    assert_true(dp_log_segment_count(fx->log) <= 3);
    assert_int_equal(read_all(dp_log_start_offset(fx->log), 1 << 20), 240);
    fx->cfg.retention_bytes = 0;
    close_log();
    open_log();
    dp_log_retain(fx->log, now);
    assert_int_equal(dp_log_segment_count(fx->log), 1);
    assert_int_equal(dp_log_end_offset(fx->log), 240);
    close_log();
}

static void test_delete_records(void **state)
{
    dp_log_slice_t s;
    int64_t t;

    fx->cfg.segment_bytes = 8 * 1024;
    open_log();
    append_n(100, 2, 150, 1000, 10);
    assert_int_equal(dp_log_delete_records(fx->log, 201), -ERANGE);
    assert_int_equal(dp_log_delete_records(fx->log, 101), 0);
    assert_int_equal(dp_log_start_offset(fx->log), 101);
    assert_true(dp_log_stats(fx->log)->segments_deleted >= 1);
    assert_int_equal(dp_log_find(fx->log, 100, &s), -ERANGE);
    assert_int_equal(dp_log_find(fx->log, 101, &s), 0);
    assert_int_equal(s.first_offset, 100); /* the batch holding 101 */
    assert_int_equal(dp_log_find_time(fx->log, 0, &t), 0);
    assert_int_equal(t, 101);
    close_log();
    open_log();
    assert_int_equal(dp_log_start_offset(fx->log), 101);
    assert_int_equal(dp_log_end_offset(fx->log), 200);
}

static void test_offset_and_time_lookup(void **state)
{
    int64_t off;

    fx->cfg.segment_bytes = 16 * 1024;
    open_log();
    /* 150 batches of 2 records; batch i: base 2i, timestamps 1000+10i .. +1 */
    append_n(150, 2, 120, 1000, 10);
    assert_true(dp_log_segment_count(fx->log) >= 2);
    for (int i = 0; i < 150; i += 3) {
        assert_int_equal(dp_log_find_time(fx->log, 1000 + 10 * i, &off), 0);
        assert_int_equal(off, 2 * i);
        assert_int_equal(dp_log_find_time(fx->log, 1000 + 10 * i - 5, &off), 0);
        assert_int_equal(off, 2 * i);
    }
    assert_int_equal(dp_log_find_time(fx->log, 0, &off), 0);
    assert_int_equal(off, 0);
    assert_int_equal(dp_log_find_time(fx->log, 1000 + 10 * 149 + 2, &off), -ENOENT);
    for (int64_t o = 0; o < 300; o++) {
        dp_log_slice_t s;

        assert_int_equal(dp_log_find(fx->log, o, &s), 0);
        assert_int_equal(s.first_offset, o & ~1LL);
    }
    /* the same after a reopen (indexes from disk) */
    close_log();
    open_log();
    assert_int_equal(dp_log_find_time(fx->log, 1000 + 10 * 77, &off), 0);
    assert_int_equal(off, 154);
}

static void test_interval_tick_and_limits(void **state)
{
    fx->cfg.flush = DP_LOG_FLUSH_INTERVAL;
    fx->cfg.flush_interval_ms = 1000;
    fx->cfg.segment_bytes = 4096;
    fx->cfg.segments_max = 2;
    open_log();
    dp_log_tick(fx->log, 10000);
    for (int i = 0; i < 3; i++) {
        fx->lens[i] = make_batch(fx->bufs[i], 2, 100, 0, i);
        append_slot(i, 0);
    }
    for (int i = 0; i < 100 && dp_log_written_offset(fx->log) < 6; i++)
        assert_true(dp_ring_run_once(&fx->ring, 1, 1000) >= 0);
    dp_log_tick(fx->log, 10500); /* not yet due */
    assert_int_equal(dp_ring_run_once(&fx->ring, 0, 0), 0);
    assert_int_equal(dp_log_durable_offset(fx->log), 0);
    dp_log_tick(fx->log, 11000); /* due: one sync acks all three */
    drive();
    assert_int_equal(dp_log_durable_offset(fx->log), 6);
    assert_int_equal(dp_log_stats(fx->log)->syncs, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fx->results[i], 0);
    /* segments_max bounds the partition: the roll past it is refused. */
    dp_log_flush(fx->log);
    for (int n = 0; n < 100; n++) {
        int rc;

        fx->lens[0] = make_batch(fx->bufs[0], 2, 200, 0, n);
        fx->fired[0] = 0;
        rc = dp_log_append(fx->log, &fx->reqs[0], fx->bufs[0], (size_t)fx->lens[0], 3, 0, append_cb,
                           NULL);
        if (rc == -ENOSPC)
            break;
        assert_int_equal(rc, 0);
        dp_log_flush(fx->log);
        drive();
        assert_true(n < 99);
    }
    assert_int_equal(dp_log_segment_count(fx->log), 2);
    assert_true(dp_log_idle(fx->log));
    assert_string_equal(dp_log_error(fx->log), "");
}

/* dup2s `with` over every descriptor of this process open on `path`. */
static int swap_fds_on(const char *path, int with)
{
    char real[PATH_MAX], link[64], target[PATH_MAX];
    struct dirent *e;
    DIR *d;
    int n = 0;

    assert_non_null(realpath(path, real));
    d = opendir("/proc/self/fd");
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        ssize_t len;

        if (e->d_name[0] == '.' || fd == with || fd == dirfd(d))
            continue;
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        len = readlink(link, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strcmp(target, real) == 0) {
            assert_int_equal(dup2(with, fd), fd);
            n++;
        }
    }
    closedir(d);
    return n;
}

/* An I/O error fails the pending appends and makes the log refuse more. */
static void test_write_error_fails_log(void **state)
{
    dp_log_slice_t s;
    char path[256];
    int ro;

    open_log();
    append_n(1, 2, 100, 0, 1);
    assert_int_equal(dp_log_find(fx->log, 0, &s), 0);
    /* swap every fd the log holds on the segment (its read fd and its
     * write-behind fd) for a read-only one: writes get -EBADF */
    seg_path(path, sizeof(path), 0, "log");
    ro = open(path, O_RDONLY);
    assert_true(ro >= 0);
    assert_true(swap_fds_on(path, ro) >= 2);
    close(ro);
    for (int i = 0; i < 3; i++) {
        fx->lens[i] = make_batch(fx->bufs[i], 1, 50, 0, i);
        append_slot(i, i == 2 ? DP_LOG_APPEND_WRITTEN : 0);
    }
    drive();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx->fired[i], 1);
        assert_int_equal(fx->results[i], -EBADF);
    }
    assert_non_null(strstr(dp_log_error(fx->log), "write"));
    assert_int_equal(dp_log_durable_offset(fx->log), 2);
    assert_int_equal(dp_log_append(fx->log, &fx->reqs[0], fx->bufs[0], (size_t)fx->lens[0], 3, 0,
                                   append_cb, NULL),
                     -EBADF);
    close_log();
    /* what was durable is intact after a reopen */
    open_log();
    assert_int_equal(dp_log_end_offset(fx->log), 2);
}

/* dp_log_scan: collects base offsets and stops after `stop_after` calls. */
typedef struct {
    int64_t bases[1024];
    int n;
    int stop_after;
} scan_ctx_t;

static int scan_cb(const dp_batch_hdr_t *hdr, void *ctx)
{
    scan_ctx_t *c = ctx;

    assert_true(c->n < 1024);
    if (c->n > 0)
        assert_int_equal(hdr->base_offset, c->bases[c->n - 1] + 3);
    assert_int_equal(hdr->last_offset_delta, 2);
    assert_int_equal(hdr->partition_leader_epoch, 3);
    c->bases[c->n++] = hdr->base_offset;
    return c->n == c->stop_after ? 42 : 0;
}

static int scan(int64_t from, int stop_after, scan_ctx_t *c)
{
    memset(c, 0, sizeof(*c));
    c->stop_after = stop_after;
    return dp_log_scan(fx->log, from, scan_cb, c);
}

static void test_scan(void **state)
{
    static scan_ctx_t c;

    open_log();
    assert_int_equal(scan(0, 0, &c), 0); /* empty log */
    assert_int_equal(c.n, 0);
    append_n(200, 3, 200, 1000, 1);
    assert_true(dp_log_segment_count(fx->log) >= 3);
    /* whole log, across segment boundaries */
    assert_int_equal(scan(0, 0, &c), 0);
    assert_int_equal(c.n, 200);
    assert_int_equal(c.bases[0], 0);
    assert_int_equal(c.bases[199], 597);
    /* below the start clamps; inside a batch starts at that batch */
    assert_int_equal(scan(-7, 0, &c), 0);
    assert_int_equal(c.n, 200);
    assert_int_equal(scan(301, 0, &c), 0);
    assert_int_equal(c.bases[0], 300);
    assert_int_equal(c.n, 100);
    assert_int_equal(scan(599, 0, &c), 0);
    assert_int_equal(c.n, 1);
    /* at or past the end: nothing */
    assert_int_equal(scan(600, 0, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(scan(100000, 0, &c), 0);
    assert_int_equal(c.n, 0);
    /* a non-zero callback return stops the scan and is returned */
    assert_int_equal(scan(30, 5, &c), 42);
    assert_int_equal(c.n, 5);
    assert_int_equal(c.bases[4], 42);
    /* appends not yet written are not scanned */
    for (int i = 0; i < 2; i++) {
        fx->lens[i] = make_batch(fx->bufs[i], 3, 200, 5000, i);
        append_slot(i, 0);
    }
    assert_int_equal(dp_log_end_offset(fx->log), 606);
    assert_int_equal(dp_log_written_offset(fx->log), 600);
    assert_int_equal(scan(0, 0, &c), 0);
    assert_int_equal(c.n, 200);
    drive();
    assert_int_equal(scan(0, 0, &c), 0);
    assert_int_equal(c.n, 202);
    /* after DeleteRecords the batch straddling the new start comes first */
    assert_int_equal(dp_log_delete_records(fx->log, 301), 0);
    assert_int_equal(scan(0, 0, &c), 0);
    assert_int_equal(c.bases[0], 300);
    assert_int_equal(c.n, 102);
    /* and the same after a restart */
    close_log();
    open_log();
    assert_int_equal(scan(0, 0, &c), 0);
    assert_int_equal(c.n, 102);
    assert_int_equal(c.bases[101], 603);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_read_across_rolls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_rejects_bad_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mid_log_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_before_empty_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offset_and_time_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interval_tick_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_fails_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
