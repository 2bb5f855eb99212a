/* SPDX-License-Identifier: Apache-2.0 */
/* Description: pipeline spec validation, driven by tests/data/spec: every
 * valid/ spec must load; every invalid/X.json must be rejected with an error
 * containing the text in invalid/X.err. Also checks topological order and
 * that the embedded schema is the one published in docs/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wc_spec.h"

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
    buf = calloc(1, (size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void test_valid_specs(void **state)
{
    DIR *d = opendir("data/spec/valid");
    struct dirent *e;
    int count = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[512], err[1024] = "";
        json_t *spec = NULL;
        int rc;

        if (!ends_with(e->d_name, ".json"))
            continue;
        snprintf(path, sizeof(path), "data/spec/valid/%s", e->d_name);
        rc = wc_spec_load_file(path, &spec, err, sizeof(err));
        if (rc != 0)
            fail_msg("%s should be valid, got: %s", path, err);
        assert_non_null(spec);
        json_decref(spec);
        count++;
    }
    closedir(d);
    assert_true(count >= 3);
}

static void test_invalid_specs(void **state)
{
    DIR *d = opendir("data/spec/invalid");
    struct dirent *e;
    int count = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[512], errpath[512], err[1024] = "";
        json_t *spec = NULL;
        char *want;
        size_t n;
        int rc;

        if (!ends_with(e->d_name, ".json"))
            continue;
        snprintf(path, sizeof(path), "data/spec/invalid/%s", e->d_name);
        snprintf(errpath, sizeof(errpath), "%.*s.err", (int)(strlen(path) - 5), path);
        want = read_text(errpath);
        if (want == NULL)
            fail_msg("%s has no .err file", path);
        n = strlen(want);
        while (n > 0 && want[n - 1] == '\n')
            want[--n] = '\0';
        rc = wc_spec_load_file(path, &spec, err, sizeof(err));
        if (rc == 0)
            fail_msg("%s should be rejected", path);
        assert_null(spec);
        /* Every message names the file it came from; the expected text is
         * looked for after that name, so it cannot match the path itself. */
        assert_non_null(strstr(err, path));
        if (strstr(strstr(err, path) + strlen(path), want) == NULL)
            fail_msg("%s: error \"%s\" lacks \"%s\"", path, err, want);
        free(want);
        count++;
    }
    closedir(d);
    assert_true(count >= 20);
}

static void test_missing_file(void **state)
{
    json_t *spec = NULL;
    char err[256];

    assert_int_equal(wc_spec_load_file("data/spec/nope.json", &spec, err, sizeof(err)), -ENOENT);
    assert_null(spec);
    assert_non_null(strstr(err, "No such file"));
}

static void test_topo_order(void **state)
{
    json_t *spec = NULL, *order;
    char err[512];

    assert_int_equal(
        wc_spec_load_file("data/spec/valid/joins_and_windows.json", &spec, err, sizeof(err)), 0);
    order = wc_spec_topo_order(spec);
    assert_non_null(order);
    assert_int_equal(json_array_size(order), 5);
    /* ij reads w and s, m reads ij: each must follow its sources. */
    {
        const char *seq[5];
        int pos_w = -1, pos_s = -1, pos_ij = -1, pos_m = -1;

        for (int i = 0; i < 5; i++) {
            seq[i] = json_string_value(json_array_get(order, (size_t)i));
            if (strcmp(seq[i], "w") == 0)
                pos_w = i;
            if (strcmp(seq[i], "s") == 0)
                pos_s = i;
            if (strcmp(seq[i], "ij") == 0)
                pos_ij = i;
            if (strcmp(seq[i], "m") == 0)
                pos_m = i;
        }
        assert_string_equal(seq[0], "enrich");
        assert_true(pos_ij > pos_w && pos_ij > pos_s);
        assert_true(pos_m > pos_ij);
    }
    json_decref(order);
    json_decref(spec);
}

static void test_embedded_schema_matches_docs(void **state)
{
    char *docs = read_text("../docs/pipeline-spec.schema.json");

    assert_non_null(docs);
    assert_int_equal(strlen(docs), wc_spec_schema_json_len);
    assert_memory_equal(docs, wc_spec_schema_json, wc_spec_schema_json_len);
    free(docs);
}

static void test_plan_output(void **state)
{
    json_t *spec = NULL;
    char err[512], *text = NULL;
    size_t len = 0;
    FILE *f;

    assert_int_equal(wc_spec_load_file("../examples/demo/pipeline.json", &spec, err, sizeof(err)),
                     0);
    f = open_memstream(&text, &len);
    wc_spec_print_plan(spec, f);
    fclose(f);
    assert_non_null(strstr(text, "pipeline card-anomaly-detection"));
    assert_non_null(strstr(text, "window   per-card-5s"));
    assert_non_null(strstr(text, "[tumbling size=5000ms key=payload.card_number]"));
    assert_non_null(strstr(text, "(late records) -> card-authorizations-late"));
    free(text);
    json_decref(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_specs),
        cmocka_unit_test(test_invalid_specs),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_topo_order),
        cmocka_unit_test(test_embedded_schema_matches_docs),
        cmocka_unit_test(test_plan_output),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
