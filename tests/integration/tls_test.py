#!/usr/bin/env python3
"""Transport security with the real binaries: mTLS between agent and
collector over real gRPC on loopback, the bearer token on the API's write
endpoints, and the API bound to loopback only.

A throw-away PKI comes from scripts/make-test-ca.sh at run time.

1. mTLS happy path: the agent replays examples/demo.pcap into a collector
   that requires client certificates; it exits 0, all 25 events are stored
   (SQLite and /healthz) and the demo's alerts are raised.
2. Rejections, each against a collector requiring client certificates:
   an agent without a client certificate, one whose certificate another
   CA signed, a plaintext agent, an agent that does not trust the
   collector's CA, and one that expects another server name. Each exits 1
   saying its events were not acknowledged; the collector stores nothing.
3. Start-up errors: a missing certificate, a key of another certificate, an
   unusable token file: exit 2 with a message naming file, line and key.
4. API writes: no token and a wrong token get 401 (with a Bearer
   challenge) and revoke nothing; the right token gets 200 and the
   revocation takes effect (revoked_use on replay); with no token file
   configured writes get 403 and reads stay open. The token appears in no
   log and no metric.
5. Loopback binding: in a network namespace reached over a veth pair, a
   collector on 127.0.0.1 refuses connections to the veth address, while
   one on 0.0.0.0 answers there. The namespace is always deleted.

usage: tls_test.py BUILD_DIR REPO_ROOT
Needs root (network namespaces) and openssl. Prints "N passed, M failed".
"""
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import yaml

from harness import durable_uses, free_port, wait_for

# The demo's core alerts (examples/README.md), by (type, jti, service).
DEMO_ALERTS = {
    ("sensitive_endpoint", "3b7d0c94-pay", "payments"),
    ("cross_service", "5c1e8a2f-orders", "payments"),
    ("audience_mismatch", "5c1e8a2f-orders", "payments"),
    ("expired_use", "71d2b5e8-rpt", "inventory"),
    ("expired_use", "71d2b5e8-rpt", "orders"),
    ("sensitive_endpoint", "e04a6d13-pay", "payments"),
    ("multi_source", "8e5b3d71-orders", "orders"),
}
DEMO_USES = 25
AGENT_NAME = "tokenwatch-agent"  # the CN of scripts/make-test-ca.sh's agent.crt


class Env:
    """Paths shared by the tests: binaries, the PKI, the demo config."""

    def __init__(self, build, root, tmp):
        self.build, self.root, self.tmp = build, root, tmp
        self.agent_bin = os.path.join(build, "agent/tokenwatch-agent")
        self.collector_bin = os.path.join(build, "collector/tokenwatch-collector")
        self.pcap = os.path.join(root, "examples/demo.pcap")
        self.pki = os.path.join(tmp, "pki")
        subprocess.run(["bash", os.path.join(root, "scripts/make-test-ca.sh"), self.pki],
                       check=True, capture_output=True, text=True)
        with open(os.path.join(root, "examples/tokenwatch.yaml")) as f:
            self.demo = yaml.safe_load(f)
        # Absolute, since the variants are written elsewhere.
        self.demo["fingerprint_key_file"] = os.path.join(root, "examples",
                                                         self.demo["fingerprint_key_file"])
        self.token = secrets.token_hex(32)
        self.token_file = os.path.join(tmp, "api.token")
        with open(os.path.join(self.token_file), "w") as f:
            f.write(self.token + "\n")
        os.chmod(self.token_file, 0o600)
        self.count = 0

    def p(self, name):
        return os.path.join(self.pki, name)

    def config(self, name, agent_tls=None, collector_tls=None, token_file=None,
               drain="30s"):
        cfg = json.loads(json.dumps(self.demo))  # deep copy
        cfg.setdefault("agent", {})["drain_timeout"] = drain
        if agent_tls is not None:
            cfg["agent"]["tls"] = agent_tls
        coll = cfg.setdefault("collector", {})
        if collector_tls is not None:
            coll["tls"] = collector_tls
        if token_file is not None:
            coll["http_token_file"] = token_file
        path = os.path.join(self.tmp, f"{name}.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        return path

    def mtls_collector_config(self, name="collector", token=True):
        return self.config(name, collector_tls={
            "cert_file": self.p("server.crt"), "key_file": self.p("server.key"),
            "client_ca_file": self.p("ca.crt")},
            token_file=self.token_file if token else None)

    def agent(self, cfg, grpc_port, agent_id, timeout=120):
        return subprocess.run([self.agent_bin, "-c", cfg, "-r", self.pcap,
                               "--collector", f"127.0.0.1:{grpc_port}", "--agent-id", agent_id,
                               "--events-out", os.devnull],
                              capture_output=True, text=True, timeout=timeout)


class Collector:
    def __init__(self, env, cfg, name, netns=None, http_host="127.0.0.1", store=None):
        self.env, self.name = env, name
        self.grpc, self.http = free_port(), free_port()
        self.err_path = os.path.join(env.tmp, f"{name}.err")
        self.db = os.path.join(env.tmp, f"{name}.db")
        args = [env.collector_bin, "-c", cfg, "--listen", f"127.0.0.1:{self.grpc}",
                "--http-listen", f"{http_host}:{self.http}",
                "--store", store or f"sqlite:{self.db}"]
        if netns:
            args = ["ip", "netns", "exec", netns] + args
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(args, stderr=err)
        # The start-up line comes once ingest and the API are listening.
        wait_for(lambda: "API on" in self.stderr() or self.proc.poll() is not None, 20,
                 f"{name} start-up")
        assert self.proc.poll() is None, f"{name} exited: {self.stderr()}"

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def url(self, path):
        return f"http://127.0.0.1:{self.http}{path}"

    def get(self, path):
        with urllib.request.urlopen(self.url(path), timeout=5) as r:
            body = r.read()
            return json.loads(body) if path != "/metrics" else body.decode()

    def stored_uses(self):
        return sum(durable_uses(self.db).values())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        return self.proc.returncode


def post(url, body, token=None, scheme="Bearer"):
    """(status, headers, body) of a POST; HTTP errors are answers too."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def alert_keys(c):
    alerts = c.get("/api/v1/alerts?limit=1000")["alerts"]
    return {(a["type"], a["token"].get("jti", a["token"]["fp"]), a["service"]) for a in alerts}


# ---------------------------------------------------------------------------


def test_pki(env):
    modes = {n: oct(os.stat(env.p(n)).st_mode & 0o777) for n in sorted(os.listdir(env.pki))}
    keys = {n: m for n, m in modes.items() if n.endswith(".key")}
    assert len(keys) == 5 and all(m == "0o600" for m in keys.values()), modes
    for leaf, ca in (("server", "ca"), ("agent", "ca"), ("other-agent", "other-ca")):
        subprocess.run(["openssl", "verify", "-CAfile", env.p(f"{ca}.crt"), env.p(f"{leaf}.crt")],
                       check=True, capture_output=True)
    r = subprocess.run(["openssl", "verify", "-CAfile", env.p("ca.crt"), env.p("other-agent.crt")],
                       capture_output=True)
    assert r.returncode != 0, "other-agent.crt verifies against the test CA"
    san = subprocess.run(["openssl", "x509", "-in", env.p("server.crt"), "-noout", "-ext",
                          "subjectAltName"], check=True, capture_output=True, text=True).stdout
    assert "DNS:localhost" in san and "IP Address:127.0.0.1" in san, san
    return "make-test-ca.sh: 5 keys 0600, chains verify, the other CA's client does not, SAN ok"


def test_mtls_happy_path(env):
    c = Collector(env, env.mtls_collector_config("happy"), "happy")
    try:
        assert "mTLS" in c.stderr(), c.stderr()
        agent_cfg = env.config("happy-agent", agent_tls={
            "ca_file": env.p("ca.crt"), "cert_file": env.p("agent.crt"),
            "key_file": env.p("agent.key")})
        # Under mTLS an agent speaks only as a name its certificate carries
        # (CN tokenwatch-agent; issue 12).
        r = env.agent(agent_cfg, c.grpc, AGENT_NAME)
        assert r.returncode == 0, r.stderr
        assert f"{DEMO_USES} events queued, {DEMO_USES} acknowledged" in r.stderr, r.stderr
        health = c.get("/healthz")
        assert health["events"] == DEMO_USES, health
        got = alert_keys(c)
        assert DEMO_ALERTS <= got, f"missing {DEMO_ALERTS - got}"
        agents = {a["agent"] for a in c.get("/api/v1/alerts?limit=1000")["alerts"]}
        assert agents == {AGENT_NAME}, agents
    finally:
        c.stop()
    uses = c.stored_uses()
    assert uses == DEMO_USES, uses
    return f"mTLS: {DEMO_USES} events acknowledged and stored, {len(got)} alerts incl. the demo's 7"


REJECTIONS = {
    # name: (agent.tls or None for plaintext, what the collector sees)
    "no client certificate": lambda env: {"ca_file": env.p("ca.crt")},
    "client certificate of another CA": lambda env: {
        "ca_file": env.p("ca.crt"), "cert_file": env.p("other-agent.crt"),
        "key_file": env.p("other-agent.key")},
    "plaintext agent": lambda env: None,
    "agent does not trust the collector's CA": lambda env: {
        "ca_file": env.p("other-ca.crt"), "cert_file": env.p("agent.crt"),
        "key_file": env.p("agent.key")},
    "agent expects another server name": lambda env: {
        "ca_file": env.p("ca.crt"), "cert_file": env.p("agent.crt"),
        "key_file": env.p("agent.key"), "server_name": "collector.internal"},
}


def test_rejections(env):
    c = Collector(env, env.mtls_collector_config("reject"), "reject")
    seen = []
    try:
        for i, (what, tls) in enumerate(REJECTIONS.items()):
            cfg = env.config(f"reject-{i}", agent_tls=tls(env), drain="2s")
            r = env.agent(cfg, c.grpc, f"rejected-{i}")
            assert r.returncode == 1, f"{what}: exit {r.returncode}: {r.stderr}"
            assert f"{DEMO_USES} events in 1 batches were not acknowledged" in r.stderr, \
                f"{what}: {r.stderr}"
            assert f"{DEMO_USES} events queued, 0 acknowledged" in r.stderr, f"{what}: {r.stderr}"
            last = [l for l in r.stderr.splitlines() if "last error from" in l]
            assert last, f"{what}: no reason given: {r.stderr}"
            health = c.get("/healthz")
            assert health["events"] == 0 and health["tokens_tracked"] == 0, f"{what}: {health}"
            assert c.get("/api/v1/alerts")["alerts"] == [], what
            seen.append(what)
        # The collector still serves a good agent after all that.
        good = env.config("reject-good", agent_tls={
            "ca_file": env.p("ca.crt"), "cert_file": env.p("agent.crt"),
            "key_file": env.p("agent.key"), "server_name": "localhost"})
        r = env.agent(good, c.grpc, AGENT_NAME)
        assert r.returncode == 0, r.stderr
        assert c.get("/healthz")["events"] == DEMO_USES
        # The handshakes the collector refused are in its log.
        assert "Handshake failed" in c.stderr(), c.stderr()
    finally:
        c.stop()
    assert c.stored_uses() == DEMO_USES, c.stored_uses()
    return (f"rejected, each exit 1 with 0 of {DEMO_USES} acknowledged and nothing stored: "
            + "; ".join(seen) + "; then a good agent is served")


def test_startup_errors(env):
    cases = []
    tls = {"cert_file": env.p("server.crt"), "key_file": env.p("server.key"),
           "client_ca_file": env.p("ca.crt")}
    cases.append(("missing certificate",
                  env.config("bad-cert", collector_tls=dict(tls, cert_file=env.p("nope.crt"))),
                  "collector", "key 'collector.tls.cert_file': cannot read "
                  + env.p("nope.crt") + ": No such file or directory"))
    cases.append(("key of another certificate",
                  env.config("bad-key", collector_tls=dict(tls, key_file=env.p("agent.key"))),
                  "collector", "key 'collector.tls.key_file': the key in " + env.p("agent.key")
                  + " does not belong to the certificate in " + env.p("server.crt")))
    cases.append(("client CA that is a key",
                  env.config("bad-ca", collector_tls=dict(tls, client_ca_file=env.p("ca.key"))),
                  "collector", "key 'collector.tls.client_ca_file': no PEM certificate in "))
    short = os.path.join(env.tmp, "short.token")
    with open(short, "w") as f:
        f.write("tooshort\n")
    cases.append(("short token", env.config("bad-token", token_file=short), "collector",
                  "key 'collector.http_token_file': " + short + ": the token is shorter than 16"))
    cases.append(("agent CA missing",
                  env.config("bad-agent", agent_tls={"ca_file": env.p("none.crt")}), "agent",
                  "key 'agent.tls.ca_file': cannot read " + env.p("none.crt")))
    for what, cfg, binary, want in cases:
        if binary == "collector":
            args = [env.collector_bin, "-c", cfg, "--listen", f"127.0.0.1:{free_port()}",
                    "--http-listen", f"127.0.0.1:{free_port()}", "--store", "memory:"]
        else:
            args = [env.agent_bin, "-c", cfg, "-r", env.pcap, "--collector",
                    f"127.0.0.1:{free_port()}"]
        r = subprocess.run(args, capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, f"{what}: exit {r.returncode}: {r.stderr}"
        line = r.stderr.strip().splitlines()[0]
        # FILE:LINE: key '...': ...
        assert line.split(": ", 1)[1].startswith(cfg + ":"), f"{what}: {line}"
        assert want in line, f"{what}: want {want!r} in {line!r}"
    assert "tooshort" not in r.stderr
    return f"start-up errors exit 2 naming file, line and key: {', '.join(c[0] for c in cases)}"


def test_api_write_auth(env):
    c = Collector(env, env.mtls_collector_config("api"), "api")
    try:
        url = c.url("/api/v1/revocations")
        st, hdrs, body = post(url, ["5c1e8a2f-orders"])
        assert st == 401, (st, body)
        assert hdrs.get("WWW-Authenticate", "").startswith("Bearer"), hdrs
        st, hdrs, body = post(url, ["5c1e8a2f-orders"], token=secrets.token_hex(32))
        assert st == 401 and 'error="invalid_token"' in hdrs.get("WWW-Authenticate", ""), (st, hdrs)
        st, _, body = post(url, ["5c1e8a2f-orders"], token=env.token[:-1])
        assert st == 401, (st, body)
        st, _, body = post(url, ["5c1e8a2f-orders"], token=env.token, scheme="Basic")
        assert st == 401, (st, body)
        st, _, body = post(url, ["8e5b3d71-orders"], token=env.token)
        assert st == 200 and json.loads(body) == {"revoked": 1}, (st, body)
        # The revocation takes effect; the refused ones do not.
        agent_cfg = env.config("api-agent", agent_tls={
            "ca_file": env.p("ca.crt"), "cert_file": env.p("agent.crt"),
            "key_file": env.p("agent.key")})
        r = env.agent(agent_cfg, c.grpc, AGENT_NAME)
        assert r.returncode == 0, r.stderr
        revoked = {k[1] for k in alert_keys(c) if k[0] == "revoked_use"}
        assert revoked == {"8e5b3d71-orders"}, revoked
        metrics = c.get("/metrics")
    finally:
        c.stop()
    assert env.token not in c.stderr() and env.token not in metrics
    assert env.token not in open(c.db, "rb").read().decode("latin-1")

    # No token file: writes are off, reads stay open.
    c = Collector(env, env.mtls_collector_config("api-off", token=False), "api-off")
    try:
        st, _, body = post(c.url("/api/v1/revocations"), ["8e5b3d71-orders"], token=env.token)
        assert st == 403 and "http_token_file" in body, (st, body)
        assert c.get("/healthz")["status"] == "ok"
        assert c.get("/api/v1/alerts")["alerts"] == []
        assert "writes disabled" in c.stderr(), c.stderr()
    finally:
        c.stop()
    return ("API writes: none and wrong token 401 with a Bearer challenge, right token 200 and "
            "revoked_use follows; no token file 403, reads open; token in no log, metric or store")


def run(*args):
    return subprocess.run(list(args), check=True, capture_output=True, text=True)


def test_loopback_binding(env):
    ns = f"twtls{os.getpid()}"
    host_if, ns_if = f"twh{os.getpid()}"[:15], f"twn{os.getpid()}"[:15]
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    third = next(n for n in range(1, 255) if f"10.213.{n}." not in used)
    host_ip, ns_ip = f"10.213.{third}.1", f"10.213.{third}.2"
    results = []
    try:
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        run("ip", "link", "set", ns_if, "netns", ns)
        run("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        run("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        cfg = env.config("netns", token_file=env.token_file)

        def healthy_inside(c):
            r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-sf", "--max-time", "5",
                                f"http://127.0.0.1:{c.http}/healthz"],
                               capture_output=True, text=True)
            return r.returncode == 0 and json.loads(r.stdout)["status"] == "ok"

        def connect(port):
            with socket.create_connection((ns_ip, port), timeout=5):
                return True

        for host in ("127.0.0.1", "0.0.0.0"):
            c = Collector(env, cfg, f"netns-{host}", netns=ns, http_host=host, store="memory:")
            try:
                assert healthy_inside(c), f"API on {host} not serving inside the namespace"
                if host == "127.0.0.1":
                    for port, what in ((c.http, "API"), (c.grpc, "ingest")):
                        try:
                            connect(port)
                            raise AssertionError(f"{what} on 127.0.0.1 reachable at {ns_ip}:{port}")
                        except ConnectionRefusedError:
                            pass
                    results.append(f"127.0.0.1: {ns_ip} refused (API and ingest)")
                else:
                    assert connect(c.http)
                    with urllib.request.urlopen(f"http://{ns_ip}:{c.http}/healthz", timeout=5) as r:
                        assert r.status == 200
                    results.append(f"0.0.0.0: {ns_ip} answers")
            finally:
                c.stop()
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
    gone = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ns not in gone, "network namespace left behind"
    return "loopback binding across a veth pair: " + "; ".join(results)


def main():
    build, root = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    passed = failed = 0
    tmp = tempfile.mkdtemp(prefix="tokenwatch-tls.")
    try:
        env = Env(build, root, tmp)
        for test in (test_pki, test_mtls_happy_path, test_rejections, test_startup_errors,
                     test_api_write_auth, test_loopback_binding):
            env.count += 1
            try:
                print("ok " + test(env), flush=True)
                passed += 1
            except Exception as e:  # report and go on
                print(f"FAIL {test.__name__}: {e}", flush=True)
                failed += 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
