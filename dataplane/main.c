/* SPDX-License-Identifier: Apache-2.0 */
/* weir-dataplane: the store and processor roles, plus `validate` for pipeline
 * specs. Thin: everything it calls lives in dp_core / weir_common. */
#include "dp_config.h"
#include "wc_log.h"
#include "wc_spec.h"

#include <stdio.h>
#include <string.h>

extern char **environ;

/* Exit codes follow sysexits: 64 usage, 65 bad input, 78 configuration. */
enum { EXIT_USAGE = 64, EXIT_DATAERR = 65, EXIT_CONFIG = 78 };

static int cmd_validate(int argc, char **argv)
{
    if (argc != 3) {
        fputs(dp_config_usage, stderr);
        return EXIT_USAGE;
    }
    return wc_spec_validate_cli(argv[2], stdout, stderr);
}

int main(int argc, char **argv)
{
    dp_config_t cfg;
    char err[512];
    int rc;

    wc_log_init_from_env();
    if (argc >= 2 && strcmp(argv[1], "validate") == 0)
        return cmd_validate(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("weir-dataplane %s (pipeline spec v%d)\n", WEIR_VERSION, WC_SPEC_VERSION);
        return 0;
    }

    dp_config_defaults(&cfg);
    rc = dp_config_apply_env(&cfg, environ, err, sizeof(err));
    if (rc == 0)
        rc = dp_config_apply_args(&cfg, argc, argv, err, sizeof(err));
    if (rc == 1) {
        fputs(dp_config_usage, stdout);
        return 0;
    }
    if (rc != 0) {
        wc_log(WC_LOG_ERROR, "dataplane", "bad configuration", "{s:s}", "error", err);
        return EXIT_USAGE;
    }

    switch (cfg.role) {
    case DP_ROLE_STORE:
        wc_log(WC_LOG_ERROR, "dataplane", "the store role is not built yet", "{s:s}", "issue",
               "dataplane store");
        return EXIT_CONFIG;
    case DP_ROLE_PROCESSOR: {
        json_t *spec = NULL;

        if (cfg.spec_path == NULL) {
            wc_log(WC_LOG_ERROR, "dataplane", "the processor role needs --spec or WEIR_SPEC", NULL);
            return EXIT_USAGE;
        }
        if (wc_spec_load_file(cfg.spec_path, &spec, err, sizeof(err)) != 0) {
            wc_log(WC_LOG_ERROR, "dataplane", "invalid pipeline spec", "{s:s}", "error", err);
            return EXIT_DATAERR;
        }
        json_decref(spec);
        wc_log(WC_LOG_ERROR, "dataplane", "the processor runtime is not built yet", NULL);
        return EXIT_CONFIG;
    }
    case DP_ROLE_NONE:
    default:
        fputs(dp_config_usage, stderr);
        return EXIT_USAGE;
    }
}
