/* SPDX-License-Identifier: Apache-2.0 */
/* Pipeline spec validation. The schema is compiled once per process from the
 * copy embedded at build time; semantic checks then walk the operator graph. */
#include "wc_spec.h"

#include "wc_err.h"
#include "wc_jsonschema.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t schema_once = PTHREAD_ONCE_INIT;
static wc_jsonschema_t *schema;
static char schema_err[256];

static void schema_compile(void)
{
    if (wc_jsonschema_new(wc_spec_schema_json, wc_spec_schema_json_len, &schema, schema_err,
                          sizeof(schema_err)) != 0)
        schema = NULL;
}

/* Node names share one namespace: inputs and operator ids are what `from`
 * refers to. Returns the index in `names` or -1. */
static int name_index(json_t *names, const char *name)
{
    size_t i;
    json_t *v;

    json_array_foreach (names, i, v) {
        if (strcmp(json_string_value(v), name) == 0)
            return (int)i;
    }
    return -1;
}

static int check_unique(const json_t *arr, const char *field, const char *where, json_t *seen,
                        char *err, size_t errlen)
{
    size_t i;
    json_t *v;

    json_array_foreach (arr, i, v) {
        const char *name = json_string_value(json_object_get(v, field));

        if (name_index(seen, name) >= 0)
            return wc_fail(err, errlen, "/%s/%zu/%s: duplicate name \"%s\"", where, i, field, name);
        json_array_append_new(seen, json_string(name));
    }
    return 0;
}

static int check_partitions(const json_t *spec, char *err, size_t errlen)
{
    const json_t *replica = json_object_get(spec, "replica");
    json_int_t count = 1;
    size_t i, j;
    json_t *in, *p;

    if (replica != NULL) {
        json_int_t index = json_integer_value(json_object_get(replica, "index"));

        count = json_integer_value(json_object_get(replica, "count"));
        if (index >= count)
            return wc_fail(err, errlen, "/replica/index: %lld must be < count %lld",
                           (long long)index, (long long)count);
    }
    json_array_foreach (json_object_get(spec, "inputs"), i, in) {
        const json_t *parts = json_object_get(in, "partitions");
        json_int_t n;

        if (parts == NULL)
            continue;
        n = json_integer_value(json_object_get(parts, "count"));
        json_array_foreach (json_object_get(parts, "assigned"), j, p) {
            if (json_integer_value(p) >= n)
                return wc_fail(err, errlen,
                               "/inputs/%zu/partitions/assigned/%zu: partition %lld is out of "
                               "range (count %lld)",
                               i, j, (long long)json_integer_value(p), (long long)n);
        }
    }
    return 0;
}

/* Kahn's algorithm over inputs + operators; `order` receives operator ids. */
static int topo_sort(const json_t *spec, json_t *order, char *err, size_t errlen)
{
    const json_t *inputs = json_object_get(spec, "inputs");
    const json_t *ops = json_object_get(spec, "operators");
    size_t nops = json_array_size(ops);
    json_t *done = json_array();
    int rc = 0;
    size_t i, k;
    json_t *v;

    json_array_foreach (inputs, i, v)
        json_array_append_new(done, json_string(json_string_value(json_object_get(v, "name"))));
    for (size_t placed = 0; placed < nops;) {
        size_t before = placed;

        json_array_foreach (ops, i, v) {
            const char *id = json_string_value(json_object_get(v, "id"));
            int ready = 1;
            json_t *src;

            if (name_index(done, id) >= 0)
                continue;
            json_array_foreach (json_object_get(v, "from"), k, src) {
                if (name_index(done, json_string_value(src)) < 0)
                    ready = 0;
            }
            if (ready) {
                json_array_append_new(done, json_string(id));
                json_array_append_new(order, json_string(id));
                placed++;
            }
        }
        if (placed == before) {
            const char *stuck = "?";

            /* No progress: every unplaced operator waits on another one. */
            for (i = 0; i < nops; i++) {
                stuck = json_string_value(json_object_get(json_array_get(ops, i), "id"));
                if (name_index(done, stuck) < 0)
                    break;
            }
            rc = wc_fail(err, errlen, "/operators/%zu: operator \"%s\" is part of a cycle", i,
                         stuck);
            goto out;
        }
    }
out:
    json_decref(done);
    return rc;
}

static int check_refs(const json_t *spec, json_t *nodes, json_t **used_out, char *err,
                      size_t errlen)
{
    const json_t *ops = json_object_get(spec, "operators");
    const json_t *outputs = json_object_get(spec, "outputs");
    json_t *udfs = json_array(), *outs = json_array(), *used = json_array();
    json_t *late_outs = json_array();
    int rc;
    size_t i, k;
    json_t *v, *src;

    rc = check_unique(json_object_get(spec, "udfs"), "name", "udfs", udfs, err, errlen);
    if (rc != 0)
        goto out;
    rc = check_unique(outputs, "name", "outputs", outs, err, errlen);
    if (rc != 0)
        goto out;
    json_array_foreach (ops, i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));
        const char *type = json_string_value(json_object_get(v, "type"));
        const char *udf = json_string_value(json_object_get(v, "udf"));
        const json_t *late = json_object_get(v, "late");

        json_array_foreach (json_object_get(v, "from"), k, src) {
            const char *s = json_string_value(src);

            if (name_index(nodes, s) < 0) {
                rc = wc_fail(err, errlen,
                             "/operators/%zu/from/%zu: no input or operator named \"%s\"", i, k, s);
                goto out;
            }
            if (strcmp(s, id) == 0) {
                rc = wc_fail(err, errlen, "/operators/%zu/from/%zu: operator reads from itself", i,
                             k);
                goto out;
            }
            json_array_append_new(used, json_string(s));
        }
        if (udf != NULL && name_index(udfs, udf) < 0) {
            rc = wc_fail(err, errlen, "/operators/%zu/udf: no udf named \"%s\" in /udfs", i, udf);
            goto out;
        }
        if (late != NULL && json_object_get(late, "output") != NULL) {
            const char *lo = json_string_value(json_object_get(late, "output"));
            int oi = name_index(outs, lo);

            if (oi < 0) {
                rc = wc_fail(err, errlen, "/operators/%zu/late/output: no output named \"%s\"", i,
                             lo);
                goto out;
            }
            /* A side output is fed only by late records, never by a main
             * path: streaming-runtimes mixed the two in one topic. */
            if (json_object_get(json_array_get(outputs, (size_t)oi), "from") != NULL) {
                rc = wc_fail(err, errlen,
                             "/outputs/%d/from: output \"%s\" is a late side output and must not "
                             "also have a main source",
                             oi, lo);
                goto out;
            }
            json_array_append_new(late_outs, json_string(lo));
            json_array_append_new(used, json_string(id));
        }
        if (strcmp(type, "join") == 0 && json_array_size(json_object_get(v, "from")) != 2) {
            rc = wc_fail(err, errlen, "/operators/%zu/from: a join needs [left, right]", i);
            goto out;
        }
    }
    json_array_foreach (outputs, i, v) {
        const char *s = json_string_value(json_object_get(v, "from"));

        if (s == NULL) {
            if (name_index(late_outs, json_string_value(json_object_get(v, "name"))) < 0) {
                rc = wc_fail(err, errlen,
                             "/outputs/%zu: missing \"from\" (only a late side output "
                             "may omit it)",
                             i);
                goto out;
            }
            continue;
        }
        if (name_index(nodes, s) < 0) {
            rc = wc_fail(err, errlen, "/outputs/%zu/from: no input or operator named \"%s\"", i, s);
            goto out;
        }
        json_array_append_new(used, json_string(s));
    }
    /* A node nothing reads from is almost always a wiring mistake. Checked
     * after the references resolve, but cycles are reported first by the
     * caller's order of checks, since a cycle also strands its sources. */
    *used_out = used;
    used = NULL;
out:
    json_decref(udfs);
    json_decref(outs);
    json_decref(late_outs);
    json_decref(used);
    return rc;
}

int wc_spec_validate(const json_t *spec, char *err, size_t errlen)
{
    json_t *nodes = NULL, *order = NULL, *used = NULL;
    size_t i;
    json_t *v;
    char buf[512];
    int rc;

    pthread_once(&schema_once, schema_compile);
    if (schema == NULL)
        return wc_fail(err, errlen, "embedded pipeline schema does not compile: %s", schema_err);
    rc = wc_jsonschema_validate(schema, spec, buf, sizeof(buf));
    if (rc != 0)
        return wc_fail(err, errlen, "%s", buf);

    nodes = json_array();
    rc = check_unique(json_object_get(spec, "inputs"), "name", "inputs", nodes, err, errlen);
    if (rc != 0)
        goto out;
    rc = check_unique(json_object_get(spec, "operators"), "id", "operators", nodes, err, errlen);
    if (rc != 0)
        goto out;
    rc = check_refs(spec, nodes, &used, err, errlen);
    if (rc != 0)
        goto out;
    order = json_array();
    rc = topo_sort(spec, order, err, errlen);
    if (rc != 0)
        goto out;
    json_array_foreach (nodes, i, v) {
        if (name_index(used, json_string_value(v)) < 0) {
            rc = wc_fail(err, errlen, "\"%s\" feeds no operator or output", json_string_value(v));
            goto out;
        }
    }
    rc = check_partitions(spec, err, errlen);
out:
    json_decref(used);
    json_decref(order);
    json_decref(nodes);
    return rc;
}

json_t *wc_spec_topo_order(const json_t *spec)
{
    json_t *order = json_array();
    char err[8];

    if (topo_sort(spec, order, err, sizeof(err)) != 0) {
        json_decref(order);
        return NULL;
    }
    return order;
}

int wc_spec_load_buffer(const char *buf, size_t len, const char *origin, json_t **out, char *err,
                        size_t errlen)
{
    json_error_t jerr;
    json_t *spec;
    char msg[512];
    int rc;

    *out = NULL;
    spec = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (spec == NULL)
        return wc_fail(err, errlen, "%s:%d:%d: %s", origin, jerr.line, jerr.column, jerr.text);
    rc = wc_spec_validate(spec, msg, sizeof(msg));
    if (rc != 0) {
        json_decref(spec);
        return wc_fail(err, errlen, "%s: %s", origin, msg);
    }
    *out = spec;
    return 0;
}

int wc_spec_load_file(const char *path, json_t **out, char *err, size_t errlen)
{
    FILE *f;
    char *buf = NULL;
    long n;
    int rc;

    *out = NULL;
    f = fopen(path, "rb");
    if (f == NULL) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = -EIO;
        snprintf(err, errlen, "%s: cannot size file", path);
        goto out;
    }
    if (n > 16 * 1024 * 1024) {
        rc = wc_fail(err, errlen, "%s: spec larger than 16 MiB", path);
        goto out;
    }
    buf = malloc((size_t)n + 1);
    if (buf == NULL) {
        rc = -ENOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        rc = -EIO;
        snprintf(err, errlen, "%s: short read", path);
        goto out;
    }
    rc = wc_spec_load_buffer(buf, (size_t)n, path, out, err, errlen);
out:
    free(buf);
    fclose(f);
    return rc;
}

static const json_t *find_op(const json_t *spec, const char *id)
{
    size_t i;
    json_t *v;

    json_array_foreach (json_object_get(spec, "operators"), i, v) {
        if (strcmp(json_string_value(json_object_get(v, "id")), id) == 0)
            return v;
    }
    return NULL;
}

static void print_from(const json_t *node, FILE *f)
{
    size_t i;
    json_t *src;

    json_array_foreach (json_object_get(node, "from"), i, src)
        fprintf(f, "%s%s", i ? ", " : "", json_string_value(src));
}

void wc_spec_print_plan(const json_t *spec, FILE *f)
{
    json_t *order = wc_spec_topo_order(spec);
    size_t i;
    json_t *v;

    if (order == NULL)
        return;
    fprintf(f, "pipeline %s (spec v%lld)\n", json_string_value(json_object_get(spec, "name")),
            (long long)json_integer_value(json_object_get(spec, "version")));
    json_array_foreach (json_object_get(spec, "inputs"), i, v) {
        const json_t *c = json_object_get(v, "cluster");
        const json_t *p = json_object_get(v, "partitions");

        fprintf(f, "  input    %-16s <- %s @ %s", json_string_value(json_object_get(v, "name")),
                json_string_value(json_object_get(v, "topic")),
                json_string_value(json_object_get(c, "bootstrap")));
        if (p != NULL)
            fprintf(f, " (%lld partitions)",
                    (long long)json_integer_value(json_object_get(p, "count")));
        fputc('\n', f);
    }
    json_array_foreach (order, i, v) {
        const json_t *op = find_op(spec, json_string_value(v));
        const char *type = json_string_value(json_object_get(op, "type"));

        fprintf(f, "  %-8s %-16s <- ", type, json_string_value(v));
        print_from(op, f);
        if (strcmp(type, "window") == 0) {
            const json_t *w = json_object_get(op, "window");

            fprintf(f, " [%s", json_string_value(json_object_get(w, "kind")));
            if (json_object_get(w, "sizeMs"))
                fprintf(f, " size=%lldms",
                        (long long)json_integer_value(json_object_get(w, "sizeMs")));
            if (json_object_get(w, "slideMs"))
                fprintf(f, " slide=%lldms",
                        (long long)json_integer_value(json_object_get(w, "slideMs")));
            if (json_object_get(w, "gapMs"))
                fprintf(f, " gap=%lldms",
                        (long long)json_integer_value(json_object_get(w, "gapMs")));
            if (json_object_get(op, "key"))
                fprintf(f, " key=%s", json_string_value(json_object_get(op, "key")));
            fputc(']', f);
        } else if (strcmp(type, "filter") == 0) {
            fprintf(f, " [%s]", json_string_value(json_object_get(op, "expr")));
        } else if (strcmp(type, "join") == 0) {
            fprintf(f, " [%s join]", json_string_value(json_object_get(op, "kind")));
        }
        fputc('\n', f);
    }
    json_array_foreach (json_object_get(spec, "outputs"), i, v) {
        const char *from = json_string_value(json_object_get(v, "from"));

        fprintf(f, "  output   %-16s <- %s -> %s\n", json_string_value(json_object_get(v, "name")),
                from != NULL ? from : "(late records)",
                json_string_value(json_object_get(v, "topic")));
    }
    if (json_object_get(spec, "deadLetter") != NULL)
        fprintf(f, "  dlq      -> %s\n",
                json_string_value(json_object_get(json_object_get(spec, "deadLetter"), "topic")));
    json_decref(order);
}

int wc_spec_validate_cli(const char *path, FILE *out, FILE *errf)
{
    json_t *spec = NULL;
    char err[1024];

    if (wc_spec_load_file(path, &spec, err, sizeof(err)) != 0) {
        fprintf(errf, "invalid pipeline spec: %s\n", err);
        return 65;
    }
    wc_spec_print_plan(spec, out);
    json_decref(spec);
    return 0;
}
