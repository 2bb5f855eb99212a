/* SPDX-License-Identifier: Apache-2.0 */
/* dp_val: the processor's value and row model. A pipeline is compiled once:
 * every field path any operator reads (`payload.a.b`, `header.x`, `key`,
 * `timestamp`) gets a slot index, and each record becomes a dp_row_t whose
 * slots hold those values, decoded once. Operators then read slots by index,
 * never by name, so the hot path does no string lookups and no allocation.
 * Values are 16 bytes and borrow their string bytes from the row (or from an
 * arena the caller owns); whatever keeps a value beyond the row copies it. */
#ifndef DP_VAL_H
#define DP_VAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Value types. MISSING (an absent field) is distinct from JSON null. */
typedef enum dp_val_type {
    DP_VAL_MISSING = 0,
    DP_VAL_NULL,
    DP_VAL_BOOL,
    DP_VAL_INT,
    DP_VAL_DOUBLE,
    DP_VAL_STR,
    DP_VAL_ERR, /**< an evaluation error; `u.err` says which */
} dp_val_type_t;

/** Why a value is an error. Errors send the record to the dead-letter output. */
typedef enum dp_val_err {
    DP_VERR_NONE = 0,
    DP_VERR_MISSING,  /**< a field the expression needs is absent */
    DP_VERR_TYPE,     /**< operand types do not fit the operator */
    DP_VERR_DIV_ZERO, /**< integer division or modulo by zero */
    DP_VERR_OVERFLOW, /**< integer overflow */
    DP_VERR_PARSE,    /**< the payload could not be decoded */
    DP_VERR_RANGE,    /**< an argument out of range (e.g. substring bounds) */
    DP_VERR_NOMEM,    /**< the scratch arena is full */
} dp_val_err_t;

/** A value: 16 bytes. STR points at `len` bytes owned elsewhere (not NUL-terminated). */
typedef struct dp_val {
    uint8_t type; /**< dp_val_type_t */
    uint8_t pad[3];
    uint32_t len; /**< STR: byte length */
    union {
        bool b;
        int64_t i;
        double d;
        const char *s;
        int err; /**< ERR: dp_val_err_t */
    } u;
} dp_val_t;

/** One record header (Kafka headers: name and value bytes). */
typedef struct dp_hdr {
    const char *name;
    const char *val; /**< NULL for a null header value */
    uint32_t name_len;
    uint32_t val_len;
} dp_hdr_t;

/**
 * One record inside the processor. Everything is borrowed from whoever made
 * the row (the input batch, the generator, an operator's output arena) and
 * lives until that owner releases it.
 */
typedef struct dp_row {
    int64_t event_ms;    /**< event time, from the input's time attribute */
    int64_t ts_ms;       /**< the record's own timestamp */
    const char *key;     /**< record key (NULL: none) */
    const char *payload; /**< payload bytes as received (NULL: none) */
    const dp_hdr_t *hdrs;
    dp_val_t *slots; /**< values of the compiled field paths, by slot index */
    int64_t offset;  /**< source offset (-1: not from an input) */
    uint32_t key_len;
    uint32_t payload_len;
    uint32_t nhdrs;
    uint32_t nslots;
    int32_t partition; /**< source partition (-1: none) */
    uint16_t input;    /**< index of the source input in the spec */
    uint16_t flags;    /**< DP_ROW_* */
} dp_row_t;

/** Row flag: a slot value was changed after decoding (map), so an output must re-encode. */
#define DP_ROW_MODIFIED 0x1

static inline dp_val_t dp_val_missing(void)
{
    dp_val_t v = {.type = DP_VAL_MISSING};
    return v;
}
static inline dp_val_t dp_val_null(void)
{
    dp_val_t v = {.type = DP_VAL_NULL};
    return v;
}
static inline dp_val_t dp_val_bool(bool b)
{
    dp_val_t v = {.type = DP_VAL_BOOL};
    v.u.b = b;
    return v;
}
static inline dp_val_t dp_val_int(int64_t i)
{
    dp_val_t v = {.type = DP_VAL_INT};
    v.u.i = i;
    return v;
}
static inline dp_val_t dp_val_double(double d)
{
    dp_val_t v = {.type = DP_VAL_DOUBLE};
    v.u.d = d;
    return v;
}
static inline dp_val_t dp_val_str(const char *s, uint32_t len)
{
    dp_val_t v = {.type = DP_VAL_STR, .len = len};
    v.u.s = s;
    return v;
}
static inline dp_val_t dp_val_err(dp_val_err_t e)
{
    dp_val_t v = {.type = DP_VAL_ERR};
    v.u.err = (int)e;
    return v;
}
static inline bool dp_val_is_err(const dp_val_t *v)
{
    return v->type == DP_VAL_ERR;
}

#endif
