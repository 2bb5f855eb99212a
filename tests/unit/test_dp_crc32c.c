/* Description: CRC32C known vectors, chunked updates, hardware vs table. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "dp_crc32c.h"

static void test_vectors(void **state)
{
    uint8_t zeros[32], ones[32], inc[32];

    memset(zeros, 0, sizeof(zeros));
    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    assert_int_equal(dp_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(dp_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(dp_crc32c(0, "", 0), 0u);
    /* RFC 3720 (iSCSI) appendix B.4 vectors. */
    assert_int_equal(dp_crc32c(0, zeros, 32), 0x8A9136AAu);
    assert_int_equal(dp_crc32c(0, ones, 32), 0x62A8AB43u);
    assert_int_equal(dp_crc32c(0, inc, 32), 0x46DD794Eu);
    assert_int_equal(dp_crc32c_sw(0, inc, 32), 0x46DD794Eu);
}

static void test_chunked_and_hw_match_sw(void **state)
{
    enum { N = 4099 };
    uint8_t *buf = malloc(N + 8);
    uint32_t want, got;

    assert_non_null(buf);
    srand(7);
    for (int i = 0; i < N + 8; i++)
        buf[i] = (uint8_t)rand();
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len < 300; len += 7) {
            want = dp_crc32c_sw(0, buf + off, len);
            assert_int_equal(dp_crc32c(0, buf + off, len), want);
            if (dp_crc32c_hw_available())
                assert_int_equal(dp_crc32c_hw(0, buf + off, len), want);
        }
    }
    want = dp_crc32c_sw(0, buf, N);
    got = 0;
    for (size_t i = 0; i < N; i += 13) {
        size_t n = N - i < 13 ? N - i : 13;
        got = dp_crc32c(got, buf + i, n);
    }
    assert_int_equal(got, want);
    free(buf);
}

/* Buffers long enough for the three-lane paths (3 x 256 and 3 x 8192 bytes),
 * at every alignment, against the table implementation. */
static void test_lanes_match_sw(void **state)
{
    enum { N = 3 * 8192 * 3 + 1000 };
    static const size_t lens[] = {767,      768,          769,   1000, 3 * 8192 - 1,
                                  3 * 8192, 3 * 8192 + 5, 50000, N - 8};
    uint8_t *buf = malloc(N);

    assert_non_null(buf);
    srand(11);
    for (int i = 0; i < N; i++)
        buf[i] = (uint8_t)rand();
    if (!dp_crc32c_hw_available()) {
        free(buf);
        skip();
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
            assert_int_equal(dp_crc32c_hw(0x1234u, buf + off, lens[i]),
                             dp_crc32c_sw(0x1234u, buf + off, lens[i]));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_chunked_and_hw_match_sw),
        cmocka_unit_test(test_lanes_match_sw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
