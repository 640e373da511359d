#!/usr/bin/env python3
"""Checks a golden capture against its expected file, without the agent.

make-captures.sh writes NAME.expected.jsonl from what the clients meant to
send. This script reads the pcap back the other way: tshark reassembles each
TCP stream (follow,tcp,raw), a small HTTP/1.1 reader here splits the bytes
into requests and responses, and the token rules of SPEC.md ("Where tokens
are found") are applied to the wire bytes. The two derivations must agree,
and tshark's own HTTP dissector must count the same number of requests.

usage: verify-pcap.py [--ports 18080-18089] [--meta NAME.meta.json]
                      [--linktype N] CAPTURE.pcap NAME.expected.jsonl
"""
import argparse
import base64
import binascii
import collections
import hashlib
import hmac
import json
import os
import re
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = open(os.path.join(HERE, 'fingerprint.key'), 'rb').read()

# Mirrors tokenwatch.yaml in this folder.
SERVICES = {'orders.test': 'orders', 'payments.test': 'payments'}
TOKEN_HEADERS = {'x-api-token'}
TOKEN_PARAMS = {'access_token', 'id_token', 'token', 'jwt'}
KEYS = ['method', 'path', 'status', 'location', 'param', 'service', 'client', 'server', 'protocol',
        'source', 'token']
TOKEN_KEYS = ['kind', 'fp', 'sub', 'jti', 'iss', 'alg']


def tshark(*args):
    return subprocess.run(['tshark', *args], check=True, capture_output=True,
                          text=True).stdout


def b64url_json(part):
    try:
        raw = base64.urlsafe_b64decode(part + '=' * (-len(part) % 4))
        obj = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def describe(token):
    parts = token.split('.')
    if len(parts) == 3:
        header, payload = b64url_json(parts[0]), b64url_json(parts[1])
        if header is not None and isinstance(header.get('alg'), str) and payload is not None:
            return {'kind': 'jwt', 'fp': fp(parts[0] + '.' + parts[1]),
                    'sub': payload.get('sub', ''), 'jti': payload.get('jti', ''),
                    'iss': payload.get('iss', ''), 'alg': header['alg']}
    return {'kind': 'opaque', 'fp': fp(token), 'sub': '', 'jti': '', 'iss': '', 'alg': ''}


def is_jwt(value):
    return describe(value)['kind'] == 'jwt'


def fp(x):
    return hmac.new(KEY, x.encode(), hashlib.sha256).digest()[:16].hex()


# ------------------------------------------------------------ HTTP reader ---
def read_head(data, pos):
    end = data.find(b'\r\n\r\n', pos)
    if end < 0:
        raise ValueError(f'incomplete header block at offset {pos}')
    lines = data[pos:end].decode('latin1').split('\r\n')
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(':')
        headers.append((name.strip(), value.strip()))
    return lines[0], headers, end + 4


def header(headers, name):
    return [v for n, v in headers if n.lower() == name]


def skip_body(data, pos, headers, has_body):
    if not has_body:
        return pos
    if any(v.lower() == 'chunked' for v in header(headers, 'transfer-encoding')):
        while True:
            eol = data.index(b'\r\n', pos)
            size = int(data[pos:eol].split(b';')[0], 16)
            pos = eol + 2
            if size == 0:  # trailer section up to the blank line
                return data.index(b'\r\n\r\n', pos - 2) + 4
            pos += size + 2
    length = header(headers, 'content-length')
    if length:
        return pos + int(length[0])
    raise ValueError('message without framing')


def parse_requests(data):
    requests, pos = [], 0
    while pos < len(data):
        line, headers, pos = read_head(data, pos)
        method, target, _ = line.split(' ')
        pos = skip_body(data, pos, headers, True) if (
            header(headers, 'content-length') or header(headers, 'transfer-encoding')) else pos
        requests.append((method, target, headers))
    return requests


def parse_responses(data, methods):
    statuses, pos = [], 0
    while pos < len(data) and len(statuses) < len(methods):
        line, headers, pos = read_head(data, pos)
        status = int(line.split(' ')[1])
        if 100 <= status < 200:
            continue
        has_body = methods[len(statuses)] != 'HEAD' and status not in (204, 304)
        pos = skip_body(data, pos, headers, has_body)
        statuses.append(status)
    return statuses


# ------------------------------------------------------------ token rules ---
def token_uses(headers, target):
    uses = []  # (location, param, raw token)
    for value in header(headers, 'authorization'):
        m = re.match(r'^(bearer|jwt)\s+(\S+)$', value, re.I)
        if m:
            uses.append(('authorization', '', m.group(2)))
        elif ' ' not in value and is_jwt(value):
            uses.append(('authorization', '', value))
    for value in header(headers, 'cookie'):
        for pair in value.split(';'):
            name, _, val = pair.strip().partition('=')
            if is_jwt(val):
                uses.append(('cookie', name, val))
    _, _, query = target.partition('?')
    for pair in query.split('&') if query else []:
        name, _, val = pair.partition('=')
        if name in TOKEN_PARAMS and val:
            uses.append(('query', name, val))
    for name, value in headers:
        if name.lower() in TOKEN_HEADERS:
            uses.append(('header', name.lower(), value))
    return uses


def service_of(host, port):
    name = host[:host.index(']') + 1] if host.startswith('[') else host.split(':')[0]
    return SERVICES.get(name, f'{name}:{port}')


def endpoint(text):
    ip, _, port = text.rpartition(':')
    return ip.strip('[]'), int(port)


def fmt(ip, port):
    return f'[{ip}]:{port}' if ':' in ip else f'{ip}:{port}'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ports', default='18080-18089')
    ap.add_argument('--meta')
    ap.add_argument('--linktype', type=int)
    ap.add_argument('pcap')
    ap.add_argument('expected')
    a = ap.parse_args()
    name = os.path.basename(a.pcap)
    problems = []

    with open(a.pcap, 'rb') as f:
        ghdr = f.read(24)
    magic = ghdr[:4]
    if magic == b'\x0a\x0d\x0d\x0a':
        linktype = 'pcapng'
    elif magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1'):
        linktype = struct.unpack('<I', ghdr[20:24])[0] & 0x0fffffff
    else:
        linktype = None
        problems.append('neither a little-endian pcap nor a pcapng file')
    if a.linktype is not None and linktype != a.linktype:
        problems.append(f'link type {linktype}, wanted {a.linktype}')

    # every stream opened and closed in the capture, nothing reset
    flags = collections.defaultdict(lambda: collections.Counter())
    for row in tshark('-r', a.pcap, '-T', 'fields', '-e', 'tcp.stream', '-e', 'tcp.flags.syn',
                      '-e', 'tcp.flags.ack', '-e', 'tcp.flags.fin', '-e', 'tcp.flags.reset',
                      ).splitlines():
        s, syn, ack, fin, rst = row.split('\t')
        c = flags[int(s)]
        c['syn'] += syn == '1' and ack == '0'
        c['fin'] += fin == '1'
        c['rst'] += rst == '1'
    streams = sorted(flags)
    for s in streams:
        c = flags[s]
        if c['syn'] != 1 or c['fin'] < 2 or c['rst']:
            problems.append(f'stream {s} incomplete: {dict(c)}')

    # no gaps: a segment lost by the capture would make a different test
    lost = tshark('-r', a.pcap, '-Y', 'tcp.analysis.lost_segment or tcp.analysis.ack_lost_segment'
                  ' or tcp.analysis.retransmission or tcp.analysis.out_of_order',
                  '-T', 'fields', '-e', 'frame.number').split()
    if lost:
        problems.append(f'sequence gaps or retransmissions at frames {", ".join(lost)}')

    # reassembled bytes per stream, both directions
    args = ['-r', a.pcap, '-q']
    for s in streams:
        args += ['-z', f'follow,tcp,raw,{s}']
    follow = {}
    for block in tshark(*args).split('=' * 67):
        m = re.search(r'Filter: tcp\.stream eq (\d+)\nNode 0: (\S+)\nNode 1: (\S+)\n(.*)', block, re.S)
        if not m:
            continue
        up, down, segs = b'', b'', 0
        for line in m.group(4).splitlines():
            if line.startswith('\t'):
                down += bytes.fromhex(line.strip())
            elif line.strip():
                up += bytes.fromhex(line.strip())
                segs += 1
        follow[int(m.group(1))] = (endpoint(m.group(2)), endpoint(m.group(3)), up, down, segs)

    got, per_stream = [], []
    for s in streams:
        (cip, _), (sip, sport), up, down, segs = follow[s]
        try:
            requests = parse_requests(up)
            statuses = parse_responses(down, [r[0] for r in requests])
        except (ValueError, IndexError) as e:
            problems.append(f'stream {s}: cannot read HTTP: {e}')
            continue
        if len(statuses) != len(requests):
            problems.append(f'stream {s}: {len(requests)} requests but {len(statuses)} responses')
            statuses += [None] * (len(requests) - len(statuses))
        per_stream.append({'server': fmt(sip, sport), 'requests': len(requests),
                           'client_segments': segs})
        for (method, target, headers), status in zip(requests, statuses):
            host = (header(headers, 'host') or [fmt(sip, sport)])[0]
            for location, param, raw in token_uses(headers, target):
                got.append({'method': method, 'path': target.split('?')[0], 'status': status,
                            'location': location, 'param': param,
                            'service': service_of(host, sport), 'client': cip,
                            'server': fmt(sip, sport), 'protocol': 'http/1.1',
                            'source': 'pcap', 'token': describe(raw)})

    # tshark's HTTP dissector must count the same requests
    lo, _, hi = a.ports.partition('-')
    methods = tshark('-r', a.pcap, '-d', f'tcp.port=={lo}-{hi or lo},http', '-Y', 'http.request',
                     '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,',
                     '-e', 'http.request.method').split()
    tshark_requests = sum(len(m.split(',')) for m in methods)
    parsed_requests = sum(p['requests'] for p in per_stream)
    if tshark_requests != parsed_requests:
        problems.append(f'tshark counts {tshark_requests} requests, the stream reader {parsed_requests}')

    if a.meta:
        meta = json.load(open(a.meta))
        want = meta['connections']
        if len(want) != len(per_stream):
            problems.append(f'{len(per_stream)} connections, the clients made {len(want)}')
        for w, g in zip(want, per_stream):
            if w['server'] != g['server'] or w['requests'] != g['requests'] or (
                    w['client_segments'] is not None and w['client_segments'] != g['client_segments']):
                problems.append(f'connection differs: clients {w}, pcap {g}')

    expected = []
    for n, line in enumerate(open(a.expected), 1):
        obj = json.loads(line)
        if list(obj) != KEYS or list(obj['token']) != TOKEN_KEYS:
            problems.append(f'{a.expected}:{n}: keys {list(obj)} / {list(obj["token"])}')
        expected.append(obj)
    canon = lambda objs: collections.Counter(json.dumps(o, sort_keys=True) for o in objs)
    e, g = canon(expected), canon(got)
    for line in sorted((e - g).elements()):
        problems.append(f'expected, not in pcap: {line}')
    for line in sorted((g - e).elements()):
        problems.append(f'in pcap, not expected: {line}')

    if problems:
        for p in problems:
            print(f'{name}: {p}', file=sys.stderr)
        return 1
    segs = ', '.join(f'{p["server"]} {p["requests"]} req/{p["client_segments"]} client segments'
                     for p in per_stream)
    print(f'{name}: ok: link type {linktype}, {len(per_stream)} connections ({segs}), '
          f'{tshark_requests} requests (tshark), {len(got)} token uses')
    return 0


if __name__ == '__main__':
    sys.exit(main())
