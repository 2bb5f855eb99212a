/* SPDX-License-Identifier: Apache-2.0 */
/* Produce (origin side): one partition op per (topic, partition), sent to
 * the owning workers in parallel; the response is built when every op has
 * come back. acks=0 requests get no response but keep their memory until
 * the batches are written. */
#include "dp_srv.h"

#include <string.h>

typedef struct produce_state {
    dp_kproduce_tresp_t *topics;
    dp_kproduce_presp_t *parts;
} produce_state_t;

static int enc_produce(dp_req_t *r, dp_kwr_t *w)
{
    const dp_kreq_produce_t *p = &r->k.u.produce;
    produce_state_t *s = r->api;

    return dp_kproto_produce_resp(w, r->k.hdr.api_version, r->k.hdr.correlation_id, 0,
                                  p->topic_count, s->topics);
}

static void produce_done(dp_req_t *r)
{
    const dp_kreq_produce_t *p = &r->k.u.produce;
    produce_state_t *s = r->api;
    size_t hint = 256;
    int k = 0;

    for (int32_t i = 0; i < p->topic_count; i++) {
        const dp_kproduce_topic_t *t = &p->topics[i];

        hint += (size_t)t->name.len + 16 + (size_t)t->part_count * 40;
        for (int32_t j = 0; j < t->part_count; j++, k++) {
            dp_pop_t *op = &r->pops[k];
            dp_kproduce_presp_t *pr = &s->parts[k];

            pr->partition = op->partition;
            pr->error_code = op->error;
            pr->base_offset = op->error == 0 ? op->u.produce.base_offset : -1;
            pr->log_append_time_ms = -1;
            pr->log_start_offset = op->error == 0 ? op->log_start : -1;
            if (op->error == 0) {
                dp_counter_add(&r->w->m.produce_bytes, op->u.produce.len);
                dp_counter_add(&r->w->m.produce_batches, 1);
            } else {
                dp_counter_add(&r->w->m.produce_errors, 1);
            }
        }
    }
    dp_hist_record_ns(&r->w->m.produce_latency, dp_worker_now_ns() - r->t0_ns);
    if (r->no_response) {
        dp_conn_done(r);
        return;
    }
    dp_broker_respond(r, hint, enc_produce);
}

void dp_produce_start(dp_req_t *r)
{
    const dp_kreq_produce_t *p = &r->k.u.produce;
    const dp_catalog_snap_t *snap = dp_catalog_get(r->w->st->catalog);
    int16_t common = DP_KERR_NONE;
    produce_state_t *s;
    int n = 0, k = 0;
    size_t bytes;
    uint8_t *mem;

    for (int32_t i = 0; i < p->topic_count; i++)
        n += p->topics[i].part_count;
    bytes = sizeof(*s) + (size_t)n * sizeof(dp_pop_t) +
            (size_t)p->topic_count * sizeof(dp_kproduce_tresp_t) +
            (size_t)n * sizeof(dp_kproduce_presp_t) + 64;
    mem = dp_broker_aux(r, bytes);
    if (mem == NULL)
        return;
    s = (produce_state_t *)mem;
    r->pops = (dp_pop_t *)(s + 1);
    r->npops = n;
    s->topics = (dp_kproduce_tresp_t *)(r->pops + n);
    s->parts = (dp_kproduce_presp_t *)(s->topics + p->topic_count);
    if (p->acks != 0 && p->acks != 1 && p->acks != -1)
        common = DP_KERR_INVALID_REQUIRED_ACKS;
    else if (p->transactional_id.len >= 0)
        common = DP_KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    r->no_response = p->acks == 0;
    for (int32_t i = 0; i < p->topic_count; i++) {
        const dp_kproduce_topic_t *t = &p->topics[i];

        s->topics[i].name = t->name;
        s->topics[i].part_count = t->part_count;
        s->topics[i].parts = &s->parts[k];
        for (int32_t j = 0; j < t->part_count; j++, k++) {
            dp_pop_t *op = &r->pops[k];
            const dp_kproduce_part_t *pp = &t->parts[j];

            op->kind = DP_POP_PRODUCE;
            op->partition = pp->partition;
            op->error = common;
            if (op->error == 0)
                op->error = dp_broker_route(r, snap, t->name, pp->partition, op);
            if (op->error == 0 && (pp->records.len <= 0 || pp->records.ptr == NULL))
                op->error = DP_KERR_INVALID_RECORD;
            if (op->error != 0) {
                op->owner = NULL;
                continue;
            }
            /* The batch lives in this request's frame, which stays put
             * until every op has replied. */
            op->u.produce.batch = (uint8_t *)pp->records.ptr;
            op->u.produce.len = (uint32_t)pp->records.len;
            op->u.produce.flags = p->acks == -1 ? 0 : DP_LOG_APPEND_WRITTEN;
        }
    }
    r->resume = produce_done;
    dp_broker_send_pops(r);
}
