// IPv4 and IPv6 fragment reassembly, bounded: a client that fragments its
// requests must not blind the monitor, and one that sends endless fragments
// must not exhaust it. First copy wins on overlap (the Teardrop family of
// evasions is counted). Timeouts run on packet time.
#ifndef TOKENWATCH_AGENT_DECODE_DEFRAGMENTER_H_
#define TOKENWATCH_AGENT_DECODE_DEFRAGMENTER_H_

#include <cstdint>
#include <list>
#include <map>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "agent/decode/decoder.h"
#include "agent/stats.h"

namespace tokenwatch::decode {

class Defragmenter {
 public:
  struct Limits {
    size_t max_datagrams = 4096;  // in progress at once
    size_t max_datagram_bytes = 65535;
    size_t max_total_bytes = 16 << 20;
    int64_t timeout_us = 30'000'000;
  };
  Defragmenter(Limits limits, AgentStats* stats)
      : limits_(limits), stats_(stats) {}

  // Adds a fragment. When it completes a TCP datagram, fills `seg` (whose
  // payload points into this object until the next call) and returns true.
  bool Add(const IpFragment& frag, int64_t ts_us, TcpSegment* seg);
  void Expire(int64_t now_us);
  size_t in_progress() const { return datagrams_.size(); }
  size_t held_bytes() const { return total_bytes_; }

 private:
  struct Key {
    IpAddress src, dst;
    uint32_t id;
    uint8_t protocol;
    bool operator==(const Key& o) const {
      return id == o.id && protocol == o.protocol && src == o.src &&
             dst == o.dst;
    }
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(
          H::combine_contiguous(std::move(h), k.src.bytes, 16),
          absl::string_view(reinterpret_cast<const char*>(k.dst.bytes), 16),
          k.id, k.protocol);
    }
  };
  struct Datagram {
    std::map<uint32_t, std::string> pieces;  // by offset
    uint32_t total = 0;                      // known once the last arrives
    size_t bytes = 0;
    int64_t first_us = 0;
    std::list<Key>::iterator age;
  };
  void Drop(absl::flat_hash_map<Key, Datagram>::iterator it);

  Limits limits_;
  AgentStats* stats_;
  absl::flat_hash_map<Key, Datagram> datagrams_;
  std::list<Key> by_age_;
  size_t total_bytes_ = 0;
  std::string assembled_;
};

}  // namespace tokenwatch::decode

#endif  // TOKENWATCH_AGENT_DECODE_DEFRAGMENTER_H_
