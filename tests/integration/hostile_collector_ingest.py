#!/usr/bin/env python3
"""Hostile clients against the collector's gRPC ingest (issue 12), with a
real collector on loopback and a raw gRPC client (python3-grpcio, frames
encoded here by hand: no generated code, no protobuf module).

Each case replays an attack, asserts the refusal or the bound, and checks
that an honest agent (a stream of its own sending a small batch every
50 ms) keeps being acknowledged meanwhile, with its ack latency measured,
and that /healthz answers.

1. plaintext: --listen 0.0.0.0 without TLS exits 2 with one line naming
   collector.allow_plaintext; with it, starts and warns. Under mTLS a
   certificate for "tokenwatch-agent" sending Hello as "victim" gets
   PERMISSION_DENIED (counted); as itself it is served.
2. clock: one event at ts_us = INT64_MAX (and one negative) with 1,000
   tracked tokens: refused and counted, no token retired.
3. caps: 5,000 distinct tokens against max_tokens 1,000; one token at 500
   services; a 100 KB path: tokens, services, alerts and the string stay
   bounded, /metrics names configured services only.
4. memory: while the store is locked by another process (commits fail),
   3 streams send ~3.5 MiB batches; RSS stays within the in-flight budget;
   an 8 MiB frame is refused; more streams than max_streams are refused and
   idle ones closed.
6. seq: a forged Hello with the victim's boot_id and seq 2^63 ends with
   FAILED_PRECONDITION; the victim's next 20 batches are stored, not just
   acknowledged.

usage: hostile_collector_ingest.py BUILD_DIR REPO_ROOT
Prints one line per case and "N passed, M failed".

       hostile_collector_ingest.py --figures COLLECTOR_BINARY [TOKENS]
measures, without asserting, the figures docs/security.md gives for a
collector binary (this one, or one built before the fixes), and the
restart time with TOKENS tracked tokens (default 0: skipped).
"""
import json
import os
import queue
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import grpc

from harness import free_port, wait_for

METHOD = "/tokenwatch.v1.Ingest/Stream"
INT64_MAX = (1 << 63) - 1


# ---- protobuf wire format, by hand ----

def varint(n):
    n &= (1 << 64) - 1  # negative int64: ten bytes, two's complement
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3) + varint(n)


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


def hello(agent, boot):
    return f_bytes(1, f_bytes(1, agent) + f_varint(2, boot))


def event(jti, ts_us, service="orders", path="/v1/orders/1", client="10.0.3.7",
          exp=None, agent="x", status=200):
    token = (f_varint(1, 1) + f_bytes(2, "00112233445566778899aabbccddeeff") +
             f_bytes(3, "https://idp.test") + f_bytes(4, "alice") +
             f_varint(6, exp if exp is not None else int(time.time()) + 3600) +
             f_bytes(9, jti) + f_bytes(12, "HS256"))
    return (f_varint(1, ts_us) + f_varint(2, ts_us) + f_varint(3, 1) + f_bytes(4, agent) +
            f_bytes(5, service) + f_bytes(6, "GET") + f_bytes(7, path) + f_bytes(8, client) +
            f_bytes(9, "10.0.0.5:8080") + f_varint(10, status) + f_bytes(13, token))


def batch(seq, events):
    body = f_varint(1, seq) + b"".join(f_bytes(2, e) for e in events)
    return f_bytes(2, body)


def ack_of(msg):
    """stored_through of a CollectorMessage{ack{stored_through}}."""
    i = 0
    while i < len(msg):
        key, i = _read_varint(msg, i)
        if key == (1 << 3 | 2):
            n, i = _read_varint(msg, i)
            inner, i = msg[i:i + n], i + n
            if not inner:
                return 0
            k, j = _read_varint(inner, 0)
            v, _ = _read_varint(inner, j)
            return v
        return 0
    return 0


def _read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return n, i


def now_us():
    return int(time.time() * 1_000_000)


# ---- a raw stream ----

class Stream:
    """One Ingest.Stream call: send() frames, acks arrive on a thread."""

    def __init__(self, channel):
        self.out = queue.Queue()
        self.acked = 0
        self.acks = queue.Queue()
        self.status = None
        self.details = ""
        self.done = threading.Event()
        call = channel.stream_stream(METHOD, request_serializer=None,
                                     response_deserializer=None)
        self.call = call(iter(self.out.get, None))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for msg in self.call:
                self.acked = max(self.acked, ack_of(msg))
                self.acks.put(self.acked)
            self.status = grpc.StatusCode.OK
        except grpc.RpcError as e:
            self.status, self.details = e.code(), e.details()
        self.done.set()

    def send(self, frame):
        self.out.put(frame)

    def wait_ack(self, seq, timeout=10):
        deadline = time.monotonic() + timeout
        while self.acked < seq and not self.done.is_set():
            try:
                self.acks.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                pass
            if time.monotonic() > deadline:
                return False
        return self.acked >= seq

    def close(self):
        self.out.put(None)

    def wait_done(self, timeout=10):
        return self.done.wait(timeout)


class Honest:
    """An honest agent: one small batch every 50 ms, ack latency measured."""

    def __init__(self, target, name="honest"):
        self.channel = grpc.insecure_channel(target)
        self.name, self.seq, self.latencies, self.failures = name, 0, [], 0
        self.reconnects = -1
        self._connect()
        self.paused = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _connect(self):
        """A new run, as an agent restarted or reconnected with a new boot."""
        self.stream = Stream(self.channel)
        self.stream.send(hello(self.name, time.time_ns() & 0xFFFFFFFFFFFF))
        self.seq = 0
        self.reconnects += 1

    def _run(self):
        while not self.stop.is_set():
            if self.stream.done.is_set():  # closed idle, say: reconnect
                self._connect()
            if not self.paused.is_set():
                self.seq += 1
                t0 = time.monotonic()
                self.stream.send(batch(self.seq, [event(f"h-{self.seq % 50}", now_us(),
                                                        agent=self.name)]))
                if self.stream.wait_ack(self.seq, timeout=5):
                    self.latencies.append(time.monotonic() - t0)
                elif not self.stream.done.is_set():
                    self.failures += 1  # no ack on a live stream within 5 s
                # A stream the collector ended is reconnected above, as an
                # agent does (and resends; here a new run starts).
            time.sleep(0.05)

    def window(self):
        """Latencies since the last call: (count, median ms, max ms)."""
        lat, self.latencies = self.latencies, []
        fails, self.failures = self.failures, 0
        if not lat:
            return 0, float("inf"), float("inf"), fails
        return len(lat), statistics.median(lat) * 1000, max(lat) * 1000, fails

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.stream.close()
        self.channel.close()


# ---- the collector ----

class Collector:
    binary = None  # --figures: another build's collector

    def __init__(self, build, tmp, name, cfg, store=None, listen_host="127.0.0.1"):
        self.grpc, self.http = free_port(), free_port()
        self.err_path = os.path.join(tmp, f"{name}.err")
        self.store = store or os.path.join(tmp, f"{name}.db")
        cfg_path = os.path.join(tmp, f"{name}.yaml")
        with open(cfg_path, "w") as f:
            f.write(cfg)
        self.args = [Collector.binary or os.path.join(build, "collector/tokenwatch-collector"),
                     "-c", cfg_path,
                     "--listen", f"{listen_host}:{self.grpc}",
                     "--http-listen", f"127.0.0.1:{self.http}",
                     "--store", f"sqlite:{self.store}"]
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(self.args, stderr=err)

    def target(self):
        return f"127.0.0.1:{self.grpc}"

    def healthy(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_healthy(self):
        wait_for(lambda: self.proc.poll() is None and self.healthy(), 20, "collector /healthz")

    def get(self, path, timeout=5):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=timeout) as r:
            return r.read().decode()

    def metric(self, name, **labels):
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in self.get("/metrics").splitlines():
            if line.startswith(name + ("{" + want + "}" if want else " ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


BASE_CFG = """\
services:
  - name: orders
    match: { hosts: ["orders.demo"] }
collector:
  token_retention: 1h
"""


def sustain(seconds, step):
    """Calls step(i) every 20 ms for `seconds`; returns how many calls."""
    i, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        step(i)
        i += 1
        time.sleep(0.02)
    return i


def healthz_ms(c):
    t0 = time.monotonic()
    ok = c.healthy()
    return ok, (time.monotonic() - t0) * 1000


def served(h, c, what):
    n, med, worst, fails = h.window()
    ok, hz = healthz_ms(c)
    assert n > 0 and fails == 0, f"{what}: honest agent not served ({n} acks, {fails} timeouts)"
    assert h.reconnects <= 3, f"{what}: honest agent reconnected {h.reconnects} times"
    assert worst < 2000, f"{what}: honest ack took {worst:.0f} ms"
    assert ok, f"{what}: /healthz failed"
    return f"honest acks {n}, median {med:.1f} ms, max {worst:.0f} ms; /healthz {hz:.0f} ms"


# ---- the cases ----

def test_plaintext_and_identity(env):
    build, root, tmp = env
    # Off loopback without TLS: refused at start.
    c = Collector(build, tmp, "plain", BASE_CFG, listen_host="0.0.0.0")
    rc = c.proc.wait(timeout=20)
    err = c.stderr().strip().splitlines()
    assert rc == 2, f"plaintext on 0.0.0.0 exited {rc}, want 2"
    assert len(err) == 1 and "allow_plaintext" in err[0], f"want one line, got {err}"
    # Allowed explicitly: starts, warns.
    c = Collector(build, tmp, "plain-ok", BASE_CFG + "  allow_plaintext: true\n",
                  listen_host="0.0.0.0")
    try:
        c.wait_healthy()
        assert "plaintext" in c.stderr(), "no warning for allowed plaintext"
    finally:
        c.stop()
    # mTLS: a certificate speaks only for its own name.
    pki = os.path.join(tmp, "pki")
    subprocess.run(["bash", os.path.join(root, "scripts/make-test-ca.sh"), pki],
                   check=True, capture_output=True)
    p = lambda n: os.path.join(pki, n)  # noqa: E731
    cfg = BASE_CFG + (f"  tls:\n    cert_file: {p('server.crt')}\n    key_file: {p('server.key')}\n"
                      f"    client_ca_file: {p('ca.crt')}\n")
    c = Collector(build, tmp, "mtls", cfg)
    try:
        c.wait_healthy()
        read = lambda n: open(p(n), "rb").read()  # noqa: E731
        creds = grpc.ssl_channel_credentials(read("ca.crt"), read("agent.key"), read("agent.crt"))
        results = []
        for agent, want in (("victim", grpc.StatusCode.PERMISSION_DENIED),
                            ("tokenwatch-agent", None)):
            ch = grpc.secure_channel(f"localhost:{c.grpc}", creds)
            s = Stream(ch)
            s.send(hello(agent, 7))
            s.send(batch(1, [event("m-1", now_us(), exp=int(time.time()) - 10,
                                   agent=agent)]))
            if want is None:
                assert s.wait_ack(1), "the certificate's own name was not served"
                s.close()
            else:
                assert s.wait_done(), "forged agent stream not ended"
                assert s.status == want, f"{agent}: {s.status}, want {want}"
                assert s.acked == 0
            ch.close()
            results.append(f"{agent}: {'served' if want is None else want.name}")
        denied = c.metric("tokenwatch_collector_ingest_refused_total",
                          reason="agent_not_in_certificate")
        assert denied == 1, f"denied counted {denied}"
    finally:
        c.stop()
    return ("item 1: plaintext on 0.0.0.0 exit 2 (one line), allowed with a warning; "
            "mTLS " + ", ".join(results))


def test_clock(env):
    build, root, tmp = env
    c = Collector(build, tmp, "clock", BASE_CFG)
    try:
        c.wait_healthy()
        h = Honest(c.target())
        ch = grpc.insecure_channel(c.target())
        s = Stream(ch)
        s.send(hello("loader", 1))
        for i in range(10):
            s.send(batch(i + 1, [event(f"t-{i}-{j}", now_us()) for j in range(100)]))
        assert s.wait_ack(10), "1,000 tokens not acknowledged"
        before = c.metric("tokenwatch_collector_tokens_tracked")
        evil = Stream(ch)
        evil.send(hello("evil", 1))
        evil.send(batch(1, [event("evil-1", INT64_MAX), event("evil-2", -5)]))
        assert evil.wait_ack(1)
        s.send(batch(11, [event("after", now_us())]))  # a sweep would run here
        assert s.wait_ack(11)
        after = c.metric("tokenwatch_collector_tokens_tracked")
        future = c.metric("tokenwatch_collector_ingest_refused_total", reason="future_time")
        bad = c.metric("tokenwatch_collector_ingest_refused_total", reason="bad_time")
        assert future == 1 and bad == 1, f"refusals counted: future {future}, bad {bad}"
        assert after >= before + 1 and before >= 1000, f"tracked {before} -> {after}"
        h.window()
        # Sustained for 3 s while the honest agent is measured.
        n = sustain(3, lambda i: evil.send(batch(i + 2, [event(f"e-{i}-{j}", INT64_MAX - j)
                                                         for j in range(200)])))
        assert evil.wait_ack(n + 1, timeout=20)
        tracked = c.metric("tokenwatch_collector_tokens_tracked")
        assert tracked >= after, f"tracked {after} -> {tracked} under sustained outliers"
        line = served(h, c, "clock")
        h.close()
        ch.close()
    finally:
        c.stop()
    # A restart does not retire anything either.
    c2 = Collector(build, tmp, "clock-again", BASE_CFG, store=c.store)
    try:
        c2.wait_healthy()
        tracked = c2.metric("tokenwatch_collector_tokens_tracked")
        assert tracked >= 1000, f"after restart {tracked} tracked"
    finally:
        c2.stop()
    return (f"item 2: ts_us=INT64_MAX and -5 refused (future_time 1, bad_time 1); tokens "
            f"tracked {before:.0f} -> {after:.0f}, {tracked:.0f} after restart; {line}")


def test_caps(env):
    build, root, tmp = env
    cfg = BASE_CFG + ("  limits:\n    max_tokens: 1000\n    max_services_per_token: 8\n"
                      "    max_alerts_per_token: 4\n    max_string_bytes: 256\n")
    c = Collector(build, tmp, "caps", cfg)
    try:
        c.wait_healthy()
        h = Honest(c.target())
        ch = grpc.insecure_channel(c.target())
        s = Stream(ch)
        s.send(hello("flood", 1))
        seq = 0
        for i in range(50):  # 5,000 distinct tokens
            seq += 1
            s.send(batch(seq, [event(f"f-{i}-{j}", now_us()) for j in range(100)]))
        # One expired token at 500 services: an expired_use per service before.
        for i in range(5):
            seq += 1
            s.send(batch(seq, [event("wide", now_us(), service=f"svc-{i}-{j}",
                                     exp=int(time.time()) - 60) for j in range(100)]))
        seq += 1
        s.send(batch(seq, [event("long", now_us(), path="/" + "a" * 100_000,
                                 exp=int(time.time()) - 60)]))
        assert s.wait_ack(seq, timeout=30), "flood not acknowledged"
        tracked = c.metric("tokenwatch_collector_tokens_tracked")
        evicted = c.metric("tokenwatch_collector_limit_overflows_total", limit="max_tokens")
        over_alerts = c.metric("tokenwatch_collector_limit_overflows_total",
                               limit="max_alerts_per_token")
        cut = c.metric("tokenwatch_collector_limit_overflows_total", limit="max_string_bytes")
        assert tracked <= 1000, f"{tracked} tokens tracked, cap 1000"
        assert evicted > 0 and over_alerts > 0 and cut >= 1
        wide = json.loads(c.get("/api/v1/tokens/" +
                                urllib.parse.quote("https://idp.test|wide", safe="")))
        assert len(wide["services"]) <= 8, f"{len(wide['services'])} services kept"
        alerts = json.loads(c.get("/api/v1/alerts?limit=1000"))
        alerts = alerts.get("alerts", alerts) if isinstance(alerts, dict) else alerts
        wide_alerts = [a for a in alerts if a.get("token", {}).get("jti") == "wide"]
        assert len(wide_alerts) <= 4, f"{len(wide_alerts)} alerts for one token"
        long_paths = [len(a.get("path", "")) for a in alerts
                      if a.get("token", {}).get("jti") == "long"]
        assert all(n <= 256 for n in long_paths), f"paths {long_paths}"
        metrics = c.get("/metrics")
        assert 'service="svc-' not in metrics, "an unconfigured service is a label"
        h.window()

        def more(i):  # the flood goes on for 3 s while the honest agent is measured
            nonlocal seq
            seq += 1
            s.send(batch(seq, [event(f"g-{i}-{j}", now_us()) for j in range(100)]))
        sustain(3, more)
        assert s.wait_ack(seq, timeout=30), "sustained flood not acknowledged"
        assert c.metric("tokenwatch_collector_tokens_tracked") <= 1000
        line = served(h, c, "caps")
        h.close()
        ch.close()
    finally:
        c.stop()
    return (f"item 3: 5,000 tokens -> {tracked:.0f} tracked ({evicted:.0f} evicted); one token "
            f"at 500 services -> {len(wide['services'])} services, {len(wide_alerts)} alerts; "
            f"100 KB path cut to 256; /metrics {len(metrics)} bytes; {line}")


def test_memory_and_streams(env):
    build, root, tmp = env
    cfg = BASE_CFG + ("  limits:\n    max_inflight_bytes: 16777216\n    max_streams: 12\n"
                      "    stream_idle_timeout: 3s\n")
    # The store on a small tmpfs of its own, filled once the collector runs:
    # every commit fails (disk full) until the filler goes. (The collector
    # holds its file exclusively, so no other process can lock it.)
    disk = os.path.join(tmp, "mem-disk")
    os.makedirs(disk)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", disk], check=True)
    c = None
    filler = os.path.join(disk, "filler")
    try:
        c = Collector(build, tmp, "mem", cfg, store=os.path.join(disk, "mem.db"))
        c.wait_healthy()
        h = Honest(c.target())
        rss0 = c.rss_kb()
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass  # ENOSPC: the disk is full
        locked = True
        h.paused.set()  # nothing can be acknowledged meanwhile
        big = [event(f"b-{j}", now_us(), path="/" + "p" * 3500) for j in range(1000)]
        frame_seq = {}
        chans, streams = [], []
        for k in range(3):
            ch = grpc.insecure_channel(c.target())
            s = Stream(ch)
            s.send(hello(f"big-{k}", 1))
            chans.append(ch)
            streams.append(s)
            frame_seq[k] = 0
        # 8 more streams say Hello now (their reads start at once) and send
        # one frame each once the budget is full: those reads still land.
        # Twice the budget is the hard bound; past it a batch ends its stream.
        burst = []
        for k in range(8):
            b = Stream(chans[k % 3])
            b.send(hello(f"burst-{k}", 1))
            burst.append(b)
        t_burst = time.monotonic() + 1.5
        t_end = time.monotonic() + 15
        peak = rss0
        hz_worst = 0.0
        most = 0
        while time.monotonic() < t_end:
            if burst and time.monotonic() > t_burst and burst[0].out.qsize() == 0:
                for b in burst:
                    b.send(batch(1, big))
                t_burst = float("inf")
            most = max(most, c.metric("tokenwatch_collector_ingest_inflight_bytes"))
            for k, s in enumerate(streams):
                if s.out.qsize() < 4:
                    frame_seq[k] += 1
                    s.send(batch(frame_seq[k], big))
            peak = max(peak, c.rss_kb())
            ok, ms = healthz_ms(c)
            assert ok, "/healthz failed while the store's disk was full"
            hz_worst = max(hz_worst, ms)
            time.sleep(0.1)
        budget_waits = c.metric("tokenwatch_collector_limit_overflows_total",
                                limit="max_inflight_bytes")
        inflight = c.metric("tokenwatch_collector_ingest_inflight_bytes")
        over = c.metric("tokenwatch_collector_ingest_refused_total", reason="over_budget")
        if locked:
            assert most <= 2 * 16 * 1048576, f"in flight {most / 1048576:.1f} MiB, hard bound 32"
            assert over >= 1, "no batch dropped past twice the budget"
        for b in burst:
            b.close()
        os.unlink(filler)  # the disk has room again
        for s in streams + burst:
            s.close()
        growth_mb = (peak - rss0) / 1024
        assert growth_mb < 250, f"RSS grew {growth_mb:.0f} MB with a 16 MiB budget"
        assert budget_waits > 0 or not locked, "the budget never held a stream back"
        # The store is back: once the backlog is stored the honest agent
        # resumes (while the store failed, nothing could be acknowledged).
        wait_for(lambda: c.metric("tokenwatch_collector_ingest_inflight_bytes") < (1 << 20),
                 60, "the backlog stored")
        h.paused.clear()
        h.window()
        # Reconnects while paused were idle closes (stream_idle_timeout 3s):
        # count only those once it sends again.
        h.reconnects = 0
        # A frame over max_message_bytes (4 MiB) is refused by gRPC.
        ch = grpc.insecure_channel(c.target())
        s = Stream(ch)
        s.send(hello("huge", 1))
        s.send(batch(1, [event("h", now_us(), path="/" + "z" * (8 << 20))]))
        assert s.wait_done(20) and s.status == grpc.StatusCode.RESOURCE_EXHAUSTED, s.status
        # Squatters: over max_streams refused; idle ones closed.
        squat = [Stream(ch) for _ in range(14)]
        for i, q in enumerate(squat):
            q.send(hello(f"squat-{i}", 1))
        wait_for(lambda: c.metric("tokenwatch_collector_ingest_refused_total",
                                  reason="too_many_streams") >= 1, 10, "streams refused")
        wait_for(lambda: all(q.done.is_set() for q in squat), 20, "idle streams closed")
        idle = c.metric("tokenwatch_collector_ingest_refused_total", reason="idle_stream")
        assert idle >= 1
        ch.close()
        wait_for(lambda: len(h.latencies) >= 10, 20, "honest acks after the store came back")
        line = served(h, c, "streams") + f", {h.reconnects} reconnects"
        h.close()
        for ch in chans:
            ch.close()
    finally:
        if c is not None:
            c.stop()
        subprocess.run(["umount", disk], check=False)
    return (f"item 4: store {'full (commits fail)' if locked else 'NOT failing'}, 3 streams "
            f"of 3.5 MiB batches for 15 s: RSS {rss0 / 1024:.0f} -> {peak / 1024:.0f} MB "
            f"(in flight {inflight / 1048576:.1f} MiB, {budget_waits:.0f} waits; 8 more frames: "
            f"at most {most / 1048576:.1f} MiB, {over:.0f} dropped), /healthz "
            f"worst {hz_worst:.0f} ms; 8 MiB frame refused; {idle:.0f} idle streams closed; "
            f"{line}")


def test_seq(env):
    build, root, tmp = env
    c = Collector(build, tmp, "seq", BASE_CFG)
    try:
        c.wait_healthy()
        ch = grpc.insecure_channel(c.target())
        victim = Stream(ch)
        boot = 0x5EED
        victim.send(hello("victim", boot))
        for seq in range(1, 6):
            victim.send(batch(seq, [event("v", now_us(), agent="victim")]))
        assert victim.wait_ack(5)
        evil = Stream(ch)
        evil.send(hello("victim", boot))
        evil.send(batch(1 << 63, [event("x", now_us())]))
        assert evil.wait_done(), "forged stream not ended"
        assert evil.status == grpc.StatusCode.FAILED_PRECONDITION, evil.status
        assert evil.acked < (1 << 63)
        for seq in range(6, 26):
            victim.send(batch(seq, [event("v", now_us(), agent="victim")]))
        assert victim.wait_ack(25)
        tok = json.loads(c.get("/api/v1/tokens/" +
                               urllib.parse.quote("https://idp.test|v", safe="")))
        assert tok["uses"] == 25, f"victim's uses stored: {tok['uses']}, want 25"
        ooo = c.metric("tokenwatch_collector_ingest_refused_total", reason="out_of_order")
        assert ooo == 1
        ch.close()
    finally:
        c.stop()
    return ("item 6: forged Hello (victim boot_id, seq 2^63) -> FAILED_PRECONDITION, never "
            "acknowledged; the victim's next 20 batches stored (25 uses of 25)")


def figures(binary, tokens):
    """The attacks' figures for `binary`, printed, never asserted."""
    Collector.binary = binary
    with tempfile.TemporaryDirectory(prefix="tw-hostile-figures-") as tmp:
        # 1: plaintext on 0.0.0.0.
        c = Collector(None, tmp, "f-plain", BASE_CFG, listen_host="0.0.0.0")
        time.sleep(2)
        print(f"item 1: plaintext --listen 0.0.0.0: "
              f"{'serving' if c.proc.poll() is None and c.healthy() else f'exit {c.proc.poll()}'}")
        c.stop()
        # 2: one event at INT64_MAX with 1,000 tracked tokens.
        c = Collector(None, tmp, "f-clock", BASE_CFG)
        c.wait_healthy()
        ch = grpc.insecure_channel(c.target())
        s = Stream(ch)
        s.send(hello("loader", 1))
        for i in range(10):
            s.send(batch(i + 1, [event(f"t-{i}-{j}", now_us()) for j in range(100)]))
        s.wait_ack(10)
        before = c.metric("tokenwatch_collector_tokens_tracked")
        e = Stream(ch)
        e.send(hello("evil", 1))
        e.send(batch(1, [event("evil-1", INT64_MAX)]))
        e.wait_ack(1)
        s.send(batch(11, [event("after", now_us())]))
        s.wait_ack(11)
        print(f"item 2: tokens tracked {before:.0f} -> "
              f"{c.metric('tokenwatch_collector_tokens_tracked'):.0f} after one ts_us=INT64_MAX")
        ch.close()
        c.stop()
        # 3: one expired token at 5,000 services.
        c = Collector(None, tmp, "f-wide", BASE_CFG)
        c.wait_healthy()
        ch = grpc.insecure_channel(c.target())
        s = Stream(ch)
        s.send(hello("wide", 1))
        for i in range(50):
            s.send(batch(i + 1, [event("wide", now_us(), service=f"svc-{i}-{j}",
                                       exp=int(time.time()) - 60) for j in range(100)]))
        s.wait_ack(50, timeout=60)
        m = c.get("/metrics")
        wide = json.loads(c.get("/api/v1/tokens/" +
                                urllib.parse.quote("https://idp.test|wide", safe="")))
        alerts = json.loads(c.get("/api/v1/alerts?limit=10000"))["alerts"]
        print(f"item 3: one token at 5,000 services: {len(wide['services'])} services kept, "
              f"{len(alerts)} alerts, /metrics {len(m)} bytes, "
              f"{sum(1 for x in m.splitlines() if x and not x.startswith('#'))} series")
        ch.close()
        c.stop()
        # 4: RSS while another process holds the store's lock.
        c = Collector(None, tmp, "f-mem", BASE_CFG)
        c.wait_healthy()
        rss0 = c.rss_kb()
        lock = sqlite3.connect(c.store, timeout=1, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        big = [event(f"b-{j}", now_us(), path="/" + "p" * 3500) for j in range(1000)]
        chans, streams = [], []
        for k in range(3):
            ch = grpc.insecure_channel(c.target())
            st = Stream(ch)
            st.send(hello(f"big-{k}", 1))
            chans.append(ch)
            streams.append([st, 0])
        peak, t_end = rss0, time.monotonic() + 15
        while time.monotonic() < t_end:
            for pair in streams:
                if pair[0].out.qsize() < 4:
                    pair[1] += 1
                    pair[0].send(batch(pair[1], big))
            peak = max(peak, c.rss_kb())
            time.sleep(0.1)
        lock.execute("ROLLBACK")
        lock.close()
        print(f"item 4: store locked, 3 streams of 3.5 MiB batches for 15 s: RSS "
              f"{rss0 / 1024:.0f} -> {peak / 1024:.0f} MB")
        for ch in chans:
            ch.close()
        c.stop()
        # 6: a forged jump in the victim's run.
        c = Collector(None, tmp, "f-seq", BASE_CFG)
        c.wait_healthy()
        ch = grpc.insecure_channel(c.target())
        v = Stream(ch)
        v.send(hello("victim", 0x5EED))
        for seq in range(1, 6):
            v.send(batch(seq, [event("v", now_us())]))
        v.wait_ack(5)
        e = Stream(ch)
        e.send(hello("victim", 0x5EED))
        e.send(batch(1 << 63, [event("x", now_us())]))
        e.wait_done(5)
        for seq in range(6, 26):
            v.send(batch(seq, [event("v", now_us())]))
        v.wait_ack(25, timeout=5)
        tok = json.loads(c.get("/api/v1/tokens/" +
                               urllib.parse.quote("https://idp.test|v", safe="")))
        print(f"item 6: forged seq 2^63: forged stream {e.status}; victim acked through "
              f"{v.acked}, uses stored {tok['uses']} of 25")
        ch.close()
        c.stop()
        if tokens:
            restart(tmp, tokens)


def restart(tmp, tokens):
    """Restart time and RSS with `tokens` tracked tokens."""
    c = Collector(None, tmp, "f-full", BASE_CFG)
    c.wait_healthy()
    ch = grpc.insecure_channel(c.target())
    s = Stream(ch)
    s.send(hello("filler", 1))
    per, seq = 1000, 0
    t0 = time.monotonic()
    for i in range(0, tokens, per):
        seq += 1
        s.send(batch(seq, [event(f"r-{i + j}", now_us(), service="orders") for j in range(per)]))
        if seq % 50 == 0:
            s.wait_ack(seq - 40, timeout=120)
    s.wait_ack(seq, timeout=300)
    tracked = c.metric("tokenwatch_collector_tokens_tracked")
    rss = c.rss_kb()
    fill = time.monotonic() - t0
    ch.close()
    c.stop()
    size = os.path.getsize(c.store) / 1e6
    t0 = time.monotonic()
    c2 = Collector(None, tmp, "f-full2", BASE_CFG, store=c.store)
    wait_for(lambda: c2.proc.poll() is None and c2.healthy(), 600, "restart", interval=0.02)
    took = time.monotonic() - t0
    print(f"restart: {tracked:.0f} tokens tracked (filled in {fill:.0f} s, RSS {rss / 1024:.0f} MB, "
          f"store {size:.0f} MB): back on /healthz in {took:.1f} s, RSS {c2.rss_kb() / 1024:.0f} MB")
    c2.stop()


def main():
    if sys.argv[1] == "--figures":
        figures(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
        return 0
    build, root = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="tw-hostile-ingest-") as tmp:
        only = os.environ.get("HOSTILE_ONLY")
        for test in (test_plaintext_and_identity, test_clock, test_caps,
                     test_memory_and_streams, test_seq):
            if only and test.__name__ != only:
                continue
            try:
                print(f"ok   {test.__name__}: {test((build, root, tmp))}", flush=True)
                passed += 1
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"FAIL {test.__name__}: {type(e).__name__}: {e}", flush=True)
                failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
