#!/usr/bin/env python3
"""Fault: the network between agent and collector is cut and restored.

Two network namespaces joined by a veth pair (10.213.50.1/30 for the
collector, .2 for the agent). In the agent's namespace a real nginx serves
on its lo, curl talks to it and the agent captures there. The agent's veth
is set down; traffic goes on during the cut, which lasts until the agent has
noticed it (gRPC keepalive, then failed reconnects) and holds unacknowledged
events; then the link comes back. Every event must arrive exactly once, the
agent must have reconnected, counted no drops and exit 0. The namespaces
are always deleted.

usage: fault_network_cut.py BUILD_DIR
Prints "lost: N acknowledged events (...)" and "N passed, M failed".
"""
import os
import subprocess
import sys

from fault_common import (FaultCollector, LiveAgent, Nginx, account, events_in,
                          parse_delivery, run_tests, send, store_uses)
from harness import wait_for

PORT = 18380


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


def test_network_cut_and_restored(build, tmp):
    if os.geteuid() != 0:
        raise AssertionError("needs root (network namespaces, packet capture)")
    tag = str(os.getpid() % 100000)
    ns_c, ns_a = f"twf-c-{tag}", f"twf-a-{tag}"
    veth_c, veth_a = f"twfc{tag}", f"twfa{tag}"
    nginx = collector = agent = None
    try:
        ip("netns", "add", ns_c)
        ip("netns", "add", ns_a)
        ip("link", "add", veth_c, "type", "veth", "peer", "name", veth_a)
        ip("link", "set", veth_c, "netns", ns_c)
        ip("link", "set", veth_a, "netns", ns_a)
        ip("-n", ns_c, "addr", "add", "10.213.50.1/30", "dev", veth_c)
        ip("-n", ns_a, "addr", "add", "10.213.50.2/30", "dev", veth_a)
        for ns, dev in ((ns_c, veth_c), (ns_a, veth_a)):
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", dev, "up")

        db = os.path.join(tmp, "store.db")
        # Plaintext gRPC off loopback must be allowed explicitly (issue 12).
        cfg = os.path.join(tmp, "collector.yaml")
        with open(cfg, "w") as f:
            f.write("collector:\n  allow_plaintext: true\n")
        collector = FaultCollector(build, tmp, "sqlite:" + db, ns=ns_c, listen_addr="10.213.50.1",
                                   cfg=cfg)
        nginx = Nginx(tmp, PORT, ns=ns_a)
        agent = LiveAgent(build, tmp, collector.addr, PORT, ns=ns_a, agent_id="netcut")
        sent = []
        tokens = [f"netcut-{tag}-{i}" for i in range(600)]
        sent += send(PORT, tokens[:200], ns=ns_a)
        wait_for(lambda: agent.delivery()["acked"] == 200 + agent.probes, 30,
                 "events acknowledged before the cut", interval=0.2)
        before = agent.delivery()

        ip("-n", ns_a, "link", "set", veth_a, "down")
        sent += send(PORT, tokens[200:400], ns=ns_a)
        # The cut lasts until the agent has seen its stream fail and tried
        # again (keepalive 10 s + 5 s, then backoff), holding what it has.
        def noticed():
            d = agent.delivery()
            return d["reconnects"] > before["reconnects"] and d["queued"] >= 400 + agent.probes
        wait_for(noticed, 60, "the agent noticing the cut", interval=0.5)
        during = agent.delivery()
        held = during["queued"] - during["acked"]
        assert held >= 200, f"only {held} events unacknowledged during the cut"
        ip("-n", ns_a, "link", "set", veth_a, "up")

        sent += send(PORT, tokens[400:], ns=ns_a)
        want = len(tokens) + agent.probes

        def all_acked():
            d = agent.delivery()
            return d["queued"] >= want and d["acked"] == d["queued"]
        wait_for(all_acked, 60, "every event acknowledged after the link came back",
                 interval=0.3)
    finally:
        rc, line = agent.stop() if agent else (None, "")
        if collector:
            collector.stop()
        if nginx:
            nginx.stop()
        for ns in (ns_a, ns_c):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ns_a not in left and ns_c not in left, "a test namespace was left behind"
    delivery = parse_delivery(line)
    statement, problems = account(sent, events_in(agent.out), store_uses(db), delivery)
    print(statement, flush=True)
    if rc != 0:
        problems.append(f"agent exited {rc}")
    assert not problems, "; ".join(problems)
    return (f"veth down until the agent reconnected ({during['reconnects'] - before['reconnects']} "
            f"reconnect attempts, {held} events held unacknowledged), then up: {statement}")


if __name__ == "__main__":
    sys.exit(run_tests([test_network_cut_and_restored], os.path.abspath(sys.argv[1])))
