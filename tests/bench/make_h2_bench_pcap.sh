#!/usr/bin/env bash
# The HTTP/2 benchmark capture: h2load (nghttp2-client) driving nginx with
# h2c (prior knowledge) on loopback, every request carrying a bearer JWT,
# recorded with tcpdump. Several h2load runs, each with its own token and
# concurrency, so the capture has many connections and distinct tokens.
#
#   tests/bench/make_h2_bench_pcap.sh OUT.pcap [REQUESTS]   (root: tcpdump)
#
# Nothing leaves 127.0.0.1; everything started is stopped on exit.
set -euo pipefail
out=$1
total=${2:-200000}
runs=20
per=$((total / runs))
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
error_log $tmp/error.log;
pid $tmp/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/body;
  keepalive_requests 1000000;  # h2load reuses each connection for all its requests
  server {
    listen 127.0.0.1:$port http2;
    location / { return 200 '{"ok":true,"items":[1,2,3]}\n'; }
    location /v1/admin { return 403; }
  }
}
CONF
nginx -p "$tmp" -c "$tmp/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 100); do
  curl -s -o /dev/null --http2-prior-knowledge "http://127.0.0.1:$port/" && break
  sleep 0.05
done
tcpdump -i lo -s 0 -B 65536 -U -w "$out" "tcp port $port" 2>"$tmp/tcpdump.err" &
tcpdump_pid=$!
pids+=("$tcpdump_pid")
for _ in $(seq 100); do grep -q "listening on" "$tmp/tcpdump.err" && break; sleep 0.05; done
b64() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
for i in $(seq "$runs"); do
  now=$(date +%s)
  h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64)
  p=$(printf '{"iss":"https://idp.bench","sub":"user-%d","aud":"orders-api","iat":%d,"exp":%d,"jti":"j-%d"}' \
      "$i" "$now" $((now + 86400)) "$i" | b64)
  s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "bench-secret-$i" -binary | b64)
  path=/v1/orders/$i
  [ $((i % 5)) -eq 0 ] && path=/v1/admin/$i
  h2load -n "$per" -c $((1 + i % 4)) -m $((1 + i % 16)) \
    -H "authorization: Bearer $h.$p.$s" -H "user-agent: bench/1" \
    "http://127.0.0.1:$port$path" >"$tmp/h2load-$i.txt"
  grep -q "$per done" "$tmp/h2load-$i.txt" || { cat "$tmp/h2load-$i.txt"; exit 1; }
done
sleep 0.5
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true
grep -q "^0 packets dropped by kernel" "$tmp/tcpdump.err" || { cat "$tmp/tcpdump.err"; exit 1; }
echo "requests $total"
