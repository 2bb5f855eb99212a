/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-lines logger. Formatting goes through jansson so that any string a
 * caller passes (topic names, error text from peers) is escaped correctly. */
#include "wc_log.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Atomic int log_level = WC_LOG_INFO;
static FILE *_Atomic log_stream;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void wc_log_set_level(wc_log_level_t level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

int wc_log_parse_level(const char *s, wc_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (wc_log_level_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

void wc_log_init_from_env(void)
{
    const char *v = getenv("WEIR_LOG_LEVEL");
    wc_log_level_t level;

    if (v != NULL && wc_log_parse_level(v, &level) == 0)
        wc_log_set_level(level);
}

void wc_log_set_stream(FILE *f)
{
    atomic_store(&log_stream, f);
}

void wc_log(wc_log_level_t level, const char *component, const char *msg, const char *fields, ...)
{
    json_t *line = NULL;
    char *text = NULL;
    char ts[40];
    struct timespec now;
    struct tm tm;
    FILE *f;

    if ((int)level < atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts) - 6, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + strlen(ts), 6, ".%03dZ", (int)(now.tv_nsec / 1000000));

    line = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level", level_names[level], "component",
                     component, "msg", msg);
    if (line == NULL)
        goto out;
    if (fields != NULL) {
        json_error_t jerr;
        json_t *extra;
        va_list ap;

        va_start(ap, fields);
        extra = json_vpack_ex(&jerr, 0, fields, ap);
        va_end(ap);
        if (extra == NULL)
            json_object_set_new(line, "log_error", json_string(jerr.text));
        else
            json_object_update_missing(line, extra);
        json_decref(extra);
    }
    text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL)
        goto out;
    {
        size_t n = strlen(text);

        text[n] = '\n';
        f = atomic_load(&log_stream);
        if (f == NULL)
            f = stderr;
        fwrite(text, 1, n + 1, f);
        text[n] = '\0';
        fflush(f);
    }
out:
    free(text);
    json_decref(line);
}
