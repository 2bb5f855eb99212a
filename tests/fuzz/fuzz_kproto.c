/* SPDX-License-Identifier: Apache-2.0 */
/* Description: fuzzes the Kafka request decoder with whole request payloads
 * (header + body, any API and version). A decoded request must re-encode,
 * decode again, and re-encode to the same bytes; nothing may crash, leak or
 * read outside the input. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp_kproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t arena1[16384];
static uint64_t arena2[16384];
static uint8_t out1[1 << 18];
static uint8_t out2[1 << 18];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dp_karena_t a1, a2;
    dp_kreq_t r1, r2;
    dp_kwr_t w1, w2;
    uint8_t *copy;
    int rc;

    (void)dp_kproto_frame_size(data, size, 100 << 20);
    /* An exact-size heap copy lets ASan catch any read past the end. */
    copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    dp_karena_init(&a1, arena1, sizeof(arena1));
    rc = dp_kproto_req_decode(copy, size, &a1, &r1);
    if (rc != 0 || size > sizeof(out1) / 2)
        goto out;
    dp_kwr_init(&w1, out1, sizeof(out1));
    rc = dp_kproto_req_encode(&w1, &r1);
    /* -EINVAL: a compact string longer than a STRING may hold; legal input
     * we decline to re-encode. */
    if (rc == -EINVAL)
        goto out;
    if (rc != 0)
        abort();
    dp_karena_init(&a2, arena2, sizeof(arena2));
    if (dp_kproto_req_decode(out1 + 4, w1.off - 4, &a2, &r2) != 0)
        abort();
    dp_kwr_init(&w2, out2, sizeof(out2));
    if (dp_kproto_req_encode(&w2, &r2) != 0)
        abort();
    if (w1.off != w2.off || memcmp(out1, out2, w1.off) != 0)
        abort();
out:
    free(copy);
    return 0;
}
