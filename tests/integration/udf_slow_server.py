#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Test UDF for tests/integration/udf_client.sh: a MessagingService
# requestReply server (grpcio, runtime-built classes from
# examples/udf/python/weir_udf_proto.py) whose behaviour is chosen by the
# request payload, to exercise the C client's deadlines and status mapping:
#   "sleep:MS ..."      sleep MS milliseconds, then reply uppercased
#   "status:N:TEXT"     fail with gRPC status N and grpc-message TEXT
#   "...badpb..."       (not multipart) reply bytes that are not a GrpcMessage
#   contentType multipart/* (a window's GrpcPayloadCollection): each element
#                       uppercased, or, when "badcollection" is in it, a reply
#                       that says multipart/* but is no GrpcPayloadCollection
#   anything else       reply uppercased (headers echoed + udf=python-slow)
# biStream maps each request the same way, one reply per request, in order
# (a failing request ends the stream with its status).
# Prints {"msg":"udf ready","port":N} once serving; stops on SIGTERM.
import argparse
import json
import os
import signal
import sys
import threading
import time
from concurrent import futures

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples", "udf", "python"))

import grpc  # noqa: E402

import weir_udf_proto as wp  # noqa: E402


def request_reply(request, context):
    text = request.payload.decode("utf-8", "replace")
    if text.startswith("sleep:"):
        ms = int(text.split(":", 1)[1].split()[0])
        time.sleep(ms / 1000.0)
    elif text.startswith("status:"):
        _, code, msg = text.split(":", 2)
        status = next(s for s in grpc.StatusCode if s.value[0] == int(code))
        context.abort(status, msg)
    if request.headers.get("contentType", "").startswith("multipart/"):
        # a window: "badcollection" in it gets a reply that says multipart
        # but is no GrpcPayloadCollection; otherwise each element uppercased
        if "badcollection" in text:
            out = wp.GrpcMessage(payload=b"\x0a\x05ab")  # element claims 5 bytes, has 2
        else:
            coll = wp.GrpcPayloadCollection.FromString(request.payload)
            up = wp.GrpcPayloadCollection()
            up.payload.extend(p.upper() for p in coll.payload)  # ASCII letters only
            out = wp.GrpcMessage(payload=up.SerializeToString())
        out.headers.update(request.headers)
        out.headers["udf"] = "python-slow"
        return out
    if "badpb" in text:
        return b"\x0a\xff\xff\xff\x0f"  # field 1, length 4 GiB: truncated
    out = wp.GrpcMessage(payload=text.upper().encode("utf-8"))
    out.headers.update(request.headers)
    out.headers["udf"] = "python-slow"
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                         options=[("grpc.so_reuseport", 0)])
    def serialize(m):  # raw bytes pass through: the malformed replies
        return m if isinstance(m, bytes) else m.SerializeToString()

    def bi_stream(request_iterator, context):
        for request in request_iterator:
            yield request_reply(request, context)

    kw = dict(request_deserializer=wp.deserialize, response_serializer=serialize)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(wp.SERVICE_NAME, {
        "requestReply": grpc.unary_unary_rpc_method_handler(request_reply, **kw),
        "biStream": grpc.stream_stream_rpc_method_handler(bi_stream, **kw),
    })])
    port = server.add_insecure_port("%s:%d" % (args.host, args.port))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    print(json.dumps({"msg": "udf ready", "port": port}), flush=True)
    while not stop.wait(0.5):
        pass
    server.stop(0).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
