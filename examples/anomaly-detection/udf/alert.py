#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Weir example UDF: turns a 5 s window count of card authorizations into an alert.
"""Alert formatter (requestReply).

Input: a window result of the card-velocity processor,
    {"key": CARD, "windowStart": MS, "windowEnd": MS, "authorizations": N, "total": X}
Output: the alert,
    {"alert": "card-velocity", "card": CARD, "authorizations": N, "total": X,
     "windowStartMs": MS, "windowStart": ISO, "windowEnd": ISO,
     "severity": "high" | "medium", "message": "..."}

    python3 alert.py --port 55554
"""

import datetime
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "udf", "python"))

import grpc  # noqa: E402

import weir_udf_proto as wp  # noqa: E402
from _sample_server import arg_parser, serve  # noqa: E402

UDF_NAME = "anomaly-alert"


def iso(ms):
    t = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def request_reply(request, context):
    try:
        w = json.loads(request.payload.decode("utf-8"))
        card, n = w["key"], int(w["authorizations"])
        start, end = int(w["windowStart"]), int(w["windowEnd"])
    except (ValueError, KeyError, TypeError) as e:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "not a window count: %s" % e)
    total = w.get("total")
    alert = {
        "alert": "card-velocity",
        "card": card,
        "authorizations": n,
        "total": round(total, 2) if isinstance(total, (int, float)) else None,
        "windowStartMs": start,
        "windowStart": iso(start),
        "windowEnd": iso(end),
        "severity": "high" if n >= 8 else "medium",
        "message": "card %s made %d authorizations in %d s" % (card, n, (end - start) // 1000),
    }
    reply = wp.GrpcMessage(payload=json.dumps(alert, separators=(",", ":")).encode("utf-8"))
    reply.headers.update(request.headers)
    reply.headers["udf"] = UDF_NAME
    return reply


def main(argv=None):
    args = arg_parser("Weir anomaly-detection alert formatter (requestReply)").parse_args(argv)
    return serve(args, UDF_NAME, request_reply)


if __name__ == "__main__":
    sys.exit(main())
