/* SPDX-License-Identifier: Apache-2.0 */
/* Request dispatch for the store: routes a decoded request to its API
 * handler, builds pooled response buffers, and carries partition ops and
 * control-plane calls to other workers and back. See docs/internals/store.md. */
#include "dp_srv.h"

#include <errno.h>
#include <string.h>

#include "wc_log.h"

#define RESPONSE_MAX (64u << 20)

int dp_broker_out(dp_req_t *r, size_t bytes)
{
    dp_pool_free(&r->w->pool, r->out);
    r->out = dp_pool_alloc(&r->w->pool, bytes, &r->out_cap);
    if (r->out == NULL) {
        r->out_cap = 0;
        return -ENOMEM;
    }
    dp_kwr_init(&r->wr, r->out, r->out_cap);
    return 0;
}

void *dp_broker_aux(dp_req_t *r, size_t bytes)
{
    dp_pool_free(&r->w->pool, r->aux);
    r->aux = dp_pool_alloc(&r->w->pool, bytes, &r->aux_cap);
    r->api = r->aux;
    if (r->aux == NULL) {
        dp_conn_abort(r, "memory budget exhausted");
        return NULL;
    }
    memset(r->aux, 0, bytes);
    return r->aux;
}

int16_t dp_broker_route(dp_req_t *r, const dp_catalog_snap_t *snap, dp_kstr_t name,
                        int32_t partition, dp_pop_t *op)
{
    dp_store_t *st = r->w->st;
    const dp_topic_t *t = dp_catalog_find(snap, name);

    op->owner = NULL;
    if (t == NULL || partition < 0 || partition >= t->partitions)
        return DP_KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (!dp_worker_leads(st, partition))
        return DP_KERR_NOT_LEADER_OR_FOLLOWER;
    op->topic_id = t->id;
    op->owner = dp_worker_owner(st, t, partition);
    return DP_KERR_NONE;
}

void dp_broker_finish(dp_req_t *r)
{
    if (r->iovcnt == 0) { /* a plain frame; Fetch brings its own iovecs */
        r->iov1.iov_base = r->out;
        r->iov1.iov_len = r->wr.off;
        r->iov = &r->iov1;
        r->iovcnt = 1;
    }
    dp_conn_done(r);
}

void dp_broker_respond(dp_req_t *r, size_t hint, dp_broker_enc enc)
{
    size_t size = hint < 4096 ? 4096 : hint;
    int rc;

    for (;;) {
        if (dp_broker_out(r, size) != 0) {
            dp_conn_abort(r, "response memory exhausted");
            return;
        }
        rc = enc(r, &r->wr);
        if (rc == 0 && r->wr.err == 0)
            break;
        if ((rc != -ENOBUFS && r->wr.err != -ENOBUFS) || size >= RESPONSE_MAX) {
            dp_conn_abort(r, "response encoding failed");
            return;
        }
        size *= 2;
    }
    dp_broker_finish(r);
}

static int enc_api_versions(dp_req_t *r, dp_kwr_t *w)
{
    return dp_kproto_api_versions_resp(w, r->k.hdr.api_version, r->k.hdr.correlation_id,
                                       DP_KERR_NONE, 0);
}

static int enc_api_versions_unsupported(dp_req_t *r, dp_kwr_t *w)
{
    /* As Kafka does: a v0 response listing the versions, so the client can
     * pick one it shares with us. */
    return dp_kproto_api_versions_resp(w, 0, r->k.hdr.correlation_id, DP_KERR_UNSUPPORTED_VERSION,
                                       0);
}

void dp_broker_dispatch(dp_req_t *r, int rc)
{
    int16_t key = r->k.hdr.api_key;

    if (rc == -EPROTONOSUPPORT && key == DP_KAPI_API_VERSIONS) {
        dp_broker_respond(r, 1024, enc_api_versions_unsupported);
        return;
    }
    if (rc != 0) {
        dp_conn_abort(r, rc == -EPROTONOSUPPORT ? "unsupported API or version"
                         : rc == -ENOBUFS       ? "request has too many entries"
                                                : "malformed request");
        return;
    }
    if (key >= 0 && key < 64)
        dp_counter_add(&r->w->m.requests[key], 1);
    switch (key) {
    case DP_KAPI_API_VERSIONS:
        dp_broker_respond(r, 1024, enc_api_versions);
        break;
    case DP_KAPI_PRODUCE:
        dp_produce_start(r);
        break;
    case DP_KAPI_FETCH:
        dp_fetch_start(r);
        break;
    case DP_KAPI_LIST_OFFSETS:
        dp_offsets_start(r);
        break;
    case DP_KAPI_METADATA:
        dp_admin_metadata(r);
        break;
    case DP_KAPI_CREATE_TOPICS:
        dp_admin_create_topics(r);
        break;
    case DP_KAPI_DELETE_TOPICS:
        dp_admin_delete_topics(r);
        break;
    case DP_KAPI_DESCRIBE_CONFIGS:
        dp_admin_describe_configs(r);
        break;
    case DP_KAPI_INIT_PRODUCER_ID:
        dp_admin_init_producer_id(r);
        break;
    case DP_KAPI_FIND_COORDINATOR:
        dp_admin_find_coordinator(r);
        break;
    case DP_KAPI_JOIN_GROUP:
    case DP_KAPI_SYNC_GROUP:
    case DP_KAPI_HEARTBEAT:
    case DP_KAPI_LEAVE_GROUP:
    case DP_KAPI_OFFSET_COMMIT:
    case DP_KAPI_OFFSET_FETCH:
        dp_admin_group(r);
        break;
    default:
        dp_conn_abort(r, "API not handled");
        break;
    }
}

void dp_broker_send_pops(dp_req_t *r)
{
    r->pending = 0;
    for (int i = 0; i < r->npops; i++)
        if (r->pops[i].owner != NULL)
            r->pending++;
    if (r->pending == 0) {
        r->resume(r);
        return;
    }
    /* Replies, even from this worker, arrive through the message queues
     * after this returns, never inside the loop. */
    for (int i = 0; i < r->npops; i++) {
        dp_pop_t *op = &r->pops[i];

        if (op->owner == NULL)
            continue;
        op->req = r;
        op->origin = r->w;
        op->reply_fn = dp_broker_pop_reply;
        dp_worker_post(r->w, op->owner, &op->msg, dp_part_exec);
    }
}

void dp_broker_pop_reply(dp_worker_t *w, dp_msg_t *m)
{
    dp_pop_t *op = (dp_pop_t *)m;
    dp_req_t *r = op->req;

    (void)w;
    if (--r->pending == 0)
        r->resume(r);
}

static void call_reply(dp_worker_t *w, dp_msg_t *m)
{
    dp_req_t *r = (dp_req_t *)((uint8_t *)m - offsetof(dp_req_t, call_reply));

    (void)w;
    r->resume(r);
}

void dp_broker_call_control(dp_req_t *r, dp_msg_fn fn, void (*resume)(dp_req_t *r))
{
    r->resume = resume;
    dp_worker_post(r->w, dp_worker_control(r->w->st), &r->call, fn);
}

void dp_broker_call_return(dp_worker_t *cw, dp_req_t *r, int result)
{
    r->call_result = result;
    dp_worker_post(cw, r->w, &r->call_reply, call_reply);
}
