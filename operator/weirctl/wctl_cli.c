/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_cli: weirctl's subcommand dispatcher (main.c only calls wctl_main). */
#include "wctl_cmd.h"
#include "wctl_run.h"

#include "wc_log.h"
#include "wc_spec.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: weirctl COMMAND [ARGS]\n"
    "  run DIR|FILE...        run Weir manifests locally (store, processors, UDFs)\n"
    "  render DIR|FILE...     print what `run` would start (pipeline specs, topics)\n"
    "  produce TOPIC          lines from stdin -> records\n"
    "  consume TOPIC          records -> JSON lines\n"
    "  topics [list|create|delete]\n"
    "  generate KIND          nexmark, cards, users, clicks, iot, scores\n"
    "  validate SPEC.json     check a pipeline spec\n"
    "  version\n"
    "Run `weirctl COMMAND --help` for a command's options.\n";

int wctl_main(int argc, char **argv)
{
    const char *cmd = argc >= 2 ? argv[1] : "";

    wc_log_init_from_env();
    if (strcmp(cmd, "version") == 0) {
        printf("weirctl %s (pipeline spec v%d)\n", WEIR_VERSION, WC_SPEC_VERSION);
        return 0;
    }
    if (strcmp(cmd, "validate") == 0 && argc == 3)
        return wc_spec_validate_cli(argv[2], stdout, stderr);
    if (strcmp(cmd, "run") == 0)
        return wctl_run_main(argc - 1, argv + 1);
    if (strcmp(cmd, "render") == 0)
        return wctl_render_main(argc - 1, argv + 1);
    if (strcmp(cmd, "produce") == 0)
        return wctl_produce_main(argc - 1, argv + 1);
    if (strcmp(cmd, "consume") == 0)
        return wctl_consume_main(argc - 1, argv + 1);
    if (strcmp(cmd, "topics") == 0)
        return wctl_topics_main(argc - 1, argv + 1);
    if (strcmp(cmd, "generate") == 0)
        return wctl_generate_main(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    fputs(usage, stderr);
    return 64;
}
