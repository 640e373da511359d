#!/usr/bin/python3
"""Runs a command under the process restrictions a systemd unit file asks
for, the way systemd would start its ExecStart, for hosts (and CI
containers) where systemd is not the init system:

  NoNewPrivileges, MemoryDenyWriteExecute (PR_SET_MDWE), UMask,
  SystemCallFilter + SystemCallErrorNumber and RestrictAddressFamilies
  (a seccomp filter built with libseccomp from `systemd-analyze
  syscall-filter`), then User=/Group= (here: --user, since the unit's own
  user may not exist), CapabilityBoundingSet and AmbientCapabilities
  (setpriv).

The mount, namespace and /proc settings (ProtectSystem=, PrivateTmp=,
ProcSubset=, ...) are not reproduced.

usage: unit_sandbox.py UNIT_FILE --user USER -- COMMAND [ARG...]
Run as root with the system python3 (python3-seccomp). The user runs this
script again (stage 2), so it and the unit file must be readable by it.
"""
import ctypes
import errno
import os
import pwd
import socket
import subprocess
import sys

import seccomp

PR_SET_NO_NEW_PRIVS = 38
PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def unit_settings(path):
    settings = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;[":
                continue
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def syscall_groups():
    """{"@group": [members]} from systemd-analyze, members may be groups."""
    out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True,
                         text=True, check=True).stdout
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def expand(names, groups, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for name in names:
        if name.startswith("@"):
            if name in seen:
                continue
            seen.add(name)
            if name not in groups:
                raise SystemExit(f"unit_sandbox: unknown syscall group {name}")
            out |= expand(groups[name], groups, seen)
        else:
            out.add(name)
    return out


def allowed_syscalls(filters, groups):
    """SystemCallFilter= lines: an allow list, then ~ lines take away."""
    allowed = None
    for value in filters:
        deny = value.startswith("~")
        names = expand(value.lstrip("~").split(), groups)
        if allowed is None:
            if deny:
                raise SystemExit("unit_sandbox: deny-list filters are not supported")
            allowed = names | expand(["@default"], groups)
        elif deny:
            allowed -= names
        else:
            allowed |= names
    return allowed


def capability_list(values):
    caps = " ".join(values).split()
    return [c.lower().removeprefix("cap_") for c in caps]


def main():
    argv = sys.argv[1:]
    if len(argv) >= 3 and argv[0] == "--restrict":
        return restrict(argv[1], argv[argv.index("--") + 1:])
    if "--" not in argv or len(argv) < 4 or argv[1] != "--user":
        raise SystemExit(__doc__)
    unit, user, command = argv[0], argv[2], argv[argv.index("--") + 1:]
    s = unit_settings(unit)
    # Stage 1 (root): identity and capabilities, as systemd sets them first;
    # setpriv then runs stage 2 as the user.
    caps = capability_list(s.get("CapabilityBoundingSet", []))
    ambient = capability_list(s.get("AmbientCapabilities", []))
    pw = pwd.getpwnam(user)
    setpriv = ["/usr/bin/setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups",
               "--bounding-set=" + ",".join(["-all"] + ["+" + c for c in caps]),
               "--inh-caps=" + ",".join(["-all"] + ["+" + c for c in ambient]),
               "--ambient-caps=" + ",".join(["-all"] + ["+" + c for c in ambient])]
    os.execv(setpriv[0], setpriv + [sys.executable, os.path.abspath(__file__), "--restrict",
                                    os.path.abspath(unit), "--"] + command)


def restrict(unit, command):
    """Stage 2 (the user): the restrictions systemd applies last, right
    before its execve of ExecStart."""
    s = unit_settings(unit)
    libc = ctypes.CDLL(None, use_errno=True)
    if s.get("UMask"):
        os.umask(int(s["UMask"][-1], 8))
    if s.get("NoNewPrivileges", ["no"])[-1] == "yes" or s.get("SystemCallFilter"):
        # systemd sets it for a filter without CAP_SYS_ADMIN, as the kernel wants.
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise SystemExit("unit_sandbox: PR_SET_NO_NEW_PRIVS failed")
    if s.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes":
        if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
            raise SystemExit(f"unit_sandbox: PR_SET_MDWE failed: {os.strerror(ctypes.get_errno())}")
    if s.get("SystemCallFilter"):
        err = s.get("SystemCallErrorNumber", [None])[-1]
        default = seccomp.ERRNO(getattr(errno, err)) if err else seccomp.KILL_PROCESS
        f = seccomp.SyscallFilter(defaction=default)
        allowed = allowed_syscalls(s["SystemCallFilter"], syscall_groups())
        families = s.get("RestrictAddressFamilies")
        if families:
            allowed.discard("socket")
            for fam in " ".join(families).split():
                f.add_rule(seccomp.ALLOW, "socket",
                           seccomp.Arg(0, seccomp.EQ, int(getattr(socket, fam))))
        for name in sorted(allowed):
            try:
                f.add_rule(seccomp.ALLOW, name)
            except (RuntimeError, ValueError, OSError):
                pass  # a name this architecture does not have
        f.load()
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
