// Configuration reload on SIGHUP (as nginx and Prometheus do). The file is
// read again; the parts a running collector can change without a restart
// are taken from it, the rest is kept as running. A broken file changes
// nothing: the caller logs the loader's "FILE:LINE: key ..." message and
// keeps the old configuration.
//
// Reloadable: services, issuers, sensitive_endpoints, detections
// (clock_leeway, default_max_lifetime, multi_source.window),
// collector.token_retention.
// Restart needed: collector.listen, http_listen, store, alerts_out,
// alertmanager, webhooks, detections.revoked_jtis_file,
// detections.multi_source.min_sources (sizes per-token state).
#ifndef TOKENWATCH_COLLECTOR_RELOAD_H_
#define TOKENWATCH_COLLECTOR_RELOAD_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/config.h"

namespace tokenwatch::collector {

// The config to run with after a reload: `loaded`'s reloadable parts,
// `running`'s (file plus flags) everything else. Keys the file changed
// since `previous_file` whose new value waits for a restart are appended
// to `restart_keys` (may be null).
config::Config MergeReloadable(const config::Config& running,
                               const config::Config& previous_file,
                               const config::Config& loaded,
                               std::vector<std::string>* restart_keys);

// Holds what runs and what the file said, and reloads the file.
class ConfigReloader {
 public:
  // `running` is `file` with the command-line flags applied.
  ConfigReloader(std::string path, config::Config file, config::Config running)
      : path_(std::move(path)),
        file_(std::move(file)),
        running_(std::move(running)) {}

  // Reads the file again. On success calls `apply` with the merged config
  // (the caller swaps it in under the lock event processing takes) and
  // remembers it; on error (the loader's InvalidArgument, "FILE:LINE: key
  // '...': ...") nothing changes and `apply` is not called.
  absl::Status Reload(const std::function<void(const config::Config&)>& apply,
                      std::vector<std::string>* restart_keys);
  const config::Config& running() const { return running_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  config::Config file_, running_;
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_RELOAD_H_
