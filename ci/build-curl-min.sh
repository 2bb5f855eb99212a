#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the minimal, static libcurl that weir-operator links (docs/architecture.md,
# "Dependencies"): the Debian source package of the SAME version as the installed
# libcurl4 (Debian's patches applied, as Debian builds its OpenSSL flavour),
# configured for HTTP/1.1 + HTTP/2 (nghttp2) over HTTPS with the minimal static
# OpenSSL of ci/build-openssl-min.sh (built first) and nothing else: no other
# protocols, no LDAP, RTMP, SSH, GSS-API/Kerberos, IDN, PSL, brotli, zstd, zlib. Installed once into ~/.cache/weir/curl-<deb version>-min-<hash
# of the recipe>/ (lib/libcurl.a, include/curl/), under a lock, idempotently.
# Usage: ci/build-curl-min.sh [--print-prefix]
#   --print-prefix  print the install directory and exit (the top CMakeLists.txt
#                   uses it to find the build; nothing is downloaded)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

cache=${WEIR_CACHE_DIR:-$HOME/.cache/weir}
version=$(dpkg-query -W -f='${Version}' libcurl4 2>/dev/null || true)
if [ -z "$version" ]; then
  echo "build-curl-min: libcurl4 is not installed; cannot pick the source version" >&2
  exit 1
fi
ossl=$("$here/build-openssl-min.sh" --print-prefix)

# The recipe: every flag that shapes the library. Its hash names the directory,
# so changing a flag builds a new one next to the old.
conf_flags=(
  --disable-shared --enable-static --with-pic
  --disable-dependency-tracking --enable-symbol-hiding
  --enable-threaded-resolver --enable-ipv6 --enable-unix-sockets
  --with-openssl="$ossl" --with-nghttp2
  --with-ca-path=/etc/ssl/certs --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt
  --enable-http --enable-proxy
  --disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp
  --disable-dict --disable-telnet --disable-tftp --disable-pop3 --disable-imap
  --disable-smb --disable-smtp --disable-gopher --disable-mqtt --disable-websockets
  --disable-ntlm --disable-ntlm-wb --disable-tls-srp --disable-doh --disable-mime
  --disable-netrc --disable-cookies --disable-alt-svc --disable-hsts
  --disable-manual --disable-libcurl-option --disable-progress-meter
  --without-libidn2 --without-librtmp --without-libssh2 --without-libssh
  --without-libpsl --without-brotli --without-zstd --without-zlib
  --without-libgsasl --without-gssapi --without-hyper
  --without-ngtcp2 --without-nghttp3 --without-quiche --without-msh3
)
extra_cflags=(-ffunction-sections -fdata-sections)
recipe_rev=2 # bump when the steps below change what gets built
hash=$(printf '%s\n' "$recipe_rev" "${conf_flags[@]}" "${extra_cflags[@]}" | sha256sum | cut -c1-12)
prefix=$cache/curl-$version-min-$hash

if [ "${1:-}" = "--print-prefix" ]; then
  echo "$prefix"
  exit 0
fi
if [ -e "$prefix/.complete" ]; then
  echo "build-curl-min: $prefix is complete"
  exit 0
fi
"$here/build-openssl-min.sh"

mkdir -p "$cache"
exec 9>"$cache/curl-min.lock"
flock 9
if [ -e "$prefix/.complete" ]; then # built by whoever held the lock
  echo "build-curl-min: $prefix is complete"
  exit 0
fi

work=$(mktemp -d "$cache/curl-min-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The source of the installed version (ci/debsrc.sh: a private deb-src copy
# of the system's apt sources; another version the archive lists if it has
# none for this one).
# shellcheck source=ci/debsrc.sh
. "$here/debsrc.sh"
debsrc_fetch build-curl-min curl "$version" libcurl4 "$work" "$work/curl"
cd "$work/curl"
# Debian builds its OpenSSL flavour with the gnutls and nss patches popped
# (debian/rules, override_dh_auto_configure); they only rename the library.
patch -s -R -p1 <debian/patches/99_nss.patch
patch -s -R -p1 <debian/patches/90_gnutls.patch

# Debian's hardening flags (debian/rules: hardening=+all) and its patch stamp.
cflags="$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS) ${extra_cflags[*]}"
cppflags="$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CPPFLAGS)"
cppflags+=" -DCURL_PATCHSTAMP=\"$version\""
echo "build-curl-min: configuring and building into $prefix"
if ! ./configure --prefix="$prefix" "${conf_flags[@]}" CFLAGS="$cflags" \
  CPPFLAGS="$cppflags" >"$work/configure.log" 2>&1; then
  tail -30 "$work/configure.log" >&2
  exit 1
fi
dest=$work/dest
if ! { make -C lib -j "$(nproc)" && make -C lib install DESTDIR="$dest" &&
  make -C include install DESTDIR="$dest" &&
  install -D -m 644 libcurl.pc "$dest$prefix/lib/pkgconfig/libcurl.pc"; } >"$work/make.log" 2>&1; then
  tail -30 "$work/make.log" >&2
  exit 1
fi
sed -n '/curl version:/,/Features:/p' "$work/configure.log" >"$dest$prefix/configure-summary.txt"
printf '%s\n' "${conf_flags[@]}" >"$dest$prefix/configure-flags.txt"
rm -rf "$prefix"
mv "$dest$prefix" "$prefix"
touch "$prefix/.complete"
grep -E 'Protocols|Features|HTTP2|SSL:' "$prefix/configure-summary.txt" | sed 's/^/build-curl-min: /'
echo "build-curl-min: $prefix is complete"
