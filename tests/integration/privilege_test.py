#!/usr/bin/env python3
"""Least privilege, with the real agent capturing live on lo while curl talks
to a real nginx:

  user_nobody      root starts the agent with --user nobody: every thread of
                   it then runs as nobody:nogroup with empty capability sets,
                   and it still reports the tokens curl sends, to a real
                   collector and to an events file in a folder only root
                   may write (opened before the drop).
  unknown_user     --user / agent.user naming no user: exit 2, a message
                   naming the user, and nothing captured.
  net_raw_only     not root, holding only CAP_NET_RAW (setpriv): captures;
                   without the capability it fails with exit 1; with --user
                   it clears even CAP_NET_RAW once the capture is open.
  key_mode         a fingerprint key group or others can access is refused
                   (exit 2, the file, its mode and the chmod in the message);
                   0600 and 0400 are accepted.
  systemd_units    examples/systemd/*.service pass `systemd-analyze verify`
                   with no complaint, keep their hardening, and a broken copy
                   is caught by the same check.
  units_sandboxed  both units' process restrictions (seccomp filter,
                   RestrictAddressFamilies, MemoryDenyWriteExecute,
                   NoNewPrivileges, bounding and ambient capabilities),
                   applied as systemd would by unit_sandbox.py: the agent
                   captures and the collector stores; without AF_PACKET
                   the agent cannot capture.

usage: privilege_test.py BUILD_DIR SOURCE_DIR
Needs root. Prints "N passed, M failed".
"""
import grp
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request

from harness import Nginx, events_in, free_port, token_fp, wait_for

KEY = b"privilege-test-fingerprint-key"
NOBODY = pwd.getpwnam("nobody")
NOGROUP = grp.getgrgid(NOBODY.pw_gid)
CAP_NET_RAW = 1 << 13

def fp(token):
    return token_fp(KEY, token)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def curl(port, token, path="/v1/items"):
    subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}",
                    f"http://127.0.0.1:{port}{path}"], check=False)


def thread_credentials(pid):
    """{tid: {"Uid": [...], "Gid": [...], "Groups": [...], "CapEff": int, ...}}"""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = {}
        for line in read(f"/proc/{pid}/task/{tid}/status").splitlines():
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                fields[key] = [int(v) for v in value.split()]
            elif key in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
                fields[key] = int(value.strip(), 16)
        if fields:
            out[tid] = fields
    return out


def write_key(path, mode, owner=None):
    with open(path, "wb") as f:
        f.write(KEY)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


class Agent:
    """One live agent on lo; stops it (SIGINT) on exit."""

    def __init__(self, cmd, tmp, name, port):
        self.out = os.path.join(tmp, f"{name}.jsonl")
        self.err_path = os.path.join(tmp, f"{name}.err")
        self.port = port
        self.name = name
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(cmd + ["-i", "lo", "-f", f"tcp port {port}",
                                            "--agent-id", name, "--metrics-listen", "127.0.0.1:0"],
                                     stderr=self.err, stdout=subprocess.DEVNULL)

    def stderr(self):
        return read(self.err_path)

    def wait_line(self, text, timeout=10):
        wait_for(lambda: text in self.stderr() or self.proc.poll() is not None, timeout,
                 f"'{text}' from the {self.name} agent")
        if text not in self.stderr():
            raise AssertionError(f"{self.name} agent exited {self.proc.poll()}: {self.stderr()[-400:]}")

    def captures(self, events_path, count=10):
        """Sends `count` tokens once capture is armed; True when all arrive."""
        probe = f"probe-{self.name}"

        def probe_seen():
            curl(self.port, probe, "/probe")
            return any(e["token"]["fp"] == fp(probe) for e in events_in(events_path))
        wait_for(probe_seen, 15, f"the {self.name} agent's probe event")
        sent = {}
        for i in range(count):
            token = f"{self.name}-token-{i}"
            path = "/denied" if i % 3 == 0 else f"/v1/items/{i}"
            sent[fp(token)] = (path, 401 if i % 3 == 0 else 200)
            curl(self.port, token, path)

        def all_seen():
            got = {e["token"]["fp"]: (e["path"], e["status"]) for e in events_in(events_path)}
            return all(got.get(k) == v for k, v in sent.items())
        wait_for(all_seen, 15, f"all {count} events of the {self.name} agent")
        return True

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()
        return self.proc.returncode


def check_dropped(pid, want_uid, want_gid, want_caps=0):
    creds = thread_credentials(pid)
    if not creds:
        raise AssertionError(f"no thread status for pid {pid}")
    for tid, c in creds.items():
        if c["Uid"] != [want_uid] * 4 or c["Gid"] != [want_gid] * 4:
            raise AssertionError(f"thread {tid}: Uid {c['Uid']} Gid {c['Gid']}")
        if 0 in c["Groups"] and want_gid != 0:
            raise AssertionError(f"thread {tid} is still in group 0: {c['Groups']}")
        for k in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            if c.get(k, 0) != want_caps:
                raise AssertionError(f"thread {tid}: {k}={c.get(k, 0):016x}, want {want_caps:016x}")
    return len(creds)


def test_user_nobody(agent, collector, tmp, port):
    # The key and the events folder are root's alone: both are opened
    # before the drop, so the dropped agent needs neither.
    private = os.path.join(tmp, "root-only")
    os.mkdir(private, 0o700)
    write_key(os.path.join(private, "key"), 0o600)
    cfg = os.path.join(private, "tw.yaml")
    with open(cfg, "w") as f:
        f.write("fingerprint_key_file: key\nagent:\n  fold_window: 0s\n")
    # A collector stream too: its gRPC threads start before the drop and
    # must end up as dropped as the rest.
    grpc_port, http_port = free_port(), free_port()
    col = subprocess.Popen([collector, "--listen", f"127.0.0.1:{grpc_port}", "--http-listen",
                            f"127.0.0.1:{http_port}", "--store", "memory:"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    a = Agent([agent, "-c", cfg, "--user", "nobody", "--collector", f"127.0.0.1:{grpc_port}",
               "--events-out", os.path.join(private, "events.jsonl")], tmp, "nobody", port)
    try:
        a.wait_line("running as user nobody")
        threads = check_dropped(a.proc.pid, NOBODY.pw_uid, NOBODY.pw_gid)
        a.captures(os.path.join(private, "events.jsonl"))
        # Still dropped after the traffic (and any thread started since).
        threads = check_dropped(a.proc.pid, NOBODY.pw_uid, NOBODY.pw_gid)
    finally:
        rc = a.stop()
        col.terminate()
        col.wait(timeout=20)
    if rc != 0:
        raise AssertionError(f"agent exited {rc}: {a.stderr()[-400:]}")
    if "0 dropped" not in a.stderr() or "events queued" not in a.stderr():
        raise AssertionError(f"collector delivery not reported: {a.stderr()[-400:]}")
    return (f"--user nobody: {threads} threads as {NOBODY.pw_uid}:{NOBODY.pw_gid} with no "
            f"capabilities, 10 tokens captured on lo and delivered to the collector")


def test_unknown_user(agent, tmp, port):
    out = os.path.join(tmp, "unknown.jsonl")
    r = subprocess.run([agent, "-i", "lo", "--user", "tokenwatch-no-such-user",
                        "--events-out", out], capture_output=True, text=True, timeout=30)
    if r.returncode != 2:
        raise AssertionError(f"--user unknown exited {r.returncode}: {r.stderr}")
    if "--user: unknown user 'tokenwatch-no-such-user'" not in r.stderr:
        raise AssertionError(f"unclear message: {r.stderr}")
    if "capturing on" in r.stderr or os.path.exists(out):
        raise AssertionError("the agent opened the capture or the output before failing")
    cfg = os.path.join(tmp, "user.yaml")
    with open(cfg, "w") as f:
        f.write("agent:\n  user: tokenwatch-no-such-user\n")
    r = subprocess.run([agent, "-c", cfg, "-i", "lo", "--events-out", out],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 2 or f"{cfg}: agent.user: unknown user 'tokenwatch-no-such-user'" not in r.stderr:
        raise AssertionError(f"agent.user unknown: exit {r.returncode}: {r.stderr}")
    r = subprocess.run([agent, "-i", "lo", "--user", "root", "--events-out", out],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 2 or "uid 0" not in r.stderr:
        raise AssertionError(f"--user root: exit {r.returncode}: {r.stderr}")
    return "unknown --user / agent.user and --user root: exit 2, named, nothing opened"


def test_net_raw_only(agent, tmp, port):
    # Everything the unprivileged agent touches is its own, as under the
    # systemd unit: a copy of the binary, its key (0600), its folder.
    home = os.path.join(tmp, "nobody-home")
    os.mkdir(home, 0o700)
    os.chown(home, NOBODY.pw_uid, NOBODY.pw_gid)
    binary = os.path.join(home, "tokenwatch-agent")
    shutil.copy(agent, binary)
    os.chmod(binary, 0o755)
    write_key(os.path.join(home, "key"), 0o600, owner=NOBODY)
    cfg = os.path.join(home, "tw.yaml")
    with open(cfg, "w") as f:
        f.write("fingerprint_key_file: key\nagent:\n  fold_window: 0s\n")
    os.chown(cfg, NOBODY.pw_uid, NOBODY.pw_gid)
    setpriv = ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", "--clear-groups"]
    with_raw = setpriv + ["--inh-caps=+net_raw", "--ambient-caps=+net_raw"]
    results = []

    # Without CAP_NET_RAW the capture cannot open: the capability is what counts.
    r = subprocess.run(setpriv + [binary, "-c", cfg, "-i", "lo", "--events-out", "/dev/null",
                                  "--metrics-listen", "off"],
                       capture_output=True, text=True, timeout=30, cwd=home)
    if r.returncode != 1 or "cannot capture on lo" not in r.stderr or "CAP_NET_RAW" not in r.stderr:
        raise AssertionError(f"without CAP_NET_RAW: exit {r.returncode}: {r.stderr[-300:]}")
    results.append("no capability: exit 1")

    events = os.path.join(home, "raw.jsonl")
    a = Agent(with_raw + [binary, "-c", cfg, "--events-out", events], tmp, "netraw", port)
    try:
        a.wait_line("capturing on lo")
        check_dropped(a.proc.pid, NOBODY.pw_uid, NOBODY.pw_gid, want_caps=CAP_NET_RAW)
        a.captures(events)
    finally:
        rc = a.stop()
    if rc != 0:
        raise AssertionError(f"CAP_NET_RAW agent exited {rc}: {a.stderr()[-400:]}")
    results.append("CAP_NET_RAW only: captures")

    events = os.path.join(home, "raw-user.jsonl")
    a = Agent(with_raw + [binary, "-c", cfg, "--user", "nobody", "--events-out", events],
              tmp, "netrawuser", port)
    try:
        a.wait_line("running as user nobody")
        check_dropped(a.proc.pid, NOBODY.pw_uid, NOBODY.pw_gid, want_caps=0)
        a.captures(events)
    finally:
        rc = a.stop()
    if rc != 0:
        raise AssertionError(f"CAP_NET_RAW --user agent exited {rc}: {a.stderr()[-400:]}")
    results.append("with --user nobody: CAP_NET_RAW cleared after the open, still captures")
    return "; ".join(results)


def test_key_mode(agent, tmp, pcap):
    d = os.path.join(tmp, "keys")
    os.mkdir(d)
    cfg = os.path.join(d, "tw.yaml")
    with open(cfg, "w") as f:
        f.write("fingerprint_key_file: fp.key\n")
    key = os.path.join(d, "fp.key")
    for mode in (0o644, 0o640, 0o604, 0o660, 0o600 | 0o020):
        write_key(key, mode)
        r = subprocess.run([agent, "-c", cfg, "-r", pcap, "--events-out", "/dev/null"],
                           capture_output=True, text=True, timeout=60)
        want = (f"fingerprint key file {key} has mode {mode:04o}: it must not be accessible by "
                f"group or others; run: chmod 600 {key}")
        if r.returncode != 2 or want not in r.stderr:
            raise AssertionError(f"mode {mode:04o}: exit {r.returncode}: {r.stderr[-300:]}")
    for mode in (0o600, 0o400):
        write_key(key, mode)
        out = os.path.join(d, "events.jsonl")
        r = subprocess.run([agent, "-c", cfg, "-r", pcap, "--events-out", out],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or not events_in(out):
            raise AssertionError(f"mode {mode:04o} refused: exit {r.returncode}: {r.stderr[-300:]}")
    return "key modes 0644 0640 0604 0660 0620 refused with exit 2; 0600 and 0400 accepted"


# What each unit must keep; `systemd-analyze verify` says nothing about a
# unit that is valid but has lost its sandbox.
REQUIRED = {
    "tokenwatch-agent.service": {
        "User": "tokenwatch", "AmbientCapabilities": "CAP_NET_RAW",
        "CapabilityBoundingSet": "CAP_NET_RAW", "NoNewPrivileges": "yes",
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_PACKET AF_NETLINK AF_UNIX",
        "RestrictNamespaces": "yes", "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes", "SystemCallFilter": "@system-service",
    },
    "tokenwatch-agent-tls-probe.service": {
        "User": "tokenwatch", "AmbientCapabilities": "CAP_NET_RAW CAP_BPF CAP_PERFMON",
        "CapabilityBoundingSet": "CAP_NET_RAW CAP_BPF CAP_PERFMON", "NoNewPrivileges": "yes",
        "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectKernelModules": "yes",
        "MemoryDenyWriteExecute": "yes", "SystemCallFilter": "@system-service bpf perf_event_open",
    },
    "tokenwatch-collector.service": {
        "User": "tokenwatch", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "StateDirectory": "tokenwatch", "LogsDirectory": "tokenwatch",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_NETLINK AF_UNIX",
        "MemoryDenyWriteExecute": "yes", "SystemCallFilter": "@system-service",
    },
}
# systemd-analyze security --offline: the highest exposure each unit may have.
MAX_EXPOSURE = {"tokenwatch-agent.service": 2.5, "tokenwatch-collector.service": 1.5,
                "tokenwatch-agent-tls-probe.service": 4.0}


def unit_settings(text):
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def verify_unit(path, name):
    """Problems `systemd-analyze verify` reports about the unit (empty: none)."""
    r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                       timeout=120)
    lines = [l for l in (r.stdout + r.stderr).splitlines() if name in l or os.path.basename(path) in l]
    if r.returncode != 0 and not lines:
        lines = [f"exit {r.returncode}: " + (r.stderr or r.stdout).strip()[-300:]]
    return lines


def test_systemd_units(build, source, tmp):
    if shutil.which("systemd-analyze") is None:
        raise AssertionError("systemd-analyze not found (scripts/install-deps.sh installs systemd)")
    d = os.path.join(tmp, "units")
    os.mkdir(d)
    # The units name /usr/local/bin: install there, under a temporary root.
    prefix = os.path.join(tmp, "prefix")
    r = subprocess.run(["cmake", "--install", build, "--prefix", prefix + "/usr/local"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"cmake --install failed: {r.stderr[-300:]}")
    figures = []
    for name in ("tokenwatch-agent.service", "tokenwatch-collector.service",
                 "tokenwatch-agent-tls-probe.service"):
        text = read(os.path.join(source, "examples", "systemd", name))
        if not text:
            raise AssertionError(f"examples/systemd/{name} missing")
        settings = unit_settings(text)
        for key, want in REQUIRED[name].items():
            if want not in settings.get(key, []):
                raise AssertionError(f"{name}: {key}={want} missing (has {settings.get(key)})")
        if name == "tokenwatch-collector.service" and any(settings.get("CapabilityBoundingSet", [""])):
            raise AssertionError(f"{name} must hold no capability")
        # verify checks that ExecStart exists and is executable: the unit's
        # path, under the temporary root.
        exec_start = re.search(r"^ExecStart=(/usr/local/bin/\S+)", text, re.M)
        if not exec_start:
            raise AssertionError(f"{name}: no ExecStart=/usr/local/bin/...")
        binary = prefix + exec_start.group(1)
        unit = os.path.join(d, name)
        with open(unit, "w") as f:
            f.write(text.replace(f"ExecStart={exec_start.group(1)}", f"ExecStart={binary}"))
        problems = verify_unit(unit, name)
        if problems:
            raise AssertionError(f"systemd-analyze verify {name}: " + " | ".join(problems))
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", unit],
                           capture_output=True, text=True, timeout=120)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
        if not m or float(m.group(1)) > MAX_EXPOSURE[name]:
            raise AssertionError(f"{name}: exposure {m.group(1) if m else '?'} above "
                                 f"{MAX_EXPOSURE[name]}: {r.stdout[-500:]}{r.stderr[-300:]}")
        figures.append(f"{name} exposure {m.group(1)}")
        # The same check must catch a broken unit: a misspelt key, a bad value.
        broken = os.path.join(d, "broken-" + name)
        with open(broken, "w") as f:
            f.write(read(unit).replace("ProtectSystem=strict", "ProtectSystem=strcit")
                    .replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
        problems = verify_unit(broken, "broken-" + name)
        if len(problems) < 2:
            raise AssertionError(f"a broken {name} passed verify: {problems}")
        # And a missing binary.
        missing = os.path.join(d, "missing-" + name)
        with open(missing, "w") as f:
            f.write(read(unit).replace(f"ExecStart={binary}", f"ExecStart={d}/no-such-binary"))
        if not verify_unit(missing, "missing-" + name):
            raise AssertionError(f"{name} with a missing binary passed verify")
    return "units verify cleanly, broken copies are caught; " + ", ".join(figures)


SYSTEM_PYTHON = "/usr/bin/python3"  # python3-seccomp is a Debian package


def proc_status(pid):
    fields = {}
    for line in read(f"/proc/{pid}/status").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def test_units_sandboxed(build, source, tmp, port):
    """Both units' process restrictions, applied as systemd would
    (tests/integration/unit_sandbox.py), around the real binaries."""
    # Under `make test-asan`: LeakSanitizer stops threads with ptrace, which
    # the units' seccomp filters forbid (as they should). The leak check
    # runs in every other test; here it is off.
    saved = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = (saved + ":" if saved else "") + "detect_leaks=0"
    try:
        return _units_sandboxed(build, source, tmp, port)
    finally:
        if saved is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = saved


def _units_sandboxed(build, source, tmp, port):
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("python3-seccomp missing (scripts/install-deps.sh installs it): "
                             + r.stderr.strip()[-200:])
    d = os.path.join(tmp, "sandbox")
    os.mkdir(d, 0o755)
    home = os.path.join(d, "home")
    os.mkdir(home, 0o700)
    os.chown(home, NOBODY.pw_uid, NOBODY.pw_gid)
    # Everything stage 2 runs as nobody must be readable by nobody.
    sandbox = os.path.join(d, "unit_sandbox.py")
    shutil.copy(os.path.join(source, "tests", "integration", "unit_sandbox.py"), sandbox)
    units = {}
    for name in ("tokenwatch-agent.service", "tokenwatch-collector.service"):
        units[name] = os.path.join(d, name)
        shutil.copy(os.path.join(source, "examples", "systemd", name), units[name])
    binaries = {}
    for name in ("agent/tokenwatch-agent", "collector/tokenwatch-collector"):
        binaries[name] = os.path.join(home, os.path.basename(name))
        shutil.copy(os.path.join(build, name), binaries[name])
        os.chmod(binaries[name], 0o755)
    for p in [sandbox] + list(units.values()):
        os.chmod(p, 0o644)
    write_key(os.path.join(home, "key"), 0o600, owner=NOBODY)
    cfg = os.path.join(home, "tw.yaml")
    with open(cfg, "w") as f:
        f.write("fingerprint_key_file: key\nagent:\n  fold_window: 0s\n")
    os.chown(cfg, NOBODY.pw_uid, NOBODY.pw_gid)

    def under(unit):
        return [SYSTEM_PYTHON, sandbox, unit, "--user", NOBODY.pw_name, "--"]

    grpc_port, http_port = free_port(), free_port()
    col_err = open(os.path.join(d, "collector.err"), "w")
    col = subprocess.Popen(under(units["tokenwatch-collector.service"]) + [
        binaries["collector/tokenwatch-collector"], "-c", cfg, "--listen", f"127.0.0.1:{grpc_port}",
        "--http-listen", f"127.0.0.1:{http_port}", "--store", f"sqlite:{home}/state.db"],
        stdout=subprocess.DEVNULL, stderr=col_err, cwd=home)
    events = os.path.join(home, "events.jsonl")
    a = None
    try:
        def healthy():
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=2) as r:
                return r.status == 200
        try:
            wait_for(lambda: col.poll() is not None or healthy(), 15, "the sandboxed collector")
        except AssertionError:
            pass
        if col.poll() is not None:
            raise AssertionError(f"sandboxed collector exited {col.returncode}: "
                                 f"{read(col_err.name)[-300:]}")
        st = proc_status(col.pid)
        if (st.get("Seccomp") != "2" or st.get("NoNewPrivs") != "1" or
                int(st.get("CapBnd", "1"), 16) != 0 or int(st.get("CapEff", "1"), 16) != 0 or
                st.get("Uid", "").split() != [str(NOBODY.pw_uid)] * 4):
            raise AssertionError(f"collector not sandboxed: {st}")
        a = Agent(under(units["tokenwatch-agent.service"]) + [
            binaries["agent/tokenwatch-agent"], "-c", cfg, "--user", NOBODY.pw_name,
            "--collector", f"127.0.0.1:{grpc_port}", "--events-out", events], d, "sandboxed", port)
        a.wait_line("running as user nobody")
        st = proc_status(a.proc.pid)
        if (st.get("Seccomp") != "2" or st.get("NoNewPrivs") != "1" or
                int(st.get("CapBnd", "0"), 16) != CAP_NET_RAW):
            raise AssertionError(f"agent not sandboxed: {st}")
        check_dropped(a.proc.pid, NOBODY.pw_uid, NOBODY.pw_gid)
        a.captures(events)
        rc = a.stop()
        if rc != 0:
            raise AssertionError(f"sandboxed agent exited {rc}: {a.stderr()[-400:]}")
        got = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{http_port}/healthz", timeout=5).read())
        if got.get("events", 0) < 11:
            raise AssertionError(f"the sandboxed collector stored {got.get('events')} events")
    finally:
        if a is not None:
            a.stop()
        col.terminate()
        col.wait(timeout=20)
        col_err.close()
    # The sandbox bites: without AF_PACKET in RestrictAddressFamilies the
    # capture cannot open.
    no_packet = os.path.join(d, "no-packet.service")
    with open(no_packet, "w") as f:
        f.write(read(units["tokenwatch-agent.service"]).replace(" AF_PACKET", ""))
    os.chmod(no_packet, 0o644)
    r = subprocess.run(under(no_packet) + [binaries["agent/tokenwatch-agent"], "-c", cfg, "-i", "lo",
                                           "--events-out", "/dev/null", "--metrics-listen", "off"],
                       capture_output=True, text=True, timeout=30, cwd=home)
    if r.returncode != 1 or "cannot capture on lo" not in r.stderr:
        raise AssertionError(f"without AF_PACKET: exit {r.returncode}: {r.stderr[-300:]}")
    return (f"agent and collector under their units' seccomp filter, MDWE, no_new_privs and "
            f"capability sets: 10 tokens captured and {got['events']} events stored; "
            f"a unit without AF_PACKET cannot capture")


def main():
    build, source = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    agent = os.path.join(build, "agent", "tokenwatch-agent")
    collector = os.path.join(build, "collector", "tokenwatch-collector")
    if os.geteuid() != 0:
        print("privilege_test needs root")
        print("0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix="tokenwatch-privilege.")
    os.chmod(tmp, 0o755)  # nobody must reach its own folder inside
    port = free_port()
    pcap = os.path.join(source, "tests", "captures", "keepalive.pcap")
    tests = [
        ("user_nobody", lambda: test_user_nobody(agent, collector, tmp, port)),
        ("unknown_user", lambda: test_unknown_user(agent, tmp, port)),
        ("net_raw_only", lambda: test_net_raw_only(agent, tmp, port)),
        ("key_mode", lambda: test_key_mode(agent, tmp, pcap)),
        ("systemd_units", lambda: test_systemd_units(build, source, tmp)),
        ("units_sandboxed", lambda: test_units_sandboxed(build, source, tmp, port)),
    ]
    passed = failed = 0
    nginx = None
    try:
        try:
            nginx = Nginx(tmp, port)
            nginx_ok = True
        except AssertionError:
            nginx_ok = False
        for name, test in tests:
            try:
                if not nginx_ok and name in ("user_nobody", "net_raw_only", "units_sandboxed"):
                    raise AssertionError("nginx did not start")
                print(f"ok {name}: {test()}")
                passed += 1
            except (AssertionError, OSError, subprocess.SubprocessError) as e:
                print(f"FAIL {name}: {e}")
                failed += 1
    finally:
        if nginx:
            nginx.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
