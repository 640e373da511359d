#!/usr/bin/env bash
# Regenerates examples/demo.pcap: a small fleet of real services on loopback
# (two Node http servers and nginx), curl as the client, tcpdump recording.
# The scenario is described request by request in examples/README.md.
#
#   orders.demo     Node    127.0.0.1:18181  careful: verifies alg, signature, exp, aud, scope
#   payments.demo   Node    127.0.0.1:18182  sloppy: no exp/aud/scope check, trusts alg "none"
#   inventory.demo  nginx   127.0.0.1:18183  legacy: any credential will do; Basic auth on /v1/admin/
#
# Tokens are minted now (HS256, node crypto), so "expired" means expired
# relative to the capture time. Needs root (tcpdump), nginx, node, curl,
# tcpdump, tshark, python3, openssl, ss. Nothing leaves 127.0.0.1; the
# servers' files live in a temp folder and everything started is stopped on
# exit. examples/demo.pcap is only replaced once the new take has verified.
#
# usage: sudo examples/make-demo.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$HERE/demo-tools"
ORDERS_PORT=18181
PAYMENTS_PORT=18182
INVENTORY_PORT=18183
FILTER="tcp and portrange 18181-18183"
MAX_BYTES=$((300 * 1024))
# The demo IdP's HS256 secret. A test secret: the tokens it signs grant nothing.
IDP_SECRET=demo-idp-hs256-c6159f1b1d0bfe4759fbb3f543dc09f8
ISSUER=https://idp.demo
BASIC_USER=ops
BASIC_PASSWORD=inventory-ops-2026

log() { printf '[make-demo] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in nginx node curl tcpdump tshark python3 openssl ss; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ $(id -u) -eq 0 ]] || die "run as root (tcpdump needs it)"

# ------------------------------------------------------------ fingerprint key
# 32 fixed bytes: SHA-256("tokenwatch demo fingerprint key v1"), raw, no newline.
KEY_HEX=8d885fed5877e1e6bdb7208b02312d9b1ca50f847c9f579eee22d5a3a7e03205
printf '%b' "$(printf '%s' "$KEY_HEX" | sed 's/../\\x&/g')" >"$HERE/fingerprint.key.tmp"
chmod 600 "$HERE/fingerprint.key.tmp"  # the agent refuses a key others can read
mv "$HERE/fingerprint.key.tmp" "$HERE/fingerprint.key"
[[ $(od -An -v -tx1 "$HERE/fingerprint.key" | tr -d ' \n') == "$KEY_HEX" ]] \
  || die "fingerprint.key does not hold the expected bytes"

# ------------------------------------------------------------------- cleanup
WORK="$(mktemp -d /tmp/tokenwatch-demo.XXXXXX)"
chmod 0755 "$WORK"  # nginx workers run as nobody
PIDS=()
TCPDUMP_PID=""
cleanup() {
  local rc=$? pid
  [[ -z $TCPDUMP_PID ]] || PIDS+=("$TCPDUMP_PID")
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $rc -ne 0 && -d $WORK ]]; then
    log "failed; logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until CMD succeeds, polling every 50 ms, at most $1 seconds.
poll() {
  local secs=$1
  shift
  local deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

port_busy() { ss -Htln "( sport = :$1 )" | grep -q .; }
for port in $ORDERS_PORT $PAYMENTS_PORT $INVENTORY_PORT; do
  if port_busy "$port"; then die "port $port is already in use"; fi
done

# ------------------------------------------------------- inventory (nginx)
mkdir -p "$WORK/nginx" "$WORK/www"
printf '%s:%s\n' "$BASIC_USER" "$(openssl passwd -apr1 "$BASIC_PASSWORD")" >"$WORK/nginx/htpasswd"
chmod 0644 "$WORK/nginx/htpasswd"
printf '{"report":"stock","skus":2,"low_stock":["sku-1002"]}\n' >"$WORK/www/stock-report.json"
cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  keepalive_timeout 30s;
  server {
    listen 127.0.0.1:$INVENTORY_PORT;
    server_name inventory.demo;
    root $WORK/www;
    default_type application/json;
    # The legacy part: a credential must be present, nothing is checked.
    set \$credential "\$http_authorization\$arg_access_token";
    location = /healthz { return 200 '{"ok":true}\n'; }
    location = /v1/items {
      if (\$credential = "") { return 401 '{"error":"unauthorized"}\n'; }
      return 200 '{"items":[{"sku":"sku-1001","qty":40},{"sku":"sku-1002","qty":3}]}\n';
    }
    location ~ ^/v1/items/(?<sku>[a-z0-9-]+)\$ {
      if (\$credential = "") { return 401 '{"error":"unauthorized"}\n'; }
      return 200 '{"sku":"\$sku","qty":40,"warehouse":"ber-1"}\n';
    }
    location = /v1/admin/stock-report {
      auth_basic "inventory admin";
      auth_basic_user_file $WORK/nginx/htpasswd;
      try_files /stock-report.json =404;
    }
    location / { return 404 '{"error":"not found"}\n'; }
  }
}
NGINX
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' \
  >"$WORK/nginx/stdout.log" 2>&1 &
PIDS+=($!)

# ------------------------------------------------ orders, payments (Node)
export DEMO_IDP_SECRET=$IDP_SECRET DEMO_ISSUER=$ISSUER
node "$TOOLS/service.js" orders "127.0.0.1:$ORDERS_PORT" >"$WORK/orders.log" 2>&1 &
PIDS+=($!)
node "$TOOLS/service.js" payments "127.0.0.1:$PAYMENTS_PORT" >"$WORK/payments.log" 2>&1 &
PIDS+=($!)

healthy() { curl -sf --noproxy '*' -o /dev/null --max-time 2 "http://127.0.0.1:$1/healthz"; }
for port in $ORDERS_PORT $PAYMENTS_PORT $INVENTORY_PORT; do
  poll 10 healthy "$port" || die "server on 127.0.0.1:$port did not come up (see $WORK)"
done
log "services up: orders :$ORDERS_PORT, payments :$PAYMENTS_PORT (node), inventory :$INVENTORY_PORT (nginx)"

# Connections on the demo ports that still have packets to send.
open_conns() {
  ss -Htan state all exclude listening exclude time-wait exclude closed \
    "( sport >= :18181 and sport <= :18183 ) or ( dport >= :18181 and dport <= :18183 )" | grep -q .
}
no_open_conns() { ! open_conns; }

# One take: tcpdump on lo while drive.js plays the scenario, then verify.py.
# Called as an "if" condition (set -e is off there): every step checks itself.
take() {
  local pcap="$WORK/demo.pcap" tlog="$WORK/tcpdump.log" now
  rm -f "$pcap" "$WORK/manifest.json"
  poll 10 no_open_conns || { log "leftover connections on the demo ports"; return 1; }
  now=$(date +%s)
  tcpdump -i lo -s 0 -U --immediate-mode -Z root -w "$pcap" "$FILTER" 2>"$tlog" &
  TCPDUMP_PID=$!
  if ! poll 10 grep -qs 'listening on' "$tlog"; then
    log "tcpdump did not start: $(cat "$tlog")"
    kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" || true; TCPDUMP_PID=""
    return 1
  fi
  local ok=1
  DEMO_BASIC="$BASIC_USER:$BASIC_PASSWORD" DEMO_ORDERS_PORT=$ORDERS_PORT \
    DEMO_PAYMENTS_PORT=$PAYMENTS_PORT DEMO_INVENTORY_PORT=$INVENTORY_PORT \
    node "$TOOLS/drive.js" --now "$now" --manifest "$WORK/manifest.json" || ok=0
  # every FIN and last ACK on the wire before tcpdump stops
  poll 10 no_open_conns || { log "connections did not close"; ok=0; }
  sleep 0.3
  kill -INT "$TCPDUMP_PID"
  wait "$TCPDUMP_PID" || { log "tcpdump failed: $(cat "$tlog")"; ok=0; }
  TCPDUMP_PID=""
  ((ok)) || return 1
  local size
  size=$(stat -c %s "$pcap") || return 1
  ((size < MAX_BYTES)) || { log "demo.pcap is $size bytes, over $MAX_BYTES"; return 1; }
  python3 "$TOOLS/verify.py" --ports 18181-18183 "$pcap" "$WORK/manifest.json"
}

for attempt in 1 2 3; do
  if take; then
    mv "$WORK/demo.pcap" "$HERE/demo.pcap"
    log "wrote $HERE/demo.pcap ($(stat -c %s "$HERE/demo.pcap") bytes)"
    exit 0
  fi
  log "attempt $attempt did not verify"
done
die "demo.pcap does not match what the clients sent"
