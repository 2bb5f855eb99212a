#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Weir test harness: a real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) plus kwok fake nodes, on loopback
# only, all built from pinned Go modules and cached under ~/.cache/weir.
# Run `tests/harness/k8s.sh help` for the subcommands.
set -euo pipefail

# Pinned versions. Each must match the require line of its build module in
# tests/harness/k8s/{kube,etcd,kwok}/go.mod (install checks this).
readonly K8S_VERSION=v1.34.4
readonly ETCD_VERSION=v3.6.5 # what kubeadm v1.34 deploys (constants.go: 3.6.5-0)
readonly KWOK_VERSION=v0.7.0
# The build modules say `go 1.24.0`. When the local go is older, install uses
# this toolchain (downloaded through the Go module proxy).
readonly GO_MIN=1.24.0
readonly GO_FALLBACK=1.24.13
# Bump to force a rebuild when the build recipe (flags) changes.
readonly BUILD_RECIPE=1

HARNESS_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HARNESS_SRC
readonly ASSETS="$HARNESS_SRC/k8s"
readonly CACHE_ROOT="${WEIR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weir}"
readonly K8S_HOME="$CACHE_ROOT/k8s-$K8S_VERSION"
readonly ETCD_HOME="$CACHE_ROOT/etcd-$ETCD_VERSION"
readonly KWOK_HOME="$CACHE_ROOT/kwok-$KWOK_VERSION"
readonly K8S_BIN="$K8S_HOME/bin"
readonly ETCD_BIN="$ETCD_HOME/bin"
readonly KWOK_BIN="$KWOK_HOME/bin"
readonly KUBE_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

readonly PORT_BASE="${WEIR_K8S_PORT_BASE:-26440}"
readonly NODE_COUNT="${WEIR_K8S_NODES:-2}"
readonly START_TIMEOUT="${WEIR_K8S_START_TIMEOUT:-180}"
readonly STOP_TIMEOUT="${WEIR_K8S_STOP_TIMEOUT:-20}"
# Virtual ranges: nothing routes or connects to them (no kubelet, no proxy).
readonly SERVICE_CIDR=10.96.0.0/16
readonly SERVICE_APISERVER_IP=10.96.0.1
readonly POD_CIDR=10.244.0.1/16

log() { printf 'k8s.sh: %s\n' "$*" >&2; }
die() { printf 'k8s.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<EOF
Usage: tests/harness/k8s.sh COMMAND [ARGS]

  install        build etcd, kube-apiserver, kube-controller-manager,
                 kube-scheduler, kubectl and kwok into $CACHE_ROOT
                 (no-op when cached)
  start [DIR]    start the control plane and $NODE_COUNT kwok nodes, wait until ready,
                 print export lines (DIR defaults to
                 \${WEIR_HARNESS_DIR:-\$PWD/build/harness}/k8s)
  stop [DIR]     stop everything started from DIR (safe to repeat)
  status [DIR]   exit 0 if every process started from DIR is running
  env [DIR]      print the export lines again (KUBECONFIG, WEIR_K8S_*, PATH)
  logs [DIR]     print the last 30 lines of each log in DIR/logs
  reset [DIR]    stop, then delete DIR
  kubectl ARGS   run the pinned kubectl (KUBECONFIG defaults to the default DIR's)
  versions       print the pinned versions
  go             print the go binary install builds with (fetching one if needed)
  bin            print the three binary directories

Pinned: Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION.
Environment: WEIR_K8S_PORT_BASE ($PORT_BASE; uses base..base+5),
WEIR_K8S_NODES ($NODE_COUNT), WEIR_K8S_START_TIMEOUT ($START_TIMEOUT s),
WEIR_K8S_STOP_TIMEOUT ($STOP_TIMEOUT s), WEIR_K8S_BUILD_JOBS (nproc),
WEIR_CACHE_DIR (~/.cache/weir), WEIR_GO (go binary to use).
EOF
}

# ------------------------------------------------------------- toolchain --

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

need_cmd() { # need_cmd COMMAND [DEBIAN_PACKAGE]
  command -v "$1" >/dev/null 2>&1 && return 0
  apt_install "${2:-$1}"
  command -v "$1" >/dev/null 2>&1 || die "$1 not found after apt-get install ${2:-$1}"
}

# version_ge A B: A >= B for dotted versions (1.24.0 style).
version_ge() {
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" == "$2" ]]
}

# Print the version of go binary $1 without the "go" prefix (1.26.8).
go_version_of() {
  local v
  v="$(GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null)" ||
    v="$("$1" version | awk '{print $3}')"
  v="${v#go}"
  printf '%s\n' "${v%%[!0-9.]*}"
}

go_arch() {
  case "$(uname -m)" in
  x86_64) echo amd64 ;;
  aarch64 | arm64) echo arm64 ;;
  *) die "unsupported machine $(uname -m) for the Go toolchain download" ;;
  esac
}

# h1: hash of an unpacked module zip (golang.org/x/mod/sumdb/dirhash Hash1):
# sha256 over the sorted "sha256  name" lines of every file. Run in the
# unzip directory.
module_h1() {
  local hex bytes="" i
  hex="$(find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum |
    sha256sum | cut -c1-64)"
  for ((i = 0; i < ${#hex}; i += 2)); do bytes+="\\x${hex:i:2}"; done
  # shellcheck disable=SC2059 # the format is the \xNN byte string
  printf "$bytes" | base64
}

# Download go$GO_FALLBACK (module golang.org/toolchain) through the first
# proxy URL in `go env GOPROXY`, check it against the checksum database (as
# proxied there, `go env GOSUMDB`), and unpack it into $CACHE_ROOT/go-$GO_FALLBACK.
# Only used when the local go is older than 1.21 (no GOTOOLCHAIN support).
fetch_go_toolchain() {
  local old_go="$1" dest="$CACHE_ROOT/go-$GO_FALLBACK" proxy sumdb url ver tmp src want got
  ver="v0.0.1-go$GO_FALLBACK.linux-$(go_arch)"
  proxy="$("$old_go" env GOPROXY)"
  proxy="$(tr ',|' '\n' <<<"$proxy" | grep -E '^https?://' | head -n 1)" ||
    die "go env GOPROXY has no proxy URL; install Go >= $GO_MIN by hand"
  proxy="${proxy%/}"
  sumdb="$("$old_go" env GOSUMDB)"
  sumdb="${sumdb%%[+ ]*}"
  url="$proxy/golang.org/toolchain/@v/$ver.zip"
  need_cmd curl
  need_cmd unzip
  mkdir -p "$CACHE_ROOT"
  tmp="$(mktemp -d "$CACHE_ROOT/go-download.XXXXXX")"
  log "downloading Go $GO_FALLBACK: $url"
  if ! curl -fsSL --retry 3 -o "$tmp/go.zip" "$url"; then
    rm -rf "$tmp"
    die "could not download $url"
  fi
  unzip -q "$tmp/go.zip" -d "$tmp/x"
  if [[ "$sumdb" == off ]]; then
    log "warning: GOSUMDB=off, Go $GO_FALLBACK is not checked against the checksum database"
  else
    want="$(curl -fsSL --retry 3 "$proxy/sumdb/$sumdb/lookup/golang.org/toolchain@$ver" |
      awk -v v="$ver" '$1 == "golang.org/toolchain" && $2 == v { print $3 }')" || want=""
    got="h1:$(cd "$tmp/x" && module_h1)"
    if [[ "$got" != "$want" ]]; then
      rm -rf "$tmp"
      die "checksum mismatch for golang.org/toolchain@$ver: got $got, checksum database says '${want:-nothing}'"
    fi
  fi
  src="$tmp/x/golang.org/toolchain@$ver"
  [[ -f "$src/bin/go" ]] || { rm -rf "$tmp"; die "unexpected layout in $url"; }
  # Module zips carry no file modes: mark the tools executable again.
  chmod -R u+w "$src"
  chmod +x "$src"/bin/* "$src"/pkg/tool/*/*
  rm -rf "$dest"
  mv "$src" "$dest"
  rm -rf "$tmp"
}

# Set GO_BIN (and GOTOOLCHAIN) to a go that can build the modules.
ensure_go() {
  local v cached="$CACHE_ROOT/go-$GO_FALLBACK/bin/go"
  if [[ -n "${WEIR_GO:-}" ]]; then
    GO_BIN="$WEIR_GO"
  elif command -v go >/dev/null 2>&1; then
    GO_BIN="$(command -v go)"
  elif [[ -x /usr/local/go/bin/go ]]; then # the official tarball's place, often not on PATH
    GO_BIN=/usr/local/go/bin/go
  elif [[ -x "$cached" ]]; then
    GO_BIN="$cached"
  else
    apt_install golang-go # Debian 12: go 1.19, enough to reach the proxy
    GO_BIN="$(command -v go)" || die "go not found after apt-get install golang-go"
  fi
  v="$(go_version_of "$GO_BIN")"
  if version_ge "$v" "$GO_MIN"; then
    export GOTOOLCHAIN=local
  elif version_ge "$v" 1.21; then
    log "go $v is older than $GO_MIN: using GOTOOLCHAIN=go$GO_FALLBACK"
    export GOTOOLCHAIN="go$GO_FALLBACK"
  else
    if [[ ! -x "$cached" ]]; then
      log "go $v is older than 1.21: fetching the Go $GO_FALLBACK toolchain"
      fetch_go_toolchain "$GO_BIN"
    fi
    GO_BIN="$cached"
    export GOTOOLCHAIN=local
  fi
  "$GO_BIN" version >/dev/null 2>&1 || die "$GO_BIN does not run"
  log "using $("$GO_BIN" version)"
}

# --------------------------------------------------------------- install --

# Version required by a build module's go.mod for module $2.
gomod_version() {
  awk -v m="$2" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1"
}

check_pins() {
  local dir mod want got
  while read -r dir mod want; do
    got="$(gomod_version "$ASSETS/$dir/go.mod" "$mod")"
    [[ "$got" == "$want" ]] ||
      die "k8s.sh pins $mod $want but $ASSETS/$dir/go.mod requires '${got:-nothing}': update both together"
  done <<EOF
kube k8s.io/kubernetes $K8S_VERSION
etcd go.etcd.io/etcd/server/v3 $ETCD_VERSION
kwok sigs.k8s.io/kwok $KWOK_VERSION
EOF
}

# Stamp contents for build module $1: version, go.mod/go.sum digest, recipe.
stamp_for() {
  local digest
  digest="$(cat "$ASSETS/$1/go.mod" "$ASSETS/$1/go.sum" | sha256sum | cut -d' ' -f1)"
  printf '%s %s recipe-%s\n' "$2" "$digest" "$BUILD_RECIPE"
}

# installed BIN_DIR STAMP NAMES...: the stamp matches and every binary exists.
installed() {
  local bin="$1" want="$2" name
  shift 2
  [[ -f "$bin/.weir-installed" && "$(<"$bin/.weir-installed")" == "$want" ]] || return 1
  for name in "$@"; do [[ -x "$bin/$name" ]] || return 1; done
}

# go_build MODULE HOME STAMP LDFLAGS OUT PKG...: build into HOME/bin.tmp,
# then swap it in as HOME/bin. OUT is a file name (one package) or "" (a
# directory: one binary per package, named after it).
go_build() {
  local module="$1" home="$2" stamp="$3" ldflags="$4" out="$5" tmp start
  shift 5
  tmp="$home/bin.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  start=$SECONDS
  log "building $module: $* (log: $home/build.log)"
  if ! (cd "$ASSETS/$module" &&
    CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" "$GO_BIN" build \
      -p "${WEIR_K8S_BUILD_JOBS:-$(nproc)}" -trimpath -ldflags "$ldflags" \
      -o "$tmp/$out" "$@") >"$home/build.log" 2>&1; then
    tail -n 40 "$home/build.log" >&2
    rm -rf "$tmp"
    die "go build failed for $module (see $home/build.log)"
  fi
  printf '%s\n' "$stamp" >"$tmp/.weir-installed"
  rm -rf "${home:?}/bin"
  mv "$tmp" "$home/bin"
  log "built $module in $((SECONDS - start))s"
}

# Linker flags that stamp the Kubernetes version, as hack/lib/version.sh does.
kube_ldflags() {
  local date minor flags="-s -w" pkg
  date="$(cd "$ASSETS/kube" && GOFLAGS=-mod=readonly "$GO_BIN" list -m -json k8s.io/kubernetes |
    sed -n 's/.*"Time": "\(.*\)".*/\1/p')"
  minor="${K8S_VERSION#v1.}"
  minor="${minor%%.*}"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=${date:-1970-01-01T00:00:00Z}"
  done
  printf '%s\n' "$flags"
}

do_install() {
  check_pins
  local kube_stamp etcd_stamp kwok_stamp
  kube_stamp="$(stamp_for kube "$K8S_VERSION")"
  etcd_stamp="$(stamp_for etcd "$ETCD_VERSION")"
  kwok_stamp="$(stamp_for kwok "$KWOK_VERSION")"
  all_installed() {
    installed "$K8S_BIN" "$kube_stamp" "${KUBE_CMDS[@]}" &&
      installed "$ETCD_BIN" "$etcd_stamp" etcd &&
      installed "$KWOK_BIN" "$kwok_stamp" kwok
  }
  all_installed && return 0

  mkdir -p "$K8S_HOME" "$ETCD_HOME" "$KWOK_HOME"
  need_cmd flock util-linux
  exec 9>"$CACHE_ROOT/k8s-harness.lock"
  flock 9
  if all_installed; then # another install finished while we waited
    exec 9>&-
    return 0
  fi
  ensure_go
  local start=$SECONDS pkgs=() c
  if ! installed "$K8S_BIN" "$kube_stamp" "${KUBE_CMDS[@]}"; then
    for c in "${KUBE_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    # One invocation: the four binaries share most of their packages.
    go_build kube "$K8S_HOME" "$kube_stamp" "$(kube_ldflags)" "" "${pkgs[@]}"
  fi
  if ! installed "$ETCD_BIN" "$etcd_stamp" etcd; then
    go_build etcd "$ETCD_HOME" "$etcd_stamp" "-s -w" etcd go.etcd.io/etcd/server/v3
  fi
  if ! installed "$KWOK_BIN" "$kwok_stamp" kwok; then
    go_build kwok "$KWOK_HOME" "$kwok_stamp" "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
      "" sigs.k8s.io/kwok/cmd/kwok
  fi
  exec 9>&-
  log "install done in $((SECONDS - start))s"
}

# ------------------------------------------------------------ instances --

instance_dir() {
  local dir="${1:-${WEIR_HARNESS_DIR:-$PWD/build/harness}/k8s}"
  realpath -m "$dir"
}

# Per-instance values, fixed at start and read back by env/stop.
load_instance() {
  [[ -f "$DIR/instance.env" ]] || die "no harness instance in $DIR (run: k8s.sh start $DIR)"
  # shellcheck source=/dev/null
  source "$DIR/instance.env"
}

pid_alive() { # running and not a zombie
  local state
  [[ -r "/proc/$1/stat" ]] || return 1
  state="$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# The pid still runs a process this instance started (its command line names
# DIR), so a recycled pid is never signalled.
pid_ours() {
  pid_alive "$1" || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$DIR/"
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# launch NAME CMD...: start CMD in its own session (own process group), with
# stdout/stderr in DIR/logs/NAME.log, and record its pid in DIR/pids.
launch() {
  local name="$1" logf="$DIR/logs/$1.log" pid
  shift
  [[ -f "$logf" ]] && mv -f "$logf" "$logf.prev"
  # Without job control this shell's children are not group leaders, so
  # setsid calls setsid(2) and execs in place: $! is the daemon's pid.
  setsid "$@" >"$logf" 2>&1 </dev/null &
  pid=$!
  printf '%s %s\n' "$name" "$pid" >>"$DIR/pids"
  log "started $name (pid $pid, log $logf)"
}

# Fail if any recorded process has died (used inside the wait loops).
check_alive() {
  local name pid
  while read -r name pid; do
    pid_alive "$pid" || die "$name (pid $pid) exited; see $DIR/logs/$name.log"
  done <"$DIR/pids"
}

# wait_for WHAT CMD...: poll CMD until it succeeds or the start deadline passes.
wait_for() {
  local what="$1"
  shift
  until "$@" >/dev/null 2>&1; do
    check_alive
    ((SECONDS < DEADLINE)) || die "timed out after ${START_TIMEOUT}s waiting for $what"
    sleep 0.5
  done
  log "ready: $what ($((SECONDS - T0))s)"
}

# http_get PORT PATH: print the raw HTTP/1.0 reply of a plain-HTTP endpoint.
http_get() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    timeout 5 cat <&3
  )
}

etcd_healthy() { [[ "$(http_get "$ETCD_PORT" /health)" == *'"health":"true"'* ]]; }

kc() { "$K8S_BIN/kubectl" --kubeconfig "$DIR/kubeconfig" --request-timeout=10s "$@"; }

apiserver_ready() { [[ "$(kc get --raw /readyz 2>/dev/null)" == ok ]]; }

# /healthz of a component serving a harness-CA certificate on port $1.
https_healthz() {
  port_in_use "$1" || return 1
  [[ "$(kc get --raw /healthz --server "https://127.0.0.1:$1" 2>/dev/null)" == ok ]]
}

kwok_healthy() { [[ "$(http_get "$KWOK_PORT" /healthz)" == 'HTTP/1.'?' 200 '* ]]; }

default_sa_exists() { kc -n default get serviceaccount default; }

nodes_ready() {
  local i
  for ((i = 0; i < NODE_COUNT; i++)); do
    [[ "$(kc get node "kwok-node-$i" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" == True ]] ||
      return 1
  done
}

# ------------------------------------------------------------------- pki --

write_openssl_cnf() {
  cat >"$1" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, IP:127.0.0.1, IP:$SERVICE_APISERVER_IP
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF
}

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# make_ca NAME CN: a self-signed CA, NAME.key + NAME.crt.
make_ca() {
  ec_key "$PKI/$1.key"
  openssl req -x509 -new -config "$PKI/openssl.cnf" -key "$PKI/$1.key" \
    -subj "/CN=$2" -days 3650 -extensions ca_ext -out "$PKI/$1.crt"
}

# sign_cert NAME SUBJECT EXT [CA]: NAME.key + NAME.crt signed by CA (default:
# the harness CA, "ca").
sign_cert() {
  local p="$PKI/$1" ca="$PKI/${4:-ca}"
  ec_key "$p.key"
  openssl req -new -config "$PKI/openssl.cnf" -key "$p.key" -subj "$2" -out "$p.csr"
  openssl x509 -req -in "$p.csr" -CA "$ca.crt" -CAkey "$ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 \
    -extfile "$PKI/openssl.cnf" -extensions "$3" -out "$p.crt" 2>/dev/null
  rm -f "$p.csr"
}

gen_pki() {
  PKI="$DIR/pki"
  [[ -f "$PKI/.complete" ]] && return 0
  need_cmd openssl
  rm -rf "$PKI"
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  write_openssl_cnf "$PKI/openssl.cnf"
  make_ca ca weir-harness-ca
  # Aggregation layer (front proxy) client: its own CA, as kubeadm does.
  make_ca front-proxy-ca weir-harness-front-proxy-ca
  sign_cert front-proxy-client "/CN=front-proxy-client" client_ext front-proxy-ca
  sign_cert apiserver "/CN=kube-apiserver" server_ext
  sign_cert controller-manager-serving "/CN=kube-controller-manager" server_ext
  sign_cert scheduler-serving "/CN=kube-scheduler" server_ext
  sign_cert admin "/O=system:masters/CN=weir-admin" client_ext
  sign_cert controller-manager "/CN=system:kube-controller-manager" client_ext
  sign_cert scheduler "/CN=system:kube-scheduler" client_ext
  sign_cert kwok "/O=system:masters/CN=weir-kwok" client_ext
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
  openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
  touch "$PKI/.complete"
}

b64() { base64 -w0 <"$1"; }

# write_kubeconfig FILE USER: certificates embedded, so FILE is self-contained.
write_kubeconfig() {
  cat >"$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: weir
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$PKI/$2.crt")
    client-key-data: $(b64 "$PKI/$2.key")
contexts:
- name: weir
  context:
    cluster: weir
    user: $2
current-context: weir
EOF
  chmod 600 "$1.tmp"
  mv -f "$1.tmp" "$1"
}

node_manifest() {
  local i name
  for ((i = 0; i < NODE_COUNT; i++)); do
    name="kwok-node-$i"
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
EOF
  done
}

# ------------------------------------------------------------- commands --

print_env() {
  cat <<EOF
export KUBECONFIG='$DIR/kubeconfig'
export WEIR_K8S_DIR='$DIR'
export WEIR_K8S_SERVER=https://127.0.0.1:$APISERVER_PORT
export WEIR_K8S_VERSION=$K8S_VERSION
export WEIR_K8S_BIN='$K8S_BIN'
export WEIR_KUBECTL='$K8S_BIN/kubectl'
export WEIR_K8S_HARNESS='$HARNESS_SRC/k8s.sh'
export PATH='$K8S_BIN':"\$PATH"
EOF
}

do_start() {
  DIR="$(instance_dir "${1:-}")"
  if ! [[ "$PORT_BASE" =~ ^[0-9]{4,5}$ ]] || ((PORT_BASE < 1024 || PORT_BASE > 65530)); then
    die "WEIR_K8S_PORT_BASE must be a port number in 1024..65530, not '$PORT_BASE'"
  fi
  if ! [[ "$NODE_COUNT" =~ ^[1-9][0-9]*$ ]]; then
    die "WEIR_K8S_NODES must be a positive number, not '$NODE_COUNT'"
  fi
  if [[ -f "$DIR/pids" ]]; then
    local name pid
    while read -r name pid; do
      ! pid_ours "$pid" || die "$name (pid $pid) from $DIR is still running: run k8s.sh stop $DIR first"
    done <"$DIR/pids"
    rm -f "$DIR/pids"
  fi
  do_install

  APISERVER_PORT=$PORT_BASE
  ETCD_PORT=$((PORT_BASE + 1))
  ETCD_PEER_PORT=$((PORT_BASE + 2))
  KCM_PORT=$((PORT_BASE + 3))
  SCHEDULER_PORT=$((PORT_BASE + 4))
  KWOK_PORT=$((PORT_BASE + 5))
  local p
  for p in "$APISERVER_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$KWOK_PORT"; do
    ! port_in_use "$p" || die "port 127.0.0.1:$p is in use (set WEIR_K8S_PORT_BASE to move the block $PORT_BASE..$((PORT_BASE + 5)))"
  done

  mkdir -p "$DIR/logs" "$DIR/etcd" "$DIR/kwok-home"
  chmod 700 "$DIR/etcd"
  gen_pki
  write_kubeconfig "$DIR/kubeconfig" admin
  write_kubeconfig "$DIR/controller-manager.kubeconfig" controller-manager
  write_kubeconfig "$DIR/scheduler.kubeconfig" scheduler
  write_kubeconfig "$DIR/kwok.kubeconfig" kwok
  cat >"$DIR/instance.env" <<EOF
APISERVER_PORT=$APISERVER_PORT
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
KCM_PORT=$KCM_PORT
SCHEDULER_PORT=$SCHEDULER_PORT
KWOK_PORT=$KWOK_PORT
EOF

  # From here on, any failure or signal stops what was started.
  STARTED=0
  trap 'start_exit' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  T0=$SECONDS
  DEADLINE=$((SECONDS + START_TIMEOUT))
  : >"$DIR/pids"

  launch etcd "$ETCD_BIN/etcd" --name=weir --data-dir="$DIR/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="weir=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state=new \
    --unsafe-no-fsync --log-level=warn
  wait_for etcd etcd_healthy

  launch kube-apiserver "$K8S_BIN/kube-apiserver" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" \
    --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --endpoint-reconciler-type=none
  wait_for "kube-apiserver /readyz" apiserver_ready

  launch kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
    --tls-cert-file="$PKI/controller-manager-serving.crt" \
    --tls-private-key-file="$PKI/controller-manager-serving.key" \
    --kubeconfig="$DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$DIR/controller-manager.kubeconfig" \
    --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --cluster-name=weir --allocate-node-cidrs=false
  launch kube-scheduler "$K8S_BIN/kube-scheduler" \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" \
    --tls-cert-file="$PKI/scheduler-serving.crt" --tls-private-key-file="$PKI/scheduler-serving.key" \
    --kubeconfig="$DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig="$DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig="$DIR/scheduler.kubeconfig" --leader-elect=false
  # HOME points into DIR so that no ~/.kwok/kwok.yaml of the user is loaded.
  launch kwok env HOME="$DIR/kwok-home" "$KWOK_BIN/kwok" \
    --kubeconfig="$DIR/kwok.kubeconfig" --server-address="127.0.0.1:$KWOK_PORT" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 --node-port="$KWOK_PORT" --cidr="$POD_CIDR" \
    --node-lease-duration-seconds=40

  node_manifest >"$DIR/nodes.yaml"
  wait_for "fake nodes created" kc apply -f "$DIR/nodes.yaml"
  wait_for kube-controller-manager https_healthz "$KCM_PORT"
  wait_for kube-scheduler https_healthz "$SCHEDULER_PORT"
  wait_for kwok kwok_healthy
  wait_for "default ServiceAccount in namespace default" default_sa_exists
  wait_for "$NODE_COUNT kwok nodes Ready" nodes_ready

  STARTED=1
  trap - EXIT INT TERM
  log "Kubernetes $K8S_VERSION is up at https://127.0.0.1:$APISERVER_PORT in $((SECONDS - T0))s (stop: k8s.sh stop $DIR)"
  print_env
}

start_exit() {
  local rc=$?
  ((STARTED)) && return 0
  trap - EXIT INT TERM
  log "start failed (exit $rc); last lines of each log:"
  do_logs 20 >&2 || :
  do_stop_dir || :
  exit $((rc == 0 ? 1 : rc))
}

# Stop every process recorded in DIR/pids: SIGTERM to each process group
# (newest first), wait up to STOP_TIMEOUT, then SIGKILL what is left.
do_stop_dir() {
  [[ -f "$DIR/pids" ]] || return 0
  local -a names=() pids=()
  local name pid i deadline left
  while read -r name pid; do
    names+=("$name")
    pids+=("$pid")
  done <"$DIR/pids"
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid="${pids[i]}"
    pid_ours "$pid" || continue
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || :
  done
  deadline=$((SECONDS + STOP_TIMEOUT))
  while :; do
    left=0
    for pid in "${pids[@]}"; do pid_ours "$pid" && left=1; done
    ((left)) || break
    if ((SECONDS >= deadline)); then
      for ((i = 0; i < ${#pids[@]}; i++)); do
        pid="${pids[i]}"
        pid_ours "$pid" || continue
        log "${names[i]} (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s: SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || :
      done
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  for ((i = 0; i < ${#pids[@]}; i++)); do
    ! pid_ours "${pids[i]}" || die "${names[i]} (pid ${pids[i]}) is still running"
  done
  rm -f "$DIR/pids"
  log "stopped ${names[*]} ($DIR)"
}

do_stop() {
  DIR="$(instance_dir "${1:-}")"
  do_stop_dir
}

do_status() {
  DIR="$(instance_dir "${1:-}")"
  [[ -s "$DIR/pids" ]] || { echo "not running ($DIR)"; return 1; }
  local name pid rc=0
  while read -r name pid; do
    if pid_ours "$pid"; then
      echo "$name running (pid $pid)"
    else
      echo "$name not running"
      rc=1
    fi
  done <"$DIR/pids"
  return "$rc"
}

do_logs() {
  local n="${1:-30}" f
  for f in "$DIR"/logs/*.log; do
    [[ -f "$f" ]] || continue
    printf '==> %s <==\n' "$f"
    tail -n "$n" "$f"
  done
}

main() {
  local cmd="${1:-help}"
  shift || :
  case "$cmd" in
  install) do_install ;;
  start) do_start "$@" ;;
  stop) do_stop "$@" ;;
  status) do_status "$@" ;;
  env)
    DIR="$(instance_dir "${1:-}")"
    load_instance
    print_env
    ;;
  logs)
    DIR="$(instance_dir "${1:-}")"
    do_logs 30
    ;;
  reset)
    do_stop "$@"
    rm -rf "$DIR"
    ;;
  kubectl)
    do_install
    if [[ -z "${KUBECONFIG:-}" ]]; then
      KUBECONFIG="$(instance_dir "")/kubeconfig"
      export KUBECONFIG
    fi
    exec "$K8S_BIN/kubectl" "$@"
    ;;
  versions)
    printf 'kubernetes %s\netcd %s\nkwok %s\n' "$K8S_VERSION" "$ETCD_VERSION" "$KWOK_VERSION"
    ;;
  go)
    ensure_go
    printf '%s (GOTOOLCHAIN=%s)\n' "$GO_BIN" "$GOTOOLCHAIN"
    ;;
  bin) printf '%s\n%s\n%s\n' "$K8S_BIN" "$ETCD_BIN" "$KWOK_BIN" ;;
  help | -h | --help) usage ;;
  *)
    usage >&2
    die "unknown command: $cmd"
    ;;
  esac
}

main "$@"
