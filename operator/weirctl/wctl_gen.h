/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_gen: the record generators of `weirctl generate`. Record n of a
 * stream is a pure function of (config, n), so a run is reproducible from
 * its --seed and any slice of it can be regenerated. Nexmark comes from the
 * dataplane's dp_nexmark; the sample kinds feed the examples:
 *
 *   cards    card authorizations; in every 5 s of event time one card makes
 *            6-9 authorizations (anomaly detection: > 5 per card per 5 s)
 *   users    user profiles user-0..user-(N-1) (the clickstream table side)
 *   clicks   page views and clicks by those users
 *   iot      sensor readings, some with status ERROR
 *   scores   game scores with user and team (online gaming)
 *
 * Every record is one JSON object with an event-time field "ts" (epoch ms;
 * Nexmark: dateTime inside the event) and a key. */
#ifndef WCTL_GEN_H
#define WCTL_GEN_H

#include "dp_nexmark.h"

#include <stddef.h>
#include <stdint.h>

/** Generator kinds. */
typedef enum {
    WCTL_GEN_NEXMARK = 0,
    WCTL_GEN_CARDS,
    WCTL_GEN_USERS,
    WCTL_GEN_CLICKS,
    WCTL_GEN_IOT,
    WCTL_GEN_SCORES,
} wctl_gen_kind_t;

/** 2026-01-01T00:00:00Z: the default event time of record 0 (a multiple of 5 s). */
#define WCTL_GEN_BASE_TIME_MS INT64_C(1767225600000)
/** Longest key and value wctl_gen_record writes (Nexmark's bound). */
#define WCTL_GEN_KEY_MAX 64
#define WCTL_GEN_VALUE_MAX DP_NEXMARK_JSON_MAX

/** Configuration; start from wctl_gen_cfg_init. */
typedef struct wctl_gen_cfg {
    wctl_gen_kind_t kind;
    uint64_t seed;
    int64_t start_ms;         /**< event time of record 0 */
    uint32_t event_rate;      /**< records per second of event time (cards: 50, else 10) */
    uint32_t population;      /**< cards (1000), users (100), sensors (20), players (50) */
    uint32_t teams;           /**< scores: teams (5) */
    uint32_t error_pct;       /**< iot: readings with status ERROR, percent (5) */
    dp_nexmark_cfg_t nexmark; /**< nexmark: its own settings (seed, base time, rate copied in) */
} wctl_gen_cfg_t;

/** Parses a kind name ("nexmark", "cards", ...). Returns 0 or -EINVAL. */
int wctl_gen_kind_parse(const char *name, wctl_gen_kind_t *kind);

/** Fills `cfg` with the defaults of `kind`. */
void wctl_gen_cfg_init(wctl_gen_cfg_t *cfg, wctl_gen_kind_t kind);

/**
 * Prepares `cfg` after the caller changed fields (copies seed, start time
 * and rate into the Nexmark settings and checks them). Returns 0 or -EINVAL.
 */
int wctl_gen_cfg_finish(wctl_gen_cfg_t *cfg);

/**
 * Writes record `n`: key into `key` (*klen bytes, at least WCTL_GEN_KEY_MAX
 * of room), JSON value into `val` (`cap` >= WCTL_GEN_VALUE_MAX), event time
 * into *ts_ms. Returns the value's length.
 */
size_t wctl_gen_record(const wctl_gen_cfg_t *cfg, uint64_t n, char *key, size_t *klen, char *val,
                       size_t cap, int64_t *ts_ms);

#endif
