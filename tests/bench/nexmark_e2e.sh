#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Nexmark end to end through the Weir store: one store (tests/harness/store.sh),
# the topic `nexmark` preloaded with N events by tests/nexmark_gen (record
# timestamp = event dateTime), then for each query the processor
# (`weir-dataplane --role processor`) on a copy of tests/bench/nexmark/qN.json
# pointed at the store, run until it has pushed all N events, then SIGTERM.
# Measures events/s (wall) and events per processor CPU-second (utime+stime of
# the processor, all its threads, from /proc), and the store's CPU meanwhile.
# Builds nothing: needs a RelWithDebInfo build in WEIR_BUILD_DIR (weir-dataplane,
# tests/nexmark_gen, tests/kbench). Reports, never judges: exit 0 when it ran,
# 1 when something broke, 64 on bad usage. See docs/internals/nexmark-bench.md.
#
# Env: WEIR_BUILD_DIR (required), WEIR_BENCH_OUT (default $WEIR_BUILD_DIR/bench),
#      WEIR_BENCH_WORK (default $WEIR_BENCH_OUT/work; store data and checkpoints
#      under WORK/nexmark-e2e), WEIR_NEXMARK_EVENTS (default 2000000),
#      WEIR_NEXMARK_QUERIES (default "q0 q1 q2 q5 q7 q8"),
#      WEIR_NEXMARK_PARTITIONS (default: the specs' input partition count),
#      WEIR_NEXMARK_E2E_PORT (default 19650: store Kafka port; +1 store metrics,
#      +2 processor metrics), WEIR_NEXMARK_STORE_WORKERS (default nproc),
#      WEIR_NEXMARK_QUERY_TIMEOUT (default 900 s per query),
#      WEIR_NEXMARK_CHECKPOINT_MS (default 10000), WEIR_BENCH_KEEP=1 keeps data,
#      WEIR_NEXMARK_PERF_DIR (set: `perf record -g` attached to the processor
#      over the measured span, into DIR/qN.perf.data; perf's overhead is then
#      in the figures), WEIR_NEXMARK_PERF_ARGS (default "-g"; e.g.
#      "--call-graph dwarf -F 499" to see through libraries without frame
#      pointers).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly STORE_SH="$ROOT/tests/harness/store.sh"
readonly SPECS="$ROOT/tests/bench/nexmark"

BUILD="${WEIR_BUILD_DIR:-}"
if [[ -z "$BUILD" ]]; then
  echo "nexmark_e2e: set WEIR_BUILD_DIR to a RelWithDebInfo build" >&2
  exit 64
fi
BUILD="$(realpath -m -- "$BUILD")"
readonly BUILD
OUT="$(realpath -m -- "${WEIR_BENCH_OUT:-$BUILD/bench}")"
readonly OUT
WORK="$(realpath -m -- "${WEIR_BENCH_WORK:-$OUT/work}")/nexmark-e2e"
readonly WORK
readonly RESULTS="$WORK/results"
readonly EVENTS="${WEIR_NEXMARK_EVENTS:-2000000}"
readonly QUERIES="${WEIR_NEXMARK_QUERIES:-q0 q1 q2 q5 q7 q8}"
readonly PORT="${WEIR_NEXMARK_E2E_PORT:-19650}"
readonly STORE_HTTP=$((PORT + 1))
readonly PROC_HTTP=$((PORT + 2))
readonly STORE_WORKERS="${WEIR_NEXMARK_STORE_WORKERS:-$(nproc)}"
readonly QUERY_TIMEOUT="${WEIR_NEXMARK_QUERY_TIMEOUT:-900}"
readonly CKPT_MS="${WEIR_NEXMARK_CHECKPOINT_MS:-10000}"
readonly KEEP_DATA="${WEIR_BENCH_KEEP:-0}"
PERF_DIR="${WEIR_NEXMARK_PERF_DIR:-}"
[[ -z "$PERF_DIR" ]] || PERF_DIR="$(realpath -m -- "$PERF_DIR")"
readonly PERF_DIR
readonly PERF_ARGS="${WEIR_NEXMARK_PERF_ARGS:--g}"
readonly DP="$BUILD/dataplane/weir-dataplane"
readonly GEN="$BUILD/tests/nexmark_gen"
readonly KBENCH="$BUILD/tests/kbench"
readonly BOOT="127.0.0.1:$PORT"
CLK_TCK="$(getconf CLK_TCK)"
readonly CLK_TCK

log() { printf 'nexmark_e2e: %s\n' "$*" >&2; }
die() {
  printf 'nexmark_e2e: error: %s\n' "$*" >&2
  exit 1
}

[[ "$EVENTS" =~ ^[1-9][0-9]*$ ]] || {
  log "WEIR_NEXMARK_EVENTS must be a positive integer"
  exit 64
}

# ------------------------------------------------------------- cleanup --

STORE_UP=0
PROC_PID=""
PERF_PID=""

perf_stop() {
  [[ -n "$PERF_PID" ]] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true # perf exits 130 on SIGINT
  PERF_PID=""
}

stop_proc_hard() {
  perf_stop
  [[ -n "$PROC_PID" ]] || return 0
  kill -KILL "$PROC_PID" 2>/dev/null || true
  wait "$PROC_PID" 2>/dev/null || true
  PROC_PID=""
}

cleanup() {
  local rc=$?
  perf_stop
  stop_proc_hard
  if ((STORE_UP)); then
    STORE_UP=0
    bash "$STORE_SH" stop "$WORK/store" >&2 2>/dev/null ||
      bash "$STORE_SH" kill "$WORK/store" >/dev/null 2>&1 || true
  fi
  if [[ "$KEEP_DATA" != 1 && -d "$WORK" ]]; then
    rm -rf "$WORK/store/data" "$WORK/ckpt"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ----------------------------------------------------------- helpers --

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# utime+stime of PID in clock ticks (all threads, children excluded).
cpu_ticks() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || {
    echo 0
    return
  }
  stat="${stat##*) }"
  local -a f
  read -r -a f <<<"$stat"
  echo $((f[11] + f[12]))
}

now_s() { date +%s.%N; }

# metric FILE NAME: the sum of every series of family NAME (any labels).
metric() {
  awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f\n", s + 0 }' "$1"
}

scrape() { # scrape URL FILE
  curl -fsS --max-time 3 "$1" >"$2.tmp" 2>/dev/null && mv -f "$2.tmp" "$2"
}

# ----------------------------------------------------------- preflight --

for b in "$DP" "$GEN" "$KBENCH"; do
  [[ -x "$b" ]] || die "$b not built (build weir-dataplane, nexmark_gen and kbench in $BUILD)"
done
command -v curl >/dev/null || die "curl is needed to read /metrics"
command -v python3 >/dev/null || die "python3 is needed to write the specs and the report"
if [[ -n "$PERF_DIR" ]]; then
  command -v perf >/dev/null || die "WEIR_NEXMARK_PERF_DIR is set but perf is not installed"
  mkdir -p "$PERF_DIR"
fi
BUILD_TYPE="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)"
if [[ "$BUILD_TYPE" != RelWithDebInfo && "$BUILD_TYPE" != Release ]]; then
  log "warning: $BUILD is a '${BUILD_TYPE:-unknown}' build; numbers are meant for RelWithDebInfo"
fi
if grep -qE '^WEIR_(ASAN|UBSAN|TSAN):BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  log "warning: $BUILD has sanitizers on; numbers will be meaningless"
fi
for q in $QUERIES; do
  [[ -f "$SPECS/$q.json" ]] || die "no spec $SPECS/$q.json"
done
# The input partition count every spec declares; the topic must match it.
# shellcheck disable=SC2086 # QUERIES is a list
SPEC_PARTS="$(python3 - "$SPECS" $QUERIES <<'PY'
import json, sys
d = sys.argv[1]
counts = set()
for q in sys.argv[2:]:
    s = json.load(open("%s/%s.json" % (d, q)))
    for i in s["inputs"]:
        counts.add(int(i.get("partitions", {}).get("count", 0)))
print(" ".join(str(c) for c in sorted(counts)))
PY
)"
PARTITIONS="${WEIR_NEXMARK_PARTITIONS:-}"
if [[ -z "$PARTITIONS" ]]; then
  [[ "$SPEC_PARTS" =~ ^[1-9][0-9]*$ ]] ||
    die "the specs declare input partition counts '$SPEC_PARTS'; set WEIR_NEXMARK_PARTITIONS"
  PARTITIONS="$SPEC_PARTS"
fi
readonly PARTITIONS
for p in "$PORT" "$STORE_HTTP" "$PROC_HTTP"; do
  ! port_open "$p" || die "port $p is in use (set WEIR_NEXMARK_E2E_PORT)"
done

# ------------------------------------------------------------- setup --

rm -rf "$WORK"
mkdir -p "$WORK/store" "$WORK/ckpt" "$WORK/specs" "$RESULTS" "$OUT"
date -u +%Y-%m-%dT%H:%M:%SZ >"$RESULTS/date"
T_START=$SECONDS

WEIR_STORE_BIN="$DP" WEIR_STORE_TARGET=weir WEIR_STORE_START_TIMEOUT=60 \
  bash "$STORE_SH" start "$WORK/store" "$PORT" "$STORE_WORKERS" --http-port "$STORE_HTTP" >&2 ||
  die "the store did not start (log: $WORK/store/store.log)"
STORE_UP=1
STORE_PID="$(cat "$WORK/store/store.pid")"
readonly STORE_PID

# Output topics: one per spec output, 1 partition, no time retention (the
# records carry 2015 event times).
# shellcheck disable=SC2086 # QUERIES is a list
OUT_TOPICS="$(python3 - "$SPECS" $QUERIES <<'PY'
import json, sys
d = sys.argv[1]
ts = []
for q in sys.argv[2:]:
    for o in json.load(open("%s/%s.json" % (d, q)))["outputs"]:
        if o["topic"] not in ts:
            ts.append(o["topic"])
print(" ".join(ts))
PY
)"
for t in $OUT_TOPICS; do
  timeout 60 "$KBENCH" create -b "$BOOT" -t "$t" --partitions 1 -c retention.ms=-1 \
    --if-not-exists >"$RESULTS/create.$t.json" 2>"$RESULTS/create.$t.err" ||
    die "cannot create topic $t ($(tail -n 3 "$RESULTS/create.$t.err"))"
done

log "preloading $EVENTS events into nexmark ($PARTITIONS partitions)"
pre_store0="$(cpu_ticks "$STORE_PID")"
t0="$(now_s)"
timeout "$((QUERY_TIMEOUT + 60))" "$GEN" --bootstrap "$BOOT" --topic nexmark --events "$EVENTS" \
  --partitions "$PARTITIONS" --timeout-s 120 >"$RESULTS/gen.out" 2>"$RESULTS/gen.err" || {
  tail -n 20 "$RESULTS/gen.err" >&2
  die "nexmark_gen failed"
}
t1="$(now_s)"
pre_store1="$(cpu_ticks "$STORE_PID")"
python3 - "$t0" "$t1" "$pre_store0" "$pre_store1" "$CLK_TCK" "$EVENTS" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" >"$RESULTS/preload.json" <<'PY'
import json, sys
t0, t1, s0, s1, tck, n, load = sys.argv[1:]
w = float(t1) - float(t0)
print(json.dumps({"events": int(n), "wall_s": round(w, 3),
                  "events_per_s": round(int(n) / w), "store_cpu_s": round((int(s1) - int(s0)) / int(tck), 3),
                  "loadavg": load}))
PY
log "preload: $(cat "$RESULTS/preload.json")"

# ------------------------------------------------------------ queries --

write_spec() { # write_spec Q OUTFILE
  python3 - "$SPECS/$1.json" "$2" "$BOOT" "$WORK/ckpt/$1" "$CKPT_MS" <<'PY'
import json, sys
src, dst, boot, ckpt, ms = sys.argv[1:]
s = json.load(open(src))
for io in s.get("inputs", []) + s.get("outputs", []):
    io["cluster"]["bootstrap"] = boot
    if "partitions" not in io and io in s.get("outputs", []):
        io["partitions"] = 1
if "deadLetter" in s and "cluster" in s["deadLetter"]:
    s["deadLetter"]["cluster"]["bootstrap"] = boot
for i in s["inputs"]:
    i["startOffset"] = "earliest"
s["checkpoint"] = {"dir": ckpt, "intervalMs": int(ms)}
s.pop("http", None)
json.dump(s, open(dst, "w"), indent=1)
PY
}

# run_query Q: writes RESULTS/Q.json, or returns 1.
run_query() {
  local q="$1" spec="$WORK/specs/$1.json" qlog="$RESULTS/$1.proc.log"
  local url="http://127.0.0.1:$PROC_HTTP" m="$RESULTS/$1.metrics"
  write_spec "$q" "$spec"
  mkdir -p "$WORK/ckpt/$q"
  ! port_open "$PROC_HTTP" || {
    log "$q: port $PROC_HTTP is in use"
    return 1
  }
  local t_launch
  t_launch="$(now_s)"
  "$DP" --role processor --spec "$spec" --http-port "$PROC_HTTP" \
    --checkpoint-dir "$WORK/ckpt/$q" </dev/null >"$qlog" 2>&1 &
  PROC_PID=$!
  # Ready: inputs assigned.
  local deadline=$((SECONDS + 90))
  until curl -fsS --max-time 2 "$url/readyz" >/dev/null 2>&1; do
    if ! kill -0 "$PROC_PID" 2>/dev/null; then
      log "$q: processor exited during start-up"
      tail -n 20 "$qlog" >&2
      wait "$PROC_PID" 2>/dev/null || true
      PROC_PID=""
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$q: processor not ready after 90 s"
      tail -n 20 "$qlog" >&2
      stop_proc_hard
      return 1
    fi
    sleep 0.05
  done
  local t_ready c0 s0 load0
  t_ready="$(now_s)"
  c0="$(cpu_ticks "$PROC_PID")"
  s0="$(cpu_ticks "$STORE_PID")"
  load0="$(cut -d' ' -f1-3 /proc/loadavg)"
  if [[ -n "$PERF_DIR" ]]; then
    # shellcheck disable=SC2086 # PERF_ARGS is a list of flags
    perf record $PERF_ARGS -p "$PROC_PID" -o "$PERF_DIR/$q.perf.data" 2>"$PERF_DIR/$q.perf.err" &
    PERF_PID=$!
  fi
  # Run until every event has been pushed (records_in reaches EVENTS).
  local in=0 t_done c1 s1
  deadline=$((SECONDS + QUERY_TIMEOUT))
  while :; do
    if ! kill -0 "$PROC_PID" 2>/dev/null; then
      log "$q: processor exited while running"
      perf_stop
      tail -n 20 "$qlog" >&2
      wait "$PROC_PID" 2>/dev/null || true
      PROC_PID=""
      return 1
    fi
    if scrape "$url/metrics" "$m"; then
      in="$(metric "$m" weir_processor_records_in_total)"
      ((in < EVENTS)) || break
    fi
    if ((SECONDS >= deadline)); then
      log "$q: only $in of $EVENTS records in after ${QUERY_TIMEOUT}s"
      tail -n 20 "$qlog" >&2
      stop_proc_hard
      return 1
    fi
    sleep 0.1
  done
  t_done="$(now_s)"
  c1="$(cpu_ticks "$PROC_PID")"
  s1="$(cpu_ticks "$STORE_PID")"
  perf_stop
  cp "$m" "$RESULTS/$q.metrics.done"
  # Drain: outputs still in the producer. Wait (at most 10 s) until the
  # output count stops moving, then take the final figures.
  local prev=-1 cur stable=0
  deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)); do
    sleep 0.2
    scrape "$url/metrics" "$m" || continue
    cur="$(metric "$m" weir_processor_records_out_total)"
    if [[ "$cur" == "$prev" ]]; then
      stable=$((stable + 1))
      ((stable < 3)) || break
    else
      stable=0
    fi
    prev="$cur"
  done
  local t_drain c2 s2
  t_drain="$(now_s)"
  c2="$(cpu_ticks "$PROC_PID")"
  s2="$(cpu_ticks "$STORE_PID")"
  local load1
  load1="$(cut -d' ' -f1-3 /proc/loadavg)"
  # Stop: SIGTERM, final checkpoint, exit 0 expected.
  kill -TERM "$PROC_PID"
  local rc=0 k
  for ((k = 0; k < 300; k++)); do
    kill -0 "$PROC_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$PROC_PID" 2>/dev/null; then
    log "$q: processor did not exit within 30 s of SIGTERM"
    stop_proc_hard
    rc=timeout
  else
    wait "$PROC_PID" || rc=$?
    PROC_PID=""
  fi
  python3 - "$q" "$EVENTS" "$t_launch" "$t_ready" "$t_done" "$t_drain" "$c0" "$c1" "$c2" \
    "$s0" "$s1" "$s2" "$CLK_TCK" "$load0" "$load1" "$rc" "$RESULTS/$q.metrics.done" "$m" \
    >"$RESULTS/$q.json" <<'PY'
import json, re, sys
(q, n, tl, tr, td, tdr, c0, c1, c2, s0, s1, s2, tck, load0, load1, rc,
 mdone, mfinal) = sys.argv[1:]
n, tck = int(n), int(tck)
tl, tr, td, tdr = map(float, (tl, tr, td, tdr))
def fam(path):
    out = {}
    for line in open(path):
        if not line.strip() or line[0] == "#":
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)', line)
        if not m:
            continue
        try:
            v = float(m.group(3))
        except ValueError:
            continue
        out.setdefault(m.group(1), {})[m.group(2) or ""] = v
    return out
md, mf = fam(mdone), fam(mfinal)
tot = lambda f, k: int(sum(f.get(k, {}).values()))
wall = td - tr
cpu = (int(c1) - int(c0)) / tck
scpu = (int(s1) - int(s0)) / tck
outs = {}
for labels, v in mf.get("weir_processor_records_out_total", {}).items():
    m = re.search(r'output="([^"]*)"', labels)
    outs[m.group(1) if m else labels] = int(v)
r = {"query": q, "events": n, "wall_s": round(wall, 3),
     "startup_s": round(tr - tl, 3),
     "proc_cpu_s": round(cpu, 3), "events_per_s": round(n / wall) if wall > 0 else None,
     "events_per_proc_cpu_s": round(n / cpu) if cpu > 0 else None,
     "store_cpu_s": round(scpu, 3),
     "events_per_total_cpu_s": round(n / (cpu + scpu)) if cpu + scpu > 0 else None,
     "drain_s": round(tdr - td, 3),
     "proc_cpu_s_incl_drain": round((int(c2) - int(c0)) / tck, 3),
     "store_cpu_s_incl_drain": round((int(s2) - int(s0)) / tck, 3),
     "records_in": tot(mf, "weir_processor_records_in_total"),
     "records_out": sum(outs.values()), "records_out_by_output": outs,
     "records_out_at_done": tot(md, "weir_processor_records_out_total"),
     "filtered": tot(mf, "weir_processor_filtered_total"),
     "windows_fired": tot(mf, "weir_processor_windows_fired_total"),
     "joins_emitted": tot(mf, "weir_processor_joins_emitted_total"),
     "dead_letters": tot(mf, "weir_processor_dead_letters_total"),
     "late": tot(mf, "weir_processor_late_records_total"),
     "backpressure": tot(mf, "weir_processor_backpressure_total"),
     "delivery_errors": tot(mf, "weir_processor_delivery_errors_total"),
     "checkpoints": tot(mf, "weir_processor_checkpoints_total"),
     "state_bytes": tot(mf, "weir_processor_state_bytes"),
     "exit_status": rc, "loadavg_before": load0, "loadavg_after": load1}
print(json.dumps(r))
PY
  log "$q: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%d events in %.2f s: %.0f ev/s, %.0f ev/proc-CPU-s (proc %.2f CPU-s, store %.2f CPU-s), out %d, exit %s, load %s" % (r["events"], r["wall_s"], r["events_per_s"], r["events_per_proc_cpu_s"] or 0, r["proc_cpu_s"], r["store_cpu_s"], r["records_out"], r["exit_status"], r["loadavg_after"]))' "$RESULTS/$q.json")"
  [[ "$rc" == 0 ]] || {
    log "$q: processor exit status $rc after SIGTERM (expected 0)"
    tail -n 20 "$qlog" >&2
    return 1
  }
}

BROKE=0
for q in $QUERIES; do
  log "$q: running the processor over $EVENTS events"
  run_query "$q" || BROKE=1
done

STORE_UP=0
if ! bash "$STORE_SH" stop "$WORK/store" >&2; then
  log "the store did not stop cleanly (log: $WORK/store/store.log)"
  BROKE=1
fi

# ------------------------------------------------------------- report --

# shellcheck disable=SC2086 # QUERIES is a list
python3 - "$RESULTS" "$OUT" "$BUILD_TYPE" "$(nproc)" "$PARTITIONS" "$STORE_WORKERS" "$CKPT_MS" \
  $QUERIES <<'PY'
import json, os, sys
res, out, bt, nproc, parts, workers, ckpt = sys.argv[1:8]
queries = sys.argv[8:]
inproc = {}
ip = os.path.join(out, "nexmark_bench.json")
if os.path.exists(ip):
    try:
        for r in json.load(open(ip))["results"]:
            inproc[r["query"]] = r
    except (ValueError, KeyError):
        pass
rows = []
for q in queries:
    p = os.path.join(res, q + ".json")
    if not os.path.exists(p):
        rows.append({"query": q, "error": "did not complete"})
        continue
    r = json.load(open(p))
    i = inproc.get(q)
    if i and r.get("events_per_proc_cpu_s"):
        r["inproc_events_per_cpu_s"] = i["events_per_cpu_s"]
        r["ratio_to_inproc"] = round(r["events_per_proc_cpu_s"] / i["events_per_cpu_s"], 4)
    rows.append(r)
doc = {"date": open(os.path.join(res, "date")).read().strip(), "build_type": bt,
       "nproc": int(nproc), "partitions": int(parts), "store_workers": int(workers),
       "checkpoint_interval_ms": int(ckpt),
       "note": "Weir store on loopback, topic preloaded by nexmark_gen; wall and CPU from "
               "the processor's /readyz to records_in == events; proc CPU = utime+stime of "
               "weir-dataplane --role processor (all threads), store CPU over the same span",
       "preload": json.load(open(os.path.join(res, "preload.json"))),
       "inproc_reference": ip if inproc else None, "results": rows}
with open(os.path.join(out, "nexmark_e2e.json"), "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
pl = doc["preload"]
lines = ["Nexmark end to end (Weir store, %d partitions, processor one loop thread), build %s, "
         "%s CPUs, %s" % (int(parts), bt or "?", nproc, doc["date"]),
         "preload: %d events in %.2f s (%.0f ev/s), store %.2f CPU-s, load %s" % (
             pl["events"], pl["wall_s"], pl["events_per_s"], pl["store_cpu_s"], pl["loadavg"]),
         "%-4s %9s %7s %8s %10s %12s %8s %9s %9s %8s  %s" % (
             "q", "events", "wall_s", "proc_cpu", "ev/s", "ev/proc-CPUs", "store_cpu",
             "out", "inproc", "x inproc", "load after")]
for r in rows:
    if "error" in r:
        lines.append("%-4s %s" % (r["query"], r["error"]))
        continue
    lines.append("%-4s %9d %7.2f %8.2f %10.0f %12.0f %8.2f %9d %9s %8s  %s" % (
        r["query"], r["events"], r["wall_s"], r["proc_cpu_s"], r["events_per_s"],
        r["events_per_proc_cpu_s"] or 0, r["store_cpu_s"], r["records_out"],
        "%.0f" % r["inproc_events_per_cpu_s"] if "inproc_events_per_cpu_s" in r else "-",
        "%.3f" % r["ratio_to_inproc"] if "ratio_to_inproc" in r else "-",
        r["loadavg_after"]))
text = "\n".join(lines) + "\n"
with open(os.path.join(out, "nexmark_e2e.txt"), "w") as f:
    f.write(text)
sys.stdout.write(text)
PY
log "wrote $OUT/nexmark_e2e.json and $OUT/nexmark_e2e.txt ($((SECONDS - T_START)) s)"
((BROKE == 0)) || die "the run completed, but something broke (see above)"
