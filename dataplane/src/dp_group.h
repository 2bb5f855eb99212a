/* SPDX-License-Identifier: Apache-2.0 */
/* dp_group: the store's classic consumer-group coordinator (JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch) for the groups
 * one worker owns. Membership lives in memory; committed offsets are made
 * durable in an internal dp_log partition. See docs/internals/store-groups.md. */
#ifndef DP_GROUP_H
#define DP_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_kproto.h"
#include "dp_ring.h"

/** Longest group id accepted (Kafka has no limit; longer ids get INVALID_GROUP_ID). */
#define DP_GROUP_ID_BYTES_MAX 255
/** Longest member id: generated ids are `<client_id truncated>-<uuid>`. */
#define DP_GROUP_MEMBER_ID_BYTES_MAX 128
/** Most protocols (assignors) one JoinGroup may list. */
#define DP_GROUP_PROTOCOLS_MAX 16
/** Longest protocol type or protocol name. */
#define DP_GROUP_PROTOCOL_NAME_BYTES_MAX 255
/** Longest topic name in an OffsetCommit (Kafka's own limit). */
#define DP_GROUP_TOPIC_BYTES_MAX 249

/**
 * Optional topic check for OffsetCommit: return false to answer
 * UNKNOWN_TOPIC_OR_PARTITION for that partition. Runs on the owning thread.
 */
typedef bool (*dp_group_partition_check_fn)(void *ctx, dp_kstr_t topic, int32_t partition);

/** Coordinator limits and policies; see dp_group_config_defaults. */
typedef struct dp_group_config {
    uint32_t groups_max;                 /**< groups held at once (1024) */
    uint32_t members_max;                /**< members + pending members per group (256) */
    uint32_t members_total_max;          /**< member slots over all groups (16384) */
    uint32_t initial_rebalance_delay_ms; /**< group.initial.rebalance.delay.ms (0; Kafka: 3000) */
    uint32_t session_timeout_min_ms;     /**< group.min.session.timeout.ms (6000) */
    uint32_t session_timeout_max_ms;     /**< group.max.session.timeout.ms (1800000) */
    uint32_t metadata_bytes_max;         /**< per member: protocols, and assignment (64 KiB) */
    uint64_t metadata_bytes_total_max;   /**< all members' metadata + assignments (64 MiB) */
    uint32_t offsets_max;                /**< committed partition offsets, all groups (32768) */
    uint32_t topics_max;                 /**< distinct topics among committed offsets (4096) */
    uint32_t offset_metadata_bytes_max;  /**< offset.metadata.max.bytes (256; Kafka: 4096) */
    int64_t offsets_retention_ms;        /**< offsets.retention.minutes in ms (7 d); -1 never */
    uint32_t offsets_retention_check_interval_ms; /**< expiry scan period (60000) */
    uint64_t offsets_log_segment_bytes;           /**< segment size of the offsets log (16 MiB) */
    int32_t offsets_partition;                    /**< partition of __consumer_offsets to use (0) */
    uint32_t commit_slots;                        /**< offset-log appends in flight at once (16) */
    uint32_t commit_buf_bytes;                   /**< preallocated batch buffer per slot (64 KiB) */
    dp_group_partition_check_fn partition_check; /**< NULL: every topic/partition is accepted */
    void *partition_check_ctx;                   /**< passed to partition_check */
} dp_group_config_t;

/** Counters, readable at any time from the owning thread. */
typedef struct dp_group_stats {
    uint32_t groups;           /**< groups held now */
    uint32_t members;          /**< member slots in use now (pending included) */
    uint32_t offsets;          /**< committed offsets held now */
    uint64_t rebalances;       /**< transitions into PreparingRebalance */
    uint64_t generations;      /**< completed joins (generation bumps) */
    uint64_t session_expiries; /**< members (and pending members) timed out */
    uint64_t commits;          /**< OffsetCommit batches made durable */
    uint64_t commit_errors;    /**< OffsetCommit batches that failed to append */
    uint64_t snapshots;        /**< offset-log compactions completed */
    uint64_t offsets_expired;  /**< offsets removed by retention */
    uint64_t replay_records;   /**< offset records applied at open */
    uint64_t replay_skipped;   /**< offset records not applied at open (limits, format) */
} dp_group_stats_t;

/** A coordinator: the groups and committed offsets of one worker. Opaque. */
typedef struct dp_group_mgr dp_group_mgr_t;
/** One request handed to the coordinator; see struct dp_group_call. */
typedef struct dp_group_call dp_group_call_t;

/** Completion of dp_group_handle: call->result and the frame in call->w are set. */
typedef void (*dp_group_cb)(dp_group_call_t *call);

/**
 * One request handed to the coordinator. Caller-owned and embedded in the
 * caller's per-request context, so nothing is allocated per call. The caller
 * fills req, w, cb and ctx; `req` (and everything it points to) and `w` must
 * stay valid until cb runs or dp_group_cancel returns. The other fields are
 * private.
 */
struct dp_group_call {
    const dp_kreq_t *req;  /**< decoded JoinGroup/SyncGroup/Heartbeat/LeaveGroup/
                                OffsetCommit/OffsetFetch */
    dp_kwr_t *w;           /**< the whole response frame is encoded here before cb */
    int result;            /**< 0, or -errno: the writer's error (-ENOBUFS when w is too
                                small; w->err is set and a partial frame is left from
                                the offset w had, for the caller to cut), or
                                -EPROTONOSUPPORT (API/version not served: nothing
                                written; answer UNSUPPORTED_VERSION) */
    dp_group_cb cb;        /**< called exactly once per dp_group_handle, unless cancelled */
    void *ctx;             /**< caller's context */
    dp_group_call_t *prev; /**< private: list link */
    dp_group_call_t *next; /**< private: list link */
    void *owner;           /**< private: member or commit slot holding the call */
    int where;             /**< private: what holds the call (0: nothing) */
};

/** Fills cfg with the defaults documented on dp_group_config_t. */
void dp_group_config_defaults(dp_group_config_t *cfg);

/**
 * Creates a coordinator whose offsets live in the dp_log partition
 * `<data_dir>/__consumer_offsets-<cfg->offsets_partition>/`, and rebuilds the
 * offset table by replaying that log. Everything the manager will use is
 * allocated here, from the limits in `cfg`. Synchronous: call at start-up on
 * the thread that owns `ring`. Returns 0 or -errno with a message in `err`.
 */
int dp_group_mgr_open(dp_group_mgr_t **out, dp_ring_t *ring, const char *data_dir,
                      const dp_group_config_t *cfg, char *err, size_t errlen);

/**
 * Frees the manager. Returns -EBUSY (and does nothing) while offset-log
 * writes are in flight: run the ring until dp_group_mgr_idle is true first.
 * Calls still parked (joins, syncs, queued commits) are answered with
 * NOT_COORDINATOR from inside this function; their callbacks must not call
 * back into the manager.
 */
int dp_group_mgr_close(dp_group_mgr_t *m);

/** True when no offset-log write is in flight. */
bool dp_group_mgr_idle(const dp_group_mgr_t *m);

/**
 * Handles one decoded group request. call->cb is always called exactly once
 * (unless the call is cancelled first): possibly before this returns, or
 * later from dp_group_tick, another dp_group_handle, or a ring completion of
 * the offsets log. Callbacks never run nested inside coordinator state
 * changes, so a callback may call dp_group_handle or dp_group_cancel.
 * `now_ms` is a monotonic clock in ms (the same one given to dp_group_tick).
 */
void dp_group_handle(dp_group_mgr_t *m, dp_group_call_t *call, uint64_t now_ms);

/**
 * Drives timers: session expiry, rebalance and sync timeouts, the initial
 * rebalance delay, offset retention and log compaction. Call every 10-100 ms.
 */
void dp_group_tick(dp_group_mgr_t *m, uint64_t now_ms);

/**
 * Forgets a call whose connection went away: its callback will not run and
 * its memory may be reused when this returns. Safe on a call that already
 * completed (or was never handed in) as long as it was zeroed or passed to
 * dp_group_handle before. A cancelled JoinGroup still counts its member as
 * rejoined (as in Kafka); a cancelled OffsetCommit still commits.
 */
void dp_group_cancel(dp_group_mgr_t *m, dp_group_call_t *call);

/** Counters. Borrowed, valid until close. */
const dp_group_stats_t *dp_group_stats(const dp_group_mgr_t *m);

#endif
