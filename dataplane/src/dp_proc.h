/* SPDX-License-Identifier: Apache-2.0 */
/* dp_proc: the processor role's runtime. It loads a pipeline spec, compiles
 * it (dp_pipe), restores the newest checkpoint (dp_ckpt), assigns the input
 * partitions itself (librdkafka, no consumer group), feeds records to the
 * engine from one loop thread, produces its outputs, takes periodic
 * checkpoints and serves metrics and health (dp_http). Design:
 * docs/internals/processor.md. */
#ifndef DP_PROC_H
#define DP_PROC_H

/** Exit codes of dp_proc_run (sysexits where one fits). */
enum {
    DP_PROC_EXIT_OK = 0,
    DP_PROC_EXIT_FAIL = 1,         /**< runtime failure (fatal producer error, I/O) */
    DP_PROC_EXIT_DATAERR = 65,     /**< invalid spec, or a checkpoint that does not fit it */
    DP_PROC_EXIT_UNAVAILABLE = 69, /**< topics not found, or a UDF not reachable, in time */
};

/** How to run. Strings are borrowed for the duration of dp_proc_run. */
typedef struct dp_proc_config {
    const char *spec_path;      /**< pipeline spec file (required) */
    const char *checkpoint_dir; /**< NULL: the spec's checkpoint.dir, else data_dir/checkpoints */
    const char *data_dir;       /**< root for the default checkpoint directory */
    const char *pod_name;       /**< NULL, or a StatefulSet pod name whose ordinal is the replica */
    int replica_index;          /**< the pod name's ordinal (when pod_name is set) */
    int replicas;               /**< replica count used when the spec has no `replica` */
    int http_port;              /**< metrics/health port; 0 disables; -1: spec http.port or 9400 */
    const char *bind_host;      /**< HTTP bind address; NULL: every interface */
} dp_proc_config_t;

/** Fills cfg with defaults (no spec, http_port -1, data_dir /var/lib/weir). */
void dp_proc_config_defaults(dp_proc_config_t *cfg);

/**
 * Runs the processor until SIGTERM or SIGINT (blocked in the calling thread
 * and every thread it starts, then read through a signalfd), then stops
 * consuming, flushes the outputs, writes a final checkpoint and returns 0.
 * Returns a DP_PROC_EXIT_* code; every failure is logged first.
 */
int dp_proc_run(const dp_proc_config_t *cfg);

#endif
