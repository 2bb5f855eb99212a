#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Real-client interoperability of the store: kcat (librdkafka), kclient
# (librdkafka C, idempotent) and Kafka's own Java console/admin tools write
# and read the same store, and must all see the same (partition, offset, key,
# value) tuples, the same ListOffsets answers and the same committed offsets.
# WEIR_STORE_TARGET=kafka runs the same checks against real Apache Kafka.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly KAFKA="$ROOT/tests/harness/kafka.sh"
readonly STORE="$ROOT/tests/harness/store.sh"
readonly KCAT_HARNESS="$ROOT/tests/harness/kcat.sh"
readonly TARGET="${WEIR_STORE_TARGET:-weir}"
readonly BUILD_DIR="${WEIR_BUILD_DIR:-$ROOT/build}"
readonly STORE_BIN="${WEIR_STORE_BIN:-$BUILD_DIR/dataplane/weir-dataplane}"
readonly KCLIENT_BIN="${WEIR_KCLIENT:-$BUILD_DIR/tests/kclient}"
readonly PORT="${WEIR_STORE_INTEROP_PORT:-19310}"
readonly WORKERS="${WEIR_STORE_INTEROP_WORKERS:-2}"
readonly BOOT="127.0.0.1:$PORT"
# Every client call is bounded: a hung client fails the check, not CI.
readonly TOOL_TIMEOUT=60
export WEIR_SMOKE_TOOL_TIMEOUT=120 # Java tools (ktool)

readonly TOPIC_A=interop-kcat   # 3 partitions, Java CreateTopics, kcat writes
readonly TOPIC_B=interop-kclient # 2 partitions, librdkafka CreateTopics, kclient writes
readonly TOPIC_C=interop-java   # auto-created by the Java console producer
readonly N_A=100 N_B=200 N_C=50

if [[ "$TARGET" == weir && ! -x "$STORE_BIN" ]]; then
  echo "store_interop: SKIP: no store binary at $STORE_BIN" \
    "(build weir-dataplane, or set WEIR_BUILD_DIR/WEIR_STORE_BIN;" \
    "WEIR_STORE_TARGET=kafka runs this test against Apache Kafka)"
  exit 77
fi
[[ "$TARGET" == weir || "$TARGET" == kafka ]] ||
  {
    echo "store_interop: WEIR_STORE_TARGET must be weir or kafka" >&2
    exit 1
  }
export WEIR_STORE_TARGET="$TARGET"

SMOKE_NAME=store_interop
# shellcheck source=tests/harness/kafka/smoke_lib.sh
source "$ROOT/tests/harness/kafka/smoke_lib.sh" # WORK, check/pass/fail, traps
readonly STORE_DIR="$WORK/store"
KCAT_BIN=kcat
skipped=0

# The store is not below this shell (store.sh detaches it): end it first,
# then let the shared cleanup stop the tools and print the summary.
interop_cleanup() {
  local rc=$?
  "$STORE" kill "$STORE_DIR" >/dev/null 2>&1 || :
  ((skipped == 0)) || echo "store_interop: $skipped sub-checks skipped (reasons above)"
  # smoke_cleanup reads the exit status from $?: hand it over. It exits.
  (exit "$rc") || smoke_cleanup
  smoke_cleanup
}
trap interop_cleanup EXIT

skip() {
  skipped=$((skipped + 1))
  printf 'skip %s: %s\n' "$1" "$2"
}

kcat() { timeout "$TOOL_TIMEOUT" "$KCAT_BIN" -b "$BOOT" "$@"; }
kclient() { timeout "$TOOL_TIMEOUT" "$KCLIENT_BIN" "$1" -b "$BOOT" -q "${@:2}"; }

# Tuples are "partition offset key value" lines; sort them by partition and
# offset so that files from different clients compare with diff.
sort_tuples() { sort -k1,1n -k2,2n "$1" >"$1.sorted" && mv "$1.sorted" "$1"; }

# ---------------------------------------------------------------- checks --

# offsets_dense FILE PARTITIONS: each partition holds offsets 0..n-1 once.
offsets_dense() {
  awk -v np="$2" '
    $1 < 0 || $1 >= np { print "record in partition " $1 " of " np; bad = 1 }
    { if ($2 != next_off[$1]) { print "partition " $1 ": offset " $2 ", expected " next_off[$1]; bad = 1 }
      next_off[$1] = $2 + 1 }
    END { exit bad }' "$1"
}

# same_records FILE EXPECTED: FILE's key/value pairs are exactly EXPECTED's
# "key value" lines (as a multiset).
same_records() {
  diff <(awk '{ print $3, $4 }' "$1" | sort) <(sort "$2")
}

# partition_counts FILE PARTITIONS: "p count" for p in 0..PARTITIONS-1.
partition_counts() {
  awk -v np="$2" '{ n[$1]++ } END { for (p = 0; p < np; p++) print p, n[p] + 0 }' "$1"
}

metadata_partitions() {
  kcat -L -t "$1" >"$WORK/md-$1.txt" || return 1
  cat "$WORK/md-$1.txt"
  grep -q "topic \"$1\" with $2 partitions" "$WORK/md-$1.txt"
}

# read_kcat TOPIC FILE: everything, plain assign from the beginning.
read_kcat() {
  kcat -C -t "$1" -o beginning -e -q -f '%p %o %k %s\n' >"$2" || return 1
  sort_tuples "$2"
}

read_kclient() {
  kclient consume -t "$1" >"$2" || return 1
  sort_tuples "$2"
}

# read_java TOPIC N FILE [--group G]: the Java console consumer.
read_java() {
  local topic="$1" n="$2" out="$3"
  shift 3
  ktool console-consumer --bootstrap-server "$BOOT" --topic "$topic" --from-beginning \
    --max-messages "$n" --timeout-ms 30000 "$@" \
    --property print.partition=true --property print.offset=true \
    --property print.key=true --property key.separator=' ' >"$out.raw" || return 1
  sed -nE 's/^Partition:([0-9]+) Offset:([0-9]+) /\1 \2 /p' "$out.raw" >"$out"
  [[ "$(wc -l <"$out")" -eq "$n" ]] || {
    echo "Java consumer printed $(wc -l <"$out") records, expected $n"
    return 1
  }
  sort_tuples "$out"
}

# committed_is TOPIC GROUP PARTITIONS TUPLES: OffsetFetch (librdkafka) returns
# the per-partition record counts of TUPLES (the group consumed everything).
committed_is() {
  kclient committed -t "$1" --group "$2" >"$WORK/committed-$2.txt" || return 1
  cat "$WORK/committed-$2.txt"
  diff "$WORK/committed-$2.txt" <(partition_counts "$4" "$3")
}

# ---------------------------------------------------- (a) kcat, 3 partitions

expected_a() {
  local i
  for ((i = 0; i < N_A; i++)); do
    printf 'a-key-%03d a-value-%03d\n' "$i" "$i"
  done
}

produce_a() {
  expected_a | tr ' ' ':' | kcat -P -K: -t "$TOPIC_A"
}

kcat_plain_a() {
  read_kcat "$TOPIC_A" "$WORK/a.kcat" || return 1
  same_records "$WORK/a.kcat" <(expected_a) || return 1
  offsets_dense "$WORK/a.kcat" 3
}

kcat_group_a() {
  kcat -G interop-ga -X auto.offset.reset=earliest -c "$N_A" -e -q -f '%p %o %k %s\n' \
    "$TOPIC_A" >"$WORK/a.kcat-group" || return 1
  sort_tuples "$WORK/a.kcat-group"
  diff "$WORK/a.kcat" "$WORK/a.kcat-group"
}

kcat_group_resumes_a() {
  kcat -G interop-ga -X auto.offset.reset=earliest -e -q -f '%p %o %k %s\n' \
    "$TOPIC_A" >"$WORK/a.kcat-group2" || return 1
  [[ ! -s "$WORK/a.kcat-group2" ]] || {
    echo "second member of the group re-read:"
    cat "$WORK/a.kcat-group2"
    return 1
  }
}

# ------------------------------------------- (b) kclient, idempotent, acks=all

produce_b() {
  # --rate 1000 spreads the records over distinct milliseconds, so that the
  # ListOffsets-by-timestamp check below can aim inside a batch.
  kclient produce -t "$TOPIC_B" -n "$N_B" --idempotent --acks all --key-prefix b \
    --rate 1000 --acked-log "$WORK/b.acked" || return 1
  [[ "$(wc -l <"$WORK/b.acked")" -eq "$N_B" ]]
}

# Every acknowledged (seq, partition, offset) is where the producer was told.
acked_match_b() {
  read_kcat "$TOPIC_B" "$WORK/b.kcat" || return 1
  [[ "$(wc -l <"$WORK/b.kcat")" -eq "$N_B" ]] || {
    echo "kcat read $(wc -l <"$WORK/b.kcat") records, expected $N_B"
    return 1
  }
  offsets_dense "$WORK/b.kcat" 2 || return 1
  awk 'NR == FNR { at[$2 " " $3] = sprintf("b-%08d", $1); next }
    ($1 " " $2) in at { if (at[$1 " " $2] != $4) { print "at " $1 "/" $2 ": " $4 ", acked " at[$1 " " $2]; bad = 1 } ; n++ }
    END { if (n != '"$N_B"') { print n " acked positions found"; bad = 1 }; exit bad }' \
    "$WORK/b.acked" "$WORK/b.kcat"
}

kclient_plain_b() {
  read_kclient "$TOPIC_B" "$WORK/b.kclient" || return 1
  diff "$WORK/b.kcat" "$WORK/b.kclient"
}

kclient_group_b() {
  kclient consume -t "$TOPIC_B" --group interop-gb --from-beginning --expect "$N_B" \
    >"$WORK/b.kclient-group" || return 1
  sort_tuples "$WORK/b.kclient-group"
  diff "$WORK/b.kcat" "$WORK/b.kclient-group"
}

# --------------------------------------------------- (c) Java console tools

expected_c() {
  local i
  for ((i = 0; i < N_C; i++)); do
    printf 'c-key-%03d c-value-%03d\n' "$i" "$i"
  done
}

produce_c() {
  expected_c | tr ' ' ':' | ktool console-producer --bootstrap-server "$BOOT" \
    --topic "$TOPIC_C" --property parse.key=true --property key.separator=:
}

kcat_reads_c() {
  read_kcat "$TOPIC_C" "$WORK/c.kcat" || return 1
  same_records "$WORK/c.kcat" <(expected_c) || return 1
  offsets_dense "$WORK/c.kcat" 1
}

java_plain_c() {
  read_java "$TOPIC_C" "$N_C" "$WORK/c.java" || return 1
  diff "$WORK/c.kcat" "$WORK/c.java"
}

java_group_c() {
  read_java "$TOPIC_C" "$N_C" "$WORK/c.java-group" --group interop-gc || return 1
  diff "$WORK/c.kcat" "$WORK/c.java-group"
}

# ------------------------------------------------------- (d) cross check --

# Each topic read by the two clients that did not write it: identical tuples.
cross_check() {
  local topic="$1" n="$2" ref="$3" tag="$4"
  read_kclient "$topic" "$WORK/$tag.x-kclient" || return 1
  diff "$ref" "$WORK/$tag.x-kclient" || return 1
  read_java "$topic" "$n" "$WORK/$tag.x-java" || return 1
  diff "$ref" "$WORK/$tag.x-java"
}

# ------------------------------------------------------- (e) ListOffsets --

# list_offsets TOPIC PARTITIONS TUPLES: GetOffsetShell latest = counts,
# earliest = 0, and by timestamp 0 = 0 for every non-empty partition.
list_offsets() {
  local topic="$1" np="$2" tuples="$3"
  ktool get-offsets --bootstrap-server "$BOOT" --topic "$topic" --time -1 \
    >"$WORK/lo-$topic-latest.txt" || return 1
  diff <(sort -t: -k2,2n "$WORK/lo-$topic-latest.txt") \
    <(partition_counts "$tuples" "$np" | awk -v t="$topic" '{ print t ":" $1 ":" $2 }') ||
    return 1
  ktool get-offsets --bootstrap-server "$BOOT" --topic "$topic" --time -2 \
    >"$WORK/lo-$topic-earliest.txt" || return 1
  diff <(sort -t: -k2,2n "$WORK/lo-$topic-earliest.txt") \
    <(for ((p = 0; p < np; p++)); do echo "$topic:$p:0"; done) || return 1
  ktool get-offsets --bootstrap-server "$BOOT" --topic "$topic" --time 0 \
    >"$WORK/lo-$topic-ts0.txt" || return 1
  diff <(sort -t: -k2,2n "$WORK/lo-$topic-ts0.txt") \
    <(partition_counts "$tuples" "$np" | awk -v t="$topic" '$2 > 0 { print t ":" $1 ":0" }')
}

# ListOffsets by a timestamp taken from the middle of partition 0: the answer
# is the first offset whose record timestamp is >= it (record, not batch,
# granularity, as Kafka does). A timestamp after every record finds none.
list_offsets_by_time() {
  local topic="$1" ts want
  kcat -C -t "$topic" -p 0 -o beginning -e -q -f '%o %T\n' >"$WORK/ts-$topic.txt" || return 1
  ts="$(awk '{ t[NR] = $2 } END { printf "%.0f\n", t[int(NR / 2) + 1] + 1 }' "$WORK/ts-$topic.txt")"
  want="$(awk -v ts="$ts" '$2 >= ts { print $1; exit }' "$WORK/ts-$topic.txt")"
  [[ -n "$want" ]] || {
    echo "no record at or after ts $ts in partition 0 (all timestamps equal?)"
    return 1
  }
  ktool get-offsets --bootstrap-server "$BOOT" --topic "$topic" --partitions 0 --time "$ts" \
    >"$WORK/lo-$topic-ts.txt" || return 1
  echo "timestamp $ts: expected offset $want, got: $(cat "$WORK/lo-$topic-ts.txt")"
  [[ "$(cat "$WORK/lo-$topic-ts.txt")" == "$topic:0:$want" ]] || return 1
  # Past every record: no offset (GetOffsetShell prints nothing for -1).
  ts="$(awk '{ if ($2 > m) m = $2 } END { printf "%.0f\n", m + 3600000 }' "$WORK/ts-$topic.txt")"
  ktool get-offsets --bootstrap-server "$BOOT" --topic "$topic" --partitions 0 --time "$ts" \
    >"$WORK/lo-$topic-future.txt" || return 1
  echo "timestamp $ts (after every record): got: $(cat "$WORK/lo-$topic-future.txt")"
  [[ ! -s "$WORK/lo-$topic-future.txt" ]]
}

# ------------------------------------------- (f) consumer-groups --describe

describe_group() {
  local group="$1" topic="$2" np="$3" n="$4" name="consumer-groups --describe $1"
  if ktool broker-api-versions --bootstrap-server "$BOOT" >"$WORK/api-versions.txt" 2>&1 &&
    grep -q 'DescribeGroups(15): UNSUPPORTED' "$WORK/api-versions.txt"; then
    skip "$name" "the store does not serve DescribeGroups (broker-api-versions: UNSUPPORTED)"
    return
  fi
  # Only the ApiVersions answer above may excuse the check: any other
  # failure of the tool is a failure.
  if ! ktool consumer-groups --bootstrap-server "$BOOT" --describe --group "$group" \
    >"$WORK/describe-$group.txt" 2>&1; then
    fail "$name" "$WORK/describe-$group.txt"
    return
  fi
  if awk -v t="$topic" -v n="$n" -v np="$np" '$2 == t { sum += $4; lag += $6; rows++ }
    END { exit !(rows == np && sum == n && lag == 0) }' "$WORK/describe-$group.txt"; then
    pass "$name: $n committed over $np partitions, lag 0"
  else
    fail "$name: $n committed over $np partitions, lag 0" "$WORK/describe-$group.txt"
  fi
}

# ------------------------------------------------- (g) more record shapes

# codec_round_trip CODEC: librdkafka writes CODEC-compressed batches; kcat
# and the Java consumer decompress what the store serves.
codec_round_trip() {
  local codec="$1" topic="interop-codec-$1" i
  kclient produce -t "$topic" -n 50 --key-prefix "$codec" --size 300 --linger-ms 20 \
    -X "compression.codec=$codec" || return 1
  read_kcat "$topic" "$WORK/$codec.kcat" || return 1
  for ((i = 0; i < 50; i++)); do
    printf '%s%08d\n' "$codec" "$i"
  done >"$WORK/$codec.keys"
  diff <(awk '{ print $3 }' "$WORK/$codec.kcat" | sort) "$WORK/$codec.keys" || return 1
  offsets_dense "$WORK/$codec.kcat" 1 || return 1
  read_java "$topic" 50 "$WORK/$codec.java" || return 1
  diff "$WORK/$codec.kcat" "$WORK/$codec.java"
}

# Headers, a null key and a null value (tombstone) survive the round trip.
shapes() {
  local topic=interop-shapes
  printf 'hk:hv\n' | kcat -P -t "$topic" -K: -H h1=v1 -H h2=v2 || return 1
  printf ':null-key-value\nnull-value-key:\n' | kcat -P -t "$topic" -K: -Z || return 1
  kcat -C -t "$topic" -o beginning -e -q -f '%o %K %S %k %s %h\n' >"$WORK/shapes.txt" || return 1
  cat "$WORK/shapes.txt"
  diff "$WORK/shapes.txt" - <<EOF
0 2 2 hk hv h1=v1,h2=v2
1 -1 14  null-key-value 
2 14 -1 null-value-key  
EOF
}

# Records of 300 kB (a few per batch, near the 1 MiB batch limit).
large_records() {
  local topic=interop-large
  kclient produce -t "$topic" -n 6 --size 300000 --key-prefix big || return 1
  read_kcat "$topic" "$WORK/large.kcat" || return 1
  read_kclient "$topic" "$WORK/large.kclient" || return 1
  cmp "$WORK/large.kcat" "$WORK/large.kclient" || return 1
  awk '{ if (length($4) != 300000 || substr($4, 1, 13) != sprintf("big-%08d.", substr($3, 4) + 0)) {
      print "offset " $2 ": bad value of length " length($4); bad = 1 } ; n++ }
    END { exit bad || n != 6 }' "$WORK/large.kcat"
}

# acks=1 and acks=0 writes are all stored (acks=0 gets no answer at all).
acks_1_and_0() {
  local topic=interop-acks
  kclient produce -t "$topic" -n 50 --acks 1 --key-prefix one --acked-log "$WORK/acks1.log" ||
    return 1
  [[ "$(awk '$3 >= 0' "$WORK/acks1.log" | wc -l)" -eq 50 ]] || {
    echo "acks=1: $(awk '$3 >= 0' "$WORK/acks1.log" | wc -l) of 50 acked with an offset"
    return 1
  }
  kclient produce -t "$topic" -n 50 --acks 0 --key-prefix zero || return 1
  kclient consume -t "$topic" --expect 100 --timeout-ms 20000 >"$WORK/acks.txt" || return 1
  sort_tuples "$WORK/acks.txt"
  offsets_dense "$WORK/acks.txt" 1 || return 1
  [[ "$(grep -c ' one-' "$WORK/acks.txt")" -eq 50 && "$(grep -c ' zero-' "$WORK/acks.txt")" -eq 50 ]]
}

# ------------------------------------------------------------------ main --

restart_keeps_data() {
  "$STORE" start "$STORE_DIR" "$PORT" "$WORKERS" || return 1
  read_kcat "$TOPIC_A" "$WORK/a.restart" || return 1
  diff "$WORK/a.kcat" "$WORK/a.restart" || return 1
  read_kcat "$TOPIC_B" "$WORK/b.restart" || return 1
  diff "$WORK/b.kcat" "$WORK/b.restart"
}

main() {
  local t0=$SECONDS
  echo "store_interop: target $TARGET on $BOOT, work dir $WORK"
  check "kcat installed" "$KCAT_HARNESS" install
  KCAT_BIN="$("$KCAT_HARNESS" path)"
  check "kclient built ($KCLIENT_BIN)" test -x "$KCLIENT_BIN"
  check "Kafka Java tools installed" "$KAFKA" install
  check "store starts ($WORKERS workers)" "$STORE" start "$STORE_DIR" "$PORT" "$WORKERS"
  ((failed == 0)) || return 1

  echo "-- (a) kcat, 3 partitions created by the Java admin client"
  check "Java CreateTopics $TOPIC_A (3 partitions)" ktool topics --bootstrap-server "$BOOT" \
    --create --topic "$TOPIC_A" --partitions 3 --replication-factor 1
  check "kcat -L -t shows 3 partitions" metadata_partitions "$TOPIC_A" 3
  check "kcat -P -K: produces $N_A keyed records" produce_a
  check "kcat -C reads the $N_A records, offsets dense per partition" kcat_plain_a
  check "kcat -G (balanced group) reads the same tuples" kcat_group_a
  check "kcat -G resumes at the committed offsets" kcat_group_resumes_a
  check "OffsetFetch: kcat group committed the per-partition ends" \
    committed_is "$TOPIC_A" interop-ga 3 "$WORK/a.kcat"

  echo "-- (b) kclient, idempotent, acks=all"
  check "librdkafka CreateTopics $TOPIC_B (2 partitions)" kclient create -t "$TOPIC_B" -p 2
  check "kcat -L -t shows 2 partitions" metadata_partitions "$TOPIC_B" 2
  check "kclient produces $N_B records, all acked" produce_b
  check "every acked (seq, partition, offset) holds that record" acked_match_b
  check "kclient (assign) reads the same tuples as kcat" kclient_plain_b
  check "kclient --group reads the same tuples" kclient_group_b
  check "OffsetFetch: kclient group committed the per-partition ends" \
    committed_is "$TOPIC_B" interop-gb 2 "$WORK/b.kcat"

  echo "-- (c) Java console producer and consumer"
  check "Java console producer writes $N_C keyed records (auto-create)" produce_c
  check "auto-created topic has 1 partition" metadata_partitions "$TOPIC_C" 1
  check "kcat reads the Java records" kcat_reads_c
  check "Java console consumer (no group) sees kcat's tuples" java_plain_c
  check "Java console consumer --group sees kcat's tuples" java_group_c
  check "OffsetFetch: Java group committed the ends" \
    committed_is "$TOPIC_C" interop-gc 1 "$WORK/c.kcat"

  echo "-- (d) cross check: every client sees the same tuples"
  check "$TOPIC_A: kclient and Java see kcat's tuples" cross_check "$TOPIC_A" "$N_A" \
    "$WORK/a.kcat" a
  check "$TOPIC_B: kclient and Java see kcat's tuples" cross_check "$TOPIC_B" "$N_B" \
    "$WORK/b.kcat" b
  check "$TOPIC_C: kclient sees kcat's tuples" diff_kclient_c

  echo "-- (e) ListOffsets (GetOffsetShell)"
  check "$TOPIC_A: latest = counts, earliest = 0, ts 0 = 0" list_offsets "$TOPIC_A" 3 \
    "$WORK/a.kcat"
  check "$TOPIC_B: latest = counts, earliest = 0, ts 0 = 0" list_offsets "$TOPIC_B" 2 \
    "$WORK/b.kcat"
  check "$TOPIC_C: latest = counts, earliest = 0, ts 0 = 0" list_offsets "$TOPIC_C" 1 \
    "$WORK/c.kcat"
  check "$TOPIC_B: ListOffsets by timestamp (inside a batch; after the end)" \
    list_offsets_by_time "$TOPIC_B"

  echo "-- (f) consumer-groups --describe"
  describe_group interop-ga "$TOPIC_A" 3 "$N_A"

  echo "-- (g) compression, headers, nulls, large records, acks 1 and 0"
  local codec
  for codec in gzip snappy lz4 zstd; do
    check "$codec batches: kcat and Java read what librdkafka wrote" codec_round_trip "$codec"
  done
  check "headers, null key, null value round-trip" shapes
  check "300 kB records round-trip" large_records
  check "acks=1 and acks=0 records are stored" acks_1_and_0

  echo "-- restart"
  check "store stops cleanly on SIGTERM (exit 0)" "$STORE" stop "$STORE_DIR"
  check "after a restart the same tuples are served" restart_keeps_data
  check "store stops cleanly again" "$STORE" stop "$STORE_DIR"
  echo "store_interop: wall time $((SECONDS - t0))s"
  ((failed == 0))
}

diff_kclient_c() {
  read_kclient "$TOPIC_C" "$WORK/c.x-kclient" || return 1
  diff "$WORK/c.kcat" "$WORK/c.x-kclient"
}

main "$@"
