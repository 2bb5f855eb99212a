/* SPDX-License-Identifier: Apache-2.0 */
/* dp_nexmark: the Nexmark benchmark's event generator (Person, Auction, Bid;
 * docs/internals/nexmark.md). Event n is a pure function of (cfg, n), as in
 * the Beam/Flink generator, so k generators can split one stream (generator
 * i makes events i, i+k, ...) and a run is reproducible. Events come out as
 * structs, as row slots for the in-process engine (no JSON), or as JSON in
 * the shape Flink's Nexmark uses. Nothing is allocated per event. */
#ifndef DP_NEXMARK_H
#define DP_NEXMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_val.h"

/** 2015-07-15T00:00:00Z, Beam's Nexmark base time: the default first event time. */
#define DP_NEXMARK_BASE_TIME_MS INT64_C(1436918400000)
/** First person and auction ids (Beam's FIRST_PERSON_ID, FIRST_AUCTION_ID). */
#define DP_NEXMARK_FIRST_PERSON_ID 1000
#define DP_NEXMARK_FIRST_AUCTION_ID 1000
/** Auctions have categories FIRST_CATEGORY_ID .. FIRST_CATEGORY_ID + 4. */
#define DP_NEXMARK_FIRST_CATEGORY_ID 10
#define DP_NEXMARK_NUM_CATEGORIES 5
/** Event mix: id mod 50 picks 1 person, 3 auctions, 46 bids. */
#define DP_NEXMARK_PERSON_PROPORTION 1
#define DP_NEXMARK_AUCTION_PROPORTION 3
#define DP_NEXMARK_BID_PROPORTION 46
#define DP_NEXMARK_TOTAL_PROPORTION 50
/** Upper bound on every avg_*_bytes setting, so `extra` fits the padding table. */
#define DP_NEXMARK_AVG_BYTES_MAX 3000
/** Upper bound on num_active_people and num_in_flight_auctions. */
#define DP_NEXMARK_POPULATION_MAX 100000000u
/** Longest `extra` string (1.2 x DP_NEXMARK_AVG_BYTES_MAX, rounded up). */
#define DP_NEXMARK_EXTRA_MAX 3600
/** Inline string storage of one event (email address, credit card). */
#define DP_NEXMARK_BUF 128
/** Longest JSON event with the largest allowed sizes (a safe buffer size). */
#define DP_NEXMARK_JSON_MAX 4608
/** Longest key: a decimal int64. */
#define DP_NEXMARK_KEY_MAX 24

/** Generator configuration; start from dp_nexmark_cfg_init. */
typedef struct dp_nexmark_cfg {
    uint64_t first_event_id;         /**< id of event 0 (ids drive type and id spaces) */
    uint64_t events;                 /**< events in the stream; 0 = unbounded */
    uint64_t events_per_sec;         /**< event-time rate: event n is at base + n*1000/rate ms */
    int64_t base_time_ms;            /**< event time of event 0 (default DP_NEXMARK_BASE_TIME_MS) */
    uint32_t num_active_people;      /**< people bids and auctions choose from (1000) */
    uint32_t num_in_flight_auctions; /**< auctions bids choose from (100) */
    uint32_t hot_auction_ratio;      /**< P(bid on the hot auction) = 1 - 1/ratio (2) */
    uint32_t hot_seller_ratio;       /**< P(auction by a hot seller) = 1 - 1/ratio (4) */
    uint32_t hot_bidder_ratio;       /**< P(bid by a hot bidder) = 1 - 1/ratio (4) */
    uint32_t avg_person_bytes;       /**< average person size, reached with `extra` (200) */
    uint32_t avg_auction_bytes;      /**< average auction size (500) */
    uint32_t avg_bid_bytes;          /**< average bid size (100) */
    /**
     * Out-of-orderness: each event's time is moved back by a delay drawn
     * uniformly from [0, max_delay_ms], so no event is more than max_delay_ms
     * behind the latest event time before it. 0 (default): in order.
     */
    uint32_t max_delay_ms; /**< at most 86400000 (a day) */
    uint64_t seed;         /**< mixes into every event's random stream (0) */
} dp_nexmark_cfg_t;

/** Event types; the values are the JSON `event_type`. */
typedef enum dp_nexmark_type {
    DP_NEXMARK_PERSON = 0,
    DP_NEXMARK_AUCTION = 1,
    DP_NEXMARK_BID = 2,
} dp_nexmark_type_t;

/** A string field: `len` bytes, not NUL-terminated, borrowed (see dp_nexmark_event_t). */
typedef struct dp_nexmark_str {
    const char *s;
    uint32_t len;
} dp_nexmark_str_t;

/** Person. Times are epoch milliseconds. */
typedef struct dp_nexmark_person {
    int64_t id;
    dp_nexmark_str_t name;
    dp_nexmark_str_t email_address;
    dp_nexmark_str_t credit_card;
    dp_nexmark_str_t city;
    dp_nexmark_str_t state;
    int64_t date_time;
    dp_nexmark_str_t extra;
} dp_nexmark_person_t;

/** Auction. Prices are in cents. */
typedef struct dp_nexmark_auction {
    int64_t id;
    dp_nexmark_str_t item_name;
    dp_nexmark_str_t description;
    int64_t initial_bid;
    int64_t reserve;
    int64_t date_time;
    int64_t expires;
    int64_t seller; /**< a person id */
    int64_t category;
    dp_nexmark_str_t extra;
} dp_nexmark_auction_t;

/** Bid. */
typedef struct dp_nexmark_bid {
    int64_t auction; /**< an auction id */
    int64_t bidder;  /**< a person id */
    int64_t price;   /**< cents */
    dp_nexmark_str_t channel;
    dp_nexmark_str_t url;
    int64_t date_time;
    dp_nexmark_str_t extra;
} dp_nexmark_bid_t;

/**
 * One event. String fields point into `buf` or into the module's constant
 * tables, so they live as long as the event and the event must not be copied
 * by assignment (a copy would point into the original's `buf`).
 */
typedef struct dp_nexmark_event {
    dp_nexmark_type_t type;
    uint64_t n;  /**< event number (0-based position in the stream) */
    uint64_t id; /**< event id: cfg.first_event_id + n */
    union {
        dp_nexmark_person_t person;
        dp_nexmark_auction_t auction;
        dp_nexmark_bid_t bid;
    } u;
    char buf[DP_NEXMARK_BUF];
} dp_nexmark_event_t;

/** Fills `cfg` with the Beam/Flink Nexmark defaults (rate 10000/s, fixed base time). */
void dp_nexmark_cfg_init(dp_nexmark_cfg_t *cfg);

/**
 * Returns 0 when `cfg` is usable, -EINVAL when a rate, count or ratio is 0,
 * or a size, population or delay exceeds its bound (DP_NEXMARK_*_MAX, a day).
 */
int dp_nexmark_cfg_check(const dp_nexmark_cfg_t *cfg);

/**
 * Generates event number `n` into `out`: a pure function of (*cfg, n). `cfg`
 * must pass dp_nexmark_cfg_check; `cfg->events` is not consulted. Thread-safe
 * (the first call in a process builds the constant tables, about 3 ms).
 */
void dp_nexmark_event(const dp_nexmark_cfg_t *cfg, uint64_t n, dp_nexmark_event_t *out);

/** The in-order event time of event n (before any out-of-order delay). */
int64_t dp_nexmark_time_ms(const dp_nexmark_cfg_t *cfg, uint64_t n);

/** Iterator over one share of a stream; embedded by the caller, nothing to free. */
typedef struct dp_nexmark_gen {
    dp_nexmark_cfg_t cfg;
    uint64_t next;   /**< next event number */
    uint64_t stride; /**< number of generators sharing the stream */
} dp_nexmark_gen_t;

/**
 * Starts generator `index` of `count` over the stream `cfg` describes: it
 * yields events index, index + count, ... below cfg->events (forever when 0).
 * Returns 0, or -EINVAL for a bad cfg or index >= count.
 */
int dp_nexmark_gen_init(dp_nexmark_gen_t *gen, const dp_nexmark_cfg_t *cfg, uint64_t index,
                        uint64_t count);

/** Writes the generator's next event to `out`; false when its share is done. */
bool dp_nexmark_gen_next(dp_nexmark_gen_t *gen, dp_nexmark_event_t *out);

/* ---- row form ---- */

/** Indexes into dp_nexmark_paths. */
enum {
    DP_NEXMARK_P_EVENT_TYPE = 0,
    DP_NEXMARK_P_PERSON_ID,
    DP_NEXMARK_P_PERSON_NAME,
    DP_NEXMARK_P_PERSON_EMAIL,
    DP_NEXMARK_P_PERSON_CARD,
    DP_NEXMARK_P_PERSON_CITY,
    DP_NEXMARK_P_PERSON_STATE,
    DP_NEXMARK_P_PERSON_TIME,
    DP_NEXMARK_P_PERSON_EXTRA,
    DP_NEXMARK_P_AUCTION_ID,
    DP_NEXMARK_P_AUCTION_ITEM,
    DP_NEXMARK_P_AUCTION_DESC,
    DP_NEXMARK_P_AUCTION_INITIAL,
    DP_NEXMARK_P_AUCTION_RESERVE,
    DP_NEXMARK_P_AUCTION_TIME,
    DP_NEXMARK_P_AUCTION_EXPIRES,
    DP_NEXMARK_P_AUCTION_SELLER,
    DP_NEXMARK_P_AUCTION_CATEGORY,
    DP_NEXMARK_P_AUCTION_EXTRA,
    DP_NEXMARK_P_BID_AUCTION,
    DP_NEXMARK_P_BID_BIDDER,
    DP_NEXMARK_P_BID_PRICE,
    DP_NEXMARK_P_BID_CHANNEL,
    DP_NEXMARK_P_BID_URL,
    DP_NEXMARK_P_BID_TIME,
    DP_NEXMARK_P_BID_EXTRA,
    DP_NEXMARK_NPATHS
};

/** Field paths of the JSON shape ("payload.bid.price", ...), by DP_NEXMARK_P_*. */
extern const char *const dp_nexmark_paths[];
/** Number of entries in dp_nexmark_paths (DP_NEXMARK_NPATHS). */
extern const unsigned dp_nexmark_npaths;

/** Index of `path` (`len` bytes) in dp_nexmark_paths, or -1. */
int dp_nexmark_path_index(const char *path, size_t len);

/**
 * Decodes `e` into row slots: for each path i with slot_of_path[i] >= 0,
 * slots[slot_of_path[i]] gets the field's value (INT or STR borrowing from
 * `e`), or MISSING when the field belongs to another event type.
 * `slot_of_path` has dp_nexmark_npaths entries.
 */
void dp_nexmark_fill_slots(const dp_nexmark_event_t *e, const int *slot_of_path, dp_val_t *slots);

/** The event's dateTime (epoch ms). */
int64_t dp_nexmark_date_time(const dp_nexmark_event_t *e);

/** Sets row->event_ms and row->ts_ms to the event's dateTime. */
void dp_nexmark_row_times(const dp_nexmark_event_t *e, dp_row_t *row);

/* ---- JSON form ---- */

/**
 * Writes `e` as one JSON object, `{"event_type":N,"person":{..}|null,
 * "auction":{..}|null,"bid":{..}|null}`, and returns its length. Like
 * snprintf: the output is complete and NUL-terminated only when the return
 * value is below `cap`; otherwise call again with a larger buffer.
 */
size_t dp_nexmark_json(const dp_nexmark_event_t *e, char *buf, size_t cap);

/**
 * The record key as an integer: bid.auction, auction.id or person.id (so a
 * stream keyed by it is partitioned like the queries group it).
 */
int64_t dp_nexmark_key_id(const dp_nexmark_event_t *e);

/**
 * Writes dp_nexmark_key_id in decimal to `buf` (no NUL) and returns its
 * length; `cap` must be at least DP_NEXMARK_KEY_MAX.
 */
size_t dp_nexmark_key(const dp_nexmark_event_t *e, char *buf, size_t cap);

#endif
