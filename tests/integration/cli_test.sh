#!/usr/bin/env bash
# The agent's command line as a user meets it: stdin replay, usage and config
# errors (exit 2 with file, line and key), runtime errors (exit 1), --version.
# usage: cli_test.sh AGENT CAPTURES_DIR
set -uo pipefail
AGENT=$1
CAPS=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
check() {  # check NAME CONDITION...
  local name=$1
  shift
  if "$@"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $name"
  fi
}

cfg="$CAPS/tokenwatch.yaml"
pcap="$CAPS/keepalive.pcap"

# -r - reads stdin and yields exactly what -r FILE yields.
"$AGENT" -c "$cfg" -r "$pcap" --events-out "$TMP/file.jsonl" 2>/dev/null
"$AGENT" -c "$cfg" -r - --events-out "$TMP/stdin.jsonl" <"$pcap" 2>/dev/null
check "stdin replay equals file replay" cmp -s "$TMP/file.jsonl" "$TMP/stdin.jsonl"
check "replay produced events" test -s "$TMP/file.jsonl"

# A BPF filter that excludes everything yields no events; a bad one is exit 2.
"$AGENT" -c "$cfg" -r "$pcap" -f "tcp port 9" --events-out "$TMP/none.jsonl" 2>/dev/null
check "filter applies" test ! -s "$TMP/none.jsonl"
"$AGENT" -c "$cfg" -r "$pcap" -f "tcp port nonsense" 2>"$TMP/err" >/dev/null
check "bad filter exits 2" test $? -eq 2
check "bad filter is named" grep -q "bad filter" "$TMP/err"

# Config errors: exit 2, naming file, line and key.
printf 'agent:\n  fold_window: 0s\n  interfce: eth0\n' >"$TMP/bad.yaml"
"$AGENT" -c "$TMP/bad.yaml" -r "$pcap" 2>"$TMP/err" >/dev/null
check "unknown key exits 2" test $? -eq 2
check "unknown key names file:line and key" grep -q "bad.yaml:3: key 'agent.interfce'" "$TMP/err"
printf 'detections:\n  clock_leeway: 30x\n' >"$TMP/dur.yaml"
"$AGENT" -c "$TMP/dur.yaml" -r "$pcap" 2>"$TMP/err" >/dev/null
check "bad duration exits 2" test $? -eq 2
check "bad duration names the key" grep -q "dur.yaml:2: key 'detections.clock_leeway'" "$TMP/err"
printf 'fingerprint_key_file: missing.key\n' >"$TMP/key.yaml"
"$AGENT" -c "$TMP/key.yaml" -r "$pcap" 2>"$TMP/err" >/dev/null
check "missing key file exits 2" test $? -eq 2

# Usage errors.
"$AGENT" 2>/dev/null >/dev/null
check "no source exits 2" test $? -eq 2
"$AGENT" -r "$pcap" --bogus 2>/dev/null >/dev/null
check "unknown flag exits 2" test $? -eq 2
"$AGENT" -r "$TMP/does-not-exist.pcap" 2>"$TMP/err" >/dev/null
check "unreadable capture exits 2" test $? -eq 2
check "unreadable capture is named" grep -q "does-not-exist.pcap" "$TMP/err"
head -c 3000 "$pcap" >"$TMP/cut.pcap"
"$AGENT" -c "$cfg" -r "$TMP/cut.pcap" --events-out /dev/null 2>"$TMP/err"
rc=$?
check "truncated capture is a clear runtime result, not a crash" test $rc -le 1
check "truncated capture still prints the summary" grep -q "http_requests" "$TMP/err"
"$AGENT" --version | grep -q "tokenwatch-agent"
check "--version" test $? -eq 0

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
