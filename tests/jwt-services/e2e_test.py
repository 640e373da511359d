#!/usr/bin/env python3
"""End to end, live: real Express services with real JWT middleware on
loopback, the agent capturing on `lo` and streaming to the collector.

Four services (services.js), told apart by the Host header:
  orders   correctly configured (express-jwt, RS256 only, exp, aud, iss)
  legacy   decodes without verifying: alg none and bad signatures pass
  reports  HS256 with the secret "secret", ignores expiry, no aud check
  files    verifies, but takes the token from ?access_token=
Tokens are minted at run time with jose (mint.js). Each failure pattern is
sent to the service that shows it; valid tokens go to orders as benign
traffic. Expectations:
  * each service answers as configured (the misconfigured ones accept what
    they should not, orders rejects it with 401);
  * every failure pattern arrives as an alert of the right type, with
    `accepted` true where the service answered < 400 and false where it
    answered 401; revocation works from the file, from a change of the file
    while running, and from POST /api/v1/revocations;
  * no other alert for those tokens, and nothing at all for the benign
    traffic to orders; no raw token in the alerts.

With --h2 (issue 13), the same cases travel over HTTP/2: curl
--http2-prior-knowledge to nghttpx (an h2c frontend that routes by
:authority to the same Node services over HTTP/1.1), and the agent captures
only the HTTP/2 side. Every alert must then arrive with "protocol":"h2" and
the same `accepted`, since the status nghttpx relays is the service's.

With --https (issue 14), the services serve HTTPS (node's own OpenSSL,
which talks to its sockets through memory BIOs), the client is Python's
ssl (the system libssl), and the agent runs on --tls-probe alone: every
alert must arrive the same, with source tls_probe.

usage: e2e_test.py BUILD_DIR REPO_ROOT [--h2 | --https]
Needs root (live capture), node and npm (runs `npm ci` when node_modules is
missing). Sends traffic to 127.0.0.1 only. Prints one ok/FAIL line per
expectation and "N passed, M failed"; exits 1 on any failure.
"""
import hashlib
import hmac
import http.client
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import free_port, get_json  # noqa: E402  (tests/integration/harness.py)

FP_KEY = b"tokenwatch-e2e-fingerprint-key-0"
IDP = "https://idp.e2e"
LEGACY = "legacy-app"
ALERT_DEADLINE = 30  # seconds to wait for the expected alerts
SERVICES = ("orders", "legacy", "reports", "files")

# (token, service, method, path, status the service must answer,
#  alert types that must arrive, further types tolerated)
# `path` may hold {token} for a token in the URL; otherwise the token goes
# in "Authorization: Bearer".
BENIGN = [
    (f"valid_{i}", "orders", m, p, s, set(), set())
    for i in (1, 2, 3)
    for m, p, s in (("GET", "/v1/orders", 200), ("GET", "/v1/orders/42", 200), ("POST", "/v1/orders", 201))
]
CASES = [
    ("alg_none_legacy", "legacy", "GET", "/api/profile", 200, {"alg_none"}, set()),
    ("alg_none_orders", "orders", "GET", "/v1/orders", 401, {"alg_none"}, set()),
    ("tampered_legacy", "legacy", "GET", "/api/profile", 200, {"invalid_signature"}, set()),
    ("tampered_orders", "orders", "GET", "/v1/orders", 401, {"invalid_signature"}, set()),
    ("unknown_kid", "legacy", "GET", "/api/admin/users", 200, {"invalid_signature"}, set()),
    ("zero_ecdsa", "legacy", "GET", "/api/admin/users", 200, {"invalid_signature"}, set()),
    ("weak_hs256", "reports", "GET", "/reports/daily", 200, {"weak_secret"}, set()),
    ("weak_hs256_expired", "reports", "GET", "/reports/daily", 200, {"weak_secret", "expired_use"}, set()),
    # The verifier may also call an HS256 token from an RS256 issuer's key
    # set unverifiable; the point is alg_not_allowed.
    ("alg_confusion_legacy", "legacy", "GET", "/api/profile", 200, {"alg_not_allowed"}, {"invalid_signature"}),
    ("alg_confusion_orders", "orders", "GET", "/v1/orders", 401, {"alg_not_allowed"}, {"invalid_signature"}),
    ("jku", "legacy", "GET", "/api/profile", 200, {"header_injection"}, set()),
    # HS256 keyed with /dev/null (empty): the wordlist's first line is empty.
    ("kid_traversal", "legacy", "GET", "/api/profile", 200, {"header_injection"},
     {"weak_secret", "invalid_signature"}),
    ("no_exp", "legacy", "GET", "/api/profile", 200, {"no_expiry"}, set()),
    ("long_lived", "orders", "GET", "/v1/orders/7", 200, {"long_lived"}, set()),
    ("in_url", "files", "GET", "/files/report.pdf?access_token={token}", 200, {"token_in_url"}, set()),
    ("revoked_file", "orders", "GET", "/v1/orders/9", 200, {"revoked_use"}, set()),
]
# Bearer token of the collector's write endpoints, fresh for each run.
API_TOKEN = secrets.token_hex(32)

# Sent separately (the revocation happens during the run).
REVOKED_LATER = ("revoked_file_later", "orders", "GET", "/v1/orders/10", 200, {"revoked_use"}, set())
REVOKED_API = ("revoked_api", "orders", "GET", "/v1/orders/11", 200, {"revoked_use"}, set())


class Results:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what, note=""):
        # The note says what went wrong; it is printed on failure only.
        print(("ok " if ok else "FAIL ") + what + (f" — {note}" if note and not ok else ""), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def fp(token):
    """The agent's fingerprint of an opaque token (SPEC: HMAC-SHA256, 128 bits)."""
    return hmac.new(FP_KEY, token.encode(), hashlib.sha256).hexdigest()[:32]


def read_json_lines(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass  # a line being written
    except OSError:
        pass
    return out


H2_FRONT = None  # the nghttpx frontend's port in --h2 mode
HTTPS = False    # --https: the services speak TLS, the probe sees them


def request(port, host, method, path, token=None, timeout=5):
    """One request to 127.0.0.1:port with the given Host header: HTTP/1.1
    to the service itself, or (--h2) HTTP/2 with prior knowledge to the
    nghttpx frontend, whose :authority routes it to the same service."""
    if H2_FRONT is not None:
        return request_h2(host, method, path, token, timeout)
    headers = {"Host": host, "User-Agent": "tokenwatch-e2e"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = b"{}" if method == "POST" else None
    if body is not None:
        headers["Content-Type"] = "application/json"
    if HTTPS:
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def request_h2(host, method, path, token, timeout):
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
            "--http2-prior-knowledge", "--max-time", str(timeout), "-X", method,
            "-H", f"Host: {host}", "-H", "User-Agent: tokenwatch-e2e"]
    if token is not None:
        # From a file, so the raw token is on no command line (ps).
        args += ["-H", "@-"]
    if method == "POST":
        args += ["-H", "Content-Type: application/json", "--data", "{}"]
    args.append(f"http://127.0.0.1:{H2_FRONT}{path}")
    r = subprocess.run(args, input=f"Authorization: Bearer {token}\n" if token is not None else "",
                       capture_output=True, text=True, timeout=timeout + 5)
    code, _, version = r.stdout.partition(" ")
    if version != "2":
        raise OSError(f"curl did not speak HTTP/2 to nghttpx: {r.stdout!r} {r.stderr.strip()[-200:]!r}")
    return int(code)


class Procs:
    """Every process this test starts, stopped by PID in reverse order."""

    def __init__(self):
        self.procs = []  # (name, Popen, stop signal)

    def start(self, name, args, sig=signal.SIGTERM, **kw):
        p = subprocess.Popen(args, **kw)
        self.procs.append((name, p, sig))
        return p

    def stop_all(self):
        for name, p, sig in reversed(self.procs):
            if p.poll() is None:
                try:
                    p.send_signal(sig)
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
                except ProcessLookupError:
                    pass


def ensure_node_modules(res):
    if not shutil.which("node"):
        return res.check(False, "node is installed", "install Node.js 20 (apt-get install nodejs npm)")
    if os.path.isdir(os.path.join(HERE, "node_modules", "express-jwt")):
        return True
    if not shutil.which("npm"):
        return res.check(False, "npm is installed",
                         f"node_modules missing in {HERE}; install npm, then run `npm ci` there")
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True,
                       timeout=300)
    return res.check(r.returncode == 0, "npm ci in tests/jwt-services",
                     "" if r.returncode == 0 else r.stderr.strip()[-800:])


def write_config(tmp, root, revoked_jtis):
    with open(os.path.join(tmp, "fingerprint.key"), "wb") as f:
        f.write(FP_KEY)
    os.chmod(os.path.join(tmp, "fingerprint.key"), 0o600)  # the agent refuses a key others can read
    with open(os.path.join(tmp, "revoked.txt"), "w") as f:
        f.write("".join(j + "\n" for j in revoked_jtis))
    # The API's write token: POST /api/v1/revocations needs it.
    with open(os.path.join(tmp, "api.token"), "w") as f:
        f.write(API_TOKEN + "\n")
    wordlist = os.path.normpath(os.path.join(root, "..", "shared", "data", "wordlists",
                                             "wallarm-jwt-secrets", "jwt.secrets.list"))
    services = "".join(
        f"  - name: {s}\n    match: {{ hosts: [\"{s}.e2e\"] }}\n    audiences: [\"{s}-api\"]\n" for s in SERVICES)
    cfg = f"""# written by tests/jwt-services/e2e_test.py
fingerprint_key_file: fingerprint.key
services:
{services}issuers:
  - iss: "{IDP}"
    algorithms: [RS256, ES256]
    jwks_file: idp.jwks.json
    max_lifetime: 1h
  - iss: "{LEGACY}"
    algorithms: [HS256]
detections:
  clock_leeway: 30s
  default_max_lifetime: 24h
  weak_secrets_file: {json.dumps(wordlist)}
  revoked_jtis_file: revoked.txt
agent:
  fold_window: 0s
collector:
  http_token_file: api.token
"""
    path = os.path.join(tmp, "tokenwatch.yaml")
    with open(path, "w") as f:
        f.write(cfg)
    return path, wordlist


def wait_until(pred, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except OSError:
            pass
        time.sleep(interval)
    return False


def read_ready_line(proc, timeout):
    """The services print {"ready": {...}} once every port listens."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline and proc.poll() is None:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            for line in buf.splitlines():
                try:
                    return json.loads(line)["ready"]
                except (ValueError, KeyError, TypeError):
                    continue
    return None


def run(build, root, tmp, res, procs, h2):
    agent_bin = os.path.join(build, "agent", "tokenwatch-agent")
    collector_bin = os.path.join(build, "collector", "tokenwatch-collector")
    for b in (agent_bin, collector_bin):
        if not res.check(os.access(b, os.X_OK), f"{os.path.relpath(b, build)} is built"):
            return

    # Tokens and keys, minted now.
    r = subprocess.run(["node", os.path.join(HERE, "mint.js"), tmp], capture_output=True, text=True, timeout=60)
    if not res.check(r.returncode == 0, "mint.js minted the tokens", (r.stdout + r.stderr).strip()):
        return
    with open(os.path.join(tmp, "tokens.json")) as f:
        tokens = json.load(f)

    ports = {s: free_port() for s in SERVICES}
    grpc, http_port, metrics = free_port(), free_port(), free_port()
    cfg, wordlist = write_config(tmp, root, [tokens["revoked_file"]["jti"]])
    if not res.check(os.path.isfile(wordlist), "weak-secrets wordlist is there", wordlist):
        return

    # Collector.
    collector_err = os.path.join(tmp, "collector.err")
    c = procs.start("collector", [collector_bin, "-c", cfg, "--listen", f"127.0.0.1:{grpc}",
                                  "--http-listen", f"127.0.0.1:{http_port}",
                                  "--store", "sqlite:" + os.path.join(tmp, "state.db"),
                                  "--alerts-out", os.path.join(tmp, "alerts.jsonl")],
                    stdout=subprocess.DEVNULL, stderr=open(collector_err, "w"))
    api = f"http://127.0.0.1:{http_port}"

    def healthy():
        with urllib.request.urlopen(api + "/healthz", timeout=1) as r:
            return r.status == 200
    if not res.check(wait_until(healthy, 20) and c.poll() is None, "collector starts with the config",
                     open(collector_err).read().strip()[-800:]):
        return

    # Services.
    tls_args = []
    if HTTPS:
        cert, key = os.path.join(tmp, "svc.crt"), os.path.join(tmp, "svc.key")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                            "-out", cert, "-days", "1", "-subj", "/CN=services.e2e"],
                           capture_output=True, text=True, timeout=60)
        if not res.check(r.returncode == 0, "a test certificate for the services", r.stderr[-400:]):
            return
        tls_args = ["--tls", f"{cert},{key}"]
    s = procs.start("services", ["node", os.path.join(HERE, "services.js"), "--jwks", os.path.join(tmp, "idp.jwks.json")]
                    + [a for name in SERVICES for a in (f"--{name}", str(ports[name]))] + tls_args,
                    stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "services.err"), "w"), cwd=HERE)
    ready = read_ready_line(s, 20)
    if not res.check(ready == ports, "services listen on 127.0.0.1",
                     f"got {ready}, want {ports}; " + open(os.path.join(tmp, "services.err")).read()[-800:]):
        return

    # Agent, live on lo, only the services' ports (--h2: only nghttpx's
    # frontend, so every use is seen once, over HTTP/2).
    events_out = os.path.join(tmp, "events.jsonl")
    agent_err = os.path.join(tmp, "agent.err")
    bpf = " or ".join(f"tcp port {p}" for p in ports.values())
    if h2:
        global H2_FRONT
        front = free_port()
        backends = [f"-b127.0.0.1,{ports['orders']}"]  # nghttpx needs a catch-all
        backends += [f"-b127.0.0.1,{ports[name]};{name}.e2e" for name in SERVICES]
        procs.start("nghttpx", ["nghttpx", f"-f127.0.0.1,{front};no-tls", *backends, "--no-ocsp",
                                "--workers=1", f"--errorlog-file={tmp}/nghttpx.log"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def front_up():
            with socket.create_connection(("127.0.0.1", front), timeout=1):
                return True
        if not res.check(wait_until(front_up, 20), "nghttpx h2c frontend listens"):
            return
        H2_FRONT = front
        bpf = f"tcp port {front}"
    source = ["--tls-probe"] if HTTPS else ["-i", "lo", "-f", bpf]
    a = procs.start("agent", [agent_bin, "-c", cfg, *source, "--collector", f"127.0.0.1:{grpc}",
                              "--events-out", events_out, "--agent-id", "e2e",
                              "--metrics-listen", f"127.0.0.1:{metrics}"],
                    sig=signal.SIGINT, stdout=subprocess.DEVNULL, stderr=open(agent_err, "w"))
    started = "TLS probe on" if HTTPS else "capturing on"
    if not res.check(wait_until(lambda: started in open(agent_err).read(), 20) and a.poll() is None,
                     "agent captures on lo" if not HTTPS else "agent's TLS probe is attached",
                     open(agent_err).read().strip()[-800:]):
        return
    # Capture is armed once a probe (opaque token, unauthenticated route)
    # comes back as an event, and the collector has counted it.
    probe = "e2e-probe-" + secrets.token_hex(6)

    def probe_seen():
        request(ports["orders"], "orders.e2e", "GET", "/healthz", probe)
        return any(e.get("token", {}).get("fp") == fp(probe) for e in read_json_lines(events_out))
    if not res.check(wait_until(probe_seen, 15, 0.3), "agent sees live traffic on lo (probe event)",
                     open(agent_err).read().strip()[-800:]):
        return

    # The traffic. statuses[(token name, service)] = status of the last use.
    statuses = {}
    sent = []

    def send(case):
        name, svc, method, path, want, _, _ = case
        tok = tokens[name]["token"]
        if "{token}" in path:
            status = request(ports[svc], f"{svc}.e2e", method, path.format(token=urllib.parse.quote(tok, safe="")))
        else:
            status = request(ports[svc], f"{svc}.e2e", method, path, tok)
        statuses[(name, svc)] = status
        sent.append((name, svc, method, path.split("?")[0], status))
        return status

    behaviour = {}
    for case in BENIGN + CASES:
        st = send(case)
        key = (case[0], case[1])
        behaviour.setdefault(key, []).append((case[2], case[3].split("?")[0], st, case[4]))

    # Revocation through the API: used first (no alert), then revoked, then used again.
    first = send(REVOKED_API)
    ident = urllib.parse.quote(f"{IDP}|{tokens['revoked_api']['jti']}", safe="")

    def collector_knows():
        try:
            with urllib.request.urlopen(f"{api}/api/v1/tokens/{ident}", timeout=2) as r:
                return r.status == 200
        except urllib.error.HTTPError:
            return False
    known = wait_until(collector_knows, 10, 0.2)
    early = [x for x in alerts_of(api) if x["type"] == "revoked_use"
             and x.get("token", {}).get("jti") == tokens["revoked_api"]["jti"]]
    res.check(known and not early, "revoked_api used before its revocation: collector tracks it, no revoked_use",
              f"tracked={known} early alerts={len(early)}")
    body = json.dumps([tokens["revoked_api"]["jti"]]).encode()
    req = urllib.request.Request(f"{api}/api/v1/revocations", data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {API_TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            post_status = r.status
    except urllib.error.HTTPError as e:
        post_status = e.code
    except OSError as e:
        post_status = str(e)
    res.check(isinstance(post_status, int) and 200 <= post_status < 300,
              "POST /api/v1/revocations accepts a JSON list of jtis", f"answered {post_status}")
    send(REVOKED_API)
    behaviour[("revoked_api", "orders")] = [("GET", REVOKED_API[3], first, 200),
                                            ("GET", REVOKED_API[3], statuses[("revoked_api", "orders")], 200)]

    # Revocation through a change of the file while the collector runs.
    with open(os.path.join(tmp, "revoked.txt"), "a") as f:
        f.write(tokens["revoked_file_later"]["jti"] + "\n")

    # Services behaved as configured (this part needs no tokenwatch feature).
    for (name, svc), uses in behaviour.items():
        bad = [(m, p, got, want) for m, p, got, want in uses if got != want]
        res.check(not bad, f"{svc} answers {name} with "
                  + ",".join(str(w) for _, _, _, w in uses), f"got {[(m, p, g) for m, p, g, _ in bad]}")

    # Wait for the alerts. The later revocation is picked up when the
    # collector re-reads the file, so that token is used again each second
    # until its alert arrives.
    want = {}
    for case in CASES + [REVOKED_LATER, REVOKED_API]:
        for t in case[5]:
            want[(t, tokens[case[0]]["jti"], case[1])] = case[0]
    later_key = ("revoked_use", tokens["revoked_file_later"]["jti"], "orders")
    deadline = time.monotonic() + ALERT_DEADLINE
    last_later = 0.0
    alerts = []
    while time.monotonic() < deadline:
        alerts = alerts_of(api)
        got = {(x["type"], x.get("token", {}).get("jti"), x.get("service")) for x in alerts}
        if all(k in got for k in want):
            break
        if later_key not in got and time.monotonic() - last_later >= 1.0:
            send(REVOKED_LATER)
            last_later = time.monotonic()
        time.sleep(0.25)
    later_status = statuses.get(("revoked_file_later", "orders"))
    res.check(later_status == 200, "orders answers revoked_file_later with 200", f"got {later_status}")

    # Sync point for "nothing else": the collector has stored every use of
    # the benign tokens (alerts are committed with the token state).
    def benign_stored():
        for i in (1, 2, 3):
            ident = urllib.parse.quote(f"{IDP}|{tokens[f'valid_{i}']['jti']}", safe="")
            t = get_json(f"{api}/api/v1/tokens/{ident}", timeout=2)
            if int(t.get("uses", 0)) < 3:
                return False
        return True
    try:
        stored = wait_until(benign_stored, max(3.0, deadline - time.monotonic()), 0.2)
    except Exception:  # the token API answered something unexpected
        stored = False
    res.check(stored, "collector stored the 9 benign uses at orders (3 tokens x 3 requests)")
    alerts = alerts_of(api)

    by_key = {}
    for x in alerts:
        by_key.setdefault((x["type"], x.get("token", {}).get("jti"), x.get("service")), x)
    events = read_json_lines(events_out)

    def findings_of(jti):
        return sorted({f for e in events if e.get("token", {}).get("jti") == jti for f in e.get("findings") or []})

    # Every failure pattern as the right alert, with `accepted`.
    for case in CASES + [REVOKED_LATER, REVOKED_API]:
        name, svc = case[0], case[1]
        jti = tokens[name]["jti"]
        status = statuses.get((name, svc))
        for t in sorted(case[5]):
            x = by_key.get((t, jti, svc))
            what = f"{t} alert for {name} at {svc} (answered {status}), accepted {str(status < 400).lower()}"
            if x is None:
                seen = [e for e in events if e.get("token", {}).get("jti") == jti]
                res.check(False, what, f"no alert; agent events for it: {len(seen)}, findings {findings_of(jti)}")
                continue
            problems = []
            want_protocol = "h2" if h2 else "http/1.1"
            if x.get("protocol") != want_protocol:
                problems.append(f"protocol={x.get('protocol')}")
            if x.get("accepted") is not (status < 400):
                problems.append(f"accepted={x.get('accepted')}")
            if t == "expired_use" and x.get("severity") != "critical":
                problems.append(f"severity={x.get('severity')}")
            res.check(not problems, what, " ".join(problems) + f" detail={x.get('detail')!r}" if problems else "")

    # ...and no other alert for those tokens.
    for case in CASES + [REVOKED_LATER, REVOKED_API]:
        name = case[0]
        jti = tokens[name]["jti"]
        other = sorted({(x["type"], x.get("service")) for x in alerts if x.get("token", {}).get("jti") == jti
                        and not (x.get("service") == case[1] and x["type"] in case[5] | case[6])})
        res.check(not other, f"no other alert for {name}", f"also got {other}")

    # Benign traffic to the well-configured service raises nothing.
    valid = {tokens[f"valid_{i}"]["jti"] for i in (1, 2, 3)}
    noisy = sorted({(x["type"], x.get("token", {}).get("jti")) for x in alerts
                    if x.get("token", {}).get("jti") in valid})
    res.check(not noisy, "benign traffic with valid tokens at orders raises no alert", f"got {noisy}")
    probe_alerts = [x["type"] for x in alerts if x.get("token", {}).get("fp") == fp(probe)]
    res.check(not probe_alerts, "the opaque probe at an unauthenticated route raises no alert", f"got {probe_alerts}")

    # Every use was seen over the protocol it travelled.
    protocols = sorted({e.get("protocol") for e in events})
    res.check(protocols == ["h2" if h2 else "http/1.1"], "events carry the protocol of the wire",
              f"got {protocols}")
    sources = sorted({e.get("source") for e in events})
    res.check(sources == ["tls_probe" if HTTPS else "pcap"], "events carry their source", f"got {sources}")
    if HTTPS:
        procs_seen = sorted({(e.get("process") or {}).get("comm") for e in events})
        res.check(procs_seen and all(procs_seen), "probe events name the process", f"got {procs_seen}")

    # A raw token never leaves the agent: not in the alerts API, the alerts
    # file or the events.
    raw = [t["token"] for t in tokens.values()]
    blobs = {"alerts API": json.dumps(alerts), "events": open(events_out).read() if os.path.exists(events_out) else ""}
    try:
        blobs["--alerts-out"] = open(os.path.join(tmp, "alerts.jsonl")).read()
    except OSError:
        pass
    leaks = [where for where, blob in blobs.items() if any(t.split(".")[1] in blob for t in raw)]
    res.check(not leaks, "no raw token in alerts or events", f"found in {leaks}")

    if res.failed:
        print(f"  (collector stderr: {open(collector_err).read().strip()[-400:]!r})")
        print(f"  (agent stderr: {open(agent_err).read().strip()[-400:]!r})")


def alerts_of(api):
    try:
        return get_json(f"{api}/api/v1/alerts?limit=1000", timeout=3).get("alerts", [])
    except (OSError, ValueError):
        return []


def main():
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] not in ("--h2", "--https")):
        print("usage: e2e_test.py BUILD_DIR REPO_ROOT [--h2 | --https]", file=sys.stderr)
        return 2
    build, root = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    h2 = len(sys.argv) == 4 and sys.argv[3] == "--h2"
    global HTTPS
    HTTPS = len(sys.argv) == 4 and sys.argv[3] == "--https"
    res = Results()
    started = time.monotonic()
    if os.geteuid() != 0:
        res.check(False, "running as root", "live capture on lo needs root")
    elif ensure_node_modules(res):
        tmp = tempfile.mkdtemp(prefix="tokenwatch-e2e-")
        procs = Procs()
        try:
            run(build, root, tmp, res, procs, h2)
        except Exception as e:  # report, then clean up
            res.check(False, "harness ran to the end", f"{type(e).__name__}: {e}")
        finally:
            procs.stop_all()
            if res.failed and os.environ.get("E2E_KEEP_TMP"):
                print(f"  (kept {tmp})")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    print(f"  ({time.monotonic() - started:.1f} s)")
    print(f"{res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
