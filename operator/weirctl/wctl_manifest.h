/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_manifest: collects the ClusterStream, Stream and Processor documents
 * of a set of YAML files (what a user would `kubectl apply`) into one set,
 * remembering which file and document each came from. Pure apart from
 * reading the files. Design: docs/internals/weirctl.md. */
#ifndef WCTL_MANIFEST_H
#define WCTL_MANIFEST_H

#include <jansson.h>
#include <stddef.h>

/** Weir's API group/version; manifests are normalized to it. */
#define WCTL_API_WEIR "streaming.weir.dev/v1alpha1"
/** streaming-runtimes' group/version, accepted so unported manifests run. */
#define WCTL_API_SR "streaming.tanzu.vmware.com/v1alpha1"
/** Most documents (of every file together) weirctl reads. */
#define WCTL_MANIFEST_DOCS_MAX 4096

/**
 * The collected manifests. Every array holds objects as read (apiVersion
 * normalized to WCTL_API_WEIR, namespace defaulted to "default" for
 * namespaced kinds, a synthetic metadata.uid when absent); `origins` maps
 * "Kind/namespace/name" to "FILE: document N" for error messages; `skipped`
 * lists the "FILE: document N: Kind apiVersion" of documents of other kinds.
 */
typedef struct wctl_manifest {
    json_t *cluster_streams; /* array */
    json_t *streams;         /* array */
    json_t *processors;      /* array */
    json_t *origins;         /* object */
    json_t *skipped;         /* array of strings */
    size_t docs;             /* documents read, every kind */
} wctl_manifest_t;

/** Initializes an empty set. Returns 0 or -ENOMEM. */
int wctl_manifest_init(wctl_manifest_t *m);

/** Releases everything `m` holds. Safe on a zeroed struct. */
void wctl_manifest_dispose(wctl_manifest_t *m);

/**
 * Parses `len` bytes of YAML (one or more documents) named `file` and adds
 * its documents. Returns 0, or -EINVAL with "FILE: document N: message"
 * (or "FILE: line:column: message" for a YAML error) in `err`, -ENOMEM.
 * On error nothing of this buffer is added.
 */
int wctl_manifest_add_buffer(wctl_manifest_t *m, const char *file, const char *buf, size_t len,
                             char *err, size_t errlen);

/**
 * Adds a file, or every *.yaml, *.yml and *.json file of a directory (not
 * recursive, in name order). Returns 0, -ENOENT/-EIO/-EINVAL with the detail
 * in `err`, -ENOMEM. A directory with no manifest file is -ENOENT.
 */
int wctl_manifest_add_path(wctl_manifest_t *m, const char *path, char *err, size_t errlen);

/**
 * The origin ("FILE: document N") of object `obj` of kind `kind`, or
 * "(unknown)". Borrowed from `m`.
 */
const char *wctl_manifest_origin(const wctl_manifest_t *m, const char *kind, const json_t *obj);

/**
 * The dependencies object op_render_processor expects:
 * {"streams": [...], "clusterStreams": [...]}, new reference, with a
 * ClusterStream (protocol weir) added for each name a Stream refers to
 * that no manifest defines (spec.storage.clusterStream, else
 * "<stream>-cluster-stream"), as the operator would auto-provision it.
 * NULL on allocation failure.
 */
json_t *wctl_manifest_deps(const wctl_manifest_t *m);

#endif
