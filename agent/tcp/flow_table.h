// TCP connections by their 4-tuple: each holds a reassembler per direction
// and hands the ordered bytes to the stream handler (protocol analyzer) its
// factory gives it, created when the first bytes arrive. Bounded in count; idle
// flows expire on packet time; when full, the least recently active flow is
// evicted (and counted). Keys are direction-independent, so a later
// multi-threaded agent can shard flows by FlowKey::Hash across workers.
#ifndef TOKENWATCH_AGENT_TCP_FLOW_TABLE_H_
#define TOKENWATCH_AGENT_TCP_FLOW_TABLE_H_

#include <cstdint>
#include <list>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "agent/analyzer/stream.h"
#include "agent/decode/decoder.h"
#include "agent/stats.h"
#include "agent/tcp/reassembler.h"

namespace tokenwatch::tcp {

// Canonical (lower endpoint first) so both directions share one key.
struct FlowKey {
  decode::IpAddress lo_ip, hi_ip;
  uint16_t lo_port = 0, hi_port = 0;

  static FlowKey Of(const decode::TcpSegment& seg);
  bool operator==(const FlowKey& o) const {
    return lo_port == o.lo_port && hi_port == o.hi_port && lo_ip == o.lo_ip &&
           hi_ip == o.hi_ip;
  }
  template <typename H>
  friend H AbslHashValue(H h, const FlowKey& k) {
    return H::combine(
        H::combine_contiguous(std::move(h), k.lo_ip.bytes, 16),
        absl::string_view(reinterpret_cast<const char*>(k.hi_ip.bytes), 16),
        k.lo_port, k.hi_port);
  }
};

class Flow {
 public:
  Flow(const decode::TcpSegment& first,
       analyzer::StreamHandlerFactory* analyzers, ReassemblyBudget* budget,
       AgentStats* stats);
  enum class Verdict { kOpen, kClosed, kNewConnection };
  // kClosed once the connection is over (FIN both ways, or RST);
  // kNewConnection for a SYN that starts another connection on this 4-tuple
  // (the segment is not consumed).
  Verdict OnSegment(const decode::TcpSegment& seg);
  // Delivers what is buffered and reports pending requests.
  void Close();

  FlowKey key;
  int64_t last_ts_us = 0;
  int64_t queued_ts_us = 0;  // when it last moved to the back of the LRU
  std::list<Flow*>::iterator lru;

 private:
  // Adapts a reassembler's output to one direction of the session.
  struct Direction : StreamSink {
    Flow* flow = nullptr;
    int dir = 0;
    bool resync_checked = false;
    void OnData(const uint8_t* data, size_t len) override;
    void OnGap(uint64_t len) override;
  };

  // The handler, created on the first bytes: a flow that never carries
  // data (a SYN flood) costs no analyzer.
  analyzer::StreamHandler& Handler();
  void SetClientSide(int dir);

  decode::IpAddress ip0_;
  uint16_t port0_;
  decode::IpAddress ip1_;
  uint16_t port1_;
  int client_dir_ = -1;
  analyzer::StreamHandlerFactory* analyzers_;
  std::unique_ptr<analyzer::StreamHandler> handler_;
  Direction sinks_[2];
  StreamReassembler reasm_[2];
  bool fin_[2] = {false, false};
  bool closed_ = false;
};

class FlowTable {
 public:
  // `analyzers` gives each connection its handler; it, `budget` and
  // `stats` must outlive the table.
  FlowTable(size_t max_flows, int64_t idle_timeout_us,
            analyzer::StreamHandlerFactory* analyzers, ReassemblyBudget* budget,
            AgentStats* stats)
      : max_flows_(max_flows),
        idle_timeout_us_(idle_timeout_us),
        analyzers_(analyzers),
        budget_(budget),
        stats_(stats) {}
  ~FlowTable() { CloseAll(); }

  void OnSegment(const decode::TcpSegment& seg);
  // Expires flows idle since before now - timeout.
  void Expire(int64_t now_us);
  void CloseAll();
  size_t size() const { return flows_.size(); }

 private:
  void Remove(Flow* flow);

  size_t max_flows_;
  int64_t idle_timeout_us_;
  analyzer::StreamHandlerFactory* analyzers_;
  ReassemblyBudget* budget_;
  AgentStats* stats_;
  absl::flat_hash_map<FlowKey, std::unique_ptr<Flow>> flows_;
  std::list<Flow*> lru_;  // least recently active first
};

}  // namespace tokenwatch::tcp

#endif  // TOKENWATCH_AGENT_TCP_FLOW_TABLE_H_
