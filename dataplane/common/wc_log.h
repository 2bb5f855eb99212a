/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-lines structured logging shared by every Weir process.
 * One object per line on stderr: ts, level, component, msg, then extra fields. */
#ifndef WC_LOG_H
#define WC_LOG_H

#include <stdio.h>

/** Log levels, in increasing severity. */
typedef enum {
    WC_LOG_DEBUG = 0,
    WC_LOG_INFO = 1,
    WC_LOG_WARN = 2,
    WC_LOG_ERROR = 3,
} wc_log_level_t;

/** Sets the minimum level that is written (default WC_LOG_INFO). */
void wc_log_set_level(wc_log_level_t level);

/** Parses "debug", "info", "warn" or "error". Returns 0 or -EINVAL. */
int wc_log_parse_level(const char *s, wc_log_level_t *out);

/** Reads WEIR_LOG_LEVEL, if set and valid, into the current level. */
void wc_log_init_from_env(void);

/** Redirects output (default stderr); for tests. */
void wc_log_set_stream(FILE *f);

/**
 * Writes one log line. `fields` is a jansson pack format for an object holding
 * extra members (e.g. "{s:i, s:s}", "port", 9092, "topic", "t"), or NULL.
 * Lines are written with one fwrite, so concurrent threads do not interleave.
 */
void wc_log(wc_log_level_t level, const char *component, const char *msg, const char *fields, ...);

#endif
