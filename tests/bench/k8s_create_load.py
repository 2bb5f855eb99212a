#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Open-loop create load for the operator bench (tests/bench/operator_bench.sh).

POSTs Processors to the kube-apiserver at a fixed arrival rate over a few
persistent HTTPS connections (TLS with the harness's admin client
certificate, HTTP/1.1 keep-alive), like a controller or CI system applying
manifests, instead of one curl process (fork, exec, TLS handshake) per
object. Request i is due at start + i / rate; a free connection sends it at
that time (or at once when it is late), so the arrival rate does not depend
on how fast the apiserver answers.

Writes one line per object to --out: "NAME T_SEND T_DONE LAG" (epoch seconds,
the first two as bash's $EPOCHREALTIME would give them; LAG is how late the
send was against its due time, in ms). Exits non-zero when any POST fails.
"""

import argparse
import http.client
import json
import ssl
import sys
import threading
import time


def processor(ns, index):
    name = "pb-%04d" % index
    body = {
        "apiVersion": "streaming.weir.dev/v1alpha1",
        "kind": "Processor",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "inputs": [{"name": "in"}],
            "outputs": [{"name": "out"}],
            "filter": "payload.amount > %d" % index,
        },
    }
    return name, json.dumps(body, separators=(",", ":")).encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="https://HOST:PORT")
    ap.add_argument("--cacert", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--first", type=int, required=True, help="first index")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--rate", type=float, required=True, help="POSTs per second")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.rate <= 0 or a.count < 0 or a.connections < 1:
        ap.error("--rate must be > 0, --count >= 0, --connections >= 1")

    host = a.server.split("://", 1)[-1]
    ctx = ssl.create_default_context(cafile=a.cacert)
    ctx.load_cert_chain(a.cert, a.key)
    path = "/apis/streaming.weir.dev/v1alpha1/namespaces/%s/processors" % a.namespace
    lock = threading.Lock()
    state = {"next": 0, "failed": 0}
    lines = []
    start = time.time() + 0.2  # every connection is up by then

    def worker():
        conn = http.client.HTTPSConnection(host, context=ctx, timeout=30)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as e:
            with lock:
                state["failed"] += 1
            sys.stderr.write("connect to %s failed: %s\n" % (host, e))
            return
        while True:
            with lock:
                i = state["next"]
                if i >= a.count:
                    break
                state["next"] = i + 1
            due = start + i / a.rate
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            name, body = processor(a.namespace, a.first + i)
            t0 = time.time()
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                ok = resp.status == 201
            except (OSError, http.client.HTTPException) as e:
                ok, data = False, str(e).encode()
                conn.close()
                conn = http.client.HTTPSConnection(host, context=ctx, timeout=30)
            t1 = time.time()
            with lock:
                if ok:
                    lines.append("weir-proc-%s %.6f %.6f %.1f" % (name, t0, t1, (t0 - due) * 1000))
                else:
                    state["failed"] += 1
                    sys.stderr.write("POST %s failed: %s\n" % (name, data[:300].decode(errors="replace")))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(min(a.connections, max(a.count, 1)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(a.out, "a") as f:
        for line in lines:
            f.write(line + "\n")
    return 1 if state["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
