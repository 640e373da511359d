#include "collector/store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "collector/store/sqlite_alerts.h"
#include "collector/store/sqlite_connection.h"
#include "collector/store/sqlite_schema.h"
#include "collector/store/sqlite_tokens.h"

namespace tokenwatch::collector {

using sqlite::ColumnBlob;
using sqlite::ColumnText;
using sqlite::Connection;
using sqlite::Params;
using sqlite::ReadAll;
using sqlite::ResetOnExit;
using sqlite::Run;
using sqlite::RunForEach;

namespace {

// QueryAlerts never returns more than this, whatever the caller asks.
constexpr size_t kMaxAlertQueryLimit = 10000;

// Statements are cached by the address of these constants.
constexpr const char* kUpsertProgress =
    "INSERT INTO agent_progress (agent_id, boot_id, seq) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (agent_id, boot_id) DO UPDATE SET seq = excluded.seq";
constexpr const char* kInsertJournal =
    "INSERT INTO journal (agent_id, boot_id, batch) VALUES (?1, ?2, ?3)";
constexpr const char* kClearJournal = "DELETE FROM journal";
constexpr const char* kSelectJournal =
    "SELECT agent_id, boot_id, batch FROM journal ORDER BY id";

constexpr const char* kSelectProgress =
    "SELECT agent_id, boot_id, seq FROM agent_progress "
    "ORDER BY agent_id, boot_id";

absl::Status WriteJournal(Connection& c, const CommitBatch& batch) {
  if (batch.checkpoint) {
    absl::StatusOr<sqlite3_stmt*> s = c.Statement(kClearJournal);
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    return Run(c, *s, Params(*s), "clearing the journal", "");
  }
  return RunForEach(c, kInsertJournal, batch.journal,
                    [&c](sqlite3_stmt* s, const JournalEntry& e) {
                      ResetOnExit reset(s);
                      Params p(s);
                      p.Text(e.agent_id).Uint(e.boot_id).Blob(e.batch);
                      return Run(c, s, p, "journaling a batch of agent",
                                 e.agent_id);
                    });
}

absl::Status WriteProgress(Connection& c,
                           const std::vector<AgentProgress>& progress) {
  return RunForEach(c, kUpsertProgress, progress,
                    [&c](sqlite3_stmt* s, const AgentProgress& pr) {
                      ResetOnExit reset(s);
                      Params p(s);
                      p.Text(pr.agent_id).Uint(pr.boot_id).Uint(pr.seq);
                      return Run(c, s, p, "storing progress of agent",
                                 pr.agent_id);
                    });
}

absl::Status WriteBatch(Connection& c, const CommitBatch& batch) {
  absl::Status st = WriteJournal(c, batch);
  if (st.ok()) st = sqlite::UpsertTokens(c, batch.tokens);
  if (st.ok()) st = sqlite::InsertAlerts(c, batch.new_alerts);
  if (st.ok()) st = sqlite::UpdateAlertCounters(c, batch.repeated_alerts);
  if (st.ok()) st = WriteProgress(c, batch.progress);
  if (st.ok()) st = sqlite::DeleteTokens(c, batch.retired);
  return st;
}

absl::StatusOr<AgentProgress> ReadProgress(Connection&, sqlite3_stmt* s) {
  return AgentProgress{ColumnText(s, 0),
                       static_cast<uint64_t>(sqlite3_column_int64(s, 1)),
                       static_cast<uint64_t>(sqlite3_column_int64(s, 2))};
}

absl::StatusOr<JournalEntry> ReadJournal(Connection&, sqlite3_stmt* s) {
  return JournalEntry{ColumnText(s, 0),
                      static_cast<uint64_t>(sqlite3_column_int64(s, 1)),
                      ColumnBlob(s, 2)};
}

absl::Status LoadAll(Connection& c, Snapshot* snap) {
  absl::Status st = sqlite::LoadTokens(c, &snap->tokens);
  if (st.ok()) st = sqlite::LoadAlerts(c, &snap->alerts);
  if (!st.ok()) return st;
  absl::StatusOr<sqlite3_stmt*> s = c.Statement(kSelectProgress);
  if (!s.ok()) return s.status();
  {
    ResetOnExit reset(*s);
    st = ReadAll(c, *s, Params(*s), "loading agent progress", ReadProgress,
                 &snap->progress);
    if (!st.ok()) return st;
  }
  s = c.Statement(kSelectJournal);
  if (!s.ok()) return s.status();
  ResetOnExit reset(*s);
  return ReadAll(c, *s, Params(*s), "loading the journal", ReadJournal,
                 &snap->journal);
}

}  // namespace

SqliteStore::SqliteStore(std::unique_ptr<Connection> conn)
    : conn_(std::move(conn)) {}

SqliteStore::~SqliteStore() = default;

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(
    const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "store \"sqlite:\" needs a path, e.g. sqlite:tokenwatch.db");
  }
  absl::StatusOr<std::unique_ptr<Connection>> writer =
      Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!writer.ok()) return writer.status();
  Connection& w = **writer;
  // Before anything reads the file: a WAL opened in shared mode maps its
  // index from "-shm" (see sqlite_store.h).
  if (absl::Status s =
          w.ExecOnce("PRAGMA locking_mode = EXCLUSIVE", "setting locking_mode");
      !s.ok()) {
    return s;
  }
  // SQLite quietly opens a write-protected file read-only.
  if (sqlite3_db_readonly(w.db(), "main") == 1) {
    return absl::PermissionDeniedError(
        absl::StrCat(w.uri(), ": the file is not writable"));
  }
  // Check before changing anything: a refused file is left as it was.
  if (absl::Status s = sqlite::CheckSchema(w); !s.ok()) return s;
  if (absl::Status s = sqlite::SetWriterPragmas(w); !s.ok()) return s;
  if (absl::Status s = sqlite::CreateSchema(w); !s.ok()) return s;

  return std::unique_ptr<SqliteStore>(new SqliteStore(*std::move(writer)));
}

absl::Status SqliteStore::Commit(const CommitBatch& batch) {
  if (batch.tokens.empty() && batch.new_alerts.empty() &&
      batch.repeated_alerts.empty() && batch.progress.empty() &&
      batch.retired.empty() && batch.journal.empty()) {
    return absl::OkStatus();
  }
  std::lock_guard<std::mutex> lock(mu_);
  Connection& c = *conn_;
  absl::Status s = c.BeginImmediate();
  if (s.ok()) s = WriteBatch(c, batch);
  if (s.ok()) s = c.Commit();
  if (!s.ok()) {
    c.RollbackIfOpen();
    // A failed commit on a full disk leaves its frames in the WAL: give
    // the space back, or the WAL eats what an operator frees to recover.
    (void)c.ExecOnce("PRAGMA wal_checkpoint(TRUNCATE)", "checkpointing");
  }
  std::lock_guard<std::mutex> error_lock(error_mu_);
  commit_error_ = s.ok() ? std::string() : std::string(s.message());
  return s;
}

std::string SqliteStore::LastCommitError() const {
  std::lock_guard<std::mutex> lock(error_mu_);
  return commit_error_;
}

absl::StatusOr<Snapshot> SqliteStore::Load() {
  std::lock_guard<std::mutex> lock(mu_);
  Connection& c = *conn_;
  Snapshot snap;
  // One read transaction: every table as of the same commit.
  absl::Status s = c.Begin();
  if (s.ok()) s = LoadAll(c, &snap);
  if (s.ok()) s = c.Commit();
  if (!s.ok()) {
    c.RollbackIfOpen();
    return s;
  }
  return snap;
}

absl::StatusOr<std::vector<Alert>> SqliteStore::QueryAlerts(
    const AlertQuery& q) {
  const size_t limit = std::min(q.limit, kMaxAlertQueryLimit);
  std::vector<Alert> out;
  if (limit == 0) return out;
  std::lock_guard<std::mutex> lock(mu_);
  absl::Status st = sqlite::QueryAlerts(*conn_, q, limit, &out);
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::optional<TokenRow>> SqliteStore::GetToken(
    const std::string& identity) {
  std::lock_guard<std::mutex> lock(mu_);
  return sqlite::ReadToken(*conn_, identity);
}

}  // namespace tokenwatch::collector
