#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The processor end to end: a tumbling-window count over 2 input partitions
# with out-of-order and late records, a late side output and a dead-letter
# topic, run once against the Weir store and once against Apache Kafka.
# Both runs must give exactly tests/data/proc/windows.expected (and the
# same late and dead-letter records), outputs must sit in the partition
# Kafka's own partitioner picks, and the checkpoint must make a restart
# emit nothing twice and refuse a changed spec.
# WEIR_PROC_TARGETS="weir kafka" (default) picks the clusters to run against.
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
readonly TARGETS="${WEIR_PROC_TARGETS:-weir kafka}"
# Fixed ports (19400-19499 belong to the proc_* tests): store 19400, Kafka
# 19410 (+1 controller), processor HTTP 19420.
readonly WEIR_PORT=19400 KAFKA_PORT=19410 HTTP_PORT=19420
readonly TOOL_TIMEOUT=60
readonly IN_TOPIC=proc-clicks OUT_TOPIC=proc-counts LATE_TOPIC=proc-late DLQ_TOPIC=proc-dlq

if [[ ! -x "$BIN" ]]; then
  echo "proc_windows: SKIP: no weir-dataplane at $BIN (build it, or set WEIR_BUILD_DIR)"
  exit 77
fi
if [[ ! -x "$KCLIENT_BIN" ]]; then
  echo "proc_windows: SKIP: no kclient at $KCLIENT_BIN (build the test tools)"
  exit 77
fi

SMOKE_NAME=proc_windows
# shellcheck source=tests/harness/kafka/smoke_lib.sh
source "$ROOT/tests/harness/kafka/smoke_lib.sh" # WORK, check/pass/fail, traps
KCAT_BIN=kcat
PROC_PID=""

proc_cleanup() {
  local rc=$?
  if [[ -n "$PROC_PID" ]]; then
    kill -KILL "$PROC_PID" 2>/dev/null || :
  fi
  "$STORE" kill "$WORK/weir" >/dev/null 2>&1 || :
  "$STORE" stop "$WORK/kafka" >/dev/null 2>&1 || :
  (exit "$rc") || smoke_cleanup
  smoke_cleanup
}
trap proc_cleanup EXIT

kcat() { timeout "$TOOL_TIMEOUT" "$KCAT_BIN" -b "$BOOT" "$@"; }

metrics() { curl -sf --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics"; }

# records_in: the sum of weir_processor_records_in_total over partitions.
records_in() {
  metrics | awk '/^weir_processor_records_in_total\{/ { n += $2 } END { print n + 0 }'
}

# wait_records N: the running processor has consumed N records (30 s).
wait_records() {
  local deadline=$((SECONDS + 30)) n=0
  while ((SECONDS < deadline)); do
    n="$(records_in 2>/dev/null || echo 0)"
    ((n >= $1)) && return 0
    sleep 0.1
  done
  echo "processor consumed $n records, expected $1"
  return 1
}

# proc_spawn SPEC LOG: starts the processor in the background.
proc_spawn() {
  "$BIN" --role processor --spec "$1" --http-port "$HTTP_PORT" </dev/null >>"$2" 2>&1 &
  PROC_PID=$!
}

# proc_ready LOG: waits for /readyz (90 s); fails if the processor exits.
proc_ready() {
  local deadline=$((SECONDS + 90))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$PROC_PID" 2>/dev/null; then
      wait "$PROC_PID" || echo "processor exited with status $?"
      PROC_PID=""
      tail -n 20 "$1"
      return 1
    fi
    curl -sf --max-time 2 "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "processor not ready after 90 s"
  tail -n 20 "$1"
  return 1
}

# proc_start SPEC LOG: starts the processor, waits for /readyz.
proc_start() {
  proc_spawn "$1" "$2"
  proc_ready "$2"
}

# wait_log FILE REGEX: until a line of FILE matches (30 s).
wait_log() {
  local deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no line matching $2 in $1"
  return 1
}

# proc_stop: SIGTERM, which must give exit status 0 within 60 s.
proc_stop() {
  local pid="$PROC_PID" rc=0
  PROC_PID=""
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  [[ "$rc" == 0 ]] || {
    echo "processor exited with status $rc after SIGTERM"
    return 1
  }
}

# produce_phase N: the records of phase N (key|value per partition).
produce_phase() {
  local p
  for p in 0 1; do
    awk -v ph="$1" -v p="$p" '$1 == ph && $2 == p { sub(/^[0-9]+ [0-9]+ /, ""); print }' \
      "$DATA/windows.records" >"$WORK/phase$1-p$p.txt"
    [[ -s "$WORK/phase$1-p$p.txt" ]] || continue
    kcat -P -t "$IN_TOPIC" -p "$p" -K '|' <"$WORK/phase$1-p$p.txt" || return 1
  done
}

phase_count() {
  awk -v ph="$1" '$1 ~ /^[0-9]+$/ && $1 <= ph' "$DATA/windows.records" | wc -l
}

render_spec() {
  sed -e "s|@BOOTSTRAP@|$BOOT|g" -e "s|@CHECKPOINTS@|$2|g" "$DATA/windows.json" >"$1"
}

# run_target weir|kafka: one complete run; results in $WORK/<target>/.
run_target() {
  local target="$1" port dir out spec
  if [[ "$target" == weir ]]; then port=$WEIR_PORT; else port=$KAFKA_PORT; fi
  BOOT="127.0.0.1:$port"
  dir="$WORK/$target"
  out="$dir/out"
  spec="$dir/spec.json"
  mkdir -p "$out"
  echo "-- $target on $BOOT"
  check "$target: cluster starts" env WEIR_STORE_TARGET="$target" "$STORE" start "$dir" "$port" 2
  ((failed == 0)) || return 1
  # retention.ms=-1: window results carry event times from 2023, which
  # time-based retention (Kafka's 7 days) would otherwise delete at once.
  check "$target: create $OUT_TOPIC (3 partitions)" \
    timeout "$TOOL_TIMEOUT" "$KCLIENT_BIN" create -b "$BOOT" -q -t "$OUT_TOPIC" -p 3 -c retention.ms=-1
  check "$target: create $LATE_TOPIC, $DLQ_TOPIC" bash -c "
    timeout $TOOL_TIMEOUT '$KCLIENT_BIN' create -b '$BOOT' -q -t '$LATE_TOPIC' -p 1 -c retention.ms=-1 &&
    timeout $TOOL_TIMEOUT '$KCLIENT_BIN' create -b '$BOOT' -q -t '$DLQ_TOPIC' -p 1 -c retention.ms=-1"
  render_spec "$spec" "$dir/checkpoints"

  # The input topic does not exist yet: the processor waits for it.
  proc_spawn "$spec" "$dir/proc.log"
  check "$target: processor waits for the missing input topic, not ready meanwhile" \
    bash -c "$(declare -f wait_log); wait_log '$dir/proc.log' '\"waiting for topic\".*\"topic\":\"$IN_TOPIC\"' &&
      ! curl -sf --max-time 2 http://127.0.0.1:$HTTP_PORT/readyz"
  check "$target: create $IN_TOPIC (2 partitions)" \
    timeout "$TOOL_TIMEOUT" "$KCLIENT_BIN" create -b "$BOOT" -q -t "$IN_TOPIC" -p 2 -c retention.ms=-1
  if proc_ready "$dir/proc.log" >"$WORK/last.log" 2>&1; then
    pass "$target: processor starts and assigns its inputs (/readyz)"
  else
    fail "$target: processor starts and assigns its inputs (/readyz)" "$WORK/last.log"
    return 1
  fi
  check "$target: phase 1 (in-order and out-of-order records) produced" produce_phase 1
  check "$target: phase 1 consumed" wait_records "$(phase_count 1)"
  check "$target: phase 2 (late records, a non-JSON record) produced" produce_phase 2
  check "$target: phase 2 consumed (processing continued after the bad record)" \
    wait_records "$(phase_count 2)"
  check "$target: phase 3 (closing records) produced" produce_phase 3
  check "$target: phase 3 consumed" wait_records "$(phase_count 3)"
  # Window results are produced as soon as they fire; give deliveries a moment.
  sleep 1
  metrics >"$dir/metrics.txt" || :
  check "$target: metrics: records per partition, 1 dead letter, 2 late side outputs" \
    metrics_ok "$dir/metrics.txt"
  checked_stop "$target: SIGTERM stops the processor with status 0"
  check "$target: final checkpoint written and logged" grep -q '"checkpoint written".*"reason":"shutdown"' \
    "$dir/proc.log"

  check "$target: window results = windows.expected" read_results "$out"
  check "$target: results sit in Kafka's default partition for their key" partitions_ok "$out"
  check "$target: late records went to the side output only" read_late "$out"
  check "$target: the non-JSON record is in the DLQ with weir.* headers" read_dlq "$out"

  # Restart on the final checkpoint: nothing is read or emitted again.
  if proc_start "$spec" "$dir/proc.log" >"$WORK/last.log" 2>&1; then
    pass "$target: restart restores the checkpoint"
  else
    fail "$target: restart restores the checkpoint" "$WORK/last.log"
  fi
  sleep 2
  check "$target: restart read nothing again" test "$(records_in)" -eq 0
  [[ -z "$PROC_PID" ]] || checked_stop "$target: second SIGTERM, status 0"
  check "$target: restart logged the restored checkpoint id" \
    grep -q '"checkpoint restored"' "$dir/proc.log"
  check "$target: still exactly windows.expected after the restart" read_results "$out"

  # A changed spec must not load the old state.
  sed -e 's/"sizeMs": 10000/"sizeMs": 20000/' "$spec" >"$dir/changed.json"
  check "$target: a changed spec refuses the checkpoint (exit 65, clear message)" \
    changed_spec_refused "$dir/changed.json" "$dir/changed.log"

  check "$target: cluster stops" "$STORE" stop "$dir"
}

# proc_stop runs in this shell (the processor is its child), not under check.
checked_stop() {
  if proc_stop >"$WORK/last.log" 2>&1; then
    pass "$1"
  else
    fail "$1" "$WORK/last.log"
  fi
}

metrics_ok() {
  local f="$1"
  grep -q '^weir_processor_records_in_total{input="clicks",partition="0"} 13$' "$f" &&
    grep -q '^weir_processor_records_in_total{input="clicks",partition="1"} 10$' "$f" &&
    grep -q '^weir_processor_dead_letters_total 1$' "$f" &&
    grep -q '^weir_processor_late_records_total{action="side_output"} 2$' "$f" &&
    grep -q '^weir_processor_records_out_total{output="counts"} 9$' "$f" &&
    grep -q '^weir_processor_records_out_total{output="deadLetter"} 1$' "$f" &&
    grep -q '^weir_processor_checkpoints_total [1-9]' "$f" || {
    grep '^weir_processor' "$f"
    return 1
  }
}

read_results() {
  local out="$1"
  kcat -C -t "$OUT_TOPIC" -o beginning -e -q -f '%p %k\t%s\n' >"$out/counts.raw" || return 1
  cut -d' ' -f2- "$out/counts.raw" | python3 "$UTIL" results | tr ' ' '\t' | sort \
    >"$out/counts.txt" || return 1
  diff "$DATA/windows.expected" "$out/counts.txt"
}

partitions_ok() {
  awk -F'\t' '{ split($1, a, " "); print a[1], a[2] }' "$1/counts.raw" |
    python3 "$UTIL" murmur2-check 3
}

read_late() {
  kcat -C -t "$LATE_TOPIC" -o beginning -e -q -f '%k\t%s\n' | sort >"$1/late.txt" || return 1
  diff "$DATA/windows.late.expected" "$1/late.txt" || return 1
  # Never on the main output.
  ! grep -q '"n":100\|"n":200' "$1/counts.raw"
}

read_dlq() {
  kcat -C -t "$DLQ_TOPIC" -o beginning -e -q -f '%k\t%s\t%h\n' >"$1/dlq.txt" || return 1
  cat "$1/dlq.txt"
  [[ "$(wc -l <"$1/dlq.txt")" -eq 1 ]] || return 1
  grep -q '^mallory	this is not json	' "$1/dlq.txt" &&
    grep -q 'weir\.error=.' "$1/dlq.txt" &&
    grep -q 'weir\.source\.topic=proc-clicks' "$1/dlq.txt" &&
    grep -q 'weir\.source\.partition=0' "$1/dlq.txt" &&
    grep -q 'weir\.source\.offset=10' "$1/dlq.txt"
}

changed_spec_refused() {
  local rc=0
  timeout 60 "$BIN" --role processor --spec "$1" --http-port 0 >"$2" 2>&1 || rc=$?
  cat "$2"
  [[ "$rc" == 65 ]] && grep -q 'different pipeline spec' "$2"
}

main() {
  local t0=$SECONDS t
  echo "proc_windows: targets: $TARGETS, work dir $WORK"
  check "kcat installed" "$KCAT_HARNESS" install
  KCAT_BIN="$("$KCAT_HARNESS" path)"
  if [[ " $TARGETS " == *" kafka "* ]]; then
    check "Kafka installed" "$KAFKA" install
  fi
  ((failed == 0)) || return 1
  for t in $TARGETS; do
    run_target "$t" || :
  done
  if [[ " $TARGETS " == *" weir "* && " $TARGETS " == *" kafka "* ]]; then
    check "Weir store and Kafka: identical window results" \
      diff "$WORK/weir/out/counts.txt" "$WORK/kafka/out/counts.txt"
    check "Weir store and Kafka: identical late records" \
      diff "$WORK/weir/out/late.txt" "$WORK/kafka/out/late.txt"
    check "Weir store and Kafka: identical dead letters" \
      diff <(cut -f1,2 "$WORK/weir/out/dlq.txt") <(cut -f1,2 "$WORK/kafka/out/dlq.txt")
  fi
  echo "proc_windows: wall time $((SECONDS - t0))s"
  ((failed == 0))
}

main "$@"
