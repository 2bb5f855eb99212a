/* SPDX-License-Identifier: Apache-2.0 */
/* Description: weirctl's output multiplexing (wctl_out_format: JSON lines
 * keep the child's members behind "proc", other lines become "msg",
 * invalid UTF-8 is made printable, the human form, buffer limits) and the
 * sample generators (wctl_gen: determinism per seed, event times, the
 * cards bursts the anomaly example relies on, Nexmark through dp_nexmark). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "wctl_gen.h"
#include "wctl_out.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define NOW 1767225600123LL /* 2026-01-01T00:00:00.123Z */

static void test_json_line(void **state)
{
    static const char in[] = "{\"ts\":\"2026-11-24T10:00:00.123Z\",\"level\":\"warn\",\"msg\":"
                             "\"waiting\",\"n\":3,\"proc\":\"inner\"}";
    char out[512];
    size_t n;

    (void)state;
    n = wctl_out_format(WCTL_OUT_JSON, "proc/p-0", in, strlen(in), NOW, out, sizeof(out));
    assert_true(n > 0);
    assert_string_equal(out, "{\"proc\":\"proc/p-0\",\"ts\":\"2026-11-24T10:00:00.123Z\","
                             "\"level\":\"warn\",\"msg\":\"waiting\",\"n\":3,\"child_proc\":"
                             "\"inner\"}\n");
    assert_int_equal(n, strlen(out));
    /* No ts of its own: stamped. Trailing CR/LF dropped. */
    n = wctl_out_format(WCTL_OUT_JSON, "udf", "{\"msg\":\"x\"}\r\n", 13, NOW, out, sizeof(out));
    assert_string_equal(out,
                        "{\"proc\":\"udf\",\"ts\":\"2026-01-01T00:00:00.123Z\",\"msg\":\"x\"}\n");
}

static void test_text_line(void **state)
{
    char out[512];
    json_t *v;

    (void)state;
    wctl_out_format(WCTL_OUT_JSON, "udf/x", "Traceback (most recent call last):", 34, NOW, out,
                    sizeof(out));
    assert_string_equal(out, "{\"proc\":\"udf/x\",\"ts\":\"2026-01-01T00:00:00.123Z\",\"level\":"
                             "\"info\",\"msg\":\"Traceback (most recent call last):\"}\n");
    /* Not JSON although it starts with '{'. */
    wctl_out_format(WCTL_OUT_JSON, "a", "{oops", 5, NOW, out, sizeof(out));
    v = json_loads(out, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(v, "msg")), "{oops");
    json_decref(v);
    /* Invalid UTF-8 and a NUL byte: still one valid JSON line. */
    wctl_out_format(WCTL_OUT_JSON, "a", "ok\xff\xfe\0z", 6, NOW, out, sizeof(out));
    v = json_loads(out, 0, NULL);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "msg")), "ok???z");
    json_decref(v);
}

static void test_human(void **state)
{
    static const char py[] = "{\"ts\":1796583696.14,\"msg\":\"udf ready\"}";
    static const char in[] = "{\"ts\":\"2026-11-24T10:00:00.123Z\",\"level\":\"warn\",\"msg\":"
                             "\"waiting for UDF\",\"port\":20001,\"udf\":\"up\",\"ok\":true}";
    char out[512];

    (void)state;
    wctl_out_format(WCTL_OUT_HUMAN, "proc/p-0", in, strlen(in), NOW, out, sizeof(out));
    assert_string_equal(
        out, "10:00:00.123 proc/p-0           warn  waiting for UDF port=20001 udf=up ok=true\n");
    wctl_out_format(WCTL_OUT_HUMAN, "udf", py, strlen(py), NOW, out, sizeof(out));
    assert_string_equal(out, "00:00:00.123 udf                info  udf ready\n");
    wctl_out_format(WCTL_OUT_HUMAN, "udf", "plain text", 10, NOW, out, sizeof(out));
    assert_string_equal(out, "00:00:00.123 udf                info  plain text\n");
}

static void test_limits(void **state)
{
    char small[16], big[80000];
    static char line[70000];

    (void)state;
    assert_int_equal(
        wctl_out_format(WCTL_OUT_JSON, "p", "hello world", 11, NOW, small, sizeof(small)), 0);
    assert_int_equal(
        wctl_out_format(WCTL_OUT_HUMAN, "p", "hello world", 11, NOW, small, sizeof(small)), 0);
    memset(line, 'a', sizeof(line));
    assert_true(wctl_out_format(WCTL_OUT_JSON, "p", line, 65536, NOW, big, sizeof(big)) > 65536);
}

static void test_gen_determinism(void **state)
{
    wctl_gen_cfg_t a, b;
    char ka[WCTL_GEN_KEY_MAX], kb[WCTL_GEN_KEY_MAX], va[WCTL_GEN_VALUE_MAX], vb[WCTL_GEN_VALUE_MAX];
    size_t kla, klb, la, lb;
    int64_t ta, tb;

    (void)state;
    for (int k = WCTL_GEN_NEXMARK; k <= WCTL_GEN_SCORES; k++) {
        int differs = 0;

        wctl_gen_cfg_init(&a, (wctl_gen_kind_t)k);
        wctl_gen_cfg_init(&b, (wctl_gen_kind_t)k);
        a.seed = 1;
        b.seed = 2;
        assert_int_equal(wctl_gen_cfg_finish(&a), 0);
        assert_int_equal(wctl_gen_cfg_finish(&b), 0);
        for (uint64_t n = 0; n < 300; n++) {
            json_t *v;

            la = wctl_gen_record(&a, n, ka, &kla, va, sizeof(va), &ta);
            lb = wctl_gen_record(&a, n, kb, &klb, vb, sizeof(vb), &tb);
            assert_int_equal(la, lb);
            assert_memory_equal(va, vb, la);
            assert_int_equal(kla, klb);
            assert_true(kla > 0 && kla < WCTL_GEN_KEY_MAX);
            v = json_loadb(va, la, 0, NULL);
            assert_non_null(v);
            json_decref(v);
            lb = wctl_gen_record(&b, n, kb, &klb, vb, sizeof(vb), &tb);
            differs |= la != lb || memcmp(va, vb, la) != 0;
            assert_true(ta >= WCTL_GEN_BASE_TIME_MS);
        }
        assert_true(differs);
    }
}

static void test_cards_bursts(void **state)
{
    wctl_gen_cfg_t c;
    char key[WCTL_GEN_KEY_MAX], val[WCTL_GEN_VALUE_MAX];
    size_t kl;
    int64_t ts, prev = 0;

    (void)state;
    wctl_gen_cfg_init(&c, WCTL_GEN_CARDS);
    c.seed = 7;
    assert_int_equal(wctl_gen_cfg_finish(&c), 0);
    /* Each 5 s block (250 records at 50/s) has one card above 5. */
    for (uint64_t b = 0; b < 8; b++) {
        char keys[250][WCTL_GEN_KEY_MAX];
        int best = 0;

        for (uint64_t i = 0; i < 250; i++) {
            wctl_gen_record(&c, b * 250 + i, key, &kl, val, sizeof(val), &ts);
            key[kl] = '\0';
            memcpy(keys[i], key, kl + 1);
            assert_true(ts >= prev); /* in event-time order */
            assert_int_equal(ts / 5000, (WCTL_GEN_BASE_TIME_MS + (int64_t)b * 5000) / 5000);
            prev = ts;
        }
        for (int i = 0; i < 250; i++) {
            int n = 0;

            for (int j = 0; j < 250; j++)
                n += strcmp(keys[i], keys[j]) == 0;
            if (n > best)
                best = n;
        }
        assert_true(best >= 6 && best <= 9 + 3);
    }
    /* Key and the card field agree. */
    wctl_gen_record(&c, 3, key, &kl, val, sizeof(val), &ts);
    key[kl] = '\0';
    {
        json_t *v = json_loads(val, 0, NULL);

        assert_string_equal(json_string_value(json_object_get(v, "card")), key);
        assert_int_equal(json_integer_value(json_object_get(v, "ts")), ts);
        json_decref(v);
    }
}

static void test_gen_config(void **state)
{
    wctl_gen_cfg_t c;
    wctl_gen_kind_t k;

    (void)state;
    assert_int_equal(wctl_gen_kind_parse("iot", &k), 0);
    assert_int_equal(k, WCTL_GEN_IOT);
    assert_int_equal(wctl_gen_kind_parse("bogus", &k), -EINVAL);
    wctl_gen_cfg_init(&c, WCTL_GEN_SCORES);
    c.teams = 0;
    assert_int_equal(wctl_gen_cfg_finish(&c), -EINVAL);
    wctl_gen_cfg_init(&c, WCTL_GEN_IOT);
    c.error_pct = 101;
    assert_int_equal(wctl_gen_cfg_finish(&c), -EINVAL);
    wctl_gen_cfg_init(&c, WCTL_GEN_NEXMARK);
    assert_int_equal(c.event_rate, 10000);
    c.seed = 5;
    assert_int_equal(wctl_gen_cfg_finish(&c), 0);
    assert_int_equal(c.nexmark.seed, 5);
    assert_int_equal(c.nexmark.base_time_ms, WCTL_GEN_BASE_TIME_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_line),       cmocka_unit_test(test_text_line),
        cmocka_unit_test(test_human),           cmocka_unit_test(test_limits),
        cmocka_unit_test(test_gen_determinism), cmocka_unit_test(test_cards_bursts),
        cmocka_unit_test(test_gen_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
