/* SPDX-License-Identifier: Apache-2.0 */
/* Pure renderers: ClusterStream -> store StatefulSet + Service + address,
 * Processor -> pipeline spec + ConfigMap + Service + StatefulSet. Everything
 * here is a function of its arguments (no I/O, no clock), so the unit test
 * renders tests/data/render/<case>/ and compares. Design:
 * docs/internals/operator-render.md. */
#include "op_render.h"

#include "wc_spec.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ------------------------------------------------------------ constants -- */

#define API_GROUP_VERSION "streaming.weir.dev/v1alpha1"
#define DEFAULT_IMAGE "weir-dataplane:latest"
#define DEFAULT_STORE_NS "weir-system"
#define MANAGER "weir-operator"

#define PORT_KAFKA 9092
#define PORT_HTTP 9400
#define PORT_UDF 55554

#define DATA_ROOT "/var/lib/weir"
#define STORE_DATA_DIR DATA_ROOT "/data"
#define CKPT_DIR DATA_ROOT "/checkpoints"
#define SPEC_DIR "/etc/weir"
#define SPEC_FILE "pipeline.json"
#define SPEC_PATH SPEC_DIR "/" SPEC_FILE

/* The dataplane image runs as this (distroless "nonroot") user. */
#define RUN_AS_ID 65532

#define ANNOTATION_HASH "weir.dev/config-hash"
#define ANNOTATION_DEFAULT_CONTAINER "kubectl.kubernetes.io/default-container"

/* A StatefulSet's pods carry controller-revision-hash=<name>-<10 chars>, a
 * label value (at most 63 bytes): longer StatefulSet names create no pods. */
#define STS_NAME_MAX 52
#define DNS_LABEL_MAX 63

/* Limits on what one Processor may ask for (schema limits of the spec). */
#define MAX_STREAMS 64
#define MAX_REPLICAS 1024
#define MAX_STORE_REPLICAS 64

#define NAME_BUF 320
#define HOST_BUF 1024

/* ---------------------------------------------------------------- errors -- */

const char *op_render_err_reason(op_render_err_t e)
{
    switch (e) {
    case OP_RENDER_OK:
        return "";
    case OP_RENDER_ERR_INVALID_SPEC:
        return "InvalidSpec";
    case OP_RENDER_ERR_STREAM_NOT_FOUND:
        return "StreamNotFound";
    case OP_RENDER_ERR_CLUSTER_NOT_FOUND:
        return "ClusterStreamNotFound";
    case OP_RENDER_ERR_PROTOCOL_MISMATCH:
        return "ProtocolMismatch";
    case OP_RENDER_ERR_UNSUPPORTED:
        return "NotSupported";
    case OP_RENDER_ERR_NOMEM:
        return "InternalError";
    }
    return "InternalError";
}

void op_render_out_dispose(op_render_out_t *out)
{
    if (out == NULL)
        return;
    json_decref(out->objects);
    json_decref(out->status);
    json_decref(out->pipeline);
    memset(out, 0, sizeof(*out));
}

/* One render: configuration, the caller's error buffer and the first error
 * (sticky), so building code can stay linear and check once per stage. */
typedef struct rctx {
    const op_render_config_t *cfg;
    char *err;
    size_t errlen;
    op_render_err_t rc;
} rctx_t;

static op_render_err_t failv(rctx_t *c, op_render_err_t e, const char *fmt, va_list ap)
{
    if (c->rc != OP_RENDER_OK)
        return c->rc;
    c->rc = e;
    if (c->err != NULL && c->errlen > 0)
        vsnprintf(c->err, c->errlen, fmt, ap);
    return e;
}

__attribute__((format(printf, 3, 4))) static op_render_err_t fail(rctx_t *c, op_render_err_t e,
                                                                  const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    failv(c, e, fmt, ap);
    va_end(ap);
    return c->rc;
}

static void oom(rctx_t *c)
{
    fail(c, OP_RENDER_ERR_NOMEM, "out of memory");
}

/* Sets obj[key] = v. The reference to v is stolen whatever happens (jansson
 * releases it on failure too), so v must not be used after a failed call.
 * A failure (NULL v from an allocation, or no object) is recorded in c. */
static void set(rctx_t *c, json_t *obj, const char *key, json_t *v)
{
    if (v == NULL || json_object_set_new(obj, key, v) != 0)
        oom(c);
}

/* Appends v to arr; stolen like set(). */
static void append(rctx_t *c, json_t *arr, json_t *v)
{
    if (v == NULL || json_array_append_new(arr, v) != 0)
        oom(c);
}

static json_t *str(const char *s)
{
    return json_string(s);
}

/* ----------------------------------------------------------- accessors -- */

/* Walks "a.b.c" through nested objects. Borrowed, NULL when absent. */
static const json_t *jget(const json_t *o, const char *path)
{
    char key[128];

    while (o != NULL && *path != '\0') {
        const char *dot = strchr(path, '.');
        size_t n = dot != NULL ? (size_t)(dot - path) : strlen(path);

        if (!json_is_object(o) || n >= sizeof(key))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        o = json_object_get(o, key);
        path += n + (dot != NULL);
    }
    return o;
}

static const char *jstr(const json_t *o, const char *path)
{
    const json_t *v = jget(o, path);

    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/* A scalar as text (strings as they are, integers and booleans formatted),
 * for attribute maps that YAML may have typed. 1 when present. */
static int scalar_text(const json_t *v, char *buf, size_t len)
{
    if (json_is_string(v))
        snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_true(v))
        snprintf(buf, len, "true");
    else if (json_is_false(v))
        snprintf(buf, len, "false");
    else
        return 0;
    return 1;
}

static bool streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* RFC 1123 label: what Service, container and (our) object names must be. */
static bool dns_label(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > DNS_LABEL_MAX || !isalnum((unsigned char)s[0]) ||
        !isalnum((unsigned char)s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (!(islower(ch) || isdigit(ch) || ch == '-'))
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- parsers -- */

int op_render_parse_duration_ms(const char *s, long long *ms)
{
    double total = 0;
    const char *p = s;

    if (s == NULL || *s == '\0')
        return -EINVAL;
    if (strspn(s, "0123456789") == strlen(s)) {
        char *end;

        errno = 0;
        *ms = strtoll(s, &end, 10);
        return errno == 0 && *end == '\0' ? 0 : -EINVAL;
    }
    while (*p != '\0') {
        char *end;
        double v, mult;

        if (!isdigit((unsigned char)*p) && *p != '.')
            return -EINVAL;
        v = strtod(p, &end);
        if (end == p || v < 0)
            return -EINVAL;
        p = end;
        if (strncmp(p, "ms", 2) == 0) {
            mult = 1, p += 2;
        } else if (*p == 's') {
            mult = 1e3, p++;
        } else if (*p == 'm') {
            mult = 60e3, p++;
        } else if (*p == 'h') {
            mult = 3600e3, p++;
        } else if (*p == 'd') {
            mult = 86400e3, p++;
        } else {
            return -EINVAL;
        }
        total += v * mult;
    }
    if (total > 9.0e15 || total != floor(total))
        return -EINVAL;
    *ms = (long long)total;
    return 0;
}

int op_render_parse_bytes(const char *s, long long *bytes)
{
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {
        {"Ki", 1024.0},
        {"Mi", 1048576.0},
        {"Gi", 1073741824.0},
        {"Ti", 1099511627776.0},
        {"Pi", 1125899906842624.0},
        {"k", 1e3},
        {"M", 1e6},
        {"G", 1e9},
        {"T", 1e12},
        {"P", 1e15},
        {"", 1.0},
    };
    char *end;
    double v;

    if (s == NULL || *s == '\0' || !(isdigit((unsigned char)*s) || *s == '.'))
        return -EINVAL;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || !isfinite(v) || v < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            v *= units[i].mult;
            if (v != floor(v) || v > 4.0e18)
                return -EINVAL;
            *bytes = (long long)v;
            return 0;
        }
    }
    return -EINVAL;
}

/* A duration field of a CR: a string ("5s") or an integer (ms). */
static int json_duration(const json_t *v, long long *ms)
{
    char buf[64];

    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return -EINVAL;
        *ms = json_integer_value(v);
        return 0;
    }
    if (!scalar_text(v, buf, sizeof(buf)))
        return -EINVAL;
    return op_render_parse_duration_ms(buf, ms);
}

static int json_bytes(const json_t *v, long long *bytes)
{
    char buf[64];

    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return -EINVAL;
        *bytes = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v) || !scalar_text(v, buf, sizeof(buf)))
        return -EINVAL;
    return op_render_parse_bytes(buf, bytes);
}

/* ------------------------------------------------------------------ hash -- */

int op_render_hash(const json_t *v, char hex[17])
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    uint64_t h = 0xcbf29ce484222325ULL;

    if (text == NULL)
        return -ENOMEM;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    free(text);
    snprintf(hex, 17, "%016" PRIx64, h);
    return 0;
}

/* ------------------------------------------------------------------ YAML -- */

#define YAML_DEPTH_MAX 64
#define YAML_ALIASES_MAX 1024

typedef struct yctx {
    yaml_parser_t parser;
    json_t *anchors; /* anchor name -> node */
    unsigned aliases;
    char *err;
    size_t errlen;
} yctx_t;

__attribute__((format(printf, 3, 4))) static int yfail(yctx_t *y, const yaml_mark_t *m,
                                                       const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (y->err != NULL && y->errlen > 0)
        snprintf(y->err, y->errlen, "%zu:%zu: %s", m->line + 1, m->column + 1, msg);
    return -EINVAL;
}

static int ynext(yctx_t *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->parser, ev)) {
        const char *problem = y->parser.problem != NULL ? y->parser.problem : "syntax error";

        return yfail(y, &y->parser.problem_mark, "%s", problem);
    }
    return 0;
}

static bool all_in(const char *s, size_t n, const char *set)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strchr(set, s[i]) == NULL || s[i] == '\0')
            return false;
    return true;
}

static const char *const yaml11_true[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                          "True", "TRUE", "on",  "On",  "ON"};
static const char *const yaml11_false[] = {"n",     "N",     "no",  "No",  "NO", "false",
                                           "False", "FALSE", "off", "Off", "OFF"};

/* Resolution of a plain scalar: YAML 1.2 core schema for null, numbers
 * and strings, YAML 1.1 for booleans (see below). */
static json_t *plain_scalar(const char *s, size_t n)
{
    const char *d = s;
    size_t dn = n;

    if (n == 0 || (n == 1 && s[0] == '~') || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
        strcmp(s, "NULL") == 0)
        return json_null();
    /* Booleans as kubectl reads them (YAML 1.1, go-yaml v2), so a manifest
     * means the same to weirctl as to the API server: "n" and "off" are false. */
    for (size_t i = 0; i < sizeof(yaml11_true) / sizeof(yaml11_true[0]); i++)
        if (strcmp(s, yaml11_true[i]) == 0)
            return json_true();
    for (size_t i = 0; i < sizeof(yaml11_false) / sizeof(yaml11_false[0]); i++)
        if (strcmp(s, yaml11_false[i]) == 0)
            return json_false();
    if (strlen(s) != n)
        return json_stringn(s, n);
    if (*d == '-' || *d == '+')
        d++, dn--;
    if (all_in(d, dn, "0123456789")) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno == 0 && *end == '\0')
            return json_integer(v);
        return json_real(strtod(s, NULL));
    }
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o') &&
        all_in(s + 2, n - 2, s[1] == 'x' ? "0123456789abcdefABCDEF" : "01234567")) {
        errno = 0;
        unsigned long long v = strtoull(s + 2, NULL, s[1] == 'x' ? 16 : 8);
        if (errno == 0 && v <= (unsigned long long)LLONG_MAX)
            return json_integer((json_int_t)v);
        return json_stringn(s, n);
    }
    {
        /* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
        size_t i = 0, digits = 0;

        while (i < dn && isdigit((unsigned char)d[i]))
            i++, digits++;
        if (i < dn && d[i] == '.') {
            i++;
            while (i < dn && isdigit((unsigned char)d[i]))
                i++, digits++;
        }
        if (digits > 0 && i < dn && (d[i] == 'e' || d[i] == 'E')) {
            size_t e0;

            i++;
            if (i < dn && (d[i] == '-' || d[i] == '+'))
                i++;
            e0 = i;
            while (i < dn && isdigit((unsigned char)d[i]))
                i++;
            if (i == e0)
                digits = 0;
        }
        if (digits > 0 && i == dn) {
            double v = strtod(s, NULL);

            if (isfinite(v))
                return json_real(v);
        }
    }
    return json_stringn(s, n);
}

static int yanchor(yctx_t *y, const yaml_char_t *anchor, json_t *node)
{
    if (anchor == NULL)
        return 0;
    return json_object_set(y->anchors, (const char *)anchor, node) == 0 ? 0 : -ENOMEM;
}

static int ynode(yctx_t *y, yaml_event_t *ev, int depth, json_t **out);

static int ycontainer(yctx_t *y, yaml_event_t *start, int depth, json_t **out)
{
    bool is_map = start->type == YAML_MAPPING_START_EVENT;
    yaml_event_type_t end_type = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    json_t *node = is_map ? json_object() : json_array();
    int rc = 0;

    if (node == NULL)
        return -ENOMEM;
    if (depth >= YAML_DEPTH_MAX) {
        json_decref(node);
        return yfail(y, &start->start_mark, "nesting deeper than %d levels", YAML_DEPTH_MAX);
    }
    for (;;) {
        yaml_event_t ev;
        json_t *child = NULL;
        char *key = NULL;

        rc = ynext(y, &ev);
        if (rc != 0)
            break;
        if (ev.type == end_type) {
            yaml_event_delete(&ev);
            break;
        }
        if (is_map) {
            if (ev.type != YAML_SCALAR_EVENT) {
                rc = yfail(y, &ev.start_mark, "mapping keys must be scalars");
                yaml_event_delete(&ev);
                break;
            }
            key = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
            if (key == NULL) {
                yaml_event_delete(&ev);
                rc = -ENOMEM;
                break;
            }
            if (json_object_get(node, key) != NULL) {
                rc = yfail(y, &ev.start_mark, "duplicate key \"%s\"", key);
                yaml_event_delete(&ev);
                free(key);
                break;
            }
            yaml_event_delete(&ev);
            rc = ynext(y, &ev);
            if (rc != 0) {
                free(key);
                break;
            }
        }
        rc = ynode(y, &ev, depth + 1, &child);
        yaml_event_delete(&ev);
        if (rc == 0) {
            if (is_map)
                rc = json_object_set_new(node, key, child) == 0 ? 0 : -ENOMEM;
            else
                rc = json_array_append_new(node, child) == 0 ? 0 : -ENOMEM;
        }
        free(key);
        if (rc != 0)
            break;
    }
    if (rc == 0)
        rc = yanchor(
            y, is_map ? start->data.mapping_start.anchor : start->data.sequence_start.anchor, node);
    if (rc != 0) {
        json_decref(node);
        return rc;
    }
    *out = node;
    return 0;
}

static int ynode(yctx_t *y, yaml_event_t *ev, int depth, json_t **out)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)ev->data.scalar.value;
        size_t n = ev->data.scalar.length;
        const char *tag = (const char *)ev->data.scalar.tag;
        json_t *node;

        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            (tag == NULL || strcmp(tag, "!") != 0) &&
            (tag == NULL || strcmp(tag, YAML_STR_TAG) != 0))
            node = plain_scalar(v, n);
        else
            node = json_stringn(v, n);
        if (node == NULL)
            return -ENOMEM;
        if (yanchor(y, ev->data.scalar.anchor, node) != 0) {
            json_decref(node);
            return -ENOMEM;
        }
        *out = node;
        return 0;
    }
    case YAML_ALIAS_EVENT: {
        json_t *node = json_object_get(y->anchors, (const char *)ev->data.alias.anchor);

        if (node == NULL)
            return yfail(y, &ev->start_mark, "unknown anchor \"%s\"",
                         (const char *)ev->data.alias.anchor);
        if (++y->aliases > YAML_ALIASES_MAX)
            return yfail(y, &ev->start_mark, "more than %d aliases", YAML_ALIASES_MAX);
        /* Shared, not copied: documents are read-only inputs to renderers. */
        *out = json_incref(node);
        return 0;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return ycontainer(y, ev, depth, out);
    default:
        return yfail(y, &ev->start_mark, "unexpected YAML event %d", (int)ev->type);
    }
}

int op_render_yaml_load(const char *buf, size_t len, json_t **docs, char *err, size_t errlen)
{
    yctx_t y = {.err = err, .errlen = errlen};
    json_t *arr = json_array();
    int rc = 0;

    y.anchors = json_object();
    if (arr == NULL || y.anchors == NULL || !yaml_parser_initialize(&y.parser)) {
        json_decref(arr);
        json_decref(y.anchors);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)buf, len);
    for (;;) {
        yaml_event_t ev;

        rc = ynext(&y, &ev);
        if (rc != 0)
            break;
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type == YAML_DOCUMENT_START_EVENT) {
            json_t *doc = NULL;

            yaml_event_delete(&ev);
            json_object_clear(y.anchors); /* anchors are per document */
            rc = ynext(&y, &ev);
            if (rc != 0)
                break;
            rc = ynode(&y, &ev, 0, &doc);
            yaml_event_delete(&ev);
            if (rc != 0)
                break;
            if (!json_is_null(doc) && json_array_append(arr, doc) != 0)
                rc = -ENOMEM;
            json_decref(doc);
            if (rc != 0)
                break;
            continue;
        }
        yaml_event_delete(&ev); /* STREAM_START, DOCUMENT_END */
    }
    yaml_parser_delete(&y.parser);
    json_decref(y.anchors);
    if (rc != 0) {
        json_decref(arr);
        if (rc == -ENOMEM && err != NULL && errlen > 0)
            snprintf(err, errlen, "out of memory");
        return rc;
    }
    *docs = arr;
    return 0;
}

/* ------------------------------------------------------ object building -- */

/* The recommended labels on every child; `selector` limits them to the two
 * that never change, for spec.selector (immutable on a StatefulSet). */
static json_t *labels(const char *app, const char *instance, const char *component, bool selector)
{
    if (selector)
        return json_pack("{s:s, s:s}", "app.kubernetes.io/name", app, "app.kubernetes.io/instance",
                         instance);
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "app.kubernetes.io/name", app,
                     "app.kubernetes.io/instance", instance, "app.kubernetes.io/component",
                     component, "app.kubernetes.io/part-of", "weir", "app.kubernetes.io/managed-by",
                     MANAGER);
}

/* metadata of a child owned (as controller) by `owner`. */
static json_t *child_meta(const json_t *owner, const char *name, const char *ns, const char *app,
                          const char *component)
{
    const char *oname = jstr(owner, "metadata.name");

    return json_pack("{s:s, s:s, s:o, s:[{s:s, s:s, s:s, s:s, s:b, s:b}]}", "name", name,
                     "namespace", ns, "labels", labels(app, oname, component, false),
                     "ownerReferences", "apiVersion", API_GROUP_VERSION, "kind",
                     jstr(owner, "kind"), "name", oname, "uid", jstr(owner, "metadata.uid"),
                     "controller", 1, "blockOwnerDeletion", 1);
}

/* The owner fields every render needs; the API server always sets them. */
static op_render_err_t check_owner(rctx_t *c, const json_t *cr, const char *kind, bool namespaced)
{
    const char *name = jstr(cr, "metadata.name");

    if (!json_is_object(cr) || !json_is_object(json_object_get(cr, "spec")))
        return fail(c, OP_RENDER_ERR_INVALID_SPEC, "%s has no spec", kind);
    if (!streq(jstr(cr, "kind"), kind))
        return fail(c, OP_RENDER_ERR_INVALID_SPEC, "expected kind %s, got %s", kind,
                    jstr(cr, "kind") ? jstr(cr, "kind") : "(none)");
    if (name == NULL || jstr(cr, "metadata.uid") == NULL)
        return fail(c, OP_RENDER_ERR_INVALID_SPEC, "%s needs metadata.name and metadata.uid", kind);
    if (namespaced && jstr(cr, "metadata.namespace") == NULL)
        return fail(c, OP_RENDER_ERR_INVALID_SPEC, "%s %s has no metadata.namespace", kind, name);
    return OP_RENDER_OK;
}

static op_render_err_t child_name(rctx_t *c, char *buf, size_t len, const char *prefix,
                                  const char *name)
{
    snprintf(buf, len, "%s%s", prefix, name);
    if (strlen(buf) > STS_NAME_MAX || !dns_label(buf))
        return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                    "child name \"%s\" must be a DNS label of at most %d characters: shorten "
                    "metadata.name",
                    buf, STS_NAME_MAX);
    return OP_RENDER_OK;
}

static json_t *http_probe(const char *path, int period_s, int failures)
{
    return json_pack("{s:{s:s, s:s}, s:i, s:i, s:i}", "httpGet", "path", path, "port", "http",
                     "periodSeconds", period_s, "timeoutSeconds", 2, "failureThreshold", failures);
}

/* Hardened container securityContext: non-root, no privilege escalation,
 * read-only root (scratch space is an emptyDir on /tmp), no capabilities. */
static json_t *container_security(void)
{
    return json_pack("{s:b, s:b, s:b, s:i, s:i, s:{s:[s]}}", "runAsNonRoot", 1,
                     "allowPrivilegeEscalation", 0, "readOnlyRootFilesystem", 1, "runAsUser",
                     RUN_AS_ID, "runAsGroup", RUN_AS_ID, "capabilities", "drop", "ALL");
}

static json_t *pod_security(const op_render_config_t *cfg)
{
    json_t *sc = json_pack("{s:b, s:i, s:i, s:i, s:s}", "runAsNonRoot", 1, "runAsUser", RUN_AS_ID,
                           "runAsGroup", RUN_AS_ID, "fsGroup", RUN_AS_ID, "fsGroupChangePolicy",
                           "OnRootMismatch");

    if (sc != NULL && cfg->seccomp_profile != NULL &&
        json_object_set_new(sc, "seccompProfile", json_deep_copy(cfg->seccomp_profile)) != 0) {
        json_decref(sc);
        return NULL;
    }
    return sc;
}

static json_t *resources_or(const json_t *configured, const char *req_cpu, const char *req_mem,
                            const char *lim_cpu, const char *lim_mem)
{
    if (configured != NULL)
        return json_deep_copy(configured);
    return json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "requests", "cpu", req_cpu, "memory", req_mem,
                     "limits", "cpu", lim_cpu, "memory", lim_mem);
}

/* Environment every dataplane container gets: its pod name (the replica
 * ordinal) from the downward API and one worker per CPU of its limit. */
static json_t *dataplane_env(const char *container)
{
    return json_pack("[{s:s, s:{s:{s:s}}}, {s:s, s:{s:{s:s}}}, {s:s, s:{s:{s:s, s:s, s:s}}}]",
                     "name", "WEIR_POD_NAME", "valueFrom", "fieldRef", "fieldPath", "metadata.name",
                     "name", "WEIR_NAMESPACE", "valueFrom", "fieldRef", "fieldPath",
                     "metadata.namespace", "name", "WEIR_WORKERS", "valueFrom", "resourceFieldRef",
                     "containerName", container, "resource", "limits.cpu", "divisor", "1");
}

/* Environment of a client container from the credentials Secret `secret`
 * (secretKeyRef only: the values never reach a ConfigMap or the spec). Keys
 * as op_render_credentials_env documents; all optional, so a Secret with
 * only some of them still lets the pod start. */
static void append_credentials_env(rctx_t *c, json_t *container, const char *secret)
{
    static const char *const map[][2] = {
        {"WEIR_KAFKA_SECURITY_PROTOCOL", "security.protocol"},
        {"WEIR_KAFKA_SASL_MECHANISM", "sasl.mechanism"},
        {"WEIR_KAFKA_SASL_USERNAME", "username"},
        {"WEIR_KAFKA_SASL_PASSWORD", "password"},
        {"WEIR_KAFKA_SSL_CA_PEM", "ca.crt"},
    };
    json_t *env = json_object_get(container, "env");

    if (secret == NULL || c->rc != OP_RENDER_OK)
        return;
    if (env == NULL) {
        set(c, container, "env", json_array());
        env = json_object_get(container, "env");
    }
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]) && c->rc == OP_RENDER_OK; i++)
        append(c, env,
               json_pack("{s:s, s:{s:{s:s, s:s, s:b}}}", "name", map[i][0], "valueFrom",
                         "secretKeyRef", "name", secret, "key", map[i][1], "optional", 1));
}

const char *op_render_credentials_secret(const json_t *cs)
{
    const char *s = jstr(cs, "spec.storage.credentialsSecret");

    return s != NULL ? s : jstr(cs, "spec.storage.server.binding");
}

static json_t *headless_service(const json_t *owner, const char *name, const char *ns,
                                const char *app, const char *component, json_t *ports,
                                bool publish_not_ready)
{
    const char *instance = jstr(owner, "metadata.name");

    return json_pack("{s:s, s:s, s:o, s:{s:s, s:b, s:o, s:o}}", "apiVersion", "v1", "kind",
                     "Service", "metadata", child_meta(owner, name, ns, app, component), "spec",
                     "clusterIP", "None", "publishNotReadyAddresses", publish_not_ready, "selector",
                     labels(app, instance, component, true), "ports", ports);
}

/* ------------------------------------------------------- ClusterStream -- */

typedef enum { PROTO_WEIR, PROTO_KAFKA, PROTO_RABBITMQ, PROTO_UNKNOWN } proto_t;

static proto_t proto_of(const char *s)
{
    if (streq(s, "weir"))
        return PROTO_WEIR;
    if (streq(s, "kafka"))
        return PROTO_KAFKA;
    if (streq(s, "rabbitmq"))
        return PROTO_RABBITMQ;
    return PROTO_UNKNOWN;
}

static const char *store_namespace(const op_render_config_t *cfg, const json_t *cs)
{
    const char *ns = jstr(cs, "spec.storage.attributes.namespace");

    if (ns != NULL)
        return ns;
    return cfg->store_namespace != NULL ? cfg->store_namespace : DEFAULT_STORE_NS;
}

static int store_replicas(const json_t *cs)
{
    const json_t *r = jget(cs, "spec.storage.replicas");

    return r == NULL ? 1 : (int)json_integer_value(r);
}

/* Host names of a weir store: the Service and each pod under it. */
static void store_host(const op_render_config_t *cfg, const char *svc, const char *ns, int ordinal,
                       char *buf, size_t len)
{
    const char *dom = cfg->cluster_domain;

    if (ordinal < 0)
        snprintf(buf, len, "%s.%s.svc%s%s", svc, ns, dom ? "." : "", dom ? dom : "");
    else
        snprintf(buf, len, "%s-%d.%s.%s.svc%s%s", svc, ordinal, svc, ns, dom ? "." : "",
                 dom ? dom : "");
}

/* Splits a bring-your-own URL into "host:port[,host:port]" brokers: an
 * optional scheme ("kafka://", "SASL_SSL://", "amqp://"), optional userinfo,
 * then a comma list of host[:port], then an optional path. */
static op_render_err_t parse_url(rctx_t *c, const char *url, int default_port, char *brokers,
                                 size_t blen, char *host, size_t hlen, int *port)
{
    const char *p = strstr(url, "://");
    size_t used = 0;
    bool first = true;

    p = p != NULL ? p + 3 : url;
    {
        const char *at = strchr(p, '@');
        const char *slash = strchr(p, '/');

        if (at != NULL && (slash == NULL || at < slash))
            p = at + 1;
    }
    brokers[0] = '\0';
    while (*p != '\0' && *p != '/' && *p != '?') {
        size_t n = strcspn(p, ",/?");
        char h[256];
        long prt = default_port;
        const char *colon;

        if (n == 0 || n >= sizeof(h))
            return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                        "spec.storage.server.url \"%s\" is not "
                        "host[:port][,host[:port]...]",
                        url);
        memcpy(h, p, n);
        h[n] = '\0';
        colon = strrchr(h, ':');
        if (colon != NULL && strchr(h, ']') == NULL) {
            char *end;

            prt = strtol(colon + 1, &end, 10);
            if (*end != '\0' || prt < 1 || prt > 65535 || colon == h)
                return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                            "spec.storage.server.url \"%s\": bad port in \"%s\"", url, h);
            h[colon - h] = '\0';
        }
        if (first) {
            snprintf(host, hlen, "%s", h);
            *port = (int)prt;
            first = false;
        }
        used += (size_t)snprintf(brokers + used, used < blen ? blen - used : 0, "%s%s:%ld",
                                 used ? "," : "", h, prt);
        if (used >= blen)
            return fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.storage.server.url is too long");
        p += n;
        if (*p == ',')
            p++;
    }
    if (first)
        return fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.storage.server.url \"%s\" has no host",
                    url);
    return OP_RENDER_OK;
}

static op_render_err_t cluster_address(rctx_t *c, const json_t *cs, json_t **addr)
{
    const char *name = jstr(cs, "metadata.name");
    const char *protocol = jstr(cs, "spec.storage.server.protocol");
    const char *url = jstr(cs, "spec.storage.server.url");
    char brokers[4096], host[HOST_BUF], urlbuf[HOST_BUF + 16];
    int port = 0;

    if (name == NULL)
        return fail(c, OP_RENDER_ERR_INVALID_SPEC, "ClusterStream has no metadata.name");
    switch (proto_of(protocol)) {
    case PROTO_WEIR: {
        const char *ns = store_namespace(c->cfg, cs);
        char svc[NAME_BUF];
        int n = store_replicas(cs);
        size_t used = 0;

        if (child_name(c, svc, sizeof(svc), "weir-store-", name) != OP_RENDER_OK)
            return c->rc;
        if (n < 1 || n > MAX_STORE_REPLICAS)
            return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                        "spec.storage.replicas must be 1..%d, got %d", MAX_STORE_REPLICAS, n);
        for (int i = 0; i < n; i++) {
            store_host(c->cfg, svc, ns, i, host, sizeof(host));
            used += (size_t)snprintf(brokers + used, sizeof(brokers) - used, "%s%s:%d",
                                     i ? "," : "", host, PORT_KAFKA);
            if (used >= sizeof(brokers))
                return fail(c, OP_RENDER_ERR_INVALID_SPEC, "too many store replicas");
        }
        store_host(c->cfg, svc, ns, -1, host, sizeof(host));
        port = PORT_KAFKA;
        snprintf(urlbuf, sizeof(urlbuf), "%s:%d", host, port);
        url = urlbuf;
        break;
    }
    case PROTO_KAFKA:
    case PROTO_RABBITMQ:
        if (url == NULL)
            return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                        "ClusterStream %s: protocol %s needs spec.storage.server.url", name,
                        protocol);
        if (parse_url(c, url, proto_of(protocol) == PROTO_KAFKA ? 9092 : 5672, brokers,
                      sizeof(brokers), host, sizeof(host), &port) != OP_RENDER_OK)
            return c->rc;
        break;
    default:
        return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                    "ClusterStream %s: spec.storage.server.protocol must be weir, kafka or "
                    "rabbitmq, got \"%s\"",
                    name, protocol ? protocol : "");
    }
    {
        char portbuf[16];

        snprintf(portbuf, sizeof(portbuf), "%d", port);
        *addr = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "url", url, "protocol", protocol,
                          "protocolVersion", "1.0.0", "variables", "brokers", brokers, "host", host,
                          "port", portbuf);
    }
    if (*addr == NULL)
        oom(c);
    return c->rc;
}

op_render_err_t op_render_cluster_address(const op_render_config_t *cfg, const json_t *cs,
                                          json_t **addr, char *err, size_t errlen)
{
    rctx_t c = {.cfg = cfg, .err = err, .errlen = errlen};

    *addr = NULL;
    return cluster_address(&c, cs, addr);
}

static json_t *store_statefulset(rctx_t *c, const json_t *cs, const char *name, const char *ns)
{
    const op_render_config_t *cfg = c->cfg;
    const char *instance = jstr(cs, "metadata.name");
    const char *size = jstr(cs, "spec.storage.volume.size");
    const char *sc = jstr(cs, "spec.storage.volume.storageClassName");
    const char *reclaim = jstr(cs, "spec.storage.reclaimPolicy");
    const json_t *ret_time = jget(cs, "spec.storage.retention.time");
    const json_t *ret_bytes = jget(cs, "spec.storage.retention.bytes");
    int replicas = store_replicas(cs);
    char host[HOST_BUF], num[32];
    json_t *args, *container, *pvc, *pod, *sts, *annotations;
    long long v;

    if (reclaim == NULL)
        reclaim = "Retain";
    if (!streq(reclaim, "Retain") && !streq(reclaim, "Delete")) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC,
             "spec.storage.reclaimPolicy must be Retain or Delete, got \"%s\"", reclaim);
        return NULL;
    }
    /* $(WEIR_POD_NAME) is expanded by the kubelet from the container's env. */
    snprintf(host, sizeof(host), "$(WEIR_POD_NAME).%s.%s.svc%s%s", name, ns,
             cfg->cluster_domain ? "." : "", cfg->cluster_domain ? cfg->cluster_domain : "");
    snprintf(num, sizeof(num), "%d", replicas);
    args = json_pack("[s, s, s, s, s, s, s, s, s, s, s, s, s, s]", "--role", "store", "--data-dir",
                     STORE_DATA_DIR, "--kafka-port", "9092", "--http-port", "9400", "--replicas",
                     num, "--pod-name", "$(WEIR_POD_NAME)", "--advertised-host", host);
    if (ret_time != NULL) {
        if (json_duration(ret_time, &v) != 0) {
            json_decref(args);
            fail(c, OP_RENDER_ERR_INVALID_SPEC,
                 "spec.storage.retention.time is not a duration (e.g. 7d, 12h)");
            return NULL;
        }
        snprintf(num, sizeof(num), "%lld", v);
        append(c, args, str("--retention-ms"));
        append(c, args, str(num));
    }
    if (ret_bytes != NULL) {
        if (json_bytes(ret_bytes, &v) != 0) {
            json_decref(args);
            fail(c, OP_RENDER_ERR_INVALID_SPEC,
                 "spec.storage.retention.bytes is not a byte quantity (e.g. 10Gi)");
            return NULL;
        }
        snprintf(num, sizeof(num), "%lld", v);
        append(c, args, str("--retention-bytes"));
        append(c, args, str(num));
    }
    container = json_pack(
        "{s:s, s:s, s:o, s:o, s:[{s:s, s:i, s:s}, {s:s, s:i, s:s}], s:o, s:o, s:o, s:o, s:o, "
        "s:[{s:s, s:s}, {s:s, s:s}]}",
        "name", "store", "image", cfg->dataplane_image ? cfg->dataplane_image : DEFAULT_IMAGE,
        "args", args, "env", dataplane_env("store"), "ports", "name", "kafka", "containerPort",
        PORT_KAFKA, "protocol", "TCP", "name", "http", "containerPort", PORT_HTTP, "protocol",
        "TCP", "resources", resources_or(cfg->store_resources, "500m", "1Gi", "2", "2Gi"),
        "startupProbe",
        /* Log recovery after a crash scans segment tails: give it 10 minutes. */
        http_probe("/healthz", 5, 120), "readinessProbe", http_probe("/readyz", 5, 3),
        "livenessProbe", http_probe("/healthz", 10, 6), "securityContext", container_security(),
        "volumeMounts", "name", "data", "mountPath", STORE_DATA_DIR, "name", "tmp", "mountPath",
        "/tmp");
    if (container != NULL && cfg->image_pull_policy != NULL)
        set(c, container, "imagePullPolicy", str(cfg->image_pull_policy));
    if (container != NULL)
        append_credentials_env(c, container, op_render_credentials_secret(cs));
    pvc = json_pack("{s:{s:s, s:o}, s:{s:[s], s:{s:{s:s}}}}", "metadata", "name", "data", "labels",
                    labels("weir-store", instance, "store", false), "spec", "accessModes",
                    "ReadWriteOnce", "resources", "requests", "storage", size ? size : "10Gi");
    if (pvc != NULL && sc != NULL)
        set(c, json_object_get(pvc, "spec"), "storageClassName", str(sc));
    annotations = json_pack("{s:s, s:s, s:s}", "prometheus.io/scrape", "true", "prometheus.io/port",
                            "9400", "prometheus.io/path", "/metrics");
    pod = json_pack("{s:o, s:b, s:[o], s:[{s:s, s:{s:s}}]}", "securityContext", pod_security(cfg),
                    "enableServiceLinks", 0, "containers", container, "volumes", "name", "tmp",
                    "emptyDir", "medium", "Memory");
    sts = json_pack("{s:s, s:s, s:o, s:{s:s, s:i, s:s, s:{s:o}, s:{s:s}, s:{s:s, s:s}, "
                    "s:{s:{s:o, s:o}, s:o}, s:[o]}}",
                    "apiVersion", "apps/v1", "kind", "StatefulSet", "metadata",
                    child_meta(cs, name, ns, "weir-store", "store"), "spec", "serviceName", name,
                    "replicas", replicas, "podManagementPolicy", "Parallel", "selector",
                    "matchLabels", labels("weir-store", instance, "store", true), "updateStrategy",
                    "type", "RollingUpdate", "persistentVolumeClaimRetentionPolicy", "whenDeleted",
                    reclaim, "whenScaled", "Retain", "template", "metadata", "labels",
                    labels("weir-store", instance, "store", false), "annotations", annotations,
                    "spec", pod, "volumeClaimTemplates", pvc);
    if (sts == NULL)
        oom(c);
    if (c->rc != OP_RENDER_OK) {
        json_decref(sts);
        return NULL;
    }
    return sts;
}

op_render_err_t op_render_cluster_stream(const op_render_config_t *cfg, const json_t *cs,
                                         op_render_out_t *out, char *err, size_t errlen)
{
    rctx_t c = {.cfg = cfg, .err = err, .errlen = errlen};
    json_t *addr = NULL;
    const char *binding;

    memset(out, 0, sizeof(*out));
    if (check_owner(&c, cs, "ClusterStream", false) != OP_RENDER_OK)
        return c.rc;
    if (cluster_address(&c, cs, &addr) != OP_RENDER_OK)
        return c.rc;
    out->objects = json_array();
    out->status = json_pack("{s:{s:{s:o}}}", "storageAddress", "server", "production", addr);
    if (out->objects == NULL || out->status == NULL)
        oom(&c);
    binding = jstr(cs, "spec.storage.server.binding");
    if (binding != NULL)
        set(&c, out->status, "binding", json_pack("{s:s}", "name", binding));
    if (c.rc == OP_RENDER_OK && proto_of(jstr(cs, "spec.storage.server.protocol")) == PROTO_WEIR) {
        const char *ns = store_namespace(cfg, cs);
        char name[NAME_BUF];

        child_name(&c, name, sizeof(name), "weir-store-", jstr(cs, "metadata.name"));
        if (c.rc == OP_RENDER_OK) {
            json_t *ports = json_pack("[{s:s, s:i, s:s}, {s:s, s:i, s:s}]", "name", "kafka", "port",
                                      PORT_KAFKA, "targetPort", "kafka", "name", "http", "port",
                                      PORT_HTTP, "targetPort", "http");

            /* Clients are told each pod's own name in Metadata, so pods must
             * resolve before they are ready (as for any Kafka StatefulSet). */
            append(&c, out->objects,
                   headless_service(cs, name, ns, "weir-store", "store", ports, true));
            if (c.rc == OP_RENDER_OK) {
                json_t *sts = store_statefulset(&c, cs, name, ns);

                if (sts != NULL)
                    append(&c, out->objects, sts);
            }
        }
    }
    if (c.rc != OP_RENDER_OK)
        op_render_out_dispose(out);
    return c.rc;
}

/* ----------------------------------------------------- stream resolution -- */

/* A Processor input, output or dead-letter Stream resolved to its topic and
 * cluster. `addr` is owned. */
typedef struct rstream {
    const json_t *stream;
    const char *name;    /* Stream metadata.name: the pipeline input/output name */
    const char *topic;   /* Stream spec.name */
    const char *cluster; /* ClusterStream metadata.name */
    proto_t protocol;    /* the ClusterStream's */
    json_t *addr;        /* status.storageAddress.server.production of the cluster */
    const char *brokers; /* borrowed from addr */
    json_int_t partitions;
    const char *key_expr; /* spec.keyExpression or NULL */
    const char *format;   /* json | raw */
    bool compacted;
} rstream_t;

static void rstreams_dispose(rstream_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(s[i].addr);
}

static const json_t *find_named(const json_t *list, const char *name, const char *ns)
{
    size_t i;
    const json_t *o;

    json_array_foreach (list, i, o) {
        const char *ons = jstr(o, "metadata.namespace");

        if (streq(jstr(o, "metadata.name"), name) && (ns == NULL || ons == NULL || streq(ons, ns)))
            return o;
    }
    return NULL;
}

static op_render_err_t resolve_stream(rctx_t *c, const json_t *deps, const char *ns,
                                      const char *role, const char *name, rstream_t *out)
{
    const json_t *st = find_named(json_object_get(deps, "streams"), name, ns);
    const json_t *cs;
    const json_t *pc;
    const char *sproto, *csname, *fmt;
    char defcs[NAME_BUF];
    proto_t cproto;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return fail(c, OP_RENDER_ERR_STREAM_NOT_FOUND, "%s Stream \"%s\" not found in namespace %s",
                    role, name, ns);
    out->stream = st;
    out->name = name;
    out->topic = jstr(st, "spec.name");
    if (out->topic == NULL)
        return fail(c, OP_RENDER_ERR_INVALID_SPEC, "Stream %s has no spec.name", name);
    csname = jstr(st, "spec.storage.clusterStream");
    if (csname == NULL) {
        /* streaming-runtimes' default; the reconciler may auto-provision it. */
        snprintf(defcs, sizeof(defcs), "%s-cluster-stream", name);
        csname = defcs;
    }
    cs = find_named(json_object_get(deps, "clusterStreams"), csname, NULL);
    if (cs == NULL)
        return fail(c, OP_RENDER_ERR_CLUSTER_NOT_FOUND,
                    "ClusterStream \"%s\" of %s Stream %s not found", csname, role, name);
    out->cluster = jstr(cs, "metadata.name");
    cproto = proto_of(jstr(cs, "spec.storage.server.protocol"));
    sproto = jstr(st, "spec.protocol");
    /* The weir store speaks the Kafka protocol, so a Stream written for
     * Kafka (as every ported streaming-runtimes manifest is) may live on it. */
    if (sproto != NULL && proto_of(sproto) != cproto &&
        !(proto_of(sproto) == PROTO_KAFKA && cproto == PROTO_WEIR))
        return fail(c, OP_RENDER_ERR_PROTOCOL_MISMATCH,
                    "Stream %s has protocol %s but its ClusterStream %s has protocol %s", name,
                    sproto, out->cluster,
                    jstr(cs, "spec.storage.server.protocol")
                        ? jstr(cs, "spec.storage.server.protocol")
                        : "(none)");
    out->protocol = cproto;
    if (cluster_address(c, cs, &out->addr) != OP_RENDER_OK)
        return c->rc;
    out->brokers = jstr(out->addr, "variables.brokers");
    out->key_expr = jstr(st, "spec.keyExpression");
    pc = jget(st, "spec.partitionCount");
    if (pc != NULL) {
        out->partitions = json_integer_value(pc);
        if (!json_is_integer(pc) || out->partitions < 1 || out->partitions > 65536)
            return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                        "Stream %s: spec.partitionCount must be 1..65536", name);
    } else {
        /* "default 5 when partitioned": a key makes a stream partitioned. */
        out->partitions =
            out->key_expr != NULL || json_array_size(jget(st, "spec.keys")) > 0 ? 5 : 1;
    }
    fmt = jstr(st, "spec.format");
    out->format = fmt != NULL ? fmt : "json";
    if (!streq(out->format, "json") && !streq(out->format, "raw"))
        return fail(c, OP_RENDER_ERR_INVALID_SPEC, "Stream %s: spec.format must be json or raw",
                    name);
    out->compacted = json_is_true(jget(st, "spec.compacted"));
    return OP_RENDER_OK;
}

/* Resolves spec.<field>[].name into `out` (at most MAX_STREAMS). */
static op_render_err_t resolve_list(rctx_t *c, const json_t *proc, const json_t *deps,
                                    const char *field, rstream_t *out, size_t *n)
{
    const json_t *list = jget(proc, field);
    const char *ns = jstr(proc, "metadata.namespace");
    size_t i;
    const json_t *e;

    *n = 0;
    if (!json_is_array(list) || json_array_size(list) == 0)
        return fail(c, OP_RENDER_ERR_INVALID_SPEC, "%s needs at least one Stream", field);
    if (json_array_size(list) > MAX_STREAMS)
        return fail(c, OP_RENDER_ERR_INVALID_SPEC, "%s has more than %d Streams", field,
                    MAX_STREAMS);
    json_array_foreach (list, i, e) {
        const char *name = jstr(e, "name");

        if (name == NULL)
            return fail(c, OP_RENDER_ERR_INVALID_SPEC, "%s[%zu] has no name", field, i);
        for (size_t j = 0; j < *n; j++)
            if (streq(out[j].name, name))
                return fail(c, OP_RENDER_ERR_INVALID_SPEC, "%s names Stream %s twice", field, name);
        if (resolve_stream(c, deps, ns, strcmp(field, "spec.inputs") == 0 ? "input" : "output",
                           name, &out[*n]) != OP_RENDER_OK) {
            json_decref(out[*n].addr);
            out[*n].addr = NULL;
            return c->rc;
        }
        (*n)++;
    }
    return OP_RENDER_OK;
}

/* The credentials Secret of a Processor's pods: the spec.binding of its
 * first input, else output, Stream that has one (Secrets are namespaced, so
 * it is the Stream's, in the Processor's namespace). */
static const char *binding_of(const rstream_t *ins, size_t nin, const rstream_t *outs, size_t nout)
{
    for (size_t i = 0; i < nin; i++)
        if (jstr(ins[i].stream, "spec.binding") != NULL)
            return jstr(ins[i].stream, "spec.binding");
    for (size_t i = 0; i < nout; i++)
        if (jstr(outs[i].stream, "spec.binding") != NULL)
            return jstr(outs[i].stream, "spec.binding");
    return NULL;
}

/* A pipeline spec cluster: the processor speaks Kafka to weir and kafka. */
static json_t *pipeline_cluster(rctx_t *c, const rstream_t *s, const char *role)
{
    if (s->protocol != PROTO_WEIR && s->protocol != PROTO_KAFKA) {
        fail(c, OP_RENDER_ERR_UNSUPPORTED,
             "%s Stream %s is on ClusterStream %s (rabbitmq): the SRP processor reads and "
             "writes Kafka-protocol clusters only; use type SCS for rabbitmq",
             role, s->name, s->cluster);
        return NULL;
    }
    return json_pack("{s:s, s:s}", "protocol", "kafka", "bootstrap", s->brokers);
}

/* ------------------------------------------------------- pipeline spec -- */

/* Structured field vs srp.* attribute: the structured field wins, and a
 * difference is an error. Both are compared after parsing. */
typedef struct attrs {
    const json_t *map; /* spec.attributes */
} attrs_t;

static int attr(const attrs_t *a, const char *key, char *buf, size_t len)
{
    return scalar_text(json_object_get(a->map, key), buf, len);
}

/* A duration from spec field `sv` (path `spath`) and/or attribute `akey`.
 * Returns 1 when either is set (value in *ms), 0 when neither, -1 on error. */
static int pick_duration(rctx_t *c, const attrs_t *a, const json_t *sv, const char *spath,
                         const char *akey, long long *ms)
{
    char abuf[128];
    long long sms = 0, ams = 0;
    bool has_s = sv != NULL, has_a = akey != NULL && attr(a, akey, abuf, sizeof(abuf));

    if (has_s && json_duration(sv, &sms) != 0) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC, "%s is not a duration (e.g. 500ms, 5s, 1m)", spath);
        return -1;
    }
    if (has_a && op_render_parse_duration_ms(abuf, &ams) != 0) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC, "attribute %s \"%s\" is not a duration", akey, abuf);
        return -1;
    }
    if (has_s && has_a && sms != ams) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC,
             "%s (%lldms) conflicts with attribute %s (\"%s\"); remove one", spath, sms, akey,
             abuf);
        return -1;
    }
    if (!has_s && !has_a)
        return 0;
    *ms = has_s ? sms : ams;
    return 1;
}

/* Event time of one input: spec.time, else srp.input.timestampExpression,
 * else the input Stream's dataSchemaContext.timeAttributes[0]. */
typedef struct timecfg {
    char source[16];
    char field[256];
    bool has_time;
    long long ooo_ms, idle_ms;
    bool has_ooo, has_idle;
} timecfg_t;

/* "proc", "header.X", "payload.a" or "a" -> (source, field). */
static void time_from_expr(const char *e, char *source, size_t slen, char *field, size_t flen)
{
    if (streq(e, "proc") || streq(e, "processing")) {
        snprintf(source, slen, "processing");
        field[0] = '\0';
    } else if (strncmp(e, "header.", 7) == 0) {
        snprintf(source, slen, "header");
        snprintf(field, flen, "%s", e);
    } else if (streq(e, "timestamp")) {
        snprintf(source, slen, "timestamp");
        field[0] = '\0';
    } else {
        snprintf(source, slen, "payload");
        if (strncmp(e, "payload.", 8) == 0)
            snprintf(field, flen, "%s", e);
        else
            snprintf(field, flen, "payload.%s", e);
    }
}

/* "`ts` - INTERVAL '3' SECOND" -> 3000. */
static int parse_interval(const char *w, long long *ms)
{
    const char *p = strstr(w, "INTERVAL");
    char unit[16];
    long long n;
    int used = 0;

    if (p == NULL)
        p = strstr(w, "interval");
    if (p == NULL || sscanf(p + 8, " '%lld' %15[A-Za-z]%n", &n, unit, &used) != 2 || n < 0)
        return -EINVAL;
    for (char *u = unit; *u; u++)
        *u = (char)toupper((unsigned char)*u);
    if (strncmp(unit, "MILLISECOND", 11) == 0)
        *ms = n;
    else if (strncmp(unit, "SECOND", 6) == 0)
        *ms = n * 1000;
    else if (strncmp(unit, "MINUTE", 6) == 0)
        *ms = n * 60000;
    else if (strncmp(unit, "HOUR", 4) == 0)
        *ms = n * 3600000;
    else if (strncmp(unit, "DAY", 3) == 0)
        *ms = n * 86400000;
    else
        return -EINVAL;
    return 0;
}

static op_render_err_t time_config(rctx_t *c, const json_t *proc, const attrs_t *a,
                                   const rstream_t *in, timecfg_t *t)
{
    const json_t *st = jget(proc, "spec.time");
    const json_t *ta = json_array_get(jget(in->stream, "spec.dataSchemaContext.timeAttributes"), 0);
    char abuf[256], asrc[16] = "", afield[256] = "";
    bool has_attr = attr(a, "srp.input.timestampExpression", abuf, sizeof(abuf)) && abuf[0];
    int r;

    memset(t, 0, sizeof(*t));
    if (ta != NULL && jstr(ta, "name") != NULL) {
        const char *wm = jstr(ta, "watermark");

        time_from_expr(jstr(ta, "name"), t->source, sizeof(t->source), t->field, sizeof(t->field));
        t->has_time = true;
        if (wm != NULL) {
            if (parse_interval(wm, &t->ooo_ms) != 0)
                return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                            "Stream %s: timeAttributes watermark \"%s\" is not "
                            "\"`f` - INTERVAL 'N' UNIT\"",
                            in->name, wm);
            t->has_ooo = true;
        }
    }
    if (has_attr) {
        time_from_expr(abuf, asrc, sizeof(asrc), afield, sizeof(afield));
        memcpy(t->source, asrc, sizeof(asrc));
        memcpy(t->field, afield, sizeof(afield));
        t->has_time = true;
    }
    if (jstr(st, "source") != NULL) {
        const char *src = jstr(st, "source");
        const char *f = jstr(st, "field");
        char sf[256] = "";

        if (!streq(src, "payload") && !streq(src, "header") && !streq(src, "timestamp") &&
            !streq(src, "processing"))
            return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                        "spec.time.source must be payload, header, timestamp or processing");
        if (streq(src, "payload") || streq(src, "header")) {
            size_t pl = strlen(src);

            if (f == NULL)
                return fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.time.source %s needs field", src);
            if (strncmp(f, src, pl) == 0 && f[pl] == '.')
                snprintf(sf, sizeof(sf), "%s", f);
            else
                snprintf(sf, sizeof(sf), "%s.%s", src, f);
        }
        if (has_attr && (!streq(src, asrc) || !streq(sf, afield)))
            return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                        "spec.time (%s %s) conflicts with attribute "
                        "srp.input.timestampExpression (\"%s\"); remove one",
                        src, sf, abuf);
        snprintf(t->source, sizeof(t->source), "%s", src);
        snprintf(t->field, sizeof(t->field), "%s", sf);
        t->has_time = true;
    }
    r = pick_duration(c, a, jget(st, "maxOutOfOrderness"), "spec.time.maxOutOfOrderness",
                      "srp.maxOutOfOrderness", &t->ooo_ms);
    if (r < 0)
        return c->rc;
    if (r > 0)
        t->has_ooo = true;
    r = pick_duration(c, a, jget(st, "idleTimeout"), "spec.time.idleTimeout", NULL, &t->idle_ms);
    if (r < 0)
        return c->rc;
    t->has_idle = r > 0;
    return OP_RENDER_OK;
}

/* Pipeline ids share one namespace with input names: derive unique ones. */
static void unique_id(const json_t *spec, const char *base, char *buf, size_t len)
{
    for (int n = 1;; n++) {
        bool taken = false;
        size_t i;
        const json_t *e;

        if (n == 1)
            snprintf(buf, len, "%s", base);
        else
            snprintf(buf, len, "%s-%d", base, n);
        json_array_foreach (json_object_get(spec, "inputs"), i, e)
            taken |= streq(jstr(e, "name"), buf);
        json_array_foreach (json_object_get(spec, "operators"), i, e)
            taken |= streq(jstr(e, "id"), buf);
        if (!taken)
            return;
    }
}

/* Adds operator `op` (stolen) reading `from`, and makes it the new head. */
static void add_op(rctx_t *c, json_t *spec, const char *base, json_t *op, json_t *from, char *head,
                   size_t hlen)
{
    char id[NAME_BUF];

    unique_id(spec, base, id, sizeof(id));
    if (op == NULL || from == NULL) {
        json_decref(op);
        json_decref(from);
        oom(c);
        return;
    }
    set(c, op, "id", str(id));
    set(c, op, "from", from);
    append(c, json_object_get(spec, "operators"), op);
    snprintf(head, hlen, "%s", id);
}

/* Map target field: "a.b" is payload.a.b; payload paths and key stay. */
static op_render_err_t map_path(rctx_t *c, const char *f, char *buf, size_t len)
{
    if (streq(f, "key") || streq(f, "payload") || strncmp(f, "payload.", 8) == 0)
        snprintf(buf, len, "%s", f);
    else if (strncmp(f, "header.", 7) == 0 || streq(f, "timestamp"))
        return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                    "spec.map.%s: only payload fields and key can be set", f);
    else
        snprintf(buf, len, "payload.%s", f);
    return OP_RENDER_OK;
}

/* "h=payload.f;h2=header.x" -> {"h": "payload.f", "h2": "header.x"}. */
static json_t *parse_headers(rctx_t *c, const char *s)
{
    json_t *h = json_object();
    char *copy = strdup(s), *save = NULL;

    if (h == NULL || copy == NULL) {
        json_decref(h);
        free(copy);
        oom(c);
        return NULL;
    }
    for (char *tok = strtok_r(copy, ";", &save); tok != NULL; tok = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(tok, '=');

        while (isspace((unsigned char)*tok))
            tok++;
        if (*tok == '\0')
            continue;
        if (eq == NULL || eq == tok || eq[1] == '\0') {
            fail(c, OP_RENDER_ERR_INVALID_SPEC,
                 "attribute srp.output.headers: \"%s\" is not name=expression", tok);
            break;
        }
        *eq = '\0';
        set(c, h, tok, str(eq + 1));
    }
    free(copy);
    if (c->rc != OP_RENDER_OK) {
        json_decref(h);
        return NULL;
    }
    return h;
}

/* The UDF a Processor calls, if any: spec.udf.container or the first
 * template container, unless srp.skipUdf. */
typedef struct udfcfg {
    const char *container; /* NULL: no UDF */
    long port;
} udfcfg_t;

static op_render_err_t udf_config(rctx_t *c, const json_t *proc, const attrs_t *a, udfcfg_t *u)
{
    const json_t *containers = jget(proc, "spec.template.spec.containers");
    const json_t *su = jget(proc, "spec.udf");
    char buf[64];
    bool skip = attr(a, "srp.skipUdf", buf, sizeof(buf)) && streq(buf, "true");
    long aport = 0;
    bool has_aport = attr(a, "srp.grpcPort", buf, sizeof(buf));

    memset(u, 0, sizeof(*u));
    if (has_aport) {
        char *end;

        aport = strtol(buf, &end, 10);
        if (*end != '\0' || aport < 1 || aport > 65535)
            return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                        "attribute srp.grpcPort \"%s\" is not a port", buf);
    }
    if (su != NULL && skip)
        return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                    "spec.udf conflicts with attribute srp.skipUdf=true; remove one");
    if (skip)
        return OP_RENDER_OK;
    u->container = jstr(su, "container");
    if (u->container != NULL) {
        size_t i;
        const json_t *e;
        bool found = false;

        json_array_foreach (containers, i, e)
            found |= streq(jstr(e, "name"), u->container);
        if (!found)
            return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                        "spec.udf.container \"%s\" is not in spec.template.spec.containers",
                        u->container);
    } else {
        u->container = jstr(json_array_get(containers, 0), "name");
        if (u->container == NULL && su != NULL)
            return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                        "spec.udf is set but spec.template.spec.containers is empty");
    }
    u->port = PORT_UDF;
    if (jget(su, "port") != NULL) {
        json_int_t p = json_integer_value(jget(su, "port"));

        if (p < 1 || p > 65535)
            return fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.udf.port is not a port");
        if (has_aport && p != aport)
            return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                        "spec.udf.port (%" JSON_INTEGER_FORMAT
                        ") conflicts with attribute srp.grpcPort (%ld); remove one",
                        p, aport);
        u->port = (long)p;
    } else if (has_aport) {
        u->port = aport;
    }
    return OP_RENDER_OK;
}

static json_t *udf_entry(rctx_t *c, const json_t *proc, const udfcfg_t *u)
{
    const json_t *su = jget(proc, "spec.udf");
    const char *mode = jstr(su, "mode");
    char endpoint[32];
    json_t *e;
    long long ms;

    snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%ld", u->port);
    e = json_pack("{s:s, s:s}", "name", u->container, "endpoint", endpoint);
    if (e == NULL) {
        oom(c);
        return NULL;
    }
    if (mode != NULL)
        set(c, e, "mode", str(mode));
    if (jget(su, "timeout") != NULL) {
        if (json_duration(jget(su, "timeout"), &ms) != 0 || ms < 1)
            fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.udf.timeout is not a duration");
        else
            set(c, e, "timeoutMs", json_integer(ms));
    }
    if (jget(su, "maxInFlight") != NULL)
        set(c, e, "maxInFlight", json_deep_copy(jget(su, "maxInFlight")));
    if (jget(su, "connections") != NULL)
        set(c, e, "connections", json_deep_copy(jget(su, "connections")));
    if (jget(su, "retry") != NULL || json_is_true(jget(su, "retryNonIdempotent"))) {
        json_t *r = json_object();

        if (jget(su, "retry.max") != NULL)
            set(c, r, "max", json_deep_copy(jget(su, "retry.max")));
        if (jget(su, "retry.backoff") != NULL) {
            if (json_duration(jget(su, "retry.backoff"), &ms) != 0 || ms < 1)
                fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.udf.retry.backoff is not a duration");
            else
                set(c, r, "initialBackoffMs", json_integer(ms));
        }
        if (json_is_true(jget(su, "retryNonIdempotent")))
            set(c, r, "nonIdempotent", json_true());
        set(c, e, "retry", r);
    }
    if (c->rc != OP_RENDER_OK) {
        json_decref(e);
        return NULL;
    }
    return e;
}

static const char *late_mode(const char *m)
{
    if (streq(m, "SIDE_CHANNEL"))
        return "SIDE_OUTPUT"; /* streaming-runtimes' name */
    if (streq(m, "DROP") || streq(m, "UPSERT") || streq(m, "SIDE_OUTPUT"))
        return m;
    return NULL;
}

/* The window operator from spec.window and the srp.window* attributes, or
 * NULL (no window, or an error in c). */
static json_t *window_op(rctx_t *c, const json_t *proc, const attrs_t *a, const udfcfg_t *u,
                         const rstream_t *outs, size_t nouts, const char **late_output)
{
    const json_t *w = jget(proc, "spec.window");
    const char *type = jstr(w, "type");
    json_t *op, *shape, *emit, *late;
    long long ms;
    char mbuf[64];
    const char *mode = NULL;
    int r;

    *late_output = NULL;
    r = pick_duration(c, a, jget(w, "size"), "spec.window.size", "srp.window", &ms);
    if (r < 0)
        return NULL;
    if (w == NULL && r == 0)
        return NULL; /* no window at all */
    if (type == NULL)
        type = "tumbling";
    if (r > 0 && !streq(type, "session") && ms < 1) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC, "the window size must be positive");
        return NULL;
    }
    if (jget(w, "size") == NULL && r > 0 && !streq(type, "tumbling")) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC,
             "attribute srp.window sets a tumbling window but spec.window.type is %s", type);
        return NULL;
    }
    shape = json_pack("{s:s}", "kind", type);
    if (streq(type, "tumbling") || streq(type, "hopping")) {
        if (r == 0) {
            json_decref(shape);
            fail(c, OP_RENDER_ERR_INVALID_SPEC, "a %s window needs spec.window.size", type);
            return NULL;
        }
        set(c, shape, "sizeMs", json_integer(ms));
        if (streq(type, "hopping")) {
            if (pick_duration(c, a, jget(w, "slide"), "spec.window.slide", NULL, &ms) <= 0 ||
                ms < 1) {
                json_decref(shape);
                fail(c, OP_RENDER_ERR_INVALID_SPEC, "a hopping window needs spec.window.slide");
                return NULL;
            }
            set(c, shape, "slideMs", json_integer(ms));
        }
    } else if (streq(type, "session")) {
        if (pick_duration(c, a, jget(w, "gap"), "spec.window.gap", NULL, &ms) <= 0 || ms < 1) {
            json_decref(shape);
            fail(c, OP_RENDER_ERR_INVALID_SPEC, "a session window needs spec.window.gap");
            return NULL;
        }
        set(c, shape, "gapMs", json_integer(ms));
    } else {
        json_decref(shape);
        fail(c, OP_RENDER_ERR_INVALID_SPEC,
             "spec.window.type must be tumbling, hopping or session, got \"%s\"", type);
        return NULL;
    }
    op = json_pack("{s:s, s:o}", "type", "window", "window", shape);
    if (op == NULL) {
        oom(c);
        return NULL;
    }
    if (jstr(proc, "spec.keyBy") != NULL)
        set(c, op, "key", str(jstr(proc, "spec.keyBy")));
    if (jget(proc, "spec.aggregations") != NULL) {
        json_t *aggs = json_array();
        size_t i;
        const json_t *e;

        json_array_foreach (jget(proc, "spec.aggregations"), i, e) {
            json_t *ag =
                json_pack("{s:s?, s:s?}", "name", jstr(e, "name"), "fn", jstr(e, "function"));

            if (ag != NULL && jstr(e, "field") != NULL)
                set(c, ag, "field", str(jstr(e, "field")));
            append(c, aggs, ag);
        }
        set(c, op, "aggregations", aggs);
    }
    if (u->container != NULL)
        set(c, op, "udf", str(u->container));
    else if (jget(proc, "spec.aggregations") == NULL)
        fail(c, OP_RENDER_ERR_INVALID_SPEC,
             "a window needs spec.aggregations or a UDF container to aggregate");
    emit = json_object();
    r = pick_duration(c, a, jget(w, "earlyFiring"), "spec.window.earlyFiring", NULL, &ms);
    if (r > 0)
        set(c, emit, "earlyFiringMs", json_integer(ms));
    r = pick_duration(c, a, jget(w, "idleTimeout"), "spec.window.idleTimeout",
                      "srp.window.idle.timeout", &ms);
    if (r > 0)
        set(c, emit, "idleTimeoutMs", json_integer(ms));
    if (json_object_size(emit) > 0)
        set(c, op, "emit", emit);
    else
        json_decref(emit);
    /* Late data. */
    {
        const char *smode = jstr(w, "lateEventMode");
        bool has_amode = attr(a, "srp.lateEventMode", mbuf, sizeof(mbuf));
        const char *amode = has_amode ? late_mode(mbuf) : NULL;

        if (smode != NULL && late_mode(smode) == NULL)
            fail(c, OP_RENDER_ERR_INVALID_SPEC,
                 "spec.window.lateEventMode must be DROP, UPSERT or SIDE_OUTPUT");
        else if (has_amode && amode == NULL)
            fail(c, OP_RENDER_ERR_INVALID_SPEC,
                 "attribute srp.lateEventMode must be DROP, UPSERT or SIDE_CHANNEL, got \"%s\"",
                 mbuf);
        else if (smode != NULL && has_amode && !streq(late_mode(smode), amode))
            fail(c, OP_RENDER_ERR_INVALID_SPEC,
                 "spec.window.lateEventMode (%s) conflicts with attribute srp.lateEventMode "
                 "(%s); remove one",
                 smode, mbuf);
        mode = smode != NULL ? late_mode(smode) : amode;
    }
    r = pick_duration(c, a, jget(w, "allowedLateness"), "spec.window.allowedLateness",
                      "srp.allowedLateness", &ms);
    if (c->rc == OP_RENDER_OK && (mode != NULL || r > 0)) {
        const char *lo = jstr(w, "lateOutput");

        late = json_pack("{s:s}", "mode", mode != NULL ? mode : "DROP");
        if (r > 0)
            set(c, late, "allowedLatenessMs", json_integer(ms));
        if (streq(mode, "SIDE_OUTPUT")) {
            bool found = false;

            for (size_t i = 0; i < nouts; i++)
                found |= streq(outs[i].name, lo);
            if (lo == NULL)
                fail(c, OP_RENDER_ERR_INVALID_SPEC,
                     "late mode SIDE_OUTPUT needs spec.window.lateOutput (one of "
                     "spec.outputs): late records never share the main output");
            else if (!found)
                fail(c, OP_RENDER_ERR_INVALID_SPEC,
                     "spec.window.lateOutput \"%s\" is not one of spec.outputs", lo);
            else if (nouts < 2)
                fail(c, OP_RENDER_ERR_INVALID_SPEC,
                     "spec.window.lateOutput needs a second output for on-time results");
            set(c, late, "output", str(lo != NULL ? lo : ""));
            *late_output = lo;
        } else if (lo != NULL) {
            fail(c, OP_RENDER_ERR_INVALID_SPEC,
                 "spec.window.lateOutput is only used with lateEventMode SIDE_OUTPUT");
        }
        set(c, op, "late", late);
    } else if (c->rc == OP_RENDER_OK && jstr(w, "lateOutput") != NULL) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC,
             "spec.window.lateOutput is only used with lateEventMode SIDE_OUTPUT");
    }
    if (c->rc != OP_RENDER_OK) {
        json_decref(op);
        return NULL;
    }
    return op;
}

/* A signed duration (join bounds may be negative). */
static int signed_duration(const json_t *v, long long *ms)
{
    if (json_is_string(v) && json_string_value(v)[0] == '-') {
        int rc = op_render_parse_duration_ms(json_string_value(v) + 1, ms);

        *ms = -*ms;
        return rc;
    }
    if (json_is_integer(v)) {
        *ms = json_integer_value(v);
        return 0;
    }
    return json_duration(v, ms);
}

static json_t *join_op(rctx_t *c, const json_t *proc, json_t *spec, const rstream_t *ins,
                       size_t nin)
{
    const json_t *j = jget(proc, "spec.join");
    const char *type = jstr(j, "type") ? jstr(j, "type") : "window";
    const char *kind = jstr(j, "kind") ? jstr(j, "kind") : "inner";
    const char *left = jstr(j, "left") ? jstr(j, "left") : (nin > 0 ? ins[0].name : NULL);
    const char *right = jstr(j, "right") ? jstr(j, "right") : (nin > 1 ? ins[1].name : NULL);
    json_t *op;
    long long ms;

    if (nin != 2 || left == NULL || right == NULL || streq(left, right) ||
        !((streq(left, ins[0].name) && streq(right, ins[1].name)) ||
          (streq(left, ins[1].name) && streq(right, ins[0].name)))) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC,
             "spec.join joins exactly the two spec.inputs (left and right)");
        return NULL;
    }
    if (!streq(type, "window") && !streq(type, "interval") && !streq(type, "table")) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.join.type must be window, interval or table");
        return NULL;
    }
    if (!streq(kind, "inner") && !streq(kind, "left") && !streq(kind, "full")) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.join.kind must be inner, left or full");
        return NULL;
    }
    if (jstr(j, "leftKey") == NULL || jstr(j, "rightKey") == NULL) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.join needs leftKey and rightKey");
        return NULL;
    }
    op = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "join", "kind", type, "joinType", kind,
                   "leftKey", jstr(j, "leftKey"), "rightKey", jstr(j, "rightKey"));
    if (op == NULL) {
        oom(c);
        return NULL;
    }
    if (streq(type, "window")) {
        const json_t *w = jget(j, "window");
        const char *wt = json_is_object(w) && jstr(w, "type") ? jstr(w, "type") : "tumbling";
        const json_t *size = json_is_object(w) ? jget(w, "size") : w;
        json_t *shape = json_pack("{s:s}", "kind", wt);

        if (streq(wt, "session")) {
            if (json_duration(jget(w, "gap"), &ms) != 0 || ms < 1)
                fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.join.window.gap is required");
            else
                set(c, shape, "gapMs", json_integer(ms));
        } else if (json_duration(size, &ms) != 0 || ms < 1) {
            fail(c, OP_RENDER_ERR_INVALID_SPEC,
                 "a window join needs spec.join.window (a size, e.g. 10s)");
        } else {
            set(c, shape, "sizeMs", json_integer(ms));
            if (streq(wt, "hopping")) {
                if (json_duration(jget(w, "slide"), &ms) != 0 || ms < 1)
                    fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.join.window.slide is required");
                else
                    set(c, shape, "slideMs", json_integer(ms));
            }
        }
        set(c, op, "window", shape);
    } else if (streq(type, "interval")) {
        long long lo, hi;

        if (signed_duration(jget(j, "lower"), &lo) != 0 ||
            signed_duration(jget(j, "upper"), &hi) != 0 || lo > hi)
            fail(c, OP_RENDER_ERR_INVALID_SPEC,
                 "an interval join needs spec.join.lower <= spec.join.upper (e.g. -5s, 5s)");
        else {
            set(c, op, "lowerMs", json_integer(lo));
            set(c, op, "upperMs", json_integer(hi));
        }
    } else {
        /* A table join reads its right side as a table (latest per key). */
        size_t i;
        json_t *e;

        json_array_foreach (json_object_get(spec, "inputs"), i, e)
            if (streq(jstr(e, "name"), right))
                set(c, e, "table", json_true());
    }
    set(c, op, "from", json_pack("[s, s]", left, right));
    if (c->rc != OP_RENDER_OK) {
        json_decref(op);
        return NULL;
    }
    return op;
}

static json_t *input_json(rctx_t *c, const rstream_t *s, const timecfg_t *t)
{
    json_t *in = json_pack("{s:s, s:s, s:o, s:{s:I}, s:s}", "name", s->name, "topic", s->topic,
                           "cluster", pipeline_cluster(c, s, "input"), "partitions", "count",
                           s->partitions, "format", s->format);

    if (in == NULL) {
        oom(c);
        return NULL;
    }
    if (t->has_time) {
        json_t *tm = json_pack("{s:s}", "source", t->source);

        if (t->field[0] != '\0')
            set(c, tm, "field", str(t->field));
        set(c, in, "time", tm);
    }
    if (t->has_ooo || t->has_idle) {
        json_t *wm = json_object();

        if (t->has_ooo)
            set(c, wm, "maxOutOfOrdernessMs", json_integer(t->ooo_ms));
        if (t->has_idle)
            set(c, wm, "idleTimeoutMs", json_integer(t->idle_ms));
        set(c, in, "watermark", wm);
    }
    return in;
}

static json_t *build_pipeline(rctx_t *c, const json_t *proc, const json_t *deps,
                              const rstream_t *ins, size_t nin, const rstream_t *outs, size_t nout)
{
    attrs_t a = {.map = jget(proc, "spec.attributes")};
    const json_t *rep = jget(proc, "spec.replicas");
    json_int_t replicas = rep != NULL ? json_integer_value(rep) : 1;
    const char *late_output = NULL;
    char head[NAME_BUF], buf[1024];
    timecfg_t t;
    udfcfg_t u;
    json_t *spec, *op, *outputs, *hdrs = NULL;
    long long ms;
    int r;

    if (replicas < 1 || replicas > MAX_REPLICAS) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.replicas must be 1..%d", MAX_REPLICAS);
        return NULL;
    }
    if (a.map != NULL && !json_is_object(a.map)) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.attributes must be a map of strings");
        return NULL;
    }
    if (udf_config(c, proc, &a, &u) != OP_RENDER_OK)
        return NULL;
    spec = json_pack("{s:i, s:s, s:s, s:{s:i, s:I}, s:[], s:[], s:[]}", "version", 1, "name",
                     jstr(proc, "metadata.name"), "namespace", jstr(proc, "metadata.namespace"),
                     "replica", "index", 0, "count", replicas, "inputs", "operators", "outputs");
    if (spec == NULL) {
        oom(c);
        return NULL;
    }
    /* Each input's own Stream time attributes, overridden by the Processor's. */
    for (size_t i = 0; i < nin && c->rc == OP_RENDER_OK; i++)
        if (time_config(c, proc, &a, &ins[i], &t) == OP_RENDER_OK)
            append(c, json_object_get(spec, "inputs"), input_json(c, &ins[i], &t));
    if (c->rc != OP_RENDER_OK)
        goto out;

    /* Stages: join | merge, filter, map, window | udf. `head` is what feeds
     * the next stage. */
    snprintf(head, sizeof(head), "%s", ins[0].name);
    if (jget(proc, "spec.join") != NULL) {
        op = join_op(c, proc, spec, ins, nin);
        if (op == NULL)
            goto out;
        {
            json_t *from = json_incref(json_object_get(op, "from"));

            json_object_del(op, "from");
            add_op(c, spec, "join", op, from, head, sizeof(head));
        }
    } else {
        /* Several inputs without a join are a union: one "true" filter
         * reads two heads at a time. */
        for (size_t i = 1; i < nin; i++)
            add_op(c, spec, "merge", json_pack("{s:s, s:s}", "type", "filter", "expr", "true"),
                   json_pack("[s, s]", head, ins[i].name), head, sizeof(head));
    }
    if (jstr(proc, "spec.filter") != NULL)
        add_op(c, spec, "filter",
               json_pack("{s:s, s:s}", "type", "filter", "expr", jstr(proc, "spec.filter")),
               json_pack("[s]", head), head, sizeof(head));
    {
        const json_t *m = jget(proc, "spec.map");
        bool has_spel = attr(&a, "srp.spel.expression", buf, sizeof(buf)) && buf[0] != '\0';
        bool window = jget(proc, "spec.window") != NULL || json_object_get(a.map, "srp.window");
        json_t *setobj = json_object();

        if (m != NULL && has_spel)
            fail(c, OP_RENDER_ERR_INVALID_SPEC,
                 "spec.map conflicts with attribute srp.spel.expression; remove one");
        if (m != NULL && !json_is_object(m))
            fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.map must map fields to expressions");
        if (c->rc == OP_RENDER_OK && m != NULL) {
            const char *k;
            const json_t *v;
            char path[NAME_BUF];

            json_object_foreach ((json_t *)m, k, v) {
                if (!json_is_string(v) || map_path(c, k, path, sizeof(path)) != OP_RENDER_OK) {
                    fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.map.%s must be an expression", k);
                    break;
                }
                set(c, setobj, path, json_incref((json_t *)v));
            }
        } else if (has_spel) {
            /* The expression computes the new payload. */
            set(c, setobj, "payload", str(buf));
        }
        if (c->rc == OP_RENDER_OK &&
            (json_object_size(setobj) > 0 || (!window && jstr(proc, "spec.keyBy") != NULL))) {
            json_t *mop = json_pack("{s:s}", "type", "map");

            if (json_object_size(setobj) > 0)
                set(c, mop, "set", json_incref(setobj));
            /* Without a window, keyBy re-keys records (outputs partition by key). */
            if (!window && jstr(proc, "spec.keyBy") != NULL)
                set(c, mop, "key", str(jstr(proc, "spec.keyBy")));
            add_op(c, spec, "map", mop, json_pack("[s]", head), head, sizeof(head));
        }
        json_decref(setobj);
    }
    if (c->rc != OP_RENDER_OK)
        goto out;
    op = window_op(c, proc, &a, &u, outs, nout, &late_output);
    if (c->rc != OP_RENDER_OK)
        goto out;
    if (op != NULL)
        add_op(c, spec, "window", op, json_pack("[s]", head), head, sizeof(head));
    else if (u.container != NULL)
        add_op(c, spec, "udf", json_pack("{s:s, s:s}", "type", "udf", "udf", u.container),
               json_pack("[s]", head), head, sizeof(head));
    if (u.container != NULL)
        set(c, spec, "udfs", json_pack("[o]", udf_entry(c, proc, &u)));
    if (c->rc != OP_RENDER_OK)
        goto out;

    /* Outputs: every one but the late side output gets the main results. */
    if (attr(&a, "srp.output.headers", buf, sizeof(buf)) && buf[0] != '\0') {
        hdrs = parse_headers(c, buf);
        if (hdrs == NULL)
            goto out;
    }
    outputs = json_object_get(spec, "outputs");
    for (size_t i = 0; i < nout && c->rc == OP_RENDER_OK; i++) {
        bool late = streq(outs[i].name, late_output);
        json_t *o = json_pack("{s:s, s:s, s:o, s:I, s:s}", "name", outs[i].name, "topic",
                              outs[i].topic, "cluster", pipeline_cluster(c, &outs[i], "output"),
                              "partitions", outs[i].partitions, "format", outs[i].format);

        if (o != NULL && !late)
            set(c, o, "from", str(head));
        if (o != NULL && outs[i].key_expr != NULL)
            set(c, o, "partitionBy", json_pack("{s:s}", "key", outs[i].key_expr));
        if (o != NULL && hdrs != NULL && !late)
            set(c, o, "headers", json_deep_copy(hdrs));
        append(c, outputs, o);
    }

    /* Dead letters, checkpoints, state bound. */
    if (c->rc == OP_RENDER_OK && jstr(proc, "spec.deadLetter.stream") != NULL) {
        rstream_t dl;

        if (resolve_stream(c, deps, jstr(proc, "metadata.namespace"), "dead-letter",
                           jstr(proc, "spec.deadLetter.stream"), &dl) == OP_RENDER_OK)
            set(c, spec, "deadLetter",
                json_pack("{s:s, s:o}", "topic", dl.topic, "cluster",
                          pipeline_cluster(c, &dl, "dead-letter")));
        json_decref(dl.addr);
    }
    if (c->rc != OP_RENDER_OK)
        goto out;
    ms = 10000;
    r = pick_duration(c, &a, jget(proc, "spec.checkpoint.interval"), "spec.checkpoint.interval",
                      NULL, &ms);
    if (r < 0)
        goto out;
    if (ms < 100 || ms > 86400000) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.checkpoint.interval must be 100ms..24h");
        goto out;
    }
    set(c, spec, "checkpoint",
        json_pack("{s:s, s:I}", "dir", CKPT_DIR, "intervalMs", (json_int_t)ms));
    if (jget(proc, "spec.state.maxBytes") != NULL) {
        long long b;

        if (json_bytes(jget(proc, "spec.state.maxBytes"), &b) != 0 || b < 1048576) {
            fail(c, OP_RENDER_ERR_INVALID_SPEC,
                 "spec.state.maxBytes must be a byte quantity of at least 1Mi");
            goto out;
        }
        set(c, spec, "state", json_pack("{s:I}", "maxBytes", (json_int_t)b));
    }
    set(c, spec, "http", json_pack("{s:i}", "port", PORT_HTTP));
    if (c->rc == OP_RENDER_OK) {
        char verr[512];

        if (wc_spec_validate(spec, verr, sizeof(verr)) != 0)
            fail(c, OP_RENDER_ERR_INVALID_SPEC, "the rendered pipeline spec is invalid: %s", verr);
    }
out:
    json_decref(hdrs);
    if (c->rc != OP_RENDER_OK) {
        json_decref(spec);
        return NULL;
    }
    return spec;
}

/* ------------------------------------------------------------ workloads -- */

/* Names the operator adds to a user's pod: refused in the template. */
static const char *const reserved_volumes[] = {"weir-pipeline", "weir-checkpoints", "weir-tmp"};
#define PROCESSOR_CONTAINER "processor"

static json_t *user_pod_spec(rctx_t *c, const json_t *proc)
{
    const json_t *tpl = jget(proc, "spec.template.spec");
    json_t *pod;

    if (tpl != NULL && !json_is_object(tpl)) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.template.spec must be a PodSpec");
        return NULL;
    }
    /* The user's PodSpec is kept verbatim (deep copy: the input is borrowed). */
    pod = tpl != NULL ? json_deep_copy(tpl) : json_object();
    if (pod == NULL) {
        oom(c);
        return NULL;
    }
    if (json_object_get(pod, "containers") == NULL)
        set(c, pod, "containers", json_array());
    if (!json_is_array(json_object_get(pod, "containers")) ||
        (json_object_get(pod, "volumes") != NULL &&
         !json_is_array(json_object_get(pod, "volumes")))) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC,
             "spec.template.spec.containers and .volumes must be lists");
    } else {
        size_t i;
        const json_t *e;

        json_array_foreach (json_object_get(pod, "containers"), i, e)
            if (jstr(e, "name") == NULL) {
                fail(c, OP_RENDER_ERR_INVALID_SPEC,
                     "spec.template.spec.containers[%zu] needs a name", i);
                break;
            }
        json_array_foreach (json_object_get(pod, "volumes"), i, e)
            if (jstr(e, "name") == NULL) {
                fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.template.spec.volumes[%zu] needs a name",
                     i);
                break;
            }
    }
    if (c->rc != OP_RENDER_OK) {
        json_decref(pod);
        return NULL;
    }
    return pod;
}

static op_render_err_t check_reserved(rctx_t *c, const json_t *pod)
{
    size_t i;
    const json_t *e;

    json_array_foreach (json_object_get(pod, "containers"), i, e) {
        if (jstr(e, "name") == NULL)
            return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                        "spec.template.spec.containers[%zu] has no name", i);
        if (streq(jstr(e, "name"), PROCESSOR_CONTAINER))
            return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                        "container name \"%s\" is reserved for the Weir processor",
                        PROCESSOR_CONTAINER);
    }
    json_array_foreach (json_object_get(pod, "volumes"), i, e)
        for (size_t k = 0; k < sizeof(reserved_volumes) / sizeof(reserved_volumes[0]); k++)
            if (streq(jstr(e, "name"), reserved_volumes[k]))
                return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                            "volume name \"%s\" is reserved for the Weir processor",
                            reserved_volumes[k]);
    return OP_RENDER_OK;
}

static json_t *processor_container(rctx_t *c)
{
    const op_render_config_t *cfg = c->cfg;
    json_t *k = json_pack(
        "{s:s, s:s, s:[s, s, s, s, s, s, s, s, s, s], s:o, s:[{s:s, s:i, s:s}], s:o, s:o, s:o, "
        "s:o, s:[{s:s, s:s, s:b}, {s:s, s:s}, {s:s, s:s}]}",
        "name", PROCESSOR_CONTAINER, "image",
        cfg->dataplane_image ? cfg->dataplane_image : DEFAULT_IMAGE, "args", "--role", "processor",
        "--spec", SPEC_PATH, "--data-dir", DATA_ROOT, "--pod-name", "$(WEIR_POD_NAME)",
        "--http-port", "9400", "env", dataplane_env(PROCESSOR_CONTAINER), "ports", "name", "http",
        "containerPort", PORT_HTTP, "protocol", "TCP", "resources",
        resources_or(cfg->processor_resources, "250m", "256Mi", "1", "1Gi"), "readinessProbe",
        http_probe("/readyz", 5, 3), "livenessProbe", http_probe("/healthz", 10, 6),
        "securityContext", container_security(), "volumeMounts", "name", "weir-pipeline",
        "mountPath", SPEC_DIR, "readOnly", 1, "name", "weir-checkpoints", "mountPath", CKPT_DIR,
        "name", "weir-tmp", "mountPath", "/tmp");

    if (k != NULL && cfg->image_pull_policy != NULL)
        set(c, k, "imagePullPolicy", str(cfg->image_pull_policy));
    if (k == NULL)
        oom(c);
    return k;
}

static json_t *statefulset(rctx_t *c, const json_t *proc, const char *name, json_t *pod,
                           json_t *annotations, json_t *claims)
{
    const char *ns = jstr(proc, "metadata.namespace");
    const char *instance = jstr(proc, "metadata.name");
    const json_t *rep = jget(proc, "spec.replicas");
    json_t *sts =
        json_pack("{s:s, s:s, s:o, s:{s:s, s:I, s:s, s:{s:o}, s:{s:s}, s:{s:{s:o, s:o}, s:o}}}",
                  "apiVersion", "apps/v1", "kind", "StatefulSet", "metadata",
                  child_meta(proc, name, ns, "weir-processor", "processor"), "spec", "serviceName",
                  name, "replicas", rep != NULL ? json_integer_value(rep) : (json_int_t)1,
                  "podManagementPolicy", "Parallel", "selector", "matchLabels",
                  labels("weir-processor", instance, "processor", true), "updateStrategy", "type",
                  "RollingUpdate", "template", "metadata", "labels",
                  labels("weir-processor", instance, "processor", false), "annotations",
                  annotations, "spec", pod);

    if (sts == NULL) {
        json_decref(claims);
        oom(c);
        return NULL;
    }
    if (claims != NULL) {
        json_t *spec = json_object_get(sts, "spec");

        set(c, spec, "volumeClaimTemplates", claims);
        /* Checkpoints belong to the Processor: gone with it, kept on scale-down
         * so a scale-up resumes from them. */
        set(c, spec, "persistentVolumeClaimRetentionPolicy",
            json_pack("{s:s, s:s}", "whenDeleted", "Delete", "whenScaled", "Retain"));
    }
    return sts;
}

static json_t *prom_annotations(const char *default_container)
{
    return json_pack("{s:s, s:s, s:s, s:s}", ANNOTATION_DEFAULT_CONTAINER, default_container,
                     "prometheus.io/scrape", "true", "prometheus.io/port", "9400",
                     "prometheus.io/path", "/metrics");
}

static void render_srp(rctx_t *c, const json_t *proc, const json_t *deps, const rstream_t *ins,
                       size_t nin, const rstream_t *outs, size_t nout, op_render_out_t *out)
{
    const char *ns = jstr(proc, "metadata.namespace");
    const char *instance = jstr(proc, "metadata.name");
    const json_t *store = jget(proc, "spec.checkpoint.storage");
    char name[NAME_BUF], hash[17];
    json_t *spec, *text_json, *cm, *pod, *annotations, *claims = NULL, *containers, *sts;
    char *text;

    if (child_name(c, name, sizeof(name), "weir-proc-", instance) != OP_RENDER_OK)
        return;
    spec = build_pipeline(c, proc, deps, ins, nin, outs, nout);
    if (spec == NULL)
        return;
    out->pipeline = spec;
    text = json_dumps(spec, JSON_INDENT(2));
    text_json = text != NULL ? json_string(text) : NULL;
    free(text);
    cm = json_pack("{s:s, s:s, s:o, s:{s:o}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata",
                   child_meta(proc, name, ns, "weir-processor", "processor"), "data", SPEC_FILE,
                   text_json);
    if (cm == NULL || op_render_hash(json_object_get(cm, "data"), hash) != 0) {
        json_decref(cm);
        oom(c);
        return;
    }
    append(c, out->objects, cm);
    append(c, out->objects,
           headless_service(proc, name, ns, "weir-processor", "processor",
                            json_pack("[{s:s, s:i, s:s}]", "name", "http", "port", PORT_HTTP,
                                      "targetPort", "http"),
                            false));
    pod = user_pod_spec(c, proc);
    if (pod == NULL || check_reserved(c, pod) != OP_RENDER_OK) {
        json_decref(pod);
        return;
    }
    if (json_object_get(pod, "volumes") == NULL)
        set(c, pod, "volumes", json_array());
    containers = json_object_get(pod, "containers");
    if (json_array_insert_new(containers, 0, processor_container(c)) != 0)
        oom(c);
    append_credentials_env(c, json_array_get(containers, 0), binding_of(ins, nin, outs, nout));
    append(c, json_object_get(pod, "volumes"),
           json_pack("{s:s, s:{s:s, s:[{s:s, s:s}]}}", "name", "weir-pipeline", "configMap", "name",
                     name, "items", "key", SPEC_FILE, "path", SPEC_FILE));
    append(c, json_object_get(pod, "volumes"),
           json_pack("{s:s, s:{s:s}}", "name", "weir-tmp", "emptyDir", "medium", "Memory"));
    if (store != NULL) {
        const char *size = jstr(store, "size") ? jstr(store, "size") : "1Gi";

        claims = json_pack(
            "[{s:{s:s, s:o}, s:{s:[s], s:{s:{s:s}}}}]", "metadata", "name", "weir-checkpoints",
            "labels", labels("weir-processor", instance, "processor", false), "spec", "accessModes",
            "ReadWriteOnce", "resources", "requests", "storage", size);
        if (claims != NULL && jstr(store, "storageClassName") != NULL)
            set(c, json_object_get(json_array_get(claims, 0), "spec"), "storageClassName",
                str(jstr(store, "storageClassName")));
    } else {
        /* Survives container restarts, not pod deletion: say so in docs. */
        append(c, json_object_get(pod, "volumes"),
               json_pack("{s:s, s:{}}", "name", "weir-checkpoints", "emptyDir"));
    }
    if (json_object_get(pod, "securityContext") == NULL)
        set(c, pod, "securityContext", pod_security(c->cfg));
    annotations = prom_annotations(PROCESSOR_CONTAINER);
    /* A spec change changes the hash, so the pods roll to the new spec. */
    set(c, annotations, ANNOTATION_HASH, str(hash));
    if (c->rc != OP_RENDER_OK) {
        json_decref(pod);
        json_decref(annotations);
        json_decref(claims);
        return;
    }
    sts = statefulset(c, proc, name, pod, annotations, claims);
    append(c, out->objects, sts);
}

/* Appends name=value to a container's env unless the user set that name. */
static void env_default(rctx_t *c, json_t *container, const char *name, json_t *entry)
{
    json_t *env = json_object_get(container, "env");
    size_t i;
    json_t *e;

    if (entry == NULL) {
        oom(c);
        return;
    }
    if (env == NULL) {
        set(c, container, "env", json_array());
        env = json_object_get(container, "env");
    }
    if (!json_is_array(env)) {
        json_decref(entry);
        fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.template.spec.containers[0].env must be a list");
        return;
    }
    json_array_foreach (env, i, e)
        if (streq(jstr(e, "name"), name)) {
            json_decref(entry);
            return;
        }
    append(c, env, entry);
}

static void env_value(rctx_t *c, json_t *container, const char *name, const char *value)
{
    env_default(c, container, name, json_pack("{s:s, s:s}", "name", name, "value", value));
}

/* Spring Cloud Stream binder settings for one side (input or output). */
static op_render_err_t scs_cluster(rctx_t *c, const rstream_t *s, size_t n, const char *side,
                                   const rstream_t **first)
{
    for (size_t i = 1; i < n; i++)
        if (!streq(s[i].cluster, s[0].cluster))
            return fail(c, OP_RENDER_ERR_INVALID_SPEC,
                        "an SCS processor's %s Streams must share one ClusterStream (%s and %s "
                        "differ)",
                        side, s[0].cluster, s[i].cluster);
    *first = &s[0];
    return OP_RENDER_OK;
}

static void render_scs(rctx_t *c, const json_t *proc, const rstream_t *ins, size_t nin,
                       const rstream_t *outs, size_t nout, op_render_out_t *out)
{
    const char *ns = jstr(proc, "metadata.namespace");
    const char *instance = jstr(proc, "metadata.name");
    const rstream_t *in, *o;
    char name[NAME_BUF], buf[4096], var[128];
    json_t *pod, *app, *ports;
    size_t used = 0;
    bool in_kafka, out_kafka;

    if (child_name(c, name, sizeof(name), "weir-proc-", instance) != OP_RENDER_OK ||
        scs_cluster(c, ins, nin, "input", &in) != OP_RENDER_OK ||
        scs_cluster(c, outs, nout, "output", &o) != OP_RENDER_OK)
        return;
    in_kafka = in->protocol != PROTO_RABBITMQ;
    out_kafka = o->protocol != PROTO_RABBITMQ;
    if (in_kafka && out_kafka && !streq(in->brokers, o->brokers)) {
        fail(c, OP_RENDER_ERR_INVALID_SPEC,
             "an SCS processor binds one Kafka cluster: inputs on %s, outputs on %s", in->cluster,
             o->cluster);
        return;
    }
    pod = user_pod_spec(c, proc);
    if (pod == NULL)
        return;
    app = json_array_get(json_object_get(pod, "containers"), 0);
    if (app == NULL) {
        json_decref(pod);
        fail(c, OP_RENDER_ERR_INVALID_SPEC,
             "type SCS runs the application in spec.template.spec.containers[0]: none given");
        return;
    }
    /* The application is the first container; sidecars are left alone. */
    if (in_kafka || out_kafka)
        env_value(c, app, "SPRING_CLOUD_STREAM_KAFKA_BINDER_BROKERS",
                  in_kafka ? in->brokers : o->brokers);
    if (!in_kafka || !out_kafka) {
        const rstream_t *r = !in_kafka ? in : o;

        env_value(c, app, "SPRING_RABBITMQ_HOST", jstr(r->addr, "variables.host"));
        env_value(c, app, "SPRING_RABBITMQ_PORT", jstr(r->addr, "variables.port"));
    }
    for (size_t i = 0; i < nin; i++)
        used += (size_t)snprintf(buf + used, used < sizeof(buf) ? sizeof(buf) - used : 0, "%s%s",
                                 i ? "," : "", ins[i].topic);
    if (used >= sizeof(buf)) {
        json_decref(pod);
        fail(c, OP_RENDER_ERR_INVALID_SPEC, "too many input topics");
        return;
    }
    env_value(c, app, "SPRING_CLOUD_STREAM_BINDINGS_INPUT_DESTINATION", buf);
    env_value(c, app, "SPRING_CLOUD_STREAM_BINDINGS_INPUT_GROUP", instance);
    for (size_t i = 0; i < nout; i++) {
        if (i == 0)
            snprintf(var, sizeof(var), "SPRING_CLOUD_STREAM_BINDINGS_OUTPUT_DESTINATION");
        else
            snprintf(var, sizeof(var), "SPRING_CLOUD_STREAM_BINDINGS_OUTPUT%zu_DESTINATION", i);
        env_value(c, app, var, outs[i].topic);
    }
    if (in_kafka != out_kafka) {
        /* Both binders on the classpath: say which binding uses which. */
        env_value(c, app, "SPRING_CLOUD_STREAM_BINDINGS_INPUT_BINDER",
                  in_kafka ? "kafka" : "rabbit");
        env_value(c, app, "SPRING_CLOUD_STREAM_BINDINGS_OUTPUT_BINDER",
                  out_kafka ? "kafka" : "rabbit");
    }
    snprintf(var, sizeof(var), "%" JSON_INTEGER_FORMAT,
             jget(proc, "spec.replicas") ? json_integer_value(jget(proc, "spec.replicas"))
                                         : (json_int_t)1);
    env_value(c, app, "SPRING_CLOUD_STREAM_INSTANCECOUNT", var);
    env_default(c, app, "SPRING_CLOUD_STREAM_INSTANCEINDEX",
                json_pack("{s:s, s:{s:{s:s}}}", "name", "SPRING_CLOUD_STREAM_INSTANCEINDEX",
                          "valueFrom", "fieldRef", "fieldPath",
                          "metadata.labels['apps.kubernetes.io/pod-index']"));
    /* The Service exposes the application's declared ports. */
    ports = json_array();
    {
        size_t i;
        json_t *p;

        json_array_foreach (json_object_get(app, "ports"), i, p) {
            json_t *sp;

            if (!json_is_integer(json_object_get(p, "containerPort")))
                continue;
            sp = json_object();
            set(c, sp, "port", json_incref(json_object_get(p, "containerPort")));
            if (json_object_get(p, "name") != NULL)
                set(c, sp, "name", json_incref(json_object_get(p, "name")));
            if (json_object_get(p, "protocol") != NULL)
                set(c, sp, "protocol", json_incref(json_object_get(p, "protocol")));
            append(c, ports, sp);
        }
    }
    if (c->rc != OP_RENDER_OK) {
        json_decref(ports);
        json_decref(pod);
        return;
    }
    {
        json_t *svc = headless_service(proc, name, ns, "weir-processor", "processor", ports, false);

        if (svc != NULL && json_array_size(ports) == 0)
            json_object_del(json_object_get(svc, "spec"), "ports");
        append(c, out->objects, svc);
    }
    append(c, out->objects,
           statefulset(c, proc, name, pod,
                       json_pack("{s:s}", ANNOTATION_DEFAULT_CONTAINER, jstr(app, "name")), NULL));
}

static op_render_err_t processor_common(rctx_t *c, const json_t *proc, const json_t *deps,
                                        rstream_t *ins, size_t *nin, rstream_t *outs, size_t *nout,
                                        const char **type)
{
    const json_t *rep;

    *nin = *nout = 0;
    if (check_owner(c, proc, "Processor", true) != OP_RENDER_OK)
        return c->rc;
    *type = jstr(proc, "spec.type") ? jstr(proc, "spec.type") : "SRP";
    if (streq(*type, "FSQL"))
        return fail(c, OP_RENDER_ERR_UNSUPPORTED,
                    "Processor type FSQL (streaming SQL) is not supported yet: it lands with "
                    "the SQL issue; use SRP with spec.window/spec.join meanwhile");
    if (!streq(*type, "SRP") && !streq(*type, "SCS"))
        return fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.type must be SRP, SCS or FSQL, got \"%s\"",
                    *type);
    rep = jget(proc, "spec.replicas");
    if (rep != NULL && (!json_is_integer(rep) || json_integer_value(rep) < 1 ||
                        json_integer_value(rep) > MAX_REPLICAS))
        return fail(c, OP_RENDER_ERR_INVALID_SPEC, "spec.replicas must be 1..%d", MAX_REPLICAS);
    if (!json_is_object(deps))
        return fail(c, OP_RENDER_ERR_INVALID_SPEC, "no dependencies given");
    if (resolve_list(c, proc, deps, "spec.inputs", ins, nin) != OP_RENDER_OK)
        return c->rc;
    return resolve_list(c, proc, deps, "spec.outputs", outs, nout);
}

op_render_err_t op_render_processor(const op_render_config_t *cfg, const json_t *proc,
                                    const json_t *deps, op_render_out_t *out, char *err,
                                    size_t errlen)
{
    rctx_t c = {.cfg = cfg, .err = err, .errlen = errlen};
    rstream_t ins[MAX_STREAMS], outs[MAX_STREAMS];
    size_t nin = 0, nout = 0;
    const char *type = NULL;

    memset(out, 0, sizeof(*out));
    if (processor_common(&c, proc, deps, ins, &nin, outs, &nout, &type) == OP_RENDER_OK) {
        out->objects = json_array();
        if (out->objects == NULL)
            oom(&c);
        else if (streq(type, "SRP"))
            render_srp(&c, proc, deps, ins, nin, outs, nout, out);
        else
            render_scs(&c, proc, ins, nin, outs, nout, out);
    }
    rstreams_dispose(ins, nin);
    rstreams_dispose(outs, nout);
    if (c.rc != OP_RENDER_OK)
        op_render_out_dispose(out);
    return c.rc;
}

op_render_err_t op_render_pipeline(const op_render_config_t *cfg, const json_t *proc,
                                   const json_t *deps, json_t **spec, char *err, size_t errlen)
{
    rctx_t c = {.cfg = cfg, .err = err, .errlen = errlen};
    rstream_t ins[MAX_STREAMS], outs[MAX_STREAMS];
    size_t nin = 0, nout = 0;
    const char *type = NULL;

    *spec = NULL;
    if (processor_common(&c, proc, deps, ins, &nin, outs, &nout, &type) == OP_RENDER_OK) {
        if (!streq(type, "SRP"))
            fail(&c, OP_RENDER_ERR_INVALID_SPEC,
                 "only SRP processors have a pipeline spec (this one is %s)", type ? type : "");
        else
            *spec = build_pipeline(&c, proc, deps, ins, nin, outs, nout);
    }
    rstreams_dispose(ins, nin);
    rstreams_dispose(outs, nout);
    return c.rc;
}
