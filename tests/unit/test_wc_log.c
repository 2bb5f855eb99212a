/* SPDX-License-Identifier: Apache-2.0 */
/* Description: JSON-lines logging: each line parses as one JSON object with
 * ts/level/component/msg, extra fields, escaping, and level filtering. */
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

#include "wc_log.h"

static void test_line_shape(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    json_error_t jerr;
    json_t *line;

    wc_log_set_stream(f);
    wc_log_set_level(WC_LOG_INFO);
    wc_log(WC_LOG_INFO, "store", "listening", "{s:i, s:s}", "port", 9092, "topic", "we\"ird\nname");
    wc_log(WC_LOG_DEBUG, "store", "filtered out", NULL);
    wc_log(WC_LOG_ERROR, "store", "bad fields", "{s:i", "broken", 1);
    fclose(f);
    wc_log_set_stream(NULL);

    /* Exactly two lines: the debug one is below the level. */
    {
        char *nl = strchr(text, '\n');

        assert_non_null(nl);
        assert_non_null(strchr(nl + 1, '\n'));
        assert_null(strchr(strchr(nl + 1, '\n') + 1, '\n'));
        *nl = '\0';
        line = json_loads(text, 0, &jerr);
        assert_non_null(line);
        assert_string_equal(json_string_value(json_object_get(line, "level")), "info");
        assert_string_equal(json_string_value(json_object_get(line, "component")), "store");
        assert_string_equal(json_string_value(json_object_get(line, "msg")), "listening");
        assert_int_equal(json_integer_value(json_object_get(line, "port")), 9092);
        assert_string_equal(json_string_value(json_object_get(line, "topic")), "we\"ird\nname");
        assert_int_equal(strlen(json_string_value(json_object_get(line, "ts"))), 24);
        json_decref(line);
        line = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, &jerr);
        assert_non_null(line);
        assert_non_null(json_object_get(line, "log_error"));
        json_decref(line);
    }
    free(text);
}

static void test_parse_level(void **state)
{
    wc_log_level_t l;

    assert_int_equal(wc_log_parse_level("warn", &l), 0);
    assert_int_equal(l, WC_LOG_WARN);
    assert_int_equal(wc_log_parse_level("verbose", &l), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_shape),
        cmocka_unit_test(test_parse_level),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
