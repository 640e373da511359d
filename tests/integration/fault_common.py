"""Shared parts of the fault tests (tests/integration/fault_*.py): a real
nginx, a live-capturing agent streaming to a real collector, curl traffic
with one distinct opaque token per request, and the accounting that says
what was lost.

Raw tokens never reach the output: events and the store are compared by
fingerprint (HMAC of the token with the test's key).
"""
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import urllib.request

from harness import (Nginx, durable_uses, events_in, free_port,  # noqa: F401 (re-exported)
                     netns_prefix, token_fp, wait_for)

KEY = b"fault-test-fingerprint-key"

def fp(token):
    return token_fp(KEY, token)


def send(port, tokens, addr="127.0.0.1", ns=None, path="/v1/items/{i}", method="GET",
         chunk=25):
    """One request per token, `chunk` requests per curl run (keep-alive).
    Returns the fingerprints of the tokens whose requests curl completed."""
    done = []
    for start in range(0, len(tokens), chunk):
        part = tokens[start:start + chunk]
        args = netns_prefix(ns) + ["curl", "-s", "-f", "-o", "/dev/null"]
        for j, tok in enumerate(part):
            if j:
                args += ["--next", "-s", "-f", "-o", "/dev/null"]
            if method != "GET":
                args += ["-X", method]
            args += ["-H", f"Authorization: Bearer {tok}",
                     f"http://{addr}:{port}{path.format(i=start + j)}"]
        subprocess.run(args, check=True, timeout=60)
        done += [fp(t) for t in part]
    return done


def parse_metrics(text):
    """{'name{labels}': value} of a Prometheus exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def metric(metrics, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total, found = 0.0, False
    for key, v in metrics.items():
        m = re.match(r"([^{]+)(?:\{(.*)\})?$", key)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v2 for k, v2 in labels.items()):
            total += v
            found = True
    if not found:
        raise AssertionError(f"metric {name}{labels} not exposed")
    return total


def http_get(url, ns=None, timeout=5):
    if ns:
        r = subprocess.run(netns_prefix(ns) + ["curl", "-s", "-f", "--max-time", str(timeout), url],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise OSError(f"curl {url}: exit {r.returncode}")
        return r.stdout
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class FaultCollector:
    """tokenwatch-collector on `listen_addr` (gRPC) and 127.0.0.1 (HTTP),
    inside `ns` if given. start() again restarts it on the same ports."""

    def __init__(self, build, tmp, store, ns=None, listen_addr="127.0.0.1", cfg=None,
                 name="collector"):
        self.ns = ns
        self.grpc, self.http = free_port(), free_port()
        self.addr = f"{listen_addr}:{self.grpc}"
        self.alerts = os.path.join(tmp, f"{name}-alerts.jsonl")
        self.err_path = os.path.join(tmp, f"{name}.err")
        self.err = open(self.err_path, "a")
        self.args = netns_prefix(ns) + [
            os.path.join(build, "collector/tokenwatch-collector"),
            "--listen", self.addr, "--http-listen", f"127.0.0.1:{self.http}",
            "--store", store, "--alerts-out", self.alerts]
        if cfg:
            self.args += ["-c", cfg]
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.args, stderr=self.err)
        wait_for(lambda: self.proc.poll() is not None or self.healthy(), 20, "collector /healthz")
        assert self.proc.poll() is None, "collector exited: " + self.stderr()[-2000:]

    def healthy(self):
        try:
            return '"status"' in self.get("/healthz")
        except OSError:
            return False

    def get(self, path):
        return http_get(f"http://127.0.0.1:{self.http}{path}", self.ns)

    def api(self, path):
        return json.loads(self.get(path))

    def metrics(self):
        return parse_metrics(self.get("/metrics"))

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        return self.proc.returncode


class LiveAgent:
    """tokenwatch-agent capturing live on `iface`, streaming to a collector
    and writing --events-out, with metrics on 127.0.0.1 (in `ns` if given)."""

    def __init__(self, build, tmp, collector, http_port, iface="lo", ns=None,
                 agent_id="fault", extra_cfg="", http_addr="127.0.0.1", cfg=None):
        self.ns, self.http_port, self.http_addr = ns, http_port, http_addr
        self.metrics_port = free_port()
        self.out = os.path.join(tmp, f"{agent_id}-events.jsonl")
        self.err_path = os.path.join(tmp, f"{agent_id}-agent.err")
        if cfg is None:
            key = os.path.join(tmp, "fault.key")
            with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                f.write(KEY)
            os.chmod(key, 0o600)  # the agent refuses a key others can read
            cfg = os.path.join(tmp, f"{agent_id}.yaml")
            with open(cfg, "w") as f:
                f.write("fingerprint_key_file: fault.key\nagent:\n  fold_window: 0s\n"
                        "  batch_max_events: 16\n  drain_timeout: 60s\n" + extra_cfg)
        self.cfg = cfg
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(
            netns_prefix(ns) + [os.path.join(build, "agent/tokenwatch-agent"), "-c", cfg,
                                "-i", iface, "-f", f"tcp port {http_port}",
                                "--collector", collector, "--events-out", self.out,
                                "--agent-id", agent_id,
                                "--metrics-listen", f"127.0.0.1:{self.metrics_port}"],
            stderr=self.err)
        wait_for(lambda: "capturing on" in self.stderr() or self.proc.poll() is not None,
                 20, "agent start")
        assert self.proc.poll() is None, "agent exited: " + self.stderr()
        # Capture is armed once a probe request comes back as an event.
        n = [0]

        def probe_seen():
            n[0] += 1
            tok = f"probe-{agent_id}-{n[0]}"
            send(http_port, [tok], addr=http_addr, ns=ns, path="/probe")
            probes = {fp(f"probe-{agent_id}-{k}") for k in range(1, n[0] + 1)}
            return any(e["token"]["fp"] in probes for e in events_in(self.out))
        wait_for(probe_seen, 20, "probe request seen by the agent", interval=0.3)
        self.probes = n[0]

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def metrics(self):
        return parse_metrics(http_get(f"http://127.0.0.1:{self.metrics_port}/metrics", self.ns))

    def delivery(self):
        m = self.metrics()
        return {s: int(metric(m, "tokenwatch_agent_events_total", state=s))
                for s in ("queued", "sent", "acked", "dropped")} | {
            "reconnects": int(metric(m, "tokenwatch_agent_collector_reconnects_total"))}

    def stop(self):
        """SIGINT, then the exit code and the delivery line of the summary."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=90)
        line = [l for l in self.stderr().splitlines() if "delivery:" in l]
        return self.proc.returncode, (line[-1] if line else "")


def parse_delivery(line):
    """'N events queued, M acknowledged, D dropped (queue full), R reconnects'."""
    m = re.search(r"(\d+) events queued, (\d+) acknowledged, (\d+) dropped .*?(\d+) reconnects",
                  line)
    assert m, f"no delivery line in agent output: {line!r}"
    return dict(zip(("queued", "acked", "dropped", "reconnects"), map(int, m.groups())))


def store_uses(db_path):
    """{identity: uses} durably in the collector's SQLite file (read-only):
    the tokens table plus the journal since its last checkpoint."""
    return durable_uses(db_path)


def account(sent_fps, events, stored, delivery):
    """Compares what curl sent, what the agent emitted and what the
    collector stored. Returns (statement, problems)."""
    emitted = {}
    for e in events:
        emitted[e["token"]["fp"]] = emitted.get(e["token"]["fp"], 0) + e.get("count", 1)
    not_captured = [f for f in sent_fps if f not in emitted]
    acked = delivery["acked"]
    lost = [f for f in sent_fps if f in emitted and stored.get(f, 0) == 0]
    twice = [f for f in sent_fps if stored.get(f, 0) > 1]
    extra = [f for f in stored if f not in emitted]
    total_emitted = sum(emitted.values())
    total_stored = sum(stored.values())
    problems = []
    if lost:
        problems.append(f"{len(lost)} events emitted by the agent are not in the store")
    if twice:
        problems.append(f"{len(twice)} tokens stored more than once")
    if extra:
        problems.append(f"{len(extra)} stored tokens the agent never emitted")
    if not_captured:
        problems.append(f"{len(not_captured)} requests never captured")
    if delivery["dropped"]:
        problems.append(f"{delivery['dropped']} events dropped (queue full)")
    if acked != delivery["queued"]:
        problems.append(f"agent: {delivery['queued']} queued but {acked} acknowledged")
    if total_stored != total_emitted:
        problems.append(f"store counts {total_stored} uses, agent emitted {total_emitted}")
    statement = (f"lost: {len(lost)} acknowledged events ({len(sent_fps)} requests sent, "
                 f"{total_emitted} events emitted, {delivery['queued']} queued, {acked} acknowledged, "
                 f"{total_stored} stored, {len(twice)} duplicated, {delivery['dropped']} dropped, "
                 f"{len(not_captured)} not captured, {delivery['reconnects']} reconnects)")
    return statement, problems


def run_tests(tests, *args):
    """Runs each test; prints 'ok ...' or 'FAIL ...' and a summary."""
    import shutil
    import tempfile
    passed = failed = 0
    for test in tests:
        tmp = tempfile.mkdtemp(prefix="tw-fault-")
        try:
            print("ok " + test(*args, tmp), flush=True)
            passed += 1
        except Exception as e:  # report and go on
            print(f"FAIL {test.__name__}: {e}", flush=True)
            failed += 1
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
