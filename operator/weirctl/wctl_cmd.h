/* SPDX-License-Identifier: Apache-2.0 */
/* wctl_cmd: entry points of weirctl's client subcommands (produce, consume,
 * topics, generate), each in its own file (wctl_produce.c, wctl_consume.c,
 * wctl_topics.c, wctl_generate.c), and the dispatcher (wctl_cli.c). Each
 * takes the subcommand's argv (argv[0] is its name) and returns the exit
 * status: 0 ok, 1 failure, 64 usage. */
#ifndef WCTL_CMD_H
#define WCTL_CMD_H

/** `weirctl produce TOPIC`: lines from stdin or a file become records. */
int wctl_produce_main(int argc, char **argv);

/** `weirctl consume TOPIC`: records as JSON lines on stdout. */
int wctl_consume_main(int argc, char **argv);

/** `weirctl topics [list|create|delete]`. */
int wctl_topics_main(int argc, char **argv);

/** `weirctl generate KIND`: sample and Nexmark data into a topic or stdout. */
int wctl_generate_main(int argc, char **argv);

/** `weirctl render DIR|FILE...`: the plan `weirctl run` would execute, as JSON. */
int wctl_render_main(int argc, char **argv);

/** The whole CLI: dispatches on argv[1]. */
int wctl_main(int argc, char **argv);

#endif
