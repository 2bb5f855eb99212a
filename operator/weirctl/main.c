/* SPDX-License-Identifier: Apache-2.0 */
/* weirctl: run Weir manifests locally, and talk to streams. Thin: the
 * subcommands live in wctl_core (wctl_cli.c dispatches). */
#include "wctl_cmd.h"

int main(int argc, char **argv)
{
    return wctl_main(argc, argv);
}
