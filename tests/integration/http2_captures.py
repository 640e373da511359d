#!/usr/bin/env python3
"""HTTP/2 and gRPC captures in ../shared/data against tshark's HTTP/2
dissector (the reference): the same requests, responses and token uses.

For each capture, tshark (`-d tcp.port==PORT,http2` for the server ports
named below; h2c upgrades it follows by itself) gives every header block;
from them this script builds the requests (the client's first block on a
stream), their final :status and the trailers' grpc-status, and the token
uses (Authorization: Bearer|JWT|bare JWT, fingerprinted as the agent does).
A header tshark shows as <unknown> (an HPACK entry from before the capture)
is absent on both sides: the agent must not guess it either.

Checks per capture:
  * the agent exits 0, and its http2_requests equals tshark's request count;
  * the agent's events, projected to (protocol, method, path, status,
    grpc_status, location, fp), equal tshark's token uses as multisets;
  * the anomalies it reports are among those the capture explains
    (EXPECTED_ANOMALIES); anything else fails.

usage: http2_captures.py AGENT SHARED_DATA_DIR
Prints one line per capture with the counts, then "N passed, M failed".
"""
import base64
import collections
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import tempfile

KEY = b"http2-captures-test-key"

# capture -> tshark decode-as ports (server side)
CAPTURES = {
    "ecrent-microservices-demo/grpc-h2c-authorization-bearer-rs256-jwt.pcap": [7070],
    "ecrent-microservices-demo/grpc-h2c-split-jwt-custom-headers.pcap": [7070],
    "packt-grpc-go/grpc-unary.pcapng": [50051],
    "packt-grpc-go/grpc-server-streaming.pcapng": [50051],
    "packt-grpc-go/grpc-client-streaming.pcapng": [50051],
    "packt-grpc-go/grpc-bidi-streaming.pcapng": [50051],
    "suricata-verify/http2/h2c-headers-continuation.pcap": [8080],
    "suricata-verify/http2/h2c-upgrade-wireshark-wiki.pcap": [],
    "suricata-verify/http2/h2c-upgrade-range-multi.pcap": [],
    "suricata-verify/http2/h2c-upgrade-deflate.pcap": [],
    "suricata-verify/http2/h2-chrome-hpack-dynamic-table.pcap": [443],
    "suricata-verify/http2/h2-decrypted-bugfixes.pcap": [443],
    "suricata-verify/http2/h2c-doh-post-68-streams.pcap": [80],
    "suricata-verify/http2/h2c-long-frames.pcap": [8443],
    "suricata-verify/http2/h2c-multiple-headers.pcap": [80],
    "suricata-verify/http2/h2c-userinfo-in-authority.pcap": [80],
    # the proxy's upstream leg is h2c with prior knowledge on 6233
    "suricata-verify/http2/grpc-over-h2c-in-http-connect.pcap": [6233],
}

# Anomalies a capture explains (anything else the agent reports fails it).
MIDSTREAM = {"tcp_midstream_pickup", "http2_resync", "tcp_retransmission",
             "http2_hpack_unknown_index"}
EXPECTED_ANOMALIES = collections.defaultdict(set, {
    "ecrent-microservices-demo/grpc-h2c-authorization-bearer-rs256-jwt.pcap": MIDSTREAM,
    "ecrent-microservices-demo/grpc-h2c-split-jwt-custom-headers.pcap": MIDSTREAM,
    # a CONNECT tunnel: its HTTP/2 is not parsed (yet)
    "suricata-verify/http2/grpc-over-h2c-in-http-connect.pcap": {"http_tunnel"},
    # 101 Switching Protocols: the HTTP/1 parser counts the tunnel it hands over
    "suricata-verify/http2/h2c-upgrade-wireshark-wiki.pcap":
        {"http_tunnel", "tcp_midstream_pickup"},  # a handshake packet is missing
    # unrelated loopback traffic (not HTTP) already open when capture began
    "packt-grpc-go/grpc-unary.pcapng": {"tcp_midstream_pickup"},
    "suricata-verify/http2/h2c-upgrade-range-multi.pcap": {"http_tunnel"},
    "suricata-verify/http2/h2c-upgrade-deflate.pcap": {"http_tunnel"},
})


def b64json(part):
    try:
        pad = "=" * (-len(part) % 4)
        return json.loads(base64.urlsafe_b64decode(part + pad))
    except Exception:
        return None


def fingerprint(token):
    parts = token.split(".")
    if len(parts) == 3 and isinstance(b64json(parts[0]), dict):
        signing_input = parts[0] + "." + parts[1]
    else:
        signing_input = token
    return hmac.new(KEY, signing_input.encode(), hashlib.sha256).hexdigest()[:32]


def tokens_in(headers):
    out = []
    for name, value in headers:
        if name != "authorization":
            continue
        m = re.match(r"(?i)(bearer|jwt)\s+(\S+)$", value.strip())
        if m:
            out.append(m.group(2))
        elif value.count(".") == 2 and value.startswith("eyJ"):
            out.append(value.strip())
    return out


def as_list(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def tshark_exchanges(path, ports):
    args = ["tshark", "-n", "-r", path, "-T", "json", "--no-duplicate-keys",
            "-J", "tcp http2"]
    for p in ports:
        args += ["-d", f"tcp.port=={p},http2"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    packets = json.loads(r.stdout or "[]")
    streams = collections.OrderedDict()  # (tcp stream, h2 stream) -> exchange
    clients = {}  # tcp stream -> client port
    malformed = 0
    for pkt in packets:
        layers = pkt["_source"]["layers"]
        if "_ws.malformed" in layers:
            malformed += 1
        tcp = layers.get("tcp")
        if isinstance(tcp, list):
            tcp = tcp[-1]
        if not tcp:
            continue
        conn, sport = tcp["tcp.stream"], tcp["tcp.srcport"]
        for layer in as_list(layers.get("http2")):
            for st in as_list(layer.get("http2.stream")):
                ftype = st.get("http2.type")
                if ftype not in ("1", "5"):
                    continue  # only header blocks matter
                hdrs = [(h.get("http2.header.name", ""), h.get("http2.header.value", ""))
                        for h in as_list(st.get("http2.header"))]
                if not hdrs:
                    continue
                if ftype == "5":
                    continue  # PUSH_PROMISE: not a client's request
                names = {n for n, _ in hdrs}
                if conn not in clients:
                    if ":method" in names:
                        clients[conn] = sport
                    elif ":status" in names:
                        clients[conn] = None  # server spoke; client unknown yet
                if clients.get(conn) is None and ":method" in names:
                    clients[conn] = sport
                key = (conn, st.get("http2.streamid"))
                ex = streams.get(key)
                is_client = clients.get(conn) == sport if clients.get(conn) else ":status" not in names
                if is_client:
                    if ex is None:
                        streams[key] = {"headers": hdrs, "status": None, "grpc_status": None}
                    continue
                if ex is None:
                    continue
                d = dict(hdrs)
                st_code = d.get(":status")
                if ex["status"] is None and st_code is not None:
                    if not st_code.startswith("1"):
                        ex["status"] = int(st_code)
                if "grpc-status" in d and d["grpc-status"].isdigit():
                    ex["grpc_status"] = int(d["grpc-status"])
    return list(streams.values()), malformed


def tshark_uses(exchanges):
    uses = []
    for ex in exchanges:
        h = ex["headers"]
        d = {}
        for n, v in h:
            d.setdefault(n, v)
        grpc = d.get("content-type", "").startswith("application/grpc")
        for tok in tokens_in(h):
            uses.append((("grpc" if grpc else "h2"), d.get(":method", ""),
                         d.get(":path", "").split("?")[0], ex["status"] or 0,
                         ex["grpc_status"] if grpc else None, "authorization",
                         fingerprint(tok)))
    return uses


def match(want, got):
    """Multiset difference, where a tshark use without a status (tshark
    never saw the response: a packet it calls malformed ended its
    dissection of a segment) matches an agent use of any status."""
    missing = want - got
    extra = got - want
    wild = 0
    for key, n in list(missing.items()):
        if key[3] != 0:
            continue
        for other in list(extra):
            if other[:3] == key[:3] and other[4:] == key[4:] and n > 0:
                k = min(n, extra[other])
                n -= k
                wild += k
                extra[other] -= k
                if extra[other] == 0:
                    del extra[other]
        if n:
            missing[key] = n
        else:
            del missing[key]
    return missing, extra, wild


def run_agent(agent, path, work):
    events = os.path.join(work, "events.jsonl")
    r = subprocess.run([agent, "-c", os.path.join(work, "tw.yaml"), "-r", path,
                        "--events-out", events, "--agent-id", "h2"],
                       capture_output=True, text=True, timeout=120)
    evs = [json.loads(l) for l in open(events) if l.strip()] if os.path.exists(events) else []
    summary = {}
    for line in r.stderr.splitlines():
        m = re.match(r"^\s+(\S+)\s+(.*)$", line)
        if m:
            summary[m.group(1)] = m.group(2)
    return r.returncode, evs, summary, r.stderr


def main():
    agent, data = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="tw-h2caps.")
    with open(os.path.join(work, "key"), "wb") as f:
        f.write(KEY)
    os.chmod(os.path.join(work, "key"), 0o600)
    with open(os.path.join(work, "tw.yaml"), "w") as f:
        f.write("fingerprint_key_file: key\nagent:\n  fold_window: 0s\n")
    passed = failed = 0
    for rel, ports in CAPTURES.items():
        path = os.path.join(data, rel)
        problems = []
        exchanges, malformed = tshark_exchanges(path, ports)
        want = collections.Counter(tshark_uses(exchanges))
        rc, evs, summary, stderr = run_agent(agent, path, work)
        if rc != 0:
            problems.append(f"agent exit {rc}: {stderr[-300:]}")
        got = collections.Counter()
        for e in evs:
            got[(e.get("protocol"), e["method"], e["path"], e["status"] or 0,
                 e.get("grpc_status"), e["location"], e["token"]["fp"])] += e.get("count", 1)
        agent_requests = int(summary.get("http2_requests", "-1"))
        if agent_requests != len(exchanges):
            problems.append(f"http2_requests {agent_requests}, tshark {len(exchanges)}")
        missing, extra, unverified = match(want, got)
        if missing or extra:
            problems.append(f"token uses differ: {sum(missing.values())} missing "
                            f"{list(missing.items())[:3]}, {sum(extra.values())} unexpected "
                            f"{list(extra.items())[:3]}")
        anomalies = summary.get("anomalies", "none")
        names = set() if anomalies == "none" else {a.split("=")[0] for a in anomalies.split()}
        unexplained = names - EXPECTED_ANOMALIES[rel]
        if unexplained:
            problems.append(f"anomalies tshark does not explain: {anomalies}")
        grpc_st = collections.Counter(str(k[4]) for k in got.elements()) if got else {}
        print(f"{'FAIL' if problems else 'ok'} {rel}: requests agent {agent_requests} "
              f"tshark {len(exchanges)}; token uses agent {sum(got.values())} tshark "
              f"{sum(want.values())}; grpc_status {dict(grpc_st)}; "
              f"statuses tshark never saw {unverified} (tshark malformed packets {malformed}); "
              f"undecoded_bytes {summary.get('undecoded_bytes')}; anomalies {anomalies}")
        for p in problems:
            print(f"  FAIL {rel}: {p}")
        if problems:
            failed += 1
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
