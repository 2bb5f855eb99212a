#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Weir example UDF: an uppercase mapper serving the streaming-runtimes
# MessagingService contract over gRPC (plus grpc.health.v1), with message
# classes built at run time by ../weir_udf_proto.py (no protoc step).
"""Uppercase UDF server.

requestReply  one message -> payload uppercased, request headers echoed
              back plus udf=python-uppercase
biStream      each message mapped the same way, one reply per request, in
              order, each reply sent as soon as its request is read
serverStream  one message -> a stream of one mapped reply
clientStream  many messages -> one reply: the payloads concatenated and
              uppercased, the headers merged (a later message's value wins)

Payloads that are valid UTF-8 are uppercased as Unicode text ("é" -> "É");
anything else is uppercased byte-wise (ASCII letters only).
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from concurrent import futures

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # examples/udf/python

import grpc  # noqa: E402

import weir_udf_proto as wp  # noqa: E402

UDF_NAME = "python-uppercase"
DEFAULT_PORT = 55554  # Weir's srp.grpcPort default (the original samples: 50051)


def log(level, msg, **fields):
    """One compact JSON object per line on stdout, e.g.
    {"level":"info","msg":"udf ready","port":55554,...,"ts":1700000000.123}"""
    rec = {"level": level, "msg": msg}
    rec.update(fields)
    rec["ts"] = round(time.time(), 3)
    try:
        sys.stdout.write(json.dumps(rec, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    except OSError:  # closed/broken stdout must not break serving or shutdown
        pass


def upper(payload):
    try:
        return payload.decode("utf-8").upper().encode("utf-8")
    except UnicodeDecodeError:
        return payload.upper()


def reply(payload, headers):
    out = wp.GrpcMessage(payload=upper(payload))
    out.headers.update(headers)
    out.headers["udf"] = UDF_NAME
    return out


def request_reply(request, context):
    return reply(request.payload, request.headers)


def bi_stream(request_iterator, context):
    for request in request_iterator:
        yield reply(request.payload, request.headers)


def server_stream(request, context):
    yield reply(request.payload, request.headers)


def client_stream(request_iterator, context):
    parts = []
    headers = {}
    for request in request_iterator:
        parts.append(request.payload)
        headers.update(request.headers)
    return reply(b"".join(parts), headers)


def parse_args(argv):
    env_port = os.environ.get("UDF_PORT")
    ap = argparse.ArgumentParser(description="Weir uppercase UDF (gRPC MessagingService)")
    if env_port is not None and not env_port.isdigit():
        ap.error("UDF_PORT must be a port number, got %r" % env_port)
    ap.add_argument("--port", type=int, default=int(env_port) if env_port else DEFAULT_PORT,
                    help="TCP port (default $UDF_PORT or %d; 0 = any free port)" % DEFAULT_PORT)
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1; 0.0.0.0 or [::] in a pod)")
    ap.add_argument("--max-workers", type=int, default=8,
                    help="handler threads = concurrent RPCs, streams included (default 8)")
    ap.add_argument("--grace", type=float, default=5.0,
                    help="seconds in-flight RPCs get to finish on SIGTERM (default 5)")
    args = ap.parse_args(argv)
    if not 0 <= args.port <= 65535:
        ap.error("--port must be 0..65535")
    if args.max_workers < 1:
        ap.error("--max-workers must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    # so_reuseport=0: a second server on the same port must fail to bind
    # rather than silently share the port (grpc enables SO_REUSEPORT by default).
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.max_workers,
                                                    thread_name_prefix="udf"),
                         options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers([wp.messaging_handler(
        request_reply=request_reply, bi_stream=bi_stream,
        server_stream=server_stream, client_stream=client_stream)])
    health = wp.add_health(server)

    host = args.host
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host  # bare IPv6 literal
    try:
        port = server.add_insecure_port("%s:%d" % (host, args.port))
    except RuntimeError as e:  # grpcio >= 1.5x raises instead of returning 0
        port = 0
        err = str(e)
    else:
        err = "bind failed"
    if port == 0:
        log("error", "udf bind failed", host=args.host, port=args.port, error=err)
        return 1

    stop = threading.Event()
    received = []

    def on_signal(signum, _frame):
        received.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server.start()
    log("info", "udf ready", port=port, host=args.host, udf=UDF_NAME,
        service=wp.SERVICE_NAME, health=health.impl, max_workers=args.max_workers,
        pid=os.getpid())
    # Event.wait in short slices keeps the main thread responsive to signals.
    while not stop.wait(1.0):
        pass
    log("info", "udf stopping", signal=received[0], grace=args.grace)
    health.shutdown()
    server.stop(args.grace).wait()
    log("info", "udf stopped", port=port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
