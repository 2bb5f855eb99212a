#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Nexmark in-process benchmark: runs tests/bench/nexmark_inproc (dp_pipe with
# a blackhole sink, events from dp_nexmark, no broker) over the query specs in
# tests/bench/nexmark/ and reports events/s per core against Weir's goals and
# Flink's published per-core figures. Builds nothing: needs a RelWithDebInfo
# build in WEIR_BUILD_DIR. Reports, never judges: exit 0 when it ran, 1 when
# something broke, 64 on bad usage. See docs/internals/nexmark-bench.md.
#
# Env: WEIR_BUILD_DIR (required), WEIR_BENCH_OUT (default $WEIR_BUILD_DIR/bench),
#      WEIR_NEXMARK_EVENTS (default 10000000), WEIR_NEXMARK_QUERIES
#      (default "q0 q1 q2 q5 q7 q8"), WEIR_NEXMARK_REPEAT (default 1; best run kept).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
BUILD="${WEIR_BUILD_DIR:-}"
if [[ -z "$BUILD" ]]; then
  echo "nexmark_bench: set WEIR_BUILD_DIR to a RelWithDebInfo build" >&2
  exit 64
fi
BUILD="$(realpath -m -- "$BUILD")"
readonly BUILD
OUT="$(realpath -m -- "${WEIR_BENCH_OUT:-$BUILD/bench}")"
readonly OUT
readonly DRIVER="$BUILD/tests/nexmark_inproc"
readonly EVENTS="${WEIR_NEXMARK_EVENTS:-10000000}"
readonly QUERIES="${WEIR_NEXMARK_QUERIES:-q0 q1 q2 q5 q7 q8}"
readonly REPEAT="${WEIR_NEXMARK_REPEAT:-1}"

log() { echo "nexmark_bench: $*" >&2; }

if [[ ! -x "$DRIVER" ]]; then
  log "$DRIVER not found (build the nexmark_inproc target)"
  exit 1
fi
bt="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)"
if [[ "$bt" != RelWithDebInfo && "$bt" != Release ]]; then
  log "warning: $BUILD is a '${bt:-unknown}' build; numbers are meant for RelWithDebInfo"
fi
mkdir -p "$OUT"
RAW="$(mktemp)"
trap 'rm -f "$RAW"' EXIT

for q in $QUERIES; do
  spec="$ROOT/tests/bench/nexmark/$q.json"
  for ((r = 0; r < REPEAT; r++)); do
    log "$q: $EVENTS events (run $((r + 1))/$REPEAT)"
    if ! "$DRIVER" "$spec" "$EVENTS" "$q" >>"$RAW"; then
      log "$q: driver failed"
      exit 1
    fi
  done
done

LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$RAW" "$OUT" "$bt" "$LOAD" "$(nproc)" <<'PY'
import json, sys
raw, out, bt, load, nproc = sys.argv[1:]
goal = {"q0": 2e6, "q1": 2e6, "q2": 2e6, "q5": 5e5, "q7": 5e5, "q8": 1e6}
flink = {"q0": 155e3, "q1": 158e3, "q2": 175e3, "q5": 22e3, "q7": 12e3, "q8": 146e3}
best = {}
for line in open(raw):
    r = json.loads(line)
    q = r["query"]
    if q not in best or r["events_per_cpu_s"] > best[q]["events_per_cpu_s"]:
        best[q] = r
rows = []
for q, r in best.items():
    r = dict(r)
    r["goal_per_core"] = goal.get(q)
    r["flink_per_core"] = flink.get(q)
    r["ratio_goal"] = r["events_per_cpu_s"] / goal[q] if q in goal else None
    r["ratio_flink"] = r["events_per_cpu_s"] / flink[q] if q in flink else None
    rows.append(r)
doc = {"build_type": bt, "loadavg_after": load, "nproc": int(nproc),
       "note": "in-process, blackhole sink, generator included, single thread; "
               "per core = events / process CPU seconds",
       "results": rows}
with open(out + "/nexmark_bench.json", "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
lines = ["Nexmark in-process (dp_pipe, blackhole sink, generator included), build %s, "
         "%s CPUs, loadavg after run %s" % (bt or "?", nproc, load),
         "%-4s %10s %8s %12s %12s %10s %8s %8s %10s %8s" % (
             "q", "events", "wall_s", "ev/s wall", "ev/s/core", "goal", "x goal",
             "flink", "x flink", "out")]
for r in rows:
    lines.append("%-4s %10d %8.2f %12.0f %12.0f %10.0f %8.2f %8.0f %10.1f %8d" % (
        r["query"], r["events"], r["seconds"], r["events_per_s"], r["events_per_cpu_s"],
        r["goal_per_core"], r["ratio_goal"], r["flink_per_core"], r["ratio_flink"],
        r["records_out"]))
text = "\n".join(lines) + "\n"
with open(out + "/nexmark_bench.txt", "w") as f:
    f.write(text)
sys.stdout.write(text)
PY
log "wrote $OUT/nexmark_bench.json and $OUT/nexmark_bench.txt"
