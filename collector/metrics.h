// The collector's Prometheus metrics, read from the engine under its lock
// at scrape time and written by prometheus-cpp's text serializer. Labels
// are bounded: agents, services, alert types and severities, detectors.
#ifndef TOKENWATCH_COLLECTOR_METRICS_H_
#define TOKENWATCH_COLLECTOR_METRICS_H_

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <string>
#include <vector>

#include "collector/engine.h"
#include "collector/ingest/ingest_service.h"

namespace tokenwatch::collector {

struct DeliveryCounters {
  std::string sink;    // alertmanager | webhook
  std::string result;  // ok | retry | dropped
  uint64_t value = 0;
};

class CollectorMetrics : public prometheus::Collectable {
 public:
  // `with_engine` runs its argument on the engine under the engine's lock.
  using EngineAccess =
      std::function<void(const std::function<void(const Engine&)>&)>;
  CollectorMetrics(EngineAccess with_engine, std::function<int()> open_streams,
                   std::function<std::vector<DeliveryCounters>()> deliveries)
      : with_engine_(std::move(with_engine)),
        open_streams_(std::move(open_streams)),
        deliveries_(std::move(deliveries)) {}

  std::vector<prometheus::MetricFamily> Collect() const override;
  // The exposition text for GET /metrics.
  std::string Text() const;
  // Hostile-client refusals and caps of the ingest service (optional).
  void SetIngestCounters(std::function<IngestCounters()> fn) {
    ingest_counters_ = std::move(fn);
  }

 private:
  EngineAccess with_engine_;
  std::function<int()> open_streams_;
  std::function<std::vector<DeliveryCounters>()> deliveries_;
  std::function<IngestCounters()> ingest_counters_;
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_METRICS_H_
