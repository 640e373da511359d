#!/usr/bin/env python3
"""Seeds for the http2 fuzzer from the HTTP/2 captures in ../shared/data:
each TCP connection's segments in capture order, as the fuzzer's chunks
([ctl][len16][bytes], ctl bit 0 = direction), cut at MAX bytes. Mode:
client known (direction 0) unless the capture starts mid-connection, then
both directions are marked as picked up mid-stream.

  tests/fuzz/make-http2-seeds.py OUT_DIR [SHARED_DATA_DIR]
"""
import hashlib
import os
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX = 16 * 1024
CAPTURES = [
    ("ecrent-microservices-demo/grpc-h2c-authorization-bearer-rs256-jwt.pcap", True),
    ("ecrent-microservices-demo/grpc-h2c-split-jwt-custom-headers.pcap", True),
    ("packt-grpc-go/grpc-unary.pcapng", False),
    ("packt-grpc-go/grpc-server-streaming.pcapng", False),
    ("packt-grpc-go/grpc-client-streaming.pcapng", False),
    ("packt-grpc-go/grpc-bidi-streaming.pcapng", False),
] + [("suricata-verify/http2/" + f, False) for f in sorted(os.listdir(
    os.path.join(ROOT, "..", "shared", "data", "suricata-verify", "http2")))]


def main():
    out = sys.argv[1]
    data = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "..", "shared", "data")
    os.makedirs(out, exist_ok=True)
    n = 0
    for rel, midstream in CAPTURES:
        r = subprocess.run(["tshark", "-n", "-r", os.path.join(data, rel), "-Y", "tcp.len > 0",
                            "-T", "fields", "-e", "tcp.stream", "-e", "tcp.srcport",
                            "-e", "tcp.payload"], capture_output=True, text=True)
        conns = {}
        for line in r.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) < 3 or not parts[2]:
                continue
            conns.setdefault(parts[0], []).append((parts[1], bytes.fromhex(parts[2])))
        for conn, segs in conns.items():
            first = segs[0][0]
            seed = bytearray([12 if midstream else 1])
            for port, payload in segs:
                chunk = struct.pack(">BH", 0 if port == first else 1, len(payload)) + payload
                if len(seed) + len(chunk) > MAX:
                    break
                seed += chunk
            if len(seed) <= 1:
                continue
            name = hashlib.sha1(seed).hexdigest()
            with open(os.path.join(out, name), "wb") as f:
                f.write(seed)
            n += 1
    print(f"{n} seeds in {out}")


if __name__ == "__main__":
    main()
