// Delivers alerts to Alertmanager (API v2) and to generic JSON webhooks
// signed with HMAC-SHA256, from a worker thread, with retries and
// exponential backoff. The retry queue is bounded: what does not fit, or
// runs out of attempts, is dropped and counted.
#ifndef TOKENWATCH_COLLECTOR_NOTIFY_NOTIFIER_H_
#define TOKENWATCH_COLLECTOR_NOTIFY_NOTIFIER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/metrics.h"
#include "collector/model.h"
#include "common/config.h"

namespace tokenwatch::collector {

// The Alertmanager v2 body for one alert: labels alertname, type,
// severity, service, token (the fp); annotations from the alert record;
// startsAt = the observation time, endsAt = startsAt + resolve_after.
std::string AlertmanagerBody(const Alert& a, absl::Duration resolve_after);
// "sha256=" + hex HMAC-SHA256(secret, body): the X-Tokenwatch-Signature header.
std::string WebhookSignature(const std::string& secret,
                             const std::string& body);

class Notifier {
 public:
  struct Options {
    size_t max_queue = 10000;
    int max_attempts = 8;
    std::chrono::milliseconds backoff_initial{500};
    std::chrono::milliseconds backoff_max{30000};
    std::chrono::milliseconds timeout{5000};
  };
  static absl::StatusOr<std::unique_ptr<Notifier>> Create(
      const config::Collector& config, Options options);
  ~Notifier();

  bool enabled() const { return !sinks_.empty(); }
  void Enqueue(const Alert& alert);
  std::vector<DeliveryCounters> Counters() const;
  // Waits until the queue is empty or `timeout` passes (tests, shutdown).
  bool WaitIdle(std::chrono::milliseconds timeout);

 private:
  struct Sink {
    std::string name;  // alertmanager | webhook
    std::string url;
    std::string secret;  // webhooks
    absl::Duration resolve_after;
    uint64_t ok = 0, retry = 0, dropped = 0;
  };
  struct Job {
    size_t sink;
    std::string body;
    int attempts = 0;
    std::chrono::steady_clock::time_point due;
  };
  Notifier(Options options) : opt_(options) {}
  void Run();
  bool Post(const Sink& sink, const std::string& body, std::string* error);

  Options opt_;
  std::vector<Sink> sinks_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  size_t in_flight_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_NOTIFY_NOTIFIER_H_
