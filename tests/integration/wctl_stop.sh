#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Stopping `weirctl run` leaves nothing behind:
#   1. SIGINT (Ctrl-C): processors are stopped first and write their final
#      checkpoint, then the UDFs, then the store; every child exits 0,
#      weirctl exits 0, and no process it started is left. (While it runs, a
#      second `weirctl run` on the same state directory is refused.)
#   2. weirctl itself killed with SIGKILL: its children get SIGTERM from the
#      kernel (PR_SET_PDEATHSIG) and exit; none is orphaned.
# Ports 20040-20049: store 20040, UDFs from 20041.
set -euo pipefail
NAME=wctl_stop
source "$(dirname "${BASH_SOURCE[0]}")/wctl_common.bash"
readonly PORT=20040 UDF_BASE=20041

pick_python || {
  echo "$NAME: SKIP: no python3 with grpcio"
  exit 77
}

# All descendants of $1 (children, grandchildren).
descendants() {
  local c
  for c in $(children_of "$1"); do
    echo "$c"
    descendants "$c"
  done
}

wait_all_gone() {
  local deadline=$((SECONDS + $1)) p alive
  shift
  while ((SECONDS < deadline)); do
    alive=""
    for p in "$@"; do
      if [[ -d /proc/$p ]] && [[ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]]; then
        alive="$alive $p"
      fi
    done
    [[ -z "$alive" ]] && return 0
    sleep 0.1
  done
  echo "$alive"
  return 1
}

up() {
  start_run "$WORK/run.log" "$EXAMPLE" --state-dir "$WORK/state" --store-port "$PORT" \
    --udf-port-base "$UDF_BASE"
  wait_log "$WORK/run.log" '"msg":"running' 30 || fail "weirctl run did not reach running"
  wait_log "$WORK/run.log" '"proc":"proc/card-alerts-1".*assigned partitions' 30 ||
    fail "card-alerts-1 not assigned"
  wait_log "$WORK/run.log" '"proc":"proc/card-alerts-0".*assigned partitions' 30 ||
    fail "card-alerts-0 not assigned"
}

# 1. SIGINT.
up
rc=0
"$WEIRCTL" run "$EXAMPLE" --state-dir "$WORK/state" --store-port 20049 >"$WORK/second.log" 2>&1 || rc=$?
((rc == 1)) && grep -q "is in use by another weirctl run" "$WORK/second.log" ||
  fail "a second run on the same state directory: exit $rc: $(cat "$WORK/second.log")"
pass "a second weirctl run on the same state directory is refused"
mapfile -t pids < <(descendants "$RUN_PID")
((${#pids[@]} == 6)) || fail "expected 6 children (store, 2 UDFs, 3 processors), found ${#pids[@]}: ${pids[*]}"
stop_run INT
[[ "$RUN_RC" == 0 ]] || fail "weirctl run exited $RUN_RC after SIGINT"
left=$(wait_all_gone 1 "${pids[@]}") || fail "processes left after SIGINT: $left"
for p in card-velocity-0 card-alerts-0 card-alerts-1; do
  grep -q "\"proc\":\"proc/$p\".*\"msg\":\"checkpoint written\".*\"reason\":\"shutdown\"" "$WORK/run.log" ||
    fail "$p wrote no final checkpoint"
  ls "$WORK/state/checkpoints/$p/" | grep -q . || fail "no checkpoint file for $p"
done
n=$(grep -c '"msg":"stopped","child":.*"status":"exit 0"' "$WORK/run.log")
((n == 6)) || fail "$n of 6 children exited 0"
# Processors (tier 2) stop before the UDFs (tier 1), the store last.
order=$(grep -o '"msg":"stopped","child":"[a-z]*' "$WORK/run.log" | sed 's/.*"//' | uniq | tr '\n' ' ')
[[ "$order" == "proc udf store " ]] || fail "stop order was: $order"
pass "SIGINT: 6 children stopped in order (processors, UDFs, store), final checkpoints, exit 0, nothing left"

# 2. SIGKILL of weirctl itself.
mv "$WORK/run.log" "$WORK/run1.log"
up
mapfile -t pids < <(descendants "$RUN_PID")
((${#pids[@]} == 6)) || fail "expected 6 children, found ${#pids[@]}"
kill -KILL "$RUN_PID"
wait "$RUN_PID" 2>/dev/null || :
RUN_PID=""
left=$(wait_all_gone 20 "${pids[@]}") || {
  for p in $left; do kill -KILL "$p" 2>/dev/null || :; done
  fail "orphans after weirctl was killed: $left"
}
pass "SIGKILL of weirctl: all 6 children exited by themselves (parent-death signal)"
