/* SPDX-License-Identifier: Apache-2.0 */
/* Control-plane APIs of the store: Metadata (with topic auto-creation),
 * CreateTopics, DeleteTopics, DescribeConfigs, InitProducerId,
 * FindCoordinator and the consumer-group APIs. Topic changes and group
 * coordination run on the control worker (worker 0); every other worker
 * is told by message and answers before the client gets its response. */
#include "dp_srv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dp_group.h"
#include <jansson.h>

#include "wc_log.h"

/* ---- topic jobs (run on the control worker) ---- */

typedef struct job_item {
    dp_kstr_t name;
    int32_t partitions;
    const dp_kconfig_kv_t *configs;
    int32_t ncfg;
    int16_t error;
    char message[160];
    uint64_t topic_id;
    int32_t result_partitions;
} job_item_t;

typedef struct job_msg {
    dp_msg_t m;
    struct topic_job *job;
    int rc;
    char err[256];
} job_msg_t;

typedef struct topic_job {
    dp_req_t *r;
    bool create;
    bool validate_only;
    int n;
    int i;
    int waiting;
    job_item_t *items;
    job_msg_t *wm; /* one per worker */
    void *rows;    /* response rows, one per item (CreateTopics, DeleteTopics) */
    dp_topic_t topic;
} topic_job_t;

static void job_step(dp_worker_t *cw, topic_job_t *job);

static void job_open_reply(dp_worker_t *cw, dp_msg_t *m)
{
    job_msg_t *jm = (job_msg_t *)m;
    topic_job_t *job = jm->job;
    job_item_t *it = &job->items[job->i];

    if (jm->rc != 0 && it->error == 0) {
        it->error = DP_KERR_KAFKA_STORAGE_ERROR;
        snprintf(it->message, sizeof(it->message), "%.150s", jm->err);
        wc_log(WC_LOG_ERROR, "store", "opening a partition of a new topic failed", "{s:s, s:s}",
               "topic", job->topic.name, "error", jm->err);
    }
    if (--job->waiting > 0)
        return;
    job->i++;
    job_step(cw, job);
}

static void job_open_on_worker(dp_worker_t *w, dp_msg_t *m)
{
    job_msg_t *jm = (job_msg_t *)m;
    topic_job_t *job = jm->job;
    const dp_catalog_snap_t *snap = dp_catalog_get(w->st->catalog);
    const dp_topic_t *t = dp_catalog_find(snap, dp_kstr(job->topic.name));

    jm->rc = 0;
    if (job->create) {
        if (t != NULL && t->id == job->topic.id)
            jm->rc = dp_part_open_topic(w, t, true, jm->err, sizeof(jm->err));
    } else {
        dp_part_drop_topic(w, job->items[job->i].topic_id);
    }
    dp_worker_post(w, dp_worker_control(w->st), &jm->m, job_open_reply);
}

static void job_broadcast(dp_worker_t *cw, topic_job_t *job)
{
    dp_store_t *st = cw->st;

    job->waiting = st->nworkers;
    for (int k = 0; k < st->nworkers; k++) {
        job->wm[k].job = job;
        job->wm[k].rc = 0;
        job->wm[k].err[0] = '\0';
        dp_worker_post(cw, &st->workers[k], &job->wm[k].m, job_open_on_worker);
    }
}

static bool job_create_one(dp_worker_t *cw, topic_job_t *job, job_item_t *it)
{
    dp_store_t *st = cw->st;
    dp_kstr_t names[DP_TOPIC_CONFIGS_MAX], values[DP_TOPIC_CONFIGS_MAX];
    int32_t parts = it->partitions == -1 ? st->cfg.default_partitions : it->partitions;
    int rc;

    if (it->ncfg > DP_TOPIC_CONFIGS_MAX) {
        it->error = DP_KERR_INVALID_CONFIG;
        snprintf(it->message, sizeof(it->message), "at most %d configs", DP_TOPIC_CONFIGS_MAX);
        return false;
    }
    for (int32_t c = 0; c < it->ncfg; c++) {
        names[c] = it->configs[c].name;
        values[c] = it->configs[c].value;
    }
    if (dp_catalog_valid_name(it->name) != 0 ||
        (it->name.len == 18 && memcmp(it->name.ptr, "__consumer_offsets", 18) == 0)) {
        it->error = DP_KERR_INVALID_TOPIC_EXCEPTION;
        snprintf(it->message, sizeof(it->message), "invalid topic name");
        return false;
    }
    if (parts < 1 || parts > DP_TOPIC_PARTITIONS_MAX) {
        it->error = DP_KERR_INVALID_PARTITIONS;
        snprintf(it->message, sizeof(it->message), "partitions must be 1..%d",
                 DP_TOPIC_PARTITIONS_MAX);
        return false;
    }
    rc = dp_catalog_prepare(st->catalog, &job->topic, it->name, parts, names, values, it->ncfg,
                            it->message, sizeof(it->message));
    if (rc != 0) {
        it->error = DP_KERR_INVALID_CONFIG;
        return false;
    }
    it->result_partitions = parts;
    if (job->validate_only) {
        if (dp_catalog_find(dp_catalog_get(st->catalog), it->name) != NULL)
            it->error = DP_KERR_TOPIC_ALREADY_EXISTS;
        return false;
    }
    rc = dp_catalog_add(st->catalog, &job->topic);
    if (rc == -EEXIST) {
        it->error = DP_KERR_TOPIC_ALREADY_EXISTS;
        snprintf(it->message, sizeof(it->message), "topic already exists");
        return false;
    }
    if (rc != 0) {
        it->error = DP_KERR_KAFKA_STORAGE_ERROR;
        snprintf(it->message, sizeof(it->message), "persisting the topic: %s", strerror(-rc));
        return false;
    }
    it->topic_id = job->topic.id;
    wc_log(WC_LOG_INFO, "store", "topic created", "{s:s, s:i}", "topic", job->topic.name,
           "partitions", parts);
    return true;
}

static bool job_delete_one(dp_worker_t *cw, topic_job_t *job, job_item_t *it)
{
    dp_catalog_t *cat = cw->st->catalog;
    const dp_topic_t *t = dp_catalog_find(dp_catalog_get(cat), it->name);

    if (t == NULL) {
        it->error = DP_KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return false;
    }
    it->topic_id = t->id;
    snprintf(job->topic.name, sizeof(job->topic.name), "%s", t->name);
    if (dp_catalog_remove(cat, it->name) != 0) {
        it->error = DP_KERR_KAFKA_STORAGE_ERROR;
        return false;
    }
    wc_log(WC_LOG_INFO, "store", "topic deleted", "{s:s}", "topic", job->topic.name);
    return true;
}

static void job_step(dp_worker_t *cw, topic_job_t *job)
{
    while (job->i < job->n) {
        job_item_t *it = &job->items[job->i];
        bool go;

        if (it->error != 0) {
            job->i++;
            continue;
        }
        go = job->create ? job_create_one(cw, job, it) : job_delete_one(cw, job, it);
        if (go) {
            job_broadcast(cw, job);
            return;
        }
        job->i++;
    }
    dp_broker_call_return(cw, job->r, 0);
}

static void job_start(dp_worker_t *cw, dp_msg_t *m)
{
    dp_req_t *r = (dp_req_t *)((uint8_t *)m - offsetof(dp_req_t, call));

    job_step(cw, r->api);
}

/* Lays out a job in r->aux: the job, n items, one message per worker,
 * then n response rows of `row_bytes` each. NULL: the request was aborted. */
static topic_job_t *job_new(dp_req_t *r, int n, bool create, size_t row_bytes)
{
    int workers = r->w->st->nworkers;
    topic_job_t *job =
        dp_broker_aux(r, sizeof(topic_job_t) + (size_t)n * sizeof(job_item_t) +
                             (size_t)workers * sizeof(job_msg_t) + (size_t)n * row_bytes);

    if (job == NULL)
        return NULL;
    job->r = r;
    job->create = create;
    job->n = n;
    job->items = (job_item_t *)(job + 1);
    job->wm = (job_msg_t *)(job->items + n);
    job->rows = job->wm + workers;
    return job;
}

/* ---- Metadata ---- */

/* Peer host names: with a StatefulSet pod name "x-3" and an advertised
 * host "x-3.svc.ns...", replica k is "x-k.svc.ns..."; otherwise every
 * replica is announced at the advertised host. */
static void replica_host(const dp_store_t *st, int k, char *buf, size_t len)
{
    const char *pod = st->cfg.pod_name, *adv = st->cfg.advertised_host;
    size_t plen = pod != NULL ? strlen(pod) : 0;
    const char *dash = pod != NULL ? strrchr(pod, '-') : NULL;

    if (k == st->cfg.replica_index || pod == NULL || dash == NULL || strncmp(adv, pod, plen) != 0) {
        snprintf(buf, len, "%s", adv);
        return;
    }
    snprintf(buf, len, "%.*s-%d%s", (int)(dash - pod), pod, k, adv + plen);
}

typedef struct md_state {
    dp_kmd_broker_t *brokers;
    char (*hosts)[256];
    int32_t *ids;
    dp_kmd_topic_t *topics;
    dp_kmd_part_t *parts;
    int32_t ntopics;
} md_state_t;

static int enc_metadata(dp_req_t *r, dp_kwr_t *w)
{
    md_state_t *s = r->api;
    dp_store_t *st = r->w->st;
    dp_kresp_metadata_t resp = {
        .broker_count = st->cfg.replicas,
        .brokers = s->brokers,
        .cluster_id = dp_kstr("weir"),
        .controller_id = 0,
        .topic_count = s->ntopics,
        .topics = s->topics,
    };

    return dp_kproto_metadata_resp(w, r->k.hdr.api_version, r->k.hdr.correlation_id, &resp);
}

static bool md_all(const dp_kreq_t *k)
{
    return k->u.metadata.topic_count < 0 ||
           (k->hdr.api_version == 0 && k->u.metadata.topic_count == 0);
}

static void metadata_build(dp_req_t *r)
{
    const dp_kreq_metadata_t *q = &r->k.u.metadata;
    dp_store_t *st = r->w->st;
    const dp_catalog_snap_t *snap = dp_catalog_get(st->catalog);
    int32_t nt = md_all(&r->k) ? (int32_t)snap->count : q->topic_count;
    size_t bytes, nparts = 0, hint = 512;
    md_state_t *s;
    int32_t pi = 0;
    uint8_t *mem;

    for (int32_t i = 0; i < nt; i++) {
        const dp_topic_t *t = md_all(&r->k) ? snap->topics[i] : dp_catalog_find(snap, q->topics[i]);

        if (t != NULL)
            nparts += (size_t)t->partitions;
    }
    bytes = sizeof(*s) + (size_t)st->cfg.replicas * (sizeof(dp_kmd_broker_t) + 256 + 4) +
            (size_t)nt * sizeof(dp_kmd_topic_t) + nparts * sizeof(dp_kmd_part_t) + 64;
    mem = dp_broker_aux(r, bytes);
    if (mem == NULL)
        return;
    s = (md_state_t *)mem;
    s->brokers = (dp_kmd_broker_t *)(s + 1);
    s->hosts = (char(*)[256])(s->brokers + st->cfg.replicas);
    s->ids = (int32_t *)(s->hosts + st->cfg.replicas);
    s->topics = (dp_kmd_topic_t *)(((uintptr_t)(s->ids + st->cfg.replicas) + 7) & ~(uintptr_t)7);
    s->parts = (dp_kmd_part_t *)(s->topics + nt);
    s->ntopics = nt;
    for (int k = 0; k < st->cfg.replicas; k++) {
        replica_host(st, k, s->hosts[k], sizeof(s->hosts[k]));
        s->ids[k] = k;
        s->brokers[k] = (dp_kmd_broker_t){
            .node_id = k, .host = dp_kstr(s->hosts[k]), .port = st->port, .rack = {NULL, -1}};
        hint += 32 + strlen(s->hosts[k]);
    }
    for (int32_t i = 0; i < nt; i++) {
        const dp_topic_t *t = md_all(&r->k) ? snap->topics[i] : dp_catalog_find(snap, q->topics[i]);
        dp_kmd_topic_t *mt = &s->topics[i];

        if (t == NULL) {
            mt->name = q->topics[i];
            mt->error_code = dp_catalog_valid_name(q->topics[i]) == 0
                                 ? DP_KERR_UNKNOWN_TOPIC_OR_PARTITION
                                 : DP_KERR_INVALID_TOPIC_EXCEPTION;
            hint += 64 + (q->topics[i].len > 0 ? (size_t)q->topics[i].len : 0);
            continue;
        }
        /* Names point into the snapshot, valid until this worker's next
         * quiescent point: the response is encoded before that. */
        mt->name = dp_kstr(t->name);
        mt->part_count = t->partitions;
        mt->parts = &s->parts[pi];
        hint += 64 + strlen(t->name) + (size_t)t->partitions * 64;
        for (int32_t p = 0; p < t->partitions; p++, pi++) {
            int32_t leader = p % st->cfg.replicas;

            s->parts[pi] = (dp_kmd_part_t){.partition = p,
                                           .leader_id = leader,
                                           .leader_epoch = 0,
                                           .replica_count = 1,
                                           .replicas = &s->ids[leader],
                                           .isr_count = 1,
                                           .isr = &s->ids[leader]};
        }
    }
    dp_broker_respond(r, hint, enc_metadata);
}

void dp_admin_metadata(dp_req_t *r)
{
    const dp_kreq_metadata_t *q = &r->k.u.metadata;
    dp_store_t *st = r->w->st;
    const dp_catalog_snap_t *snap = dp_catalog_get(st->catalog);
    bool allow =
        st->cfg.auto_create_topics && (r->k.hdr.api_version < 4 || q->allow_auto_topic_creation);
    int missing = 0, k = 0;
    topic_job_t *job;

    if (allow && !md_all(&r->k)) {
        for (int32_t i = 0; i < q->topic_count; i++)
            if (q->topics[i].len > 0 && dp_catalog_find(snap, q->topics[i]) == NULL &&
                dp_catalog_valid_name(q->topics[i]) == 0)
                missing++;
    }
    if (missing == 0) {
        metadata_build(r);
        return;
    }
    job = job_new(r, missing, true, 0);
    if (job == NULL)
        return;
    for (int32_t i = 0; i < q->topic_count; i++)
        if (q->topics[i].len > 0 && dp_catalog_find(snap, q->topics[i]) == NULL &&
            dp_catalog_valid_name(q->topics[i]) == 0) {
            job->items[k].name = q->topics[i];
            job->items[k].partitions = -1;
            k++;
        }
    dp_broker_call_control(r, job_start, metadata_build);
}

/* ---- CreateTopics / DeleteTopics ---- */

static int enc_create(dp_req_t *r, dp_kwr_t *w)
{
    topic_job_t *job = r->api;

    return dp_kproto_create_topics_resp(w, r->k.hdr.api_version, r->k.hdr.correlation_id, 0, job->n,
                                        job->rows);
}

static void create_done(dp_req_t *r)
{
    topic_job_t *job = r->api;
    dp_kcreate_tresp_t *out = job->rows;
    size_t hint = 256;

    for (int i = 0; i < job->n; i++) {
        job_item_t *it = &job->items[i];

        out[i] = (dp_kcreate_tresp_t){
            .name = it->name,
            .error_code = it->error,
            .error_message =
                it->error != 0 && it->message[0] ? dp_kstr(it->message) : (dp_kstr_t){NULL, -1},
            .num_partitions = it->error == 0 ? it->result_partitions : -1,
            .replication_factor = it->error == 0 ? 1 : -1,
        };
        hint += 64 + (size_t)it->name.len + sizeof(it->message);
    }
    dp_broker_respond(r, hint, enc_create);
}

void dp_admin_create_topics(dp_req_t *r)
{
    const dp_kreq_create_topics_t *q = &r->k.u.create_topics;
    topic_job_t *job;

    job = job_new(r, q->topic_count, true, sizeof(dp_kcreate_tresp_t));
    if (job == NULL)
        return;
    job->validate_only = q->validate_only;
    for (int32_t i = 0; i < q->topic_count; i++) {
        const dp_kcreate_topic_t *t = &q->topics[i];
        job_item_t *it = &job->items[i];

        it->name = t->name;
        it->partitions = t->num_partitions;
        it->configs = t->configs;
        it->ncfg = t->config_count;
        if (t->replication_factor != -1 && t->replication_factor != 1) {
            it->error = DP_KERR_INVALID_REPLICATION_FACTOR;
            snprintf(it->message, sizeof(it->message),
                     "replication factor must be 1 (replication is not built yet)");
        } else if (t->assignment_count > 0) {
            it->error = DP_KERR_INVALID_REQUEST;
            snprintf(it->message, sizeof(it->message),
                     "manual replica assignment is not supported: placement is p mod replicas");
        }
        for (int32_t j = 0; j < i; j++)
            if (dp_kstr_eq(q->topics[j].name, t->name) && it->error == 0) {
                it->error = DP_KERR_INVALID_REQUEST;
                snprintf(it->message, sizeof(it->message), "topic listed twice");
            }
    }
    dp_broker_call_control(r, job_start, create_done);
}

static int enc_delete(dp_req_t *r, dp_kwr_t *w)
{
    topic_job_t *job = r->api;

    return dp_kproto_delete_topics_resp(w, r->k.hdr.api_version, r->k.hdr.correlation_id, 0, job->n,
                                        job->rows);
}

static void delete_done(dp_req_t *r)
{
    topic_job_t *job = r->api;
    dp_kdelete_tresp_t *out = job->rows;
    size_t hint = 256;

    for (int i = 0; i < job->n; i++) {
        out[i] =
            (dp_kdelete_tresp_t){.name = job->items[i].name, .error_code = job->items[i].error};
        hint += 32 + (job->items[i].name.len > 0 ? (size_t)job->items[i].name.len : 0);
    }
    dp_broker_respond(r, hint, enc_delete);
}

void dp_admin_delete_topics(dp_req_t *r)
{
    const dp_kreq_delete_topics_t *q = &r->k.u.delete_topics;
    int n = q->topic_count;
    topic_job_t *job = job_new(r, n, false, sizeof(dp_kdelete_tresp_t));

    if (job == NULL)
        return;
    for (int i = 0; i < n; i++) {
        job->items[i].name = q->names[i];
        if (q->names[i].ptr == NULL || q->names[i].len < 0)
            job->items[i].error = DP_KERR_UNKNOWN_TOPIC_ID;
    }
    dp_broker_call_control(r, job_start, delete_done);
}

/* ---- DescribeConfigs ---- */

typedef struct cfg_state {
    dp_kdescribe_rresp_t *res;
    dp_kconfig_entry_t *entries;
    char (*vals)[32];
    int32_t n;
} cfg_state_t;

#define TOPIC_CONFIGS 4
#define BROKER_CONFIGS 6

static int enc_configs(dp_req_t *r, dp_kwr_t *w)
{
    cfg_state_t *s = r->api;

    return dp_kproto_describe_configs_resp(w, r->k.hdr.api_version, r->k.hdr.correlation_id, 0,
                                           s->n, s->res);
}

static bool wanted(const dp_kdescribe_resource_t *q, const char *name)
{
    if (q->key_count < 0)
        return true;
    for (int32_t i = 0; i < q->key_count; i++)
        if (dp_kstr_eq(q->keys[i], dp_kstr(name)))
            return true;
    return false;
}

static bool explicit_config(const dp_topic_t *t, const char *name)
{
    for (int32_t i = 0; i < t->config_count; i++)
        if (strcmp(t->configs[i].name, name) == 0)
            return true;
    return false;
}

static void add_entry(cfg_state_t *s, dp_kdescribe_rresp_t *rr, int *e, const char *name,
                      const char *value, int8_t source, int8_t type, bool read_only)
{
    dp_kconfig_entry_t *ce = &s->entries[*e];

    snprintf(s->vals[*e], sizeof(s->vals[*e]), "%s", value);
    *ce = (dp_kconfig_entry_t){.name = dp_kstr(name),
                               .value = dp_kstr(s->vals[*e]),
                               .read_only = read_only,
                               .config_source = source,
                               .config_type = type};
    rr->config_count++;
    (*e)++;
}

void dp_admin_describe_configs(dp_req_t *r)
{
    const dp_kreq_describe_configs_t *q = &r->k.u.describe_configs;
    dp_store_t *st = r->w->st;
    const dp_catalog_snap_t *snap = dp_catalog_get(st->catalog);
    int per = TOPIC_CONFIGS + DP_TOPIC_CONFIGS_MAX + BROKER_CONFIGS;
    size_t bytes = sizeof(cfg_state_t) +
                   (size_t)q->resource_count * (sizeof(dp_kdescribe_rresp_t) +
                                                (size_t)per * (sizeof(dp_kconfig_entry_t) + 32));
    cfg_state_t *s;
    size_t hint = 256;
    uint8_t *mem;
    int e = 0;

    mem = dp_broker_aux(r, bytes);
    if (mem == NULL)
        return;
    s = (cfg_state_t *)mem;
    s->res = (dp_kdescribe_rresp_t *)(s + 1);
    s->entries = (dp_kconfig_entry_t *)(s->res + q->resource_count);
    s->vals = (char(*)[32])(s->entries + (size_t)q->resource_count * (size_t)per);
    s->n = q->resource_count;
    for (int32_t i = 0; i < q->resource_count; i++) {
        const dp_kdescribe_resource_t *rq = &q->resources[i];
        dp_kdescribe_rresp_t *rr = &s->res[i];
        char v[32];

        rr->resource_type = rq->resource_type;
        rr->resource_name = rq->resource_name;
        rr->configs = &s->entries[e];
        hint += 64 + (rq->resource_name.len > 0 ? (size_t)rq->resource_name.len : 0) +
                (size_t)per * 160;
        if (rq->resource_type == 2) { /* topic */
            const dp_topic_t *t = dp_catalog_find(snap, rq->resource_name);

            if (t == NULL) {
                rr->error_code = DP_KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (wanted(rq, "cleanup.policy"))
                add_entry(s, rr, &e, "cleanup.policy", "delete",
                          explicit_config(t, "cleanup.policy") ? 1 : 5, 7, false);
            snprintf(v, sizeof(v), "%lld", (long long)t->retention_ms);
            if (wanted(rq, "retention.ms"))
                add_entry(s, rr, &e, "retention.ms", v, explicit_config(t, "retention.ms") ? 1 : 5,
                          5, false);
            snprintf(v, sizeof(v), "%lld", (long long)t->retention_bytes);
            if (wanted(rq, "retention.bytes"))
                add_entry(s, rr, &e, "retention.bytes", v,
                          explicit_config(t, "retention.bytes") ? 1 : 5, 5, false);
            snprintf(v, sizeof(v), "%llu", (unsigned long long)t->segment_bytes);
            if (wanted(rq, "segment.bytes"))
                add_entry(s, rr, &e, "segment.bytes", v,
                          explicit_config(t, "segment.bytes") ? 1 : 5, 3, false);
            for (int32_t c = 0; c < t->config_count; c++) {
                const char *n = t->configs[c].name;

                if (strcmp(n, "cleanup.policy") == 0 || strcmp(n, "retention.ms") == 0 ||
                    strcmp(n, "retention.bytes") == 0 || strcmp(n, "segment.bytes") == 0 ||
                    !wanted(rq, n))
                    continue;
                add_entry(s, rr, &e, n, t->configs[c].value, 1, 2, false);
            }
        } else if (rq->resource_type == 4) { /* broker */
            char id[16];

            snprintf(id, sizeof(id), "%d", st->cfg.replica_index);
            if (rq->resource_name.len > 0 && !dp_kstr_eq(rq->resource_name, dp_kstr(id))) {
                rr->error_code = DP_KERR_INVALID_REQUEST;
                continue;
            }
            snprintf(v, sizeof(v), "%d", st->cfg.default_partitions);
            if (wanted(rq, "num.partitions"))
                add_entry(s, rr, &e, "num.partitions", v, 4, 3, true);
            if (wanted(rq, "auto.create.topics.enable"))
                add_entry(s, rr, &e, "auto.create.topics.enable",
                          st->cfg.auto_create_topics ? "true" : "false", 4, 1, true);
            snprintf(v, sizeof(v), "%u", st->cfg.log.batch_bytes_max);
            if (wanted(rq, "message.max.bytes"))
                add_entry(s, rr, &e, "message.max.bytes", v, 4, 3, true);
            if (wanted(rq, "default.replication.factor"))
                add_entry(s, rr, &e, "default.replication.factor", "1", 4, 3, true);
            if (wanted(rq, "min.insync.replicas"))
                add_entry(s, rr, &e, "min.insync.replicas", "1", 4, 3, true);
            snprintf(v, sizeof(v), "%lld", (long long)st->cfg.log.retention_ms);
            if (wanted(rq, "log.retention.ms"))
                add_entry(s, rr, &e, "log.retention.ms", v, 4, 5, true);
        } else {
            rr->error_code = DP_KERR_INVALID_REQUEST;
        }
    }
    dp_broker_respond(r, hint, enc_configs);
}

/* ---- InitProducerId ---- */

typedef struct pid_state {
    int16_t error;
    int64_t pid;
    int16_t epoch;
} pid_state_t;

static int enc_pid(dp_req_t *r, dp_kwr_t *w)
{
    pid_state_t *s = r->api;

    return dp_kproto_init_producer_id_resp(w, r->k.hdr.api_version, r->k.hdr.correlation_id, 0,
                                           s->error, s->pid, s->epoch);
}

void dp_admin_init_producer_id(dp_req_t *r)
{
    const dp_kreq_init_producer_id_t *q = &r->k.u.init_producer_id;
    dp_store_t *st = r->w->st;
    pid_state_t *s;
    int rc;

    s = dp_broker_aux(r, sizeof(*s));
    if (s == NULL)
        return;
    *s = (pid_state_t){.error = 0, .pid = -1, .epoch = -1};
    if (q->transactional_id.len >= 0) {
        /* Transactions are not served; idempotence is. */
        s->error = DP_KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    } else if (q->producer_id >= 0 && q->producer_epoch >= 0 && q->producer_epoch < INT16_MAX - 1) {
        /* KIP-360: a producer bumps its epoch to reset sequences. */
        s->pid = q->producer_id;
        s->epoch = (int16_t)(q->producer_epoch + 1);
    } else {
        rc = dp_pidalloc_next(st->pidalloc, &s->pid);
        if (rc != 0) {
            s->error = DP_KERR_UNKNOWN_SERVER_ERROR;
            wc_log(WC_LOG_ERROR, "store", "producer id allocation failed", "{s:s}", "error",
                   strerror(-rc));
        } else {
            s->epoch = 0;
        }
    }
    dp_broker_respond(r, 128, enc_pid);
}

/* ---- FindCoordinator ---- */

/** The store replica coordinating `group`. */
static int coordinator_of(const dp_store_t *st, dp_kstr_t group)
{
    return (int)(dp_worker_hash(group.ptr, group.len > 0 ? (size_t)group.len : 0) %
                 (uint64_t)st->cfg.replicas);
}

typedef struct coord_state {
    char host[256];
} coord_state_t;

static int enc_coord(dp_req_t *r, dp_kwr_t *w)
{
    const dp_kreq_find_coordinator_t *q = &r->k.u.find_coordinator;
    coord_state_t *s = r->api;
    dp_store_t *st = r->w->st;
    int node = q->key_count > 0 ? coordinator_of(st, q->keys[0]) : 0;

    if (q->key_type != 0)
        return dp_kproto_find_coordinator_resp(w, r->k.hdr.api_version, r->k.hdr.correlation_id,
                                               DP_KERR_COORDINATOR_NOT_AVAILABLE, -1, dp_kstr(""),
                                               -1, q->key_count, q->keys);
    return dp_kproto_find_coordinator_resp(w, r->k.hdr.api_version, r->k.hdr.correlation_id,
                                           DP_KERR_NONE, node, dp_kstr(s->host), st->port,
                                           q->key_count, q->keys);
}

void dp_admin_find_coordinator(dp_req_t *r)
{
    const dp_kreq_find_coordinator_t *q = &r->k.u.find_coordinator;
    dp_store_t *st = r->w->st;
    coord_state_t *s;

    /* v4 batches keys; each key's coordinator is computed the same way, but
     * the encoder repeats one answer, so batches must share a coordinator. */
    for (int32_t i = 1; i < q->key_count; i++)
        if (coordinator_of(st, q->keys[i]) != coordinator_of(st, q->keys[0])) {
            dp_conn_abort(r, "FindCoordinator v4 keys with different coordinators");
            return;
        }
    s = dp_broker_aux(r, sizeof(*s));
    if (s == NULL)
        return;
    replica_host(st, q->key_count > 0 ? coordinator_of(st, q->keys[0]) : 0, s->host,
                 sizeof(s->host));
    dp_broker_respond(r, 512 + (size_t)q->key_count * 300, enc_coord);
}

/* ---- consumer groups (on the control worker) ---- */

static void group_cb(dp_group_call_t *call)
{
    dp_req_t *r = call->ctx;

    dp_broker_call_return(dp_worker_control(r->w->st), r, call->result);
}

static void group_on_control(dp_worker_t *cw, dp_msg_t *m)
{
    dp_req_t *r = (dp_req_t *)((uint8_t *)m - offsetof(dp_req_t, call));
    dp_group_call_t *call = r->api;

    if (cw->st->groups == NULL) {
        dp_broker_call_return(cw, r, -ESHUTDOWN);
        return;
    }
    dp_group_handle(cw->st->groups, call, cw->now_ms);
}

static void group_done(dp_req_t *r)
{
    if (r->call_result != 0) {
        dp_conn_abort(r, r->call_result == -ESHUTDOWN ? "store stopping"
                                                      : "group response could not be built");
        return;
    }
    dp_broker_finish(r);
}

void dp_admin_group(dp_req_t *r)
{
    dp_group_call_t *call;
    size_t out;

    /* Response room, sized per API: the group module cannot retry with a
     * bigger buffer once the group state changed. A leader's JoinGroup
     * carries every member's metadata; SyncGroup one assignment (at most
     * metadata_bytes_max, 64 KiB); OffsetFetch of all topics grows with the
     * group's offsets; the rest answer a few bytes per request entry. */
    switch (r->k.hdr.api_key) {
    case DP_KAPI_JOIN_GROUP:
        out = 4u << 20;
        break;
    case DP_KAPI_SYNC_GROUP:
        out = (64u << 10) + 4096;
        break;
    case DP_KAPI_OFFSET_FETCH:
        out = (256u << 10) + (size_t)r->frame_len * 4;
        break;
    default:
        out = 4096 + (size_t)r->frame_len * 4;
        break;
    }
    call = dp_broker_aux(r, sizeof(*call));
    if (call == NULL)
        return;
    if (dp_broker_out(r, out) != 0) {
        dp_conn_abort(r, "memory budget exhausted");
        return;
    }
    call->req = &r->k;
    call->w = &r->wr;
    call->cb = group_cb;
    call->ctx = r;
    dp_broker_call_control(r, group_on_control, group_done);
}
