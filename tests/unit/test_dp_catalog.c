/* Description: topic catalog: persistence, names, configs, snapshots, reclaim. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp_catalog.h"

static const dp_catalog_defaults_t defs = {
    .retention_ms = 604800000, .retention_bytes = -1, .segment_bytes = 1 << 20};

static void tmpdir(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/weir-catalog-XXXXXX");
    assert_non_null(mkdtemp(buf));
}

static void rmrf(const char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_names(void **state)
{
    assert_int_equal(dp_catalog_valid_name(dp_kstr("orders.v1_x-2")), 0);
    assert_int_equal(dp_catalog_valid_name(dp_kstr("")), -EINVAL);
    assert_int_equal(dp_catalog_valid_name(dp_kstr(".")), -EINVAL);
    assert_int_equal(dp_catalog_valid_name(dp_kstr("..")), -EINVAL);
    assert_int_equal(dp_catalog_valid_name(dp_kstr("a/b")), -EINVAL);
    assert_int_equal(dp_catalog_valid_name(dp_kstr("sp ace")), -EINVAL);
}

static void test_persist_and_configs(void **state)
{
    dp_kstr_t names[2] = {dp_kstr("retention.ms"), dp_kstr("min.insync.replicas")};
    dp_kstr_t values[2] = {dp_kstr("1000"), dp_kstr("2")};
    char dir[64], err[256];
    dp_catalog_t *cat;
    dp_topic_t t;
    const dp_catalog_snap_t *s;
    const dp_topic_t *got;
    uint64_t id;

    tmpdir(dir, sizeof(dir));
    assert_int_equal(dp_catalog_open(&cat, dir, &defs, err, sizeof(err)), 0);
    assert_int_equal(dp_catalog_reader(cat), 0);
    assert_int_equal(
        dp_catalog_prepare(cat, &t, dp_kstr("b"), 3, names, values, 2, err, sizeof(err)), 0);
    assert_int_equal(t.retention_ms, 1000);
    assert_int_equal(t.segment_bytes, 1 << 20);
    assert_int_equal(dp_catalog_add(cat, &t), 0);
    id = t.id;
    assert_int_equal(dp_catalog_prepare(cat, &t, dp_kstr("a"), 1, NULL, NULL, 0, err, sizeof(err)),
                     0);
    assert_int_equal(dp_catalog_add(cat, &t), 0);
    assert_int_equal(dp_catalog_add(cat, &t), -EEXIST);
    s = dp_catalog_get(cat);
    assert_int_equal(s->count, 2);
    assert_string_equal(s->topics[0]->name, "a"); /* sorted */
    assert_null(dp_catalog_find(s, dp_kstr("ab")));
    assert_null(dp_catalog_find(s, (dp_kstr_t){"a", 0}));
    dp_catalog_quiesce(cat, 0);
    dp_catalog_reclaim(cat);
    dp_catalog_free(cat);

    /* Reopen: both topics, same ids and configs. */
    assert_int_equal(dp_catalog_open(&cat, dir, &defs, err, sizeof(err)), 0);
    s = dp_catalog_get(cat);
    assert_int_equal(s->count, 2);
    got = dp_catalog_find(s, dp_kstr("b"));
    assert_non_null(got);
    assert_int_equal(got->id, id);
    assert_int_equal(got->partitions, 3);
    assert_int_equal(got->retention_ms, 1000);
    assert_int_equal(got->config_count, 2);
    assert_int_equal(dp_catalog_remove(cat, dp_kstr("b")), 0);
    assert_int_equal(dp_catalog_remove(cat, dp_kstr("b")), -ENOENT);
    dp_catalog_free(cat);
    assert_int_equal(dp_catalog_open(&cat, dir, &defs, err, sizeof(err)), 0);
    assert_int_equal(dp_catalog_get(cat)->count, 1);
    /* Ids are never reused: a new topic gets one above every id seen. */
    assert_int_equal(dp_catalog_prepare(cat, &t, dp_kstr("c"), 1, NULL, NULL, 0, err, sizeof(err)),
                     0);
    assert_int_equal(dp_catalog_add(cat, &t), 0);
    assert_true(t.id > 1);
    dp_catalog_free(cat);
    rmrf(dir);
}

static void test_bad_configs(void **state)
{
    dp_kstr_t n1 = dp_kstr("cleanup.policy"), v1 = dp_kstr("compact");
    dp_kstr_t n2 = dp_kstr("no.such.config"), v2 = dp_kstr("1");
    dp_kstr_t n3 = dp_kstr("retention.bytes"), v3 = dp_kstr("lots");
    char dir[64], err[256];
    dp_catalog_t *cat;
    dp_topic_t t;

    tmpdir(dir, sizeof(dir));
    assert_int_equal(dp_catalog_open(&cat, dir, &defs, err, sizeof(err)), 0);
    assert_int_equal(dp_catalog_prepare(cat, &t, dp_kstr("x"), 1, &n1, &v1, 1, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "cleanup.policy"));
    assert_int_equal(dp_catalog_prepare(cat, &t, dp_kstr("x"), 1, &n2, &v2, 1, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "unknown topic config"));
    assert_int_equal(dp_catalog_prepare(cat, &t, dp_kstr("x"), 1, &n3, &v3, 1, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(dp_catalog_prepare(cat, &t, dp_kstr("x"), 0, NULL, NULL, 0, err, sizeof(err)),
                     -EINVAL);
    dp_catalog_free(cat);
    rmrf(dir);
}

static void test_corrupt_file_fails_open(void **state)
{
    char dir[64], path[128], err[256];
    dp_catalog_t *cat;
    FILE *f;

    tmpdir(dir, sizeof(dir));
    assert_int_equal(dp_catalog_open(&cat, dir, &defs, err, sizeof(err)), 0);
    dp_catalog_free(cat);
    snprintf(path, sizeof(path), "%s/__topics/bad.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"name\": \"bad\", \"id\": ", f);
    fclose(f);
    assert_int_equal(dp_catalog_open(&cat, dir, &defs, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "bad.json"));
    rmrf(dir);
}

static void test_reclaim_waits_for_readers(void **state)
{
    char dir[64], err[256];
    dp_catalog_t *cat;
    dp_topic_t t;
    const dp_catalog_snap_t *old;

    tmpdir(dir, sizeof(dir));
    assert_int_equal(dp_catalog_open(&cat, dir, &defs, err, sizeof(err)), 0);
    assert_int_equal(dp_catalog_reader(cat), 0);
    assert_int_equal(dp_catalog_reader(cat), 1);
    old = dp_catalog_get(cat);
    assert_int_equal(dp_catalog_prepare(cat, &t, dp_kstr("t"), 1, NULL, NULL, 0, err, sizeof(err)),
                     0);
    assert_int_equal(dp_catalog_add(cat, &t), 0);
    dp_catalog_quiesce(cat, 0);
    dp_catalog_reclaim(cat); /* reader 1 may still hold `old` */
    assert_int_equal(old->count, 0);
    dp_catalog_quiesce(cat, 1);
    dp_catalog_reclaim(cat); /* now it is freed (ASan checks the rest) */
    assert_int_equal(dp_catalog_remove(cat, dp_kstr("t")), 0);
    dp_catalog_quiesce(cat, 0);
    dp_catalog_quiesce(cat, 1);
    dp_catalog_reclaim(cat);
    dp_catalog_free(cat);
    rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_persist_and_configs),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_corrupt_file_fails_open),
        cmocka_unit_test(test_reclaim_waits_for_readers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
