#!/usr/bin/env python3
"""Packet-to-alert latency on live capture: nginx on loopback, the agent
capturing on lo and streaming to the collector (SQLite store), a client
sending requests with expired tokens (each a new identity, so each raises
an expired_use alert). Latency = wall time the alert line appears in
--alerts-out minus the alert's ts (the packet timestamp of the request).

usage: latency_bench.py BUILD_DIR [N]   (root: live capture)
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import free_port, get_json, wait_for


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, key=b"latency-bench"):
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b64(json.dumps(claims).encode())
    sig = hmac.new(key, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(sig)}"


def main():
    build = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    tmp = tempfile.mkdtemp()
    port, grpc, http_port = free_port(), free_port(), free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{ access_log off; client_body_temp_path {tmp}; proxy_temp_path {tmp};
  fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok\\n"; }} }} }}
""")
    with open(os.path.join(tmp, "key"), "wb") as f:
        f.write(b"latency-key")
    os.chmod(os.path.join(tmp, "key"), 0o600)  # the agent refuses a key others can read
    cfg = os.path.join(tmp, "tw.yaml")
    with open(cfg, "w") as f:
        f.write("fingerprint_key_file: key\n")
    alerts = os.path.join(tmp, "alerts.jsonl")
    procs = []
    try:
        procs.append(subprocess.Popen(["nginx", "-p", tmp, "-c", conf, "-g", "daemon off;"]))
        procs.append(subprocess.Popen(
            [os.path.join(build, "collector/tokenwatch-collector"), "-c", cfg,
             "--listen", f"127.0.0.1:{grpc}", "--http-listen", f"127.0.0.1:{http_port}",
             "--store", f"sqlite:{tmp}/tw.db", "--alerts-out", alerts],
            stderr=open(os.path.join(tmp, "collector.err"), "w")))
        err = open(os.path.join(tmp, "agent.err"), "w")
        procs.append(subprocess.Popen(
            [os.path.join(build, "agent/tokenwatch-agent"), "-c", cfg, "-i", "lo",
             "-f", f"tcp port {port}", "--collector", f"127.0.0.1:{grpc}",
             "--agent-id", "latency"], stderr=err))
        seen = {}
        stop = threading.Event()

        def tail():
            while not os.path.exists(alerts) and not stop.is_set():
                time.sleep(0.001)
            with open(alerts) as f:
                buf = ""
                while not stop.is_set():
                    chunk = f.read()
                    if not chunk:
                        time.sleep(0.0005)
                        continue
                    now = time.time()
                    buf += chunk
                    *lines, buf = buf.split("\n")
                    for line in lines:
                        a = json.loads(line)
                        seen.setdefault(a["token"].get("jti"), (now, a))
        t = threading.Thread(target=tail, daemon=True)
        t.start()
        now = int(time.time())
        conn = None
        # Warm up until the pipeline is live end to end.
        deadline = time.time() + 30
        while "warm" not in seen and time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/warm", headers={"Authorization": "Bearer " +
                             jwt({"jti": "warm", "exp": now - 3600, "sub": "w"})})
                conn.getresponse().read()
            except OSError:
                pass  # nginx not up yet
            time.sleep(0.2)
        if "warm" not in seen:
            print("latency: the pipeline never came up")
            return 1
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for i in range(n):
            tok = jwt({"jti": f"lat-{i}", "exp": now - 3600, "sub": "u"})
            conn.request("GET", f"/v1/x/{i}", headers={"Authorization": "Bearer " + tok})
            conn.getresponse().read()
            time.sleep(0.02)
        deadline = time.time() + 10
        while sum(1 for i in range(n) if f"lat-{i}" in seen) < n and time.time() < deadline:
            time.sleep(0.01)
        stop.set()
        lat = []
        for i in range(n):
            if f"lat-{i}" not in seen:
                continue
            t_seen, a = seen[f"lat-{i}"]
            ts = datetime.strptime(a["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=__import__("datetime").timezone.utc).timestamp()
            lat.append((t_seen - ts) * 1000)
        lat.sort()
        if not lat:
            print("latency: no alerts")
            return 1
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
        print(f"packet-to-alert latency over {len(lat)}/{n} alerts: p50 {p(0.5):.1f} ms, "
              f"p90 {p(0.9):.1f} ms, p99 {p(0.99):.1f} ms, max {lat[-1]:.1f} ms")
        return 0 if len(lat) == n else 1
    finally:
        for pr in reversed(procs):
            pr.send_signal(signal.SIGTERM)
            try:
                pr.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pr.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
