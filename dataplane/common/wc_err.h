/* SPDX-License-Identifier: Apache-2.0 */
/* wc_err: the one helper for "write a message into the caller's error
 * buffer and fail", shared by every parser and loader. */
#ifndef WC_ERR_H
#define WC_ERR_H

#include <stddef.h>

/**
 * Formats into `err` (capacity `errlen`, may be 0) and returns -EINVAL, so
 * validators can write `return wc_fail(err, errlen, "...", ...)`.
 */
int wc_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
