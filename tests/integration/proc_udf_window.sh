#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Window UDFs and malformed UDF replies end to end in the processor
# (docs/internals/processor.md, "UDF operators"): the Weir store, the Python
# window-count sample (examples/udf/python/window_count.py --key
# payload.team, unary) and tests/integration/udf_slow_server.py as a
# misbehaving UDF (called in biStream mode), one spec, one input topic:
#   w-count  keyed tumbling 5 s window -> window-count UDF: the window's
#            records go out as a GrpcPayloadCollection (contentType
#            multipart/json, windowStartTime, windowEndTime, partial) and
#            each element of the reply is an output record: exact per
#            (window, team) counts, computed here from the input;
#   rec-bad  record UDF; records whose name is "badpb" get a reply that is
#            not a GrpcMessage: dead-lettered with weir.grpc.status=13 and
#            weir.error "... malformed GrpcMessage reply", the others come
#            out uppercased (the stream carries on);
#   w-bad    keyed window -> the misbehaving UDF: windows of team "bad" get a
#            reply that says contentType multipart/json but is no
#            GrpcPayloadCollection: one dead letter per window with
#            weir.grpc.status=13 and "malformed GrpcPayloadCollection
#            reply"; the other windows' elements come out uppercased.
# Nothing is lost: every record/window is in an output or in the DLQ.
# Phase 2: the biStream UDF is SIGKILLed while 2000 more records flow and
# restarted ~1 s later on the same port: every one of them is in the
# record UDF's output or in the DLQ (retries, then weir.grpc.status).
# Ports 19920-19929: store 19920, window UDF 19921, misbehaving UDF 19922,
# processor HTTP 19923.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly STORE="$ROOT/tests/harness/store.sh"
readonly KAFKA="$ROOT/tests/harness/kafka.sh" # smoke_lib stops a broker it never started
readonly UDFH="$ROOT/tests/harness/udf-python.sh"
readonly KCAT_HARNESS="$ROOT/tests/harness/kcat.sh"
readonly BUILD_DIR="${WEIR_BUILD_DIR:-$ROOT/build}"
readonly BIN="${WEIR_STORE_BIN:-$BUILD_DIR/dataplane/weir-dataplane}"
readonly KCLIENT_BIN="${WEIR_KCLIENT:-$BUILD_DIR/tests/kclient}"
readonly PY="${WEIR_PYTHON:-/usr/bin/python3}"
readonly WINDOW_UDF="$ROOT/examples/udf/python/window_count.py"
readonly BAD_UDF="$ROOT/tests/integration/udf_slow_server.py"
readonly STORE_PORT=19920 WIN_PORT=19921 BAD_PORT=19922 HTTP_PORT=19923
readonly TOOL_TIMEOUT=60
readonly N=1200 # 100 ms apart: 24 windows of 5 s
readonly N2=2000 # phase 2

if [[ ! -x "$BIN" ]]; then
  echo "proc_udf_window: SKIP: no weir-dataplane at $BIN (build it, or set WEIR_BUILD_DIR)"
  exit 77
fi
if [[ ! -x "$KCLIENT_BIN" ]]; then
  echo "proc_udf_window: SKIP: no kclient at $KCLIENT_BIN (build the test tools)"
  exit 77
fi

SMOKE_NAME=proc_udf_window
# shellcheck source=tests/harness/kafka/smoke_lib.sh
source "$ROOT/tests/harness/kafka/smoke_lib.sh" # WORK, check/pass/fail, traps
KCAT_BIN=kcat
PROC_PID="" WIN_PID="" BAD_PID=""
BOOT="127.0.0.1:$STORE_PORT"

win_cleanup() {
  local rc=$?
  local p
  for p in "$PROC_PID" "$WIN_PID" "$BAD_PID"; do
    [[ -z "$p" ]] || { kill -KILL "$p" && wait "$p"; } 2>/dev/null || :
  done
  "$STORE" kill "$WORK/weir" >/dev/null 2>&1 || :
  (exit "$rc") || smoke_cleanup
  smoke_cleanup
}
trap win_cleanup EXIT

kcat() { timeout "$TOOL_TIMEOUT" "$KCAT_BIN" -b "$BOOT" "$@"; }

write_spec() {
  cat >"$WORK/spec.json" <<EOF
{
  "version": 1,
  "name": "proc-udf-window",
  "inputs": [{
    "name": "events", "topic": "uw-in",
    "cluster": {"protocol": "kafka", "bootstrap": "$BOOT"},
    "partitions": {"count": 1}, "format": "json", "startOffset": "earliest",
    "time": {"source": "payload", "field": "payload.ts", "unit": "ms"},
    "watermark": {"maxOutOfOrdernessMs": 1000, "idleTimeoutMs": 0}
  }],
  "udfs": [
    {"name": "counter", "endpoint": "127.0.0.1:$WIN_PORT", "timeoutMs": 5000,
     "maxInFlight": 16, "readyTimeoutMs": 30000},
    {"name": "bad", "endpoint": "127.0.0.1:$BAD_PORT", "mode": "bistream", "timeoutMs": 5000,
     "maxInFlight": 64, "readyTimeoutMs": 30000,
     "retry": {"max": 3, "initialBackoffMs": 20, "maxBackoffMs": 200}}
  ],
  "operators": [
    {"id": "w-count", "type": "window", "from": ["events"], "key": "payload.team",
     "window": {"kind": "tumbling", "sizeMs": 5000}, "udf": "counter"},
    {"id": "rec-bad", "type": "udf", "from": ["events"], "udf": "bad"},
    {"id": "w-bad", "type": "window", "from": ["events"], "key": "payload.team",
     "window": {"kind": "tumbling", "sizeMs": 5000}, "udf": "bad"}
  ],
  "outputs": [
    {"name": "count", "from": "w-count", "topic": "uw-count",
     "cluster": {"protocol": "kafka", "bootstrap": "$BOOT"}},
    {"name": "rec", "from": "rec-bad", "topic": "uw-rec",
     "cluster": {"protocol": "kafka", "bootstrap": "$BOOT"}},
    {"name": "wbad", "from": "w-bad", "topic": "uw-wbad",
     "cluster": {"protocol": "kafka", "bootstrap": "$BOOT"}}
  ],
  "deadLetter": {"topic": "uw-dlq", "cluster": {"protocol": "kafka", "bootstrap": "$BOOT"}},
  "checkpoint": {"dir": "$WORK/ckpt", "intervalMs": 1000}
}
EOF
}

# gen: id|{"id":I,"ts":T,"team":TEAM,"name":NAME} for I in 0..N-1 (%.0f:
# mawk's %d stops at 2^31), then one
# record 60 s later (team "flush") that moves the watermark past every
# window. Teams: red 3 of 7, blue 2 of 7, bad 1 of 7, and "grün" 1 of 7, so
# the counts differ per team and per window; every 50th record is "badpb".
gen() {
  awk -v n="$N" 'BEGIN { split("red red blue red blue bad grün", t, " ")
    for (i = 0; i < n; i++) {
      team = t[(i % 7) + 1]; name = (i % 50 == 7) ? "badpb" : "rec-" i
      if (team == "bad") name = "badcollection-" i
      printf "%d|{\"id\":%d,\"ts\":%.0f,\"team\":\"%s\",\"name\":\"%s\"}\n", i, i, 1700000000000 + i * 100, team, name
    }
    printf "%d|{\"id\":%d,\"ts\":%.0f,\"team\":\"flush\",\"name\":\"flush\"}\n", n, n, 1700000000000 + n * 100 + 60000 }'
}

start_udf() { # NAME PORT CMD... : background, waits for "udf ready"
  local name=$1 port=$2 end
  shift 2
  "$@" >"$WORK/$name.log" 2>&1 &
  local pid=$!
  eval "${name}_PID=$pid"
  end=$((SECONDS + 30))
  until grep -q '"udf ready"' "$WORK/$name.log" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$WORK/$name.log"; return 1; }
    ((SECONDS < end)) || { echo "$name not ready"; return 1; }
    sleep 0.1
  done
}

proc_ready() {
  local deadline=$((SECONDS + 90))
  while ((SECONDS < deadline)); do
    kill -0 "$PROC_PID" 2>/dev/null || { tail -n 20 "$WORK/proc.log"; return 1; }
    curl -sf --max-time 2 "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

produce() { kcat -P -t uw-in -K '|' <"$WORK/in.txt"; }

# produce2 FROM COUNT: phase 2 records, after the flush record in time.
produce2() {
  awk -v a="$1" -v n="$2" 'BEGIN { for (i = a; i < a + n; i++)
    printf "%d|{\"id\":%d,\"ts\":%.0f,\"team\":\"p2\",\"name\":\"p2-%d\"}\n", i, i, 1700000200000 + i * 10, i }' >"$WORK/batch.txt"
  kcat -P -t uw-in -K '|' <"$WORK/batch.txt"
}

# phase2_ok: every phase-2 id is a key in uw-rec or in the DLQ (60 s), and
# those dead letters carry weir.grpc.status.
phase2_ok() {
  local deadline=$((SECONDS + 60)) missing=1
  while ((SECONDS < deadline)); do
    kcat -C -t uw-rec -o beginning -e -q -f '%k\n' >"$WORK/rec2.txt" || :
    kcat -C -t uw-dlq -o beginning -e -q -f '%k\t%h\n' >"$WORK/dlq2.txt" || :
    missing="$(comm -23 <(seq $((N + 1)) $((N + N2)) | sort) \
      <(cut -f1 "$WORK/rec2.txt" "$WORK/dlq2.txt" | sort -u) | wc -l)"
    ((missing == 0)) && break
    sleep 0.5
  done
  echo "phase 2: missing $missing; dead letters of phase 2: $(awk -F'\t' -v a=$((N + 1)) '$1 + 0 >= a' "$WORK/dlq2.txt" | wc -l)"
  ((missing == 0)) || return 1
  awk -F'\t' -v a=$((N + 1)) -v b=$((N + N2)) '$1 ~ /^[0-9]+$/ && $1 + 0 >= a && $1 + 0 <= b &&
    $2 !~ /weir\.grpc\.status=[0-9]+/ { bad++ } END { exit bad > 0 }' "$WORK/dlq2.txt"
}

read_all() {
  kcat -C -t uw-count -o beginning -e -q -f '%s\n' >"$WORK/count.txt"
  kcat -C -t uw-rec -o beginning -e -q -f '%k\t%s\n' >"$WORK/rec.txt"
  kcat -C -t uw-wbad -o beginning -e -q -f '%s\n' >"$WORK/wbad.txt"
  kcat -C -t uw-dlq -o beginning -e -q -f '%h\n' >"$WORK/dlq.txt"
}

# The expectations, from the input alone.
expect_py() {
  "$PY" - "$WORK" "$1" <<'EOF'
import collections, json, sys
work, what = sys.argv[1], sys.argv[2]
recs = []
for line in open(work + "/in.txt", encoding="utf-8"):
    k, v = line.rstrip("\n").split("|", 1)
    recs.append(json.loads(v))
size = 5000
flush = recs[-1]
wm_closed = flush["ts"] - 1000  # windows ending at or before this fired
win = collections.Counter()
for r in recs:
    start = r["ts"] // size * size
    if start + size <= wm_closed:
        win[(start, r["team"])] += 1
def fail(msg):
    print(msg); sys.exit(1)
if len(win) < 80 or sum(win.values()) < len(recs) - 100:
    fail("input: only %d closed (window, team) groups" % len(win))
if what == "count":
    got = collections.Counter()
    for line in open(work + "/count.txt", encoding="utf-8"):
        e = json.loads(line)
        if e["partial"] is not False or e["windowEndTime"] - e["windowStartTime"] != size:
            fail("bad element %r" % e)
        got[(e["windowStartTime"], e["key"])] += e["count"]
    if got != win:
        diff = set(got.items()) ^ set(win.items())
        fail("window counts differ from the input's: %d of %d/%d; e.g. %r" % (len(diff), len(got), len(win), sorted(diff)[:4]))
    print("%d (window, team) counts, %d records: all exact" % (len(win), sum(win.values())))
elif what == "rec":
    want = {str(r["id"]): json.dumps(r, separators=(",", ":"), ensure_ascii=False).upper()
            for r in recs if r["name"] != "badpb"}
    got = {}
    for line in open(work + "/rec.txt", encoding="utf-8"):
        k, v = line.rstrip("\n").split("\t", 1)
        got[k] = v
    bad = [k for k in want if got.get(k) is None or json.loads(got[k]) != json.loads(want[k])]
    extra = [k for k in got if k not in want]
    if bad or extra:
        fail("record UDF outputs: %d wrong/missing (e.g. %r), %d unexpected" % (len(bad), bad[:3], len(extra)))
    dl = [l for l in open(work + "/dlq.txt", encoding="utf-8") if "malformed GrpcMessage reply" in l]
    nbad = sum(1 for r in recs if r["name"] == "badpb")
    if len(dl) != nbad or not all("weir.grpc.status=13" in l for l in dl):
        fail("%d dead letters for malformed GrpcMessage, want %d with weir.grpc.status=13" % (len(dl), nbad))
    print("%d records uppercased; %d malformed replies dead-lettered with status 13" % (len(want), nbad))
elif what == "wbad":
    good = sum(n for (s, t), n in win.items() if t != "bad")
    lines = [l for l in open(work + "/wbad.txt", encoding="utf-8") if l.strip()]
    ups = collections.Counter(json.loads(l)["TEAM"] for l in lines)
    want = collections.Counter()
    for (s, t), n in win.items():
        if t != "bad":
            want[t.encode().upper().decode()] += n  # bytes.upper(): ASCII only
    if ups != want:
        fail("good windows' elements: %r, want %r" % (dict(ups), dict(want)))
    badwins = sum(1 for (s, t) in win if t == "bad")
    dl = [l for l in open(work + "/dlq.txt", encoding="utf-8") if "malformed GrpcPayloadCollection reply" in l]
    if len(dl) != badwins or not all("weir.grpc.status=13" in l for l in dl):
        fail("%d dead letters for the bad collection, want %d (one per window)" % (len(dl), badwins))
    print("%d good window elements; %d bad-collection windows dead-lettered with status 13" % (good, badwins))
EOF
}

wait_done() { # until the outputs stop growing and reach the expected sizes
  local deadline=$((SECONDS + 90))
  while ((SECONDS < deadline)); do
    read_all || :
    expect_py count >/dev/null && expect_py rec >/dev/null && expect_py wbad >/dev/null && return 0
    sleep 1
  done
  return 1
}

main() {
  local t0=$SECONDS
  echo "proc_udf_window: work dir $WORK"
  check "kcat installed" "$KCAT_HARNESS" install
  KCAT_BIN="$("$KCAT_HARNESS" path)"
  check "python grpcio installed" "$UDFH" install
  ((failed == 0)) || return 1
  check "store starts" env WEIR_STORE_TARGET=weir "$STORE" start "$WORK/weir" "$STORE_PORT" 2
  check "create topics" bash -c "
    for t in uw-in uw-count uw-rec uw-wbad uw-dlq; do
      timeout $TOOL_TIMEOUT '$KCLIENT_BIN' create -b '$BOOT' -q -t \$t -p 1 -c retention.ms=-1 || exit 1
    done"
  # not under check (a background job): the pids must reach this shell
  if start_udf WIN "$WIN_PORT" "$PY" -u "$WINDOW_UDF" --port "$WIN_PORT" --key payload.team \
    >"$WORK/last.log" 2>&1; then pass "window-count UDF starts"; else fail "window-count UDF starts" "$WORK/last.log"; fi
  if start_udf BAD "$BAD_PORT" "$PY" -u "$BAD_UDF" --port "$BAD_PORT" >"$WORK/last.log" 2>&1; then
    pass "misbehaving UDF starts"
  else
    fail "misbehaving UDF starts" "$WORK/last.log"
  fi
  ((failed == 0)) || return 1

  gen >"$WORK/in.txt"
  write_spec
  "$BIN" --role processor --spec "$WORK/spec.json" --http-port "$HTTP_PORT" </dev/null >"$WORK/proc.log" 2>&1 &
  PROC_PID=$!
  check "processor starts (both UDFs connected)" proc_ready
  ((failed == 0)) || return 1
  check "start-up logged each UDF's mode" bash -c "
    grep -q '\"UDF connected\".*\"udf\":\"counter\".*\"mode\":\"unary\"' '$WORK/proc.log' &&
    grep -q '\"UDF connected\".*\"udf\":\"bad\".*\"mode\":\"bistream\"' '$WORK/proc.log'"
  check "$((N + 1)) records produced" produce
  wait_done || :
  read_all || :
  check "window UDF: one output record per reply element, exact per-key counts" expect_py count
  check "bad protobuf reply (biStream): dead letter, status 13, the rest uppercased" expect_py rec
  check "reply says multipart but is no collection: one dead letter per window" expect_py wbad
  echo "   dead letters, e.g.:"
  grep -m1 "GrpcMessage reply" "$WORK/dlq.txt" | tr , "\n" | grep "^weir\.\(error\|grpc\)" | sed "s/^/     /" || :
  grep -m1 "GrpcPayloadCollection reply" "$WORK/dlq.txt" | tr , "\n" | grep "^weir\.\(error\|grpc\)" | sed "s/^/     /" || :

  # phase 2: kill -9 the biStream UDF mid-stream, restart it ~1 s later
  (
    for b in $(seq 0 9); do
      produce2 $((N + 1 + b * N2 / 10)) $((N2 / 10)) || exit 1
      sleep 0.2
    done
  ) >"$WORK/producer.log" 2>&1 &
  local prod=$!
  sleep 0.5
  check "biStream UDF killed (SIGKILL) mid-stream" kill -KILL "$BAD_PID"
  wait "$BAD_PID" 2>/dev/null || :
  BAD_PID=""
  sleep 1
  if start_udf BAD "$BAD_PORT" "$PY" -u "$BAD_UDF" --port "$BAD_PORT" >"$WORK/last.log" 2>&1; then
    pass "biStream UDF restarted on the same port"
  else
    fail "biStream UDF restarted on the same port" "$WORK/last.log"
  fi
  if wait "$prod"; then pass "phase 2: $N2 records produced"; else fail "phase 2: $N2 records produced" "$WORK/producer.log"; fi
  check "phase 2: every record in the record UDF's output or the DLQ" phase2_ok
  curl -sf --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics" >"$WORK/metrics.txt" || :
  grep '^weir_processor_udf_\(errors\|dead_letters\|retries\)_total{udf="bad"' "$WORK/metrics.txt" || :
  check "metrics: UNAVAILABLE retried for the biStream UDF" bash -c "
    grep -q '^weir_processor_udf_errors_total{udf=\"bad\",status=\"UNAVAILABLE\"} [1-9]' '$WORK/metrics.txt' &&
    grep -q '^weir_processor_udf_retries_total{udf=\"bad\"} [1-9]' '$WORK/metrics.txt'"
  check "metrics: INTERNAL errors counted for the bad UDF" \
    grep -q '^weir_processor_udf_errors_total{udf="bad",status="INTERNAL"} [1-9]' "$WORK/metrics.txt"
  local rc=0
  kill -TERM "$PROC_PID"
  wait "$PROC_PID" || rc=$?
  PROC_PID=""
  check "SIGTERM: exit 0" test "$rc" = 0
  check "no sanitizer reports in the processor log" bash -c "
    ! grep -E 'runtime error|AddressSanitizer|LeakSanitizer' '$WORK/proc.log'"
  check "store stops" "$STORE" stop "$WORK/weir"
  echo "proc_udf_window: wall time $((SECONDS - t0))s"
  ((failed == 0))
}

main "$@"
