#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The processor on a SASL-protected Kafka: Apache Kafka 3.9.2 with a
# SASL_PLAINTEXT/PLAIN listener (tests/harness/kafka.sh, WEIR_KAFKA_SASL_USERS)
# that refuses unauthenticated clients. weir-dataplane --role processor gets
# the credentials the way the operator renders them (WEIR_KAFKA_* environment,
# docs/internals/operator-render.md) and must move N records from the input
# to the output topic exactly once, and one bad record to the dead-letter
# topic (a second producer: its cluster differs by a spec property). The
# spec's properties win over the environment (a wrong WEIR_KAFKA_SASL_PASSWORD,
# the right sasl.password in the spec), a consumer's authentication failure
# is named while it waits for its topics, and a secret spec property
# librdkafka refuses is reported without its value. Then a
# wrong password must fail clearly: never ready, a log line naming the
# authentication failure, a non-zero exit within a bound, and neither
# password anywhere in its log (librdkafka debug logging on). A bad
# WEIR_KAFKA_SECURITY_PROTOCOL fails start-up naming the variable, and so
# does a CA that is not PEM (exit 65 both).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly KAFKA="$ROOT/tests/harness/kafka.sh"
readonly KCAT_HARNESS="$ROOT/tests/harness/kcat.sh"
readonly BUILD_DIR="${WEIR_BUILD_DIR:-$ROOT/build}"
readonly BIN="${WEIR_STORE_BIN:-$BUILD_DIR/dataplane/weir-dataplane}"
readonly N=500
# Fixed ports (20255-20289): PLAINTEXT 20260, controller 20261, SASL 20262,
# processor HTTP 20265 (good password), 20266 (wrong password), 20267 (only
# the consumer's password wrong).
readonly PORT=20260 CPORT=20261 SASL_PORT=20262 HTTP_OK=20265 HTTP_BAD=20266 HTTP_CONS=20267
readonly SASL_BOOT="127.0.0.1:$SASL_PORT"
readonly USER_NAME=weir-proc PASSWORD=Weir-S3cret-7741 WRONG=Wr0ng-Pa55-9912
readonly IN_TOPIC=proc-sasl-in OUT_TOPIC=proc-sasl-out DLQ_TOPIC=proc-sasl-dlq
readonly TOOL_TIMEOUT=60
# The processor waits TOPIC_WAIT_MS (60 s) for its topics before it gives up.
readonly GIVE_UP_S=120

if [[ ! -x "$BIN" ]]; then
  echo "proc_kafka_sasl: SKIP: no weir-dataplane at $BIN (build it, or set WEIR_BUILD_DIR)"
  exit 77
fi

SMOKE_NAME=proc_kafka_sasl
# shellcheck source=tests/harness/kafka/smoke_lib.sh
source "$ROOT/tests/harness/kafka/smoke_lib.sh" # WORK, BROKER_DIR, check/pass/fail, traps
KCAT_BIN=kcat
PROC_PID=""

sasl_cleanup() {
  local rc=$?
  [[ -z "$PROC_PID" ]] || kill -KILL "$PROC_PID" 2>/dev/null || :
  (exit "$rc") || smoke_cleanup
  smoke_cleanup
}
trap sasl_cleanup EXIT

# kcat on the SASL listener, authenticated as USER_NAME.
skcat() {
  timeout "$TOOL_TIMEOUT" "$KCAT_BIN" -b "$SASL_BOOT" -X security.protocol=SASL_PLAINTEXT \
    -X sasl.mechanisms=PLAIN -X sasl.username="$USER_NAME" -X sasl.password="$PASSWORD" "$@"
}

# The broker refuses a client that does not authenticate, and a wrong
# password. kcat -L exits 0 on failure: its output says.
rejects_unauthenticated() {
  local out
  out="$(timeout 30 "$KCAT_BIN" -b "$SASL_BOOT" -m 5 -L 2>&1)" || :
  echo "$out"
  ! grep -q ' brokers:' <<<"$out" && grep -q 'might require SASL authentication' <<<"$out"
}
rejects_wrong_password() {
  local out
  out="$(timeout 30 "$KCAT_BIN" -b "$SASL_BOOT" -X security.protocol=SASL_PLAINTEXT \
    -X sasl.mechanisms=PLAIN -X sasl.username="$USER_NAME" -X sasl.password="$WRONG" \
    -m 5 -L 2>&1)" || :
  echo "$out"
  ! grep -q ' brokers:' <<<"$out" && grep -q 'Authentication failed' <<<"$out"
}
accepts_password() {
  skcat -m 10 -L | tee /dev/stderr | grep -q ' brokers:'
}

create_topics() {
  local t
  printf '%s\n' "security.protocol=SASL_PLAINTEXT" "sasl.mechanism=PLAIN" \
    "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$USER_NAME\" password=\"$PASSWORD\";" \
    >"$WORK/client.properties"
  for t in "$IN_TOPIC:2" "$OUT_TOPIC:2" "$DLQ_TOPIC:1"; do
    ktool topics --bootstrap-server "$SASL_BOOT" --command-config "$WORK/client.properties" \
      --create --topic "${t%%:*}" --partitions "${t#*:}" || return 1
  done
}

# write_spec FILE EXTRA_INPUT_PROPERTIES [PROPERTIES_OF_EVERY_CLUSTER [NAME]]
write_spec() {
  local all="${3:-}" name="${4:-proc-sasl}"
  cat >"$1" <<EOF
{
  "version": 1,
  "name": "$name",
  "inputs": [{
    "name": "events", "topic": "$IN_TOPIC",
    "cluster": {"protocol": "kafka", "bootstrap": "$SASL_BOOT", "properties": {$2${2:+${all:+, }}$all}},
    "partitions": {"count": 2}, "format": "json", "startOffset": "earliest"
  }],
  "operators": [
    {"id": "doubled", "type": "map", "from": ["events"], "set": {"payload.doubled": "payload.n * 2"}}
  ],
  "outputs": [
    {"name": "out", "from": "doubled", "topic": "$OUT_TOPIC",
     "cluster": {"protocol": "kafka", "bootstrap": "$SASL_BOOT", "properties": {$all}}}
  ],
  "deadLetter": {"topic": "$DLQ_TOPIC",
    "cluster": {"protocol": "kafka", "bootstrap": "$SASL_BOOT",
                "properties": {"client.rack": "weir-dlq"${all:+, }$all}}},
  "checkpoint": {"dir": "$WORK/ckpt-${1##*/}", "intervalMs": 500}
}
EOF
}

# wait_for SECONDS CMD...: until CMD succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  while ((SECONDS < deadline)); do
    "$@" && return 0
    sleep 0.3
  done
  "$@"
}

ready() { curl -sf --max-time 2 "http://127.0.0.1:$1/readyz" >/dev/null; }
not_ready() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/readyz")" || :
  echo "readyz: HTTP $code"
  [[ "$code" == 503 ]]
}

produce() {
  python3 - "$N" >"$WORK/input.txt" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f'k{i}|{{"n":{i}}}')
PY
  skcat -P -t "$IN_TOPIC" -K '|' <"$WORK/input.txt"
}

produce_bad() {
  printf 'bad|not json\n' | skcat -P -t "$IN_TOPIC" -K '|'
}

consume_out() { skcat -C -t "$OUT_TOPIC" -o beginning -e -q -f '%k|%s\n' >"$WORK/out.txt"; }
out_count_at_least() {
  consume_out || return 1
  echo "output has $(wc -l <"$WORK/out.txt") records, want $1"
  (($(wc -l <"$WORK/out.txt") >= $1))
}
dlq_count_at_least() {
  skcat -C -t "$DLQ_TOPIC" -o beginning -e -q -f '%k|%h|%s\n' >"$WORK/dlq.txt" || return 1
  echo "dead-letter topic has $(wc -l <"$WORK/dlq.txt") records"
  (($(wc -l <"$WORK/dlq.txt") >= $1))
}

# Every input record exactly once, with the map applied.
out_exact() {
  consume_out || return 1
  python3 - "$N" "$WORK/out.txt" <<'PY'
import json, sys
n, path = int(sys.argv[1]), sys.argv[2]
seen = {}
for line in open(path):
    key, _, value = line.rstrip("\n").partition("|")
    v = json.loads(value)
    assert v["doubled"] == 2 * v["n"], line
    assert key == f'k{v["n"]}', line
    seen[v["n"]] = seen.get(v["n"], 0) + 1
dups = [k for k, c in seen.items() if c != 1]
missing = [i for i in range(n) if i not in seen]
print(f"{sum(seen.values())} records, {len(seen)} distinct, duplicates {dups[:5]}, missing {missing[:5]}")
sys.exit(0 if not dups and not missing and len(seen) == n else 1)
PY
}

dlq_exact() {
  dlq_count_at_least 1 || return 1
  cat "$WORK/dlq.txt"
  [[ "$(wc -l <"$WORK/dlq.txt")" == 1 ]] && grep -q '^bad|.*weir.error=' "$WORK/dlq.txt" &&
    grep -q '|not json$' "$WORK/dlq.txt"
}

no_secret_in() {
  local f="$1" s
  for s in "$PASSWORD" "$WRONG"; do
    if grep -qF -- "$s" "$f"; then
      echo "a password is in $f:"
      grep -nF -- "$s" "$f" | head -3
      return 1
    fi
  done
}

proc_term() {
  local pid="$PROC_PID" rc=0
  PROC_PID=""
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  echo "processor exited with status $rc after SIGTERM"
  [[ "$rc" == 0 ]]
}

# proc_exit_unavailable SECONDS: the processor exits by itself in time, with
# status 69 (DP_PROC_EXIT_UNAVAILABLE: its topics never became reachable),
# not a crash.
proc_exit_unavailable() {
  local pid="$PROC_PID" deadline=$((SECONDS + $1)) rc=0
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "processor still running after $1 s"
    return 1
  fi
  PROC_PID=""
  wait "$pid" || rc=$?
  echo "processor exited with status $rc"
  [[ "$rc" == 69 ]]
}

log_has() { grep -q -- "$2" "$1" || { tail -n 20 "$1"; return 1; }; }

main() {
  local t0=$SECONDS rc
  echo "proc_kafka_sasl: Kafka SASL listener $SASL_BOOT, work dir $WORK"
  check "kcat installed" "$KCAT_HARNESS" install
  KCAT_BIN="$("$KCAT_HARNESS" path)"
  check "Kafka starts with a SASL_PLAINTEXT/PLAIN listener" env WEIR_KAFKA_PORT="$PORT" \
    WEIR_KAFKA_CONTROLLER_PORT="$CPORT" WEIR_KAFKA_SASL_PORT="$SASL_PORT" \
    WEIR_KAFKA_SASL_USERS="$USER_NAME:$PASSWORD" "$KAFKA" start "$BROKER_DIR"
  ((failed == 0)) || return 1
  check "harness env names the SASL bootstrap" bash -c \
    "'$KAFKA' env '$BROKER_DIR' | grep -qx 'export WEIR_KAFKA_SASL_BOOTSTRAP=$SASL_BOOT'"
  check "broker refuses an unauthenticated client on the SASL listener" rejects_unauthenticated
  check "broker refuses a wrong password" rejects_wrong_password
  check "broker accepts the right password" accepts_password
  check "create topics through the SASL listener (Kafka CLI, client.properties)" create_topics
  ((failed == 0)) || return 1

  # ---- the right credentials, as the operator renders them
  write_spec "$WORK/spec-ok.json" ""
  WEIR_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT WEIR_KAFKA_SASL_MECHANISM=PLAIN \
    WEIR_KAFKA_SASL_USERNAME="$USER_NAME" WEIR_KAFKA_SASL_PASSWORD="$PASSWORD" \
    WEIR_KAFKA_SSL_CA_PEM="" \
    "$BIN" --role processor --spec "$WORK/spec-ok.json" --http-port "$HTTP_OK" \
    </dev/null >"$WORK/proc-ok.log" 2>&1 &
  PROC_PID=$!
  check "processor with the credentials becomes ready" wait_for 60 ready "$HTTP_OK"
  check "log: credentials taken from the environment" \
    log_has "$WORK/proc-ok.log" '"Kafka credentials from the environment"'
  check "produce $N records (authenticated kcat)" produce
  check "one unparseable record" produce_bad
  check "all $N records reach the output topic" wait_for 60 out_count_at_least "$N"
  check "the bad record reaches the dead-letter topic (second producer)" \
    wait_for 60 dlq_count_at_least 1
  sleep 2 # anything extra (a duplicate) would show up by now
  check "output: each of the $N records exactly once, mapped" out_exact
  check "dead-letter topic: exactly the bad record, with weir.error" dlq_exact
  if proc_term >"$WORK/last.log" 2>&1; then
    pass "SIGTERM, status 0"
  else
    fail "SIGTERM, status 0" "$WORK/last.log"
  fi
  check "the password is not in the processor's log" no_secret_in "$WORK/proc-ok.log"

  # ---- precedence: the spec's properties win over the environment. A
  # wrong WEIR_KAFKA_SASL_PASSWORD, the right sasl.password in every
  # cluster's properties: it must work (fails if client_new applied the
  # environment after the spec). A new name and checkpoint: it reads the
  # input again, so the output gets N more records.
  write_spec "$WORK/spec-prec.json" "" "\"sasl.password\": \"$PASSWORD\"" proc-sasl-prec
  WEIR_KAFKA_SASL_USERNAME="$USER_NAME" WEIR_KAFKA_SASL_PASSWORD="$WRONG" \
    "$BIN" --role processor --spec "$WORK/spec-prec.json" --http-port "$HTTP_OK" \
    </dev/null >"$WORK/proc-prec.log" 2>&1 &
  PROC_PID=$!
  check "precedence: wrong env password, right spec sasl.password: ready" \
    wait_for 60 ready "$HTTP_OK"
  check "precedence: the input read again reaches the output ($((2 * N)) records)" \
    wait_for 60 out_count_at_least "$((2 * N))"
  check "precedence: the bad record reaches the dead-letter topic again" \
    wait_for 60 dlq_count_at_least 2
  check "precedence: no authentication failure logged" \
    bash -c "! grep -q 'Authentication failed' '$WORK/proc-prec.log'"
  if proc_term >"$WORK/last.log" 2>&1; then
    pass "precedence: SIGTERM, status 0"
  else
    fail "precedence: SIGTERM, status 0" "$WORK/last.log"
  fi
  check "precedence: no password in the log" no_secret_in "$WORK/proc-prec.log"

  # ---- only the consumer fails to authenticate (a wrong sasl.password in
  # the input's properties, the right one in the environment for the
  # producers): the start-up wait must still name the authentication
  # failure, so the consumers' errors are served too, not only the
  # producers'.
  write_spec "$WORK/spec-cons.json" "\"sasl.password\": \"$WRONG\"" "" proc-sasl-cons
  WEIR_KAFKA_SASL_USERNAME="$USER_NAME" WEIR_KAFKA_SASL_PASSWORD="$PASSWORD" \
    "$BIN" --role processor --spec "$WORK/spec-cons.json" --http-port "$HTTP_CONS" \
    </dev/null >"$WORK/proc-cons.log" 2>&1 &
  PROC_PID=$!
  check "consumer only: the input wait names the authentication failure (30 s)" \
    wait_for 30 log_has "$WORK/proc-cons.log" '"waiting for topic".*"role":"input".*"error":"[^"]*Authentication failed'
  check "consumer only: /readyz says not ready" not_ready "$HTTP_CONS"
  kill -TERM "$PROC_PID"
  wait "$PROC_PID" || :
  PROC_PID=""
  check "consumer only: no password in the log" no_secret_in "$WORK/proc-cons.log"

  # ---- a secret spec property librdkafka refuses: its value and
  # librdkafka's reason (which quotes values) stay out of the error.
  write_spec "$WORK/spec-jaas.json" "\"sasl.jaas.config\": \"$PASSWORD\""
  rc=0
  timeout 30 "$BIN" --role processor --spec "$WORK/spec-jaas.json" --http-port 0 \
    </dev/null >"$WORK/proc-jaas.log" 2>&1 || rc=$?
  if [[ "$rc" == 65 ]]; then
    pass "refused secret spec property: exit 65"
  else
    echo "exit status $rc" >"$WORK/last.log"
    cat "$WORK/proc-jaas.log" >>"$WORK/last.log"
    fail "refused secret spec property: exit 65" "$WORK/last.log"
  fi
  check "refused secret spec property: the error names it, redacted" log_has \
    "$WORK/proc-jaas.log" 'librdkafka property sasl.jaas.config: value refused (redacted)'
  check "refused secret spec property: no password in the log" no_secret_in "$WORK/proc-jaas.log"

  # ---- a wrong password: fails clearly, leaks nothing. librdkafka debug
  # logging (security, broker, conf) is on and WEIR_LOG_LEVEL=debug lets it
  # through, so even its configuration dump is checked.
  write_spec "$WORK/spec-bad.json" '"debug": "security,broker,conf"'
  WEIR_LOG_LEVEL=debug WEIR_KAFKA_SASL_USERNAME="$USER_NAME" WEIR_KAFKA_SASL_PASSWORD="$WRONG" \
    "$BIN" --role processor --spec "$WORK/spec-bad.json" --http-port "$HTTP_BAD" \
    </dev/null >"$WORK/proc-bad.log" 2>&1 &
  PROC_PID=$!
  check "wrong password: a log line names the authentication failure (30 s)" \
    wait_for 30 log_has "$WORK/proc-bad.log" 'SASL authentication error: Authentication failed'
  check "wrong password: defaults sasl_plaintext and PLAIN (as the operator)" \
    log_has "$WORK/proc-bad.log" '"property":"security.protocol","from":"default","value":"sasl_plaintext"'
  check "wrong password: /readyz says not ready" not_ready "$HTTP_BAD"
  # Not through check: wait needs the processor to be this shell's child.
  if proc_exit_unavailable "$GIVE_UP_S" >"$WORK/last.log" 2>&1; then
    pass "wrong password: exits 69 (unavailable) within ${GIVE_UP_S}s"
  else
    fail "wrong password: exits 69 (unavailable) within ${GIVE_UP_S}s" "$WORK/last.log"
  fi
  check "wrong password: gave up on its topics, naming the authentication failure" \
    log_has "$WORK/proc-bad.log" '"topic not available in time, giving up".*"error":"[^"]*SASL authentication error: Authentication failed'
  check "wrong password: no password in the log (debug on)" no_secret_in "$WORK/proc-bad.log"
  check "wrong password: librdkafka's configuration dump was logged (the check saw it)" \
    log_has "$WORK/proc-bad.log" '"level":"debug","component":"librdkafka","msg":"[^"]*sasl.password = \[redacted\]"'

  # ---- a bad value fails start-up at once, naming the variable
  rc=0
  WEIR_KAFKA_SECURITY_PROTOCOL=sasl_tls WEIR_KAFKA_SASL_USERNAME="$USER_NAME" \
    WEIR_KAFKA_SASL_PASSWORD="$PASSWORD" timeout 30 \
    "$BIN" --role processor --spec "$WORK/spec-ok.json" --http-port 0 \
    </dev/null >"$WORK/proc-badvalue.log" 2>&1 || rc=$?
  if [[ "$rc" == 65 ]]; then
    pass "bad WEIR_KAFKA_SECURITY_PROTOCOL: exit 65"
  else
    echo "exit status $rc" >"$WORK/last.log"
    cat "$WORK/proc-badvalue.log" >>"$WORK/last.log"
    fail "bad WEIR_KAFKA_SECURITY_PROTOCOL: exit 65" "$WORK/last.log"
  fi
  check "bad value: the error names WEIR_KAFKA_SECURITY_PROTOCOL" log_has \
    "$WORK/proc-badvalue.log" 'invalid Kafka credentials in the environment.*WEIR_KAFKA_SECURITY_PROTOCOL=\\"sasl_tls\\" is not a security protocol'
  check "bad value: no password in the log" no_secret_in "$WORK/proc-badvalue.log"

  # ---- a CA that is no PEM: librdkafka refuses it at the first client
  rc=0
  WEIR_KAFKA_SECURITY_PROTOCOL=sasl_ssl WEIR_KAFKA_SSL_CA_PEM="not a certificate" \
    WEIR_KAFKA_SASL_USERNAME="$USER_NAME" WEIR_KAFKA_SASL_PASSWORD="$PASSWORD" timeout 30 \
    "$BIN" --role processor --spec "$WORK/spec-ok.json" --http-port 0 \
    </dev/null >"$WORK/proc-badca.log" 2>&1 || rc=$?
  if [[ "$rc" == 65 ]]; then
    pass "CA not in PEM format: exit 65"
  else
    echo "exit status $rc" >"$WORK/last.log"
    cat "$WORK/proc-badca.log" >>"$WORK/last.log"
    fail "CA not in PEM format: exit 65" "$WORK/last.log"
  fi
  check "bad CA: the error names ssl.ca.pem and the environment" log_has \
    "$WORK/proc-badca.log" '"cannot create a producer".*ssl.ca.pem.*WEIR_KAFKA_\* credentials from the environment'
  check "bad CA: no password in the log" no_secret_in "$WORK/proc-badca.log"

  check "broker stops" "$KAFKA" stop "$BROKER_DIR"
  echo "proc_kafka_sasl: wall time $((SECONDS - t0))s"
  ((failed == 0))
}

main "$@"
