#include "agent/output/event_folder.h"

#include <cstdint>
#include <cstdio>

namespace tokenwatch::output {
namespace {

int64_t FloorSeconds(int64_t us) {
  return us >= 0 ? us / 1000000 : (us - 999999) / 1000000;
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

}  // namespace

void EventFolder::BuildKey(const UsageRecord& e) {
  const RequestInfo& r = *e.request;
  key_buf_.clear();
  for (const std::string* s : {&e.token->info.fp(), &r.service, &r.method,
                               &r.path, &r.client, &r.server, &e.param,
                               &r.protocol, &r.source}) {
    key_buf_.append(*s);
    key_buf_.push_back('\x1f');
  }
  char tail[48];
  int n = snprintf(tail, sizeof tail, "%u|%d|%lld", e.status,
                   static_cast<int>(e.location),
                   e.grpc_status.has_value()
                       ? static_cast<long long>(*e.grpc_status)
                       : -1LL);
  key_buf_.append(tail, n);
}

bool EventFolder::CanFold(const UsageRecord& open, int64_t ts_us) const {
  if (ts_us < open.ts_us || ts_us - open.ts_us > window_us_) return false;
  // Never fold across a validity boundary (leeway included): one side may
  // be a violation. Compared in seconds, so hostile claims cannot overflow.
  const v1::TokenInfo& t = open.token->info;
  int64_t a = FloorSeconds(open.ts_us), b = FloorSeconds(ts_us);
  auto crosses = [&](int64_t boundary_s) {
    // "Before the boundary" is ts < boundary, i.e. floor(ts) < boundary.
    return (a < boundary_s) != (b < boundary_s);
  };
  if (t.has_exp() && crosses(SaturatingAdd(t.exp(), leeway_s_))) return false;
  if (t.has_exp() && crosses(t.exp())) return false;
  if (t.has_nbf() && crosses(SaturatingAdd(t.nbf(), -leeway_s_))) return false;
  if (t.has_nbf() && crosses(t.nbf())) return false;
  if (t.has_iat() && crosses(SaturatingAdd(t.iat(), -leeway_s_))) return false;
  return true;
}

void EventFolder::Add(UsageRecord&& use) {
  if (window_us_ <= 0) {
    Emit(use);
    return;
  }
  BuildKey(use);
  auto it = index_.find(absl::string_view(key_buf_));
  if (it != index_.end()) {
    UsageRecord& e = open_[it->second];
    // The anchor is the key's first use (count 0: only it was seen, and it
    // went out already) or the first folded repeat.
    if (CanFold(e, use.ts_us)) {
      if (e.count == 0) e.ts_us = use.ts_us;
      ++e.count;
      if (use.ts_us > e.last_ts_us) e.last_ts_us = use.ts_us;
      return;
    }
    // Across a boundary: close the fold and start again from this use.
    if (e.count > 0) Emit(e);
    Emit(use);
    e = std::move(use);
    e.count = 0;
    return;
  }
  if (open_.size() >= max_open_) FlushAll();
  if (open_.empty()) window_end_us_ = SaturatingAdd(use.ts_us, window_us_);
  Emit(use);
  index_.emplace(key_buf_, open_.size());
  UsageRecord& anchor = open_.emplace_back(std::move(use));
  anchor.count = 0;
}

void EventFolder::FlushAll() {
  for (const UsageRecord& e : open_) {
    if (e.count > 0) Emit(e);  // folded repeats; first uses went out at once
  }
  open_.clear();
  index_.clear();
}

}  // namespace tokenwatch::output
