#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Backpressure: state.maxBytes is 1 MiB. Partition 1 sends one early record
# and then stays silent, so the watermark (the minimum over partitions)
# stays put while partition 0 sends 30000 records with distinct keys: state
# grows to its bound, the engine refuses records, and the processor must
# pause partition 0 while it keeps reading partition 1 (the one the engine
# names). Once partition 1 moves time forward, windows fire, state shrinks,
# partition 0 resumes, and in the end every record is counted exactly once.
# WEIR_STORE_TARGET=kafka runs against Apache Kafka instead of the store.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly KAFKA="$ROOT/tests/harness/kafka.sh"
readonly STORE="$ROOT/tests/harness/store.sh"
readonly KCAT_HARNESS="$ROOT/tests/harness/kcat.sh"
readonly BUILD_DIR="${WEIR_BUILD_DIR:-$ROOT/build}"
readonly BIN="${WEIR_STORE_BIN:-$BUILD_DIR/dataplane/weir-dataplane}"
readonly KCLIENT_BIN="${WEIR_KCLIENT:-$BUILD_DIR/tests/kclient}"
readonly UTIL="$ROOT/tests/integration/proc_util.py"
readonly DATA="$ROOT/tests/data/proc"
readonly TARGET="${WEIR_STORE_TARGET:-weir}"
readonly N=30000 T0=1700000000000
# Fixed ports: store 19460 (Kafka: +1 controller), processor HTTP 19470.
readonly PORT=19460 HTTP_PORT=19470
readonly BOOT="127.0.0.1:$PORT"
readonly TOOL_TIMEOUT=60
readonly IN_TOPIC=proc-bp-in OUT_TOPIC=proc-bp-out

if [[ ! -x "$BIN" ]]; then
  echo "proc_backpressure: SKIP: no weir-dataplane at $BIN (build it, or set WEIR_BUILD_DIR)"
  exit 77
fi
if [[ ! -x "$KCLIENT_BIN" ]]; then
  echo "proc_backpressure: SKIP: no kclient at $KCLIENT_BIN (build the test tools)"
  exit 77
fi
export WEIR_STORE_TARGET="$TARGET"

SMOKE_NAME=proc_backpressure
# shellcheck source=tests/harness/kafka/smoke_lib.sh
source "$ROOT/tests/harness/kafka/smoke_lib.sh" # WORK, check/pass/fail, traps
readonly CLUSTER_DIR="$WORK/cluster"
KCAT_BIN=kcat
PROC_PID=""

bp_cleanup() {
  local rc=$?
  [[ -z "$PROC_PID" ]] || kill -KILL "$PROC_PID" 2>/dev/null || :
  "$STORE" kill "$CLUSTER_DIR" >/dev/null 2>&1 || :
  "$STORE" stop "$CLUSTER_DIR" >/dev/null 2>&1 || :
  (exit "$rc") || smoke_cleanup
  smoke_cleanup
}
trap bp_cleanup EXIT

kcat() { timeout "$TOOL_TIMEOUT" "$KCAT_BIN" -b "$BOOT" "$@"; }
# produce PARTITION FILE: "key|value" lines. The redirection is inside:
# check runs its command in the background, whose stdin is /dev/null.
produce() {
  [[ -s "$2" ]] || return 1
  kcat -P -t "$IN_TOPIC" -p "$1" -K '|' <"$2"
}
metrics() { curl -sf --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics"; }
metric() { metrics | awk -v m="$1" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'; }
records_in() {
  metrics | awk '/^weir_processor_records_in_total\{/ { n += $2 } END { print n + 0 }'
}

# wait_for SECONDS CMD...: until CMD succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  while ((SECONDS < deadline)); do
    "$@" && return 0
    sleep 0.2
  done
  "$@"
}

paused() {
  local p b
  p="$(metric weir_processor_inputs_paused)"
  b="$(metric weir_processor_backpressure_total)"
  echo "inputs_paused=$p backpressure_total=$b records_in=$(records_in)"
  [[ "$p" == 1 && "$b" -gt 0 ]]
}

# While paused, partition 0 stays short of its records: the pause held.
p0_held_back() {
  local n
  n="$(metrics | awk '$1 == "weir_processor_records_in_total{input=\"events\",partition=\"0\"}" { print $2 }')"
  echo "partition 0: $n of $N records consumed"
  ((n < N))
}

all_consumed() {
  local n
  n="$(records_in)"
  echo "records_in=$n of $1"
  [[ "$n" -eq "$1" ]]
}

resumed() {
  [[ "$(metric weir_processor_inputs_paused)" == 0 ]]
}

proc_term() {
  local pid="$PROC_PID" rc=0
  PROC_PID=""
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  [[ "$rc" == 0 ]] || {
    echo "processor exited with status $rc after SIGTERM"
    return 1
  }
}

main() {
  local t0=$SECONDS spec total
  echo "proc_backpressure: target $TARGET on $BOOT, work dir $WORK"
  check "kcat installed" "$KCAT_HARNESS" install
  KCAT_BIN="$("$KCAT_HARNESS" path)"
  [[ "$TARGET" != kafka ]] || check "Kafka installed" "$KAFKA" install
  check "cluster starts" "$STORE" start "$CLUSTER_DIR" "$PORT" 2
  ((failed == 0)) || return 1
  # retention.ms=-1: window results carry event times from 2023, which
  # time-based retention (Kafka's 7 days) would otherwise delete at once.
  check "create topics" bash -c "
    timeout $TOOL_TIMEOUT '$KCLIENT_BIN' create -b '$BOOT' -q -t $IN_TOPIC -p 2 -c retention.ms=-1 &&
    timeout $TOOL_TIMEOUT '$KCLIENT_BIN' create -b '$BOOT' -q -t $OUT_TOPIC -p 2 -c retention.ms=-1"

  # Partition 0: N distinct keys over N ms. Partition 1: one record at T0,
  # later one per second up to past partition 0's end, then both close.
  python3 - "$N" "$T0" "$WORK" <<'PY'
import sys
n, t0, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(f"{work}/p0.txt", "w") as f:
    for i in range(n):
        f.write(f'u{i}|{{"user":"u{i}","ts":{t0 + i},"n":{i % 7 + 1}}}\n')
with open(f"{work}/p1a.txt", "w") as f:
    f.write(f'p1|{{"user":"p1","ts":{t0},"n":1}}\n')
with open(f"{work}/p1b.txt", "w") as f:
    for t in range(1000, n + 1001, 1000):
        f.write(f'p1|{{"user":"p1","ts":{t0 + t},"n":1}}\n')
with open(f"{work}/close.txt", "w") as f:
    f.write(f'close|{{"user":"close","ts":{t0 + n + 10000},"n":0}}\n')
PY
  total=$(($(cat "$WORK/p0.txt" "$WORK/p1a.txt" "$WORK/p1b.txt" | wc -l) + 2))
  cat "$WORK/p0.txt" "$WORK/p1a.txt" "$WORK/p1b.txt" "$WORK/close.txt" |
    python3 "$UTIL" windows 1000 | sort >"$WORK/expected.txt"

  spec="$WORK/spec.json"
  sed -e "s|@BOOTSTRAP@|$BOOT|g" -e "s|@CHECKPOINTS@|$WORK/ckpt|g" "$DATA/backpressure.json" >"$spec"
  "$BIN" --role processor --spec "$spec" --http-port "$HTTP_PORT" </dev/null >"$WORK/proc.log" 2>&1 &
  PROC_PID=$!
  check "processor ready" wait_for 60 curl -sf --max-time 2 "http://127.0.0.1:$HTTP_PORT/readyz"

  check "partition 1: one early record" produce 1 "$WORK/p1a.txt"
  check "partition 1's record consumed first" wait_for 30 all_consumed 1
  check "partition 0: $N records with distinct keys" produce 0 "$WORK/p0.txt"
  check "state reaches 1 MiB: the engine refuses, inputs pause" wait_for 60 paused
  sleep 1
  check "partition 0 is held back while paused" p0_held_back
  check "log names the partition kept running (partition 1)" \
    grep -q '"backpressure: state at its bound.*"partition":1' "$WORK/proc.log"
  check "partition 1 moves time forward" produce 1 "$WORK/p1b.txt"
  check "closing record, partition 0" produce 0 "$WORK/close.txt"
  check "closing record, partition 1" produce 1 "$WORK/close.txt"
  check "every record consumed once backpressure lifts" wait_for 120 all_consumed "$total"
  check "inputs resumed" wait_for 10 resumed
  check "log: backpressure released" grep -q '"backpressure released' "$WORK/proc.log"
  sleep 1
  metrics >"$WORK/metrics.txt" || :
  if proc_term >"$WORK/last.log" 2>&1; then
    pass "SIGTERM, status 0"
  else
    fail "SIGTERM, status 0" "$WORK/last.log"
  fi
  check "results: every record counted exactly once" bash -c "
    timeout $TOOL_TIMEOUT '$KCAT_BIN' -b '$BOOT' -C -t $OUT_TOPIC -o beginning -e -q -f '%k\t%s\n' |
      python3 '$UTIL' results | sort >'$WORK/results.txt' &&
    diff '$WORK/expected.txt' '$WORK/results.txt' >'$WORK/results.diff' ||
      { head -20 '$WORK/results.diff'; wc -l '$WORK/expected.txt' '$WORK/results.txt'; exit 1; }"
  grep -E '^weir_processor_(backpressure_total|state_bytes|records_in_total)' "$WORK/metrics.txt" || :
  check "cluster stops" "$STORE" stop "$CLUSTER_DIR"
  echo "proc_backpressure: wall time $((SECONDS - t0))s"
  ((failed == 0))
}

main "$@"
