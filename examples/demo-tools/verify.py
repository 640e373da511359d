#!/usr/bin/env python3
"""Checks a fresh examples/demo.pcap against what drive.js sent, without the
agent: tshark's HTTP dissector must find every request of the manifest (client
address, Host, method, path) with the status the scenario expects, and
nothing else; every TCP connection must be complete (SYN, both FINs, no RST)
with no gaps or retransmissions.

usage: verify.py --ports 18181-18183 CAPTURE.pcap MANIFEST.json
"""
import argparse
import collections
import json
import subprocess
import sys


def tshark(*args):
    return subprocess.run(['tshark', *args], check=True, capture_output=True,
                          text=True).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ports', required=True)
    ap.add_argument('pcap')
    ap.add_argument('manifest')
    a = ap.parse_args()
    decode = ['-d', f'tcp.port=={a.ports},http']
    problems = []

    flags = collections.defaultdict(collections.Counter)
    for row in tshark('-r', a.pcap, '-T', 'fields', '-e', 'tcp.stream', '-e', 'tcp.flags.syn',
                      '-e', 'tcp.flags.ack', '-e', 'tcp.flags.fin',
                      '-e', 'tcp.flags.reset').splitlines():
        s, syn, ack, fin, rst = row.split('\t')
        c = flags[int(s)]
        c['syn'] += syn == '1' and ack == '0'
        c['fin'] += fin == '1'
        c['rst'] += rst == '1'
    for s, c in sorted(flags.items()):
        if c['syn'] != 1 or c['fin'] < 2 or c['rst']:
            problems.append(f'tcp stream {s} incomplete: {dict(c)}')
    lost = tshark('-r', a.pcap, '-Y', 'tcp.analysis.lost_segment or tcp.analysis.ack_lost_segment'
                  ' or tcp.analysis.retransmission or tcp.analysis.out_of_order',
                  '-T', 'fields', '-e', 'frame.number').split()
    if lost:
        problems.append(f'gaps or retransmissions at frames {", ".join(lost)}')

    status_of = {}
    for row in tshark('-r', a.pcap, *decode, '-Y', 'http.response', '-T', 'fields',
                      '-e', 'http.request_in', '-e', 'http.response.code').splitlines():
        req, code = row.split('\t')
        status_of[req] = int(code)
    got = []
    for row in tshark('-r', a.pcap, *decode, '-Y', 'http.request', '-T', 'fields',
                      '-e', 'frame.number', '-e', 'ip.src', '-e', 'http.host',
                      '-e', 'http.request.method', '-e', 'http.request.uri').splitlines():
        frame, client, host, method, uri = row.split('\t')
        got.append((client, host, method, uri.split('?')[0], status_of.get(frame)))

    with open(a.manifest) as f:
        manifest = json.load(f)
    want = [(r['client'], r['host'], r['method'], r['path'], r['status']) for r in manifest]
    w, g = collections.Counter(want), collections.Counter(got)
    for item in sorted((w - g).elements()):
        problems.append(f'sent, not in the pcap (or another status): {item}')
    for item in sorted((g - w).elements(), key=str):
        problems.append(f'in the pcap, not sent: {item}')

    if problems:
        for p in problems:
            print(f'verify: {p}', file=sys.stderr)
        return 1
    print(f'verify: ok: {len(flags)} connections, {len(got)} requests (tshark), '
          f'every one with the expected status')
    return 0


if __name__ == '__main__':
    sys.exit(main())
