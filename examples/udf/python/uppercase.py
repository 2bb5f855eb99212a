#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Weir UDF sample: a unary (requestReply) uppercase mapper in Python/grpcio.
"""Uppercase UDF.

requestReply: the payload uppercased (UTF-8 text as Unicode, "é" -> "É";
other bytes ASCII letters only), the request headers (contentType included)
echoed back, plus the header udf=python-uppercase.

    /usr/bin/python3 uppercase.py --port 55554
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import weir_udf_proto as wp  # noqa: E402
from _sample_server import arg_parser, serve  # noqa: E402

UDF_NAME = "python-uppercase"


def upper(payload):
    try:
        return payload.decode("utf-8").upper().encode("utf-8")
    except UnicodeDecodeError:
        return payload.upper()


def request_reply(request, context):
    reply = wp.GrpcMessage(payload=upper(request.payload))
    reply.headers.update(request.headers)
    reply.headers["udf"] = UDF_NAME
    return reply


def main(argv=None):
    args = arg_parser("Weir uppercase UDF (requestReply)").parse_args(argv)
    return serve(args, UDF_NAME, request_reply)


if __name__ == "__main__":
    sys.exit(main())
