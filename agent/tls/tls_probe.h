// The TLS probe's user-space half (issue 14): loads probe.bpf.c (libbpf,
// CO-RE, a skeleton built by CMake), attaches its uprobes to every OpenSSL
// a process maps (or the configured targets), and turns ring-buffer
// records into Chunks. Links belong to this object and to the process:
// destroying it, or the process ending in any way, detaches every probe.
#ifndef TOKENWATCH_AGENT_TLS_TLS_PROBE_H_
#define TOKENWATCH_AGENT_TLS_TLS_PROBE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/tls/chunk.h"

namespace tokenwatch::tls {

struct ProbeOptions {
  bool auto_targets = true;          // every libssl mapped, every exporter
  std::vector<std::string> targets;  // or these paths
  std::vector<std::string> exclude_comm;
  uint32_t ring_bytes = 16u << 20;  // a power of two
};

// A library or executable the probe is attached to.
struct Target {
  std::string path;
  uint64_t dev = 0, ino = 0;
  int links = 0;  // uprobes attached
};

struct ProbeCounters {
  uint64_t ring_full = 0;  // records the ring could not take (dropped)
  uint64_t truncated = 0;  // chunks cut at the per-record cap
  uint64_t read_fail = 0;  // plaintext that could not be read
};

// What an effective capability set (CapEff) lacks for the probe, or "":
// CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN. The caller reads the set
// (privilege::ParseProcStatus).
std::string MissingCapabilities(uint64_t cap_eff);
// What the kernel lacks for the probe, or "": BTF, the BPF ring buffer.
// TlsProbe::Open checks it.
std::string KernelUnsupportedReason();

// Paths that map an OpenSSL (libssl.so*) or export SSL_read/SSL_write, in
// the processes under `proc_root` (the agent's /proc).
std::vector<std::string> DiscoverTargets(
    const std::string& proc_root = "/proc");

class TlsProbe {
 public:
  static absl::StatusOr<std::unique_ptr<TlsProbe>> Open(const ProbeOptions& o);
  ~TlsProbe();
  TlsProbe(const TlsProbe&) = delete;
  TlsProbe& operator=(const TlsProbe&) = delete;

  // Attaches to targets not attached yet (processes started since, newly
  // mapped libraries). Returns how many were added; each is logged.
  int Rescan();
  // Waits up to `timeout_ms` for records and hands each to `sink`.
  absl::Status Poll(int timeout_ms, const std::function<void(Chunk&)>& sink);

  ProbeCounters counters() const;
  const std::vector<Target>& targets() const { return targets_; }

 private:
  struct Impl;
  explicit TlsProbe(const ProbeOptions& o);
  absl::Status Attach(const std::string& path, bool from_config);

  ProbeOptions options_;
  std::unique_ptr<Impl> impl_;
  std::vector<Target> targets_;
  std::vector<std::pair<uint64_t, uint64_t>>
      not_targets_;  // (dev, ino) without SSL_*
};

}  // namespace tokenwatch::tls

#endif  // TOKENWATCH_AGENT_TLS_TLS_PROBE_H_
