#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite, as README.md states it and .ci/run calls it: installs
# dependencies, checks formatting, builds with -Werror, runs unit tests under
# ASan+UBSan (leaks count), then every test label except bench.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

ci/install-deps.sh --all
ci/check-format.sh
ci/check-manifests.sh

# Sanitizer build: unit tests and fuzz-corpus replays.
ci/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DWEIR_WERROR=ON -DWEIR_ASAN=ON -DWEIR_UBSAN=ON
ctest --test-dir build-asan -L unit --output-on-failure -j "$(nproc)"
# The store under real clients, sanitized: any ASan/UBSan report aborts the
# store and a leak makes its clean stop exit non-zero, which fails the test.
ctest --test-dir build-asan -R 'integration/(store_(badinput|interop|corruption)|proc_windows|proc_udf_window|udf_client|wctl_anomaly)' \
  --no-tests=error --output-on-failure -j 1

# Release build: everything but benchmarks. Integration tests share loopback
# ports and two cores, so they run one at a time.
ci/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEIR_WERROR=ON
ctest --test-dir build -L unit --output-on-failure -j "$(nproc)"
ctest --test-dir build -LE 'unit|bench' --output-on-failure -j 1

echo "test.sh: all suites passed in $(( $(date +%s) - start ))s"
