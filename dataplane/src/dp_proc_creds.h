/* SPDX-License-Identifier: Apache-2.0 */
/* dp_proc_creds: the Kafka credentials the operator renders into a
 * Processor's dataplane container (WEIR_KAFKA_* from the bound Stream's
 * Secret), read once at start-up, checked, and applied to every librdkafka
 * client the processor makes. Pure: the environment comes through a
 * callback, so tests need no real environment. Design:
 * docs/internals/processor.md, "Kafka credentials". */
#ifndef DP_PROC_CREDS_H
#define DP_PROC_CREDS_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "wc_kafka_creds.h"

/** Environment variable names (operator/src/op_render.c writes them). */
#define DP_PROC_ENV_SECURITY_PROTOCOL "WEIR_KAFKA_SECURITY_PROTOCOL"
#define DP_PROC_ENV_SASL_MECHANISM "WEIR_KAFKA_SASL_MECHANISM"
#define DP_PROC_ENV_SASL_USERNAME "WEIR_KAFKA_SASL_USERNAME"
#define DP_PROC_ENV_SASL_PASSWORD "WEIR_KAFKA_SASL_PASSWORD"
#define DP_PROC_ENV_SSL_CA_PEM "WEIR_KAFKA_SSL_CA_PEM"

/** How many librdkafka properties a credentials set can hold. */
#define DP_PROC_CREDS_MAX WC_KAFKA_CREDS_MAX

/**
 * The credentials to apply (wc_kafka_creds_t: librdkafka property/value
 * pairs; `var` names the environment variable each came from, NULL for a
 * default). Values are borrowed from whatever the getter returned (for
 * getenv: the process environment, which Weir never modifies).
 */
typedef wc_kafka_creds_t dp_proc_creds_t;

/** A getenv-like lookup: the value of `name`, or NULL when unset. */
typedef const char *(*dp_proc_creds_get_fn)(const char *name, void *ctx);

/**
 * Reads the five WEIR_KAFKA_* variables through `get` and fills `cr`.
 * Unset or empty variables set nothing; with none set, cr->n is 0. The
 * rules and defaults are wc_kafka_creds_resolve's, the same the operator
 * applies to the credentials Secret (op_reconcile.c load_auth): a username
 * without WEIR_KAFKA_SECURITY_PROTOCOL means sasl_plaintext (sasl_ssl when
 * a CA is given), a CA alone ssl, no WEIR_KAFKA_SASL_MECHANISM PLAIN.
 * Returns 0, or -EINVAL with a message naming the variable in `err`: an
 * unknown security protocol or mechanism, a username without a password
 * (or the reverse), SASL settings with a protocol that does not use SASL,
 * a CA with one that does not use TLS, or a value librdkafka refuses.
 * The password's value never appears in `err`.
 */
int dp_proc_creds_from_env(dp_proc_creds_t *cr, dp_proc_creds_get_fn get, void *ctx, char *err,
                           size_t errlen);

/**
 * Sets every pair of `cr` on `conf`. Callers set the spec's own
 * `properties` afterwards, so those win (docs/internals/processor.md).
 * Returns 0 or -EINVAL (message in `err`, naming the variable, never a
 * secret value).
 */
int dp_proc_creds_apply(const dp_proc_creds_t *cr, rd_kafka_conf_t *conf, char *err, size_t errlen);

/**
 * True for librdkafka properties whose values are secrets (passwords, keys,
 * JAAS and OAuth configuration): error messages and logs print
 * "(redacted)" instead of their values.
 */
bool dp_proc_creds_sensitive(const char *key);

#endif
