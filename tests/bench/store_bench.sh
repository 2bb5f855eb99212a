#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Store benchmark: the Weir store (weir-dataplane --role store) against the
# disk (fio, sequential writes with fdatasync) and a real Apache Kafka broker
# (default flush, and flush.messages=1), all in one run on one filesystem.
# Builds nothing: needs a RelWithDebInfo build in WEIR_BUILD_DIR (weir-dataplane
# and tests/kbench). Reports, never judges: exit 0 when it ran, 1 when
# something broke. See docs/internals/store-bench.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly KAFKA_SH="$ROOT/tests/harness/kafka.sh"
readonly STORE_SH="$ROOT/tests/harness/store.sh"

BUILD="${WEIR_BUILD_DIR:-}"
if [[ -z "$BUILD" ]]; then
  echo "store_bench: set WEIR_BUILD_DIR to a RelWithDebInfo build" >&2
  exit 64
fi
BUILD="$(realpath -m -- "$BUILD")"
readonly BUILD
OUT="$(realpath -m -- "${WEIR_BENCH_OUT:-$BUILD/bench}")"
readonly OUT
# Everything that touches the disk (fio file, store and Kafka data) lives
# under WORK, so all of it is on one filesystem.
WORK="$(realpath -m -- "${WEIR_BENCH_WORK:-$OUT/work}")"
readonly WORK
readonly PHASE_SECONDS="${WEIR_BENCH_SECONDS:-20}"
readonly PHASE_BYTES="${WEIR_BENCH_BYTES:-}" # set: --bytes-total instead of --seconds
readonly WARMUP_SECONDS="${WEIR_BENCH_WARMUP_SECONDS:-3}"
readonly RECORD_SIZE="${WEIR_BENCH_RECORD_SIZE:-1024}"
NPROC="$(nproc)"
readonly NPROC
readonly PARTITIONS="${WEIR_BENCH_PARTITIONS:-$NPROC}"
readonly WORKERS="${WEIR_BENCH_WORKERS:-$NPROC}"
readonly LINGER_MS="${WEIR_BENCH_LINGER_MS:-5}"
# Latency phase with requests like the storage reference's (64 KiB batches):
# at the same half-of-max rate, batch.size and linger.ms below, repeated.
readonly LAT_BATCH="${WEIR_BENCH_LAT_BATCH:-65536}"
readonly LAT_LINGER_MS="${WEIR_BENCH_LAT_LINGER_MS:-1}"
readonly LAT_REPEAT="${WEIR_BENCH_LAT_REPEAT:-2}"
readonly TARGETS="${WEIR_BENCH_TARGETS:-fio weir kafka kafka-flush1}"
readonly FIO_BS="${WEIR_BENCH_FIO_BS:-256k}"
readonly FIO_SWEEP="${WEIR_BENCH_FIO_SWEEP:-4k 16k 64k 256k 1m 4m}"
readonly FIO_SIZE="${WEIR_BENCH_FIO_SIZE:-1G}"
readonly FIO_RUNTIME="${WEIR_BENCH_FIO_RUNTIME:-10}"
readonly FIO_REPEAT="${WEIR_BENCH_FIO_REPEAT:-3}"
readonly PORT_BASE="${WEIR_BENCH_PORT:-19600}"
readonly KEEP_DATA="${WEIR_BENCH_KEEP:-0}"
readonly KBENCH="${WEIR_BENCH_KBENCH:-$BUILD/tests/kbench}"
readonly STORE_BIN="${WEIR_BENCH_STORE_BIN:-$BUILD/dataplane/weir-dataplane}"
readonly START_TIMEOUT="${WEIR_BENCH_START_TIMEOUT:-60}"
CLK_TCK="$(getconf CLK_TCK)"
readonly CLK_TCK
readonly TOPIC=bench
readonly FSYNC_EVENT="${WEIR_BENCH_FSYNC_EVENT:-ext4:ext4_sync_file_enter}"
readonly RESULTS="$WORK/results"

log() { printf 'store_bench: %s\n' "$*" >&2; }
die() {
  printf 'store_bench: error: %s\n' "$*" >&2
  exit 1
}

# ------------------------------------------------------------- cleanup --

# Servers this script started, so that EXIT stops exactly those.
STORE_PID=""
STORE_DIR=""
KAFKA_DIR=""
BROKE=0 # set when something failed that should not void the report
PERF_PID=""
HAVE_PERF=0

cleanup() {
  perf_stop
  if [[ -n "$STORE_PID" ]]; then
    stop_store || true
  fi
  if [[ -n "$KAFKA_DIR" ]]; then
    "$KAFKA_SH" stop "$KAFKA_DIR" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ----------------------------------------------------------- preflight --

apt_install() {
  local -a sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo_cmd=(sudo -n)
  fi
  log "installing Debian packages: $*"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
    --no-install-recommends "$@" >&2
}

has_target() {
  [[ " $TARGETS " == *" $1 "* ]]
}

preflight() {
  [[ -x "$KBENCH" ]] || die "$KBENCH not built (build $BUILD first)"
  command -v python3 >/dev/null || die "python3 is needed to read the results"
  command -v curl >/dev/null || die "curl is needed to read /metrics"
  if has_target fio && ! command -v fio >/dev/null; then
    # ci/install-deps.sh lists fio; this covers a machine set up before that.
    apt_install fio || die "cannot install fio"
  fi
  if has_target weir; then
    [[ -x "$STORE_BIN" ]] || die "$STORE_BIN not built"
    [[ -f "$STORE_SH" ]] || die "$STORE_SH is missing"
  fi
  # fdatasync counting (group commit size) for any server, with no help from
  # it: the ext4 tracepoint every fsync/fdatasync passes, io_uring's too.
  if command -v perf >/dev/null &&
    perf stat -e "$FSYNC_EVENT" -x, -o /dev/null -- true >/dev/null 2>&1; then
    HAVE_PERF=1
  else
    log "perf cannot count $FSYNC_EVENT here; fdatasync counts come from /metrics only"
  fi
  local bt
  bt="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)"
  if [[ "$bt" != RelWithDebInfo && "$bt" != Release ]]; then
    log "warning: $BUILD is a '${bt:-unknown}' build; numbers are meant for RelWithDebInfo"
  fi
  if grep -qE '^WEIR_(ASAN|UBSAN|TSAN):BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
    log "warning: $BUILD has sanitizers on; numbers will be meaningless"
  fi
  BUILD_TYPE="${bt:-unknown}"
}

# Machine facts for the report: where WORK lives, and on which disk.
machine_json() {
  local src fstype opts disk model rota sched
  src="$(df --output=source "$WORK" | tail -n 1)"
  fstype="$(df --output=fstype "$WORK" | tail -n 1)"
  opts="$(findmnt -no OPTIONS -T "$WORK" 2>/dev/null || true)"
  disk="$(lsblk -no PKNAME "$src" 2>/dev/null | head -n 1 || true)"
  [[ -n "$disk" ]] || disk="$(basename "$src")"
  model="$(lsblk -dno MODEL "/dev/$disk" 2>/dev/null | sed 's/ *$//' || true)"
  rota="$(cat "/sys/block/$disk/queue/rotational" 2>/dev/null || echo "?")"
  sched="$(sed -E 's/.*\[(.*)\].*/\1/' "/sys/block/$disk/queue/scheduler" 2>/dev/null || echo "?")"
  # Buffered reads (Kafka's fetch, and Weir's with WEIR_STORE_READ_DIRECT=0)
  # depend on the device's readahead window.
  ra="$(cat "/sys/block/$disk/queue/read_ahead_kb" 2>/dev/null || echo "?")"
  python3 - "$src" "$fstype" "$opts" "$disk" "$model" "$rota" "$sched" "$WORK" "$NPROC" \
    "$BUILD_TYPE" "$ra" <<'EOF'
import json, os, platform, sys
src, fstype, opts, disk, model, rota, sched, work, nproc, bt, ra = sys.argv[1:]
cpu = "?"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
print(json.dumps({
    "nproc": int(nproc), "cpu": cpu, "kernel": platform.release(),
    "mem_gib": round(mem / 2**30, 1), "work_dir": work, "device": src,
    "disk": disk, "disk_model": model or "(none reported)",
    "rotational": rota, "scheduler": sched, "filesystem": fstype,
    "mount_options": opts, "build_type": bt, "read_ahead_kb": ra}))
EOF
}

# ----------------------------------------------------------------- fio --

# fio_run NAME BS [REPEAT]: one pass of sequential writes over a new
# (fallocated) file, fdatasync after every write, REPEAT times; the median
# run (by bandwidth) is the result. A new file each time: Weir writes into
# freshly fallocated segments too, so each sync also converts unwritten
# extents, and a rewritten file would flatter the disk.
fio_run() {
  local name="$1" bs="$2" reps="${3:-1}" file="$WORK/fio/seqwrite.dat" i
  mkdir -p "$WORK/fio"
  for ((i = 1; i <= reps; i++)); do
    rm -f "$file"
    sync -f "$WORK/fio"
    fio --name="seqwrite-$bs" --filename="$file" --rw=write --bs="$bs" --size="$FIO_SIZE" \
      --fdatasync=1 --ioengine=io_uring --iodepth=1 --runtime="$FIO_RUNTIME" \
      --output-format=json >"$RESULTS/fio.$name.raw$i.json" 2>"$RESULTS/fio.$name.err" ||
      { cat "$RESULTS/fio.$name.err" >&2; rm -f "$file"; return 1; }
  done
  rm -f "$file"
  python3 - "$bs" "$RESULTS"/fio."$name".raw*.json >"$RESULTS/fio.$name.json" <<'EOF'
import json, sys
runs = []
for path in sys.argv[2:]:
    job = json.load(open(path))["jobs"][0]
    w = job["write"]
    pct = job.get("sync", {}).get("lat_ns", {}).get("percentile", {})
    runs.append({"mb_per_s": round(w["bw_bytes"] / 1e6, 2), "bytes": w["io_bytes"],
                 "seconds": round(job["job_runtime"] / 1e3, 3),
                 "write_iops": round(w["iops"], 1),
                 "sync_p50_us": round(pct.get("50.000000", 0) / 1e3, 1),
                 "sync_p99_us": round(pct.get("99.000000", 0) / 1e3, 1)})
runs.sort(key=lambda r: r["mb_per_s"])
out = dict(runs[(len(runs) - 1) // 2])
out["bs"] = sys.argv[1]
if len(runs) > 1:
    out["runs_mb_per_s"] = [r["mb_per_s"] for r in runs]
print(json.dumps(out))
EOF
  log "fio $name bs=$bs: $(cat "$RESULTS/fio.$name.json")"
}

run_fio() {
  local bs
  for bs in $FIO_SWEEP; do
    fio_run "sweep-$bs" "$bs"
  done
  fio_run reference "$FIO_BS" "$FIO_REPEAT"
}

# ------------------------------------------------------- CPU and metrics --

# utime+stime of PID in clock ticks (all threads, children excluded).
cpu_ticks() {
  local stat
  stat="$(cat "/proc/$1/stat")"
  stat="${stat##*) }"
  local -a f
  read -r -a f <<<"$stat"
  echo $((f[11] + f[12]))
}

# The whole machine's CPU jiffies, from the "cpu" line of /proc/stat: user
# nice system idle iowait irq softirq steal ...
machine_ticks() {
  local -a c
  read -r -a c </proc/stat
  echo "${c[*]:1:8}"
}

METRICS_URL=""

# perf_start NAME PID: count PID's fsyncs (all its threads, io_uring workers
# included) until perf_stop.
perf_start() {
  ((HAVE_PERF)) || return 0
  perf stat -e "$FSYNC_EVENT" -p "$2" -x, -o "$RESULTS/$1.perf" &
  PERF_PID=$!
  sleep 0.3 # let it attach before the phase starts
}

perf_stop() {
  [[ -n "$PERF_PID" ]] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true # perf exits 130 on SIGINT
  PERF_PID=""
}

snapshot() { # snapshot NAME PID: CPU and, for the store, /metrics
  local name="$1" pid="$2"
  echo "$(cpu_ticks "$pid") $(machine_ticks)" >"$RESULTS/$name.cpu"
  cut -d' ' -f1-3 /proc/loadavg >"$RESULTS/$name.load"
  if [[ -n "$METRICS_URL" ]]; then
    curl -fsS --max-time 5 "$METRICS_URL" >"$RESULTS/$name.metrics" ||
      die "cannot read $METRICS_URL"
  fi
}

# phase_json TARGET PHASE CLIENT_JSON: the phase's record, from the client's
# JSON and the before/after snapshots.
phase_json() {
  local target="$1" phase="$2" client="$3" pre="$RESULTS/$1.$2.before" post="$RESULTS/$1.$2.after"
  python3 - "$client" "$pre" "$post" "$CLK_TCK" "$target" "$phase" "$RESULTS/$1.$2.perf" \
    "$FSYNC_EVENT" <<'EOF'
import json, math, os, re, sys
client, pre, post, tck, target, phase, perf, event = sys.argv[1:]
c = json.loads(open(client).read())
b = [int(x) for x in open(pre + ".cpu").read().split()]
a = [int(x) for x in open(post + ".cpu").read().split()]
cpu_s = (a[0] - b[0]) / int(tck)
d = [x - y for x, y in zip(a[1:], b[1:])]  # user nice system idle iowait irq softirq steal
tot = max(1, sum(d))
pct = lambda v: round(v / tot * 100, 1)
out = {"target": target, "phase": phase, "client": c,
       "server_cpu_s": round(cpu_s, 3),
       "machine_busy_pct": pct(tot - d[3] - d[4]),
       "machine_cpu_pct": {"user": pct(d[0] + d[1]), "system": pct(d[2] + d[5] + d[6]),
                           "iowait": pct(d[4]), "steal": pct(d[7]), "idle": pct(d[3])}}
mb = c.get("bytes", 0) / 1e6
out["mb_per_cpu_s"] = round(mb / cpu_s, 2) if cpu_s > 0 else None
# Load average (1, 5, 15 min) when the phase started: the machine is shared.
if os.path.exists(pre + ".load"):
    out["loadavg_before"] = [float(x) for x in open(pre + ".load").read().split()]

def metrics(path):
    """Sum every series of a family by name (and le), whatever its labels."""
    fam = {}
    if not os.path.exists(path):
        return None
    for line in open(path):
        if not line or line[0] == "#":
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)', line)
        if not m:
            continue
        name, labels, val = m.group(1), m.group(2) or "", m.group(3)
        try:
            v = float(val)
        except ValueError:
            continue
        le = re.search(r'le="([^"]*)"', labels)
        key = (name, le.group(1) if le else None)
        fam[key] = fam.get(key, 0.0) + v
    return fam

mb_, ma_ = metrics(pre + ".metrics"), metrics(post + ".metrics")
if mb_ is not None and ma_ is not None:
    def delta(name, le=None):
        return ma_.get((name, le), 0.0) - mb_.get((name, le), 0.0)
    def hist_stats(h):
        les = sorted({k[1] for k in ma_ if k[0] == h + "_bucket"},
                     key=lambda s: math.inf if s in ("+Inf", "Inf") else float(s))
        srv = {"count": int(delta(h + "_count"))}
        if not les or srv["count"] <= 0:
            srv["note"] = "no %s samples in this phase" % h
            return srv
        cum = [(le, delta(h + "_bucket", le)) for le in les]
        total = cum[-1][1]
        # A quantile is reported as the upper bound of the first bucket
        # whose cumulative count reaches it (None: beyond the last bound),
        # and linearly interpolated inside that bucket (`_us`): an estimate
        # from buckets, not an exact sample.
        for key, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999)):
            lo_s, prev = 0.0, 0.0
            for le, n in cum:
                if n >= q * total and n > 0:
                    if le in ("+Inf", "Inf"):
                        srv[key + "_le_us"] = None
                        srv[key + "_us"] = None
                    else:
                        hi_s = float(le)
                        srv[key + "_le_us"] = round(hi_s * 1e6, 1)
                        frac = (q * total - prev) / (n - prev) if n > prev else 1.0
                        srv[key + "_us"] = round((lo_s + (hi_s - lo_s) * frac) * 1e6, 1)
                    break
                if le not in ("+Inf", "Inf"):
                    lo_s, prev = float(le), n
        # Share of samples within the 0.5 ms goal (a bucket never counts a
        # value above its bound).
        for le, n in cum:
            if le not in ("+Inf", "Inf") and abs(float(le) - 0.0005) < 1e-12:
                srv["frac_le_500us"] = round(n / total, 4)
        s = delta(h + "_sum")
        srv["mean_us"] = round(s / srv["count"] * 1e6, 1) if s else None
        # Each bucket as {le: cumulative count}, for the record.
        srv["buckets"] = {le: int(n) for le, n in cum}
        return srv
    out["server_latency"] = hist_stats("weir_store_produce_latency_seconds")
    # Where the time goes: one partition's append (accepted to durable) and
    # one segment write (queued to completed, RWF_DSYNC included).
    out["append_latency"] = hist_stats("weir_store_append_seconds")
    out["write_latency"] = hist_stats("weir_store_log_write_seconds")
    # Group commit size: bytes appended per fdatasync, from whichever of
    # these families the store exports.
    syncs = max(delta("weir_store_fsync_seconds_count"), delta("weir_store_fsyncs_total"))
    if syncs > 0:
        out["fsyncs"] = int(syncs)
        out["fsync_source"] = "metrics"
        fs = delta("weir_store_fsync_seconds_sum")
        if fs > 0:
            out["fsync_mean_us"] = round(fs / syncs * 1e6, 1)
    wbytes = delta("weir_store_produce_bytes_total")
    if wbytes > 0:
        out["log_bytes"] = int(wbytes)
if "fsyncs" not in out and os.path.exists(perf):
    for line in open(perf):
        f = line.strip().split(",")
        if len(f) > 2 and f[2] == event and f[0].isdigit():
            out["fsyncs"] = int(f[0])
            out["fsync_source"] = "perf " + event
if out.get("fsyncs") and phase != "fetch":
    secs = c.get("seconds", 0)
    out["fsync_per_s"] = round(out["fsyncs"] / secs, 1) if secs else None
    # Bytes that one fdatasync made durable: the log bytes (batch headers
    # included) when the server says, else the client's payload bytes.
    out["bytes_per_fsync"] = int(out.get("log_bytes", c.get("bytes", 0)) / out["fsyncs"])
print(json.dumps(out))
EOF
}

# ------------------------------------------------------------- servers --

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The store runs under tests/harness/store.sh (pid in DIR/store.pid; its
# stop insists on a clean exit 0), with the metrics port added: the harness
# itself starts it with --http-port 0, and the store's last flag wins.
start_store() { # start_store DIR PORT HTTP_PORT
  local dir="$1" port="$2" http="$3"
  ! port_open "$http" || die "port $http is in use (set WEIR_BENCH_PORT)"
  STORE_DIR="$dir"
  WEIR_STORE_BIN="$STORE_BIN" WEIR_STORE_TARGET=weir WEIR_STORE_START_TIMEOUT="$START_TIMEOUT" \
    bash "$STORE_SH" start "$dir" "$port" "$WORKERS" --http-port "$http" >&2 ||
    die "the store did not start (log: $dir/store.log)"
  STORE_PID="$(cat "$dir/store.pid")"
  METRICS_URL="http://127.0.0.1:$http/metrics"
  local deadline=$((SECONDS + 10))
  until curl -fsS --max-time 2 "$METRICS_URL" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "the store does not serve $METRICS_URL"
    sleep 0.2
  done
}

stop_store() {
  [[ -n "$STORE_PID" ]] || return 0
  STORE_PID=""
  METRICS_URL=""
  if ! bash "$STORE_SH" stop "$STORE_DIR" >&2; then
    log "the store did not stop cleanly (log: $STORE_DIR/store.log)"
    BROKE=1
    return 1
  fi
}

start_kafka() { # start_kafka DIR PORT
  local dir="$1" port="$2"
  KAFKA_DIR="$dir"
  WEIR_KAFKA_PORT="$port" WEIR_KAFKA_CONTROLLER_PORT="$((port + 1))" \
    "$KAFKA_SH" start "$dir" >&2
}

# ------------------------------------------------------------ one target --

kb() { # kb TARGET PHASE ARGS...: run kbench, keep its JSON and stderr
  local target="$1" phase="$2"
  shift 2
  if ! "$KBENCH" "$@" >"$RESULTS/$target.$phase.client.json" \
    2>"$RESULTS/$target.$phase.client.err"; then
    tail -n 20 "$RESULTS/$target.$phase.client.err" >&2
    die "kbench $phase against $target failed (see $RESULTS/$target.$phase.client.err)"
  fi
}

phase_amount() {
  if [[ -n "$PHASE_BYTES" ]]; then
    echo "--bytes-total $PHASE_BYTES"
  else
    echo "--seconds $PHASE_SECONDS"
  fi
}

# bench_target TARGET PID BOOTSTRAP [TOPIC_CONFIG...]
bench_target() {
  local target="$1" pid="$2" boot="$3"
  shift 3
  local -a cfg=() prod=(-b "$boot" --size "$RECORD_SIZE" --acks all --linger-ms "$LINGER_MS")
  local c
  for c in "$@"; do
    cfg+=(-c "$c")
  done
  local -a amount
  read -r -a amount <<<"$(phase_amount)"

  kb "$target" create-warmup create -b "$boot" -t warmup --partitions "$PARTITIONS" "${cfg[@]}"
  kb "$target" create create -b "$boot" -t "$TOPIC" --partitions "$PARTITIONS" "${cfg[@]}"
  # Warm-up (connections, JIT for Kafka, page cache) into its own topic, so
  # that the fetch phase reads exactly what the measured phases wrote.
  kb "$target" warmup produce "${prod[@]}" -t warmup --seconds "$WARMUP_SECONDS"

  sync -f "$WORK"
  perf_start "$target.max" "$pid"
  snapshot "$target.max.before" "$pid"
  kb "$target" max produce "${prod[@]}" -t "$TOPIC" "${amount[@]}"
  snapshot "$target.max.after" "$pid"
  perf_stop
  phase_json "$target" max "$RESULTS/$target.max.client.json" >"$RESULTS/$target.max.json"

  local half
  half="$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["records_per_s"] // 2))' \
    "$RESULTS/$target.max.client.json")"
  ((half > 0)) || die "$target: max phase delivered nothing"
  sync -f "$WORK"
  perf_start "$target.half" "$pid"
  snapshot "$target.half.before" "$pid"
  kb "$target" half produce "${prod[@]}" -t "$TOPIC" "${amount[@]}" --rate "$half"
  snapshot "$target.half.after" "$pid"
  perf_stop
  phase_json "$target" half "$RESULTS/$target.half.client.json" >"$RESULTS/$target.half.json"

  # The same rate with requests like the storage reference's: 64 KiB
  # batches, a short linger. Repeated, because one run on a shared machine
  # is noisy; the report takes the median.
  local i
  for ((i = 1; i <= LAT_REPEAT; i++)); do
    sync -f "$WORK"
    snapshot "$target.lat$i.before" "$pid"
    kb "$target" "lat$i" produce -b "$boot" --size "$RECORD_SIZE" --acks all \
      --linger-ms "$LAT_LINGER_MS" --batch-size "$LAT_BATCH" -t "$TOPIC" "${amount[@]}" \
      --rate "$half"
    snapshot "$target.lat$i.after" "$pid"
    phase_json "$target" "lat$i" "$RESULTS/$target.lat$i.client.json" \
      >"$RESULTS/$target.lat$i.json"
    log "$target lat$i (batch $LAT_BATCH, linger $LAT_LINGER_MS ms): $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["client"]["latency_us"]; s=d.get("server_latency", {}); print("client p50 %.2f p99 %.2f ms; server p50 %s p99 %s us; load %s" % (c["p50"]/1e3, c["p99"]/1e3, s.get("p50_us"), s.get("p99_us"), d.get("loadavg_before")))' "$RESULTS/$target.lat$i.json")"
  done

  snapshot "$target.fetch.before" "$pid"
  kb "$target" fetch consume -b "$boot" -t "$TOPIC" --records 0
  snapshot "$target.fetch.after" "$pid"
  phase_json "$target" fetch "$RESULTS/$target.fetch.client.json" >"$RESULTS/$target.fetch.json"
  local p
  for p in max half fetch; do
    log "$target $p: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["client"]; print("%.1f MB/s, server CPU %.2f s, %s MB/CPU-s" % (c["mb_per_s"], d["server_cpu_s"], d["mb_per_cpu_s"]))' "$RESULTS/$target.$p.json")"
  done
}

# Same memory state for every target: write back, then drop the page cache
# (root only; skipped elsewhere).
settle() {
  sync -f "$WORK"
  if [[ -w /proc/sys/vm/drop_caches ]]; then
    echo 3 >/proc/sys/vm/drop_caches
  fi
}

drop_data() {
  [[ "$KEEP_DATA" == 1 ]] || rm -rf "$1"
}

run_weir() {
  local dir="$WORK/weir" port="$PORT_BASE" http="$((PORT_BASE + 1))"
  rm -rf "$dir"
  settle
  start_store "$dir" "$port" "$http"
  bench_target weir "$STORE_PID" "127.0.0.1:$port"
  stop_store || true
  drop_data "$dir"
}

run_kafka() { # run_kafka TARGET [TOPIC_CONFIG...]
  local target="$1" dir="$WORK/$1" port="$((PORT_BASE + 10))"
  shift
  rm -rf "$dir"
  settle
  start_kafka "$dir" "$port"
  local pid
  pid="$(cat "$dir/pid")"
  bench_target "$target" "$pid" "127.0.0.1:$port" "$@"
  "$KAFKA_SH" stop "$dir" >&2
  KAFKA_DIR=""
  drop_data "$dir"
}

# Matched fio: the write size Weir actually commits per fdatasync (from its
# metrics in the max phase), rounded to 4 KiB.
run_fio_matched() {
  local mfile="$RESULTS/weir.max.json" bs
  [[ -f "$mfile" ]] || return 0
  bs="$(python3 -c 'import json,sys; b=json.load(open(sys.argv[1])).get("bytes_per_fsync"); print(max(4096, (b + 2048)//4096*4096) if b else "")' "$mfile")"
  if [[ -z "$bs" ]]; then
    log "the store reports no fsync metrics; no matched fio run"
    return 0
  fi
  fio_run matched "$bs" "$FIO_REPEAT"
}

# Disk latency floor: fio replays the write pattern of Weir's first 64 KiB
# latency phase with no server in between: one job per partition, writes
# of the size Weir committed per write (rounded to 4 KiB), O_DIRECT with
# O_DSYNC (the kernel path of the store's RWF_DSYNC), Poisson arrivals at Weir's measured disk
# rate split over the jobs. "fresh": new fallocated files, as the store's
# segments are (each durable write also commits the unwritten-extent
# conversion to the journal). "written": the same files written once
# before, what zero-filled or recycled segments would give. A request waits
# at least for its own durable write, so the fresh floor's tail bounds the
# store's server-side tail from below (not its median: Weir's writes are
# not Poisson-paced, and a lucky one can beat fio's p50).
fio_floor_run() { # fio_floor_run NAME BS JOBS RATE_PER_JOB SIZE_PER_JOB PREWRITE
  local name="$1" bs="$2" jobs="$3" rate="$4" size="$5" prewrite="$6" j
  local dir="$WORK/fio-floor"
  rm -rf "$dir"
  mkdir -p "$dir"
  for ((j = 0; j < jobs; j++)); do
    if [[ "$prewrite" == 1 ]]; then
      dd if=/dev/zero of="$dir/f.$j.0" bs=1M count=$((size / 1048576)) oflag=direct status=none
    else
      fallocate -l "$size" "$dir/f.$j.0"
    fi
  done
  sync -f "$dir"
  fio --name=floor --directory="$dir" --filename_format='f.$jobnum.0' --numjobs="$jobs" \
    --rw=write --bs="$bs" --size="$size" --direct=1 --sync=dsync --ioengine=psync \
    --rate="$rate" --rate_process=poisson --runtime="$FIO_RUNTIME" --group_reporting \
    --output-format=json >"$RESULTS/fio.floor-$name.raw.json" 2>"$RESULTS/fio.floor-$name.err" ||
    { cat "$RESULTS/fio.floor-$name.err" >&2; rm -rf "$dir"; return 1; }
  rm -rf "$dir"
  python3 - "$RESULTS/fio.floor-$name.raw.json" "$bs" "$jobs" "$rate" >"$RESULTS/fio.floor-$name.json" <<'EOF2'
import json, sys
raw, bs, jobs, rate = sys.argv[1:]
w = json.load(open(raw))["jobs"][0]["write"]
p = w["clat_ns"]["percentile"]
print(json.dumps({"bs": int(bs), "jobs": int(jobs), "rate_per_job": int(rate),
                  "mb_per_s": round(w["bw_bytes"] / 1e6, 1),
                  "p50_us": round(p["50.000000"] / 1e3, 1), "p99_us": round(p["99.000000"] / 1e3, 1),
                  "p999_us": round(p["99.900000"] / 1e3, 1)}))
EOF2
  log "fio floor $name: $(cat "$RESULTS/fio.floor-$name.json")"
}

run_fio_floor() {
  local lfile="$RESULTS/weir.lat1.json" args
  [[ -f "$lfile" ]] || return 0
  # "BS JOBS RATE_PER_JOB SIZE_PER_JOB" from the phase's log bytes and time.
  args="$(python3 - "$lfile" "$PARTITIONS" "$FIO_RUNTIME" <<'EOF2'
import json, sys
d, parts, runtime = json.load(open(sys.argv[1])), int(sys.argv[2]), float(sys.argv[3])
b, secs = d.get("bytes_per_fsync"), d["client"].get("seconds")
if not b or not d.get("log_bytes") or not secs:
    sys.exit(0)
rate = int(d["log_bytes"] / secs / parts)
size = (int(rate * runtime * 1.25) // 1048576 + 16) * 1048576
print(max(4096, (int(b) + 2048) // 4096 * 4096), parts, rate, size)
EOF2
)"
  if [[ -z "$args" ]]; then
    log "the store reports no write metrics for lat1; no fio floor run"
    return 0
  fi
  local -a a
  read -r -a a <<<"$args"
  fio_floor_run fresh "${a[@]}" 0
  fio_floor_run written "${a[@]}" 1
}

# ------------------------------------------------------------- report --

report() {
  python3 - "$RESULTS" "$OUT/store_bench.json" "$FIO_BS" <<'EOF'
import glob, json, os, sys
res, out_path, fio_bs = sys.argv[1:]
def load(name):
    p = os.path.join(res, name)
    return json.load(open(p)) if os.path.exists(p) else None
doc = {"date": open(os.path.join(res, "date")).read().strip(),
       "machine": load("machine.json"), "config": load("config.json"),
       "fio": None, "targets": {}}
sweep = []
for p in sorted(glob.glob(os.path.join(res, "fio.sweep-*.json"))):
    if ".raw" not in p:
        sweep.append(json.load(open(p)))
def bs_bytes(s):
    m = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    s = str(s).lower()
    return int(s[:-1]) * m[s[-1]] if s[-1] in m else int(s)
sweep.sort(key=lambda r: bs_bytes(r["bs"]))
if sweep:
    doc["fio"] = {"reference": load("fio.reference.json"), "matched": load("fio.matched.json"),
                  "sweep": sweep, "floor_fresh": load("fio.floor-fresh.json"),
                  "floor_written": load("fio.floor-written.json")}
lat_phases = sorted({os.path.basename(p).split(".")[1]
                     for p in glob.glob(os.path.join(res, "*.lat*.json"))
                     if ".client." not in p and os.path.basename(p).split(".")[1][3:].isdigit()},
                    key=lambda s: int(s[3:]))
for t in ("weir", "kafka", "kafka-flush1"):
    phases = {p: load("%s.%s.json" % (t, p)) for p in ("max", "half", "fetch") + tuple(lat_phases)}
    if any(phases.values()):
        doc["targets"][t] = phases

def g(t, p, *keys):
    d = doc["targets"].get(t, {}).get(p)
    for k in keys:
        if d is None:
            return None
        d = d.get(k)
    return d
def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None
def median(vals, low=False):
    # The upper median (the lower one for a share, where more is better):
    # with two runs, the worse one.
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return None
    return vals[(len(vals) - 1) // 2] if low else vals[len(vals) // 2]
def lat_median(t, *keys):
    return median([g(t, p, *keys) for p in lat_phases], low=keys[-1].startswith("frac"))

weir_mb = g("weir", "max", "client", "mb_per_s")
fio_ref = (doc["fio"] or {}).get("reference") or {}
fio_m = (doc["fio"] or {}).get("matched") or {}
r = {"weir_over_fio": ratio(weir_mb, fio_ref.get("mb_per_s")),
     "weir_over_fio_matched": ratio(weir_mb, fio_m.get("mb_per_s")),
     "weir_mb_per_cpu_s_over_kafka": ratio(g("weir", "max", "mb_per_cpu_s"),
                                           g("kafka", "max", "mb_per_cpu_s")),
     "weir_mb_per_cpu_s_over_kafka_flush1": ratio(g("weir", "max", "mb_per_cpu_s"),
                                                  g("kafka-flush1", "max", "mb_per_cpu_s")),
     "weir_server_p50_us": g("weir", "half", "server_latency", "p50_le_us"),
     "weir_server_p99_us": g("weir", "half", "server_latency", "p99_le_us"),
     "weir_server_p50_us_interpolated": g("weir", "half", "server_latency", "p50_us"),
     "weir_server_p99_us_interpolated": g("weir", "half", "server_latency", "p99_us"),
     "weir_server_frac_le_500us": g("weir", "half", "server_latency", "frac_le_500us")}
if lat_phases:
    r["lat64k_weir_server_p50_us"] = lat_median("weir", "server_latency", "p50_us")
    r["lat64k_weir_server_p99_us"] = lat_median("weir", "server_latency", "p99_us")
    r["lat64k_weir_server_p99_le_us"] = lat_median("weir", "server_latency", "p99_le_us")
    r["lat64k_weir_server_frac_le_500us"] = lat_median("weir", "server_latency",
                                                       "frac_le_500us")
    for t in ("weir", "kafka", "kafka-flush1"):
        if t in doc["targets"]:
            k = t.replace("-", "_")
            r["lat64k_%s_client_p50_ms" % k] = lat_median(t, "client", "latency_us", "p50")
            r["lat64k_%s_client_p99_ms" % k] = lat_median(t, "client", "latency_us", "p99")
            for q in ("p50", "p99"):
                v = r["lat64k_%s_client_%s_ms" % (k, q)]
                r["lat64k_%s_client_%s_ms" % (k, q)] = None if v is None else round(v / 1e3, 3)
    r["lat64k_kafka_client_p99_over_weir"] = ratio(r.get("lat64k_kafka_client_p99_ms"),
                                                   r.get("lat64k_weir_client_p99_ms"))
    # The disk alone, replaying lat1's writes (see run_fio_floor).
    for k in ("fresh", "written"):
        fl = (doc["fio"] or {}).get("floor_" + k) or {}
        r["disk_floor_%s_p50_us" % k] = fl.get("p50_us")
        r["disk_floor_%s_p99_us" % k] = fl.get("p99_us")
    r["lat64k_weir_server_p99_over_disk_floor"] = ratio(r.get("lat64k_weir_server_p99_us"),
                                                        r.get("disk_floor_fresh_p99_us"))
doc["ratios"] = r
def goal(v, ok):
    return None if v is None else bool(ok(v))
doc["goals"] = {
    "weir_ge_90pct_fio": goal(r["weir_over_fio"], lambda v: v >= 0.9),
    "weir_ge_2x_kafka_mb_per_cpu_s": goal(r["weir_mb_per_cpu_s_over_kafka"], lambda v: v >= 2),
    "weir_ge_2x_kafka_flush1_mb_per_cpu_s": goal(r["weir_mb_per_cpu_s_over_kafka_flush1"],
                                                 lambda v: v >= 2),
    "weir_server_p99_le_500us": goal(r["weir_server_p99_us"], lambda v: v <= 500),
    "weir_server_p99_le_500us_64k_batches": goal(r.get("lat64k_weir_server_p99_le_us"),
                                                 lambda v: v <= 500),
    # Whether the disk itself can: its p99 for the same writes, no server.
    "disk_floor_fresh_p99_le_500us": goal(r.get("disk_floor_fresh_p99_us"), lambda v: v <= 500)}
json.dump(doc, open(out_path, "w"), indent=2)

def f(v, fmt="%.1f"):
    return "-" if v is None else fmt % v
rows = []
hdr = ("target", "produce MB/s", "srv CPU-s", "cli CPU-s", "MB/CPU-s", "busy %", "KiB/fsync",
       "half rate/s",
       "client p50/p99 ms", "server p50/p99 us", "fetch MB/s", "fetch MB/CPU-s", "load1")
for t in doc["targets"]:
    lat = g(t, "half", "client", "latency_us") or {}
    srv = g(t, "half", "server_latency") or {}
    rows.append((t, f(g(t, "max", "client", "mb_per_s")), f(g(t, "max", "server_cpu_s"), "%.2f"),
                 f(g(t, "max", "client", "client_cpu_s"), "%.2f"),
                 f(g(t, "max", "mb_per_cpu_s")), f(g(t, "max", "machine_busy_pct"), "%.0f"),
                 f(g(t, "max", "bytes_per_fsync") and g(t, "max", "bytes_per_fsync") / 1024,
                   "%.0f"),
                 f(g(t, "half", "client", "rate_target"), "%.0f"),
                 "%s / %s" % (f(lat.get("p50") and lat["p50"] / 1e3, "%.2f"),
                              f(lat.get("p99") and lat["p99"] / 1e3, "%.2f")),
                 ("%s / %s" % (f(srv.get("p50_le_us"), "<=%g"), f(srv.get("p99_le_us"), "<=%g")))
                 if srv else "-",
                 f(g(t, "fetch", "client", "mb_per_s")), f(g(t, "fetch", "mb_per_cpu_s")),
                 f((g(t, "max", "loadavg_before") or [None])[0], "%.2f")))
def fio_row(label, r):
    return (label, f(r["mb_per_s"]), "-", "-", "-", "-", "%.0f" % (bs_bytes(r["bs"]) / 1024), "-",
            "sync %s / %s" % (f(r["sync_p50_us"] / 1e3, "%.2f"), f(r["sync_p99_us"] / 1e3, "%.2f")),
            "-", "-", "-", "-")
for r_ in sweep:
    rows.append(fio_row("fio %s" % r_["bs"], r_))
if fio_ref:
    rows.append(fio_row("fio %s (reference)" % fio_ref["bs"], fio_ref))
if fio_m:
    rows.append(fio_row("fio %s (matched)" % fio_m["bs"], fio_m))
w = [max(len(str(x[i])) for x in rows + [hdr]) for i in range(len(hdr))]
line = lambda x: "  ".join(str(v).ljust(w[i]) for i, v in enumerate(x))
print(line(hdr))
print("  ".join("-" * n for n in w))
for x in rows:
    print(line(x))
print()
# Latency at half of max: the default phase and the 64 KiB-batch phases.
def pq(h):
    if not h or h.get("p50_us") is None:
        return "-"
    return "%s / %s" % (f(h.get("p50_us"), "%.0f"), f(h.get("p99_us"), "%.0f"))
lrows = []
lhdr = ("target", "phase", "rate/s", "client p50/p99 ms", "server p50/p99 us (interp.)",
        "server p99 bucket", "<=0.5 ms", "append p50/p99 us", "write p50/p99 us", "KiB/write",
        "load1")
for t in doc["targets"]:
    for p in ("half",) + tuple(lat_phases):
        d = g(t, p)
        if d is None:
            continue
        lat = g(t, p, "client", "latency_us") or {}
        srv = g(t, p, "server_latency") or {}
        la = d.get("loadavg_before") or [None]
        lrows.append((t, p, f(g(t, p, "client", "rate_target"), "%.0f"),
                      "%s / %s" % (f(lat.get("p50") and lat["p50"] / 1e3, "%.2f"),
                                   f(lat.get("p99") and lat["p99"] / 1e3, "%.2f")),
                      ("%s / %s" % (f(srv.get("p50_us"), "%.0f"), f(srv.get("p99_us"), "%.0f")))
                      if srv else "-",
                      f(srv.get("p99_le_us"), "<=%g") if srv else "-",
                      f(srv.get("frac_le_500us") and srv["frac_le_500us"] * 100, "%.1f%%")
                      if srv else "-",
                      pq(d.get("append_latency")), pq(d.get("write_latency")),
                      f(d.get("bytes_per_fsync") and d["bytes_per_fsync"] / 1024, "%.0f"),
                      f(la[0], "%.2f")))
for k in ("fresh", "written"):
    fl = (doc["fio"] or {}).get("floor_" + k)
    if fl:
        lrows.append(("fio floor " + k, "lat1", "-", "-", "-", "-", "-", "-",
                      "%.0f / %.0f" % (fl["p50_us"], fl["p99_us"]), "%.0f" % (fl["bs"] / 1024),
                      "-"))
if lrows:
    lw = [max(len(str(x[i])) for x in lrows + [lhdr]) for i in range(len(lhdr))]
    lline = lambda x: "  ".join(str(v).ljust(lw[i]) for i, v in enumerate(x))
    print(lline(lhdr))
    print("  ".join("-" * n for n in lw))
    for x in lrows:
        print(lline(x))
    print()
for k, v in r.items():
    print("%-38s %s" % (k, "-" if v is None else v))
for k, v in doc["goals"].items():
    print("goal %-33s %s" % (k, {None: "not measured", True: "met", False: "MISSED"}[v]))
print("\nresults: %s" % out_path)
EOF
}

main() {
  preflight
  mkdir -p "$OUT" "$WORK"
  rm -rf "$RESULTS"
  mkdir -p "$RESULTS"
  date -u +%Y-%m-%dT%H:%M:%SZ >"$RESULTS/date"
  machine_json >"$RESULTS/machine.json"
  python3 - "$PHASE_SECONDS" "$PHASE_BYTES" "$WARMUP_SECONDS" "$RECORD_SIZE" "$PARTITIONS" \
    "$WORKERS" "$LINGER_MS" "$TARGETS" "$FIO_BS" "$FIO_SIZE" "$FIO_RUNTIME" \
    >"$RESULTS/config.json" <<'EOF'
import json, sys
a = sys.argv[1:]
print(json.dumps({"phase_seconds": float(a[0]), "phase_bytes": a[1] or None,
                  "warmup_seconds": float(a[2]), "record_size": int(a[3]),
                  "partitions": int(a[4]), "store_workers": int(a[5]), "linger_ms": a[6],
                  "acks": "all", "targets": a[7].split(), "fio_reference_bs": a[8],
                  "fio_size": a[9], "fio_runtime_s": float(a[10])}))
EOF
  log "machine: $(cat "$RESULTS/machine.json")"
  local t0=$SECONDS
  if has_target fio; then run_fio; fi
  if has_target weir; then
    run_weir
    if has_target fio; then
      run_fio_matched
      run_fio_floor
    fi
  fi
  if has_target kafka; then run_kafka kafka; fi
  if has_target kafka-flush1; then run_kafka kafka-flush1 flush.messages=1; fi
  report | tee "$OUT/store_bench.txt"
  log "done in $((SECONDS - t0)) s"
  ((BROKE == 0)) || die "the run completed, but something broke (see above)"
}

main "$@"
