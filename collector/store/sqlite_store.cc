#include "collector/store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <string_view>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "collector/alert_json.h"
#include "common/alert_type.h"
#include "common/json.h"
#include "common/time_format.h"

namespace tokenwatch::collector {

using util::AppendJsonString;

namespace {

constexpr int kSchemaVersion = 1;
// QueryAlerts never returns more than this, whatever the caller asks.
constexpr size_t kMaxAlertQueryLimit = 10000;
// How long a statement waits for another process's lock before failing.
constexpr int kBusyTimeoutMs = 5000;

// Status class names, indexed like StatusClassCounts.
constexpr const char* kStatusClasses[] = {"none", "1xx", "2xx",
                                          "3xx",  "4xx", "5xx"};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
  identity        TEXT PRIMARY KEY,  -- "iss|jti", or the fp
  fp              TEXT NOT NULL,
  iss             TEXT NOT NULL,
  sub             TEXT NOT NULL,
  jti             TEXT NOT NULL,
  alg             TEXT NOT NULL,
  aud             TEXT NOT NULL,     -- JSON array
  exp             INTEGER,           -- NULL: no exp claim
  first_seen      TEXT NOT NULL,     -- RFC 3339, ms, UTC
  first_seen_us   INTEGER NOT NULL,
  last_seen       TEXT NOT NULL,
  last_seen_us    INTEGER NOT NULL,
  uses            INTEGER NOT NULL,
  services        TEXT NOT NULL,     -- JSON array, in order of first use
  clients         TEXT NOT NULL,     -- JSON array, most recent last
  uses_by_service TEXT NOT NULL,     -- JSON {"svc":{"none":0,"1xx":0,...}}
  token_blob      BLOB NOT NULL      -- serialized tokenwatch.v1.TokenInfo
);
CREATE TABLE IF NOT EXISTS alerts (
  id         TEXT PRIMARY KEY,
  type       TEXT NOT NULL,
  severity   TEXT NOT NULL,
  ts         TEXT NOT NULL,
  ts_us      INTEGER NOT NULL,
  identity   TEXT NOT NULL,
  service    TEXT NOT NULL,
  method     TEXT NOT NULL,
  path       TEXT NOT NULL,
  client     TEXT NOT NULL,
  agent      TEXT NOT NULL,
  status     INTEGER,                -- NULL: no response seen
  accepted   INTEGER,                -- 0 / 1, NULL: no response seen
  detail     TEXT NOT NULL,
  count      INTEGER NOT NULL,
  last_ts    TEXT NOT NULL,
  last_ts_us INTEGER NOT NULL,
  token_blob BLOB NOT NULL,
  record     TEXT NOT NULL           -- the SPEC alert line
);
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts_us);
CREATE INDEX IF NOT EXISTS alerts_type_ts ON alerts (type, ts_us);
CREATE INDEX IF NOT EXISTS alerts_service_ts ON alerts (service, ts_us);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_key ON alerts (type, identity, service);
CREATE TABLE IF NOT EXISTS agent_progress (
  agent_id TEXT NOT NULL,
  boot_id  INTEGER NOT NULL,
  seq      INTEGER NOT NULL,
  PRIMARY KEY (agent_id, boot_id)
);
-- Event batches applied since the last checkpoint of the tokens table,
-- replayed at start-up (added within schema 1: older files gain it).
CREATE TABLE IF NOT EXISTS journal (
  id       INTEGER PRIMARY KEY,
  agent_id TEXT NOT NULL,
  boot_id  INTEGER NOT NULL,
  batch    BLOB NOT NULL             -- journal record (collector/state/journal.h)
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');
)sql";

// Statements are cached by the address of these constants.
constexpr const char* kBeginImmediate = "BEGIN IMMEDIATE";
constexpr const char* kBegin = "BEGIN";
constexpr const char* kCommit = "COMMIT";
constexpr const char* kRollback = "ROLLBACK";

constexpr const char* kUpsertToken =
    "INSERT INTO tokens (identity, fp, iss, sub, jti, alg, aud, exp, "
    "first_seen, first_seen_us, last_seen, last_seen_us, uses, services, "
    "clients, uses_by_service, token_blob) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
    "?15, ?16, ?17) "
    "ON CONFLICT (identity) DO UPDATE SET fp = excluded.fp, "
    "iss = excluded.iss, sub = excluded.sub, jti = excluded.jti, "
    "alg = excluded.alg, aud = excluded.aud, exp = excluded.exp, "
    "first_seen = excluded.first_seen, first_seen_us = excluded.first_seen_us, "
    "last_seen = excluded.last_seen, last_seen_us = excluded.last_seen_us, "
    "uses = excluded.uses, services = excluded.services, "
    "clients = excluded.clients, uses_by_service = excluded.uses_by_service, "
    "token_blob = excluded.token_blob";
constexpr const char* kInsertAlert =
    "INSERT INTO alerts (id, type, severity, ts, ts_us, identity, service, "
    "method, path, client, agent, status, accepted, detail, count, last_ts, "
    "last_ts_us, token_blob, record) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
    "?15, ?16, ?17, ?18, ?19)";
// json_set edits the stored record in place, so it stays the record of the
// stored alert whatever else the caller's copy holds.
constexpr const char* kUpdateAlert =
    "UPDATE alerts SET count = ?2, last_ts = ?3, last_ts_us = ?4, "
    "record = json_set(record, '$.count', ?2, '$.last_ts', ?3) WHERE id = ?1";
constexpr const char* kUpsertProgress =
    "INSERT INTO agent_progress (agent_id, boot_id, seq) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (agent_id, boot_id) DO UPDATE SET seq = excluded.seq";
constexpr const char* kDeleteToken = "DELETE FROM tokens WHERE identity = ?1";
constexpr const char* kInsertJournal =
    "INSERT INTO journal (agent_id, boot_id, batch) VALUES (?1, ?2, ?3)";
constexpr const char* kClearJournal = "DELETE FROM journal";
constexpr const char* kSelectJournal =
    "SELECT agent_id, boot_id, batch FROM journal ORDER BY id";

constexpr const char* kSelectTokens =
    "SELECT identity, first_seen_us, last_seen_us, uses, services, clients, "
    "uses_by_service, token_blob FROM tokens ORDER BY identity";
constexpr const char* kSelectToken =
    "SELECT identity, first_seen_us, last_seen_us, uses, services, clients, "
    "uses_by_service, token_blob FROM tokens WHERE identity = ?1";
constexpr const char* kSelectAlerts =
    "SELECT id, type, severity, ts_us, identity, service, method, path, "
    "client, agent, status, accepted, detail, count, last_ts_us, token_blob "
    "FROM alerts ORDER BY ts_us, id";
constexpr const char* kSelectProgress =
    "SELECT agent_id, boot_id, seq FROM agent_progress "
    "ORDER BY agent_id, boot_id";
// One statement per filter combination, so each can use its index:
// [type given][service given].
constexpr const char* kQueryAlerts[2][2] = {
    {"SELECT id, type, severity, ts_us, identity, service, method, path, "
     "client, agent, status, accepted, detail, count, last_ts_us, token_blob "
     "FROM alerts WHERE ts_us >= ?1 "
     "ORDER BY ts_us DESC, id DESC LIMIT ?4",
     "SELECT id, type, severity, ts_us, identity, service, method, path, "
     "client, agent, status, accepted, detail, count, last_ts_us, token_blob "
     "FROM alerts WHERE ts_us >= ?1 AND service = ?3 "
     "ORDER BY ts_us DESC, id DESC LIMIT ?4"},
    {"SELECT id, type, severity, ts_us, identity, service, method, path, "
     "client, agent, status, accepted, detail, count, last_ts_us, token_blob "
     "FROM alerts WHERE ts_us >= ?1 AND type = ?2 "
     "ORDER BY ts_us DESC, id DESC LIMIT ?4",
     "SELECT id, type, severity, ts_us, identity, service, method, path, "
     "client, agent, status, accepted, detail, count, last_ts_us, token_blob "
     "FROM alerts WHERE ts_us >= ?1 AND type = ?2 AND service = ?3 "
     "ORDER BY ts_us DESC, id DESC LIMIT ?4"}};

// The JSON text columns are read back through SQLite's own JSON parser.
constexpr const char* kJsonArrayItems = "SELECT type, value FROM json_each(?1)";
constexpr const char* kJsonUsesByService =
    "SELECT s.key, c.key, c.type, c.value "
    "FROM json_each(?1) AS s, json_each(s.value) AS c";

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

template <typename Strings>
void StringArrayJson(const Strings& items, std::string* out) {
  out->clear();
  out->push_back('[');
  bool first = true;
  for (const std::string& item : items) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, item);
  }
  out->push_back(']');
}

void UsesByServiceJson(const std::map<std::string, StatusClassCounts>& uses,
                       std::string* out) {
  out->clear();
  out->push_back('{');
  bool first = true;
  for (const auto& [service, counts] : uses) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, service);
    out->push_back(':');
    for (size_t i = 0; i < counts.size(); ++i) {
      absl::StrAppend(out, i == 0 ? "{\"" : ",\"", kStatusClasses[i],
                      "\":", counts[i]);
    }
    out->push_back('}');
  }
  out->push_back('}');
}

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

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

}  // namespace

namespace store_internal {

class SqliteConnection {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteConnection>> Open(
      const std::string& path, int flags) {
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    auto conn = std::unique_ptr<SqliteConnection>(
        new SqliteConnection(absl::StrCat("sqlite:", path), raw));
    if (rc != SQLITE_OK) {
      if (raw == nullptr) {
        return absl::ResourceExhaustedError(
            absl::StrCat(conn->uri_, ": out of memory opening the database"));
      }
      return conn->Error(
          rc, (rc & 0xff) == SQLITE_CANTOPEN
                  ? "opening (is it a file in an existing folder this user "
                    "may write to?)"
                  : "opening");
    }
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, kBusyTimeoutMs);
    return conn;
  }

  sqlite3* db() const { return db_.get(); }
  const std::string& uri() const { return uri_; }

  // An error naming the file, what was being done, and SQLite's message.
  absl::Status Error(int rc, absl::string_view what) const {
    return absl::Status(CodeFor(rc), absl::StrCat(uri_, ": ", what, ": ",
                                                  sqlite3_errmsg(db_.get())));
  }
  absl::Status DataLoss(absl::string_view what) const {
    return absl::DataLossError(absl::StrCat(uri_, ": ", what));
  }

  // The prepared statement for `sql`, compiled once and kept; `sql` must be
  // one of the constants above (the cache is keyed by its address).
  absl::StatusOr<sqlite3_stmt*> Statement(const char* sql) {
    auto it = statements_.find(sql);
    if (it != statements_.end()) return it->second.get();
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &s, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(s);
      return Error(rc, absl::StrCat("preparing \"", sql, "\""));
    }
    statements_.emplace(sql, s);
    return s;
  }

  // Runs a cached statement that takes no parameters and returns no rows.
  absl::Status Exec(const char* sql) {
    absl::StatusOr<sqlite3_stmt*> s = Statement(sql);
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    int rc = sqlite3_step(*s);
    if (rc != SQLITE_DONE) return Error(rc, sql);
    return absl::OkStatus();
  }

  // Runs SQL once, uncached (schema set-up, pragmas).
  absl::Status ExecOnce(const char* sql, absl::string_view what) {
    int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return Error(rc, what);
    return absl::OkStatus();
  }

  // Ends an open transaction after a failure; the original error stands.
  void RollbackIfOpen() {
    if (!sqlite3_get_autocommit(db_.get())) (void)Exec(kRollback);
  }

 private:
  SqliteConnection(std::string uri, sqlite3* db)
      : uri_(std::move(uri)), db_(db) {}

  std::string uri_;
  std::unique_ptr<sqlite3, DbCloser> db_;
  // Declared after db_ so they are finalized before it closes.
  std::map<const char*, std::unique_ptr<sqlite3_stmt, StmtFinalizer>>
      statements_;
};

}  // namespace store_internal

namespace {

using store_internal::SqliteConnection;

// Runs a statement whose parameters are bound in `p` and which returns no
// rows.
absl::Status Run(SqliteConnection& c, sqlite3_stmt* s, const Params& p,
                 absl::string_view what, const std::string& key) {
  int rc = p.rc();
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) {
    return c.Error(rc, absl::StrCat(what, " \"", key, "\""));
  }
  return absl::OkStatus();
}

// Runs one-off SQL (not cached) and collects the first column of each row.
absl::Status QueryOnce(SqliteConnection& c, const char* sql,
                       absl::string_view what, std::vector<std::string>* out) {
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

// Refuses files this version must not write to: someone else's database,
// or a tokenwatch schema it does not know. An empty file is a new store.
absl::Status CheckSchema(SqliteConnection& c) {
  std::vector<std::string> tables;
  absl::Status s = QueryOnce(
      c, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
      "reading the schema", &tables);
  if (!s.ok()) return s;
  if (tables.empty()) return absl::OkStatus();
  if (std::find(tables.begin(), tables.end(), "meta") == tables.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        c.uri(), ": not a tokenwatch database (it has tables ",
        absl::StrJoin(tables, ", "), " but no meta.schema_version)"));
  }
  std::vector<std::string> version;
  s = QueryOnce(c, "SELECT value FROM meta WHERE key = 'schema_version'",
                "reading meta.schema_version", &version);
  if (!s.ok()) return s;
  int v = 0;
  if (version.size() != 1 || !absl::SimpleAtoi(version[0], &v) || v < 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        c.uri(), ": unknown schema_version \"", absl::StrJoin(version, ","),
        "\" in table meta; not a tokenwatch database"));
  }
  if (v > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        c.uri(), ": schema_version ", v,
        " is newer than this tokenwatch-collector understands (",
        kSchemaVersion, "); run a newer collector or use another file"));
  }
  // The tables of a known version must be whole: a damaged or hand-made
  // file fails here, before WAL or the schema statements change it.
  static constexpr struct {
    const char* table;
    const char* sql;  // its columns
    const char* columns;
  } kTables[] = {
      {"tokens", "SELECT name FROM pragma_table_info('tokens') ORDER BY name",
       "aud alg clients exp first_seen first_seen_us fp identity iss jti "
       "last_seen last_seen_us services sub token_blob uses uses_by_service"},
      {"alerts", "SELECT name FROM pragma_table_info('alerts') ORDER BY name",
       "accepted agent client count detail id identity last_ts last_ts_us "
       "method path record service severity status token_blob ts ts_us type"},
      {"agent_progress",
       "SELECT name FROM pragma_table_info('agent_progress') ORDER BY name",
       "agent_id boot_id seq"},
  };
  for (const auto& t : kTables) {
    std::vector<std::string> have;
    s = QueryOnce(c, t.sql, "reading the schema", &have);
    if (!s.ok()) return s;
    for (absl::string_view col : absl::StrSplit(t.columns, ' ')) {
      if (std::find(have.begin(), have.end(), col) == have.end()) {
        return absl::FailedPreconditionError(absl::StrCat(
            c.uri(), ": schema_version ", v, " but table ", t.table,
            have.empty() ? " is missing" : absl::StrCat(" lacks column ", col),
            "; the file is damaged or not a tokenwatch database"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status SetPragmas(SqliteConnection& c) {
  // journal_mode answers with the mode it got: a file system without
  // shared memory, for one, keeps the old mode.
  // Large pages: a commit is mostly one journal row of a few hundred KB,
  // and SQLite writes the WAL a page (plus a frame header) per write call.
  // 64 KiB pages cut the commit's system time by half (README, "Speed").
  // Takes effect only when the file is created; an older file keeps its
  // page size.
  if (absl::Status st =
          c.ExecOnce("PRAGMA page_size = 65536", "setting page_size");
      !st.ok()) {
    return st;
  }
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
  // Token rows are rewritten at every checkpoint: keep the table's pages in
  // memory (64 MiB) instead of reading them back from the file each time.
  return c.ExecOnce("PRAGMA cache_size = -65536", "setting cache_size");
}

// Reusable buffers for one commit's rows.
struct Scratch {
  std::string blob, aud, services, clients, uses, first_seen, last_seen;
  std::string ts, last_ts, record;
};

absl::Status UpsertToken(SqliteConnection& c, sqlite3_stmt* s,
                         const TokenRow& row, Scratch& x) {
  const v1::TokenInfo& t = row.token;
  if (!t.SerializeToString(&x.blob)) {
    return c.DataLoss(
        absl::StrCat("token \"", row.identity, "\" does not serialize"));
  }
  StringArrayJson(t.aud(), &x.aud);
  StringArrayJson(row.services, &x.services);
  StringArrayJson(row.clients, &x.clients);
  UsesByServiceJson(row.uses_by_service, &x.uses);
  x.first_seen.clear();
  AppendTimestamp(&x.first_seen, row.first_seen_us);
  x.last_seen.clear();
  AppendTimestamp(&x.last_seen, row.last_seen_us);
  ResetOnExit reset(s);
  Params p(s);
  p.Text(row.identity).Text(t.fp()).Text(t.iss()).Text(t.sub()).Text(t.jti());
  p.Text(t.alg()).Text(x.aud);
  if (t.has_exp()) {
    p.Int(t.exp());
  } else {
    p.Null();
  }
  p.Text(x.first_seen).Int(row.first_seen_us).Text(x.last_seen);
  p.Int(row.last_seen_us).Uint(row.uses).Text(x.services).Text(x.clients);
  p.Text(x.uses).Blob(x.blob);
  return Run(c, s, p, "upserting token", row.identity);
}

absl::Status InsertAlert(SqliteConnection& c, sqlite3_stmt* s, const Alert& a,
                         Scratch& x) {
  if (!a.token.SerializeToString(&x.blob)) {
    return c.DataLoss(
        absl::StrCat("alert \"", a.id, "\": token does not serialize"));
  }
  x.ts.clear();
  AppendTimestamp(&x.ts, a.ts_us);
  x.last_ts.clear();
  AppendTimestamp(&x.last_ts, a.last_ts_us != 0 ? a.last_ts_us : a.ts_us);
  x.record = AlertJson(a);
  ResetOnExit reset(s);
  Params p(s);
  p.Text(a.id).Name(AlertTypeName(a.type)).Name(SeverityName(a.severity));
  p.Text(x.ts).Int(a.ts_us);
  p.Text(a.identity).Text(a.service).Text(a.method).Text(a.path);
  p.Text(a.client).Text(a.agent);
  if (a.status != 0) {
    p.Int(a.status);
  } else {
    p.Null();
  }
  if (a.accepted.has_value()) {
    p.Int(*a.accepted ? 1 : 0);
  } else {
    p.Null();
  }
  p.Text(a.detail).Uint(a.count).Text(x.last_ts).Int(a.last_ts_us);
  p.Blob(x.blob).Text(x.record);
  return Run(c, s, p, "inserting alert", a.id);
}

absl::Status UpdateAlert(SqliteConnection& c, sqlite3_stmt* s, const Alert& a,
                         Scratch& x) {
  x.last_ts.clear();
  AppendTimestamp(&x.last_ts, a.last_ts_us != 0 ? a.last_ts_us : a.ts_us);
  ResetOnExit reset(s);
  Params p(s);
  p.Text(a.id).Uint(a.count).Text(x.last_ts).Int(a.last_ts_us);
  if (absl::Status st = Run(c, s, p, "updating alert", a.id); !st.ok()) {
    return st;
  }
  if (sqlite3_changes(c.db()) != 1) {
    return absl::NotFoundError(absl::StrCat(c.uri(), ": repeated alert id \"",
                                            a.id, "\" was never stored"));
  }
  return absl::OkStatus();
}

// Runs the cached statement `sql` once per item: `run_one(stmt, item)`
// binds and steps it. Nothing is prepared for an empty list.
template <typename T, typename Fn>
absl::Status RunForEach(SqliteConnection& c, const char* sql,
                        const std::vector<T>& items, Fn run_one) {
  if (items.empty()) return absl::OkStatus();
  absl::StatusOr<sqlite3_stmt*> s = c.Statement(sql);
  if (!s.ok()) return s.status();
  for (const T& item : items) {
    if (absl::Status st = run_one(*s, item); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status WriteJournal(SqliteConnection& c, const CommitBatch& batch) {
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

absl::Status WriteBatch(SqliteConnection& c, const CommitBatch& batch) {
  Scratch x;
  absl::Status st = WriteJournal(c, batch);
  if (st.ok()) {
    st = RunForEach(c, kUpsertToken, batch.tokens,
                    [&](sqlite3_stmt* s, const TokenRow& row) {
                      return UpsertToken(c, s, row, x);
                    });
  }
  if (st.ok()) {
    st = RunForEach(c, kInsertAlert, batch.new_alerts,
                    [&](sqlite3_stmt* s, const Alert& a) {
                      return InsertAlert(c, s, a, x);
                    });
  }
  if (st.ok()) {
    st = RunForEach(c, kUpdateAlert, batch.repeated_alerts,
                    [&](sqlite3_stmt* s, const Alert& a) {
                      return UpdateAlert(c, s, a, x);
                    });
  }
  if (st.ok()) {
    st = RunForEach(c, kUpsertProgress, batch.progress,
                    [&c](sqlite3_stmt* s, const AgentProgress& pr) {
                      ResetOnExit reset(s);
                      Params p(s);
                      p.Text(pr.agent_id).Uint(pr.boot_id).Uint(pr.seq);
                      return Run(c, s, p, "storing progress of agent",
                                 pr.agent_id);
                    });
  }
  if (st.ok()) {
    st = RunForEach(c, kDeleteToken, batch.retired,
                    [&c](sqlite3_stmt* s, const std::string& identity) {
                      ResetOnExit reset(s);
                      Params p(s);
                      p.Text(identity);
                      return Run(c, s, p, "deleting token", identity);
                    });
  }
  return st;
}

absl::Status DecodeStringArray(SqliteConnection& c, const std::string& json,
                               const std::string& identity, const char* column,
                               std::vector<std::string>* out) {
  absl::StatusOr<sqlite3_stmt*> s = c.Statement(kJsonArrayItems);
  if (!s.ok()) return s.status();
  ResetOnExit reset(*s);
  Params p(*s);
  p.Text(json);
  int rc = p.rc();
  while (rc == SQLITE_OK || rc == SQLITE_ROW) {
    if ((rc = sqlite3_step(*s)) != SQLITE_ROW) break;
    if (ColumnText(*s, 0) != "text") {
      return c.DataLoss(absl::StrCat("token \"", identity, "\": ", column,
                                     " is not an array of strings"));
    }
    out->push_back(ColumnText(*s, 1));
  }
  if (rc != SQLITE_DONE) {
    return c.Error(rc, absl::StrCat("token \"", identity, "\": ", column));
  }
  return absl::OkStatus();
}

absl::Status DecodeUsesByService(
    SqliteConnection& c, const std::string& json, const std::string& identity,
    std::map<std::string, StatusClassCounts>* out) {
  absl::StatusOr<sqlite3_stmt*> s = c.Statement(kJsonUsesByService);
  if (!s.ok()) return s.status();
  ResetOnExit reset(*s);
  Params p(*s);
  p.Text(json);
  int rc = p.rc();
  while (rc == SQLITE_OK || rc == SQLITE_ROW) {
    if ((rc = sqlite3_step(*s)) != SQLITE_ROW) break;
    std::string status_class = ColumnText(*s, 1);
    auto* it = std::find(std::begin(kStatusClasses), std::end(kStatusClasses),
                         status_class);
    if (it == std::end(kStatusClasses) || ColumnText(*s, 2) != "integer") {
      return c.DataLoss(absl::StrCat(
          "token \"", identity, "\": uses_by_service has \"", status_class,
          "\"; want {\"service\":{\"none\":N,\"1xx\":N,...}}"));
    }
    (*out)[ColumnText(*s, 0)][it - std::begin(kStatusClasses)] =
        static_cast<uint64_t>(sqlite3_column_int64(*s, 3));
  }
  if (rc != SQLITE_DONE) {
    return c.Error(rc,
                   absl::StrCat("token \"", identity, "\": uses_by_service"));
  }
  return absl::OkStatus();
}

// A row of kSelectToken(s).
absl::StatusOr<TokenRow> ReadTokenRow(SqliteConnection& c, sqlite3_stmt* s) {
  TokenRow row;
  row.identity = ColumnText(s, 0);
  row.first_seen_us = sqlite3_column_int64(s, 1);
  row.last_seen_us = sqlite3_column_int64(s, 2);
  row.uses = static_cast<uint64_t>(sqlite3_column_int64(s, 3));
  std::string services = ColumnText(s, 4);
  std::string clients = ColumnText(s, 5);
  std::string uses = ColumnText(s, 6);
  if (!ColumnProto(s, 7, &row.token)) {
    return c.DataLoss(absl::StrCat("token \"", row.identity,
                                   "\": token_blob is not a TokenInfo"));
  }
  absl::Status st =
      DecodeStringArray(c, services, row.identity, "services", &row.services);
  if (st.ok()) {
    st = DecodeStringArray(c, clients, row.identity, "clients", &row.clients);
  }
  if (st.ok()) {
    st = DecodeUsesByService(c, uses, row.identity, &row.uses_by_service);
  }
  if (!st.ok()) return st;
  return row;
}

// A row of kSelectAlerts / kQueryAlerts.
absl::StatusOr<Alert> ReadAlert(SqliteConnection& c, sqlite3_stmt* s) {
  Alert a;
  a.id = ColumnText(s, 0);
  // Names are parsed once, here; a name this version does not know means a
  // damaged file (a newer schema is refused at open).
  std::string type = ColumnText(s, 1);
  std::optional<AlertType> parsed_type = ParseAlertType(type);
  if (!parsed_type) {
    return c.DataLoss(
        absl::StrCat("alert \"", a.id, "\": unknown type \"", type, "\""));
  }
  a.type = *parsed_type;
  std::string severity = ColumnText(s, 2);
  std::optional<Severity> parsed_severity = ParseSeverity(severity);
  if (!parsed_severity) {
    return c.DataLoss(absl::StrCat("alert \"", a.id, "\": unknown severity \"",
                                   severity, "\""));
  }
  a.severity = *parsed_severity;
  a.ts_us = sqlite3_column_int64(s, 3);
  a.identity = ColumnText(s, 4);
  a.service = ColumnText(s, 5);
  a.method = ColumnText(s, 6);
  a.path = ColumnText(s, 7);
  a.client = ColumnText(s, 8);
  a.agent = ColumnText(s, 9);
  a.status = static_cast<uint32_t>(sqlite3_column_int64(s, 10));
  if (sqlite3_column_type(s, 11) != SQLITE_NULL) {
    a.accepted = sqlite3_column_int64(s, 11) != 0;
  }
  a.detail = ColumnText(s, 12);
  a.count = static_cast<uint64_t>(sqlite3_column_int64(s, 13));
  a.last_ts_us = sqlite3_column_int64(s, 14);
  if (!ColumnProto(s, 15, &a.token)) {
    return c.DataLoss(
        absl::StrCat("alert \"", a.id, "\": token_blob is not a TokenInfo"));
  }
  return a;
}

// Steps `s` (its parameters bound in `p`) to the end, appending each row
// as `read` decodes it.
template <typename T, typename ReadFn>
absl::Status ReadAll(SqliteConnection& c, sqlite3_stmt* s, const Params& p,
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

absl::StatusOr<AgentProgress> ReadProgress(SqliteConnection&, sqlite3_stmt* s) {
  return AgentProgress{ColumnText(s, 0),
                       static_cast<uint64_t>(sqlite3_column_int64(s, 1)),
                       static_cast<uint64_t>(sqlite3_column_int64(s, 2))};
}

absl::StatusOr<JournalEntry> ReadJournal(SqliteConnection&, sqlite3_stmt* s) {
  return JournalEntry{ColumnText(s, 0),
                      static_cast<uint64_t>(sqlite3_column_int64(s, 1)),
                      ColumnBlob(s, 2)};
}

absl::Status LoadAll(SqliteConnection& c, Snapshot* snap) {
  absl::StatusOr<sqlite3_stmt*> s = c.Statement(kSelectTokens);
  if (!s.ok()) return s.status();
  {
    ResetOnExit reset(*s);
    absl::Status st = ReadAll(c, *s, Params(*s), "loading tokens", ReadTokenRow,
                              &snap->tokens);
    if (!st.ok()) return st;
  }
  s = c.Statement(kSelectAlerts);
  if (!s.ok()) return s.status();
  {
    ResetOnExit reset(*s);
    absl::Status st =
        ReadAll(c, *s, Params(*s), "loading alerts", ReadAlert, &snap->alerts);
    if (!st.ok()) return st;
  }
  s = c.Statement(kSelectProgress);
  if (!s.ok()) return s.status();
  {
    ResetOnExit reset(*s);
    absl::Status st = ReadAll(c, *s, Params(*s), "loading agent progress",
                              ReadProgress, &snap->progress);
    if (!st.ok()) return st;
  }
  s = c.Statement(kSelectJournal);
  if (!s.ok()) return s.status();
  ResetOnExit reset(*s);
  return ReadAll(c, *s, Params(*s), "loading the journal", ReadJournal,
                 &snap->journal);
}

}  // namespace

SqliteStore::SqliteStore(std::unique_ptr<Connection> writer,
                         std::unique_ptr<Connection> reader)
    : writer_(std::move(writer)), reader_(std::move(reader)) {}

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
  // SQLite quietly opens a write-protected file read-only.
  if (sqlite3_db_readonly(w.db(), "main") == 1) {
    return absl::PermissionDeniedError(
        absl::StrCat(w.uri(), ": the file is not writable"));
  }
  // Check before changing anything: a refused file is left as it was.
  if (absl::Status s = CheckSchema(w); !s.ok()) return s;
  if (absl::Status s = SetPragmas(w); !s.ok()) return s;
  // The first write also proves the file, its folder (for -wal and -shm)
  // and the disk are writable, at start-up rather than at the first commit.
  if (absl::Status s = w.ExecOnce("BEGIN IMMEDIATE", "creating the schema");
      !s.ok()) {
    return s;
  }
  absl::Status s = CheckSchema(w);  // another process may have won the race
  if (s.ok()) s = w.ExecOnce(kSchema, "creating the schema");
  if (s.ok()) s = w.ExecOnce("COMMIT", "creating the schema");
  if (!s.ok()) {
    w.RollbackIfOpen();
    return s;
  }

  absl::StatusOr<std::unique_ptr<Connection>> reader =
      Connection::Open(path, SQLITE_OPEN_READWRITE);
  if (!reader.ok()) return reader.status();
  if (absl::Status s = (*reader)->ExecOnce("PRAGMA query_only = 1",
                                           "opening the read connection");
      !s.ok()) {
    return s;
  }
  return std::unique_ptr<SqliteStore>(
      new SqliteStore(*std::move(writer), *std::move(reader)));
}

absl::Status SqliteStore::Commit(const CommitBatch& batch) {
  if (batch.tokens.empty() && batch.new_alerts.empty() &&
      batch.repeated_alerts.empty() && batch.progress.empty() &&
      batch.retired.empty() && batch.journal.empty()) {
    return absl::OkStatus();
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  Connection& c = *writer_;
  absl::Status s = c.Exec(kBeginImmediate);
  if (s.ok()) s = WriteBatch(c, batch);
  if (s.ok()) s = c.Exec(kCommit);
  if (!s.ok()) c.RollbackIfOpen();
  return s;
}

absl::StatusOr<Snapshot> SqliteStore::Load() {
  std::lock_guard<std::mutex> lock(read_mu_);
  Connection& c = *reader_;
  Snapshot snap;
  // One read transaction: every table as of the same commit.
  absl::Status s = c.Exec(kBegin);
  if (s.ok()) s = LoadAll(c, &snap);
  if (s.ok()) s = c.Exec(kCommit);
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
  std::lock_guard<std::mutex> lock(read_mu_);
  Connection& c = *reader_;
  absl::StatusOr<sqlite3_stmt*> s =
      c.Statement(kQueryAlerts[q.type.has_value()][!q.service.empty()]);
  if (!s.ok()) return s.status();
  ResetOnExit reset(*s);
  Params p(*s);
  p.Int(q.since_us);
  if (q.type.has_value()) {
    p.Name(AlertTypeName(*q.type));
  } else {
    p.Skip();
  }
  if (q.service.empty()) {
    p.Skip();
  } else {
    p.Text(q.service);
  }
  p.Int(static_cast<int64_t>(limit));
  out.reserve(std::min<size_t>(limit, 1024));
  absl::Status st = ReadAll(c, *s, p, "querying alerts", ReadAlert, &out);
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::optional<TokenRow>> SqliteStore::GetToken(
    const std::string& identity) {
  std::lock_guard<std::mutex> lock(read_mu_);
  Connection& c = *reader_;
  absl::StatusOr<sqlite3_stmt*> s = c.Statement(kSelectToken);
  if (!s.ok()) return s.status();
  ResetOnExit reset(*s);
  Params p(*s);
  p.Text(identity);
  std::vector<TokenRow> rows;
  absl::Status st = ReadAll(c, *s, p, "reading token", ReadTokenRow, &rows);
  if (!st.ok()) return st;
  if (rows.empty()) return std::nullopt;
  return std::move(rows.front());
}

}  // namespace tokenwatch::collector
