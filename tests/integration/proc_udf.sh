#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The processor's UDF channel end to end (docs/internals/processor.md, "UDF
# operators"): the Weir store, the Python uppercase UDF
# (tests/harness/udf-python.sh, a real grpcio server) and a spec
# input -> udf operator -> output with a dead-letter topic.
#   1. 2000 JSON records all come out uppercased, with the UDF's reply
#      headers (udf=python-uppercase, the echoed request headers, contentType).
#   2. The UDF is SIGKILLed while 3000 more records flow and restarted ~1 s
#      later on the same port: every record ends up in the output or in the
#      dead-letter topic (at-least-once: duplicates allowed, nothing lost);
#      dead letters carry weir.grpc.status.
#   3. A spec whose UDF port nobody listens on: the processor logs the
#      bounded wait ("waiting for UDF") and exits 69 after readyTimeoutMs.
# Ports 19800-19849: store 19800, UDF 19810, processor HTTP 19820, dead
# UDF port 19849.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly STORE="$ROOT/tests/harness/store.sh"
readonly KAFKA="$ROOT/tests/harness/kafka.sh" # smoke_lib stops a broker it never started
readonly UDFH="$ROOT/tests/harness/udf-python.sh"
readonly KCAT_HARNESS="$ROOT/tests/harness/kcat.sh"
readonly BUILD_DIR="${WEIR_BUILD_DIR:-$ROOT/build}"
readonly BIN="${WEIR_STORE_BIN:-$BUILD_DIR/dataplane/weir-dataplane}"
readonly KCLIENT_BIN="${WEIR_KCLIENT:-$BUILD_DIR/tests/kclient}"
readonly DATA="$ROOT/tests/data/proc/udf"
readonly STORE_PORT=19800 UDF_PORT=19810 HTTP_PORT=19820 DEAD_PORT=19849
readonly TOOL_TIMEOUT=60
readonly N1=2000 N2=3000
readonly IN_TOPIC=udf-in OUT_TOPIC=udf-out DLQ_TOPIC=udf-dlq

if [[ ! -x "$BIN" ]]; then
  echo "proc_udf: SKIP: no weir-dataplane at $BIN (build it, or set WEIR_BUILD_DIR)"
  exit 77
fi
if [[ ! -x "$KCLIENT_BIN" ]]; then
  echo "proc_udf: SKIP: no kclient at $KCLIENT_BIN (build the test tools)"
  exit 77
fi

SMOKE_NAME=proc_udf
# shellcheck source=tests/harness/kafka/smoke_lib.sh
source "$ROOT/tests/harness/kafka/smoke_lib.sh" # WORK, check/pass/fail, traps
KCAT_BIN=kcat
PROC_PID=""
BOOT="127.0.0.1:$STORE_PORT"

proc_cleanup() {
  local rc=$?
  if [[ -n "$PROC_PID" ]]; then
    kill -KILL "$PROC_PID" 2>/dev/null || :
  fi
  "$UDFH" stop "$WORK/udf" >/dev/null 2>&1 || :
  "$STORE" kill "$WORK/weir" >/dev/null 2>&1 || :
  (exit "$rc") || smoke_cleanup
  smoke_cleanup
}
trap proc_cleanup EXIT

kcat() { timeout "$TOOL_TIMEOUT" "$KCAT_BIN" -b "$BOOT" "$@"; }
metrics() { curl -sf --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics"; }

render_spec() { # OUT UDF_ENDPOINT READY_MS CHECKPOINTS
  sed -e "s|@BOOTSTRAP@|$BOOT|g" -e "s|@UDF@|$2|g" -e "s|@READY_MS@|$3|g" \
    -e "s|@CHECKPOINTS@|$4|g" "$DATA/spec.json" >"$1"
}

proc_spawn() {
  "$BIN" --role processor --spec "$1" --http-port "$HTTP_PORT" </dev/null >>"$2" 2>&1 &
  PROC_PID=$!
}

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
  return 1
}

# gen FROM COUNT: key|{"id":N,"ts":1700000NNNNNN,"name":"rec-N"} lines (no
# 64-bit arithmetic: mawk's printf %d stops at 2^31).
gen() {
  awk -v a="$1" -v n="$2" 'BEGIN { for (i = a; i < a + n; i++)
    printf "k%d|{\"id\":%d,\"ts\":1700000%06d,\"name\":\"rec-%d\"}\n", i, i, i, i }'
}

produce() { # FROM COUNT: split over the 2 partitions, with a header
  gen "$1" "$2" >"$WORK/batch.txt"
  kcat -P -t "$IN_TOPIC" -K '|' -H "src=proc-udf" <"$WORK/batch.txt"
}

# read_topic TOPIC FILE: key \t payload \t headers.
read_topic() {
  kcat -C -t "$1" -o beginning -e -q -f '%k\t%s\t%h\n' >"$2"
}

# wait_outputs N: output + dead letters reach N distinct keys (60 s).
wait_outputs() {
  local deadline=$((SECONDS + 60)) n=0
  while ((SECONDS < deadline)); do
    read_topic "$OUT_TOPIC" "$WORK/out.txt" || :
    read_topic "$DLQ_TOPIC" "$WORK/dlq.txt" || :
    n="$(cut -f1 "$WORK/out.txt" "$WORK/dlq.txt" | sort -u | grep -c . || :)"
    ((n >= $1)) && return 0
    sleep 0.5
  done
  echo "only $n distinct keys in output + DLQ, expected $1"
  return 1
}

phase1_ok() {
  local bad
  [[ "$(cut -f1 "$WORK/out.txt" | sort -u | wc -l)" -eq $N1 ]] || {
    echo "distinct output keys: $(cut -f1 "$WORK/out.txt" | sort -u | wc -l)"
    return 1
  }
  # every record uppercased, with the UDF's reply headers
  bad="$(awk -F'\t' '{ k = substr($1, 2)
      if ($2 != "{\"ID\":" k ",\"TS\":" sprintf("1700000%06d", k) ",\"NAME\":\"REC-" k "\"}" ||
          $3 !~ /udf=python-uppercase/ || $3 !~ /src=proc-udf/ ||
          $3 !~ /contentType=application\/json/) print }' "$WORK/out.txt" | head -3)"
  [[ -z "$bad" ]] || {
    echo "bad output records:"
    echo "$bad"
    return 1
  }
  [[ ! -s "$WORK/dlq.txt" ]] || {
    echo "unexpected dead letters:"
    head -3 "$WORK/dlq.txt"
    return 1
  }
}

phase2_ok() {
  local want have missing
  want="$(seq 0 $((N1 + N2 - 1)) | sed 's/^/k/' | sort)"
  have="$(cut -f1 "$WORK/out.txt" "$WORK/dlq.txt" | sort -u)"
  missing="$(comm -23 <(echo "$want") <(echo "$have") | wc -l)"
  echo "output records $(wc -l <"$WORK/out.txt") (distinct $(cut -f1 "$WORK/out.txt" | sort -u | wc -l)), dead letters $(wc -l <"$WORK/dlq.txt"), missing $missing"
  ((missing == 0)) || return 1
  # every dead letter is a UDF failure with its gRPC status and the original record
  if [[ -s "$WORK/dlq.txt" ]]; then
    awk -F'\t' '$3 !~ /weir\.grpc\.status=[0-9]+/ || $3 !~ /weir\.error=/ ||
      $2 !~ /"name":"rec-/ { bad++ } END { exit bad > 0 }' "$WORK/dlq.txt" || {
      echo "dead letters without weir.grpc.status or the original payload"
      return 1
    }
  fi
}

# no_listener: a UDF port nobody listens on: bounded wait, exit 69.
no_listener() {
  local rc=0 t0=$SECONDS
  render_spec "$WORK/dead.json" "127.0.0.1:$DEAD_PORT" 3000 "$WORK/dead-ckpt"
  timeout 60 "$BIN" --role processor --spec "$WORK/dead.json" --http-port 0 \
    </dev/null >"$WORK/dead.log" 2>&1 || rc=$?
  grep -E 'UDF|stopped' "$WORK/dead.log"
  [[ "$rc" == 69 ]] && ((SECONDS - t0 < 30)) &&
    grep -q '"waiting for UDF".*"endpoint":"127.0.0.1:'"$DEAD_PORT"'"' "$WORK/dead.log" &&
    grep -q '"UDF not reachable in time, giving up"' "$WORK/dead.log"
}

main() {
  local t0=$SECONDS spec="$WORK/spec.json" log="$WORK/proc.log" udf_pid dlq_status
  echo "proc_udf: work dir $WORK"
  check "kcat installed" "$KCAT_HARNESS" install
  KCAT_BIN="$("$KCAT_HARNESS" path)"
  check "python grpcio installed" "$UDFH" install
  ((failed == 0)) || return 1

  check "store starts" env WEIR_STORE_TARGET=weir "$STORE" start "$WORK/weir" "$STORE_PORT" 2
  check "create topics" bash -c "
    timeout $TOOL_TIMEOUT '$KCLIENT_BIN' create -b '$BOOT' -q -t $IN_TOPIC -p 2 -c retention.ms=-1 &&
    timeout $TOOL_TIMEOUT '$KCLIENT_BIN' create -b '$BOOT' -q -t $OUT_TOPIC -p 2 -c retention.ms=-1 &&
    timeout $TOOL_TIMEOUT '$KCLIENT_BIN' create -b '$BOOT' -q -t $DLQ_TOPIC -p 1 -c retention.ms=-1"
  check "UDF starts on $UDF_PORT" "$UDFH" start "$WORK/udf" --port "$UDF_PORT" -- --max-workers 16
  ((failed == 0)) || return 1

  check "a UDF port nobody listens on: bounded wait, clear log, exit 69" no_listener

  render_spec "$spec" "127.0.0.1:$UDF_PORT" 30000 "$WORK/ckpt"
  proc_spawn "$spec" "$log"
  if proc_ready "$log" >"$WORK/last.log" 2>&1; then
    pass "processor connects to the UDF and starts"
  else
    fail "processor connects to the UDF and starts" "$WORK/last.log"
    return 1
  fi
  check "start-up logged the UDF connection" grep -q '"UDF connected"' "$log"

  check "phase 1: $N1 records produced" produce 0 "$N1"
  check "phase 1: $N1 records out" wait_outputs "$N1"
  check "phase 1: all uppercased with the reply headers, no dead letters" phase1_ok

  # phase 2: kill -9 the UDF mid-stream, restart it ~1 s later
  (
    for b in $(seq 0 9); do
      produce $((N1 + b * N2 / 10)) $((N2 / 10)) || exit 1
      sleep 0.2
    done
  ) >"$WORK/producer.log" 2>&1 &
  local prod=$!
  sleep 0.5
  udf_pid="$("$UDFH" pid "$WORK/udf")"
  check "UDF killed (SIGKILL) mid-stream" kill -KILL "$udf_pid"
  sleep 1
  check "UDF restarted on the same port" "$UDFH" start "$WORK/udf" --port "$UDF_PORT" -- --max-workers 16
  if wait "$prod"; then pass "phase 2: $N2 records produced"; else fail "phase 2: $N2 records produced" "$WORK/producer.log"; fi
  check "phase 2: every record in the output or the DLQ" wait_outputs $((N1 + N2))
  sleep 2 # retries in flight may still add outputs
  read_topic "$OUT_TOPIC" "$WORK/out.txt" || :
  read_topic "$DLQ_TOPIC" "$WORK/dlq.txt" || :
  check "phase 2: none lost; dead letters carry weir.grpc.status" phase2_ok
  dlq_status="$(grep -o 'weir\.grpc\.status=[0-9]*' "$WORK/dlq.txt" | sort | uniq -c | tr '\n' ' ' || :)"
  echo "   dead letters by status: ${dlq_status:-none}"
  metrics >"$WORK/metrics.txt" || :
  grep '^weir_processor_udf_\(calls\|retries\|errors\|dead_letters\|in_flight\)' \
    "$WORK/metrics.txt" || :
  check "metrics: UDF calls, errors by status, latency histogram, in-flight" bash -c "
    grep -q '^weir_processor_udf_calls_total{udf=\"upper\"} [1-9]' '$WORK/metrics.txt' &&
    grep -q '^weir_processor_udf_errors_total{udf=\"upper\",status=\"UNAVAILABLE\"} [1-9]' '$WORK/metrics.txt' &&
    grep -q '^weir_processor_udf_latency_seconds_count{udf=\"upper\"} [1-9]' '$WORK/metrics.txt' &&
    grep -q '^weir_processor_udf_in_flight{udf=\"upper\"} 0' '$WORK/metrics.txt'"

  local rc=0
  kill -TERM "$PROC_PID"
  wait "$PROC_PID" || rc=$?
  PROC_PID=""
  check "SIGTERM: exit 0 with a final checkpoint" bash -c "[[ $rc == 0 ]] &&
    grep -q '\"checkpoint written\".*\"reason\":\"shutdown\"' '$log'"
  check "no sanitizer reports in the processor logs" bash -c "
    ! grep -E 'runtime error|AddressSanitizer|LeakSanitizer' '$log' '$WORK/dead.log'"
  "$UDFH" stop "$WORK/udf" >/dev/null 2>&1 || :
  check "store stops" "$STORE" stop "$WORK/weir"
  echo "proc_udf: wall time $((SECONDS - t0))s"
  ((failed == 0))
}

main "$@"
