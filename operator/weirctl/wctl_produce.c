/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_produce: `weirctl produce TOPIC`: each input line becomes one record
 * (optionally KEY<sep>VALUE, with static headers), acks=all, idempotent. */
#include "wctl_cmd.h"
#include "wctl_kafka.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: weirctl produce TOPIC [--bootstrap B] [--file FILE] [--key-separator SEP]\n"
    "                             [--header NAME=VALUE]... [--partition N] [-X PROP=VALUE]...\n"
    "Each line of stdin (or FILE) becomes one record. With --key-separator, the text\n"
    "before the first SEP is the key. Prints {\"produced\", \"failed\"} to stderr.\n";

#define HEADERS_MAX 64
#define PROPS_MAX 64

static wctl_kafka_delivery_t dlv = {.cmd = "produce"};

int wctl_produce_main(int argc, char **argv)
{
    static const struct option lo[] = {{"bootstrap", required_argument, NULL, 'b'},
                                       {"file", required_argument, NULL, 'f'},
                                       {"key-separator", required_argument, NULL, 'K'},
                                       {"header", required_argument, NULL, 'H'},
                                       {"partition", required_argument, NULL, 'p'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *bootstrap = NULL, *file = NULL, *sep = NULL, *topic;
    const char *headers[HEADERS_MAX], *props[PROPS_MAX + 8];
    int nh = 0, np = 0, partition = RD_KAFKA_PARTITION_UA, c, rc = 1;
    char bbuf[256], err[512];
    rd_kafka_t *rk = NULL;
    FILE *in = stdin;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long long lines = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "b:f:K:H:p:X:h", lo, NULL)) != -1) {
        switch (c) {
        case 'b':
            bootstrap = optarg;
            break;
        case 'f':
            file = optarg;
            break;
        case 'K':
            if (optarg[0] == '\0')
                goto usage;
            sep = optarg;
            break;
        case 'H':
            if (nh == HEADERS_MAX || strchr(optarg, '=') == NULL)
                goto usage;
            headers[nh++] = optarg;
            break;
        case 'p':
            partition = atoi(optarg);
            if (partition < 0)
                goto usage;
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
    if (optind != argc - 1)
        goto usage;
    topic = argv[optind];
    if (bootstrap == NULL)
        bootstrap = wctl_kafka_default_bootstrap(bbuf, sizeof(bbuf));
    props[np++] = "acks=all";
    props[np++] = "enable.idempotence=true";
    props[np++] = "linger.ms=5";
    props[np] = NULL;
    /* weirctl's defaults first, the user's -X after them so they win. */
    {
        const char *ordered[PROPS_MAX + 8];
        int k = 0;

        for (int i = np - 3; i < np; i++)
            ordered[k++] = props[i];
        for (int i = 0; i < np - 3; i++)
            ordered[k++] = props[i];
        ordered[k] = NULL;
        rk = wctl_kafka_new(RD_KAFKA_PRODUCER, bootstrap, ordered, &dlv, err, sizeof(err));
    }
    if (rk == NULL) {
        fprintf(stderr, "weirctl produce: %s\n", err);
        return 1;
    }
    if (file != NULL && (in = fopen(file, "r")) == NULL) {
        fprintf(stderr, "weirctl produce: %s: %s\n", file, strerror(errno));
        goto out;
    }
    while ((len = getline(&line, &cap, in)) >= 0) {
        const char *key = NULL, *val = line;
        size_t klen = 0, vlen;
        rd_kafka_headers_t *hdrs = NULL;
        rd_kafka_resp_err_t e;

        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        vlen = (size_t)len;
        if (sep != NULL) {
            char *s = memmem(line, (size_t)len, sep, strlen(sep));

            if (s != NULL) {
                key = line;
                klen = (size_t)(s - line);
                val = s + strlen(sep);
                vlen = (size_t)len - klen - strlen(sep);
            }
        }
        if (nh > 0) {
            hdrs = rd_kafka_headers_new((size_t)nh);
            for (int i = 0; i < nh; i++) {
                const char *eq = strchr(headers[i], '=');

                rd_kafka_header_add(hdrs, headers[i], eq - headers[i], eq + 1, -1);
            }
        }
        for (;;) {
            if (hdrs != NULL)
                e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                      RD_KAFKA_V_KEY(key, klen),
                                      RD_KAFKA_V_VALUE((void *)val, vlen),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
            else
                e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                      RD_KAFKA_V_KEY(key, klen),
                                      RD_KAFKA_V_VALUE((void *)val, vlen),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(rk, 50);
        }
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (hdrs != NULL)
                rd_kafka_headers_destroy(hdrs);
            fprintf(stderr, "weirctl produce: line %lld: %s\n", lines + 1, rd_kafka_err2str(e));
            dlv.failed++;
        }
        lines++;
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "weirctl produce: %d records not delivered within 30 s\n",
                rd_kafka_outq_len(rk));
        dlv.failed += rd_kafka_outq_len(rk);
    }
    fprintf(stderr, "{\"topic\":\"%s\",\"produced\":%lld,\"failed\":%lld}\n", topic, dlv.delivered,
            dlv.failed);
    rc = dlv.failed == 0 ? 0 : 1;
out:
    free(line);
    if (in != NULL && in != stdin)
        fclose(in);
    rd_kafka_destroy(rk);
    return rc;
usage:
    fputs(usage, stderr);
    return 64;
}
