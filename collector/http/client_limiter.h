// Per-client-address rate limit of failed API authentications: a client
// that guesses write tokens gets a 429 with Retry-After instead of an
// answer, so a guess costs a window, not a round trip.
#ifndef TOKENWATCH_COLLECTOR_HTTP_CLIENT_LIMITER_H_
#define TOKENWATCH_COLLECTOR_HTTP_CLIENT_LIMITER_H_

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"

namespace tokenwatch::collector::http {

class AuthFailureLimiter {
 public:
  // At most `max_failures` failed authentications per `window_us` from one
  // address; `max_clients` addresses are remembered (bounded memory: when
  // full, expired entries go, and a new address shares one overflow entry).
  AuthFailureLimiter(int max_failures, int64_t window_us,
                     size_t max_clients = 4096)
      : max_failures_(max_failures),
        window_us_(window_us),
        max_clients_(max_clients) {}

  // Seconds the client must wait (for Retry-After), or 0 when it may try.
  int RetryAfterSeconds(const std::string& address, int64_t now_us);
  // Counts one failed authentication of `address`.
  void RecordFailure(const std::string& address, int64_t now_us);

  size_t clients_for_testing();

 private:
  struct Entry {
    int64_t window_start_us = 0;
    int failures = 0;
  };
  Entry& EntryFor(const std::string& address, int64_t now_us)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int max_failures_;
  const int64_t window_us_;
  const size_t max_clients_;
  // std::mutex: visible to ThreadSanitizer (see api_server.h).
  std::mutex mu_;
  std::unordered_map<std::string, Entry> clients_ ABSL_GUARDED_BY(mu_);
  Entry overflow_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tokenwatch::collector::http

#endif  // TOKENWATCH_COLLECTOR_HTTP_CLIENT_LIMITER_H_
