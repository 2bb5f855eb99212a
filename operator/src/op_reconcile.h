/* SPDX-License-Identifier: Apache-2.0 */
/* op_reconcile: the three controllers (ClusterStream, Stream, Processor).
 * Each reconciles one key from the work queue against the informer caches:
 * render (op_render), apply children with server-side apply, manage topics
 * (op_topic) and the Stream finalizer, and publish a Ready condition through
 * the status subresource. Design: docs/internals/operator.md. */
#ifndef OP_RECONCILE_H
#define OP_RECONCILE_H

#include "op_informer.h"
#include "op_kube.h"
#include "op_queue.h"
#include "op_render.h"

#include <stdatomic.h>
#include <stdint.h>

/** Finalizer a Stream carries while its topic may need deleting. */
#define OP_STREAM_FINALIZER "streaming.weir.dev/finalizer"

/** Annotation on an auto-provisioned ClusterStream: "<ns>/<name>" of the
 * Stream it was made for. */
#define OP_AUTO_PROVISIONED_FOR "streaming.weir.dev/auto-provisioned-for"

/** Label selector of the owned StatefulSets the operator watches. */
#define OP_CHILD_SELECTOR "app.kubernetes.io/managed-by=weir-operator"

/** Shared state of the controllers. The caller fills and owns every member. */
typedef struct op_reconciler {
    op_kube_t *kube;           /* client of threads without op_reconcile_bind_client */
    op_render_config_t render; /* the operator's flags */
    op_informer_t *cluster_streams, *streams, *processors;
    op_informer_t *statefulsets; /* owned StatefulSets (OP_CHILD_SELECTOR); may be NULL */
    op_queue_t *queue;
    json_t *applied;     /* Processor key -> what was last applied (op_reconcile.c); NULL: always
                            apply. Created (json_object()) and freed by the caller. */
    bool auto_provision; /* Streams without a ClusterStream get one (weir) */
    const char *credentials_namespace; /* where ClusterStream credentials Secrets live */
    int topic_timeout_ms;              /* CreateTopics/DeleteTopics; 0 = 5000 */
    int probe_timeout_ms;              /* TCP probe of kafka/rabbitmq URLs; 0 = 2000 */
    atomic_ulong reconciles, failures;
} op_reconciler_t;

/**
 * Reconciles queue key `key` ("clusterstreams//<name>", "streams/<ns>/<name>"
 * or "processors/<ns>/<name>"). Returns 0 when done (`*requeue_after_ms` > 0
 * asks for a plain delayed re-check) or -1 when it failed and should be
 * retried with the key's backoff.
 */
int op_reconcile_key(op_reconciler_t *r, const char *key, uint64_t *requeue_after_ms);

/** Informer handler: queues the object's key (unless only its status or
 * metadata changed: the generation is the same as in `old`) and the keys
 * that depend on it (Streams of a ClusterStream, Processors of a Stream's
 * namespace); for an owned StatefulSet, its owner's key when it appeared,
 * went, or its readiness or generation changed. `arg` is the op_reconciler_t. */
void op_reconcile_on_event(op_informer_t *inf, op_kube_event_t type, const json_t *old,
                           const json_t *obj, void *arg);

/** Makes the calling thread's reconciles use client `k` (op_kube clients are
 * per thread; each reconcile worker binds its own). NULL: back to r->kube. */
void op_reconcile_bind_client(op_kube_t *k);

/** Informer transform of the custom resources: drops metadata.managedFields,
 * resourceVersion, creationTimestamp and kubectl's last-applied annotation,
 * which no controller reads. */
void op_reconcile_trim(json_t *obj);

/** Informer transform of owned StatefulSets: keeps only metadata name,
 * namespace, generation and the controller ownerReference (kind, name),
 * spec.replicas and status readyReplicas and observedGeneration. */
void op_reconcile_trim_statefulset(json_t *obj);

/** Queues every cached object (leadership gained, periodic resync). */
void op_reconcile_enqueue_all(op_reconciler_t *r);

/**
 * Builds the Ready condition for `obj` (borrowed): keeps the previous
 * lastTransitionTime when the status is unchanged, else uses `now`
 * (RFC 3339). Returns a new reference. Exposed for the unit test.
 */
json_t *op_reconcile_ready_condition(const json_t *obj, const char *status, const char *reason,
                                     const char *message, const char *now);

#endif
