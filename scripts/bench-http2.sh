#!/usr/bin/env bash
# HTTP/2 throughput (issue 13): the agent on an h2load capture (nginx h2c,
# bearer JWTs; tests/bench/make_h2_bench_pcap.sh) beside its HTTP/1.1
# figure on the HTTP/1.1 bench capture and beside tshark's HTTP/2 dissector
# on the same HTTP/2 file, all in one run (the machine may be shared: the
# ratios are the figures to compare, CPU seconds rather than wall).
#
#   scripts/bench-http2.sh BUILD_DIR
#
# Recording the capture needs root (tcpdump on lo) with nginx, h2load,
# tcpdump, curl and openssl; once bench-out/h2bench.pcap exists nothing
# else does. Without them the HTTP/2 part is skipped with a line saying
# why, never silently.
#
# Environment:
#   BENCH_H2_REQUESTS=N  requests in the capture when it is recorded
#                        (default 200000; delete bench-out/h2bench.pcap to
#                        record again)
#   BENCH_H1_PCAP=FILE   the HTTP/1.1 capture (default bench-out/bench.pcap,
#                        made by scripts/bench.sh; 120 MiB made if missing)
#   BENCH_REPEAT=N       agent runs per capture, the median kept (default 3)
set -euo pipefail

skip() {
  echo "bench-http2: HTTP/2 part skipped: $*"
  exit 0
}
die() {
  echo "bench-http2: $*" >&2
  exit 1
}

[ $# -eq 1 ] || die "usage: scripts/bench-http2.sh BUILD_DIR"
[ -d "$1" ] || die "build directory '$1' not found (run: make build)"
BUILD=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."

OUT=bench-out
H2=$OUT/h2bench.pcap
H1=${BENCH_H1_PCAP:-$OUT/bench.pcap}
AGENT=$BUILD/agent/tokenwatch-agent
CONFIG=examples/tokenwatch.yaml
REPEAT=${BENCH_REPEAT:-3}
TIME=/usr/bin/time
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEAT must be a positive integer, not '$REPEAT'"
[ -x "$AGENT" ] || die "agent binary not found at $AGENT; build it first"
[ -x "$TIME" ] || skip "GNU time not found at $TIME (apt-get install time)"
mkdir -p "$OUT"

# --- the captures --------------------------------------------------------------
if [ ! -s "$H2" ]; then
  [ "$(id -u)" -eq 0 ] || skip "$H2 is missing and recording it needs root (tcpdump on lo); run as root once"
  for tool in nginx h2load tcpdump curl openssl; do
    command -v "$tool" >/dev/null || skip "$H2 is missing and recording it needs $tool (bash scripts/install-deps.sh test)"
  done
  echo "bench-http2: recording $H2 (${BENCH_H2_REQUESTS:-200000} h2load requests to nginx on lo)"
  rm -f "$H2.tmp"
  bash tests/bench/make_h2_bench_pcap.sh "$H2.tmp" "${BENCH_H2_REQUESTS:-200000}"
  mv "$H2.tmp" "$H2"
fi
if [ ! -s "$H1" ]; then
  [ -x "$BUILD/tests/bench/make_bench_pcap" ] ||
    skip "no HTTP/1.1 capture at $H1 and no generator at $BUILD/tests/bench/make_bench_pcap"
  echo "bench-http2: generating $H1 (120 MiB)"
  "$BUILD/tests/bench/make_bench_pcap" "$H1" --size-mb 120 >/dev/null
fi

# --- the agent -------------------------------------------------------------------
# agent_run FILE REQUESTS-KEY: BENCH_REPEAT runs, the median by CPU; sets
# PKTS REQS WALL CPU (user + system seconds).
agent_run() {
  local file=$1 key=$2 i err runs=()
  err=$(mktemp)
  for ((i = 0; i < REPEAT; i++)); do
    cat "$file" >/dev/null  # from the page cache, as tshark reads it
    "$TIME" -f '%e %U %S' -o "$err.t" "$AGENT" -c "$CONFIG" -r "$file" \
      --events-out /dev/null --metrics-listen off 2>"$err" ||
      { tail -n 5 "$err" >&2; die "tokenwatch-agent failed on $file"; }
    read -r w u s < <(tail -n 1 "$err.t")
    runs+=("$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u + s}') $w")
  done
  PKTS=$(awk '$1=="packets"{print $2; exit}' "$err")
  REQS=$(awk -v k="$key" '$1==k{print $2; exit}' "$err")
  read -r CPU WALL < <(printf '%s\n' "${runs[@]}" | sort -n | sed -n "$(((REPEAT + 1) / 2))p")
  rm -f "$err" "$err.t"
}

row() {  # name packets requests wall cpu
  awk -v n="$1" -v p="$2" -v r="$3" -v w="$4" -v c="$5" 'BEGIN{
    printf "| %s | %s | %s | %.2f | %.2f | %s | %.2f |\n", n, p == "" ? "" : p, r, w, c,
      p == "" ? "" : sprintf("%.0f", p / (c > 0 ? c : 0.01)), c * 1e6 / r }'
}

echo "bench-http2: agent on $H1 (HTTP/1.1), median of $REPEAT"
agent_run "$H1" http_requests
H1_PKTS=$PKTS H1_REQS=$REQS H1_WALL=$WALL H1_CPU=$CPU
echo "bench-http2: agent on $H2 (HTTP/2), median of $REPEAT"
agent_run "$H2" http2_requests
H2_PKTS=$PKTS H2_REQS=$REQS H2_WALL=$WALL H2_CPU=$CPU
[ "${H1_REQS:-0}" -gt 0 ] && [ "${H2_REQS:-0}" -gt 0 ] ||
  die "the agent counted no requests (http_requests=${H1_REQS:-?}, http2_requests=${H2_REQS:-?})"

# --- tshark on the same HTTP/2 file --------------------------------------------------
TS_LINE=""
TS_RATIO=""
if command -v tshark >/dev/null; then
  # The server port: the first packet is h2load's SYN to nginx.
  port=$(tshark -n -r "$H2" -c 1 -T fields -e tcp.dstport 2>/dev/null)
  echo "bench-http2: tshark's HTTP/2 dissector on $H2 (port $port; this takes a while)"
  cat "$H2" >/dev/null
  "$TIME" -f '%e %U %S' -o "$OUT/tshark-h2.time" tshark -n -r "$H2" -d "tcp.port==$port,http2" \
    -Y 'http2.header.name == ":method"' -T fields -e http2.header.value \
    >"$OUT/tshark-h2.txt" 2>"$OUT/tshark-h2.stderr" ||
    die "tshark failed (see $OUT/tshark-h2.stderr)"
  read -r ts_wall ts_u ts_s < <(tail -n 1 "$OUT/tshark-h2.time")
  ts_cpu=$(awk -v u="$ts_u" -v s="$ts_s" 'BEGIN{printf "%.2f", u + s}')
  # One request per bearer header value (every h2load request carries one).
  ts_reqs=$(grep -o "Bearer" "$OUT/tshark-h2.txt" | wc -l)
  [ "$ts_reqs" -gt 0 ] || die "tshark found no HTTP/2 request in $H2"
  TS_LINE=$(row "tshark -d tcp.port==$port,http2 -Y 'http2.header.name == \":method\"'" "" "$ts_reqs" "$ts_wall" "$ts_cpu")
  TS_RATIO=$(awk -v tc="$ts_cpu" -v tr="$ts_reqs" -v ac="$H2_CPU" -v ar="$H2_REQS" -v tw="$ts_wall" -v aw="$H2_WALL" 'BEGIN{
    printf "%.1fx by CPU per request (tshark %.1f us, agent %.2f us), %.1fx by wall", (tc / tr) / (ac / ar), tc * 1e6 / tr, ac * 1e6 / ar, (tw / tr) / (aw / ar) }')
else
  echo "bench-http2: tshark not installed: the comparison with tshark is skipped (apt-get install tshark)"
fi

# --- results ---------------------------------------------------------------------------
H2_VS_H1=$(awk -v c2="$H2_CPU" -v r2="$H2_REQS" -v c1="$H1_CPU" -v r1="$H1_REQS" 'BEGIN{
  printf "%.2fx (HTTP/2 %.2f us, HTTP/1.1 %.2f us per request)", (c2 / r2) / (c1 / r1), c2 * 1e6 / r2, c1 * 1e6 / r1 }')
RESULTS=$OUT/results-http2.md
{
  echo "# HTTP/2 throughput (issue 13)"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
  echo "- machine: $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- agent: median of $REPEAT runs by CPU; tshark: one run; every tool read its file from the page cache"
  echo
  echo "| run | packets | requests | wall s | CPU s | packets per CPU s | CPU us per request |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  row "tokenwatch-agent, $(basename "$H1") (HTTP/1.1)" "$H1_PKTS" "$H1_REQS" "$H1_WALL" "$H1_CPU"
  row "tokenwatch-agent, $(basename "$H2") (h2c)" "$H2_PKTS" "$H2_REQS" "$H2_WALL" "$H2_CPU"
  [ -z "$TS_LINE" ] || echo "$TS_LINE"
  echo
  echo "- HTTP/2 cost per request against HTTP/1.1 (target <= 1.5x): $H2_VS_H1"
  if [ -n "$TS_RATIO" ]; then
    echo "- agent against tshark on the same HTTP/2 file (target >= 50x): $TS_RATIO"
  else
    echo "- agent against tshark: not measured (tshark not installed)"
  fi
} >"$RESULTS"
echo
cat "$RESULTS"
echo
echo "bench-http2: results written to $RESULTS"
