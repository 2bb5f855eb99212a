/* SPDX-License-Identifier: Apache-2.0 */
/* nexmark_inproc: in-process Nexmark benchmark driver (docs/internals/nexmark-bench.md).
 *
 *   nexmark_inproc SPEC.json EVENTS [QUERY]
 *
 * Compiles SPEC with dp_pipe (opts.blackhole: outputs are not encoded), maps
 * the generator's field paths onto the pipe's slots, generates EVENTS events
 * with dp_nexmark and pushes each one as a row into every input reading topic
 * "nexmark" (partition = event number mod the input's partition count), ticks
 * every 1000 events with the wall clock, and prints one JSON line:
 * {query, events, seconds, events_per_s, cpu_s, events_per_cpu_s, records_out,
 *  windows_fired}. Generation is included in the timings. Exit 0 ok, 1 error,
 * 64 usage. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_nexmark.h"
#include "dp_pipe.h"
#include "wc_spec.h"

#define TICK_EVERY 1000

static double clock_s(clockid_t id)
{
    struct timespec t;

    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void emit_count(void *ctx, const dp_pipe_out_t *out)
{
    (void)out;
    (*(uint64_t *)ctx)++;
}

int main(int argc, char **argv)
{
    json_error_t je;
    json_t *spec;
    char err[512];
    uint64_t emitted = 0;
    dp_pipe_opts_t o = {.emit = emit_count, .ctx = &emitted, .blackhole = true};
    dp_pipe_t *p = NULL;
    int slot_of[DP_NEXMARK_NPATHS];
    uint32_t ins[64], nins = 0;
    const int32_t *parts[64];
    uint32_t nparts[64];
    dp_nexmark_cfg_t cfg;
    dp_nexmark_gen_t gen;
    dp_nexmark_event_t ev;
    dp_val_t *slots;
    uint32_t nslots;
    uint64_t events, n = 0;
    int64_t now;
    const char *query;
    double t0, c0, secs, cpu;
    int rc = 0;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: nexmark_inproc SPEC.json EVENTS [QUERY]\n");
        return 64;
    }
    events = strtoull(argv[2], NULL, 10);
    spec = json_load_file(argv[1], 0, &je);
    if (spec == NULL) {
        fprintf(stderr, "nexmark_inproc: %s: %s\n", argv[1], je.text);
        return 1;
    }
    if (wc_spec_validate(spec, err, sizeof(err)) != 0 ||
        dp_pipe_new(spec, &o, &p, err, sizeof(err)) != 0) {
        fprintf(stderr, "nexmark_inproc: %s: %s\n", argv[1], err);
        json_decref(spec);
        return 1;
    }
    query = argc == 4 ? argv[3] : json_string_value(json_object_get(spec, "name"));
    for (uint32_t i = 0; i < dp_pipe_inputs(p) && nins < 64; i++) {
        if (strcmp(dp_pipe_input_topic(p, i), "nexmark") != 0)
            continue;
        dp_pipe_input_partitions(p, i, &parts[nins], &nparts[nins]);
        if (nparts[nins] == 0) {
            fprintf(stderr, "nexmark_inproc: input %u needs partitions.count\n", i);
            rc = 1;
            goto out;
        }
        ins[nins++] = i;
    }
    if (nins == 0) {
        fprintf(stderr, "nexmark_inproc: no input reads topic \"nexmark\"\n");
        rc = 1;
        goto out;
    }
    for (unsigned k = 0; k < DP_NEXMARK_NPATHS; k++)
        slot_of[k] = dp_pipe_slot(p, dp_nexmark_paths[k]);
    nslots = dp_pipe_nslots(p);
    slots = calloc(nslots + 1, sizeof(*slots));
    if (slots == NULL) {
        rc = 1;
        goto out;
    }
    dp_nexmark_cfg_init(&cfg);
    cfg.events = events;
    if (dp_nexmark_gen_init(&gen, &cfg, 0, 1) != 0) {
        free(slots);
        rc = 1;
        goto out;
    }
    t0 = clock_s(CLOCK_MONOTONIC);
    c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    now = wall_ms();
    while (dp_nexmark_gen_next(&gen, &ev)) {
        if (n % TICK_EVERY == 0) {
            now = wall_ms();
            dp_pipe_tick(p, now);
        }
        for (uint32_t j = 0; j < nins; j++) {
            dp_row_t row = {.slots = slots, .nslots = nslots, .offset = (int64_t)n};

            /* Refilled per input: an operator may edit the row it is handed. */
            dp_nexmark_fill_slots(&ev, slot_of, slots);
            dp_nexmark_row_times(&ev, &row);
            row.input = (uint16_t)ins[j];
            row.partition = parts[j][n % nparts[j]];
            if (dp_pipe_push_row(p, ins[j], &row, now) != 0) {
                /* -ENOBUFS: state bound reached; tick and retry once. */
                now = wall_ms();
                dp_pipe_tick(p, now);
                if (dp_pipe_push_row(p, ins[j], &row, now) != 0) {
                    fprintf(stderr, "nexmark_inproc: push refused at event %" PRIu64 "\n", n);
                    rc = 1;
                    break;
                }
            }
        }
        if (rc != 0)
            break;
        n++;
    }
    dp_pipe_tick(p, wall_ms());
    secs = clock_s(CLOCK_MONOTONIC) - t0;
    cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    {
        const dp_pipe_stats_t *st = dp_pipe_stats(p);

        printf("{\"query\":\"%s\",\"events\":%" PRIu64 ",\"seconds\":%.6f,\"events_per_s\":%.0f,"
               "\"cpu_s\":%.6f,\"events_per_cpu_s\":%.0f,\"records_out\":%" PRIu64
               ",\"windows_fired\":%" PRIu64 ",\"joins_emitted\":%" PRIu64
               ",\"dead_letters\":%" PRIu64 ",\"late_dropped\":%" PRIu64 "}\n",
               query ? query : "?", n, secs, secs > 0 ? (double)n / secs : 0.0, cpu,
               cpu > 0 ? (double)n / cpu : 0.0, st->records_out, st->windows_fired,
               st->joins_emitted, st->dead_letters, st->late_dropped);
    }
    free(slots);
out:
    dp_pipe_free(p);
    json_decref(spec);
    return rc;
}
