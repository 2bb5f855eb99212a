/* SPDX-License-Identifier: Apache-2.0 */
/* dp_udf: the UDF channel's client core. gRPC calls to MessagingService
 * (unary requestReply, or records pipelined on long-lived biStream streams)
 * over HTTP/2 (nghttp2, memory I/O only) driven from a dp_ring loop; a few
 * connections, many streams each, deadlines, reconnect, in-flight limit.
 * Design: docs/internals/udf.md. */
#ifndef DP_UDF_H
#define DP_UDF_H

#include <stddef.h>
#include <stdint.h>

#include "dp_ring.h"
#include "dp_val.h"

/** gRPC status codes (grpc/doc/statuscodes.md). */
enum {
    DP_UDF_OK = 0,
    DP_UDF_CANCELLED = 1,
    DP_UDF_UNKNOWN = 2,
    DP_UDF_INVALID_ARGUMENT = 3,
    DP_UDF_DEADLINE_EXCEEDED = 4,
    DP_UDF_NOT_FOUND = 5,
    DP_UDF_ALREADY_EXISTS = 6,
    DP_UDF_PERMISSION_DENIED = 7,
    DP_UDF_RESOURCE_EXHAUSTED = 8,
    DP_UDF_FAILED_PRECONDITION = 9,
    DP_UDF_ABORTED = 10,
    DP_UDF_OUT_OF_RANGE = 11,
    DP_UDF_UNIMPLEMENTED = 12,
    DP_UDF_INTERNAL = 13,
    DP_UDF_UNAVAILABLE = 14,
    DP_UDF_DATA_LOSS = 15,
    DP_UDF_UNAUTHENTICATED = 16,
};

/** The service every UDF implements, and the unary method's HTTP/2 :path. */
#define DP_UDF_SERVICE "org.springframework.cloud.function.grpc.MessagingService"
#define DP_UDF_PATH_REQUEST_REPLY "/" DP_UDF_SERVICE "/requestReply"
/** The bidirectional streaming method's HTTP/2 :path. */
#define DP_UDF_PATH_BI_STREAM "/" DP_UDF_SERVICE "/biStream"

/** Client configuration; a zero field takes the default in brackets. */
typedef struct dp_udf_cfg {
    unsigned connections;          /**< HTTP/2 connections [1], at most 64 */
    unsigned max_in_flight;        /**< calls outstanding, all connections [64] */
    uint32_t timeout_ms;           /**< per-call deadline, sent as grpc-timeout [5000] */
    uint32_t reconnect_min_ms;     /**< first reconnect backoff [100] */
    uint32_t reconnect_max_ms;     /**< backoff cap [5000] */
    uint32_t max_message_bytes;    /**< request or reply message limit [4 MiB] */
    uint32_t stream_window_bytes;  /**< HTTP/2 per-stream receive window [1 MiB] */
    uint32_t session_window_bytes; /**< HTTP/2 connection receive window [16 MiB] */
    /** Call mode: 0 unary requestReply (one stream per call), 1 biStream
     * (calls pipelined on long-lived streams, one reply per request, in order). */
    unsigned bistream;
    unsigned streams; /**< biStream streams per connection [1], at most 64 */
} dp_udf_cfg_t;

/** A GrpcMessage to send. Borrowed for the duration of dp_udf_call only. */
typedef struct dp_udf_msg {
    const char *payload;  /**< `payload` bytes (NULL when payload_len is 0) */
    const dp_hdr_t *hdrs; /**< the `headers` map, in order; a NULL value is sent as "" */
    uint32_t payload_len;
    uint32_t nhdrs;
} dp_udf_msg_t;

/**
 * A call's outcome. Everything is borrowed for the duration of the completion
 * callback. On OK, payload/hdrs are the reply GrpcMessage (header strings are
 * not NUL-terminated; duplicate keys are passed through in wire order). On
 * failure, payload is NULL and nhdrs is 0.
 */
typedef struct dp_udf_reply {
    int status;           /**< DP_UDF_* gRPC status */
    const char *message;  /**< NUL-terminated grpc-message or local detail ("" if none) */
    const char *payload;  /**< reply payload (may be NULL when payload_len is 0) */
    const dp_hdr_t *hdrs; /**< reply headers */
    uint32_t payload_len;
    uint32_t nhdrs;
} dp_udf_reply_t;

/**
 * Completion callback, called exactly once per accepted call, from a dp_ring
 * callback (never from inside dp_udf_call). It may call dp_udf_call again.
 */
typedef void (*dp_udf_cb)(void *ctx, const dp_udf_reply_t *reply);

typedef struct dp_udf_client dp_udf_client_t;

/** Counters, for metrics and tests. Monotonic except in_flight and conns_ready. */
typedef struct dp_udf_stats {
    uint64_t calls;       /**< calls accepted */
    uint64_t ok;          /**< completed OK */
    uint64_t failed;      /**< completed with any other status */
    uint64_t deadline;    /**< of which DEADLINE_EXCEEDED */
    uint64_t connects;    /**< TCP connects that succeeded */
    uint64_t conn_lost;   /**< connections lost or refused */
    uint64_t streams;     /**< biStream streams opened */
    uint64_t late;        /**< biStream replies dropped: their call had expired */
    unsigned in_flight;   /**< calls accepted and not yet completed */
    unsigned conns_ready; /**< connections currently connected */
} dp_udf_stats_t;

/**
 * Creates a client for host:port on `ring` (borrowed; the client must be used
 * from the ring's thread only) and starts connecting. `host` is resolved once,
 * here (numeric addresses and /etc/hosts names are instant). `cfg` may be
 * NULL for all defaults. Returns 0 and the new client in *out, or -errno
 * (-EINVAL for bad config, -ENOENT if the host does not resolve, -ENOMEM).
 */
int dp_udf_client_new(dp_ring_t *ring, const char *host, uint16_t port, const dp_udf_cfg_t *cfg,
                      dp_udf_client_t **out);

/**
 * Starts a call: a requestReply stream, or in biStream mode one message on
 * the least loaded open biStream stream (opened on demand). The request is encoded (copied) before
 * this returns. Returns 0 when the call was accepted (`cb` will run exactly once), or, with `cb`
 * never called: -EBUSY when max_in_flight calls are outstanding (backpressure: retry after a
 * completion), -EMSGSIZE when the encoded request exceeds max_message_bytes, -ESHUTDOWN after
 * dp_udf_client_close. While every connection is waiting to reconnect, calls
 * are accepted and fail fast with UNAVAILABLE.
 */
int dp_udf_call(dp_udf_client_t *client, const dp_udf_msg_t *req, dp_udf_cb cb, void *ctx);

/**
 * Closes the client: outstanding calls complete with CANCELLED, connections
 * are shut down, and once every ring operation of the client has completed
 * the memory is freed and `close_cb` (optional) runs. Keep driving the ring
 * until then.
 */
void dp_udf_client_close(dp_udf_client_t *client, void (*close_cb)(void *ctx), void *ctx);

/** Current counters. */
void dp_udf_client_stats(const dp_udf_client_t *client, dp_udf_stats_t *out);

/** Name of a gRPC status ("OK", "UNAVAILABLE", ...; "?" if out of range). */
const char *dp_udf_status_str(int status);

/**
 * Whether a failed call may be retried by the caller (UNAVAILABLE and
 * RESOURCE_EXHAUSTED). Retries, backoff and budgets are the caller's: this
 * module never resends a request.
 */
int dp_udf_status_retryable(int status);

#endif
