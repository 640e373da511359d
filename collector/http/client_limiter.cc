#include "collector/http/client_limiter.h"

namespace tokenwatch::collector::http {

AuthFailureLimiter::Entry& AuthFailureLimiter::EntryFor(
    const std::string& address, int64_t now_us) {
  auto it = clients_.find(address);
  if (it != clients_.end()) return it->second;
  if (clients_.size() >= max_clients_) {
    for (auto i = clients_.begin(); i != clients_.end();) {
      i = now_us - i->second.window_start_us >= window_us_ ? clients_.erase(i)
                                                           : std::next(i);
    }
  }
  // Still full: many addresses failing at once share one budget, which
  // errs toward refusing (a token guesser spread over many addresses).
  if (clients_.size() >= max_clients_) return overflow_;
  return clients_[address];
}

int AuthFailureLimiter::RetryAfterSeconds(const std::string& address,
                                          int64_t now_us) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = clients_.find(address);
  const Entry* e = it != clients_.end()              ? &it->second
                   : clients_.size() >= max_clients_ ? &overflow_
                                                     : nullptr;
  if (e == nullptr || e->failures < max_failures_) return 0;
  int64_t left_us = e->window_start_us + window_us_ - now_us;
  if (left_us <= 0) return 0;
  return static_cast<int>((left_us + 999'999) / 1'000'000);
}

void AuthFailureLimiter::RecordFailure(const std::string& address,
                                       int64_t now_us) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = EntryFor(address, now_us);
  if (now_us - e.window_start_us >= window_us_) {
    e.window_start_us = now_us;
    e.failures = 0;
  }
  ++e.failures;
}

size_t AuthFailureLimiter::clients_for_testing() {
  std::lock_guard<std::mutex> lock(mu_);
  return clients_.size();
}

}  // namespace tokenwatch::collector::http
