// Where packets come from: a live interface, a capture file, or memory (tests).
#ifndef TOKENWATCH_AGENT_CAPTURE_PACKET_SOURCE_H_
#define TOKENWATCH_AGENT_CAPTURE_PACKET_SOURCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/capture/packet.h"

namespace tokenwatch::capture {

struct CaptureStats {
  uint64_t received = 0;        // packets handed to us
  uint64_t kernel_dropped = 0;  // pcap_stats ps_drop (live only)
  uint64_t iface_dropped = 0;   // pcap_stats ps_ifdrop (live only)
  uint64_t truncated = 0;       // caplen < wirelen
};

// Progress of a finite source, for the replay progress line.
struct SourceProgress {
  uint64_t bytes_read = 0;
  uint64_t bytes_total = 0;  // 0 when unknown (stdin, live)
};

class PacketSource {
 public:
  enum class Result { kPacket, kTimeout, kEnd };

  virtual ~PacketSource() = default;
  // Fills `packet`, whose bytes stay valid until the next call. kTimeout means
  // a live source had nothing within its read timeout.
  virtual absl::StatusOr<Result> Next(RawPacket* packet) = 0;
  virtual CaptureStats Stats() const = 0;
  virtual SourceProgress Progress() const { return {}; }
  virtual bool IsLive() const { return false; }
};

// Packets held in memory, for tests and fuzzers.
class MemoryPacketSource : public PacketSource {
 public:
  struct Frame {
    int64_t ts_us;
    std::vector<uint8_t> bytes;
  };
  MemoryPacketSource(int linktype, std::vector<Frame> frames)
      : linktype_(linktype), frames_(std::move(frames)) {}

  absl::StatusOr<Result> Next(RawPacket* packet) override {
    if (next_ >= frames_.size()) return Result::kEnd;
    const Frame& f = frames_[next_++];
    packet->ts_us = f.ts_us;
    packet->data = f.bytes.data();
    packet->caplen = packet->wirelen = static_cast<uint32_t>(f.bytes.size());
    packet->linktype = linktype_;
    ++stats_.received;
    return Result::kPacket;
  }
  CaptureStats Stats() const override { return stats_; }

 private:
  int linktype_;
  std::vector<Frame> frames_;
  size_t next_ = 0;
  CaptureStats stats_;
};

}  // namespace tokenwatch::capture

#endif  // TOKENWATCH_AGENT_CAPTURE_PACKET_SOURCE_H_
