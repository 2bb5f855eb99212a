/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_kafka: client handles and topic admin for weirctl (librdkafka). */
#include "wctl_kafka.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *wctl_kafka_default_bootstrap(char *buf, size_t len)
{
    const char *env = getenv("WEIR_BOOTSTRAP");
    const char *dir = getenv("WEIR_STATE_DIR");
    char path[4096];
    json_t *run;

    if (env != NULL && env[0] != '\0') {
        snprintf(buf, len, "%s", env);
        return buf;
    }
    snprintf(path, sizeof(path), "%s/run.json", dir && dir[0] ? dir : WCTL_DEFAULT_STATE_DIR);
    run = json_load_file(path, 0, NULL);
    if (json_string_value(json_object_get(run, "bootstrap")) != NULL) {
        snprintf(buf, len, "%s", json_string_value(json_object_get(run, "bootstrap")));
        json_decref(run);
        return buf;
    }
    json_decref(run);
    snprintf(buf, len, "127.0.0.1:%d", WCTL_DEFAULT_STORE_PORT);
    return buf;
}

static void quiet_logger(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    wctl_kafka_delivery_t *d = opaque;

    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        d->delivered++;
        return;
    }
    if (d->failed < 5)
        fprintf(stderr, "weirctl %s: delivery failed: %s\n", d->cmd, rd_kafka_err2str(m->err));
    d->failed++;
}

rd_kafka_t *wctl_kafka_new(rd_kafka_type_t type, const char *bootstrap, const char *const *props,
                           wctl_kafka_delivery_t *delivery, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *lvl = getenv("WEIR_LOG_LEVEL");
    rd_kafka_t *rk;

    if (conf == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, errlen) != RD_KAFKA_CONF_OK)
        goto fail;
    if (type == RD_KAFKA_CONSUMER &&
        (rd_kafka_conf_set(conf, "group.id", "weirctl", err, errlen) != RD_KAFKA_CONF_OK ||
         rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen) != RD_KAFKA_CONF_OK ||
         rd_kafka_conf_set(conf, "enable.partition.eof", "false", err, errlen) != RD_KAFKA_CONF_OK))
        goto fail;
    if (delivery != NULL) {
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, delivery);
    }
    if (lvl == NULL || strcmp(lvl, "debug") != 0)
        rd_kafka_conf_set_log_cb(conf, quiet_logger);
    for (size_t i = 0; props && props[i]; i++) {
        char key[256];
        const char *eq = strchr(props[i], '=');

        if (eq == NULL || (size_t)(eq - props[i]) >= sizeof(key)) {
            snprintf(err, errlen, "property \"%s\" is not KEY=VALUE", props[i]);
            goto fail;
        }
        memcpy(key, props[i], (size_t)(eq - props[i]));
        key[eq - props[i]] = '\0';
        if (rd_kafka_conf_set(conf, key, eq + 1, err, errlen) != RD_KAFKA_CONF_OK)
            goto fail;
    }
    rk = rd_kafka_new(type, conf, err, errlen);
    if (rk == NULL)
        goto fail;
    return rk;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wctl_kafka_wait_ready(rd_kafka_t *rk, int timeout_ms)
{
    long long deadline = mono_ms() + timeout_ms;

    do {
        const struct rd_kafka_metadata *md = NULL;
        long long left = deadline - mono_ms();

        if (rd_kafka_metadata(rk, 0, NULL, &md, left > 1000 ? 1000 : (int)(left > 0 ? left : 1)) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            int brokers = md->broker_cnt;

            rd_kafka_metadata_destroy(md);
            if (brokers > 0)
                return 0;
        }
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    } while (mono_ms() < deadline);
    return -ETIMEDOUT;
}

int wctl_kafka_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    long long deadline = mono_ms() + timeout_ms;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    int r = -ETIMEDOUT;

    if (t == NULL)
        return -ENOMEM;
    do {
        const struct rd_kafka_metadata *md = NULL;

        if (rd_kafka_metadata(rk, 0, t, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                md->topics[0].partition_cnt > 0) {
                r = md->topics[0].partition_cnt;
                rd_kafka_metadata_destroy(md);
                break;
            }
            r = -ENOENT;
            rd_kafka_metadata_destroy(md);
        }
        if (mono_ms() >= deadline)
            break;
        struct timespec ts = {0, 200 * 1000000};
        nanosleep(&ts, NULL);
    } while (mono_ms() < deadline);
    rd_kafka_topic_destroy(t);
    return r;
}

/* Runs one admin request and returns its result event (or NULL on timeout). */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t type, int timeout_ms)
{
    long long deadline = mono_ms() + timeout_ms + 1000;

    while (mono_ms() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 500);

        if (ev == NULL)
            continue;
        if (rd_kafka_event_type(ev) == type)
            return ev;
        rd_kafka_event_destroy(ev);
    }
    return NULL;
}

int wctl_kafka_create_topics(rd_kafka_t *rk, const json_t *topics, int timeout_ms, char *err,
                             size_t errlen)
{
    size_t n = json_array_size(topics), i;
    rd_kafka_NewTopic_t **nt = calloc(n ? n : 1, sizeof(*nt));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_event_t *ev = NULL;
    const json_t *t;
    char e[512];
    int r = 0;

    err[0] = '\0';
    if (nt == NULL || q == NULL || ao == NULL) {
        r = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (n == 0)
        goto out;
    rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, e, sizeof(e));
    rd_kafka_AdminOptions_set_request_timeout(ao, timeout_ms, e, sizeof(e));
    json_array_foreach (topics, i, t) {
        const char *key;
        json_t *v;

        nt[i] = rd_kafka_NewTopic_new(json_string_value(json_object_get(t, "topic")),
                                      (int)json_integer_value(json_object_get(t, "partitions")), -1,
                                      e, sizeof(e));
        if (nt[i] == NULL) {
            snprintf(err, errlen, "topic %s: %s", json_string_value(json_object_get(t, "topic")),
                     e);
            r = -EINVAL;
            goto out;
        }
        json_object_foreach (json_object_get(t, "config"), key, v)
            rd_kafka_NewTopic_set_config(nt[i], key, json_string_value(v));
    }
    rd_kafka_CreateTopics(rk, nt, n, ao, q);
    ev = admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, timeout_ms);
    if (ev == NULL) {
        snprintf(err, errlen, "CreateTopics timed out after %d ms", timeout_ms);
        r = -ETIMEDOUT;
        goto out;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "CreateTopics: %s", rd_kafka_event_error_string(ev));
        r = -EIO;
        goto out;
    }
    {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t cnt;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);

        for (i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t te = rd_kafka_topic_result_error(tr[i]);

            if (te == RD_KAFKA_RESP_ERR_NO_ERROR || te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                continue;
            snprintf(err, errlen, "topic %s: %s", rd_kafka_topic_result_name(tr[i]),
                     rd_kafka_topic_result_error_string(tr[i])
                         ? rd_kafka_topic_result_error_string(tr[i])
                         : rd_kafka_err2str(te));
            r = -EIO;
        }
    }
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    for (i = 0; nt && i < n; i++)
        if (nt[i] != NULL)
            rd_kafka_NewTopic_destroy(nt[i]);
    free(nt);
    if (ao != NULL)
        rd_kafka_AdminOptions_destroy(ao);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    return r;
}

int wctl_kafka_delete_topics(rd_kafka_t *rk, const char *const *names, size_t n, int timeout_ms,
                             char *err, size_t errlen)
{
    rd_kafka_DeleteTopic_t **dt = calloc(n ? n : 1, sizeof(*dt));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_event_t *ev = NULL;
    char e[256];
    int r = 0;
    size_t i;

    err[0] = '\0';
    if (dt == NULL || q == NULL || ao == NULL) {
        r = -ENOMEM;
        goto out;
    }
    rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, e, sizeof(e));
    for (i = 0; i < n; i++)
        dt[i] = rd_kafka_DeleteTopic_new(names[i]);
    rd_kafka_DeleteTopics(rk, dt, n, ao, q);
    ev = admin_wait(q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, timeout_ms);
    if (ev == NULL) {
        snprintf(err, errlen, "DeleteTopics timed out after %d ms", timeout_ms);
        r = -ETIMEDOUT;
        goto out;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "DeleteTopics: %s", rd_kafka_event_error_string(ev));
        r = -EIO;
        goto out;
    }
    {
        size_t cnt;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);

        for (i = 0; i < cnt; i++)
            if (rd_kafka_topic_result_error(tr[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                snprintf(err, errlen, "topic %s: %s", rd_kafka_topic_result_name(tr[i]),
                         rd_kafka_err2str(rd_kafka_topic_result_error(tr[i])));
                r = -EIO;
            }
    }
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    for (i = 0; dt && i < n; i++)
        if (dt[i] != NULL)
            rd_kafka_DeleteTopic_destroy(dt[i]);
    free(dt);
    if (ao != NULL)
        rd_kafka_AdminOptions_destroy(ao);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    return r;
}

static int cmp_topic(const void *a, const void *b)
{
    return strcmp(((const struct rd_kafka_metadata_topic *)a)->topic,
                  ((const struct rd_kafka_metadata_topic *)b)->topic);
}

json_t *wctl_kafka_list_topics(rd_kafka_t *rk, int timeout_ms, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    struct rd_kafka_metadata_topic *ts;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    json_t *out;

    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "Metadata: %s", rd_kafka_err2str(e));
        return NULL;
    }
    out = json_array();
    ts = malloc(sizeof(*ts) * (md->topic_cnt ? (size_t)md->topic_cnt : 1));
    if (out == NULL || ts == NULL) {
        json_decref(out);
        free(ts);
        rd_kafka_metadata_destroy(md);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(ts, md->topics, sizeof(*ts) * (size_t)md->topic_cnt);
    qsort(ts, (size_t)md->topic_cnt, sizeof(*ts), cmp_topic);
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strncmp(ts[i].topic, "__", 2) == 0)
            continue;
        json_array_append_new(
            out, json_pack("{s:s, s:i}", "topic", ts[i].topic, "partitions", ts[i].partition_cnt));
    }
    free(ts);
    rd_kafka_metadata_destroy(md);
    return out;
}
