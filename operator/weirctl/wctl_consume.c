/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_consume: `weirctl consume TOPIC`: reads every partition (assigned
 * explicitly, no consumer group, nothing committed) from the beginning or
 * the end and prints one JSON line per record. */
#include "wctl_cmd.h"
#include "wctl_kafka.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: weirctl consume TOPIC [--bootstrap B] [--from beginning|end] [-n COUNT]\n"
    "                             [--timeout SECONDS] [--value-only] [-X PROP=VALUE]...\n"
    "Prints {\"topic\",\"partition\",\"offset\",\"timestamp\",\"key\",\"headers\",\"value\"} per\n"
    "record (value: the JSON value when the record is JSON, else a string).\n"
    "Exit 0 when COUNT records were read (or, without -n, at the timeout or Ctrl-C);\n"
    "1 when the timeout came first.\n";

#define PROPS_MAX 64

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A byte string as JSON: itself when valid UTF-8, else with '?' for bad bytes. */
static json_t *text(const void *p, size_t n)
{
    json_t *v;
    char *copy;

    if (p == NULL)
        return json_null();
    v = json_stringn(p, n);
    if (v != NULL)
        return v;
    copy = malloc(n + 1);
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        copy[i] = ((const unsigned char *)p)[i] < 0x80 && ((const char *)p)[i]
                      ? ((const char *)p)[i]
                      : '?';
    v = json_stringn(copy, n);
    free(copy);
    return v;
}

static void print_record(const rd_kafka_message_t *m, int value_only)
{
    json_t *o, *hdrs, *val = NULL;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    char *s;

    if (value_only) {
        fwrite(m->payload ? m->payload : "", 1, m->payload ? m->len : 0, stdout);
        fputc('\n', stdout);
        return;
    }
    hdrs = json_object();
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *v;
        size_t vl;

        for (size_t i = 0;
             rd_kafka_header_get_all(h, i, &name, &v, &vl) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
            json_object_set_new(hdrs, name, text(v, vl));
    }
    if (m->payload != NULL)
        val = json_loadb(m->payload, m->len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (val == NULL)
        val = text(m->payload, m->len);
    o = json_pack("{s:s, s:i, s:I, s:I, s:o, s:o, s:o}", "topic", rd_kafka_topic_name(m->rkt),
                  "partition", (int)m->partition, "offset", (json_int_t)m->offset, "timestamp",
                  (json_int_t)ts, "key", text(m->key, m->key_len), "headers", hdrs, "value", val);
    s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (s != NULL)
        puts(s);
    free(s);
    json_decref(o);
}

int wctl_consume_main(int argc, char **argv)
{
    static const struct option lo[] = {{"bootstrap", required_argument, NULL, 'b'},
                                       {"from", required_argument, NULL, 'f'},
                                       {"count", required_argument, NULL, 'n'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"value-only", no_argument, NULL, 'v'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *bootstrap = NULL, *topic, *props[PROPS_MAX + 1];
    long long count = -1, got = 0, deadline = 0;
    int from_end = 0, value_only = 0, np = 0, c, rc = 1, parts;
    double timeout_s = 0;
    char bbuf[256], err[512];
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *tp = NULL;
    struct sigaction sa;

    optind = 1;
    while ((c = getopt_long(argc, argv, "b:f:n:t:X:vh", lo, NULL)) != -1) {
        switch (c) {
        case 'b':
            bootstrap = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "beginning") == 0)
                from_end = 0;
            else if (strcmp(optarg, "end") == 0)
                from_end = 1;
            else
                goto usage;
            break;
        case 'n':
            count = atoll(optarg);
            if (count < 0)
                goto usage;
            break;
        case 't':
            timeout_s = atof(optarg);
            if (timeout_s <= 0)
                goto usage;
            break;
        case 'v':
            value_only = 1;
            break;
        case 'X':
            if (np == PROPS_MAX)
                goto usage;
            props[np++] = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            goto usage;
        }
    }
    props[np] = NULL;
    if (optind != argc - 1)
        goto usage;
    topic = argv[optind];
    if (bootstrap == NULL)
        bootstrap = wctl_kafka_default_bootstrap(bbuf, sizeof(bbuf));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (timeout_s > 0)
        deadline = mono_ms() + (long long)(timeout_s * 1000);
    rk = wctl_kafka_new(RD_KAFKA_CONSUMER, bootstrap, props, NULL, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "weirctl consume: %s\n", err);
        return 1;
    }
    if (count == 0) {
        rc = 0;
        goto out;
    }
    /* Wait for the topic (a pipeline may create its output later). */
    for (;;) {
        long long left = deadline ? deadline - mono_ms() : 3600000;

        parts = wctl_kafka_partitions(rk, topic, left > 1000 ? 1000 : (int)(left > 0 ? left : 1));
        if (parts > 0 || interrupted || (deadline && mono_ms() >= deadline))
            break;
    }
    if (parts <= 0) {
        if (!interrupted)
            fprintf(stderr, "weirctl consume: topic %s not found on %s\n", topic, bootstrap);
        rc = interrupted ? 0 : 1;
        goto out;
    }
    tp = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(tp, topic, p)->offset =
            from_end ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, tp) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "weirctl consume: cannot assign %s\n", topic);
        goto out;
    }
    while (!interrupted && (count < 0 || got < count)) {
        rd_kafka_message_t *m;

        if (deadline && mono_ms() >= deadline)
            break;
        m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            print_record(m, value_only);
            got++;
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "weirctl consume: %s\n", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    if (count >= 0 && got < count) {
        fprintf(stderr, "weirctl consume: %lld of %lld records before the %s\n", got, count,
                interrupted ? "interrupt" : "timeout");
        rc = 1;
    } else {
        rc = 0;
    }
out:
    if (tp != NULL)
        rd_kafka_topic_partition_list_destroy(tp);
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return rc;
usage:
    fputs(usage, stderr);
    return 64;
}
