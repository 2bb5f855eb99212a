#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the minimal, static librdkafka that weir-operator links for its topic
# admin (operator/src/op_topic.c; docs/architecture.md, "Dependencies"): the
# Debian source package of the SAME version as the installed librdkafka1
# (Debian's patches applied, Debian's hardening flags), against the minimal
# OpenSSL of ci/build-openssl-min.sh (built first), with SSL and the SASL
# mechanisms librdkafka builds without Cyrus (PLAIN, SCRAM-SHA-256/512,
# OAUTHBEARER) and nothing else: no zstd, zlib, external lz4 (the built-in
# copy stays), Cyrus SASL/GSSAPI, libcurl (so no OIDC token fetching) or
# syslog. Installed once into ~/.cache/weir/rdkafka-<deb version>-min-<hash of
# the recipe and of the OpenSSL prefix>/ (lib/librdkafka.a, include/librdkafka/),
# under a lock, idempotently.
# Usage: ci/build-rdkafka-min.sh [--print-prefix]
#   --print-prefix  print the install directory and exit (nothing is downloaded)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

cache=${WEIR_CACHE_DIR:-$HOME/.cache/weir}
version=$(dpkg-query -W -f='${Version}' librdkafka1 2>/dev/null || true)
if [ -z "$version" ]; then
  echo "build-rdkafka-min: librdkafka1 is not installed; cannot pick the source version" >&2
  exit 1
fi
ossl=$("$here/build-openssl-min.sh" --print-prefix)

# The recipe: every flag that shapes the library. Its hash names the directory,
# so changing a flag (or the OpenSSL it links) builds a new one next to the old.
conf_flags=(
  --enable-static --enable-ssl
  --disable-zstd --disable-zlib --disable-lz4-ext --disable-gssapi
  --disable-curl --disable-syslog
)
extra_cflags=(-ffunction-sections -fdata-sections)
recipe_rev=1 # bump when the steps below change what gets built
hash=$(printf '%s\n' "$recipe_rev" "$ossl" "${conf_flags[@]}" "${extra_cflags[@]}" | sha256sum | cut -c1-12)
prefix=$cache/rdkafka-$version-min-$hash

if [ "${1:-}" = "--print-prefix" ]; then
  echo "$prefix"
  exit 0
fi
if [ -e "$prefix/.complete" ]; then
  echo "build-rdkafka-min: $prefix is complete"
  exit 0
fi
"$here/build-openssl-min.sh"

mkdir -p "$cache"
exec 9>"$cache/rdkafka-min.lock"
flock 9
if [ -e "$prefix/.complete" ]; then # built by whoever held the lock
  echo "build-rdkafka-min: $prefix is complete"
  exit 0
fi

work=$(mktemp -d "$cache/rdkafka-min-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck source=ci/debsrc.sh
. "$here/debsrc.sh"
debsrc_fetch build-rdkafka-min librdkafka "$version" librdkafka1 "$work" "$work/rdkafka"
cd "$work/rdkafka"
# librdkafka 2.0.2 uses OpenSSL's ENGINE API whenever OpenSSL >= 1.1; the
# minimal OpenSSL has none (no-engine), so ssl.engine.location is left out
# as later librdkafka releases do under OPENSSL_NO_ENGINE.
sed -i 's/^#if WITH_SSL && OPENSSL_VERSION_NUMBER >= 0x10100000 && *\\$/&\n    !defined(OPENSSL_NO_ENGINE) \&\& \\/' src/rdkafka_conf.h
grep -q 'defined(OPENSSL_NO_ENGINE)' src/rdkafka_conf.h

# Debian's flags (debian/rules: hardening=+bindnow, buildflags exported).
export DEB_BUILD_MAINT_OPTIONS=hardening=+bindnow
cflags="$(dpkg-buildflags --get CFLAGS) ${extra_cflags[*]}"
cppflags="$(dpkg-buildflags --get CPPFLAGS)"
ldflags="$(dpkg-buildflags --get LDFLAGS)"
echo "build-rdkafka-min: configuring and building into $prefix"
export PKG_CONFIG_PATH=$ossl/lib/pkgconfig
if ! CFLAGS="$cflags" CPPFLAGS="$cppflags -I$ossl/include" LDFLAGS="$ldflags -L$ossl/lib" \
  ./configure --prefix="$prefix" "${conf_flags[@]}" >"$work/configure.log" 2>&1; then
  tail -30 "$work/configure.log" >&2
  exit 1
fi
# The build must have found this OpenSSL and nothing it was told to drop.
for want in 'WITH_SSL 1' 'WITH_SASL_SCRAM 1' 'WITH_SASL_OAUTHBEARER 1'; do
  grep -q "#define $want" config.h || { echo "build-rdkafka-min: config.h lacks $want" >&2; exit 1; }
done
for unwanted in WITH_ZSTD WITH_ZLIB WITH_LZ4_EXT WITH_SASL_CYRUS WITH_CURL; do
  if grep -q "#define $unwanted 1" config.h; then
    echo "build-rdkafka-min: config.h has $unwanted" >&2
    exit 1
  fi
done
dest=$work/dest
if ! { nice make -C src -j "$(nproc)" librdkafka.a &&
  install -D -m 644 src/librdkafka.a "$dest$prefix/lib/librdkafka.a" &&
  install -D -m 644 src/rdkafka.h "$dest$prefix/include/librdkafka/rdkafka.h" &&
  install -D -m 644 src/rdkafka_mock.h "$dest$prefix/include/librdkafka/rdkafka_mock.h"; } >"$work/make.log" 2>&1; then
  tail -30 "$work/make.log" >&2
  exit 1
fi
grep -E '^#define (WITH|ENABLE)_' config.h >"$dest$prefix/configure-summary.txt"
printf '%s\n' "${conf_flags[@]}" >"$dest$prefix/configure-flags.txt"
rm -rf "$prefix"
mv "$dest$prefix" "$prefix"
touch "$prefix/.complete"
echo "build-rdkafka-min: $prefix is complete"
