#include "agent/decode/defragmenter.h"

#include <algorithm>

namespace tokenwatch::decode {

void Defragmenter::Drop(absl::flat_hash_map<Key, Datagram>::iterator it) {
  total_bytes_ -= it->second.bytes;
  by_age_.erase(it->second.age);
  datagrams_.erase(it);
}

void Defragmenter::Expire(int64_t now_us) {
  while (!by_age_.empty()) {
    auto it = datagrams_.find(by_age_.front());
    if (it->second.first_us + limits_.timeout_us >= now_us) break;
    stats_->Count(tokenwatch::Drop::kFragmentTimeout);
    Drop(it);
  }
}

bool Defragmenter::Add(const IpFragment& frag, int64_t ts_us, TcpSegment* seg) {
  Expire(ts_us);
  uint64_t end = uint64_t{frag.offset} + frag.len;
  if (end > limits_.max_datagram_bytes) {
    stats_->Count(tokenwatch::Drop::kFragmentLimit);
    return false;
  }
  Key key{frag.src, frag.dst, frag.id, frag.protocol};
  auto it = datagrams_.find(key);
  if (it == datagrams_.end()) {
    if (datagrams_.size() >= limits_.max_datagrams) {
      stats_->Count(tokenwatch::Drop::kFragmentLimit);
      Drop(datagrams_.find(by_age_.front()));
    }
    it = datagrams_.emplace(key, Datagram{}).first;
    it->second.first_us = ts_us;
    it->second.age = by_age_.insert(by_age_.end(), key);
  }
  Datagram& d = it->second;
  if (!frag.more) {
    if (d.total != 0 && d.total != end)
      stats_->Count(Anomaly::kIpFragmentOverlap);
    if (d.total == 0) d.total = static_cast<uint32_t>(end);
  }
  // First copy wins: keep only the bytes no earlier fragment covered.
  uint32_t start = frag.offset;
  const uint8_t* data = frag.data;
  uint32_t stop = static_cast<uint32_t>(end);
  while (start < stop) {
    auto next = d.pieces.upper_bound(start);
    if (next != d.pieces.begin()) {
      auto prev = std::prev(next);
      uint32_t prev_end =
          prev->first + static_cast<uint32_t>(prev->second.size());
      if (prev_end > start) {
        stats_->Count(Anomaly::kIpFragmentOverlap);
        uint32_t skip = std::min(prev_end, stop) - start;
        start += skip;
        data += skip;
        continue;
      }
    }
    uint32_t piece_end = stop;
    if (next != d.pieces.end() && next->first < stop) piece_end = next->first;
    uint32_t n = piece_end - start;
    if (total_bytes_ + n > limits_.max_total_bytes) {
      stats_->Count(tokenwatch::Drop::kFragmentLimit);
      Drop(it);
      return false;
    }
    d.pieces.emplace(start,
                     std::string(reinterpret_cast<const char*>(data), n));
    d.bytes += n;
    total_bytes_ += n;
    start += n;
    data += n;
  }
  if (d.total == 0) return false;
  // Complete when the pieces cover [0, total) without a hole.
  uint32_t covered = 0;
  for (const auto& [off, bytes] : d.pieces) {
    if (off > covered) return false;
    covered =
        std::max<uint32_t>(covered, off + static_cast<uint32_t>(bytes.size()));
  }
  if (covered < d.total) return false;
  assembled_.clear();
  for (const auto& [off, bytes] : d.pieces) assembled_.append(bytes);
  assembled_.resize(d.total);
  bool tcp = frag.protocol == 6;
  seg->src = frag.src;
  seg->dst = frag.dst;
  seg->ts_us = ts_us;
  Drop(it);
  if (!tcp) return false;
  return DecodeTcp(reinterpret_cast<const uint8_t*>(assembled_.data()),
                   static_cast<uint32_t>(assembled_.size()),
                   seg) == DecodeResult::kTcp;
}

}  // namespace tokenwatch::decode
