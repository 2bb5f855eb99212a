/* SPDX-License-Identifier: Apache-2.0 */
/* dp_expr: Weir's expression language (filter, map, key, partitionBy, output
 * headers, aggregation fields). An expression is compiled once into a flat
 * bytecode program whose field references are slot reads, then evaluated per
 * record with no allocation: string results go to a caller-owned bump arena.
 * The language is documented in docs/internals/expressions.md. */
#ifndef DP_EXPR_H
#define DP_EXPR_H

#include "dp_val.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Deepest nesting (parentheses, calls, unary operators, ternaries) compile accepts. */
#define DP_EXPR_DEPTH_MAX 64
/** Most syntax nodes (literals, paths, operators, calls) in one expression. */
#define DP_EXPR_NODES_MAX 4096
/** Longest source text compile accepts, in bytes. */
#define DP_EXPR_SRC_MAX 65536
/** Evaluation stack size in values (an expression needing more is refused at compile time). */
#define DP_EXPR_STACK_MAX 256
/** Buffer size dp_expr_fmt_double needs. */
#define DP_EXPR_NUM_MAX 32

/** A compiled expression (immutable; may be shared by threads). */
typedef struct dp_expr dp_expr_t;

/**
 * Maps a field path to a slot index. `path` is the canonical path
 * (`payload.a.b`, `payload`, `header.NAME`, `key`, `timestamp`, `eventtime`),
 * `pathlen` bytes, not NUL-terminated. Returns the slot index (>= 0) or a
 * negative errno to refuse the path, which fails the compile with that errno.
 */
typedef int (*dp_expr_resolve_cb)(void *ctx, const char *path, size_t pathlen);

/**
 * Bump arena for string results (lower, upper, concatenation, string()).
 * Caller-owned: point it at a buffer, reset it after each record. A full
 * arena makes the producing operation return ERR(DP_VERR_NOMEM).
 */
typedef struct dp_expr_scratch {
    char *buf;
    size_t cap;
    size_t len;
} dp_expr_scratch_t;

/** What a filter does with a record. */
typedef enum dp_expr_verdict {
    DP_EXPR_ERROR = -1, /**< evaluation failed: dead-letter the record */
    DP_EXPR_DROP = 0,   /**< anything but BOOL true (and not an error) */
    DP_EXPR_PASS = 1,   /**< BOOL true */
} dp_expr_verdict_t;

static inline void dp_expr_scratch_init(dp_expr_scratch_t *s, void *buf, size_t cap)
{
    s->buf = buf;
    s->cap = cap;
    s->len = 0;
}

static inline void dp_expr_scratch_reset(dp_expr_scratch_t *s)
{
    s->len = 0;
}

/**
 * Compiles `src` (NUL-terminated). Every field path is passed to `resolve`
 * once per occurrence and becomes a read of `row->slots[index]`. Literal
 * subtrees are folded. On success returns 0 and sets `*out` (free with
 * dp_expr_free). On failure returns -EINVAL (syntax or limits), -ENOMEM, or
 * the resolver's negative errno, leaves `*out` NULL and writes a message such
 * as "column 12: expected ')' after arguments of substr" into `err` (1-based
 * byte column; `err` may be NULL).
 */
int dp_expr_compile(const char *src, dp_expr_resolve_cb resolve, void *ctx, dp_expr_t **out,
                    char *err, size_t errlen);

/** Frees a compiled expression (NULL is fine). */
void dp_expr_free(dp_expr_t *e);

/**
 * Evaluates `e` over `row` (NULL: every slot MISSING). A slot index at or
 * beyond `row->nslots` reads as MISSING. STR results borrow from the row, the
 * expression or `scratch` (NULL: string-producing operations fail with
 * NOMEM), so copy them before resetting the scratch. Never allocates.
 */
dp_val_t dp_expr_eval(const dp_expr_t *e, const dp_row_t *row, dp_expr_scratch_t *scratch);

/** Classifies a result as a filter would: PASS for BOOL true, ERROR for ERR or MISSING. */
dp_expr_verdict_t dp_expr_verdict(const dp_val_t *v);

/**
 * Evaluates `e` as a filter predicate. On DP_EXPR_ERROR, `*verr` (if not
 * NULL) says why (a bare MISSING result counts as DP_VERR_MISSING).
 */
dp_expr_verdict_t dp_expr_filter(const dp_expr_t *e, const dp_row_t *row,
                                 dp_expr_scratch_t *scratch, dp_val_err_t *verr);

/** True if `e` reads no field: its value is the same for every record. */
bool dp_expr_is_const(const dp_expr_t *e);

/** A short English text for an evaluation error, for the `weir.error` header. */
const char *dp_expr_errstr(int verr);

/**
 * Writes the canonical text of a double: the shortest of %.15g/%.16g/%.17g
 * that reads back exactly, with ".0" appended when it would look like an
 * integer (so 3.0 stays a double through JSON). `buf` holds at least
 * DP_EXPR_NUM_MAX bytes; returns the length (NUL-terminated).
 */
size_t dp_expr_fmt_double(double d, char *buf);

#endif
