/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_render: `weirctl render DIR|FILE...`: prints the plan `weirctl run`
 * would execute (topics, one pipeline spec per replica, UDF commands) as
 * JSON, without starting anything. */
#include "wctl_cmd.h"
#include "wctl_kafka.h"
#include "wctl_manifest.h"
#include "wctl_plan.h"
#include "wctl_run.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "usage: weirctl render [--store-port P] [--udf-port-base P] DIR|FILE...\n";

int wctl_render_main(int argc, char **argv)
{
    static const struct option lo[] = {{"store-port", required_argument, NULL, 'p'},
                                       {"udf-port-base", required_argument, NULL, 'u'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int store_port = WCTL_DEFAULT_STORE_PORT, base = WCTL_DEFAULT_UDF_PORT_BASE, c, rc = 65;
    wctl_manifest_t m;
    json_t *plan = NULL;
    char err[2048], bootstrap[64];

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'p':
            store_port = atoi(optarg);
            break;
        case 'u':
            base = atoi(optarg);
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 64;
        }
    }
    if (optind >= argc || store_port < 1 || store_port > 65535 || base < 1 || base > 65535) {
        fputs(usage, stderr);
        return 64;
    }
    if (wctl_manifest_init(&m) != 0)
        return 1;
    for (int i = optind; i < argc; i++)
        if (wctl_manifest_add_path(&m, argv[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "weirctl render: %s\n", err);
            goto out;
        }
    snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%d", store_port);
    {
        wctl_plan_opts_t po = {.bootstrap = bootstrap,
                               .udf_port_base = base,
                               .udf_port_max = base + 255 > 65535 ? 65535 : base + 255};

        if (wctl_plan_build(&m, &po, &plan, err, sizeof(err)) != 0) {
            fprintf(stderr, "weirctl render: %s\n", err);
            goto out;
        }
    }
    json_dumpf(plan, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
    fputc('\n', stdout);
    rc = 0;
out:
    json_decref(plan);
    wctl_manifest_dispose(&m);
    return rc;
}
