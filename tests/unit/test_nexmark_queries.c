/* Description: Nexmark query specs (tests/bench/nexmark): each compiles; q2 and q7 results match a
 * naive recomputation over the same generated events. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_nexmark.h"
#include "dp_pipe.h"
#include "wc_spec.h"

#define NEVENTS 20000
#define WIN_MS 10000
#define MAX_WINDOWS 16

/* Every emitted record: output index and parsed payload. */
typedef struct cap {
    json_t *recs; /* array of {"out": n, "payload": ...} */
} cap_t;

static void cap_emit(void *ctx, const dp_pipe_out_t *o)
{
    cap_t *c = ctx;
    json_error_t je;
    json_t *pv = o->payload ? json_loadb(o->payload, o->payload_len, JSON_DECODE_ANY, &je) : NULL;

    assert_non_null(pv);
    json_array_append_new(c->recs,
                          json_pack("{s:I,s:o}", "out", (json_int_t)o->output, "payload", pv));
}

static json_t *spec_load(const char *q)
{
    const char *src = getenv("WEIR_SOURCE_DIR");
    char path[1024];
    json_error_t je;
    char err[512];
    json_t *s;

    if (src != NULL)
        snprintf(path, sizeof(path), "%s/tests/bench/nexmark/%s.json", src, q);
    else
        snprintf(path, sizeof(path), "bench/nexmark/%s.json", q); /* cwd: tests/ */
    s = json_load_file(path, 0, &je);
    if (s == NULL)
        fail_msg("%s: %s", path, je.text);
    if (wc_spec_validate(s, err, sizeof(err)) != 0)
        fail_msg("%s: invalid: %s", path, err);
    return s;
}

static dp_pipe_t *pipe_new(const json_t *spec, cap_t *c)
{
    dp_pipe_opts_t o = {.emit = cap_emit, .ctx = c};
    dp_pipe_t *p = NULL;
    char err[512];

    if (dp_pipe_new(spec, &o, &p, err, sizeof(err)) != 0)
        fail_msg("dp_pipe_new: %s", err);
    return p;
}

/* Runs `cfg`'s first NEVENTS events through input 0 as nexmark_inproc does
 * (partition = n mod the input's partitions, a tick every 1000 events). */
static void run(dp_pipe_t *p, const dp_nexmark_cfg_t *cfg)
{
    int slot_of[DP_NEXMARK_NPATHS];
    const int32_t *parts;
    uint32_t nparts;
    dp_nexmark_gen_t gen;
    dp_nexmark_event_t ev;
    uint32_t nslots = dp_pipe_nslots(p);
    dp_val_t *slots = calloc(nslots + 1, sizeof(*slots));
    int64_t now = 1000;

    assert_non_null(slots);
    dp_pipe_input_partitions(p, 0, &parts, &nparts);
    assert_true(nparts > 0);
    for (unsigned k = 0; k < DP_NEXMARK_NPATHS; k++)
        slot_of[k] = dp_pipe_slot(p, dp_nexmark_paths[k]);
    assert_int_equal(dp_nexmark_gen_init(&gen, cfg, 0, 1), 0);
    for (uint64_t n = 0; dp_nexmark_gen_next(&gen, &ev); n++) {
        dp_row_t row = {.slots = slots, .nslots = nslots, .offset = (int64_t)n};

        if (n % 1000 == 0)
            dp_pipe_tick(p, ++now);
        dp_nexmark_fill_slots(&ev, slot_of, slots);
        dp_nexmark_row_times(&ev, &row);
        row.partition = parts[n % nparts];
        assert_int_equal(dp_pipe_push_row(p, 0, &row, now), 0);
    }
    dp_pipe_tick(p, ++now);
    free(slots);
}

static void test_specs_compile(void **state)
{
    static const char *const qs[] = {"q0", "q1", "q2", "q5", "q7", "q8"};

    (void)state;
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        cap_t c = {.recs = json_array()};
        json_t *spec = spec_load(qs[i]);
        dp_pipe_t *p = pipe_new(spec, &c);

        assert_true(dp_pipe_slot(p, "payload.event_type") >= 0);
        dp_pipe_free(p);
        json_decref(spec);
        json_decref(c.recs);
    }
}

/* q2: one output per bid with auction % 123 == 0, in order, with its auction and price. */
static void test_q2(void **state)
{
    cap_t c = {.recs = json_array()};
    json_t *spec = spec_load("q2");
    dp_pipe_t *p = pipe_new(spec, &c);
    dp_nexmark_cfg_t cfg;
    dp_nexmark_event_t ev;
    size_t want = 0;

    (void)state;
    dp_nexmark_cfg_init(&cfg);
    cfg.events = NEVENTS;
    run(p, &cfg);
    for (uint64_t n = 0; n < NEVENTS; n++) {
        json_t *pl;

        dp_nexmark_event(&cfg, n, &ev);
        if (ev.type != DP_NEXMARK_BID || ev.u.bid.auction % 123 != 0)
            continue;
        assert_true(want < json_array_size(c.recs));
        pl = json_object_get(json_array_get(c.recs, want), "payload");
        assert_int_equal(json_integer_value(json_object_get(pl, "auction")), ev.u.bid.auction);
        assert_int_equal(json_integer_value(json_object_get(pl, "price")), ev.u.bid.price);
        assert_int_equal(json_object_size(pl), 2);
        want++;
    }
    assert_true(want > 0);
    assert_int_equal(json_array_size(c.recs), want);
    assert_int_equal(dp_pipe_stats(p)->dead_letters, 0);
    dp_pipe_free(p);
    json_decref(spec);
    json_decref(c.recs);
}

/* q7: per fired 10 s window, the max price equals a naive max, and the join-back emits exactly
 * the bids of that window with that price. */
static void test_q7(void **state)
{
    cap_t c = {.recs = json_array()};
    json_t *spec = spec_load("q7");
    dp_pipe_t *p = pipe_new(spec, &c);
    dp_nexmark_cfg_t cfg;
    dp_nexmark_event_t ev;
    int64_t maxp[MAX_WINDOWS], nmax[MAX_WINDOWS], got_join[MAX_WINDOWS] = {0};
    bool got_max[MAX_WINDOWS] = {false};
    int64_t base, wm;
    size_t fired = 0, i;
    json_t *r;

    (void)state;
    dp_nexmark_cfg_init(&cfg);
    cfg.events = NEVENTS;
    cfg.events_per_sec = 500; /* 40 s of event time: windows 0-2 close, 3 stays open */
    base = cfg.base_time_ms - cfg.base_time_ms % WIN_MS;
    run(p, &cfg);
    for (i = 0; i < MAX_WINDOWS; i++) {
        maxp[i] = -1;
        nmax[i] = 0;
    }
    for (uint64_t n = 0; n < NEVENTS; n++) {
        size_t w;

        dp_nexmark_event(&cfg, n, &ev);
        if (ev.type != DP_NEXMARK_BID)
            continue;
        w = (size_t)((ev.u.bid.date_time - base) / WIN_MS);
        assert_true(w < MAX_WINDOWS);
        if (ev.u.bid.price > maxp[w]) {
            maxp[w] = ev.u.bid.price;
            nmax[w] = 0;
        }
        if (ev.u.bid.price == maxp[w])
            nmax[w]++;
    }
    json_array_foreach (c.recs, i, r) {
        json_t *pl = json_object_get(r, "payload");
        json_int_t out = json_integer_value(json_object_get(r, "out"));

        if (out == 1) { /* q7max: the window result */
            int64_t start = json_integer_value(json_object_get(pl, "windowStart"));
            size_t w = (size_t)((start - base) / WIN_MS);

            assert_true(w < MAX_WINDOWS);
            assert_false(got_max[w]);
            got_max[w] = true;
            assert_int_equal((int64_t)json_number_value(json_object_get(pl, "maxprice")), maxp[w]);
        } else { /* q7: a bid carrying its window's max price */
            int64_t t = json_integer_value(json_object_get(pl, "dateTime"));
            size_t w = (size_t)((t - base) / WIN_MS);

            assert_int_equal(out, 0);
            assert_true(w < MAX_WINDOWS);
            assert_int_equal(json_integer_value(json_object_get(pl, "price")), maxp[w]);
            assert_non_null(json_object_get(pl, "auction"));
            assert_non_null(json_object_get(pl, "bidder"));
            got_join[w]++;
        }
    }
    wm = dp_pipe_watermark(p);
    for (i = 0; i < MAX_WINDOWS; i++) {
        int64_t end = base + (int64_t)(i + 1) * WIN_MS;

        if (maxp[i] < 0)
            continue;
        if (end <= wm) { /* closed: must have fired */
            assert_true(got_max[i]);
            assert_int_equal(got_join[i], nmax[i]);
            fired++;
        } else {
            assert_false(got_max[i]);
        }
    }
    assert_true(fired >= 3);
    assert_int_equal(dp_pipe_stats(p)->dead_letters, 0);
    dp_pipe_free(p);
    json_decref(spec);
    json_decref(c.recs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_specs_compile),
        cmocka_unit_test(test_q2),
        cmocka_unit_test(test_q7),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
