#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: builds Weir and runs the demo pipeline on embedded defaults
# (local store, no cluster, no external broker). It grows as features land.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/install-deps.sh --build
ci/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== demo pipeline: examples/demo =="
build/dataplane/weir-dataplane validate examples/demo/pipeline.json
