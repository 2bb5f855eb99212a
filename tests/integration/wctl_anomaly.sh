#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `weirctl run examples/anomaly-detection` end to end: a local store, the
# two-stage pipeline (5 s window count per card, then a filter and the Python
# UDF alert formatter on two replicas, each with its own UDF port), fed by
# `weirctl generate cards`. Asserts:
#   - the alerts are exactly the (card, window) pairs with more than 5
#     authorizations, computed from the input topic itself, each once, with
#     the UDF's formatting (severity, ISO window bounds, message);
#   - the topics have the Streams' partition counts;
#   - each replica's UDF got its own port and its spec points at it;
#   - SIGINT stops everything with exit 0.
# Ports 20010-20019: store 20010, UDFs from 20011.
set -euo pipefail
NAME=wctl_anomaly
source "$(dirname "${BASH_SOURCE[0]}")/wctl_common.bash"
readonly PORT=20010 UDF_BASE=20011 COUNT=4000 SEED=42
BOOT="127.0.0.1:$PORT"

pick_python || {
  echo "$NAME: SKIP: no python3 with grpcio (ci/install-deps.sh --build installs python3-grpcio)"
  exit 77
}

start_run "$WORK/run.log" "$EXAMPLE" --state-dir "$WORK/state" --store-port "$PORT" \
  --udf-port-base "$UDF_BASE"
wait_log "$WORK/run.log" '"msg":"running' 30 || fail "weirctl run did not reach running"
wait_log "$WORK/run.log" '"proc":"udf/card-alerts-1/alert-formatter".*udf ready' 30 ||
  fail "the second replica's UDF did not come up"
pass "weirctl run is up"

"$WEIRCTL" topics --bootstrap "$BOOT" >"$WORK/topics.txt"
for tp in card-authorizations:3 card-counts:2 card-alerts:1; do
  grep -qx "${tp%%:*}	${tp##*:}" "$WORK/topics.txt" || fail "topic ${tp%%:*} should have ${tp##*:} partitions: $(cat "$WORK/topics.txt")"
done
pass "topics created with the Streams' partition counts"

for i in 0 1; do
  want=$((UDF_BASE + i))
  ep=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["udfs"][0]["endpoint"])' \
    "$WORK/state/specs/card-alerts-$i.json")
  [[ "$ep" == "127.0.0.1:$want" ]] || fail "replica $i spec endpoint is $ep, not 127.0.0.1:$want"
  grep -q "\"proc\":\"udf/card-alerts-$i/alert-formatter\".*\"port\":$want" "$WORK/run.log" ||
    fail "replica $i UDF is not listening on $want"
  idx=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["replica"]["index"])' \
    "$WORK/state/specs/card-alerts-$i.json")
  [[ "$idx" == "$i" ]] || fail "replica $i spec has replica.index $idx"
done
pass "each replica has its own UDF port, and its spec points at it"

"$WEIRCTL" generate cards --topic card-authorizations --count "$COUNT" --seed "$SEED" \
  --bootstrap "$BOOT" --quiet 2>"$WORK/gen.log" || fail "generate failed: $(cat "$WORK/gen.log")"
grep -q "\"generated\":$COUNT,\"failed\":0" "$WORK/gen.log" || fail "generator summary: $(cat "$WORK/gen.log")"
"$WEIRCTL" consume card-authorizations --bootstrap "$BOOT" -n "$COUNT" --timeout 30 \
  --value-only >"$WORK/input.jsonl" || fail "input not readable"
python3 "$EXAMPLE/expected_alerts.py" <"$WORK/input.jsonl" >"$WORK/expected.jsonl"
n=$(wc -l <"$WORK/expected.jsonl")
((n >= COUNT / 250 - 2)) || fail "only $n anomalies in $COUNT records (the generator makes one per 5 s)"
"$WEIRCTL" consume card-alerts --bootstrap "$BOOT" -n "$n" --timeout 60 --value-only \
  >"$WORK/alerts.jsonl" || fail "$(wc -l <"$WORK/alerts.jsonl") of $n alerts arrived"
sleep 4 # windows still open are released 3 s after the input goes quiet
"$WEIRCTL" consume card-alerts --bootstrap "$BOOT" --timeout 3 --value-only >"$WORK/all.jsonl" || :
python3 "$EXAMPLE/expected_alerts.py" --check "$WORK/all.jsonl" <"$WORK/input.jsonl" ||
  fail "alerts differ from the expected ones"
python3 - "$WORK/all.jsonl" <<'PY' || fail "alert formatting"
import json, sys, datetime
for line in open(sys.argv[1]):
    a = json.loads(line)
    assert a["alert"] == "card-velocity", a
    assert a["severity"] == ("high" if a["authorizations"] >= 8 else "medium"), a
    start = datetime.datetime.fromtimestamp(a["windowStartMs"] / 1000, datetime.timezone.utc)
    assert a["windowStart"] == start.strftime("%Y-%m-%dT%H:%M:%S.000Z"), a
    assert a["message"] == "card %s made %d authorizations in 5 s" % (a["card"], a["authorizations"]), a
PY
pass "$n alerts, exactly the expected ones, formatted by the UDF"

stop_run INT
[[ "$RUN_RC" == 0 ]] || fail "weirctl run exited $RUN_RC after SIGINT"
grep -q '"msg":"stopped"}' "$WORK/run.log" || grep -q '"level":"info","msg":"stopped"' "$WORK/run.log" ||
  fail "no final stopped line"
pass "SIGINT: weirctl run exited 0"
