// The TLS probe's kernel half (issue 14): uprobes on OpenSSL's
// SSL_read/SSL_write (and their _ex forms) copy the plaintext a process
// hands to or gets from OpenSSL into a ring buffer; the sock_send_length
// and sock_recv_length tracepoints tell which socket an SSL* talks through.
//
// Connection identity, two ways:
//  * OpenSSL does the socket I/O itself (SSL_set_fd: nginx, curl, Python):
//    the socket is the one the same thread sends or receives on during the
//    SSL_* call;
//  * memory BIOs (node): the process moves ciphertext outside the SSL_*
//    call, on the same thread: a read is bound to the socket the thread
//    received from last, a write (no socket known) to the socket the
//    thread sends on next, announced by a TW_BIND record.
// Once known, an SSL*'s socket is remembered (ssl_tuples) until SSL_free.
//
// Never blocks the probed process: a record the ring cannot take is
// dropped and counted (counters[TW_CTR_RING_FULL]).
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "agent/tls/probe_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

// The agent's own process: its TLS to the collector is not traffic to
// watch (and probing it would feed back on itself).
const volatile __u32 self_tgid = 0;

enum {
  TW_CTR_RING_FULL = 0,  // records dropped: the ring buffer was full
  TW_CTR_TRUNCATED = 1,  // chunks cut at TW_MAX_DATA
  TW_CTR_READ_FAIL = 2,  // plaintext that could not be read from the process
  TW_CTR_COUNT = 3,
};

struct call {
  __u64 ssl;
  __u64 buf;
  __u64 ex_len;  // the _ex forms' size_t* (bytes moved); 0 otherwise
  struct tw_tuple tuple;  // the socket this thread used during the call
};

struct ssl_key {
  __u64 ssl;
  __u32 tgid;
  __u32 pad;
};

struct scratch {
  struct tw_record r;
  __u8 data[TW_MAX_DATA];
};

// In-flight SSL_* calls, by thread.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct call);
} calls SEC(".maps");

// The socket behind each SSL*, once known.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct ssl_key);
  __type(value, struct tw_tuple);
} ssl_tuples SEC(".maps");

// Threads that have called SSL_*: only their socket I/O is looked at
// outside a call (the memory-BIO binding), so other processes' recvs cost
// one lookup.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, __u8);
} ssl_threads SEC(".maps");

// Per SSL thread: the socket it received from last.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct tw_tuple);
} last_recv SEC(".maps");

// Per SSL thread: an SSL* whose SSL_write saw no socket; the thread's next
// send is its ciphertext.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, __u64);
} pending_write SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 8 << 20);  // resized by the loader (tls_probe.cc)
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct scratch);
} scratch SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, TW_CTR_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

// Waking the reader for every record costs the probed call microseconds
// (an irq_work per record): the reader polls every few milliseconds
// instead (tls_probe.cc), and is woken only once the ring is a quarter
// full, so a burst cannot fill it between two polls.
static __always_inline __u64 wakeup_flags(void) {
  __u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
  __u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
  return avail > size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void count(__u32 which) {
  __u64* n = bpf_map_lookup_elem(&counters, &which);
  if (n) *n += 1;
}

// BPF has no memcmp: a tuple is five aligned 64-bit words.
static __always_inline int tuple_eq(const struct tw_tuple* a,
                                    const struct tw_tuple* b) {
  const __u64* x = (const __u64*)a;
  const __u64* y = (const __u64*)b;
#pragma unroll
  for (int i = 0; i < (int)(sizeof(*a) / 8); ++i) {
    if (x[i] != y[i]) return 0;
  }
  return 1;
}

static __always_inline int skip_self(__u64 id) {
  return (__u32)(id >> 32) == self_tgid;
}

static __always_inline void read_tuple(struct sock* sk, struct tw_tuple* t) {
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  t->family = family;
  t->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
  t->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  if (family == AF_INET) {
    __u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
    __u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memcpy(t->laddr, &l, 4);
    __builtin_memcpy(t->raddr, &r, 4);
  } else {
    BPF_CORE_READ_INTO(&t->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
    BPF_CORE_READ_INTO(&t->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
  }
}

static __always_inline void header(struct tw_record* r, __u64 id, __u64 ssl,
                                   __u8 kind) {
  r->ts_ns = bpf_ktime_get_ns();
  r->ssl = ssl;
  r->tgid = id >> 32;
  r->tid = (__u32)id;
  r->kind = kind;
  r->dir = 0;
  r->flags = 0;
  r->len = 0;
  r->orig_len = 0;
  r->pad = 0;
  bpf_get_current_comm(&r->comm, sizeof(r->comm));
}

// A record without data (BIND, CLOSE).
static __always_inline void emit_small(__u64 id, __u64 ssl, __u8 kind,
                                       const struct tw_tuple* t) {
  struct tw_record* r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
  if (!r) {
    count(TW_CTR_RING_FULL);
    return;
  }
  header(r, id, ssl, kind);
  if (t) {
    r->tuple = *t;
  } else {
    __builtin_memset(&r->tuple, 0, sizeof(r->tuple));
  }
  bpf_ringbuf_submit(r, wakeup_flags());
}

static __always_inline int on_sock(struct sock* sk, int is_recv) {
  __u64 id = bpf_get_current_pid_tgid();
  if (skip_self(id)) return 0;
  if (!bpf_map_lookup_elem(&ssl_threads, &id)) return 0;
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  if (family != AF_INET && family != AF_INET6) return 0;
  struct call* c = bpf_map_lookup_elem(&calls, &id);
  if (c) {
    if (!c->tuple.family) read_tuple(sk, &c->tuple);
    return 0;
  }
  struct tw_tuple t = {};
  if (is_recv) {
    read_tuple(sk, &t);
    // LRU maps: an update allocates; most receives repeat the last socket.
    struct tw_tuple* last = bpf_map_lookup_elem(&last_recv, &id);
    if (last) {
      if (!tuple_eq(last, &t)) *last = t;
    } else {
      bpf_map_update_elem(&last_recv, &id, &t, BPF_ANY);
    }
    return 0;
  }
  __u64* ssl = bpf_map_lookup_elem(&pending_write, &id);
  if (!ssl) return 0;
  __u64 s = *ssl;
  bpf_map_delete_elem(&pending_write, &id);
  read_tuple(sk, &t);
  struct ssl_key k = {.ssl = s, .tgid = id >> 32};
  bpf_map_update_elem(&ssl_tuples, &k, &t, BPF_ANY);
  emit_small(id, s, TW_BIND, &t);
  return 0;
}

// The sock tracepoints every send and receive passes (sock_sendmsg_nosec,
// sock_recvmsg_nosec), with BTF-typed arguments: neither kprobes nor
// fentry, which kernels without kprobes, or in lockdown, refuse (this
// project's CI kernel among them).
SEC("tp_btf/sock_send_length")
int BPF_PROG(tw_tcp_sendmsg, struct sock* sk, int ret, int flags) {
  if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP) return 0;
  return on_sock(sk, 0);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tw_tcp_recvmsg, struct sock* sk, int ret, int flags) {
  if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP) return 0;
  return on_sock(sk, 1);
}

static __always_inline int enter(__u64 ssl, __u64 buf, __u64 ex_len) {
  __u64 id = bpf_get_current_pid_tgid();
  if (skip_self(id)) return 0;
  struct call c = {.ssl = ssl, .buf = buf, .ex_len = ex_len};
  bpf_map_update_elem(&calls, &id, &c, BPF_ANY);
  if (!bpf_map_lookup_elem(&ssl_threads, &id)) {
    __u8 one = 1;
    bpf_map_update_elem(&ssl_threads, &id, &one, BPF_ANY);
  }
  return 0;
}

static __always_inline int leave(long ret, __u8 dir, int is_ex) {
  __u64 id = bpf_get_current_pid_tgid();
  struct call* c = bpf_map_lookup_elem(&calls, &id);
  if (!c) return 0;
  __s64 n = ret;
  if (is_ex) {
    __u64 moved = 0;
    if (ret != 1 || bpf_probe_read_user(&moved, sizeof(moved), (void*)c->ex_len) != 0) {
      n = 0;
    } else {
      n = (__s64)moved;
    }
  }
  if (n <= 0) goto out;

  __u32 zero = 0;
  struct scratch* s = bpf_map_lookup_elem(&scratch, &zero);
  if (!s) goto out;
  header(&s->r, id, c->ssl, TW_DATA);
  s->r.dir = dir;
  s->r.orig_len = n > 0xffffffff ? 0xffffffff : (__u32)n;

  struct ssl_key k = {.ssl = c->ssl, .tgid = id >> 32};
  if (c->tuple.family) {
    s->r.tuple = c->tuple;
    struct tw_tuple* known = bpf_map_lookup_elem(&ssl_tuples, &k);
    if (!known) {
      bpf_map_update_elem(&ssl_tuples, &k, &c->tuple, BPF_ANY);
    } else if (!tuple_eq(known, &c->tuple)) {
      *known = c->tuple;  // the SSL* was freed and reused
    }
  } else {
    struct tw_tuple* known = bpf_map_lookup_elem(&ssl_tuples, &k);
    struct tw_tuple* recv = 0;
    if (known) {
      s->r.tuple = *known;
    } else if (dir == TW_DIR_READ && (recv = bpf_map_lookup_elem(&last_recv, &id))) {
      s->r.tuple = *recv;
      bpf_map_update_elem(&ssl_tuples, &k, recv, BPF_ANY);
    } else {
      __builtin_memset(&s->r.tuple, 0, sizeof(s->r.tuple));
      s->r.flags |= TW_FLAG_UNBOUND;
      if (dir == TW_DIR_WRITE) bpf_map_update_elem(&pending_write, &id, &c->ssl, BPF_ANY);
    }
  }

  // At most TW_MAX_DATA - 1 bytes: the mask is what the verifier can see.
  __u64 len = n >= TW_MAX_DATA ? TW_MAX_DATA - 1 : (__u64)n;
  if (len < s->r.orig_len) {
    s->r.flags |= TW_FLAG_TRUNCATED;
    count(TW_CTR_TRUNCATED);
  }
  asm volatile("" : "+r"(len));
  len &= TW_MAX_DATA - 1;
  if (bpf_probe_read_user(s->data, len, (void*)c->buf) != 0) {
    count(TW_CTR_READ_FAIL);
    goto out;
  }
  s->r.len = (__u32)len;
  if (bpf_ringbuf_output(&events, s, sizeof(struct tw_record) + len, wakeup_flags()) != 0)
    count(TW_CTR_RING_FULL);
out:
  bpf_map_delete_elem(&calls, &id);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(tw_ssl_write_enter, void* ssl, const void* buf, int num) {
  return enter((__u64)ssl, (__u64)buf, 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(tw_ssl_write_leave, int ret) { return leave(ret, TW_DIR_WRITE, 0); }

SEC("uprobe")
int BPF_KPROBE(tw_ssl_read_enter, void* ssl, void* buf, int num) {
  return enter((__u64)ssl, (__u64)buf, 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(tw_ssl_read_leave, int ret) { return leave(ret, TW_DIR_READ, 0); }

SEC("uprobe")
int BPF_KPROBE(tw_ssl_write_ex_enter, void* ssl, const void* buf, __u64 num, __u64* written) {
  return enter((__u64)ssl, (__u64)buf, (__u64)written);
}

SEC("uretprobe")
int BPF_KRETPROBE(tw_ssl_write_ex_leave, int ret) { return leave(ret, TW_DIR_WRITE, 1); }

SEC("uprobe")
int BPF_KPROBE(tw_ssl_read_ex_enter, void* ssl, void* buf, __u64 num, __u64* readbytes) {
  return enter((__u64)ssl, (__u64)buf, (__u64)readbytes);
}

SEC("uretprobe")
int BPF_KRETPROBE(tw_ssl_read_ex_leave, int ret) { return leave(ret, TW_DIR_READ, 1); }

SEC("uprobe")
int BPF_KPROBE(tw_ssl_free, void* ssl) {
  __u64 id = bpf_get_current_pid_tgid();
  if (skip_self(id) || !ssl) return 0;
  struct ssl_key k = {.ssl = (__u64)ssl, .tgid = id >> 32};
  if (bpf_map_delete_elem(&ssl_tuples, &k) == 0 ||
      bpf_map_lookup_elem(&ssl_threads, &id)) {
    emit_small(id, (__u64)ssl, TW_CLOSE, 0);
  }
  return 0;
}
