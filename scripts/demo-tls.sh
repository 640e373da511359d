#!/usr/bin/env bash
# The HTTPS demo (issue 14): tokens inside TLS, seen by the TLS probe.
# Starts tokenwatch-collector (loopback, SQLite in a temp folder), nginx
# serving HTTPS on loopback (the system libssl), and tokenwatch-agent with
# --tls-probe alone (no packet capture: the wire only carries ciphertext).
# curl then sends the demo's tokens over HTTPS, HTTP/1.1 and HTTP/2: a
# valid one, an expired one the service still accepts, an unsigned
# (alg none) one, one in the URL, one replayed at a second service. The
# demo prints each use as the probe saw it (source, process) and the
# alerts the collector raised, then stops everything.
#
#   scripts/demo-tls.sh BUILD_DIR      (`make demo-tls`; root: the probe
#                                       needs CAP_BPF + CAP_PERFMON)
set -euo pipefail

die() {
  echo "demo-tls: $*" >&2
  exit 1
}

[ $# -eq 1 ] || die "usage: scripts/demo-tls.sh BUILD_DIR"
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
AGENT=$BUILD/agent/tokenwatch-agent
COLLECTOR=$BUILD/collector/tokenwatch-collector
[ -x "$AGENT" ] && [ -x "$COLLECTOR" ] || die "binaries not found in $BUILD (run: make demo-tls)"
[ "$(id -u)" = 0 ] || die "the TLS probe needs root (or CAP_BPF + CAP_PERFMON): run as root"
for tool in nginx curl openssl python3; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh demo)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tokenwatch-demo-tls.XXXXXX")
PIDS=()
cleanup() {
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

read -r GRPC HTTP TLS < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

# The demo config, with the TLS probe on.
cp examples/fingerprint.key "$TMP/fingerprint.key"
chmod 600 "$TMP/fingerprint.key"
sed -e 's|^agent:|agent:\n  tls_probe: { enabled: true, targets: auto }|' examples/tokenwatch.yaml >"$TMP/tokenwatch.yaml"

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 1 \
  -subj "/CN=orders.demo" 2>/dev/null
mkdir -p "$TMP/body"
cat >"$TMP/nginx.conf" <<CONF
worker_processes 1;
error_log $TMP/nginx.err;
pid $TMP/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $TMP/body;
  server {
    listen 127.0.0.1:$TLS ssl http2;
    ssl_certificate $TMP/cert.pem;
    ssl_certificate_key $TMP/key.pem;
    location / { return 200 '{"ok":true}\n'; }
  }
}
CONF
nginx -p "$TMP" -c "$TMP/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

"$COLLECTOR" -c "$TMP/tokenwatch.yaml" --listen "127.0.0.1:$GRPC" --http-listen "127.0.0.1:$HTTP" \
  --store "sqlite:$TMP/tokenwatch.db" 2>"$TMP/collector.err" &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$HTTP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

"$AGENT" -c "$TMP/tokenwatch.yaml" --tls-probe --collector "127.0.0.1:$GRPC" \
  --events-out "$TMP/events.jsonl" --metrics-listen 127.0.0.1:0 2>"$TMP/agent.err" &
AGENT_PID=$!
PIDS+=($AGENT_PID)
for _ in $(seq 100); do grep -q "TLS probe on" "$TMP/agent.err" && break; sleep 0.1; done
grep -q "TLS probe on" "$TMP/agent.err" || { cat "$TMP/agent.err" >&2; die "the TLS probe did not start"; }
grep "TLS probe" "$TMP/agent.err" | sed 's/^/  /'

# The tokens (HS256 with the demo issuer's secret; one expired, one unsigned).
eval "$(python3 - <<'PY'
import base64, hashlib, hmac, json, time
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
def jwt(claims, alg="HS256", secret=b"demo-issuer-secret"):
    h = b(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    p = b(json.dumps(claims).encode())
    sig = "" if alg == "none" else b(hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest())
    return f"{h}.{p}.{sig}"
now = int(time.time())
base = {"iss": "https://idp.demo", "aud": ["orders-api"], "iat": now - 60}
print("VALID=" + jwt(dict(base, sub="alice", jti="tls-valid", exp=now + 600)))
print("EXPIRED=" + jwt(dict(base, sub="bob", jti="tls-expired", exp=now - 3600, iat=now - 4000)))
print("UNSIGNED=" + jwt(dict(base, sub="mallory", jti="tls-none", exp=now + 600), alg="none"))
print("INURL=" + jwt(dict(base, sub="carol", jti="tls-url", exp=now + 600)))
PY
)"
req() {  # host http-version path token
  curl -sk -o /dev/null "$2" --resolve "$1:$TLS:127.0.0.1" -H @- "https://$1:$TLS$3" \
    <<<"Authorization: Bearer $4"
}
req orders.demo --http1.1 /v1/orders/42 "$VALID"
req orders.demo --http2 /v1/orders/42 "$EXPIRED"
req orders.demo --http1.1 /v1/profile "$UNSIGNED"
curl -sk -o /dev/null --http2 --resolve "orders.demo:$TLS:127.0.0.1" "https://orders.demo:$TLS/v1/export?access_token=$INURL"
req payments.demo --http2 /v1/charges "$VALID"   # alice's orders token replayed at payments

# Let the probe's last records reach the agent, then stop it (it drains to
# the collector before it exits).
sleep 1
kill -INT "$AGENT_PID"
wait "$AGENT_PID" || true
curl -fs "http://127.0.0.1:$HTTP/api/v1/alerts?limit=100" >"$TMP/alerts.json"

python3 - "$TMP/events.jsonl" "$TMP/alerts.json" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"\ntokenwatch-agent --tls-probe saw {len(events)} token uses inside HTTPS "
      "(the wire carried only ciphertext):\n")
rows = [["SERVICE", "PROTO", "METHOD", "PATH", "STATUS", "PROCESS", "SUB", "JTI", "FINDINGS"]]
for e in events:
    t, p = e["token"], e.get("process") or {}
    rows.append([e["service"], e["protocol"], e["method"], e["path"], str(e["status"]),
                 f'{p.get("comm", "-")}[{p.get("pid", "-")}]', t.get("sub", "-"), t.get("jti", "-"),
                 ",".join(e.get("findings") or []) or "-"])
w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for r in rows:
    print("  " + "  ".join(c.ljust(x) for c, x in zip(r, w)))
alerts = json.load(open(sys.argv[2])).get("alerts", [])
print(f"\ntokenwatch-collector raised {len(alerts)} alerts:\n")
for a in sorted(alerts, key=lambda a: a["ts"]):
    print(f'  {a["severity"]:<8} {a["type"]:<18} {a["service"]:<9} sub={a["token"].get("sub", "-"):<8} '
          f'accepted={str(a["accepted"]).lower():<5} {a["detail"]}')
PY
