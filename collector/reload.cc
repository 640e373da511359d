#include "collector/reload.h"

#include <utility>

namespace tokenwatch::collector {
namespace {

bool SameSinks(const config::Collector& a, const config::Collector& b) {
  if (a.alertmanager.has_value() != b.alertmanager.has_value()) return false;
  if (a.alertmanager.has_value() &&
      (a.alertmanager->url != b.alertmanager->url ||
       a.alertmanager->resolve_after != b.alertmanager->resolve_after))
    return false;
  if (a.webhooks.size() != b.webhooks.size()) return false;
  for (size_t i = 0; i < a.webhooks.size(); ++i) {
    if (a.webhooks[i].url != b.webhooks[i].url ||
        a.webhooks[i].secret_file != b.webhooks[i].secret_file)
      return false;
  }
  return true;
}

}  // namespace

config::Config MergeReloadable(const config::Config& running,
                               const config::Config& previous_file,
                               const config::Config& loaded,
                               std::vector<std::string>* restart_keys) {
  config::Config next = running;
  next.services = loaded.services;
  next.issuers = loaded.issuers;
  next.sensitive_endpoints = loaded.sensitive_endpoints;
  next.detections.clock_leeway = loaded.detections.clock_leeway;
  next.detections.default_max_lifetime = loaded.detections.default_max_lifetime;
  next.detections.weak_secrets_file = loaded.detections.weak_secrets_file;
  next.detections.multi_source.window = loaded.detections.multi_source.window;
  next.collector.token_retention = loaded.collector.token_retention;
  if (restart_keys == nullptr) return next;
  // File against file: flags override the file, so a --listen given on the
  // command line is no change to report.
  const config::Collector& r = previous_file.collector;
  const config::Collector& l = loaded.collector;
  auto check = [&](bool same, const char* key) {
    if (!same) restart_keys->push_back(key);
  };
  check(r.listen == l.listen, "collector.listen");
  check(r.http_listen == l.http_listen, "collector.http_listen");
  check(r.store == l.store, "collector.store");
  check(r.alerts_out == l.alerts_out, "collector.alerts_out");
  check(SameSinks(r, l), "collector.alertmanager/webhooks");
  check(previous_file.detections.revoked_jtis_file ==
            loaded.detections.revoked_jtis_file,
        "detections.revoked_jtis_file");
  check(previous_file.detections.multi_source.min_sources ==
            loaded.detections.multi_source.min_sources,
        "detections.multi_source.min_sources");
  // Credentials are read once, at start-up: a rotated API token or
  // certificate (same path, new contents) needs a restart too, so say so
  // whenever they are configured rather than let a reload look complete.
  check(l.http_token_file.empty() && r.http_token_file.empty(),
        "collector.http_token_file (read at start-up only)");
  check(!l.tls.has_value() && !r.tls.has_value(),
        "collector.tls (certificates are read at start-up only)");
  return next;
}

absl::Status ConfigReloader::Reload(
    const std::function<void(const config::Config&)>& apply,
    std::vector<std::string>* restart_keys) {
  absl::StatusOr<config::Config> loaded = config::LoadConfig(path_);
  if (!loaded.ok()) return loaded.status();
  config::Config next = MergeReloadable(running_, file_, *loaded, restart_keys);
  apply(next);
  running_ = std::move(next);
  file_ = *std::move(loaded);
  return absl::OkStatus();
}

}  // namespace tokenwatch::collector
