#include "collector/store/sqlite_schema.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace tokenwatch::collector::sqlite {
namespace {

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

}  // namespace

absl::Status CheckSchema(Connection& c) {
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

absl::Status CreateSchema(Connection& c) {
  if (absl::Status s = c.ExecOnce("BEGIN IMMEDIATE", "creating the schema");
      !s.ok()) {
    return s;
  }
  absl::Status s = CheckSchema(c);
  if (s.ok()) s = c.ExecOnce(kSchema, "creating the schema");
  if (s.ok()) s = c.ExecOnce("COMMIT", "creating the schema");
  if (!s.ok()) c.RollbackIfOpen();
  return s;
}

}  // namespace tokenwatch::collector::sqlite
