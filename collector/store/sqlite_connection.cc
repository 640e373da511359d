#include "collector/store/sqlite_connection.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace tokenwatch::collector::sqlite {
namespace {

// How long a statement waits for another process's lock before failing.
constexpr int kBusyTimeoutMs = 5000;

// Statements are cached by the address of these constants.
constexpr const char* kBeginImmediate = "BEGIN IMMEDIATE";
constexpr const char* kBegin = "BEGIN";
constexpr const char* kCommit = "COMMIT";
constexpr const char* kRollback = "ROLLBACK";

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return absl::StatusCode::kAlreadyExists;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_CORRUPT:
      return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_TOOBIG:
      return absl::StatusCode::kResourceExhausted;
    default:
      return absl::StatusCode::kInternal;
  }
}

struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(
    const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  auto conn = std::unique_ptr<Connection>(
      new Connection(absl::StrCat("sqlite:", path), raw));
  if (rc != SQLITE_OK) {
    if (raw == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat(conn->uri_, ": out of memory opening the database"));
    }
    return conn->Error(rc, (rc & 0xff) == SQLITE_CANTOPEN
                               ? "opening (is it a file in an existing folder "
                                 "this user may write to?)"
                               : "opening");
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  return conn;
}

absl::Status Connection::Error(int rc, absl::string_view what) const {
  return absl::Status(CodeFor(rc), absl::StrCat(uri_, ": ", what, ": ",
                                                sqlite3_errmsg(db_.get())));
}

absl::Status Connection::DataLoss(absl::string_view what) const {
  return absl::DataLossError(absl::StrCat(uri_, ": ", what));
}

absl::StatusOr<sqlite3_stmt*> Connection::Statement(const char* sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second.get();
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s,
                              nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(s);
    return Error(rc, absl::StrCat("preparing \"", sql, "\""));
  }
  statements_.emplace(sql, s);
  return s;
}

absl::Status Connection::Exec(const char* sql) {
  absl::StatusOr<sqlite3_stmt*> s = Statement(sql);
  if (!s.ok()) return s.status();
  ResetOnExit reset(*s);
  int rc = sqlite3_step(*s);
  if (rc != SQLITE_DONE) return Error(rc, sql);
  return absl::OkStatus();
}

absl::Status Connection::ExecOnce(const char* sql, absl::string_view what) {
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(rc, what);
  return absl::OkStatus();
}

absl::Status Connection::Begin() { return Exec(kBegin); }
absl::Status Connection::BeginImmediate() { return Exec(kBeginImmediate); }
absl::Status Connection::Commit() { return Exec(kCommit); }

void Connection::RollbackIfOpen() {
  if (!sqlite3_get_autocommit(db_.get())) (void)Exec(kRollback);
}

absl::Status SetWriterPragmas(Connection& c) {
  // Large pages: a commit is mostly one journal row of a few hundred KB,
  // and SQLite writes the WAL a page (plus a frame header) per write call.
  // 64 KiB pages cut the commit's system time by half (docs/benchmarks.md).
  // Takes effect only when the file is created; an older file keeps its
  // page size.
  if (absl::Status st =
          c.ExecOnce("PRAGMA page_size = 65536", "setting page_size");
      !st.ok()) {
    return st;
  }
  // journal_mode answers with the mode it got: a file system without
  // shared memory, for one, keeps the old mode.
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(c.db(), "PRAGMA journal_mode = WAL", -1, &raw,
                              nullptr);
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> s(raw);
  if (rc == SQLITE_OK) rc = sqlite3_step(s.get());
  if (rc != SQLITE_ROW) return c.Error(rc, "enabling WAL");
  std::string mode = ColumnText(s.get(), 0);
  if (mode != "wal") {
    return absl::FailedPreconditionError(absl::StrCat(
        c.uri(), ": cannot use WAL journaling (got \"", mode, "\")"));
  }
  s.reset();
  if (absl::Status st =
          c.ExecOnce("PRAGMA synchronous = FULL", "setting synchronous");
      !st.ok()) {
    return st;
  }
  // A checkpoint truncates the WAL back to 64 MiB at most, so a burst does
  // not keep its space (a full disk needs it back).
  if (absl::Status st = c.ExecOnce("PRAGMA journal_size_limit = 67108864",
                                   "setting journal_size_limit");
      !st.ok()) {
    return st;
  }
  // Token rows are rewritten at every checkpoint: keep the table's pages in
  // memory (64 MiB) instead of reading them back from the file each time.
  return c.ExecOnce("PRAGMA cache_size = -65536", "setting cache_size");
}

std::string ColumnText(sqlite3_stmt* s, int i) {
  const unsigned char* p = sqlite3_column_text(s, i);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     sqlite3_column_bytes(s, i));
}

std::string ColumnBlob(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);
  if (p == nullptr) return {};
  return std::string(static_cast<const char*>(p), sqlite3_column_bytes(s, i));
}

bool ColumnProto(sqlite3_stmt* s, int i, v1::TokenInfo* out) {
  const void* p = sqlite3_column_blob(s, i);
  int n = sqlite3_column_bytes(s, i);
  if (p == nullptr) {  // an empty message serializes to no bytes
    out->Clear();
    return n == 0;
  }
  return out->ParseFromArray(p, n);
}

absl::Status Run(Connection& c, sqlite3_stmt* s, const Params& p,
                 absl::string_view what, const std::string& key) {
  int rc = p.rc();
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    return c.Error(rc, absl::StrCat(what, " \"", key, "\""));
  }
  return absl::OkStatus();
}

absl::Status QueryOnce(Connection& c, const char* sql, absl::string_view what,
                       std::vector<std::string>* out) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(c.db(), sql, -1, &raw, nullptr);
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> s(raw);
  while (rc == SQLITE_OK || rc == SQLITE_ROW) {
    rc = sqlite3_step(s.get());
    if (rc == SQLITE_ROW) out->push_back(ColumnText(s.get(), 0));
  }
  if (rc != SQLITE_DONE) return c.Error(rc, what);
  return absl::OkStatus();
}

}  // namespace tokenwatch::collector::sqlite
