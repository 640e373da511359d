#!/usr/bin/env bash
# The tokenwatch demo: starts tokenwatch-collector (SQLite store in a temp
# folder, loopback only), replays examples/demo.pcap (a small fleet of
# services recorded by examples/make-demo.sh) through tokenwatch-agent into
# it, prints one table row per token use, the agent's summary, then the
# alerts the collector raised, and stops the collector. Nothing leaves
# loopback.
#
#   scripts/demo.sh BUILD_DIR          (`make demo` runs it on build-demo/)
#
# examples/README.md says what each request of the capture is meant to show.
set -euo pipefail

die() {
  echo "demo: $*" >&2
  exit 1
}

[ $# -eq 1 ] || die "usage: scripts/demo.sh BUILD_DIR"
[ -d "$1" ] || die "build directory '$1' not found (run: make demo)"
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

AGENT=$BUILD/agent/tokenwatch-agent
COLLECTOR=$BUILD/collector/tokenwatch-collector
CONFIG=examples/tokenwatch.yaml
PCAP=examples/demo.pcap
[ -x "$AGENT" ] || die "$AGENT not found (run: make demo)"
[ -x "$COLLECTOR" ] || die "$COLLECTOR not found (run: make demo)"
[ -f "$PCAP" ] || die "$PCAP not found (regenerate it: sudo examples/make-demo.sh)"
command -v python3 >/dev/null || die "python3 not found (scripts/install-deps.sh demo)"
command -v curl >/dev/null || die "curl not found (scripts/install-deps.sh demo)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tokenwatch-demo.XXXXXX")
COLLECTOR_PID=""
cleanup() {
  if [ -n "$COLLECTOR_PID" ]; then
    kill -TERM "$COLLECTOR_PID" 2>/dev/null || true
    wait "$COLLECTOR_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# Free loopback ports, so the demo never clashes with a running collector.
read -r GRPC_PORT HTTP_PORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

"$COLLECTOR" -c "$CONFIG" --listen "127.0.0.1:$GRPC_PORT" --http-listen "127.0.0.1:$HTTP_PORT" \
  --store "sqlite:$TMP/tokenwatch.db" --alerts-out "$TMP/alerts.jsonl" 2>"$TMP/collector.stderr" &
COLLECTOR_PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$COLLECTOR_PID" 2>/dev/null || { cat "$TMP/collector.stderr" >&2; die "collector failed to start"; }
  sleep 0.1
done

# The agent streams to the collector and also writes the events it sent.
# Port 0 for metrics: a replay must not clash with an agent already running.
if ! "$AGENT" -c "$CONFIG" -r "$PCAP" --events-out "$TMP/events.jsonl" \
    --collector "127.0.0.1:$GRPC_PORT" --agent-id demo-host \
    --metrics-listen 127.0.0.1:0 2>"$TMP/agent.stderr"; then
  cat "$TMP/agent.stderr" >&2
  die "tokenwatch-agent failed"
fi
curl -fs "http://127.0.0.1:$HTTP_PORT/api/v1/alerts?limit=1000" >"$TMP/alerts.json" ||
  die "cannot read alerts from the collector's API"

python3 - "$TMP/events.jsonl" "$TMP/agent.stderr" "$PCAP" "$TMP/alerts.json" <<'PY'
import json
import re
import signal
import sys

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `scripts/demo.sh build | head` is fine

events_file, stderr_file, pcap, alerts_file = sys.argv[1:5]
events = [json.loads(line) for line in open(events_file) if line.strip()]
events.sort(key=lambda e: e['ts'])  # stable: equal times keep file order
summary = open(stderr_file).read()
m = re.findall(r'^\s*http_requests\s+(\d+)', summary, re.M)
requests = int(m[-1]) if m else None


def dash(v):
    return '-' if v in (None, '', []) else str(v)


def row(e):
    t = e.get('token') or {}
    loc = e.get('location', '')
    if e.get('param'):
        loc += ':' + e['param']
    ident = t.get('jti') or ('fp:' + t.get('fp', '')[:12])
    kind = dash(t.get('kind'))
    if kind == 'jwt':  # the header's alg, so an unsigned "none" token stands out
        kind += '/' + (t.get('alg') or '?')
    return [e['ts'][11:23], dash(e.get('service')), dash(e.get('client')), dash(e.get('method')),
            dash(e.get('path')), dash(e.get('status')), loc, kind,
            dash(t.get('sub')), ident, ','.join(e.get('findings') or []) or '-',
            str(e.get('count', 1))]


header = ['TIME (UTC)', 'SERVICE', 'CLIENT', 'METHOD', 'PATH', 'STATUS', 'LOCATION',
          'KIND', 'SUB', 'JTI / FP', 'FINDINGS', 'N']
rows = [row(e) for e in events]
uses = sum(int(e.get('count', 1)) for e in events)
if all(r[-1] == '1' for r in rows):  # no folding: the count column says nothing
    header, rows = header[:-1], [r[:-1] for r in rows]

services = sorted({e.get('service') for e in events})
clients = sorted({e.get('client') for e in events})
tokens = {(e['token'].get('iss', ''), e['token'].get('jti') or e['token'].get('fp')) for e in events}
line = f'tokenwatch-agent replayed {pcap}: {uses} token uses'
if requests is not None:
    line += f' in {requests} HTTP requests'
line += (f', {len(tokens)} tokens, {len(services)} services ({", ".join(services)}), '
         f'{len(clients)} client addresses.')
print(line)
notes = ['One row per usage event, as the agent streams it to the collector: raw tokens never '
         'leave the host,', 'only claims, the jti, or fp (an HMAC of the token) for tokens without one.']
if requests is not None and requests > uses:
    notes.append(f'{requests - uses} request(s) carried no token (e.g. Basic auth) and yield no event.')
notes.append('The alerts these uses should raise are listed in examples/README.md.')
for n in notes:
    print('  ' + n)
print()

widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
right = {header.index('STATUS')}
if 'N' in header:
    right.add(header.index('N'))


def fmt(r):
    cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
    return '  '.join(cells).rstrip()


print(fmt(header))
print('  '.join('-' * w for w in widths))
for r in rows:
    print(fmt(r))
print()
print(summary.rstrip())

# The collector's view: one alert per (type, token identity, service).
alerts = json.load(open(alerts_file))['alerts']
alerts.sort(key=lambda a: (a['ts'], a['type']))
print()
print(f'tokenwatch-collector raised {len(alerts)} alerts (GET /api/v1/alerts):')
print()
aheader = ['TIME (UTC)', 'TYPE', 'SEVERITY', 'SERVICE', 'TOKEN', 'SUB', 'STATUS', 'ACCEPTED', 'N', 'DETAIL']
arows = []
for a in alerts:
    t = a.get('token') or {}
    acc = a.get('accepted')
    arows.append([a['ts'][11:23], a['type'], a['severity'], dash(a.get('service')),
                  t.get('jti') or ('fp:' + t.get('fp', '')[:12]), dash(t.get('sub')),
                  dash(a.get('status')), 'yes' if acc else ('-' if acc is None else 'no'),
                  str(a.get('count', 1)), a.get('detail', '')])
widths = [max(len(r[i]) for r in [aheader] + arows) for i in range(len(aheader))]
right = {aheader.index('STATUS'), aheader.index('N')}
print(fmt(aheader))
print('  '.join('-' * w for w in widths))
for r in arows:
    print(fmt(r))
PY
