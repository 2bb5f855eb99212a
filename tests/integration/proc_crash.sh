#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# At-least-once across crashes: while records stream into a 2-partition
# topic, the processor (1 s tumbling windows, count and sum per key) is
# SIGKILLed at random moments and restarted WEIR_PROC_CRASH_TRIALS (12)
# times, mid-window. Its results, deduplicated by (key, window), must equal
# a crash-free run's over the same input, and every duplicate must carry the
# same values (a replay reproduces results, it never changes them). The
# crash-free run itself must equal the counts computed from the input.
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
readonly TRIALS="${WEIR_PROC_CRASH_TRIALS:-12}"
readonly SEED="${WEIR_PROC_CRASH_SEED:-$RANDOM}"
readonly N="${WEIR_PROC_CRASH_RECORDS:-6000}" # per partition
readonly RATE="${WEIR_PROC_CRASH_RATE:-250}"  # per partition per second
readonly T0=1700000000000 STEP_MS=20 KEYS=10
# Fixed ports: store 19430 (Kafka 19430 + controller 19431), processor HTTP
# 19440 (crashing) and 19441 (reference).
readonly PORT=19430 HTTP_CRASH=19440 HTTP_REF=19441
readonly BOOT="127.0.0.1:$PORT"
readonly TOOL_TIMEOUT=60
readonly IN_TOPIC=proc-crash-in

if [[ ! -x "$BIN" ]]; then
  echo "proc_crash: SKIP: no weir-dataplane at $BIN (build it, or set WEIR_BUILD_DIR)"
  exit 77
fi
if [[ ! -x "$KCLIENT_BIN" ]]; then
  echo "proc_crash: SKIP: no kclient at $KCLIENT_BIN (build the test tools)"
  exit 77
fi
export WEIR_STORE_TARGET="$TARGET"

SMOKE_NAME=proc_crash
# shellcheck source=tests/harness/kafka/smoke_lib.sh
source "$ROOT/tests/harness/kafka/smoke_lib.sh" # WORK, check/pass/fail, traps
readonly CLUSTER_DIR="$WORK/cluster"
KCAT_BIN=kcat
PROC_PID=""
PRODUCERS=()

crash_cleanup() {
  local rc=$? pid
  [[ -z "$PROC_PID" ]] || kill -KILL "$PROC_PID" 2>/dev/null || :
  for pid in "${PRODUCERS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || :
  done
  "$STORE" kill "$CLUSTER_DIR" >/dev/null 2>&1 || :
  "$STORE" stop "$CLUSTER_DIR" >/dev/null 2>&1 || :
  (exit "$rc") || smoke_cleanup
  smoke_cleanup
}
trap crash_cleanup EXIT

kcat() { timeout "$TOOL_TIMEOUT" "$KCAT_BIN" -b "$BOOT" "$@"; }

render_spec() { # NAME OUT CHECKPOINTS FILE
  sed -e "s|@BOOTSTRAP@|$BOOT|g" -e "s|@NAME@|$1|g" -e "s|@OUT@|$2|g" \
    -e "s|@CHECKPOINTS@|$3|g" "$DATA/crash.json" >"$4"
}

# proc_spawn SPEC PORT LOG: starts a processor in the background (PROC_PID).
proc_spawn() {
  "$BIN" --role processor --spec "$1" --http-port "$2" </dev/null >>"$3" 2>&1 &
  PROC_PID=$!
}

# proc_term: SIGTERM the processor; it must exit 0.
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

# results TOPIC FILE: "key start end count total" per window result.
results() {
  kcat -C -t "$1" -o beginning -e -q -f '%k\t%s\n' | python3 "$UTIL" results >"$2"
}

# wait_results TOPIC FILE COUNT SECONDS: until COUNT distinct windows are out.
wait_results() {
  local deadline=$((SECONDS + $4)) n=0
  while ((SECONDS < deadline)); do
    results "$1" "$2" || return 1
    n="$(awk '{ print $1, $2, $3 }' "$2" | sort -u | wc -l)"
    ((n >= $3)) && return 0
    sleep 0.5
  done
  echo "$n distinct window results in $1, expected $3"
  return 1
}

checked() { # NAME CMD...: like check, but in this shell (processes are our children)
  local name="$1"
  shift
  if "$@" >"$WORK/last.log" 2>&1; then
    pass "$name"
  else
    fail "$name" "$WORK/last.log"
  fi
}

crash_loop() {
  local spec="$1" log="$2" i delay restored killed=0
  for ((i = 1; i <= TRIALS; i++)); do
    proc_spawn "$spec" "$HTTP_CRASH" "$log"
    # 0.3 .. 2.0 s: start-up, restore, catch-up and mid-window processing.
    delay="$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.3 + (r % 171) / 100 }')"
    sleep "$delay"
    if kill -0 "$PROC_PID" 2>/dev/null; then
      kill -KILL "$PROC_PID"
      wait "$PROC_PID" 2>/dev/null || :
      killed=$((killed + 1))
    else
      wait "$PROC_PID" || :
      echo "trial $i: the processor had exited by itself before the kill"
      PROC_PID=""
      tail -n 20 "$log"
      return 1
    fi
    PROC_PID=""
    echo "trial $i: SIGKILL after ${delay}s"
  done
  restored="$(grep -c '"checkpoint restored"' "$log" || :)"
  echo "$killed kills; $restored restarts restored a checkpoint"
  ((killed == TRIALS && restored >= 1))
}

main() {
  local t0=$SECONDS crash_spec ref_spec expected n_expected p
  RANDOM=$SEED
  echo "proc_crash: target $TARGET on $BOOT, $TRIALS trials, seed $SEED, work dir $WORK"
  check "kcat installed" "$KCAT_HARNESS" install
  KCAT_BIN="$("$KCAT_HARNESS" path)"
  [[ "$TARGET" != kafka ]] || check "Kafka installed" "$KAFKA" install
  check "cluster starts" "$STORE" start "$CLUSTER_DIR" "$PORT" 2
  ((failed == 0)) || return 1
  # retention.ms=-1: window results carry event times from 2023, which
  # time-based retention (Kafka's 7 days) would otherwise delete at once.
  check "create $IN_TOPIC (2 partitions)" \
    timeout "$TOOL_TIMEOUT" "$KCLIENT_BIN" create -b "$BOOT" -q -t "$IN_TOPIC" -p 2 -c retention.ms=-1
  check "create output topics" bash -c "
    timeout $TOOL_TIMEOUT '$KCLIENT_BIN' create -b '$BOOT' -q -t proc-crash-out -p 2 -c retention.ms=-1 &&
    timeout $TOOL_TIMEOUT '$KCLIENT_BIN' create -b '$BOOT' -q -t proc-crash-ref -p 2 -c retention.ms=-1"

  # The input, and what any correct run must produce from it. A closing
  # record per partition moves the watermark past every window.
  for p in 0 1; do
    python3 "$UTIL" gen "$p" "$N" "$KEYS" "$T0" "$STEP_MS" 0 >"$WORK/in-p$p.txt"
    printf 'close|{"user":"close","ts":%d,"n":0}\n' $((T0 + N * STEP_MS + 5000)) >>"$WORK/in-p$p.txt"
  done
  expected="$WORK/expected.txt"
  cat "$WORK/in-p0.txt" "$WORK/in-p1.txt" | python3 "$UTIL" windows 1000 | sort >"$expected"
  n_expected="$(wc -l <"$expected")"
  echo "input: $N records per partition at $RATE/s; $n_expected window results expected"

  crash_spec="$WORK/crash.json"
  ref_spec="$WORK/ref.json"
  render_spec proc-crash proc-crash-out "$WORK/ckpt-crash" "$crash_spec"
  render_spec proc-crash-ref proc-crash-ref "$WORK/ckpt-ref" "$ref_spec"

  for p in 0 1; do
    { python3 "$UTIL" gen "$p" "$N" "$KEYS" "$T0" "$STEP_MS" "$RATE" &&
      tail -n 1 "$WORK/in-p$p.txt"; } |
      timeout 600 "$KCAT_BIN" -b "$BOOT" -P -t "$IN_TOPIC" -p "$p" -K '|' \
        >"$WORK/produce-p$p.log" 2>&1 &
    PRODUCERS+=($!)
  done

  checked "$TRIALS SIGKILL/restart trials while producing" \
    crash_loop "$crash_spec" "$WORK/crash.log"
  echo "restarts that restored a checkpoint: $(grep -c '"checkpoint restored"' "$WORK/crash.log" || :)"
  checked "input fully produced" wait "${PRODUCERS[@]}"
  PRODUCERS=()

  # After the last crash, a final run catches up and stops cleanly.
  proc_spawn "$crash_spec" "$HTTP_CRASH" "$WORK/crash.log"
  check "crashed processor catches up: $n_expected distinct windows" \
    wait_results proc-crash-out "$WORK/crash-results.txt" "$n_expected" 180
  checked "crashed processor stops cleanly (SIGTERM, status 0)" proc_term

  proc_spawn "$ref_spec" "$HTTP_REF" "$WORK/ref.log"
  check "crash-free processor produces $n_expected windows" \
    wait_results proc-crash-ref "$WORK/ref-results.txt" "$n_expected" 180
  checked "crash-free processor stops cleanly" proc_term

  check "crash-free run: no duplicates, exactly the expected windows" \
    diff "$expected" <(sort "$WORK/ref-results.txt")
  check "crashed run: duplicates only ever repeat the same result" bash -c \
    "sort -u '$WORK/crash-results.txt' | awk '{ print \$1, \$2, \$3 }' | uniq -d | head -5 |
      { ! grep .; }"
  check "crashed run, deduplicated by (key, window) = crash-free run" \
    diff <(sort -u "$WORK/ref-results.txt") <(sort -u "$WORK/crash-results.txt")
  echo "crashed run: $(wc -l <"$WORK/crash-results.txt") results for" \
    "$(sort -u "$WORK/crash-results.txt" | wc -l) windows (duplicates are replays)"
  check "checkpoint directory: at most 2 checkpoints, no temp file" bash -c \
    "ls '$WORK/ckpt-crash'; [[ \$(ls '$WORK/ckpt-crash' | grep -c '^ckpt-[0-9]*\$') -le 2 ]] &&
      ! ls '$WORK/ckpt-crash' | grep -q tmp"
  check "no damaged checkpoint was met" bash -c "! grep -q 'checkpoint damaged' '$WORK/crash.log'"

  check "cluster stops" "$STORE" stop "$CLUSTER_DIR"
  echo "proc_crash: seed $SEED, wall time $((SECONDS - t0))s"
  ((failed == 0))
}

main "$@"
