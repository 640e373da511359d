#include "agent/tcp/reassembler.h"

#include <algorithm>
#include <cstring>

namespace tokenwatch::tcp {
namespace {
constexpr uint64_t k2To32 = uint64_t{1} << 32;
constexpr uint64_t k2To31 = uint64_t{1} << 31;
// Data further ahead than this is not part of this stream's window.
constexpr uint64_t kMaxAhead = uint64_t{1} << 30;

}  // namespace

void StreamReassembler::OnSyn(uint32_t isn) {
  if (started_) return;  // SYN retransmission or a SYN after pick-up
  started_ = true;
  base_ = isn + 1;
  next_ = 0;
}

uint64_t StreamReassembler::Relative(uint32_t seq) const {
  // Unwrap the 32-bit offset to the 64-bit value nearest to next_.
  uint32_t off = seq - base_;
  uint64_t cand = (next_ & ~(k2To32 - 1)) | off;
  if (cand + k2To31 < next_) {
    cand += k2To32;
  } else if (cand > next_ + k2To31 && cand >= k2To32) {
    cand -= k2To32;
  }
  return cand;
}

void StreamReassembler::OnSegment(uint32_t seq, const uint8_t* data,
                                  size_t len) {
  if (len == 0) return;
  if (!started_) {
    started_ = true;
    midstream_ = true;
    base_ = seq;
    next_ = 0;
    stats_->Count(Anomaly::kTcpMidstreamPickup);
  }
  Accept(Relative(seq), data, len);
}

void StreamReassembler::Accept(uint64_t start, const uint8_t* data,
                               size_t len) {
  uint64_t end = start + len;
  if (end <= next_) {
    stats_->Count(Anomaly::kTcpRetransmission);
    return;
  }
  if (start < next_) {  // overlaps the tail of what was delivered
    data += next_ - start;
    start = next_;
  }
  if (start - next_ > kMaxAhead) {
    stats_->Count(Anomaly::kTcpSeqOutOfWindow);
    return;
  }
  if (start == next_) {
    // In order. Bytes up to the first held block go straight from the
    // packet; held (earlier) copies of later bytes win, as on overlap.
    uint64_t direct_end = end;
    if (!blocks_.empty() && blocks_.begin()->first < end)
      direct_end = blocks_.begin()->first;
    size_t n = static_cast<size_t>(direct_end - start);
    next_ = direct_end;
    Deliver(data, n);
    if (direct_end == end) {
      if (!blocks_.empty()) Drain();
      return;
    }
    data += n;
    start = direct_end;
  }
  // Out of order (or the part of an in-order segment past a held block).
  // A cap hit gives up the oldest hole and tries again: a loop, never
  // recursion, since a hostile flow can hold a quarter of a million blocks.
  while (!Insert(start, data, static_cast<size_t>(end - start))) {
    if (end <= next_) return;
    if (start < next_) {
      data += next_ - start;
      start = next_;
    }
  }
  if (!blocks_.empty() && blocks_.begin()->first <= next_) Drain();
}

bool StreamReassembler::Insert(uint64_t start, const uint8_t* data,
                               size_t len) {
  uint64_t end = start + len;
  // First copy wins: cut the new segment around blocks already held.
  auto it = blocks_.upper_bound(start);
  if (it != blocks_.begin()) {
    auto prev = std::prev(it);
    uint64_t prev_end = prev->first + prev->second.size();
    if (prev_end > start) {
      uint64_t common = std::min(prev_end, end) - start;
      if (std::memcmp(prev->second.data() + (start - prev->first), data,
                      common) != 0) {
        stats_->Count(Anomaly::kTcpOverlapInconsistent);
      }
      if (prev_end >= end) {
        stats_->Count(Anomaly::kTcpRetransmission);
        return true;
      }
      data += common;
      start = prev_end;
    }
  }
  while (start < end) {
    it = blocks_.lower_bound(start);
    uint64_t piece_end = end;
    if (it != blocks_.end() && it->first < end) piece_end = it->first;
    if (piece_end > start) {
      uint64_t n = piece_end - start;
      uint64_t cost = n + kBlockOverhead;
      bool over_flow = buffered_ + cost > budget_->flow_cap;
      if (over_flow || budget_->used + cost > budget_->global_cap) {
        Drop why =
            over_flow ? Drop::kReassemblyFlowCap : Drop::kReassemblyGlobalCap;
        if (blocks_.empty()) {
          stats_->Count(why, end - start);  // nothing of ours to give up
          return true;
        }
        // Give up the oldest hole: deliver what is held; the caller retries.
        stats_->Count(why, blocks_.begin()->first - next_);
        SkipToFirstBlock();
        return false;
      }
      blocks_.emplace(start,
                      std::string(reinterpret_cast<const char*>(data), n));
      Charge(static_cast<int64_t>(cost));
    }
    if (it == blocks_.end() || it->first >= end) break;
    // Skip over the existing block, checking the overlap for consistency.
    uint64_t blk_end = it->first + it->second.size();
    uint64_t ov_end = std::min(blk_end, end);
    uint64_t ov_len = ov_end - it->first;
    if (std::memcmp(it->second.data(), data + (it->first - start), ov_len) !=
        0) {
      stats_->Count(Anomaly::kTcpOverlapInconsistent);
    }
    data += ov_end - start;
    start = ov_end;
  }
  return true;
}

void StreamReassembler::Drain() {
  while (!blocks_.empty()) {
    auto it = blocks_.begin();
    if (it->first > next_) break;
    uint64_t blk_end = it->first + it->second.size();
    if (blk_end > next_) {
      uint64_t skip = next_ - it->first;
      next_ = blk_end;
      Deliver(reinterpret_cast<const uint8_t*>(it->second.data()) + skip,
              it->second.size() - skip);
    }
    Charge(-static_cast<int64_t>(it->second.size() + kBlockOverhead));
    blocks_.erase(it);
  }
}

void StreamReassembler::SkipToFirstBlock() {
  if (blocks_.empty()) return;
  uint64_t first = blocks_.begin()->first;
  if (first > next_) {
    sink_->OnGap(first - next_);
    next_ = first;
  }
  Drain();
}

void StreamReassembler::OnPeerAck(uint32_t ack) {
  if (!started_) return;
  uint64_t acked = Relative(ack);
  if (acked <= next_ || acked - next_ > kMaxAhead) return;
  // The receiver has bytes [next_, acked) we never saw. Only act when data
  // beyond the hole is already held: an ACK seen a moment before its data
  // (capture reordering on `any`) must not discard that data.
  if (!blocks_.empty() && blocks_.begin()->first <= acked) SkipToFirstBlock();
}

void StreamReassembler::Flush() {
  while (!blocks_.empty()) SkipToFirstBlock();
}

void StreamReassembler::Release() {
  Charge(-static_cast<int64_t>(buffered_));
  blocks_.clear();
}

void StreamReassembler::Charge(int64_t bytes) {
  buffered_ += bytes;
  budget_->used += bytes;
}

}  // namespace tokenwatch::tcp
