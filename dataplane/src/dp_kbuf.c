/* SPDX-License-Identifier: Apache-2.0 */
/* Kafka wire primitives: bounds-checked big-endian reads and writes with a
 * sticky error. Nothing here allocates; readers return pointers into the
 * input and writers fill the caller's buffer. */
#include "dp_kbuf.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

dp_kstr_t dp_kstr(const char *s)
{
    dp_kstr_t k = {s, s == NULL ? -1 : (int32_t)strlen(s)};

    return k;
}

bool dp_kstr_eq(dp_kstr_t a, dp_kstr_t b)
{
    if (a.len != b.len)
        return false;
    if (a.len <= 0)
        return true;
    return memcmp(a.ptr, b.ptr, (size_t)a.len) == 0;
}

void dp_krd_init(dp_krd_t *r, const void *buf, size_t len)
{
    assert(r != NULL);
    assert(buf != NULL || len == 0);
    r->p = buf;
    r->len = len;
    r->off = 0;
    r->err = 0;
}

size_t dp_krd_remaining(const dp_krd_t *r)
{
    assert(r->off <= r->len);
    return r->err != 0 ? 0 : r->len - r->off;
}

void dp_krd_fail(dp_krd_t *r, int err)
{
    assert(err < 0);
    if (r->err == 0)
        r->err = err;
}

/* Returns the next n bytes or NULL (setting -ENODATA); the only place that
 * moves the read offset, so every other getter inherits the bounds check. */
static const uint8_t *take(dp_krd_t *r, size_t n)
{
    const uint8_t *p;

    if (r->err != 0)
        return NULL;
    assert(r->off <= r->len);
    if (n > r->len - r->off) {
        r->err = -ENODATA;
        return NULL;
    }
    p = r->p + r->off;
    r->off += n;
    assert(r->off <= r->len);
    return p;
}

int8_t dp_krd_i8(dp_krd_t *r)
{
    const uint8_t *p = take(r, 1);

    return p == NULL ? 0 : (int8_t)p[0];
}

int16_t dp_krd_i16(dp_krd_t *r)
{
    const uint8_t *p = take(r, 2);

    if (p == NULL)
        return 0;
    return (int16_t)(uint16_t)((unsigned)p[0] << 8 | p[1]);
}

uint32_t dp_krd_u32(dp_krd_t *r)
{
    const uint8_t *p = take(r, 4);

    if (p == NULL)
        return 0;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int32_t dp_krd_i32(dp_krd_t *r)
{
    return (int32_t)dp_krd_u32(r);
}

int64_t dp_krd_i64(dp_krd_t *r)
{
    uint64_t hi = dp_krd_u32(r);
    uint64_t lo = dp_krd_u32(r);

    return (int64_t)(hi << 32 | lo);
}

bool dp_krd_bool(dp_krd_t *r)
{
    return dp_krd_i8(r) != 0;
}

static uint64_t read_uvar(dp_krd_t *r, unsigned max_bytes)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < max_bytes; i++) {
        const uint8_t *p = take(r, 1);

        if (p == NULL)
            return 0;
        v |= (uint64_t)(p[0] & 0x7f) << (7 * i);
        if ((p[0] & 0x80) == 0)
            return v;
    }
    dp_krd_fail(r, -EBADMSG);
    return 0;
}

uint32_t dp_krd_uvarint(dp_krd_t *r)
{
    uint64_t v = read_uvar(r, 5);

    if (v > UINT32_MAX) {
        dp_krd_fail(r, -EBADMSG);
        return 0;
    }
    return (uint32_t)v;
}

int32_t dp_krd_varint(dp_krd_t *r)
{
    uint32_t u = dp_krd_uvarint(r);

    return (int32_t)((u >> 1) ^ (0u - (u & 1)));
}

int64_t dp_krd_varlong(dp_krd_t *r)
{
    uint64_t u = read_uvar(r, 10);

    return (int64_t)((u >> 1) ^ (0ull - (u & 1)));
}

void dp_krd_uuid(dp_krd_t *r, uint8_t out[16])
{
    const uint8_t *p = take(r, 16);

    if (p == NULL)
        memset(out, 0, 16);
    else
        memcpy(out, p, 16);
}

const uint8_t *dp_krd_raw(dp_krd_t *r, size_t n)
{
    return take(r, n);
}

/* len < -1 is invalid everywhere; -1 is null and only legal when nullable. */
static dp_kstr_t str_body(dp_krd_t *r, int64_t len, bool nullable)
{
    dp_kstr_t s = {NULL, -1};
    const uint8_t *p;

    if (r->err != 0)
        return s;
    if (len < -1 || (len == -1 && !nullable) || len > INT32_MAX) {
        dp_krd_fail(r, -EBADMSG);
        return s;
    }
    if (len == -1)
        return s;
    p = take(r, (size_t)len);
    if (p == NULL)
        return s;
    s.ptr = (const char *)p;
    s.len = (int32_t)len;
    return s;
}

dp_kstr_t dp_krd_str(dp_krd_t *r)
{
    return str_body(r, dp_krd_i16(r), false);
}

dp_kstr_t dp_krd_nstr(dp_krd_t *r)
{
    return str_body(r, dp_krd_i16(r), true);
}

dp_kstr_t dp_krd_cstr(dp_krd_t *r)
{
    return str_body(r, (int64_t)dp_krd_uvarint(r) - 1, false);
}

dp_kstr_t dp_krd_cnstr(dp_krd_t *r)
{
    return str_body(r, (int64_t)dp_krd_uvarint(r) - 1, true);
}

dp_kstr_t dp_krd_str_f(dp_krd_t *r, bool flex)
{
    return flex ? dp_krd_cstr(r) : dp_krd_str(r);
}

dp_kstr_t dp_krd_nstr_f(dp_krd_t *r, bool flex)
{
    return flex ? dp_krd_cnstr(r) : dp_krd_nstr(r);
}

static dp_kbytes_t as_bytes(dp_kstr_t s)
{
    dp_kbytes_t b = {(const uint8_t *)s.ptr, s.len};

    return b;
}

dp_kbytes_t dp_krd_bytes(dp_krd_t *r)
{
    return as_bytes(str_body(r, dp_krd_i32(r), true));
}

dp_kbytes_t dp_krd_cbytes(dp_krd_t *r)
{
    return as_bytes(str_body(r, (int64_t)dp_krd_uvarint(r) - 1, true));
}

dp_kbytes_t dp_krd_bytes_f(dp_krd_t *r, bool flex)
{
    return flex ? dp_krd_cbytes(r) : dp_krd_bytes(r);
}

int32_t dp_krd_arrlen(dp_krd_t *r, bool flex, size_t min_elem)
{
    int64_t n = flex ? (int64_t)dp_krd_uvarint(r) - 1 : dp_krd_i32(r);

    if (r->err != 0)
        return 0;
    if (n < -1) {
        dp_krd_fail(r, -EBADMSG);
        return 0;
    }
    if (n > 0 && min_elem > 0 && (uint64_t)n > dp_krd_remaining(r) / min_elem) {
        dp_krd_fail(r, -EBADMSG);
        return 0;
    }
    return (int32_t)n;
}

void dp_krd_skip_tags(dp_krd_t *r)
{
    uint32_t n = dp_krd_uvarint(r);

    /* Each tagged field takes at least two bytes (tag and size). */
    if (r->err == 0 && n > dp_krd_remaining(r) / 2) {
        dp_krd_fail(r, -EBADMSG);
        return;
    }
    for (uint32_t i = 0; i < n && r->err == 0; i++) {
        (void)dp_krd_uvarint(r);
        (void)take(r, dp_krd_uvarint(r));
    }
}

void dp_kwr_init(dp_kwr_t *w, void *buf, size_t cap)
{
    assert(w != NULL);
    assert(buf != NULL || cap == 0);
    w->p = buf;
    w->cap = cap;
    w->off = 0;
    w->err = 0;
}

/* The writer's only bounds check: returns room for n bytes or NULL. */
static uint8_t *room(dp_kwr_t *w, size_t n)
{
    uint8_t *p;

    if (w->err != 0)
        return NULL;
    assert(w->off <= w->cap);
    if (n > w->cap - w->off) {
        w->err = -ENOBUFS;
        return NULL;
    }
    p = w->p + w->off;
    w->off += n;
    assert(w->off <= w->cap);
    return p;
}

uint8_t *dp_kwr_reserve(dp_kwr_t *w, size_t n)
{
    return room(w, n);
}

void dp_kwr_i8(dp_kwr_t *w, int8_t v)
{
    uint8_t *p = room(w, 1);

    if (p != NULL)
        p[0] = (uint8_t)v;
}

void dp_kwr_i16(dp_kwr_t *w, int16_t v)
{
    uint8_t *p = room(w, 2);
    uint16_t u = (uint16_t)v;

    if (p == NULL)
        return;
    p[0] = (uint8_t)(u >> 8);
    p[1] = (uint8_t)u;
}

static void put32(uint8_t *p, uint32_t u)
{
    p[0] = (uint8_t)(u >> 24);
    p[1] = (uint8_t)(u >> 16);
    p[2] = (uint8_t)(u >> 8);
    p[3] = (uint8_t)u;
}

void dp_kwr_u32(dp_kwr_t *w, uint32_t v)
{
    uint8_t *p = room(w, 4);

    if (p != NULL)
        put32(p, v);
}

void dp_kwr_i32(dp_kwr_t *w, int32_t v)
{
    dp_kwr_u32(w, (uint32_t)v);
}

void dp_kwr_i64(dp_kwr_t *w, int64_t v)
{
    uint64_t u = (uint64_t)v;

    dp_kwr_u32(w, (uint32_t)(u >> 32));
    dp_kwr_u32(w, (uint32_t)u);
}

void dp_kwr_bool(dp_kwr_t *w, bool v)
{
    dp_kwr_i8(w, v ? 1 : 0);
}

static void write_uvar(dp_kwr_t *w, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    uint8_t *p;

    do {
        assert(n < sizeof(tmp));
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            tmp[n] |= 0x80;
        n++;
    } while (v != 0);
    p = room(w, n);
    if (p != NULL)
        memcpy(p, tmp, n);
}

void dp_kwr_uvarint(dp_kwr_t *w, uint32_t v)
{
    write_uvar(w, v);
}

void dp_kwr_varint(dp_kwr_t *w, int32_t v)
{
    write_uvar(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

void dp_kwr_varlong(dp_kwr_t *w, int64_t v)
{
    write_uvar(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void dp_kwr_uuid(dp_kwr_t *w, const uint8_t *uuid)
{
    uint8_t *p = room(w, 16);

    if (p == NULL)
        return;
    if (uuid == NULL)
        memset(p, 0, 16);
    else
        memcpy(p, uuid, 16);
}

void dp_kwr_raw(dp_kwr_t *w, const void *src, size_t n)
{
    uint8_t *p = room(w, n);

    if (p != NULL && n > 0)
        memcpy(p, src, n);
}

static void len_prefix(dp_kwr_t *w, int32_t len, bool flex, bool wide)
{
    assert(len >= -1);
    if (flex)
        dp_kwr_uvarint(w, (uint32_t)(len + 1));
    else if (wide)
        dp_kwr_i32(w, len);
    else
        dp_kwr_i16(w, (int16_t)len);
}

void dp_kwr_str_f(dp_kwr_t *w, dp_kstr_t s, bool flex)
{
    /* A STRING's int16 length cannot say more than 32767 bytes. */
    if (s.len > INT16_MAX) {
        if (w->err == 0)
            w->err = -EINVAL;
        return;
    }
    len_prefix(w, s.len, flex, false);
    if (s.len > 0)
        dp_kwr_raw(w, s.ptr, (size_t)s.len);
}

void dp_kwr_bytes_f(dp_kwr_t *w, dp_kbytes_t b, bool flex)
{
    len_prefix(w, b.len, flex, true);
    if (b.len > 0)
        dp_kwr_raw(w, b.ptr, (size_t)b.len);
}

void dp_kwr_arrlen(dp_kwr_t *w, int32_t n, bool flex)
{
    len_prefix(w, n, flex, true);
}

void dp_kwr_tags_empty(dp_kwr_t *w)
{
    dp_kwr_uvarint(w, 0);
}

size_t dp_kwr_mark_i32(dp_kwr_t *w)
{
    size_t mark = w->off;

    if (room(w, 4) == NULL)
        return 0;
    return mark;
}

void dp_kwr_patch_i32(dp_kwr_t *w, size_t mark, int32_t v)
{
    if (w->err != 0)
        return;
    assert(mark + 4 <= w->off);
    put32(w->p + mark, (uint32_t)v);
}
