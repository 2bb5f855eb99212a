#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fails if C files are not clang-formatted per .clang-format.
# Usage: ci/check-format.sh [BASE]  — with BASE, only files changed since BASE.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ge 1 ]; then
  mapfile -t files < <(git diff --name-only --diff-filter=ACMR "$1" -- '*.c' '*.h')
else
  mapfile -t files < <(git ls-files -- '*.c' '*.h')
fi
bad=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "check-format: $f is not formatted (run: clang-format -i $f)"
    bad=1
  fi
done
echo "check-format: ${#files[@]} files checked"
exit "$bad"
