/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_gen: deterministic sample generators (cards, users, clicks, iot,
 * scores) and the Nexmark adapter over dp_nexmark. */
#include "wctl_gen.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {"nexmark", "cards", "users", "clicks", "iot", "scores"};

int wctl_gen_kind_parse(const char *name, wctl_gen_kind_t *kind)
{
    for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (wctl_gen_kind_t)i;
            return 0;
        }
    return -EINVAL;
}

void wctl_gen_cfg_init(wctl_gen_cfg_t *cfg, wctl_gen_kind_t kind)
{
    static const uint32_t pop[] = {0, 1000, 100, 100, 20, 50};

    memset(cfg, 0, sizeof(*cfg));
    cfg->kind = kind;
    cfg->start_ms = WCTL_GEN_BASE_TIME_MS;
    cfg->event_rate = kind == WCTL_GEN_CARDS ? 50 : 10;
    cfg->population = pop[kind];
    cfg->teams = 5;
    cfg->error_pct = 5;
    dp_nexmark_cfg_init(&cfg->nexmark);
    if (kind == WCTL_GEN_NEXMARK)
        cfg->event_rate = (uint32_t)cfg->nexmark.events_per_sec;
}

int wctl_gen_cfg_finish(wctl_gen_cfg_t *cfg)
{
    if (cfg->event_rate == 0 || cfg->event_rate > 10000000 || cfg->error_pct > 100)
        return -EINVAL;
    if (cfg->kind != WCTL_GEN_NEXMARK && cfg->population == 0)
        return -EINVAL;
    if (cfg->kind == WCTL_GEN_SCORES && cfg->teams == 0)
        return -EINVAL;
    if (cfg->kind == WCTL_GEN_NEXMARK) {
        cfg->nexmark.seed = cfg->seed;
        cfg->nexmark.base_time_ms = cfg->start_ms;
        cfg->nexmark.events_per_sec = cfg->event_rate;
        return dp_nexmark_cfg_check(&cfg->nexmark);
    }
    return 0;
}

/* splitmix64 of (seed, n, salt): the randomness of record n. */
static uint64_t rnd(const wctl_gen_cfg_t *cfg, uint64_t n, uint64_t salt)
{
    uint64_t z = cfg->seed * 0x9e3779b97f4a7c15ull + n * 0xbf58476d1ce4e5b9ull + salt;

    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int64_t ts_of(const wctl_gen_cfg_t *cfg, uint64_t n)
{
    return cfg->start_ms + (int64_t)(n * 1000 / cfg->event_rate);
}

static const char *const countries[] = {"US", "GB", "DE", "FR", "JP", "BR", "IN", "CA"};
static const char *const pages[] = {"/", "/search", "/product", "/cart", "/checkout", "/help"};
static const char *const actions[] = {"view", "view", "view", "click", "click", "purchase"};
static const char *const levels[] = {"bronze", "silver", "gold"};
static const char *const regions[] = {"emea", "amer", "apac"};
static const char *const team_names[] = {"red",    "blue",  "green", "yellow", "purple",
                                         "orange", "black", "white", "cyan",   "pink"};

/* cards: in block b (5 s of event time) one card makes a burst of 6-9. */
static size_t cards(const wctl_gen_cfg_t *cfg, uint64_t n, char *key, size_t *klen, char *val,
                    size_t cap, int64_t ts)
{
    uint64_t block = (uint64_t)cfg->event_rate * 5;
    uint64_t b = n / block, off = n % block;
    uint64_t hb = rnd(cfg, b, 0xb1), k = 6 + hb % 4;
    uint64_t start = block > k ? (hb >> 8) % (block - k) : 0;
    uint64_t card = (off >= start && off < start + k) ? (hb >> 24) % cfg->population
                                                      : rnd(cfg, n, 0xc1) % cfg->population;
    uint64_t cents = 100 + rnd(cfg, n, 0xa1) % 50000;
    int kl;

    kl = snprintf(key, WCTL_GEN_KEY_MAX, "4000-0000-%04" PRIu64 "-%04" PRIu64, card / 10000,
                  card % 10000);
    *klen = (size_t)kl;
    return (size_t)snprintf(val, cap,
                            "{\"id\":%" PRIu64 ",\"card\":\"%s\",\"amount\":%" PRIu64 ".%02" PRIu64
                            ",\"merchant\":\"merchant-%" PRIu64
                            "\",\"country\":\"%s\",\"ts\":%" PRId64 "}",
                            n, key, cents / 100, cents % 100, rnd(cfg, n, 0xd1) % 200,
                            countries[rnd(cfg, n, 0xe1) % 8], ts);
}

size_t wctl_gen_record(const wctl_gen_cfg_t *cfg, uint64_t n, char *key, size_t *klen, char *val,
                       size_t cap, int64_t *ts_ms)
{
    int64_t ts = ts_of(cfg, n);
    uint64_t r = rnd(cfg, n, 0x11);
    size_t len = 0;

    switch (cfg->kind) {
    case WCTL_GEN_NEXMARK: {
        dp_nexmark_event_t e;

        dp_nexmark_event(&cfg->nexmark, n, &e);
        *klen = dp_nexmark_key(&e, key, WCTL_GEN_KEY_MAX);
        *ts_ms = dp_nexmark_date_time(&e);
        return dp_nexmark_json(&e, val, cap);
    }
    case WCTL_GEN_CARDS:
        len = cards(cfg, n, key, klen, val, cap, ts);
        break;
    case WCTL_GEN_USERS: {
        uint64_t u = n % cfg->population;

        *klen = (size_t)snprintf(key, WCTL_GEN_KEY_MAX, "user-%" PRIu64, u);
        len = (size_t)snprintf(val, cap,
                               "{\"userId\":\"%s\",\"name\":\"User %" PRIu64
                               "\",\"level\":\"%s\",\"region\":\"%s\",\"ts\":%" PRId64 "}",
                               key, u, levels[rnd(cfg, u, 0x21) % 3],
                               regions[rnd(cfg, u, 0x22) % 3], ts);
        break;
    }
    case WCTL_GEN_CLICKS: {
        /* One user in ten is a heavy clicker: half the clicks are theirs. */
        uint64_t heavy = cfg->population / 10 ? cfg->population / 10 : 1;
        uint64_t u = (r & 1) ? (r >> 1) % heavy : (r >> 1) % cfg->population;
        uint64_t a = rnd(cfg, n, 0x31) % 6;

        *klen = (size_t)snprintf(key, WCTL_GEN_KEY_MAX, "user-%" PRIu64, u);
        len = (size_t)snprintf(val, cap,
                               "{\"id\":%" PRIu64 ",\"userId\":\"%s\",\"page\":\"%s\","
                               "\"action\":\"%s\",\"ts\":%" PRId64 "}",
                               n, key, pages[rnd(cfg, n, 0x32) % 6], actions[a], ts);
        break;
    }
    case WCTL_GEN_IOT: {
        uint64_t s = n % cfg->population;
        int err = rnd(cfg, n, 0x41) % 100 < cfg->error_pct;
        int64_t temp = 150 + (int64_t)(rnd(cfg, n, 0x42) % 200); /* tenths of a degree */
        int64_t hum = 300 + (int64_t)(rnd(cfg, n, 0x43) % 500);

        *klen = (size_t)snprintf(key, WCTL_GEN_KEY_MAX, "sensor-%02" PRIu64, s);
        if (err)
            len = (size_t)snprintf(val, cap,
                                   "{\"id\":%" PRIu64 ",\"sensorId\":\"%s\",\"status\":\"ERROR\","
                                   "\"errorCode\":\"E%02" PRIu64 "\",\"temperature\":null,"
                                   "\"humidity\":null,\"ts\":%" PRId64 "}",
                                   n, key, rnd(cfg, n, 0x44) % 8, ts);
        else
            len = (size_t)snprintf(val, cap,
                                   "{\"id\":%" PRIu64 ",\"sensorId\":\"%s\",\"status\":\"OK\","
                                   "\"errorCode\":null,\"temperature\":%" PRId64 ".%" PRId64
                                   ",\"humidity\":%" PRId64 ".%" PRId64 ",\"ts\":%" PRId64 "}",
                                   n, key, temp / 10, temp % 10, hum / 10, hum % 10, ts);
        break;
    }
    case WCTL_GEN_SCORES: {
        uint64_t p = r % cfg->population;
        uint64_t t = rnd(cfg, p, 0x51) % cfg->teams; /* a player stays in one team */

        *klen = (size_t)snprintf(key, WCTL_GEN_KEY_MAX, "player-%" PRIu64, p);
        len = (size_t)snprintf(val, cap,
                               "{\"id\":%" PRIu64 ",\"user\":\"%s\",\"team\":\"team-%s\","
                               "\"score\":%" PRIu64 ",\"ts\":%" PRId64 "}",
                               n, key, t < 10 ? team_names[t] : "other",
                               rnd(cfg, n, 0x52) % 100 + 1, ts);
        if (t >= 10)
            len = (size_t)snprintf(val, cap,
                                   "{\"id\":%" PRIu64 ",\"user\":\"%s\",\"team\":\"team-%" PRIu64
                                   "\",\"score\":%" PRIu64 ",\"ts\":%" PRId64 "}",
                                   n, key, t, rnd(cfg, n, 0x52) % 100 + 1, ts);
        break;
    }
    }
    *ts_ms = ts;
    return len;
}
