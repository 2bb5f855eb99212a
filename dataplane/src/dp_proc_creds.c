/* SPDX-License-Identifier: Apache-2.0 */
/* dp_proc_creds: WEIR_KAFKA_* credentials from the environment to
 * librdkafka properties (dp_proc_creds.h), by the rules the operator uses
 * too (wc_kafka_creds), plus what librdkafka itself refuses, so a bad
 * Secret fails start-up with the variable's name. Secrets never reach an
 * error message. */
#include "dp_proc_creds.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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
    static const char *const names[WC_KCRED_N] = {
        [WC_KCRED_PROTOCOL] = DP_PROC_ENV_SECURITY_PROTOCOL,
        [WC_KCRED_MECHANISM] = DP_PROC_ENV_SASL_MECHANISM,
        [WC_KCRED_USERNAME] = DP_PROC_ENV_SASL_USERNAME,
        [WC_KCRED_PASSWORD] = DP_PROC_ENV_SASL_PASSWORD,
        [WC_KCRED_CA_PEM] = DP_PROC_ENV_SSL_CA_PEM,
    };
    const char *in[WC_KCRED_N];
    rd_kafka_conf_t *scratch = NULL;
    int rc;

    for (int i = 0; i < WC_KCRED_N; i++)
        in[i] = get(names[i], ctx);
    rc = wc_kafka_creds_resolve(cr, in, names, err, errlen);
    if (rc != 0 || cr->n == 0)
        goto out;
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
