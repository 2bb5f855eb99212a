#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Bad input against a real store process: oversized, negative and truncated
# frames, unknown APIs and versions, malformed bodies, bad CRCs, bad acks,
# idempotent sequence errors and 300 random frames, each on its own
# connection, while a healthy connection keeps producing; then every
# acknowledged record must be stored at its offset (store_badinput.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly STORE="$ROOT/tests/harness/store.sh"
export WEIR_STORE_TARGET=weir # the checks are Weir's contract, not Kafka's
readonly PORT="${WEIR_BADINPUT_PORT:-19320}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-badinput.XXXXXX")"
readonly WORK

cleanup() {
  local rc=$?
  "$STORE" stop "$WORK" >/dev/null 2>&1 || "$STORE" kill "$WORK" >/dev/null 2>&1 || :
  if ((rc == 0)); then
    rm -rf "$WORK"
  else
    echo "store_badinput: keeping $WORK for inspection"
  fi
}
trap cleanup EXIT

bin="${WEIR_STORE_BIN:-${WEIR_BUILD_DIR:-$ROOT/build}/dataplane/weir-dataplane}"
if [[ ! -x "$bin" ]]; then
  echo "SKIP: store binary $bin is not built"
  exit 77
fi
"$STORE" start "$WORK" "$PORT" 2
rc=0
timeout 300 python3 "$ROOT/tests/integration/store_badinput.py" "127.0.0.1:$PORT" || rc=$?
if ! "$STORE" status "$WORK" >/dev/null; then
  echo "FAIL: the store died during the bad-input run"
  "$STORE" logs "$WORK" || :
  exit 1
fi
# A clean stop proves no connection or log was left in a broken state.
"$STORE" stop "$WORK" || rc=1
if grep -q '"level":"error"' "$WORK/store.log"; then
  echo "FAIL: the store logged errors:"
  grep '"level":"error"' "$WORK/store.log" | head -20
  rc=1
fi
exit "$rc"
