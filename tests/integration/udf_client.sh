#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The dataplane's UDF client (dp_udf) against real grpcio servers:
#   1. load: 10000 requestReply calls, 64 in flight over 1 connection, to the
#      uppercase UDF (tests/harness/udf-python.sh); every reply checked; the
#      same 10000 pipelined on one biStream stream;
#   2. outage, unary then biStream: under the same load the server is killed
#      (SIGKILL), calls must fail with UNAVAILABLE only, and after a restart
#      on the same port the client reconnects and calls succeed again;
#   3. deadline: against tests/integration/udf_slow_server.py, slow calls
#      end DEADLINE_EXCEEDED at the deadline without costing the connection;
#      gRPC status and grpc-message pass through; a 1 MiB round trip;
#      biStream: calls queued behind a slow one expire, their late replies
#      are dropped and the stream carries on; a failed request ends the
#      stream with its status and a new stream serves the next calls.
# Ports 19700-19749 (19600-19649 belong to store_bench).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly HARNESS="$ROOT/tests/harness/udf-python.sh"
readonly SLOW="$ROOT/tests/integration/udf_slow_server.py"
readonly BUILD_DIR="${WEIR_BUILD_DIR:-$ROOT/build}"
readonly DRIVER="${WEIR_UDF_DRIVER:-$BUILD_DIR/tests/udf_driver}"
readonly PY="${WEIR_PYTHON:-/usr/bin/python3}"
readonly PORT=19700 SLOW_PORT=19701
readonly N="${WEIR_UDF_CALLS:-10000}"

log() { printf 'udf_client: %s\n' "$*" >&2; }
skip() { log "skip: $*"; exit 77; }

[[ -x "$DRIVER" ]] || skip "no driver at $DRIVER (build the udf_driver target)"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || "$HARNESS" install >&2 ||
  skip "python3-grpcio not available for $PY"

work="$(mktemp -d)"
udf_dir="$work/udf"
slow_pid=""
driver_pid=""
cleanup() {
  local rc=$?
  [[ -z "$driver_pid" ]] || kill "$driver_pid" 2>/dev/null || true
  [[ -z "$slow_pid" ]] || kill "$slow_pid" 2>/dev/null || true
  "$HARNESS" stop "$udf_dir" >/dev/null 2>&1 || true
  if ((rc == 0)); then
    rm -rf "$work"
  else
    log "failed (rc $rc); logs kept in $work"
  fi
}
trap cleanup EXIT

# ---- 1. load ----
"$HARNESS" start "$udf_dir" --port "$PORT" -- --max-workers 16 >&2
log "load: $N calls, 64 in flight, 1 connection"
"$DRIVER" load 127.0.0.1 "$PORT" "$N" 64 1 | tee "$work/load.out"
log "load: $N calls pipelined on biStream, 64 in flight, 1 connection"
UDF_DRIVER_MODE=bistream "$DRIVER" load 127.0.0.1 "$PORT" "$N" 64 1 | tee "$work/load-bs.out"

# ---- 2. outage (unary, then biStream) ----
wait_line() { # wait_line FILE PATTERN SECONDS
  local end=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    kill -0 "$driver_pid" 2>/dev/null || { cat "$1" >&2; log "driver exited early"; exit 1; }
    ((SECONDS < end)) || { cat "$1" >&2; log "timed out waiting for '$2'"; exit 1; }
    sleep 0.05
  done
}
outage() { # outage MODE
  local out="$work/outage-$1.out" pid
  UDF_DRIVER_MODE=$1 "$DRIVER" outage 127.0.0.1 "$PORT" >"$out" 2>&1 &
  driver_pid=$!
  wait_line "$out" '^steady' 60
  pid="$("$HARNESS" pid "$udf_dir")"
  log "outage ($1): killing the UDF server (pid $pid) under load"
  kill -KILL "$pid"
  wait_line "$out" '^unavailable' 30
  sleep 0.5 # calls keep failing fast while the port is closed
  "$HARNESS" stop "$udf_dir" >/dev/null 2>&1 || true
  "$HARNESS" start "$udf_dir" --port "$PORT" -- --max-workers 16 >&2
  if ! wait "$driver_pid"; then
    driver_pid=""
    cat "$out" >&2
    log "outage run ($1) failed"
    exit 1
  fi
  driver_pid=""
  cat "$out"
}
outage unary
outage bistream
"$HARNESS" stop "$udf_dir" >&2

# ---- 3. deadline and status ----
"$PY" -u "$SLOW" --port "$SLOW_PORT" >"$work/slow.log" 2>&1 &
slow_pid=$!
end=$((SECONDS + 30))
until grep -q '"udf ready"' "$work/slow.log"; do
  kill -0 "$slow_pid" 2>/dev/null || { cat "$work/slow.log" >&2; exit 1; }
  ((SECONDS < end)) || { cat "$work/slow.log" >&2; log "slow server did not start"; exit 1; }
  sleep 0.1
done
"$DRIVER" deadline 127.0.0.1 "$SLOW_PORT" | tee "$work/deadline.out"
"$DRIVER" bsdeadline 127.0.0.1 "$SLOW_PORT" | tee "$work/bsdeadline.out"
kill "$slow_pid"
wait "$slow_pid" 2>/dev/null || true
slow_pid=""
log "passed"
