#include "collector/store/sqlite_tokens.h"

#include <algorithm>
#include <iterator>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/json.h"
#include "common/time_format.h"

namespace tokenwatch::collector::sqlite {
namespace {

using util::AppendJsonString;

// Status class names, indexed like StatusClassCounts.
constexpr const char* kStatusClasses[] = {"none", "1xx", "2xx",
                                          "3xx",  "4xx", "5xx"};

// Statements are cached by the address of these constants.
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
constexpr const char* kDeleteToken = "DELETE FROM tokens WHERE identity = ?1";
constexpr const char* kSelectTokens =
    "SELECT identity, first_seen_us, last_seen_us, uses, services, clients, "
    "uses_by_service, token_blob FROM tokens ORDER BY identity";
constexpr const char* kSelectToken =
    "SELECT identity, first_seen_us, last_seen_us, uses, services, clients, "
    "uses_by_service, token_blob FROM tokens WHERE identity = ?1";
// The JSON text columns are read back through SQLite's own JSON parser.
constexpr const char* kJsonArrayItems = "SELECT type, value FROM json_each(?1)";
constexpr const char* kJsonUsesByService =
    "SELECT s.key, c.key, c.type, c.value "
    "FROM json_each(?1) AS s, json_each(s.value) AS c";

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

// Reusable buffers for the rows of one commit.
struct Scratch {
  std::string blob, aud, services, clients, uses, first_seen, last_seen;
};

absl::Status UpsertToken(Connection& c, sqlite3_stmt* s, const TokenRow& row,
                         Scratch& x) {
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

absl::Status DecodeStringArray(Connection& c, const std::string& json,
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
    Connection& c, const std::string& json, const std::string& identity,
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
absl::StatusOr<TokenRow> ReadTokenRow(Connection& c, sqlite3_stmt* s) {
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

}  // namespace

absl::Status UpsertTokens(Connection& c, const std::vector<TokenRow>& rows) {
  Scratch x;
  return RunForEach(c, kUpsertToken, rows,
                    [&](sqlite3_stmt* s, const TokenRow& row) {
                      return UpsertToken(c, s, row, x);
                    });
}

absl::Status DeleteTokens(Connection& c,
                          const std::vector<std::string>& identities) {
  return RunForEach(c, kDeleteToken, identities,
                    [&c](sqlite3_stmt* s, const std::string& identity) {
                      ResetOnExit reset(s);
                      Params p(s);
                      p.Text(identity);
                      return Run(c, s, p, "deleting token", identity);
                    });
}

absl::Status LoadTokens(Connection& c, std::vector<TokenRow>* out) {
  absl::StatusOr<sqlite3_stmt*> s = c.Statement(kSelectTokens);
  if (!s.ok()) return s.status();
  ResetOnExit reset(*s);
  return ReadAll(c, *s, Params(*s), "loading tokens", ReadTokenRow, out);
}

absl::StatusOr<std::optional<TokenRow>> ReadToken(Connection& c,
                                                  const std::string& identity) {
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

}  // namespace tokenwatch::collector::sqlite
