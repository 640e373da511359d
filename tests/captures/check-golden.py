#!/usr/bin/env python3
"""Golden test: runs tokenwatch-agent on a capture and compares its usage
events with CAPTURE's NAME.expected.jsonl (written by make-captures.sh).

usage: check-golden.py AGENT CAPTURE.pcap
  AGENT    the tokenwatch-agent binary, or a folder holding it (a build tree)
  CAPTURE  a .pcap/.pcapng in this folder or elsewhere; NAME.expected.jsonl
           must sit next to it
env:     TOKENWATCH_AGENT_ARGS  extra agent arguments (shell words)
         TOKENWATCH_AGENT_TIMEOUT  seconds, default 120

Each event is projected to the keys of the expected lines (method, path,
status, location, param, service, client, server, protocol, source,
token{kind, fp, sub, jti,
iss, alg}); an event with "count": N stands for N lines; an absent or null
param/sub/jti/iss/alg reads as "". Both lists are sorted and compared as
multisets. Exit 0 on a match, 1 on a mismatch or agent failure, 2 on bad
usage (no agent, no capture, no expected file).
"""
import collections
import json
import os
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, 'tokenwatch.yaml')
KEYS = ['method', 'path', 'status', 'location', 'param', 'service', 'client', 'server',
        'protocol', 'source']
TOKEN_KEYS = ['kind', 'fp', 'sub', 'jti', 'iss', 'alg']
AGENT_NAME = 'tokenwatch-agent'


def usage(msg):
    print(f'check-golden: {msg}', file=sys.stderr)
    print(__doc__.split('\n\n')[1], file=sys.stderr)
    sys.exit(2)


def find_agent(arg):
    if os.path.isfile(arg) and os.access(arg, os.X_OK):
        return arg
    if os.path.isdir(arg):
        for cand in (os.path.join(arg, AGENT_NAME), os.path.join(arg, 'agent', AGENT_NAME),
                     os.path.join(arg, 'bin', AGENT_NAME)):
            if os.path.isfile(cand) and os.access(cand, os.X_OK):
                return cand
        for root, dirs, files in os.walk(arg):
            dirs[:] = [d for d in dirs if not d.startswith(('.', '_deps', 'CMakeFiles'))]
            if AGENT_NAME in files and os.access(os.path.join(root, AGENT_NAME), os.X_OK):
                return os.path.join(root, AGENT_NAME)
    usage(f'no executable {AGENT_NAME} at {arg}')


def expected_path(capture):
    base = os.path.basename(capture)
    for ext in ('.pcapng', '.pcap'):
        if base.endswith(ext):
            base = base[:-len(ext)]
            break
    return os.path.join(os.path.dirname(os.path.abspath(capture)), base + '.expected.jsonl')


def text(v):
    return '' if v is None else v


def project(event):
    """One agent event -> (projected line, repeat count)."""
    tok = event.get('token') or {}
    line = {k: event.get(k) for k in KEYS}
    line['param'] = text(line['param'])
    line['token'] = {k: text(tok.get(k)) for k in TOKEN_KEYS}
    if event.get('grpc_status') is not None:
        line['grpc_status'] = event['grpc_status']  # gRPC only
    count = event.get('count', 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f'bad count {count!r}')
    return line, count


def canon(line):
    return json.dumps(line, sort_keys=True, separators=(',', ':'))


def read_jsonl(path, what):
    out = []
    with open(path, encoding='utf-8') as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                out.append(json.loads(raw))
            except ValueError as e:
                raise ValueError(f'{what} {path}:{n}: not JSON: {e}')
    return out


def field_diff(a, b):
    diffs = []
    for k in KEYS:
        if a[k] != b[k]:
            diffs.append(f'{k}: expected {a[k]!r}, got {b[k]!r}')
    for k in TOKEN_KEYS:
        if a['token'][k] != b['token'][k]:
            diffs.append(f'token.{k}: expected {a["token"][k]!r}, got {b["token"][k]!r}')
    return diffs


def report(missing, unexpected):
    """Pairs each missing line with the closest unexpected one, so a wrong
    field reads as one difference instead of two unrelated lines."""
    unexpected = list(unexpected)
    for m in missing:
        best, best_d = None, None
        for i, u in enumerate(unexpected):
            d = field_diff(m, u)
            if len(d) <= 3 and (best_d is None or len(d) < len(best_d)):
                best, best_d = i, d
        print(f'  - missing:    {canon(m)}')
        if best is not None:
            u = unexpected.pop(best)
            print(f'    closest:    {canon(u)}')
            for d in best_d:
                print(f'      {d}')
    for u in unexpected:
        print(f'  + unexpected: {canon(u)}')


def main(argv):
    if len(argv) != 3:
        usage('expected 2 arguments')
    agent, capture = find_agent(argv[1]), argv[2]
    if not os.path.isfile(capture):
        usage(f'no capture {capture}')
    exp_path = expected_path(capture)
    if not os.path.isfile(exp_path):
        usage(f'no expected file {exp_path} (run make-captures.sh)')
    expected = read_jsonl(exp_path, 'expected')

    tmp = tempfile.mkdtemp(prefix='tokenwatch-golden.')
    events_path = os.path.join(tmp, 'events.jsonl')
    cmd = [agent, '-c', CONFIG, '-r', capture, '--events-out', events_path,
           '--agent-id', 'golden'] + shlex.split(os.environ.get('TOKENWATCH_AGENT_ARGS', ''))
    timeout = float(os.environ.get('TOKENWATCH_AGENT_TIMEOUT', '120'))
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f'FAIL {capture}: agent still running after {timeout:.0f}s: {shlex.join(cmd)}')
        return 1
    if run.returncode != 0:
        print(f'FAIL {capture}: agent exited {run.returncode}: {shlex.join(cmd)}')
        print(run.stderr.rstrip())
        return 1
    if not os.path.isfile(events_path):
        print(f'FAIL {capture}: agent wrote no events file {events_path}')
        return 1

    got = []
    try:
        for n, event in enumerate(read_jsonl(events_path, 'events'), 1):
            line, count = project(event)
            got.extend([line] * count)
    except ValueError as e:
        print(f'FAIL {capture}: {e} (events kept in {events_path})')
        return 1

    want_c = collections.Counter(canon(x) for x in expected)
    got_c = collections.Counter(canon(x) for x in got)
    if want_c == got_c:
        print(f'ok {os.path.basename(capture)}: {len(got)} token uses match')
        os.remove(events_path)
        os.rmdir(tmp)
        return 0
    missing = [json.loads(x) for x in sorted((want_c - got_c).elements())]
    unexpected = [json.loads(x) for x in sorted((got_c - want_c).elements())]
    print(f'FAIL {os.path.basename(capture)}: expected {len(expected)} token uses, '
          f'agent reported {len(got)}; {len(missing)} missing, {len(unexpected)} unexpected')
    print(f'  expected: {exp_path}')
    print(f'  events:   {events_path}')
    report(missing, unexpected)
    return 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
