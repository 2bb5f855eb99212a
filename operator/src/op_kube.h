/* SPDX-License-Identifier: Apache-2.0 */
/* op_kube: the operator's Kubernetes API client on libcurl + jansson + libyaml.
 * Configuration (in-cluster or kubeconfig), typed requests with an error enum
 * that carries HTTP meaning, streaming watches, Lease leader election, Events
 * and an exponential backoff helper. Design: docs/internals/kube-client.md. */
#ifndef OP_KUBE_H
#define OP_KUBE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---------------------------------------------------------------- errors -- */

/**
 * Result of every op_kube call. Detail (the API Status message, a curl error
 * or a configuration problem) goes to the caller's `err` buffer.
 */
typedef enum {
    OP_KUBE_OK = 0,
    OP_KUBE_ERR_NOT_FOUND, /* 404: the object is gone; a reconciler stops */
    OP_KUBE_ERR_CONFLICT,  /* 409: stale resourceVersion or AlreadyExists */
    OP_KUBE_ERR_GONE,      /* 410 (HTTP or watch ERROR): relist */
    OP_KUBE_ERR_INVALID,   /* 400, 422, other 4xx, bad arguments or configuration */
    OP_KUBE_ERR_TRANSIENT, /* 429, 5xx, timeouts, connection failures: retry later */
    OP_KUBE_ERR_AUTH,      /* 401, 403, TLS peer verification failure */
} op_kube_err_t;

/** Short constant name of `e` ("not_found", "conflict", ...). */
const char *op_kube_err_str(op_kube_err_t e);

/** Maps an HTTP status code to the enum (2xx is OP_KUBE_OK). */
op_kube_err_t op_kube_err_from_http(long status);

/**
 * Maps a response (status code and body, which may be a metav1.Status or
 * anything else) to the enum and, unless it is 2xx, writes
 * "HTTP <code> <reason>: <message>" into `err`.
 */
op_kube_err_t op_kube_err_from_response(long status, const char *body, size_t len, char *err,
                                        size_t errlen);

/* --------------------------------------------------------- configuration -- */

/** Default directory of the mounted service account (token, ca.crt, namespace). */
#define OP_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/**
 * Where the client connects and how it authenticates. Filled by
 * op_kube_config_load_kubeconfig or op_kube_config_in_cluster; every string
 * is owned by the struct and released by op_kube_config_dispose. Relative file
 * paths from a kubeconfig are already resolved against its directory.
 * Exactly one credential source is normally set; when several are, the
 * client uses a client certificate together with the first of exec,
 * token_file, token.
 */
typedef struct op_kube_config {
    char *server;          /* "https://host:port", no trailing slash */
    char *tls_server_name; /* SNI/verification name override, or NULL */
    char *ca_file;         /* PEM bundle path, or NULL */
    char *ca_data;         /* decoded PEM bytes, or NULL */
    size_t ca_data_len;
    char *token;                /* static bearer token, or NULL */
    char *token_file;           /* bearer token re-read when it rotates, or NULL */
    char *cert_file, *key_file; /* client certificate paths, or NULL */
    char *cert_data, *key_data; /* decoded PEM bytes, or NULL */
    size_t cert_data_len, key_data_len;
    char *exec_command;     /* exec credential plugin, or NULL */
    char **exec_args;       /* NULL-terminated argv[1..], or NULL */
    char **exec_env;        /* NULL-terminated "NAME=value" list, or NULL */
    char *exec_api_version; /* client.authentication.k8s.io/v1 or v1beta1 */
    char *namespace;        /* the context's or the pod's namespace, or NULL */
} op_kube_config_t;

/**
 * Parses kubeconfig `path` (YAML) and selects `context` (NULL: its
 * current-context). Supports certificate-authority(-data), token, tokenFile,
 * client-certificate(-data)/client-key(-data) and exec (command, args, env,
 * apiVersion). insecure-skip-tls-verify and plain http:// servers are refused:
 * TLS is always verified. Returns OP_KUBE_ERR_INVALID with a message naming
 * the missing or bad field.
 */
op_kube_err_t op_kube_config_load_kubeconfig(const char *path, const char *context,
                                             op_kube_config_t *cfg, char *err, size_t errlen);

/**
 * In-cluster configuration: server from KUBERNETES_SERVICE_HOST/PORT, CA
 * `sa_dir`/ca.crt, token file `sa_dir`/token (re-read when it rotates),
 * namespace from `sa_dir`/namespace. `sa_dir` NULL means OP_KUBE_SA_DIR.
 */
op_kube_err_t op_kube_config_in_cluster(const char *sa_dir, op_kube_config_t *cfg, char *err,
                                        size_t errlen);

/**
 * The usual discovery order: `kubeconfig` if not NULL, else $KUBECONFIG (its
 * first entry), else in-cluster when KUBERNETES_SERVICE_HOST is set (directory
 * `sa_dir`), else ~/.kube/config.
 */
op_kube_err_t op_kube_config_auto(const char *kubeconfig, const char *context, const char *sa_dir,
                                  op_kube_config_t *cfg, char *err, size_t errlen);

/** Releases everything `cfg` owns and zeroes it. Safe on a zeroed struct. */
void op_kube_config_dispose(op_kube_config_t *cfg);

/* ---------------------------------------------------------------- client -- */

/** A client: one configuration, one keep-alive CURL handle for requests and
 * one for watches. Not thread-safe: use one client per thread. */
typedef struct op_kube op_kube_t;

/** Client limits; zero fields take the defaults shown. */
typedef struct op_kube_opts {
    long connect_timeout_ms;   /* 10000 */
    long request_timeout_ms;   /* 30000, for everything but watches */
    size_t max_response_bytes; /* 64 MiB */
    const char *user_agent;    /* "weir-operator/<version>" */
    const char *field_manager; /* "weir-operator", for server-side apply */
    /* Optional: called on the calling thread after each request (not after
     * watches) with its method, path, HTTP status (0: none) and duration. */
    void (*observe)(void *ud, const char *method, const char *path, long status, uint64_t ns);
    void *observe_ud;
} op_kube_opts_t;

/**
 * Creates a client that takes ownership of `cfg` (its fields are moved out and
 * `cfg` is zeroed, also on failure). `opts` may be NULL.
 */
op_kube_err_t op_kube_new(op_kube_config_t *cfg, const op_kube_opts_t *opts, op_kube_t **out,
                          char *err, size_t errlen);

/** Frees the client, its CURL handles and cached credentials. NULL is fine. */
void op_kube_free(op_kube_t *k);

/** The configured namespace (kubeconfig context or pod), or NULL. Borrowed. */
const char *op_kube_namespace(const op_kube_t *k);

/** Closes the connection of the request handle (watches keep theirs) and
 * frees its buffers; the next request connects again. For a client that
 * then only watches for a long time, as an informer after its list: an idle
 * HTTP/2 connection holds ~0.1 MB (TLS state, nghttp2 session, libcurl's
 * 32 KiB HTTP/2 input buffer) for nothing. */
void op_kube_close_idle(op_kube_t *k);

/** Drops the cached token (token file or exec plugin) so the next request
 * reads or runs it again; the client also does this by itself on a 401. */
void op_kube_invalidate_credentials(op_kube_t *k);

/**
 * What request `path` is about, for metrics: its resource ("configmaps";
 * "processors/status" for a subresource; a namespace path gives
 * "namespaces") into `buf`, and whether it names a collection rather than
 * one object. The query is ignored. Returns 0, or -1 with "other" in `buf`
 * when `path` is not an /api or /apis path or does not fit.
 */
int op_kube_path_resource(const char *path, char *buf, size_t len, bool *collection);

/**
 * Builds an API path: `api_version` "v1" gives /api/v1, "apps/v1" gives
 * /apis/apps/v1; then /namespaces/`ns` (if ns), /`plural`, /`name` (if name),
 * /`sub` (if sub). Names must be valid path segments (no '/', '?', '#', '%').
 * Returns the length, or -1 (err written) when invalid or longer than `len`.
 */
int op_kube_path(char *buf, size_t len, const char *api_version, const char *ns, const char *plural,
                 const char *name, const char *sub);

/**
 * Low-level request: `method` on `path` (with its query string) with an
 * optional body of `content_type`. On 2xx `*out` (if out is not NULL) gets
 * the parsed JSON body (new reference; NULL for an empty body). On a 401 with
 * a refreshable credential the request is retried once with a fresh token.
 */
op_kube_err_t op_kube_request(op_kube_t *k, const char *method, const char *path,
                              const char *content_type, const char *body, size_t body_len,
                              json_t **out, char *err, size_t errlen);

/** GET one object (or anything else) at `path`. `*out`: new reference. */
op_kube_err_t op_kube_get(op_kube_t *k, const char *path, json_t **out, char *err, size_t errlen);

/**
 * One LIST page of collection `path` (which may carry labelSelector etc.):
 * `limit` 0 means no limit, `cont` the previous page's metadata.continue or
 * NULL. `*out`: the List (new reference). An expired continue token is
 * OP_KUBE_ERR_GONE.
 */
op_kube_err_t op_kube_list_page(op_kube_t *k, const char *path, long limit, const char *cont,
                                json_t **out, char *err, size_t errlen);

/**
 * LIST every page of `path` with `page_limit` items per request; `*items` gets
 * an array of all items (new reference) and `rv` (capacity `rvlen`) the
 * resourceVersion of the first page, from which a watch starts.
 */
op_kube_err_t op_kube_list_all(op_kube_t *k, const char *path, long page_limit, json_t **items,
                               char *rv, size_t rvlen, char *err, size_t errlen);

/**
 * GETs Secret `ns`/`name` and returns its data with every value base64-decoded:
 * `*data` is a new object key → string (values holding NUL bytes are refused
 * with OP_KUBE_ERR_INVALID). OP_KUBE_ERR_NOT_FOUND when the Secret is absent.
 */
op_kube_err_t op_kube_secret_data(op_kube_t *k, const char *ns, const char *name, json_t **data,
                                  char *err, size_t errlen);

/** POST `obj` (borrowed) to collection `path`. `*out` (may be NULL): new reference. */
op_kube_err_t op_kube_create(op_kube_t *k, const char *path, const json_t *obj, json_t **out,
                             char *err, size_t errlen);

/** PUT `obj` to object `path` (optimistic concurrency when obj carries
 * metadata.resourceVersion: a stale one is OP_KUBE_ERR_CONFLICT). */
op_kube_err_t op_kube_update(op_kube_t *k, const char *path, const json_t *obj, json_t **out,
                             char *err, size_t errlen);

/**
 * Server-side apply of `obj` (must carry apiVersion, kind, metadata.name) to
 * object `path` (append "/status" for the status subresource): PATCH
 * application/apply-patch+yaml with fieldManager, force=true and
 * fieldValidation=Ignore (an unknown field still fails).
 */
op_kube_err_t op_kube_apply(op_kube_t *k, const char *path, const json_t *obj, json_t **out,
                            char *err, size_t errlen);

/** Patch flavours for op_kube_patch. */
typedef enum {
    OP_KUBE_PATCH_MERGE = 0, /* application/merge-patch+json (RFC 7386) */
    OP_KUBE_PATCH_JSON,      /* application/json-patch+json (RFC 6902) */
    OP_KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json (built-in kinds) */
    OP_KUBE_PATCH_APPLY,     /* same as op_kube_apply */
} op_kube_patch_t;

/** PATCH object `path` with `patch` (borrowed). */
op_kube_err_t op_kube_patch(op_kube_t *k, const char *path, op_kube_patch_t type,
                            const json_t *patch, json_t **out, char *err, size_t errlen);

/**
 * Status subresource update: `path` is the object's path, "/status" is
 * appended; OP_KUBE_PATCH_APPLY applies `status_obj` (a full object with
 * apiVersion, kind, metadata.name and status), OP_KUBE_PATCH_MERGE merges it.
 */
op_kube_err_t op_kube_patch_status(op_kube_t *k, const char *path, op_kube_patch_t type,
                                   const json_t *status_obj, json_t **out, char *err,
                                   size_t errlen);

/**
 * DELETE object `path` with `propagation` ("Foreground", "Background",
 * "Orphan" or NULL for the server default). Not found is reported as
 * OP_KUBE_ERR_NOT_FOUND; callers that only want it gone treat that as done.
 */
op_kube_err_t op_kube_delete(op_kube_t *k, const char *path, const char *propagation, char *err,
                             size_t errlen);

/* ----------------------------------------------------------------- watch -- */

/** Watch event types. */
typedef enum {
    OP_KUBE_EV_ADDED = 0,
    OP_KUBE_EV_MODIFIED,
    OP_KUBE_EV_DELETED,
    OP_KUBE_EV_BOOKMARK,
} op_kube_event_t;

/** Name of a watch event type ("ADDED", ...). */
const char *op_kube_event_str(op_kube_event_t type);

/**
 * Called for each watch event; `object` is borrowed for the call only (take a
 * reference to keep it). Return 0 to go on, anything else to end the watch
 * (the run then returns OP_KUBE_OK). The callback may issue requests on the
 * same client: watches have their own CURL handle.
 */
typedef int (*op_kube_watch_cb)(op_kube_event_t type, json_t *object, void *arg);

/** Longest resourceVersion the client keeps (they are short decimal strings). */
#define OP_KUBE_RV_MAX 128

/**
 * Incremental parser of a watch body: newline-delimited JSON events, fed in
 * chunks split anywhere. Embedded by the watch; public for tests and for
 * callers that drive their own transfers.
 */
typedef struct op_kube_watch_parser {
    char *line; /* partial line carried between chunks */
    size_t len, cap;
    size_t max_line;            /* longest accepted event line */
    char rv[OP_KUBE_RV_MAX];    /* resourceVersion of the last event or bookmark */
    op_kube_err_t result;       /* first error (sticky) */
    bool stopped;               /* the callback asked to stop */
    uint64_t events, bookmarks; /* counters, for tests and metrics */
    op_kube_watch_cb cb;
    void *arg;
    char *err;
    size_t errlen;
} op_kube_watch_parser_t;

/**
 * Prepares `p` for a stream: events go to `cb`; errors are described in
 * `err`; `max_line` 0 means 16 MiB; `rv` (may be NULL) seeds the tracked
 * resourceVersion.
 */
void op_kube_watch_parser_init(op_kube_watch_parser_t *p, size_t max_line, const char *rv,
                               op_kube_watch_cb cb, void *arg, char *err, size_t errlen);

/**
 * Feeds `n` bytes. Complete lines are parsed and dispatched at once. Returns
 * OP_KUBE_OK to go on (check p->stopped), or the sticky error: an ERROR event
 * (its Status code mapped, 410 = OP_KUBE_ERR_GONE), an unparsable line or a
 * line longer than max_line (OP_KUBE_ERR_INVALID).
 */
op_kube_err_t op_kube_watch_parser_feed(op_kube_watch_parser_t *p, const char *data, size_t n);

/** End of stream: parses a final line without a newline, if any. */
op_kube_err_t op_kube_watch_parser_finish(op_kube_watch_parser_t *p);

/** Releases the line buffer. */
void op_kube_watch_parser_dispose(op_kube_watch_parser_t *p);

/** Options of one watch request. */
typedef struct op_kube_watch_opts {
    const char *path;         /* collection path, may carry labelSelector etc. */
    long timeout_s;           /* server-side timeoutSeconds; 0 = 300 */
    bool send_initial_events; /* sendInitialEvents=true (streaming list) */
    size_t max_line;          /* 0 = 16 MiB */
} op_kube_watch_opts_t;

/**
 * Runs one watch on `opts->path` from resourceVersion `rv` (in/out, capacity
 * `rvlen`; "" or "0" means "any"): watch=1, allowWatchBookmarks=true,
 * timeoutSeconds. Events are dispatched to `cb` as they arrive. Returns when
 * the server ends the stream (OP_KUBE_OK: watch again from `rv`), the
 * callback stops it (OP_KUBE_OK), the stream breaks (OP_KUBE_ERR_TRANSIENT),
 * the resourceVersion is too old (OP_KUBE_ERR_GONE: relist) or the request
 * is refused (mapped status). `rv` always holds the last version seen.
 */
op_kube_err_t op_kube_watch_run(op_kube_t *k, const op_kube_watch_opts_t *opts, char *rv,
                                size_t rvlen, op_kube_watch_cb cb, void *arg, char *err,
                                size_t errlen);

/* --------------------------------------------------------------- backoff -- */

/** Exponential backoff with jitter; embed and op_kube_backoff_init. */
typedef struct op_kube_backoff {
    uint64_t base_ms, max_ms;
    unsigned attempt;
    uint64_t rng; /* xorshift64* state */
} op_kube_backoff_t;

/** `base_ms` first nominal delay, doubled per attempt up to `max_ms`;
 * `seed` 0 seeds from the clock. */
void op_kube_backoff_init(op_kube_backoff_t *b, uint64_t base_ms, uint64_t max_ms, uint64_t seed);

/**
 * The next delay: nominal d = min(max_ms, base_ms * 2^attempt), returned as a
 * uniform value in [d/2, d] ("equal jitter"), so retries never synchronise and
 * never go below half the nominal delay.
 */
uint64_t op_kube_backoff_next(op_kube_backoff_t *b);

/** Back to the first delay, after a success. */
void op_kube_backoff_reset(op_kube_backoff_t *b);

/* ------------------------------------------------------ leader election -- */

/**
 * One round of leader election on coordination.k8s.io/v1 Lease `ns`/`name`
 * for `identity`: creates the Lease if absent; renews it if `identity` holds
 * it; takes it over if it is free or its holder has not renewed it for
 * leaseDurationSeconds as observed by this client's monotonic clock (as
 * client-go does, so clock skew does not matter). Updates carry the observed
 * resourceVersion: a 409 means another candidate won and is reported as
 * OP_KUBE_OK with *is_leader false. Call it every retry period (e.g. 2 s);
 * a leader that has not renewed within its renew deadline must stop working.
 */
op_kube_err_t op_kube_lease_try(op_kube_t *k, const char *ns, const char *name,
                                const char *identity, int duration_s, bool *is_leader, char *err,
                                size_t errlen);

/** Gives the Lease up if `identity` holds it (holder cleared, duration 1 s), so
 * another candidate takes over at once. */
op_kube_err_t op_kube_lease_release(op_kube_t *k, const char *ns, const char *name,
                                    const char *identity, char *err, size_t errlen);

/* ---------------------------------------------------------------- events -- */

/**
 * Records a core/v1 Event about `involved` (borrowed; needs apiVersion, kind,
 * metadata.name, and metadata.namespace unless cluster-scoped, whose events
 * go to "default"). `type` "Normal" or "Warning"; `reason` UpperCamelCase;
 * `message` is cut to 1024 bytes. `component` NULL means "weir-operator".
 */
op_kube_err_t op_kube_event_create(op_kube_t *k, const json_t *involved, const char *type,
                                   const char *reason, const char *message, const char *component,
                                   char *err, size_t errlen);

/* -------------------------------------------------------------- helpers -- */

/** Formats `t` plus `usec` as a metav1.MicroTime ("2006-01-02T15:04:05.000000Z"). */
void op_kube_format_microtime(char buf[32], time_t t, long usec);

#endif
