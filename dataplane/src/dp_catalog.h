/* SPDX-License-Identifier: Apache-2.0 */
/* dp_catalog: the store's topic catalog. Topics are persisted one JSON file
 * each under <data_dir>/__topics/, and published to the worker threads as
 * immutable snapshots swapped by one atomic pointer (read-copy-update).
 * Retired snapshots are freed once every worker passed a quiescent point
 * (quiescent-state-based reclamation): readers take no lock, ever. */
#ifndef DP_CATALOG_H
#define DP_CATALOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_kbuf.h"

/** Longest topic name Kafka allows. */
#define DP_TOPIC_NAME_MAX 249
/** Most partitions one topic may have. */
#define DP_TOPIC_PARTITIONS_MAX 4096
/** Most explicit configs one topic may carry. */
#define DP_TOPIC_CONFIGS_MAX 16
/** Most reader threads (workers). */
#define DP_CATALOG_READERS_MAX 256

/** One explicit topic config (as given at creation). */
typedef struct dp_topic_config {
    char name[64];
    char value[64];
} dp_topic_config_t;

/** An immutable topic. Never modified once published. */
typedef struct dp_topic {
    char name[DP_TOPIC_NAME_MAX + 1];
    uint64_t id; /**< unique for the data dir's lifetime, never reused */
    int32_t partitions;
    int64_t retention_ms;    /**< -1: forever */
    int64_t retention_bytes; /**< -1: unbounded */
    uint64_t segment_bytes;
    int32_t config_count;
    dp_topic_config_t configs[DP_TOPIC_CONFIGS_MAX];
} dp_topic_t;

/** One published version of the catalog: topics sorted by name. */
typedef struct dp_catalog_snap {
    uint64_t version;
    uint32_t count;
    const dp_topic_t **topics;
    struct dp_catalog_snap *retired_next; /* private */
    dp_topic_t *dead;                     /* private: freed with this snapshot */
} dp_catalog_snap_t;

typedef struct dp_catalog dp_catalog_t;

/** Defaults applied to topics created without an explicit config. */
typedef struct dp_catalog_defaults {
    int64_t retention_ms;
    int64_t retention_bytes;
    uint64_t segment_bytes;
} dp_catalog_defaults_t;

/**
 * Loads every topic under <data_dir>/__topics/ (creating the directory).
 * Returns 0 or -errno with a message in err (a corrupt topic file fails the
 * open rather than silently dropping a topic).
 */
int dp_catalog_open(dp_catalog_t **out, const char *data_dir, const dp_catalog_defaults_t *defs,
                    char *err, size_t errlen);

/** Frees the catalog and every snapshot. No reader may be active. */
void dp_catalog_free(dp_catalog_t *cat);

/** Registers a reader thread; returns its slot for dp_catalog_quiesce. */
int dp_catalog_reader(dp_catalog_t *cat);

/**
 * The current snapshot (borrowed). Valid for the calling reader until its
 * next dp_catalog_quiesce: never keep topic pointers across loop turns.
 */
const dp_catalog_snap_t *dp_catalog_get(const dp_catalog_t *cat);

/** Marks reader `slot` quiescent: it holds no snapshot pointer. */
void dp_catalog_quiesce(dp_catalog_t *cat, int slot);

/** Frees retired snapshots no reader can still see. Writer side. */
void dp_catalog_reclaim(dp_catalog_t *cat);

/** Finds a topic by name in `snap`, or NULL. */
const dp_topic_t *dp_catalog_find(const dp_catalog_snap_t *snap, dp_kstr_t name);

/**
 * Checks a topic name as Kafka does: 1-249 of [a-zA-Z0-9._-], not "." or
 * "..". Returns 0 or -EINVAL.
 */
int dp_catalog_valid_name(dp_kstr_t name);

/**
 * Fills `t` for a new topic: name, partitions, the catalog defaults, then
 * each explicit config (retention.ms, retention.bytes, segment.bytes are
 * applied; cleanup.policy must be "delete"; other Kafka topic configs that
 * only matter to replication or brokers are recorded and ignored). Returns
 * 0, or -EINVAL with the offending config named in err.
 */
int dp_catalog_prepare(const dp_catalog_t *cat, dp_topic_t *t, dp_kstr_t name, int32_t partitions,
                       const dp_kstr_t *config_names, const dp_kstr_t *config_values, int32_t ncfg,
                       char *err, size_t errlen);

/**
 * Persists `t` (fsync'd file, then rename) and publishes a snapshot holding
 * it; t->id is assigned. Returns 0, -EEXIST, or -errno. Writer side.
 */
int dp_catalog_add(dp_catalog_t *cat, dp_topic_t *t);

/** Unpublishes and forgets topic `name`. Returns 0, -ENOENT or -errno. */
int dp_catalog_remove(dp_catalog_t *cat, dp_kstr_t name);

#endif
