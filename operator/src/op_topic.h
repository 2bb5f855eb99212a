/* SPDX-License-Identifier: Apache-2.0 */
/* op_topic: topic administration over the Kafka protocol (librdkafka's admin
 * API: CreateTopics, DeleteTopics), for Streams on the Weir store or on a
 * Kafka cluster, and a bounded TCP reachability probe for bring-your-own
 * brokers. Design: docs/internals/operator.md. */
#ifndef OP_TOPIC_H
#define OP_TOPIC_H

#include <stddef.h>

/** Client credentials for the admin connection (from a ClusterStream's
 * credentials Secret). NULL members are left at librdkafka's defaults. */
typedef struct op_topic_auth {
    const char *security_protocol; /* plaintext, ssl, sasl_plaintext, sasl_ssl */
    const char *sasl_mechanism;    /* PLAIN (default with a username), SCRAM-SHA-256, ... */
    const char *username, *password;
    const char *ca_pem; /* CA certificate(s), PEM */
} op_topic_auth_t;

/**
 * Creates `topic` with `partitions` partitions (replication factor: the
 * broker's default) on the cluster at `bootstrap` ("host:port[,...]"),
 * authenticated with `auth` (NULL: none).
 * An existing topic counts as success (*existed set to 1, else 0; existed may
 * be NULL). Returns 0, or -EIO/-ETIMEDOUT with
 * the detail in `err`.
 */
int op_topic_create(const char *bootstrap, const op_topic_auth_t *auth, const char *topic,
                    int partitions, int timeout_ms, int *existed, char *err, size_t errlen);

/** Deletes `topic`; an unknown topic counts as success. Same returns. */
int op_topic_delete(const char *bootstrap, const op_topic_auth_t *auth, const char *topic,
                    int timeout_ms, char *err, size_t errlen);

/**
 * Tries a TCP connection to `host`:`port` within `timeout_ms` (every address
 * the name resolves to, in order). Returns 0 when one connects, else -errno
 * with the detail in `err`.
 */
int op_topic_probe_tcp(const char *host, int port, int timeout_ms, char *err, size_t errlen);

#endif
