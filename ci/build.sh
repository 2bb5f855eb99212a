#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures and builds one flavour of Weir. Usage: ci/build.sh DIR [cmake -D...]
# e.g. ci/build.sh build-asan -DWEIR_ASAN=ON -DWEIR_UBSAN=ON
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: ci/build.sh DIR [cmake options]}
shift
cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
