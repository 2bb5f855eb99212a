/* SPDX-License-Identifier: Apache-2.0 */
/* dp_pipe: the compiled pipeline engine. dp_pipe_new turns a validated spec
 * into flat arrays (inputs, operators, outputs, edges by index) over one
 * dp_fields slot table; records then run depth-first through the operator
 * DAG with no allocation in the steady state: rows borrow their bytes, map
 * edits are a list of slot indices applied only at the sink, window and join
 * results fill the slots downstream operators read and build their JSON only
 * when an output encodes them. Design: docs/internals/pipeline-engine.md. */
#include "dp_pipe.h"

#include "dp_expr.h"
#include "dp_fields.h"
#include "dp_join.h"
#include "dp_win.h"
#include "wc_spec.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRATCH_BYTES ((size_t)256 << 10)  /* expression string results, stack discipline */
#define DOC_ARENA_BYTES ((size_t)64 << 10) /* JSON text of container values per decode */
#define STATE_DEFAULT ((size_t)256 << 20)
#define TIME_LIMIT_MS ((int64_t)1 << 60) /* accepted event times: within +-2^60 ms */
#define PART_MAX 65536                   /* partitions per input (the schema's bound) */
#define PATCH_REMOVE 0x80000000u         /* patch entry: remove the path (else set it) */
#define SER_MAGIC 0x50495057u            /* "WPIP" */
#define SER_VERSION 1u
#define NUM_MAX 32 /* decimal int64 or dp_expr_fmt_double text, with NUL */

enum node_type { OP_FILTER = 0, OP_MAP, OP_WINDOW, OP_JOIN, OP_UDF };
enum time_src { TS_TIMESTAMP = 0, TS_PAYLOAD, TS_HEADER, TS_PROCESSING };
enum time_unit { U_MS = 0, U_S, U_US, U_RFC3339 };
/* Where a row's payload bytes come from when an output encodes it. */
enum base_kind {
    BASE_ORIG = 0, /* row.payload as received (then the patch list) */
    BASE_EMPTY,    /* a project replaced the payload: {} (then the patch list) */
    BASE_LAZY,     /* a window or join result: built by `lazy` on demand */
};
/* Window and join result fields a downstream slot can read. */
enum res_what {
    R_KEY = 0, /* payload.key */
    R_START,   /* payload.windowStart */
    R_END,     /* payload.windowEnd */
    R_PARTIAL, /* payload.partial, payload.early, payload.upsert: true or MISSING */
    R_EARLY,
    R_UPSERT,
    R_RECKEY, /* key: the record key text */
    R_TIME,   /* timestamp, eventtime */
    R_ROOT,   /* payload: the built JSON text */
    R_AGG,    /* + i: payload.<aggregation i> */
};
/* Fixed names of the window result object, before the aggregations. */
static const char *const k_res_names[] = {"key", "windowStart", "windowEnd"};
static const char *const k_res_flags[] = {"partial", "early", "upsert"};

typedef struct op op_t;

/* A row inside the engine: the dp_row_t operators read, plus what an output
 * needs to encode it and a dead letter needs to name its source. */
typedef struct xrow {
    dp_row_t row;
    const dp_row_t *src;   /* the input record it came from (NULL: derived) */
    op_t *lazy;            /* BASE_LAZY: the operator whose current result this is */
    const op_t *origin;    /* derived rows: the operator that made it (dead-letter header) */
    const uint32_t *patch; /* slot indices set (| PATCH_REMOVE: removed), in order */
    uint32_t npatch;
    uint8_t base; /* enum base_kind */
    uint8_t fmt;  /* dp_fields_format_t of BASE_ORIG bytes */
} xrow_t;

typedef struct edge {
    uint32_t op;
    uint32_t side; /* joins: 0 left, 1 right */
} edge_t;

/* A node's consumers, in spec order: operators first, then outputs. */
typedef struct links {
    edge_t *ops;
    uint32_t *outs;
    uint32_t nops;
    uint32_t nouts;
} links_t;

typedef struct part {
    int64_t max_event_ms; /* INT64_MIN: no record yet */
    int64_t hdr_wm_ms;    /* upstream `watermark` header: a lower bound */
    int64_t last_ms;      /* processing time of the last record (INT64_MIN: unset) */
    int64_t age_ms;       /* restored idle age, applied when the clock starts (-1: none) */
    int32_t partition;
    uint8_t idle;
} part_t;

typedef struct input {
    char *name;
    char *topic;
    dp_fields_format_t fmt;
    int time_src; /* enum time_src */
    int unit;     /* enum time_unit */
    int time_slot;
    int64_t ooo_ms;
    int64_t idle_ms;
    bool table;
    bool time_implicit; /* no `time`: an upstream `eventtime` header, else the timestamp */
    bool dynamic;       /* no `partitions`: track partitions as they appear */
    int32_t *assigned;  /* this replica's partitions */
    uint32_t nassigned;
    part_t *parts; /* watermark state, one per assigned (or seen) partition */
    uint32_t nparts;
    uint32_t cap_parts;
    int32_t *pidx; /* partition -> parts index, -1: not ours */
    uint32_t npidx;
    links_t links;
} input_t;

typedef struct mset {
    uint32_t slot;
    dp_expr_t *e;    /* NULL for a remove */
    uint32_t *clear; /* descendant slots that become MISSING */
    uint32_t nclear;
} mset_t;

typedef struct res_slot {
    uint32_t slot;
    uint32_t what; /* enum res_what */
} res_slot_t;

/* One side of a join result: payload.<side>.x paths decoded from the stored
 * payload with a table of their own. */
typedef struct side_dec {
    dp_fields_t *f;
    uint32_t *gslot; /* side slot -> pipe slot */
    uint32_t n;
    int root; /* pipe slot of payload.<side> itself, or -1 */
    dp_val_t *slots;
    dp_fields_doc_t doc;
    char *arena;
} side_dec_t;

struct op {
    int type; /* enum node_type */
    char *id;
    uint32_t idx;
    dp_fields_format_t fmt;         /* format of the rows this operator emits */
    dp_fields_format_t side_fmt[2]; /* joins: formats of the two inputs */
    dp_pipe_t *pipe;
    links_t links;
    /* filter */
    dp_expr_t *expr;
    /* map */
    mset_t *sets;
    uint32_t nsets;
    mset_t *rms;
    uint32_t nrms;
    mset_t *proj;
    uint32_t nproj;
    uint32_t *proj_clear; /* every payload slot, cleared by a project */
    uint32_t nproj_clear;
    bool sets_root;   /* a `set` of `payload` itself: the root slot holds the new payload */
    dp_expr_t *key_e; /* map `key` (or set "key"), window key, join: unused */
    /* rows this operator emits */
    xrow_t x;
    dp_val_t *slots;
    uint32_t *patch;
    char keybuf[NUM_MAX];
    /* window */
    dp_win_t *win;
    dp_win_cfg_t wcfg;
    dp_expr_t **agg_e;
    dp_val_t *agg_v;
    const char **res_names; /* key, windowStart, windowEnd, aggs..., partial, early, upsert */
    dp_val_t *res_vals;
    uint32_t nres;
    int32_t late_out;
    bool proc_time;
    const dp_win_result_t *cur;
    /* join */
    dp_join_t *join;
    dp_join_cfg_t jcfg;
    dp_expr_t *jkey[2];
    side_dec_t dec[2];
    const dp_join_pair_t *pair;
    /* window and join results */
    res_slot_t *rs;
    uint32_t nrs;
    dp_fields_buf_t res;
    bool res_built;
    /* udf (also window udf) */
    int udf;
    /* payloads materialised for dp_join_add / keep_records / udf submit */
    dp_fields_buf_t mat[2];
};

typedef struct output {
    char *name;
    dp_expr_t *part_e;
    char *part_hdr;
    char **hname;
    dp_expr_t **hexpr;
    dp_val_t *hval;
    char (*hnum)[NUM_MAX];
    uint32_t nh;
    bool wm_hdrs;
    char partnum[NUM_MAX];
} output_t;

struct dp_pipe {
    dp_pipe_opts_t opts;
    size_t state_max;
    uint64_t spec_hash;
    dp_fields_t *f;
    uint32_t nslots;
    const char **slot_path;
    int ev_slot;   /* eventtime slot, or -1 */
    int root_slot; /* payload slot, or -1 */
    uint32_t maxpatch;
    input_t *in;
    uint32_t nin;
    op_t *ops;
    uint32_t nops;
    uint32_t *topo; /* stateful operators in topological order */
    uint32_t ntopo;
    output_t *out;
    uint32_t nout;
    uint32_t nudfs;
    dp_fields_format_t *udf_fmt;
    /* per-record working memory */
    xrow_t inx;
    dp_val_t *in_slots;
    dp_fields_doc_t doc;
    char *doc_arena;
    dp_expr_scratch_t scratch;
    char *scratch_buf;
    const char **pset_paths; /* patch application: maxpatch each */
    dp_val_t *pset_vals;
    const char **prm_paths;
    dp_fields_buf_t ob[2]; /* output payload encoding */
    dp_fields_buf_t dlqb;  /* dead-letter payload of a derived row */
    dp_hdr_t *hb;          /* output headers */
    uint32_t hcap;
    char wmnum[NUM_MAX], evnum[NUM_MAX], pnum[NUM_MAX], onum[NUM_MAX], gnum[NUM_MAX];
    char errtxt[512];
    char matb_err[160];
    const char *dlq_grpc; /* weir.grpc.status for the dead letter being written */
    int64_t wm;
    int64_t now;
    dp_pipe_stats_t stats;
};

/* ------------------------------------------------------------- helpers */

static int failf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int failf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static char *xstrdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static bool streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static int64_t jint(const json_t *o, const char *k, int64_t dflt)
{
    const json_t *v = json_object_get(o, k);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* A value as record-key / header text. Returns 1 (text in *s, *n), 0 for
 * NULL or MISSING (no text), -1 for an error value. */
static int val_text(const dp_val_t *v, char *num, const char **s, uint32_t *n)
{
    switch (v->type) {
    case DP_VAL_STR:
        *s = v->u.s != NULL ? v->u.s : "";
        *n = v->len;
        return 1;
    case DP_VAL_INT:
        *n = (uint32_t)snprintf(num, NUM_MAX, "%" PRId64, v->u.i);
        *s = num;
        return 1;
    case DP_VAL_DOUBLE:
        if (!isfinite(v->u.d))
            return -1;
        *n = (uint32_t)dp_expr_fmt_double(v->u.d, num);
        *s = num;
        return 1;
    case DP_VAL_BOOL:
        *s = v->u.b ? "true" : "false";
        *n = v->u.b ? 4 : 5;
        return 1;
    case DP_VAL_ERR:
        return -1;
    default:
        *s = NULL;
        *n = 0;
        return 0;
    }
}

static bool buf_put(dp_fields_buf_t *b, const void *p, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        char *nd;

        while (cap - b->len < n)
            cap *= 2;
        nd = realloc(b->data, cap);
        if (nd == NULL)
            return false;
        b->data = nd;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

/* Appends bytes as a JSON string (raw payloads inside a join result). */
static bool buf_put_jstr(dp_fields_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    bool ok = buf_put(b, "\"", 1);

    for (size_t i = 0; i < n && ok; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

        if (c == '"' || c == '\\') {
            char q[2] = {'\\', (char)c};
            ok = buf_put(b, q, 2);
        } else if (c < 0x20) {
            ok = buf_put(b, e, 6);
        } else {
            ok = buf_put(b, &s[i], 1);
        }
    }
    return ok && buf_put(b, "\"", 1);
}

/* ----------------------------------------------------------- event time */

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), to epoch ms. */
static int parse_rfc3339(const char *s, size_t n, int64_t *ms)
{
    int64_t y, mo, d, h, mi, se, frac = 0, oh = 0, om = 0, sign = 0;
    size_t i = 19;

    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':' || !digits(s, 4, &y) || !digits(s + 5, 2, &mo) ||
        !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) ||
        !digits(s + 17, 2, &se))
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -EINVAL;
    if (s[i] == '.') {
        int scale = 0;

        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (scale < 3) {
                frac = frac * 10 + (s[i] - '0');
                scale++;
            }
            i++;
        }
        if (scale == 0)
            return -EINVAL;
        while (scale++ < 3)
            frac *= 10;
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':' &&
               digits(s + i + 1, 2, &oh) && digits(s + i + 4, 2, &om)) {
        sign = s[i] == '+' ? 1 : -1;
        i += 6;
    } else {
        return -EINVAL;
    }
    if (i != n)
        return -EINVAL;
    *ms = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) -
           sign * (oh * 3600 + om * 60)) *
              1000 +
          frac;
    return 0;
}

/* A number in `unit` to ms; false when out of range. */
static bool num_to_ms(double d, int unit, int64_t *ms)
{
    if (!isfinite(d))
        return false;
    if (unit == U_S)
        d *= 1000.0;
    else if (unit == U_US)
        d /= 1000.0;
    d = floor(d);
    if (d <= -(double)TIME_LIMIT_MS || d >= (double)TIME_LIMIT_MS)
        return false;
    *ms = (int64_t)d;
    return true;
}

static bool int_to_ms(int64_t i, int unit, int64_t *ms)
{
    if (unit == U_S) {
        if (i <= -TIME_LIMIT_MS / 1000 || i >= TIME_LIMIT_MS / 1000)
            return false;
        *ms = i * 1000;
    } else if (unit == U_US) {
        *ms = i / 1000 - (i % 1000 < 0 ? 1 : 0);
    } else {
        *ms = i;
    }
    return *ms > -TIME_LIMIT_MS && *ms < TIME_LIMIT_MS;
}

static const char *const k_units[] = {"ms", "s", "us", "rfc3339"};

/* Event time from a slot value; 0 or -EINVAL with a message in err. */
static int val_to_ms(const dp_val_t *v, int unit, int64_t *ms, char *err, size_t errlen)
{
    char tmp[64];
    char *end;

    switch (v->type) {
    case DP_VAL_INT:
        if (unit != U_RFC3339 && int_to_ms(v->u.i, unit, ms))
            return 0;
        break;
    case DP_VAL_DOUBLE:
        if (unit != U_RFC3339 && num_to_ms(v->u.d, unit, ms))
            return 0;
        break;
    case DP_VAL_STR:
        if (unit == U_RFC3339) {
            if (parse_rfc3339(v->u.s, v->len, ms) == 0 && *ms > -TIME_LIMIT_MS &&
                *ms < TIME_LIMIT_MS)
                return 0;
            break;
        }
        if (v->len == 0 || v->len >= sizeof(tmp))
            break;
        memcpy(tmp, v->u.s, v->len);
        tmp[v->len] = '\0';
        errno = 0;
        {
            long long ll = strtoll(tmp, &end, 10);

            if (*end == '\0' && errno == 0 && int_to_ms(ll, unit, ms))
                return 0;
            double d = strtod(tmp, &end);

            if (*end == '\0' && num_to_ms(d, unit, ms))
                return 0;
        }
        break;
    case DP_VAL_MISSING:
        return failf(err, errlen, "event time: field is missing");
    default:
        break;
    }
    return failf(err, errlen, "event time: value is not a valid time in %s", k_units[unit]);
}

static bool parse_i64(const char *s, uint32_t n, int64_t *out)
{
    char tmp[24];
    char *end;
    long long v;

    if (s == NULL || n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    v = strtoll(tmp, &end, 10);
    if (*end != '\0' || errno != 0)
        return false;
    *out = v;
    return true;
}

/* ------------------------------------------------------------ partitions */

static int64_t part_wm(const input_t *in, const part_t *pt)
{
    int64_t wm = INT64_MIN;

    if (pt->max_event_ms != INT64_MIN)
        wm = pt->max_event_ms - in->ooo_ms;
    return pt->hdr_wm_ms > wm ? pt->hdr_wm_ms : wm;
}

static void part_init(part_t *pt, int32_t partition)
{
    pt->max_event_ms = INT64_MIN;
    pt->hdr_wm_ms = INT64_MIN;
    pt->last_ms = INT64_MIN;
    pt->age_ms = -1;
    pt->partition = partition;
    pt->idle = 0;
}

/* The partition's state, created for a dynamic input; NULL: not ours. */
static part_t *part_of(input_t *in, int32_t partition, bool create)
{
    if (partition < 0 || partition >= PART_MAX)
        return NULL;
    if ((uint32_t)partition < in->npidx && in->pidx[partition] >= 0)
        return &in->parts[in->pidx[partition]];
    if (!in->dynamic || !create)
        return NULL;
    if ((uint32_t)partition >= in->npidx) {
        uint32_t n = (uint32_t)partition + 1;
        int32_t *np = realloc(in->pidx, n * sizeof(*np));

        if (np == NULL)
            return NULL;
        for (uint32_t k = in->npidx; k < n; k++)
            np[k] = -1;
        in->pidx = np;
        in->npidx = n;
    }
    if (in->nparts == in->cap_parts) {
        uint32_t cap = in->cap_parts ? in->cap_parts * 2 : 8;
        part_t *pp = realloc(in->parts, cap * sizeof(*pp));

        if (pp == NULL)
            return NULL;
        in->parts = pp;
        in->cap_parts = cap;
    }
    part_init(&in->parts[in->nparts], partition);
    in->pidx[partition] = (int32_t)in->nparts;
    return &in->parts[in->nparts++];
}

/* First call with a clock: partitions that never saw a record start their
 * idle timer now. */
static void clock_start(dp_pipe_t *p, int64_t now)
{
    for (uint32_t i = 0; i < p->nin; i++) {
        for (uint32_t k = 0; k < p->in[i].nparts; k++) {
            part_t *pt = &p->in[i].parts[k];

            if (pt->last_ms == INT64_MIN)
                pt->last_ms = now - (pt->age_ms > 0 ? pt->age_ms : 0);
            pt->age_ms = -1;
        }
    }
}

/* The active (non-idle, non-table) partition with the lowest watermark. */
static bool slowest(const dp_pipe_t *p, uint32_t *input, int32_t *partition, int64_t *wm_out)
{
    bool found = false;
    int64_t best = INT64_MAX;

    for (uint32_t i = 0; i < p->nin; i++) {
        const input_t *in = &p->in[i];

        if (in->table)
            continue;
        for (uint32_t k = 0; k < in->nparts; k++) {
            int64_t w;

            if (in->parts[k].idle)
                continue;
            w = part_wm(in, &in->parts[k]);
            if (!found || w < best) {
                found = true;
                best = w;
                *input = i;
                *partition = in->parts[k].partition;
            }
        }
    }
    if (wm_out != NULL)
        *wm_out = best;
    return found;
}

/* ------------------------------------------------------------ emission */

static void run_node(dp_pipe_t *p, const links_t *l, xrow_t *x);

static bool ensure_hdrs(dp_pipe_t *p, uint32_t n)
{
    dp_hdr_t *nb;
    uint32_t cap;

    if (n <= p->hcap)
        return true;
    cap = p->hcap ? p->hcap : 16;
    while (cap < n)
        cap *= 2;
    nb = realloc(p->hb, cap * sizeof(*nb));
    if (nb == NULL)
        return false;
    p->hb = nb;
    p->hcap = cap;
    return true;
}

static void set_hdr(dp_hdr_t *h, const char *name, const char *val, uint32_t val_len)
{
    h->name = name;
    h->name_len = (uint32_t)strlen(name);
    h->val = val;
    h->val_len = val_len;
}

static void build_lazy(op_t *o);

/* The row's payload bytes for an output: the original bytes when nothing
 * changed, else the base (original, {} after a project, or a built result)
 * with the map edits applied, in phases so a set after a remove of the same
 * path wins. Returns 0 or a negative errno (message in err). */
static int materialize(dp_pipe_t *p, const xrow_t *x, dp_fields_buf_t *bufs, const char **out,
                       uint32_t *out_len, char *err, size_t errlen)
{
    const char *cur = NULL;
    size_t cur_len = 0;
    uint32_t i = 0;
    int bi = 0;

    switch (x->base) {
    case BASE_ORIG:
        cur = x->row.payload;
        cur_len = x->row.payload_len;
        if (x->npatch > 0 && x->fmt != DP_FIELDS_JSON && cur != NULL) {
            failf(err, errlen, "a map cannot edit a raw (non-JSON) payload");
            return -EBADMSG;
        }
        break;
    case BASE_LAZY:
        build_lazy(x->lazy);
        if (!x->lazy->res_built) {
            failf(err, errlen, "cannot encode the result (a non-UTF-8 string?)");
            return -EINVAL;
        }
        cur = x->lazy->res.data;
        cur_len = x->lazy->res.len;
        break;
    default:
        break;
    }
    if (x->npatch == 0 && x->base != BASE_EMPTY) {
        *out = cur;
        *out_len = (uint32_t)cur_len;
        return 0;
    }
    do {
        size_t nset = 0, nrm = 0;
        int rc;

        for (; i < x->npatch; i++) {
            uint32_t e = x->patch[i];
            uint32_t slot = e & ~PATCH_REMOVE;

            if (e & PATCH_REMOVE) {
                p->prm_paths[nrm++] = p->slot_path[slot];
            } else {
                if (nrm > 0)
                    break;
                p->pset_paths[nset] = p->slot_path[slot];
                p->pset_vals[nset++] = x->row.slots[slot];
            }
        }
        rc = dp_fields_patch_json(cur, cur_len, p->pset_paths, p->pset_vals, nset, p->prm_paths,
                                  nrm, &bufs[bi], err, errlen);
        if (rc != 0)
            return rc;
        cur = bufs[bi].data;
        cur_len = bufs[bi].len;
        bi ^= 1;
    } while (i < x->npatch);
    *out = cur;
    *out_len = (uint32_t)cur_len;
    return 0;
}

/* Dead-letters the record `x` came from: its original key, payload and
 * headers plus weir.error and the source headers. A derived row (a window
 * or join result) is dead-lettered as its result payload, with
 * weir.source.operator naming the operator. */
static void dlq(dp_pipe_t *p, const xrow_t *x, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dlq(dp_pipe_t *p, const xrow_t *x, const char *fmt, ...)
{
    const dp_row_t *s = x->src;
    dp_pipe_out_t o = {.output = DP_PIPE_DLQ};
    uint32_t n = 0, base_n = s != NULL ? s->nhdrs : x->row.nhdrs;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->errtxt, sizeof(p->errtxt), fmt, ap);
    va_end(ap);
    p->stats.dead_letters++;
    if (s != NULL) {
        o.key = s->key;
        o.key_len = s->key_len;
        o.payload = s->payload;
        o.payload_len = s->payload_len;
        o.ts_ms = s->ts_ms;
    } else {
        o.key = x->row.key;
        o.key_len = x->row.key_len;
        o.ts_ms = x->row.ts_ms;
        if (x->base == BASE_LAZY) {
            build_lazy(x->lazy);
            if (x->lazy->res_built) {
                o.payload = x->lazy->res.data;
                o.payload_len = (uint32_t)x->lazy->res.len;
            }
        } else {
            o.payload = x->row.payload;
            o.payload_len = x->row.payload_len;
        }
    }
    if (!ensure_hdrs(p, base_n + 6)) {
        base_n = 0; /* out of memory: keep the error headers at least */
        if (p->hcap < 6)
            goto emit_bare;
    }
    for (uint32_t k = 0; k < base_n; k++)
        p->hb[n++] = s != NULL ? s->hdrs[k] : x->row.hdrs[k];
    set_hdr(&p->hb[n++], "weir.error", p->errtxt, (uint32_t)strlen(p->errtxt));
    if (s != NULL && s->input < p->nin) {
        const char *topic = p->in[s->input].topic;

        set_hdr(&p->hb[n++], "weir.source.topic", topic, (uint32_t)strlen(topic));
        set_hdr(&p->hb[n++], "weir.source.partition", p->pnum,
                (uint32_t)snprintf(p->pnum, sizeof(p->pnum), "%" PRId32, s->partition));
        set_hdr(&p->hb[n++], "weir.source.offset", p->onum,
                (uint32_t)snprintf(p->onum, sizeof(p->onum), "%" PRId64, s->offset));
    } else if (x->origin != NULL) {
        set_hdr(&p->hb[n++], "weir.source.operator", x->origin->id,
                (uint32_t)strlen(x->origin->id));
    }
    if (p->dlq_grpc != NULL)
        set_hdr(&p->hb[n++], "weir.grpc.status", p->dlq_grpc, (uint32_t)strlen(p->dlq_grpc));
    o.hdrs = p->hb;
    o.nhdrs = n;
emit_bare:
    p->opts.emit(p->opts.ctx, &o);
}

static void emit_output(dp_pipe_t *p, uint32_t oi, const xrow_t *x)
{
    output_t *out = &p->out[oi];
    dp_pipe_out_t o = {
        .output = oi, .key = x->row.key, .key_len = x->row.key_len, .ts_ms = x->row.ts_ms};
    char err[160];
    uint32_t n = 0;
    int rc;

    if (out->part_e != NULL) {
        dp_val_t v = dp_expr_eval(out->part_e, &x->row, &p->scratch);

        if (v.type == DP_VAL_MISSING || v.type == DP_VAL_ERR) {
            dlq(p, x, "output \"%s\": partitionBy key: %s", out->name,
                dp_expr_errstr(v.type == DP_VAL_ERR ? v.u.err : DP_VERR_MISSING));
            return;
        }
        if (val_text(&v, out->partnum, &o.part_key, &o.part_key_len) < 0) {
            dlq(p, x, "output \"%s\": partitionBy key: not a finite number", out->name);
            return;
        }
    }
    for (uint32_t h = 0; h < out->nh; h++) {
        out->hval[h] = dp_expr_eval(out->hexpr[h], &x->row, &p->scratch);
        if (out->hval[h].type == DP_VAL_ERR ||
            (out->hval[h].type == DP_VAL_DOUBLE && !isfinite(out->hval[h].u.d))) {
            dlq(p, x, "output \"%s\": header \"%s\": %s", out->name, out->hname[h],
                dp_expr_errstr(out->hval[h].type == DP_VAL_ERR ? out->hval[h].u.err
                                                               : DP_VERR_TYPE));
            return;
        }
    }
    if (!p->opts.blackhole) {
        rc = materialize(p, x, p->ob, &o.payload, &o.payload_len, err, sizeof(err));
        if (rc != 0) {
            dlq(p, x, "output \"%s\": cannot encode the payload: %s", out->name, err);
            return;
        }
        if (!ensure_hdrs(p, x->row.nhdrs + out->nh + 2)) {
            dlq(p, x, "output \"%s\": out of memory for headers", out->name);
            return;
        }
        for (uint32_t k = 0; k < x->row.nhdrs; k++) {
            const dp_hdr_t *h = &x->row.hdrs[k];

            if (out->wm_hdrs && ((h->name_len == 9 && memcmp(h->name, "watermark", 9) == 0) ||
                                 (h->name_len == 9 && memcmp(h->name, "eventtime", 9) == 0)))
                continue;
            p->hb[n++] = *h;
        }
        for (uint32_t h = 0; h < out->nh; h++) {
            const char *s;
            uint32_t len;

            if (out->hval[h].type == DP_VAL_MISSING)
                continue;
            if (val_text(&out->hval[h], out->hnum[h], &s, &len) == 0)
                s = NULL, len = 0; /* NULL: a null header value */
            set_hdr(&p->hb[n++], out->hname[h], s, len);
        }
        if (out->wm_hdrs) {
            if (p->wm != INT64_MIN)
                set_hdr(&p->hb[n++], "watermark", p->wmnum,
                        (uint32_t)snprintf(p->wmnum, sizeof(p->wmnum), "%" PRId64, p->wm));
            set_hdr(&p->hb[n++], "eventtime", p->evnum,
                    (uint32_t)snprintf(p->evnum, sizeof(p->evnum), "%" PRId64, x->row.event_ms));
        }
        o.hdrs = p->hb;
        o.nhdrs = n;
        if (out->part_hdr != NULL) {
            size_t hl = strlen(out->part_hdr);

            for (uint32_t k = n; k-- > 0;) {
                if (p->hb[k].name_len == hl && memcmp(p->hb[k].name, out->part_hdr, hl) == 0) {
                    o.part_key = p->hb[k].val;
                    o.part_key_len = p->hb[k].val_len;
                    break;
                }
            }
        }
    } else if (out->part_hdr != NULL) {
        size_t hl = strlen(out->part_hdr);

        for (uint32_t k = x->row.nhdrs; k-- > 0;) {
            if (x->row.hdrs[k].name_len == hl &&
                memcmp(x->row.hdrs[k].name, out->part_hdr, hl) == 0) {
                o.part_key = x->row.hdrs[k].val;
                o.part_key_len = x->row.hdrs[k].val_len;
                break;
            }
        }
    }
    p->stats.records_out++;
    p->opts.emit(p->opts.ctx, &o);
}

/* ------------------------------------------------------------ operators */

static void row_copy(dp_pipe_t *p, op_t *o, const xrow_t *x)
{
    xrow_t *y = &o->x;

    y->row = x->row;
    y->row.slots = o->slots;
    y->row.nslots = p->nslots;
    memcpy(o->slots, x->row.slots, p->nslots * sizeof(dp_val_t));
    y->src = x->src;
    y->lazy = x->lazy;
    y->origin = x->origin;
    y->base = x->base;
    y->fmt = x->fmt;
    if (x->npatch > 0)
        memcpy(o->patch, x->patch, x->npatch * sizeof(uint32_t));
    y->patch = o->patch;
    y->npatch = x->npatch;
}

static void clear_slots(dp_val_t *slots, const uint32_t *v, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++)
        slots[v[k]] = dp_val_missing();
}

static bool bad_value(const dp_val_t *v)
{
    return v->type == DP_VAL_MISSING || v->type == DP_VAL_ERR;
}

static const char *verr_text(const dp_val_t *v)
{
    return dp_expr_errstr(v->type == DP_VAL_ERR ? v->u.err : DP_VERR_MISSING);
}

static void run_map(dp_pipe_t *p, op_t *o, const xrow_t *x)
{
    xrow_t *y = &o->x;
    uint32_t *patch = o->patch;
    dp_val_t pv[64];
    dp_val_t *pvals = pv;

    row_copy(p, o, x);
    for (uint32_t k = 0; k < o->nsets; k++) {
        mset_t *m = &o->sets[k];
        dp_val_t v = dp_expr_eval(m->e, &y->row, &p->scratch);

        if (bad_value(&v) || (v.type == DP_VAL_DOUBLE && !isfinite(v.u.d))) {
            dlq(p, x, "operator \"%s\": set %s: %s", o->id, p->slot_path[m->slot],
                bad_value(&v) ? verr_text(&v) : "not a finite number");
            return;
        }
        o->slots[m->slot] = v;
        clear_slots(o->slots, m->clear, m->nclear);
        patch[y->npatch++] = m->slot;
    }
    for (uint32_t k = 0; k < o->nrms; k++) {
        mset_t *m = &o->rms[k];

        o->slots[m->slot] = dp_val_missing();
        clear_slots(o->slots, m->clear, m->nclear);
        patch[y->npatch++] = m->slot | PATCH_REMOVE;
    }
    if (o->nproj > 0) {
        if (o->nproj > 64)
            pvals = o->agg_v; /* sized nproj at compile time */
        for (uint32_t k = 0; k < o->nproj; k++) {
            pvals[k] = dp_expr_eval(o->proj[k].e, &y->row, &p->scratch);
            if (bad_value(&pvals[k]) ||
                (pvals[k].type == DP_VAL_DOUBLE && !isfinite(pvals[k].u.d))) {
                dlq(p, x, "operator \"%s\": project %s: %s", o->id, p->slot_path[o->proj[k].slot],
                    bad_value(&pvals[k]) ? verr_text(&pvals[k]) : "not a finite number");
                return;
            }
        }
        clear_slots(o->slots, o->proj_clear, o->nproj_clear);
        y->base = BASE_EMPTY;
        y->npatch = 0;
        for (uint32_t k = 0; k < o->nproj; k++) {
            o->slots[o->proj[k].slot] = pvals[k];
            patch[y->npatch++] = o->proj[k].slot;
        }
    }
    if (o->key_e != NULL) {
        dp_val_t v = dp_expr_eval(o->key_e, &y->row, &p->scratch);
        int rc;

        if (bad_value(&v)) {
            dlq(p, x, "operator \"%s\": key: %s", o->id, verr_text(&v));
            return;
        }
        rc = val_text(&v, o->keybuf, &y->row.key, &y->row.key_len);
        if (rc < 0) {
            dlq(p, x, "operator \"%s\": key: not a finite number", o->id);
            return;
        }
        if (rc == 0) {
            y->row.key = NULL;
            y->row.key_len = 0;
        }
    }
    /* The root slot is stale after an edit (see pipeline-engine.md), unless
     * this map set the whole payload: then it is the value the patch and
     * any downstream read of `payload` need. */
    if (p->root_slot >= 0 && !o->sets_root)
        o->slots[p->root_slot] = dp_val_missing();
    y->row.flags |= DP_ROW_MODIFIED;
    run_node(p, &o->links, y);
}

/* The row with its payload encoded (for operators that keep or send it). */
static int row_for_state(dp_pipe_t *p, op_t *o, int side, const xrow_t *x, dp_row_t *r)
{
    *r = x->row;
    if (x->base == BASE_ORIG && x->npatch == 0)
        return 0;
    (void)side;
    return materialize(p, x, o->mat, &r->payload, &r->payload_len, p->matb_err,
                       sizeof(p->matb_err));
}

static void run_window(dp_pipe_t *p, op_t *o, const xrow_t *x)
{
    dp_val_t key = dp_val_null();
    dp_row_t r;
    int64_t ts = o->proc_time ? p->now : x->row.event_ms;
    int rc;

    if (o->key_e != NULL) {
        key = dp_expr_eval(o->key_e, &x->row, &p->scratch);
        if (bad_value(&key)) {
            dlq(p, x, "operator \"%s\": key: %s", o->id, verr_text(&key));
            return;
        }
    }
    for (uint32_t k = 0; k < o->wcfg.naggs; k++) {
        if (o->agg_e[k] == NULL) {
            o->agg_v[k] = dp_val_missing();
            continue;
        }
        o->agg_v[k] = dp_expr_eval(o->agg_e[k], &x->row, &p->scratch);
        if (o->agg_v[k].type == DP_VAL_ERR) {
            dlq(p, x, "operator \"%s\": aggregation %s: %s", o->id, o->res_names[3 + k],
                verr_text(&o->agg_v[k]));
            return;
        }
    }
    if (o->wcfg.keep_records) {
        rc = row_for_state(p, o, 0, x, &r);
        if (rc != 0) {
            dlq(p, x, "operator \"%s\": cannot encode the record: %s", o->id, p->matb_err);
            return;
        }
    } else {
        r = x->row;
    }
    if (o->win == NULL) { /* a failed re-creation in dp_pipe_load */
        dlq(p, x, "operator \"%s\": window state: %s", o->id, strerror(ENOMEM));
        return;
    }
    rc = dp_win_add(o->win, &key, ts, o->agg_v, &r, p->now);
    switch (rc) {
    case DP_WIN_OK:
        break;
    case DP_WIN_LATE_DROPPED:
        p->stats.late_dropped++;
        break;
    case DP_WIN_LATE_UPSERTED:
        p->stats.late_upserts++;
        break;
    case DP_WIN_LATE_SIDE:
        p->stats.late_side++;
        emit_output(p, (uint32_t)o->late_out, x);
        break;
    case -EINVAL:
        dlq(p, x, "operator \"%s\": invalid key or aggregation input (type or range)", o->id);
        break;
    default:
        dlq(p, x, "operator \"%s\": window state: %s", o->id, strerror(-rc));
        break;
    }
}

static void run_join(dp_pipe_t *p, op_t *o, uint32_t side, const xrow_t *x)
{
    dp_val_t key = dp_expr_eval(o->jkey[side], &x->row, &p->scratch);
    dp_row_t r;
    int rc;

    if (key.type == DP_VAL_ERR) {
        dlq(p, x, "operator \"%s\": %s: %s", o->id, side ? "rightKey" : "leftKey", verr_text(&key));
        return;
    }
    /* The join copies the bytes during the add, so one buffer pair serves
     * both sides. */
    rc = row_for_state(p, o, (int)side, x, &r);
    if (rc != 0) {
        dlq(p, x, "operator \"%s\": cannot encode the record: %s", o->id, p->matb_err);
        return;
    }
    if (o->join == NULL) { /* a failed re-creation in dp_pipe_load */
        dlq(p, x, "operator \"%s\": join state: %s", o->id, strerror(ENOMEM));
        return;
    }
    rc = dp_join_add(o->join, (int)side, &key, x->row.event_ms, &r);
    switch (rc) {
    case DP_JOIN_OK:
    case DP_JOIN_NOKEY:
        break;
    case DP_JOIN_LATE:
        p->stats.late_dropped++;
        break;
    default:
        dlq(p, x, "operator \"%s\": join state: %s", o->id, strerror(-rc));
        break;
    }
}

static void run_udf(dp_pipe_t *p, op_t *o, const xrow_t *x)
{
    dp_pipe_udf_req_t q = {.op = o->idx, .udf = (uint32_t)o->udf};
    dp_row_t r;
    int rc = row_for_state(p, o, 0, x, &r);

    if (rc != 0) {
        dlq(p, x, "operator \"%s\": cannot encode the record: %s", o->id, p->matb_err);
        return;
    }
    q.key = r.key;
    q.key_len = r.key_len;
    q.payload = r.payload;
    q.payload_len = r.payload_len;
    q.hdrs = r.hdrs;
    q.nhdrs = r.nhdrs;
    q.event_ms = r.event_ms;
    q.ts_ms = r.ts_ms;
    q.offset = x->src != NULL ? x->src->offset : -1;
    q.partition = x->src != NULL ? x->src->partition : -1;
    q.input = x->src != NULL ? x->src->input : UINT32_MAX;
    rc = p->opts.udf_submit(p->opts.udf_ctx, &q);
    if (rc != 0)
        dlq(p, x, "operator \"%s\": udf submit: %s", o->id, strerror(rc < 0 ? -rc : rc));
}

static void run_op(dp_pipe_t *p, op_t *o, uint32_t side, xrow_t *x)
{
    switch (o->type) {
    case OP_FILTER: {
        dp_val_err_t verr = DP_VERR_NONE;
        dp_expr_verdict_t v = dp_expr_filter(o->expr, &x->row, &p->scratch, &verr);

        if (v == DP_EXPR_PASS)
            run_node(p, &o->links, x);
        else if (v == DP_EXPR_DROP)
            p->stats.filtered++;
        else
            dlq(p, x, "operator \"%s\": filter: %s", o->id, dp_expr_errstr(verr));
        break;
    }
    case OP_MAP:
        run_map(p, o, x);
        break;
    case OP_WINDOW:
        run_window(p, o, x);
        break;
    case OP_JOIN:
        run_join(p, o, side, x);
        break;
    default:
        run_udf(p, o, x);
        break;
    }
}

static void run_node(dp_pipe_t *p, const links_t *l, xrow_t *x)
{
    for (uint32_t k = 0; k < l->nops; k++) {
        size_t mark = p->scratch.len;

        run_op(p, &p->ops[l->ops[k].op], l->ops[k].side, x);
        p->scratch.len = mark;
    }
    for (uint32_t k = 0; k < l->nouts; k++)
        emit_output(p, l->outs[k], x);
}

/* --------------------------------------------------------- result rows */

static void build_lazy(op_t *o)
{
    if (o->res_built)
        return;
    if (o->type == OP_WINDOW) {
        const dp_win_result_t *r = o->cur;
        uint32_t na = o->wcfg.naggs;

        o->res_vals[0] = r->key;
        o->res_vals[1] = dp_val_int(r->start_ms);
        o->res_vals[2] = dp_val_int(r->end_ms);
        for (uint32_t k = 0; k < na; k++)
            o->res_vals[3 + k] = r->aggs[k];
        o->res_vals[3 + na] = r->flags & DP_WIN_F_PARTIAL ? dp_val_bool(true) : dp_val_missing();
        o->res_vals[4 + na] = r->flags & DP_WIN_F_EARLY ? dp_val_bool(true) : dp_val_missing();
        o->res_vals[5 + na] = r->flags & DP_WIN_F_UPSERT ? dp_val_bool(true) : dp_val_missing();
        /* A non-finite aggregate (a DOUBLE sum overflowing) is written as null. */
        for (uint32_t k = 0; k < o->nres; k++) {
            if (o->res_vals[k].type == DP_VAL_DOUBLE && !isfinite(o->res_vals[k].u.d))
                o->res_vals[k] = dp_val_null();
        }
        o->res_built = dp_fields_build_json(o->res_names, o->res_vals, o->nres, &o->res) == 0;
        return;
    }
    /* join: {"left": <payload|null>, "right": <payload|null>} */
    const dp_join_pair_t *pr = o->pair;
    const dp_join_rec_t *side[2] = {pr->left, pr->right};
    bool ok = true;

    o->res.len = 0;
    for (int s = 0; s < 2 && ok; s++) {
        const dp_join_rec_t *r = side[s];

        ok = buf_put(&o->res, s == 0 ? "{\"left\":" : ",\"right\":", s == 0 ? 8 : 9);
        if (!ok)
            break;
        if (r == NULL || r->payload == NULL || r->payload_len == 0)
            ok = buf_put(&o->res, "null", 4);
        else if (o->side_fmt[s] == DP_FIELDS_JSON)
            ok = buf_put(&o->res, r->payload, r->payload_len);
        else
            ok = buf_put_jstr(&o->res, r->payload, r->payload_len);
    }
    o->res_built = ok && buf_put(&o->res, "}", 1);
}

/* Prepares o->x as a result row: every slot MISSING but those in o->rs. */
static void result_row(dp_pipe_t *p, op_t *o, const dp_val_t *key, int64_t t)
{
    xrow_t *y = &o->x;
    const char *ks;
    uint32_t kl;

    memset(o->slots, 0, p->nslots * sizeof(dp_val_t));
    memset(&y->row, 0, sizeof(y->row));
    y->row.slots = o->slots;
    y->row.nslots = p->nslots;
    y->row.event_ms = t;
    y->row.ts_ms = t;
    y->row.offset = -1;
    y->row.partition = -1;
    if (val_text(key, o->keybuf, &ks, &kl) == 1) {
        y->row.key = ks;
        y->row.key_len = kl;
    }
    y->src = NULL;
    y->lazy = o;
    y->origin = o;
    y->base = BASE_LAZY;
    y->fmt = DP_FIELDS_JSON;
    y->patch = o->patch;
    y->npatch = 0;
    o->res_built = false;
}

static void win_emit(void *ctx, const dp_win_result_t *r)
{
    op_t *o = ctx;
    dp_pipe_t *p = o->pipe;
    size_t mark = p->scratch.len;

    p->stats.windows_fired++;
    if (o->udf >= 0) {
        dp_pipe_udf_req_t q = {.op = o->idx,
                               .udf = (uint32_t)o->udf,
                               .window = true,
                               .recs = r->recs,
                               .nrecs = r->nrecs,
                               .win_start_ms = r->start_ms,
                               .win_end_ms = r->end_ms,
                               .event_ms = r->end_ms - 1,
                               .ts_ms = r->end_ms - 1,
                               .offset = -1,
                               .partition = -1,
                               .input = UINT32_MAX,
                               .partial = (r->flags & DP_WIN_F_PARTIAL) != 0};
        int rc;

        if (val_text(&r->key, o->keybuf, &q.key, &q.key_len) != 1)
            q.key = NULL, q.key_len = 0;
        rc = p->opts.udf_submit(p->opts.udf_ctx, &q);
        if (rc != 0) {
            o->cur = r;
            result_row(p, o, &r->key, r->end_ms - 1);
            dlq(p, &o->x, "operator \"%s\": udf submit: %s", o->id, strerror(rc < 0 ? -rc : rc));
            o->cur = NULL;
        }
        return;
    }
    o->cur = r;
    result_row(p, o, &r->key, r->end_ms - 1);
    for (uint32_t k = 0; k < o->nrs; k++) {
        dp_val_t *v = &o->slots[o->rs[k].slot];
        uint32_t w = o->rs[k].what;

        switch (w) {
        case R_KEY:
            *v = r->key;
            break;
        case R_START:
            *v = dp_val_int(r->start_ms);
            break;
        case R_END:
            *v = dp_val_int(r->end_ms);
            break;
        case R_PARTIAL:
            if (r->flags & DP_WIN_F_PARTIAL)
                *v = dp_val_bool(true);
            break;
        case R_EARLY:
            if (r->flags & DP_WIN_F_EARLY)
                *v = dp_val_bool(true);
            break;
        case R_UPSERT:
            if (r->flags & DP_WIN_F_UPSERT)
                *v = dp_val_bool(true);
            break;
        case R_RECKEY:
            *v = o->x.row.key != NULL ? dp_val_str(o->x.row.key, o->x.row.key_len) : dp_val_null();
            break;
        case R_TIME:
            *v = dp_val_int(r->end_ms - 1);
            break;
        case R_ROOT:
            build_lazy(o);
            *v = o->res_built ? dp_val_str(o->res.data, (uint32_t)o->res.len) : dp_val_missing();
            break;
        default:
            *v = r->aggs[w - R_AGG];
            break;
        }
    }
    run_node(p, &o->links, &o->x);
    p->scratch.len = mark;
    o->cur = NULL;
}

static void join_emit(void *ctx, const dp_join_pair_t *pr)
{
    op_t *o = ctx;
    dp_pipe_t *p = o->pipe;
    const dp_join_rec_t *side[2] = {pr->left, pr->right};
    int64_t t = o->jcfg.kind == DP_JOIN_WINDOW ? pr->win_end_ms - 1 : pr->event_ms;
    size_t mark = p->scratch.len;
    dp_val_t nokey = dp_val_null();

    p->stats.joins_emitted++;
    o->pair = pr;
    result_row(p, o, pr->key != NULL ? pr->key : &nokey, t);
    for (uint32_t k = 0; k < o->nrs; k++) {
        dp_val_t *v = &o->slots[o->rs[k].slot];

        switch (o->rs[k].what) {
        case R_RECKEY:
            *v = o->x.row.key != NULL ? dp_val_str(o->x.row.key, o->x.row.key_len) : dp_val_null();
            break;
        case R_TIME:
            *v = dp_val_int(t);
            break;
        default:
            build_lazy(o);
            *v = o->res_built ? dp_val_str(o->res.data, (uint32_t)o->res.len) : dp_val_missing();
            break;
        }
    }
    for (int s = 0; s < 2; s++) {
        side_dec_t *d = &o->dec[s];

        if (d->f == NULL && d->root < 0)
            continue;
        if (side[s] == NULL || side[s]->payload == NULL) {
            if (d->root >= 0)
                o->slots[d->root] = dp_val_null();
            continue;
        }
        if (d->f != NULL) {
            dp_row_t tr = {.payload = side[s]->payload,
                           .payload_len = side[s]->payload_len,
                           .slots = d->slots,
                           .nslots = d->n,
                           .offset = -1,
                           .partition = -1};

            if (dp_fields_decode(d->f, &tr, o->side_fmt[s], &d->doc) == 0) {
                for (uint32_t k = 0; k < d->n; k++)
                    o->slots[d->gslot[k]] = d->slots[k];
            }
        }
    }
    run_node(p, &o->links, &o->x);
    for (int s = 0; s < 2; s++) {
        if (o->dec[s].f != NULL)
            dp_fields_doc_reset(&o->dec[s].doc);
    }
    p->scratch.len = mark;
    o->pair = NULL;
}

/* ------------------------------------------------------------- compile */

static int compile_expr(dp_pipe_t *p, const json_t *src, dp_expr_t **out, char *err, size_t errlen,
                        const char *ptr)
{
    char msg[256];
    int rc;

    if (!json_is_string(src))
        return failf(err, errlen, "%s: expected an expression string", ptr);
    rc = dp_expr_compile(json_string_value(src), dp_fields_resolve, p->f, out, msg, sizeof(msg));
    if (rc != 0)
        return failf(err, errlen, "%s: %s", ptr, msg);
    return 0;
}

static int intern(dp_pipe_t *p, const char *path, char *err, size_t errlen, const char *ptr)
{
    char msg[160] = "";
    int rc = dp_fields_check_path(path, strlen(path), msg, sizeof(msg));

    if (rc == 0)
        rc = dp_fields_slot(p->f, path, strlen(path));
    if (rc == -ENOSPC)
        return failf(err, errlen, "%s: more than %d distinct field paths", ptr, DP_FIELDS_MAX);
    if (rc < 0)
        return failf(err, errlen, "%s: invalid field path \"%s\"%s%s", ptr, path,
                     msg[0] ? ": " : "", msg);
    return rc;
}

static int links_add_op(links_t *l, uint32_t op, uint32_t side)
{
    edge_t *n = realloc(l->ops, (l->nops + 1) * sizeof(*n));

    if (n == NULL)
        return -ENOMEM;
    l->ops = n;
    l->ops[l->nops].op = op;
    l->ops[l->nops++].side = side;
    return 0;
}

static int links_add_out(links_t *l, uint32_t out)
{
    uint32_t *n = realloc(l->outs, (l->nouts + 1) * sizeof(*n));

    if (n == NULL)
        return -ENOMEM;
    l->outs = n;
    l->outs[l->nouts++] = out;
    return 0;
}

static int unit_of(const char *s)
{
    for (int k = 0; k < 4; k++) {
        if (streq(s, k_units[k]))
            return k;
    }
    return U_MS;
}

static int compile_inputs(dp_pipe_t *p, const json_t *spec, char *err, size_t errlen)
{
    const json_t *arr = json_object_get(spec, "inputs");
    const json_t *replica = json_object_get(spec, "replica");
    int64_t rindex = jint(replica, "index", 0), rcount = jint(replica, "count", 1);
    char ptr[96];
    size_t i;
    json_t *v;

    p->nin = (uint32_t)json_array_size(arr);
    p->in = calloc(p->nin ? p->nin : 1, sizeof(*p->in));
    if (p->in == NULL)
        return -ENOMEM;
    json_array_foreach (arr, i, v) {
        input_t *in = &p->in[i];
        const json_t *time = json_object_get(v, "time");
        const json_t *wm = json_object_get(v, "watermark");
        const json_t *parts = json_object_get(v, "partitions");
        const char *src = json_string_value(json_object_get(time, "source"));
        const char *field = json_string_value(json_object_get(time, "field"));

        in->name = xstrdup(json_string_value(json_object_get(v, "name")));
        in->topic = xstrdup(json_string_value(json_object_get(v, "topic")));
        if (in->name == NULL || in->topic == NULL)
            return -ENOMEM;
        in->fmt = streq(json_string_value(json_object_get(v, "format")), "raw") ? DP_FIELDS_RAW
                                                                                : DP_FIELDS_JSON;
        in->table = json_is_true(json_object_get(v, "table"));
        in->unit = unit_of(json_string_value(json_object_get(time, "unit")));
        in->time_slot = -1;
        in->ooo_ms = jint(wm, "maxOutOfOrdernessMs", 0);
        in->idle_ms = jint(wm, "idleTimeoutMs", 0);
        if (src == NULL || streq(src, "timestamp")) {
            in->time_src = TS_TIMESTAMP;
            in->time_implicit = time == NULL;
        } else if (streq(src, "processing")) {
            in->time_src = TS_PROCESSING;
        } else {
            char path[DP_FIELDS_PATH_MAX + 8];
            int slot;

            in->time_src = streq(src, "header") ? TS_HEADER : TS_PAYLOAD;
            if (field == NULL)
                return failf(err, errlen, "/inputs/%zu/time: source %s needs a field", i, src);
            if (in->time_src == TS_HEADER && strncmp(field, "header.", 7) != 0)
                snprintf(path, sizeof(path), "header.%s", field);
            else
                snprintf(path, sizeof(path), "%s", field);
            if (in->time_src == TS_PAYLOAD && strncmp(path, "payload", 7) != 0)
                return failf(err, errlen,
                             "/inputs/%zu/time/field: a payload time needs a payload.* path, "
                             "not \"%s\"",
                             i, field);
            snprintf(ptr, sizeof(ptr), "/inputs/%zu/time/field", i);
            slot = intern(p, path, err, errlen, ptr);
            if (slot < 0)
                return slot;
            in->time_slot = slot;
        }
        if (parts == NULL) {
            in->dynamic = true;
            continue;
        }
        {
            int64_t count = jint(parts, "count", 1);
            const json_t *as = json_object_get(parts, "assigned");
            size_t k;
            json_t *pv;

            in->npidx = (uint32_t)count;
            in->pidx = malloc(in->npidx * sizeof(*in->pidx));
            in->assigned = calloc((size_t)count, sizeof(*in->assigned));
            if (in->pidx == NULL || in->assigned == NULL)
                return -ENOMEM;
            for (uint32_t q = 0; q < in->npidx; q++)
                in->pidx[q] = -1;
            if (as != NULL) {
                json_array_foreach (as, k, pv) {
                    int64_t q = json_integer_value(pv);

                    if (q < 0 || q >= count || in->pidx[q] >= 0)
                        continue; /* validated; duplicates ignored */
                    in->assigned[in->nassigned] = (int32_t)q;
                    in->pidx[q] = (int32_t)in->nassigned++;
                }
            } else {
                for (int64_t q = 0; q < count; q++) {
                    if (q % rcount == rindex) {
                        in->assigned[in->nassigned] = (int32_t)q;
                        in->pidx[q] = (int32_t)in->nassigned++;
                    }
                }
            }
            in->parts = calloc(in->nassigned + 1, sizeof(*in->parts));
            if (in->parts == NULL)
                return -ENOMEM;
            in->nparts = in->cap_parts = in->nassigned;
            for (uint32_t q = 0; q < in->nparts; q++)
                part_init(&in->parts[q], in->assigned[q]);
        }
    }
    return 0;
}

static int win_shape(const json_t *w, dp_win_cfg_t *c)
{
    const char *kind = json_string_value(json_object_get(w, "kind"));

    c->kind = streq(kind, "hopping")   ? DP_WIN_HOPPING
              : streq(kind, "session") ? DP_WIN_SESSION
                                       : DP_WIN_TUMBLING;
    c->size_ms = jint(w, "sizeMs", 0);
    c->slide_ms = jint(w, "slideMs", 0);
    c->gap_ms = jint(w, "gapMs", 0);
    return 0;
}

static const char *const k_fns[] = {"count", "sum", "min", "max", "avg", "first", "last"};

static int udf_index(const json_t *spec, const char *name)
{
    size_t i;
    json_t *v;

    json_array_foreach (json_object_get(spec, "udfs"), i, v) {
        if (streq(json_string_value(json_object_get(v, "name")), name))
            return (int)i;
    }
    return -1;
}

static int compile_window(dp_pipe_t *p, const json_t *spec, const json_t *v, size_t i, op_t *o,
                          char *err, size_t errlen)
{
    const json_t *aggs = json_object_get(v, "aggregations");
    const json_t *emit = json_object_get(v, "emit");
    const json_t *late = json_object_get(v, "late");
    const char *mode = json_string_value(json_object_get(late, "mode"));
    const char *udf = json_string_value(json_object_get(v, "udf"));
    dp_win_cfg_t *c = &o->wcfg;
    char ptr[96];
    size_t k;
    json_t *a;
    int rc;

    if (json_object_get(v, "key") != NULL) {
        snprintf(ptr, sizeof(ptr), "/operators/%zu/key", i);
        rc = compile_expr(p, json_object_get(v, "key"), &o->key_e, err, errlen, ptr);
        if (rc != 0)
            return rc;
    }
    o->proc_time = streq(json_string_value(json_object_get(v, "time")), "processing");
    c->time = o->proc_time ? DP_WIN_PROCESSING_TIME : DP_WIN_EVENT_TIME;
    win_shape(json_object_get(v, "window"), c);
    c->naggs = (uint32_t)json_array_size(aggs);
    if (c->naggs > DP_WIN_AGGS_MAX)
        return failf(err, errlen, "/operators/%zu/aggregations: more than %d", i, DP_WIN_AGGS_MAX);
    o->nres = 3 + c->naggs + 3;
    o->agg_e = calloc(c->naggs + 1, sizeof(*o->agg_e));
    o->agg_v = calloc(c->naggs + 1, sizeof(*o->agg_v));
    o->res_names = calloc(o->nres, sizeof(*o->res_names));
    o->res_vals = calloc(o->nres, sizeof(*o->res_vals));
    if (o->agg_e == NULL || o->agg_v == NULL || o->res_names == NULL || o->res_vals == NULL)
        return -ENOMEM;
    for (int r = 0; r < 3; r++) {
        o->res_names[r] = k_res_names[r];
        o->res_names[3 + c->naggs + r] = k_res_flags[r];
    }
    json_array_foreach (aggs, k, a) {
        const char *name = json_string_value(json_object_get(a, "name"));
        const char *fn = json_string_value(json_object_get(a, "fn"));

        for (int r = 0; r < 3; r++) {
            if (streq(name, k_res_names[r]) || streq(name, k_res_flags[r]))
                return failf(err, errlen,
                             "/operators/%zu/aggregations/%zu/name: \"%s\" is a field of the "
                             "window result; choose another name",
                             i, k, name);
        }
        for (size_t q = 0; q < k; q++) {
            if (streq(name, o->res_names[3 + q]))
                return failf(err, errlen, "/operators/%zu/aggregations/%zu/name: duplicate \"%s\"",
                             i, k, name);
        }
        o->res_names[3 + k] = xstrdup(name);
        if (o->res_names[3 + k] == NULL)
            return -ENOMEM;
        c->aggs[k] = DP_WIN_COUNT;
        for (int f = 0; f < 7; f++) {
            if (streq(fn, k_fns[f]))
                c->aggs[k] = (dp_win_fn_t)f;
        }
        if (json_object_get(a, "field") != NULL && c->aggs[k] != DP_WIN_COUNT) {
            snprintf(ptr, sizeof(ptr), "/operators/%zu/aggregations/%zu/field", i, k);
            rc = compile_expr(p, json_object_get(a, "field"), &o->agg_e[k], err, errlen, ptr);
            if (rc != 0)
                return rc;
        }
    }
    c->early_firing_ms = jint(emit, "earlyFiringMs", 0);
    c->idle_timeout_ms = jint(emit, "idleTimeoutMs", 0);
    c->late_mode = streq(mode, "UPSERT")        ? DP_WIN_LATE_UPSERT
                   : streq(mode, "SIDE_OUTPUT") ? DP_WIN_LATE_SIDE_OUTPUT
                                                : DP_WIN_LATE_DROP;
    c->allowed_lateness_ms = jint(late, "allowedLatenessMs", 0);
    o->late_out = -1;
    o->udf = -1;
    if (udf != NULL) {
        o->udf = udf_index(spec, udf);
        if (o->udf < 0)
            return failf(err, errlen, "/operators/%zu/udf: no udf named \"%s\"", i, udf);
        c->keep_records = true;
    }
    c->emit = win_emit;
    c->ctx = o;
    return 0;
}

static int compile_join(dp_pipe_t *p, const json_t *v, size_t i, op_t *o, char *err, size_t errlen)
{
    const char *kind = json_string_value(json_object_get(v, "kind"));
    const char *jt = json_string_value(json_object_get(v, "joinType"));
    dp_join_cfg_t *c = &o->jcfg;
    char ptr[96];
    int rc;

    c->kind = streq(kind, "interval") ? DP_JOIN_INTERVAL
              : streq(kind, "table")  ? DP_JOIN_TABLE
                                      : DP_JOIN_WINDOW;
    c->type = streq(jt, "left") ? DP_JOIN_LEFT : streq(jt, "full") ? DP_JOIN_FULL : DP_JOIN_INNER;
    if (c->kind == DP_JOIN_WINDOW) {
        dp_win_cfg_t w = {0};

        win_shape(json_object_get(v, "window"), &w);
        c->win = w.kind == DP_WIN_HOPPING   ? DP_JOIN_WIN_HOPPING
                 : w.kind == DP_WIN_SESSION ? DP_JOIN_WIN_SESSION
                                            : DP_JOIN_WIN_TUMBLING;
        c->size_ms = w.size_ms;
        c->slide_ms = w.slide_ms;
    } else if (c->kind == DP_JOIN_INTERVAL) {
        c->lower_ms = jint(v, "lowerMs", 0);
        c->upper_ms = jint(v, "upperMs", 0);
    }
    rc = dp_join_cfg_check(c);
    if (rc == -ENOTSUP)
        return failf(err, errlen, "/operators/%zu: not supported: %s", i,
                     c->win == DP_JOIN_WIN_SESSION && c->kind == DP_JOIN_WINDOW
                         ? "session windows in a join"
                         : "joinType full is only supported for window joins");
    if (rc != 0)
        return failf(err, errlen, "/operators/%zu: invalid join bounds or window size", i);
    snprintf(ptr, sizeof(ptr), "/operators/%zu/leftKey", i);
    rc = compile_expr(p, json_object_get(v, "leftKey"), &o->jkey[0], err, errlen, ptr);
    if (rc != 0)
        return rc;
    snprintf(ptr, sizeof(ptr), "/operators/%zu/rightKey", i);
    return compile_expr(p, json_object_get(v, "rightKey"), &o->jkey[1], err, errlen, ptr);
}

static bool payload_path(const char *path)
{
    return strncmp(path, "payload", 7) == 0 && (path[7] == '\0' || path[7] == '.');
}

static int compile_map(dp_pipe_t *p, const json_t *v, size_t i, op_t *o, char *err, size_t errlen)
{
    const json_t *set = json_object_get(v, "set");
    const json_t *rm = json_object_get(v, "remove");
    const json_t *proj = json_object_get(v, "project");
    char ptr[DP_FIELDS_PATH_MAX + 64], path[DP_FIELDS_PATH_MAX + 16];
    const char *name;
    json_t *e;
    size_t k;
    int rc;

    o->sets = calloc(json_object_size(set) + 1, sizeof(*o->sets));
    o->rms = calloc(json_array_size(rm) + 1, sizeof(*o->rms));
    o->proj = calloc(json_object_size(proj) + 1, sizeof(*o->proj));
    if (o->sets == NULL || o->rms == NULL || o->proj == NULL)
        return -ENOMEM;
    json_object_foreach ((json_t *)set, name, e) {
        snprintf(ptr, sizeof(ptr), "/operators/%zu/set/%s", i, name);
        if (streq(name, "key")) {
            if (o->key_e != NULL || json_object_get(v, "key") != NULL)
                return failf(err, errlen, "%s: the key is set twice (set.key and key)", ptr);
            rc = compile_expr(p, e, &o->key_e, err, errlen, ptr);
            if (rc != 0)
                return rc;
            continue;
        }
        if (!payload_path(name))
            return failf(err, errlen, "%s: only payload paths and key can be set", ptr);
        rc = compile_expr(p, e, &o->sets[o->nsets].e, err, errlen, ptr);
        if (rc != 0)
            return rc;
        rc = intern(p, name, err, errlen, ptr);
        if (rc < 0)
            return rc;
        o->sets[o->nsets++].slot = (uint32_t)rc;
    }
    json_array_foreach (rm, k, e) {
        const char *s = json_string_value(e);

        snprintf(ptr, sizeof(ptr), "/operators/%zu/remove/%zu", i, k);
        if (s == NULL || !payload_path(s) || strcmp(s, "payload") == 0)
            return failf(err, errlen, "%s: only payload.* paths can be removed", ptr);
        rc = intern(p, s, err, errlen, ptr);
        if (rc < 0)
            return rc;
        o->rms[o->nrms++].slot = (uint32_t)rc;
    }
    json_object_foreach ((json_t *)proj, name, e) {
        snprintf(ptr, sizeof(ptr), "/operators/%zu/project/%s", i, name);
        rc = compile_expr(p, e, &o->proj[o->nproj].e, err, errlen, ptr);
        if (rc != 0)
            return rc;
        snprintf(path, sizeof(path), "payload.%s", name);
        rc = intern(p, path, err, errlen, ptr);
        if (rc < 0)
            return rc;
        o->proj[o->nproj++].slot = (uint32_t)rc;
    }
    if (o->nproj > 64) {
        free(o->agg_v);
        o->agg_v = calloc(o->nproj, sizeof(*o->agg_v));
        if (o->agg_v == NULL)
            return -ENOMEM;
    }
    if (json_object_get(v, "key") != NULL) {
        snprintf(ptr, sizeof(ptr), "/operators/%zu/key", i);
        rc = compile_expr(p, json_object_get(v, "key"), &o->key_e, err, errlen, ptr);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int compile_ops(dp_pipe_t *p, const json_t *spec, char *err, size_t errlen)
{
    const json_t *arr = json_object_get(spec, "operators");
    char ptr[96];
    size_t i;
    json_t *v;
    int rc;

    p->nops = (uint32_t)json_array_size(arr);
    p->ops = calloc(p->nops ? p->nops : 1, sizeof(*p->ops));
    if (p->ops == NULL)
        return -ENOMEM;
    json_array_foreach (arr, i, v) {
        op_t *o = &p->ops[i];
        const char *type = json_string_value(json_object_get(v, "type"));

        o->idx = (uint32_t)i;
        o->pipe = p;
        o->udf = -1;
        o->late_out = -1;
        o->dec[0].root = o->dec[1].root = -1;
        o->id = xstrdup(json_string_value(json_object_get(v, "id")));
        if (o->id == NULL)
            return -ENOMEM;
        if (streq(type, "filter")) {
            o->type = OP_FILTER;
            snprintf(ptr, sizeof(ptr), "/operators/%zu/expr", i);
            rc = compile_expr(p, json_object_get(v, "expr"), &o->expr, err, errlen, ptr);
        } else if (streq(type, "map")) {
            o->type = OP_MAP;
            rc = compile_map(p, v, i, o, err, errlen);
        } else if (streq(type, "window")) {
            o->type = OP_WINDOW;
            rc = compile_window(p, spec, v, i, o, err, errlen);
        } else if (streq(type, "join")) {
            o->type = OP_JOIN;
            rc = compile_join(p, v, i, o, err, errlen);
        } else if (streq(type, "udf")) {
            const char *udf = json_string_value(json_object_get(v, "udf"));

            o->type = OP_UDF;
            o->udf = udf_index(spec, udf);
            rc = o->udf < 0 ? failf(err, errlen, "/operators/%zu/udf: no udf named \"%s\"", i, udf)
                            : 0;
        } else {
            rc = failf(err, errlen, "/operators/%zu/type: unknown operator type \"%s\"", i,
                       type != NULL ? type : "");
        }
        if (rc != 0)
            return rc;
        if (o->udf >= 0 && p->opts.udf_submit == NULL)
            return failf(err, errlen,
                         "/operators/%zu/udf: operator \"%s\" calls UDF \"%s\" but this "
                         "process has no UDF channel (dp_pipe_opts_t.udf_submit is NULL)",
                         i, o->id, json_string_value(json_object_get(v, "udf")));
    }
    return 0;
}

static int compile_outputs(dp_pipe_t *p, const json_t *spec, char *err, size_t errlen)
{
    const json_t *arr = json_object_get(spec, "outputs");
    char ptr[512];
    size_t i;
    json_t *v;
    int rc;

    p->nout = (uint32_t)json_array_size(arr);
    p->out = calloc(p->nout ? p->nout : 1, sizeof(*p->out));
    if (p->out == NULL)
        return -ENOMEM;
    json_array_foreach (arr, i, v) {
        output_t *o = &p->out[i];
        const json_t *pb = json_object_get(v, "partitionBy");
        const json_t *hs = json_object_get(v, "headers");
        const json_t *wmh = json_object_get(v, "watermarkHeaders");
        const char *name;
        json_t *e;

        o->name = xstrdup(json_string_value(json_object_get(v, "name")));
        if (o->name == NULL)
            return -ENOMEM;
        o->wm_hdrs = wmh == NULL || json_is_true(wmh);
        if (json_object_get(pb, "key") != NULL) {
            snprintf(ptr, sizeof(ptr), "/outputs/%zu/partitionBy/key", i);
            rc = compile_expr(p, json_object_get(pb, "key"), &o->part_e, err, errlen, ptr);
            if (rc != 0)
                return rc;
        } else if (json_object_get(pb, "header") != NULL) {
            o->part_hdr = xstrdup(json_string_value(json_object_get(pb, "header")));
            if (o->part_hdr == NULL)
                return -ENOMEM;
        }
        o->nh = (uint32_t)json_object_size(hs);
        o->hname = calloc(o->nh + 1, sizeof(*o->hname));
        o->hexpr = calloc(o->nh + 1, sizeof(*o->hexpr));
        o->hval = calloc(o->nh + 1, sizeof(*o->hval));
        o->hnum = calloc(o->nh + 1, sizeof(*o->hnum));
        if (o->hname == NULL || o->hexpr == NULL || o->hval == NULL || o->hnum == NULL)
            return -ENOMEM;
        o->nh = 0;
        json_object_foreach ((json_t *)hs, name, e) {
            snprintf(ptr, sizeof(ptr), "/outputs/%zu/headers/%s", i, name);
            o->hname[o->nh] = xstrdup(name);
            if (o->hname[o->nh] == NULL)
                return -ENOMEM;
            rc = compile_expr(p, e, &o->hexpr[o->nh++], err, errlen, ptr);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* Node index of a name: inputs first, then operators; -1 if unknown. */
static int node_of(const dp_pipe_t *p, const char *name)
{
    for (uint32_t i = 0; i < p->nin; i++) {
        if (streq(p->in[i].name, name))
            return (int)i;
    }
    for (uint32_t i = 0; i < p->nops; i++) {
        if (streq(p->ops[i].id, name))
            return (int)(p->nin + i);
    }
    return -1;
}

static links_t *links_of(dp_pipe_t *p, int node)
{
    return node < (int)p->nin ? &p->in[node].links : &p->ops[node - (int)p->nin].links;
}

static int link_nodes(dp_pipe_t *p, const json_t *spec, char *err, size_t errlen)
{
    const json_t *ops = json_object_get(spec, "operators");
    size_t i, k;
    json_t *v, *s;

    json_array_foreach (ops, i, v) {
        json_array_foreach (json_object_get(v, "from"), k, s) {
            int n = node_of(p, json_string_value(s));

            if (n < 0)
                return failf(err, errlen, "/operators/%zu/from/%zu: no input or operator \"%s\"", i,
                             k, json_string_value(s));
            if (links_add_op(links_of(p, n), (uint32_t)i,
                             p->ops[i].type == OP_JOIN ? (uint32_t)k : 0) != 0)
                return -ENOMEM;
        }
        if (p->ops[i].type == OP_WINDOW) {
            const char *lo =
                json_string_value(json_object_get(json_object_get(v, "late"), "output"));

            for (uint32_t q = 0; lo != NULL && q < p->nout; q++) {
                if (streq(p->out[q].name, lo))
                    p->ops[i].late_out = (int32_t)q;
            }
            if (p->ops[i].wcfg.late_mode == DP_WIN_LATE_SIDE_OUTPUT && p->ops[i].late_out < 0)
                return failf(err, errlen, "/operators/%zu/late/output: no output named \"%s\"", i,
                             lo != NULL ? lo : "");
        }
    }
    json_array_foreach (json_object_get(spec, "outputs"), i, v) {
        const char *from = json_string_value(json_object_get(v, "from"));
        int n;

        if (from == NULL)
            continue; /* a late side output */
        n = node_of(p, from);
        if (n < 0)
            return failf(err, errlen, "/outputs/%zu/from: no input or operator \"%s\"", i, from);
        if (links_add_out(links_of(p, n), (uint32_t)i) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* Slots of paths strictly below `path`. */
static int descendants(dp_pipe_t *p, uint32_t slot, uint32_t **out, uint32_t *n)
{
    const char *path = p->slot_path[slot];
    size_t len = strlen(path);

    *n = 0;
    *out = calloc(p->nslots + 1, sizeof(**out));
    if (*out == NULL)
        return -ENOMEM;
    for (uint32_t s = 0; s < p->nslots; s++) {
        if (s != slot && strncmp(p->slot_path[s], path, len) == 0 && p->slot_path[s][len] == '.')
            (*out)[(*n)++] = s;
    }
    return 0;
}

static int result_slots(dp_pipe_t *p, op_t *o)
{
    o->rs = calloc(p->nslots + 1, sizeof(*o->rs));
    if (o->rs == NULL)
        return -ENOMEM;
    for (uint32_t s = 0; s < p->nslots; s++) {
        const char *path = p->slot_path[s];
        int what = -1;

        if (streq(path, "key"))
            what = R_RECKEY;
        else if (streq(path, "timestamp") || streq(path, "eventtime"))
            what = R_TIME;
        else if (streq(path, "payload"))
            what = R_ROOT;
        else if (o->type == OP_WINDOW && strncmp(path, "payload.", 8) == 0) {
            const char *f = path + 8;

            for (uint32_t r = 0; r < o->nres; r++) {
                if (streq(f, o->res_names[r]))
                    what = r < 3                   ? (int)r
                           : r < 3 + o->wcfg.naggs ? (int)(R_AGG + r - 3)
                                                   : (int)(R_PARTIAL + r - 3 - o->wcfg.naggs);
            }
        }
        if (what >= 0) {
            o->rs[o->nrs].slot = s;
            o->rs[o->nrs++].what = (uint32_t)what;
        }
    }
    return 0;
}

static int join_decoders(dp_pipe_t *p, op_t *o)
{
    static const char *const pre[2] = {"payload.left", "payload.right"};

    for (int s = 0; s < 2; s++) {
        side_dec_t *d = &o->dec[s];
        size_t pl = strlen(pre[s]);

        for (uint32_t g = 0; g < p->nslots; g++) {
            const char *path = p->slot_path[g];
            char sub[DP_FIELDS_PATH_MAX + 8];
            int rc;

            if (strncmp(path, pre[s], pl) != 0)
                continue;
            if (path[pl] == '\0') {
                d->root = (int)g;
                continue;
            }
            if (path[pl] != '.')
                continue;
            if (d->f == NULL) {
                rc = dp_fields_new(&d->f);
                if (rc != 0)
                    return rc;
                d->gslot = calloc(p->nslots, sizeof(*d->gslot));
                if (d->gslot == NULL)
                    return -ENOMEM;
            }
            snprintf(sub, sizeof(sub), "payload%s", path + pl);
            rc = dp_fields_slot(d->f, sub, strlen(sub));
            if (rc < 0)
                return rc;
            d->gslot[rc] = g;
        }
        if (d->f != NULL) {
            d->n = dp_fields_count(d->f);
            d->slots = calloc(d->n, sizeof(*d->slots));
            d->arena = malloc(DOC_ARENA_BYTES);
            if (d->slots == NULL || d->arena == NULL)
                return -ENOMEM;
            dp_fields_doc_init(&d->doc, d->arena, DOC_ARENA_BYTES);
        }
    }
    return 0;
}

static int state_new(op_t *o)
{
    if (o->type == OP_WINDOW)
        return dp_win_new(&o->wcfg, &o->win);
    if (o->type == OP_JOIN)
        return dp_join_new(&o->join, &o->jcfg, join_emit, o);
    return 0;
}

static void state_free(op_t *o)
{
    dp_win_free(o->win);
    o->win = NULL;
    dp_join_free(o->join);
    o->join = NULL;
}

/* The spec parts that shape state: inputs' names and time, and operators. */
static uint64_t spec_hash(const json_t *spec)
{
    json_t *h = json_object(), *ins = json_array();
    size_t i;
    json_t *v;
    char *txt;
    uint64_t r = 0;

    json_array_foreach (json_object_get(spec, "inputs"), i, v) {
        json_t *o = json_object();

        json_object_set(o, "name", json_object_get(v, "name"));
        if (json_object_get(v, "time") != NULL)
            json_object_set(o, "time", json_object_get(v, "time"));
        if (json_object_get(v, "watermark") != NULL)
            json_object_set(o, "watermark", json_object_get(v, "watermark"));
        if (json_object_get(v, "table") != NULL)
            json_object_set(o, "table", json_object_get(v, "table"));
        json_array_append_new(ins, o);
    }
    json_object_set_new(h, "inputs", ins);
    if (json_object_get(spec, "operators") != NULL)
        json_object_set(h, "operators", json_object_get(spec, "operators"));
    txt = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    if (txt != NULL)
        r = fnv1a(txt, strlen(txt));
    free(txt);
    json_decref(h);
    return r;
}

static int finish(dp_pipe_t *p, const json_t *spec, char *err, size_t errlen)
{
    json_t *order;
    size_t i;
    json_t *v;
    int rc;

    p->nslots = dp_fields_count(p->f);
    p->slot_path = calloc(p->nslots + 1, sizeof(*p->slot_path));
    if (p->slot_path == NULL)
        return -ENOMEM;
    for (uint32_t s = 0; s < p->nslots; s++) {
        p->slot_path[s] = dp_fields_path(p->f, s);
        if (dp_fields_kind(p->f, s) == DP_FIELD_EVENTTIME)
            p->ev_slot = (int)s;
        if (dp_fields_kind(p->f, s) == DP_FIELD_PAYLOAD_ROOT)
            p->root_slot = (int)s;
    }
    p->maxpatch = 1;
    for (uint32_t k = 0; k < p->nops; k++)
        p->maxpatch += p->ops[k].nsets + p->ops[k].nrms + p->ops[k].nproj;
    for (uint32_t k = 0; k < p->nops; k++) {
        op_t *o = &p->ops[k];

        for (uint32_t q = 0; q < o->nsets; q++) {
            if (descendants(p, o->sets[q].slot, &o->sets[q].clear, &o->sets[q].nclear) != 0)
                return -ENOMEM;
            if ((int)o->sets[q].slot == p->root_slot)
                o->sets_root = o->nproj == 0;
        }
        for (uint32_t q = 0; q < o->nrms; q++) {
            if (descendants(p, o->rms[q].slot, &o->rms[q].clear, &o->rms[q].nclear) != 0)
                return -ENOMEM;
        }
        if (o->nproj > 0) {
            o->proj_clear = calloc(p->nslots + 1, sizeof(*o->proj_clear));
            if (o->proj_clear == NULL)
                return -ENOMEM;
            for (uint32_t s = 0; s < p->nslots; s++) {
                int kind = dp_fields_kind(p->f, s);

                if (kind == DP_FIELD_PAYLOAD || kind == DP_FIELD_PAYLOAD_ROOT)
                    o->proj_clear[o->nproj_clear++] = s;
            }
        }
        if (o->type != OP_FILTER) {
            o->slots = calloc(p->nslots + 1, sizeof(*o->slots));
            o->patch = calloc(p->maxpatch, sizeof(*o->patch));
            if (o->slots == NULL || o->patch == NULL)
                return -ENOMEM;
        }
        if ((o->type == OP_WINDOW || o->type == OP_JOIN) && result_slots(p, o) != 0)
            return -ENOMEM;
        if (o->type == OP_JOIN) {
            rc = join_decoders(p, o);
            if (rc != 0)
                return rc;
        }
    }
    /* Formats of what each operator emits, in topological order. */
    order = wc_spec_topo_order(spec);
    if (order == NULL)
        return failf(err, errlen, "/operators: the operator graph is not acyclic");
    p->topo = calloc(p->nops + 1, sizeof(*p->topo));
    if (p->topo == NULL) {
        json_decref(order);
        return -ENOMEM;
    }
    json_array_foreach (order, i, v) {
        int n = node_of(p, json_string_value(v));
        op_t *o;
        const json_t *from;

        if (n < (int)p->nin)
            continue;
        o = &p->ops[n - (int)p->nin];
        from = json_object_get(json_array_get(json_object_get(spec, "operators"), o->idx), "from");
        for (size_t s = 0; s < 2 && s < json_array_size(from); s++) {
            int f = node_of(p, json_string_value(json_array_get(from, s)));

            o->side_fmt[s] = f < 0             ? DP_FIELDS_JSON
                             : f < (int)p->nin ? p->in[f].fmt
                                               : p->ops[f - (int)p->nin].fmt;
        }
        switch (o->type) {
        case OP_FILTER:
            o->fmt = o->side_fmt[0];
            break;
        case OP_UDF:
            o->fmt = p->udf_fmt[o->udf];
            break;
        default:
            o->fmt = DP_FIELDS_JSON;
            break;
        }
        if (o->type == OP_WINDOW || o->type == OP_JOIN)
            p->topo[p->ntopo++] = o->idx;
    }
    json_decref(order);
    for (uint32_t k = 0; k < p->nops; k++) {
        rc = state_new(&p->ops[k]);
        if (rc == -EINVAL)
            return failf(err, errlen,
                         "/operators/%u: invalid %s configuration (sizes, slide > size, "
                         "or durations beyond 2^40 ms)",
                         k, p->ops[k].type == OP_JOIN ? "join" : "window");
        if (rc != 0)
            return rc;
    }
    p->in_slots = calloc(p->nslots + 1, sizeof(*p->in_slots));
    p->doc_arena = malloc(DOC_ARENA_BYTES);
    p->scratch_buf = malloc(SCRATCH_BYTES);
    p->pset_paths = calloc(p->maxpatch, sizeof(*p->pset_paths));
    p->pset_vals = calloc(p->maxpatch, sizeof(*p->pset_vals));
    p->prm_paths = calloc(p->maxpatch, sizeof(*p->prm_paths));
    if (p->in_slots == NULL || p->doc_arena == NULL || p->scratch_buf == NULL ||
        p->pset_paths == NULL || p->pset_vals == NULL || p->prm_paths == NULL)
        return -ENOMEM;
    dp_fields_doc_init(&p->doc, p->doc_arena, DOC_ARENA_BYTES);
    dp_expr_scratch_init(&p->scratch, p->scratch_buf, SCRATCH_BYTES);
    if (!ensure_hdrs(p, 16))
        return -ENOMEM;
    p->spec_hash = spec_hash(spec);
    return 0;
}

int dp_pipe_new(const json_t *spec, const dp_pipe_opts_t *opts, dp_pipe_t **out, char *err,
                size_t errlen)
{
    dp_pipe_t *p;
    size_t i;
    json_t *v;
    int rc;

    *out = NULL;
    if (spec == NULL || opts == NULL || opts->emit == NULL)
        return failf(err, errlen, "dp_pipe_new: a spec and an emit callback are required");
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->opts = *opts;
    p->wm = INT64_MIN;
    p->now = INT64_MIN;
    p->ev_slot = p->root_slot = -1;
    p->state_max = opts->state_bytes_max;
    if (p->state_max == 0)
        p->state_max =
            (size_t)jint(json_object_get(spec, "state"), "maxBytes", (int64_t)STATE_DEFAULT);
    p->nudfs = (uint32_t)json_array_size(json_object_get(spec, "udfs"));
    p->udf_fmt = calloc(p->nudfs + 1, sizeof(*p->udf_fmt));
    if (p->udf_fmt == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    json_array_foreach (json_object_get(spec, "udfs"), i, v) {
        const char *ct = json_string_value(json_object_get(v, "contentType"));

        p->udf_fmt[i] =
            ct == NULL || strncmp(ct, "application/json", 16) == 0 ? DP_FIELDS_JSON : DP_FIELDS_RAW;
    }
    rc = dp_fields_new(&p->f);
    if (rc == 0)
        rc = compile_inputs(p, spec, err, errlen);
    if (rc == 0)
        rc = compile_ops(p, spec, err, errlen);
    if (rc == 0)
        rc = compile_outputs(p, spec, err, errlen);
    if (rc == 0)
        rc = link_nodes(p, spec, err, errlen);
    if (rc == 0)
        rc = finish(p, spec, err, errlen);
out:
    if (rc != 0) {
        if (rc == -ENOMEM)
            failf(err, errlen, "out of memory compiling the pipeline");
        dp_pipe_free(p);
        return rc == -ENOMEM ? rc : -EINVAL;
    }
    *out = p;
    return 0;
}

static void links_free(links_t *l)
{
    free(l->ops);
    free(l->outs);
}

void dp_pipe_free(dp_pipe_t *p)
{
    if (p == NULL)
        return;
    for (uint32_t i = 0; p->in != NULL && i < p->nin; i++) {
        input_t *in = &p->in[i];

        free(in->name);
        free(in->topic);
        free(in->assigned);
        free(in->parts);
        free(in->pidx);
        links_free(&in->links);
    }
    free(p->in);
    for (uint32_t k = 0; p->ops != NULL && k < p->nops; k++) {
        op_t *o = &p->ops[k];

        state_free(o);
        free(o->id);
        links_free(&o->links);
        dp_expr_free(o->expr);
        dp_expr_free(o->key_e);
        for (uint32_t q = 0; o->sets != NULL && q < o->nsets; q++) {
            dp_expr_free(o->sets[q].e);
            free(o->sets[q].clear);
        }
        for (uint32_t q = 0; o->rms != NULL && q < o->nrms; q++)
            free(o->rms[q].clear);
        for (uint32_t q = 0; o->proj != NULL && q < o->nproj; q++)
            dp_expr_free(o->proj[q].e);
        /* nsets etc. count only compiled entries; a failed compile may leave one more */
        if (o->sets != NULL)
            dp_expr_free(o->sets[o->nsets].e);
        if (o->proj != NULL)
            dp_expr_free(o->proj[o->nproj].e);
        free(o->sets);
        free(o->rms);
        free(o->proj);
        free(o->proj_clear);
        free(o->slots);
        free(o->patch);
        for (uint32_t q = 0; o->agg_e != NULL && q < o->wcfg.naggs; q++)
            dp_expr_free(o->agg_e[q]);
        free(o->agg_e);
        free(o->agg_v);
        for (uint32_t q = 0; o->res_names != NULL && q < o->wcfg.naggs; q++)
            free((char *)o->res_names[3 + q]);
        free(o->res_names);
        free(o->res_vals);
        dp_expr_free(o->jkey[0]);
        dp_expr_free(o->jkey[1]);
        for (int s = 0; s < 2; s++) {
            if (o->dec[s].f != NULL)
                dp_fields_doc_reset(&o->dec[s].doc);
            dp_fields_free(o->dec[s].f);
            free(o->dec[s].gslot);
            free(o->dec[s].slots);
            free(o->dec[s].arena);
            dp_fields_buf_dispose(&o->mat[s]);
        }
        free(o->rs);
        dp_fields_buf_dispose(&o->res);
    }
    free(p->ops);
    for (uint32_t k = 0; p->out != NULL && k < p->nout; k++) {
        output_t *o = &p->out[k];

        free(o->name);
        dp_expr_free(o->part_e);
        free(o->part_hdr);
        for (uint32_t h = 0; o->hname != NULL && h < o->nh; h++) {
            free(o->hname[h]);
            dp_expr_free(o->hexpr[h]);
        }
        free(o->hname);
        free(o->hexpr);
        free(o->hval);
        free(o->hnum);
    }
    free(p->out);
    free(p->topo);
    free(p->udf_fmt);
    free(p->slot_path);
    if (p->doc_arena != NULL)
        dp_fields_doc_reset(&p->doc);
    free(p->in_slots);
    free(p->doc_arena);
    free(p->scratch_buf);
    free(p->pset_paths);
    free(p->pset_vals);
    free(p->prm_paths);
    dp_fields_buf_dispose(&p->ob[0]);
    dp_fields_buf_dispose(&p->ob[1]);
    dp_fields_buf_dispose(&p->dlqb);
    free(p->hb);
    dp_fields_free(p->f);
    free(p);
}

/* ------------------------------------------------------------- runtime */

static size_t state_bytes(const dp_pipe_t *p)
{
    size_t b = 0;

    for (uint32_t k = 0; k < p->ntopo; k++) {
        const op_t *o = &p->ops[p->topo[k]];

        if (o->win != NULL)
            b += dp_win_state_bytes(o->win);
        else if (o->join != NULL)
            b += dp_join_state_bytes(o->join);
    }
    return b;
}

/* The backpressure rule (pipeline-engine.md): at the bound, only the
 * partition holding the watermark back may add state (its records are what
 * closes windows); at twice the bound nothing may. Decided before the record
 * touches anything, so a refused record was not partially applied. */
static bool refuse(const dp_pipe_t *p, uint32_t i, const part_t *pt)
{
    uint32_t si;
    int32_t sp;
    size_t b;

    if (p->ntopo == 0)
        return false;
    b = state_bytes(p);
    if (b < p->state_max)
        return false;
    if (b / 2 >= p->state_max || pt == NULL || p->in[i].table)
        return true;
    return !(slowest(p, &si, &sp, NULL) && si == i && sp == pt->partition);
}

static void begin(dp_pipe_t *p, int64_t now)
{
    if (p->now == INT64_MIN)
        clock_start(p, now);
    p->now = now;
    p->scratch.len = 0;
}

/* An upstream stage's `watermark` header raises the partition's watermark;
 * its `eventtime` header is returned in *ev (when ev is not NULL). */
static void hdr_watermark(part_t *pt, const dp_hdr_t *h, uint32_t n, int64_t *ev)
{
    for (uint32_t k = 0; k < n; k++) {
        int64_t w;

        if (h[k].name_len != 9)
            continue;
        if (memcmp(h[k].name, "watermark", 9) == 0 && parse_i64(h[k].val, h[k].val_len, &w) &&
            w > pt->hdr_wm_ms && w < TIME_LIMIT_MS)
            pt->hdr_wm_ms = w;
        else if (ev != NULL && memcmp(h[k].name, "eventtime", 9) == 0 &&
                 parse_i64(h[k].val, h[k].val_len, &w) && w > -TIME_LIMIT_MS && w < TIME_LIMIT_MS)
            *ev = w;
    }
}

static void refused(dp_pipe_t *p, part_t *pt, int64_t now)
{
    /* A partition kept waiting is not idle: it has data. */
    if (pt != NULL) {
        pt->last_ms = now;
        pt->idle = 0;
    }
    p->stats.backpressure++;
}

int dp_pipe_push(dp_pipe_t *p, uint32_t i, const dp_pipe_rec_t *rec, int64_t now_ms)
{
    input_t *in;
    part_t *pt;
    xrow_t *x = &p->inx;
    char err[160];
    int64_t ev = 0;
    int rc;

    assert(p != NULL && i < p->nin && rec != NULL);
    in = &p->in[i];
    pt = part_of(in, rec->partition, false);
    if (refuse(p, i, pt)) {
        refused(p, pt, now_ms);
        return -ENOBUFS;
    }
    begin(p, now_ms);
    if (pt == NULL)
        pt = part_of(in, rec->partition, true);
    p->stats.records_in++;
    memset(x, 0, sizeof(*x));
    x->row.key = rec->key;
    x->row.key_len = rec->key_len;
    x->row.payload = rec->payload;
    x->row.payload_len = rec->payload_len;
    x->row.hdrs = rec->hdrs;
    x->row.nhdrs = rec->nhdrs;
    x->row.ts_ms = rec->ts_ms;
    x->row.offset = rec->offset;
    x->row.partition = rec->partition;
    x->row.input = (uint16_t)i;
    x->row.slots = p->in_slots;
    x->row.nslots = p->nslots;
    x->src = &x->row;
    x->base = BASE_ORIG;
    x->fmt = (uint8_t)in->fmt;
    if (pt == NULL) {
        dlq(p, x, "partition %" PRId32 " of input \"%s\" is not assigned to this replica",
            rec->partition, in->name);
        return 0;
    }
    pt->last_ms = now_ms;
    pt->idle = 0;
    ev = rec->ts_ms;
    hdr_watermark(pt, rec->hdrs, rec->nhdrs, in->time_implicit ? &ev : NULL);
    rc = dp_fields_decode(p->f, &x->row, in->fmt, &p->doc);
    if (rc != 0) {
        dlq(p, x, "%s", p->doc.err[0] ? p->doc.err : "cannot decode the record");
        goto out;
    }
    switch (in->time_src) {
    case TS_TIMESTAMP:
        rc = ev > -TIME_LIMIT_MS && ev < TIME_LIMIT_MS
                 ? 0
                 : failf(err, sizeof(err), "event time: record timestamp out of range");
        break;
    case TS_PROCESSING:
        ev = now_ms;
        break;
    default:
        rc = val_to_ms(&x->row.slots[in->time_slot], in->unit, &ev, err, sizeof(err));
        break;
    }
    if (rc != 0) {
        dlq(p, x, "input \"%s\": %s", in->name, err);
        goto out;
    }
    x->row.event_ms = ev;
    if (p->ev_slot >= 0)
        x->row.slots[p->ev_slot] = dp_val_int(ev);
    if (ev > pt->max_event_ms)
        pt->max_event_ms = ev;
    run_node(p, &in->links, x);
out:
    dp_fields_doc_reset(&p->doc);
    return 0;
}

int dp_pipe_push_row(dp_pipe_t *p, uint32_t i, dp_row_t *row, int64_t now_ms)
{
    input_t *in;
    part_t *pt;
    xrow_t x;

    assert(p != NULL && i < p->nin && row != NULL);
    in = &p->in[i];
    pt = part_of(in, row->partition, false);
    if (refuse(p, i, pt)) {
        refused(p, pt, now_ms);
        return -ENOBUFS;
    }
    begin(p, now_ms);
    if (pt == NULL)
        pt = part_of(in, row->partition, true);
    p->stats.records_in++;
    row->input = (uint16_t)i;
    x.row = *row;
    x.src = row;
    x.lazy = NULL;
    x.origin = NULL;
    x.patch = NULL;
    x.npatch = 0;
    x.base = BASE_ORIG;
    x.fmt = (uint8_t)in->fmt;
    if (row->nslots < p->nslots) {
        /* a producer that fills fewer slots: the rest read as MISSING */
        if (row->nslots > 0)
            memcpy(p->in_slots, row->slots, row->nslots * sizeof(dp_val_t));
        memset(p->in_slots + row->nslots, 0, (p->nslots - row->nslots) * sizeof(dp_val_t));
        x.row.slots = p->in_slots;
        x.row.nslots = p->nslots;
    }
    if (pt == NULL) {
        dlq(p, &x, "partition %" PRId32 " of input \"%s\" is not assigned to this replica",
            row->partition, in->name);
        return 0;
    }
    pt->last_ms = now_ms;
    pt->idle = 0;
    if (row->nhdrs > 0)
        hdr_watermark(pt, row->hdrs, row->nhdrs, NULL);
    if (row->event_ms <= -TIME_LIMIT_MS || row->event_ms >= TIME_LIMIT_MS) {
        dlq(p, &x, "input \"%s\": event time out of range", in->name);
        return 0;
    }
    if (p->ev_slot >= 0)
        x.row.slots[p->ev_slot] = dp_val_int(row->event_ms);
    if (row->event_ms > pt->max_event_ms)
        pt->max_event_ms = row->event_ms;
    run_node(p, &in->links, &x);
    return 0;
}

int dp_pipe_udf_result(dp_pipe_t *p, const dp_pipe_udf_reply_t *q, int64_t now_ms)
{
    dp_row_t src = {0};
    xrow_t x = {0};
    char st[NUM_MAX];
    op_t *o;
    int rc;

    if (p == NULL || q == NULL || q->op >= p->nops || p->ops[q->op].udf < 0)
        return -EINVAL;
    o = &p->ops[q->op];
    begin(p, now_ms);
    src.key = q->key;
    src.key_len = q->key_len;
    src.payload = q->payload;
    src.payload_len = q->payload_len;
    src.hdrs = q->hdrs;
    src.nhdrs = q->nhdrs;
    src.event_ms = q->event_ms;
    src.ts_ms = q->ts_ms;
    src.offset = q->offset;
    src.partition = q->partition;
    src.input = q->input < p->nin ? (uint16_t)q->input : UINT16_MAX;
    src.slots = o->slots;
    src.nslots = p->nslots;
    x.row = src;
    x.src = &src;
    x.origin = o;
    x.base = BASE_ORIG;
    x.fmt = (uint8_t)p->udf_fmt[o->udf];
    if (q->grpc_status != 0) {
        snprintf(st, sizeof(st), "%d", q->grpc_status);
        p->dlq_grpc = st;
        dlq(p, &x, "operator \"%s\": udf failed: %s", o->id,
            q->error != NULL ? q->error : "(no message)");
        p->dlq_grpc = NULL;
        return 0;
    }
    rc = dp_fields_decode(p->f, &x.row, p->udf_fmt[o->udf], &p->doc);
    if (rc != 0) {
        dlq(p, &x, "operator \"%s\": udf reply: %s", o->id, p->doc.err);
    } else if (q->event_ms <= -TIME_LIMIT_MS || q->event_ms >= TIME_LIMIT_MS) {
        dlq(p, &x, "operator \"%s\": udf reply: event time out of range", o->id);
    } else {
        if (p->ev_slot >= 0)
            x.row.slots[p->ev_slot] = dp_val_int(q->event_ms);
        run_node(p, &o->links, &x);
    }
    dp_fields_doc_reset(&p->doc);
    p->scratch.len = 0;
    return 0;
}

void dp_pipe_tick(dp_pipe_t *p, int64_t now_ms)
{
    int64_t wm = INT64_MAX;
    bool any = false;

    begin(p, now_ms);
    for (uint32_t i = 0; i < p->nin; i++) {
        input_t *in = &p->in[i];

        if (in->table)
            continue; /* a table is read for its latest values, not for time */
        for (uint32_t k = 0; k < in->nparts; k++) {
            part_t *pt = &in->parts[k];
            int64_t w;

            if (in->idle_ms > 0 && !pt->idle && pt->last_ms != INT64_MIN &&
                now_ms - pt->last_ms >= in->idle_ms)
                pt->idle = 1;
            if (pt->idle)
                continue;
            any = true;
            w = part_wm(in, pt);
            if (w < wm)
                wm = w;
        }
    }
    if (any && wm > p->wm)
        p->wm = wm;
    for (uint32_t k = 0; k < p->ntopo; k++) {
        op_t *o = &p->ops[p->topo[k]];

        if (o->win != NULL)
            dp_win_advance(o->win, o->proc_time ? now_ms : p->wm, now_ms);
        else if (o->join != NULL && p->wm != INT64_MIN)
            dp_join_advance(o->join, p->wm);
        p->scratch.len = 0;
    }
}

/* ----------------------------------------------------------- accessors */

uint32_t dp_pipe_inputs(const dp_pipe_t *p)
{
    return p->nin;
}

const char *dp_pipe_input_topic(const dp_pipe_t *p, uint32_t i)
{
    return i < p->nin ? p->in[i].topic : NULL;
}

void dp_pipe_input_partitions(const dp_pipe_t *p, uint32_t i, const int32_t **parts, uint32_t *n)
{
    *parts = i < p->nin ? p->in[i].assigned : NULL;
    *n = i < p->nin ? p->in[i].nassigned : 0;
}

int dp_pipe_slot(const dp_pipe_t *p, const char *path)
{
    for (uint32_t s = 0; s < p->nslots; s++) {
        if (strcmp(p->slot_path[s], path) == 0)
            return (int)s;
    }
    return -1;
}

uint32_t dp_pipe_nslots(const dp_pipe_t *p)
{
    return p->nslots;
}

int64_t dp_pipe_watermark(const dp_pipe_t *p)
{
    return p->wm;
}

bool dp_pipe_backpressured(const dp_pipe_t *p, uint32_t *input, int32_t *partition)
{
    if (p->ntopo == 0 || state_bytes(p) < p->state_max)
        return false;
    if (!slowest(p, input, partition, NULL)) {
        *input = 0;
        *partition = -1; /* no active partition: nothing to favour */
    }
    return true;
}

size_t dp_pipe_state_bytes(const dp_pipe_t *p)
{
    return state_bytes(p);
}

const dp_pipe_stats_t *dp_pipe_stats(const dp_pipe_t *p)
{
    return &p->stats;
}

/* ---------------------------------------------------------- checkpoints */

/* Empties all state: fresh operators, partitions as after dp_pipe_new. */
static int reset_state(dp_pipe_t *p)
{
    int rc = 0;

    for (uint32_t k = 0; k < p->ntopo; k++) {
        op_t *o = &p->ops[p->topo[k]];
        int r;

        state_free(o);
        r = state_new(o);
        if (r != 0 && rc == 0)
            rc = r;
    }
    for (uint32_t i = 0; i < p->nin; i++) {
        input_t *in = &p->in[i];

        if (in->dynamic) {
            for (uint32_t q = 0; q < in->npidx; q++)
                in->pidx[q] = -1;
            in->nparts = 0;
        }
        for (uint32_t q = 0; q < in->nparts; q++) {
            part_init(&in->parts[q], in->parts[q].partition);
            if (p->now != INT64_MIN)
                in->parts[q].last_ms = p->now;
        }
    }
    p->wm = INT64_MIN;
    return rc;
}

int dp_pipe_save(const dp_pipe_t *p, dp_ser_w_t *w)
{
    dp_ser_u32(w, SER_MAGIC);
    dp_ser_u32(w, SER_VERSION);
    dp_ser_u64(w, p->spec_hash);
    dp_ser_i64(w, p->wm);
    dp_ser_u32(w, p->nin);
    for (uint32_t i = 0; i < p->nin; i++) {
        const input_t *in = &p->in[i];

        dp_ser_u32(w, in->nparts);
        for (uint32_t q = 0; q < in->nparts; q++) {
            dp_ser_u32(w, (uint32_t)in->parts[q].partition);
            dp_ser_i64(w, in->parts[q].max_event_ms);
            dp_ser_i64(w, in->parts[q].hdr_wm_ms);
            dp_ser_u8(w, in->parts[q].idle);
            /* processing time since its last record: downtime does not count */
            dp_ser_i64(w, p->now == INT64_MIN || in->parts[q].last_ms == INT64_MIN
                              ? -1
                              : p->now - in->parts[q].last_ms);
        }
    }
    dp_ser_u32(w, p->nops);
    for (uint32_t k = 0; k < p->nops; k++) {
        const op_t *o = &p->ops[k];

        dp_ser_u8(w, (uint8_t)o->type);
        if (o->win != NULL)
            dp_win_save(o->win, w);
        else if (o->join != NULL)
            dp_join_save(o->join, w);
    }
    return w->err;
}

int dp_pipe_load(dp_pipe_t *p, dp_ser_r_t *r)
{
    int64_t wm;
    int rc;

    rc = reset_state(p);
    if (rc != 0)
        return rc;
    if (dp_ser_ru32(r) != SER_MAGIC || dp_ser_ru32(r) != SER_VERSION ||
        dp_ser_ru64(r) != p->spec_hash)
        goto bad;
    wm = dp_ser_ri64(r);
    if (dp_ser_ru32(r) != p->nin || r->err != 0)
        goto bad;
    for (uint32_t i = 0; i < p->nin; i++) {
        input_t *in = &p->in[i];
        uint32_t n = dp_ser_ru32(r);

        for (uint32_t q = 0; q < n && r->err == 0; q++) {
            int32_t part = (int32_t)dp_ser_ru32(r);
            int64_t mx = dp_ser_ri64(r), hw = dp_ser_ri64(r);
            uint8_t idle = dp_ser_ru8(r);
            int64_t age = dp_ser_ri64(r);
            part_t *pt;

            if (r->err != 0)
                break;
            pt = part_of(in, part, true); /* a partition no longer ours is skipped */
            if (pt != NULL) {
                pt->max_event_ms = mx;
                pt->hdr_wm_ms = hw;
                pt->idle = idle ? 1 : 0;
                pt->age_ms = age < 0 ? -1 : age;
                if (p->now != INT64_MIN) {
                    pt->last_ms = p->now - (age > 0 ? age : 0);
                    pt->age_ms = -1;
                }
            }
        }
        if (r->err != 0)
            goto bad;
    }
    if (dp_ser_ru32(r) != p->nops || r->err != 0)
        goto bad;
    for (uint32_t k = 0; k < p->nops; k++) {
        op_t *o = &p->ops[k];

        if (dp_ser_ru8(r) != (uint8_t)o->type || r->err != 0)
            goto bad;
        rc = 0;
        if (o->win != NULL)
            rc = dp_win_load(o->win, r);
        else if (o->join != NULL)
            rc = dp_join_load(o->join, r);
        if (rc == -ENOMEM) {
            reset_state(p);
            return rc;
        }
        if (rc != 0)
            goto bad;
    }
    if (r->err != 0)
        goto bad;
    p->wm = wm;
    return 0;
bad:
    reset_state(p);
    return -EBADMSG;
}
