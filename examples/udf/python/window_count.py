#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Weir UDF sample: a windowed aggregator (count per key) in Python/grpcio.
"""Window count UDF.

Weir sends a window's records as one requestReply call: the payload is a
serialized GrpcPayloadCollection of the record values; the headers are
contentType=multipart/<subtype>, windowStartTime, windowEndTime (ms) and
partial. This UDF counts the records per key and replies with a
GrpcPayloadCollection of one JSON element per key, sorted by key:

    {"key":"red","count":3,"windowStartTime":1000,"windowEndTime":6000,"partial":false}

--key SPEC (or $WINDOW_KEY; default payload.key):
  payload.FIELD  top-level field FIELD of each record's JSON object: a string
                 as is, a number/true/false as its JSON text; records without
                 it (or that are not JSON objects) are skipped;
  header.NAME    request header NAME: the whole window is one key.

Reply headers: contentType=multipart/json, windowStartTime, windowEndTime and
partial echoed, skipped=<records without a key>, udf=python-window-count.
A request whose contentType is not multipart/... fails INVALID_ARGUMENT.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import weir_udf_proto as wp  # noqa: E402
from _sample_server import arg_parser, serve  # noqa: E402

UDF_NAME = "python-window-count"


def parse_key_spec(spec):
    for prefix in ("payload.", "header."):
        if spec.startswith(prefix) and len(spec) > len(prefix):
            return prefix[:-1], spec[len(prefix):]
    raise ValueError("--key must be payload.FIELD or header.NAME, got %r" % spec)


def record_key(record, field):
    """Key of one record (bytes), or None."""
    try:
        obj = json.loads(record.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(obj, dict):
        return None
    value = obj.get(field)
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)  # its JSON text: 7, 1.5, true
    return None  # missing, null, object or array


def window_time(value):
    """Window bound header as a JSON number (up to 18 digits), else None."""
    if value is not None and re.fullmatch(r"[0-9]{1,18}", value):
        return int(value)
    return None


def make_handler(source, field):
    def request_reply(request, context):
        headers = request.headers
        if not headers.get("contentType", "").startswith("multipart/"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "expected contentType multipart/... (a window's GrpcPayloadCollection)")
        try:
            records = wp.GrpcPayloadCollection.FromString(request.payload).payload
        except Exception:  # protobuf's DecodeError
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed GrpcPayloadCollection")
        counts = {}
        skipped = 0
        for record in records:
            if source == "header":
                key = headers.get(field)
            else:
                key = record_key(record, field)
            if key is None:
                skipped += 1
                continue
            counts[key] = counts.get(key, 0) + 1
        start = window_time(headers.get("windowStartTime"))
        end = window_time(headers.get("windowEndTime"))
        partial = headers.get("partial") == "true"
        out = wp.GrpcPayloadCollection()
        # Sort by UTF-8 bytes (same order as the C sample's strcmp).
        for key in sorted(counts, key=lambda k: k.encode("utf-8")):
            element = {"key": key, "count": counts[key], "windowStartTime": start,
                       "windowEndTime": end, "partial": partial}
            out.payload.append(json.dumps(element, separators=(",", ":"),
                                          ensure_ascii=False).encode("utf-8"))
        reply = wp.GrpcMessage(payload=out.SerializeToString())
        reply.headers["contentType"] = "multipart/json"
        for h in ("windowStartTime", "windowEndTime", "partial"):
            if h in headers:
                reply.headers[h] = headers[h]
        reply.headers["skipped"] = str(skipped)
        reply.headers["udf"] = UDF_NAME
        return reply

    return request_reply


def main(argv=None):
    ap = arg_parser("Weir window count UDF (requestReply on a window's GrpcPayloadCollection)")
    ap.add_argument("--key", default=os.environ.get("WINDOW_KEY") or "payload.key",
                    help="payload.FIELD (default payload.key) or header.NAME")
    args = ap.parse_args(argv)
    try:
        source, field = parse_key_spec(args.key)
    except ValueError as e:
        ap.error(str(e))
    return serve(args, UDF_NAME, make_handler(source, field))


if __name__ == "__main__":
    sys.exit(main())
