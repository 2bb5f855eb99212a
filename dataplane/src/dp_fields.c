/* SPDX-License-Identifier: Apache-2.0 */
/* Field paths, row decoding and JSON encoding. Parsing goes through jansson;
 * output is written by our own serializer straight into the caller's buffer,
 * so doubles keep their shortest round-trip form (dp_expr_fmt_double) and a
 * warm buffer needs no allocation. */
#include "dp_fields.h"

#include "dp_expr.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A split path. Segment offsets are into the path text. */
typedef struct ppath {
    int kind;
    uint16_t nseg;
    uint16_t soff[DP_FIELDS_SEG_MAX];
    uint16_t slen[DP_FIELDS_SEG_MAX];
} ppath_t;

typedef struct fpath {
    ppath_t pp;
    size_t len;
    char *path; /* NUL-terminated copy */
} fpath_t;

struct dp_fields {
    fpath_t *v;
    uint32_t n, cap;
    bool reads_payload; /* some path needs the parsed JSON payload */
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int split_path(const char *path, size_t len, ppath_t *pp, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        int kind;
    } roots[] = {{"payload", DP_FIELD_PAYLOAD},
                 {"header", DP_FIELD_HEADER},
                 {"key", DP_FIELD_KEY},
                 {"timestamp", DP_FIELD_TIMESTAMP},
                 {"eventtime", DP_FIELD_EVENTTIME}};
    int shown = len > 64 ? 64 : (int)len;
    size_t rootlen, i;

    if (len == 0) {
        errf(err, errlen, "empty field path");
        return -EINVAL;
    }
    if (len > DP_FIELDS_PATH_MAX) {
        errf(err, errlen, "path '%.*s...' is longer than %d bytes", shown, path,
             DP_FIELDS_PATH_MAX);
        return -EINVAL;
    }
    if (memchr(path, '\0', len) != NULL) {
        errf(err, errlen, "path '%.*s' contains a NUL byte", shown, path);
        return -EINVAL;
    }
    for (rootlen = 0; rootlen < len && path[rootlen] != '.'; rootlen++)
        ;
    pp->kind = -1;
    for (i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
        if (strlen(roots[i].name) == rootlen && memcmp(roots[i].name, path, rootlen) == 0)
            pp->kind = roots[i].kind;
    if (pp->kind < 0) {
        errf(err, errlen,
             "path '%.*s' must start with payload, header, key, timestamp or eventtime", shown,
             path);
        return -EINVAL;
    }
    pp->nseg = 0;
    if (rootlen == len) {
        if (pp->kind == DP_FIELD_HEADER) {
            errf(err, errlen, "path 'header' needs a header name (header.NAME)");
            return -EINVAL;
        }
        if (pp->kind == DP_FIELD_PAYLOAD)
            pp->kind = DP_FIELD_PAYLOAD_ROOT;
        return 0;
    }
    if (pp->kind != DP_FIELD_PAYLOAD && pp->kind != DP_FIELD_HEADER) {
        errf(err, errlen, "path '%.*s': %.*s has no sub-fields", shown, path, (int)rootlen, path);
        return -EINVAL;
    }
    for (i = rootlen; i < len;) {
        size_t j = i + 1;

        while (j < len && path[j] != '.')
            j++;
        if (j == i + 1) {
            errf(err, errlen, "path '%.*s' has an empty segment at byte %zu", shown, path, i + 2);
            return -EINVAL;
        }
        if (pp->nseg == DP_FIELDS_SEG_MAX) {
            errf(err, errlen, "path '%.*s' has more than %d segments", shown, path,
                 DP_FIELDS_SEG_MAX);
            return -EINVAL;
        }
        pp->soff[pp->nseg] = (uint16_t)(i + 1);
        pp->slen[pp->nseg] = (uint16_t)(j - i - 1);
        pp->nseg++;
        i = j;
    }
    return 0;
}

int dp_fields_check_path(const char *path, size_t len, char *err, size_t errlen)
{
    ppath_t pp;

    return split_path(path, len, &pp, err, errlen);
}

int dp_fields_new(dp_fields_t **out)
{
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : -ENOMEM;
}

void dp_fields_free(dp_fields_t *f)
{
    if (f == NULL)
        return;
    for (uint32_t i = 0; i < f->n; i++)
        free(f->v[i].path);
    free(f->v);
    free(f);
}

int dp_fields_slot(dp_fields_t *f, const char *path, size_t len)
{
    fpath_t *fp;
    int rc;

    for (uint32_t i = 0; i < f->n; i++)
        if (f->v[i].len == len && memcmp(f->v[i].path, path, len) == 0)
            return (int)i;
    if (f->n == DP_FIELDS_MAX)
        return -ENOSPC;
    if (f->n == f->cap) {
        uint32_t cap = f->cap ? f->cap * 2 : 16;
        fpath_t *v = realloc(f->v, cap * sizeof(*v));

        if (v == NULL)
            return -ENOMEM;
        f->v = v;
        f->cap = cap;
    }
    fp = &f->v[f->n];
    rc = split_path(path, len, &fp->pp, NULL, 0);
    if (rc != 0)
        return rc;
    fp->path = malloc(len + 1);
    if (fp->path == NULL)
        return -ENOMEM;
    memcpy(fp->path, path, len);
    fp->path[len] = '\0';
    fp->len = len;
    if (fp->pp.kind == DP_FIELD_PAYLOAD || fp->pp.kind == DP_FIELD_PAYLOAD_ROOT)
        f->reads_payload = true;
    return (int)f->n++;
}

int dp_fields_resolve(void *ctx, const char *path, size_t len)
{
    return dp_fields_slot(ctx, path, len);
}

uint32_t dp_fields_count(const dp_fields_t *f)
{
    return f->n;
}

const char *dp_fields_path(const dp_fields_t *f, uint32_t slot)
{
    return slot < f->n ? f->v[slot].path : NULL;
}

int dp_fields_kind(const dp_fields_t *f, uint32_t slot)
{
    return slot < f->n ? f->v[slot].pp.kind : -EINVAL;
}

/* --------------------------------------------------------------- writer */

/* Appends to a dp_fields_buf_t with a sticky error. A fixed writer (over the
 * doc arena) never grows. */
typedef struct wr {
    dp_fields_buf_t *b;
    bool fixed;
    int err;
} wr_t;

static void put(wr_t *w, const void *p, size_t n)
{
    dp_fields_buf_t *b = w->b;
    size_t max = b->max ? b->max : DP_FIELDS_BUF_MAX;

    if (w->err != 0 || n == 0)
        return;
    if (!w->fixed && (b->len > max || n > max - b->len)) {
        w->err = -E2BIG;
        return;
    }
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        char *nd;

        if (w->fixed) {
            w->err = -ENOSPC;
            return;
        }
        if (cap > max)
            cap = max;
        while (cap - b->len < n)
            cap = cap > max / 2 ? max : cap * 2;
        nd = realloc(b->data, cap);
        if (nd == NULL) {
            w->err = -ENOMEM;
            return;
        }
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void putc1(wr_t *w, char c)
{
    put(w, &c, 1);
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        k = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4, cp = c & 0x07;
    else
        return 0;
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return k;
}

/* Writes a JSON string. `check`: fail with -EILSEQ on invalid UTF-8. */
static void put_str(wr_t *w, const char *s, size_t n, bool check)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;

    putc1(w, '"');
    while (i < n) {
        unsigned char c = u[i];
        char esc[8];
        size_t k;

        if (c >= 0x20 && c != '"' && c != '\\') {
            k = c < 0x80 || !check ? 1 : utf8_seq(u + i, n - i);
            if (k == 0) {
                if (w->err == 0)
                    w->err = -EILSEQ;
                return;
            }
            i += k;
            continue;
        }
        put(w, s + run, i - run);
        switch (c) {
        case '"':
            put(w, "\\\"", 2);
            break;
        case '\\':
            put(w, "\\\\", 2);
            break;
        case '\n':
            put(w, "\\n", 2);
            break;
        case '\r':
            put(w, "\\r", 2);
            break;
        case '\t':
            put(w, "\\t", 2);
            break;
        case '\b':
            put(w, "\\b", 2);
            break;
        case '\f':
            put(w, "\\f", 2);
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(w, esc, 6);
            break;
        }
        run = ++i;
    }
    put(w, s + run, n - run);
    putc1(w, '"');
}

static void put_int(wr_t *w, long long i)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", i);

    put(w, b, (size_t)n);
}

static void put_double(wr_t *w, double d)
{
    char b[DP_EXPR_NUM_MAX];

    put(w, b, dp_expr_fmt_double(d, b));
}

/* Compact JSON of a jansson value (depth is bounded by jansson's parser and
 * by DP_FIELDS_SEG_MAX for objects we create). */
static void put_json(wr_t *w, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        bool first = true;

        putc1(w, '{');
        for (void *it = json_object_iter((json_t *)j); it != NULL && w->err == 0;
             it = json_object_iter_next((json_t *)j, it)) {
            if (!first)
                putc1(w, ',');
            first = false;
            put_str(w, json_object_iter_key(it), json_object_iter_key_len(it), false);
            putc1(w, ':');
            put_json(w, json_object_iter_value(it));
        }
        putc1(w, '}');
        break;
    }
    case JSON_ARRAY:
        putc1(w, '[');
        for (size_t i = 0; i < json_array_size(j) && w->err == 0; i++) {
            if (i > 0)
                putc1(w, ',');
            put_json(w, json_array_get(j, i));
        }
        putc1(w, ']');
        break;
    case JSON_STRING:
        put_str(w, json_string_value(j), json_string_length(j), false);
        break;
    case JSON_INTEGER:
        put_int(w, (long long)json_integer_value(j));
        break;
    case JSON_REAL:
        put_double(w, json_real_value(j));
        break;
    case JSON_TRUE:
        put(w, "true", 4);
        break;
    case JSON_FALSE:
        put(w, "false", 5);
        break;
    default:
        put(w, "null", 4);
        break;
    }
}

void dp_fields_buf_dispose(dp_fields_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* --------------------------------------------------------------- decode */

void dp_fields_doc_init(dp_fields_doc_t *doc, void *arena, size_t arena_cap)
{
    doc->root = NULL;
    doc->arena = arena;
    doc->arena_cap = arena != NULL ? arena_cap : 0;
    doc->arena_len = 0;
    doc->err[0] = '\0';
}

void dp_fields_doc_reset(dp_fields_doc_t *doc)
{
    json_decref(doc->root);
    doc->root = NULL;
    doc->arena_len = 0;
    doc->err[0] = '\0';
}

/* A jansson value as a slot value; containers become their JSON text in the arena. */
static dp_val_t from_json(const json_t *j, dp_fields_doc_t *doc)
{
    switch (json_typeof(j)) {
    case JSON_STRING:
        if (json_string_length(j) > UINT32_MAX)
            return dp_val_err(DP_VERR_RANGE);
        return dp_val_str(json_string_value(j), (uint32_t)json_string_length(j));
    case JSON_INTEGER:
        return dp_val_int((int64_t)json_integer_value(j));
    case JSON_REAL:
        return dp_val_double(json_real_value(j));
    case JSON_TRUE:
        return dp_val_bool(true);
    case JSON_FALSE:
        return dp_val_bool(false);
    case JSON_NULL:
        return dp_val_null();
    default: {
        dp_fields_buf_t b = {.cap = doc->arena_cap - doc->arena_len};
        wr_t w = {.b = &b, .fixed = true};

        if (doc->arena == NULL)
            return dp_val_err(DP_VERR_NOMEM);
        b.data = doc->arena + doc->arena_len;
        put_json(&w, j);
        if (w.err != 0 || b.len > UINT32_MAX)
            return dp_val_err(DP_VERR_NOMEM);
        doc->arena_len += b.len;
        return dp_val_str(b.data, (uint32_t)b.len);
    }
    }
}

static dp_val_t decode_payload(const fpath_t *fp, const dp_row_t *row, dp_fields_format_t format,
                               dp_fields_doc_t *doc)
{
    const json_t *j = doc->root;

    if (fp->pp.kind == DP_FIELD_PAYLOAD_ROOT) {
        if (row->payload == NULL)
            return dp_val_null();
        if (format != DP_FIELDS_JSON || json_is_object(j) || json_is_array(j))
            return dp_val_str(row->payload, row->payload_len);
        return from_json(j, doc);
    }
    if (format != DP_FIELDS_JSON || j == NULL)
        return dp_val_missing();
    for (uint16_t s = 0; s < fp->pp.nseg; s++) {
        if (!json_is_object(j))
            return dp_val_missing();
        j = json_object_getn(j, fp->path + fp->pp.soff[s], fp->pp.slen[s]);
        if (j == NULL)
            return dp_val_missing();
    }
    return from_json(j, doc);
}

static dp_val_t decode_header(const fpath_t *fp, const dp_row_t *row)
{
    const char *name = fp->path + fp->pp.soff[0];
    size_t n = fp->len - fp->pp.soff[0];

    for (uint32_t i = row->nhdrs; i-- > 0;) {
        const dp_hdr_t *h = &row->hdrs[i];

        if (h->name_len == n && memcmp(h->name, name, n) == 0)
            return h->val != NULL ? dp_val_str(h->val, h->val_len) : dp_val_null();
    }
    return dp_val_missing();
}

int dp_fields_decode(const dp_fields_t *f, dp_row_t *row, dp_fields_format_t format,
                     dp_fields_doc_t *doc)
{
    if (row->nslots < f->n || (f->n > 0 && row->slots == NULL))
        return -ENOSPC;
    /* a document left over from a record the caller did not reset must not leak into this one */
    json_decref(doc->root);
    doc->root = NULL;
    if (format == DP_FIELDS_JSON && f->reads_payload && row->payload != NULL) {
        json_error_t je;

        doc->root =
            json_loadb(row->payload, row->payload_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (doc->root == NULL) {
            errf(doc->err, sizeof(doc->err), "payload is not JSON: line %d column %d: %s", je.line,
                 je.column, je.text);
            return -EBADMSG;
        }
    }
    for (uint32_t i = 0; i < f->n; i++) {
        const fpath_t *fp = &f->v[i];
        dp_val_t *v = &row->slots[i];

        switch (fp->pp.kind) {
        case DP_FIELD_PAYLOAD_ROOT:
        case DP_FIELD_PAYLOAD:
            *v = decode_payload(fp, row, format, doc);
            break;
        case DP_FIELD_HEADER:
            *v = decode_header(fp, row);
            break;
        case DP_FIELD_KEY:
            *v = row->key != NULL ? dp_val_str(row->key, row->key_len) : dp_val_null();
            break;
        case DP_FIELD_TIMESTAMP:
            *v = dp_val_int(row->ts_ms);
            break;
        default:
            *v = dp_val_int(row->event_ms);
            break;
        }
    }
    return 0;
}

/* --------------------------------------------------------------- encode */

static int to_json(const dp_val_t *v, json_t **out)
{
    *out = NULL;
    switch (v->type) {
    case DP_VAL_NULL:
        *out = json_null();
        break;
    case DP_VAL_BOOL:
        *out = json_boolean(v->u.b);
        break;
    case DP_VAL_INT:
        *out = json_integer((json_int_t)v->u.i);
        break;
    case DP_VAL_DOUBLE:
        *out = json_real(v->u.d);
        if (*out == NULL)
            return -EINVAL; /* non-finite */
        break;
    case DP_VAL_STR:
        *out = json_stringn(v->len > 0 ? v->u.s : "", v->len);
        if (*out == NULL)
            return -EILSEQ;
        break;
    default:
        return -EINVAL;
    }
    return *out != NULL ? 0 : -ENOMEM;
}

/* Parses a payload path for an edit into `pp`. */
static int edit_path(const char *path, ppath_t *pp, char *err, size_t errlen)
{
    int rc = split_path(path, strlen(path), pp, err, errlen);

    if (rc != 0)
        return rc;
    if (pp->kind != DP_FIELD_PAYLOAD && pp->kind != DP_FIELD_PAYLOAD_ROOT) {
        errf(err, errlen, "'%.64s' is not a payload path", path);
        return -EINVAL;
    }
    return 0;
}

static int apply_set(json_t **root, const char *path, const dp_val_t *val, char *err, size_t errlen)
{
    ppath_t pp;
    json_t *cur, *nv;
    int rc = edit_path(path, &pp, err, errlen);

    if (rc != 0)
        return rc;
    if (val->type == DP_VAL_MISSING)
        return 0;
    rc = to_json(val, &nv);
    if (rc != 0) {
        errf(err, errlen, "cannot set '%.64s': %s", path,
             rc == -EILSEQ ? "string is not valid UTF-8" : "value has no JSON form");
        return rc;
    }
    if (pp.kind == DP_FIELD_PAYLOAD_ROOT) {
        json_decref(*root);
        *root = nv;
        return 0;
    }
    cur = *root;
    for (uint16_t s = 0; s < pp.nseg; s++) {
        const char *seg = path + pp.soff[s];
        json_t *next;

        if (!json_is_object(cur)) {
            errf(err, errlen, "cannot set '%.64s': '%.*s' is inside a value that is not an object",
                 path, (int)pp.slen[s], seg);
            json_decref(nv);
            return -ENOTDIR;
        }
        if (s + 1 == pp.nseg) {
            if (json_object_setn_new(cur, seg, pp.slen[s], nv) != 0) {
                errf(err, errlen, "cannot set '%.64s'", path);
                return -ENOMEM;
            }
            return 0;
        }
        next = json_object_getn(cur, seg, pp.slen[s]);
        if (next == NULL) {
            next = json_object();
            if (next == NULL || json_object_setn_new(cur, seg, pp.slen[s], next) != 0) {
                json_decref(nv);
                errf(err, errlen, "out of memory");
                return -ENOMEM;
            }
        }
        cur = next;
    }
    return 0;
}

static int apply_remove(json_t *root, const char *path, char *err, size_t errlen)
{
    ppath_t pp;
    json_t *cur = root;
    int rc = edit_path(path, &pp, err, errlen);

    if (rc != 0)
        return rc;
    if (pp.kind == DP_FIELD_PAYLOAD_ROOT) {
        errf(err, errlen, "cannot remove the whole payload");
        return -EINVAL;
    }
    for (uint16_t s = 0; s < pp.nseg && cur != NULL; s++) {
        const char *seg = path + pp.soff[s];

        if (!json_is_object(cur))
            return 0;
        if (s + 1 == pp.nseg) {
            json_object_deln(cur, seg, pp.slen[s]);
            return 0;
        }
        cur = json_object_getn(cur, seg, pp.slen[s]);
    }
    return 0;
}

static int finish(wr_t *w, char *err, size_t errlen)
{
    if (w->err == -E2BIG)
        errf(err, errlen, "output payload larger than its bound");
    else if (w->err == -EILSEQ)
        errf(err, errlen, "string is not valid UTF-8");
    else if (w->err != 0)
        errf(err, errlen, "out of memory");
    return w->err;
}

int dp_fields_patch_json(const char *payload, size_t len, const char *const *set_paths,
                         const dp_val_t *set_vals, size_t nset, const char *const *remove_paths,
                         size_t nremove, dp_fields_buf_t *out, char *err, size_t errlen)
{
    wr_t w = {.b = out};
    json_t *root;
    json_error_t je;
    int rc = 0;

    out->len = 0;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (payload == NULL || len == 0) {
        root = json_object();
    } else {
        root = json_loadb(payload, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (root == NULL) {
            errf(err, errlen, "payload is not JSON: line %d column %d: %s", je.line, je.column,
                 je.text);
            return -EBADMSG;
        }
    }
    if (root == NULL) {
        errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < nset && rc == 0; i++)
        rc = apply_set(&root, set_paths[i], &set_vals[i], err, errlen);
    for (size_t i = 0; i < nremove && rc == 0; i++)
        rc = apply_remove(root, remove_paths[i], err, errlen);
    if (rc == 0) {
        put_json(&w, root);
        rc = finish(&w, err, errlen);
    }
    json_decref(root);
    if (rc != 0)
        out->len = 0;
    return rc;
}

int dp_fields_build_json(const char *const *names, const dp_val_t *vals, size_t n,
                         dp_fields_buf_t *out)
{
    wr_t w = {.b = out};
    bool first = true;

    out->len = 0;
    putc1(&w, '{');
    for (size_t i = 0; i < n && w.err == 0; i++) {
        const dp_val_t *v = &vals[i];

        if (v->type == DP_VAL_MISSING)
            continue;
        if (v->type == DP_VAL_ERR || (v->type == DP_VAL_DOUBLE && !isfinite(v->u.d))) {
            w.err = -EINVAL;
            break;
        }
        if (!first)
            putc1(&w, ',');
        first = false;
        put_str(&w, names[i], strlen(names[i]), true);
        putc1(&w, ':');
        switch (v->type) {
        case DP_VAL_NULL:
            put(&w, "null", 4);
            break;
        case DP_VAL_BOOL:
            v->u.b ? put(&w, "true", 4) : put(&w, "false", 5);
            break;
        case DP_VAL_INT:
            put_int(&w, (long long)v->u.i);
            break;
        case DP_VAL_DOUBLE:
            put_double(&w, v->u.d);
            break;
        default:
            put_str(&w, v->u.s, v->len, true);
            break;
        }
    }
    putc1(&w, '}');
    if (w.err != 0)
        out->len = 0;
    return w.err;
}
