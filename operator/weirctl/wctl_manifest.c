/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_manifest: reads manifest files into ClusterStream, Stream and
 * Processor sets with the origin of every object, for `weirctl run`. */
#include "wctl_manifest.h"

#include "op_render.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Put a limit on everything: a manifest file is small. */
#define FILE_BYTES_MAX (16u << 20)
#define DIR_FILES_MAX 1024

int wctl_manifest_init(wctl_manifest_t *m)
{
    memset(m, 0, sizeof(*m));
    m->cluster_streams = json_array();
    m->streams = json_array();
    m->processors = json_array();
    m->origins = json_object();
    m->skipped = json_array();
    if (!m->cluster_streams || !m->streams || !m->processors || !m->origins || !m->skipped) {
        wctl_manifest_dispose(m);
        return -ENOMEM;
    }
    return 0;
}

void wctl_manifest_dispose(wctl_manifest_t *m)
{
    json_decref(m->cluster_streams);
    json_decref(m->streams);
    json_decref(m->processors);
    json_decref(m->origins);
    json_decref(m->skipped);
    memset(m, 0, sizeof(*m));
}

static const char *str_at(const json_t *o, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(o, k1);

    if (k2 != NULL)
        v = json_object_get(v, k2);
    return json_string_value(v);
}

/* A DNS-1123 subdomain-ish name: what the API server would accept. */
static int valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return 0;
    }
    return s[0] != '-' && s[0] != '.' && s[n - 1] != '-' && s[n - 1] != '.';
}

static uint64_t fnv1a(const char *s, uint64_t h)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static void origin_key(char *buf, size_t len, const char *kind, const json_t *obj)
{
    const char *ns = str_at(obj, "metadata", "namespace");

    snprintf(buf, len, "%s/%s/%s", kind, ns ? ns : "", str_at(obj, "metadata", "name"));
}

const char *wctl_manifest_origin(const wctl_manifest_t *m, const char *kind, const json_t *obj)
{
    char key[600];
    const char *o;

    if (str_at(obj, "metadata", "name") == NULL)
        return "(unknown)";
    origin_key(key, sizeof(key), kind, obj);
    o = json_string_value(json_object_get(m->origins, key));
    return o ? o : "(unknown)";
}

/* Checks and normalizes one document; *arr gets the set it belongs to, NULL
 * for a document of another kind. Returns 0 or -EINVAL with a message. */
static int classify(wctl_manifest_t *m, json_t *doc, json_t **arr, const char **kind_out, char *err,
                    size_t errlen)
{
    const char *api, *kind, *name, *ns;
    json_t *meta;
    int namespaced;

    *arr = NULL;
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "not a mapping (a manifest is an object with apiVersion and kind)");
        return -EINVAL;
    }
    api = str_at(doc, "apiVersion", NULL);
    kind = str_at(doc, "kind", NULL);
    if (api == NULL || kind == NULL) {
        snprintf(err, errlen, "apiVersion and kind must both be strings");
        return -EINVAL;
    }
    *kind_out = kind;
    if (strcmp(api, WCTL_API_WEIR) != 0 && strcmp(api, WCTL_API_SR) != 0) {
        if (strncmp(api, "streaming.", 10) == 0 &&
            (strcmp(kind, "ClusterStream") == 0 || strcmp(kind, "Stream") == 0 ||
             strcmp(kind, "Processor") == 0)) {
            snprintf(err, errlen, "%s has apiVersion %s; expected %s (or %s)", kind, api,
                     WCTL_API_WEIR, WCTL_API_SR);
            return -EINVAL;
        }
        return 0;
    }
    if (strcmp(kind, "ClusterStream") == 0) {
        *arr = m->cluster_streams;
        namespaced = 0;
    } else if (strcmp(kind, "Stream") == 0) {
        *arr = m->streams;
        namespaced = 1;
    } else if (strcmp(kind, "Processor") == 0) {
        *arr = m->processors;
        namespaced = 1;
    } else {
        snprintf(err, errlen, "unknown kind %s in %s (expected ClusterStream, Stream or Processor)",
                 kind, api);
        return -EINVAL;
    }
    meta = json_object_get(doc, "metadata");
    name = str_at(doc, "metadata", "name");
    if (!json_is_object(meta) || name == NULL) {
        snprintf(err, errlen, "%s has no metadata.name", kind);
        return -EINVAL;
    }
    if (!valid_name(name)) {
        snprintf(err, errlen,
                 "%s metadata.name \"%s\" is not a valid name (lowercase letters, digits, '-' "
                 "and '.', at most 253)",
                 kind, name);
        return -EINVAL;
    }
    if (!json_is_object(json_object_get(doc, "spec"))) {
        snprintf(err, errlen, "%s %s has no spec mapping", kind, name);
        return -EINVAL;
    }
    if (json_object_set_new(doc, "apiVersion", json_string(WCTL_API_WEIR)) != 0)
        return -ENOMEM;
    ns = str_at(doc, "metadata", "namespace");
    if (namespaced && ns == NULL) {
        if (json_object_set_new(meta, "namespace", json_string("default")) != 0)
            return -ENOMEM;
        ns = "default";
    } else if (namespaced && !valid_name(ns)) {
        snprintf(err, errlen, "%s %s: metadata.namespace \"%s\" is not a valid name", kind, name,
                 ns);
        return -EINVAL;
    }
    if (json_object_get(meta, "uid") == NULL) {
        /* op_render puts owner references on children: a stable fake uid. */
        uint64_t h = fnv1a(kind, 0xcbf29ce484222325ull);
        char uid[40];

        h = fnv1a(ns ? ns : "", h);
        h = fnv1a(name, h);
        snprintf(uid, sizeof(uid), "00000000-0000-4000-8000-%012llx",
                 (unsigned long long)(h & 0xffffffffffffull));
        if (json_object_set_new(meta, "uid", json_string(uid)) != 0)
            return -ENOMEM;
    }
    if (json_object_get(doc, "spec") != NULL && strcmp(kind, "Stream") == 0 &&
        str_at(doc, "spec", "name") == NULL) {
        snprintf(err, errlen, "Stream %s has no spec.name (the topic name)", name);
        return -EINVAL;
    }
    return 0;
}

int wctl_manifest_add_buffer(wctl_manifest_t *m, const char *file, const char *buf, size_t len,
                             char *err, size_t errlen)
{
    json_t *docs = NULL, *doc, *added = NULL, *new_origins = NULL;
    char msg[512], key[600], origin[1200];
    size_t i;
    int r;

    r = op_render_yaml_load(buf, len, &docs, msg, sizeof(msg));
    if (r != 0) {
        snprintf(err, errlen, "%s: %s", file, msg);
        goto out;
    }
    if (m->docs + json_array_size(docs) > WCTL_MANIFEST_DOCS_MAX) {
        snprintf(err, errlen, "%s: more than %d documents in all", file, WCTL_MANIFEST_DOCS_MAX);
        r = -EINVAL;
        goto out;
    }
    /* Check every document before adding any, so a failure adds nothing. */
    added = json_array();
    new_origins = json_object();
    if (added == NULL || new_origins == NULL) {
        r = -ENOMEM;
        goto out;
    }
    json_array_foreach (docs, i, doc) {
        json_t *arr;
        const char *kind = "?";

        r = classify(m, doc, &arr, &kind, msg, sizeof(msg));
        if (r == -ENOMEM)
            goto out;
        if (r != 0) {
            snprintf(err, errlen, "%s: document %zu: %s", file, i + 1, msg);
            goto out;
        }
        snprintf(origin, sizeof(origin), "%s: document %zu", file, i + 1);
        if (arr == NULL) {
            char skip[1600];

            snprintf(skip, sizeof(skip), "%s: %s %s", origin, kind,
                     str_at(doc, "apiVersion", NULL));
            if (json_array_append_new(m->skipped, json_string(skip)) != 0) {
                r = -ENOMEM;
                goto out;
            }
            continue;
        }
        origin_key(key, sizeof(key), kind, doc);
        if (json_object_get(m->origins, key) != NULL || json_object_get(new_origins, key)) {
            const char *prev = json_string_value(json_object_get(m->origins, key));

            if (prev == NULL)
                prev = json_string_value(json_object_get(new_origins, key));
            snprintf(err, errlen, "%s: %s %s is defined twice (first at %s)", origin, kind,
                     str_at(doc, "metadata", "name"), prev);
            r = -EINVAL;
            goto out;
        }
        if (json_object_set_new(new_origins, key, json_string(origin)) != 0 ||
            json_array_append_new(added, json_pack("[O, O]", arr, doc)) != 0) {
            r = -ENOMEM;
            goto out;
        }
    }
    json_array_foreach (added, i, doc) {
        json_t *arr = json_array_get(doc, 0);

        if (json_array_append(arr, json_array_get(doc, 1)) != 0) {
            r = -ENOMEM;
            goto out;
        }
    }
    if (json_object_update(m->origins, new_origins) != 0) {
        r = -ENOMEM;
        goto out;
    }
    m->docs += json_array_size(docs);
    r = 0;
out:
    json_decref(added);
    json_decref(new_origins);
    json_decref(docs);
    if (r == -ENOMEM)
        snprintf(err, errlen, "%s: out of memory", file);
    return r;
}

static int read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    size_t n = 0, cap = 0;
    int r = 0;

    *buf = NULL;
    if (f == NULL) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return r;
    }
    for (;;) {
        size_t got;

        if (n + 4096 + 1 > cap) {
            char *nb;

            cap = cap ? cap * 2 : 8192;
            nb = realloc(b, cap);
            if (nb == NULL) {
                r = -ENOMEM;
                snprintf(err, errlen, "%s: out of memory", path);
                goto out;
            }
            b = nb;
        }
        got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (n > FILE_BYTES_MAX) {
            r = -EINVAL;
            snprintf(err, errlen, "%s: larger than %u bytes", path, FILE_BYTES_MAX);
            goto out;
        }
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        r = -EIO;
        snprintf(err, errlen, "%s: read error", path);
        goto out;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    b = NULL;
out:
    free(b);
    fclose(f);
    return r;
}

static int add_file(wctl_manifest_t *m, const char *path, char *err, size_t errlen)
{
    char *buf;
    size_t len = 0;
    int r = read_file(path, &buf, &len, err, errlen);

    if (r != 0)
        return r;
    r = wctl_manifest_add_buffer(m, path, buf, len, err, errlen);
    free(buf);
    return r;
}

static int has_manifest_suffix(const char *n)
{
    size_t l = strlen(n);

    if (n[0] == '.')
        return 0;
    return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) ||
           (l > 4 && strcmp(n + l - 4, ".yml") == 0) || (l > 5 && strcmp(n + l - 5, ".json") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int wctl_manifest_add_path(wctl_manifest_t *m, const char *path, char *err, size_t errlen)
{
    struct stat st;
    DIR *d;
    struct dirent *de;
    char *names[DIR_FILES_MAX];
    size_t n = 0;
    int r = 0;

    if (stat(path, &st) != 0) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return r;
    }
    if (!S_ISDIR(st.st_mode))
        return add_file(m, path, err, errlen);
    d = opendir(path);
    if (d == NULL) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return r;
    }
    while ((de = readdir(d)) != NULL) {
        if (!has_manifest_suffix(de->d_name))
            continue;
        if (n == DIR_FILES_MAX) {
            snprintf(err, errlen, "%s: more than %d manifest files", path, DIR_FILES_MAX);
            r = -EINVAL;
            goto out;
        }
        names[n] = strdup(de->d_name);
        if (names[n] == NULL) {
            r = -ENOMEM;
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "%s: no *.yaml, *.yml or *.json manifest in this directory", path);
        r = -ENOENT;
        goto out;
    }
    qsort(names, n, sizeof(names[0]), cmp_str);
    for (size_t i = 0; i < n && r == 0; i++) {
        char full[4096];
        size_t pl = strlen(path);

        snprintf(full, sizeof(full), "%s%s%s", path, pl > 0 && path[pl - 1] == '/' ? "" : "/",
                 names[i]);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
            r = add_file(m, full, err, errlen);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    closedir(d);
    return r;
}

static int cs_defined(const json_t *css, const char *name)
{
    size_t i;
    const json_t *cs;

    json_array_foreach (css, i, cs) {
        const char *n = str_at(cs, "metadata", "name");
        if (n != NULL && strcmp(n, name) == 0)
            return 1;
    }
    return 0;
}

json_t *wctl_manifest_deps(const wctl_manifest_t *m)
{
    json_t *css = json_deep_copy(m->cluster_streams);
    json_t *deps = NULL;
    const json_t *st;
    size_t i;

    if (css == NULL)
        return NULL;
    json_array_foreach (m->streams, i, st) {
        const char *cs = str_at(json_object_get(st, "spec"), "storage", "clusterStream");
        char def[300];

        if (cs == NULL) {
            snprintf(def, sizeof(def), "%s-cluster-stream", str_at(st, "metadata", "name"));
            cs = def;
        }
        if (cs_defined(css, cs))
            continue;
        if (json_array_append_new(
                css, json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:{s:{s:s}}}}", "apiVersion",
                               WCTL_API_WEIR, "kind", "ClusterStream", "metadata", "name", cs,
                               "uid", "00000000-0000-4000-8000-000000000000", "spec", "name", cs,
                               "storage", "server", "protocol", "weir")) != 0) {
            json_decref(css);
            return NULL;
        }
    }
    deps = json_pack("{s:O, s:o}", "streams", m->streams, "clusterStreams", css);
    return deps;
}
