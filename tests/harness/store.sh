#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Weir test harness: one store (`weir-dataplane --role store`) on loopback,
# with its log, pid and data under an instance directory, for the real-client
# tests in tests/integration/store_*.sh. Run `tests/harness/store.sh help`.
# WEIR_STORE_TARGET=kafka drives the real Kafka broker (tests/harness/kafka.sh)
# through the same commands, so a test can be checked against the reference.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly KAFKA_HARNESS="$ROOT/tests/harness/kafka.sh"
readonly STORE_BIN="${WEIR_STORE_BIN:-${WEIR_BUILD_DIR:-$ROOT/build}/dataplane/weir-dataplane}"
readonly DEFAULT_PORT="${WEIR_STORE_PORT:-19300}"
readonly DEFAULT_WORKERS="${WEIR_STORE_WORKERS:-2}"
readonly START_TIMEOUT="${WEIR_STORE_START_TIMEOUT:-20}"
readonly STOP_TIMEOUT="${WEIR_STORE_STOP_TIMEOUT:-20}"

log() { printf 'store.sh: %s\n' "$*" >&2; }
die() {
  printf 'store.sh: error: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat <<EOF
Usage: tests/harness/store.sh COMMAND DIR [ARGS]

  start DIR [PORT] [WORKERS] [ARGS...]
                 start a store on 127.0.0.1:PORT ($DEFAULT_PORT) with WORKERS
                 ($DEFAULT_WORKERS) workers, data in DIR/data, log appended to
                 DIR/store.log, pid in DIR/store.pid; extra ARGS go to the
                 store; waits up to ${START_TIMEOUT}s until \`kcat -L\` answers
  stop DIR       SIGTERM, wait up to ${STOP_TIMEOUT}s; fails if the store does not
                 exit or exits non-zero (it then gets SIGKILL)
  kill DIR       SIGKILL and wait for the exit (crash tests)
  status DIR     exit 0 and print the pid if running
  env DIR        print export lines: WEIR_STORE_BOOTSTRAP, WEIR_STORE_DATA_DIR, ...
  logs DIR       the last 100 lines of the store's log

Binary: \$WEIR_STORE_BIN, else \$WEIR_BUILD_DIR/dataplane/weir-dataplane
(now: $STORE_BIN).
WEIR_STORE_TARGET=kafka: the same commands start, stop and kill the real Kafka
broker of tests/harness/kafka.sh (controller port PORT+1, data in DIR/data;
WORKERS and ARGS are ignored). Environment: WEIR_STORE_PORT, WEIR_STORE_WORKERS,
WEIR_STORE_START_TIMEOUT, WEIR_STORE_STOP_TIMEOUT, WEIR_KCAT.
EOF
}

instance_dir() {
  [[ -n "${1:-}" ]] || die "missing DIR (see: $0 help)"
  realpath -m -- "$1"
}

# Reads key=value lines of DIR/store-instance.env; prints the value of $2.
instance_get() {
  [[ -f "$1/store-instance.env" ]] || return 0
  sed -n "s/^$2=//p" "$1/store-instance.env"
}

instance_target() {
  local t
  t="$(instance_get "$1" target)"
  printf '%s\n' "${t:-${WEIR_STORE_TARGET:-weir}}"
}

kcat_bin() {
  if [[ -n "${WEIR_KCAT:-}" ]]; then
    printf '%s\n' "$WEIR_KCAT"
  else
    command -v kcat || die "kcat not found (run tests/harness/kcat.sh install)"
  fi
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pid of the store in DIR if it is alive and really is that store (its
# command line names DIR/data), else "". Stale pid files (a reboot, a
# recycled pid, a zombie) read as stopped.
store_pid() {
  local dir="$1" pid state
  [[ -f "$dir/store.pid" ]] || return 0
  pid="$(cat "$dir/store.pid" 2>/dev/null)" || return 0
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  [[ -r "/proc/$pid/cmdline" ]] || return 0
  state="$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$pid/stat" 2>/dev/null)" || return 0
  [[ "$state" != Z ]] || return 0
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$dir/data" || return 0
  printf '%s\n' "$pid"
}

# One JSON line in the store's own log format marks each start, so that the
# log of a crash test reads as one history of runs.
log_marker() {
  printf '{"ts":"%s","level":"info","component":"store.sh","msg":"%s"}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$2" >>"$1/store.log"
}

dump_log() {
  [[ -s "$1/store.log" ]] || return 0
  printf -- '---- last 30 lines of %s ----\n' "$1/store.log" >&2
  tail -n 30 "$1/store.log" >&2
}

# Ready = the process is alive and a Metadata round trip through kcat works.
wait_ready() {
  local dir="$1" port="$2" kcat deadline=$((SECONDS + START_TIMEOUT))
  kcat="$(kcat_bin)"
  while ((SECONDS < deadline)); do
    if [[ -z "$(store_pid "$dir")" ]]; then
      log "store exited during start-up (exit status $(cat "$dir/store.exit" 2>/dev/null || echo '?'))"
      dump_log "$dir"
      return 1
    fi
    if port_in_use "$port" &&
      timeout 5 "$kcat" -b "127.0.0.1:$port" -L -m 3 >"$dir/ready-check.log" 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  log "store did not answer Metadata on 127.0.0.1:$port within ${START_TIMEOUT}s"
  dump_log "$dir"
  return 1
}

cmd_start() {
  local dir port workers pid
  dir="$(instance_dir "${1:-}")"
  port="${2:-$DEFAULT_PORT}"
  workers="${3:-$DEFAULT_WORKERS}"
  if (($# > 3)); then shift 3; else set --; fi
  [[ "$port" =~ ^[0-9]+$ && "$workers" =~ ^[0-9]+$ ]] || die "PORT and WORKERS must be numbers"
  local target="${WEIR_STORE_TARGET:-weir}"
  if [[ "$target" == kafka ]]; then
    mkdir -p "$dir/data"
    ((workers == DEFAULT_WORKERS && $# == 0)) ||
      log "kafka target: ignoring WORKERS=$workers and extra args: $*"
    printf 'target=kafka\nport=%s\n' "$port" >"$dir/store-instance.env"
    WEIR_KAFKA_PORT="$port" WEIR_KAFKA_CONTROLLER_PORT="$((port + 1))" \
      "$KAFKA_HARNESS" start "$dir"
    return
  fi
  [[ "$target" == weir ]] || die "WEIR_STORE_TARGET must be weir or kafka, not $target"
  [[ -x "$STORE_BIN" ]] || die "store binary not found: $STORE_BIN (build it, or set WEIR_BUILD_DIR / WEIR_STORE_BIN)"
  pid="$(store_pid "$dir")"
  [[ -z "$pid" ]] || die "a store is already running from $dir (pid $pid); run: $0 stop $dir"
  mkdir -p "$dir/data"
  rm -f "$dir/store.pid" "$dir/store.exit"
  ! port_in_use "$port" || die "port 127.0.0.1:$port is already in use"
  printf 'target=weir\nport=%s\nworkers=%s\n' "$port" "$workers" >"$dir/store-instance.env"

  local -a argv=("$STORE_BIN" --role store --data-dir "$dir/data" --kafka-port "$port"
    --advertised-host 127.0.0.1 --http-port 0 --workers "$workers" "$@")
  log_marker "$dir" "store.sh start: ${argv[*]}"
  # A small supervisor subshell is the store's parent, so that the store's
  # exit status can be recorded (stop checks that SIGTERM gives exit 0). It
  # ignores INT/HUP so that only the test's explicit stop/kill end it.
  (
    "${argv[@]}" </dev/null >>"$dir/store.log" 2>&1 &
    child=$!
    trap '' INT HUP
    printf '%s\n' "$child" >"$dir/store.pid.tmp"
    mv -f "$dir/store.pid.tmp" "$dir/store.pid"
    rc=0
    wait "$child" || rc=$?
    printf '%s\n' "$rc" >"$dir/store.exit"
  ) </dev/null >/dev/null 2>&1 &
  local t0=$SECONDS deadline=$((SECONDS + 5))
  while [[ ! -f "$dir/store.pid" ]] && ((SECONDS < deadline)); do
    sleep 0.02
  done
  [[ -f "$dir/store.pid" ]] || die "the store did not start (no pid file after 5 s)"
  pid="$(cat "$dir/store.pid")"
  if ! wait_ready "$dir" "$port"; then
    cmd_kill "$dir" >/dev/null 2>&1 || :
    die "store failed to start (log: $dir/store.log)"
  fi
  log "store ready on 127.0.0.1:$port (pid $pid, $workers workers, dir $dir, $((SECONDS - t0))s)"
}

# wait_port_closed PORT: true once nothing listens on PORT (10 s at most).
wait_port_closed() {
  local deadline=$((SECONDS + 10))
  [[ -n "$1" ]] || return 0
  while port_in_use "$1" && ((SECONDS < deadline)); do
    sleep 0.05
  done
  ! port_in_use "$1"
}

# wait_gone DIR PID SECONDS: true once the store has exited.
wait_gone() {
  local deadline=$((SECONDS + $3))
  while [[ -n "$(store_pid "$1")" ]] && ((SECONDS < deadline)); do
    sleep 0.05
  done
  [[ -z "$(store_pid "$1")" ]]
}

# Exit status recorded by the supervisor; it lands just after the exit.
exit_status() {
  local deadline=$((SECONDS + 3))
  while [[ ! -f "$1/store.exit" ]] && ((SECONDS < deadline)); do
    sleep 0.02
  done
  cat "$1/store.exit" 2>/dev/null || echo unknown
}

cmd_stop() {
  local dir pid st
  dir="$(instance_dir "${1:-}")"
  if [[ "$(instance_target "$dir")" == kafka ]]; then
    "$KAFKA_HARNESS" stop "$dir"
    return
  fi
  pid="$(store_pid "$dir")"
  if [[ -z "$pid" ]]; then
    rm -f "$dir/store.pid"
    log "no store running from $dir"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || [[ -z "$(store_pid "$dir")" ]] || die "cannot signal pid $pid"
  if ! wait_gone "$dir" "$pid" "$STOP_TIMEOUT"; then
    kill -KILL "$pid" 2>/dev/null || :
    wait_gone "$dir" "$pid" 10 || :
    dump_log "$dir"
    die "store (pid $pid) did not exit within ${STOP_TIMEOUT}s of SIGTERM; sent SIGKILL"
  fi
  st="$(exit_status "$dir")"
  wait_port_closed "$(instance_get "$dir" port)" || log "port still open after the store exited"
  rm -f "$dir/store.pid"
  if [[ "$st" != 0 ]]; then
    dump_log "$dir"
    die "store (pid $pid) exited with status $st after SIGTERM (expected 0)"
  fi
  log "stopped store (pid $pid) from $dir"
}

cmd_kill() {
  local dir pid
  dir="$(instance_dir "${1:-}")"
  if [[ "$(instance_target "$dir")" == kafka ]]; then
    pid="$("$KAFKA_HARNESS" status "$dir" 2>/dev/null | sed -nE 's/^running pid=([0-9]+).*/\1/p')"
    [[ -n "$pid" ]] || {
      log "no broker running from $dir"
      return 0
    }
    kill -KILL "$pid" 2>/dev/null || :
    local deadline=$((SECONDS + 10))
    while "$KAFKA_HARNESS" status "$dir" >/dev/null 2>&1 && ((SECONDS < deadline)); do
      sleep 0.05
    done
    ! "$KAFKA_HARNESS" status "$dir" >/dev/null 2>&1 || die "broker pid $pid survived SIGKILL"
    # A multi-threaded process reads as a zombie while its other threads
    # still exit and hold the sockets: wait for the port to close too.
    wait_port_closed "$(instance_get "$dir" port)" || die "port still open after SIGKILL of pid $pid"
    rm -f "$dir/pid"
    log "killed broker (pid $pid) from $dir"
    return 0
  fi
  pid="$(store_pid "$dir")"
  if [[ -z "$pid" ]]; then
    rm -f "$dir/store.pid"
    log "no store running from $dir"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || :
  wait_gone "$dir" "$pid" 10 || die "store pid $pid survived SIGKILL for 10 s"
  # The supervisor's wait returns only once every thread is gone.
  [[ "$(exit_status "$dir")" != unknown ]] || log "no exit status recorded for pid $pid"
  wait_port_closed "$(instance_get "$dir" port)" || die "port still open after SIGKILL of pid $pid"
  rm -f "$dir/store.pid"
  log "killed store (pid $pid) from $dir"
}

cmd_status() {
  local dir pid
  dir="$(instance_dir "${1:-}")"
  if [[ "$(instance_target "$dir")" == kafka ]]; then
    "$KAFKA_HARNESS" status "$dir"
    return
  fi
  pid="$(store_pid "$dir")"
  if [[ -n "$pid" ]]; then
    printf 'running pid=%s port=%s dir=%s\n' "$pid" "$(instance_get "$dir" port)" "$dir"
  else
    printf 'stopped dir=%s\n' "$dir"
    return 1
  fi
}

shell_quote() {
  printf "'%s'" "${1//\'/\'\\\'\'}"
}

cmd_env() {
  local dir port
  dir="$(instance_dir "${1:-}")"
  port="$(instance_get "$dir" port)"
  printf 'export WEIR_STORE_BOOTSTRAP=%s\n' "127.0.0.1:${port:-$DEFAULT_PORT}"
  printf 'export WEIR_STORE_DIR=%s\n' "$(shell_quote "$dir")"
  printf 'export WEIR_STORE_DATA_DIR=%s\n' "$(shell_quote "$dir/data")"
  printf 'export WEIR_STORE_TARGET=%s\n' "$(instance_target "$dir")"
}

cmd_logs() {
  local dir
  dir="$(instance_dir "${1:-}")"
  if [[ "$(instance_target "$dir")" == kafka ]]; then
    "$KAFKA_HARNESS" logs "$dir"
    return
  fi
  [[ -f "$dir/store.log" ]] || die "no log at $dir/store.log"
  tail -n 100 "$dir/store.log"
}

main() {
  local cmd="${1:-help}"
  (($# == 0)) || shift
  case "$cmd" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  kill) cmd_kill "$@" ;;
  status) cmd_status "$@" ;;
  env) cmd_env "$@" ;;
  logs) cmd_logs "$@" ;;
  help | -h | --help) usage ;;
  *)
    usage >&2
    die "unknown command: $cmd"
    ;;
  esac
}

main "$@"
