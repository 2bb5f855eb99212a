/* SPDX-License-Identifier: Apache-2.0 */
/* dp_nexmark: the Nexmark event generator. The id spaces, hot items, prices,
 * auction lengths and size padding follow Beam's/Flink's NexmarkGenerator
 * (PersonGenerator, AuctionGenerator, BidGenerator); the random numbers come
 * from a splitmix64 stream seeded per event, and long random text is sliced
 * from constant tables built once, which keeps an event near 40 ns.
 * Self-contained on purpose (libc and libm only): tests/tools/nexmark_gen.c
 * compiles this file directly. See docs/internals/nexmark.md. */
#include "dp_nexmark.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

/* Beam: bids and auctions may name up to this many people or auctions past
 * the newest one, so some references arrive before their target. */
#define PERSON_ID_LEAD 10
#define AUCTION_ID_LEAD 10
/* Beam: the hot auction is the first of each batch of 100 auctions; the hot
 * seller the first and the hot bidder the second of each batch of 100 people
 * (so hot sellers and hot bidders do not collide). */
#define HOT_AUCTION_BATCH 100
#define HOT_SELLER_BATCH 100
#define HOT_BIDDER_BATCH 100
/* Beam: half of the bids come from one of four hot channels, the rest from
 * "channel-N" with N below CHANNELS_NUMBER. */
#define HOT_CHANNELS_RATIO 2
#define CHANNELS_NUMBER 10000
/* Beam's nextString: 3 .. max-1 characters, one in 13 the special char. */
#define MIN_STRING_LENGTH 3
#define SPECIAL_ONE_IN 13

/* Constant text the events borrow from: `extra` padding (letters) and
 * item names and descriptions (letters and spaces). */
#define LETTERS_LEN 8192
#define TEXT_LEN 4096
#define ITEM_NAME_MAX 20
#define DESCRIPTION_MAX 100

static const char *const first_names[] = {"Peter", "Paul",  "Luke",  "John",   "Saul",  "Vicky",
                                          "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
static const char *const last_names[] = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                         "Walton", "Smith",  "Jones",   "Noris"};
#define NFIRST (sizeof first_names / sizeof first_names[0])
#define NLAST (sizeof last_names / sizeof last_names[0])
static const char *const us_states[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
static const char *const us_cities[] = {"Phoenix",  "Los Angeles", "San Francisco", "Boise",
                                        "Portland", "Bend",        "Redmond",       "Seattle",
                                        "Kent",     "Cheyenne"};
static const char *const hot_channels[] = {"Google", "Facebook", "Baidu", "Apple"};
#define NHOT_CHANNELS 4
#define URL_PREFIX "https://www.nexmark.com/"
#define URL_SUFFIX "/item.htm?query=1"
#define URL_CHANNEL_ID "&channel_id="
/* Longest url: prefix, three 4-char parts, suffix, channel id of 10 digits. */
#define URL_MAX 80
/* Prices are 10^(6u) dollars: a table of 10^(6 i / PRICE_STEPS) with linear
 * interpolation between entries (relative error below 3e-5). */
#define PRICE_STEPS 1024

/* A bid channel and its url: a pure function of the channel number (Beam
 * caches them too), so bids borrow them instead of formatting each one. */
typedef struct {
    char url[URL_MAX];
    char name[14];
    uint8_t url_len;
    uint8_t name_len;
} channel_t;

/* Built once by tables_build, read-only afterwards. About 1 MiB of bss,
 * touched only by a process that generates events. */
static struct {
    char letters[LETTERS_LEN];
    char text[TEXT_LEN];
    char names[NFIRST * NLAST][16];
    uint8_t name_len[NFIRST * NLAST];
    double price[PRICE_STEPS + 1];
    channel_t hot[NHOT_CHANNELS];
    channel_t channels[CHANNELS_NUMBER];
} tables;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* ------------------------------------------------------------- random -- */

/* splitmix64, handing out each 64-bit output as two 32-bit halves: most
 * draws need only a small bound, and the mixing is the cost. */
typedef struct {
    uint64_t s;
    uint64_t spare;
    bool have_spare;
} rng_t;

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static inline void rng_seed(rng_t *r, uint64_t seed, uint64_t stream)
{
    r->s = mix64(stream ^ mix64(seed + UINT64_C(0x632be59bd9b4e019)));
    r->have_spare = false;
}

static inline uint64_t rng_next(rng_t *r)
{
    r->s += UINT64_C(0x9e3779b97f4a7c15);
    return mix64(r->s);
}

static inline uint32_t rng_u32(rng_t *r)
{
    if (r->have_spare) {
        r->have_spare = false;
        return (uint32_t)(r->spare >> 32);
    }
    r->spare = rng_next(r);
    r->have_spare = true;
    return (uint32_t)r->spare;
}

/* Uniform in [0, n) by multiply-shift (Lemire), n <= 2^32; the bias is below
 * n / 2^32, under 3e-6 for every bound but the tables' offsets. */
static inline uint32_t rng_below(rng_t *r, uint32_t n)
{
    return (uint32_t)(((uint64_t)rng_u32(r) * n) >> 32);
}

/* Uniform in [0, n) for a 64-bit bound. n == 0 yields 0. */
static inline uint64_t rng_below64(rng_t *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* Beam's nextString characters: one in 13 is `special`, the rest a-z. One
 * 16-bit draw picks among 13 * 26 outcomes, 26 of which mean `special`. */
static void rng_chars(rng_t *r, char *dst, size_t len, char special)
{
    uint64_t bits = 0;
    for (size_t i = 0; i < len; i++) {
        if ((i & 3) == 0)
            bits = rng_next(r);
        uint32_t v = (uint32_t)((bits & 0xffff) * (SPECIAL_ONE_IN * 26)) >> 16;
        bits >>= 16;
        dst[i] = v < 26 ? special : (char)('a' + v % 26);
    }
}

/* ------------------------------------------------------------- tables -- */

static size_t base_url(rng_t *r, char *dst)
{
    size_t n = 0;
    memcpy(dst, URL_PREFIX, sizeof URL_PREFIX - 1);
    n += sizeof URL_PREFIX - 1;
    for (int part = 0; part < 3; part++) {
        /* nextString(random, 5, '_'): 3 or 4 characters, never trimmed. */
        size_t len = MIN_STRING_LENGTH + rng_below(r, 5 - MIN_STRING_LENGTH);
        if (part > 0)
            dst[n++] = '/';
        rng_chars(r, dst + n, len, '_');
        n += len;
    }
    memcpy(dst + n, URL_SUFFIX, sizeof URL_SUFFIX - 1);
    n += sizeof URL_SUFFIX - 1;
    return n;
}

/* Decimal digits of v written backwards ending at `end`; returns the start. */
static char *u64_back(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return end;
}

/* Beam's getNextChannelAndUrl: "channel-N" and a url seeded by N alone. */
static void channel_build(uint32_t ch, channel_t *c)
{
    char tmp[24], *end = tmp + sizeof tmp, *d;
    rng_t r;

    memcpy(c->name, "channel-", 8);
    d = u64_back(end, ch);
    memcpy(c->name + 8, d, (size_t)(end - d));
    c->name_len = (uint8_t)(8 + (end - d));

    rng_seed(&r, 0, UINT64_C(0x6368616e6e656c00) + ch);
    size_t u = base_url(&r, c->url);
    if (rng_below(&r, 10) > 0) {
        /* Math.abs(Integer.reverse(ch)), without Java's INT_MIN wrap. */
        uint32_t rev = ch;
        rev = ((rev >> 1) & 0x55555555u) | ((rev & 0x55555555u) << 1);
        rev = ((rev >> 2) & 0x33333333u) | ((rev & 0x33333333u) << 2);
        rev = ((rev >> 4) & 0x0f0f0f0fu) | ((rev & 0x0f0f0f0fu) << 4);
        rev = __builtin_bswap32(rev);
        int64_t sv = (int64_t)(int32_t)rev;
        memcpy(c->url + u, URL_CHANNEL_ID, sizeof URL_CHANNEL_ID - 1);
        u += sizeof URL_CHANNEL_ID - 1;
        d = u64_back(end, (uint64_t)(sv < 0 ? -sv : sv));
        memcpy(c->url + u, d, (size_t)(end - d));
        u += (size_t)(end - d);
    }
    assert(u <= sizeof c->url);
    c->url_len = (uint8_t)u;
}

static void tables_build(void)
{
    rng_t r;

    rng_seed(&r, 0, UINT64_C(0x6e65786d61726b)); /* fixed: tables never vary */
    for (size_t i = 0; i < LETTERS_LEN; i++)
        tables.letters[i] = (char)('a' + rng_below(&r, 26));
    rng_chars(&r, tables.text, TEXT_LEN, ' ');
    for (size_t f = 0; f < NFIRST; f++) {
        for (size_t l = 0; l < NLAST; l++) {
            size_t i = f * NLAST + l, fl = strlen(first_names[f]), ll = strlen(last_names[l]);
            assert(fl + 1 + ll < sizeof tables.names[0]);
            memcpy(tables.names[i], first_names[f], fl);
            tables.names[i][fl] = ' ';
            memcpy(tables.names[i] + fl + 1, last_names[l], ll);
            tables.name_len[i] = (uint8_t)(fl + 1 + ll);
        }
    }
    for (size_t i = 0; i <= PRICE_STEPS; i++)
        tables.price[i] = pow(10.0, 6.0 * (double)i / PRICE_STEPS) * 100.0;
    for (size_t i = 0; i < NHOT_CHANNELS; i++) {
        channel_t *c = &tables.hot[i];
        c->name_len = (uint8_t)strlen(hot_channels[i]);
        memcpy(c->name, hot_channels[i], c->name_len);
        c->url_len = (uint8_t)base_url(&r, c->url);
    }
    for (uint32_t ch = 0; ch < CHANNELS_NUMBER; ch++)
        channel_build(ch, &tables.channels[ch]);
}

static void tables_init(void)
{
    int rc = pthread_once(&tables_once, tables_build);
    assert(rc == 0);
    (void)rc;
}

/* ------------------------------------------------------------- config -- */

void dp_nexmark_cfg_init(dp_nexmark_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->events_per_sec = 10000;
    cfg->base_time_ms = DP_NEXMARK_BASE_TIME_MS;
    cfg->num_active_people = 1000;
    cfg->num_in_flight_auctions = 100;
    cfg->hot_auction_ratio = 2;
    cfg->hot_seller_ratio = 4;
    cfg->hot_bidder_ratio = 4;
    cfg->avg_person_bytes = 200;
    cfg->avg_auction_bytes = 500;
    cfg->avg_bid_bytes = 100;
}

int dp_nexmark_cfg_check(const dp_nexmark_cfg_t *cfg)
{
    if (cfg->events_per_sec == 0 || cfg->num_active_people == 0 ||
        cfg->num_in_flight_auctions == 0 || cfg->hot_auction_ratio == 0 ||
        cfg->hot_seller_ratio == 0 || cfg->hot_bidder_ratio == 0)
        return -EINVAL;
    /* Bounds drawn from must fit 32 bits with the leads added. */
    if (cfg->num_active_people > DP_NEXMARK_POPULATION_MAX ||
        cfg->num_in_flight_auctions > DP_NEXMARK_POPULATION_MAX)
        return -EINVAL;
    if (cfg->avg_person_bytes > DP_NEXMARK_AVG_BYTES_MAX ||
        cfg->avg_auction_bytes > DP_NEXMARK_AVG_BYTES_MAX ||
        cfg->avg_bid_bytes > DP_NEXMARK_AVG_BYTES_MAX)
        return -EINVAL;
    /* Keep every id and time inside int64 for the first 2^62 events. */
    if (cfg->first_event_id > (UINT64_C(1) << 62) || cfg->max_delay_ms > 86400000u)
        return -EINVAL;
    return 0;
}

int64_t dp_nexmark_time_ms(const dp_nexmark_cfg_t *cfg, uint64_t n)
{
    uint64_t rate = cfg->events_per_sec, ms;
    /* floor(n * 1000 / rate), with one division while n * 1000 fits. */
    if (n <= UINT64_MAX / 1000)
        ms = n * 1000 / rate;
    else
        ms = n / rate * 1000 + n % rate * 1000 / rate;
    return cfg->base_time_ms + (int64_t)ms;
}

/* ---------------------------------------------------------- id spaces -- */

/* The newest person id (base 0) at event `id`: the person made by this
 * epoch of 50 events. Beam's lastBase0PersonId. */
static int64_t last_person(int64_t id)
{
    int64_t epoch = id / DP_NEXMARK_TOTAL_PROPORTION, off = id % DP_NEXMARK_TOTAL_PROPORTION;
    if (off >= DP_NEXMARK_PERSON_PROPORTION)
        off = DP_NEXMARK_PERSON_PROPORTION - 1;
    return epoch * DP_NEXMARK_PERSON_PROPORTION + off;
}

/* The newest auction id (base 0) at event `id`; -1 before the first. */
static int64_t last_auction(int64_t id)
{
    int64_t epoch = id / DP_NEXMARK_TOTAL_PROPORTION, off = id % DP_NEXMARK_TOTAL_PROPORTION;
    if (off < DP_NEXMARK_PERSON_PROPORTION) {
        epoch--;
        off = DP_NEXMARK_AUCTION_PROPORTION - 1;
    } else if (off >= DP_NEXMARK_PERSON_PROPORTION + DP_NEXMARK_AUCTION_PROPORTION) {
        off = DP_NEXMARK_AUCTION_PROPORTION - 1;
    } else {
        off -= DP_NEXMARK_PERSON_PROPORTION;
    }
    return epoch * DP_NEXMARK_AUCTION_PROPORTION + off;
}

/* A random active person, or one of the next PERSON_ID_LEAD. */
static int64_t next_person(const dp_nexmark_cfg_t *cfg, int64_t id, rng_t *r)
{
    int64_t people = last_person(id) + 1;
    int64_t active =
        people < (int64_t)cfg->num_active_people ? people : (int64_t)cfg->num_active_people;
    return people - active + (int64_t)rng_below(r, (uint32_t)(active + PERSON_ID_LEAD));
}

/* A random auction likely still in flight, or one of the next AUCTION_ID_LEAD. */
static int64_t next_auction(const dp_nexmark_cfg_t *cfg, int64_t id, rng_t *r)
{
    int64_t max = last_auction(id), min = max - (int64_t)cfg->num_in_flight_auctions;
    if (min < 0)
        min = 0;
    /* At most num_in_flight_auctions + 11: fits 32 bits. */
    return min + (int64_t)rng_below(r, (uint32_t)(max - min + 1 + AUCTION_ID_LEAD));
}

/* Beam's PriceGenerator: round(10^(6u) * 100) cents, 100 .. 100000000. */
static int64_t next_price(rng_t *r)
{
    uint32_t u = rng_u32(r);
    uint32_t i = u >> (32 - 10); /* PRICE_STEPS = 2^10 */
    double f = (double)(u & ((1u << 22) - 1)) * 0x1.0p-22;
    double v = tables.price[i] + (tables.price[i + 1] - tables.price[i]) * f;
    return (int64_t)(v + 0.5);
}

/* Beam's nextExtra: pads the event to about `avg` bytes, +-20%. */
static dp_nexmark_str_t next_extra(rng_t *r, uint32_t cur, uint32_t avg)
{
    dp_nexmark_str_t s = {tables.letters, 0};
    if (cur > avg)
        return s;
    uint32_t want = avg - cur;
    uint32_t delta = (uint32_t)((want + 2) / 5); /* round(want * 0.2) */
    uint32_t len = want - delta + (delta == 0 ? 0 : rng_below(r, 2u * delta));
    assert(len <= DP_NEXMARK_EXTRA_MAX);
    s.s = tables.letters + rng_below(r, LETTERS_LEN - len + 1);
    s.len = len;
    return s;
}

/* Beam's nextString(random, max): 3 .. max-1 characters, trimmed, taken
 * from the constant text. */
static dp_nexmark_str_t next_text(rng_t *r, uint32_t max)
{
    uint32_t len = MIN_STRING_LENGTH + rng_below(r, max - MIN_STRING_LENGTH);
    const char *p = tables.text + rng_below(r, TEXT_LEN - len + 1);
    while (len > 0 && p[0] == ' ') {
        p++;
        len--;
    }
    while (len > 0 && p[len - 1] == ' ')
        len--;
    dp_nexmark_str_t s = {p, len};
    return s;
}

/* Copies a trimmed nextString(max) into dst; returns its length. */
static size_t put_text(rng_t *r, char *dst, uint32_t max)
{
    dp_nexmark_str_t t = next_text(r, max);
    memcpy(dst, t.s, t.len);
    return t.len;
}

static dp_nexmark_str_t cstr(const char *s)
{
    dp_nexmark_str_t v = {s, (uint32_t)strlen(s)};
    return v;
}

/* ------------------------------------------------------------- events -- */

static void gen_person(const dp_nexmark_cfg_t *cfg, dp_nexmark_event_t *e, rng_t *r)
{
    dp_nexmark_person_t *p = &e->u.person;
    char *b = e->buf;
    size_t n = 0;

    p->id = last_person((int64_t)e->id) + DP_NEXMARK_FIRST_PERSON_ID;
    size_t ni = (size_t)rng_below(r, NFIRST) * NLAST + rng_below(r, NLAST);
    p->name.s = tables.names[ni];
    p->name.len = tables.name_len[ni];

    p->email_address.s = b + n;
    size_t start = n;
    n += put_text(r, b + n, 7);
    b[n++] = '@';
    n += put_text(r, b + n, 5);
    memcpy(b + n, ".com", 4);
    n += 4;
    p->email_address.len = (uint32_t)(n - start);

    p->credit_card.s = b + n;
    for (int g = 0; g < 4; g++) {
        uint32_t v = rng_below(r, 10000);
        if (g > 0)
            b[n++] = ' ';
        for (int d = 3; d >= 0; d--) {
            b[n + (size_t)d] = (char)('0' + v % 10);
            v /= 10;
        }
        n += 4;
    }
    p->credit_card.len = 19;
    p->city = cstr(us_cities[rng_below(r, sizeof us_cities / sizeof us_cities[0])]);
    p->state = cstr(us_states[rng_below(r, sizeof us_states / sizeof us_states[0])]);
    assert(n <= sizeof e->buf);

    uint32_t cur =
        8 + p->name.len + p->email_address.len + p->credit_card.len + p->city.len + p->state.len;
    p->extra = next_extra(r, cur, cfg->avg_person_bytes);
}

static void gen_auction(const dp_nexmark_cfg_t *cfg, dp_nexmark_event_t *e, rng_t *r)
{
    dp_nexmark_auction_t *a = &e->u.auction;
    int64_t id = (int64_t)e->id;

    a->id = last_auction(id) + DP_NEXMARK_FIRST_AUCTION_ID;
    if (rng_below(r, cfg->hot_seller_ratio) > 0)
        a->seller = last_person(id) / HOT_SELLER_BATCH * HOT_SELLER_BATCH;
    else
        a->seller = next_person(cfg, id, r);
    a->seller += DP_NEXMARK_FIRST_PERSON_ID;
    a->category = DP_NEXMARK_FIRST_CATEGORY_ID + (int64_t)rng_below(r, DP_NEXMARK_NUM_CATEGORIES);
    a->initial_bid = next_price(r);

    /* Beam's nextAuctionLengthMs: about twice the event time it takes to
     * open num_in_flight_auctions more auctions, so that many stay open. */
    uint64_t ahead = (uint64_t)cfg->num_in_flight_auctions * DP_NEXMARK_TOTAL_PROPORTION /
                     DP_NEXMARK_AUCTION_PROPORTION;
    int64_t horizon = dp_nexmark_time_ms(cfg, e->n + ahead) - dp_nexmark_time_ms(cfg, e->n);
    uint64_t span = horizon * 2 > 1 ? (uint64_t)horizon * 2 : 1;
    a->expires = a->date_time + 1 + (int64_t)rng_below64(r, span);

    a->item_name = next_text(r, ITEM_NAME_MAX);
    a->description = next_text(r, DESCRIPTION_MAX);
    a->reserve = a->initial_bid + next_price(r);
    uint32_t cur = 8 + a->item_name.len + a->description.len + 8 + 8 + 8 + 8 + 8;
    a->extra = next_extra(r, cur, cfg->avg_auction_bytes);
}

static void gen_bid(const dp_nexmark_cfg_t *cfg, dp_nexmark_event_t *e, rng_t *r)
{
    dp_nexmark_bid_t *b = &e->u.bid;
    int64_t id = (int64_t)e->id;

    if (rng_below(r, cfg->hot_auction_ratio) > 0)
        b->auction = last_auction(id) / HOT_AUCTION_BATCH * HOT_AUCTION_BATCH;
    else
        b->auction = next_auction(cfg, id, r);
    b->auction += DP_NEXMARK_FIRST_AUCTION_ID;
    if (rng_below(r, cfg->hot_bidder_ratio) > 0)
        b->bidder = last_person(id) / HOT_BIDDER_BATCH * HOT_BIDDER_BATCH + 1;
    else
        b->bidder = next_person(cfg, id, r);
    b->bidder += DP_NEXMARK_FIRST_PERSON_ID;
    b->price = next_price(r);

    const channel_t *c;
    if (rng_below(r, HOT_CHANNELS_RATIO) > 0)
        c = &tables.hot[rng_below(r, NHOT_CHANNELS)];
    else
        c = &tables.channels[rng_below(r, CHANNELS_NUMBER)];
    b->channel.s = c->name;
    b->channel.len = c->name_len;
    b->url.s = c->url;
    b->url.len = c->url_len;
    b->extra = next_extra(r, 8 + 8 + 8 + 8, cfg->avg_bid_bytes);
}

void dp_nexmark_event(const dp_nexmark_cfg_t *cfg, uint64_t n, dp_nexmark_event_t *out)
{
    rng_t r;
    int64_t t;

    assert(dp_nexmark_cfg_check(cfg) == 0);
    tables_init();
    out->n = n;
    out->id = cfg->first_event_id + n;
    /* Beam seeds a fresh Random with the event id: event n depends on
     * nothing else, which is what lets generators split the stream. */
    rng_seed(&r, cfg->seed, out->id);
    t = dp_nexmark_time_ms(cfg, n);
    if (cfg->max_delay_ms > 0) {
        /* Its own stream, so enabling the delay changes dateTime only. */
        rng_t dr;
        rng_seed(&dr, cfg->seed ^ UINT64_C(0x64656c6179), out->id);
        t -= (int64_t)rng_below(&dr, cfg->max_delay_ms + 1);
    }

    uint64_t rem = out->id % DP_NEXMARK_TOTAL_PROPORTION;
    if (rem < DP_NEXMARK_PERSON_PROPORTION) {
        out->type = DP_NEXMARK_PERSON;
        out->u.person.date_time = t;
        gen_person(cfg, out, &r);
    } else if (rem < DP_NEXMARK_PERSON_PROPORTION + DP_NEXMARK_AUCTION_PROPORTION) {
        out->type = DP_NEXMARK_AUCTION;
        out->u.auction.date_time = t;
        gen_auction(cfg, out, &r);
    } else {
        out->type = DP_NEXMARK_BID;
        out->u.bid.date_time = t;
        gen_bid(cfg, out, &r);
    }
}

int dp_nexmark_gen_init(dp_nexmark_gen_t *gen, const dp_nexmark_cfg_t *cfg, uint64_t index,
                        uint64_t count)
{
    if (dp_nexmark_cfg_check(cfg) != 0 || count == 0 || index >= count)
        return -EINVAL;
    gen->cfg = *cfg;
    gen->next = index;
    gen->stride = count;
    return 0;
}

bool dp_nexmark_gen_next(dp_nexmark_gen_t *gen, dp_nexmark_event_t *out)
{
    if (gen->cfg.events != 0 && gen->next >= gen->cfg.events)
        return false;
    dp_nexmark_event(&gen->cfg, gen->next, out);
    /* Saturate so an unbounded generator never wraps back to event 0. */
    gen->next = gen->next > UINT64_MAX - gen->stride ? UINT64_MAX : gen->next + gen->stride;
    return true;
}

/* ----------------------------------------------------------- row form -- */

const char *const dp_nexmark_paths[] = {
    [DP_NEXMARK_P_EVENT_TYPE] = "payload.event_type",
    [DP_NEXMARK_P_PERSON_ID] = "payload.person.id",
    [DP_NEXMARK_P_PERSON_NAME] = "payload.person.name",
    [DP_NEXMARK_P_PERSON_EMAIL] = "payload.person.emailAddress",
    [DP_NEXMARK_P_PERSON_CARD] = "payload.person.creditCard",
    [DP_NEXMARK_P_PERSON_CITY] = "payload.person.city",
    [DP_NEXMARK_P_PERSON_STATE] = "payload.person.state",
    [DP_NEXMARK_P_PERSON_TIME] = "payload.person.dateTime",
    [DP_NEXMARK_P_PERSON_EXTRA] = "payload.person.extra",
    [DP_NEXMARK_P_AUCTION_ID] = "payload.auction.id",
    [DP_NEXMARK_P_AUCTION_ITEM] = "payload.auction.itemName",
    [DP_NEXMARK_P_AUCTION_DESC] = "payload.auction.description",
    [DP_NEXMARK_P_AUCTION_INITIAL] = "payload.auction.initialBid",
    [DP_NEXMARK_P_AUCTION_RESERVE] = "payload.auction.reserve",
    [DP_NEXMARK_P_AUCTION_TIME] = "payload.auction.dateTime",
    [DP_NEXMARK_P_AUCTION_EXPIRES] = "payload.auction.expires",
    [DP_NEXMARK_P_AUCTION_SELLER] = "payload.auction.seller",
    [DP_NEXMARK_P_AUCTION_CATEGORY] = "payload.auction.category",
    [DP_NEXMARK_P_AUCTION_EXTRA] = "payload.auction.extra",
    [DP_NEXMARK_P_BID_AUCTION] = "payload.bid.auction",
    [DP_NEXMARK_P_BID_BIDDER] = "payload.bid.bidder",
    [DP_NEXMARK_P_BID_PRICE] = "payload.bid.price",
    [DP_NEXMARK_P_BID_CHANNEL] = "payload.bid.channel",
    [DP_NEXMARK_P_BID_URL] = "payload.bid.url",
    [DP_NEXMARK_P_BID_TIME] = "payload.bid.dateTime",
    [DP_NEXMARK_P_BID_EXTRA] = "payload.bid.extra",
};
const unsigned dp_nexmark_npaths = DP_NEXMARK_NPATHS;

_Static_assert(sizeof dp_nexmark_paths / sizeof dp_nexmark_paths[0] == DP_NEXMARK_NPATHS,
               "one path per DP_NEXMARK_P_* index");

int dp_nexmark_path_index(const char *path, size_t len)
{
    for (unsigned i = 0; i < DP_NEXMARK_NPATHS; i++) {
        if (strlen(dp_nexmark_paths[i]) == len && memcmp(dp_nexmark_paths[i], path, len) == 0)
            return (int)i;
    }
    return -1;
}

/* The slot setters store the fields one by one: building a dp_val_t in a
 * temporary and copying it makes the compiler read 16 bytes it has just
 * written as two 8-byte halves, a store-forwarding stall that costs more than
 * the rest of the function. */
static inline void put_int(const int *sop, dp_val_t *slots, unsigned p, int64_t v)
{
    if (sop[p] >= 0) {
        dp_val_t *d = &slots[sop[p]];
        d->type = DP_VAL_INT;
        d->len = 0;
        d->u.i = v;
    }
}

static inline void put_str(const int *sop, dp_val_t *slots, unsigned p, dp_nexmark_str_t v)
{
    if (sop[p] >= 0) {
        dp_val_t *d = &slots[sop[p]];
        d->type = DP_VAL_STR;
        d->len = v.len;
        d->u.s = v.s;
    }
}

/* MISSING for paths [from, to): the fields of another event type. */
static inline void put_missing(const int *sop, dp_val_t *slots, unsigned from, unsigned to)
{
    for (unsigned p = from; p < to; p++) {
        if (sop[p] >= 0) {
            dp_val_t *d = &slots[sop[p]];
            d->type = DP_VAL_MISSING;
            d->len = 0;
            d->u.i = 0;
        }
    }
}

/* Straight-line per type: the branches on slot_of_path go the same way for
 * every event of a pipeline, so they cost next to nothing. */
void dp_nexmark_fill_slots(const dp_nexmark_event_t *e, const int *slot_of_path, dp_val_t *slots)
{
    const int *sop = slot_of_path;

    put_int(sop, slots, DP_NEXMARK_P_EVENT_TYPE, (int64_t)e->type);
    switch (e->type) {
    case DP_NEXMARK_PERSON: {
        const dp_nexmark_person_t *p = &e->u.person;
        put_int(sop, slots, DP_NEXMARK_P_PERSON_ID, p->id);
        put_str(sop, slots, DP_NEXMARK_P_PERSON_NAME, p->name);
        put_str(sop, slots, DP_NEXMARK_P_PERSON_EMAIL, p->email_address);
        put_str(sop, slots, DP_NEXMARK_P_PERSON_CARD, p->credit_card);
        put_str(sop, slots, DP_NEXMARK_P_PERSON_CITY, p->city);
        put_str(sop, slots, DP_NEXMARK_P_PERSON_STATE, p->state);
        put_int(sop, slots, DP_NEXMARK_P_PERSON_TIME, p->date_time);
        put_str(sop, slots, DP_NEXMARK_P_PERSON_EXTRA, p->extra);
        put_missing(sop, slots, DP_NEXMARK_P_AUCTION_ID, DP_NEXMARK_NPATHS);
        break;
    }
    case DP_NEXMARK_AUCTION: {
        const dp_nexmark_auction_t *a = &e->u.auction;
        put_missing(sop, slots, DP_NEXMARK_P_PERSON_ID, DP_NEXMARK_P_AUCTION_ID);
        put_int(sop, slots, DP_NEXMARK_P_AUCTION_ID, a->id);
        put_str(sop, slots, DP_NEXMARK_P_AUCTION_ITEM, a->item_name);
        put_str(sop, slots, DP_NEXMARK_P_AUCTION_DESC, a->description);
        put_int(sop, slots, DP_NEXMARK_P_AUCTION_INITIAL, a->initial_bid);
        put_int(sop, slots, DP_NEXMARK_P_AUCTION_RESERVE, a->reserve);
        put_int(sop, slots, DP_NEXMARK_P_AUCTION_TIME, a->date_time);
        put_int(sop, slots, DP_NEXMARK_P_AUCTION_EXPIRES, a->expires);
        put_int(sop, slots, DP_NEXMARK_P_AUCTION_SELLER, a->seller);
        put_int(sop, slots, DP_NEXMARK_P_AUCTION_CATEGORY, a->category);
        put_str(sop, slots, DP_NEXMARK_P_AUCTION_EXTRA, a->extra);
        put_missing(sop, slots, DP_NEXMARK_P_BID_AUCTION, DP_NEXMARK_NPATHS);
        break;
    }
    case DP_NEXMARK_BID: {
        const dp_nexmark_bid_t *b = &e->u.bid;
        put_missing(sop, slots, DP_NEXMARK_P_PERSON_ID, DP_NEXMARK_P_BID_AUCTION);
        put_int(sop, slots, DP_NEXMARK_P_BID_AUCTION, b->auction);
        put_int(sop, slots, DP_NEXMARK_P_BID_BIDDER, b->bidder);
        put_int(sop, slots, DP_NEXMARK_P_BID_PRICE, b->price);
        put_str(sop, slots, DP_NEXMARK_P_BID_CHANNEL, b->channel);
        put_str(sop, slots, DP_NEXMARK_P_BID_URL, b->url);
        put_int(sop, slots, DP_NEXMARK_P_BID_TIME, b->date_time);
        put_str(sop, slots, DP_NEXMARK_P_BID_EXTRA, b->extra);
        break;
    }
    }
}

int64_t dp_nexmark_date_time(const dp_nexmark_event_t *e)
{
    switch (e->type) {
    case DP_NEXMARK_PERSON:
        return e->u.person.date_time;
    case DP_NEXMARK_AUCTION:
        return e->u.auction.date_time;
    case DP_NEXMARK_BID:
        break;
    }
    return e->u.bid.date_time;
}

void dp_nexmark_row_times(const dp_nexmark_event_t *e, dp_row_t *row)
{
    row->event_ms = dp_nexmark_date_time(e);
    row->ts_ms = row->event_ms;
}

int64_t dp_nexmark_key_id(const dp_nexmark_event_t *e)
{
    switch (e->type) {
    case DP_NEXMARK_PERSON:
        return e->u.person.id;
    case DP_NEXMARK_AUCTION:
        return e->u.auction.id;
    case DP_NEXMARK_BID:
        break;
    }
    return e->u.bid.auction;
}

/* ---------------------------------------------------------- JSON form -- */

/* Counts every byte, stores only those that fit (snprintf's contract). */
typedef struct {
    char *buf;
    size_t cap;
    size_t len;
} jw_t;

static inline void jw_put(jw_t *w, const char *s, size_t n)
{
    if (w->len + n <= w->cap)
        memcpy(w->buf + w->len, s, n);
    else if (w->len < w->cap)
        memcpy(w->buf + w->len, s, w->cap - w->len);
    w->len += n;
}

#define JW_LIT(w, lit) jw_put((w), (lit), sizeof(lit) - 1)

static void jw_int(jw_t *w, int64_t v)
{
    char tmp[24], *end = tmp + sizeof tmp, *p;
    /* Negate in unsigned arithmetic: INT64_MIN has no positive twin. */
    p = u64_back(end, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    if (v < 0)
        *--p = '-';
    jw_put(w, p, (size_t)(end - p));
}

/* Bytes that must be escaped inside a JSON string. */
static inline bool needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* True when one of the 8 bytes in x is below 0x20, '"' or '\\' (the
 * has-less-than and has-zero-byte tests of Bit Twiddling Hacks; exact as a
 * yes/no answer, and bytes >= 0x80 never count). */
static inline bool word_needs_escape(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"'), bs = x ^ (ONES * '\\');
    uint64_t t = ((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((bs - ONES) & ~bs);
    return (t & HIGHS) != 0;
}

/* Length of the prefix of p[0..len) that needs no escaping. */
static size_t plain_prefix(const unsigned char *p, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        if (word_needs_escape(x))
            break;
    }
    while (i < len && !needs_escape(p[i]))
        i++;
    return i;
}

static void jw_str(jw_t *w, dp_nexmark_str_t s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s.s;
    size_t i = 0, run = 0;

    JW_LIT(w, "\"");
    while (i < s.len) {
        /* Copy the longest run that needs no escaping in one go. */
        run = i + plain_prefix(p + i, s.len - i);
        jw_put(w, s.s + i, run - i);
        if (run == s.len)
            break;
        unsigned char c = p[run];
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
            break;
        }
        jw_put(w, esc, n);
        i = run + 1;
    }
    JW_LIT(w, "\"");
}

size_t dp_nexmark_json(const dp_nexmark_event_t *e, char *buf, size_t cap)
{
    jw_t w = {buf, cap, 0};

    switch (e->type) {
    case DP_NEXMARK_PERSON: {
        const dp_nexmark_person_t *p = &e->u.person;
        JW_LIT(&w, "{\"event_type\":0,\"person\":{\"id\":");
        jw_int(&w, p->id);
        JW_LIT(&w, ",\"name\":");
        jw_str(&w, p->name);
        JW_LIT(&w, ",\"emailAddress\":");
        jw_str(&w, p->email_address);
        JW_LIT(&w, ",\"creditCard\":");
        jw_str(&w, p->credit_card);
        JW_LIT(&w, ",\"city\":");
        jw_str(&w, p->city);
        JW_LIT(&w, ",\"state\":");
        jw_str(&w, p->state);
        JW_LIT(&w, ",\"dateTime\":");
        jw_int(&w, p->date_time);
        JW_LIT(&w, ",\"extra\":");
        jw_str(&w, p->extra);
        JW_LIT(&w, "},\"auction\":null,\"bid\":null}");
        break;
    }
    case DP_NEXMARK_AUCTION: {
        const dp_nexmark_auction_t *a = &e->u.auction;
        JW_LIT(&w, "{\"event_type\":1,\"person\":null,\"auction\":{\"id\":");
        jw_int(&w, a->id);
        JW_LIT(&w, ",\"itemName\":");
        jw_str(&w, a->item_name);
        JW_LIT(&w, ",\"description\":");
        jw_str(&w, a->description);
        JW_LIT(&w, ",\"initialBid\":");
        jw_int(&w, a->initial_bid);
        JW_LIT(&w, ",\"reserve\":");
        jw_int(&w, a->reserve);
        JW_LIT(&w, ",\"dateTime\":");
        jw_int(&w, a->date_time);
        JW_LIT(&w, ",\"expires\":");
        jw_int(&w, a->expires);
        JW_LIT(&w, ",\"seller\":");
        jw_int(&w, a->seller);
        JW_LIT(&w, ",\"category\":");
        jw_int(&w, a->category);
        JW_LIT(&w, ",\"extra\":");
        jw_str(&w, a->extra);
        JW_LIT(&w, "},\"bid\":null}");
        break;
    }
    case DP_NEXMARK_BID: {
        const dp_nexmark_bid_t *b = &e->u.bid;
        JW_LIT(&w, "{\"event_type\":2,\"person\":null,\"auction\":null,\"bid\":{\"auction\":");
        jw_int(&w, b->auction);
        JW_LIT(&w, ",\"bidder\":");
        jw_int(&w, b->bidder);
        JW_LIT(&w, ",\"price\":");
        jw_int(&w, b->price);
        JW_LIT(&w, ",\"channel\":");
        jw_str(&w, b->channel);
        JW_LIT(&w, ",\"url\":");
        jw_str(&w, b->url);
        JW_LIT(&w, ",\"dateTime\":");
        jw_int(&w, b->date_time);
        JW_LIT(&w, ",\"extra\":");
        jw_str(&w, b->extra);
        JW_LIT(&w, "}}");
        break;
    }
    }
    if (w.len < cap)
        buf[w.len] = '\0';
    return w.len;
}

size_t dp_nexmark_key(const dp_nexmark_event_t *e, char *buf, size_t cap)
{
    jw_t w = {buf, cap, 0};
    assert(cap >= DP_NEXMARK_KEY_MAX);
    jw_int(&w, dp_nexmark_key_id(e));
    return w.len;
}
