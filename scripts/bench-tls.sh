#!/usr/bin/env bash
# The TLS probe's cost to the probed server (issue 14): nginx over HTTPS
# (1 worker, the system libssl) driven by wrk with a bearer JWT on every
# request, requests/s without the probe, with `tokenwatch-agent
# --tls-probe` attached, and without again, in one run; then the uses the
# agent reported against the requests wrk completed (events lost) and its
# probe drops.
#
#   scripts/bench-tls.sh BUILD_DIR     (root: the probe needs CAP_BPF)
# Environment: BENCH_TLS_SECONDS (default 10), BENCH_TLS_CONNECTIONS (8).
set -euo pipefail
BUILD=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
AGENT=$BUILD/agent/tokenwatch-agent
SECS=${BENCH_TLS_SECONDS:-10}
CONNS=${BENCH_TLS_CONNECTIONS:-8}
for tool in nginx wrk openssl python3; do
  command -v "$tool" >/dev/null || { echo "bench-tls: $tool missing (scripts/install-deps.sh test)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "bench-tls: skipped: the TLS probe needs root (CAP_BPF + CAP_PERFMON)" >&2; exit 0; }
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 \
  -subj /CN=localhost 2>/dev/null
mkdir -p "$tmp/body"
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
error_log $tmp/error.log;
pid $tmp/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/body;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $tmp/cert.pem;
    ssl_certificate_key $tmp/key.pem;
    location / { return 200 '{"ok":true,"items":[1,2,3]}\n'; }
  }
}
CONF
nginx -p "$tmp" -c "$tmp/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
token=$(python3 -c '
import base64, hashlib, hmac, json, time
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
h = b(json.dumps({"alg": "HS256"}).encode()); p = b(json.dumps({"sub": "bench", "exp": int(time.time()) + 3600}).encode())
print(h + "." + p + "." + b(hmac.new(b"bench-tls-secret", (h + "." + p).encode(), hashlib.sha256).digest()))')
printf 'bench-tls-fingerprint-key' >"$tmp/fp.key"
chmod 600 "$tmp/fp.key"
printf 'fingerprint_key_file: fp.key\nagent:\n  fold_window: 0s\n' >"$tmp/tw.yaml"

worker=$(ps -o pid= --ppid "${pids[0]}" | head -n 1 | tr -d ' ')
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run_wrk() {  # prints requests/s, total requests, nginx worker CPU us per request
  local t0 t1
  t0=$(cpu_ticks "$worker")
  wrk -t1 -c"$CONNS" -d"${SECS}s" -H "Authorization: Bearer $token" "https://127.0.0.1:$port/v1/items" \
    >"$tmp/wrk.out" 2>&1
  t1=$(cpu_ticks "$worker")
  awk -v t="$((t1 - t0))" -v hz="$hz" '/requests in/{n=$1} /Requests\/sec/{r=$2}
    END{printf "%s %s %.1f\n", r, n, t * 1000000 / hz / n}' "$tmp/wrk.out"
}
read -r base1 _ cpu1 < <(run_wrk)
"$AGENT" -c "$tmp/tw.yaml" --tls-probe --events-out "$tmp/events.jsonl" --metrics-listen off 2>"$tmp/agent.err" &
apid=$!
pids+=($apid)
for _ in $(seq 100); do grep -q "TLS probe on" "$tmp/agent.err" && break; sleep 0.1; done
read -r probed probed_n cpup < <(run_wrk)
sleep 1
agent_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$apid/stat")
kill -INT "$apid"
wait "$apid" || true
read -r base2 _ cpu2 < <(run_wrk)
uses=$(wc -l <"$tmp/events.jsonl")
# The agent's own CPU while it ran (ticks of /proc/PID/stat, read before it ends).
drops=$(awk '$1=="drops"{$1=""; print}' "$tmp/agent.err")
awk -v b1="$base1" -v b2="$base2" -v p="$probed" -v n="$probed_n" -v u="$uses" -v d="$drops" -v c="$CONNS" -v s="$SECS" -v cpu="$agent_cpu" -v c1="$cpu1" -v c2="$cpu2" -v cp="$cpup" 'BEGIN {
  base = (b1 + b2) / 2
  printf "nginx https, wrk -t1 -c%d -d%ds, bearer JWT on every request\n", c, s
  printf "  without probe   %10.0f req/s (before %.0f, after %.0f)\n", base, b1, b2
  printf "  with --tls-probe %9.0f req/s   throughput loss %.1f%%\n", p, (base - p) * 100 / base
  printf "  nginx worker CPU per request: %.1f us without, %.1f us with the probe (+%.1f us)\n", (c1 + c2) / 2, cp, cp - (c1 + c2) / 2
  printf "  requests completed under the probe %d, uses reported %d, lost %d; agent drops: %s\n", n, u, (n > u ? n - u : 0), d
  printf "  agent CPU while probing: %s s over %d s\n", cpu, s
}'
