/* SPDX-License-Identifier: Apache-2.0 */
/* Keyed window state: an open-addressing table of keys, per key a list of
 * slices (panes of gcd(size, slide) ms, or sessions) newest first, all nodes
 * from slabs the operator owns, variable bytes (strings, kept records) from
 * power-of-two blob classes. An add plans every byte and allocation it
 * needs before it changes anything, so -ENOBUFS, -ENOMEM and -EINVAL leave
 * the state untouched. See docs/internals/windows.md. */
#include "dp_win.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Agg "no input yet" tag. */
#define T_NONE DP_VAL_MISSING

/* Blob classes: 16 B << c for c in [0, BLOB_CLASSES); larger blobs are malloc'd. */
#define BLOB_CLASSES 13
#define BLOB_MAX ((size_t)16 << (BLOB_CLASSES - 1))
#define SLAB_CHUNK_BYTES (64u * 1024u)
#define TAB_MIN 16u
#define FIRE_MIN 64u

#define WIN_MAGIC 0x4e495757u /* "WWIN" */
#define WIN_END_MAGIC 0x444e4557u
#define WIN_VERSION 1u

/* One aggregation's state (or a borrowed view of it while combining). */
typedef struct agg {
    uint8_t t; /* T_NONE, DP_VAL_BOOL, INT, DOUBLE, STR */
    uint8_t pad[3];
    uint32_t len; /* STR */
    union {
        int64_t i; /* INT, BOOL (0/1) */
        double d;
        const char *s; /* owned blob in slices; borrowed in views */
    } v;
    int64_t ts; /* FIRST/LAST: event time of the value */
    union {
        uint64_t seq; /* FIRST/LAST: arrival of the value */
        uint64_t n;   /* AVG: non-null inputs */
    } u;
} agg_t;

/* A kept record: one blob holding the header array, payload and header bytes. */
typedef struct krec {
    struct krec *next;
    uint64_t seq;
    int64_t ts;
    const char *payload;
    uint32_t bytes; /* blob size, to free it */
    uint32_t payload_len;
    uint32_t nhdrs;
    uint32_t pad;
    dp_hdr_t hdrs[];
} krec_t;

/* A pane [start, start+g) or a session [start, end). */
typedef struct slice {
    struct slice *next; /* older */
    int64_t start;
    int64_t end;
    uint64_t count;
    krec_t *rhead, *rtail; /* keep_records, arrival order */
    uint32_t nrecs;
    uint8_t dirty; /* changed since the last early firing */
    uint8_t pad[3];
    agg_t aggs[];
} slice_t;

typedef struct wkey {
    uint64_t h;
    uint64_t seq;               /* insertion order */
    dp_val_t key;               /* STR bytes in a blob */
    struct wkey *next, *prev;   /* insertion order */
    struct wkey *lnext, *lprev; /* idle order: least recent input first */
    slice_t *slices;            /* newest first */
    int64_t last_input_ms;
    uint32_t nslices;
    uint8_t in_lru;
} wkey_t;

typedef struct ent {
    uint64_t h;
    wkey_t *k;
} ent_t;

/* Fixed-size object allocator: chunks are never returned before dp_win_free. */
typedef struct slab {
    size_t size;
    size_t per_chunk;
    void *free;
    size_t nfree;
    void *chunks;
} slab_t;

/* One window to emit. */
typedef struct fire {
    int64_t end;
    int64_t start;
    uint64_t kseq;
    wkey_t *k;
} fire_t;

/* Everything an add will allocate, reserved before state changes. */
typedef struct plan {
    size_t bytes;
    uint32_t nblob[BLOB_CLASSES];
    uint32_t nkey, nslice;
    void *big[DP_WIN_AGGS_MAX + 2];
    size_t big_n[DP_WIN_AGGS_MAX + 2];
    uint32_t nbig, bigpos;
    ent_t *newtab;
    size_t newcap;
} plan_t;

struct dp_win {
    dp_win_cfg_t cfg;
    int64_t g;     /* pane length; 0 for sessions */
    int64_t slide; /* size for tumbling */
    size_t slice_bytes;
    size_t key_bytes; /* charged per key: node + its fire-list slot */
    slab_t key_slab, slice_slab, blob[BLOB_CLASSES];
    ent_t *tab;
    size_t tab_cap, nkeys;
    wkey_t *head, *tail;
    wkey_t *lhead, *ltail;
    uint64_t key_seq, rec_seq;
    int64_t wm, now, last_early, next_due;
    size_t bytes;
    size_t nrecs_total;
    fire_t *fire;
    size_t fire_cap, fire_n;
    size_t fire_max;      /* growth bound for one emission pass (tests lower it) */
    uint64_t fire_rounds; /* passes that fell back to one end at a time */
    bool fire_overflow;
    agg_t *racc;
    dp_val_t *rvals;
    krec_t **rk;
    dp_win_rec_t *rv;
    size_t rcap;
    dp_win_stats_t st;
    bool in_emit;
};

/* ---- arithmetic ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b != 0) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
    int64_t r;

    if (__builtin_sub_overflow(a, b, &r))
        return b > 0 ? INT64_MIN : INT64_MAX;
    return r;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;

    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* Windows containing pane s: starts in [first_start, last_start], step slide. */
static int64_t first_start(const dp_win_t *w, int64_t s)
{
    return floor_div(s - w->cfg.size_ms, w->slide) * w->slide + w->slide;
}

static int64_t last_start(const dp_win_t *w, int64_t s)
{
    return floor_div(s, w->slide) * w->slide;
}

/* Event time at which this slice next needs attention: a window end to fire
 * or, once all its windows fired, its purge time. */
static int64_t slice_due(const dp_win_t *w, const slice_t *s)
{
    int64_t L = w->cfg.allowed_lateness_ms;

    if (w->cfg.kind == DP_WIN_SESSION)
        return s->end > w->wm ? s->end : s->end + L;
    int64_t a = first_start(w, s->start), b = last_start(w, s->start);
    if (w->wm != INT64_MIN) {
        int64_t wmin = floor_div(w->wm - w->cfg.size_ms, w->slide) * w->slide + w->slide;
        if (wmin > a)
            a = wmin;
    }
    if (a <= b)
        return a + w->cfg.size_ms;
    return last_start(w, s->start) + w->cfg.size_ms + L;
}

/* ---- allocators ---- */

static void slab_init(slab_t *s, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    *s = (slab_t){.size = size, .per_chunk = SLAB_CHUNK_BYTES / size};
    if (s->per_chunk == 0)
        s->per_chunk = 1;
}

static int slab_refill(slab_t *s)
{
    char *c = malloc(16 + s->per_chunk * s->size);

    if (c == NULL)
        return -ENOMEM;
    *(void **)c = s->chunks;
    s->chunks = c;
    for (size_t i = 0; i < s->per_chunk; i++) {
        void *o = c + 16 + i * s->size;
        *(void **)o = s->free;
        s->free = o;
    }
    s->nfree += s->per_chunk;
    return 0;
}

static int slab_reserve(slab_t *s, size_t n)
{
    while (s->nfree < n) {
        if (slab_refill(s) != 0)
            return -ENOMEM;
    }
    return 0;
}

static void *slab_get(slab_t *s)
{
    void *o;

    if (s->free == NULL && slab_refill(s) != 0)
        return NULL;
    o = s->free;
    s->free = *(void **)o;
    s->nfree--;
    return o;
}

static void slab_put(slab_t *s, void *o)
{
    *(void **)o = s->free;
    s->free = o;
    s->nfree++;
}

static void slab_dispose(slab_t *s)
{
    void *c = s->chunks;

    while (c != NULL) {
        void *n = *(void **)c;
        free(c);
        c = n;
    }
    s->chunks = s->free = NULL;
    s->nfree = 0;
}

static int blob_class(size_t n)
{
    int c = 0;

    while (c < BLOB_CLASSES && ((size_t)16 << c) < n)
        c++;
    return c < BLOB_CLASSES ? c : -1;
}

/* Bytes charged for a blob of n bytes. */
static size_t blob_charge(size_t n)
{
    int c = blob_class(n == 0 ? 1 : n);

    return c >= 0 ? (size_t)16 << c : (n + 15) & ~(size_t)15;
}

/* Fallible allocation (load path); charges the budget. */
static void *blob_alloc(dp_win_t *w, size_t n)
{
    int c = blob_class(n == 0 ? 1 : n);
    void *p = c >= 0 ? slab_get(&w->blob[c]) : malloc(n);

    if (p != NULL)
        w->bytes += blob_charge(n);
    return p;
}

static void blob_free(dp_win_t *w, const void *p, size_t n)
{
    int c = blob_class(n == 0 ? 1 : n);

    assert(p != NULL);
    if (c >= 0)
        slab_put(&w->blob[c], (void *)p);
    else
        free((void *)p);
    assert(w->bytes >= blob_charge(n));
    w->bytes -= blob_charge(n);
}

/* ---- plans ---- */

static void plan_blob(dp_win_t *w, plan_t *p, size_t n)
{
    int c = blob_class(n == 0 ? 1 : n);

    p->bytes += blob_charge(n);
    if (c >= 0) {
        p->nblob[c]++;
    } else {
        assert(p->nbig < DP_WIN_AGGS_MAX + 2);
        p->big_n[p->nbig++] = n;
    }
}

static void plan_release(plan_t *p)
{
    for (uint32_t i = p->bigpos; i < p->nbig; i++)
        free(p->big[i]);
    free(p->newtab);
    p->newtab = NULL;
    p->nbig = p->bigpos = 0;
}

/* Checks the budget and reserves everything; after 0, the add cannot fail. */
static int plan_reserve(dp_win_t *w, plan_t *p, bool new_key)
{
    size_t limit = w->cfg.state_limit_bytes;
    uint32_t i;

    if (new_key && (w->nkeys + 1) * 4 > w->tab_cap * 3) {
        p->newcap = w->tab_cap * 2;
        p->bytes += (p->newcap - w->tab_cap) * sizeof(ent_t);
    }
    if (limit != 0 && p->bytes > 0 && w->bytes + p->bytes > limit) {
        w->st.enobufs++;
        return p->bytes > limit ? -EMSGSIZE : -ENOBUFS;
    }
    if (p->newcap != 0) {
        p->newtab = calloc(p->newcap, sizeof(ent_t));
        if (p->newtab == NULL)
            goto nomem;
    }
    if (new_key && w->fire_cap < w->nkeys + 1) {
        size_t cap = w->fire_cap * 2;
        fire_t *f = realloc(w->fire, cap * sizeof(*f));
        if (f == NULL)
            goto nomem;
        w->fire = f;
        w->fire_cap = cap;
    }
    if (w->cfg.keep_records && w->rcap < w->nrecs_total + 1) {
        size_t cap = w->rcap ? w->rcap * 2 : 64;
        krec_t **rk = realloc(w->rk, cap * sizeof(*rk));
        if (rk == NULL)
            goto nomem;
        w->rk = rk;
        dp_win_rec_t *rv = realloc(w->rv, cap * sizeof(*rv));
        if (rv == NULL)
            goto nomem;
        w->rv = rv;
        w->rcap = cap;
    }
    if (slab_reserve(&w->key_slab, p->nkey) != 0 || slab_reserve(&w->slice_slab, p->nslice) != 0)
        goto nomem;
    for (i = 0; i < BLOB_CLASSES; i++) {
        if (slab_reserve(&w->blob[i], p->nblob[i]) != 0)
            goto nomem;
    }
    for (i = 0; i < p->nbig; i++) {
        p->big[i] = malloc(p->big_n[i]);
        if (p->big[i] == NULL) {
            p->nbig = i;
            goto nomem;
        }
    }
    return 0;
nomem:
    plan_release(p);
    return -ENOMEM;
}

/* Infallible after plan_reserve: consumes reserved blobs in planning order. */
static void *blob_take(dp_win_t *w, plan_t *p, size_t n)
{
    int c = blob_class(n == 0 ? 1 : n);
    void *o;

    if (c >= 0) {
        o = slab_get(&w->blob[c]);
    } else {
        assert(p->bigpos < p->nbig && p->big_n[p->bigpos] == n);
        o = p->big[p->bigpos++];
    }
    assert(o != NULL);
    w->bytes += blob_charge(n);
    return o;
}

/* ---- values and aggregations ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n, v;

    while (n >= 8) {
        memcpy(&v, p, 8);
        h = (h ^ mix64(v)) * 0x9e3779b97f4a7c15ULL;
        p += 8;
        n -= 8;
    }
    v = 0;
    if (n > 0)
        memcpy(&v, p, n);
    return mix64(h ^ mix64(v + n));
}

/* Keys: MISSING groups with NULL, -0.0 with 0.0, all NaNs together. */
static dp_val_t key_norm(const dp_val_t *k)
{
    dp_val_t v = *k;

    if (v.type == DP_VAL_MISSING)
        v = dp_val_null();
    else if (v.type == DP_VAL_DOUBLE && v.u.d == 0.0)
        v.u.d = 0.0;
    else if (v.type == DP_VAL_DOUBLE && isnan(v.u.d))
        v.u.d = NAN;
    else if (v.type == DP_VAL_BOOL)
        v.u.b = v.u.b ? true : false;
    return v;
}

static uint64_t key_hash(const dp_val_t *k)
{
    uint64_t bits = 0;

    switch (k->type) {
    case DP_VAL_STR:
        return hash_bytes(k->u.s, k->len);
    case DP_VAL_INT:
        bits = (uint64_t)k->u.i;
        break;
    case DP_VAL_DOUBLE:
        memcpy(&bits, &k->u.d, 8);
        break;
    case DP_VAL_BOOL:
        bits = k->u.b;
        break;
    default:
        break;
    }
    return mix64(bits ^ ((uint64_t)k->type << 56) ^ 0x2545f4914f6cdd1dULL);
}

static bool key_eq(const dp_val_t *a, const dp_val_t *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case DP_VAL_STR:
        return a->len == b->len && (a->len == 0 || memcmp(a->u.s, b->u.s, a->len) == 0);
    case DP_VAL_INT:
        return a->u.i == b->u.i;
    case DP_VAL_DOUBLE:
        return memcmp(&a->u.d, &b->u.d, 8) == 0;
    case DP_VAL_BOOL:
        return a->u.b == b->u.b;
    default:
        return true;
    }
}

static double num_d(const agg_t *a)
{
    return a->t == DP_VAL_INT ? (double)a->v.i : a->v.d;
}

/* Numbers before strings; numbers numerically, strings bytewise. */
static int val_cmp(const agg_t *a, const agg_t *b)
{
    bool as = a->t == DP_VAL_STR, bs = b->t == DP_VAL_STR;

    if (as != bs)
        return as ? 1 : -1;
    if (as) {
        uint32_t n = a->len < b->len ? a->len : b->len;
        int c = n > 0 ? memcmp(a->v.s, b->v.s, n) : 0;
        if (c != 0)
            return c < 0 ? -1 : 1;
        return a->len < b->len ? -1 : a->len > b->len;
    }
    if (a->t == DP_VAL_INT && b->t == DP_VAL_INT)
        return a->v.i < b->v.i ? -1 : a->v.i > b->v.i;
    double x = num_d(a), y = num_d(b);
    return x < y ? -1 : x > y;
}

/* Does candidate x replace the current value a (both present)? */
static bool agg_better(dp_win_fn_t fn, const agg_t *a, const agg_t *x)
{
    switch (fn) {
    case DP_WIN_MIN:
        return val_cmp(x, a) < 0;
    case DP_WIN_MAX:
        return val_cmp(x, a) > 0;
    case DP_WIN_FIRST:
        return x->ts < a->ts || (x->ts == a->ts && x->u.seq < a->u.seq);
    case DP_WIN_LAST:
        return x->ts > a->ts || (x->ts == a->ts && x->u.seq > a->u.seq);
    default:
        return false;
    }
}

static void num_add(agg_t *a, const agg_t *x)
{
    int64_t r;

    if (a->t == DP_VAL_INT && x->t == DP_VAL_INT && !__builtin_add_overflow(a->v.i, x->v.i, &r)) {
        a->v.i = r;
        return;
    }
    /* Any DOUBLE, or INT overflow: the sum continues as DOUBLE. */
    double d = num_d(a) + num_d(x);
    a->t = DP_VAL_DOUBLE;
    a->v.d = d;
}

static bool fn_keeps_value(dp_win_fn_t fn)
{
    return fn == DP_WIN_MIN || fn == DP_WIN_MAX || fn == DP_WIN_FIRST || fn == DP_WIN_LAST;
}

/* The record's input as a one-value agg (borrowed); T_NONE when skipped. */
static agg_t agg_single(dp_win_fn_t fn, const dp_val_t *v, int64_t ts, uint64_t seq)
{
    agg_t x = {.t = T_NONE};

    if (fn == DP_WIN_COUNT || v->type == DP_VAL_MISSING || v->type == DP_VAL_NULL)
        return x;
    if ((fn == DP_WIN_MIN || fn == DP_WIN_MAX) && v->type == DP_VAL_DOUBLE && isnan(v->u.d))
        return x;
    x.t = v->type;
    switch (v->type) {
    case DP_VAL_INT:
        x.v.i = v->u.i;
        break;
    case DP_VAL_DOUBLE:
        x.v.d = v->u.d;
        break;
    case DP_VAL_BOOL:
        x.v.i = v->u.b ? 1 : 0;
        break;
    case DP_VAL_STR:
        x.v.s = v->u.s;
        x.len = v->len;
        break;
    default:
        break;
    }
    x.ts = ts;
    if (fn == DP_WIN_AVG)
        x.u.n = 1;
    else
        x.u.seq = seq;
    return x;
}

/* Combines x into a view (no ownership). */
static void agg_comb(dp_win_fn_t fn, agg_t *a, const agg_t *x)
{
    if (x->t == T_NONE)
        return;
    if (a->t == T_NONE) {
        *a = *x;
        return;
    }
    if (fn == DP_WIN_SUM || fn == DP_WIN_AVG) {
        num_add(a, x);
        if (fn == DP_WIN_AVG)
            a->u.n += x->u.n;
    } else if (agg_better(fn, a, x)) {
        *a = *x;
    }
}

/* Would x be stored over a (a may be a view)? */
static bool agg_takes(dp_win_fn_t fn, const agg_t *a, const agg_t *x)
{
    return x->t != T_NONE && fn_keeps_value(fn) && (a->t == T_NONE || agg_better(fn, a, x));
}

/* Applies x to owned state a; a string x is copied into a reserved blob. */
static void agg_apply(dp_win_t *w, plan_t *p, dp_win_fn_t fn, agg_t *a, const agg_t *x)
{
    if (x->t == T_NONE)
        return;
    if (fn == DP_WIN_SUM || fn == DP_WIN_AVG) {
        agg_comb(fn, a, x);
        return;
    }
    if (!agg_takes(fn, a, x))
        return;
    if (a->t == DP_VAL_STR)
        blob_free(w, a->v.s, a->len);
    *a = *x;
    if (x->t == DP_VAL_STR) {
        char *b = blob_take(w, p, x->len);
        if (x->len > 0)
            memcpy(b, x->v.s, x->len);
        a->v.s = b;
    }
}

/* Moves src into dst (both owned); src is left empty. */
static void agg_merge_own(dp_win_t *w, dp_win_fn_t fn, agg_t *dst, agg_t *src)
{
    if (src->t == T_NONE)
        return;
    if (dst->t == T_NONE) {
        *dst = *src;
    } else if (fn == DP_WIN_SUM || fn == DP_WIN_AVG) {
        agg_comb(fn, dst, src);
    } else if (agg_better(fn, dst, src)) {
        if (dst->t == DP_VAL_STR)
            blob_free(w, dst->v.s, dst->len);
        *dst = *src;
    } else if (src->t == DP_VAL_STR) {
        blob_free(w, src->v.s, src->len);
    }
    src->t = T_NONE;
}

static dp_val_t agg_result(dp_win_fn_t fn, const agg_t *a, uint64_t count)
{
    if (fn == DP_WIN_COUNT)
        return dp_val_int((int64_t)count);
    if (a->t == T_NONE)
        return dp_val_null();
    if (fn == DP_WIN_AVG)
        return dp_val_double(num_d(a) / (double)a->u.n);
    switch (a->t) {
    case DP_VAL_INT:
        return dp_val_int(a->v.i);
    case DP_VAL_DOUBLE:
        return dp_val_double(a->v.d);
    case DP_VAL_BOOL:
        return dp_val_bool(a->v.i != 0);
    case DP_VAL_STR:
        return dp_val_str(a->v.s, a->len);
    default:
        return dp_val_null();
    }
}

/* ---- keys ---- */

static void tab_put(ent_t *tab, size_t cap, uint64_t h, wkey_t *k)
{
    size_t m = cap - 1, i = h & m;

    while (tab[i].k != NULL)
        i = (i + 1) & m;
    tab[i].h = h;
    tab[i].k = k;
}

static wkey_t *key_find(const dp_win_t *w, const dp_val_t *key, uint64_t h)
{
    size_t m = w->tab_cap - 1, i = h & m;

    for (;;) {
        const ent_t *e = &w->tab[i];
        if (e->k == NULL)
            return NULL;
        if (e->h == h && key_eq(&e->k->key, key))
            return e->k;
        i = (i + 1) & m;
    }
}

static void tab_replace(dp_win_t *w, ent_t *nt, size_t ncap)
{
    for (size_t i = 0; i < w->tab_cap; i++) {
        if (w->tab[i].k != NULL)
            tab_put(nt, ncap, w->tab[i].h, w->tab[i].k);
    }
    free(w->tab);
    w->bytes += (ncap - w->tab_cap) * sizeof(ent_t);
    w->tab = nt;
    w->tab_cap = ncap;
}

/* Links a new key (node and blob already obtained) everywhere. */
static void key_link(dp_win_t *w, wkey_t *k, uint64_t h)
{
    k->h = h;
    k->seq = w->key_seq++;
    k->prev = w->tail;
    k->next = NULL;
    if (w->tail != NULL)
        w->tail->next = k;
    else
        w->head = k;
    w->tail = k;
    tab_put(w->tab, w->tab_cap, h, k);
    w->nkeys++;
}

static void lru_unlink(dp_win_t *w, wkey_t *k)
{
    if (!k->in_lru)
        return;
    if (k->lprev != NULL)
        k->lprev->lnext = k->lnext;
    else
        w->lhead = k->lnext;
    if (k->lnext != NULL)
        k->lnext->lprev = k->lprev;
    else
        w->ltail = k->lprev;
    k->lnext = k->lprev = NULL;
    k->in_lru = 0;
}

static void lru_append(dp_win_t *w, wkey_t *k)
{
    assert(!k->in_lru);
    k->lprev = w->ltail;
    k->lnext = NULL;
    if (w->ltail != NULL)
        w->ltail->lnext = k;
    else
        w->lhead = k;
    w->ltail = k;
    k->in_lru = 1;
}

static void slice_free(dp_win_t *w, wkey_t *k, slice_t *s)
{
    for (uint32_t i = 0; i < w->cfg.naggs; i++) {
        if (s->aggs[i].t == DP_VAL_STR)
            blob_free(w, s->aggs[i].v.s, s->aggs[i].len);
    }
    krec_t *r = s->rhead;
    while (r != NULL) {
        krec_t *n = r->next;
        blob_free(w, r, r->bytes);
        w->nrecs_total--;
        r = n;
    }
    slab_put(&w->slice_slab, s);
    w->bytes -= w->slice_bytes;
    k->nslices--;
}

static void key_delete(dp_win_t *w, wkey_t *k)
{
    size_t m = w->tab_cap - 1, i = k->h & m, j;

    while (w->tab[i].k != k)
        i = (i + 1) & m;
    /* Backward-shift deletion keeps probe chains intact without tombstones. */
    j = i;
    for (;;) {
        j = (j + 1) & m;
        if (w->tab[j].k == NULL)
            break;
        size_t ideal = w->tab[j].h & m;
        bool between = i <= j ? (ideal > i && ideal <= j) : (ideal > i || ideal <= j);
        if (!between) {
            w->tab[i] = w->tab[j];
            i = j;
        }
    }
    w->tab[i].k = NULL;
    w->nkeys--;

    while (k->slices != NULL) {
        slice_t *s = k->slices;
        k->slices = s->next;
        slice_free(w, k, s);
    }
    lru_unlink(w, k);
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        w->head = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    else
        w->tail = k->prev;
    if (k->key.type == DP_VAL_STR)
        blob_free(w, k->key.u.s, k->key.len);
    slab_put(&w->key_slab, k);
    w->bytes -= w->key_bytes;
}

static void state_clear(dp_win_t *w, bool shrink)
{
    while (w->head != NULL)
        key_delete(w, w->head);
    if (shrink && w->tab_cap > TAB_MIN) {
        /* Back to the baseline footprint; keep the big table if calloc fails. */
        ent_t *t = calloc(TAB_MIN, sizeof(ent_t));
        if (t != NULL) {
            free(w->tab);
            w->bytes -= (w->tab_cap - TAB_MIN) * sizeof(ent_t);
            w->tab = t;
            w->tab_cap = TAB_MIN;
        }
    }
    w->key_seq = w->rec_seq = 0;
    w->wm = INT64_MIN;
    w->now = INT64_MIN;
    w->last_early = INT64_MIN;
    w->next_due = INT64_MAX;
    memset(&w->st, 0, sizeof(w->st));
}

/* ---- emission ---- */

static int cmp_krec(const void *a, const void *b)
{
    const krec_t *x = *(krec_t *const *)a, *y = *(krec_t *const *)b;

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Folds the slices of k that form [start, end) and calls the callback. */
static void emit_window(dp_win_t *w, wkey_t *k, int64_t start, int64_t end, uint32_t flag)
{
    uint32_t naggs = w->cfg.naggs, nr = 0, parts = 0;
    uint64_t count = 0;
    bool session = w->cfg.kind == DP_WIN_SESSION;

    for (uint32_t i = 0; i < naggs; i++)
        w->racc[i].t = T_NONE;
    for (slice_t *s = k->slices; s != NULL; s = s->next) {
        if (session ? s->start != start : (s->start < start || s->start >= end))
            continue;
        count += s->count;
        parts++;
        for (uint32_t i = 0; i < naggs; i++)
            agg_comb(w->cfg.aggs[i], &w->racc[i], &s->aggs[i]);
        for (krec_t *r = s->rhead; r != NULL; r = r->next) {
            assert(nr < w->rcap);
            w->rk[nr++] = r;
        }
        if (session)
            break;
    }
    if (count == 0)
        return;
    if (parts > 1 && nr > 1)
        qsort(w->rk, nr, sizeof(*w->rk), cmp_krec);
    for (uint32_t i = 0; i < nr; i++) {
        const krec_t *r = w->rk[i];
        w->rv[i] = (dp_win_rec_t){.payload = r->payload,
                                  .hdrs = r->hdrs,
                                  .ts_ms = r->ts,
                                  .payload_len = r->payload_len,
                                  .nhdrs = r->nhdrs};
    }
    for (uint32_t i = 0; i < naggs; i++)
        w->rvals[i] = agg_result(w->cfg.aggs[i], &w->racc[i], count);

    dp_win_result_t res = {.key = k->key,
                           .start_ms = start,
                           .end_ms = end,
                           .aggs = w->rvals,
                           .naggs = naggs,
                           .flags = flag,
                           .count = count,
                           .recs = nr > 0 ? w->rv : NULL,
                           .nrecs = nr};
    switch (flag) {
    case DP_WIN_F_FINAL:
        w->st.fired++;
        break;
    case DP_WIN_F_EARLY:
        w->st.early++;
        break;
    case DP_WIN_F_PARTIAL:
        w->st.partial++;
        break;
    default:
        w->st.upserts++;
        break;
    }
    w->in_emit = true;
    w->cfg.emit(w->cfg.ctx, &res);
    w->in_emit = false;
}

typedef void (*visit_fn)(dp_win_t *w, wkey_t *k, int64_t start, int64_t end, void *arg);

/* Calls f for every window of k that holds data and ends in (lo, hi]. */
static void key_windows(dp_win_t *w, wkey_t *k, int64_t lo, int64_t hi, visit_fn f, void *arg)
{
    int64_t size = w->cfg.size_ms, slide = w->slide, next_hi = INT64_MAX;
    int64_t wlo = INT64_MIN, whi;

    if (w->cfg.kind == DP_WIN_SESSION) {
        for (slice_t *s = k->slices; s != NULL; s = s->next) {
            if (s->end > lo && s->end <= hi)
                f(w, k, s->start, s->end, arg);
        }
        return;
    }
    if (lo != INT64_MIN)
        wlo = floor_div(lo - size, slide) * slide + slide;
    whi = hi == INT64_MAX ? INT64_MAX : floor_div(hi - size, slide) * slide;
    /* Slices are newest first; each window is visited once, newest first. */
    for (slice_t *s = k->slices; s != NULL; s = s->next) {
        int64_t a = first_start(w, s->start), b = last_start(w, s->start);
        if (b > next_hi)
            b = next_hi;
        next_hi = a - slide;
        if (a < wlo)
            a = wlo;
        if (b > whi)
            b = whi;
        for (int64_t st = b; st >= a; st -= slide)
            f(w, k, st, st + size, arg);
    }
}

static bool window_dirty(const dp_win_t *w, const wkey_t *k, int64_t start, int64_t end)
{
    for (const slice_t *s = k->slices; s != NULL; s = s->next) {
        bool in =
            w->cfg.kind == DP_WIN_SESSION ? s->start == start : s->start >= start && s->start < end;
        if (in && s->dirty)
            return true;
    }
    return false;
}

typedef struct collect_arg {
    bool dirty_only;
    bool find_min; /* only track the smallest end */
    bool found;
    int64_t min_end;
} collect_arg_t;

static void collect_visit(dp_win_t *w, wkey_t *k, int64_t start, int64_t end, void *arg)
{
    collect_arg_t *c = arg;

    if (c->dirty_only && !window_dirty(w, k, start, end))
        return;
    if (c->find_min) {
        if (!c->found || end < c->min_end)
            c->min_end = end;
        c->found = true;
        return;
    }
    if (w->fire_n == w->fire_cap) {
        bool grow = !w->fire_overflow && w->fire_cap * 2 <= w->fire_max;
        fire_t *f = grow ? realloc(w->fire, w->fire_cap * 2 * sizeof(*f)) : NULL;
        if (f == NULL) {
            w->fire_overflow = true;
            return;
        }
        w->fire = f;
        w->fire_cap *= 2;
    }
    w->fire[w->fire_n++] = (fire_t){.end = end, .start = start, .kseq = k->seq, .k = k};
}

static int cmp_fire(const void *a, const void *b)
{
    const fire_t *x = a, *y = b;

    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->kseq < y->kseq ? -1 : x->kseq > y->kseq;
}

static void collect(dp_win_t *w, wkey_t *one, int64_t lo, int64_t hi, collect_arg_t *c)
{
    if (one != NULL) {
        key_windows(w, one, lo, hi, collect_visit, c);
        return;
    }
    for (wkey_t *k = w->head; k != NULL; k = k->next)
        key_windows(w, k, lo, hi, collect_visit, c);
}

/* Emits every window (of one key, or all) ending in (lo, hi], ordered by
 * end then key insertion. If the list cannot grow, it goes one end at a
 * time: at most one window per key ends at a given time, and the list
 * always has room for one entry per key. */
static void emit_range(dp_win_t *w, wkey_t *one, int64_t lo, int64_t hi, uint32_t flag,
                       bool dirty_only)
{
    collect_arg_t c = {.dirty_only = dirty_only};

    w->fire_n = 0;
    w->fire_overflow = false;
    collect(w, one, lo, hi, &c);
    if (!w->fire_overflow) {
        qsort(w->fire, w->fire_n, sizeof(*w->fire), cmp_fire);
        for (size_t i = 0; i < w->fire_n; i++)
            emit_window(w, w->fire[i].k, w->fire[i].start, w->fire[i].end, flag);
        return;
    }
    w->fire_rounds++;
    for (int64_t cur = lo;;) {
        collect_arg_t m = {.dirty_only = dirty_only, .find_min = true};
        collect(w, one, cur, hi, &m);
        if (!m.found)
            break;
        collect_arg_t e = {.dirty_only = dirty_only};
        w->fire_n = 0;
        collect(w, one, m.min_end - 1, m.min_end, &e);
        qsort(w->fire, w->fire_n, sizeof(*w->fire), cmp_fire);
        for (size_t i = 0; i < w->fire_n; i++)
            emit_window(w, w->fire[i].k, w->fire[i].start, w->fire[i].end, flag);
        cur = m.min_end;
    }
}

/* ---- public ---- */

static bool dur_ok(int64_t v, bool zero_ok)
{
    return (zero_ok ? v >= 0 : v > 0) && v <= DP_WIN_DURATION_MAX;
}

int dp_win_new(const dp_win_cfg_t *cfg, dp_win_t **out)
{
    dp_win_t *w;
    uint32_t i;

    assert(cfg != NULL && out != NULL);
    *out = NULL;
    if (cfg->emit == NULL || cfg->naggs > DP_WIN_AGGS_MAX || (unsigned)cfg->time > 1 ||
        (unsigned)cfg->late_mode > DP_WIN_LATE_SIDE_OUTPUT ||
        !dur_ok(cfg->allowed_lateness_ms, true) || !dur_ok(cfg->early_firing_ms, true) ||
        !dur_ok(cfg->idle_timeout_ms, true))
        return -EINVAL;
    for (i = 0; i < cfg->naggs; i++) {
        if ((unsigned)cfg->aggs[i] > DP_WIN_LAST)
            return -EINVAL;
    }
    switch (cfg->kind) {
    case DP_WIN_TUMBLING:
        if (!dur_ok(cfg->size_ms, false))
            return -EINVAL;
        break;
    case DP_WIN_HOPPING:
        if (!dur_ok(cfg->size_ms, false) || !dur_ok(cfg->slide_ms, false) ||
            cfg->slide_ms > cfg->size_ms)
            return -EINVAL;
        break;
    case DP_WIN_SESSION:
        if (!dur_ok(cfg->gap_ms, false))
            return -EINVAL;
        break;
    default:
        return -EINVAL;
    }

    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    w->cfg = *cfg;
    switch (cfg->kind) {
    case DP_WIN_TUMBLING:
        w->g = w->slide = cfg->size_ms;
        break;
    case DP_WIN_HOPPING:
        w->slide = cfg->slide_ms;
        w->g = gcd64(cfg->size_ms, cfg->slide_ms);
        break;
    default:
        w->g = 0;
        w->slide = 1;
        break;
    }
    w->slice_bytes = (sizeof(slice_t) + cfg->naggs * sizeof(agg_t) + 15) & ~(size_t)15;
    w->key_bytes = ((sizeof(wkey_t) + 15) & ~(size_t)15) + sizeof(fire_t);
    slab_init(&w->key_slab, sizeof(wkey_t));
    slab_init(&w->slice_slab, w->slice_bytes);
    for (i = 0; i < BLOB_CLASSES; i++)
        slab_init(&w->blob[i], (size_t)16 << i);
    w->tab_cap = TAB_MIN;
    w->tab = calloc(w->tab_cap, sizeof(ent_t));
    w->fire_cap = FIRE_MIN;
    w->fire_max = SIZE_MAX / sizeof(fire_t);
    w->fire = malloc(w->fire_cap * sizeof(fire_t));
    w->racc = calloc(cfg->naggs + 1, sizeof(agg_t));
    w->rvals = calloc(cfg->naggs + 1, sizeof(dp_val_t));
    if (w->tab == NULL || w->fire == NULL || w->racc == NULL || w->rvals == NULL) {
        dp_win_free(w);
        return -ENOMEM;
    }
    w->bytes = w->tab_cap * sizeof(ent_t);
    state_clear(w, false);
    *out = w;
    return 0;
}

void dp_win_free(dp_win_t *w)
{
    if (w == NULL)
        return;
    assert(!w->in_emit);
    if (w->tab != NULL)
        state_clear(w, false);
    slab_dispose(&w->key_slab);
    slab_dispose(&w->slice_slab);
    for (int i = 0; i < BLOB_CLASSES; i++)
        slab_dispose(&w->blob[i]);
    free(w->tab);
    free(w->fire);
    free(w->racc);
    free(w->rvals);
    free(w->rk);
    free(w->rv);
    free(w);
}

static int check_inputs(const dp_win_t *w, const dp_val_t *key, int64_t ts, const dp_val_t *in)
{
    if (key->type == DP_VAL_ERR || key->type > DP_VAL_ERR)
        return -EINVAL;
    if (ts <= -DP_WIN_TS_LIMIT || ts >= DP_WIN_TS_LIMIT)
        return -EINVAL;
    for (uint32_t i = 0; i < w->cfg.naggs; i++) {
        dp_win_fn_t fn = w->cfg.aggs[i];
        uint8_t t = in[i].type;
        if (fn == DP_WIN_COUNT || t == DP_VAL_MISSING || t == DP_VAL_NULL)
            continue;
        if (t >= DP_VAL_ERR)
            return -EINVAL;
        if ((fn == DP_WIN_SUM || fn == DP_WIN_AVG) && t != DP_VAL_INT && t != DP_VAL_DOUBLE)
            return -EINVAL;
        if ((fn == DP_WIN_MIN || fn == DP_WIN_MAX) && t == DP_VAL_BOOL)
            return -EINVAL;
    }
    return 0;
}

static size_t krec_size(const dp_row_t *rec)
{
    size_t n = sizeof(krec_t) + (size_t)rec->nhdrs * sizeof(dp_hdr_t) + rec->payload_len;

    for (uint32_t i = 0; i < rec->nhdrs; i++)
        n += (size_t)rec->hdrs[i].name_len + (rec->hdrs[i].val ? rec->hdrs[i].val_len : 0);
    return n;
}

/* Copies a record into a blob of `size` bytes. */
static krec_t *krec_build(void *blob, size_t size, uint64_t seq, int64_t ts, const char *payload,
                          uint32_t payload_len, const dp_hdr_t *hdrs, uint32_t nhdrs)
{
    krec_t *r = blob;
    char *p = (char *)(r->hdrs + nhdrs);

    *r = (krec_t){
        .seq = seq, .ts = ts, .bytes = (uint32_t)size, .payload_len = payload_len, .nhdrs = nhdrs};
    if (payload != NULL) {
        if (payload_len > 0)
            memcpy(p, payload, payload_len);
        r->payload = p;
        p += payload_len;
    }
    for (uint32_t i = 0; i < nhdrs; i++) {
        dp_hdr_t *h = &r->hdrs[i];
        *h = (dp_hdr_t){.name = p, .name_len = hdrs[i].name_len};
        if (hdrs[i].name_len > 0)
            memcpy(p, hdrs[i].name, hdrs[i].name_len);
        p += hdrs[i].name_len;
        if (hdrs[i].val != NULL) {
            if (hdrs[i].val_len > 0)
                memcpy(p, hdrs[i].val, hdrs[i].val_len);
            h->val = p;
            h->val_len = hdrs[i].val_len;
            p += hdrs[i].val_len;
        }
    }
    assert((size_t)(p - (char *)blob) == size);
    return r;
}

static void slice_append_rec(dp_win_t *w, slice_t *s, krec_t *r)
{
    r->next = NULL;
    if (s->rtail != NULL)
        s->rtail->next = r;
    else
        s->rhead = r;
    s->rtail = r;
    s->nrecs++;
    w->nrecs_total++;
}

static int late(dp_win_t *w)
{
    if (w->cfg.late_mode == DP_WIN_LATE_SIDE_OUTPUT) {
        w->st.late_side++;
        return DP_WIN_LATE_SIDE;
    }
    w->st.late_dropped++;
    return DP_WIN_LATE_DROPPED;
}

/* Plans a new key's node and string copy. */
static void plan_key(dp_win_t *w, plan_t *p, const dp_val_t *key)
{
    p->nkey++;
    p->bytes += w->key_bytes;
    if (key->type == DP_VAL_STR)
        plan_blob(w, p, key->len);
}

static wkey_t *key_create(dp_win_t *w, plan_t *p, const dp_val_t *key, uint64_t h)
{
    wkey_t *k = slab_get(&w->key_slab);

    assert(k != NULL);
    memset(k, 0, sizeof(*k));
    k->key = *key;
    if (key->type == DP_VAL_STR) {
        char *b = blob_take(w, p, key->len);
        if (key->len > 0)
            memcpy(b, key->u.s, key->len);
        k->key.u.s = b;
    }
    w->bytes += w->key_bytes;
    if (p->newtab != NULL) {
        tab_replace(w, p->newtab, p->newcap);
        p->newtab = NULL;
    }
    key_link(w, k, h);
    return k;
}

static slice_t *slice_new(dp_win_t *w, wkey_t *k, int64_t start, int64_t end)
{
    slice_t *s = slab_get(&w->slice_slab);

    assert(s != NULL);
    memset(s, 0, w->slice_bytes);
    s->start = start;
    s->end = end;
    w->bytes += w->slice_bytes;
    k->nslices++;
    return s;
}

/* Shared tail of both add paths: aggregates, record copy, bookkeeping. */
static void apply_record(dp_win_t *w, plan_t *p, wkey_t *k, slice_t *s, const agg_t *xs,
                         const dp_row_t *rec, size_t rsize, int64_t ts, int64_t now)
{
    for (uint32_t i = 0; i < w->cfg.naggs; i++)
        agg_apply(w, p, w->cfg.aggs[i], &s->aggs[i], &xs[i]);
    if (w->cfg.keep_records) {
        void *b = blob_take(w, p, rsize);
        krec_t *r = krec_build(b, rsize, w->rec_seq, ts, rec->payload, rec->payload_len, rec->hdrs,
                               rec->nhdrs);
        slice_append_rec(w, s, r);
    }
    s->count++;
    s->dirty = 1;
    w->rec_seq++;
    w->st.added++;
    k->last_input_ms = now;
    if (w->cfg.idle_timeout_ms > 0) {
        lru_unlink(w, k);
        lru_append(w, k);
    }
    int64_t due = slice_due(w, s);
    if (due < w->next_due)
        w->next_due = due;
}

static int add_pane(dp_win_t *w, wkey_t *k, const dp_val_t *key, uint64_t h, int64_t ts,
                    const dp_val_t *in, const dp_row_t *rec, int64_t now)
{
    int64_t s0 = floor_div(ts, w->g) * w->g, size = w->cfg.size_ms;
    int64_t L = w->cfg.allowed_lateness_ms, wm = w->wm;
    slice_t *s = NULL, **pp = NULL;
    agg_t xs[DP_WIN_AGGS_MAX];
    plan_t p = {0};
    size_t rsize = 0;
    int rc;

    if (wm != INT64_MIN && last_start(w, s0) + size + L <= wm)
        return late(w);
    if (k != NULL) {
        pp = &k->slices;
        while (*pp != NULL && (*pp)->start > s0)
            pp = &(*pp)->next;
        if (*pp != NULL && (*pp)->start == s0)
            s = *pp;
    } else {
        plan_key(w, &p, key);
    }
    if (s == NULL) {
        p.nslice++;
        p.bytes += w->slice_bytes;
    }
    for (uint32_t i = 0; i < w->cfg.naggs; i++) {
        static const agg_t none = {.t = T_NONE};
        xs[i] = agg_single(w->cfg.aggs[i], &in[i], ts, w->rec_seq);
        if (xs[i].t == DP_VAL_STR && agg_takes(w->cfg.aggs[i], s ? &s->aggs[i] : &none, &xs[i]))
            plan_blob(w, &p, xs[i].len);
    }
    if (w->cfg.keep_records) {
        rsize = krec_size(rec);
        if (rsize > UINT32_MAX)
            return -EMSGSIZE;
        plan_blob(w, &p, rsize);
    }
    rc = plan_reserve(w, &p, k == NULL);
    if (rc != 0)
        return rc;

    if (k == NULL) {
        k = key_create(w, &p, key, h);
        pp = &k->slices;
    }
    if (s == NULL) {
        s = slice_new(w, k, s0, s0 + w->g);
        s->next = *pp;
        *pp = s;
    }
    apply_record(w, &p, k, s, xs, rec, rsize, ts, now);
    assert(p.bigpos == p.nbig);

    /* Windows that already fired but are kept for lateness re-fire now. */
    int64_t a = first_start(w, s0);
    if (wm == INT64_MIN || a + size > wm)
        return DP_WIN_OK;
    uint32_t n = 0;
    for (int64_t st = a; st <= last_start(w, s0) && st + size <= wm; st += w->slide) {
        if (st + size + L > wm) {
            emit_window(w, k, st, st + size, DP_WIN_F_UPSERT);
            n++;
        }
    }
    if (n == 0)
        return DP_WIN_OK; /* only open windows took it */
    w->st.late_upserted++;
    return DP_WIN_LATE_UPSERTED;
}

static int add_session(dp_win_t *w, wkey_t *k, const dp_val_t *key, uint64_t h, int64_t ts,
                       const dp_val_t *in, const dp_row_t *rec, int64_t now)
{
    int64_t ns = ts, ne = ts + w->cfg.gap_ms, ms = ns, me = ne;
    int64_t L = w->cfg.allowed_lateness_ms, wm = w->wm;
    slice_t **pp = NULL, *x;
    agg_t xs[DP_WIN_AGGS_MAX];
    plan_t p = {0};
    uint32_t m = 0;
    size_t rsize = 0;
    int rc;

    if (k != NULL) {
        /* Sessions are disjoint and newest first: the ones this record
         * touches form one run. */
        pp = &k->slices;
        while (*pp != NULL && (*pp)->start > ne)
            pp = &(*pp)->next;
        for (x = *pp; x != NULL && x->end >= ns; x = x->next) {
            m++;
            if (x->start < ms)
                ms = x->start;
            if (x->end > me)
                me = x->end;
        }
    }
    if (wm != INT64_MIN && me + L <= wm)
        return late(w);
    if (k == NULL)
        plan_key(w, &p, key);
    if (m == 0) {
        p.nslice++;
        p.bytes += w->slice_bytes;
    }
    for (uint32_t i = 0; i < w->cfg.naggs; i++) {
        agg_t view = {.t = T_NONE};
        xs[i] = agg_single(w->cfg.aggs[i], &in[i], ts, w->rec_seq);
        if (xs[i].t != DP_VAL_STR)
            continue;
        x = m > 0 ? *pp : NULL;
        for (uint32_t j = 0; j < m; j++, x = x->next)
            agg_comb(w->cfg.aggs[i], &view, &x->aggs[i]);
        if (agg_takes(w->cfg.aggs[i], &view, &xs[i]))
            plan_blob(w, &p, xs[i].len);
    }
    if (w->cfg.keep_records) {
        rsize = krec_size(rec);
        if (rsize > UINT32_MAX)
            return -EMSGSIZE;
        plan_blob(w, &p, rsize);
    }
    rc = plan_reserve(w, &p, k == NULL);
    if (rc != 0)
        return rc;

    slice_t *s;
    if (k == NULL) {
        k = key_create(w, &p, key, h);
        pp = &k->slices;
    }
    if (m == 0) {
        s = slice_new(w, k, ns, ne);
        s->next = *pp;
        *pp = s;
    } else {
        s = *pp;
        /* Merge the bridged sessions into the newest one, in list order. */
        while (--m > 0) {
            x = s->next;
            for (uint32_t i = 0; i < w->cfg.naggs; i++)
                agg_merge_own(w, w->cfg.aggs[i], &s->aggs[i], &x->aggs[i]);
            krec_t *a = s->rhead, *b = x->rhead, *head = NULL, **tail = &head, *last = NULL;
            while (a != NULL || b != NULL) {
                krec_t **pick = (b == NULL || (a != NULL && a->seq < b->seq)) ? &a : &b;
                last = *pick;
                *tail = last;
                tail = &last->next;
                *pick = last->next;
            }
            s->rhead = head;
            s->rtail = last;
            s->nrecs += x->nrecs;
            s->count += x->count;
            s->dirty |= x->dirty;
            s->next = x->next;
            x->rhead = NULL;
            x->nrecs = 0;
            slice_free(w, k, x);
        }
        s->start = ms;
        s->end = me;
    }
    if (ns < s->start)
        s->start = ns;
    if (ne > s->end)
        s->end = ne;
    apply_record(w, &p, k, s, xs, rec, rsize, ts, now);
    assert(p.bigpos == p.nbig);

    if (wm == INT64_MIN || s->end > wm)
        return DP_WIN_OK;
    emit_window(w, k, s->start, s->end, DP_WIN_F_UPSERT);
    w->st.late_upserted++;
    return DP_WIN_LATE_UPSERTED;
}

int dp_win_add(dp_win_t *w, const dp_val_t *key, int64_t ts_ms, const dp_val_t *agg_in,
               const dp_row_t *rec, int64_t now_ms)
{
    dp_val_t kv;
    uint64_t h;
    int rc;

    assert(w != NULL && key != NULL && !w->in_emit);
    assert(w->cfg.naggs == 0 || agg_in != NULL);
    assert(!w->cfg.keep_records || rec != NULL);
    rc = check_inputs(w, key, ts_ms, agg_in);
    if (rc != 0)
        return rc;
    if (now_ms > w->now)
        w->now = now_ms;
    kv = key_norm(key);
    h = key_hash(&kv);
    wkey_t *k = key_find(w, &kv, h);
    if (w->cfg.kind == DP_WIN_SESSION)
        return add_session(w, k, &kv, h, ts_ms, agg_in, rec, w->now);
    return add_pane(w, k, &kv, h, ts_ms, agg_in, rec, w->now);
}

/* Frees what the watermark left behind and recomputes next_due exactly. */
static void purge(dp_win_t *w)
{
    int64_t L = w->cfg.allowed_lateness_ms, due = INT64_MAX;
    bool session = w->cfg.kind == DP_WIN_SESSION;
    wkey_t *k = w->head;

    while (k != NULL) {
        wkey_t *next = k->next;
        slice_t **pp = &k->slices;
        while (*pp != NULL) {
            slice_t *s = *pp;
            int64_t last_end = session ? s->end : last_start(w, s->start) + w->cfg.size_ms;
            if (last_end + L <= w->wm) {
                *pp = s->next;
                slice_free(w, k, s);
                continue;
            }
            int64_t d = slice_due(w, s);
            if (d < due)
                due = d;
            pp = &s->next;
        }
        if (k->slices == NULL)
            key_delete(w, k);
        k = next;
    }
    w->next_due = due;
}

/* Idle release: the key's open windows go out PARTIAL and their state is
 * dropped; fired windows kept for lateness stay until purged. */
static void release_idle(dp_win_t *w)
{
    int64_t cut = sat_sub(w->now, w->cfg.idle_timeout_ms);

    while (w->lhead != NULL && w->lhead->last_input_ms <= cut) {
        wkey_t *k = w->lhead;
        lru_unlink(w, k);
        emit_range(w, k, w->wm, INT64_MAX, DP_WIN_F_PARTIAL, false);
        slice_t **pp = &k->slices;
        while (*pp != NULL) {
            slice_t *s = *pp;
            int64_t last_end =
                w->cfg.kind == DP_WIN_SESSION ? s->end : last_start(w, s->start) + w->cfg.size_ms;
            if (w->wm == INT64_MIN || last_end > w->wm) {
                *pp = s->next;
                slice_free(w, k, s);
            } else {
                pp = &s->next;
            }
        }
        if (k->slices == NULL)
            key_delete(w, k);
    }
}

void dp_win_advance(dp_win_t *w, int64_t watermark_ms, int64_t now_ms)
{
    assert(w != NULL && !w->in_emit);
    if (now_ms > w->now)
        w->now = now_ms;
    /* Below every record time nothing fires; clamping keeps window
     * arithmetic in range. */
    if (watermark_ms < -DP_WIN_TS_LIMIT)
        watermark_ms = -DP_WIN_TS_LIMIT;
    if (watermark_ms > w->wm) {
        int64_t old = w->wm;
        w->wm = watermark_ms;
        if (watermark_ms >= w->next_due) {
            emit_range(w, NULL, old, watermark_ms, DP_WIN_F_FINAL, false);
            purge(w);
        }
    }
    if (w->cfg.idle_timeout_ms > 0)
        release_idle(w);
    if (w->cfg.early_firing_ms > 0) {
        if (w->last_early == INT64_MIN) {
            w->last_early = w->now;
        } else if (w->now >= sat_add(w->last_early, w->cfg.early_firing_ms)) {
            emit_range(w, NULL, w->wm, INT64_MAX, DP_WIN_F_EARLY, true);
            for (wkey_t *k = w->head; k != NULL; k = k->next) {
                for (slice_t *s = k->slices; s != NULL; s = s->next)
                    s->dirty = 0;
            }
            w->last_early = w->now;
        }
    }
}

size_t dp_win_state_bytes(const dp_win_t *w)
{
    return w->bytes;
}

size_t dp_win_keys(const dp_win_t *w)
{
    return w->nkeys;
}

int64_t dp_win_watermark(const dp_win_t *w)
{
    return w->wm;
}

const dp_win_stats_t *dp_win_stats(const dp_win_t *w)
{
    return &w->st;
}

/* ---- checkpoint ---- */

static void put_shape(const dp_win_t *w, dp_ser_w_t *o)
{
    dp_ser_u8(o, (uint8_t)w->cfg.kind);
    dp_ser_u8(o, (uint8_t)w->cfg.time);
    dp_ser_u8(o, w->cfg.keep_records ? 1 : 0);
    dp_ser_i64(o, w->cfg.kind == DP_WIN_SESSION ? 0 : w->cfg.size_ms);
    dp_ser_i64(o, w->cfg.kind == DP_WIN_HOPPING ? w->cfg.slide_ms : 0);
    dp_ser_i64(o, w->cfg.kind == DP_WIN_SESSION ? w->cfg.gap_ms : 0);
    dp_ser_u32(o, w->cfg.naggs);
    for (uint32_t i = 0; i < w->cfg.naggs; i++)
        dp_ser_u8(o, (uint8_t)w->cfg.aggs[i]);
}

static void put_agg(dp_ser_w_t *o, const agg_t *a)
{
    dp_ser_u8(o, a->t);
    switch (a->t) {
    case DP_VAL_INT:
    case DP_VAL_BOOL:
        dp_ser_i64(o, a->v.i);
        break;
    case DP_VAL_DOUBLE:
        dp_ser_f64(o, a->v.d);
        break;
    case DP_VAL_STR:
        dp_ser_bytes(o, a->v.s, a->len);
        break;
    default:
        break;
    }
    dp_ser_i64(o, a->ts);
    dp_ser_u64(o, a->u.seq);
}

int dp_win_save(const dp_win_t *w, dp_ser_w_t *o)
{
    const uint64_t *st = (const uint64_t *)&w->st;

    assert(w != NULL && o != NULL && !w->in_emit);
    dp_ser_u32(o, WIN_MAGIC);
    dp_ser_u32(o, WIN_VERSION);
    put_shape(w, o);
    dp_ser_i64(o, w->wm);
    dp_ser_i64(o, w->now);
    dp_ser_i64(o, w->last_early);
    dp_ser_u64(o, w->rec_seq);
    dp_ser_u32(o, (uint32_t)(sizeof(w->st) / 8));
    for (size_t i = 0; i < sizeof(w->st) / 8; i++)
        dp_ser_u64(o, st[i]);
    dp_ser_u32(o, (uint32_t)w->nkeys);
    for (const wkey_t *k = w->head; k != NULL; k = k->next) {
        dp_ser_u64(o, k->seq);
        dp_ser_val(o, &k->key);
        dp_ser_i64(o, k->last_input_ms);
        dp_ser_u32(o, k->nslices);
        for (const slice_t *s = k->slices; s != NULL; s = s->next) {
            dp_ser_i64(o, s->start);
            dp_ser_i64(o, s->end);
            dp_ser_u64(o, s->count);
            dp_ser_u8(o, s->dirty);
            for (uint32_t i = 0; i < w->cfg.naggs; i++)
                put_agg(o, &s->aggs[i]);
            if (!w->cfg.keep_records)
                continue;
            dp_ser_u32(o, s->nrecs);
            for (const krec_t *r = s->rhead; r != NULL; r = r->next) {
                dp_ser_u64(o, r->seq);
                dp_ser_i64(o, r->ts);
                dp_ser_u8(o, r->payload != NULL);
                dp_ser_bytes(o, r->payload, r->payload_len);
                dp_ser_u32(o, r->nhdrs);
                for (uint32_t i = 0; i < r->nhdrs; i++) {
                    dp_ser_bytes(o, r->hdrs[i].name, r->hdrs[i].name_len);
                    dp_ser_u8(o, r->hdrs[i].val != NULL);
                    dp_ser_bytes(o, r->hdrs[i].val, r->hdrs[i].val_len);
                }
            }
        }
    }
    /* Idle order, as key sequence numbers. */
    uint32_t nl = 0;
    for (const wkey_t *k = w->lhead; k != NULL; k = k->lnext)
        nl++;
    dp_ser_u32(o, nl);
    for (const wkey_t *k = w->lhead; k != NULL; k = k->lnext)
        dp_ser_u64(o, k->seq);
    dp_ser_u32(o, WIN_END_MAGIC);
    return o->err;
}

static bool agg_type_ok(dp_win_fn_t fn, uint8_t t)
{
    if (t == T_NONE)
        return true;
    switch (fn) {
    case DP_WIN_COUNT:
        return false;
    case DP_WIN_SUM:
    case DP_WIN_AVG:
        return t == DP_VAL_INT || t == DP_VAL_DOUBLE;
    case DP_WIN_MIN:
    case DP_WIN_MAX:
        return t == DP_VAL_INT || t == DP_VAL_DOUBLE || t == DP_VAL_STR;
    default:
        return t == DP_VAL_INT || t == DP_VAL_DOUBLE || t == DP_VAL_STR || t == DP_VAL_BOOL;
    }
}

static int load_agg(dp_win_t *w, dp_ser_r_t *in, dp_win_fn_t fn, agg_t *a)
{
    const uint8_t *p;
    uint8_t t = dp_ser_ru8(in);

    /* a->t is set last: slice_free must never see a STR without its blob. */
    *a = (agg_t){.t = T_NONE};
    if (in->err != 0 || !agg_type_ok(fn, t))
        return -EBADMSG;
    switch (t) {
    case DP_VAL_INT:
        a->v.i = dp_ser_ri64(in);
        break;
    case DP_VAL_BOOL:
        a->v.i = dp_ser_ri64(in);
        if (a->v.i != 0 && a->v.i != 1)
            return -EBADMSG;
        break;
    case DP_VAL_DOUBLE:
        a->v.d = dp_ser_rf64(in);
        break;
    case DP_VAL_STR:
        p = dp_ser_rbytes(in, &a->len);
        if (p == NULL)
            return -EBADMSG;
        char *b = blob_alloc(w, a->len);
        if (b == NULL)
            return -ENOMEM;
        if (a->len > 0)
            memcpy(b, p, a->len);
        a->v.s = b;
        break;
    default:
        break;
    }
    a->t = t;
    a->ts = dp_ser_ri64(in);
    a->u.seq = dp_ser_ru64(in);
    if (in->err != 0)
        return -EBADMSG;
    if (fn == DP_WIN_AVG && a->t != T_NONE && a->u.n == 0)
        return -EBADMSG;
    return 0;
}

static int load_recs(dp_win_t *w, dp_ser_r_t *in, slice_t *s)
{
    uint32_t n = dp_ser_ru32(in);

    if (in->err != 0 || n != s->count)
        return -EBADMSG;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t seq = dp_ser_ru64(in);
        int64_t ts = dp_ser_ri64(in);
        uint8_t has_payload = dp_ser_ru8(in);
        uint32_t plen, nh;
        const uint8_t *pl = dp_ser_rbytes(in, &plen);
        nh = dp_ser_ru32(in);
        /* Each header takes at least 9 bytes: bound nh before trusting it. */
        if (in->err != 0 || has_payload > 1 || (!has_payload && plen != 0) ||
            (uint64_t)nh * 9 > in->len - in->off || (s->rtail != NULL && seq <= s->rtail->seq) ||
            seq >= w->rec_seq)
            return -EBADMSG;
        size_t hoff = in->off;
        size_t size = sizeof(krec_t) + (size_t)nh * sizeof(dp_hdr_t) + (has_payload ? plen : 0);
        for (uint32_t j = 0; j < nh; j++) {
            uint32_t a, b;
            dp_ser_rbytes(in, &a);
            uint8_t hv = dp_ser_ru8(in);
            dp_ser_rbytes(in, &b);
            if (hv > 1 || (!hv && b != 0))
                return -EBADMSG;
            size += (size_t)a + b;
        }
        if (in->err != 0 || size > UINT32_MAX)
            return -EBADMSG;
        dp_hdr_t *hdrs = nh > 0 ? malloc(nh * sizeof(*hdrs)) : NULL;
        if (nh > 0 && hdrs == NULL)
            return -ENOMEM;
        dp_ser_r_t hr = *in;
        hr.off = hoff;
        for (uint32_t j = 0; j < nh; j++) {
            hdrs[j].name = (const char *)dp_ser_rbytes(&hr, &hdrs[j].name_len);
            uint8_t hv = dp_ser_ru8(&hr);
            hdrs[j].val = (const char *)dp_ser_rbytes(&hr, &hdrs[j].val_len);
            if (!hv)
                hdrs[j].val = NULL;
        }
        void *blob = blob_alloc(w, size);
        if (blob == NULL) {
            free(hdrs);
            return -ENOMEM;
        }
        krec_t *r = krec_build(blob, size, seq, ts, has_payload ? (const char *)pl : NULL,
                               has_payload ? plen : 0, hdrs, nh);
        free(hdrs);
        slice_append_rec(w, s, r);
    }
    return 0;
}

static int load_key(dp_win_t *w, dp_ser_r_t *in, wkey_t **out)
{
    uint64_t seq = dp_ser_ru64(in);
    dp_val_t kv = dp_ser_rval(in);
    uint64_t h;
    wkey_t *k;

    /* Sequence numbers keep the saved relative order (emission order). */
    if (in->err != 0 || kv.type == DP_VAL_MISSING || kv.type == DP_VAL_ERR || seq < w->key_seq ||
        seq == UINT64_MAX)
        return -EBADMSG;
    kv = key_norm(&kv);
    h = key_hash(&kv);
    if (key_find(w, &kv, h) != NULL)
        return -EBADMSG;
    if ((w->nkeys + 1) * 4 > w->tab_cap * 3) {
        ent_t *nt = calloc(w->tab_cap * 2, sizeof(ent_t));
        if (nt == NULL)
            return -ENOMEM;
        tab_replace(w, nt, w->tab_cap * 2);
    }
    if (w->fire_cap < w->nkeys + 1) {
        fire_t *f = realloc(w->fire, w->fire_cap * 2 * sizeof(*f));
        if (f == NULL)
            return -ENOMEM;
        w->fire = f;
        w->fire_cap *= 2;
    }
    k = slab_get(&w->key_slab);
    if (k == NULL)
        return -ENOMEM;
    memset(k, 0, sizeof(*k));
    k->key = kv;
    if (kv.type == DP_VAL_STR) {
        char *b = blob_alloc(w, kv.len);
        if (b == NULL) {
            slab_put(&w->key_slab, k);
            return -ENOMEM;
        }
        if (kv.len > 0)
            memcpy(b, kv.u.s, kv.len);
        k->key.u.s = b;
    }
    w->bytes += w->key_bytes;
    w->key_seq = seq;
    key_link(w, k, h);
    *out = k;
    return 0;
}

static int load_slices(dp_win_t *w, dp_ser_r_t *in, wkey_t *k)
{
    uint32_t n = dp_ser_ru32(in);
    slice_t **tail = &k->slices, *prev = NULL;
    bool session = w->cfg.kind == DP_WIN_SESSION;
    int rc;

    if (in->err != 0 || n == 0)
        return -EBADMSG;
    for (uint32_t i = 0; i < n; i++) {
        int64_t start = dp_ser_ri64(in), end = dp_ser_ri64(in);
        uint64_t count = dp_ser_ru64(in);
        uint8_t dirty = dp_ser_ru8(in);
        if (in->err != 0 || count == 0 || dirty > 1 || start <= -DP_WIN_TS_LIMIT ||
            start >= DP_WIN_TS_LIMIT || end <= start ||
            end >= DP_WIN_TS_LIMIT + DP_WIN_DURATION_MAX)
            return -EBADMSG;
        if (session ? (end - start < w->cfg.gap_ms || (prev != NULL && prev->start <= end))
                    : (floor_div(start, w->g) * w->g != start || end != start + w->g ||
                       (prev != NULL && prev->start <= start)))
            return -EBADMSG;
        slice_t *s = slab_get(&w->slice_slab);
        if (s == NULL)
            return -ENOMEM;
        memset(s, 0, w->slice_bytes);
        s->start = start;
        s->end = end;
        s->count = count;
        s->dirty = dirty;
        w->bytes += w->slice_bytes;
        k->nslices++;
        *tail = s;
        tail = &s->next;
        prev = s;
        for (uint32_t j = 0; j < w->cfg.naggs; j++) {
            rc = load_agg(w, in, w->cfg.aggs[j], &s->aggs[j]);
            if (rc != 0)
                return rc;
        }
        if (w->cfg.keep_records) {
            rc = load_recs(w, in, s);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int dp_win_load(dp_win_t *w, dp_ser_r_t *in)
{
    dp_ser_w_t shape = {0};
    uint64_t *st = (uint64_t *)&w->st;
    wkey_t **byseq = NULL;
    int rc = -EBADMSG;
    uint32_t n;

    assert(w != NULL && in != NULL && !w->in_emit);
    state_clear(w, true);
    put_shape(w, &shape);
    if (shape.err != 0) {
        rc = -ENOMEM;
        goto out;
    }
    if (dp_ser_ru32(in) != WIN_MAGIC || dp_ser_ru32(in) != WIN_VERSION)
        goto out;
    const uint8_t *sp = dp_ser_get(in, shape.len);
    if (sp == NULL || memcmp(sp, shape.buf, shape.len) != 0)
        goto out;
    w->wm = dp_ser_ri64(in);
    if (w->wm != INT64_MIN && w->wm < -DP_WIN_TS_LIMIT)
        goto out;
    w->now = dp_ser_ri64(in);
    w->last_early = dp_ser_ri64(in);
    w->rec_seq = dp_ser_ru64(in);
    if (dp_ser_ru32(in) != sizeof(w->st) / 8)
        goto out;
    for (size_t i = 0; i < sizeof(w->st) / 8; i++)
        st[i] = dp_ser_ru64(in);
    n = dp_ser_ru32(in);
    if (in->err != 0)
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        wkey_t *k = NULL;
        rc = load_key(w, in, &k);
        if (rc == 0) {
            k->last_input_ms = dp_ser_ri64(in);
            rc = load_slices(w, in, k);
        }
        if (rc != 0)
            goto out;
    }
    /* Idle order (ignored when this instance has no idle timeout). */
    rc = -EBADMSG;
    n = dp_ser_ru32(in);
    if (in->err != 0 || n > w->nkeys)
        goto out;
    if (n > 0) {
        byseq = malloc(w->nkeys * sizeof(*byseq));
        if (byseq == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        size_t j = 0;
        for (wkey_t *k = w->head; k != NULL; k = k->next)
            byseq[j++] = k;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t seq = dp_ser_ru64(in);
        size_t lo = 0, hi = w->nkeys;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (byseq[mid]->seq < seq)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (in->err != 0 || lo == w->nkeys || byseq[lo]->seq != seq || byseq[lo]->in_lru)
            goto out;
        if (w->cfg.idle_timeout_ms > 0)
            lru_append(w, byseq[lo]);
        else
            byseq[lo]->in_lru = 1; /* duplicate check only */
    }
    if (w->cfg.idle_timeout_ms == 0) {
        for (wkey_t *k = w->head; k != NULL; k = k->next)
            k->in_lru = 0;
    }
    if (dp_ser_ru32(in) != WIN_END_MAGIC || in->err != 0)
        goto out;
    if (w->cfg.keep_records && w->rcap < w->nrecs_total + 1) {
        size_t cap = w->nrecs_total + 64;
        krec_t **rk = realloc(w->rk, cap * sizeof(*rk));
        if (rk != NULL)
            w->rk = rk;
        dp_win_rec_t *rv = rk != NULL ? realloc(w->rv, cap * sizeof(*rv)) : NULL;
        if (rv == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        w->rv = rv;
        w->rcap = cap;
    }
    {
        int64_t due = INT64_MAX;
        for (wkey_t *k = w->head; k != NULL; k = k->next) {
            for (slice_t *s = k->slices; s != NULL; s = s->next) {
                int64_t d = slice_due(w, s);
                if (d < due)
                    due = d;
            }
        }
        w->next_due = due;
    }
    rc = 0;
out:
    free(byseq);
    dp_ser_wdispose(&shape);
    if (rc != 0) {
        state_clear(w, true);
        if (rc != -ENOMEM)
            rc = -EBADMSG;
        if (in->err == 0)
            in->err = -EBADMSG;
    }
    return rc;
}
