/* SPDX-License-Identifier: Apache-2.0 */
/* dp_pid: per-partition producer state (an open-addressing table over a
 * dense entry array, allocated once) and the persisted producer id
 * allocator. Rules and contracts: docs/internals/store-idempotence.md. */
#include "dp_pid.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PID_FILE "producer-ids"
#define PID_FILE_TMP "producer-ids.tmp"
#define LOCAL_MAX ((int64_t)1 << DP_PIDALLOC_LOCAL_BITS)

/* ---- producer state table --------------------------------------------- */

static uint32_t pid_hash(int64_t pid)
{
    uint64_t x = (uint64_t)pid;

    /* splitmix64 finaliser: ids are sequential, so spread them. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return (uint32_t)x;
}

/* Sequence of the last record of a batch; sequences wrap to 0 after
 * INT32_MAX (Kafka's DefaultRecordBatch.incrementSequence). */
static int32_t last_sequence(int32_t base, int32_t delta)
{
    assert(base >= 0 && delta >= 0);
    return (int32_t)(((int64_t)base + delta) % ((int64_t)INT32_MAX + 1));
}

static int in_sequence(int32_t last, int32_t next)
{
    return last == INT32_MAX ? next == 0 : next == last + 1;
}

/* Slot holding pid, or the empty slot where it would go. */
static uint32_t slot_find(const dp_pidmap_t *m, int64_t pid)
{
    uint32_t i = pid_hash(pid) & m->slots_mask;

    while (m->slots[i].producer_id != -1 && m->slots[i].producer_id != pid)
        i = (i + 1) & m->slots_mask;
    return i;
}

/* Empties slot i, shifting later members of the probe run back so that
 * lookups never need tombstones. */
static void slot_delete(dp_pidmap_t *m, uint32_t i)
{
    uint32_t j = i;

    for (;;) {
        uint32_t home;

        j = (j + 1) & m->slots_mask;
        if (m->slots[j].producer_id == -1)
            break;
        home = pid_hash(m->slots[j].producer_id) & m->slots_mask;
        /* The member at j may fill the hole at i unless its home lies
         * cyclically in (i, j]. */
        if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].producer_id = -1;
}

/* Removes entries[e], keeping the entry array dense. */
static void entry_delete(dp_pidmap_t *m, uint32_t e)
{
    uint32_t last = m->count - 1;
    uint32_t i = slot_find(m, m->entries[e].producer_id);

    assert(m->slots[i].producer_id == m->entries[e].producer_id);
    slot_delete(m, i);
    if (e != last) {
        m->entries[e] = m->entries[last];
        i = slot_find(m, m->entries[e].producer_id);
        assert(m->slots[i].producer_id == m->entries[e].producer_id);
        m->slots[i].entry = e;
    }
    m->count--;
}

static int64_t entry_timestamp(const dp_pid_entry_t *e)
{
    return e->batches[e->newest].timestamp;
}

int dp_pidmap_init(dp_pidmap_t *m, uint32_t producers_max)
{
    uint32_t nslots = 2;
    int rc;

    memset(m, 0, sizeof(*m));
    if (producers_max == 0 || producers_max > DP_PIDMAP_PRODUCERS_MAX) {
        rc = -EINVAL;
        goto out;
    }
    /* Load factor at most 1/2 keeps probe runs short. */
    while (nslots < 2 * producers_max)
        nslots *= 2;
    m->slots = malloc(nslots * sizeof(*m->slots));
    m->entries = calloc(producers_max, sizeof(*m->entries));
    if (m->slots == NULL || m->entries == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    m->slots_mask = nslots - 1;
    m->producers_max = producers_max;
    dp_pidmap_clear(m);
    rc = 0;
out:
    if (rc < 0)
        dp_pidmap_dispose(m);
    return rc;
}

void dp_pidmap_dispose(dp_pidmap_t *m)
{
    free(m->slots);
    free(m->entries);
    memset(m, 0, sizeof(*m));
}

void dp_pidmap_clear(dp_pidmap_t *m)
{
    if (m->slots != NULL)
        for (uint32_t i = 0; i <= m->slots_mask; i++)
            m->slots[i].producer_id = -1;
    m->count = 0;
}

const dp_pid_entry_t *dp_pidmap_find(const dp_pidmap_t *m, int64_t producer_id)
{
    uint32_t i;

    if (producer_id < 0 || m->count == 0)
        return NULL;
    i = slot_find(m, producer_id);
    if (m->slots[i].producer_id != producer_id)
        return NULL;
    return &m->entries[m->slots[i].entry];
}

dp_pid_verdict_t dp_pidmap_check(const dp_pidmap_t *m, const dp_batch_hdr_t *hdr,
                                 int64_t *dup_base_offset, int64_t *dup_last_offset)
{
    const dp_pid_entry_t *e;
    int32_t last;

    /* Kafka: hasProducerId() is producerId > -1. Control batches come only
     * from a transaction coordinator, which Weir does not have. */
    if (hdr->producer_id < 0 || (hdr->attributes & DP_BATCH_ATTR_CONTROL))
        return DP_PID_OK;
    if (hdr->producer_epoch < 0)
        return DP_PID_INVALID_EPOCH;
    if (hdr->base_sequence < 0)
        return DP_PID_OUT_OF_ORDER;
    e = dp_pidmap_find(m, hdr->producer_id);
    if (e == NULL)
        return hdr->base_sequence == 0 ? DP_PID_OK : DP_PID_UNKNOWN;
    if (hdr->producer_epoch < e->epoch)
        return DP_PID_INVALID_EPOCH;
    if (hdr->producer_epoch > e->epoch)
        return hdr->base_sequence == 0 ? DP_PID_OK : DP_PID_OUT_OF_ORDER;
    last = last_sequence(hdr->base_sequence, hdr->last_offset_delta);
    for (uint32_t k = 0; k < e->nbatches; k++) {
        const dp_pid_batch_t *b = &e->batches[k];

        if (b->base_sequence == hdr->base_sequence && b->last_sequence == last) {
            *dup_base_offset = b->base_offset;
            *dup_last_offset = b->last_offset;
            return DP_PID_DUPLICATE;
        }
    }
    if (in_sequence(e->batches[e->newest].last_sequence, hdr->base_sequence))
        return DP_PID_OK;
    return DP_PID_OUT_OF_ORDER;
}

/* Evicts the producer whose newest batch is oldest (first found on ties). */
static void evict_oldest(dp_pidmap_t *m)
{
    uint32_t victim = 0;

    assert(m->count > 0);
    for (uint32_t e = 1; e < m->count; e++)
        if (entry_timestamp(&m->entries[e]) < entry_timestamp(&m->entries[victim]))
            victim = e;
    entry_delete(m, victim);
    m->evictions++;
}

void dp_pidmap_update(dp_pidmap_t *m, const dp_batch_hdr_t *hdr, int64_t base_offset,
                      int64_t last_offset)
{
    dp_pid_entry_t *e;
    dp_pid_batch_t *b;
    uint32_t i;

    assert(m->slots != NULL);
    if (hdr->producer_id < 0 || (hdr->attributes & DP_BATCH_ATTR_CONTROL))
        return;
    i = slot_find(m, hdr->producer_id);
    if (m->slots[i].producer_id == hdr->producer_id) {
        e = &m->entries[m->slots[i].entry];
        if (e->epoch != hdr->producer_epoch) {
            /* A new epoch starts over: its batches are all that count. */
            e->epoch = hdr->producer_epoch;
            e->nbatches = 0;
        }
    } else {
        if (m->count == m->producers_max) {
            evict_oldest(m);
            i = slot_find(m, hdr->producer_id); /* the eviction may shift slots */
        }
        assert(m->slots[i].producer_id == -1);
        m->slots[i].producer_id = hdr->producer_id;
        m->slots[i].entry = m->count;
        e = &m->entries[m->count++];
        memset(e, 0, sizeof(*e));
        e->producer_id = hdr->producer_id;
        e->epoch = hdr->producer_epoch;
    }
    if (e->nbatches == 0) {
        e->newest = 0;
    } else {
        e->newest = (uint8_t)((e->newest + 1) % DP_PID_BATCHES);
    }
    if (e->nbatches < DP_PID_BATCHES)
        e->nbatches++;
    b = &e->batches[e->newest];
    /* A negative sequence only gets here through a rebuild of what some
     * other writer put in the log; keep it representable. */
    b->base_sequence = hdr->base_sequence;
    b->last_sequence = hdr->base_sequence >= 0
                           ? last_sequence(hdr->base_sequence, hdr->last_offset_delta)
                           : hdr->base_sequence;
    b->base_offset = base_offset;
    b->last_offset = last_offset;
    b->timestamp = hdr->max_timestamp;
}

uint32_t dp_pidmap_expire(dp_pidmap_t *m, int64_t now_ms, int64_t expiration_ms)
{
    uint32_t removed = 0, e = 0;

    while (e < m->count) {
        /* Compare as Kafka does (now - last >= expiration) without overflow. */
        int64_t ts = entry_timestamp(&m->entries[e]);

        if (ts <= now_ms && (uint64_t)now_ms - (uint64_t)ts >= (uint64_t)expiration_ms) {
            entry_delete(m, e); /* the last entry moves into e: look again */
            removed++;
        } else {
            e++;
        }
    }
    return removed;
}

static int rebuild_cb(const dp_batch_hdr_t *hdr, void *ctx)
{
    dp_pidmap_update(ctx, hdr, hdr->base_offset, dp_batch_last_offset(hdr));
    return 0;
}

int dp_pidmap_rebuild(dp_pidmap_t *m, dp_log_t *log)
{
    dp_pidmap_clear(m);
    return dp_log_scan(log, 0, rebuild_cb, m);
}

/* ---- producer id allocator -------------------------------------------- */

struct dp_pidalloc {
    pthread_mutex_t lock;
    int dir_fd;
    int64_t high;  /* replica_index << DP_PIDALLOC_LOCAL_BITS */
    int64_t next;  /* next local id to hand out */
    int64_t limit; /* persisted: local ids below it may have been handed out */
    char path[256];
};

/* Reads the persisted limit: 0 and *limit, -ENOENT, -EBADMSG or -errno. */
static int read_limit(int dir_fd, int64_t *limit)
{
    char buf[32], *end;
    long long v;
    ssize_t n;
    int fd, rc;

    fd = openat(dir_fd, PID_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    rc = -errno;
    close(fd);
    if (n < 0)
        goto out;
    buf[n] = '\0';
    rc = -EBADMSG;
    if (n < 2 || buf[n - 1] != '\n' || buf[0] < '0' || buf[0] > '9')
        goto out;
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\n' || end != buf + n - 1 || v < 0 || v > LOCAL_MAX)
        goto out;
    *limit = v;
    rc = 0;
out:
    return rc;
}

/* Persists `limit` atomically: temp file, fdatasync, rename, fsync dir. */
static int write_limit(int dir_fd, int64_t limit)
{
    char buf[32];
    int fd, n, rc;

    n = snprintf(buf, sizeof(buf), "%" PRId64 "\n", limit);
    fd = openat(dir_fd, PID_FILE_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = 0;
    errno = 0;
    if (write(fd, buf, (size_t)n) != n || fdatasync(fd) < 0)
        rc = errno != 0 ? -errno : -EIO;
    close(fd);
    if (rc == 0 && renameat(dir_fd, PID_FILE_TMP, dir_fd, PID_FILE) < 0)
        rc = -errno;
    if (rc == 0 && fsync(dir_fd) < 0)
        rc = -errno;
out:
    return rc;
}

int dp_pidalloc_open(dp_pidalloc_t **out, const char *data_dir, uint32_t replica_index,
                     uint32_t replicas, char *err, size_t errlen)
{
    dp_pidalloc_t *a = NULL;
    int64_t limit = 0;
    int rc, n;

    assert(out != NULL && data_dir != NULL);
    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (replicas == 0 || replicas > DP_PIDALLOC_REPLICAS_MAX || replica_index >= replicas) {
        snprintf(err, errlen, "producer ids: replica index %" PRIu32 " of %" PRIu32 " invalid",
                 replica_index, replicas);
        rc = -EINVAL;
        goto out;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    a->dir_fd = -1;
    n = snprintf(a->path, sizeof(a->path), "%s/%s", data_dir, PID_FILE);
    if (n < 0 || (size_t)n >= sizeof(a->path)) {
        rc = -ENAMETOOLONG;
        snprintf(err, errlen, "producer ids: data directory path too long");
        goto out;
    }
    a->dir_fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a->dir_fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: open: %s", data_dir, strerror(errno));
        goto out;
    }
    rc = read_limit(a->dir_fd, &limit);
    if (rc == -ENOENT) {
        /* No reservation yet (or the volume was lost): start above any id
         * this replica could have issued before at < 1024 ids/s. */
        time_t now = time(NULL);

        limit = now > 0 ? (int64_t)now * 1024 : 0;
        if (limit > LOCAL_MAX / 2)
            limit = LOCAL_MAX / 2; /* an absurd clock must not exhaust the space */
        rc = 0;
    } else if (rc == -EBADMSG) {
        snprintf(err, errlen,
                 "%s: corrupt; refusing to guess (ids could repeat); remove it to restart the "
                 "counter from the clock",
                 a->path);
        goto out;
    } else if (rc < 0) {
        snprintf(err, errlen, "%s: read: %s", a->path, strerror(-rc));
        goto out;
    }
    rc = pthread_mutex_init(&a->lock, NULL);
    if (rc != 0) {
        rc = -rc;
        goto out;
    }
    a->high = (int64_t)replica_index << DP_PIDALLOC_LOCAL_BITS;
    a->next = a->limit = limit;
    *out = a;
    a = NULL;
out:
    if (a != NULL) {
        if (a->dir_fd >= 0)
            close(a->dir_fd);
        free(a);
    }
    return rc;
}

int dp_pidalloc_next(dp_pidalloc_t *a, int64_t *pid)
{
    int rc;

    pthread_mutex_lock(&a->lock);
    if (a->next == a->limit) {
        int64_t limit = a->limit + DP_PIDALLOC_BLOCK;

        if (limit > LOCAL_MAX) {
            rc = -EOVERFLOW;
            goto out;
        }
        /* Persist before handing out: after a crash the counter resumes
         * past everything this block may have issued. */
        rc = write_limit(a->dir_fd, limit);
        if (rc < 0)
            goto out;
        a->limit = limit;
    }
    *pid = a->high | a->next++;
    rc = 0;
out:
    pthread_mutex_unlock(&a->lock);
    return rc;
}

void dp_pidalloc_close(dp_pidalloc_t *a)
{
    if (a == NULL)
        return;
    pthread_mutex_destroy(&a->lock);
    close(a->dir_fd);
    free(a);
}
