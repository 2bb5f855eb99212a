/* SPDX-License-Identifier: Apache-2.0 */
/* dp_group: classic consumer-group coordinator for one store worker. Groups,
 * members, committed offsets and commit slots come from pools sized at open;
 * offsets are appended to an internal dp_log partition and replayed at open.
 * Design and differences from Kafka: docs/internals/store-groups.md. */
#include "dp_group.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dp_batch.h"
#include "dp_log.h"

/* Kafka error codes dp_kproto.h does not name. */
#define KERR_OFFSET_METADATA_TOO_LARGE 12
#define KERR_INVALID_GROUP_ID 24
#define KERR_INVALID_COMMIT_OFFSET_SIZE 28

/* Bytes a record adds around its key and value (length, attributes,
 * timestamp and offset deltas, key/value lengths, header count). */
#define REC_OVERHEAD 24
/* Records per snapshot batch. */
#define SNAP_CHUNK_RECS 4096
/* Largest offset-log batch (as the log's batch_bytes_max). */
#define BATCH_BYTES_MAX ((1u << 20) + DP_BATCH_LOG_OVERHEAD)
/* Compaction starts once the log spans more segments than this. */
#define COMPACT_SEGMENTS 4
/* Retry delay when the retention scan finds no free commit slot. */
#define RETENTION_RETRY_MS 1000
/* Record formats: Kafka's OffsetCommitKey v1 and OffsetCommitValue v3. */
#define KEY_VERSION 1
#define VALUE_VERSION 3
/* The part of a record key that is not group or topic bytes. */
#define KEY_FIXED_BYTES 10
/* The part of a record value that is not metadata bytes. */
#define VALUE_FIXED_BYTES 24

/* Group states (Kafka's GroupState). Dead is only seen by a group being
 * freed: a freed group is simply absent. */
enum { GS_EMPTY, GS_PREPARING, GS_COMPLETING, GS_STABLE, GS_DEAD };

/* dp_group_call_t.where: what holds the call. */
enum {
    W_NONE = 0, /* not held: completed (cb ran) or never handed in */
    W_JOIN,     /* parked JoinGroup, owner = member */
    W_SYNC,     /* parked SyncGroup, owner = member */
    W_QUEUED,   /* OffsetCommit waiting for a commit slot or a compaction */
    W_COMMIT,   /* OffsetCommit whose append is in flight, owner = slot */
    W_DONE,     /* answered; its callback runs at the next drain */
};

/* Commit slot kinds. */
enum { SLOT_COMMIT = 1, SLOT_EXPIRE };

typedef struct member member_t;
typedef struct grp grp_t;

/* A member, or a pending member (an id handed out with MEMBER_ID_REQUIRED
 * whose first join has not arrived yet). */
struct member {
    member_t *prev; /* group list in join order; next is also the free list */
    member_t *next;
    grp_t *g;
    dp_group_call_t *join_call; /* parked JoinGroup (NULL once answered/cancelled) */
    dp_group_call_t *sync_call; /* parked SyncGroup */
    uint8_t *protos;            /* per protocol: u16 name len, name, u32 meta len, meta */
    uint32_t protos_len;
    uint32_t nprotos;
    uint8_t *assign; /* assignment from the leader's SyncGroup */
    uint32_t assign_len;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    uint64_t deadline_ms; /* session expiry, unless kept alive (below) */
    bool pending;         /* id handed out, not joined yet */
    /* In the join set of the rebalance in progress. Stays set when the
     * parked call is cancelled, as Kafka counts a member whose connection
     * dropped as rejoined; such a member then fails to sync and is removed. */
    bool awaiting_join;
    bool pending_sync; /* joined the current generation, no SyncGroup yet */
    uint16_t id_len;
    char id[DP_GROUP_MEMBER_ID_BYTES_MAX];
};

struct grp {
    uint32_t hnext; /* hash chain or free list (index + 1; 0 ends) */
    bool used;
    uint8_t state;
    bool initial_delay;    /* join phase is group.initial.rebalance.delay.ms */
    bool new_member_added; /* a member joined during the initial delay */
    uint16_t id_len;
    int16_t ptype_len; /* -1: none */
    int16_t pname_len; /* -1: none */
    int32_t generation;
    member_t *head;
    member_t *tail;
    member_t *leader;
    uint32_t nmembers;      /* joined members */
    uint32_t npending;      /* pending members */
    uint32_t nawaiting;     /* members with awaiting_join */
    uint32_t npending_sync; /* members with pending_sync */
    uint64_t join_deadline_ms;
    uint64_t join_remaining_ms; /* initial delay: how much longer it may extend */
    uint64_t sync_deadline_ms;  /* 0: disarmed */
    uint32_t ents;              /* first committed offset (index + 1) */
    uint32_t nents;
    uint32_t inflight;      /* offset commits of this group being appended */
    int64_t empty_since_ms; /* wall clock; 0 when unknown (replayed) */
    char id[DP_GROUP_ID_BYTES_MAX];
    char ptype[DP_GROUP_PROTOCOL_NAME_BYTES_MAX];
    char pname[DP_GROUP_PROTOCOL_NAME_BYTES_MAX];
};

/* One committed offset; its metadata lives in mgr->ent_meta. */
typedef struct ent {
    uint32_t hnext; /* hash chain or free list (index + 1) */
    uint32_t gprev; /* group's list (index + 1) */
    uint32_t gnext;
    uint32_t group; /* index */
    uint32_t topic; /* index */
    int32_t partition;
    int32_t leader_epoch;
    int32_t meta_len;
    int64_t offset;
    int64_t commit_ms; /* wall clock */
    bool used;
} ent_t;

/* An interned topic name, shared by the offsets that reference it. */
typedef struct topic {
    uint32_t hnext; /* hash chain or free list (index + 1) */
    uint32_t refs;
    uint32_t stamp; /* OffsetFetch all-topics grouping */
    uint32_t slot;
    uint16_t len;
    char name[DP_GROUP_TOPIC_BYTES_MAX];
} topic_t;

/* An offset-log append in flight: an OffsetCommit or a retention batch. */
typedef struct slot {
    dp_log_append_t app;
    dp_group_mgr_t *m;
    struct slot *next_free;
    dp_group_call_t *call; /* NULL once cancelled */
    grp_t *g;
    uint8_t *buf;      /* cfg.commit_buf_bytes, preallocated */
    uint8_t *big;      /* heap batch for a commit that does not fit buf */
    int16_t *errs;     /* per request partition: DP_KPROTO_MAX_ENTRIES */
    uint32_t len;      /* batch bytes */
    uint32_t res_ents; /* offset-table capacity reserved by this commit */
    uint32_t res_topics;
    int kind;
} slot_t;

struct dp_group_mgr {
    dp_group_config_t cfg;
    dp_ring_t *ring;
    dp_log_t *log;
    uint32_t batch_max;

    grp_t *groups;
    uint32_t *gbuckets;
    uint32_t gmask;
    uint32_t gfree; /* index + 1 */

    member_t *members;
    member_t *mfree;
    uint64_t meta_bytes; /* member protocols + assignments held */

    ent_t *ents;
    char *ent_meta;
    uint32_t *ebuckets;
    uint32_t emask;
    uint32_t efree;
    uint32_t ents_used;
    uint32_t ents_reserved;

    topic_t *topics;
    uint32_t *tbuckets;
    uint32_t tmask;
    uint32_t tfree;
    uint32_t topics_used;
    uint32_t topics_reserved;

    slot_t *slots;
    slot_t *sfree;
    uint32_t slots_busy;

    dp_group_call_t *qhead; /* commits waiting for a slot */
    dp_group_call_t *qtail;
    dp_group_call_t *dhead; /* answered, callback pending */
    dp_group_call_t *dtail;
    bool draining;
    bool closing;

    /* Scratch for work that completes synchronously. */
    uint8_t *kv; /* batch_max: record keys and values; replay read buffer */
    dp_batch_build_rec_t *recs;
    uint32_t *victims;
    uint32_t recs_cap;
    dp_kjoin_member_t *jmembers;
    dp_kcommit_tresp_t *ctopics;
    dp_kpart_err_t *cparts;
    dp_koffset_fetch_tresp_t *ftopics;
    dp_koffset_fetch_presp_t *fparts;
    uint32_t ftopics_cap;
    uint32_t fparts_cap;
    int16_t *lerrs;
    uint32_t fetch_stamp;

    /* Offset-log compaction. */
    bool compact_wanted;
    uint64_t bytes_since_snap;
    uint64_t snap_bytes_last;
    uint8_t *snap_buf;
    dp_log_append_t *snap_apps; /* non-NULL while a snapshot is in flight */
    uint32_t snap_n;
    uint32_t snap_done;
    bool snap_failed;
    uint64_t snap_bytes;

    uint64_t now_ms;
    uint64_t next_retention_ms;
    int64_t (*wall_ms)(void); /* wall clock for commit timestamps (tests swap it) */
    uint64_t rng;
    dp_group_stats_t stats;
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t wall_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A request string made safe to read: invalid lengths become null. */
static dp_kstr_t kstr_safe(dp_kstr_t s)
{
    if (s.len < 0 || (s.ptr == NULL && s.len > 0)) {
        s.ptr = NULL;
        s.len = -1;
    }
    return s;
}

/* Like kstr_safe, with null read as "" (for non-nullable fields). */
static dp_kstr_t kstr_nn(dp_kstr_t s)
{
    s = kstr_safe(s);
    if (s.len < 0) {
        s.ptr = "";
        s.len = 0;
    }
    return s;
}

static dp_kbytes_t kbytes_nn(dp_kbytes_t b)
{
    if (b.len < 0 || (b.ptr == NULL && b.len > 0)) {
        b.ptr = NULL;
        b.len = 0;
    }
    return b;
}

/* True when s (non-null) holds exactly the n bytes at p. */
static bool kstr_is(dp_kstr_t s, const char *p, int32_t n)
{
    s = kstr_safe(s);
    if (s.len < 0 || n < 0 || s.len != n)
        return false;
    return n == 0 || memcmp(s.ptr, p, (size_t)n) == 0;
}

static dp_kstr_t kstr_of(const char *p, int32_t n)
{
    dp_kstr_t s = {p, n};

    return s;
}

static uint32_t hash_bytes(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 16777619u;
    }
    return h;
}

#define HASH_SEED 2166136261u

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 16;

    while (p < n && p < (1u << 30))
        p <<= 1;
    return p;
}

static uint64_t rng_next(dp_group_mgr_t *m)
{
    uint64_t z = (m->rng += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Big-endian helpers for the record formats. */
static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)get16(p) << 16) | get16(p + 2);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint64_t get64(const uint8_t *p)
{
    return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

/* ---- call lists and completion ------------------------------------------ */

static void list_push(dp_group_call_t **head, dp_group_call_t **tail, dp_group_call_t *c)
{
    c->next = NULL;
    c->prev = *tail;
    if (*tail != NULL)
        (*tail)->next = c;
    else
        *head = c;
    *tail = c;
}

static void list_unlink(dp_group_call_t **head, dp_group_call_t **tail, dp_group_call_t *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        *tail = c->prev;
    c->prev = c->next = NULL;
}

/* Marks `call` answered (its frame is in call->w): the callback runs at the
 * next drain, never in the middle of a state change. */
static void finish(dp_group_mgr_t *m, dp_group_call_t *call, int rc)
{
    call->result = rc;
    call->owner = NULL;
    call->where = W_DONE;
    list_push(&m->dhead, &m->dtail, call);
}

/* Runs pending callbacks. A callback may re-enter dp_group_handle; the
 * nested call only queues and this loop runs what it adds. */
static void drain(dp_group_mgr_t *m)
{
    if (m->draining)
        return;
    m->draining = true;
    while (m->dhead != NULL) {
        dp_group_call_t *c = m->dhead;

        list_unlink(&m->dhead, &m->dtail, c);
        c->where = W_NONE;
        c->cb(c);
    }
    m->draining = false;
}

/* ---- response encoders ---------------------------------------------------- */

static const dp_kstr_t null_str = {NULL, -1};
static const dp_kstr_t empty_str = {"", 0};

/* Member metadata for the group's chosen protocol (empty if absent). */
static dp_kbytes_t member_meta_for(const member_t *mb, const char *name, int32_t len);

/* JoinGroup answer. With `g` the answer is a success for member `mb` of the
 * current generation (the member list when `with_members`); without, an
 * error echoing `member_id`. */
static void join_reply(dp_group_mgr_t *m, dp_group_call_t *call, int16_t err, const grp_t *g,
                       const member_t *mb, dp_kstr_t member_id, bool with_members)
{
    const dp_kreq_hdr_t *h = &call->req->hdr;
    dp_kresp_join_group_t r;
    int rc;

    memset(&r, 0, sizeof(r));
    r.error_code = err;
    if (g != NULL && mb != NULL) {
        r.generation_id = g->generation;
        r.protocol_type = g->ptype_len >= 0 ? kstr_of(g->ptype, g->ptype_len) : null_str;
        r.protocol_name = kstr_of(g->pname, g->pname_len < 0 ? 0 : g->pname_len);
        r.leader = g->leader != NULL ? kstr_of(g->leader->id, g->leader->id_len) : empty_str;
        r.member_id = kstr_of(mb->id, mb->id_len);
        if (with_members) {
            int32_t n = 0;

            for (const member_t *x = g->head; x != NULL; x = x->next) {
                if (x->pending)
                    continue;
                m->jmembers[n].member_id = kstr_of(x->id, x->id_len);
                m->jmembers[n].group_instance_id = null_str;
                m->jmembers[n].metadata = member_meta_for(x, g->pname, g->pname_len);
                n++;
            }
            r.member_count = n;
            r.members = m->jmembers;
        }
    } else {
        r.generation_id = -1;
        /* Nullable only from v7; older versions send "". */
        r.protocol_type = null_str;
        r.protocol_name = h->api_version >= 7 ? null_str : empty_str;
        r.leader = empty_str;
        r.member_id = kstr_nn(member_id);
    }
    rc = dp_kproto_join_group_resp(call->w, h->api_version, h->correlation_id, &r);
    finish(m, call, rc);
}

static void sync_reply(dp_group_mgr_t *m, dp_group_call_t *call, int16_t err, const grp_t *g,
                       const member_t *mb)
{
    const dp_kreq_hdr_t *h = &call->req->hdr;
    dp_kbytes_t a = {NULL, 0};
    dp_kstr_t pt = null_str, pn = null_str;
    int rc;

    if (err == DP_KERR_NONE && g != NULL) {
        if (g->ptype_len >= 0)
            pt = kstr_of(g->ptype, g->ptype_len);
        if (g->pname_len >= 0)
            pn = kstr_of(g->pname, g->pname_len);
        if (mb != NULL && mb->assign != NULL) {
            a.ptr = mb->assign;
            a.len = (int32_t)mb->assign_len;
        }
    }
    rc = dp_kproto_sync_group_resp(call->w, h->api_version, h->correlation_id, 0, err, pt, pn, a);
    finish(m, call, rc);
}

static void heartbeat_reply(dp_group_mgr_t *m, dp_group_call_t *call, int16_t err)
{
    const dp_kreq_hdr_t *h = &call->req->hdr;

    finish(m, call, dp_kproto_heartbeat_resp(call->w, h->api_version, h->correlation_id, 0, err));
}

/* LeaveGroup answer: `errs` holds one error per request member (v3+), or
 * NULL with `top` set for a request-level error. */
static void leave_reply(dp_group_mgr_t *m, dp_group_call_t *call, int16_t top, const int16_t *errs)
{
    const dp_kreq_hdr_t *h = &call->req->hdr;
    const dp_kreq_leave_group_t *b = &call->req->u.leave_group;
    int32_t n = errs != NULL && b->member_count > 0 ? b->member_count : 0;
    bool uniform = true;
    dp_kresp_mark_t mk;
    dp_kwr_t *w = call->w;
    int rc;

    if (h->api_version <= 2) {
        /* One member and no member list: its error is the request's. */
        if (top == DP_KERR_NONE && n > 0)
            top = errs[0];
        rc = dp_kproto_leave_group_resp(w, h->api_version, h->correlation_id, 0, top, 0, NULL, 0);
        goto out;
    }
    for (int32_t i = 1; i < n; i++)
        if (errs[i] != errs[0])
            uniform = false;
    if (uniform) {
        rc = dp_kproto_leave_group_resp(w, h->api_version, h->correlation_id, 0, top, n, b->members,
                                        n > 0 ? errs[0] : DP_KERR_NONE);
        goto out;
    }
    /* Mixed per-member errors: the codec takes one error for all members,
     * so write the v3+ body here, field for field as dp_kproto does. */
    dp_kproto_resp_begin(w, DP_KAPI_LEAVE_GROUP, h->api_version, h->correlation_id, &mk);
    dp_kwr_i32(w, 0);
    dp_kwr_i16(w, top);
    dp_kwr_arrlen(w, n, mk.flexible);
    for (int32_t i = 0; i < n; i++) {
        dp_kwr_str_f(w, kstr_nn(b->members[i].member_id), mk.flexible);
        dp_kwr_str_f(w, kstr_safe(b->members[i].group_instance_id), mk.flexible);
        dp_kwr_i16(w, errs[i]);
        if (mk.flexible)
            dp_kwr_tags_empty(w);
    }
    if (mk.flexible)
        dp_kwr_tags_empty(w);
    rc = dp_kproto_resp_end(w, &mk, 0);
out:
    finish(m, call, rc);
}

/* Valid partition list of a commit topic (0 for a malformed one). */
static int32_t commit_nparts(const dp_kcommit_topic_t *t)
{
    return t->part_count > 0 && t->parts != NULL ? t->part_count : 0;
}

static int32_t commit_ntopics(const dp_kreq_offset_commit_t *b)
{
    return b->topic_count > 0 && b->topics != NULL ? b->topic_count : 0;
}

/* Number of partitions in an OffsetCommit, or -1 when over the codec's
 * entry limit (only hand-built requests can be). */
static int32_t commit_total(const dp_kreq_offset_commit_t *b)
{
    int64_t n = 0, nt = commit_ntopics(b);

    for (int32_t i = 0; i < nt; i++)
        n += commit_nparts(&b->topics[i]);
    return n + nt > DP_KPROTO_MAX_ENTRIES ? -1 : (int32_t)n;
}

/* OffsetCommit answer: per-partition errors from `errs`, or `uniform`. */
static void commit_reply(dp_group_mgr_t *m, dp_group_call_t *call, const int16_t *errs,
                         int16_t uniform)
{
    const dp_kreq_hdr_t *h = &call->req->hdr;
    const dp_kreq_offset_commit_t *b = &call->req->u.offset_commit;
    int32_t nt = 0, np = 0, k = 0;
    int rc;

    if (commit_total(b) >= 0) {
        for (int32_t i = 0; i < commit_ntopics(b); i++) {
            const dp_kcommit_topic_t *t = &b->topics[i];

            m->ctopics[nt].name = kstr_nn(t->name);
            m->ctopics[nt].part_count = commit_nparts(t);
            m->ctopics[nt].parts = &m->cparts[np];
            for (int32_t j = 0; j < commit_nparts(t); j++) {
                m->cparts[np].partition = t->parts[j].partition;
                m->cparts[np].error_code = errs != NULL ? errs[k] : uniform;
                np++;
                k++;
            }
            nt++;
        }
    }
    rc =
        dp_kproto_offset_commit_resp(call->w, h->api_version, h->correlation_id, 0, nt, m->ctopics);
    finish(m, call, rc);
}

/* ---- groups ---------------------------------------------------------------- */

static uint32_t group_hash(const dp_group_mgr_t *m, const char *p, size_t n)
{
    return hash_bytes(HASH_SEED, p, n) & m->gmask;
}

static grp_t *group_find(dp_group_mgr_t *m, dp_kstr_t id)
{
    id = kstr_safe(id);
    if (id.len < 0 || id.len > DP_GROUP_ID_BYTES_MAX)
        return NULL;
    for (uint32_t i = m->gbuckets[group_hash(m, id.ptr, (size_t)id.len)]; i != 0;) {
        grp_t *g = &m->groups[i - 1];

        if (kstr_is(id, g->id, g->id_len))
            return g;
        i = g->hnext;
    }
    return NULL;
}

/* True when the group holds nothing worth keeping. */
static bool group_idle(const grp_t *g)
{
    return g->state == GS_EMPTY && g->nmembers == 0 && g->npending == 0 && g->nents == 0 &&
           g->inflight == 0;
}

static void group_free(dp_group_mgr_t *m, grp_t *g)
{
    uint32_t idx = (uint32_t)(g - m->groups), *pp;

    assert(g->used && group_idle(g));
    g->state = GS_DEAD;
    pp = &m->gbuckets[group_hash(m, g->id, g->id_len)];
    while (*pp != idx + 1)
        pp = &m->groups[*pp - 1].hnext;
    *pp = g->hnext;
    memset(g, 0, sizeof(*g));
    g->hnext = m->gfree;
    m->gfree = idx + 1;
    m->stats.groups--;
}

/* Frees every idle group; returns how many. */
static uint32_t groups_sweep(dp_group_mgr_t *m)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < m->cfg.groups_max; i++) {
        if (m->groups[i].used && group_idle(&m->groups[i])) {
            group_free(m, &m->groups[i]);
            n++;
        }
    }
    return n;
}

static grp_t *group_create(dp_group_mgr_t *m, dp_kstr_t id)
{
    uint32_t idx, h;
    grp_t *g;

    id = kstr_safe(id);
    if (id.len < 0 || id.len > DP_GROUP_ID_BYTES_MAX)
        return NULL;
    if (m->gfree == 0)
        groups_sweep(m);
    if (m->gfree == 0)
        return NULL;
    idx = m->gfree - 1;
    g = &m->groups[idx];
    m->gfree = g->hnext;
    memset(g, 0, sizeof(*g));
    g->used = true;
    g->state = GS_EMPTY;
    g->id_len = (uint16_t)id.len;
    if (id.len > 0)
        memcpy(g->id, id.ptr, (size_t)id.len);
    g->ptype_len = -1;
    g->pname_len = -1;
    g->empty_since_ms = m->wall_ms();
    h = group_hash(m, g->id, g->id_len);
    g->hnext = m->gbuckets[h];
    m->gbuckets[h] = idx + 1;
    m->stats.groups++;
    return g;
}

/* Kafka's isValidGroupId: non-null, and non-empty except for offsets. */
static bool group_id_ok(dp_kstr_t id, bool allow_empty)
{
    id = kstr_safe(id);
    if (id.len < 0 || id.len > DP_GROUP_ID_BYTES_MAX)
        return false;
    return allow_empty || id.len > 0;
}

/* ---- members ----------------------------------------------------------- */

static member_t *member_find(grp_t *g, dp_kstr_t id)
{
    id = kstr_safe(id);
    if (id.len <= 0)
        return NULL;
    for (member_t *mb = g->head; mb != NULL; mb = mb->next)
        if (kstr_is(id, mb->id, mb->id_len))
            return mb;
    return NULL;
}

static member_t *first_joined(grp_t *g)
{
    for (member_t *mb = g->head; mb != NULL; mb = mb->next)
        if (!mb->pending)
            return mb;
    return NULL;
}

static void member_link_tail(grp_t *g, member_t *mb)
{
    mb->next = NULL;
    mb->prev = g->tail;
    if (g->tail != NULL)
        g->tail->next = mb;
    else
        g->head = mb;
    g->tail = mb;
}

static void member_unlink_list(grp_t *g, member_t *mb)
{
    if (mb->prev != NULL)
        mb->prev->next = mb->next;
    else
        g->head = mb->next;
    if (mb->next != NULL)
        mb->next->prev = mb->prev;
    else
        g->tail = mb->prev;
    mb->prev = mb->next = NULL;
}

/* Iterates a member's stored protocols; *pos starts at 0. */
static bool proto_next(const member_t *mb, uint32_t *pos, dp_kstr_t *name, dp_kbytes_t *meta)
{
    uint32_t p = *pos, nl, ml;

    if (p + 2 > mb->protos_len)
        return false;
    nl = get16(mb->protos + p);
    p += 2;
    name->ptr = (const char *)mb->protos + p;
    name->len = (int32_t)nl;
    p += nl;
    ml = get32(mb->protos + p);
    p += 4;
    meta->ptr = mb->protos + p;
    meta->len = (int32_t)ml;
    p += ml;
    *pos = p;
    return true;
}

static bool member_supports(const member_t *mb, dp_kstr_t name)
{
    uint32_t pos = 0;
    dp_kstr_t n;
    dp_kbytes_t md;

    while (proto_next(mb, &pos, &n, &md))
        if (dp_kstr_eq(n, name))
            return true;
    return false;
}

static dp_kbytes_t member_meta_for(const member_t *mb, const char *name, int32_t len)
{
    uint32_t pos = 0;
    dp_kstr_t n;
    dp_kbytes_t md, none = {NULL, 0};

    while (proto_next(mb, &pos, &n, &md))
        if (len >= 0 && kstr_is(n, name, len))
            return md;
    return none;
}

/* True when the member's stored protocols equal the request's, in order. */
static bool member_matches(const member_t *mb, const dp_kreq_join_group_t *b)
{
    uint32_t pos = 0;
    dp_kstr_t n;
    dp_kbytes_t md;

    if (b->protocol_count < 0 || (uint32_t)b->protocol_count != mb->nprotos)
        return false;
    for (int32_t i = 0; i < b->protocol_count; i++) {
        dp_kbytes_t rb = kbytes_nn(b->protocols[i].metadata);

        if (!proto_next(mb, &pos, &n, &md) || !dp_kstr_eq(n, kstr_nn(b->protocols[i].name)))
            return false;
        if (md.len != rb.len || (rb.len > 0 && memcmp(md.ptr, rb.ptr, (size_t)rb.len) != 0))
            return false;
    }
    return true;
}

/* Bytes the request's protocols take stored (see member_t.protos). */
static uint64_t protos_size(const dp_kreq_join_group_t *b)
{
    uint64_t n = 0;

    for (int32_t i = 0; i < b->protocol_count; i++)
        n += 6 + (uint64_t)kstr_nn(b->protocols[i].name).len +
             (uint64_t)kbytes_nn(b->protocols[i].metadata).len;
    return n;
}

/* Request limits for a JoinGroup: 0 or an error code. */
static int16_t join_check_limits(const dp_group_mgr_t *m, const dp_kreq_join_group_t *b)
{
    if (kstr_safe(b->protocol_type).len > DP_GROUP_PROTOCOL_NAME_BYTES_MAX)
        return DP_KERR_INVALID_REQUEST;
    if (b->protocol_count > DP_GROUP_PROTOCOLS_MAX ||
        (b->protocol_count > 0 && b->protocols == NULL))
        return DP_KERR_INVALID_REQUEST;
    for (int32_t i = 0; i < b->protocol_count; i++)
        if (kstr_nn(b->protocols[i].name).len > DP_GROUP_PROTOCOL_NAME_BYTES_MAX)
            return DP_KERR_INVALID_REQUEST;
    if (b->protocol_count > 0 && protos_size(b) > m->cfg.metadata_bytes_max)
        return DP_KERR_INVALID_REQUEST;
    return DP_KERR_NONE;
}

/* Kafka's supportsProtocols: a joiner needs a protocol type and protocols,
 * and, when there are other members, the group's type and one protocol that
 * every other member supports. */
static bool supports_protocols(const grp_t *g, const dp_kreq_join_group_t *b, const member_t *self)
{
    dp_kstr_t pt = kstr_safe(b->protocol_type);
    uint32_t others = g->nmembers - (self != NULL && !self->pending ? 1 : 0);

    if (pt.len <= 0 || b->protocol_count <= 0)
        return false;
    if (others == 0)
        return true;
    if (!kstr_is(pt, g->ptype, g->ptype_len))
        return false;
    for (int32_t i = 0; i < b->protocol_count; i++) {
        dp_kstr_t name = kstr_nn(b->protocols[i].name);
        bool all = true;

        for (const member_t *x = g->head; x != NULL && all; x = x->next)
            if (x != self && !x->pending && !member_supports(x, name))
                all = false;
        if (all)
            return true;
    }
    return false;
}

/* Stores the request's protocols in the member. Returns 0 or -ENOSPC
 * (metadata_bytes_total_max) / -ENOMEM; on error the member is unchanged. */
static int member_set_protocols(dp_group_mgr_t *m, member_t *mb, const dp_kreq_join_group_t *b)
{
    uint64_t size;
    uint8_t *buf, *p;

    if (member_matches(mb, b))
        return 0;
    size = protos_size(b);
    if (m->meta_bytes - mb->protos_len + size > m->cfg.metadata_bytes_total_max)
        return -ENOSPC;
    /* Join is a rebalance-time operation, not the request hot path: the
     * blob is sized to what the member sent (bounded by the limits above). */
    buf = malloc(size > 0 ? size : 1);
    if (buf == NULL)
        return -ENOMEM;
    p = buf;
    for (int32_t i = 0; i < b->protocol_count; i++) {
        dp_kstr_t n = kstr_nn(b->protocols[i].name);
        dp_kbytes_t md = kbytes_nn(b->protocols[i].metadata);

        put16(p, (uint16_t)n.len);
        p += 2;
        if (n.len > 0)
            memcpy(p, n.ptr, (size_t)n.len);
        p += n.len;
        put32(p, (uint32_t)md.len);
        p += 4;
        if (md.len > 0)
            memcpy(p, md.ptr, (size_t)md.len);
        p += md.len;
    }
    m->meta_bytes -= mb->protos_len;
    free(mb->protos);
    mb->protos = buf;
    mb->protos_len = (uint32_t)size;
    mb->nprotos = (uint32_t)b->protocol_count;
    m->meta_bytes += size;
    return 0;
}

static void member_clear_assignment(dp_group_mgr_t *m, member_t *mb)
{
    m->meta_bytes -= mb->assign_len;
    free(mb->assign);
    mb->assign = NULL;
    mb->assign_len = 0;
}

/* Takes a member slot and gives it a fresh id; it starts pending. */
static member_t *member_new(dp_group_mgr_t *m, grp_t *g, dp_kstr_t client_id, uint64_t now_ms,
                            int32_t session_timeout_ms)
{
    member_t *mb = m->mfree;
    uint64_t a, b;
    int n, cmax = DP_GROUP_MEMBER_ID_BYTES_MAX - 38;

    if (mb == NULL)
        return NULL;
    m->mfree = mb->next;
    memset(mb, 0, sizeof(*mb));
    client_id = kstr_nn(client_id);
    a = rng_next(m);
    b = rng_next(m);
    /* Kafka's shape: "<client.id>-<random UUID>". */
    n = snprintf(mb->id, sizeof(mb->id), "%.*s-%08x-%04x-4%03x-%04x-%012" PRIx64,
                 client_id.len < cmax ? (int)client_id.len : cmax, client_id.ptr,
                 (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
                 (unsigned)((b >> 48) & 0x3fff) | 0x8000, (uint64_t)(b & 0xffffffffffffull));
    assert(n > 0 && (size_t)n < sizeof(mb->id));
    mb->id_len = (uint16_t)n;
    mb->g = g;
    mb->pending = true;
    mb->session_timeout_ms = session_timeout_ms;
    mb->rebalance_timeout_ms = session_timeout_ms;
    mb->deadline_ms = now_ms + (uint64_t)session_timeout_ms;
    member_link_tail(g, mb);
    g->npending++;
    m->stats.members++;
    return mb;
}

/* Removes a member from its group, answering its parked calls with `err`.
 * Does not start or complete a rebalance: see remove_and_update. */
static void member_remove(dp_group_mgr_t *m, grp_t *g, member_t *mb, int16_t err)
{
    dp_kstr_t id = kstr_of(mb->id, mb->id_len);

    if (mb->join_call != NULL) {
        dp_group_call_t *c = mb->join_call;

        mb->join_call = NULL;
        join_reply(m, c, err, NULL, NULL, id, false);
    }
    if (mb->sync_call != NULL) {
        dp_group_call_t *c = mb->sync_call;

        mb->sync_call = NULL;
        sync_reply(m, c, err, NULL, NULL);
    }
    if (mb->pending) {
        g->npending--;
    } else {
        g->nmembers--;
        if (mb->awaiting_join)
            g->nawaiting--;
        if (mb->pending_sync)
            g->npending_sync--;
        if (g->npending_sync == 0)
            g->sync_deadline_ms = 0;
    }
    member_unlink_list(g, mb);
    if (g->leader == mb)
        g->leader = first_joined(g);
    if (g->nmembers == 0)
        g->leader = NULL;
    m->meta_bytes -= mb->protos_len;
    free(mb->protos);
    member_clear_assignment(m, mb);
    memset(mb, 0, sizeof(*mb));
    mb->next = m->mfree;
    m->mfree = mb;
    m->stats.members--;
}

/* ---- rebalance ---------------------------------------------------------- */

static uint64_t group_rebalance_timeout(const grp_t *g)
{
    uint64_t t = 0;

    for (const member_t *mb = g->head; mb != NULL; mb = mb->next)
        if (!mb->pending)
            t = max_u64(t, (uint64_t)mb->rebalance_timeout_ms);
    return t;
}

/* Kafka's selectProtocol: each member votes for its first choice among the
 * protocols every member supports; most votes wins, ties go to the leader's
 * order. Sets g->pname. */
static void select_protocol(grp_t *g)
{
    dp_kstr_t cand[DP_GROUP_PROTOCOLS_MAX], n;
    uint32_t votes[DP_GROUP_PROTOCOLS_MAX] = {0}, nc = 0, pos = 0, best = 0;
    dp_kbytes_t md;

    assert(g->leader != NULL);
    while (nc < DP_GROUP_PROTOCOLS_MAX && proto_next(g->leader, &pos, &n, &md)) {
        bool all = true;

        for (const member_t *x = g->head; x != NULL && all; x = x->next)
            if (!x->pending && !member_supports(x, n))
                all = false;
        if (all)
            cand[nc++] = n;
    }
    if (nc == 0) {
        /* Joins are checked against every member, so this cannot happen;
         * fall back to the leader's first choice rather than fail. */
        pos = 0;
        if (proto_next(g->leader, &pos, &n, &md))
            cand[nc++] = n;
    }
    for (const member_t *x = g->head; x != NULL; x = x->next) {
        if (x->pending)
            continue;
        pos = 0;
        while (proto_next(x, &pos, &n, &md)) {
            uint32_t i;

            for (i = 0; i < nc && !dp_kstr_eq(cand[i], n); i++)
                ;
            if (i < nc) {
                votes[i]++;
                break;
            }
        }
    }
    for (uint32_t i = 1; i < nc; i++)
        if (votes[i] > votes[best])
            best = i;
    g->pname_len = nc > 0 ? (int16_t)cand[best].len : 0;
    if (nc > 0 && cand[best].len > 0)
        memmove(g->pname, cand[best].ptr, (size_t)cand[best].len);
}

/* Forgets every assignment and answers parked syncs with `err`. As in
 * Kafka's propagateAssignment, an answered member's session restarts: it
 * was kept alive while parked and now needs time to rejoin. */
static void reset_assignments(dp_group_mgr_t *m, grp_t *g, int16_t err, uint64_t now_ms)
{
    for (member_t *mb = g->head; mb != NULL; mb = mb->next) {
        member_clear_assignment(m, mb);
        if (mb->sync_call != NULL) {
            dp_group_call_t *c = mb->sync_call;

            mb->sync_call = NULL;
            sync_reply(m, c, err, NULL, NULL);
            mb->deadline_ms = now_ms + (uint64_t)mb->session_timeout_ms;
        }
    }
}

/* Kafka's onCompleteJoin: drop members that did not rejoin, start the next
 * generation and answer every parked join. */
static void complete_join(dp_group_mgr_t *m, grp_t *g, uint64_t now_ms)
{
    member_t *mb, *next;
    uint64_t rt;

    for (mb = g->head; mb != NULL; mb = next) {
        next = mb->next;
        if (!mb->pending && !mb->awaiting_join)
            member_remove(m, g, mb, DP_KERR_UNKNOWN_MEMBER_ID);
    }
    g->initial_delay = false;
    g->new_member_added = false;
    g->generation++;
    m->stats.generations++;
    if (g->nmembers == 0) {
        g->pname_len = -1;
        g->state = GS_EMPTY;
        g->empty_since_ms = m->wall_ms();
        return;
    }
    if (g->leader == NULL)
        g->leader = first_joined(g);
    select_protocol(g);
    g->state = GS_COMPLETING;
    rt = group_rebalance_timeout(g);
    for (mb = g->head; mb != NULL; mb = mb->next) {
        if (mb->pending)
            continue;
        if (mb->join_call != NULL) {
            dp_group_call_t *c = mb->join_call;

            mb->join_call = NULL;
            join_reply(m, c, DP_KERR_NONE, g, mb, null_str, mb == g->leader);
        }
        mb->awaiting_join = false;
        mb->pending_sync = true;
        mb->deadline_ms = now_ms + (uint64_t)mb->session_timeout_ms;
    }
    g->nawaiting = 0;
    g->npending_sync = g->nmembers;
    g->sync_deadline_ms = now_ms + rt;
}

/* Completes the join phase when it may: the initial delay ran out (and was
 * not extended), or everyone rejoined, or the rebalance timeout passed. */
static void check_join(dp_group_mgr_t *m, grp_t *g, uint64_t now_ms)
{
    if (g->state != GS_PREPARING)
        return;
    if (g->initial_delay) {
        if (now_ms < g->join_deadline_ms)
            return;
        if (g->new_member_added && g->join_remaining_ms > 0) {
            uint64_t d = m->cfg.initial_rebalance_delay_ms;

            if (d > g->join_remaining_ms)
                d = g->join_remaining_ms;
            g->join_remaining_ms -= d;
            g->join_deadline_ms = now_ms + d;
            g->new_member_added = false;
            return;
        }
        complete_join(m, g, now_ms);
        return;
    }
    if ((g->nawaiting == g->nmembers && g->npending == 0) || now_ms >= g->join_deadline_ms)
        complete_join(m, g, now_ms);
}

static void prepare_rebalance(dp_group_mgr_t *m, grp_t *g, uint64_t now_ms)
{
    uint64_t rt = group_rebalance_timeout(g);

    if (g->state == GS_COMPLETING)
        reset_assignments(m, g, DP_KERR_REBALANCE_IN_PROGRESS, now_ms);
    for (member_t *mb = g->head; mb != NULL; mb = mb->next)
        mb->pending_sync = false;
    g->npending_sync = 0;
    g->sync_deadline_ms = 0;
    if (g->state == GS_EMPTY) {
        uint64_t d = m->cfg.initial_rebalance_delay_ms;

        g->initial_delay = true;
        g->new_member_added = false;
        g->join_deadline_ms = now_ms + d;
        g->join_remaining_ms = rt > d ? rt - d : 0;
    } else {
        g->initial_delay = false;
        g->join_deadline_ms = now_ms + rt;
    }
    g->state = GS_PREPARING;
    m->stats.rebalances++;
    check_join(m, g, now_ms);
}

static void maybe_prepare_rebalance(dp_group_mgr_t *m, grp_t *g, uint64_t now_ms)
{
    if (g->state == GS_STABLE || g->state == GS_COMPLETING || g->state == GS_EMPTY)
        prepare_rebalance(m, g, now_ms);
}

/* Removes a member (leave, expiry) and moves the group on as Kafka does. */
static void remove_and_update(dp_group_mgr_t *m, grp_t *g, member_t *mb, uint64_t now_ms)
{
    bool was_pending = mb->pending;

    member_remove(m, g, mb, DP_KERR_UNKNOWN_MEMBER_ID);
    if (was_pending || g->state == GS_PREPARING)
        check_join(m, g, now_ms);
    else if (g->state == GS_STABLE || g->state == GS_COMPLETING)
        maybe_prepare_rebalance(m, g, now_ms);
}

/* Parks `call` as the member's join for this rebalance. */
static void park_join(dp_group_mgr_t *m, grp_t *g, member_t *mb, dp_group_call_t *call)
{
    if (mb->join_call != NULL) {
        /* A second join from the same member: Kafka drops the first
         * silently; here every call is answered, so it gets a retriable
         * error and the client rejoins. */
        dp_group_call_t *old = mb->join_call;

        mb->join_call = NULL;
        join_reply(m, old, DP_KERR_REBALANCE_IN_PROGRESS, NULL, NULL, kstr_of(mb->id, mb->id_len),
                   false);
    }
    mb->join_call = call;
    call->where = W_JOIN;
    call->owner = mb;
    if (!mb->awaiting_join) {
        mb->awaiting_join = true;
        g->nawaiting++;
    }
}

static void set_timeouts(member_t *mb, const dp_kreq_join_group_t *b)
{
    mb->session_timeout_ms = b->session_timeout_ms;
    mb->rebalance_timeout_ms =
        b->rebalance_timeout_ms >= 0 ? b->rebalance_timeout_ms : b->session_timeout_ms;
}

/* Kafka's addMemberAndRebalance, for a pending member's first join. */
static int16_t add_member(dp_group_mgr_t *m, grp_t *g, member_t *mb, const dp_kreq_join_group_t *b,
                          dp_group_call_t *call, uint64_t now_ms)
{
    dp_kstr_t pt = kstr_nn(b->protocol_type);

    if (member_set_protocols(m, mb, b) < 0)
        return DP_KERR_COORDINATOR_NOT_AVAILABLE;
    mb->pending = false;
    g->npending--;
    member_unlink_list(g, mb);
    member_link_tail(g, mb);
    g->nmembers++;
    if (g->nmembers == 1) {
        g->ptype_len = (int16_t)pt.len;
        memcpy(g->ptype, pt.ptr, (size_t)pt.len);
    }
    if (g->leader == NULL)
        g->leader = mb;
    if (g->state == GS_PREPARING && g->generation == 0)
        g->new_member_added = true;
    set_timeouts(mb, b);
    park_join(m, g, mb, call);
    maybe_prepare_rebalance(m, g, now_ms);
    return DP_KERR_NONE;
}

/* Kafka's updateMemberAndRebalance. */
static int16_t update_member(dp_group_mgr_t *m, grp_t *g, member_t *mb,
                             const dp_kreq_join_group_t *b, dp_group_call_t *call, uint64_t now_ms)
{
    if (member_set_protocols(m, mb, b) < 0)
        return DP_KERR_COORDINATOR_NOT_AVAILABLE;
    if (g->nmembers == 1) {
        dp_kstr_t pt = kstr_nn(b->protocol_type);

        g->ptype_len = (int16_t)pt.len;
        memcpy(g->ptype, pt.ptr, (size_t)pt.len);
    }
    set_timeouts(mb, b);
    park_join(m, g, mb, call);
    maybe_prepare_rebalance(m, g, now_ms);
    return DP_KERR_NONE;
}

/* ---- request handlers: membership --------------------------------------- */

static void handle_join(dp_group_mgr_t *m, dp_group_call_t *call, uint64_t now_ms)
{
    const dp_kreq_join_group_t *b = &call->req->u.join_group;
    int16_t v = call->req->hdr.api_version;
    dp_kstr_t mid = kstr_nn(b->member_id);
    int16_t err = DP_KERR_NONE;
    grp_t *g = NULL;
    member_t *mb;
    bool created = false;

    if (!group_id_ok(b->group_id, false)) {
        err = KERR_INVALID_GROUP_ID;
        goto out;
    }
    if (b->session_timeout_ms < 0 ||
        (uint32_t)b->session_timeout_ms < m->cfg.session_timeout_min_ms ||
        (uint32_t)b->session_timeout_ms > m->cfg.session_timeout_max_ms) {
        err = DP_KERR_INVALID_SESSION_TIMEOUT;
        goto out;
    }
    err = join_check_limits(m, b);
    if (err != DP_KERR_NONE)
        goto out;
    g = group_find(m, b->group_id);
    if (g == NULL) {
        if (mid.len > 0) {
            err = DP_KERR_UNKNOWN_MEMBER_ID;
            goto out;
        }
        g = group_create(m, b->group_id);
        if (g == NULL) {
            err = DP_KERR_COORDINATOR_NOT_AVAILABLE;
            goto out;
        }
        created = true;
    }
    if (g->state == GS_DEAD) {
        err = DP_KERR_COORDINATOR_NOT_AVAILABLE;
        goto out;
    }
    if (mid.len == 0) {
        if (g->nmembers + g->npending >= m->cfg.members_max) {
            err = DP_KERR_GROUP_MAX_SIZE_REACHED;
            goto out;
        }
        if (!supports_protocols(g, b, NULL)) {
            err = DP_KERR_INCONSISTENT_GROUP_PROTOCOL;
            goto out;
        }
        mb = member_new(m, g, call->req->hdr.client_id, now_ms, b->session_timeout_ms);
        if (mb == NULL) {
            err = DP_KERR_COORDINATOR_NOT_AVAILABLE;
            goto out;
        }
        if (v >= 4) {
            /* KIP-394: the member must come back with the id it is given. */
            join_reply(m, call, DP_KERR_MEMBER_ID_REQUIRED, NULL, NULL, kstr_of(mb->id, mb->id_len),
                       false);
            goto out;
        }
        err = add_member(m, g, mb, b, call, now_ms);
        if (err != DP_KERR_NONE)
            member_remove(m, g, mb, err);
        goto out;
    }
    mb = member_find(g, mid);
    if (!supports_protocols(g, b, mb)) {
        err = DP_KERR_INCONSISTENT_GROUP_PROTOCOL;
        goto out;
    }
    if (mb == NULL) {
        err = DP_KERR_UNKNOWN_MEMBER_ID;
        goto out;
    }
    if (mb->pending) {
        err = add_member(m, g, mb, b, call, now_ms);
        goto out;
    }
    switch (g->state) {
    case GS_PREPARING:
        err = update_member(m, g, mb, b, call, now_ms);
        break;
    case GS_COMPLETING:
        /* Same metadata: the member probably lost the join answer. */
        if (member_matches(mb, b))
            join_reply(m, call, DP_KERR_NONE, g, mb, null_str, mb == g->leader);
        else
            err = update_member(m, g, mb, b, call, now_ms);
        break;
    case GS_STABLE:
        /* The leader rejoining forces a rebalance (topic metadata changes);
         * a follower with unchanged metadata just gets the generation. */
        if (mb == g->leader || !member_matches(mb, b))
            err = update_member(m, g, mb, b, call, now_ms);
        else
            join_reply(m, call, DP_KERR_NONE, g, mb, null_str, false);
        break;
    default:
        err = DP_KERR_UNKNOWN_MEMBER_ID;
        break;
    }
out:
    if (err != DP_KERR_NONE)
        join_reply(m, call, err, NULL, NULL,
                   err == DP_KERR_GROUP_MAX_SIZE_REACHED ? empty_str : mid, false);
    if (g != NULL && g->state == GS_PREPARING)
        check_join(m, g, now_ms);
    else if (g != NULL && created && group_idle(g))
        group_free(m, g);
}

/* Validates and stores the leader's assignments. Returns 0 or an error
 * code; on error no member's assignment changed. */
static int16_t apply_assignments(dp_group_mgr_t *m, grp_t *g, const dp_kreq_sync_group_t *b)
{
    int32_t n = b->assignment_count > 0 ? b->assignment_count : 0;
    uint64_t total = m->meta_bytes;

    if (n > 0 && b->assignments == NULL)
        return DP_KERR_INVALID_REQUEST;
    for (int32_t i = 0; i < n; i++)
        if ((int64_t)kbytes_nn(b->assignments[i].assignment).len >
            (int64_t)m->cfg.metadata_bytes_max)
            return DP_KERR_INVALID_REQUEST;
    for (member_t *mb = g->head; mb != NULL; mb = mb->next) {
        total -= mb->assign_len;
        for (int32_t i = n - 1; i >= 0; i--) {
            if (kstr_is(b->assignments[i].member_id, mb->id, mb->id_len)) {
                total += (uint64_t)kbytes_nn(b->assignments[i].assignment).len;
                break;
            }
        }
    }
    if (total > m->cfg.metadata_bytes_total_max)
        return DP_KERR_COORDINATOR_NOT_AVAILABLE;
    for (member_t *mb = g->head; mb != NULL; mb = mb->next)
        member_clear_assignment(m, mb);
    for (member_t *mb = g->head; mb != NULL; mb = mb->next) {
        /* Members the leader left out get an empty assignment, as in Kafka;
         * a member named twice gets the last one. */
        for (int32_t i = n - 1; i >= 0; i--) {
            dp_kbytes_t a = kbytes_nn(b->assignments[i].assignment);

            if (!kstr_is(b->assignments[i].member_id, mb->id, mb->id_len))
                continue;
            if (a.len > 0) {
                mb->assign = malloc((size_t)a.len);
                if (mb->assign == NULL) {
                    for (member_t *x = g->head; x != NULL; x = x->next)
                        member_clear_assignment(m, x);
                    return DP_KERR_COORDINATOR_NOT_AVAILABLE;
                }
                memcpy(mb->assign, a.ptr, (size_t)a.len);
                mb->assign_len = (uint32_t)a.len;
                m->meta_bytes += (uint64_t)a.len;
            }
            break;
        }
    }
    return DP_KERR_NONE;
}

static void sync_done(grp_t *g, member_t *mb)
{
    if (mb->pending_sync) {
        mb->pending_sync = false;
        g->npending_sync--;
    }
    if (g->npending_sync == 0)
        g->sync_deadline_ms = 0;
}

static void handle_sync(dp_group_mgr_t *m, dp_group_call_t *call, uint64_t now_ms)
{
    const dp_kreq_sync_group_t *b = &call->req->u.sync_group;
    dp_kstr_t pt = kstr_safe(b->protocol_type), pn = kstr_safe(b->protocol_name);
    int16_t err = DP_KERR_NONE;
    member_t *mb = NULL;
    grp_t *g = NULL;

    if (!group_id_ok(b->group_id, false)) {
        err = KERR_INVALID_GROUP_ID;
        goto out;
    }
    g = group_find(m, b->group_id);
    if (g == NULL) {
        err = DP_KERR_UNKNOWN_MEMBER_ID;
        goto out;
    }
    if (g->state == GS_DEAD) {
        err = DP_KERR_COORDINATOR_NOT_AVAILABLE;
        goto out;
    }
    mb = member_find(g, b->member_id);
    if (mb == NULL || mb->pending) {
        err = DP_KERR_UNKNOWN_MEMBER_ID;
        goto out;
    }
    if (b->generation_id != g->generation) {
        err = DP_KERR_ILLEGAL_GENERATION;
        goto out;
    }
    if ((pt.len >= 0 && !kstr_is(pt, g->ptype, g->ptype_len)) ||
        (pn.len >= 0 && !kstr_is(pn, g->pname, g->pname_len))) {
        err = DP_KERR_INCONSISTENT_GROUP_PROTOCOL;
        goto out;
    }
    switch (g->state) {
    case GS_EMPTY:
        err = DP_KERR_UNKNOWN_MEMBER_ID;
        break;
    case GS_PREPARING:
        err = DP_KERR_REBALANCE_IN_PROGRESS;
        break;
    case GS_COMPLETING:
        sync_done(g, mb);
        if (mb == g->leader) {
            err = apply_assignments(m, g, b);
            if (err != DP_KERR_NONE) {
                /* Kafka answers a failed assignment store by failing every
                 * parked sync and rebalancing; followers get a retriable
                 * error, the leader the reason. */
                reset_assignments(m, g, DP_KERR_REBALANCE_IN_PROGRESS, now_ms);
                prepare_rebalance(m, g, now_ms);
                break;
            }
            g->state = GS_STABLE;
            for (member_t *x = g->head; x != NULL; x = x->next) {
                if (x->sync_call != NULL) {
                    dp_group_call_t *c = x->sync_call;

                    x->sync_call = NULL;
                    sync_reply(m, c, DP_KERR_NONE, g, x);
                    x->deadline_ms = now_ms + (uint64_t)x->session_timeout_ms;
                }
            }
            sync_reply(m, call, DP_KERR_NONE, g, mb);
            mb->deadline_ms = now_ms + (uint64_t)mb->session_timeout_ms;
            break;
        }
        if (mb->sync_call != NULL) {
            dp_group_call_t *old = mb->sync_call;

            mb->sync_call = NULL;
            sync_reply(m, old, DP_KERR_REBALANCE_IN_PROGRESS, NULL, NULL);
        }
        mb->sync_call = call;
        call->where = W_SYNC;
        call->owner = mb;
        break;
    case GS_STABLE:
        sync_done(g, mb);
        sync_reply(m, call, DP_KERR_NONE, g, mb);
        mb->deadline_ms = now_ms + (uint64_t)mb->session_timeout_ms;
        break;
    default:
        err = DP_KERR_COORDINATOR_NOT_AVAILABLE;
        break;
    }
out:
    if (err != DP_KERR_NONE)
        sync_reply(m, call, err, NULL, NULL);
}

static void handle_heartbeat(dp_group_mgr_t *m, dp_group_call_t *call, uint64_t now_ms)
{
    const dp_kreq_heartbeat_t *b = &call->req->u.heartbeat;
    int16_t err = DP_KERR_NONE;
    member_t *mb;
    grp_t *g;

    if (!group_id_ok(b->group_id, false)) {
        err = KERR_INVALID_GROUP_ID;
        goto out;
    }
    g = group_find(m, b->group_id);
    if (g == NULL) {
        err = DP_KERR_UNKNOWN_MEMBER_ID;
        goto out;
    }
    mb = member_find(g, b->member_id);
    if (mb == NULL || mb->pending) {
        err = DP_KERR_UNKNOWN_MEMBER_ID;
        goto out;
    }
    if (b->generation_id != g->generation) {
        err = DP_KERR_ILLEGAL_GENERATION;
        goto out;
    }
    switch (g->state) {
    case GS_PREPARING:
        mb->deadline_ms = now_ms + (uint64_t)mb->session_timeout_ms;
        err = DP_KERR_REBALANCE_IN_PROGRESS;
        break;
    case GS_COMPLETING:
    case GS_STABLE:
        mb->deadline_ms = now_ms + (uint64_t)mb->session_timeout_ms;
        break;
    default:
        err = DP_KERR_UNKNOWN_MEMBER_ID;
        break;
    }
out:
    heartbeat_reply(m, call, err);
}

static void handle_leave(dp_group_mgr_t *m, dp_group_call_t *call, uint64_t now_ms)
{
    const dp_kreq_leave_group_t *b = &call->req->u.leave_group;
    int32_t n = b->member_count > 0 ? b->member_count : 0;
    int16_t top = DP_KERR_NONE;
    const int16_t *errs = NULL;
    grp_t *g;

    if (n > DP_KPROTO_MAX_ENTRIES || (n > 0 && b->members == NULL)) {
        top = DP_KERR_INVALID_REQUEST;
        goto out;
    }
    if (!group_id_ok(b->group_id, false)) {
        top = KERR_INVALID_GROUP_ID;
        goto out;
    }
    g = group_find(m, b->group_id);
    if (g != NULL && g->state == GS_DEAD) {
        top = DP_KERR_COORDINATOR_NOT_AVAILABLE;
        goto out;
    }
    for (int32_t i = 0; i < n; i++) {
        /* Removal by group_instance_id alone (admin tools) is static
         * membership, which is not kept: such a member is unknown. */
        member_t *mb = g != NULL ? member_find(g, b->members[i].member_id) : NULL;

        m->lerrs[i] = mb != NULL ? DP_KERR_NONE : DP_KERR_UNKNOWN_MEMBER_ID;
        if (mb != NULL)
            remove_and_update(m, g, mb, now_ms);
    }
    errs = m->lerrs;
out:
    leave_reply(m, call, top, errs);
}

/* ---- offset table ------------------------------------------------------- */

static uint32_t topic_hash(const dp_group_mgr_t *m, const char *p, size_t n)
{
    return hash_bytes(HASH_SEED, p, n) & m->tmask;
}

static topic_t *topic_find(dp_group_mgr_t *m, dp_kstr_t name)
{
    name = kstr_safe(name);
    if (name.len <= 0 || name.len > DP_GROUP_TOPIC_BYTES_MAX)
        return NULL;
    for (uint32_t i = m->tbuckets[topic_hash(m, name.ptr, (size_t)name.len)]; i != 0;) {
        topic_t *t = &m->topics[i - 1];

        if (kstr_is(name, t->name, t->len))
            return t;
        i = t->hnext;
    }
    return NULL;
}

static topic_t *topic_get(dp_group_mgr_t *m, dp_kstr_t name)
{
    topic_t *t = topic_find(m, name);
    uint32_t idx, h;

    if (t != NULL)
        return t;
    if (m->tfree == 0 || m->topics_used >= m->cfg.topics_max)
        return NULL;
    idx = m->tfree - 1;
    t = &m->topics[idx];
    m->tfree = t->hnext;
    memset(t, 0, sizeof(*t));
    t->len = (uint16_t)name.len;
    memcpy(t->name, name.ptr, (size_t)name.len);
    h = topic_hash(m, t->name, t->len);
    t->hnext = m->tbuckets[h];
    m->tbuckets[h] = idx + 1;
    m->topics_used++;
    return t;
}

static void topic_put(dp_group_mgr_t *m, topic_t *t)
{
    uint32_t idx = (uint32_t)(t - m->topics), *pp;

    if (t->refs > 0)
        return;
    pp = &m->tbuckets[topic_hash(m, t->name, t->len)];
    while (*pp != idx + 1)
        pp = &m->topics[*pp - 1].hnext;
    *pp = t->hnext;
    memset(t, 0, sizeof(*t));
    t->hnext = m->tfree;
    m->tfree = idx + 1;
    m->topics_used--;
}

static uint32_t ent_hash(const dp_group_mgr_t *m, uint32_t group, uint32_t topic, int32_t part)
{
    uint32_t k[3] = {group, topic, (uint32_t)part};

    return hash_bytes(HASH_SEED, k, sizeof(k)) & m->emask;
}

static ent_t *ent_find(dp_group_mgr_t *m, const grp_t *g, const topic_t *t, int32_t part)
{
    uint32_t gi = (uint32_t)(g - m->groups), ti = (uint32_t)(t - m->topics);

    for (uint32_t i = m->ebuckets[ent_hash(m, gi, ti, part)]; i != 0;) {
        ent_t *e = &m->ents[i - 1];

        if (e->group == gi && e->topic == ti && e->partition == part)
            return e;
        i = e->hnext;
    }
    return NULL;
}

static ent_t *ent_new(dp_group_mgr_t *m, grp_t *g, topic_t *t, int32_t part)
{
    uint32_t idx, h;
    ent_t *e;

    if (m->efree == 0 || m->ents_used >= m->cfg.offsets_max)
        return NULL;
    idx = m->efree - 1;
    e = &m->ents[idx];
    m->efree = e->hnext;
    memset(e, 0, sizeof(*e));
    e->used = true;
    e->group = (uint32_t)(g - m->groups);
    e->topic = (uint32_t)(t - m->topics);
    e->partition = part;
    h = ent_hash(m, e->group, e->topic, part);
    e->hnext = m->ebuckets[h];
    m->ebuckets[h] = idx + 1;
    e->gnext = g->ents;
    if (g->ents != 0)
        m->ents[g->ents - 1].gprev = idx + 1;
    g->ents = idx + 1;
    g->nents++;
    t->refs++;
    m->ents_used++;
    m->stats.offsets++;
    return e;
}

static void ent_free(dp_group_mgr_t *m, ent_t *e)
{
    uint32_t idx = (uint32_t)(e - m->ents), *pp;
    grp_t *g = &m->groups[e->group];
    topic_t *t = &m->topics[e->topic];

    pp = &m->ebuckets[ent_hash(m, e->group, e->topic, e->partition)];
    while (*pp != idx + 1)
        pp = &m->ents[*pp - 1].hnext;
    *pp = e->hnext;
    if (e->gprev != 0)
        m->ents[e->gprev - 1].gnext = e->gnext;
    else
        g->ents = e->gnext;
    if (e->gnext != 0)
        m->ents[e->gnext - 1].gprev = e->gprev;
    g->nents--;
    memset(e, 0, sizeof(*e));
    e->hnext = m->efree;
    m->efree = idx + 1;
    m->ents_used--;
    m->stats.offsets--;
    t->refs--;
    topic_put(m, t);
}

static char *ent_meta(dp_group_mgr_t *m, const ent_t *e)
{
    return m->ent_meta + (size_t)(e - m->ents) * m->cfg.offset_metadata_bytes_max;
}

/* ---- offset records --------------------------------------------------------- */

/* Encodes an offset key (Kafka's OffsetCommitKey v1) at p; returns its size. */
static size_t key_encode(uint8_t *p, const char *g, size_t glen, const char *t, size_t tlen,
                         int32_t part)
{
    uint8_t *s = p;

    put16(p, KEY_VERSION);
    put16(p + 2, (uint16_t)glen);
    p += 4;
    memcpy(p, g, glen);
    p += glen;
    put16(p, (uint16_t)tlen);
    p += 2;
    memcpy(p, t, tlen);
    p += tlen;
    put32(p, (uint32_t)part);
    p += 4;
    return (size_t)(p - s);
}

/* Encodes an offset value (Kafka's OffsetCommitValue v3); returns its size. */
static size_t value_encode(uint8_t *p, int64_t offset, int32_t epoch, const char *meta, size_t mlen,
                           int64_t commit_ms)
{
    uint8_t *s = p;

    put16(p, VALUE_VERSION);
    put64(p + 2, (uint64_t)offset);
    put32(p + 10, (uint32_t)epoch);
    put16(p + 14, (uint16_t)mlen);
    p += 16;
    if (mlen > 0)
        memcpy(p, meta, mlen);
    p += mlen;
    put64(p, (uint64_t)commit_ms);
    p += 8;
    return (size_t)(p - s);
}

typedef struct offkey {
    dp_kstr_t group;
    dp_kstr_t topic;
    int32_t partition;
} offkey_t;

typedef struct offval {
    int64_t offset;
    int32_t leader_epoch;
    dp_kstr_t meta;
    int64_t commit_ms;
} offval_t;

static bool key_decode(const uint8_t *p, int32_t len, offkey_t *k)
{
    uint32_t gl, tl, n = len > 0 ? (uint32_t)len : 0;
    uint16_t ver;

    if (n < KEY_FIXED_BYTES)
        return false;
    ver = get16(p);
    if (ver > KEY_VERSION) /* 2 is group metadata, which is not kept */
        return false;
    gl = get16(p + 2);
    if (4 + gl + 2 > n)
        return false;
    tl = get16(p + 4 + gl);
    if ((uint64_t)KEY_FIXED_BYTES + gl + tl != n)
        return false;
    k->group = kstr_of((const char *)p + 4, (int32_t)gl);
    k->topic = kstr_of((const char *)p + 6 + gl, (int32_t)tl);
    k->partition = (int32_t)get32(p + 6 + gl + tl);
    return true;
}

static bool value_decode(const uint8_t *p, int32_t len, offval_t *v)
{
    uint32_t ml, n = len > 0 ? (uint32_t)len : 0;

    if (n < VALUE_FIXED_BYTES || get16(p) != VALUE_VERSION)
        return false;
    v->offset = (int64_t)get64(p + 2);
    v->leader_epoch = (int32_t)get32(p + 10);
    ml = get16(p + 14);
    if ((uint64_t)VALUE_FIXED_BYTES + ml != n)
        return false;
    v->meta = kstr_of((const char *)p + 16, (int32_t)ml);
    v->commit_ms = (int64_t)get64(p + 16 + ml);
    return true;
}

typedef struct apply_ctx {
    dp_group_mgr_t *m;
    int64_t start_offset;
    bool replay;
} apply_ctx_t;

/* Applies one offset record to the table: an upsert, or a tombstone. */
static int apply_record(const dp_batch_record_t *rec, void *arg)
{
    apply_ctx_t *a = arg;
    dp_group_mgr_t *m = a->m;
    offkey_t k;
    offval_t v;
    grp_t *g;
    topic_t *t;
    ent_t *e;

    if (rec->offset < a->start_offset)
        return 0;
    if (!key_decode(rec->key, rec->key_len, &k) || k.group.len > DP_GROUP_ID_BYTES_MAX ||
        k.topic.len <= 0 || k.topic.len > DP_GROUP_TOPIC_BYTES_MAX)
        goto skip;
    g = group_find(m, k.group);
    t = topic_find(m, k.topic);
    if (rec->value_len < 0) {
        e = g != NULL && t != NULL ? ent_find(m, g, t, k.partition) : NULL;
        if (e != NULL)
            ent_free(m, e);
        if (a->replay)
            m->stats.replay_records++;
        return 0;
    }
    if (!value_decode(rec->value, rec->value_len, &v) ||
        (uint32_t)v.meta.len > m->cfg.offset_metadata_bytes_max)
        goto skip;
    if (g == NULL && a->replay) {
        g = group_create(m, k.group);
        if (g != NULL)
            g->empty_since_ms = 0;
    }
    if (g == NULL)
        goto skip;
    t = topic_get(m, k.topic);
    if (t == NULL)
        goto skip;
    e = ent_find(m, g, t, k.partition);
    if (e == NULL)
        e = ent_new(m, g, t, k.partition);
    if (e == NULL) {
        topic_put(m, t);
        goto skip;
    }
    e->offset = v.offset;
    e->leader_epoch = v.leader_epoch;
    e->meta_len = v.meta.len;
    if (v.meta.len > 0)
        memcpy(ent_meta(m, e), v.meta.ptr, (size_t)v.meta.len);
    e->commit_ms = v.commit_ms;
    if (a->replay)
        m->stats.replay_records++;
    return 0;
skip:
    /* A record the limits (or a newer format) cannot hold: keep going. */
    m->stats.replay_skipped++;
    return 0;
}

/* ---- offset commit ------------------------------------------------------------- */

static slot_t *slot_take(dp_group_mgr_t *m, int kind)
{
    slot_t *s = m->sfree;

    if (s == NULL)
        return NULL;
    m->sfree = s->next_free;
    s->kind = kind;
    s->call = NULL;
    s->g = NULL;
    s->big = NULL;
    s->res_ents = s->res_topics = 0;
    return s;
}

static void slot_release(dp_group_mgr_t *m, slot_t *s)
{
    free(s->big);
    s->big = NULL;
    s->call = NULL;
    s->g = NULL;
    s->next_free = m->sfree;
    m->sfree = s;
}

/* Kafka's validateOffsetCommit plus the state rules of doCommitOffsets. */
static int16_t commit_validate(grp_t *g, const dp_kreq_offset_commit_t *b, uint64_t now_ms)
{
    bool member_commit = b->generation_id >= 0 || kstr_nn(b->member_id).len > 0 ||
                         kstr_safe(b->group_instance_id).len >= 0;
    member_t *mb = NULL;

    if (g->state == GS_DEAD)
        return DP_KERR_COORDINATOR_NOT_AVAILABLE;
    if (member_commit) {
        mb = member_find(g, b->member_id);
        if (mb == NULL || mb->pending)
            return DP_KERR_UNKNOWN_MEMBER_ID;
        if (b->generation_id != g->generation)
            return DP_KERR_ILLEGAL_GENERATION;
    } else if (g->state != GS_EMPTY) {
        /* Only members may commit for a group that has them. */
        return DP_KERR_UNKNOWN_MEMBER_ID;
    }
    if (g->state == GS_COMPLETING)
        return DP_KERR_REBALANCE_IN_PROGRESS;
    /* Commits are allowed while preparing a rebalance: the heartbeat tells
     * the member to rejoin. A commit also counts as a heartbeat. */
    if (mb != NULL)
        mb->deadline_ms = now_ms + (uint64_t)mb->session_timeout_ms;
    return DP_KERR_NONE;
}

static int16_t append_error(int rc)
{
    if (rc == -EMSGSIZE)
        return KERR_INVALID_COMMIT_OFFSET_SIZE;
    /* An offsets-log failure: clients look the coordinator up again. */
    return DP_KERR_NOT_COORDINATOR;
}

static void commit_done(dp_log_append_t *req, int result);

/* Starts an OffsetCommit with a free slot: validate, build one batch with a
 * record per accepted partition, append. */
static void commit_start(dp_group_mgr_t *m, dp_group_call_t *call, uint64_t now_ms)
{
    const dp_kreq_offset_commit_t *b = &call->req->u.offset_commit;
    int64_t wall = m->wall_ms();
    uint32_t nrec = 0, new_ents = 0, new_topics = 0;
    size_t kvoff = 0, bound = DP_BATCH_HEADER_SIZE;
    bool too_big = false;
    int16_t uniform = DP_KERR_NONE;
    int32_t k = 0, total = commit_total(b);
    slot_t *s = slot_take(m, SLOT_COMMIT);
    bool per_part = false, started = false;
    uint8_t *batch;
    grp_t *g;
    int len, rc = 0;

    assert(s != NULL);
    if (total < 0) {
        uniform = DP_KERR_INVALID_REQUEST;
        goto out;
    }
    if (!group_id_ok(b->group_id, true)) {
        uniform = KERR_INVALID_GROUP_ID;
        goto out;
    }
    g = group_find(m, b->group_id);
    if (g == NULL) {
        /* A group that does not rely on the coordinator (generation -1):
         * the commit creates it; otherwise it is from an older generation. */
        if (b->generation_id >= 0) {
            uniform = DP_KERR_ILLEGAL_GENERATION;
            goto out;
        }
        g = group_create(m, b->group_id);
        if (g == NULL) {
            uniform = DP_KERR_COORDINATOR_NOT_AVAILABLE;
            goto out;
        }
    }
    uniform = commit_validate(g, b, now_ms);
    if (uniform != DP_KERR_NONE)
        goto out;
    per_part = true;
    for (int32_t i = 0; i < commit_ntopics(b); i++) {
        const dp_kcommit_topic_t *t = &b->topics[i];
        dp_kstr_t tn = kstr_safe(t->name);
        topic_t *tp = topic_find(m, tn);
        bool topic_ok = tn.len > 0 && tn.len <= DP_GROUP_TOPIC_BYTES_MAX;

        if (topic_ok && tp == NULL)
            new_topics++;
        for (int32_t j = 0; j < commit_nparts(t); j++, k++) {
            const dp_kcommit_part_t *p = &t->parts[j];
            dp_kstr_t md = kstr_nn(p->committed_metadata);
            size_t klen, vlen;

            s->errs[k] = DP_KERR_NONE;
            if (!topic_ok || p->partition < 0 ||
                (m->cfg.partition_check != NULL &&
                 !m->cfg.partition_check(m->cfg.partition_check_ctx, tn, p->partition))) {
                s->errs[k] = DP_KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if ((uint32_t)md.len > m->cfg.offset_metadata_bytes_max) {
                s->errs[k] = KERR_OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            if (tp == NULL || ent_find(m, g, tp, p->partition) == NULL)
                new_ents++;
            klen = KEY_FIXED_BYTES + g->id_len + (size_t)tn.len;
            vlen = VALUE_FIXED_BYTES + (size_t)md.len;
            if (bound + klen + vlen + REC_OVERHEAD > m->batch_max) {
                /* Cannot be one batch; reported as a whole below. */
                too_big = true;
                continue;
            }
            klen =
                key_encode(m->kv + kvoff, g->id, g->id_len, tn.ptr, (size_t)tn.len, p->partition);
            vlen = value_encode(m->kv + kvoff + klen, p->committed_offset,
                                p->committed_leader_epoch, md.ptr, (size_t)md.len, wall);
            m->recs[nrec].key = m->kv + kvoff;
            m->recs[nrec].key_len = (int32_t)klen;
            m->recs[nrec].value = m->kv + kvoff + klen;
            m->recs[nrec].value_len = (int32_t)vlen;
            m->recs[nrec].timestamp_delta = 0;
            nrec++;
            kvoff += klen + vlen;
            bound += klen + vlen + REC_OVERHEAD;
        }
    }
    if (too_big) {
        rc = -EMSGSIZE;
        goto out;
    }
    if (nrec == 0)
        goto out;
    if (m->ents_used + m->ents_reserved + new_ents > m->cfg.offsets_max ||
        m->topics_used + m->topics_reserved + new_topics > m->cfg.topics_max) {
        for (int32_t i = 0; i < k; i++)
            if (s->errs[i] == DP_KERR_NONE)
                s->errs[i] = DP_KERR_COORDINATOR_NOT_AVAILABLE;
        goto out;
    }
    batch = s->buf;
    if (bound > m->cfg.commit_buf_bytes) {
        /* Larger than the preallocated buffer: a rare, bounded heap batch. */
        s->big = malloc(bound);
        if (s->big == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        batch = s->big;
    }
    len = dp_batch_build(batch, bound, wall, m->recs, (int)nrec);
    assert(len > 0);
    rc = dp_log_append(m->log, &s->app, batch, (size_t)len, 0, 0, commit_done, s);
    if (rc < 0)
        goto out;
    started = true;
    s->call = call;
    s->g = g;
    s->len = (uint32_t)len;
    s->res_ents = new_ents;
    s->res_topics = new_topics;
    m->ents_reserved += new_ents;
    m->topics_reserved += new_topics;
    g->inflight++;
    m->slots_busy++;
    m->bytes_since_snap += (uint64_t)len;
    call->where = W_COMMIT;
    call->owner = s;
out:
    if (rc < 0) {
        m->stats.commit_errors++;
        for (int32_t i = 0; i < k; i++)
            if (s->errs[i] == DP_KERR_NONE)
                s->errs[i] = append_error(rc);
    }
    if (!started) {
        commit_reply(m, call, per_part ? s->errs : NULL, uniform);
        slot_release(m, s);
    }
}

/* Starts queued commits while slots are free and no compaction waits. */
static void pump(dp_group_mgr_t *m)
{
    while (m->qhead != NULL && m->sfree != NULL && !m->compact_wanted) {
        dp_group_call_t *c = m->qhead;

        list_unlink(&m->qhead, &m->qtail, c);
        c->where = W_NONE;
        commit_start(m, c, m->now_ms);
    }
}

static void maybe_compact(dp_group_mgr_t *m);

static void commit_done(dp_log_append_t *req, int result)
{
    slot_t *s = req->ctx;
    dp_group_mgr_t *m = s->m;
    const uint8_t *batch = s->big != NULL ? s->big : s->buf;

    m->slots_busy--;
    if (s->kind == SLOT_COMMIT) {
        if (result == 0) {
            apply_ctx_t a = {m, 0, false};

            /* The table changes only once the batch is durable; it is read
             * back from the batch, as a replay would. */
            dp_batch_foreach_record(batch, s->len, apply_record, &a);
            m->stats.commits++;
        } else {
            m->stats.commit_errors++;
        }
        m->ents_reserved -= s->res_ents;
        m->topics_reserved -= s->res_topics;
        s->g->inflight--;
        if (s->call != NULL) {
            const dp_kreq_offset_commit_t *b = &s->call->req->u.offset_commit;
            int32_t total = commit_total(b);

            for (int32_t i = 0; result < 0 && i < total; i++)
                if (s->errs[i] == DP_KERR_NONE)
                    s->errs[i] = append_error(result);
            commit_reply(m, s->call, s->errs, DP_KERR_NONE);
        }
    }
    slot_release(m, s);
    maybe_compact(m);
    pump(m);
    drain(m);
}

static void handle_commit(dp_group_mgr_t *m, dp_group_call_t *call, uint64_t now_ms)
{
    if (m->qhead != NULL || m->sfree == NULL || m->compact_wanted) {
        call->where = W_QUEUED;
        list_push(&m->qhead, &m->qtail, call);
        return;
    }
    commit_start(m, call, now_ms);
}

/* ---- offset fetch ----------------------------------------------------------------- */

static void fetch_fill(dp_group_mgr_t *m, dp_koffset_fetch_presp_t *p, int32_t part, const ent_t *e,
                       int16_t err)
{
    p->partition = part;
    p->error_code = err;
    if (e != NULL) {
        p->committed_offset = e->offset;
        p->committed_leader_epoch = e->leader_epoch;
        p->metadata = kstr_of(ent_meta(m, e), e->meta_len);
    } else {
        p->committed_offset = -1;
        p->committed_leader_epoch = -1;
        p->metadata = empty_str;
    }
}

/* Every committed offset of `g`, grouped by topic. Returns the topic count. */
static int32_t fetch_all(dp_group_mgr_t *m, grp_t *g)
{
    uint32_t stamp = ++m->fetch_stamp, base = 0;
    int32_t nt = 0;

    if (stamp == 0)
        stamp = ++m->fetch_stamp;
    for (uint32_t i = g->ents; i != 0; i = m->ents[i - 1].gnext) {
        topic_t *t = &m->topics[m->ents[i - 1].topic];

        if (t->stamp != stamp) {
            t->stamp = stamp;
            t->slot = (uint32_t)nt;
            m->ftopics[nt].name = kstr_of(t->name, t->len);
            m->ftopics[nt].part_count = 0;
            nt++;
        }
        m->ftopics[t->slot].part_count++;
    }
    for (int32_t i = 0; i < nt; i++) {
        m->ftopics[i].parts = &m->fparts[base];
        base += (uint32_t)m->ftopics[i].part_count;
        m->ftopics[i].part_count = 0;
    }
    for (uint32_t i = g->ents; i != 0; i = m->ents[i - 1].gnext) {
        const ent_t *e = &m->ents[i - 1];
        dp_koffset_fetch_tresp_t *tr = &m->ftopics[m->topics[e->topic].slot];

        fetch_fill(m, &m->fparts[(tr->parts - m->fparts) + tr->part_count], e->partition, e,
                   DP_KERR_NONE);
        tr->part_count++;
    }
    return nt;
}

static void handle_fetch(dp_group_mgr_t *m, dp_group_call_t *call)
{
    const dp_kreq_hdr_t *h = &call->req->hdr;
    const dp_kreq_offset_fetch_t *b = &call->req->u.offset_fetch;
    int16_t top = DP_KERR_NONE;
    uint32_t np = 0;
    int32_t nt = 0;
    grp_t *g = NULL;
    int rc;

    if (!group_id_ok(b->group_id, true))
        top = KERR_INVALID_GROUP_ID;
    else
        g = group_find(m, b->group_id);
    if (b->topic_count < 0) {
        if (g != NULL && top == DP_KERR_NONE)
            nt = fetch_all(m, g);
        goto out;
    }
    if (b->topic_count > 0 && b->topics == NULL) {
        top = DP_KERR_INVALID_REQUEST;
        goto out;
    }
    for (int32_t i = 0; i < b->topic_count; i++) {
        const dp_koffset_fetch_topic_t *t = &b->topics[i];
        int32_t n = t->part_count > 0 && t->parts != NULL ? t->part_count : 0;
        topic_t *tp = g != NULL ? topic_find(m, t->name) : NULL;

        if ((uint32_t)nt >= m->ftopics_cap || np + (uint32_t)n > m->fparts_cap) {
            top = DP_KERR_INVALID_REQUEST;
            nt = 0;
            goto out;
        }
        m->ftopics[nt].name = kstr_nn(t->name);
        m->ftopics[nt].part_count = n;
        m->ftopics[nt].parts = &m->fparts[np];
        for (int32_t j = 0; j < n; j++) {
            const ent_t *e = tp != NULL ? ent_find(m, g, tp, t->parts[j]) : NULL;

            fetch_fill(m, &m->fparts[np++], t->parts[j], e, top);
        }
        nt++;
    }
out:
    rc = dp_kproto_offset_fetch_resp(call->w, h->api_version, h->correlation_id, 0, top, nt,
                                     m->ftopics);
    finish(m, call, rc);
}

/* ---- retention and compaction ---------------------------------------------------- */

/* Expires offsets of empty groups older than offsets_retention_ms (from the
 * later of the commit and the group becoming empty), writing tombstones so
 * a replay agrees; then frees groups left with nothing. */
static void expire_offsets(dp_group_mgr_t *m, uint64_t now_ms)
{
    int64_t wall = m->wall_ms(), ret = m->cfg.offsets_retention_ms;
    size_t kvoff = 0, bound = DP_BATCH_HEADER_SIZE;
    size_t cap = m->cfg.commit_buf_bytes < m->batch_max ? m->cfg.commit_buf_bytes : m->batch_max;
    uint32_t n = 0;
    bool more = false;
    slot_t *s;
    int len, rc;

    m->next_retention_ms = now_ms + m->cfg.offsets_retention_check_interval_ms;
    if (ret < 0)
        goto sweep;
    if (m->compact_wanted || m->sfree == NULL) {
        m->next_retention_ms = now_ms + RETENTION_RETRY_MS;
        goto sweep;
    }
    for (uint32_t gi = 0; gi < m->cfg.groups_max && !more; gi++) {
        grp_t *g = &m->groups[gi];

        if (!g->used || g->state != GS_EMPTY || g->nmembers != 0 || g->inflight != 0)
            continue;
        for (uint32_t i = g->ents; i != 0; i = m->ents[i - 1].gnext) {
            const ent_t *e = &m->ents[i - 1];
            const topic_t *t = &m->topics[e->topic];
            int64_t since = e->commit_ms > g->empty_since_ms ? e->commit_ms : g->empty_since_ms;
            size_t klen = KEY_FIXED_BYTES + g->id_len + t->len;

            if (wall - since < ret)
                continue;
            if (n == m->recs_cap || bound + klen + REC_OVERHEAD > cap) {
                more = true;
                break;
            }
            key_encode(m->kv + kvoff, g->id, g->id_len, t->name, t->len, e->partition);
            m->recs[n].key = m->kv + kvoff;
            m->recs[n].key_len = (int32_t)klen;
            m->recs[n].value = NULL;
            m->recs[n].value_len = -1;
            m->recs[n].timestamp_delta = 0;
            m->victims[n++] = i - 1;
            kvoff += klen;
            bound += klen + REC_OVERHEAD;
        }
    }
    if (n == 0)
        goto sweep;
    s = slot_take(m, SLOT_EXPIRE);
    len = dp_batch_build(s->buf, cap, wall, m->recs, (int)n);
    assert(len > 0);
    rc = dp_log_append(m->log, &s->app, s->buf, (size_t)len, 0, 0, commit_done, s);
    if (rc < 0) {
        slot_release(m, s);
        goto sweep;
    }
    m->slots_busy++;
    m->bytes_since_snap += (uint64_t)len;
    /* Dropped now rather than when durable: a commit appended later for
     * the same partition then wins in both the table and the log. */
    for (uint32_t i = 0; i < n; i++)
        ent_free(m, &m->ents[m->victims[i]]);
    m->stats.offsets_expired += n;
    if (more)
        m->next_retention_ms = now_ms;
sweep:
    groups_sweep(m);
}

static void snap_done(dp_log_append_t *req, int result)
{
    dp_group_mgr_t *m = req->ctx;

    if (result < 0)
        m->snap_failed = true;
    if (++m->snap_done < m->snap_n)
        return;
    if (!m->snap_failed && dp_log_delete_records(m->log, m->snap_apps[0].base_offset) == 0) {
        m->stats.snapshots++;
        m->snap_bytes_last = m->snap_bytes;
    }
    free(m->snap_buf);
    free(m->snap_apps);
    m->snap_buf = NULL;
    m->snap_apps = NULL;
    drain(m);
}

/* Appends every live offset as a snapshot (batches of up to batch_max);
 * once durable, the log start moves to its first batch. Runs only while no
 * other offset-log append is in flight, so nothing older than the snapshot
 * can still be on its way into the table. */
static void snapshot_start(dp_group_mgr_t *m)
{
    size_t total = 0, chunk = DP_BATCH_HEADER_SIZE, pos = 0, kvoff = 0;
    int64_t wall = m->wall_ms();
    uint32_t nchunks = 0, cn = 0, ci = 0;
    int rc;

    m->compact_wanted = false;
    m->bytes_since_snap = 0;
    if (m->ents_used == 0) {
        /* Nothing is live: everything written so far can go. */
        if (dp_log_delete_records(m->log, dp_log_end_offset(m->log)) == 0) {
            m->stats.snapshots++;
            m->snap_bytes_last = 0;
        }
        return;
    }
    /* Pass 1: how many batches, and how many bytes at most. */
    for (uint32_t i = 0; i < m->cfg.offsets_max; i++) {
        const ent_t *e = &m->ents[i];
        size_t rb;

        if (!e->used)
            continue;
        rb = KEY_FIXED_BYTES + m->groups[e->group].id_len + m->topics[e->topic].len +
             VALUE_FIXED_BYTES + (size_t)e->meta_len + REC_OVERHEAD;
        if (cn > 0 && (cn == SNAP_CHUNK_RECS || chunk + rb > m->batch_max)) {
            total += chunk;
            nchunks++;
            chunk = DP_BATCH_HEADER_SIZE;
            cn = 0;
        }
        chunk += rb;
        cn++;
    }
    total += chunk;
    nchunks++;
    /* Compaction is background work: its buffers live only while it runs. */
    m->snap_buf = malloc(total);
    m->snap_apps = calloc(nchunks, sizeof(*m->snap_apps));
    if (m->snap_buf == NULL || m->snap_apps == NULL) {
        free(m->snap_buf);
        free(m->snap_apps);
        m->snap_buf = NULL;
        m->snap_apps = NULL;
        return;
    }
    m->snap_n = nchunks;
    m->snap_done = 0;
    m->snap_failed = false;
    m->snap_bytes = 0;
    /* Pass 2: encode and append, chunk by chunk as in pass 1. */
    chunk = DP_BATCH_HEADER_SIZE;
    cn = 0;
    for (uint32_t i = 0; i <= m->cfg.offsets_max; i++) {
        const ent_t *e = i < m->cfg.offsets_max ? &m->ents[i] : NULL;
        size_t rb = 0, klen, vlen;

        if (e != NULL && !e->used)
            continue;
        if (e != NULL)
            rb = KEY_FIXED_BYTES + m->groups[e->group].id_len + m->topics[e->topic].len +
                 VALUE_FIXED_BYTES + (size_t)e->meta_len + REC_OVERHEAD;
        if (cn > 0 && (e == NULL || cn == SNAP_CHUNK_RECS || chunk + rb > m->batch_max)) {
            int len = dp_batch_build(m->snap_buf + pos, total - pos, wall, m->recs, (int)cn);

            assert(len > 0 && (size_t)len <= chunk);
            rc = dp_log_append(m->log, &m->snap_apps[ci], m->snap_buf + pos, (size_t)len, 0, 0,
                               snap_done, m);
            if (rc < 0) {
                /* Appended chunks still complete (and see snap_failed);
                 * with none in flight, give up now. */
                m->snap_failed = true;
                m->snap_n = ci;
                if (ci == 0) {
                    free(m->snap_buf);
                    free(m->snap_apps);
                    m->snap_buf = NULL;
                    m->snap_apps = NULL;
                }
                return;
            }
            m->snap_bytes += (uint64_t)len;
            pos += (size_t)len;
            ci++;
            chunk = DP_BATCH_HEADER_SIZE;
            cn = 0;
            kvoff = 0;
        }
        if (e == NULL)
            break;
        {
            const grp_t *g = &m->groups[e->group];
            const topic_t *t = &m->topics[e->topic];

            klen = key_encode(m->kv + kvoff, g->id, g->id_len, t->name, t->len, e->partition);
            vlen = value_encode(m->kv + kvoff + klen, e->offset, e->leader_epoch, ent_meta(m, e),
                                (size_t)e->meta_len, e->commit_ms);
            m->recs[cn].key = m->kv + kvoff;
            m->recs[cn].key_len = (int32_t)klen;
            m->recs[cn].value = m->kv + kvoff + klen;
            m->recs[cn].value_len = (int32_t)vlen;
            m->recs[cn].timestamp_delta = 0;
            kvoff += klen + vlen;
            chunk += rb;
            cn++;
        }
    }
    assert(ci == nchunks);
}

/* Starts a compaction once the log spans more than COMPACT_SEGMENTS
 * segments and has grown by at least a segment (and by at least the last
 * snapshot, so a big table cannot make compactions back to back). */
static void maybe_compact(dp_group_mgr_t *m)
{
    if (m->snap_apps != NULL || m->closing)
        return;
    if (!m->compact_wanted) {
        uint64_t grown = max_u64(m->cfg.offsets_log_segment_bytes, m->snap_bytes_last);

        if (dp_log_segment_count(m->log) <= COMPACT_SEGMENTS || m->bytes_since_snap < grown)
            return;
        m->compact_wanted = true;
    }
    if (m->slots_busy > 0)
        return; /* new commits queue until these drain */
    snapshot_start(m);
    pump(m);
}

/* ---- replay ------------------------------------------------------------------------- */

static int replay(dp_group_mgr_t *m, char *err, size_t errlen)
{
    int64_t start = dp_log_start_offset(m->log), off = start;
    apply_ctx_t a = {m, start, true};
    dp_log_slice_t sl[8];
    int rc = 0;

    for (;;) {
        int n = dp_log_read(m->log, off, m->batch_max, -1, sl, 8);

        if (n < 0) {
            rc = n;
            snprintf(err, errlen, "__consumer_offsets: read at %" PRId64 ": %s", off,
                     strerror(-rc));
            goto out;
        }
        if (n == 0)
            break;
        for (int i = 0; i < n; i++) {
            size_t done = 0, pos = 0;

            if (sl[i].len > m->batch_max) {
                rc = -EBADMSG;
                snprintf(err, errlen, "__consumer_offsets: batch at %" PRId64 " too large",
                         sl[i].first_offset);
                goto out;
            }
            while (done < sl[i].len) {
                ssize_t r =
                    pread(sl[i].fd, m->kv + done, sl[i].len - done, (off_t)(sl[i].pos + done));

                if (r <= 0) {
                    rc = r < 0 ? -errno : -EIO;
                    snprintf(err, errlen, "__consumer_offsets: pread: %s", strerror(-rc));
                    goto out;
                }
                done += (size_t)r;
            }
            while (pos < sl[i].len) {
                dp_batch_hdr_t h;

                /* dp_log_open already checked every CRC of this log. */
                rc = dp_batch_parse_header(m->kv + pos, sl[i].len - pos, &h);
                if (rc == 0 && dp_batch_size(&h) > sl[i].len - pos)
                    rc = -EBADMSG;
                if (rc < 0) {
                    snprintf(err, errlen, "__consumer_offsets: bad batch at %" PRId64,
                             sl[i].first_offset);
                    goto out;
                }
                if (dp_batch_last_offset(&h) >= start &&
                    (h.attributes & (DP_BATCH_ATTR_CONTROL | DP_BATCH_ATTR_COMPRESSION_MASK)) == 0)
                    dp_batch_foreach_record(m->kv + pos, dp_batch_size(&h), apply_record, &a);
                pos += dp_batch_size(&h);
            }
            m->bytes_since_snap += sl[i].len;
            off = sl[i].next_offset;
        }
    }
out:
    return rc;
}

/* ---- public API ------------------------------------------------------------------- */

void dp_group_config_defaults(dp_group_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->groups_max = 1024;
    cfg->members_max = 256;
    cfg->members_total_max = 16384;
    cfg->initial_rebalance_delay_ms = 0;
    cfg->session_timeout_min_ms = 6000;
    cfg->session_timeout_max_ms = 1800000;
    cfg->metadata_bytes_max = 64 * 1024;
    cfg->metadata_bytes_total_max = 64ull << 20;
    cfg->offsets_max = 32768;
    cfg->topics_max = 4096;
    cfg->offset_metadata_bytes_max = 256;
    cfg->offsets_retention_ms = 7ll * 24 * 3600 * 1000;
    cfg->offsets_retention_check_interval_ms = 60000;
    cfg->offsets_log_segment_bytes = 16ull << 20;
    cfg->offsets_partition = 0;
    cfg->commit_slots = 16;
    cfg->commit_buf_bytes = 64 * 1024;
}

static void mgr_free(dp_group_mgr_t *m)
{
    if (m->members != NULL) {
        for (uint32_t i = 0; i < m->cfg.members_total_max; i++) {
            free(m->members[i].protos);
            free(m->members[i].assign);
        }
    }
    if (m->slots != NULL) {
        for (uint32_t i = 0; i < m->cfg.commit_slots; i++) {
            free(m->slots[i].buf);
            free(m->slots[i].errs);
            free(m->slots[i].big);
        }
    }
    free(m->groups);
    free(m->gbuckets);
    free(m->members);
    free(m->ents);
    free(m->ent_meta);
    free(m->ebuckets);
    free(m->topics);
    free(m->tbuckets);
    free(m->slots);
    free(m->kv);
    free(m->recs);
    free(m->victims);
    free(m->jmembers);
    free(m->ctopics);
    free(m->cparts);
    free(m->ftopics);
    free(m->fparts);
    free(m->lerrs);
    free(m->snap_buf);
    free(m->snap_apps);
    free(m);
}

int dp_group_mgr_open(dp_group_mgr_t **out, dp_ring_t *ring, const char *data_dir,
                      const dp_group_config_t *cfg, char *err, size_t errlen)
{
    dp_group_mgr_t *m = NULL;
    dp_log_config_t lc;
    uint64_t seed = 0;
    size_t rec_max;
    int rc;

    assert(out != NULL && ring != NULL && data_dir != NULL && cfg != NULL);
    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (cfg->groups_max == 0 || cfg->groups_max > (1u << 24) || cfg->members_max == 0 ||
        cfg->members_total_max == 0 || cfg->members_total_max > (1u << 24) ||
        cfg->offsets_max == 0 || cfg->offsets_max > (1u << 24) || cfg->topics_max == 0 ||
        cfg->topics_max > (1u << 24) || cfg->commit_slots == 0 ||
        cfg->offset_metadata_bytes_max > INT16_MAX ||
        cfg->session_timeout_min_ms > cfg->session_timeout_max_ms ||
        cfg->offsets_log_segment_bytes < 4096 || cfg->offsets_log_segment_bytes > INT32_MAX) {
        snprintf(err, errlen, "invalid group coordinator configuration");
        rc = -EINVAL;
        goto out;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    m->cfg = *cfg;
    m->ring = ring;
    m->wall_ms = wall_now_ms;
    m->batch_max = BATCH_BYTES_MAX;
    if (m->batch_max > cfg->offsets_log_segment_bytes)
        m->batch_max = (uint32_t)cfg->offsets_log_segment_bytes;
    /* One record of the largest shape must fit a batch and a slot buffer. */
    rec_max = DP_BATCH_HEADER_SIZE + KEY_FIXED_BYTES + DP_GROUP_ID_BYTES_MAX +
              DP_GROUP_TOPIC_BYTES_MAX + VALUE_FIXED_BYTES + cfg->offset_metadata_bytes_max +
              REC_OVERHEAD;
    if (rec_max > m->batch_max || cfg->commit_buf_bytes < rec_max) {
        snprintf(err, errlen, "offsets log segment or commit buffer too small for a record");
        rc = -EINVAL;
        goto out;
    }
    m->gmask = pow2_at_least(cfg->groups_max * 2) - 1;
    m->emask = pow2_at_least(cfg->offsets_max * 2) - 1;
    m->tmask = pow2_at_least(cfg->topics_max * 2) - 1;
    m->recs_cap = DP_KPROTO_MAX_ENTRIES > SNAP_CHUNK_RECS ? DP_KPROTO_MAX_ENTRIES : SNAP_CHUNK_RECS;
    m->ftopics_cap =
        cfg->topics_max > DP_KPROTO_MAX_ENTRIES ? cfg->topics_max : DP_KPROTO_MAX_ENTRIES;
    m->fparts_cap =
        cfg->offsets_max > DP_KPROTO_MAX_ENTRIES ? cfg->offsets_max : DP_KPROTO_MAX_ENTRIES;
    m->groups = calloc(cfg->groups_max, sizeof(*m->groups));
    m->gbuckets = calloc((size_t)m->gmask + 1, sizeof(*m->gbuckets));
    m->members = calloc(cfg->members_total_max, sizeof(*m->members));
    m->ents = calloc(cfg->offsets_max, sizeof(*m->ents));
    m->ent_meta = calloc(cfg->offsets_max, (size_t)cfg->offset_metadata_bytes_max + 1);
    m->ebuckets = calloc((size_t)m->emask + 1, sizeof(*m->ebuckets));
    m->topics = calloc(cfg->topics_max, sizeof(*m->topics));
    m->tbuckets = calloc((size_t)m->tmask + 1, sizeof(*m->tbuckets));
    m->slots = calloc(cfg->commit_slots, sizeof(*m->slots));
    m->kv = malloc(m->batch_max);
    m->recs = calloc(m->recs_cap, sizeof(*m->recs));
    m->victims = calloc(m->recs_cap, sizeof(*m->victims));
    m->jmembers = calloc(cfg->members_max, sizeof(*m->jmembers));
    m->ctopics = calloc(DP_KPROTO_MAX_ENTRIES, sizeof(*m->ctopics));
    m->cparts = calloc(DP_KPROTO_MAX_ENTRIES, sizeof(*m->cparts));
    m->ftopics = calloc(m->ftopics_cap, sizeof(*m->ftopics));
    m->fparts = calloc(m->fparts_cap, sizeof(*m->fparts));
    m->lerrs = calloc(DP_KPROTO_MAX_ENTRIES, sizeof(*m->lerrs));
    if (m->groups == NULL || m->gbuckets == NULL || m->members == NULL || m->ents == NULL ||
        m->ent_meta == NULL || m->ebuckets == NULL || m->topics == NULL || m->tbuckets == NULL ||
        m->slots == NULL || m->kv == NULL || m->recs == NULL || m->victims == NULL ||
        m->jmembers == NULL || m->ctopics == NULL || m->cparts == NULL || m->ftopics == NULL ||
        m->fparts == NULL || m->lerrs == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    /* Free lists in index order, so pools fill from the front. */
    for (uint32_t i = 0; i < cfg->groups_max; i++)
        m->groups[i].hnext = i + 1 < cfg->groups_max ? i + 2 : 0;
    m->gfree = 1;
    for (uint32_t i = cfg->members_total_max; i-- > 0;) {
        m->members[i].next = m->mfree;
        m->mfree = &m->members[i];
    }
    for (uint32_t i = 0; i < cfg->offsets_max; i++)
        m->ents[i].hnext = i + 1 < cfg->offsets_max ? i + 2 : 0;
    m->efree = 1;
    for (uint32_t i = 0; i < cfg->topics_max; i++)
        m->topics[i].hnext = i + 1 < cfg->topics_max ? i + 2 : 0;
    m->tfree = 1;
    for (uint32_t i = cfg->commit_slots; i-- > 0;) {
        slot_t *s = &m->slots[i];

        s->m = m;
        s->buf = malloc(cfg->commit_buf_bytes);
        s->errs = calloc(DP_KPROTO_MAX_ENTRIES, sizeof(*s->errs));
        if (s->buf == NULL || s->errs == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        s->next_free = m->sfree;
        m->sfree = s;
    }
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = (uint64_t)wall_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)m;
    m->rng = seed;

    dp_log_config_defaults(&lc);
    lc.segment_bytes = cfg->offsets_log_segment_bytes;
    lc.batch_bytes_max = m->batch_max;
    lc.flush = DP_LOG_FLUSH_EVERY;
    lc.retention_ms = -1;
    lc.retention_bytes = -1;
    if (lc.index_interval_bytes > lc.segment_bytes / 4)
        lc.index_interval_bytes = (uint32_t)(lc.segment_bytes / 4);
    rc = dp_log_open(&m->log, ring, data_dir, "__consumer_offsets", cfg->offsets_partition, &lc,
                     err, errlen);
    if (rc < 0)
        goto out;
    rc = replay(m, err, errlen);
    if (rc < 0)
        goto out;
    *out = m;
    m = NULL;
    rc = 0;
out:
    if (m != NULL) {
        if (m->log != NULL)
            dp_log_close(m->log);
        mgr_free(m);
    }
    return rc;
}

bool dp_group_mgr_idle(const dp_group_mgr_t *m)
{
    return m->slots_busy == 0 && m->snap_apps == NULL && dp_log_idle(m->log);
}

/* Answers a call with `err` whatever its API (shutdown). */
static void reply_error(dp_group_mgr_t *m, dp_group_call_t *call, int16_t err)
{
    switch (call->req->hdr.api_key) {
    case DP_KAPI_JOIN_GROUP:
        join_reply(m, call, err, NULL, NULL, call->req->u.join_group.member_id, false);
        break;
    case DP_KAPI_SYNC_GROUP:
        sync_reply(m, call, err, NULL, NULL);
        break;
    case DP_KAPI_HEARTBEAT:
        heartbeat_reply(m, call, err);
        break;
    case DP_KAPI_LEAVE_GROUP:
        leave_reply(m, call, err, NULL);
        break;
    case DP_KAPI_OFFSET_COMMIT:
        commit_reply(m, call, NULL, err);
        break;
    default: {
        const dp_kreq_hdr_t *h = &call->req->hdr;

        finish(m, call,
               dp_kproto_offset_fetch_resp(call->w, h->api_version, h->correlation_id, 0, err, 0,
                                           NULL));
        break;
    }
    }
}

int dp_group_mgr_close(dp_group_mgr_t *m)
{
    int rc;

    if (m == NULL)
        return 0;
    if (!dp_group_mgr_idle(m))
        return -EBUSY;
    m->closing = true;
    for (uint32_t gi = 0; gi < m->cfg.groups_max; gi++) {
        grp_t *g = &m->groups[gi];

        for (member_t *mb = g->used ? g->head : NULL; mb != NULL; mb = mb->next) {
            if (mb->join_call != NULL) {
                dp_group_call_t *c = mb->join_call;

                mb->join_call = NULL;
                reply_error(m, c, DP_KERR_NOT_COORDINATOR);
            }
            if (mb->sync_call != NULL) {
                dp_group_call_t *c = mb->sync_call;

                mb->sync_call = NULL;
                reply_error(m, c, DP_KERR_NOT_COORDINATOR);
            }
        }
    }
    while (m->qhead != NULL) {
        dp_group_call_t *c = m->qhead;

        list_unlink(&m->qhead, &m->qtail, c);
        reply_error(m, c, DP_KERR_NOT_COORDINATOR);
    }
    drain(m);
    rc = dp_log_close(m->log);
    assert(rc == 0);
    mgr_free(m);
    return rc;
}

/* API versions this module answers (the codec's encoders assert them). */
static bool version_ok(int16_t key, int16_t v)
{
    switch (key) {
    case DP_KAPI_JOIN_GROUP:
        return v >= 0 && v <= 7;
    case DP_KAPI_SYNC_GROUP:
        return v >= 0 && v <= 5;
    case DP_KAPI_HEARTBEAT:
    case DP_KAPI_LEAVE_GROUP:
        return v >= 0 && v <= 4;
    case DP_KAPI_OFFSET_COMMIT:
        return v >= 2 && v <= 8;
    case DP_KAPI_OFFSET_FETCH:
        return v >= 1 && v <= 7;
    default:
        return false;
    }
}

void dp_group_handle(dp_group_mgr_t *m, dp_group_call_t *call, uint64_t now_ms)
{
    const dp_kreq_hdr_t *h;

    assert(m != NULL && call != NULL && call->req != NULL && call->w != NULL && call->cb != NULL);
    h = &call->req->hdr;
    call->prev = call->next = NULL;
    call->owner = NULL;
    call->where = W_NONE;
    call->result = 0;
    if (now_ms > m->now_ms)
        m->now_ms = now_ms;
    now_ms = m->now_ms;
    if (!version_ok(h->api_key, h->api_version)) {
        finish(m, call, -EPROTONOSUPPORT);
        goto out;
    }
    if (m->closing) {
        reply_error(m, call, DP_KERR_NOT_COORDINATOR);
        goto out;
    }
    switch (h->api_key) {
    case DP_KAPI_JOIN_GROUP:
        handle_join(m, call, now_ms);
        break;
    case DP_KAPI_SYNC_GROUP:
        handle_sync(m, call, now_ms);
        break;
    case DP_KAPI_HEARTBEAT:
        handle_heartbeat(m, call, now_ms);
        break;
    case DP_KAPI_LEAVE_GROUP:
        handle_leave(m, call, now_ms);
        break;
    case DP_KAPI_OFFSET_COMMIT:
        handle_commit(m, call, now_ms);
        break;
    default:
        handle_fetch(m, call);
        break;
    }
out:
    drain(m);
}

/* A member whose session ran out: pending members always expire; members
 * in a join or with a parked sync are kept alive, as in Kafka. */
static member_t *first_expired(grp_t *g, uint64_t now_ms)
{
    for (member_t *mb = g->head; mb != NULL; mb = mb->next) {
        if (now_ms < mb->deadline_ms)
            continue;
        if (mb->pending || (!mb->awaiting_join && mb->sync_call == NULL))
            return mb;
    }
    return NULL;
}

void dp_group_tick(dp_group_mgr_t *m, uint64_t now_ms)
{
    if (now_ms > m->now_ms)
        m->now_ms = now_ms;
    now_ms = m->now_ms;
    for (uint32_t gi = 0; gi < m->cfg.groups_max; gi++) {
        grp_t *g = &m->groups[gi];
        member_t *mb;

        if (!g->used || (g->head == NULL && g->state != GS_PREPARING))
            continue;
        /* Removing one member can complete a join that removes others, so
         * look for the next one afresh each time. */
        while ((mb = first_expired(g, now_ms)) != NULL) {
            m->stats.session_expiries++;
            remove_and_update(m, g, mb, now_ms);
        }
        if (g->state == GS_PREPARING)
            check_join(m, g, now_ms);
        if ((g->state == GS_COMPLETING || g->state == GS_STABLE) && g->sync_deadline_ms != 0 &&
            now_ms >= g->sync_deadline_ms) {
            /* Kafka's pending-sync expiry: members that joined but never
             * synced are removed and the group rebalances. */
            member_t *next;
            bool removed = false;

            g->sync_deadline_ms = 0;
            for (mb = g->head; mb != NULL; mb = next) {
                next = mb->next;
                if (!mb->pending && mb->pending_sync) {
                    member_remove(m, g, mb, DP_KERR_UNKNOWN_MEMBER_ID);
                    removed = true;
                }
            }
            if (removed)
                prepare_rebalance(m, g, now_ms);
        }
    }
    if (now_ms >= m->next_retention_ms)
        expire_offsets(m, now_ms);
    maybe_compact(m);
    pump(m);
    drain(m);
}

void dp_group_cancel(dp_group_mgr_t *m, dp_group_call_t *call)
{
    switch (call->where) {
    case W_JOIN:
        ((member_t *)call->owner)->join_call = NULL;
        break;
    case W_SYNC:
        ((member_t *)call->owner)->sync_call = NULL;
        break;
    case W_QUEUED:
        list_unlink(&m->qhead, &m->qtail, call);
        break;
    case W_COMMIT:
        /* The append goes on and the offsets still land; only the answer
         * is dropped. */
        ((slot_t *)call->owner)->call = NULL;
        break;
    case W_DONE:
        list_unlink(&m->dhead, &m->dtail, call);
        break;
    default:
        break;
    }
    call->where = W_NONE;
    call->owner = NULL;
}

const dp_group_stats_t *dp_group_stats(const dp_group_mgr_t *m)
{
    return &m->stats;
}
