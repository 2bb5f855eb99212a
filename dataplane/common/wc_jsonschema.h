/* SPDX-License-Identifier: Apache-2.0 */
/* JSON Schema validation (a subset of draft 2020-12) over jansson. Used to check
 * pipeline specs against docs/pipeline-spec.schema.json; the supported keywords,
 * error format and limits are described in docs/internals/jsonschema.md. */
#ifndef WC_JSONSCHEMA_H
#define WC_JSONSCHEMA_H

#include <jansson.h>
#include <stddef.h>

/** Deepest document nesting validated; deeper values fail with an error. */
#define WC_JSONSCHEMA_MAX_DEPTH 128

/** Deepest schema nesting accepted by wc_jsonschema_new. */
#define WC_JSONSCHEMA_MAX_SCHEMA_DEPTH 128

/**
 * Bound on the work of one validation, in subschema evaluations. Only
 * pathological schemas (deeply nested anyOf/oneOf that try every branch) get
 * near it; reaching it fails the validation with an error.
 */
#define WC_JSONSCHEMA_MAX_STEPS 4000000UL

/** A compiled schema. Immutable once built, so it may be shared by threads. */
typedef struct wc_jsonschema wc_jsonschema_t;

/**
 * Compiles a schema from JSON text (len bytes, need not be NUL-terminated).
 * Patterns are compiled and $refs resolved here, once. Fails with -EINVAL and
 * a message "<schema-pointer>: <message>" (e.g. "#/properties/a: unknown
 * keyword \"format\"") in err on invalid JSON, duplicate object keys, unknown
 * keywords, malformed keyword values, unresolvable or cyclic $ref, or a
 * pattern that is not supported POSIX ERE. Returns -ENOMEM if out of memory.
 * On success *out must be released with wc_jsonschema_free.
 */
int wc_jsonschema_new(const char *text, size_t len, wc_jsonschema_t **out, char *err,
                      size_t errlen);

/** Releases a compiled schema; NULL is a no-op. */
void wc_jsonschema_free(wc_jsonschema_t *s);

/**
 * Validates doc (borrowed). Returns 0 if valid (err, if errlen > 0, is set to
 * ""); -EINVAL if not, with the first, most specific error written to err as
 * "<json-pointer>: <message>", for example
 * "/inputs/0/watermark/maxOutOfOrdernessMs: must be >= 0, got -5",
 * "/operators/2: unknown property \"windw\"" or
 * "/: missing required property \"inputs\"". The root pointer is "/". err is
 * always NUL-terminated when errlen > 0 and truncated on a UTF-8 boundary.
 * err may be NULL when errlen is 0, which skips building messages.
 */
int wc_jsonschema_validate(const wc_jsonschema_t *s, const json_t *doc, char *err, size_t errlen);

#endif
