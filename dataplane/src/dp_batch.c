/* SPDX-License-Identifier: Apache-2.0 */
/* Kafka record batch v2 codec: big-endian header fields, CRC32C over the
 * bytes from attributes to the end, zig-zag varints inside records. */
#include "dp_batch.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "dp_crc32c.h"

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

int dp_batch_parse_header(const void *buf, size_t len, dp_batch_hdr_t *hdr)
{
    const uint8_t *p = buf;

    assert(buf != NULL);
    assert(hdr != NULL);
    if (len < DP_BATCH_HEADER_SIZE)
        return -ENODATA;
    hdr->base_offset = (int64_t)get64(p);
    hdr->batch_length = (int32_t)get32(p + 8);
    hdr->partition_leader_epoch = (int32_t)get32(p + 12);
    hdr->magic = (int8_t)p[16];
    hdr->crc = get32(p + 17);
    hdr->attributes = (int16_t)get16(p + 21);
    hdr->last_offset_delta = (int32_t)get32(p + 23);
    hdr->base_timestamp = (int64_t)get64(p + 27);
    hdr->max_timestamp = (int64_t)get64(p + 35);
    hdr->producer_id = (int64_t)get64(p + 43);
    hdr->producer_epoch = (int16_t)get16(p + 51);
    hdr->base_sequence = (int32_t)get32(p + 53);
    hdr->records_count = (int32_t)get32(p + 57);
    if (hdr->magic != DP_BATCH_MAGIC)
        return -EINVAL;
    if (hdr->batch_length < DP_BATCH_HEADER_SIZE - DP_BATCH_LOG_OVERHEAD)
        return -EINVAL;
    if (hdr->base_offset < 0 || hdr->last_offset_delta < 0 || hdr->records_count < 0)
        return -EINVAL;
    /* Compaction may drop records but never adds offsets. */
    if ((int64_t)hdr->records_count > (int64_t)hdr->last_offset_delta + 1)
        return -EINVAL;
    if (hdr->base_offset > INT64_MAX - hdr->last_offset_delta)
        return -EINVAL;
    return 0;
}

int dp_batch_validate(const void *buf, size_t len, unsigned flags, dp_batch_hdr_t *hdr)
{
    const uint8_t *p = buf;
    size_t size;
    int rc;

    rc = dp_batch_parse_header(buf, len, hdr);
    if (rc < 0)
        goto out;
    size = dp_batch_size(hdr);
    if (size > len) {
        rc = -ENODATA;
        goto out;
    }
    if ((flags & DP_BATCH_STRICT) &&
        (hdr->records_count == 0 || hdr->records_count != hdr->last_offset_delta + 1)) {
        rc = -EINVAL;
        goto out;
    }
    if (dp_crc32c(0, p + DP_BATCH_ATTR_OFFSET, size - DP_BATCH_ATTR_OFFSET) != hdr->crc) {
        rc = -EBADMSG;
        goto out;
    }
    rc = 0;
out:
    return rc;
}

size_t dp_batch_size(const dp_batch_hdr_t *hdr)
{
    assert(hdr->batch_length >= 0);
    return DP_BATCH_LOG_OVERHEAD + (size_t)hdr->batch_length;
}

int64_t dp_batch_last_offset(const dp_batch_hdr_t *hdr)
{
    return hdr->base_offset + hdr->last_offset_delta;
}

void dp_batch_set_base_offset(void *buf, int64_t base_offset, int32_t leader_epoch)
{
    uint8_t *p = buf;

    assert(base_offset >= 0);
    put64(p, (uint64_t)base_offset);
    put32(p + 12, (uint32_t)leader_epoch);
}

/* Zig-zag varint reader; returns bytes consumed or 0 on malformed input. */
static size_t get_varlong(const uint8_t *p, const uint8_t *end, int64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;

    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p + i >= end)
            return 0;
        v |= (uint64_t)(p[i] & 0x7f) << shift;
        if ((p[i++] & 0x80) == 0) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return i;
        }
    }
    return 0;
}

static size_t put_varlong(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t i = 0;

    while (z >= 0x80) {
        p[i++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[i++] = (uint8_t)z;
    return i;
}

/* Reads a varint-length-prefixed byte string (-1 = null). */
static int get_bytes(const uint8_t **pp, const uint8_t *end, const uint8_t **data, int32_t *len)
{
    int64_t n;
    size_t k = get_varlong(*pp, end, &n);

    if (k == 0 || n < -1 || n > INT32_MAX)
        return -EBADMSG;
    *pp += k;
    if (n > end - *pp)
        return -EBADMSG;
    *data = n < 0 ? NULL : *pp;
    *len = (int32_t)n;
    if (n > 0)
        *pp += n;
    return 0;
}

int dp_batch_foreach_record(const void *buf, size_t len, dp_batch_record_cb cb, void *ctx)
{
    const uint8_t *p = buf, *end, *rec_end;
    dp_batch_hdr_t h;
    dp_batch_record_t r;
    int64_t v;
    size_t k;
    int rc;

    rc = dp_batch_parse_header(buf, len, &h);
    if (rc < 0)
        goto out;
    if (dp_batch_size(&h) > len) {
        rc = -ENODATA;
        goto out;
    }
    if (h.attributes & DP_BATCH_ATTR_COMPRESSION_MASK) {
        rc = -ENOTSUP;
        goto out;
    }
    end = p + dp_batch_size(&h);
    p += DP_BATCH_HEADER_SIZE;
    for (int32_t i = 0; i < h.records_count; i++) {
        rc = -EBADMSG;
        k = get_varlong(p, end, &v);
        if (k == 0 || v < 0 || v > end - (p + k))
            goto out;
        p += k;
        rec_end = p + v;
        if (rec_end - p < 1)
            goto out;
        p++; /* record attributes, unused */
        k = get_varlong(p, rec_end, &v);
        if (k == 0)
            goto out;
        r.timestamp = h.base_timestamp + v;
        p += k;
        k = get_varlong(p, rec_end, &v);
        if (k == 0 || v < 0 || v > h.last_offset_delta)
            goto out;
        r.offset = h.base_offset + v;
        p += k;
        if (get_bytes(&p, rec_end, &r.key, &r.key_len) < 0)
            goto out;
        if (get_bytes(&p, rec_end, &r.value, &r.value_len) < 0)
            goto out;
        k = get_varlong(p, rec_end, &v);
        if (k == 0 || v < 0 || v > INT32_MAX)
            goto out;
        p += k;
        r.headers_count = (int32_t)v;
        for (int64_t j = 0; j < v; j++) {
            const uint8_t *d;
            int32_t dl;

            if (get_bytes(&p, rec_end, &d, &dl) < 0 || get_bytes(&p, rec_end, &d, &dl) < 0)
                goto out;
        }
        if (p != rec_end)
            goto out;
        rc = cb(&r, ctx);
        if (rc != 0)
            goto out;
    }
    rc = p == end ? 0 : -EBADMSG;
out:
    return rc;
}

int dp_batch_build(void *buf, size_t cap, int64_t base_timestamp, const dp_batch_build_rec_t *recs,
                   int n)
{
    uint8_t *b = buf, *p, tmp[30];
    int64_t max_delta = 0;
    size_t need = DP_BATCH_HEADER_SIZE;
    int rc;

    if (n <= 0)
        return -EINVAL;
    /* Size pass first, so nothing is written past cap. */
    for (int i = 0; i < n; i++) {
        size_t body = 1 + put_varlong(tmp, recs[i].timestamp_delta) + put_varlong(tmp, i) +
                      put_varlong(tmp, recs[i].key_len) +
                      (recs[i].key_len > 0 ? (size_t)recs[i].key_len : 0) +
                      put_varlong(tmp, recs[i].value_len) +
                      (recs[i].value_len > 0 ? (size_t)recs[i].value_len : 0) + 1;

        need += put_varlong(tmp, (int64_t)body) + body;
        if (recs[i].timestamp_delta > max_delta)
            max_delta = recs[i].timestamp_delta;
    }
    if (need > cap || need > INT32_MAX) {
        rc = -ENOSPC;
        goto out;
    }
    p = b + DP_BATCH_HEADER_SIZE;
    for (int i = 0; i < n; i++) {
        size_t body = 1 + put_varlong(tmp, recs[i].timestamp_delta) + put_varlong(tmp, i) +
                      put_varlong(tmp, recs[i].key_len) +
                      (recs[i].key_len > 0 ? (size_t)recs[i].key_len : 0) +
                      put_varlong(tmp, recs[i].value_len) +
                      (recs[i].value_len > 0 ? (size_t)recs[i].value_len : 0) + 1;

        p += put_varlong(p, (int64_t)body);
        *p++ = 0;
        p += put_varlong(p, recs[i].timestamp_delta);
        p += put_varlong(p, i);
        p += put_varlong(p, recs[i].key_len);
        if (recs[i].key_len > 0) {
            memcpy(p, recs[i].key, (size_t)recs[i].key_len);
            p += recs[i].key_len;
        }
        p += put_varlong(p, recs[i].value_len);
        if (recs[i].value_len > 0) {
            memcpy(p, recs[i].value, (size_t)recs[i].value_len);
            p += recs[i].value_len;
        }
        p += put_varlong(p, 0);
    }
    assert((size_t)(p - b) == need);
    put64(b, 0);
    put32(b + 8, (uint32_t)(need - DP_BATCH_LOG_OVERHEAD));
    put32(b + 12, 0);
    b[16] = DP_BATCH_MAGIC;
    put16(b + 21, 0);
    put32(b + 23, (uint32_t)(n - 1));
    put64(b + 27, (uint64_t)base_timestamp);
    put64(b + 35, (uint64_t)(base_timestamp + max_delta));
    put64(b + 43, (uint64_t)-1);
    put16(b + 51, (uint16_t)-1);
    put32(b + 53, (uint32_t)-1);
    put32(b + 57, (uint32_t)n);
    put32(b + DP_BATCH_CRC_OFFSET,
          dp_crc32c(0, b + DP_BATCH_ATTR_OFFSET, need - DP_BATCH_ATTR_OFFSET));
    rc = (int)need;
out:
    return rc;
}
