/* Description: op_kube configuration (kubeconfig, in-cluster, exec plugin, token rotation), error
 * mapping, paths, backoff. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "op_kube_internal.h"

static char data_dir[PATH_MAX];

static const char *data(const char *name)
{
    static char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/%s", data_dir, name);
    return path;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, c;

    if (!f)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* ------------------------------------------------------------ kubeconfig -- */

static void test_kubeconfig_token_and_contexts(void **state)
{
    op_kube_config_t cfg;
    char err[256];

    assert_int_equal(
        op_kube_config_load_kubeconfig(data("kc-token.yaml"), NULL, &cfg, err, sizeof(err)),
        OP_KUBE_OK);
    assert_string_equal(cfg.server, "https://127.0.0.1:6443");
    assert_string_equal(cfg.token, "abc.def-123");
    assert_string_equal(cfg.namespace, "streams");
    /* Relative paths are resolved against the kubeconfig's directory. */
    assert_string_equal(cfg.ca_file, data("pki/ca.crt"));
    assert_null(cfg.ca_data);
    assert_null(cfg.cert_data);
    assert_null(cfg.exec_command);
    op_kube_config_dispose(&cfg);
    op_kube_config_dispose(&cfg); /* idempotent */

    /* An explicit context wins over current-context. */
    assert_int_equal(
        op_kube_config_load_kubeconfig(data("kc-token.yaml"), "prod", &cfg, err, sizeof(err)),
        OP_KUBE_OK);
    assert_string_equal(cfg.server, "https://prod.example:6443"); /* trailing '/' dropped */
    assert_non_null(cfg.ca_data);
    assert_true(strstr(cfg.ca_data, "BEGIN CERTIFICATE") != NULL);
    assert_int_equal(cfg.ca_data_len, strlen(cfg.ca_data));
    assert_non_null(cfg.cert_data);
    assert_non_null(cfg.key_data);
    assert_true(strstr(cfg.key_data, "EC PRIVATE KEY") != NULL);
    assert_null(cfg.token);
    assert_null(cfg.namespace);
    op_kube_config_dispose(&cfg);

    assert_int_equal(
        op_kube_config_load_kubeconfig(data("kc-token.yaml"), "nope", &cfg, err, sizeof(err)),
        OP_KUBE_ERR_INVALID);
    assert_non_null(strstr(err, "context \"nope\" not found"));
}

static void test_kubeconfig_cert_data_and_files(void **state)
{
    op_kube_config_t cfg;
    char err[256];

    assert_int_equal(
        op_kube_config_load_kubeconfig(data("kc-certdata.yaml"), NULL, &cfg, err, sizeof(err)),
        OP_KUBE_OK);
    assert_string_equal(cfg.server, "https://kube.example:443"); /* scheme added */
    assert_string_equal(cfg.tls_server_name, "kubernetes.default.svc");
    assert_memory_equal(cfg.cert_data, "-----BEGIN CERTIFICATE-----\nZmFrZS1jZXJ0\n", 41);
    assert_int_equal(cfg.key_data_len, strlen(cfg.key_data));
    op_kube_config_dispose(&cfg);

    assert_int_equal(
        op_kube_config_load_kubeconfig(data("kc-files.yaml"), NULL, &cfg, err, sizeof(err)),
        OP_KUBE_OK);
    assert_string_equal(cfg.server, "https://[::1]:6443");
    assert_string_equal(cfg.ca_file, "/etc/weir/ca.crt"); /* absolute stays */
    assert_string_equal(cfg.cert_file, data("certs/client.crt"));
    assert_string_equal(cfg.key_file, data("certs/client.key"));
    assert_string_equal(cfg.token_file, data("token"));
    op_kube_config_dispose(&cfg);
}

static void test_kubeconfig_exec(void **state)
{
    op_kube_config_t cfg;
    char err[256];

    assert_int_equal(
        op_kube_config_load_kubeconfig(data("kc-exec.yaml"), NULL, &cfg, err, sizeof(err)),
        OP_KUBE_OK);
    assert_string_equal(cfg.exec_command, data("./exec-cred.sh"));
    assert_string_equal(cfg.exec_api_version, "client.authentication.k8s.io/v1");
    assert_string_equal(cfg.exec_args[0], "--flavour");
    assert_string_equal(cfg.exec_args[1], "test");
    assert_null(cfg.exec_args[2]);
    assert_string_equal(cfg.exec_env[0], "EXEC_GREETING=hello world");
    assert_null(cfg.exec_env[1]);
    op_kube_config_dispose(&cfg);
}

static void expect_invalid(const char *file, const char *needle)
{
    op_kube_config_t cfg;
    char err[512] = "";

    assert_int_equal(op_kube_config_load_kubeconfig(data(file), NULL, &cfg, err, sizeof(err)),
                     OP_KUBE_ERR_INVALID);
    if (!strstr(err, needle))
        fail_msg("%s: error \"%s\" does not mention \"%s\"", file, err, needle);
    assert_null(cfg.server); /* nothing half-filled is left behind */
}

static void test_kubeconfig_errors(void **state)
{
    expect_invalid("kc-missing-server.yaml", "cluster.server is missing");
    expect_invalid("kc-missing-user.yaml", "user \"u\" not found");
    expect_invalid("kc-bad-b64.yaml", "certificate-authority-data is not valid base64");
    expect_invalid("kc-insecure.yaml", "insecure-skip-tls-verify");
    expect_invalid("kc-http.yaml", "plain http");
    expect_invalid("kc-cert-no-key.yaml", "client-certificate and client-key go together");
    expect_invalid("kc-exec-no-command.yaml", "user.exec.command is missing");
    expect_invalid("kc-no-context.yaml", "current-context is not set");
    expect_invalid("kc-bad-yaml.yaml", "yaml:");
    expect_invalid("does-not-exist.yaml", "No such file");
}

static void test_in_cluster(void **state)
{
    char dir[] = "/tmp/weir-op-kube-sa.XXXXXX", path[PATH_MAX], err[256];
    op_kube_config_t cfg;

    assert_non_null(mkdtemp(dir));
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(op_kube_config_in_cluster(dir, &cfg, err, sizeof(err)), OP_KUBE_ERR_INVALID);
    assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));

    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(op_kube_config_in_cluster(dir, &cfg, err, sizeof(err)), OP_KUBE_ERR_INVALID);
    assert_non_null(strstr(err, "service account"));

    snprintf(path, sizeof(path), "%s/token", dir);
    write_file(path, "tok\n");
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    write_file(path, "pem");
    snprintf(path, sizeof(path), "%s/namespace", dir);
    write_file(path, "weir-system\n");
    assert_int_equal(op_kube_config_in_cluster(dir, &cfg, err, sizeof(err)), OP_KUBE_OK);
    assert_string_equal(cfg.server, "https://[fd00::1]:443");
    assert_string_equal(cfg.namespace, "weir-system");
    snprintf(path, sizeof(path), "%s/token", dir);
    assert_string_equal(cfg.token_file, path);
    op_kube_config_dispose(&cfg);

    /* config_auto picks in-cluster when there is no kubeconfig. */
    unsetenv("KUBECONFIG");
    assert_int_equal(op_kube_config_auto(NULL, NULL, dir, &cfg, err, sizeof(err)), OP_KUBE_OK);
    assert_string_equal(cfg.server, "https://[fd00::1]:443");
    op_kube_config_dispose(&cfg);
    setenv("KUBECONFIG", data("kc-token.yaml"), 1);
    assert_int_equal(op_kube_config_auto(NULL, NULL, dir, &cfg, err, sizeof(err)), OP_KUBE_OK);
    assert_string_equal(cfg.server, "https://127.0.0.1:6443");
    op_kube_config_dispose(&cfg);
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");

    for (const char *f = "token\0ca.crt\0namespace\0"; *f; f += strlen(f) + 1) {
        snprintf(path, sizeof(path), "%s/%s", dir, f);
        unlink(path);
    }
    rmdir(dir);
}

/* ---------------------------------------------------------- credentials -- */

static void test_token_file_rotation(void **state)
{
    char dir[] = "/tmp/weir-op-kube-tok.XXXXXX", path[PATH_MAX], err[256];
    op_kube_config_t cfg = {0};
    const char *tok;
    op_kube_t *k;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/token", dir);
    write_file(path, "first\n");
    cfg.server = strdup("https://127.0.0.1:1");
    cfg.token_file = strdup(path);
    assert_int_equal(op_kube_new(&cfg, NULL, &k, err, sizeof(err)), OP_KUBE_OK);
    assert_null(cfg.server); /* moved into the client */
    assert_true(op_kube__token_refreshable(k));
    assert_int_equal(op_kube__token(k, &tok, err, sizeof(err)), OP_KUBE_OK);
    assert_string_equal(tok, "first");
    /* Rotation: a new file (new inode, as kubelet's atomic swap) is read. */
    snprintf(path, sizeof(path), "%s/token.new", dir);
    write_file(path, "second-token");
    snprintf(err, sizeof(err), "%s/token", dir);
    assert_int_equal(rename(path, err), 0);
    assert_int_equal(op_kube__token(k, &tok, err, sizeof(err)), OP_KUBE_OK);
    assert_string_equal(tok, "second-token");
    /* A vanished file keeps the last good token. */
    snprintf(path, sizeof(path), "%s/token", dir);
    unlink(path);
    assert_int_equal(op_kube__token(k, &tok, err, sizeof(err)), OP_KUBE_OK);
    assert_string_equal(tok, "second-token");
    op_kube_invalidate_credentials(k);
    assert_int_equal(op_kube__token(k, &tok, err, sizeof(err)), OP_KUBE_ERR_AUTH);
    assert_non_null(strstr(err, "token file"));
    op_kube_free(k);
    rmdir(dir);
}

static void test_exec_plugin_and_cache(void **state)
{
    char dir[] = "/tmp/weir-op-kube-exec.XXXXXX", count[PATH_MAX], err[256];
    op_kube_config_t cfg;
    const char *tok;
    op_kube_t *k;

    assert_non_null(mkdtemp(dir));
    snprintf(count, sizeof(count), "%s/count", dir);
    setenv("EXEC_COUNT_FILE", count, 1);
    setenv("EXEC_TOKEN", "from-plugin", 1);
    setenv("EXEC_EXPIRY", "2999-01-01T00:00:00Z", 1);
    unsetenv("EXEC_FAIL");
    assert_int_equal(
        op_kube_config_load_kubeconfig(data("kc-exec.yaml"), NULL, &cfg, err, sizeof(err)),
        OP_KUBE_OK);
    assert_int_equal(op_kube_new(&cfg, NULL, &k, err, sizeof(err)), OP_KUBE_OK);
    assert_int_equal(op_kube__token(k, &tok, err, sizeof(err)), OP_KUBE_OK);
    assert_string_equal(tok, "from-plugin");
    assert_int_equal(op_kube__token(k, &tok, err, sizeof(err)), OP_KUBE_OK);
    assert_int_equal(count_lines(count), 1); /* cached until expiry */
    {
        FILE *f = fopen(count, "r");
        char line[128] = "";

        assert_non_null(f);
        assert_non_null(fgets(line, sizeof(line), f));
        fclose(f);
        /* args and the kubeconfig's env reached the plugin */
        assert_string_equal(line, "--flavour test|hello world\n");
    }
    /* Invalidation (what a 401 does) runs it again. */
    setenv("EXEC_TOKEN", "second", 1);
    op_kube_invalidate_credentials(k);
    assert_int_equal(op_kube__token(k, &tok, err, sizeof(err)), OP_KUBE_OK);
    assert_string_equal(tok, "second");
    assert_int_equal(count_lines(count), 2);
    /* An already expired credential is not cached. */
    setenv("EXEC_EXPIRY", "2001-01-01T00:00:00+02:00", 1);
    op_kube_invalidate_credentials(k);
    assert_int_equal(op_kube__token(k, &tok, err, sizeof(err)), OP_KUBE_OK);
    assert_int_equal(op_kube__token(k, &tok, err, sizeof(err)), OP_KUBE_OK);
    assert_int_equal(count_lines(count), 4);
    /* A failing plugin is an auth error with its exit status. */
    setenv("EXEC_FAIL", "1", 1);
    assert_int_equal(op_kube__token(k, &tok, err, sizeof(err)), OP_KUBE_ERR_AUTH);
    assert_non_null(strstr(err, "exit 3"));
    op_kube_free(k);
    unsetenv("EXEC_FAIL");
    unsetenv("EXEC_EXPIRY");
    unsetenv("EXEC_TOKEN");
    unsetenv("EXEC_COUNT_FILE");
    unlink(count);
    rmdir(dir);
}

static void test_exec_parse(void **state)
{
    op_kube__exec_cred_t c;
    char err[256];
    time_t t;
    const char *ok = "{\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\","
                     "\"expirationTimestamp\":\"2024-01-02T03:04:05.123Z\"}}";
    const char *cert = "{\"kind\":\"ExecCredential\",\"status\":{\"clientCertificateData\":"
                       "\"-----BEGIN CERTIFICATE-----\",\"clientKeyData\":\"k\"}}";

    assert_int_equal(op_kube__exec_parse(ok, strlen(ok), &c, err, sizeof(err)), OP_KUBE_OK);
    assert_string_equal(c.token, "t");
    assert_int_equal(c.expiry, 1704164645);
    op_kube__exec_cred_dispose(&c);
    assert_int_equal(op_kube__exec_parse(cert, strlen(cert), &c, err, sizeof(err)), OP_KUBE_OK);
    assert_null(c.token);
    assert_int_equal(c.key_len, 1);
    assert_int_equal(c.expiry, 0);
    op_kube__exec_cred_dispose(&c);
    assert_int_equal(op_kube__exec_parse("nope", 4, &c, err, sizeof(err)), OP_KUBE_ERR_AUTH);
    assert_non_null(strstr(err, "not JSON"));
    assert_int_equal(op_kube__exec_parse("{\"kind\":\"ExecCredential\",\"status\":{}}", 37, &c, err,
                                         sizeof(err)),
                     OP_KUBE_ERR_AUTH);
    assert_non_null(strstr(err, "neither token"));

    assert_int_equal(op_kube__parse_rfc3339("2024-01-02T03:04:05Z", &t), 0);
    assert_int_equal(t, 1704164645);
    assert_int_equal(op_kube__parse_rfc3339("2024-01-02T05:04:05+02:00", &t), 0);
    assert_int_equal(t, 1704164645);
    assert_int_equal(op_kube__parse_rfc3339("2024-01-02T03:04:05", &t), -1);
    assert_int_equal(op_kube__parse_rfc3339("2024-01-02T03:04:05Zjunk", &t), -1);
}

static void test_base64(void **state)
{
    size_t n;
    char *s;

    s = op_kube__b64_decode("aGVsbG8=", &n);
    assert_string_equal(s, "hello");
    assert_int_equal(n, 5);
    free(s);
    s = op_kube__b64_decode("aGVs\nbG8h\n", &n);
    assert_string_equal(s, "hello!");
    free(s);
    assert_null(op_kube__b64_decode("aGVsbG8=x", &n)); /* data after padding */
    assert_null(op_kube__b64_decode("a", &n));
    assert_null(op_kube__b64_decode("a*==", &n));
}

/* --------------------------------------------------------------- errors -- */

static void test_error_mapping(void **state)
{
    static const struct {
        long status;
        op_kube_err_t e;
    } cases[] = {
        {200, OP_KUBE_OK},
        {201, OP_KUBE_OK},
        {400, OP_KUBE_ERR_INVALID},
        {401, OP_KUBE_ERR_AUTH},
        {403, OP_KUBE_ERR_AUTH},
        {404, OP_KUBE_ERR_NOT_FOUND},
        {405, OP_KUBE_ERR_INVALID},
        {408, OP_KUBE_ERR_TRANSIENT},
        {409, OP_KUBE_ERR_CONFLICT},
        {410, OP_KUBE_ERR_GONE},
        {415, OP_KUBE_ERR_INVALID},
        {422, OP_KUBE_ERR_INVALID},
        {429, OP_KUBE_ERR_TRANSIENT},
        {500, OP_KUBE_ERR_TRANSIENT},
        {503, OP_KUBE_ERR_TRANSIENT},
        {504, OP_KUBE_ERR_TRANSIENT},
        {0, OP_KUBE_ERR_TRANSIENT},
    };
    char err[256], body[1024];
    FILE *f;
    size_t n;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(op_kube_err_from_http(cases[i].status), cases[i].e);
    assert_string_equal(op_kube_err_str(OP_KUBE_ERR_GONE), "gone");
    assert_string_equal(op_kube_err_str(OP_KUBE_ERR_AUTH), "auth");

    f = fopen(data("status-notfound.json"), "r");
    assert_non_null(f);
    n = fread(body, 1, sizeof(body), f);
    fclose(f);
    assert_int_equal(op_kube_err_from_response(404, body, n, err, sizeof(err)),
                     OP_KUBE_ERR_NOT_FOUND);
    assert_string_equal(err, "HTTP 404 NotFound: configmaps \"nope\" not found");
    assert_int_equal(op_kube_err_from_response(401, "Unauthorized\n", 13, err, sizeof(err)),
                     OP_KUBE_ERR_AUTH);
    assert_string_equal(err, "HTTP 401: Unauthorized ");
    assert_int_equal(op_kube_err_from_response(502, NULL, 0, err, sizeof(err)),
                     OP_KUBE_ERR_TRANSIENT);
    assert_string_equal(err, "HTTP 502: (empty body)");
    strcpy(err, "untouched");
    assert_int_equal(op_kube_err_from_response(200, "{}", 2, err, sizeof(err)), OP_KUBE_OK);
    assert_string_equal(err, "untouched");
    /* A tiny buffer is truncated, never overrun. */
    assert_int_equal(op_kube_err_from_response(404, body, n, err, 5), OP_KUBE_ERR_NOT_FOUND);
    assert_string_equal(err, "HTTP");

    assert_int_equal(op_kube__curl_err(CURLE_OPERATION_TIMEDOUT, "GET", err, sizeof(err)),
                     OP_KUBE_ERR_TRANSIENT);
    assert_int_equal(op_kube__curl_err(CURLE_COULDNT_CONNECT, "GET", err, sizeof(err)),
                     OP_KUBE_ERR_TRANSIENT);
    assert_int_equal(op_kube__curl_err(CURLE_PEER_FAILED_VERIFICATION, "GET", err, sizeof(err)),
                     OP_KUBE_ERR_AUTH);
    assert_int_equal(op_kube__curl_err(CURLE_SSL_CACERT_BADFILE, "GET", err, sizeof(err)),
                     OP_KUBE_ERR_INVALID);
}

static void test_paths(void **state)
{
    char p[128];

    assert_int_equal(op_kube_path(p, sizeof(p), "v1", "ns", "configmaps", "cm", NULL), 35);
    assert_string_equal(p, "/api/v1/namespaces/ns/configmaps/cm");
    assert_true(op_kube_path(p, sizeof(p), "apps/v1", NULL, "statefulsets", NULL, NULL) > 0);
    assert_string_equal(p, "/apis/apps/v1/statefulsets");
    assert_true(op_kube_path(p, sizeof(p), "streaming.weir.dev/v1alpha1", "a", "processors", "p",
                             "status") > 0);
    assert_string_equal(p, "/apis/streaming.weir.dev/v1alpha1/namespaces/a/processors/p/status");
    assert_int_equal(op_kube_path(p, sizeof(p), "v1", "ns", "configmaps", "a/b", NULL), -1);
    assert_int_equal(op_kube_path(p, sizeof(p), "v1", "ns", "configmaps", "a?b", NULL), -1);
    assert_int_equal(op_kube_path(p, sizeof(p), "v1", "", "configmaps", NULL, NULL), -1);
    assert_int_equal(op_kube_path(p, sizeof(p), "v1", NULL, "pods", NULL, "status"), -1);
    assert_int_equal(op_kube_path(p, 10, "v1", "ns", "configmaps", "cm", NULL), -1);
}

static void test_path_resource(void **state)
{
    static const struct {
        const char *path, *resource;
        int rc;
        bool collection;
    } cases[] = {
        {"/api/v1/namespaces/ns/configmaps/cm", "configmaps", 0, false},
        {"/api/v1/namespaces/ns/configmaps", "configmaps", 0, true},
        {"/api/v1/namespaces/ns/configmaps?limit=500&continue=x", "configmaps", 0, true},
        {"/apis/apps/v1/statefulsets", "statefulsets", 0, true},
        {"/apis/streaming.weir.dev/v1alpha1/namespaces/a/processors/p/status", "processors/status",
         0, false},
        {"/api/v1/namespaces/ns", "namespaces", 0, false},
        {"/api/v1/namespaces", "namespaces", 0, true},
        {"/apis/coordination.k8s.io/v1/namespaces/w/leases/weir?x=1", "leases", 0, false},
        {"/healthz", "other", -1, false},
        {"/api/v1", "other", -1, false},
        {"/apis/apps/v1/", "other", -1, false},
        {"", "other", -1, false},
        {NULL, "other", -1, false},
    };
    char buf[64];
    bool coll;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(op_kube_path_resource(cases[i].path, buf, sizeof(buf), &coll),
                         cases[i].rc);
        assert_string_equal(buf, cases[i].resource);
        assert_int_equal(coll, cases[i].collection);
    }
    /* Too long for the buffer: "other", never a truncated name. */
    assert_int_equal(op_kube_path_resource("/api/v1/namespaces/a/configmaps", buf, 6, &coll), -1);
    assert_string_equal(buf, "other");
}

static void test_client_new(void **state)
{
    op_kube_config_t cfg = {0};
    char err[256];
    op_kube_t *k;

    assert_int_equal(op_kube_new(&cfg, NULL, &k, err, sizeof(err)), OP_KUBE_ERR_INVALID);
    assert_null(k);
    /* tls-server-name: the URL names it, CONNECT_TO maps it to the server. */
    assert_int_equal(
        op_kube_config_load_kubeconfig(data("kc-certdata.yaml"), NULL, &cfg, err, sizeof(err)),
        OP_KUBE_OK);
    assert_int_equal(op_kube_new(&cfg, NULL, &k, err, sizeof(err)), OP_KUBE_OK);
    assert_string_equal(k->base_url, "https://kubernetes.default.svc:443");
    assert_string_equal(k->connect_to->data, "kubernetes.default.svc:443:kube.example:443");
    op_kube_free(k);
    op_kube_free(NULL);
}

static void test_microtime(void **state)
{
    char buf[32];

    op_kube_format_microtime(buf, 1704164645, 123456);
    assert_string_equal(buf, "2024-01-02T03:04:05.123456Z");
}

/* -------------------------------------------------------------- backoff -- */

static void test_backoff_bounds(void **state)
{
    op_kube_backoff_t b;
    uint64_t nominal = 100, prev_seen[16];
    bool varied = false;

    op_kube_backoff_init(&b, 100, 10000, 42);
    for (int i = 0; i < 40; i++) {
        uint64_t d = op_kube_backoff_next(&b);

        assert_true(d >= nominal / 2);
        assert_true(d <= nominal);
        if (i < 16)
            prev_seen[i] = d;
        nominal = nominal * 2 > 10000 ? 10000 : nominal * 2;
    }
    /* Jitter: independent clients with different seeds do not line up. */
    for (int s = 1; s < 16 && !varied; s++) {
        op_kube_backoff_t o;

        op_kube_backoff_init(&o, 100, 10000, 42 + (uint64_t)s);
        for (int i = 0; i < 16; i++)
            varied |= op_kube_backoff_next(&o) != prev_seen[i];
    }
    assert_true(varied);
    op_kube_backoff_reset(&b);
    assert_true(op_kube_backoff_next(&b) <= 100);

    /* No overflow however long it runs, even with a huge max. */
    op_kube_backoff_init(&b, 3, UINT64_MAX, 0);
    for (int i = 0; i < 200; i++) {
        uint64_t d = op_kube_backoff_next(&b);

        assert_true(d >= 1);
        if (i > 100)
            assert_true(d >= UINT64_MAX / 2 - 1);
    }
    /* Degenerate arguments are made sane. */
    op_kube_backoff_init(&b, 0, 0, 7);
    assert_true(op_kube_backoff_next(&b) <= 1);
    op_kube_backoff_init(&b, 500, 10, 7);
    assert_true(op_kube_backoff_next(&b) <= 500);
}

static int setup(void **state)
{
    const char *src = getenv("WEIR_SOURCE_DIR");

    if (src)
        snprintf(data_dir, sizeof(data_dir), "%s/tests/data/kube", src);
    else if (!realpath("data/kube", data_dir))
        return -1;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubeconfig_token_and_contexts),
        cmocka_unit_test(test_kubeconfig_cert_data_and_files),
        cmocka_unit_test(test_kubeconfig_exec),
        cmocka_unit_test(test_kubeconfig_errors),
        cmocka_unit_test(test_in_cluster),
        cmocka_unit_test(test_token_file_rotation),
        cmocka_unit_test(test_exec_plugin_and_cache),
        cmocka_unit_test(test_exec_parse),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_path_resource),
        cmocka_unit_test(test_client_new),
        cmocka_unit_test(test_microtime),
        cmocka_unit_test(test_backoff_bounds),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
