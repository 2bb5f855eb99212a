# SPDX-License-Identifier: Apache-2.0
# Shared helpers of the weirctl integration tests (tests/integration/wctl_*.sh),
# sourced, not run: a work directory, pass/fail, starting and stopping a
# `weirctl run` in the background, finding its children. Ports: weirctl tests
# use 20000-20091 (each script its own block of ten).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${WEIR_BUILD_DIR:-$ROOT/build}"
WEIRCTL="$BUILD_DIR/operator/weirctl"
DATAPLANE="$BUILD_DIR/dataplane/weir-dataplane"
EXAMPLE="$ROOT/examples/anomaly-detection"
NAME="${NAME:-wctl}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/$NAME.XXXXXX")"
RUN_PID=""

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
pass() { printf '%s: ok: %s\n' "$NAME" "$*"; }
fail() {
  printf '%s: FAIL: %s\n' "$NAME" "$*" >&2
  if [[ -f "$WORK/run.log" ]]; then
    printf -- '---- last 40 lines of %s ----\n' "$WORK/run.log" >&2
    tail -n 40 "$WORK/run.log" >&2
  fi
  exit 1
}

if [[ ! -x "$WEIRCTL" || ! -x "$DATAPLANE" ]]; then
  echo "$NAME: SKIP: weirctl or weir-dataplane not built in $BUILD_DIR"
  exit 77
fi

# The UDF examples need grpcio; Debian's python3-grpcio lives in /usr/bin/python3.
pick_python() {
  local p
  for p in "${WEIR_PYTHON:-}" /usr/bin/python3 python3; do
    [[ -n "$p" ]] || continue
    if "$p" -c 'import grpc' 2>/dev/null; then
      export WEIR_PYTHON="$p"
      return 0
    fi
  done
  return 1
}

# Pids of the processes whose parent is $1.
children_of() {
  local p
  for p in /proc/[0-9]*; do
    [[ "$(awk '{print $4}' "$p/stat" 2>/dev/null)" == "$1" ]] && basename "$p"
  done
  return 0
}

# start_run LOG ARGS...: weirctl run in the background (JSON lines into LOG).
start_run() {
  local logf="$1"
  shift
  "$WEIRCTL" run "$@" >"$logf" 2>&1 &
  RUN_PID=$!
}

# wait_log LOG PATTERN SECONDS: true once PATTERN (grep -E) is in LOG.
wait_log() {
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    grep -qE -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# stop_run [SIGNAL]: signal (INT) and wait; the exit status lands in RUN_RC.
RUN_RC=""
stop_run() {
  RUN_RC=0
  [[ -n "$RUN_PID" ]] || return 0
  kill "-${1:-INT}" "$RUN_PID" 2>/dev/null || :
  wait "$RUN_PID" || RUN_RC=$?
  RUN_PID=""
}

wctl_cleanup() {
  local c
  if [[ -n "$RUN_PID" ]]; then
    for c in $(children_of "$RUN_PID"); do kill -KILL -- "-$c" 2>/dev/null || :; done
    kill -KILL "$RUN_PID" 2>/dev/null || :
    wait "$RUN_PID" 2>/dev/null || :
  fi
  rm -rf "$WORK"
}
trap wctl_cleanup EXIT
