/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_plan: turns collected manifests into what `weirctl run` starts: the
 * topics to create, one pipeline spec per Processor replica (rendered by
 * the operator's op_render_pipeline, then pointed at the local store and at
 * the replica's own UDF port) and the local command of each UDF container.
 * Pure: no I/O, no clock. Design: docs/internals/weirctl.md. */
#ifndef WCTL_PLAN_H
#define WCTL_PLAN_H

#include "wctl_manifest.h"

#include <jansson.h>
#include <stddef.h>

/** Processor annotation prefix naming a UDF container's local command. */
#define WCTL_ANNOTATION_COMMAND "local.weir.dev/command."
/** Most processes (replicas, UDFs) one plan may start. */
#define WCTL_PLAN_PROCESSES_MAX 256

/** Inputs of wctl_plan_build; strings and JSON borrowed. */
typedef struct wctl_plan_opts {
    const char *bootstrap; /* the local store ("127.0.0.1:20092") */
    int udf_port_base;     /* first port handed to UDF commands */
    int udf_port_max;      /* last one (inclusive) */
    const json_t *udf_map; /* --udf-map file: {"containers": {name: cmd}, "images": {img: cmd}},
                              or NULL */
} wctl_plan_opts_t;

/**
 * Builds the plan, a new reference:
 *
 *   {"topics": [{"topic", "partitions", "stream"}],
 *    "processors": [{"name", "namespace", "replicas", "origin", "outputs": [topic...],
 *                    "replicas_plan": [{"index", "podName", "spec",
 *                                       "udfs": [{"container", "image", "command",
 *                                                 "port"}]}]}]}
 *
 * Topics: one per Stream (spec.name; partitions as the renderer counts
 * them: spec.partitionCount, else 5 for a keyed Stream, else 1). Returns 0,
 * or -EINVAL with "FILE: document N: Processor NAME: reason" in `err`
 * (render errors carry their condition reason), -ENOMEM.
 */
int wctl_plan_build(const wctl_manifest_t *m, const wctl_plan_opts_t *opts, json_t **plan,
                    char *err, size_t errlen);

/**
 * The local command of UDF container `container` (image `image`, may be
 * NULL) of Processor `proc`: the --udf-map entry for the container name,
 * else for the image, else the Processor annotation
 * local.weir.dev/command.<container>. Returns a borrowed string or NULL.
 */
const char *wctl_plan_udf_command(const json_t *proc, const char *container, const char *image,
                                  const json_t *udf_map);

/**
 * Expands a UDF command for one replica into `out`: "{port}" becomes
 * `port`, "{replica}" the replica index, and the UDF's declared port
 * (`declared`, e.g. 55554 from "--port 55554") where it appears as a
 * whole number becomes `port` too. Returns 0, or -ENOSPC.
 */
int wctl_plan_expand_command(const char *cmd, int declared, int port, int replica, char *out,
                             size_t outlen);

/**
 * Points a rendered pipeline spec (`spec`, modified in place) at the local
 * store: every inputs[].cluster, outputs[].cluster and deadLetter.cluster
 * gets bootstrap `bootstrap`; replica.index = `index`; udfs[] endpoints
 * 127.0.0.1:`udf_ports[i]` (`nports` entries, one per udfs[] entry).
 * Returns 0, -EINVAL (nports does not match), -ENOMEM.
 */
int wctl_plan_rewrite_spec(json_t *spec, const char *bootstrap, int index, const int *udf_ports,
                           size_t nports);

#endif
