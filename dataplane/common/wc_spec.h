/* SPDX-License-Identifier: Apache-2.0 */
/* The pipeline spec (docs/architecture.md section 3): loading, validation
 * against the embedded JSON Schema (docs/pipeline-spec.schema.json), and the
 * semantic checks the schema cannot express. */
#ifndef WC_SPEC_H
#define WC_SPEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/** The pipeline spec format version this build executes. */
#define WC_SPEC_VERSION 1

/** The schema text, embedded at build time from docs/ (NUL-terminated). */
extern const char wc_spec_schema_json[];
/** Length of wc_spec_schema_json, without the NUL. */
extern const size_t wc_spec_schema_json_len;

/**
 * Validates a parsed spec (borrowed): schema first, then semantics (unique
 * names, references that resolve, an acyclic operator graph, every operator
 * and input used, partition assignments in range). Returns 0, or -EINVAL with
 * a message naming the JSON pointer of the offending value in err.
 */
int wc_spec_validate(const json_t *spec, char *err, size_t errlen);

/**
 * Reads, parses and validates a spec file. On success *out is a new
 * reference. Returns 0, -errno for I/O failures, or -EINVAL (message in err,
 * prefixed with the path, and line:column for JSON syntax errors).
 */
int wc_spec_load_file(const char *path, json_t **out, char *err, size_t errlen);

/** As wc_spec_load_file, from a buffer; `origin` names it in messages. */
int wc_spec_load_buffer(const char *buf, size_t len, const char *origin, json_t **out, char *err,
                        size_t errlen);

/**
 * Returns a new reference to the operator ids of a validated spec in
 * topological order (inputs first), as a JSON array of strings, or NULL if
 * the spec is not valid.
 */
json_t *wc_spec_topo_order(const json_t *spec);

/** Writes a human-readable execution plan of a validated spec to f. */
void wc_spec_print_plan(const json_t *spec, FILE *f);

/**
 * The `validate SPEC` subcommand shared by weir-dataplane and weirctl: prints
 * the plan to out, or the error to errf. Returns a process exit code (0, or
 * 65 for an invalid spec).
 */
int wc_spec_validate_cli(const char *path, FILE *out, FILE *errf);

#endif
