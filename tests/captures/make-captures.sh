#!/usr/bin/env bash
# Regenerates the golden captures in this folder from real servers and
# clients on loopback: nginx and a Node http server answer, curl and raw
# sockets ask, tcpdump records. For each capture NAME it writes NAME.pcap and
# NAME.expected.jsonl (the token uses the clients sent, with the statuses the
# servers are configured to answer; see README.md). Needs root (tcpdump).
#
# usage: tests/captures/make-captures.sh [NAME...]     (default: all captures)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$HERE/tools"
# Ports: nginx 18080, Node 18081 (both on 127.0.0.1 and ::1), Node 18099 is
# nginx's upstream and stays out of the captures (filter covers 18080-18089).
NGINX_PORT=18080
NODE_PORT=18081
UPSTREAM_PORT=18099
FILTER="tcp and portrange 18080-18089"
MAX_BYTES=$((200 * 1024))

# name interface [link-type]; tcpdump 4.99 on "any" defaults to LINUX_SLL2,
# so the v1 cooked header is asked for explicitly.
CAPTURES=(
  "keepalive lo"
  "pipelining lo"
  "split-headers lo"
  "chunked lo"
  "ipv6 lo"
  "mixed-tokens lo"
  "any-interface any LINUX_SLL"
  "any-sll2 any LINUX_SLL2"
)

log() { printf '[make-captures] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in nginx node curl tcpdump tshark editcap python3 ss; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ $(id -u) -eq 0 ]] || die "run as root (tcpdump needs it)"

WANTED=("$@")
selected() {
  [[ ${#WANTED[@]} -eq 0 ]] && return 0
  local w
  for w in "${WANTED[@]}"; do [[ $w == "$1" ]] && return 0; done
  return 1
}

# ------------------------------------------------------------ fingerprint key
# 32 fixed bytes: SHA-256("tokenwatch golden captures fingerprint key v1").
KEY_HEX=de466e97715305c0907e394010078a4cebe22dd9f2d51393c7785d4f25277e75
printf '%b' "$(printf '%s' "$KEY_HEX" | sed 's/../\\x&/g')" >"$HERE/fingerprint.key.tmp"
chmod 600 "$HERE/fingerprint.key.tmp"  # the agent refuses a key others can read
mv "$HERE/fingerprint.key.tmp" "$HERE/fingerprint.key"
[[ $(od -An -v -tx1 "$HERE/fingerprint.key" | tr -d ' \n') == "$KEY_HEX" ]] \
  || die "fingerprint.key does not hold the expected bytes"

# ------------------------------------------------------------------- cleanup
WORK="$(mktemp -d /tmp/tokenwatch-captures.XXXXXX)"
chmod 0755 "$WORK"  # nginx workers run as nobody
PIDS=()        # servers, for the whole run
TCPDUMP_PID="" # the capture in progress, if any
cleanup() {
  local rc=$? pid
  [[ -z $TCPDUMP_PID ]] || PIDS+=("$TCPDUMP_PID")
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
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
for port in $NGINX_PORT $NODE_PORT $UPSTREAM_PORT; do
  if port_busy "$port"; then die "port $port is already in use"; fi
done

# --------------------------------------------------------------------- nginx
mkdir -p "$WORK/nginx"
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
    listen 127.0.0.1:$NGINX_PORT;
    listen [::1]:$NGINX_PORT;
    # Mirrored in tools/routes.js (nginxRoute); keep the two in step.
    location = /healthz    { default_type text/plain; return 200 "ok\n"; }
    location /v1/orders/   { default_type application/json; return 200 '{"order":"ok"}\n'; }
    location /v1/private/  { return 401; }
    location /v1/admin/    { return 403; }
    # chunked answers from the Node server, re-chunked by nginx
    location ~ ^/v1/(stream|payments)/ {
      proxy_pass http://127.0.0.1:$UPSTREAM_PORT;
      proxy_http_version 1.1;
      proxy_buffering off;
    }
    location /             { return 404; }
  }
}
NGINX
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' \
  >"$WORK/nginx/stdout.log" 2>&1 &
PIDS+=($!)

# ---------------------------------------------------------------------- node
node "$TOOLS/server.js" "127.0.0.1:$NODE_PORT" "[::1]:$NODE_PORT" "127.0.0.1:$UPSTREAM_PORT" \
  >"$WORK/node.log" 2>&1 &
PIDS+=($!)

healthy() {
  curl -sf --noproxy '*' -g -o /dev/null --max-time 2 "$1/healthz"
}
for url in "http://127.0.0.1:$NGINX_PORT" "http://[::1]:$NGINX_PORT" \
    "http://127.0.0.1:$NODE_PORT" "http://[::1]:$NODE_PORT" "http://127.0.0.1:$UPSTREAM_PORT"; do
  poll 10 healthy "$url" || die "server at $url did not come up (see $WORK)"
done
log "servers up: nginx :$NGINX_PORT, node :$NODE_PORT and :$UPSTREAM_PORT"

# Connections on the captured ports that still have packets to send.
open_conns() {
  ss -Htan state all exclude listening exclude time-wait exclude closed \
    "( sport >= :18080 and sport <= :18089 ) or ( dport >= :18080 and dport <= :18089 )" | grep -q .
}
no_open_conns() { ! open_conns; }

# Records one capture into $WORK/out. Called as an "if" condition (so that a
# bad take can be retried), where bash ignores set -e: every step checks its
# own status.
capture() {
  local name=$1 iface=$2 linktype=${3:-}
  local pcap="$WORK/out/$name.pcap" tlog="$WORK/$name.tcpdump.log"
  local args=(-i "$iface" -s 0 -U --immediate-mode -Z root -w "$pcap")
  [[ -z $linktype ]] || args+=(-y "$linktype")
  poll 10 no_open_conns || { log "$name: leftover connections on the capture ports"; return 1; }
  tcpdump "${args[@]}" "$FILTER" 2>"$tlog" &
  local tpid=$!
  TCPDUMP_PID=$tpid
  if ! poll 10 grep -qs 'listening on' "$tlog"; then
    log "$name: tcpdump did not start: $(cat "$tlog")"
    kill -INT "$tpid"
    wait "$tpid" || true
    TCPDUMP_PID=""
    return 1
  fi

  local ok=1
  node "$TOOLS/drive.js" "$name" "$WORK/out" || ok=0
  # every FIN and last ACK on the wire before tcpdump stops
  poll 10 no_open_conns || { log "$name: connections did not close"; ok=0; }
  sleep 0.3
  kill -INT "$tpid"
  wait "$tpid" || { log "$name: tcpdump failed: $(cat "$tlog")"; ok=0; }
  TCPDUMP_PID=""
  ((ok)) || return 1
  # libpcap on "any" sometimes reports kernel drops for packets outside the
  # filter; whether ours are all there is what verify-pcap.py checks below.
  grep -q '^0 packets dropped by kernel' "$tlog" || log "$name: note: $(grep dropped "$tlog")"

  local size
  size=$(stat -c %s "$pcap") || return 1
  if ((size >= MAX_BYTES)); then
    log "$name.pcap is $size bytes, over the $MAX_BYTES limit"
    return 1
  fi
  # pcap link types: 1 Ethernet (lo), 113 Linux cooked v1 (any), 276 cooked v2
  local lt_num=1
  case $linktype in
    LINUX_SLL) lt_num=113 ;;
    LINUX_SLL2) lt_num=276 ;;
  esac
  python3 "$TOOLS/verify-pcap.py" --ports 18080-18089 --meta "$WORK/out/$name.meta.json" \
    --linktype "$lt_num" "$pcap" "$WORK/out/$name.expected.jsonl"
}

# A capture that fails verification is taken again (a lost packet on a busy
# shared machine); three failures in a row stop the run.
capture_verified() {
  local attempt
  for attempt in 1 2 3; do
    if capture "$@"; then return 0; fi
    log "$1: attempt $attempt did not verify"
  done
  die "$1: the pcap does not match what the clients sent"
}

mkdir -p "$WORK/out"
done_names=()
for entry in "${CAPTURES[@]}"; do
  read -r name iface linktype <<<"$entry"
  selected "$name" || continue
  capture_verified "$name" "$iface" "$linktype"
  done_names+=("$name")
done
[[ ${#done_names[@]} -gt 0 ]] || die "no capture named ${WANTED[*]}"

# One pcapng twin (same packets, same expected file) for the pcapng reader.
PCAPNG_TWINS=(mixed-tokens)
twins=()
for name in "${PCAPNG_TWINS[@]}"; do
  [[ -f $WORK/out/$name.pcap ]] || continue
  editcap -F pcapng "$WORK/out/$name.pcap" "$WORK/out/$name.pcapng"
  python3 "$TOOLS/verify-pcap.py" --ports 18080-18089 --meta "$WORK/out/$name.meta.json" \
    "$WORK/out/$name.pcapng" "$WORK/out/$name.expected.jsonl" || die "$name.pcapng does not verify"
  twins+=("$name")
done

# Only now, with every capture verified, replace the committed files.
for name in "${done_names[@]}"; do
  mv "$WORK/out/$name.pcap" "$HERE/$name.pcap"
  mv "$WORK/out/$name.expected.jsonl" "$HERE/$name.expected.jsonl"
done
for name in "${twins[@]}"; do
  mv "$WORK/out/$name.pcapng" "$HERE/$name.pcapng"
done
log "wrote ${#done_names[@]} captures to $HERE"
