/* SPDX-License-Identifier: Apache-2.0 */
/* op_kube client: error mapping, credentials (token file rotation, exec
 * plugin cache), TLS setup and the request verbs on one keep-alive CURL
 * handle. Watches live in op_kube_watch.c, Leases and Events in
 * op_kube_lease.c. */
#include "op_kube_internal.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TOKEN_FILE_MAX (64u * 1024)
/* A token file is re-read at least this often even if it looks unchanged
 * (kubelet rotates projected tokens well before they expire). */
#define TOKEN_REREAD_MS 60000
/* An exec credential is refreshed this long before its expiry. */
#define EXEC_EXPIRY_SLACK_S 10

/* ---------------------------------------------------------------- errors -- */

const char *op_kube_err_str(op_kube_err_t e)
{
    switch (e) {
    case OP_KUBE_OK:
        return "ok";
    case OP_KUBE_ERR_NOT_FOUND:
        return "not_found";
    case OP_KUBE_ERR_CONFLICT:
        return "conflict";
    case OP_KUBE_ERR_GONE:
        return "gone";
    case OP_KUBE_ERR_INVALID:
        return "invalid";
    case OP_KUBE_ERR_TRANSIENT:
        return "transient";
    case OP_KUBE_ERR_AUTH:
        return "auth";
    }
    return "unknown";
}

op_kube_err_t op_kube_err_from_http(long status)
{
    if (status >= 200 && status < 300)
        return OP_KUBE_OK;
    switch (status) {
    case 401:
    case 403:
        return OP_KUBE_ERR_AUTH;
    case 404:
        return OP_KUBE_ERR_NOT_FOUND;
    case 409:
        return OP_KUBE_ERR_CONFLICT;
    case 410:
        return OP_KUBE_ERR_GONE;
    case 408: /* request timeout */
    case 429: /* too many requests (API priority and fairness) */
        return OP_KUBE_ERR_TRANSIENT;
    default:
        break;
    }
    /* 0 (no response) and 5xx: the server or the path to it is unwell. */
    if (status >= 500 || status <= 0)
        return OP_KUBE_ERR_TRANSIENT;
    return OP_KUBE_ERR_INVALID;
}

op_kube_err_t op_kube_err_from_response(long status, const char *body, size_t len, char *err,
                                        size_t errlen)
{
    op_kube_err_t e = op_kube_err_from_http(status);
    json_t *j;

    if (e == OP_KUBE_OK)
        return e;
    j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    if (j && op_kube__str(j, "kind", NULL) &&
        strcmp(op_kube__str(j, "kind", NULL), "Status") == 0) {
        const char *reason = op_kube__str(j, "reason", NULL);
        const char *msg = op_kube__str(j, "message", NULL);

        op_kube__fail(e, err, errlen, "HTTP %ld %s: %s", status, reason ? reason : "",
                      msg ? msg : "(no message)");
    } else {
        /* Not a Status (a proxy, or a bare "Unauthorized"): show its start,
         * control characters flattened. */
        char snippet[201];
        size_t n = len < sizeof(snippet) - 1 ? len : sizeof(snippet) - 1;

        for (size_t i = 0; i < n; i++)
            snippet[i] = isprint((unsigned char)body[i]) ? body[i] : ' ';
        snippet[n] = '\0';
        op_kube__fail(e, err, errlen, "HTTP %ld: %s", status, n ? snippet : "(empty body)");
    }
    json_decref(j);
    return e;
}

op_kube_err_t op_kube__curl_err(CURLcode rc, const char *what, char *err, size_t errlen)
{
    op_kube_err_t e;

    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
        e = OP_KUBE_ERR_AUTH; /* the server is not who the CA says it is */
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        e = OP_KUBE_ERR_INVALID;
        break;
    default: /* connect, DNS, reset, timeout, HTTP/2 stream errors */
        e = OP_KUBE_ERR_TRANSIENT;
        break;
    }
    return op_kube__fail(e, err, errlen, "%s: %s", what, curl_easy_strerror(rc));
}

/* ---------------------------------------------------------------- paths -- */

static bool segment_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (*s == '/' || *s == '?' || *s == '#' || *s == '%' || (unsigned char)*s <= ' ')
            return false;
    return true;
}

int op_kube_path(char *buf, size_t len, const char *api_version, const char *ns, const char *plural,
                 const char *name, const char *sub)
{
    int n;

    if (!api_version || !*api_version || !segment_ok(plural) || (ns && !segment_ok(ns)) ||
        (name && !segment_ok(name)) || (sub && !segment_ok(sub)) || (sub && !name))
        return -1;
    n = snprintf(buf, len, "%s/%s%s%s/%s%s%s%s%s", strchr(api_version, '/') ? "/apis" : "/api",
                 api_version, ns ? "/namespaces/" : "", ns ? ns : "", plural, name ? "/" : "",
                 name ? name : "", sub ? "/" : "", sub ? sub : "");
    if (n < 0 || (size_t)n >= len)
        return -1;
    return n;
}

int op_kube_path_resource(const char *path, char *buf, size_t len, bool *collection)
{
    const char *seg[8];
    size_t segl[8], n = 0, at;
    const char *p = path ? path : "";
    int w;

    *collection = false;
    while (*p == '/' && n < 8) {
        const char *e = p + 1;

        while (*e && *e != '/' && *e != '?')
            e++;
        seg[n] = p + 1;
        segl[n++] = (size_t)(e - p - 1);
        if (*e != '/')
            break;
        p = e;
    }
    if (n >= 2 && segl[0] == 3 && memcmp(seg[0], "api", 3) == 0)
        at = 2;
    else if (n >= 3 && segl[0] == 4 && memcmp(seg[0], "apis", 4) == 0)
        at = 3;
    else
        at = 0;
    if (at && n >= at + 3 && segl[at] == 10 && memcmp(seg[at], "namespaces", 10) == 0)
        at += 2;
    if (!at || n <= at || segl[at] == 0) {
        snprintf(buf, len, "other");
        return -1;
    }
    *collection = n == at + 1;
    if (n >= at + 3)
        w = snprintf(buf, len, "%.*s/%.*s", (int)segl[at], seg[at], (int)segl[at + 2], seg[at + 2]);
    else
        w = snprintf(buf, len, "%.*s", (int)segl[at], seg[at]);
    if (w < 0 || (size_t)w >= len) {
        snprintf(buf, len, "other");
        return -1;
    }
    return 0;
}

char *op_kube__url(const op_kube_t *k, const char *path, const char *query)
{
    char *url = NULL;

    if (asprintf(&url, "%s%s%s%s", k->base_url, path, query ? (strchr(path, '?') ? "&" : "?") : "",
                 query ? query : "") < 0)
        return NULL;
    return url;
}

/* --------------------------------------------------------------- client -- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* With tls-server-name the URL names that host and CURLOPT_CONNECT_TO sends
 * the connection to the real one, so SNI and verification use the name. */
static op_kube_err_t make_base_url(op_kube_t *k, char *err, size_t errlen)
{
    const char *hostport = k->cfg.server + 8, *rest, *colon;
    char entry[600];
    int hlen;

    if (!k->cfg.tls_server_name) {
        k->base_url = strdup(k->cfg.server);
        return k->base_url ? OP_KUBE_OK : op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "oom");
    }
    rest = hostport + strcspn(hostport, "/");
    colon = hostport[0] == '[' ? strstr(hostport, "]:") : strchr(hostport, ':');
    if (colon && colon > rest)
        colon = NULL;
    if (colon && hostport[0] == '[')
        colon++;
    hlen = (int)((colon ? colon : rest) - hostport);
    if (asprintf(&k->base_url, "https://%s:%.*s%s", k->cfg.tls_server_name,
                 colon ? (int)(rest - colon - 1) : 3, colon ? colon + 1 : "443", rest) < 0) {
        k->base_url = NULL;
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    }
    snprintf(entry, sizeof(entry), "%s:%.*s:%.*s:%.*s", k->cfg.tls_server_name,
             colon ? (int)(rest - colon - 1) : 3, colon ? colon + 1 : "443", hlen, hostport,
             colon ? (int)(rest - colon - 1) : 3, colon ? colon + 1 : "443");
    k->connect_to = curl_slist_append(NULL, entry);
    return k->connect_to ? OP_KUBE_OK : op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "oom");
}

op_kube_err_t op_kube_new(op_kube_config_t *cfg, const op_kube_opts_t *opts, op_kube_t **out,
                          char *err, size_t errlen)
{
    op_kube_t *k;
    op_kube_err_t rc;

    *out = NULL;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        op_kube_config_dispose(cfg);
        return op_kube__curl_err(curl_init_rc, "curl_global_init", err, errlen);
    }
    if (!cfg->server) {
        op_kube_config_dispose(cfg);
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "configuration has no server");
    }
    k = calloc(1, sizeof(*k));
    if (!k) {
        op_kube_config_dispose(cfg);
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    }
    k->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    k->connect_timeout_ms = opts && opts->connect_timeout_ms ? opts->connect_timeout_ms : 10000;
    k->request_timeout_ms = opts && opts->request_timeout_ms ? opts->request_timeout_ms : 30000;
    k->max_response_bytes =
        opts && opts->max_response_bytes ? opts->max_response_bytes : (size_t)64 << 20;
    snprintf(k->user_agent, sizeof(k->user_agent), "%s",
             opts && opts->user_agent ? opts->user_agent : "weir-operator/" WEIR_VERSION);
    k->observe = opts ? opts->observe : NULL;
    k->observe_ud = opts ? opts->observe_ud : NULL;
    snprintf(k->field_manager, sizeof(k->field_manager), "%s",
             opts && opts->field_manager ? opts->field_manager : "weir-operator");
    if (!segment_ok(k->field_manager) || strchr(k->field_manager, '&')) {
        rc = op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "bad field manager \"%s\"",
                           k->field_manager);
        goto fail;
    }
    rc = make_base_url(k, err, errlen);
    if (rc != OP_KUBE_OK)
        goto fail;
    k->curl = curl_easy_init();
    k->watch_curl = curl_easy_init();
    if (!k->curl || !k->watch_curl) {
        rc = op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "curl_easy_init failed");
        goto fail;
    }
    *out = k;
    return OP_KUBE_OK;
fail:
    op_kube_free(k);
    return rc;
}

void op_kube_free(op_kube_t *k)
{
    if (!k)
        return;
    if (k->curl)
        curl_easy_cleanup(k->curl);
    if (k->watch_curl)
        curl_easy_cleanup(k->watch_curl);
    curl_slist_free_all(k->connect_to);
    free(k->base_url);
    free(k->token);
    free(k->exec_cert);
    free(k->exec_key);
    op_kube_config_dispose(&k->cfg);
    free(k);
}

void op_kube_close_idle(op_kube_t *k)
{
    /* A fresh handle is the only way to close an easy handle's connection
     * cache; on failure the old one stays. */
    CURL *c = curl_easy_init();
    if (!c)
        return;
    curl_easy_cleanup(k->curl);
    k->curl = c;
}

const char *op_kube_namespace(const op_kube_t *k)
{
    return k->cfg.namespace;
}

/* ----------------------------------------------------------- credentials -- */

void op_kube_invalidate_credentials(op_kube_t *k)
{
    k->token_valid = false;
}

bool op_kube__token_refreshable(const op_kube_t *k)
{
    return k->cfg.exec_command || k->cfg.token_file;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000L + (now.tv_nsec - t0->tv_nsec) / 1000000L;
}

static op_kube_err_t read_token_file(op_kube_t *k, char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    bool changed;

    /* stat follows the ..data symlink kubelet swaps atomically on rotation,
     * so a new token shows as a new inode or mtime. */
    if (stat(k->cfg.token_file, &st) != 0) {
        if (k->token_valid)
            return OP_KUBE_OK; /* keep the last good token; the server decides */
        return op_kube__fail(OP_KUBE_ERR_AUTH, err, errlen, "token file %s: %s", k->cfg.token_file,
                             strerror(errno));
    }
    changed = st.st_dev != k->token_dev || st.st_ino != k->token_ino ||
              st.st_mtim.tv_sec != k->token_mtime.tv_sec ||
              st.st_mtim.tv_nsec != k->token_mtime.tv_nsec || st.st_size != k->token_size;
    if (k->token_valid && !changed && ms_since(&k->token_read) < TOKEN_REREAD_MS)
        return OP_KUBE_OK;
    f = fopen(k->cfg.token_file, "rb");
    if (f) {
        buf = malloc(TOKEN_FILE_MAX + 1);
        if (buf)
            len = fread(buf, 1, TOKEN_FILE_MAX + 1, f);
        fclose(f);
    }
    if (!buf || len == 0 || len > TOKEN_FILE_MAX) {
        free(buf);
        if (k->token_valid)
            return OP_KUBE_OK;
        return op_kube__fail(OP_KUBE_ERR_AUTH, err, errlen,
                             "token file %s: empty, unreadable "
                             "or larger than %u bytes",
                             k->cfg.token_file, TOKEN_FILE_MAX);
    }
    while (len && isspace((unsigned char)buf[len - 1]))
        len--;
    buf[len] = '\0';
    free(k->token);
    k->token = buf;
    k->token_valid = true;
    k->token_dev = st.st_dev;
    k->token_ino = st.st_ino;
    k->token_mtime = st.st_mtim;
    k->token_size = st.st_size;
    clock_gettime(CLOCK_MONOTONIC, &k->token_read);
    return OP_KUBE_OK;
}

static op_kube_err_t run_exec(op_kube_t *k, char *err, size_t errlen)
{
    op_kube__exec_cred_t c;
    op_kube_err_t rc;

    if (k->token_valid &&
        (k->token_expiry == 0 || time(NULL) + EXEC_EXPIRY_SLACK_S < k->token_expiry))
        return OP_KUBE_OK;
    rc = op_kube__exec_run(&k->cfg, &c, err, errlen);
    if (rc != OP_KUBE_OK)
        return rc;
    free(k->token);
    free(k->exec_cert);
    free(k->exec_key);
    k->token = c.token;
    k->exec_cert = c.cert;
    k->exec_key = c.key;
    k->exec_cert_len = c.cert_len;
    k->exec_key_len = c.key_len;
    k->token_expiry = c.expiry;
    k->token_valid = true;
    clock_gettime(CLOCK_MONOTONIC, &k->token_read);
    return OP_KUBE_OK;
}

op_kube_err_t op_kube__token(op_kube_t *k, const char **token, char *err, size_t errlen)
{
    op_kube_err_t rc = OP_KUBE_OK;

    *token = NULL;
    if (k->cfg.exec_command)
        rc = run_exec(k, err, errlen);
    else if (k->cfg.token_file)
        rc = read_token_file(k, err, errlen);
    else
        *token = k->cfg.token;
    if (rc == OP_KUBE_OK && (k->cfg.exec_command || k->cfg.token_file))
        *token = k->token;
    return rc;
}

/* ------------------------------------------------------------- transfers -- */

static op_kube_err_t set_blob(CURL *c, CURLoption opt, char *data, size_t len)
{
    struct curl_blob blob = {.data = data, .len = len, .flags = CURL_BLOB_COPY};

    return curl_easy_setopt(c, opt, &blob) == CURLE_OK ? OP_KUBE_OK : OP_KUBE_ERR_INVALID;
}

op_kube_err_t op_kube__setup(op_kube_t *k, CURL *c, const char *url, const char *content_type,
                             const char *accept, struct curl_slist **headers, char *err,
                             size_t errlen)
{
    const op_kube_config_t *cfg = &k->cfg;
    const char *token = NULL;
    struct curl_slist *h = NULL;
    char line[256];
    op_kube_err_t rc;
    char *auth = NULL;

    *headers = NULL;
    rc = op_kube__token(k, &token, err, errlen);
    if (rc != OP_KUBE_OK)
        return rc;
    /* curl_easy_reset keeps live connections, the session-ID and DNS
     * caches: the handle stays keep-alive across requests. */
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
#endif
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, k->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, k->user_agent);
    /* TLS is always verified; nothing here can turn it off. */
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (k->connect_to)
        curl_easy_setopt(c, CURLOPT_CONNECT_TO, k->connect_to);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    /* A configured CA is the only trust anchor (as in client-go): the
     * system CA directory is not consulted as well. */
    if (cfg->ca_data || cfg->ca_file)
        curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
    if (cfg->ca_data)
        rc = set_blob(c, CURLOPT_CAINFO_BLOB, cfg->ca_data, cfg->ca_data_len);
    else if (cfg->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
    if (k->exec_cert && k->exec_key) {
        curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
        if (rc == OP_KUBE_OK)
            rc = set_blob(c, CURLOPT_SSLCERT_BLOB, k->exec_cert, k->exec_cert_len);
        if (rc == OP_KUBE_OK)
            rc = set_blob(c, CURLOPT_SSLKEY_BLOB, k->exec_key, k->exec_key_len);
    } else if (cfg->cert_data || cfg->cert_file) {
        curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
        if (cfg->cert_data && rc == OP_KUBE_OK)
            rc = set_blob(c, CURLOPT_SSLCERT_BLOB, cfg->cert_data, cfg->cert_data_len);
        else if (cfg->cert_file)
            curl_easy_setopt(c, CURLOPT_SSLCERT, cfg->cert_file);
        if (cfg->key_data && rc == OP_KUBE_OK)
            rc = set_blob(c, CURLOPT_SSLKEY_BLOB, cfg->key_data, cfg->key_data_len);
        else if (cfg->key_file)
            curl_easy_setopt(c, CURLOPT_SSLKEY, cfg->key_file);
    }
    if (rc != OP_KUBE_OK)
        return op_kube__fail(rc, err, errlen, "curl: cannot set TLS material");

    snprintf(line, sizeof(line), "Accept: %s", accept ? accept : "application/json");
    h = curl_slist_append(h, line);
    if (h && content_type) {
        snprintf(line, sizeof(line), "Content-Type: %s", content_type);
        h = curl_slist_append(h, line);
    }
    if (h && token && *token) {
        if (asprintf(&auth, "Authorization: Bearer %s", token) < 0)
            auth = NULL;
        h = auth ? curl_slist_append(h, auth) : NULL;
        if (auth) {
            /* The header text is copied by curl_slist_append; wipe ours. */
            memset(auth, 0, strlen(auth));
            free(auth);
        }
    }
    if (!h)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    *headers = h;
    return OP_KUBE_OK;
}

typedef struct {
    char *data;
    size_t len, cap, max;
    bool overflow;
} body_t;

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body_t *b = userdata;
    size_t n = size * nmemb;

    if (b->len + n > b->max) {
        b->overflow = true;
        return 0; /* aborts the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        char *nd;

        while (cap < b->len + n + 1)
            cap *= 2;
        nd = realloc(b->data, cap);
        if (!nd)
            return 0;
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

#define ACCEPT_METADATA                                                                            \
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json"

static op_kube_err_t do_request(op_kube_t *k, const char *method, const char *url,
                                const char *content_type, const char *body, size_t body_len,
                                long *status, json_t **out, char *err, size_t errlen)
{
    struct curl_slist *headers = NULL;
    body_t resp = {.max = k->max_response_bytes};
    op_kube_err_t rc;
    CURLcode cc;
    CURL *c = k->curl;

    *status = 0;
    /* A caller that reads no answer gets only the object's metadata: the
     * apiserver encodes, and TLS carries, that instead of the whole object
     * (e.g. a ConfigMap with its pipeline). An error is a Status either
     * way; the second type is the fallback of a server without the
     * transformation. */
    rc = op_kube__setup(k, c, url, content_type, out ? NULL : ACCEPT_METADATA, &headers, err,
                        errlen);
    if (rc != OP_KUBE_OK)
        goto out;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, k->request_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        if (resp.overflow)
            rc = op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen,
                               "%s %s: response larger than %zu bytes", method, url, resp.max);
        else
            rc = op_kube__curl_err(cc, method, err, errlen);
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    rc = op_kube_err_from_response(*status, resp.data, resp.len, err, errlen);
    if (rc != OP_KUBE_OK || !out)
        goto out;
    if (resp.len) {
        json_error_t jerr;

        *out = json_loadb(resp.data, resp.len, 0, &jerr);
        if (!*out)
            rc = op_kube__fail(OP_KUBE_ERR_TRANSIENT, err, errlen, "%s: response is not JSON: %s",
                               method, jerr.text);
    }
out:
    /* Detach our buffers from the handle before they go away. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    free(resp.data);
    return rc;
}

static op_kube_err_t request_url(op_kube_t *k, const char *method, const char *path,
                                 const char *query, const char *content_type, const char *body,
                                 size_t body_len, json_t **out, char *err, size_t errlen)
{
    op_kube_err_t rc;
    long status = 0;
    char *url;

    if (out)
        *out = NULL;
    if (!path || path[0] != '/')
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "path must start with '/'");
    url = op_kube__url(k, path, query);
    if (!url)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    for (int attempt = 0; attempt < 2; attempt++) {
        struct timespec t0, t1;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = do_request(k, method, url, content_type, body, body_len, &status, out, err, errlen);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (k->observe)
            k->observe(k->observe_ud, method, path, status,
                       (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec -
                           (uint64_t)t0.tv_nsec);
        if (status != 401 || attempt > 0 || !op_kube__token_refreshable(k))
            break;
        /* The token rotated or expired under us: fetch a fresh one, once. */
        op_kube_invalidate_credentials(k);
    }
    free(url);
    return rc;
}

op_kube_err_t op_kube_request(op_kube_t *k, const char *method, const char *path,
                              const char *content_type, const char *body, size_t body_len,
                              json_t **out, char *err, size_t errlen)
{
    return request_url(k, method, path, NULL, content_type, body, body_len, out, err, errlen);
}

op_kube_err_t op_kube_get(op_kube_t *k, const char *path, json_t **out, char *err, size_t errlen)
{
    return request_url(k, "GET", path, NULL, NULL, NULL, 0, out, err, errlen);
}

op_kube_err_t op_kube_secret_data(op_kube_t *k, const char *ns, const char *name, json_t **data,
                                  char *err, size_t errlen)
{
    char path[600];
    json_t *sec = NULL, *v, *out;
    const char *key;
    op_kube_err_t rc;

    *data = NULL;
    if (op_kube_path(path, sizeof(path), "v1", ns, "secrets", name, NULL) < 0)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "bad Secret name %s/%s",
                             ns ? ns : "", name ? name : "");
    rc = op_kube_get(k, path, &sec, err, errlen);
    if (rc != OP_KUBE_OK)
        return rc;
    out = json_object();
    if (!out) {
        json_decref(sec);
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    }
    json_object_foreach (json_object_get(sec, "data"), key, v) {
        size_t n = 0;
        char *dec = json_is_string(v) ? op_kube__b64_decode(json_string_value(v), &n) : NULL;

        if (!dec || strlen(dec) != n) {
            free(dec);
            json_decref(out);
            json_decref(sec);
            return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen,
                                 "Secret %s/%s: key %s is not base64 text", ns, name, key);
        }
        json_object_set_new(out, key, json_string(dec));
        free(dec);
    }
    json_decref(sec);
    *data = out;
    return OP_KUBE_OK;
}

op_kube_err_t op_kube_list_page(op_kube_t *k, const char *path, long limit, const char *cont,
                                json_t **out, char *err, size_t errlen)
{
    char *query = NULL, *esc = NULL;
    op_kube_err_t rc;
    int bad = 0;

    if (cont && *cont) {
        esc = curl_easy_escape(k->curl, cont, 0);
        if (!esc)
            return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    }
    if (limit > 0 && esc)
        bad = asprintf(&query, "limit=%ld&continue=%s", limit, esc) < 0;
    else if (limit > 0)
        bad = asprintf(&query, "limit=%ld", limit) < 0;
    else if (esc)
        bad = asprintf(&query, "continue=%s", esc) < 0;
    if (bad) {
        query = NULL;
        curl_free(esc);
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    }
    rc = request_url(k, "GET", path, query, NULL, NULL, 0, out, err, errlen);
    if (rc == OP_KUBE_OK && !json_is_array(json_object_get(*out, "items"))) {
        json_decref(*out);
        *out = NULL;
        rc = op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "GET %s: not a list", path);
    }
    curl_free(esc);
    free(query);
    return rc;
}

op_kube_err_t op_kube_list_all(op_kube_t *k, const char *path, long page_limit, json_t **items,
                               char *rv, size_t rvlen, char *err, size_t errlen)
{
    json_t *all = json_array(), *page = NULL;
    char *cont = NULL;
    op_kube_err_t rc;
    bool first = true;

    *items = NULL;
    if (!all)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    for (;;) {
        const char *next, *prv;

        rc = op_kube_list_page(k, path, page_limit, cont, &page, err, errlen);
        if (rc != OP_KUBE_OK)
            break;
        if (json_array_extend(all, json_object_get(page, "items")) != 0) {
            rc = op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
            break;
        }
        /* Every page is served from the snapshot of the first, so its
         * resourceVersion is the list's. */
        prv = op_kube__str(page, "metadata", "resourceVersion");
        if (first && rv && rvlen)
            snprintf(rv, rvlen, "%s", prv ? prv : "");
        first = false;
        next = op_kube__str(page, "metadata", "continue");
        free(cont);
        cont = next && *next ? strdup(next) : NULL;
        json_decref(page);
        page = NULL;
        if (!cont)
            break;
    }
    free(cont);
    json_decref(page);
    if (rc != OP_KUBE_OK) {
        json_decref(all);
        return rc;
    }
    *items = all;
    return OP_KUBE_OK;
}

static op_kube_err_t send_json(op_kube_t *k, const char *method, const char *path,
                               const char *query, const char *content_type, const json_t *obj,
                               json_t **out, char *err, size_t errlen)
{
    char *body;
    op_kube_err_t rc;

    if (out)
        *out = NULL;
    if (!obj)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "%s %s: no body", method, path);
    body = json_dumps(obj, JSON_COMPACT);
    if (!body)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "%s %s: body is not serialisable",
                             method, path);
    rc = request_url(k, method, path, query, content_type, body, strlen(body), out, err, errlen);
    free(body);
    return rc;
}

op_kube_err_t op_kube_create(op_kube_t *k, const char *path, const json_t *obj, json_t **out,
                             char *err, size_t errlen)
{
    return send_json(k, "POST", path, NULL, "application/json", obj, out, err, errlen);
}

op_kube_err_t op_kube_update(op_kube_t *k, const char *path, const json_t *obj, json_t **out,
                             char *err, size_t errlen)
{
    return send_json(k, "PUT", path, NULL, "application/json", obj, out, err, errlen);
}

op_kube_err_t op_kube_patch(op_kube_t *k, const char *path, op_kube_patch_t type,
                            const json_t *patch, json_t **out, char *err, size_t errlen)
{
    char query[192];

    switch (type) {
    case OP_KUBE_PATCH_MERGE:
        return send_json(k, "PATCH", path, NULL, "application/merge-patch+json", patch, out, err,
                         errlen);
    case OP_KUBE_PATCH_JSON:
        return send_json(k, "PATCH", path, NULL, "application/json-patch+json", patch, out, err,
                         errlen);
    case OP_KUBE_PATCH_STRATEGIC:
        return send_json(k, "PATCH", path, NULL, "application/strategic-merge-patch+json", patch,
                         out, err, errlen);
    case OP_KUBE_PATCH_APPLY:
        /* JSON is YAML, so the apply body is the compact JSON object. force
         * takes ownership of fields another manager set: the operator is the
         * sole owner of what it renders. fieldValidation=Ignore skips the
         * apiserver's second, strict YAML decode of the body, which only looks
         * for duplicate keys (a jansson object has none): ~12% of the
         * apiserver's allocations under a create burst (operator.md). An
         * unknown field still fails the apply ("field not declared in
         * schema"): apply converts the body to the typed schema either way. */
        snprintf(query, sizeof(query), "fieldManager=%s&force=true&fieldValidation=Ignore",
                 k->field_manager);
        return send_json(k, "PATCH", path, query, "application/apply-patch+yaml", patch, out, err,
                         errlen);
    }
    return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "unknown patch type %d", (int)type);
}

op_kube_err_t op_kube_apply(op_kube_t *k, const char *path, const json_t *obj, json_t **out,
                            char *err, size_t errlen)
{
    return op_kube_patch(k, path, OP_KUBE_PATCH_APPLY, obj, out, err, errlen);
}

op_kube_err_t op_kube_patch_status(op_kube_t *k, const char *path, op_kube_patch_t type,
                                   const json_t *status_obj, json_t **out, char *err, size_t errlen)
{
    char *sp = NULL;
    op_kube_err_t rc;

    if (strchr(path, '?'))
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "status path carries a query");
    if (asprintf(&sp, "%s/status", path) < 0)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    rc = op_kube_patch(k, sp, type, status_obj, out, err, errlen);
    free(sp);
    return rc;
}

op_kube_err_t op_kube_delete(op_kube_t *k, const char *path, const char *propagation, char *err,
                             size_t errlen)
{
    char query[64];

    if (propagation && strcmp(propagation, "Foreground") != 0 &&
        strcmp(propagation, "Background") != 0 && strcmp(propagation, "Orphan") != 0)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen,
                             "propagationPolicy must be Foreground, Background or Orphan");
    if (propagation)
        snprintf(query, sizeof(query), "propagationPolicy=%s", propagation);
    return request_url(k, "DELETE", path, propagation ? query : NULL, NULL, NULL, 0, NULL, err,
                       errlen);
}
