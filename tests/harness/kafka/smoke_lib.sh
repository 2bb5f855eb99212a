# SPDX-License-Identifier: Apache-2.0
# Shared helpers for the Kafka/kcat smoke tests (tests/smoke/kafka_smoke.sh,
# tests/smoke/kcat_smoke.sh): pass/fail counting, a bounded cleanup that stops
# the harness broker and this test's own child processes, and the summary line.
# Source it after setting SMOKE_NAME and KAFKA (path to kafka.sh); it sets
# WORK (a fresh temp dir) and BROKER_DIR (the harness instance dir in WORK).
# shellcheck shell=bash

passed=0
failed=0
interrupted=0
WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-$SMOKE_NAME.XXXXXX")"
readonly WORK
readonly BROKER_DIR="$WORK/broker"

# Print the pids whose parent is $1 (plain /proc walk: no procps needed).
smoke_child_pids() {
  local parent="$1" stat line rest ppid pid
  for stat in /proc/[0-9]*/stat; do
    { read -r line <"$stat"; } 2>/dev/null || continue # process already gone
    rest="${line##*) }"                                # fields after "(comm) "
    ppid="${rest#* }"
    ppid="${ppid%% *}"
    if [[ "$ppid" == "$parent" ]]; then
      pid="${stat#/proc/}"
      printf '%s\n' "${pid%/stat}"
    fi
  done
}

# SIGTERM every descendant of pid $1 (not $1 itself), deepest first. Only
# this test's own tool processes (java, kcat) can be below it; the broker is
# not (kafka.sh start detaches it) and is stopped through kafka.sh stop.
smoke_kill_descendants() {
  local pid
  for pid in $(smoke_child_pids "$1"); do
    smoke_kill_descendants "$pid"
    # Failure only means the process exited on its own meanwhile.
    kill -TERM "$pid" 2>/dev/null || :
  done
}

smoke_on_signal() {
  echo "$SMOKE_NAME: interrupted by SIG$1" >&2
  interrupted=1
  exit "$2"
}

# Runs on every exit: stop the tools and the broker, print the summary last.
smoke_cleanup() {
  local rc=$?
  trap - INT TERM HUP
  smoke_kill_descendants "$$"
  if ! "$KAFKA" stop "$BROKER_DIR" 2>/dev/null; then
    echo "$SMOKE_NAME: could not stop the broker in $BROKER_DIR" >&2
    failed=$((failed + 1))
  fi
  if ((rc != 0 || interrupted)) && ((failed == 0)); then
    echo "$SMOKE_NAME: aborted (exit $rc)" >&2
    failed=1
  fi
  if ((failed == 0)); then
    rm -rf "$WORK"
  else
    echo "$SMOKE_NAME: keeping $WORK for inspection" >&2
  fi
  echo "$SMOKE_NAME: $passed passed, $failed failed"
  ((failed == 0)) || exit 1
  exit 0
}

trap smoke_cleanup EXIT
trap 'smoke_on_signal INT 130' INT
trap 'smoke_on_signal TERM 143' TERM
trap 'smoke_on_signal HUP 129' HUP

# ktool SUBCOMMAND ARGS...: a kafka.sh Java tool, bounded in time so that a
# hung client fails the test instead of stalling CI.
ktool() {
  timeout "${WEIR_SMOKE_TOOL_TIMEOUT:-120}" "$KAFKA" "$@"
}

pass() {
  passed=$((passed + 1))
  printf 'ok   %s\n' "$1"
}

fail() {
  failed=$((failed + 1))
  printf 'FAIL %s\n' "$1"
  if [[ -n "${2:-}" && -s "$2" ]]; then
    sed 's/^/     | /' "$2" | tail -n 30
  fi
}

# check NAME CMD...: run CMD with output to $WORK/last.log and count the
# result. CMD runs in the background and is waited for, so that INT/TERM
# interrupt the wait at once and the cleanup can end CMD's processes.
# errexit is off inside CMD (it is tested by `if`): multi-step helpers
# must check each step themselves (`|| return 1`).
check() {
  local name="$1" child
  shift
  "$@" >"$WORK/last.log" 2>&1 &
  child=$!
  if wait "$child"; then
    pass "$name"
  else
    fail "$name" "$WORK/last.log"
  fi
}
