/* SPDX-License-Identifier: Apache-2.0 */
/* op_informer: per-namespace list+watch threads feeding a shared cache.
 * Each thread: LIST (all pages) → replace its namespace's part of the cache →
 * WATCH from the list's resourceVersion with bookmarks, again and again from
 * the last seen version; 410 Gone or a broken stream → relist after a backoff
 * delay. The cache is a jansson object "ns/name" → object under a mutex. */
#include "op_informer.h"

#include "wc_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_NAMESPACES 64

typedef struct watcher {
    op_informer_t *inf;
    char *ns; /* NULL: all namespaces or cluster-scoped */
    pthread_t thread;
    bool started, synced;
} watcher_t;

struct op_informer {
    char *api_version, *plural, *selector;
    op_informer_transform_fn transform;
    bool cluster_scoped, compact;
    long watch_timeout_s, page_limit;
    op_informer_client_fn client_fn;
    void *client_arg;
    op_informer_handler_fn handler;
    void *handler_arg;
    pthread_mutex_t mu;
    json_t *cache; /* "ns/name" → object */
    watcher_t w[MAX_NAMESPACES];
    size_t nw;
    atomic_bool stop;
    atomic_ulong relists;
};

static void cache_key(char *buf, size_t len, const json_t *obj)
{
    const char *ns =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    snprintf(buf, len, "%s/%s", ns ? ns : "", name ? name : "");
}

op_informer_t *op_informer_new(const op_informer_opts_t *opts, op_informer_client_fn client_fn,
                               void *client_arg, op_informer_handler_fn handler, void *handler_arg)
{
    op_informer_t *inf;
    if (!opts || !opts->api_version || !opts->plural || !client_fn)
        return NULL;
    inf = calloc(1, sizeof(*inf));
    if (!inf)
        return NULL;
    inf->api_version = strdup(opts->api_version);
    inf->plural = strdup(opts->plural);
    inf->cache = json_object();
    inf->transform = opts->transform;
    inf->compact = opts->compact;
    if (opts->label_selector && *opts->label_selector) {
        inf->selector = strdup(opts->label_selector);
        if (!inf->selector)
            goto fail;
    }
    inf->cluster_scoped = opts->cluster_scoped;
    inf->watch_timeout_s = opts->watch_timeout_s > 0 ? opts->watch_timeout_s : 30;
    inf->page_limit = opts->page_limit > 0 ? opts->page_limit : 500;
    inf->client_fn = client_fn;
    inf->client_arg = client_arg;
    inf->handler = handler;
    inf->handler_arg = handler_arg;
    pthread_mutex_init(&inf->mu, NULL);
    if (!inf->api_version || !inf->plural || !inf->cache)
        goto fail;
    if (!inf->cluster_scoped && opts->namespaces && *opts->namespaces) {
        char *list = strdup(opts->namespaces), *save = NULL;
        if (!list)
            goto fail;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            if (!*t)
                continue;
            if (inf->nw == MAX_NAMESPACES) {
                free(list);
                goto fail;
            }
            inf->w[inf->nw].ns = strdup(t);
            if (!inf->w[inf->nw].ns) {
                free(list);
                goto fail;
            }
            inf->w[inf->nw++].inf = inf;
        }
        free(list);
    }
    if (inf->nw == 0)
        inf->w[inf->nw++].inf = inf;
    return inf;
fail:
    op_informer_free(inf);
    return NULL;
}

const char *op_informer_plural(const op_informer_t *inf)
{
    return inf->plural;
}

static void emit(op_informer_t *inf, op_kube_event_t type, const json_t *old, const json_t *obj)
{
    if (inf->handler)
        inf->handler(inf, type, old, obj, inf->handler_arg);
}

/* What the cache stores for `obj`: the object itself, or (compact) its
 * compact serialization as one JSON string, which takes a tenth of the
 * memory of the parsed tree. New reference, NULL on ENOMEM. */
static json_t *pack(const op_informer_t *inf, json_t *obj)
{
    char *text;
    json_t *v;
    if (!inf->compact)
        return json_incref(obj);
    text = json_dumps(obj, JSON_COMPACT);
    if (!text)
        return NULL;
    v = json_stringn_nocheck(text, strlen(text));
    free(text);
    return v;
}

/* The object a stored value stands for: a new reference (NULL for NULL). */
static json_t *unpack(const op_informer_t *inf, json_t *v)
{
    if (!v || !inf->compact)
        return json_incref(v);
    return json_loadb(json_string_value(v), json_string_length(v), 0, NULL);
}

/* Whether cache key "ns/name" is in namespace `ns` (NULL: any). */
static bool key_in_ns(const char *key, const char *ns)
{
    size_t n;
    if (!ns)
        return true;
    n = strlen(ns);
    return strncmp(key, ns, n) == 0 && key[n] == '/';
}

/* Replaces the part of the cache that belongs to `w` with `items`. */
static void replace(watcher_t *w, json_t *items)
{
    op_informer_t *inf = w->inf;
    json_t *gone = json_array(), *listed = json_object(), *olds = json_object(), *item, *v;
    const char *k;
    void *tmp;
    size_t i;
    char key[600];
    if (!gone || !listed || !olds)
        goto out;
    json_array_foreach (items, i, item) {
        if (inf->transform)
            inf->transform(item);
        cache_key(key, sizeof(key), item);
        json_object_set_new(listed, key, pack(inf, item));
    }
    pthread_mutex_lock(&inf->mu);
    json_object_foreach_safe (inf->cache, tmp, k, v) {
        if (!key_in_ns(k, w->ns))
            continue;
        if (!json_object_get(listed, k)) {
            json_array_append(gone, v);
            json_object_del(inf->cache, k);
        }
    }
    json_object_foreach (listed, k, item) {
        v = json_object_get(inf->cache, k);
        if (v)
            json_object_set(olds, k, v);
    }
    json_object_update(inf->cache, listed);
    pthread_mutex_unlock(&inf->mu);
    json_array_foreach (gone, i, v) {
        json_t *o = unpack(inf, v);
        if (o)
            emit(inf, OP_KUBE_EV_DELETED, o, o);
        json_decref(o);
    }
    json_array_foreach (items, i, item) {
        json_t *o;
        cache_key(key, sizeof(key), item);
        o = unpack(inf, json_object_get(olds, key));
        emit(inf, OP_KUBE_EV_MODIFIED, o, item);
        json_decref(o);
    }
out:
    json_decref(gone);
    json_decref(listed);
    json_decref(olds);
}

static int on_event(op_kube_event_t type, json_t *obj, void *arg)
{
    watcher_t *w = arg;
    op_informer_t *inf = w->inf;
    char key[600];
    json_t *stored = NULL, *prev, *old;
    if (type == OP_KUBE_EV_BOOKMARK)
        return atomic_load(&inf->stop) ? 1 : 0;
    if (inf->transform)
        inf->transform(obj);
    cache_key(key, sizeof(key), obj);
    if (type != OP_KUBE_EV_DELETED)
        stored = pack(inf, obj);
    pthread_mutex_lock(&inf->mu);
    prev = json_incref(json_object_get(inf->cache, key));
    if (type == OP_KUBE_EV_DELETED)
        json_object_del(inf->cache, key);
    else if (stored)
        json_object_set(inf->cache, key, stored);
    pthread_mutex_unlock(&inf->mu);
    old = unpack(inf, prev);
    emit(inf, type, old, obj);
    json_decref(old);
    json_decref(prev);
    json_decref(stored);
    return atomic_load(&inf->stop) ? 1 : 0;
}

static void sleep_ms(op_informer_t *inf, uint64_t ms)
{
    /* Sleep in slices so that a stop request is noticed quickly. */
    while (ms > 0 && !atomic_load(&inf->stop)) {
        uint64_t s = ms > 100 ? 100 : ms;
        struct timespec ts = {(time_t)(s / 1000u), (long)(s % 1000u) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= s;
    }
}

static void *watch_main(void *arg)
{
    watcher_t *w = arg;
    op_informer_t *inf = w->inf;
    op_kube_t *k = NULL;
    op_kube_backoff_t bo;
    char path[512], rv[OP_KUBE_RV_MAX] = "", err[512];
    bool need_list = true;
    op_kube_backoff_init(&bo, 500, 30000, 0);
    if (op_kube_path(path, sizeof(path), inf->api_version, inf->cluster_scoped ? NULL : w->ns,
                     inf->plural, NULL, NULL) < 0) {
        wc_log(WC_LOG_ERROR, "informer", "bad resource path", "{s:s}", "resource", inf->plural);
        return NULL;
    }
    if (inf->selector) {
        /* Selector characters ("=", ",", "!") are legal in a query value;
         * spaces are not, and a selector never needs them. */
        size_t n = strlen(path);
        if (strchr(inf->selector, ' ') || snprintf(path + n, sizeof(path) - n, "?labelSelector=%s",
                                                   inf->selector) >= (int)(sizeof(path) - n)) {
            wc_log(WC_LOG_ERROR, "informer", "bad label selector", "{s:s}", "selector",
                   inf->selector);
            return NULL;
        }
    }
    while (!atomic_load(&inf->stop)) {
        op_kube_err_t e;
        if (!k && inf->client_fn(&k, err, sizeof(err), inf->client_arg) != OP_KUBE_OK) {
            wc_log(WC_LOG_WARN, "informer", "cannot create a client", "{s:s, s:s}", "resource",
                   inf->plural, "error", err);
            k = NULL;
            sleep_ms(inf, op_kube_backoff_next(&bo));
            continue;
        }
        if (need_list) {
            json_t *items = NULL;
            e = op_kube_list_all(k, path, inf->page_limit, &items, rv, sizeof(rv), err,
                                 sizeof(err));
            if (e != OP_KUBE_OK) {
                wc_log(WC_LOG_WARN, "informer", "list failed", "{s:s, s:s, s:s}", "resource",
                       inf->plural, "code", op_kube_err_str(e), "error", err);
                sleep_ms(inf, op_kube_backoff_next(&bo));
                continue;
            }
            atomic_fetch_add(&inf->relists, 1);
            /* Until the next relist this client only watches: its list
             * connection would sit idle. */
            op_kube_close_idle(k);
            replace(w, items);
            json_decref(items);
            pthread_mutex_lock(&inf->mu);
            w->synced = true;
            pthread_mutex_unlock(&inf->mu);
            need_list = false;
        }
        op_kube_watch_opts_t wo = {.path = path, .timeout_s = inf->watch_timeout_s};
        e = op_kube_watch_run(k, &wo, rv, sizeof(rv), on_event, w, err, sizeof(err));
        if (e == OP_KUBE_OK) {
            op_kube_backoff_reset(&bo);
            continue; /* the server ended the stream: watch again from rv */
        }
        if (e != OP_KUBE_ERR_GONE)
            wc_log(WC_LOG_WARN, "informer", "watch failed, relisting", "{s:s, s:s, s:s}",
                   "resource", inf->plural, "code", op_kube_err_str(e), "error", err);
        else
            wc_log(WC_LOG_INFO, "informer", "resource version expired (410 Gone), relisting",
                   "{s:s, s:s}", "resource", inf->plural, "resourceVersion", rv);
        need_list = true;
        rv[0] = '\0';
        if (e != OP_KUBE_ERR_GONE)
            sleep_ms(inf, op_kube_backoff_next(&bo));
    }
    op_kube_free(k);
    return NULL;
}

int op_informer_start(op_informer_t *inf)
{
    pthread_attr_t attr;
    /* A watch thread runs libcurl and the line parser: 256 KiB of stack
     * instead of the default 8 MiB keeps the mappings small. */
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (size_t i = 0; i < inf->nw; i++) {
        int rc = pthread_create(&inf->w[i].thread, &attr, watch_main, &inf->w[i]);
        if (rc != 0) {
            pthread_attr_destroy(&attr);
            op_informer_stop(inf);
            return -rc;
        }
        inf->w[i].started = true;
    }
    pthread_attr_destroy(&attr);
    return 0;
}

void op_informer_stop(op_informer_t *inf)
{
    atomic_store(&inf->stop, true);
    for (size_t i = 0; i < inf->nw; i++) {
        if (inf->w[i].started) {
            pthread_join(inf->w[i].thread, NULL);
            inf->w[i].started = false;
        }
    }
}

void op_informer_free(op_informer_t *inf)
{
    if (!inf)
        return;
    op_informer_stop(inf);
    for (size_t i = 0; i < inf->nw; i++)
        free(inf->w[i].ns);
    json_decref(inf->cache);
    free(inf->api_version);
    free(inf->plural);
    free(inf->selector);
    pthread_mutex_destroy(&inf->mu);
    free(inf);
}

bool op_informer_synced(op_informer_t *inf)
{
    bool ok = true;
    pthread_mutex_lock(&inf->mu);
    for (size_t i = 0; i < inf->nw; i++)
        ok = ok && inf->w[i].synced;
    pthread_mutex_unlock(&inf->mu);
    return ok;
}

json_t *op_informer_get(op_informer_t *inf, const char *ns, const char *name)
{
    char key[600];
    json_t *v, *o;
    snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name ? name : "");
    pthread_mutex_lock(&inf->mu);
    v = json_incref(json_object_get(inf->cache, key));
    pthread_mutex_unlock(&inf->mu);
    o = unpack(inf, v);
    json_decref(v);
    return o;
}

json_t *op_informer_list(op_informer_t *inf, const char *ns)
{
    json_t *arr = json_array(), *vals = json_array(), *o, *v;
    const char *k;
    size_t i;
    if (!arr || !vals) {
        json_decref(arr);
        json_decref(vals);
        return NULL;
    }
    pthread_mutex_lock(&inf->mu);
    json_object_foreach (inf->cache, k, v) {
        if (key_in_ns(k, ns))
            json_array_append(vals, v);
    }
    pthread_mutex_unlock(&inf->mu);
    /* Parse outside the lock (compact caches). */
    json_array_foreach (vals, i, v) {
        o = unpack(inf, v);
        if (o)
            json_array_append_new(arr, o);
    }
    json_decref(vals);
    return arr;
}

size_t op_informer_size(op_informer_t *inf)
{
    size_t n;
    pthread_mutex_lock(&inf->mu);
    n = json_object_size(inf->cache);
    pthread_mutex_unlock(&inf->mu);
    return n;
}

size_t op_informer_bytes(op_informer_t *inf)
{
    const char *k;
    json_t *v;
    size_t n = 0;
    pthread_mutex_lock(&inf->mu);
    json_object_foreach (inf->cache, k, v)
        n += strlen(k) + (json_is_string(v) ? json_string_length(v) : 0);
    pthread_mutex_unlock(&inf->mu);
    return n;
}

unsigned long op_informer_relists(op_informer_t *inf)
{
    return atomic_load(&inf->relists);
}
