// Configuration reload on SIGHUP (as nginx and Prometheus do). The file is
// read again and the raw-token checks are built from it; only when both
// succeed does anything change. A broken file (or an issuer key file that
// does not load) keeps the running config; the caller logs the message,
// which names the file, line and key.
//
// Reloadable: services, issuers (keys, algorithms, lifetimes),
// detections.weak_secrets_file, detections.default_max_lifetime,
// agent.token_headers.
// Restart needed: fingerprint_key_file, agent.interface, filter, collector,
// agent_id, events_out, metrics_listen, limits, fold_window, delivery
// settings (batch, flush, queue, drain), detections.clock_leeway.
#ifndef TOKENWATCH_AGENT_RELOAD_H_
#define TOKENWATCH_AGENT_RELOAD_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/stats.h"
#include "agent/token/token_checks.h"
#include "common/config.h"

namespace tokenwatch {

// The config to run with after a reload: `loaded`'s reloadable parts,
// `running`'s (file plus flags) everything else. Keys the file changed
// since `previous_file` whose new value waits for a restart are appended
// to `restart_keys` (may be null).
config::Config MergeAgentReloadable(const config::Config& running,
                                    const config::Config& previous_file,
                                    const config::Config& loaded,
                                    std::vector<std::string>* restart_keys);

// What a reload swaps in: a config and the checks built from it (which
// refer to it, so they live and die together).
struct AgentConfigGeneration {
  std::unique_ptr<config::Config> config;
  std::unique_ptr<token::TokenChecks> checks;
};

class AgentReloader {
 public:
  // `running` is `file` with the command-line flags applied.
  AgentReloader(std::string path, config::Config file, config::Config running)
      : path_(std::move(path)),
        file_(std::move(file)),
        running_(std::move(running)) {}

  // Reads the file and builds its checks. On success the caller must swap
  // the result in (Pipeline::Reconfigure); on error nothing changed.
  absl::StatusOr<AgentConfigGeneration> Load(
      AgentStats* stats, std::vector<std::string>* restart_keys);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  config::Config file_, running_;
};

}  // namespace tokenwatch

#endif  // TOKENWATCH_AGENT_RELOAD_H_
