/* SPDX-License-Identifier: Apache-2.0 */
/* op_kube watches: the incremental newline-delimited JSON event parser and
 * one streaming watch request (watch=1, bookmarks, timeoutSeconds) on the
 * client's watch handle. Relisting and backoff belong to the informer. */
#include "op_kube_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WATCH_LINE_MAX_DEFAULT ((size_t)16 << 20)
#define WATCH_TIMEOUT_S_DEFAULT 300
/* Slack past timeoutSeconds before the client gives up on a silent stream. */
#define WATCH_CLIENT_SLACK_S 30
/* A refused watch answers with a Status; keep that much of it. */
#define WATCH_ERROR_BODY_MAX (64u * 1024)

const char *op_kube_event_str(op_kube_event_t type)
{
    switch (type) {
    case OP_KUBE_EV_ADDED:
        return "ADDED";
    case OP_KUBE_EV_MODIFIED:
        return "MODIFIED";
    case OP_KUBE_EV_DELETED:
        return "DELETED";
    case OP_KUBE_EV_BOOKMARK:
        return "BOOKMARK";
    }
    return "UNKNOWN";
}

void op_kube_watch_parser_init(op_kube_watch_parser_t *p, size_t max_line, const char *rv,
                               op_kube_watch_cb cb, void *arg, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->max_line = max_line ? max_line : WATCH_LINE_MAX_DEFAULT;
    if (rv)
        snprintf(p->rv, sizeof(p->rv), "%s", rv);
    p->cb = cb;
    p->arg = arg;
    p->err = err;
    p->errlen = errlen;
}

void op_kube_watch_parser_dispose(op_kube_watch_parser_t *p)
{
    free(p->line);
    p->line = NULL;
    p->len = p->cap = 0;
}

/* Records the first error (sticky) with its message. */
static op_kube_err_t parser_fail(op_kube_watch_parser_t *p, op_kube_err_t e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static op_kube_err_t parser_fail(op_kube_watch_parser_t *p, op_kube_err_t e, const char *fmt, ...)
{
    va_list ap;

    if (p->result == OP_KUBE_OK) {
        p->result = e;
        if (p->err && p->errlen) {
            va_start(ap, fmt);
            vsnprintf(p->err, p->errlen, fmt, ap);
            va_end(ap);
        }
    }
    return p->result;
}

static void track_rv(op_kube_watch_parser_t *p, const json_t *obj)
{
    const char *rv = op_kube__str(json_object_get(obj, "metadata"), "resourceVersion", NULL);

    if (rv && *rv && strlen(rv) < sizeof(p->rv))
        memcpy(p->rv, rv, strlen(rv) + 1);
}

/* One complete line (no newline). Blank lines are keep-alives. */
static op_kube_err_t dispatch(op_kube_watch_parser_t *p, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *ev, *obj;
    const char *type;
    op_kube_event_t t;
    size_t i;

    for (i = 0; i < len && (line[i] == ' ' || line[i] == '\r' || line[i] == '\t'); i++)
        ;
    if (i == len)
        return OP_KUBE_OK;
    ev = json_loadb(line, len, 0, &jerr);
    if (!ev)
        return parser_fail(p, OP_KUBE_ERR_INVALID,
                           "watch: unparsable event: %s (line of %zu bytes)", jerr.text, len);
    type = op_kube__str(ev, "type", NULL);
    obj = json_object_get(ev, "object");
    if (!type || !json_is_object(obj)) {
        json_decref(ev);
        return parser_fail(p, OP_KUBE_ERR_INVALID, "watch: event without type or object");
    }
    if (strcmp(type, "ERROR") == 0) {
        /* obj is a metav1.Status: 410 Expired/Gone means relist. */
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        const char *msg = op_kube__str(obj, "message", NULL);
        op_kube_err_t e = op_kube_err_from_http(code ? (long)code : 500);

        if (e == OP_KUBE_OK)
            e = OP_KUBE_ERR_TRANSIENT;
        parser_fail(p, e, "watch: ERROR event: %s (code %ld)", msg ? msg : "(no message)",
                    (long)code);
        json_decref(ev);
        return p->result;
    }
    if (strcmp(type, "ADDED") == 0)
        t = OP_KUBE_EV_ADDED;
    else if (strcmp(type, "MODIFIED") == 0)
        t = OP_KUBE_EV_MODIFIED;
    else if (strcmp(type, "DELETED") == 0)
        t = OP_KUBE_EV_DELETED;
    else if (strcmp(type, "BOOKMARK") == 0)
        t = OP_KUBE_EV_BOOKMARK;
    else {
        parser_fail(p, OP_KUBE_ERR_INVALID, "watch: unknown event type \"%s\"", type);
        json_decref(ev);
        return p->result;
    }
    track_rv(p, obj);
    if (t == OP_KUBE_EV_BOOKMARK)
        p->bookmarks++;
    else
        p->events++;
    if (p->cb && p->cb(t, obj, p->arg) != 0)
        p->stopped = true;
    json_decref(ev);
    return OP_KUBE_OK;
}

static op_kube_err_t append(op_kube_watch_parser_t *p, const char *data, size_t n)
{
    if (p->len + n > p->max_line)
        return parser_fail(p, OP_KUBE_ERR_INVALID, "watch: event line longer than %zu bytes",
                           p->max_line);
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap : 8192;
        char *nl;

        while (cap < p->len + n)
            cap *= 2;
        if (cap > p->max_line)
            cap = p->max_line;
        nl = realloc(p->line, cap);
        if (!nl)
            return parser_fail(p, OP_KUBE_ERR_TRANSIENT, "watch: out of memory");
        p->line = nl;
        p->cap = cap;
    }
    memcpy(p->line + p->len, data, n);
    p->len += n;
    return OP_KUBE_OK;
}

op_kube_err_t op_kube_watch_parser_feed(op_kube_watch_parser_t *p, const char *data, size_t n)
{
    while (n && p->result == OP_KUBE_OK && !p->stopped) {
        const char *nl = memchr(data, '\n', n);
        size_t take;

        if (!nl)
            return append(p, data, n);
        take = (size_t)(nl - data);
        if (p->len == 0) {
            /* The whole line is in this chunk: parse it in place. */
            if (take > p->max_line)
                return parser_fail(p, OP_KUBE_ERR_INVALID,
                                   "watch: event line longer than %zu bytes", p->max_line);
            dispatch(p, data, take);
        } else {
            if (append(p, data, take) != OP_KUBE_OK)
                return p->result;
            dispatch(p, p->line, p->len);
            p->len = 0;
        }
        data += take + 1;
        n -= take + 1;
    }
    return p->result;
}

op_kube_err_t op_kube_watch_parser_finish(op_kube_watch_parser_t *p)
{
    if (p->result == OP_KUBE_OK && !p->stopped && p->len) {
        dispatch(p, p->line, p->len);
        p->len = 0;
    }
    return p->result;
}

/* ------------------------------------------------------------ the watch -- */

typedef struct {
    CURL *curl;
    op_kube_watch_parser_t *parser;
    long status; /* response code, once headers are in */
    char *ebody; /* body of a non-200 answer (a Status) */
    size_t elen;
    bool aborted; /* we stopped the transfer (parser error or callback) */
} watch_xfer_t;

static size_t watch_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    watch_xfer_t *x = userdata;
    size_t n = size * nmemb;

    if (x->status == 0)
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->status);
    if (x->status != 200) {
        size_t keep = WATCH_ERROR_BODY_MAX - x->elen;
        char *nb;

        if (n < keep)
            keep = n;
        if (keep) {
            nb = realloc(x->ebody, x->elen + keep + 1);
            if (!nb)
                return 0;
            x->ebody = nb;
            memcpy(x->ebody + x->elen, ptr, keep);
            x->elen += keep;
            x->ebody[x->elen] = '\0';
        }
        return n;
    }
    if (op_kube_watch_parser_feed(x->parser, ptr, n) != OP_KUBE_OK || x->parser->stopped) {
        x->aborted = true;
        return 0; /* ends the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

static op_kube_err_t watch_once(op_kube_t *k, const op_kube_watch_opts_t *opts,
                                op_kube_watch_parser_t *p, long *status, char *err, size_t errlen)
{
    long timeout_s = opts->timeout_s > 0 ? opts->timeout_s : WATCH_TIMEOUT_S_DEFAULT;
    watch_xfer_t x = {.curl = k->watch_curl, .parser = p};
    struct curl_slist *headers = NULL;
    char *query = NULL, *url = NULL, *esc = NULL;
    op_kube_err_t rc;
    CURLcode cc;

    *status = 0;
    /* "0" means "any version" to the server; we send nothing instead. */
    if (p->rv[0] && strcmp(p->rv, "0") != 0) {
        esc = curl_easy_escape(k->watch_curl, p->rv, 0);
        if (!esc)
            return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    }
    if (asprintf(&query, "watch=1&allowWatchBookmarks=true&timeoutSeconds=%ld%s%s%s", timeout_s,
                 esc ? "&resourceVersion=" : "", esc ? esc : "",
                 opts->send_initial_events
                     ? "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                     : "") < 0)
        query = NULL;
    curl_free(esc);
    url = query ? op_kube__url(k, opts->path, query) : NULL;
    free(query);
    if (!url)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    rc = op_kube__setup(k, k->watch_curl, url, NULL, NULL, &headers, err, errlen);
    if (rc != OP_KUBE_OK)
        goto out;
    curl_easy_setopt(k->watch_curl, CURLOPT_HTTPGET, 1L);
    /* The server closes the stream after timeoutSeconds; the client bound
     * only catches a silent, half-dead connection. */
    curl_easy_setopt(k->watch_curl, CURLOPT_TIMEOUT_MS, (timeout_s + WATCH_CLIENT_SLACK_S) * 1000L);
    curl_easy_setopt(k->watch_curl, CURLOPT_WRITEFUNCTION, watch_write);
    curl_easy_setopt(k->watch_curl, CURLOPT_WRITEDATA, &x);
    cc = curl_easy_perform(k->watch_curl);
    if (x.status == 0)
        curl_easy_getinfo(k->watch_curl, CURLINFO_RESPONSE_CODE, &x.status);
    *status = x.status;
    if (x.aborted) {
        /* The parser's error (already in err) or the callback's stop. */
        rc = p->result;
    } else if (x.status != 0 && x.status != 200) {
        rc = op_kube_err_from_response(x.status, x.ebody, x.elen, err, errlen);
        if (rc == OP_KUBE_OK) /* another 2xx: not a watch stream */
            rc = op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "watch: HTTP %ld", x.status);
    } else if (cc != CURLE_OK) {
        rc = op_kube__curl_err(cc, "watch stream", err, errlen);
    } else {
        rc = op_kube_watch_parser_finish(p);
    }
out:
    curl_easy_setopt(k->watch_curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    free(x.ebody);
    free(url);
    return rc;
}

op_kube_err_t op_kube_watch_run(op_kube_t *k, const op_kube_watch_opts_t *opts, char *rv,
                                size_t rvlen, op_kube_watch_cb cb, void *arg, char *err,
                                size_t errlen)
{
    op_kube_watch_parser_t p;
    op_kube_err_t rc;
    long status = 0;

    if (!opts || !opts->path || opts->path[0] != '/' || !rv || !rvlen)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "watch: bad arguments");
    op_kube_watch_parser_init(&p, opts->max_line, rv, cb, arg, err, errlen);
    rc = watch_once(k, opts, &p, &status, err, errlen);
    if (status == 401 && op_kube__token_refreshable(k)) {
        op_kube_invalidate_credentials(k);
        op_kube_watch_parser_dispose(&p);
        op_kube_watch_parser_init(&p, opts->max_line, rv, cb, arg, err, errlen);
        rc = watch_once(k, opts, &p, &status, err, errlen);
    }
    if (strlen(p.rv) < rvlen)
        memcpy(rv, p.rv, strlen(p.rv) + 1);
    op_kube_watch_parser_dispose(&p);
    return rc;
}
