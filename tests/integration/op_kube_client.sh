#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Integration test of op_kube, the operator's Kubernetes client, against a real
# kube-apiserver + etcd from tests/harness/k8s.sh: apply/get/patch/delete,
# status subresource on a test CRD, pagination, watch events and bookmarks,
# 410 Gone after an etcd compaction, Lease election, Events, ServiceAccount
# tokens with RBAC, TLS verification. The checks are the cmocka driver
# tests/integration/op_kube_live.c (a cmocka driver built as tests/op_kube_live).
# Ports: 19500-19505 (WEIR_OP_KUBE_PORT_BASE), its own harness instance dir.
set -euo pipefail

readonly NAME=op_kube_client
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly H="$ROOT/tests/harness/k8s.sh"
readonly BUILD="${WEIR_BUILD_DIR:-$ROOT/build}"
readonly DRIVER="$BUILD/tests/op_kube_live"
export WEIR_K8S_PORT_BASE="${WEIR_OP_KUBE_PORT_BASE:-19500}"
export WEIR_K8S_NODES=1

if [[ ! -x "$DRIVER" ]]; then
  echo "$NAME: $DRIVER is not built (set WEIR_BUILD_DIR)" >&2
  exit 1
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-$NAME.XXXXXX")"
readonly WORK
readonly DIR="$WORK/k8s"
rc=1
child=""

cleanup() {
  local status=$?
  trap - INT TERM HUP
  if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || :
    wait "$child" 2>/dev/null || :
  fi
  if ! "$H" stop "$DIR" >"$WORK/stop.log" 2>&1; then
    echo "$NAME: could not stop the harness in $DIR" >&2
    cat "$WORK/stop.log" >&2
    status=1
  fi
  if ((status == 0 && rc == 0)); then
    rm -rf "$WORK"
    echo "$NAME: passed"
    exit 0
  fi
  echo "$NAME: failed; keeping $WORK (harness logs in $DIR/logs)" >&2
  exit 1
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

"$H" install
"$H" start "$DIR" >"$WORK/env.sh"
# shellcheck disable=SC1091
source "$WORK/env.sh"

export WEIR_KUBECONFIG="$KUBECONFIG"
export WEIR_K8S_DIR
# etcd's client port (base + 1) for the compaction that provokes 410 Gone.
export WEIR_ETCD_URL="http://127.0.0.1:$((WEIR_K8S_PORT_BASE + 1))"
# The driver must not pick up anything but what it is given.
unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT

timeout 600 "$DRIVER" &
child=$!
if wait "$child"; then
  rc=0
else
  rc=$?
  echo "$NAME: driver exited with $rc" >&2
  rc=1
fi
