/* Description: expression language: syntax, precedence, types, errors, functions, folding. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* with asserts on, so the evaluator checks its stack discipline on every test */
#undef NDEBUG
#include "../../dataplane/src/dp_expr.c"

/* The test row: known paths with fixed values; any other path gets a MISSING slot. */
#define NSLOTS 64
static const char *g_names[NSLOTS] = {
    "payload.a",         "payload.d",     "payload.s", "payload.n",
    "payload.b",         "header.region", "key",       "timestamp",
    "eventtime",         "payload.big",   "payload.e", "payload.odd name",
    "header.weir.error",
};
static int g_nnames = 13;
static dp_val_t g_slots[NSLOTS];
static dp_row_t g_row;
static char g_arena[256];
static dp_expr_scratch_t g_scratch;

static int resolve(void *ctx, const char *path, size_t len)
{
    int *calls = ctx;

    if (calls != NULL)
        (*calls)++;
    if (len == 6 && memcmp(path, "refuse", 6) == 0)
        return -EPERM;
    if (len == 11 && memcmp(path, "header.deny", 11) == 0)
        return -EPERM;
    for (int i = 0; i < g_nnames; i++)
        if (strlen(g_names[i]) == len && memcmp(g_names[i], path, len) == 0)
            return i;
    if (g_nnames == NSLOTS)
        return -ENOSPC;
    g_names[g_nnames] = strndup(path, len); /* freed in teardown */
    return g_nnames++;
}

static int setup(void **state)
{
    memset(g_slots, 0, sizeof(g_slots));
    g_slots[0] = dp_val_int(10);
    g_slots[1] = dp_val_double(2.5);
    g_slots[2] = dp_val_str("Hello", 5);
    g_slots[3] = dp_val_null();
    g_slots[4] = dp_val_bool(true);
    g_slots[5] = dp_val_str("eu", 2);
    g_slots[6] = dp_val_str("k1", 2);
    g_slots[7] = dp_val_int(1000);
    g_slots[8] = dp_val_int(900);
    g_slots[9] = dp_val_int(INT64_MAX);
    g_slots[10] = dp_val_str("", 0);
    g_slots[11] = dp_val_int(7);
    g_slots[12] = dp_val_str("boom", 4);
    g_row = (dp_row_t){.slots = g_slots, .nslots = NSLOTS};
    dp_expr_scratch_init(&g_scratch, g_arena, sizeof(g_arena));
    return 0;
}

static int teardown(void **state)
{
    for (int i = 13; i < g_nnames; i++)
        free((void *)g_names[i]);
    g_nnames = 13;
    return 0;
}

/* Compiles and evaluates; fails the test on a compile error. */
static dp_val_t ev(const char *src)
{
    char err[256];
    dp_expr_t *e = NULL;
    dp_val_t v;
    int rc = dp_expr_compile(src, resolve, NULL, &e, err, sizeof(err));

    if (rc != 0)
        fail_msg("compile '%s': %s", src, err);
    dp_expr_scratch_reset(&g_scratch);
    v = dp_expr_eval(e, &g_row, &g_scratch);
    dp_expr_free(e);
    return v; /* STR results point into g_arena, the row or static data (constants are freed!) */
}

/* Evaluates and checks a STR result (copied before the expression is freed). */
static void ev_str(const char *src, const char *want)
{
    char err[256];
    dp_expr_t *e = NULL;
    dp_val_t v;

    if (dp_expr_compile(src, resolve, NULL, &e, err, sizeof(err)) != 0)
        fail_msg("compile '%s': %s", src, err);
    dp_expr_scratch_reset(&g_scratch);
    v = dp_expr_eval(e, &g_row, &g_scratch);
    if (v.type != DP_VAL_STR)
        fail_msg("'%s': type %d, want STR", src, v.type);
    if (v.len != strlen(want) || memcmp(v.u.s, want, v.len) != 0)
        fail_msg("'%s': got '%.*s', want '%s'", src, (int)v.len, v.u.s, want);
    dp_expr_free(e);
}

static void ev_int(const char *src, int64_t want)
{
    dp_val_t v = ev(src);

    if (v.type != DP_VAL_INT || v.u.i != want)
        fail_msg("'%s': type %d value %lld, want INT %lld", src, v.type, (long long)v.u.i,
                 (long long)want);
}

static void ev_dbl(const char *src, double want)
{
    dp_val_t v = ev(src);

    if (v.type != DP_VAL_DOUBLE || v.u.d != want)
        fail_msg("'%s': type %d value %g, want DOUBLE %g", src, v.type, v.u.d, want);
}

static void ev_bool(const char *src, bool want)
{
    dp_val_t v = ev(src);

    if (v.type != DP_VAL_BOOL || v.u.b != want)
        fail_msg("'%s': type %d (err %d), want BOOL %d", src, v.type, v.u.err, want);
}

static void ev_err(const char *src, dp_val_err_t want)
{
    dp_val_t v = ev(src);

    if (v.type != DP_VAL_ERR || v.u.err != (int)want)
        fail_msg("'%s': type %d (err %d), want ERR %d", src, v.type, v.u.err, want);
}

static void compile_err(const char *src, const char *want)
{
    char err[256];
    dp_expr_t *e = NULL;
    int rc = dp_expr_compile(src, resolve, NULL, &e, err, sizeof(err));

    if (rc == 0)
        fail_msg("'%s' compiled, want error '%s'", src, want);
    assert_null(e);
    if (strstr(err, want) == NULL)
        fail_msg("'%s': got error '%s', want '%s'", src, err, want);
}

static void test_literals(void **state)
{
    ev_int("42", 42);
    ev_int("-9223372036854775808", INT64_MIN);
    ev_int("9223372036854775807", INT64_MAX);
    ev_dbl("2.5", 2.5);
    ev_dbl("1e3", 1000.0);
    ev_dbl("1.5E-2", 0.015);
    ev_bool("true", true);
    ev_bool("false", false);
    assert_int_equal(ev("null").type, DP_VAL_NULL);
    compile_err("'it' 's'", "column 6: expected an operator or the end of the expression");
}

static void test_strings(void **state)
{
    ev_str("'a\\'b'", "a'b");
    ev_str("\"a\\\"b\"", "a\"b");
    ev_str("'\\n\\t\\r\\\\\\/'", "\n\t\r\\/");
    ev_str("'\\u00e9'", "\xc3\xa9");
    ev_str("'\\ud83d\\ude00'", "\xf0\x9f\x98\x80");
    ev_str("'caf\xc3\xa9'", "caf\xc3\xa9");
    ev_str("'ab' + 'cd'", "abcd");
    ev_str("payload.s + ', ' + header.region", "Hello, eu");
    ev_str("payload.e + payload.s", "Hello");
    compile_err("'abc", "column 1: unterminated string");
    compile_err("'\\q'", "column 2: unknown escape '\\q'");
    compile_err("'\\u12'", "expected 4 hex digits");
    compile_err("'\\udc00'", "unpaired surrogate");
}

static void test_arithmetic(void **state)
{
    ev_int("1 + 2 * 3", 7);
    ev_int("(1 + 2) * 3", 9);
    ev_int("7 / 2", 3);
    ev_int("-7 / 2", -3);
    ev_int("-7 % 3", -1);
    ev_int("7 % -3", 1);
    ev_int("10 - 2 - 3", 5);
    ev_int("payload.a % 3", 1);
    ev_int("- payload.a", -10);
    ev_int("--payload.a", 10);
    ev_dbl("7 / 2.0", 3.5);
    ev_dbl("payload.a * payload.d", 25.0);
    ev_dbl("7.5 % 2", 1.5);
    ev_dbl("-payload.d", -2.5);
    ev_err("payload.big + 1", DP_VERR_OVERFLOW);
    ev_err("payload.big * 2", DP_VERR_OVERFLOW);
    ev_err("-payload.big - 2", DP_VERR_OVERFLOW);
    ev_err("-9223372036854775808 / -1", DP_VERR_OVERFLOW);
    ev_int("-9223372036854775808 % -1", 0);
    ev_err("-(-9223372036854775808)", DP_VERR_OVERFLOW);
    ev_err("payload.a / 0", DP_VERR_DIV_ZERO);
    ev_err("payload.a % 0", DP_VERR_DIV_ZERO);
    ev_err("payload.a / 0.0", DP_VERR_DIV_ZERO);
    ev_err("1e308 * 10", DP_VERR_OVERFLOW);
    ev_err("'a' + 1", DP_VERR_TYPE);
    ev_err("'a' - 'b'", DP_VERR_TYPE);
    ev_err("true + 1", DP_VERR_TYPE);
    ev_err("payload.n + 1", DP_VERR_TYPE);
    ev_err("-'a'", DP_VERR_TYPE);
    compile_err("9223372036854775808", "column 1: integer literal out of range");
    compile_err("99999999999999999999999", "integer literal out of range");
    compile_err("1e999", "number out of range");
    compile_err("1e", "expected digits in the exponent");
    compile_err("12abc", "unexpected 'a' after number");
}

static void test_compare(void **state)
{
    ev_bool("1 == 1.0", true);
    ev_bool("2 > 1.5", true);
    ev_bool("payload.a >= 10", true);
    ev_bool("payload.a < 10.000001", true);
    ev_bool("9007199254740993 > 9007199254740992.0", true); /* exact int/double compare */
    ev_bool("9007199254740993 == 9007199254740992.0", false);
    ev_bool("'abc' < 'abd'", true);
    ev_bool("'ab' < 'abc'", true);
    ev_bool("'b' > 'abc'", true);
    ev_bool("'\xc3\xa9' > 'z'", true); /* bytewise */
    ev_bool("'1' == 1", false);
    ev_bool("true == 1", false);
    ev_bool("null == null", true);
    ev_bool("payload.n == null", true);
    ev_bool("payload.n != 0", true);
    ev_bool("true != false", true);
    ev_bool("header.region == 'eu'", true);
    ev_bool("1 < 2 == true", true);
    ev_err("'1' < 1", DP_VERR_TYPE);
    ev_err("true < false", DP_VERR_TYPE);
    ev_err("payload.n < 1", DP_VERR_TYPE);
    compile_err("1 < 2 < 3", "column 7: comparisons cannot be chained");
    compile_err("payload.a = 1", "column 11: unexpected '='; use '=='");
}

static void test_missing(void **state)
{
    ev_err("payload.nope + 1", DP_VERR_MISSING);
    ev_err("payload.nope > 1", DP_VERR_MISSING);
    ev_err("lower(payload.nope)", DP_VERR_MISSING);
    ev_err("!payload.nope", DP_VERR_MISSING);
    ev_err("-payload.nope", DP_VERR_MISSING);
    ev_bool("payload.nope == null", true);
    ev_bool("payload.nope != null", false);
    ev_bool("payload.nope == payload.other", true);
    ev_bool("payload.nope == 1", false);
    ev_bool("payload.nope != 'x'", true);
    ev_bool("exists(payload.nope)", false);
    ev_bool("exists(payload.n)", true); /* null but present */
    ev_bool("exists(header.region)", true);
    ev_bool("exists(payload[\"odd name\"])", true);
    assert_int_equal(ev("payload.nope").type, DP_VAL_MISSING);
    /* errors propagate through == and functions */
    ev_err("payload.a / 0 == 1", DP_VERR_DIV_ZERO);
    ev_err("len(payload.a / 0)", DP_VERR_DIV_ZERO);
}

static void test_logic(void **state)
{
    ev_bool("true && false", false);
    ev_bool("true and true", true);
    ev_bool("false || true", true);
    ev_bool("false or false", false);
    ev_bool("!true", false);
    ev_bool("not false", true);
    ev_bool("not 1 == 2", true); /* `not` binds looser than == */
    ev_bool("!false == true", true);
    ev_bool("true || false && false", true); /* && binds tighter */
    /* short-circuit: the right side is never evaluated */
    ev_bool("false && payload.a / 0 == 1", false);
    ev_bool("true || payload.nope > 1", true);
    ev_bool("payload.a > 5 && header.region == 'eu'", true);
    ev_bool("payload.a > 50 || header.region == 'us'", false);
    ev_err("true && payload.nope > 1", DP_VERR_MISSING);
    ev_err("1 && true", DP_VERR_TYPE);
    ev_err("true && 1", DP_VERR_TYPE);
    ev_err("payload.nope || true", DP_VERR_MISSING);
    ev_err("not 'x'", DP_VERR_TYPE);
    ev_err("payload.a / 0 == 0 || true", DP_VERR_DIV_ZERO);
}

static void test_ternary(void **state)
{
    ev_int("payload.a > 5 ? 1 : 2", 1);
    ev_int("payload.a > 50 ? 1 : 2", 2);
    ev_int("false ? 1 : true ? 2 : 3", 2); /* right-associative */
    ev_int("payload.b ? payload.a > 5 ? 1 : 2 : 3", 1);
    ev_str("payload.a < 5 ? 'low' : payload.a < 50 ? 'mid' : 'high'", "mid");
    ev_int("true ? 1 : payload.a / 0", 1);
    ev_err("payload.nope ? 1 : 2", DP_VERR_MISSING);
    ev_err("payload.a ? 1 : 2", DP_VERR_TYPE);
    ev_int("if(payload.a > 5, 10, 20)", 10);
    ev_int("if(payload.a > 50, 10, 20)", 20);
    ev_int("if(payload.a > 5, 10, payload.a / 0)", 10);
    ev_err("if(payload.s, 1, 2)", DP_VERR_TYPE);
    ev_int("if(payload.a > 5, 1, 2) + if(false, 1, 2)", 3);
    compile_err("true ? 1", "column 9: expected ':' in the conditional expression");
    compile_err("if(true, 1)", "column 1: if takes 3 arguments, got 2");
}

static void test_functions(void **state)
{
    ev_str("lower(payload.s)", "hello");
    ev_str("upper(payload.s)", "HELLO");
    ev_str("upper('caf\xc3\xa9')", "CAF\xc3\xa9"); /* ASCII only */
    ev_int("len(payload.s)", 5);
    ev_int("len('\xc3\xa9')", 2);
    ev_str("substr(payload.s, 1)", "ello");
    ev_str("substr(payload.s, 1, 3)", "ell");
    ev_str("substr(payload.s, 1, 100)", "ello");
    ev_str("substr(payload.s, 5)", "");
    ev_err("substr(payload.s, 6)", DP_VERR_RANGE);
    ev_err("substr(payload.s, -1)", DP_VERR_RANGE);
    ev_err("substr(payload.s, 0, -1)", DP_VERR_RANGE);
    ev_err("substr(payload.s, 1.0)", DP_VERR_TYPE);
    ev_bool("contains(payload.s, 'ell')", true);
    ev_bool("contains(payload.s, 'xyz')", false);
    ev_bool("contains(payload.s, '')", true);
    ev_bool("startsWith(payload.s, 'He')", true);
    ev_bool("startsWith(payload.s, 'Hello!')", false);
    ev_bool("endsWith(payload.s, 'llo')", true);
    ev_bool("endsWith(payload.s, 'He')", false);
    ev_err("contains(1, 'a')", DP_VERR_TYPE);
    ev_int("abs(-3)", 3);
    ev_dbl("abs(-2.5)", 2.5);
    ev_err("abs(-9223372036854775807 - 1)", DP_VERR_OVERFLOW);
    ev_dbl("floor(2.7)", 2.0);
    ev_dbl("ceil(2.1)", 3.0);
    ev_dbl("round(2.5)", 3.0);
    ev_dbl("round(-2.5)", -3.0);
    ev_int("floor(7)", 7);
    ev_int("min(3, 4)", 3);
    ev_int("max(3, 4)", 4);
    ev_dbl("min(3, 2.5)", 2.5);
    ev_int("max(1, 9, 4, 7)", 9);
    ev_str("min('b', 'a')", "a");
    ev_err("min(1, 'a')", DP_VERR_TYPE);
    ev_int("coalesce(payload.nope, payload.n, 5)", 5);
    ev_int("coalesce(payload.a, 5)", 10);
    ev_int("coalesce(payload.nope + 1, 0)", 0); /* ERR(MISSING) counts as missing */
    ev_err("coalesce(payload.a / 0, 1)", DP_VERR_DIV_ZERO);
    assert_int_equal(ev("coalesce(payload.nope, null)").type, DP_VAL_NULL);
    assert_int_equal(ev("coalesce(payload.nope)").type, DP_VAL_MISSING);
    ev_int("int(2.9)", 2);
    ev_int("int(-2.9)", -2);
    ev_int("int('42')", 42);
    ev_int("int('-4.5e1')", -45);
    ev_int("int(true)", 1);
    ev_err("int('4x')", DP_VERR_PARSE);
    ev_err("int('')", DP_VERR_PARSE);
    ev_err("int(' 4')", DP_VERR_PARSE);
    ev_err("int(1e19)", DP_VERR_OVERFLOW);
    ev_err("int('99999999999999999999')", DP_VERR_OVERFLOW);
    ev_err("int(null)", DP_VERR_TYPE);
    ev_dbl("double(3)", 3.0);
    ev_dbl("double('2.5')", 2.5);
    ev_dbl("double('7')", 7.0);
    ev_err("double('1e999')", DP_VERR_OVERFLOW);
    ev_str("string(42)", "42");
    ev_str("string(-7)", "-7");
    ev_str("string(3.0)", "3.0");
    ev_str("string(0.1)", "0.1");
    ev_str("string(1.0/3)", "0.3333333333333333");
    ev_str("string(1e20)", "1e+20");
    ev_str("string(true)", "true");
    ev_str("string(null)", "null");
    ev_str("string(payload.a) + '-' + key", "10-k1");
    /* FNV-1a 64 of "abc" is 0xe71fa2190541574b */
    ev_int("hash('abc')", (int64_t)0xe71fa2190541574bull);
    ev_int("hash(payload.a) - hash('10')", 0);
    ev_int("hash(2.5) - hash('2.5')", 0);
    ev_err("hash(payload.nope)", DP_VERR_MISSING);
    compile_err("substr(payload.s, 1", "column 20: expected ')' after arguments of substr");
    compile_err("substr(payload.s 1)",
                "column 18: expected ')' after arguments of substr, found '1'");
    compile_err("substr(payload.s)", "column 1: substr takes 2 or more arguments, got 1");
    compile_err("lower()", "column 1: lower takes 1 argument, got 0");
    compile_err("lower('a', 'b')", "too many arguments to lower");
    compile_err("frobnicate(1)", "column 1: unknown function 'frobnicate'");
    compile_err("exists(1)", "column 8: expected a field path as the argument of exists");
}

static void test_paths(void **state)
{
    ev_int("payload[\"odd name\"]", 7);
    ev_int("payload['odd name'] + 1", 8);
    ev_str("header.weir.error", "boom");
    ev_str("header['weir.error']", "boom");
    ev_int("timestamp - eventtime", 100);
    ev_str("key", "k1");
    ev_int("payload.$x_1 == null ? 1 : 2", 1);
    assert_int_equal(ev("payload").type, DP_VAL_MISSING); /* a new slot, never filled */
}

static void test_paths_more(void **state)
{
    int calls = 0;
    char err[256];
    dp_expr_t *e = NULL;

    assert_int_equal(dp_expr_compile("payload.a + payload.a + payload.x.y.z", resolve, &calls, &e,
                                     err, sizeof(err)),
                     0);
    assert_int_equal(calls, 3);
    dp_expr_free(e);
    assert_int_equal(dp_expr_compile("header.deny == 1", resolve, NULL, &e, err, sizeof(err)),
                     -EPERM);
    assert_null(e);
    assert_non_null(strstr(err, "column 1: field 'header.deny' refused"));
    compile_err("header", "column 7: expected '.NAME' or '[\"NAME\"]' after header");
    compile_err("key.x", "column 4: key has no sub-fields");
    compile_err("payload['a.b']", "column 9: a field name must be non-empty, without '.'");
    compile_err("payload['']", "a field name must be non-empty");
    compile_err("payload[1]", "column 9: expected a quoted field name after '['");
    compile_err("payload['a'", "expected ']' after the field name");
    compile_err("foo.bar", "column 1: unknown name 'foo'");
}

static void test_syntax_errors(void **state)
{
    compile_err("", "column 1: expected an expression, found end of input");
    compile_err("   ", "column 4: expected an expression");
    compile_err("1 +", "column 4: expected an operand, found end of input");
    compile_err("(1 + 2", "column 7: expected ')' to close the '(' at column 1");
    compile_err("1 2", "column 3: expected an operator or the end of the expression, found '2'");
    compile_err("1 # 2", "column 3: unexpected character '#'");
    compile_err("1 & 2", "column 3: unexpected '&'; use '&&'");
    compile_err("a\x01", "column 1: unknown name 'a'");
    compile_err("1 \x01", "column 3: unexpected byte 0x01");
    compile_err(")", "column 1: expected an operand, found ')'");
    /* NULL error buffer is fine */
    {
        dp_expr_t *e = NULL;

        assert_int_equal(dp_expr_compile("(", resolve, NULL, &e, NULL, 0), -EINVAL);
        assert_null(e);
    }
}

static void test_limits(void **state)
{
    size_t n = 20000;
    char *s = malloc(200000 + 1);
    size_t i;
    dp_expr_t *e = NULL;
    char err[256];

    /* deep parentheses, unary chains and `not` chains are refused, not recursed into */
    memset(s, '(', n);
    s[n] = '\0';
    assert_int_equal(dp_expr_compile(s, resolve, NULL, &e, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "nested deeper than 64"));
    memset(s, '-', n);
    assert_int_equal(dp_expr_compile(s, resolve, NULL, &e, err, sizeof(err)), -EINVAL);
    for (i = 0; i + 4 < 4000; i += 4)
        memcpy(s + i, "not ", 4);
    strcpy(s + i, "true");
    assert_int_equal(dp_expr_compile(s, resolve, NULL, &e, err, sizeof(err)), -EINVAL);
    /* 63 levels of parentheses are fine */
    i = 0;
    for (int k = 0; k < 63; k++)
        s[i++] = '(';
    s[i++] = '1';
    for (int k = 0; k < 63; k++)
        s[i++] = ')';
    s[i] = '\0';
    assert_int_equal(dp_expr_compile(s, resolve, NULL, &e, err, sizeof(err)), 0);
    dp_expr_free(e);
    /* a long flat chain folds to one constant */
    for (i = 0; i < 2000 * 2; i += 2)
        memcpy(s + i, "1+", 2);
    strcpy(s + i, "1");
    assert_int_equal(dp_expr_compile(s, resolve, NULL, &e, err, sizeof(err)), 0);
    assert_int_equal(e->ncode, 1);
    assert_int_equal(dp_expr_eval(e, NULL, NULL).u.i, 2001);
    dp_expr_free(e);
    /* too many nodes */
    for (i = 0; i < 5000 * 2; i += 2)
        memcpy(s + i, "1+", 2);
    strcpy(s + i, "1");
    assert_int_equal(dp_expr_compile(s, resolve, NULL, &e, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "more than 4096 nodes"));
    /* a right-leaning chain that needs a deep stack: a+(a+(a+...)) within 64 levels is fine */
    i = 0;
    for (int k = 0; k < 60; k++)
        i += (size_t)sprintf(s + i, "payload.a+(");
    i += (size_t)sprintf(s + i, "1");
    for (int k = 0; k < 60; k++)
        s[i++] = ')';
    s[i] = '\0';
    assert_int_equal(dp_expr_compile(s, resolve, NULL, &e, err, sizeof(err)), 0);
    assert_int_equal(dp_expr_eval(e, &g_row, NULL).u.i, 601);
    dp_expr_free(e);
    /* too long */
    memset(s, ' ', 200000);
    s[200000] = '\0';
    assert_int_equal(dp_expr_compile(s, resolve, NULL, &e, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "longer than 65536 bytes"));
    free(s);
}

static void test_folding(void **state)
{
    dp_expr_t *e = NULL;
    char err[256];

    assert_int_equal(
        dp_expr_compile("upper('ab' + 'c') + string(1 + 2)", resolve, NULL, &e, err, sizeof(err)),
        0);
    assert_true(dp_expr_is_const(e));
    assert_int_equal(e->ncode, 1);
    {
        dp_val_t v = dp_expr_eval(e, NULL, NULL); /* no scratch needed: folded */

        assert_int_equal(v.type, DP_VAL_STR);
        assert_memory_equal(v.u.s, "ABC3", 4);
    }
    dp_expr_free(e);
    /* a constant error is folded too, and stays an error at run time */
    assert_int_equal(dp_expr_compile("1 / 0", resolve, NULL, &e, err, sizeof(err)), 0);
    assert_true(dp_expr_is_const(e));
    assert_int_equal(dp_expr_eval(e, NULL, NULL).u.err, DP_VERR_DIV_ZERO);
    dp_expr_free(e);
    /* `payload.auction % 123 == 0`: LOAD CONST MOD CONST EQ */
    assert_int_equal(
        dp_expr_compile("payload.a % (100 + 23) == 0 * 5", resolve, NULL, &e, err, sizeof(err)), 0);
    assert_false(dp_expr_is_const(e));
    assert_int_equal(e->ncode, 5);
    dp_expr_free(e);
    assert_int_equal(dp_expr_compile("exists(payload.a)", resolve, NULL, &e, err, sizeof(err)), 0);
    assert_false(dp_expr_is_const(e));
    dp_expr_free(e);
}

static void test_scratch(void **state)
{
    char small[8];
    dp_expr_scratch_t s;
    dp_expr_t *e = NULL;
    char err[256];
    dp_val_t v;

    assert_int_equal(
        dp_expr_compile("lower(payload.s) + upper(payload.s)", resolve, NULL, &e, err, sizeof(err)),
        0);
    dp_expr_scratch_init(&s, small, sizeof(small));
    v = dp_expr_eval(e, &g_row, &s);
    assert_int_equal(v.type, DP_VAL_ERR);
    assert_int_equal(v.u.err, DP_VERR_NOMEM);
    v = dp_expr_eval(e, &g_row, NULL);
    assert_int_equal(v.u.err, DP_VERR_NOMEM);
    dp_expr_scratch_init(&s, g_arena, sizeof(g_arena));
    v = dp_expr_eval(e, &g_row, &s);
    assert_int_equal(v.type, DP_VAL_STR);
    assert_memory_equal(v.u.s, "helloHELLO", 10);
    assert_int_equal(s.len, 20);
    dp_expr_free(e);
    /* slots beyond the row and a NULL row read as MISSING */
    assert_int_equal(dp_expr_compile("exists(payload.a)", resolve, NULL, &e, err, sizeof(err)), 0);
    assert_false(dp_expr_eval(e, NULL, NULL).u.b);
    {
        dp_row_t r = {.slots = g_slots, .nslots = 0};

        assert_false(dp_expr_eval(e, &r, NULL).u.b);
    }
    dp_expr_free(e);
}

static void test_filter(void **state)
{
    static const struct {
        const char *src;
        dp_expr_verdict_t want;
        dp_val_err_t err;
    } cases[] = {
        {"payload.a > 5 && header.region == 'eu'", DP_EXPR_PASS, DP_VERR_NONE},
        {"payload.a > 50", DP_EXPR_DROP, DP_VERR_NONE},
        {"payload.a", DP_EXPR_DROP, DP_VERR_NONE},
        {"payload.n", DP_EXPR_DROP, DP_VERR_NONE},
        {"payload.nope", DP_EXPR_ERROR, DP_VERR_MISSING},
        {"payload.nope > 1", DP_EXPR_ERROR, DP_VERR_MISSING},
        {"payload.s > 1", DP_EXPR_ERROR, DP_VERR_TYPE},
    };
    char err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dp_expr_t *e = NULL;
        dp_val_err_t verr = DP_VERR_PARSE;

        assert_int_equal(dp_expr_compile(cases[i].src, resolve, NULL, &e, err, sizeof(err)), 0);
        if (dp_expr_filter(e, &g_row, &g_scratch, &verr) != cases[i].want || verr != cases[i].err)
            fail_msg("filter '%s': verdict/err mismatch (err %d)", cases[i].src, verr);
        dp_expr_free(e);
    }
    assert_string_equal(dp_expr_errstr(DP_VERR_MISSING), "missing field");
    assert_string_equal(dp_expr_errstr(99), "unknown expression error");
}

static void test_fmt_double(void **state)
{
    char b[DP_EXPR_NUM_MAX];
    static const double vals[] = {
        0.1, 1.0 / 3, 2.0 / 3, 1e-300, 123456789.123456789, -5e-324, 1.7976931348623157e308, 0.3};

    dp_expr_fmt_double(3.0, b);
    assert_string_equal(b, "3.0");
    dp_expr_fmt_double(-0.0, b);
    assert_string_equal(b, "-0.0");
    dp_expr_fmt_double(0.1, b);
    assert_string_equal(b, "0.1");
    dp_expr_fmt_double(1e100, b);
    assert_string_equal(b, "1e+100");
    dp_expr_fmt_double(NAN, b);
    assert_string_equal(b, "null");
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        size_t n = dp_expr_fmt_double(vals[i], b);

        assert_true(n < DP_EXPR_NUM_MAX);
        assert_true(strtod(b, NULL) == vals[i]);
    }
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Not a timed assertion: prints ns per evaluation for a few typical expressions. */
static void test_bench(void **state)
{
    static const char *srcs[] = {
        "payload.a % 123 == 0",
        "payload.a > 5 && header.region == 'eu'",
        "lower(payload.s) + '-' + string(payload.a)",
    };
    const int iters =
        getenv("WEIR_EXPR_BENCH_ITERS") ? atoi(getenv("WEIR_EXPR_BENCH_ITERS")) : 200000;
    char err[256];
    volatile int64_t sink = 0;

    for (size_t k = 0; k < sizeof(srcs) / sizeof(srcs[0]); k++) {
        dp_expr_t *e = NULL;
        double t0;

        assert_int_equal(dp_expr_compile(srcs[k], resolve, NULL, &e, err, sizeof(err)), 0);
        t0 = now_ns();
        for (int i = 0; i < iters; i++) {
            dp_val_t v;

            g_slots[0].u.i = i;
            dp_expr_scratch_reset(&g_scratch);
            v = dp_expr_eval(e, &g_row, &g_scratch);
            sink += v.type;
        }
        printf("bench: %-45s %6.1f ns/eval\n", srcs[k], (now_ns() - t0) / (iters > 0 ? iters : 1));
        dp_expr_free(e);
    }
    g_slots[0].u.i = 10;
    (void)sink;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_literals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arithmetic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ternary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_functions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paths_more, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scratch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter, setup, teardown),
        cmocka_unit_test(test_fmt_double),
        cmocka_unit_test_setup_teardown(test_bench, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
