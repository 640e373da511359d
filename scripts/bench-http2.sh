#!/usr/bin/env bash
# HTTP/2 throughput (issue 13): the agent on an h2load capture (nginx h2c,
# bearer JWTs; tests/bench/make_h2_bench_pcap.sh) beside its HTTP/1.1
# figure on bench-out/bench.pcap (scripts/bench.sh) and tshark on the same
# HTTP/2 file. Prints packets/s and CPU cost per request for each.
#
#   scripts/bench-http2.sh BUILD_DIR      (root, to record the capture once)
# Environment: BENCH_H2_REQUESTS (default 200000).
set -euo pipefail
BUILD=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
OUT=bench-out
H2=$OUT/h2bench.pcap
H1=${BENCH_H1_PCAP:-$OUT/bench.pcap}
AGENT=$BUILD/agent/tokenwatch-agent
mkdir -p "$OUT"
if [ ! -s "$H2" ]; then
  bash tests/bench/make_h2_bench_pcap.sh "$H2.tmp" "${BENCH_H2_REQUESTS:-200000}"
  mv "$H2.tmp" "$H2"
fi
if [ ! -s "$H1" ]; then
  "$BUILD/tests/bench/make_bench_pcap" "$H1" --size-mb 120 >/dev/null
fi
row() {  # name file requests-key
  local name=$1 file=$2 key=$3 err cpu wall pkts reqs
  err=$(mktemp)
  /usr/bin/time -f '%e %U %S' -o "$err.t" "$AGENT" -c examples/tokenwatch.yaml -r "$file" \
    --events-out /dev/null --metrics-listen off 2>"$err"
  read -r wall u s <"$err.t"
  cpu=$(awk -v u="$u" -v s="$s" 'BEGIN{print u + s}')
  pkts=$(awk '$1=="packets"{print $2}' "$err")
  reqs=$(awk -v k="$key" '$1==k{print $2}' "$err")
  printf '%-22s %9s pkts %8s req  %6.2f s wall %6.2f s cpu  %9.0f pkts/s  %6.2f us/req\n' \
    "$name" "$pkts" "$reqs" "$wall" "$cpu" "$(awk -v p="$pkts" -v c="$cpu" 'BEGIN{print p / c}')" \
    "$(awk -v r="$reqs" -v c="$cpu" 'BEGIN{print c * 1000000 / r}')"
  rm -f "$err" "$err.t"
}
row "agent http/1.1" "$H1" http_requests
row "agent h2" "$H2" http2_requests
port=$(tshark -r "$H2" -c 1 -T fields -e tcp.dstport 2>/dev/null)
/usr/bin/time -f '%e %U %S' -o "$OUT/tshark-h2.time" tshark -n -r "$H2" -d "tcp.port==$port,http2" \
  -Y 'http2.header.name == ":method"' -T fields -e http2.header.value >"$OUT/tshark-h2.txt" 2>/dev/null
read -r wall u s <"$OUT/tshark-h2.time"
reqs=$(grep -o "Bearer" "$OUT/tshark-h2.txt" | wc -l)
printf '%-22s %9s      %8s req  %6.2f s wall %6.2f s cpu  %25s  %6.2f us/req\n' "tshark h2" "" "$reqs" \
  "$wall" "$(awk -v u="$u" -v s="$s" 'BEGIN{print u + s}')" "" \
  "$(awk -v u="$u" -v s="$s" -v r="$reqs" 'BEGIN{print (u + s) * 1000000 / r}')"
