#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the minimal, static OpenSSL (libssl.a, libcrypto.a) that weir-operator
# links, and that ci/build-curl-min.sh and ci/build-rdkafka-min.sh build against
# (docs/architecture.md, "Dependencies"): the Debian source package of the SAME
# version as the installed libssl3 (Debian's patches and its "debian-<arch>"
# target, i.e. OPENSSL_TLS_SECURITY_LEVEL=2), with the runtime paths of Debian's
# (--openssldir=/usr/lib/ssl: openssl.cnf, certs), and only what a TLS 1.2/1.3
# client with RSA/ECDSA certificates, SCRAM (HMAC, PBKDF2) and PEM/PKCS#12
# (PBES2/AES) needs: no shared library, no loadable modules or engines (no
# dlopen), no legacy provider, no TLS < 1.2, no DTLS, no CMS/TS/CT/OCSP/CMP,
# none of the legacy or national ciphers and digests (the list is conf_flags).
# Installed once into ~/.cache/weir/openssl-<deb version>-min-<hash of the
# recipe>/ (lib/libssl.a, lib/libcrypto.a, include/openssl/, lib/pkgconfig/),
# under a lock, idempotently.
# Usage: ci/build-openssl-min.sh [--print-prefix]
#   --print-prefix  print the install directory and exit (nothing is downloaded)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

cache=${WEIR_CACHE_DIR:-$HOME/.cache/weir}
version=$(dpkg-query -W -f='${Version}' libssl3 2>/dev/null || true)
if [ -z "$version" ]; then
  echo "build-openssl-min: libssl3 is not installed; cannot pick the source version" >&2
  exit 1
fi

# Debian's own Configure target for this machine (debian-amd64, debian-arm64,
# ...: its patches define one per architecture).
arch=$(dpkg --print-architecture)

# The recipe: every flag that shapes the library. Its hash names the directory,
# so changing a flag builds a new one next to the old.
conf_flags=(
  "debian-$arch" --openssldir=/usr/lib/ssl --libdir=lib
  no-shared no-module no-dso no-engine no-legacy no-async no-ui-console
  no-ssl3 no-ssl3-method no-tls1 no-tls1-method no-tls1_1 no-tls1_1-method
  no-dtls no-dgram no-sctp no-srtp no-psk no-srp no-nextprotoneg no-comp no-zlib
  no-cms no-ts no-ct no-ocsp no-cmp no-rfc3779
  no-aria no-bf no-blake2 no-camellia no-cast no-des no-idea no-md2 no-md4
  no-mdc2 no-ocb no-rc2 no-rc4 no-rc5 no-rmd160 no-scrypt no-seed no-siphash
  no-siv no-sm2 no-sm3 no-sm4 no-whirlpool no-dsa no-ec2m no-gost
  no-rdrand no-filenames no-tests
)
extra_cflags=(-ffunction-sections -fdata-sections)
recipe_rev=1 # bump when the steps below change what gets built
hash=$(printf '%s\n' "$recipe_rev" "${conf_flags[@]}" "${extra_cflags[@]}" | sha256sum | cut -c1-12)
prefix=$cache/openssl-$version-min-$hash

if [ "${1:-}" = "--print-prefix" ]; then
  echo "$prefix"
  exit 0
fi
if [ -e "$prefix/.complete" ]; then
  echo "build-openssl-min: $prefix is complete"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/openssl-min.lock"
flock 9
if [ -e "$prefix/.complete" ]; then # built by whoever held the lock
  echo "build-openssl-min: $prefix is complete"
  exit 0
fi

work=$(mktemp -d "$cache/openssl-min-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck source=ci/debsrc.sh
. "$here/debsrc.sh"
debsrc_fetch build-openssl-min openssl "$version" libssl3 "$work" "$work/openssl"
cd "$work/openssl"

# Debian's hardening flags (debian/rules: hardening=+all future=+lfs), plus
# one section per function and object so the final link can drop the unused.
export DEB_BUILD_MAINT_OPTIONS="hardening=+all future=+lfs"
cflags="$(dpkg-buildflags --get CFLAGS) ${extra_cflags[*]}"
cppflags="$(dpkg-buildflags --get CPPFLAGS)"
ldflags="$(dpkg-buildflags --get LDFLAGS)"
echo "build-openssl-min: configuring and building into $prefix"
if ! CFLAGS="$cflags" CPPFLAGS="$cppflags" LDFLAGS="$ldflags" \
  ./Configure --prefix="$prefix" "${conf_flags[@]}" >"$work/configure.log" 2>&1; then
  tail -30 "$work/configure.log" >&2
  exit 1
fi
dest=$work/dest
if ! { nice make -j "$(nproc)" build_libs && make install_dev DESTDIR="$dest"; } >"$work/make.log" 2>&1; then
  tail -30 "$work/make.log" >&2
  exit 1
fi
perl configdata.pm -o >"$dest$prefix/configure-summary.txt" 2>&1 || true
perl configdata.pm -d 2>/dev/null | sed -n '/^Enabled features:/,/^Config target attributes:/p' \
  >>"$dest$prefix/configure-summary.txt" || true
printf '%s\n' "${conf_flags[@]}" >"$dest$prefix/configure-flags.txt"
rm -rf "$prefix"
mv "$dest$prefix" "$prefix"
touch "$prefix/.complete"
echo "build-openssl-min: $prefix is complete"
