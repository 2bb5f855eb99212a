/* SPDX-License-Identifier: Apache-2.0 */
/* wc_kafka_creds: the rules for Kafka client credentials (security
 * protocol, SASL mechanism, username/password, CA), shared by the
 * processor (WEIR_KAFKA_* from the environment, dp_proc_creds) and the
 * operator's admin client (the ClusterStream's credentials Secret,
 * op_reconcile), so a Secret one accepts the other accepts too, with the
 * same defaults. Pure: no librdkafka, no environment. Design:
 * docs/internals/processor.md, "Kafka credentials". */
#ifndef WC_KAFKA_CREDS_H
#define WC_KAFKA_CREDS_H

#include <stddef.h>

/** The inputs, in this order, in the arrays wc_kafka_creds_resolve takes. */
enum wc_kafka_creds_in {
    WC_KCRED_PROTOCOL,  /**< security protocol */
    WC_KCRED_MECHANISM, /**< SASL mechanism */
    WC_KCRED_USERNAME,  /**< SASL username */
    WC_KCRED_PASSWORD,  /**< SASL password (a secret) */
    WC_KCRED_CA_PEM,    /**< CA certificate(s), PEM */
    WC_KCRED_N          /**< number of inputs */
};

/** The credentials Secret's key for each input (security.protocol,
 * sasl.mechanism, username, password, ca.crt), as the operator reads them. */
extern const char *const wc_kafka_creds_secret_keys[WC_KCRED_N];

/** How many librdkafka properties a credentials set can hold. */
#define WC_KAFKA_CREDS_MAX 5

/**
 * The credentials to apply, as librdkafka property/value pairs in a fixed
 * order (security.protocol, sasl.mechanisms, sasl.username, sasl.password,
 * ssl.ca.pem; absent ones left out). Values are borrowed from the inputs.
 */
typedef struct wc_kafka_creds {
    const char *key[WC_KAFKA_CREDS_MAX];   /**< librdkafka property name */
    const char *value[WC_KAFKA_CREDS_MAX]; /**< its value (borrowed) */
    const char *var[WC_KAFKA_CREDS_MAX]; /**< the input's name it came from, or NULL (a default) */
    unsigned n;                          /**< pairs in use */
} wc_kafka_creds_t;

/**
 * Checks the inputs `in` (indexed by enum wc_kafka_creds_in; NULL or ""
 * is unset) and fills `cr`. `name` gives each input's name for messages
 * (environment variable or Secret key). With nothing set, cr->n is 0.
 * Defaults: a username or mechanism without a protocol means
 * sasl_plaintext (sasl_ssl with a CA), a CA alone means ssl, a SASL
 * protocol without a mechanism means PLAIN.
 * Returns 0, or -EINVAL with a message naming the input in `err`: an
 * unknown security protocol or mechanism, a username without a password
 * (or the reverse), SASL settings with a protocol that does not use SASL,
 * a CA with one that does not use TLS, PLAIN or SCRAM without a username.
 * The password's value never appears in `err`.
 */
int wc_kafka_creds_resolve(wc_kafka_creds_t *cr, const char *const in[WC_KCRED_N],
                           const char *const name[WC_KCRED_N], char *err, size_t errlen);

/** The librdkafka value of property `key` in `cr`, or NULL. */
const char *wc_kafka_creds_get(const wc_kafka_creds_t *cr, const char *key);

#endif
