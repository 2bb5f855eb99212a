/* SPDX-License-Identifier: Apache-2.0 */
/* Description: weirctl's manifest collection (wctl_manifest: kinds,
 * apiVersion normalization, defaults, origins, duplicates, errors naming
 * file and document, atomic adds, directories, the dependencies object)
 * and the plan (wctl_plan: topics and partition counts, per-replica specs
 * pointed at the local store, UDF command mapping and expansion, port
 * allocation, render errors with their reason). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "wctl_kafka.h"
#include "wctl_manifest.h"
#include "wctl_plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char streams_yaml[] = "apiVersion: streaming.tanzu.vmware.com/v1alpha1\n"
                                   "kind: Stream\n"
                                   "metadata: {name: in}\n"
                                   "spec: {name: topic-in, protocol: kafka, keyExpression: "
                                   "payload.k}\n"
                                   "---\n"
                                   "apiVersion: streaming.weir.dev/v1alpha1\n"
                                   "kind: Stream\n"
                                   "metadata: {name: out, namespace: default}\n"
                                   "spec: {name: topic-out, protocol: weir, partitionCount: 4, "
                                   "storage: {clusterStream: main}}\n"
                                   "---\n"
                                   "apiVersion: v1\n"
                                   "kind: ConfigMap\n"
                                   "metadata: {name: other}\n";

static const char proc_yaml[] =
    "apiVersion: streaming.weir.dev/v1alpha1\n"
    "kind: Processor\n"
    "metadata:\n"
    "  name: p\n"
    "  annotations:\n"
    "    local.weir.dev/command.up: \"python3 up.py --port 55554 --name r{replica}\"\n"
    "spec:\n"
    "  replicas: 3\n"
    "  inputs: [{name: in}]\n"
    "  outputs: [{name: out}]\n"
    "  template:\n"
    "    spec:\n"
    "      containers: [{name: up, image: example/up:1}]\n";

static void test_collect(void **state)
{
    wctl_manifest_t m;
    char err[512];
    const json_t *in, *out;

    (void)state;
    assert_int_equal(wctl_manifest_init(&m), 0);
    assert_int_equal(
        wctl_manifest_add_buffer(&m, "s.yaml", streams_yaml, strlen(streams_yaml), err, 512), 0);
    assert_int_equal(json_array_size(m.streams), 2);
    assert_int_equal(json_array_size(m.skipped), 1);
    assert_string_equal(json_string_value(json_array_get(m.skipped, 0)),
                        "s.yaml: document 3: ConfigMap v1");
    in = json_array_get(m.streams, 0);
    out = json_array_get(m.streams, 1);
    /* Normalized apiVersion, defaulted namespace, synthetic uid. */
    assert_string_equal(json_string_value(json_object_get(in, "apiVersion")), WCTL_API_WEIR);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(in, "metadata"), "namespace")),
        "default");
    assert_non_null(json_string_value(json_object_get(json_object_get(in, "metadata"), "uid")));
    assert_string_equal(wctl_manifest_origin(&m, "Stream", out), "s.yaml: document 2");
    assert_string_equal(wctl_manifest_origin(&m, "Processor", out), "(unknown)");
    wctl_manifest_dispose(&m);
}

static void expect_error(const char *yaml, const char *want)
{
    wctl_manifest_t m;
    char err[512] = "";

    assert_int_equal(wctl_manifest_init(&m), 0);
    assert_int_equal(wctl_manifest_add_buffer(&m, "bad.yaml", yaml, strlen(yaml), err, 512),
                     -EINVAL);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    /* Nothing of a failed buffer is added. */
    assert_int_equal(json_array_size(m.streams), 0);
    assert_int_equal(json_object_size(m.origins), 0);
    assert_int_equal(m.docs, 0);
    wctl_manifest_dispose(&m);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("a: [", "bad.yaml: ");
    expect_error("- 1\n", "bad.yaml: document 1: not a mapping");
    expect_error("kind: Stream\n", "document 1: apiVersion and kind must both be strings");
    expect_error("apiVersion: streaming.weir.dev/v1alpha1\nkind: Stream\nspec: {name: x}\n",
                 "document 1: Stream has no metadata.name");
    expect_error("apiVersion: streaming.weir.dev/v1alpha1\nkind: Stream\nmetadata: {name: Bad_}\n"
                 "spec: {name: x}\n",
                 "metadata.name \"Bad_\" is not a valid name");
    expect_error("apiVersion: streaming.weir.dev/v1alpha1\nkind: Stream\nmetadata: {name: x}\n",
                 "Stream x has no spec mapping");
    expect_error("apiVersion: streaming.weir.dev/v1alpha1\nkind: Stream\nmetadata: {name: x}\n"
                 "spec: {protocol: kafka}\n",
                 "Stream x has no spec.name");
    expect_error("apiVersion: streaming.weir.dev/v1beta1\nkind: Processor\nmetadata: {name: x}\n",
                 "Processor has apiVersion streaming.weir.dev/v1beta1");
    /* The second document is bad: the first must not be added either. */
    expect_error("apiVersion: streaming.weir.dev/v1alpha1\nkind: Stream\nmetadata: {name: a}\n"
                 "spec: {name: a}\n---\nkind: 3\napiVersion: x\n",
                 "bad.yaml: document 2: apiVersion and kind");
    expect_error("apiVersion: streaming.weir.dev/v1alpha1\nkind: Stream\nmetadata: {name: a}\n"
                 "spec: {name: a}\n---\napiVersion: streaming.weir.dev/v1alpha1\nkind: Stream\n"
                 "metadata: {name: a}\nspec: {name: b}\n",
                 "document 2: Stream a is defined twice (first at bad.yaml: document 1)");
}

static void test_same_name_other_namespace(void **state)
{
    static const char y[] = "apiVersion: streaming.weir.dev/v1alpha1\nkind: Stream\n"
                            "metadata: {name: a, namespace: x}\nspec: {name: a}\n---\n"
                            "apiVersion: streaming.weir.dev/v1alpha1\nkind: Stream\n"
                            "metadata: {name: a, namespace: y}\nspec: {name: a}\n";
    wctl_manifest_t m;
    char err[512];

    (void)state;
    assert_int_equal(wctl_manifest_init(&m), 0);
    assert_int_equal(wctl_manifest_add_buffer(&m, "ns.yaml", y, strlen(y), err, 512), 0);
    assert_int_equal(json_array_size(m.streams), 2);
    wctl_manifest_dispose(&m);
}

static void test_directory(void **state)
{
    char dir[] = "/tmp/test_wctl_manifest.XXXXXX", path[300], err[512];
    wctl_manifest_t m;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(wctl_manifest_init(&m), 0);
    assert_int_equal(wctl_manifest_add_path(&m, dir, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "no *.yaml"));
    snprintf(path, sizeof(path), "%s/b-proc.yaml", dir);
    f = fopen(path, "w");
    fputs(proc_yaml, f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/a-streams.yml", dir);
    f = fopen(path, "w");
    fputs(streams_yaml, f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/notes.txt", dir);
    f = fopen(path, "w");
    fputs("not yaml: [", f);
    fclose(f);
    assert_int_equal(wctl_manifest_add_path(&m, dir, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(m.streams), 2);
    assert_int_equal(json_array_size(m.processors), 1);
    /* Name order: a-streams.yml first. */
    snprintf(path, sizeof(path), "%s/a-streams.yml: document 1", dir);
    assert_string_equal(wctl_manifest_origin(&m, "Stream", json_array_get(m.streams, 0)), path);
    assert_int_equal(wctl_manifest_add_path(&m, "/nonexistent/x.yaml", err, sizeof(err)), -ENOENT);
    wctl_manifest_dispose(&m);
    snprintf(path, sizeof(path), "%s/a-streams.yml", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/b-proc.yaml", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/notes.txt", dir);
    unlink(path);
    rmdir(dir);
}

static void test_deps_autoprovision(void **state)
{
    wctl_manifest_t m;
    char err[512];
    json_t *deps;
    const json_t *css;

    (void)state;
    assert_int_equal(wctl_manifest_init(&m), 0);
    assert_int_equal(
        wctl_manifest_add_buffer(&m, "s.yaml", streams_yaml, strlen(streams_yaml), err, 512), 0);
    deps = wctl_manifest_deps(&m);
    assert_non_null(deps);
    css = json_object_get(deps, "clusterStreams");
    /* "in" has no clusterStream: in-cluster-stream; "out" names "main". */
    assert_int_equal(json_array_size(css), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(css, 0), "metadata"), "name")),
                        "in-cluster-stream");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(css, 1), "metadata"), "name")),
                        "main");
    assert_int_equal(json_array_size(json_object_get(deps, "streams")), 2);
    json_decref(deps);
    wctl_manifest_dispose(&m);
}

static json_t *plan_of(const char *extra, const json_t *udf_map, int base, int max, int *rc,
                       char *err)
{
    wctl_manifest_t m;
    wctl_plan_opts_t o = {.bootstrap = "127.0.0.1:20099",
                          .udf_port_base = base,
                          .udf_port_max = max,
                          .udf_map = udf_map};
    json_t *plan = NULL;

    assert_int_equal(wctl_manifest_init(&m), 0);
    assert_int_equal(
        wctl_manifest_add_buffer(&m, "s.yaml", streams_yaml, strlen(streams_yaml), err, 512), 0);
    assert_int_equal(wctl_manifest_add_buffer(&m, "p.yaml", extra, strlen(extra), err, 512), 0);
    *rc = wctl_plan_build(&m, &o, &plan, err, 512);
    wctl_manifest_dispose(&m);
    return plan;
}

static void test_plan(void **state)
{
    char err[512];
    int rc;
    json_t *plan = plan_of(proc_yaml, NULL, 20000, 20010, &rc, err);
    const json_t *topics, *p, *rp, *spec, *u;
    size_t i;

    (void)state;
    assert_int_equal(rc, 0);
    topics = json_object_get(plan, "topics");
    assert_int_equal(json_array_size(topics), 2);
    /* Keyed without partitionCount: 5; explicit: 4. */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(topics, 0), "partitions")),
                     5);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(topics, 1), "partitions")),
                     4);
    p = json_array_get(json_object_get(plan, "processors"), 0);
    assert_string_equal(json_string_value(json_object_get(p, "origin")), "p.yaml: document 1");
    assert_int_equal(json_integer_value(json_object_get(p, "replicas")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "outputs"), 0)),
                        "topic-out");
    json_array_foreach (json_object_get(p, "replicas_plan"), i, rp) {
        char want[128];

        spec = json_object_get(rp, "spec");
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(spec, "replica"), "index")),
            (json_int_t)i);
        assert_string_equal(
            json_string_value(json_object_get(
                json_object_get(json_array_get(json_object_get(spec, "inputs"), 0), "cluster"),
                "bootstrap")),
            "127.0.0.1:20099");
        assert_string_equal(
            json_string_value(json_object_get(
                json_object_get(json_array_get(json_object_get(spec, "outputs"), 0), "cluster"),
                "bootstrap")),
            "127.0.0.1:20099");
        snprintf(want, sizeof(want), "127.0.0.1:%zu", 20000 + i);
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(json_object_get(spec, "udfs"), 0), "endpoint")),
                            want);
        u = json_array_get(json_object_get(rp, "udfs"), 0);
        assert_int_equal(json_integer_value(json_object_get(u, "port")), (json_int_t)(20000 + i));
        snprintf(want, sizeof(want), "python3 up.py --port %zu --name r%zu", 20000 + i, i);
        assert_string_equal(json_string_value(json_object_get(u, "command")), want);
        assert_string_equal(json_string_value(json_object_get(u, "image")), "example/up:1");
        snprintf(want, sizeof(want), "weir-proc-p-%zu", i);
        assert_string_equal(json_string_value(json_object_get(rp, "podName")), want);
    }
    assert_int_equal(json_array_size(json_object_get(p, "replicas_plan")), 3);
    json_decref(plan);

    /* Out of ports: 3 replicas need 3. */
    plan = plan_of(proc_yaml, NULL, 20000, 20001, &rc, err);
    assert_int_equal(rc, -EINVAL);
    assert_null(plan);
    assert_non_null(strstr(err, "p.yaml: document 1: Processor p: out of UDF ports (20000-20001"));
}

static void test_udf_mapping(void **state)
{
    json_t *proc = json_pack("{s:{s:{s:s}}}", "metadata", "annotations",
                             "local.weir.dev/command.up", "from-annotation");
    json_t *map = json_pack("{s:{s:s}, s:{s:s}}", "containers", "up", "from-container", "images",
                            "example/up:1", "from-image");
    json_t *imgonly = json_pack("{s:{s:s}}", "images", "example/up:1", "from-image");
    char err[512];
    int rc;
    json_t *plan;

    (void)state;
    /* --udf-map by container wins, then by image, then the annotation. */
    assert_string_equal(wctl_plan_udf_command(proc, "up", "example/up:1", map), "from-container");
    assert_string_equal(wctl_plan_udf_command(proc, "up", "example/up:1", imgonly), "from-image");
    assert_string_equal(wctl_plan_udf_command(proc, "up", "example/other:2", imgonly),
                        "from-annotation");
    assert_string_equal(wctl_plan_udf_command(proc, "up", NULL, NULL), "from-annotation");
    assert_null(wctl_plan_udf_command(proc, "down", "example/up:2", NULL));
    /* Through the plan: the map's command, expanded. */
    json_object_set_new(json_object_get(map, "containers"), "up", json_string("run {port}"));
    plan = plan_of(proc_yaml, map, 20050, 20090, &rc, err);
    assert_int_equal(rc, 0);
    {
        const json_t *p0 = json_array_get(json_object_get(plan, "processors"), 0);
        const json_t *r2 = json_array_get(json_object_get(p0, "replicas_plan"), 2);
        const json_t *u0 = json_array_get(json_object_get(r2, "udfs"), 0);

        assert_string_equal(json_string_value(json_object_get(u0, "command")), "run 20052");
    }
    json_decref(plan);
    json_decref(proc);
    json_decref(map);
    json_decref(imgonly);
}

static void test_expand(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(
        wctl_plan_expand_command("a --port {port} -r {replica}", 55554, 20001, 2, out, sizeof(out)),
        0);
    assert_string_equal(out, "a --port 20001 -r 2");
    /* The declared port as a whole number is replaced; inside others it is not. */
    assert_int_equal(wctl_plan_expand_command("srv --port 55554 --x 155554 --y 555540 :55554",
                                              55554, 7, 0, out, sizeof(out)),
                     0);
    assert_string_equal(out, "srv --port 7 --x 155554 --y 555540 :7");
    assert_int_equal(wctl_plan_expand_command("55554", 55554, 9, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "9");
    assert_int_equal(wctl_plan_expand_command("{port}{port}{port}", 0, 20000, 0, out, 10), -ENOSPC);
    assert_int_equal(wctl_plan_expand_command("{unknown}", 0, 1, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "{unknown}");
}

static void test_rewrite(void **state)
{
    json_t *spec = json_pack(
        "{s:[{s:{s:s}}, {s:{s:s}}], s:[{s:{s:s}}], s:{s:{s:s}}, s:{s:i, s:i}, s:[{s:s, s:s}]}",
        "inputs", "cluster", "bootstrap", "a:1", "cluster", "bootstrap", "b:2", "outputs",
        "cluster", "bootstrap", "c:3", "deadLetter", "cluster", "bootstrap", "d:4", "replica",
        "index", 0, "count", 2, "udfs", "name", "u", "endpoint", "127.0.0.1:55554");
    int ports[1] = {20042};
    char *s;

    (void)state;
    assert_int_equal(wctl_plan_rewrite_spec(spec, "127.0.0.1:9", 1, ports, 2), -EINVAL);
    assert_int_equal(wctl_plan_rewrite_spec(spec, "127.0.0.1:9", 1, ports, 1), 0);
    s = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        s, "{\"deadLetter\":{\"cluster\":{\"bootstrap\":\"127.0.0.1:9\"}},\"inputs\":[{\"cluster\":"
           "{\"bootstrap\":\"127.0.0.1:9\"}},{\"cluster\":{\"bootstrap\":\"127.0.0.1:9\"}}],"
           "\"outputs\":[{\"cluster\":{\"bootstrap\":\"127.0.0.1:9\"}}],\"replica\":{\"count\":2,"
           "\"index\":1},\"udfs\":[{\"endpoint\":\"127.0.0.1:20042\",\"name\":\"u\"}]}");
    free(s);
    json_decref(spec);
}

static void test_render_errors(void **state)
{
    static const char missing[] = "apiVersion: streaming.weir.dev/v1alpha1\nkind: Processor\n"
                                  "metadata: {name: q}\nspec: {inputs: [{name: in}], outputs: "
                                  "[{name: nope}]}\n";
    static const char nocmd[] = "apiVersion: streaming.weir.dev/v1alpha1\nkind: Processor\n"
                                "metadata: {name: q}\nspec:\n  inputs: [{name: in}]\n"
                                "  outputs: [{name: out}]\n  template: {spec: {containers: "
                                "[{name: c, image: i:1}]}}\n";
    static const char scs[] = "apiVersion: streaming.weir.dev/v1alpha1\nkind: Processor\n"
                              "metadata: {name: q}\nspec: {type: SCS, inputs: [{name: in}], "
                              "outputs: [{name: out}]}\n";
    char err[512];
    int rc;

    (void)state;
    assert_null(plan_of(missing, NULL, 20000, 20010, &rc, err));
    assert_int_equal(rc, -EINVAL);
    assert_string_equal(err, "p.yaml: document 1: Processor q: StreamNotFound: output Stream "
                             "\"nope\" not found in namespace default");
    assert_null(plan_of(nocmd, NULL, 20000, 20010, &rc, err));
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(err, "UDF container \"c\" (image i:1) has no local command"));
    assert_null(plan_of(scs, NULL, 20000, 20010, &rc, err));
    assert_non_null(strstr(err, "type SCS cannot run locally"));
}

static void test_default_bootstrap(void **state)
{
    char dir[] = "/tmp/test_wctl_bootstrap.XXXXXX", path[300], buf[128];
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    unsetenv("WEIR_BOOTSTRAP");
    setenv("WEIR_STATE_DIR", dir, 1);
    assert_string_equal(wctl_kafka_default_bootstrap(buf, sizeof(buf)), "127.0.0.1:20092");
    snprintf(path, sizeof(path), "%s/run.json", dir);
    f = fopen(path, "w");
    fputs("{\"bootstrap\": \"127.0.0.1:20077\", \"pid\": 1}", f);
    fclose(f);
    assert_string_equal(wctl_kafka_default_bootstrap(buf, sizeof(buf)), "127.0.0.1:20077");
    setenv("WEIR_BOOTSTRAP", "kafka-1:9092", 1);
    assert_string_equal(wctl_kafka_default_bootstrap(buf, sizeof(buf)), "kafka-1:9092");
    unsetenv("WEIR_BOOTSTRAP");
    unsetenv("WEIR_STATE_DIR");
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collect),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_same_name_other_namespace),
        cmocka_unit_test(test_directory),
        cmocka_unit_test(test_deps_autoprovision),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_udf_mapping),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_rewrite),
        cmocka_unit_test(test_render_errors),
        cmocka_unit_test(test_default_bootstrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
