/* Description: Nexmark generator: determinism, splitting, event mix, id spaces, hot items, event
 * time, JSON and row forms agree; prints ns/event for both forms. */
/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_nexmark.h"

static dp_nexmark_cfg_t default_cfg(void)
{
    dp_nexmark_cfg_t cfg;
    dp_nexmark_cfg_init(&cfg);
    return cfg;
}

static size_t json_of(const dp_nexmark_cfg_t *cfg, uint64_t n, char *buf, size_t cap)
{
    dp_nexmark_event_t e;
    dp_nexmark_event(cfg, n, &e);
    size_t len = dp_nexmark_json(&e, buf, cap);
    assert_true(len < cap);
    return len;
}

static void test_cfg_check(void **state)
{
    dp_nexmark_cfg_t cfg = default_cfg();
    dp_nexmark_gen_t gen;

    assert_int_equal(dp_nexmark_cfg_check(&cfg), 0);
    assert_int_equal(cfg.hot_auction_ratio, 2);
    assert_int_equal(cfg.hot_seller_ratio, 4);
    assert_int_equal(cfg.hot_bidder_ratio, 4);
    assert_int_equal(cfg.num_active_people, 1000);
    assert_int_equal(cfg.num_in_flight_auctions, 100);
    cfg.events_per_sec = 0;
    assert_int_equal(dp_nexmark_cfg_check(&cfg), -EINVAL);
    assert_int_equal(dp_nexmark_gen_init(&gen, &cfg, 0, 1), -EINVAL);
    cfg = default_cfg();
    cfg.hot_bidder_ratio = 0;
    assert_int_equal(dp_nexmark_cfg_check(&cfg), -EINVAL);
    cfg = default_cfg();
    cfg.avg_auction_bytes = DP_NEXMARK_AVG_BYTES_MAX + 1;
    assert_int_equal(dp_nexmark_cfg_check(&cfg), -EINVAL);
    cfg = default_cfg();
    cfg.num_active_people = DP_NEXMARK_POPULATION_MAX + 1;
    assert_int_equal(dp_nexmark_cfg_check(&cfg), -EINVAL);
    cfg = default_cfg();
    cfg.max_delay_ms = 86400001;
    assert_int_equal(dp_nexmark_cfg_check(&cfg), -EINVAL);
    cfg = default_cfg();
    assert_int_equal(dp_nexmark_gen_init(&gen, &cfg, 3, 3), -EINVAL);
    assert_int_equal(dp_nexmark_gen_init(&gen, &cfg, 0, 0), -EINVAL);
    assert_int_equal(dp_nexmark_gen_init(&gen, &cfg, 2, 3), 0);
}

static void test_deterministic(void **state)
{
    dp_nexmark_cfg_t cfg = default_cfg();
    char a[DP_NEXMARK_JSON_MAX], b[DP_NEXMARK_JSON_MAX];

    for (uint64_t n = 0; n < 2000; n += 7) {
        size_t la = json_of(&cfg, n, a, sizeof a);
        /* Generating other events in between changes nothing. */
        json_of(&cfg, n + 1, b, sizeof b);
        size_t lb = json_of(&cfg, n, b, sizeof b);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la);
    }
    /* The seed changes the stream; the id spaces stay. */
    dp_nexmark_cfg_t seeded = cfg;
    seeded.seed = 42;
    dp_nexmark_event_t e1, e2;
    dp_nexmark_event(&cfg, 60, &e1);
    dp_nexmark_event(&seeded, 60, &e2);
    assert_int_equal(e1.type, DP_NEXMARK_BID);
    assert_int_equal(e2.type, DP_NEXMARK_BID);
    size_t la = dp_nexmark_json(&e1, a, sizeof a), lb = dp_nexmark_json(&e2, b, sizeof b);
    assert_false(la == lb && memcmp(a, b, la) == 0);
}

/* Generators 0..k-1 of k together yield exactly the single generator's stream. */
static void test_split(void **state)
{
    enum { EVENTS = 3001, K = 4 };
    dp_nexmark_cfg_t cfg = default_cfg();
    dp_nexmark_gen_t whole, part[K];
    dp_nexmark_event_t e, f;
    char a[DP_NEXMARK_JSON_MAX], b[DP_NEXMARK_JSON_MAX];
    uint64_t n = 0;

    cfg.events = EVENTS;
    cfg.first_event_id = 77;
    cfg.max_delay_ms = 500;
    assert_int_equal(dp_nexmark_gen_init(&whole, &cfg, 0, 1), 0);
    for (int i = 0; i < K; i++)
        assert_int_equal(dp_nexmark_gen_init(&part[i], &cfg, (uint64_t)i, K), 0);
    while (dp_nexmark_gen_next(&whole, &e)) {
        assert_int_equal(e.n, n);
        assert_int_equal(e.id, 77 + n);
        assert_true(dp_nexmark_gen_next(&part[n % K], &f));
        assert_int_equal(f.n, n);
        size_t la = dp_nexmark_json(&e, a, sizeof a), lb = dp_nexmark_json(&f, b, sizeof b);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la);
        n++;
    }
    assert_int_equal(n, EVENTS);
    for (int i = 0; i < K; i++)
        assert_false(dp_nexmark_gen_next(&part[i], &f));
}

static void test_mix(void **state)
{
    dp_nexmark_cfg_t cfg = default_cfg();
    dp_nexmark_event_t e;
    int count[3];

    for (uint64_t base = 0; base < 5000; base += 50) {
        memset(count, 0, sizeof count);
        for (uint64_t n = base; n < base + 50; n++) {
            dp_nexmark_event(&cfg, n, &e);
            count[e.type]++;
        }
        assert_int_equal(count[DP_NEXMARK_PERSON], 1);
        assert_int_equal(count[DP_NEXMARK_AUCTION], 3);
        assert_int_equal(count[DP_NEXMARK_BID], 46);
    }
    /* The type is chosen by id mod 50: person, then 3 auctions, then bids. */
    dp_nexmark_event(&cfg, 0, &e);
    assert_int_equal(e.type, DP_NEXMARK_PERSON);
    assert_int_equal(e.u.person.id, DP_NEXMARK_FIRST_PERSON_ID);
    dp_nexmark_event(&cfg, 1, &e);
    assert_int_equal(e.type, DP_NEXMARK_AUCTION);
    assert_int_equal(e.u.auction.id, DP_NEXMARK_FIRST_AUCTION_ID);
    dp_nexmark_event(&cfg, 3, &e);
    assert_int_equal(e.type, DP_NEXMARK_AUCTION);
    dp_nexmark_event(&cfg, 4, &e);
    assert_int_equal(e.type, DP_NEXMARK_BID);
    cfg.first_event_id = 49;
    dp_nexmark_event(&cfg, 1, &e); /* id 50 */
    assert_int_equal(e.type, DP_NEXMARK_PERSON);
    assert_int_equal(e.u.person.id, DP_NEXMARK_FIRST_PERSON_ID + 1);
}

/* Person and auction ids count up by one; every reference names an id that
 * exists or is at most the generator's lead (10) ahead of the newest. */
static void test_id_spaces(void **state)
{
    enum { EVENTS = 200000 };
    dp_nexmark_cfg_t cfg = default_cfg();
    dp_nexmark_event_t e;
    int64_t last_person = DP_NEXMARK_FIRST_PERSON_ID - 1;
    int64_t last_auction = DP_NEXMARK_FIRST_AUCTION_ID - 1;
    uint64_t bids = 0, bids_existing = 0, categories[DP_NEXMARK_NUM_CATEGORIES] = {0};

    for (uint64_t n = 0; n < EVENTS; n++) {
        dp_nexmark_event(&cfg, n, &e);
        switch (e.type) {
        case DP_NEXMARK_PERSON:
            assert_int_equal(e.u.person.id, last_person + 1);
            last_person = e.u.person.id;
            assert_int_equal(e.u.person.credit_card.len, 19);
            break;
        case DP_NEXMARK_AUCTION: {
            const dp_nexmark_auction_t *a = &e.u.auction;
            assert_int_equal(a->id, last_auction + 1);
            last_auction = a->id;
            assert_true(a->seller >= DP_NEXMARK_FIRST_PERSON_ID);
            assert_true(a->seller <= last_person + 10);
            assert_true(a->category >= DP_NEXMARK_FIRST_CATEGORY_ID);
            assert_true(a->category < DP_NEXMARK_FIRST_CATEGORY_ID + DP_NEXMARK_NUM_CATEGORIES);
            categories[a->category - DP_NEXMARK_FIRST_CATEGORY_ID]++;
            assert_true(a->initial_bid >= 100 && a->initial_bid <= 100000000);
            assert_true(a->reserve > a->initial_bid);
            assert_true(a->expires > a->date_time);
            assert_true(a->item_name.len < 20 && a->description.len < 100);
            break;
        }
        case DP_NEXMARK_BID: {
            const dp_nexmark_bid_t *b = &e.u.bid;
            bids++;
            assert_true(b->auction >= DP_NEXMARK_FIRST_AUCTION_ID);
            assert_true(b->auction <= last_auction + 10);
            /* Not older than the in-flight window, unless it is the hot one. */
            assert_true(b->auction >= last_auction - 100 ||
                        (b->auction - DP_NEXMARK_FIRST_AUCTION_ID) % 100 == 0);
            assert_true(b->bidder >= DP_NEXMARK_FIRST_PERSON_ID);
            assert_true(b->bidder <= last_person + 10);
            assert_true(b->bidder > last_person - 1000 - 10 ||
                        (b->bidder - DP_NEXMARK_FIRST_PERSON_ID) % 100 == 1);
            assert_true(b->price >= 100 && b->price <= 100000000);
            assert_true(b->channel.len > 0 && b->url.len > 24);
            assert_memory_equal(b->url.s, "https://www.nexmark.com/", 24);
            if (b->auction <= last_auction && b->bidder <= last_person)
                bids_existing++;
            break;
        }
        }
    }
    assert_int_equal(last_person - DP_NEXMARK_FIRST_PERSON_ID + 1, EVENTS / 50);
    assert_int_equal(last_auction - DP_NEXMARK_FIRST_AUCTION_ID + 1, EVENTS / 50 * 3);
    assert_true(bids_existing > bids * 90 / 100);
    for (int c = 0; c < DP_NEXMARK_NUM_CATEGORIES; c++)
        assert_true(categories[c] > EVENTS / 50 * 3 / 5 / 2);
}

/* Hot auctions, sellers and bidders take the shares the ratios promise. */
static void test_hot_skew(void **state)
{
    enum { EVENTS = 100000 };
    dp_nexmark_cfg_t cfg = default_cfg();
    dp_nexmark_event_t e;
    uint64_t bids = 0, hot_auction = 0, hot_bidder = 0, auctions = 0, hot_seller = 0;
    uint64_t hot_channel = 0;
    static uint32_t per_auction[EVENTS / 50 * 3 + 16];
    uint32_t top = 0;

    memset(per_auction, 0, sizeof per_auction);
    for (uint64_t n = 0; n < EVENTS; n++) {
        dp_nexmark_event(&cfg, n, &e);
        if (e.type == DP_NEXMARK_BID) {
            int64_t a = e.u.bid.auction - DP_NEXMARK_FIRST_AUCTION_ID;
            bids++;
            hot_auction += a % 100 == 0;
            hot_bidder += (e.u.bid.bidder - DP_NEXMARK_FIRST_PERSON_ID) % 100 == 1;
            hot_channel += memcmp(e.u.bid.channel.s, "channel-", 8) != 0;
            per_auction[a]++;
            if (per_auction[a] > top)
                top = per_auction[a];
        } else if (e.type == DP_NEXMARK_AUCTION) {
            auctions++;
            hot_seller += (e.u.auction.seller - DP_NEXMARK_FIRST_PERSON_ID) % 100 == 0;
        }
    }
    /* P(hot) = 1 - 1/ratio, plus the ~1% a uniform pick lands on the hot id. */
    assert_true(hot_auction > bids * 48 / 100 && hot_auction < bids * 54 / 100);
    assert_true(hot_bidder > bids * 73 / 100 && hot_bidder < bids * 78 / 100);
    assert_true(hot_seller > auctions * 72 / 100 && hot_seller < auctions * 79 / 100);
    assert_true(hot_channel > bids * 47 / 100 && hot_channel < bids * 53 / 100);
    /* A hot auction gets ~half of its batch's ~1500 bids; a cold one ~10. */
    assert_true(top > 500);
}

static void test_event_time(void **state)
{
    dp_nexmark_cfg_t cfg = default_cfg();
    dp_nexmark_event_t e, d;
    int64_t prev = INT64_MIN, max_seen = INT64_MIN;
    uint64_t out_of_order = 0;

    cfg.events_per_sec = 3000;
    assert_int_equal(dp_nexmark_time_ms(&cfg, 0), DP_NEXMARK_BASE_TIME_MS);
    assert_int_equal(dp_nexmark_time_ms(&cfg, 3000), DP_NEXMARK_BASE_TIME_MS + 1000);
    assert_int_equal(dp_nexmark_time_ms(&cfg, 4), DP_NEXMARK_BASE_TIME_MS + 1); /* 1.33 ms */
    assert_int_equal(dp_nexmark_time_ms(&cfg, UINT64_C(3000) * 86400 * 365),
                     DP_NEXMARK_BASE_TIME_MS + INT64_C(86400000) * 365);
    for (uint64_t n = 0; n < 20000; n++) {
        dp_nexmark_event(&cfg, n, &e);
        int64_t t = dp_nexmark_date_time(&e);
        assert_int_equal(t, dp_nexmark_time_ms(&cfg, n));
        assert_true(t >= prev);
        prev = t;
    }

    cfg.base_time_ms = 1000;
    dp_nexmark_event(&cfg, 0, &e);
    assert_int_equal(dp_nexmark_date_time(&e), 1000);

    /* Bounded out-of-orderness: behind the newest time by at most the bound,
     * and only dateTime (and expires with it) changes. */
    dp_nexmark_cfg_t late = cfg;
    late.max_delay_ms = 250;
    char a[DP_NEXMARK_JSON_MAX], b[DP_NEXMARK_JSON_MAX];
    for (uint64_t n = 0; n < 20000; n++) {
        dp_nexmark_event(&late, n, &e);
        dp_nexmark_event(&cfg, n, &d);
        int64_t t = dp_nexmark_date_time(&e), t0 = dp_nexmark_time_ms(&cfg, n);
        assert_true(t <= t0 && t >= t0 - 250);
        if (max_seen != INT64_MIN) {
            assert_true(t >= max_seen - 250);
            out_of_order += t < max_seen;
        }
        if (t > max_seen)
            max_seen = t;
        if (e.type == DP_NEXMARK_BID) {
            e.u.bid.date_time = d.u.bid.date_time;
            size_t la = dp_nexmark_json(&e, a, sizeof a), lb = dp_nexmark_json(&d, b, sizeof b);
            assert_int_equal(la, lb);
            assert_memory_equal(a, b, la);
        }
    }
    assert_true(out_of_order > 10000);
}

/* Follows "payload.x.y" in a parsed event; NULL when a step is absent or null. */
static json_t *walk(json_t *root, const char *path)
{
    char tmp[128];
    json_t *cur = root;

    assert_true(strncmp(path, "payload.", 8) == 0);
    snprintf(tmp, sizeof tmp, "%s", path + 8);
    for (char *save = NULL, *tok = strtok_r(tmp, ".", &save); tok != NULL;
         tok = strtok_r(NULL, ".", &save)) {
        if (!json_is_object(cur))
            return NULL;
        cur = json_object_get(cur, tok);
        if (cur == NULL || json_is_null(cur))
            return NULL;
    }
    return cur;
}

/* JSON parses, has the Flink shape, and every path's slot equals the JSON value. */
static void test_json_and_slots(void **state)
{
    dp_nexmark_cfg_t cfg = default_cfg();
    dp_nexmark_event_t e;
    char buf[DP_NEXMARK_JSON_MAX];
    int slot_of_path[DP_NEXMARK_NPATHS];
    dp_val_t slots[DP_NEXMARK_NPATHS + 3];
    json_error_t err;

    assert_int_equal(dp_nexmark_npaths, DP_NEXMARK_NPATHS);
    /* Map paths to slots in reverse, leaving slot 0 unused. */
    for (unsigned p = 0; p < DP_NEXMARK_NPATHS; p++)
        slot_of_path[p] = (int)(DP_NEXMARK_NPATHS - p);
    cfg.max_delay_ms = 100;
    for (uint64_t n = 0; n < 5000; n++) {
        dp_nexmark_event(&cfg, n, &e);
        size_t len = dp_nexmark_json(&e, buf, sizeof buf);
        assert_true(len < sizeof buf);
        assert_int_equal(strlen(buf), len);
        json_t *root = json_loadb(buf, len, 0, &err);
        if (root == NULL)
            fail_msg("event %" PRIu64 ": %s: %s", n, err.text, buf);
        assert_int_equal(json_object_size(root), 4);
        assert_int_equal(json_integer_value(json_object_get(root, "event_type")), e.type);
        static const char *const objs[] = {"person", "auction", "bid"};
        for (int t = 0; t < 3; t++) {
            json_t *o = json_object_get(root, objs[t]);
            assert_non_null(o);
            assert_true(t == (int)e.type ? json_is_object(o) : json_is_null(o));
        }

        slots[0] = dp_val_err(DP_VERR_NONE);
        dp_nexmark_fill_slots(&e, slot_of_path, slots);
        assert_int_equal(slots[0].type, DP_VAL_ERR); /* untouched */
        for (unsigned p = 0; p < DP_NEXMARK_NPATHS; p++) {
            const dp_val_t *v = &slots[slot_of_path[p]];
            json_t *j = walk(root, dp_nexmark_paths[p]);
            if (j == NULL) {
                assert_int_equal(v->type, DP_VAL_MISSING);
            } else if (json_is_integer(j)) {
                assert_int_equal(v->type, DP_VAL_INT);
                assert_int_equal(v->u.i, json_integer_value(j));
            } else {
                assert_true(json_is_string(j));
                assert_int_equal(v->type, DP_VAL_STR);
                assert_int_equal(v->len, json_string_length(j));
                assert_memory_equal(v->u.s, json_string_value(j), v->len);
            }
        }
        /* Every object member is one of the paths. */
        json_t *o = json_object_get(root, e.type == DP_NEXMARK_PERSON    ? "person"
                                          : e.type == DP_NEXMARK_AUCTION ? "auction"
                                                                         : "bid");
        const char *k;
        json_t *val;
        json_object_foreach (o, k, val) {
            char path[96];
            snprintf(path, sizeof path, "payload.%s.%s",
                     e.type == DP_NEXMARK_PERSON    ? "person"
                     : e.type == DP_NEXMARK_AUCTION ? "auction"
                                                    : "bid",
                     k);
            assert_true(dp_nexmark_path_index(path, strlen(path)) >= 0);
        }
        json_decref(root);

        dp_row_t row;
        memset(&row, 0, sizeof row);
        dp_nexmark_row_times(&e, &row);
        assert_int_equal(row.event_ms, dp_nexmark_date_time(&e));
        assert_int_equal(row.ts_ms, row.event_ms);

        char key[DP_NEXMARK_KEY_MAX];
        char want[32];
        size_t kl = dp_nexmark_key(&e, key, sizeof key);
        int wl = snprintf(want, sizeof want, "%" PRId64, dp_nexmark_key_id(&e));
        assert_int_equal(kl, (size_t)wl);
        assert_memory_equal(key, want, kl);
        assert_int_equal(dp_nexmark_key_id(&e), e.type == DP_NEXMARK_BID       ? e.u.bid.auction
                                                : e.type == DP_NEXMARK_AUCTION ? e.u.auction.id
                                                                               : e.u.person.id);
    }

    assert_int_equal(dp_nexmark_path_index("payload.bid.price", 17), DP_NEXMARK_P_BID_PRICE);
    assert_int_equal(dp_nexmark_path_index("payload.bid.pric", 16), -1);
    assert_int_equal(dp_nexmark_path_index("payload.bid.price", 16), -1);
    assert_int_equal(dp_nexmark_path_index("payload.event_type", 18), DP_NEXMARK_P_EVENT_TYPE);
}

/* The snprintf contract, and escaping of bytes the generator never makes. */
static void test_json_edges(void **state)
{
    dp_nexmark_cfg_t cfg = default_cfg();
    dp_nexmark_event_t e;
    char full[DP_NEXMARK_JSON_MAX], small[64];
    json_error_t err;

    dp_nexmark_event(&cfg, 1, &e);
    size_t len = dp_nexmark_json(&e, full, sizeof full);
    assert_true(len > sizeof small);
    memset(small, 'Z', sizeof small);
    assert_int_equal(dp_nexmark_json(&e, small, sizeof small - 8), len);
    assert_memory_equal(small, full, sizeof small - 8);
    assert_int_equal(small[sizeof small - 8], 'Z'); /* nothing past cap */
    assert_int_equal(dp_nexmark_json(&e, NULL, 0), len);
    assert_int_equal(dp_nexmark_json(&e, full, len), len); /* no room for the NUL */
    assert_int_equal(dp_nexmark_json(&e, full, len + 1), len);
    assert_int_equal(full[len], '\0');

    static const char nasty[] = "a\"b\\c\n\t\x01\x1f\xc3\xa9/";
    dp_nexmark_event(&cfg, 4, &e);
    assert_int_equal(e.type, DP_NEXMARK_BID);
    e.u.bid.channel.s = nasty;
    e.u.bid.channel.len = sizeof nasty - 1;
    e.u.bid.bidder = INT64_MIN;
    e.u.bid.price = INT64_MAX;
    len = dp_nexmark_json(&e, full, sizeof full);
    json_t *root = json_loadb(full, len, 0, &err);
    if (root == NULL)
        fail_msg("%s: %s", err.text, full);
    json_t *bid = json_object_get(root, "bid");
    assert_int_equal(json_string_length(json_object_get(bid, "channel")), sizeof nasty - 1);
    assert_memory_equal(json_string_value(json_object_get(bid, "channel")), nasty,
                        sizeof nasty - 1);
    assert_int_equal(json_integer_value(json_object_get(bid, "bidder")), INT64_MIN);
    assert_int_equal(json_integer_value(json_object_get(bid, "price")), INT64_MAX);
    json_decref(root);

    /* Every byte value at every position of an 8-byte word, so both the
     * word-at-a-time scan and the byte loop see each one. */
    char str[40];
    for (int c = 1; c < 256; c++) {
        for (size_t pos = 0; pos < 24; pos++) {
            memset(str, 'x', sizeof str);
            str[pos] = (char)c;
            size_t slen = pos + 2 + pos % 8; /* the hit and 0..7 bytes after it */
            if (c >= 0x80) {                 /* keep it valid UTF-8 for the parser */
                str[pos] = (char)0xc3;
                str[pos + 1] = (char)(0x80 | (c & 0x3f));
            }
            e.u.bid.channel.s = str;
            e.u.bid.channel.len = (uint32_t)slen;
            len = dp_nexmark_json(&e, full, sizeof full);
            root = json_loadb(full, len, 0, &err);
            if (root == NULL)
                fail_msg("byte %d at %zu: %s: %s", c, pos, err.text, full);
            bid = json_object_get(root, "bid");
            assert_int_equal(json_string_length(json_object_get(bid, "channel")), slen);
            assert_memory_equal(json_string_value(json_object_get(bid, "channel")), str, slen);
            json_decref(root);
        }
    }
}

/* Average sizes come out near the configured ones; the largest settings fit
 * DP_NEXMARK_JSON_MAX. */
static void test_sizes(void **state)
{
    dp_nexmark_cfg_t cfg = default_cfg();
    dp_nexmark_event_t e;
    char buf[DP_NEXMARK_JSON_MAX];
    uint64_t bytes[3] = {0}, count[3] = {0};

    for (uint64_t n = 0; n < 50000; n++) {
        dp_nexmark_event(&cfg, n, &e);
        bytes[e.type] += dp_nexmark_json(&e, buf, sizeof buf);
        count[e.type]++;
    }
    /* JSON adds key names (~150-200 bytes) to the model's byte counts. */
    uint64_t avg_person = bytes[0] / count[0], avg_auction = bytes[1] / count[1];
    uint64_t avg_bid = bytes[2] / count[2];
    print_message("avg JSON bytes: person %" PRIu64 " auction %" PRIu64 " bid %" PRIu64 "\n",
                  avg_person, avg_auction, avg_bid);
    assert_true(avg_person > 200 && avg_person < 450);
    assert_true(avg_auction > 500 && avg_auction < 800);
    assert_true(avg_bid > 100 && avg_bid < 350);

    cfg.avg_person_bytes = cfg.avg_auction_bytes = cfg.avg_bid_bytes = DP_NEXMARK_AVG_BYTES_MAX;
    for (uint64_t n = 0; n < 20000; n++) {
        dp_nexmark_event(&cfg, n, &e);
        size_t len = dp_nexmark_json(&e, buf, sizeof buf);
        assert_true(len < sizeof buf);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Not asserted: sanitizer builds are several times slower. */
static void test_speed(void **state)
{
    enum { ROWS = 2000000, JSONS = 1000000 };
    dp_nexmark_cfg_t cfg = default_cfg();
    dp_nexmark_gen_t gen;
    dp_nexmark_event_t e;
    int slot_of_path[DP_NEXMARK_NPATHS];
    dp_val_t slots[8];
    dp_row_t row;
    char buf[DP_NEXMARK_JSON_MAX];
    uint64_t sink = 0;

    /* What q5/q7 read: event type, bid auction, bid price, dateTime. */
    for (unsigned p = 0; p < DP_NEXMARK_NPATHS; p++)
        slot_of_path[p] = -1;
    slot_of_path[DP_NEXMARK_P_EVENT_TYPE] = 0;
    slot_of_path[DP_NEXMARK_P_BID_AUCTION] = 1;
    slot_of_path[DP_NEXMARK_P_BID_PRICE] = 2;
    slot_of_path[DP_NEXMARK_P_BID_TIME] = 3;
    memset(&row, 0, sizeof row);
    row.slots = slots;

    cfg.events = ROWS;
    assert_int_equal(dp_nexmark_gen_init(&gen, &cfg, 0, 1), 0);
    double t0 = now_s();
    while (dp_nexmark_gen_next(&gen, &e)) {
        dp_nexmark_fill_slots(&e, slot_of_path, slots);
        dp_nexmark_row_times(&e, &row);
        sink += (uint64_t)slots[0].u.i + (uint64_t)row.event_ms;
    }
    double row_ns = (now_s() - t0) * 1e9 / ROWS;

    uint64_t bytes = 0;
    t0 = now_s();
    for (uint64_t n = 0; n < JSONS; n++) {
        dp_nexmark_event(&cfg, n, &e);
        bytes += dp_nexmark_json(&e, buf, sizeof buf);
    }
    double json_ns = (now_s() - t0) * 1e9 / JSONS;
    print_message("nexmark speed: row form %.1f ns/event (%.2f M events/s), "
                  "JSON form %.1f ns/event (%.0f bytes avg) [%" PRIu64 "]\n",
                  row_ns, 1e3 / row_ns, json_ns, (double)bytes / JSONS, sink & 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cfg_check),  cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_split),      cmocka_unit_test(test_mix),
        cmocka_unit_test(test_id_spaces),  cmocka_unit_test(test_hot_skew),
        cmocka_unit_test(test_event_time), cmocka_unit_test(test_json_and_slots),
        cmocka_unit_test(test_json_edges), cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_speed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
