#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sourced by ci/build-{openssl,rdkafka,curl}-min.sh: fetches and unpacks the
# Debian source package of one exact version (Debian's patches applied by
# dpkg-source) through a private deb-src copy of the system's own apt sources,
# so the system's apt state is untouched.
# Usage: debsrc_fetch TAG SOURCE-PACKAGE VERSION BINARY-PACKAGE WORKDIR DEST
#   TAG prefixes messages; BINARY-PACKAGE names the package to upgrade when the
#   archive has moved past the installed version.

debsrc_fetch() {
  local tag=$1 src=$2 version=$3 bin=$4 work=$5 dest=$6 f dsc
  mkdir -p "$work/parts" "$work/lists/partial" "$work/cache/archives/partial" "$work/src"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    sed 's/^Types: deb$/Types: deb-src/' "$f" >"$work/parts/$(basename "$f")"
  done
  if [ -s /etc/apt/sources.list ]; then
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$work/parts/list.list"
  fi
  local apt_opts=(
    -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/parts"
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
    -o "Debug::NoLocking=1" -o "APT::Sandbox::User=$(id -un)"
  )
  echo "$tag: fetching the source of $src $version"
  apt-get "${apt_opts[@]}" -qq update
  if ! (cd "$work/src" && apt-get "${apt_opts[@]}" -qq source --download-only "$src=$version"); then
    # Each suite serves only its current version, and a security suite's
    # newest upload may lack its source for a while: try every version the
    # deb-src lists name, newest first. The libraries built from it are
    # self-contained (own headers, static), so the installed $bin only picks
    # the first choice.
    local v ok=""
    for v in $(apt-cache "${apt_opts[@]}" showsrc "$src" 2>/dev/null |
      awk '/^Version:/ { print $2 }' | sort -u -r -V); do
      [ "$v" = "$version" ] && continue
      rm -f "$work"/src/*
      if (cd "$work/src" && apt-get "${apt_opts[@]}" -qq source --download-only "$src=$v"); then
        echo "$tag: no source for $src $version; built from $src $v instead" >&2
        ok=$v
        break
      fi
    done
    if [ -z "$ok" ]; then
      echo "$tag: no source for $src $version nor any other version the archive lists;" >&2
      echo "  apt-get install $bin=<a version with source> (and its -dev package)   (then retry)" >&2
      return 1
    fi
  fi
  dsc=$(ls "$work"/src/"${src}"_*.dsc)
  dpkg-source --no-check -x "$dsc" "$dest" >/dev/null
}
