// `memory:` — the Store contract kept in maps: nothing survives the process.
// For tests, and for users who want alerts without a database file.
#ifndef TOKENWATCH_COLLECTOR_STORE_MEMORY_STORE_H_
#define TOKENWATCH_COLLECTOR_STORE_MEMORY_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/model.h"
#include "collector/store/store.h"

namespace tokenwatch::collector {

// Same semantics as SqliteStore, including which commits fail (duplicate
// alert id or (type, identity, service), repeat of an unknown alert) and
// that a failed commit changes nothing. Safe to use from any thread.
class MemoryStore final : public Store {
 public:
  MemoryStore() = default;
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  absl::StatusOr<Snapshot> Load() override;
  absl::Status Commit(const CommitBatch& batch) override;
  absl::StatusOr<std::vector<Alert>> QueryAlerts(const AlertQuery& q) override;
  absl::StatusOr<std::optional<TokenRow>> GetToken(
      const std::string& identity) override;

 private:
  using AlertKey = std::tuple<AlertType, std::string, std::string>;

  // Every check a commit can fail, run before anything is changed.
  absl::Status Validate(const CommitBatch& batch) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // std::shared_mutex, not absl::Mutex: visible to ThreadSanitizer.
  mutable std::shared_mutex mu_;
  std::map<std::string, TokenRow> tokens_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Alert> alerts_ ABSL_GUARDED_BY(mu_);  // by id
  // (type, identity, service): at most one alert each.
  std::set<AlertKey> alert_keys_ ABSL_GUARDED_BY(mu_);
  // (ts_us, id), so QueryAlerts walks newest first without sorting.
  std::set<std::pair<int64_t, std::string>> by_time_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, uint64_t>, uint64_t> progress_
      ABSL_GUARDED_BY(mu_);
  std::vector<JournalEntry> journal_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_STORE_MEMORY_STORE_H_
