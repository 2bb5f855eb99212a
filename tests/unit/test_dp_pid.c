/* Description: dp_pid idempotent producers: the verdict table (fresh id,
 * in order, duplicates of each of the last 5, gaps, epochs, sequence wrap),
 * eviction and expiry against a model, rebuild from a real dp_log through
 * dp_log_scan, and the producer id allocator across reopen and replicas. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dp_batch.h"
#include "dp_crc32c.h"
#include "dp_log.h"
#include "dp_pid.h"
#include "dp_ring.h"

static char root[64];

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

static int setup_dir(void **state)
{
    snprintf(root, sizeof(root), "/tmp/dp_pid_XXXXXX");
    assert_non_null(mkdtemp(root));
    return 0;
}

static int teardown_dir(void **state)
{
    rm_tree(root);
    return 0;
}

/* A header as dp_batch_parse_header would give for `nrec` records. */
static dp_batch_hdr_t hdr(int64_t pid, int16_t epoch, int32_t seq, int32_t nrec, int64_t ts)
{
    dp_batch_hdr_t h;

    memset(&h, 0, sizeof(h));
    h.magic = DP_BATCH_MAGIC;
    h.last_offset_delta = nrec - 1;
    h.records_count = nrec;
    h.base_timestamp = ts;
    h.max_timestamp = ts;
    h.producer_id = pid;
    h.producer_epoch = epoch;
    h.base_sequence = seq;
    return h;
}

static dp_pid_verdict_t check(const dp_pidmap_t *m, int64_t pid, int16_t epoch, int32_t seq,
                              int32_t nrec, int64_t *dup_base, int64_t *dup_last)
{
    dp_batch_hdr_t h = hdr(pid, epoch, seq, nrec, 0);
    int64_t b = -2, l = -2;
    dp_pid_verdict_t v = dp_pidmap_check(m, &h, &b, &l);

    if (v != DP_PID_DUPLICATE) {
        assert_int_equal(b, -2); /* untouched unless DUPLICATE */
        assert_int_equal(l, -2);
    }
    if (dup_base != NULL)
        *dup_base = b;
    if (dup_last != NULL)
        *dup_last = l;
    return v;
}

/* check() must say OK; then records the batch at `*next_off` as the store
 * would after dp_log_append. */
static void append(dp_pidmap_t *m, int64_t pid, int16_t epoch, int32_t seq, int32_t nrec,
                   int64_t ts, int64_t *next_off)
{
    dp_batch_hdr_t h = hdr(pid, epoch, seq, nrec, ts);
    int64_t b, l;

    assert_int_equal(dp_pidmap_check(m, &h, &b, &l), DP_PID_OK);
    dp_pidmap_update(m, &h, *next_off, *next_off + nrec - 1);
    *next_off += nrec;
}

/* ---- verdicts ----------------------------------------------------------- */

static void test_fresh_and_non_idempotent(void **state)
{
    dp_pidmap_t m;
    int64_t off = 0;

    assert_int_equal(dp_pidmap_init(&m, 0), -EINVAL);
    assert_int_equal(dp_pidmap_init(&m, DP_PIDMAP_PRODUCERS_MAX + 1), -EINVAL);
    assert_int_equal(dp_pidmap_init(&m, 8), 0);
    /* no producer id: always OK, never tracked */
    assert_int_equal(check(&m, -1, -1, -1, 3, NULL, NULL), DP_PID_OK);
    append(&m, -1, -1, -1, 3, 0, &off);
    assert_int_equal(m.count, 0);
    assert_null(dp_pidmap_find(&m, -1));
    /* unknown producer: sequence 0 starts it, anything else is UNKNOWN */
    assert_int_equal(check(&m, 7, 0, 0, 1, NULL, NULL), DP_PID_OK);
    assert_int_equal(check(&m, 7, 3, 0, 1, NULL, NULL), DP_PID_OK);
    assert_int_equal(check(&m, 7, 0, 5, 1, NULL, NULL), DP_PID_UNKNOWN);
    /* malformed idempotent headers */
    assert_int_equal(check(&m, 7, -1, 0, 1, NULL, NULL), DP_PID_INVALID_EPOCH);
    assert_int_equal(check(&m, 7, 0, -1, 1, NULL, NULL), DP_PID_OUT_OF_ORDER);
    append(&m, 7, 0, 0, 4, 100, &off);
    assert_int_equal(m.count, 1);
    assert_non_null(dp_pidmap_find(&m, 7));
    assert_int_equal(dp_pidmap_find(&m, 7)->batches[0].last_sequence, 3);
    assert_int_equal(dp_pidmap_find(&m, 7)->batches[0].base_offset, 3);
    assert_int_equal(dp_pidmap_find(&m, 7)->batches[0].last_offset, 6);
    /* control batches are not sequenced */
    {
        dp_batch_hdr_t h = hdr(7, 0, 99, 1, 0);
        int64_t b, l;

        h.attributes = DP_BATCH_ATTR_CONTROL;
        assert_int_equal(dp_pidmap_check(&m, &h, &b, &l), DP_PID_OK);
        dp_pidmap_update(&m, &h, 50, 50);
        assert_int_equal(dp_pidmap_find(&m, 7)->nbatches, 1);
    }
    dp_pidmap_dispose(&m);
    dp_pidmap_dispose(&m); /* idempotent on a zeroed map */
}

static void test_in_order_and_gaps(void **state)
{
    dp_pidmap_t m;
    int64_t off = 0;

    assert_int_equal(dp_pidmap_init(&m, 8), 0);
    append(&m, 1, 0, 0, 5, 10, &off); /* seq 0-4 */
    append(&m, 1, 0, 5, 1, 11, &off); /* seq 5 */
    append(&m, 1, 0, 6, 3, 12, &off); /* seq 6-8 */
    /* gap, overlap, restart from 0, far behind */
    assert_int_equal(check(&m, 1, 0, 10, 1, NULL, NULL), DP_PID_OUT_OF_ORDER);
    assert_int_equal(check(&m, 1, 0, 8, 2, NULL, NULL), DP_PID_OUT_OF_ORDER);
    assert_int_equal(check(&m, 1, 0, 7, 2, NULL, NULL), DP_PID_OUT_OF_ORDER);
    assert_int_equal(check(&m, 1, 0, 0, 1, NULL, NULL), DP_PID_OUT_OF_ORDER);
    assert_int_equal(check(&m, 1, 0, 9, 7, NULL, NULL), DP_PID_OK);
    /* another producer is independent */
    append(&m, 2, 4, 0, 2, 13, &off);
    assert_int_equal(check(&m, 2, 4, 2, 1, NULL, NULL), DP_PID_OK);
    assert_int_equal(check(&m, 1, 0, 9, 1, NULL, NULL), DP_PID_OK);
    dp_pidmap_dispose(&m);
}

static void test_duplicates_of_last_five(void **state)
{
    dp_pidmap_t m;
    int64_t off = 100, b, l;
    int64_t bases[7];

    assert_int_equal(dp_pidmap_init(&m, 8), 0);
    /* 7 batches of 2 records: seq 0-1, 2-3, ..., 12-13 */
    for (int i = 0; i < 7; i++) {
        bases[i] = off;
        append(&m, 9, 1, 2 * i, 2, 1000 + i, &off);
        off += 10; /* other producers' batches in between */
    }
    assert_int_equal(dp_pidmap_find(&m, 9)->nbatches, DP_PID_BATCHES);
    /* each of the last five is a duplicate with its original offsets */
    for (int i = 2; i < 7; i++) {
        assert_int_equal(check(&m, 9, 1, 2 * i, 2, &b, &l), DP_PID_DUPLICATE);
        assert_int_equal(b, bases[i]);
        assert_int_equal(l, bases[i] + 1);
    }
    /* older than the window: no longer recognisable, out of order */
    assert_int_equal(check(&m, 9, 1, 0, 2, NULL, NULL), DP_PID_OUT_OF_ORDER);
    assert_int_equal(check(&m, 9, 1, 2, 2, NULL, NULL), DP_PID_OUT_OF_ORDER);
    /* same base but different length, or straddling two batches */
    assert_int_equal(check(&m, 9, 1, 8, 1, NULL, NULL), DP_PID_OUT_OF_ORDER);
    assert_int_equal(check(&m, 9, 1, 8, 4, NULL, NULL), DP_PID_OUT_OF_ORDER);
    assert_int_equal(check(&m, 9, 1, 9, 2, NULL, NULL), DP_PID_OUT_OF_ORDER);
    /* a duplicate from an older epoch is fenced, not answered */
    assert_int_equal(check(&m, 9, 0, 12, 2, NULL, NULL), DP_PID_INVALID_EPOCH);
    /* the next in order is still fine */
    assert_int_equal(check(&m, 9, 1, 14, 2, NULL, NULL), DP_PID_OK);
    dp_pidmap_dispose(&m);
}

static void test_epochs(void **state)
{
    dp_pidmap_t m;
    int64_t off = 0;

    assert_int_equal(dp_pidmap_init(&m, 8), 0);
    append(&m, 3, 5, 0, 3, 1, &off);
    append(&m, 3, 5, 3, 3, 2, &off);
    assert_int_equal(check(&m, 3, 4, 6, 1, NULL, NULL), DP_PID_INVALID_EPOCH);
    assert_int_equal(check(&m, 3, 4, 0, 1, NULL, NULL), DP_PID_INVALID_EPOCH);
    assert_int_equal(check(&m, 3, 6, 6, 1, NULL, NULL), DP_PID_OUT_OF_ORDER);
    assert_int_equal(check(&m, 3, 6, 0, 1, NULL, NULL), DP_PID_OK);
    assert_int_equal(check(&m, 3, INT16_MAX, 0, 1, NULL, NULL), DP_PID_OK);
    /* the bump replaces the old epoch's batches */
    append(&m, 3, 6, 0, 2, 3, &off);
    assert_int_equal(dp_pidmap_find(&m, 3)->epoch, 6);
    assert_int_equal(dp_pidmap_find(&m, 3)->nbatches, 1);
    assert_int_equal(check(&m, 3, 5, 3, 3, NULL, NULL), DP_PID_INVALID_EPOCH);
    assert_int_equal(check(&m, 3, 6, 0, 2, NULL, NULL), DP_PID_DUPLICATE);
    assert_int_equal(check(&m, 3, 6, 2, 1, NULL, NULL), DP_PID_OK);
    dp_pidmap_dispose(&m);
}

static void test_sequence_wrap(void **state)
{
    dp_pidmap_t m;
    int64_t off = 0, b, l;

    assert_int_equal(dp_pidmap_init(&m, 8), 0);
    /* a producer state that starts near the top (as after a rebuild) */
    {
        dp_batch_hdr_t h = hdr(4, 0, INT32_MAX - 4, 3, 1);

        dp_pidmap_update(&m, &h, 0, 2);
        off = 3;
    }
    assert_int_equal(dp_pidmap_find(&m, 4)->batches[0].last_sequence, INT32_MAX - 2);
    /* a batch straddling the wrap: INT32_MAX-1, INT32_MAX, 0, 1 */
    append(&m, 4, 0, INT32_MAX - 1, 4, 2, &off);
    assert_int_equal(dp_pidmap_find(&m, 4)->batches[1].last_sequence, 1);
    assert_int_equal(check(&m, 4, 0, 2, 1, NULL, NULL), DP_PID_OK);
    assert_int_equal(check(&m, 4, 0, 0, 1, NULL, NULL), DP_PID_OUT_OF_ORDER);
    assert_int_equal(check(&m, 4, 0, INT32_MAX - 1, 4, &b, &l), DP_PID_DUPLICATE);
    assert_int_equal(b, 3);
    assert_int_equal(l, 6);
    /* a batch ending exactly at INT32_MAX is followed by 0 */
    {
        dp_batch_hdr_t h = hdr(5, 0, INT32_MAX - 1, 2, 1);

        dp_pidmap_update(&m, &h, 10, 11);
    }
    assert_int_equal(dp_pidmap_find(&m, 5)->batches[0].last_sequence, INT32_MAX);
    assert_int_equal(check(&m, 5, 0, 0, 3, NULL, NULL), DP_PID_OK);
    assert_int_equal(check(&m, 5, 0, 1, 1, NULL, NULL), DP_PID_OUT_OF_ORDER);
    assert_int_equal(check(&m, 5, 0, INT32_MAX, 1, NULL, NULL), DP_PID_OUT_OF_ORDER);
    off = 12;
    append(&m, 5, 0, 0, 3, 2, &off);
    assert_int_equal(check(&m, 5, 0, 3, 1, NULL, NULL), DP_PID_OK);
    dp_pidmap_dispose(&m);
}

/* ---- bounds ------------------------------------------------------------- */

static void test_eviction_at_capacity(void **state)
{
    dp_pidmap_t m;
    int64_t off = 0;
    const int64_t ts[4] = {100, 50, 300, 200};

    assert_int_equal(dp_pidmap_init(&m, 4), 0);
    for (int i = 0; i < 4; i++)
        append(&m, 10 + i, 0, 0, 1, ts[i], &off);
    /* producer 10 writes again: its newest batch is what counts */
    append(&m, 10, 0, 1, 1, 400, &off);
    assert_int_equal(m.count, 4);
    append(&m, 20, 0, 0, 1, 500, &off);
    assert_int_equal(m.count, 4);
    assert_int_equal(m.evictions, 1);
    assert_null(dp_pidmap_find(&m, 11)); /* ts 50: the oldest */
    assert_int_equal(check(&m, 11, 0, 1, 1, NULL, NULL), DP_PID_UNKNOWN);
    append(&m, 21, 0, 0, 1, 600, &off); /* evicts 13 (ts 200) */
    assert_null(dp_pidmap_find(&m, 13));
    assert_non_null(dp_pidmap_find(&m, 10));
    assert_non_null(dp_pidmap_find(&m, 12));
    assert_non_null(dp_pidmap_find(&m, 20));
    assert_non_null(dp_pidmap_find(&m, 21));
    assert_int_equal(check(&m, 10, 0, 2, 1, NULL, NULL), DP_PID_OK);
    assert_int_equal(check(&m, 12, 0, 1, 1, NULL, NULL), DP_PID_OK);
    dp_pidmap_dispose(&m);
}

static void test_expire(void **state)
{
    dp_pidmap_t m;
    int64_t off = 0;

    assert_int_equal(dp_pidmap_init(&m, 16), 0);
    for (int i = 0; i < 10; i++)
        append(&m, i, 0, 0, 1, 1000 * i, &off);
    /* now 10000, expiration 5000: ts <= 5000 go (0..5) */
    assert_int_equal(dp_pidmap_expire(&m, 10000, 5000), 6);
    assert_int_equal(m.count, 4);
    for (int i = 0; i < 10; i++) {
        if (i <= 5)
            assert_null(dp_pidmap_find(&m, i));
        else
            assert_int_equal(check(&m, i, 0, 1, 1, NULL, NULL), DP_PID_OK);
    }
    /* timestamps in the future are kept; nothing overflows */
    append(&m, 99, 0, 0, 1, INT64_MAX, &off);
    append(&m, 98, 0, 0, 1, INT64_MIN, &off);
    assert_int_equal(dp_pidmap_expire(&m, INT64_MAX - 1, INT64_MAX), 1); /* 98 */
    assert_null(dp_pidmap_find(&m, 98));
    assert_int_equal(dp_pidmap_expire(&m, INT64_MAX - 1, 0), 4);
    assert_non_null(dp_pidmap_find(&m, 99));
    assert_int_equal(dp_pidmap_expire(&m, INT64_MAX, 0), 1);
    assert_int_equal(m.count, 0);
    dp_pidmap_dispose(&m);
}

/* Random churn against a plain array model: exercises probing and
 * backward-shift deletion with a table that is always full. */
typedef struct {
    int64_t pid;
    int64_t ts;
    int32_t next_seq;
} model_t;

static void test_churn_against_model(void **state)
{
    enum { CAP = 37, PIDS = 200, OPS = 40000 };
    static model_t model[CAP];
    dp_pidmap_t m;
    int n = 0;
    int64_t clock = 0, off = 0;
    unsigned seed = 12345;

    assert_int_equal(dp_pidmap_init(&m, CAP), 0);
    for (int op = 0; op < OPS; op++) {
        int64_t pid;
        int k = -1;

        seed = seed * 1103515245u + 12345u;
        /* ids spread over the hash space and colliding low bits */
        pid = (int64_t)((seed >> 8) % PIDS) * 4096;
        for (int i = 0; i < n; i++)
            if (model[i].pid == pid)
                k = i;
        if (k < 0) {
            assert_null(dp_pidmap_find(&m, pid));
            assert_int_equal(check(&m, pid, 0, 1, 1, NULL, NULL), DP_PID_UNKNOWN);
            if (n == CAP) {
                int v = 0;

                for (int i = 1; i < n; i++)
                    if (model[i].ts < model[v].ts)
                        v = i;
                model[v] = model[--n];
            }
            k = n++;
            model[k].pid = pid;
            model[k].next_seq = 0;
        }
        model[k].ts = ++clock;
        append(&m, pid, 0, model[k].next_seq, 2, clock, &off);
        model[k].next_seq += 2;
        assert_int_equal(m.count, (uint32_t)n);
        if (op % 1000 == 999) {
            /* expire the oldest third, in both */
            int64_t cut = clock - (2 * CAP) / 3;

            for (int i = 0; i < n;)
                if (model[i].ts <= cut)
                    model[i] = model[--n];
                else
                    i++;
            dp_pidmap_expire(&m, clock, clock - cut);
            assert_int_equal(m.count, (uint32_t)n);
        }
        if (op % 97 == 0) {
            for (int i = 0; i < n; i++) {
                const dp_pid_entry_t *e = dp_pidmap_find(&m, model[i].pid);

                assert_non_null(e);
                assert_int_equal(e->batches[e->newest].timestamp, model[i].ts);
                assert_int_equal(check(&m, model[i].pid, 0, model[i].next_seq, 1, NULL, NULL),
                                 DP_PID_OK);
            }
        }
    }
    dp_pidmap_dispose(&m);
}

/* ---- rebuild from a real log -------------------------------------------- */

/* Test helper: sets the producer fields of a built batch and recomputes its
 * CRC32C (which covers attributes through the end). */
static void set_producer(uint8_t *b, size_t len, int64_t pid, int16_t epoch, int32_t seq)
{
    uint32_t crc;

    for (int i = 0; i < 8; i++)
        b[43 + i] = (uint8_t)((uint64_t)pid >> (56 - 8 * i));
    b[51] = (uint8_t)((uint16_t)epoch >> 8);
    b[52] = (uint8_t)epoch;
    for (int i = 0; i < 4; i++)
        b[53 + i] = (uint8_t)((uint32_t)seq >> (24 - 8 * i));
    crc = dp_crc32c(0, b + DP_BATCH_ATTR_OFFSET, len - DP_BATCH_ATTR_OFFSET);
    for (int i = 0; i < 4; i++)
        b[DP_BATCH_CRC_OFFSET + i] = (uint8_t)(crc >> (24 - 8 * i));
}

typedef struct {
    dp_ring_t ring;
    dp_log_t *log;
    dp_log_config_t cfg;
    uint8_t buf[2048];
    dp_log_append_t req;
    int fired, result;
} logfx_t;

static void log_cb(dp_log_append_t *req, int result)
{
    logfx_t *f = req->ctx;

    f->fired = 1;
    f->result = result;
}

static void log_open(logfx_t *f)
{
    char err[256];
    int rc = dp_log_open(&f->log, &f->ring, root, "t", 0, &f->cfg, err, sizeof(err));

    if (rc != 0)
        fail_msg("open: %d %s", rc, err);
}

/* One produce as the store does it: check, append, update; waits for the
 * append. Returns the verdict; *base gets the answered base offset. */
static dp_pid_verdict_t produce(logfx_t *f, dp_pidmap_t *m, int64_t pid, int16_t epoch, int32_t seq,
                                int nrec, int64_t ts, int64_t *base)
{
    dp_batch_build_rec_t recs[8];
    dp_batch_hdr_t h;
    dp_pid_verdict_t v;
    int64_t db = -1, dl = -1;
    int len;

    assert_true(nrec <= 8);
    for (int i = 0; i < nrec; i++)
        recs[i] = (dp_batch_build_rec_t){"k", 1, "value-value-value", 17, i};
    len = dp_batch_build(f->buf, sizeof(f->buf), ts, recs, nrec);
    assert_true(len > 0);
    set_producer(f->buf, (size_t)len, pid, epoch, seq);
    assert_int_equal(dp_batch_parse_header(f->buf, (size_t)len, &h), 0);
    v = dp_pidmap_check(m, &h, &db, &dl);
    if (v == DP_PID_DUPLICATE) {
        *base = db;
        return v;
    }
    if (v != DP_PID_OK)
        return v;
    f->fired = 0;
    assert_int_equal(dp_log_append(f->log, &f->req, f->buf, (size_t)len, 1, 0, log_cb, f), 0);
    dp_pidmap_update(m, &h, f->req.base_offset, f->req.last_offset);
    *base = f->req.base_offset;
    for (int i = 0; i < 300 && !f->fired; i++)
        assert_true(dp_ring_run_once(&f->ring, 1, 100) >= 0);
    assert_int_equal(f->fired, 1);
    assert_int_equal(f->result, 0);
    return v;
}

static void assert_same_state(const dp_pidmap_t *a, const dp_pidmap_t *b)
{
    assert_int_equal(a->count, b->count);
    for (uint32_t i = 0; i < a->count; i++) {
        const dp_pid_entry_t *x = &a->entries[i];
        const dp_pid_entry_t *y = dp_pidmap_find(b, x->producer_id);

        assert_non_null(y);
        assert_int_equal(x->epoch, y->epoch);
        assert_int_equal(x->nbatches, y->nbatches);
        for (int k = 0; k < x->nbatches; k++) {
            /* compare oldest to newest: ring positions may differ */
            const dp_pid_batch_t *p =
                &x->batches[(x->newest + DP_PID_BATCHES - k) % DP_PID_BATCHES];
            const dp_pid_batch_t *q =
                &y->batches[(y->newest + DP_PID_BATCHES - k) % DP_PID_BATCHES];

            assert_memory_equal(p, q, sizeof(*p));
        }
    }
}

/* A client as librdkafka behaves: on UNKNOWN_PRODUCER_ID it bumps its
 * epoch and restarts at sequence 0. Returns the base offset answered. */
typedef struct {
    int64_t pid;
    int16_t epoch;
    int32_t seq;
    int bumps;
    int last_n; /* records in the last batch sent */
} client_t;

static int64_t client_send(logfx_t *f, dp_pidmap_t *m, client_t *c, int nrec, int64_t ts)
{
    int64_t base = -1;
    dp_pid_verdict_t v = produce(f, m, c->pid, c->epoch, c->seq, nrec, ts, &base);

    if (v == DP_PID_UNKNOWN) {
        c->epoch++;
        c->seq = 0;
        c->bumps++;
        v = produce(f, m, c->pid, c->epoch, c->seq, nrec, ts, &base);
    }
    assert_int_equal(v, DP_PID_OK);
    c->seq += nrec;
    c->last_n = nrec;
    return base;
}

static void test_rebuild_from_log(void **state)
{
    static logfx_t f;
    dp_pidmap_t live, rebuilt;
    client_t c[3] = {{100, 0, 0, 0, 0}, {101, 0, 0, 0, 0}, {102, 7, 0, 0, 0}};
    int64_t base, dup;

    memset(&f, 0, sizeof(f));
    if (dp_ring_init(&f.ring, 64, 0) < 0) {
        fprintf(stderr, "skip: io_uring unavailable\n");
        exit(77);
    }
    dp_log_config_defaults(&f.cfg);
    f.cfg.segment_bytes = 4096; /* several segments */
    f.cfg.batch_bytes_max = sizeof(f.buf);
    log_open(&f);
    assert_int_equal(dp_pidmap_init(&live, 2), 0);
    /* 100 and 101 in sequence with plain batches in between; later 102
     * joins a table of two, so producers get evicted and come back with a
     * bumped epoch */
    for (int i = 0; i < 80; i++) {
        if (i % 3 == 2) {
            assert_int_equal(produce(&f, &live, -1, -1, -1, 2, 1000 + i, &base), DP_PID_OK);
            continue;
        }
        if (i >= 40 && i % 5 == 0)
            client_send(&f, &live, &c[2], 1, 1000 + i);
        client_send(&f, &live, &c[i % 2], 1 + i % 3, 1000 + i);
    }
    assert_true(dp_log_segment_count(f.log) >= 3);
    assert_true(live.evictions > 0);
    assert_true(c[0].bumps + c[1].bumps + c[2].bumps > 0);
    assert_int_equal(live.count, 2);
    /* a retry of 101's last batch is answered with its offset, not appended */
    assert_non_null(dp_pidmap_find(&live, 101));
    base = dp_log_end_offset(f.log);
    assert_int_equal(
        produce(&f, &live, 101, c[1].epoch, c[1].seq - c[1].last_n, c[1].last_n, 0, &dup),
        DP_PID_DUPLICATE);
    assert_int_equal(dp_log_end_offset(f.log), base);

    /* restart: a fresh table rebuilt from the log equals the live one */
    assert_int_equal(dp_log_close(f.log), 0);
    log_open(&f);
    assert_int_equal(dp_pidmap_init(&rebuilt, 2), 0);
    assert_int_equal(dp_pidmap_rebuild(&rebuilt, f.log), 0);
    assert_same_state(&live, &rebuilt);
    assert_int_equal(rebuilt.evictions, live.evictions);
    assert_int_equal(
        produce(&f, &rebuilt, 101, c[1].epoch, c[1].seq - c[1].last_n, c[1].last_n, 0, &base),
        DP_PID_DUPLICATE);
    assert_int_equal(base, dup);
    base = client_send(&f, &rebuilt, &c[1], 3, 5000);
    assert_int_equal(base, dp_log_end_offset(f.log) - 3);

    /* a bigger table keeps every producer the log holds; rebuilding a
     * used table starts from scratch */
    dp_pidmap_dispose(&rebuilt);
    assert_int_equal(dp_pidmap_init(&rebuilt, 16), 0);
    assert_int_equal(dp_pidmap_rebuild(&rebuilt, f.log), 0);
    assert_int_equal(dp_pidmap_rebuild(&rebuilt, f.log), 0);
    assert_int_equal(rebuilt.count, 3);
    assert_int_equal(rebuilt.evictions, 0);
    for (int k = 0; k < 3; k++) {
        const dp_pid_entry_t *e = dp_pidmap_find(&rebuilt, c[k].pid);

        assert_non_null(e);
        assert_int_equal(e->epoch, c[k].epoch);
        assert_int_equal(e->batches[e->newest].last_sequence, c[k].seq - 1);
    }

    /* after DeleteRecords past everything, a rebuild knows nobody */
    assert_int_equal(dp_log_delete_records(f.log, dp_log_durable_offset(f.log)), 0);
    assert_int_equal(dp_pidmap_rebuild(&rebuilt, f.log), 0);
    assert_int_equal(rebuilt.count, 0);

    dp_pidmap_dispose(&live);
    dp_pidmap_dispose(&rebuilt);
    assert_int_equal(dp_log_close(f.log), 0);
    dp_ring_dispose(&f.ring);
}

/* ---- producer id allocator ---------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static void assert_unique(int64_t *ids, int n)
{
    qsort(ids, (size_t)n, sizeof(*ids), cmp_i64);
    for (int i = 1; i < n; i++)
        assert_true(ids[i - 1] < ids[i]);
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", root, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_pidalloc_reopen(void **state)
{
    enum { N = 2600 };
    static int64_t ids[3 * N];
    dp_pidalloc_t *a;
    char err[256];
    int n = 0;

    for (int round = 0; round < 3; round++) {
        int64_t first = -1;

        assert_int_equal(dp_pidalloc_open(&a, root, 0, 1, err, sizeof(err)), 0);
        for (int i = 0; i < (round == 1 ? 5 : N); i++) {
            assert_int_equal(dp_pidalloc_next(a, &ids[n]), 0);
            assert_true(ids[n] >= 0);
            if (first < 0)
                first = ids[n];
            /* restarts continue above everything handed out before */
            if (n > 0 && i == 0)
                assert_true(ids[n] > ids[n - 1]);
            n++;
        }
        dp_pidalloc_close(a);
    }
    assert_unique(ids, n);
    /* a fresh directory is seeded from the clock, not from 0 */
    assert_true(ids[0] >= (int64_t)1600000000 * 1024);
    assert_true(ids[n - 1] < (int64_t)1 << DP_PIDALLOC_LOCAL_BITS);

    /* an explicit reservation is resumed exactly */
    write_file("producer-ids", "5000\n");
    assert_int_equal(dp_pidalloc_open(&a, root, 0, 1, err, sizeof(err)), 0);
    assert_int_equal(dp_pidalloc_next(a, &ids[0]), 0);
    assert_int_equal(ids[0], 5000);
    dp_pidalloc_close(a);
    assert_int_equal(dp_pidalloc_open(&a, root, 0, 1, err, sizeof(err)), 0);
    assert_int_equal(dp_pidalloc_next(a, &ids[0]), 0);
    assert_int_equal(ids[0], 5000 + DP_PIDALLOC_BLOCK);
    dp_pidalloc_close(a);

    /* corrupt files are refused, never reset */
    const char *bad[] = {"", "\n", "12x\n", "-4\n", "99", "999999999999999999999\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file("producer-ids", bad[i]);
        assert_int_equal(dp_pidalloc_open(&a, root, 0, 1, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "producer-ids"));
        assert_null(a);
    }
    /* local space exhausted */
    {
        char text[64];

        snprintf(text, sizeof(text), "%lld\n",
                 (long long)(((int64_t)1 << DP_PIDALLOC_LOCAL_BITS) - 1));
        write_file("producer-ids", text);
        assert_int_equal(dp_pidalloc_open(&a, root, 0, 1, err, sizeof(err)), 0);
        assert_int_equal(dp_pidalloc_next(a, &ids[0]), -EOVERFLOW);
        dp_pidalloc_close(a);
    }
    /* a missing directory fails with a message */
    assert_int_equal(dp_pidalloc_open(&a, "/nonexistent/weir", 0, 1, err, sizeof(err)), -ENOENT);
    assert_true(err[0] != '\0');
}

static void test_pidalloc_replicas(void **state)
{
    enum { R = 3, N = 1500 };
    static int64_t ids[R * N * 2];
    dp_pidalloc_t *a;
    char err[256], dir[128];
    int n = 0;

    assert_int_equal(dp_pidalloc_open(&a, root, 3, 3, err, sizeof(err)), -EINVAL);
    assert_int_equal(dp_pidalloc_open(&a, root, 0, 0, err, sizeof(err)), -EINVAL);
    assert_int_equal(dp_pidalloc_open(&a, root, 0, DP_PIDALLOC_REPLICAS_MAX + 1, err, sizeof(err)),
                     -EINVAL);
    /* each replica its own volume, all seeded from the same clock */
    for (int round = 0; round < 2; round++) {
        for (uint32_t r = 0; r < R; r++) {
            snprintf(dir, sizeof(dir), "%s/r%u", root, r);
            mkdir(dir, 0755);
            /* the second round also changes the replica count: the index
             * alone decides the range, so scaling never collides */
            assert_int_equal(dp_pidalloc_open(&a, dir, r, round == 0 ? R : R + 2, err, sizeof(err)),
                             0);
            for (int i = 0; i < N; i++) {
                assert_int_equal(dp_pidalloc_next(a, &ids[n]), 0);
                assert_int_equal(ids[n] >> DP_PIDALLOC_LOCAL_BITS, r);
                n++;
            }
            dp_pidalloc_close(a);
        }
    }
    assert_unique(ids, n);
    /* the highest index stays a positive int64 */
    snprintf(dir, sizeof(dir), "%s/r%u", root, 0u);
    assert_int_equal(dp_pidalloc_open(&a, dir, DP_PIDALLOC_REPLICAS_MAX - 1,
                                      DP_PIDALLOC_REPLICAS_MAX, err, sizeof(err)),
                     0);
    assert_int_equal(dp_pidalloc_next(a, &ids[0]), 0);
    assert_true(ids[0] > 0);
    assert_int_equal(ids[0] >> DP_PIDALLOC_LOCAL_BITS, DP_PIDALLOC_REPLICAS_MAX - 1);
    dp_pidalloc_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_and_non_idempotent),
        cmocka_unit_test(test_in_order_and_gaps),
        cmocka_unit_test(test_duplicates_of_last_five),
        cmocka_unit_test(test_epochs),
        cmocka_unit_test(test_sequence_wrap),
        cmocka_unit_test(test_eviction_at_capacity),
        cmocka_unit_test(test_expire),
        cmocka_unit_test(test_churn_against_model),
        cmocka_unit_test_setup_teardown(test_rebuild_from_log, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_pidalloc_reopen, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_pidalloc_replicas, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
