/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_sup: the single-threaded process supervisor of `weirctl run`. It
 * forks children (each in its own process group, with its stdout and stderr
 * on one pipe), multiplexes their lines through wctl_out with a "proc"
 * member, restarts a child that dies with exponential backoff, gives up
 * after repeated fast failures, and stops everything in tiers on
 * SIGINT/SIGTERM (SIGTERM, a bounded wait, then SIGKILL). Signals are read
 * from a signalfd, so nothing runs in a signal handler. Design:
 * docs/internals/weirctl.md. */
#ifndef WCTL_SUP_H
#define WCTL_SUP_H

#include "wctl_out.h"

#include <stdio.h>
#include <sys/types.h>

/** Most children one supervisor runs. */
#define WCTL_SUP_CHILDREN_MAX 512

/** Supervisor settings; zero fields take the defaults shown. */
typedef struct wctl_sup_opts {
    FILE *out;            /* where lines go (stdout) */
    wctl_out_mode_t mode; /* JSON lines or human */
    int backoff_min_ms;   /* first restart delay (500) */
    int backoff_max_ms;   /* cap of the doubling delay (10000) */
    int max_failures;     /* consecutive fast failures before giving up (5) */
    int stable_ms;        /* a child that ran this long resets its failure count (30000) */
    int stop_grace_ms;    /* SIGTERM to SIGKILL, per tier (10000) */
} wctl_sup_opts_t;

/** One child to run. Everything is copied by wctl_sup_add. */
typedef struct wctl_child_spec {
    const char *name;        /* "store", "proc/NAME-0", "udf/NAME-0/CONTAINER" */
    const char *const *argv; /* NULL-terminated; argv[0] is looked up in PATH */
    const char *const *env;  /* extra "KEY=VALUE" entries, NULL-terminated, or NULL */
    const char *cwd;         /* NULL: weirctl's own */
    int tier;                /* stop order: the highest tier is stopped first */
} wctl_child_spec_t;

/** Why wctl_sup_poll returned non-zero. */
typedef enum {
    WCTL_SUP_RUNNING = 0,
    WCTL_SUP_SIGNALED = 1, /* SIGINT or SIGTERM arrived: call wctl_sup_stop */
    WCTL_SUP_FAILED = 2,   /* a child failed repeatedly (or permanently): stop and exit 1 */
} wctl_sup_state_t;

typedef struct wctl_sup wctl_sup_t;

/**
 * Creates a supervisor: blocks SIGINT, SIGTERM and SIGCHLD in the calling
 * thread (call it before any thread is started) and reads them from a
 * signalfd. NULL with errno on failure.
 */
wctl_sup_t *wctl_sup_new(const wctl_sup_opts_t *opts);

/** Kills (SIGKILL) and reaps every child still running, then frees. NULL is a no-op. */
void wctl_sup_free(wctl_sup_t *s);

/** Adds and starts a child. Returns its index (>= 0) or -errno. */
int wctl_sup_add(wctl_sup_t *s, const wctl_child_spec_t *spec);

/**
 * Runs the loop for at most `timeout_ms` (0: one non-blocking pass): copies
 * output, reaps, restarts due children. Returns the state.
 */
wctl_sup_state_t wctl_sup_poll(wctl_sup_t *s, int timeout_ms);

/** The current state (as wctl_sup_poll last returned it). */
wctl_sup_state_t wctl_sup_state(const wctl_sup_t *s);

/** Name of the child that made the state FAILED, or NULL. Borrowed. */
const char *wctl_sup_failed_child(const wctl_sup_t *s);

/** pid of child `idx`, 0 while it is not running. */
pid_t wctl_sup_pid(const wctl_sup_t *s, int idx);

/** How many times child `idx` was restarted. */
int wctl_sup_restarts(const wctl_sup_t *s, int idx);

/**
 * Stops every child, highest tier first: SIGTERM to its process group,
 * up to stop_grace_ms for it to exit (a second SIGINT/SIGTERM cuts the
 * wait short), then SIGKILL. Returns the number of children that did not
 * exit with status 0 after SIGTERM.
 */
int wctl_sup_stop(wctl_sup_t *s);

#endif
