/* SPDX-License-Identifier: Apache-2.0 */
/* Topic catalog: JSON files under <data_dir>/__topics/, published as
 * immutable snapshots. Writers (the controller worker) serialise on a mutex;
 * readers (every worker) load one atomic pointer. See dp_catalog.h. */
#include "dp_catalog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dp_catalog {
    pthread_mutex_t lock; /* writers only */
    _Atomic(dp_catalog_snap_t *) cur;
    dp_catalog_snap_t *retired;
    _Atomic uint64_t seen[DP_CATALOG_READERS_MAX];
    _Atomic int readers;
    uint64_t next_id;
    dp_catalog_defaults_t defs;
    char dir[4096];
};

static int cmp_topic(const void *a, const void *b)
{
    const dp_topic_t *x = *(const dp_topic_t *const *)a;
    const dp_topic_t *y = *(const dp_topic_t *const *)b;

    return strcmp(x->name, y->name);
}

static dp_catalog_snap_t *snap_new(uint64_t version, uint32_t count)
{
    dp_catalog_snap_t *s = calloc(1, sizeof(*s) + (count + 1) * sizeof(dp_topic_t *));

    if (s == NULL)
        return NULL;
    s->version = version;
    s->count = count;
    s->topics = (const dp_topic_t **)(s + 1);
    return s;
}

/* Frees a snapshot; topics die only with their `dead` marker or at close. */
static void snap_free(dp_catalog_snap_t *s)
{
    free(s->dead);
    free(s);
}

static int parse_i64(const char *v, int64_t *out)
{
    char *end;
    long long x;

    errno = 0;
    x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0')
        return -EINVAL;
    *out = x;
    return 0;
}

/* Configs a Kafka client may set that only matter to brokers with
 * replication, compaction tuning or message-format conversion: recorded and
 * shown by DescribeConfigs, but without effect here. */
static const char *const ignored_configs[] = {"min.insync.replicas",
                                              "unclean.leader.election.enable",
                                              "message.timestamp.type",
                                              "max.message.bytes",
                                              "compression.type",
                                              "flush.messages",
                                              "flush.ms",
                                              "segment.ms",
                                              "index.interval.bytes",
                                              "file.delete.delay.ms",
                                              "message.downconversion.enable",
                                              "preallocate",
                                              "min.cleanable.dirty.ratio",
                                              "delete.retention.ms",
                                              "segment.index.bytes",
                                              "message.timestamp.difference.max.ms",
                                              NULL};

static int apply_config(dp_topic_t *t, const char *name, const char *value, char *err,
                        size_t errlen)
{
    int64_t v;

    if (strcmp(name, "cleanup.policy") == 0) {
        if (strcmp(value, "delete") != 0)
            goto bad_value;
        return 0;
    }
    if (strcmp(name, "retention.ms") == 0 || strcmp(name, "retention.bytes") == 0 ||
        strcmp(name, "segment.bytes") == 0) {
        if (parse_i64(value, &v) != 0)
            goto bad_value;
        if (name[0] == 's') {
            if (v < 1 << 16 || v > (int64_t)1 << 34)
                goto bad_value;
            t->segment_bytes = (uint64_t)v;
        } else if (v < -1) {
            goto bad_value;
        } else if (strcmp(name, "retention.ms") == 0) {
            t->retention_ms = v;
        } else {
            t->retention_bytes = v;
        }
        return 0;
    }
    for (int i = 0; ignored_configs[i] != NULL; i++)
        if (strcmp(name, ignored_configs[i]) == 0)
            return 0;
    snprintf(err, errlen, "unknown topic config %s", name);
    return -EINVAL;
bad_value:
    snprintf(err, errlen, "invalid value %s for topic config %s", value, name);
    return -EINVAL;
}

int dp_catalog_valid_name(dp_kstr_t name)
{
    if (name.len <= 0 || name.len > DP_TOPIC_NAME_MAX)
        return -EINVAL;
    if ((name.len == 1 && name.ptr[0] == '.') ||
        (name.len == 2 && name.ptr[0] == '.' && name.ptr[1] == '.'))
        return -EINVAL;
    for (int32_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return -EINVAL;
    }
    return 0;
}

static void kstr_copy(char *dst, size_t cap, dp_kstr_t s)
{
    size_t n = s.len < 0 ? 0 : (size_t)s.len;

    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

int dp_catalog_prepare(const dp_catalog_t *cat, dp_topic_t *t, dp_kstr_t name, int32_t partitions,
                       const dp_kstr_t *config_names, const dp_kstr_t *config_values, int32_t ncfg,
                       char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (dp_catalog_valid_name(name) != 0) {
        snprintf(err, errlen, "invalid topic name");
        return -EINVAL;
    }
    if (partitions < 1 || partitions > DP_TOPIC_PARTITIONS_MAX) {
        snprintf(err, errlen, "partitions must be 1..%d", DP_TOPIC_PARTITIONS_MAX);
        return -EINVAL;
    }
    if (ncfg > DP_TOPIC_CONFIGS_MAX) {
        snprintf(err, errlen, "at most %d topic configs", DP_TOPIC_CONFIGS_MAX);
        return -EINVAL;
    }
    kstr_copy(t->name, sizeof(t->name), name);
    t->partitions = partitions;
    t->retention_ms = cat->defs.retention_ms;
    t->retention_bytes = cat->defs.retention_bytes;
    t->segment_bytes = cat->defs.segment_bytes;
    for (int32_t i = 0; i < ncfg; i++) {
        dp_topic_config_t *c = &t->configs[t->config_count];
        int rc;

        if (config_names[i].len <= 0 || config_names[i].len >= (int32_t)sizeof(c->name) ||
            config_values[i].len < 0 || config_values[i].len >= (int32_t)sizeof(c->value)) {
            snprintf(err, errlen, "topic config %d: bad name or value length", i);
            return -EINVAL;
        }
        kstr_copy(c->name, sizeof(c->name), config_names[i]);
        kstr_copy(c->value, sizeof(c->value), config_values[i]);
        rc = apply_config(t, c->name, c->value, err, errlen);
        if (rc != 0)
            return rc;
        t->config_count++;
    }
    return 0;
}

static int topic_from_json(dp_catalog_t *cat, json_t *j, dp_topic_t *t, char *err, size_t errlen)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    json_t *cfgs = json_object_get(j, "configs");
    json_int_t id = json_integer_value(json_object_get(j, "id"));
    json_int_t parts = json_integer_value(json_object_get(j, "partitions"));
    dp_kstr_t names[DP_TOPIC_CONFIGS_MAX], values[DP_TOPIC_CONFIGS_MAX];
    const char *k;
    json_t *v;
    int32_t n = 0;

    if (name == NULL || id <= 0 || !json_is_object(cfgs)) {
        snprintf(err, errlen, "missing name, id or configs");
        return -EINVAL;
    }
    json_object_foreach (cfgs, k, v) {
        if (n == DP_TOPIC_CONFIGS_MAX || !json_is_string(v)) {
            snprintf(err, errlen, "bad configs");
            return -EINVAL;
        }
        names[n] = dp_kstr(k);
        values[n++] = dp_kstr(json_string_value(v));
    }
    if (dp_catalog_prepare(cat, t, dp_kstr(name), (int32_t)parts, names, values, n, err, errlen) !=
        0)
        return -EINVAL;
    t->id = (uint64_t)id;
    return 0;
}

static int write_topic_file(dp_catalog_t *cat, const dp_topic_t *t)
{
    char path[4400], tmp[4410];
    json_t *j = json_pack("{s:s, s:I, s:i, s:{}}", "name", t->name, "id", (json_int_t)t->id,
                          "partitions", (int)t->partitions, "configs");
    json_t *cfgs;
    char *text = NULL;
    int fd = -1, dfd = -1, rc = 0;
    size_t len;

    if (j == NULL)
        return -ENOMEM;
    cfgs = json_object_get(j, "configs");
    for (int32_t i = 0; i < t->config_count; i++)
        json_object_set_new(cfgs, t->configs[i].name, json_string(t->configs[i].value));
    text = json_dumps(j, JSON_SORT_KEYS);
    if (text == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(path, sizeof(path), "%s/%s.json", cat->dir, t->name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || fdatasync(fd) != 0 ||
        rename(tmp, path) != 0) {
        rc = -errno;
        goto out;
    }
    dfd = open(cat->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        rc = -errno;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    free(text);
    json_decref(j);
    return rc;
}

/* Publishes `next` and retires the current snapshot (with `dead`). */
static void publish(dp_catalog_t *cat, dp_catalog_snap_t *next, dp_topic_t *dead)
{
    dp_catalog_snap_t *old = atomic_load_explicit(&cat->cur, memory_order_relaxed);

    atomic_store_explicit(&cat->cur, next, memory_order_release);
    if (old != NULL) {
        old->dead = dead;
        old->retired_next = cat->retired;
        cat->retired = old;
    }
}

int dp_catalog_open(dp_catalog_t **out, const char *data_dir, const dp_catalog_defaults_t *defs,
                    char *err, size_t errlen)
{
    dp_catalog_t *cat = calloc(1, sizeof(*cat));
    dp_topic_t **list = NULL;
    uint32_t n = 0, cap = 0;
    dp_catalog_snap_t *s;
    struct dirent *de;
    DIR *d = NULL;
    int rc = 0;

    if (cat == NULL)
        return -ENOMEM;
    pthread_mutex_init(&cat->lock, NULL);
    cat->defs = *defs;
    cat->next_id = 1;
    snprintf(cat->dir, sizeof(cat->dir), "%s/__topics", data_dir);
    if (mkdir(data_dir, 0755) != 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "mkdir %s: %s", data_dir, strerror(errno));
        goto out;
    }
    if (mkdir(cat->dir, 0755) != 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "mkdir %s: %s", cat->dir, strerror(errno));
        goto out;
    }
    d = opendir(cat->dir);
    if (d == NULL) {
        rc = -errno;
        snprintf(err, errlen, "opendir %s: %s", cat->dir, strerror(errno));
        goto out;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char path[4400], why[256];
        json_error_t jerr;
        json_t *j;

        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        if (n == cap) {
            dp_topic_t **grown = realloc(list, (cap ? cap * 2 : 16) * sizeof(*list));

            if (grown == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            list = grown;
            cap = cap ? cap * 2 : 16;
        }
        list[n] = calloc(1, sizeof(dp_topic_t));
        if (list[n] == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        snprintf(path, sizeof(path), "%s/%s", cat->dir, de->d_name);
        j = json_load_file(path, 0, &jerr);
        if (j == NULL || topic_from_json(cat, j, list[n], why, sizeof(why)) != 0) {
            snprintf(err, errlen, "topic file %s: %s", path, j == NULL ? jerr.text : why);
            json_decref(j);
            free(list[n]);
            rc = -EBADMSG;
            goto out;
        }
        json_decref(j);
        if (list[n]->id >= cat->next_id)
            cat->next_id = list[n]->id + 1;
        n++;
    }
    s = snap_new(1, n);
    if (s == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < n; i++)
        s->topics[i] = list[i];
    qsort(s->topics, n, sizeof(*s->topics), cmp_topic);
    atomic_store(&cat->cur, s);
    n = 0; /* owned by the snapshot now */
out:
    if (d != NULL)
        closedir(d);
    for (uint32_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
    if (rc != 0) {
        pthread_mutex_destroy(&cat->lock);
        free(cat);
        return rc;
    }
    *out = cat;
    return 0;
}

void dp_catalog_free(dp_catalog_t *cat)
{
    dp_catalog_snap_t *s, *next;

    if (cat == NULL)
        return;
    for (s = cat->retired; s != NULL; s = next) {
        next = s->retired_next;
        snap_free(s);
    }
    s = atomic_load(&cat->cur);
    if (s != NULL) {
        for (uint32_t i = 0; i < s->count; i++)
            free((void *)s->topics[i]);
        snap_free(s);
    }
    pthread_mutex_destroy(&cat->lock);
    free(cat);
}

int dp_catalog_reader(dp_catalog_t *cat)
{
    int slot = atomic_fetch_add(&cat->readers, 1);

    if (slot >= DP_CATALOG_READERS_MAX)
        return -ENOSPC;
    atomic_store(&cat->seen[slot], atomic_load(&cat->cur)->version);
    return slot;
}

const dp_catalog_snap_t *dp_catalog_get(const dp_catalog_t *cat)
{
    return atomic_load_explicit(&((dp_catalog_t *)cat)->cur, memory_order_acquire);
}

void dp_catalog_quiesce(dp_catalog_t *cat, int slot)
{
    dp_catalog_snap_t *s = atomic_load_explicit(&cat->cur, memory_order_acquire);

    atomic_store_explicit(&cat->seen[slot], s->version, memory_order_release);
}

void dp_catalog_reclaim(dp_catalog_t *cat)
{
    dp_catalog_snap_t **pp, *s;
    uint64_t min = UINT64_MAX;
    int readers;

    pthread_mutex_lock(&cat->lock);
    readers = atomic_load(&cat->readers);
    for (int i = 0; i < readers && i < DP_CATALOG_READERS_MAX; i++) {
        uint64_t v = atomic_load_explicit(&cat->seen[i], memory_order_acquire);

        if (v < min)
            min = v;
    }
    /* A reader that saw version v no longer holds anything older than v. */
    for (pp = &cat->retired; (s = *pp) != NULL;) {
        if (s->version < min) {
            *pp = s->retired_next;
            snap_free(s);
        } else {
            pp = &s->retired_next;
        }
    }
    pthread_mutex_unlock(&cat->lock);
}

const dp_topic_t *dp_catalog_find(const dp_catalog_snap_t *snap, dp_kstr_t name)
{
    uint32_t lo = 0, hi = snap->count;

    if (name.len <= 0 || name.len > DP_TOPIC_NAME_MAX)
        return NULL;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const char *n = snap->topics[mid]->name;
        int c = strncmp(n, name.ptr, (size_t)name.len);

        if (c == 0 && n[name.len] != '\0')
            c = 1;
        if (c == 0)
            return snap->topics[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int dp_catalog_add(dp_catalog_t *cat, dp_topic_t *t)
{
    dp_catalog_snap_t *cur, *next;
    dp_topic_t *copy;
    int rc;

    pthread_mutex_lock(&cat->lock);
    cur = atomic_load(&cat->cur);
    if (dp_catalog_find(cur, dp_kstr(t->name)) != NULL) {
        rc = -EEXIST;
        goto out;
    }
    t->id = cat->next_id;
    copy = malloc(sizeof(*copy));
    next = snap_new(cur->version + 1, cur->count + 1);
    if (copy == NULL || next == NULL) {
        free(copy);
        free(next);
        rc = -ENOMEM;
        goto out;
    }
    *copy = *t;
    rc = write_topic_file(cat, copy);
    if (rc != 0) {
        free(copy);
        free(next);
        goto out;
    }
    cat->next_id++;
    memcpy(next->topics, cur->topics, cur->count * sizeof(*cur->topics));
    next->topics[cur->count] = copy;
    qsort(next->topics, next->count, sizeof(*next->topics), cmp_topic);
    publish(cat, next, NULL);
out:
    pthread_mutex_unlock(&cat->lock);
    return rc;
}

int dp_catalog_remove(dp_catalog_t *cat, dp_kstr_t name)
{
    dp_catalog_snap_t *cur, *next;
    const dp_topic_t *t;
    char path[4400];
    uint32_t j = 0;
    int rc = 0;

    pthread_mutex_lock(&cat->lock);
    cur = atomic_load(&cat->cur);
    t = dp_catalog_find(cur, name);
    if (t == NULL) {
        rc = -ENOENT;
        goto out;
    }
    next = snap_new(cur->version + 1, cur->count - 1);
    if (next == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(path, sizeof(path), "%s/%s.json", cat->dir, t->name);
    if (unlink(path) != 0 && errno != ENOENT) {
        rc = -errno;
        free(next);
        goto out;
    }
    for (uint32_t i = 0; i < cur->count; i++)
        if (cur->topics[i] != t)
            next->topics[j++] = cur->topics[i];
    publish(cat, next, (dp_topic_t *)t);
out:
    pthread_mutex_unlock(&cat->lock);
    return rc;
}
