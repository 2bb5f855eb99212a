#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Smoke test of the Python uppercase UDF (real grpcio server, runtime-built
# protobuf classes): own server on a free loopback port in a temp dir; wire
# bytes, all four MessagingService RPCs, health, and clean SIGTERM shutdown.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly UDF="$ROOT/tests/harness/udf-python.sh"
readonly PY="${WEIR_PYTHON:-/usr/bin/python3}"
readonly N=100
# Every client call is bounded: a hung RPC must fail the test, not CI.
readonly CLIENT_TIMEOUT=30

passed=0
failed=0
WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-udf-python-smoke.XXXXXX")"
readonly WORK
readonly SERVER_DIR="$WORK/udf"
TARGET=""

# Runs on every exit: stop the server, report, and print the summary last.
cleanup() {
  local rc=$?
  if ! "$UDF" stop "$SERVER_DIR" 2>/dev/null; then
    echo "udf_python_smoke: could not stop the UDF server in $SERVER_DIR" >&2
    failed=$((failed + 1))
  fi
  if ((rc != 0 && failed == 0)); then
    echo "udf_python_smoke: aborted (exit $rc)" >&2
    failed=1
  fi
  if ((failed == 0)); then
    rm -rf "$WORK"
  else
    echo "udf_python_smoke: keeping $WORK for inspection" >&2
  fi
  echo "udf_python_smoke: $passed passed, $failed failed"
  ((failed == 0)) || exit 1
  exit 0
}
trap cleanup EXIT
# On a signal, exit through the EXIT trap so the detached server is stopped.
trap 'exit 130' INT
trap 'exit 143' TERM HUP

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

# check NAME CMD...: run CMD, output to $WORK/last.log, count pass/fail.
# CMD runs inside `if`, so errexit is off there: multi-step helpers below
# check each step themselves (`|| return 1`).
check() {
  local name="$1"
  shift
  if "$@" >"$WORK/last.log" 2>&1; then
    pass "$name"
  else
    fail "$name" "$WORK/last.log"
  fi
}

client() {
  local t="${RPC_TIMEOUT:-$CLIENT_TIMEOUT}"
  timeout $((t + 10)) "$PY" "$ROOT/tests/harness/udf_client.py" \
    --target "$TARGET" --timeout "$t" "$@"
}

# expect_output WANT CMD...: CMD's stdout must be exactly WANT.
expect_output() {
  local want="$1" got
  shift
  got="$("$@")" || return 1
  printf 'got:  %s\nwant: %s\n' "$got" "$want"
  [[ "$got" == "$want" ]]
}

request_reply_uppercases() {
  expect_output \
    '{"headers": {"contentType": "text/plain", "udf": "python-uppercase", "x-trace": "abc-1"}, "payload": "HELLO, WEIR!"}' \
    client unary 'hello, Weir!' --header contentType=text/plain --header x-trace=abc-1
}

request_reply_unicode() {
  expect_output \
    '{"headers": {"contentType": "application/json", "udf": "python-uppercase"}, "payload": "{\"NAME\": \"GRÜSSE ÉTÉ\"}"}' \
    client unary '{"name": "grüße été"}' --header contentType=application/json
}

raw_wire_round_trip() {
  expect_output \
    '{"headers": {"contentType": "text/plain", "empty": "", "udf": "python-uppercase"}, "payload": "RAW BYTES"}' \
    client raw-unary 'raw bytes' --header contentType=text/plain --header empty=
}

wire_check() {
  client wire-check >"$WORK/wire.jsonl" || { cat "$WORK/wire.jsonl"; return 1; }
  cat "$WORK/wire.jsonl"
  ! grep -q '"ok": false' "$WORK/wire.jsonl"
}

bistream_expected() {
  local i
  for ((i = 1; i <= N; i++)); do
    printf '{"headers": {"contentType": "text/plain", "udf": "python-uppercase"}, "payload": "MSG-%03d"}\n' "$i"
  done
}

bistream_in_order() {
  local out="$1" i
  local -a texts=()
  for ((i = 1; i <= N; i++)); do texts+=("$(printf 'msg-%03d' "$i")"); done
  client bistream "${texts[@]}" --header contentType=text/plain >"$out" || return 1
  bistream_expected >"$out.want" || return 1
  diff "$out.want" "$out"
}

bistream_lockstep() {
  RPC_TIMEOUT=10 client bistream --lockstep one two three four five >"$WORK/lockstep.out" || return 1
  cat "$WORK/lockstep.out"
  [[ "$(sed -n 's/.*"payload": "\([A-Z]*\)".*/\1/p' "$WORK/lockstep.out" | paste -sd,)" \
    == "ONE,TWO,THREE,FOUR,FIVE" ]]
}

bistream_concurrent() {
  local j
  local -a pids=()
  for j in 1 2 3 4; do
    bistream_in_order "$WORK/concurrent-$j.out" >"$WORK/concurrent-$j.log" 2>&1 &
    pids+=($!)
  done
  local rc=0
  for j in "${!pids[@]}"; do
    wait "${pids[$j]}" || { rc=1; cat "$WORK/concurrent-$((j + 1)).log"; }
  done
  return "$rc"
}

server_stream_one_reply() {
  expect_output '{"headers": {"k": "v", "udf": "python-uppercase"}, "payload": "ONLY ONE"}' \
    client serverstream 'only one' --header k=v
}

client_stream_concatenates() {
  expect_output '{"headers": {"contentType": "text/plain", "udf": "python-uppercase"}, "payload": "ABCDEF"}' \
    client clientstream ab cd ef --header contentType=text/plain
}

port_conflict_refused() {
  local port="${TARGET##*:}"
  if "$UDF" start "$WORK/second" --port "$port"; then
    "$UDF" stop "$WORK/second"
    return 1
  fi
}

sigterm_stops_server() {
  local pid port="${TARGET##*:}" deadline
  pid="$("$UDF" pid "$SERVER_DIR")" || return 1
  kill -TERM "$pid" || return 1
  deadline=$((SECONDS + 15))
  while [[ -e "/proc/$pid" ]] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null &&
    ((SECONDS < deadline)); do
    sleep 0.1
  done
  cat "$SERVER_DIR/udf.log"
  if "$UDF" status "$SERVER_DIR"; then return 1; fi
  grep -q '"msg":"udf stopping","signal":"SIGTERM"' "$SERVER_DIR/udf.log" || return 1
  grep -q '"msg":"udf stopped"' "$SERVER_DIR/udf.log" || return 1
  # Nothing listens on the port any more.
  ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

stop_twice_is_safe() {
  "$UDF" stop "$SERVER_DIR" && "$UDF" stop "$SERVER_DIR"
}

main() {
  local t0=$SECONDS
  check "python3-grpcio / python3-protobuf present ($PY)" "$UDF" install
  ((failed == 0)) || return 1
  check "wire bytes match hand-computed protobuf encoding" wire_check
  check "UDF server starts on a free port" "$UDF" start "$SERVER_DIR" --port 0
  ((failed == 0)) || return 1
  TARGET="$("$UDF" target "$SERVER_DIR")"
  echo "     target $TARGET"
  check "requestReply uppercases and echoes headers incl. contentType" request_reply_uppercases
  check "requestReply uppercases UTF-8 text" request_reply_unicode
  check "requestReply with hand-encoded request / hand-decoded reply" raw_wire_round_trip
  check "biStream: $N messages -> $N uppercased, in order" bistream_in_order "$WORK/bistream.out"
  check "biStream replies to each message before the next is sent" bistream_lockstep
  check "4 concurrent biStreams of $N messages each" bistream_concurrent
  check "serverStream returns one uppercased reply" server_stream_one_reply
  check "clientStream returns the concatenation uppercased" client_stream_concatenates
  check "grpc.health.v1 Check reports SERVING" client health
  check "start refuses a port that is in use" port_conflict_refused
  check "SIGTERM stops the server cleanly" sigterm_stops_server
  check "harness stop is safe twice" stop_twice_is_safe
  echo "udf_python_smoke: wall time $((SECONDS - t0))s"
  ((failed == 0))
}

main "$@"
