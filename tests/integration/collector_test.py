#!/usr/bin/env python3
"""Agent → collector over real gRPC on loopback, with a real SQLite store.

1. demo: the agent replays examples/demo.pcap into the collector; the
   alerts of the core detections arrive exactly as examples/README.md
   expects, and benign traffic raises nothing.
2. kill -9: the collector is killed mid-stream and restarted on the same
   store; the agent reconnects and resends; every event is counted exactly
   once (token uses in SQLite == uses the agent sent).
3. collector away: with no collector and a small queue, the agent drops
   what does not fit, says so, and exits 1 — nothing is lost silently.

usage: collector_test.py BUILD_DIR REPO_ROOT
Prints "N passed, M failed".
"""
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

from harness import durable_uses, free_port, get_json, store_copy, wait_for


class Collector:
    def __init__(self, build, tmp, store, cfg=None, name="collector"):
        self.grpc = free_port()
        self.http = free_port()
        self.alerts = os.path.join(tmp, f"{name}-alerts.jsonl")
        self.err = open(os.path.join(tmp, f"{name}.err"), "a")
        args = [os.path.join(build, "collector/tokenwatch-collector"),
                "--listen", f"127.0.0.1:{self.grpc}", "--http-listen", f"127.0.0.1:{self.http}",
                "--store", store, "--alerts-out", self.alerts]
        if cfg:
            args[1:1] = ["-c", cfg]
        self.args = args
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.args, stderr=self.err)
        wait_for(self.healthy, 20, "collector /healthz")

    def healthy(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        return self.proc.returncode


def agent(build, *args, timeout=300):
    return subprocess.run([os.path.join(build, "agent/tokenwatch-agent"), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_demo(build, root, tmp):
    cfg = os.path.join(root, "examples/tokenwatch.yaml")
    store = "sqlite:" + os.path.join(tmp, "demo.db")
    c = Collector(build, tmp, store, cfg, "demo")
    try:
        r = agent(build, "-c", cfg, "-r", os.path.join(root, "examples/demo.pcap"),
                  "--collector", f"127.0.0.1:{c.grpc}", "--agent-id", "demo-host")
        assert r.returncode == 0, r.stderr
        assert "25 acknowledged" in r.stderr or "25 events queued, 25 acknowledged" in r.stderr, r.stderr
        alerts = c.api("/api/v1/alerts?limit=1000")["alerts"]
    finally:
        c.stop()
    got = {(a["type"], a["token"].get("jti", a["token"]["fp"]), a["service"]): a for a in alerts}
    want = {
        ("sensitive_endpoint", "3b7d0c94-pay", "payments"): ("high", True),
        ("cross_service", "5c1e8a2f-orders", "payments"): (None, True),
        ("audience_mismatch", "5c1e8a2f-orders", "payments"): (None, True),
        ("expired_use", "71d2b5e8-rpt", "inventory"): ("critical", True),
        ("expired_use", "71d2b5e8-rpt", "orders"): ("low", False),
        ("sensitive_endpoint", "e04a6d13-pay", "payments"): ("critical", True),
        ("multi_source", "8e5b3d71-orders", "orders"): (None, True),
    }
    core = {"cross_service", "audience_mismatch", "expired_use", "not_yet_valid",
            "sensitive_endpoint", "multi_source"}
    missing = [k for k in want if k not in got]
    wrong = [(k, got[k]["severity"], got[k]["accepted"]) for k, (sev, acc) in want.items()
             if k in got and ((sev and got[k]["severity"] != sev) or got[k]["accepted"] != acc)]
    extra = [k for k in got if k not in want and k[0] in core]
    assert not missing and not wrong and not extra, f"missing {missing} wrong {wrong} extra {extra}"
    # The same alerts went to --alerts-out, once each.
    with open(c.alerts) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    assert len(lines) == len(alerts), (len(lines), len(alerts))
    # The token API serves the state; no raw token anywhere in the DB.
    ident = urllib.request.quote("https://idp.demo|8e5b3d71-orders", safe="")
    uses = sum(durable_uses(os.path.join(tmp, "demo.db")).values())
    assert uses == 25, uses
    blob = open(os.path.join(tmp, "demo.db"), "rb").read()
    assert b"eyJ" not in blob, "a raw JWT reached the store"
    return f"demo: {len(want)} expected alerts, nothing extra, 25 uses stored ({ident[:20]}...)"


def test_kill9(build, root, tmp):
    pcap = os.path.join(tmp, "load.pcap")
    subprocess.run([os.path.join(build, "tests/bench/make_bench_pcap"), pcap, "--size-mb", "40"],
                   check=True, capture_output=True)
    cfg = os.path.join(tmp, "kill9.yaml")
    with open(os.path.join(tmp, "k.key"), "wb") as f:
        f.write(b"kill9-key")
    os.chmod(os.path.join(tmp, "k.key"), 0o600)  # the agent refuses a key others can read
    with open(cfg, "w") as f:
        f.write("fingerprint_key_file: k.key\nagent:\n  fold_window: 0s\n  batch_max_events: 256\n"
                "  drain_timeout: 60s\n")
    store = "sqlite:" + os.path.join(tmp, "kill9.db")
    c = Collector(build, tmp, store, None, "kill9")
    # The capture reaches the agent through a pipe, half of it before the
    # kill and the rest after: the kill lands mid-stream however fast the
    # agent is (with -r FILE it could finish before the kill).
    a = subprocess.Popen([os.path.join(build, "agent/tokenwatch-agent"), "-c", cfg, "-r", "-",
                          "--collector", f"127.0.0.1:{c.grpc}", "--agent-id", "k9"],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    with open(pcap, "rb") as f:
        data = f.read()
    half = len(data) // 2
    a.stdin.write(data[:half])
    a.stdin.flush()
    db_path = os.path.join(tmp, "kill9.db")

    def stored():
        try:
            return sum(durable_uses(db_path).values())
        except sqlite3.Error:
            return 0
    def batches_stored():
        # Progress is committed with every batch; token rows only at
        # checkpoints (the batches in between are journaled).
        try:
            # A copy: the running collector holds the file exclusively.
            return store_copy(db_path, "select coalesce(max(seq),0) from agent_progress")[0][0]
        except sqlite3.Error:
            return 0
    wait_for(lambda: batches_stored() > 4, 60, "batches stored before the kill")
    c.proc.send_signal(signal.SIGKILL)
    c.proc.wait()
    time.sleep(1.0)
    c.start()  # same ports, same store
    _, err = a.communicate(input=data[half:], timeout=300)
    err = err.decode(errors="replace")
    c.stop()
    assert a.returncode == 0, err
    sent = int([l for l in err.splitlines() if l.strip().startswith("token_uses")][0].split()[1])
    got = stored()
    assert got == sent, f"agent sent {sent} uses, store counts {got}"
    assert "reconnects" in err and " 0 reconnects" not in err, err
    return f"kill -9 mid-stream: {sent} uses sent, {got} stored exactly once"


def test_away(build, root, tmp):
    cfg = os.path.join(tmp, "away.yaml")
    with open(cfg, "w") as f:
        f.write("agent:\n  fold_window: 0s\n  queue_max_events: 10\n  batch_max_events: 5\n"
                "  drain_timeout: 2s\n")
    r = agent(build, "-c", cfg, "-r", os.path.join(root, "examples/demo.pcap"),
              "--collector", f"127.0.0.1:{free_port()}", "--agent-id", "away")
    assert r.returncode == 1, r.stderr
    line = [l for l in r.stderr.splitlines() if "delivery:" in l][0]
    assert "10 events queued, 0 acknowledged, 15 dropped" in line, line
    assert "10 events in 2 batches were not acknowledged" in r.stderr, r.stderr
    return "collector away: 15 events dropped and reported, 10 unacknowledged reported, exit 1"


def main():
    build, root = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    passed = failed = 0
    for test in (test_demo, test_kill9, test_away):
        tmp = tempfile.mkdtemp()
        try:
            print("ok " + test(build, root, tmp))
            passed += 1
        except Exception as e:  # report and go on
            print(f"FAIL {test.__name__}: {e}")
            failed += 1
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
