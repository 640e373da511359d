#include "agent/output/event_folder.h"

#include "absl/strings/str_cat.h"

namespace tokenwatch::output {

std::string EventFolder::KeyOf(const v1::UsageEvent& e) {
  char status[8];
  snprintf(status, sizeof status, "%u", e.status());
  return absl::StrCat(e.token().fp(), "\x1f", e.service(), "\x1f", e.method(),
                      "\x1f", e.path(), "\x1f", e.client(), "\x1f", e.server(),
                      "\x1f", status, "\x1f", static_cast<int>(e.location()),
                      "\x1f", e.param());
}

bool EventFolder::CanFold(const v1::UsageEvent& open, int64_t ts_us) const {
  if (ts_us < open.ts_us() || ts_us - open.ts_us() > window_us_) return false;
  // Never fold across a validity boundary: one side may be a violation.
  const v1::TokenInfo& t = open.token();
  auto crosses = [&](int64_t boundary_s) {
    int64_t b = boundary_s * 1000000;
    return (open.ts_us() < b) != (ts_us < b);
  };
  if (t.has_exp() && crosses(t.exp())) return false;
  if (t.has_nbf() && crosses(t.nbf())) return false;
  return true;
}

void EventFolder::Add(v1::UsageEvent&& use) {
  if (window_us_ <= 0) {
    Emit(use);
    return;
  }
  std::string key = KeyOf(use);
  auto it = open_.find(key);
  if (it != open_.end()) {
    v1::UsageEvent& e = it->second.event;
    if (CanFold(e, use.ts_us())) {
      e.set_count(e.count() + 1);
      if (use.ts_us() > e.last_ts_us()) e.set_last_ts_us(use.ts_us());
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
  order_.emplace_back(key, gen);
  open_.emplace(std::move(key), Open{std::move(use), gen});
}

void EventFolder::Advance(int64_t now_us) {
  while (!order_.empty()) {
    auto& [key, gen] = order_.front();
    auto it = open_.find(key);
    if (it == open_.end() || it->second.generation != gen) {
      order_.pop_front();  // already emitted
      continue;
    }
    if (it->second.event.ts_us() + window_us_ >= now_us) break;
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
