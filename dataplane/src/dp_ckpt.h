/* SPDX-License-Identifier: Apache-2.0 */
/* dp_ckpt: the processor's checkpoint files. One file per checkpoint holds
 * the input offsets, the engine state (dp_pipe_save) and a reserved sink
 * transaction section, framed by a header naming the spec it belongs to and
 * a CRC32C trailer. Written through io_uring (temp file, fsync, rename,
 * directory fsync); loading picks the newest file that verifies. Format and
 * recovery rules: docs/internals/checkpoints.md. */
#ifndef DP_CKPT_H
#define DP_CKPT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/** File format version written by this build (the header's `version`). */
#define DP_CKPT_VERSION 1u

/** Checkpoints kept on disk when the spec does not say (checkpoint.retain). */
#define DP_CKPT_RETAIN_DEFAULT 2u

/**
 * Offset value meaning "from the earliest offset" (no record of the
 * partition was processed yet and the input starts at `earliest`); the
 * same value as librdkafka's RD_KAFKA_OFFSET_BEGINNING.
 */
#define DP_CKPT_OFFSET_BEGINNING (-2)

/* Put a limit on everything: a file larger than this is refused as damaged. */
/** Largest checkpoint file accepted (state included): 16 GiB. */
#define DP_CKPT_FILE_BYTES_MAX ((uint64_t)16 << 30)
/** Most input offsets in one checkpoint (64 inputs x 65536 partitions). */
#define DP_CKPT_OFFSETS_MAX (64u * 65536u)

typedef struct dp_ckpt dp_ckpt_t;

/** One input partition's position: the next offset to read. */
typedef struct dp_ckpt_offset {
    const char *topic; /**< borrowed (write) / points into the image (load) */
    int32_t partition;
    int64_t next_offset; /**< >= 0, or DP_CKPT_OFFSET_BEGINNING */
} dp_ckpt_offset_t;

/** The contents of one checkpoint. Everything is borrowed. */
typedef struct dp_ckpt_data {
    uint64_t id;        /**< load: the checkpoint's id (write ignores it) */
    uint64_t spec_hash; /**< dp_ckpt_spec_hash of the spec that wrote it */
    int64_t wall_ms;    /**< CLOCK_REALTIME at write, informational */
    const dp_ckpt_offset_t *offsets;
    uint32_t noffsets;
    uint32_t sink_txn_len; /**< reserved sink-transaction blob (0: none) */
    const void *sink_txn;
    const void *state; /**< engine state (dp_pipe_save) */
    size_t state_len;
} dp_ckpt_data_t;

/** A loaded checkpoint: `data` points into memory the image owns. */
typedef struct dp_ckpt_image {
    dp_ckpt_data_t data;
    char name[40];          /**< file name, e.g. "ckpt-00000000000000000007" */
    uint8_t *buf;           /**< private: the file's bytes */
    dp_ckpt_offset_t *offs; /**< private: the offsets array */
} dp_ckpt_image_t;

/**
 * Opens (creating it and its parents if needed) the checkpoint directory
 * `dir` (copied), keeping the newest `retain` (>= 1) checkpoints after each
 * write. Removes temp files a crash left behind and notes the highest id in
 * use, so ids keep increasing across restarts. Owns a small io_uring ring.
 * Returns 0 or -errno with a message in err.
 */
int dp_ckpt_open(dp_ckpt_t **out, const char *dir, uint32_t retain, char *err, size_t errlen);

/** Closes the directory and frees `c`. NULL is a no-op. */
void dp_ckpt_free(dp_ckpt_t *c);

/** The checkpoint directory (borrowed). */
const char *dp_ckpt_dir(const dp_ckpt_t *c);

/**
 * Writes checkpoint (highest id + 1) from `d` (d->id ignored): encodes it,
 * writes `ckpt-<id>.tmp` and fsyncs it through the ring, renames it to
 * `ckpt-<id>`, fsyncs the directory, then deletes checkpoints beyond the
 * newest `retain`. Blocks until durable. Returns 0 and the id in *id_out,
 * or -errno with a message in err (the temp file is removed; no checkpoint
 * id is reused).
 */
int dp_ckpt_write(dp_ckpt_t *c, const dp_ckpt_data_t *d, uint64_t *id_out, char *err,
                  size_t errlen);

/**
 * Loads the newest checkpoint whose header and CRC verify into `img`
 * (dispose with dp_ckpt_image_dispose). A damaged file is skipped with a
 * warning log line and the next older one is tried. Returns 0; -ENOENT when
 * the directory holds no checkpoint; -ESTALE when the newest valid one was
 * written for another spec (spec_hash differs; err says which file and
 * both hashes); -EBADMSG when every checkpoint file is damaged; or another
 * -errno. Messages go to err.
 */
int dp_ckpt_load(dp_ckpt_t *c, uint64_t spec_hash, dp_ckpt_image_t *img, char *err, size_t errlen);

/** Frees what dp_ckpt_load put in `img`. Safe on a zeroed image. */
void dp_ckpt_image_dispose(dp_ckpt_image_t *img);

/**
 * Encodes `d` as a checkpoint file with id `id` (the whole file, trailer
 * included) into a new malloc'd buffer. Returns 0 or -ENOMEM. For tests and
 * tools; dp_ckpt_write streams the state instead of copying it.
 */
int dp_ckpt_encode(const dp_ckpt_data_t *d, uint64_t id, uint8_t **buf, size_t *len);

/**
 * Verifies and parses a whole checkpoint file held in `buf` (borrowed: the
 * data points into it). Returns 0, or -EBADMSG with the reason in err.
 */
int dp_ckpt_decode(const uint8_t *buf, size_t len, dp_ckpt_data_t *d, dp_ckpt_offset_t **offs,
                   char *err, size_t errlen);

/**
 * The 64-bit FNV-1a hash of the spec's canonical JSON (sorted keys, compact)
 * with the runtime-only members `checkpoint`, `http` and `workers` left out:
 * they change how the processor runs, not what its state means.
 */
uint64_t dp_ckpt_spec_hash(const json_t *spec);

#endif
