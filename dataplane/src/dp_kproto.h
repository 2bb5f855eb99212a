/* SPDX-License-Identifier: Apache-2.0 */
/* Kafka wire-protocol codec for the store: API keys, error codes, the served
 * version table, request decoding into an arena the caller owns (pointers into
 * the request, no per-field allocation) and response encoding. No I/O. */
#ifndef DP_KPROTO_H
#define DP_KPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "dp_kbuf.h"

/** Most topic + partition entries (summed) one decoded request may carry. */
#ifndef DP_KPROTO_MAX_ENTRIES
#define DP_KPROTO_MAX_ENTRIES 1024
#endif

/**
 * Arena size that always suffices: a decode hits DP_KPROTO_MAX_ENTRIES
 * (-ENOBUFS) before it can exhaust an arena this large (each entry takes at
 * most 56 bytes plus 8 of alignment; checked at compile time).
 */
#define DP_KPROTO_ARENA_BYTES ((size_t)DP_KPROTO_MAX_ENTRIES * 64)

/** Kafka API keys the codec knows. */
typedef enum dp_kapi {
    DP_KAPI_PRODUCE = 0,
    DP_KAPI_FETCH = 1,
    DP_KAPI_LIST_OFFSETS = 2,
    DP_KAPI_METADATA = 3,
    DP_KAPI_OFFSET_COMMIT = 8,
    DP_KAPI_OFFSET_FETCH = 9,
    DP_KAPI_FIND_COORDINATOR = 10,
    DP_KAPI_JOIN_GROUP = 11,
    DP_KAPI_HEARTBEAT = 12,
    DP_KAPI_LEAVE_GROUP = 13,
    DP_KAPI_SYNC_GROUP = 14,
    DP_KAPI_API_VERSIONS = 18,
    DP_KAPI_CREATE_TOPICS = 19,
    DP_KAPI_DELETE_TOPICS = 20,
    DP_KAPI_INIT_PRODUCER_ID = 22,
    DP_KAPI_DESCRIBE_CONFIGS = 32,
} dp_kapi_t;

/** Kafka error codes the store returns (subset of the protocol's list). */
typedef enum dp_kerr {
    DP_KERR_UNKNOWN_SERVER_ERROR = -1,
    DP_KERR_NONE = 0,
    DP_KERR_OFFSET_OUT_OF_RANGE = 1,
    DP_KERR_CORRUPT_MESSAGE = 2,
    DP_KERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    DP_KERR_INVALID_FETCH_SIZE = 4,
    DP_KERR_LEADER_NOT_AVAILABLE = 5,
    DP_KERR_NOT_LEADER_OR_FOLLOWER = 6,
    DP_KERR_REQUEST_TIMED_OUT = 7,
    DP_KERR_MESSAGE_TOO_LARGE = 10,
    DP_KERR_COORDINATOR_LOAD_IN_PROGRESS = 14,
    DP_KERR_COORDINATOR_NOT_AVAILABLE = 15,
    DP_KERR_NOT_COORDINATOR = 16,
    DP_KERR_INVALID_TOPIC_EXCEPTION = 17,
    DP_KERR_RECORD_LIST_TOO_LARGE = 18,
    DP_KERR_NOT_ENOUGH_REPLICAS = 19,
    DP_KERR_INVALID_REQUIRED_ACKS = 21,
    DP_KERR_ILLEGAL_GENERATION = 22,
    DP_KERR_INCONSISTENT_GROUP_PROTOCOL = 23,
    DP_KERR_UNKNOWN_MEMBER_ID = 25,
    DP_KERR_INVALID_SESSION_TIMEOUT = 26,
    DP_KERR_REBALANCE_IN_PROGRESS = 27,
    DP_KERR_TOPIC_AUTHORIZATION_FAILED = 29,
    DP_KERR_UNSUPPORTED_VERSION = 35,
    DP_KERR_TOPIC_ALREADY_EXISTS = 36,
    DP_KERR_INVALID_PARTITIONS = 37,
    DP_KERR_INVALID_REPLICATION_FACTOR = 38,
    DP_KERR_INVALID_CONFIG = 40,
    DP_KERR_INVALID_REQUEST = 42,
    DP_KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
    DP_KERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
    DP_KERR_DUPLICATE_SEQUENCE_NUMBER = 46,
    DP_KERR_INVALID_PRODUCER_EPOCH = 47,
    DP_KERR_INVALID_TXN_STATE = 48,
    DP_KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
    DP_KERR_KAFKA_STORAGE_ERROR = 56,
    DP_KERR_UNKNOWN_PRODUCER_ID = 59,
    DP_KERR_FETCH_SESSION_ID_NOT_FOUND = 70,
    DP_KERR_INVALID_FETCH_SESSION_EPOCH = 71,
    DP_KERR_MEMBER_ID_REQUIRED = 79,
    DP_KERR_GROUP_MAX_SIZE_REACHED = 81,
    DP_KERR_INVALID_RECORD = 87,
    DP_KERR_UNKNOWN_TOPIC_ID = 100,
} dp_kerr_t;

/** One row of the served-version table. */
typedef struct dp_kapi_range {
    int16_t api_key;
    int16_t min_version;
    int16_t max_version;
    int16_t flex_version; /**< first flexible version (tagged fields) */
} dp_kapi_range_t;

/**
 * The served table (docs/architecture.md section 4), ordered by api_key.
 * Sets *count. Borrowed, static storage.
 */
const dp_kapi_range_t *dp_kproto_api_table(size_t *count);

/** The row for `api_key`, or NULL when the store does not serve it. */
const dp_kapi_range_t *dp_kproto_api_lookup(int16_t api_key);

/** True when api_key/api_version is in the served table. */
bool dp_kproto_version_supported(int16_t api_key, int16_t api_version);

/**
 * True when api_key/api_version uses flexible encoding (compact strings and
 * arrays, tagged fields, request header v2). For APIs the store does not
 * serve this is false.
 */
bool dp_kproto_is_flexible(int16_t api_key, int16_t api_version);

/** Per-request arena: a caller-owned buffer that decoded arrays live in. */
typedef struct dp_karena {
    void *base;
    size_t cap;
    size_t used;
} dp_karena_t;

/** Starts an arena over `buf` of `cap` bytes (reused by resetting used). */
void dp_karena_init(dp_karena_t *a, void *buf, size_t cap);

/** Request header (v1 or v2); client_id points into the request. */
typedef struct dp_kreq_hdr {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    dp_kstr_t client_id;
    bool flexible; /**< header v2 and flexible body */
} dp_kreq_hdr_t;

/** ApiVersions request (v0-2 empty; v3 carries the client software). */
typedef struct dp_kreq_api_versions {
    dp_kstr_t client_software_name;
    dp_kstr_t client_software_version;
} dp_kreq_api_versions_t;

/** Metadata request. topic_count -1 means all topics. */
typedef struct dp_kreq_metadata {
    int32_t topic_count;
    dp_kstr_t *topics; /**< names; null in v10+ when only a topic id was sent */
    bool allow_auto_topic_creation;
    bool include_cluster_authorized_operations;
    bool include_topic_authorized_operations;
} dp_kreq_metadata_t;

/** One Produce partition: the record batches point into the request. */
typedef struct dp_kproduce_part {
    int32_t partition;
    dp_kbytes_t records;
} dp_kproduce_part_t;

/** One Produce topic. */
typedef struct dp_kproduce_topic {
    dp_kstr_t name;
    int32_t part_count;
    dp_kproduce_part_t *parts;
} dp_kproduce_topic_t;

/** Produce request (v3-9). */
typedef struct dp_kreq_produce {
    dp_kstr_t transactional_id;
    int16_t acks;
    int32_t timeout_ms;
    int32_t topic_count;
    dp_kproduce_topic_t *topics;
} dp_kreq_produce_t;

/** One Fetch partition. */
typedef struct dp_kfetch_part {
    int32_t partition;
    int32_t current_leader_epoch; /**< v9+, else -1 */
    int64_t fetch_offset;
    int32_t last_fetched_epoch; /**< v12+, else -1 */
    int64_t log_start_offset;   /**< v5+, else -1 */
    int32_t partition_max_bytes;
} dp_kfetch_part_t;

/** One Fetch topic. */
typedef struct dp_kfetch_topic {
    dp_kstr_t name;
    int32_t part_count;
    dp_kfetch_part_t *parts;
} dp_kfetch_topic_t;

/** One forgotten topic of an incremental fetch session (v7+). */
typedef struct dp_kfetch_forgotten {
    dp_kstr_t name;
    int32_t part_count;
    int32_t *parts;
} dp_kfetch_forgotten_t;

/** Fetch request (v4-12). */
typedef struct dp_kreq_fetch {
    int32_t replica_id;
    int32_t max_wait_ms;
    int32_t min_bytes;
    int32_t max_bytes;
    int8_t isolation_level;
    int32_t session_id;    /**< v7+, else 0 */
    int32_t session_epoch; /**< v7+, else -1 */
    int32_t topic_count;
    dp_kfetch_topic_t *topics;
    int32_t forgotten_count;
    dp_kfetch_forgotten_t *forgotten;
    dp_kstr_t rack_id; /**< v11+, else empty */
} dp_kreq_fetch_t;

/** One ListOffsets partition. */
typedef struct dp_klist_offsets_part {
    int32_t partition;
    int32_t current_leader_epoch; /**< v4+, else -1 */
    int64_t timestamp;            /**< -2 earliest, -1 latest, or a time */
} dp_klist_offsets_part_t;

/** One ListOffsets topic. */
typedef struct dp_klist_offsets_topic {
    dp_kstr_t name;
    int32_t part_count;
    dp_klist_offsets_part_t *parts;
} dp_klist_offsets_topic_t;

/** ListOffsets request (v1-7). */
typedef struct dp_kreq_list_offsets {
    int32_t replica_id;
    int8_t isolation_level; /**< v2+, else 0 */
    int32_t topic_count;
    dp_klist_offsets_topic_t *topics;
} dp_kreq_list_offsets_t;

/** InitProducerId request (v0-4). */
typedef struct dp_kreq_init_producer_id {
    dp_kstr_t transactional_id;
    int32_t transaction_timeout_ms;
    int64_t producer_id;    /**< v3+, else -1 */
    int16_t producer_epoch; /**< v3+, else -1 */
} dp_kreq_init_producer_id_t;

/** FindCoordinator request (v0-4). v0-3 carry one key, v4 a list. */
typedef struct dp_kreq_find_coordinator {
    int8_t key_type; /**< v1+, 0 group, 1 transaction */
    int32_t key_count;
    dp_kstr_t *keys;
} dp_kreq_find_coordinator_t;

/** A name/value configuration pair (CreateTopics). */
typedef struct dp_kconfig_kv {
    dp_kstr_t name;
    dp_kstr_t value; /**< nullable */
} dp_kconfig_kv_t;

/** A manual replica assignment for one partition (CreateTopics). */
typedef struct dp_kcreate_assign {
    int32_t partition;
    int32_t broker_count;
    int32_t *broker_ids;
} dp_kcreate_assign_t;

/** One topic to create. */
typedef struct dp_kcreate_topic {
    dp_kstr_t name;
    int32_t num_partitions;     /**< -1: broker default */
    int16_t replication_factor; /**< -1: broker default */
    int32_t assignment_count;
    dp_kcreate_assign_t *assignments;
    int32_t config_count;
    dp_kconfig_kv_t *configs;
} dp_kcreate_topic_t;

/** CreateTopics request (v2-7). */
typedef struct dp_kreq_create_topics {
    int32_t topic_count;
    dp_kcreate_topic_t *topics;
    int32_t timeout_ms;
    bool validate_only;
} dp_kreq_create_topics_t;

/** DeleteTopics request (v1-6). v6 topic ids are read and ignored. */
typedef struct dp_kreq_delete_topics {
    int32_t topic_count;
    dp_kstr_t *names; /**< null entries possible in v6 (id-only) */
    int32_t timeout_ms;
} dp_kreq_delete_topics_t;

/** One resource in a DescribeConfigs request. */
typedef struct dp_kdescribe_resource {
    int8_t resource_type; /**< 2 topic, 4 broker */
    dp_kstr_t resource_name;
    int32_t key_count; /**< -1: all keys */
    dp_kstr_t *keys;
} dp_kdescribe_resource_t;

/** DescribeConfigs request (v1-4). */
typedef struct dp_kreq_describe_configs {
    int32_t resource_count;
    dp_kdescribe_resource_t *resources;
    bool include_synonyms;
    bool include_documentation; /**< v3+ */
} dp_kreq_describe_configs_t;

/** One protocol a JoinGroup member supports. */
typedef struct dp_kjoin_protocol {
    dp_kstr_t name;
    dp_kbytes_t metadata;
} dp_kjoin_protocol_t;

/** JoinGroup request (v0-7). */
typedef struct dp_kreq_join_group {
    dp_kstr_t group_id;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms; /**< v1+, else -1 */
    dp_kstr_t member_id;
    dp_kstr_t group_instance_id; /**< v5+, else null */
    dp_kstr_t protocol_type;
    int32_t protocol_count;
    dp_kjoin_protocol_t *protocols;
} dp_kreq_join_group_t;

/** One member's assignment in a SyncGroup request. */
typedef struct dp_ksync_assignment {
    dp_kstr_t member_id;
    dp_kbytes_t assignment;
} dp_ksync_assignment_t;

/** SyncGroup request (v0-5). */
typedef struct dp_kreq_sync_group {
    dp_kstr_t group_id;
    int32_t generation_id;
    dp_kstr_t member_id;
    dp_kstr_t group_instance_id; /**< v3+, else null */
    dp_kstr_t protocol_type;     /**< v5+, else null */
    dp_kstr_t protocol_name;     /**< v5+, else null */
    int32_t assignment_count;
    dp_ksync_assignment_t *assignments;
} dp_kreq_sync_group_t;

/** Heartbeat request (v0-4). */
typedef struct dp_kreq_heartbeat {
    dp_kstr_t group_id;
    int32_t generation_id;
    dp_kstr_t member_id;
    dp_kstr_t group_instance_id; /**< v3+, else null */
} dp_kreq_heartbeat_t;

/** A member leaving (LeaveGroup). */
typedef struct dp_kleave_member {
    dp_kstr_t member_id;
    dp_kstr_t group_instance_id; /**< nullable */
} dp_kleave_member_t;

/** LeaveGroup request (v0-4); v0-2's single member_id is members[0]. */
typedef struct dp_kreq_leave_group {
    dp_kstr_t group_id;
    int32_t member_count;
    dp_kleave_member_t *members;
} dp_kreq_leave_group_t;

/** One partition offset to commit. */
typedef struct dp_kcommit_part {
    int32_t partition;
    int64_t committed_offset;
    int32_t committed_leader_epoch; /**< v6+, else -1 */
    dp_kstr_t committed_metadata;   /**< nullable */
} dp_kcommit_part_t;

/** One topic in an OffsetCommit request. */
typedef struct dp_kcommit_topic {
    dp_kstr_t name;
    int32_t part_count;
    dp_kcommit_part_t *parts;
} dp_kcommit_topic_t;

/** OffsetCommit request (v2-8). */
typedef struct dp_kreq_offset_commit {
    dp_kstr_t group_id;
    int32_t generation_id;
    dp_kstr_t member_id;
    dp_kstr_t group_instance_id; /**< v7+, else null */
    int64_t retention_time_ms;   /**< v2-4, else -1 */
    int32_t topic_count;
    dp_kcommit_topic_t *topics;
} dp_kreq_offset_commit_t;

/** One topic in an OffsetFetch request. */
typedef struct dp_koffset_fetch_topic {
    dp_kstr_t name;
    int32_t part_count;
    int32_t *parts;
} dp_koffset_fetch_topic_t;

/** OffsetFetch request (v1-7). topic_count -1 (v2+) means all topics. */
typedef struct dp_kreq_offset_fetch {
    dp_kstr_t group_id;
    int32_t topic_count;
    dp_koffset_fetch_topic_t *topics;
    bool require_stable; /**< v7+ */
} dp_kreq_offset_fetch_t;

/** A decoded request: header plus the body for header.api_key. */
typedef struct dp_kreq {
    dp_kreq_hdr_t hdr;
    union {
        dp_kreq_api_versions_t api_versions;
        dp_kreq_metadata_t metadata;
        dp_kreq_produce_t produce;
        dp_kreq_fetch_t fetch;
        dp_kreq_list_offsets_t list_offsets;
        dp_kreq_init_producer_id_t init_producer_id;
        dp_kreq_find_coordinator_t find_coordinator;
        dp_kreq_create_topics_t create_topics;
        dp_kreq_delete_topics_t delete_topics;
        dp_kreq_describe_configs_t describe_configs;
        dp_kreq_join_group_t join_group;
        dp_kreq_sync_group_t sync_group;
        dp_kreq_heartbeat_t heartbeat;
        dp_kreq_leave_group_t leave_group;
        dp_kreq_offset_commit_t offset_commit;
        dp_kreq_offset_fetch_t offset_fetch;
    } u;
} dp_kreq_t;

/**
 * Reads a frame's 4-byte size prefix. Returns the payload size (> 0) once
 * `len` >= 4, -EAGAIN when fewer than 4 bytes are buffered, -EMSGSIZE when
 * the size is <= 0 or over `max_bytes` (close the connection).
 */
int64_t dp_kproto_frame_size(const void *buf, size_t len, int32_t max_bytes);

/**
 * Decodes one request payload (the frame without its size prefix). Arrays
 * go into `arena`; strings and record bytes point into `buf`, which must
 * outlive `req`. Returns:
 *  0            success;
 *  -EPROTONOSUPPORT  the header parsed (req->hdr is valid) but the API or
 *                version is not served: answer UNSUPPORTED_VERSION (for
 *                ApiVersions, a v0 response with the version list);
 *  -ENOBUFS     the request exceeds DP_KPROTO_MAX_ENTRIES or the arena
 *                (req->hdr is valid; answer INVALID_REQUEST or close);
 *  -EBADMSG / -ENODATA  malformed or truncated: close the connection
 *                (req->hdr is valid when the header itself parsed).
 */
int dp_kproto_req_decode(const void *buf, size_t len, dp_karena_t *arena, dp_kreq_t *req);

/**
 * Encodes `req` as a full frame (size prefix, header, body) for tests, tools
 * and clients. Returns 0, -EPROTONOSUPPORT for an API/version not served,
 * or the writer's error (-ENOBUFS). The writer's offset ends past the frame.
 */
int dp_kproto_req_encode(dp_kwr_t *w, const dp_kreq_t *req);

/** Where a response frame's size prefix sits, from dp_kproto_resp_begin. */
typedef struct dp_kresp_mark {
    size_t size_off; /**< offset of the int32 size prefix in the writer */
    int16_t api_key;
    int16_t api_version;
    bool flexible;
} dp_kresp_mark_t;

/**
 * Starts a response frame: reserves the size and writes response header v0
 * (correlation id) or v1 (plus empty tags) for flexible versions, except
 * ApiVersions, whose response header is always v0.
 */
void dp_kproto_resp_begin(dp_kwr_t *w, int16_t api_key, int16_t api_version, int32_t correlation_id,
                          dp_kresp_mark_t *mark);

/**
 * Finishes a frame begun at `mark`: patches the size to cover everything
 * written since, plus `extra_bytes` sent outside the buffer (iovec records).
 * Returns 0 or the writer's error.
 */
int dp_kproto_resp_end(dp_kwr_t *w, const dp_kresp_mark_t *mark, size_t extra_bytes);

/**
 * Encodes a whole ApiVersions response frame listing the served table.
 * For an unsupported request version pass api_version 0 and error_code
 * DP_KERR_UNSUPPORTED_VERSION, as Kafka brokers do.
 */
int dp_kproto_api_versions_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                int16_t error_code, int32_t throttle_time_ms);

/** A broker in a Metadata response. */
typedef struct dp_kmd_broker {
    int32_t node_id;
    dp_kstr_t host;
    int32_t port;
    dp_kstr_t rack; /**< nullable */
} dp_kmd_broker_t;

/** A partition in a Metadata response. */
typedef struct dp_kmd_part {
    int16_t error_code;
    int32_t partition;
    int32_t leader_id;
    int32_t leader_epoch;
    int32_t replica_count;
    const int32_t *replicas;
    int32_t isr_count;
    const int32_t *isr;
    int32_t offline_count;
    const int32_t *offline;
} dp_kmd_part_t;

/** A topic in a Metadata response (topic id is sent as zeros). */
typedef struct dp_kmd_topic {
    int16_t error_code;
    dp_kstr_t name;
    bool is_internal;
    int32_t part_count;
    const dp_kmd_part_t *parts;
} dp_kmd_topic_t;

/** A Metadata response body. */
typedef struct dp_kresp_metadata {
    int32_t throttle_time_ms;
    int32_t broker_count;
    const dp_kmd_broker_t *brokers;
    dp_kstr_t cluster_id; /**< nullable */
    int32_t controller_id;
    int32_t topic_count;
    const dp_kmd_topic_t *topics;
} dp_kresp_metadata_t;

/** Encodes a whole Metadata response frame (v1-12). */
int dp_kproto_metadata_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                            const dp_kresp_metadata_t *resp);

/** A partition result in a Produce response. */
typedef struct dp_kproduce_presp {
    int32_t partition;
    int16_t error_code;
    int64_t base_offset;
    int64_t log_append_time_ms; /**< -1 unless LogAppendTime */
    int64_t log_start_offset;
} dp_kproduce_presp_t;

/** A topic result in a Produce response. */
typedef struct dp_kproduce_tresp {
    dp_kstr_t name;
    int32_t part_count;
    const dp_kproduce_presp_t *parts;
} dp_kproduce_tresp_t;

/** Encodes a whole Produce response frame (v3-9; record errors empty). */
int dp_kproto_produce_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                           int32_t throttle_time_ms, int32_t topic_count,
                           const dp_kproduce_tresp_t *topics);

/** A partition result in a Fetch response; records stay in caller memory. */
typedef struct dp_kfetch_presp {
    int32_t partition;
    int16_t error_code;
    int64_t high_watermark;
    int64_t last_stable_offset;
    int64_t log_start_offset;
    const void *records; /**< NULL with records_len 0 for none */
    int32_t records_len;
} dp_kfetch_presp_t;

/** A topic result in a Fetch response. */
typedef struct dp_kfetch_tresp {
    dp_kstr_t name;
    int32_t part_count;
    const dp_kfetch_presp_t *parts;
} dp_kfetch_tresp_t;

/**
 * Encodes a whole Fetch response frame (v4-12) without copying records:
 * framing goes into `w` and the output is the iovec list written to `iov`
 * (at most `iov_max`, needs 2 per non-empty partition + 1), alternating
 * buffer pieces and the callers' record ranges. Sets *iov_count. Returns 0,
 * -ENOBUFS when `w` or `iov` is too small.
 */
int dp_kproto_fetch_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                         int32_t throttle_time_ms, int16_t error_code, int32_t session_id,
                         int32_t topic_count, const dp_kfetch_tresp_t *topics, struct iovec *iov,
                         int iov_max, int *iov_count);

/** A partition result in a ListOffsets response. */
typedef struct dp_klist_offsets_presp {
    int32_t partition;
    int16_t error_code;
    int64_t timestamp;
    int64_t offset;
    int32_t leader_epoch;
} dp_klist_offsets_presp_t;

/** A topic result in a ListOffsets response. */
typedef struct dp_klist_offsets_tresp {
    dp_kstr_t name;
    int32_t part_count;
    const dp_klist_offsets_presp_t *parts;
} dp_klist_offsets_tresp_t;

/** Encodes a whole ListOffsets response frame (v1-7). */
int dp_kproto_list_offsets_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                int32_t throttle_time_ms, int32_t topic_count,
                                const dp_klist_offsets_tresp_t *topics);

/** Encodes a whole InitProducerId response frame (v0-4). */
int dp_kproto_init_producer_id_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                    int32_t throttle_time_ms, int16_t error_code,
                                    int64_t producer_id, int16_t producer_epoch);

/**
 * Encodes a whole FindCoordinator response frame (v0-4). v4 repeats the one
 * coordinator for each of the `key_count` keys.
 */
int dp_kproto_find_coordinator_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                    int16_t error_code, int32_t node_id, dp_kstr_t host,
                                    int32_t port, int32_t key_count, const dp_kstr_t *keys);

/** A topic result in a CreateTopics response. */
typedef struct dp_kcreate_tresp {
    dp_kstr_t name;
    int16_t error_code;
    dp_kstr_t error_message; /**< nullable */
    int32_t num_partitions;
    int16_t replication_factor;
} dp_kcreate_tresp_t;

/** Encodes a whole CreateTopics response frame (v2-7; configs null). */
int dp_kproto_create_topics_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                 int32_t throttle_time_ms, int32_t topic_count,
                                 const dp_kcreate_tresp_t *topics);

/** A topic result in a DeleteTopics response. */
typedef struct dp_kdelete_tresp {
    dp_kstr_t name;
    int16_t error_code;
} dp_kdelete_tresp_t;

/** Encodes a whole DeleteTopics response frame (v1-6; topic id zeros). */
int dp_kproto_delete_topics_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                 int32_t throttle_time_ms, int32_t topic_count,
                                 const dp_kdelete_tresp_t *topics);

/** One config entry in a DescribeConfigs response. */
typedef struct dp_kconfig_entry {
    dp_kstr_t name;
    dp_kstr_t value; /**< nullable */
    bool read_only;
    int8_t config_source; /**< 5 default, 1 dynamic topic, 4 static broker */
    bool is_sensitive;
    int8_t config_type; /**< v3+: 1 boolean, 2 string, 3 int, 5 long, ... */
} dp_kconfig_entry_t;

/** One resource result in a DescribeConfigs response. */
typedef struct dp_kdescribe_rresp {
    int16_t error_code;
    int8_t resource_type;
    dp_kstr_t resource_name;
    int32_t config_count;
    const dp_kconfig_entry_t *configs;
} dp_kdescribe_rresp_t;

/** Encodes a whole DescribeConfigs response frame (v1-4; no synonyms). */
int dp_kproto_describe_configs_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                    int32_t throttle_time_ms, int32_t result_count,
                                    const dp_kdescribe_rresp_t *results);

/** A member listed to the leader in a JoinGroup response. */
typedef struct dp_kjoin_member {
    dp_kstr_t member_id;
    dp_kstr_t group_instance_id; /**< nullable */
    dp_kbytes_t metadata;
} dp_kjoin_member_t;

/** A JoinGroup response body. */
typedef struct dp_kresp_join_group {
    int32_t throttle_time_ms;
    int16_t error_code;
    int32_t generation_id;
    dp_kstr_t protocol_type; /**< v7+ */
    dp_kstr_t protocol_name;
    dp_kstr_t leader;
    dp_kstr_t member_id;
    int32_t member_count;
    const dp_kjoin_member_t *members;
} dp_kresp_join_group_t;

/** Encodes a whole JoinGroup response frame (v0-7). */
int dp_kproto_join_group_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                              const dp_kresp_join_group_t *resp);

/** Encodes a whole SyncGroup response frame (v0-5). */
int dp_kproto_sync_group_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                              int32_t throttle_time_ms, int16_t error_code, dp_kstr_t protocol_type,
                              dp_kstr_t protocol_name, dp_kbytes_t assignment);

/** Encodes a whole Heartbeat response frame (v0-4). */
int dp_kproto_heartbeat_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                             int32_t throttle_time_ms, int16_t error_code);

/**
 * Encodes a whole LeaveGroup response frame (v0-4). v3+ lists each member
 * of the request with `member_error` (pass the request's members).
 */
int dp_kproto_leave_group_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                               int32_t throttle_time_ms, int16_t error_code, int32_t member_count,
                               const dp_kleave_member_t *members, int16_t member_error);

/** A partition result: index and error (OffsetCommit response). */
typedef struct dp_kpart_err {
    int32_t partition;
    int16_t error_code;
} dp_kpart_err_t;

/** A topic result in an OffsetCommit response. */
typedef struct dp_kcommit_tresp {
    dp_kstr_t name;
    int32_t part_count;
    const dp_kpart_err_t *parts;
} dp_kcommit_tresp_t;

/** Encodes a whole OffsetCommit response frame (v2-8). */
int dp_kproto_offset_commit_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                 int32_t throttle_time_ms, int32_t topic_count,
                                 const dp_kcommit_tresp_t *topics);

/** A partition in an OffsetFetch response. */
typedef struct dp_koffset_fetch_presp {
    int32_t partition;
    int64_t committed_offset; /**< -1: none */
    int32_t committed_leader_epoch;
    dp_kstr_t metadata; /**< nullable */
    int16_t error_code;
} dp_koffset_fetch_presp_t;

/** A topic in an OffsetFetch response. */
typedef struct dp_koffset_fetch_tresp {
    dp_kstr_t name;
    int32_t part_count;
    const dp_koffset_fetch_presp_t *parts;
} dp_koffset_fetch_tresp_t;

/** Encodes a whole OffsetFetch response frame (v1-7). */
int dp_kproto_offset_fetch_resp(dp_kwr_t *w, int16_t api_version, int32_t correlation_id,
                                int32_t throttle_time_ms, int16_t error_code, int32_t topic_count,
                                const dp_koffset_fetch_tresp_t *topics);

#endif
