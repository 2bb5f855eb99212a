#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# weirctl's supervisor (docs/internals/weirctl.md):
#   1. A processor replica, a UDF and the store killed with kill -9 are
#      restarted (a logged exit with signal 9, a new pid, backoff), the
#      processor from its checkpoint, the store from its log, and the
#      pipeline keeps producing the alerts of new input
#      (at-least-once: a replay may repeat an alert, none may be missing).
#   2. A UDF command (from --udf-map) that keeps failing makes weirctl give up after
#      --max-restarts fast failures, stop the rest and exit 1.
# Ports 20030-20039: store 20030, UDFs from 20031; part 2: store 20035, UDF 20036.
set -euo pipefail
NAME=wctl_supervise
source "$(dirname "${BASH_SOURCE[0]}")/wctl_common.bash"
readonly PORT=20030 UDF_BASE=20031
BOOT="127.0.0.1:$PORT"

pick_python || {
  echo "$NAME: SKIP: no python3 with grpcio"
  exit 77
}

# pid of child $1 from its latest "started" line.
child_pid() {
  grep "\"msg\":\"started\",\"child\":\"$1\"" "$WORK/run.log" | tail -n 1 |
    sed -E 's/.*"pid":([0-9]+).*/\1/'
}

start_run "$WORK/run.log" "$EXAMPLE" --state-dir "$WORK/state" --store-port "$PORT" \
  --udf-port-base "$UDF_BASE"
wait_log "$WORK/run.log" '"msg":"running' 30 || fail "weirctl run did not reach running"
wait_log "$WORK/run.log" '"proc":"proc/card-alerts-0".*assigned partitions' 30 ||
  fail "card-alerts-0 not assigned"
wait_log "$WORK/run.log" '"proc":"proc/card-velocity-0".*assigned partitions' 30 ||
  fail "card-velocity-0 not assigned"

# First batch, then a checkpoint, so the restart has something to restore.
"$WEIRCTL" generate cards --topic card-authorizations --count 1500 --seed 1 --bootstrap "$BOOT" \
  --quiet 2>/dev/null
wait_log "$WORK/run.log" '"proc":"proc/card-velocity-0".*checkpoint written' 20 ||
  fail "no checkpoint from card-velocity-0"

for victim in proc/card-velocity-0 udf/card-alerts-0/alert-formatter store; do
  old=$(child_pid "$victim")
  [[ -n "$old" ]] && kill -0 "$old" || fail "$victim is not running"
  kill -KILL "$old"
  wait_log "$WORK/run.log" "\"child exited, restarting\",\"child\":\"$victim\",\"pid\":$old,\"status\":\"signal 9" 10 ||
    fail "no restart log line for $victim"
  deadline=$((SECONDS + 15))
  while ((SECONDS < deadline)); do
    new=$(child_pid "$victim")
    [[ "$new" != "$old" ]] && kill -0 "$new" 2>/dev/null && break
    sleep 0.1
  done
  [[ "$new" != "$old" ]] && kill -0 "$new" || fail "$victim was not restarted"
  pass "$victim killed with -9 (pid $old) and restarted (pid $new)"
done
wait_log "$WORK/run.log" '"proc":"proc/card-velocity-0".*checkpoint restored' 15 ||
  fail "the restarted processor did not restore its checkpoint"
wait_log "$WORK/run.log" '"proc":"proc/card-alerts-0".*UDF connected.*' 15 || fail "no UDF connection"
pass "the restarted processor restored its checkpoint"

# Second batch, an hour of event time later: its alerts must all arrive.
"$WEIRCTL" generate cards --topic card-authorizations --count 1500 --seed 2 \
  --start-time 1767229200000 --bootstrap "$BOOT" --quiet 2>/dev/null
"$WEIRCTL" consume card-authorizations --bootstrap "$BOOT" -n 3000 --timeout 30 --value-only \
  >"$WORK/input.jsonl" || fail "input not readable"
python3 "$EXAMPLE/expected_alerts.py" <"$WORK/input.jsonl" >"$WORK/expected.jsonl"
n=$(wc -l <"$WORK/expected.jsonl")
((n > 6)) || fail "too few anomalies ($n) in the input"
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
  "$WEIRCTL" consume card-alerts --bootstrap "$BOOT" --timeout 2 --value-only >"$WORK/alerts.jsonl" || :
  python3 - "$WORK/expected.jsonl" "$WORK/alerts.jsonl" <<'PY' && break
import json, sys
exp = {(a["card"], a["windowStartMs"], a["authorizations"]) for a in map(json.loads, open(sys.argv[1]))}
got = {(a["card"], a["windowStartMs"], a["authorizations"]) for a in map(json.loads, open(sys.argv[2]))}
sys.exit(0 if exp <= got and got <= exp else 1)
PY
  sleep 1
done
python3 - "$WORK/expected.jsonl" "$WORK/alerts.jsonl" <<'PY' || fail "alerts after the restarts"
import json, sys
exp = {(a["card"], a["windowStartMs"], a["authorizations"]) for a in map(json.loads, open(sys.argv[1]))}
got = {(a["card"], a["windowStartMs"], a["authorizations"]) for a in map(json.loads, open(sys.argv[2]))}
print("expected %d, distinct received %d, missing %s, unexpected %s" % (len(exp), len(got), sorted(exp - got), sorted(got - exp)))
sys.exit(0 if exp == got else 1)
PY
pass "every expected alert arrived across the restarts ($n distinct)"
stop_run INT
[[ "$RUN_RC" == 0 ]] || fail "weirctl run exited $RUN_RC after SIGINT"
pass "stopped cleanly after the restarts"

# 2. A UDF that always fails, mapped through --udf-map (which wins over the
# Processor's annotation): give up, exit 1.
cat >"$WORK/udf-map.yaml" <<'YAML'
containers:
  alert-formatter: "${WEIR_PYTHON:-python3} -c 'import sys; sys.exit(3)'"
YAML
mv "$WORK/run.log" "$WORK/run1.log"
t0=$SECONDS
start_run "$WORK/run.log" "$EXAMPLE" --state-dir "$WORK/state2" --store-port 20035 \
  --udf-port-base 20036 --max-restarts 2 --udf-map "$WORK/udf-map.yaml"
rc=0
wait "$RUN_PID" || rc=$?
RUN_PID=""
((rc == 1)) || fail "weirctl run exited $rc with a failing UDF (expected 1)"
grep -q '"msg":"child keeps failing, giving up","child":"udf/card-alerts-[01]/alert-formatter".*"status":"exit 3","failures":3' "$WORK/run.log" ||
  fail "no give-up line"
grep -q '"msg":"stopped: a child failed repeatedly"' "$WORK/run.log" || fail "no final failure line"
grep -q '"msg":"stopped","child":"store".*"status":"exit 0"' "$WORK/run.log" ||
  fail "the store was not stopped cleanly after the give-up"
pass "a UDF failing 3 times in a row: weirctl gave up after $((SECONDS - t0)) s, stopped the rest, exit 1"
