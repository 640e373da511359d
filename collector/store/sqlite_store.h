// `sqlite:PATH` — the default store: one SQLite file in WAL mode whose
// tables a human can read with the `sqlite3` CLI.
//
// Schema (version 1):
//   tokens          one row per tracked identity; aud, services, clients and
//                   uses_by_service are JSON text; token_blob is the
//                   serialized TokenInfo (claims only, never a raw token)
//   alerts          one row per (type, identity, service); `record` is the
//                   SPEC alert line (AlertJson), kept current on repeats
//   agent_progress  (agent_id, boot_id) -> seq
//   meta            schema_version
// Times are stored twice: RFC 3339 text for people, microseconds for code.
// 64-bit unsigned values (uses, count, boot_id, seq) are stored as their
// two's-complement int64 bit pattern, so huge boot ids read back exactly
// (and look negative in the CLI).
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
#include "absl/synchronization/mutex.h"
#include "collector/model.h"
#include "collector/store/store.h"

namespace tokenwatch::collector {

namespace store_internal {
class SqliteConnection;  // a sqlite3 handle and its prepared statements
}  // namespace store_internal

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
  // One BEGIN IMMEDIATE ... COMMIT with synchronous=FULL: in WAL mode
  // NORMAL skips the fsync at commit, so a power cut could lose a batch the
  // collector already acknowledged. Rolled back whole on any error. Order
  // inside: token upserts, new alerts, repeats, progress, then retirements
  // (so a batch that upserts and retires an identity deletes it).
  absl::Status Commit(const CommitBatch& batch) override;
  absl::StatusOr<std::vector<Alert>> QueryAlerts(const AlertQuery& q) override;
  absl::StatusOr<std::optional<TokenRow>> GetToken(
      const std::string& identity) override;

 private:
  using Connection = store_internal::SqliteConnection;

  SqliteStore(std::unique_ptr<Connection> writer,
              std::unique_ptr<Connection> reader);

  // Commit runs on the writer; reads use their own connection, which WAL
  // lets proceed while a commit is in flight. Each connection is used by one
  // thread at a time.
  // std::mutex, not absl::Mutex: visible to ThreadSanitizer.
  std::mutex write_mu_;
  std::unique_ptr<Connection> writer_ ABSL_PT_GUARDED_BY(write_mu_);
  std::mutex read_mu_;
  std::unique_ptr<Connection> reader_ ABSL_PT_GUARDED_BY(read_mu_);
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_STORE_SQLITE_STORE_H_
