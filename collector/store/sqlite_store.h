// `sqlite:PATH` — the default store: one SQLite file in WAL mode whose
// tables a human can read with the `sqlite3` CLI (collector/store/
// sqlite_schema.h describes them). A writer connection takes commits; a
// read connection, which WAL lets proceed while a commit is in flight,
// serves loads and queries.
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

 private:
  SqliteStore(std::unique_ptr<sqlite::Connection> writer,
              std::unique_ptr<sqlite::Connection> reader);

  // Each connection is used by one thread at a time.
  // std::mutex, not absl::Mutex: visible to ThreadSanitizer.
  std::mutex write_mu_;
  std::unique_ptr<sqlite::Connection> writer_ ABSL_PT_GUARDED_BY(write_mu_);
  std::mutex read_mu_;
  std::unique_ptr<sqlite::Connection> reader_ ABSL_PT_GUARDED_BY(read_mu_);
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_STORE_SQLITE_STORE_H_
