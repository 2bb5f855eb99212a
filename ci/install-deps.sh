#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every build and test dependency of Weir on Debian 12, idempotently:
# packages already present are not touched, and apt-get update runs only when
# something is missing. Usage: ci/install-deps.sh [--build | --all]
#   --build  what building and the demo need (default for ci/demo.sh)
#   --all    also the real-component test harnesses (Kafka, Kubernetes, gRPC)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
mode=${1:---all}

build_pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl openssl
  liburing-dev libjansson-dev libyaml-dev libcurl4-openssl-dev libwebsockets-dev
  libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler librdkafka-dev libcmocka-dev
  python3 python3-grpcio python3-protobuf
  # weir-operator's static link (operator/CMakeLists.txt; libc.a comes with
  # build-essential) and its minimal OpenSSL, libcurl and librdkafka built from
  # the Debian source packages (ci/build-{openssl,curl,rdkafka}-min.sh; perl
  # for OpenSSL's Configure comes with build-essential).
  libssl-dev liblz4-dev libzstd-dev libsasl2-dev libcap-dev zlib1g-dev dpkg-dev xz-utils
)
test_pkgs=(
  clang clang-format libclang-rt-14-dev kcat procps iproute2 psmisc
  openjdk-17-jre-headless maven valgrind linux-perf protobuf-compiler fio unzip jq
)

sudo_cmd() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing_pkgs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

install_pkgs() {
  local missing
  mapfile -t missing < <(missing_pkgs "$@")
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd apt-get update -qq
  sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
}

case "$mode" in
  --build)
    install_pkgs "${build_pkgs[@]}"
    "$here/build-curl-min.sh"
    "$here/build-rdkafka-min.sh"
    ;;
  --all)
    install_pkgs "${build_pkgs[@]}" "${test_pkgs[@]}"
    "$here/build-curl-min.sh"
    "$here/build-rdkafka-min.sh"
    # Real-component harnesses: each caches its build under ~/.cache/weir/.
    "$top/tests/harness/kcat.sh" install
    "$top/tests/harness/udf-python.sh" install
    "$top/tests/harness/kafka.sh" install
    "$top/tests/harness/k8s.sh" install
    ;;
  *)
    echo "usage: $0 [--build | --all]" >&2
    exit 64
    ;;
esac
echo "install-deps: ok ($mode)"
