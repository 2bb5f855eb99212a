/* SPDX-License-Identifier: Apache-2.0 */
/* Join state engine: window joins keep one open-addressing table of key
 * groups and one chunked arena per window, interval joins one key table and
 * time buckets (each with its arena) per side, table joins one malloc'd entry
 * per key. Every add checks the budget first, then reserves all memory, then
 * commits, so a refused or failed add changes nothing. See
 * docs/internals/joins.md. */
#include "dp_join.h"
#include "dp_crc32c.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define A8(n) (((size_t)(n) + 7u) & ~(size_t)7u)

#define CHUNK_MIN 4096u /* arena chunk size bounds; see chunk_bytes */
#define CHUNK_MAX 65536u
#define CHUNK_CACHE_MAX 64u /* free standard chunks kept (not charged) */
#define GRP_CACHE_MAX 4096u /* free interval groups kept (not charged) */
#define TAB_MIN 16u
#define TAB_MAX ((uint32_t)1 << 30)
#define SER_MAGIC 0x4e4a5257u /* "WRJN" */
#define SER_VERSION 1u

/* ---- keys ---------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_bytes(const char *s, size_t n, uint64_t seed)
{
    uint64_t h = seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15ull);
    uint64_t v;

    while (n >= 8) {
        memcpy(&v, s, 8);
        h ^= v * 0x87c37b91114253d5ull;
        h = (h << 31 | h >> 33) * 0x4cf5ad432745937full;
        s += 8;
        n -= 8;
    }
    if (n > 0) {
        v = 0;
        memcpy(&v, s, n);
        h ^= v * 0x87c37b91114253d5ull;
        h = (h << 31 | h >> 33) * 0x4cf5ad432745937full;
    }
    return mix64(h);
}

/* MISSING, NULL, ERR and NaN never equal anything, themselves included. */
static bool key_matchable(const dp_val_t *k)
{
    switch (k->type) {
    case DP_VAL_BOOL:
    case DP_VAL_INT:
    case DP_VAL_STR:
        return true;
    case DP_VAL_DOUBLE:
        return !isnan(k->u.d);
    default:
        return false;
    }
}

/* The type is part of the hash and of equality: INT 3 never meets DOUBLE 3.0. */
static uint64_t key_hash(const dp_val_t *k)
{
    uint64_t bits;
    double d;

    switch (k->type) {
    case DP_VAL_BOOL:
        return mix64(0x100u + (k->u.b ? 1u : 0u));
    case DP_VAL_INT:
        return mix64((uint64_t)k->u.i ^ 0x5bd1e9955bd1e995ull);
    case DP_VAL_DOUBLE:
        d = k->u.d == 0.0 ? 0.0 : k->u.d; /* -0.0 == 0.0, so they must hash alike */
        memcpy(&bits, &d, 8);
        return mix64(bits ^ 0xa0761d6478bd642full);
    case DP_VAL_STR:
        return k->len ? hash_bytes(k->u.s, k->len, 0xe7037ed1a0b428dbull) : 1;
    default:
        return 0;
    }
}

static bool key_eq(const dp_val_t *a, const dp_val_t *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case DP_VAL_BOOL:
        return a->u.b == b->u.b;
    case DP_VAL_INT:
        return a->u.i == b->u.i;
    case DP_VAL_DOUBLE:
        return a->u.d == b->u.d;
    case DP_VAL_STR:
        return a->len == b->len && (a->len == 0 || memcmp(a->u.s, b->u.s, a->len) == 0);
    default:
        return false;
    }
}

/* Bytes a key's value needs beyond the dp_val_t. */
static size_t key_extra(const dp_val_t *k)
{
    return k->type == DP_VAL_STR ? k->len : 0;
}

/* Copies k's string bytes to dst (if any) and returns the copy. */
static dp_val_t key_copy(const dp_val_t *k, uint8_t *dst)
{
    dp_val_t v = *k;

    if (k->type == DP_VAL_STR) {
        if (k->len > 0)
            memcpy(dst, k->u.s, k->len);
        v.u.s = (const char *)dst;
    }
    return v;
}

/* ---- structures ---------------------------------------------------------- */

/* Head of everything a key table holds. */
typedef struct jkh {
    uint64_t hash;
    dp_val_t key;
} jkh_t;

/* Linear probing with backward-shift deletion; e == NULL marks a free slot. */
typedef struct jslot {
    uint64_t hash;
    jkh_t *e;
} jslot_t;

typedef struct jtab {
    jslot_t *slots;
    uint32_t cap; /* 0 or a power of two */
    uint32_t count;
} jtab_t;

/* Arena chunk; data follows the header. Standard chunks are j->chunk_bytes
 * long in total, a record larger than that gets a chunk of its own. */
typedef struct jchunk {
    struct jchunk *next;
    size_t cap;
    size_t used;
    size_t pad;
} jchunk_t;

typedef struct jarena {
    jchunk_t *head; /* the chunk being filled */
} jarena_t;

/* Window join record and key group (both in the window's arena). */
typedef struct wrec {
    dp_join_rec_t pub;
    struct wrec *next; /* arrival order within group and side */
} wrec_t;

typedef struct wgrp {
    jkh_t kh;
    struct wgrp *onext; /* groups in first-arrival order */
    wrec_t *head[2];
    wrec_t *tail[2];
} wgrp_t;

typedef struct jwin {
    int64_t start;
    int64_t end;
    jtab_t tab;
    jarena_t arena;
    wgrp_t *first;
    wgrp_t *last;
    wgrp_t *nullg; /* records whose key cannot match (never in tab) */
} jwin_t;

/* Interval join record (in its time bucket's arena) and key group (malloc). */
typedef struct irec {
    dp_join_rec_t pub;
    struct irec *next; /* group side list, arrival order */
    struct irec *prev;
    struct irec *bnext; /* bucket list, arrival order */
    struct igrp *grp;
    dp_val_t jkey; /* string bytes follow the record's own bytes */
    uint64_t seq;  /* arrival number: restores group order on load */
    uint8_t side;
    uint8_t matched;
    uint8_t pad[6];
} irec_t;

typedef struct igrp {
    jkh_t kh; /* key bytes borrowed from one of the group's records */
    irec_t *head[2];
    irec_t *tail[2];
    struct igrp *fnext; /* free list */
} igrp_t;

typedef struct ibkt {
    int64_t idx;    /* floor(ts / bucket_ms) */
    int64_t max_ts; /* the bucket expires when every record in it has */
    jarena_t arena;
    irec_t *head;
    irec_t *tail;
} ibkt_t;

/* Table join entry: one malloc per key; record bytes follow, then key bytes. */
typedef struct tent {
    jkh_t kh;
    dp_join_rec_t pub;
    size_t cap; /* bytes after the struct */
} tent_t;

struct dp_join {
    dp_join_cfg_t cfg; /* normalised: fields of other kinds zeroed */
    dp_join_emit_cb emit;
    void *ctx;
    int64_t wm;
    size_t state_bytes;
    size_t chunk_bytes;
    jchunk_t *cache;
    uint32_t ncache;
    bool emitting; /* guards against re-entry from the callback */
    dp_join_stats_t stats;
    /* window joins: windows ascending by start (hence by end) */
    jwin_t **wins;
    uint32_t nwins;
    uint32_t capwins;
    /* interval joins */
    jtab_t itab;
    ibkt_t **bk[2]; /* per side, ascending idx */
    uint32_t nbk[2];
    uint32_t capbk[2];
    igrp_t *gfree;
    uint32_t ngfree;
    uint64_t seq;
    /* table joins */
    jtab_t ttab;
};

/* ---- small helpers ------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if (a % b != 0 && (a < 0) != (b < 0))
        q--;
    return q;
}

static void emit(dp_join_t *j, const dp_join_rec_t *l, const dp_join_rec_t *r, const dp_val_t *key,
                 int64_t ts, int64_t ws, int64_t we)
{
    dp_join_pair_t p = {
        .left = l, .right = r, .key = key, .event_ms = ts, .win_start_ms = ws, .win_end_ms = we};

    if (l != NULL && r != NULL)
        j->stats.pairs++;
    else
        j->stats.unmatched++;
    j->emitting = true;
    j->emit(j->ctx, &p);
    j->emitting = false;
}

/* 0, -ENOBUFS (does not fit now) or -EMSGSIZE (would not fit an empty join). */
static int budget_check(dp_join_t *j, size_t extra)
{
    size_t lim = j->cfg.state_limit_bytes;

    if (lim == 0 || extra == 0)
        return 0;
    if (extra > lim)
        return -EMSGSIZE;
    if (j->state_bytes + extra > lim) {
        j->stats.denied++;
        return -ENOBUFS;
    }
    return 0;
}

/* ---- key tables ---------------------------------------------------------- */

static uint32_t tab_need_cap(const jtab_t *t)
{
    uint64_t cap = t->cap ? t->cap : TAB_MIN;

    while (((uint64_t)t->count + 1) * 4 > cap * 3)
        cap *= 2;
    return cap > TAB_MAX ? 0 : (uint32_t)cap;
}

/* Bytes that inserting one more entry would add. */
static size_t tab_extra(const jtab_t *t)
{
    uint32_t cap = tab_need_cap(t);

    if (cap == 0)
        return SIZE_MAX / 2; /* never fits */
    return (size_t)(cap - t->cap) * sizeof(jslot_t);
}

static void slot_put(jslot_t *slots, uint32_t cap, uint64_t h, jkh_t *e)
{
    uint32_t i = (uint32_t)h & (cap - 1);

    while (slots[i].e != NULL)
        i = (i + 1) & (cap - 1);
    slots[i].hash = h;
    slots[i].e = e;
}

/* Makes room for one more entry. */
static int tab_reserve(dp_join_t *j, jtab_t *t)
{
    uint32_t cap = tab_need_cap(t);
    jslot_t *ns;

    if (cap == 0)
        return -ENOMEM;
    if (cap == t->cap)
        return 0;
    ns = calloc(cap, sizeof(*ns));
    if (ns == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < t->cap; i++) {
        if (t->slots[i].e != NULL)
            slot_put(ns, cap, t->slots[i].hash, t->slots[i].e);
    }
    free(t->slots);
    j->state_bytes += (size_t)(cap - t->cap) * sizeof(jslot_t);
    t->slots = ns;
    t->cap = cap;
    return 0;
}

static jkh_t *tab_find(const jtab_t *t, uint64_t h, const dp_val_t *k)
{
    uint32_t mask = t->cap - 1;
    uint32_t i;

    if (t->cap == 0)
        return NULL;
    for (i = (uint32_t)h & mask; t->slots[i].e != NULL; i = (i + 1) & mask) {
        if (t->slots[i].hash == h && key_eq(&t->slots[i].e->key, k))
            return t->slots[i].e;
    }
    return NULL;
}

static void tab_insert(jtab_t *t, jkh_t *e)
{
    assert(((uint64_t)t->count + 1) * 4 <= (uint64_t)t->cap * 3);
    slot_put(t->slots, t->cap, e->hash, e);
    t->count++;
}

static uint32_t tab_slot_of(const jtab_t *t, const jkh_t *e)
{
    uint32_t mask = t->cap - 1;
    uint32_t i = (uint32_t)e->hash & mask;

    while (t->slots[i].e != e) {
        assert(t->slots[i].e != NULL);
        i = (i + 1) & mask;
    }
    return i;
}

static void tab_remove(jtab_t *t, const jkh_t *e)
{
    uint32_t mask = t->cap - 1;
    uint32_t i = tab_slot_of(t, e);
    uint32_t k = i;

    t->slots[i].e = NULL;
    t->count--;
    /* Backward shift: pull later entries of the cluster into the hole unless
     * their home slot lies cyclically in (hole, current]. */
    for (;;) {
        uint32_t home;

        k = (k + 1) & mask;
        if (t->slots[k].e == NULL)
            break;
        home = (uint32_t)t->slots[k].hash & mask;
        if (((k - home) & mask) >= ((k - i) & mask)) {
            t->slots[i] = t->slots[k];
            t->slots[k].e = NULL;
            i = k;
        }
    }
}

static void tab_replace(jtab_t *t, const jkh_t *old, jkh_t *e)
{
    t->slots[tab_slot_of(t, old)].e = e;
}

static void tab_dispose(dp_join_t *j, jtab_t *t)
{
    j->state_bytes -= (size_t)t->cap * sizeof(jslot_t);
    free(t->slots);
    *t = (jtab_t){0};
}

/* ---- arenas -------------------------------------------------------------- */

static size_t chunk_size_for(const dp_join_t *j, size_t need)
{
    size_t n = sizeof(jchunk_t) + need;

    return n <= j->chunk_bytes ? j->chunk_bytes : n;
}

/* Bytes that reserving `need` would add. */
static size_t arena_extra(const dp_join_t *j, const jarena_t *a, size_t need)
{
    if (a->head != NULL && a->head->cap - a->head->used >= need)
        return 0;
    return chunk_size_for(j, need);
}

static int arena_reserve(dp_join_t *j, jarena_t *a, size_t need)
{
    size_t total;
    jchunk_t *c;

    if (arena_extra(j, a, need) == 0)
        return 0;
    total = chunk_size_for(j, need);
    if (total == j->chunk_bytes && j->cache != NULL) {
        c = j->cache;
        j->cache = c->next;
        j->ncache--;
    } else {
        c = malloc(total);
        if (c == NULL)
            return -ENOMEM;
    }
    c->cap = total - sizeof(jchunk_t);
    c->used = 0;
    c->next = a->head;
    a->head = c;
    j->state_bytes += total;
    return 0;
}

/* Takes n bytes (a multiple of 8) that arena_reserve guaranteed. */
static void *arena_alloc(jarena_t *a, size_t n)
{
    jchunk_t *c = a->head;
    void *p;

    assert(n % 8 == 0 && c != NULL && c->cap - c->used >= n);
    p = (uint8_t *)(c + 1) + c->used;
    c->used += n;
    return p;
}

static void arena_release(dp_join_t *j, jarena_t *a)
{
    while (a->head != NULL) {
        jchunk_t *c = a->head;
        size_t total = c->cap + sizeof(jchunk_t);

        a->head = c->next;
        j->state_bytes -= total;
        if (total == j->chunk_bytes && j->ncache < CHUNK_CACHE_MAX) {
            c->next = j->cache;
            j->cache = c;
            j->ncache++;
        } else {
            free(c);
        }
    }
}

/* ---- record copies ------------------------------------------------------- */

/* Bytes a copy of row needs after the record struct (headers array first). */
static size_t row_var_bytes(const dp_row_t *row)
{
    size_t n = (size_t)row->nhdrs * sizeof(dp_hdr_t);

    if (row->payload != NULL)
        n += row->payload_len;
    if (row->key != NULL)
        n += row->key_len;
    for (uint32_t i = 0; i < row->nhdrs; i++) {
        n += row->hdrs[i].name_len;
        if (row->hdrs[i].val != NULL)
            n += row->hdrs[i].val_len;
    }
    return n;
}

static uint8_t *copy_bytes(uint8_t *p, const char *src, uint32_t len, const char **dst)
{
    if (len > 0)
        memcpy(p, src, len);
    *dst = (const char *)p;
    return p + len;
}

/* Copies row into var (8-aligned, row_var_bytes long); returns the end. */
static uint8_t *rec_fill(dp_join_rec_t *pub, uint8_t *var, const dp_row_t *row, int64_t event_ms)
{
    dp_hdr_t *h = (dp_hdr_t *)(void *)var;
    uint8_t *p = var + (size_t)row->nhdrs * sizeof(dp_hdr_t);

    assert((uintptr_t)var % 8 == 0);
    pub->event_ms = event_ms;
    pub->ts_ms = row->ts_ms;
    pub->offset = row->offset;
    pub->partition = row->partition;
    pub->payload = NULL;
    pub->payload_len = 0;
    pub->key = NULL;
    pub->key_len = 0;
    pub->nhdrs = row->nhdrs;
    pub->hdrs = row->nhdrs > 0 ? h : NULL;
    if (row->payload != NULL) {
        p = copy_bytes(p, row->payload, row->payload_len, &pub->payload);
        pub->payload_len = row->payload_len;
    }
    if (row->key != NULL) {
        p = copy_bytes(p, row->key, row->key_len, &pub->key);
        pub->key_len = row->key_len;
    }
    for (uint32_t i = 0; i < row->nhdrs; i++) {
        const dp_hdr_t *s = &row->hdrs[i];

        p = copy_bytes(p, s->name, s->name_len, &h[i].name);
        h[i].name_len = s->name_len;
        h[i].val = NULL;
        h[i].val_len = 0;
        if (s->val != NULL) {
            p = copy_bytes(p, s->val, s->val_len, &h[i].val);
            h[i].val_len = s->val_len;
        }
    }
    return p;
}

/* A record that is not kept: borrow the caller's row for one callback. */
static void rec_view(dp_join_rec_t *pub, const dp_row_t *row, int64_t event_ms)
{
    *pub = (dp_join_rec_t){
        .event_ms = event_ms,
        .ts_ms = row->ts_ms,
        .offset = row->offset,
        .payload = row->payload,
        .key = row->key,
        .hdrs = row->nhdrs > 0 ? row->hdrs : NULL,
        .payload_len = row->payload != NULL ? row->payload_len : 0,
        .key_len = row->key != NULL ? row->key_len : 0,
        .nhdrs = row->nhdrs,
        .partition = row->partition,
    };
}

/* ---- window joins -------------------------------------------------------- */

/* Index of the first window with start >= `start`; *found if equal. */
static uint32_t win_pos(const dp_join_t *j, int64_t start, bool *found)
{
    uint32_t lo = 0, hi = j->nwins;

    /* The newest window is the usual target. */
    if (hi > 0 && j->wins[hi - 1]->start <= start)
        lo = hi - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (j->wins[mid]->start < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < j->nwins && j->wins[lo]->start == start;
    return lo;
}

static int win_create(dp_join_t *j, int64_t start, jwin_t **out)
{
    bool found;
    uint32_t pos = win_pos(j, start, &found);
    jwin_t *w;

    assert(!found);
    if (j->nwins == j->capwins) {
        uint32_t cap = j->capwins ? j->capwins * 2 : 8;
        jwin_t **nw = realloc(j->wins, cap * sizeof(*nw));

        if (nw == NULL)
            return -ENOMEM;
        j->wins = nw;
        j->capwins = cap;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    w->start = start;
    w->end = start + j->cfg.size_ms;
    memmove(&j->wins[pos + 1], &j->wins[pos], (j->nwins - pos) * sizeof(*j->wins));
    j->wins[pos] = w;
    j->nwins++;
    j->state_bytes += sizeof(*w);
    *out = w;
    return 0;
}

static size_t wgrp_bytes(const dp_val_t *key)
{
    return A8(sizeof(wgrp_t) + key_extra(key));
}

static int win_reserve(dp_join_t *j, jwin_t *w, const wgrp_t *g, bool matchable, size_t need)
{
    int rc;

    if (g == NULL && matchable) {
        rc = tab_reserve(j, &w->tab);
        if (rc != 0)
            return rc;
    }
    return arena_reserve(j, &w->arena, need);
}

/* Stores one copy in w (memory reserved by win_reserve); returns its group. */
static wgrp_t *win_commit(dp_join_t *j, jwin_t *w, wgrp_t *g, int side, const dp_val_t *key,
                          uint64_t h, bool matchable, int64_t ts, const dp_row_t *row, size_t recsz)
{
    wrec_t *r;

    if (g == NULL) {
        g = arena_alloc(&w->arena, wgrp_bytes(key));
        memset(g, 0, sizeof(*g));
        g->kh.hash = h;
        g->kh.key = key_copy(key, (uint8_t *)(g + 1));
        if (matchable) {
            tab_insert(&w->tab, &g->kh);
        } else {
            assert(w->nullg == NULL);
            w->nullg = g;
        }
        if (w->last != NULL)
            w->last->onext = g;
        else
            w->first = g;
        w->last = g;
    }
    r = arena_alloc(&w->arena, recsz);
    rec_fill(&r->pub, (uint8_t *)(r + 1), row, ts);
    r->next = NULL;
    if (g->tail[side] != NULL)
        g->tail[side]->next = r;
    else
        g->head[side] = r;
    g->tail[side] = r;
    j->stats.records++;
    return g;
}

static int win_add(dp_join_t *j, int side, const dp_val_t *key, uint64_t h, bool matchable,
                   int64_t ts, const dp_row_t *row, size_t var)
{
    int64_t starts[DP_JOIN_MAX_HOPS];
    jwin_t *tw[DP_JOIN_MAX_HOPS];
    wgrp_t *tg[DP_JOIN_MAX_HOPS];
    size_t recsz = A8(sizeof(wrec_t) + var);
    size_t grpsz = wgrp_bytes(key);
    size_t extra = 0;
    uint32_t n = 0, nlate = 0;
    int64_t size = j->cfg.size_ms;
    int rc;

    if (j->cfg.win == DP_JOIN_WIN_TUMBLING) {
        int64_t s = floor_div(ts, size) * size;

        if (s + size <= j->wm)
            nlate++;
        else
            starts[n++] = s;
    } else {
        int64_t slide = j->cfg.slide_ms;

        for (int64_t s = floor_div(ts, slide) * slide; s > ts - size; s -= slide) {
            assert(n + nlate < DP_JOIN_MAX_HOPS);
            if (s + size <= j->wm)
                nlate++;
            else
                starts[n++] = s;
        }
    }
    if (n == 0) {
        j->stats.late[side]++;
        return DP_JOIN_LATE;
    }
    if (!matchable) {
        bool keep =
            side == DP_JOIN_SIDE_LEFT ? j->cfg.type != DP_JOIN_INNER : j->cfg.type == DP_JOIN_FULL;

        if (!keep) {
            j->stats.nokey[side]++;
            j->stats.dropped[side]++;
            return DP_JOIN_NOKEY;
        }
    }

    /* 1: what would it cost? */
    for (uint32_t i = 0; i < n; i++) {
        bool found;
        uint32_t pos = win_pos(j, starts[i], &found);
        jwin_t *w = found ? j->wins[pos] : NULL;
        wgrp_t *g = NULL;

        if (w != NULL)
            g = matchable ? (wgrp_t *)tab_find(&w->tab, h, key) : w->nullg;
        if (w == NULL) {
            jtab_t empty = {0};

            extra += sizeof(jwin_t) + chunk_size_for(j, recsz + grpsz);
            if (matchable)
                extra += tab_extra(&empty);
        } else {
            extra += arena_extra(j, &w->arena, recsz + (g ? 0 : grpsz));
            if (g == NULL && matchable)
                extra += tab_extra(&w->tab);
        }
        tw[i] = w;
        tg[i] = g;
    }
    rc = budget_check(j, extra);
    if (rc != 0)
        return rc;

    /* 2: take the memory; 3: store. */
    for (uint32_t i = 0; i < n; i++) {
        if (tw[i] == NULL) {
            rc = win_create(j, starts[i], &tw[i]);
            if (rc != 0)
                return rc;
        }
        rc = win_reserve(j, tw[i], tg[i], matchable, recsz + (tg[i] ? 0 : grpsz));
        if (rc != 0)
            return rc;
    }
    for (uint32_t i = 0; i < n; i++)
        win_commit(j, tw[i], tg[i], side, key, h, matchable, ts, row, recsz);
    j->stats.added[side]++;
    if (nlate > 0)
        j->stats.late_partial++;
    if (!matchable) {
        j->stats.nokey[side]++;
        return DP_JOIN_NOKEY;
    }
    return DP_JOIN_OK;
}

static void win_free(dp_join_t *j, jwin_t *w)
{
    tab_dispose(j, &w->tab);
    arena_release(j, &w->arena);
    j->state_bytes -= sizeof(*w);
    free(w);
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static void win_fire(dp_join_t *j, jwin_t *w)
{
    const dp_join_type_t type = j->cfg.type;

    for (wgrp_t *g = w->first; g != NULL; g = g->onext) {
        const dp_val_t *k = &g->kh.key;

        if (g != w->nullg && g->head[0] != NULL && g->head[1] != NULL) {
            for (wrec_t *l = g->head[0]; l != NULL; l = l->next) {
                for (wrec_t *r = g->head[1]; r != NULL; r = r->next)
                    emit(j, &l->pub, &r->pub, k, max64(l->pub.event_ms, r->pub.event_ms), w->start,
                         w->end);
            }
        } else {
            for (wrec_t *l = g->head[0]; l != NULL; l = l->next) {
                if (type != DP_JOIN_INNER)
                    emit(j, &l->pub, NULL, k, l->pub.event_ms, w->start, w->end);
                else
                    j->stats.dropped[0]++;
            }
            for (wrec_t *r = g->head[1]; r != NULL; r = r->next) {
                if (type == DP_JOIN_FULL)
                    emit(j, NULL, &r->pub, k, r->pub.event_ms, w->start, w->end);
                else
                    j->stats.dropped[1]++;
            }
        }
        for (int s = 0; s < 2; s++) {
            for (wrec_t *r = g->head[s]; r != NULL; r = r->next) {
                j->stats.expired[s]++;
                j->stats.records--;
            }
        }
    }
    j->stats.windows_fired++;
    win_free(j, w);
}

static void win_advance(dp_join_t *j)
{
    uint32_t n = 0;

    while (n < j->nwins && j->wins[n]->end <= j->wm) {
        win_fire(j, j->wins[n]);
        n++;
    }
    if (n > 0) {
        memmove(j->wins, j->wins + n, (j->nwins - n) * sizeof(*j->wins));
        j->nwins -= n;
    }
}

/* ---- interval joins ------------------------------------------------------ */

static uint32_t bk_pos(const dp_join_t *j, int side, int64_t idx, bool *found)
{
    ibkt_t *const *bk = j->bk[side];
    uint32_t lo = 0, hi = j->nbk[side];

    if (hi > 0 && bk[hi - 1]->idx <= idx)
        lo = hi - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (bk[mid]->idx < idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < j->nbk[side] && bk[lo]->idx == idx;
    return lo;
}

static int bk_create(dp_join_t *j, int side, int64_t idx, ibkt_t **out)
{
    bool found;
    uint32_t pos = bk_pos(j, side, idx, &found);
    ibkt_t *b;

    assert(!found);
    if (j->nbk[side] == j->capbk[side]) {
        uint32_t cap = j->capbk[side] ? j->capbk[side] * 2 : 16;
        ibkt_t **nb = realloc(j->bk[side], cap * sizeof(*nb));

        if (nb == NULL)
            return -ENOMEM;
        j->bk[side] = nb;
        j->capbk[side] = cap;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    b->idx = idx;
    b->max_ts = idx * j->cfg.bucket_ms; /* a lower bound until a record lands */
    memmove(&j->bk[side][pos + 1], &j->bk[side][pos], (j->nbk[side] - pos) * sizeof(ibkt_t *));
    j->bk[side][pos] = b;
    j->nbk[side]++;
    j->state_bytes += sizeof(*b);
    *out = b;
    return 0;
}

static int grp_reserve(dp_join_t *j)
{
    igrp_t *g;

    if (j->gfree != NULL)
        return 0;
    g = malloc(sizeof(*g));
    if (g == NULL)
        return -ENOMEM;
    g->fnext = NULL;
    j->gfree = g;
    j->ngfree = 1;
    return 0;
}

static igrp_t *grp_take(dp_join_t *j)
{
    igrp_t *g = j->gfree;

    assert(g != NULL);
    j->gfree = g->fnext;
    j->ngfree--;
    memset(g, 0, sizeof(*g));
    j->state_bytes += sizeof(*g);
    return g;
}

static void grp_put(dp_join_t *j, igrp_t *g)
{
    j->state_bytes -= sizeof(*g);
    if (j->ngfree < GRP_CACHE_MAX) {
        g->fnext = j->gfree;
        j->gfree = g;
        j->ngfree++;
    } else {
        free(g);
    }
}

/* Stores a record in bucket b (memory reserved); not yet in a group. */
static irec_t *ivl_store(dp_join_t *j, ibkt_t *b, int side, const dp_val_t *key, int64_t ts,
                         const dp_row_t *row, size_t recsz)
{
    irec_t *r = arena_alloc(&b->arena, recsz);
    uint8_t *end;

    memset(r, 0, sizeof(*r));
    end = rec_fill(&r->pub, (uint8_t *)(r + 1), row, ts);
    r->jkey = key_copy(key, end);
    r->side = (uint8_t)side;
    if (b->tail != NULL)
        b->tail->bnext = r;
    else
        b->head = r;
    b->tail = r;
    if (ts > b->max_ts)
        b->max_ts = ts;
    j->stats.records++;
    return r;
}

/* Appends r to its key group (memory reserved: a free group and a table slot). */
static igrp_t *ivl_link(dp_join_t *j, irec_t *r, uint64_t h)
{
    igrp_t *g = (igrp_t *)tab_find(&j->itab, h, &r->jkey);
    int s = r->side;

    if (g == NULL) {
        g = grp_take(j);
        g->kh.hash = h;
        g->kh.key = r->jkey;
        tab_insert(&j->itab, &g->kh);
    }
    r->grp = g;
    r->prev = g->tail[s];
    r->next = NULL;
    if (g->tail[s] != NULL)
        g->tail[s]->next = r;
    else
        g->head[s] = r;
    g->tail[s] = r;
    return g;
}

static void ivl_unlink(dp_join_t *j, irec_t *r)
{
    igrp_t *g = r->grp;
    int s = r->side;

    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        g->head[s] = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    else
        g->tail[s] = r->prev;
    if (g->head[0] == NULL && g->head[1] == NULL) {
        tab_remove(&j->itab, &g->kh);
        grp_put(j, g);
        if (j->itab.count == 0)
            tab_dispose(j, &j->itab); /* idle joins hold nothing */
        return;
    }
    /* The group borrowed its key bytes from r: borrow them from a survivor. */
    if (g->kh.key.type == DP_VAL_STR && g->kh.key.u.s == r->jkey.u.s) {
        const irec_t *o = g->head[0] != NULL ? g->head[0] : g->head[1];

        g->kh.key.u.s = o->jkey.u.s;
    }
}

static int ivl_add(dp_join_t *j, int side, const dp_val_t *key, uint64_t h, bool matchable,
                   int64_t ts, const dp_row_t *row, size_t var)
{
    size_t recsz = A8(sizeof(irec_t) + var + key_extra(key));
    int64_t idx = floor_div(ts, j->cfg.bucket_ms);
    int64_t lower = j->cfg.lower_ms, upper = j->cfg.upper_ms;
    size_t extra;
    bool found;
    ibkt_t *b;
    igrp_t *g;
    irec_t *r;
    int rc;

    /* A partner of ts may already have expired once the watermark is past it. */
    if (ts < j->wm) {
        j->stats.late[side]++;
        return DP_JOIN_LATE;
    }
    if (!matchable) {
        if (side == DP_JOIN_SIDE_LEFT && j->cfg.type == DP_JOIN_LEFT) {
            dp_join_rec_t v;

            rec_view(&v, row, ts);
            emit(j, &v, NULL, key, ts, 0, 0);
        } else {
            j->stats.dropped[side]++;
        }
        j->stats.nokey[side]++;
        return DP_JOIN_NOKEY;
    }

    g = (igrp_t *)tab_find(&j->itab, h, key);
    b = NULL;
    {
        uint32_t pos = bk_pos(j, side, idx, &found);

        if (found)
            b = j->bk[side][pos];
    }
    if (b != NULL)
        extra = arena_extra(j, &b->arena, recsz);
    else
        extra = sizeof(ibkt_t) + chunk_size_for(j, recsz);
    if (g == NULL)
        extra += sizeof(igrp_t) + tab_extra(&j->itab);
    rc = budget_check(j, extra);
    if (rc != 0)
        return rc;

    if (b == NULL) {
        rc = bk_create(j, side, idx, &b);
        if (rc != 0)
            return rc;
    }
    rc = arena_reserve(j, &b->arena, recsz);
    if (rc == 0 && g == NULL) {
        rc = grp_reserve(j);
        if (rc == 0)
            rc = tab_reserve(j, &j->itab);
    }
    if (rc != 0)
        return rc;

    r = ivl_store(j, b, side, key, ts, row, recsz);
    r->seq = j->seq++;
    g = ivl_link(j, r, h);
    j->stats.added[side]++;

    /* Eager: every partner present now, in its arrival order. */
    for (irec_t *o = g->head[1 - side]; o != NULL; o = o->next) {
        irec_t *a = side == DP_JOIN_SIDE_LEFT ? r : o;
        irec_t *c = side == DP_JOIN_SIDE_LEFT ? o : r;

        if (a->pub.event_ms + lower <= c->pub.event_ms &&
            c->pub.event_ms <= a->pub.event_ms + upper) {
            a->matched = 1;
            c->matched = 1;
            emit(j, &a->pub, &c->pub, &g->kh.key, max64(a->pub.event_ms, c->pub.event_ms), 0, 0);
        }
    }
    return DP_JOIN_OK;
}

static void bk_free(dp_join_t *j, ibkt_t *b, bool expire)
{
    int side = b->head != NULL ? b->head->side : 0;

    for (irec_t *r = b->head; r != NULL; r = r->bnext) {
        if (expire) {
            if (!r->matched && side == DP_JOIN_SIDE_LEFT && j->cfg.type == DP_JOIN_LEFT)
                emit(j, &r->pub, NULL, &r->jkey, r->pub.event_ms, 0, 0);
            else if (!r->matched)
                j->stats.dropped[side]++;
            j->stats.expired[side]++;
        }
        if (r->grp != NULL)
            ivl_unlink(j, r);
        j->stats.records--;
    }
    arena_release(j, &b->arena);
    j->state_bytes -= sizeof(*b);
    free(b);
}

static void ivl_advance(dp_join_t *j)
{
    for (int side = 0; side < 2; side++) {
        /* Left a is needed while a.ts + upper >= wm, right b while b.ts - lower >= wm. */
        int64_t reach = side == DP_JOIN_SIDE_LEFT ? j->cfg.upper_ms : -j->cfg.lower_ms;
        uint32_t n = 0;

        while (n < j->nbk[side] && j->wm > j->bk[side][n]->max_ts + reach) {
            bk_free(j, j->bk[side][n], true);
            n++;
        }
        if (n > 0) {
            memmove(j->bk[side], j->bk[side] + n, (j->nbk[side] - n) * sizeof(ibkt_t *));
            j->nbk[side] -= n;
        }
    }
}

/* ---- table joins --------------------------------------------------------- */

static void tent_free(dp_join_t *j, tent_t *e)
{
    j->state_bytes -= sizeof(*e) + e->cap;
    free(e);
}

/* Writes row and key into e (capacity checked by the caller). */
static void tent_fill(tent_t *e, uint64_t h, const dp_val_t *key, int64_t ts, const dp_row_t *row)
{
    uint8_t *end = rec_fill(&e->pub, (uint8_t *)(e + 1), row, ts);

    e->kh.hash = h;
    e->kh.key = key_copy(key, end);
}

/* Sets key's table value to row, or deletes it for a tombstone (no payload). */
static int tbl_put(dp_join_t *j, const dp_val_t *key, uint64_t h, int64_t ts, const dp_row_t *row,
                   size_t var, bool check)
{
    tent_t *e = (tent_t *)tab_find(&j->ttab, h, key);
    size_t need = A8(var + key_extra(key));
    size_t extra;
    tent_t *ne;
    int rc;

    if (row->payload == NULL || row->payload_len == 0) {
        if (e != NULL) {
            tab_remove(&j->ttab, &e->kh);
            tent_free(j, e);
            j->stats.tombstones++;
            j->stats.records--;
            if (j->ttab.count == 0)
                tab_dispose(j, &j->ttab);
        }
        return 0;
    }
    /* Same-size updates (the steady state) rewrite in place. */
    if (e != NULL && need <= e->cap && need * 4 >= e->cap) {
        tent_fill(e, h, key, ts, row);
        return 0;
    }
    extra = sizeof(tent_t) + need;
    if (e != NULL)
        extra = need > e->cap ? need - e->cap : 0;
    else
        extra += tab_extra(&j->ttab);
    if (check) {
        rc = budget_check(j, extra);
        if (rc != 0)
            return rc;
    }
    if (e == NULL) {
        rc = tab_reserve(j, &j->ttab);
        if (rc != 0)
            return rc;
    }
    ne = malloc(sizeof(*ne) + need);
    if (ne == NULL)
        return -ENOMEM;
    ne->cap = need;
    tent_fill(ne, h, key, ts, row);
    j->state_bytes += sizeof(*ne) + need;
    if (e != NULL) {
        tab_replace(&j->ttab, &e->kh, &ne->kh);
        tent_free(j, e);
    } else {
        tab_insert(&j->ttab, &ne->kh);
        j->stats.records++;
    }
    return 0;
}

static int tbl_add(dp_join_t *j, int side, const dp_val_t *key, uint64_t h, bool matchable,
                   int64_t ts, const dp_row_t *row, size_t var)
{
    int rc;

    if (side == DP_JOIN_SIDE_LEFT) {
        const tent_t *e = matchable ? (const tent_t *)tab_find(&j->ttab, h, key) : NULL;
        dp_join_rec_t v;

        rec_view(&v, row, ts);
        if (e != NULL)
            emit(j, &v, &e->pub, &e->kh.key, ts, 0, 0);
        else if (j->cfg.type == DP_JOIN_LEFT)
            emit(j, &v, NULL, key, ts, 0, 0);
        else
            j->stats.dropped[0]++;
        j->stats.added[0]++;
    } else {
        if (!matchable) {
            j->stats.dropped[1]++;
        } else {
            rc = tbl_put(j, key, h, ts, row, var, true);
            if (rc != 0)
                return rc;
            j->stats.added[1]++;
        }
    }
    if (!matchable) {
        j->stats.nokey[side]++;
        return DP_JOIN_NOKEY;
    }
    return DP_JOIN_OK;
}

/* ---- lifecycle ----------------------------------------------------------- */

static bool time_ok(int64_t t)
{
    return t >= -DP_JOIN_TIME_LIMIT_MS && t <= DP_JOIN_TIME_LIMIT_MS;
}

int dp_join_cfg_check(const dp_join_cfg_t *c)
{
    if (c == NULL)
        return -EINVAL;
    if ((int)c->type < (int)DP_JOIN_INNER || (int)c->type > (int)DP_JOIN_FULL)
        return -EINVAL;
    switch (c->kind) {
    case DP_JOIN_WINDOW:
        if (c->win == DP_JOIN_WIN_SESSION)
            return -ENOTSUP;
        if (c->win != DP_JOIN_WIN_TUMBLING && c->win != DP_JOIN_WIN_HOPPING)
            return -EINVAL;
        if (c->size_ms <= 0 || c->size_ms > DP_JOIN_TIME_LIMIT_MS)
            return -EINVAL;
        if (c->win == DP_JOIN_WIN_HOPPING) {
            if (c->slide_ms <= 0 || c->slide_ms > DP_JOIN_TIME_LIMIT_MS)
                return -EINVAL;
            if (c->slide_ms > c->size_ms)
                return -ENOTSUP; /* gaps between windows */
            if ((c->size_ms + c->slide_ms - 1) / c->slide_ms > DP_JOIN_MAX_HOPS)
                return -EINVAL;
        }
        return 0;
    case DP_JOIN_INTERVAL:
        if (c->type == DP_JOIN_FULL)
            return -ENOTSUP;
        if (!time_ok(c->lower_ms) || !time_ok(c->upper_ms) || c->lower_ms > c->upper_ms)
            return -EINVAL;
        if (c->bucket_ms < 0 || c->bucket_ms > DP_JOIN_TIME_LIMIT_MS)
            return -EINVAL;
        return 0;
    case DP_JOIN_TABLE:
        return c->type == DP_JOIN_FULL ? -ENOTSUP : 0;
    default:
        return -EINVAL;
    }
}

int dp_join_new(dp_join_t **jp, const dp_join_cfg_t *cfg, dp_join_emit_cb emit_cb, void *ctx)
{
    dp_join_t *j;
    int rc;

    assert(jp != NULL && emit_cb != NULL);
    *jp = NULL;
    rc = dp_join_cfg_check(cfg);
    if (rc != 0)
        return rc;
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return -ENOMEM;
    j->cfg.kind = cfg->kind;
    j->cfg.type = cfg->type;
    j->cfg.state_limit_bytes = cfg->state_limit_bytes;
    if (cfg->kind == DP_JOIN_WINDOW) {
        j->cfg.win = cfg->win;
        j->cfg.size_ms = cfg->size_ms;
        j->cfg.slide_ms = cfg->win == DP_JOIN_WIN_HOPPING ? cfg->slide_ms : cfg->size_ms;
    } else if (cfg->kind == DP_JOIN_INTERVAL) {
        j->cfg.lower_ms = cfg->lower_ms;
        j->cfg.upper_ms = cfg->upper_ms;
        j->cfg.bucket_ms = cfg->bucket_ms;
        if (j->cfg.bucket_ms == 0)
            j->cfg.bucket_ms = max64(1, (cfg->upper_ms - cfg->lower_ms) / 8);
    }
    /* Small budgets get small chunks, so one chunk is never a large share. */
    j->chunk_bytes = CHUNK_MAX;
    if (cfg->state_limit_bytes > 0 && cfg->state_limit_bytes / 64 < CHUNK_MAX)
        j->chunk_bytes =
            cfg->state_limit_bytes / 64 < CHUNK_MIN ? CHUNK_MIN : cfg->state_limit_bytes / 64;
    j->chunk_bytes = A8(j->chunk_bytes);
    j->emit = emit_cb;
    j->ctx = ctx;
    j->wm = INT64_MIN;
    *jp = j;
    return 0;
}

/* Drops all state without emitting (free, failed load). */
static void join_clear(dp_join_t *j)
{
    for (uint32_t i = 0; i < j->nwins; i++)
        win_free(j, j->wins[i]);
    j->nwins = 0;
    for (int s = 0; s < 2; s++) {
        for (uint32_t i = 0; i < j->nbk[s]; i++)
            bk_free(j, j->bk[s][i], false);
        j->nbk[s] = 0;
    }
    tab_dispose(j, &j->itab);
    for (uint32_t i = 0; i < j->ttab.cap; i++) {
        if (j->ttab.slots[i].e != NULL)
            tent_free(j, (tent_t *)j->ttab.slots[i].e);
    }
    tab_dispose(j, &j->ttab);
    assert(j->state_bytes == 0);
    j->state_bytes = 0;
    j->stats.records = 0;
    j->wm = INT64_MIN;
    j->seq = 0;
}

void dp_join_free(dp_join_t *j)
{
    if (j == NULL)
        return;
    assert(!j->emitting);
    join_clear(j);
    free(j->wins);
    free(j->bk[0]);
    free(j->bk[1]);
    while (j->cache != NULL) {
        jchunk_t *c = j->cache;

        j->cache = c->next;
        free(c);
    }
    while (j->gfree != NULL) {
        igrp_t *g = j->gfree;

        j->gfree = g->fnext;
        free(g);
    }
    free(j);
}

int dp_join_add(dp_join_t *j, int side, const dp_val_t *key, int64_t event_ms, const dp_row_t *rec)
{
    dp_val_t nullkey;
    bool matchable;
    uint64_t h;
    size_t var;

    assert(j != NULL && key != NULL && rec != NULL);
    assert(!j->emitting);
    assert(side == DP_JOIN_SIDE_LEFT || side == DP_JOIN_SIDE_RIGHT);
    assert(key->type != DP_VAL_ERR); /* the caller dead-letters these */
    assert(rec->nhdrs == 0 || rec->hdrs != NULL);
    if (!time_ok(event_ms))
        return -ERANGE;
    if (key->type == DP_VAL_ERR) {
        /* Without asserts, such a key just never matches (and is never saved). */
        nullkey = dp_val_null();
        key = &nullkey;
    }
    matchable = key_matchable(key);
    h = matchable ? key_hash(key) : 0;
    var = row_var_bytes(rec);
    switch (j->cfg.kind) {
    case DP_JOIN_WINDOW:
        return win_add(j, side, key, h, matchable, event_ms, rec, var);
    case DP_JOIN_INTERVAL:
        return ivl_add(j, side, key, h, matchable, event_ms, rec, var);
    default:
        return tbl_add(j, side, key, h, matchable, event_ms, rec, var);
    }
}

void dp_join_advance(dp_join_t *j, int64_t watermark_ms)
{
    assert(!j->emitting);
    if (watermark_ms <= j->wm)
        return;
    j->wm = watermark_ms;
    if (j->cfg.kind == DP_JOIN_WINDOW)
        win_advance(j);
    else if (j->cfg.kind == DP_JOIN_INTERVAL)
        ivl_advance(j);
}

int64_t dp_join_watermark(const dp_join_t *j)
{
    return j->wm;
}

size_t dp_join_state_bytes(const dp_join_t *j)
{
    return j->state_bytes;
}

const dp_join_stats_t *dp_join_stats(const dp_join_t *j)
{
    return &j->stats;
}

/* ---- checkpoints --------------------------------------------------------- */

#define REC_PAYLOAD 0x1
#define REC_KEY 0x2

static void ser_rec(dp_ser_w_t *w, const dp_join_rec_t *p)
{
    dp_ser_i64(w, p->event_ms);
    dp_ser_i64(w, p->ts_ms);
    dp_ser_i64(w, p->offset);
    dp_ser_u32(w, (uint32_t)p->partition);
    dp_ser_u8(w, (uint8_t)((p->payload ? REC_PAYLOAD : 0) | (p->key ? REC_KEY : 0)));
    if (p->payload != NULL)
        dp_ser_bytes(w, p->payload, p->payload_len);
    if (p->key != NULL)
        dp_ser_bytes(w, p->key, p->key_len);
    dp_ser_u32(w, p->nhdrs);
    for (uint32_t i = 0; i < p->nhdrs; i++) {
        dp_ser_bytes(w, p->hdrs[i].name, p->hdrs[i].name_len);
        dp_ser_u8(w, p->hdrs[i].val != NULL);
        if (p->hdrs[i].val != NULL)
            dp_ser_bytes(w, p->hdrs[i].val, p->hdrs[i].val_len);
    }
}

static void ser_win(const dp_join_t *j, dp_ser_w_t *w)
{
    dp_ser_u32(w, j->nwins);
    for (uint32_t i = 0; i < j->nwins; i++) {
        const jwin_t *win = j->wins[i];
        uint32_t ng = 0;

        for (const wgrp_t *g = win->first; g != NULL; g = g->onext)
            ng++;
        dp_ser_i64(w, win->start);
        dp_ser_u32(w, ng);
        for (const wgrp_t *g = win->first; g != NULL; g = g->onext) {
            dp_ser_u8(w, g == win->nullg);
            dp_ser_val(w, &g->kh.key);
            for (int s = 0; s < 2; s++) {
                uint32_t n = 0;

                for (const wrec_t *r = g->head[s]; r != NULL; r = r->next)
                    n++;
                dp_ser_u32(w, n);
                for (const wrec_t *r = g->head[s]; r != NULL; r = r->next)
                    ser_rec(w, &r->pub);
            }
        }
    }
}

static void ser_ivl(const dp_join_t *j, dp_ser_w_t *w)
{
    dp_ser_u64(w, j->seq);
    for (int s = 0; s < 2; s++) {
        dp_ser_u32(w, j->nbk[s]);
        for (uint32_t i = 0; i < j->nbk[s]; i++) {
            const ibkt_t *b = j->bk[s][i];
            uint32_t n = 0;

            for (const irec_t *r = b->head; r != NULL; r = r->bnext)
                n++;
            dp_ser_u32(w, n);
            for (const irec_t *r = b->head; r != NULL; r = r->bnext) {
                dp_ser_u64(w, r->seq);
                dp_ser_u8(w, r->matched);
                dp_ser_val(w, &r->jkey);
                ser_rec(w, &r->pub);
            }
        }
    }
}

static void ser_tbl(const dp_join_t *j, dp_ser_w_t *w)
{
    dp_ser_u32(w, j->ttab.count);
    for (uint32_t i = 0; i < j->ttab.cap; i++) {
        const tent_t *e = (const tent_t *)j->ttab.slots[i].e;

        if (e == NULL)
            continue;
        dp_ser_val(w, &e->kh.key);
        ser_rec(w, &e->pub);
    }
}

static void ser_cfg(const dp_join_cfg_t *c, dp_ser_w_t *w)
{
    dp_ser_u8(w, (uint8_t)c->kind);
    dp_ser_u8(w, (uint8_t)c->type);
    dp_ser_u8(w, (uint8_t)c->win);
    dp_ser_i64(w, c->size_ms);
    dp_ser_i64(w, c->slide_ms);
    dp_ser_i64(w, c->lower_ms);
    dp_ser_i64(w, c->upper_ms);
    dp_ser_i64(w, c->bucket_ms);
}

int dp_join_save(const dp_join_t *j, dp_ser_w_t *w)
{
    size_t at;
    uint64_t len;
    uint32_t crc;

    assert(!j->emitting);
    dp_ser_u32(w, SER_MAGIC);
    dp_ser_u32(w, SER_VERSION);
    at = w->len;
    dp_ser_u64(w, 0); /* body length and CRC32C, patched below */
    dp_ser_u32(w, 0);
    ser_cfg(&j->cfg, w);
    dp_ser_i64(w, j->wm);
    if (j->cfg.kind == DP_JOIN_WINDOW)
        ser_win(j, w);
    else if (j->cfg.kind == DP_JOIN_INTERVAL)
        ser_ivl(j, w);
    else
        ser_tbl(j, w);
    if (w->err != 0)
        return w->err;
    len = w->len - at - 12;
    crc = dp_crc32c(0, w->buf + at + 12, (size_t)len);
    for (int i = 0; i < 8; i++)
        w->buf[at + (size_t)i] = (uint8_t)(len >> (8 * i));
    for (int i = 0; i < 4; i++)
        w->buf[at + 8 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    return 0;
}

/* Header scratch for reading records. */
typedef struct ld {
    dp_ser_r_t *r;
    dp_hdr_t *h;
    uint32_t hcap;
    irec_t **recs; /* interval: every record read, for group order */
    size_t nrecs;
    size_t caprecs;
} ld_t;

/* Reads one record as a row borrowing the reader's bytes. */
static int de_rec(ld_t *ld, dp_row_t *row, int64_t *event_ms)
{
    dp_ser_r_t *r = ld->r;
    uint32_t n, nh;
    uint8_t flags;

    memset(row, 0, sizeof(*row));
    *event_ms = dp_ser_ri64(r);
    row->ts_ms = dp_ser_ri64(r);
    row->offset = dp_ser_ri64(r);
    row->partition = (int32_t)dp_ser_ru32(r);
    flags = dp_ser_ru8(r);
    if (flags & ~(REC_PAYLOAD | REC_KEY))
        return -EBADMSG;
    if (flags & REC_PAYLOAD) {
        row->payload = (const char *)dp_ser_rbytes(r, &n);
        row->payload_len = n;
    }
    if (flags & REC_KEY) {
        row->key = (const char *)dp_ser_rbytes(r, &n);
        row->key_len = n;
    }
    nh = dp_ser_ru32(r);
    if (r->err != 0 || nh > (r->len - r->off) / 5) /* a header takes at least 5 bytes */
        return -EBADMSG;
    if (nh > ld->hcap) {
        dp_hdr_t *h = realloc(ld->h, nh * sizeof(*h));

        if (h == NULL)
            return -ENOMEM;
        ld->h = h;
        ld->hcap = nh;
    }
    for (uint32_t i = 0; i < nh; i++) {
        uint8_t has;

        ld->h[i].name = (const char *)dp_ser_rbytes(r, &ld->h[i].name_len);
        has = dp_ser_ru8(r);
        ld->h[i].val = NULL;
        ld->h[i].val_len = 0;
        if (has > 1)
            return -EBADMSG;
        if (has)
            ld->h[i].val = (const char *)dp_ser_rbytes(r, &ld->h[i].val_len);
    }
    row->hdrs = nh > 0 ? ld->h : NULL;
    row->nhdrs = nh;
    if (r->err != 0 || !time_ok(*event_ms))
        return -EBADMSG;
    return 0;
}

static int de_win(dp_join_t *j, ld_t *ld)
{
    dp_ser_r_t *r = ld->r;
    uint32_t nw = dp_ser_ru32(r);
    int64_t prev = INT64_MIN;
    int rc;

    for (uint32_t i = 0; i < nw; i++) {
        int64_t start = dp_ser_ri64(r);
        uint32_t ng = dp_ser_ru32(r);
        jwin_t *w;

        if (r->err != 0 || !time_ok(start) || (i > 0 && start <= prev) ||
            start % j->cfg.slide_ms != 0 || start + j->cfg.size_ms <= j->wm)
            return -EBADMSG;
        prev = start;
        rc = win_create(j, start, &w);
        if (rc != 0)
            return rc;
        for (uint32_t gi = 0; gi < ng; gi++) {
            uint8_t isnull = dp_ser_ru8(r);
            dp_val_t key = dp_ser_rval(r);
            bool matchable = key_matchable(&key);
            uint64_t h = matchable ? key_hash(&key) : 0;
            wgrp_t *g = NULL;
            uint32_t total = 0;

            if (r->err != 0 || isnull > 1 || matchable == (isnull == 1) || key.type == DP_VAL_ERR)
                return -EBADMSG;
            if ((matchable && tab_find(&w->tab, h, &key) != NULL) ||
                (!matchable && w->nullg != NULL))
                return -EBADMSG;
            for (int s = 0; s < 2; s++) {
                uint32_t n = dp_ser_ru32(r);

                if (r->err != 0)
                    return -EBADMSG;
                if (n > 0 && !matchable &&
                    !(s == 0 ? j->cfg.type != DP_JOIN_INNER : j->cfg.type == DP_JOIN_FULL))
                    return -EBADMSG;
                for (uint32_t k = 0; k < n; k++) {
                    dp_row_t row;
                    int64_t ts;
                    size_t recsz;

                    rc = de_rec(ld, &row, &ts);
                    if (rc != 0)
                        return rc;
                    if (ts < w->start || ts >= w->end)
                        return -EBADMSG;
                    recsz = A8(sizeof(wrec_t) + row_var_bytes(&row));
                    rc = win_reserve(j, w, g, matchable, recsz + (g ? 0 : wgrp_bytes(&key)));
                    if (rc != 0)
                        return rc;
                    g = win_commit(j, w, g, s, &key, h, matchable, ts, &row, recsz);
                    total++;
                }
            }
            if (total == 0)
                return -EBADMSG;
        }
    }
    return 0;
}

static int cmp_seq(const void *a, const void *b)
{
    const irec_t *x = *(irec_t *const *)a;
    const irec_t *y = *(irec_t *const *)b;

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int de_ivl(dp_join_t *j, ld_t *ld)
{
    dp_ser_r_t *r = ld->r;
    uint64_t seq = dp_ser_ru64(r);
    int rc;

    for (int s = 0; s < 2; s++) {
        uint32_t nb = dp_ser_ru32(r);
        int64_t prev = INT64_MIN;

        for (uint32_t i = 0; i < nb; i++) {
            uint32_t n = dp_ser_ru32(r);
            ibkt_t *b = NULL;

            if (r->err != 0 || n == 0)
                return -EBADMSG;
            for (uint32_t k = 0; k < n; k++) {
                uint64_t rseq = dp_ser_ru64(r);
                uint8_t matched = dp_ser_ru8(r);
                dp_val_t key = dp_ser_rval(r);
                dp_row_t row;
                int64_t ts, idx;
                size_t recsz;
                irec_t *rec;

                rc = de_rec(ld, &row, &ts);
                if (rc != 0)
                    return rc;
                idx = floor_div(ts, j->cfg.bucket_ms);
                if (matched > 1 || !key_matchable(&key) || rseq >= seq ||
                    (b == NULL && i > 0 && idx <= prev) || (b != NULL && idx != b->idx))
                    return -EBADMSG;
                if (b == NULL) {
                    rc = bk_create(j, s, idx, &b);
                    if (rc != 0)
                        return rc;
                    prev = idx;
                }
                recsz = A8(sizeof(irec_t) + row_var_bytes(&row) + key_extra(&key));
                rc = arena_reserve(j, &b->arena, recsz);
                if (rc != 0)
                    return rc;
                if (ld->nrecs == ld->caprecs) {
                    size_t cap = ld->caprecs ? ld->caprecs * 2 : 256;
                    irec_t **nr = realloc(ld->recs, cap * sizeof(*nr));

                    if (nr == NULL)
                        return -ENOMEM;
                    ld->recs = nr;
                    ld->caprecs = cap;
                }
                rec = ivl_store(j, b, s, &key, ts, &row, recsz);
                rec->seq = rseq;
                rec->matched = matched;
                ld->recs[ld->nrecs++] = rec;
            }
        }
    }
    if (r->err != 0)
        return -EBADMSG;
    /* Groups list records in arrival order, as they were built. */
    if (ld->nrecs > 0)
        qsort(ld->recs, ld->nrecs, sizeof(*ld->recs), cmp_seq);
    for (size_t i = 0; i < ld->nrecs; i++) {
        irec_t *rec = ld->recs[i];

        if (i > 0 && ld->recs[i - 1]->seq == rec->seq)
            return -EBADMSG;
        rc = grp_reserve(j);
        if (rc == 0)
            rc = tab_reserve(j, &j->itab);
        if (rc != 0)
            return rc;
        ivl_link(j, rec, key_hash(&rec->jkey));
    }
    j->seq = seq;
    return 0;
}

static int de_tbl(dp_join_t *j, ld_t *ld)
{
    dp_ser_r_t *r = ld->r;
    uint32_t n = dp_ser_ru32(r);
    int rc;

    for (uint32_t i = 0; i < n && r->err == 0; i++) {
        dp_val_t key = dp_ser_rval(r);
        dp_row_t row;
        int64_t ts;
        uint64_t h;

        rc = de_rec(ld, &row, &ts);
        if (rc != 0)
            return rc;
        if (!key_matchable(&key) || row.payload == NULL || row.payload_len == 0)
            return -EBADMSG;
        h = key_hash(&key);
        if (tab_find(&j->ttab, h, &key) != NULL)
            return -EBADMSG;
        rc = tbl_put(j, &key, h, ts, &row, row_var_bytes(&row), false);
        if (rc != 0)
            return rc;
    }
    return r->err;
}

static int de_body(dp_join_t *j, ld_t *ld)
{
    dp_ser_r_t *r = ld->r;
    dp_join_cfg_t c = {0};

    c.kind = (dp_join_kind_t)dp_ser_ru8(r);
    c.type = (dp_join_type_t)dp_ser_ru8(r);
    c.win = (dp_join_win_t)dp_ser_ru8(r);
    c.size_ms = dp_ser_ri64(r);
    c.slide_ms = dp_ser_ri64(r);
    c.lower_ms = dp_ser_ri64(r);
    c.upper_ms = dp_ser_ri64(r);
    c.bucket_ms = dp_ser_ri64(r);
    j->wm = dp_ser_ri64(r);
    if (r->err != 0 || c.kind != j->cfg.kind || c.type != j->cfg.type || c.win != j->cfg.win ||
        c.size_ms != j->cfg.size_ms || c.slide_ms != j->cfg.slide_ms ||
        c.lower_ms != j->cfg.lower_ms || c.upper_ms != j->cfg.upper_ms ||
        c.bucket_ms != j->cfg.bucket_ms)
        return -EBADMSG;
    if (j->cfg.kind == DP_JOIN_WINDOW)
        return de_win(j, ld);
    if (j->cfg.kind == DP_JOIN_INTERVAL)
        return de_ivl(j, ld);
    return de_tbl(j, ld);
}

int dp_join_load(dp_join_t *j, dp_ser_r_t *r)
{
    uint32_t magic, version, crc;
    uint64_t len;
    const uint8_t *body;
    dp_ser_r_t br;
    ld_t ld = {.r = &br};
    int rc;

    assert(!j->emitting);
    if (j->state_bytes != 0 || j->stats.records != 0 || j->seq != 0 || j->wm != INT64_MIN)
        return -EINVAL;
    magic = dp_ser_ru32(r);
    version = dp_ser_ru32(r);
    len = dp_ser_ru64(r);
    crc = dp_ser_ru32(r);
    if (r->err != 0 || magic != SER_MAGIC || version != SER_VERSION || len > r->len - r->off)
        return -EBADMSG;
    body = dp_ser_get(r, (size_t)len);
    if (body == NULL || dp_crc32c(0, body, (size_t)len) != crc)
        return -EBADMSG;
    dp_ser_rinit(&br, body, (size_t)len);
    rc = de_body(j, &ld);
    if (rc == 0 && (br.err != 0 || br.off != br.len))
        rc = -EBADMSG;
    free(ld.h);
    free(ld.recs);
    if (rc != 0) {
        /* Records read but not yet linked to groups are freed with their buckets. */
        join_clear(j);
        return rc == -ENOMEM ? -ENOMEM : -EBADMSG;
    }
    return 0;
}
