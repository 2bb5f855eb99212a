/* SPDX-License-Identifier: Apache-2.0 */
/* Description: the JSON Schema validator: every supported keyword (valid and
 * invalid cases, exact messages), $ref resolution and cycles, discriminated
 * oneOf errors, compile-time rejections, limits and error-buffer truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wc_jsonschema.h"

static wc_jsonschema_t *compile_ok(const char *schema)
{
    wc_jsonschema_t *s = NULL;
    char err[512] = "x";

    if (wc_jsonschema_new(schema, strlen(schema), &s, err, sizeof(err)) != 0)
        fail_msg("schema %s does not compile: %s", schema, err);
    assert_string_equal(err, "");
    return s;
}

static json_t *parse(const char *doc)
{
    json_error_t jerr;
    json_t *v = json_loads(doc, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);

    if (v == NULL)
        fail_msg("test document %s does not parse: %s", doc, jerr.text);
    return v;
}

/* Validates doc against schema; the message (or "") goes to err. */
static int check(const char *schema, const char *doc, char *err, size_t errlen)
{
    wc_jsonschema_t *s = compile_ok(schema);
    json_t *v = parse(doc);
    int rc = wc_jsonschema_validate(s, v, err, errlen);

    json_decref(v);
    wc_jsonschema_free(s);
    return rc;
}

#define VALID(schema, doc)                                                                         \
    do {                                                                                           \
        char err_[512];                                                                            \
        if (check(schema, doc, err_, sizeof(err_)) != 0)                                           \
            fail_msg("%s should be valid against %s, got: %s", doc, schema, err_);                 \
        assert_string_equal(err_, "");                                                             \
    } while (0)

#define INVALID(schema, doc, want)                                                                 \
    do {                                                                                           \
        char err_[512];                                                                            \
        if (check(schema, doc, err_, sizeof(err_)) != -EINVAL)                                     \
            fail_msg("%s should be invalid against %s", doc, schema);                              \
        assert_string_equal(err_, want);                                                           \
    } while (0)

#define COMPILE_ERROR(schema, want)                                                                \
    do {                                                                                           \
        wc_jsonschema_t *s_ = NULL;                                                                \
        char err_[512] = "";                                                                       \
        const char *schema_ = (schema);                                                            \
        if (wc_jsonschema_new(schema_, strlen(schema_), &s_, err_, sizeof(err_)) != -EINVAL)       \
            fail_msg("schema %s should not compile", schema_);                                     \
        assert_null(s_);                                                                           \
        if (strstr(err_, want) == NULL)                                                            \
            fail_msg("compile error \"%s\" lacks \"%s\"", err_, want);                             \
    } while (0)

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_type(void **state)
{
    VALID("{\"type\": \"object\"}", "{}");
    VALID("{\"type\": \"array\"}", "[]");
    VALID("{\"type\": \"string\"}", "\"x\"");
    VALID("{\"type\": \"boolean\"}", "false");
    VALID("{\"type\": \"null\"}", "null");
    VALID("{\"type\": \"number\"}", "1");
    VALID("{\"type\": \"number\"}", "1.5");
    VALID("{\"type\": \"integer\"}", "-7");
    /* An integer is any number without a fractional part. */
    VALID("{\"type\": \"integer\"}", "5.0");
    VALID("{\"type\": \"integer\"}", "1e300");
    INVALID("{\"type\": \"integer\"}", "5.5", "/: must be of type integer, got number");
    INVALID("{\"type\": \"object\"}", "[]", "/: must be of type object, got array");
    INVALID("{\"type\": \"boolean\"}", "0", "/: must be of type boolean, got integer");
    INVALID("{\"type\": \"null\"}", "false", "/: must be of type null, got boolean");
    INVALID("{\"type\": \"string\"}", "null", "/: must be of type string, got null");
    VALID("{\"type\": [\"string\", \"null\"]}", "null");
    INVALID("{\"type\": [\"null\", \"string\"]}", "1",
            "/: must be of type string or null, got integer");
    INVALID("{\"type\": [\"null\", \"string\", \"object\"]}", "[1]",
            "/: must be of type object, string or null, got array");
    VALID("{}", "{\"anything\": [1, 2]}");
}

static void test_enum_const(void **state)
{
    VALID("{\"enum\": [\"a\", 1, null]}", "null");
    VALID("{\"enum\": [\"a\", 1, null]}", "1.0");
    INVALID("{\"enum\": [\"a\", 1, null]}", "\"b\"", "/: must be one of \"a\", 1, null");
    INVALID("{\"enum\": [[1, 2], {\"k\": true}]}", "[2, 1]",
            "/: must be one of [1,2], {\"k\":true}");
    VALID("{\"const\": 1}", "1.0");
    VALID("{\"const\": {\"a\": 1, \"b\": [true]}}", "{\"b\": [true], \"a\": 1}");
    INVALID("{\"const\": {\"a\": 1}}", "{\"a\": 1, \"b\": 2}", "/: must be {\"a\":1}");
    INVALID("{\"const\": \"filter\"}", "\"map\"", "/: must be \"filter\"");
    VALID("{\"const\": null}", "null");
    INVALID("{\"const\": null}", "false", "/: must be null");
    INVALID("{\"const\": false}", "0", "/: must be false");
    /* Long enums are cut after 16 distinct values. */
    INVALID("{\"enum\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18]}", "0",
            "/: must be one of 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, ...");
}

static void test_object_keywords(void **state)
{
    static const char schema[] =
        "{\"type\": \"object\", \"required\": [\"a\"], \"additionalProperties\": false,"
        " \"properties\": {\"a\": {\"type\": \"object\", \"properties\":"
        " {\"b\": {\"type\": \"integer\"}}}, \"c\": true}}";

    VALID(schema, "{\"a\": {\"b\": 1, \"other\": 2}, \"c\": [null]}");
    INVALID(schema, "{\"c\": 1}", "/: missing required property \"a\"");
    INVALID(schema, "{\"a\": {\"b\": \"x\"}}", "/a/b: must be of type integer, got string");
    INVALID(schema, "{\"a\": {}, \"windw\": 1}", "/: unknown property \"windw\"");
    /* The first problem in document order is the one reported. */
    INVALID(schema, "{\"zz\": 1, \"a\": {\"b\": \"x\"}}", "/: unknown property \"zz\"");
    INVALID(schema, "{\"a\": {\"b\": \"x\"}, \"zz\": 1}",
            "/a/b: must be of type integer, got string");
    /* Keys are quoted JSON-style in messages and escaped in pointers. */
    INVALID(schema, "{\"a\": {}, \"q\\\"x\": 1}", "/: unknown property \"q\\\"x\"");
    INVALID("{\"properties\": {\"a/b~c\": {\"type\": \"string\"}}}", "{\"a/b~c\": 1}",
            "/a~1b~0c: must be of type string, got integer");

    VALID("{\"additionalProperties\": {\"type\": \"string\"}}", "{\"x\": \"1\"}");
    INVALID("{\"additionalProperties\": {\"type\": \"string\"}}", "{\"x\": 1}",
            "/x: must be of type string, got integer");
    /* Object keywords ignore other types. */
    VALID("{\"required\": [\"a\"], \"additionalProperties\": false}", "[1]");

    VALID("{\"minProperties\": 1, \"maxProperties\": 2}", "{\"a\": 1}");
    INVALID("{\"minProperties\": 1}", "{}", "/: must have at least 1 properties, got 0");
    INVALID("{\"maxProperties\": 1}", "{\"a\": 1, \"b\": 2}",
            "/: must have at most 1 properties, got 2");
}

static void test_pattern_properties(void **state)
{
    static const char schema[] =
        "{\"properties\": {\"id\": {\"type\": \"string\"}},"
        " \"patternProperties\": {\"^x-\": {\"type\": \"integer\"}, \"num$\": {\"minimum\": 0}},"
        " \"additionalProperties\": false}";

    VALID(schema, "{\"id\": \"a\", \"x-count\": 3, \"x-num\": 0}");
    INVALID(schema, "{\"x-count\": \"3\"}", "/x-count: must be of type integer, got string");
    /* A key matching two patterns must satisfy both. */
    INVALID(schema, "{\"x-num\": -1}", "/x-num: must be >= 0, got -1");
    INVALID(schema, "{\"y\": 1}", "/: unknown property \"y\"");
}

static void test_property_names(void **state)
{
    static const char schema[] =
        "{\"propertyNames\": {\"pattern\": \"^[a-z]+$\", \"maxLength\": 3}}";

    VALID(schema, "{\"ab\": 1, \"xyz\": 2}");
    INVALID(schema, "{\"ab\": 1, \"Bad\": 2}",
            "/: invalid property name \"Bad\": must match pattern \"^[a-z]+$\"");
    INVALID(schema, "{\"abcd\": 1}",
            "/: invalid property name \"abcd\": must be at most 3 characters long, got 4");
    INVALID("{\"properties\": {\"m\": {\"propertyNames\": {\"enum\": [\"k\"]}}}}",
            "{\"m\": {\"z\": 1}}", "/m: invalid property name \"z\": must be \"k\"");
}

static void test_dependent_required(void **state)
{
    static const char schema[] = "{\"dependentRequired\": {\"slideMs\": [\"sizeMs\", \"kind\"]}}";

    VALID(schema, "{\"sizeMs\": 1}");
    VALID(schema, "{\"slideMs\": 1, \"sizeMs\": 1, \"kind\": 2}");
    INVALID(schema, "{\"slideMs\": 1, \"sizeMs\": 1}",
            "/: missing property \"kind\", required when \"slideMs\" is present");
}

static void test_array_keywords(void **state)
{
    VALID("{\"items\": {\"type\": \"integer\"}}", "[1, 2, 3]");
    INVALID("{\"items\": {\"type\": \"integer\"}}", "[1, \"2\"]",
            "/1: must be of type integer, got string");
    VALID("{\"prefixItems\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}",
          "[\"a\", 1, null, {}]");
    INVALID("{\"prefixItems\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}",
            "[\"a\", \"b\"]", "/1: must be of type integer, got string");
    VALID("{\"prefixItems\": [{\"type\": \"string\"}], \"items\": {\"type\": \"null\"}}",
          "[\"a\", null, null]");
    INVALID("{\"prefixItems\": [{\"type\": \"string\"}], \"items\": {\"type\": \"null\"}}",
            "[\"a\", null, 0]", "/2: must be of type null, got integer");
    INVALID("{\"prefixItems\": [true, true], \"items\": false}", "[1, 2, 3]",
            "/: must have at most 2 items, got 3");
    VALID("{\"prefixItems\": [true, true], \"items\": false}", "[1]");

    VALID("{\"minItems\": 1, \"maxItems\": 2}", "[1, 2]");
    INVALID("{\"minItems\": 1}", "[]", "/: must have at least 1 items, got 0");
    INVALID("{\"maxItems\": 2}", "[1, 2, 3]", "/: must have at most 2 items, got 3");
    VALID("{\"minItems\": 5}", "\"not an array\"");
}

static void test_unique_items(void **state)
{
    char doc[16384];
    size_t n = 0;

    VALID("{\"uniqueItems\": true}", "[1, \"1\", [1], {\"a\": 1}, true, null]");
    VALID("{\"uniqueItems\": false}", "[1, 1]");
    INVALID("{\"uniqueItems\": true}", "[1, 2, 3, 1.0]",
            "/: must have unique items, but items 0 and 3 are equal");
    INVALID("{\"uniqueItems\": true}", "[{\"a\": 1, \"b\": 2}, {\"b\": 2, \"a\": 1}]",
            "/: must have unique items, but items 0 and 1 are equal");
    /* Long arrays take the hashing path; the reported pair is the same. */
    n += (size_t)snprintf(doc + n, sizeof(doc) - n, "[");
    for (int i = 0; i < 200; i++)
        n +=
            (size_t)snprintf(doc + n, sizeof(doc) - n, "%s{\"v\": [%d, %d.5]}", i ? "," : "", i, i);
    snprintf(doc + n, sizeof(doc) - n, "]");
    VALID("{\"uniqueItems\": true}", doc);
    snprintf(doc + n, sizeof(doc) - n, ", {\"v\": [150.0, 150.5]}, {\"v\": [7, 7.5]}]");
    INVALID("{\"uniqueItems\": true}", doc,
            "/: must have unique items, but items 150 and 200 are equal");
}

static void test_strings(void **state)
{
    /* Lengths count code points: "héllo" is 6 bytes, 5 characters. */
    VALID("{\"minLength\": 5, \"maxLength\": 5}", "\"h\\u00e9llo\"");
    VALID("{\"maxLength\": 1}", "\"\\ud83d\\ude00\"");
    INVALID("{\"minLength\": 6}", "\"h\\u00e9llo\"",
            "/: must be at least 6 characters long, got 5");
    INVALID("{\"maxLength\": 2}", "\"abc\"", "/: must be at most 2 characters long, got 3");
    /* pattern searches (unanchored), as in JSON Schema. */
    VALID("{\"pattern\": \"b+\"}", "\"abbc\"");
    VALID("{\"pattern\": \"^[0-9]+$\"}", "\"123\"");
    INVALID("{\"pattern\": \"^[0-9]+$\"}", "\"12a\"", "/: must match pattern \"^[0-9]+$\"");
    /* The whole string is matched, even past an embedded NUL. */
    INVALID("{\"pattern\": \"^a$\"}", "\"a\\u0000b\"", "/: must match pattern \"^a$\"");
    VALID("{\"pattern\": \"b$\"}", "\"a\\u0000b\"");
    VALID("{\"pattern\": \"^x\", \"minLength\": 9}", "7");
}

static void test_numbers(void **state)
{
    static const char schema[] = "{\"minimum\": 0, \"maximum\": 10}";

    VALID(schema, "0");
    VALID(schema, "10.0");
    INVALID(schema, "-5", "/: must be >= 0, got -5");
    INVALID(schema, "10.5", "/: must be <= 10, got 10.5");
    INVALID("{\"minimum\": 0.1}", "0.05", "/: must be >= 0.1, got 0.05");
    VALID("{\"exclusiveMinimum\": 0, \"exclusiveMaximum\": 1}", "0.5");
    INVALID("{\"exclusiveMinimum\": 0}", "0", "/: must be > 0, got 0");
    INVALID("{\"exclusiveMaximum\": 1}", "1.0", "/: must be < 1, got 1");
    /* Integer/real comparisons are exact beyond 2^53. */
    INVALID("{\"maximum\": 9007199254740992.0}", "9007199254740993",
            "/: must be <= 9007199254740992, got 9007199254740993");
    VALID("{\"maximum\": 9223372036854775807}", "9223372036854775807");
    VALID("{\"minimum\": -1e300}", "-9223372036854775808");
    VALID("{\"multipleOf\": 5}", "-15");
    INVALID("{\"multipleOf\": 5}", "7", "/: must be a multiple of 5, got 7");
    VALID("{\"multipleOf\": 0.1}", "0.3");
    VALID("{\"multipleOf\": 2}", "4.0");
    INVALID("{\"multipleOf\": 0.1}", "0.35", "/: must be a multiple of 0.1, got 0.35");
    INVALID("{\"multipleOf\": 1e-300}", "1e300", "/: must be a multiple of 1e-300, got 1e+300");
    VALID("{\"minimum\": 100}", "\"strings are not numbers\"");
}

static void test_combinators(void **state)
{
    static const char any[] = "{\"anyOf\": [{\"type\": \"string\"}, {\"type\": \"object\","
                              " \"properties\": {\"a\": {\"type\": \"integer\"}}}]}";
    static const char one[] = "{\"oneOf\": [{\"minimum\": 0}, {\"maximum\": 10}]}";

    VALID("{\"allOf\": [{\"type\": \"integer\"}, {\"minimum\": 1}]}", "3");
    INVALID("{\"allOf\": [{\"type\": \"integer\"}, {\"minimum\": 1}]}", "0",
            "/: must be >= 1, got 0");
    VALID(any, "\"s\"");
    VALID(any, "{\"a\": 1}");
    /* The closest branch is the one whose error is deepest. */
    INVALID(any, "{\"a\": \"x\"}",
            "/: matches none of the 2 alternatives; closest: /a: must be of type integer, got "
            "string");
    INVALID(any, "1",
            "/: matches none of the 2 alternatives; closest: must be of type string, got "
            "integer");
    VALID(one, "-1");
    VALID(one, "11");
    INVALID(one, "5", "/: must match exactly one of the 2 alternatives, but matches 0 and 1");
    INVALID("{\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"null\"}]}", "1",
            "/: matches none of the 2 alternatives; closest: must be of type string, got integer");
    VALID("{\"not\": {\"type\": \"string\"}}", "1");
    INVALID("{\"not\": {\"type\": \"string\"}}", "\"s\"",
            "/: must not match the schema in \"not\"");
    /* Nested anyOf quote the innermost, most specific error, not each level. */
    INVALID("{\"anyOf\": [{\"type\": \"integer\"}, {\"type\": \"array\", \"items\": {\"$ref\": "
            "\"#\"}}]}",
            "[1, [2, \"x\"]]",
            "/: matches none of the 2 alternatives; closest: /1/1: must be of type integer, got "
            "string");
    /* Nested: the combined message keeps the deepest pointer. */
    INVALID("{\"properties\": {\"x\": {\"anyOf\": [{\"const\": 1}, {\"const\": 2}]}}}",
            "{\"x\": 3}", "/x: matches none of the 2 alternatives; closest: must be 1");
}

static void test_if_then_else(void **state)
{
    static const char schema[] =
        "{\"if\": {\"properties\": {\"source\": {\"enum\": [\"payload\", \"header\"]}}},"
        " \"then\": {\"required\": [\"field\"]}, \"else\": {\"not\": {\"required\": [\"field\"]}}}";

    VALID(schema, "{\"source\": \"payload\", \"field\": \"payload.ts\"}");
    VALID(schema, "{\"source\": \"processing\"}");
    INVALID(schema, "{\"source\": \"header\"}", "/: missing required property \"field\"");
    INVALID(schema, "{\"source\": \"timestamp\", \"field\": 1}",
            "/: must not match the schema in \"not\"");
    /* then/else without if are ignored. */
    VALID("{\"then\": false, \"else\": false}", "1");
    VALID("{\"if\": true}", "1");
}

static void test_discriminated_oneof(void **state)
{
    static const char schema[] =
        "{\"type\": \"object\", \"required\": [\"type\"], \"oneOf\": ["
        " {\"$ref\": \"#/$defs/filter\"}, {\"$ref\": \"#/$defs/map\"},"
        " {\"type\": \"object\", \"properties\": {\"type\": {\"const\": \"udf\"}}}],"
        " \"$defs\": {"
        "  \"filter\": {\"additionalProperties\": false, \"required\": [\"expr\"],"
        "   \"properties\": {\"type\": {\"const\": \"filter\"}, \"expr\": {\"type\": \"string\"}}},"
        "  \"map\": {\"additionalProperties\": false,"
        "   \"properties\": {\"type\": {\"const\": \"map\"}, \"set\": {\"type\": \"object\"}}}}}";
    static const char any[] =
        "{\"anyOf\": [{\"properties\": {\"k\": {\"const\": 1}, \"v\": {\"type\": \"string\"}}},"
        " {\"properties\": {\"k\": {\"const\": 2}, \"v\": {\"type\": \"integer\"}}}]}";

    VALID(schema, "{\"type\": \"filter\", \"expr\": \"true\"}");
    VALID(schema, "{\"type\": \"map\", \"set\": {}}");
    VALID(schema, "{\"type\": \"udf\", \"anything\": 1}");
    INVALID(schema, "{\"type\": \"filtr\"}", "/type: must be one of \"filter\", \"map\", \"udf\"");
    INVALID(schema, "{\"type\": 3}", "/type: must be one of \"filter\", \"map\", \"udf\"");
    /* The branch the discriminator selects gives the precise error. */
    INVALID(schema, "{\"type\": \"filter\", \"expr\": \"x\", \"windw\": 1}",
            "/: unknown property \"windw\"");
    INVALID(schema, "{\"type\": \"filter\", \"expr\": 1}",
            "/expr: must be of type string, got integer");
    VALID(schema, "{\"type\": \"map\"}");
    INVALID(schema, "{\"type\": \"map\", \"set\": 1}", "/set: must be of type object, got integer");
    /* Without the discriminating property, the usual outer checks apply. */
    INVALID(schema, "{\"expr\": \"x\"}", "/: missing required property \"type\"");
    VALID(any, "{\"k\": 2, \"v\": 1}");
    INVALID(any, "{\"k\": 2, \"v\": \"s\"}", "/v: must be of type integer, got string");
    INVALID(any, "{\"k\": 3}", "/k: must be one of 1, 2");
    /* Not an object: the branches are tried in turn. */
    VALID(any, "[]");
}

static void test_refs(void **state)
{
    static const char tree[] =
        "{\"type\": \"object\", \"required\": [\"v\"], \"additionalProperties\": false,"
        " \"properties\": {\"v\": {\"$ref\": \"#/$defs/val\"},"
        "  \"kids\": {\"type\": \"array\", \"items\": {\"$ref\": \"#\"}}},"
        " \"$defs\": {\"val\": {\"$ref\": \"#/$defs/a~1b~0c\"}, \"a/b~c\": {\"type\": "
        "\"integer\"}}}";

    VALID(tree, "{\"v\": 1, \"kids\": [{\"v\": 2}, {\"v\": 3, \"kids\": [{\"v\": 4}]}]}");
    INVALID(tree, "{\"v\": 1, \"kids\": [{\"v\": 2}, {\"v\": 3, \"kids\": [{\"v\": \"4\"}]}]}",
            "/kids/1/kids/0/v: must be of type integer, got string");
    INVALID(tree, "{\"v\": 1, \"kids\": [{}]}", "/kids/0: missing required property \"v\"");
    /* $ref sits alongside other keywords; both apply. */
    INVALID("{\"$defs\": {\"n\": {\"minimum\": 0}}, \"$ref\": \"#/$defs/n\", \"maximum\": 5}", "6",
            "/: must be <= 5, got 6");
    COMPILE_ERROR("{\"$ref\": \"#/$defs/missing\"}",
                  "#/$ref: unresolvable $ref \"#/$defs/missing\"");
    COMPILE_ERROR("{\"$ref\": \"other.json#/x\"}", "#/$ref: unsupported $ref \"other.json#/x\"");
    COMPILE_ERROR("{\"properties\": {\"a\": {}}, \"$ref\": \"#/properties/a\"}",
                  "unsupported $ref");
    COMPILE_ERROR("{\"$defs\": {\"a\": {\"$defs\": {\"b\": {}}}}, \"$ref\": \"#/$defs/a/$defs/b\"}",
                  "unsupported $ref");
    /* Nested $defs compile (and are checked) but only root $defs resolve. */
    COMPILE_ERROR("{\"$defs\": {\"a\": {\"$defs\": {\"b\": {\"formt\": 1}}}}}",
                  "#/$defs/a/$defs/b: unknown keyword \"formt\"");
    /* Cycles that never reach a new value are rejected at compile time. */
    COMPILE_ERROR("{\"$ref\": \"#\"}", "$ref cycle");
    COMPILE_ERROR("{\"$defs\": {\"a\": {\"$ref\": \"#/$defs/b\"}, \"b\": {\"allOf\": [{\"$ref\":"
                  " \"#/$defs/a\"}]}}}",
                  "$ref cycle");
    COMPILE_ERROR("{\"anyOf\": [{\"not\": {\"$ref\": \"#\"}}]}", "$ref cycle");
    COMPILE_ERROR("{\"if\": {\"$ref\": \"#\"}}", "$ref cycle");
    /* Through a value (properties, items) recursion is fine. */
    VALID(
        "{\"properties\": {\"a\": {\"$ref\": \"#\"}}, \"additionalProperties\": {\"$ref\": \"#\"}}",
        "{\"a\": {\"a\": {\"b\": {}}}}");
}

static void test_long_ref_chain(void **state)
{
    char *schema = malloc(64 * 1024);
    size_t n = 0;

    assert_non_null(schema);
    n += (size_t)sprintf(schema + n, "{\"$ref\": \"#/$defs/d0\", \"$defs\": {");
    for (int i = 0; i < 300; i++)
        n += (size_t)sprintf(schema + n, "\"d%d\": {\"$ref\": \"#/$defs/d%d\"}, ", i, i + 1);
    sprintf(schema + n, "\"d300\": {\"type\": \"integer\"}}}");
    COMPILE_ERROR(schema, "longer than 256");
    free(schema);
}

static void test_boolean_schemas(void **state)
{
    VALID("true", "{\"x\": 1}");
    INVALID("false", "1", "/: no value is allowed here");
    VALID("{\"properties\": {\"x\": false}}", "{\"y\": 1}");
    INVALID("{\"properties\": {\"x\": false}}", "{\"x\": 1}", "/x: no value is allowed here");
    INVALID("{\"items\": {\"not\": true}}", "[1]", "/0: must not match the schema in \"not\"");
}

static void test_annotations(void **state)
{
    VALID("{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"$id\": \"urn:x\","
          " \"title\": \"t\", \"description\": \"d\", \"$comment\": \"c\", \"default\": 1,"
          " \"examples\": [1], \"deprecated\": false, \"readOnly\": true, \"writeOnly\": false,"
          " \"properties\": {\"a\": {\"default\": {\"unknownKeywordsInValues\": 1}}}}",
          "{\"a\": 2}");
}

static void test_compile_errors(void **state)
{
    COMPILE_ERROR("{", "schema is not valid JSON: line 1");
    COMPILE_ERROR("{\"type\": \"string\", \"type\": \"integer\"}", "duplicate");
    COMPILE_ERROR("{\"properties\": {\"a\": {\"format\": \"uri\"}}}",
                  "#/properties/a: unknown keyword \"format\"");
    COMPILE_ERROR("{\"items\": [{}]}", "#/items: a schema must be an object or a boolean");
    COMPILE_ERROR("{\"unevaluatedProperties\": false}",
                  "#: unknown keyword \"unevaluatedProperties\"");
    COMPILE_ERROR("{\"dependentSchemas\": {}}", "unknown keyword \"dependentSchemas\"");
    COMPILE_ERROR("{\"$schema\": \"http://json-schema.org/draft-07/schema#\"}", "#/$schema: only");
    COMPILE_ERROR("{\"properties\": {\"a\": {\"$id\": \"x\"}}}", "#/properties/a/$id: $id is only");
    COMPILE_ERROR("{\"type\": \"int\"}", "#/type: unknown type \"int\"");
    COMPILE_ERROR("{\"type\": []}", "#/type: must not be an empty array");
    COMPILE_ERROR("{\"type\": [\"string\", \"string\"]}", "listed twice");
    COMPILE_ERROR("{\"minLength\": -1}", "#/minLength: must be a non-negative integer");
    COMPILE_ERROR("{\"maxItems\": 1.5}", "#/maxItems: must be a non-negative integer");
    COMPILE_ERROR("{\"multipleOf\": 0}", "#/multipleOf: must be a number greater than 0");
    COMPILE_ERROR("{\"minimum\": \"0\"}", "#/minimum: must be a number");
    COMPILE_ERROR("{\"required\": [\"a\", 1]}", "#/required: must be an array of strings");
    COMPILE_ERROR("{\"dependentRequired\": {\"a\": \"b\"}}", "must be an object of string arrays");
    COMPILE_ERROR("{\"allOf\": []}", "#/allOf: must be a non-empty array of schemas");
    COMPILE_ERROR("{\"oneOf\": [{}, 3]}", "#/oneOf/1: a schema must be an object or a boolean");
    COMPILE_ERROR("{\"enum\": 3}", "#/enum: must be an array");
    COMPILE_ERROR("{\"uniqueItems\": 1}", "#/uniqueItems: must be a boolean");
    COMPILE_ERROR("{\"title\": 1}", "#/title: must be a string");
    COMPILE_ERROR("3", "#: a schema must be an object or a boolean");
    /* Non-NUL-terminated text: only len bytes are read. */
    {
        wc_jsonschema_t *s = NULL;
        char err[128];

        assert_int_equal(wc_jsonschema_new("{}garbage", 2, &s, err, sizeof(err)), 0);
        wc_jsonschema_free(s);
    }
    wc_jsonschema_free(NULL);
}

static void test_bad_patterns(void **state)
{
    COMPILE_ERROR("{\"pattern\": \"(\"}", "#/pattern: invalid pattern \"(\"");
    COMPILE_ERROR("{\"pattern\": \"a[\"}", "unterminated bracket expression");
    COMPILE_ERROR("{\"pattern\": \"^\\\\d+$\"}",
                  "#/pattern: unsupported pattern \"^\\\\d+$\": escapes");
    COMPILE_ERROR("{\"pattern\": \"(a)\\\\1\"}", "not POSIX ERE");
    COMPILE_ERROR("{\"pattern\": \"[\\\\]]\"}", "backslash inside [...]");
    COMPILE_ERROR("{\"pattern\": \"(?=x)\"}", "(?...) groups are not POSIX ERE");
    COMPILE_ERROR("{\"pattern\": \"a{1000}\"}", "repetition bounds above 255");
    /* glibc's regcomp makes a copy per repetition: bound the compiled size. */
    COMPILE_ERROR("{\"pattern\": \"(abcdefghij){60}(abcdefghij){60}\"}", "pattern too complex");
    COMPILE_ERROR("{\"pattern\": \"((a{100}){100}){100}\"}", "a repetition of a large group");
    /* Adjacent repetitions are undefined in ERE (and lazy a+? is ECMA only);
     * glibc also takes seconds to compile "a++*+++++" (found by fuzzing). */
    COMPILE_ERROR("{\"pattern\": \"^a+?$\"}", "adjacent repetition operators");
    COMPILE_ERROR("{\"pattern\": \"^a++*+++++++++\"}", "adjacent repetition operators");
    COMPILE_ERROR("{\"pattern\": \"((a*){0,255})+\"}", "a repetition of a large group");
    COMPILE_ERROR("{\"pattern\": \"((((a*)*)*)*)\"}", "repetition operators nested too deeply");
    COMPILE_ERROR("{\"pattern\": \"a\\u0000b\"}", "contains a NUL character");
    COMPILE_ERROR("{\"patternProperties\": {\"x(\": true}}",
                  "#/patternProperties/x(: invalid pattern");
    /* ERE features that are supported. */
    VALID("{\"pattern\": \"^(a|b){2,3}[[:digit:]]\\\\.[^.]?$\"}", "\"ab7.\"");
    VALID("{\"pattern\": \"^[]a-]+$\"}", "\"]-a\"");
    VALID("{\"pattern\": \"^x{2,}$\"}", "\"xxxx\"");
    VALID("{\"pattern\": \"^([0-9]+[.]){3}[0-9]+$\"}", "\"10.0.0.1\"");
    VALID("{\"pattern\": \"^[a-z]+(-[a-z0-9]+)*([.][a-z]+(-[a-z0-9]+)*)*$\"}", "\"a-1.b-2\"");
}

static json_t *nested_arrays(int depth)
{
    json_t *v = json_integer(1);

    for (int i = 0; i < depth; i++) {
        json_t *a = json_array();

        json_array_append_new(a, v);
        v = a;
    }
    return v;
}

static void test_depth_limits(void **state)
{
    wc_jsonschema_t *s = compile_ok("{\"anyOf\": [{\"type\": \"integer\"},"
                                    " {\"type\": \"array\", \"items\": {\"$ref\": \"#\"}}]}");
    char err[512];
    json_t *v;

    /* 128 levels of nesting are fine ... */
    v = nested_arrays(WC_JSONSCHEMA_MAX_DEPTH);
    assert_int_equal(wc_jsonschema_validate(s, v, err, sizeof(err)), 0);
    json_decref(v);
    /* ... deeper is an error, even under anyOf, not a stack overflow. */
    v = nested_arrays(WC_JSONSCHEMA_MAX_DEPTH + 1);
    assert_int_equal(wc_jsonschema_validate(s, v, err, sizeof(err)), -EINVAL);
    if (strstr(err, "nesting deeper than 128 levels") == NULL)
        fail_msg("unexpected error %s", err);
    assert_int_equal(strncmp(err, "/0/0/0/0/", 9), 0);
    assert_int_equal(wc_jsonschema_validate(s, v, NULL, 0), -EINVAL);
    json_decref(v);
    v = nested_arrays(5000);
    assert_int_equal(wc_jsonschema_validate(s, v, err, sizeof(err)), -EINVAL);
    json_decref(v);
    wc_jsonschema_free(s);

    /* Schema nesting is bounded at compile time. */
    {
        char *schema = malloc(16 * 1024);
        size_t n = 0;

        assert_non_null(schema);
        for (int i = 0; i < 200; i++)
            n += (size_t)sprintf(schema + n, "{\"items\": ");
        n += (size_t)sprintf(schema + n, "true");
        for (int i = 0; i < 200; i++)
            n += (size_t)sprintf(schema + n, "}");
        COMPILE_ERROR(schema, "schema nesting deeper than 128 levels");
        free(schema);
    }
}

/* Each array level goes through a chain of 20 $refs: the frame limit, not
 * the document depth, stops it. */
static void test_frame_limit(void **state)
{
    char *schema = malloc(16 * 1024);
    char err[512];
    size_t n = 0;
    wc_jsonschema_t *s;
    json_t *v;

    assert_non_null(schema);
    n += (size_t)sprintf(schema + n, "{\"$ref\": \"#/$defs/r0\", \"$defs\": {");
    for (int i = 0; i < 19; i++)
        n += (size_t)sprintf(schema + n, "\"r%d\": {\"$ref\": \"#/$defs/r%d\"}, ", i, i + 1);
    sprintf(schema + n, "\"r19\": {\"items\": {\"$ref\": \"#/$defs/r0\"}}}}");
    s = compile_ok(schema);
    v = nested_arrays(100);
    assert_int_equal(wc_jsonschema_validate(s, v, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "schema evaluation nested deeper than 1024"));
    json_decref(v);
    v = nested_arrays(10);
    assert_int_equal(wc_jsonschema_validate(s, v, err, sizeof(err)), 0);
    json_decref(v);
    wc_jsonschema_free(s);
    free(schema);
}

/* anyOf branches that all fail, nested 40 deep, would take 2^40 steps. */
static void test_step_limit(void **state)
{
    char *schema = malloc(16 * 1024);
    char err[512];
    size_t n = 0;
    wc_jsonschema_t *s;
    json_t *v = json_integer(1);

    assert_non_null(schema);
    n += (size_t)sprintf(schema + n, "{\"$ref\": \"#/$defs/a0\", \"$defs\": {");
    for (int i = 0; i < 40; i++)
        n += (size_t)sprintf(schema + n,
                             "\"a%d\": {\"anyOf\": [{\"$ref\": \"#/$defs/a%d\"}, {\"$ref\":"
                             " \"#/$defs/a%d\"}]}, ",
                             i, i + 1, i + 1);
    sprintf(schema + n, "\"a40\": {\"type\": \"string\"}}}");
    s = compile_ok(schema);
    assert_int_equal(wc_jsonschema_validate(s, v, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "/: validation needs more than 4000000 steps");
    json_decref(v);
    wc_jsonschema_free(s);
    free(schema);
}

static void test_error_buffer(void **state)
{
    static const char schema[] = "{\"additionalProperties\": false}";
    wc_jsonschema_t *s = compile_ok(schema);
    json_t *v = parse("{\"\\u00e9\\u00e9\\u00e9\\u00e9\": 1}");
    char full[256], err[64];

    assert_int_equal(wc_jsonschema_validate(s, v, full, sizeof(full)), -EINVAL);
    assert_string_equal(full, "/: unknown property \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"");
    /* Every size: a NUL-terminated prefix, never ending inside a character. */
    for (size_t len = 1; len <= strlen(full) + 1; len++) {
        memset(err, 'Z', sizeof(err));
        assert_int_equal(wc_jsonschema_validate(s, v, err, len), -EINVAL);
        assert_true(strlen(err) < len);
        assert_memory_equal(err, full, strlen(err));
        assert_true(strlen(err) + 2 >= len || len > strlen(full));
        if (strlen(err) > 0)
            assert_true(((unsigned char)err[strlen(err) - 1] & 0xC0) != 0xC0);
        assert_int_equal((unsigned char)err[len], 'Z');
    }
    /* No buffer at all is allowed. */
    assert_int_equal(wc_jsonschema_validate(s, v, NULL, 0), -EINVAL);
    json_decref(v);
    /* A valid document clears the buffer. */
    v = parse("{}");
    strcpy(err, "stale");
    assert_int_equal(wc_jsonschema_validate(s, v, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    json_decref(v);
    wc_jsonschema_free(s);

    /* Long values in messages are cut, and so are compile errors. */
    INVALID("{\"const\": "
            "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
            "\"b\"",
            "/: must be \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"");
    {
        char small[12];

        assert_int_equal(wc_jsonschema_new("{\"bogus\": 1}", 12, &s, small, sizeof(small)),
                         -EINVAL);
        assert_string_equal(small, "#: unknown ");
    }
}

/* The published pipeline schema, with the messages the spec loader shows. */
static void test_pipeline_schema(void **state)
{
    char *schema = read_text("../docs/pipeline-spec.schema.json");
    char *demo = read_text("data/spec/valid/demo.json");
    wc_jsonschema_t *s = NULL;
    json_t *spec, *op;
    char err[512];

    if (schema == NULL || demo == NULL) {
        free(schema);
        free(demo);
        skip();
    }
    assert_int_equal(wc_jsonschema_new(schema, strlen(schema), &s, err, sizeof(err)), 0);
    spec = parse(demo);
    assert_int_equal(wc_jsonschema_validate(s, spec, err, sizeof(err)), 0);

    json_object_set_new(
        json_object_get(json_array_get(json_object_get(spec, "inputs"), 0), "watermark"),
        "maxOutOfOrdernessMs", json_integer(-5));
    assert_int_equal(wc_jsonschema_validate(s, spec, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "/inputs/0/watermark/maxOutOfOrdernessMs: must be >= 0, got -5");
    json_decref(spec);

    spec = parse(demo);
    op = json_array_get(json_object_get(spec, "operators"), 0);
    assert_non_null(op);
    json_object_set_new(op, "windw", json_true());
    assert_int_equal(wc_jsonschema_validate(s, spec, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "/operators/0: unknown property \"windw\"");
    json_object_del(op, "windw");
    json_object_set_new(op, "type", json_string("reduce"));
    assert_int_equal(wc_jsonschema_validate(s, spec, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "/operators/0/type: must be one of \"filter\", \"map\", \"window\", "
                             "\"join\", \"udf\"");
    json_object_del(spec, "inputs");
    assert_int_equal(wc_jsonschema_validate(s, spec, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "/: missing required property \"inputs\"");
    json_decref(spec);

    wc_jsonschema_free(s);
    free(schema);
    free(demo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_enum_const),
        cmocka_unit_test(test_object_keywords),
        cmocka_unit_test(test_pattern_properties),
        cmocka_unit_test(test_property_names),
        cmocka_unit_test(test_dependent_required),
        cmocka_unit_test(test_array_keywords),
        cmocka_unit_test(test_unique_items),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_combinators),
        cmocka_unit_test(test_if_then_else),
        cmocka_unit_test(test_discriminated_oneof),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_long_ref_chain),
        cmocka_unit_test(test_boolean_schemas),
        cmocka_unit_test(test_annotations),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_bad_patterns),
        cmocka_unit_test(test_depth_limits),
        cmocka_unit_test(test_frame_limit),
        cmocka_unit_test(test_step_limit),
        cmocka_unit_test(test_error_buffer),
        cmocka_unit_test(test_pipeline_schema),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
