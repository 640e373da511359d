#include "collector/store/sqlite_alerts.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "collector/alert_json.h"
#include "common/alert_type.h"
#include "common/time_format.h"

namespace tokenwatch::collector::sqlite {
namespace {

// The columns ReadAlert reads, in order. protocol and grpc_status (issue
// 13) live only in the stored record: json_extract reads them back, so a
// file written before them needs no migration (they read as NULL).
#define TW_ALERT_COLUMNS                                                   \
  "id, type, severity, ts_us, identity, service, method, path, client, "   \
  "agent, status, accepted, detail, count, last_ts_us, token_blob, "       \
  "json_extract(record, '$.protocol'), json_extract(record, '$.grpc_status') "

// Statements are cached by the address of these constants.
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
constexpr const char* kSelectAlerts =
    "SELECT " TW_ALERT_COLUMNS
    "FROM alerts ORDER BY ts_us, id";
// One statement per filter combination, so each can use its index:
// [type given][service given].
constexpr const char* kQueryAlerts[2][2] = {
    {"SELECT " TW_ALERT_COLUMNS
     "FROM alerts WHERE ts_us >= ?1 "
     "AND ts_us <= ?5 AND (ts_us < ?5 OR id < ?6) "
     "ORDER BY ts_us DESC, id DESC LIMIT ?4",
     "SELECT " TW_ALERT_COLUMNS
     "FROM alerts WHERE ts_us >= ?1 AND service = ?3 "
     "AND ts_us <= ?5 AND (ts_us < ?5 OR id < ?6) "
     "ORDER BY ts_us DESC, id DESC LIMIT ?4"},
    {"SELECT " TW_ALERT_COLUMNS
     "FROM alerts WHERE ts_us >= ?1 AND type = ?2 "
     "AND ts_us <= ?5 AND (ts_us < ?5 OR id < ?6) "
     "ORDER BY ts_us DESC, id DESC LIMIT ?4",
     "SELECT " TW_ALERT_COLUMNS
     "FROM alerts WHERE ts_us >= ?1 AND type = ?2 AND service = ?3 "
     "AND ts_us <= ?5 AND (ts_us < ?5 OR id < ?6) "
     "ORDER BY ts_us DESC, id DESC LIMIT ?4"}};

// Reusable buffers for the rows of one commit.
struct Scratch {
  std::string blob, ts, last_ts, record;
};

absl::Status InsertAlert(Connection& c, sqlite3_stmt* s, const Alert& a,
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

absl::Status UpdateAlert(Connection& c, sqlite3_stmt* s, const Alert& a,
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

// A row of kSelectAlerts / kQueryAlerts.
absl::StatusOr<Alert> ReadAlert(Connection& c, sqlite3_stmt* s) {
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
  a.protocol = ColumnText(s, 16);
  if (sqlite3_column_type(s, 17) == SQLITE_INTEGER) {
    a.grpc_status = static_cast<uint32_t>(sqlite3_column_int64(s, 17));
  }
  return a;
}

}  // namespace

absl::Status InsertAlerts(Connection& c, const std::vector<Alert>& alerts) {
  Scratch x;
  return RunForEach(
      c, kInsertAlert, alerts,
      [&](sqlite3_stmt* s, const Alert& a) { return InsertAlert(c, s, a, x); });
}

absl::Status UpdateAlertCounters(Connection& c,
                                 const std::vector<Alert>& alerts) {
  Scratch x;
  return RunForEach(
      c, kUpdateAlert, alerts,
      [&](sqlite3_stmt* s, const Alert& a) { return UpdateAlert(c, s, a, x); });
}

absl::Status LoadAlerts(Connection& c, std::vector<Alert>* out) {
  absl::StatusOr<sqlite3_stmt*> s = c.Statement(kSelectAlerts);
  if (!s.ok()) return s.status();
  ResetOnExit reset(*s);
  return ReadAll(c, *s, Params(*s), "loading alerts", ReadAlert, out);
}

absl::Status QueryAlerts(Connection& c, const AlertQuery& q, size_t limit,
                         std::vector<Alert>* out) {
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
  // Without a cursor, a bound above every alert (ids are ASCII).
  static const std::string kAfterEveryId = "\x7f";
  p.Int(q.before ? q.before->first : std::numeric_limits<int64_t>::max());
  p.Text(q.before ? q.before->second : kAfterEveryId);
  out->reserve(std::min<size_t>(limit, 1024));
  return ReadAll(c, *s, p, "querying alerts", ReadAlert, out);
}

}  // namespace tokenwatch::collector::sqlite

#undef TW_ALERT_COLUMNS
