#!/usr/bin/env bash
# Installs exactly what tokenwatch's build, tests, demo and benchmarks need.
# Idempotent: packages already present are left alone; Debian packages only.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config
  libpcap-dev libssl-dev libabsl-dev
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  prometheus-cpp-dev libsimdjson-dev libyaml-cpp-dev libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcurl4-openssl-dev libcivetweb-dev
  # tests, captures and benchmarks: real peers and reference tools
  tcpdump tshark httpry nginx-light curl iproute2 nodejs python3 python3-yaml procps time
  prometheus prometheus-alertmanager tcpreplay
  openssl  # scripts/make-test-ca.sh: the test PKI for agent <-> collector TLS
  # least privilege: setpriv (CAP_NET_RAW-only runs), systemd-analyze (unit checks),
  # libseccomp for Python (the units' syscall filters, applied without systemd)
  util-linux systemd python3-seccomp
  # HTTP/2 and gRPC (issue 13): nghttp2's HPACK inflater (build); h2load, nghttpx (h2c upgrade) and grpcio (tests)
  libnghttp2-dev nghttp2-client nghttp2-proxy python3-grpcio
  # fuzzing (make fuzz): clang with libFuzzer, ASan and UBSan
  clang libclang-rt-14-dev libfuzzer-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

npm_deps() {
  # The JWT middleware services of the end-to-end test (express, express-jwt,
  # jose), pinned by tests/jwt-services/package-lock.json.
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/jwt-services"
  if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules" ]; then
    echo "install-deps: npm ci in tests/jwt-services"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  npm_deps
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer non-interactively.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
npm_deps
