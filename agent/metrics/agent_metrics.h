// The agent's Prometheus metrics. The pipeline thread publishes a snapshot
// of its counters now and then (never per packet); a scrape reads the
// latest snapshot under a lock and prometheus-cpp writes the exposition.
// Labels stay bounded: reasons, kinds, names, stages, never token data.
#ifndef TOKENWATCH_AGENT_METRICS_AGENT_METRICS_H_
#define TOKENWATCH_AGENT_METRICS_AGENT_METRICS_H_

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/capture/packet_source.h"
#include "agent/output/collector_sink.h"
#include "agent/stats.h"

namespace tokenwatch::metrics {

struct StageSeconds {
  double capture = 0, decode = 0, tcp_http = 0, output = 0;
};

class AgentMetrics : public prometheus::Collectable {
 public:
  explicit AgentMetrics(std::string agent_id)
      : agent_id_(std::move(agent_id)) {}

  void Publish(const AgentStats& stats, const capture::CaptureStats& capture,
               const StageSeconds& stages,
               const std::optional<output::DeliveryStats>& delivery);
  std::vector<prometheus::MetricFamily> Collect() const override;
  // A SIGHUP reload of the config file succeeded or failed.
  void CountReload(bool ok) { ++(ok ? reloads_ok_ : reloads_failed_); }

 private:
  std::string agent_id_;
  std::atomic<uint64_t> reloads_ok_{0}, reloads_failed_{0};
  mutable std::mutex mu_;
  AgentStats stats_;
  capture::CaptureStats capture_;
  StageSeconds stages_;
  std::optional<output::DeliveryStats> delivery_;
};

// Serves /metrics on `address` ("127.0.0.1:9472"; port 0 picks one).
class MetricsServer {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address,
      std::shared_ptr<prometheus::Collectable> metrics);
  int port() const;

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Collectable> metrics_;
};

}  // namespace tokenwatch::metrics

#endif  // TOKENWATCH_AGENT_METRICS_AGENT_METRICS_H_
