/* SPDX-License-Identifier: Apache-2.0 */
/* Description: op_queue (dedup, processing/dirty, delayed adds, per-key
 * exponential backoff, FIFO order, limits, shutdown) and the reconcilers'
 * pure parts: the Ready condition builder (lastTransitionTime kept while the
 * status holds), the informer transforms, informer events to queue keys
 * (StatefulSet → owner, status-only writes skipped) and the credentials
 * Secret of a ClusterStream. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "op_queue.h"
#include "op_reconcile.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_dedup_and_fifo(void **state)
{
    (void)state;
    op_queue_t *q = op_queue_new(10, 1000, 16);
    char k[OP_QUEUE_KEY_MAX];
    assert_non_null(q);
    assert_int_equal(op_queue_add(q, "a"), 0);
    assert_int_equal(op_queue_add(q, "b"), 0);
    assert_int_equal(op_queue_add(q, "a"), 0);
    assert_int_equal(op_queue_len(q), 2);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "a");
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "b");
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 0);
    op_queue_done(q, "a");
    op_queue_done(q, "b");
    assert_int_equal(op_queue_len(q), 0);
    op_queue_free(q);
}

static void test_processing_is_exclusive(void **state)
{
    (void)state;
    op_queue_t *q = op_queue_new(10, 1000, 16);
    char k[OP_QUEUE_KEY_MAX];
    assert_int_equal(op_queue_add(q, "x"), 0);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    /* Added while processing: not handed out again until done. */
    assert_int_equal(op_queue_add(q, "x"), 0);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 0);
    op_queue_done(q, "x");
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "x");
    op_queue_done(q, "x");
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 0);
    op_queue_free(q);
}

static void test_add_after(void **state)
{
    (void)state;
    op_queue_t *q = op_queue_new(10, 1000, 16);
    char k[OP_QUEUE_KEY_MAX];
    uint64_t t0 = mono_ms();
    assert_int_equal(op_queue_add_after(q, "later", 80), 0);
    assert_int_equal(op_queue_len(q), 1);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 0);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 2000, NULL), 1);
    assert_true(mono_ms() - t0 >= 80);
    assert_string_equal(k, "later");
    op_queue_done(q, "later");
    /* An immediate add beats a pending delayed one. */
    assert_int_equal(op_queue_add_after(q, "d", 10000), 0);
    assert_int_equal(op_queue_add(q, "d"), 0);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    op_queue_done(q, "d");
    op_queue_free(q);
}

/* Low-priority keys go after every ready normal one, a normal add raises a
 * pending low key, a low add never lowers a normal one, a low key that waited
 * the low age goes by arrival again, and get reports how long a key waited. */
static void test_priority(void **state)
{
    (void)state;
    op_queue_t *q = op_queue_new(10, 1000, 100);
    char k[OP_QUEUE_KEY_MAX];
    uint64_t waited = 0;
    op_queue_set_low_age_ms(q, 60000); /* no aging until the aging part */
    assert_int_equal(op_queue_add_low(q, "resync-1"), 0);
    assert_int_equal(op_queue_add_low(q, "resync-2"), 0);
    assert_int_equal(op_queue_add(q, "new"), 0);
    assert_int_equal(op_queue_add_low(q, "new"), 0);  /* stays normal */
    assert_int_equal(op_queue_add(q, "resync-2"), 0); /* raised */
    assert_int_equal(op_queue_len(q), 3);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "resync-2"); /* normal, and earlier than "new" */
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, &waited), 1);
    assert_string_equal(k, "new");
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "resync-1");
    op_queue_done(q, "resync-2");
    op_queue_done(q, "new");
    op_queue_done(q, "resync-1");

    /* Dirty while processing keeps the priority it was added with. */
    assert_int_equal(op_queue_add(q, "x"), 0);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_int_equal(op_queue_add_low(q, "x"), 0);
    op_queue_done(q, "x");
    assert_int_equal(op_queue_add(q, "y"), 0);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "y");
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "x");
    op_queue_done(q, "x");
    op_queue_done(q, "y");

    /* At the low limit a ready low key waits; a normal one still goes. */
    op_queue_set_low_limit(q, 1);
    assert_int_equal(op_queue_add_low(q, "l1"), 0);
    assert_int_equal(op_queue_add_low(q, "l2"), 0);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "l1");
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 0); /* l2 held back */
    assert_int_equal(op_queue_add(q, "n1"), 0);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "n1");
    op_queue_done(q, "l1");
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "l2");
    op_queue_done(q, "l2");
    op_queue_done(q, "n1");
    op_queue_set_low_limit(q, 0);

    /* The limit holds for aged low keys too: an aged low key at the limit
     * waits, a normal one goes. */
    op_queue_set_low_limit(q, 1);
    op_queue_set_low_age_ms(q, 1);
    assert_int_equal(op_queue_add_low(q, "a1"), 0);
    assert_int_equal(op_queue_add_low(q, "a2"), 0);
    usleep(5 * 1000);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "a1");
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 0); /* a2 aged, held back */
    assert_int_equal(op_queue_add(q, "n2"), 0);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "n2");
    op_queue_done(q, "n2");
    op_queue_done(q, "a1");
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "a2");
    op_queue_done(q, "a2");
    op_queue_set_low_limit(q, 0);

    /* Aged: a low key that waited 50 ms goes before a later normal one. */
    op_queue_set_low_age_ms(q, 50);
    assert_int_equal(op_queue_add_low(q, "old"), 0);
    usleep(80 * 1000);
    assert_int_equal(op_queue_add(q, "young"), 0);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, &waited), 1);
    assert_string_equal(k, "old");
    assert_true(waited >= 80u * 1000000u);
    assert_true(waited < UINT64_C(10000000000));
    op_queue_free(q);
}

static void test_backoff(void **state)
{
    (void)state;
    op_queue_t *q = op_queue_new(5, 40, 16);
    char k[OP_QUEUE_KEY_MAX];
    uint64_t want[] = {5, 10, 20, 40, 40};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(op_queue_next_delay_ms(q, "f"), want[i]);
        assert_int_equal(op_queue_add_rate_limited(q, "f"), 0);
        assert_int_equal(op_queue_failures(q, "f"), i + 1);
        assert_int_equal(op_queue_get(q, k, sizeof(k), 1000, NULL), 1);
        op_queue_done(q, "f");
    }
    /* Other keys have their own count. */
    assert_int_equal(op_queue_next_delay_ms(q, "g"), 5);
    op_queue_forget(q, "f");
    assert_int_equal(op_queue_failures(q, "f"), 0);
    assert_int_equal(op_queue_next_delay_ms(q, "f"), 5);
    assert_int_equal(op_queue_len(q), 0);
    op_queue_free(q);
}

/* Gets the next ready key (no wait), checks it is `want` handed out at
 * priority `low`, and ends its processing. */
static void take(op_queue_t *q, const char *want, bool low)
{
    char k[OP_QUEUE_KEY_MAX];
    bool got_low = !low;
    assert_int_equal(op_queue_get_ex(q, k, sizeof(k), 0, NULL, &got_low), 1);
    assert_string_equal(k, want);
    assert_int_equal(got_low, low);
    op_queue_done(q, want);
}

/* Delayed adds keep their priority: a failed low reconcile retries low, a
 * failed normal one normal, a low poll stays low, and a normal delayed add
 * merged into a low one makes it normal. */
static void test_delayed_priority(void **state)
{
    (void)state;
    op_queue_t *q = op_queue_new(20, 20, 16);
    char k[OP_QUEUE_KEY_MAX];
    op_queue_set_low_age_ms(q, 60000);

    /* A low key fails while processing: its retry is low. */
    assert_int_equal(op_queue_add_low(q, "low"), 0);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_string_equal(k, "low");
    assert_int_equal(op_queue_add_rate_limited(q, "low"), 0);
    op_queue_done(q, "low");
    /* A normal key fails too, after it. */
    assert_int_equal(op_queue_add(q, "norm"), 0);
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    assert_int_equal(op_queue_add_rate_limited(q, "norm"), 0);
    op_queue_done(q, "norm");
    usleep(60 * 1000); /* both retries are due */
    /* The normal retry, due later, still goes first. */
    take(q, "norm", false);
    take(q, "low", true);
    op_queue_forget(q, "low");
    op_queue_forget(q, "norm");

    /* A low poll is handed out after a normal key queued after it was due
     * (taking "x" makes the due poll ready before "user" arrives). */
    assert_int_equal(op_queue_add_after_low(q, "poll", 10), 0);
    usleep(30 * 1000);
    assert_int_equal(op_queue_add(q, "x"), 0);
    take(q, "x", false);
    assert_int_equal(op_queue_add(q, "user"), 0);
    take(q, "user", false);
    take(q, "poll", true);

    /* A normal delayed add merged into a low one raises it. */
    assert_int_equal(op_queue_add_after_low(q, "m", 10), 0);
    assert_int_equal(op_queue_add_after(q, "m", 50), 0);
    usleep(30 * 1000);
    assert_int_equal(op_queue_add(q, "x"), 0);
    take(q, "x", false);
    assert_int_equal(op_queue_add(q, "other"), 0);
    take(q, "m", false); /* normal, and first by arrival */
    take(q, "other", false);
    assert_int_equal(op_queue_len(q), 0);
    op_queue_free(q);
}

static void test_limits(void **state)
{
    (void)state;
    op_queue_t *q = op_queue_new(5, 40, 2);
    char big[OP_QUEUE_KEY_MAX + 1], k[OP_QUEUE_KEY_MAX];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(op_queue_add(q, big), -EINVAL);
    assert_int_equal(op_queue_add(q, ""), -EINVAL);
    assert_int_equal(op_queue_add(q, "1"), 0);
    assert_int_equal(op_queue_add(q, "2"), 0);
    assert_int_equal(op_queue_add(q, "3"), -ENOSPC);
    /* Finished keys free their slot. */
    assert_int_equal(op_queue_get(q, k, sizeof(k), 0, NULL), 1);
    op_queue_done(q, k);
    assert_int_equal(op_queue_add(q, "3"), 0);
    op_queue_free(q);
}

static void *shutdown_later(void *arg)
{
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    op_queue_shutdown(arg);
    return NULL;
}

static void test_shutdown_wakes(void **state)
{
    (void)state;
    op_queue_t *q = op_queue_new(5, 40, 4);
    char k[OP_QUEUE_KEY_MAX];
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, shutdown_later, q), 0);
    assert_int_equal(op_queue_get(q, k, sizeof(k), -1, NULL), -ESHUTDOWN);
    pthread_join(t, NULL);
    assert_int_equal(op_queue_add(q, "x"), -ESHUTDOWN);
    op_queue_free(q);
}

static void test_ready_condition(void **state)
{
    (void)state;
    json_t *obj =
        json_pack("{s:{s:i}, s:{s:[{s:s, s:s, s:s, s:s, s:s}]}}", "metadata", "generation", 3,
                  "status", "conditions", "type", "Ready", "status", "False", "reason", "X",
                  "message", "", "lastTransitionTime", "2026-01-01T00:00:00Z");
    json_t *c = op_reconcile_ready_condition(obj, "False", "Y", "m", "2026-02-02T00:00:00Z");
    assert_string_equal(json_string_value(json_object_get(c, "lastTransitionTime")),
                        "2026-01-01T00:00:00Z");
    assert_int_equal(json_integer_value(json_object_get(c, "observedGeneration")), 3);
    assert_string_equal(json_string_value(json_object_get(c, "reason")), "Y");
    json_decref(c);
    c = op_reconcile_ready_condition(obj, "True", "Ok", "m", "2026-02-02T00:00:00Z");
    assert_string_equal(json_string_value(json_object_get(c, "lastTransitionTime")),
                        "2026-02-02T00:00:00Z");
    json_decref(c);
    json_decref(obj);
}

/* The informer transforms keep what the controllers read and drop the rest. */
static void test_trim(void **state)
{
    (void)state;
    json_t *sts = json_loads(
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"metadata\":{\"name\":\"s\","
        "\"namespace\":\"n\",\"generation\":4,\"labels\":{\"a\":\"b\"},\"managedFields\":[{}],"
        "\"ownerReferences\":[{\"apiVersion\":\"v\",\"kind\":\"Processor\",\"name\":\"p\","
        "\"uid\":\"u\",\"controller\":true},{\"kind\":\"Other\",\"name\":\"o\"}]},"
        "\"spec\":{\"replicas\":2,\"template\":{\"spec\":{}}},\"status\":{\"readyReplicas\":1,"
        "\"replicas\":2,\"currentRevision\":\"r\"}}",
        0, NULL);
    json_t *cr =
        json_loads("{\"metadata\":{\"name\":\"x\",\"managedFields\":[{}],\"resourceVersion\":"
                   "\"7\",\"creationTimestamp\":\"t\",\"annotations\":"
                   "{\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\",\"k\":\"v\"}},"
                   "\"spec\":{\"a\":1}}",
                   0, NULL);
    json_t *want_sts = json_loads(
        "{\"metadata\":{\"name\":\"s\","
        "\"namespace\":\"n\",\"generation\":4,"
        "\"ownerReferences\":[{\"kind\":\"Processor\",\"name\":\"p\",\"controller\":true}]},"
        "\"spec\":{\"replicas\":2},\"status\":{\"readyReplicas\":1}}",
        0, NULL);
    json_t *want_cr = json_loads(
        "{\"metadata\":{\"name\":\"x\",\"annotations\":{\"k\":\"v\"}},\"spec\":{\"a\":1}}", 0,
        NULL);
    assert_non_null(sts);
    assert_non_null(cr);
    op_reconcile_trim_statefulset(sts);
    op_reconcile_trim(cr);
    assert_true(json_equal(sts, want_sts));
    assert_true(json_equal(cr, want_cr));
    json_decref(sts);
    json_decref(cr);
    json_decref(want_sts);
    json_decref(want_cr);
}

static op_kube_err_t no_client(op_kube_t **out, char *err, size_t errlen, void *arg)
{
    (void)out;
    (void)arg;
    snprintf(err, errlen, "unused");
    return OP_KUBE_ERR_INVALID;
}

/* Informer events become queue keys: a StatefulSet its controller owner's;
 * a status-only change of a reconciled object nothing (its dependents
 * still); a spec change or a deletion the object's own key. */
static void test_event_keys(void **state)
{
    (void)state;
    op_informer_opts_t so = {.api_version = "apps/v1", .plural = "statefulsets"};
    op_informer_opts_t po = {.api_version = "streaming.weir.dev/v1alpha1", .plural = "processors"};
    op_informer_opts_t to = {.api_version = "streaming.weir.dev/v1alpha1", .plural = "streams"};
    op_informer_opts_t co = {.api_version = "streaming.weir.dev/v1alpha1",
                             .plural = "clusterstreams",
                             .cluster_scoped = true};
    op_reconciler_t r = {0};
    char key[OP_QUEUE_KEY_MAX];
    json_t *o;

    r.queue = op_queue_new(1, 10, 100);
    r.statefulsets = op_informer_new(&so, no_client, NULL, NULL, NULL);
    r.processors = op_informer_new(&po, no_client, NULL, NULL, NULL);
    r.streams = op_informer_new(&to, no_client, NULL, NULL, NULL);
    r.cluster_streams = op_informer_new(&co, no_client, NULL, NULL, NULL);
    assert_non_null(r.queue);
    assert_non_null(r.statefulsets);

    o = json_pack("{s:{s:s, s:s, s:i, s:[{s:s, s:s, s:b}, {s:s, s:s, s:b}]}, s:{s:i}, s:{}}",
                  "metadata", "name", "weir-proc-p", "namespace", "demo", "generation", 1,
                  "ownerReferences", "kind", "Other", "name", "o", "controller", 0, "kind",
                  "Processor", "name", "p", "controller", 1, "spec", "replicas", 1, "status");
    op_reconcile_on_event(r.statefulsets, OP_KUBE_EV_MODIFIED, NULL, o, &r);
    /* A status update that does not make it ready: the owner is not queued. */
    {
        json_t *o2 = json_deep_copy(o);
        json_object_set_new(json_object_get(o2, "status"), "replicas", json_integer(1));
        op_reconcile_on_event(r.statefulsets, OP_KUBE_EV_MODIFIED, o, o2, &r);
        assert_int_equal(op_queue_len(r.queue), 1);
        assert_int_equal(op_queue_get(r.queue, key, sizeof(key), 0, NULL), 1);
        assert_string_equal(key, "processors/demo/p");
        op_queue_done(r.queue, key);
        /* Ready now (1/1, generation observed): queued. */
        json_object_set_new(json_object_get(o2, "status"), "readyReplicas", json_integer(1));
        json_object_set_new(json_object_get(o2, "status"), "observedGeneration", json_integer(1));
        op_reconcile_on_event(r.statefulsets, OP_KUBE_EV_MODIFIED, o, o2, &r);
        assert_int_equal(op_queue_len(r.queue), 1);
        assert_int_equal(op_queue_get(r.queue, key, sizeof(key), 0, NULL), 1);
        assert_string_equal(key, "processors/demo/p");
        op_queue_done(r.queue, key);
        json_decref(o2);
    }
    json_decref(o);
    o = json_pack("{s:{s:s, s:s, s:[{s:s, s:s, s:b}]}}", "metadata", "name", "weir-store-e",
                  "namespace", "weir-system", "ownerReferences", "kind", "ClusterStream", "name",
                  "e", "controller", 1);
    op_reconcile_on_event(r.statefulsets, OP_KUBE_EV_DELETED, o, o, &r);
    json_decref(o);
    assert_int_equal(op_queue_len(r.queue), 1);
    assert_int_equal(op_queue_get(r.queue, key, sizeof(key), 0, NULL), 1);
    assert_string_equal(key, "clusterstreams//e");
    op_queue_done(r.queue, key);

    /* A status write (same generation as cached): not queued. */
    o = json_pack("{s:{s:s, s:s, s:i}, s:{s:i}}", "metadata", "name", "p", "namespace", "demo",
                  "generation", 3, "status", "observedGeneration", 3);
    op_reconcile_on_event(r.processors, OP_KUBE_EV_MODIFIED, o, o, &r);
    assert_int_equal(op_queue_len(r.queue), 0);
    /* ... but the same object added, or first seen, is. */
    op_reconcile_on_event(r.processors, OP_KUBE_EV_ADDED, NULL, o, &r);
    assert_int_equal(op_queue_len(r.queue), 1);
    {
        json_t *o2 = json_pack("{s:{s:s, s:s, s:i}}", "metadata", "name", "q", "namespace", "demo",
                               "generation", 4);
        json_t *o1 = json_pack("{s:{s:s, s:s, s:i}}", "metadata", "name", "q", "namespace", "demo",
                               "generation", 3);
        /* A new generation is queued. */
        op_reconcile_on_event(r.processors, OP_KUBE_EV_MODIFIED, o1, o2, &r);
        assert_int_equal(op_queue_len(r.queue), 2);
        /* So is a deletion request on the same generation. */
        json_object_set_new(json_object_get(o1, "metadata"), "name", json_string("z"));
        json_object_set_new(json_object_get(o1, "metadata"), "generation", json_integer(4));
        json_object_set_new(json_object_get(o2, "metadata"), "name", json_string("z"));
        json_object_set_new(json_object_get(o2, "metadata"), "deletionTimestamp",
                            json_string("2026-01-01T00:00:00Z"));
        op_reconcile_on_event(r.processors, OP_KUBE_EV_MODIFIED, o1, o2, &r);
        assert_int_equal(op_queue_len(r.queue), 3);
        json_decref(o1);
        json_decref(o2);
    }
    json_decref(o);

    op_informer_free(r.statefulsets);
    op_informer_free(r.processors);
    op_informer_free(r.streams);
    op_informer_free(r.cluster_streams);
    op_queue_free(r.queue);
}

static void test_credentials_secret(void **state)
{
    (void)state;
    json_t *a = json_pack("{s:{s:{s:s, s:{s:s}}}}", "spec", "storage", "credentialsSecret", "c",
                          "server", "binding", "b");
    json_t *b = json_pack("{s:{s:{s:{s:s}}}}", "spec", "storage", "server", "binding", "b");
    json_t *n = json_pack("{s:{s:{}}}", "spec", "storage");
    assert_string_equal(op_render_credentials_secret(a), "c");
    assert_string_equal(op_render_credentials_secret(b), "b");
    assert_null(op_render_credentials_secret(n));
    json_decref(a);
    json_decref(b);
    json_decref(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedup_and_fifo),  cmocka_unit_test(test_processing_is_exclusive),
        cmocka_unit_test(test_add_after),       cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_priority),        cmocka_unit_test(test_delayed_priority),
        cmocka_unit_test(test_limits),          cmocka_unit_test(test_shutdown_wakes),
        cmocka_unit_test(test_ready_condition), cmocka_unit_test(test_trim),
        cmocka_unit_test(test_event_keys),      cmocka_unit_test(test_credentials_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
