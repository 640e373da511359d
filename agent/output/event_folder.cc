#include "agent/output/event_folder.h"

#include <cstdio>

namespace tokenwatch::output {

void EventFolder::BuildKey(const UsageRecord& e) {
  const RequestInfo& r = *e.request;
  key_buf_.clear();
  for (const std::string* s : {&e.token->fp(), &r.service, &r.method, &r.path,
                               &r.client, &r.server, &e.param}) {
    key_buf_.append(*s);
    key_buf_.push_back('\x1f');
  }
  char tail[16];
  int n = snprintf(tail, sizeof tail, "%u|%d", e.status, static_cast<int>(e.location));
  key_buf_.append(tail, n);
}

bool EventFolder::CanFold(const UsageRecord& open, int64_t ts_us) const {
  if (ts_us < open.ts_us || ts_us - open.ts_us > window_us_) return false;
  // Never fold across a validity boundary: one side may be a violation.
  const v1::TokenInfo& t = *open.token;
  auto crosses = [&](int64_t boundary_s) {
    int64_t b = boundary_s * 1000000;
    return (open.ts_us < b) != (ts_us < b);
  };
  if (t.has_exp() && crosses(t.exp())) return false;
  if (t.has_nbf() && crosses(t.nbf())) return false;
  return true;
}

void EventFolder::Add(UsageRecord&& use) {
  if (window_us_ <= 0) {
    Emit(use);
    return;
  }
  BuildKey(use);
  auto it = open_.find(absl::string_view(key_buf_));
  if (it != open_.end()) {
    UsageRecord& e = it->second.event;
    if (CanFold(e, use.ts_us)) {
      ++e.count;
      if (use.ts_us > e.last_ts_us) e.last_ts_us = use.ts_us;
      return;
    }
    Emit(e);
    open_.erase(it);
  }
  if (open_.size() >= max_open_) {
    // Bounded: close the oldest fold early (it is emitted, not lost).
    while (!order_.empty()) {
      auto [k, gen] = order_.front();
      order_.pop_front();
      auto o = open_.find(k);
      if (o != open_.end() && o->second.generation == gen) {
        Emit(o->second.event);
        open_.erase(o);
        break;
      }
    }
  }
  uint64_t gen = next_generation_++;
  order_.emplace_back(key_buf_, gen);
  open_.emplace(key_buf_, Open{std::move(use), gen});
}

void EventFolder::Advance(int64_t now_us) {
  while (!order_.empty()) {
    auto& [key, gen] = order_.front();
    auto it = open_.find(key);
    if (it == open_.end() || it->second.generation != gen) {
      order_.pop_front();  // already emitted
      continue;
    }
    if (it->second.event.ts_us + window_us_ >= now_us) break;
    Emit(it->second.event);
    open_.erase(it);
    order_.pop_front();
  }
}

void EventFolder::FlushAll() {
  for (auto& [key, gen] : order_) {
    auto it = open_.find(key);
    if (it != open_.end() && it->second.generation == gen) {
      Emit(it->second.event);
      open_.erase(it);
    }
  }
  order_.clear();
  open_.clear();
}

}  // namespace tokenwatch::output
