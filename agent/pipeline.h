// The agent's data path for one thread: packets in, usage events out.
// Everything it owns is per-pipeline, so N pipelines fed by a flow-hash
// dispatcher (FlowKey is direction-independent) scale across cores.
#ifndef TOKENWATCH_AGENT_PIPELINE_H_
#define TOKENWATCH_AGENT_PIPELINE_H_

#include <array>
#include <memory>
#include <string>

#include "agent/capture/packet.h"
#include "agent/config/config.h"
#include "agent/decode/defragmenter.h"
#include "agent/http/session.h"
#include "agent/output/event_folder.h"
#include "agent/output/event_sink.h"
#include "agent/service/attribution.h"
#include "agent/stats.h"
#include "agent/tcp/flow_table.h"
#include "agent/tcp/reassembler.h"
#include "agent/token/extractor.h"
#include "agent/token/fingerprint.h"
#include "agent/token/token_cache.h"

namespace tokenwatch {

class Pipeline {
 public:
  // `fingerprinter` and `sink` must outlive the pipeline.
  Pipeline(const config::Config& config, const std::string& agent_id,
           const token::Fingerprinter* fingerprinter, output::EventSink* sink);
  ~Pipeline();

  void OnPacket(const capture::RawPacket& packet);
  // Time passes without packets (live capture idle): expire and flush.
  void Advance(int64_t now_us);
  // End of input: close every flow and emit every event.
  void Finish();

  // Seconds per stage, from timing every 64th packet (timing every packet
  // would cost more than some stages).
  double decode_seconds() const { return stage_ns_[0] * 1e-9; }
  double tcp_http_seconds() const { return stage_ns_[1] * 1e-9; }
  double output_seconds() const { return stage_ns_[2] * 1e-9; }

  const AgentStats& stats() {
    stats_.events = folder_.emitted();
    return stats_;
  }
  AgentStats& mutable_stats() {
    stats_.events = folder_.emitted();
    return stats_;
  }

 private:
  void Process(const capture::RawPacket& packet, decode::DecodeResult r,
               decode::TcpSegment& seg, const decode::IpFragment& frag,
               bool timed, int64_t t1);

  AgentStats stats_;
  tcp::ReassemblyBudget budget_;
  token::Extractor extractor_;
  token::TokenCache tokens_;
  service::Attributor attributor_;
  output::EventFolder folder_;
  http::SessionContext ctx_;
  tcp::FlowTable flows_;
  decode::Defragmenter defrag_;
  int64_t last_expire_us_ = 0;
  uint64_t sample_ = 0;
  std::array<uint64_t, 3> stage_ns_{};
};

}  // namespace tokenwatch

#endif  // TOKENWATCH_AGENT_PIPELINE_H_
