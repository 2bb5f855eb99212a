/* SPDX-License-Identifier: Apache-2.0 */
/* Description: fuzzes the expression compiler and evaluator. Arbitrary bytes
 * are compiled with a resolver that accepts every path (slots are handed out
 * round-robin over a row holding one value of each type); whatever compiles
 * is evaluated with a roomy and with a tiny scratch arena. Nothing may crash,
 * leak, read out of bounds or overflow the stack; a compile failure must
 * leave a message. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp_expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSLOTS 12

static int resolve_any(void *ctx, const char *path, size_t len)
{
    unsigned *n = ctx;

    if (len == 0)
        abort();
    /* exercise the refusal path now and then */
    if (len == 12 && memcmp(path, "header.refus", 12) == 0)
        return -EPERM;
    return (int)((*n)++ % (NSLOTS + 2)); /* a few slots lie beyond the row */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char big[4096];
    static char tiny[3];
    dp_val_t slots[NSLOTS] = {
        dp_val_int(42),        dp_val_int(INT64_MIN),
        dp_val_int(-1),        dp_val_double(2.5),
        dp_val_double(-1e308), dp_val_str("Hello", 5),
        dp_val_str("", 0),     dp_val_str("\xc3\xa9\0x", 4),
        dp_val_bool(true),     dp_val_null(),
        dp_val_missing(),      dp_val_err(DP_VERR_PARSE),
    };
    dp_row_t row = {.slots = slots, .nslots = NSLOTS};
    dp_expr_scratch_t s;
    dp_expr_t *e = NULL;
    char err[128];
    unsigned n = 0;
    char *src = malloc(size + 1);
    int rc;

    if (src == NULL)
        return 0;
    if (size > 0)
        memcpy(src, data, size);
    src[size] = '\0';
    rc = dp_expr_compile(src, resolve_any, &n, &e, err, sizeof(err));
    if (rc != 0) {
        if (e != NULL || err[0] == '\0')
            abort();
        goto out;
    }
    dp_expr_scratch_init(&s, big, sizeof(big));
    for (int i = 0; i < 2; i++) {
        dp_val_t v = dp_expr_eval(e, &row, &s);

        if (v.type > DP_VAL_ERR)
            abort();
        if (v.type == DP_VAL_STR && v.len > 0 && v.u.s == NULL)
            abort();
        (void)dp_expr_verdict(&v);
        dp_expr_scratch_reset(&s);
    }
    dp_expr_scratch_init(&s, tiny, sizeof(tiny));
    (void)dp_expr_eval(e, &row, &s);
    (void)dp_expr_eval(e, NULL, NULL);
    if (dp_expr_is_const(e) && n != 0)
        abort();
out:
    dp_expr_free(e);
    free(src);
    return 0;
}
