#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Weir test harness: a small gRPC client for UDF sidecars speaking the
# streaming-runtimes MessagingService contract, plus an offline check that
# the runtime-built message classes produce protoc's wire bytes.
"""udf_client.py [--target HOST:PORT] [--timeout S] COMMAND ...

Commands (replies are printed as JSON, one object per line, keys sorted:
{"headers": {...}, "payload": "..."}; a payload that is not UTF-8 is printed
as "payload_b64" instead):

  unary TEXT [--header k=v]...          requestReply
  bistream TEXT... [--header k=v]... [--lockstep]
                                        biStream; --lockstep waits for each
                                        reply before sending the next message
  serverstream TEXT [--header k=v]...   serverStream
  clientstream TEXT... [--header k=v]... clientStream
  raw-unary TEXT [--header k=v]...      requestReply with a hand-encoded
                                        request and a hand-decoded reply (no
                                        protobuf library on either side)
  health [--service NAME]               grpc.health.v1.Health/Check
  ping                                  requestReply "ping" == "PING"; exit 0/1
  wire-check                            offline: runtime classes vs
                                        hand-computed protobuf bytes (and vs
                                        protoc's descriptor if protoc exists)

Exit status: 0 ok, 1 check failed, 2 RPC error (details on stderr as JSON).
"""

import argparse
import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
UDF_PY_DIR = os.environ.get("WEIR_UDF_PYTHON_DIR",
                            os.path.join(ROOT, "examples", "udf", "python"))
PROTO_PATH = os.path.join(ROOT, "examples", "udf", "proto", "messaging.proto")
sys.path.insert(0, UDF_PY_DIR)

import weir_udf_proto as wp  # noqa: E402

# --------------------------------------------------------------------------
# Minimal independent protobuf codec for GrpcMessage (wire format by hand).


def enc_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def enc_ld(field, data):
    """Length-delimited field: tag (field << 3 | 2), varint length, bytes."""
    return enc_varint(field << 3 | 2) + enc_varint(len(data)) + data


def enc_grpc_message(payload, headers):
    out = enc_ld(1, payload) if payload else b""  # proto3: default omitted
    for k, v in headers:
        # protoc's C++ and Java runtimes always write both key and value of a
        # map entry, even when empty (parsers accept either form).
        out += enc_ld(2, enc_ld(1, k.encode()) + enc_ld(2, v.encode()))
    return out


def dec_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def dec_fields(buf):
    """Yield (field, wire_type, value) for a flat message; LD/varint only."""
    i = 0
    while i < len(buf):
        tag, i = dec_varint(buf, i)
        field, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = dec_varint(buf, i)
        elif wt == 2:
            n, i = dec_varint(buf, i)
            v = bytes(buf[i:i + n])
            if len(v) != n:
                raise ValueError("truncated field %d" % field)
            i += n
        else:
            raise ValueError("unexpected wire type %d for field %d" % (wt, field))
        yield field, wt, v


def dec_grpc_message(buf):
    payload, headers = b"", {}
    for field, wt, v in dec_fields(buf):
        if field == 1 and wt == 2:
            payload = v
        elif field == 2 and wt == 2:
            kv = {1: b"", 2: b""}
            for f2, wt2, v2 in dec_fields(v):
                if wt2 == 2:
                    kv[f2] = v2
            headers[kv[1].decode()] = kv[2].decode()
    return payload, headers

# --------------------------------------------------------------------------


def to_json(payload, headers):
    d = {"headers": dict(sorted(headers.items()))}
    try:
        d["payload"] = payload.decode("utf-8")
    except UnicodeDecodeError:
        d["payload_b64"] = base64.b64encode(payload).decode()
    return json.dumps(d, sort_keys=True, ensure_ascii=False)


def emit(msg):
    print(to_json(msg.payload, msg.headers), flush=True)


def parse_headers(pairs):
    out = []
    for p in pairs or []:
        if "=" not in p:
            raise SystemExit("udf_client: --header wants k=v, got %r" % p)
        k, v = p.split("=", 1)
        out.append((k, v))
    return out


def make_msg(text, headers):
    m = wp.GrpcMessage(payload=text.encode("utf-8"))
    m.headers.update(dict(headers))
    return m


def channel(args):
    import grpc
    return grpc.insecure_channel(args.target)


def rpc(ch, name, kind, raw=False):
    ser, de = (None, None) if raw else (wp.serialize, wp.deserialize)
    factory = getattr(ch, kind)
    return factory(wp.method_path(name), request_serializer=ser, response_deserializer=de)


def cmd_unary(args):
    with channel(args) as ch:
        emit(rpc(ch, "requestReply", "unary_unary")(
            make_msg(args.text, parse_headers(args.header)), timeout=args.timeout))
    return 0


def cmd_ping(args):
    with channel(args) as ch:
        r = rpc(ch, "requestReply", "unary_unary")(make_msg("ping", []), timeout=args.timeout)
    return 0 if r.payload == b"PING" else 1


def cmd_serverstream(args):
    with channel(args) as ch:
        for r in rpc(ch, "serverStream", "unary_stream")(
                make_msg(args.text, parse_headers(args.header)), timeout=args.timeout):
            emit(r)
    return 0


def cmd_clientstream(args):
    hdrs = parse_headers(args.header)
    with channel(args) as ch:
        emit(rpc(ch, "clientStream", "stream_unary")(
            iter([make_msg(t, hdrs) for t in args.texts]), timeout=args.timeout))
    return 0


def cmd_bistream(args):
    hdrs = parse_headers(args.header)
    acks = queue.Queue()
    state = {"stalled": False}

    def requests():
        for t in args.texts:
            yield make_msg(t, hdrs)
            if args.lockstep:
                try:
                    acks.get(timeout=args.timeout)
                except queue.Empty:
                    state["stalled"] = True
                    return  # half-close; the missing replies fail the caller

    n = 0
    with channel(args) as ch:
        for r in rpc(ch, "biStream", "stream_stream")(requests(), timeout=args.timeout):
            emit(r)
            n += 1
            acks.put(n)
    if state["stalled"]:
        print(json.dumps({"error": "lockstep: no reply within %ss" % args.timeout}),
              file=sys.stderr)
        return 1
    return 0


def cmd_raw_unary(args):
    hdrs = parse_headers(args.header)
    req = enc_grpc_message(args.text.encode("utf-8"), hdrs)
    with channel(args) as ch:
        raw = rpc(ch, "requestReply", "unary_unary", raw=True)(req, timeout=args.timeout)
    payload, headers = dec_grpc_message(raw)
    print(to_json(payload, headers), flush=True)
    return 0


def cmd_health(args):
    import grpc
    with grpc.insecure_channel(args.target) as ch:
        check = ch.unary_unary("/%s/Check" % wp.HEALTH_SERVICE_NAME,
                               request_serializer=wp.HealthCheckRequest.SerializeToString,
                               response_deserializer=wp.HealthCheckResponse.FromString)
        r = check(wp.HealthCheckRequest(service=args.service), timeout=args.timeout)
    name = wp.HealthCheckResponse.DESCRIPTOR.enum_types_by_name["ServingStatus"] \
        .values_by_number[r.status].name
    print(json.dumps({"service": args.service, "status": name}), flush=True)
    return 0 if name == "SERVING" else 1


def cmd_wire_check(args):
    """Runtime-built classes vs bytes computed by hand from the protobuf
    encoding rules (tag = field << 3 | wire type 2, varint length)."""
    results = []

    def check(name, ok, detail=""):
        r = {"check": name, "ok": bool(ok)}
        if detail and not ok:
            r["detail"] = detail
        results.append(r)

    # GrpcMessage{payload="hi", headers={contentType: text/plain}}
    golden = (b"\x0a\x02hi"                      # field 1 (payload), len 2
              b"\x12\x19"                        # field 2 (headers entry), len 25
              b"\x0a\x0bcontentType"             #   entry.key, len 11
              b"\x12\x0atext/plain")             #   entry.value, len 10
    m = wp.GrpcMessage(payload=b"hi", headers={"contentType": "text/plain"})
    got = m.SerializeToString()
    check("GrpcMessage serializes to hand-computed bytes", got == golden,
          "got %s want %s" % (got.hex(), golden.hex()))
    p = wp.GrpcMessage.FromString(golden)
    check("hand-computed bytes parse into GrpcMessage",
          p.payload == b"hi" and dict(p.headers) == {"contentType": "text/plain"})
    check("empty GrpcMessage is zero bytes", wp.GrpcMessage().SerializeToString() == b"")

    big = bytes(range(256)) + b"x" * 44  # 300 bytes: two-byte varint length
    check("300-byte payload has varint length ac 02",
          wp.GrpcMessage(payload=big).SerializeToString() == b"\x0a\xac\x02" + big)

    coll = wp.GrpcPayloadCollection(payload=[b"a", b"bc"]).SerializeToString()
    check("GrpcPayloadCollection serializes to hand-computed bytes",
          coll == b"\x0a\x01a\x0a\x02bc", coll.hex())

    for text, hk, hv in (("hello", "contentType", "application/json"),
                         ("é" * 70, "k" * 130, "v"), ("", "a", "")):
        mine = enc_grpc_message(text.encode(), [(hk, hv)])
        lib = wp.GrpcMessage(payload=text.encode(), headers={hk: hv}).SerializeToString()
        check("hand encoder == library for %r" % text[:8], mine == lib,
              "hand %s lib %s" % (mine.hex(), lib.hex()))
    multi = wp.GrpcMessage(payload=b"x", headers={"a": "1", "b": "2", "contentType": "t"})
    check("hand decoder reads a multi-header message",
          dec_grpc_message(multi.SerializeToString()) == (b"x", dict(multi.headers)))

    svc = wp.MESSAGING_SERVICE_DESCRIPTOR
    check("service full name", svc.full_name == "org.springframework.cloud.function.grpc.MessagingService")
    want = {"biStream": (True, True), "clientStream": (True, False),
            "serverStream": (False, True), "requestReply": (False, False)}
    have = {m.name: (m.client_streaming, m.server_streaming) for m in svc.methods}
    check("methods and streaming flags", have == want, str(have))
    check("every RPC takes and returns GrpcMessage",
          all(m.input_type.full_name == m.output_type.full_name
              == "org.springframework.cloud.function.grpc.GrpcMessage" for m in svc.methods))
    check("requestReply path",
          wp.method_path("requestReply")
          == "/org.springframework.cloud.function.grpc.MessagingService/requestReply")

    from google.protobuf import descriptor_pb2
    protoc = shutil.which("protoc")
    if protoc and os.path.exists(PROTO_PATH):
        with tempfile.TemporaryDirectory() as td:
            out = os.path.join(td, "m.pb")
            subprocess.run([protoc, "-I" + os.path.dirname(PROTO_PATH),
                            "--descriptor_set_out=" + out, os.path.basename(PROTO_PATH)],
                           check=True)
            fds = descriptor_pb2.FileDescriptorSet.FromString(open(out, "rb").read())
        check("descriptor == protoc's for messaging.proto",
              fds.file[0].SerializeToString() == wp.MESSAGING_FILE_PROTO.SerializeToString())
    else:
        results.append({"check": "descriptor == protoc's", "skipped": "protoc not installed"})

    for r in results:
        print(json.dumps(r, sort_keys=True), flush=True)
    return 0 if all(r.get("ok", True) for r in results) else 1


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="gRPC client for Weir UDFs (MessagingService)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--target", default=os.environ.get("UDF_TARGET", "127.0.0.1:55554"),
                    help="HOST:PORT (default $UDF_TARGET or 127.0.0.1:55554)")
    ap.add_argument("--timeout", type=float, default=10.0, help="RPC deadline in seconds")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def with_headers(p):
        p.add_argument("--header", action="append", metavar="K=V", help="request header")
        return p

    with_headers(sub.add_parser("unary")).add_argument("text")
    p = with_headers(sub.add_parser("bistream"))
    p.add_argument("texts", nargs="+")
    p.add_argument("--lockstep", action="store_true")
    with_headers(sub.add_parser("serverstream")).add_argument("text")
    with_headers(sub.add_parser("clientstream")).add_argument("texts", nargs="+")
    with_headers(sub.add_parser("raw-unary")).add_argument("text")
    sub.add_parser("health").add_argument("--service", default="")
    sub.add_parser("ping")
    sub.add_parser("wire-check")
    args = ap.parse_args(argv)

    fn = {"unary": cmd_unary, "bistream": cmd_bistream, "serverstream": cmd_serverstream,
          "clientstream": cmd_clientstream, "raw-unary": cmd_raw_unary,
          "health": cmd_health, "ping": cmd_ping, "wire-check": cmd_wire_check}[args.cmd]
    if args.cmd == "wire-check":
        return fn(args)
    import grpc
    try:
        return fn(args)
    except grpc.RpcError as e:
        print(json.dumps({"error": e.code().name, "details": e.details(),
                          "target": args.target}), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
