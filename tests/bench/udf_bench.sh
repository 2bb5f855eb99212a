#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# UDF channel benchmark (docs/internals/udf.md, "Benchmark"): the dataplane's
# UDF client (dp_udf, via tests/integration/udf_driver bench) against the C
# uppercase UDF (examples/udf/c, weir_udf SDK) and the Python grpcio one
# (examples/udf/python/uppercase.py), side by side in one run:
#   unary    requestReply, 1 in flight (latency) and 64 in flight (rate)
#   bistream the same records pipelined on one biStream stream, 1 and 256
#            in flight (256: two streams)
#   percall  the baseline: a new client (new TCP + HTTP/2 connection, i.e. a
#            new gRPC channel) per call, what streaming-runtimes did; the same
#            client code, created, used for one call, closed
# Figures per run: wall rate, records per client CPU-second (user + sys of
# the driver process: "per core"), and the call round trip p50/p99 at 1 in
# flight. Latency is also measured with client and UDF pinned (taskset) to
# one core and to two cores, beside a plain TCP ping-pong of 100 bytes
# between the same two places (udf_driver pingpong/pingserve): added
# latency = call round trip - that ping-pong (the platform's cost of two
# processes waking each other), the UDF's own work (< 1 us) included.
# Each configuration runs 3 times; the median run (by rate) is kept.
# Reports, never judges: exit 0 when it ran, 1 when something broke.
# Needs a RelWithDebInfo build in WEIR_BUILD_DIR (tests/udf_driver,
# tests/udf_uppercase_c). Ports 19960 (C UDF), 19961 (Python UDF), 19962-19965
# (pinned C UDF and ping servers).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${WEIR_BUILD_DIR:-}"
if [[ -z "$BUILD" ]]; then
  echo "udf_bench: set WEIR_BUILD_DIR to a RelWithDebInfo build" >&2
  exit 77
fi
BUILD="$(realpath -m -- "$BUILD")"
readonly BUILD
OUT="$(realpath -m -- "${WEIR_BENCH_OUT:-$BUILD/bench}")"
readonly OUT
readonly DRIVER="$BUILD/tests/udf_driver" CUDF="$BUILD/tests/udf_uppercase_c"
readonly PY="${WEIR_PYTHON:-/usr/bin/python3}"
readonly PYUDF="$ROOT/examples/udf/python/uppercase.py"
readonly C_PORT=19960 PY_PORT=19961
readonly REPEAT="${WEIR_UDF_BENCH_REPEAT:-3}"

log() { printf 'udf_bench: %s\n' "$*" >&2; }
[[ -x "$DRIVER" && -x "$CUDF" ]] || { log "skip: build udf_driver and udf_uppercase_c"; exit 77; }
"$PY" -c 'import grpc' 2>/dev/null || { log "skip: python3-grpcio missing"; exit 77; }

mkdir -p "$OUT"
work="$(mktemp -d)"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    { kill "$p" && wait "$p"; } 2>/dev/null || :
  done
  rm -rf "$work"
}
trap cleanup EXIT

wait_ready() { # LOG PID
  local end=$((SECONDS + 30))
  until grep -q '"udf ready"' "$1" 2>/dev/null; do
    kill -0 "$2" 2>/dev/null || { cat "$1" >&2; return 1; }
    ((SECONDS < end)) || return 1
    sleep 0.1
  done
}

start() { # NAME CMD...: in the background until "udf ready"
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  wait_ready "$work/$name.log" "$!" || { log "$name did not start"; exit 1; }
}
start c "$CUDF" --port "$C_PORT" --udf-name python-uppercase
start py "$PY" -u "$PYUDF" --port "$PY_PORT" --max-workers 16
CROSS=$(($(nproc) > 1 ? 1 : 0))
start c-pin0 taskset -c 0 "$CUDF" --port 19962 --udf-name python-uppercase
start ping-pin0 taskset -c 0 "$DRIVER" pingserve 19963
start c-pin1 taskset -c "$CROSS" "$CUDF" --port 19964 --udf-name python-uppercase
start ping-pin1 taskset -c "$CROSS" "$DRIVER" pingserve 19965

raw="$OUT/udf_bench.raw"
: >"$raw"
run() { # UDF PORT N INFLIGHT MODE: the median of REPEAT runs, by wall rate
  local udf=$1 port=$2 n=$3 inflight=$4 mode=$5 i line
  local -a cmd=("$DRIVER" bench 127.0.0.1 "$port" "$n" "$inflight" "$mode")
  [[ "$mode" != tcp ]] || cmd=("$DRIVER" pingpong 127.0.0.1 "$port" "$n" 100)
  [[ -z "${PIN:-}" ]] || cmd=(taskset -c 0 "${cmd[@]}")
  : >"$work/runs"
  for ((i = 0; i < REPEAT; i++)); do
    line="$("${cmd[@]}")" || {
      log "run failed: $udf $mode $inflight"
      return 1
    }
    echo "udf=$udf $line" >>"$raw"
    echo "udf=$udf $line" >>"$work/runs"
  done
  sort -t= -k1,1 "$work/runs" | awk '{ for (f = 1; f <= NF; f++) if ($f ~ /^wall_rps=/) { split($f, a, "="); print a[2], $0 } }' |
    sort -n | awk -v m=$(((REPEAT + 1) / 2)) 'NR == m { $1 = ""; sub(/^ /, ""); print }'
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
log "load before: $load_before ($(nproc) cores)"
{
  run c "$C_PORT" 20000 1 unary
  run c "$C_PORT" 200000 64 unary
  run c "$C_PORT" 20000 1 bistream
  run c "$C_PORT" 500000 256 bistream
  run c "$C_PORT" 3000 1 percall
  run python "$PY_PORT" 3000 1 unary
  run python "$PY_PORT" 10000 64 unary
  run python "$PY_PORT" 3000 1 bistream
  run python "$PY_PORT" 20000 256 bistream
  run python "$PY_PORT" 1000 1 percall
  PIN=1
  run c-1core 19963 20000 1 tcp
  run c-1core 19962 20000 1 unary
  run c-1core 19962 20000 1 bistream
  run c-2cores 19965 20000 1 tcp
  run c-2cores 19964 20000 1 unary
  run c-2cores 19964 20000 1 bistream
  unset PIN
} >"$work/median"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

"$PY" - "$work/median" "$load_before" "$load_after" "$(nproc)" <<'EOF' | tee "$OUT/udf_bench.txt"
import sys
rows = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
    rows[(kv["udf"], kv["mode"], int(kv["inflight"]))] = kv
print("UDF channel benchmark (median of runs; load %s before, %s after; %s cores)" %
      (sys.argv[2], sys.argv[3], sys.argv[4]))
print("%-8s %-9s %8s %10s %14s %12s %9s %9s" % ("udf", "mode", "inflight", "wall rec/s",
                                                  "rec/s per core", "cpu us/rec", "p50 us", "p99 us"))
for (u, m, i), kv in rows.items():
    print("%-8s %-9s %8d %10.0f %14.0f %12.2f %9.1f %9.1f" % (
        u, m, i, float(kv["wall_rps"]), float(kv["rps_per_core"]),
        float(kv["cpu_us_per_call"]), float(kv["p50_us"]), float(kv["p99_us"])))
print()
def r(u, m, i, f):
    return float(rows[(u, m, i)][f])
for u, bs in (("c", 256), ("python", 256)):
    base_core, base_wall = r(u, "percall", 1, "rps_per_core"), r(u, "percall", 1, "wall_rps")
    print("%s: vs the per-call-channel baseline, per core: unary/64 %.1fx, biStream/%d %.1fx; "
          "wall: unary/64 %.1fx, biStream/%d %.1fx" % (
              u, r(u, "unary", 64, "rps_per_core") / base_core, bs,
              r(u, "bistream", bs, "rps_per_core") / base_core,
              r(u, "unary", 64, "wall_rps") / base_wall, bs,
              r(u, "bistream", bs, "wall_rps") / base_wall))
    print("%s: round trip at 1 in flight, p50/p99: unary %.1f/%.1f us, biStream %.1f/%.1f us, "
          "per-call channel %.1f/%.1f us" % (
              u, r(u, "unary", 1, "p50_us"), r(u, "unary", 1, "p99_us"),
              r(u, "bistream", 1, "p50_us"), r(u, "bistream", 1, "p99_us"),
              r(u, "percall", 1, "p50_us"), r(u, "percall", 1, "p99_us")))
for u, what in (("c-1core", "client and C UDF on one core"), ("c-2cores", "on two cores")):
    t = r(u, "tcp", 1, "p50_us")
    print("added latency per call, %s (call p50 - TCP ping-pong p50 %.1f us): unary %.1f us, "
          "biStream %.1f us; p99: unary %.1f us, TCP ping-pong %.1f us" % (
              what, t, r(u, "unary", 1, "p50_us") - t, r(u, "bistream", 1, "p50_us") - t,
              r(u, "unary", 1, "p99_us"), r(u, "tcp", 1, "p99_us")))
c_core = r("c", "bistream", 256, "rps_per_core")
added = max(r(u, "unary", 1, "p50_us") - r(u, "tcp", 1, "p50_us") for u in ("c-1core", "c-2cores"))
print("goals: >= 100K rec/s per core batched to the C UDF: %.0f (%s); <= 50 us added per unary "
      "call (C UDF, p50 over the TCP ping-pong, worse placement): %.1f (%s); >= 20x the baseline "
      "per core: unary %.1fx, biStream %.1fx" % (
          c_core, "met" if c_core >= 100000 else "NOT met", added,
          "met" if added <= 50 else "NOT met",
          r("c", "unary", 64, "rps_per_core") / r("c", "percall", 1, "rps_per_core"),
          c_core / r("c", "percall", 1, "rps_per_core")))
EOF
log "report: $OUT/udf_bench.txt (raw runs: $raw)"
