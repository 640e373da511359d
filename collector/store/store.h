// Durable state behind a narrow interface: `sqlite:PATH` (default) and
// `memory:`; a scale-out backend can come later. The collector's in-memory
// engine is authoritative while it runs; the store makes what it
// acknowledged survive a restart.
#ifndef TOKENWATCH_COLLECTOR_STORE_STORE_H_
#define TOKENWATCH_COLLECTOR_STORE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/model.h"

namespace tokenwatch::collector {

// An event batch applied since the last checkpoint, as a journal record
// (collector/state/journal.h): replayed into per-token state at start-up.
// Committing a batch costs one row, while writing back every token it
// touched costs one row per token.
struct JournalEntry {
  std::string agent_id;
  uint64_t boot_id = 0;
  std::string batch;  // the journal record
};

// Everything written in one durable transaction.
struct CommitBatch {
  std::vector<TokenRow> tokens;         // upserted by identity
  std::vector<Alert> new_alerts;        // inserted
  std::vector<Alert> repeated_alerts;   // count and last_ts_us updated, by id
  std::vector<AgentProgress> progress;  // upserted by (agent_id, boot_id)
  std::vector<std::string> retired;     // token identities to delete
  // Appended to the journal, unless `checkpoint`: then `tokens` and
  // `retired` hold every change since the last checkpoint and the journal
  // is emptied instead.
  std::vector<JournalEntry> journal;
  bool checkpoint = true;
};

// What a restarted collector needs to resume.
struct Snapshot {
  std::vector<TokenRow> tokens;
  std::vector<Alert> alerts;  // every alert (dedup keys and counters)
  std::vector<AgentProgress> progress;
  std::vector<JournalEntry> journal;  // in commit order
};

struct AlertQuery {
  std::optional<AlertType> type;  // nullopt: any
  std::string service;            // empty: any
  int64_t since_us = 0;           // alerts with ts_us >= since_us
  size_t limit = 100;             // newest first
  // A page's cursor: only alerts after (older than) this one in the
  // answer's order, (ts_us, id) descending.
  std::optional<std::pair<int64_t, std::string>> before;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual absl::StatusOr<Snapshot> Load() = 0;
  // All or nothing; durable when it returns OK.
  virtual absl::Status Commit(const CommitBatch& batch) = 0;
  virtual absl::StatusOr<std::vector<Alert>> QueryAlerts(
      const AlertQuery& q) = 0;
  virtual absl::StatusOr<std::optional<TokenRow>> GetToken(
      const std::string& identity) = 0;
  // For /healthz: why the last commit failed; empty when it succeeded.
  virtual std::string LastCommitError() const { return {}; }
};

// "sqlite:PATH" or "memory:". Errors name the URI.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& uri);

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_STORE_STORE_H_
