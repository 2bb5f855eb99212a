#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Smoke test of the Kafka harness (tests/harness/kafka.sh): start a real KRaft
# broker in a temp dir, then create a 3-partition topic, produce 100 keyed
# records and read them back, all with Kafka's own Java console tools.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly KAFKA="$ROOT/tests/harness/kafka.sh"
export WEIR_KAFKA_PORT="${WEIR_KAFKA_PORT:-19092}"
export WEIR_KAFKA_CONTROLLER_PORT="${WEIR_KAFKA_CONTROLLER_PORT:-$((WEIR_KAFKA_PORT + 1))}"
readonly BOOTSTRAP="127.0.0.1:$WEIR_KAFKA_PORT"
readonly TOPIC=weir-smoke
readonly N=100

SMOKE_NAME=kafka_smoke
# shellcheck source=tests/harness/kafka/smoke_lib.sh
source "$ROOT/tests/harness/kafka/smoke_lib.sh" # sets WORK, BROKER_DIR, traps

expected_records() {
  local i
  for ((i = 0; i < N; i++)); do
    printf 'key-%03d:value-%03d payload %d\n' "$i" "$i" "$((i * i))"
  done
}

topic_has_3_partitions() {
  ktool topics --bootstrap-server "$BOOTSTRAP" --describe --topic "$TOPIC" \
    >"$WORK/describe.txt" || return 1
  grep -q "PartitionCount: 3" "$WORK/describe.txt" &&
    [[ "$(grep -cE "Topic: ${TOPIC}[[:space:]]+Partition: [0-9]+" "$WORK/describe.txt")" -eq 3 ]]
}

topic_listed() {
  ktool topics --bootstrap-server "$BOOTSTRAP" --list | grep -qx "$TOPIC"
}

produce() {
  expected_records | ktool console-producer --bootstrap-server "$BOOTSTRAP" \
    --topic "$TOPIC" --property parse.key=true --property key.separator=: \
    --producer-property acks=all
}

consume() {
  ktool console-consumer --bootstrap-server "$BOOTSTRAP" --topic "$TOPIC" \
    --from-beginning --max-messages "$N" --timeout-ms 30000 \
    --property print.key=true --property key.separator=: \
    >"$WORK/consumed.txt"
}

same_records() {
  expected_records | sort >"$WORK/expected.sorted" || return 1
  sort "$WORK/consumed.txt" >"$WORK/consumed.sorted" || return 1
  diff "$WORK/expected.sorted" "$WORK/consumed.sorted"
}

# Sum of end offsets over all partitions must be N, spread over >1 partition.
offsets_add_up() {
  ktool get-offsets --bootstrap-server "$BOOTSTRAP" --topic "$TOPIC" \
    >"$WORK/offsets.txt" || return 1
  cat "$WORK/offsets.txt"
  awk -F: -v n="$N" '{ sum += $3; if ($3 > 0) used++ }
    END { exit !(NR == 3 && sum == n && used > 1) }' "$WORK/offsets.txt"
}

env_points_at_broker() {
  "$KAFKA" env "$BROKER_DIR" >"$WORK/env.sh" || return 1
  cat "$WORK/env.sh"
  (
    # shellcheck source=/dev/null
    source "$WORK/env.sh"
    [[ "$WEIR_KAFKA_BOOTSTRAP" == "$BOOTSTRAP" ]] &&
      compgen -G "$WEIR_KAFKA_CLASSPATH" >/dev/null
  )
}

main() {
  local t0=$SECONDS
  check "harness install (warm or cold)" "$KAFKA" install
  check "broker starts and answers ApiVersions" "$KAFKA" start "$BROKER_DIR"
  ((failed == 0)) || return 1
  check "env prints bootstrap and classpath" env_points_at_broker
  check "topics --create with 3 partitions" ktool topics --bootstrap-server "$BOOTSTRAP" \
    --create --topic "$TOPIC" --partitions 3 --replication-factor 1
  check "topics --list shows the topic" topic_listed
  check "topics --describe shows 3 partitions" topic_has_3_partitions
  check "console-producer sends $N keyed records" produce
  check "console-consumer reads $N records" consume
  check "consumed records equal the produced set" same_records
  check "end offsets sum to $N across partitions" offsets_add_up
  check "stop stops the broker" "$KAFKA" stop "$BROKER_DIR"
  check "second stop is a no-op" "$KAFKA" stop "$BROKER_DIR"
  echo "kafka_smoke: wall time $((SECONDS - t0))s"
  ((failed == 0))
}

main "$@"
