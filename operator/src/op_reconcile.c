/* SPDX-License-Identifier: Apache-2.0 */
/* op_reconcile: ClusterStream, Stream and Processor controllers. They read
 * from the informer caches (never mutating cached objects), write with
 * server-side apply (fieldManager weir-operator) and publish one Ready
 * condition with observedGeneration through the status subresource. A
 * missing object means it was deleted: nothing to do. */
#include "op_reconcile.h"

#include "op_topic.h"
#include "wc_kafka_creds.h"
#include "wc_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GROUP_VERSION "streaming.weir.dev/v1alpha1"
#define ERRLEN 1024

/* The client of this thread's reconciles (op_reconcile_bind_client). */
static _Thread_local op_kube_t *tl_kube;
#define KUBE(r) (tl_kube ? tl_kube : (r)->kube)

void op_reconcile_bind_client(op_kube_t *k)
{
    tl_kube = k;
}

/* ---------------------------------------------------------------- helpers -- */

static const char *str_at(const json_t *o, const char *a, const char *b, const char *c)
{
    const json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    if (c)
        v = json_object_get(v, c);
    return json_string_value(v);
}

static const char *nz(const char *s, const char *dflt)
{
    return s ? s : dflt;
}

static json_int_t generation(const json_t *obj)
{
    return json_integer_value(json_object_get(json_object_get(obj, "metadata"), "generation"));
}

static void now_rfc3339(char buf[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const json_t *find_condition(const json_t *obj, const char *type)
{
    const json_t *c;
    size_t i;
    json_array_foreach (json_object_get(json_object_get(obj, "status"), "conditions"), i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

json_t *op_reconcile_ready_condition(const json_t *obj, const char *status, const char *reason,
                                     const char *message, const char *now)
{
    const json_t *prev = find_condition(obj, "Ready");
    const char *ps = str_at(prev, "status", NULL, NULL);
    const char *lt = str_at(prev, "lastTransitionTime", NULL, NULL);
    if (!ps || strcmp(ps, status) != 0 || !lt)
        lt = now;
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "type", "Ready", "status", status, "reason",
                     reason, "message", message ? message : "", "observedGeneration",
                     (json_int_t)generation(obj), "lastTransitionTime", lt);
}

/* Object path of `obj`'s kind, or sub-resource `sub`. */
static int obj_path(char *buf, size_t len, const json_t *obj, const char *sub)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    const char *plural;
    if (!kind || !av)
        return -1;
    if (strcmp(kind, "StatefulSet") == 0)
        plural = "statefulsets";
    else if (strcmp(kind, "Service") == 0)
        plural = "services";
    else if (strcmp(kind, "ConfigMap") == 0)
        plural = "configmaps";
    else if (strcmp(kind, "ClusterStream") == 0)
        plural = "clusterstreams";
    else if (strcmp(kind, "Stream") == 0)
        plural = "streams";
    else if (strcmp(kind, "Processor") == 0)
        plural = "processors";
    else
        return -1;
    return op_kube_path(buf, len, av, str_at(obj, "metadata", "namespace", NULL), plural,
                        str_at(obj, "metadata", "name", NULL), sub);
}

static void event(op_reconciler_t *r, const json_t *obj, const char *type, const char *reason,
                  const char *msg)
{
    char err[ERRLEN];
    if (op_kube_event_create(KUBE(r), obj, type, reason, msg, NULL, err, sizeof(err)) != OP_KUBE_OK)
        wc_log(WC_LOG_WARN, "reconcile", "cannot record an event", "{s:s, s:s}", "reason", reason,
               "error", err);
}

/* Whether every member of the status `st` about to be applied already has
 * that value in `obj`'s status (the condition is built with the previous
 * lastTransitionTime when the status holds, so an unchanged condition
 * compares equal). */
static bool status_unchanged(const json_t *obj, const json_t *st)
{
    const json_t *cur = json_object_get(obj, "status"), *v;
    const char *k;
    json_object_foreach ((json_t *)st, k, v) {
        if (!json_equal(json_object_get(cur, k), (json_t *)v))
            return false;
    }
    return true;
}

/*
 * Publishes Ready=`status` with `reason`/`message` plus the members of `extra`
 * (borrowed, may be NULL) in the status of `obj`, and records an Event when
 * the Ready status or reason changed.
 */
static int set_status(op_reconciler_t *r, const json_t *obj, const char *status, const char *reason,
                      const char *message, const json_t *extra)
{
    char now[32], path[512], err[ERRLEN];
    const json_t *prev = find_condition(obj, "Ready");
    const char *ps = str_at(prev, "status", NULL, NULL), *pr = str_at(prev, "reason", NULL, NULL);
    const char *ns = str_at(obj, "metadata", "namespace", NULL);
    json_t *cond, *st, *patch;
    op_kube_err_t e;
    now_rfc3339(now);
    cond = op_reconcile_ready_condition(obj, status, reason, message, now);
    st = json_pack("{s:I, s:[o]}", "observedGeneration", (json_int_t)generation(obj), "conditions",
                   cond);
    if (!st)
        return -1;
    if (extra)
        json_object_update(st, (json_t *)extra);
    if (status_unchanged(obj, st)) {
        /* Already published (as the cache shows): an apply of equal
         * content would change nothing, so do not send it. */
        json_decref(st);
        return 0;
    }
    patch = json_pack("{s:O, s:O, s:{s:s}, s:o}", "apiVersion", json_object_get(obj, "apiVersion"),
                      "kind", json_object_get(obj, "kind"), "metadata", "name",
                      str_at(obj, "metadata", "name", NULL), "status", st);
    if (!patch)
        return -1;
    if (ns)
        json_object_set_new(json_object_get(patch, "metadata"), "namespace", json_string(ns));
    if (obj_path(path, sizeof(path), obj, NULL) < 0) {
        json_decref(patch);
        return -1;
    }
    e = op_kube_patch_status(KUBE(r), path, OP_KUBE_PATCH_APPLY, patch, NULL, err, sizeof(err));
    json_decref(patch);
    if (e == OP_KUBE_ERR_NOT_FOUND)
        return 0;
    if (e != OP_KUBE_OK) {
        wc_log(WC_LOG_WARN, "reconcile", "status update failed", "{s:s, s:s}", "object", path,
               "error", err);
        return -1;
    }
    if (!ps || strcmp(ps, status) != 0 || !pr || strcmp(pr, reason) != 0) {
        wc_log(WC_LOG_INFO, "reconcile", "ready condition changed", "{s:s, s:s, s:s, s:s}",
               "object", path, "status", status, "reason", reason, "message",
               message ? message : "");
        /* Waiting for a new StatefulSet's first pods is not news; losing
         * readiness is. */
        if (!(strcmp(reason, "ProcessorNotReady") == 0 && (!ps || strcmp(ps, "True") != 0)))
            event(r, obj, strcmp(status, "True") == 0 ? "Normal" : "Warning", reason, message);
    }
    return 0;
}

/* What apply_children applies, and in which order. */
enum {
    APPLY_CHANGE = 0,        /* ConfigMap, the rest, Services */
    APPLY_STS_FIRST = 1,     /* StatefulSet, the rest, Services */
    APPLY_NO_SERVICES = 2,   /* with STS_FIRST: the workload only */
    APPLY_ONLY_SERVICES = 4, /* Services only */
};

/* Applies the rendered children `mode` names; the first failure's detail
 * goes to `err`. The order is what the pods need first, one round trip per
 * object:
 *  - a change of an existing workload applies the ConfigMap first, so that a
 *    pod the rollout starts never reads the previous config under the new
 *    config-hash, and a failed ConfigMap apply leaves the StatefulSet alone;
 *  - a first apply (APPLY_STS_FIRST: no StatefulSet yet) applies the
 *    StatefulSet first: its pods cannot read an older config because there
 *    is none, the ConfigMap follows a round trip later, long before the
 *    scheduler and the kubelet reach a pod (kubelet retries a missing
 *    ConfigMap volume until it exists, so the worst case is a later start,
 *    never a wrong config);
 *  - Services go last: a headless Service is needed for the pods' DNS
 *    names, not for the StatefulSet or its pods to be created. */
static int apply_children(op_reconciler_t *r, const json_t *objects, int mode, json_t **sts,
                          char *err, size_t errlen)
{
    const char *first = mode & APPLY_STS_FIRST ? "StatefulSet" : "ConfigMap";
    const json_t *o;
    size_t n = json_array_size(objects);
    char path[512];
    /* Three passes over the list: the first kind, then everything but
     * Services, then those. */
    for (size_t k = 0; k < 3 * n; k++) {
        json_t *res = NULL;
        const char *kind;
        bool head, svc, want;
        size_t pass = k / n;
        o = json_array_get(objects, k % n);
        kind = json_string_value(json_object_get(o, "kind"));
        head = kind && strcmp(kind, first) == 0;
        svc = kind && strcmp(kind, "Service") == 0;
        if (pass != (head ? 0u : svc ? 2u : 1u))
            continue;
        if ((mode & APPLY_NO_SERVICES && svc) || (mode & APPLY_ONLY_SERVICES && !svc))
            continue;
        if (obj_path(path, sizeof(path), o, NULL) < 0) {
            snprintf(err, errlen, "cannot build the path of a rendered %s", kind ? kind : "?");
            return -1;
        }
        want = sts && kind && strcmp(kind, "StatefulSet") == 0;
        /* Only the StatefulSet's answer is read: the others are not parsed. */
        if (op_kube_apply(KUBE(r), path, o, want ? &res : NULL, err, errlen) != OP_KUBE_OK)
            return -1;
        if (want) {
            json_decref(*sts);
            *sts = res;
        }
    }
    return 0;
}

/* The cached StatefulSet among `objects`, or NULL. */
static json_t *cached_sts(op_reconciler_t *r, const json_t *objects)
{
    const json_t *o;
    size_t i;
    if (!r->statefulsets)
        return NULL;
    json_array_foreach (objects, i, o) {
        const char *kind = str_at(o, "kind", NULL, NULL);
        if (kind && strcmp(kind, "StatefulSet") == 0)
            return op_informer_get(r->statefulsets, str_at(o, "metadata", "namespace", NULL),
                                   str_at(o, "metadata", "name", NULL));
    }
    return NULL;
}

/* True when the StatefulSet among `objects` is not in the cache: the apply
 * about to happen creates it. Without a StatefulSet informer, false. */
static bool sts_missing(op_reconciler_t *r, const json_t *objects)
{
    json_t *sts;
    if (!r->statefulsets)
        return false;
    sts = cached_sts(r, objects);
    json_decref(sts);
    return sts == NULL;
}

/* True when `obj`'s Ready condition is True; `why` gets its reason and
 * message otherwise. */
static bool is_ready(const json_t *obj, char *why, size_t whylen)
{
    const json_t *c = find_condition(obj, "Ready");
    const char *st = str_at(c, "status", NULL, NULL);
    if (st && strcmp(st, "True") == 0)
        return true;
    if (!c)
        snprintf(why, whylen, "not reconciled yet");
    else
        snprintf(why, whylen, "%s: %s", nz(str_at(c, "reason", NULL, NULL), "?"),
                 nz(str_at(c, "message", NULL, NULL), ""));
    return false;
}

/* A StatefulSet (as the apply answered it) is ready when its controller has
 * seen the current generation and every wanted replica is ready. */
static bool sts_ready(const json_t *sts, char *msg, size_t len, const char *what)
{
    const json_t *st = json_object_get(sts, "status");
    json_int_t want = json_integer_value(json_object_get(json_object_get(sts, "spec"), "replicas"));
    json_int_t ready = json_integer_value(json_object_get(st, "readyReplicas"));
    json_int_t seen = json_integer_value(json_object_get(st, "observedGeneration"));
    snprintf(msg, len, "%lld/%lld %s replicas ready", (long long)ready, (long long)want, what);
    return ready >= want && seen >= generation(sts);
}

/* ------------------------------------------------------------ credentials -- */

/* Credentials of ClusterStream `cs` for the admin client: none when it
 * names no Secret; else the Secret's keys (op_render_credentials_secret).
 * `*keep` holds the decoded data `auth` points into. Returns 0, or -1 with
 * the condition reason in `reason` and the detail in `err`. */
static int load_auth(op_reconciler_t *r, const json_t *cs, op_topic_auth_t *auth, json_t **keep,
                     const char **reason, char *err, size_t errlen)
{
    const char *name = op_render_credentials_secret(cs);
    const char *ns = r->credentials_namespace ? r->credentials_namespace : "weir-system";
    char e[512];
    json_t *d = NULL;
    op_kube_err_t ke;
    memset(auth, 0, sizeof(*auth));
    *keep = NULL;
    if (!name)
        return 0;
    ke = op_kube_secret_data(KUBE(r), ns, name, &d, e, sizeof(e));
    if (ke == OP_KUBE_ERR_NOT_FOUND) {
        *reason = "CredentialsNotFound";
        snprintf(err, errlen, "credentials Secret %s/%s not found", ns, name);
        return -1;
    }
    if (ke != OP_KUBE_OK) {
        *reason = "CredentialsNotFound";
        snprintf(err, errlen, "credentials Secret %s/%s: %.512s", ns, name, e);
        return -1;
    }
    {
        /* The processor's rules (wc_kafka_creds), so a Secret the admin
         * client accepts also starts the processor (WEIR_KAFKA_* from the
         * same keys, op_render.c), with the same defaults. */
        const char *const *keys = wc_kafka_creds_secret_keys;
        const char *in[WC_KCRED_N];
        wc_kafka_creds_t cr;
        char why[256];
        for (int i = 0; i < WC_KCRED_N; i++)
            in[i] = str_at(d, keys[i], NULL, NULL);
        if (!in[WC_KCRED_USERNAME] && !in[WC_KCRED_PASSWORD] && !in[WC_KCRED_PROTOCOL] &&
            !in[WC_KCRED_CA_PEM])
            snprintf(why, sizeof(why),
                     "needs keys username and password, security.protocol or ca.crt "
                     "(sasl.mechanism is optional); it has none of them");
        else if (wc_kafka_creds_resolve(&cr, in, keys, why, sizeof(why)) == 0)
            why[0] = '\0';
        if (why[0] != '\0') {
            *reason = "InvalidCredentials";
            snprintf(err, errlen, "credentials Secret %s/%s: %s", ns, name, why);
            json_decref(d);
            return -1;
        }
        auth->security_protocol = wc_kafka_creds_get(&cr, "security.protocol");
        auth->sasl_mechanism = wc_kafka_creds_get(&cr, "sasl.mechanisms");
        auth->username = wc_kafka_creds_get(&cr, "sasl.username");
        auth->password = wc_kafka_creds_get(&cr, "sasl.password");
        auth->ca_pem = wc_kafka_creds_get(&cr, "ssl.ca.pem");
    }
    *keep = d;
    return 0;
}

/* ---------------------------------------------------------- ClusterStream -- */

static const char *cs_protocol(const json_t *cs)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(json_object_get(cs, "spec"), "storage"), "server"),
        "protocol"));
}

static int reconcile_cluster_stream(op_reconciler_t *r, const json_t *cs, uint64_t *after)
{
    char err[ERRLEN] = "";
    op_render_out_t out = {0};
    const char *proto = cs_protocol(cs);
    op_render_err_t re = op_render_cluster_stream(&r->render, cs, &out, err, sizeof(err));
    int rc = 0;
    if (re == OP_RENDER_ERR_NOMEM)
        return -1;
    if (re != OP_RENDER_OK)
        return set_status(r, cs, "False", op_render_err_reason(re), err, NULL);
    {
        /* A named credentials Secret must exist and be usable. */
        op_topic_auth_t auth;
        json_t *keep = NULL;
        const char *reason = NULL;
        if (load_auth(r, cs, &auth, &keep, &reason, err, sizeof(err)) != 0) {
            set_status(r, cs, "False", reason, err, out.status);
            rc = -1; /* Secrets are not watched: retry with backoff */
            goto out;
        }
        json_decref(keep);
    }
    if (proto && strcmp(proto, "weir") == 0) {
        json_t *sts = NULL;
        char msg[256];
        if (apply_children(r, out.objects,
                           sts_missing(r, out.objects) ? APPLY_STS_FIRST : APPLY_CHANGE, &sts, err,
                           sizeof(err)) != 0) {
            set_status(r, cs, "False", "ApplyFailed", err, out.status);
            json_decref(sts);
            rc = -1;
            goto out;
        }
        /* Ready only once the store pods are; the StatefulSet informer queues
         * this ClusterStream again when the store's status changes. */
        if (sts_ready(sts, msg, sizeof(msg), "store"))
            rc = set_status(r, cs, "True", "ProtocolDeployed", msg, out.status);
        else
            rc = set_status(r, cs, "False", "ClusterStreamNotReady", msg, out.status);
        if (!r->statefulsets && rc == 0)
            *after = 2000; /* no StatefulSet informer: poll */
        json_decref(sts);
    } else {
        const json_t *vars = json_object_get(
            json_object_get(
                json_object_get(json_object_get(out.status, "storageAddress"), "server"),
                "production"),
            "variables");
        const char *host = json_string_value(json_object_get(vars, "host"));
        const char *port = json_string_value(json_object_get(vars, "port"));
        int p = port ? atoi(port) : 0;
        if (!host || p <= 0) {
            rc = set_status(r, cs, "False", "InvalidSpec", "the URL has no host:port", NULL);
            goto out;
        }
        if (op_topic_probe_tcp(host, p, r->probe_timeout_ms ? r->probe_timeout_ms : 2000, err,
                               sizeof(err)) != 0) {
            set_status(r, cs, "False", "ClusterStreamNotReady", err, out.status);
            rc = -1;
            goto out;
        }
        rc = set_status(r, cs, "True", "ProtocolDeployed", "broker reachable", out.status);
        /* Bring-your-own brokers can go away: check again now and then. */
        *after = 60000;
    }
out:
    op_render_out_dispose(&out);
    return rc;
}

/* ----------------------------------------------------------------- Stream -- */

static bool has_finalizer(const json_t *obj)
{
    const json_t *f;
    size_t i;
    json_array_foreach (json_object_get(json_object_get(obj, "metadata"), "finalizers"), i, f) {
        if (json_string_value(f) && strcmp(json_string_value(f), OP_STREAM_FINALIZER) == 0)
            return true;
    }
    return false;
}

/* Adds or removes the finalizer with a JSON patch guarded by a test of the
 * current list, so a concurrent change is refused instead of overwritten. */
static int set_finalizer(op_reconciler_t *r, const json_t *obj, bool present)
{
    char path[512], err[ERRLEN];
    const json_t *cur = json_object_get(json_object_get(obj, "metadata"), "finalizers");
    json_t *next = json_array(), *patch;
    const json_t *f;
    size_t i;
    op_kube_err_t e;
    json_array_foreach (cur, i, f) {
        if (!json_string_value(f) || strcmp(json_string_value(f), OP_STREAM_FINALIZER) != 0)
            json_array_append(next, (json_t *)f);
    }
    if (present)
        json_array_append_new(next, json_string(OP_STREAM_FINALIZER));
    if (cur)
        patch = json_pack("[{s:s, s:s, s:O}, {s:s, s:s, s:o}]", "op", "test", "path",
                          "/metadata/finalizers", "value", cur, "op", "replace", "path",
                          "/metadata/finalizers", "value", next);
    else
        patch = json_pack("[{s:s, s:s, s:o}]", "op", "add", "path", "/metadata/finalizers", "value",
                          next);
    if (!patch || obj_path(path, sizeof(path), obj, NULL) < 0) {
        json_decref(patch);
        return -1;
    }
    e = op_kube_patch(KUBE(r), path, OP_KUBE_PATCH_JSON, patch, NULL, err, sizeof(err));
    json_decref(patch);
    if (e == OP_KUBE_OK || e == OP_KUBE_ERR_NOT_FOUND)
        return 0;
    wc_log(WC_LOG_WARN, "reconcile", "finalizer update failed", "{s:s, s:s}", "object", path,
           "error", err);
    return -1;
}

/* The Stream's ClusterStream name: spec.storage.clusterStream or the
 * streaming-runtimes default <name>-cluster-stream. */
static void cluster_of(const json_t *s, char *buf, size_t len)
{
    const char *c = str_at(s, "spec", "storage", "clusterStream");
    if (c)
        snprintf(buf, len, "%s", c);
    else
        snprintf(buf, len, "%s-cluster-stream", str_at(s, "metadata", "name", NULL));
}

static int partitions_of(const json_t *s)
{
    const json_t *spec = json_object_get(s, "spec");
    json_int_t n = json_integer_value(json_object_get(spec, "partitionCount"));
    if (n > 0)
        return (int)n;
    return json_object_get(spec, "keyExpression") || json_array_size(json_object_get(spec, "keys"))
               ? 5
               : 1;
}

/* Bootstrap servers of a Kafka-protocol ClusterStream, or -1 (err set). */
static int bootstrap_of(op_reconciler_t *r, const json_t *cs, char *buf, size_t len, char *err,
                        size_t errlen)
{
    json_t *addr = NULL;
    const char *b;
    op_render_err_t re = op_render_cluster_address(&r->render, cs, &addr, err, errlen);
    if (re != OP_RENDER_OK)
        return -1;
    b = str_at(addr, "variables", "brokers", NULL);
    if (!b)
        b = str_at(addr, "url", NULL, NULL);
    snprintf(buf, len, "%s", b ? b : "");
    json_decref(addr);
    if (!*buf) {
        snprintf(err, errlen, "the ClusterStream has no address");
        return -1;
    }
    return 0;
}

/* Delete, when the Stream's attributes.reclaimPolicy says so, else the
 * ClusterStream's storage.reclaimPolicy; Retain by default. */
static bool reclaim_delete(const json_t *s, const json_t *cs)
{
    const char *p = str_at(s, "spec", "attributes", "reclaimPolicy");
    if (!p && cs)
        p = str_at(cs, "spec", "storage", "reclaimPolicy");
    return p && strcmp(p, "Delete") == 0;
}

static int finalize_stream(op_reconciler_t *r, const json_t *s, const json_t *cs)
{
    char boot[2048], err[ERRLEN];
    op_topic_auth_t auth;
    json_t *keep = NULL;
    const char *reason = NULL;
    const char *topic = str_at(s, "spec", "name", NULL);
    const char *proto = cs ? cs_protocol(cs) : NULL;
    if (!has_finalizer(s))
        return 0;
    if (reclaim_delete(s, cs) && proto && strcmp(proto, "rabbitmq") != 0 && topic) {
        int tmo = r->topic_timeout_ms ? r->topic_timeout_ms : 5000;
        if (bootstrap_of(r, cs, boot, sizeof(boot), err, sizeof(err)) != 0 ||
            load_auth(r, cs, &auth, &keep, &reason, err, sizeof(err)) != 0 ||
            op_topic_delete(boot, &auth, topic, tmo, err, sizeof(err)) != 0) {
            json_decref(keep);
            wc_log(WC_LOG_WARN, "reconcile", "topic deletion failed", "{s:s, s:s}", "topic", topic,
                   "error", err);
            event(r, s, "Warning", "TopicDeleteFailed", err);
            return -1;
        }
        json_decref(keep);
        wc_log(WC_LOG_INFO, "reconcile", "topic deleted", "{s:s, s:s}", "topic", topic, "bootstrap",
               boot);
        event(r, s, "Normal", "TopicDeleted", topic);
    }
    return set_finalizer(r, s, false);
}

/* Auto-provisioning: the Stream's attributes.autoProvisionClusterStream
 * ("true"/"false") wins over the operator's --auto-provision-cluster-stream. */
static bool auto_provision(const op_reconciler_t *r, const json_t *s)
{
    const char *a = str_at(s, "spec", "attributes", "autoProvisionClusterStream");
    if (a)
        return strcmp(a, "true") == 0;
    return r->auto_provision;
}

/* Creates ClusterStream `csname` (protocol weir, storage defaults) for
 * Stream `s`. Cluster-scoped, so it cannot be owned by the Stream: it is
 * labelled as the operator's and annotated with the Stream it was made for,
 * and outlives the Stream (other Streams may share it). 0 or -1. */
static int provision_cluster_stream(op_reconciler_t *r, const json_t *s, const char *csname,
                                    char *err, size_t errlen)
{
    char path[512], who[600];
    json_t *cs;
    op_kube_err_t e;
    snprintf(who, sizeof(who), "%s/%s", nz(str_at(s, "metadata", "namespace", NULL), ""),
             nz(str_at(s, "metadata", "name", NULL), ""));
    cs = json_pack("{s:s, s:s, s:{s:s, s:{s:s}, s:{s:s}}, s:{s:s, s:{s:{s:s}}}}", "apiVersion",
                   GROUP_VERSION, "kind", "ClusterStream", "metadata", "name", csname, "labels",
                   "app.kubernetes.io/managed-by", "weir-operator", "annotations",
                   OP_AUTO_PROVISIONED_FOR, who, "spec", "name", csname, "storage", "server",
                   "protocol", "weir");
    if (!cs ||
        op_kube_path(path, sizeof(path), GROUP_VERSION, NULL, "clusterstreams", NULL, NULL) < 0) {
        json_decref(cs);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    e = op_kube_create(KUBE(r), path, cs, NULL, err, errlen);
    json_decref(cs);
    if (e == OP_KUBE_ERR_CONFLICT)
        return 0; /* made meanwhile (another Stream, or a user) */
    return e == OP_KUBE_OK ? 0 : -1;
}

static int reconcile_stream(op_reconciler_t *r, const json_t *s, uint64_t *after)
{
    op_topic_auth_t auth;
    json_t *keep = NULL;
    const char *reason = NULL;
    char csname[512], boot[2048], err[ERRLEN], msg[ERRLEN + 3072];
    const char *topic = str_at(s, "spec", "name", NULL);
    const char *sproto = str_at(s, "spec", "protocol", NULL), *cproto;
    json_t *cs;
    int rc = 0, existed = 0;
    cluster_of(s, csname, sizeof(csname));
    cs = op_informer_get(r->cluster_streams, NULL, csname);
    if (str_at(s, "metadata", "deletionTimestamp", NULL)) {
        rc = finalize_stream(r, s, cs);
        goto out;
    }
    if (!has_finalizer(s) && set_finalizer(r, s, true) != 0) {
        rc = -1;
        goto out;
    }
    if (!cs) {
        if (auto_provision(r, s) && (!sproto || strcmp(sproto, "rabbitmq") != 0)) {
            if (provision_cluster_stream(r, s, csname, err, sizeof(err)) != 0) {
                snprintf(msg, sizeof(msg), "cannot auto-provision ClusterStream %s: %s", csname,
                         err);
                set_status(r, s, "False", "AutoProvisionClusterStream", msg, NULL);
                rc = -1;
                goto out;
            }
            wc_log(WC_LOG_INFO, "reconcile", "ClusterStream auto-provisioned", "{s:s, s:s}",
                   "clusterStream", csname, "stream", str_at(s, "metadata", "name", NULL));
            snprintf(msg, sizeof(msg), "ClusterStream %s (protocol weir) auto-provisioned", csname);
            rc = set_status(r, s, "False", "AutoProvisionClusterStream", msg, NULL);
            goto out; /* its informer event queues this Stream again */
        }
        snprintf(msg, sizeof(msg), "ClusterStream %s not found%s", csname,
                 sproto && strcmp(sproto, "rabbitmq") == 0 && auto_provision(r, s)
                     ? " (auto-provisioning makes weir ClusterStreams only)"
                     : "");
        rc = set_status(r, s, "False", "NoClusterStreamFound", msg, NULL);
        goto out;
    }
    cproto = cs_protocol(cs);
    if (!sproto || !cproto ||
        !(strcmp(sproto, cproto) == 0 ||
          (strcmp(sproto, "kafka") == 0 && strcmp(cproto, "weir") == 0))) {
        snprintf(msg, sizeof(msg), "Stream protocol %s, ClusterStream %s protocol %s",
                 sproto ? sproto : "?", csname, cproto ? cproto : "?");
        rc = set_status(r, s, "False", "ProtocolMismatch", msg, NULL);
        goto out;
    }
    if (!is_ready(cs, err, sizeof(err))) {
        /* The ClusterStream's own events queue this Stream again. */
        snprintf(msg, sizeof(msg), "ClusterStream %s is not ready (%s)", csname, err);
        rc = set_status(r, s, "False", "ClusterStreamNotReady", msg, NULL);
        goto out;
    }
    if (strcmp(cproto, "rabbitmq") == 0) {
        rc = set_status(r, s, "True", "StreamDeployed", "exchanges are declared by their clients",
                        NULL);
        goto out;
    }
    if (load_auth(r, cs, &auth, &keep, &reason, err, sizeof(err)) != 0) {
        set_status(r, s, "False", reason, err, NULL);
        rc = -1; /* Secrets are not watched: retry with backoff */
        goto out;
    }
    if (bootstrap_of(r, cs, boot, sizeof(boot), err, sizeof(err)) != 0 ||
        op_topic_create(boot, &auth, topic, partitions_of(s),
                        r->topic_timeout_ms ? r->topic_timeout_ms : 5000, &existed, err,
                        sizeof(err)) != 0) {
        snprintf(msg, sizeof(msg), "topic %s: %s", topic ? topic : "?", err);
        set_status(r, s, "False", "ClusterStreamNotReady", msg, NULL);
        rc = -1;
        goto out;
    }
    if (!existed)
        event(r, s, "Normal", "TopicCreated", topic);
    snprintf(msg, sizeof(msg), "topic %s on %s", topic, boot);
    rc = set_status(r, s, "True", "StreamDeployed", msg, NULL);
out:
    (void)after;
    json_decref(keep);
    json_decref(cs);
    return rc;
}

/* -------------------------------------------------------------- Processor -- */

/* What was last applied for a Processor: r->applied maps its key to the
 * string "HASH GENERATION SECONDS" (hash of the rendered children,
 * generation of the StatefulSet the apply returned, monotonic seconds; one
 * string is ~208 B of heap, a [s, I, I] array ~400 B). A reconcile whose rendering hashes the same,
 * whose StatefulSet (from the informer) still has that generation, and whose
 * last apply is younger than APPLY_REFRESH_S skips the three applies and
 * reads readiness from the cache: a readiness flip or a Stream event then
 * costs one status write instead of four requests. An edit of the
 * StatefulSet changes its generation; the other children are re-applied at
 * least every APPLY_REFRESH_S (shorter than the 5 min resync). */
#define APPLY_REFRESH_S 240

/* A created workload's follow-up (Services, status) runs on its
 * StatefulSet's ADDED event; this poll is the fallback, when no event comes
 * (an apply that found the StatefulSet already there). */
#define PENDING_POLL_MS 1000
static pthread_mutex_t applied_mu = PTHREAD_MUTEX_INITIALIZER;

static json_int_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (json_int_t)ts.tv_sec;
}

/* The cached StatefulSet when the last apply for `key` still holds, else NULL. */
static json_t *applied_current(op_reconciler_t *r, const char *key, const char *hash,
                               const json_t *objects)
{
    const char *e;
    char h[17];
    json_t *sts;
    long long gen = 0, at = 0;
    bool same;
    if (!r->applied || !r->statefulsets)
        return NULL;
    pthread_mutex_lock(&applied_mu);
    e = json_string_value(json_object_get(r->applied, key));
    same = e && sscanf(e, "%16s %lld %lld", h, &gen, &at) == 3 && strcmp(h, hash) == 0 &&
           mono_s() - at < APPLY_REFRESH_S;
    pthread_mutex_unlock(&applied_mu);
    if (!same)
        return NULL;
    sts = cached_sts(r, objects);
    if (sts && (long long)generation(sts) != gen) {
        json_decref(sts);
        sts = NULL;
    }
    return sts;
}

/* Records what was applied for `key` (hash NULL: forget it). */
static void applied_remember(op_reconciler_t *r, const char *key, const char *hash,
                             const json_t *sts)
{
    if (!r->applied)
        return;
    pthread_mutex_lock(&applied_mu);
    if (hash && sts)
        json_object_set_new(
            r->applied, key,
            json_sprintf("%s %lld %lld", hash, (long long)generation(sts), (long long)mono_s()));
    else
        json_object_del(r->applied, key);
    pthread_mutex_unlock(&applied_mu);
}

/* What the applied record of `key` says, besides applied_current. */
typedef enum {
    APPLIED_NONE,    /* no apply made or tried since the Processor appeared */
    APPLIED_SOME,    /* one was (an earlier apply may have created children
                        the cache has not seen yet) */
    APPLIED_PENDING, /* render `hash` created the workload; its Services and
                        status are still to do */
} applied_t;

static applied_t applied_state(op_reconciler_t *r, const char *key, const char *hash)
{
    const char *e;
    applied_t st;
    if (!r->applied)
        return APPLIED_NONE;
    pthread_mutex_lock(&applied_mu);
    e = json_string_value(json_object_get(r->applied, key));
    st = !e                                                             ? APPLIED_NONE
         : e[0] == '+' && strncmp(e + 1, hash, 16) == 0 && e[17] == ' ' ? APPLIED_PENDING
                                                                        : APPLIED_SOME;
    pthread_mutex_unlock(&applied_mu);
    return st;
}

/* Records a pending create of render `hash` ("+HASH"), or with hash NULL a
 * failed apply ("-": the next one applies everything again, as a change).
 * applied_current matches neither. */
static void applied_mark(op_reconciler_t *r, const char *key, const char *hash)
{
    if (!r->applied)
        return;
    pthread_mutex_lock(&applied_mu);
    json_object_set_new(r->applied, key,
                        hash ? json_sprintf("+%s 0 0", hash) : json_string("- 0 0"));
    pthread_mutex_unlock(&applied_mu);
}

/* 0 when every input and output Stream of `p` is Ready, else -1 with the
 * first one that is not in `err`. */
static int streams_ready(op_reconciler_t *r, const json_t *p, char *err, size_t errlen)
{
    static const char *const fields[] = {"inputs", "outputs"};
    const char *ns = str_at(p, "metadata", "namespace", NULL);
    for (size_t f = 0; f < 2; f++) {
        const json_t *e;
        size_t i;
        json_array_foreach (json_object_get(json_object_get(p, "spec"), fields[f]), i, e) {
            const char *name = str_at(e, "name", NULL, NULL);
            json_t *st = name ? op_informer_get(r->streams, ns, name) : NULL;
            char why[600];
            bool ok = st && is_ready(st, why, sizeof(why));
            if (!st)
                snprintf(why, sizeof(why), "not found");
            json_decref(st);
            if (!ok) {
                snprintf(err, errlen, "%s Stream %s is not ready (%s)", f == 0 ? "input" : "output",
                         name ? name : "?", why);
                return -1;
            }
        }
    }
    return 0;
}

static int reconcile_processor(op_reconciler_t *r, const char *key, const json_t *p,
                               uint64_t *after)
{
    char err[ERRLEN] = "", msg[256], hash[17] = "";
    const char *ns = str_at(p, "metadata", "namespace", NULL);
    op_render_out_t out = {0};
    json_t *deps, *sts = NULL;
    op_render_err_t re;
    int rc = 0;
    if (str_at(p, "metadata", "deletionTimestamp", NULL))
        return 0; /* children go with their owner (garbage collector) */
    deps = json_pack("{s:o, s:o}", "streams", op_informer_list(r->streams, ns), "clusterStreams",
                     op_informer_list(r->cluster_streams, NULL));
    if (!deps)
        return -1;
    re = op_render_processor(&r->render, p, deps, &out, err, sizeof(err));
    json_decref(deps);
    if (re == OP_RENDER_ERR_NOMEM)
        return -1;
    if (re == OP_RENDER_ERR_STREAM_NOT_FOUND)
        return set_status(r, p, "False", "ProcessorMissingStream", err, NULL);
    if (re != OP_RENDER_OK)
        return set_status(r, p, "False", op_render_err_reason(re), err, NULL);
    if (streams_ready(r, p, err, sizeof(err)) != 0) {
        /* The Stream's events queue this Processor again. */
        rc = set_status(r, p, "False", "ProcessorStreamNotReady", err, NULL);
        goto out;
    }
    if (op_render_hash(out.objects, hash) != 0)
        hash[0] = '\0';
    sts = hash[0] ? applied_current(r, key, hash, out.objects) : NULL;
    if (!sts) {
        /* A create is split in two (see "Apply order" in operator.md): the
         * workload now, its Services and status in a low-priority follow-up
         * (the StatefulSet's ADDED event, or the poll queued below). */
        bool split = hash[0] && r->queue && r->applied && r->statefulsets;
        applied_t st = split ? applied_state(r, key, hash) : APPLIED_SOME;
        bool pending = st == APPLIED_PENDING;
        bool create = st == APPLIED_NONE && sts_missing(r, out.objects);
        int mode = APPLY_CHANGE;
        if (pending) {
            sts = cached_sts(r, out.objects);
            if (sts)
                mode = APPLY_ONLY_SERVICES; /* else not seen yet: apply all */
        } else if (create) {
            mode = APPLY_STS_FIRST | APPLY_NO_SERVICES;
        }
        if (apply_children(r, out.objects, mode, &sts, err, sizeof(err)) != 0) {
            applied_mark(r, key, NULL);
            set_status(r, p, "False", "ApplyFailed", err, NULL);
            rc = -1;
            goto out;
        }
        if (create) {
            applied_mark(r, key, hash);
            op_queue_add_after_low(r->queue, key, PENDING_POLL_MS);
            goto out;
        }
        applied_remember(r, key, hash[0] ? hash : NULL, sts);
    }
    if (sts_ready(sts, msg, sizeof(msg), "processor")) {
        rc = set_status(r, p, "True", "ProcessorDeployed", msg, NULL);
    } else {
        /* The StatefulSet informer queues this Processor when its status
         * changes; without it, poll. */
        rc = set_status(r, p, "False", "ProcessorNotReady", msg, NULL);
        if (!r->statefulsets)
            *after = 2000;
    }
out:
    json_decref(sts);
    op_render_out_dispose(&out);
    return rc;
}

/* ------------------------------------------------------------------ keys -- */

int op_reconcile_key(op_reconciler_t *r, const char *key, uint64_t *requeue_after_ms)
{
    char buf[OP_QUEUE_KEY_MAX], *ns, *name;
    op_informer_t *inf;
    json_t *obj;
    int rc;
    *requeue_after_ms = 0;
    snprintf(buf, sizeof(buf), "%s", key);
    ns = strchr(buf, '/');
    name = ns ? strchr(ns + 1, '/') : NULL;
    if (!name)
        return 0;
    *ns++ = '\0';
    *name++ = '\0';
    if (strcmp(buf, "clusterstreams") == 0)
        inf = r->cluster_streams;
    else if (strcmp(buf, "streams") == 0)
        inf = r->streams;
    else if (strcmp(buf, "processors") == 0)
        inf = r->processors;
    else
        return 0;
    obj = op_informer_get(inf, ns, name);
    if (!obj) {
        if (inf == r->processors)
            applied_remember(r, key, NULL, NULL);
        return 0; /* deleted: owner references clean up the children */
    }
    atomic_fetch_add(&r->reconciles, 1);
    wc_log(WC_LOG_DEBUG, "reconcile", "reconciling", "{s:s}", "key", key);
    if (inf == r->cluster_streams)
        rc = reconcile_cluster_stream(r, obj, requeue_after_ms);
    else if (inf == r->streams)
        rc = reconcile_stream(r, obj, requeue_after_ms);
    else
        rc = reconcile_processor(r, key, obj, requeue_after_ms);
    if (rc != 0)
        atomic_fetch_add(&r->failures, 1);
    json_decref(obj);
    return rc;
}

/* Queues `obj`: at normal priority for its own change, low for work that
 * follows from something else (op_queue_add_low), so a burst of dependents
 * or a resync never delays a user's new or edited object. */
static void enqueue_obj(op_reconciler_t *r, const char *plural, const json_t *obj, bool low)
{
    char key[OP_QUEUE_KEY_MAX];
    const char *ns = str_at(obj, "metadata", "namespace", NULL);
    int rc;
    snprintf(key, sizeof(key), "%s/%s/%s", plural, ns ? ns : "",
             str_at(obj, "metadata", "name", NULL));
    rc = low ? op_queue_add_low(r->queue, key) : op_queue_add(r->queue, key);
    if (rc != 0 && op_queue_len(r->queue) > 0)
        wc_log(WC_LOG_WARN, "reconcile", "cannot queue", "{s:s}", "key", key);
}

static void enqueue_list(op_reconciler_t *r, op_informer_t *inf, const char *ns)
{
    json_t *all = op_informer_list(inf, ns), *o;
    size_t i;
    json_array_foreach (all, i, o)
        enqueue_obj(r, op_informer_plural(inf), o, true);
    json_decref(all);
}

/* An owned StatefulSet changed: queue its controller owner. */
static void enqueue_owner(op_reconciler_t *r, const json_t *sts)
{
    const json_t *o;
    size_t i;
    json_array_foreach (json_object_get(json_object_get(sts, "metadata"), "ownerReferences"), i,
                        o) {
        const char *kind = str_at(o, "kind", NULL, NULL), *name = str_at(o, "name", NULL, NULL);
        char key[OP_QUEUE_KEY_MAX];
        if (!json_is_true(json_object_get(o, "controller")) || !kind || !name)
            continue;
        if (strcmp(kind, "Processor") == 0)
            snprintf(key, sizeof(key), "processors/%s/%s",
                     nz(str_at(sts, "metadata", "namespace", NULL), ""), name);
        else if (strcmp(kind, "ClusterStream") == 0)
            snprintf(key, sizeof(key), "clusterstreams//%s", name);
        else
            continue;
        op_queue_add_low(r->queue, key);
    }
}

/* A MODIFIED event with the same generation as the cached object (a status
 * write, most often our own, or a metadata change) needs no reconcile of the
 * object itself (controller-runtime's GenerationChangedPredicate). A
 * deletion request (deletionTimestamp appears) always passes. */
static bool status_only(op_kube_event_t type, const json_t *old, const json_t *obj)
{
    if (type != OP_KUBE_EV_MODIFIED || !old)
        return false;
    if (!str_at(old, "metadata", "deletionTimestamp", NULL) !=
        !str_at(obj, "metadata", "deletionTimestamp", NULL))
        return false;
    return generation(old) == generation(obj);
}

/* Whether a StatefulSet event can change what its owner's reconcile
 * decides: it appeared or went, its readiness flipped, or its spec changed
 * (someone edited it: the owner repairs it). kcm's many status updates on
 * the way to ready (replicas, currentReplicas, ...) do not pass. */
static bool sts_relevant(op_kube_event_t type, const json_t *old, const json_t *obj)
{
    char m[128];
    if (type != OP_KUBE_EV_MODIFIED || !old)
        return true;
    return generation(old) != generation(obj) ||
           sts_ready(old, m, sizeof(m), "") != sts_ready(obj, m, sizeof(m), "");
}

void op_reconcile_on_event(op_informer_t *inf, op_kube_event_t type, const json_t *old,
                           const json_t *obj, void *arg)
{
    op_reconciler_t *r = arg;
    if (type == OP_KUBE_EV_BOOKMARK)
        return;
    if (inf == r->statefulsets) {
        if (sts_relevant(type, old, obj))
            enqueue_owner(r, obj);
        return;
    }
    if (!status_only(type, old, obj))
        enqueue_obj(r, op_informer_plural(inf), obj, false);
    /* Dependents: a ClusterStream's Streams and every Processor; a Stream's
     * Processors (those of its namespace). */
    if (inf == r->cluster_streams) {
        enqueue_list(r, r->streams, NULL);
        enqueue_list(r, r->processors, NULL);
    } else if (inf == r->streams) {
        enqueue_list(r, r->processors, str_at(obj, "metadata", "namespace", NULL));
    }
}

void op_reconcile_trim(json_t *obj)
{
    json_t *md = json_object_get(obj, "metadata");
    json_object_del(md, "managedFields");
    /* Writes are server-side applies and guarded JSON patches: neither
     * needs the resourceVersion of the cached copy. */
    json_object_del(md, "resourceVersion");
    json_object_del(md, "creationTimestamp");
    json_object_del(json_object_get(md, "annotations"),
                    "kubectl.kubernetes.io/last-applied-configuration");
}

void op_reconcile_trim_statefulset(json_t *obj)
{
    const json_t *md = json_object_get(obj, "metadata"), *o;
    const json_t *st = json_object_get(obj, "status");
    json_t *nmd = json_object(), *owners = json_array(), *nst = json_object(),
           *nspec = json_object();
    static const char *const md_keep[] = {"name", "namespace", "generation"};
    static const char *const st_keep[] = {"readyReplicas", "observedGeneration"};
    size_t i;
    if (!nmd || !owners || !nst || !nspec)
        goto out;
    for (i = 0; i < sizeof(md_keep) / sizeof(md_keep[0]); i++)
        if (json_object_get(md, md_keep[i]))
            json_object_set(nmd, md_keep[i], json_object_get(md, md_keep[i]));
    json_array_foreach (json_object_get(md, "ownerReferences"), i, o) {
        if (json_is_true(json_object_get(o, "controller")))
            json_array_append_new(owners,
                                  json_pack("{s:O, s:O, s:b}", "kind", json_object_get(o, "kind"),
                                            "name", json_object_get(o, "name"), "controller", 1));
    }
    json_object_set(nmd, "ownerReferences", owners);
    for (i = 0; i < sizeof(st_keep) / sizeof(st_keep[0]); i++)
        if (json_object_get(st, st_keep[i]))
            json_object_set(nst, st_keep[i], json_object_get(st, st_keep[i]));
    if (json_object_get(json_object_get(obj, "spec"), "replicas"))
        json_object_set(nspec, "replicas",
                        json_object_get(json_object_get(obj, "spec"), "replicas"));
    json_object_clear(obj);
    json_object_set(obj, "metadata", nmd);
    json_object_set(obj, "spec", nspec);
    json_object_set(obj, "status", nst);
out:
    json_decref(nmd);
    json_decref(owners);
    json_decref(nst);
    json_decref(nspec);
}

void op_reconcile_enqueue_all(op_reconciler_t *r)
{
    enqueue_list(r, r->cluster_streams, NULL);
    enqueue_list(r, r->streams, NULL);
    enqueue_list(r, r->processors, NULL);
}
