#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Nexmark q7 window UDF: the bids with the highest price in one window.
"""Highest bid UDF (Nexmark q7).

One requestReply call per window: the payload is a GrpcPayloadCollection of
the window's records (Nexmark bid events, {"event_type":2,"bid":{...}}), the
headers carry windowStartTime, windowEndTime and partial. The reply has one
element per bid with the window's highest price (ties: every such bid, in
arrival order):

    {"auction":1007,"bidder":1021,"price":91822,"dateTime":1767225603411,"windowEnd":1767225610000}

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

UDF_NAME = "nexmark-q7-highest-bid"


def request_reply(request, context):
    bids = []
    for record in wp.GrpcPayloadCollection.FromString(request.payload).payload:
        try:
            bid = json.loads(record).get("bid")
        except ValueError:
            continue
        if isinstance(bid, dict) and isinstance(bid.get("price"), int):
            bids.append(bid)
    out = wp.GrpcPayloadCollection()
    if bids:
        top = max(b["price"] for b in bids)
        end = int(request.headers.get("windowEndTime", "0"))
        for b in bids:
            if b["price"] == top:
                out.payload.append(json.dumps(
                    {"auction": b["auction"], "bidder": b["bidder"], "price": b["price"],
                     "dateTime": b["dateTime"], "windowEnd": end},
                    separators=(",", ":")).encode())
    reply = wp.GrpcMessage(payload=out.SerializeToString())
    reply.headers["contentType"] = "multipart/json"
    reply.headers["udf"] = UDF_NAME
    return reply


def main(argv=None):
    args = arg_parser("Nexmark q7 highest bid window UDF").parse_args(argv)
    return serve(args, UDF_NAME, request_reply)


if __name__ == "__main__":
    sys.exit(main())
