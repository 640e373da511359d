#!/usr/bin/env bash
# Compares how many HTTP requests tshark finds in a capture with the
# "http_requests N" line of tokenwatch-agent's stderr summary.
#
# usage: check-tshark-count.sh AGENT CAPTURE [PORT|LO-HI ...]
#   AGENT    the tokenwatch-agent binary, or a folder holding it
#   PORT     extra TCP ports tshark should decode as HTTP; the ports of the
#            captures in this folder (18080-18089) are always included
# env: TOKENWATCH_AGENT_ARGS  extra agent arguments (word-split)
#
# tshark counts requests, not frames: a pipelined segment carrying three
# requests is one frame with three http.request.method fields.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { printf 'check-tshark-count: %s\n' "$*" >&2; exit 2; }

[[ $# -ge 2 ]] || die "usage: $0 AGENT CAPTURE [PORT|LO-HI ...]"
agent=$1
capture=$2
shift 2

if [[ -d $agent ]]; then
  found=""
  for cand in "$agent/tokenwatch-agent" "$agent/agent/tokenwatch-agent" "$agent/bin/tokenwatch-agent"; do
    if [[ -x $cand && -f $cand ]]; then found=$cand; break; fi
  done
  [[ -n $found ]] || found=$(find "$agent" -name tokenwatch-agent -type f -perm -u+x -print -quit)
  [[ -n $found ]] || die "no tokenwatch-agent under $agent"
  agent=$found
fi
[[ -x $agent ]] || die "not executable: $agent"
[[ -f $capture ]] || die "no capture $capture"

decode=(-d "tcp.port==18080-18089,http")
for port in "$@"; do
  [[ $port =~ ^[0-9]+(-[0-9]+)?$ ]] || die "bad port $port"
  decode+=(-d "tcp.port==$port,http")
done

tshark_count=$(tshark -r "$capture" "${decode[@]}" -Y http.request -T fields \
  -E occurrence=a -E aggregator=, -e http.request.method 2>/dev/null |
  awk -F, '{ n += NF } END { print n + 0 }')

stderr_file=$(mktemp)
trap 'rm -f "$stderr_file"' EXIT
read -r -a extra <<<"${TOKENWATCH_AGENT_ARGS:-}"
rc=0
"$agent" -c "$HERE/tokenwatch.yaml" -r "$capture" --events-out /dev/null "${extra[@]}" \
  2>"$stderr_file" >/dev/null || rc=$?
if [[ $rc -ne 0 ]]; then
  echo "FAIL $capture: agent exited $rc"
  cat "$stderr_file"
  exit 1
fi
agent_count=$(sed -n -E 's/^[[:space:]]*http_requests[[:space:]]+([0-9]+).*/\1/p' "$stderr_file" | tail -n 1)
if [[ -z $agent_count ]]; then
  echo "FAIL $capture: no 'http_requests N' line in the agent's stderr:"
  cat "$stderr_file"
  exit 1
fi

if [[ $tshark_count -ne $agent_count ]]; then
  echo "FAIL $capture: tshark counts $tshark_count HTTP requests, the agent $agent_count"
  exit 1
fi
echo "ok $(basename "$capture"): $agent_count HTTP requests (tshark agrees)"
