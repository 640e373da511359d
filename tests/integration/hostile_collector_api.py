#!/usr/bin/env python3
"""Hostile clients against a real collector's HTTP API and store
(docs/security.md, "Hostile clients: HTTP API and store").

Raw-socket HTTP clients on loopback replay the attacks of issue 12 items 5
and 8, and the store turning read-only under the running collector (item
4). Each test asserts the bound or the refusal, and that /healthz,
/metrics and an honest agent (tokenwatch-agent replaying
examples/demo.pcap, 25 events) keep being served meanwhile; the latencies
measured are printed.

  1. slow clients: unauthenticated POSTs announcing 1 GB and sending a
     byte a second (the attack that held all 4 workers for over a minute),
     beside connections dribbling their headers; and 100 connections held
     open from one address (the per-address cap);
  2. RFC 9112 framing (two Content-Lengths, Content-Length with
     Transfer-Encoding, a space before the colon) and revocation jtis that
     would corrupt the revocations file, with the right write token;
  3. failed authentications: logged without the token, counted, 429 with
     Retry-After per address;
  4. the store's ext4 file system turns read-only (an ext4 error with
     errors=remount-ro, on a loop device): the collector logs it, says so
     on /healthz with the reason, keeps serving, acknowledges nothing it
     could not store; moved to a writable disk, every event arrives.

usage: hostile_collector_api.py BUILD_DIR SOURCE_DIR
Prints "ok ..." or "FAIL ..." per test and "N passed, M failed".
"""
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

from fault_common import FaultCollector, metric, parse_delivery, run_tests
from harness import durable_uses, free_port, wait_for

# A test value, not a secret: the write token of the collector under test.
WRITE_TOKEN = "hostile-api-test-write-token-0123456789"


def setup(build, root, tmp, store=None, revoked=True):
    """A config (the demo's, with a write token and a revocations file)
    and a collector on it."""
    shutil.copy(os.path.join(root, "examples/fingerprint.key"), os.path.join(tmp, "fingerprint.key"))
    os.chmod(os.path.join(tmp, "fingerprint.key"), 0o600)
    with open(os.open(os.path.join(tmp, "api.token"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(WRITE_TOKEN + "\n")
    open(os.path.join(tmp, "revoked.txt"), "w").close()
    with open(os.path.join(root, "examples/tokenwatch.yaml")) as f:
        cfg = f.read()
    if revoked:
        cfg = cfg.replace("detections:\n", "detections:\n  revoked_jtis_file: revoked.txt\n", 1)
    cfg += "  drain_timeout: 300s\ncollector:\n  http_token_file: api.token\n"
    path = os.path.join(tmp, "tokenwatch.yaml")
    with open(path, "w") as f:
        f.write(cfg)
    store = store or "sqlite:" + os.path.join(tmp, "store.db")
    return path, FaultCollector(build, tmp, store, cfg=path)


def agent_cmd(build, root, cfg, collector, agent_id):
    return [os.path.join(build, "agent/tokenwatch-agent"), "-c", cfg,
            "-r", os.path.join(root, "examples/demo.pcap"), "--collector", collector.addr,
            "--agent-id", agent_id, "--metrics-listen", f"127.0.0.1:{free_port()}"]


def honest_agent(build, root, cfg, collector, agent_id):
    """Replays the demo (25 events); returns (seconds, acknowledged)."""
    t0 = time.monotonic()
    r = subprocess.run(agent_cmd(build, root, cfg, collector, agent_id),
                       capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    assert r.returncode == 0, f"honest agent exited {r.returncode}: {r.stderr[-800:]}"
    line = [l for l in r.stderr.splitlines() if "delivery:" in l][-1]
    return took, parse_delivery(line)["acked"]


def timed_get(collector, path):
    t0 = time.monotonic()
    try:
        collector.get(path)
        return time.monotonic() - t0
    except OSError:
        return float("inf")


def raw(port, data, timeout=5.0, src=None):
    """Sends `data` on a new connection; returns (answer, closed_by_server)."""
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    out = b""
    try:
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out, True
            out += chunk
    except ConnectionResetError:
        return out, True
    except socket.timeout:
        return out, False
    finally:
        s.close()


def slow_client(port, head, results, key, stop, src):
    """Sends `head` (and then some) a byte a second; records when the
    server closed the connection, None if it never did."""
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(1.0)
    t0 = time.monotonic()
    try:
        s.connect(("127.0.0.1", port))
        data = head + b"x" * 1000
        for i in range(len(data)):
            if stop.is_set():
                break
            try:
                s.send(data[i:i + 1])
            except OSError:
                results[key] = time.monotonic() - t0
                return
            try:
                if s.recv(65536) == b"":
                    results[key] = time.monotonic() - t0
                    return
            except socket.timeout:
                pass
            except OSError:
                results[key] = time.monotonic() - t0
                return
        results[key] = None  # never closed
    finally:
        s.close()


def test_slow_clients(build, root, tmp):
    cfg, c = setup(build, root, tmp)
    try:
        base = max(timed_get(c, "/healthz") for _ in range(5))
        base_agent, acked = honest_agent(build, root, cfg, c, "honest-before")
        assert acked == 25, acked
        stop = threading.Event()
        results = {}
        threads = []
        # 16 slow POSTs (the attack used 4, against 4 workers): headers
        # complete, then the body a byte a second. Another loopback address
        # is another client.
        post = (b"POST /api/v1/revocations HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: 1000000000\r\n\r\n")
        for i in range(16):
            # The head goes at once; the body dribbles.
            t = threading.Thread(target=lambda i=i: slow_post(c.http, post, results, f"post{i}",
                                                              stop))
            threads.append(t)
        # 8 connections dribbling their headers a byte a second.
        head = b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
        for i in range(8):
            t = threading.Thread(target=slow_client,
                                 args=(c.http, head, results, f"head{i}", stop, "127.0.0.3"))
            threads.append(t)
        for t in threads:
            t.start()
        time.sleep(1.0)
        health = [timed_get(c, "/healthz") for _ in range(10)]
        metrics = [timed_get(c, "/metrics") for _ in range(10)]
        during_agent, acked = honest_agent(build, root, cfg, c, "honest-during")
        health += [timed_get(c, "/healthz") for _ in range(10)]
        wait_for(lambda: all(f"head{i}" in results for i in range(8)), 30,
                 "slow-header connections closed by the server")
        stop.set()
        for t in threads:
            t.join(timeout=30)
        posts = [results.get(f"post{i}") for i in range(16)]
        heads = [results.get(f"head{i}") for i in range(8)]
        assert acked == 25, f"honest agent: {acked} of 25 acknowledged during the attack"
        assert all(p is not None for p in posts), f"slow POSTs not closed: {posts}"
        assert max(posts) < 2.0, f"a refused slow POST held its connection {max(posts):.1f} s"
        assert all(h is not None for h in heads), f"slow headers not closed: {heads}"
        # civetweb's header deadline (5 s), plus at most one more wait.
        assert max(heads) < 12.0, f"slow headers held a worker {max(heads):.1f} s"
        assert max(health) < 1.0, f"/healthz took {max(health):.2f} s under the attack"
        assert max(metrics) < 1.0, f"/metrics took {max(metrics):.2f} s under the attack"
        assert during_agent < 30, f"honest agent took {during_agent:.1f} s"
        assert c.proc.poll() is None, "collector died"
    finally:
        c.stop()
    return (f"slow clients (16 slow 1 GB POSTs, 8 dribbled headers): POSTs closed after "
            f"max {max(posts):.2f} s, headers cut after max {max(heads):.1f} s; /healthz max "
            f"{max(health) * 1000:.0f} ms (before: {base * 1000:.0f} ms), /metrics max "
            f"{max(metrics) * 1000:.0f} ms; honest agent 25/25 acked in {during_agent:.1f} s "
            f"(before the attack {base_agent:.1f} s)")


def slow_post(port, head, results, key, stop):
    """The head at once, then a body byte a second until the server closes."""
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    s.settimeout(1.0)
    t0 = time.monotonic()
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(head)
        while not stop.is_set() and time.monotonic() - t0 < 60:
            try:
                if s.recv(65536) == b"":
                    break
            except socket.timeout:
                pass
            s.send(b"x")
        results[key] = time.monotonic() - t0 if not stop.is_set() else None
    except OSError:
        results[key] = time.monotonic() - t0
    finally:
        s.close()


def test_connection_flood(build, root, tmp):
    """100 connections from one address, each sending half a request line
    and holding: the address gets its 16, the rest a 429 at once."""
    cfg, c = setup(build, root, tmp)
    held, refused, t_refused = [], 0, []
    try:
        for i in range(100):
            s = socket.socket()
            s.bind(("127.0.0.5", 0))
            s.settimeout(3.0)
            s.connect(("127.0.0.1", c.http))
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            held.append((s, time.monotonic()))
        health = [timed_get(c, "/healthz") for _ in range(10)]
        metrics_t = [timed_get(c, "/metrics") for _ in range(5)]
        took, acked = honest_agent(build, root, cfg, c, "honest-flood")
        for s, t0 in held:
            try:
                data = s.recv(4096)
                if data.startswith(b"HTTP/1.1 429"):
                    refused += 1
                    t_refused.append(time.monotonic() - t0)
            except (socket.timeout, ConnectionResetError):
                pass
        counted = metric(c.metrics(), "tokenwatch_collector_api_refused_total",
                         reason="client_connections")
    finally:
        for s, _ in held:
            s.close()
        c.stop()
    assert refused == 84, f"{refused} of the 84 connections over the cap refused"
    assert counted == 84, counted
    assert max(health) < 1.0 and max(metrics_t) < 1.0, (max(health), max(metrics_t))
    assert acked == 25 and took < 30, (acked, took)
    return (f"connection flood (100 held from one address): 84 refused with 429, /healthz max "
            f"{max(health) * 1000:.0f} ms, /metrics max {max(metrics_t) * 1000:.0f} ms, honest "
            f"agent 25/25 in {took:.1f} s")


def test_framing_and_jtis(build, root, tmp):
    cfg, c = setup(build, root, tmp)
    revoked = os.path.join(tmp, "revoked.txt")
    auth = f"Authorization: Bearer {WRITE_TOKEN}\r\n".encode()
    head = b"POST /api/v1/revocations HTTP/1.1\r\nHost: x\r\n" + auth
    body = b'["smuggled"]'
    cases = {
        "two Content-Lengths": head + b"Content-Length: 12\r\nContent-Length: 5\r\n\r\n" + body,
        "Content-Length with Transfer-Encoding":
            head + b"Content-Length: 12\r\nTransfer-Encoding: chunked\r\n\r\nc\r\n" + body
            + b"\r\n0\r\n\r\n",
        "space before the colon": head + b"Content-Length : 12\r\n\r\n" + body,
    }
    try:
        for name, req in cases.items():
            answer, closed = raw(c.http, req)
            assert answer.startswith(b"HTTP/1.1 400"), f"{name}: {answer[:80]!r}"
            assert closed, f"{name}: connection left open"
        bad = ['["a\\nb"]', '["#all"]', '["x # y"]', '["a\\rb"]']
        for b in bad:
            req = (head + f"Content-Length: {len(b)}\r\n\r\n{b}".encode())
            answer, _ = raw(c.http, req)
            assert answer.startswith(b"HTTP/1.1 400") and b"jti" in answer, f"{b}: {answer!r}"
        good = '["j-good"]'
        answer, _ = raw(c.http, head + f"Content-Length: {len(good)}\r\n\r\n{good}".encode())
        assert answer.startswith(b"HTTP/1.1 200"), answer
        with open(revoked) as f:
            lines = [l for l in f.read().splitlines() if l.strip() and not l.startswith("#")]
        assert lines == ["j-good"], f"revocations file: {lines}"
        refused = metric(c.metrics(), "tokenwatch_collector_api_refused_total", reason="bad_framing")
        assert refused == 3, refused
        assert c.healthy()
    finally:
        c.stop()
    return (f"framing: {len(cases)} ambiguous requests 400 and closed, {len(bad)} corrupting jtis "
            f"400, the file holds only the good jti")


def test_auth_failures(build, root, tmp):
    cfg, c = setup(build, root, tmp)
    guess = "guessed-" + "0123456789abcdef" * 2
    statuses = []
    try:
        for i in range(12):
            b = '["j-1"]'
            req = (f"POST /api/v1/revocations HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {guess}{i}\r\nContent-Length: {len(b)}\r\n\r\n{b}")
            answer, _ = raw(c.http, req.encode())
            statuses.append(int(answer.split(b" ")[1]))
        last = answer
        right = (f"POST /api/v1/revocations HTTP/1.1\r\nHost: x\r\n"
                 f"Authorization: Bearer {WRITE_TOKEN}\r\nContent-Length: 7\r\n\r\n[\"j-1\"]")
        answer_right, _ = raw(c.http, right.encode())
        # Another address is not limited.
        answer_other, _ = raw(c.http, right.encode(), src="127.0.0.4")
        m = c.metrics()
        failures = metric(m, "tokenwatch_collector_api_auth_failures_total")
        limited = metric(m, "tokenwatch_collector_api_refused_total", reason="auth_rate_limited")
    finally:
        c.stop()
    err = c.stderr()
    assert statuses[:10] == [401] * 10, statuses
    assert statuses[10:] == [429, 429], statuses
    assert b"Retry-After: " in last, last
    assert answer_right.startswith(b"HTTP/1.1 429"), "the right token from a limited address"
    assert answer_other.startswith(b"HTTP/1.1 200"), answer_other[:60]
    assert failures == 10 and limited == 3, (failures, limited)
    logged = [l for l in err.splitlines() if "failed authentication from 127.0.0.1" in l]
    assert logged, "failed authentications not logged"
    assert len(logged) <= 2, f"{len(logged)} lines for one burst: not rate-limited"
    assert guess not in err and WRITE_TOKEN not in err, "a token reached the log"
    return (f"auth: 10 failures 401 then 429 with Retry-After (also for the right token from "
            f"that address; another address served), counted {int(failures)}, "
            f"{len(logged)} log line(s) without the token")


def test_readonly_store(build, root, tmp):
    if os.geteuid() != 0:
        raise AssertionError("needs root (loop device, mount)")
    img, disk = os.path.join(tmp, "ext4.img"), os.path.join(tmp, "disk")
    os.makedirs(disk)
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
    loop = subprocess.run(["losetup", "-f", "--show", img], check=True, capture_output=True,
                          text=True).stdout.strip()
    c = late = None
    recovered = os.path.join(tmp, "recovered.db")
    try:
        subprocess.run(["mount", "-o", "errors=remount-ro", loop, disk], check=True)
        db = os.path.join(disk, "store.db")
        cfg, c = setup(build, root, tmp, store="sqlite:" + db)
        _, acked = honest_agent(build, root, cfg, c, "before-ro")
        assert acked == 25, acked
        failures0 = metric(c.metrics(), "tokenwatch_collector_store_commit_failures_total")
        # An ext4 error: with errors=remount-ro the file system turns
        # read-only under the running collector, for good (emergency_ro).
        with open(f"/sys/fs/ext4/{os.path.basename(loop)}/trigger_fs_error", "w") as f:
            f.write("1")
        os.sync()
        late = subprocess.Popen(agent_cmd(build, root, cfg, c, "during-ro"),
                                stderr=subprocess.PIPE, text=True)
        wait_for(lambda: metric(c.metrics(), "tokenwatch_collector_store_commit_failures_total")
                 >= failures0 + 3, 60, "commits failing on the read-only store", interval=0.3)
        assert c.proc.poll() is None, "collector died on the read-only store"
        health = c.get("/healthz")
        assert '"store_failing"' in health and '"reason"' in health, health
        assert "read-only" in health or "readonly" in health.lower() or "I/O" in health, health
        t_health = max(timed_get(c, "/healthz") for _ in range(5))
        t_alerts = max(timed_get(c, "/api/v1/alerts") for _ in range(5))
        assert t_health < 1.0 and t_alerts < 2.0, (t_health, t_alerts)
        assert late.poll() is None, "the agent finished: something was acknowledged unstored"
        # Recovery: the operator moves the store to a writable disk (a copy
        # of what the read-only one holds) and restarts the collector on
        # the same ports; the agent resends what was never acknowledged.
        crc = c.stop()
        shutil.copyfile(db, recovered)
        if os.path.exists(db + "-wal"):
            shutil.copyfile(db + "-wal", recovered + "-wal")
        c.args[c.args.index("sqlite:" + db)] = "sqlite:" + recovered
        c.start()
        _, err = late.communicate(timeout=120)
        assert late.returncode == 0, f"agent exited {late.returncode}: {err[-800:]}"
        line = [l for l in err.splitlines() if "delivery:" in l][-1]
        during = parse_delivery(line)
        assert during["acked"] == 25, line
        c.stop()
        stored = sum(durable_uses(recovered).values())
    finally:
        if c:
            c.stop()
        if late and late.poll() is None:
            late.kill()
            late.wait()
        subprocess.run(["umount", disk], capture_output=True)
        if os.path.ismount(disk):
            subprocess.run(["umount", "-l", disk], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)
    err = c.stderr()
    logged = [l for l in err.splitlines() if "store commit failed" in l]
    assert logged, "no log line for the failing store"
    assert stored == 50, f"{stored} uses stored of 50 sent (25 before, 25 during)"
    return (f"read-only store: collector up (exit {crc} at the move), /healthz store_failing with "
            f"the reason, /healthz max {t_health * 1000:.0f} ms and /api/v1/alerts max "
            f"{t_alerts * 1000:.0f} ms while failing; nothing acknowledged unstored; after the "
            f"move 50/50 events stored; log: {logged[0][:120]}")


if __name__ == "__main__":
    build, root = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    sys.exit(run_tests([test_framing_and_jtis, test_auth_failures, test_slow_clients,
                        test_connection_flood, test_readonly_store], build, root))
