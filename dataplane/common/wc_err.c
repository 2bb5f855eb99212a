/* SPDX-License-Identifier: Apache-2.0 */
/* Error-message helper; see wc_err.h. */
#include "wc_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

int wc_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}
