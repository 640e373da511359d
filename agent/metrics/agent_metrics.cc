#include "agent/metrics/agent_metrics.h"

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tokenwatch::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

class Builder {
 public:
  explicit Builder(const std::string& agent) : agent_(agent) {}

  MetricFamily& Family(const std::string& name, const std::string& help,
                       MetricType type) {
    families_.push_back({name, help, type, {}});
    return families_.back();
  }
  void Counter(MetricFamily& f, double v,
               std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric m = Metric(std::move(labels));
    m.counter.value = v;
    f.metric.push_back(std::move(m));
  }
  void Gauge(MetricFamily& f, double v,
             std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric m = Metric(std::move(labels));
    m.gauge.value = v;
    f.metric.push_back(std::move(m));
  }
  std::vector<MetricFamily> Take() { return std::move(families_); }

 private:
  ClientMetric Metric(std::vector<ClientMetric::Label> labels) {
    ClientMetric m;
    m.label.push_back({"agent", agent_});
    for (auto& l : labels) m.label.push_back(std::move(l));
    return m;
  }
  const std::string& agent_;
  std::vector<MetricFamily> families_;
};

}  // namespace

void AgentMetrics::Publish(
    const AgentStats& stats, const capture::CaptureStats& capture,
    const StageSeconds& stages,
    const std::optional<output::DeliveryStats>& delivery) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = stats;
  capture_ = capture;
  stages_ = stages;
  delivery_ = delivery;
}

std::vector<MetricFamily> AgentMetrics::Collect() const {
  std::lock_guard<std::mutex> lock(mu_);
  Builder b(agent_id_);
  const MetricType C = MetricType::Counter, G = MetricType::Gauge;
  b.Counter(b.Family("tokenwatch_agent_packets_total", "Packets captured.", C),
            stats_.packets);
  b.Counter(b.Family("tokenwatch_agent_bytes_total",
                     "Bytes captured (on the wire).", C),
            stats_.bytes);
  auto& cap =
      b.Family("tokenwatch_agent_capture_drops_total",
               "Packets dropped before the agent saw them (pcap_stats).", C);
  b.Counter(cap, capture_.kernel_dropped, {{"reason", "kernel"}});
  b.Counter(cap, capture_.iface_dropped, {{"reason", "interface"}});
  b.Gauge(b.Family("tokenwatch_agent_flows_active",
                   "TCP connections tracked now.", G),
          stats_.flows_active);
  b.Counter(b.Family("tokenwatch_agent_flows_total",
                     "TCP connections tracked since start.", C),
            stats_.flows_created);
  b.Gauge(b.Family("tokenwatch_agent_reassembly_buffered_bytes",
                   "Out-of-order TCP bytes held for reassembly, block overhead "
                   "included.",
                   G),
          stats_.reassembly_buffered_bytes);
  auto& drops =
      b.Family("tokenwatch_agent_drops_total",
               "Data given up because a bound was hit, by reason.", C);
  for (size_t i = 0; i < stats_.drops.size(); ++i) {
    auto d = static_cast<Drop>(i);
    if (d == Drop::kCaptureKernel || d == Drop::kCaptureInterface)
      continue;  // capture_drops
    b.Counter(drops, stats_.drops[i], {{"reason", DropName(d)}});
  }
  auto& http = b.Family("tokenwatch_agent_http_messages_total",
                        "HTTP messages parsed.", C);
  b.Counter(http, stats_.http_requests, {{"direction", "request"}});
  b.Counter(http, stats_.http_responses, {{"direction", "response"}});
  auto& http2 = b.Family("tokenwatch_agent_http2_messages_total",
                         "HTTP/2 requests and final responses parsed.", C);
  b.Counter(http2, stats_.http2_requests, {{"direction", "request"}});
  b.Counter(http2, stats_.http2_responses, {{"direction", "response"}});
  b.Counter(b.Family("tokenwatch_agent_grpc_requests_total",
                     "gRPC calls (HTTP/2 requests with content-type "
                     "application/grpc*).",
                     C),
            stats_.grpc_requests);
  b.Counter(b.Family("tokenwatch_agent_undecoded_bytes_total",
                     "Stream bytes no analyzer understood (skipped while "
                     "searching for a message boundary, or tunnelled).",
                     C),
            stats_.undecoded_bytes);
  auto& anomalies = b.Family("tokenwatch_agent_anomalies_total",
                             "Protocol oddities seen on the wire, by name.", C);
  for (size_t i = 0; i < stats_.anomalies.size(); ++i) {
    b.Counter(anomalies, stats_.anomalies[i],
              {{"name", AnomalyName(static_cast<Anomaly>(i))}});
  }
  auto& tokens = b.Family("tokenwatch_agent_tokens_total",
                          "Token uses found, by kind.", C);
  b.Counter(tokens, stats_.tokens[size_t(TokenKindStat::kJwt)],
            {{"kind", "jwt"}});
  b.Counter(tokens, stats_.tokens[size_t(TokenKindStat::kOpaque)],
            {{"kind", "opaque"}});
  b.Counter(tokens, stats_.tokens[size_t(TokenKindStat::kJwe)],
            {{"kind", "jwe"}});
  auto& malformed =
      b.Family("tokenwatch_agent_malformed_tokens_total",
               "Tokens that could not be fully decoded, by reason.", C);
  for (size_t i = 0; i < stats_.malformed.size(); ++i) {
    b.Counter(malformed, stats_.malformed[i],
              {{"reason", MalformedName(static_cast<Malformed>(i))}});
  }
  auto& cache = b.Family("tokenwatch_agent_token_cache_lookups_total",
                         "Decoded-token cache lookups, by result.", C);
  b.Counter(cache, stats_.token_cache_hits, {{"result", "hit"}});
  b.Counter(cache, stats_.token_cache_misses, {{"result", "miss"}});
  auto& events = b.Family("tokenwatch_agent_events_total",
                          "Usage events, by delivery state.", C);
  output::DeliveryStats d = delivery_.value_or(output::DeliveryStats{});
  b.Counter(events, delivery_ ? d.queued : stats_.events,
            {{"state", "queued"}});
  b.Counter(events, d.sent, {{"state", "sent"}});
  b.Counter(events, d.acked, {{"state", "acked"}});
  b.Counter(events, d.dropped, {{"state", "dropped"}});
  b.Counter(b.Family("tokenwatch_agent_collector_reconnects_total",
                     "Reconnections to the collector.", C),
            d.reconnects);
  b.Gauge(b.Family("tokenwatch_agent_queue_events",
                   "Events not yet acknowledged by the collector.", G),
          d.unacked_events);
  b.Gauge(
      b.Family("tokenwatch_agent_delivery_lag_seconds",
               "Age of the oldest event not yet acknowledged by the collector.",
               G),
      d.oldest_unacked_age_seconds);
  auto& stages =
      b.Family("tokenwatch_agent_stage_seconds_total",
               "CPU time spent per stage of the data path (sampled).", C);
  b.Counter(stages, stages_.capture, {{"stage", "capture"}});
  b.Counter(stages, stages_.decode, {{"stage", "decode"}});
  b.Counter(stages, stages_.tcp_http, {{"stage", "tcp_http"}});
  b.Counter(stages, stages_.output, {{"stage", "output"}});
  auto& reloads = b.Family(
      "tokenwatch_agent_config_reloads_total",
      "Config reloads on SIGHUP, by result (a failure keeps the old config).",
      C);
  b.Counter(reloads, reloads_ok_.load(), {{"result", "success"}});
  b.Counter(reloads, reloads_failed_.load(), {{"result", "failure"}});
  return b.Take();
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address,
    std::shared_ptr<prometheus::Collectable> metrics) {
  auto server = std::make_unique<MetricsServer>();
  try {
    server->exposer_ =
        std::make_unique<prometheus::Exposer>(address, /*num_threads=*/1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  server->metrics_ = std::move(metrics);
  server->exposer_->RegisterCollectable(server->metrics_);
  return server;
}

int MetricsServer::port() const {
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace tokenwatch::metrics
