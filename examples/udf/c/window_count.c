/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Weir example UDF in C: a windowed aggregator on the weir_udf SDK.
 *
 * Weir sends a window's records as one requestReply call: the payload is a
 * GrpcPayloadCollection of the record values, and the headers are
 * contentType=multipart/<subtype>, windowStartTime, windowEndTime (ms) and
 * partial. This UDF counts the records per key and replies with a
 * GrpcPayloadCollection holding one JSON element per key, sorted by key:
 *
 *   {"key":"red","count":3,"windowStartTime":1000,"windowEndTime":6000,"partial":false}
 *
 * The key (--key SPEC, default payload.key):
 *   payload.FIELD  top-level field FIELD of each record's JSON object; a
 *                  string as is, a number/true/false as its JSON text;
 *                  records without it (or not JSON objects) are skipped;
 *   header.NAME    request header NAME: the whole window is one key (for a
 *                  keyed window whose key Weir puts in a header).
 * Reply headers: contentType=multipart/json, the three window headers
 * echoed, skipped=<records without a key>, udf=c-window-count.
 */
#include "weir_udf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct config {
    bool from_header;  /* header.NAME, else payload.FIELD */
    const char *field; /* NAME or FIELD */
} config;

/* ------------------------------------- a minimal JSON field extractor -- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static void put_utf8(char *out, size_t *o, unsigned cp)
{
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xc0 | cp >> 6);
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xe0 | cp >> 12);
        out[(*o)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*o)++] = (char)(0xf0 | cp >> 18);
        out[(*o)++] = (char)(0x80 | (cp >> 12 & 0x3f));
        out[(*o)++] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static int hex4(const char *p, const char *end, unsigned *v)
{
    if (end - p < 4)
        return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (unsigned)d;
    }
    return 0;
}

/* P at '"'. Decodes into OUT (if not NULL; needs end - p bytes + 1).
 * Returns the pointer after the closing quote, or NULL. */
static const char *parse_string(const char *p, const char *end, char *out)
{
    size_t o = 0;
    for (p++; p < end; p++) {
        char ch = *p;
        if (ch == '"') {
            if (out)
                out[o] = '\0';
            return p + 1;
        }
        if ((unsigned char)ch < 0x20)
            return NULL;
        if (ch != '\\') {
            if (out)
                out[o++] = ch;
            continue;
        }
        if (++p >= end)
            return NULL;
        unsigned cp;
        switch (*p) {
        case '"':
            cp = '"';
            break;
        case '\\':
            cp = '\\';
            break;
        case '/':
            cp = '/';
            break;
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u': {
            if (hex4(p + 1, end, &cp) != 0)
                return NULL;
            p += 4;
            unsigned lo;
            if (cp >= 0xd800 && cp < 0xdc00 && end - p >= 7 && p[1] == '\\' && p[2] == 'u' &&
                hex4(p + 3, end, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            break;
        }
        default:
            return NULL;
        }
        if (out)
            put_utf8(out, &o, cp);
    }
    return NULL;
}

/* Skip one JSON value at P; NULL if malformed. */
static const char *skip_value(const char *p, const char *end)
{
    p = skip_ws(p, end);
    if (p >= end)
        return NULL;
    if (*p == '"')
        return parse_string(p, end, NULL);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                if ((p = parse_string(p, end, NULL)) == NULL)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']')
                if (--depth == 0)
                    return p + 1;
            p++;
        }
        return NULL;
    }
    const char *start = p;
    while (p < end && !strchr(",}] \t\r\n", *p))
        p++;
    return p > start ? p : NULL;
}

/* The key of a record: top-level FIELD of the JSON object in [P, END), as a
 * malloc'd string; NULL if missing, null, an object/array, or not JSON. */
static char *json_field(const char *p, const char *end, const char *field)
{
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return NULL;
    char *name = malloc((size_t)(end - p) + 1);
    char *found = NULL;
    while (name != NULL && p < end && *p == '"') {
        if ((p = parse_string(p, end, name)) == NULL)
            break;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            break;
        p = skip_ws(p + 1, end);
        const char *v = p;
        if ((p = skip_value(p, end)) == NULL)
            break;
        if (strcmp(name, field) == 0) { /* the last one wins, as in Python */
            free(found);
            found = NULL;
            if (*v == '"') {
                found = malloc((size_t)(p - v) + 1);
                if (found != NULL)
                    parse_string(v, p, found);
            } else if (*v != '{' && *v != '[' && !(p - v == 4 && memcmp(v, "null", 4) == 0)) {
                found = strndup(v, (size_t)(p - v));
            }
        }
        p = skip_ws(p, end);
        if (p < end && *p == '}') {
            free(name);
            if (skip_ws(p + 1, end) == end)
                return found;
            free(found); /* something after the object: not JSON */
            return NULL;
        }
        if (p >= end || *p != ',')
            break;
        p = skip_ws(p + 1, end);
    }
    free(name);
    free(found);
    return NULL;
}

/* Append S to OUT as a JSON string body (as Python's json.dumps with
 * ensure_ascii=False writes it). OUT needs 6 * strlen(S) + 1 bytes. */
static void json_escape(const char *s, char *out)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *e = *p == '"'    ? "\\\""
                        : *p == '\\' ? "\\\\"
                        : *p == '\n' ? "\\n"
                        : *p == '\r' ? "\\r"
                        : *p == '\t' ? "\\t"
                        : *p == '\b' ? "\\b"
                        : *p == '\f' ? "\\f"
                                     : NULL;
        if (e != NULL)
            o += (size_t)sprintf(out + o, "%s", e);
        else if (*p < 0x20)
            o += (size_t)sprintf(out + o, "\\u%04x", *p);
        else
            out[o++] = (char)*p;
    }
    out[o] = '\0';
}

/* ------------------------------------------------------------ counting -- */

typedef struct count {
    char *key;
    unsigned long long n;
} count;

static int by_key(const void *a, const void *b)
{
    return strcmp(((const count *)a)->key, ((const count *)b)->key);
}

/* Window bound header as a JSON number: up to 18 digits, else null. */
static void window_time(const char *h, char *out, size_t cap)
{
    size_t len = h ? strlen(h) : 0;
    if (len == 0 || len > 18 || strspn(h, "0123456789") != len)
        snprintf(out, cap, "null");
    else
        snprintf(out, cap, "%llu", strtoull(h, NULL, 10));
}

static void window_count(const weir_udf_request *req, weir_udf_reply *rep, void *arg)
{
    const config *cfg = arg;
    const char *ct = weir_udf_header_get(req, "contentType");
    if (ct == NULL || strncmp(ct, "multipart/", 10) != 0) {
        weir_udf_reply_error(
            rep, WEIR_GRPC_INVALID_ARGUMENT,
            "expected contentType multipart/... (a window's GrpcPayloadCollection)");
        return;
    }
    weir_udf_collection *coll = weir_udf_collection_decode(req->payload, req->payload_len);
    if (coll == NULL) {
        weir_udf_reply_error(rep, WEIR_GRPC_INVALID_ARGUMENT, "malformed GrpcPayloadCollection");
        return;
    }

    /* Count per key: a plain array, linear lookup, sorted at the end. */
    size_t n_items = weir_udf_collection_size(coll), n_keys = 0;
    unsigned long long skipped = 0;
    count *counts = calloc(n_items + 1, sizeof(*counts));
    bool oom = counts == NULL;
    for (size_t i = 0; !oom && i < n_items; i++) {
        size_t len;
        const char *item = (const char *)weir_udf_collection_item(coll, i, &len);
        char *key;
        if (cfg->from_header) {
            const char *h = weir_udf_header_get(req, cfg->field);
            key = h ? strdup(h) : NULL;
        } else {
            key = json_field(item, item + len, cfg->field);
        }
        if (key == NULL) {
            skipped++;
            continue;
        }
        size_t k = 0;
        while (k < n_keys && strcmp(counts[k].key, key) != 0)
            k++;
        if (k == n_keys)
            counts[n_keys++].key = key;
        else
            free(key);
        counts[k].n++;
    }
    weir_udf_collection_free(coll);
    if (n_keys > 1)
        qsort(counts, n_keys, sizeof(*counts), by_key);

    char ws[32], we[32], sk[32];
    window_time(weir_udf_header_get(req, "windowStartTime"), ws, sizeof(ws));
    window_time(weir_udf_header_get(req, "windowEndTime"), we, sizeof(we));
    const char *partial = weir_udf_header_get(req, "partial");
    bool is_partial = partial != NULL && strcmp(partial, "true") == 0;
    for (size_t k = 0; !oom && k < n_keys; k++) {
        size_t cap = 6 * strlen(counts[k].key) + 200;
        char *esc = malloc(6 * strlen(counts[k].key) + 1), *el = malloc(cap);
        if (esc == NULL || el == NULL) {
            oom = true;
        } else {
            json_escape(counts[k].key, esc);
            int n = snprintf(el, cap,
                             "{\"key\":\"%s\",\"count\":%llu,\"windowStartTime\":%s,"
                             "\"windowEndTime\":%s,\"partial\":%s}",
                             esc, counts[k].n, ws, we, is_partial ? "true" : "false");
            oom = weir_udf_reply_element(rep, el, (size_t)n) != 0;
        }
        free(esc);
        free(el);
    }
    for (size_t k = 0; k < n_keys; k++)
        free(counts[k].key);
    free(counts);

    snprintf(sk, sizeof(sk), "%llu", skipped);
    static const char *const echo[] = {"windowStartTime", "windowEndTime", "partial"};
    oom = oom || weir_udf_reply_header(rep, "contentType", "multipart/json") != 0;
    for (size_t i = 0; !oom && i < 3; i++) {
        const char *v = weir_udf_header_get(req, echo[i]);
        if (v != NULL)
            oom = weir_udf_reply_header(rep, echo[i], v) != 0;
    }
    oom = oom || weir_udf_reply_header(rep, "skipped", sk) != 0;
    oom = oom || weir_udf_reply_header(rep, "udf", "c-window-count") != 0;
    if (oom)
        weir_udf_reply_error(rep, WEIR_GRPC_RESOURCE_EXHAUSTED, "out of memory");
}

static int parse_key(const char *opt, const char *value, void *arg)
{
    config *cfg = arg;
    if (strcmp(opt, "--key") != 0 || value == NULL)
        return -1;
    if (strncmp(value, "payload.", 8) == 0 && value[8] != '\0') {
        *cfg = (config){false, value + 8};
    } else if (strncmp(value, "header.", 7) == 0 && value[7] != '\0') {
        *cfg = (config){true, value + 7};
    } else {
        fprintf(stderr, "--key must be payload.FIELD or header.NAME, got '%s'\n", value);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    config cfg = {false, "key"};
    const char *env = getenv("WINDOW_KEY");
    if (env != NULL && *env != '\0' && parse_key("--key", env, &cfg) != 0)
        return 2;
    weir_udf_options opt;
    if (weir_udf_parse_args(&opt, argc, argv, parse_key, &cfg) != 0) {
        fprintf(stderr, "  --key SPEC   payload.FIELD (default payload.key) or header.NAME\n");
        return 2;
    }
    return weir_udf_serve(&opt, "c-window-count", window_count, &cfg);
}
