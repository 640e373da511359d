// The collector's core, on one thread: applies agents' event batches to
// per-token state, runs the detectors, raises or updates alerts, and makes
// all of it durable in one store transaction per commit. A batch is
// acknowledged only once a commit has stored it; a batch seen again (agent
// resend after a reconnect or a collector restart) is dropped by
// (agent, boot, seq), so every event counts exactly once.
//
// The parts: the token table (collector/state/token_table.h), the
// detectors (collector/detect/), the alert book (collector/state/
// alert_book.h) and the commit log with its journal (collector/state/
// commit_log.h, journal.h).
#ifndef TOKENWATCH_COLLECTOR_ENGINE_H_
#define TOKENWATCH_COLLECTOR_ENGINE_H_

#include <array>
#include <cstdint>
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
#include "collector/state/alert_book.h"
#include "collector/state/commit_log.h"
#include "collector/state/journal.h"
#include "collector/state/token_table.h"
#include "collector/store/store.h"
#include "common/alert_type.h"
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
  // Hostile-client bounds (docs/security.md, "Hostile clients: ingest").
  uint64_t events_refused_future = 0;    // beyond wall clock + max skew
  uint64_t events_refused_bad_time = 0;  // negative, or last before first
  uint64_t batches_out_of_order = 0;     // a gap or a jump in a known run
  uint64_t tokens_evicted = 0;           // over limits.max_tokens
  uint64_t alerts_over_cap = 0;          // over limits.max_alerts_per_token
  uint64_t services_over_cap = 0;        // over limits.max_services_per_token
};

class Engine {
 public:
  // `on_alert` sees each new alert once it is durable (for --alerts-out
  // and the notifier), on the thread that writes commits. `config` must
  // outlive the engine: the detectors refer to it until a Reconfigure.
  Engine(const config::Config& config, Store* store,
         std::function<void(const Alert&)> on_alert,
         RevocationList* revocations = nullptr);

  // Loads the store: tokens, alert keys and counters, agents' progress,
  // and replays the journal into the tokens.
  absl::Status Restore();

  // Highest batch of (agent, boot) that is durably stored.
  uint64_t StoredThrough(const std::string& agent, uint64_t boot) const {
    return commit_log_.StoredThrough(agent, boot);
  }
  // Applies a batch in memory unless it was applied before; false for a
  // duplicate. Takes effect durably at the next successful commit.
  // `gap` (optional): the batch was refused as out of order (a gap or a
  // jump in a known run, collector/state/commit_log.h), not a duplicate.
  // Events whose time is negative or beyond the wall clock plus
  // collector.max_clock_skew are refused and counted.
  bool Apply(const std::string& agent, uint64_t boot,
             const v1::EventBatch& batch, bool* gap = nullptr);
  // The collector's wall clock, µs since the epoch (tests fix it).
  void SetWallClock(std::function<int64_t()> now_us) {
    wall_clock_ = std::move(now_us);
  }
  // Metric label of a service: its name when the config names it, else
  // "other", so /metrics stays bounded whatever agents send.
  const std::string& ServiceLabel(const std::string& service) const;

  // Stores everything applied since the last commit. On failure nothing is
  // acknowledged or announced, and the same work is stored first, in
  // order, at the next call. A checkpoint writes every token changed since
  // the last checkpoint and empties the journal; otherwise each applied
  // batch is journaled (one compact row, collector/state/journal.h) and
  // replayed into the token state by Restore.
  absl::Status Commit(bool checkpoint = true);

  // Commit in three steps, for a caller that guards the engine with a
  // lock which the API's threads take (IngestService): the store's write,
  // an fsync, happens outside it, so /healthz and /metrics never wait on
  // the disk.
  //   PrepareCommit   under the lock: the work since the last commit
  //                   becomes a commit queued behind any not yet stored.
  //   WriteCommits    without the lock: writes the queued commits in
  //                   order, stopping at the first failure, and announces
  //                   the new alerts of each one stored (on_alert). It
  //                   touches only the commit log, which nothing but these
  //                   three steps uses; call it from the thread that calls
  //                   PrepareCommit, never two at once.
  //   FinishCommits   under the lock: counters, and the progress the
  //                   stored commits made durable (StoredThrough). Returns
  //                   the write's status.
  void PrepareCommit(bool checkpoint);
  CommitWrite WriteCommits();
  absl::Status FinishCommits(const CommitWrite& write);

  // Journaled bytes since the last checkpoint (what a restart replays).
  size_t JournalBytes() const { return commit_log_.journal_bytes(); }
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
  void ApplyEvent(const std::string& agent, const v1::UsageEvent& e);
  absl::Status ReplayUse(const JournalUse& u);
  void CountFinding(const Finding& f, const v1::UsageEvent& e);
  void RetireTokens(int64_t now_us);
  // Latest event time that may drive retirement: never past the wall
  // clock plus the allowed skew, whatever one agent sent (or a store
  // written before this bound holds).
  int64_t BoundedNow() const;
  void EvictTokens(TokenTable::Ref keep);
  const std::string& AgentLabel(const std::string& agent);
  void TakeLimits(const config::Config& config);

  // The config a SIGHUP brought, which the detectors refer to.
  std::unique_ptr<const config::Config> reloaded_config_;
  Store* store_;
  std::function<void(const Alert&)> on_alert_;
  RevocationList* revocations_;
  std::vector<std::unique_ptr<Detector>> detectors_;
  int64_t multi_source_window_us_;
  int64_t retention_us_;

  TokenTable tokens_;
  AlertBook alerts_;
  CommitLog commit_log_;
  JournalWriter journal_writer_;
  // Token changes since the last checkpoint.
  absl::flat_hash_set<TokenTable::Ref> dirty_tokens_;
  absl::flat_hash_set<std::string> retired_;  // identities
  bool pending_dirty_ = false;
  int64_t now_us_ = 0;  // latest observation time seen
  int64_t last_retire_us_ = 0;

  std::vector<Finding> findings_;  // scratch, reused per event
  TokenHistory history_;
  std::string identity_buf_;
  EngineStats stats_;
  uint64_t sample_ = 0;
  // Hostile-client bounds.
  std::function<int64_t()> wall_clock_;
  int64_t max_skew_us_ = 0;
  int64_t batch_wall_us_ = 0;  // the wall clock at this batch's Apply
  size_t max_tokens_ = SIZE_MAX;
  absl::flat_hash_set<std::string> service_labels_;  // configured names
  absl::flat_hash_set<std::string> agent_labels_;    // the first kMax seen
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_ENGINE_H_
