#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Weir test harness helper for kcat (librdkafka's command-line client, from
# Debian's `kcat` package): installs it with apt-get when missing and prints
# its version. Usage: tests/harness/kcat.sh [install|version|path]
set -euo pipefail

log() { printf 'kcat.sh: %s\n' "$*" >&2; }
die() { printf 'kcat.sh: error: %s\n' "$*" >&2; exit 1; }

kcat_bin() {
  if [[ -n "${WEIR_KCAT:-}" ]]; then
    [[ -x "$WEIR_KCAT" ]] || die "WEIR_KCAT=$WEIR_KCAT is not executable"
    printf '%s\n' "$WEIR_KCAT"
  else
    command -v kcat
  fi
}

apt_install() {
  local -a sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install $*"
    sudo_cmd=(sudo -n)
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
  log "installing Debian packages: $*"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$@" >&2
}

cmd_install() {
  if ! kcat_bin >/dev/null 2>&1; then
    apt_install kcat
    kcat_bin >/dev/null 2>&1 || die "kcat still not on PATH after apt-get install kcat"
  fi
  cmd_version
}

# e.g. "kcat 1.7.1 (librdkafka 2.0.2)"
cmd_version() {
  local bin out kver rver
  bin="$(kcat_bin)" || die "kcat is not installed (run: $0 install)"
  out="$("$bin" -V 2>&1)"
  kver="$(sed -nE 's/^Version ([^ ]+).*/\1/p' <<<"$out" | head -n 1)"
  rver="$(sed -nE 's/.*librdkafka ([0-9][^ ]*).*/\1/p' <<<"$out" | head -n 1)"
  [[ -n "$kver" ]] || die "cannot parse the output of '$bin -V': $out"
  printf 'kcat %s (librdkafka %s)\n' "$kver" "${rver:-unknown}"
}

main() {
  case "${1:-install}" in
  install) cmd_install ;;
  version) cmd_version ;;
  path) kcat_bin || die "kcat is not installed (run: $0 install)" ;;
  -h | --help | help) sed -n '2,6p' "$0" ;;
  *) die "unknown command: $1 (install|version|path)" ;;
  esac
}

main "$@"
