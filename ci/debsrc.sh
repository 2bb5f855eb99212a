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
    # Each suite serves only its current version: an installed package older
    # than the archive's has no source to fetch.
    echo "$tag: no source for $src $version; if the archive has another one, run" >&2
    echo "  apt-get install $bin=<that version> (and its -dev package)   (then retry)" >&2
    return 1
  fi
  dsc=$(ls "$work"/src/"${src}"_*.dsc)
  dpkg-source --no-check -x "$dsc" "$dest" >/dev/null
}
