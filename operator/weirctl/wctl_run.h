/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_run: `weirctl run DIR|FILE...`: manifests in, a local store, the
 * processors and their UDF commands out, supervised until Ctrl-C. Design:
 * docs/internals/weirctl.md. */
#ifndef WCTL_RUN_H
#define WCTL_RUN_H

/** Default first UDF port (weirctl's range is 20000-20099; the store takes 20092). */
#define WCTL_DEFAULT_UDF_PORT_BASE 20000
/** Default last UDF port. */
#define WCTL_DEFAULT_UDF_PORT_MAX 20091

/**
 * Runs `weirctl run` with its arguments (argv[0] is "run"). Returns the
 * exit status: 0 stopped cleanly by SIGINT/SIGTERM, 1 a child failed
 * repeatedly or did not stop cleanly, 64 usage, 65 bad manifests, 69 the
 * store did not come up.
 */
int wctl_run_main(int argc, char **argv);

#endif
