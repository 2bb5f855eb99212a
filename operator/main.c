/* SPDX-License-Identifier: Apache-2.0 */
/* weir-operator: reconciles ClusterStream, Stream and Processor resources.
 * Thin: flags, threads and leader election here; the Kubernetes client,
 * informers, queue and reconcilers live in op_core
 * (docs/internals/operator.md). */
#include "dp_http.h"
#include "dp_metrics.h"
#include "op_informer.h"
#include "op_kube.h"
#include "op_queue.h"
#include "op_reconcile.h"
#include "wc_log.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EX_USAGE 64
#define EX_CONFIG 78
#define LEASE_DURATION_S 15
#define LEASE_RENEW_DEADLINE_MS 10000
#define LEASE_RETRY_MS 2000
#define RESYNC_MS (5 * 60 * 1000)
#define MAX_WORKERS 32
#define NINF 4 /* clusterstreams, streams, processors, statefulsets */
/* Threads only run the client (libcurl, jansson, librdkafka's admin calls
 * run on librdkafka's own threads): 256 KiB of stack is plenty. */
#define THREAD_STACK (256 * 1024)

typedef struct flags {
    const char *kubeconfig, *context;
    int http_port;
    bool metrics, leader_elect;
    const char *lease_ns, *lease_name, *identity;
    const char *watch_namespaces;
    const char *store_ns, *image, *pull_policy, *cluster_domain;
    const char *store_res, *proc_res, *seccomp;
    long watch_timeout_s;
    int workers;
    bool auto_provision;
} flags_t;

static atomic_bool g_stop;
static atomic_bool g_leader;
/* Every worker records into these (dp_hist: atomic adds); /metrics reads. */
static dp_hist_t g_queue_wait[2], g_reconcile_time; /* queue wait: [normal, low] */

/* API request durations by verb and resource, as client-go's
 * rest_client_request_duration_seconds: slots are taken on first use (the
 * set is small and fixed by what the operator does), never freed. */
#define API_SLOTS 32
typedef struct {
    char verb[8], resource[48];
    dp_hist_t hist;
} api_slot_t;
static api_slot_t g_api[API_SLOTS];
static atomic_int g_api_n;
static pthread_mutex_t g_api_mu = PTHREAD_MUTEX_INITIALIZER;

/* Index of the slot for verb and resource among the first `n`, else n. */
static int api_slot(const char *verb, const char *resource, int n)
{
    int i = 0;
    while (i < n && (strcmp(g_api[i].verb, verb) != 0 || strcmp(g_api[i].resource, resource) != 0))
        i++;
    return i;
}

static void observe_request(void *ud, const char *method, const char *path, long status,
                            uint64_t ns)
{
    char resource[sizeof(g_api[0].resource)];
    const char *verb = method;
    bool collection;
    int n, i;
    (void)ud;
    (void)status;
    op_kube_path_resource(path, resource, sizeof(resource), &collection);
    if (strcmp(method, "GET") == 0 && collection)
        verb = "LIST";
    n = atomic_load(&g_api_n);
    i = api_slot(verb, resource, n);
    if (i == n) {
        pthread_mutex_lock(&g_api_mu);
        n = atomic_load(&g_api_n);
        i = api_slot(verb, resource, n);
        if (i == n && n < API_SLOTS) {
            snprintf(g_api[n].verb, sizeof(g_api[n].verb), "%s", verb);
            snprintf(g_api[n].resource, sizeof(g_api[n].resource), "%s", resource);
            atomic_store(&g_api_n, n + 1); /* publishes the slot's names */
        }
        pthread_mutex_unlock(&g_api_mu);
        if (i == API_SLOTS)
            return; /* full: not recorded rather than mislabelled */
    }
    dp_hist_record_ns(&g_api[i].hist, ns);
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_stop, true);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ms(void)
{
    return now_ns() / 1000000u;
}

static void sleep_ms(uint64_t ms)
{
    while (ms > 0 && !atomic_load(&g_stop)) {
        uint64_t s = ms > 100 ? 100 : ms;
        struct timespec ts = {0, (long)s * 1000000L};
        nanosleep(&ts, NULL);
        ms -= s;
    }
}

static void usage(FILE *f)
{
    fputs("usage: weir-operator [flags]\n"
          "  --kubeconfig=PATH  --context=NAME   (default: $KUBECONFIG, in-cluster, "
          "~/.kube/config)\n"
          "  --watch-namespaces=a,b              (empty: all; else $WEIR_NAMESPACE)\n"
          "  --leader-elect[=true|false] --leader-election-namespace=NS "
          "--leader-election-id=NAME\n"
          "  --http-port=N --metrics=BOOL        /healthz, /readyz (caches synced), /metrics\n"
          "  --store-namespace=NS --dataplane-image=IMG --dataplane-image-pull-policy=P\n"
          "  --cluster-domain=D --store-resources=JSON --processor-resources=JSON\n"
          "  --dataplane-seccomp-profile=JSON --watch-timeout-seconds=N --version\n"
          "  --concurrent-reconciles=N (4)       reconcile workers\n"
          "  --auto-provision-cluster-stream[=BOOL] (false) a Stream without its ClusterStream\n"
          "                                      gets a weir one\n",
          f);
}

static bool parse_bool(const char *v, bool *out)
{
    if (!v || strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = false;
        return true;
    }
    return false;
}

/* --name=value or --name value; booleans may stand alone. */
static int parse_flags(int argc, char **argv, flags_t *f)
{
    for (int i = 1; i < argc; i++) {
        char name[64];
        const char *a = argv[i], *eq, *v = NULL;
        if (strncmp(a, "--", 2) != 0)
            goto bad;
        a += 2;
        eq = strchr(a, '=');
        if (eq) {
            snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
            v = eq + 1;
        } else {
            snprintf(name, sizeof(name), "%s", a);
        }
        if (strcmp(name, "leader-elect") == 0 || strcmp(name, "metrics") == 0 ||
            strcmp(name, "auto-provision-cluster-stream") == 0) {
            bool *dst = name[0] == 'l'   ? &f->leader_elect
                        : name[0] == 'm' ? &f->metrics
                                         : &f->auto_provision;
            if (!parse_bool(v, dst))
                goto bad;
            continue;
        }
        if (strcmp(name, "help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (!v) {
            if (i + 1 >= argc)
                goto bad;
            v = argv[++i];
        }
        if (strcmp(name, "kubeconfig") == 0)
            f->kubeconfig = v;
        else if (strcmp(name, "context") == 0)
            f->context = v;
        else if (strcmp(name, "http-port") == 0)
            f->http_port = atoi(v);
        else if (strcmp(name, "leader-election-namespace") == 0)
            f->lease_ns = v;
        else if (strcmp(name, "leader-election-id") == 0)
            f->lease_name = v;
        else if (strcmp(name, "leader-election-identity") == 0)
            f->identity = v;
        else if (strcmp(name, "watch-namespaces") == 0)
            f->watch_namespaces = v;
        else if (strcmp(name, "store-namespace") == 0)
            f->store_ns = v;
        else if (strcmp(name, "dataplane-image") == 0)
            f->image = v;
        else if (strcmp(name, "dataplane-image-pull-policy") == 0)
            f->pull_policy = v;
        else if (strcmp(name, "cluster-domain") == 0)
            f->cluster_domain = v;
        else if (strcmp(name, "store-resources") == 0)
            f->store_res = v;
        else if (strcmp(name, "processor-resources") == 0)
            f->proc_res = v;
        else if (strcmp(name, "dataplane-seccomp-profile") == 0)
            f->seccomp = v;
        else if (strcmp(name, "watch-timeout-seconds") == 0)
            f->watch_timeout_s = atol(v);
        else if (strcmp(name, "concurrent-reconciles") == 0) {
            f->workers = atoi(v);
            if (f->workers < 1 || f->workers > MAX_WORKERS)
                goto bad;
        } else
            goto bad;
        continue;
    bad:
        fprintf(stderr, "weir-operator: bad argument %s\n", argv[i]);
        usage(stderr);
        return -1;
    }
    return 0;
}

static op_kube_err_t new_client(op_kube_t **out, char *err, size_t errlen, void *arg)
{
    const flags_t *f = arg;
    op_kube_config_t cfg = {0};
    op_kube_err_t e = op_kube_config_auto(f->kubeconfig, f->context, NULL, &cfg, err, errlen);
    if (e != OP_KUBE_OK)
        return e;
    op_kube_opts_t opts = {.observe = observe_request};
    return op_kube_new(&cfg, &opts, out, err, errlen);
}

static json_t *parse_json_flag(const char *name, const char *v, int *bad)
{
    json_error_t je;
    json_t *j;
    if (!v || !*v)
        return NULL;
    j = json_loads(v, 0, &je);
    if (!j) {
        fprintf(stderr, "weir-operator: --%s: %s\n", name, je.text);
        *bad = 1;
    }
    return j;
}

/* One reconcile worker: its own client (op_kube is per thread); the queue
 * never hands a key to two workers at once (op_queue). */
typedef struct worker {
    op_reconciler_t *r;
    op_kube_t *kube;
    pthread_t thread;
    bool started;
} worker_t;

static void *reconcile_main(void *arg)
{
    worker_t *w = arg;
    op_reconciler_t *r = w->r;
    char key[OP_QUEUE_KEY_MAX];
    op_reconcile_bind_client(w->kube);
    while (!atomic_load(&g_stop)) {
        uint64_t after = 0, waited = 0, t0;
        bool low = false;
        int rc;
        if (!atomic_load(&g_leader)) {
            sleep_ms(200);
            continue;
        }
        rc = op_queue_get_ex(r->queue, key, sizeof(key), 500, &waited, &low);
        if (rc < 0)
            break;
        if (rc == 0)
            continue;
        dp_hist_record_ns(&g_queue_wait[low ? 1 : 0], waited);
        /* Leadership may have been lost while waiting: give the key back. */
        if (!atomic_load(&g_leader)) {
            op_queue_done(r->queue, key);
            op_queue_add(r->queue, key);
            continue;
        }
        t0 = now_ns();
        rc = op_reconcile_key(r, key, &after);
        dp_hist_record_ns(&g_reconcile_time, now_ns() - t0);
        if (rc != 0) {
            wc_log(WC_LOG_INFO, "operator", "reconcile failed, retrying", "{s:s, s:I}", "key", key,
                   "delay_ms", (json_int_t)op_queue_next_delay_ms(r->queue, key));
            op_queue_add_rate_limited(r->queue, key);
        } else {
            op_queue_forget(r->queue, key);
            if (after)
                op_queue_add_after_low(r->queue, key, after); /* a poll */
        }
        op_queue_done(r->queue, key);
    }
    return NULL;
}

/* /metrics and /readyz, read from the HTTP thread: the queue, the informers
 * and g_leader are all safe to read from any thread. */
typedef struct http_ctx {
    op_queue_t *queue;
    op_informer_t **infs;
} http_ctx_t;

static size_t informer_relists(op_informer_t *inf)
{
    return op_informer_relists(inf);
}

/* One metric family with a sample per informer, labelled resource=PLURAL. */
static int per_informer(dp_mbuf_t *out, op_informer_t **infs, const char *name, const char *help,
                        dp_metric_type_t type, size_t (*value)(op_informer_t *))
{
    int rc = dp_metrics_family(out, name, help, type);

    for (int i = 0; i < NINF && rc == 0; i++) {
        char labels[64];

        snprintf(labels, sizeof(labels), "resource=\"%s\"", op_informer_plural(infs[i]));
        rc = type == DP_METRIC_COUNTER
                 ? dp_metrics_counter(out, name, NULL, labels, (uint64_t)value(infs[i]))
                 : dp_metrics_gauge(out, name, NULL, labels, (int64_t)value(infs[i]));
    }
    return rc;
}

static int http_render(dp_mbuf_t *out, void *ctx)
{
    http_ctx_t *c = ctx;
    int rc;

    rc = dp_metrics_gauge(out, "weir_operator_leader",
                          "1 while this replica holds the Lease and reconciles", NULL,
                          atomic_load(&g_leader) ? 1 : 0);
    if (rc == 0)
        rc = dp_metrics_gauge(out, "weir_operator_queue_depth", "Keys waiting to be reconciled",
                              NULL, (int64_t)op_queue_len(c->queue));
    if (rc == 0)
        rc = per_informer(out, c->infs, "weir_operator_relists_total",
                          "Informer relists (start, 410 Gone, broken watch)", DP_METRIC_COUNTER,
                          informer_relists);
    if (rc == 0)
        rc = per_informer(out, c->infs, "weir_operator_cache_objects",
                          "Objects in each informer cache", DP_METRIC_GAUGE, op_informer_size);
    if (rc == 0)
        rc = per_informer(out, c->infs, "weir_operator_cache_bytes",
                          "Bytes of cached keys and compact JSON texts per informer",
                          DP_METRIC_GAUGE, op_informer_bytes);
    if (rc == 0)
        rc = dp_metrics_family(out, "weir_operator_queue_wait_seconds",
                               "How long a key was ready in the work queue before a worker "
                               "took it, by the priority it was taken at",
                               DP_METRIC_HISTOGRAM);
    if (rc == 0)
        rc = dp_metrics_hist(out, "weir_operator_queue_wait_seconds", NULL, "priority=\"normal\"",
                             &g_queue_wait[0]);
    if (rc == 0)
        rc = dp_metrics_hist(out, "weir_operator_queue_wait_seconds", NULL, "priority=\"low\"",
                             &g_queue_wait[1]);
    if (rc == 0)
        rc = dp_metrics_hist(out, "weir_operator_reconcile_seconds",
                             "Duration of one reconcile (its API requests included)", NULL,
                             &g_reconcile_time);
    if (rc == 0)
        rc = dp_metrics_family(out, "weir_operator_api_request_seconds",
                               "Duration of each Kubernetes API request (not watches), by verb "
                               "and resource",
                               DP_METRIC_HISTOGRAM);
    for (int i = 0, n = atomic_load(&g_api_n); i < n && rc == 0; i++) {
        char labels[96];

        snprintf(labels, sizeof(labels), "verb=\"%.7s\",resource=\"%.47s\"", g_api[i].verb,
                 g_api[i].resource);
        rc =
            dp_metrics_hist(out, "weir_operator_api_request_seconds", NULL, labels, &g_api[i].hist);
    }
    if (rc == 0) {
        /* malloc's own view, to tell live data from what it keeps free
         * (RSS alone cannot): every arena, mmapped chunks included. */
        struct mallinfo2 mi = mallinfo2();

        rc = dp_metrics_family(out, "weir_operator_heap_bytes",
                               "malloc heap: in_use by live allocations, free but kept",
                               DP_METRIC_GAUGE);
        if (rc == 0)
            rc = dp_metrics_gauge(out, "weir_operator_heap_bytes", NULL, "state=\"in_use\"",
                                  (int64_t)(mi.uordblks + mi.hblkhd));
        if (rc == 0)
            rc = dp_metrics_gauge(out, "weir_operator_heap_bytes", NULL, "state=\"free\"",
                                  (int64_t)mi.fordblks);
    }
    return rc;
}

static int http_ready(char *reason, size_t reasonlen, void *ctx)
{
    http_ctx_t *c = ctx;

    for (int i = 0; i < NINF; i++) {
        if (!op_informer_synced(c->infs[i])) {
            snprintf(reason, reasonlen, "%s cache not synced", op_informer_plural(c->infs[i]));
            return 0;
        }
    }
    return 1;
}

int main(int argc, char **argv)
{
    flags_t f = {
        .leader_elect = false, .lease_name = "weir-operator", .watch_timeout_s = 30, .workers = 4};
    char err[1024], host[256];
    op_reconciler_t r = {0};
    op_kube_t *lease_kube = NULL;
    op_informer_t *infs[NINF] = {0};
    json_t *store_res, *proc_res, *seccomp;
    worker_t ws[MAX_WORKERS] = {0};
    pthread_attr_t attr;
    char *sts_namespaces = NULL;
    http_ctx_t hctx;
    dp_http_t *http = NULL;
    int bad = 0, rc = EX_CONFIG;
    uint64_t last_renew = 0, last_resync;
    struct sigaction sa = {.sa_handler = on_signal};

    /* One malloc arena instead of eight per core: the threads mostly wait
     * on sockets, and every arena keeps its own free memory resident (the
     * bench: 2 arenas cost 0.2 MB more at 1000 Processors). */
    mallopt(M_ARENA_MAX, 1);
    wc_log_init_from_env();
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("weir-operator %s\n", WEIR_VERSION);
        return 0;
    }
    if (parse_flags(argc, argv, &f) != 0)
        return EX_USAGE;
    if (!f.watch_namespaces || !*f.watch_namespaces)
        f.watch_namespaces = getenv("WEIR_NAMESPACE");
    if (!f.identity)
        f.identity = getenv("POD_NAME");
    if (!f.identity || !*f.identity) {
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "weir-operator");
        host[sizeof(host) - 1] = '\0';
        f.identity = host;
    }
    if (!f.lease_ns || !*f.lease_ns)
        f.lease_ns = getenv("POD_NAMESPACE");
    store_res = parse_json_flag("store-resources", f.store_res, &bad);
    proc_res = parse_json_flag("processor-resources", f.proc_res, &bad);
    seccomp = parse_json_flag("dataplane-seccomp-profile", f.seccomp, &bad);
    if (bad)
        goto out;

    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (new_client(&r.kube, err, sizeof(err), &f) != OP_KUBE_OK) {
        wc_log(WC_LOG_ERROR, "operator", "cannot configure the Kubernetes client", "{s:s}", "error",
               err);
        goto out;
    }
    if (f.leader_elect) {
        if (new_client(&lease_kube, err, sizeof(err), &f) != OP_KUBE_OK)
            goto out;
        if (!f.lease_ns || !*f.lease_ns)
            f.lease_ns = op_kube_namespace(r.kube);
        if (!f.lease_ns || !*f.lease_ns) {
            wc_log(WC_LOG_ERROR, "operator", "leader election needs a namespace", NULL);
            goto out;
        }
    }
    r.render = (op_render_config_t){.dataplane_image = f.image,
                                    .image_pull_policy = f.pull_policy,
                                    .store_namespace = f.store_ns,
                                    .cluster_domain = f.cluster_domain,
                                    .store_resources = store_res,
                                    .processor_resources = proc_res,
                                    .seccomp_profile = seccomp};
    r.queue = op_queue_new(500, 5 * 60 * 1000, 65536);
    /* Half the workers (at least one) stay free for users' new or edited
     * objects while the others work through readiness updates and
     * dependents (op_queue). With one free worker, a burst of creates ran
     * it at ~75% busy and queued creates behind each slow apply. */
    if (r.queue && f.workers > 1)
        op_queue_set_low_limit(r.queue, (size_t)f.workers / 2);
    r.applied = json_object();
    r.auto_provision = f.auto_provision;
    /* ClusterStream credentials Secrets live in the store namespace: the
     * store pods reference them there by secretKeyRef, and the chart grants
     * `get` on Secrets only there. */
    r.credentials_namespace = f.store_ns && *f.store_ns ? f.store_ns : "weir-system";
    /* Owned StatefulSets live in the watched namespaces (Processors) and
     * the store namespace (weir ClusterStreams). */
    if (f.watch_namespaces && *f.watch_namespaces &&
        asprintf(&sts_namespaces, "%s,%s", f.watch_namespaces,
                 f.store_ns && *f.store_ns ? f.store_ns : "weir-system") < 0)
        goto out;
    {
        static const struct {
            const char *api, *plural;
            bool cluster;
        } res[NINF] = {{"streaming.weir.dev/v1alpha1", "clusterstreams", true},
                       {"streaming.weir.dev/v1alpha1", "streams", false},
                       {"streaming.weir.dev/v1alpha1", "processors", false},
                       {"apps/v1", "statefulsets", false}};
        for (int i = 0; i < NINF; i++) {
            bool sts = i == 3;
            op_informer_opts_t io = {.api_version = res[i].api,
                                     .plural = res[i].plural,
                                     .cluster_scoped = res[i].cluster,
                                     .namespaces = sts ? sts_namespaces : f.watch_namespaces,
                                     .watch_timeout_s = f.watch_timeout_s,
                                     .label_selector = sts ? OP_CHILD_SELECTOR : NULL,
                                     .transform =
                                         sts ? op_reconcile_trim_statefulset : op_reconcile_trim,
                                     .compact = true};
            infs[i] = op_informer_new(&io, new_client, &f, op_reconcile_on_event, &r);
            if (!infs[i])
                goto out;
        }
    }
    r.cluster_streams = infs[0];
    r.streams = infs[1];
    r.processors = infs[2];
    r.statefulsets = infs[3];
    if (!r.queue)
        goto out;
    if (f.http_port > 0) {
        dp_http_handlers_t hh = {
            .render = f.metrics ? http_render : NULL, .ready = http_ready, .ctx = &hctx};

        hctx = (http_ctx_t){.queue = r.queue, .infs = infs};
        if (dp_http_start(&http, NULL, f.http_port, &hh, err, sizeof(err)) != 0) {
            wc_log(WC_LOG_ERROR, "operator", "cannot serve metrics and health", "{s:s}", "error",
                   err);
            goto out;
        }
    }
    for (int i = 0; i < NINF; i++)
        if (op_informer_start(infs[i]) != 0)
            goto out;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    for (int i = 0; i < f.workers; i++) {
        ws[i].r = &r;
        if (new_client(&ws[i].kube, err, sizeof(err), &f) != OP_KUBE_OK ||
            pthread_create(&ws[i].thread, &attr, reconcile_main, &ws[i]) != 0) {
            pthread_attr_destroy(&attr);
            goto out;
        }
        ws[i].started = true;
    }
    pthread_attr_destroy(&attr);
    wc_log(WC_LOG_INFO, "operator", "started", "{s:s, s:b, s:s, s:i, s:b}", "identity", f.identity,
           "leader_elect", f.leader_elect, "namespaces",
           f.watch_namespaces && *f.watch_namespaces ? f.watch_namespaces : "*", "workers",
           f.workers, "auto_provision", f.auto_provision);

    /* The main thread runs leader election and the periodic resync. */
    for (;;) {
        bool all = true;
        for (int i = 0; i < NINF; i++)
            all = all && op_informer_synced(infs[i]);
        if (all || atomic_load(&g_stop))
            break;
        sleep_ms(100);
    }
    last_resync = now_ms();
    while (!atomic_load(&g_stop)) {
        bool was = atomic_load(&g_leader), is = true;
        if (f.leader_elect) {
            op_kube_err_t e = op_kube_lease_try(lease_kube, f.lease_ns, f.lease_name, f.identity,
                                                LEASE_DURATION_S, &is, err, sizeof(err));
            if (e == OP_KUBE_OK && is)
                last_renew = now_ms();
            else if (e != OP_KUBE_OK)
                wc_log(WC_LOG_WARN, "operator", "lease round failed", "{s:s}", "error", err);
            /* A leader that could not renew within the deadline steps down. */
            if (e != OP_KUBE_OK)
                is = was && now_ms() - last_renew < LEASE_RENEW_DEADLINE_MS;
        }
        if (is && !was) {
            wc_log(WC_LOG_INFO, "operator", "leading", "{s:s}", "identity", f.identity);
            atomic_store(&g_leader, true);
            op_reconcile_enqueue_all(&r);
        } else if (!is && was) {
            wc_log(WC_LOG_WARN, "operator", "lost leadership: reconciling stops", NULL);
            atomic_store(&g_leader, false);
        }
        if (now_ms() - last_resync >= RESYNC_MS) {
            op_reconcile_enqueue_all(&r);
            last_resync = now_ms();
        }
        /* Watch events are parsed into full trees and then trimmed
         * (op_informer transforms): the holes they leave stay resident
         * unless given back. Cheap next to a 2 s sleep. */
        malloc_trim(0);
        sleep_ms(f.leader_elect ? LEASE_RETRY_MS : 1000);
    }
    rc = 0;
    wc_log(WC_LOG_INFO, "operator", "stopping", NULL);
out:
    atomic_store(&g_stop, true);
    dp_http_stop(http);
    if (r.queue)
        op_queue_shutdown(r.queue);
    for (int i = 0; i < MAX_WORKERS; i++) {
        if (ws[i].started)
            pthread_join(ws[i].thread, NULL);
        op_kube_free(ws[i].kube);
    }
    if (lease_kube && atomic_load(&g_leader) &&
        op_kube_lease_release(lease_kube, f.lease_ns, f.lease_name, f.identity, err, sizeof(err)) !=
            OP_KUBE_OK)
        wc_log(WC_LOG_WARN, "operator", "lease release failed", "{s:s}", "error", err);
    for (int i = 0; i < NINF; i++)
        op_informer_free(infs[i]);
    free(sts_namespaces);
    op_queue_free(r.queue);
    json_decref(r.applied);
    op_kube_free(r.kube);
    op_kube_free(lease_kube);
    json_decref(store_res);
    json_decref(proc_res);
    json_decref(seccomp);
    return rc;
}
