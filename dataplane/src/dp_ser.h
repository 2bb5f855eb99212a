/* SPDX-License-Identifier: Apache-2.0 */
/* dp_ser: the little-endian encoding operators use to save their state into
 * a checkpoint and read it back. A growable writer (state size is not known
 * in advance; checkpoints are off the per-record path) and a bounds-checked
 * reader with a sticky error, so a damaged checkpoint is reported, never
 * trusted. Values (dp_val_t) are written with their type tag. */
#ifndef DP_SER_H
#define DP_SER_H

#include "dp_val.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/** Growable output buffer. Zero-initialise, use, then dp_ser_wdispose. */
typedef struct dp_ser_w {
    uint8_t *buf;
    size_t len;
    size_t cap;
    int err; /**< sticky: -ENOMEM */
} dp_ser_w_t;

/** Bounds-checked reader over [p, p+len); `err` is sticky (-EBADMSG). */
typedef struct dp_ser_r {
    const uint8_t *p;
    size_t len;
    size_t off;
    int err;
} dp_ser_r_t;

static inline void dp_ser_wdispose(dp_ser_w_t *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

static inline void dp_ser_put(dp_ser_w_t *w, const void *p, size_t n)
{
    if (w->err != 0)
        return;
    if (w->cap - w->len < n) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap - w->len < n)
            cap *= 2;
        uint8_t *nb = realloc(w->buf, cap);
        if (nb == NULL) {
            w->err = -ENOMEM;
            return;
        }
        w->buf = nb;
        w->cap = cap;
    }
    if (n > 0)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static inline void dp_ser_u8(dp_ser_w_t *w, uint8_t v)
{
    dp_ser_put(w, &v, 1);
}
static inline void dp_ser_u32(dp_ser_w_t *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    dp_ser_put(w, b, 4);
}
static inline void dp_ser_u64(dp_ser_w_t *w, uint64_t v)
{
    dp_ser_u32(w, (uint32_t)v);
    dp_ser_u32(w, (uint32_t)(v >> 32));
}
static inline void dp_ser_i64(dp_ser_w_t *w, int64_t v)
{
    dp_ser_u64(w, (uint64_t)v);
}
static inline void dp_ser_f64(dp_ser_w_t *w, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    dp_ser_u64(w, v);
}
/** Length-prefixed bytes (u32 length). */
static inline void dp_ser_bytes(dp_ser_w_t *w, const void *p, uint32_t n)
{
    dp_ser_u32(w, n);
    dp_ser_put(w, p, n);
}
/** A value with its type tag; STR copies its bytes. */
static inline void dp_ser_val(dp_ser_w_t *w, const dp_val_t *v)
{
    dp_ser_u8(w, v->type);
    switch (v->type) {
    case DP_VAL_BOOL:
        dp_ser_u8(w, v->u.b ? 1 : 0);
        break;
    case DP_VAL_INT:
        dp_ser_i64(w, v->u.i);
        break;
    case DP_VAL_DOUBLE:
        dp_ser_f64(w, v->u.d);
        break;
    case DP_VAL_STR:
        dp_ser_bytes(w, v->u.s, v->len);
        break;
    case DP_VAL_ERR:
        dp_ser_u32(w, (uint32_t)v->u.err);
        break;
    default:
        break;
    }
}

static inline void dp_ser_rinit(dp_ser_r_t *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->err = 0;
}
/** Returns a pointer to the next n bytes and skips them, or NULL (error set). */
static inline const uint8_t *dp_ser_get(dp_ser_r_t *r, size_t n)
{
    if (r->err != 0 || r->len - r->off < n) {
        r->err = -EBADMSG;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}
static inline uint8_t dp_ser_ru8(dp_ser_r_t *r)
{
    const uint8_t *p = dp_ser_get(r, 1);
    return p ? p[0] : 0;
}
static inline uint32_t dp_ser_ru32(dp_ser_r_t *r)
{
    const uint8_t *p = dp_ser_get(r, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
             : 0;
}
static inline uint64_t dp_ser_ru64(dp_ser_r_t *r)
{
    uint64_t lo = dp_ser_ru32(r);
    return lo | (uint64_t)dp_ser_ru32(r) << 32;
}
static inline int64_t dp_ser_ri64(dp_ser_r_t *r)
{
    return (int64_t)dp_ser_ru64(r);
}
static inline double dp_ser_rf64(dp_ser_r_t *r)
{
    uint64_t v = dp_ser_ru64(r);
    double d;
    memcpy(&d, &v, 8);
    return d;
}
/** Reads length-prefixed bytes; returns a pointer into the buffer (borrowed). */
static inline const uint8_t *dp_ser_rbytes(dp_ser_r_t *r, uint32_t *n)
{
    *n = dp_ser_ru32(r);
    const uint8_t *p = dp_ser_get(r, *n);
    if (p == NULL)
        *n = 0;
    return p;
}
/** Reads a value; a STR borrows its bytes from the reader's buffer. */
static inline dp_val_t dp_ser_rval(dp_ser_r_t *r)
{
    dp_val_t v = {.type = dp_ser_ru8(r)};
    switch (v.type) {
    case DP_VAL_MISSING:
    case DP_VAL_NULL:
        break;
    case DP_VAL_BOOL:
        v.u.b = dp_ser_ru8(r) != 0;
        break;
    case DP_VAL_INT:
        v.u.i = dp_ser_ri64(r);
        break;
    case DP_VAL_DOUBLE:
        v.u.d = dp_ser_rf64(r);
        break;
    case DP_VAL_STR:
        v.u.s = (const char *)dp_ser_rbytes(r, &v.len);
        break;
    case DP_VAL_ERR:
        v.u.err = (int)dp_ser_ru32(r);
        break;
    default:
        r->err = -EBADMSG;
        v.type = DP_VAL_MISSING;
        break;
    }
    return v;
}

#endif
