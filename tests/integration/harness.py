"""Small helpers shared by the integration tests and benchmarks: free
loopback ports, polling with a deadline (no sleeps as waits), JSON GETs."""
import hashlib
import hmac
import json
import os
import socket
import subprocess
import time
import urllib.request


_given = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now, and never
    one this process was given before: the kernel may hand a port it just
    released straight out again, and two services of one test would then
    collide (seen in jwt_services_e2e)."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port
    raise RuntimeError("no fresh free port after 1000 tries")


def wait_for(pred, timeout, what, interval=0.05):
    """Polls `pred` until it is true; raises AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except OSError:
            pass  # a server not up yet
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def stop_all(procs, timeout=10):
    """Stops the processes a test started, newest first, by PID: SIGTERM,
    then SIGKILL after `timeout` seconds."""
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _fields(buf):
    """(field number, wire type, value) of a protobuf message, top level."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, wire, value


def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _token_identity(token):
    """The SPEC identity of a decoded TokenInfo: iss|jti, else the fp."""
    kind = token.get(1, 0)
    jti = token.get(9, b"").decode()
    if kind == 1 and jti:  # a JWT with a jti
        return token.get(3, b"").decode() + "|" + jti
    return token.get(2, b"").decode()


def _journal_record_uses(record):
    """(identity, count) of each use in a journal record, the format in
    collector/state/journal.h, read independently of the C++ reader."""
    assert record[:2] == b"\x00\x01", "not a version-1 journal record"
    n, i = _varint(record, 2)
    strings = []
    for _ in range(n):
        size, i = _varint(record, i)
        strings.append(record[i:i + size].decode())
        i += size
    m, i = _varint(record, i)
    for _ in range(m):
        flags, i = _varint(record, i)
        if flags & 1:  # the claims in full
            size, i = _varint(record, i)
            identity = _token_identity({f: v for f, _, v in _fields(record[i:i + size])})
            i += size
        elif flags & 2:  # named by the fingerprint
            identity, i = record[i:i + 16].hex(), i + 16
        else:  # iss (string index) and jti
            iss, i = _varint(record, i)
            size, i = _varint(record, i)
            identity = strings[iss] + "|" + record[i:i + size].decode()
            i += size
        _, i = _varint(record, i)  # ts_us delta
        _, i = _varint(record, i)  # last_ts_us - ts_us
        count, i = _varint(record, i)
        for _ in range(3):  # status, service, client
            _, i = _varint(record, i)
        yield identity, count
    assert i == len(record), "trailing bytes in a journal record"


def store_copy(db_path, query):
    """Runs `query` on a copy of the collector's SQLite file and its WAL.
    A running collector holds its file with locking_mode=EXCLUSIVE (no
    mapped -shm), so SQLite cannot open it beside it; its locks are
    advisory, so the bytes can be copied. The WAL is copied first: a
    checkpoint in between leaves the copy at that checkpoint, never torn,
    and SQLite's recovery of the copied WAL stops at its last whole
    commit."""
    import shutil
    import sqlite3
    import tempfile
    with tempfile.TemporaryDirectory(prefix="tw-store-") as d:
        copy = os.path.join(d, "copy.db")
        if os.path.exists(db_path + "-wal"):
            shutil.copyfile(db_path + "-wal", copy + "-wal")
        shutil.copyfile(db_path, copy)
        con = sqlite3.connect(copy, timeout=5)
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()


def durable_uses(db_path):
    """{identity: uses} that the collector's SQLite file holds durably: the
    tokens table as of the last checkpoint plus the uses in the journal of
    batches committed since (decoded here with a minimal reader: journal
    records, or tokenwatch.v1.EventBatch rows from an earlier version).
    Read from a copy (store_copy), so it works while the collector runs."""
    rows = store_copy(db_path, "select 0, identity, uses, null from tokens union all "
                               "select 1, id, null, batch from journal order by 1, 2")
    uses = {r[1]: r[2] for r in rows if r[0] == 0}
    journal = [r[3] for r in rows if r[0] == 1]
    for batch in journal:
        if batch[:1] == b"\x00":
            for identity, count in _journal_record_uses(batch):
                uses[identity] = uses.get(identity, 0) + count
            continue
        for field, _, event in _fields(batch):
            if field != 2:  # EventBatch.events
                continue
            count, token = 1, {}
            for f, _, v in _fields(event):
                if f == 3:  # UsageEvent.count
                    count = v
                elif f == 13:  # UsageEvent.token
                    token = {tf: tv for tf, _, tv in _fields(v)}
            identity = _token_identity(token)
            uses[identity] = uses.get(identity, 0) + count
    return uses


def token_fp(key, token):
    """The agent's fp of an opaque token: HMAC-SHA256(key, token), 128 bits."""
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()[:32]


def events_in(path):
    """The complete JSON lines an agent has written to --events-out so far."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                if line.endswith("\n") and line.strip():
                    out.append(json.loads(line))
    except OSError:
        pass
    return out


def netns_prefix(ns):
    return ["ip", "netns", "exec", ns] if ns else []


NGINX_CONF = """
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{
    listen {addr}:{port};
    location /denied {{ return 401 "no\\n"; }}
    location / {{ return 200 "ok\\n"; }}
  }}
}}
"""


class Nginx:
    """A real nginx on `addr:port` (inside network namespace `ns` if given):
    200 for every path, 401 under /denied. Raises AssertionError if it does
    not answer within 15 s."""

    def __init__(self, tmp, port, addr="127.0.0.1", ns=None):
        self.port, self.addr, self.ns = port, addr, ns
        d = os.path.join(tmp, f"nginx-{port}")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(d=d, addr=addr, port=port))
        self.proc = subprocess.Popen(netns_prefix(ns) + ["nginx", "-p", d, "-c", conf,
                                                         "-g", "daemon off;"])
        try:
            wait_for(lambda: self.proc.poll() is None and subprocess.run(
                netns_prefix(ns) + ["curl", "-s", "-o", "/dev/null", f"http://{addr}:{port}/"]
            ).returncode == 0, 15, "nginx up")
        except AssertionError:
            self.stop()
            raise

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
