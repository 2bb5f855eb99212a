/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_out: JSON-line and human formatting of the supervisor's output. */
#include "wctl_out.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void iso_ts(long long ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    char tmp[80];

    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int)(ms % 1000));
    size_t n = strlen(tmp);

    if (len == 0)
        return;
    if (n >= len)
        n = len - 1;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
}

/* Appends `s` (n bytes) at *o; 0 or -1 when full. */
static int add(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
    if (*o + n + 2 > outlen)
        return -1;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
    return 0;
}

static size_t human(const char *proc, json_t *obj, long long now, char *out, size_t outlen)
{
    const char *ts = json_string_value(json_object_get(obj, "ts"));
    char nowbuf[40];
    const char *level = json_string_value(json_object_get(obj, "level"));
    const char *msg = json_string_value(json_object_get(obj, "msg"));
    const char *key;
    json_t *v;
    char head[128];
    size_t o = 0;
    int n;

    /* A child's own non-ISO "ts" (Python's epoch float): show our clock. */
    if (ts == NULL || strlen(ts) < 23) {
        iso_ts(now, nowbuf, sizeof(nowbuf));
        ts = nowbuf;
    }
    /* "2026-11-24T10:00:00.123Z" -> "10:00:00.123" */
    n = snprintf(head, sizeof(head), "%.12s %-18s %-5s ",
                 ts && strlen(ts) >= 23 ? ts + 11 : (ts ? ts : ""), proc, level ? level : "info");
    if (n < 0 || add(out, outlen, &o, head, strlen(head)) != 0)
        return 0;
    if (msg != NULL && add(out, outlen, &o, msg, strlen(msg)) != 0)
        return 0;
    json_object_foreach (obj, key, v) {
        char *vs;
        int r;

        if (strcmp(key, "ts") == 0 || strcmp(key, "level") == 0 || strcmp(key, "msg") == 0 ||
            strcmp(key, "proc") == 0)
            continue;
        vs = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        r = add(out, outlen, &o, " ", 1) || add(out, outlen, &o, key, strlen(key)) ||
            add(out, outlen, &o, "=", 1) ||
            (json_is_string(v) ? add(out, outlen, &o, json_string_value(v), json_string_length(v))
                               : add(out, outlen, &o, vs ? vs : "?", vs ? strlen(vs) : 1));
        free(vs);
        if (r != 0)
            return 0;
    }
    if (add(out, outlen, &o, "\n", 1) != 0)
        return 0;
    return o;
}

size_t wctl_out_format(wctl_out_mode_t mode, const char *proc, const char *line, size_t len,
                       long long now, char *out, size_t outlen)
{
    json_t *in = NULL, *obj = NULL;
    const char *key;
    json_t *v;
    size_t n = 0;
    char ts[40];

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    if (len > 0 && line[0] == '{')
        in = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    /* "proc" first, then the child's own members (its own "proc", if any,
     * is kept as "child_proc" rather than lost). */
    obj = json_object();
    if (obj == NULL || json_object_set_new(obj, "proc", json_string(proc)) != 0)
        goto out;
    if (json_is_object(in)) {
        if (json_object_get(in, "ts") == NULL) {
            iso_ts(now, ts, sizeof(ts));
            json_object_set_new(obj, "ts", json_string(ts));
        }
        json_object_foreach (in, key, v)
            json_object_set(obj, strcmp(key, "proc") == 0 ? "child_proc" : key, v);
    } else {
        iso_ts(now, ts, sizeof(ts));
        json_object_set_new(obj, "ts", json_string(ts));
        json_object_set_new(obj, "level", json_string("info"));
        v = json_stringn(line, len);
        if (v == NULL) {
            /* Not UTF-8: keep the ASCII, mark the rest. */
            char *copy = malloc(len + 1);

            if (copy == NULL)
                goto out;
            for (size_t i = 0; i < len; i++)
                copy[i] = (unsigned char)line[i] < 0x80 && line[i] != '\0' ? line[i] : '?';
            v = json_stringn(copy, len);
            free(copy);
        }
        json_object_set_new(obj, "msg", v);
    }
    if (mode == WCTL_OUT_HUMAN) {
        n = human(proc, obj, now, out, outlen);
    } else {
        n = json_dumpb(obj, out, outlen > 2 ? outlen - 2 : 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (n == 0 || n + 2 > outlen) {
            n = 0;
            goto out;
        }
        out[n++] = '\n';
        out[n] = '\0';
    }
out:
    json_decref(in);
    json_decref(obj);
    return n;
}

void wctl_out_line(FILE *f, wctl_out_mode_t mode, const char *proc, const char *line, size_t len)
{
    char buf[70000];
    size_t n = wctl_out_format(mode, proc, line, len, now_ms(), buf, sizeof(buf));

    if (n == 0) {
        /* Too long to re-encode: say so rather than drop it silently. */
        n = (size_t)snprintf(buf, sizeof(buf),
                             "{\"proc\":\"%s\",\"level\":\"warn\",\"msg\":\"(a %zu-byte line was "
                             "too long to show)\"}\n",
                             proc, len);
        if (n >= sizeof(buf))
            n = sizeof(buf) - 1;
    }
    fwrite(buf, 1, n, f);
    fflush(f);
}

void wctl_out_event(FILE *f, wctl_out_mode_t mode, const char *level, const char *msg,
                    const char *fields, ...)
{
    json_t *obj = NULL, *extra = NULL;
    char ts[40];
    char *s;
    va_list ap;

    if (fields != NULL) {
        va_start(ap, fields);
        extra = json_vpack_ex(NULL, 0, fields, ap);
        va_end(ap);
    }
    iso_ts(now_ms(), ts, sizeof(ts));
    obj = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", level, "msg", msg);
    if (obj == NULL)
        goto out;
    if (json_is_object(extra))
        json_object_update(obj, extra);
    s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s != NULL) {
        wctl_out_line(f, mode, "weirctl", s, strlen(s));
        free(s);
    }
out:
    json_decref(obj);
    json_decref(extra);
}
