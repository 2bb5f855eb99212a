/* Description: Kafka record batch v2: build, header parse, CRC32C validation,
 * corruption and truncation detection, in-place baseOffset, record decode. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "dp_batch.h"
#include "dp_crc32c.h"

static uint8_t buf[4096];

static int build3(void)
{
    dp_batch_build_rec_t recs[3] = {
        {"k0", 2, "value-zero", 10, 0},
        {NULL, -1, "v1", 2, 5},
        {"key2", 4, NULL, -1, 3},
    };

    return dp_batch_build(buf, sizeof(buf), 1700000000000LL, recs, 3);
}

static void test_build_and_parse(void **state)
{
    dp_batch_hdr_t h;
    int n = build3();

    assert_true(n > DP_BATCH_HEADER_SIZE);
    assert_int_equal(dp_batch_validate(buf, (size_t)n, DP_BATCH_STRICT, &h), 0);
    assert_int_equal(h.magic, 2);
    assert_int_equal(dp_batch_size(&h), (size_t)n);
    assert_int_equal(h.records_count, 3);
    assert_int_equal(h.last_offset_delta, 2);
    assert_int_equal(h.base_timestamp, 1700000000000LL);
    assert_int_equal(h.max_timestamp, 1700000000005LL);
    assert_int_equal(h.producer_id, -1);
    assert_int_equal(h.crc, dp_crc32c(0, buf + 21, (size_t)n - 21));
    /* Trailing bytes after the batch are not part of it. */
    assert_int_equal(dp_batch_validate(buf, sizeof(buf), 0, &h), 0);
}

typedef struct {
    int n;
    int64_t offsets[8];
    int64_t ts[8];
    int32_t klen[8], vlen[8];
} seen_t;

static int rec_cb(const dp_batch_record_t *r, void *ctx)
{
    seen_t *s = ctx;

    s->offsets[s->n] = r->offset;
    s->ts[s->n] = r->timestamp;
    s->klen[s->n] = r->key_len;
    s->vlen[s->n] = r->value_len;
    if (r->value_len == 10)
        assert_memory_equal(r->value, "value-zero", 10);
    s->n++;
    return 0;
}

static void test_set_base_offset_keeps_crc(void **state)
{
    dp_batch_hdr_t h;
    seen_t s = {0};
    int n = build3();

    dp_batch_set_base_offset(buf, 1000, 7);
    assert_int_equal(dp_batch_validate(buf, (size_t)n, DP_BATCH_STRICT, &h), 0);
    assert_int_equal(h.base_offset, 1000);
    assert_int_equal(h.partition_leader_epoch, 7);
    assert_int_equal(dp_batch_last_offset(&h), 1002);
    assert_int_equal(dp_batch_foreach_record(buf, (size_t)n, rec_cb, &s), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.offsets[0], 1000);
    assert_int_equal(s.offsets[2], 1002);
    assert_int_equal(s.ts[1], 1700000000005LL);
    assert_int_equal(s.klen[1], -1);
    assert_int_equal(s.vlen[2], -1);
    assert_int_equal(s.klen[2], 4);
}

static void test_every_flip_detected(void **state)
{
    dp_batch_hdr_t h;
    int n = build3();

    /* Any single-bit flip in the CRC'd region or the CRC itself is caught. */
    for (int i = DP_BATCH_CRC_OFFSET; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            int rc;

            buf[i] ^= (uint8_t)(1u << bit);
            rc = dp_batch_validate(buf, (size_t)n, 0, &h);
            assert_true(rc == -EBADMSG || rc == -EINVAL);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(dp_batch_validate(buf, (size_t)n, 0, &h), 0);
}

static void test_bad_headers(void **state)
{
    dp_batch_hdr_t h;
    int n = build3();

    for (int len = 0; len < n; len++)
        assert_int_equal(dp_batch_validate(buf, (size_t)len, 0, &h), -ENODATA);
    buf[16] = 1;
    assert_int_equal(dp_batch_parse_header(buf, (size_t)n, &h), -EINVAL);
    buf[16] = 2;
    /* batchLength below the header size */
    buf[8] = buf[9] = buf[10] = 0;
    buf[11] = 10;
    assert_int_equal(dp_batch_parse_header(buf, (size_t)n, &h), -EINVAL);
    /* negative batchLength */
    buf[8] = 0x80;
    assert_int_equal(dp_batch_parse_header(buf, (size_t)n, &h), -EINVAL);
    n = build3();
    /* recordsCount larger than lastOffsetDelta + 1 */
    buf[60] = 9;
    assert_int_equal(dp_batch_parse_header(buf, (size_t)n, &h), -EINVAL);
    /* fewer records than offsets (compacted): fine unless STRICT */
    n = build3();
    buf[60] = 2;
    assert_int_equal(dp_batch_parse_header(buf, (size_t)n, &h), 0);
    /* all-zero header (preallocated space) is not a batch */
    memset(buf, 0, DP_BATCH_HEADER_SIZE);
    assert_int_equal(dp_batch_parse_header(buf, DP_BATCH_HEADER_SIZE, &h), -EINVAL);
}

static void test_build_limits(void **state)
{
    dp_batch_build_rec_t r = {"k", 1, "v", 1, 0};

    assert_int_equal(dp_batch_build(buf, 10, 0, &r, 1), -ENOSPC);
    assert_int_equal(dp_batch_build(buf, sizeof(buf), 0, &r, 0), -EINVAL);
}

static void test_compressed_not_iterated(void **state)
{
    int n = build3();
    seen_t s = {0};

    buf[22] |= 1; /* gzip */
    assert_int_equal(dp_batch_foreach_record(buf, (size_t)n, rec_cb, &s), -ENOTSUP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_parse),
        cmocka_unit_test(test_set_base_offset_keeps_crc),
        cmocka_unit_test(test_every_flip_detected),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_build_limits),
        cmocka_unit_test(test_compressed_not_iterated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
