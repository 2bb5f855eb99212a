/* SPDX-License-Identifier: Apache-2.0 */
/* Expression compiler and evaluator. A recursive-descent parser emits a flat
 * stack-machine program directly (no syntax tree), folding every construct
 * that reads no field by running the evaluator over its code at compile time.
 * Jumps are relative, so a folded snippet is simply cut off the end of the
 * program and replaced by one CONST. The evaluator keeps its operand stack on
 * the C stack (bounded at compile time) and writes strings only into the
 * caller's scratch arena. */
#include "dp_expr.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op {
    OP_CONST,  /* push consts[a] */
    OP_LOAD,   /* push row->slots[a] */
    OP_EXISTS, /* push slot a is not MISSING */
    OP_NEG,
    OP_NOT,
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MOD,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_AND,      /* top not true: keep it (as BOOL false or ERR), jump a; else pop */
    OP_OR,       /* top not false: keep it (as BOOL true or ERR), jump a; else pop */
    OP_TOBOOL,   /* top must be BOOL (right side of && and ||) */
    OP_COND,     /* pop; true: go on; false: jump a; else push ERR and jump a-1 (the JMP to end) */
    OP_JMP,      /* jump a */
    OP_COALESCE, /* top usable or a hard error: keep it, jump a; else pop */
    OP_LOWER,
    OP_UPPER,
    OP_LEN,
    OP_SUBSTR, /* n = 2 or 3 arguments */
    OP_CONTAINS,
    OP_STARTS,
    OP_ENDS,
    OP_ABS,
    OP_FLOOR,
    OP_CEIL,
    OP_ROUND,
    OP_MIN,
    OP_MAX,
    OP_INT,
    OP_DOUBLE,
    OP_STRING,
    OP_HASH,
};

/* One instruction. Jump offsets (a) are relative to the next instruction. */
typedef struct ins {
    uint8_t op;
    uint8_t n; /* argument count of a call */
    uint16_t unused;
    int32_t a;
} ins_t;

struct dp_expr {
    const ins_t *code;
    const dp_val_t *consts;
    char *pool; /* literal and folded string bytes the constants point into */
    uint32_t ncode;
    uint32_t nconst;
    bool is_const;
};

/* ---------------------------------------------------------------- values */

static const dp_val_t k_missing = {.type = DP_VAL_MISSING};

static inline bool is_num(const dp_val_t *v)
{
    return v->type == DP_VAL_INT || v->type == DP_VAL_DOUBLE;
}

static inline double num_d(const dp_val_t *v)
{
    return v->type == DP_VAL_INT ? (double)v->u.i : v->u.d;
}

/* The error an operand imposes on an operator that needs a value: an ERR
 * propagates, a MISSING becomes ERR(MISSING). Returns false if `v` is fine. */
static inline bool bad_operand(const dp_val_t *v, dp_val_t *res)
{
    if (v->type == DP_VAL_ERR) {
        *res = *v;
        return true;
    }
    if (v->type == DP_VAL_MISSING) {
        *res = dp_val_err(DP_VERR_MISSING);
        return true;
    }
    return false;
}

static char *salloc(dp_expr_scratch_t *s, size_t n)
{
    static char empty[1];
    char *p;

    if (n == 0)
        return empty;
    if (s == NULL || n > UINT32_MAX || s->cap - s->len < n)
        return NULL;
    p = s->buf + s->len;
    s->len += n;
    return p;
}

/* Compares an int with a double exactly: -1, 0, 1, or 2 when unordered (NaN). */
static int cmp_int_dbl(int64_t i, double d)
{
    int64_t t;
    double frac;

    if (isnan(d))
        return 2;
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    t = (int64_t)d;
    if (i != t)
        return i < t ? -1 : 1;
    frac = d - (double)t;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static int cmp_num(const dp_val_t *a, const dp_val_t *b)
{
    if (a->type == DP_VAL_INT && b->type == DP_VAL_INT)
        return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
    if (a->type == DP_VAL_INT)
        return cmp_int_dbl(a->u.i, b->u.d);
    if (b->type == DP_VAL_INT) {
        int c = cmp_int_dbl(b->u.i, a->u.d);
        return c == 2 ? 2 : -c;
    }
    if (isnan(a->u.d) || isnan(b->u.d))
        return 2;
    return a->u.d < b->u.d ? -1 : a->u.d > b->u.d;
}

static int cmp_str(const dp_val_t *a, const dp_val_t *b)
{
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = n > 0 ? memcmp(a->u.s, b->u.s, n) : 0;

    if (c != 0)
        return c < 0 ? -1 : 1;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* Equality after MISSING has been mapped to NULL. Incompatible types are unequal. */
static bool vals_equal(const dp_val_t *a, const dp_val_t *b)
{
    if (is_num(a) && is_num(b))
        return cmp_num(a, b) == 0;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case DP_VAL_NULL:
        return true;
    case DP_VAL_BOOL:
        return a->u.b == b->u.b;
    case DP_VAL_STR:
        return a->len == b->len && cmp_str(a, b) == 0;
    default:
        return false;
    }
}

static dp_val_t op_eq(dp_val_t a, dp_val_t b, bool ne)
{
    if (a.type == DP_VAL_ERR)
        return a;
    if (b.type == DP_VAL_ERR)
        return b;
    if (a.type == DP_VAL_MISSING)
        a.type = DP_VAL_NULL;
    if (b.type == DP_VAL_MISSING)
        b.type = DP_VAL_NULL;
    return dp_val_bool(vals_equal(&a, &b) != ne);
}

/* op: OP_LT, OP_LE, OP_GT, OP_GE. */
static dp_val_t op_rel(int op, dp_val_t a, dp_val_t b)
{
    dp_val_t r;
    int c;

    if (bad_operand(&a, &r) || bad_operand(&b, &r))
        return r;
    if (is_num(&a) && is_num(&b))
        c = cmp_num(&a, &b);
    else if (a.type == DP_VAL_STR && b.type == DP_VAL_STR)
        c = cmp_str(&a, &b);
    else
        return dp_val_err(DP_VERR_TYPE);
    if (c == 2)
        return dp_val_bool(false);
    switch (op) {
    case OP_LT:
        return dp_val_bool(c < 0);
    case OP_LE:
        return dp_val_bool(c <= 0);
    case OP_GT:
        return dp_val_bool(c > 0);
    default:
        return dp_val_bool(c >= 0);
    }
}

static dp_val_t dbl_result(double d)
{
    return isfinite(d) ? dp_val_double(d) : dp_val_err(DP_VERR_OVERFLOW);
}

static dp_val_t op_arith(int op, dp_val_t a, dp_val_t b, dp_expr_scratch_t *s)
{
    dp_val_t r;

    if (bad_operand(&a, &r) || bad_operand(&b, &r))
        return r;
    if (a.type == DP_VAL_INT && b.type == DP_VAL_INT) {
        int64_t x = a.u.i, y = b.u.i, z;

        switch (op) {
        case OP_ADD:
            if (__builtin_add_overflow(x, y, &z))
                return dp_val_err(DP_VERR_OVERFLOW);
            return dp_val_int(z);
        case OP_SUB:
            if (__builtin_sub_overflow(x, y, &z))
                return dp_val_err(DP_VERR_OVERFLOW);
            return dp_val_int(z);
        case OP_MUL:
            if (__builtin_mul_overflow(x, y, &z))
                return dp_val_err(DP_VERR_OVERFLOW);
            return dp_val_int(z);
        case OP_DIV:
            if (y == 0)
                return dp_val_err(DP_VERR_DIV_ZERO);
            if (x == INT64_MIN && y == -1)
                return dp_val_err(DP_VERR_OVERFLOW);
            return dp_val_int(x / y);
        default:
            if (y == 0)
                return dp_val_err(DP_VERR_DIV_ZERO);
            return dp_val_int(y == -1 ? 0 : x % y);
        }
    }
    if (is_num(&a) && is_num(&b)) {
        double x = num_d(&a), y = num_d(&b);

        switch (op) {
        case OP_ADD:
            return dbl_result(x + y);
        case OP_SUB:
            return dbl_result(x - y);
        case OP_MUL:
            return dbl_result(x * y);
        case OP_DIV:
            if (y == 0)
                return dp_val_err(DP_VERR_DIV_ZERO);
            return dbl_result(x / y);
        default:
            if (y == 0)
                return dp_val_err(DP_VERR_DIV_ZERO);
            return dbl_result(fmod(x, y));
        }
    }
    if (op == OP_ADD && a.type == DP_VAL_STR && b.type == DP_VAL_STR) {
        size_t n = (size_t)a.len + b.len;
        char *p;

        if (a.len == 0)
            return b;
        if (b.len == 0)
            return a;
        p = salloc(s, n);
        if (p == NULL)
            return dp_val_err(DP_VERR_NOMEM);
        memcpy(p, a.u.s, a.len);
        memcpy(p + a.len, b.u.s, b.len);
        return dp_val_str(p, (uint32_t)n);
    }
    return dp_val_err(DP_VERR_TYPE);
}

size_t dp_expr_fmt_double(double d, char *buf)
{
    int n = 0;

    if (!isfinite(d)) {
        memcpy(buf, "null", 5);
        return 4;
    }
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, DP_EXPR_NUM_MAX, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (strpbrk(buf, ".eE") == NULL) {
        buf[n++] = '.';
        buf[n++] = '0';
        buf[n] = '\0';
    }
    return (size_t)n;
}

/* Decimal text of an int (snprintf costs more than the rest of an evaluation). */
static size_t fmt_int(int64_t i, char *buf)
{
    char tmp[24];
    uint64_t u = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;
    size_t n = 0, k = 0;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (i < 0)
        buf[k++] = '-';
    while (n > 0)
        buf[k++] = tmp[--n];
    buf[k] = '\0';
    return k;
}

/* The canonical text of a scalar (string() and hash()): points at `buf` or a constant. */
static const char *scalar_text(const dp_val_t *v, char *buf, size_t *len)
{
    switch (v->type) {
    case DP_VAL_STR:
        *len = v->len;
        return v->u.s;
    case DP_VAL_INT:
        *len = fmt_int(v->u.i, buf);
        return buf;
    case DP_VAL_DOUBLE:
        *len = dp_expr_fmt_double(v->u.d, buf);
        return buf;
    case DP_VAL_BOOL:
        *len = v->u.b ? 4 : 5;
        return v->u.b ? "true" : "false";
    default:
        *len = 4;
        return "null";
    }
}

/* Number syntax int() and double() accept in strings: [+-]digits[.digits][e[+-]digits]. */
static bool num_syntax(const char *s, size_t n, bool *is_int)
{
    size_t i = 0, d = 0;

    *is_int = true;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, d++;
    if (d == 0)
        return false;
    if (i < n && s[i] == '.') {
        *is_int = false;
        d = 0;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            d++;
        if (d == 0)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        *is_int = false;
        d = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            d++;
        if (d == 0)
            return false;
    }
    return i == n;
}

/* Parses a STR as a number: INT for integer syntax (if `want_int` or it fits), DOUBLE otherwise. */
static dp_val_t parse_num(const dp_val_t *v, bool want_int)
{
    char buf[64];
    bool is_int;
    double d;

    if (v->len >= sizeof(buf) || !num_syntax(v->u.s, v->len, &is_int))
        return dp_val_err(DP_VERR_PARSE);
    memcpy(buf, v->u.s, v->len);
    buf[v->len] = '\0';
    if (is_int) {
        long long x;

        errno = 0;
        x = strtoll(buf, NULL, 10);
        if (errno == 0)
            return want_int ? dp_val_int(x) : dp_val_double((double)x);
        if (want_int)
            return dp_val_err(DP_VERR_OVERFLOW);
    }
    d = strtod(buf, NULL);
    if (!isfinite(d))
        return dp_val_err(DP_VERR_OVERFLOW);
    if (!want_int)
        return dp_val_double(d);
    if (d >= 9223372036854775808.0 || d < -9223372036854775808.0)
        return dp_val_err(DP_VERR_OVERFLOW);
    return dp_val_int((int64_t)d);
}

static dp_val_t fn_case(const dp_val_t *a, bool upper, dp_expr_scratch_t *s)
{
    char *p;

    if (a->type != DP_VAL_STR)
        return dp_val_err(DP_VERR_TYPE);
    p = salloc(s, a->len);
    if (p == NULL)
        return dp_val_err(DP_VERR_NOMEM);
    for (uint32_t i = 0; i < a->len; i++) {
        char c = a->u.s[i];

        if (upper && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (!upper && c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        p[i] = c;
    }
    return dp_val_str(p, a->len);
}

static dp_val_t fn_substr(const dp_val_t *a, int n)
{
    int64_t start, cnt;

    if (a[0].type != DP_VAL_STR || a[1].type != DP_VAL_INT || (n == 3 && a[2].type != DP_VAL_INT))
        return dp_val_err(DP_VERR_TYPE);
    start = a[1].u.i;
    cnt = n == 3 ? a[2].u.i : (int64_t)a[0].len;
    if (start < 0 || start > (int64_t)a[0].len || cnt < 0)
        return dp_val_err(DP_VERR_RANGE);
    if (cnt > (int64_t)a[0].len - start)
        cnt = (int64_t)a[0].len - start;
    if (cnt == 0)
        return dp_val_str("", 0);
    return dp_val_str(a[0].u.s + start, (uint32_t)cnt);
}

/* op: OP_CONTAINS, OP_STARTS, OP_ENDS. */
static dp_val_t fn_match(int op, const dp_val_t *a)
{
    const dp_val_t *s = &a[0], *t = &a[1];

    if (s->type != DP_VAL_STR || t->type != DP_VAL_STR)
        return dp_val_err(DP_VERR_TYPE);
    if (t->len == 0)
        return dp_val_bool(true);
    if (t->len > s->len)
        return dp_val_bool(false);
    switch (op) {
    case OP_CONTAINS:
        return dp_val_bool(memmem(s->u.s, s->len, t->u.s, t->len) != NULL);
    case OP_STARTS:
        return dp_val_bool(memcmp(s->u.s, t->u.s, t->len) == 0);
    default:
        return dp_val_bool(memcmp(s->u.s + s->len - t->len, t->u.s, t->len) == 0);
    }
}

static dp_val_t fn_round(int op, const dp_val_t *a)
{
    if (a->type == DP_VAL_INT) {
        if (op == OP_ABS && a->u.i < 0) {
            if (a->u.i == INT64_MIN)
                return dp_val_err(DP_VERR_OVERFLOW);
            return dp_val_int(-a->u.i);
        }
        return *a;
    }
    if (a->type != DP_VAL_DOUBLE)
        return dp_val_err(DP_VERR_TYPE);
    switch (op) {
    case OP_ABS:
        return dp_val_double(fabs(a->u.d));
    case OP_FLOOR:
        return dp_val_double(floor(a->u.d));
    case OP_CEIL:
        return dp_val_double(ceil(a->u.d));
    default:
        return dp_val_double(round(a->u.d));
    }
}

static dp_val_t fn_minmax(int op, const dp_val_t *a)
{
    int c;

    if (is_num(&a[0]) && is_num(&a[1]))
        c = cmp_num(&a[0], &a[1]);
    else if (a[0].type == DP_VAL_STR && a[1].type == DP_VAL_STR)
        c = cmp_str(&a[0], &a[1]);
    else
        return dp_val_err(DP_VERR_TYPE);
    if (c == 2)
        return a[0];
    if (op == OP_MIN)
        return c <= 0 ? a[0] : a[1];
    return c >= 0 ? a[0] : a[1];
}

static dp_val_t fn_conv(int op, const dp_val_t *a, dp_expr_scratch_t *s)
{
    char buf[DP_EXPR_NUM_MAX];
    const char *t;
    size_t n;
    char *p;

    switch (op) {
    case OP_INT:
        switch (a->type) {
        case DP_VAL_INT:
            return *a;
        case DP_VAL_BOOL:
            return dp_val_int(a->u.b ? 1 : 0);
        case DP_VAL_STR:
            return parse_num(a, true);
        case DP_VAL_DOUBLE:
            if (!(a->u.d < 9223372036854775808.0 && a->u.d >= -9223372036854775808.0))
                return dp_val_err(DP_VERR_OVERFLOW);
            return dp_val_int((int64_t)a->u.d);
        default:
            return dp_val_err(DP_VERR_TYPE);
        }
    case OP_DOUBLE:
        switch (a->type) {
        case DP_VAL_INT:
            return dp_val_double((double)a->u.i);
        case DP_VAL_DOUBLE:
            return *a;
        case DP_VAL_BOOL:
            return dp_val_double(a->u.b ? 1.0 : 0.0);
        case DP_VAL_STR:
            return parse_num(a, false);
        default:
            return dp_val_err(DP_VERR_TYPE);
        }
    case OP_STRING:
        if (a->type == DP_VAL_STR)
            return *a;
        t = scalar_text(a, buf, &n);
        if (t != buf)
            return dp_val_str(t, (uint32_t)n);
        p = salloc(s, n);
        if (p == NULL)
            return dp_val_err(DP_VERR_NOMEM);
        memcpy(p, buf, n);
        return dp_val_str(p, (uint32_t)n);
    default: { /* OP_HASH: FNV-1a 64 of the canonical text */
        uint64_t h = 14695981039346656037ull;

        t = scalar_text(a, buf, &n);
        for (size_t i = 0; i < n; i++) {
            h ^= (uint8_t)t[i];
            h *= 1099511628211ull;
        }
        return dp_val_int((int64_t)h);
    }
    }
}

/* Calls a function whose `n` arguments are a[0..n). */
static dp_val_t call(int op, int n, const dp_val_t *a, dp_expr_scratch_t *s)
{
    dp_val_t r;

    for (int i = 0; i < n; i++)
        if (bad_operand(&a[i], &r))
            return r;
    switch (op) {
    case OP_LOWER:
        return fn_case(a, false, s);
    case OP_UPPER:
        return fn_case(a, true, s);
    case OP_LEN:
        return a->type == DP_VAL_STR ? dp_val_int(a->len) : dp_val_err(DP_VERR_TYPE);
    case OP_SUBSTR:
        return fn_substr(a, n);
    case OP_CONTAINS:
    case OP_STARTS:
    case OP_ENDS:
        return fn_match(op, a);
    case OP_ABS:
    case OP_FLOOR:
    case OP_CEIL:
    case OP_ROUND:
        return fn_round(op, a);
    case OP_MIN:
    case OP_MAX:
        return fn_minmax(op, a);
    default:
        return fn_conv(op, a, s);
    }
}

/* Maps a non-BOOL, which a logic operator cannot use, to its error. */
static dp_val_t not_bool(const dp_val_t *v)
{
    if (v->type == DP_VAL_ERR)
        return *v;
    return dp_val_err(v->type == DP_VAL_MISSING ? DP_VERR_MISSING : DP_VERR_TYPE);
}

static dp_val_t run(const ins_t *code, uint32_t ncode, const dp_val_t *consts, const dp_row_t *row,
                    dp_expr_scratch_t *s)
{
    dp_val_t st[DP_EXPR_STACK_MAX];
    dp_val_t *sp = st;
    const ins_t *pc = code, *end = code + ncode;

    while (pc < end) {
        const ins_t *ip = pc++;

        switch (ip->op) {
        case OP_CONST:
            *sp++ = consts[ip->a];
            break;
        case OP_LOAD:
            *sp++ = row != NULL && (uint32_t)ip->a < row->nslots ? row->slots[ip->a] : k_missing;
            break;
        case OP_EXISTS: {
            dp_val_t v =
                row != NULL && (uint32_t)ip->a < row->nslots ? row->slots[ip->a] : k_missing;

            *sp++ = v.type == DP_VAL_ERR ? v : dp_val_bool(v.type != DP_VAL_MISSING);
            break;
        }
        case OP_NEG: {
            dp_val_t *v = &sp[-1];

            if (bad_operand(v, v))
                break;
            if (v->type == DP_VAL_INT)
                *v = v->u.i == INT64_MIN ? dp_val_err(DP_VERR_OVERFLOW) : dp_val_int(-v->u.i);
            else if (v->type == DP_VAL_DOUBLE)
                *v = dp_val_double(-v->u.d);
            else
                *v = dp_val_err(DP_VERR_TYPE);
            break;
        }
        case OP_NOT:
            sp[-1] = sp[-1].type == DP_VAL_BOOL ? dp_val_bool(!sp[-1].u.b) : not_bool(&sp[-1]);
            break;
        case OP_MOD:
            sp--;
            /* the common `x % n` of two small ints: a 32-bit division is much cheaper */
            if (sp[-1].type == DP_VAL_INT && sp[0].type == DP_VAL_INT && sp[0].u.i > 0 &&
                sp[0].u.i <= INT32_MAX && sp[-1].u.i >= 0 && sp[-1].u.i <= UINT32_MAX) {
                sp[-1].u.i = (uint32_t)sp[-1].u.i % (uint32_t)sp[0].u.i;
                break;
            }
            sp[-1] = op_arith(ip->op, sp[-1], sp[0], s);
            break;
        case OP_ADD:
        case OP_SUB:
        case OP_MUL:
        case OP_DIV:
            sp--;
            sp[-1] = op_arith(ip->op, sp[-1], sp[0], s);
            break;
        case OP_EQ:
        case OP_NE:
            sp--;
            if (sp[-1].type == DP_VAL_INT && sp[0].type == DP_VAL_INT) {
                sp[-1] = dp_val_bool((sp[-1].u.i == sp[0].u.i) != (ip->op == OP_NE));
                break;
            }
            sp[-1] = op_eq(sp[-1], sp[0], ip->op == OP_NE);
            break;
        case OP_LT:
        case OP_LE:
        case OP_GT:
        case OP_GE:
            sp--;
            sp[-1] = op_rel(ip->op, sp[-1], sp[0]);
            break;
        case OP_AND:
        case OP_OR: {
            bool stop_on = ip->op == OP_OR;

            if (sp[-1].type == DP_VAL_BOOL && sp[-1].u.b != stop_on) {
                sp--;
                break;
            }
            if (sp[-1].type != DP_VAL_BOOL)
                sp[-1] = not_bool(&sp[-1]);
            pc += ip->a;
            break;
        }
        case OP_TOBOOL:
            if (sp[-1].type != DP_VAL_BOOL)
                sp[-1] = not_bool(&sp[-1]);
            break;
        case OP_COND:
            sp--;
            if (sp->type == DP_VAL_BOOL) {
                if (!sp->u.b)
                    pc += ip->a;
                break;
            }
            *sp = not_bool(sp);
            sp++;
            pc += ip->a - 1;
            break;
        case OP_JMP:
            pc += ip->a;
            break;
        case OP_COALESCE: {
            const dp_val_t *v = &sp[-1];

            if (v->type == DP_VAL_MISSING || v->type == DP_VAL_NULL ||
                (v->type == DP_VAL_ERR && v->u.err == DP_VERR_MISSING))
                sp--;
            else
                pc += ip->a;
            break;
        }
        default:
            sp -= ip->n;
            *sp = call(ip->op, ip->n, sp, s);
            sp++;
            break;
        }
        assert(sp >= st && sp <= st + DP_EXPR_STACK_MAX);
    }
    assert(sp == st + 1);
    return st[0];
}

dp_val_t dp_expr_eval(const dp_expr_t *e, const dp_row_t *row, dp_expr_scratch_t *scratch)
{
    return run(e->code, e->ncode, e->consts, row, scratch);
}

dp_expr_verdict_t dp_expr_verdict(const dp_val_t *v)
{
    if (v->type == DP_VAL_BOOL)
        return v->u.b ? DP_EXPR_PASS : DP_EXPR_DROP;
    if (v->type == DP_VAL_ERR || v->type == DP_VAL_MISSING)
        return DP_EXPR_ERROR;
    return DP_EXPR_DROP;
}

dp_expr_verdict_t dp_expr_filter(const dp_expr_t *e, const dp_row_t *row,
                                 dp_expr_scratch_t *scratch, dp_val_err_t *verr)
{
    dp_val_t v = dp_expr_eval(e, row, scratch);
    dp_expr_verdict_t r = dp_expr_verdict(&v);

    if (verr != NULL)
        *verr = r != DP_EXPR_ERROR         ? DP_VERR_NONE
                : v.type == DP_VAL_MISSING ? DP_VERR_MISSING
                                           : (dp_val_err_t)v.u.err;
    return r;
}

bool dp_expr_is_const(const dp_expr_t *e)
{
    return e->is_const;
}

const char *dp_expr_errstr(int verr)
{
    switch (verr) {
    case DP_VERR_NONE:
        return "no error";
    case DP_VERR_MISSING:
        return "missing field";
    case DP_VERR_TYPE:
        return "type mismatch";
    case DP_VERR_DIV_ZERO:
        return "division by zero";
    case DP_VERR_OVERFLOW:
        return "numeric overflow";
    case DP_VERR_PARSE:
        return "not a number";
    case DP_VERR_RANGE:
        return "argument out of range";
    case DP_VERR_NOMEM:
        return "expression scratch space exhausted";
    default:
        return "unknown expression error";
    }
}

void dp_expr_free(dp_expr_t *e)
{
    if (e == NULL)
        return;
    free(e->pool);
    free(e);
}

/* ------------------------------------------------------------- compiler */

enum tok {
    T_EOF,
    T_INT,
    T_DBL,
    T_STR,
    T_IDENT,
    T_LP,
    T_RP,
    T_LB,
    T_RB,
    T_COMMA,
    T_QUEST,
    T_COLON,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_PCT,
    T_BANG,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_AND,
    T_OR,
};

typedef struct token {
    int type;
    size_t start; /* byte offset in the source */
    size_t len;
    uint64_t u;  /* T_INT magnitude (may be 2^63, see parse_unary) */
    double d;    /* T_DBL */
    size_t soff; /* T_STR: decoded bytes in the pool */
    size_t slen;
} tok_t;

typedef struct parser {
    const char *src;
    size_t srclen;
    size_t pos; /* where the next token starts */
    tok_t tok;
    dp_expr_resolve_cb resolve;
    void *ctx;
    ins_t *code;
    uint32_t ncode, capcode;
    dp_val_t *consts;
    uint32_t nconst, capconst;
    char *pool; /* fixed capacity, so constants may point into it while compiling */
    size_t poollen, poolcap;
    char *fold; /* scratch for folding */
    size_t foldcap;
    char *path; /* canonical path being built */
    size_t pathlen;
    int depth;
    int sd; /* stack depth the code emitted so far leaves at run time */
    uint32_t nodes;
    uint32_t nload; /* field reads emitted: a construct that adds none is constant */
    int rc;
    char *err;
    size_t errlen;
} parser_t;

static void compile_fail(parser_t *p, size_t off, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void compile_fail(parser_t *p, size_t off, int rc, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->rc != 0)
        return;
    p->rc = rc;
    if (p->err == NULL || p->errlen == 0)
        return;
    n = snprintf(p->err, p->errlen, "column %zu: ", off + 1);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Describes the current token for messages: "end of input" or 'text'. */
static const char *tok_desc(parser_t *p, char *buf, size_t cap)
{
    size_t n = p->tok.len;

    if (p->tok.type == T_EOF)
        return "end of input";
    if (n > 24)
        n = 24;
    snprintf(buf, cap, "'%.*s%s'", (int)n, p->src + p->tok.start, n < p->tok.len ? "..." : "");
    return buf;
}

static void fail_tok(parser_t *p, const char *expected)
{
    char b[64];

    compile_fail(p, p->tok.start, -EINVAL, "expected %s, found %s", expected,
                 tok_desc(p, b, sizeof(b)));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int hex4(const char *s, size_t n, size_t i, uint32_t *out)
{
    uint32_t v = 0;

    if (n - i < 4)
        return -1;
    for (int k = 0; k < 4; k++) {
        int h = hexval(s[i + (size_t)k]);

        if (h < 0)
            return -1;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Lexes a quoted string starting at p->pos into the pool. Decoded bytes never
 * outnumber source bytes, and the pool holds at least the source length. */
static int lex_string(parser_t *p)
{
    const char *s = p->src;
    size_t n = p->srclen, i = p->pos + 1;
    char q = s[p->pos];
    char *o = p->pool + p->poollen;
    size_t olen = 0;

    for (;;) {
        char c;

        if (i >= n) {
            compile_fail(p, p->pos, -EINVAL, "unterminated string");
            return -1;
        }
        c = s[i];
        if (c == q) {
            i++;
            break;
        }
        if (c != '\\') {
            o[olen++] = c;
            i++;
            continue;
        }
        if (i + 1 >= n) {
            compile_fail(p, p->pos, -EINVAL, "unterminated string");
            return -1;
        }
        c = s[i + 1];
        switch (c) {
        case 'n':
            o[olen++] = '\n';
            break;
        case 't':
            o[olen++] = '\t';
            break;
        case 'r':
            o[olen++] = '\r';
            break;
        case 'b':
            o[olen++] = '\b';
            break;
        case 'f':
            o[olen++] = '\f';
            break;
        case '\\':
        case '\'':
        case '"':
        case '/':
            o[olen++] = c;
            break;
        case 'u': {
            uint32_t cp, lo;

            if (hex4(s, n, i + 2, &cp) != 0) {
                compile_fail(p, i, -EINVAL, "expected 4 hex digits after \\u");
                return -1;
            }
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                compile_fail(p, i, -EINVAL, "unpaired surrogate in \\u escape");
                return -1;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (i + 7 >= n || s[i + 6] != '\\' || s[i + 7] != 'u' ||
                    hex4(s, n, i + 8, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) {
                    compile_fail(p, i, -EINVAL, "unpaired surrogate in \\u escape");
                    return -1;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
            olen += put_utf8(o + olen, cp);
            i += 4;
            break;
        }
        default:
            compile_fail(p, i, -EINVAL, "unknown escape '\\%c' in string", c);
            return -1;
        }
        i += 2;
    }
    p->tok.type = T_STR;
    p->tok.soff = p->poollen;
    p->tok.slen = olen;
    p->poollen += olen;
    p->tok.len = i - p->pos;
    p->pos = i;
    return 0;
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || is_digit(c);
}

static int lex_number(parser_t *p)
{
    const char *s = p->src;
    size_t n = p->srclen, i = p->pos;
    bool dbl = false;
    uint64_t u = 0;
    bool big = false;

    for (; i < n && is_digit(s[i]); i++) {
        unsigned dgt = (unsigned)(s[i] - '0');

        if (u > (UINT64_MAX - dgt) / 10)
            big = true;
        else
            u = u * 10 + dgt;
    }
    if (i + 1 < n && s[i] == '.' && is_digit(s[i + 1])) {
        dbl = true;
        for (i++; i < n && is_digit(s[i]); i++)
            ;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;

        if (j < n && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j >= n || !is_digit(s[j])) {
            compile_fail(p, i, -EINVAL, "expected digits in the exponent of a number");
            return -1;
        }
        dbl = true;
        for (i = j; i < n && is_digit(s[i]); i++)
            ;
    }
    if (i < n && (is_ident_char(s[i]) || s[i] == '.')) {
        compile_fail(p, i, -EINVAL, "unexpected '%c' after number", s[i]);
        return -1;
    }
    p->tok.len = i - p->pos;
    if (dbl) {
        char buf[128];

        if (p->tok.len >= sizeof(buf)) {
            compile_fail(p, p->pos, -EINVAL, "numeric literal too long");
            return -1;
        }
        memcpy(buf, s + p->pos, p->tok.len);
        buf[p->tok.len] = '\0';
        p->tok.d = strtod(buf, NULL);
        if (!isfinite(p->tok.d)) {
            compile_fail(p, p->pos, -EINVAL, "number out of range");
            return -1;
        }
        p->tok.type = T_DBL;
    } else {
        if (big || u > (uint64_t)INT64_MAX + 1) {
            compile_fail(p, p->pos, -EINVAL, "integer literal out of range");
            return -1;
        }
        p->tok.type = T_INT;
        p->tok.u = u;
    }
    p->pos = i;
    return 0;
}

/* Reads the next token into p->tok. */
static int lex(parser_t *p)
{
    const char *s = p->src;
    size_t n = p->srclen;
    char c, c2;

    while (p->pos < n &&
           (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r'))
        p->pos++;
    p->tok.start = p->pos;
    p->tok.len = 1;
    if (p->pos >= n) {
        p->tok.type = T_EOF;
        p->tok.len = 0;
        return 0;
    }
    c = s[p->pos];
    c2 = p->pos + 1 < n ? s[p->pos + 1] : '\0';
    if (is_ident_start(c)) {
        size_t i = p->pos;

        while (i < n && is_ident_char(s[i]))
            i++;
        p->tok.type = T_IDENT;
        p->tok.len = i - p->pos;
        p->pos = i;
        return 0;
    }
    if (is_digit(c))
        return lex_number(p);
    if (c == '\'' || c == '"')
        return lex_string(p);
    switch (c) {
    case '(':
        p->tok.type = T_LP;
        break;
    case ')':
        p->tok.type = T_RP;
        break;
    case '[':
        p->tok.type = T_LB;
        break;
    case ']':
        p->tok.type = T_RB;
        break;
    case ',':
        p->tok.type = T_COMMA;
        break;
    case '?':
        p->tok.type = T_QUEST;
        break;
    case ':':
        p->tok.type = T_COLON;
        break;
    case '+':
        p->tok.type = T_PLUS;
        break;
    case '-':
        p->tok.type = T_MINUS;
        break;
    case '*':
        p->tok.type = T_STAR;
        break;
    case '/':
        p->tok.type = T_SLASH;
        break;
    case '%':
        p->tok.type = T_PCT;
        break;
    case '!':
        p->tok.type = c2 == '=' ? T_NE : T_BANG;
        p->tok.len = c2 == '=' ? 2 : 1;
        break;
    case '<':
        p->tok.type = c2 == '=' ? T_LE : T_LT;
        p->tok.len = c2 == '=' ? 2 : 1;
        break;
    case '>':
        p->tok.type = c2 == '=' ? T_GE : T_GT;
        p->tok.len = c2 == '=' ? 2 : 1;
        break;
    case '=':
        if (c2 != '=') {
            compile_fail(p, p->pos, -EINVAL, "unexpected '='; use '==' to compare");
            return -1;
        }
        p->tok.type = T_EQ;
        p->tok.len = 2;
        break;
    case '&':
    case '|':
        if (c2 != c) {
            compile_fail(p, p->pos, -EINVAL, "unexpected '%c'; use '%c%c'", c, c, c);
            return -1;
        }
        p->tok.type = c == '&' ? T_AND : T_OR;
        p->tok.len = 2;
        break;
    default:
        if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
            compile_fail(p, p->pos, -EINVAL, "unexpected character '%c'", c);
        else
            compile_fail(p, p->pos, -EINVAL, "unexpected byte 0x%02x", (unsigned char)c);
        return -1;
    }
    p->pos += p->tok.len;
    return 0;
}

static bool tok_is(parser_t *p, const char *word)
{
    size_t n = strlen(word);

    return p->tok.type == T_IDENT && p->tok.len == n && memcmp(p->src + p->tok.start, word, n) == 0;
}

/* Counts a syntax node against the limit. */
static int node(parser_t *p)
{
    if (++p->nodes > DP_EXPR_NODES_MAX) {
        compile_fail(p, p->tok.start, -EINVAL, "expression has more than %d nodes",
                     DP_EXPR_NODES_MAX);
        return -1;
    }
    return 0;
}

/* Appends an instruction whose run-time effect on the stack depth is `delta`. */
static int emit(parser_t *p, int op, int n, int32_t a, int delta)
{
    if (p->ncode == p->capcode) {
        uint32_t cap = p->capcode ? p->capcode * 2 : 64;
        ins_t *c = realloc(p->code, cap * sizeof(*c));

        if (c == NULL) {
            compile_fail(p, p->tok.start, -ENOMEM, "out of memory");
            return -1;
        }
        p->code = c;
        p->capcode = cap;
    }
    p->code[p->ncode++] = (ins_t){.op = (uint8_t)op, .n = (uint8_t)n, .a = a};
    p->sd += delta;
    if (p->sd > DP_EXPR_STACK_MAX) {
        compile_fail(p, p->tok.start, -EINVAL, "expression needs more than %d stack values",
                     DP_EXPR_STACK_MAX);
        return -1;
    }
    return 0;
}

static int emit_const(parser_t *p, dp_val_t v)
{
    if (p->nconst == p->capconst) {
        uint32_t cap = p->capconst ? p->capconst * 2 : 16;
        dp_val_t *c = realloc(p->consts, cap * sizeof(*c));

        if (c == NULL) {
            compile_fail(p, p->tok.start, -ENOMEM, "out of memory");
            return -1;
        }
        p->consts = c;
        p->capconst = cap;
    }
    p->consts[p->nconst] = v;
    return emit(p, OP_CONST, 0, (int32_t)p->nconst++, 1);
}

/* Points the jump at `at` to the current end of the code. */
static void patch(parser_t *p, uint32_t at)
{
    p->code[at].a = (int32_t)(p->ncode - (at + 1));
}

/* Replaces the code emitted since `start` by one CONST if it read no field. */
static void fold(parser_t *p, uint32_t start, uint32_t nload0)
{
    dp_expr_scratch_t s;
    dp_val_t v;

    if (p->rc != 0 || p->nload != nload0 || p->ncode - start <= 1)
        return;
    dp_expr_scratch_init(&s, p->fold, p->foldcap);
    v = run(p->code + start, p->ncode - start, p->consts, NULL, &s);
    if (v.type == DP_VAL_ERR && v.u.err == DP_VERR_NOMEM)
        return;
    if (v.type == DP_VAL_STR && v.len > 0 && !(v.u.s >= p->pool && v.u.s < p->pool + p->poolcap)) {
        /* keep room for the literals still to come (at most the rest of the source) */
        if (p->poolcap - p->poollen < (size_t)v.len + (p->srclen - p->pos))
            return; /* computed at run time instead */
        memcpy(p->pool + p->poollen, v.u.s, v.len);
        v.u.s = p->pool + p->poollen;
        p->poollen += v.len;
    }
    p->ncode = start;
    p->sd--;
    emit_const(p, v);
}

static int parse_expr(parser_t *p);

static bool is_seg_char(char c)
{
    return is_ident_char(c) || c == '$';
}

static int path_put(parser_t *p, const char *s, size_t n)
{
    memcpy(p->path + p->pathlen, s, n);
    p->pathlen += n;
    return 0;
}

/* Parses a field path whose root word is the current token; emits `op` (LOAD or EXISTS). */
static int parse_path(parser_t *p, int op)
{
    const char *s = p->src;
    size_t start = p->tok.start;
    bool is_header = tok_is(p, "header");
    bool nested = is_header || tok_is(p, "payload");
    int nseg = 0;
    int slot;

    p->pathlen = 0;
    path_put(p, s + start, p->tok.len);
    for (;;) {
        size_t i = p->pos;

        if (i + 1 < p->srclen && s[i] == '.' && is_seg_char(s[i + 1])) {
            size_t j = i + 1;

            if (!nested) {
                compile_fail(p, i, -EINVAL, "%.*s has no sub-fields", (int)p->tok.len, s + start);
                return -1;
            }
            while (j < p->srclen && is_seg_char(s[j]))
                j++;
            path_put(p, s + i, j - i);
            p->pos = j;
            nseg++;
        } else if (i < p->srclen && s[i] == '[' && nested) {
            size_t at;

            p->pos = i + 1;
            if (lex(p) != 0)
                return -1;
            at = p->tok.start;
            if (p->tok.type != T_STR) {
                fail_tok(p, "a quoted field name after '['");
                return -1;
            }
            /* a header name may hold dots (header.NAME takes all the rest); a payload
             * member may not, since '.' separates segments */
            if (p->tok.slen == 0 ||
                (!is_header && memchr(p->pool + p->tok.soff, '.', p->tok.slen) != NULL) ||
                memchr(p->pool + p->tok.soff, '\0', p->tok.slen) != NULL) {
                compile_fail(p, at, -EINVAL, "a field name must be non-empty, without '.' or NUL");
                return -1;
            }
            path_put(p, ".", 1);
            path_put(p, p->pool + p->tok.soff, p->tok.slen);
            p->poollen -= p->tok.slen; /* the name is not a constant */
            if (lex(p) != 0)
                return -1;
            if (p->tok.type != T_RB) {
                fail_tok(p, "']' after the field name");
                return -1;
            }
            nseg++;
        } else {
            break;
        }
    }
    if (is_header && nseg == 0) {
        compile_fail(p, p->pos, -EINVAL, "expected '.NAME' or '[\"NAME\"]' after header");
        return -1;
    }
    slot = p->resolve(p->ctx, p->path, p->pathlen);
    if (slot < 0) {
        compile_fail(p, start, slot, "field '%.*s' refused: %s", (int)p->pathlen, p->path,
                     strerror(-slot));
        return -1;
    }
    p->nload++;
    if (emit(p, op, 0, slot, 1) != 0)
        return -1;
    return lex(p);
}

typedef struct fn {
    const char *name;
    int op;
    int min, max;
} fn_t;

/* `op` -1: if(), -2: coalesce(), -3: exists(). */
static const fn_t k_fns[] = {
    {"lower", OP_LOWER, 1, 1},       {"upper", OP_UPPER, 1, 1},
    {"len", OP_LEN, 1, 1},           {"substr", OP_SUBSTR, 2, 3},
    {"contains", OP_CONTAINS, 2, 2}, {"startsWith", OP_STARTS, 2, 2},
    {"endsWith", OP_ENDS, 2, 2},     {"abs", OP_ABS, 1, 1},
    {"floor", OP_FLOOR, 1, 1},       {"ceil", OP_CEIL, 1, 1},
    {"round", OP_ROUND, 1, 1},       {"min", OP_MIN, 2, 255},
    {"max", OP_MAX, 2, 255},         {"int", OP_INT, 1, 1},
    {"double", OP_DOUBLE, 1, 1},     {"string", OP_STRING, 1, 1},
    {"hash", OP_HASH, 1, 1},         {"if", -1, 3, 3},
    {"coalesce", -2, 1, 255},        {"exists", -3, 1, 1},
};

static bool is_path_root(parser_t *p)
{
    return tok_is(p, "payload") || tok_is(p, "header") || tok_is(p, "key") ||
           tok_is(p, "timestamp") || tok_is(p, "eventtime");
}

/* Parses "name(args)" with the current token at '('. */
static int parse_call(parser_t *p, const fn_t *f, size_t at)
{
    uint32_t jumps[256];
    uint32_t cond = 0;
    int argc = 0;

    if (lex(p) != 0)
        return -1;
    if (p->tok.type == T_RP) {
        compile_fail(p, at, -EINVAL, "%s takes %d%s argument%s, got 0", f->name, f->min,
                     f->max > f->min ? " or more" : "", f->min == 1 ? "" : "s");
        return -1;
    }
    for (;;) {
        if (argc == f->max) {
            compile_fail(p, p->tok.start, -EINVAL, "too many arguments to %s (at most %d)", f->name,
                         f->max);
            return -1;
        }
        if (f->op == -3) {
            if (!is_path_root(p)) {
                fail_tok(p, "a field path as the argument of exists");
                return -1;
            }
            if (parse_path(p, OP_EXISTS) != 0)
                return -1;
        } else if (parse_expr(p) != 0) {
            return -1;
        }
        argc++;
        if (f->op == -1 && argc == 1) {
            cond = p->ncode;
            if (emit(p, OP_COND, 0, 0, -1) != 0)
                return -1;
        } else if (f->op == -1 && argc == 2) {
            patch(p, cond); /* else starts after the JMP emitted next */
            p->code[cond].a++;
            jumps[0] = p->ncode;
            if (emit(p, OP_JMP, 0, 0, -1) != 0)
                return -1;
        } else if ((f->op == OP_MIN || f->op == OP_MAX) && argc >= 2) {
            if (emit(p, f->op, 2, 0, -1) != 0)
                return -1;
        }
        if (p->tok.type == T_RP)
            break;
        if (p->tok.type != T_COMMA) {
            char b[64];

            compile_fail(p, p->tok.start, -EINVAL, "expected ')' after arguments of %s, found %s",
                         f->name, tok_desc(p, b, sizeof(b)));
            return -1;
        }
        if (f->op == -2) {
            jumps[argc - 1] = p->ncode;
            if (emit(p, OP_COALESCE, 0, 0, -1) != 0)
                return -1;
        }
        if (lex(p) != 0)
            return -1;
    }
    if (argc < f->min) {
        compile_fail(p, at, -EINVAL, "%s takes %d%s argument%s, got %d", f->name, f->min,
                     f->max > f->min ? " or more" : "", f->min == 1 ? "" : "s", argc);
        return -1;
    }
    if (f->op == -1) {
        patch(p, jumps[0]);
    } else if (f->op == -2) {
        for (int i = 0; i < argc - 1; i++)
            patch(p, jumps[i]);
    } else if (f->op >= 0 && f->op != OP_MIN && f->op != OP_MAX) {
        if (emit(p, f->op, argc, 0, 1 - argc) != 0)
            return -1;
    }
    return lex(p);
}

static int parse_primary(parser_t *p)
{
    uint32_t start = p->ncode, nload0 = p->nload;
    size_t at = p->tok.start;

    if (node(p) != 0)
        return -1;
    switch (p->tok.type) {
    case T_INT:
        if (p->tok.u > (uint64_t)INT64_MAX) {
            compile_fail(p, at, -EINVAL, "integer literal out of range");
            return -1;
        }
        if (emit_const(p, dp_val_int((int64_t)p->tok.u)) != 0)
            return -1;
        return lex(p);
    case T_DBL:
        if (emit_const(p, dp_val_double(p->tok.d)) != 0)
            return -1;
        return lex(p);
    case T_STR:
        if (emit_const(p, dp_val_str(p->pool + p->tok.soff, (uint32_t)p->tok.slen)) != 0)
            return -1;
        return lex(p);
    case T_LP: {
        if (lex(p) != 0 || parse_expr(p) != 0)
            return -1;
        if (p->tok.type != T_RP) {
            char b[96];

            snprintf(b, sizeof(b), "')' to close the '(' at column %zu", at + 1);
            fail_tok(p, b);
            return -1;
        }
        return lex(p);
    }
    case T_IDENT:
        break;
    default:
        fail_tok(p, "an operand");
        return -1;
    }
    if (tok_is(p, "true") || tok_is(p, "false")) {
        if (emit_const(p, dp_val_bool(tok_is(p, "true"))) != 0)
            return -1;
        return lex(p);
    }
    if (tok_is(p, "null")) {
        if (emit_const(p, dp_val_null()) != 0)
            return -1;
        return lex(p);
    }
    if (is_path_root(p))
        return parse_path(p, OP_LOAD);
    {
        const char *name = p->src + at;
        size_t len = p->tok.len, i = p->pos;

        /* look for '(' before lexing on, so the message names the identifier */
        while (i < p->srclen &&
               (p->src[i] == ' ' || p->src[i] == '\t' || p->src[i] == '\n' || p->src[i] == '\r'))
            i++;
        if (i >= p->srclen || p->src[i] != '(') {
            compile_fail(
                p, at, -EINVAL,
                "unknown name '%.*s'; expected a literal, a field path (payload.x, header.x, "
                "key, timestamp, eventtime) or a function call",
                (int)(len > 32 ? 32 : len), name);
            return -1;
        }
        if (lex(p) != 0)
            return -1;
        for (size_t k = 0; k < sizeof(k_fns) / sizeof(k_fns[0]); k++) {
            if (strlen(k_fns[k].name) == len && memcmp(k_fns[k].name, name, len) == 0) {
                if (parse_call(p, &k_fns[k], at) != 0)
                    return -1;
                fold(p, start, nload0);
                return 0;
            }
        }
        compile_fail(p, at, -EINVAL, "unknown function '%.*s'", (int)(len > 32 ? 32 : len), name);
        return -1;
    }
}

static int parse_unary(parser_t *p)
{
    uint32_t start = p->ncode, nload0 = p->nload;
    int op, rc;

    if (p->tok.type != T_MINUS && p->tok.type != T_BANG)
        return parse_primary(p);
    op = p->tok.type == T_MINUS ? OP_NEG : OP_NOT;
    if (++p->depth > DP_EXPR_DEPTH_MAX) {
        compile_fail(p, p->tok.start, -EINVAL, "expression nested deeper than %d",
                     DP_EXPR_DEPTH_MAX);
        return -1;
    }
    if (node(p) != 0 || lex(p) != 0)
        return -1;
    if (op == OP_NEG && p->tok.type == T_INT) {
        /* -9223372036854775808 is a literal, not the negation of one too big */
        if (node(p) != 0 || emit_const(p, dp_val_int((int64_t)(0 - p->tok.u))) != 0)
            return -1;
        rc = lex(p);
    } else {
        rc = parse_unary(p);
        if (rc == 0)
            rc = emit(p, op, 0, 0, 0);
        fold(p, start, nload0);
    }
    p->depth--;
    return rc;
}

static int parse_mul(parser_t *p)
{
    uint32_t start = p->ncode, nload0 = p->nload;

    if (parse_unary(p) != 0)
        return -1;
    while (p->tok.type == T_STAR || p->tok.type == T_SLASH || p->tok.type == T_PCT) {
        int op = p->tok.type == T_STAR ? OP_MUL : p->tok.type == T_SLASH ? OP_DIV : OP_MOD;

        if (node(p) != 0 || lex(p) != 0 || parse_unary(p) != 0 || emit(p, op, 0, 0, -1) != 0)
            return -1;
        fold(p, start, nload0);
    }
    return 0;
}

static int parse_add(parser_t *p)
{
    uint32_t start = p->ncode, nload0 = p->nload;

    if (parse_mul(p) != 0)
        return -1;
    while (p->tok.type == T_PLUS || p->tok.type == T_MINUS) {
        int op = p->tok.type == T_PLUS ? OP_ADD : OP_SUB;

        if (node(p) != 0 || lex(p) != 0 || parse_mul(p) != 0 || emit(p, op, 0, 0, -1) != 0)
            return -1;
        fold(p, start, nload0);
    }
    return 0;
}

static int rel_op(int t)
{
    switch (t) {
    case T_LT:
        return OP_LT;
    case T_LE:
        return OP_LE;
    case T_GT:
        return OP_GT;
    case T_GE:
        return OP_GE;
    default:
        return -1;
    }
}

static int parse_rel(parser_t *p)
{
    uint32_t start = p->ncode, nload0 = p->nload;
    int op;

    if (parse_add(p) != 0)
        return -1;
    op = rel_op(p->tok.type);
    if (op < 0)
        return 0;
    if (node(p) != 0 || lex(p) != 0 || parse_add(p) != 0 || emit(p, op, 0, 0, -1) != 0)
        return -1;
    fold(p, start, nload0);
    if (rel_op(p->tok.type) >= 0) {
        compile_fail(p, p->tok.start, -EINVAL,
                     "comparisons cannot be chained; combine them with &&");
        return -1;
    }
    return 0;
}

static int parse_eq(parser_t *p)
{
    uint32_t start = p->ncode, nload0 = p->nload;

    if (parse_rel(p) != 0)
        return -1;
    while (p->tok.type == T_EQ || p->tok.type == T_NE) {
        int op = p->tok.type == T_EQ ? OP_EQ : OP_NE;

        if (node(p) != 0 || lex(p) != 0 || parse_rel(p) != 0 || emit(p, op, 0, 0, -1) != 0)
            return -1;
        fold(p, start, nload0);
    }
    return 0;
}

static int parse_not(parser_t *p)
{
    uint32_t start = p->ncode, nload0 = p->nload;
    int rc;

    if (!tok_is(p, "not"))
        return parse_eq(p);
    if (++p->depth > DP_EXPR_DEPTH_MAX) {
        compile_fail(p, p->tok.start, -EINVAL, "expression nested deeper than %d",
                     DP_EXPR_DEPTH_MAX);
        return -1;
    }
    if (node(p) != 0 || lex(p) != 0)
        return -1;
    rc = parse_not(p);
    if (rc == 0)
        rc = emit(p, OP_NOT, 0, 0, 0);
    fold(p, start, nload0);
    p->depth--;
    return rc;
}

/* Left-associative short-circuit chain: && / and (OP_AND) or || / or (OP_OR). */
static int parse_logic(parser_t *p, int op)
{
    uint32_t start = p->ncode, nload0 = p->nload;
    int tt = op == OP_AND ? T_AND : T_OR;
    const char *word = op == OP_AND ? "and" : "or";

    if ((op == OP_AND ? parse_not(p) : parse_logic(p, OP_AND)) != 0)
        return -1;
    while (p->tok.type == tt || tok_is(p, word)) {
        uint32_t j = p->ncode;

        if (node(p) != 0 || lex(p) != 0 || emit(p, op, 0, 0, -1) != 0)
            return -1;
        if ((op == OP_AND ? parse_not(p) : parse_logic(p, OP_AND)) != 0)
            return -1;
        if (emit(p, OP_TOBOOL, 0, 0, 0) != 0)
            return -1;
        patch(p, j);
        fold(p, start, nload0);
    }
    return 0;
}

static int parse_expr(parser_t *p)
{
    uint32_t start = p->ncode, nload0 = p->nload;
    uint32_t cond, jmp;

    if (++p->depth > DP_EXPR_DEPTH_MAX) {
        compile_fail(p, p->tok.start, -EINVAL, "expression nested deeper than %d",
                     DP_EXPR_DEPTH_MAX);
        return -1;
    }
    if (parse_logic(p, OP_OR) != 0)
        return -1;
    if (p->tok.type == T_QUEST) {
        cond = p->ncode;
        if (node(p) != 0 || lex(p) != 0 || emit(p, OP_COND, 0, 0, -1) != 0)
            return -1;
        if (parse_expr(p) != 0)
            return -1;
        if (p->tok.type != T_COLON) {
            fail_tok(p, "':' in the conditional expression");
            return -1;
        }
        jmp = p->ncode;
        if (lex(p) != 0 || emit(p, OP_JMP, 0, 0, -1) != 0)
            return -1;
        patch(p, cond);
        if (parse_expr(p) != 0)
            return -1;
        patch(p, jmp);
        fold(p, start, nload0);
    }
    p->depth--;
    return 0;
}

int dp_expr_compile(const char *src, dp_expr_resolve_cb resolve, void *ctx, dp_expr_t **out,
                    char *err, size_t errlen)
{
    parser_t p = {.src = src, .resolve = resolve, .ctx = ctx, .err = err, .errlen = errlen};
    dp_expr_t *e = NULL;
    int rc;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    p.srclen = strnlen(src, DP_EXPR_SRC_MAX + 1);
    if (p.srclen > DP_EXPR_SRC_MAX) {
        compile_fail(&p, 0, -EINVAL, "expression longer than %d bytes", DP_EXPR_SRC_MAX);
        return p.rc;
    }
    p.poolcap = 2 * p.srclen + 64;
    p.foldcap = 4 * p.srclen + 1024;
    p.pool = malloc(p.poolcap);
    p.fold = malloc(p.foldcap);
    p.path = malloc(p.srclen + 1);
    if (p.pool == NULL || p.fold == NULL || p.path == NULL) {
        compile_fail(&p, 0, -ENOMEM, "out of memory");
        goto out;
    }
    if (lex(&p) != 0)
        goto out;
    if (p.tok.type == T_EOF) {
        fail_tok(&p, "an expression");
        goto out;
    }
    if (parse_expr(&p) != 0)
        goto out;
    if (p.tok.type != T_EOF) {
        fail_tok(&p, "an operator or the end of the expression");
        goto out;
    }
    assert(p.sd == 1);
    e = malloc(sizeof(*e) + p.ncode * sizeof(ins_t) + p.nconst * sizeof(dp_val_t));
    if (e == NULL) {
        compile_fail(&p, 0, -ENOMEM, "out of memory");
        goto out;
    }
    {
        dp_val_t *consts = (dp_val_t *)(e + 1);
        ins_t *code = (ins_t *)(consts + p.nconst);

        if (p.nconst > 0)
            memcpy(consts, p.consts, p.nconst * sizeof(dp_val_t));
        memcpy(code, p.code, p.ncode * sizeof(ins_t));
        e->code = code;
        e->consts = consts;
    }
    e->ncode = p.ncode;
    e->nconst = p.nconst;
    e->is_const = p.nload == 0;
    e->pool = p.pool;
    p.pool = NULL;
    *out = e;
out:
    rc = p.rc;
    free(p.pool);
    free(p.fold);
    free(p.path);
    free(p.code);
    free(p.consts);
    return rc;
}
