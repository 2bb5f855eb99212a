/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_run: the `weirctl run` command: plan (wctl_plan), state directory,
 * store start-up and topics (wctl_kafka), then UDFs and processors under
 * the supervisor (wctl_sup). */

#include "wctl_run.h"

#include "wctl_kafka.h"
#include "wctl_manifest.h"
#include "wctl_out.h"
#include "wctl_plan.h"
#include "wctl_sup.h"

#include "op_render.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_READY_TIMEOUT_MS 30000

static const char usage[] =
    "usage: weirctl run [options] DIR|FILE...\n"
    "Runs ClusterStream, Stream and Processor manifests on this machine: a local\n"
    "store, every Processor replica and its UDF commands, supervised until Ctrl-C.\n"
    "  --state-dir DIR     store data, specs, checkpoints (default .weir, or $WEIR_STATE_DIR)\n"
    "  --clean             delete the state directory's data first\n"
    "  --store-port P      local store port (default 20092)\n"
    "  --store-workers N   store worker threads (default 1)\n"
    "  --udf-port-base P   first port for UDF commands (default 20000; one per replica/UDF)\n"
    "  --udf-map FILE      YAML/JSON {containers: {NAME: CMD}, images: {IMAGE: CMD}}\n"
    "  --dataplane PATH    weir-dataplane binary (default: beside weirctl, or $WEIR_DATAPLANE)\n"
    "  --human             human-readable lines instead of JSON lines\n"
    "  --max-restarts N    fast failures in a row before giving up (default 5)\n"
    "  --stop-timeout MS   SIGTERM to SIGKILL per tier (default 10000)\n"
    "A UDF container maps to a local command through the Processor annotation\n"
    "  local.weir.dev/command.<container>: \"python3 udf.py --port {port}\"\n"
    "({port}: the replica's own port; the container's declared port is replaced too).\n";

typedef struct run_opts {
    const char *state_dir;
    int clean;
    int store_port;
    int store_workers;
    int udf_port_base;
    const char *udf_map;
    const char *dataplane;
    wctl_out_mode_t mode;
    int max_restarts;
    int stop_timeout_ms;
} run_opts_t;

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

/* snprintf for paths; a truncated path is refused (-ENAMETOOLONG), never used. */
__attribute__((format(printf, 3, 4))) static int pathf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The default range stops below the store's default port. */
static int udf_port_max(int base)
{
    if (base == WCTL_DEFAULT_UDF_PORT_BASE)
        return WCTL_DEFAULT_UDF_PORT_MAX;
    return base + 255 > 65535 ? 65535 : base + 255;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

static int mkdirs(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];

            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -errno;
            buf[i] = c;
        }
    }
    return 0;
}

static int write_json(const char *path, const json_t *v)
{
    char tmp[PATH_MAX];

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (json_dump_file(v, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
        return -EIO;
    return rename(tmp, path) == 0 ? 0 : -errno;
}

static int find_dataplane(const char *given, char *out, size_t len)
{
    const char *env = getenv("WEIR_DATAPLANE");
    char self[PATH_MAX], *dir;
    ssize_t n;

    if (given != NULL || (env != NULL && env[0] != '\0')) {
        snprintf(out, len, "%s", given ? given : env);
        return access(out, X_OK) == 0 ? 0 : -ENOENT;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        dir = dirname(self);
        snprintf(out, len, "%s/weir-dataplane", dir);
        if (access(out, X_OK) == 0)
            return 0;
        snprintf(out, len, "%s/../dataplane/weir-dataplane", dir);
        if (access(out, X_OK) == 0)
            return 0;
    }
    snprintf(out, len, "weir-dataplane"); /* PATH */
    return 0;
}

static json_t *load_udf_map(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char buf[1 << 16];
    size_t n;
    json_t *docs = NULL, *map = NULL;
    if (f == NULL) {
        snprintf(err, errlen, "--udf-map %s: %s", path, strerror(errno));
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (op_render_yaml_load(buf, n, &docs, err, errlen) != 0)
        return NULL;
    map = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    if (!json_is_object(map) ||
        (json_object_get(map, "containers") &&
         !json_is_object(json_object_get(map, "containers"))) ||
        (json_object_get(map, "images") && !json_is_object(json_object_get(map, "images")))) {
        snprintf(err, errlen,
                 "--udf-map %s: expected a mapping {containers: {NAME: COMMAND}, images: {IMAGE: "
                 "COMMAND}}",
                 path);
        json_decref(map);
        return NULL;
    }
    return map;
}

/* Starts the store and waits until it answers Metadata; creates topics. */
static int start_store(wctl_sup_t *sup, const run_opts_t *o, const char *dataplane,
                       const char *state, const char *bootstrap, const json_t *topics)
{
    char data[PATH_MAX], port[16], workers[16], err[512];
    rd_kafka_t *rk;
    int r;

    pathf(data, sizeof(data), "%s/store", state);
    snprintf(port, sizeof(port), "%d", o->store_port);
    snprintf(workers, sizeof(workers), "%d", o->store_workers);
    {
        const char *argv[] = {dataplane,   "--role",         "store", "--data-dir",
                              data,        "--kafka-port",   port,    "--advertised-host",
                              "127.0.0.1", "--http-port",    "0",     "--workers",
                              workers,     "--retention-ms", "-1",    NULL};
        wctl_child_spec_t cs = {.name = "store", .argv = argv, .tier = 0};

        r = wctl_sup_add(sup, &cs);
        if (r < 0) {
            wctl_out_event(stdout, o->mode, "error", "cannot start the store", "{s:s, s:s}",
                           "dataplane", dataplane, "error", strerror(-r));
            return 69;
        }
    }
    rk = wctl_kafka_new(RD_KAFKA_PRODUCER, bootstrap, NULL, NULL, err, sizeof(err));
    if (rk == NULL) {
        wctl_out_event(stdout, o->mode, "error", "kafka client", "{s:s}", "error", err);
        return 69;
    }
    {
        struct timespec t0, t1;
        int ready = 0;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            if (wctl_sup_poll(sup, 50) != WCTL_SUP_RUNNING)
                break;
            if (wctl_kafka_wait_ready(rk, 200) == 0) {
                ready = 1;
                break;
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >
                STORE_READY_TIMEOUT_MS)
                break;
        }
        if (!ready) {
            rd_kafka_destroy(rk);
            if (wctl_sup_state(sup) == WCTL_SUP_SIGNALED)
                return 0;
            if (wctl_sup_state(sup) == WCTL_SUP_FAILED)
                return 69; /* the supervisor said why */
            wctl_out_event(stdout, o->mode, "error", "the store did not come up", "{s:s, s:i}",
                           "bootstrap", bootstrap, "timeout_ms", STORE_READY_TIMEOUT_MS);
            return 69;
        }
    }
    wctl_out_event(stdout, o->mode, "info", "store ready", "{s:s, s:s}", "bootstrap", bootstrap,
                   "data", data);
    r = wctl_kafka_create_topics(rk, topics, 15000, err, sizeof(err));
    rd_kafka_destroy(rk);
    if (r != 0) {
        wctl_out_event(stdout, o->mode, "error", "cannot create topics", "{s:s}", "error", err);
        return 69;
    }
    {
        size_t i;
        const json_t *t;

        json_array_foreach (topics, i, t)
            wctl_out_event(stdout, o->mode, "info", "topic", "{s:O, s:O, s:O}", "topic",
                           json_object_get(t, "topic"), "partitions",
                           json_object_get(t, "partitions"), "stream",
                           json_object_get(t, "stream"));
    }
    return 0;
}

static int start_processors(wctl_sup_t *sup, const run_opts_t *o, const char *dataplane,
                            const char *state, const char *bootstrap, const char *manifest_dir,
                            const json_t *plan)
{
    const json_t *p, *rp, *u;
    size_t i, j, k;

    /* UDFs first: a processor waits for its UDF at start-up anyway, and the
     * interpreters take the longest to come up. */
    json_array_foreach (json_object_get(plan, "processors"), i, p) {
        const char *pname = json_string_value(json_object_get(p, "name"));

        json_array_foreach (json_object_get(p, "replicas_plan"), j, rp) {
            int idx = (int)json_integer_value(json_object_get(rp, "index"));

            json_array_foreach (json_object_get(rp, "udfs"), k, u) {
                char name[512], cmd[4200], e1[64], e2[64], e3[64], e4[512], e5[PATH_MAX + 32],
                    e6[300];
                const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
                const char *env[] = {e1, e2, e3, e4, e5, e6, NULL};
                wctl_child_spec_t cs = {.name = name, .argv = argv, .env = env, .tier = 1};
                int port = (int)json_integer_value(json_object_get(u, "port"));

                snprintf(name, sizeof(name), "udf/%s-%d/%s", pname, idx,
                         json_string_value(json_object_get(u, "container")));
                snprintf(cmd, sizeof(cmd), "exec %s",
                         json_string_value(json_object_get(u, "command")));
                snprintf(e1, sizeof(e1), "UDF_PORT=%d", port);
                snprintf(e2, sizeof(e2), "WEIR_UDF_PORT=%d", port);
                snprintf(e3, sizeof(e3), "WEIR_REPLICA_INDEX=%d", idx);
                snprintf(e4, sizeof(e4), "WEIR_PROCESSOR=%s", pname);
                snprintf(e5, sizeof(e5), "WEIR_MANIFEST_DIR=%s", manifest_dir);
                snprintf(e6, sizeof(e6), "WEIR_BOOTSTRAP=%s", bootstrap);
                if (wctl_sup_add(sup, &cs) < 0)
                    return 1;
            }
        }
    }
    json_array_foreach (json_object_get(plan, "processors"), i, p) {
        const char *pname = json_string_value(json_object_get(p, "name"));

        json_array_foreach (json_object_get(p, "replicas_plan"), j, rp) {
            int idx = (int)json_integer_value(json_object_get(rp, "index"));
            char name[512], spec[PATH_MAX], data[PATH_MAX], ckpt[PATH_MAX];
            const char *pod = json_string_value(json_object_get(rp, "podName"));
            const char *argv[] = {
                dataplane,    "--role",      "processor",  "--spec", spec,
                "--pod-name", pod,           "--data-dir", data,     "--checkpoint-dir",
                ckpt,         "--http-port", "0",          NULL};
            wctl_child_spec_t cs = {.name = name, .argv = argv, .tier = 2};

            snprintf(name, sizeof(name), "proc/%s-%d", pname, idx);
            if (pathf(spec, sizeof(spec), "%s/specs/%s-%d.json", state, pname, idx) != 0 ||
                pathf(data, sizeof(data), "%s/proc/%s-%d", state, pname, idx) != 0 ||
                pathf(ckpt, sizeof(ckpt), "%s/checkpoints/%s-%d", state, pname, idx) != 0 ||
                mkdirs(data) != 0 || mkdirs(ckpt) != 0 ||
                write_json(spec, json_object_get(rp, "spec")) != 0) {
                wctl_out_event(stdout, o->mode, "error", "cannot write the state directory",
                               "{s:s}", "path", spec);
                return 1;
            }
            if (wctl_sup_add(sup, &cs) < 0)
                return 1;
        }
        json_array_foreach (json_object_get(p, "outputs"), j, u) {
            char hint[1024];

            snprintf(hint, sizeof(hint), "weirctl consume %s --bootstrap %s", json_string_value(u),
                     bootstrap);
            wctl_out_event(stdout, o->mode, "info", "output", "{s:s, s:O, s:s, s:s}", "processor",
                           pname, "topic", u, "bootstrap", bootstrap, "consume", hint);
        }
    }
    return 0;
}

int wctl_run_main(int argc, char **argv)
{
    static const struct option lo[] = {{"state-dir", required_argument, NULL, 's'},
                                       {"clean", no_argument, NULL, 'c'},
                                       {"store-port", required_argument, NULL, 'p'},
                                       {"store-workers", required_argument, NULL, 'w'},
                                       {"udf-port-base", required_argument, NULL, 'u'},
                                       {"udf-map", required_argument, NULL, 'm'},
                                       {"dataplane", required_argument, NULL, 'd'},
                                       {"human", no_argument, NULL, 'H'},
                                       {"max-restarts", required_argument, NULL, 'r'},
                                       {"stop-timeout", required_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    run_opts_t o = {.state_dir = getenv("WEIR_STATE_DIR"),
                    .store_port = WCTL_DEFAULT_STORE_PORT,
                    .store_workers = 1,
                    .udf_port_base = WCTL_DEFAULT_UDF_PORT_BASE,
                    .max_restarts = 5,
                    .stop_timeout_ms = 10000};
    wctl_manifest_t m = {0};
    wctl_sup_t *sup = NULL;
    json_t *plan = NULL, *udf_map = NULL, *run = NULL;
    char err[2048], state[PATH_MAX], dataplane[PATH_MAX], bootstrap[64], mdir[PATH_MAX],
        path[PATH_MAX + 32];
    int c, rc = 0, lockfd = -1, bad;
    wctl_sup_state_t st;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 's':
            o.state_dir = optarg;
            break;
        case 'c':
            o.clean = 1;
            break;
        case 'p':
            if (parse_int(optarg, 1, 65535, &o.store_port) != 0)
                goto usage;
            break;
        case 'w':
            if (parse_int(optarg, 1, 256, &o.store_workers) != 0)
                goto usage;
            break;
        case 'u':
            if (parse_int(optarg, 1, 65535, &o.udf_port_base) != 0)
                goto usage;
            break;
        case 'm':
            o.udf_map = optarg;
            break;
        case 'd':
            o.dataplane = optarg;
            break;
        case 'H':
            o.mode = WCTL_OUT_HUMAN;
            break;
        case 'r':
            if (parse_int(optarg, 0, 1000, &o.max_restarts) != 0)
                goto usage;
            break;
        case 't':
            if (parse_int(optarg, 1, 3600000, &o.stop_timeout_ms) != 0)
                goto usage;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            goto usage;
        }
    }
    if (optind >= argc)
        goto usage;
    if (o.state_dir == NULL || o.state_dir[0] == '\0')
        o.state_dir = WCTL_DEFAULT_STATE_DIR;

    /* 1. Manifests and plan: every error names its file and document. */
    if (wctl_manifest_init(&m) != 0) {
        fprintf(stderr, "weirctl run: out of memory\n");
        return 1;
    }
    for (int i = optind; i < argc; i++) {
        if (wctl_manifest_add_path(&m, argv[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "weirctl run: %s\n", err);
            rc = 65;
            goto out;
        }
    }
    if (json_array_size(m.processors) == 0 && json_array_size(m.streams) == 0) {
        fprintf(stderr, "weirctl run: no Stream or Processor in %s%s\n", argv[optind],
                argc - optind > 1 ? " ..." : "");
        rc = 65;
        goto out;
    }
    if (o.udf_map != NULL && (udf_map = load_udf_map(o.udf_map, err, sizeof(err))) == NULL) {
        fprintf(stderr, "weirctl run: %s\n", err);
        rc = 65;
        goto out;
    }
    snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%d", o.store_port);
    {
        wctl_plan_opts_t po = {.bootstrap = bootstrap,
                               .udf_port_base = o.udf_port_base,
                               .udf_port_max = udf_port_max(o.udf_port_base),
                               .udf_map = udf_map};

        if (wctl_plan_build(&m, &po, &plan, err, sizeof(err)) != 0) {
            fprintf(stderr, "weirctl run: %s\n", err);
            rc = 65;
            goto out;
        }
    }
    {
        size_t i;
        const json_t *sk;

        json_array_foreach (m.skipped, i, sk)
            fprintf(stderr, "weirctl run: skipping %s (not a Weir resource)\n",
                    json_string_value(sk));
    }
    if (find_dataplane(o.dataplane, dataplane, sizeof(dataplane)) != 0) {
        fprintf(stderr, "weirctl run: weir-dataplane not found at %s\n", dataplane);
        rc = 69;
        goto out;
    }

    /* 2. State directory, locked against a second run using it. */
    if (mkdirs(o.state_dir) != 0 || realpath(o.state_dir, state) == NULL) {
        fprintf(stderr, "weirctl run: state directory %s: %s\n", o.state_dir, strerror(errno));
        rc = 1;
        goto out;
    }
    snprintf(path, sizeof(path), "%s/lock", state);
    lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "weirctl run: state directory %s is in use by another weirctl run\n",
                state);
        rc = 1;
        goto out;
    }
    if (o.clean) {
        const char *sub[] = {"store", "specs", "checkpoints", "proc"};

        for (size_t i = 0; i < 4; i++) {
            snprintf(path, sizeof(path), "%s/%s", state, sub[i]);
            nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        }
    }
    snprintf(path, sizeof(path), "%s/specs", state);
    if (mkdirs(path) != 0) {
        fprintf(stderr, "weirctl run: cannot create %s\n", path);
        rc = 1;
        goto out;
    }
    {
        char first[PATH_MAX];
        struct stat sb;

        if (realpath(argv[optind], first) == NULL)
            snprintf(first, sizeof(first), "%s", argv[optind]);
        if (stat(first, &sb) == 0 && !S_ISDIR(sb.st_mode))
            snprintf(mdir, sizeof(mdir), "%s", dirname(first));
        else
            snprintf(mdir, sizeof(mdir), "%s", first);
    }

    /* 3. Supervisor before any thread: librdkafka's threads inherit the mask. */
    {
        wctl_sup_opts_t so = {.out = stdout,
                              .mode = o.mode,
                              .max_failures = o.max_restarts,
                              .stop_grace_ms = o.stop_timeout_ms};

        sup = wctl_sup_new(&so);
        if (sup == NULL) {
            fprintf(stderr, "weirctl run: supervisor: %s\n", strerror(errno));
            rc = 1;
            goto out;
        }
    }
    wctl_out_event(stdout, o.mode, "info", "weirctl run", "{s:s, s:s, s:s, s:i, s:i}", "manifests",
                   mdir, "state", state, "dataplane", dataplane, "processors",
                   (int)json_array_size(json_object_get(plan, "processors")), "topics",
                   (int)json_array_size(json_object_get(plan, "topics")));
    rc = start_store(sup, &o, dataplane, state, bootstrap, json_object_get(plan, "topics"));
    if (rc != 0 || wctl_sup_state(sup) != WCTL_SUP_RUNNING)
        goto stop;
    run = json_pack("{s:s, s:i, s:s, s:O}", "bootstrap", bootstrap, "pid", (int)getpid(), "state",
                    state, "plan", plan);
    snprintf(path, sizeof(path), "%s/run.json", state);
    if (run == NULL || write_json(path, run) != 0) {
        wctl_out_event(stdout, o.mode, "error", "cannot write", "{s:s}", "path", path);
        rc = 1;
        goto stop;
    }
    rc = start_processors(sup, &o, dataplane, state, bootstrap, mdir, plan);
    if (rc != 0)
        goto stop;
    wctl_out_event(stdout, o.mode, "info", "running (Ctrl-C stops)", "{s:s}", "bootstrap",
                   bootstrap);
    do
        st = wctl_sup_poll(sup, 1000);
    while (st == WCTL_SUP_RUNNING);
stop:
    st = wctl_sup_state(sup);
    bad = wctl_sup_stop(sup);
    if (st == WCTL_SUP_FAILED) {
        wctl_out_event(stdout, o.mode, "error", "stopped: a child failed repeatedly", "{s:s}",
                       "child", wctl_sup_failed_child(sup));
        if (rc == 0)
            rc = 1;
    } else if (bad > 0) {
        wctl_out_event(stdout, o.mode, "warn", "stopped; some children did not exit cleanly",
                       "{s:i}", "children", bad);
        if (rc == 0)
            rc = 1;
    } else {
        wctl_out_event(stdout, o.mode, "info", "stopped", NULL);
    }
    snprintf(path, sizeof(path), "%s/run.json", state);
    unlink(path);
out:
    wctl_sup_free(sup);
    json_decref(run);
    json_decref(plan);
    json_decref(udf_map);
    wctl_manifest_dispose(&m);
    if (lockfd >= 0)
        close(lockfd);
    return rc;
usage:
    fputs(usage, stderr);
    return 64;
}
