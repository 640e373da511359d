#include "agent/reload.h"

#include "absl/strings/str_cat.h"

namespace tokenwatch {

config::Config MergeAgentReloadable(const config::Config& running,
                                    const config::Config& previous_file,
                                    const config::Config& loaded,
                                    std::vector<std::string>* restart_keys) {
  config::Config next = running;
  next.services = loaded.services;
  next.issuers = loaded.issuers;
  next.sensitive_endpoints = loaded.sensitive_endpoints;  // collector's
  next.detections.weak_secrets_file = loaded.detections.weak_secrets_file;
  next.detections.default_max_lifetime = loaded.detections.default_max_lifetime;
  next.agent.token_headers = loaded.agent.token_headers;
  if (restart_keys == nullptr) return next;
  // File against file: a flag given on the command line is no change.
  const config::Config& p = previous_file;
  const config::Agent& a = p.agent;
  const config::Agent& b = loaded.agent;
  auto check = [&](bool same, const char* key) {
    if (!same) restart_keys->push_back(key);
  };
  check(p.fingerprint_key_file == loaded.fingerprint_key_file,
        "fingerprint_key_file");
  check(a.interface == b.interface, "agent.interface");
  check(a.user == b.user, "agent.user");
  // Certificates are read once, at start-up: rotated files (same paths, new
  // contents) need a restart too, so say so whenever TLS is configured.
  check(!a.tls.has_value() && !b.tls.has_value(),
        "agent.tls (certificates are read at start-up only)");
  check(a.filter == b.filter, "agent.filter");
  check(a.collector == b.collector, "agent.collector");
  check(a.agent_id == b.agent_id, "agent.agent_id");
  check(a.events_out == b.events_out, "agent.events_out");
  check(a.metrics_listen == b.metrics_listen, "agent.metrics_listen");
  check(a.fold_window == b.fold_window, "agent.fold_window");
  check(a.batch_max_events == b.batch_max_events &&
            a.flush_interval == b.flush_interval &&
            a.queue_max_events == b.queue_max_events &&
            a.drain_timeout == b.drain_timeout,
        "agent delivery settings");
  const config::AgentLimits& x = a.limits;
  const config::AgentLimits& y = b.limits;
  check(x.max_flows == y.max_flows &&
            x.flow_buffer_bytes == y.flow_buffer_bytes &&
            x.total_buffer_bytes == y.total_buffer_bytes &&
            x.max_header_bytes == y.max_header_bytes &&
            x.max_pending_requests == y.max_pending_requests &&
            x.token_cache_entries == y.token_cache_entries &&
            x.flow_idle_timeout == y.flow_idle_timeout,
        "agent.limits");
  check(p.detections.clock_leeway == loaded.detections.clock_leeway,
        "detections.clock_leeway");
  return next;
}

absl::StatusOr<AgentConfigGeneration> AgentReloader::Load(
    AgentStats* stats, std::vector<std::string>* restart_keys) {
  absl::StatusOr<config::Config> loaded = config::LoadConfig(path_);
  if (!loaded.ok()) return loaded.status();
  std::vector<std::string> keys;
  AgentConfigGeneration gen;
  gen.config = std::make_unique<config::Config>(
      MergeAgentReloadable(running_, file_, *loaded, &keys));
  auto checks = token::TokenChecks::Create(*gen.config, stats);
  if (!checks.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": ", checks.status().message()));
  }
  gen.checks = *std::move(checks);
  running_ = *gen.config;
  file_ = *std::move(loaded);
  if (restart_keys != nullptr)
    restart_keys->insert(restart_keys->end(), keys.begin(), keys.end());
  return gen;
}

}  // namespace tokenwatch
