/* SPDX-License-Identifier: Apache-2.0 */
/* op_informer: list+watch of one resource type into a cache keyed by
 * "namespace/name" (client-go's reflector + indexer). One thread per watched
 * namespace (op_kube watches block), each with its own client; handlers run
 * on those threads. Design: docs/internals/operator.md. */
#ifndef OP_INFORMER_H
#define OP_INFORMER_H

#include "op_kube.h"

#include <jansson.h>
#include <stdbool.h>

/** A cache of one resource, fed by watch threads. */
typedef struct op_informer op_informer_t;

/** Makes a new client for a watch thread (op_kube clients are per thread). */
typedef op_kube_err_t (*op_informer_client_fn)(op_kube_t **out, char *err, size_t errlen,
                                               void *arg);

/**
 * Called on a watch thread after the cache changed: `obj` (borrowed) is the
 * new object, or for OP_KUBE_EV_DELETED the last known one; `old`
 * (borrowed, may be NULL) is what the cache held before (client-go's
 * UpdateFunc(old, new)). Relists report every listed object as MODIFIED and
 * every vanished one as DELETED.
 */
typedef void (*op_informer_handler_fn)(op_informer_t *inf, op_kube_event_t type, const json_t *old,
                                       const json_t *obj, void *arg);

/**
 * Trims an object in place before it is cached and handed to the handler
 * (client-go's SetTransform): drop what no reader needs (managedFields,
 * unread spec parts) so the cache stays small. Runs on a watch thread.
 */
typedef void (*op_informer_transform_fn)(json_t *obj);

/** What to watch. Strings are copied. */
typedef struct op_informer_opts {
    const char *api_version; /* "streaming.weir.dev/v1alpha1" */
    const char *plural;      /* "streams" */
    bool cluster_scoped;
    const char *namespaces;     /* comma-separated; NULL/"" = all (ignored if cluster-scoped) */
    long watch_timeout_s;       /* server-side watch timeout, also the stop latency; 0 = 30 */
    long page_limit;            /* LIST page size; 0 = 500 */
    const char *label_selector; /* LIST/WATCH labelSelector; NULL = every object */
    op_informer_transform_fn transform; /* NULL: objects are cached as received */
    bool compact; /* cache each object as its compact JSON text (about a tenth of the memory
                     of the parsed tree); get and list parse it again, so readers still get
                     objects, new ones each time */
} op_informer_opts_t;

/** Creates an informer (not started). Returns NULL on bad options or ENOMEM. */
op_informer_t *op_informer_new(const op_informer_opts_t *opts, op_informer_client_fn client_fn,
                               void *client_arg, op_informer_handler_fn handler, void *handler_arg);

/** Starts the watch threads. Returns 0 or -errno. */
int op_informer_start(op_informer_t *inf);

/** Asks the threads to stop and joins them (waits up to one watch timeout). */
void op_informer_stop(op_informer_t *inf);

/** Stops (if needed) and frees. NULL is fine. */
void op_informer_free(op_informer_t *inf);

/** True once every namespace has been listed at least once. */
bool op_informer_synced(op_informer_t *inf);

/** The plural given at creation. Borrowed. */
const char *op_informer_plural(const op_informer_t *inf);

/** The cached object `ns`/`name` (ns NULL or "" for cluster-scoped): a new
 * reference (never to be modified: it may be shared), or NULL if absent. */
json_t *op_informer_get(op_informer_t *inf, const char *ns, const char *name);

/** A new array with every cached object (of namespace `ns` unless NULL). */
json_t *op_informer_list(op_informer_t *inf, const char *ns);

/** Number of cached objects (metrics). */
size_t op_informer_size(op_informer_t *inf);

/** Bytes of the cached keys and (compact) JSON texts, without allocator
 * and jansson overhead; 0 texts for a non-compact cache (metrics). */
size_t op_informer_bytes(op_informer_t *inf);

/** Number of relists done (tests, metrics). */
unsigned long op_informer_relists(op_informer_t *inf);

#endif
