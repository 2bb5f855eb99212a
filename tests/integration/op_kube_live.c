/* Description: op_kube against a real kube-apiserver (run by tests/integration/op_kube_client.sh;
 * skips without WEIR_KUBECONFIG). */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "op_kube.h"

/* Shared by the steps, which run in order against one namespace. */
static struct {
    op_kube_t *k; /* admin (client certificate from the harness kubeconfig) */
    char ns[64];
    char cm_path[256];
    char err[1024];
} T;

#define CHECK(call)                                                                                \
    do {                                                                                           \
        op_kube_err_t rc_ = (call);                                                                \
        if (rc_ != OP_KUBE_OK)                                                                     \
            fail_msg("%s: %s: %s", #call, op_kube_err_str(rc_), T.err);                            \
    } while (0)

#define EXPECT(want, call)                                                                         \
    do {                                                                                           \
        op_kube_err_t rc_ = (call);                                                                \
        if (rc_ != (want))                                                                         \
            fail_msg("%s: want %s, got %s: %s", #call, op_kube_err_str(want),                      \
                     op_kube_err_str(rc_), T.err);                                                 \
    } while (0)

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static op_kube_t *admin_client(void)
{
    op_kube_config_t cfg;
    op_kube_t *k;

    CHECK(op_kube_config_load_kubeconfig(getenv("WEIR_KUBECONFIG"), NULL, &cfg, T.err,
                                         sizeof(T.err)));
    CHECK(op_kube_new(&cfg, NULL, &k, T.err, sizeof(T.err)));
    return k;
}

static json_t *get_json(const char *path)
{
    json_t *o = NULL;

    CHECK(op_kube_get(T.k, path, &o, T.err, sizeof(T.err)));
    return o;
}

static const char *jstr(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);

    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

/* ------------------------------------------------------------ requests -- */

static void test_apply_get_patch(void **state)
{
    char path[256];
    json_t *o, *out = NULL;

    /* Namespace and ConfigMap through server-side apply. */
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s", T.ns);
    o = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace", "metadata",
                  "name", T.ns);
    CHECK(op_kube_apply(T.k, path, o, NULL, T.err, sizeof(T.err)));
    json_decref(o);
    o = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind",
                  "ConfigMap", "metadata", "name", "cm1", "namespace", T.ns, "labels", "app", "okc",
                  "data", "a", "1");
    CHECK(op_kube_apply(T.k, T.cm_path, o, &out, T.err, sizeof(T.err)));
    assert_string_equal(jstr(json_object_get(out, "data"), "a", NULL), "1");
    assert_string_equal(
        jstr(json_array_get(json_object_get(json_object_get(out, "metadata"), "managedFields"), 0),
             "manager", NULL),
        "weir-operator");
    json_decref(out);
    json_decref(o);

    /* Apply again with a change: conflict-free, same manager. */
    o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                  "metadata", "name", "cm1", "namespace", T.ns, "data", "a", "2", "b", "x");
    CHECK(op_kube_apply(T.k, T.cm_path, o, NULL, T.err, sizeof(T.err)));
    out = get_json(T.cm_path);
    assert_string_equal(jstr(out, "data", "a"), "2");
    assert_string_equal(jstr(out, "data", "b"), "x");
    /* The label this manager no longer applies is removed (SSA ownership). */
    assert_null(jstr(out, "metadata", "labels"));
    json_decref(out);

    /* An unknown field fails the apply, although it skips strict decoding
     * (fieldValidation=Ignore). */
    json_object_set_new(o, "bogusField", json_integer(1));
    assert_int_not_equal(OP_KUBE_OK, op_kube_apply(T.k, T.cm_path, o, NULL, T.err, sizeof(T.err)));
    assert_non_null(strstr(T.err, "bogusField: field not declared in schema"));
    json_object_del(o, "bogusField");

    /* Creating it again: 409 AlreadyExists. */
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", T.ns);
    EXPECT(OP_KUBE_ERR_CONFLICT, op_kube_create(T.k, path, o, NULL, T.err, sizeof(T.err)));
    assert_non_null(strstr(T.err, "already exists"));
    json_decref(o);

    /* Merge patch, JSON patch, and a failing JSON patch test (422). */
    o = json_pack("{s:{s:s}}", "data", "c", "3");
    CHECK(op_kube_patch(T.k, T.cm_path, OP_KUBE_PATCH_MERGE, o, NULL, T.err, sizeof(T.err)));
    json_decref(o);
    o = json_pack("[{s:s, s:s}]", "op", "remove", "path", "/data/c");
    CHECK(op_kube_patch(T.k, T.cm_path, OP_KUBE_PATCH_JSON, o, &out, T.err, sizeof(T.err)));
    assert_null(jstr(out, "data", "c"));
    json_decref(out);
    json_decref(o);
    o = json_pack("[{s:s, s:s, s:s}]", "op", "test", "path", "/data/a", "value", "nope");
    EXPECT(OP_KUBE_ERR_INVALID,
           op_kube_patch(T.k, T.cm_path, OP_KUBE_PATCH_JSON, o, NULL, T.err, sizeof(T.err)));
    json_decref(o);
    o = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "patched", "strategic");
    CHECK(op_kube_patch(T.k, T.cm_path, OP_KUBE_PATCH_STRATEGIC, o, NULL, T.err, sizeof(T.err)));
    json_decref(o);

    /* Optimistic concurrency: an update with a stale resourceVersion. */
    out = get_json(T.cm_path);
    json_object_set_new(json_object_get(out, "metadata"), "resourceVersion", json_string("1"));
    EXPECT(OP_KUBE_ERR_CONFLICT, op_kube_update(T.k, T.cm_path, out, NULL, T.err, sizeof(T.err)));
    json_decref(out);

    /* Not found carries the Status message; an invalid name is 422. */
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/missing", T.ns);
    EXPECT(OP_KUBE_ERR_NOT_FOUND, op_kube_get(T.k, path, &out, T.err, sizeof(T.err)));
    assert_string_equal(T.err, "HTTP 404 NotFound: configmaps \"missing\" not found");
    assert_null(out);
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", T.ns);
    o = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata",
                  "name", "Bad_Name");
    EXPECT(OP_KUBE_ERR_INVALID, op_kube_create(T.k, path, o, NULL, T.err, sizeof(T.err)));
    assert_non_null(strstr(T.err, "HTTP 422 Invalid"));
    json_decref(o);
}

static void test_list_pagination(void **state)
{
    char path[256], rv[OP_KUBE_RV_MAX] = "";
    json_t *page = NULL, *items = NULL;
    const char *cont;

    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", T.ns);
    for (int i = 0; i < 7; i++) {
        char name[32];
        json_t *o;

        snprintf(name, sizeof(name), "page-%d", i);
        o = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind", "ConfigMap",
                      "metadata", "name", name, "labels", "page", "yes");
        CHECK(op_kube_create(T.k, path, o, NULL, T.err, sizeof(T.err)));
        json_decref(o);
    }
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps?labelSelector=page%%3Dyes",
             T.ns);
    CHECK(op_kube_list_page(T.k, path, 3, NULL, &page, T.err, sizeof(T.err)));
    assert_int_equal(json_array_size(json_object_get(page, "items")), 3);
    cont = jstr(page, "metadata", "continue");
    assert_non_null(cont);
    json_decref(page);
    /* A forged continue token is refused (400), an expired one would be 410. */
    EXPECT(OP_KUBE_ERR_INVALID,
           op_kube_list_page(T.k, path, 3, "bogus", &page, T.err, sizeof(T.err)));
    CHECK(op_kube_list_all(T.k, path, 3, &items, rv, sizeof(rv), T.err, sizeof(T.err)));
    assert_int_equal(json_array_size(items), 7);
    assert_true(rv[0] != '\0');
    json_decref(items);
    CHECK(op_kube_list_all(T.k, path, 0, &items, NULL, 0, T.err, sizeof(T.err)));
    assert_int_equal(json_array_size(items), 7);
    json_decref(items);
}

static void test_crd_status(void **state)
{
    const char *crd_path =
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.okc.weir.test";
    char path[256];
    json_t *crd, *o, *out = NULL;
    op_kube_err_t rc = OP_KUBE_ERR_NOT_FOUND;
    json_error_t jerr;

    crd = json_loads(
        "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
        "\"metadata\":{\"name\":\"widgets.okc.weir.test\"},\"spec\":{\"group\":\"okc.weir.test\","
        "\"scope\":\"Namespaced\",\"names\":{\"plural\":\"widgets\",\"singular\":\"widget\","
        "\"kind\":\"Widget\"},\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
        "\"subresources\":{\"status\":{}},\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\","
        "\"properties\":{\"spec\":{\"type\":\"object\",\"properties\":{\"size\":{\"type\":"
        "\"integer\",\"minimum\":1}}},\"status\":{\"type\":\"object\",\"properties\":{\"phase\":"
        "{\"type\":\"string\"},\"observedGeneration\":{\"type\":\"integer\"}}}}}}}]}}",
        0, &jerr);
    assert_non_null(crd);
    CHECK(op_kube_apply(T.k, crd_path, crd, NULL, T.err, sizeof(T.err)));
    json_decref(crd);

    /* Discovery lags Established by a moment: retry the first apply. */
    snprintf(path, sizeof(path), "/apis/okc.weir.test/v1/namespaces/%s/widgets/w1", T.ns);
    o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:i}}", "apiVersion", "okc.weir.test/v1", "kind",
                  "Widget", "metadata", "name", "w1", "namespace", T.ns, "spec", "size", 3);
    for (int i = 0; i < 100 && rc != OP_KUBE_OK; i++) {
        rc = op_kube_apply(T.k, path, o, NULL, T.err, sizeof(T.err));
        if (rc != OP_KUBE_OK)
            sleep_ms(200);
    }
    CHECK(rc);
    json_decref(o);

    /* Status through the subresource: apply, then merge. */
    o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i}}", "apiVersion", "okc.weir.test/v1",
                  "kind", "Widget", "metadata", "name", "w1", "namespace", T.ns, "status", "phase",
                  "Ready", "observedGeneration", 1);
    CHECK(op_kube_patch_status(T.k, path, OP_KUBE_PATCH_APPLY, o, &out, T.err, sizeof(T.err)));
    assert_string_equal(jstr(out, "status", "phase"), "Ready");
    json_decref(out);
    json_decref(o);
    out = get_json(path);
    assert_string_equal(jstr(out, "status", "phase"), "Ready");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "spec"), "size")), 3);
    json_decref(out);
    o = json_pack("{s:{s:s}}", "status", "phase", "Degraded");
    CHECK(op_kube_patch_status(T.k, path, OP_KUBE_PATCH_MERGE, o, NULL, T.err, sizeof(T.err)));
    json_decref(o);
    out = get_json(path);
    assert_string_equal(jstr(out, "status", "phase"), "Degraded");
    json_decref(out);
    /* The main resource ignores status; the schema is enforced (422). */
    o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:i}}", "apiVersion", "okc.weir.test/v1", "kind",
                  "Widget", "metadata", "name", "w1", "namespace", T.ns, "spec", "size", 0);
    EXPECT(OP_KUBE_ERR_INVALID, op_kube_apply(T.k, path, o, NULL, T.err, sizeof(T.err)));
    assert_non_null(strstr(T.err, "spec.size"));
    json_decref(o);
}

/* --------------------------------------------------------------- watch -- */

typedef struct {
    char log[1024];
    int bookmarks;
    int added;
} wlog_t;

/* Drives the changes from inside the watch (requests on the same client):
 * ADDED → merge patch, MODIFIED → delete, DELETED → stop. */
static int drive(op_kube_event_t type, json_t *obj, void *arg)
{
    wlog_t *w = arg;
    const char *name = jstr(obj, "metadata", "name");
    char path[256];
    size_t n = strlen(w->log);
    json_t *patch;

    if (type == OP_KUBE_EV_BOOKMARK) {
        w->bookmarks++;
        return 0;
    }
    if (!name || strcmp(name, "watched") != 0)
        return 0;
    snprintf(w->log + n, sizeof(w->log) - n, "%s%s", n ? " " : "", op_kube_event_str(type));
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/watched", T.ns);
    if (type == OP_KUBE_EV_ADDED) {
        patch = json_pack("{s:{s:s}}", "data", "v", "2");
        CHECK(op_kube_patch(T.k, path, OP_KUBE_PATCH_MERGE, patch, NULL, T.err, sizeof(T.err)));
        json_decref(patch);
    } else if (type == OP_KUBE_EV_MODIFIED) {
        CHECK(op_kube_delete(T.k, path, "Background", T.err, sizeof(T.err)));
    }
    return type == OP_KUBE_EV_DELETED;
}

static void test_watch_events(void **state)
{
    char path[256], rv[OP_KUBE_RV_MAX];
    op_kube_watch_opts_t opts = {.path = path, .timeout_s = 30};
    wlog_t w = {0};
    json_t *list = NULL, *o;

    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", T.ns);
    CHECK(op_kube_list_page(T.k, path, 1, NULL, &list, T.err, sizeof(T.err)));
    snprintf(rv, sizeof(rv), "%s", jstr(list, "metadata", "resourceVersion"));
    json_decref(list);
    o = json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                  "metadata", "name", "watched", "data", "v", "1");
    CHECK(op_kube_create(T.k, path, o, NULL, T.err, sizeof(T.err)));
    json_decref(o);
    CHECK(op_kube_watch_run(T.k, &opts, rv, sizeof(rv), drive, &w, T.err, sizeof(T.err)));
    assert_string_equal(w.log, "ADDED MODIFIED DELETED");
    assert_true(atol(rv) > 0);
}

static int count_bookmarks(op_kube_event_t type, json_t *obj, void *arg)
{
    wlog_t *w = arg;

    w->bookmarks += type == OP_KUBE_EV_BOOKMARK;
    return 0;
}

/* Changes a ConfigMap in another namespace while our watch runs, so the
 * watch cache moves past the watcher's version without an event for it. */
static void *poke_elsewhere(void *arg)
{
    op_kube_t *k = admin_client();
    const char *name = arg;
    char path[256];
    json_t *o;

    sleep_ms(700);
    o = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata",
                  "name", name);
    snprintf(path, sizeof(path), "/api/v1/namespaces/default/configmaps/%s", name);
    op_kube_apply(k, path, o, NULL, NULL, 0);
    json_decref(o);
    op_kube_free(k);
    return NULL;
}

static int until_initial_end(op_kube_event_t type, json_t *obj, void *arg)
{
    wlog_t *w = arg;
    const char *end =
        jstr(json_object_get(obj, "metadata"), "annotations", "k8s.io/initial-events-end");

    w->bookmarks += type == OP_KUBE_EV_BOOKMARK;
    if (type == OP_KUBE_EV_ADDED)
        w->added++;
    return type == OP_KUBE_EV_BOOKMARK && end && strcmp(end, "true") == 0;
}

static void test_watch_bookmarks(void **state)
{
    char path[256], rv[OP_KUBE_RV_MAX], start[OP_KUBE_RV_MAX], opath[256];
    op_kube_watch_opts_t opts = {.path = path, .timeout_s = 4};
    wlog_t w = {0};
    json_t *list = NULL;
    pthread_t th;

    /* Periodic bookmark: sent shortly before timeoutSeconds, carrying the
     * cache's newer version; then the server ends the stream cleanly. */
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", T.ns);
    CHECK(op_kube_list_page(T.k, path, 1, NULL, &list, T.err, sizeof(T.err)));
    snprintf(rv, sizeof(rv), "%s", jstr(list, "metadata", "resourceVersion"));
    snprintf(start, sizeof(start), "%s", rv);
    json_decref(list);
    assert_int_equal(pthread_create(&th, NULL, poke_elsewhere, T.ns), 0);
    CHECK(op_kube_watch_run(T.k, &opts, rv, sizeof(rv), count_bookmarks, &w, T.err, sizeof(T.err)));
    pthread_join(th, NULL);
    assert_true(w.bookmarks >= 1);
    assert_true(atol(rv) > atol(start));
    snprintf(opath, sizeof(opath), "/api/v1/namespaces/default/configmaps/%s", T.ns);
    CHECK(op_kube_delete(T.k, opath, NULL, T.err, sizeof(T.err)));

    /* Streaming list: every object as ADDED, then the initial-events-end
     * bookmark. */
    memset(&w, 0, sizeof(w));
    rv[0] = '\0';
    opts.timeout_s = 30;
    opts.send_initial_events = true;
    CHECK(
        op_kube_watch_run(T.k, &opts, rv, sizeof(rv), until_initial_end, &w, T.err, sizeof(T.err)));
    assert_int_equal(w.bookmarks, 1);
    assert_true(w.added >= 8); /* cm1 and page-0..6 */
    assert_true(atol(rv) > 0);
}

/* Compacts etcd at its current revision (plain HTTP gateway, loopback). */
static void etcd_compact(const char *etcd)
{
    char url[256], body[512] = "", req[128];
    CURL *c = curl_easy_init();
    FILE *mem = fmemopen(body, sizeof(body) - 1, "w");
    const char *p;

    assert_non_null(c);
    assert_non_null(mem);
    snprintf(url, sizeof(url), "%s/v3/kv/range", etcd);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"key\":\"AA==\"}");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    fclose(mem);
    p = strstr(body, "\"revision\":\"");
    assert_non_null(p);
    snprintf(req, sizeof(req), "{\"revision\":\"%ld\",\"physical\":true}", atol(p + 12));
    snprintf(url, sizeof(url), "%s/v3/kv/compaction", etcd);
    mem = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    fclose(mem);
    curl_easy_cleanup(c);
}

static void test_watch_gone(void **state)
{
    const char *etcd = getenv("WEIR_ETCD_URL");
    char path[256], rv[OP_KUBE_RV_MAX] = "2";
    op_kube_watch_opts_t opts = {.path = path, .timeout_s = 10};
    wlog_t w = {0};

    if (!etcd)
        skip();
    etcd_compact(etcd);
    /* Events have no watch cache, so the watch reaches etcd, which no
     * longer has revision 2: an ERROR event with code 410. */
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", T.ns);
    EXPECT(OP_KUBE_ERR_GONE, op_kube_watch_run(T.k, &opts, rv, sizeof(rv), count_bookmarks, &w,
                                               T.err, sizeof(T.err)));
    assert_non_null(strstr(T.err, "too old"));
    assert_string_equal(rv, "2");
}

/* --------------------------------------------------------------- lease -- */

static void test_lease(void **state)
{
    op_kube_t *b = admin_client();
    bool leader = false;
    char path[256];
    json_t *l;
    struct timespec t0, t1;
    int refusals = 0;

    snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases/okc", T.ns);
    CHECK(op_kube_lease_try(T.k, T.ns, "okc", "A", 3, &leader, T.err, sizeof(T.err)));
    assert_true(leader); /* created */
    CHECK(op_kube_lease_try(T.k, T.ns, "okc", "A", 3, &leader, T.err, sizeof(T.err)));
    assert_true(leader); /* renewed */
    l = get_json(path);
    assert_string_equal(jstr(l, "spec", "holderIdentity"), "A");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(l, "spec"), "leaseTransitions")), 0);
    json_decref(l);

    /* B is refused while A renews ... */
    for (int i = 0; i < 4; i++) {
        CHECK(op_kube_lease_try(b, T.ns, "okc", "B", 3, &leader, T.err, sizeof(T.err)));
        assert_false(leader);
        assert_non_null(strstr(T.err, "held by A"));
        CHECK(op_kube_lease_try(T.k, T.ns, "okc", "A", 3, &leader, T.err, sizeof(T.err)));
        assert_true(leader);
        sleep_ms(1000);
    }
    /* ... and until the lease expires once A stops. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        CHECK(op_kube_lease_try(b, T.ns, "okc", "B", 3, &leader, T.err, sizeof(T.err)));
        if (leader)
            break;
        refusals++;
        sleep_ms(250);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(refusals > 0);
    assert_true(t1.tv_sec - t0.tv_sec >= 2); /* ~3 s after A's last renewal */
    assert_true(t1.tv_sec - t0.tv_sec <= 6);
    l = get_json(path);
    assert_string_equal(jstr(l, "spec", "holderIdentity"), "B");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(l, "spec"), "leaseTransitions")), 1);
    json_decref(l);
    CHECK(op_kube_lease_try(T.k, T.ns, "okc", "A", 3, &leader, T.err, sizeof(T.err)));
    assert_false(leader);

    /* B gives it up: A takes over at once. */
    CHECK(op_kube_lease_release(b, T.ns, "okc", "B", T.err, sizeof(T.err)));
    CHECK(op_kube_lease_try(T.k, T.ns, "okc", "A", 3, &leader, T.err, sizeof(T.err)));
    assert_true(leader);
    l = get_json(path);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(l, "spec"), "leaseTransitions")), 2);
    json_decref(l);
    op_kube_free(b);
}

/* -------------------------------------------------------------- events -- */

static void test_event(void **state)
{
    char path[256], wpath[256];
    json_t *w, *list = NULL, *ev;
    bool found = false;
    size_t i;

    snprintf(wpath, sizeof(wpath), "/apis/okc.weir.test/v1/namespaces/%s/widgets/w1", T.ns);
    w = get_json(wpath);
    CHECK(op_kube_event_create(T.k, w, "Warning", "ReconcileFailed", "it went wrong: \"x\"", NULL,
                               T.err, sizeof(T.err)));
    EXPECT(OP_KUBE_ERR_INVALID,
           op_kube_event_create(T.k, w, "Fatal", "R", "m", NULL, T.err, sizeof(T.err)));
    json_decref(w);
    snprintf(path, sizeof(path),
             "/api/v1/namespaces/%s/events?fieldSelector=involvedObject.name%%3Dw1", T.ns);
    CHECK(op_kube_list_page(T.k, path, 0, NULL, &list, T.err, sizeof(T.err)));
    json_array_foreach (json_object_get(list, "items"), i, ev) {
        if (strcmp(jstr(ev, "reason", NULL), "ReconcileFailed") == 0) {
            found = true;
            assert_string_equal(jstr(ev, "type", NULL), "Warning");
            assert_string_equal(jstr(ev, "message", NULL), "it went wrong: \"x\"");
            assert_string_equal(jstr(ev, "involvedObject", "kind"), "Widget");
            assert_string_equal(jstr(ev, "source", "component"), "weir-operator");
        }
    }
    assert_true(found);
    json_decref(list);
}

/* ---------------------------------------------------------------- auth -- */

static void write_file(const char *path, const char *text)
{
    char tmp[PATH_MAX + 8];
    FILE *f;

    /* write + rename, as kubelet swaps projected tokens atomically */
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static void copy_file(const char *from, const char *to)
{
    char buf[65536];
    FILE *f = fopen(from, "r");
    size_t n;

    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    write_file(to, buf);
}

static void test_service_account_token(void **state)
{
    const char *kdir = getenv("WEIR_K8S_DIR");
    char dir[] = "/tmp/weir-okc-sa.XXXXXX", path[PATH_MAX], ca[PATH_MAX], cmpath[256];
    char *token;
    json_t *o, *out = NULL;
    op_kube_config_t cfg;
    op_kube_t *sa;
    op_kube_err_t rc = OP_KUBE_ERR_AUTH;
    const char *server_port;

    if (!kdir)
        skip();
    /* A ServiceAccount and a token from the TokenRequest API. */
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts", T.ns);
    o = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ServiceAccount", "metadata",
                  "name", "okc-sa");
    CHECK(op_kube_create(T.k, path, o, NULL, T.err, sizeof(T.err)));
    json_decref(o);
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/okc-sa/token", T.ns);
    o = json_pack("{s:s, s:s, s:{s:i}}", "apiVersion", "authentication.k8s.io/v1", "kind",
                  "TokenRequest", "spec", "expirationSeconds", 600);
    CHECK(op_kube_create(T.k, path, o, &out, T.err, sizeof(T.err)));
    json_decref(o);
    token = strdup(jstr(out, "status", "token"));
    json_decref(out);

    /* In-cluster configuration from a mounted-style directory. */
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/token", dir);
    write_file(path, token);
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    snprintf(cmpath, sizeof(cmpath), "%s/pki/ca.crt", kdir);
    copy_file(cmpath, ca);
    snprintf(cmpath, sizeof(cmpath), "%s/namespace", dir);
    write_file(cmpath, T.ns);
    {
        op_kube_config_t admin;

        CHECK(op_kube_config_load_kubeconfig(getenv("WEIR_KUBECONFIG"), NULL, &admin, T.err,
                                             sizeof(T.err)));
        server_port = strrchr(admin.server, ':');
        assert_non_null(server_port);
        setenv("KUBERNETES_SERVICE_PORT", server_port + 1, 1);
        op_kube_config_dispose(&admin);
    }
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    CHECK(op_kube_config_in_cluster(dir, &cfg, T.err, sizeof(T.err)));
    CHECK(op_kube_new(&cfg, NULL, &sa, T.err, sizeof(T.err)));
    assert_string_equal(op_kube_namespace(sa), T.ns);

    /* No role yet: RBAC says 403, mapped to auth. */
    snprintf(cmpath, sizeof(cmpath), "/api/v1/namespaces/%s/configmaps", T.ns);
    EXPECT(OP_KUBE_ERR_AUTH, op_kube_get(sa, cmpath, &out, T.err, sizeof(T.err)));
    assert_non_null(strstr(T.err, "HTTP 403 Forbidden"));
    assert_non_null(strstr(T.err, "system:serviceaccount:"));

    /* A Role and RoleBinding, applied by the admin, let it list. */
    snprintf(path, sizeof(path), "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/roles/okc",
             T.ns);
    o = json_pack("{s:s, s:s, s:{s:s}, s:[{s:[s], s:[s], s:[s, s]}]}", "apiVersion",
                  "rbac.authorization.k8s.io/v1", "kind", "Role", "metadata", "name", "okc",
                  "rules", "apiGroups", "", "resources", "configmaps", "verbs", "get", "list");
    CHECK(op_kube_apply(T.k, path, o, NULL, T.err, sizeof(T.err)));
    json_decref(o);
    snprintf(path, sizeof(path),
             "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings/okc", T.ns);
    o = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}]}", "apiVersion",
                  "rbac.authorization.k8s.io/v1", "kind", "RoleBinding", "metadata", "name", "okc",
                  "roleRef", "apiGroup", "rbac.authorization.k8s.io", "kind", "Role", "name", "okc",
                  "subjects", "kind", "ServiceAccount", "name", "okc-sa", "namespace", T.ns);
    CHECK(op_kube_apply(T.k, path, o, NULL, T.err, sizeof(T.err)));
    json_decref(o);
    for (int i = 0; i < 50 && rc != OP_KUBE_OK; i++) {
        rc = op_kube_list_page(sa, cmpath, 0, NULL, &out, T.err, sizeof(T.err));
        if (rc != OP_KUBE_OK)
            sleep_ms(200);
    }
    CHECK(rc);
    assert_true(json_array_size(json_object_get(out, "items")) >= 1);
    json_decref(out);
    /* Still no delete. */
    snprintf(path, sizeof(path), "%s/cm1", cmpath);
    EXPECT(OP_KUBE_ERR_AUTH, op_kube_delete(sa, path, NULL, T.err, sizeof(T.err)));

    /* Rotation: a bad token is 401 (auth, after one re-read), the good one
     * written back is picked up without a new client. */
    snprintf(path, sizeof(path), "%s/token", dir);
    write_file(path, "not-a-token");
    EXPECT(OP_KUBE_ERR_AUTH, op_kube_get(sa, cmpath, &out, T.err, sizeof(T.err)));
    assert_non_null(strstr(T.err, "HTTP 401"));
    write_file(path, token);
    CHECK(op_kube_list_page(sa, cmpath, 0, NULL, &out, T.err, sizeof(T.err)));
    json_decref(out);
    op_kube_free(sa);

    /* TLS is verified: the right server with a CA that did not sign it. */
    snprintf(path, sizeof(path), "%s/pki/front-proxy-ca.crt", kdir);
    copy_file(path, ca);
    CHECK(op_kube_config_in_cluster(dir, &cfg, T.err, sizeof(T.err)));
    CHECK(op_kube_new(&cfg, NULL, &sa, T.err, sizeof(T.err)));
    EXPECT(OP_KUBE_ERR_AUTH, op_kube_get(sa, cmpath, &out, T.err, sizeof(T.err)));
    op_kube_free(sa);

    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    for (const char *f = "token\0ca.crt\0namespace\0"; *f; f += strlen(f) + 1) {
        snprintf(path, sizeof(path), "%s/%s", dir, f);
        unlink(path);
    }
    rmdir(dir);
    memset(token, 0, strlen(token));
    free(token);
}

static void test_delete_and_cleanup(void **state)
{
    char path[256];

    CHECK(op_kube_delete(T.k, T.cm_path, "Foreground", T.err, sizeof(T.err)));
    /* Foreground deletion may leave the object briefly with a finalizer. */
    for (int i = 0; i < 50; i++) {
        json_t *o = NULL;

        if (op_kube_get(T.k, T.cm_path, &o, T.err, sizeof(T.err)) == OP_KUBE_ERR_NOT_FOUND)
            break;
        json_decref(o);
        sleep_ms(100);
    }
    EXPECT(OP_KUBE_ERR_NOT_FOUND, op_kube_delete(T.k, T.cm_path, NULL, T.err, sizeof(T.err)));
    EXPECT(OP_KUBE_ERR_INVALID, op_kube_delete(T.k, T.cm_path, "Sometimes", T.err, sizeof(T.err)));
    CHECK(op_kube_delete(
        T.k, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.okc.weir.test",
        "Background", T.err, sizeof(T.err)));
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s", T.ns);
    CHECK(op_kube_delete(T.k, path, "Background", T.err, sizeof(T.err)));
}

static int setup(void **state)
{
    T.k = admin_client();
    snprintf(T.ns, sizeof(T.ns), "okc-%ld", (long)getpid());
    snprintf(T.cm_path, sizeof(T.cm_path), "/api/v1/namespaces/%s/configmaps/cm1", T.ns);
    return 0;
}

static int teardown(void **state)
{
    op_kube_free(T.k);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_get_patch),
        cmocka_unit_test(test_list_pagination),
        cmocka_unit_test(test_crd_status),
        cmocka_unit_test(test_watch_events),
        cmocka_unit_test(test_watch_bookmarks),
        cmocka_unit_test(test_watch_gone),
        cmocka_unit_test(test_lease),
        cmocka_unit_test(test_event),
        cmocka_unit_test(test_service_account_token),
        cmocka_unit_test(test_delete_and_cleanup),
    };

    if (!getenv("WEIR_KUBECONFIG")) {
        fprintf(stderr, "test_op_kube_live: WEIR_KUBECONFIG is not set; run "
                        "tests/integration/op_kube_client.sh\n");
        return 77;
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
