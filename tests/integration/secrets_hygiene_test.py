#!/usr/bin/env python3
"""Secrets hygiene (tokenwatch issue 6): captures full of tokens go through
real agents into a real collector; every output is searched for any raw
token, JWT signature or JWT signing input from the captures. Zero hits.

Inputs: examples/demo.pcap, tests/captures/*.pcap{,ng}, the token-bearing
public captures in shared/data, and a capture generated here whose tokens
raise most alert types (weak secret, alg none, bad signature, jku, expired,
token in URL, cookie, custom header, revoked, multi-source...). Each capture
is replayed with `tokenwatch-agent -r`; the same tokens are then sent live
over loopback HTTP to a small server while a live agent (`-i lo`) watches,
so that the agent's /metrics can be scraped while it runs.

Outputs searched: every agent's events JSONL, stdout and stderr; the
collector's alerts JSONL, stdout, stderr, SQLite file (+ -wal, -shm, while
running and after shutdown); /metrics of the collector and the live agent;
/healthz, /api/v1/alerts and /api/v1/tokens/{id} for every identity seen;
the bodies the collector posted to a webhook receiver.

Tokens are taken from the captures independently of the agent: tshark
hands over the TCP payloads, this script puts each direction back in order
and finds Authorization / Cookie / *token* headers, query parameters,
Sec-WebSocket-Protocol bearer items and anything shaped like a JWT.

Positive controls: the same search finds the tokens in the capture bytes,
and finds a token planted in a scratch copy of the outputs.

Nothing here prints a token: only counts, file names and short SHA-256
prefixes. usage: secrets_hygiene_test.py BUILD_DIR REPO_ROOT SHARED_DATA
"""
import base64
import glob
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import free_port, get_json, wait_for  # noqa: E402

T0 = 1764497700  # packet time of the generated capture (2025-11-30 10:15 UTC)
JWT_RE = re.compile(rb"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")


def tag(token):
    """What may be printed about a token: a short digest."""
    return hashlib.sha256(token.encode()).hexdigest()[:10]


# --- tokens in captures, found without the agent --------------------------

def tcp_streams(pcap):
    """Each TCP direction of a capture, its payload bytes in sequence order."""
    out = subprocess.run(
        ["tshark", "-r", pcap, "-Y", "tcp.len > 0", "-T", "fields", "-e", "tcp.stream",
         "-e", "tcp.srcport", "-e", "tcp.seq", "-e", "tcp.payload"],
        capture_output=True, text=True, check=True).stdout
    dirs = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) < 4 or not parts[3]:
            continue
        dirs.setdefault((parts[0], parts[1]), []).append(
            (int(parts[2]), bytes.fromhex(parts[3].replace(":", ""))))
    streams = []
    for segs in dirs.values():
        segs.sort(key=lambda s: s[0])
        buf, end = bytearray(), None
        for seq, data in segs:
            if end is not None and seq < end:  # retransmission / overlap
                data = data[end - seq:]
                seq = end
            buf += data
            end = seq + len(data)
        streams.append(bytes(buf))
    return streams


def tokens_in(data):
    """Raw token values in HTTP/1 text (and JWT-shaped strings anywhere)."""
    found = set(m.group(0).decode() for m in JWT_RE.finditer(data))
    for m in re.finditer(rb"(?im)^([A-Za-z0-9-]+):[ \t]*([^\r\n]*)", data):
        name, value = m.group(1).decode().lower(), m.group(2).decode("latin-1").strip()
        if name == "authorization":
            words = value.split()
            if len(words) >= 2 and words[0].lower() in ("bearer", "jwt"):
                found.add(words[1].rstrip(","))
            elif len(words) == 1 and words[0].startswith("eyJ"):
                found.add(words[0])
        elif name == "cookie":
            for pair in value.split(";"):
                if "=" in pair:
                    found.add(pair.split("=", 1)[1].strip().strip('"'))
        elif name == "sec-websocket-protocol":
            for item in value.split(","):
                item = item.strip()
                if item.lower().startswith("authorization.bearer."):
                    found.add(item[len("authorization.bearer."):])
        elif "token" in name:
            v = value.split()[-1] if value.split() else ""
            found.add(v)
    for m in re.finditer(rb"(?m)^[A-Z]+ (\S+) HTTP/1\.[01]", data):
        url = urllib.parse.urlsplit(m.group(1).decode("latin-1"))
        for k, v in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
            if k in ("access_token", "id_token", "token", "jwt"):
                found.add(v)
        # A JWT in the path, percent-encoded or not.
        path = urllib.parse.unquote(url.path).encode("latin-1", "replace")
        found |= set(j.group(0).decode() for j in JWT_RE.finditer(path))
    # Short values (session ids, "1") would match by chance: not tokens here.
    return {t for t in found if len(t) >= 8}


def needles(token):
    """(kind, bytes) to search for: the token, and for a JWT its signature
    and signing input (header.payload), each when >= 16 characters."""
    out = [("token", token.encode())]
    quoted = urllib.parse.quote(token, safe="")
    if quoted != token:
        out.append(("token-urlencoded", quoted.encode()))
    if "/" in token:  # as a JSON writer may escape it
        out.append(("token-json-escaped", token.replace("/", "\\/").encode()))
    parts = token.split(".")
    if len(parts) == 3 and token.startswith("eyJ"):
        if len(parts[2]) >= 16:
            out.append(("signature", parts[2].encode()))
        signing_input = parts[0] + "." + parts[1]
        if len(signing_input) >= 16:
            out.append(("signing-input", signing_input.encode()))
    return out


def search(tokens, blobs):
    """[(blob name, token digest, needle kind)] for every needle found."""
    hits = []
    for token in tokens:
        for kind, n in needles(token):
            for name, blob in blobs.items():
                if n in blob:
                    hits.append((name, tag(token), kind))
    return hits


# --- a capture whose tokens raise most alert types -------------------------

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, key=b"", alg="HS256", header_extra=None):
    header = {"alg": alg, "typ": "JWT", **(header_extra or {})}
    si = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    if alg == "none":
        return si + "."
    return si + "." + b64u(hmac.new(key, si.encode(), hashlib.sha256).digest())


class PcapWriter:
    """Ethernet/IPv4/TCP frames; whole conversations with handshake and FIN."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.ts = T0 * 1_000_000

    def frame(self, src, sport, dst, dport, seq, ack, flags, payload=b""):
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          5 << 4, flags, 65535, 0, 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0,
                         bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
        eth = b"\x02" * 12 + b"\x08\x00" + ip + tcp
        self.f.write(struct.pack("<IIII", self.ts // 1_000_000, self.ts % 1_000_000,
                                 len(eth), len(eth)) + eth)
        self.ts += 1000

    def exchange(self, client, server, port, request, status):
        body = b'{"ok":true}'
        response = (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        sport = 30000 + (self.ts // 1000) % 30000
        c, s = 1000, 9000
        self.frame(client, sport, server, port, c, 0, 0x02)
        self.frame(server, port, client, sport, s, c + 1, 0x12)
        c += 1
        s += 1
        self.frame(client, sport, server, port, c, s, 0x10)
        self.frame(client, sport, server, port, c, s, 0x18, request)
        c += len(request)
        self.frame(server, port, client, sport, s, c, 0x18, response)
        s += len(response)
        self.frame(client, sport, server, port, c, s, 0x11)
        self.frame(server, port, client, sport, s, c + 1, 0x11)
        self.ts += 200_000

    def close(self):
        self.f.close()


def generate(path, strong, weak, revoked_jti):
    """The generated capture and the requests it holds (for the live run)."""
    idp, weak_idp = "https://idp.hyg", "https://idp.weak"
    base = {"iss": idp, "sub": "alice", "aud": ["orders-api"], "iat": T0 - 60, "exp": T0 + 600}
    t = {
        "good": jwt({**base, "jti": "hyg-good"}, strong),
        "url": jwt({**base, "jti": "hyg-url"}, strong),
        "cookie": jwt({**base, "jti": "hyg-cookie"}, strong),
        "expired": jwt({**base, "jti": "hyg-exp", "iat": T0 - 7200, "exp": T0 - 3600}, strong),
        "future": jwt({**base, "jti": "hyg-nbf", "nbf": T0 + 3600}, strong),
        "badsig": jwt({**base, "jti": "hyg-badsig"}, b"not-the-issuers-key-0123456789"),
        "none": jwt({**base, "jti": "hyg-none"}, alg="none"),
        "weak": jwt({**base, "iss": weak_idp, "jti": "hyg-weak"}, weak),
        "jku": jwt({**base, "jti": "hyg-jku"}, strong,
                   header_extra={"jku": "http://keys.evil.test/jwks.json"}),
        "kid": jwt({**base, "jti": "hyg-kid"}, strong, header_extra={"kid": "../../../dev/null"}),
        "noexp": jwt({k: v for k, v in base.items() if k != "exp"} | {"jti": "hyg-noexp"}, strong),
        "longlived": jwt({**base, "jti": "hyg-long", "exp": T0 + 40 * 86400}, strong),
        "revoked": jwt({**base, "jti": revoked_jti}, strong),
        "multi": jwt({**base, "jti": "hyg-multi"}, strong),
        "refund": jwt({**base, "aud": ["payments-api"], "jti": "hyg-refund", "scope": "payments:read"},
                      strong),
        "inpath": jwt({**base, "jti": "hyg-inpath"}, strong),
        "matrix": jwt({**base, "jti": "hyg-matrix"}, strong),
        "pct": jwt({**base, "jti": "hyg-pct"}, strong),
        "inhost": jwt({**base, "jti": "hyg-inhost"}, strong),
        "opaque": b64u(os.urandom(30)),
        "opaque-bearer": b64u(os.urandom(24)) + "." + b64u(os.urandom(9)),
    }
    reqs = []  # (client ip, method, target, headers, status)

    def get(path, host, headers, client="10.0.3.7", method="GET", status=200):
        reqs.append((client, method, path, {"Host": host, **headers}, status))

    auth = lambda tok: {"Authorization": "Bearer " + tok}  # noqa: E731
    get("/v1/orders/1", "orders.demo", auth(t["good"]))
    get("/v1/payments/1", "payments.demo", auth(t["good"]))  # cross-service
    get("/v1/orders/2?access_token=" + t["url"], "orders.demo", {})
    get("/v1/orders/3", "orders.demo", {"Cookie": "theme=dark; session=" + t["cookie"]})
    get("/v1/orders/4", "orders.demo", auth(t["expired"]))
    get("/v1/orders/4", "orders.demo", auth(t["expired"]), status=401)
    get("/v1/orders/5", "orders.demo", auth(t["future"]))
    get("/v1/orders/6", "orders.demo", auth(t["badsig"]))
    get("/v1/orders/7", "orders.demo", auth(t["none"]))
    get("/v1/orders/8", "orders.demo", {"Authorization": "JWT " + t["weak"]})
    get("/v1/orders/9", "orders.demo", auth(t["jku"]))
    get("/v1/orders/10", "orders.demo", auth(t["kid"]))
    get("/v1/orders/11", "orders.demo", auth(t["noexp"]))
    get("/v1/orders/12", "orders.demo", auth(t["longlived"]))
    get("/v1/orders/13", "orders.demo", auth(t["revoked"]))
    for i, client in enumerate(["10.0.3.7", "10.0.3.8", "10.0.3.9", "10.0.4.1"]):
        get(f"/v1/orders/{20 + i}", "orders.demo", auth(t["multi"]), client=client)
    get("/v1/refunds/77", "payments.demo", auth(t["refund"]), method="POST")
    get("/v1/orders/14", "orders.demo", {"X-Api-Token": t["opaque"]})
    get("/v1/orders/15", "orders.demo", auth(t["opaque-bearer"]), status=403)
    # Tokens in the URL itself: path segment, matrix parameter, percent-
    # encoded, and as the Host. Redacted in every output, also in the event
    # of the request's other token (alone, they would make no event at all
    # on an agent that does not look there).
    get("/v1/verify/" + t["inpath"], "orders.demo", auth(t["good"]))
    get("/v1/orders/16;access_token=" + t["matrix"] + "/x", "orders.demo",
        auth(t["good"]))
    get("/v1/verify/" + t["pct"].replace(".", "%2E"), "orders.demo", auth(t["good"]))
    get("/v1/orders/17", t["inhost"], auth(t["good"]))
    w = PcapWriter(path)
    for client, method, target, headers, status in reqs:
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items())
        if method == "POST":
            head += "Content-Length: 2\r\n"
        req = (head + "\r\n" + ("{}" if method == "POST" else "")).encode()
        w.exchange(client, "10.0.0.5", 8080, req, status)
    w.close()
    return set(t.values())


# --- the run -----------------------------------------------------------------

class Receiver(http.server.BaseHTTPRequestHandler):
    bodies = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with Receiver.lock:
            Receiver.bodies.append(str(dict(self.headers)).encode() + b"\n" + body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class LiveServer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def main():
    build, root, shared = (os.path.abspath(a) for a in sys.argv[1:4])
    agent_bin = os.path.join(build, "agent/tokenwatch-agent")
    collector_bin = os.path.join(build, "collector/tokenwatch-collector")
    failures = []

    def check(name, ok, detail=""):
        print(("ok " if ok else "FAIL ") + name + (f" ({detail})" if detail else ""))
        if not ok:
            failures.append(name)

    for need in (agent_bin, collector_bin):
        if not os.access(need, os.X_OK):
            print(f"FAIL missing {need}")
            return 1
    if os.geteuid() != 0:
        print("FAIL needs root for the live capture on lo")
        return 1
    tmp = tempfile.mkdtemp(prefix="tw-hygiene-")
    wordlist = os.path.join(shared, "wordlists/wallarm-jwt-secrets/jwt.secrets.list")
    with open(wordlist, "rb") as f:
        listed = [l.strip() for l in f.read().splitlines() if len(l.strip()) >= 6]
    weak = listed[len(listed) // 2]  # a secret on the list
    strong = hashlib.sha256(b"tokenwatch hygiene strong key").hexdigest().encode()
    for name, data in (("strong.secret", strong), ("weak.secret", weak),
                       ("hook.secret", b"hook-secret"), ("revoked.txt", b"hyg-revoked\n")):
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)

    # One config for everything: the demo's services plus the golden ones.
    cfg = yaml.safe_load(open(os.path.join(root, "examples/tokenwatch.yaml")))
    cfg["fingerprint_key_file"] = os.path.join(root, "examples", cfg["fingerprint_key_file"])
    cfg["services"] += [{"name": "orders-test", "match": {"hosts": ["orders.test"]}},
                        {"name": "payments-test", "match": {"hosts": ["payments.test"]}}]
    cfg["issuers"] += [
        {"iss": "https://idp.hyg", "algorithms": ["HS256"], "max_lifetime": "1d",
         "secret_file": os.path.join(tmp, "strong.secret")},
        {"iss": "https://idp.weak", "algorithms": ["HS256"],
         "secret_file": os.path.join(tmp, "weak.secret")}]
    cfg["detections"]["weak_secrets_file"] = wordlist
    cfg["detections"]["revoked_jtis_file"] = os.path.join(tmp, "revoked.txt")
    cfg["agent"]["token_headers"] = ["x-api-token"]
    cfg["agent"]["fold_window"] = "0s"
    recv_port = free_port()
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", recv_port), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    cfg["collector"] = {"webhooks": [{"url": f"http://127.0.0.1:{recv_port}/hook",
                                      "secret_file": os.path.join(tmp, "hook.secret")}]}
    cfg_path = os.path.join(tmp, "tokenwatch.yaml")
    with open(cfg_path, "w") as f:
        yaml.safe_dump(cfg, f)

    generated = os.path.join(tmp, "generated.pcap")
    gen_tokens = generate(generated, strong, weak, "hyg-revoked")
    captures = [os.path.join(root, "examples/demo.pcap"), generated]
    captures += sorted(glob.glob(os.path.join(root, "tests/captures/*.pcap*")))
    captures += [os.path.join(shared, p) for p in (
        "suricata-verify/bug-7390_authorization-raw-jwt-no-bearer.pcap",
        "suricata-verify/http-auth-bearer_rfc6750-opaque.pcap",
        "suricata-verify/http-post-file_mattermost-BEARER-uppercase.pcap",
        "zeek/wstunnel-http_jwt-in-sec-websocket-protocol.pcap",
        "zeek/wstunnel-ssh_jwt-in-sec-websocket-protocol.pcap")]

    # Tokens, per capture, found independently of the agent.
    by_capture = {}
    for cap in captures:
        toks = set()
        for stream in tcp_streams(cap):
            toks |= tokens_in(stream)
        by_capture[cap] = toks
    tokens = set().union(*by_capture.values())
    check("the generated capture's tokens are all found by the extraction",
          gen_tokens <= by_capture[generated],
          f"{len(gen_tokens - by_capture[generated])} missed")
    check("every capture holds tokens", all(by_capture.values()),
          ", ".join(os.path.basename(c) for c, t in by_capture.items() if not t))

    # Positive control 1: the search finds the tokens in the capture bytes
    # (a token cut across two segments is found by its parts, or not at all).
    in_pcaps = 0
    per_capture_found = {}
    for cap, toks in by_capture.items():
        raw = open(cap, "rb").read()
        found = {h[1] for h in search(toks, {"pcap": raw})}
        per_capture_found[cap] = len(found)
        in_pcaps += len(found)
    check("control: the search finds tokens in every capture's bytes",
          all(per_capture_found.values()) and in_pcaps >= 0.9 * len(tokens),
          f"{in_pcaps} of {len(tokens)}; "
          + ", ".join(os.path.basename(c) for c, n in per_capture_found.items() if not n))

    grpc, http_port = free_port(), free_port()
    db = os.path.join(tmp, "state.db")
    alerts_out = os.path.join(tmp, "alerts.jsonl")
    outputs = {}  # name -> file path, read at the end
    c_out, c_err = os.path.join(tmp, "collector.out"), os.path.join(tmp, "collector.err")
    collector = subprocess.Popen(
        [collector_bin, "-c", cfg_path, "--listen", f"127.0.0.1:{grpc}",
         "--http-listen", f"127.0.0.1:{http_port}", "--store", f"sqlite:{db}",
         "--alerts-out", alerts_out],
        stdout=open(c_out, "w"), stderr=open(c_err, "w"))
    outputs.update({"collector.stdout": c_out, "collector.stderr": c_err, "alerts.jsonl": alerts_out})
    blobs = {}
    api = f"http://127.0.0.1:{http_port}"
    live = None
    try:
        wait_for(lambda: get_json(f"{api}/healthz"), 30, "collector /healthz")

        # Replays.
        acked = 0
        for i, cap in enumerate(captures):
            ev = os.path.join(tmp, f"events-{i}.jsonl")
            r = subprocess.run(
                [agent_bin, "-c", cfg_path, "-r", cap, "--collector", f"127.0.0.1:{grpc}",
                 "--events-out", ev, "--agent-id", f"hyg-{i}"]
                + (["--metrics-listen", f"127.0.0.1:{free_port()}"] if cap == generated else []),
                capture_output=True, timeout=120)
            for stream, data in (("stdout", r.stdout), ("stderr", r.stderr)):
                blobs[f"agent-{i}.{stream}"] = data
            outputs[f"events-{i}.jsonl"] = ev
            m = re.search(rb"(\d+) acknowledged", r.stderr)
            check(f"replay {os.path.basename(cap)} exits 0 with its events acknowledged",
                  r.returncode == 0 and m is not None, f"rc {r.returncode}")
            acked += int(m.group(1)) if m else 0

        # Live: the same tokens over loopback HTTP, a live agent watching.
        srv_port, agent_metrics = free_port(), free_port()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", srv_port), LiveServer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        l_out, l_err = os.path.join(tmp, "live.out"), os.path.join(tmp, "live.err")
        live_events = os.path.join(tmp, "events-live.jsonl")
        live = subprocess.Popen(
            [agent_bin, "-c", cfg_path, "-i", "lo", "-f", f"tcp port {srv_port}",
             "--collector", f"127.0.0.1:{grpc}", "--events-out", live_events,
             "--agent-id", "hyg-live", "--metrics-listen", f"127.0.0.1:{agent_metrics}"],
            stdout=open(l_out, "w"), stderr=open(l_err, "w"))
        outputs.update({"live.stdout": l_out, "live.stderr": l_err, "events-live.jsonl": live_events})
        wait_for(lambda: "capturing on" in open(l_err).read(), 30, "live agent capturing")
        sendable = sorted(t for t in tokens if re.fullmatch(r"[A-Za-z0-9._~+/=-]+", t))
        # One keep-alive connection, in batches that wait for the collector:
        # a live agent on a loaded machine has a ring of ~128 frames on lo.
        t_sent = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", srv_port, timeout=5)
        want = acked
        for first in range(0, len(sendable), 8):
            for n in range(first, min(first + 8, len(sendable))):
                conn.request("GET", f"/live/{n}", headers={
                    "Host": "orders.demo", "Authorization": "Bearer " + sendable[n]})
                conn.getresponse().read()
                want += 1
            wait_for(lambda: get_json(f"{api}/healthz")["events"] >= want, 60,
                     f"{want} events at the collector")
        conn.close()
        print(f"live: {len(sendable)} requests delivered as events in "
              f"{time.monotonic() - t_sent:.1f} s")

        def live_metrics():
            with urllib.request.urlopen(f"http://127.0.0.1:{agent_metrics}/metrics", timeout=5) as r:
                return r.read()
        uses = re.compile(rb"(?m)^tokenwatch_agent_tokens_total\{[^}]*\} (\S+)")
        wait_for(lambda: sum(float(v) for v in uses.findall(live_metrics())) >= len(sendable),
                 30, "live agent metrics counting every token use")
        blobs["live-agent /metrics"] = live_metrics()
        live.send_signal(signal.SIGTERM)
        check("live agent exits 0", live.wait(timeout=60) == 0)

        # The collector's views.
        wait_for(lambda: os.path.getsize(alerts_out) > 0, 30, "alerts written")
        blobs["collector /metrics"] = urllib.request.urlopen(f"{api}/metrics", timeout=5).read()
        blobs["collector /healthz"] = urllib.request.urlopen(f"{api}/healthz", timeout=5).read()
        alerts_body = urllib.request.urlopen(f"{api}/api/v1/alerts?limit=10000", timeout=5).read()
        blobs["/api/v1/alerts"] = alerts_body
        alerts = json.loads(alerts_body)["alerts"]
        idents = {a["token"]["id"] for a in alerts if a.get("token", {}).get("id")}
        for path in [p for p in outputs if p.startswith("events-")]:
            for line in open(outputs[path]):
                tok = json.loads(line)["token"]
                idents.add(tok["fp"])
                if tok.get("jti"):
                    idents.add(f"{tok.get('iss', '')}|{tok['jti']}")
        served = 0
        for ident in sorted(idents):
            try:
                body = urllib.request.urlopen(
                    f"{api}/api/v1/tokens/{urllib.parse.quote(ident, safe='')}", timeout=5).read()
                served += 1
            except urllib.error.HTTPError as e:
                body = e.read()
            blobs[f"/api/v1/tokens/{tag(ident)}"] = body
        check("the token API served identities", served > 0, f"{served} of {len(idents)}")
        wait_for(lambda: Receiver.bodies, 30, "webhook deliveries")
        for name in ("", "-wal", "-shm"):
            if os.path.exists(db + name):
                blobs[f"state.db{name} (running)"] = open(db + name, "rb").read()
    finally:
        if live is not None and live.poll() is None:
            live.kill()
        collector.send_signal(signal.SIGTERM)
        rc = collector.wait(timeout=60)
    check("collector exits 0", rc == 0, f"rc {rc}")
    for name in ("", "-wal", "-shm"):
        if os.path.exists(db + name):
            blobs[f"state.db{name} (stopped)"] = open(db + name, "rb").read()
    for name, path in outputs.items():
        blobs[name] = open(path, "rb").read() if os.path.exists(path) else b""
    with Receiver.lock:
        for i, body in enumerate(Receiver.bodies):
            blobs[f"webhook-{i}"] = body

    # The outputs are real: events, alerts, store, metrics, deliveries.
    n_events = sum(blobs[k].count(b"\n") for k in blobs if k.startswith("events-"))
    check("events were written", n_events >= acked > 0, f"{n_events} lines, {acked} acked")
    check("alerts were raised", len(alerts) >= 10, str(len(alerts)))
    types = {a["type"] for a in alerts}
    for t in ("weak_secret", "alg_none", "invalid_signature", "header_injection", "token_in_url",
              "expired_use", "revoked_use", "multi_source", "cross_service"):
        check(f"alert type {t} present", t in types)
    check("webhook bodies received", len(Receiver.bodies) > 0)
    check("SQLite store non-empty", len(blobs.get("state.db (stopped)", b"")) > 0)

    # The search.
    hits = search(tokens, blobs)
    total_bytes = sum(len(b) for b in blobs.values())
    n_needles = sum(len(needles(t)) for t in tokens)
    print(f"searched {len(tokens)} tokens ({n_needles} needles) in {len(blobs)} outputs, "
          f"{total_bytes} bytes: {len(hits)} hits")
    for name, digest, kind in hits[:20]:
        print(f"  hit: {kind} of token sha256:{digest}… in {name}")
    check("no raw token, signature or signing input in any output", not hits,
          f"{len(hits)} hits")

    # Positive control 2: a token planted in a copy of the outputs is found.
    planted = next(t for t in sorted(gen_tokens)
                   if t.count(".") == 2 and len(t.split(".")[2]) >= 16)
    scratch = {"scratch": b"".join(blobs.values())[:200000] + b" Bearer " + planted.encode() + b"\n"}
    planted_hits = search(tokens, scratch)
    check("control: a planted token is found in a scratch copy of the outputs",
          {h[1] for h in planted_hits} == {tag(planted)} and len(planted_hits) >= 3,
          f"{len(planted_hits)} hits")
    sig_only = {"scratch": b"x" + planted.split(".")[2].encode() + b"x"}
    check("control: a planted signature alone is found",
          [h[2] for h in search(tokens, sig_only)] == ["signature"])

    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
