#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Checks a running Weir UDF sample (examples/udf) over real gRPC (grpcio):
#   uppercase TARGET UDF_NAME  requestReply replies uppercased, headers echoed
#                              plus udf=UDF_NAME; 100 KiB, empty and 3 MiB
#                              payloads; 5 MiB RESOURCE_EXHAUSTED;
#                              200 concurrent calls; biStream in order
#   window TARGET UDF_NAME     window_count started with --key payload.team:
#                              a crafted GrpcPayloadCollection gives the right
#                              per-key counts; partial, empty window, bad
#                              contentType and malformed collection cases
#   window-header TARGET UDF_NAME  window_count started with --key header.team
# Exit 0 when every check passes; prints one line per check.
"""Client for tests/integration/udf_samples.sh."""

import json
import os
import sys
from concurrent import futures

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples", "udf", "python"))

import grpc  # noqa: E402

import weir_udf_proto as wp  # noqa: E402

TIMEOUT = 10


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def rpc(channel, name, streaming=False):
    path = wp.method_path(name)
    if streaming:
        return channel.stream_stream(path, request_serializer=wp.serialize,
                                     response_deserializer=wp.deserialize)
    return channel.unary_unary(path, request_serializer=wp.serialize,
                               response_deserializer=wp.deserialize)


def message(payload, **headers):
    m = wp.GrpcMessage(payload=payload)
    m.headers.update(headers)
    return m


def check_uppercase(channel, udf):
    call = rpc(channel, "requestReply")
    r = call(message(b"hello, weir 42", contentType="text/plain", trace="abc-1"),
             timeout=TIMEOUT)
    expect(r.payload == b"HELLO, WEIR 42", "payload %r" % r.payload)
    expect(dict(r.headers) == {"contentType": "text/plain", "trace": "abc-1", "udf": udf},
           "headers %r" % dict(r.headers))
    print("ok uppercase: payload uppercased, headers echoed, udf=%s" % udf)

    big = bytes(b"abcdefghij"[i % 10] for i in range(100 * 1024))
    r = call(message(big, contentType="text/plain"), timeout=TIMEOUT)
    expect(r.payload == big.upper(), "100 KiB payload not uppercased")
    r = call(message(b""), timeout=TIMEOUT)
    expect(r.payload == b"" and dict(r.headers) == {"udf": udf}, "empty %r" % r)
    print("ok uppercase: 100 KiB and empty payloads")

    r = call(message(b"m" * (3 << 20)), timeout=TIMEOUT)
    expect(r.payload == b"M" * (3 << 20), "3 MiB payload not uppercased")
    try:
        call(message(b"x" * (5 << 20)), timeout=TIMEOUT)
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, "5 MiB: %s" % e.code())
    else:
        raise CheckFailed("5 MiB request accepted; the limit is 4 MiB")
    try:  # cancelled while uploading: the server must carry on
        call(message(b"y" * (3 << 20)), timeout=0.001)
    except grpc.RpcError:
        pass
    r = call(message(b"after"), timeout=TIMEOUT)
    expect(r.payload == b"AFTER", "call after a cancelled one: %r" % r.payload)
    print("ok uppercase: 3 MiB ok, 5 MiB RESOURCE_EXHAUSTED, cancelled call harmless")

    def one(i):
        rr = call(message(b"req-%d" % i, seq=str(i)), timeout=TIMEOUT)
        return rr.payload == b"REQ-%d" % i and rr.headers["seq"] == str(i)

    with futures.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(200)))
    expect(all(results), "%d of 200 concurrent calls wrong" % results.count(False))
    print("ok uppercase: 200 concurrent calls")
    check_bistream(channel, udf)


def check_bistream(channel, udf):
    """biStream: one reply per request, in order; many streams at once; a
    reply to each request before the next one is sent (lockstep)."""
    n = 500
    reqs = [message(b"bs-%d" % i, seq=str(i)) for i in range(n)]
    replies = list(rpc(channel, "biStream", streaming=True)(iter(reqs), timeout=TIMEOUT))
    expect(len(replies) == n, "biStream: %d replies to %d requests" % (len(replies), n))
    for i, r in enumerate(replies):
        expect(r.payload == b"BS-%d" % i and r.headers["seq"] == str(i) and
               r.headers["udf"] == udf, "biStream reply %d: %r" % (i, r))
    print("ok biStream: %d requests -> %d replies in order" % (n, n))

    def lockstep(k):
        import queue
        q = queue.Queue()
        it = rpc(channel, "biStream", streaming=True)(iter(q.get, None), timeout=TIMEOUT)
        for i in range(20):
            q.put(message(b"s%d-%d" % (k, i)))
            r = next(it)
            if r.payload != b"S%d-%d" % (k, i):
                return False
        q.put(None)
        return list(it) == []

    with futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lockstep, range(4)))
    expect(all(results), "lockstep biStreams: %r" % results)
    print("ok biStream: 4 concurrent lockstep streams of 20")


# Window: team red x3, blue x2, "grün" x1, 7 (a number) x1, plus records
# with no key: not JSON, a JSON array, team missing, team null, team an
# object, text after the object.
RECORDS = [
    {"team": "red", "score": 1}, {"team": "blue", "score": 2},
    {"score": 3, "team": "red", "nested": {"team": "blue"}},
    {"team": "grün", "tags": ["a", "}"]}, {"team": 7}, {"team": "red", "s": "x\"y"},
    {"team": "blue"},
]
NO_KEY = [b"not json", b"[1,2]", b'{"score":1}', b'{"team":null}', b'{"team":{"a":1}}',
          b'{"team":"red"} trailing']
WANT = [("7", 1), ("blue", 2), ("grün", 1), ("red", 3)]  # sorted by UTF-8 bytes


def window_request(records, partial="false", content_type="multipart/json"):
    coll = wp.GrpcPayloadCollection()
    coll.payload.extend(records)
    return message(coll.SerializeToString(), contentType=content_type,
                   windowStartTime="1000", windowEndTime="6000", partial=partial)


def decode_elements(reply):
    coll = wp.GrpcPayloadCollection.FromString(reply.payload)
    return [json.loads(e.decode("utf-8")) for e in coll.payload]


def expect_window_reply(r, udf, want, skipped, partial):
    got = decode_elements(r)
    want_el = [{"key": k, "count": n, "windowStartTime": 1000, "windowEndTime": 6000,
                "partial": partial} for k, n in want]
    expect(got == want_el, "elements %r, want %r" % (got, want_el))
    want_h = {"contentType": "multipart/json", "windowStartTime": "1000",
              "windowEndTime": "6000", "partial": "true" if partial else "false",
              "skipped": str(skipped), "udf": udf}
    expect(dict(r.headers) == want_h, "headers %r, want %r" % (dict(r.headers), want_h))


def check_errors(call):
    for req, what in ((window_request([b"{}"], content_type="application/json"), "contentType"),
                      (message(b"\xff\xff\xff", contentType="multipart/json"), "collection")):
        try:
            call(req, timeout=TIMEOUT)
        except grpc.RpcError as e:
            expect(e.code() == grpc.StatusCode.INVALID_ARGUMENT, "%s: %s" % (what, e.code()))
            continue
        raise CheckFailed("bad %s accepted" % what)
    print("ok window: bad contentType and malformed collection -> INVALID_ARGUMENT")


def check_window(channel, udf):
    call = rpc(channel, "requestReply")
    records = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in RECORDS]
    records[0] = b'  {"team" : "red" , "score": 1}  '  # whitespace around tokens
    records = records[:3] + NO_KEY + records[3:]
    r = call(window_request(records), timeout=TIMEOUT)
    expect_window_reply(r, udf, WANT, len(NO_KEY), False)
    print("ok window: %d records -> %s, %d skipped" % (len(records), WANT, len(NO_KEY)))

    r = call(window_request(records[:1], partial="true"), timeout=TIMEOUT)
    expect_window_reply(r, udf, [("red", 1)], 0, True)
    r = call(window_request([]), timeout=TIMEOUT)
    expect_window_reply(r, udf, [], 0, False)
    print("ok window: partial window, empty window")
    check_errors(call)


def check_window_header(channel, udf):
    call = rpc(channel, "requestReply")
    req = window_request([b"a", b"b", b"{}"])
    req.headers["team"] = "green"
    r = call(req, timeout=TIMEOUT)
    expect_window_reply(r, udf, [("green", 3)], 0, False)
    r = call(window_request([b"a", b"b"]), timeout=TIMEOUT)
    expect_window_reply(r, udf, [], 2, False)
    print("ok window (header.team): 3 records -> green=3; no header -> 2 skipped")


def main(argv):
    checks = {"uppercase": check_uppercase, "window": check_window,
              "window-header": check_window_header}
    if len(argv) != 4 or argv[1] not in checks:
        sys.stderr.write("usage: udf_samples_client.py {%s} HOST:PORT UDF_NAME\n"
                         % "|".join(checks))
        return 2
    with grpc.insecure_channel(argv[2]) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
            checks[argv[1]](channel, argv[3])
        except (CheckFailed, grpc.RpcError, grpc.FutureTimeoutError) as e:
            print("FAIL %s %s (%s): %s" % (argv[1], argv[2], argv[3], e))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
