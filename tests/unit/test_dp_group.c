/* Description: dp_group consumer-group coordinator: join/sync rebalances with
 * leader and followers, MEMBER_ID_REQUIRED, heartbeats during a rebalance,
 * session/rebalance/sync expiry, leave, generation checks, protocol choice,
 * initial delay, cancellation, durable offsets across reopen, offset-log
 * snapshots and truncation, retention, limits and malformed requests. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Included so tests can reach the manager's internals (state, clock). */
#include "../../dataplane/src/dp_group.c"

#define OUT_CAP 16384
#define T0 1000000u /* monotonic clock start, ms */
#define SESSION_MS 10000
#define REBALANCE_MS 30000

/* One request in flight: the call, its request, the storage its arrays
 * point into, and the response buffer. */
typedef struct tc {
    dp_group_call_t call;
    dp_kreq_t req;
    dp_kwr_t w;
    uint8_t out[OUT_CAP];
    int fired;
    dp_kjoin_protocol_t protos[4];
    char meta[4][64];
    dp_ksync_assignment_t assigns[8];
    char ids[8][DP_GROUP_MEMBER_ID_BYTES_MAX + 1];
    dp_kleave_member_t leaves[8];
    dp_kcommit_topic_t ctopics[4];
    dp_kcommit_part_t cparts[4][64];
    dp_koffset_fetch_topic_t ftopics[4];
    int32_t fparts[4][64];
    char str[4][512];
} tc_t;

typedef struct fx {
    dp_ring_t ring;
    char dir[64];
    dp_group_config_t cfg;
    dp_group_mgr_t *m;
    uint64_t now;
} fx_t;

static fx_t *fx;
static int32_t next_corr = 1;

/* ---- fixture ------------------------------------------------------------ */

static void rm_tree(const char *dir)
{
    char path[512];
    struct dirent *e;
    DIR *d = opendir(dir);

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) < 0)
            rm_tree(path);
    }
    closedir(d);
    rmdir(dir);
}

static void open_mgr(void)
{
    char err[256];
    int rc = dp_group_mgr_open(&fx->m, &fx->ring, fx->dir, &fx->cfg, err, sizeof(err));

    if (rc != 0)
        fail_msg("open: %d %s", rc, err);
}

static void drive_idle(void)
{
    for (int i = 0; i < 500 && !dp_group_mgr_idle(fx->m); i++)
        assert_true(dp_ring_run_once(&fx->ring, 1, 100) >= 0);
    assert_true(dp_group_mgr_idle(fx->m));
}

static void close_mgr(void)
{
    drive_idle();
    assert_int_equal(dp_group_mgr_close(fx->m), 0);
    fx->m = NULL;
}

static int setup(void **state)
{
    fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    if (dp_ring_init(&fx->ring, 64, 0) < 0) {
        fprintf(stderr, "skip: io_uring unavailable\n");
        free(fx);
        exit(77);
    }
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/dp_group_XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    dp_group_config_defaults(&fx->cfg);
    fx->cfg.offsets_log_segment_bytes = 64 * 1024;
    fx->now = T0;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    if (fx->m != NULL)
        close_mgr();
    rm_tree(fx->dir);
    dp_ring_dispose(&fx->ring);
    free(fx);
    fx = NULL;
    return 0;
}

/* ---- requests ------------------------------------------------------------ */

static tc_t *tc_new(void)
{
    tc_t *t = calloc(1, sizeof(*t));

    assert_non_null(t);
    return t;
}

static void on_done(dp_group_call_t *c)
{
    tc_t *t = c->ctx;

    t->fired++;
}

static void hdr(tc_t *t, int16_t key, int16_t v)
{
    memset(&t->req, 0, sizeof(t->req));
    t->req.hdr.api_key = key;
    t->req.hdr.api_version = v;
    t->req.hdr.correlation_id = next_corr++;
    t->req.hdr.client_id = dp_kstr("cli");
    t->req.hdr.flexible = dp_kproto_is_flexible(key, v);
}

/* Hands the request in at fx->now with a fresh writer. */
static void submit(tc_t *t)
{
    dp_kwr_init(&t->w, t->out, sizeof(t->out));
    t->fired = 0;
    t->call.req = &t->req;
    t->call.w = &t->w;
    t->call.cb = on_done;
    t->call.ctx = t;
    dp_group_handle(fx->m, &t->call, fx->now);
}

/* Copies a C string into the call's own storage (requests must outlive
 * the call). */
static dp_kstr_t keep(tc_t *t, int i, const char *s)
{
    if (s == NULL)
        return (dp_kstr_t){NULL, -1};
    snprintf(t->str[i], sizeof(t->str[i]), "%s", s);
    return dp_kstr(t->str[i]);
}

/* JoinGroup with protocols p1 (and p2 unless NULL), metadata "<meta>:<p>". */
static void join_req(tc_t *t, int16_t v, const char *group, const char *member, const char *p1,
                     const char *p2, const char *meta)
{
    dp_kreq_join_group_t *b = &t->req.u.join_group;
    const char *ps[2] = {p1, p2};

    hdr(t, DP_KAPI_JOIN_GROUP, v);
    b->group_id = keep(t, 0, group);
    b->session_timeout_ms = SESSION_MS;
    b->rebalance_timeout_ms = v >= 1 ? REBALANCE_MS : -1;
    b->member_id = keep(t, 1, member);
    b->group_instance_id = (dp_kstr_t){NULL, -1};
    b->protocol_type = dp_kstr("consumer");
    b->protocol_count = 0;
    for (int i = 0; i < 2 && ps[i] != NULL; i++) {
        snprintf(t->meta[i], sizeof(t->meta[i]), "%s:%s", meta, ps[i]);
        t->protos[i].name = dp_kstr(ps[i]);
        t->protos[i].metadata =
            (dp_kbytes_t){(const uint8_t *)t->meta[i], (int32_t)strlen(t->meta[i])};
        b->protocol_count++;
    }
    b->protocols = t->protos;
}

static void sync_req(tc_t *t, int16_t v, const char *group, int32_t gen, const char *member, int n,
                     const char *const *ids, const char *const *assigns)
{
    dp_kreq_sync_group_t *b = &t->req.u.sync_group;

    hdr(t, DP_KAPI_SYNC_GROUP, v);
    b->group_id = keep(t, 0, group);
    b->generation_id = gen;
    b->member_id = keep(t, 1, member);
    b->group_instance_id = (dp_kstr_t){NULL, -1};
    b->protocol_type = (dp_kstr_t){NULL, -1};
    b->protocol_name = (dp_kstr_t){NULL, -1};
    for (int i = 0; i < n; i++) {
        snprintf(t->ids[i], sizeof(t->ids[i]), "%s", ids[i]);
        snprintf(t->meta[i % 4], sizeof(t->meta[i % 4]), "%s", assigns[i]);
        t->assigns[i].member_id = dp_kstr(t->ids[i]);
        t->assigns[i].assignment =
            (dp_kbytes_t){(const uint8_t *)t->meta[i % 4], (int32_t)strlen(assigns[i])};
    }
    b->assignment_count = n;
    b->assignments = t->assigns;
}

static void hb_req(tc_t *t, int16_t v, const char *group, int32_t gen, const char *member)
{
    dp_kreq_heartbeat_t *b = &t->req.u.heartbeat;

    hdr(t, DP_KAPI_HEARTBEAT, v);
    b->group_id = keep(t, 0, group);
    b->generation_id = gen;
    b->member_id = keep(t, 1, member);
    b->group_instance_id = (dp_kstr_t){NULL, -1};
}

static void leave_req(tc_t *t, int16_t v, const char *group, int n, const char *const *ids)
{
    dp_kreq_leave_group_t *b = &t->req.u.leave_group;

    hdr(t, DP_KAPI_LEAVE_GROUP, v);
    b->group_id = keep(t, 0, group);
    for (int i = 0; i < n; i++) {
        snprintf(t->ids[i], sizeof(t->ids[i]), "%s", ids[i]);
        t->leaves[i].member_id = dp_kstr(t->ids[i]);
        t->leaves[i].group_instance_id = (dp_kstr_t){NULL, -1};
    }
    b->member_count = n;
    b->members = t->leaves;
}

/* OffsetCommit of partitions [p0, p0+n) of `topic` at offset base+i. */
static void commit_req(tc_t *t, int16_t v, const char *group, int32_t gen, const char *member,
                       const char *topic, int32_t p0, int n, int64_t base, const char *meta)
{
    dp_kreq_offset_commit_t *b = &t->req.u.offset_commit;

    hdr(t, DP_KAPI_OFFSET_COMMIT, v);
    b->group_id = keep(t, 0, group);
    b->generation_id = gen;
    b->member_id = keep(t, 1, member);
    b->group_instance_id = (dp_kstr_t){NULL, -1};
    b->retention_time_ms = -1;
    t->ctopics[0].name = keep(t, 2, topic);
    t->ctopics[0].part_count = n;
    t->ctopics[0].parts = t->cparts[0];
    for (int i = 0; i < n; i++) {
        t->cparts[0][i].partition = p0 + i;
        t->cparts[0][i].committed_offset = base + i;
        t->cparts[0][i].committed_leader_epoch = v >= 6 ? 5 : -1;
        t->cparts[0][i].committed_metadata = keep(t, 3, meta);
    }
    b->topic_count = 1;
    b->topics = t->ctopics;
}

/* OffsetFetch of partitions [0, n) of `topic`, or of everything (topic NULL). */
static void fetch_req(tc_t *t, int16_t v, const char *group, const char *topic, int n)
{
    dp_kreq_offset_fetch_t *b = &t->req.u.offset_fetch;

    hdr(t, DP_KAPI_OFFSET_FETCH, v);
    b->group_id = keep(t, 0, group);
    if (topic == NULL) {
        b->topic_count = -1;
        return;
    }
    t->ftopics[0].name = keep(t, 1, topic);
    t->ftopics[0].part_count = n;
    t->ftopics[0].parts = t->fparts[0];
    for (int i = 0; i < n; i++)
        t->fparts[0][i] = i;
    b->topic_count = 1;
    b->topics = t->ftopics;
}

/* ---- responses ------------------------------------------------------------ */

static void cpy(char *dst, size_t cap, dp_kstr_t s)
{
    size_t n = s.len > 0 ? (size_t)s.len : 0;

    assert_true(n < cap);
    if (n > 0)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

/* Starts reading a response frame and checks size and correlation id. */
static bool rd_begin(tc_t *t, dp_krd_t *r)
{
    bool flex = dp_kproto_is_flexible(t->req.hdr.api_key, t->req.hdr.api_version);

    assert_int_equal(t->fired, 1);
    assert_int_equal(t->call.result, 0);
    dp_krd_init(r, t->out, t->w.off);
    assert_int_equal(dp_krd_i32(r), (int32_t)t->w.off - 4);
    assert_int_equal(dp_krd_i32(r), t->req.hdr.correlation_id);
    if (flex)
        dp_krd_skip_tags(r);
    return flex;
}

static void rd_end(dp_krd_t *r, bool flex)
{
    if (flex)
        dp_krd_skip_tags(r);
    assert_int_equal(r->err, 0);
    assert_int_equal(dp_krd_remaining(r), 0);
}

typedef struct jr {
    int16_t err;
    int32_t gen;
    char ptype[64];
    char pname[64];
    char leader[DP_GROUP_MEMBER_ID_BYTES_MAX + 1];
    char member[DP_GROUP_MEMBER_ID_BYTES_MAX + 1];
    int n;
    char ids[8][DP_GROUP_MEMBER_ID_BYTES_MAX + 1];
    char metas[8][64];
} jr_t;

static jr_t join_resp(tc_t *t)
{
    int16_t v = t->req.hdr.api_version;
    dp_krd_t r;
    bool flex = rd_begin(t, &r);
    jr_t j;

    memset(&j, 0, sizeof(j));
    if (v >= 2)
        dp_krd_i32(&r);
    j.err = dp_krd_i16(&r);
    j.gen = dp_krd_i32(&r);
    if (v >= 7)
        cpy(j.ptype, sizeof(j.ptype), dp_krd_nstr_f(&r, flex));
    cpy(j.pname, sizeof(j.pname), v >= 7 ? dp_krd_nstr_f(&r, flex) : dp_krd_str_f(&r, flex));
    cpy(j.leader, sizeof(j.leader), dp_krd_str_f(&r, flex));
    cpy(j.member, sizeof(j.member), dp_krd_str_f(&r, flex));
    j.n = dp_krd_arrlen(&r, flex, 1);
    assert_true(j.n >= 0 && j.n <= 8);
    for (int i = 0; i < j.n; i++) {
        dp_kbytes_t b;

        cpy(j.ids[i], sizeof(j.ids[i]), dp_krd_str_f(&r, flex));
        if (v >= 5)
            assert_int_equal(dp_krd_nstr_f(&r, flex).len, -1);
        b = dp_krd_bytes_f(&r, flex);
        cpy(j.metas[i], sizeof(j.metas[i]), (dp_kstr_t){(const char *)b.ptr, b.len});
        if (flex)
            dp_krd_skip_tags(&r);
    }
    rd_end(&r, flex);
    return j;
}

typedef struct sr {
    int16_t err;
    char ptype[64];
    char pname[64];
    char assign[64];
} sr_t;

static sr_t sync_resp(tc_t *t)
{
    int16_t v = t->req.hdr.api_version;
    dp_krd_t r;
    bool flex = rd_begin(t, &r);
    dp_kbytes_t b;
    sr_t s;

    memset(&s, 0, sizeof(s));
    if (v >= 1)
        dp_krd_i32(&r);
    s.err = dp_krd_i16(&r);
    if (v >= 5) {
        cpy(s.ptype, sizeof(s.ptype), dp_krd_nstr_f(&r, flex));
        cpy(s.pname, sizeof(s.pname), dp_krd_nstr_f(&r, flex));
    }
    b = dp_krd_bytes_f(&r, flex);
    cpy(s.assign, sizeof(s.assign), (dp_kstr_t){(const char *)b.ptr, b.len});
    rd_end(&r, flex);
    return s;
}

static int16_t hb_resp(tc_t *t)
{
    dp_krd_t r;
    bool flex = rd_begin(t, &r);
    int16_t err;

    if (t->req.hdr.api_version >= 1)
        dp_krd_i32(&r);
    err = dp_krd_i16(&r);
    rd_end(&r, flex);
    return err;
}

/* Returns the top-level error; per-member errors (v3+) go to errs. */
static int16_t leave_resp(tc_t *t, int16_t *errs, int *n)
{
    int16_t v = t->req.hdr.api_version, top;
    dp_krd_t r;
    bool flex = rd_begin(t, &r);

    if (v >= 1)
        dp_krd_i32(&r);
    top = dp_krd_i16(&r);
    *n = 0;
    if (v >= 3) {
        *n = dp_krd_arrlen(&r, flex, 1);
        for (int i = 0; i < *n; i++) {
            dp_krd_str_f(&r, flex);
            dp_krd_nstr_f(&r, flex);
            errs[i] = dp_krd_i16(&r);
            if (flex)
                dp_krd_skip_tags(&r);
        }
    }
    rd_end(&r, flex);
    return top;
}

/* Per-partition errors of a one-topic commit; returns the count. */
static int commit_resp(tc_t *t, int16_t *errs)
{
    int16_t v = t->req.hdr.api_version;
    dp_krd_t r;
    bool flex = rd_begin(t, &r);
    int nt, n = 0;

    if (v >= 3)
        dp_krd_i32(&r);
    nt = dp_krd_arrlen(&r, flex, 1);
    for (int i = 0; i < nt; i++) {
        int np;

        dp_krd_str_f(&r, flex);
        np = dp_krd_arrlen(&r, flex, 1);
        for (int j = 0; j < np; j++) {
            dp_krd_i32(&r);
            errs[n++] = dp_krd_i16(&r);
            if (flex)
                dp_krd_skip_tags(&r);
        }
        if (flex)
            dp_krd_skip_tags(&r);
    }
    rd_end(&r, flex);
    return n;
}

static void assert_commit_ok(tc_t *t, int n)
{
    int16_t errs[64];

    assert_int_equal(commit_resp(t, errs), n);
    for (int i = 0; i < n; i++)
        assert_int_equal(errs[i], 0);
}

typedef struct fr {
    int16_t top;
    int ntopics;
    char topics[4][64];
    int n;
    int32_t part[64];
    int64_t offset[64];
    int32_t epoch[64];
    char meta[64][300];
    int16_t err[64];
} fr_t;

static fr_t *fetch_resp(tc_t *t)
{
    static fr_t f;
    int16_t v = t->req.hdr.api_version;
    dp_krd_t r;
    bool flex = rd_begin(t, &r);

    memset(&f, 0, sizeof(f));
    if (v >= 3)
        dp_krd_i32(&r);
    f.ntopics = dp_krd_arrlen(&r, flex, 1);
    assert_true(f.ntopics >= 0 && f.ntopics <= 4);
    for (int i = 0; i < f.ntopics; i++) {
        int np;

        cpy(f.topics[i], sizeof(f.topics[i]), dp_krd_str_f(&r, flex));
        np = dp_krd_arrlen(&r, flex, 1);
        for (int j = 0; j < np; j++) {
            assert_true(f.n < 64);
            f.part[f.n] = dp_krd_i32(&r);
            f.offset[f.n] = dp_krd_i64(&r);
            f.epoch[f.n] = v >= 5 ? dp_krd_i32(&r) : -1;
            cpy(f.meta[f.n], sizeof(f.meta[f.n]), dp_krd_nstr_f(&r, flex));
            f.err[f.n] = dp_krd_i16(&r);
            if (flex)
                dp_krd_skip_tags(&r);
            f.n++;
        }
        if (flex)
            dp_krd_skip_tags(&r);
    }
    if (v >= 2)
        f.top = dp_krd_i16(&r);
    rd_end(&r, flex);
    return &f;
}

/* Runs the ring until the call is answered. */
static void wait_fired(tc_t *t)
{
    for (int i = 0; i < 500 && t->fired == 0; i++)
        assert_true(dp_ring_run_once(&fx->ring, 1, 100) >= 0);
    assert_int_equal(t->fired, 1);
}

/* Commits and waits for the durable answer. */
static void commit_sync(tc_t *t)
{
    submit(t);
    wait_fired(t);
}

static grp_t *grp(const char *id)
{
    return group_find(fx->m, dp_kstr(id));
}

/* Forms a stable group `g` of `n` members (ids to ids[]) with join v5 /
 * sync v3; returns the generation (1 for one member, else 2: with no
 * initial delay the first join completes alone, as in Kafka). */
static int32_t form_group(const char *g, int n, char ids[][DP_GROUP_MEMBER_ID_BYTES_MAX + 1])
{
    tc_t *t[4];
    int32_t gen = -1;
    jr_t j;

    assert_true(n >= 1 && n <= 4);
    for (int i = 0; i < n; i++) {
        t[i] = tc_new();
        join_req(t[i], 5, g, "", "range", NULL, "m");
        submit(t[i]);
        j = join_resp(t[i]);
        assert_int_equal(j.err, DP_KERR_MEMBER_ID_REQUIRED);
        strcpy(ids[i], j.member);
    }
    for (int i = 0; i < n; i++) {
        join_req(t[i], 5, g, ids[i], "range", NULL, "m");
        submit(t[i]);
    }
    if (n > 1) {
        j = join_resp(t[0]);
        assert_int_equal(j.gen, 1);
        assert_int_equal(j.n, 1);
        for (int i = 1; i < n; i++)
            assert_int_equal(t[i]->fired, 0);
        submit(t[0]);
    }
    for (int i = 0; i < n; i++) {
        j = join_resp(t[i]);
        assert_int_equal(j.err, 0);
        gen = j.gen;
    }
    for (int i = n - 1; i >= 0; i--) {
        const char *who[4];
        const char *as[4] = {"a0", "a1", "a2", "a3"};

        for (int k = 0; k < n; k++)
            who[k] = ids[k];
        sync_req(t[i], 3, g, gen, ids[i], i == 0 ? n : 0, who, as);
        submit(t[i]);
    }
    for (int i = 0; i < n; i++) {
        sr_t s = sync_resp(t[i]);

        assert_int_equal(s.err, 0);
        free(t[i]);
    }
    assert_int_equal(grp(g)->state, GS_STABLE);
    return gen;
}

/* ---- tests -------------------------------------------------------------- */

static void test_two_member_rebalance(void **state)
{
    tc_t *a = tc_new(), *b = tc_new(), *h = tc_new();
    char ida[200], idb[200];
    const char *both[2];
    const char *as2[2] = {"a2", "b2"};
    jr_t ja, jb;
    sr_t sa, sb;

    open_mgr();
    /* A alone: MEMBER_ID_REQUIRED, rejoin, leader of generation 1. */
    join_req(a, 5, "g1", "", "range", "roundrobin", "A");
    submit(a);
    ja = join_resp(a);
    assert_int_equal(ja.err, DP_KERR_MEMBER_ID_REQUIRED);
    assert_int_equal(ja.gen, -1);
    assert_int_equal(strncmp(ja.member, "cli-", 4), 0);
    assert_int_equal(strlen(ja.member), 4 + 36);
    strcpy(ida, ja.member);
    join_req(a, 5, "g1", ida, "range", "roundrobin", "A");
    submit(a);
    ja = join_resp(a);
    assert_int_equal(ja.err, 0);
    assert_int_equal(ja.gen, 1);
    assert_string_equal(ja.leader, ida);
    assert_string_equal(ja.member, ida);
    assert_string_equal(ja.pname, "range");
    assert_int_equal(ja.n, 1);
    assert_string_equal(ja.metas[0], "A:range");
    both[0] = ida;
    sync_req(a, 3, "g1", 1, ida, 1, both, as2);
    submit(a);
    sa = sync_resp(a);
    assert_int_equal(sa.err, 0);
    assert_string_equal(sa.assign, "a2");
    hb_req(h, 3, "g1", 1, ida);
    submit(h);
    assert_int_equal(hb_resp(h), 0);

    /* B (flexible v7) joins: parked until A rejoins. */
    join_req(b, 7, "g1", "", "roundrobin", "range", "B");
    submit(b);
    jb = join_resp(b);
    assert_int_equal(jb.err, DP_KERR_MEMBER_ID_REQUIRED);
    strcpy(idb, jb.member);
    assert_string_not_equal(ida, idb);
    join_req(b, 7, "g1", idb, "roundrobin", "range", "B");
    submit(b);
    assert_int_equal(b->fired, 0);
    assert_int_equal(grp("g1")->state, GS_PREPARING);
    hb_req(h, 4, "g1", 1, ida);
    submit(h);
    assert_int_equal(hb_resp(h), DP_KERR_REBALANCE_IN_PROGRESS);
    join_req(a, 5, "g1", ida, "range", "roundrobin", "A");
    submit(a);
    ja = join_resp(a);
    jb = join_resp(b);
    assert_int_equal(ja.err, 0);
    assert_int_equal(jb.err, 0);
    assert_int_equal(ja.gen, 2);
    assert_int_equal(jb.gen, 2);
    assert_string_equal(ja.leader, ida);
    assert_string_equal(jb.leader, ida);
    assert_string_equal(jb.member, idb);
    assert_string_equal(jb.ptype, "consumer");
    /* One vote each: the tie goes to the leader's order. */
    assert_string_equal(ja.pname, "range");
    assert_string_equal(jb.pname, "range");
    assert_int_equal(ja.n, 2);
    assert_int_equal(jb.n, 0);
    assert_string_equal(ja.ids[0], ida);
    assert_string_equal(ja.metas[0], "A:range");
    assert_string_equal(ja.ids[1], idb);
    assert_string_equal(ja.metas[1], "B:range");
    assert_int_equal(grp("g1")->state, GS_COMPLETING);

    /* B syncs first and waits; heartbeats are fine meanwhile. */
    sync_req(b, 5, "g1", 2, idb, 0, NULL, NULL);
    submit(b);
    assert_int_equal(b->fired, 0);
    hb_req(h, 4, "g1", 2, idb);
    submit(h);
    assert_int_equal(hb_resp(h), 0);
    both[1] = idb;
    sync_req(a, 5, "g1", 2, ida, 2, both, as2);
    submit(a);
    sa = sync_resp(a);
    sb = sync_resp(b);
    assert_int_equal(sa.err, 0);
    assert_int_equal(sb.err, 0);
    assert_string_equal(sa.assign, "a2");
    assert_string_equal(sb.assign, "b2");
    assert_string_equal(sb.ptype, "consumer");
    assert_string_equal(sb.pname, "range");
    assert_int_equal(grp("g1")->state, GS_STABLE);
    /* A follower re-syncing in Stable gets its assignment again. */
    sync_req(b, 3, "g1", 2, idb, 0, NULL, NULL);
    submit(b);
    assert_string_equal(sync_resp(b).assign, "b2");
    hb_req(h, 0, "g1", 1, ida);
    submit(h);
    assert_int_equal(hb_resp(h), DP_KERR_ILLEGAL_GENERATION);
    /* A follower rejoining with the same metadata just gets the generation. */
    join_req(b, 7, "g1", idb, "roundrobin", "range", "B");
    submit(b);
    jb = join_resp(b);
    assert_int_equal(jb.err, 0);
    assert_int_equal(jb.gen, 2);
    assert_int_equal(grp("g1")->state, GS_STABLE);
    assert_int_equal(dp_group_stats(fx->m)->generations, 2);
    free(a);
    free(b);
    free(h);
}

static void test_protocol_choice(void **state)
{
    tc_t *a = tc_new(), *b = tc_new(), *c = tc_new();
    jr_t j;

    open_mgr();
    /* v3: no MEMBER_ID_REQUIRED, a new member joins at once. */
    join_req(a, 3, "gp", "", "range", "roundrobin", "A");
    submit(a);
    j = join_resp(a);
    assert_int_equal(j.err, 0);
    assert_int_equal(j.gen, 1);
    assert_true(strlen(j.member) > 4);
    join_req(b, 3, "gp", "", "sticky", NULL, "B");
    submit(b);
    assert_int_equal(join_resp(b).err, DP_KERR_INCONSISTENT_GROUP_PROTOCOL);
    join_req(b, 3, "gp", "", "range", NULL, "B");
    b->req.u.join_group.protocol_type = dp_kstr("connect");
    submit(b);
    assert_int_equal(join_resp(b).err, DP_KERR_INCONSISTENT_GROUP_PROTOCOL);
    join_req(c, 3, "gq", "", NULL, NULL, "C");
    submit(c);
    assert_int_equal(join_resp(c).err, DP_KERR_INCONSISTENT_GROUP_PROTOCOL);
    /* Two members that both prefer roundrobin outvote the leader. */
    join_req(b, 3, "gp", "", "roundrobin", "range", "B");
    submit(b);
    assert_int_equal(b->fired, 0);
    join_req(c, 3, "gp", "", "roundrobin", "range", "C");
    submit(c);
    join_req(a, 3, "gp", j.member, "range", "roundrobin", "A");
    submit(a);
    assert_string_equal(join_resp(a).pname, "roundrobin");
    assert_string_equal(join_resp(b).pname, "roundrobin");
    assert_string_equal(join_resp(c).pname, "roundrobin");
    free(a);
    free(b);
    free(c);
}

static void test_member_id_required(void **state)
{
    tc_t *a = tc_new(), *t = tc_new();
    char ida[200];
    jr_t j;

    open_mgr();
    join_req(t, 4, "nope", "cli-bogus", "range", NULL, "X");
    submit(t);
    j = join_resp(t);
    assert_int_equal(j.err, DP_KERR_UNKNOWN_MEMBER_ID);
    assert_string_equal(j.member, "cli-bogus");
    assert_null(grp("nope"));
    join_req(a, 6, "gm", "", "range", NULL, "A");
    submit(a);
    j = join_resp(a);
    assert_int_equal(j.err, DP_KERR_MEMBER_ID_REQUIRED);
    strcpy(ida, j.member);
    assert_int_equal(grp("gm")->npending, 1);
    /* Pending members are not members yet. */
    hb_req(t, 2, "gm", 0, ida);
    submit(t);
    assert_int_equal(hb_resp(t), DP_KERR_UNKNOWN_MEMBER_ID);
    sync_req(t, 2, "gm", 0, ida, 0, NULL, NULL);
    submit(t);
    assert_int_equal(sync_resp(t).err, DP_KERR_UNKNOWN_MEMBER_ID);
    join_req(t, 6, "gm", "cli-bogus", "range", NULL, "X");
    submit(t);
    assert_int_equal(join_resp(t).err, DP_KERR_UNKNOWN_MEMBER_ID);
    /* A pending member that never comes back expires after its session. */
    fx->now += SESSION_MS - 1;
    dp_group_tick(fx->m, fx->now);
    assert_int_equal(grp("gm")->npending, 1);
    fx->now += 1;
    dp_group_tick(fx->m, fx->now);
    assert_int_equal(grp("gm")->npending, 0);
    join_req(a, 6, "gm", ida, "range", NULL, "A");
    submit(a);
    assert_int_equal(join_resp(a).err, DP_KERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(dp_group_stats(fx->m)->session_expiries, 1);
    assert_int_equal(dp_group_stats(fx->m)->members, 0);
    free(a);
    free(t);
}

static void test_session_expiry(void **state)
{
    char ids[4][DP_GROUP_MEMBER_ID_BYTES_MAX + 1];
    tc_t *t = tc_new();
    int32_t gen;
    jr_t j;

    open_mgr();
    gen = form_group("gs", 2, ids);
    assert_int_equal(gen, 2);
    /* A heartbeats, B goes silent. */
    fx->now += SESSION_MS / 2;
    hb_req(t, 1, "gs", gen, ids[0]);
    submit(t);
    assert_int_equal(hb_resp(t), 0);
    fx->now += SESSION_MS / 2;
    dp_group_tick(fx->m, fx->now);
    assert_int_equal(grp("gs")->nmembers, 1);
    assert_int_equal(grp("gs")->state, GS_PREPARING);
    assert_int_equal(dp_group_stats(fx->m)->session_expiries, 1);
    hb_req(t, 1, "gs", gen, ids[1]);
    submit(t);
    assert_int_equal(hb_resp(t), DP_KERR_UNKNOWN_MEMBER_ID);
    hb_req(t, 1, "gs", gen, ids[0]);
    submit(t);
    assert_int_equal(hb_resp(t), DP_KERR_REBALANCE_IN_PROGRESS);
    join_req(t, 5, "gs", ids[0], "range", NULL, "m");
    submit(t);
    j = join_resp(t);
    assert_int_equal(j.err, 0);
    assert_int_equal(j.gen, gen + 1);
    assert_int_equal(j.n, 1);
    /* Everybody gone: the group ends Empty with the next generation. */
    fx->now += 3 * SESSION_MS;
    dp_group_tick(fx->m, fx->now);
    assert_int_equal(grp("gs")->state, GS_EMPTY);
    assert_int_equal(grp("gs")->generation, gen + 2);
    free(t);
}

static void test_rebalance_timeout(void **state)
{
    char ids[4][DP_GROUP_MEMBER_ID_BYTES_MAX + 1];
    tc_t *a = tc_new(), *c = tc_new(), *h = tc_new();
    int32_t gen;
    jr_t j;

    open_mgr();
    gen = form_group("gr", 2, ids);
    join_req(c, 3, "gr", "", "range", NULL, "C");
    submit(c);
    assert_int_equal(c->fired, 0);
    join_req(a, 5, "gr", ids[0], "range", NULL, "m");
    submit(a);
    assert_int_equal(a->fired, 0);
    /* B keeps heartbeating but never rejoins. */
    for (int i = 0; i < 5; i++) {
        fx->now += REBALANCE_MS / 6;
        hb_req(h, 2, "gr", gen, ids[1]);
        submit(h);
        assert_int_equal(hb_resp(h), DP_KERR_REBALANCE_IN_PROGRESS);
        dp_group_tick(fx->m, fx->now);
        assert_int_equal(a->fired, 0);
    }
    fx->now += REBALANCE_MS / 6;
    dp_group_tick(fx->m, fx->now);
    j = join_resp(a);
    assert_int_equal(j.err, 0);
    assert_int_equal(j.gen, gen + 1);
    assert_int_equal(j.n, 2);
    assert_int_equal(join_resp(c).n, 0);
    hb_req(h, 2, "gr", gen, ids[1]);
    submit(h);
    assert_int_equal(hb_resp(h), DP_KERR_UNKNOWN_MEMBER_ID);
    free(a);
    free(c);
    free(h);
}

static void test_pending_sync_expiry(void **state)
{
    char ids[4][DP_GROUP_MEMBER_ID_BYTES_MAX + 1];
    tc_t *a = tc_new(), *b = tc_new();
    int32_t gen;
    jr_t j;

    open_mgr();
    gen = form_group("gy", 2, ids) + 1;
    join_req(a, 5, "gy", ids[0], "range", NULL, "m");
    submit(a);
    join_req(b, 5, "gy", ids[1], "range", NULL, "m");
    submit(b);
    j = join_resp(a);
    assert_int_equal(j.gen, gen);
    assert_int_equal(join_resp(b).err, 0);
    /* The leader syncs; B only heartbeats and is dropped at the sync
     * deadline (the rebalance timeout after the join completed). */
    sync_req(a, 3, "gy", gen, ids[0], 0, NULL, NULL);
    submit(a);
    assert_int_equal(sync_resp(a).err, 0);
    assert_int_equal(grp("gy")->state, GS_STABLE);
    for (int i = 0; i < 3; i++) {
        fx->now += REBALANCE_MS / 3 - 1;
        for (int k = 0; k < 2; k++) {
            hb_req(a, 3, "gy", gen, ids[k]);
            submit(a);
            assert_int_equal(hb_resp(a), 0);
        }
        dp_group_tick(fx->m, fx->now);
        assert_int_equal(grp("gy")->nmembers, 2);
    }
    fx->now += 3;
    fx->now += 1;
    dp_group_tick(fx->m, fx->now);
    assert_int_equal(grp("gy")->nmembers, 1);
    assert_int_equal(grp("gy")->state, GS_PREPARING);
    free(a);
    free(b);
}

static void test_leave(void **state)
{
    char ids[4][DP_GROUP_MEMBER_ID_BYTES_MAX + 1];
    tc_t *t = tc_new(), *a = tc_new();
    const char *who[3];
    int16_t errs[8];
    int n;

    open_mgr();
    form_group("gl", 3, ids);
    /* v1: one member, error at the top. */
    who[0] = ids[1];
    leave_req(t, 1, "gl", 1, who);
    submit(t);
    assert_int_equal(leave_resp(t, errs, &n), 0);
    assert_int_equal(grp("gl")->nmembers, 2);
    assert_int_equal(grp("gl")->state, GS_PREPARING);
    leave_req(t, 0, "gl", 1, who);
    submit(t);
    assert_int_equal(leave_resp(t, errs, &n), DP_KERR_UNKNOWN_MEMBER_ID);
    /* A rejoins; C leaves in a v4 batch with an unknown member. */
    join_req(a, 5, "gl", ids[0], "range", NULL, "m");
    submit(a);
    assert_int_equal(a->fired, 0);
    who[0] = ids[2];
    who[1] = "cli-nobody";
    leave_req(t, 4, "gl", 2, who);
    submit(t);
    assert_int_equal(leave_resp(t, errs, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(errs[0], 0);
    assert_int_equal(errs[1], DP_KERR_UNKNOWN_MEMBER_ID);
    /* C's departure completed the join A was waiting in. */
    assert_int_equal(join_resp(a).n, 1);
    who[0] = ids[0];
    leave_req(t, 3, "gl", 1, who);
    submit(t);
    assert_int_equal(leave_resp(t, errs, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(errs[0], 0);
    assert_int_equal(grp("gl")->state, GS_EMPTY);
    assert_int_equal(grp("gl")->generation, 4);
    who[0] = "x";
    who[1] = "y";
    leave_req(t, 4, "unknown-group", 2, who);
    submit(t);
    assert_int_equal(leave_resp(t, errs, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(errs[0], DP_KERR_UNKNOWN_MEMBER_ID);
    assert_int_equal(errs[1], DP_KERR_UNKNOWN_MEMBER_ID);
    free(t);
    free(a);
}

static void test_generation_checks(void **state)
{
    char ids[4][DP_GROUP_MEMBER_ID_BYTES_MAX + 1];
    tc_t *t = tc_new(), *a = tc_new(), *b = tc_new(), *c = tc_new();
    int16_t errs[8];
    int32_t gen;

    open_mgr();
    gen = form_group("gg", 2, ids);
    sync_req(t, 3, "gg", gen - 1, ids[0], 0, NULL, NULL);
    submit(t);
    assert_int_equal(sync_resp(t).err, DP_KERR_ILLEGAL_GENERATION);
    sync_req(t, 3, "gg", gen, "cli-who", 0, NULL, NULL);
    submit(t);
    assert_int_equal(sync_resp(t).err, DP_KERR_UNKNOWN_MEMBER_ID);
    sync_req(t, 5, "gg", gen, ids[0], 0, NULL, NULL);
    t->req.u.sync_group.protocol_name = dp_kstr("roundrobin");
    submit(t);
    assert_int_equal(sync_resp(t).err, DP_KERR_INCONSISTENT_GROUP_PROTOCOL);
    sync_req(t, 3, "nosuch", gen, ids[0], 0, NULL, NULL);
    submit(t);
    assert_int_equal(sync_resp(t).err, DP_KERR_UNKNOWN_MEMBER_ID);
    hb_req(t, 4, "gg", 99, ids[0]);
    submit(t);
    assert_int_equal(hb_resp(t), DP_KERR_ILLEGAL_GENERATION);
    hb_req(t, 4, "nosuch", 1, ids[0]);
    submit(t);
    assert_int_equal(hb_resp(t), DP_KERR_UNKNOWN_MEMBER_ID);

    commit_req(t, 8, "gg", gen + 1, ids[0], "t", 0, 2, 7, NULL);
    commit_sync(t);
    assert_int_equal(commit_resp(t, errs), 2);
    assert_int_equal(errs[0], DP_KERR_ILLEGAL_GENERATION);
    assert_int_equal(errs[1], DP_KERR_ILLEGAL_GENERATION);
    commit_req(t, 8, "gg", gen, "cli-who", "t", 0, 1, 7, NULL);
    commit_sync(t);
    commit_resp(t, errs);
    assert_int_equal(errs[0], DP_KERR_UNKNOWN_MEMBER_ID);
    commit_req(t, 8, "gg", -1, "", "t", 0, 1, 7, NULL);
    commit_sync(t);
    commit_resp(t, errs);
    assert_int_equal(errs[0], DP_KERR_UNKNOWN_MEMBER_ID);
    commit_req(t, 8, "nosuch", 3, "m", "t", 0, 1, 7, NULL);
    commit_sync(t);
    commit_resp(t, errs);
    assert_int_equal(errs[0], DP_KERR_ILLEGAL_GENERATION);
    assert_null(grp("nosuch"));
    commit_req(t, 7, "gg", gen, ids[0], "t", 0, 2, 7, NULL);
    commit_sync(t);
    assert_commit_ok(t, 2);

    /* PreparingRebalance still takes commits; CompletingRebalance does not. */
    join_req(c, 3, "gg", "", "range", NULL, "C");
    submit(c);
    assert_int_equal(grp("gg")->state, GS_PREPARING);
    commit_req(t, 5, "gg", gen, ids[1], "t", 0, 1, 9, NULL);
    commit_sync(t);
    assert_commit_ok(t, 1);
    sync_req(t, 3, "gg", gen, ids[0], 0, NULL, NULL);
    submit(t);
    assert_int_equal(sync_resp(t).err, DP_KERR_REBALANCE_IN_PROGRESS);
    join_req(a, 5, "gg", ids[0], "range", NULL, "m");
    submit(a);
    join_req(b, 5, "gg", ids[1], "range", NULL, "m");
    submit(b);
    assert_int_equal(join_resp(a).gen, gen + 1);
    assert_int_equal(join_resp(b).err, 0);
    assert_int_equal(join_resp(c).err, 0);
    assert_int_equal(grp("gg")->state, GS_COMPLETING);
    commit_req(t, 5, "gg", gen + 1, ids[1], "t", 0, 1, 9, NULL);
    commit_sync(t);
    commit_resp(t, errs);
    assert_int_equal(errs[0], DP_KERR_REBALANCE_IN_PROGRESS);
    commit_req(t, 5, "gg", gen, ids[1], "t", 0, 1, 9, NULL);
    commit_sync(t);
    commit_resp(t, errs);
    assert_int_equal(errs[0], DP_KERR_ILLEGAL_GENERATION);
    /* B parks in sync; a new join resets the round and B must rejoin. */
    sync_req(b, 3, "gg", gen + 1, ids[1], 0, NULL, NULL);
    submit(b);
    assert_int_equal(b->fired, 0);
    join_req(a, 5, "gg", ids[0], "range", "roundrobin", "m2");
    submit(a);
    assert_int_equal(sync_resp(b).err, DP_KERR_REBALANCE_IN_PROGRESS);
    assert_int_equal(a->fired, 0);
    dp_group_cancel(fx->m, &a->call);
    free(t);
    free(a);
    free(b);
    free(c);
}

static void test_initial_delay(void **state)
{
    tc_t *a = tc_new(), *b = tc_new();
    jr_t j;

    fx->cfg.initial_rebalance_delay_ms = 100;
    open_mgr();
    join_req(a, 3, "gd", "", "range", NULL, "A");
    submit(a);
    assert_int_equal(a->fired, 0);
    fx->now += 50;
    join_req(b, 3, "gd", "", "range", NULL, "B");
    submit(b);
    fx->now += 50;
    dp_group_tick(fx->m, fx->now);
    assert_int_equal(a->fired, 0); /* extended: a member came during the delay */
    fx->now += 99;
    dp_group_tick(fx->m, fx->now);
    assert_int_equal(a->fired, 0);
    fx->now += 1;
    dp_group_tick(fx->m, fx->now);
    j = join_resp(a);
    assert_int_equal(j.gen, 1);
    assert_int_equal(j.n, 2);
    assert_int_equal(join_resp(b).gen, 1);
    free(a);
    free(b);
}

static int reentered;

/* A callback that sends the next request from inside the callback. */
static void on_done_reenter(dp_group_call_t *c)
{
    tc_t *t = c->ctx;

    t->fired++;
    if (reentered++ == 0) {
        fetch_req(t, 7, "gz", "t", 1);
        dp_kwr_init(&t->w, t->out, sizeof(t->out));
        dp_group_handle(fx->m, &t->call, fx->now);
    }
}

static void test_cancel_and_reentry(void **state)
{
    char ids[4][DP_GROUP_MEMBER_ID_BYTES_MAX + 1];
    tc_t *a = tc_new(), *b = tc_new(), *t = tc_new();
    jr_t j;

    fx->cfg.commit_slots = 1;
    open_mgr();
    form_group("gc", 1, ids);
    /* B's connection drops while its join is parked: no callback, but B
     * still counts as rejoined, then never syncs or heartbeats and goes. */
    join_req(b, 3, "gc", "", "range", NULL, "B");
    submit(b);
    dp_group_cancel(fx->m, &b->call);
    join_req(a, 5, "gc", ids[0], "range", NULL, "m");
    submit(a);
    j = join_resp(a);
    assert_int_equal(j.n, 2);
    assert_int_equal(b->fired, 0);
    dp_group_cancel(fx->m, &a->call); /* already completed: harmless */
    sync_req(a, 3, "gc", j.gen, ids[0], 0, NULL, NULL);
    submit(a);
    assert_int_equal(sync_resp(a).err, 0);
    fx->now += SESSION_MS;
    hb_req(a, 3, "gc", j.gen, ids[0]);
    submit(a);
    assert_int_equal(hb_resp(a), 0);
    dp_group_tick(fx->m, fx->now);
    assert_int_equal(grp("gc")->nmembers, 1);
    assert_int_equal(b->fired, 0);

    /* One slot: the second commit queues; cancel it, and cancel the first
     * in flight: no callbacks, but the first still commits. */
    commit_req(a, 8, "solo", -1, "", "t", 0, 1, 41, NULL);
    submit(a);
    commit_req(b, 8, "solo", -1, "", "t", 1, 1, 42, NULL);
    submit(b);
    assert_int_equal(b->call.where, W_QUEUED);
    dp_group_cancel(fx->m, &b->call);
    dp_group_cancel(fx->m, &a->call);
    drive_idle();
    assert_int_equal(a->fired, 0);
    assert_int_equal(b->fired, 0);
    fetch_req(t, 7, "solo", "t", 2);
    submit(t);
    assert_int_equal(fetch_resp(t)->offset[0], 41);
    assert_int_equal(fetch_resp(t)->offset[1], -1);

    /* A callback may hand in the next request. */
    reentered = 0;
    join_req(t, 3, "gz", "", "range", NULL, "Z");
    dp_kwr_init(&t->w, t->out, sizeof(t->out));
    t->fired = 0;
    t->call.req = &t->req;
    t->call.w = &t->w;
    t->call.cb = on_done_reenter;
    t->call.ctx = t;
    dp_group_handle(fx->m, &t->call, fx->now);
    assert_int_equal(reentered, 2);
    assert_int_equal(t->fired, 2);
    assert_int_equal(grp("gz")->nmembers, 1);
    t->fired = 1;
    assert_int_equal(fetch_resp(t)->offset[0], -1);
    free(a);
    free(b);
    free(t);
}

static void test_offsets_durable(void **state)
{
    tc_t *t = tc_new();
    char big[300];
    int16_t errs[8];
    fr_t *f;

    open_mgr();
    commit_req(t, 8, "kg", -1, "", "t1", 0, 3, 10, "m");
    t->cparts[0][1].committed_metadata = (dp_kstr_t){NULL, -1};
    submit(t);
    assert_int_equal(t->fired, 0); /* answered only once durable */
    wait_fired(t);
    assert_commit_ok(t, 3);
    assert_int_equal(dp_group_stats(fx->m)->commits, 1);
    commit_req(t, 2, "kg", -1, "", "t2", 4, 2, 100, "");
    commit_sync(t);
    assert_commit_ok(t, 2);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    commit_req(t, 6, "kg", -1, "", "t2", 6, 2, 200, big);
    t->cparts[0][1].committed_metadata = dp_kstr("ok");
    commit_sync(t);
    assert_int_equal(commit_resp(t, errs), 2);
    assert_int_equal(errs[0], KERR_OFFSET_METADATA_TOO_LARGE);
    assert_int_equal(errs[1], 0);

    fetch_req(t, 7, "kg", "t1", 4);
    submit(t);
    f = fetch_resp(t);
    assert_int_equal(f->top, 0);
    assert_int_equal(f->n, 4);
    assert_int_equal(f->offset[0], 10);
    assert_int_equal(f->offset[1], 11);
    assert_int_equal(f->offset[2], 12);
    assert_int_equal(f->offset[3], -1);
    assert_int_equal(f->epoch[0], 5);
    assert_int_equal(f->epoch[3], -1);
    assert_string_equal(f->meta[0], "m");
    assert_string_equal(f->meta[1], "");
    fetch_req(t, 1, "kg", "t2", 8);
    submit(t);
    f = fetch_resp(t);
    assert_int_equal(f->offset[4], 100);
    assert_int_equal(f->offset[5], 101);
    assert_int_equal(f->offset[6], -1);
    assert_int_equal(f->offset[7], 201);
    assert_string_equal(f->meta[7], "ok");

    /* Everything survives a reopen on the same directory. */
    close_mgr();
    open_mgr();
    assert_int_equal(dp_group_stats(fx->m)->replay_records, 6);
    assert_int_equal(dp_group_stats(fx->m)->offsets, 6);
    fetch_req(t, 2, "kg", NULL, 0);
    submit(t);
    f = fetch_resp(t);
    assert_int_equal(f->ntopics, 2);
    assert_true(strcmp(f->topics[0], "t1") == 0 || strcmp(f->topics[1], "t1") == 0);
    assert_true(strcmp(f->topics[0], "t2") == 0 || strcmp(f->topics[1], "t2") == 0);
    assert_int_equal(f->n, 6);
    {
        int64_t sum = 0;

        for (int i = 0; i < f->n; i++) {
            assert_int_equal(f->err[i], 0);
            sum += f->offset[i];
        }
        assert_int_equal(sum, 10 + 11 + 12 + 100 + 101 + 201);
    }
    fetch_req(t, 6, "kg", "t1", 3);
    submit(t);
    f = fetch_resp(t);
    assert_int_equal(f->offset[2], 12);
    assert_int_equal(f->epoch[2], 5);
    assert_string_equal(f->meta[0], "m");
    fetch_req(t, 3, "nobody", "t1", 2);
    submit(t);
    f = fetch_resp(t);
    assert_int_equal(f->offset[0], -1);
    fetch_req(t, 7, "nobody", NULL, 0);
    submit(t);
    assert_int_equal(fetch_resp(t)->ntopics, 0);
    /* Overwrite after reopen, reopen again: the newest value wins. */
    commit_req(t, 8, "kg", -1, "", "t1", 0, 1, 77, NULL);
    commit_sync(t);
    close_mgr();
    open_mgr();
    fetch_req(t, 7, "kg", "t1", 2);
    submit(t);
    f = fetch_resp(t);
    assert_int_equal(f->offset[0], 77);
    assert_int_equal(f->offset[1], 11);
    free(t);
}

static void test_snapshot_truncation(void **state)
{
    tc_t *t = tc_new();
    dp_group_mgr_t *m;
    fr_t *f;

    fx->cfg.offsets_log_segment_bytes = 8192;
    open_mgr();
    m = fx->m;
    /* 200 live offsets (several snapshot batches at 8 KiB), then churn. */
    for (int i = 0; i < 4; i++) {
        commit_req(t, 8, "sg", -1, "", "t", i * 50, 50, 1000 * i, NULL);
        commit_sync(t);
        assert_commit_ok(t, 50);
    }
    for (int i = 0; i < 400; i++) {
        commit_req(t, 8, "sg", -1, "", "u", 0, 4, i, NULL);
        commit_sync(t);
        assert_commit_ok(t, 4);
        assert_true(dp_log_segment_count(m->log) <= COMPACT_SEGMENTS + 3);
    }
    drive_idle();
    assert_true(dp_group_stats(m)->snapshots >= 2);
    assert_true(dp_log_start_offset(m->log) > 0);
    close_mgr();
    open_mgr();
    m = fx->m;
    assert_int_equal(dp_group_stats(m)->offsets, 204);
    /* The replay starts at the last snapshot, not at the first commit. */
    assert_true(dp_group_stats(m)->replay_records < 204 + 4 * 400 / 2);
    fetch_req(t, 7, "sg", "u", 4);
    submit(t);
    f = fetch_resp(t);
    for (int i = 0; i < 4; i++)
        assert_int_equal(f->offset[i], 399 + i);
    fetch_req(t, 7, "sg", "t", 60);
    submit(t);
    f = fetch_resp(t);
    assert_int_equal(f->offset[0], 0);
    assert_int_equal(f->offset[59], 1009);
    free(t);
}

static int64_t fake_wall;

static int64_t fake_wall_ms(void)
{
    return fake_wall;
}

static void test_retention(void **state)
{
    char ids[4][DP_GROUP_MEMBER_ID_BYTES_MAX + 1];
    tc_t *t = tc_new();
    int32_t gen;

    fx->cfg.offsets_retention_ms = 60000;
    fx->cfg.offsets_retention_check_interval_ms = 1000;
    open_mgr();
    fake_wall = 1700000000000;
    fx->m->wall_ms = fake_wall_ms;
    commit_req(t, 8, "old", -1, "", "t", 0, 2, 5, NULL);
    commit_sync(t);
    gen = form_group("live", 1, ids);
    commit_req(t, 8, "live", gen, ids[0], "t", 0, 1, 6, NULL);
    commit_sync(t);
    assert_commit_ok(t, 1);
    fake_wall += 59999;
    fx->now += 1000;
    hb_req(t, 0, "live", gen, ids[0]);
    submit(t);
    dp_group_tick(fx->m, fx->now);
    assert_int_equal(dp_group_stats(fx->m)->offsets, 3);
    fake_wall += 1;
    fx->now += 1000;
    hb_req(t, 0, "live", gen, ids[0]);
    submit(t);
    dp_group_tick(fx->m, fx->now);
    /* "old" expired (and its group went away); "live" has a member. */
    assert_int_equal(dp_group_stats(fx->m)->offsets_expired, 2);
    assert_int_equal(dp_group_stats(fx->m)->offsets, 1);
    assert_null(grp("old"));
    fetch_req(t, 7, "old", "t", 2);
    submit(t);
    assert_int_equal(fetch_resp(t)->offset[0], -1);
    close_mgr();
    open_mgr();
    fetch_req(t, 7, "old", "t", 2);
    submit(t);
    assert_int_equal(fetch_resp(t)->offset[0], -1);
    assert_int_equal(fetch_resp(t)->offset[1], -1);
    fetch_req(t, 7, "live", "t", 1);
    submit(t);
    assert_int_equal(fetch_resp(t)->offset[0], 6);
    free(t);
}

static bool check_topic(void *ctx, dp_kstr_t topic, int32_t partition)
{
    (void)ctx;
    return !(topic.len == 4 && memcmp(topic.ptr, "nope", 4) == 0) && partition < 100;
}

static void test_limits_groups(void **state)
{
    tc_t *t = tc_new(), *u = tc_new();
    char meta[2000];
    jr_t j;

    fx->cfg.groups_max = 2;
    fx->cfg.members_max = 2;
    fx->cfg.metadata_bytes_max = 1024;
    open_mgr();
    join_req(t, 5, "g1", "", "range", NULL, "m");
    submit(t);
    assert_int_equal(join_resp(t).err, DP_KERR_MEMBER_ID_REQUIRED);
    join_req(t, 5, "g2", "", "range", NULL, "m");
    submit(t);
    assert_int_equal(join_resp(t).err, DP_KERR_MEMBER_ID_REQUIRED);
    join_req(t, 5, "g3", "", "range", NULL, "m");
    submit(t);
    assert_int_equal(join_resp(t).err, DP_KERR_COORDINATOR_NOT_AVAILABLE);
    join_req(t, 5, "g1", "", "range", NULL, "m");
    submit(t);
    assert_int_equal(join_resp(t).err, DP_KERR_MEMBER_ID_REQUIRED);
    join_req(t, 5, "g1", "", "range", NULL, "m");
    submit(t);
    j = join_resp(t);
    assert_int_equal(j.err, DP_KERR_GROUP_MAX_SIZE_REACHED);
    assert_string_equal(j.member, "");
    /* Oversized metadata, bad session timeouts, bad group ids. */
    memset(meta, 'q', sizeof(meta) - 1);
    meta[sizeof(meta) - 1] = '\0';
    join_req(t, 5, "g2", "", "range", NULL, "m");
    t->protos[0].metadata = (dp_kbytes_t){(const uint8_t *)meta, (int32_t)sizeof(meta)};
    submit(t);
    assert_int_equal(join_resp(t).err, DP_KERR_INVALID_REQUEST);
    join_req(t, 5, "g2", "", "range", NULL, "m");
    t->req.u.join_group.session_timeout_ms = 100;
    submit(t);
    assert_int_equal(join_resp(t).err, DP_KERR_INVALID_SESSION_TIMEOUT);
    join_req(t, 5, "", "", "range", NULL, "m");
    submit(t);
    assert_int_equal(join_resp(t).err, KERR_INVALID_GROUP_ID);
    join_req(t, 7, NULL, "", "range", NULL, "m");
    submit(t);
    assert_int_equal(join_resp(t).err, KERR_INVALID_GROUP_ID);
    hb_req(t, 4, NULL, 1, "x");
    submit(t);
    assert_int_equal(hb_resp(t), KERR_INVALID_GROUP_ID);
    /* Malformed hand-built requests are answered, not crashed on. */
    join_req(t, 5, "g2", "", "range", NULL, "m");
    t->req.u.join_group.protocols = NULL;
    submit(t);
    assert_int_equal(join_resp(t).err, DP_KERR_INVALID_REQUEST);
    join_req(t, 5, "g2", "", "range", NULL, "m");
    t->req.u.join_group.member_id = (dp_kstr_t){NULL, 12};
    t->req.hdr.client_id = (dp_kstr_t){NULL, 40};
    submit(t);
    assert_int_equal(join_resp(t).err, DP_KERR_MEMBER_ID_REQUIRED);
    leave_req(t, 4, "g2", 1, (const char *const[]){"x"});
    t->req.u.leave_group.members = NULL;
    submit(t);
    assert_int_equal(leave_resp(t, (int16_t[8]){0}, &(int){0}), DP_KERR_INVALID_REQUEST);
    sync_req(t, 5, "g2", 1, "x", 0, NULL, NULL);
    t->req.u.sync_group.assignment_count = -7;
    submit(t);
    assert_int_equal(sync_resp(t).err, DP_KERR_UNKNOWN_MEMBER_ID);
    /* Versions the module does not answer: nothing written. */
    join_req(t, 9, "g2", "", "range", NULL, "m");
    submit(t);
    assert_int_equal(t->fired, 1);
    assert_int_equal(t->call.result, -EPROTONOSUPPORT);
    assert_int_equal(t->w.off, 0);
    hdr(t, DP_KAPI_FETCH, 4);
    submit(t);
    assert_int_equal(t->call.result, -EPROTONOSUPPORT);
    /* A writer too small for the answer. */
    join_req(u, 5, "g2", "", "range", NULL, "m");
    u->call.req = &u->req;
    u->call.cb = on_done;
    u->call.ctx = u;
    u->call.w = &u->w;
    dp_kwr_init(&u->w, u->out, 8);
    dp_group_handle(fx->m, &u->call, fx->now);
    assert_int_equal(u->fired, 1);
    assert_int_equal(u->call.result, -ENOBUFS);
    free(t);
    free(u);
}

static void test_limits_offsets(void **state)
{
    tc_t *t = tc_new();
    char longname[300];
    int16_t errs[64];

    fx->cfg.offsets_max = 8;
    fx->cfg.topics_max = 2;
    fx->cfg.partition_check = check_topic;
    open_mgr();
    commit_req(t, 8, "lg", -1, "", "t", 0, 9, 0, NULL);
    commit_sync(t);
    assert_int_equal(commit_resp(t, errs), 9);
    for (int i = 0; i < 9; i++)
        assert_int_equal(errs[i], DP_KERR_COORDINATOR_NOT_AVAILABLE);
    commit_req(t, 8, "lg", -1, "", "t", 0, 7, 0, NULL);
    commit_sync(t);
    assert_commit_ok(t, 7);
    commit_req(t, 8, "lg", -1, "", "t", 0, 7, 50, NULL);
    commit_sync(t);
    assert_commit_ok(t, 7); /* updates need no room */
    commit_req(t, 8, "lg", -1, "", "u", 0, 1, 0, NULL);
    commit_sync(t);
    assert_commit_ok(t, 1);
    commit_req(t, 8, "lg", -1, "", "v", 0, 1, 0, NULL);
    commit_sync(t);
    commit_resp(t, errs);
    assert_int_equal(errs[0], DP_KERR_COORDINATOR_NOT_AVAILABLE); /* topics_max */
    commit_req(t, 8, "lg", -1, "", "nope", 0, 1, 0, NULL);
    commit_sync(t);
    commit_resp(t, errs);
    assert_int_equal(errs[0], DP_KERR_UNKNOWN_TOPIC_OR_PARTITION);
    commit_req(t, 8, "lg", -1, "", "t", -1, 1, 0, NULL);
    commit_sync(t);
    commit_resp(t, errs);
    assert_int_equal(errs[0], DP_KERR_UNKNOWN_TOPIC_OR_PARTITION);
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    commit_req(t, 8, "lg", -1, "", longname, 0, 1, 0, NULL);
    commit_sync(t);
    commit_resp(t, errs);
    assert_int_equal(errs[0], DP_KERR_UNKNOWN_TOPIC_OR_PARTITION);
    commit_req(t, 8, NULL, -1, "", "t", 0, 1, 0, NULL);
    commit_sync(t);
    commit_resp(t, errs);
    assert_int_equal(errs[0], KERR_INVALID_GROUP_ID);
    fetch_req(t, 7, NULL, "t", 1);
    submit(t);
    assert_int_equal(fetch_resp(t)->top, KERR_INVALID_GROUP_ID);
    fetch_req(t, 7, "lg", "t", 8);
    submit(t);
    assert_int_equal(fetch_resp(t)->offset[6], 56);
    assert_int_equal(dp_group_stats(fx->m)->offsets, 8);
    free(t);
}

/* Requests that went through the real codec (encode, decode) work too. */
static void test_wire_roundtrip(void **state)
{
    static uint64_t arena_mem[8192];
    static uint8_t wire[4096];
    tc_t *src = tc_new(), *t = tc_new();
    dp_karena_t arena;
    dp_kwr_t w;
    jr_t j;

    open_mgr();
    join_req(src, 7, "gw", "", "cooperative-sticky", NULL, "W");
    dp_kwr_init(&w, wire, sizeof(wire));
    assert_int_equal(dp_kproto_req_encode(&w, &src->req), 0);
    dp_karena_init(&arena, arena_mem, sizeof(arena_mem));
    assert_int_equal(dp_kproto_req_decode(wire + 4, w.off - 4, &arena, &t->req), 0);
    submit(t);
    j = join_resp(t);
    assert_int_equal(j.err, DP_KERR_MEMBER_ID_REQUIRED);
    strcpy(src->str[1], j.member);
    src->req.u.join_group.member_id = dp_kstr(src->str[1]);
    dp_kwr_init(&w, wire, sizeof(wire));
    assert_int_equal(dp_kproto_req_encode(&w, &src->req), 0);
    dp_karena_init(&arena, arena_mem, sizeof(arena_mem));
    assert_int_equal(dp_kproto_req_decode(wire + 4, w.off - 4, &arena, &t->req), 0);
    submit(t);
    j = join_resp(t);
    assert_int_equal(j.err, 0);
    assert_string_equal(j.pname, "cooperative-sticky");
    assert_string_equal(j.metas[0], "W:cooperative-sticky");
    free(src);
    free(t);
}

static void test_close_answers_parked(void **state)
{
    tc_t *a = tc_new(), *b = tc_new();
    char ida[200];

    open_mgr();
    join_req(a, 5, "gx", "", "range", NULL, "A");
    submit(a);
    strcpy(ida, join_resp(a).member);
    join_req(a, 5, "gx", ida, "range", NULL, "A");
    submit(a);
    join_req(b, 3, "gx", "", "range", NULL, "B");
    submit(b);
    assert_int_equal(b->fired, 0);
    commit_req(a, 8, "gx2", -1, "", "t", 0, 1, 1, NULL);
    submit(a);
    assert_int_equal(dp_group_mgr_close(fx->m), -EBUSY);
    drive_idle();
    assert_int_equal(a->fired, 1);
    assert_int_equal(dp_group_mgr_close(fx->m), 0);
    fx->m = NULL;
    assert_int_equal(join_resp(b).err, DP_KERR_NOT_COORDINATOR);
    free(a);
    free(b);
}

/* ---- randomized ---------------------------------------------------------- */

/* Counters and links of every group agree with its members. */
static void check_invariants(void)
{
    dp_group_mgr_t *m = fx->m;
    uint32_t total = 0;

    for (uint32_t gi = 0; gi < m->cfg.groups_max; gi++) {
        grp_t *g = &m->groups[gi];
        uint32_t nm = 0, np = 0, naw = 0, nps = 0, ne = 0;
        bool leader_found = false;

        if (!g->used)
            continue;
        for (member_t *mb = g->head; mb != NULL; mb = mb->next) {
            assert_ptr_equal(mb->g, g);
            assert_true(mb->next == NULL || mb->next->prev == mb);
            if (mb->pending) {
                np++;
                assert_false(mb->awaiting_join);
                assert_null(mb->join_call);
                assert_null(mb->sync_call);
                continue;
            }
            nm++;
            naw += mb->awaiting_join;
            nps += mb->pending_sync;
            leader_found |= mb == g->leader;
            if (mb->join_call != NULL)
                assert_int_equal(g->state, GS_PREPARING);
            if (mb->sync_call != NULL)
                assert_int_equal(g->state, GS_COMPLETING);
        }
        for (uint32_t i = g->ents; i != 0; i = m->ents[i - 1].gnext)
            ne++;
        assert_int_equal(nm, g->nmembers);
        assert_int_equal(np, g->npending);
        assert_int_equal(naw, g->nawaiting);
        assert_int_equal(nps, g->npending_sync);
        assert_int_equal(ne, g->nents);
        assert_true(nm == 0 ? g->leader == NULL : leader_found);
        if (g->state == GS_COMPLETING || g->state == GS_STABLE)
            assert_true(nm > 0);
        if (g->state != GS_PREPARING)
            assert_int_equal(naw, 0);
        total += nm + np;
    }
    assert_int_equal(total, m->stats.members);
}

#define ACTORS 8

typedef struct actor {
    tc_t *t;
    int busy; /* submitted, not answered, not cancelled */
    char id[DP_GROUP_MEMBER_ID_BYTES_MAX + 1];
    int32_t gen;
    int16_t api;
} actor_t;

static actor_t actors[ACTORS];

static void on_actor(dp_group_call_t *c)
{
    actor_t *a = c->ctx;
    jr_t j;

    assert_int_equal(a->busy, 1); /* exactly once */
    a->busy = 0;
    a->t->fired = 1;
    if (c->result != 0)
        return;
    if (a->api == DP_KAPI_JOIN_GROUP) {
        j = join_resp(a->t);
        if (j.err == 0 || j.err == DP_KERR_MEMBER_ID_REQUIRED) {
            strcpy(a->id, j.member);
            a->gen = j.gen;
        } else if (j.err == DP_KERR_UNKNOWN_MEMBER_ID) {
            a->id[0] = '\0';
        }
    }
}

static void test_random_ops(void **state)
{
    static const char *groups[2] = {"ra", "rb"};
    static const char *protos[3] = {"range", "roundrobin", "sticky"};
    unsigned seed = 12345;

    if (getenv("WEIR_TEST_SEED") != NULL)
        seed = (unsigned)strtoul(getenv("WEIR_TEST_SEED"), NULL, 10);
    srand(seed);
    fx->cfg.commit_slots = 2;
    fx->cfg.offsets_log_segment_bytes = 8192;
    open_mgr();
    memset(actors, 0, sizeof(actors));
    for (int i = 0; i < ACTORS; i++)
        actors[i].t = tc_new();
    for (int step = 0; step < 4000; step++) {
        actor_t *a = &actors[rand() % ACTORS];
        tc_t *t = a->t;
        const char *g = groups[(a - actors) % 2];
        int op = rand() % 10;

        if (op == 9) {
            fx->now += (uint64_t)(rand() % 4000);
            dp_group_tick(fx->m, fx->now);
        } else if (a->busy) {
            if (op == 0) {
                dp_group_cancel(fx->m, &t->call);
                a->busy = 0;
            }
        } else {
            int32_t gen = rand() % 4 == 0 ? rand() % 5 - 1 : a->gen;

            switch (op) {
            case 0:
            case 1:
            case 2:
                join_req(t, (int16_t)(rand() % 8), g, rand() % 8 == 0 ? "" : a->id,
                         protos[rand() % 2], rand() % 2 ? protos[2] : NULL, "r");
                break;
            case 3: {
                const char *ids[ACTORS];
                const char *as[ACTORS];
                int n = 0;

                for (int k = (int)(a - actors) % 2; k < ACTORS; k += 2) {
                    ids[n] = actors[k].id;
                    as[n++] = "x";
                }
                sync_req(t, (int16_t)(rand() % 6), g, gen, a->id, n > 4 ? 4 : n, ids, as);
                break;
            }
            case 4:
            case 5:
                hb_req(t, (int16_t)(rand() % 5), g, gen, a->id);
                break;
            case 6: {
                const char *ids[1] = {a->id};

                leave_req(t, (int16_t)(rand() % 5), g, 1, ids);
                break;
            }
            case 7:
                commit_req(t, (int16_t)(2 + rand() % 7), g, rand() % 3 ? gen : -1,
                           rand() % 3 ? a->id : "", "t", rand() % 4, 1 + rand() % 3, step, NULL);
                break;
            default:
                fetch_req(t, (int16_t)(1 + rand() % 7), g, rand() % 2 ? "t" : NULL, 4);
                break;
            }
            a->api = t->req.hdr.api_key;
            a->busy = 1;
            dp_kwr_init(&t->w, t->out, sizeof(t->out));
            t->fired = 0;
            t->call.req = &t->req;
            t->call.w = &t->w;
            t->call.cb = on_actor;
            t->call.ctx = a;
            dp_group_handle(fx->m, &t->call, fx->now);
        }
        dp_ring_run_once(&fx->ring, 0, 0);
        check_invariants();
    }
    drive_idle();
    check_invariants();
    assert_int_equal(dp_group_mgr_close(fx->m), 0);
    fx->m = NULL;
    for (int i = 0; i < ACTORS; i++) {
        assert_int_equal(actors[i].busy, 0); /* close answered the rest */
        free(actors[i].t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_member_rebalance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_choice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_id_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebalance_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_sync_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generation_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initial_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_reentry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offsets_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wire_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_answers_parked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_ops, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
