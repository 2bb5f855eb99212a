# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Helpers shared by the operator's integration tests (tests/integration/op_reconcile.sh, e2e_operator_spec.sh,
# op_resilience.sh), sourced after NAME is set: step/fail reporting, polling,
# and reads of custom resources through kubectl.

step() { printf '%s: %s\n' "$NAME" "$*"; }
fail() {
  printf '%s: FAIL: %s\n' "$NAME" "$*" >&2
  exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.5 s.
wait_for() {
  local t=$1 what=$2
  shift 2
  local end=$((SECONDS + t))
  while ((SECONDS < end)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  fail "timed out after ${t}s waiting for: $what"
}

jp() { kubectl get "$@" 2>/dev/null; }
ready_is() { # KIND NAME NS STATUS REASON
  local out
  out="$(jp "$1" "$2" ${3:+-n "$3"} -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}')"
  [[ "$out" == "$4/$5" ]]
}

# sa_kubeconfig SA NS OUT: writes OUT, a kubeconfig for the harness
# ($WEIR_K8S_SERVER, $DIR/pki/ca.crt) authenticated with a fresh token of
# ServiceAccount NS/SA, so the apiserver enforces that account's RBAC.
sa_kubeconfig() {
  local sa=$1 ns=$2 out=$3 token
  token="$(kubectl create token "$sa" -n "$ns" --duration=4h)"
  cat >"$out" <<KC
apiVersion: v1
kind: Config
clusters:
- name: harness
  cluster:
    server: $WEIR_K8S_SERVER
    certificate-authority: $DIR/pki/ca.crt
users:
- name: $sa
  user:
    token: $token
contexts:
- name: op
  context: {cluster: harness, user: $sa, namespace: $ns}
current-context: op
KC
  chmod 600 "$out"
}
