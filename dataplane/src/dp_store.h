/* SPDX-License-Identifier: Apache-2.0 */
/* dp_store: the store role of weir-dataplane. A durable, partitioned log that
 * speaks the Kafka wire protocol, run by W worker threads (one io_uring ring
 * each). This header is the process-level API used by main.c; the worker,
 * connection and request internals live in dp_srv.h. */
#ifndef DP_STORE_H
#define DP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_log.h"

/** Store configuration; see dp_store_config_defaults for the defaults. */
typedef struct dp_store_config {
    const char *data_dir;        /**< partition directories and __topics/ */
    const char *advertised_host; /**< this replica's host in Metadata */
    const char *bind_host;       /**< listener address, NULL = all */
    const char *pod_name;        /**< StatefulSet pod name (peer host names), or NULL */
    int port;                    /**< Kafka listener */
    int http_port;               /**< metrics/health, 0 = off */
    int workers;                 /**< worker threads, >= 1 */
    int replica_index;           /**< this pod's ordinal */
    int replicas;                /**< store pods sharing partitions */
    int32_t default_partitions;  /**< num.partitions for auto-created topics (1) */
    bool auto_create_topics;     /**< auto.create.topics.enable (true) */
    dp_log_config_t log;         /**< per-partition log limits and policies */
    size_t worker_memory_bytes;  /**< request/response buffers per worker (512 MiB) */
    int32_t max_request_bytes;   /**< larger frames close the connection (100 MiB) */
    uint32_t conns_max;          /**< connections per worker (4096) */
    uint32_t inflight_max;       /**< pipelined requests per connection (64) */
    uint32_t fetch_wait_max_ms;  /**< cap on a Fetch's max wait (30000) */
    uint32_t producers_max;      /**< idempotent producers tracked per partition (1024) */
    uint32_t retention_check_ms; /**< retention pass interval (300000) */
    bool sqpoll;                 /**< IORING_SETUP_SQPOLL rings */
} dp_store_config_t;

/** Fills cfg with defaults (port 9092, one worker, /var/lib/weir/data). */
void dp_store_config_defaults(dp_store_config_t *cfg);

typedef struct dp_store dp_store_t;

/**
 * Opens the catalog and every local partition (running recovery), binds the
 * listeners and starts the workers. Returns 0 or -errno with a message in
 * err. Recovery problems (a corrupt non-tail segment) fail the start.
 */
int dp_store_start(dp_store_t **out, const dp_store_config_t *cfg, char *err, size_t errlen);

/** The bound Kafka port (useful with port 0). */
int dp_store_port(const dp_store_t *st);

/**
 * Stops accepting, lets in-flight requests finish, flushes and closes every
 * log, joins the workers and frees everything. Returns 0, or -EIO when a
 * worker reported a failure (e.g. a log that could not be synced).
 */
int dp_store_stop(dp_store_t *st);

#endif
