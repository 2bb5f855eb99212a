#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Resilience of weir-operator against a real control plane
# (tests/harness/k8s.sh, kwok nodes) and a real Weir store
# (tests/harness/store.sh):
#   (a) `helm install` of helm/weir (Deployment scaled to 0: the operator runs
#       out of cluster with the chart's ServiceAccount token, so the chart's
#       RBAC is what is enforced);
#   (b) kube-apiserver killed (SIGKILL) mid-watch and started again with the
#       same command line: the informers relist and rewatch, and a Stream and
#       a Processor applied after the restart become Ready;
#   (c) kube-apiserver restarted with --watch-cache=false, so watches reach
#       etcd; two writes the informers do not watch, then an etcd compaction
#       at the revision of the second: every informer's next rewatch starts
#       below the compaction and gets 410 Gone. weir_operator_relists_total
#       grows, the log says "resource version expired (410 Gone), relisting"
#       (and no watch broke), and a Processor applied afterwards is reconciled.
#       Why two writes: the apiserver watches etcd from resourceVersion+1, and
#       etcd still serves a watch that starts exactly at the compaction
#       revision. With one write right after the informers' last seen
#       version, the rewatch starts at that write's revision = the compaction
#       revision, and no 410 comes; it only did when some other write (a kwok
#       node lease renewal) happened in between, which is what made the first
#       version of this step pass twice and fail once.
# The harness cannot restart one component, so the test does it: it reads the
# apiserver's command line from /proc/PID/cmdline, kills it, starts it again
# under setsid with the same log, and rewrites its line in DIR/pids so that
# `k8s.sh stop` still finds it.
# Ports: 19850-19899 (harness base 19850, store 19870, operator HTTP 19871);
# its own instance dirs.
set -euo pipefail

readonly NAME=op_resilience
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly H="$ROOT/tests/harness/k8s.sh"
readonly STORE_H="$ROOT/tests/harness/store.sh"
readonly BUILD="${WEIR_BUILD_DIR:-$ROOT/build}"
readonly OPERATOR="$BUILD/operator/weir-operator"
export WEIR_STORE_BIN="${WEIR_STORE_BIN:-$BUILD/dataplane/weir-dataplane}"
export WEIR_K8S_PORT_BASE="${WEIR_OP_RESILIENCE_PORT_BASE:-19850}"
export WEIR_K8S_NODES=1
readonly STORE_PORT=$((WEIR_K8S_PORT_BASE + 20))
readonly BOOT="127.0.0.1:$STORE_PORT"
readonly HTTP=$((WEIR_K8S_PORT_BASE + 21))
readonly ETCD_URL="http://127.0.0.1:$((WEIR_K8S_PORT_BASE + 1))"
readonly NS=weir-system RELEASE=weir SA=weir-operator

for b in "$OPERATOR" "$WEIR_STORE_BIN"; do
  if [[ ! -x "$b" ]]; then
    echo "$NAME: $b is not built (set WEIR_BUILD_DIR)" >&2
    exit 1
  fi
done
for c in curl jq; do
  command -v "$c" >/dev/null || {
    echo "$NAME: $c not found" >&2
    exit 77
  }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-$NAME.XXXXXX")"
readonly WORK
readonly DIR="$WORK/k8s"
readonly OPLOG="$WORK/op.log"
rc=1
op=""

cleanup() {
  local status=$?
  trap - INT TERM HUP
  if [[ -n "$op" ]] && kill -0 "$op" 2>/dev/null; then
    kill -TERM "$op" 2>/dev/null || :
    if ! wait "$op"; then
      echo "$NAME: operator $op exited non-zero" >&2
      status=1
    fi
  fi
  "$STORE_H" stop "$WORK/store" >"$WORK/store-stop.log" 2>&1 || :
  if ! "$H" stop "$DIR" >"$WORK/stop.log" 2>&1; then
    echo "$NAME: could not stop the harness in $DIR" >&2
    status=1
  fi
  if grep -l "ERROR: \(Address\|Leak\)Sanitizer\|runtime error:" "$OPLOG" 2>/dev/null; then
    echo "$NAME: sanitizer report in the operator log" >&2
    status=1
  fi
  if ((status == 0 && rc == 0)); then
    rm -rf "$WORK"
    echo "$NAME: passed"
    exit 0
  fi
  echo "$NAME: failed; keeping $WORK (operator log op.log, harness logs in $DIR/logs)" >&2
  exit 1
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# shellcheck source=tests/harness/k8s/op_test_lib.sh
source "$ROOT/tests/harness/k8s/op_test_lib.sh"
exists() { kubectl get "$@" >/dev/null 2>&1; }

# relists RESOURCE: the operator's weir_operator_relists_total for RESOURCE.
relists() {
  curl -fsS "http://127.0.0.1:$HTTP/metrics" |
    awk -v r="weir_operator_relists_total{resource=\"$1\"}" '$1 == r { print $2; f = 1 } END { exit !f }'
}
relists_above() { local n; n="$(relists "$1")" && ((n > $2)); }
log_lines() { grep -c -- "$1" "$OPLOG" || :; }

apiserver_pid() { awk '$1 == "kube-apiserver" { print $2 }' "$DIR/pids"; }
apiserver_ready() { [[ "$(kubectl get --raw /readyz 2>/dev/null)" == ok ]]; }

# restart_apiserver [EXTRA_FLAG...]: SIGKILL the harness's kube-apiserver and
# start it again with its own command line (plus EXTRA_FLAGs), appending to
# its log; DIR/pids gets the new pid.
restart_apiserver() {
  local old new end
  local -a cmd=()
  old="$(apiserver_pid)"
  [[ -n "$old" && -r "/proc/$old/cmdline" ]] || fail "no running kube-apiserver in $DIR/pids"
  mapfile -d '' -t cmd <"/proc/$old/cmdline"
  [[ "${cmd[0]}" == */kube-apiserver ]] || fail "pid $old is not kube-apiserver: ${cmd[0]}"
  kill -KILL "$old"
  end=$((SECONDS + 20))
  while [[ -e "/proc/$old" && "$(awk '{ print $3 }' "/proc/$old/stat" 2>/dev/null)" != Z ]]; do
    ((SECONDS < end)) || fail "kube-apiserver $old survived SIGKILL"
    sleep 0.1
  done
  # Long enough for every informer's watch to notice and its relist to fail.
  sleep "${DOWNTIME:-3}"
  setsid "${cmd[@]}" "$@" >>"$DIR/logs/kube-apiserver.log" 2>&1 </dev/null &
  new=$!
  # Not this shell's job any more: no "Killed" notice when the next restart kills it.
  disown "$new"
  sed -i "s/^kube-apiserver $old\$/kube-apiserver $new/" "$DIR/pids"
  wait_for 90 "kube-apiserver $new /readyz" apiserver_ready
  step "kube-apiserver restarted: pid $old -> $new${*:+ (with $*)}"
}

"$H" install
"$H" start "$DIR" >"$WORK/env.sh"
# shellcheck disable=SC1091
source "$WORK/env.sh"
unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT
HELM="$("$ROOT/ci/helm.sh")"
readonly HELM
# helm's own state stays in WORK.
export HELM_CACHE_HOME="$WORK/helm/cache" HELM_CONFIG_HOME="$WORK/helm/config" \
  HELM_DATA_HOME="$WORK/helm/data"

step "(a) helm install $RELEASE (operator Deployment scaled to 0)"
"$HELM" install "$RELEASE" "$ROOT/helm/weir" --namespace "$NS" --create-namespace \
  --set replicaCount=0 --wait=false >"$WORK/helm-install.log" 2>&1 ||
  fail "helm install: $(cat "$WORK/helm-install.log")"
status="$("$HELM" status "$RELEASE" -n "$NS" -o json | jq -r .info.status)"
[[ "$status" == deployed ]] || fail "helm status is '$status', not deployed"
kubectl wait --for=condition=Established --timeout=60s \
  crd/clusterstreams.streaming.weir.dev crd/streams.streaming.weir.dev \
  crd/processors.streaming.weir.dev >/dev/null
exists serviceaccount "$SA" -n "$NS" || fail "ServiceAccount $NS/$SA missing"
exists clusterrole "$SA" || fail "ClusterRole $SA missing"
exists clusterrolebinding "$SA" || fail "ClusterRoleBinding $SA missing"
[[ "$(jp clusterrolebinding "$SA" -o jsonpath='{.roleRef.name}/{.subjects[0].kind}/{.subjects[0].namespace}/{.subjects[0].name}')" == "$SA/ServiceAccount/$NS/$SA" ]] ||
  fail "ClusterRoleBinding $SA does not bind ClusterRole $SA to $NS/$SA"
[[ "$(jp deployment "$SA" -n "$NS" -o jsonpath='{.spec.replicas}')" == 0 ]] ||
  fail "the chart's Deployment is not scaled to 0"

step "operator kubeconfig from the chart's ServiceAccount token"
sa_kubeconfig "$SA" "$NS" "$WORK/operator.kubeconfig"
[[ "$(kubectl --kubeconfig="$WORK/operator.kubeconfig" auth can-i list secrets -A || :)" == no ]] ||
  fail "the chart's token may list secrets"
[[ "$(kubectl --kubeconfig="$WORK/operator.kubeconfig" auth can-i watch processors.streaming.weir.dev -A || :)" == yes ]] ||
  fail "the chart's token may not watch processors"

step "store on $BOOT"
"$STORE_H" start "$WORK/store" "$STORE_PORT" 1 >"$WORK/store-start.log" 2>&1 ||
  fail "store did not start: $(cat "$WORK/store-start.log")"

WEIR_LOG_LEVEL=debug ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
  "$OPERATOR" --kubeconfig="$WORK/operator.kubeconfig" --leader-elect=false \
  --store-namespace="$NS" --dataplane-image=weir-dataplane:test \
  --watch-timeout-seconds=5 --http-port="$HTTP" --metrics=true >>"$OPLOG" 2>&1 &
op=$!
wait_for 30 "operator /readyz answers 200" curl -fsS "http://127.0.0.1:$HTTP/readyz"

kubectl create namespace demo >/dev/null
kubectl apply -f - >/dev/null <<YAML
apiVersion: streaming.weir.dev/v1alpha1
kind: ClusterStream
metadata: {name: local}
spec:
  name: local
  storage:
    server: {protocol: kafka, url: "kafka://$BOOT"}
    reclaimPolicy: Delete
---
apiVersion: streaming.weir.dev/v1alpha1
kind: Stream
metadata: {name: orders, namespace: demo}
spec: {name: orders, protocol: kafka, storage: {clusterStream: local}}
---
apiVersion: streaming.weir.dev/v1alpha1
kind: Stream
metadata: {name: enriched, namespace: demo}
spec: {name: enriched, protocol: kafka, storage: {clusterStream: local}}
---
apiVersion: streaming.weir.dev/v1alpha1
kind: Processor
metadata: {name: p1, namespace: demo}
spec:
  inputs: [{name: orders}]
  outputs: [{name: enriched}]
  filter: "payload.amount > 10"
YAML
wait_for 30 "ClusterStream local Ready" ready_is clusterstream local "" True ProtocolDeployed
wait_for 30 "Stream orders Ready" ready_is stream orders demo True StreamDeployed
wait_for 90 "Processor p1 Ready=True (before any restart)" ready_is processor p1 demo True ProcessorDeployed

step "(b) kube-apiserver killed mid-watch and started again"
# Let the watches run past one watch timeout so they are mid-stream.
sleep 6
r0_streams="$(relists streams)"
r0_procs="$(relists processors)"
broken0="$(log_lines '"watch failed, relisting"')"
restart_apiserver
wait_for 60 "streams informer relisted" relists_above streams "$r0_streams"
wait_for 60 "processors informer relisted" relists_above processors "$r0_procs"
broken1="$(log_lines '"watch failed, relisting"')"
((broken1 > broken0)) || fail "the operator log shows no broken watch after the restart"
step "log: $((broken1 - broken0)) 'watch failed, relisting' lines, $(log_lines '"list failed"') 'list failed' lines; relists streams $r0_streams -> $(relists streams), processors $r0_procs -> $(relists processors)"
wait_for 30 "operator /readyz after the restart" curl -fsS "http://127.0.0.1:$HTTP/readyz"
kubectl apply -f - >/dev/null <<YAML
apiVersion: streaming.weir.dev/v1alpha1
kind: Stream
metadata: {name: audit, namespace: demo}
spec: {name: audit, protocol: kafka, storage: {clusterStream: local}}
---
apiVersion: streaming.weir.dev/v1alpha1
kind: Processor
metadata: {name: p2, namespace: demo}
spec:
  inputs: [{name: orders}]
  outputs: [{name: audit}]
YAML
wait_for 60 "Stream audit Ready after the restart" ready_is stream audit demo True StreamDeployed
wait_for 90 "Processor p2 Ready=True after the restart" ready_is processor p2 demo True ProcessorDeployed
ready_is processor p1 demo True ProcessorDeployed || fail "Processor p1 lost Ready"

step "(c) 410 Gone: apiserver without watch cache, etcd compacted"
r2_streams="$(relists streams)"
DOWNTIME=1 restart_apiserver --watch-cache=false
wait_for 60 "streams informer relisted after the second restart" relists_above streams "$r2_streams"
wait_for 30 "operator /readyz after the second restart" curl -fsS "http://127.0.0.1:$HTTP/readyz"
# Every informer back to plain watching: one full watch timeout (5 s) and a
# margin with no new relist of any resource.
all_relists() { curl -fsS "http://127.0.0.1:$HTTP/metrics" | awk '/^weir_operator_relists_total/ { s += $2 } END { print s + 0 }'; }
settled() { local a b; a="$(all_relists)" && sleep 7 && b="$(all_relists)" && ((a == b)); }
wait_for 90 "informers watching again" settled
r1_streams="$(relists streams)"
r1_procs="$(relists processors)"
broken2="$(log_lines '"watch failed, relisting"')"
gone0="$(log_lines 'resource version expired (410 Gone), relisting')"
# Two writes nobody here watches, then a compaction at the second one's
# revision: each informer's last seen version v satisfies v+1 < that
# revision, so its next rewatch (within --watch-timeout-seconds=5) is below
# the compaction.
kubectl create configmap bump1 -n demo --from-literal=k=v >/dev/null
kubectl create configmap bump2 -n demo --from-literal=k=v >/dev/null
rev="$(curl -fsS -X POST "$ETCD_URL/v3/kv/range" -d '{"key":"AA=="}' | jq -r .header.revision)"
[[ "$rev" =~ ^[0-9]+$ ]] || fail "etcd revision: '$rev'"
curl -fsS -X POST "$ETCD_URL/v3/kv/compaction" -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null ||
  fail "etcd compaction at $rev"
step "etcd compacted at revision $rev"
wait_for 30 "streams informer relisted after the compaction" relists_above streams "$r1_streams"
wait_for 30 "processors informer relisted after the compaction" relists_above processors "$r1_procs"
gone1="$(log_lines 'resource version expired (410 Gone), relisting')"
((gone1 > gone0)) || fail "no 'resource version expired (410 Gone)' line after the compaction"
broken3="$(log_lines '"watch failed, relisting"')"
((broken3 == broken2)) ||
  fail "the relist came from a broken watch, not a 410 ($((broken3 - broken2)) new 'watch failed' lines)"
step "410 Gone: $((gone1 - gone0)) expired-version lines; relists streams $r1_streams -> $(relists streams), processors $r1_procs -> $(relists processors); no broken watch"
kubectl apply -f - >/dev/null <<YAML
apiVersion: streaming.weir.dev/v1alpha1
kind: Processor
metadata: {name: p3, namespace: demo}
spec:
  inputs: [{name: audit}]
  outputs: [{name: enriched}]
YAML
wait_for 90 "Processor p3 Ready=True after the 410" ready_is processor p3 demo True ProcessorDeployed

curl -fsS "http://127.0.0.1:$HTTP/metrics" | grep '^weir_operator_relists_total' >"$WORK/relists.txt"
step "final relists: $(tr '\n' ' ' <"$WORK/relists.txt")"

rc=0
