#!/usr/bin/env python3
"""Live capture: the agent captures on an interface (lo, then any) while
curl sends requests with tokens to a real nginx on loopback; every request
must arrive as a usage event with its status and the right fingerprint.

usage: live_capture.py AGENT
Needs root (packet capture). Prints "N passed, M failed".
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from harness import Nginx, events_in, token_fp, wait_for

PORT = 18280
REQUESTS = 40
KEY = b"live-capture-test-key"

def fp(token):
    return token_fp(KEY, token)


def run_once(agent, iface, tmp):
    cfg = os.path.join(tmp, "tokenwatch.yaml")
    out = os.path.join(tmp, f"events-{iface}.jsonl")
    err = open(os.path.join(tmp, f"agent-{iface}.err"), "w+")
    proc = subprocess.Popen(
        [agent, "-c", cfg, "-i", iface, "-f", f"tcp port {PORT}",
         "--events-out", out, "--agent-id", "live"], stderr=err)
    try:
        try:
            wait_for(lambda: "capturing on" in open(err.name).read(), 10, "agent start")
        except AssertionError:
            return False, "agent did not start: " + open(err.name).read()
        # Capture is armed once a probe request comes back as an event.
        probe = f"probe-{iface}"

        def probe_seen():
            subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", f"Authorization: Bearer {probe}",
                            f"http://127.0.0.1:{PORT}/probe"], check=False)
            return any(e["token"]["fp"] == fp(probe) for e in events_in(out))
        try:
            wait_for(probe_seen, 15, "probe event")
        except AssertionError:
            return False, "probe never seen"
        sent = {}
        # Half on one keep-alive connection, half on fresh connections.
        urls, args = [], ["curl", "-s", "-o", "/dev/null"]
        for i in range(REQUESTS // 2):
            token = f"live-{iface}-keepalive-{i}"
            path = "/denied" if i % 5 == 0 else f"/v1/items/{i}"
            sent[fp(token)] = (path, 401 if i % 5 == 0 else 200)
            args += ["-H", f"Authorization: Bearer {token}", f"http://127.0.0.1:{PORT}{path}", "--next", "-s", "-o", "/dev/null"]
        subprocess.run(args[:-4], check=True)
        for i in range(REQUESTS // 2):
            token = f"live-{iface}-fresh-{i}"
            sent[fp(token)] = (f"/v1/fresh/{i}", 200)
            subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}",
                            f"http://127.0.0.1:{PORT}/v1/fresh/{i}"], check=True)

        def all_seen():
            got = {e["token"]["fp"] for e in events_in(out)}
            return all(k in got for k in sent)
        try:
            wait_for(all_seen, 15, "all events")
        except AssertionError:
            pass  # what is missing is reported below
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    evs = {e["token"]["fp"]: e for e in events_in(out)}
    missing = [k for k in sent if k not in evs]
    wrong = [(sent[k], evs[k]["path"], evs[k]["status"]) for k in sent
             if k in evs and (evs[k]["path"], evs[k]["status"]) != sent[k]]
    if proc.returncode != 0:
        return False, f"agent exited {proc.returncode}"
    if missing or wrong:
        return False, f"{len(missing)} requests missing, wrong: {wrong[:3]}"
    return True, f"{len(sent)} requests seen on {iface}, each with its status"


def main():
    agent = os.path.abspath(sys.argv[1])
    if os.geteuid() != 0:
        print("live capture needs root")
        print("0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "key"), "wb") as f:
        f.write(KEY)
    os.chmod(os.path.join(tmp, "key"), 0o600)  # the agent refuses a key others can read
    with open(os.path.join(tmp, "tokenwatch.yaml"), "w") as f:
        f.write("fingerprint_key_file: key\nagent:\n  fold_window: 0s\n")
    passed = failed = 0
    nginx = None
    try:
        try:
            nginx = Nginx(tmp, PORT)
            ok = True
        except AssertionError:
            ok = False
        for iface in ["lo", "any"]:
            good, msg = run_once(agent, iface, tmp) if ok else (False, "nginx did not start")
            print(("ok " if good else "FAIL ") + msg)
            passed += good
            failed += not good
    finally:
        if nginx:
            nginx.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
