/* Description: Kafka wire primitives: big-endian ints, varints (zigzag and
 * unsigned) against known encodings, strings/bytes/arrays in classic and
 * compact form, tagged-field skipping, sticky errors, writer overflow. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "dp_kbuf.h"

static void test_ints_roundtrip(void **state)
{
    uint8_t buf[64];
    dp_kwr_t w;
    dp_krd_t r;
    static const uint8_t want[] = {0x80, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff,
                                   0xfe, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x01};

    dp_kwr_init(&w, buf, sizeof(buf));
    dp_kwr_i8(&w, INT8_MIN);
    dp_kwr_i16(&w, 0x1234);
    dp_kwr_u32(&w, 0xdeadbeef);
    dp_kwr_i32(&w, -2);
    dp_kwr_i64(&w, 0x0102030405060708LL);
    dp_kwr_bool(&w, true);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.off, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));

    dp_krd_init(&r, buf, w.off);
    assert_int_equal(dp_krd_i8(&r), INT8_MIN);
    assert_int_equal(dp_krd_i16(&r), 0x1234);
    assert_int_equal(dp_krd_u32(&r), 0xdeadbeef);
    assert_int_equal(dp_krd_i32(&r), -2);
    assert_true(dp_krd_i64(&r) == 0x0102030405060708LL);
    assert_true(dp_krd_bool(&r));
    assert_int_equal(r.err, 0);
    assert_int_equal(dp_krd_remaining(&r), 0);
    /* One more read underflows and sticks. */
    assert_int_equal(dp_krd_i8(&r), 0);
    assert_int_equal(r.err, -ENODATA);
}

static void test_negative_i64(void **state)
{
    uint8_t buf[8];
    dp_kwr_t w;
    dp_krd_t r;

    dp_kwr_init(&w, buf, sizeof(buf));
    dp_kwr_i64(&w, INT64_MIN);
    dp_krd_init(&r, buf, 8);
    assert_true(dp_krd_i64(&r) == INT64_MIN);
    dp_kwr_init(&w, buf, sizeof(buf));
    dp_kwr_i64(&w, -1);
    dp_krd_init(&r, buf, 8);
    assert_true(dp_krd_i64(&r) == -1);
}

/* Known encodings from the Kafka record format (zigzag) and protobuf. */
static void test_varint_vectors(void **state)
{
    struct {
        int32_t v;
        uint8_t enc[5];
        size_t n;
    } zz[] = {
        {0, {0x00}, 1},
        {-1, {0x01}, 1},
        {1, {0x02}, 1},
        {-2, {0x03}, 1},
        {63, {0x7e}, 1},
        {-64, {0x7f}, 1},
        {64, {0x80, 0x01}, 2},
        {INT32_MAX, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5},
        {INT32_MIN, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
    };
    uint8_t buf[16];

    for (size_t i = 0; i < sizeof(zz) / sizeof(zz[0]); i++) {
        dp_kwr_t w;
        dp_krd_t r;

        dp_kwr_init(&w, buf, sizeof(buf));
        dp_kwr_varint(&w, zz[i].v);
        assert_int_equal(w.off, zz[i].n);
        assert_memory_equal(buf, zz[i].enc, zz[i].n);
        dp_krd_init(&r, buf, w.off);
        assert_int_equal(dp_krd_varint(&r), zz[i].v);
        assert_int_equal(r.err, 0);
    }
    {
        dp_kwr_t w;
        dp_krd_t r;
        static const uint8_t u300[] = {0xac, 0x02};

        dp_kwr_init(&w, buf, sizeof(buf));
        dp_kwr_uvarint(&w, 300);
        assert_memory_equal(buf, u300, 2);
        dp_kwr_uvarint(&w, UINT32_MAX);
        assert_int_equal(w.off, 7);
        dp_krd_init(&r, buf, w.off);
        assert_int_equal(dp_krd_uvarint(&r), 300);
        assert_int_equal(dp_krd_uvarint(&r), UINT32_MAX);
        assert_int_equal(r.err, 0);
    }
}

static void test_varlong(void **state)
{
    int64_t vals[] = {0, -1, 1, INT64_MAX, INT64_MIN, 1700000000000LL, -1700000000000LL};
    uint8_t buf[16];

    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        dp_kwr_t w;
        dp_krd_t r;

        dp_kwr_init(&w, buf, sizeof(buf));
        dp_kwr_varlong(&w, vals[i]);
        assert_true(w.off <= 10);
        dp_krd_init(&r, buf, w.off);
        assert_true(dp_krd_varlong(&r) == vals[i]);
        assert_int_equal(r.err, 0);
        assert_int_equal(dp_krd_remaining(&r), 0);
    }
}

static void test_varint_invalid(void **state)
{
    static const uint8_t six[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    static const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0x7f}; /* 35 bits */
    static const uint8_t cut[] = {0x80, 0x80};
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x01};
    dp_krd_t r;

    dp_krd_init(&r, six, sizeof(six));
    dp_krd_uvarint(&r);
    assert_int_equal(r.err, -EBADMSG);
    dp_krd_init(&r, big, sizeof(big));
    dp_krd_uvarint(&r);
    assert_int_equal(r.err, -EBADMSG);
    dp_krd_init(&r, cut, sizeof(cut));
    dp_krd_varint(&r);
    assert_int_equal(r.err, -ENODATA);
    dp_krd_init(&r, eleven, sizeof(eleven));
    dp_krd_varlong(&r);
    assert_int_equal(r.err, -EBADMSG);
}

static void test_strings(void **state)
{
    uint8_t buf[128];
    dp_kwr_t w;
    dp_krd_t r;
    dp_kstr_t s;
    dp_kstr_t null_s = {NULL, -1};
    static const uint8_t want[] = {0x00, 0x03, 'a', 'b',  'c',  0xff, 0xff, 0x04,
                                   'a',  'b',  'c', 0x00, 0x01, 0x00, 0x00};

    dp_kwr_init(&w, buf, sizeof(buf));
    dp_kwr_str_f(&w, dp_kstr("abc"), false);
    dp_kwr_str_f(&w, null_s, false);
    dp_kwr_str_f(&w, dp_kstr("abc"), true);
    dp_kwr_str_f(&w, null_s, true);
    dp_kwr_str_f(&w, dp_kstr(""), true);
    dp_kwr_str_f(&w, dp_kstr(""), false);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.off, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));

    dp_krd_init(&r, buf, w.off);
    s = dp_krd_str(&r);
    assert_true(dp_kstr_eq(s, dp_kstr("abc")));
    assert_ptr_equal(s.ptr, buf + 2); /* points into the input, no copy */
    assert_int_equal(dp_krd_nstr(&r).len, -1);
    assert_true(dp_kstr_eq(dp_krd_cstr(&r), dp_kstr("abc")));
    assert_int_equal(dp_krd_cnstr(&r).len, -1);
    assert_true(dp_kstr_eq(dp_krd_cstr(&r), dp_kstr("")));
    assert_true(dp_kstr_eq(dp_krd_str(&r), dp_kstr("")));
    assert_int_equal(r.err, 0);

    /* null where a non-nullable string is expected */
    dp_krd_init(&r, buf + 5, 2);
    dp_krd_str(&r);
    assert_int_equal(r.err, -EBADMSG);
    dp_krd_init(&r, buf + 11, 1);
    dp_krd_cstr(&r);
    assert_int_equal(r.err, -EBADMSG);
    /* length past the end */
    dp_krd_init(&r, buf, 4);
    dp_krd_str(&r);
    assert_int_equal(r.err, -ENODATA);
}

static void test_bad_lengths(void **state)
{
    static const uint8_t s_neg[] = {0xff, 0xfe};
    static const uint8_t b_neg[] = {0xff, 0xff, 0xff, 0xfe};
    static const uint8_t b_huge[] = {0x7f, 0xff, 0xff, 0xff, 0x00};
    dp_krd_t r;

    dp_krd_init(&r, s_neg, sizeof(s_neg));
    dp_krd_nstr(&r);
    assert_int_equal(r.err, -EBADMSG);
    dp_krd_init(&r, b_neg, sizeof(b_neg));
    dp_krd_bytes(&r);
    assert_int_equal(r.err, -EBADMSG);
    dp_krd_init(&r, b_huge, sizeof(b_huge));
    dp_krd_bytes(&r);
    assert_int_equal(r.err, -ENODATA);
    /* array count larger than the bytes that could hold it */
    dp_krd_init(&r, b_huge, sizeof(b_huge));
    dp_krd_arrlen(&r, false, 1);
    assert_int_equal(r.err, -EBADMSG);
    dp_krd_init(&r, b_neg, sizeof(b_neg));
    dp_krd_arrlen(&r, false, 1);
    assert_int_equal(r.err, -EBADMSG);
}

static void test_bytes_and_arrays(void **state)
{
    uint8_t buf[64];
    dp_kwr_t w;
    dp_krd_t r;
    dp_kbytes_t b = {(const uint8_t *)"\x01\x02\x03", 3};
    dp_kbytes_t nb = {NULL, -1};
    dp_kbytes_t got;

    dp_kwr_init(&w, buf, sizeof(buf));
    dp_kwr_bytes_f(&w, b, false);
    dp_kwr_bytes_f(&w, nb, false);
    dp_kwr_bytes_f(&w, b, true);
    dp_kwr_bytes_f(&w, nb, true);
    dp_kwr_arrlen(&w, 2, false);
    dp_kwr_arrlen(&w, -1, false);
    dp_kwr_arrlen(&w, 2, true);
    dp_kwr_arrlen(&w, -1, true);
    dp_kwr_i16(&w, 7);
    dp_kwr_i16(&w, 8);
    assert_int_equal(w.err, 0);

    dp_krd_init(&r, buf, w.off);
    got = dp_krd_bytes(&r);
    assert_int_equal(got.len, 3);
    assert_memory_equal(got.ptr, b.ptr, 3);
    assert_int_equal(dp_krd_bytes(&r).len, -1);
    got = dp_krd_cbytes(&r);
    assert_int_equal(got.len, 3);
    assert_int_equal(dp_krd_bytes_f(&r, true).len, -1);
    assert_int_equal(dp_krd_arrlen(&r, false, 0), 2);
    assert_int_equal(dp_krd_arrlen(&r, false, 0), -1);
    assert_int_equal(dp_krd_arrlen(&r, true, 2), 2);
    assert_int_equal(dp_krd_arrlen(&r, true, 0), -1);
    assert_int_equal(dp_krd_i16(&r), 7);
    assert_int_equal(dp_krd_i16(&r), 8);
    assert_int_equal(r.err, 0);
}

static void test_uuid_raw(void **state)
{
    uint8_t buf[40], id[16], out[16];
    dp_kwr_t w;
    dp_krd_t r;
    const uint8_t *p;
    uint8_t *res;

    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(i * 17);
    dp_kwr_init(&w, buf, sizeof(buf));
    dp_kwr_uuid(&w, id);
    dp_kwr_uuid(&w, NULL);
    res = dp_kwr_reserve(&w, 3);
    assert_non_null(res);
    memcpy(res, "xyz", 3);
    dp_kwr_raw(&w, "q", 1);
    assert_int_equal(w.off, 36);
    dp_krd_init(&r, buf, w.off);
    dp_krd_uuid(&r, out);
    assert_memory_equal(out, id, 16);
    dp_krd_uuid(&r, out);
    for (int i = 0; i < 16; i++)
        assert_int_equal(out[i], 0);
    p = dp_krd_raw(&r, 4);
    assert_memory_equal(p, "xyzq", 4);
    assert_null(dp_krd_raw(&r, 1));
    dp_krd_uuid(&r, out);
    assert_int_equal(out[0], 0);
    assert_int_equal(r.err, -ENODATA);
}

static void test_tags(void **state)
{
    /* two tags: tag 0 size 3 "abc", tag 5 size 0; then int16 0x0102 */
    static const uint8_t t[] = {0x02, 0x00, 0x03, 'a', 'b', 'c', 0x05, 0x00, 0x01, 0x02};
    static const uint8_t over[] = {0x01, 0x00, 0x05, 'a'};
    static const uint8_t many[] = {0x7f, 0x00, 0x00};
    dp_krd_t r;

    dp_krd_init(&r, t, sizeof(t));
    dp_krd_skip_tags(&r);
    assert_int_equal(dp_krd_i16(&r), 0x0102);
    assert_int_equal(r.err, 0);
    dp_krd_init(&r, over, sizeof(over));
    dp_krd_skip_tags(&r);
    assert_int_equal(r.err, -ENODATA);
    dp_krd_init(&r, many, sizeof(many));
    dp_krd_skip_tags(&r);
    assert_int_equal(r.err, -EBADMSG);
    {
        uint8_t buf[2];
        dp_kwr_t w;

        dp_kwr_init(&w, buf, sizeof(buf));
        dp_kwr_tags_empty(&w);
        assert_int_equal(w.off, 1);
        assert_int_equal(buf[0], 0);
    }
}

static void test_writer_overflow_sticky(void **state)
{
    uint8_t buf[6];
    dp_kwr_t w;

    dp_kwr_init(&w, buf, sizeof(buf));
    dp_kwr_i32(&w, 1);
    dp_kwr_i32(&w, 2); /* does not fit */
    assert_int_equal(w.err, -ENOBUFS);
    assert_int_equal(w.off, 4);
    dp_kwr_i8(&w, 3); /* would fit, but the error is sticky */
    assert_int_equal(w.off, 4);
    assert_null(dp_kwr_reserve(&w, 1));
    dp_kwr_init(&w, buf, 0 + 2);
    dp_kwr_uvarint(&w, 1u << 20); /* 3 bytes into 2 */
    assert_int_equal(w.err, -ENOBUFS);
    assert_int_equal(w.off, 0);
}

static void test_mark_patch(void **state)
{
    uint8_t buf[16];
    dp_kwr_t w;
    size_t m;
    dp_krd_t r;

    dp_kwr_init(&w, buf, sizeof(buf));
    dp_kwr_i8(&w, 9);
    m = dp_kwr_mark_i32(&w);
    assert_int_equal(m, 1);
    dp_kwr_i16(&w, 5);
    dp_kwr_i16(&w, 6);
    dp_kwr_patch_i32(&w, m, (int32_t)(w.off - m - 4));
    dp_krd_init(&r, buf, w.off);
    assert_int_equal(dp_krd_i8(&r), 9);
    assert_int_equal(dp_krd_i32(&r), 4);

    dp_kwr_init(&w, buf, 3);
    assert_int_equal(dp_kwr_mark_i32(&w), 0);
    assert_int_equal(w.err, -ENOBUFS);
}

static void test_string_too_long(void **state)
{
    static char big[40000];
    uint8_t buf[16];
    dp_kwr_t w;
    dp_kstr_t s = {big, (int32_t)sizeof(big)};

    dp_kwr_init(&w, buf, sizeof(buf));
    dp_kwr_str_f(&w, s, false);
    assert_int_equal(w.err, -EINVAL);
    assert_int_equal(w.off, 0);
}

static void test_empty_reader(void **state)
{
    dp_krd_t r;

    dp_krd_init(&r, NULL, 0);
    assert_int_equal(dp_krd_remaining(&r), 0);
    assert_int_equal(dp_krd_i16(&r), 0);
    assert_int_equal(r.err, -ENODATA);
    dp_krd_fail(&r, -EBADMSG); /* first error wins */
    assert_int_equal(r.err, -ENODATA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ints_roundtrip),
        cmocka_unit_test(test_negative_i64),
        cmocka_unit_test(test_varint_vectors),
        cmocka_unit_test(test_varlong),
        cmocka_unit_test(test_varint_invalid),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_bad_lengths),
        cmocka_unit_test(test_bytes_and_arrays),
        cmocka_unit_test(test_uuid_raw),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_writer_overflow_sticky),
        cmocka_unit_test(test_mark_patch),
        cmocka_unit_test(test_string_too_long),
        cmocka_unit_test(test_empty_reader),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
