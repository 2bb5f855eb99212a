#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# examples/partitioned under `weirctl run`: its generator's input in, its output
# compared with a Python reference computed from that input
# (tests/integration/examples_driver.py; ports from 20100, ten per example).
exec python3 "$(dirname "${BASH_SOURCE[0]}")/examples_driver.py" partitioned
