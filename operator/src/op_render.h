/* SPDX-License-Identifier: Apache-2.0 */
/* op_render: pure renderers. They turn a custom resource (ClusterStream,
 * Processor) plus its already-resolved dependencies into the desired child
 * objects (StatefulSet, Service, ConfigMap), the pipeline spec and the status
 * fields to publish. No I/O, no clock, no cluster: the reconciler and
 * `weirctl run`/`weirctl render` call the same functions, and the unit test
 * drives them from tests/data/render/. Design: docs/internals/operator-render.md. */
#ifndef OP_RENDER_H
#define OP_RENDER_H

#include <jansson.h>
#include <stddef.h>

/* ---------------------------------------------------------------- errors -- */

/**
 * Why a render failed. Each value has one condition reason
 * (op_render_err_reason) that the reconciler writes into the Ready=False
 * condition; the human detail goes to the caller's `err` buffer.
 */
typedef enum {
    OP_RENDER_OK = 0,
    OP_RENDER_ERR_INVALID_SPEC,      /* "InvalidSpec": the CR (or what it renders to) is invalid;
                                        retry only when its spec changes */
    OP_RENDER_ERR_STREAM_NOT_FOUND,  /* "StreamNotFound": an input/output/dead-letter Stream is
                                        missing; retry when Streams change */
    OP_RENDER_ERR_CLUSTER_NOT_FOUND, /* "ClusterStreamNotFound": a Stream's ClusterStream is
                                        missing (the reconciler may auto-provision it) */
    OP_RENDER_ERR_PROTOCOL_MISMATCH, /* "ProtocolMismatch": Stream vs ClusterStream protocol */
    OP_RENDER_ERR_UNSUPPORTED,       /* "NotSupported": valid for the API, not executable by this
                                        release (FSQL, an SRP on rabbitmq) */
    OP_RENDER_ERR_NOMEM,             /* "InternalError": allocation failed; retry with backoff */
} op_render_err_t;

/** The condition reason of `e` (UpperCamelCase, "" for OP_RENDER_OK). */
const char *op_render_err_reason(op_render_err_t e);

/* -------------------------------------------------------- configuration -- */

/**
 * The operator's own settings that end up in rendered objects (Helm values
 * passed to weir-operator as flags). All strings and JSON values are borrowed
 * for the duration of a call. Zero/NULL fields take the defaults shown.
 */
typedef struct op_render_config {
    const char *dataplane_image;       /* "weir-dataplane:latest" */
    const char *image_pull_policy;     /* NULL: omitted (the cluster default) */
    const char *store_namespace;       /* namespace of weir store StatefulSets: "weir-system";
                                          a ClusterStream's storage.attributes.namespace wins */
    const char *cluster_domain;        /* NULL: advertised hosts end in ".svc"; else
                                          ".svc.<domain>" */
    const json_t *store_resources;     /* store container resources; NULL: built-in defaults */
    const json_t *processor_resources; /* processor container resources; NULL: defaults */
    const json_t *seccomp_profile;     /* pod seccompProfile; NULL: omitted (io_uring is refused
                                          by the RuntimeDefault profiles of containerd/CRI-O) */
} op_render_config_t;

/* ---------------------------------------------------------------- output -- */

/** What a render produced. All members are new references owned by the struct. */
typedef struct op_render_out {
    json_t *objects;  /* array of complete child objects, in apply order (ConfigMap first) */
    json_t *status;   /* status fields besides conditions (e.g. storageAddress), or NULL */
    json_t *pipeline; /* Processor SRP: the pipeline spec (also inside the ConfigMap), or NULL */
} op_render_out_t;

/** Releases what `out` holds and zeroes it. Safe on a zeroed struct. */
void op_render_out_dispose(op_render_out_t *out);

/* ------------------------------------------------------------- renderers -- */

/**
 * Resolved dependencies of a Processor, as a JSON object (borrowed):
 *
 *   { "streams":        [ Stream objects of the Processor's namespace ],
 *     "clusterStreams": [ ClusterStream objects ] }
 *
 * Objects are as read from the API (apiVersion, kind, metadata, spec); extra
 * ones are ignored. Streams are matched by metadata.name (and namespace when
 * present), ClusterStreams by metadata.name.
 */

/**
 * Renders a ClusterStream (`cs`, borrowed). Protocol weir: a store
 * StatefulSet and its headless Service in out->objects; every protocol:
 * out->status = {"storageAddress": ..., "binding"?: ...}. On error nothing is
 * left in `out` and `err` holds the detail.
 */
op_render_err_t op_render_cluster_stream(const op_render_config_t *cfg, const json_t *cs,
                                         op_render_out_t *out, char *err, size_t errlen);

/**
 * The address clients use for ClusterStream `cs` (borrowed): a new reference
 * to {"url", "protocol", "protocolVersion", "variables": {"brokers", "host",
 * "port"}} (the status.storageAddress.server.production object), computed
 * from the spec alone so a dependent can be rendered before the store is up.
 */
op_render_err_t op_render_cluster_address(const op_render_config_t *cfg, const json_t *cs,
                                          json_t **addr, char *err, size_t errlen);

/**
 * Renders a Processor (`proc`, borrowed) against `deps` (borrowed, shape
 * above). SRP: ConfigMap {pipeline.json}, headless Service and StatefulSet
 * (dataplane container + the user's containers), out->pipeline set. SCS: the
 * user's containers with the Spring Cloud Stream binder environment,
 * headless Service and StatefulSet. FSQL: OP_RENDER_ERR_UNSUPPORTED.
 */
op_render_err_t op_render_processor(const op_render_config_t *cfg, const json_t *proc,
                                    const json_t *deps, op_render_out_t *out, char *err,
                                    size_t errlen);

/**
 * Only the pipeline spec of an SRP Processor (what weirctl run executes),
 * validated with wc_spec_validate. `*spec`: new reference on success.
 */
op_render_err_t op_render_pipeline(const op_render_config_t *cfg, const json_t *proc,
                                   const json_t *deps, json_t **spec, char *err, size_t errlen);

/* --------------------------------------------------------------- helpers -- */

/**
 * The credentials Secret of ClusterStream `cs` (borrowed): its
 * spec.storage.credentialsSecret, else spec.storage.server.binding, else
 * NULL. Renderers put it into the store pods (and a Stream's spec.binding
 * into its Processors' pods) as environment from secretKeyRef, never as
 * values: WEIR_KAFKA_SECURITY_PROTOCOL (key "security.protocol"),
 * WEIR_KAFKA_SASL_MECHANISM ("sasl.mechanism"), WEIR_KAFKA_SASL_USERNAME
 * ("username"), WEIR_KAFKA_SASL_PASSWORD ("password"), WEIR_KAFKA_SSL_CA_PEM
 * ("ca.crt"), each optional.
 */
const char *op_render_credentials_secret(const json_t *cs);

/**
 * Hash of a JSON value, independent of key order: FNV-1a 64 over the compact,
 * key-sorted serialization, as 16 lowercase hex digits into `hex`. Used for
 * the weir.dev/config-hash pod annotation. Returns -ENOMEM or 0.
 */
int op_render_hash(const json_t *v, char hex[17]);

/**
 * Parses YAML (one or more documents, "---"-separated) into a new JSON array
 * of documents; empty documents are skipped. Plain scalars follow the YAML
 * 1.2 core schema (null, integers, floats), except booleans, which follow
 * YAML 1.1 as kubectl does (yes/no/on/off/y/n too); quoted and block
 * scalars stay strings. Anchors and aliases are supported, duplicate keys
 * and non-scalar keys are refused, nesting is limited to 64 levels.
 * Returns 0 or -EINVAL/-ENOMEM with "line:column: message" in err.
 */
int op_render_yaml_load(const char *buf, size_t len, json_t **docs, char *err, size_t errlen);

/**
 * Parses a duration: an integer (milliseconds) or a sequence of <number><unit>
 * with units ms, s, m, h, d ("5s", "1m30s", "250ms"). Returns 0 or -EINVAL.
 */
int op_render_parse_duration_ms(const char *s, long long *ms);

/**
 * Parses a Kubernetes quantity of bytes ("256Mi", "1G", "1048576", "1e6")
 * into bytes. Returns 0 or -EINVAL (fractions of a byte, negative or too big).
 */
int op_render_parse_bytes(const char *s, long long *bytes);

#endif
