#!/usr/bin/env python3
"""Fault: the collector's store file is unusable at start-up.

Garbage bytes, a real store truncated to half, a database with the wrong
schema (tokenwatch's meta table over a foreign tokens table), a newer
schema_version, someone else's database, a directory, a path in a folder
that does not exist, a read-only file system (new file and existing
store). Each time the collector must exit 1 (a runtime failure: the file,
not the command line, is wrong) with exactly one line on stderr naming the
file, never crash (no signal, abort or sanitizer report), and leave the
file as it was. A malformed --store URI is bad usage: exit 2.

usage: fault_corrupt_store.py BUILD_DIR REPO_ROOT
Prints one line per case and "N passed, M failed".
"""
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys

from fault_common import FaultCollector, run_tests
from harness import free_port

CRASH_SIGNS = ("Abort", "abort", "terminate called", "Sanitizer", "Segmentation",
               "core dumped", "runtime error", "Assertion")


def run_collector(build, store):
    return subprocess.run(
        [os.path.join(build, "collector/tokenwatch-collector"), "--store", store,
         "--listen", f"127.0.0.1:{free_port()}", "--http-listen", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=30)


def digest(path):
    if os.path.isdir(path) or not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_real_store(build, root, tmp, path):
    """A store written by the real collector from the demo capture."""
    c = FaultCollector(build, tmp, "sqlite:" + path, name="maker")
    try:
        r = subprocess.run(
            [os.path.join(build, "agent/tokenwatch-agent"), "-c",
             os.path.join(root, "examples/tokenwatch.yaml"), "-r",
             os.path.join(root, "examples/demo.pcap"), "--collector", c.addr,
             "--agent-id", "maker"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
    finally:
        assert c.stop() == 0, "collector making the store failed"
    for suffix in ("-wal", "-shm"):
        assert not os.path.exists(path + suffix), "store not checkpointed at exit"


def test_corrupt_store(build, root, tmp):
    if os.geteuid() != 0:
        raise AssertionError("needs root (read-only mount)")
    d = os.path.join(tmp, "stores")
    os.makedirs(d)
    cases = []

    real = os.path.join(d, "real.db")
    make_real_store(build, root, tmp, real)
    with open(real, "rb") as f:
        real_bytes = f.read()
    assert sqlite3.connect(real).execute("select sum(uses) from tokens").fetchone()[0] > 0

    garbage = os.path.join(d, "garbage.db")
    with open(garbage, "wb") as f:
        f.write(hashlib.sha512(b"not a database").digest() * 1024)
    cases.append(("garbage bytes", garbage))

    truncated = os.path.join(d, "truncated.db")
    with open(truncated, "wb") as f:
        f.write(real_bytes[:len(real_bytes) // 2])
    cases.append((f"real store truncated to {len(real_bytes) // 2} of {len(real_bytes)} bytes",
                  truncated))

    wrong = os.path.join(d, "wrong-schema.db")
    con = sqlite3.connect(wrong)
    con.executescript("create table meta(key text primary key, value text);"
                      "insert into meta values('schema_version','1');"
                      "create table tokens(x);")
    con.commit()
    con.close()
    cases.append(("meta says schema 1, tokens table is not ours", wrong))

    newer = os.path.join(d, "newer.db")
    con = sqlite3.connect(newer)
    con.executescript("create table meta(key text primary key, value text);"
                      "insert into meta values('schema_version','99');"
                      "pragma user_version = 99;")
    con.commit()
    con.close()
    cases.append(("schema_version 99", newer))

    other = os.path.join(d, "other.db")
    con = sqlite3.connect(other)
    con.executescript("create table users(id integer primary key, name text);")
    con.commit()
    con.close()
    cases.append(("someone else's database", other))

    directory = os.path.join(d, "a-directory.db")
    os.makedirs(directory)
    cases.append(("a directory", directory))
    cases.append(("a folder that does not exist", os.path.join(d, "no-such-folder", "x.db")))

    ro = os.path.join(tmp, "readonly")
    os.makedirs(ro)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", ro], check=True)
    try:
        shutil.copy(real, os.path.join(ro, "existing.db"))
        subprocess.run(["mount", "-o", "remount,ro", ro], check=True)
        cases.append(("read-only file system, new file", os.path.join(ro, "new.db")))
        cases.append(("read-only file system, existing store", os.path.join(ro, "existing.db")))

        failures, lines = [], []
        for what, path in cases:
            before = digest(path)
            r = run_collector(build, "sqlite:" + path)
            err = [l for l in r.stderr.splitlines() if l.strip()]
            problem = None
            if r.returncode != 1:
                problem = f"exit {r.returncode}, want 1"
            elif len(err) != 1:
                problem = f"{len(err)} lines on stderr, want 1: {err[:3]}"
            elif path not in err[0]:
                problem = f"the message does not name {path}: {err[0]}"
            elif any(s in r.stderr for s in CRASH_SIGNS):
                problem = "crash report: " + r.stderr[-500:]
            elif digest(path) != before:
                problem = "the file was changed"
            if problem:
                failures.append(f"{what}: {problem}")
            lines.append(f"  {what}: exit {r.returncode}: {err[0] if err else ''}")
    finally:
        subprocess.run(["umount", ro], capture_output=True)
        if os.path.ismount(ro):
            subprocess.run(["umount", "-l", ro], capture_output=True)

    r = run_collector(build, "bogus:" + os.path.join(d, "x.db"))
    if r.returncode != 2:
        failures.append(f"malformed --store URI: exit {r.returncode}, want 2")
    lines.append(f"  malformed URI: exit {r.returncode}: {r.stderr.splitlines()[0] if r.stderr else ''}")
    print("\n".join(lines), flush=True)
    print(f"lost: 0 acknowledged events (nothing is served from an unusable store; "
          f"{len(cases)} bad stores refused, {len(failures)} wrongly handled)", flush=True)
    assert not failures, "; ".join(failures)
    return f"{len(cases)} unusable stores: exit 1 with one line naming the file, file untouched"


if __name__ == "__main__":
    sys.exit(run_tests([test_corrupt_store], os.path.abspath(sys.argv[1]),
                       os.path.abspath(sys.argv[2])))
