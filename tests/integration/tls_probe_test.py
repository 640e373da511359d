#!/usr/bin/env python3
"""The TLS probe, live (issue 14). Real programs on loopback:

  * nginx with TLS (the system libssl) and the same locations in
    cleartext; curl (libssl) over HTTP/1.1 and HTTP/2 (ALPN), and Python's
    ssl as a client. One agent runs --tls-probe beside -i lo on the
    cleartext ports: the probe's token uses must equal the wire's, request
    for request (protocol, path, status, fingerprint), with source
    tls_probe and the process named;
  * a node https server started after the agent: attached on the next
    rescan, its uses seen;
  * no raw token in the agent's output;
  * detach: after SIGTERM, and after SIGKILL, no BPF program or link of
    the probe remains (bpftool), and no uprobe event is left in tracefs;
  * without CAP_BPF + CAP_PERFMON the agent exits 2 and names them.

usage: tls_probe_test.py AGENT      (root)
Prints "N passed, M failed".
"""
import base64
import collections
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from harness import events_in, free_port, stop_all, wait_for

KEY = b"tls-probe-test-key"

NGINX_CONF = """
worker_processes 1;
error_log {d}/error.log;
pid {d}/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  server {{
    listen 127.0.0.1:{tls} ssl http2;
    ssl_certificate {d}/cert.pem;
    ssl_certificate_key {d}/key.pem;
    include {d}/locations.conf;
  }}
  server {{
    listen 127.0.0.1:{clear};
    include {d}/locations.conf;
  }}
  server {{
    listen 127.0.0.1:{h2c} http2;
    include {d}/locations.conf;
  }}
}}
"""
LOCATIONS = """
location / { return 200 "ok\\n"; }
location /denied { return 401; }
location /admin { return 403; }
"""

NODE_SERVER = """
const https = require("https"), fs = require("fs");
const [cert, key, port] = process.argv.slice(2);
https.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)}, (req, res) => {
  res.writeHead(req.url.startsWith("/denied") ? 401 : 200, {"content-length": "2"}); res.end("ok");
}).listen(Number(port), "127.0.0.1", () => console.log("ready"));
"""


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(sub):
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b64(json.dumps({"sub": sub, "exp": int(time.time()) + 3600}).encode())
    sig = hmac.new(b"tls-probe-secret-0c1d", f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(sig)}"


def fp(token):
    h, p, _ = token.split(".")
    return hmac.new(KEY, f"{h}.{p}".encode(), hashlib.sha256).hexdigest()[:32]


def bpf_objects():
    """Names of loaded BPF programs of the probe (tw_*)."""
    r = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True)
    try:
        progs = json.loads(r.stdout or "[]")
    except ValueError:
        return ["<bpftool: " + r.stderr.strip()[:200] + ">"]
    return sorted(p.get("name", "") for p in progs if p.get("name", "").startswith("tw_"))


def uprobe_events():
    try:
        with open("/sys/kernel/tracing/uprobe_events") as f:
            return f.read()
    except OSError:
        return ""


def main():
    agent = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="tw-tls-probe.")
    procs = []
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print(f"{'ok' if ok else 'FAIL'} {name}{': ' + str(detail)[:600] if detail and not ok else ''}",
              flush=True)
        passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
        return ok

    def start(args, **kw):
        p = subprocess.Popen(args, **kw)
        procs.append(p)
        return p

    try:
        check("no probe program loaded before the test", bpf_objects() == [], bpf_objects())
        uprobes_before = uprobe_events()
        d = os.path.join(tmp, "nginx")
        os.makedirs(os.path.join(d, "body"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        f"{d}/key.pem", "-out", f"{d}/cert.pem", "-days", "1", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
        p_tls, p_clear, p_h2c, p_node = free_port(), free_port(), free_port(), free_port()
        with open(f"{d}/locations.conf", "w") as f:
            f.write(LOCATIONS)
        with open(f"{d}/nginx.conf", "w") as f:
            f.write(NGINX_CONF.format(d=d, tls=p_tls, clear=p_clear, h2c=p_h2c))
        start(["nginx", "-p", d, "-c", f"{d}/nginx.conf", "-g", "daemon off;"])
        for port in (p_tls, p_clear, p_h2c):
            wait_for(lambda: subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"],
                                            stderr=subprocess.DEVNULL).returncode == 0, 30, f"nginx :{port}")

        with open(os.path.join(tmp, "key"), "wb") as f:
            f.write(KEY)
        os.chmod(os.path.join(tmp, "key"), 0o600)
        cfg = os.path.join(tmp, "tokenwatch.yaml")
        with open(cfg, "w") as f:
            f.write("fingerprint_key_file: key\nagent:\n  fold_window: 0s\n"
                    "  tls_probe:\n    enabled: true\n    targets: auto\n    exclude_comm: [sshd]\n"
                    "    record: probe.twprobe\n")
        out = os.path.join(tmp, "events.jsonl")
        err_path = os.path.join(tmp, "agent.err")
        agent_proc = start([agent, "-c", cfg, "-i", "lo", "-f", f"tcp port {p_clear} or tcp port {p_h2c}",
                            "--events-out", out, "--agent-id", "tls", "--metrics-listen", "off"],
                           stderr=open(err_path, "w"))
        wait_for(lambda: "capturing on" in open(err_path).read(), 30, "agent start")
        check("the probe attached to the system libssl",
              "TLS probe attached to" in open(err_path).read() and "libssl.so" in open(err_path).read(),
              open(err_path).read()[-500:])
        check("the probe's programs are loaded", len(bpf_objects()) >= 4, bpf_objects())

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        tokens = []
        # The same requests over TLS (probe) and in cleartext (wire).
        cases = [("/v1/orders/1", 200), ("/denied/x", 401), ("/admin/users", 403)]
        for i, (path, status) in enumerate(cases):
            t = jwt(f"h1-{i}")
            tokens.append(t)
            for url in (f"https://127.0.0.1:{p_tls}{path}", f"http://127.0.0.1:{p_clear}{path}"):
                r = subprocess.run(["curl", "-sk", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}",
                                    "-H", "@-", url], input=f"Authorization: Bearer {t}\n",
                                   capture_output=True, text=True)
                check(f"curl --http1.1 {url} answered {status}", r.stdout == str(status), r.stdout)
            t2 = jwt(f"h2-{i}")
            tokens.append(t2)
            for args in (["--http2", f"https://127.0.0.1:{p_tls}{path}"],
                         ["--http2-prior-knowledge", f"http://127.0.0.1:{p_h2c}{path}"]):
                r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                                    "-H", "@-", *args], input=f"Authorization: Bearer {t2}\n",
                                   capture_output=True, text=True)
                check(f"curl {args[0]} {path} answered {status} over HTTP/2", r.stdout == f"{status} 2",
                      r.stdout)
            # Python's ssl (libssl's SSL_read_ex/SSL_write_ex) and plain http.client.
            t3 = jwt(f"py-{i}")
            tokens.append(t3)
            for conn in (http.client.HTTPSConnection("127.0.0.1", p_tls, context=ctx, timeout=10),
                         http.client.HTTPConnection("127.0.0.1", p_clear, timeout=10)):
                conn.request("GET", path, headers={"Authorization": f"Bearer {t3}"})
                got = conn.getresponse().status
                conn.close()
                check(f"python {type(conn).__name__} {path} answered {status}", got == status, got)

        def project(source):
            c = collections.Counter()
            for e in events_in(out):
                if e.get("source") == source:
                    c[(e["protocol"], e["method"], e["path"], e["status"], e["token"]["fp"])] += e["count"]
            return c
        try:
            wait_for(lambda: project("tls_probe") == project("pcap") and sum(project("pcap").values()) == 9,
                     30, "probe uses equal to wire uses")
        except AssertionError:
            pass
        probe, wire = project("tls_probe"), project("pcap")
        check("9 uses on the wire (3 paths x curl h1, curl h2, python)", sum(wire.values()) == 9, wire)
        check("the probe's uses equal the wire's, request for request", probe == wire,
              f"probe-only {probe - wire}; wire-only {wire - probe}")
        probe_events = [e for e in events_in(out) if e.get("source") == "tls_probe"]
        comms = {(e.get("process") or {}).get("comm") for e in probe_events}
        check("probe events name the process (nginx seen, both ends parsed once)",
              "nginx" in comms or "curl" in comms or "python3" in comms, comms)
        check("probe events give the client and server of the connection",
              all(e["client"] == "127.0.0.1" and e["server"] == f"127.0.0.1:{p_tls}" for e in probe_events),
              [(e["client"], e["server"]) for e in probe_events][:4])

        # A process started after the agent: node (OpenSSL linked in).
        node_js = os.path.join(tmp, "server.js")
        with open(node_js, "w") as f:
            f.write(NODE_SERVER)
        node = start(["node", node_js, f"{d}/cert.pem", f"{d}/key.pem", str(p_node)],
                     stdout=subprocess.PIPE, text=True)
        check("node https server started after the agent", node.stdout.readline().strip() == "ready")
        try:
            wait_for(lambda: "attached to " + shutil.which("node") in open(err_path).read()
                     or "attached to " + os.path.realpath(shutil.which("node")) in open(err_path).read(),
                     30, "node attached")
        except AssertionError:
            pass
        t4 = jwt("node")
        tokens.append(t4)

        def node_seen():
            subprocess.run(["curl", "-sk", "-o", "/dev/null", "-H", "@-", f"https://127.0.0.1:{p_node}/n"],
                           input=f"Authorization: Bearer {t4}\n", capture_output=True, text=True)
            return any(e["token"]["fp"] == fp(t4) and e.get("source") == "tls_probe" and e["status"] == 200
                       for e in events_in(out))
        try:
            wait_for(node_seen, 30, "node's use", interval=1)
            seen_node = True
        except AssertionError:
            seen_node = False
        check("a process started after the agent is probed (node https)", seen_node,
              open(err_path).read()[-600:])

        # node under load: memory BIOs, so each SSL* is tied to its socket by
        # the thread's socket I/O around the call. 40 keep-alive connections
        # at once, 10 requests each, each connection its own token, paths
        # answered 200 or 401 in turn: a wrong binding would mix streams and
        # pair statuses with the wrong requests.
        load = {f"conn-{i}": jwt(f"load-{i}") for i in range(40)}
        tokens.extend(load.values())
        errors = []

        def client(name):
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", p_node, context=ctx, timeout=20)
                for j in range(10):
                    path = f"/denied/{name}/{j}" if j % 2 else f"/ok/{name}/{j}"
                    conn.request("GET", path, headers={"Authorization": f"Bearer {load[name]}"})
                    r = conn.getresponse()
                    r.read()
                    if r.status != (401 if j % 2 else 200):
                        errors.append((path, r.status))
                conn.close()
            except OSError as e:
                errors.append((name, str(e)))
        threads = [threading.Thread(target=client, args=(n,)) for n in load]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        check("node answered 400 requests on 40 concurrent connections", not errors, errors[:3])
        by_fp = {fp(t): n for n, t in load.items()}

        def node_load():
            got = collections.Counter()
            wrong = []
            for e in events_in(out):
                name = by_fp.get(e["token"]["fp"])
                if name is None or e.get("source") != "tls_probe":
                    continue
                got[name] += e["count"]
                want = 401 if e["path"].startswith("/denied/") else 200
                if not e["path"].split("/")[2] == name or e["status"] != want:
                    wrong.append((name, e["path"], e["status"]))
            return got, wrong
        try:
            wait_for(lambda: sum(node_load()[0].values()) >= 400, 30, "node load uses")
        except AssertionError:
            pass
        got, wrong = node_load()
        check("under load every request through node is one use (400), 10 per connection",
              sum(got.values()) == 400 and set(got.values()) == {10}, dict(got))
        check("...each with its own path and status (no stream mixed up)", not wrong, wrong[:5])

        agent_proc.send_signal(signal.SIGTERM)
        agent_proc.wait(timeout=30)
        err = open(err_path).read()
        check("agent exits 0 on SIGTERM", agent_proc.returncode == 0, err[-400:])
        leaked = [t for t in tokens if t in err or t.split(".")[1] in err]
        check("no raw token in the agent's output", not leaked)
        time.sleep(0.5)
        check("after SIGTERM no probe program is left", bpf_objects() == [], bpf_objects())

        # The recording replays through the same user-space half: the same
        # uses, in the same order (`-r` on a recording, no kernel involved).
        rec = os.path.join(tmp, "probe.twprobe")
        check("the recording is mode 0600 (it holds plaintext)",
              os.path.exists(rec) and (os.stat(rec).st_mode & 0o777) == 0o600)
        replay_cfg = os.path.join(tmp, "replay.yaml")
        with open(replay_cfg, "w") as f:
            f.write("fingerprint_key_file: key\nagent:\n  fold_window: 0s\n")
        replayed = []
        for n in range(2):
            rout = os.path.join(tmp, f"replay-{n}.jsonl")
            r = subprocess.run([agent, "-c", replay_cfg, "-r", rec, "--events-out", rout,
                                "--agent-id", "tls", "--metrics-listen", "off"],
                               capture_output=True, text=True, timeout=120)
            check(f"replay {n + 1} of the recording exits 0", r.returncode == 0, r.stderr[-300:])

            def key(e):
                p = e.get("process") or {}
                return (e["ts"], e["protocol"], e["method"], e["path"], e["status"], e["token"]["fp"],
                        e["client"], e["server"], p.get("pid"), p.get("comm"))
            replayed.append([key(e) for e in events_in(rout)])
        live = [key(e) for e in events_in(out) if e.get("source") == "tls_probe"]
        diff = next(((a, b) for a, b in zip(replayed[0], live) if a != b), None)
        check("the replay gives the live probe's uses, in order", replayed[0] == live,
              f"{len(replayed[0])} replayed, {len(live)} live; first difference {diff}")
        check("two replays give the same events (deterministic)", replayed[0] == replayed[1])
        check("no uprobe event is left in tracefs", uprobe_events() == uprobes_before, uprobe_events()[:300])

        # SIGKILL: the links are the process's; the kernel drops them.
        k = start([agent, "-c", cfg, "--events-out", os.devnull, "--metrics-listen", "off"],
                  stderr=open(os.path.join(tmp, "kill.err"), "w"))
        wait_for(lambda: "TLS probe on" in open(os.path.join(tmp, "kill.err")).read(), 30, "probe-only agent")
        check("--tls-probe alone (no -i) runs", k.poll() is None)
        k.send_signal(signal.SIGKILL)
        k.wait(timeout=10)
        try:
            wait_for(lambda: bpf_objects() == [], 10, "programs released")
        except AssertionError:
            pass
        check("after SIGKILL no probe program is left", bpf_objects() == [], bpf_objects())

        # Without the capabilities: exit 2, naming them.
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "--inh-caps=-all", "--bounding-set=-all", agent, "--tls-probe",
                            "--events-out", os.devnull, "--metrics-listen", "off"],
                           capture_output=True, text=True, timeout=30, cwd=tmp)
        check("without CAP_BPF + CAP_PERFMON the agent exits 2 and names them",
              r.returncode == 2 and "CAP_BPF" in r.stderr and "CAP_PERFMON" in r.stderr,
              f"rc={r.returncode} {r.stderr.strip()[-300:]}")
        r = subprocess.run([agent, "--tls-probe", "-r", "/dev/null"], capture_output=True, text=True)
        check("--tls-probe with -r is a usage error (exit 2)", r.returncode == 2, r.stderr[-200:])
    finally:
        stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
