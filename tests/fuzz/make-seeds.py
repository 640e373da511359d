#!/usr/bin/env python3
"""Derives seed corpora for the fuzz targets from real captures and test data.

  tests/fuzz/make-seeds.py OUT_DIR [SHARED_DATA_DIR]

writes OUT_DIR/<target>/<name> for every target in tests/fuzz: frames of
the repo's captures (tests/captures, examples/demo.pcap) and of the public
captures in ../shared/data, their TCP chunks and HTTP streams, request heads,
JWTs found in them and in the JWT vectors, JWKS and PEM key files, the
repo's YAML files, and event batches encoded with protoc. `make fuzz`
minimises them into the committed corpus (tests/fuzz/corpus) with -merge=1.
"""
import glob
import json
import os
import re
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Frame selectors: index of the link type in each target's table.
DECODER_LT = {1: 0, 113: 1, 276: 2, 0: 3, 108: 4, 12: 5, 14: 6, 101: 7, 228: 8, 229: 9}
PIPELINE_LT = {1: 0, 113: 1, 276: 2, 0: 3, 108: 3, 12: 4, 14: 4, 101: 4}


def read_capture(path):
    """[(linktype, bytes)] of a pcap or pcapng file."""
    data = open(path, 'rb').read()
    out = []
    if len(data) < 24:
        return out
    magic = data[:4]
    if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1', b'\xa1\xb2\xc3\xd4', b'\xa1\xb2\x3c\x4d'):
        e = '<' if magic[0] in (0xd4, 0x4d) else '>'
        lt = struct.unpack(e + 'I', data[20:24])[0] & 0xffff
        off = 24
        while off + 16 <= len(data):
            _, _, incl, _ = struct.unpack(e + 'IIII', data[off:off + 16])
            off += 16
            out.append((lt, data[off:off + incl]))
            off += incl
        return out
    if magic == b'\x0a\x0d\x0d\x0a':
        e = '<' if data[8:12] == b'\x4d\x3c\x2b\x1a' else '>'
        off, ifaces = 0, []
        while off + 12 <= len(data):
            btype, blen = struct.unpack(e + 'II', data[off:off + 8])
            if blen < 12:
                break
            body = data[off + 8:off + blen - 4]
            if btype == 0x0a0d0d0a:
                ifaces = []
            elif btype == 1:
                ifaces.append(struct.unpack(e + 'H', body[:2])[0])
            elif btype == 6 and len(body) >= 20:
                iface, _, _, cap, _ = struct.unpack(e + 'IIIII', body[:20])
                if iface < len(ifaces):
                    out.append((ifaces[iface], body[20:20 + cap]))
            off += blen
        return out
    return out


def ip_of(lt, f):
    """The IP packet inside a frame, or None."""
    if lt == 1:
        off, et = 14, f[12:14]
        while et in (b'\x81\x00', b'\x88\xa8') and len(f) >= off + 4:
            et, off = f[off + 2:off + 4], off + 4
        return f[off:] if et in (b'\x08\x00', b'\x86\xdd') else None
    if lt == 113:
        return f[16:] if f[14:16] in (b'\x08\x00', b'\x86\xdd') else None
    if lt == 276:
        return f[20:] if f[0:2] in (b'\x08\x00', b'\x86\xdd') else None
    if lt in (0, 108):
        return f[4:]
    if lt in (12, 14, 101, 228, 229):
        return f
    return None


def tcp_of(ip):
    """(src, dst, sport, dport, seq, flags, payload) of an unfragmented TCP packet."""
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4 and len(ip) >= 20:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack('>H', ip[2:4])[0]
        if ip[9] != 6 or struct.unpack('>H', ip[6:8])[0] & 0x3fff:
            return None
        src, dst, t = ip[12:16], ip[16:20], ip[ihl:total if total else None]
    elif v == 6 and len(ip) >= 40:
        if ip[6] != 6:
            return None
        plen = struct.unpack('>H', ip[4:6])[0]
        src, dst, t = ip[8:24], ip[24:40], ip[40:40 + plen]
    else:
        return None
    if len(t) < 20:
        return None
    sport, dport, seq = struct.unpack('>HHI', t[:8])
    doff = (t[12] >> 4) * 4
    return src, dst, sport, dport, seq, t[13], t[doff:]


def conversations(frames):
    """{flow key: [(dir, seq, flags, payload)]}, dir 0 = first sender."""
    flows, first = {}, {}
    for lt, f in frames:
        seg = tcp_of(ip_of(lt, f))
        if not seg:
            continue
        src, dst, sp, dp, seq, flags, payload = seg
        key = tuple(sorted([(src, sp), (dst, dp)]))
        first.setdefault(key, (src, sp))
        d = 0 if first[key] == (src, sp) else 1
        flows.setdefault(key, []).append((d, seq, flags, payload))
    return flows


def frames_seed(frames, table, limit):
    out = b''
    for lt, f in frames:
        if lt not in table:
            continue
        rec = bytes([table[lt]]) + struct.pack('>H', min(len(f), 65535)) + f[:65535]
        if len(out) + len(rec) > limit:
            break
        out += rec
    return out


def reassembly_seed(segs, limit=16384):
    isn = [None, None]
    for d, seq, flags, _ in segs:
        if flags & 2 and isn[d] is None:
            isn[d] = seq
    for d, seq, _, _ in segs:
        if isn[d] is None:
            isn[d] = seq
    isn = [x if x is not None else 0 for x in isn]
    nxt = list(isn)
    out = struct.pack('>II', *isn)
    for d, seq, flags, payload in segs:
        pos = 0
        while True:
            chunk = payload[pos:pos + 255]
            s = (seq + pos) & 0xffffffff
            delta = ((s - nxt[d] + 2**31) % 2**32) - 2**31
            ctl = d | (2 if flags & 2 else 0) | (4 if flags & 1 else 0) | \
                (8 if flags & 4 else 0) | (16 if flags & 16 else 0)
            if not -128 <= delta <= 127:
                if delta % 1024 == 0 and -128 <= delta // 1024 <= 127:
                    ctl, delta = ctl | 0x40, delta // 1024
                else:
                    delta = 0
            s = (nxt[d] + (delta * 1024 if ctl & 0x40 else delta)) & 0xffffffff
            rec = bytes([ctl, delta & 0xff, len(chunk)]) + chunk
            if len(out) + len(rec) > limit:
                return out
            out += rec
            end = (s + len(chunk) + (1 if flags & 2 else 0)) & 0xffffffff
            if ((end - nxt[d]) & 0xffffffff) < 2**31 and end != nxt[d]:
                nxt[d] = end
            pos += 255
            flags &= ~2
            if pos >= len(payload):
                break
    return out


def http_seed(segs, limit=32768):
    out = b'\x00'
    for d, _, _, payload in segs:
        if not payload:
            continue
        payload = payload[:65535]
        rec = bytes([d]) + struct.pack('>H', len(payload)) + payload
        if len(out) + len(rec) > limit:
            break
        out += rec
    return out


def request_heads(segs):
    stream = b''.join(p for d, _, _, p in segs if d == 0)
    for m in re.finditer(rb'(?:GET|POST|PUT|DELETE|HEAD|PATCH|OPTIONS|CONNECT) [^\r\n]*\r\n(?:[^\r\n]+\r\n)*', stream):
        lines = m.group(0).split(b'\r\n')
        method, _, rest = lines[0].partition(b' ')
        target = rest.rsplit(b' ', 1)[0] if b' HTTP/' in rest else rest
        head = [method + b' ' + target]
        for h in lines[1:]:
            if b':' in h:
                name, _, value = h.partition(b':')
                head.append(name + b':' + value.strip())
        yield b'\n'.join(head)


JWT_RE = re.compile(rb'eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*')


def main():
    out_dir = sys.argv[1]
    shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, '..', 'shared', 'data')
    seeds = {}

    def add(target, name, data):
        if data:
            seeds.setdefault(target, {})[name] = data

    captures = sorted(glob.glob(os.path.join(ROOT, 'tests/captures/*.pcap*')) +
                      [os.path.join(ROOT, 'examples/demo.pcap')] +
                      glob.glob(os.path.join(shared, '*/*.pcap*')) +
                      glob.glob(os.path.join(shared, 'suricata-verify/*/*.pcap'))[:40])
    jwts = set()
    for path in captures:
        rel = os.path.relpath(path, ROOT).replace('../shared/data/', 'shared/')
        base = re.sub(r'[^A-Za-z0-9_.-]', '_', rel).lstrip('._')
        frames = read_capture(path)
        if not frames:
            continue
        add('decoder', base, frames_seed(frames, DECODER_LT, 8192))
        add('pipeline', base, frames_seed(frames, PIPELINE_LT, 32768))
        for i, (key, segs) in enumerate(list(conversations(frames).items())[:3]):
            add('reassembly', f'{base}.{i}', reassembly_seed(segs))
            add('http', f'{base}.{i}', http_seed(segs))
            for j, head in enumerate(request_heads(segs)):
                if j < 4:
                    add('extractor', f'{base}.{i}.{j}', head)
        for _, f in frames:
            jwts.update(JWT_RE.findall(f))
    for path in glob.glob(os.path.join(shared, 'jwt-vectors/**/*'), recursive=True):
        if os.path.isfile(path) and os.path.getsize(path) < 2_000_000:
            jwts.update(JWT_RE.findall(open(path, 'rb').read()))
    for i, t in enumerate(sorted(jwts)[:200]):
        add('jwt', f'jwt.{i}', t)
        add('extractor', f'bearer.{i}', b'GET /v1/x?access_token=' + t + b'\nAuthorization:Bearer ' + t)
    # Key sets: selector 0 = JWKS, 1 = PEM (jwks_fuzzer.cc).
    for path in sorted(glob.glob(os.path.join(shared, 'jwt-vectors/**/*'), recursive=True) +
                       glob.glob(os.path.join(ROOT, 'tests/**/*.pem'), recursive=True) +
                       glob.glob(os.path.join(ROOT, 'tests/**/*.json'), recursive=True)):
        if not os.path.isfile(path) or os.path.getsize(path) > 65536 or 'node_modules' in path:
            continue
        data = open(path, 'rb').read()
        name = re.sub(r'[^A-Za-z0-9_.-]', '_', os.path.basename(path))
        if b'-----BEGIN' in data:
            add('jwks', 'pem.' + name, b'\x01' + data)
        if b'"kty"' in data:
            try:
                doc = json.loads(data)
            except ValueError:
                continue
            keys = doc.get('keys') if isinstance(doc, dict) else None
            if keys is None and isinstance(doc, dict) and 'kty' in doc:
                keys = [doc]
            if keys:
                add('jwks', 'jwks.' + name, b'\x00' + json.dumps({'keys': keys}).encode())
    for path in sorted(glob.glob(os.path.join(ROOT, '**/*.y*ml'), recursive=True)):
        if 'node_modules' in path or 'build' in os.path.relpath(path, ROOT).split(os.sep)[0]:
            continue
        add('config', re.sub(r'[^A-Za-z0-9_.-]', '_', os.path.relpath(path, ROOT)), open(path, 'rb').read())
    for i, text in enumerate(BATCHES):
        enc = subprocess.run(['protoc', '--encode=tokenwatch.v1.EventBatch',
                              '-I', os.path.join(ROOT, 'proto'), 'tokenwatch/v1/ingest.proto'],
                             input=text.encode(), capture_output=True, check=True).stdout
        add('intake', f'batch.{i}', bytes([i % 4]) + enc)

    n = 0
    for target, files in seeds.items():
        os.makedirs(os.path.join(out_dir, target), exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(out_dir, target, name), 'wb') as f:
                f.write(data)
            n += 1
    print(f'make-seeds: {n} seeds for {len(seeds)} targets in {out_dir}')


def event(ts, client='10.0.3.7', service='orders', status=200, jti='j-1',
          exp=1764497703, alg='HS256', aud='orders-api', method='GET',
          path='/v1/x', scope=''):
    return f'''events {{
  ts_us: {ts * 1000000} last_ts_us: {ts * 1000000} count: 1 agent: "host-a"
  service: "{service}" method: "{method}" path: "{path}" client: "{client}"
  server: "10.0.0.5:8080" status: {status}
  token {{ kind: TOKEN_KIND_JWT fp: "00112233445566778899aabbccddeeff"
    iss: "https://idp.demo" sub: "alice" jti: "{jti}" exp: {exp}
    aud: "{aud}" alg: "{alg}" {scope} }}
}}
'''


BATCHES = [
    'seq: 1\n' + event(1764497000),
    'seq: 1\n' + event(1764497800),  # used after exp
    'seq: 2\n' + ''.join(event(1764497000 + i, client=f'10.0.3.{i}') for i in range(4)),
    'seq: 1\n' + event(1764497000, service='payments', aud='orders-api'),
    'seq: 3\n' + event(1764497000, alg='none'),
    'seq: 1\n' + event(1764497000, service='payments', method='POST',
                       path='/v1/refunds/7', aud='payments-api',
                       scope='scopes: "payments:read"'),
    'seq: 1\n' + event(1764497000, status=401) + event(1764497001, jti='j-2'),
]

if __name__ == '__main__':
    main()
