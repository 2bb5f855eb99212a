/* SPDX-License-Identifier: Apache-2.0 */
/* dp_http: the dataplane's metrics and health endpoint (port 9400): a small
 * libwebsockets HTTP/1.1 server on its own thread serving GET /metrics,
 * /healthz and /readyz. See docs/internals/metrics-http.md. */
#ifndef DP_HTTP_H
#define DP_HTTP_H

#include <stddef.h>

#include "dp_metrics.h"

/** Most file descriptors the server's lws context tracks (its listener, its
 * cancel pipe and the open connections): probes and scrapes need few, lws
 * sizes its tables by this instead of the process fd limit (~16 B each),
 * and stops accepting at the limit, so it is high enough that idle clients
 * cannot crowd out the kubelet's probes before lws times them out. */
#define DP_HTTP_MAX_FDS 512

/** A running server. Opaque; dp_http_start creates it, dp_http_stop frees it. */
typedef struct dp_http dp_http_t;

/**
 * What the server asks the process. Every callback runs on the HTTP thread,
 * one request at a time, so it must only read state that is safe to read
 * from there (dp_metrics atomics, or anything under the caller's own lock).
 * The struct is copied at start; `ctx` is borrowed until dp_http_stop.
 */
typedef struct dp_http_handlers {
    /**
     * Renders the /metrics body (Prometheus text) into `out`, which is empty
     * and owned by the server. Returns 0, or -errno for a 500 response.
     * NULL serves an empty page.
     */
    int (*render)(dp_mbuf_t *out, void *ctx);
    /**
     * Returns nonzero when the process is ready for traffic (/readyz 200).
     * Otherwise it may write a NUL-terminated reason into `reason` (capacity
     * `reasonlen`, pre-filled with "not ready"), served with a 503. NULL
     * means always ready.
     */
    int (*ready)(char *reason, size_t reasonlen, void *ctx);
    void *ctx; /**< passed to both callbacks */
} dp_http_handlers_t;

/**
 * Starts listening on `bind_addr` (an IPv4 or IPv6 literal; NULL, "", "0.0.0.0"
 * or "::" for every interface, dual-stack) and `port` (0 picks an ephemeral
 * port, see dp_http_port), and starts the HTTP thread. Returns 0 once the
 * socket is listening and stores a new server in `*out`. Otherwise returns
 * -EINVAL (bad port, or not an IP literal), -EADDRNOTAVAIL (not a local
 * address), -EADDRINUSE, or another -errno (-EIO when libwebsockets gives no
 * reason), with a message in `err` (may be NULL); no callback is then called.
 * Sets the libwebsockets log level (process-wide) to errors only, routed to
 * wc_log with component "http".
 */
int dp_http_start(dp_http_t **out, const char *bind_addr, int port, const dp_http_handlers_t *h,
                  char *err, size_t errlen);

/** The port the server listens on (the kernel's choice when started with 0). */
int dp_http_port(const dp_http_t *h);

/**
 * Stops the thread (open connections are closed, in-flight responses cut
 * short), joins it and frees everything. After it returns no callback runs.
 * Never call it from a handler (it would join its own thread). NULL is a no-op.
 */
void dp_http_stop(dp_http_t *h);

#endif
