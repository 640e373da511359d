#!/usr/bin/env bash
# Throughput benchmark: tokenwatch-agent against httpry and tshark, one after
# another on the same capture in the same run. See tests/bench/README.md.
#
#   scripts/bench.sh BUILD_DIR
#
# Environment:
#   BENCH_SIZE_MB=N    size of the capture when it has to be generated
#                      (default 600; delete bench-out/bench.pcap to regenerate)
#   BENCH_TSHARK_MB=N  run tshark on a prefix of about N MiB instead of the
#                      whole capture (default: whole capture; 0 skips tshark)
#
# Everything is read from and written to files under bench-out/; nothing is
# sent on the network (tshark runs with -n, so it does no name lookups).
set -euo pipefail

die() {
  echo "bench: $*" >&2
  exit 1
}

[ $# -eq 1 ] || die "usage: scripts/bench.sh BUILD_DIR"
[ -d "$1" ] || die "build directory '$1' not found (run: make build)"
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

OUT=bench-out
PCAP=$OUT/bench.pcap
AGENT=$BUILD/agent/tokenwatch-agent
GEN=$BUILD/tests/bench/make_bench_pcap
MICRO=$BUILD/tests/bench/micro_bench
CONFIG=examples/tokenwatch.yaml
TIME=/usr/bin/time
SIZE_MB=${BENCH_SIZE_MB:-600}
TSHARK_MB=${BENCH_TSHARK_MB:-}

[ -x "$AGENT" ] || die "agent binary not found at $AGENT; build it first (make build, or cmake --build $1 --target tokenwatch-agent)"
[ -f "$CONFIG" ] || die "agent config $CONFIG not found"
[ -x "$TIME" ] || die "GNU time not found at $TIME (apt-get install time)"
command -v capinfos >/dev/null || die "capinfos not found (apt-get install tshark)"
[[ "$SIZE_MB" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE_MB must be a positive integer, not '$SIZE_MB'"
[[ -z "$TSHARK_MB" || "$TSHARK_MB" =~ ^[0-9]+$ ]] || die "BENCH_TSHARK_MB must be a non-negative integer, not '$TSHARK_MB'"

mkdir -p "$OUT"

# --- the capture -------------------------------------------------------------
if [ ! -s "$PCAP" ]; then
  [ -x "$GEN" ] || die "generator not found at $GEN; build it first (cmake --build $1 --target make_bench_pcap)"
  echo "bench: generating $PCAP (${SIZE_MB} MiB)"
  rm -f "$PCAP.tmp"
  "$GEN" "$PCAP.tmp" --size-mb "$SIZE_MB" | tee "$OUT/generator.txt"
  mv "$PCAP.tmp" "$PCAP"
fi
PACKETS=$(capinfos -M -c -T -r "$PCAP" | awk -F'\t' '{print $2}')
BYTES=$(stat -c %s "$PCAP")
[[ "$PACKETS" =~ ^[0-9]+$ ]] || die "capinfos could not count the packets of $PCAP"
GEN_REQUESTS="?"
if [ -f "$OUT/generator.txt" ]; then
  GEN_REQUESTS=$(awk '$1=="requests"{print $2}' "$OUT/generator.txt")
fi
echo "bench: $PCAP: $PACKETS packets, $BYTES bytes, ${GEN_REQUESTS} HTTP requests"

# --- (a) micro-benchmarks ------------------------------------------------------
MICRO_RAN=0
if [ -x "$MICRO" ]; then
  echo "bench: running $MICRO"
  "$MICRO" --benchmark_min_time=0.2 \
    --benchmark_out="$OUT/micro_bench.json" --benchmark_out_format=json \
    | tee "$OUT/micro_bench.txt"
  MICRO_RAN=1
else
  echo "bench: $MICRO not built; skipping micro-benchmarks"
fi

# --- (b) the tools on the capture ----------------------------------------------
# Every tool starts with the capture in the page cache, so none pays for the
# disk and the first does not warm the cache for the others.
warm() { cat "$1" >/dev/null; }

# The last line of a GNU time -o file: "wall user sys maxrss_kb" (a failing
# command adds a "Command exited with non-zero status" line before it).
timing() { tail -n 1 "$OUT/$1.time"; }

FAILED=()
NOTES=()

echo "bench: tokenwatch-agent"
warm "$PCAP"
rc=0
"$TIME" -f '%e %U %S %M' -o "$OUT/agent.time" \
  "$AGENT" -c "$CONFIG" -r "$PCAP" --events-out /dev/null \
  >"$OUT/agent.stdout" 2>"$OUT/agent.stderr" || rc=$?
if [ "$rc" -ne 0 ]; then
  tail -n 20 "$OUT/agent.stderr" >&2
  die "tokenwatch-agent exited with status $rc (stderr in $OUT/agent.stderr)"
fi
AGENT_PACKETS=$(awk '$1=="packets"{print $2; exit}' "$OUT/agent.stderr")
AGENT_REQUESTS=$(awk '$1=="http_requests"{print $2; exit}' "$OUT/agent.stderr")
AGENT_TIME=$(timing agent)

HTTPRY_TIME=""
HTTPRY_PARSED=""
if command -v httpry >/dev/null; then
  echo "bench: httpry"
  warm "$PCAP"
  # All TCP (httpry's default filter is ports 80 and 8080 only), the
  # Authorization header among the fields, output thrown away. Without -q it
  # reports "N http packets parsed" (requests plus responses) at the end.
  rc=0
  "$TIME" -f '%e %U %S %M' -o "$OUT/httpry.time" \
    httpry -r "$PCAP" -o /dev/null \
    -f timestamp,source-ip,dest-ip,direction,method,host,request-uri,http-version,status-code,reason-phrase,authorization \
    tcp >"$OUT/httpry.stdout" 2>"$OUT/httpry.stderr" || rc=$?
  if [ "$rc" -eq 0 ]; then
    HTTPRY_TIME=$(timing httpry)
    HTTPRY_PARSED=$(cat "$OUT/httpry.stdout" "$OUT/httpry.stderr" |
      awk '/http packets parsed/{print $1; exit}')
  else
    FAILED+=("httpry (exit $rc, see $OUT/httpry.stderr)")
  fi
else
  FAILED+=("httpry (not installed)")
fi

TSHARK_TIME=""
TSHARK_REQUESTS=""
TSHARK_PCAP=$PCAP
TSHARK_PACKETS=$PACKETS
TSHARK_BYTES=$BYTES
if [ "$TSHARK_MB" = "0" ]; then
  echo "bench: BENCH_TSHARK_MB=0; skipping tshark"
  NOTES+=("tshark skipped (BENCH_TSHARK_MB=0)")
elif command -v tshark >/dev/null; then
  if [ -n "$TSHARK_MB" ] && [ $((TSHARK_MB * 1048576)) -lt "$BYTES" ]; then
    # A prefix of whole packets, about TSHARK_MB MiB long.
    TSHARK_PACKETS=$((PACKETS * TSHARK_MB * 1048576 / BYTES))
    [ "$TSHARK_PACKETS" -ge 1 ] || TSHARK_PACKETS=1
    TSHARK_PCAP=$OUT/bench-prefix-${TSHARK_MB}mb.pcap
    editcap -F pcap -r "$PCAP" "$TSHARK_PCAP" "1-$TSHARK_PACKETS"
    TSHARK_BYTES=$(stat -c %s "$TSHARK_PCAP")
    NOTES+=("tshark read the first $TSHARK_PACKETS packets only (BENCH_TSHARK_MB=$TSHARK_MB); its start-up time weighs more on a short input")
  fi
  echo "bench: tshark on $TSHARK_PCAP (this can take minutes)"
  warm "$TSHARK_PCAP"
  # One line per HTTP request; counting them costs nothing next to tshark.
  rc=0
  "$TIME" -f '%e %U %S %M' -o "$OUT/tshark.time" \
    tshark -n -r "$TSHARK_PCAP" -Y http.request -T fields -e http.authorization \
    2>"$OUT/tshark.stderr" | wc -l >"$OUT/tshark.requests" || rc=$?
  if [ "$rc" -eq 0 ]; then
    TSHARK_TIME=$(timing tshark)
    TSHARK_REQUESTS=$(cat "$OUT/tshark.requests")
  else
    FAILED+=("tshark (exit $rc, see $OUT/tshark.stderr)")
  fi
else
  FAILED+=("tshark (not installed)")
fi

# --- results -------------------------------------------------------------------
# row NAME INPUT PACKETS BYTES "WALL USER SYS RSSKB" SEEN
# Speed-ups compare seconds per packet, so they stay meaningful when tshark
# reads a prefix: > 1 means the agent is faster.
read -r A_WALL A_USER _ _ <<<"$AGENT_TIME"
row() {
  awk -v name="$1" -v input="$2" -v pkts="$3" -v bytes="$4" -v t="$5" \
    -v seen="$6" -v apkts="$PACKETS" -v awall="$A_WALL" -v auser="$A_USER" '
    function max(a, b) { return a > b ? a : b }
    BEGIN {
      split(t, f, " ")
      wall = max(f[1], 0.01); user = max(f[2], 0.01)
      mib = bytes / 1048576
      a_wall = max(awall, 0.01) / apkts; a_user = max(auser, 0.01) / apkts
      printf "| %s | %s | %d | %.1f | %.2f | %.2f | %.2f | %.0f | %.0f | %.1f | %.0f | %.2f | %.2f | %s |\n",
        name, input, pkts, mib, f[1], f[2], f[3], f[4] / 1024,
        pkts / wall, mib / wall, pkts / user,
        (wall / pkts) / a_wall, (user / pkts) / a_user, seen
    }'
}

RESULTS=$OUT/results.md
{
  echo "# tokenwatch throughput benchmark"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
  echo "- machine: $(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- capture: $PCAP, $PACKETS packets, $(awk -v b="$BYTES" 'BEGIN{printf "%.1f", b/1048576}') MiB, ${GEN_REQUESTS} HTTP requests (generator)"
  echo "- tools: $(httpry -h 2>&1 | head -n 1 || true); $(tshark -v 2>/dev/null | head -n 1 || true)"
  echo
  echo "Each tool read the capture from the page cache; times are from GNU time."
  echo "Speed-up = the tool's seconds per packet / the agent's (> 1: the agent is faster)."
  echo
  echo "| tool | input | packets | MiB | wall s | user s | sys s | peak RSS MiB | packets/s (wall) | MiB/s (wall) | packets per user-CPU s | agent speed-up (wall) | agent speed-up (user CPU) | HTTP seen |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  row "tokenwatch-agent" "$(basename "$PCAP")" "$PACKETS" "$BYTES" "$AGENT_TIME" \
    "${AGENT_REQUESTS:-?} http_requests, ${AGENT_PACKETS:-?} packets (agent summary)"
  if [ -n "$HTTPRY_TIME" ]; then
    row "httpry" "$(basename "$PCAP")" "$PACKETS" "$BYTES" "$HTTPRY_TIME" \
      "${HTTPRY_PARSED:-?} HTTP packets (requests + responses)"
  fi
  if [ -n "$TSHARK_TIME" ]; then
    row "tshark" "$(basename "$TSHARK_PCAP")" "$TSHARK_PACKETS" "$TSHARK_BYTES" \
      "$TSHARK_TIME" "${TSHARK_REQUESTS} requests (http.request)"
  fi
  if [ $((${#FAILED[@]} + ${#NOTES[@]})) -gt 0 ]; then
    echo
    for f in "${NOTES[@]}"; do echo "- $f"; done
    for f in "${FAILED[@]}"; do echo "- not measured: $f"; done
  fi
  if [ "$MICRO_RAN" = 1 ]; then
    echo
    echo "## Micro-benchmarks"
    echo
    echo '```'
    cat "$OUT/micro_bench.txt"
    echo '```'
  fi
} >"$RESULTS"

# --- (c) agent-side JWT checks: the packet path with every check on vs off -------
# Same capture, same agent; tests/bench/checks-on.yaml turns on algorithm
# policy, signature verification with the issuers' secrets, header checks,
# lifetimes and the weak-secrets list (worker thread).
CHECKS_LINE=""
if [ -f tests/bench/checks-on.yaml ]; then
  for mode in off on; do
    /usr/bin/time -f '%e %U' -o "$OUT/checks-$mode.time" "$AGENT" -c "tests/bench/checks-$mode.yaml" \
      -r "$PCAP" --events-out /dev/null --metrics-listen off 2>"$OUT/checks-$mode.stderr" ||
      FAILED+=("checks-$mode")
  done
  CHECKS_LINE=$(python3 - "$OUT/checks-off.time" "$OUT/checks-on.time" "$PACKETS" <<'PY'
import sys
off = [float(x) for x in open(sys.argv[1]).read().split()[-2:]]
on = [float(x) for x in open(sys.argv[2]).read().split()[-2:]]
n = int(sys.argv[3])
print(f"- agent with every JWT check on vs off, same capture: {n / on[0]:,.0f} vs {n / off[0]:,.0f} packets/s "
      f"(wall), on/off time ratio {on[0] / off[0]:.2f} (wall), {on[1] / off[1]:.2f} (user CPU)")
PY
)
fi

# --- (d) the collector ----------------------------------------------------------
# Ingest: agent streams (pre-encoded, then through the agent's CollectorSink) into a collector on a
# SQLite store, all on this machine's 2 cores; memory per tracked token from
# the collector's /healthz; packet-to-alert latency on live capture (root).
COLLECTOR=$BUILD/collector/tokenwatch-collector
INGEST=$BUILD/tests/bench/ingest_bench
if [ -x "$COLLECTOR" ] && [ -x "$INGEST" ]; then
  rm -f "$OUT"/ingest.db*
  read -r GP HP < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
  "$COLLECTOR" --listen "127.0.0.1:$GP" --http-listen "127.0.0.1:$HP" \
    --store "sqlite:$OUT/ingest.db" 2>"$OUT/collector.stderr" &
  CPID=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$HP/healthz" >/dev/null && break; sleep 0.1; done
  # Pre-encoded frames (the collector's figure), then the agent's own
  # CollectorSink encoding while the clock runs (the whole delivery path).
  "$INGEST" "127.0.0.1:$GP" --streams 4 --events 1000000 --tokens 20000 --via frames |
    tee "$OUT/ingest.txt" || FAILED+=(ingest)
  "$INGEST" "127.0.0.1:$GP" --streams 4 --events 1000000 --tokens 20000 --via sink |
    tee "$OUT/ingest-sink.txt" || FAILED+=(ingest-sink)
  curl -fs "http://127.0.0.1:$HP/healthz" >"$OUT/healthz.json" || true
  kill -TERM "$CPID"
  wait "$CPID" || true
  {
    if [ -n "$CHECKS_LINE" ]; then
      echo
      echo "## Agent-side JWT checks"
      echo
      echo "$CHECKS_LINE"
      echo "- verifications/s per algorithm and weak-secret trials/s: BM_Verify/* and BM_WeakSecretSearch in the micro-benchmarks above"
    fi
    echo
    echo "## Collector"
    echo
    echo "- ingest (4 agent streams, 20,000 tokens, SQLite store, generator on the same 2 cores): $(sed 's/^ingest //' "$OUT/ingest.txt" | paste -sd ';')"
    echo "- the same through the agent's CollectorSink: $(sed 's/^ingest //' "$OUT/ingest-sink.txt" | paste -sd ';')"
    echo "- memory per tracked token (collector /healthz after the ingest): $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes_per_token"])' "$OUT/healthz.json" 2>/dev/null || echo '?') bytes"
  } >>"$RESULTS"
  if [ "$(id -u)" -eq 0 ]; then
    python3 tests/bench/latency_bench.py "$BUILD" 200 | tee "$OUT/latency.txt" || FAILED+=(latency)
    echo "- $(cat "$OUT/latency.txt") (live capture on lo, nginx, agent -> collector -> --alerts-out)" >>"$RESULTS"
  fi
fi

echo
cat "$RESULTS"
echo
echo "bench: results written to $RESULTS"
if [ "$GEN_REQUESTS" != "?" ] && [ -n "${AGENT_REQUESTS:-}" ] &&
  [ "$AGENT_REQUESTS" != "$GEN_REQUESTS" ]; then
  echo "bench: warning: the agent counted $AGENT_REQUESTS HTTP requests; the capture holds $GEN_REQUESTS" >&2
fi
[ ${#FAILED[@]} -eq 0 ] || die "not measured: ${FAILED[*]}"
