#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end: the operator's output is what the dataplane executes.
#   1. the real control plane (tests/harness/k8s.sh, kwok nodes), install.yaml,
#      and weir-operator out of cluster with its ServiceAccount token (RBAC);
#   2. every example passes the API server's validation
#      (kubectl apply --dry-run=server, the CRDs' schemas and CEL rules);
#   3. a local Weir store, and examples/iot-monitoring applied with its
#      ClusterStream turned into `protocol: kafka` + `url` of that store
#      (bring your own broker); the operator creates the topics there and the
#      Processor becomes Ready;
#   4. the pipeline.json of the ConfigMap the operator rendered is taken with
#      kubectl and must equal what `weirctl render` makes of the same files,
#      and the StatefulSet's processor container runs `weir-dataplane --role
#      processor --spec` on that ConfigMap key. Every other example's
#      Processors must match weirctl's rendering too (each example in its own
#      namespace; the namespace and local UDF ports are what weirctl changes);
#   5. `weir-dataplane --role processor --spec` runs exactly that file against
#      the store, generated readings go in, and the error counts that come out
#      must equal the reference computed from the input
#      (examples_driver.py iot-monitoring --external).
# Ports: harness 19980-19985, store 20290, operator HTTP 20291.
set -euo pipefail

readonly NAME=e2e_operator_spec
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly H="$ROOT/tests/harness/k8s.sh"
readonly STORE_H="$ROOT/tests/harness/store.sh"
readonly BUILD="${WEIR_BUILD_DIR:-$ROOT/build}"
readonly OPERATOR="$BUILD/operator/weir-operator"
readonly WEIRCTL="$BUILD/operator/weirctl"
readonly DATAPLANE="$BUILD/dataplane/weir-dataplane"
export WEIR_STORE_BIN="$DATAPLANE"
export WEIR_K8S_PORT_BASE="${WEIR_E2E_PORT_BASE:-19980}"
export WEIR_K8S_NODES=1
readonly STORE_PORT=20290 HTTP_PORT=20291
readonly BOOT="127.0.0.1:$STORE_PORT"
readonly EXAMPLE=iot-monitoring PROC=sensor-errors

for b in "$OPERATOR" "$WEIRCTL" "$DATAPLANE"; do
  if [[ ! -x "$b" ]]; then
    echo "$NAME: SKIP: $b is not built (set WEIR_BUILD_DIR)"
    exit 77
  fi
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-$NAME.XXXXXX")"
readonly WORK
readonly DIR="$WORK/k8s"
rc=1
op_pid="" dp_pid=""

stop_pid() { # PID: SIGTERM, wait up to 20 s, then SIGKILL
  local p=$1 i
  [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null || :
  for ((i = 0; i < 200; i++)); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$p" 2>/dev/null || :
  wait "$p" 2>/dev/null || :
}

cleanup() {
  local status=$?
  trap - INT TERM HUP
  stop_pid "$dp_pid"
  stop_pid "$op_pid"
  "$STORE_H" stop "$WORK/store" >"$WORK/store-stop.log" 2>&1 || :
  "$H" stop "$DIR" >"$WORK/stop.log" 2>&1 || status=1
  if ((status == 0 && rc == 0)); then
    rm -rf "$WORK"
    echo "$NAME: passed"
    exit 0
  fi
  echo "$NAME: failed; keeping $WORK (operator.log, dataplane.log, harness logs in $DIR/logs)" >&2
  exit 1
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# shellcheck source=tests/harness/k8s/op_test_lib.sh
source "$ROOT/tests/harness/k8s/op_test_lib.sh"

step "control plane on port base $WEIR_K8S_PORT_BASE"
"$H" install >"$WORK/install-k8s.log" 2>&1 || fail "harness install: $(tail -5 "$WORK/install-k8s.log")"
"$H" start "$DIR" >"$WORK/env.sh"
# shellcheck disable=SC1091
source "$WORK/env.sh"
unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT

step "install.yaml"
kubectl apply --server-side -f "$ROOT/install.yaml" >"$WORK/install.log"
kubectl wait --for=condition=Established --timeout=60s \
  crd/clusterstreams.streaming.weir.dev crd/streams.streaming.weir.dev \
  crd/processors.streaming.weir.dev >/dev/null

step "every example is valid for the API server (dry-run=server)"
n=0
for d in "$ROOT"/examples/*/; do
  compgen -G "$d*.yaml" >/dev/null || continue
  for f in "$d"*.yaml; do
    grep -q 'apiVersion: streaming.weir.dev/' "$f" || continue
    kubectl apply --dry-run=server -f "$f" >"$WORK/dry-run.log" 2>&1 ||
      fail "$f is refused by the API server: $(cat "$WORK/dry-run.log")"
    n=$((n + 1))
  done
done
((n >= 12)) || fail "only $n example manifests found"
step "$n example manifests accepted"

step "operator with its ServiceAccount token"
sa_kubeconfig weir-operator weir-system "$WORK/operator.kubeconfig"
[[ "$(kubectl --kubeconfig="$WORK/operator.kubeconfig" auth can-i list secrets -A || :)" == no ]] ||
  fail "the operator's token may list secrets (RBAC not in force)"

step "store on $BOOT"
"$STORE_H" start "$WORK/store" "$STORE_PORT" 1 >"$WORK/store-start.log" 2>&1 ||
  fail "store did not start: $(cat "$WORK/store-start.log")"

POD_NAME=e2e-op ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
  "$OPERATOR" --kubeconfig="$WORK/operator.kubeconfig" --leader-elect=true \
  --leader-election-namespace=weir-system --leader-election-id=weir-operator \
  --store-namespace=weir-system --dataplane-image=weir-dataplane:e2e \
  --watch-timeout-seconds=5 --http-port="$HTTP_PORT" --metrics=true >>"$WORK/operator.log" 2>&1 &
op_pid=$!
wait_for 30 "the operator answers /readyz" curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz"

step "examples/$EXAMPLE with a kafka ClusterStream on the local store"
mkdir -p "$WORK/manifests"
python3 - "$ROOT/examples/$EXAMPLE/$EXAMPLE.yaml" "$WORK/manifests/$EXAMPLE.yaml" "$BOOT" <<'PY'
import sys
src, dst, boot = sys.argv[1:]
text = open(src).read()
old = "    server:\n      protocol: weir\n"
assert text.count(old) == 1, "the example's ClusterStream is not the expected protocol: weir"
open(dst, "w").write(text.replace(old, "    server:\n      protocol: kafka\n      url: kafka://%s\n" % boot))
PY
kubectl apply -f "$WORK/manifests/$EXAMPLE.yaml" >"$WORK/apply.log" 2>&1 ||
  fail "kubectl apply: $(cat "$WORK/apply.log")"
wait_for 60 "ClusterStream iot Ready" ready_is clusterstream iot "" True ProtocolDeployed
wait_for 60 "Stream readings Ready" ready_is stream readings default True StreamDeployed
wait_for 60 "Stream sensor-errors Ready" ready_is stream sensor-errors default True StreamDeployed
wait_for 90 "Processor $PROC Ready" ready_is processor "$PROC" default True ProcessorDeployed
"$WEIRCTL" topics --bootstrap "$BOOT" >"$WORK/topics.txt"
grep -qx "readings	2" "$WORK/topics.txt" || fail "the operator did not create readings with 2 partitions: $(cat "$WORK/topics.txt")"
grep -qx "sensor-errors	1" "$WORK/topics.txt" || fail "the operator did not create sensor-errors: $(cat "$WORK/topics.txt")"

step "the rendered ConfigMap's pipeline.json"
kubectl get configmap "weir-proc-$PROC" -n default -o jsonpath='{.data.pipeline\.json}' >"$WORK/pipeline.json"
[[ -s "$WORK/pipeline.json" ]] || fail "ConfigMap weir-proc-$PROC has no pipeline.json"
"$WEIRCTL" render --store-port "$STORE_PORT" "$WORK/manifests" >"$WORK/render.json" ||
  fail "weirctl render failed"
python3 - "$WORK/pipeline.json" "$WORK/render.json" "$BOOT" "$PROC" <<'PY' || fail "the operator's spec differs from weirctl's rendering"
import json, sys
spec = json.load(open(sys.argv[1]))
plan = json.load(open(sys.argv[2]))
boot, proc = sys.argv[3], sys.argv[4]
mine = [p for p in plan["processors"] if p["name"] == proc][0]["replicas_plan"][0]["spec"]
for side in ("inputs", "outputs"):
    for x in spec[side]:
        assert x["cluster"]["bootstrap"] == boot, (side, x["cluster"])
if spec != mine:
    for k in sorted(set(spec) | set(mine)):
        if spec.get(k) != mine.get(k):
            print("differs at %s: operator %r, weirctl %r" % (k, spec.get(k), mine.get(k)), file=sys.stderr)
    sys.exit(1)
PY
step "the operator's spec equals weirctl's rendering; bootstrap $BOOT"
# The pod the operator deploys runs weir-dataplane on exactly that file.
kubectl get statefulset "weir-proc-$PROC" -n default -o json >"$WORK/sts.json"
python3 - "$WORK/sts.json" "weir-proc-$PROC" <<'PY' || fail "the StatefulSet does not run the ConfigMap's pipeline.json"
import json, sys
sts, cm = json.load(open(sys.argv[1])), sys.argv[2]
pod = sts["spec"]["template"]["spec"]
c = [c for c in pod["containers"] if c["name"] == "processor"][0]
argv = c.get("command", []) + c.get("args", [])
i = argv.index("--spec")
path = argv[i + 1]
assert "--role" in argv and argv[argv.index("--role") + 1] == "processor", argv
mounts = [m for m in c["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/")]
assert len(mounts) == 1, (path, c["volumeMounts"])
vol = [v for v in pod["volumes"] if v["name"] == mounts[0]["name"]][0]
assert vol["configMap"]["name"] == cm, vol
items = {it["path"]: it["key"] for it in vol["configMap"].get("items", [])}
rel = path[len(mounts[0]["mountPath"].rstrip("/")) + 1:]
assert items.get(rel, rel) == "pipeline.json", (rel, items)
print("pod runs: %s (ConfigMap %s key pipeline.json)" % (" ".join(argv[:4]), cm))
PY

step "every other example: the operator's ConfigMaps equal weirctl's rendering"
# Each example in its own namespace, its ClusterStreams turned into kafka on
# the same store. Only the rendering is compared here (no Ready wait: two
# examples' Streams name the same topic with different partition counts).
python3 - "$ROOT/examples" "$WORK/all" "$BOOT" "$EXAMPLE" <<'PY'
import os, re, sys
src, dst, boot, skip = sys.argv[1:]
for name in sorted(os.listdir(src)):
    d = os.path.join(src, name)
    files = [f for f in sorted(os.listdir(d)) if f.endswith(".yaml")] if os.path.isdir(d) else []
    if name == skip or not files:
        continue
    os.makedirs(os.path.join(dst, name))
    for f in files:
        text = open(os.path.join(d, f)).read()
        text = text.replace("    server:\n      protocol: weir\n",
                            "    server:\n      protocol: kafka\n      url: kafka://%s\n" % boot)
        open(os.path.join(dst, name, f), "w").write(text)
PY
nex=0
for d in "$WORK"/all/*/; do
  ex="$(basename "$d")"
  kubectl create namespace "ex-$ex" >/dev/null
  kubectl apply -n "ex-$ex" -f "$d" >"$WORK/apply-$ex.log" 2>&1 || fail "kubectl apply $ex: $(cat "$WORK/apply-$ex.log")"
  "$WEIRCTL" render --store-port "$STORE_PORT" "$d" >"$WORK/render-$ex.json" 2>"$WORK/render-$ex.err" ||
    fail "weirctl render $ex: $(cat "$WORK/render-$ex.err")"
  for p in $(python3 -c 'import json,sys; print(" ".join(p["name"] for p in json.load(open(sys.argv[1]))["processors"]))' "$WORK/render-$ex.json"); do
    wait_for 60 "ConfigMap weir-proc-$p in ex-$ex" bash -c "kubectl get configmap weir-proc-$p -n ex-$ex -o jsonpath='{.data.pipeline\.json}' | grep -q version"
    kubectl get configmap "weir-proc-$p" -n "ex-$ex" -o jsonpath='{.data.pipeline\.json}' >"$WORK/cm-$ex-$p.json"
    python3 - "$WORK/cm-$ex-$p.json" "$WORK/render-$ex.json" "$p" "ex-$ex" <<'PY' || fail "$ex: Processor $p: the operator's spec differs from weirctl's rendering"
import json, sys
spec = json.load(open(sys.argv[1]))
plan = json.load(open(sys.argv[2]))
proc, ns = sys.argv[3], sys.argv[4]
mine = [p for p in plan["processors"] if p["name"] == proc][0]["replicas_plan"][0]["spec"]
# weirctl renders into namespace default and gives each UDF a local port:
# the two differences it makes on purpose (docs/internals/weirctl.md).
assert spec["namespace"] == ns, spec["namespace"]
mine["namespace"] = ns
for a, b in zip(spec.get("udfs", []), mine.get("udfs", [])):
    assert a["endpoint"].startswith("127.0.0.1:"), a
    b["endpoint"] = a["endpoint"]
if spec != mine:
    for k in sorted(set(spec) | set(mine)):
        if spec.get(k) != mine.get(k):
            print("differs at %s: operator %r, weirctl %r" % (k, spec.get(k), mine.get(k)), file=sys.stderr)
    sys.exit(1)
PY
    nex=$((nex + 1))
  done
done
((nex >= 15)) || fail "only $nex Processors compared"
step "$nex more Processors: the operator's pipeline.json equals weirctl render's"

step "weir-dataplane --role processor --spec <the ConfigMap's pipeline.json>"
mkdir -p "$WORK/dp/data" "$WORK/dp/checkpoints"
"$DATAPLANE" --role processor --spec "$WORK/pipeline.json" --pod-name "weir-proc-$PROC-0" \
  --data-dir "$WORK/dp/data" --checkpoint-dir "$WORK/dp/checkpoints" --http-port 0 \
  >"$WORK/dataplane.log" 2>&1 &
dp_pid=$!
wait_for 30 "the processor is assigned its partitions" grep -q 'assigned partitions' "$WORK/dataplane.log"

step "generated readings in, error counts out"
python3 "$ROOT/tests/integration/examples_driver.py" "$EXAMPLE" --external "$BOOT" ||
  fail "the output of the operator's spec is not the expected one"
kill -0 "$dp_pid" 2>/dev/null || fail "weir-dataplane exited: $(tail -5 "$WORK/dataplane.log")"
stop_pid "$dp_pid"
dp_pid=""
if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error:" "$WORK/dataplane.log" "$WORK/operator.log"; then
  fail "sanitizer report in a log"
fi
rc=0
