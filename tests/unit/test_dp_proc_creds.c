/* SPDX-License-Identifier: Apache-2.0 */
/* Description: dp_proc_creds: WEIR_KAFKA_* environment to librdkafka
 * properties (the same rules and defaults as the operator's load_auth, unset and empty
 * variables), every bad-value path with the variable named and the
 * password never in the message, and the properties read back from a real
 * rd_kafka_conf_t. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dp_proc_creds.h"

#define SECRET "s3cr3t-Pa55"

/* A NULL-terminated name=value list standing in for the environment. */
static const char *get(const char *name, void *ctx)
{
    const char *const *env = ctx;
    size_t len = strlen(name);

    for (; *env != NULL; env++)
        if (strncmp(*env, name, len) == 0 && (*env)[len] == '=')
            return *env + len + 1;
    return NULL;
}

/* The value cr holds for librdkafka property `key`, or NULL. */
static const char *prop(const dp_proc_creds_t *cr, const char *key)
{
    for (unsigned i = 0; i < cr->n; i++)
        if (strcmp(cr->key[i], key) == 0)
            return cr->value[i];
    return NULL;
}

static const char *from(const dp_proc_creds_t *cr, const char *key)
{
    for (unsigned i = 0; i < cr->n; i++)
        if (strcmp(cr->key[i], key) == 0)
            return cr->var[i] ? cr->var[i] : "default";
    return NULL;
}

/* The value librdkafka stores for `key` in conf. */
static void assert_conf(rd_kafka_conf_t *conf, const char *key, const char *want)
{
    char buf[512];
    size_t len = sizeof(buf);

    assert_int_equal(rd_kafka_conf_get(conf, key, buf, &len), RD_KAFKA_CONF_OK);
    assert_string_equal(buf, want);
}

static void test_nothing_set(void **state)
{
    const char *env[] = {"PATH=/bin", "WEIR_KAFKA_SASL_USERNAME=", "WEIR_KAFKA_SSL_CA_PEM=", NULL};
    dp_proc_creds_t cr;
    char err[256] = "";

    (void)state;
    assert_int_equal(dp_proc_creds_from_env(&cr, get, env, err, sizeof(err)), 0);
    assert_int_equal(cr.n, 0);
}

static void test_sasl_plain_all_set(void **state)
{
    const char *env[] = {
        "WEIR_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT", "WEIR_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
        "WEIR_KAFKA_SASL_USERNAME=alice", "WEIR_KAFKA_SASL_PASSWORD=" SECRET, NULL};
    dp_proc_creds_t cr;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256] = "";

    (void)state;
    assert_int_equal(dp_proc_creds_from_env(&cr, get, env, err, sizeof(err)), 0);
    assert_int_equal(cr.n, 4);
    assert_string_equal(prop(&cr, "security.protocol"), "SASL_PLAINTEXT");
    assert_string_equal(from(&cr, "security.protocol"), "WEIR_KAFKA_SECURITY_PROTOCOL");
    assert_string_equal(prop(&cr, "sasl.mechanisms"), "SCRAM-SHA-512");
    assert_string_equal(from(&cr, "sasl.mechanisms"), "WEIR_KAFKA_SASL_MECHANISM");
    assert_string_equal(prop(&cr, "sasl.username"), "alice");
    assert_string_equal(prop(&cr, "sasl.password"), SECRET);
    assert_null(prop(&cr, "ssl.ca.pem"));

    assert_int_equal(dp_proc_creds_apply(&cr, conf, err, sizeof(err)), 0);
    assert_conf(conf, "security.protocol", "sasl_plaintext");
    assert_conf(conf, "sasl.mechanisms", "SCRAM-SHA-512");
    assert_conf(conf, "sasl.username", "alice");
    assert_conf(conf, "sasl.password", SECRET);
    /* Set afterwards (the spec's own property), a key overrides the env's. */
    assert_int_equal(rd_kafka_conf_set(conf, "sasl.mechanism", "PLAIN", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    assert_conf(conf, "sasl.mechanisms", "PLAIN");
    rd_kafka_conf_destroy(conf);
}

/* The operator's load_auth (op_reconcile.c) calls wc_kafka_creds_resolve
 * with the Secret's keys (wc_kafka_creds_secret_keys); the processor the
 * same function with the WEIR_KAFKA_* values op_render.c maps those keys
 * to. Every case must come out the same both ways: same pairs, or both
 * refused (the operator with reason InvalidCredentials). */
typedef struct same_case {
    const char *in[WC_KCRED_N]; /* Secret values by input */
    int rc;
    const char *proto, *mech; /* expected security.protocol, sasl.mechanisms */
    unsigned n;
} same_case_t;

static void test_defaults_like_operator(void **state)
{
    static const same_case_t cases[] = {
        /* username and password only: sasl_plaintext and PLAIN */
        {{[WC_KCRED_USERNAME] = "bob", [WC_KCRED_PASSWORD] = SECRET},
         0,
         "sasl_plaintext",
         "PLAIN",
         4},
        /* with a CA: sasl_ssl */
        {{[WC_KCRED_USERNAME] = "bob", [WC_KCRED_PASSWORD] = SECRET, [WC_KCRED_CA_PEM] = "PEM"},
         0,
         "sasl_ssl",
         "PLAIN",
         5},
        /* a CA alone: ssl (the operator used to stay on plaintext) */
        {{[WC_KCRED_CA_PEM] = "PEM"}, 0, "ssl", NULL, 2},
        /* a username on a protocol without SASL: refused (the operator
         * used to accept it, librdkafka ignoring the username) */
        {{[WC_KCRED_PROTOCOL] = "ssl", [WC_KCRED_USERNAME] = "bob", [WC_KCRED_PASSWORD] = SECRET},
         -EINVAL,
         NULL,
         NULL,
         0},
        {{[WC_KCRED_PROTOCOL] = "plaintext",
          [WC_KCRED_USERNAME] = "bob",
          [WC_KCRED_PASSWORD] = SECRET},
         -EINVAL,
         NULL,
         NULL,
         0},
        {{[WC_KCRED_PROTOCOL] = "plaintext"}, 0, "plaintext", NULL, 1},
        {{[WC_KCRED_USERNAME] = "bob"}, -EINVAL, NULL, NULL, 0},
    };
    static const char *const envname[WC_KCRED_N] = {
        DP_PROC_ENV_SECURITY_PROTOCOL, DP_PROC_ENV_SASL_MECHANISM, DP_PROC_ENV_SASL_USERNAME,
        DP_PROC_ENV_SASL_PASSWORD, DP_PROC_ENV_SSL_CA_PEM};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const same_case_t *c = &cases[i];
        char envbuf[WC_KCRED_N][128], err[256] = "", operr[256] = "";
        const char *env[WC_KCRED_N + 1] = {NULL};
        unsigned ne = 0;
        dp_proc_creds_t cr;
        wc_kafka_creds_t op;
        int oprc;

        for (int k = 0; k < WC_KCRED_N; k++)
            if (c->in[k] != NULL) {
                snprintf(envbuf[k], sizeof(envbuf[k]), "%s=%s", envname[k], c->in[k]);
                env[ne++] = envbuf[k];
            }
        oprc = wc_kafka_creds_resolve(&op, c->in, wc_kafka_creds_secret_keys, operr, sizeof(operr));
        assert_int_equal(dp_proc_creds_from_env(&cr, get, env, err, sizeof(err)), c->rc);
        if (oprc != c->rc)
            fail_msg("case %zu: operator %d (%s), processor %d", i, oprc, operr, c->rc);
        if (c->rc != 0) {
            /* The operator's message names the Secret's keys. */
            assert_non_null(strstr(operr, "username"));
            assert_null(strstr(operr, "WEIR_KAFKA_"));
            continue;
        }
        assert_int_equal(cr.n, c->n);
        assert_int_equal(op.n, c->n);
        for (unsigned k = 0; k < cr.n; k++) {
            assert_string_equal(cr.key[k], op.key[k]);
            assert_string_equal(cr.value[k], op.value[k]);
        }
        assert_string_equal(prop(&cr, "security.protocol"), c->proto);
        if (c->mech != NULL)
            assert_string_equal(prop(&cr, "sasl.mechanisms"), c->mech);
        else
            assert_null(prop(&cr, "sasl.mechanisms"));
        assert_string_equal(from(&cr, "security.protocol"),
                            c->in[WC_KCRED_PROTOCOL] ? DP_PROC_ENV_SECURITY_PROTOCOL : "default");
        assert_string_equal(wc_kafka_creds_get(&op, "security.protocol"), c->proto);
    }
}

/* Each case: the environment, and words the error must contain. */
typedef struct bad_case {
    const char *env[6];
    const char *want[3];
} bad_case_t;

static void test_bad_values(void **state)
{
    static const bad_case_t cases[] = {
        {{"WEIR_KAFKA_SECURITY_PROTOCOL=sasl_tls", "WEIR_KAFKA_SASL_USERNAME=u",
          "WEIR_KAFKA_SASL_PASSWORD=" SECRET, NULL},
         {"WEIR_KAFKA_SECURITY_PROTOCOL", "sasl_tls", "not a security protocol"}},
        {{"WEIR_KAFKA_SASL_MECHANISM=plain", "WEIR_KAFKA_SASL_USERNAME=u",
          "WEIR_KAFKA_SASL_PASSWORD=" SECRET, NULL},
         {"WEIR_KAFKA_SASL_MECHANISM", "\"plain\"", "not a SASL mechanism"}},
        {{"WEIR_KAFKA_SASL_USERNAME=u", NULL},
         {"WEIR_KAFKA_SASL_USERNAME is set", "WEIR_KAFKA_SASL_PASSWORD is not", NULL}},
        {{"WEIR_KAFKA_SASL_PASSWORD=" SECRET, NULL},
         {"WEIR_KAFKA_SASL_PASSWORD is set", "WEIR_KAFKA_SASL_USERNAME is not", NULL}},
        {{"WEIR_KAFKA_SECURITY_PROTOCOL=plaintext", "WEIR_KAFKA_SASL_USERNAME=u",
          "WEIR_KAFKA_SASL_PASSWORD=" SECRET, NULL},
         {"WEIR_KAFKA_SASL_USERNAME", "plaintext does not use SASL", NULL}},
        {{"WEIR_KAFKA_SECURITY_PROTOCOL=ssl", "WEIR_KAFKA_SASL_MECHANISM=PLAIN", NULL},
         {"WEIR_KAFKA_SASL_MECHANISM", "ssl does not use SASL", NULL}},
        {{"WEIR_KAFKA_SECURITY_PROTOCOL=sasl_plaintext", "WEIR_KAFKA_SSL_CA_PEM=x",
          "WEIR_KAFKA_SASL_USERNAME=u", "WEIR_KAFKA_SASL_PASSWORD=" SECRET, NULL},
         {"WEIR_KAFKA_SSL_CA_PEM", "does not use TLS", NULL}},
        {{"WEIR_KAFKA_SECURITY_PROTOCOL=sasl_ssl", NULL},
         {"needs WEIR_KAFKA_SASL_USERNAME", "WEIR_KAFKA_SASL_PASSWORD", "PLAIN"}},
    };
    const char *env_good[] = {"WEIR_KAFKA_SASL_USERNAME=u", "WEIR_KAFKA_SASL_PASSWORD=" SECRET,
                              NULL};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dp_proc_creds_t cr;
        char err[256] = "";

        /* A failed call leaves nothing to apply, even after a good one. */
        assert_int_equal(dp_proc_creds_from_env(&cr, get, (void *)env_good, err, sizeof(err)), 0);
        assert_int_not_equal(cr.n, 0);
        assert_int_equal(dp_proc_creds_from_env(&cr, get, (void *)cases[i].env, err, sizeof(err)),
                         -EINVAL);
        assert_int_equal(cr.n, 0);
        for (size_t w = 0; w < 3 && cases[i].want[w] != NULL; w++)
            if (strstr(err, cases[i].want[w]) == NULL)
                fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].want[w]);
        if (strstr(err, SECRET) != NULL)
            fail_msg("case %zu: the password is in \"%s\"", i, err);
    }
}

/* A value librdkafka itself refuses (here: a property name it does not
 * know, standing in for a build without SASL) names the variable, and for
 * a secret neither the value nor librdkafka's reason (which for other
 * properties quotes the value, as the second half shows). */
static void test_apply_refused(void **state)
{
    dp_proc_creds_t cr = {
        .key = {"sasl.password.nonexistent", "security.protocol"},
        .value = {SECRET, "bogus"},
        .var = {"WEIR_KAFKA_SASL_PASSWORD", "WEIR_KAFKA_SECURITY_PROTOCOL"},
        .n = 2,
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256] = "";

    (void)state;
    assert_int_equal(dp_proc_creds_apply(&cr, conf, err, sizeof(err)), -EINVAL);
    assert_string_equal(err,
                        "WEIR_KAFKA_SASL_PASSWORD (librdkafka sasl.password.nonexistent): value "
                        "refused");
    cr.key[0] = cr.key[1];
    cr.value[0] = cr.value[1];
    cr.var[0] = cr.var[1];
    cr.n = 1;
    assert_int_equal(dp_proc_creds_apply(&cr, conf, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "WEIR_KAFKA_SECURITY_PROTOCOL"));
    assert_non_null(strstr(err, "security.protocol"));
    /* Not a secret: librdkafka's reason, value and all, is kept. */
    assert_non_null(strstr(err, "bogus"));
    rd_kafka_conf_destroy(conf);
}

static void test_sensitive(void **state)
{
    (void)state;
    assert_true(dp_proc_creds_sensitive("sasl.password"));
    assert_true(dp_proc_creds_sensitive("ssl.key.password"));
    assert_true(dp_proc_creds_sensitive("ssl.keystore.password"));
    assert_true(dp_proc_creds_sensitive("sasl.oauthbearer.client.secret"));
    assert_true(dp_proc_creds_sensitive("sasl.oauthbearer.config"));
    assert_true(dp_proc_creds_sensitive("ssl.key.pem"));
    assert_true(dp_proc_creds_sensitive("sasl.jaas.config"));
    assert_false(dp_proc_creds_sensitive("sasl.username"));
    assert_false(dp_proc_creds_sensitive("security.protocol"));
    assert_false(dp_proc_creds_sensitive("bootstrap.servers"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_set),
        cmocka_unit_test(test_sasl_plain_all_set),
        cmocka_unit_test(test_defaults_like_operator),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_apply_refused),
        cmocka_unit_test(test_sensitive),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
