/* SPDX-License-Identifier: Apache-2.0 */
/* Kafka request decoding and response encoding for the store. Decoders are
 * bounded twice: by the bytes of the request (dp_kbuf) and by a count cap and
 * a caller-owned arena, so a hostile request cannot make the store allocate. */
#include "dp_kproto.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

/* Ordered by api_key. flex_version is the first version with tagged fields. */
static const dp_kapi_range_t api_table[] = {
    {DP_KAPI_PRODUCE, 3, 9, 9},          {DP_KAPI_FETCH, 4, 12, 12},
    {DP_KAPI_LIST_OFFSETS, 1, 7, 6},     {DP_KAPI_METADATA, 1, 12, 9},
    {DP_KAPI_OFFSET_COMMIT, 2, 8, 8},    {DP_KAPI_OFFSET_FETCH, 1, 7, 6},
    {DP_KAPI_FIND_COORDINATOR, 0, 4, 3}, {DP_KAPI_JOIN_GROUP, 0, 7, 6},
    {DP_KAPI_HEARTBEAT, 0, 4, 4},        {DP_KAPI_LEAVE_GROUP, 0, 4, 4},
    {DP_KAPI_SYNC_GROUP, 0, 5, 4},       {DP_KAPI_API_VERSIONS, 0, 3, 3},
    {DP_KAPI_CREATE_TOPICS, 2, 7, 5},    {DP_KAPI_DELETE_TOPICS, 1, 6, 4},
    {DP_KAPI_INIT_PRODUCER_ID, 0, 4, 2}, {DP_KAPI_DESCRIBE_CONFIGS, 1, 4, 4},
};

#define API_TABLE_LEN (sizeof(api_table) / sizeof(api_table[0]))

const dp_kapi_range_t *dp_kproto_api_table(size_t *count)
{
    *count = API_TABLE_LEN;
    return api_table;
}

const dp_kapi_range_t *dp_kproto_api_lookup(int16_t api_key)
{
    for (size_t i = 0; i < API_TABLE_LEN; i++) {
        if (api_table[i].api_key == api_key)
            return &api_table[i];
    }
    return NULL;
}

bool dp_kproto_version_supported(int16_t api_key, int16_t api_version)
{
    const dp_kapi_range_t *row = dp_kproto_api_lookup(api_key);

    return row != NULL && api_version >= row->min_version && api_version <= row->max_version;
}

bool dp_kproto_is_flexible(int16_t api_key, int16_t api_version)
{
    const dp_kapi_range_t *row = dp_kproto_api_lookup(api_key);

    return row != NULL && api_version >= row->flex_version;
}

void dp_karena_init(dp_karena_t *a, void *buf, size_t cap)
{
    assert(a != NULL);
    assert(buf != NULL || cap == 0);
    a->base = buf;
    a->cap = cap;
    a->used = 0;
}

int64_t dp_kproto_frame_size(const void *buf, size_t len, int32_t max_bytes)
{
    dp_krd_t r;
    int32_t size;

    if (len < 4)
        return -EAGAIN;
    dp_krd_init(&r, buf, 4);
    size = dp_krd_i32(&r);
    if (size <= 0 || size > max_bytes)
        return -EMSGSIZE;
    return size;
}

/* Every arena element fits the DP_KPROTO_ARENA_BYTES promise. */
#define ARENA_ELEM_OK(t) _Static_assert(sizeof(t) <= 56, #t " too big for DP_KPROTO_ARENA_BYTES")
ARENA_ELEM_OK(dp_kstr_t);
ARENA_ELEM_OK(dp_kproduce_part_t);
ARENA_ELEM_OK(dp_kproduce_topic_t);
ARENA_ELEM_OK(dp_kfetch_part_t);
ARENA_ELEM_OK(dp_kfetch_topic_t);
ARENA_ELEM_OK(dp_kfetch_forgotten_t);
ARENA_ELEM_OK(dp_klist_offsets_part_t);
ARENA_ELEM_OK(dp_klist_offsets_topic_t);
ARENA_ELEM_OK(dp_kcreate_assign_t);
ARENA_ELEM_OK(dp_kconfig_kv_t);
ARENA_ELEM_OK(dp_kcreate_topic_t);
ARENA_ELEM_OK(dp_kdescribe_resource_t);
ARENA_ELEM_OK(dp_kjoin_protocol_t);
ARENA_ELEM_OK(dp_ksync_assignment_t);
ARENA_ELEM_OK(dp_kleave_member_t);
ARENA_ELEM_OK(dp_kcommit_part_t);
ARENA_ELEM_OK(dp_kcommit_topic_t);
ARENA_ELEM_OK(dp_koffset_fetch_topic_t);

/* Decoder state: the reader, the arena and the entry budget. */
typedef struct dec {
    dp_krd_t r;
    dp_karena_t *arena;
    int32_t entries;
    int16_t v;
    bool flex;
} dec_t;

/* Takes `n` entries from the budget and room for n * size bytes from the
 * arena; on failure sets -ENOBUFS and returns NULL. */
static void *dec_alloc(dec_t *d, int32_t n, size_t size)
{
    dp_karena_t *a = d->arena;
    size_t align = 8, start, bytes;

    assert(n >= 0);
    if (d->r.err != 0 || n == 0)
        return NULL;
    if (n > DP_KPROTO_MAX_ENTRIES - d->entries) {
        dp_krd_fail(&d->r, -ENOBUFS);
        return NULL;
    }
    d->entries += n;
    start = (a->used + align - 1) & ~(align - 1);
    bytes = (size_t)n * size;
    if (start > a->cap || bytes > a->cap - start) {
        dp_krd_fail(&d->r, -ENOBUFS);
        return NULL;
    }
    a->used = start + bytes;
    assert(a->used <= a->cap);
    return (uint8_t *)a->base + start;
}

/* A non-nullable array count; `min_elem` bounds it by the bytes left. */
static int32_t dec_arr(dec_t *d, size_t min_elem)
{
    int32_t n = dp_krd_arrlen(&d->r, d->flex, min_elem);

    if (n < 0) {
        dp_krd_fail(&d->r, -EBADMSG);
        return 0;
    }
    return n;
}

static void dec_tags(dec_t *d)
{
    if (d->flex)
        dp_krd_skip_tags(&d->r);
}

static void dec_api_versions(dec_t *d, dp_kreq_api_versions_t *b)
{
    if (d->v >= 3) {
        b->client_software_name = dp_krd_cstr(&d->r);
        b->client_software_version = dp_krd_cstr(&d->r);
    }
    dec_tags(d);
}

static void dec_metadata(dec_t *d, dp_kreq_metadata_t *b)
{
    dp_krd_t *r = &d->r;
    int32_t n = dp_krd_arrlen(r, d->flex, 1);

    b->topic_count = n;
    b->topics = n > 0 ? dec_alloc(d, n, sizeof(*b->topics)) : NULL;
    for (int32_t i = 0; i < n && r->err == 0; i++) {
        if (d->v >= 10) {
            uint8_t id[16];

            dp_krd_uuid(r, id);
            b->topics[i] = dp_krd_cnstr(r);
        } else {
            b->topics[i] = dp_krd_str_f(r, d->flex);
        }
        dec_tags(d);
    }
    b->allow_auto_topic_creation = d->v >= 4 ? dp_krd_bool(r) : true;
    if (d->v >= 8 && d->v <= 10)
        b->include_cluster_authorized_operations = dp_krd_bool(r);
    if (d->v >= 8)
        b->include_topic_authorized_operations = dp_krd_bool(r);
    dec_tags(d);
}

static void dec_produce(dec_t *d, dp_kreq_produce_t *b)
{
    dp_krd_t *r = &d->r;

    b->transactional_id = dp_krd_nstr_f(r, d->flex);
    b->acks = dp_krd_i16(r);
    b->timeout_ms = dp_krd_i32(r);
    b->topic_count = dec_arr(d, 2);
    b->topics = dec_alloc(d, b->topic_count, sizeof(*b->topics));
    for (int32_t i = 0; i < b->topic_count && r->err == 0; i++) {
        dp_kproduce_topic_t *t = &b->topics[i];

        t->name = dp_krd_str_f(r, d->flex);
        t->part_count = dec_arr(d, 5);
        t->parts = dec_alloc(d, t->part_count, sizeof(*t->parts));
        for (int32_t j = 0; j < t->part_count && r->err == 0; j++) {
            t->parts[j].partition = dp_krd_i32(r);
            t->parts[j].records = dp_krd_bytes_f(r, d->flex);
            dec_tags(d);
        }
        dec_tags(d);
    }
    dec_tags(d);
}

static void dec_fetch(dec_t *d, dp_kreq_fetch_t *b)
{
    dp_krd_t *r = &d->r;

    b->replica_id = dp_krd_i32(r);
    b->max_wait_ms = dp_krd_i32(r);
    b->min_bytes = dp_krd_i32(r);
    b->max_bytes = dp_krd_i32(r);
    b->isolation_level = dp_krd_i8(r);
    b->session_id = 0;
    b->session_epoch = -1;
    if (d->v >= 7) {
        b->session_id = dp_krd_i32(r);
        b->session_epoch = dp_krd_i32(r);
    }
    b->topic_count = dec_arr(d, 2);
    b->topics = dec_alloc(d, b->topic_count, sizeof(*b->topics));
    for (int32_t i = 0; i < b->topic_count && r->err == 0; i++) {
        dp_kfetch_topic_t *t = &b->topics[i];

        t->name = dp_krd_str_f(r, d->flex);
        t->part_count = dec_arr(d, 16);
        t->parts = dec_alloc(d, t->part_count, sizeof(*t->parts));
        for (int32_t j = 0; j < t->part_count && r->err == 0; j++) {
            dp_kfetch_part_t *p = &t->parts[j];

            p->partition = dp_krd_i32(r);
            p->current_leader_epoch = d->v >= 9 ? dp_krd_i32(r) : -1;
            p->fetch_offset = dp_krd_i64(r);
            p->last_fetched_epoch = d->v >= 12 ? dp_krd_i32(r) : -1;
            p->log_start_offset = d->v >= 5 ? dp_krd_i64(r) : -1;
            p->partition_max_bytes = dp_krd_i32(r);
            dec_tags(d);
        }
        dec_tags(d);
    }
    if (d->v >= 7) {
        b->forgotten_count = dec_arr(d, 2);
        b->forgotten = dec_alloc(d, b->forgotten_count, sizeof(*b->forgotten));
        for (int32_t i = 0; i < b->forgotten_count && r->err == 0; i++) {
            dp_kfetch_forgotten_t *f = &b->forgotten[i];

            f->name = dp_krd_str_f(r, d->flex);
            f->part_count = dec_arr(d, 4);
            f->parts = dec_alloc(d, f->part_count, sizeof(*f->parts));
            for (int32_t j = 0; j < f->part_count && r->err == 0; j++)
                f->parts[j] = dp_krd_i32(r);
            dec_tags(d);
        }
    }
    b->rack_id.ptr = "";
    b->rack_id.len = 0;
    if (d->v >= 11)
        b->rack_id = dp_krd_str_f(r, d->flex);
    dec_tags(d);
}

static void dec_list_offsets(dec_t *d, dp_kreq_list_offsets_t *b)
{
    dp_krd_t *r = &d->r;

    b->replica_id = dp_krd_i32(r);
    b->isolation_level = d->v >= 2 ? dp_krd_i8(r) : 0;
    b->topic_count = dec_arr(d, 2);
    b->topics = dec_alloc(d, b->topic_count, sizeof(*b->topics));
    for (int32_t i = 0; i < b->topic_count && r->err == 0; i++) {
        dp_klist_offsets_topic_t *t = &b->topics[i];

        t->name = dp_krd_str_f(r, d->flex);
        t->part_count = dec_arr(d, 12);
        t->parts = dec_alloc(d, t->part_count, sizeof(*t->parts));
        for (int32_t j = 0; j < t->part_count && r->err == 0; j++) {
            dp_klist_offsets_part_t *p = &t->parts[j];

            p->partition = dp_krd_i32(r);
            p->current_leader_epoch = d->v >= 4 ? dp_krd_i32(r) : -1;
            p->timestamp = dp_krd_i64(r);
            dec_tags(d);
        }
        dec_tags(d);
    }
    dec_tags(d);
}

static void dec_init_producer_id(dec_t *d, dp_kreq_init_producer_id_t *b)
{
    dp_krd_t *r = &d->r;

    b->transactional_id = dp_krd_nstr_f(r, d->flex);
    b->transaction_timeout_ms = dp_krd_i32(r);
    b->producer_id = d->v >= 3 ? dp_krd_i64(r) : -1;
    b->producer_epoch = d->v >= 3 ? dp_krd_i16(r) : -1;
    dec_tags(d);
}

static void dec_find_coordinator(dec_t *d, dp_kreq_find_coordinator_t *b)
{
    dp_krd_t *r = &d->r;
    dp_kstr_t key = {NULL, -1};

    if (d->v <= 3)
        key = dp_krd_str_f(r, d->flex);
    b->key_type = d->v >= 1 ? dp_krd_i8(r) : 0;
    if (d->v >= 4) {
        b->key_count = dec_arr(d, 1);
        b->keys = dec_alloc(d, b->key_count, sizeof(*b->keys));
        for (int32_t i = 0; i < b->key_count && r->err == 0; i++)
            b->keys[i] = dp_krd_cstr(r);
    } else {
        b->key_count = 1;
        b->keys = dec_alloc(d, 1, sizeof(*b->keys));
        if (b->keys != NULL)
            b->keys[0] = key;
    }
    dec_tags(d);
}

/* Reads an INT32 array (non-nullable) into the arena. */
static int32_t *dec_i32s(dec_t *d, int32_t *count)
{
    int32_t *v;

    *count = dec_arr(d, 4);
    v = dec_alloc(d, *count, sizeof(*v));
    for (int32_t i = 0; i < *count && d->r.err == 0; i++)
        v[i] = dp_krd_i32(&d->r);
    return v;
}

static void dec_create_topics(dec_t *d, dp_kreq_create_topics_t *b)
{
    dp_krd_t *r = &d->r;

    b->topic_count = dec_arr(d, 9);
    b->topics = dec_alloc(d, b->topic_count, sizeof(*b->topics));
    for (int32_t i = 0; i < b->topic_count && r->err == 0; i++) {
        dp_kcreate_topic_t *t = &b->topics[i];

        t->name = dp_krd_str_f(r, d->flex);
        t->num_partitions = dp_krd_i32(r);
        t->replication_factor = dp_krd_i16(r);
        t->assignment_count = dec_arr(d, 5);
        t->assignments = dec_alloc(d, t->assignment_count, sizeof(*t->assignments));
        for (int32_t j = 0; j < t->assignment_count && r->err == 0; j++) {
            dp_kcreate_assign_t *a = &t->assignments[j];

            a->partition = dp_krd_i32(r);
            a->broker_ids = dec_i32s(d, &a->broker_count);
            dec_tags(d);
        }
        t->config_count = dec_arr(d, 2);
        t->configs = dec_alloc(d, t->config_count, sizeof(*t->configs));
        for (int32_t j = 0; j < t->config_count && r->err == 0; j++) {
            t->configs[j].name = dp_krd_str_f(r, d->flex);
            t->configs[j].value = dp_krd_nstr_f(r, d->flex);
            dec_tags(d);
        }
        dec_tags(d);
    }
    b->timeout_ms = dp_krd_i32(r);
    b->validate_only = dp_krd_bool(r);
    dec_tags(d);
}

static void dec_delete_topics(dec_t *d, dp_kreq_delete_topics_t *b)
{
    dp_krd_t *r = &d->r;

    b->topic_count = dec_arr(d, 1);
    b->names = dec_alloc(d, b->topic_count, sizeof(*b->names));
    for (int32_t i = 0; i < b->topic_count && r->err == 0; i++) {
        if (d->v >= 6) {
            uint8_t id[16];

            b->names[i] = dp_krd_cnstr(r);
            dp_krd_uuid(r, id);
            dec_tags(d);
        } else {
            b->names[i] = dp_krd_str_f(r, d->flex);
        }
    }
    b->timeout_ms = dp_krd_i32(r);
    dec_tags(d);
}

static void dec_describe_configs(dec_t *d, dp_kreq_describe_configs_t *b)
{
    dp_krd_t *r = &d->r;

    b->resource_count = dec_arr(d, 4);
    b->resources = dec_alloc(d, b->resource_count, sizeof(*b->resources));
    for (int32_t i = 0; i < b->resource_count && r->err == 0; i++) {
        dp_kdescribe_resource_t *res = &b->resources[i];
        int32_t n;

        res->resource_type = dp_krd_i8(r);
        res->resource_name = dp_krd_str_f(r, d->flex);
        n = dp_krd_arrlen(r, d->flex, 1);
        res->key_count = n;
        res->keys = n > 0 ? dec_alloc(d, n, sizeof(*res->keys)) : NULL;
        for (int32_t j = 0; j < n && r->err == 0; j++)
            res->keys[j] = dp_krd_str_f(r, d->flex);
        dec_tags(d);
    }
    b->include_synonyms = dp_krd_bool(r);
    b->include_documentation = d->v >= 3 ? dp_krd_bool(r) : false;
    dec_tags(d);
}

static void dec_join_group(dec_t *d, dp_kreq_join_group_t *b)
{
    dp_krd_t *r = &d->r;

    b->group_id = dp_krd_str_f(r, d->flex);
    b->session_timeout_ms = dp_krd_i32(r);
    b->rebalance_timeout_ms = d->v >= 1 ? dp_krd_i32(r) : -1;
    b->member_id = dp_krd_str_f(r, d->flex);
    b->group_instance_id.len = -1;
    if (d->v >= 5)
        b->group_instance_id = dp_krd_nstr_f(r, d->flex);
    b->protocol_type = dp_krd_str_f(r, d->flex);
    b->protocol_count = dec_arr(d, 2);
    b->protocols = dec_alloc(d, b->protocol_count, sizeof(*b->protocols));
    for (int32_t i = 0; i < b->protocol_count && r->err == 0; i++) {
        b->protocols[i].name = dp_krd_str_f(r, d->flex);
        b->protocols[i].metadata = dp_krd_bytes_f(r, d->flex);
        if (b->protocols[i].metadata.len < 0)
            dp_krd_fail(r, -EBADMSG);
        dec_tags(d);
    }
    dec_tags(d);
}

static void dec_sync_group(dec_t *d, dp_kreq_sync_group_t *b)
{
    dp_krd_t *r = &d->r;

    b->group_id = dp_krd_str_f(r, d->flex);
    b->generation_id = dp_krd_i32(r);
    b->member_id = dp_krd_str_f(r, d->flex);
    b->group_instance_id.len = -1;
    b->protocol_type.len = -1;
    b->protocol_name.len = -1;
    if (d->v >= 3)
        b->group_instance_id = dp_krd_nstr_f(r, d->flex);
    if (d->v >= 5) {
        b->protocol_type = dp_krd_nstr_f(r, d->flex);
        b->protocol_name = dp_krd_nstr_f(r, d->flex);
    }
    b->assignment_count = dec_arr(d, 2);
    b->assignments = dec_alloc(d, b->assignment_count, sizeof(*b->assignments));
    for (int32_t i = 0; i < b->assignment_count && r->err == 0; i++) {
        b->assignments[i].member_id = dp_krd_str_f(r, d->flex);
        b->assignments[i].assignment = dp_krd_bytes_f(r, d->flex);
        if (b->assignments[i].assignment.len < 0)
            dp_krd_fail(r, -EBADMSG);
        dec_tags(d);
    }
    dec_tags(d);
}

static void dec_heartbeat(dec_t *d, dp_kreq_heartbeat_t *b)
{
    dp_krd_t *r = &d->r;

    b->group_id = dp_krd_str_f(r, d->flex);
    b->generation_id = dp_krd_i32(r);
    b->member_id = dp_krd_str_f(r, d->flex);
    b->group_instance_id.len = -1;
    if (d->v >= 3)
        b->group_instance_id = dp_krd_nstr_f(r, d->flex);
    dec_tags(d);
}

static void dec_leave_group(dec_t *d, dp_kreq_leave_group_t *b)
{
    dp_krd_t *r = &d->r;

    b->group_id = dp_krd_str_f(r, d->flex);
    if (d->v <= 2) {
        b->member_count = 1;
        b->members = dec_alloc(d, 1, sizeof(*b->members));
        if (b->members != NULL) {
            b->members[0].member_id = dp_krd_str_f(r, d->flex);
            b->members[0].group_instance_id.ptr = NULL;
            b->members[0].group_instance_id.len = -1;
        }
    } else {
        b->member_count = dec_arr(d, 2);
        b->members = dec_alloc(d, b->member_count, sizeof(*b->members));
        for (int32_t i = 0; i < b->member_count && r->err == 0; i++) {
            b->members[i].member_id = dp_krd_str_f(r, d->flex);
            b->members[i].group_instance_id = dp_krd_nstr_f(r, d->flex);
            dec_tags(d);
        }
    }
    dec_tags(d);
}

static void dec_offset_commit(dec_t *d, dp_kreq_offset_commit_t *b)
{
    dp_krd_t *r = &d->r;

    b->group_id = dp_krd_str_f(r, d->flex);
    b->generation_id = dp_krd_i32(r);
    b->member_id = dp_krd_str_f(r, d->flex);
    b->group_instance_id.len = -1;
    if (d->v >= 7)
        b->group_instance_id = dp_krd_nstr_f(r, d->flex);
    b->retention_time_ms = d->v <= 4 ? dp_krd_i64(r) : -1;
    b->topic_count = dec_arr(d, 2);
    b->topics = dec_alloc(d, b->topic_count, sizeof(*b->topics));
    for (int32_t i = 0; i < b->topic_count && r->err == 0; i++) {
        dp_kcommit_topic_t *t = &b->topics[i];

        t->name = dp_krd_str_f(r, d->flex);
        t->part_count = dec_arr(d, 13);
        t->parts = dec_alloc(d, t->part_count, sizeof(*t->parts));
        for (int32_t j = 0; j < t->part_count && r->err == 0; j++) {
            dp_kcommit_part_t *p = &t->parts[j];

            p->partition = dp_krd_i32(r);
            p->committed_offset = dp_krd_i64(r);
            p->committed_leader_epoch = d->v >= 6 ? dp_krd_i32(r) : -1;
            p->committed_metadata = dp_krd_nstr_f(r, d->flex);
            dec_tags(d);
        }
        dec_tags(d);
    }
    dec_tags(d);
}

static void dec_offset_fetch(dec_t *d, dp_kreq_offset_fetch_t *b)
{
    dp_krd_t *r = &d->r;
    int32_t n;

    b->group_id = dp_krd_str_f(r, d->flex);
    /* null (all topics) is only legal from v2 */
    n = d->v >= 2 ? dp_krd_arrlen(r, d->flex, 2) : dec_arr(d, 2);
    b->topic_count = n;
    b->topics = n > 0 ? dec_alloc(d, n, sizeof(*b->topics)) : NULL;
    for (int32_t i = 0; i < n && r->err == 0; i++) {
        b->topics[i].name = dp_krd_str_f(r, d->flex);
        b->topics[i].parts = dec_i32s(d, &b->topics[i].part_count);
        dec_tags(d);
    }
    b->require_stable = d->v >= 7 ? dp_krd_bool(r) : false;
    dec_tags(d);
}

int dp_kproto_req_decode(const void *buf, size_t len, dp_karena_t *arena, dp_kreq_t *req)
{
    dec_t d;
    dp_kreq_hdr_t *h = &req->hdr;
    int rc;

    assert(arena != NULL && req != NULL);
    memset(req, 0, sizeof(*req));
    dp_krd_init(&d.r, buf, len);
    d.arena = arena;
    d.entries = 0;
    /* Header v1 fields come first in both v1 and v2, so the correlation id
     * is known before we know whether the version is served. */
    h->api_key = dp_krd_i16(&d.r);
    h->api_version = dp_krd_i16(&d.r);
    h->correlation_id = dp_krd_i32(&d.r);
    h->client_id = dp_krd_nstr(&d.r);
    rc = d.r.err;
    if (rc != 0)
        goto out;
    if (!dp_kproto_version_supported(h->api_key, h->api_version)) {
        rc = -EPROTONOSUPPORT;
        goto out;
    }
    d.v = h->api_version;
    d.flex = dp_kproto_is_flexible(h->api_key, h->api_version);
    h->flexible = d.flex;
    dec_tags(&d);
    switch (h->api_key) {
    case DP_KAPI_API_VERSIONS:
        dec_api_versions(&d, &req->u.api_versions);
        break;
    case DP_KAPI_METADATA:
        dec_metadata(&d, &req->u.metadata);
        break;
    case DP_KAPI_PRODUCE:
        dec_produce(&d, &req->u.produce);
        break;
    case DP_KAPI_FETCH:
        dec_fetch(&d, &req->u.fetch);
        break;
    case DP_KAPI_LIST_OFFSETS:
        dec_list_offsets(&d, &req->u.list_offsets);
        break;
    case DP_KAPI_INIT_PRODUCER_ID:
        dec_init_producer_id(&d, &req->u.init_producer_id);
        break;
    case DP_KAPI_FIND_COORDINATOR:
        dec_find_coordinator(&d, &req->u.find_coordinator);
        break;
    case DP_KAPI_CREATE_TOPICS:
        dec_create_topics(&d, &req->u.create_topics);
        break;
    case DP_KAPI_DELETE_TOPICS:
        dec_delete_topics(&d, &req->u.delete_topics);
        break;
    case DP_KAPI_DESCRIBE_CONFIGS:
        dec_describe_configs(&d, &req->u.describe_configs);
        break;
    case DP_KAPI_JOIN_GROUP:
        dec_join_group(&d, &req->u.join_group);
        break;
    case DP_KAPI_SYNC_GROUP:
        dec_sync_group(&d, &req->u.sync_group);
        break;
    case DP_KAPI_HEARTBEAT:
        dec_heartbeat(&d, &req->u.heartbeat);
        break;
    case DP_KAPI_LEAVE_GROUP:
        dec_leave_group(&d, &req->u.leave_group);
        break;
    case DP_KAPI_OFFSET_COMMIT:
        dec_offset_commit(&d, &req->u.offset_commit);
        break;
    case DP_KAPI_OFFSET_FETCH:
        dec_offset_fetch(&d, &req->u.offset_fetch);
        break;
    default:
        assert(0 && "the API table and the decoder switch disagree");
        break;
    }
    rc = d.r.err;
    /* Trailing bytes mean we and the client disagree on the layout. */
    if (rc == 0 && dp_krd_remaining(&d.r) != 0)
        rc = -EBADMSG;
out:
    return rc;
}

/* Encoder state shared by request and response encoders. */
typedef struct enc {
    dp_kwr_t *w;
    int16_t v;
    bool flex;
} enc_t;

static void enc_tags(enc_t *e)
{
    if (e->flex)
        dp_kwr_tags_empty(e->w);
}

static void enc_str(enc_t *e, dp_kstr_t s)
{
    dp_kwr_str_f(e->w, s, e->flex);
}

static void enc_i32s(enc_t *e, int32_t n, const int32_t *v)
{
    dp_kwr_arrlen(e->w, n, e->flex);
    for (int32_t i = 0; i < n; i++)
        dp_kwr_i32(e->w, v[i]);
}

static void enc_more_req(enc_t *e, const dp_kreq_t *req)
{
    dp_kwr_t *w = e->w;

    switch (req->hdr.api_key) {
    case DP_KAPI_CREATE_TOPICS: {
        const dp_kreq_create_topics_t *b = &req->u.create_topics;

        dp_kwr_arrlen(w, b->topic_count, e->flex);
        for (int32_t i = 0; i < b->topic_count; i++) {
            const dp_kcreate_topic_t *t = &b->topics[i];

            enc_str(e, t->name);
            dp_kwr_i32(w, t->num_partitions);
            dp_kwr_i16(w, t->replication_factor);
            dp_kwr_arrlen(w, t->assignment_count, e->flex);
            for (int32_t j = 0; j < t->assignment_count; j++) {
                dp_kwr_i32(w, t->assignments[j].partition);
                enc_i32s(e, t->assignments[j].broker_count, t->assignments[j].broker_ids);
                enc_tags(e);
            }
            dp_kwr_arrlen(w, t->config_count, e->flex);
            for (int32_t j = 0; j < t->config_count; j++) {
                enc_str(e, t->configs[j].name);
                enc_str(e, t->configs[j].value);
                enc_tags(e);
            }
            enc_tags(e);
        }
        dp_kwr_i32(w, b->timeout_ms);
        dp_kwr_bool(w, b->validate_only);
        break;
    }
    case DP_KAPI_DELETE_TOPICS: {
        const dp_kreq_delete_topics_t *b = &req->u.delete_topics;

        dp_kwr_arrlen(w, b->topic_count, e->flex);
        for (int32_t i = 0; i < b->topic_count; i++) {
            enc_str(e, b->names[i]);
            if (e->v >= 6) {
                dp_kwr_uuid(w, NULL);
                enc_tags(e);
            }
        }
        dp_kwr_i32(w, b->timeout_ms);
        break;
    }
    case DP_KAPI_DESCRIBE_CONFIGS: {
        const dp_kreq_describe_configs_t *b = &req->u.describe_configs;

        dp_kwr_arrlen(w, b->resource_count, e->flex);
        for (int32_t i = 0; i < b->resource_count; i++) {
            const dp_kdescribe_resource_t *res = &b->resources[i];

            dp_kwr_i8(w, res->resource_type);
            enc_str(e, res->resource_name);
            dp_kwr_arrlen(w, res->key_count, e->flex);
            for (int32_t j = 0; j < res->key_count; j++)
                enc_str(e, res->keys[j]);
            enc_tags(e);
        }
        dp_kwr_bool(w, b->include_synonyms);
        if (e->v >= 3)
            dp_kwr_bool(w, b->include_documentation);
        break;
    }
    case DP_KAPI_JOIN_GROUP: {
        const dp_kreq_join_group_t *b = &req->u.join_group;

        enc_str(e, b->group_id);
        dp_kwr_i32(w, b->session_timeout_ms);
        if (e->v >= 1)
            dp_kwr_i32(w, b->rebalance_timeout_ms);
        enc_str(e, b->member_id);
        if (e->v >= 5)
            enc_str(e, b->group_instance_id);
        enc_str(e, b->protocol_type);
        dp_kwr_arrlen(w, b->protocol_count, e->flex);
        for (int32_t i = 0; i < b->protocol_count; i++) {
            enc_str(e, b->protocols[i].name);
            dp_kwr_bytes_f(w, b->protocols[i].metadata, e->flex);
            enc_tags(e);
        }
        break;
    }
    case DP_KAPI_SYNC_GROUP: {
        const dp_kreq_sync_group_t *b = &req->u.sync_group;

        enc_str(e, b->group_id);
        dp_kwr_i32(w, b->generation_id);
        enc_str(e, b->member_id);
        if (e->v >= 3)
            enc_str(e, b->group_instance_id);
        if (e->v >= 5) {
            enc_str(e, b->protocol_type);
            enc_str(e, b->protocol_name);
        }
        dp_kwr_arrlen(w, b->assignment_count, e->flex);
        for (int32_t i = 0; i < b->assignment_count; i++) {
            enc_str(e, b->assignments[i].member_id);
            dp_kwr_bytes_f(w, b->assignments[i].assignment, e->flex);
            enc_tags(e);
        }
        break;
    }
    case DP_KAPI_HEARTBEAT: {
        const dp_kreq_heartbeat_t *b = &req->u.heartbeat;

        enc_str(e, b->group_id);
        dp_kwr_i32(w, b->generation_id);
        enc_str(e, b->member_id);
        if (e->v >= 3)
            enc_str(e, b->group_instance_id);
        break;
    }
    case DP_KAPI_LEAVE_GROUP: {
        const dp_kreq_leave_group_t *b = &req->u.leave_group;

        enc_str(e, b->group_id);
        if (e->v <= 2) {
            assert(b->member_count == 1);
            enc_str(e, b->members[0].member_id);
            break;
        }
        dp_kwr_arrlen(w, b->member_count, e->flex);
        for (int32_t i = 0; i < b->member_count; i++) {
            enc_str(e, b->members[i].member_id);
            enc_str(e, b->members[i].group_instance_id);
            enc_tags(e);
        }
        break;
    }
    case DP_KAPI_OFFSET_COMMIT: {
        const dp_kreq_offset_commit_t *b = &req->u.offset_commit;

        enc_str(e, b->group_id);
        dp_kwr_i32(w, b->generation_id);
        enc_str(e, b->member_id);
        if (e->v >= 7)
            enc_str(e, b->group_instance_id);
        if (e->v <= 4)
            dp_kwr_i64(w, b->retention_time_ms);
        dp_kwr_arrlen(w, b->topic_count, e->flex);
        for (int32_t i = 0; i < b->topic_count; i++) {
            const dp_kcommit_topic_t *t = &b->topics[i];

            enc_str(e, t->name);
            dp_kwr_arrlen(w, t->part_count, e->flex);
            for (int32_t j = 0; j < t->part_count; j++) {
                dp_kwr_i32(w, t->parts[j].partition);
                dp_kwr_i64(w, t->parts[j].committed_offset);
                if (e->v >= 6)
                    dp_kwr_i32(w, t->parts[j].committed_leader_epoch);
                enc_str(e, t->parts[j].committed_metadata);
                enc_tags(e);
            }
            enc_tags(e);
        }
        break;
    }
    case DP_KAPI_OFFSET_FETCH: {
        const dp_kreq_offset_fetch_t *b = &req->u.offset_fetch;

        enc_str(e, b->group_id);
        dp_kwr_arrlen(w, b->topic_count, e->flex);
        for (int32_t i = 0; i < b->topic_count; i++) {
            enc_str(e, b->topics[i].name);
            enc_i32s(e, b->topics[i].part_count, b->topics[i].parts);
            enc_tags(e);
        }
        if (e->v >= 7)
            dp_kwr_bool(w, b->require_stable);
        break;
    }
    default:
        assert(0 && "checked by the caller");
        break;
    }
}

static void enc_req_body(enc_t *e, const dp_kreq_t *req)
{
    dp_kwr_t *w = e->w;

    switch (req->hdr.api_key) {
    case DP_KAPI_API_VERSIONS: {
        const dp_kreq_api_versions_t *b = &req->u.api_versions;

        if (e->v >= 3) {
            enc_str(e, b->client_software_name);
            enc_str(e, b->client_software_version);
        }
        break;
    }
    case DP_KAPI_METADATA: {
        const dp_kreq_metadata_t *b = &req->u.metadata;

        dp_kwr_arrlen(w, b->topic_count, e->flex);
        for (int32_t i = 0; i < b->topic_count; i++) {
            if (e->v >= 10)
                dp_kwr_uuid(w, NULL);
            enc_str(e, b->topics[i]);
            enc_tags(e);
        }
        if (e->v >= 4)
            dp_kwr_bool(w, b->allow_auto_topic_creation);
        if (e->v >= 8 && e->v <= 10)
            dp_kwr_bool(w, b->include_cluster_authorized_operations);
        if (e->v >= 8)
            dp_kwr_bool(w, b->include_topic_authorized_operations);
        break;
    }
    case DP_KAPI_PRODUCE: {
        const dp_kreq_produce_t *b = &req->u.produce;

        enc_str(e, b->transactional_id);
        dp_kwr_i16(w, b->acks);
        dp_kwr_i32(w, b->timeout_ms);
        dp_kwr_arrlen(w, b->topic_count, e->flex);
        for (int32_t i = 0; i < b->topic_count; i++) {
            const dp_kproduce_topic_t *t = &b->topics[i];

            enc_str(e, t->name);
            dp_kwr_arrlen(w, t->part_count, e->flex);
            for (int32_t j = 0; j < t->part_count; j++) {
                dp_kwr_i32(w, t->parts[j].partition);
                dp_kwr_bytes_f(w, t->parts[j].records, e->flex);
                enc_tags(e);
            }
            enc_tags(e);
        }
        break;
    }
    case DP_KAPI_FETCH: {
        const dp_kreq_fetch_t *b = &req->u.fetch;

        dp_kwr_i32(w, b->replica_id);
        dp_kwr_i32(w, b->max_wait_ms);
        dp_kwr_i32(w, b->min_bytes);
        dp_kwr_i32(w, b->max_bytes);
        dp_kwr_i8(w, b->isolation_level);
        if (e->v >= 7) {
            dp_kwr_i32(w, b->session_id);
            dp_kwr_i32(w, b->session_epoch);
        }
        dp_kwr_arrlen(w, b->topic_count, e->flex);
        for (int32_t i = 0; i < b->topic_count; i++) {
            const dp_kfetch_topic_t *t = &b->topics[i];

            enc_str(e, t->name);
            dp_kwr_arrlen(w, t->part_count, e->flex);
            for (int32_t j = 0; j < t->part_count; j++) {
                const dp_kfetch_part_t *p = &t->parts[j];

                dp_kwr_i32(w, p->partition);
                if (e->v >= 9)
                    dp_kwr_i32(w, p->current_leader_epoch);
                dp_kwr_i64(w, p->fetch_offset);
                if (e->v >= 12)
                    dp_kwr_i32(w, p->last_fetched_epoch);
                if (e->v >= 5)
                    dp_kwr_i64(w, p->log_start_offset);
                dp_kwr_i32(w, p->partition_max_bytes);
                enc_tags(e);
            }
            enc_tags(e);
        }
        if (e->v >= 7) {
            dp_kwr_arrlen(w, b->forgotten_count, e->flex);
            for (int32_t i = 0; i < b->forgotten_count; i++) {
                const dp_kfetch_forgotten_t *f = &b->forgotten[i];

                enc_str(e, f->name);
                dp_kwr_arrlen(w, f->part_count, e->flex);
                for (int32_t j = 0; j < f->part_count; j++)
                    dp_kwr_i32(w, f->parts[j]);
                enc_tags(e);
            }
        }
        if (e->v >= 11)
            enc_str(e, b->rack_id);
        break;
    }
    case DP_KAPI_LIST_OFFSETS: {
        const dp_kreq_list_offsets_t *b = &req->u.list_offsets;

        dp_kwr_i32(w, b->replica_id);
        if (e->v >= 2)
            dp_kwr_i8(w, b->isolation_level);
        dp_kwr_arrlen(w, b->topic_count, e->flex);
        for (int32_t i = 0; i < b->topic_count; i++) {
            const dp_klist_offsets_topic_t *t = &b->topics[i];

            enc_str(e, t->name);
            dp_kwr_arrlen(w, t->part_count, e->flex);
            for (int32_t j = 0; j < t->part_count; j++) {
                dp_kwr_i32(w, t->parts[j].partition);
                if (e->v >= 4)
                    dp_kwr_i32(w, t->parts[j].current_leader_epoch);
                dp_kwr_i64(w, t->parts[j].timestamp);
                enc_tags(e);
            }
            enc_tags(e);
        }
        break;
    }
    case DP_KAPI_INIT_PRODUCER_ID: {
        const dp_kreq_init_producer_id_t *b = &req->u.init_producer_id;

        enc_str(e, b->transactional_id);
        dp_kwr_i32(w, b->transaction_timeout_ms);
        if (e->v >= 3) {
            dp_kwr_i64(w, b->producer_id);
            dp_kwr_i16(w, b->producer_epoch);
        }
        break;
    }
    case DP_KAPI_FIND_COORDINATOR: {
        const dp_kreq_find_coordinator_t *b = &req->u.find_coordinator;

        if (e->v <= 3) {
            assert(b->key_count == 1);
            enc_str(e, b->keys[0]);
        }
        if (e->v >= 1)
            dp_kwr_i8(w, b->key_type);
        if (e->v >= 4) {
            dp_kwr_arrlen(w, b->key_count, true);
            for (int32_t i = 0; i < b->key_count; i++)
                enc_str(e, b->keys[i]);
        }
        break;
    }
    default:
        enc_more_req(e, req);
        break;
    }
    enc_tags(e);
}

int dp_kproto_req_encode(dp_kwr_t *w, const dp_kreq_t *req)
{
    enc_t e = {w, req->hdr.api_version, false};
    size_t mark;
    int rc = -EPROTONOSUPPORT;

    if (!dp_kproto_version_supported(req->hdr.api_key, req->hdr.api_version))
        goto out;
    e.flex = dp_kproto_is_flexible(req->hdr.api_key, req->hdr.api_version);
    mark = dp_kwr_mark_i32(w);
    dp_kwr_i16(w, req->hdr.api_key);
    dp_kwr_i16(w, req->hdr.api_version);
    dp_kwr_i32(w, req->hdr.correlation_id);
    /* client_id stays a classic NULLABLE_STRING even in header v2. */
    dp_kwr_str_f(w, req->hdr.client_id, false);
    enc_tags(&e);
    enc_req_body(&e, req);
    dp_kwr_patch_i32(w, mark, (int32_t)(w->off - mark - 4));
    rc = w->err;
out:
    return rc;
}

void dp_kproto_resp_begin(dp_kwr_t *w, int16_t api_key, int16_t api_version, int32_t correlation_id,
                          dp_kresp_mark_t *mark)
{
    mark->api_key = api_key;
    mark->api_version = api_version;
    mark->flexible = dp_kproto_is_flexible(api_key, api_version);
    mark->size_off = dp_kwr_mark_i32(w);
    dp_kwr_i32(w, correlation_id);
    /* ApiVersions answers with header v0 even when flexible, so a client can
     * parse the answer before it knows what the broker speaks. */
    if (mark->flexible && api_key != DP_KAPI_API_VERSIONS)
        dp_kwr_tags_empty(w);
}

int dp_kproto_resp_end(dp_kwr_t *w, const dp_kresp_mark_t *mark, size_t extra_bytes)
{
    size_t total;

    if (w->err != 0)
        return w->err;
    assert(mark->size_off + 4 <= w->off);
    total = w->off - mark->size_off - 4 + extra_bytes;
    if (total > INT32_MAX)
        return -EMSGSIZE;
    dp_kwr_patch_i32(w, mark->size_off, (int32_t)total);
    return 0;
}

int dp_kproto_api_versions_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                int16_t error_code, int32_t throttle_time_ms)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};

    assert(api_version >= 0 && api_version <= 3);
    dp_kproto_resp_begin(w, DP_KAPI_API_VERSIONS, api_version, correlation_id, &m);
    e.flex = m.flexible;
    dp_kwr_i16(w, error_code);
    dp_kwr_arrlen(w, (int32_t)API_TABLE_LEN, e.flex);
    for (size_t i = 0; i < API_TABLE_LEN; i++) {
        dp_kwr_i16(w, api_table[i].api_key);
        dp_kwr_i16(w, api_table[i].min_version);
        dp_kwr_i16(w, api_table[i].max_version);
        enc_tags(&e);
    }
    if (api_version >= 1)
        dp_kwr_i32(w, throttle_time_ms);
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_metadata_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                            const dp_kresp_metadata_t *resp)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};

    assert(api_version >= 1 && api_version <= 12);
    dp_kproto_resp_begin(w, DP_KAPI_METADATA, api_version, correlation_id, &m);
    e.flex = m.flexible;
    if (e.v >= 3)
        dp_kwr_i32(w, resp->throttle_time_ms);
    dp_kwr_arrlen(w, resp->broker_count, e.flex);
    for (int32_t i = 0; i < resp->broker_count; i++) {
        const dp_kmd_broker_t *b = &resp->brokers[i];

        dp_kwr_i32(w, b->node_id);
        enc_str(&e, b->host);
        dp_kwr_i32(w, b->port);
        enc_str(&e, b->rack);
        enc_tags(&e);
    }
    if (e.v >= 2)
        enc_str(&e, resp->cluster_id);
    dp_kwr_i32(w, resp->controller_id);
    dp_kwr_arrlen(w, resp->topic_count, e.flex);
    for (int32_t i = 0; i < resp->topic_count; i++) {
        const dp_kmd_topic_t *t = &resp->topics[i];

        dp_kwr_i16(w, t->error_code);
        enc_str(&e, t->name);
        if (e.v >= 10)
            dp_kwr_uuid(w, NULL);
        dp_kwr_bool(w, t->is_internal);
        dp_kwr_arrlen(w, t->part_count, e.flex);
        for (int32_t j = 0; j < t->part_count; j++) {
            const dp_kmd_part_t *p = &t->parts[j];

            dp_kwr_i16(w, p->error_code);
            dp_kwr_i32(w, p->partition);
            dp_kwr_i32(w, p->leader_id);
            if (e.v >= 7)
                dp_kwr_i32(w, p->leader_epoch);
            enc_i32s(&e, p->replica_count, p->replicas);
            enc_i32s(&e, p->isr_count, p->isr);
            if (e.v >= 5)
                enc_i32s(&e, p->offline_count, p->offline);
            enc_tags(&e);
        }
        /* INT32_MIN: authorized operations were not requested. */
        if (e.v >= 8)
            dp_kwr_i32(w, INT32_MIN);
        enc_tags(&e);
    }
    if (e.v >= 8 && e.v <= 10)
        dp_kwr_i32(w, INT32_MIN);
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_produce_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                           int32_t throttle_time_ms, int32_t topic_count,
                           const dp_kproduce_tresp_t *topics)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};
    const dp_kstr_t null_str = {NULL, -1};

    assert(api_version >= 3 && api_version <= 9);
    dp_kproto_resp_begin(w, DP_KAPI_PRODUCE, api_version, correlation_id, &m);
    e.flex = m.flexible;
    dp_kwr_arrlen(w, topic_count, e.flex);
    for (int32_t i = 0; i < topic_count; i++) {
        const dp_kproduce_tresp_t *t = &topics[i];

        enc_str(&e, t->name);
        dp_kwr_arrlen(w, t->part_count, e.flex);
        for (int32_t j = 0; j < t->part_count; j++) {
            const dp_kproduce_presp_t *p = &t->parts[j];

            dp_kwr_i32(w, p->partition);
            dp_kwr_i16(w, p->error_code);
            dp_kwr_i64(w, p->base_offset);
            dp_kwr_i64(w, p->log_append_time_ms);
            if (e.v >= 5)
                dp_kwr_i64(w, p->log_start_offset);
            if (e.v >= 8) {
                dp_kwr_arrlen(w, 0, e.flex); /* record_errors */
                enc_str(&e, null_str);       /* error_message */
            }
            enc_tags(&e);
        }
        enc_tags(&e);
    }
    dp_kwr_i32(w, throttle_time_ms);
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_fetch_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                         int32_t throttle_time_ms, int16_t error_code, int32_t session_id,
                         int32_t topic_count, const dp_kfetch_tresp_t *topics, struct iovec *iov,
                         int iov_max, int *iov_count)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};
    size_t seg, extra = 0;
    int n = 0, rc;

    assert(api_version >= 4 && api_version <= 12);
    assert(iov != NULL && iov_count != NULL && iov_max >= 0);
    *iov_count = 0;
    dp_kproto_resp_begin(w, DP_KAPI_FETCH, api_version, correlation_id, &m);
    seg = m.size_off;
    e.flex = m.flexible;
    dp_kwr_i32(w, throttle_time_ms);
    if (e.v >= 7) {
        dp_kwr_i16(w, error_code);
        dp_kwr_i32(w, session_id);
    }
    dp_kwr_arrlen(w, topic_count, e.flex);
    for (int32_t i = 0; i < topic_count && w->err == 0; i++) {
        const dp_kfetch_tresp_t *t = &topics[i];

        enc_str(&e, t->name);
        dp_kwr_arrlen(w, t->part_count, e.flex);
        for (int32_t j = 0; j < t->part_count && w->err == 0; j++) {
            const dp_kfetch_presp_t *p = &t->parts[j];

            assert(p->records_len >= 0);
            dp_kwr_i32(w, p->partition);
            dp_kwr_i16(w, p->error_code);
            dp_kwr_i64(w, p->high_watermark);
            dp_kwr_i64(w, p->last_stable_offset);
            if (e.v >= 5)
                dp_kwr_i64(w, p->log_start_offset);
            dp_kwr_arrlen(w, 0, e.flex); /* aborted_transactions */
            if (e.v >= 11)
                dp_kwr_i32(w, -1); /* preferred_read_replica */
            if (e.flex)
                dp_kwr_uvarint(w, (uint32_t)p->records_len + 1);
            else
                dp_kwr_i32(w, p->records_len);
            if (p->records_len > 0 && w->err == 0) {
                /* Cut here: the record bytes go out from the caller's memory. */
                if (n + 2 > iov_max) {
                    w->err = -ENOBUFS;
                    break;
                }
                iov[n].iov_base = w->p + seg;
                iov[n].iov_len = w->off - seg;
                iov[n + 1].iov_base = (void *)p->records;
                iov[n + 1].iov_len = (size_t)p->records_len;
                n += 2;
                extra += (size_t)p->records_len;
                seg = w->off;
            }
            enc_tags(&e);
        }
        enc_tags(&e);
    }
    enc_tags(&e);
    rc = dp_kproto_resp_end(w, &m, extra);
    if (rc != 0)
        goto out;
    if (w->off > seg) {
        if (n + 1 > iov_max) {
            rc = -ENOBUFS;
            goto out;
        }
        iov[n].iov_base = w->p + seg;
        iov[n].iov_len = w->off - seg;
        n++;
    }
    *iov_count = n;
out:
    return rc;
}

int dp_kproto_list_offsets_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                int32_t throttle_time_ms, int32_t topic_count,
                                const dp_klist_offsets_tresp_t *topics)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};

    assert(api_version >= 1 && api_version <= 7);
    dp_kproto_resp_begin(w, DP_KAPI_LIST_OFFSETS, api_version, correlation_id, &m);
    e.flex = m.flexible;
    if (e.v >= 2)
        dp_kwr_i32(w, throttle_time_ms);
    dp_kwr_arrlen(w, topic_count, e.flex);
    for (int32_t i = 0; i < topic_count; i++) {
        const dp_klist_offsets_tresp_t *t = &topics[i];

        enc_str(&e, t->name);
        dp_kwr_arrlen(w, t->part_count, e.flex);
        for (int32_t j = 0; j < t->part_count; j++) {
            const dp_klist_offsets_presp_t *p = &t->parts[j];

            dp_kwr_i32(w, p->partition);
            dp_kwr_i16(w, p->error_code);
            dp_kwr_i64(w, p->timestamp);
            dp_kwr_i64(w, p->offset);
            if (e.v >= 4)
                dp_kwr_i32(w, p->leader_epoch);
            enc_tags(&e);
        }
        enc_tags(&e);
    }
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_init_producer_id_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                    int32_t throttle_time_ms, int16_t error_code,
                                    int64_t producer_id, int16_t producer_epoch)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};

    assert(api_version >= 0 && api_version <= 4);
    dp_kproto_resp_begin(w, DP_KAPI_INIT_PRODUCER_ID, api_version, correlation_id, &m);
    e.flex = m.flexible;
    dp_kwr_i32(w, throttle_time_ms);
    dp_kwr_i16(w, error_code);
    dp_kwr_i64(w, producer_id);
    dp_kwr_i16(w, producer_epoch);
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_find_coordinator_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                    int16_t error_code, int32_t node_id, dp_kstr_t host,
                                    int32_t port, int32_t key_count, const dp_kstr_t *keys)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};
    const dp_kstr_t null_str = {NULL, -1};

    assert(api_version >= 0 && api_version <= 4);
    dp_kproto_resp_begin(w, DP_KAPI_FIND_COORDINATOR, api_version, correlation_id, &m);
    e.flex = m.flexible;
    if (e.v >= 1)
        dp_kwr_i32(w, 0); /* throttle_time_ms */
    if (e.v <= 3) {
        dp_kwr_i16(w, error_code);
        if (e.v >= 1)
            enc_str(&e, null_str);
        dp_kwr_i32(w, node_id);
        enc_str(&e, host);
        dp_kwr_i32(w, port);
    } else {
        dp_kwr_arrlen(w, key_count, true);
        for (int32_t i = 0; i < key_count; i++) {
            enc_str(&e, keys[i]);
            dp_kwr_i32(w, node_id);
            enc_str(&e, host);
            dp_kwr_i32(w, port);
            dp_kwr_i16(w, error_code);
            enc_str(&e, null_str);
            enc_tags(&e);
        }
    }
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_create_topics_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                 int32_t throttle_time_ms, int32_t topic_count,
                                 const dp_kcreate_tresp_t *topics)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};

    assert(api_version >= 2 && api_version <= 7);
    dp_kproto_resp_begin(w, DP_KAPI_CREATE_TOPICS, api_version, correlation_id, &m);
    e.flex = m.flexible;
    dp_kwr_i32(w, throttle_time_ms);
    dp_kwr_arrlen(w, topic_count, e.flex);
    for (int32_t i = 0; i < topic_count; i++) {
        const dp_kcreate_tresp_t *t = &topics[i];

        enc_str(&e, t->name);
        if (e.v >= 7)
            dp_kwr_uuid(w, NULL);
        dp_kwr_i16(w, t->error_code);
        enc_str(&e, t->error_message);
        if (e.v >= 5) {
            dp_kwr_i32(w, t->num_partitions);
            dp_kwr_i16(w, t->replication_factor);
            dp_kwr_arrlen(w, 0, e.flex); /* configs: none reported (Java needs non-null) */
        }
        enc_tags(&e);
    }
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_delete_topics_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                 int32_t throttle_time_ms, int32_t topic_count,
                                 const dp_kdelete_tresp_t *topics)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};
    const dp_kstr_t null_str = {NULL, -1};

    assert(api_version >= 1 && api_version <= 6);
    dp_kproto_resp_begin(w, DP_KAPI_DELETE_TOPICS, api_version, correlation_id, &m);
    e.flex = m.flexible;
    dp_kwr_i32(w, throttle_time_ms);
    dp_kwr_arrlen(w, topic_count, e.flex);
    for (int32_t i = 0; i < topic_count; i++) {
        enc_str(&e, topics[i].name);
        if (e.v >= 6)
            dp_kwr_uuid(w, NULL);
        dp_kwr_i16(w, topics[i].error_code);
        if (e.v >= 5)
            enc_str(&e, null_str);
        enc_tags(&e);
    }
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_describe_configs_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                    int32_t throttle_time_ms, int32_t result_count,
                                    const dp_kdescribe_rresp_t *results)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};
    const dp_kstr_t null_str = {NULL, -1};

    assert(api_version >= 1 && api_version <= 4);
    dp_kproto_resp_begin(w, DP_KAPI_DESCRIBE_CONFIGS, api_version, correlation_id, &m);
    e.flex = m.flexible;
    dp_kwr_i32(w, throttle_time_ms);
    dp_kwr_arrlen(w, result_count, e.flex);
    for (int32_t i = 0; i < result_count; i++) {
        const dp_kdescribe_rresp_t *res = &results[i];

        dp_kwr_i16(w, res->error_code);
        enc_str(&e, null_str); /* error_message */
        dp_kwr_i8(w, res->resource_type);
        enc_str(&e, res->resource_name);
        dp_kwr_arrlen(w, res->config_count, e.flex);
        for (int32_t j = 0; j < res->config_count; j++) {
            const dp_kconfig_entry_t *c = &res->configs[j];

            enc_str(&e, c->name);
            enc_str(&e, c->value);
            dp_kwr_bool(w, c->read_only);
            dp_kwr_i8(w, c->config_source);
            dp_kwr_bool(w, c->is_sensitive);
            dp_kwr_arrlen(w, 0, e.flex); /* synonyms */
            if (e.v >= 3) {
                dp_kwr_i8(w, c->config_type);
                enc_str(&e, null_str); /* documentation */
            }
            enc_tags(&e);
        }
        enc_tags(&e);
    }
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_join_group_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                              const dp_kresp_join_group_t *resp)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};

    assert(api_version >= 0 && api_version <= 7);
    dp_kproto_resp_begin(w, DP_KAPI_JOIN_GROUP, api_version, correlation_id, &m);
    e.flex = m.flexible;
    if (e.v >= 2)
        dp_kwr_i32(w, resp->throttle_time_ms);
    dp_kwr_i16(w, resp->error_code);
    dp_kwr_i32(w, resp->generation_id);
    if (e.v >= 7)
        enc_str(&e, resp->protocol_type);
    enc_str(&e, resp->protocol_name);
    enc_str(&e, resp->leader);
    enc_str(&e, resp->member_id);
    dp_kwr_arrlen(w, resp->member_count, e.flex);
    for (int32_t i = 0; i < resp->member_count; i++) {
        const dp_kjoin_member_t *mb = &resp->members[i];

        enc_str(&e, mb->member_id);
        if (e.v >= 5)
            enc_str(&e, mb->group_instance_id);
        dp_kwr_bytes_f(w, mb->metadata, e.flex);
        enc_tags(&e);
    }
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_sync_group_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                              int32_t throttle_time_ms, int16_t error_code, dp_kstr_t protocol_type,
                              dp_kstr_t protocol_name, dp_kbytes_t assignment)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};

    assert(api_version >= 0 && api_version <= 5);
    dp_kproto_resp_begin(w, DP_KAPI_SYNC_GROUP, api_version, correlation_id, &m);
    e.flex = m.flexible;
    if (e.v >= 1)
        dp_kwr_i32(w, throttle_time_ms);
    dp_kwr_i16(w, error_code);
    if (e.v >= 5) {
        enc_str(&e, protocol_type);
        enc_str(&e, protocol_name);
    }
    dp_kwr_bytes_f(w, assignment, e.flex);
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_heartbeat_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                             int32_t throttle_time_ms, int16_t error_code)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};

    assert(api_version >= 0 && api_version <= 4);
    dp_kproto_resp_begin(w, DP_KAPI_HEARTBEAT, api_version, correlation_id, &m);
    e.flex = m.flexible;
    if (e.v >= 1)
        dp_kwr_i32(w, throttle_time_ms);
    dp_kwr_i16(w, error_code);
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_leave_group_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                               int32_t throttle_time_ms, int16_t error_code, int32_t member_count,
                               const dp_kleave_member_t *members, int16_t member_error)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};

    assert(api_version >= 0 && api_version <= 4);
    dp_kproto_resp_begin(w, DP_KAPI_LEAVE_GROUP, api_version, correlation_id, &m);
    e.flex = m.flexible;
    if (e.v >= 1)
        dp_kwr_i32(w, throttle_time_ms);
    dp_kwr_i16(w, error_code);
    if (e.v >= 3) {
        dp_kwr_arrlen(w, member_count, e.flex);
        for (int32_t i = 0; i < member_count; i++) {
            enc_str(&e, members[i].member_id);
            enc_str(&e, members[i].group_instance_id);
            dp_kwr_i16(w, member_error);
            enc_tags(&e);
        }
    }
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_offset_commit_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                 int32_t throttle_time_ms, int32_t topic_count,
                                 const dp_kcommit_tresp_t *topics)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};

    assert(api_version >= 2 && api_version <= 8);
    dp_kproto_resp_begin(w, DP_KAPI_OFFSET_COMMIT, api_version, correlation_id, &m);
    e.flex = m.flexible;
    if (e.v >= 3)
        dp_kwr_i32(w, throttle_time_ms);
    dp_kwr_arrlen(w, topic_count, e.flex);
    for (int32_t i = 0; i < topic_count; i++) {
        enc_str(&e, topics[i].name);
        dp_kwr_arrlen(w, topics[i].part_count, e.flex);
        for (int32_t j = 0; j < topics[i].part_count; j++) {
            dp_kwr_i32(w, topics[i].parts[j].partition);
            dp_kwr_i16(w, topics[i].parts[j].error_code);
            enc_tags(&e);
        }
        enc_tags(&e);
    }
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}

int dp_kproto_offset_fetch_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                int32_t throttle_time_ms, int16_t error_code, int32_t topic_count,
                                const dp_koffset_fetch_tresp_t *topics)
{
    dp_kresp_mark_t m;
    enc_t e = {w, api_version, false};

    assert(api_version >= 1 && api_version <= 7);
    dp_kproto_resp_begin(w, DP_KAPI_OFFSET_FETCH, api_version, correlation_id, &m);
    e.flex = m.flexible;
    if (e.v >= 3)
        dp_kwr_i32(w, throttle_time_ms);
    dp_kwr_arrlen(w, topic_count, e.flex);
    for (int32_t i = 0; i < topic_count; i++) {
        enc_str(&e, topics[i].name);
        dp_kwr_arrlen(w, topics[i].part_count, e.flex);
        for (int32_t j = 0; j < topics[i].part_count; j++) {
            const dp_koffset_fetch_presp_t *p = &topics[i].parts[j];

            dp_kwr_i32(w, p->partition);
            dp_kwr_i64(w, p->committed_offset);
            if (e.v >= 5)
                dp_kwr_i32(w, p->committed_leader_epoch);
            enc_str(&e, p->metadata);
            dp_kwr_i16(w, p->error_code);
            enc_tags(&e);
        }
        enc_tags(&e);
    }
    if (e.v >= 2)
        dp_kwr_i16(w, error_code);
    enc_tags(&e);
    return dp_kproto_resp_end(w, &m, 0);
}
