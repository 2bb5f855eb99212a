/* SPDX-License-Identifier: Apache-2.0 */
/* weirctl: run Weir manifests locally, and talk to streams. Thin: the
 * subcommands live in wctl_core. */
#include "wc_log.h"
#include "wc_spec.h"

#include <stdio.h>
#include <string.h>

static const char usage[] = "usage: weirctl version\n"
                            "       weirctl validate SPEC.json\n";

int main(int argc, char **argv)
{
    wc_log_init_from_env();
    if (argc >= 2 && strcmp(argv[1], "version") == 0) {
        printf("weirctl %s (pipeline spec v%d)\n", WEIR_VERSION, WC_SPEC_VERSION);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "validate") == 0) {
        return wc_spec_validate_cli(argv[2], stdout, stderr);
    }
    fputs(usage, stderr);
    return 64;
}
