/* SPDX-License-Identifier: Apache-2.0 */
/* Kafka record batch v2 (magic 2): header parsing, validation (lengths,
 * magic, CRC32C) and in-place baseOffset assignment. Records are not decoded
 * on the hot path; dp_batch_foreach_record is for tests and tools. */
#ifndef DP_BATCH_H
#define DP_BATCH_H

#include <stddef.h>
#include <stdint.h>

/** Bytes of the v2 batch header, baseOffset through recordsCount. */
#define DP_BATCH_HEADER_SIZE 61
/** baseOffset (8) + batchLength (4): bytes not counted in batchLength. */
#define DP_BATCH_LOG_OVERHEAD 12
/** Byte offset of the CRC field; the CRC covers everything after it. */
#define DP_BATCH_CRC_OFFSET 17
/** Byte offset of the attributes field, where the CRC'd region starts. */
#define DP_BATCH_ATTR_OFFSET 21
/** The only magic value accepted. */
#define DP_BATCH_MAGIC 2
/** attributes bits 0-2: compression codec (0 none). */
#define DP_BATCH_ATTR_COMPRESSION_MASK 0x7
/** attributes bit 4: transactional batch. */
#define DP_BATCH_ATTR_TRANSACTIONAL 0x10
/** attributes bit 5: control batch. */
#define DP_BATCH_ATTR_CONTROL 0x20

/** dp_batch_validate flag: also require recordsCount == lastOffsetDelta + 1
 *  and recordsCount > 0, as a freshly produced batch must have. */
#define DP_BATCH_STRICT 0x1u

/** Decoded v2 batch header (host byte order). */
typedef struct dp_batch_hdr {
    int64_t base_offset;
    int32_t batch_length; /**< bytes after this field */
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
} dp_batch_hdr_t;

/**
 * Decodes the 61-byte header at `buf` without checking the CRC. Returns 0,
 * -ENODATA when len < 61, -EINVAL for a bad magic, batchLength or count.
 */
int dp_batch_parse_header(const void *buf, size_t len, dp_batch_hdr_t *hdr);

/**
 * Parses and fully validates the batch at `buf`: the header as above, the
 * batch fits in `len` (-ENODATA if not), and the CRC32C matches (-EBADMSG).
 * `flags` is 0 or DP_BATCH_STRICT. On success fills hdr and returns 0.
 */
int dp_batch_validate(const void *buf, size_t len, unsigned flags, dp_batch_hdr_t *hdr);

/** Total on-disk size of the batch: DP_BATCH_LOG_OVERHEAD + batchLength. */
size_t dp_batch_size(const dp_batch_hdr_t *hdr);

/** Offset of the batch's last record: base + lastOffsetDelta. */
int64_t dp_batch_last_offset(const dp_batch_hdr_t *hdr);

/**
 * Rewrites baseOffset and partitionLeaderEpoch in place. Both lie before
 * the CRC'd region, so the CRC stays valid.
 */
void dp_batch_set_base_offset(void *buf, int64_t base_offset, int32_t leader_epoch);

/** One decoded record, pointing into the batch. */
typedef struct dp_batch_record {
    int64_t offset;    /**< base_offset + offsetDelta */
    int64_t timestamp; /**< base_timestamp + timestampDelta */
    const uint8_t *key;
    int32_t key_len; /**< -1 for null */
    const uint8_t *value;
    int32_t value_len; /**< -1 for null */
    int32_t headers_count;
} dp_batch_record_t;

/** Per-record callback; a non-zero return stops the iteration with it. */
typedef int (*dp_batch_record_cb)(const dp_batch_record_t *rec, void *ctx);

/**
 * Decodes every record of a validated, uncompressed batch and calls `cb`.
 * Returns 0, the callback's non-zero value, -ENOTSUP for a compressed batch,
 * or -EBADMSG for malformed records. Not for the hot path.
 */
int dp_batch_foreach_record(const void *buf, size_t len, dp_batch_record_cb cb, void *ctx);

/** A record for dp_batch_build (tests and tools). */
typedef struct dp_batch_build_rec {
    const void *key;
    int32_t key_len; /**< -1 for null */
    const void *value;
    int32_t value_len; /**< -1 for null */
    int64_t timestamp_delta;
} dp_batch_build_rec_t;

/**
 * Encodes an uncompressed v2 batch of `n` records with a correct CRC32C
 * into `buf` (baseOffset 0, producerId -1; maxTimestamp is base_timestamp
 * plus the largest delta). Returns the batch size, or -ENOSPC if `cap` is
 * too small, -EINVAL for n == 0. For tests and tools.
 */
int dp_batch_build(void *buf, size_t cap, int64_t base_timestamp, const dp_batch_build_rec_t *recs,
                   int n);

#endif
