// `sqlite:PATH` — the default store: one SQLite file in WAL mode whose
// tables a human can read with the `sqlite3` CLI (collector/store/
// sqlite_schema.h describes them). One connection in WAL mode with
// locking_mode=EXCLUSIVE: the WAL index then lives in heap memory, not in
// a mapped "-shm" file whose pages fault (SIGBUS, no log line) when the
// file system turns read-only or full under the running collector. The
// collector is the only process on its database (another process cannot
// even read it while the collector runs: stop it, or copy the file, to
// inspect); loads and queries share the connection and wait for a commit
// in flight (docs/security.md, "Hostile clients: HTTP API and store").
#ifndef TOKENWATCH_COLLECTOR_STORE_SQLITE_STORE_H_
#define TOKENWATCH_COLLECTOR_STORE_SQLITE_STORE_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/model.h"
#include "collector/store/store.h"

namespace tokenwatch::collector {

namespace sqlite {
class Connection;
}  // namespace sqlite

class SqliteStore final : public Store {
 public:
  // Opens or creates the database at `path`. Fails, with a message naming
  // "sqlite:PATH", for a file that is not SQLite, a database this version
  // does not understand (newer or unknown schema_version, or someone
  // else's tables), or a path that cannot be written.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(
      const std::string& path);

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // One read transaction: tokens, alerts and progress from the same commit.
  absl::StatusOr<Snapshot> Load() override;
  // One BEGIN IMMEDIATE ... COMMIT with synchronous=FULL, rolled back whole
  // on any error. Order inside: the journal (appended, or emptied by a
  // checkpoint), token upserts, new alerts, repeats, progress, then
  // retirements (so a batch that upserts and retires an identity deletes
  // it).
  absl::Status Commit(const CommitBatch& batch) override;
  absl::StatusOr<std::vector<Alert>> QueryAlerts(const AlertQuery& q) override;
  absl::StatusOr<std::optional<TokenRow>> GetToken(
      const std::string& identity) override;
  std::string LastCommitError() const override;

 private:
  explicit SqliteStore(std::unique_ptr<sqlite::Connection> conn);

  // The connection is used by one thread at a time.
  // std::mutex, not absl::Mutex: visible to ThreadSanitizer.
  std::mutex mu_;
  std::unique_ptr<sqlite::Connection> conn_ ABSL_PT_GUARDED_BY(mu_);
  mutable std::mutex error_mu_;
  std::string commit_error_ ABSL_GUARDED_BY(error_mu_);
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_STORE_SQLITE_STORE_H_
