/* SPDX-License-Identifier: Apache-2.0 */
/* dp_fields: field paths and the JSON payload codec for rows. A path table
 * interns every path a pipeline reads (`payload.a.b`, `payload`, `header.x`,
 * `key`, `timestamp`, `eventtime`) to a slot index; decode fills a row's slots
 * from its payload, key, headers and times, parsing the payload once; encode
 * patches or builds JSON payloads into a reusable buffer. Rules and costs:
 * docs/internals/fields.md. */
#ifndef DP_FIELDS_H
#define DP_FIELDS_H

#include "dp_val.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/** Most paths one table interns. */
#define DP_FIELDS_MAX 1024
/** Longest path, in bytes. */
#define DP_FIELDS_PATH_MAX 1024
/** Most segments below `payload` in one path. */
#define DP_FIELDS_SEG_MAX 64
/** Size of dp_fields_doc_t.err. */
#define DP_FIELDS_ERR_MAX 160
/** Default bound on a dp_fields_buf_t (when its `max` is 0): 64 MiB. */
#define DP_FIELDS_BUF_MAX ((size_t)64 << 20)

/** What a path reads. */
typedef enum dp_fields_kind {
    DP_FIELD_PAYLOAD_ROOT, /**< `payload`: the whole payload */
    DP_FIELD_PAYLOAD,      /**< `payload.a.b`: a member of a JSON payload */
    DP_FIELD_HEADER,       /**< `header.NAME`: NAME is everything after the first dot */
    DP_FIELD_KEY,          /**< `key` */
    DP_FIELD_TIMESTAMP,    /**< `timestamp`: the record's own time, ms */
    DP_FIELD_EVENTTIME,    /**< `eventtime`: the event time the input assigned, ms */
} dp_fields_kind_t;

/** Payload formats. */
typedef enum dp_fields_format {
    DP_FIELDS_RAW = 0,  /**< opaque bytes: only `payload` itself is readable */
    DP_FIELDS_JSON = 1, /**< a JSON document */
} dp_fields_format_t;

/** A path table (heap; built at pipeline compile time, read-only afterwards). */
typedef struct dp_fields dp_fields_t;

/**
 * Per-record decode context, embedded by the caller. Holds the parsed payload
 * (the strings in decoded slots point into it) and a caller-provided arena
 * for the JSON text of container values. Call dp_fields_doc_reset once the
 * record's slots are no longer used.
 */
typedef struct dp_fields_doc {
    json_t *root; /**< parsed payload: owned (new reference) until reset; NULL if not parsed */
    char *arena;  /**< container encodings (borrowed from the caller) */
    size_t arena_cap;
    size_t arena_len;
    char err[DP_FIELDS_ERR_MAX]; /**< why decode failed, for the `weir.error` header */
} dp_fields_doc_t;

/**
 * A growable output buffer the caller reuses across records, so that a warm
 * buffer no longer allocates. Zero-initialise (optionally set `max`), use,
 * then dp_fields_buf_dispose.
 */
typedef struct dp_fields_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /**< growth bound in bytes; 0 means DP_FIELDS_BUF_MAX */
} dp_fields_buf_t;

/** Creates an empty table. Returns 0 or -ENOMEM. */
int dp_fields_new(dp_fields_t **out);

/** Frees a table (NULL is fine). */
void dp_fields_free(dp_fields_t *f);

/**
 * Checks a path's syntax: the schema's `^(payload|header|key|timestamp)([.][^.]+)*$`
 * plus `eventtime`; `header` needs a name; key, timestamp and eventtime have
 * no sub-fields; at most DP_FIELDS_SEG_MAX segments and DP_FIELDS_PATH_MAX
 * bytes; no NUL. Returns 0, or -EINVAL with a message in `err` (may be NULL).
 */
int dp_fields_check_path(const char *path, size_t len, char *err, size_t errlen);

/**
 * Returns the slot of `path` (`len` bytes), interning it if new: a slot index
 * >= 0, -EINVAL (bad syntax, see dp_fields_check_path), -ENOSPC (table full)
 * or -ENOMEM.
 */
int dp_fields_slot(dp_fields_t *f, const char *path, size_t len);

/** dp_fields_slot with the signature of dp_expr_resolve_cb (`ctx` is the dp_fields_t). */
int dp_fields_resolve(void *ctx, const char *path, size_t len);

/** Number of interned paths: a row decoded with this table needs that many slots. */
uint32_t dp_fields_count(const dp_fields_t *f);

/** The path of `slot` (borrowed, NUL-terminated), or NULL if out of range. */
const char *dp_fields_path(const dp_fields_t *f, uint32_t slot);

/** The kind of `slot`, or -EINVAL if out of range. */
int dp_fields_kind(const dp_fields_t *f, uint32_t slot);

/** Prepares a doc; `arena` (may be NULL) holds container encodings. */
void dp_fields_doc_init(dp_fields_doc_t *doc, void *arena, size_t arena_cap);

/** Releases the parsed payload and empties the arena; the doc can be reused. */
void dp_fields_doc_reset(dp_fields_doc_t *doc);

/**
 * Fills `row->slots[0..dp_fields_count(f))` from the row (the caller sets
 * `row->slots` and `row->nslots`). A JSON payload is parsed only if some path
 * reads it. Returns 0; -EBADMSG if the payload is not JSON (text in
 * `doc->err`, such as "payload is not JSON: line 1 column 7: ..."); -ENOSPC if
 * the row has too few slots. The doc must have been reset since the previous
 * decode.
 */
int dp_fields_decode(const dp_fields_t *f, dp_row_t *row, dp_fields_format_t format,
                     dp_fields_doc_t *doc);

/**
 * Applies a map's edits to a JSON payload and writes the result to `out`
 * (replacing its contents). Sets run in order (creating missing intermediate
 * objects; a MISSING value sets nothing; `payload` itself replaces the whole
 * document), then removes (absent paths are fine). A NULL or empty payload
 * starts as {}. Paths must be payload paths. Returns 0; -EINVAL (a non-payload
 * or malformed path, an ERR or non-finite value, removing `payload`);
 * -EBADMSG (the payload is not JSON); -ENOTDIR (a path crosses a value that is
 * not an object); -EILSEQ (a string is not UTF-8); -E2BIG (output beyond
 * out->max); -ENOMEM. On failure `err` (may be NULL) says why.
 */
int dp_fields_patch_json(const char *payload, size_t len, const char *const *set_paths,
                         const dp_val_t *set_vals, size_t nset, const char *const *remove_paths,
                         size_t nremove, dp_fields_buf_t *out, char *err, size_t errlen);

/**
 * Writes the flat object {names[i]: vals[i]} to `out` (replacing its
 * contents), skipping MISSING values. Returns 0; -EINVAL (an ERR value);
 * -EILSEQ (a name or string is not UTF-8); -E2BIG; -ENOMEM.
 */
int dp_fields_build_json(const char *const *names, const dp_val_t *vals, size_t n,
                         dp_fields_buf_t *out);

/** Frees the buffer's memory. */
void dp_fields_buf_dispose(dp_fields_buf_t *b);

#endif
