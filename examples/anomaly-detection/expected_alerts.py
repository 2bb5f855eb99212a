#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Computes, from the card authorizations themselves (JSON lines on stdin, as
# `weirctl consume card-authorizations --value-only` prints them), the alerts
# the pipeline must raise: every (card, 5 s window) with more than 5
# authorizations. Prints one JSON line per alert, sorted, and checks a list
# of actual alerts against them with --check FILE.
import argparse
import collections
import json
import sys

WINDOW_MS = 5000
THRESHOLD = 5


def expected(lines):
    counts = collections.Counter()
    for line in lines:
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        counts[(r["card"], r["ts"] // WINDOW_MS * WINDOW_MS)] += 1
    return sorted((c, w, n) for (c, w), n in counts.items() if n > THRESHOLD)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", help="alerts (JSON lines, values) to compare with")
    args = ap.parse_args()
    exp = expected(sys.stdin)
    if not args.check:
        for c, w, n in exp:
            print(json.dumps({"card": c, "windowStartMs": w, "authorizations": n}))
        return 0
    with open(args.check) as f:
        got = []
        for line in f:
            if line.strip():
                a = json.loads(line)
                got.append((a["card"], a["windowStartMs"], a["authorizations"]))
    got.sort()
    if got == exp:
        print("alerts match: %d expected, %d received" % (len(exp), len(got)))
        return 0
    print("alerts differ: %d expected, %d received" % (len(exp), len(got)), file=sys.stderr)
    for x in sorted(set(exp) - set(got)):
        print("  missing: %s" % (x,), file=sys.stderr)
    for x in sorted(set(got) - set(exp)):
        print("  unexpected: %s" % (x,), file=sys.stderr)
    if len(set(got)) != len(got):
        print("  duplicates in the received alerts", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
