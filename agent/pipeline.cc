#include "agent/pipeline.h"

#include <chrono>

#include "absl/time/time.h"

namespace tokenwatch {
namespace {
constexpr size_t kMaxOpenFolds = 65536;
constexpr int64_t kExpireEveryUs = 1000000;  // idle scan at most once a second
}  // namespace

Pipeline::Pipeline(const config::Config& config, const std::string& agent_id,
                   const token::Fingerprinter* fingerprinter,
                   output::EventSink* sink, token::TokenChecks* checks)
    : fingerprinter_(fingerprinter),
      token_cache_entries_(config.agent.limits.token_cache_entries),
      checks_(checks),
      gate_(sink),
      extractor_(config.agent.token_headers, &stats_),
      tokens_(fingerprinter, config.agent.limits.token_cache_entries, &stats_,
              checks),
      attributor_(config.services),
      folder_(absl::ToInt64Microseconds(config.agent.fold_window),
              kMaxOpenFolds, &gate_,
              absl::ToInt64Seconds(config.detections.clock_leeway)),
      usage_(agent_id, &extractor_, &tokens_, &attributor_, &folder_, &stats_),
      analyzers_(protocols::Analyzers{&http_, &http2_}),
      probe_analyzers_(protocols::Analyzers{&probe_http_, &probe_http2_}),
      probe_streams_(
          &probe_analyzers_, &stats_,
          tls::ProbeStreamLimits{config.agent.limits.max_flows,
                                 config.agent.limits.flow_buffer_bytes,
                                 absl::ToInt64Microseconds(
                                     config.agent.limits.flow_idle_timeout)}),
      flows_(config.agent.limits.max_flows,
             absl::ToInt64Microseconds(config.agent.limits.flow_idle_timeout),
             &analyzers_, &budget_, &stats_),
      defrag_(decode::Defragmenter::Limits{}, &stats_) {
  budget_.flow_cap = config.agent.limits.flow_buffer_bytes;
  budget_.global_cap = config.agent.limits.total_buffer_bytes;
  http_.max_header_bytes = config.agent.limits.max_header_bytes;
  http_.max_pending_requests = config.agent.limits.max_pending_requests;
  http_.stats = &stats_;
  http_.observer = &usage_;
  http_.clock = &clock_;
  // HTTP/2 shares the HTTP/1 bounds where they mean the same thing.
  for (http2::Http2Context* c : {&http2_, &probe_http2_}) {
    c->max_header_bytes = config.agent.limits.max_header_bytes;
    c->max_header_list_bytes = config.agent.limits.max_header_bytes;
    c->stats = &stats_;
    c->observer = &usage_;
    c->clock = &clock_;
  }
  // The probe's analyzers: the same bounds and consumers, their own source
  // (and scratch buffers).
  probe_http_ = http_;
  probe_http_.source = analyzer::Source::kTlsProbe;
  probe_http2_.source = analyzer::Source::kTlsProbe;
}

void Pipeline::OnTlsChunk(const tls::Chunk& chunk) {
  // A use's time is its record's own (packet time and probe time are both
  // wall time, but packets may have moved the clock past it): a replay of
  // the recording then gives the same events as the live run.
  clock_.now_us = chunk.ts_us;
  probe_streams_.OnChunk(chunk);
  folder_.Advance(chunk.ts_us);
  ReleaseHeld();
}

Pipeline::~Pipeline() { Finish(); }

void Pipeline::Reconfigure(const config::Config& config,
                           token::TokenChecks* checks) {
  // In place: the usage tracker keeps pointing at these members.
  attributor_ = service::Attributor(config.services);
  extractor_ = token::Extractor(config.agent.token_headers, &stats_);
  tokens_ =
      token::TokenCache(fingerprinter_, token_cache_entries_, &stats_, checks);
  checks_ = checks;
}

namespace {
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
constexpr uint64_t kSampleEvery = 64;
}  // namespace

void Pipeline::OnPacket(const capture::RawPacket& packet) {
  if ((++sample_ % kSampleEvery) == 0) {
    // Timed: the same work, with a clock read between stages.
    int64_t t0 = NowNs();
    decode::TcpSegment seg;
    decode::IpFragment frag;
    decode::DecodeResult r = decode::Decode(packet, &seg, &frag);
    int64_t t1 = NowNs();
    stage_ns_[0] += (t1 - t0) * kSampleEvery;
    Process(packet, r, seg, frag, /*timed=*/true, t1);
    return;
  }
  decode::TcpSegment seg;
  decode::IpFragment frag;
  decode::DecodeResult r = decode::Decode(packet, &seg, &frag);
  Process(packet, r, seg, frag, /*timed=*/false, 0);
}

void Pipeline::Process(const capture::RawPacket& packet, decode::DecodeResult r,
                       decode::TcpSegment& seg, const decode::IpFragment& frag,
                       bool timed, int64_t t1) {
  ++stats_.packets;
  stats_.bytes += packet.wirelen;
  if (r == decode::DecodeResult::kIpFragment) {
    ++stats_.ip_fragments;
    if (!defrag_.Add(frag, packet.ts_us, &seg)) return;
  } else if (r != decode::DecodeResult::kTcp) {
    ++stats_.decode[static_cast<size_t>(r)];
    return;
  }
  ++stats_.tcp_segments;
  stats_.payload_bytes += seg.payload_len;
  clock_.now_us = packet.ts_us;
  flows_.OnSegment(seg);
  if (timed) {
    int64_t t2 = NowNs();
    stage_ns_[1] += (t2 - t1) * kSampleEvery;
    folder_.Advance(packet.ts_us);
    ReleaseHeld();
    stage_ns_[2] += (NowNs() - t2) * kSampleEvery;
  } else {
    folder_.Advance(packet.ts_us);
    ReleaseHeld();
  }
  if (packet.ts_us - last_expire_us_ >= kExpireEveryUs) Advance(packet.ts_us);
}

void Pipeline::Advance(int64_t now_us) {
  last_expire_us_ = now_us;
  clock_.now_us = now_us;
  flows_.Expire(now_us);
  defrag_.Expire(now_us);
  probe_streams_.Expire(now_us);
  folder_.Advance(now_us);
  ReleaseHeld();
  if (checks_ != nullptr) checks_->MaybeReload();
}

void Pipeline::Finish() {
  flows_.CloseAll();
  probe_streams_.CloseAll();
  folder_.FlushAll();
  // Searches still running finish first (bounded), so their findings ship.
  if (checks_ != nullptr && gate_.holding())
    checks_->Drain(std::chrono::seconds(10));
  gate_.ReleaseAll();
  stats_.events = folder_.emitted();
}

}  // namespace tokenwatch
