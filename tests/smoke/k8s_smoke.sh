#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Smoke test of the Kubernetes harness (tests/harness/k8s.sh): builds or reuses
# the pinned binaries, starts a control plane with kwok nodes in a temp dir,
# checks version, workloads, RBAC and CRDs against it, and always stops it.
set -euo pipefail

readonly SMOKE_NAME=k8s_smoke
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly H="$ROOT/tests/harness/k8s.sh"
# A port block of its own, so a developer's harness on the default one can stay up.
export WEIR_K8S_PORT_BASE="${WEIR_K8S_SMOKE_PORT_BASE:-26540}"
export WEIR_K8S_NODES=2
readonly WAIT="${WEIR_K8S_SMOKE_WAIT:-120s}"

passed=0
failed=0
interrupted=0
WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-$SMOKE_NAME.XXXXXX")"
readonly WORK
readonly DIR="$WORK/k8s"

pass() {
  passed=$((passed + 1))
  printf 'ok   %s\n' "$1"
}

fail() {
  failed=$((failed + 1))
  printf 'FAIL %s\n' "$1"
  if [[ -s "$WORK/last.log" ]]; then
    sed 's/^/     | /' "$WORK/last.log" | tail -n 30
  fi
}

# check NAME CMD...: run CMD (output in WORK/last.log) and count the result.
# CMD runs in the background and is waited for, so a signal interrupts the
# wait at once. errexit is off inside CMD: helpers use `|| return 1`.
check() {
  local name="$1" child
  shift
  "$@" >"$WORK/last.log" 2>&1 &
  child=$!
  if wait "$child"; then
    pass "$name"
  else
    fail "$name"
  fi
}

# Print the pids whose parent is $1 (plain /proc walk: no procps needed).
child_pids() {
  local stat line rest ppid pid
  for stat in /proc/[0-9]*/stat; do
    { read -r line <"$stat"; } 2>/dev/null || continue # already gone
    rest="${line##*) }"                                # fields after "(comm) "
    ppid="${rest#* }"
    ppid="${ppid%% *}"
    if [[ "$ppid" == "$1" ]]; then
      pid="${stat#/proc/}"
      printf '%s\n' "${pid%/stat}"
    fi
  done
}

# Print every descendant of pid $1, deepest first.
descendants() {
  local pid
  for pid in $(child_pids "$1"); do
    descendants "$pid"
    printf '%s\n' "$pid"
  done
}

# SIGTERM this test's own processes (a check cut short by a signal, and
# below it `k8s.sh start` or kubectl), then wait up to 30 s for them to go.
# `k8s.sh start` stops what it had started when it gets SIGTERM.
end_children() {
  local pids pid end=$((SECONDS + 30)) left
  pids="$(descendants "$$")"
  [[ -n "$pids" ]] || return 0
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || :; done
  while ((SECONDS < end)); do
    left=0
    for pid in $pids; do
      if [[ -d /proc/$pid ]] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
        left=1
      fi
    done
    ((left)) || return 0
    sleep 0.2
  done
}

on_signal() {
  echo "$SMOKE_NAME: interrupted by SIG$1" >&2
  interrupted=1
  exit "$2"
}

# Runs on every exit: stop the harness (a second stop is a no-op), print
# the summary last.
cleanup() {
  local rc=$?
  trap - INT TERM HUP
  end_children
  if ! "$H" stop "$DIR" >"$WORK/stop.log" 2>&1; then
    echo "$SMOKE_NAME: could not stop the harness in $DIR" >&2
    cat "$WORK/stop.log" >&2
    failed=$((failed + 1))
  fi
  if ((rc != 0 || interrupted)) && ((failed == 0)); then
    echo "$SMOKE_NAME: aborted (exit $rc)" >&2
    failed=1
  fi
  if ((failed == 0)); then
    rm -rf "$WORK"
  else
    echo "$SMOKE_NAME: keeping $WORK for inspection (harness logs in $DIR/logs)" >&2
  fi
  echo "$SMOKE_NAME: $passed passed, $failed failed"
  ((failed == 0)) || exit 1
  exit 0
}

trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

# kubectl of the pinned release against the harness, bounded in time.
k() { timeout 180 "$WEIR_KUBECTL" --kubeconfig "$DIR/kubeconfig" --request-timeout=30s "$@"; }

# expect_eq WANT CMD...: CMD's stdout must be exactly WANT.
expect_eq() {
  local want="$1" got
  shift
  got="$("$@")" || return 1
  if [[ "$got" != "$want" ]]; then
    printf 'expected %q, got %q from: %s\n' "$want" "$got" "$*"
    return 1
  fi
  echo "$got"
}

# ------------------------------------------------------------------ checks --

t_install() {
  "$H" install || return 1
  local b
  for b in $("$H" bin); do ls -l "$b" || return 1; done
}

t_start() {
  "$H" start "$DIR" >"$WORK/env.sh" || return 1
  cat "$WORK/env.sh"
  grep -qx "export KUBECONFIG='$DIR/kubeconfig'" "$WORK/env.sh" || return 1
  # `env` prints the same lines again.
  "$H" env "$DIR" | diff - "$WORK/env.sh"
}

t_version() {
  local want json
  want="$("$H" versions | awk '$1 == "kubernetes" { print $2 }')"
  json="$(k version -o json)" || return 1
  echo "$json"
  json="$(tr -d ' \n' <<<"$json")"
  [[ "$json" =~ \"serverVersion\":\{[^}]*\"gitVersion\":\""$want"\" ]] || {
    echo "server gitVersion is not $want"
    return 1
  }
  [[ "$json" =~ \"clientVersion\":\{[^}]*\"gitVersion\":\""$want"\" ]] || {
    echo "client gitVersion is not $want"
    return 1
  }
}

t_loopback_only() {
  # Every port of the block is bound to 127.0.0.1 (or not at all) and the
  # apiserver serves a certificate for the SANs clients use.
  local p hex
  for p in $(seq "$WEIR_K8S_PORT_BASE" $((WEIR_K8S_PORT_BASE + 5))); do
    hex="$(printf '%04X' "$p")"
    if grep -qE "^ *[0-9]+: (00000000|0{32}):$hex " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      echo "port $p is bound to a wildcard address"
      return 1
    fi
    grep -qE "^ *[0-9]+: 0100007F:$hex 00000000:0000 0A " /proc/net/tcp || {
      echo "nothing listens on 127.0.0.1:$p"
      return 1
    }
  done
  k get --raw /readyz --server "https://localhost:$WEIR_K8S_PORT_BASE" || return 1
  echo
}

t_nodes() {
  k get nodes -o wide || return 1
  expect_eq "kwok-node-0 kwok-node-1" k get nodes -l type=kwok -o 'jsonpath={.items[*].metadata.name}' || return 1
  k wait --for=condition=Ready node -l type=kwok --timeout="$WAIT"
}

t_service_configmap() {
  k apply -f - <<'EOF' || return 1
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  clusterIP: None
  selector:
    app: web
  ports:
  - name: http
    port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: default
data:
  pipeline.yaml: |
    source: kafka
    sink: stdout
EOF
  expect_eq None k get service web -o 'jsonpath={.spec.clusterIP}' || return 1
  k get configmap web-config -o 'jsonpath={.data.pipeline\.yaml}' | grep -qx 'source: kafka' || {
    k get configmap web-config -o yaml
    return 1
  }
}

t_statefulset() {
  k apply -f - <<'EOF' || return 1
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: default
spec:
  serviceName: web
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      nodeSelector:
        type: kwok
      containers:
      - name: app
        image: weir.invalid/fake:1
        volumeMounts:
        - name: config
          mountPath: /etc/weir
      volumes:
      - name: config
        configMap:
          name: web-config
EOF
  k wait --for=jsonpath='{.status.readyReplicas}'=2 statefulset/web --timeout="$WAIT" || return 1
  k wait --for=condition=Ready pod/web-0 pod/web-1 --timeout="$WAIT" || return 1
  k get pods -l app=web -o wide || return 1
  expect_eq "Running Running" k get pods -l app=web -o 'jsonpath={.items[*].status.phase}' || return 1
  local node
  for node in $(k get pods -l app=web -o 'jsonpath={.items[*].spec.nodeName}'); do
    [[ "$node" == kwok-node-[0-9]* ]] || { echo "pod on unexpected node '$node'"; return 1; }
  done
  # The headless Service picked both pods up (EndpointSlice controller).
  poll 60 slice_has_2_endpoints || return 1
  k get endpointslices -l kubernetes.io/service-name=web -o wide
}

slice_has_2_endpoints() {
  local ips
  read -ra ips < <(k get endpointslices -l kubernetes.io/service-name=web \
    -o 'jsonpath={.items[*].endpoints[*].addresses[0]}') || :
  ((${#ips[@]} == 2))
}

# poll SECONDS CMD...: retry CMD every half second until it succeeds.
poll() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < end)) || { echo "gave up after waiting for: $*"; return 1; }
    sleep 0.5
  done
}

# can_i SA VERB RESOURCE: print "yes"/"no" for the ServiceAccount SA in default.
can_i() {
  local out rc=0
  out="$(k auth can-i "$2" "$3" -n default --as="system:serviceaccount:default:$1")" || rc=$?
  # can-i exits 1 for "no"; anything else is an error.
  if [[ "$out" == yes && $rc -eq 0 ]] || [[ "$out" == no && $rc -eq 1 ]]; then
    echo "$out"
  else
    echo "kubectl auth can-i failed (exit $rc): $out" >&2
    return 1
  fi
}

# A kubeconfig that authenticates with a bound ServiceAccount token only.
token_kubeconfig() {
  local token
  token="$(k create token nobody -n default --duration=10m)" || return 1
  cat >"$WORK/nobody.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: weir
  cluster:
    server: $WEIR_K8S_SERVER
    certificate-authority: $DIR/pki/ca.crt
users:
- name: nobody
  user:
    token: $token
contexts:
- name: weir
  context: {cluster: weir, user: nobody}
current-context: weir
EOF
}

t_rbac_denied() {
  k create serviceaccount nobody -n default || return 1
  expect_eq no can_i nobody list pods || return 1
  token_kubeconfig || return 1
  local out
  if out="$(timeout 60 "$WEIR_KUBECTL" --kubeconfig "$WORK/nobody.kubeconfig" get pods -n default 2>&1)"; then
    echo "listing pods with the nobody token succeeded: $out"
    return 1
  fi
  echo "$out"
  [[ "$out" == *Forbidden* || "$out" == *forbidden* ]]
}

t_rbac_allowed() {
  k create role pod-reader -n default --verb=get,list,watch --resource=pods || return 1
  k create rolebinding nobody-pod-reader -n default --role=pod-reader \
    --serviceaccount=default:nobody || return 1
  expect_eq yes can_i nobody list pods || return 1
  expect_eq no can_i nobody delete pods || return 1
  expect_eq no can_i nobody list secrets || return 1
  # The real token (signed by the service-account key) now lists the pods.
  timeout 60 "$WEIR_KUBECTL" --kubeconfig "$WORK/nobody.kubeconfig" get pods -n default -l app=web |
    grep -q '^web-0 ' || return 1
}

t_crd() {
  k apply -f - <<'EOF' || return 1
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.smoke.weir.test
spec:
  group: smoke.weir.test
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size:
                type: integer
                minimum: 1
EOF
  k wait --for=condition=Established crd/widgets.smoke.weir.test --timeout="$WAIT" || return 1
  # Discovery can lag Established by a moment: retry the first create.
  local i
  for i in $(seq 1 20); do
    k apply -f - <<'EOF' && break
apiVersion: smoke.weir.test/v1
kind: Widget
metadata:
  name: w1
  namespace: default
spec:
  size: 3
EOF
    ((i < 20)) || return 1
    sleep 0.5
  done
  expect_eq 3 k get widget w1 -n default -o 'jsonpath={.spec.size}' || return 1
  # Schema validation is enforced.
  local out
  if out="$(k apply -f - 2>&1 <<'EOF'
apiVersion: smoke.weir.test/v1
kind: Widget
metadata:
  name: w2
  namespace: default
spec:
  size: 0
EOF
  )"; then
    echo "a Widget violating the schema (size 0 < minimum 1) was accepted"
    return 1
  fi
  echo "$out"
  [[ "$out" == *spec.size*'greater than or equal to 1'* ]]
}

t_stop() {
  local pids
  pids="$(awk '{print $2}' "$DIR/pids")" || return 1
  "$H" stop "$DIR" || return 1
  local pid
  for pid in $pids; do
    if [[ -d /proc/$pid ]] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      echo "pid $pid still running after stop"
      return 1
    fi
  done
  "$H" stop "$DIR" || return 1 # second stop is a no-op
  if "$H" status "$DIR"; then
    echo "status reports a running harness after stop"
    return 1
  fi
}

# -------------------------------------------------------------------- main --

check "install (pinned binaries cached)" t_install
check "start: control plane, 2 kwok nodes, default ServiceAccount" t_start
if ((failed)); then
  echo "$SMOKE_NAME: harness did not start; skipping the cluster checks" >&2
  exit 1
fi
eval "$(cat "$WORK/env.sh")"
check "kubectl version reports the pinned server and client version" t_version
check "listens on loopback only, serving cert valid for localhost" t_loopback_only
check "kwok nodes are Ready" t_nodes
check "headless Service and ConfigMap created" t_service_configmap
check "StatefulSet with 2 replicas: 2 pods Running on kwok nodes" t_statefulset
check "RBAC: ServiceAccount without a role is denied list pods" t_rbac_denied
check "RBAC: Role+RoleBinding allow list pods (impersonated and by token)" t_rbac_allowed
check "CRD is Established, serves objects and validates them" t_crd
check "stop ends every process and is safe to repeat" t_stop
