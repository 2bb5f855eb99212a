/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_sup: fork/exec, output multiplexing, restart with backoff and tiered
 * shutdown of `weirctl run`'s children, from one poll() loop. */

#include "wctl_sup.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define LINE_MAX_BYTES 65536

typedef struct child {
    char *name;
    char **argv;
    char **envp; /* the full environment of the child */
    char *cwd;
    int tier;
    pid_t pid;   /* 0: not running */
    int fd;      /* read end of its output pipe, -1 */
    char *buf;   /* partial line */
    size_t used; /* bytes in buf */
    long long started_ms;
    long long restart_at_ms; /* 0: none due */
    int failures;            /* consecutive fast failures */
    int restarts;
    int stopping;    /* SIGTERM sent by wctl_sup_stop */
    int exit_status; /* wait status of the last exit */
} child_t;

struct wctl_sup {
    wctl_sup_opts_t o;
    int sfd;
    sigset_t oldmask;
    child_t *c[WCTL_SUP_CHILDREN_MAX];
    int n;
    wctl_sup_state_t state;
    const char *failed;
    int signals; /* INT/TERM received */
};

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

wctl_sup_t *wctl_sup_new(const wctl_sup_opts_t *opts)
{
    wctl_sup_t *s = calloc(1, sizeof(*s));
    sigset_t set;

    if (s == NULL)
        return NULL;
    s->o = *opts;
    if (s->o.out == NULL)
        s->o.out = stdout;
    if (s->o.backoff_min_ms <= 0)
        s->o.backoff_min_ms = 500;
    if (s->o.backoff_max_ms <= 0)
        s->o.backoff_max_ms = 10000;
    if (s->o.max_failures <= 0)
        s->o.max_failures = 5;
    if (s->o.stable_ms <= 0)
        s->o.stable_ms = 30000;
    if (s->o.stop_grace_ms <= 0)
        s->o.stop_grace_ms = 10000;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, &s->oldmask) != 0) {
        free(s);
        return NULL;
    }
    s->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->sfd < 0) {
        int e = errno;

        sigprocmask(SIG_SETMASK, &s->oldmask, NULL);
        free(s);
        errno = e;
        return NULL;
    }
    return s;
}

static char **dup_strv(const char *const *v, const char *const *extra, int with_environ)
{
    size_t n = 0, k = 0, ne = 0, i;
    char **out;

    if (with_environ)
        for (; environ[ne]; ne++)
            ;
    for (; v && v[n]; n++)
        ;
    for (i = 0; extra && extra[i]; i++)
        ;
    out = calloc(ne + n + i + 1, sizeof(*out));
    if (out == NULL)
        return NULL;
    /* Extra entries first so they win over the inherited ones (execve takes
     * the first of duplicated names for getenv in glibc). */
    for (i = 0; extra && extra[i]; i++)
        if ((out[k++] = strdup(extra[i])) == NULL)
            goto fail;
    for (i = 0; i < n; i++)
        if ((out[k++] = strdup(v[i])) == NULL)
            goto fail;
    for (i = 0; i < ne; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int dup = 0;

        for (size_t j = 0; extra && extra[j]; j++)
            if (strncmp(extra[j], environ[i], nl) == 0 && extra[j][nl] == '=')
                dup = 1;
        if (!dup && (out[k++] = strdup(environ[i])) == NULL)
            goto fail;
    }
    return out;
fail:
    for (i = 0; i < k; i++)
        free(out[i]);
    free(out);
    return NULL;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* Frees a child's record (its process and fd are the caller's). */
static void child_free(child_t *c)
{
    free(c->name);
    free_strv(c->argv);
    free_strv(c->envp);
    free(c->cwd);
    free(c->buf);
    free(c);
}

static void event(wctl_sup_t *s, const char *level, const char *msg, const child_t *c,
                  const char *extra_key, long long extra)
{
    if (extra_key != NULL)
        wctl_out_event(s->o.out, s->o.mode, level, msg, "{s:s, s:I, s:I}", "child", c->name, "pid",
                       (json_int_t)c->pid, extra_key, (json_int_t)extra);
    else
        wctl_out_event(s->o.out, s->o.mode, level, msg, "{s:s, s:I}", "child", c->name, "pid",
                       (json_int_t)c->pid);
}

static void flush_lines(wctl_sup_t *s, child_t *c, int all)
{
    size_t start = 0;

    for (size_t i = 0; i < c->used; i++) {
        if (c->buf[i] == '\n') {
            wctl_out_line(s->o.out, s->o.mode, c->name, c->buf + start, i - start);
            start = i + 1;
        }
    }
    if ((all || c->used - start == LINE_MAX_BYTES) && start < c->used) {
        wctl_out_line(s->o.out, s->o.mode, c->name, c->buf + start, c->used - start);
        start = c->used;
    }
    memmove(c->buf, c->buf + start, c->used - start);
    c->used -= start;
}

/* Reads what is available; closes the fd at EOF. */
static void drain(wctl_sup_t *s, child_t *c)
{
    while (c->fd >= 0) {
        ssize_t r = read(c->fd, c->buf + c->used, LINE_MAX_BYTES - c->used);

        if (r > 0) {
            c->used += (size_t)r;
            flush_lines(s, c, 0);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        flush_lines(s, c, 1);
        close(c->fd);
        c->fd = -1;
    }
}

static int start_child(wctl_sup_t *s, child_t *c)
{
    int p[2];
    pid_t pid, parent = getpid();

    if (c->fd >= 0) {
        /* Output of the previous run still open (a grandchild holds it). */
        drain(s, c);
        if (c->fd >= 0) {
            flush_lines(s, c, 1);
            close(c->fd);
            c->fd = -1;
        }
    }
    if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return -e;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC); /* dup2 clears it */
        struct sigaction sa;

        setpgid(0, 0);
        /* A weirctl killed with SIGKILL must not leave its children behind. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &sa, NULL);
        sigprocmask(SIG_SETMASK, &s->oldmask, NULL);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        if (c->cwd != NULL && chdir(c->cwd) != 0)
            _exit(127);
        execvpe(c->argv[0], c->argv, c->envp);
        dprintf(2,
                "{\"level\":\"error\",\"msg\":\"exec failed\",\"argv0\":\"%s\",\"error\":\"%s\"}\n",
                c->argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with an early kill(-pid) */
    close(p[1]);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    c->fd = p[0];
    c->pid = pid;
    c->started_ms = mono_ms();
    c->restart_at_ms = 0;
    c->stopping = 0;
    event(s, "info", "started", c, NULL, 0);
    return 0;
}

int wctl_sup_add(wctl_sup_t *s, const wctl_child_spec_t *spec)
{
    child_t *c;
    int r;

    if (s->n == WCTL_SUP_CHILDREN_MAX)
        return -ENOSPC;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->fd = -1;
    c->tier = spec->tier;
    c->name = strdup(spec->name);
    c->argv = dup_strv(spec->argv, NULL, 0);
    c->envp = dup_strv(NULL, spec->env, 1);
    c->cwd = spec->cwd ? strdup(spec->cwd) : NULL;
    c->buf = malloc(LINE_MAX_BYTES);
    if (!c->name || !c->argv || !c->envp || (spec->cwd && !c->cwd) || !c->buf) {
        r = -ENOMEM;
        goto fail;
    }
    r = start_child(s, c);
    if (r != 0)
        goto fail;
    s->c[s->n] = c;
    return s->n++;
fail:
    child_free(c);
    return r;
}

static void describe_status(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, len, "status %d", st);
}

static void on_exit_child(wctl_sup_t *s, child_t *c, int st)
{
    long long now = mono_ms();
    long long ran = now - c->started_ms;
    char how[96];
    int permanent;
    long long delay;

    drain(s, c);
    describe_status(st, how, sizeof(how));
    c->exit_status = st;
    if (c->stopping) {
        wctl_out_event(s->o.out, s->o.mode, WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "info" : "warn",
                       "stopped", "{s:s, s:I, s:s}", "child", c->name, "pid", (json_int_t)c->pid,
                       "status", how);
        c->pid = 0;
        return;
    }
    /* 64 usage, 65 invalid spec: restarting cannot help. */
    permanent = WIFEXITED(st) && (WEXITSTATUS(st) == 64 || WEXITSTATUS(st) == 65 ||
                                  WEXITSTATUS(st) == 126 || WEXITSTATUS(st) == 127);
    c->failures = ran >= s->o.stable_ms ? 1 : c->failures + 1;
    if (permanent || c->failures > s->o.max_failures) {
        wctl_out_event(s->o.out, s->o.mode, "error",
                       permanent ? "child failed permanently, giving up"
                                 : "child keeps failing, giving up",
                       "{s:s, s:I, s:s, s:i, s:I}", "child", c->name, "pid", (json_int_t)c->pid,
                       "status", how, "failures", c->failures, "ran_ms", (json_int_t)ran);
        c->pid = 0;
        if (s->state == WCTL_SUP_RUNNING) {
            s->state = WCTL_SUP_FAILED;
            s->failed = c->name;
        }
        return;
    }
    delay = s->o.backoff_min_ms;
    for (int i = 1; i < c->failures && delay < s->o.backoff_max_ms; i++)
        delay *= 2;
    if (delay > s->o.backoff_max_ms)
        delay = s->o.backoff_max_ms;
    wctl_out_event(s->o.out, s->o.mode, "warn", "child exited, restarting",
                   "{s:s, s:I, s:s, s:i, s:I, s:I}", "child", c->name, "pid", (json_int_t)c->pid,
                   "status", how, "failures", c->failures, "ran_ms", (json_int_t)ran,
                   "restart_in_ms", (json_int_t)delay);
    c->pid = 0;
    c->restart_at_ms = now + delay;
}

static void reap(wctl_sup_t *s)
{
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);

        if (pid <= 0)
            return;
        for (int i = 0; i < s->n; i++)
            if (s->c[i]->pid == pid) {
                on_exit_child(s, s->c[i], st);
                break;
            }
    }
}

static void read_signals(wctl_sup_t *s)
{
    struct signalfd_siginfo si;

    while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
            s->signals++;
            if (s->state == WCTL_SUP_RUNNING) {
                wctl_out_event(s->o.out, s->o.mode, "info", "signal received, stopping", "{s:s}",
                               "signal", strsignal((int)si.ssi_signo));
                s->state = WCTL_SUP_SIGNALED;
            }
        }
    }
    reap(s);
}

/* One pass: poll output fds and the signalfd for up to `timeout_ms`. */
static void pass(wctl_sup_t *s, int timeout_ms)
{
    struct pollfd pfd[WCTL_SUP_CHILDREN_MAX + 1];
    child_t *who[WCTL_SUP_CHILDREN_MAX + 1];
    int n = 0;

    pfd[n].fd = s->sfd;
    pfd[n].events = POLLIN;
    who[n++] = NULL;
    for (int i = 0; i < s->n; i++) {
        if (s->c[i]->fd < 0)
            continue;
        pfd[n].fd = s->c[i]->fd;
        pfd[n].events = POLLIN;
        who[n++] = s->c[i];
    }
    if (poll(pfd, (nfds_t)n, timeout_ms) <= 0)
        return;
    for (int i = 1; i < n; i++)
        if (pfd[i].revents != 0)
            drain(s, who[i]);
    if (pfd[0].revents != 0)
        read_signals(s);
}

wctl_sup_state_t wctl_sup_poll(wctl_sup_t *s, int timeout_ms)
{
    long long deadline = mono_ms() + timeout_ms;

    do {
        long long now = mono_ms();
        long long wait = deadline - now;

        for (int i = 0; i < s->n && s->state == WCTL_SUP_RUNNING; i++) {
            child_t *c = s->c[i];

            if (c->pid == 0 && c->restart_at_ms != 0 && c->restart_at_ms <= now) {
                int r;

                c->restarts++;
                r = start_child(s, c);
                if (r != 0) {
                    wctl_out_event(s->o.out, s->o.mode, "error", "restart failed", "{s:s, s:s}",
                                   "child", c->name, "error", strerror(-r));
                    c->restart_at_ms = now + s->o.backoff_max_ms;
                }
            } else if (c->pid == 0 && c->restart_at_ms != 0 && c->restart_at_ms - now < wait) {
                wait = c->restart_at_ms - now;
            }
        }
        if (s->state != WCTL_SUP_RUNNING)
            break;
        pass(s, wait > 0 ? (int)wait : 0);
    } while (s->state == WCTL_SUP_RUNNING && mono_ms() < deadline);
    return s->state;
}

wctl_sup_state_t wctl_sup_state(const wctl_sup_t *s)
{
    return s->state;
}

const char *wctl_sup_failed_child(const wctl_sup_t *s)
{
    return s->failed;
}

pid_t wctl_sup_pid(const wctl_sup_t *s, int idx)
{
    return idx >= 0 && idx < s->n ? s->c[idx]->pid : 0;
}

int wctl_sup_restarts(const wctl_sup_t *s, int idx)
{
    return idx >= 0 && idx < s->n ? s->c[idx]->restarts : 0;
}

static int tier_running(const wctl_sup_t *s, int tier)
{
    for (int i = 0; i < s->n; i++)
        if (s->c[i]->tier == tier && s->c[i]->pid != 0)
            return 1;
    return 0;
}

int wctl_sup_stop(wctl_sup_t *s)
{
    int bad = 0, max_tier = 0, min_tier = 0;

    if (s->state == WCTL_SUP_RUNNING)
        s->state = WCTL_SUP_SIGNALED;
    for (int i = 0; i < s->n; i++) {
        s->c[i]->restart_at_ms = 0;
        if (s->c[i]->tier > max_tier)
            max_tier = s->c[i]->tier;
        if (s->c[i]->tier < min_tier)
            min_tier = s->c[i]->tier;
    }
    for (int tier = max_tier; tier >= min_tier; tier--) {
        long long deadline = mono_ms() + s->o.stop_grace_ms;
        int signals_before = s->signals;

        for (int i = 0; i < s->n; i++) {
            child_t *c = s->c[i];

            if (c->tier != tier || c->pid == 0)
                continue;
            c->stopping = 1;
            event(s, "info", "stopping", c, NULL, 0);
            kill(-c->pid, SIGTERM);
        }
        while (tier_running(s, tier) && mono_ms() < deadline && s->signals == signals_before)
            pass(s, 50);
        for (int i = 0; i < s->n; i++) {
            child_t *c = s->c[i];

            if (c->tier != tier || c->pid == 0)
                continue;
            wctl_out_event(s->o.out, s->o.mode, "warn", "did not stop in time, killing",
                           "{s:s, s:I, s:i}", "child", c->name, "pid", (json_int_t)c->pid,
                           "grace_ms", s->o.stop_grace_ms);
            kill(-c->pid, SIGKILL);
        }
        while (tier_running(s, tier))
            pass(s, 50);
    }
    for (int i = 0; i < s->n; i++) {
        child_t *c = s->c[i];

        /* Asked to stop: exit 0, or death by the SIGTERM we sent (a UDF
         * command without a handler), is a clean stop. */
        if (c->stopping && !(WIFEXITED(c->exit_status) && WEXITSTATUS(c->exit_status) == 0) &&
            !(WIFSIGNALED(c->exit_status) && WTERMSIG(c->exit_status) == SIGTERM))
            bad++;
        drain(s, c);
    }
    return bad;
}

void wctl_sup_free(wctl_sup_t *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < s->n; i++) {
        child_t *c = s->c[i];

        if (c->pid != 0) {
            kill(-c->pid, SIGKILL);
            waitpid(c->pid, NULL, 0);
        }
        if (c->fd >= 0)
            close(c->fd);
        child_free(c);
    }
    close(s->sfd);
    sigprocmask(SIG_SETMASK, &s->oldmask, NULL);
    free(s);
}
