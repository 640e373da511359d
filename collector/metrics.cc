#include "collector/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

#include "common/alert_type.h"

namespace tokenwatch::collector {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

ClientMetric Counter(double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = v;
  return m;
}

ClientMetric Gauge(double v) {
  ClientMetric m;
  m.gauge.value = v;
  return m;
}

}  // namespace

std::vector<MetricFamily> CollectorMetrics::Collect() const {
  std::vector<MetricFamily> out;
  const MetricType C = MetricType::Counter, G = MetricType::Gauge;
  with_engine_([&](const Engine& engine) {
    const EngineStats& st = engine.stats();
    MetricFamily events{"tokenwatch_collector_events_received_total",
                        "Usage events received and applied, by agent.",
                        C,
                        {}};
    for (const auto& [agent, n] : st.events_by_agent)
      events.metric.push_back(Counter(n, {{"agent", agent}}));
    out.push_back(std::move(events));
    MetricFamily batches{"tokenwatch_collector_batches_total",
                         "Event batches applied, by agent.",
                         C,
                         {}};
    for (const auto& [agent, n] : st.batches_by_agent)
      batches.metric.push_back(Counter(n, {{"agent", agent}}));
    out.push_back(std::move(batches));
    out.push_back({"tokenwatch_collector_duplicate_batches_total",
                   "Batches received again after a reconnect and dropped "
                   "(already stored).",
                   C,
                   {Counter(st.duplicate_batches)}});
    out.push_back(
        {"tokenwatch_collector_config_reloads_total",
         "Config reloads on SIGHUP, by result (a failure keeps the old "
         "config).",
         C,
         {Counter(st.config_reloads_ok, {{"result", "success"}}),
          Counter(st.config_reloads_failed, {{"result", "failure"}})}});
    out.push_back({"tokenwatch_collector_tokens_tracked",
                   "Token identities tracked now.",
                   G,
                   {Gauge(engine.tokens().size())}});
    out.push_back({"tokenwatch_collector_token_bytes_per_token",
                   "Collector memory per tracked token, in bytes.",
                   G,
                   {Gauge(engine.tokens().bytes_per_token())}});
    MetricFamily uses{"tokenwatch_collector_token_uses_total",
                      "Token uses, by service and response status class.",
                      C,
                      {}};
    static constexpr const char* kClass[] = {"none", "1xx", "2xx",
                                             "3xx",  "4xx", "5xx"};
    for (const auto& [service, by_class] : st.uses_by_service) {
      for (size_t i = 0; i < by_class.size(); ++i) {
        if (by_class[i] == 0) continue;
        uses.metric.push_back(Counter(
            by_class[i], {{"service", service}, {"status_class", kClass[i]}}));
      }
    }
    out.push_back(std::move(uses));
    MetricFamily alerts{"tokenwatch_collector_alerts_total",
                        "Alerting token uses (first occurrences and repeats), "
                        "by type, severity and service.",
                        C,
                        {}};
    for (const auto& [service, by_type] : st.alerts_by_service) {
      for (AlertType type : AllAlertTypes()) {
        const auto& by_severity = by_type[static_cast<size_t>(type)];
        for (size_t s = 0; s < kSeverityCount; ++s) {
          if (by_severity[s] == 0) continue;
          alerts.metric.push_back(Counter(
              by_severity[s], {{"type", std::string(AlertTypeName(type))},
                               {"severity", std::string(SeverityName(
                                                static_cast<Severity>(s)))},
                               {"service", service}}));
        }
      }
    }
    out.push_back(std::move(alerts));
    MetricFamily expired{"tokenwatch_collector_expired_uses_total",
                         "Uses of expired tokens, by service and whether the "
                         "service accepted them.",
                         C,
                         {}};
    static constexpr const char* kAccepted[] = {"unknown", "true", "false"};
    for (const auto& [service, by_accepted] : st.expired_uses) {
      for (size_t i = 0; i < by_accepted.size(); ++i) {
        if (by_accepted[i] == 0) continue;
        expired.metric.push_back(
            Counter(by_accepted[i],
                    {{"service", service}, {"accepted", kAccepted[i]}}));
      }
    }
    out.push_back(std::move(expired));
    MetricFamily detectors{"tokenwatch_collector_detector_seconds_total",
                           "Time spent in each detector (sampled).",
                           C,
                           {}};
    for (const auto& [name, secs] : st.detector_seconds) {
      detectors.metric.push_back(Counter(secs, {{"detector", name}}));
    }
    out.push_back(std::move(detectors));
    ClientMetric h;
    h.histogram.sample_count = st.commits + st.commit_failures;
    h.histogram.sample_sum = st.commit_seconds_sum;
    for (size_t i = 0; i < st.commit_buckets.size(); ++i) {
      h.histogram.bucket.push_back(
          {st.commit_buckets[i], EngineStats::kCommitBounds[i]});
    }
    h.histogram.bucket.push_back(
        {h.histogram.sample_count, std::numeric_limits<double>::infinity()});
    out.push_back({"tokenwatch_collector_store_commit_seconds",
                   "Latency of store commits (one per group of batches).",
                   MetricType::Histogram,
                   {h}});
    out.push_back({"tokenwatch_collector_store_commit_failures_total",
                   "Store commits that failed (retried; nothing is "
                   "acknowledged meanwhile).",
                   C,
                   {Counter(st.commit_failures)}});
  });
  out.push_back({"tokenwatch_collector_open_streams",
                 "Agent streams open now.",
                 G,
                 {Gauge(open_streams_())}});
  // Hostile clients: ingest (docs/metrics.md, docs/security.md).
  {
    IngestCounters ic;
    if (ingest_counters_) ic = ingest_counters_();
    // The counters only (the per-service maps stay where they are).
    struct {
      uint64_t events_refused_future, events_refused_bad_time,
          batches_out_of_order, tokens_evicted, services_over_cap,
          alerts_over_cap;
    } st{};
    with_engine_([&](const Engine& engine) {
      const EngineStats& e = engine.stats();
      st = {e.events_refused_future, e.events_refused_bad_time,
            e.batches_out_of_order,  e.tokens_evicted,
            e.services_over_cap,     e.alerts_over_cap};
    });
    out.push_back(
        {"tokenwatch_collector_ingest_refused_total",
         "What ingest refused, by reason (future_time, bad_time, "
         "out_of_order, agent_not_in_certificate, too_many_streams, "
         "idle_stream, over_budget).",
         C,
         {Counter(st.events_refused_future, {{"reason", "future_time"}}),
          Counter(st.events_refused_bad_time, {{"reason", "bad_time"}}),
          Counter(st.batches_out_of_order, {{"reason", "out_of_order"}}),
          Counter(ic.hellos_denied, {{"reason", "agent_not_in_certificate"}}),
          Counter(ic.streams_refused, {{"reason", "too_many_streams"}}),
          Counter(ic.streams_idle_closed, {{"reason", "idle_stream"}}),
          Counter(ic.over_budget, {{"reason", "over_budget"}})}});
    out.push_back(
        {"tokenwatch_collector_limit_overflows_total",
         "Things dropped or cut at a collector.limits bound, by limit.",
         C,
         {Counter(st.tokens_evicted, {{"limit", "max_tokens"}}),
          Counter(st.services_over_cap, {{"limit", "max_services_per_token"}}),
          Counter(st.alerts_over_cap, {{"limit", "max_alerts_per_token"}}),
          Counter(ic.strings_cut, {{"limit", "max_string_bytes"}}),
          Counter(ic.budget_waits, {{"limit", "max_inflight_bytes"}})}});
    out.push_back({"tokenwatch_collector_ingest_inflight_bytes",
                   "Bytes of batches read and not yet acknowledged, all "
                   "streams (bounded by collector.limits.max_inflight_bytes).",
                   G,
                   {Gauge(static_cast<double>(ic.inflight_bytes))}});
  }
  MetricFamily deliveries{
      "tokenwatch_collector_alert_deliveries_total",
      "Alert deliveries to Alertmanager and webhooks, by result.",
      C,
      {}};
  for (const DeliveryCounters& d : deliveries_()) {
    deliveries.metric.push_back(
        Counter(d.value, {{"sink", d.sink}, {"result", d.result}}));
  }
  out.push_back(std::move(deliveries));
  return out;
}

std::string CollectorMetrics::Text() const {
  prometheus::TextSerializer serializer;
  std::ostringstream os;
  serializer.Serialize(os, Collect());
  return os.str();
}

}  // namespace tokenwatch::collector
