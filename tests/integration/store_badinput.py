#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Bad input against a running Weir store, over raw sockets.

Each case sends one kind of bad request and checks the documented outcome:
a Kafka error code in the response, or the connection closed. Meanwhile a
healthy connection keeps producing and every one of its records must be
acknowledged and readable afterwards: bad input never affects other
connections and never corrupts the log. Usage: store_badinput.py HOST:PORT
"""
import os
import random
import socket
import struct
import sys
import time

HOST, PORT = sys.argv[1].rsplit(":", 1)
PORT = int(PORT)
FAILED = []


def crc32c(data):
    poly = 0x82F63B78
    table = crc32c.table if hasattr(crc32c, "table") else None
    if table is None:
        table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ poly if c & 1 else c >> 1
            table.append(c)
        crc32c.table = table
    c = 0xFFFFFFFF
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(v):
    v = (v << 1) ^ (v >> 63)
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def batch(values, pid=-1, epoch=-1, seq=-1, bad_crc=False):
    recs = b""
    for i, v in enumerate(values):
        body = b"\x00" + varint(0) + varint(i) + varint(-1) + varint(len(v)) + v + varint(0)
        recs += varint(len(body)) + body
    now = int(time.time() * 1000)
    after_crc = struct.pack(">hiqqqhii", 0, len(values) - 1, now, now, pid, epoch, seq,
                            len(values)) + recs
    crc = crc32c(after_crc) ^ (1 if bad_crc else 0)
    after_len = struct.pack(">ibI", 0, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_len)) + after_len


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def frame(api, ver, corr, body, client=b"badinput"):
    hdr = struct.pack(">hhi", api, ver, corr) + struct.pack(">h", len(client)) + client
    payload = hdr + body
    return struct.pack(">i", len(payload)) + payload


def produce_body(topic, records, acks=-1):
    return (struct.pack(">h", -1) + struct.pack(">hi", acks, 10000) + struct.pack(">i", 1) +
            kstr(topic) + struct.pack(">i", 1) + struct.pack(">i", 0) +
            struct.pack(">i", len(records)) + records)


def connect():
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.settimeout(10)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def call(s, data):
    s.sendall(data)
    size = struct.unpack(">i", recv_exact(s, 4))[0]
    return recv_exact(s, size)


def closed_by_server(s):
    """True when the server closes the connection without answering."""
    try:
        data = s.recv(1)
        return data == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (": " + detail if detail else ""))
    if not ok:
        FAILED.append(name)


def produce_error(resp):
    # Produce v3 response: corr, topics[1]: name, parts[1]: partition, error...
    off = 4 + 4
    nlen = struct.unpack(">h", resp[off:off + 2])[0]
    off += 2 + nlen + 4 + 4
    err, base = struct.unpack(">hq", resp[off:off + 10])
    return err, base


def init_pid(s):
    resp = call(s, frame(22, 0, 7, struct.pack(">h", -1) + struct.pack(">i", 60000)))
    _, _, err, pid, epoch = struct.unpack(">iihqh", resp[:20])
    return err, pid, epoch


def main():
    topic = "badinput-%d" % os.getpid()
    healthy = connect()
    # Metadata v1 auto-creates the topic.
    call(healthy, frame(3, 1, 1, struct.pack(">i", 1) + kstr(topic)))
    acked = []

    def healthy_produce(i):
        resp = call(healthy, frame(0, 3, 100 + i, produce_body(topic, batch([b"good-%d" % i]))))
        err, base = produce_error(resp)
        if err == 0:
            acked.append((base, b"good-%d" % i))
        return err

    check("healthy produce before", healthy_produce(0) == 0)

    # 1-2: frame sizes out of range close the connection.
    for name, size in (("oversized frame", 0x7FFFFFF0), ("negative frame size", -5),
                       ("zero frame size", 0)):
        s = connect()
        s.sendall(struct.pack(">i", size) + b"\x00" * 16)
        check(name + " closes the connection", closed_by_server(s))
        s.close()
    healthy_produce(1)

    # 3: truncated request then hang-up: nothing to answer, no crash.
    s = connect()
    s.sendall(struct.pack(">i", 100) + b"\x00\x03\x00\x01")
    s.close()
    # 4: unknown API key.
    s = connect()
    s.sendall(frame(999, 0, 5, b""))
    check("unknown API key closes the connection", closed_by_server(s))
    s.close()
    # 5: unsupported version of a known API.
    s = connect()
    s.sendall(frame(0, 99, 5, b""))
    check("unsupported Produce version closes the connection", closed_by_server(s))
    s.close()
    # 6: ApiVersions with a version from the future: v0 answer, error 35.
    s = connect()
    resp = call(s, frame(18, 99, 6, b""))
    corr, err = struct.unpack(">ih", resp[:6])
    check("ApiVersions v99 answers UNSUPPORTED_VERSION", corr == 6 and err == 35,
          "corr=%d err=%d" % (corr, err))
    s.close()
    # 7: malformed body (Metadata topic count larger than the frame).
    s = connect()
    s.sendall(frame(3, 1, 8, struct.pack(">i", 1000000)))
    check("malformed Metadata closes the connection", closed_by_server(s))
    s.close()
    healthy_produce(2)

    # 8: bad CRC gets CORRUPT_MESSAGE (2) and nothing is appended.
    s = connect()
    err, _ = produce_error(call(s, frame(0, 3, 9, produce_body(topic, batch([b"bad"], bad_crc=True)))))
    check("bad CRC answers CORRUPT_MESSAGE", err == 2, "err=%d" % err)
    # 9: two batches in one partition entry: INVALID_RECORD (87).
    two = batch([b"a"]) + batch([b"b"])
    err, _ = produce_error(call(s, frame(0, 3, 10, produce_body(topic, two))))
    check("two batches in one partition answers INVALID_RECORD", err == 87, "err=%d" % err)
    # 10: bad acks value.
    err, _ = produce_error(call(s, frame(0, 3, 11, produce_body(topic, batch([b"x"]), acks=5))))
    check("acks=5 answers INVALID_REQUIRED_ACKS", err == 21, "err=%d" % err)
    # 11: idempotent sequences: 0 ok, 0 again is a duplicate (same offset), 5 is out of order.
    perr, pid, epoch = init_pid(s)
    check("InitProducerId", perr == 0 and pid >= 0 and epoch == 0, "err=%d pid=%d" % (perr, pid))
    e0, b0 = produce_error(call(s, frame(0, 3, 12, produce_body(topic, batch([b"seq0"], pid, epoch, 0)))))
    e1, b1 = produce_error(call(s, frame(0, 3, 13, produce_body(topic, batch([b"seq0"], pid, epoch, 0)))))
    e2, _ = produce_error(call(s, frame(0, 3, 14, produce_body(topic, batch([b"seq5"], pid, epoch, 5)))))
    check("sequence 0 accepted", e0 == 0, "err=%d" % e0)
    check("duplicate sequence answers the original offset", e1 == 0 and b1 == b0,
          "err=%d base=%d first=%d" % (e1, b1, b0))
    check("sequence gap answers OUT_OF_ORDER_SEQUENCE_NUMBER", e2 == 45, "err=%d" % e2)
    # A damaged retry is judged by its CRC before its sequence, as in Kafka.
    e4, _ = produce_error(call(s, frame(0, 3, 16, produce_body(topic, batch([b"seq0"], pid, epoch, 0, bad_crc=True)))))
    check("damaged duplicate answers CORRUPT_MESSAGE", e4 == 2, "err=%d" % e4)
    e3, _ = produce_error(call(s, frame(0, 3, 15, produce_body(topic, batch([b"old"], pid, epoch - 1 if epoch > 0 else -5, 1)))))
    check("stale or invalid epoch is rejected", e3 in (47, 45), "err=%d" % e3)
    if e0 == 0:
        acked.append((b0, b"seq0"))
    s.close()

    # 12: random garbage, many connections; healthy connection keeps going.
    rnd = random.Random(int(os.environ.get("WEIR_BADINPUT_SEED", "1")))
    for i in range(300):
        s = connect()
        kind = rnd.randrange(4)
        if kind == 0:
            payload = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200)))
            s.sendall(struct.pack(">i", len(payload)) + payload)
        elif kind == 1:
            body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 120)))
            s.sendall(frame(rnd.choice([0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20, 22, 32]),
                            rnd.randrange(0, 13), i, body))
        elif kind == 2:
            good = frame(0, 3, i, produce_body(topic, batch([b"mut"])))
            b = bytearray(good)
            for _ in range(rnd.randrange(1, 6)):
                b[rnd.randrange(4, len(b))] = rnd.randrange(256)
            s.sendall(bytes(b))
        else:
            s.sendall(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 64))))
        s.settimeout(0.2)
        try:
            s.recv(65536)
        except (socket.timeout, ConnectionError):
            pass
        s.close()
        if i % 50 == 0:
            healthy_produce(10 + i)
    check("healthy produce after fuzzing", healthy_produce(999) == 0)

    # The healthy records are all there, at their acknowledged offsets.
    fetch = (struct.pack(">iiiib", -1, 100, 1, 1 << 20, 0) + struct.pack(">i", 1) + kstr(topic) +
             struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 1 << 20))
    resp = call(healthy, frame(1, 4, 77, fetch))
    found = {}
    data = resp
    # Walk batches in the records blob: locate it after the fixed fields.
    off = 4 + 4 + 4
    nlen = struct.unpack(">h", data[off:off + 2])[0]
    off += 2 + nlen + 4
    off += 4 + 2 + 8 + 8 + 4  # v4: partition, error, hw, lso, aborted count
    rlen = struct.unpack(">i", data[off:off + 4])[0]
    off += 4
    end = off + rlen
    while off + 61 <= end:
        base, blen = struct.unpack(">qi", data[off:off + 12])
        crc = struct.unpack(">I", data[off + 17:off + 21])[0]
        if crc != crc32c(data[off + 21:off + 12 + blen]):
            check("stored batch CRC", False, "offset %d" % base)
        body = data[off + 61:off + 12 + blen]
        # single-record batches: attributes, ts delta, off delta, key -1, value
        p = 0
        while body[p] & 0x80:
            p += 1
        p += 1 + 1
        for _ in range(2):
            while body[p] & 0x80:
                p += 1
            p += 1
        p += 1  # key length varint(-1) is one byte
        vlen = body[p] >> 1
        p += 1
        found[base] = body[p:p + vlen]
        off += 12 + blen
    missing = [a for a in acked if found.get(a[0]) != a[1]]
    check("every acknowledged record is stored at its offset", not missing and len(acked) > 5,
          "acked=%d missing=%s" % (len(acked), missing[:5]))
    healthy.close()
    if FAILED:
        print("%d check(s) failed: %s" % (len(FAILED), ", ".join(FAILED)))
        return 1
    print("all bad-input checks passed")
    return 0


sys.exit(main())
