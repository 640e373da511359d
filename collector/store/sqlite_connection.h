// One SQLite connection of the `sqlite:` store: opening it, the writer's
// pragmas, a cache of prepared statements, and the small helpers every
// table's code uses to bind parameters, step statements and read columns.
// A connection is used by one thread at a time (SQLITE_OPEN_NOMUTEX).
#ifndef TOKENWATCH_COLLECTOR_STORE_SQLITE_CONNECTION_H_
#define TOKENWATCH_COLLECTOR_STORE_SQLITE_CONNECTION_H_

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::collector::sqlite {

class Connection {
 public:
  // Opens `path` with `flags` (SQLITE_OPEN_*); errors name "sqlite:PATH".
  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const std::string& path, int flags);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* db() const { return db_.get(); }
  // "sqlite:PATH", for messages.
  const std::string& uri() const { return uri_; }

  // An error naming the file, what was being done, and SQLite's message.
  absl::Status Error(int rc, absl::string_view what) const;
  absl::Status DataLoss(absl::string_view what) const;

  // The prepared statement for `sql`, compiled once and kept; `sql` must be
  // a string constant (the cache is keyed by its address).
  absl::StatusOr<sqlite3_stmt*> Statement(const char* sql);
  // Runs a cached statement that takes no parameters and returns no rows.
  absl::Status Exec(const char* sql);
  // Runs SQL once, uncached (schema set-up, pragmas).
  absl::Status ExecOnce(const char* sql, absl::string_view what);

  // Transactions. BEGIN IMMEDIATE takes the write lock at once, so a
  // commit never fails half-way for want of it.
  absl::Status Begin();
  absl::Status BeginImmediate();
  absl::Status Commit();
  // Ends an open transaction after a failure; the original error stands.
  void RollbackIfOpen();

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };

  Connection(std::string uri, sqlite3* db) : uri_(std::move(uri)), db_(db) {}

  std::string uri_;
  std::unique_ptr<sqlite3, DbCloser> db_;
  // Declared after db_ so they are finalized before it closes.
  std::map<const char*, std::unique_ptr<sqlite3_stmt, StmtFinalizer>>
      statements_;
};

// The writer's settings: WAL, synchronous=FULL (in WAL mode NORMAL skips
// the fsync at commit, so a power cut could lose an acknowledged batch),
// 64 KiB pages for new files and a 64 MiB page cache.
absl::Status SetWriterPragmas(Connection& c);

// Resets a cached statement when the scope ends, so no statement is left
// mid-step holding a read transaction open (that would stall checkpoints).
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* s) : s_(s) {}
  ~ResetOnExit() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* s_;
};

// Binds ?1, ?2, ... in order and remembers the first failure. Text and
// blobs are bound without a copy: the strings must outlive the step.
class Params {
 public:
  explicit Params(sqlite3_stmt* s) : s_(s) {}
  Params& Text(const std::string& v) {
    return Check(sqlite3_bind_text64(s_, ++index_, v.data(), v.size(),
                                     SQLITE_STATIC, SQLITE_UTF8));
  }
  Params& Text(std::string&&) = delete;  // would dangle
  // A name from a static table (an alert type, a severity).
  Params& Name(std::string_view v) {
    return Check(sqlite3_bind_text64(s_, ++index_, v.data(), v.size(),
                                     SQLITE_STATIC, SQLITE_UTF8));
  }
  Params& Blob(const std::string& v) {
    return Check(
        sqlite3_bind_blob64(s_, ++index_, v.data(), v.size(), SQLITE_STATIC));
  }
  Params& Blob(std::string&&) = delete;
  Params& Int(int64_t v) { return Check(sqlite3_bind_int64(s_, ++index_, v)); }
  // Two's complement: a uint64 above INT64_MAX reads back exactly.
  Params& Uint(uint64_t v) { return Int(static_cast<int64_t>(v)); }
  Params& Null() { return Check(sqlite3_bind_null(s_, ++index_)); }
  Params& Skip() {
    ++index_;
    return *this;
  }
  int rc() const { return rc_; }

 private:
  Params& Check(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
    return *this;
  }
  sqlite3_stmt* s_;
  int index_ = 0;
  int rc_ = SQLITE_OK;
};

std::string ColumnText(sqlite3_stmt* s, int i);
std::string ColumnBlob(sqlite3_stmt* s, int i);
// A serialized TokenInfo column; false when it does not parse.
bool ColumnProto(sqlite3_stmt* s, int i, v1::TokenInfo* out);

// Steps a statement whose parameters are bound in `p` and which returns no
// rows; an error names `what` and `key`.
absl::Status Run(Connection& c, sqlite3_stmt* s, const Params& p,
                 absl::string_view what, const std::string& key);

// Runs one-off SQL (not cached) and collects the first column of each row.
absl::Status QueryOnce(Connection& c, const char* sql, absl::string_view what,
                       std::vector<std::string>* out);

// Runs the cached statement `sql` once per item: `run_one(stmt, item)`
// binds and steps it. Nothing is prepared for an empty list.
template <typename T, typename Fn>
absl::Status RunForEach(Connection& c, const char* sql,
                        const std::vector<T>& items, Fn run_one) {
  if (items.empty()) return absl::OkStatus();
  absl::StatusOr<sqlite3_stmt*> s = c.Statement(sql);
  if (!s.ok()) return s.status();
  for (const T& item : items) {
    if (absl::Status st = run_one(*s, item); !st.ok()) return st;
  }
  return absl::OkStatus();
}

// Steps `s` (its parameters bound in `p`) to the end, appending each row
// as `read(c, s)` decodes it (an absl::StatusOr<T>).
template <typename T, typename ReadFn>
absl::Status ReadAll(Connection& c, sqlite3_stmt* s, const Params& p,
                     const char* what, ReadFn read, std::vector<T>* out) {
  int rc = p.rc();
  while (rc == SQLITE_OK || rc == SQLITE_ROW) {
    if ((rc = sqlite3_step(s)) != SQLITE_ROW) break;
    absl::StatusOr<T> item = read(c, s);
    if (!item.ok()) return item.status();
    out->push_back(*std::move(item));
  }
  if (rc != SQLITE_DONE) return c.Error(rc, what);
  return absl::OkStatus();
}

}  // namespace tokenwatch::collector::sqlite

#endif  // TOKENWATCH_COLLECTOR_STORE_SQLITE_CONNECTION_H_
