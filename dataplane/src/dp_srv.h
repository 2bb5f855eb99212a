/* SPDX-License-Identifier: Apache-2.0 */
/* dp_srv: store internals shared by the worker loop (dp_worker.c), the
 * connection layer (dp_conn.c), the request handlers (dp_broker.c,
 * dp_produce.c, dp_fetch.c, dp_admin.c) and partition ownership
 * (dp_part.c). Not a public API: the store's only entry is dp_store.h.
 *
 * Threads talk only by message: a dp_msg_t is an intrusive node that names
 * the function to run on the receiving worker. Every message a worker sends
 * to another comes back as exactly one reply, so the sender knows when the
 * memory it lent (batches, buffers) is free again. */
#ifndef DP_SRV_H
#define DP_SRV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dp_catalog.h"
#include "dp_kproto.h"
#include "dp_log.h"
#include "dp_metrics.h"
#include "dp_pid.h"
#include "dp_pool.h"
#include "dp_ring.h"
#include "dp_store.h"

typedef struct dp_worker dp_worker_t;
typedef struct dp_conn dp_conn_t;
typedef struct dp_req dp_req_t;
typedef struct dp_part dp_part_t;
typedef struct dp_msg dp_msg_t;
typedef struct dp_pop dp_pop_t;
typedef struct dp_watch dp_watch_t;

/** Runs on the worker that receives the message. */
typedef void (*dp_msg_fn)(dp_worker_t *w, dp_msg_t *m);

/** An intrusive message; embedded in whatever it carries. */
struct dp_msg {
    dp_msg_t *next;
    dp_msg_fn fn;
};

/** Per-worker metrics, written by the worker, read by the HTTP thread. */
typedef struct dp_wmetrics {
    dp_counter_t requests[64]; /* by API key (keys < 64) */
    dp_counter_t produce_bytes;
    dp_counter_t produce_batches;
    dp_counter_t fetch_bytes;
    dp_counter_t produce_errors;
    dp_counter_t protocol_errors; /* connections closed for bad frames */
    dp_counter_t connections;     /* accepted */
    dp_counter_t log_commits;     /* durable commits (RWF_DSYNC writes, fdatasyncs) */
    dp_hist_t log_write_latency;  /* segment write queued -> completed */
    dp_hist_t log_append_latency; /* append accepted -> durable (or written, acks=1) */
    dp_gauge_t open_connections;
    dp_gauge_t offline_partitions; /* failed recovery: not served */
    dp_hist_t produce_latency;     /* complete request -> response queued */
    dp_hist_t fetch_latency;
} dp_wmetrics_t;

/** A partition led by this pod, owned by one worker. */
struct dp_part {
    dp_part_t *hnext; /* owner's hash chain */
    uint64_t topic_id;
    int32_t partition;
    char topic[DP_TOPIC_NAME_MAX + 1];
    dp_log_t *log; /* NULL: offline (recovery found damage before the tail) */
    dp_pidmap_t pids;
    dp_watch_t *watchers; /* parked fetches waiting for data */
    dp_pop_t *dups;       /* retries of batches not yet durable */
    dp_part_t *wnext;     /* worker's list of parts with watchers */
    dp_part_t *dnext;     /* worker's list of parts being closed */
    bool remove_files;    /* deleted topic: remove the directory once closed */
    char dead_dir[4200];  /* renamed directory awaiting removal */
    bool on_watch_list;
    bool deleting;
    bool flush_every;        /* log flush policy EVERY: hw is the durable offset */
    uint32_t reads_inflight; /* fetch reads and readahead hints in the ring */
    /* Readahead for sequential consumers: segments are written around the
     * page cache, so a fetch behind the tail would otherwise read the disk
     * in fetch-sized pieces. One WILLNEED hint at a time, ahead of reads. */
    dp_ring_op_t ra_op;
    bool ra_inflight;
    int ra_fd;
    uint64_t ra_end;
    /* Read-ahead for direct reads (dp_part.c): two aligned windows of the
     * segment a sequential consumer reads, from the worker's pool. */
    struct dp_part_pf {
        uint8_t *mem;       /* pool block (freed with the part) */
        uint8_t *buf;       /* DP_FETCH_ALIGN-aligned, DP_PF_BYTES - 4 KiB */
        int64_t seg;        /* segment base offset; -1 empty */
        uint64_t a0;        /* file position of buf[0] */
        uint32_t len;       /* valid bytes (read, and below the readable end then) */
        uint64_t valid_end; /* readable end when the read was issued */
        bool inflight;
        dp_pop_t *waiters; /* fetch ops waiting for this window (dnext) */
        dp_part_t *part;
        dp_worker_t *w; /* owner */
        dp_ring_op_t op;
    } pf[2];
};

/** Bytes of one direct read-ahead window. */
#define DP_PF_BYTES (4u << 20)

/** Partition-op kinds (dp_pop_t.kind). */
enum { DP_POP_PRODUCE = 1, DP_POP_FETCH, DP_POP_OFFSETS };

/** Most file slices one fetch op reads. */
#define DP_POP_SLICES 8
/** Alignment of direct segment reads into fetch buffers. */
#define DP_FETCH_ALIGN 4096u

/**
 * One request's operation on one partition, carried to the owner and back.
 * Lives in the origin request's pool memory.
 */
struct dp_pop {
    dp_msg_t msg;
    dp_req_t *req;
    dp_worker_t *origin;
    dp_worker_t *owner;
    dp_part_t *part;    /* owner side, while an append or read is in flight */
    dp_msg_fn reply_fn; /* runs on the origin when the op comes back */
    dp_pop_t *dnext;    /* owner side: parked duplicate (see dp_part.c) */
    int kind;
    uint64_t topic_id;
    int32_t partition;
    int16_t error;
    int64_t log_start;
    int64_t hw;
    union {
        struct {
            uint8_t *batch;
            uint32_t len;
            unsigned flags;
            int64_t base_offset;
            int64_t dup_last; /* duplicate: answer once this is readable */
            dp_log_append_t app;
        } produce;
        struct {
            int64_t offset;
            uint32_t max_bytes;
            uint32_t partition_max;
            uint8_t *dst;
            uint32_t dst_cap;
            uint32_t got;
            int reads;
            int read_error;
            /* Range read (dp_part.c): one segment byte range, cut to whole
             * batches in memory once read. */
            dp_log_range_t rg;
            uint8_t *rbase; /* aligned read buffer start (file rg_a0) */
            uint64_t rg_a0; /* file position of rbase[0] */
            uint32_t rlen;  /* bytes read into rbase so far */
            uint32_t want;  /* bytes of data wanted past rg.pos */
            uint32_t asked; /* bytes of the read in flight */
            dp_ring_op_t rop[DP_POP_SLICES];
            dp_log_slice_t sl[DP_POP_SLICES];
        } fetch;
        struct {
            int64_t timestamp;
            int64_t offset;
            int64_t found_ts;
        } offsets;
    } u;
};

/** A parked fetch's interest in one partition (see dp_fetch.c). */
struct dp_watch {
    dp_msg_t msg;    /* register, and the one reply */
    dp_msg_t cancel; /* origin -> owner */
    dp_req_t *req;
    dp_worker_t *origin;
    dp_watch_t *next, *prev; /* owner's list, while linked */
    uint64_t topic_id;
    int32_t partition;
    int64_t offset; /* fire once the high watermark passes this */
    bool linked;    /* owner side */
    bool out;       /* origin side: registered, reply not yet seen */
};

/** Request states. */
enum { DP_REQ_RUNNING = 0, DP_REQ_DONE };

/**
 * One request: its frame, decode arena, the response being built and the
 * API's working state. One pool block; freed once the response is sent.
 */
struct dp_req {
    dp_req_t *next; /* connection's in-order queue */
    dp_conn_t *conn;
    dp_worker_t *w;
    int state;
    bool no_response; /* acks=0 produce */
    uint64_t t0_ns;
    uint8_t *frame; /* payload, without the size prefix */
    uint32_t frame_len;
    dp_karena_t arena;
    dp_kreq_t k;
    /* response */
    uint8_t *out; /* pool block for framing */
    size_t out_cap;
    dp_kwr_t wr;
    struct iovec iov1; /* the single iovec of a plain response */
    struct iovec *iov; /* iov1, or an array in `aux` */
    int iovcnt;        /* 0 until the response is ready */
    /* working state */
    int pending; /* ops / watches / calls not yet replied */
    dp_pop_t *pops;
    int npops;
    void *aux; /* pool block: fetch records, op arrays, ... */
    size_t aux_cap;
    void *api;     /* API-specific state inside aux */
    dp_msg_t call; /* a control-plane call to another worker */
    dp_msg_t call_reply;
    int call_result;
    void (*resume)(dp_req_t *r); /* continues the API after replies */
};

/** A client connection, owned by the worker that accepted it. */
struct dp_conn {
    dp_conn_t *next, *prev; /* worker's list */
    dp_worker_t *w;
    int fd;
    uint64_t id;
    uint8_t *rbuf; /* pool block */
    size_t rcap, rlen;
    dp_req_t *big; /* a frame larger than rbuf being received directly */
    uint32_t big_have;
    dp_req_t *head, *tail; /* requests in arrival order */
    uint32_t nreq;
    dp_ring_op_t recv_op, send_op;
    bool recv_inflight, send_inflight, closing, closed, paused;
    int busy;              /* nesting depth of entries (see dp_conn.c) */
    struct iovec siov[64]; /* send in progress: a copy we advance */
    int siovcnt;
};

/** A store worker: one thread, one ring. */
struct dp_worker {
    dp_store_t *st;
    int index;
    pthread_t thread;
    dp_ring_t ring;
    dp_pool_t pool;
    int listen_fd;
    dp_ring_op_t accept_op;
    int efd; /* inbox wake-up */
    uint64_t efd_buf;
    dp_ring_op_t efd_op;
    _Atomic(dp_msg_t *) inbox;
    dp_msg_t *local_head, *local_tail; /* messages to itself */
    dp_ring_op_t tick_op;
    uint64_t now_ms;
    uint64_t last_retention_ms;
    int catalog_slot;
    /* owned partitions: hash on (topic id, partition) */
    dp_part_t **parts;
    uint32_t parts_buckets;
    uint32_t nparts;
    dp_part_t *watched; /* parts with watchers */
    dp_part_t *dying;   /* parts closing (deleted topics, shutdown) */
    dp_conn_t *conns;
    uint32_t nconns;
    uint64_t next_conn_id;
    dp_req_t *parked; /* fetches waiting on their deadline (see dp_fetch.c) */
    bool stopping;
    uint64_t denied_seen; /* pool denials already answered by a resume */
    int failed;           /* -errno once something fatal happened */
    dp_wmetrics_t m;
};

/** The process: configuration, catalog, workers. */
struct dp_store {
    dp_store_config_t cfg;
    dp_catalog_t *catalog;
    dp_worker_t *workers;
    int nworkers;
    int port;
    _Atomic bool stop;
    _Atomic int live_reqs; /* requests alive on any worker */
    /* Worker 0 runs the control plane: topic creation and deletion, group
     * coordination, producer ids. */
    struct dp_group_mgr *groups;
    dp_pidalloc_t *pidalloc;
    struct dp_http *http;
};

/* ---- dp_worker.c ---- */

/** Sets up worker `index` (ring, eventfd, tables). */
int dp_worker_init(dp_worker_t *w, dp_store_t *st, int index, char *err, size_t errlen);
/** Binds this worker's SO_REUSEPORT listener. */
int dp_worker_listen(dp_worker_t *w, const char *host, int port, char *err, size_t errlen);
/** Starts the worker thread. */
int dp_worker_spawn(dp_worker_t *w);
/** Wakes the worker (after setting the stop flag). */
void dp_worker_wake(dp_worker_t *w);
/** Joins the thread; returns its failure (-errno) or 0. */
int dp_worker_join(dp_worker_t *w);
/** Frees what dp_worker_init set up. */
void dp_worker_dispose(dp_worker_t *w);
/** Queues `m` to run `fn` on worker `to` (itself included). */
void dp_worker_post(dp_worker_t *from, dp_worker_t *to, dp_msg_t *m, dp_msg_fn fn);
/** Monotonic nanoseconds. */
uint64_t dp_worker_now_ns(void);
/** Wall-clock milliseconds. */
int64_t dp_worker_wall_ms(void);
/** Stable 64-bit hash (FNV-1a) for placement decisions. */
uint64_t dp_worker_hash(const char *s, size_t len);
/** Worker running the control plane. */
dp_worker_t *dp_worker_control(dp_store_t *st);
/** The worker owning partition `p` of `topic` on this pod. */
dp_worker_t *dp_worker_owner(dp_store_t *st, const dp_topic_t *t, int32_t p);
/** True when this pod leads partition `p` (placement p mod replicas). */
bool dp_worker_leads(const dp_store_t *st, int32_t p);

/* ---- dp_part.c (owner side) ---- */

/** Finds an owned partition, or NULL. */
dp_part_t *dp_part_find(dp_worker_t *w, uint64_t topic_id, int32_t p);
/** Opens (recovering) every partition of `t` this worker owns. */
int dp_part_open_topic(dp_worker_t *w, const dp_topic_t *t, bool fresh, char *err, size_t errlen);
/** Starts deleting every owned partition of topic `id`; files go when idle. */
void dp_part_drop_topic(dp_worker_t *w, uint64_t topic_id);
/** Finishes deletions and closes whatever is idle; true once none remain
 *  (at shutdown, `all` closes every partition). */
bool dp_part_reap(dp_worker_t *w, bool all);
/** Removes a directory tree (control plane; synchronous). */
void dp_part_rm_tree(const char *dir);
/** The high watermark consumers may read below. */
int64_t dp_part_hw(const dp_part_t *part);
/** Fires satisfied watchers of every watched partition. */
void dp_part_check_watchers(dp_worker_t *w);
/** Applies retention to every owned partition. */
void dp_part_retain_all(dp_worker_t *w);
/** dp_log_tick for every owned partition. */
void dp_part_tick_all(dp_worker_t *w);
/** Runs a partition op on its owner (message handler). */
void dp_part_exec(dp_worker_t *w, dp_msg_t *m);
/** Registers a watch (message handler, owner side). */
void dp_part_watch(dp_worker_t *w, dp_msg_t *m);
/** Cancels a watch (message handler, owner side). */
void dp_part_unwatch(dp_worker_t *w, dp_msg_t *m);

/* ---- dp_conn.c ---- */

/** Takes over an accepted socket. */
void dp_conn_accept(dp_worker_t *w, int fd);
/** Drops the request unanswered and closes its connection (bad input). */
void dp_conn_abort(dp_req_t *r, const char *why);
/** A request's response is complete (or it has none): send in order. */
void dp_conn_done(dp_req_t *r);
/** Resumes connections paused by the memory budget (tick). */
void dp_conn_resume_paused(dp_worker_t *w);
/** Closes every connection (shutdown). */
void dp_conn_close_all(dp_worker_t *w);

/* ---- dp_broker.c ---- */

/** Dispatches a decoded request (rc is dp_kproto_req_decode's result). */
void dp_broker_dispatch(dp_req_t *r, int rc);
/**
 * Prepares r->out for a response frame of up to `bytes`; returns 0 or
 * -ENOMEM when the worker's memory budget is exhausted.
 */
int dp_broker_out(dp_req_t *r, size_t bytes);
/** Encoder for dp_broker_respond: writes the whole frame into w. */
typedef int (*dp_broker_enc)(dp_req_t *r, dp_kwr_t *w);
/**
 * Encodes the response with `enc` into a buffer of `hint` bytes, doubling
 * on -ENOBUFS, and hands it to the connection. A response that cannot be
 * built closes the connection.
 */
void dp_broker_respond(dp_req_t *r, size_t hint, dp_broker_enc enc);
/**
 * Gives r a zeroed working block of `bytes` in r->aux (and r->api); on
 * memory exhaustion the request is aborted and NULL returned.
 */
void *dp_broker_aux(dp_req_t *r, size_t bytes);
/**
 * Resolves topic `name` / `partition` for op: sets op->topic_id and
 * op->owner (NULL on error) and returns the Kafka error code.
 */
int16_t dp_broker_route(dp_req_t *r, const dp_catalog_snap_t *snap, dp_kstr_t name,
                        int32_t partition, dp_pop_t *op);
/** Hands r->wr's frame (single iovec) to the connection. */
void dp_broker_finish(dp_req_t *r);
/** Posts each op of r to its owner; r->pending counts the replies. */
void dp_broker_send_pops(dp_req_t *r);
/** Reply handler for a partition op (origin side). */
void dp_broker_pop_reply(dp_worker_t *w, dp_msg_t *m);
/** Runs `fn` on the control worker for r; r->resume runs on r's worker after. */
void dp_broker_call_control(dp_req_t *r, dp_msg_fn fn, void (*resume)(dp_req_t *r));
/** Called by control-plane handlers when done: returns r to its worker. */
void dp_broker_call_return(dp_worker_t *cw, dp_req_t *r, int result);

/* ---- API handlers ---- */
void dp_produce_start(dp_req_t *r);
void dp_fetch_start(dp_req_t *r);
void dp_fetch_tick(dp_worker_t *w);
void dp_fetch_watch_reply(dp_worker_t *w, dp_msg_t *m);
void dp_offsets_start(dp_req_t *r);
void dp_admin_metadata(dp_req_t *r);
void dp_admin_create_topics(dp_req_t *r);
void dp_admin_delete_topics(dp_req_t *r);
void dp_admin_describe_configs(dp_req_t *r);
void dp_admin_init_producer_id(dp_req_t *r);
void dp_admin_find_coordinator(dp_req_t *r);
void dp_admin_group(dp_req_t *r);

#endif
