/* SPDX-License-Identifier: Apache-2.0 */
/* weir-dataplane configuration: defaults, then WEIR_* environment variables,
 * then command-line flags (which win). See docs/architecture.md section 5. */
#ifndef DP_CONFIG_H
#define DP_CONFIG_H

#include <stddef.h>

/** The role a weir-dataplane process plays. */
typedef enum {
    DP_ROLE_NONE = 0,
    DP_ROLE_STORE,
    DP_ROLE_PROCESSOR,
} dp_role_t;

/** The store's log flush policy as given by --flush. */
typedef enum {
    DP_CONFIG_FLUSH_DEFAULT = 0, /**< not given: the store's default (every) */
    DP_CONFIG_FLUSH_EVERY,
    DP_CONFIG_FLUSH_INTERVAL, /**< flush_value is milliseconds */
    DP_CONFIG_FLUSH_BYTES,    /**< flush_value is bytes */
} dp_config_flush_t;

/** Process configuration; strings point into argv/environ or static storage. */
typedef struct dp_config {
    dp_role_t role;
    const char *spec_path;       /**< processor: pipeline spec file */
    const char *data_dir;        /**< store data / processor checkpoints root */
    const char *pod_name;        /**< StatefulSet pod name, for the ordinal */
    const char *advertised_host; /**< host announced in Metadata */
    int replica_index;           /**< from the pod name's ordinal suffix */
    int replicas;                /**< replica count for placement */
    int kafka_port;              /**< store listener */
    int http_port;               /**< metrics and health; 0 disables */
    int http_port_set;           /**< 1 when --http-port / WEIR_HTTP_PORT was given */
    const char *checkpoint_dir;  /**< processor: --checkpoint-dir (overrides the spec) */
    int workers;                 /**< 0 = one per CPU */
    /* store tuning; 0 / NULL keep the store's defaults */
    long long segment_bytes;   /**< --segment-bytes */
    dp_config_flush_t flush;   /**< --flush every | interval:MS | bytes:N */
    long long flush_value;     /**< MS or N of --flush */
    long long retention_ms;    /**< --retention-ms (-1 forever; 0 = default) */
    long long retention_bytes; /**< --retention-bytes (-1 unbounded; 0 = default) */
    int default_partitions;    /**< --default-partitions */
    int auto_create;           /**< --auto-create-topics true|false (-1 default) */
    int memory_mb;             /**< --worker-memory-mb */
    int sqpoll;                /**< --sqpoll true: SQPOLL rings (0 off) */
} dp_config_t;

/** Fills cfg with defaults (9092, 9400, /var/lib/weir, 1 replica). */
void dp_config_defaults(dp_config_t *cfg);

/**
 * Applies environment variables from `env` (a NULL-terminated environ-style
 * array) to cfg. Returns 0 or -EINVAL with a message in err.
 */
int dp_config_apply_env(dp_config_t *cfg, char *const *env, char *err, size_t errlen);

/**
 * Applies command-line flags (argv[1..argc-1]). Returns 0, -EINVAL with a
 * message in err, or 1 when --help was asked for.
 */
int dp_config_apply_args(dp_config_t *cfg, int argc, char **argv, char *err, size_t errlen);

/**
 * Parses the ordinal suffix of a StatefulSet pod name ("weir-store-3" -> 3).
 * Returns the ordinal, or -EINVAL when the name has no numeric suffix.
 */
int dp_config_pod_ordinal(const char *pod_name);

/** Parses "store" or "processor". */
int dp_config_parse_role(const char *s, dp_role_t *out);

/** The flag summary printed by --help. */
extern const char dp_config_usage[];

#endif
