#!/usr/bin/env python3
"""Runs the agent over every capture in ../shared/data (captures written by
others: Suricata, Zeek, PcapPlusPlus, tcpdump, HTTP Evader, ...).

Checks, per capture:
  * the agent exits 0 within a time limit: no crash, no hang;
  * where tshark parses HTTP, the agent's count of HTTP requests equals
    tshark's, or the capture is listed in tshark_exceptions.txt with the
    reason the two differ (a listed capture that now agrees is an error too,
    so the list cannot go stale);
  * the token cases SOURCES.md names are found (bare JWT without Bearer,
    upper-case BEARER, opaque tokens containing dots, the WebSocket
    subprotocol bearer), and negative cases (Basic, unknown schemes) yield
    no token.

usage: shared_captures.py AGENT SHARED_DATA_DIR
Prints "N passed, M failed" and exits 1 on any failure.
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT_S = 60


def load_exceptions():
    out = {}
    with open(os.path.join(HERE, "tshark_exceptions.txt")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, reason = line.split(None, 1)
            out[name] = reason
    return out


def tshark_requests(path):
    # Count request methods, not frames: one frame can carry several
    # pipelined requests. Every TCP port is tried as HTTP, as the agent does.
    r = subprocess.run(
        ["tshark", "-n", "-r", path, "-o", "http.tcp.port:1-65535",
         "-Y", "http.request", "-T", "fields", "-e", "http.request.method"],
        capture_output=True, text=True, timeout=TIMEOUT_S * 4)
    if r.returncode != 0:
        return None
    return sum(len([m for m in line.split(",") if m]) for line in r.stdout.splitlines())


def run_agent(agent, path, key_dir):
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as events:
        cfg = os.path.join(key_dir, "tokenwatch.yaml")
        r = subprocess.run(
            [agent, "-c", cfg, "-r", path, "--events-out", events.name,
             "--agent-id", "shared"],
            capture_output=True, text=True, timeout=TIMEOUT_S)
        evs = [json.loads(l) for l in events.read().splitlines() if l.strip()]
    m = re.search(r"^\s*http_requests\s+(\d+)", r.stderr, re.M)
    return r.returncode, (int(m.group(1)) if m else None), evs, r.stderr


# capture → check on its events
TOKEN_CASES = {
    "suricata-verify/bug-7390_authorization-raw-jwt-no-bearer.pcap":
        lambda evs: len(evs) == 1 and evs[0]["token"]["kind"] == "jwt"
        and evs[0]["location"] == "authorization" and evs[0]["token"]["alg"] == "HS256"
        and evs[0]["token"]["exp"] == 1731049540 and evs[0]["status"] == 200,
    "suricata-verify/http-auth-bearer_rfc6750-opaque.pcap":
        lambda evs: len(evs) == 1 and evs[0]["token"]["kind"] == "opaque",
    "suricata-verify/http-post-file_mattermost-BEARER-uppercase.pcap":
        lambda evs: len(evs) == 2 and all(e["token"]["kind"] == "opaque" for e in evs)
        and len({e["token"]["fp"] for e in evs}) == 1,
    "zeek/wstunnel-http_jwt-in-sec-websocket-protocol.pcap":
        lambda evs: len(evs) == 1 and evs[0]["location"] == "websocket_protocol"
        and evs[0]["token"]["kind"] == "jwt" and evs[0]["status"] == 101,
    "zeek/wstunnel-ssh_jwt-in-sec-websocket-protocol.pcap":
        lambda evs: len(evs) == 2 and all(e["token"]["kind"] == "jwt" for e in evs),
    "suricata-verify/http-auth-unrecognized_turbo-scheme.pcap": lambda evs: evs == [],
    "zeek/http-basic-auth-with-colon.pcap": lambda evs: evs == [],
    "zeek/http-basic-auth-extra-space.pcap": lambda evs: evs == [],
}


# capture → lines its summary (stderr) must hold: messages the parser gave
# up on are counted, never silent (issue 13).
SUMMARY_CASES = {
    # "\n\r\r\n" ends no head: the response is cut off by the close.
    "suricata-verify/http-evader/http-evader-410.pcap": [r"anomalies\s.*http_incomplete_head=1"],
    "suricata-verify/http-evader/http-evader-412.pcap": [r"anomalies\s.*http_incomplete_head=1"],
    "suricata-verify/http-multiple-content-length.pcap":
        [r"http_requests\s+3\b", r"anomalies\s.*http_multiple_content_length=1"],
    "suricata-verify/http-connect-fragmented.pcap": [r"http_requests\s+2\b", r"undecoded_bytes\s+0\b"],
}


def main():
    agent, data = sys.argv[1], sys.argv[2]
    exceptions = load_exceptions()
    captures = []
    for root, _, files in os.walk(data):
        for f in files:
            if f.endswith((".pcap", ".pcapng")):
                captures.append(os.path.relpath(os.path.join(root, f), data))
    captures.sort()
    missing = [c for c in list(SUMMARY_CASES) + list(TOKEN_CASES) if c not in captures]
    if missing:
        print(f"captures named by a check are missing: {missing}")
        return 1
    if len(captures) < 500:
        print(f"only {len(captures)} captures under {data}: is shared/data there?")
        return 1
    key_dir = tempfile.mkdtemp()
    with open(os.path.join(key_dir, "key"), "wb") as f:
        f.write(b"shared-captures-test-key")
    os.chmod(os.path.join(key_dir, "key"), 0o600)  # the agent refuses a key others can read
    with open(os.path.join(key_dir, "tokenwatch.yaml"), "w") as f:
        f.write("fingerprint_key_file: key\nagent:\n  fold_window: 0s\n")

    def check(rel):
        path = os.path.join(data, rel)
        problems = []
        try:
            rc, agent_n, evs, stderr = run_agent(agent, path, key_dir)
        except subprocess.TimeoutExpired:
            return rel, [f"agent hung (> {TIMEOUT_S}s)"], None, None
        if rc != 0:
            problems.append(f"agent exit {rc}: {stderr.strip()[-300:]}")
        if agent_n is None:
            problems.append("no http_requests in the summary")
        for want in SUMMARY_CASES.get(rel, []):
            if not re.search(want, stderr, re.M):
                problems.append(f"summary lacks /{want}/")
        if rel in TOKEN_CASES and not TOKEN_CASES[rel](evs):
            problems.append(f"token check failed: {json.dumps(evs)[:400]}")
        tshark_n = tshark_requests(path)
        return rel, problems, agent_n, tshark_n

    passed = failed = 0
    agree = differ_listed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for rel, problems, agent_n, tshark_n in pool.map(check, captures):
            if agent_n is not None and tshark_n is not None:
                if agent_n == tshark_n:
                    agree += 1
                    if rel in exceptions:
                        problems.append(f"listed in tshark_exceptions.txt but now agrees ({agent_n}): remove it")
                elif rel in exceptions:
                    differ_listed += 1
                else:
                    problems.append(f"agent counts {agent_n} HTTP requests, tshark {tshark_n}")
            if problems:
                failed += 1
                for p in problems:
                    print(f"FAIL {rel}: {p}")
            else:
                passed += 1
    print(f"{len(captures)} captures: tshark agrees on {agree}, "
          f"{differ_listed} differ for documented reasons")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
