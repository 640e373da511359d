#include "agent/tcp/flow_table.h"

#include <cstring>

namespace tokenwatch::tcp {
namespace {
constexpr int64_t kLruGranularityUs = 1'000'000;
}  // namespace

FlowKey FlowKey::Of(const decode::TcpSegment& seg) {
  FlowKey k;
  int c = std::memcmp(seg.src.bytes, seg.dst.bytes, 16);
  bool src_low = c < 0 || (c == 0 && seg.src_port <= seg.dst_port);
  if (src_low) {
    k.lo_ip = seg.src, k.lo_port = seg.src_port;
    k.hi_ip = seg.dst, k.hi_port = seg.dst_port;
  } else {
    k.lo_ip = seg.dst, k.lo_port = seg.dst_port;
    k.hi_ip = seg.src, k.hi_port = seg.src_port;
  }
  return k;
}

Flow::Flow(const decode::TcpSegment& first,
           analyzer::StreamHandlerFactory* analyzers, ReassemblyBudget* budget,
           AgentStats* stats)
    : key(FlowKey::Of(first)),
      ip0_(first.src),
      port0_(first.src_port),
      ip1_(first.dst),
      port1_(first.dst_port),
      analyzers_(analyzers),
      reasm_{StreamReassembler(&sinks_[0], budget, stats),
             StreamReassembler(&sinks_[1], budget, stats)} {
  for (int d = 0; d < 2; ++d) {
    sinks_[d].flow = this;
    sinks_[d].dir = d;
  }
}

analyzer::StreamHandler& Flow::Handler() {
  if (handler_ == nullptr) {
    handler_ = analyzers_->Create(analyzer::Endpoint{ip0_.ToString(), port0_},
                                  analyzer::Endpoint{ip1_.ToString(), port1_});
    if (client_dir_ >= 0) handler_->SetClientSide(client_dir_);
  }
  return *handler_;
}

void Flow::SetClientSide(int dir) {
  if (client_dir_ >= 0) return;
  client_dir_ = dir;
  if (handler_ != nullptr) handler_->SetClientSide(dir);
}

void Flow::Direction::OnData(const uint8_t* data, size_t len) {
  analyzer::StreamHandler& handler = flow->Handler();
  if (!resync_checked) {
    resync_checked = true;
    // Picked up mid-connection: find the next message start first.
    if (flow->reasm_[dir].picked_up_midstream()) handler.StartResync(dir);
  }
  handler.OnData(dir, data, len);
}

void Flow::Direction::OnGap(uint64_t len) {
  resync_checked = true;
  flow->Handler().OnGap(dir, len);
}

Flow::Verdict Flow::OnSegment(const decode::TcpSegment& seg) {
  int dir = (seg.src_port == port0_ && seg.src == ip0_) ? 0 : 1;
  uint8_t f = seg.flags;
  if ((f & decode::kTcpSyn) && !(f & decode::kTcpAck) &&
      reasm_[dir].IsNewConnection(seg.seq)) {
    return Verdict::kNewConnection;  // port reuse: the old connection is over
  }
  if (f & decode::kTcpSyn) {
    reasm_[dir].OnSyn(seg.seq);
    SetClientSide((f & decode::kTcpAck) ? 1 - dir : dir);
    if (seg.payload_len > 0) {
      // TCP Fast Open: data on the SYN starts one past the ISN.
      reasm_[dir].OnSegment(seg.seq + 1, seg.payload, seg.payload_len);
    }
  } else if (seg.payload_len > 0) {
    reasm_[dir].OnSegment(seg.seq, seg.payload, seg.payload_len);
  }
  if (f & decode::kTcpAck) reasm_[1 - dir].OnPeerAck(seg.ack);
  if (f & decode::kTcpRst) return Verdict::kClosed;
  if (f & decode::kTcpFin) fin_[dir] = true;
  return fin_[0] && fin_[1] ? Verdict::kClosed : Verdict::kOpen;
}

void Flow::Close() {
  if (closed_) return;
  closed_ = true;
  reasm_[0].Flush();
  reasm_[1].Flush();
  if (handler_ != nullptr) handler_->Close();
}

void FlowTable::Remove(Flow* flow) {
  flow->Close();
  lru_.erase(flow->lru);
  FlowKey key = flow->key;  // the flow (and its key) dies in erase
  flows_.erase(key);
}

void FlowTable::OnSegment(const decode::TcpSegment& seg) {
  FlowKey key = FlowKey::Of(seg);
  auto it = flows_.find(key);
  Flow* flow;
  if (it == flows_.end()) {
    // Bare ACKs and stray FIN/RSTs do not open a flow: nothing to parse.
    if (seg.payload_len == 0 && !(seg.flags & decode::kTcpSyn)) return;
    if (flows_.size() >= max_flows_ && !lru_.empty()) {
      stats_->Count(Drop::kFlowTableFull);
      Remove(lru_.front());
    }
    auto owned = std::make_unique<Flow>(seg, analyzers_, budget_, stats_);
    flow = owned.get();
    flows_.emplace(key, std::move(owned));
    flow->lru = lru_.insert(lru_.end(), flow);
    flow->queued_ts_us = seg.ts_us;
    ++stats_->flows_created;
  } else {
    flow = it->second.get();
    // LRU order to within kLruGranularityUs: a busy flow moves to the back
    // once per interval, not on every packet.
    if (seg.ts_us - flow->queued_ts_us >= kLruGranularityUs) {
      lru_.splice(lru_.end(), lru_, flow->lru);
      flow->queued_ts_us = seg.ts_us;
    }
  }
  flow->last_ts_us = seg.ts_us;
  switch (flow->OnSegment(seg)) {
    case Flow::Verdict::kOpen:
      return;
    case Flow::Verdict::kClosed:
      ++stats_->flows_closed;
      Remove(flow);
      return;
    case Flow::Verdict::kNewConnection:
      ++stats_->flows_closed;
      Remove(flow);
      OnSegment(seg);  // opens the new flow (once: its reassemblers are fresh)
      return;
  }
}

void FlowTable::Expire(int64_t now_us) {
  while (!lru_.empty() &&
         lru_.front()->last_ts_us + idle_timeout_us_ < now_us) {
    ++stats_->flows_timed_out;
    Remove(lru_.front());
  }
}

void FlowTable::CloseAll() {
  while (!lru_.empty()) Remove(lru_.front());
}

}  // namespace tokenwatch::tcp
