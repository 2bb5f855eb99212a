#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Helpers for the processor integration tests (tests/integration/proc_*.sh).

  proc_util.py murmur2-check NPARTS < "partition key" lines
      every record sits in Kafka's default partition for its key:
      (murmur2(key) & 0x7fffffff) % NPARTS, as the Java client computes it
  proc_util.py gen PARTITION N KEYS T0 STEP_MS RATE
      prints N "key|json" lines for one partition: event times T0 + i*STEP_MS
      (ascending), keys k0..k{KEYS-1} in turn, at most RATE lines per second
  proc_util.py windows SIZE_MS < "key|json" input lines
      the tumbling-window counts and sums a crash-free engine must produce for
      ascending per-partition input (no late records), for windows closed by
      the input's largest event time; prints "key start end count total"
  proc_util.py results < kcat "%k\\t%s" lines of window results
      prints "key start end count total" per result (JSON parsed)
"""
import json
import sys
import time


def murmur2(data: bytes) -> int:
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail, extra = length & ~3, length % 4
    if extra == 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def murmur2_check(nparts: int) -> int:
    bad = n = 0
    for line in sys.stdin:
        part, key = line.rstrip("\n").split(" ", 1)
        want = (murmur2(key.encode()) & 0x7FFFFFFF) % nparts
        n += 1
        if int(part) != want:
            print(f"key {key!r} in partition {part}, Kafka's partitioner says {want}")
            bad += 1
    print(f"{n} records checked, {bad} misplaced")
    return 1 if bad or n == 0 else 0


def gen(part: int, n: int, keys: int, t0: int, step: int, rate: float) -> int:
    start = time.monotonic()
    out = sys.stdout
    for i in range(n):
        key = f"k{(i * 7 + part) % keys}"
        out.write(f'{key}|{{"user":"{key}","ts":{t0 + i * step},"n":{i % 13 + 1},"p":{part}}}\n')
        if rate > 0 and i % 50 == 49:
            out.flush()
            ahead = (i + 1) / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    out.flush()
    return 0


def windows(size: int) -> int:
    acc = {}
    wm = None
    for line in sys.stdin:
        _, value = line.rstrip("\n").split("|", 1)
        rec = json.loads(value)
        start = rec["ts"] - rec["ts"] % size
        c, t = acc.get((rec["user"], start), (0, 0))
        acc[(rec["user"], start)] = (c + 1, t + rec["n"])
        wm = rec["ts"] if wm is None else max(wm, rec["ts"])
    for (key, start), (c, t) in sorted(acc.items()):
        if start + size <= wm:
            print(key, start, start + size, c, t)
    return 0


def results() -> int:
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        _, value = line.split("\t", 1)
        r = json.loads(value)
        print(r["key"], r["windowStart"], r["windowEnd"], r["count"], r["total"])
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 64
    cmd = argv[1]
    if cmd == "murmur2-check":
        return murmur2_check(int(argv[2]))
    if cmd == "gen":
        return gen(int(argv[2]), int(argv[3]), int(argv[4]), int(argv[5]), int(argv[6]),
                   float(argv[7]))
    if cmd == "windows":
        return windows(int(argv[2]))
    if cmd == "results":
        return results()
    print(f"unknown command {cmd}", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
