/* SPDX-License-Identifier: Apache-2.0 */
/* Description: the operator's pure renderers, driven by tests/data/render:
 * each <case>/ holds cr.yaml (the custom resource), deps.yaml (resolved
 * Streams, ClusterStreams and operator config) and expected/<file>.json (one
 * file per child object, status.json, pipeline.json, or error.json). The test
 * renders every case and compares structurally (json_equal); rendered
 * pipeline specs must also pass wc_spec_validate. WEIR_RENDER_UPDATE=1
 * rewrites expected/ from the current output (review the diff!). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "op_render.h"
#include "wc_spec.h"

#define PATH_BUF 1024

static char data_dir[PATH_BUF];

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

/* The first document of a YAML file (new reference), or NULL if absent. */
static json_t *load_yaml(const char *path)
{
    char err[256] = "";
    size_t len;
    char *text = read_text(path, &len);
    json_t *docs = NULL, *doc;

    if (text == NULL)
        return NULL;
    if (op_render_yaml_load(text, len, &docs, err, sizeof(err)) != 0)
        fail_msg("%s: %s", path, err);
    free(text);
    doc = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return doc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted list of entries of `dir` ending in `suffix` (or directories when
 * suffix is NULL). Caller frees each and the array. */
static size_t list_dir(const char *dir, const char *suffix, char ***out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;

    *out = NULL;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);

        if (e->d_name[0] == '.')
            continue;
        if (suffix != NULL &&
            (l < strlen(suffix) || strcmp(e->d_name + l - strlen(suffix), suffix) != 0))
            continue;
        if (suffix == NULL) {
            char p[3 * PATH_BUF];
            struct stat st;

            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
                continue;
        }
        names = realloc(names, (n + 1) * sizeof(*names));
        assert_non_null(names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), cmp_str);
    *out = names;
    return n;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Operator configuration of a case: test defaults, overridden by deps.config. */
static void case_config(const json_t *deps, op_render_config_t *cfg)
{
    const json_t *c = json_object_get(deps, "config");

    memset(cfg, 0, sizeof(*cfg));
    cfg->dataplane_image = "weir/weir-dataplane:0.1.0";
    if (json_string_value(json_object_get(c, "dataplaneImage")) != NULL)
        cfg->dataplane_image = json_string_value(json_object_get(c, "dataplaneImage"));
    cfg->image_pull_policy = json_string_value(json_object_get(c, "imagePullPolicy"));
    cfg->store_namespace = json_string_value(json_object_get(c, "storeNamespace"));
    cfg->cluster_domain = json_string_value(json_object_get(c, "clusterDomain"));
    cfg->store_resources = json_object_get(c, "storeResources");
    cfg->processor_resources = json_object_get(c, "processorResources");
    cfg->seccomp_profile = json_object_get(c, "seccompProfile");
}

/* Renders `cr` into {file name: JSON} as the expected/ directory holds it. */
static json_t *render_case(const char *name, const json_t *cr, const json_t *deps)
{
    op_render_config_t cfg;
    op_render_out_t out;
    op_render_err_t rc;
    const char *kind = json_string_value(json_object_get(cr, "kind"));
    char err[1024] = "";
    json_t *files = json_object();
    size_t i;
    json_t *o;

    case_config(deps, &cfg);
    if (kind != NULL && strcmp(kind, "ClusterStream") == 0)
        rc = op_render_cluster_stream(&cfg, cr, &out, err, sizeof(err));
    else
        rc = op_render_processor(&cfg, cr, deps, &out, err, sizeof(err));
    if (rc != OP_RENDER_OK) {
        /* Failure leaves nothing behind. */
        assert_null(out.objects);
        assert_null(out.status);
        assert_null(out.pipeline);
        json_object_set_new(
            files, "error.json",
            json_pack("{s:s, s:s}", "reason", op_render_err_reason(rc), "message", err));
        return files;
    }
    json_array_foreach (out.objects, i, o) {
        char fname[256];
        const char *k = json_string_value(json_object_get(o, "kind"));
        const char *n = json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
        size_t j;

        assert_non_null(k);
        assert_non_null(n);
        snprintf(fname, sizeof(fname), "%s-%s.json", k, n);
        for (j = 0; fname[j] != '\0'; j++)
            fname[j] = (char)tolower((unsigned char)fname[j]);
        if (json_object_get(files, fname) != NULL)
            fail_msg("%s: two objects render to %s", name, fname);
        json_object_set(files, fname, o);
    }
    if (out.status != NULL)
        json_object_set(files, "status.json", out.status);
    if (out.pipeline != NULL)
        json_object_set(files, "pipeline.json", out.pipeline);
    op_render_out_dispose(&out);
    return files;
}

/* Invariants every rendered child must satisfy, whatever the case. */
static void check_children(const char *name, const json_t *cr, const json_t *files)
{
    static const char *const label_keys[] = {
        "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
        "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"};
    const char *fname;
    json_t *o;

    json_object_foreach ((json_t *)files, fname, o) {
        const json_t *meta = json_object_get(o, "metadata");
        const json_t *ref = json_array_get(json_object_get(meta, "ownerReferences"), 0);

        if (strcmp(fname, "status.json") == 0 || strcmp(fname, "pipeline.json") == 0 ||
            strcmp(fname, "error.json") == 0)
            continue;
        if (ref == NULL || !json_equal(json_object_get(ref, "uid"),
                                       json_object_get(json_object_get(cr, "metadata"), "uid")))
            fail_msg("%s/%s: no ownerReference to the CR", name, fname);
        if (!json_is_true(json_object_get(ref, "controller")))
            fail_msg("%s/%s: ownerReference is not the controller", name, fname);
        for (size_t k = 0; k < sizeof(label_keys) / sizeof(label_keys[0]); k++)
            if (json_object_get(json_object_get(meta, "labels"), label_keys[k]) == NULL)
                fail_msg("%s/%s: label %s missing", name, fname, label_keys[k]);
    }
    o = json_object_get(files, "pipeline.json");
    if (o != NULL) {
        char err[512] = "";
        json_t *cm = NULL, *loaded = NULL;
        const char *k;
        json_t *v;

        if (wc_spec_validate(o, err, sizeof(err)) != 0)
            fail_msg("%s: rendered pipeline spec is invalid: %s", name, err);
        /* The ConfigMap carries exactly that spec, and it loads as a file would. */
        json_object_foreach ((json_t *)files, k, v)
            if (strncmp(k, "configmap-", 10) == 0)
                cm = v;
        assert_non_null(cm);
        k = json_string_value(json_object_get(json_object_get(cm, "data"), "pipeline.json"));
        assert_non_null(k);
        if (wc_spec_load_buffer(k, strlen(k), "pipeline.json", &loaded, err, sizeof(err)) != 0)
            fail_msg("%s: ConfigMap pipeline.json does not load: %s", name, err);
        assert_true(json_equal(loaded, o));
        json_decref(loaded);
    }
}

static int write_json(const char *path, const json_t *v)
{
    return json_dump_file(v, path, JSON_INDENT(2) | JSON_SORT_KEYS);
}

static int run_case(const char *name, bool update)
{
    char dir[2 * PATH_BUF], p[3 * PATH_BUF], edir[2 * PATH_BUF + 16];
    json_t *cr, *deps, *files, *again;
    char **expected;
    size_t nexp;
    int bad = 0;
    const char *fname;
    json_t *v;

    snprintf(dir, sizeof(dir), "%s/%s", data_dir, name);
    snprintf(p, sizeof(p), "%s/cr.yaml", dir);
    cr = load_yaml(p);
    if (cr == NULL)
        fail_msg("%s: no cr.yaml", name);
    snprintf(p, sizeof(p), "%s/deps.yaml", dir);
    deps = load_yaml(p);
    if (deps == NULL)
        deps = json_object();
    files = render_case(name, cr, deps);
    check_children(name, cr, files);
    /* Pure: the same input renders the same output. */
    again = render_case(name, cr, deps);
    assert_true(json_equal(files, again));
    json_decref(again);

    snprintf(edir, sizeof(edir), "%s/expected", dir);
    if (update) {
        nexp = list_dir(edir, ".json", &expected);
        for (size_t i = 0; i < nexp; i++) {
            snprintf(p, sizeof(p), "%s/%s", edir, expected[i]);
            unlink(p);
        }
        free_list(expected, nexp);
        mkdir(edir, 0755);
        json_object_foreach (files, fname, v) {
            snprintf(p, sizeof(p), "%s/%s", edir, fname);
            assert_int_equal(write_json(p, v), 0);
        }
        print_message("updated %s\n", edir);
    }
    nexp = list_dir(edir, ".json", &expected);
    for (size_t i = 0; i < nexp; i++) {
        json_error_t jerr;
        json_t *want;

        snprintf(p, sizeof(p), "%s/%s", edir, expected[i]);
        want = json_load_file(p, JSON_REJECT_DUPLICATES, &jerr);
        if (want == NULL) {
            print_error("%s: %s:%d: %s\n", name, p, jerr.line, jerr.text);
            bad++;
            continue;
        }
        v = json_object_get(files, expected[i]);
        if (v == NULL) {
            print_error("%s: expected %s was not rendered\n", name, expected[i]);
            bad++;
        } else if (!json_equal(v, want)) {
            char *got = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);

            print_error("%s: %s differs; rendered:\n%s\n", name, expected[i], got);
            free(got);
            bad++;
        }
        json_decref(want);
    }
    json_object_foreach (files, fname, v) {
        bool found = false;

        for (size_t i = 0; i < nexp; i++)
            found |= strcmp(expected[i], fname) == 0;
        if (!found) {
            print_error("%s: rendered %s, which expected/ does not have\n", name, fname);
            bad++;
        }
    }
    if (nexp == 0) {
        print_error("%s: expected/ is empty\n", name);
        bad++;
    }
    free_list(expected, nexp);
    json_decref(files);
    json_decref(cr);
    json_decref(deps);
    return bad;
}

static void test_render_cases(void **state)
{
    const char *upd = getenv("WEIR_RENDER_UPDATE");
    bool update = upd != NULL && strcmp(upd, "1") == 0;
    char **cases;
    size_t n = list_dir(data_dir, NULL, &cases);
    int bad = 0;

    (void)state;
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        int b = run_case(cases[i], update);

        print_message("%-32s %s\n", cases[i], b ? "FAIL" : "ok");
        bad += b;
    }
    free_list(cases, n);
    assert_int_equal(bad, 0);
}

/* Loads case `name` and returns its cr and deps (new references). */
static void load_case(const char *name, json_t **cr, json_t **deps)
{
    char p[3 * PATH_BUF];

    snprintf(p, sizeof(p), "%s/%s/cr.yaml", data_dir, name);
    *cr = load_yaml(p);
    assert_non_null(*cr);
    snprintf(p, sizeof(p), "%s/%s/deps.yaml", data_dir, name);
    *deps = load_yaml(p);
    assert_non_null(*deps);
}

static const char *pod_hash(const op_render_out_t *out)
{
    size_t i;
    json_t *o;

    json_array_foreach (out->objects, i, o) {
        if (strcmp(json_string_value(json_object_get(o, "kind")), "StatefulSet") == 0)
            return json_string_value(json_object_get(
                json_object_get(
                    json_object_get(json_object_get(json_object_get(o, "spec"), "template"),
                                    "metadata"),
                    "annotations"),
                "weir.dev/config-hash"));
    }
    return NULL;
}

/* A spec change changes the config hash (pods roll); a metadata-only change
 * (labels on the CR) does not. */
static void test_config_hash_rolls(void **state)
{
    op_render_config_t cfg = {.dataplane_image = "img"};
    op_render_out_t a, b;
    char err[512];
    json_t *cr, *deps;
    char ha[17];

    (void)state;
    load_case("processor-window-attributes", &cr, &deps);
    assert_int_equal(op_render_processor(&cfg, cr, deps, &a, err, sizeof(err)), OP_RENDER_OK);
    assert_non_null(pod_hash(&a));
    snprintf(ha, sizeof(ha), "%s", pod_hash(&a));

    json_object_set_new(json_object_get(cr, "metadata"), "labels",
                        json_pack("{s:s}", "team", "fraud"));
    assert_int_equal(op_render_processor(&cfg, cr, deps, &b, err, sizeof(err)), OP_RENDER_OK);
    assert_string_equal(ha, pod_hash(&b));
    op_render_out_dispose(&b);

    json_object_set_new(json_object_get(json_object_get(cr, "spec"), "attributes"), "srp.window",
                        json_string("10s"));
    assert_int_equal(op_render_processor(&cfg, cr, deps, &b, err, sizeof(err)), OP_RENDER_OK);
    assert_string_not_equal(ha, pod_hash(&b));
    op_render_out_dispose(&b);

    /* op_render_pipeline gives the very spec the ConfigMap holds. */
    {
        json_t *spec = NULL;

        json_object_set_new(json_object_get(json_object_get(cr, "spec"), "attributes"),
                            "srp.window", json_string("5s"));
        assert_int_equal(op_render_pipeline(&cfg, cr, deps, &spec, err, sizeof(err)), OP_RENDER_OK);
        assert_true(json_equal(spec, a.pipeline));
        json_decref(spec);
    }
    op_render_out_dispose(&a);
    op_render_out_dispose(&a); /* idempotent */
    json_decref(cr);
    json_decref(deps);
}

/* The address of a weir ClusterStream is computed from its spec alone. */
static void test_cluster_address(void **state)
{
    op_render_config_t cfg = {.cluster_domain = "cluster.local"};
    json_t *cs = json_pack("{s:s, s:{s:s, s:s}, s:{s:{s:i, s:{s:s}}}}", "kind", "ClusterStream",
                           "metadata", "name", "main", "uid", "u", "spec", "storage", "replicas", 2,
                           "server", "protocol", "weir");
    json_t *addr = NULL;
    char err[256];

    (void)state;
    assert_int_equal(op_render_cluster_address(&cfg, cs, &addr, err, sizeof(err)), OP_RENDER_OK);
    assert_string_equal(json_string_value(json_object_get(addr, "url")),
                        "weir-store-main.weir-system.svc.cluster.local:9092");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(addr, "variables"), "brokers")),
        "weir-store-main-0.weir-store-main.weir-system.svc.cluster.local:9092,"
        "weir-store-main-1.weir-store-main.weir-system.svc.cluster.local:9092");
    json_decref(addr);
    json_object_set_new(json_object_get(json_object_get(cs, "spec"), "storage"), "replicas",
                        json_integer(0));
    assert_int_equal(op_render_cluster_address(&cfg, cs, &addr, err, sizeof(err)),
                     OP_RENDER_ERR_INVALID_SPEC);
    assert_null(addr);
    json_decref(cs);
}

/* Replaces every value under `node` in turn with values of the wrong type
 * or size, renders, and restores it: a render must never crash or leak, and
 * a failure must carry a reason and a message. */
static int mutations;

static void render_checked(const json_t *cr, const json_t *deps)
{
    op_render_config_t cfg = {0};
    op_render_out_t out;
    char err[512] = "";
    op_render_err_t rc;
    const char *kind = json_string_value(json_object_get(cr, "kind"));

    if (kind != NULL && strcmp(kind, "ClusterStream") == 0)
        rc = op_render_cluster_stream(&cfg, cr, &out, err, sizeof(err));
    else
        rc = op_render_processor(&cfg, cr, deps, &out, err, sizeof(err));
    if (rc != OP_RENDER_OK) {
        assert_true(err[0] != '\0');
        assert_true(op_render_err_reason(rc)[0] != '\0');
        assert_null(out.objects);
    } else if (out.pipeline != NULL) {
        assert_int_equal(wc_spec_validate(out.pipeline, err, sizeof(err)), 0);
    }
    op_render_out_dispose(&out);
    mutations++;
}

static void mutate(json_t *root, json_t *node, const json_t *deps, int depth)
{
    json_t *bad[] = {json_null(), json_integer(-1), json_integer(1LL << 40), json_string(""),
                     json_true(), json_array(),     json_object(),           json_string("x-")};
    const size_t nbad = sizeof(bad) / sizeof(bad[0]);
    const char *k;
    json_t *v;
    size_t i;

    if (depth > 8)
        goto out;
    if (json_is_object(node)) {
        /* Keys first: deleting and re-adding a member moves it to the end. */
        json_t *keys = json_array();

        json_object_foreach (node, k, v)
            json_array_append_new(keys, json_string(k));
        json_array_foreach (keys, i, v) {
            const char *key = json_string_value(v);
            json_t *saved = json_incref(json_object_get(node, key));

            for (size_t b = 0; b < nbad; b++) {
                json_object_set(node, key, bad[b]);
                render_checked(root, deps);
            }
            json_object_del(node, key);
            render_checked(root, deps);
            json_object_set_new(node, key, saved);
            mutate(root, saved, deps, depth + 1);
        }
        json_decref(keys);
    } else if (json_is_array(node)) {
        json_array_foreach (node, i, v) {
            json_t *saved = json_incref(v);

            for (size_t b = 0; b < nbad; b++) {
                json_array_set(node, i, bad[b]);
                render_checked(root, deps);
            }
            json_array_set_new(node, i, saved);
            mutate(root, saved, deps, depth + 1);
        }
    }
out:
    for (size_t b = 0; b < nbad; b++)
        json_decref(bad[b]);
}

static void test_mutations(void **state)
{
    char **cases;
    size_t n = list_dir(data_dir, NULL, &cases);

    (void)state;
    for (size_t i = 0; i < n; i++) {
        json_t *cr, *deps;
        char p[3 * PATH_BUF];

        snprintf(p, sizeof(p), "%s/%s/cr.yaml", data_dir, cases[i]);
        cr = load_yaml(p);
        snprintf(p, sizeof(p), "%s/%s/deps.yaml", data_dir, cases[i]);
        deps = load_yaml(p);
        if (deps == NULL)
            deps = json_object();
        mutate(cr, cr, deps, 0);
        /* The dependencies are untrusted too (other users' Streams). */
        mutate(deps, deps, deps, 0);
        render_checked(cr, deps);
        json_decref(cr);
        json_decref(deps);
    }
    free_list(cases, n);
    print_message("%d mutated renders\n", mutations);
    assert_true(mutations > 1000);
}

static void test_durations_and_bytes(void **state)
{
    long long v;

    (void)state;
    assert_int_equal(op_render_parse_duration_ms("5s", &v), 0);
    assert_int_equal(v, 5000);
    assert_int_equal(op_render_parse_duration_ms("1m30s", &v), 0);
    assert_int_equal(v, 90000);
    assert_int_equal(op_render_parse_duration_ms("250ms", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(op_render_parse_duration_ms("1.5s", &v), 0);
    assert_int_equal(v, 1500);
    assert_int_equal(op_render_parse_duration_ms("7d", &v), 0);
    assert_int_equal(v, 604800000LL);
    assert_int_equal(op_render_parse_duration_ms("1500", &v), 0);
    assert_int_equal(v, 1500);
    assert_int_equal(op_render_parse_duration_ms("", &v), -EINVAL);
    assert_int_equal(op_render_parse_duration_ms("5", &v), 0);
    assert_int_equal(op_render_parse_duration_ms("5x", &v), -EINVAL);
    assert_int_equal(op_render_parse_duration_ms("-5s", &v), -EINVAL);
    assert_int_equal(op_render_parse_duration_ms("0.5ms", &v), -EINVAL);
    assert_int_equal(op_render_parse_duration_ms("s", &v), -EINVAL);

    assert_int_equal(op_render_parse_bytes("256Mi", &v), 0);
    assert_int_equal(v, 268435456LL);
    assert_int_equal(op_render_parse_bytes("1G", &v), 0);
    assert_int_equal(v, 1000000000LL);
    assert_int_equal(op_render_parse_bytes("1.5Gi", &v), 0);
    assert_int_equal(v, 1610612736LL);
    assert_int_equal(op_render_parse_bytes("1048576", &v), 0);
    assert_int_equal(v, 1048576);
    assert_int_equal(op_render_parse_bytes("1e6", &v), 0);
    assert_int_equal(v, 1000000);
    assert_int_equal(op_render_parse_bytes("10Xi", &v), -EINVAL);
    assert_int_equal(op_render_parse_bytes("-1Gi", &v), -EINVAL);
    assert_int_equal(op_render_parse_bytes("0.5", &v), -EINVAL);
}

static void test_yaml(void **state)
{
    const char *y = "# two documents\n"
                    "a: 1\nb: -2.5\nc: true\nd: ~\ne: '5'\nf: 5s\ng: 0x1f\nh: [x, \"y\", 3]\n"
                    "i: &anchor {k: v}\nj: *anchor\nk: |\n  text\nl: 1e3\nm: .inf\nn: 0o17\n"
                    "o: 99999999999999999999\np: +7\nq: 1.\nr: off\ns: 'no'\n"
                    "---\n"
                    "---\n"
                    "- only\n";
    json_t *docs = NULL, *want;
    char err[256] = "";

    (void)state;
    assert_int_equal(op_render_yaml_load(y, strlen(y), &docs, err, sizeof(err)), 0);
    want = json_pack("[{s:i, s:f, s:b, s:n, s:s, s:s, s:i, s:[s, s, i], s:{s:s}, s:{s:s}, s:s, "
                     "s:f, s:s, s:i, s:f, s:i, s:f, s:b, s:s}, [s]]",
                     "a", 1, "b", -2.5, "c", 1, "d", "e", "5", "f", "5s", "g", 31, "h", "x", "y", 3,
                     "i", "k", "v", "j", "k", "v", "k", "text\n", "l", 1000.0, "m", ".inf", "n", 15,
                     "o", 1e20, "p", 7, "q", 1.0, "r", 0, "s", "no", "only");
    assert_non_null(want);
    if (!json_equal(docs, want)) {
        char *s = json_dumps(docs, JSON_SORT_KEYS);

        fail_msg("yaml: got %s", s);
    }
    json_decref(want);
    json_decref(docs);

    assert_int_equal(op_render_yaml_load("a: 1\na: 2\n", 10, &docs, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "2:1: duplicate key \"a\""));
    assert_int_equal(op_render_yaml_load("a: [1, 2\n", 9, &docs, err, sizeof(err)), -EINVAL);
    assert_int_equal(op_render_yaml_load("? [a]\n: 1\n", 10, &docs, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "mapping keys must be scalars"));
    assert_int_equal(op_render_yaml_load("a: *nope\n", 9, &docs, err, sizeof(err)), -EINVAL);
    {
        /* Nesting is bounded. */
        char deep[400];
        size_t n = 0;

        for (int i = 0; i < 100; i++)
            deep[n++] = '[';
        for (int i = 0; i < 100; i++)
            deep[n++] = ']';
        assert_int_equal(op_render_yaml_load(deep, n, &docs, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "nesting"));
    }
    assert_int_equal(op_render_yaml_load("", 0, &docs, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(docs), 0);
    json_decref(docs);
}

static void test_hash(void **state)
{
    json_t *a = json_pack("{s:i, s:s}", "x", 1, "y", "z");
    json_t *b = json_pack("{s:s, s:i}", "y", "z", "x", 1);
    char ha[17], hb[17];

    (void)state;
    assert_int_equal(op_render_hash(a, ha), 0);
    assert_int_equal(op_render_hash(b, hb), 0);
    assert_string_equal(ha, hb);
    assert_int_equal(strlen(ha), 16);
    json_object_set_new(b, "x", json_integer(2));
    assert_int_equal(op_render_hash(b, hb), 0);
    assert_string_not_equal(ha, hb);
    json_decref(a);
    json_decref(b);
    assert_string_equal(op_render_err_reason(OP_RENDER_ERR_PROTOCOL_MISMATCH), "ProtocolMismatch");
    assert_string_equal(op_render_err_reason(OP_RENDER_OK), "");
}

int main(void)
{
    const char *src = getenv("WEIR_SOURCE_DIR");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_cases),
        cmocka_unit_test(test_config_hash_rolls),
        cmocka_unit_test(test_cluster_address),
        cmocka_unit_test(test_durations_and_bytes),
        cmocka_unit_test(test_yaml),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_mutations),
    };

    if (src != NULL)
        snprintf(data_dir, sizeof(data_dir), "%s/tests/data/render", src);
    else
        snprintf(data_dir, sizeof(data_dir), "data/render");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
