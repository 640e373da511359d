#!/usr/bin/env python3
"""Live HTTP/2 and gRPC on lo: real servers, real clients, the agent
capturing with -i lo. Every request must arrive as a usage event with its
protocol, status, grpc_status and fingerprint:

  * nginx (`listen ... http2`: h2c with prior knowledge) and
    `curl --http2-prior-knowledge`: 200, 401, 403, with bearer JWTs;
  * nghttpx (h2c frontend, nginx HTTP/1.1 behind it) and `curl --http2`:
    the `Upgrade: h2c` path; the upgrade request's status is the one
    HTTP/2 stream 1 answers (200, 401);
  * a gRPC service with JWT auth (python3-grpcio) and its client: a valid
    token (grpc_status 0), a forged one (16 UNAUTHENTICATED), one without
    the scope (7 PERMISSION_DENIED), all with HTTP status 200;
  * h2load (nghttp2-client) against nginx: every one of its requests.

The agent streams to a real collector, whose alerts for the gRPC calls
(:authority "payments.internal" attributes them to service payments; the
sensitive endpoint is the method's path glob) must carry protocol grpc,
grpc_status and the `accepted` the gRPC status implies (issue 13):
sensitive_endpoint accepted for a token with the scope (grpc-status 0),
rejected without it (7); expired_use and weak_secret rejected (16).

usage: live_http2.py AGENT
Needs root (packet capture). Prints "N passed, M failed".
"""
import base64
import collections
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from harness import events_in, free_port, get_json, stop_all, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = b"live-http2-test-key"
SECRET = "live-http2-hs256-secret-5e1f"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-grpcio lives there

NGINX_CONF = """
worker_processes 1;
error_log {d}/error.log;
pid {d}/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  server {{
    listen 127.0.0.1:{port} http2;
    location / {{ return 200 "ok\\n"; }}
    location /denied {{ return 401; }}
    location /admin {{ return 403; }}
  }}
  server {{
    listen 127.0.0.1:{backend};
    location / {{ return 200 "ok\n"; }}
    location /denied {{ return 401; }}
  }}
}}
"""


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, secret=SECRET):
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b64(json.dumps(claims).encode())
    s = b64(hmac.new(secret.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest())
    return f"{h}.{p}.{s}"


def fp(token):
    h, p, _ = token.split(".")
    return hmac.new(KEY, f"{h}.{p}".encode(), hashlib.sha256).hexdigest()[:32]


def token(sub, **extra):
    now = int(time.time())
    claims = {"iss": "https://idp.test", "sub": sub, "iat": now, "exp": now + 3600}
    claims.update(extra)
    return jwt(claims)


def main():
    agent = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="tw-live-h2.")
    procs = []
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print(f"{'ok' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}")
        if ok:
            passed += 1
        else:
            failed += 1

    try:
        p_nginx, p_nghttpd, p_grpc = free_port(), free_port(), free_port()
        p_backend = free_port()
        d = os.path.join(tmp, "nginx")
        os.makedirs(d)
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(d=d, port=p_nginx, backend=p_backend))
        procs.append(subprocess.Popen(["nginx", "-p", d, "-c", os.path.join(d, "nginx.conf"),
                                       "-g", "daemon off;"]))
        procs.append(subprocess.Popen(["nghttpx", f"-f127.0.0.1,{p_nghttpd};no-tls",
                                       f"-b127.0.0.1,{p_backend}", "--no-ocsp",
                                       f"--errorlog-file={tmp}/nghttpx.log"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([SYSTEM_PYTHON, os.path.join(HERE, "grpc_service.py"),
                                       "serve", str(p_grpc), SECRET], stdout=subprocess.PIPE))
        for port in (p_nginx, p_nghttpd, p_grpc):
            wait_for(lambda: subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"],
                                            stderr=subprocess.DEVNULL).returncode == 0,
                     60, f"server on {port}")

        with open(os.path.join(tmp, "key"), "wb") as f:
            f.write(KEY)
        os.chmod(os.path.join(tmp, "key"), 0o600)
        cfg = os.path.join(tmp, "tokenwatch.yaml")
        wordlist = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "wordlists",
                                                 "wallarm-jwt-secrets", "jwt.secrets.list"))
        with open(cfg, "w") as f:
            f.write("fingerprint_key_file: key\n"
                    "agent:\n  fold_window: 0s\n"
                    "services:\n  - name: payments\n    match: { hosts: [payments.internal] }\n"
                    "sensitive_endpoints:\n  - service: payments\n    method: POST\n"
                    "    path: /payments.v1.Payments/Refund\n    required_scopes: [refund]\n"
                    "    severity: high\n"
                    f"detections:\n  weak_secrets_file: {json.dumps(wordlist)}\n")
        p_collect, p_api = free_port(), free_port()
        collector = subprocess.Popen(
            [os.path.join(os.path.dirname(agent), "..", "collector", "tokenwatch-collector"),
             "-c", cfg, "--listen", f"127.0.0.1:{p_collect}", "--http-listen", f"127.0.0.1:{p_api}",
             "--store", "memory:"], stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "collector.err"), "w"))
        procs.append(collector)
        api = f"http://127.0.0.1:{p_api}"
        wait_for(lambda: get_json(api + "/healthz", timeout=1) is not None, 60, "collector start")
        out = os.path.join(tmp, "events.jsonl")
        err = open(os.path.join(tmp, "agent.err"), "w+")
        bpf = f"tcp port {p_nginx} or tcp port {p_nghttpd} or tcp port {p_grpc}"
        agent_proc = subprocess.Popen([agent, "-c", cfg, "-i", "lo", "-f", bpf,
                                       "--collector", f"127.0.0.1:{p_collect}",
                                       "--events-out", out, "--agent-id", "live-h2"], stderr=err)
        procs.append(agent_proc)
        wait_for(lambda: "capturing on" in open(err.name).read(), 60, "agent start")
        probe = token("probe")

        def probe_seen():
            subprocess.run(["curl", "-s", "-o", "/dev/null", "--http2-prior-knowledge",
                            "-H", f"Authorization: Bearer {probe}",
                            f"http://127.0.0.1:{p_nginx}/probe"], check=False)
            return any(e["token"]["fp"] == fp(probe) for e in events_in(out))
        wait_for(probe_seen, 60, "probe event")

        want = collections.Counter()  # (protocol, path, status, grpc_status, fp)
        # nginx, prior knowledge (one connection each: curl 7.88 cannot reuse
        # a prior-knowledge connection with --next; h2load below multiplexes).
        for i, (path, status) in enumerate([("/v1/orders/1", 200), ("/denied/x", 401),
                                            ("/admin/users", 403), ("/v1/orders/2", 200)]):
            t = token(f"pk-{i}")
            want[("h2", path, status, None, fp(t))] += 1
            r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                "--http2-prior-knowledge", "-H", f"Authorization: Bearer {t}",
                                f"http://127.0.0.1:{p_nginx}{path}"], capture_output=True, text=True)
            check(f"curl --http2-prior-knowledge {path} answered {status}",
                  r.stdout == str(status), r.stdout)
        # nghttpx: Upgrade: h2c, the answer on stream 1.
        for i, (path, status) in enumerate([("/ok", 200), ("/denied/y", 401)]):
            t = token(f"up-{i}")
            want[("http/1.1", path, status, None, fp(t))] += 1
            r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_version}",
                                "--http2", "-H", f"Authorization: Bearer {t}",
                                f"http://127.0.0.1:{p_nghttpd}{path}"],
                               capture_output=True, text=True)
            check(f"curl --http2 upgraded to HTTP/2 ({path})", r.stdout == "2", r.stdout)
        # gRPC: accepted, forged, missing scope.
        good = token("alice", scope="refund read")
        forged = jwt({"sub": "mallory", "exp": int(time.time()) + 60}, secret="wrong-secret")
        noscope = token("bob", scope="read")
        for t, code, n in [(good, 0, 3), (forged, 16, 2), (noscope, 7, 1)]:
            r = subprocess.run([SYSTEM_PYTHON, os.path.join(HERE, "grpc_service.py"), "call",
                                str(p_grpc), t, str(n)], capture_output=True, text=True)
            got = [int(x) for x in r.stdout.split()]
            check(f"gRPC client sees status {code}", got == [code] * n, r.stdout + r.stderr)
            want[("grpc", "/payments.v1.Payments/Refund", 200, code, fp(t))] += n
        # gRPC with :authority payments.internal, for the collector's alerts.
        alert_cases = [  # (token, calls, grpc status, alert type, accepted)
            (token("carol", scope="refund"), 1, 0, "sensitive_endpoint", True),
            (token("dave", scope="read"), 1, 7, "sensitive_endpoint", False),
            (jwt({"sub": "erin", "scope": "refund", "exp": int(time.time()) - 3600}), 1, 16,
             "expired_use", False),
            (jwt({"sub": "frank", "scope": "refund", "exp": int(time.time()) + 600}, secret="secret"), 1,
             16, "weak_secret", False),
        ]
        for t, n, code, _, _ in alert_cases:
            r = subprocess.run([SYSTEM_PYTHON, os.path.join(HERE, "grpc_service.py"), "call",
                                str(p_grpc), t, str(n), "payments.internal"], capture_output=True, text=True)
            got = [int(x) for x in r.stdout.split()]
            check(f"gRPC client via payments.internal sees status {code}", got == [code] * n,
                  r.stdout + r.stderr)
            want[("grpc", "/payments.v1.Payments/Refund", 200, code, fp(t))] += n
        # h2load: 200 requests, 2 clients, 10 streams each at once.
        load = token("load")
        # Paced (--rps, per client): the test is about parsing multiplexed
        # streams; a burst an ASan-built agent on a loaded 2-core machine
        # cannot keep up with shows as counted kernel drops, not as wrong
        # parsing (throughput is the benchmarks' job).
        r = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "10", "--rps=100", "-H",
                            f"authorization: Bearer {load}",
                            f"http://127.0.0.1:{p_nginx}/v1/load"], capture_output=True, text=True)
        check("h2load completed 200 requests", "200 succeeded" in r.stdout, r.stdout[-400:])
        want[("h2", "/v1/load", 200, None, fp(load))] += 200

        def project():
            got = collections.Counter()
            for e in events_in(out):
                if e["token"]["fp"] == fp(probe):
                    continue
                got[(e.get("protocol"), e["path"], e["status"], e.get("grpc_status"),
                     e["token"]["fp"])] += e.get("count", 1)
            return got
        try:
            wait_for(lambda: project() == want, 60, "all events")
        except AssertionError:
            pass
        got = project()
        for key in sorted(set(want) | set(got), key=str):
            check(f"{key[0]} {key[1]} status={key[2]} grpc_status={key[3]} x{want[key]}",
                  got[key] == want[key], f"agent reported {got[key]}")
        def alerts():
            got = get_json(api + "/api/v1/alerts?limit=1000", timeout=3) or {}
            return {(a["type"], a["token"]["fp"]): a for a in got.get("alerts", [])}
        try:
            wait_for(lambda: all((typ, fp(t)) in alerts() for t, _, _, typ, _ in alert_cases), 60,
                     "gRPC alerts")
        except AssertionError:
            pass  # the checks below say which is missing
        have = alerts()
        for t, _, code, typ, accepted in alert_cases:
            a = have.get((typ, fp(t)))
            check(f"{typ} alert for a gRPC call answered grpc-status {code}: service payments, "
                  f"protocol grpc, grpc_status {code}, accepted {accepted}",
                  a is not None and a["service"] == "payments" and a.get("protocol") == "grpc"
                  and a.get("grpc_status") == code and a["accepted"] is accepted and a["status"] == 200,
                  json.dumps(a))
        weighted = have.get(("sensitive_endpoint", fp(alert_cases[1][0])))
        check("a rejected call without the scope is not critical",
              weighted is not None and weighted["severity"] == "high", json.dumps(weighted))
        benign = [k for k in have if k[1] == fp(load)]
        check("benign h2load traffic raises no alert", not benign, str(benign))
        sources = {e.get("source") for e in events_in(out)}
        check("source is pcap", sources == {"pcap"}, str(sources))
        agent_proc.terminate()
        agent_proc.wait(timeout=20)
        summary = open(err.name).read()
        check("agent summary counts gRPC", "grpc_requests" in summary, summary[-800:])
        print(summary[summary.find("summary"):])
    finally:
        stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
