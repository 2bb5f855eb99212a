#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures and builds one flavour of Weir. Usage: ci/build.sh DIR [cmake -D...]
# e.g. ci/build.sh build-asan -DWEIR_ASAN=ON -DWEIR_UBSAN=ON
# weir-operator is built as it ships, fully static on the minimal OpenSSL,
# libcurl and librdkafka (ci/build-{openssl,curl,rdkafka}-min.sh, cached under
# ~/.cache/weir/): the build fails rather than fall back to the system's
# libraries, unless -DWEIR_OPERATOR_STATIC=OFF (the system's libraries) or
# =AUTO (static when the minimal builds succeed). Sanitizer flavours link the
# system's shared libraries (operator/CMakeLists.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: ci/build.sh DIR [cmake options]}
shift
static=ON
for a in "$@"; do
  case "$a" in
    -DWEIR_OPERATOR_STATIC=* | -DWEIR_OPERATOR_STATIC:*=*) static=${a#*=} ;;
  esac
done
case "${static^^}" in
  OFF) ;;
  AUTO) { ci/build-curl-min.sh && ci/build-rdkafka-min.sh; } >/dev/null ||
    echo "build.sh: no minimal libcurl/librdkafka; AUTO falls back to the system's" >&2 ;;
  *) # one per line: set -e does not stop on the left side of &&
    ci/build-curl-min.sh >/dev/null
    ci/build-rdkafka-min.sh >/dev/null
    ;;
esac
cmake -S . -B "$dir" -G Ninja -DWEIR_OPERATOR_STATIC=ON "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
