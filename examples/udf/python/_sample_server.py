# SPDX-License-Identifier: Apache-2.0
# Shared start-up for the single-file Python UDF samples (uppercase.py,
# window_count.py): flags, JSON log lines, grpcio server, SIGTERM handling.
"""Run a requestReply function as a Weir UDF gRPC server."""

import argparse
import json
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

import weir_udf_proto as wp

DEFAULT_PORT = 55554  # Weir's srp.grpcPort default (the original samples: 50051)


def log(level, msg, **fields):
    rec = {"level": level, "msg": msg}
    rec.update(fields)
    rec["ts"] = round(time.time(), 3)
    sys.stdout.write(json.dumps(rec, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def arg_parser(description):
    env_port = os.environ.get("UDF_PORT")
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--port", type=int, default=int(env_port) if env_port else DEFAULT_PORT,
                    help="TCP port (default $UDF_PORT or %d; 0 = any free port)" % DEFAULT_PORT)
    ap.add_argument("--host", default="127.0.0.1",
                    help="bind address (default 127.0.0.1; 0.0.0.0 in a container)")
    ap.add_argument("--max-workers", type=int, default=8, help="concurrent RPCs (default 8)")
    return ap


def serve(args, name, request_reply):
    """Serve REQUEST_REPLY(GrpcMessage, context) -> GrpcMessage as the
    MessagingService requestReply RPC, and per message as biStream, until
    SIGTERM/SIGINT."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.max_workers),
                         options=[("grpc.so_reuseport", 0)])
    def bi_stream(request_iterator, context):
        # streaming-runtimes' biStream contract: one reply per request, in
        # order; a failed request ends the stream with its status.
        for request in request_iterator:
            yield request_reply(request, context)

    server.add_generic_rpc_handlers([wp.messaging_handler(request_reply=request_reply,
                                                          bi_stream=bi_stream)])
    health = wp.add_health(server)
    host = args.host
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    try:
        port = server.add_insecure_port("%s:%d" % (host, args.port))
    except RuntimeError as e:
        log("error", "udf bind failed", host=args.host, port=args.port, error=str(e))
        return 1
    if port == 0:
        log("error", "udf bind failed", host=args.host, port=args.port)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    log("info", "udf ready", port=port, host=args.host, udf=name, pid=os.getpid())
    while not stop.wait(1.0):
        pass
    log("info", "udf stopping")
    health.shutdown()
    server.stop(5).wait()
    log("info", "udf stopped", port=port)
    return 0
