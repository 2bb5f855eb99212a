#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prints the path of Weir's pinned helm, building it on first use from its Go
# module (through the Go module proxy; no prebuilt binary is downloaded) into
# ~/.cache/weir/helm-<version>/. The Go toolchain comes from the Kubernetes
# harness (tests/harness/k8s.sh go), which installs or fetches one if needed.
# Usage: ci/helm.sh [install]   (both print the path)
set -euo pipefail

readonly HELM_VERSION=v3.19.5
# helm v3.19 is built against client-go v0.34: Kubernetes 1.34 is what
# `helm template` assumes without --kube-version (as helm's own Makefile sets).
readonly HELM_K8S_MINOR=34
# Bump to force a rebuild when the recipe below changes.
readonly BUILD_RECIPE=1

top=$(cd "$(dirname "$0")/.." && pwd)
cache="${WEIR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weir}/helm-$HELM_VERSION"
bin="$cache/bin/helm"
stamp="$cache/.recipe-$BUILD_RECIPE"

log() { printf 'helm.sh: %s\n' "$*" >&2; }

build() {
  local go_line go_bin toolchain ldflags tmp
  # "k8s.sh go" prints "PATH (GOTOOLCHAIN=value)".
  go_line=$("$top/tests/harness/k8s.sh" go)
  go_bin=${go_line%% (*}
  toolchain=${go_line##*GOTOOLCHAIN=}
  toolchain=${toolchain%)}
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=archive"
  for pkg in pkg/chartutil pkg/lint/rules; do
    ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1"
    ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$HELM_K8S_MINOR"
  done
  log "building helm $HELM_VERSION with $go_bin (GOTOOLCHAIN=$toolchain)"
  tmp="$cache/bin.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  GOBIN="$tmp" GOTOOLCHAIN="$toolchain" CGO_ENABLED=0 \
    "$go_bin" install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  "$tmp/helm" version --short >/dev/null
  rm -rf "$cache/bin"
  mv "$tmp" "$cache/bin"
  rm -f "$cache"/.recipe-*
  touch "$stamp"
}

if [[ ! -x $bin || ! -e $stamp ]]; then
  mkdir -p "$cache"
  # One build at a time (parallel CI steps share the cache).
  exec 9>"$cache.lock"
  flock 9
  if [[ ! -x $bin || ! -e $stamp ]]; then
    build
  fi
fi
printf '%s\n' "$bin"
