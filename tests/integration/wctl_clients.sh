#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# weirctl's client commands against a real Weir store (tests/harness/store.sh)
# and, when the harness has it, the real Apache Kafka broker:
#   - topics create / list / delete;
#   - produce (key separator, headers, JSON and plain lines) and consume
#     (from the beginning, -n, JSON lines with key, headers, partition,
#     offset; from the end; a timeout before -n records is exit 1);
#   - generate: deterministic per --seed, Nexmark identical to the
#     dataplane's own nexmark_gen (the same dp_nexmark code), progress lines
#     every second on a paced run.
# Ports 20020-20029: store 20020, Kafka 20025 (controller 20026).
set -euo pipefail
NAME=wctl_clients
source "$(dirname "${BASH_SOURCE[0]}")/wctl_common.bash"
readonly STORE="$ROOT/tests/harness/store.sh" KAFKA="$ROOT/tests/harness/kafka.sh"
readonly STORE_PORT=20020 KAFKA_PORT=20025
command -v kcat >/dev/null || {
  echo "$NAME: SKIP: kcat not installed (store.sh needs it; ci/install-deps.sh)"
  exit 77
}

cleanup_targets() {
  WEIR_STORE_BIN="$DATAPLANE" "$STORE" kill "$WORK/weir" >/dev/null 2>&1 || :
  WEIR_STORE_TARGET=kafka "$STORE" kill "$WORK/kafka" >/dev/null 2>&1 || :
  wctl_cleanup
}
trap cleanup_targets EXIT

# round_trip LABEL BOOTSTRAP
round_trip() {
  local label="$1" b="$2" t="wctl-rt" out="$WORK/$1"
  mkdir -p "$out"
  "$WEIRCTL" topics create "$t" --partitions 3 --bootstrap "$b" 2>/dev/null ||
    fail "$label: topics create"
  "$WEIRCTL" topics list --bootstrap "$b" >"$out/list.txt"
  grep -qx "$t	3" "$out/list.txt" || fail "$label: list: $(cat "$out/list.txt")"
  "$WEIRCTL" topics --json --bootstrap "$b" | grep -qx "{\"topic\":\"$t\",\"partitions\":3}" ||
    fail "$label: list --json"
  pass "$label: topics create/list ($t, 3 partitions)"

  {
    for i in $(seq 1 30); do echo "k$((i % 5))|{\"n\":$i,\"s\":\"x$i\"}"; done
    echo "plain|not json"
    echo "no separator here"
  } >"$out/in.txt"
  "$WEIRCTL" produce "$t" --bootstrap "$b" --key-separator '|' --header src=wctl \
    --header run=1 --file "$out/in.txt" 2>"$out/produce.err" || fail "$label: produce: $(cat "$out/produce.err")"
  grep -q '"produced":32,"failed":0' "$out/produce.err" || fail "$label: produce summary: $(cat "$out/produce.err")"
  "$WEIRCTL" consume "$t" --bootstrap "$b" -n 32 --timeout 20 >"$out/out.jsonl" ||
    fail "$label: consume got $(wc -l <"$out/out.jsonl") of 32"
  python3 - "$out/out.jsonl" <<'PY' || fail "$label: consumed records"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 32, len(recs)
by_val = {}
for r in recs:
    assert r["topic"] == "wctl-rt" and r["headers"] == {"src": "wctl", "run": "1"}, r
    assert 0 <= r["partition"] < 3 and r["timestamp"] > 0, r
    by_val[json.dumps(r["value"], sort_keys=True)] = r
for i in range(1, 31):
    r = by_val[json.dumps({"n": i, "s": "x%d" % i}, sort_keys=True)]
    assert r["key"] == "k%d" % (i % 5), r
assert by_val['"not json"']["key"] == "plain"
assert by_val['"no separator here"']["key"] is None
# One key, one partition; offsets per partition are 0..n-1.
part_of = {}
for r in recs:
    if r["key"] is not None:
        assert part_of.setdefault(r["key"], r["partition"]) == r["partition"], r
offs = {}
for r in recs:
    offs.setdefault(r["partition"], []).append(r["offset"])
for p, o in offs.items():
    assert sorted(o) == list(range(len(o))), (p, o)
PY
  pass "$label: produce/consume: keys, headers, JSON and text values, partitions, offsets"

  "$WEIRCTL" consume "$t" --bootstrap "$b" --from end -n 2 --timeout 20 --value-only \
    >"$out/tail.txt" &
  local cpid=$!
  sleep 2
  printf 'late-1\nlate-2\n' | "$WEIRCTL" produce "$t" --bootstrap "$b" 2>/dev/null
  wait "$cpid" || fail "$label: consume --from end"
  [[ "$(cat "$out/tail.txt")" == $'late-1\nlate-2' ]] || [[ "$(sort "$out/tail.txt")" == $'late-1\nlate-2' ]] ||
    fail "$label: --from end got: $(cat "$out/tail.txt")"
  pass "$label: consume --from end sees only new records"

  local rc=0
  "$WEIRCTL" consume "$t" --bootstrap "$b" -n 100 --timeout 2 >/dev/null 2>"$out/short.err" || rc=$?
  ((rc == 1)) && grep -q '34 of 100 records before the timeout' "$out/short.err" ||
    fail "$label: short consume: exit $rc $(cat "$out/short.err")"
  pass "$label: consume -n 100 of 34 records: exit 1 at the timeout"

  "$WEIRCTL" topics delete "$t" --bootstrap "$b" 2>/dev/null || fail "$label: delete"
  local deadline=$((SECONDS + 10))
  while "$WEIRCTL" topics --bootstrap "$b" | grep -q "^$t	" && ((SECONDS < deadline)); do sleep 0.2; done
  ! "$WEIRCTL" topics --bootstrap "$b" | grep -q "^$t	" || fail "$label: topic still listed after delete"
  pass "$label: topics delete"
}

WEIR_STORE_BIN="$DATAPLANE" "$STORE" start "$WORK/weir" "$STORE_PORT" 1 >/dev/null 2>&1 ||
  fail "store did not start"
round_trip weir "127.0.0.1:$STORE_PORT"

# generate: determinism, Nexmark parity with nexmark_gen, progress.
"$WEIRCTL" generate cards --print --count 500 --seed 9 >"$WORK/c1" 2>/dev/null
"$WEIRCTL" generate cards --print --count 500 --seed 9 >"$WORK/c2" 2>/dev/null
"$WEIRCTL" generate cards --print --count 500 --seed 10 >"$WORK/c3" 2>/dev/null
cmp -s "$WORK/c1" "$WORK/c2" || fail "generate cards is not deterministic"
! cmp -s "$WORK/c1" "$WORK/c3" || fail "generate cards ignores --seed"
for k in users clicks iot scores; do
  "$WEIRCTL" generate "$k" --print --count 200 --seed 3 >"$WORK/$k.jsonl" 2>/dev/null
  python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 200, len(rows)
assert all(isinstance(r["ts"], int) for r in rows)
if sys.argv[2] == "iot": assert any(r["status"] == "ERROR" for r in rows)
if sys.argv[2] == "scores": assert all(r["team"].startswith("team-") and r["user"] for r in rows)
' "$WORK/$k.jsonl" "$k" || fail "generate $k output"
done
pass "generate: same seed same records, other seed other records; users, clicks, iot, scores well formed"
if [[ -x "$BUILD_DIR/tests/nexmark_gen" ]]; then
  "$WEIRCTL" generate nexmark --print --count 2000 --seed 5 --start-time 1436918400000 >"$WORK/nx1" 2>/dev/null
  "$BUILD_DIR/tests/nexmark_gen" --print --events 2000 --seed 5 >"$WORK/nx2" 2>/dev/null
  cmp -s "$WORK/nx1" "$WORK/nx2" || fail "weirctl generate nexmark differs from nexmark_gen"
  pass "generate nexmark: byte-identical to tests/tools/nexmark_gen (both use dp_nexmark)"
fi
"$WEIRCTL" generate iot --topic wctl-iot --count 5000 --rate 2000 --bootstrap "127.0.0.1:$STORE_PORT" \
  2>"$WORK/progress.err" || fail "paced generate: $(cat "$WORK/progress.err")"
p=$(grep -c '"msg":"progress","kind":"iot"' "$WORK/progress.err")
((p >= 2)) || fail "expected >= 2 progress lines in a 2.5 s run, got $p"
grep -q '"msg":"done","kind":"iot","topic":"wctl-iot","generated":5000,"failed":0' "$WORK/progress.err" ||
  fail "no done line"
"$WEIRCTL" consume wctl-iot --bootstrap "127.0.0.1:$STORE_PORT" -n 5000 --timeout 20 --value-only |
  cmp -s - <("$WEIRCTL" generate iot --print --count 5000 2>/dev/null) || fail "topic content differs from --print"
pass "generate --rate 2000: $p progress lines, 5000 records in the topic equal to --print"

if [[ -x "$KAFKA" ]] && WEIR_STORE_TARGET=kafka "$STORE" start "$WORK/kafka" "$KAFKA_PORT" >"$WORK/kafka.log" 2>&1; then
  round_trip kafka "127.0.0.1:$KAFKA_PORT"
else
  log "Apache Kafka not available from tests/harness/kafka.sh: only the Weir store was tested ($(tail -n 2 "$WORK/kafka.log" 2>/dev/null))"
fi
