#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: builds Weir and runs the demo on embedded defaults (a local
# store, no cluster, no external broker): examples/anomaly-detection under
# `weirctl run`, fed by `weirctl generate cards`. It prints the alerts (cards
# with more than 5 authorizations in a 5 s event-time window, formatted by a
# Python UDF) and exits 0 only when they are exactly the ones the generated
# input calls for.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/install-deps.sh --build
ci/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo

weirctl=build/operator/weirctl
example=examples/anomaly-detection
port=${WEIR_DEMO_PORT:-20092}
bootstrap=127.0.0.1:$port
count=3000
seed=7
# The UDF needs grpcio: Debian's python3-grpcio, whatever python3 PATH finds.
if [[ -z "${WEIR_PYTHON:-}" ]]; then
  if python3 -c 'import grpc' 2>/dev/null; then WEIR_PYTHON=python3; else WEIR_PYTHON=/usr/bin/python3; fi
fi
export WEIR_PYTHON

state=$(mktemp -d "${TMPDIR:-/tmp}/weir-demo.XXXXXX")
run_pid=
cleanup() {
  if [[ -n "$run_pid" ]] && kill -0 "$run_pid" 2>/dev/null; then
    kill -INT "$run_pid" 2>/dev/null || :
    wait "$run_pid" 2>/dev/null || :
  fi
  rm -rf "$state"
}
trap cleanup EXIT
fail() {
  echo "demo: FAILED: $*" >&2
  echo "---- last 40 lines of the weirctl run log ----" >&2
  tail -n 40 "$state/run.log" >&2 || :
  exit 1
}

echo "== demo: $example (weirctl run, local store on $bootstrap) =="
$weirctl run "$example" --state-dir "$state/weir" --store-port "$port" --human \
  >"$state/run.log" 2>&1 &
run_pid=$!
for _ in $(seq 1 300); do
  grep -q 'running (Ctrl-C stops)' "$state/run.log" && break
  kill -0 "$run_pid" 2>/dev/null || fail "weirctl run exited early"
  sleep 0.1
done
grep -q 'running (Ctrl-C stops)' "$state/run.log" || fail "weirctl run did not start in 30 s"
sed -n 's/.*weirctl *info  \(output .*\)/  \1/p' "$state/run.log"

echo "== generating $count card authorizations (seed $seed) =="
$weirctl generate cards --topic card-authorizations --count "$count" --seed "$seed" \
  --bootstrap "$bootstrap" --quiet
# What the pipeline must find, computed from the input topic itself.
$weirctl consume card-authorizations --bootstrap "$bootstrap" -n "$count" --timeout 20 \
  --value-only >"$state/input.jsonl" || fail "could not read back the input"
python3 "$example/expected_alerts.py" <"$state/input.jsonl" >"$state/expected.jsonl"
n=$(wc -l <"$state/expected.jsonl")
((n > 0)) || fail "the generated input holds no anomaly"

echo "== alerts on topic card-alerts (expecting $n) =="
$weirctl consume card-alerts --bootstrap "$bootstrap" -n "$n" --timeout 40 --value-only \
  >"$state/alerts.jsonl" || fail "only $(wc -l <"$state/alerts.jsonl") of $n alerts arrived"
# A late extra alert would show up within the windows' idle release (3 s).
$weirctl consume card-alerts --bootstrap "$bootstrap" --timeout 4 --value-only \
  >"$state/all-alerts.jsonl" || :
python3 - "$state/all-alerts.jsonl" <<'EOF'
import json, sys
for a in sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda a: a["windowStartMs"]):
    print("  ALERT %-6s %s  %s .. %s  %d authorizations, total %.2f" % (
        a["severity"], a["card"], a["windowStart"], a["windowEnd"][11:], a["authorizations"],
        a["total"]))
EOF
python3 "$example/expected_alerts.py" --check "$state/all-alerts.jsonl" <"$state/input.jsonl" ||
  fail "the alerts are not the expected ones"

kill -INT "$run_pid"
rc=0
wait "$run_pid" || rc=$?
run_pid=
((rc == 0)) || fail "weirctl run exited with $rc after Ctrl-C"
echo "== demo: ok ($n alerts, weirctl run stopped cleanly) =="
