#!/usr/bin/env python3
"""Fault: the config file is reloaded (SIGHUP) while broken, then fixed.

The collector and a live-capturing agent run from one config file with one
sensitive endpoint (POST /v1/refunds/**). The file is broken (an unknown
key) and both get SIGHUP: both keep running, each logs one line naming the
file, line and key, counts a failed reload, and the old config stays in
effect (a refund still raises its alert; /v1/admin/** raises nothing).
Then the file is fixed with a new sensitive endpoint (/v1/admin/**) and a
service: after SIGHUP both count a successful reload, an admin request
raises a critical alert attributed to the new service, and the admin
request from before the reload still has none. No event is lost.

usage: fault_config_reload.py BUILD_DIR
Prints "lost: N acknowledged events (...)" and "N passed, M failed".
"""
import os
import re
import signal
import sys
import urllib.parse

from fault_common import (KEY, FaultCollector, LiveAgent, Nginx, account, events_in, fp,
                          metric, parse_delivery, run_tests, send, store_uses)
from harness import free_port, wait_for

BASE = """fingerprint_key_file: fault.key
sensitive_endpoints:
  - method: POST
    path: "/v1/refunds/**"
    severity: high
agent:
  fold_window: 0s
  batch_max_events: 16
  drain_timeout: 60s
"""

BROKEN = """fingerprint_key_file: fault.key
sensitive_endpoints:
  - method: POST
    path: "/v1/refunds/**"
    sevrity: high
agent:
  fold_window: 0s
  batch_max_events: 16
  drain_timeout: 60s
"""

FIXED = """fingerprint_key_file: fault.key
services:
  - name: admin-svc
    match: {{ addresses: ["127.0.0.1:{port}"] }}
sensitive_endpoints:
  - method: POST
    path: "/v1/refunds/**"
    severity: high
  - path: "/v1/admin/**"
    severity: critical
agent:
  fold_window: 0s
  batch_max_events: 16
  drain_timeout: 60s
"""


def alerts_for(collector, token_fp):
    return [a for a in collector.api("/api/v1/alerts?limit=1000")["alerts"]
            if a["token"]["fp"] == token_fp]


def wait_alert(collector, token_fp, what):
    got = []

    def seen():
        got[:] = alerts_for(collector, token_fp)
        return bool(got)
    wait_for(seen, 30, what, interval=0.2)
    return got


def wait_stored(collector, token_fp, what):
    wait_for(lambda: collector.api(f"/api/v1/tokens/{urllib.parse.quote(token_fp)}"), 30, what,
             interval=0.2)


def reloads(collector, agent, result):
    return (metric(collector.metrics(), "tokenwatch_collector_config_reloads_total", result=result),
            metric(agent.metrics(), "tokenwatch_agent_config_reloads_total", result=result))


def test_config_reload(build, tmp):
    port = free_port()
    cfg = os.path.join(tmp, "reload.yaml")
    with open(os.path.join(tmp, "fault.key"), "wb") as f:
        f.write(KEY)
    os.chmod(os.path.join(tmp, "fault.key"), 0o600)  # refused otherwise
    with open(cfg, "w") as f:
        f.write(BASE)
    db = os.path.join(tmp, "store.db")
    nginx = collector = agent = None
    tag = os.getpid()
    sent = []
    try:
        nginx = Nginx(tmp, port)
        collector = FaultCollector(build, tmp, "sqlite:" + db, cfg=cfg)
        agent = LiveAgent(build, tmp, collector.addr, port, agent_id="reload", cfg=cfg)
        procs = (collector, agent)

        r1 = f"reload-{tag}-refund-1"
        sent += send(port, [r1], method="POST", path="/v1/refunds/1")
        assert wait_alert(collector, fp(r1), "refund alert at start")[0]["type"] == \
            "sensitive_endpoint"

        # Broken file: both keep running on the old config, and say why.
        with open(cfg, "w") as f:
            f.write(BROKEN)
        for p in procs:
            p.proc.send_signal(signal.SIGHUP)
        for p in procs:
            wait_for(lambda: "config reload failed" in p.stderr(), 20, "reload failure logged")
        for name, p in (("collector", collector), ("agent", agent)):
            assert p.proc.poll() is None, f"{name} died on a broken reload"
            lines = [l for l in p.stderr().splitlines() if "config reload failed" in l]
            assert len(lines) == 1, f"{name}: {lines}"
            assert re.search(re.escape(cfg) + r":\d+: key 'sensitive_endpoints\[0\]\.sevrity'",
                             lines[0]), f"{name} does not name file, line and key: {lines[0]}"
        assert reloads(collector, agent, "failure") == (1, 1)
        assert reloads(collector, agent, "success") == (0, 0)

        r2 = f"reload-{tag}-refund-2"
        a1 = f"reload-{tag}-admin-1"
        sent += send(port, [r2], method="POST", path="/v1/refunds/2")
        sent += send(port, [a1], path="/v1/admin/users")
        wait_alert(collector, fp(r2), "refund alert under the old config")
        wait_stored(collector, fp(a1), "admin request stored under the old config")
        assert not alerts_for(collector, fp(a1)), "admin endpoint alerted before the reload"

        # Fixed file with a new endpoint and service: in effect after SIGHUP.
        with open(cfg, "w") as f:
            f.write(FIXED.format(port=port))
        for p in procs:
            p.proc.send_signal(signal.SIGHUP)
        for p in procs:
            wait_for(lambda: "config reloaded from" in p.stderr(), 20, "reload success logged")
        assert reloads(collector, agent, "success") == (1, 1)
        assert reloads(collector, agent, "failure") == (1, 1)

        a2 = f"reload-{tag}-admin-2"
        sent += send(port, [a2], path="/v1/admin/users")
        got = wait_alert(collector, fp(a2), "admin alert after the reload")[0]
        assert got["type"] == "sensitive_endpoint" and got["severity"] == "critical", got
        assert got["service"] == "admin-svc", f"agent did not take the new service: {got}"
        assert not alerts_for(collector, fp(a1)), "the pre-reload admin request alerted later"

        want = len(sent) + agent.probes
        wait_for(lambda: agent.delivery()["acked"] >= want, 30, "everything acknowledged")
    finally:
        rc, line = agent.stop() if agent else (None, "")
        crc = collector.stop() if collector else None
        if nginx:
            nginx.stop()
    delivery = parse_delivery(line)
    statement, problems = account(sent, events_in(agent.out), store_uses(db), delivery)
    print(statement, flush=True)
    if rc != 0 or crc != 0:
        problems.append(f"agent exited {rc}, collector {crc}")
    assert not problems, "; ".join(problems)
    return ("broken reload: both kept running on the old config and logged file:line: key; "
            "fixed reload: new endpoint and service in effect from then on; " + statement)


if __name__ == "__main__":
    sys.exit(run_tests([test_config_reload], os.path.abspath(sys.argv[1])))
