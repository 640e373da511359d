// The TLS probe's connections as ordered byte streams: each (pid, SSL*)
// becomes a connection whose plaintext goes, per direction and in order,
// to a StreamHandler from the same factory kind as pcap's flows (protocol
// detection, HTTP/1, HTTP/2), so every detection works on HTTPS as on
// cleartext. Side 0 is the probed process's end, side 1 its peer.
//
// Bounded: connections (least recently active evicted), bytes held for an
// SSL* whose socket is not known yet, idle time. A connection seen from
// both ends on this host (client and server process both probed) is
// parsed once: from the end seen first.
#ifndef TOKENWATCH_AGENT_TLS_PROBE_STREAMS_H_
#define TOKENWATCH_AGENT_TLS_PROBE_STREAMS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "agent/analyzer/stream.h"
#include "agent/stats.h"
#include "agent/tls/chunk.h"

namespace tokenwatch::tls {

struct ProbeStreamLimits {
  size_t max_connections = 65536;
  size_t max_unbound_bytes = 256 * 1024;  // per connection, before a BIND
  int64_t idle_timeout_us = 300'000'000;
};

class ProbeStreams {
 public:
  // `exe_of(pid)` names a process's executable (/proc/PID/exe by default).
  ProbeStreams(analyzer::StreamHandlerFactory* factory, AgentStats* stats,
               ProbeStreamLimits limits = {},
               std::function<std::string(uint32_t)> exe_of = nullptr);
  ~ProbeStreams();

  void OnChunk(const Chunk& c);
  // Closes connections idle longer than the limit.
  void Expire(int64_t now_us);
  void CloseAll();
  size_t size() const { return conns_.size(); }
  // A replay names no live process: its exe is left empty.
  void set_exe_of(std::function<std::string(uint32_t)> f) {
    exe_of_ = std::move(f);
  }

 private:
  struct Key {
    uint32_t pid;
    uint64_t ssl;
    bool operator==(const Key& o) const { return pid == o.pid && ssl == o.ssl; }
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.pid, k.ssl);
    }
  };
  struct Conn;
  using Lru = std::list<Key>;

  Conn* Find(const Key& k);
  Conn& Open(const Key& k, const Chunk& c);
  void Bind(Conn& conn, const Chunk& c);
  void Deliver(Conn& conn, const Chunk& c);
  void Close(Key k);
  // "ip:port|ip:port" of both ends, the same from either end.
  static std::string TupleKey(const analyzer::Endpoint& a,
                              const analyzer::Endpoint& b);

  analyzer::StreamHandlerFactory* factory_;
  AgentStats* stats_;
  ProbeStreamLimits limits_;
  std::function<std::string(uint32_t)> exe_of_;
  absl::flat_hash_map<Key, std::unique_ptr<Conn>> conns_;
  Lru lru_;  // least recently active first
  // Tuples being parsed, and by which connection (both ends on one host).
  absl::flat_hash_map<std::string, Key> tuples_;
  absl::flat_hash_map<uint32_t, std::shared_ptr<const analyzer::Process>>
      processes_;
  absl::flat_hash_map<uint32_t, size_t> per_pid_;  // connections per pid
};

}  // namespace tokenwatch::tls

#endif  // TOKENWATCH_AGENT_TLS_PROBE_STREAMS_H_
