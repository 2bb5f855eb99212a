/* SPDX-License-Identifier: Apache-2.0 */
/* Bounds-checked Kafka wire primitives: a big-endian reader over a byte span
 * and a writer into a caller-provided fixed buffer. Both carry a sticky error
 * so callers decode or encode a whole message and check once at the end. */
#ifndef DP_KBUF_H
#define DP_KBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A string pointing into a buffer (not NUL-terminated); len -1 means null. */
typedef struct dp_kstr {
    const char *ptr;
    int32_t len;
} dp_kstr_t;

/** A byte range pointing into a buffer; len -1 means null. */
typedef struct dp_kbytes {
    const uint8_t *ptr;
    int32_t len;
} dp_kbytes_t;

/** Builds a dp_kstr_t from a NUL-terminated C string (NULL gives null). */
dp_kstr_t dp_kstr(const char *s);

/** True when both strings are null or hold the same bytes. */
bool dp_kstr_eq(dp_kstr_t a, dp_kstr_t b);

/**
 * Reader over [p, p+len). Every getter returns 0 (or an empty value) once
 * `err` is set; the first error is kept: -ENODATA for reading past the end,
 * -EBADMSG for an invalid length or an over-long varint.
 */
typedef struct dp_krd {
    const uint8_t *p;
    size_t len;
    size_t off;
    int err;
} dp_krd_t;

/** Starts reading `len` bytes at `buf`. */
void dp_krd_init(dp_krd_t *r, const void *buf, size_t len);
/** Bytes left to read (0 once an error is set). */
size_t dp_krd_remaining(const dp_krd_t *r);
/** Sets the sticky error if none is set yet. */
void dp_krd_fail(dp_krd_t *r, int err);

/** Reads an int8. */
int8_t dp_krd_i8(dp_krd_t *r);
/** Reads a big-endian int16. */
int16_t dp_krd_i16(dp_krd_t *r);
/** Reads a big-endian int32. */
int32_t dp_krd_i32(dp_krd_t *r);
/** Reads a big-endian uint32. */
uint32_t dp_krd_u32(dp_krd_t *r);
/** Reads a big-endian int64. */
int64_t dp_krd_i64(dp_krd_t *r);
/** Reads a boolean (any non-zero byte is true). */
bool dp_krd_bool(dp_krd_t *r);
/** Reads an unsigned LEB128 varint of at most 5 bytes. */
uint32_t dp_krd_uvarint(dp_krd_t *r);
/** Reads a zigzag varint (int32, at most 5 bytes). */
int32_t dp_krd_varint(dp_krd_t *r);
/** Reads a zigzag varlong (int64, at most 10 bytes). */
int64_t dp_krd_varlong(dp_krd_t *r);
/** Copies a 16-byte UUID into `out`. */
void dp_krd_uuid(dp_krd_t *r, uint8_t out[16]);
/** Returns a pointer to the next `n` bytes and skips them, or NULL. */
const uint8_t *dp_krd_raw(dp_krd_t *r, size_t n);

/** Reads an int16-length STRING; null (-1) is an error. */
dp_kstr_t dp_krd_str(dp_krd_t *r);
/** Reads an int16-length NULLABLE_STRING. */
dp_kstr_t dp_krd_nstr(dp_krd_t *r);
/** Reads a COMPACT_STRING (uvarint len+1); null is an error. */
dp_kstr_t dp_krd_cstr(dp_krd_t *r);
/** Reads a COMPACT_NULLABLE_STRING. */
dp_kstr_t dp_krd_cnstr(dp_krd_t *r);
/** Reads a string, compact when `flex`; null is an error. */
dp_kstr_t dp_krd_str_f(dp_krd_t *r, bool flex);
/** Reads a nullable string, compact when `flex`. */
dp_kstr_t dp_krd_nstr_f(dp_krd_t *r, bool flex);
/** Reads int32-length nullable BYTES. */
dp_kbytes_t dp_krd_bytes(dp_krd_t *r);
/** Reads COMPACT_NULLABLE_BYTES (uvarint len+1). */
dp_kbytes_t dp_krd_cbytes(dp_krd_t *r);
/** Reads nullable bytes, compact when `flex`. */
dp_kbytes_t dp_krd_bytes_f(dp_krd_t *r, bool flex);

/**
 * Reads an array length (int32, or uvarint len+1 when `flex`); returns -1
 * for a null array. A count larger than the bytes left (every element takes
 * at least `min_elem` bytes) is -EBADMSG, so callers can size from it.
 */
int32_t dp_krd_arrlen(dp_krd_t *r, bool flex, size_t min_elem);
/** Skips a tagged-field section (count, then tag/size/data triples). */
void dp_krd_skip_tags(dp_krd_t *r);

/**
 * Writer into a caller-owned buffer of `cap` bytes. Once a write does not
 * fit, `err` becomes -ENOBUFS and later writes are dropped.
 */
typedef struct dp_kwr {
    uint8_t *p;
    size_t cap;
    size_t off;
    int err;
} dp_kwr_t;

/** Starts writing into `buf` of `cap` bytes. */
void dp_kwr_init(dp_kwr_t *w, void *buf, size_t cap);
/** Writes an int8. */
void dp_kwr_i8(dp_kwr_t *w, int8_t v);
/** Writes a big-endian int16. */
void dp_kwr_i16(dp_kwr_t *w, int16_t v);
/** Writes a big-endian int32. */
void dp_kwr_i32(dp_kwr_t *w, int32_t v);
/** Writes a big-endian uint32. */
void dp_kwr_u32(dp_kwr_t *w, uint32_t v);
/** Writes a big-endian int64. */
void dp_kwr_i64(dp_kwr_t *w, int64_t v);
/** Writes a boolean as 0 or 1. */
void dp_kwr_bool(dp_kwr_t *w, bool v);
/** Writes an unsigned varint. */
void dp_kwr_uvarint(dp_kwr_t *w, uint32_t v);
/** Writes a zigzag varint. */
void dp_kwr_varint(dp_kwr_t *w, int32_t v);
/** Writes a zigzag varlong. */
void dp_kwr_varlong(dp_kwr_t *w, int64_t v);
/** Writes a 16-byte UUID (NULL writes the zero UUID). */
void dp_kwr_uuid(dp_kwr_t *w, const uint8_t *uuid);
/** Copies `n` bytes. */
void dp_kwr_raw(dp_kwr_t *w, const void *src, size_t n);
/**
 * Reserves `n` bytes and returns where they start so the caller can fill
 * them in place, or NULL on overflow.
 */
uint8_t *dp_kwr_reserve(dp_kwr_t *w, size_t n);
/** Writes a string (compact when `flex`); a null string is written as null. */
void dp_kwr_str_f(dp_kwr_t *w, dp_kstr_t s, bool flex);
/** Writes nullable bytes (compact when `flex`). */
void dp_kwr_bytes_f(dp_kwr_t *w, dp_kbytes_t b, bool flex);
/** Writes an array length (-1 for null), compact when `flex`. */
void dp_kwr_arrlen(dp_kwr_t *w, int32_t n, bool flex);
/** Writes an empty tagged-field section (a single 0 byte). */
void dp_kwr_tags_empty(dp_kwr_t *w);
/**
 * Reserves a 4-byte length and returns its offset for dp_kwr_patch_i32
 * (returns 0 and leaves err set on overflow).
 */
size_t dp_kwr_mark_i32(dp_kwr_t *w);
/** Overwrites the int32 at `mark` (from dp_kwr_mark_i32) with `v`. */
void dp_kwr_patch_i32(dp_kwr_t *w, size_t mark, int32_t v);

#endif
