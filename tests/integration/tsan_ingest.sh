#!/usr/bin/env bash
# The threaded gRPC path under ThreadSanitizer: a TSan collector ingests from
# four concurrent CollectorSink streams (ingest_bench) and from a TSan agent
# replaying the demo capture. Any TSan report, or a lost event, fails.
#   tsan_ingest.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: tsan_ingest.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
cpid=
cleanup() {
  [ -n "$cpid" ] && kill "$cpid" 2>/dev/null && wait "$cpid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
read -r gp hp < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
"$build/collector/tokenwatch-collector" --listen "127.0.0.1:$gp" --http-listen "127.0.0.1:$hp" \
  --store "sqlite:$tmp/tsan.db" 2>"$tmp/collector.err" &
cpid=$!
for _ in $(seq 300); do
  curl -fs "http://127.0.0.1:$hp/healthz" >/dev/null 2>&1 && break
  kill -0 "$cpid" 2>/dev/null || { cat "$tmp/collector.err" >&2; exit 1; }
  sleep 0.1
done
"$build/tests/bench/ingest_bench" "127.0.0.1:$gp" --streams 4 --events 40000 --tokens 2000 \
  >"$tmp/bench.out" 2>"$tmp/bench.err" || { cat "$tmp/bench.err" >&2; exit 1; }
cp "$root/examples/fingerprint.key" "$tmp/fp.key" && chmod 600 "$tmp/fp.key"
printf 'fingerprint_key_file: fp.key\n' >"$tmp/agent.yaml"
"$build/agent/tokenwatch-agent" -c "$tmp/agent.yaml" -r "$root/examples/demo.pcap" \
  --collector "127.0.0.1:$gp" --agent-id tsan-agent 2>"$tmp/agent.err" ||
  { cat "$tmp/agent.err" >&2; exit 1; }
events=$(curl -fs "http://127.0.0.1:$hp/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')
kill -TERM "$cpid"
wait "$cpid" || { echo "collector exited $?" >&2; cat "$tmp/collector.err" >&2; exit 1; }
cpid=
fail=0
for f in collector.err bench.err agent.err; do
  if grep -q "ThreadSanitizer" "$tmp/$f"; then
    echo "TSan report in $f:" >&2
    cat "$tmp/$f" >&2
    fail=1
  fi
done
demo=$(awk '$1 == "events" {print $2}' "$tmp/agent.err")
want=$((40000 + demo))
if [ "$events" != "$want" ]; then
  echo "collector applied $events events, expected $want (40000 from ingest_bench + $demo from the agent)" >&2
  fail=1
fi
[ $fail -eq 0 ] && echo "ok tsan ingest: $events events over 5 streams, no TSan report"
exit $fail
