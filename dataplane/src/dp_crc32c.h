/* SPDX-License-Identifier: Apache-2.0 */
/* CRC32C (Castagnoli), the checksum of Kafka record batches v2. Uses the
 * SSE4.2 crc32 instruction when the CPU has it, a byte table otherwise. */
#ifndef DP_CRC32C_H
#define DP_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/**
 * Extends `crc` (0 to start, or a previous result) over `len` bytes of
 * `buf` and returns the new CRC32C. dp_crc32c(0, "123456789", 9) is
 * 0xE3069283. Chunked calls give the same result as one call.
 */
uint32_t dp_crc32c(uint32_t crc, const void *buf, size_t len);

/** Portable table-driven implementation (same contract as dp_crc32c). */
uint32_t dp_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/**
 * Hardware implementation; only call when dp_crc32c_hw_available() is
 * true. Same contract as dp_crc32c.
 */
uint32_t dp_crc32c_hw(uint32_t crc, const void *buf, size_t len);

/** True when the running CPU supports the SSE4.2 crc32 instruction. */
int dp_crc32c_hw_available(void);

#endif
