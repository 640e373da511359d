#!/bin/sh
# Builds the TLS probe's kernel half (called by agent/CMakeLists.txt):
#   build_probe.sh CLANG BPFTOOL ARCH SOURCE_ROOT OUT_DIR
# writes OUT_DIR/vmlinux.h (the build machine kernel's types, from BTF),
# OUT_DIR/probe.o (BPF object, DWARF stripped) and
# OUT_DIR/agent/tls/probe.skel.h (the libbpf skeleton embedding it).
set -eu
clang=$1 bpftool=$2 arch=$3 src=$4 out=$5
mkdir -p "$out/agent/tls"
if [ ! -s "$out/vmlinux.h" ]; then
  [ -r /sys/kernel/btf/vmlinux ] || {
    echo "build_probe.sh: /sys/kernel/btf/vmlinux is missing: the TLS probe is built against the kernel's BTF" >&2
    exit 1
  }
  "$bpftool" btf dump file /sys/kernel/btf/vmlinux format c >"$out/vmlinux.h.tmp"
  mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"
fi
"$clang" -g -O2 -target bpf -D__TARGET_ARCH_"$arch" -I"$out" -I"$src" \
  -c "$src/agent/tls/probe.bpf.c" -o "$out/probe.bpf.o"
"$bpftool" gen object "$out/probe.o" "$out/probe.bpf.o"
"$bpftool" gen skeleton "$out/probe.o" name tw_probe >"$out/agent/tls/probe.skel.h.tmp"
mv "$out/agent/tls/probe.skel.h.tmp" "$out/agent/tls/probe.skel.h"
