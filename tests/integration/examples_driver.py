#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration tests of examples/<name>/ under `weirctl run`.

`examples_driver.py NAME` runs one example the way its README says: `weirctl
run examples/NAME` (a local store, the processors, their UDF commands), the
example's `weirctl generate` invocation, then `weirctl consume` of the
output topics. The expected output is computed here, in Python, from the
input topic as the store holds it (an independent reference of the
example's semantics), and compared exactly: every expected record once,
nothing else. Exit 0 pass, 1 fail, 77 skip (not built / no grpcio).

Ports: 20100-20299, a block of ten per example (store at the block's base,
UDFs from base+1). Environment: WEIR_BUILD_DIR (default build/), WEIR_PYTHON.

`examples_driver.py NAME --external BOOTSTRAP` starts nothing: it feeds and
checks a pipeline someone else runs against the cluster BOOTSTRAP (the
end-to-end test runs the operator-rendered spec that way).
"""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("WEIR_BUILD_DIR") or os.path.join(ROOT, "build")
WEIRCTL = os.path.join(BUILD, "operator", "weirctl")
DATAPLANE = os.path.join(BUILD, "dataplane", "weir-dataplane")

# Port block per example (base; the store listens there, UDFs above it).
EXAMPLES = [
    "retransmission", "inline-transformation", "polyglot-udf", "replicas",
    "partitioned", "event-time-window", "clickstream", "iot-monitoring",
    "online-gaming", "nexmark-q5", "nexmark-q7", "nexmark-q8",
]
PORT_BASE = {name: 20100 + 10 * i for i, name in enumerate(EXAMPLES)}

START_MS = 1767225600000  # the generators' default start, 2026-01-01T00:00:00Z


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def upper_ascii(s):
    return s.encode().upper().decode()


class Run:
    """One `weirctl run` of an example, with the client commands."""

    def __init__(self, name, work, external=None):
        self.name = name
        self.work = work
        self.port = PORT_BASE[name]
        self.boot = external or "127.0.0.1:%d" % self.port
        self.external = external is not None
        self.log_path = os.path.join(work, "run.log")
        self.proc = None

    def start(self):
        if self.external:
            return
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [WEIRCTL, "run", os.path.join(ROOT, "examples", self.name),
             "--state-dir", os.path.join(self.work, "state"),
             "--store-port", str(self.port), "--udf-port-base", str(self.port + 1)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.work)
        log.close()
        self.wait_log('"msg":"running', 40, "weirctl run did not reach running")

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, needle, timeout, what):
        if self.external:
            return
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.log_text():
                return
            if self.proc.poll() is not None:
                raise Fail("%s: weirctl run exited %s" % (what, self.proc.returncode))
            time.sleep(0.1)
        raise Fail(what)

    def wait_udfs(self, count, timeout=30):
        if self.external:
            return
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            n = sum(1 for line in self.log_text().splitlines()
                    if '"proc":"udf/' in line and "udf ready" in line)
            if n >= count:
                return
            time.sleep(0.1)
        raise Fail("only %d of %d UDF processes became ready" % (n, count))

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.proc = None
                raise Fail("weirctl run did not stop within 40 s of SIGINT")
        rc = self.proc.returncode
        self.proc = None
        return rc

    def ctl(self, *args, stdin=None, timeout=120):
        r = subprocess.run([WEIRCTL] + list(args), input=stdin, capture_output=True,
                           timeout=timeout)
        return r

    def generate(self, kind, topic, *extra):
        r = self.ctl("generate", kind, "--topic", topic, "--bootstrap", self.boot, "--quiet",
                     *extra)
        check(r.returncode == 0, "generate %s failed: %s" % (kind, r.stderr.decode()))

    def produce(self, topic, lines, *extra):
        data = "".join(line + "\n" for line in lines).encode()
        r = self.ctl("produce", topic, "--bootstrap", self.boot, *extra, stdin=data)
        check(r.returncode == 0, "produce to %s failed: %s" % (topic, r.stderr.decode()))

    def consume(self, topic, n=None, timeout=3.0):
        """Records of TOPIC as dicts (topic, partition, offset, timestamp, key,
        headers, value). With n: fail unless n arrive within timeout."""
        args = ["consume", topic, "--bootstrap", self.boot, "--timeout", str(timeout)]
        if n is not None:
            args += ["-n", str(n)]
        r = self.ctl(*args, timeout=timeout + 60)
        recs = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
        if n is not None and r.returncode != 0:
            raise Fail("%d of %d records arrived on %s within %.0f s" %
                       (len(recs), n, topic, timeout))
        return recs

    def consume_values(self, topic, n=None, timeout=3.0):
        return [r["value"] for r in self.consume(topic, n, timeout)]

    def settle(self, topic, n, timeout=40, quiet=3.0):
        """Wait for n records, then read everything once more after a quiet
        period, so that extra records are seen too."""
        self.consume(topic, n, timeout)
        time.sleep(quiet)
        return self.consume(topic, None, 2.0)


def user_headers(rec):
    return {k: v for k, v in (rec.get("headers") or {}).items()
            if k not in ("watermark", "eventtime")}


def compare_multiset(got, want, what):
    """got, want: lists of hashable items; equal as multisets."""
    from collections import Counter
    g, w = Counter(got), Counter(want)
    if g != w:
        missing = list((w - g).elements())[:5]
        extra = list((g - w).elements())[:5]
        raise Fail("%s: %d records, %d expected; missing %d e.g. %s; unexpected %d e.g. %s" %
                   (what, len(got), len(want), sum((w - g).values()), missing,
                    sum((g - w).values()), extra))


def canon(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def window_results(values, what, allow_upsert=False):
    """Index window results by (key, windowStart). Without allow_upsert every
    window must come once; with it the last result wins (UPSERT)."""
    out = {}
    for v in values:
        check(isinstance(v, dict) and "windowStart" in v, "%s: not a window result: %r" % (what, v))
        k = (v["key"], v["windowStart"])
        if k in out and not allow_upsert:
            raise Fail("%s: window %r emitted twice: %r and %r" % (what, k, out[k], v))
        if k in out:
            check(v.get("upsert") is True, "%s: window %r emitted again without upsert: %r" %
                  (what, k, v))
        out[k] = v
    return out


def strip_flags(v):
    return {k: x for k, x in v.items() if k not in ("partial", "upsert", "early")}


# ---------------------------------------------------------------- examples

def ex_retransmission(run):
    run.generate("clicks", "data-in", "--count", "400", "--seed", "21")
    raw = ["k%d|not json %d \\ \x01" % (i, i) for i in range(20)]
    run.produce("data-in", raw, "--key-separator", "|", "--header", "origin=test",
                "--header", "trace=abc")
    inp = run.consume("data-in", 420, 20)
    got = run.settle("data-out", 420)
    key = lambda r: (r["key"], canon(r["value"]), canon(user_headers(r)))  # noqa: E731
    compare_multiset([key(r) for r in got], [key(r) for r in inp], "data-out")
    # Per key, the output keeps the input's order.
    by_key_in, by_key_out = {}, {}
    for r in inp:
        by_key_in.setdefault(r["key"], []).append(canon(r["value"]))
    for r in got:
        by_key_out.setdefault(r["key"], []).append(canon(r["value"]))
    check(by_key_in == by_key_out, "per-key order changed")
    check(all(user_headers(r) == {"origin": "test", "trace": "abc"}
              for r in got if isinstance(r["value"], str)), "headers of the raw records lost")
    return "%d records (400 generated clicks, 20 raw lines with headers) copied unchanged" % len(got)


def ex_inline_transformation(run):
    run.generate("users", "users", "--count", "300", "--population", "300", "--seed", "4")
    users = run.consume_values("users", 300, 20)
    want_vip = []
    for u in users:
        if u["level"] != "bronze":
            v = dict(u, name=upper_ascii(u["name"]), tier=1 if u["level"] == "gold" else 2)
            want_vip.append((u["userId"], canon(v)))
    got = run.settle("users-vip", len(want_vip))
    got_vip = [(r["key"], canon(r["value"])) for r in got]
    errors = []
    if got_vip != want_vip:
        errors.append("users-vip differ: got %r..., want %r..." %
                      (got_vip[:2], want_vip[:2]))
    want_names = ["%s (%s)" % (upper_ascii(u["name"]), u["region"]) for u in users]
    got_names = [r["value"] for r in run.settle("user-names", len(want_names))]
    if got_names != want_names:
        errors.append("user-names differ: got %r..., want %r..." %
                      (got_names[:2], want_names[:2]))
    check(not errors, "; ".join(errors))
    return "%d names (srp.spel.expression) and %d VIP users (filter + map, key)" % (
        len(got_names), len(got_vip))


def ex_polyglot_udf(run):
    run.wait_udfs(1)
    run.generate("clicks", "words", "--count", "300", "--seed", "8")
    r = run.ctl("consume", "words", "--bootstrap", run.boot, "-n", "300", "--timeout", "20",
                "--value-only")
    check(r.returncode == 0, "input not readable")
    want = [line.upper() for line in r.stdout.decode().splitlines()]
    got = run.settle("words-upper", 300)
    compare_multiset([canon(g["value"]) for g in got], [canon(json.loads(w)) for w in want],
                     "words-upper")
    check(all(g["headers"].get("udf") == "python-uppercase" for g in got),
          "an output record lacks the UDF's udf=python-uppercase header")
    return "%d records uppercased by the Python UDF" % len(got)


def c_round(x):
    """C round(): half away from zero."""
    t = math.trunc(x)
    f = abs(x - t)
    return float(t + (math.copysign(1, x) if f >= 0.5 else 0))


def ex_replicas(run):
    run.generate("cards", "orders", "--count", "3000", "--seed", "31")
    inp = run.consume("orders", 3000, 20)
    parts = {r["partition"] for r in inp}
    check(len(parts) == 6, "the input should use all 6 partitions, used %s" % sorted(parts))
    want = {}
    for r in inp:
        v = r["value"]
        if v["amount"] >= 10:
            want[v["id"]] = dict(v, amountEur=c_round(v["amount"] * 92) / 100.0, currency="EUR")
    got = run.settle("orders-eur", len(want))
    ids = [g["value"]["id"] for g in got]
    check(len(ids) == len(set(ids)), "an order was written twice")
    got_map = {g["value"]["id"]: g["value"] for g in got}
    check(set(got_map) == set(want), "order ids differ: %d missing, %d unexpected" %
          (len(set(want) - set(got_map)), len(set(got_map) - set(want))))
    for i, v in want.items():
        check(got_map[i] == v, "order %s: got %r, want %r" % (i, got_map[i], v))
    log = run.log_text()
    for i in range(3):
        spec = json.load(open(os.path.join(run.work, "state", "specs", "order-eur-%d.json" % i)))
        check(spec["replica"] == {"index": i, "count": 3}, "replica %d spec: %r" % (i, spec["replica"]))
        check('"proc":"proc/order-eur-%d"' % i in log, "replica %d never logged" % i)
    return "3 replicas over 6 partitions: %d of 3000 orders converted, each once" % len(got)


def tumbling(ts, size):
    return ts - ts % size


def ex_partitioned(run):
    run.generate("scores", "scores", "--count", "1500", "--seed", "5")
    inp = run.consume_values("scores", 1500, 20)
    want = {}
    for v in inp:
        k = (v["team"], tumbling(v["ts"], 5000))
        w = want.setdefault(k, {"key": k[0], "windowStart": k[1], "windowEnd": k[1] + 5000,
                                "records": 0, "total": 0})
        w["records"] += 1
        w["total"] += v["score"]
    got = window_results([r["value"] for r in run.settle("team-totals", len(want), 60, 4)],
                         "team-totals")
    check(set(got) == set(want), "windows differ: missing %s, unexpected %s" %
          (sorted(set(want) - set(got))[:3], sorted(set(got) - set(want))[:3]))
    for k, w in want.items():
        check(strip_flags(got[k]) == w, "window %r: got %r, want %r" % (k, got[k], w))
    # Every team went to exactly one partition of team-scores.
    part_of = {}
    for r in run.consume("team-scores", 1500, 20):
        part_of.setdefault(r["value"]["team"], set()).add(r["partition"])
    check(all(len(p) == 1 for p in part_of.values()), "a team spans partitions: %r" % part_of)
    owners = {t: next(iter(p)) % 2 for t, p in part_of.items()}
    return "%d team windows exact; teams by replica %s" % (len(got), sorted(owners.items()))


def ex_event_time_window(run):
    run.generate("scores", "scores", "--count", "600", "--seed", "11")
    inp = run.consume_values("scores", 600, 20)
    max_ts = max(v["ts"] for v in inp)
    wm = max_ts - 1000  # one partition, srp.maxOutOfOrderness 1s
    want = {}
    for v in inp:
        k = (v["team"], tumbling(v["ts"], 5000))
        w = want.setdefault(k, {"key": k[0], "windowStart": k[1], "windowEnd": k[1] + 5000,
                                "records": 0, "total": 0})
        w["records"] += 1
        w["total"] += v["score"]
    final = [k for k, w in want.items() if w["windowEnd"] <= wm]
    # Once the windows the watermark passed are out, records for them are late.
    run.consume("team-window-scores", len(final), 30)
    late = [{"id": 900000 + i, "user": "player-%d" % i, "team": t, "score": 10 + i,
             "ts": START_MS + 1000 * i + 7}
            for i, t in enumerate(["team-red", "team-blue", "team-red", "team-green", "team-x"])]
    run.produce("scores", [json.dumps(v) for v in late])
    got_late = [r["value"] for r in run.settle("late-scores", len(late), 20)]
    check(got_late == late, "late-scores: got %r, want %r" % (got_late, late))
    got = window_results([r["value"] for r in run.settle("team-window-scores", len(want), 30, 4)],
                         "team-window-scores")
    check(set(got) == set(want), "windows differ: missing %s, unexpected %s" %
          (sorted(set(want) - set(got))[:3], sorted(set(got) - set(want))[:3]))
    for k, w in want.items():
        g = got[k]
        check(strip_flags(g) == w, "window %r: got %r, want %r" % (k, g, w))
        # Fired by the watermark (final), or released by the idle timeout (partial).
        check(g.get("partial", False) == (w["windowEnd"] > wm),
              "window %r: partial=%r, but its end %d vs watermark %d" %
              (k, g.get("partial"), w["windowEnd"], wm))
    npart = sum(1 for g in got.values() if g.get("partial"))
    return "%d windows (%d released by the idle timeout), %d late records on late-scores" % (
        len(got), npart, len(late))


def ex_clickstream(run):
    run.generate("users", "users", "--count", "100", "--seed", "17")
    users = {u["userId"]: u for u in run.consume_values("users", 100, 20)}
    # The table side must be loaded before the clicks flow: probe with the
    # last user that passes the filter until its click comes out joined.
    last = [u for u in users.values() if u["level"] != "bronze"][-1]
    seen, i = False, 0
    deadline = time.monotonic() + 30
    while not seen and time.monotonic() < deadline:
        i += 1
        probe = {"id": -i, "userId": last["userId"], "page": "/cart", "action": "probe",
                 "ts": START_MS}
        run.produce("clicks", ["%s|%s" % (last["userId"], json.dumps(probe))],
                    "--key-separator", "|")
        seen = any(r["value"]["clickId"] < 0 for r in run.consume("vip-clicks", None, 1.0))
    check(seen, "the users table was never loaded (no probe click joined)")
    run.generate("clicks", "clicks", "--count", "1500", "--seed", "18")
    clicks = [v for v in run.consume_values("clicks", 1500 + i, 20) if v["id"] >= 0]
    want = []
    for c in clicks:
        u = users.get(c["userId"])
        if u and u["level"] != "bronze" and c["page"] in ("/checkout", "/cart"):
            want.append(canon({"left": c, "right": u, "user": u["name"], "level": u["level"],
                               "region": u["region"], "page": c["page"], "clickId": c["id"]}))
    check(want, "the reference found no VIP clicks: pick another seed")
    nprobe = sum(1 for r in run.consume("vip-clicks", None, 1.0) if r["value"]["clickId"] < 0)
    got = [r["value"] for r in run.settle("vip-clicks", len(want) + nprobe, 30)]
    got = [canon(v) for v in got if v["clickId"] >= 0]
    compare_multiset(got, want, "vip-clicks")
    return "%d of 1500 clicks joined with their users and kept" % len(got)


def ex_iot_monitoring(run):
    run.generate("iot", "readings", "--count", "2400", "--seed", "9")
    inp = run.consume_values("readings", 2400, 20)
    want = {}
    for v in inp:
        if v["status"] != "ERROR":
            continue
        k = (v["sensorId"], tumbling(v["ts"], 60000))
        w = want.get(k)
        if w is None:
            w = want[k] = {"key": k[0], "windowStart": k[1], "windowEnd": k[1] + 60000,
                           "errors": 0, "firstCode": v["errorCode"], "lastCode": v["errorCode"],
                           "lastErrorTs": v["ts"]}
        w["errors"] += 1
        w["firstCode"] = min(w["firstCode"], v["errorCode"])
        w["lastCode"] = max(w["lastCode"], v["errorCode"])
        w["lastErrorTs"] = max(w["lastErrorTs"], v["ts"])
    got = window_results([r["value"] for r in run.settle("sensor-errors", len(want), 40, 4)],
                         "sensor-errors")
    check(set(got) == set(want), "windows differ: missing %s, unexpected %s" %
          (sorted(set(want) - set(got))[:3], sorted(set(got) - set(want))[:3]))
    for k, w in want.items():
        check(strip_flags(got[k]) == w, "window %r: got %r, want %r" % (k, got[k], w))
    return "%d (sensor, minute) error counts over %d ERROR readings" % (
        len(got), sum(w["errors"] for w in want.values()))


def ex_online_gaming(run):
    run.generate("scores", "scores", "--count", "1000", "--seed", "13")
    inp = run.consume_values("scores", 1000, 20)
    stage1 = {}
    for v in inp:
        k = (v["user"], tumbling(v["ts"], 5000))
        w = stage1.setdefault(k, {"key": v["user"], "windowStart": k[1], "windowEnd": k[1] + 5000,
                                  "team": v["team"], "score": 0, "plays": 0})
        check(w["team"] == v["team"], "player %s changed team" % v["user"])
        w["score"] += v["score"]
        w["plays"] += 1
    want = {}
    for w1 in stage1.values():
        t = w1["windowEnd"] - 1  # a window result's event time
        k = (w1["team"], tumbling(t, 10000))
        w = want.setdefault(k, {"key": k[0], "windowStart": k[1], "windowEnd": k[1] + 10000,
                                "score": 0, "players": 0, "plays": 0})
        w["score"] += w1["score"]
        w["players"] += 1
        w["plays"] += w1["plays"]
    got1 = window_results([r["value"] for r in run.settle("player-totals", len(stage1), 30, 1)],
                          "player-totals")
    check(set(got1) == set(stage1), "player windows differ")
    for k, w in stage1.items():
        check(strip_flags(got1[k]) == w, "player window %r: got %r, want %r" % (k, got1[k], w))
    # Stage 2 may fire a window before all of its inputs arrived and then
    # re-emit it (UPSERT); the last result per window must be exact.
    # The last team windows come out 6 s (their idle timeout) after the last
    # player totals; poll until every window's last result is in.
    deadline = time.monotonic() + 40
    while True:
        results = [r["value"] for r in run.consume("team-scores", None, 1.0)]
        got = window_results(results, "team-scores", allow_upsert=True)
        if set(got) == set(want) or time.monotonic() > deadline:
            break
        time.sleep(1)
    check(set(got) == set(want), "team windows differ: missing %s, unexpected %s" %
          (sorted(set(want) - set(got))[:3], sorted(set(got) - set(want))[:3]))
    time.sleep(2)  # nothing may follow: no more upserts, no duplicates
    results = [r["value"] for r in run.consume("team-scores", None, 2.0)]
    got = window_results(results, "team-scores", allow_upsert=True)
    for k, w in want.items():
        check(strip_flags(got[k]) == w, "team window %r: got %r, want %r" % (k, got[k], w))
    nup = sum(1 for v in results if v.get("upsert"))
    return "%d player windows, then %d team windows exact (%d upserts)" % (len(got1), len(got), nup)


def nexmark_input(run, count, rate, seed):
    run.generate("nexmark", "nexmark", "--count", str(count), "--event-rate", str(rate),
                 "--seed", str(seed))
    return run.consume("nexmark", count, 30)


def ex_nexmark_q5(run):
    run.wait_udfs(1)
    inp = nexmark_input(run, 12000, 500, 1)
    windows = {}
    for r in inp:
        v = r["value"]
        if v["event_type"] != 2:
            continue
        ts = r["timestamp"]
        s = ts - ts % 2000
        while s > ts - 10000:
            c = windows.setdefault(s, {})
            c[v["bid"]["auction"]] = c.get(v["bid"]["auction"], 0) + 1
            s -= 2000
    want = []
    for s, counts in windows.items():
        top = max(counts.values())
        for a, n in counts.items():
            if n == top:
                want.append(canon({"auction": a, "num": top, "windowStart": s,
                                   "windowEnd": s + 10000}))
    got = run.settle("nexmark-q5", len(want), 40, 4)
    compare_multiset([canon(r["value"]) for r in got], want, "nexmark-q5")
    return "%d hot items over %d hopping windows" % (len(got), len(windows))


def ex_nexmark_q7(run):
    run.wait_udfs(1)
    inp = nexmark_input(run, 12000, 500, 2)
    windows = {}
    for r in inp:
        v = r["value"]
        if v["event_type"] == 2:
            windows.setdefault(r["timestamp"] // 10000 * 10000, []).append(v["bid"])
    want = []
    for s, bids in windows.items():
        top = max(b["price"] for b in bids)
        want += [canon({"auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
                        "dateTime": b["dateTime"], "windowEnd": s + 10000})
                 for b in bids if b["price"] == top]
    got = run.settle("nexmark-q7", len(want), 40, 4)
    compare_multiset([canon(r["value"]) for r in got], want, "nexmark-q7")
    return "%d highest bids over %d windows" % (len(got), len(windows))


def ex_nexmark_q8(run):
    inp = nexmark_input(run, 15000, 500, 3)
    # A window join fires when the watermark reaches the window's end: the
    # minimum over partitions of (max timestamp - 4 s), the same on both sides.
    maxts = {}
    for r in inp:
        maxts[r["partition"]] = max(maxts.get(r["partition"], r["timestamp"]), r["timestamp"])
    check(len(maxts) == 2, "nexmark should use both partitions")
    wm = min(maxts.values()) - 4000
    persons, auctions = {}, {}
    for r in inp:
        v, s = r["value"], r["timestamp"] // 10000 * 10000
        if v["event_type"] == 0:
            persons.setdefault(s, []).append(v)
        elif v["event_type"] == 1:
            auctions.setdefault(s, []).append(v)
    want = []
    for s, ps in persons.items():
        if s + 10000 > wm:
            continue
        for p in ps:
            for a in auctions.get(s, []):
                if a["auction"]["seller"] == p["person"]["id"]:
                    want.append(canon({"left": p, "right": a, "id": p["person"]["id"],
                                       "name": p["person"]["name"],
                                       "auction": a["auction"]["id"]}))
    check(want, "the reference found no new sellers: pick another seed")
    got = run.settle("nexmark-q8", len(want), 40, 4)
    compare_multiset([canon(r["value"]) for r in got], want, "nexmark-q8")
    return "%d (new person, auction) pairs in windows up to the watermark %d" % (len(got), wm)


TESTS = {
    "retransmission": ex_retransmission,
    "inline-transformation": ex_inline_transformation,
    "polyglot-udf": ex_polyglot_udf,
    "replicas": ex_replicas,
    "partitioned": ex_partitioned,
    "event-time-window": ex_event_time_window,
    "clickstream": ex_clickstream,
    "iot-monitoring": ex_iot_monitoring,
    "online-gaming": ex_online_gaming,
    "nexmark-q5": ex_nexmark_q5,
    "nexmark-q7": ex_nexmark_q7,
    "nexmark-q8": ex_nexmark_q8,
}
NEEDS_GRPC = {"polyglot-udf", "nexmark-q5", "nexmark-q7"}


def pick_python():
    for p in (os.environ.get("WEIR_PYTHON"), "/usr/bin/python3", "python3"):
        if p and subprocess.run([p, "-c", "import grpc"], capture_output=True).returncode == 0:
            os.environ["WEIR_PYTHON"] = p
            return True
    return False


def main(argv):
    external = None
    if len(argv) == 4 and argv[2] == "--external":
        external = argv[3]
        argv = argv[:2]
    if len(argv) != 2 or argv[1] not in TESTS:
        print("usage: examples_driver.py {%s} [--external BOOTSTRAP]" % "|".join(EXAMPLES),
              file=sys.stderr)
        return 64
    name = argv[1]
    tag = "examples_" + name.replace("-", "_")
    if not (os.access(WEIRCTL, os.X_OK) and os.access(DATAPLANE, os.X_OK)):
        print("%s: SKIP: weirctl or weir-dataplane not built in %s" % (tag, BUILD))
        return 77
    if name in NEEDS_GRPC and not pick_python():
        print("%s: SKIP: no python3 with grpcio (ci/install-deps.sh --build)" % tag)
        return 77
    work = tempfile.mkdtemp(prefix="weir-%s." % tag)
    run = Run(name, work, external)
    t0 = time.monotonic()
    ok = False
    try:
        run.start()
        summary = TESTS[name](run)
        rc = run.stop()
        check(run.external or rc == 0, "weirctl run exited %s after SIGINT" % rc)
        ok = True
        print("%s: ok: %s (%.1f s)" % (tag, summary, time.monotonic() - t0))
    except (Fail, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as e:
        print("%s: FAIL: %s" % (tag, e), file=sys.stderr)
        print("---- last 30 lines of %s ----" % run.log_path, file=sys.stderr)
        print("\n".join(run.log_text().splitlines()[-30:]), file=sys.stderr)
    finally:
        if run.proc is not None and run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("%s: keeping %s" % (tag, work), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
