#!/usr/bin/env python3
"""Fault: the disk holding the SQLite store fills up.

The store lives on a 32 MiB tmpfs (room for a first round in the store's
64 KiB pages). After a first round of traffic is stored, a filler file
takes every free byte, and more requests are captured and
streamed. The collector must not acknowledge what it could not store (at
every look, the agent's acknowledged count is at most what the store
holds), must log a clear error, report store_failing on /healthz, count
the failures and stay up; the agent keeps the events. When the filler is
removed everything arrives exactly once. The tmpfs is always unmounted.

usage: fault_disk_full.py BUILD_DIR
Prints "lost: N acknowledged events (...)" and "N passed, M failed".
"""
import errno
import os
import subprocess
import sys

from fault_common import (FaultCollector, LiveAgent, Nginx, account, events_in,
                          metric, parse_delivery, run_tests, send, store_uses)
from harness import free_port, wait_for


def fill(path):
    """Writes until the file system is full; returns the bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 16, 4096, 512, 1):
            chunk = b"\0" * size
            while True:
                try:
                    f.write(chunk)
                    n += size
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    return n


def test_disk_full(build, tmp):
    if os.geteuid() != 0:
        raise AssertionError("needs root (mount, packet capture)")
    disk = os.path.join(tmp, "disk")
    os.makedirs(disk)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", disk], check=True)
    port = free_port()
    nginx = collector = agent = None
    db = os.path.join(disk, "store.db")
    filler = os.path.join(disk, "filler")
    checks = []
    try:
        nginx = Nginx(tmp, port)
        collector = FaultCollector(build, tmp, "sqlite:" + db)
        agent = LiveAgent(build, tmp, collector.addr, port, agent_id="diskfull")
        tag = os.getpid()
        sent = send(port, [f"full-{tag}-a{i}" for i in range(100)])
        wait_for(lambda: agent.delivery()["acked"] == 100 + agent.probes, 30,
                 "first round stored", interval=0.2)

        filled = fill(filler)
        failures0 = metric(collector.metrics(), "tokenwatch_collector_store_commit_failures_total")
        sent += send(port, [f"full-{tag}-b{i}" for i in range(400)])
        want = 500 + agent.probes

        def honest():
            # Read the agent first: an ack it has seen must already be stored.
            acked = agent.delivery()["acked"]
            stored = sum(store_uses(db).values())
            checks.append((acked, stored))
            assert acked <= stored, f"agent has {acked} acknowledged, store holds {stored}"
            return acked

        def failing_and_holding():
            d = agent.delivery()
            failures = metric(collector.metrics(),
                              "tokenwatch_collector_store_commit_failures_total")
            honest()
            return d["queued"] >= want and failures >= failures0 + 3
        wait_for(failing_and_holding, 60, "commits failing while the disk is full",
                 interval=0.3)
        during = agent.delivery()
        held = during["queued"] - during["acked"]
        health = collector.get("/healthz")
        assert '"store_failing"' in health, f"/healthz while the disk is full: {health}"
        assert collector.proc.poll() is None, "collector died on a full disk"
        assert held > 0, "the agent holds nothing while the store cannot commit"
        honest()

        os.unlink(filler)

        def all_acked():
            d = agent.delivery()
            honest()
            return d["queued"] >= want and d["acked"] == d["queued"]
        wait_for(all_acked, 60, "everything acknowledged once space is back", interval=0.3)
        health = collector.get("/healthz")
        assert '"ok"' in health, f"/healthz after space came back: {health}"
        failures = metric(collector.metrics(), "tokenwatch_collector_store_commit_failures_total")
    finally:
        rc, line = agent.stop() if agent else (None, "")
        crc = collector.stop() if collector else None
        if nginx:
            nginx.stop()
        stored = store_uses(db) if os.path.exists(db) else {}
        subprocess.run(["umount", disk], capture_output=True)
        if os.path.ismount(disk):
            subprocess.run(["umount", "-l", disk], capture_output=True)
    assert not os.path.ismount(disk), "tmpfs left mounted"
    err = collector.stderr()
    logged = [l for l in err.splitlines() if "store commit failed" in l]
    assert logged, "no error logged for the failed commits"
    assert "full" in logged[0], f"the error does not say the disk is full: {logged[0]}"
    assert "succeeded again" in err, "recovery not logged"
    assert crc == 0, f"collector exited {crc}"
    delivery = parse_delivery(line)
    statement, problems = account(sent, events_in(agent.out), stored, delivery)
    print(statement, flush=True)
    if rc != 0:
        problems.append(f"agent exited {rc}")
    assert not problems, "; ".join(problems)
    return (f"disk full ({filled} filler bytes): {int(failures - failures0)} commits failed, "
            f"{held} events held by the agent, never acknowledged before stored "
            f"({len(checks)} looks), {len(logged)} error lines; then freed: {statement}")


if __name__ == "__main__":
    sys.exit(run_tests([test_disk_full], os.path.abspath(sys.argv[1])))
