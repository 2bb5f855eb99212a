#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Weir test harness: a real Apache Kafka broker (KRaft, combined broker and
# controller, loopback only) assembled from Maven Central jars, plus wrappers
# that run Kafka's own Java console/admin tools against any bootstrap server.
# Run `tests/harness/kafka.sh help` for the subcommands.
set -euo pipefail

# Keep in sync with <kafka.version> in tests/harness/kafka/pom.xml.
readonly KAFKA_VERSION=3.9.2

HARNESS_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HARNESS_SRC
readonly HARNESS_SELF="$HARNESS_SRC/kafka.sh"
readonly ASSETS="$HARNESS_SRC/kafka"
readonly POM="$ASSETS/pom.xml"
readonly CACHE_ROOT="${WEIR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weir}"
readonly KAFKA_HOME_DIR="$CACHE_ROOT/kafka-$KAFKA_VERSION"
readonly LIBS="$KAFKA_HOME_DIR/libs"
readonly STAMP="$LIBS/.weir-installed"

readonly DEFAULT_PORT="${WEIR_KAFKA_PORT:-19092}"
readonly DEFAULT_CONTROLLER_PORT="${WEIR_KAFKA_CONTROLLER_PORT:-$((DEFAULT_PORT + 1))}"
# Optional SASL_PLAINTEXT listener with the PLAIN mechanism (off unless
# WEIR_KAFKA_SASL_USERS lists "user:password" pairs, space-separated).
readonly SASL_USERS="${WEIR_KAFKA_SASL_USERS:-}"
readonly DEFAULT_SASL_PORT="${WEIR_KAFKA_SASL_PORT:-$((DEFAULT_PORT + 2))}"
readonly START_TIMEOUT="${WEIR_KAFKA_START_TIMEOUT:-90}"
readonly STOP_TIMEOUT="${WEIR_KAFKA_STOP_TIMEOUT:-30}"
readonly BROKER_HEAP_OPTS="${WEIR_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
readonly BROKER_JVM_OPTS="${WEIR_KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
# Command-line tools are short-lived: favour JVM start-up time over peak speed.
readonly TOOL_JVM_OPTS="${WEIR_KAFKA_TOOL_OPTS:--Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true}"
readonly PERF_JVM_OPTS="${WEIR_KAFKA_PERF_OPTS:--Xmx512m -XX:+UseG1GC -Djava.awt.headless=true}"

# Main classes shipped by Kafka 3.9.x (the bin/*.sh scripts of the binary
# distribution use the same ones).
readonly CLASS_BROKER=kafka.Kafka
readonly CLASS_STORAGE=kafka.tools.StorageTool
readonly CLASS_CONSOLE_PRODUCER=kafka.tools.ConsoleProducer
readonly CLASS_CONSOLE_CONSUMER=org.apache.kafka.tools.consumer.ConsoleConsumer
readonly CLASS_TOPICS=org.apache.kafka.tools.TopicCommand
readonly CLASS_CONSUMER_GROUPS=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
readonly CLASS_BROKER_API_VERSIONS=kafka.admin.BrokerApiVersionsCommand
readonly CLASS_CONFIGS=kafka.admin.ConfigCommand
readonly CLASS_ACLS=kafka.admin.AclCommand
readonly CLASS_GET_OFFSETS=org.apache.kafka.tools.GetOffsetShell
readonly CLASS_DELETE_RECORDS=org.apache.kafka.tools.DeleteRecordsCommand
readonly CLASS_METADATA_QUORUM=org.apache.kafka.tools.MetadataQuorumCommand
readonly CLASS_PRODUCER_PERF=org.apache.kafka.tools.ProducerPerformance
readonly CLASS_CONSUMER_PERF=org.apache.kafka.tools.ConsumerPerformance
readonly CLASS_DUMP_LOG=kafka.tools.DumpLogSegments

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<EOF
Usage: tests/harness/kafka.sh COMMAND [ARGS]

Broker lifecycle (DIR defaults to \${WEIR_HARNESS_DIR:-\$PWD/build/harness}/kafka):
  install                 resolve Kafka $KAFKA_VERSION jars into $LIBS (no-op when cached)
  start [DIR]             format (first time) and start a KRaft broker, wait until ready
  stop [DIR]              stop the broker started in DIR (safe to repeat)
  status [DIR]            exit 0 and print the pid if the broker in DIR is running
  env [DIR]               print export lines: WEIR_KAFKA_BOOTSTRAP, WEIR_KAFKA_CLASSPATH, ...
  logs [DIR]              print the last 100 lines of DIR/logs/server.log
  reset [DIR]             stop the broker and delete DIR

Java tools (all arguments passed through; point --bootstrap-server anywhere):
  console-producer        $CLASS_CONSOLE_PRODUCER
  console-consumer        $CLASS_CONSOLE_CONSUMER
  topics                  $CLASS_TOPICS
  consumer-groups         $CLASS_CONSUMER_GROUPS
  broker-api-versions     $CLASS_BROKER_API_VERSIONS
  configs                 $CLASS_CONFIGS
  acls                    $CLASS_ACLS
  get-offsets             $CLASS_GET_OFFSETS
  delete-records          $CLASS_DELETE_RECORDS
  metadata-quorum         $CLASS_METADATA_QUORUM
  producer-perf-test      $CLASS_PRODUCER_PERF
  consumer-perf-test      $CLASS_CONSUMER_PERF
  storage                 $CLASS_STORAGE
  dump-log-segments       $CLASS_DUMP_LOG
  run-class CLASS [ARGS]  any other main class on the Kafka classpath

Misc:
  version                 print the pinned Kafka version
  classpath               print the Java classpath (libs/*)

Environment: WEIR_KAFKA_PORT (19092), WEIR_KAFKA_CONTROLLER_PORT (port+1),
WEIR_KAFKA_SASL_USERS ("user:password ..." adds a SASL_PLAINTEXT/PLAIN listener
on WEIR_KAFKA_SASL_PORT, default port+2; unset: no such listener),
WEIR_KAFKA_START_TIMEOUT (90 s), WEIR_KAFKA_STOP_TIMEOUT (30 s),
WEIR_KAFKA_HEAP_OPTS, WEIR_KAFKA_JVM_OPTS, WEIR_KAFKA_TOOL_OPTS, WEIR_JAVA,
WEIR_CACHE_DIR (~/.cache/weir), WEIR_MAVEN_REPO_LOCAL (Maven local repo).
EOF
}

# ---------------------------------------------------------------- install --

# Install Debian packages; only called when a tool is missing.
apt_install() {
  local -a sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 ||
      die "need root (or sudo) to apt-get install $*"
    sudo_cmd=(sudo -n)
  fi
  command -v apt-get >/dev/null 2>&1 ||
    die "apt-get not found; install $* by hand"
  log "installing Debian packages: $*"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$@" >&2
}

java_bin() {
  if [[ -n "${WEIR_JAVA:-}" ]]; then
    printf '%s\n' "$WEIR_JAVA"
  elif [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    printf '%s\n' "$JAVA_HOME/bin/java"
  else
    command -v java
  fi
}

# Print the Java feature version (8, 11, 17, 21, ...) of java_bin.
java_major() {
  local java line ver
  java="$(java_bin)"
  line="$("$java" -version 2>&1 | head -n 1)"
  ver="$(sed -E 's/.*version "([^"]+)".*/\1/' <<<"$line")"
  ver="${ver#1.}"
  printf '%s\n' "${ver%%[.+-]*}"
}

ensure_java() {
  if ! java_bin >/dev/null 2>&1; then
    apt_install openjdk-17-jre-headless
    java_bin >/dev/null 2>&1 || die "java not on PATH after apt-get install openjdk-17-jre-headless"
  fi
  local major
  major="$(java_major)"
  [[ "$major" =~ ^[0-9]+$ ]] || die "cannot tell the version of $(java_bin)"
  ((major >= 17)) || die "Java 17+ needed, $(java_bin) is Java $major (set WEIR_JAVA or JAVA_HOME)"
}

ensure_maven() {
  if ! command -v mvn >/dev/null 2>&1; then
    apt_install maven
    command -v mvn >/dev/null 2>&1 || die "mvn not on PATH after apt-get install maven"
  fi
}

pom_digest() {
  sha256sum "$POM" | cut -d' ' -f1
}

is_installed() {
  [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$KAFKA_VERSION $(pom_digest)" ]]
}

cmd_install() {
  if is_installed; then
    log "Kafka $KAFKA_VERSION already installed in $LIBS"
    return 0
  fi
  ensure_java
  ensure_maven
  mkdir -p "$KAFKA_HOME_DIR"
  # Serialise concurrent installs (parallel test jobs share the cache).
  local lock="$CACHE_ROOT/kafka-$KAFKA_VERSION.lock"
  exec {lock_fd}>"$lock"
  flock "$lock_fd"
  if is_installed; then
    exec {lock_fd}>&-
    log "Kafka $KAFKA_VERSION already installed in $LIBS"
    return 0
  fi
  grep -q "<kafka.version>$KAFKA_VERSION</kafka.version>" "$POM" ||
    die "$POM does not pin kafka.version $KAFKA_VERSION (keep kafka.sh and pom.xml in sync)"

  local tmp="$KAFKA_HOME_DIR/libs.tmp.$$"
  # Holding the lock: any libs.tmp.* left is from an interrupted install.
  rm -rf "$KAFKA_HOME_DIR"/libs.tmp.*
  local -a mvn_args=(-q -B -f "$POM" dependency:copy-dependencies
    -DincludeScope=runtime -DoutputDirectory="$tmp")
  if [[ -n "${WEIR_MAVEN_REPO_LOCAL:-}" ]]; then
    mvn_args+=(-Dmaven.repo.local="$WEIR_MAVEN_REPO_LOCAL")
  fi
  log "resolving Kafka $KAFKA_VERSION with Maven into $LIBS"
  local mvn_log="$KAFKA_HOME_DIR/install.log"
  if ! mvn "${mvn_args[@]}" >"$mvn_log" 2>&1; then
    rm -rf "$tmp"
    tail -n 40 "$mvn_log" >&2
    die "mvn dependency:copy-dependencies failed for $POM (full log: $mvn_log)"
  fi
  local jar
  for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" \
    "kafka-clients-$KAFKA_VERSION.jar" "kafka-raft-$KAFKA_VERSION.jar" \
    "kafka-metadata-$KAFKA_VERSION.jar" "slf4j-reload4j-1.7.36.jar"; do
    [[ -f "$tmp/$jar" ]] || { rm -rf "$tmp"; die "Maven did not produce $jar"; }
  done
  printf '%s %s\n' "$KAFKA_VERSION" "$(pom_digest)" >"$tmp/.weir-installed"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  exec {lock_fd}>&-
  log "installed Kafka $KAFKA_VERSION: $(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS"
}

ensure_installed() {
  is_installed || cmd_install
}

# ------------------------------------------------------------ java tools --

# run_java OPTS CLASS ARGS...: exec a main class on the Kafka classpath.
run_java() {
  local opts="$1" class="$2"
  shift 2
  ensure_installed
  local java
  # No version check here (it costs a JVM start per tool call): install and
  # start have checked it.
  java="$(java_bin)" || die "java not found (run: $0 install)"
  local -a jvm_opts
  read -r -a jvm_opts <<<"$opts"
  exec "$java" "${jvm_opts[@]}" \
    -Dlog4j.configuration="file:$ASSETS/tools-log4j.properties" \
    -cp "$LIBS/*" "$class" "$@"
}

run_tool() { run_java "$TOOL_JVM_OPTS" "$@"; }
run_perf_tool() { run_java "$PERF_JVM_OPTS" "$@"; }

# --------------------------------------------------------------- broker --

instance_dir() {
  realpath -m -- "${1:-${WEIR_HARNESS_DIR:-$PWD/build/harness}/kafka}"
}

# pid of the broker in DIR if it is alive (and really is our java), else "".
broker_pid() {
  local dir="$1" pid state
  [[ -f "$dir/pid" ]] || return 0
  pid="$(cat "$dir/pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  [[ -r "/proc/$pid/cmdline" ]] || return 0
  # A zombie (exited, not yet reaped) counts as stopped.
  state="$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$pid/stat" 2>/dev/null)" || return 0
  [[ "$state" != Z ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir/server.properties" || return 0
  printf '%s\n' "$pid"
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

new_cluster_id() {
  # Same shape as org.apache.kafka.common.Uuid#randomUuid: 16 random bytes,
  # URL-safe base64 without padding, never starting with '-'.
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* && ${#id} -eq 22 ]] && break
  done
  printf '%s\n' "$id"
}

dump_logs() {
  local dir="$1" f
  for f in "$dir/logs/server.log" "$dir/logs/stdout.log"; do
    [[ -s "$f" ]] || continue
    printf -- '---- last 40 lines of %s ----\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
}

# Ready = the broker logged that it started (in KRaft that happens after it
# is unfenced) and answers an ApiVersions round trip on the PLAINTEXT port.
wait_ready() {
  local dir="$1" pid="$2" port="$3" deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if [[ -z "$(broker_pid "$dir")" ]]; then
      log "broker (pid $pid) exited during start-up"
      dump_logs "$dir"
      return 1
    fi
    if grep -q 'Kafka Server started' "$dir/logs/server.log" 2>/dev/null &&
      port_in_use "$port" && { [[ -z "${4:-}" ]] || port_in_use "$4"; }; then
      if "$HARNESS_SELF" broker-api-versions --bootstrap-server "127.0.0.1:$port" \
        >"$dir/logs/ready-check.log" 2>&1; then
        return 0
      fi
    fi
    sleep 0.2
  done
  log "broker did not become ready on 127.0.0.1:$port within ${START_TIMEOUT}s (dir $dir)"
  dump_logs "$dir"
  return 1
}

# sasl_jaas: the PlainLoginModule line accepting every WEIR_KAFKA_SASL_USERS
# pair. Names and passwords are restricted so that no JAAS quoting is needed.
sasl_jaas() {
  local jaas="org.apache.kafka.common.security.plain.PlainLoginModule required" u
  local re='^[A-Za-z0-9._-]+:[^[:space:]"\\;]+$'
  local -a users
  # read -ra: split on spaces without glob-expanding a password like a*b.
  read -ra users <<<"$SASL_USERS"
  for u in "${users[@]}"; do
    [[ "$u" =~ $re ]] ||
      die "WEIR_KAFKA_SASL_USERS: \"${u%%:*}:...\" is not user:password (user [A-Za-z0-9._-]+, password without spaces, quotes, backslashes or ;)"
    jaas+=" user_${u%%:*}=\"${u#*:}\""
  done
  printf '%s;\n' "$jaas"
}

cmd_start() {
  local dir port="$DEFAULT_PORT" cport="$DEFAULT_CONTROLLER_PORT" sport="" pid
  dir="$(instance_dir "${1:-}")"
  [[ "$port" =~ ^[0-9]+$ && "$cport" =~ ^[0-9]+$ ]] ||
    die "WEIR_KAFKA_PORT / WEIR_KAFKA_CONTROLLER_PORT must be numbers"
  if [[ -n "$SASL_USERS" ]]; then
    sport="$DEFAULT_SASL_PORT"
    [[ "$sport" =~ ^[0-9]+$ ]] || die "WEIR_KAFKA_SASL_PORT must be a number"
  fi
  pid="$(broker_pid "$dir")"
  [[ -z "$pid" ]] || die "a broker is already running from $dir (pid $pid); run: $0 stop $dir"
  local p
  for p in "$port" "$cport" $sport; do
    ! port_in_use "$p" || die "port 127.0.0.1:$p is already in use (set WEIR_KAFKA_PORT / WEIR_KAFKA_CONTROLLER_PORT / WEIR_KAFKA_SASL_PORT)"
  done

  ensure_installed
  ensure_java
  local java
  java="$(java_bin)"

  mkdir -p "$dir/data" "$dir/logs"
  sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$cport|g" \
    -e "s|@DATA_DIR@|$dir/data|g" "$ASSETS/server.properties.in" >"$dir/server.properties"
  if [[ -n "$sport" ]]; then
    # A third listener, SASL_PLAINTEXT with PLAIN only: it refuses clients
    # that do not authenticate. Brokers and the controller keep PLAINTEXT.
    local jaas
    jaas="$(sasl_jaas)"
    sed -i -e "/^listeners=/s|\$|,SASL_PLAINTEXT://127.0.0.1:$sport|" \
      -e "/^advertised.listeners=/s|\$|,SASL_PLAINTEXT://127.0.0.1:$sport|" \
      -e "/^listener.security.protocol.map=/s|\$|,SASL_PLAINTEXT:SASL_PLAINTEXT|" \
      "$dir/server.properties"
    cat >>"$dir/server.properties" <<EOF

# SASL_PLAINTEXT listener from WEIR_KAFKA_SASL_USERS (kafka.sh start).
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=$jaas
EOF
  fi
  cat >"$dir/instance.env" <<EOF
port=$port
controller_port=$cport
sasl_port=$sport
EOF

  local -a log_opts=(-Dlog4j.configuration="file:$ASSETS/log4j.properties"
    -Dkafka.logs.dir="$dir/logs")
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(new_cluster_id)"
    local -a tool_opts
    read -r -a tool_opts <<<"$TOOL_JVM_OPTS"
    if ! "$java" "${tool_opts[@]}" -Dlog4j.configuration="file:$ASSETS/tools-log4j.properties" \
      -cp "$LIBS/*" "$CLASS_STORAGE" format -t "$cluster_id" \
      -c "$dir/server.properties" >"$dir/logs/format.log" 2>&1; then
      cat "$dir/logs/format.log" >&2
      die "formatting KRaft storage in $dir/data failed"
    fi
    printf '%s\n' "$cluster_id" >"$dir/cluster-id"
  fi

  local -a heap_opts jvm_opts
  read -r -a heap_opts <<<"$BROKER_HEAP_OPTS"
  read -r -a jvm_opts <<<"$BROKER_JVM_OPTS"
  # Readiness is read from server.log: keep the previous run's log aside.
  local f
  for f in server.log stdout.log; do
    if [[ -f "$dir/logs/$f" ]]; then
      mv -f "$dir/logs/$f" "$dir/logs/$f.prev"
    fi
  done
  local t0=$SECONDS
  "$java" "${heap_opts[@]}" "${jvm_opts[@]}" "${log_opts[@]}" \
    -cp "$LIBS/*" "$CLASS_BROKER" "$dir/server.properties" \
    </dev/null >"$dir/logs/stdout.log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$dir/pid"
  if ! wait_ready "$dir" "$pid" "$port" "$sport"; then
    cmd_stop "$dir" >/dev/null 2>&1 || log "could not stop the failed broker (pid $pid)"
    die "Kafka broker failed to start (logs in $dir/logs)"
  fi
  log "Kafka $KAFKA_VERSION ready on 127.0.0.1:$port (pid $pid, dir $dir, $((SECONDS - t0))s)"
}

# signal_broker SIG DIR PID: a failed kill is only fine if the broker has
# exited by itself in the meantime.
signal_broker() {
  if ! kill "-$1" "$3" 2>/dev/null && [[ -n "$(broker_pid "$2")" ]]; then
    die "cannot send SIG$1 to broker pid $3"
  fi
}

cmd_stop() {
  local dir pid
  dir="$(instance_dir "${1:-}")"
  pid="$(broker_pid "$dir")"
  if [[ -z "$pid" ]]; then
    rm -f "$dir/pid"
    log "no broker running from $dir"
    return 0
  fi
  signal_broker TERM "$dir" "$pid"
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while [[ -n "$(broker_pid "$dir")" ]] && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if [[ -n "$(broker_pid "$dir")" ]]; then
    log "broker (pid $pid) still running after ${STOP_TIMEOUT}s; sending SIGKILL"
    signal_broker KILL "$dir" "$pid"
    deadline=$((SECONDS + 10))
    while [[ -n "$(broker_pid "$dir")" ]] && ((SECONDS < deadline)); do
      sleep 0.2
    done
    [[ -z "$(broker_pid "$dir")" ]] || die "could not kill broker pid $pid"
  fi
  rm -f "$dir/pid"
  log "stopped broker (pid $pid) from $dir"
}

cmd_status() {
  local dir pid
  dir="$(instance_dir "${1:-}")"
  pid="$(broker_pid "$dir")"
  if [[ -n "$pid" ]]; then
    printf 'running pid=%s dir=%s\n' "$pid" "$dir"
  else
    printf 'stopped dir=%s\n' "$dir"
    return 1
  fi
}

# Single-quote a string for the shell.
shell_quote() {
  printf "'%s'" "${1//\'/\'\\\'\'}"
}

cmd_env() {
  local dir port="$DEFAULT_PORT" cport="$DEFAULT_CONTROLLER_PORT" sport=""
  dir="$(instance_dir "${1:-}")"
  if [[ -f "$dir/instance.env" ]]; then
    port="$(sed -n 's/^port=//p' "$dir/instance.env")"
    cport="$(sed -n 's/^controller_port=//p' "$dir/instance.env")"
    sport="$(sed -n 's/^sasl_port=//p' "$dir/instance.env")"
  fi
  printf 'export WEIR_KAFKA_BOOTSTRAP=%s\n' "127.0.0.1:$port"
  printf 'export WEIR_KAFKA_CONTROLLER=%s\n' "127.0.0.1:$cport"
  printf 'export WEIR_KAFKA_CLASSPATH=%s\n' "$(shell_quote "$LIBS/*")"
  printf 'export WEIR_KAFKA_VERSION=%s\n' "$KAFKA_VERSION"
  printf 'export WEIR_KAFKA_DIR=%s\n' "$(shell_quote "$dir")"
  printf 'export WEIR_KAFKA_HARNESS=%s\n' "$(shell_quote "$HARNESS_SELF")"
  if [[ -n "$sport" ]]; then
    printf 'export WEIR_KAFKA_SASL_BOOTSTRAP=%s\n' "127.0.0.1:$sport"
  fi
}

cmd_logs() {
  local dir
  dir="$(instance_dir "${1:-}")"
  [[ -f "$dir/logs/server.log" ]] || die "no log at $dir/logs/server.log"
  tail -n 100 "$dir/logs/server.log"
}

cmd_reset() {
  local dir
  dir="$(instance_dir "${1:-}")"
  cmd_stop "$dir"
  rm -rf "$dir"
  log "removed $dir"
}

main() {
  local cmd="${1:-help}"
  (($# == 0)) || shift
  case "$cmd" in
  install) cmd_install ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  env) cmd_env "$@" ;;
  logs) cmd_logs "$@" ;;
  reset) cmd_reset "$@" ;;
  version) printf '%s\n' "$KAFKA_VERSION" ;;
  classpath) printf '%s\n' "$LIBS/*" ;;
  console-producer) run_tool "$CLASS_CONSOLE_PRODUCER" "$@" ;;
  console-consumer) run_tool "$CLASS_CONSOLE_CONSUMER" "$@" ;;
  topics) run_tool "$CLASS_TOPICS" "$@" ;;
  consumer-groups) run_tool "$CLASS_CONSUMER_GROUPS" "$@" ;;
  broker-api-versions) run_tool "$CLASS_BROKER_API_VERSIONS" "$@" ;;
  configs) run_tool "$CLASS_CONFIGS" "$@" ;;
  acls) run_tool "$CLASS_ACLS" "$@" ;;
  get-offsets) run_tool "$CLASS_GET_OFFSETS" "$@" ;;
  delete-records) run_tool "$CLASS_DELETE_RECORDS" "$@" ;;
  metadata-quorum) run_tool "$CLASS_METADATA_QUORUM" "$@" ;;
  producer-perf-test) run_perf_tool "$CLASS_PRODUCER_PERF" "$@" ;;
  consumer-perf-test) run_perf_tool "$CLASS_CONSUMER_PERF" "$@" ;;
  storage) run_tool "$CLASS_STORAGE" "$@" ;;
  dump-log-segments) run_tool "$CLASS_DUMP_LOG" "$@" ;;
  run-class)
    (($# > 0)) || die "run-class needs a class name"
    run_tool "$@"
    ;;
  help | -h | --help) usage ;;
  *)
    usage >&2
    die "unknown command: $cmd"
    ;;
  esac
}

main "$@"
