/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_kafka: the librdkafka plumbing weirctl's commands share: the default
 * bootstrap, client handles, waiting for a cluster, topic admin (create,
 * delete, list) through the Admin API. Works against the Weir store and
 * any Kafka cluster. */
#ifndef WCTL_KAFKA_H
#define WCTL_KAFKA_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>

/** The local store's default port (weirctl's range is 20000-20099). */
#define WCTL_DEFAULT_STORE_PORT 20092
/** Default state directory of `weirctl run`. */
#define WCTL_DEFAULT_STATE_DIR ".weir"

/**
 * The bootstrap to use when --bootstrap is not given: $WEIR_BOOTSTRAP, else
 * the "bootstrap" of STATE_DIR/run.json (a `weirctl run` in progress; the
 * state dir is $WEIR_STATE_DIR or .weir), else 127.0.0.1:20092. Writes
 * into `buf`, returns it.
 */
const char *wctl_kafka_default_bootstrap(char *buf, size_t len);

/** A producing command's delivery reports, counted by wctl_kafka_new's client. */
typedef struct wctl_kafka_delivery {
    const char *cmd;     /**< "produce", "generate": names the command in failure lines */
    long long delivered; /**< records the cluster acknowledged */
    long long failed;    /**< records it refused (the first 5 are printed to stderr) */
} wctl_kafka_delivery_t;

/**
 * A new client (RD_KAFKA_PRODUCER or RD_KAFKA_CONSUMER) for `bootstrap`,
 * with `props` ("key=value" strings, NULL-terminated, may be NULL) applied
 * after weirctl's settings. Librdkafka's logs are quiet unless
 * WEIR_LOG_LEVEL=debug. With `delivery` (a producer's; may be NULL), delivery
 * reports are counted into it while the client is polled. NULL with the
 * reason in `err`.
 */
rd_kafka_t *wctl_kafka_new(rd_kafka_type_t type, const char *bootstrap, const char *const *props,
                           wctl_kafka_delivery_t *delivery, char *err, size_t errlen);

/**
 * Waits until `rk`'s cluster answers a Metadata request, for up to
 * `timeout_ms`. Returns 0 or -ETIMEDOUT.
 */
int wctl_kafka_wait_ready(rd_kafka_t *rk, int timeout_ms);

/**
 * Partition count of `topic`, waiting up to `timeout_ms` for it to exist.
 * Returns the count (> 0), -ENOENT (still missing) or -ETIMEDOUT.
 */
int wctl_kafka_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms);

/**
 * Creates topics `topics` ([{"topic", "partitions", "config"?: {k: v}}],
 * borrowed). A topic that already exists is fine (its partition count is
 * left alone; a smaller one than asked is reported in `err` and -EEXIST
 * returned after the others were created). Returns 0 or -errno with detail.
 */
int wctl_kafka_create_topics(rd_kafka_t *rk, const json_t *topics, int timeout_ms, char *err,
                             size_t errlen);

/** Deletes `n` topics. Returns 0 or -errno with the broker's message in `err`. */
int wctl_kafka_delete_topics(rd_kafka_t *rk, const char *const *names, size_t n, int timeout_ms,
                             char *err, size_t errlen);

/**
 * The cluster's topics as a new JSON array [{"topic", "partitions"}], sorted
 * by name, internal ones (starting with "__") left out. NULL on error.
 */
json_t *wctl_kafka_list_topics(rd_kafka_t *rk, int timeout_ms, char *err, size_t errlen);

#endif
