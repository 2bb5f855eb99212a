#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The UDF samples of examples/udf, Python (grpcio) and C (weir_udf SDK on
# nghttp2 + protobuf-c), each started as a real server and called over gRPC:
#   1. uppercase (python, c): tests/integration/udf_samples_client.py checks
#      the uppercased payload, echoed headers + udf=NAME, 100 KiB / empty
#      payloads, 200 concurrent calls, biStream in order (also lockstep);
#   2. window_count (python, c) with --key payload.team and --key
#      header.team: a crafted GrpcPayloadCollection (multipart/json) gives
#      the expected per-key counts and reply headers; bad input is refused;
#   3. the dataplane's own UDF client (udf_driver load) against both
#      uppercase samples (the C one started with --udf-name python-uppercase,
#      the reply header the driver checks);
#   4. every server exits 0 on SIGTERM and logs "udf stopped".
# Ports 19900-19949.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly HARNESS="$ROOT/tests/harness/udf-python.sh"
readonly CLIENT="$ROOT/tests/integration/udf_samples_client.py"
readonly PYDIR="$ROOT/examples/udf/python"
readonly BUILD_DIR="${WEIR_BUILD_DIR:-$ROOT/build}"
readonly BIN="$BUILD_DIR/tests"
readonly DRIVER="${WEIR_UDF_DRIVER:-$BIN/udf_driver}"
# Same interpreter as the harness: Debian's python3-grpcio lives in it.
readonly PY="${WEIR_PYTHON:-/usr/bin/python3}"
readonly N="${WEIR_UDF_CALLS:-5000}"

log() { printf 'udf_samples: %s\n' "$*" >&2; }
skip() { log "skip: $*"; exit 77; }

for b in udf_uppercase_c udf_window_count_c; do
  [[ -x "$BIN/$b" ]] || skip "no $BIN/$b (build the $b target)"
done
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || "$HARNESS" install >&2 ||
  skip "python3-grpcio not available for $PY"

work="$(mktemp -d)"
declare -A PIDS=()
cleanup() {
  local rc=$? name
  for name in "${!PIDS[@]}"; do
    kill -KILL "${PIDS[$name]}" 2>/dev/null || true
  done
  if ((rc == 0)); then
    rm -rf "$work"
  else
    log "failed (rc $rc); logs kept in $work"
  fi
}
trap cleanup EXIT

# start NAME PORT CMD...: run a server, wait for its "udf ready" log line.
start() {
  local name="$1" port="$2" end=$((SECONDS + 30))
  shift 2
  "$@" --host 127.0.0.1 --port "$port" </dev/null >"$work/$name.log" 2>&1 &
  PIDS[$name]=$!
  until grep -qs "\"msg\":\"udf ready\",\"port\":$port" "$work/$name.log"; do
    if ! kill -0 "${PIDS[$name]}" 2>/dev/null || ((SECONDS >= end)); then
      cat "$work/$name.log" >&2
      log "$name did not start on port $port"
      exit 1
    fi
    sleep 0.05
  done
  log "$name ready on 127.0.0.1:$port (pid ${PIDS[$name]})"
}

# stop NAME: SIGTERM; the server must exit 0 and log "udf stopped".
stop() {
  local name="$1" pid="${PIDS[$1]}" rc=0
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  unset "PIDS[$name]"
  if ((rc != 0)) || ! grep -q '"msg":"udf stopped"' "$work/$name.log"; then
    cat "$work/$name.log" >&2
    log "$name: exit status $rc on SIGTERM, or no 'udf stopped' line"
    exit 1
  fi
}

check() { # check MODE PORT UDF_NAME
  "$PY" "$CLIENT" "$1" "127.0.0.1:$2" "$3"
}

start py-uppercase 19900 "$PY" -u "$PYDIR/uppercase.py"
start py-window 19901 "$PY" -u "$PYDIR/window_count.py" --key payload.team
start py-window-hdr 19902 "$PY" -u "$PYDIR/window_count.py" --key header.team
start c-uppercase 19910 "$BIN/udf_uppercase_c"
start c-window 19911 "$BIN/udf_window_count_c" --key payload.team
start c-window-hdr 19912 "$BIN/udf_window_count_c" --key header.team
start c-uppercase-drv 19913 "$BIN/udf_uppercase_c" --udf-name python-uppercase

log "1. uppercase"
check uppercase 19900 python-uppercase
check uppercase 19910 c-uppercase
log "2. window_count"
check window 19901 python-window-count
check window 19911 c-window-count
check window-header 19902 python-window-count
check window-header 19912 c-window-count

if [[ -x "$DRIVER" ]]; then
  log "3. dataplane client (udf_driver load): $N calls, 64 in flight"
  "$DRIVER" load 127.0.0.1 19900 "$N" 64 1
  "$DRIVER" load 127.0.0.1 19913 "$N" 64 1
  "$DRIVER" load 127.0.0.1 19913 "$N" 64 4
else
  log "3. skipped: no driver at $DRIVER"
fi

log "4. SIGTERM"
for name in py-uppercase py-window py-window-hdr c-uppercase c-window c-window-hdr c-uppercase-drv; do
  stop "$name"
done
log "all checks passed"
