// One direction of a TCP connection put back in order, as Zeek does it:
// 64-bit relative sequence numbers, out-of-order data held in ordered
// blocks, first copy wins on overlap, holes reported as gaps. In-order data
// is handed on straight from the packet; only out-of-order data is copied.
#ifndef TOKENWATCH_AGENT_TCP_REASSEMBLER_H_
#define TOKENWATCH_AGENT_TCP_REASSEMBLER_H_

#include <cstdint>
#include <map>
#include <string>

#include "agent/stats.h"

namespace tokenwatch::tcp {

class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual void OnData(const uint8_t* data, size_t len) = 0;
  // `len` bytes of the stream will never be seen.
  virtual void OnGap(uint64_t len) = 0;
};

// Byte budget shared by every reassembler of one pipeline.
struct ReassemblyBudget {
  uint64_t flow_cap = 256 * 1024;
  uint64_t global_cap = 64ull << 20;
  uint64_t used = 0;
};

class StreamReassembler {
 public:
  // What a held block costs beyond its bytes (map node, string header):
  // charged against the caps so tiny segments cannot exceed them in memory.
  static constexpr uint64_t kBlockOverhead = 96;

  StreamReassembler(StreamSink* sink, ReassemblyBudget* budget,
                    AgentStats* stats)
      : sink_(sink), budget_(budget), stats_(stats) {}
  ~StreamReassembler() { Release(); }
  StreamReassembler(const StreamReassembler&) = delete;
  StreamReassembler& operator=(const StreamReassembler&) = delete;

  // The SYN carries the initial sequence number; data starts one later.
  void OnSyn(uint32_t isn);
  // A segment's payload. The first segment of a direction without a SYN
  // starts the stream where it is (mid-stream pick-up).
  void OnSegment(uint32_t seq, const uint8_t* data, size_t len);
  // The peer acknowledged up to `ack`: bytes below it that we never saw
  // were lost by the capture, not by the network.
  void OnPeerAck(uint32_t ack);
  // End of the connection: deliver whatever is buffered, across holes.
  void Flush();

  bool started() const { return started_; }
  bool picked_up_midstream() const { return midstream_; }
  uint64_t delivered() const { return next_; }
  // Bytes held, block overhead included.
  uint64_t buffered() const { return buffered_; }
  // A SYN for a new connection on the same 4-tuple (a different ISN).
  bool IsNewConnection(uint32_t isn) const {
    return started_ && base_ != isn + 1;
  }

 private:
  uint64_t Relative(uint32_t seq) const;
  void Deliver(const uint8_t* data, size_t len) {
    if (len > 0) sink_->OnData(data, len);
  }
  void Accept(uint64_t start, const uint8_t* data, size_t len);
  // False when a cap forced a hole to be given up: retry the segment.
  bool Insert(uint64_t start, const uint8_t* data, size_t len);
  void Charge(int64_t bytes);  // buffered_ and the shared budget
  void Drain();
  void SkipToFirstBlock();
  void Release();

  StreamSink* sink_;
  ReassemblyBudget* budget_;
  AgentStats* stats_;
  bool started_ = false;
  bool midstream_ = false;
  uint32_t base_ = 0;  // absolute sequence number of relative offset 0
  uint64_t next_ = 0;  // relative offset of the next byte to deliver
  std::map<uint64_t, std::string> blocks_;  // out-of-order data by offset
  uint64_t buffered_ = 0;
};

}  // namespace tokenwatch::tcp

#endif  // TOKENWATCH_AGENT_TCP_REASSEMBLER_H_
