/* SPDX-License-Identifier: Apache-2.0 */
/* dp_http: libwebsockets HTTP/1.1 server for /metrics, /healthz and /readyz.
 * The context is created (and the socket bound) on the caller's thread, then
 * one thread runs lws_service until dp_http_stop wakes it with
 * lws_cancel_service. Responses are built whole, then written in chunks from
 * the writeable callback so large pages never block the loop. */
#include "dp_http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wc_log.h"

/* Bytes handed to lws_write per writeable callback. Writing more at once
 * makes lws copy whatever the kernel refuses into a heap buffer. */
#define CHUNK_BYTES 16384
/* Room for a /readyz reason. */
#define REASON_BYTES 256

#define CT_TEXT "text/plain; charset=utf-8"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

struct dp_http {
    struct lws_context *ctx;
    dp_http_handlers_t h;
    pthread_t thread;
    int thread_started;
    atomic_int stop; /* set by dp_http_stop before lws_cancel_service */
    int port;
};

/* Per-transaction state; lws allocates it zeroed and frees it. */
typedef struct http_pss {
    dp_mbuf_t body;    /* the whole response body */
    size_t off;        /* bytes of body already written */
    unsigned status;   /* HTTP status of the prepared response */
    const char *ctype; /* its content type */
    int prepared;      /* a response waits for its headers (request body pending) */
    int close_after;   /* close the connection once the response is out */
    int sending;       /* headers are out; the writeable loop sends the body */
} http_pss_t;

/* Routes libwebsockets' own log lines (errors only) into the JSON log. */
static void lws_emit(int level, const char *line)
{
    char msg[512];
    size_t n;

    snprintf(msg, sizeof(msg), "%s", line);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    wc_log(level & LLL_ERR ? WC_LOG_ERROR : WC_LOG_WARN, "http", msg, "{s:s}", "source",
           "libwebsockets");
}

/* Sets the response to `status` with a fixed text body. */
static void respond_text(http_pss_t *pss, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void respond_text(http_pss_t *pss, unsigned status, const char *fmt, ...)
{
    char text[REASON_BYTES + 64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    dp_mbuf_reset(&pss->body);
    dp_mbuf_append(&pss->body, text, strlen(text));
    pss->status = status;
    pss->ctype = CT_TEXT;
}

/* Builds the response for GET `path` by asking the caller's callbacks. */
static void prepare_get(dp_http_t *h, http_pss_t *pss, const char *path)
{
    char reason[REASON_BYTES];
    int rc;

    if (strcmp(path, "/metrics") == 0) {
        dp_mbuf_reset(&pss->body);
        rc = h->h.render != NULL ? h->h.render(&pss->body, h->h.ctx) : 0;
        if (rc == 0)
            rc = pss->body.err;
        if (rc < 0) {
            respond_text(pss, HTTP_STATUS_INTERNAL_SERVER_ERROR, "render failed: %s\n",
                         strerror(-rc));
        } else {
            pss->status = HTTP_STATUS_OK;
            pss->ctype = CT_METRICS;
        }
    } else if (strcmp(path, "/healthz") == 0) {
        respond_text(pss, HTTP_STATUS_OK, "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        snprintf(reason, sizeof(reason), "not ready");
        if (h->h.ready == NULL || h->h.ready(reason, sizeof(reason), h->h.ctx)) {
            respond_text(pss, HTTP_STATUS_OK, "ok\n");
        } else {
            reason[sizeof(reason) - 1] = '\0';
            respond_text(pss, HTTP_STATUS_SERVICE_UNAVAILABLE, "%s\n", reason);
        }
    } else {
        respond_text(pss, HTTP_STATUS_NOT_FOUND, "not found\n");
    }
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

/* Writes the status line and headers, then arms the body loop. Returns 0 or
 * -1 to close the connection. */
static int send_headers(struct lws *wsi, http_pss_t *pss)
{
    unsigned char buf[LWS_PRE + 512];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    int rc = -1;

    if (pss->body.err != 0)
        goto out;
    if (lws_add_http_common_headers(wsi, pss->status, pss->ctype, pss->body.len, &p, end))
        goto out;
    if (pss->status == HTTP_STATUS_METHOD_NOT_ALLOWED && add_header(wsi, "allow:", "GET", &p, end))
        goto out;
    if (pss->close_after && add_header(wsi, "connection:", "close", &p, end))
        goto out;
    if (add_header(wsi, "cache-control:", "no-store", &p, end))
        goto out;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        goto out;
    pss->prepared = 0;
    pss->sending = 1;
    pss->off = 0;
    lws_callback_on_writable(wsi);
    rc = 0;
out:
    return rc;
}

/* Sends the next chunk of the body; on the last one ends the transaction.
 * Returns 0, or -1 to close the connection. */
static int send_body(struct lws *wsi, http_pss_t *pss)
{
    unsigned char buf[LWS_PRE + CHUNK_BYTES];
    size_t n = pss->body.len - pss->off;
    int final, rc = -1;

    if (n > CHUNK_BYTES)
        n = CHUNK_BYTES;
    final = pss->off + n == pss->body.len;
    if (n > 0) {
        /* lws_write needs LWS_PRE bytes of headroom before the data. */
        memcpy(buf + LWS_PRE, pss->body.data + pss->off, n);
        if (lws_write(wsi, buf + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
            (int)n)
            goto out;
        pss->off += n;
    }
    if (!final) {
        lws_callback_on_writable(wsi);
        rc = 0;
        goto out;
    }
    pss->sending = 0;
    dp_mbuf_dispose(&pss->body);
    if (pss->close_after)
        goto out; /* rc is -1: lws flushes what it holds, then closes */
    rc = lws_http_transaction_completed(wsi) ? -1 : 0;
out:
    return rc;
}

static int http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    dp_http_t *h = lws_context_user(lws_get_context(wsi));
    http_pss_t *pss = user;
    char *uri;
    int ulen, method;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
        if (method != LWSHUMETH_GET) {
            respond_text(pss, HTTP_STATUS_METHOD_NOT_ALLOWED, "method not allowed\n");
            /* lws keeps a body-capable request (POST, PUT, PATCH) waiting
             * for a body that may never come, so end the connection. */
            pss->close_after = 1;
            /* A request body must be read off the connection before the
             * reply, or lws would parse it as the next request. */
            if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
                pss->prepared = 1;
                return 0;
            }
            return send_headers(wsi, pss);
        }
        prepare_get(h, pss, in != NULL ? (const char *)in : "");
        return send_headers(wsi, pss);
    case LWS_CALLBACK_HTTP_BODY:
        return 0; /* ignored: only GET is served */
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (pss != NULL && pss->prepared)
            return send_headers(wsi, pss);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (pss == NULL || !pss->sending)
            return 0;
        return send_body(wsi, pss);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (pss != NULL)
            dp_mbuf_dispose(&pss->body);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"http", http_cb, sizeof(http_pss_t), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *http_main(void *arg)
{
    dp_http_t *h = arg;

    while (!atomic_load(&h->stop)) {
        /* The timeout is ignored by lws 4.x: it sleeps until the next
         * scheduled event or lws_cancel_service. */
        if (lws_service(h->ctx, 0) < 0) {
            wc_log(WC_LOG_ERROR, "http", "lws_service failed; metrics endpoint down", NULL);
            break;
        }
    }
    return NULL;
}

/* Checks that `addr:port` can be bound, with a throwaway socket: lws quietly
 * creates a vhost that never listens when its address is not (yet) local,
 * and reports a clash only through its log. `addr` is an IP literal or NULL
 * (checked as 0.0.0.0). Returns 0 or -errno. */
static int probe_bind(const char *addr, int port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    socklen_t sl;
    int fd = -1, one = 1, rc;

    memset(&ss, 0, sizeof(ss));
    if (addr == NULL || inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sl = sizeof(*sin);
    } else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*sin6);
    } else {
        rc = -EINVAL;
        goto out;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    /* As lws does, so that only a live listener counts as a clash. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    rc = bind(fd, (struct sockaddr *)&ss, sl) == 0 ? 0 : -errno;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

int dp_http_start(dp_http_t **out, const char *bind_addr, int port, const dp_http_handlers_t *hd,
                  char *err, size_t errlen)
{
    struct lws_context_creation_info info;
    struct lws_vhost *vh;
    sigset_t all, old;
    dp_http_t *h = NULL;
    int rc;

    assert(out != NULL && hd != NULL);
    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (port < 0 || port > 65535) {
        rc = -EINVAL;
        if (err != NULL)
            snprintf(err, errlen, "invalid port %d", port);
        goto out;
    }
    /* "", 0.0.0.0 and :: all mean every interface (lws binds [::] dual-stack). */
    if (bind_addr != NULL &&
        (bind_addr[0] == '\0' || strcmp(bind_addr, "0.0.0.0") == 0 || strcmp(bind_addr, "::") == 0))
        bind_addr = NULL;
    rc = probe_bind(bind_addr, port);
    if (rc < 0) {
        if (err != NULL)
            snprintf(err, errlen, "cannot listen on %s:%d: %s", bind_addr ? bind_addr : "*", port,
                     rc == -EINVAL ? "not an IP address" : strerror(-rc));
        goto out;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        rc = -ENOMEM;
        if (err != NULL)
            snprintf(err, errlen, "out of memory");
        goto out;
    }
    h->h = *hd;
    atomic_init(&h->stop, 0);
    lws_set_log_level(LLL_ERR, lws_emit);

    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.user = h;
    info.server_string = "weir";
    /* Probes and scrapes need a handful of connections. Unset, lws sizes
     * two lookup tables by the process fd limit and fills them: 320 KiB
     * resident at `ulimit -n` 20000, 16 MiB at a container's 1048576. */
    info.fd_limit_per_thread = DP_HTTP_MAX_FDS;
    h->ctx = lws_create_context(&info);
    if (h->ctx == NULL) {
        rc = -EIO;
        if (err != NULL)
            snprintf(err, errlen, "libwebsockets: cannot create context");
        goto out;
    }
    info.vhost_name = "weir";
    info.iface = bind_addr;
    info.port = port;
    info.protocols = protocols;
    errno = 0;
    vh = lws_create_vhost(h->ctx, &info);
    if (vh == NULL) {
        /* lws reports no reason; bind()'s errno usually survives. */
        rc = errno != 0 ? -errno : -EIO;
        if (err != NULL)
            snprintf(err, errlen, "cannot listen on %s:%d: %s", bind_addr ? bind_addr : "*", port,
                     strerror(-rc));
        goto out;
    }
    h->port = lws_get_vhost_listen_port(vh);
    if (h->port <= 0) {
        rc = -EADDRNOTAVAIL;
        if (err != NULL)
            snprintf(err, errlen, "libwebsockets is not listening on %s:%d",
                     bind_addr ? bind_addr : "*", port);
        goto out;
    }

    /* The HTTP thread takes no signals: they belong to the main thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&h->thread, NULL, http_main, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        if (err != NULL)
            snprintf(err, errlen, "pthread_create: %s", strerror(-rc));
        goto out;
    }
    pthread_setname_np(h->thread, "weir-http");
    h->thread_started = 1;
    *out = h;
    h = NULL;
    rc = 0;
out:
    dp_http_stop(h);
    return rc;
}

int dp_http_port(const dp_http_t *h)
{
    return h->port;
}

void dp_http_stop(dp_http_t *h)
{
    if (h == NULL)
        return;
    if (h->thread_started) {
        atomic_store(&h->stop, 1);
        lws_cancel_service(h->ctx);
        pthread_join(h->thread, NULL);
    }
    if (h->ctx != NULL)
        lws_context_destroy(h->ctx);
    free(h);
}
