#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Weir test harness: runs the Python uppercase UDF (examples/udf/python/
# uppercase/server.py, a real grpcio MessagingService server) in the
# background on loopback. Run `tests/harness/udf-python.sh help` for usage.
set -euo pipefail

HARNESS_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HARNESS_SRC
ROOT="$(cd "$HARNESS_SRC/../.." && pwd)"
readonly ROOT
readonly SERVER="$ROOT/examples/udf/python/uppercase/server.py"
readonly CLIENT="$HARNESS_SRC/udf_client.py"
# Debian's python3-grpcio / python3-protobuf live in the system interpreter,
# not in whatever `python3` is first on PATH (pyenv, venv, ...).
readonly PY="${WEIR_PYTHON:-/usr/bin/python3}"
readonly DEFAULT_PORT="${WEIR_UDF_PORT:-55554}"
readonly START_TIMEOUT="${WEIR_UDF_START_TIMEOUT:-30}"
readonly STOP_TIMEOUT="${WEIR_UDF_STOP_TIMEOUT:-15}"

log() { printf 'udf-python.sh: %s\n' "$*" >&2; }
die() { printf 'udf-python.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<EOF
Usage: tests/harness/udf-python.sh COMMAND [ARGS]

  install                 apt-get install python3-grpcio python3-protobuf unless
                          $PY can already import grpc and google.protobuf
  start [DIR] [--port N] [-- SERVER-ARGS...]
                          start the uppercase UDF on 127.0.0.1:N (default
                          $DEFAULT_PORT; 0 = any free port) and wait until a real
                          requestReply call answers; DIR/udf.log, DIR/pid, DIR/port
  stop [DIR]              SIGTERM (SIGKILL after ${STOP_TIMEOUT}s); safe to repeat
  status [DIR]            exit 0 and print pid/port if running
  target [DIR]            print 127.0.0.1:PORT of the running UDF
  pid [DIR]               print the server's pid
  logs [DIR]              print the last 100 lines of DIR/udf.log
  client ARGS...          run tests/harness/udf_client.py with $PY

DIR defaults to \${WEIR_HARNESS_DIR:-\$PWD/build/harness}/udf-python.
Environment: WEIR_UDF_PORT ($DEFAULT_PORT), WEIR_UDF_START_TIMEOUT (${START_TIMEOUT}s),
WEIR_UDF_STOP_TIMEOUT (${STOP_TIMEOUT}s), WEIR_PYTHON (/usr/bin/python3).
EOF
}

# ---------------------------------------------------------------- install --

have_grpc() {
  [[ -x "$PY" ]] && "$PY" -c 'import grpc, google.protobuf' >/dev/null 2>&1
}

apt_install() {
  local -a sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install $*"
    sudo_cmd=(sudo -n)
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
  log "installing Debian packages: $*"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$@" >&2
}

cmd_install() {
  if have_grpc; then
    log "grpcio $("$PY" -c 'import grpc; print(grpc.__version__)') and protobuf" \
      "$("$PY" -c 'import google.protobuf as p; print(p.__version__)') present for $PY"
    return 0
  fi
  apt_install python3-grpcio python3-protobuf
  have_grpc || die "$PY still cannot import grpc after installing python3-grpcio (set WEIR_PYTHON?)"
  log "installed python3-grpcio $("$PY" -c 'import grpc; print(grpc.__version__)')"
}

# ----------------------------------------------------------------- server --

instance_dir() {
  realpath -m -- "${1:-${WEIR_HARNESS_DIR:-$PWD/build/harness}/udf-python}"
}

# pid of the server started from DIR if it is alive (and really is our
# server.py), else "".
server_pid() {
  local dir="$1" pid state
  [[ -f "$dir/pid" ]] || return 0
  pid="$(cat "$dir/pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  [[ -r "/proc/$pid/cmdline" ]] || return 0
  # A zombie (exited, not yet reaped) counts as stopped.
  state="$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$pid/stat" 2>/dev/null)" || return 0
  [[ "$state" != Z ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$SERVER" || return 0
  printf '%s\n' "$pid"
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

dump_log() {
  local dir="$1"
  [[ -s "$dir/udf.log" ]] || { log "no output in $dir/udf.log"; return 0; }
  printf -- '---- last 30 lines of %s ----\n' "$dir/udf.log" >&2
  tail -n 30 "$dir/udf.log" >&2
}

# Port the server reported in its {"msg":"udf ready","port":N} line.
logged_port() {
  sed -n 's/.*"msg":"udf ready","port":\([0-9][0-9]*\).*/\1/p' "$1/udf.log" 2>/dev/null | tail -n 1
}

# Ready = the server logged "udf ready" and answers a real requestReply
# ("ping" -> "PING") on its port.
wait_ready() {
  local dir="$1" pid="$2" deadline=$((SECONDS + START_TIMEOUT)) port=""
  while ((SECONDS < deadline)); do
    if [[ -z "$(server_pid "$dir")" ]]; then
      log "UDF server (pid $pid) exited during start-up"
      dump_log "$dir"
      return 1
    fi
    [[ -n "$port" ]] || port="$(logged_port "$dir")"
    if [[ -n "$port" ]] &&
      "$PY" "$CLIENT" --target "127.0.0.1:$port" --timeout 2 ping >"$dir/ready-check.log" 2>&1; then
      printf '%s\n' "$port" >"$dir/port"
      return 0
    fi
    sleep 0.1
  done
  log "UDF did not answer requestReply within ${START_TIMEOUT}s (dir $dir, port ${port:-unknown})"
  [[ ! -s "$dir/ready-check.log" ]] || sed 's/^/ready-check: /' "$dir/ready-check.log" >&2
  dump_log "$dir"
  return 1
}

cmd_start() {
  local dir="" port="$DEFAULT_PORT" pid
  local -a extra=()
  while (($#)); do
    case "$1" in
    --port)
      (($# >= 2)) || die "--port needs a value"
      port="$2"
      shift 2
      ;;
    --port=*)
      port="${1#--port=}"
      shift
      ;;
    --)
      shift
      extra=("$@")
      break
      ;;
    -*) die "start: unknown option $1 (server options go after --)" ;;
    *)
      [[ -z "$dir" ]] || die "start: more than one DIR given"
      dir="$1"
      shift
      ;;
    esac
  done
  dir="$(instance_dir "$dir")"
  if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port > 65535)); then
    die "--port must be a number 0..65535"
  fi
  pid="$(server_pid "$dir")"
  [[ -z "$pid" ]] || die "a UDF server is already running from $dir (pid $pid); run: $0 stop $dir"
  if ((port != 0)) && port_in_use "$port"; then
    die "port 127.0.0.1:$port is already in use (use --port N, or --port 0 for any free port)"
  fi
  have_grpc || cmd_install

  mkdir -p "$dir"
  rm -f "$dir/port" "$dir/ready-check.log"
  [[ ! -f "$dir/udf.log" ]] || mv -f "$dir/udf.log" "$dir/udf.log.prev"
  local t0=$SECONDS
  # -u: unbuffered, so the ready line reaches udf.log at once.
  "$PY" -u "$SERVER" --host 127.0.0.1 --port "$port" "${extra[@]}" \
    </dev/null >"$dir/udf.log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$dir/pid"
  if ! wait_ready "$dir" "$pid"; then
    cmd_stop "$dir" >/dev/null 2>&1 || log "could not stop the failed UDF server (pid $pid)"
    die "UDF server failed to start (see $dir/udf.log)"
  fi
  log "UDF ready on 127.0.0.1:$(cat "$dir/port") (pid $pid, $((SECONDS - t0))s, log $dir/udf.log)"
}

# signal_server SIG DIR PID: a failed kill is only fine if the server has
# exited by itself in the meantime.
signal_server() {
  if ! kill "-$1" "$3" 2>/dev/null && [[ -n "$(server_pid "$2")" ]]; then
    die "cannot send SIG$1 to UDF server pid $3"
  fi
}

wait_gone() {
  local dir="$1" deadline=$((SECONDS + $2))
  while [[ -n "$(server_pid "$dir")" ]] && ((SECONDS < deadline)); do
    sleep 0.1
  done
  [[ -z "$(server_pid "$dir")" ]]
}

cmd_stop() {
  local dir pid
  dir="$(instance_dir "${1:-}")"
  pid="$(server_pid "$dir")"
  if [[ -z "$pid" ]]; then
    rm -f "$dir/pid" "$dir/port"
    log "no UDF server running from $dir"
    return 0
  fi
  signal_server TERM "$dir" "$pid"
  if ! wait_gone "$dir" "$STOP_TIMEOUT"; then
    log "UDF server (pid $pid) still running after ${STOP_TIMEOUT}s; sending SIGKILL"
    signal_server KILL "$dir" "$pid"
    wait_gone "$dir" 10 || die "could not kill UDF server pid $pid"
  fi
  rm -f "$dir/pid" "$dir/port"
  log "stopped UDF server (pid $pid) from $dir"
}

cmd_status() {
  local dir pid
  dir="$(instance_dir "${1:-}")"
  pid="$(server_pid "$dir")"
  if [[ -n "$pid" ]]; then
    printf 'running pid=%s port=%s dir=%s\n' "$pid" "$(cat "$dir/port" 2>/dev/null || echo '?')" "$dir"
  else
    printf 'stopped dir=%s\n' "$dir"
    return 1
  fi
}

cmd_target() {
  local dir
  dir="$(instance_dir "${1:-}")"
  [[ -n "$(server_pid "$dir")" && -s "$dir/port" ]] || die "no UDF server running from $dir"
  printf '127.0.0.1:%s\n' "$(cat "$dir/port")"
}

cmd_pid() {
  local dir pid
  dir="$(instance_dir "${1:-}")"
  pid="$(server_pid "$dir")"
  [[ -n "$pid" ]] || die "no UDF server running from $dir"
  printf '%s\n' "$pid"
}

cmd_logs() {
  local dir
  dir="$(instance_dir "${1:-}")"
  [[ -f "$dir/udf.log" ]] || die "no log at $dir/udf.log"
  tail -n 100 "$dir/udf.log"
}

main() {
  local cmd="${1:-help}"
  (($# == 0)) || shift
  case "$cmd" in
  install) cmd_install ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  target) cmd_target "$@" ;;
  pid) cmd_pid "$@" ;;
  logs) cmd_logs "$@" ;;
  client) exec "$PY" "$CLIENT" "$@" ;;
  help | -h | --help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
  esac
}

main "$@"
