/* SPDX-License-Identifier: Apache-2.0 */
/* op_kube leader election (coordination.k8s.io/v1 Lease, client-go's
 * algorithm), core/v1 Events, and the exponential backoff helper. */
#include "op_kube_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- time -- */

void op_kube_format_microtime(char buf[32], time_t t, long usec)
{
    struct tm tm;

    char date[24];

    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, 32, "%.19s.%06ldZ", date, (usec % 1000000 + 1000000) % 1000000);
}

static void now_microtime(char buf[32])
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    op_kube_format_microtime(buf, tv.tv_sec, (long)tv.tv_usec);
}

/* ------------------------------------------------------------- backoff -- */

static uint64_t xorshift64s(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void op_kube_backoff_init(op_kube_backoff_t *b, uint64_t base_ms, uint64_t max_ms, uint64_t seed)
{
    struct timespec ts;

    b->base_ms = base_ms ? base_ms : 1;
    b->max_ms = max_ms < b->base_ms ? b->base_ms : max_ms;
    b->attempt = 0;
    if (!seed) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)ts.tv_sec ^
               ((uint64_t)getpid() << 32);
    }
    b->rng = seed ? seed : 0x9E3779B97F4A7C15ULL; /* xorshift must not start at 0 */
}

uint64_t op_kube_backoff_next(op_kube_backoff_t *b)
{
    uint64_t d = b->max_ms, half;

    /* base << attempt without overflow: stop doubling once max is reached. */
    if (b->attempt < 63 && b->base_ms <= (b->max_ms >> b->attempt))
        d = b->base_ms << b->attempt;
    if (d > b->max_ms)
        d = b->max_ms;
    if (b->attempt < 64)
        b->attempt++;
    half = d / 2;
    return half + xorshift64s(&b->rng) % (d - half + 1);
}

void op_kube_backoff_reset(op_kube_backoff_t *b)
{
    b->attempt = 0;
}

/* --------------------------------------------------------------- lease -- */

static op_kube__lease_obs_t *lease_obs(op_kube_t *k, const char *key)
{
    op_kube__lease_obs_t *free_slot = NULL, *oldest = &k->leases[0];

    for (int i = 0; i < OP_KUBE__LEASES_MAX; i++) {
        op_kube__lease_obs_t *o = &k->leases[i];

        if (strcmp(o->key, key) == 0)
            return o;
        if (!o->key[0] && !free_slot)
            free_slot = o;
        if (o->observed.tv_sec < oldest->observed.tv_sec)
            oldest = o;
    }
    if (!free_slot) {
        free_slot = oldest;
        memset(free_slot, 0, sizeof(*free_slot));
    }
    snprintf(free_slot->key, sizeof(free_slot->key), "%s", key);
    free_slot->record[0] = '\0';
    return free_slot;
}

static json_t *lease_spec(const char *identity, int duration_s, const char *acquire,
                          const char *renew, json_int_t transitions)
{
    return json_pack("{s:s, s:i, s:s, s:s, s:I}", "holderIdentity", identity,
                     "leaseDurationSeconds", duration_s, "acquireTime", acquire, "renewTime", renew,
                     "leaseTransitions", transitions);
}

op_kube_err_t op_kube_lease_try(op_kube_t *k, const char *ns, const char *name,
                                const char *identity, int duration_s, bool *is_leader, char *err,
                                size_t errlen)
{
    char path[512], key[256], record[512], now[32];
    json_t *lease = NULL, *spec, *obj = NULL, *out = NULL;
    const char *holder, *renew, *acquire;
    json_int_t transitions, held_for;
    op_kube__lease_obs_t *obs;
    struct timespec mono;
    op_kube_err_t rc;
    bool mine;

    *is_leader = false;
    if (!identity || !*identity || duration_s <= 0 ||
        op_kube_path(path, sizeof(path), "coordination.k8s.io/v1", ns, "leases", name, NULL) < 0)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "lease: bad arguments");
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    now_microtime(now);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    obs = lease_obs(k, key);

    rc = op_kube_get(k, path, &lease, err, errlen);
    if (rc == OP_KUBE_ERR_NOT_FOUND) {
        char coll[512];

        op_kube_path(coll, sizeof(coll), "coordination.k8s.io/v1", ns, "leases", NULL, NULL);
        obj = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion", "coordination.k8s.io/v1",
                        "kind", "Lease", "metadata", "name", name, "namespace", ns, "spec",
                        lease_spec(identity, duration_s, now, now, 0));
        if (!obj)
            return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
        rc = op_kube_create(k, coll, obj, &out, err, errlen);
        if (rc == OP_KUBE_ERR_CONFLICT) {
            rc = OP_KUBE_OK; /* another candidate created it first */
        } else if (rc == OP_KUBE_OK) {
            *is_leader = true;
            snprintf(obs->record, sizeof(obs->record), "%s|%s", identity, now);
            obs->observed = mono;
        }
        goto out;
    }
    if (rc != OP_KUBE_OK)
        goto out;

    spec = json_object_get(lease, "spec");
    holder = op_kube__str(spec, "holderIdentity", NULL);
    renew = op_kube__str(spec, "renewTime", NULL);
    acquire = op_kube__str(spec, "acquireTime", NULL);
    transitions = json_integer_value(json_object_get(spec, "leaseTransitions"));
    held_for = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
    if (held_for <= 0)
        held_for = duration_s;
    mine = holder && strcmp(holder, identity) == 0;

    /* Expiry is judged on our own monotonic clock from the moment we saw the
     * record change, never by comparing renewTime with our wall clock. */
    snprintf(record, sizeof(record), "%s|%s", holder ? holder : "", renew ? renew : "");
    if (strcmp(record, obs->record) != 0) {
        snprintf(obs->record, sizeof(obs->record), "%s", record);
        obs->observed = mono;
    }
    if (holder && *holder && !mine &&
        (mono.tv_sec - obs->observed.tv_sec) * 1000L +
                (mono.tv_nsec - obs->observed.tv_nsec) / 1000000L <
            held_for * 1000L) {
        if (err && errlen)
            snprintf(err, errlen, "lease %s held by %s", key, holder);
        goto out; /* held by someone else and not expired */
    }

    /* Renew (ours) or take over (free or expired): an update conditioned on
     * the resourceVersion we read. */
    obj = json_deep_copy(lease);
    spec = lease_spec(identity, duration_s, mine && acquire ? acquire : now, now,
                      mine ? transitions : transitions + 1);
    if (!obj || !spec || json_object_set_new(obj, "spec", spec) != 0) {
        if (!obj)
            json_decref(spec);
        rc = op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
        goto out;
    }
    json_object_del(json_object_get(obj, "metadata"), "managedFields");
    rc = op_kube_update(k, path, obj, &out, err, errlen);
    if (rc == OP_KUBE_ERR_CONFLICT) {
        rc = OP_KUBE_OK; /* someone else updated it first: we lost this round */
    } else if (rc == OP_KUBE_OK) {
        *is_leader = true;
        snprintf(obs->record, sizeof(obs->record), "%s|%s", identity, now);
        obs->observed = mono;
    }
out:
    json_decref(lease);
    json_decref(obj);
    json_decref(out);
    return rc;
}

op_kube_err_t op_kube_lease_release(op_kube_t *k, const char *ns, const char *name,
                                    const char *identity, char *err, size_t errlen)
{
    char path[512], now[32];
    json_t *lease = NULL, *spec;
    const char *holder;
    op_kube_err_t rc;

    if (op_kube_path(path, sizeof(path), "coordination.k8s.io/v1", ns, "leases", name, NULL) < 0)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "lease: bad arguments");
    rc = op_kube_get(k, path, &lease, err, errlen);
    if (rc != OP_KUBE_OK)
        return rc;
    spec = json_object_get(lease, "spec");
    holder = op_kube__str(spec, "holderIdentity", NULL);
    if (!json_is_object(spec) || !holder || strcmp(holder, identity) != 0)
        goto out; /* not ours: nothing to give up */
    now_microtime(now);
    /* As client-go: no holder, one second, so others take over at once. */
    json_object_set_new(spec, "holderIdentity", json_string(""));
    json_object_set_new(spec, "leaseDurationSeconds", json_integer(1));
    json_object_set_new(spec, "renewTime", json_string(now));
    json_object_del(json_object_get(lease, "metadata"), "managedFields");
    rc = op_kube_update(k, path, lease, NULL, err, errlen);
out:
    json_decref(lease);
    return rc;
}

/* -------------------------------------------------------------- events -- */

op_kube_err_t op_kube_event_create(op_kube_t *k, const json_t *involved, const char *type,
                                   const char *reason, const char *message, const char *component,
                                   char *err, size_t errlen)
{
    const json_t *meta = json_object_get(involved, "metadata");
    const char *api = op_kube__str(involved, "apiVersion", NULL);
    const char *kind = op_kube__str(involved, "kind", NULL);
    const char *name = op_kube__str(meta, "name", NULL);
    const char *ns = op_kube__str(meta, "namespace", NULL);
    const char *uid = op_kube__str(meta, "uid", NULL);
    const char *orv = op_kube__str(meta, "resourceVersion", NULL);
    char path[512], gen[300], now[32], msg[1025], host[128] = "";
    json_t *ev, *ref;
    op_kube_err_t rc;

    if (!api || !kind || !name || !type || !reason || !message ||
        (strcmp(type, "Normal") != 0 && strcmp(type, "Warning") != 0))
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen,
                             "event: needs apiVersion, kind, metadata.name, type Normal|Warning, "
                             "reason and message");
    if (!component)
        component = "weir-operator";
    if (op_kube_path(path, sizeof(path), "v1", ns ? ns : "default", "events", NULL, NULL) < 0)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "event: bad namespace");
    /* The API server puts no limit on core/v1 messages but events.k8s.io
     * allows 1 KiB; keep the same bound here. */
    snprintf(msg, sizeof(msg), "%s", message);
    snprintf(gen, sizeof(gen), "%.250s.", name);
    now_microtime(now);
    now[19] = 'Z'; /* first/lastTimestamp are metav1.Time: whole seconds */
    now[20] = '\0';
    gethostname(host, sizeof(host) - 1);
    ref = json_pack("{s:s, s:s, s:s}", "apiVersion", api, "kind", kind, "name", name);
    if (ref && ns)
        json_object_set_new(ref, "namespace", json_string(ns));
    if (ref && uid)
        json_object_set_new(ref, "uid", json_string(uid));
    if (ref && orv)
        json_object_set_new(ref, "resourceVersion", json_string(orv));
    ev = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o, s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:i, "
                   "s:s, s:s}",
                   "apiVersion", "v1", "kind", "Event", "metadata", "generateName", gen,
                   "namespace", ns ? ns : "default", "involvedObject", ref, "reason", reason,
                   "message", msg, "type", type, "source", "component", component, "host", host,
                   "firstTimestamp", now, "lastTimestamp", now, "count", 1, "reportingComponent",
                   component, "reportingInstance", host);
    if (!ev)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    rc = op_kube_create(k, path, ev, NULL, err, errlen);
    json_decref(ev);
    return rc;
}
