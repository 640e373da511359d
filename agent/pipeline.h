// The agent's data path for one thread: packets in, usage events out,
// assembled from its layers, each given its consumer:
//   packet → decode (+ IP defragmentation) → tcp::FlowTable (stream layer)
//   → protocol detection (protocols::ProtocolDetector) → analyzer
//     (http::HttpSession for HTTP/1, http2::Http2Session for HTTP/2, gRPC)
//   → token::UsageTracker (token layer) → output::EventFolder → EventSink.
// Everything it owns is per-pipeline, so N pipelines fed by a flow-hash
// dispatcher (FlowKey is direction-independent) scale across cores.
#ifndef TOKENWATCH_AGENT_PIPELINE_H_
#define TOKENWATCH_AGENT_PIPELINE_H_

#include <array>
#include <deque>
#include <memory>
#include <string>

#include "agent/analyzer/stream.h"
#include "agent/capture/packet.h"
#include "agent/decode/defragmenter.h"
#include "agent/http/session.h"
#include "agent/http2/session.h"
#include "agent/output/event_folder.h"
#include "agent/output/event_sink.h"
#include "agent/protocols/detector.h"
#include "agent/service/attribution.h"
#include "agent/stats.h"
#include "agent/tcp/flow_table.h"
#include "agent/tcp/reassembler.h"
#include "agent/tls/chunk.h"
#include "agent/tls/probe_streams.h"
#include "agent/token/extractor.h"
#include "agent/token/fingerprint.h"
#include "agent/token/token_cache.h"
#include "agent/token/token_checks.h"
#include "agent/token/usage_tracker.h"
#include "common/config.h"

namespace tokenwatch {

class Pipeline {
 public:
  // `fingerprinter` and `sink` must outlive the pipeline.
  // `checks` (optional) runs the raw-token checks; events of a token whose
  // weak-secret search is pending wait (off the packet path) for it.
  Pipeline(const config::Config& config, const std::string& agent_id,
           const token::Fingerprinter* fingerprinter, output::EventSink* sink,
           token::TokenChecks* checks = nullptr);
  ~Pipeline();

  void OnPacket(const capture::RawPacket& packet);
  // A record of the TLS probe (agent/tls): plaintext of a probed process,
  // through the same protocol and token layers as packets, with source
  // "tls_probe" and the process.
  void OnTlsChunk(const tls::Chunk& chunk);
  // Replaying a recording (-r FILE.twprobe): the recorded pids are not
  // this host's processes now, so no executable is looked up.
  void SetProbeReplay() {
    probe_streams_.set_exe_of([](uint32_t) { return std::string(); });
  }
  // Time passes without packets (live capture idle): expire and flush.
  void Advance(int64_t now_us);
  // End of input: close every flow and emit every event.
  void Finish();
  // Config reload (agent/reload.h): new services, token headers and
  // raw-token checks take effect from the next packet. The decoded-token
  // cache starts afresh, so every token is checked against the new
  // issuers. `config` is read here only; `checks` must outlive its use.
  void Reconfigure(const config::Config& config, token::TokenChecks* checks);

  // Seconds per stage, from timing every 64th packet (timing every packet
  // would cost more than some stages).
  double decode_seconds() const { return stage_ns_[0] * 1e-9; }
  double tcp_http_seconds() const { return stage_ns_[1] * 1e-9; }
  double output_seconds() const { return stage_ns_[2] * 1e-9; }

  const AgentStats& stats() { return SyncGauges(); }
  // Decoded tokens held (bounded by twice agent.limits.token_cache_entries).
  size_t token_cache_size() const { return tokens_.size(); }
  AgentStats& mutable_stats() { return SyncGauges(); }

 private:
  // Figures the components already know are read from them when asked, not
  // kept twice: events emitted, flows tracked, out-of-order bytes held.
  AgentStats& SyncGauges() {
    stats_.events = folder_.emitted();
    stats_.flows_active = flows_.size();
    stats_.reassembly_buffered_bytes = budget_.used;
    return stats_;
  }

  // Holds back events whose token's weak-secret search is still running
  // (the worker posts its verdict to the pipeline's thread: DeliverVerdicts).
  class Gate : public output::EventSink {
   public:
    explicit Gate(output::EventSink* next) : next_(next) {}
    void Emit(const output::UsageRecord& r) override {
      if (r.token->weak_pending() || !held_.empty()) {
        held_.push_back(r);  // keep order behind what is already held
        return;
      }
      next_->Emit(r);
    }
    void Flush() override { next_->Flush(); }
    void Release() {
      while (!held_.empty() && !held_.front().token->weak_pending()) {
        next_->Emit(held_.front());
        held_.pop_front();
      }
    }
    void ReleaseAll() {
      for (const auto& r : held_) next_->Emit(r);
      held_.clear();
    }
    bool holding() const { return !held_.empty(); }

   private:
    output::EventSink* next_;
    std::deque<output::UsageRecord> held_;
  };

  void Process(const capture::RawPacket& packet, decode::DecodeResult r,
               decode::TcpSegment& seg, const decode::IpFragment& frag,
               bool timed, int64_t t1);
  // Writes the weak-secret verdicts the worker posted, then lets the
  // events they held go.
  void ReleaseHeld() {
    if (!gate_.holding()) return;
    if (checks_ != nullptr) checks_->DeliverVerdicts();
    gate_.Release();
  }

  AgentStats stats_;
  const token::Fingerprinter* fingerprinter_;
  size_t token_cache_entries_;
  token::TokenChecks* checks_;
  Gate gate_;
  tcp::ReassemblyBudget budget_;
  token::Extractor extractor_;
  token::TokenCache tokens_;
  service::Attributor attributor_;
  output::EventFolder folder_;
  token::UsageTracker usage_;
  analyzer::PacketClock clock_;
  http::SessionContext http_;
  http2::Http2Context http2_;
  protocols::DetectingAnalyzerFactory analyzers_;
  // The TLS probe's connections: analyzers of their own whose records say
  // source tls_probe.
  http::SessionContext probe_http_;
  http2::Http2Context probe_http2_;
  protocols::DetectingAnalyzerFactory probe_analyzers_;
  tls::ProbeStreams probe_streams_;
  tcp::FlowTable flows_;
  decode::Defragmenter defrag_;
  int64_t last_expire_us_ = 0;
  uint64_t sample_ = 0;
  std::array<uint64_t, 3> stage_ns_{};
};

}  // namespace tokenwatch

#endif  // TOKENWATCH_AGENT_PIPELINE_H_
