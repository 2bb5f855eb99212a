/* Description: checkpoints: round trip, damaged newest falls back, spec mismatch, retention. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dp_ckpt.h"
#include "wc_log.h"

#define SPEC_HASH 0x1234abcd5678ef00ull

static char tmpdir[256];

static int setup(void **state)
{
    const char *base = getenv("TMPDIR");

    snprintf(tmpdir, sizeof(tmpdir), "%s/weir-ckpt-XXXXXX", base ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    DIR *d = opendir(tmpdir);
    struct dirent *de;

    if (d != NULL) {
        while ((de = readdir(d)) != NULL) {
            char p[600];

            if (de->d_name[0] == '.')
                continue;
            snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

/* Opens the test directory; exits 77 when io_uring is not available. */
static dp_ckpt_t *open_dir(const char *dir, uint32_t retain)
{
    dp_ckpt_t *c = NULL;
    char err[256];
    int rc = dp_ckpt_open(&c, dir, retain, err, sizeof(err));

    if (rc == -ENOSYS || rc == -EPERM) {
        fprintf(stderr, "skip: no io_uring (%s)\n", err);
        exit(77);
    }
    assert_int_equal(rc, 0);
    return c;
}

/* Writes one checkpoint whose state is `tag` repeated. */
static uint64_t write_one(dp_ckpt_t *c, uint64_t spec_hash, const char *tag)
{
    dp_ckpt_offset_t offs[3] = {
        {.topic = "orders", .partition = 0, .next_offset = 42},
        {.topic = "orders", .partition = 1, .next_offset = DP_CKPT_OFFSET_BEGINNING},
        {.topic = "users", .partition = 7, .next_offset = 1000000000000},
    };
    dp_ckpt_data_t d = {.spec_hash = spec_hash,
                        .wall_ms = 1700000000000,
                        .offsets = offs,
                        .noffsets = 3,
                        .state = tag,
                        .state_len = strlen(tag)};
    char err[256];
    uint64_t id = 0;

    assert_int_equal(dp_ckpt_write(c, &d, &id, err, sizeof(err)), 0);
    return id;
}

static int count_files(const char *prefix)
{
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static void ckpt_path(char *buf, size_t n, uint64_t id)
{
    snprintf(buf, n, "%s/ckpt-%020llu", tmpdir, (unsigned long long)id);
}

static void test_round_trip(void **state)
{
    dp_ckpt_t *c = open_dir(tmpdir, 2);
    dp_ckpt_image_t img;
    char err[256];
    uint64_t id = write_one(c, SPEC_HASH, "engine-state-bytes");

    assert_int_equal(id, 1);
    assert_int_equal(count_files("ckpt-"), 1);
    assert_int_equal(dp_ckpt_load(c, SPEC_HASH, &img, err, sizeof(err)), 0);
    assert_int_equal(img.data.id, 1);
    assert_int_equal(img.data.spec_hash, SPEC_HASH);
    assert_int_equal(img.data.wall_ms, 1700000000000);
    assert_int_equal(img.data.noffsets, 3);
    assert_string_equal(img.data.offsets[0].topic, "orders");
    assert_int_equal(img.data.offsets[0].partition, 0);
    assert_int_equal(img.data.offsets[0].next_offset, 42);
    assert_int_equal(img.data.offsets[1].next_offset, DP_CKPT_OFFSET_BEGINNING);
    assert_string_equal(img.data.offsets[2].topic, "users");
    assert_int_equal(img.data.offsets[2].partition, 7);
    assert_int_equal(img.data.offsets[2].next_offset, 1000000000000);
    assert_int_equal(img.data.state_len, strlen("engine-state-bytes"));
    assert_memory_equal(img.data.state, "engine-state-bytes", img.data.state_len);
    assert_int_equal(img.data.sink_txn_len, 0);
    assert_string_equal(img.name, "ckpt-00000000000000000001");
    dp_ckpt_image_dispose(&img);
    dp_ckpt_free(c);

    /* Ids keep increasing across a reopen. */
    c = open_dir(tmpdir, 2);
    assert_int_equal(write_one(c, SPEC_HASH, "second"), 2);
    dp_ckpt_free(c);
}

static void test_encode_decode(void **state)
{
    static const char txn[] = "txn-id:epoch";
    dp_ckpt_data_t d = {
        .spec_hash = 7, .state = "", .state_len = 0, .sink_txn = txn, .sink_txn_len = sizeof(txn)};
    dp_ckpt_data_t out;
    dp_ckpt_offset_t *offs;
    uint8_t *buf;
    size_t len;
    char err[256];

    assert_int_equal(dp_ckpt_encode(&d, 9, &buf, &len), 0);
    assert_memory_equal(buf, "WEIRCKPT", 8);
    assert_int_equal(dp_ckpt_decode(buf, len, &out, &offs, err, sizeof(err)), 0);
    assert_int_equal(out.id, 9);
    assert_int_equal(out.noffsets, 0);
    assert_int_equal(out.state_len, 0);
    assert_int_equal(out.sink_txn_len, sizeof(txn));
    assert_memory_equal(out.sink_txn, txn, sizeof(txn));
    free(offs);
    /* Every single-byte change is caught (by the CRC or the header). */
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x40;
        assert_int_equal(dp_ckpt_decode(buf, len, &out, &offs, err, sizeof(err)), -EBADMSG);
        assert_null(offs);
        buf[i] ^= 0x40;
    }
    /* Every truncation too. */
    for (size_t n = 0; n < len; n++)
        assert_int_equal(dp_ckpt_decode(buf, n, &out, &offs, err, sizeof(err)), -EBADMSG);
    free(buf);
}

static void test_torn_newest_falls_back(void **state)
{
    dp_ckpt_t *c = open_dir(tmpdir, 3);
    dp_ckpt_image_t img;
    char err[256], path[600];
    FILE *f;

    assert_int_equal(write_one(c, SPEC_HASH, "first"), 1);
    assert_int_equal(write_one(c, SPEC_HASH, "second"), 2);
    assert_int_equal(write_one(c, SPEC_HASH, "third"), 3);

    /* Torn: the newest lost its tail. */
    ckpt_path(path, sizeof(path), 3);
    assert_int_equal(truncate(path, 40), 0);
    assert_int_equal(dp_ckpt_load(c, SPEC_HASH, &img, err, sizeof(err)), 0);
    assert_int_equal(img.data.id, 2);
    assert_memory_equal(img.data.state, "second", 6);
    dp_ckpt_image_dispose(&img);

    /* Damaged: one flipped byte in the state of the next. */
    ckpt_path(path, sizeof(path), 2);
    f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, -12, SEEK_END);
    fputc('X', f);
    fclose(f);
    assert_int_equal(dp_ckpt_load(c, SPEC_HASH, &img, err, sizeof(err)), 0);
    assert_int_equal(img.data.id, 1);
    assert_memory_equal(img.data.state, "first", 5);
    dp_ckpt_image_dispose(&img);

    /* All damaged: an error naming the newest file. */
    ckpt_path(path, sizeof(path), 1);
    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(dp_ckpt_load(c, SPEC_HASH, &img, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "damaged"));
    assert_non_null(strstr(err, "ckpt-00000000000000000003"));

    /* A new write after damage still gets a fresh id (never reused). */
    assert_int_equal(write_one(c, SPEC_HASH, "fourth"), 4);
    assert_int_equal(dp_ckpt_load(c, SPEC_HASH, &img, err, sizeof(err)), 0);
    assert_int_equal(img.data.id, 4);
    dp_ckpt_image_dispose(&img);
    dp_ckpt_free(c);
}

static void test_spec_mismatch(void **state)
{
    dp_ckpt_t *c = open_dir(tmpdir, 2);
    dp_ckpt_image_t img;
    char err[512];

    write_one(c, SPEC_HASH, "state");
    assert_int_equal(dp_ckpt_load(c, SPEC_HASH + 1, &img, err, sizeof(err)), -ESTALE);
    assert_non_null(strstr(err, "different pipeline spec"));
    assert_non_null(strstr(err, "1234abcd5678ef00"));
    assert_non_null(strstr(err, "1234abcd5678ef01"));
    assert_non_null(strstr(err, "ckpt-00000000000000000001"));
    assert_null(img.buf);
    dp_ckpt_free(c);
}

static void test_retention(void **state)
{
    dp_ckpt_t *c = open_dir(tmpdir, 2);
    dp_ckpt_image_t img;
    char err[256], path[600];

    for (int i = 0; i < 5; i++)
        assert_int_equal(write_one(c, SPEC_HASH, "s"), (uint64_t)i + 1);
    assert_int_equal(count_files("ckpt-"), 2);
    ckpt_path(path, sizeof(path), 4);
    assert_int_equal(access(path, F_OK), 0);
    ckpt_path(path, sizeof(path), 5);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(dp_ckpt_load(c, SPEC_HASH, &img, err, sizeof(err)), 0);
    assert_int_equal(img.data.id, 5);
    dp_ckpt_image_dispose(&img);
    dp_ckpt_free(c);
}

static void test_empty_dir_and_tmp_sweep(void **state)
{
    dp_ckpt_t *c;
    dp_ckpt_image_t img;
    char err[256], path[600], sub[400];
    int fd;

    /* A crash between create and rename leaves a temp file: ignored by
     * load, removed by open, and its id is not reused. */
    snprintf(path, sizeof(path), "%s/ckpt-00000000000000000009.tmp", tmpdir);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "WEIRCKPT", 8), 8);
    close(fd);
    c = open_dir(tmpdir, 2);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(dp_ckpt_load(c, SPEC_HASH, &img, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "no checkpoint"));
    assert_int_equal(write_one(c, SPEC_HASH, "x"), 10);
    dp_ckpt_free(c);

    /* A directory that does not exist yet is created (with parents). */
    snprintf(sub, sizeof(sub), "%s/a", tmpdir);
    snprintf(path, sizeof(path), "%s/a/b", tmpdir);
    c = open_dir(path, 2);
    assert_string_equal(dp_ckpt_dir(c), path);
    assert_int_equal(dp_ckpt_load(c, SPEC_HASH, &img, err, sizeof(err)), -ENOENT);
    dp_ckpt_free(c);
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(rmdir(sub), 0);
}

static void test_spec_hash(void **state)
{
    json_t *a = json_loads("{\"version\":1,\"name\":\"p\",\"inputs\":[1],"
                           "\"checkpoint\":{\"dir\":\"/a\"}}",
                           0, NULL);
    json_t *b = json_loads("{\"inputs\":[1],\"name\":\"p\",\"version\":1,\"workers\":4,"
                           "\"checkpoint\":{\"dir\":\"/b\",\"intervalMs\":500}}",
                           0, NULL);
    json_t *c = json_loads("{\"version\":1,\"name\":\"q\",\"inputs\":[1]}", 0, NULL);

    /* Key order and runtime-only members do not matter; content does. */
    assert_int_equal(dp_ckpt_spec_hash(a), dp_ckpt_spec_hash(b));
    assert_int_not_equal(dp_ckpt_spec_hash(a), dp_ckpt_spec_hash(c));
    /* The caller's document is left alone. */
    assert_non_null(json_object_get(a, "checkpoint"));
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test(test_encode_decode),
        cmocka_unit_test_setup_teardown(test_torn_newest_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_dir_and_tmp_sweep, setup, teardown),
        cmocka_unit_test(test_spec_hash),
    };

    wc_log_set_level(WC_LOG_ERROR); /* the fallback warnings are expected */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
