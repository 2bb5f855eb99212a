/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_out: the multiplexed output of `weirctl run`. Every line a child
 * writes becomes one JSON line with a "proc" member naming the child (a
 * JSON object line keeps its members; any other line becomes "msg"), or,
 * in human mode, "HH:MM:SS proc  level msg key=value...". */
#ifndef WCTL_OUT_H
#define WCTL_OUT_H

#include <stddef.h>
#include <stdio.h>

/** Output modes. */
typedef enum {
    WCTL_OUT_JSON = 0,
    WCTL_OUT_HUMAN = 1,
} wctl_out_mode_t;

/**
 * Formats one line (`len` bytes, no newline) of child `proc` into `out`
 * (NUL-terminated, newline-ended) and returns its length, or 0 when `out`
 * is too small (then nothing useful is in it). `now_ms` (epoch ms) stamps
 * lines that carry no "ts" of their own. Pure.
 */
size_t wctl_out_format(wctl_out_mode_t mode, const char *proc, const char *line, size_t len,
                       long long now_ms, char *out, size_t outlen);

/** Formats and writes one line to `f` (one fwrite), stamped with the current time. */
void wctl_out_line(FILE *f, wctl_out_mode_t mode, const char *proc, const char *line, size_t len);

/**
 * weirctl's own event: a JSON object with "level", "msg" and the members of
 * `fields` (a jansson pack format for an object, or NULL), written as
 * wctl_out_line with proc "weirctl".
 */
void wctl_out_event(FILE *f, wctl_out_mode_t mode, const char *level, const char *msg,
                    const char *fields, ...);

#endif
