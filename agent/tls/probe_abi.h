// The records the TLS probe's BPF half (probe.bpf.c) writes to its ring
// buffer, as both halves see them. Plain C, fixed-width types only: it is
// compiled for the BPF target and for the host.
#ifndef TOKENWATCH_AGENT_TLS_PROBE_ABI_H_
#define TOKENWATCH_AGENT_TLS_PROBE_ABI_H_

#ifndef __VMLINUX_H__
#include <stdint.h>
typedef uint8_t tw_u8;
typedef uint16_t tw_u16;
typedef uint32_t tw_u32;
typedef uint64_t tw_u64;
#else
typedef __u8 tw_u8;
typedef __u16 tw_u16;
typedef __u32 tw_u32;
typedef __u64 tw_u64;
#endif

// Plaintext bytes per record: a longer SSL_read/SSL_write is cut at
// TW_MAX_DATA - 1 and marked (TW_FLAG_TRUNCATED). A power of two (the BPF
// side masks with TW_MAX_DATA - 1, which the verifier can follow).
#define TW_MAX_DATA 16384

enum tw_kind {
  TW_DATA = 1,   // plaintext of one SSL_read/SSL_write
  TW_BIND = 2,   // the connection behind an SSL* became known
  TW_CLOSE = 3,  // SSL_free: the SSL* and its connection are gone
};

enum tw_dir {
  TW_DIR_WRITE = 0,  // this process sent the bytes (local → remote)
  TW_DIR_READ = 1,   // this process received them (remote → local)
};

#define TW_FLAG_TRUNCATED 1  // len < orig_len: the chunk was cut
#define TW_FLAG_UNBOUND 2  // no socket known yet for this SSL*: a BIND follows

// The socket behind an SSL*, from this process's point of view.
struct tw_tuple {
  tw_u16 family;  // AF_INET or AF_INET6; 0: unknown
  tw_u16 lport;   // host byte order
  tw_u16 rport;
  tw_u16 pad;
  tw_u8 laddr[16];  // IPv4 in the first 4 bytes
  tw_u8 raddr[16];
} __attribute__((aligned(8)));  // compared as five 64-bit words

struct tw_record {
  tw_u64 ts_ns;  // CLOCK_MONOTONIC (bpf_ktime_get_ns)
  tw_u64 ssl;    // the SSL* (with tgid, the connection's identity)
  tw_u32 tgid;
  tw_u32 tid;
  tw_u32 len;       // bytes of data[] that follow
  tw_u32 orig_len;  // bytes the call moved
  tw_u8 kind;
  tw_u8 dir;
  tw_u16 flags;
  tw_u32 pad;
  struct tw_tuple tuple;
  char comm[16];
  // followed by `len` bytes of plaintext (TW_DATA only)
};

#endif  // TOKENWATCH_AGENT_TLS_PROBE_ABI_H_
