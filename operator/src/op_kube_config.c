/* SPDX-License-Identifier: Apache-2.0 */
/* op_kube configuration: kubeconfig (libyaml, read into a jansson tree),
 * in-cluster service account, and the exec credential plugin runner.
 * Nothing here talks to the API server. */
#include "op_kube_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

extern char **environ;

/* Put a limit on everything: a kubeconfig, a token file and an exec
 * plugin's output are small. */
#define KUBECONFIG_MAX (4u << 20)
#define EXEC_OUTPUT_MAX (1u << 20)
#define EXEC_TIMEOUT_MS 60000
#define YAML_DEPTH_MAX 64

op_kube_err_t op_kube__fail(op_kube_err_t e, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return e;
}

const char *op_kube__str(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(obj, a);

    if (v && b)
        v = json_object_get(v, b);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ------------------------------------------------------------- base64 -- */

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

char *op_kube__b64_decode(const char *in, size_t *out_len)
{
    size_t n = strlen(in), o = 0;
    unsigned acc = 0;
    int bits = 0, pad = 0;
    char *out = malloc(n / 4 * 3 + 4);

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i], v;

        if (isspace(c))
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        v = b64_value(c);
        if (v < 0 || pad)
            goto bad; /* junk, or data after padding */
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (pad > 2 || bits >= 6)
        goto bad;
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
bad:
    free(out);
    return NULL;
}

/* ----------------------------------------------------------- yaml→json -- */

static json_t *yaml_node_to_json(yaml_document_t *doc, yaml_node_t *node, int depth)
{
    json_t *j = NULL;

    if (!node || depth > YAML_DEPTH_MAX)
        return NULL;
    switch (node->type) {
    case YAML_SCALAR_NODE: {
        const char *s = (const char *)node->data.scalar.value;
        size_t len = node->data.scalar.length;

        /* Every scalar stays a string (kubeconfig fields are strings or
         * "true"), except plain null spellings. */
        if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0))
            return json_null();
        return json_stringn(s, len);
    }
    case YAML_SEQUENCE_NODE:
        j = json_array();
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             j && it < node->data.sequence.items.top; it++) {
            json_t *v = yaml_node_to_json(doc, yaml_document_get_node(doc, *it), depth + 1);

            if (!v || json_array_append_new(j, v) != 0) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    case YAML_MAPPING_NODE:
        j = json_object();
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
             j && p < node->data.mapping.pairs.top; p++) {
            yaml_node_t *kn = yaml_document_get_node(doc, p->key);
            json_t *v;

            if (!kn || kn->type != YAML_SCALAR_NODE) {
                json_decref(j);
                return NULL;
            }
            v = yaml_node_to_json(doc, yaml_document_get_node(doc, p->value), depth + 1);
            if (!v || json_object_set_new(j, (const char *)kn->data.scalar.value, v) != 0) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    default:
        return NULL;
    }
}

/* Loads the first YAML document of `text` as JSON (new reference). */
static json_t *yaml_to_json(const char *text, size_t len, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    json_t *j = NULL;

    if (!yaml_parser_initialize(&parser)) {
        op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "yaml: out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "yaml: %s at line %zu",
                      parser.problem ? parser.problem : "parse error",
                      parser.problem_mark.line + 1);
        yaml_parser_delete(&parser);
        return NULL;
    }
    j = yaml_node_to_json(&doc, yaml_document_get_root_node(&doc), 0);
    if (!j)
        op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen,
                      "yaml: empty document, non-scalar key or nesting deeper than %d",
                      YAML_DEPTH_MAX);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return j;
}

/* ---------------------------------------------------------------- files -- */

/* Reads a whole (small) file into a NUL-terminated buffer. */
static char *read_file(const char *path, size_t max, size_t *len_out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (!f) {
        op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        size_t got;

        if (cap - len < 4096) {
            char *nb;

            cap = cap ? cap * 2 : 8192;
            nb = realloc(buf, cap + 1);
            if (!nb)
                goto fail;
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len > max) {
            op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "%s: larger than %zu bytes", path, max);
            goto fail_quiet;
        }
        if (got == 0)
            break;
    }
    if (ferror(f))
        goto fail;
    fclose(f);
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
fail:
    op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "%s: read failed", path);
fail_quiet:
    free(buf);
    fclose(f);
    return NULL;
}

/* `rel` resolved against the directory of `base_file` unless absolute. */
static char *resolve_path(const char *base_file, const char *rel)
{
    const char *slash = strrchr(base_file, '/');
    char *out = NULL;

    if (rel[0] == '/' || !slash)
        return strdup(rel);
    if (asprintf(&out, "%.*s/%s", (int)(slash - base_file), base_file, rel) < 0)
        return NULL;
    return out;
}

void op_kube_config_dispose(op_kube_config_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->server);
    free(cfg->tls_server_name);
    free(cfg->ca_file);
    free(cfg->ca_data);
    free(cfg->token);
    free(cfg->token_file);
    free(cfg->cert_file);
    free(cfg->key_file);
    free(cfg->cert_data);
    free(cfg->key_data);
    free(cfg->exec_command);
    for (char **a = cfg->exec_args; a && *a; a++)
        free(*a);
    free(cfg->exec_args);
    for (char **a = cfg->exec_env; a && *a; a++)
        free(*a);
    free(cfg->exec_env);
    free(cfg->exec_api_version);
    free(cfg->namespace);
    memset(cfg, 0, sizeof(*cfg));
}

/* --------------------------------------------------------- kubeconfig -- */

/* The entry of list `key` (clusters, users, contexts) named `name`, and its
 * `inner` member (cluster, user, context). Borrowed. */
static json_t *named_entry(json_t *root, const char *key, const char *inner, const char *name)
{
    json_t *list = json_object_get(root, key), *e;
    size_t i;

    json_array_foreach (list, i, e) {
        const char *n = op_kube__str(e, "name", NULL);

        if (n && strcmp(n, name) == 0) {
            json_t *v = json_object_get(e, inner);

            /* An entry without its body reads as empty: fields come up missing. */
            return json_is_object(v) ? v : e;
        }
    }
    return NULL;
}

static bool is_true(const json_t *v)
{
    return json_is_true(v) || (json_is_string(v) && strcmp(json_string_value(v), "true") == 0);
}

/* Sets *dst from "<field>-data" (base64) or "<field>" (a path), if present. */
static op_kube_err_t pem_field(const char *path, json_t *obj, const char *field, char **file_out,
                               char **data_out, size_t *len_out, char *err, size_t errlen)
{
    char key[64];
    const char *data, *file;

    snprintf(key, sizeof(key), "%s-data", field);
    data = op_kube__str(obj, key, NULL);
    file = op_kube__str(obj, field, NULL);
    if (data && *data) {
        *data_out = op_kube__b64_decode(data, len_out);
        if (!*data_out || *len_out == 0)
            return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "%s: %s is not valid base64",
                                 path, key);
    } else if (file && *file) {
        *file_out = resolve_path(path, file);
        if (!*file_out)
            return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    }
    return OP_KUBE_OK;
}

static char **string_list(const json_t *arr, bool *ok)
{
    size_t n = json_array_size(arr), i;
    char **out = calloc(n + 1, sizeof(*out));
    const json_t *v;

    *ok = out != NULL;
    json_array_foreach (arr, i, v) {
        if (!out || !json_is_string(v) || !(out[i] = strdup(json_string_value(v)))) {
            *ok = false;
            break;
        }
    }
    return out;
}

static op_kube_err_t load_exec(const char *path, json_t *exec, op_kube_config_t *cfg, char *err,
                               size_t errlen)
{
    const char *cmd = op_kube__str(exec, "command", NULL);
    const char *api = op_kube__str(exec, "apiVersion", NULL);
    json_t *env = json_object_get(exec, "env"), *e;
    bool ok = true;
    size_t i;

    if (!cmd || !*cmd)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "%s: user.exec.command is missing",
                             path);
    /* A command with a slash but not absolute is relative to the kubeconfig
     * (as in client-go); a bare name is looked up on PATH. */
    cfg->exec_command = strchr(cmd, '/') ? resolve_path(path, cmd) : strdup(cmd);
    cfg->exec_api_version = strdup(api ? api : "client.authentication.k8s.io/v1");
    if (json_is_array(json_object_get(exec, "args")))
        cfg->exec_args = string_list(json_object_get(exec, "args"), &ok);
    if (!ok)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen,
                             "%s: user.exec.args must be a list of strings", path);
    if (json_is_array(env)) {
        cfg->exec_env = calloc(json_array_size(env) + 1, sizeof(char *));
        if (!cfg->exec_env)
            return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
        json_array_foreach (env, i, e) {
            const char *n = op_kube__str(e, "name", NULL), *v = op_kube__str(e, "value", NULL);

            if (!n || !*n || strchr(n, '=') || !v)
                return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen,
                                     "%s: user.exec.env[%zu] needs a name and a value", path, i);
            if (asprintf(&cfg->exec_env[i], "%s=%s", n, v) < 0) {
                cfg->exec_env[i] = NULL;
                return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
            }
        }
    }
    if (!cfg->exec_command || !cfg->exec_api_version)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    return OP_KUBE_OK;
}

/* Normalises the server URL: https only (TLS is always verified), no
 * trailing slash, scheme added when missing. */
static op_kube_err_t set_server(op_kube_config_t *cfg, const char *where, const char *server,
                                char *err, size_t errlen)
{
    size_t n;

    if (!server || !*server)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "%s: cluster.server is missing",
                             where);
    if (strncmp(server, "http://", 7) == 0)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen,
                             "%s: server %s is plain http; only https is supported", where, server);
    if (strncmp(server, "https://", 8) == 0)
        cfg->server = strdup(server);
    else if (strstr(server, "://"))
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "%s: unsupported server URL %s",
                             where, server);
    else if (asprintf(&cfg->server, "https://%s", server) < 0)
        cfg->server = NULL;
    if (!cfg->server)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
    n = strlen(cfg->server);
    while (n > 8 && cfg->server[n - 1] == '/')
        cfg->server[--n] = '\0';
    return OP_KUBE_OK;
}

op_kube_err_t op_kube_config_load_kubeconfig(const char *path, const char *context,
                                             op_kube_config_t *cfg, char *err, size_t errlen)
{
    op_kube_err_t rc = OP_KUBE_ERR_INVALID;
    json_t *root = NULL, *ctx, *cluster, *user = NULL;
    const char *cluster_name, *user_name, *s;
    size_t len = 0;
    char *text;

    memset(cfg, 0, sizeof(*cfg));
    text = read_file(path, KUBECONFIG_MAX, &len, err, errlen);
    if (!text)
        return OP_KUBE_ERR_INVALID;
    root = yaml_to_json(text, len, err, errlen);
    free(text);
    if (!root)
        return OP_KUBE_ERR_INVALID;
    if (!json_is_object(root)) {
        op_kube__fail(rc, err, errlen, "%s: not a kubeconfig (top level is not a mapping)", path);
        goto out;
    }
    if (!context || !*context)
        context = op_kube__str(root, "current-context", NULL);
    if (!context || !*context) {
        op_kube__fail(rc, err, errlen, "%s: no context given and current-context is not set", path);
        goto out;
    }
    ctx = named_entry(root, "contexts", "context", context);
    if (!ctx) {
        op_kube__fail(rc, err, errlen, "%s: context \"%s\" not found", path, context);
        goto out;
    }
    cluster_name = op_kube__str(ctx, "cluster", NULL);
    if (!cluster_name) {
        op_kube__fail(rc, err, errlen, "%s: context \"%s\" names no cluster", path, context);
        goto out;
    }
    cluster = named_entry(root, "clusters", "cluster", cluster_name);
    if (!cluster) {
        op_kube__fail(rc, err, errlen, "%s: cluster \"%s\" not found", path, cluster_name);
        goto out;
    }
    user_name = op_kube__str(ctx, "user", NULL);
    if (user_name && *user_name) {
        user = named_entry(root, "users", "user", user_name);
        if (!user) {
            op_kube__fail(rc, err, errlen, "%s: user \"%s\" not found", path, user_name);
            goto out;
        }
    }

    /* cluster */
    if (set_server(cfg, path, op_kube__str(cluster, "server", NULL), err, errlen) != OP_KUBE_OK)
        goto out;
    if (is_true(json_object_get(cluster, "insecure-skip-tls-verify"))) {
        op_kube__fail(rc, err, errlen,
                      "%s: cluster \"%s\" sets insecure-skip-tls-verify; Weir always verifies "
                      "TLS (give certificate-authority or certificate-authority-data)",
                      path, cluster_name);
        goto out;
    }
    if (json_object_get(cluster, "proxy-url")) {
        op_kube__fail(rc, err, errlen, "%s: cluster \"%s\": proxy-url is not supported", path,
                      cluster_name);
        goto out;
    }
    s = op_kube__str(cluster, "tls-server-name", NULL);
    if (s && *s && !(cfg->tls_server_name = strdup(s)))
        goto oom;
    if (pem_field(path, cluster, "certificate-authority", &cfg->ca_file, &cfg->ca_data,
                  &cfg->ca_data_len, err, errlen) != OP_KUBE_OK)
        goto out;

    /* user */
    if (user) {
        if (json_object_get(user, "auth-provider")) {
            op_kube__fail(rc, err, errlen,
                          "%s: user \"%s\": auth-provider is not supported (use exec)", path,
                          user_name);
            goto out;
        }
        if (op_kube__str(user, "username", NULL) || op_kube__str(user, "password", NULL)) {
            op_kube__fail(rc, err, errlen, "%s: user \"%s\": basic authentication is not supported",
                          path, user_name);
            goto out;
        }
        s = op_kube__str(user, "token", NULL);
        if (s && *s && !(cfg->token = strdup(s)))
            goto oom;
        s = op_kube__str(user, "tokenFile", NULL);
        if (s && *s && !(cfg->token_file = resolve_path(path, s)))
            goto oom;
        if (pem_field(path, user, "client-certificate", &cfg->cert_file, &cfg->cert_data,
                      &cfg->cert_data_len, err, errlen) != OP_KUBE_OK ||
            pem_field(path, user, "client-key", &cfg->key_file, &cfg->key_data, &cfg->key_data_len,
                      err, errlen) != OP_KUBE_OK)
            goto out;
        if ((cfg->cert_file || cfg->cert_data) != (cfg->key_file || cfg->key_data)) {
            op_kube__fail(rc, err, errlen,
                          "%s: user \"%s\": client-certificate and client-key go together", path,
                          user_name);
            goto out;
        }
        if (json_is_object(json_object_get(user, "exec")) &&
            load_exec(path, json_object_get(user, "exec"), cfg, err, errlen) != OP_KUBE_OK)
            goto out;
    }
    s = op_kube__str(ctx, "namespace", NULL);
    if (s && *s && !(cfg->namespace = strdup(s)))
        goto oom;
    rc = OP_KUBE_OK;
    goto out;
oom:
    op_kube__fail(rc, err, errlen, "out of memory");
out:
    if (rc != OP_KUBE_OK)
        op_kube_config_dispose(cfg);
    json_decref(root);
    return rc;
}

/* ----------------------------------------------------------- in-cluster -- */

op_kube_err_t op_kube_config_in_cluster(const char *sa_dir, op_kube_config_t *cfg, char *err,
                                        size_t errlen)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    char server[512], *ns_path = NULL, *ns;
    struct stat st;
    op_kube_err_t rc;

    memset(cfg, 0, sizeof(*cfg));
    if (!sa_dir)
        sa_dir = OP_KUBE_SA_DIR;
    if (!host || !*host || !port || !*port)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen,
                             "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                             "must be set");
    /* An IPv6 service address needs brackets in a URL. */
    snprintf(server, sizeof(server), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    rc = set_server(cfg, "in-cluster", server, err, errlen);
    if (rc != OP_KUBE_OK)
        goto out;
    if (asprintf(&cfg->token_file, "%s/token", sa_dir) < 0 ||
        asprintf(&cfg->ca_file, "%s/ca.crt", sa_dir) < 0 ||
        asprintf(&ns_path, "%s/namespace", sa_dir) < 0) {
        rc = op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "out of memory");
        goto out;
    }
    if (stat(cfg->token_file, &st) != 0 || stat(cfg->ca_file, &st) != 0) {
        rc = op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen,
                           "in-cluster: %s/{token,ca.crt}: %s (is a service account mounted?)",
                           sa_dir, strerror(errno));
        goto out;
    }
    ns = read_file(ns_path, 4096, NULL, NULL, 0);
    if (ns) {
        size_t n = strlen(ns);

        while (n && isspace((unsigned char)ns[n - 1]))
            ns[--n] = '\0';
        if (n)
            cfg->namespace = ns;
        else
            free(ns);
    }
out:
    free(ns_path);
    if (rc != OP_KUBE_OK)
        op_kube_config_dispose(cfg);
    return rc;
}

op_kube_err_t op_kube_config_auto(const char *kubeconfig, const char *context, const char *sa_dir,
                                  op_kube_config_t *cfg, char *err, size_t errlen)
{
    const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
    char path[PATH_MAX];
    op_kube_err_t rc;

    if (kubeconfig && *kubeconfig)
        return op_kube_config_load_kubeconfig(kubeconfig, context, cfg, err, errlen);
    if (env && *env) {
        /* A KUBECONFIG list is merged by kubectl; we take its first file. */
        size_t n = strcspn(env, ":");

        if (n >= sizeof(path))
            return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen, "KUBECONFIG is too long");
        memcpy(path, env, n);
        path[n] = '\0';
        return op_kube_config_load_kubeconfig(path, context, cfg, err, errlen);
    }
    if (getenv("KUBERNETES_SERVICE_HOST"))
        return op_kube_config_in_cluster(sa_dir, cfg, err, errlen);
    if (!home || !*home)
        return op_kube__fail(OP_KUBE_ERR_INVALID, err, errlen,
                             "no configuration: not in a cluster, no KUBECONFIG and no HOME");
    snprintf(path, sizeof(path), "%s/.kube/config", home);
    rc = op_kube_config_load_kubeconfig(path, context, cfg, err, errlen);
    return rc;
}

/* ---------------------------------------------------------------- exec -- */

int op_kube__parse_rfc3339(const char *s, time_t *out)
{
    struct tm tm;
    const char *p;
    long off = 0;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    if (*p == '.') /* fraction: dropped */
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
               isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
               isdigit((unsigned char)p[5])) {
        off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600L + ((p[4] - '0') * 10 + (p[5] - '0')) * 60L;
        if (*p == '-')
            off = -off;
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = t - off;
    return 0;
}

void op_kube__exec_cred_dispose(op_kube__exec_cred_t *c)
{
    free(c->token);
    free(c->cert);
    free(c->key);
    memset(c, 0, sizeof(*c));
}

op_kube_err_t op_kube__exec_parse(const char *text, size_t len, op_kube__exec_cred_t *out,
                                  char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr), *status;
    const char *kind, *tok, *cert, *key, *exp;
    op_kube_err_t rc = OP_KUBE_ERR_AUTH;

    memset(out, 0, sizeof(*out));
    if (!j)
        return op_kube__fail(rc, err, errlen, "exec credential: output is not JSON: %s", jerr.text);
    kind = op_kube__str(j, "kind", NULL);
    status = json_object_get(j, "status");
    if (!kind || strcmp(kind, "ExecCredential") != 0 || !json_is_object(status)) {
        op_kube__fail(rc, err, errlen,
                      "exec credential: expected kind ExecCredential with a status");
        goto out;
    }
    tok = op_kube__str(status, "token", NULL);
    cert = op_kube__str(status, "clientCertificateData", NULL);
    key = op_kube__str(status, "clientKeyData", NULL);
    exp = op_kube__str(status, "expirationTimestamp", NULL);
    if ((!tok || !*tok) && (!cert || !key)) {
        op_kube__fail(rc, err, errlen,
                      "exec credential: status has neither token nor clientCertificateData and "
                      "clientKeyData");
        goto out;
    }
    if (exp && op_kube__parse_rfc3339(exp, &out->expiry) != 0) {
        op_kube__fail(rc, err, errlen, "exec credential: bad expirationTimestamp \"%s\"", exp);
        goto out;
    }
    if (tok && *tok && !(out->token = strdup(tok)))
        goto oom;
    /* The plugin returns PEM text, not base64, in these two fields. */
    if (cert && key) {
        out->cert = strdup(cert);
        out->key = strdup(key);
        if (!out->cert || !out->key)
            goto oom;
        out->cert_len = strlen(cert);
        out->key_len = strlen(key);
    }
    rc = OP_KUBE_OK;
    goto out;
oom:
    op_kube__fail(rc, err, errlen, "out of memory");
out:
    if (rc != OP_KUBE_OK)
        op_kube__exec_cred_dispose(out);
    json_decref(j);
    return rc;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000L + (now.tv_nsec - t0->tv_nsec) / 1000000L;
}

op_kube_err_t op_kube__exec_run(const op_kube_config_t *cfg, op_kube__exec_cred_t *out, char *err,
                                size_t errlen)
{
    posix_spawn_file_actions_t fa;
    size_t nenv = 0, nextra = 0, nargs = 0, len = 0, i;
    char **envp = NULL, **argv = NULL, *info = NULL, *buf = NULL;
    int pipefd[2] = {-1, -1}, status = 0;
    op_kube_err_t rc = OP_KUBE_ERR_AUTH;
    bool fa_ok = false, timed_out = false;
    struct timespec t0;
    pid_t pid = -1;

    memset(out, 0, sizeof(*out));
    for (char **e = environ; e && *e; e++)
        nenv++;
    for (char **e = cfg->exec_env; e && *e; e++)
        nextra++;
    for (char **a = cfg->exec_args; a && *a; a++)
        nargs++;
    envp = calloc(nenv + nextra + 2, sizeof(*envp));
    argv = calloc(nargs + 2, sizeof(*argv));
    buf = malloc(EXEC_OUTPUT_MAX + 1);
    if (asprintf(&info,
                 "KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
                 "\"spec\":{\"interactive\":false}}",
                 cfg->exec_api_version ? cfg->exec_api_version
                                       : "client.authentication.k8s.io/v1") < 0)
        info = NULL;
    if (!envp || !argv || !buf || !info) {
        rc = op_kube__fail(rc, err, errlen, "out of memory");
        goto out;
    }
    /* The plugin sees our environment plus its own env entries, which win. */
    nenv = 0;
    for (char **e = environ; e && *e; e++) {
        bool shadowed = strncmp(*e, "KUBERNETES_EXEC_INFO=", 21) == 0;

        for (i = 0; i < nextra && !shadowed; i++) {
            size_t n = strcspn(cfg->exec_env[i], "=");

            shadowed = strncmp(*e, cfg->exec_env[i], n + 1) == 0;
        }
        if (!shadowed)
            envp[nenv++] = *e;
    }
    for (i = 0; i < nextra; i++)
        envp[nenv++] = cfg->exec_env[i];
    envp[nenv++] = info;
    argv[0] = cfg->exec_command;
    for (i = 0; i < nargs; i++)
        argv[i + 1] = cfg->exec_args[i];

    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        rc = op_kube__fail(rc, err, errlen, "exec credential: pipe: %s", strerror(errno));
        goto out;
    }
    if (posix_spawn_file_actions_init(&fa) != 0) {
        rc = op_kube__fail(rc, err, errlen, "out of memory");
        goto out;
    }
    fa_ok = true;
    /* stdout is the pipe, stdin /dev/null (never interactive), stderr ours. */
    if (posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO) != 0 ||
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0) != 0) {
        rc = op_kube__fail(rc, err, errlen, "out of memory");
        goto out;
    }
    errno = posix_spawnp(&pid, cfg->exec_command, &fa, NULL, argv, envp);
    if (errno != 0) {
        pid = -1;
        rc = op_kube__fail(rc, err, errlen, "exec credential: cannot run %s: %s", cfg->exec_command,
                           strerror(errno));
        goto out;
    }
    close(pipefd[1]);
    pipefd[1] = -1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
        long left = EXEC_TIMEOUT_MS - ms_since(&t0);
        ssize_t got;
        int pr;

        if (left <= 0) {
            timed_out = true;
            break;
        }
        pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            timed_out = pr == 0;
            break;
        }
        got = read(pipefd[0], buf + len, EXEC_OUTPUT_MAX - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
        if (len == EXEC_OUTPUT_MAX) {
            rc = op_kube__fail(rc, err, errlen, "exec credential: %s wrote more than %u bytes",
                               cfg->exec_command, EXEC_OUTPUT_MAX);
            kill(pid, SIGKILL);
            goto out;
        }
    }
    if (timed_out) {
        kill(pid, SIGKILL);
        rc = op_kube__fail(OP_KUBE_ERR_TRANSIENT, err, errlen,
                           "exec credential: %s did not finish within %d s", cfg->exec_command,
                           EXEC_TIMEOUT_MS / 1000);
        goto out;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = op_kube__fail(rc, err, errlen, "exec credential: %s failed (%s %d)", cfg->exec_command,
                           WIFEXITED(status) ? "exit" : "signal",
                           WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        goto out;
    }
    buf[len] = '\0';
    rc = op_kube__exec_parse(buf, len, out, err, errlen);
out:
    if (pid > 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    free(envp);
    free(argv);
    free(buf);
    free(info);
    return rc;
}
