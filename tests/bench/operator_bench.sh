#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# weir-operator benchmark: memory and reconcile latency with many Processors.
# Starts the Kubernetes harness (tests/harness/k8s.sh, kwok nodes) and a Weir
# store (the Streams' topics), applies install.yaml (CRDs + RBAC; its
# Deployment scaled to 0), runs weir-operator from WEIR_BUILD_DIR (a release
# build) out of cluster with the ServiceAccount token, then:
#   1. RSS idle: VmRSS from /proc/PID/status once /readyz says the caches are
#      synced (plus 2 s);
#   2. paced: WEIR_OPBENCH_PACED Processors (20) created one at a time, 0.5 s
#      apart: latency of an otherwise idle operator;
#   3. load: the rest up to WEIR_OPBENCH_COUNT (1000) created at
#      WEIR_OPBENCH_RATE per second (30, open loop: request i is due at
#      start + i / rate, whether or not earlier ones have been answered);
#   4. RSS once every StatefulSet exists, and again once every Processor is
#      Ready (or after WEIR_OPBENCH_READY_TIMEOUT s).
# Latency of a Processor = first sight of its StatefulSet in a
# `kubectl get statefulsets -w` stream, minus the client-side time just
# before its POST. The POSTs come from tests/bench/k8s_create_load.py over
# persistent HTTPS connections (1 paced, 4 under load), as a controller or a
# CI system applying manifests would send them; a curl process per POST put
# its own fork, exec and TLS handshake (~25 ms) into every figure.
# Memory is reported as VmRSS and its parts RssAnon (heap, stacks) and
# RssFile (mapped files: the binary and its shared libraries), plus the
# largest file mappings, the binary's shared-library count (ldd) and whether
# its libcurl is the static minimal one or the system's.
# WEIR_OPBENCH_WORKERS (4) is --concurrent-reconciles. WEIR_OPBENCH_PERF=1
# records the operator with `perf record -g` from the load phase until every
# StatefulSet exists (operator_bench_perf.txt: top symbols).
# WEIR_OPBENCH_APIPROF=1 takes a CPU profile of kube-apiserver over the
# load phase (apiserver_cpu.pprof) and its allocation profile at the load's
# start and when every StatefulSet exists (apiserver_allocs{0,1}.pprof; diff
# with `go tool pprof -sample_index=alloc_space -base ...0 ...1`).
# WEIR_OPBENCH_WRAP runs the operator under a command (e.g. "heaptrack -o
# FILE" for who holds the heap); its memory figures are then the wrapper's.
# Writes $WEIR_BENCH_OUT/operator_bench.{json,txt}. Goals: RSS <= 10 MB with
# 1000 Processors, p99 <= 100 ms. Reports, never judges: exit 0 when it ran.
# Ports: WEIR_OPBENCH_PORT_BASE (19950) .. +21. Only under ctest -C bench -L bench.
set -euo pipefail

readonly NAME=operator_bench
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly H="$ROOT/tests/harness/k8s.sh"
readonly STORE_H="$ROOT/tests/harness/store.sh"
BUILD="${WEIR_BUILD_DIR:-}"
if [[ -z "$BUILD" ]]; then
  echo "$NAME: set WEIR_BUILD_DIR to a release (RelWithDebInfo) build" >&2
  exit 64
fi
BUILD="$(realpath -m -- "$BUILD")"
readonly BUILD
OUT="$(realpath -m -- "${WEIR_BENCH_OUT:-$BUILD/bench}")"
readonly OUT
readonly OPERATOR="$BUILD/operator/weir-operator"
export WEIR_STORE_BIN="${WEIR_STORE_BIN:-$BUILD/dataplane/weir-dataplane}"
export WEIR_K8S_PORT_BASE="${WEIR_OPBENCH_PORT_BASE:-19950}"
# 110 pods per kwok node: enough nodes for every processor pod.
readonly COUNT="${WEIR_OPBENCH_COUNT:-1000}"
export WEIR_K8S_NODES="${WEIR_OPBENCH_NODES:-$(((COUNT + 109) / 110))}"
readonly PACED="${WEIR_OPBENCH_PACED:-20}"
readonly READY_TIMEOUT="${WEIR_OPBENCH_READY_TIMEOUT:-600}"
readonly WORKERS="${WEIR_OPBENCH_WORKERS:-4}"
readonly RATE="${WEIR_OPBENCH_RATE:-30}"
readonly WRAP="${WEIR_OPBENCH_WRAP:-}"
readonly PERF="${WEIR_OPBENCH_PERF:-0}"
readonly APIPROF="${WEIR_OPBENCH_APIPROF:-0}"
readonly STORE_PORT=$((WEIR_K8S_PORT_BASE + 20))
readonly HTTP=$((WEIR_K8S_PORT_BASE + 21))
readonly NS=bench

for b in "$OPERATOR" "$WEIR_STORE_BIN"; do
  [[ -x "$b" ]] || {
    echo "$NAME: $b is not built" >&2
    exit 1
  }
done
for c in curl jq awk; do
  command -v "$c" >/dev/null || {
    echo "$NAME: $c not found" >&2
    exit 77
  }
done
if grep -q 'CMAKE_BUILD_TYPE:STRING=Debug' "$BUILD/CMakeCache.txt" 2>/dev/null ||
  grep -q 'WEIR_SANITIZE:[A-Z]*=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  echo "$NAME: warning: $BUILD is not a release build; figures will not mean much" >&2
fi

mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-$NAME.XXXXXX")"
readonly WORK
readonly DIR="$WORK/k8s"
op="" watcher="" pwatcher="" perfpid="" rc=1

cleanup() {
  local status=$?
  trap - INT TERM HUP
  [[ -n "$watcher" ]] && kill "$watcher" 2>/dev/null
  [[ -n "$pwatcher" ]] && kill "$pwatcher" 2>/dev/null
  [[ -n "$perfpid" ]] && kill -INT "$perfpid" 2>/dev/null
  if [[ -n "$op" ]] && kill -0 "$op" 2>/dev/null; then
    kill -TERM "$op" 2>/dev/null || :
    wait "$op" || status=1
  fi
  "$STORE_H" stop "$WORK/store" >"$WORK/store-stop.log" 2>&1 || :
  "$H" stop "$DIR" >"$WORK/stop.log" 2>&1 || status=1
  if ((status == 0 && rc == 0)); then
    rm -rf "$WORK"
    exit 0
  fi
  echo "$NAME: failed; keeping $WORK" >&2
  exit 1
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
fail() {
  printf '%s: error: %s\n' "$NAME" "$*" >&2
  exit 1
}
wait_for() { # SECONDS WHAT CMD...
  local end=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || fail "timed out waiting for: $what"
    sleep 0.5
  done
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$op/status"; }
# "VmRSS RssAnon RssFile" in kB.
rss_parts() { awk '/^(VmRSS|RssAnon|RssFile):/ { v[$1] = $2 } END { print v["VmRSS:"], v["RssAnon:"], v["RssFile:"] }' "/proc/$op/status"; }
# CPU ticks per control-plane process (by comm), then "busy" and "steal"
# of the whole machine (/proc/stat); one "name ticks" per line.
cpu_snapshot() {
  local f c t
  for f in /proc/[0-9]*/stat; do
    read -r c t < <(awk '{ sub(/^[^(]*\(/, ""); n = $0; sub(/\).*/, "", n); sub(/^[^)]*\) /, "");
      print n, $12 + $13 }' "$f" 2>/dev/null) || continue
    case "$c" in etcd | kube-apiserver | kube-controller | kube-scheduler | kwok | weir-operator) printf '%s %s\n' "$c" "$t" ;; esac
  done
  awk '$1 == "cpu" { print "busy", $2 + $3 + $4 + $7 + $8; print "steal", $9 }' /proc/stat
}
# "name seconds, ..." between two snapshots; "other" is busy minus the rest.
cpu_delta() { # BEFORE AFTER
  awk -v c="$(getconf CLK_TCK)" 'NR == FNR { a[$1] += $2; next } { b[$1] += $2 }
    END { for (k in b) { d = (b[k] - a[k]) / c; if (k != "busy" && k != "steal") named += d; v[k] = d }
          out = ""; split("kube-apiserver etcd kube-controller kube-scheduler kwok weir-operator", o, " ")
          for (i = 1; i in o; i++) out = out sprintf("%s%s %.1f", out == "" ? "" : ", ", o[i], v[o[i]])
          printf "%s, other %.1f, machine busy %.1f, steal %.1f", out, v["busy"] - named, v["busy"], v["steal"] }' "$1" "$2"
}
# The largest file-backed mappings: "kB path" per line, summed per file.
top_files() {
  awk '/^[0-9a-f]+-[0-9a-f]+ / { f = ($6 ~ /^\//) ? $6 : "" } /^Rss:/ && f != "" { r[f] += $2 }
       END { for (f in r) print r[f], f }' "/proc/$op/smaps" | sort -rn | head -8
}
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$op/status"; }
metric() { curl -fsS "http://127.0.0.1:$HTTP/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# "p50 p99" in ms of histogram $1 from its cumulative buckets: the le bound
# of the first bucket holding the quantile (an upper bound on the value).
# p50 and p99 (upper bucket bounds, ms) of histogram $1; $2: labels the
# series starts with, e.g. 'verb="PATCH",resource="configmaps",'.
hist_ms() {
  curl -fsS "http://127.0.0.1:$HTTP/metrics" | awk -v m="$1_bucket" -v l="${2:-}" '
    index($1, m "{" l "le=") == 1 { split($1, a, "le=\""); le = a[2]; sub(/".*/, "", le)
                            n++; bound[n] = le; cnt[n] = $2 }
    END { total = cnt[n]; if (!total) { print "0 0"; exit }
          for (q = 1; q <= 2; q++) { want = (q == 1 ? 0.50 : 0.99) * total
            for (i = 1; i <= n; i++) if (cnt[i] >= want) break
            v = bound[i] == "+Inf" ? "inf" : sprintf("%.1f", bound[i] * 1000)
            printf "%s%s", v, (q == 1 ? " " : "\n") } }'
}

"$H" install >&2
"$H" start "$DIR" >"$WORK/env.sh"
# shellcheck disable=SC1091
source "$WORK/env.sh"
unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT
readonly API="$WEIR_K8S_SERVER"
CURL=(curl -fsS --cacert "$DIR/pki/ca.crt" --cert "$DIR/pki/admin.crt" --key "$DIR/pki/admin.key")

log "install.yaml (Deployment scaled to 0)"
kubectl apply --server-side -f "$ROOT/install.yaml" >"$WORK/install.log"
kubectl scale deployment weir-operator -n weir-system --replicas=0 >/dev/null
kubectl wait --for=condition=Established --timeout=60s \
  crd/clusterstreams.streaming.weir.dev crd/streams.streaming.weir.dev \
  crd/processors.streaming.weir.dev >/dev/null
token="$(kubectl create token weir-operator -n weir-system --duration=4h)"
cat >"$WORK/operator.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: harness
  cluster: {server: "$API", certificate-authority: "$DIR/pki/ca.crt"}
users:
- name: weir-operator
  user: {token: "$token"}
contexts:
- name: op
  context: {cluster: harness, user: weir-operator, namespace: weir-system}
current-context: op
KC
chmod 600 "$WORK/operator.kubeconfig"

"$STORE_H" start "$WORK/store" "$STORE_PORT" 1 >"$WORK/store-start.log" 2>&1 ||
  fail "store did not start: $(cat "$WORK/store-start.log")"

# shellcheck disable=SC2086 # WRAP is a command line, split on purpose
WEIR_LOG_LEVEL=info ${WRAP} "$OPERATOR" --kubeconfig="$WORK/operator.kubeconfig" --leader-elect=false \
  --store-namespace=weir-system --dataplane-image=weir-dataplane:bench \
  --concurrent-reconciles="$WORKERS" \
  --http-port="$HTTP" --metrics=true >"$WORK/op.log" 2>&1 &
op=$!
wait_for 30 "operator /readyz" curl -fsS "http://127.0.0.1:$HTTP/readyz"
sleep 2
rss_idle=$(rss_kb)
read -r _ anon_idle file_idle <<<"$(rss_parts)"
top_idle="$(top_files)"
heap_use_idle=$(metric 'weir_operator_heap_bytes{state="in_use"}')
heap_free_idle=$(metric 'weir_operator_heap_bytes{state="free"}')
cp "/proc/$op/smaps" "$OUT/operator_smaps_idle.txt" 2>/dev/null || :
log "idle RSS ${rss_idle} kB (anon ${anon_idle}, file ${file_idle})"

kubectl create namespace "$NS" >/dev/null
kubectl apply -f - >/dev/null <<YAML
apiVersion: streaming.weir.dev/v1alpha1
kind: ClusterStream
metadata: {name: local}
spec:
  name: local
  storage:
    server: {protocol: kafka, url: "kafka://127.0.0.1:$STORE_PORT"}
---
apiVersion: streaming.weir.dev/v1alpha1
kind: Stream
metadata: {name: in, namespace: $NS}
spec: {name: in, protocol: kafka, storage: {clusterStream: local}}
---
apiVersion: streaming.weir.dev/v1alpha1
kind: Stream
metadata: {name: out, namespace: $NS}
spec: {name: out, protocol: kafka, storage: {clusterStream: local}}
YAML
sready() { [[ "$(kubectl get stream "$1" -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]; }
wait_for 60 "Stream in Ready" sready in
wait_for 60 "Stream out Ready" sready out
sleep 1
rss_deps=$(rss_kb)
read -r _ anon_deps file_deps <<<"$(rss_parts)"

# Watch StatefulSets; timestamp every event line as it arrives.
kubectl get statefulsets -n "$NS" -w --watch-only \
  -o jsonpath='{.metadata.name}{"\n"}' 2>"$WORK/watch.err" |
  while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done >"$WORK/seen.txt" &
watcher=$!
# Processors too: when a watch (the operator's among them) first sees each.
kubectl get processors -n "$NS" -w --watch-only \
  -o jsonpath='{.metadata.name}{"\n"}' 2>"$WORK/pwatch.err" |
  while IFS= read -r l; do printf '%s weir-proc-%s\n' "$EPOCHREALTIME" "$l"; done >"$WORK/pseen.txt" &
pwatcher=$!
sleep 2

LOAD=(python3 "$ROOT/tests/bench/k8s_create_load.py" --server "$API" --cacert "$DIR/pki/ca.crt"
  --cert "$DIR/pki/admin.crt" --key "$DIR/pki/admin.key" --namespace "$NS" --out "$WORK/created.txt")

log "paced: $PACED Processors, 0.5 s apart"
"${LOAD[@]}" --first 0 --count "$PACED" --rate 2 --connections 1 || fail "paced creates failed"
if [[ "$PERF" == 1 ]]; then
  perf record -F 499 -g -p "$op" -o "$WORK/perf.data" >"$WORK/perf.log" 2>&1 &
  perfpid=$!
fi
if [[ "$APIPROF" == 1 ]]; then
  "${CURL[@]}" -o "$OUT/apiserver_cpu.pprof" \
    "$API/debug/pprof/profile?seconds=$(((COUNT - PACED) / RATE))" 2>"$WORK/apiprof.err" &
  apiprofpid=$!
fi
log "load: $((COUNT - PACED)) Processors at $RATE/s"
cpu_snapshot >"$WORK/cpu0.txt"
[[ "$APIPROF" == 1 ]] && "${CURL[@]}" -o "$OUT/apiserver_allocs0.pprof" "$API/debug/pprof/allocs"
t_load0=$EPOCHREALTIME
"${LOAD[@]}" --first "$PACED" --count "$((COUNT - PACED))" --rate "$RATE" --connections 4 ||
  fail "load creates failed"
t_load1=$EPOCHREALTIME

[[ -n "${apiprofpid:-}" ]] && { wait "$apiprofpid" || log "apiserver profile failed: $(cat "$WORK/apiprof.err")"; }
seen_all() { (($(awk '{ print $2 }' "$WORK/seen.txt" | sort -u | wc -l) >= COUNT)); }
wait_for 900 "all $COUNT StatefulSets" seen_all
t_all=$EPOCHREALTIME
cpu_snapshot >"$WORK/cpu1.txt"
[[ "$APIPROF" == 1 ]] && "${CURL[@]}" -o "$OUT/apiserver_allocs1.pprof" "$API/debug/pprof/allocs"
if [[ -n "$perfpid" ]]; then
  kill -INT "$perfpid" 2>/dev/null || :
  wait "$perfpid" 2>/dev/null || :
  perfpid=""
  perf report -i "$WORK/perf.data" --stdio --no-children --percent-limit 0.7 \
    --sort dso,symbol -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60 >"$OUT/operator_bench_perf.txt" || :
fi
sleep 1
rss_all=$(rss_kb)
log "all StatefulSets seen; RSS ${rss_all} kB"

ready_count() {
  kubectl get processors -n "$NS" -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -c '^True$' || :
}
end=$((SECONDS + READY_TIMEOUT))
nready=0
while ((SECONDS < end)); do
  nready=$(ready_count)
  ((nready >= COUNT)) && break
  sleep 5
done
t_ready=$EPOCHREALTIME
rss_ready=$(rss_kb)
read -r _ anon_ready file_ready <<<"$(rss_parts)"
top_ready="$(top_files)"
cp "/proc/$op/smaps" "$OUT/operator_smaps_ready.txt" 2>/dev/null || :
hwm=$(hwm_kb)
queue=$(metric weir_operator_queue_depth)
heap_use=$(metric 'weir_operator_heap_bytes{state="in_use"}')
read -r qwait_p50 qwait_p99 <<<"$(hist_ms weir_operator_queue_wait_seconds 'priority="normal",')"
read -r qwlow_p50 qwlow_p99 <<<"$(hist_ms weir_operator_queue_wait_seconds 'priority="low",')"
cache_bytes=$(curl -fsS "http://127.0.0.1:$HTTP/metrics" |
  awk -F'[" ]' '/^weir_operator_cache_bytes\{/ { printf "%s%s %d kB", sep, $2, $NF / 1024; sep = ", " }')
read -r rec_p50 rec_p99 <<<"$(hist_ms weir_operator_reconcile_seconds)"
heap_free=$(metric 'weir_operator_heap_bytes{state="free"}')
api_ms=""
for vr in PATCH:statefulsets PATCH:configmaps PATCH:services PATCH:processors/status POST:events; do
  read -r a50 a99 <<<"$(hist_ms weir_operator_api_request_seconds "verb=\"${vr%%:*}\",resource=\"${vr#*:}\",")"
  api_ms+="${api_ms:+, }${vr%%:*} ${vr#*:} $a50/$a99"
done
curl -fsS "http://127.0.0.1:$HTTP/metrics" >"$OUT/operator_metrics.txt" || :
log "$nready/$COUNT Ready; RSS ${rss_ready} kB, peak ${hwm} kB"

# Size of one Processor and its StatefulSet as the API returns them (the
# informers cache Processors without managedFields and StatefulSets cut down
# to owner, replicas and readiness, each as its compact JSON text).
mid=$(printf 'pb-%04d' $((COUNT / 2)))
proc_bytes=$(kubectl get processor "$mid" -n "$NS" -o json | jq -c . | wc -c)
proc_nomf_bytes=$(kubectl get processor "$mid" -n "$NS" -o json | jq -c 'del(.metadata.managedFields)' | wc -c)
sts_bytes=$(kubectl get statefulset "weir-proc-$mid" -n "$NS" -o json | jq -c . | wc -c)
cpu_ticks=$(awk '{ print $14 + $15 }' "/proc/$op/stat")
clk=$(getconf CLK_TCK)

# Latencies per Processor (ms): StatefulSet first seen minus POST start,
# the POST itself, and StatefulSet seen minus Processor seen (the part after
# a watch delivered the Processor: the operator's reaction, its apply and
# the StatefulSet's watch event).
awk -v paced="$PACED" '
  FILENAME == ARGV[1] { if (!($2 in pseen)) pseen[$2] = $1; next }
  FILENAME == ARGV[2] { if (!($2 in seen)) seen[$2] = $1; next }
  ($1 in seen) {
    ms = (seen[$1] - $2) * 1000; post = ($3 - $2) * 1000
    react = ($1 in pseen) ? (seen[$1] - pseen[$1]) * 1000 : -1
    idx = substr($1, length("weir-proc-pb-") + 1) + 0
    print (idx < paced ? "paced" : "load"), ms, post, react
  }' "$WORK/pseen.txt" "$WORK/seen.txt" "$WORK/created.txt" >"$WORK/lat.txt"
stats() { # PHASE: n p50 p90 p99 max (ms)
  awk -v p="$1" '$1 == p || p == "all" { print $2 }' "$WORK/lat.txt" | sort -n |
    awk '{ v[NR] = $1 } END {
      if (NR == 0) { print "0 0 0 0 0"; exit }
      i50 = int(NR * 0.50 + 0.999); i90 = int(NR * 0.90 + 0.999); i99 = int(NR * 0.99 + 0.999)
      printf "%d %.1f %.1f %.1f %.1f\n", NR, v[i50], v[i90], v[i99], v[NR] }'
}
read -r n_p p50_p p90_p p99_p max_p <<<"$(stats paced)"
read -r n_b p50_b p90_b p99_b max_b <<<"$(stats load)"
read -r n_a p50_a p90_a p99_a max_a <<<"$(stats all)"
read -r post_p50 post_p99 <<<"$(awk '{ print $3 }' "$WORK/lat.txt" | sort -n |
  awk '{ v[NR] = $1 } END { printf "%.1f %.1f", v[int(NR * 0.50 + 0.999)], v[int(NR * 0.99 + 0.999)] }')"
read -r react_p50 react_p99 <<<"$(awk '$1 == "load" && $4 >= 0 { print $4 }' "$WORK/lat.txt" | sort -n |
  awk '{ v[NR] = $1 } END { if (NR == 0) { print "0 0"; exit }
    printf "%.1f %.1f", v[int(NR * 0.50 + 0.999)], v[int(NR * 0.99 + 0.999)] }')"
lag_max=$(awk '$4 > m { m = $4 } END { printf "%.1f", m + 0 }' "$WORK/created.txt")
load_rate=$(awk -v a="$t_load0" -v b="$t_load1" -v n="$((COUNT - PACED))" 'BEGIN { printf "%.1f", n / (b - a) }')
drain_s=$(awk -v a="$t_load0" -v b="$t_all" 'BEGIN { printf "%.1f", b - a }')
ready_s=$(awk -v a="$t_load0" -v b="$t_ready" 'BEGIN { printf "%.1f", b - a }')
cpu_load=$(cpu_delta "$WORK/cpu0.txt" "$WORK/cpu1.txt")
cpu_s=$(awk -v t="$cpu_ticks" -v c="$clk" 'BEGIN { printf "%.1f", t / c }')
per_proc_kb=$(awk -v a="$rss_deps" -v b="$rss_ready" -v n="$COUNT" 'BEGIN { printf "%.1f", (b - a) / n }')
per_proc_anon_kb=$(awk -v a="$anon_deps" -v b="$anon_ready" -v n="$COUNT" 'BEGIN { printf "%.1f", (b - a) / n }')

# What the binary maps: the shipped build links libcurl statically
# (ci/build-curl-min.sh), a fallback build the system's shared one.
# ldd fails on a static executable (the shipped build): no shared libraries.
deps=$(ldd "$OPERATOR" 2>/dev/null || :)
shared_libs=$(grep -c -e '=>' -e 'ld-linux' <<<"$deps" || :)
if grep -q 'libcurl\.so' <<<"$deps"; then
  curl_variant="shared ($(awk '/libcurl\.so/ { print $3 }' <<<"$deps"))"
else
  curl_variant="static (minimal: ci/build-curl-min.sh)"
fi
jq -n --argjson count "$COUNT" --argjson nodes "$WEIR_K8S_NODES" \
  --argjson rss_idle "$rss_idle" --argjson rss_deps "$rss_deps" --argjson rss_all "$rss_all" \
  --argjson rss_ready "$rss_ready" --argjson hwm "$hwm" --argjson ready "$nready" \
  --argjson per "$per_proc_kb" --argjson pera "$per_proc_anon_kb" \
  --argjson ai "$anon_idle" --argjson fi "$file_idle" --argjson ar "$anon_ready" --argjson fr "$file_ready" \
  --argjson hui "${heap_use_idle:-0}" --argjson hfi "${heap_free_idle:-0}" --argjson hu "${heap_use:-0}" --argjson hf "${heap_free:-0}" \
  --arg qw50 "$qwait_p50" --arg qw99 "$qwait_p99" --arg ql50 "$qwlow_p50" --arg ql99 "$qwlow_p99" --arg rc50 "$rec_p50" --arg rc99 "$rec_p99" \
  --argjson workers "$WORKERS" --argjson r50 "$react_p50" --argjson r99 "$react_p99" --arg cpuload "$cpu_load" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --argjson pb "$proc_bytes" --argjson pbn "$proc_nomf_bytes" --argjson sb "$sts_bytes" \
  --argjson np "$n_p" --argjson p50p "$p50_p" --argjson p90p "$p90_p" --argjson p99p "$p99_p" --argjson maxp "$max_p" \
  --argjson nb "$n_b" --argjson p50b "$p50_b" --argjson p90b "$p90_b" --argjson p99b "$p99_b" --argjson maxb "$max_b" \
  --argjson na "$n_a" --argjson p50a "$p50_a" --argjson p90a "$p90_a" --argjson p99a "$p99_a" --argjson maxa "$max_a" \
  --argjson post "$post_p50" --argjson post99 "$post_p99" --argjson lag "$lag_max" --argjson rate "$load_rate" --argjson drain "$drain_s" --argjson readys "$ready_s" \
  --argjson cpu "$cpu_s" --arg queue "${queue:-}" --arg build "$BUILD" --arg host "$(uname -n)" --argjson ncpu "$(nproc)" \
  --argjson nlibs "$shared_libs" --arg curlv "$curl_variant" \
  '{bench: "operator", build: $build, host: $host, cpus: $ncpu, processors: $count, kwok_nodes: $nodes,
    shared_libraries: $nlibs, libcurl: $curlv,
    rss_kb: {idle: $rss_idle, with_streams: $rss_deps, all_statefulsets: $rss_all, all_ready: $rss_ready, peak: $hwm},
    rss_anon_kb: {idle: $ai, all_ready: $ar}, rss_file_kb: {idle: $fi, all_ready: $fr},
    operator_ms: {queue_wait_normal: {p50: $qw50, p99: $qw99}, queue_wait_low: {p50: $ql50, p99: $ql99}, reconcile: {p50: $rc50, p99: $rc99}},
    heap_bytes: {idle: {in_use: $hui, free: $hfi}, all_ready: {in_use: $hu, free: $hf}},
    rss_per_processor_kb: $per, rss_anon_per_processor_kb: $pera, workers: $workers, loadavg_end: $load,
    processors_ready: $ready, queue_depth_end: $queue,
    object_json_bytes: {processor: $pb, processor_without_managed_fields: $pbn, statefulset: $sb},
    latency_ms: {paced: {n: $np, p50: $p50p, p90: $p90p, p99: $p99p, max: $maxp},
                 load: {n: $nb, p50: $p50b, p90: $p90b, p99: $p99b, max: $maxb},
                 all: {n: $na, p50: $p50a, p90: $p90a, p99: $p99a, max: $maxa}},
    post_ms: {p50: $post, p99: $post99}, processor_seen_to_statefulset_seen_ms: {p50: $r50, p99: $r99}, send_lag_ms_max: $lag, load_create_per_s: $rate,
    load_to_all_statefulsets_s: $drain, load_to_all_ready_s: $readys, operator_cpu_s: $cpu, cpu_s_load_window: $cpuload,
    goals: {rss_kb_max: 10240, p99_ms_max: 100,
            rss_met: ($rss_ready <= 10240), rss_anon_met: ($ar <= 10240), p99_met: ($p99a <= 100)}}' >"$OUT/operator_bench.json"

{
  printf 'binary: %s shared libraries (ldd), libcurl %s\n' "$shared_libs" "$curl_variant"
  printf 'weir-operator bench: %d Processors (%d paced 0.5 s apart, %d at %s/s), %d kwok nodes, %s CPUs, %s workers, load at end %s\n' \
    "$COUNT" "$PACED" "$((COUNT - PACED))" "$RATE" "$WEIR_K8S_NODES" "$(nproc)" "$WORKERS" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'RSS kB: idle %s, with ClusterStream+2 Streams %s, all StatefulSets %s, all Ready %s, peak %s (%s kB per Processor)\n' \
    "$rss_idle" "$rss_deps" "$rss_all" "$rss_ready" "$hwm" "$per_proc_kb"
  printf 'RssAnon kB: idle %s, all Ready %s (%s kB per Processor); RssFile kB: idle %s, all Ready %s\n' \
    "$anon_idle" "$anon_ready" "$per_proc_anon_kb" "$file_idle" "$file_ready"
  printf 'malloc heap kB (in use / free kept): idle %s / %s, all Ready %s / %s\n' \
    "$((${heap_use_idle:-0} / 1024))" "$((${heap_free_idle:-0} / 1024))" "$((${heap_use:-0} / 1024))" "$((${heap_free:-0} / 1024))"
  printf 'informer caches (keys + compact JSON, all Ready): %s\n' "$cache_bytes"
  printf 'largest file mappings idle (kB):\n%s\n' "$(sed 's/^/  /' <<<"$top_idle")"
  printf 'largest file mappings at the end (kB):\n%s\n' "$(sed 's/^/  /' <<<"$top_ready")"
  printf 'JSON bytes: Processor %s (%s without managedFields), StatefulSet %s\n' "$proc_bytes" "$proc_nomf_bytes" "$sts_bytes"
  printf 'latency ms (POST start -> StatefulSet seen): paced n=%s p50 %s p90 %s p99 %s max %s\n' "$n_p" "$p50_p" "$p90_p" "$p99_p" "$max_p"
  printf '                                             load  n=%s p50 %s p90 %s p99 %s max %s\n' "$n_b" "$p50_b" "$p90_b" "$p99_b" "$max_b"
  printf '                                             all   n=%s p50 %s p90 %s p99 %s max %s\n' "$n_a" "$p50_a" "$p90_a" "$p99_a" "$max_a"
  printf 'POST p50 %s p99 %s ms, sends at most %s ms late; created at %s/s; all StatefulSets %s s and %s/%s Ready %s s after the load began; operator CPU %s s\n' \
    "$post_p50" "$post_p99" "$lag_max" "$load_rate" "$drain_s" "$nready" "$COUNT" "$ready_s" "$cpu_s"
  printf 'load, Processor seen by a watch -> StatefulSet seen: p50 %s p99 %s ms\n' "$react_p50" "$react_p99"
  printf 'CPU s from load start to all StatefulSets (%s s wall, %s CPUs): %s\n' "$drain_s" "$(nproc)" "$cpu_load"
  printf 'operator side (whole run; bucket bounds): queue wait normal p50 %s p99 %s ms, low p50 %s p99 %s ms; reconcile p50 %s p99 %s ms\n' \
    "$qwait_p50" "$qwait_p99" "$qwlow_p50" "$qwlow_p99" "$rec_p50" "$rec_p99"
  printf 'API requests p50/p99 ms (bucket bounds): %s\n' "$api_ms"
  printf 'goals: VmRSS <= 10240 kB: %s; RssAnon <= 10240 kB: %s; p99 <= 100 ms: %s\n' \
    "$( ((rss_ready <= 10240)) && echo met || echo MISSED)" \
    "$( ((anon_ready <= 10240)) && echo met || echo MISSED)" \
    "$(awk -v p="$p99_a" 'BEGIN { print (p <= 100 ? "met" : "MISSED") }')"
} | tee "$OUT/operator_bench.txt"
cp "$WORK/lat.txt" "$OUT/operator_bench_latencies.txt"
rc=0
