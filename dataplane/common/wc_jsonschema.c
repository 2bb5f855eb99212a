/* SPDX-License-Identifier: Apache-2.0 */
/* JSON Schema validator (draft 2020-12 subset) over jansson. A schema compiles
 * once into a graph of nodes, with patterns compiled and $refs resolved, so a
 * validation is a walk of that graph; see docs/internals/jsonschema.md. */
#include "wc_jsonschema.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* In-place applicators ($ref, allOf, anyOf, oneOf, not, if/then/else) apply a
 * schema to the same value. Chains of them longer than this are rejected at
 * compile time; cycles of them (which would never terminate) always are. */
#define MAX_INPLACE_CHAIN 256
/* Bound on nested validate() calls, whatever mix of document descent and
 * in-place applicators produces them: this is what protects the stack. */
#define MAX_FRAMES 1024
/* Patterns: bounded repetition counts, estimated compiled size and nesting of
 * repetitions, because glibc's regcomp copies "(x{255}){255}" per repetition
 * and is superlinear in nested repetitions. */
#define MAX_PATTERN_BOUND 255
#define MAX_PATTERN_WEIGHT 1024
#define MAX_PATTERN_GROUPS 32
#define MAX_PATTERN_NESTED_REPEAT 3
#define MAX_PATTERN_REPEATED_GROUP 32
#define MAX_PATTERN_REPEATED_COPIES 256
/* Message sizes: values quoted in messages are cut to this many bytes. */
#define QUOTE_MAX 64
#define ENUM_LIST_MAX 16
/* Pointers in messages are shortened to about this many bytes. */
#define POINTER_MAX 240
/* Private error buffers used while trying anyOf/oneOf branches. */
#define BRANCH_ERR_MAX 1024
/* Arrays at least this long use sorting rather than pairwise comparison for
 * uniqueItems. */
#define UNIQUE_SORT_MIN 16
/* Structural hashing and equality stop descending here (jansson's parser
 * already limits nesting to 2048). */
#define MAX_EQUAL_DEPTH 2048
#define MAX_HASH_DEPTH 32

#define SCHEMA_URI "https://json-schema.org/draft/2020-12/schema"

enum {
    T_NULL = 1u << 0,
    T_BOOLEAN = 1u << 1,
    T_OBJECT = 1u << 2,
    T_ARRAY = 1u << 3,
    T_NUMBER = 1u << 4,
    T_STRING = 1u << 5,
    T_INTEGER = 1u << 6,
};

/* The order in which "must be of type a, b or c" lists types. */
static const struct {
    const char *name;
    unsigned bit;
} type_names[] = {
    {"object", T_OBJECT}, {"array", T_ARRAY},     {"string", T_STRING}, {"integer", T_INTEGER},
    {"number", T_NUMBER}, {"boolean", T_BOOLEAN}, {"null", T_NULL},
};

struct node;

struct nodelist {
    struct node **v;
    size_t n;
};

/* Every branch of an anyOf/oneOf pins property `key` to a const (directly or
 * through $ref): the branches to try follow from the value's `key`. */
struct disc {
    const char *key;
    size_t len;
    const json_t **consts; /* borrowed, one per branch */
};

struct pprop {
    regex_t re;
    struct node *schema;
};

/* One compiled (sub)schema. json_t pointers are borrowed from the schema
 * document, which the wc_jsonschema_t owns. Absent counts are -1. */
struct node {
    int boolean;    /* -1: an object schema; 0 or 1: the schema false or true */
    unsigned types; /* T_* mask; 0 accepts any type */
    const json_t *enum_vals;
    const json_t *const_val;
    struct node *ref;
    /* numbers */
    const json_t *minimum, *maximum, *xmin, *xmax, *multiple_of;
    /* strings */
    json_int_t min_len, max_len;
    regex_t *pattern;
    const char *pattern_src;
    /* arrays */
    struct nodelist prefix;
    struct node *items;
    json_int_t min_items, max_items;
    bool unique;
    /* objects */
    json_t *prop_index; /* owned: property name -> integer index into props */
    struct nodelist props;
    struct pprop *pprops;
    size_t npprops;
    struct node *additional, *property_names;
    json_int_t min_props, max_props;
    const json_t *required, *dep_required;
    /* in-place applicators */
    struct nodelist all_of, any_of, one_of;
    struct disc *any_disc, *one_disc;
    struct node *not_, *if_, *then_, *else_;
    /* compile time only: schema pointer for messages, DFS colour */
    char *where;
    int mark;
};

struct wc_jsonschema {
    json_t *doc; /* the schema document; nodes borrow from it */
    struct node *root;
    struct node **nodes; /* every node, for freeing */
    size_t nnodes, cap;
    json_t *def_index; /* root $defs name -> integer index into defs */
    struct node **defs;
    size_t ndefs;
};

/* One JSON pointer segment: an object key, or an array index if key is NULL. */
struct seg {
    const char *key;
    size_t len;
    size_t index;
};

/* ---- bounded string building ---------------------------------------------- */

/* Appends never overflow: once a piece does not fit, the buffer is cut on a
 * UTF-8 boundary and later pieces are dropped; len keeps counting. */
struct sb {
    char *buf;
    size_t cap;
    size_t len;
    bool full;
};

static void sb_init(struct sb *b, char *buf, size_t cap)
{
    b->buf = buf;
    b->cap = cap;
    b->len = 0;
    b->full = cap == 0;
    if (cap > 0)
        buf[0] = '\0';
}

static void sb_putn(struct sb *b, const char *s, size_t n)
{
    size_t room, k;

    if (!b->full) {
        room = b->cap - 1 - b->len;
        k = n < room ? n : room;
        if (k < n) {
            while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
                k--;
            b->full = true;
        }
        memcpy(b->buf + b->len, s, k);
        b->buf[b->len + k] = '\0';
    }
    b->len += n;
}

static void sb_puts(struct sb *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_vprintf(struct sb *b, const char *fmt, va_list ap)
{
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);

    if (n < 0)
        return;
    sb_putn(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void sb_printf(struct sb *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

/* Writes s as a JSON string literal, cut after max bytes with "...". */
static void sb_quote(struct sb *b, const char *s, size_t n, size_t max)
{
    size_t i, start = 0, end = n;
    bool cut = false;

    if (n > max) {
        end = max;
        while (end > 0 && ((unsigned char)s[end] & 0xC0) == 0x80)
            end--;
        cut = true;
    }
    sb_putn(b, "\"", 1);
    for (i = 0; i < end; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        sb_putn(b, s + start, i - start);
        if (ch == '"' || ch == '\\')
            sb_printf(b, "\\%c", ch);
        else
            sb_printf(b, "\\u%04x", ch);
        start = i + 1;
    }
    sb_putn(b, s + start, end - start);
    sb_puts(b, cut ? "...\"" : "\"");
}

static void sb_number(struct sb *b, const json_t *v)
{
    char tmp[40];
    double d;

    if (json_is_integer(v)) {
        sb_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    }
    d = json_real_value(v);
    /* The shortest form that reads back as the same double. */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    sb_puts(b, tmp);
}

/* A value as compact JSON, cut after QUOTE_MAX bytes. */
static void sb_value(struct sb *b, const json_t *v)
{
    char *text;
    size_t n;

    switch (json_typeof(v)) {
    case JSON_STRING:
        sb_quote(b, json_string_value(v), json_string_length(v), QUOTE_MAX);
        return;
    case JSON_INTEGER:
    case JSON_REAL:
        sb_number(b, v);
        return;
    default:
        break;
    }
    text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        sb_puts(b, "(value)");
        return;
    }
    n = strlen(text);
    if (n > QUOTE_MAX) {
        n = QUOTE_MAX;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
        sb_putn(b, text, n);
        sb_puts(b, "...");
    } else {
        sb_putn(b, text, n);
    }
    free(text);
}

static size_t seg_length(const struct seg *g)
{
    char tmp[24];
    size_t n = 1;

    if (g->key == NULL)
        return 1 + (size_t)snprintf(tmp, sizeof(tmp), "%zu", g->index);
    for (size_t j = 0; j < g->len; j++)
        n += 1 + (g->key[j] == '~' || g->key[j] == '/');
    return n;
}

static void sb_seg(struct sb *b, const struct seg *g)
{
    size_t start = 0;

    sb_puts(b, "/");
    if (g->key == NULL) {
        sb_printf(b, "%zu", g->index);
        return;
    }
    for (size_t j = 0; j < g->len; j++) {
        if (g->key[j] != '~' && g->key[j] != '/')
            continue;
        sb_putn(b, g->key + start, j - start);
        sb_puts(b, g->key[j] == '~' ? "~0" : "~1");
        start = j + 1;
    }
    sb_putn(b, g->key + start, g->len - start);
}

/* A JSON pointer (RFC 6901: "~" is "~0", "/" is "~1"). The document root is
 * written "/" (prefix "") and a schema root "#" (prefix "#"). A pointer longer
 * than POINTER_MAX keeps its first and last segments around a "/...", so
 * the message after it still fits. */
static void sb_pointer(struct sb *b, const char *prefix, const struct seg *segs, int n)
{
    size_t total = 0, acc;
    int head = n, tail = n;

    for (int i = 0; i < n; i++)
        total += seg_length(&segs[i]);
    if (total > POINTER_MAX) {
        for (head = 0, acc = 0;
             head < n && (head == 0 || acc + seg_length(&segs[head]) <= POINTER_MAX / 3); head++)
            acc += seg_length(&segs[head]);
        for (tail = n, acc = 0;
             tail > head && (tail == n || acc + seg_length(&segs[tail - 1]) <= POINTER_MAX / 2);
             tail--)
            acc += seg_length(&segs[tail - 1]);
    }
    sb_puts(b, prefix);
    if (n == 0 && prefix[0] == '\0')
        sb_puts(b, "/");
    for (int i = 0; i < head; i++)
        sb_seg(b, &segs[i]);
    if (head < tail)
        sb_puts(b, "/...");
    for (int i = tail; i < n && head < n; i++)
        sb_seg(b, &segs[i]);
}

/* ---- values: numbers, equality, hashing ----------------------------------- */

/* Sign of (i - d), exact for every int64 and double. */
static int cmp_int_real(json_int_t i, double d)
{
    json_int_t t;
    double frac;

    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    t = (json_int_t)d;
    if (i != t)
        return i < t ? -1 : 1;
    frac = d - (double)t;
    if (frac > 0)
        return -1;
    return frac < 0 ? 1 : 0;
}

/* Compares two JSON numbers by value, so 1 and 1.0 are equal. */
static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);

        return x < y ? -1 : (x > y);
    }
    if (json_is_integer(a))
        return cmp_int_real(json_integer_value(a), json_real_value(b));
    if (json_is_integer(b))
        return -cmp_int_real(json_integer_value(b), json_real_value(a));
    if (json_real_value(a) < json_real_value(b))
        return -1;
    return json_real_value(a) > json_real_value(b);
}

static bool real_is_integral(double d)
{
    if (d != d)
        return false;
    if (d >= 9007199254740992.0 || d <= -9007199254740992.0)
        return d - d == 0; /* finite doubles this large have no fraction */
    return (double)(long long)d == d;
}

/* Equality as JSON Schema defines it: numbers by value, objects unordered. */
static bool values_equal(const json_t *a, const json_t *b, int depth)
{
    size_t i;

    if (a == b)
        return true;
    if (json_is_number(a) && json_is_number(b))
        return num_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b) || depth >= MAX_EQUAL_DEPTH)
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (i = 0; i < json_array_size(a); i++) {
            if (!values_equal(json_array_get(a, i), json_array_get(b, i), depth + 1))
                return false;
        }
        return true;
    case JSON_OBJECT: {
        void *it;

        if (json_object_size(a) != json_object_size(b))
            return false;
        /* jansson's iterator API is not const-qualified; nothing is modified. */
        for (it = json_object_iter((json_t *)a); it != NULL;
             it = json_object_iter_next((json_t *)a, it)) {
            const json_t *other =
                json_object_getn(b, json_object_iter_key(it), json_object_iter_key_len(it));

            if (other == NULL || !values_equal(json_object_iter_value(it), other, depth + 1))
                return false;
        }
        return true;
    }
    default:
        return true; /* true, false, null: same type is same value */
    }
}

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdULL;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

/* A hash consistent with values_equal: equal values hash alike. */
static uint64_t value_hash(const json_t *v, int depth)
{
    uint64_t h = (uint64_t)json_typeof(v) + 1;
    double d;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_INTEGER:
        return mix(1, (uint64_t)json_integer_value(v));
    case JSON_REAL:
        d = json_real_value(v);
        if (real_is_integral(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
            return mix(1, (uint64_t)(json_int_t)d);
        {
            uint64_t bits;

            memcpy(&bits, &d, sizeof(bits));
            return mix(2, bits);
        }
    case JSON_STRING:
        return mix(3, hash_bytes(json_string_value(v), json_string_length(v)));
    case JSON_ARRAY:
        h = mix(4, json_array_size(v));
        if (depth < MAX_HASH_DEPTH) {
            for (i = 0; i < json_array_size(v); i++)
                h = mix(h, value_hash(json_array_get(v, i), depth + 1));
        }
        return h;
    case JSON_OBJECT: {
        uint64_t sum = 0;
        void *it;

        if (depth >= MAX_HASH_DEPTH)
            return mix(5, json_object_size(v));
        /* Order-independent: objects with the same members are equal. */
        for (it = json_object_iter((json_t *)v); it != NULL;
             it = json_object_iter_next((json_t *)v, it)) {
            uint64_t k = hash_bytes(json_object_iter_key(it), json_object_iter_key_len(it));

            sum += mix(k, value_hash(json_object_iter_value(it), depth + 1));
        }
        return mix(5, sum);
    }
    default:
        return h;
    }
}

/* Code points in a valid UTF-8 string. */
static size_t utf8_length(const char *s, size_t n)
{
    size_t count = 0;

    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xC0) != 0x80;
    return count;
}

/* ---- patterns ---------------------------------------------------------------- */

/* The estimated compiled size of a group being scanned by pattern_check. */
struct pframe {
    size_t sum;  /* the group so far */
    size_t last; /* its last atom, which a repetition operator copies */
    int maxq;    /* deepest nesting of repetition operators in the group */
    int lastq;   /* nesting of repetition operators in the last atom */
};

static void pattern_atom(struct pframe *f, size_t size, int q)
{
    f->sum += size;
    f->last = size;
    f->lastq = q;
    if (q > f->maxq)
        f->maxq = q;
}

/* Applies a repetition operator that makes `copies` copies of the last atom
 * (glibc compiles x+ as x x*, and x{m,n} as n copies). */
static int pattern_repeat(struct pframe *f, size_t copies, bool *repeated, const char **why)
{
    if (*repeated) {
        *why = "adjacent repetition operators (such as a+* or the lazy a+?) are undefined in "
               "POSIX ERE";
        return -EINVAL;
    }
    *repeated = true;
    if (f->lastq > 0 &&
        (f->last > MAX_PATTERN_REPEATED_GROUP || f->last * copies > MAX_PATTERN_REPEATED_COPIES)) {
        *why = "a repetition of a large group that itself contains repetitions";
        return -EINVAL;
    }
    if (copies > 1)
        f->sum += f->last * (copies - 1);
    f->last *= copies > 0 ? copies : 1;
    f->lastq++;
    if (f->lastq > f->maxq)
        f->maxq = f->lastq;
    if (f->lastq > MAX_PATTERN_NESTED_REPEAT) {
        *why = "repetition operators nested too deeply";
        return -EINVAL;
    }
    return 0;
}

/* Rejects what POSIX ERE would read differently from the ECMA-262 syntax JSON
 * Schema assumes (\d, \w, backreferences, (?...), lazy quantifiers,
 * backslashes in brackets), and patterns that glibc's regcomp would take long
 * to compile: it copies repeated subexpressions, and its time grows much
 * faster than linearly with nested repetitions of copies. */
static int pattern_check(const char *p, const char **why)
{
    struct pframe f[MAX_PATTERN_GROUPS + 1];
    bool repeated = false;
    int top = 0;
    size_t i = 0;

    memset(&f[0], 0, sizeof(f[0]));
    while (p[i] != '\0') {
        char ch = p[i];
        bool was_repeated = repeated;

        repeated = false;
        if (ch == '\\') {
            unsigned char next = (unsigned char)p[i + 1];

            if (next == '\0') {
                *why = "trailing backslash";
                return -EINVAL;
            }
            if (next >= 0x80 || (next >= '0' && next <= '9') || (next >= 'a' && next <= 'z') ||
                (next >= 'A' && next <= 'Z') || strchr("<>`'", next) != NULL) {
                *why = "escapes such as \\d, \\w, \\b or \\1 are not POSIX ERE (use bracket "
                       "expressions such as [0-9])";
                return -EINVAL;
            }
            i += 2;
            pattern_atom(&f[top], 1, 0);
        } else if (ch == '[') {
            size_t j = i + 1;

            if (p[j] == '^')
                j++;
            if (p[j] == ']')
                j++;
            while (p[j] != '\0' && p[j] != ']') {
                if (p[j] == '\\') {
                    *why = "a backslash inside [...] is a literal in POSIX ERE";
                    return -EINVAL;
                }
                if (p[j] == '[' && (p[j + 1] == ':' || p[j + 1] == '=' || p[j + 1] == '.')) {
                    char kind = p[j + 1];

                    j += 2;
                    while (p[j] != '\0' && !(p[j] == kind && p[j + 1] == ']'))
                        j++;
                    if (p[j] == '\0')
                        break;
                    j += 2;
                    continue;
                }
                j++;
            }
            if (p[j] == '\0') {
                *why = "unterminated bracket expression";
                return -EINVAL;
            }
            i = j + 1;
            pattern_atom(&f[top], 1, 0);
        } else if (ch == '(') {
            if (p[i + 1] == '?') {
                *why = "(?...) groups are not POSIX ERE";
                return -EINVAL;
            }
            if (top == MAX_PATTERN_GROUPS) {
                *why = "groups nested too deeply";
                return -EINVAL;
            }
            top++;
            memset(&f[top], 0, sizeof(f[top]));
            i++;
        } else if (ch == ')' && top > 0) {
            top--;
            pattern_atom(&f[top], f[top + 1].sum + 1, f[top + 1].maxq);
            i++;
        } else if (ch == '{' && p[i + 1] >= '0' && p[i + 1] <= '9') {
            unsigned long lo, hi;
            char *end;

            repeated = was_repeated;
            lo = strtoul(p + i + 1, &end, 10);
            hi = lo + 1; /* x{m,} compiles as m copies and a starred one */
            if (*end == ',' && end[1] >= '0' && end[1] <= '9')
                hi = strtoul(end + 1, &end, 10);
            else if (*end == ',')
                end++;
            else
                hi = lo;
            if (lo > MAX_PATTERN_BOUND || hi > MAX_PATTERN_BOUND) {
                *why = "repetition bounds above 255 are not supported";
                return -EINVAL;
            }
            if (*end != '}') {
                *why = "malformed {m,n} bound";
                return -EINVAL;
            }
            if (pattern_repeat(&f[top], hi, &repeated, why) != 0)
                return -EINVAL;
            i = (size_t)(end - p) + 1;
        } else if (ch == '*' || ch == '+' || ch == '?') {
            repeated = was_repeated;
            if (pattern_repeat(&f[top], ch == '+' ? 2 : 1, &repeated, why) != 0)
                return -EINVAL;
            i++;
        } else if (ch == '|') {
            f[top].sum++;
            f[top].last = 0;
            f[top].lastq = 0;
            i++;
        } else {
            pattern_atom(&f[top], 1, 0);
            i++;
        }
        if (f[top].sum > MAX_PATTERN_WEIGHT || f[top].last > MAX_PATTERN_WEIGHT) {
            *why = "pattern too complex";
            return -EINVAL;
        }
    }
    return 0;
}

static bool pattern_match(const regex_t *re, const char *s, size_t len)
{
#ifdef REG_STARTEND
    regmatch_t m[1];

    if (len > (size_t)INT_MAX)
        return false;
    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)len;
    return regexec(re, s, 1, m, REG_STARTEND) == 0;
#else
    return regexec(re, s, 0, NULL, 0) == 0;
#endif
}

/* ---- compiling ------------------------------------------------------------ */

#define MAX_CSEGS (2 * WC_JSONSCHEMA_MAX_SCHEMA_DEPTH + 8)

struct cctx {
    wc_jsonschema_t *s;
    struct seg segs[MAX_CSEGS]; /* schema pointer of what is being compiled */
    int nsegs;
    int depth;
    char *err;
    size_t errlen;
};

static void verr(char *err, size_t errlen, const char *where, const char *fmt, va_list ap)
{
    struct sb b;

    sb_init(&b, err, errlen);
    sb_puts(&b, where);
    sb_puts(&b, ": ");
    sb_vprintf(&b, fmt, ap);
}

static int cfail_at(struct cctx *c, const char *where, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verr(c->err, c->errlen, where, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* A compile error at the current schema pointer. */
static int cfail(struct cctx *c, const char *fmt, ...)
{
    struct sb b;
    va_list ap;

    sb_init(&b, c->err, c->errlen);
    sb_pointer(&b, "#", c->segs, c->nsegs);
    sb_puts(&b, ": ");
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int cnomem(struct cctx *c)
{
    struct sb b;

    sb_init(&b, c->err, c->errlen);
    sb_puts(&b, "out of memory compiling schema");
    return -ENOMEM;
}

/* Quotes a user string for a compile message. */
static const char *quoted(char *buf, size_t size, const char *s, size_t n)
{
    struct sb b;

    sb_init(&b, buf, size);
    sb_quote(&b, s, n, QUOTE_MAX);
    return buf;
}

static void push_key(struct cctx *c, const char *key, size_t len)
{
    assert(c->nsegs < MAX_CSEGS);
    c->segs[c->nsegs].key = key;
    c->segs[c->nsegs].len = len;
    c->nsegs++;
}

static void push_index(struct cctx *c, size_t index)
{
    assert(c->nsegs < MAX_CSEGS);
    c->segs[c->nsegs].key = NULL;
    c->segs[c->nsegs].index = index;
    c->nsegs++;
}

static struct node *node_new(wc_jsonschema_t *s)
{
    struct node *n;

    if (s->nnodes == s->cap) {
        size_t cap = s->cap > 0 ? s->cap * 2 : 32;
        struct node **v = realloc(s->nodes, cap * sizeof(*v));

        if (v == NULL)
            return NULL;
        s->nodes = v;
        s->cap = cap;
    }
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->boolean = -1;
    n->min_len = n->max_len = -1;
    n->min_items = n->max_items = -1;
    n->min_props = n->max_props = -1;
    s->nodes[s->nnodes++] = n;
    return n;
}

static void node_free(struct node *n)
{
    free(n->prefix.v);
    free(n->props.v);
    json_decref(n->prop_index);
    for (size_t i = 0; i < n->npprops; i++)
        regfree(&n->pprops[i].re);
    free(n->pprops);
    if (n->pattern != NULL) {
        regfree(n->pattern);
        free(n->pattern);
    }
    free(n->all_of.v);
    free(n->any_of.v);
    free(n->one_of.v);
    if (n->any_disc != NULL)
        free(n->any_disc->consts);
    free(n->any_disc);
    if (n->one_disc != NULL)
        free(n->one_disc->consts);
    free(n->one_disc);
    free(n->where);
    free(n);
}

static int compile_node(struct cctx *c, json_t *v, struct node *n, struct node **out);

/* Compiles v as the schema at segment key (or index, if key is NULL). */
static int compile_child(struct cctx *c, json_t *v, const char *key, size_t len, size_t index,
                         struct node **out)
{
    int rc;

    if (key != NULL)
        push_key(c, key, len);
    else
        push_index(c, index);
    rc = compile_node(c, v, NULL, out);
    c->nsegs--;
    return rc;
}

static int compile_list(struct cctx *c, json_t *v, struct nodelist *out)
{
    size_t i, n = json_array_size(v);

    if (!json_is_array(v) || n == 0)
        return cfail(c, "must be a non-empty array of schemas");
    out->v = calloc(n, sizeof(*out->v));
    if (out->v == NULL)
        return cnomem(c);
    for (i = 0; i < n; i++) {
        int rc = compile_child(c, json_array_get(v, i), NULL, 0, i, &out->v[i]);

        if (rc != 0)
            return rc;
        out->n = i + 1;
    }
    return 0;
}

static int compile_regex(struct cctx *c, const char *src, size_t len, regex_t *re)
{
    char q[QUOTE_MAX + 16], msg[128];
    const char *why = NULL;
    int rc;

    if (memchr(src, '\0', len) != NULL)
        return cfail(c, "pattern %s contains a NUL character", quoted(q, sizeof(q), src, len));
    if (pattern_check(src, &why) != 0)
        return cfail(c, "unsupported pattern %s: %s", quoted(q, sizeof(q), src, len), why);
    rc = regcomp(re, src, REG_EXTENDED | REG_NOSUB);
    if (rc == REG_ESPACE)
        return cnomem(c);
    if (rc != 0) {
        regerror(rc, re, msg, sizeof(msg));
        return cfail(c, "invalid pattern %s: %s", quoted(q, sizeof(q), src, len), msg);
    }
    return 0;
}

static bool get_count(const json_t *v, json_int_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v) && real_is_integral(json_real_value(v)) && json_real_value(v) >= 0 &&
        json_real_value(v) < 9223372036854775808.0) {
        *out = (json_int_t)json_real_value(v);
        return true;
    }
    return false;
}

static bool is_string_array(const json_t *v)
{
    size_t i;
    json_t *e;

    if (!json_is_array(v))
        return false;
    json_array_foreach (v, i, e) {
        if (!json_is_string(e))
            return false;
    }
    return true;
}

static int parse_type(struct cctx *c, const json_t *v, unsigned *mask)
{
    size_t i, n = 1;
    char q[QUOTE_MAX + 16];

    if (json_is_array(v))
        n = json_array_size(v);
    else if (!json_is_string(v))
        return cfail(c, "must be a type name or an array of them");
    if (n == 0)
        return cfail(c, "must not be an empty array");
    for (i = 0; i < n; i++) {
        const json_t *t = json_is_array(v) ? json_array_get(v, i) : v;
        unsigned bit = 0;

        if (!json_is_string(t))
            return cfail(c, "must be a type name or an array of them");
        for (size_t k = 0; k < sizeof(type_names) / sizeof(type_names[0]); k++) {
            if (strcmp(json_string_value(t), type_names[k].name) == 0 &&
                strlen(type_names[k].name) == json_string_length(t))
                bit = type_names[k].bit;
        }
        if (bit == 0)
            return cfail(c, "unknown type %s",
                         quoted(q, sizeof(q), json_string_value(t), json_string_length(t)));
        if (*mask & bit)
            return cfail(c, "type %s listed twice", json_string_value(t));
        *mask |= bit;
    }
    return 0;
}

static int resolve_ref(struct cctx *c, const json_t *v, struct node **out)
{
    static const char prefix[] = "#/$defs/";
    const size_t plen = sizeof(prefix) - 1;
    const char *ref = json_string_value(v);
    size_t len = json_string_length(v), blen = 0;
    char q[QUOTE_MAX + 16], *name = NULL;
    const json_t *ix;
    int rc = 0;

    if (len == 1 && ref[0] == '#') {
        *out = c->s->root;
        goto out;
    }
    if (len <= plen || memcmp(ref, prefix, plen) != 0 || memchr(ref + plen, '/', len - plen) ||
        memchr(ref + plen, '%', len - plen)) {
        rc = cfail(c, "unsupported $ref %s: only \"#\" and \"#/$defs/<name>\" are supported",
                   quoted(q, sizeof(q), ref, len));
        goto out;
    }
    name = malloc(len - plen + 1);
    if (name == NULL) {
        rc = cnomem(c);
        goto out;
    }
    for (size_t i = plen; i < len; i++) {
        if (ref[i] == '~' && i + 1 < len && (ref[i + 1] == '0' || ref[i + 1] == '1')) {
            name[blen++] = ref[i + 1] == '0' ? '~' : '/';
            i++;
        } else {
            name[blen++] = ref[i];
        }
    }
    ix = json_object_getn(c->s->def_index, name, blen);
    if (ix == NULL) {
        rc = cfail(c, "unresolvable $ref %s", quoted(q, sizeof(q), ref, len));
        goto out;
    }
    *out = c->s->defs[json_integer_value(ix)];
out:
    free(name);
    return rc;
}

static int compile_properties(struct cctx *c, struct node *n, json_t *v)
{
    size_t i = 0;
    void *it;

    if (!json_is_object(v))
        return cfail(c, "must be an object of schemas");
    n->prop_index = json_object();
    n->props.v = calloc(json_object_size(v) + 1, sizeof(*n->props.v));
    if (n->prop_index == NULL || n->props.v == NULL)
        return cnomem(c);
    for (it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
        const char *key = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        int rc;

        if (json_object_setn_new_nocheck(n->prop_index, key, len, json_integer((json_int_t)i)))
            return cnomem(c);
        rc = compile_child(c, json_object_iter_value(it), key, len, 0, &n->props.v[i]);
        if (rc != 0)
            return rc;
        n->props.n = ++i;
    }
    return 0;
}

static int compile_pattern_properties(struct cctx *c, struct node *n, json_t *v)
{
    void *it;

    if (!json_is_object(v))
        return cfail(c, "must be an object of schemas");
    n->pprops = calloc(json_object_size(v) + 1, sizeof(*n->pprops));
    if (n->pprops == NULL)
        return cnomem(c);
    for (it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
        const char *key = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        struct pprop *p = &n->pprops[n->npprops];
        int rc;

        push_key(c, key, len);
        rc = compile_regex(c, key, len, &p->re);
        c->nsegs--;
        if (rc != 0)
            return rc;
        n->npprops++;
        rc = compile_child(c, json_object_iter_value(it), key, len, 0, &p->schema);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int compile_defs(struct cctx *c, json_t *v, bool root)
{
    void *it;

    if (!json_is_object(v))
        return cfail(c, "must be an object of schemas");
    for (it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
        const char *key = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        struct node *n = NULL;
        int rc;

        if (root)
            n = c->s->defs[json_integer_value(json_object_getn(c->s->def_index, key, len))];
        push_key(c, key, len);
        rc = compile_node(c, json_object_iter_value(it), n, &n);
        c->nsegs--;
        if (rc != 0)
            return rc;
    }
    return 0;
}

enum kw {
    KW_SCHEMA,
    KW_ID,
    KW_DEFS,
    KW_REF,
    KW_ANNOTATION_STRING,
    KW_ANNOTATION_BOOL,
    KW_DEFAULT,
    KW_EXAMPLES,
    KW_TYPE,
    KW_ENUM,
    KW_CONST,
    KW_PROPERTIES,
    KW_REQUIRED,
    KW_ADDITIONAL_PROPERTIES,
    KW_PATTERN_PROPERTIES,
    KW_PROPERTY_NAMES,
    KW_MIN_PROPERTIES,
    KW_MAX_PROPERTIES,
    KW_DEPENDENT_REQUIRED,
    KW_ITEMS,
    KW_PREFIX_ITEMS,
    KW_MIN_ITEMS,
    KW_MAX_ITEMS,
    KW_UNIQUE_ITEMS,
    KW_MIN_LENGTH,
    KW_MAX_LENGTH,
    KW_PATTERN,
    KW_MINIMUM,
    KW_MAXIMUM,
    KW_EXCLUSIVE_MINIMUM,
    KW_EXCLUSIVE_MAXIMUM,
    KW_MULTIPLE_OF,
    KW_ALL_OF,
    KW_ANY_OF,
    KW_ONE_OF,
    KW_NOT,
    KW_IF,
    KW_THEN,
    KW_ELSE,
};

static const struct {
    const char *name;
    enum kw kw;
} keywords[] = {
    {"$schema", KW_SCHEMA},
    {"$id", KW_ID},
    {"$defs", KW_DEFS},
    {"$ref", KW_REF},
    {"title", KW_ANNOTATION_STRING},
    {"description", KW_ANNOTATION_STRING},
    {"$comment", KW_ANNOTATION_STRING},
    {"deprecated", KW_ANNOTATION_BOOL},
    {"readOnly", KW_ANNOTATION_BOOL},
    {"writeOnly", KW_ANNOTATION_BOOL},
    {"default", KW_DEFAULT},
    {"examples", KW_EXAMPLES},
    {"type", KW_TYPE},
    {"enum", KW_ENUM},
    {"const", KW_CONST},
    {"properties", KW_PROPERTIES},
    {"required", KW_REQUIRED},
    {"additionalProperties", KW_ADDITIONAL_PROPERTIES},
    {"patternProperties", KW_PATTERN_PROPERTIES},
    {"propertyNames", KW_PROPERTY_NAMES},
    {"minProperties", KW_MIN_PROPERTIES},
    {"maxProperties", KW_MAX_PROPERTIES},
    {"dependentRequired", KW_DEPENDENT_REQUIRED},
    {"items", KW_ITEMS},
    {"prefixItems", KW_PREFIX_ITEMS},
    {"minItems", KW_MIN_ITEMS},
    {"maxItems", KW_MAX_ITEMS},
    {"uniqueItems", KW_UNIQUE_ITEMS},
    {"minLength", KW_MIN_LENGTH},
    {"maxLength", KW_MAX_LENGTH},
    {"pattern", KW_PATTERN},
    {"minimum", KW_MINIMUM},
    {"maximum", KW_MAXIMUM},
    {"exclusiveMinimum", KW_EXCLUSIVE_MINIMUM},
    {"exclusiveMaximum", KW_EXCLUSIVE_MAXIMUM},
    {"multipleOf", KW_MULTIPLE_OF},
    {"allOf", KW_ALL_OF},
    {"anyOf", KW_ANY_OF},
    {"oneOf", KW_ONE_OF},
    {"not", KW_NOT},
    {"if", KW_IF},
    {"then", KW_THEN},
    {"else", KW_ELSE},
};

static int lookup_keyword(const char *key, size_t len)
{
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
        if (strlen(keywords[i].name) == len && memcmp(keywords[i].name, key, len) == 0)
            return (int)keywords[i].kw;
    }
    return -1;
}

static int compile_count(struct cctx *c, const json_t *v, json_int_t *out)
{
    if (!get_count(v, out))
        return cfail(c, "must be a non-negative integer");
    return 0;
}

static int compile_number(struct cctx *c, const json_t *v, const json_t **out)
{
    if (!json_is_number(v))
        return cfail(c, "must be a number");
    *out = v;
    return 0;
}

static int compile_keyword(struct cctx *c, struct node *n, const char *key, size_t len, json_t *v,
                           bool root)
{
    char q[QUOTE_MAX + 16];
    int kw = lookup_keyword(key, len);
    const char *str = json_string_value(v);
    int rc;

    switch (kw) {
    case KW_SCHEMA:
        if (str == NULL || (strcmp(str, SCHEMA_URI) != 0 && strcmp(str, SCHEMA_URI "#") != 0))
            return cfail(c, "only \"" SCHEMA_URI "\" is supported");
        return 0;
    case KW_ID:
        if (!root)
            return cfail(c, "$id is only supported at the root ($ref is local)");
        if (str == NULL)
            return cfail(c, "must be a string");
        return 0;
    case KW_DEFS:
        return compile_defs(c, v, root);
    case KW_REF:
        if (str == NULL)
            return cfail(c, "must be a string");
        return resolve_ref(c, v, &n->ref);
    case KW_ANNOTATION_STRING:
        if (str == NULL)
            return cfail(c, "must be a string");
        return 0;
    case KW_ANNOTATION_BOOL:
        if (!json_is_boolean(v))
            return cfail(c, "must be a boolean");
        return 0;
    case KW_UNIQUE_ITEMS:
        if (!json_is_boolean(v))
            return cfail(c, "must be a boolean");
        n->unique = json_is_true(v);
        return 0;
    case KW_DEFAULT:
        return 0;
    case KW_EXAMPLES:
        if (!json_is_array(v))
            return cfail(c, "must be an array");
        return 0;
    case KW_TYPE:
        return parse_type(c, v, &n->types);
    case KW_ENUM:
        if (!json_is_array(v))
            return cfail(c, "must be an array");
        n->enum_vals = v;
        return 0;
    case KW_CONST:
        n->const_val = v;
        return 0;
    case KW_PROPERTIES:
        return compile_properties(c, n, v);
    case KW_REQUIRED:
        if (!is_string_array(v))
            return cfail(c, "must be an array of strings");
        n->required = v;
        return 0;
    case KW_ADDITIONAL_PROPERTIES:
        return compile_node(c, v, NULL, &n->additional);
    case KW_PATTERN_PROPERTIES:
        return compile_pattern_properties(c, n, v);
    case KW_PROPERTY_NAMES:
        return compile_node(c, v, NULL, &n->property_names);
    case KW_MIN_PROPERTIES:
        return compile_count(c, v, &n->min_props);
    case KW_MAX_PROPERTIES:
        return compile_count(c, v, &n->max_props);
    case KW_DEPENDENT_REQUIRED: {
        void *it;

        if (!json_is_object(v))
            return cfail(c, "must be an object of string arrays");
        for (it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
            if (!is_string_array(json_object_iter_value(it)))
                return cfail(c, "must be an object of string arrays");
        }
        n->dep_required = v;
        return 0;
    }
    case KW_ITEMS:
        return compile_node(c, v, NULL, &n->items);
    case KW_PREFIX_ITEMS:
        return compile_list(c, v, &n->prefix);
    case KW_MIN_ITEMS:
        return compile_count(c, v, &n->min_items);
    case KW_MAX_ITEMS:
        return compile_count(c, v, &n->max_items);
    case KW_MIN_LENGTH:
        return compile_count(c, v, &n->min_len);
    case KW_MAX_LENGTH:
        return compile_count(c, v, &n->max_len);
    case KW_PATTERN:
        if (str == NULL)
            return cfail(c, "must be a string");
        n->pattern = malloc(sizeof(*n->pattern));
        if (n->pattern == NULL)
            return cnomem(c);
        rc = compile_regex(c, str, json_string_length(v), n->pattern);
        if (rc != 0) {
            free(n->pattern);
            n->pattern = NULL;
            return rc;
        }
        n->pattern_src = str;
        return 0;
    case KW_MINIMUM:
        return compile_number(c, v, &n->minimum);
    case KW_MAXIMUM:
        return compile_number(c, v, &n->maximum);
    case KW_EXCLUSIVE_MINIMUM:
        return compile_number(c, v, &n->xmin);
    case KW_EXCLUSIVE_MAXIMUM:
        return compile_number(c, v, &n->xmax);
    case KW_MULTIPLE_OF:
        if (!json_is_number(v) || json_number_value(v) <= 0)
            return cfail(c, "must be a number greater than 0");
        n->multiple_of = v;
        return 0;
    case KW_ALL_OF:
        return compile_list(c, v, &n->all_of);
    case KW_ANY_OF:
        return compile_list(c, v, &n->any_of);
    case KW_ONE_OF:
        return compile_list(c, v, &n->one_of);
    case KW_NOT:
        return compile_node(c, v, NULL, &n->not_);
    case KW_IF:
        return compile_node(c, v, NULL, &n->if_);
    case KW_THEN:
        return compile_node(c, v, NULL, &n->then_);
    case KW_ELSE:
        return compile_node(c, v, NULL, &n->else_);
    default:
        break;
    }
    c->nsegs--; /* name the schema, not the keyword */
    rc = cfail(c, "unknown keyword %s", quoted(q, sizeof(q), key, len));
    c->nsegs++;
    return rc;
}

/* Compiles v into n (a new node if n is NULL); *out is set to the node. */
static int compile_node(struct cctx *c, json_t *v, struct node *n, struct node **out)
{
    struct sb b;
    char where[512];
    void *it;
    int rc = 0;

    if (n == NULL)
        n = node_new(c->s);
    if (n == NULL)
        return cnomem(c);
    *out = n;
    sb_init(&b, where, sizeof(where));
    sb_pointer(&b, "#", c->segs, c->nsegs);
    n->where = strdup(where);
    if (n->where == NULL)
        return cnomem(c);
    if (c->depth >= WC_JSONSCHEMA_MAX_SCHEMA_DEPTH)
        return cfail(c, "schema nesting deeper than %d levels", WC_JSONSCHEMA_MAX_SCHEMA_DEPTH);
    if (json_is_boolean(v)) {
        n->boolean = json_is_true(v);
        return 0;
    }
    if (!json_is_object(v))
        return cfail(c, "a schema must be an object or a boolean");
    c->depth++;
    for (it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
        const char *key = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);

        push_key(c, key, len);
        rc = compile_keyword(c, n, key, len, json_object_iter_value(it), v == c->s->doc);
        c->nsegs--;
        if (rc != 0)
            goto out;
    }
out:
    c->depth--;
    return rc;
}

static int inplace_dfs(struct cctx *c, struct node *n, int depth)
{
    /* then/else apply only under an if; without one they are never used. */
    struct node *single[5] = {n->ref, n->not_, n->if_, n->if_ ? n->then_ : NULL,
                              n->if_ ? n->else_ : NULL};
    const struct nodelist *lists[3] = {&n->all_of, &n->any_of, &n->one_of};
    int rc = 0;

    if (n->mark == 2)
        return 0;
    if (n->mark == 1)
        return cfail_at(c, n->where, "$ref cycle: the schema applies itself to the same value");
    if (depth > MAX_INPLACE_CHAIN)
        return cfail_at(c, n->where, "chain of $ref/allOf/anyOf/oneOf/not/if longer than %d",
                        MAX_INPLACE_CHAIN);
    n->mark = 1;
    for (int i = 0; i < 5 && rc == 0; i++) {
        if (single[i] != NULL)
            rc = inplace_dfs(c, single[i], depth + 1);
    }
    for (int i = 0; i < 3 && rc == 0; i++) {
        for (size_t j = 0; j < lists[i]->n && rc == 0; j++)
            rc = inplace_dfs(c, lists[i]->v[j], depth + 1);
    }
    n->mark = 2;
    return rc;
}

/* The const that branch b (or what it $refs) pins property key to, if any. */
static const json_t *branch_const(const struct node *b, const char *key, size_t len)
{
    for (int hops = 0; b != NULL && hops < MAX_INPLACE_CHAIN; hops++) {
        const json_t *ix = b->prop_index ? json_object_getn(b->prop_index, key, len) : NULL;

        if (ix != NULL && b->props.v[json_integer_value(ix)]->const_val != NULL)
            return b->props.v[json_integer_value(ix)]->const_val;
        b = b->ref;
    }
    return NULL;
}

static const struct node *branch_props(const struct node *b)
{
    for (int hops = 0; b != NULL && hops < MAX_INPLACE_CHAIN; hops++) {
        if (b->prop_index != NULL)
            return b;
        b = b->ref;
    }
    return NULL;
}

/* Finds a discriminator for list, if every branch has one in common. */
static int find_disc(struct cctx *c, const struct nodelist *list, struct disc **out)
{
    const struct node *first = list->n >= 2 ? branch_props(list->v[0]) : NULL;
    void *it;

    if (first == NULL)
        return 0;
    for (it = json_object_iter(first->prop_index); it != NULL;
         it = json_object_iter_next(first->prop_index, it)) {
        const char *key = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it), i;
        struct disc *d;

        for (i = 0; i < list->n; i++) {
            if (branch_const(list->v[i], key, len) == NULL)
                break;
        }
        if (i < list->n)
            continue;
        d = calloc(1, sizeof(*d));
        if (d == NULL)
            return cnomem(c);
        d->consts = calloc(list->n, sizeof(*d->consts));
        if (d->consts == NULL) {
            free(d);
            return cnomem(c);
        }
        d->key = key;
        d->len = len;
        for (i = 0; i < list->n; i++)
            d->consts[i] = branch_const(list->v[i], key, len);
        *out = d;
        return 0;
    }
    return 0;
}

static int compile_finish(struct cctx *c)
{
    wc_jsonschema_t *s = c->s;
    int rc = 0;

    for (size_t i = 0; i < s->nnodes && rc == 0; i++)
        rc = inplace_dfs(c, s->nodes[i], 0);
    for (size_t i = 0; i < s->nnodes && rc == 0; i++) {
        rc = find_disc(c, &s->nodes[i]->any_of, &s->nodes[i]->any_disc);
        if (rc == 0)
            rc = find_disc(c, &s->nodes[i]->one_of, &s->nodes[i]->one_disc);
    }
    for (size_t i = 0; i < s->nnodes; i++) {
        free(s->nodes[i]->where);
        s->nodes[i]->where = NULL;
    }
    return rc;
}

/* Creates the root node and an empty node per root $defs entry, so that $ref
 * resolves while compiling, whatever order definitions come in. */
static int prepare_defs(struct cctx *c)
{
    wc_jsonschema_t *s = c->s;
    json_t *defs = json_is_object(s->doc) ? json_object_get(s->doc, "$defs") : NULL;
    void *it;

    s->root = node_new(s);
    s->def_index = json_object();
    if (s->root == NULL || s->def_index == NULL)
        return cnomem(c);
    if (!json_is_object(defs))
        return 0;
    s->defs = calloc(json_object_size(defs) + 1, sizeof(*s->defs));
    if (s->defs == NULL)
        return cnomem(c);
    for (it = json_object_iter(defs); it != NULL; it = json_object_iter_next(defs, it)) {
        struct node *n = node_new(s);

        if (n == NULL || json_object_setn_new_nocheck(s->def_index, json_object_iter_key(it),
                                                      json_object_iter_key_len(it),
                                                      json_integer((json_int_t)s->ndefs)) != 0)
            return cnomem(c);
        s->defs[s->ndefs++] = n;
    }
    return 0;
}

int wc_jsonschema_new(const char *text, size_t len, wc_jsonschema_t **out, char *err, size_t errlen)
{
    struct cctx *c = NULL;
    wc_jsonschema_t *s = NULL;
    json_error_t jerr;
    struct node *root;
    int rc;

    assert(out != NULL);
    *out = NULL;
    c = calloc(1, sizeof(*c));
    s = calloc(1, sizeof(*s));
    if (c == NULL || s == NULL) {
        rc = -ENOMEM;
        if (errlen > 0)
            snprintf(err, errlen, "out of memory compiling schema");
        goto out;
    }
    assert(err != NULL || errlen == 0);
    c->s = s;
    c->err = err;
    c->errlen = errlen;
    s->doc =
        json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (s->doc == NULL) {
        struct sb b;

        rc = -EINVAL;
        sb_init(&b, err, errlen);
        sb_printf(&b, "schema is not valid JSON: line %d column %d: %s", jerr.line, jerr.column,
                  jerr.text);
        goto out;
    }
    rc = prepare_defs(c);
    if (rc == 0)
        rc = compile_node(c, s->doc, s->root, &root);
    if (rc == 0)
        rc = compile_finish(c);
    if (rc == 0) {
        *out = s;
        s = NULL;
        if (errlen > 0)
            err[0] = '\0';
    }
out:
    wc_jsonschema_free(s);
    free(c);
    return rc;
}

void wc_jsonschema_free(wc_jsonschema_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nnodes; i++)
        node_free(s->nodes[i]);
    free(s->nodes);
    free(s->defs);
    json_decref(s->def_index);
    json_decref(s->doc);
    free(s);
}

/* ---- validating ------------------------------------------------------------ */

/* Validation runs quietly first (no messages: the common, valid case); only
 * an invalid document is walked again with want set, to build the message.
 * A fatal error (a limit reached) is never swallowed by anyOf/not/if. */
struct vctx {
    struct seg path[WC_JSONSCHEMA_MAX_DEPTH + 1]; /* pointer of the current value */
    int depth;
    int frames;
    unsigned long steps;
    bool want;  /* build messages */
    bool fatal; /* a limit was reached; fatal_msg says which */
    char *err;
    size_t errlen;
    /* The error in err is "<pointer>: <message>". For anyOf/oneOf the message
     * ends with the most specific error of a branch (the leaf), itself a
     * pointer and a message: ptr_* and leaf_off locate it, so an enclosing
     * anyOf can quote just the leaf rather than nest whole messages. */
    size_t own_off; /* start of <message> */
    size_t ptr_off; /* the leaf's pointer: ptr_len bytes from ptr_off */
    size_t ptr_len;
    size_t leaf_off; /* the leaf's message, to the end of err */
    int err_depth;   /* pointer depth of the error in err: deeper is more specific */
    struct seg fatal_path[WC_JSONSCHEMA_MAX_DEPTH + 1]; /* where the limit was reached */
    int fatal_depth;
    char fatal_msg[128];
};

/* Starts a message at the current pointer; false if messages are off. */
static bool err_begin(struct vctx *c, struct sb *b)
{
    if (!c->want)
        return false;
    sb_init(b, c->err, c->errlen);
    sb_pointer(b, "", c->path, c->depth);
    c->ptr_off = 0;
    c->ptr_len = b->len;
    sb_puts(b, ": ");
    c->own_off = b->len;
    c->leaf_off = b->len;
    c->err_depth = c->depth;
    return true;
}

static int failf(struct vctx *c, const char *fmt, ...)
{
    struct sb b;
    va_list ap;

    if (err_begin(c, &b)) {
        va_start(ap, fmt);
        sb_vprintf(&b, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int fatalf(struct vctx *c, const char *fmt, ...)
{
    struct sb b;
    va_list ap;

    c->fatal = true;
    memcpy(c->fatal_path, c->path, (size_t)c->depth * sizeof(c->path[0]));
    c->fatal_depth = c->depth;
    sb_init(&b, c->fatal_msg, sizeof(c->fatal_msg));
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int validate(struct vctx *c, const struct node *n, const json_t *v);

static int push_seg(struct vctx *c, const char *key, size_t len, size_t index)
{
    if (c->depth >= WC_JSONSCHEMA_MAX_DEPTH)
        return fatalf(c, "nesting deeper than %d levels", WC_JSONSCHEMA_MAX_DEPTH);
    c->path[c->depth].key = key;
    c->path[c->depth].len = len;
    c->path[c->depth].index = index;
    c->depth++;
    return 0;
}

static int validate_key(struct vctx *c, const struct node *n, const json_t *v, const char *key,
                        size_t len)
{
    int rc = push_seg(c, key, len, 0);

    if (rc != 0)
        return rc;
    rc = validate(c, n, v);
    c->depth--;
    return rc;
}

static int validate_index(struct vctx *c, const struct node *n, const json_t *v, size_t index)
{
    int rc = push_seg(c, NULL, 0, index);

    if (rc != 0)
        return rc;
    rc = validate(c, n, v);
    c->depth--;
    return rc;
}

static int validate_quiet(struct vctx *c, const struct node *n, const json_t *v)
{
    bool want = c->want;
    int rc;

    c->want = false;
    rc = validate(c, n, v);
    c->want = want;
    return rc;
}

/* A private error buffer, so a failed branch does not clobber another's. */
struct errbuf {
    char *buf;
    size_t cap;
    size_t own_off, ptr_off, ptr_len, leaf_off; /* as in struct vctx */
    int depth;
};

static int validate_into(struct vctx *c, const struct node *n, const json_t *v, struct errbuf *eb)
{
    char *err = c->err;
    size_t errlen = c->errlen;
    int rc;

    c->err = eb->buf;
    c->errlen = eb->cap;
    c->err_depth = -1;
    eb->buf[0] = '\0';
    rc = validate(c, n, v);
    eb->depth = c->err_depth;
    eb->own_off = c->own_off;
    eb->ptr_off = c->ptr_off;
    eb->ptr_len = c->ptr_len;
    eb->leaf_off = c->leaf_off;
    c->err = err;
    c->errlen = errlen;
    return rc;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static bool type_ok(unsigned mask, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return mask & T_OBJECT;
    case JSON_ARRAY:
        return mask & T_ARRAY;
    case JSON_STRING:
        return mask & T_STRING;
    case JSON_INTEGER:
        return mask & (T_INTEGER | T_NUMBER);
    case JSON_REAL:
        return (mask & T_NUMBER) || ((mask & T_INTEGER) && real_is_integral(json_real_value(v)));
    case JSON_TRUE:
    case JSON_FALSE:
        return mask & T_BOOLEAN;
    default:
        return mask & T_NULL;
    }
}

static int fail_type(struct vctx *c, unsigned mask, const json_t *v)
{
    size_t total = 0, seen = 0;
    struct sb b;

    if (!err_begin(c, &b))
        return -EINVAL;
    for (size_t k = 0; k < sizeof(type_names) / sizeof(type_names[0]); k++)
        total += (mask & type_names[k].bit) != 0;
    sb_puts(&b, "must be of type ");
    for (size_t k = 0; k < sizeof(type_names) / sizeof(type_names[0]); k++) {
        if (!(mask & type_names[k].bit))
            continue;
        seen++;
        if (seen > 1)
            sb_puts(&b, seen == total ? " or " : ", ");
        sb_puts(&b, type_names[k].name);
    }
    sb_printf(&b, ", got %s", type_name(v));
    return -EINVAL;
}

/* "must be one of a, b, c" for a list of values (deduplicated). */
static int fail_one_of_values(struct vctx *c, const json_t *const *vals, size_t n)
{
    size_t shown = 0;
    struct sb b;

    if (!err_begin(c, &b))
        return -EINVAL;
    sb_puts(&b, n == 1 ? "must be " : "must be one of ");
    for (size_t i = 0; i < n; i++) {
        bool dup = false;

        for (size_t j = 0; j < i && !dup; j++)
            dup = values_equal(vals[i], vals[j], 0);
        if (dup)
            continue;
        if (shown == ENUM_LIST_MAX) {
            sb_puts(&b, ", ...");
            break;
        }
        if (shown > 0)
            sb_puts(&b, ", ");
        sb_value(&b, vals[i]);
        shown++;
    }
    return -EINVAL;
}

static int validate_enum(struct vctx *c, const json_t *vals, const json_t *v)
{
    size_t n = json_array_size(vals);
    const json_t *small[ENUM_LIST_MAX + 1];

    for (size_t i = 0; i < n; i++) {
        c->steps++;
        if (values_equal(json_array_get(vals, i), v, 0))
            return 0;
    }
    if (!c->want)
        return -EINVAL;
    /* Only the first ENUM_LIST_MAX + 1 are ever shown. */
    if (n > ENUM_LIST_MAX + 1)
        n = ENUM_LIST_MAX + 1;
    for (size_t i = 0; i < n; i++)
        small[i] = json_array_get(vals, i);
    return fail_one_of_values(c, small, n);
}

static bool is_multiple(const json_t *v, const json_t *m)
{
    double q, r, scale;

    if (json_is_integer(v) && json_is_integer(m))
        return json_integer_value(v) % json_integer_value(m) == 0;
    q = json_number_value(v) / json_number_value(m);
    if (q - q != 0)
        return false; /* overflowed to infinity */
    if (real_is_integral(q))
        return true;
    /* Tolerate binary rounding of decimal fractions: 0.3 is a multiple of 0.1. */
    r = q - (double)(long long)(q < 0 ? q - 0.5 : q + 0.5);
    scale = q < 0 ? -q : q;
    return (r < 0 ? -r : r) <= 1e-9 * (scale > 1 ? scale : 1);
}

static int validate_number(struct vctx *c, const struct node *n, const json_t *v)
{
    const json_t *bound = NULL;
    const char *what = NULL;
    struct sb b;

    if (n->minimum != NULL && num_cmp(v, n->minimum) < 0) {
        what = "must be >= ";
        bound = n->minimum;
    } else if (n->maximum != NULL && num_cmp(v, n->maximum) > 0) {
        what = "must be <= ";
        bound = n->maximum;
    } else if (n->xmin != NULL && num_cmp(v, n->xmin) <= 0) {
        what = "must be > ";
        bound = n->xmin;
    } else if (n->xmax != NULL && num_cmp(v, n->xmax) >= 0) {
        what = "must be < ";
        bound = n->xmax;
    } else if (n->multiple_of != NULL && !is_multiple(v, n->multiple_of)) {
        what = "must be a multiple of ";
        bound = n->multiple_of;
    }
    if (what == NULL)
        return 0;
    if (err_begin(c, &b)) {
        sb_puts(&b, what);
        sb_number(&b, bound);
        sb_puts(&b, ", got ");
        sb_number(&b, v);
    }
    return -EINVAL;
}

static int validate_string(struct vctx *c, const struct node *n, const json_t *v)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    struct sb b;

    if (n->min_len >= 0 || n->max_len >= 0) {
        size_t cp = utf8_length(s, len);

        if (n->min_len >= 0 && cp < (size_t)n->min_len)
            return failf(c, "must be at least %" JSON_INTEGER_FORMAT " characters long, got %zu",
                         n->min_len, cp);
        if (n->max_len >= 0 && cp > (size_t)n->max_len)
            return failf(c, "must be at most %" JSON_INTEGER_FORMAT " characters long, got %zu",
                         n->max_len, cp);
    }
    if (n->pattern != NULL && !pattern_match(n->pattern, s, len)) {
        if (err_begin(c, &b)) {
            sb_puts(&b, "must match pattern ");
            sb_quote(&b, n->pattern_src, strlen(n->pattern_src), 2 * QUOTE_MAX);
        }
        return -EINVAL;
    }
    return 0;
}

struct ihash {
    uint64_t h;
    size_t i;
};

static int ihash_cmp(const void *a, const void *b)
{
    const struct ihash *x = a, *y = b;

    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->i < y->i ? -1 : (x->i > y->i);
}

/* Finds the duplicate pair (i, j), i < j, with the smallest j. Returns 0 if
 * none, 1 if found, -ENOMEM. */
static int find_duplicate(struct vctx *c, const json_t *v, size_t *pi, size_t *pj)
{
    size_t n = json_array_size(v), best_j = SIZE_MAX, best_i = 0;
    struct ihash *h;

    if (n < UNIQUE_SORT_MIN) {
        for (size_t j = 1; j < n; j++) {
            for (size_t i = 0; i < j; i++) {
                c->steps++;
                if (values_equal(json_array_get(v, i), json_array_get(v, j), 0)) {
                    *pi = i;
                    *pj = j;
                    return 1;
                }
            }
        }
        return 0;
    }
    h = malloc(n * sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        h[i].h = value_hash(json_array_get(v, i), 0);
        h[i].i = i;
    }
    qsort(h, n, sizeof(*h), ihash_cmp);
    /* Within a run of equal hashes (index order), each element is compared
     * with the earlier ones until one is equal. */
    for (size_t start = 0, end; start < n; start = end) {
        for (end = start + 1; end < n && h[end].h == h[start].h; end++)
            ;
        for (size_t a = start + 1; a < end; a++) {
            for (size_t k = start; k < a; k++) {
                c->steps++;
                if (h[a].i < best_j &&
                    values_equal(json_array_get(v, h[k].i), json_array_get(v, h[a].i), 0)) {
                    best_j = h[a].i;
                    best_i = h[k].i;
                    break;
                }
            }
        }
    }
    free(h);
    if (best_j == SIZE_MAX)
        return 0;
    *pi = best_i;
    *pj = best_j;
    return 1;
}

static int validate_array(struct vctx *c, const struct node *n, const json_t *v)
{
    size_t size = json_array_size(v), i, j;
    int rc;

    if (n->min_items >= 0 && size < (size_t)n->min_items)
        return failf(c, "must have at least %" JSON_INTEGER_FORMAT " items, got %zu", n->min_items,
                     size);
    if (n->max_items >= 0 && size > (size_t)n->max_items)
        return failf(c, "must have at most %" JSON_INTEGER_FORMAT " items, got %zu", n->max_items,
                     size);
    if (n->items != NULL && n->items->boolean == 0 && size > n->prefix.n)
        return failf(c, "must have at most %zu items, got %zu", n->prefix.n, size);
    for (i = 0; i < size; i++) {
        const struct node *item = i < n->prefix.n ? n->prefix.v[i] : n->items;

        if (item == NULL)
            break;
        rc = validate_index(c, item, json_array_get(v, i), i);
        if (rc != 0)
            return rc;
    }
    if (n->unique && size > 1) {
        rc = find_duplicate(c, v, &i, &j);
        if (rc < 0)
            return fatalf(c, "out of memory");
        if (rc > 0)
            return failf(c, "must have unique items, but items %zu and %zu are equal", i, j);
    }
    return 0;
}

/* propertyNames: the name is validated as a string, at the object's pointer. */
static int validate_name(struct vctx *c, const struct node *n, const char *key, size_t len)
{
    json_t *name = json_stringn_nocheck(key, len);
    struct errbuf eb = {0};
    struct sb b;
    int rc;

    if (name == NULL)
        return fatalf(c, "out of memory");
    if (!c->want) {
        rc = validate(c, n, name);
        goto out;
    }
    eb.cap = c->errlen < BRANCH_ERR_MAX ? c->errlen : BRANCH_ERR_MAX;
    eb.buf = malloc(eb.cap);
    if (eb.buf == NULL) {
        rc = fatalf(c, "out of memory");
        goto out;
    }
    rc = validate_into(c, n, name, &eb);
    if (rc != 0 && !c->fatal && err_begin(c, &b)) {
        sb_puts(&b, "invalid property name ");
        sb_quote(&b, key, len, QUOTE_MAX);
        sb_puts(&b, ": ");
        sb_puts(&b, eb.own_off < strlen(eb.buf) ? eb.buf + eb.own_off : "");
    }
out:
    free(eb.buf);
    json_decref(name);
    return rc;
}

static int validate_object(struct vctx *c, const struct node *n, const json_t *v)
{
    size_t size = json_object_size(v), i;
    struct sb b;
    json_t *r;
    void *it;
    int rc;

    if (n->required != NULL) {
        json_array_foreach (n->required, i, r) {
            if (json_object_getn(v, json_string_value(r), json_string_length(r)) != NULL)
                continue;
            if (err_begin(c, &b)) {
                sb_puts(&b, "missing required property ");
                sb_quote(&b, json_string_value(r), json_string_length(r), QUOTE_MAX);
            }
            return -EINVAL;
        }
    }
    if (n->dep_required != NULL) {
        for (it = json_object_iter((json_t *)n->dep_required); it != NULL;
             it = json_object_iter_next((json_t *)n->dep_required, it)) {
            const char *key = json_object_iter_key(it);
            size_t len = json_object_iter_key_len(it);

            if (json_object_getn(v, key, len) == NULL)
                continue;
            json_array_foreach (json_object_iter_value(it), i, r) {
                if (json_object_getn(v, json_string_value(r), json_string_length(r)) != NULL)
                    continue;
                if (err_begin(c, &b)) {
                    sb_puts(&b, "missing property ");
                    sb_quote(&b, json_string_value(r), json_string_length(r), QUOTE_MAX);
                    sb_puts(&b, ", required when ");
                    sb_quote(&b, key, len, QUOTE_MAX);
                    sb_puts(&b, " is present");
                }
                return -EINVAL;
            }
        }
    }
    if (n->min_props >= 0 && size < (size_t)n->min_props)
        return failf(c, "must have at least %" JSON_INTEGER_FORMAT " properties, got %zu",
                     n->min_props, size);
    if (n->max_props >= 0 && size > (size_t)n->max_props)
        return failf(c, "must have at most %" JSON_INTEGER_FORMAT " properties, got %zu",
                     n->max_props, size);
    if (n->prop_index == NULL && n->npprops == 0 && n->additional == NULL &&
        n->property_names == NULL)
        return 0;
    /* Members in document order, so the first bad one is reported. */
    for (it = json_object_iter((json_t *)v); it != NULL;
         it = json_object_iter_next((json_t *)v, it)) {
        const char *key = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        const json_t *val = json_object_iter_value(it);
        const json_t *ix = NULL;
        bool matched = false;

        if (n->property_names != NULL) {
            rc = validate_name(c, n->property_names, key, len);
            if (rc != 0)
                return rc;
        }
        if (n->prop_index != NULL)
            ix = json_object_getn(n->prop_index, key, len);
        if (ix != NULL) {
            matched = true;
            rc = validate_key(c, n->props.v[json_integer_value(ix)], val, key, len);
            if (rc != 0)
                return rc;
        }
        for (i = 0; i < n->npprops; i++) {
            c->steps++;
            if (!pattern_match(&n->pprops[i].re, key, len))
                continue;
            matched = true;
            rc = validate_key(c, n->pprops[i].schema, val, key, len);
            if (rc != 0)
                return rc;
        }
        if (matched || n->additional == NULL)
            continue;
        if (n->additional->boolean == 0) {
            if (err_begin(c, &b)) {
                sb_puts(&b, "unknown property ");
                sb_quote(&b, key, len, QUOTE_MAX);
            }
            return -EINVAL;
        }
        rc = validate_key(c, n->additional, val, key, len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The value of the discriminator property, if d applies to v. */
static const json_t *disc_value(const struct disc *d, const json_t *v)
{
    if (d == NULL || !json_is_object(v))
        return NULL;
    return json_object_getn(v, d->key, d->len);
}

/* Error for a discriminator value that no branch accepts, at its pointer. */
static int fail_disc(struct vctx *c, const struct disc *d, size_t n)
{
    int rc;

    if (!c->want)
        return -EINVAL;
    rc = push_seg(c, d->key, d->len, 0);
    if (rc != 0)
        return rc;
    rc = fail_one_of_values(c, d->consts, n);
    c->depth--;
    return rc;
}

static size_t clamp(size_t off, size_t len)
{
    return off < len ? off : len;
}

/* Appends "; closest: " and the leaf of a branch's error; the combined error
 * takes that leaf (and its depth) as its own. */
static void quote_leaf(struct vctx *c, struct sb *b, const struct errbuf *eb)
{
    size_t len = strlen(eb->buf);
    size_t p0 = clamp(eb->ptr_off, len), p1 = clamp(eb->ptr_off + eb->ptr_len, len);

    sb_puts(b, "; closest: ");
    if (eb->depth != c->depth) {
        c->ptr_off = b->len;
        c->ptr_len = p1 - p0;
        sb_putn(b, eb->buf + p0, p1 - p0);
        sb_puts(b, ": ");
    }
    c->leaf_off = b->len;
    sb_puts(b, eb->buf + clamp(eb->leaf_off, len));
    if (eb->depth > c->err_depth)
        c->err_depth = eb->depth;
}

/* anyOf (one == false) or oneOf (one == true). With a discriminator, only the
 * branches whose const matches can pass, so only those are tried. */
static int validate_choice(struct vctx *c, const struct nodelist *list, const struct disc *d,
                           bool one, const json_t *v)
{
    const json_t *dv = disc_value(d, v);
    struct errbuf best = {0}, cur = {0};
    size_t candidates = 0, last = 0, passed = 0, first_pass = 0, i;
    struct sb b;
    int rc = -EINVAL;

    for (i = 0; i < list->n; i++) {
        if (dv == NULL || values_equal(d->consts[i], dv, 0)) {
            candidates++;
            last = i;
        }
    }
    if (candidates == 0)
        return fail_disc(c, d, list->n);
    /* A single candidate: its error is the precise one. */
    if (candidates == 1)
        return validate(c, list->v[last], v);
    if (c->want) {
        cur.cap = best.cap = c->errlen < BRANCH_ERR_MAX ? c->errlen : BRANCH_ERR_MAX;
        cur.buf = malloc(cur.cap);
        best.buf = malloc(best.cap);
        best.depth = -2;
        if (cur.buf == NULL || best.buf == NULL) {
            rc = fatalf(c, "out of memory");
            goto out;
        }
    }
    for (i = 0; i < list->n; i++) {
        if (dv != NULL && !values_equal(d->consts[i], dv, 0))
            continue;
        if (c->want)
            rc = validate_into(c, list->v[i], v, &cur);
        else
            rc = validate(c, list->v[i], v);
        if (c->fatal)
            goto out;
        if (rc == 0) {
            if (!one)
                goto out;
            passed++;
            if (passed == 1) {
                first_pass = i;
                continue;
            }
            rc = failf(c, "must match exactly one of the %zu alternatives, but matches %zu and %zu",
                       list->n, first_pass, i);
            goto out;
        }
        if (c->want && cur.depth > best.depth) {
            struct errbuf t = best;

            best = cur;
            cur = t;
        }
    }
    if (passed == 1) {
        rc = 0;
        goto out;
    }
    rc = -EINVAL;
    if (err_begin(c, &b)) {
        sb_printf(&b, "matches none of the %zu alternatives", list->n);
        if (best.depth >= 0 && best.buf[0] != '\0')
            quote_leaf(c, &b, &best);
    }
out:
    free(cur.buf);
    free(best.buf);
    return rc;
}

static int validate_applicators(struct vctx *c, const struct node *n, const json_t *v)
{
    int rc;

    for (size_t i = 0; i < n->all_of.n; i++) {
        rc = validate(c, n->all_of.v[i], v);
        if (rc != 0)
            return rc;
    }
    if (n->any_of.n > 0) {
        rc = validate_choice(c, &n->any_of, n->any_disc, false, v);
        if (rc != 0)
            return rc;
    }
    if (n->one_of.n > 0) {
        rc = validate_choice(c, &n->one_of, n->one_disc, true, v);
        if (rc != 0)
            return rc;
    }
    if (n->not_ != NULL) {
        rc = validate_quiet(c, n->not_, v);
        if (c->fatal)
            return -EINVAL;
        if (rc == 0)
            return failf(c, "must not match the schema in \"not\"");
    }
    if (n->if_ != NULL) {
        rc = validate_quiet(c, n->if_, v);
        if (c->fatal)
            return -EINVAL;
        if (rc == 0 && n->then_ != NULL)
            return validate(c, n->then_, v);
        if (rc != 0 && n->else_ != NULL)
            return validate(c, n->else_, v);
    }
    return 0;
}

static int validate_node(struct vctx *c, const struct node *n, const json_t *v)
{
    int rc;

    if (n->boolean == 1)
        return 0;
    if (n->boolean == 0)
        return failf(c, "no value is allowed here");
    if (n->types != 0 && !type_ok(n->types, v))
        return fail_type(c, n->types, v);
    if (n->const_val != NULL && !values_equal(n->const_val, v, 0))
        return fail_one_of_values(c, &n->const_val, 1);
    if (n->enum_vals != NULL) {
        rc = validate_enum(c, n->enum_vals, v);
        if (rc != 0)
            return rc;
    }
    if (n->ref != NULL) {
        rc = validate(c, n->ref, v);
        if (rc != 0)
            return rc;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        rc = validate_object(c, n, v);
        break;
    case JSON_ARRAY:
        rc = validate_array(c, n, v);
        break;
    case JSON_STRING:
        rc = validate_string(c, n, v);
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        rc = validate_number(c, n, v);
        break;
    default:
        rc = 0;
        break;
    }
    if (rc != 0)
        return rc;
    return validate_applicators(c, n, v);
}

static int validate(struct vctx *c, const struct node *n, const json_t *v)
{
    int rc;

    if (c->fatal)
        return -EINVAL;
    if (++c->steps > WC_JSONSCHEMA_MAX_STEPS)
        return fatalf(c, "validation needs more than %lu steps", WC_JSONSCHEMA_MAX_STEPS);
    if (c->frames >= MAX_FRAMES)
        return fatalf(c, "schema evaluation nested deeper than %d", MAX_FRAMES);
    c->frames++;
    rc = validate_node(c, n, v);
    c->frames--;
    return rc;
}

static void vctx_reset(struct vctx *c, bool want, char *err, size_t errlen)
{
    c->depth = 0;
    c->frames = 0;
    c->steps = 0;
    c->want = want;
    c->fatal = false;
    c->err = err;
    c->errlen = errlen;
    c->own_off = c->ptr_off = c->ptr_len = c->leaf_off = 0;
    c->err_depth = -1;
    c->fatal_depth = 0;
    c->fatal_msg[0] = '\0';
}

int wc_jsonschema_validate(const wc_jsonschema_t *s, const json_t *doc, char *err, size_t errlen)
{
    struct vctx c;
    struct sb b;
    int rc;

    assert(s != NULL && doc != NULL);
    assert(err != NULL || errlen == 0);
    vctx_reset(&c, false, NULL, 0);
    rc = validate(&c, s->root, doc);
    if (rc == 0) {
        if (errlen > 0)
            err[0] = '\0';
        return 0;
    }
    if (errlen == 0)
        return -EINVAL;
    /* Invalid: walk again, building messages this time. */
    if (!c.fatal) {
        vctx_reset(&c, true, err, errlen);
        err[0] = '\0';
        rc = validate(&c, s->root, doc);
    }
    if (c.fatal) {
        sb_init(&b, err, errlen);
        sb_pointer(&b, "", c.fatal_path, c.fatal_depth);
        sb_puts(&b, ": ");
        sb_puts(&b, c.fatal_msg);
    } else if (rc == 0 || err[0] == '\0') {
        sb_init(&b, err, errlen); /* cannot happen: both walks see the same data */
        sb_puts(&b, "/: invalid");
    }
    return -EINVAL;
}
