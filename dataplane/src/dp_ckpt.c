/* SPDX-License-Identifier: Apache-2.0 */
/* dp_ckpt: checkpoint files of the processor (docs/internals/checkpoints.md).
 * Reads, writes, fsyncs, opens and closes go through a small io_uring ring
 * the module owns, one operation at a time: a checkpoint is off the record
 * path and must be durable before the caller goes on. dp_ring has no
 * renameat, unlinkat or getdents, so the rename, the retention deletes and
 * the directory scan are plain system calls. */
#include "dp_ckpt.h"

#include "dp_crc32c.h"
#include "dp_ring.h"
#include "dp_ser.h"
#include "wc_log.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* On-disk layout (little-endian), see checkpoints.md:
 *   0  magic "WEIRCKPT"     8  u32 version      12 u32 header bytes (48)
 *   16 u64 id               24 u64 spec hash    32 i64 wall ms
 *   40 u32 section count    44 u32 reserved (0)
 *   48 sections: u32 type, u32 reserved (0), u64 length, `length` bytes
 *   end-4: u32 CRC32C of every byte before it */
#define HDR_BYTES 48u
#define SEC_HDR_BYTES 16u
#define TRAILER_BYTES 4u
static const char magic[8] = {'W', 'E', 'I', 'R', 'C', 'K', 'P', 'T'};

/** Section types. Unknown types are skipped by readers (forward compatible). */
enum {
    SEC_OFFSETS = 1,  /* u32 count, then per entry: bytes topic, i32 partition, i64 offset */
    SEC_STATE = 2,    /* the engine's dp_pipe_save blob */
    SEC_SINK_TXN = 3, /* reserved: a transactional sink's id/epoch (empty for now) */
};

/* One write or read system call moves at most this much (io_uring lengths
 * are 32-bit). */
#define IO_CHUNK_BYTES (1u << 30)
/* Most checkpoint files the directory scan considers. */
#define SCAN_MAX 4096u

struct dp_ckpt {
    dp_ring_t ring;
    int dirfd;
    uint32_t retain;
    uint64_t last_id; /* highest id seen on disk or written */
    char *dir;
};

const char *dp_ckpt_dir(const dp_ckpt_t *c)
{
    return c->dir;
}

/* ---- spec hash ---------------------------------------------------------- */

uint64_t dp_ckpt_spec_hash(const json_t *spec)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 offset basis */
    json_t *copy = json_deep_copy(spec);
    char *text;

    if (copy == NULL)
        return 0;
    if (json_is_object(copy)) {
        json_object_del(copy, "checkpoint");
        json_object_del(copy, "http");
        json_object_del(copy, "workers");
    }
    text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(copy);
    if (text == NULL)
        return 0;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    free(text);
    return h;
}

/* ---- encoding ----------------------------------------------------------- */

static void put_sec_hdr(dp_ser_w_t *w, uint32_t type, uint64_t len)
{
    dp_ser_u32(w, type);
    dp_ser_u32(w, 0);
    dp_ser_u64(w, len);
}

/* Everything before the state bytes: header, offsets section, state
 * section header. */
static void encode_head(dp_ser_w_t *w, const dp_ckpt_data_t *d, uint64_t id)
{
    size_t body_at, len_at;

    dp_ser_put(w, magic, sizeof(magic));
    dp_ser_u32(w, DP_CKPT_VERSION);
    dp_ser_u32(w, HDR_BYTES);
    dp_ser_u64(w, id);
    dp_ser_u64(w, d->spec_hash);
    dp_ser_i64(w, d->wall_ms);
    dp_ser_u32(w, 3); /* offsets, state, sink transaction */
    dp_ser_u32(w, 0);
    len_at = w->len + 8;
    put_sec_hdr(w, SEC_OFFSETS, 0);
    body_at = w->len;
    dp_ser_u32(w, d->noffsets);
    for (uint32_t i = 0; i < d->noffsets; i++) {
        const dp_ckpt_offset_t *o = &d->offsets[i];

        dp_ser_bytes(w, o->topic, (uint32_t)strlen(o->topic));
        dp_ser_u32(w, (uint32_t)o->partition);
        dp_ser_i64(w, o->next_offset);
    }
    if (w->err == 0) {
        /* Patch the offsets section's length now that it is known. */
        uint64_t n = w->len - body_at;

        for (int b = 0; b < 8; b++)
            w->buf[len_at + (size_t)b] = (uint8_t)(n >> (8 * b));
    }
    put_sec_hdr(w, SEC_STATE, d->state_len);
}

/* Everything after the state bytes, except the CRC. */
static void encode_tail(dp_ser_w_t *w, const dp_ckpt_data_t *d)
{
    put_sec_hdr(w, SEC_SINK_TXN, d->sink_txn_len);
    dp_ser_put(w, d->sink_txn, d->sink_txn_len);
}

int dp_ckpt_encode(const dp_ckpt_data_t *d, uint64_t id, uint8_t **buf, size_t *len)
{
    dp_ser_w_t w = {0};

    encode_head(&w, d, id);
    dp_ser_put(&w, d->state, d->state_len);
    encode_tail(&w, d);
    dp_ser_u32(&w, w.err == 0 ? dp_crc32c(0, w.buf, w.len) : 0);
    if (w.err != 0) {
        dp_ser_wdispose(&w);
        return w.err;
    }
    *buf = w.buf;
    *len = w.len;
    return 0;
}

/* ---- decoding ----------------------------------------------------------- */

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EBADMSG;
}

/* Parses the offsets section into one allocation: the array, then the
 * topics as NUL-terminated strings (the file stores them without NULs). */
static int decode_offsets(const uint8_t *p, uint64_t n, dp_ckpt_data_t *d, dp_ckpt_offset_t **offs,
                          char *err, size_t errlen)
{
    dp_ser_r_t r;
    uint32_t count;
    size_t bytes;
    dp_ckpt_offset_t *o;
    char *s;

    dp_ser_rinit(&r, p, (size_t)n);
    count = dp_ser_ru32(&r);
    /* Each entry takes at least 17 bytes: a bound before allocating. */
    if (r.err != 0 || count > DP_CKPT_OFFSETS_MAX || (uint64_t)count * 17 > n)
        return bad(err, errlen, "offsets section: bad entry count %" PRIu32, count);
    /* Pass 1: validate and size. */
    bytes = (size_t)count * sizeof(*o);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t tlen;
        const uint8_t *t = dp_ser_rbytes(&r, &tlen);
        int32_t part = (int32_t)dp_ser_ru32(&r);
        int64_t next = dp_ser_ri64(&r);

        if (r.err != 0 || t == NULL || tlen == 0 || tlen > 255 || memchr(t, 0, tlen) != NULL ||
            part < 0 || (next < 0 && next != DP_CKPT_OFFSET_BEGINNING))
            return bad(err, errlen, "offsets section: bad entry %" PRIu32, i);
        bytes += (size_t)tlen + 1;
    }
    if (r.off != r.len)
        return bad(err, errlen, "offsets section: %zu trailing bytes", r.len - r.off);
    o = malloc(bytes ? bytes : 1);
    if (o == NULL)
        return -ENOMEM;
    /* Pass 2: fill. */
    s = (char *)(o + count);
    dp_ser_rinit(&r, p, (size_t)n);
    dp_ser_ru32(&r);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t tlen;
        const uint8_t *t = dp_ser_rbytes(&r, &tlen);

        memcpy(s, t, tlen);
        s[tlen] = '\0';
        o[i].topic = s;
        s += tlen + 1;
        o[i].partition = (int32_t)dp_ser_ru32(&r);
        o[i].next_offset = dp_ser_ri64(&r);
    }
    d->offsets = o;
    d->noffsets = count;
    *offs = o;
    return 0;
}

int dp_ckpt_decode(const uint8_t *buf, size_t len, dp_ckpt_data_t *d, dp_ckpt_offset_t **offs,
                   char *err, size_t errlen)
{
    dp_ser_r_t r;
    uint32_t version, hdr, nsec, crc, want;
    bool seen_offsets = false, seen_state = false;
    int rc;

    memset(d, 0, sizeof(*d));
    *offs = NULL;
    if (len < HDR_BYTES + TRAILER_BYTES)
        return bad(err, errlen, "file too short (%zu bytes)", len);
    if (memcmp(buf, magic, sizeof(magic)) != 0)
        return bad(err, errlen, "not a checkpoint (bad magic)");
    dp_ser_rinit(&r, buf + len - TRAILER_BYTES, TRAILER_BYTES);
    want = dp_ser_ru32(&r);
    crc = dp_crc32c(0, buf, len - TRAILER_BYTES);
    if (crc != want)
        return bad(err, errlen,
                   "CRC mismatch (stored 0x%08" PRIx32 ", computed 0x%08" PRIx32
                   "): torn or damaged",
                   want, crc);
    dp_ser_rinit(&r, buf, len - TRAILER_BYTES);
    dp_ser_get(&r, sizeof(magic));
    version = dp_ser_ru32(&r);
    hdr = dp_ser_ru32(&r);
    if (version != DP_CKPT_VERSION)
        return bad(err, errlen, "format version %" PRIu32 " (this build reads %u)", version,
                   DP_CKPT_VERSION);
    if (hdr != HDR_BYTES)
        return bad(err, errlen, "header length %" PRIu32 ", expected %u", hdr, HDR_BYTES);
    d->id = dp_ser_ru64(&r);
    d->spec_hash = dp_ser_ru64(&r);
    d->wall_ms = dp_ser_ri64(&r);
    nsec = dp_ser_ru32(&r);
    dp_ser_ru32(&r);
    if (nsec > 64)
        return bad(err, errlen, "%" PRIu32 " sections", nsec);
    for (uint32_t s = 0; s < nsec; s++) {
        uint32_t type = dp_ser_ru32(&r);
        uint64_t n;
        const uint8_t *p;

        dp_ser_ru32(&r);
        n = dp_ser_ru64(&r);
        if (r.err != 0 || n > r.len - r.off) {
            rc = bad(err, errlen, "section %" PRIu32 " overruns the file", s);
            goto fail;
        }
        p = dp_ser_get(&r, (size_t)n);
        switch (type) {
        case SEC_OFFSETS:
            if (seen_offsets) {
                rc = bad(err, errlen, "two offsets sections");
                goto fail;
            }
            seen_offsets = true;
            rc = decode_offsets(p, n, d, offs, err, errlen);
            if (rc != 0)
                goto fail;
            break;
        case SEC_STATE:
            if (seen_state) {
                rc = bad(err, errlen, "two state sections");
                goto fail;
            }
            seen_state = true;
            d->state = p;
            d->state_len = (size_t)n;
            break;
        case SEC_SINK_TXN:
            if (n > UINT32_MAX) {
                rc = bad(err, errlen, "sink transaction section too long");
                goto fail;
            }
            d->sink_txn = p;
            d->sink_txn_len = (uint32_t)n;
            break;
        default: /* a section a newer build added: not ours to interpret */
            break;
        }
    }
    if (r.err != 0 || r.off != r.len) {
        rc = bad(err, errlen, "%zu bytes after the last section", r.len - r.off);
        goto fail;
    }
    if (!seen_offsets || !seen_state) {
        rc = bad(err, errlen, "missing %s section", seen_offsets ? "state" : "offsets");
        goto fail;
    }
    return 0;
fail:
    free(*offs);
    *offs = NULL;
    d->offsets = NULL;
    d->noffsets = 0;
    return rc;
}

/* ---- ring helpers ------------------------------------------------------- */

static void op_done(dp_ring_op_t *op)
{
    *(bool *)op->ctx = true;
}

/* Waits for the op prepared with op_done/&done; returns its result. */
static int ring_wait(dp_ckpt_t *c, dp_ring_op_t *op, bool *done)
{
    while (!*done) {
        int rc = dp_ring_run_once(&c->ring, 1, -1);

        if (rc < 0 && rc != -EINTR && rc != -ETIME)
            return rc;
    }
    return op->res;
}

static int ring_openat(dp_ckpt_t *c, int dfd, const char *path, int flags, unsigned mode)
{
    dp_ring_op_t op;
    bool done = false;
    int rc = dp_ring_prep_openat(&c->ring, &op, dfd, path, flags | O_CLOEXEC, mode, op_done, &done);

    return rc != 0 ? rc : ring_wait(c, &op, &done);
}

static int ring_close(dp_ckpt_t *c, int fd)
{
    dp_ring_op_t op;
    bool done = false;
    int rc = dp_ring_prep_close(&c->ring, &op, fd, op_done, &done);

    if (rc != 0) {
        close(fd);
        return rc;
    }
    return ring_wait(c, &op, &done);
}

static int ring_fsync(dp_ckpt_t *c, int fd)
{
    dp_ring_op_t op;
    bool done = false;
    int rc = dp_ring_prep_fsync(&c->ring, &op, fd, 0, op_done, &done);

    return rc != 0 ? rc : ring_wait(c, &op, &done);
}

static int ring_write_all(dp_ckpt_t *c, int fd, const void *p, size_t n, uint64_t *off)
{
    const uint8_t *b = p;

    while (n > 0) {
        dp_ring_op_t op;
        bool done = false;
        unsigned chunk = n > IO_CHUNK_BYTES ? IO_CHUNK_BYTES : (unsigned)n;
        int rc = dp_ring_prep_write(&c->ring, &op, fd, b, chunk, *off, op_done, &done);

        if (rc == 0)
            rc = ring_wait(c, &op, &done);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return -EIO;
        b += rc;
        n -= (size_t)rc;
        *off += (uint64_t)rc;
    }
    return 0;
}

static int ring_read_all(dp_ckpt_t *c, int fd, void *p, size_t n)
{
    uint8_t *b = p;
    uint64_t off = 0;

    while (n > 0) {
        dp_ring_op_t op;
        bool done = false;
        unsigned chunk = n > IO_CHUNK_BYTES ? IO_CHUNK_BYTES : (unsigned)n;
        int rc = dp_ring_prep_read(&c->ring, &op, fd, b, chunk, off, op_done, &done);

        if (rc == 0)
            rc = ring_wait(c, &op, &done);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return -EBADMSG; /* shorter than fstat said: it changed under us */
        b += rc;
        n -= (size_t)rc;
        off += (uint64_t)rc;
    }
    return 0;
}

/* ---- directory ---------------------------------------------------------- */

static void file_name(char *buf, size_t n, uint64_t id, bool tmp)
{
    snprintf(buf, n, "ckpt-%020" PRIu64 "%s", id, tmp ? ".tmp" : "");
}

/* Parses "ckpt-<digits>" (and, with `tmp`, "ckpt-<digits>.tmp"). */
static bool parse_name(const char *name, uint64_t *id, bool *tmp)
{
    const char *p = name + 5;
    size_t nd;
    char *end;

    if (strncmp(name, "ckpt-", 5) != 0)
        return false;
    nd = strspn(p, "0123456789");
    if (nd == 0 || nd > 20)
        return false;
    if (p[nd] == '\0')
        *tmp = false;
    else if (strcmp(p + nd, ".tmp") == 0)
        *tmp = true;
    else
        return false;
    errno = 0;
    *id = strtoull(p, &end, 10);
    return errno == 0;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? 1 : x > y ? -1 : 0;
}

/* Lists completed checkpoint ids, newest first, into a new array; removes
 * temp files when `sweep_tmp`. Returns the count or -errno. */
static int scan(dp_ckpt_t *c, uint64_t **ids_out, bool sweep_tmp)
{
    int fd = dup(c->dirfd);
    DIR *d;
    struct dirent *de;
    uint64_t *ids = NULL;
    size_t n = 0, cap = 0;

    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;

        close(fd);
        return -e;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        uint64_t id;
        bool tmp;

        if (!parse_name(de->d_name, &id, &tmp))
            continue;
        if (id > c->last_id)
            c->last_id = id;
        if (tmp) {
            if (sweep_tmp && unlinkat(c->dirfd, de->d_name, 0) == 0)
                wc_log(WC_LOG_INFO, "processor", "removed unfinished checkpoint", "{s:s, s:s}",
                       "dir", c->dir, "file", de->d_name);
            continue;
        }
        if (n == SCAN_MAX)
            continue; /* the retention limit keeps far fewer; ignore the excess */
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            uint64_t *nids = realloc(ids, ncap * sizeof(*ids));

            if (nids == NULL) {
                free(ids);
                closedir(d);
                return -ENOMEM;
            }
            ids = nids;
            cap = ncap;
        }
        ids[n++] = id;
    }
    closedir(d);
    if (n > 1)
        qsort(ids, n, sizeof(*ids), cmp_desc);
    *ids_out = ids;
    return (int)n;
}

/* mkdir -p. */
static int make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return -errno;
        buf[i] = path[i];
    }
    return 0;
}

int dp_ckpt_open(dp_ckpt_t **out, const char *dir, uint32_t retain, char *err, size_t errlen)
{
    dp_ckpt_t *c;
    uint64_t *ids = NULL;
    int rc;

    if (retain < 1)
        retain = 1;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->dirfd = -1;
    c->retain = retain;
    c->dir = strdup(dir);
    if (c->dir == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = make_dirs(dir);
    if (rc != 0) {
        snprintf(err, errlen, "checkpoint directory %s: %s", dir, strerror(-rc));
        goto fail;
    }
    rc = dp_ring_init(&c->ring, 8, 0);
    if (rc != 0) {
        snprintf(err, errlen, "io_uring: %s", strerror(-rc));
        goto fail;
    }
    c->dirfd = ring_openat(c, AT_FDCWD, dir, O_RDONLY | O_DIRECTORY, 0);
    if (c->dirfd < 0) {
        rc = c->dirfd;
        c->dirfd = -1;
        snprintf(err, errlen, "checkpoint directory %s: %s", dir, strerror(-rc));
        dp_ring_dispose(&c->ring);
        goto fail;
    }
    rc = scan(c, &ids, true);
    free(ids);
    if (rc < 0) {
        snprintf(err, errlen, "checkpoint directory %s: %s", dir, strerror(-rc));
        ring_close(c, c->dirfd);
        dp_ring_dispose(&c->ring);
        goto fail;
    }
    *out = c;
    return 0;
fail:
    free(c->dir);
    free(c);
    return rc;
}

void dp_ckpt_free(dp_ckpt_t *c)
{
    if (c == NULL)
        return;
    if (c->dirfd >= 0)
        ring_close(c, c->dirfd);
    dp_ring_dispose(&c->ring);
    free(c->dir);
    free(c);
}

/* Deletes completed checkpoints beyond the newest `retain`. */
static void apply_retention(dp_ckpt_t *c)
{
    uint64_t *ids = NULL;
    int n = scan(c, &ids, false);

    for (int i = (int)c->retain; i < n; i++) {
        char name[40];

        file_name(name, sizeof(name), ids[i], false);
        if (unlinkat(c->dirfd, name, 0) != 0 && errno != ENOENT)
            wc_log(WC_LOG_WARN, "processor", "cannot delete old checkpoint", "{s:s, s:s, s:s}",
                   "dir", c->dir, "file", name, "error", strerror(errno));
    }
    free(ids);
}

int dp_ckpt_write(dp_ckpt_t *c, const dp_ckpt_data_t *d, uint64_t *id_out, char *err, size_t errlen)
{
    dp_ser_w_t head = {0}, tail = {0};
    uint64_t id = c->last_id + 1, off = 0;
    char tmp[40], final[40];
    uint32_t crc;
    uint8_t crcb[4];
    int fd = -1, rc;

    /* Claim the id first: a failed attempt never hands it out again. */
    c->last_id = id;
    file_name(tmp, sizeof(tmp), id, true);
    file_name(final, sizeof(final), id, false);
    encode_head(&head, d, id);
    encode_tail(&tail, d);
    if (head.err != 0 || tail.err != 0) {
        rc = -ENOMEM;
        snprintf(err, errlen, "encoding checkpoint %" PRIu64 ": out of memory", id);
        goto out;
    }
    crc = dp_crc32c(0, head.buf, head.len);
    crc = dp_crc32c(crc, d->state, d->state_len);
    crc = dp_crc32c(crc, tail.buf, tail.len);
    for (int b = 0; b < 4; b++)
        crcb[b] = (uint8_t)(crc >> (8 * b));

    fd = ring_openat(c, c->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0) {
        rc = fd;
        snprintf(err, errlen, "create %s/%s: %s", c->dir, tmp, strerror(-rc));
        goto out;
    }
    rc = ring_write_all(c, fd, head.buf, head.len, &off);
    if (rc == 0)
        rc = ring_write_all(c, fd, d->state, d->state_len, &off);
    if (rc == 0)
        rc = ring_write_all(c, fd, tail.buf, tail.len, &off);
    if (rc == 0)
        rc = ring_write_all(c, fd, crcb, sizeof(crcb), &off);
    if (rc != 0) {
        snprintf(err, errlen, "write %s/%s: %s", c->dir, tmp, strerror(-rc));
        goto out;
    }
    /* The data must be durable before the name points at it... */
    rc = ring_fsync(c, fd);
    if (rc != 0) {
        snprintf(err, errlen, "fsync %s/%s: %s", c->dir, tmp, strerror(-rc));
        goto out;
    }
    rc = ring_close(c, fd);
    fd = -1;
    if (rc != 0) {
        snprintf(err, errlen, "close %s/%s: %s", c->dir, tmp, strerror(-rc));
        goto out;
    }
    if (renameat(c->dirfd, tmp, c->dirfd, final) != 0) {
        rc = -errno;
        snprintf(err, errlen, "rename %s/%s: %s", c->dir, tmp, strerror(-rc));
        goto out;
    }
    /* ...and the rename must be durable before the checkpoint counts. */
    rc = ring_fsync(c, c->dirfd);
    if (rc != 0) {
        snprintf(err, errlen, "fsync directory %s: %s", c->dir, strerror(-rc));
        goto out;
    }
    apply_retention(c);
    *id_out = id;
out:
    if (fd >= 0)
        ring_close(c, fd);
    if (rc != 0)
        unlinkat(c->dirfd, tmp, 0);
    dp_ser_wdispose(&head);
    dp_ser_wdispose(&tail);
    return rc;
}

/* Reads file `name` of the directory into a new buffer. */
static int read_file(dp_ckpt_t *c, const char *name, uint8_t **buf, size_t *len)
{
    struct stat st;
    int fd = ring_openat(c, c->dirfd, name, O_RDONLY, 0), rc;
    uint8_t *b = NULL;

    if (fd < 0)
        return fd;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out;
    }
    if ((uint64_t)st.st_size > DP_CKPT_FILE_BYTES_MAX) {
        rc = -EFBIG;
        goto out;
    }
    b = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (b == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    rc = ring_read_all(c, fd, b, (size_t)st.st_size);
    if (rc == 0) {
        *buf = b;
        *len = (size_t)st.st_size;
        b = NULL;
    }
out:
    free(b);
    ring_close(c, fd);
    return rc;
}

int dp_ckpt_load(dp_ckpt_t *c, uint64_t spec_hash, dp_ckpt_image_t *img, char *err, size_t errlen)
{
    uint64_t *ids = NULL;
    char first_err[256] = "";
    int n, damaged = 0, rc;

    memset(img, 0, sizeof(*img));
    n = scan(c, &ids, false);
    if (n < 0) {
        snprintf(err, errlen, "checkpoint directory %s: %s", c->dir, strerror(-n));
        return n;
    }
    if (n == 0) {
        free(ids);
        snprintf(err, errlen, "no checkpoint in %s", c->dir);
        return -ENOENT;
    }
    for (int i = 0; i < n; i++) {
        char name[40], why[200];
        uint8_t *buf = NULL;
        size_t len = 0;

        file_name(name, sizeof(name), ids[i], false);
        rc = read_file(c, name, &buf, &len);
        if (rc == 0)
            rc = dp_ckpt_decode(buf, len, &img->data, &img->offs, why, sizeof(why));
        else
            snprintf(why, sizeof(why), "read: %s", strerror(-rc));
        if (rc == 0 && img->data.id != ids[i]) {
            rc = -EBADMSG;
            snprintf(why, sizeof(why), "header id %" PRIu64 " does not match the file name",
                     img->data.id);
            free(img->offs);
            img->offs = NULL;
        }
        if (rc == -ENOMEM) {
            free(buf);
            free(ids);
            snprintf(err, errlen, "loading %s/%s: out of memory", c->dir, name);
            return rc;
        }
        if (rc != 0) {
            free(buf);
            damaged++;
            if (first_err[0] == '\0')
                snprintf(first_err, sizeof(first_err), "%s: %s", name, why);
            wc_log(WC_LOG_WARN, "processor",
                   i + 1 < n ? "checkpoint damaged, falling back to the previous one"
                             : "checkpoint damaged, no older one left",
                   "{s:s, s:s, s:s}", "dir", c->dir, "file", name, "error", why);
            continue;
        }
        if (img->data.spec_hash != spec_hash) {
            snprintf(err, errlen,
                     "checkpoint %s/%s was written for a different pipeline spec (its spec hash "
                     "%016" PRIx64 ", this spec %016" PRIx64
                     "): restore the spec it was written with, or remove the checkpoint "
                     "directory to start over from the inputs' startOffset",
                     c->dir, name, img->data.spec_hash, spec_hash);
            free(buf);
            dp_ckpt_image_dispose(img);
            free(ids);
            return -ESTALE;
        }
        img->buf = buf;
        snprintf(img->name, sizeof(img->name), "%s", name);
        free(ids);
        return 0;
    }
    free(ids);
    snprintf(err, errlen, "all %d checkpoint file(s) in %s are damaged (newest: %s)", damaged,
             c->dir, first_err);
    return -EBADMSG;
}

void dp_ckpt_image_dispose(dp_ckpt_image_t *img)
{
    free(img->offs);
    free(img->buf);
    memset(img, 0, sizeof(*img));
}
