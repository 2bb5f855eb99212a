#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Recovery of damaged segments: known records are written and the store is
# stopped; each trial damages a copy of the data dir (tail truncated, tail
# zeroed, or a byte of the last batch flipped), starts the store on it and
# checks that exactly the batches before the damage are served, that the store
# warns, and that new records continue at the first lost offset. One more
# trial damages a non-tail segment: the store must refuse that partition (or
# refuse to start) and say so, never serve the bad batch.
# WEIR_STORE_TARGET=kafka runs the tail trials against Apache Kafka.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly KAFKA="$ROOT/tests/harness/kafka.sh"
readonly STORE="$ROOT/tests/harness/store.sh"
readonly KCAT_HARNESS="$ROOT/tests/harness/kcat.sh"
readonly TARGET="${WEIR_STORE_TARGET:-weir}"
readonly BUILD_DIR="${WEIR_BUILD_DIR:-$ROOT/build}"
readonly STORE_BIN="${WEIR_STORE_BIN:-$BUILD_DIR/dataplane/weir-dataplane}"
readonly KCLIENT_BIN="${WEIR_KCLIENT:-$BUILD_DIR/tests/kclient}"
readonly PORT="${WEIR_STORE_CORRUPTION_PORT:-19350}"
readonly WORKERS="${WEIR_STORE_CORRUPTION_WORKERS:-2}"
readonly TRIALS="${WEIR_CORRUPTION_TRIALS:-10}"
readonly SEED="${WEIR_CORRUPTION_SEED:-$$}"
readonly SEGMENT_BYTES="${WEIR_CORRUPTION_SEGMENT_BYTES:-65536}"
readonly BOOT="127.0.0.1:$PORT"
readonly TOPIC=store-corrupt         # 1 partition, damaged
readonly CONTROL=store-corrupt-ctl   # never damaged: must stay served
readonly VALUE_BYTES=200
readonly BATCH_RECORDS=5 # batch.num.messages: many small batches

if [[ "$TARGET" == weir && ! -x "$STORE_BIN" ]]; then
  echo "store_corruption: SKIP: no store binary at $STORE_BIN" \
    "(build weir-dataplane, or set WEIR_BUILD_DIR/WEIR_STORE_BIN;" \
    "WEIR_STORE_TARGET=kafka runs the tail trials against Apache Kafka)"
  exit 77
fi
export WEIR_STORE_TARGET="$TARGET"

SMOKE_NAME=store_corruption
# shellcheck source=tests/harness/kafka/smoke_lib.sh
source "$ROOT/tests/harness/kafka/smoke_lib.sh" # WORK, check/pass/fail, traps
readonly STORE_DIR="$WORK/store"
current_dir="$STORE_DIR"
skipped=0
store_args=()

corruption_cleanup() {
  local rc=$?
  "$STORE" kill "$current_dir" >/dev/null 2>&1 || :
  "$STORE" kill "$STORE_DIR" >/dev/null 2>&1 || :
  ((skipped == 0)) || echo "store_corruption: $skipped sub-checks skipped (reasons above)"
  # smoke_cleanup reads the exit status from $?: hand it over. It exits.
  (exit "$rc") || smoke_cleanup
  smoke_cleanup
}
trap corruption_cleanup EXIT

skip() {
  skipped=$((skipped + 1))
  printf 'skip %s: %s\n' "$1" "$2"
}

kclient() { timeout 120 "$KCLIENT_BIN" "$1" -b "$BOOT" -q "${@:2}"; }

start_store() {
  "$STORE" start "$1" "$PORT" "$WORKERS" "${store_args[@]}" >"$1.harness.log" 2>&1
}
stop_store() { "$STORE" stop "$1" >"$1.harness.log" 2>&1; }

# The store's log: ours, or Kafka's server.log.
store_log() {
  if [[ "$TARGET" == kafka ]]; then
    printf '%s\n' "$1/logs/server.log"
  else
    printf '%s\n' "$1/store.log"
  fi
}

# ------------------------------------------------------ segment parsing --

# be_hex FILE POS N: N bytes at POS as one hex string ("" past the end).
be_hex() {
  od -An -v -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'
}

# scan_batches FILE: one line "pos base_offset batch_length last_offset" per
# batch of a segment, in the Kafka log format: baseOffset int64, batchLength
# int32, partitionLeaderEpoch int32, magic int8 (2), crc uint32, attributes
# int16, lastOffsetDelta int32; a batch takes 12 + batchLength bytes. Stops
# at the first zero, implausible or incomplete header (the written end).
scan_batches() {
  local file="$1" size pos=0 hex base len magic delta
  size="$(stat -c %s "$file")"
  while ((pos + 27 <= size)); do
    hex="$(be_hex "$file" "$pos" 27)"
    ((${#hex} == 54)) || break
    base=$((16#${hex:0:16}))
    len=$((16#${hex:16:8}))
    magic=$((16#${hex:32:2}))
    delta=$((16#${hex:46:8}))
    ((base >= 0 && len >= 49 && magic == 2 && pos + 12 + len <= size)) || break
    printf '%d %d %d %d\n' "$pos" "$base" "$len" $((base + delta))
    pos=$((pos + 12 + len))
  done
}

segments_of() {
  find "$1/data/$TOPIC-0" -maxdepth 1 -name '[0-9]*.log' | sort
}

# ---------------------------------------------------------------- setup --

# Enough records for 3.5 segments when the segment size is small, so that
# the tail segment holds many batches and there are non-tail segments.
record_count() {
  if ((multi_segment)); then
    echo $((SEGMENT_BYTES * 7 / 2 / (VALUE_BYTES + 40)))
  else
    echo 400
  fi
}

setup() {
  local n
  n="$(record_count)"
  if [[ "$TARGET" == kafka ]]; then
    kclient create -t "$TOPIC" -p 1 -c "segment.bytes=$SEGMENT_BYTES" || return 1
  else
    kclient create -t "$TOPIC" -p 1 || return 1
  fi
  kclient create -t "$CONTROL" -p 1 || return 1
  kclient produce -t "$TOPIC" -n "$n" --acks all --size "$VALUE_BYTES" --key-prefix r \
    --rate 5000 --linger-ms 1 -X "batch.num.messages=$BATCH_RECORDS" || return 1
  kclient produce -t "$CONTROL" -n 50 --acks all --key-prefix ctl || return 1
  kclient consume -t "$TOPIC" --expect "$n" >"$WORK/ref.txt" || return 1
  kclient consume -t "$CONTROL" --expect 50 >"$WORK/ctl.txt" || return 1
  sort -k1,1n -k2,2n -o "$WORK/ref.txt" "$WORK/ref.txt"
  echo "$n records in $TOPIC"
}

# After the clean stop: the segments parse as whole batches covering exactly
# the offsets that were served.
segments_parse() {
  local seg next=0 first last
  segments_of "$STORE_DIR" >"$WORK/segments.txt"
  [[ -s "$WORK/segments.txt" ]] || {
    echo "no segments in $STORE_DIR/data/$TOPIC-0"
    return 1
  }
  while read -r seg; do
    scan_batches "$seg" >"$seg.batches"
    [[ -s "$seg.batches" ]] || continue
    first="$(head -n 1 "$seg.batches" | cut -d' ' -f2)"
    last="$(tail -n 1 "$seg.batches" | cut -d' ' -f4)"
    ((first == next)) || {
      echo "$seg: first batch at offset $first, expected $next"
      return 1
    }
    next=$((last + 1))
    printf '%s: %d batches, offsets %d..%d\n' "$(basename "$seg")" \
      "$(wc -l <"$seg.batches")" "$first" "$last"
  done <"$WORK/segments.txt"
  ((next == $(wc -l <"$WORK/ref.txt"))) || {
    echo "batches end at offset $next, $(wc -l <"$WORK/ref.txt") records were served"
    return 1
  }
}

# ---------------------------------------------------------------- trials --

# rand_between VAR LO HI: a random integer in [LO, HI] into VAR. Not through
# $(...): a subshell's draws would not advance this shell's generator.
rand_between() {
  printf -v "$1" '%d' $(($2 + (RANDOM * 32768 + RANDOM) % ($3 - $2 + 1)))
}

# flip_bit FILE POS: flips one random bit of the byte at POS in place.
flip_bit() {
  local old bit
  old=$((16#$(be_hex "$1" "$2" 1)))
  rand_between bit 0 7
  printf '%b' "\\$(printf '%03o' $((old ^ (1 << bit))))" |
    dd of="$1" bs=1 seek="$2" count=1 conv=notrunc status=none
}

# Kafka recovers only unflushed segments after an unclean shutdown: make
# the copy look unclean with nothing flushed, so that it rescans the log.
kafka_force_recovery() {
  local data="$1/data"
  rm -f "$data/.kafka_cleanshutdown"
  if [[ -f "$data/recovery-point-offset-checkpoint" ]]; then
    sed -i -E "s/^($TOPIC 0) [0-9]+$/\1 0/" "$data/recovery-point-offset-checkpoint"
  fi
}

# damage_tail DIR MODE: damages the tail segment of the copy in DIR; prints
# "base_offset description" where base_offset is the first offset lost.
damage_tail() {
  local dir="$1" mode="$2" tail_seg batches nb i pos base len last p end lo
  tail_seg="$(segments_of "$dir" | tail -n 1)"
  # Batches of the original tail (the copy's name is the same).
  batches="$STORE_DIR/data/$TOPIC-0/$(basename "$tail_seg").batches"
  nb="$(wc -l <"$batches")"
  ((nb > 0)) || return 1
  if [[ "$mode" == flip ]]; then
    i=$((nb - 1))
  else
    rand_between i 0 $((nb - 1))
  fi
  read -r pos base len last < <(sed -n "$((i + 1))p" "$batches")
  end=$((pos + 12 + len))
  case "$mode" in
  truncate | zero)
    # Inside the batch and past its length field, so the store can tell a
    # batch was there: a cut inside the first 12 bytes can look like the
    # clean end of a preallocated segment.
    # And at or before the batch's last non-zero byte: cutting or zeroing
    # only trailing zero bytes (a batch often ends with a 0 headers count)
    # destroys nothing, since recovery reads a short preallocated file as
    # zeros, and the batch is rightly still valid.
    local nz
    nz="$(python3 -c 'import sys; f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2])); b=f.read(int(sys.argv[3])); print(int(sys.argv[2]) + len(b.rstrip(b"\0")) - 1)' \
      "$tail_seg" "$pos" $((end - pos)))"
    rand_between p $((pos + 12)) "$nz"
    if [[ "$mode" == truncate ]]; then
      truncate -s "$p" "$tail_seg"
    else
      local data_end
      data_end="$(tail -n 1 "$batches" | awk '{ print $1 + 12 + $3 }')"
      dd if=/dev/zero of="$tail_seg" bs=1 seek="$p" count=$((data_end - p)) conv=notrunc \
        status=none
    fi
    ;;
  flip)
    # Any byte but partitionLeaderEpoch (batch bytes 12-15), which the
    # format leaves outside the CRC: a flip there is undetectable by design.
    # Kafka does not check baseOffset continuity at recovery either, so
    # against Kafka only the magic byte, the CRC and CRC-covered bytes.
    # Half of the flips land in the 61-byte header (offsets, length, magic,
    # CRC, attributes, lastOffsetDelta...), where they are rare otherwise.
    local hi=$((end - 1)) coin
    lo="$pos"
    [[ "$TARGET" != kafka ]] || lo=$((pos + 16))
    rand_between coin 0 1
    ((coin == 0)) || hi=$((pos + 60))
    rand_between p "$lo" "$hi"
    if ((p >= pos + 12 && p < pos + 16)); then
      p=$((pos + 16))
    fi
    flip_bit "$tail_seg" "$p"
    ;;
  esac
  printf '%d %s batch %d/%d (offsets %d..%d, file bytes %d..%d) at byte %d (%s) of %s\n' \
    "$base" "$mode" $((i + 1)) "$nb" "$base" "$last" "$pos" $((end - 1)) "$p" \
    "$(batch_field $((p - pos)))" "$(basename "$tail_seg")"
}

# batch_field REL: the record batch v2 field at byte REL of a batch.
batch_field() {
  local r="$1"
  if ((r < 8)); then echo baseOffset
  elif ((r < 12)); then echo batchLength
  elif ((r < 16)); then echo partitionLeaderEpoch
  elif ((r < 17)); then echo magic
  elif ((r < 21)); then echo crc
  elif ((r < 23)); then echo attributes
  elif ((r < 27)); then echo lastOffsetDelta
  elif ((r < 35)); then echo baseTimestamp
  elif ((r < 43)); then echo maxTimestamp
  elif ((r < 51)); then echo producerId
  elif ((r < 53)); then echo producerEpoch
  elif ((r < 57)); then echo baseSequence
  elif ((r < 61)); then echo recordCount
  else echo records; fi
}

# expect_served FILE FIRST_LOST: FILE (sorted tuples) is exactly the
# reference's records below FIRST_LOST.
expect_served() {
  diff <(awk -v n="$2" '$2 < n' "$WORK/ref.txt") "$1"
}

warned() {
  local log
  log="$(store_log "$1")"
  if [[ "$TARGET" == kafka ]]; then
    grep -E 'WARN|ERROR' "$log" | grep -iE 'invalid|corrupt|truncat' | head -n 3
  else
    grep -E '"level":"(warn|error)"' "$log" | grep -iE 'trunc|torn|corrupt|crc' | head -n 3
  fi | grep -q .
}

tail_trial() {
  local k="$1" mode="$2" dir="$WORK/trial-$1" info first_lost n_more=20
  current_dir="$dir"
  mkdir -p "$dir"
  cp -a --sparse=always "$STORE_DIR/data" "$dir/data"
  [[ "$TARGET" != kafka ]] || kafka_force_recovery "$dir"
  # Not $(...): the damage draws random numbers, which must advance.
  damage_tail "$dir" "$mode" >"$dir/damage.txt" || {
    fail "trial $k: damage the tail segment"
    return
  }
  info="$(cat "$dir/damage.txt")"
  first_lost="${info%% *}"
  echo "trial $k: ${info#* }"
  if ! start_store "$dir"; then
    fail "trial $k: store starts on the damaged copy" "$dir.harness.log"
    return
  fi
  if kclient consume -t "$TOPIC" --timeout-ms 30000 >"$dir/got.txt" 2>"$dir/got.err" &&
    sort -k1,1n -k2,2n -o "$dir/got.txt" "$dir/got.txt" &&
    expect_served "$dir/got.txt" "$first_lost" >"$dir/diff.txt" 2>&1; then
    pass "trial $k ($mode): exactly offsets 0..$((first_lost - 1)) served, intact"
  else
    cat "$dir/got.err" >>"$dir/diff.txt"
    fail "trial $k ($mode): exactly offsets 0..$((first_lost - 1)) served, intact" "$dir/diff.txt"
  fi
  if warned "$dir"; then
    pass "trial $k ($mode): the store logged the truncation"
  else
    fail "trial $k ($mode): the store logged the truncation" "$(store_log "$dir")"
  fi
  # New records continue right after the last valid offset.
  if kclient produce -t "$TOPIC" -n "$n_more" --start 900000 --key-prefix new --acks all \
    --acked-log "$dir/more.acked" >"$dir/more.err" 2>&1 &&
    diff <(seq "$first_lost" $((first_lost + n_more - 1))) \
      <(cut -d' ' -f3 "$dir/more.acked") >>"$dir/more.err" 2>&1 &&
    kclient consume -t "$TOPIC" --expect $((first_lost + n_more)) >"$dir/after.txt" \
      2>>"$dir/more.err" &&
    diff <(awk -v n="$first_lost" '$2 < n' "$WORK/ref.txt") \
      <(sort -k1,1n -k2,2n "$dir/after.txt" | head -n "$first_lost") >>"$dir/more.err" 2>&1; then
    pass "trial $k ($mode): new records get offsets $first_lost.. and old ones stay"
  else
    fail "trial $k ($mode): new records get offsets $first_lost.. and old ones stay" \
      "$dir/more.err"
  fi
  if stop_store "$dir"; then
    ((failed > 0)) || rm -rf "$dir"
  else
    fail "trial $k: store stops cleanly" "$dir.harness.log"
  fi
  current_dir="$STORE_DIR"
}

# Damage in a segment that is not the tail: a CRC-covered byte of a batch in
# the middle of the log. Everything after it was acknowledged, so silently
# truncating there would lose acknowledged data.
middle_trial() {
  local dir="$WORK/trial-middle" seg batches nb i pos base len last p
  local -a segs
  current_dir="$dir"
  mkdir -p "$dir"
  cp -a --sparse=always "$STORE_DIR/data" "$dir/data"
  mapfile -t segs < <(segments_of "$dir")
  rand_between i 0 $((${#segs[@]} - 2))
  seg="${segs[$i]}"
  batches="$STORE_DIR/data/$TOPIC-0/$(basename "$seg").batches"
  nb="$(wc -l <"$batches")"
  rand_between i 0 $((nb - 1))
  read -r pos base len last < <(sed -n "$((i + 1))p" "$batches")
  # A CRC-covered byte (attributes onwards): detectable whatever the policy.
  rand_between p $((pos + 21)) $((pos + 11 + len))
  flip_bit "$seg" "$p"
  echo "non-tail trial: flipped byte $p ($(batch_field $((p - pos)))) of $(basename "$seg")" \
    "(batch $((i + 1))/$nb," \
    "offsets $base..$last); the log continues to offset $(($(wc -l <"$WORK/ref.txt") - 1))"
  local log started=0
  log="$(store_log "$dir")"
  if start_store "$dir"; then
    started=1
    echo "the store started on the damaged copy"
  else
    # store.sh records the exit status of a store that died during start-up.
    local st
    st="$(cat "$dir/store.exit" 2>/dev/null || echo unknown)"
    # 65 (EX_DATAERR) is the documented refusal; a crash (134, 139) is not.
    if [[ "$st" == 65 ]]; then
      pass "non-tail damage: the store refuses to start (exit status 65)"
    else
      fail "non-tail damage: the store refuses to start with status 65 (got $st)" \
        "$dir.harness.log"
    fi
  fi
  if grep -E '"level":"(warn|error)"' "$log" |
    grep -iE 'corrupt|crc|torn|invalid|damage|EBADMSG|bad message|offline' >"$dir/errors.txt"; then
    pass "non-tail damage: the store reports it ($(head -c 200 "$dir/errors.txt"))"
  else
    fail "non-tail damage: the store reports it (error or warning naming the damage)" "$log"
  fi
  if ((started)); then
    # Whatever it serves of the partition must be intact and end before the
    # bad batch.
    kclient consume -t "$TOPIC" --timeout-ms 15000 >"$dir/got.txt" 2>"$dir/got.err" || :
    sort -k1,1n -k2,2n -o "$dir/got.txt" "$dir/got.txt"
    if awk -v b="$base" '$2 >= b { print "served offset " $2 " at or after the bad batch (" b ")"; bad = 1 }
      END { exit bad }' "$dir/got.txt" >"$dir/check.txt" &&
      diff <(awk -v n="$base" '$2 < n' "$WORK/ref.txt" | head -n "$(wc -l <"$dir/got.txt")") \
        "$dir/got.txt" >>"$dir/check.txt"; then
      pass "non-tail damage: nothing at or after the bad batch is served ($(wc -l <"$dir/got.txt") records before it)"
    else
      cat "$dir/got.err" >>"$dir/check.txt"
      fail "non-tail damage: nothing at or after the bad batch is served" "$dir/check.txt"
    fi
    check "non-tail damage: other topics are still served" control_served
    if stop_store "$dir"; then
      :
    else
      fail "non-tail trial: store stops cleanly" "$dir.harness.log"
    fi
  fi
  current_dir="$STORE_DIR"
}

control_served() {
  kclient consume -t "$CONTROL" --expect 50 --timeout-ms 15000 >"$WORK/ctl-after.txt" || return 1
  diff <(sort -k1,1n -k2,2n "$WORK/ctl.txt") <(sort -k1,1n -k2,2n "$WORK/ctl-after.txt")
}

main() {
  local t0=$SECONDS k mode
  local -a modes=(truncate zero flip)
  RANDOM="$SEED"
  multi_segment=0
  if [[ "$TARGET" == kafka ]]; then
    multi_segment=1
    echo "store_corruption: Kafka target: segment.bytes=$SEGMENT_BYTES as a topic config"
  else
    multi_segment=1
    store_args=(--segment-bytes "$SEGMENT_BYTES")
  fi
  echo "store_corruption: target $TARGET on $BOOT, $TRIALS trials, seed $SEED, work dir $WORK"
  check "kcat installed" "$KCAT_HARNESS" install
  check "kclient built ($KCLIENT_BIN)" test -x "$KCLIENT_BIN"
  check "store starts ${store_args[*]}" start_store "$STORE_DIR"
  ((failed == 0)) || return 1
  check "produce and read back the reference records" setup
  check "store stops cleanly on SIGTERM (exit 0)" stop_store "$STORE_DIR"
  check "segments parse as whole batches matching the records" segments_parse
  ((failed == 0)) || return 1
  sed 's/^/     /' "$WORK/last.log"
  for ((k = 1; k <= TRIALS; k++)); do
    mode="${modes[$(((k - 1) % 3))]}"
    tail_trial "$k" "$mode"
  done
  if [[ "$TARGET" == kafka ]]; then
    skip "non-tail damage" "Kafka only rescans segments after its recovery point (it relies \
on replicas); refusing a damaged non-tail segment is a Weir contract"
  elif ((!multi_segment)); then
    skip "non-tail damage" "needs --segment-bytes for more than one segment"
  elif (($(wc -l <"$WORK/segments.txt") < 2)); then
    skip "non-tail damage" "only one segment was written"
  else
    middle_trial
  fi
  echo "store_corruption: wall time $((SECONDS - t0))s (seed $SEED)"
  ((failed == 0))
}

main "$@"
