#!/usr/bin/env bash
# Installs what one use of tokenwatch needs, by profile (Debian 12 packages;
# npm for the test services):
#
#   run    the shared libraries tokenwatch-agent and tokenwatch-collector load
#   build  run + compiler, CMake and the -dev packages that build the two
#          binaries (cmake -DTOKENWATCH_BUILD_TESTS=OFF)
#   demo   build + what scripts/demo.sh runs: python3 and curl (`make demo`)
#   test   demo + GoogleTest, Google Benchmark and the real peers and tools
#          of `make test` and `make bench`, and `npm ci` in tests/jwt-services
#   fuzz   build + clang with libFuzzer, ASan and UBSan (`make fuzz`)
#
#   scripts/install-deps.sh [PROFILE...]     no profile: test
#
# Idempotent: a package already installed (or provided by one that is) is
# left alone, and the package lists are only updated when something is
# missing; npm ci runs again only when package-lock.json has changed.
set -euo pipefail

usage() {
  echo "usage: scripts/install-deps.sh [run|build|demo|test|fuzz]..." >&2
  exit 2
}

RUN=(
  # what the two binaries link (readelf -d: NEEDED), by Debian 12 name
  libpcap0.8 libssl3 libabsl20220623 libprotobuf32 libgrpc29 libgrpc++1.51
  libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libsimdjson14
  libyaml-cpp0.7 libsqlite3-0 libcurl4 libcivetweb1
  libnghttp2-14  # HTTP/2: nghttp2's HPACK inflater
  libbpf1        # the TLS probe (agent/tls): loads its eBPF half
)
BUILD=(
  build-essential cmake pkg-config
  libpcap-dev libssl-dev libabsl-dev
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  prometheus-cpp-dev libsimdjson-dev libyaml-cpp-dev libsqlite3-dev
  libcurl4-openssl-dev libcivetweb-dev
  libnghttp2-dev
  # the TLS probe: libbpf's headers; clang compiles its eBPF half; bpftool
  # dumps the kernel's types and makes the skeleton (agent/tls/build_probe.sh)
  libbpf-dev clang bpftool
)
DEMO=(
  python3 curl  # scripts/demo.sh: free ports, the tables; the collector's API
  nginx-light openssl  # scripts/demo-tls.sh: an HTTPS server for the TLS probe
)
TEST=(
  libgtest-dev libgmock-dev libbenchmark-dev
  # real peers and reference tools of the integration tests and benchmarks
  tcpdump tshark httpry nginx-light iproute2 nodejs npm python3-yaml procps time
  prometheus prometheus-alertmanager tcpreplay
  openssl  # scripts/make-test-ca.sh: the test PKI for agent <-> collector TLS
  # least privilege: setpriv (CAP_NET_RAW-only runs), systemd-analyze (unit
  # checks), libseccomp for Python (the units' syscall filters, applied
  # without systemd)
  util-linux systemd python3-seccomp
  # HTTP/2 and gRPC: h2load, nghttpx (h2c upgrade) and grpcio (live tests)
  nghttp2-client nghttp2-proxy python3-grpcio
  wrk  # the TLS probe's overhead on nginx over HTTPS (scripts/bench-tls.sh)
)
FUZZ=(
  clang libclang-rt-14-dev libfuzzer-14-dev
  python3 time procps  # tests/fuzz/make-seeds.py; CPU budgets (scripts/fuzz.sh)
)

[ $# -gt 0 ] || set -- test
PACKAGES=()
want_npm=0
for profile in "$@"; do
  case "$profile" in
    run) PACKAGES+=("${RUN[@]}") ;;
    build) PACKAGES+=("${RUN[@]}" "${BUILD[@]}") ;;
    demo) PACKAGES+=("${RUN[@]}" "${BUILD[@]}" "${DEMO[@]}") ;;
    test)
      PACKAGES+=("${RUN[@]}" "${BUILD[@]}" "${DEMO[@]}" "${TEST[@]}")
      want_npm=1
      ;;
    fuzz) PACKAGES+=("${RUN[@]}" "${BUILD[@]}" "${FUZZ[@]}") ;;
    *) usage ;;
  esac
done
mapfile -t PACKAGES < <(printf '%s\n' "${PACKAGES[@]}" | awk '!seen[$0]++')

# Installed packages and what they provide (e.g. a nodejs that bundles npm
# provides npm, and conflicts with Debian's).
installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Provides}\n' 2>/dev/null |
  awk '$1 ~ /^.i/ { $1 = ""; gsub(/\([^)]*\)/, ""); gsub(/,/, " "); print }' | tr ' ' '\n' |
  sed '/^$/d; s/:.*//' | sort -u)
missing=()
for p in "${PACKAGES[@]}"; do
  grep -qxF "$p" <<<"$installed" || missing+=("$p")
done

npm_deps() {
  # The JWT middleware services of the end-to-end test (express, express-jwt,
  # jose), pinned by tests/jwt-services/package-lock.json.
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/jwt-services"
  [ -f "$dir/package-lock.json" ] || return 0
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
     [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "install-deps: npm ci in tests/jwt-services"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps ($*): all ${#PACKAGES[@]} packages present"
else
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps ($*): installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer non-interactively.
  if printf '%s\n' "${missing[@]}" | grep -qx tshark; then
    echo "wireshark-common wireshark-common/install-setuid boolean false" |
      $SUDO debconf-set-selections
  fi
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
[ "$want_npm" -eq 0 ] || npm_deps
