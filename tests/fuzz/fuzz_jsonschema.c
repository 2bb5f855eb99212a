/* SPDX-License-Identifier: Apache-2.0 */
/* Description: fuzzes the JSON Schema validator. Input "SCHEMA\0DOC" compiles
 * SCHEMA and validates DOC against it; input without a NUL is compiled as a
 * schema (and validated against itself), and validated as a document against
 * the pipeline schema and a fixed schema that uses every supported keyword. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wc_jsonschema.h"
#include "wc_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char every_keyword[] =
    "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"$id\": \"urn:fuzz\","
    " \"title\": \"t\", \"type\": [\"object\", \"array\", \"string\", \"number\", \"boolean\","
    " \"null\"],"
    " \"properties\": {"
    "  \"s\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 8,"
    "   \"pattern\": \"^[a-z]+(-[a-z0-9]+)*$\"},"
    "  \"n\": {\"type\": \"number\", \"minimum\": -10, \"exclusiveMaximum\": 1e6,"
    "   \"multipleOf\": 0.5},"
    "  \"i\": {\"type\": \"integer\", \"exclusiveMinimum\": 0, \"maximum\": 9007199254740993,"
    "   \"multipleOf\": 3},"
    "  \"e\": {\"enum\": [\"a\", 1, null, [1, 2], {\"k\": true}]},"
    "  \"c\": {\"const\": {\"x\": [1, 2.0]}},"
    "  \"arr\": {\"type\": \"array\", \"prefixItems\": [{\"type\": \"string\"},"
    "   {\"type\": \"integer\"}], \"items\": {\"$ref\": \"#\"}, \"minItems\": 1,"
    "   \"maxItems\": 40, \"uniqueItems\": true},"
    "  \"obj\": {\"type\": \"object\", \"propertyNames\": {\"pattern\": \"^[a-z]\","
    "   \"maxLength\": 16}, \"patternProperties\": {\"^x-\": {\"type\": \"integer\"}},"
    "   \"additionalProperties\": {\"$ref\": \"#/$defs/kind\"}, \"minProperties\": 1,"
    "   \"maxProperties\": 10, \"dependentRequired\": {\"a\": [\"b\"]}},"
    "  \"tree\": {\"$ref\": \"#\"},"
    "  \"closed\": {\"prefixItems\": [true], \"items\": false},"
    "  \"never\": false"
    " },"
    " \"dependentRequired\": {\"s\": [\"n\"]},"
    " \"anyOf\": [{\"not\": {\"type\": \"object\"}}, {\"$ref\": \"#/$defs/kind\"},"
    "  {\"required\": [\"tree\"]}, {\"maxProperties\": 3}],"
    " \"oneOf\": [{\"type\": \"array\"}, {\"not\": {\"type\": \"array\"}}],"
    " \"if\": {\"required\": [\"s\"]}, \"then\": {\"required\": [\"n\"]},"
    " \"else\": {\"maxProperties\": 50},"
    " \"$defs\": {\"kind\": {\"oneOf\": ["
    "  {\"type\": \"object\", \"properties\": {\"kind\": {\"const\": \"a\"},"
    "   \"v\": {\"type\": \"integer\"}}, \"required\": [\"kind\"]},"
    "  {\"type\": \"object\", \"properties\": {\"kind\": {\"const\": \"b\"},"
    "   \"v\": {\"type\": \"string\"}}, \"required\": [\"kind\"], \"additionalProperties\": false},"
    "  {\"$ref\": \"#/$defs/kindC\"}]},"
    "  \"kindC\": {\"properties\": {\"kind\": {\"const\": \"c\"}},"
    "   \"allOf\": [{\"required\": [\"w\"]}, {\"not\": {\"required\": [\"z\"]}}]}}}";

static wc_jsonschema_t *fixed[2];

static void init_fixed(void)
{
    char err[256];

    if (fixed[0] != NULL)
        return;
    if (wc_jsonschema_new(every_keyword, strlen(every_keyword), &fixed[0], err, sizeof(err)) != 0 ||
        wc_jsonschema_new(wc_spec_schema_json, wc_spec_schema_json_len, &fixed[1], err,
                          sizeof(err)) != 0)
        abort();
}

/* Checks the contract of wc_jsonschema_validate on one (schema, doc) pair:
 * the verdict does not depend on the buffer, and messages are terminated,
 * non-empty exactly when invalid, and prefixes of the untruncated message. */
static void check_validate(const wc_jsonschema_t *s, const json_t *doc, size_t small)
{
    char full[512], cut[64];
    int rc, rc_quiet, rc_cut;

    rc = wc_jsonschema_validate(s, doc, full, sizeof(full));
    rc_quiet = wc_jsonschema_validate(s, doc, NULL, 0);
    memset(cut, 'Z', sizeof(cut));
    rc_cut = wc_jsonschema_validate(s, doc, cut, small);
    if (rc != rc_quiet || rc != rc_cut || (rc != 0 && rc != -EINVAL))
        abort();
    if (strlen(full) >= sizeof(full) || strlen(cut) >= small || cut[small] != 'Z')
        abort();
    if ((rc == 0) != (full[0] == '\0'))
        abort();
    if (strncmp(cut, full, strlen(cut)) != 0)
        abort();
}

static void compile_and_validate(const char *schema, size_t schema_len, const json_t *doc,
                                 size_t small)
{
    wc_jsonschema_t *s = NULL;
    char err[256];
    int rc = wc_jsonschema_new(schema, schema_len, &s, err, sizeof(err));

    if (rc != 0) {
        if (s != NULL || err[0] == '\0' || strlen(err) >= sizeof(err) ||
            (rc != -EINVAL && rc != -ENOMEM))
            abort();
        return;
    }
    if (doc != NULL)
        check_validate(s, doc, small);
    wc_jsonschema_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t small = 1 + size % 48;
    json_error_t jerr;
    json_t *doc;

    init_fixed();
    if (nul != NULL) {
        size_t schema_len = (size_t)(nul - data);

        doc = json_loadb(text + schema_len + 1, size - schema_len - 1,
                         JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        compile_and_validate(text, schema_len, doc, small);
        json_decref(doc);
        return 0;
    }
    doc = json_loadb(text, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    compile_and_validate(text, size, doc, small);
    if (doc != NULL) {
        check_validate(fixed[0], doc, small);
        check_validate(fixed[1], doc, small);
    }
    json_decref(doc);
    return 0;
}
