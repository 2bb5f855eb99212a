/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_topics: `weirctl topics list|create|delete` through librdkafka's
 * Admin API, against the Weir store or any Kafka cluster. */
#include "wctl_cmd.h"
#include "wctl_kafka.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: weirctl topics [list] [--bootstrap B] [--json]\n"
    "       weirctl topics create NAME... [--partitions N] [--config KEY=VALUE]... [--bootstrap "
    "B]\n"
    "       weirctl topics delete NAME... [--bootstrap B]\n"
    "Default bootstrap: $WEIR_BOOTSTRAP, else the running `weirctl run`'s store, else\n"
    "127.0.0.1:20092.\n";

#define CONFIGS_MAX 32

int wctl_topics_main(int argc, char **argv)
{
    static const struct option lo[] = {{"bootstrap", required_argument, NULL, 'b'},
                                       {"partitions", required_argument, NULL, 'p'},
                                       {"config", required_argument, NULL, 'c'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    char bbuf[256], err[1024];
    const char *bootstrap = NULL, *sub = "list";
    const char *configs[CONFIGS_MAX];
    int nconf = 0, partitions = 1, json_out = 0, timeout_ms = 10000, c, rc = 1;
    rd_kafka_t *rk = NULL;
    json_t *list = NULL;

    optind = 1;
    while ((c = getopt_long(argc, argv, "b:p:c:h", lo, NULL)) != -1) {
        switch (c) {
        case 'b':
            bootstrap = optarg;
            break;
        case 'p':
            partitions = atoi(optarg);
            if (partitions < 1 || partitions > 65536)
                goto usage;
            break;
        case 'c':
            if (nconf == CONFIGS_MAX || strchr(optarg, '=') == NULL)
                goto usage;
            configs[nconf++] = optarg;
            break;
        case 'j':
            json_out = 1;
            break;
        case 't':
            timeout_ms = atoi(optarg) * 1000;
            if (timeout_ms <= 0)
                goto usage;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            goto usage;
        }
    }
    if (optind < argc)
        sub = argv[optind++];
    if (bootstrap == NULL)
        bootstrap = wctl_kafka_default_bootstrap(bbuf, sizeof(bbuf));
    if (strcmp(sub, "list") != 0 && strcmp(sub, "create") != 0 && strcmp(sub, "delete") != 0)
        goto usage;
    if (strcmp(sub, "list") != 0 && optind >= argc)
        goto usage;
    rk = wctl_kafka_new(RD_KAFKA_PRODUCER, bootstrap, NULL, NULL, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "weirctl topics: %s\n", err);
        return 1;
    }
    if (wctl_kafka_wait_ready(rk, timeout_ms) != 0) {
        fprintf(stderr, "weirctl topics: no answer from %s within %d s\n", bootstrap,
                timeout_ms / 1000);
        goto out;
    }
    if (strcmp(sub, "list") == 0) {
        size_t i;
        json_t *t;

        list = wctl_kafka_list_topics(rk, timeout_ms, err, sizeof(err));
        if (list == NULL) {
            fprintf(stderr, "weirctl topics: %s\n", err);
            goto out;
        }
        json_array_foreach (list, i, t) {
            if (json_out) {
                char *s = json_dumps(t, JSON_COMPACT | JSON_PRESERVE_ORDER);

                if (s != NULL)
                    puts(s);
                free(s);
            } else {
                printf("%s\t%d\n", json_string_value(json_object_get(t, "topic")),
                       (int)json_integer_value(json_object_get(t, "partitions")));
            }
        }
        rc = 0;
    } else if (strcmp(sub, "create") == 0) {
        json_t *cfg = json_object();

        list = json_array();
        for (int i = 0; i < nconf; i++) {
            const char *eq = strchr(configs[i], '=');
            char key[256];

            snprintf(key, sizeof(key), "%.*s", (int)(eq - configs[i]), configs[i]);
            json_object_set_new(cfg, key, json_string(eq + 1));
        }
        for (int i = optind; i < argc; i++)
            json_array_append_new(list, json_pack("{s:s, s:i, s:O}", "topic", argv[i], "partitions",
                                                  partitions, "config", cfg));
        json_decref(cfg);
        if (wctl_kafka_create_topics(rk, list, timeout_ms, err, sizeof(err)) != 0) {
            fprintf(stderr, "weirctl topics create: %s\n", err);
            goto out;
        }
        for (int i = optind; i < argc; i++)
            fprintf(stderr, "created %s (%d partitions) on %s\n", argv[i], partitions, bootstrap);
        rc = 0;
    } else {
        if (wctl_kafka_delete_topics(rk, (const char *const *)argv + optind,
                                     (size_t)(argc - optind), timeout_ms, err, sizeof(err)) != 0) {
            fprintf(stderr, "weirctl topics delete: %s\n", err);
            goto out;
        }
        for (int i = optind; i < argc; i++)
            fprintf(stderr, "deleted %s on %s\n", argv[i], bootstrap);
        rc = 0;
    }
out:
    json_decref(list);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    return rc;
usage:
    fputs(usage, stderr);
    return 64;
}
