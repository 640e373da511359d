// The collector's core, on one thread: applies agents' event batches to
// per-token state, runs the detectors, raises or updates alerts, and makes
// all of it durable in one store transaction per commit. A batch is
// acknowledged only once a commit has stored it; a batch seen again (agent
// resend after a reconnect or a collector restart) is dropped by
// (agent, boot, seq), so every event counts exactly once.
#ifndef TOKENWATCH_COLLECTOR_ENGINE_H_
#define TOKENWATCH_COLLECTOR_ENGINE_H_

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "collector/detect/detector.h"
#include "collector/detect/revoked_use.h"
#include "collector/model.h"
#include "collector/state/journal.h"
#include "collector/state/token_table.h"
#include "collector/store/store.h"
#include "common/config.h"
#include "tokenwatch/v1/ingest.pb.h"

namespace tokenwatch::collector {

struct EngineStats {
  uint64_t batches = 0;
  uint64_t duplicate_batches = 0;
  uint64_t events = 0;
  uint64_t uses = 0;  // events weighted by count
  uint64_t alerts_raised = 0;
  uint64_t alerts_repeated = 0;
  uint64_t commits = 0;
  uint64_t commit_failures = 0;
  uint64_t tokens_retired = 0;
  absl::flat_hash_map<std::string, uint64_t> events_by_agent;
  absl::flat_hash_map<std::string, uint64_t> batches_by_agent;
  // Uses by service, then status class (none, 1xx..5xx): per event a
  // lookup without building a key.
  absl::flat_hash_map<std::string, std::array<uint64_t, 6>> uses_by_service;
  // Alerting uses by service, then type and severity.
  using AlertCounts =
      std::array<std::array<uint64_t, kSeverityCount>, kAlertTypeCount>;
  absl::flat_hash_map<std::string, AlertCounts> alerts_by_service;
  // Uses of expired tokens by service, then whether the service accepted
  // them: unknown (no response), true, false.
  absl::flat_hash_map<std::string, std::array<uint64_t, 3>> expired_uses;
  absl::flat_hash_map<std::string, double> detector_seconds;  // sampled
  // Store commit latency: cumulative counts per upper bound, sum, count.
  static constexpr double kCommitBounds[] = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
  std::array<uint64_t, 11> commit_buckets{};
  double commit_seconds_sum = 0;
  // SIGHUP reloads of the config file (collector/reload.h).
  uint64_t config_reloads_ok = 0;
  uint64_t config_reloads_failed = 0;
};

class Engine {
 public:
  // `on_alert` sees each new alert once it is durable (for --alerts-out).
  Engine(const config::Config& config, Store* store,
         std::function<void(const Alert&)> on_alert,
         RevocationList* revocations = nullptr);

  // Loads the store: tokens, alert keys and counters, agents' progress.
  absl::Status Restore();

  // Highest batch of (agent, boot) that is durably stored.
  uint64_t StoredThrough(const std::string& agent, uint64_t boot) const;
  // Applies a batch in memory unless it was applied before; false for a
  // duplicate. Takes effect durably at the next successful Commit.
  bool Apply(const std::string& agent, uint64_t boot,
             const v1::EventBatch& batch);
  // Stores everything applied since the last successful commit. On failure
  // nothing is acknowledged and the same work is retried at the next call.
  // A checkpoint writes every token changed since the last checkpoint and
  // empties the journal; otherwise the applied batches are journaled (one
  // compact row each, collector/state/journal.h) and replayed into the
  // token state by Restore.
  // Commits queued after a failure are retried first, in order.
  absl::Status Commit(bool checkpoint = true);

  bool HasPending() const { return pending_dirty_; }
  // Journaled bytes since the last checkpoint (what a restart replays).
  size_t JournalBytes() const { return journal_bytes_; }
  // Tokens retired since the last checkpoint. The journal holds batches,
  // not retirements, so a checkpoint should follow before a crash could
  // replay a retired token's history into its successor.
  bool HasRetired() const { return !retired_.empty(); }
  // The in-memory state of a token, which is ahead of the store between
  // checkpoints.
  std::optional<TokenRow> GetToken(const std::string& identity) const;
  // Takes the reloadable parts of `config` (services, sensitive endpoints,
  // detections, retention): the detectors are rebuilt from a copy the
  // engine keeps. Call it where Apply is called (under the same lock), so
  // a batch sees either the old or the new config, never a mix.
  void Reconfigure(const config::Config& config);
  void CountReloadFailure() { ++stats_.config_reloads_failed; }

  const EngineStats& stats() const { return stats_; }
  const TokenTable& tokens() const { return tokens_; }

 private:
  // A commit in two steps: Prepare takes the work since the last Prepare
  // into a CommitBatch, as of now, and the engine goes on as though it were
  // stored (null: nothing to write); Finished takes the store's answer.
  // Commit writes prepared batches in order and keeps a failed one (and
  // what follows) in unstored_ for the next call.
  struct PreparedCommit {
    CommitBatch batch;
  };
  std::unique_ptr<PreparedCommit> Prepare(bool checkpoint);
  void Finished(const PreparedCommit& p, const absl::Status& status,
                double seconds);

  struct AlertKeyInfo {
    std::string id;
    uint64_t count;
    int64_t last_ts_us;
    bool dirty;  // repeated since the last commit
  };
  void ApplyEvent(const std::string& agent, const v1::UsageEvent& e);
  void ReplayEvent(const v1::UsageEvent& e);  // a batch as received
  absl::Status ReplayUse(const JournalUse& u);
  void Raise(const Finding& f, const std::string& identity,
             const std::string& agent, const v1::UsageEvent& e);
  void RetireTokens(int64_t now_us);
  std::string NewAlertId(int64_t ts_us);

  const config::Config& config_;
  std::unique_ptr<const config::Config> reloaded_config_;  // after SIGHUP
  Store* store_;
  std::function<void(const Alert&)> on_alert_;
  RevocationList* revocations_;
  std::vector<std::unique_ptr<Detector>> detectors_;
  TokenTable tokens_;
  int64_t multi_source_window_us_;
  int64_t retention_us_;
  absl::flat_hash_map<std::string, AlertKeyInfo>
      alerts_;  // type|identity|service
  // Progress: applied (in memory), prepared (in a CommitBatch) and
  // committed (durable), per agent|boot.
  absl::flat_hash_map<std::string, AgentProgress> applied_, prepared_,
      committed_;
  // Prepared by Commit and not yet stored (after a failure).
  std::deque<std::unique_ptr<PreparedCommit>> unstored_;
  // Work since the last successful commit.
  absl::flat_hash_set<TokenTable::Ref> dirty_tokens_;
  absl::flat_hash_set<std::string> retired_;  // identities
  std::vector<JournalEntry> journal_;         // applied, not yet committed
  JournalWriter journal_writer_;
  size_t journal_bytes_ = 0;  // journaled since the last checkpoint
  std::vector<Alert> new_alerts_;
  std::vector<std::string> dirty_alert_keys_;
  bool pending_dirty_ = false;
  int64_t now_us_ = 0;  // latest observation time seen
  int64_t last_retire_us_ = 0;
  uint64_t id_counter_ = 0;
  std::vector<Finding> findings_;  // scratch, reused per event
  TokenHistory history_;
  std::string identity_buf_;
  EngineStats stats_;
  uint64_t sample_ = 0;
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_ENGINE_H_
