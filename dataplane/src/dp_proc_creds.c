/* SPDX-License-Identifier: Apache-2.0 */
/* dp_proc_creds: WEIR_KAFKA_* credentials from the environment to
 * librdkafka properties (dp_proc_creds.h). Checks what librdkafka would
 * only notice later, or never (SASL settings on a plaintext protocol), so a
 * bad Secret fails start-up with the variable's name. Secrets never reach
 * an error message. */
#include "dp_proc_creds.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const protocols[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"};
/* librdkafka compares mechanism names case-sensitively. */
static const char *const mechanisms[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI",
                                         "OAUTHBEARER"};

/* The variable's value, or NULL when unset or empty. */
static const char *var(dp_proc_creds_get_fn get, void *ctx, const char *name)
{
    const char *v = get(name, ctx);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

static void add(dp_proc_creds_t *cr, const char *key, const char *value, const char *from)
{
    cr->key[cr->n] = key;
    cr->value[cr->n] = value;
    cr->var[cr->n] = from;
    cr->n++;
}

bool dp_proc_creds_sensitive(const char *key)
{
    return strstr(key, "password") != NULL || strstr(key, "secret") != NULL ||
           strstr(key, "jaas") != NULL || strcmp(key, "ssl.key.pem") == 0 ||
           strcmp(key, "ssl_key") == 0 || strcmp(key, "sasl.oauthbearer.config") == 0;
}

int dp_proc_creds_apply(const dp_proc_creds_t *cr, rd_kafka_conf_t *conf, char *err, size_t errlen)
{
    char why[256];

    for (unsigned i = 0; i < cr->n; i++) {
        if (rd_kafka_conf_set(conf, cr->key[i], cr->value[i], why, sizeof(why)) == RD_KAFKA_CONF_OK)
            continue;
        /* librdkafka's reason may quote the value: leave it out for secrets. */
        snprintf(err, errlen, "%s (librdkafka %s): %s", cr->var[i] ? cr->var[i] : "default",
                 cr->key[i], dp_proc_creds_sensitive(cr->key[i]) ? "value refused" : why);
        return -EINVAL;
    }
    return 0;
}

int dp_proc_creds_from_env(dp_proc_creds_t *cr, dp_proc_creds_get_fn get, void *ctx, char *err,
                           size_t errlen)
{
    const char *proto = var(get, ctx, DP_PROC_ENV_SECURITY_PROTOCOL);
    const char *mech = var(get, ctx, DP_PROC_ENV_SASL_MECHANISM);
    const char *user = var(get, ctx, DP_PROC_ENV_SASL_USERNAME);
    const char *pass = var(get, ctx, DP_PROC_ENV_SASL_PASSWORD);
    const char *ca = var(get, ctx, DP_PROC_ENV_SSL_CA_PEM);
    const char *proto_var = DP_PROC_ENV_SECURITY_PROTOCOL;
    bool known = false, sasl, tls;
    rd_kafka_conf_t *scratch = NULL;
    int rc = 0;

    memset(cr, 0, sizeof(*cr));
    if (proto != NULL) {
        for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
            known = known || strcasecmp(proto, protocols[i]) == 0;
        if (!known) {
            snprintf(err, errlen,
                     "%s=\"%.64s\" is not a security protocol (plaintext, ssl, sasl_plaintext, "
                     "sasl_ssl)",
                     DP_PROC_ENV_SECURITY_PROTOCOL, proto);
            rc = -EINVAL;
            goto out;
        }
    }
    if (mech != NULL) {
        known = false;
        for (size_t i = 0; i < sizeof(mechanisms) / sizeof(mechanisms[0]); i++)
            known = known || strcmp(mech, mechanisms[i]) == 0;
        if (!known) {
            snprintf(err, errlen,
                     "%s=\"%.64s\" is not a SASL mechanism (PLAIN, SCRAM-SHA-256, "
                     "SCRAM-SHA-512, GSSAPI, OAUTHBEARER)",
                     DP_PROC_ENV_SASL_MECHANISM, mech);
            rc = -EINVAL;
            goto out;
        }
    }
    if ((user == NULL) != (pass == NULL)) {
        snprintf(err, errlen, "%s is set but %s is not (both or neither)",
                 user ? DP_PROC_ENV_SASL_USERNAME : DP_PROC_ENV_SASL_PASSWORD,
                 user ? DP_PROC_ENV_SASL_PASSWORD : DP_PROC_ENV_SASL_USERNAME);
        rc = -EINVAL;
        goto out;
    }
    if (proto == NULL && (user != NULL || mech != NULL)) {
        proto = ca != NULL ? "sasl_ssl" : "sasl_plaintext";
        proto_var = NULL;
    } else if (proto == NULL && ca != NULL) {
        proto = "ssl";
        proto_var = NULL;
    }
    if (proto == NULL)
        goto out; /* nothing set: librdkafka's defaults (plaintext) */
    sasl = strncasecmp(proto, "sasl_", 5) == 0;
    tls = strcasecmp(proto, "ssl") == 0 || strcasecmp(proto, "sasl_ssl") == 0;
    if (!sasl && (user != NULL || mech != NULL)) {
        snprintf(err, errlen, "%s is set but %s=%s does not use SASL (sasl_plaintext or sasl_ssl)",
                 user ? DP_PROC_ENV_SASL_USERNAME : DP_PROC_ENV_SASL_MECHANISM,
                 DP_PROC_ENV_SECURITY_PROTOCOL, proto);
        rc = -EINVAL;
        goto out;
    }
    if (ca != NULL && !tls) {
        snprintf(err, errlen, "%s is set but %s=%s does not use TLS (ssl or sasl_ssl)",
                 DP_PROC_ENV_SSL_CA_PEM, DP_PROC_ENV_SECURITY_PROTOCOL, proto);
        rc = -EINVAL;
        goto out;
    }
    if (sasl && mech == NULL)
        mech = "PLAIN";
    /* GSSAPI and OAUTHBEARER authenticate without a password here. */
    if (sasl && user == NULL && (strcmp(mech, "PLAIN") == 0 || strncmp(mech, "SCRAM-", 6) == 0)) {
        snprintf(err, errlen, "%s=%s with SASL mechanism %s needs %s and %s",
                 DP_PROC_ENV_SECURITY_PROTOCOL, proto, mech, DP_PROC_ENV_SASL_USERNAME,
                 DP_PROC_ENV_SASL_PASSWORD);
        rc = -EINVAL;
        goto out;
    }
    add(cr, "security.protocol", proto, proto_var);
    if (sasl)
        add(cr, "sasl.mechanisms", mech,
            var(get, ctx, DP_PROC_ENV_SASL_MECHANISM) ? DP_PROC_ENV_SASL_MECHANISM : NULL);
    if (user != NULL) {
        add(cr, "sasl.username", user, DP_PROC_ENV_SASL_USERNAME);
        add(cr, "sasl.password", pass, DP_PROC_ENV_SASL_PASSWORD);
    }
    if (ca != NULL)
        add(cr, "ssl.ca.pem", ca, DP_PROC_ENV_SSL_CA_PEM);
    /* What librdkafka itself refuses (a build without SSL or SASL), now,
     * rather than at the first client. */
    scratch = rd_kafka_conf_new();
    if (scratch == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    rc = dp_proc_creds_apply(cr, scratch, err, errlen);
out:
    if (scratch != NULL)
        rd_kafka_conf_destroy(scratch);
    if (rc != 0)
        memset(cr, 0, sizeof(*cr));
    return rc;
}
