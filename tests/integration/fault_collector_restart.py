#!/usr/bin/env python3
"""Fault: the collector is killed (SIGKILL) and restarted during live
capture.

The agent captures on lo while curl sends requests to a real nginx, one
distinct token per request, without pause. Once the collector has
acknowledged some events it is killed with SIGKILL; while it is away more
requests go out; it is restarted on the same store and ports while the
traffic goes on. Then: every request is an event in the agent's
--events-out file, every event is in the SQLite store exactly once, the
agent counted no drops and exits 0 (everything acknowledged).

usage: fault_collector_restart.py BUILD_DIR
Prints "lost: N acknowledged events (...)" and "N passed, M failed".
"""
import os
import sys
import threading

from fault_common import (FaultCollector, LiveAgent, Nginx, account, events_in,
                          metric, parse_delivery, run_tests, send, store_uses)
from harness import free_port, wait_for

CHUNK = 25  # requests per curl run


def test_collector_killed_during_live_capture(build, tmp):
    port = free_port()
    nginx = Nginx(tmp, port)
    db = os.path.join(tmp, "store.db")
    collector = FaultCollector(build, tmp, "sqlite:" + db)
    agent = None
    sender_error = []
    progress = [0]
    sent = []
    stop = threading.Event()

    def traffic():
        # Without pause until told to stop: the kill and the restart both
        # happen while requests are in flight.
        try:
            i = 0
            while not stop.is_set():
                tokens = [f"restart-{os.getpid()}-{i + j}" for j in range(CHUNK)]
                i += CHUNK
                sent.extend(send(port, tokens))
                progress[0] = len(sent)
        except Exception as e:  # reported by the main thread
            sender_error.append(e)
    try:
        agent = LiveAgent(build, tmp, collector.addr, port, agent_id="restart")
        sender = threading.Thread(target=traffic)
        sender.start()
        wait_for(lambda: agent.delivery()["acked"] >= agent.probes + 100, 60,
                 "100 events acknowledged before the kill")
        at_kill = progress[0]
        collector.kill()
        # Away until the agent holds at least 200 unacknowledged events.
        def holding():
            d = agent.delivery()
            return d["queued"] - d["acked"] >= 200 or not sender.is_alive()
        wait_for(holding, 60, "200 events held while the collector is down", interval=0.2)
        held = agent.delivery()
        collector.start()
        restarted_at = progress[0]
        wait_for(lambda: progress[0] >= restarted_at + 200 or not sender.is_alive(), 60,
                 "traffic after the restart")
        stop.set()
        sender.join(timeout=120)
        assert not sender_error, f"curl failed: {sender_error[0]}"
        want = len(sent) + agent.probes

        def all_acked():
            d = agent.delivery()
            return d["queued"] >= want and d["acked"] == d["queued"]
        wait_for(all_acked, 90, "every event acknowledged after the restart", interval=0.3)
        duplicates = metric(collector.metrics(), "tokenwatch_collector_duplicate_batches_total")
    finally:
        rc, line = agent.stop() if agent else (None, "")
        collector.stop()
        nginx.stop()
    delivery = parse_delivery(line)
    statement, problems = account(sent, events_in(agent.out), store_uses(db), delivery)
    print(statement, flush=True)
    if rc != 0:
        problems.append(f"agent exited {rc}")
    if delivery["reconnects"] < 1:
        problems.append("the agent never reconnected")
    assert not problems, "; ".join(problems)
    return (f"collector SIGKILLed after {at_kill} requests, restarted after {restarted_at} "
            f"({held['queued'] - held['acked']} events held unacknowledged meanwhile, "
            f"{int(duplicates)} resent batches dropped as duplicates): {statement}")


if __name__ == "__main__":
    sys.exit(run_tests([test_collector_killed_during_live_capture], os.path.abspath(sys.argv[1])))
