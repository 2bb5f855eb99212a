#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Nexmark q5 window UDF: the auctions with the most bids in one window.
"""Hot items UDF (Nexmark q5).

One requestReply call per window: the payload is a GrpcPayloadCollection of
the window's records (Nexmark bid events, {"event_type":2,"bid":{...}}), the
headers carry windowStartTime, windowEndTime and partial. The reply has one
element per auction with the window's highest bid count (ties: every such
auction, by ascending id):

    {"auction":1007,"num":12,"windowStart":1767225600000,"windowEnd":1767225610000}

Records that are not bids are skipped. Flags: --port, --host (see
examples/udf/python/_sample_server.py).
"""

import json
import os
import sys

# The shared sample helpers: beside this file in the image, else in the tree.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.join(HERE, "..", "..", "udf", "python"))

import weir_udf_proto as wp  # noqa: E402
from _sample_server import arg_parser, serve  # noqa: E402

UDF_NAME = "nexmark-q5-hot-items"


def request_reply(request, context):
    counts = {}
    for record in wp.GrpcPayloadCollection.FromString(request.payload).payload:
        try:
            bid = json.loads(record).get("bid")
        except ValueError:
            continue
        if isinstance(bid, dict) and isinstance(bid.get("auction"), int):
            counts[bid["auction"]] = counts.get(bid["auction"], 0) + 1
    out = wp.GrpcPayloadCollection()
    if counts:
        top = max(counts.values())
        start = int(request.headers.get("windowStartTime", "0"))
        end = int(request.headers.get("windowEndTime", "0"))
        for auction in sorted(a for a, n in counts.items() if n == top):
            out.payload.append(json.dumps(
                {"auction": auction, "num": top, "windowStart": start, "windowEnd": end},
                separators=(",", ":")).encode())
    reply = wp.GrpcMessage(payload=out.SerializeToString())
    reply.headers["contentType"] = "multipart/json"
    reply.headers["udf"] = UDF_NAME
    return reply


def main(argv=None):
    args = arg_parser("Nexmark q5 hot items window UDF").parse_args(argv)
    return serve(args, UDF_NAME, request_reply)


if __name__ == "__main__":
    sys.exit(main())
