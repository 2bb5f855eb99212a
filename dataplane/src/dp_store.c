/* SPDX-License-Identifier: Apache-2.0 */
/* Store process lifecycle: open the topic catalog, recover every local
 * partition, start the group coordinator and producer-id allocator, bind
 * one SO_REUSEPORT listener per worker, run the workers, serve metrics,
 * and stop cleanly (every log flushed and closed). */
#include "dp_srv.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dp_group.h"
#include "dp_http.h"
#include "wc_log.h"

void dp_store_config_defaults(dp_store_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->data_dir = "/var/lib/weir/data";
    cfg->advertised_host = "127.0.0.1";
    cfg->port = 9092;
    cfg->workers = 1;
    cfg->replicas = 1;
    cfg->default_partitions = 1;
    cfg->auto_create_topics = true;
    dp_log_config_defaults(&cfg->log);
    /* Diagnostic: WEIR_STORE_READ_DIRECT=0 serves fetches with buffered
     * reads, to compare (docs/internals/store-bench.md). */
    if (getenv("WEIR_STORE_READ_DIRECT") != NULL &&
        strcmp(getenv("WEIR_STORE_READ_DIRECT"), "0") == 0)
        cfg->log.read_direct = 0;
    /* Diagnostic: WEIR_STORE_SYNC_MODE=odsync|fdatasync instead of RWF_DSYNC. */
    if (getenv("WEIR_STORE_SYNC_MODE") != NULL) {
        if (strcmp(getenv("WEIR_STORE_SYNC_MODE"), "odsync") == 0)
            cfg->log.sync_mode = DP_LOG_SYNC_O_DSYNC;
        else if (strcmp(getenv("WEIR_STORE_SYNC_MODE"), "fdatasync") == 0)
            cfg->log.sync_mode = DP_LOG_SYNC_FDATASYNC;
    }
    cfg->worker_memory_bytes = (size_t)512 << 20;
    cfg->max_request_bytes = 100 << 20;
    cfg->conns_max = 4096;
    cfg->inflight_max = 64;
    cfg->fetch_wait_max_ms = 30000;
    cfg->producers_max = 1024;
    cfg->retention_check_ms = 300000;
}

int dp_store_port(const dp_store_t *st)
{
    return st->port;
}

/* Removes directories of topics deleted before a crash (renamed to
 * "<dir>.<id>.deleted" at deletion). */
static void sweep_deleted(const char *data_dir)
{
    DIR *d = opendir(data_dir);
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);

        if (n > 8 && strcmp(de->d_name + n - 8, ".deleted") == 0) {
            char path[4400];

            snprintf(path, sizeof(path), "%s/%s", data_dir, de->d_name);
            dp_part_rm_tree(path);
        }
    }
    closedir(d);
}

static int render_metrics(dp_mbuf_t *out, void *ctx)
{
    static const struct {
        int key;
        const char *name;
    } apis[] = {{DP_KAPI_PRODUCE, "Produce"},
                {DP_KAPI_FETCH, "Fetch"},
                {DP_KAPI_LIST_OFFSETS, "ListOffsets"},
                {DP_KAPI_METADATA, "Metadata"},
                {DP_KAPI_OFFSET_COMMIT, "OffsetCommit"},
                {DP_KAPI_OFFSET_FETCH, "OffsetFetch"},
                {DP_KAPI_FIND_COORDINATOR, "FindCoordinator"},
                {DP_KAPI_JOIN_GROUP, "JoinGroup"},
                {DP_KAPI_HEARTBEAT, "Heartbeat"},
                {DP_KAPI_LEAVE_GROUP, "LeaveGroup"},
                {DP_KAPI_SYNC_GROUP, "SyncGroup"},
                {DP_KAPI_API_VERSIONS, "ApiVersions"},
                {DP_KAPI_CREATE_TOPICS, "CreateTopics"},
                {DP_KAPI_DELETE_TOPICS, "DeleteTopics"},
                {DP_KAPI_INIT_PRODUCER_ID, "InitProducerId"},
                {DP_KAPI_DESCRIBE_CONFIGS, "DescribeConfigs"}};
    dp_store_t *st = ctx;
    dp_hist_t produce, fetch, wlat, alat;
    uint64_t pb = 0, pbat = 0, fb = 0, perr = 0, proto = 0, conns = 0, commits = 0;
    int64_t open = 0, offline = 0;

    dp_hist_init(&produce);
    dp_hist_init(&fetch);
    dp_hist_init(&wlat);
    dp_hist_init(&alat);
    for (int i = 0; i < st->nworkers; i++) {
        dp_wmetrics_t *m = &st->workers[i].m;

        pb += dp_counter_get(&m->produce_bytes);
        pbat += dp_counter_get(&m->produce_batches);
        fb += dp_counter_get(&m->fetch_bytes);
        perr += dp_counter_get(&m->produce_errors);
        proto += dp_counter_get(&m->protocol_errors);
        conns += dp_counter_get(&m->connections);
        commits += dp_counter_get(&m->log_commits);
        open += dp_gauge_get(&m->open_connections);
        offline += dp_gauge_get(&m->offline_partitions);
        dp_hist_merge(&produce, &m->produce_latency);
        dp_hist_merge(&fetch, &m->fetch_latency);
        dp_hist_merge(&wlat, &m->log_write_latency);
        dp_hist_merge(&alat, &m->log_append_latency);
    }
    dp_metrics_counter(out, "weir_store_produce_bytes_total", "Record batch bytes appended", NULL,
                       pb);
    dp_metrics_counter(out, "weir_store_produce_batches_total", "Record batches appended", NULL,
                       pbat);
    dp_metrics_counter(out, "weir_store_produce_errors_total",
                       "Partition produce results with an error", NULL, perr);
    dp_metrics_counter(out, "weir_store_fetch_bytes_total", "Record bytes served by Fetch", NULL,
                       fb);
    dp_metrics_counter(out, "weir_store_protocol_errors_total",
                       "Connections closed for protocol errors", NULL, proto);
    dp_metrics_counter(out, "weir_store_connections_total", "Connections accepted", NULL, conns);
    dp_metrics_counter(out, "weir_store_fsyncs_total",
                       "Durable log commits: RWF_DSYNC segment writes and fdatasyncs", NULL,
                       commits);
    dp_metrics_gauge(out, "weir_store_connections", "Open connections", NULL, open);
    dp_metrics_gauge(out, "weir_store_offline_partitions",
                     "Partitions not served: recovery found damage before the tail", NULL, offline);
    dp_metrics_hist(out, "weir_store_produce_latency_seconds",
                    "Produce request received to response queued (acks=all includes "
                    "the durable write)",
                    NULL, &produce);
    dp_metrics_hist(out, "weir_store_log_write_seconds",
                    "Segment write queued to completed (with RWF_DSYNC: on stable storage)", NULL,
                    &wlat);
    dp_metrics_hist(out, "weir_store_append_seconds",
                    "Batch append accepted by the partition to durable (acks=1: written): "
                    "the write plus the wait for the write before it",
                    NULL, &alat);
    dp_metrics_hist(out, "weir_store_fetch_latency_seconds",
                    "Fetch request received to response queued (includes long-poll wait)", NULL,
                    &fetch);
    dp_metrics_family(out, "weir_store_requests_total", "Requests by API", DP_METRIC_COUNTER);
    for (size_t a = 0; a < sizeof(apis) / sizeof(apis[0]); a++) {
        uint64_t n = 0;
        char labels[64];

        for (int i = 0; i < st->nworkers; i++)
            n += dp_counter_get(&st->workers[i].m.requests[apis[a].key]);
        snprintf(labels, sizeof(labels), "api=\"%s\"", apis[a].name);
        dp_metrics_counter(out, "weir_store_requests_total", NULL, labels, n);
    }
    return out->err; /* sticky: the first failure of any write above */
}

/* Ready while running. Offline partitions do not make the pod unready:
 * that would cut clients off the healthy partitions too; they are reported
 * by weir_store_offline_partitions and the error log instead. */
static int ready(char *reason, size_t len, void *ctx)
{
    dp_store_t *st = ctx;

    if (atomic_load(&st->stop)) {
        snprintf(reason, len, "stopping");
        return 0;
    }
    return 1;
}

static bool offsets_partition_ok(void *ctx, dp_kstr_t topic, int32_t partition)
{
    dp_store_t *st = ctx;
    const dp_topic_t *t = dp_catalog_find(dp_catalog_get(st->catalog), topic);

    return t != NULL && partition >= 0 && partition < t->partitions;
}

static void store_free(dp_store_t *st)
{
    if (st->http != NULL)
        dp_http_stop(st->http);
    for (int i = 0; i < st->nworkers; i++)
        dp_worker_dispose(&st->workers[i]);
    free(st->workers);
    if (st->pidalloc != NULL)
        dp_pidalloc_close(st->pidalloc);
    dp_catalog_free(st->catalog);
    free(st);
}

int dp_store_start(dp_store_t **out, const dp_store_config_t *cfg, char *err, size_t errlen)
{
    dp_catalog_defaults_t defs = {.retention_ms = cfg->log.retention_ms,
                                  .retention_bytes = cfg->log.retention_bytes,
                                  .segment_bytes = cfg->log.segment_bytes};
    dp_store_t *st;
    dp_group_config_t gc;
    const dp_catalog_snap_t *snap;
    int rc;

    if (cfg->workers < 1 || cfg->workers > DP_CATALOG_READERS_MAX || cfg->replicas < 1 ||
        cfg->replica_index < 0 || cfg->replica_index >= cfg->replicas) {
        snprintf(err, errlen, "invalid workers (%d) or replica index %d of %d", cfg->workers,
                 cfg->replica_index, cfg->replicas);
        return -EINVAL;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -ENOMEM;
    st->cfg = *cfg;
    st->port = cfg->port;
    rc = dp_catalog_open(&st->catalog, cfg->data_dir, &defs, err, errlen);
    if (rc != 0) {
        free(st);
        return rc;
    }
    sweep_deleted(cfg->data_dir);
    st->workers = calloc((size_t)cfg->workers, sizeof(dp_worker_t));
    if (st->workers == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    for (int i = 0; i < cfg->workers; i++) {
        rc = dp_worker_init(&st->workers[i], st, i, err, errlen);
        if (rc != 0)
            goto fail;
        st->nworkers = i + 1;
    }
    /* Recovery, on this thread before the workers start (each log is
     * bound to its owner's ring). */
    snap = dp_catalog_get(st->catalog);
    for (uint32_t t = 0; t < snap->count; t++)
        for (int i = 0; i < st->nworkers; i++) {
            rc = dp_part_open_topic(&st->workers[i], snap->topics[t], false, err, errlen);
            if (rc != 0)
                goto fail;
        }
    rc = dp_pidalloc_open(&st->pidalloc, cfg->data_dir, (uint32_t)cfg->replica_index,
                          (uint32_t)cfg->replicas, err, errlen);
    if (rc != 0)
        goto fail;
    dp_group_config_defaults(&gc);
    gc.partition_check = offsets_partition_ok;
    gc.partition_check_ctx = st;
    rc = dp_group_mgr_open(&st->groups, &st->workers[0].ring, cfg->data_dir, &gc, err, errlen);
    if (rc != 0)
        goto fail;
    for (int i = 0; i < st->nworkers; i++) {
        rc = dp_worker_listen(&st->workers[i], cfg->bind_host, st->port, err, errlen);
        if (rc != 0)
            goto fail;
        if (st->port == 0) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);

            getsockname(st->workers[i].listen_fd, (struct sockaddr *)&ss, &sl);
            st->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                     : ((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    if (cfg->http_port > 0) {
        dp_http_handlers_t h = {.render = render_metrics, .ready = ready, .ctx = st};

        rc = dp_http_start(&st->http, cfg->bind_host, cfg->http_port, &h, err, errlen);
        if (rc != 0)
            goto fail;
    }
    for (int i = 0; i < st->nworkers; i++) {
        rc = dp_worker_spawn(&st->workers[i]);
        if (rc != 0) {
            snprintf(err, errlen, "thread: %s", strerror(-rc));
            atomic_store(&st->stop, true);
            /* Started workers close their own partitions; `fail` closes
             * the rest. */
            for (int j = 0; j < i; j++) {
                dp_worker_wake(&st->workers[j]);
                dp_worker_join(&st->workers[j]);
            }
            goto fail;
        }
    }
    *out = st;
    return 0;
fail:
    if (st->groups != NULL) {
        dp_group_mgr_close(st->groups);
        st->groups = NULL;
    }
    for (int i = 0; i < st->nworkers; i++)
        while (!dp_part_reap(&st->workers[i], true))
            dp_ring_run_once(&st->workers[i].ring, 1, 10);
    store_free(st);
    return rc;
}

int dp_store_stop(dp_store_t *st)
{
    int failed = 0;

    atomic_store(&st->stop, true);
    for (int i = 0; i < st->nworkers; i++)
        dp_worker_wake(&st->workers[i]);
    for (int i = 0; i < st->nworkers; i++)
        if (dp_worker_join(&st->workers[i]) != 0)
            failed = -EIO;
    store_free(st);
    return failed;
}
