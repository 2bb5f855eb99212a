#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Smoke test of kcat (librdkafka) against the real Kafka harness broker: own
# broker instance on port 19192 in a temp dir; metadata, keyed produce, plain
# consume and balanced-group consume with offset commits, all through kcat.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly KAFKA="$ROOT/tests/harness/kafka.sh"
readonly KCAT_HARNESS="$ROOT/tests/harness/kcat.sh"
export WEIR_KAFKA_PORT="${WEIR_KCAT_SMOKE_PORT:-19192}"
export WEIR_KAFKA_CONTROLLER_PORT="$((WEIR_KAFKA_PORT + 1))"
readonly BOOTSTRAP="127.0.0.1:$WEIR_KAFKA_PORT"
readonly TOPIC=weir-kcat-smoke
readonly GROUP=weir-kcat-smoke-group
readonly N=50
# Every kcat call is bounded: a hung client must fail the test, not CI.
readonly KCAT_TIMEOUT=60
KCAT_BIN=kcat

SMOKE_NAME=kcat_smoke
# shellcheck source=tests/harness/kafka/smoke_lib.sh
source "$ROOT/tests/harness/kafka/smoke_lib.sh" # sets WORK, BROKER_DIR, traps

kcat() {
  timeout "$KCAT_TIMEOUT" "$KCAT_BIN" -b "$BOOTSTRAP" "$@"
}

expected_records() {
  local i
  for ((i = 0; i < N; i++)); do
    printf 'kcat-key-%02d:kcat-value-%02d\n' "$i" "$i"
  done
}

metadata_lists_broker() {
  kcat -L >"$WORK/metadata.txt" || return 1
  cat "$WORK/metadata.txt"
  grep -q "broker 1 at $BOOTSTRAP" "$WORK/metadata.txt"
}

metadata_shows_topic() {
  kcat -L -t "$TOPIC" >"$WORK/topic-metadata.txt" || return 1
  cat "$WORK/topic-metadata.txt"
  grep -q "topic \"$TOPIC\" with 3 partitions" "$WORK/topic-metadata.txt"
}

produce() {
  expected_records | kcat -P -K: -t "$TOPIC"
}

# compare_with_expected FILE: FILE holds exactly the produced key:value set.
compare_with_expected() {
  expected_records | sort >"$WORK/expected.sorted" || return 1
  sort "$1" >"$1.sorted" || return 1
  diff "$WORK/expected.sorted" "$1.sorted"
}

consume_plain() {
  kcat -C -t "$TOPIC" -o beginning -e -q -f '%k:%s\n' >"$WORK/plain.txt" || return 1
  compare_with_expected "$WORK/plain.txt"
}

every_record_has_key() {
  kcat -C -t "$TOPIC" -o beginning -e -q -f 'key_len=%K\n' >"$WORK/keylens.txt" || return 1
  local key=kcat-key-00
  [[ "$(grep -c "^key_len=${#key}\$" "$WORK/keylens.txt")" -eq "$N" ]]
}

consume_group() {
  kcat -G "$GROUP" -X auto.offset.reset=earliest -c "$N" -e -q -f '%k:%s\n' "$TOPIC" \
    >"$WORK/group.txt" || return 1
  compare_with_expected "$WORK/group.txt"
}

# The group committed its offsets on close: a second member reads nothing.
group_resumes_at_committed_offsets() {
  kcat -G "$GROUP" -X auto.offset.reset=earliest -e -q -f '%k:%s\n' "$TOPIC" \
    >"$WORK/group2.txt" || return 1
  [[ ! -s "$WORK/group2.txt" ]]
}

# Cross-check the group's committed offsets with Kafka's own Java tool.
group_offsets_committed() {
  ktool consumer-groups --bootstrap-server "$BOOTSTRAP" --describe --group "$GROUP" \
    >"$WORK/group-describe.txt" || return 1
  cat "$WORK/group-describe.txt"
  awk -v t="$TOPIC" -v n="$N" '$2 == t { sum += $4; lag += $6; rows++ }
    END { exit !(rows == 3 && sum == n && lag == 0) }' "$WORK/group-describe.txt"
}

main() {
  local t0=$SECONDS
  check "kcat installed" "$KCAT_HARNESS" install
  KCAT_BIN="$("$KCAT_HARNESS" path)"
  check "broker starts on $BOOTSTRAP" "$KAFKA" start "$BROKER_DIR"
  ((failed == 0)) || return 1
  check "kcat -L lists the broker" metadata_lists_broker
  check "topic with 3 partitions created" ktool topics --bootstrap-server "$BOOTSTRAP" \
    --create --topic "$TOPIC" --partitions 3 --replication-factor 1
  check "kcat -L -t shows 3 partitions" metadata_shows_topic
  check "kcat -P -K: produces $N keyed records" produce
  check "kcat -C -o beginning -e returns the $N records" consume_plain
  check "every consumed record carries its key" every_record_has_key
  check "kcat -G (balanced consumer) returns the $N records" consume_group
  check "kcat -G resumes from committed offsets" group_resumes_at_committed_offsets
  check "consumer-groups --describe shows $N committed, lag 0" group_offsets_committed
  check "broker stops" "$KAFKA" stop "$BROKER_DIR"
  echo "kcat_smoke: wall time $((SECONDS - t0))s"
  ((failed == 0))
}

main "$@"
