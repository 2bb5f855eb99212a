/* SPDX-License-Identifier: Apache-2.0 */
/* wc_kafka_creds: the credentials rules (wc_kafka_creds.h). Checks what
 * librdkafka would only notice later, or never (SASL settings on a
 * plaintext protocol, where it silently ignores them), so a bad Secret is
 * refused with the input's name. Secrets never reach an error message. */
#include "wc_kafka_creds.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const protocols[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"};
/* librdkafka compares mechanism names case-sensitively. */
static const char *const mechanisms[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI",
                                         "OAUTHBEARER"};

const char *const wc_kafka_creds_secret_keys[WC_KCRED_N] = {
    [WC_KCRED_PROTOCOL] = "security.protocol",
    [WC_KCRED_MECHANISM] = "sasl.mechanism",
    [WC_KCRED_USERNAME] = "username",
    [WC_KCRED_PASSWORD] = "password",
    [WC_KCRED_CA_PEM] = "ca.crt",
};

/* The input's value, or NULL when unset or empty. */
static const char *val(const char *const in[WC_KCRED_N], int i)
{
    return in[i] != NULL && in[i][0] != '\0' ? in[i] : NULL;
}

static void add(wc_kafka_creds_t *cr, const char *key, const char *value, const char *from)
{
    cr->key[cr->n] = key;
    cr->value[cr->n] = value;
    cr->var[cr->n] = from;
    cr->n++;
}

const char *wc_kafka_creds_get(const wc_kafka_creds_t *cr, const char *key)
{
    for (unsigned i = 0; i < cr->n; i++)
        if (strcmp(cr->key[i], key) == 0)
            return cr->value[i];
    return NULL;
}

int wc_kafka_creds_resolve(wc_kafka_creds_t *cr, const char *const in[WC_KCRED_N],
                           const char *const name[WC_KCRED_N], char *err, size_t errlen)
{
    const char *proto = val(in, WC_KCRED_PROTOCOL);
    const char *mech = val(in, WC_KCRED_MECHANISM);
    const char *user = val(in, WC_KCRED_USERNAME);
    const char *pass = val(in, WC_KCRED_PASSWORD);
    const char *ca = val(in, WC_KCRED_CA_PEM);
    const char *proto_var = name[WC_KCRED_PROTOCOL];
    bool known = false, sasl, tls;
    int rc = 0;

    memset(cr, 0, sizeof(*cr));
    if (proto != NULL) {
        for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
            known = known || strcasecmp(proto, protocols[i]) == 0;
        if (!known) {
            snprintf(err, errlen,
                     "%s=\"%.64s\" is not a security protocol (plaintext, ssl, sasl_plaintext, "
                     "sasl_ssl)",
                     name[WC_KCRED_PROTOCOL], proto);
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
                     name[WC_KCRED_MECHANISM], mech);
            rc = -EINVAL;
            goto out;
        }
    }
    if ((user == NULL) != (pass == NULL)) {
        snprintf(err, errlen, "%s is set but %s is not (both or neither)",
                 user ? name[WC_KCRED_USERNAME] : name[WC_KCRED_PASSWORD],
                 user ? name[WC_KCRED_PASSWORD] : name[WC_KCRED_USERNAME]);
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
                 user ? name[WC_KCRED_USERNAME] : name[WC_KCRED_MECHANISM], name[WC_KCRED_PROTOCOL],
                 proto);
        rc = -EINVAL;
        goto out;
    }
    if (ca != NULL && !tls) {
        snprintf(err, errlen, "%s is set but %s=%s does not use TLS (ssl or sasl_ssl)",
                 name[WC_KCRED_CA_PEM], name[WC_KCRED_PROTOCOL], proto);
        rc = -EINVAL;
        goto out;
    }
    if (sasl && mech == NULL)
        mech = "PLAIN";
    /* GSSAPI and OAUTHBEARER authenticate without a password here. */
    if (sasl && user == NULL && (strcmp(mech, "PLAIN") == 0 || strncmp(mech, "SCRAM-", 6) == 0)) {
        snprintf(err, errlen, "%s=%s with SASL mechanism %s needs %s and %s",
                 name[WC_KCRED_PROTOCOL], proto, mech, name[WC_KCRED_USERNAME],
                 name[WC_KCRED_PASSWORD]);
        rc = -EINVAL;
        goto out;
    }
    add(cr, "security.protocol", proto, proto_var);
    if (sasl)
        add(cr, "sasl.mechanisms", mech,
            val(in, WC_KCRED_MECHANISM) ? name[WC_KCRED_MECHANISM] : NULL);
    if (user != NULL) {
        add(cr, "sasl.username", user, name[WC_KCRED_USERNAME]);
        add(cr, "sasl.password", pass, name[WC_KCRED_PASSWORD]);
    }
    if (ca != NULL)
        add(cr, "ssl.ca.pem", ca, name[WC_KCRED_CA_PEM]);
out:
    if (rc != 0)
        memset(cr, 0, sizeof(*cr));
    return rc;
}
