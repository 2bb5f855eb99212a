/* SPDX-License-Identifier: Apache-2.0 */
/* weir-operator: reconciles ClusterStream, Stream and Processor resources.
 * Thin: the Kubernetes client, informers and reconcilers live in op_core. */
#include "wc_log.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    wc_log_init_from_env();
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("weir-operator %s\n", WEIR_VERSION);
        return 0;
    }
    wc_log(WC_LOG_ERROR, "operator", "the reconcilers are not built yet", NULL);
    return 78;
}
