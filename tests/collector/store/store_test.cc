// The Store contract, run against both backends (`memory:` and
// `sqlite:PATH` on a real file), plus what only SQLite has: persistence,
// refusing foreign files, and tables a human can read with plain SQL.
#include "collector/store/store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "collector/alert_json.h"
#include "collector/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/collector/testing/builders.h"

namespace tokenwatch::collector {
namespace {

using ::testing::HasSubstr;

// 2026-11-30T10:15:03.120Z
constexpr int64_t kT0 = 1796033703120000;

// ---------------------------------------------------------------------------
// Builders and a canonical text form for comparing whole records.

// The decoded token: every TokenInfo field set.
// header {"alg":"RS256","kid":"rsa-1","typ":"at+jwt","jku":"https://x/jwks",
//         "x5u":"https://x/cert","jwk":{...},"crit":["exp"]}
// payload {"iss":"https://idp.example.com","sub":"ålice","aud":["orders-api",
//          "payments-api"],"exp":1796037303,"nbf":1796033700,
//          "iat":1796033703,"jti":"j-81","scope":"orders:read payments:refund",
//          "client_id":"web"}
v1::TokenInfo FullTokenInfo() {
  v1::TokenInfo t;
  t.set_kind(v1::TOKEN_KIND_JWT);
  t.set_fp("9f2c4b1de0a3f5c6b7a8091a2b3c4d5e");
  t.set_iss("https://idp.example.com");
  t.set_sub("\xc3\xa5lice");
  t.add_aud("orders-api");
  t.add_aud("payments-api");
  t.set_exp(1796037303);
  t.set_nbf(1796033700);
  t.set_iat(1796033703);
  t.set_jti("j-81");
  t.add_scopes("orders:read");
  t.add_scopes("payments:refund");
  t.set_client_id("web");
  t.set_alg("RS256");
  t.set_kid("rsa-1");
  t.set_typ("at+jwt");
  t.set_jku("https://x/jwks");
  t.set_x5u("https://x/cert");
  t.set_has_jwk(true);
  t.add_crit("exp");
  return t;
}

TokenRow FullTokenRow() {
  TokenRow row;
  row.identity = "https://idp.example.com|j-81";
  row.token = FullTokenInfo();
  row.first_seen_us = kT0 + 1;  // microseconds must survive
  row.last_seen_us = kT0 + 5'000'007;
  row.uses = 42;
  row.services = {"orders", "payments", "quote\"and\\slash"};
  row.clients = {"10.0.3.7", "2001:db8::1"};
  row.uses_by_service["orders"] = {1, 0, 30, 0, 1, 0};
  row.uses_by_service["payments"] = {0, 0, 8, 1, 0, 1};
  row.uses_by_service["quote\"and\\slash"] = {0, 0, 0, 0, 0, 0};
  return row;
}

// An opaque token: only fp, nothing else set.
TokenRow OpaqueTokenRow() {
  TokenRow row;
  row.token.set_kind(v1::TOKEN_KIND_OPAQUE);
  row.token.set_fp("00112233445566778899aabbccddeeff");
  row.identity = row.token.fp();
  row.first_seen_us = kT0;
  row.last_seen_us = kT0;
  row.uses = 1;
  return row;
}

TokenRow SimpleToken(const std::string& identity, uint64_t uses) {
  TokenRow row;
  row.identity = identity;
  row.token.set_kind(v1::TOKEN_KIND_JWT);
  row.token.set_fp("fp-" + identity);
  row.token.set_iss("https://idp.example.com");
  row.token.set_jti(identity);
  row.first_seen_us = kT0;
  row.last_seen_us = kT0 + static_cast<int64_t>(uses);
  row.uses = uses;
  row.services = {"orders"};
  row.clients = {"10.0.3.7"};
  row.uses_by_service["orders"][2] = uses;
  return row;
}

using test::MakeAlert;

Alert FullAlert() {
  Alert a =
      MakeAlert("0192f0c4-6a3e-7b21-9c4d-5e6f7a8b9c0d", AlertType::kExpiredUse,
                "https://idp.example.com|j-81", "orders", kT0 + 3);
  a.severity = Severity::kCritical;
  a.token = FullTokenInfo();
  a.status = 401;
  a.accepted = false;
  a.detail = "token expired 10m3s before use\nand \"quoted\"";
  a.count = 3;
  a.last_ts_us = kT0 + 9'000'011;
  return a;
}

// No response seen: status 0, accepted unknown; opaque token.
Alert NoResponseAlert() {
  Alert a =
      MakeAlert("0192f0c4-6a3e-7b21-9c4d-5e6f7a8b9c0e", AlertType::kTokenInUrl,
                "00112233445566778899aabbccddeeff", "", kT0 + 4);
  a.token = OpaqueTokenRow().token;
  a.severity = Severity::kLow;
  a.method = "";
  a.status = 0;
  a.accepted = std::nullopt;
  a.detail = "";
  return a;
}

std::string Describe(const TokenRow& r) {
  std::ostringstream o;
  o << "token{" << r.identity << " | " << r.token.ShortDebugString()
    << " | first=" << r.first_seen_us << " last=" << r.last_seen_us
    << " uses=" << r.uses << " services=[";
  for (const auto& s : r.services) o << s << ";";
  o << "] clients=[";
  for (const auto& s : r.clients) o << s << ";";
  o << "] by_service={";
  for (const auto& [svc, c] : r.uses_by_service) {
    o << svc << ":" << c[0] << "," << c[1] << "," << c[2] << "," << c[3] << ","
      << c[4] << "," << c[5] << ";";
  }
  o << "}}";
  return o.str();
}

std::string Describe(const Alert& a) {
  std::ostringstream o;
  o << "alert{" << a.id << " " << AlertTypeName(a.type) << " "
    << SeverityName(a.severity) << " ts=" << a.ts_us << " " << a.identity
    << " | " << a.token.ShortDebugString() << " | " << a.service << " "
    << a.method << " " << a.path << " " << a.client << " " << a.agent
    << " protocol=" << a.protocol << " status=" << a.status << " grpc="
    << (a.grpc_status ? std::to_string(*a.grpc_status) : "none")
    << " accepted=" << (a.accepted ? (*a.accepted ? "true" : "false") : "null")
    << " detail=" << a.detail << " count=" << a.count
    << " last=" << a.last_ts_us << "}";
  return o.str();
}

std::string Describe(const AgentProgress& p) {
  std::ostringstream o;
  o << "progress{" << p.agent_id << " boot=" << p.boot_id << " seq=" << p.seq
    << "}";
  return o.str();
}

template <typename T>
std::string DescribeAll(const std::vector<T>& items) {
  std::string out;
  for (const T& item : items) out += Describe(item) + "\n";
  return out;
}

std::string Describe(const Snapshot& s) {
  return DescribeAll(s.tokens) + DescribeAll(s.alerts) +
         DescribeAll(s.progress);
}

std::vector<std::string> Ids(const std::vector<Alert>& alerts) {
  std::vector<std::string> ids;
  for (const Alert& a : alerts) ids.push_back(a.id);
  return ids;
}

// A database file for this test alone: no leftovers from earlier runs
// going in, none left behind (with its -wal and -shm) coming out.
class TempDbFile {
 public:
  explicit TempDbFile(const std::string& tag = "store") {
    const ::testing::TestInfo* info =
        ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "." +
                       info->name() + "." + tag + "." +
                       std::to_string(getpid()) + ".db";
    std::replace(name.begin(), name.end(), '/', '_');
    path_ = ::testing::TempDir() + name;
    Remove();
  }
  ~TempDbFile() { Remove(); }
  TempDbFile(const TempDbFile&) = delete;
  TempDbFile& operator=(const TempDbFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      std::remove((path_ + suffix).c_str());
    }
  }
  std::string path_;
};

// Plain SQL through a fresh connection, as a human with the sqlite3 CLI
// would see it: one string per column, "NULL" for NULL.
std::vector<std::vector<std::string>> Sql(const std::string& path,
                                          const std::string& sql) {
  std::vector<std::vector<std::string>> rows;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) !=
      SQLITE_OK) {
    ADD_FAILURE() << "open " << path << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return rows;
  }
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr);
  while (rc == SQLITE_OK || rc == SQLITE_ROW) {
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) break;
    std::vector<std::string> row;
    for (int i = 0; i < sqlite3_column_count(s); ++i) {
      const unsigned char* t = sqlite3_column_text(s, i);
      row.push_back(t == nullptr ? "NULL" : reinterpret_cast<const char*>(t));
    }
    rows.push_back(std::move(row));
  }
  EXPECT_EQ(rc, SQLITE_DONE) << sql << ": " << sqlite3_errmsg(db);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return rows;
}

// ---------------------------------------------------------------------------
// The contract, for both backends.

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    uri_ = GetParam() == "memory" ? "memory:" : "sqlite:" + db_.path();
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(uri_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  Snapshot MustLoad() {
    absl::StatusOr<Snapshot> snap = store_->Load();
    EXPECT_TRUE(snap.ok()) << snap.status();
    return snap.ok() ? *std::move(snap) : Snapshot{};
  }

  std::vector<Alert> MustQuery(const AlertQuery& q) {
    absl::StatusOr<std::vector<Alert>> got = store_->QueryAlerts(q);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *std::move(got) : std::vector<Alert>{};
  }

  std::optional<TokenRow> MustGet(const std::string& identity) {
    absl::StatusOr<std::optional<TokenRow>> got = store_->GetToken(identity);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *std::move(got) : std::nullopt;
  }

  TempDbFile db_;  // outlives store_
  std::string uri_;
  std::unique_ptr<Store> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values("memory", "sqlite"),
                         [](const auto& info) { return info.param; });

TEST_P(StoreTest, EveryFieldRoundTrips) {
  CommitBatch batch;
  batch.tokens = {FullTokenRow(), OpaqueTokenRow()};
  batch.new_alerts = {NoResponseAlert(), FullAlert()};
  batch.progress = {{"host-a", 0xfedcba9876543210u, 0xffffffffffffff01u},
                    {"host-b", 7, 1}};
  ASSERT_TRUE(store_->Commit(batch).ok());

  Snapshot want;
  want.tokens = {OpaqueTokenRow(), FullTokenRow()};  // by identity
  want.alerts = {FullAlert(), NoResponseAlert()};    // by ts_us
  want.progress = batch.progress;
  EXPECT_EQ(Describe(MustLoad()), Describe(want));

  std::optional<TokenRow> full = MustGet(FullTokenRow().identity);
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(Describe(*full), Describe(FullTokenRow()));
  std::optional<TokenRow> opaque = MustGet(OpaqueTokenRow().identity);
  ASSERT_TRUE(opaque.has_value());
  EXPECT_EQ(Describe(*opaque), Describe(OpaqueTokenRow()));
  EXPECT_FALSE(MustGet("https://idp.example.com|nope").has_value());

  EXPECT_EQ(DescribeAll(MustQuery({})),
            DescribeAll(std::vector<Alert>{NoResponseAlert(), FullAlert()}));
}

TEST_P(StoreTest, EmptyCommitIsOk) {
  EXPECT_TRUE(store_->Commit({}).ok());
  EXPECT_EQ(Describe(MustLoad()), "");
}

TEST_P(StoreTest, TokenUpsertKeepsOneRowWithLatestValues) {
  CommitBatch first;
  first.tokens = {FullTokenRow()};
  ASSERT_TRUE(store_->Commit(first).ok());

  TokenRow later = FullTokenRow();
  later.token.set_sub("bob");
  later.token.clear_exp();
  later.token.clear_aud();
  later.last_seen_us += 60'000'000;
  later.uses = 43;
  later.services = {"orders"};  // lists are replaced, not merged
  later.clients = {"10.0.3.8"};
  later.uses_by_service = {{"orders", {0, 0, 43, 0, 0, 0}}};
  CommitBatch second;
  second.tokens = {later};
  ASSERT_TRUE(store_->Commit(second).ok());

  Snapshot snap = MustLoad();
  ASSERT_EQ(snap.tokens.size(), 1u);
  EXPECT_EQ(Describe(snap.tokens[0]), Describe(later));
  std::optional<TokenRow> got = MustGet(later.identity);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(Describe(*got), Describe(later));
}

TEST_P(StoreTest, RepeatsUpdateCountAndLastTsOnly) {
  Alert a = MakeAlert("a1", AlertType::kMultiSource, "iss|j1", "orders", kT0);
  CommitBatch first;
  first.new_alerts = {a};
  ASSERT_TRUE(store_->Commit(first).ok());

  for (uint64_t n = 2; n <= 4; ++n) {
    Alert repeat = a;
    repeat.count = n;
    repeat.last_ts_us = kT0 + static_cast<int64_t>(n) * 1'000'000;
    repeat.detail = "changed";  // not part of a repeat: ignored
    CommitBatch batch;
    batch.repeated_alerts = {repeat};
    ASSERT_TRUE(store_->Commit(batch).ok());
  }

  Alert want = a;
  want.count = 4;
  want.last_ts_us = kT0 + 4'000'000;
  EXPECT_EQ(DescribeAll(MustLoad().alerts), Describe(want) + "\n");
  EXPECT_EQ(DescribeAll(MustQuery({})), Describe(want) + "\n");
}

TEST_P(StoreTest, NewAlertCanRepeatInTheSameBatch) {
  Alert a = MakeAlert("a1", AlertType::kMultiSource, "iss|j1", "orders", kT0);
  Alert repeat = a;
  repeat.count = 2;
  repeat.last_ts_us = kT0 + 10;
  CommitBatch batch;
  batch.new_alerts = {a};
  batch.repeated_alerts = {repeat};
  ASSERT_TRUE(store_->Commit(batch).ok());
  EXPECT_EQ(DescribeAll(MustLoad().alerts), Describe(repeat) + "\n");
}

// Issue 13: a gRPC alert keeps its protocol and grpc_status across a
// restart (SQLite reads them back from the stored record).
TEST_P(StoreTest, GrpcAlertKeepsProtocolAndGrpcStatus) {
  Alert a = MakeAlert("g1", AlertType::kExpiredUse, "iss|j1", "orders", kT0);
  a.protocol = "grpc";
  a.grpc_status = 16;
  a.accepted = false;
  Alert h1 = MakeAlert("h1", AlertType::kNoExpiry, "iss|j2", "orders", kT0 + 1);
  h1.protocol = "http/1.1";
  CommitBatch batch;
  batch.new_alerts = {a, h1};
  ASSERT_TRUE(store_->Commit(batch).ok());
  EXPECT_EQ(DescribeAll(MustLoad().alerts),
            Describe(a) + "\n" + Describe(h1) + "\n");
  EXPECT_NE(Describe(a).find("protocol=grpc status=200 grpc=16"),
            std::string::npos);
}

TEST_P(StoreTest, RepeatOfUnknownAlertFailsAndWritesNothing) {
  CommitBatch batch;
  batch.tokens = {SimpleToken("iss|j1", 1)};
  batch.repeated_alerts = {
      MakeAlert("ghost", AlertType::kNoExpiry, "i", "s", kT0)};
  absl::Status s = store_->Commit(batch);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(s.message(), HasSubstr("ghost"));
  EXPECT_EQ(Describe(MustLoad()), "");
}

TEST_P(StoreTest, OneAlertPerTypeIdentityService) {
  CommitBatch first;
  first.new_alerts = {
      MakeAlert("a1", AlertType::kCrossService, "iss|j1", "orders", 1)};
  ASSERT_TRUE(store_->Commit(first).ok());

  CommitBatch dup;
  dup.tokens = {SimpleToken("iss|j1", 2)};
  dup.new_alerts = {
      MakeAlert("a2", AlertType::kCrossService, "iss|j1", "orders", 2)};
  absl::Status s = store_->Commit(dup);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_THAT(s.message(), HasSubstr(uri_));
  EXPECT_EQ(Ids(MustLoad().alerts), std::vector<std::string>{"a1"});
  EXPECT_TRUE(MustLoad().tokens.empty());

  // The same key within one batch is refused as well.
  CommitBatch twice;
  twice.new_alerts = {
      MakeAlert("b1", AlertType::kNoExpiry, "iss|j9", "orders", 3),
      MakeAlert("b2", AlertType::kNoExpiry, "iss|j9", "orders", 4)};
  EXPECT_EQ(store_->Commit(twice).code(), absl::StatusCode::kAlreadyExists);

  // Any one part different makes a different alert.
  CommitBatch others;
  others.new_alerts = {
      MakeAlert("a3", AlertType::kCrossService, "iss|j1", "payments", 3),
      MakeAlert("a4", AlertType::kExpiredUse, "iss|j1", "orders", 4),
      MakeAlert("a5", AlertType::kCrossService, "iss|j2", "orders", 5)};
  ASSERT_TRUE(store_->Commit(others).ok());
  EXPECT_EQ(MustLoad().alerts.size(), 4u);
}

TEST_P(StoreTest, FailureMidwayLeavesNothingWritten) {
  CommitBatch base;
  base.tokens = {SimpleToken("iss|keep", 1), SimpleToken("iss|old", 1)};
  base.new_alerts = {
      MakeAlert("a1", AlertType::kNoExpiry, "iss|keep", "orders", 1)};
  base.progress = {{"host-a", 1, 10}};
  ASSERT_TRUE(store_->Commit(base).ok());
  const std::string before = Describe(MustLoad());

  // Every kind of write comes before the duplicate id that fails it.
  CommitBatch bad;
  bad.tokens = {SimpleToken("iss|keep", 99), SimpleToken("iss|new", 1)};
  bad.new_alerts = {
      MakeAlert("x1", AlertType::kNoExpiry, "iss|new", "orders", 5),
      MakeAlert("x2", AlertType::kAlgNone, "iss|new", "orders", 6),
      MakeAlert("x1", AlertType::kWeakSecret, "iss|new", "orders", 7)};
  Alert repeat = base.new_alerts[0];
  repeat.count = 50;
  bad.repeated_alerts = {repeat};
  bad.progress = {{"host-a", 1, 11}, {"host-b", 1, 1}};
  bad.retired = {"iss|old"};
  absl::Status s = store_->Commit(bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_THAT(s.message(), HasSubstr("x1"));
  EXPECT_EQ(Describe(MustLoad()), before);

  // The store is still usable: the next good commit lands.
  CommitBatch good;
  good.progress = {{"host-a", 1, 12}};
  ASSERT_TRUE(store_->Commit(good).ok());
  EXPECT_EQ(MustLoad().progress[0].seq, 12u);
}

TEST_P(StoreTest, ProgressUpsertsByAgentAndBoot) {
  CommitBatch a;
  a.progress = {{"host-a", 1, 5}, {"host-b", 1, 3}};
  ASSERT_TRUE(store_->Commit(a).ok());
  CommitBatch b;
  b.progress = {{"host-a", 1, 9}, {"host-a", 2, 1}};
  ASSERT_TRUE(store_->Commit(b).ok());
  EXPECT_EQ(DescribeAll(MustLoad().progress),
            "progress{host-a boot=1 seq=9}\n"
            "progress{host-a boot=2 seq=1}\n"
            "progress{host-b boot=1 seq=3}\n");
}

TEST_P(StoreTest, RetiredTokensAreDeletedAlertsStay) {
  CommitBatch first;
  first.tokens = {SimpleToken("iss|j1", 1), SimpleToken("iss|j2", 1),
                  SimpleToken("iss|j3", 1)};
  first.new_alerts = {
      MakeAlert("a1", AlertType::kNoExpiry, "iss|j1", "orders", 1)};
  ASSERT_TRUE(store_->Commit(first).ok());

  CommitBatch retire;
  retire.retired = {"iss|j1", "iss|never-seen"};
  // Upserted and retired in one batch: retirement wins.
  retire.tokens = {SimpleToken("iss|j3", 2)};
  retire.retired.push_back("iss|j3");
  ASSERT_TRUE(store_->Commit(retire).ok());

  Snapshot snap = MustLoad();
  ASSERT_EQ(snap.tokens.size(), 1u);
  EXPECT_EQ(snap.tokens[0].identity, "iss|j2");
  EXPECT_FALSE(MustGet("iss|j1").has_value());
  EXPECT_FALSE(MustGet("iss|j3").has_value());
  EXPECT_EQ(Ids(snap.alerts), std::vector<std::string>{"a1"});
}

TEST_P(StoreTest, QueryAlertsFiltersNewestFirstAndLimits) {
  const std::vector<AlertType> types = {AlertType::kExpiredUse,
                                        AlertType::kAlgNone};
  const std::vector<std::string> services = {"orders", "payments", "search"};
  std::vector<Alert> all;
  for (int i = 0; i < 30; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "id-%02d", i);
    // Pairs share a timestamp: ties go newest id first.
    all.push_back(MakeAlert(id, types[i % 2], "iss|j" + std::to_string(i),
                            services[i % 3], kT0 + (i / 2) * 1000));
  }
  CommitBatch batch;
  // Insertion order must not matter.
  batch.new_alerts.assign(all.rbegin(), all.rend());
  std::rotate(batch.new_alerts.begin(), batch.new_alerts.begin() + 7,
              batch.new_alerts.end());
  ASSERT_TRUE(store_->Commit(batch).ok());

  auto expected = [&](const AlertQuery& q) {
    std::vector<Alert> want;
    for (const Alert& a : all) {
      if ((!q.type.has_value() || a.type == *q.type) &&
          (q.service.empty() || a.service == q.service) &&
          a.ts_us >= q.since_us) {
        want.push_back(a);
      }
    }
    std::sort(want.begin(), want.end(), [](const Alert& x, const Alert& y) {
      return std::tie(x.ts_us, x.id) > std::tie(y.ts_us, y.id);
    });
    if (want.size() > q.limit) want.resize(q.limit);
    return Ids(want);
  };
  std::vector<AlertQuery> queries = {
      {},
      {.limit = 5},
      {.type = AlertType::kAlgNone},
      {.service = "payments"},
      {.type = AlertType::kExpiredUse, .service = "search"},
      {.type = AlertType::kExpiredUse,
       .service = "search",
       .since_us = kT0 + 6000},
      {.since_us = kT0 + 10'000, .limit = 3},
      {.since_us = kT0 + 100'000},
      {.type = AlertType::kKeyReuse},  // no alert has it
      {.limit = 0},
  };
  for (const AlertQuery& q : queries) {
    SCOPED_TRACE(std::string(q.type ? AlertTypeName(*q.type) : "") + "|" +
                 q.service + "|" + std::to_string(q.since_us) + "|" +
                 std::to_string(q.limit));
    EXPECT_EQ(Ids(MustQuery(q)), expected(q));
  }
  EXPECT_EQ(MustQuery({}).front().id, "id-29");
}

// Walking pages with the cursor of each page's last alert visits every
// alert once, in order, whatever the filters, also across tied timestamps.
TEST_P(StoreTest, QueryPagesWithACursorVisitEveryAlertOnce) {
  std::vector<Alert> all;
  for (int i = 0; i < 25; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "id-%02d", i);
    // Threes share a timestamp.
    all.push_back(MakeAlert(id, AlertType::kExpiredUse,
                            "iss|j" + std::to_string(i),
                            i % 2 ? "orders" : "payments", kT0 + (i / 3) * 1000));
  }
  CommitBatch batch;
  batch.new_alerts = all;
  ASSERT_TRUE(store_->Commit(batch).ok());
  for (const std::string& service : {std::string(), std::string("orders")}) {
    SCOPED_TRACE(service);
    std::vector<std::string> walked;
    AlertQuery q{.service = service, .limit = 4};
    for (int page = 0; page < 20; ++page) {
      std::vector<Alert> got = MustQuery(q);
      for (const Alert& a : got) walked.push_back(a.id);
      if (got.size() < q.limit) break;
      q.before = std::make_pair(got.back().ts_us, got.back().id);
    }
    AlertQuery everything{.service = service, .limit = 100};
    EXPECT_EQ(walked, Ids(MustQuery(everything)));
    EXPECT_EQ(walked.size(), service.empty() ? 25u : 12u);
  }
}

TEST_P(StoreTest, QueryLimitIsCappedAt10000) {
  CommitBatch batch;
  for (int i = 0; i < 10'005; ++i) {
    batch.new_alerts.push_back(
        MakeAlert("id-" + std::to_string(i), AlertType::kNoExpiry,
                  "iss|j" + std::to_string(i), "orders", kT0 + i));
  }
  ASSERT_TRUE(store_->Commit(batch).ok());
  EXPECT_EQ(MustQuery({.limit = 20'000}).size(), 10'000u);
  EXPECT_EQ(MustQuery({.limit = 10'000}).size(), 10'000u);
  EXPECT_EQ(MustLoad().alerts.size(), 10'005u);
}

// One writer commits while two readers query; every read must show one
// whole commit. Each commit k writes tokens "a" and "b" with uses = k, alert
// k (ts_us = k) and progress seq = k.
TEST_P(StoreTest, ConcurrentReadsSeeWholeCommits) {
  constexpr int kCommits = 150;
  auto token = [](const std::string& id, uint64_t k) {
    TokenRow row = SimpleToken(id, k);
    row.last_seen_us = static_cast<int64_t>(k) * 1000;
    row.services.clear();
    for (uint64_t i = 0; i <= k % 5; ++i) {
      row.services.push_back("s" + std::to_string(i));
    }
    row.uses_by_service = {{"s0", {0, 0, k, 0, 0, 0}}};
    return row;
  };
  std::atomic<bool> done{false};
  std::atomic<int> errors{0};
  std::atomic<int> rounds[2] = {0, 0};

  std::thread writer([&] {
    for (int k = 1; k <= kCommits; ++k) {
      if (k % 10 == 0) {
        // Let both readers finish a round mid-stream, so they overlap the
        // commits even when commits take microseconds (memory:).
        int r0 = rounds[0].load(), r1 = rounds[1].load();
        while (rounds[0].load() <= r0 || rounds[1].load() <= r1) {
          std::this_thread::yield();
        }
      }
      CommitBatch batch;
      batch.tokens = {token("a", k), token("b", k)};
      char id[16];
      std::snprintf(id, sizeof id, "id-%05d", k);
      batch.new_alerts = {MakeAlert(id, AlertType::kNoExpiry,
                                    "i" + std::to_string(k), "orders", k)};
      batch.progress = {{"host-a", 1, static_cast<uint64_t>(k)}};
      absl::Status s = store_->Commit(batch);
      if (!s.ok()) {
        ADD_FAILURE() << s;
        ++errors;
      }
    }
    done = true;
  });

  auto reader = [&](std::atomic<int>* round) {
    int64_t newest = 0;
    bool last_round = false;
    for (;; ++*round) {
      if (last_round) break;
      last_round = done.load();  // one full round after the writer finishes
      absl::StatusOr<std::optional<TokenRow>> a = store_->GetToken("a");
      if (!a.ok()) {
        ADD_FAILURE() << a.status();
        ++errors;
      } else if (a->has_value()) {
        const TokenRow& row = **a;
        EXPECT_EQ(row.last_seen_us, static_cast<int64_t>(row.uses) * 1000);
        EXPECT_EQ(row.services.size(), row.uses % 5 + 1);
        EXPECT_EQ(row.uses_by_service.at("s0")[2], row.uses);
      }
      absl::StatusOr<std::vector<Alert>> q = store_->QueryAlerts({.limit = 10});
      if (!q.ok()) {
        ADD_FAILURE() << q.status();
        ++errors;
      } else if (!q->empty()) {
        int64_t top = q->front().ts_us;
        EXPECT_GE(top, newest);  // never goes back in time
        newest = top;
        ASSERT_EQ(q->size(), static_cast<size_t>(std::min<int64_t>(10, top)));
        for (size_t i = 0; i < q->size(); ++i) {
          EXPECT_EQ((*q)[i].ts_us, top - static_cast<int64_t>(i));
        }
      }
      absl::StatusOr<Snapshot> snap = store_->Load();
      if (!snap.ok()) {
        ADD_FAILURE() << snap.status();
        ++errors;
      } else if (!snap->tokens.empty()) {
        ASSERT_EQ(snap->tokens.size(), 2u);
        uint64_t k = snap->tokens[0].uses;
        EXPECT_EQ(snap->tokens[1].uses, k);
        EXPECT_EQ(snap->alerts.size(), k);
        ASSERT_EQ(snap->progress.size(), 1u);
        EXPECT_EQ(snap->progress[0].seq, k);
      }
    }
    // The last round ran after the final commit.
    EXPECT_EQ(newest, kCommits);
  };
  std::thread r1(reader, &rounds[0]);
  std::thread r2(reader, &rounds[1]);
  writer.join();
  r1.join();
  r2.join();
  EXPECT_EQ(errors.load(), 0);
  std::printf(
      "[ concurrency ] %s: %d commits while readers ran %d and %d "
      "rounds\n",
      GetParam().c_str(), kCommits, rounds[0].load(), rounds[1].load());
}

// Not asserted: how fast a batch of 1000 dirty tokens is made durable.
TEST_P(StoreTest, ThroughputOf1000TokenCommits) {
  constexpr int kTokens = 1000;
  constexpr int kCommits = 20;
  std::vector<TokenRow> rows;
  for (int i = 0; i < kTokens; ++i) {
    TokenRow row = FullTokenRow();
    row.identity = "https://idp.example.com|jti-" + std::to_string(i);
    row.token.set_jti("jti-" + std::to_string(i));
    rows.push_back(row);
  }
  CommitBatch insert;
  insert.tokens = rows;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(store_->Commit(insert).ok());
  double insert_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  start = std::chrono::steady_clock::now();
  for (int c = 0; c < kCommits; ++c) {
    CommitBatch update;
    update.tokens = rows;
    for (TokenRow& row : update.tokens) {
      row.uses += c + 1;
      row.last_seen_us += c + 1;
    }
    ASSERT_TRUE(store_->Commit(update).ok());
  }
  double update_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf(
      "[ throughput ] %s: first commit (1000 inserts) %.1f ms; "
      "1000-token upsert commits: %.1f commits/s (%.0f token rows/s)\n",
      GetParam().c_str(), insert_s * 1e3, kCommits / update_s,
      kCommits * kTokens / update_s);
  EXPECT_EQ(MustLoad().tokens.size(), static_cast<size_t>(kTokens));
}

// ---------------------------------------------------------------------------
// OpenStore.

TEST(OpenStoreTest, MemoryAndBadUris) {
  EXPECT_TRUE(OpenStore("memory:").ok());
  absl::StatusOr<std::unique_ptr<Store>> bad = OpenStore("postgres://x");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("postgres://x"));
  bad = OpenStore("sqlite:");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("sqlite:"));
}

// ---------------------------------------------------------------------------
// SQLite only.

Snapshot LoadOk(Store& store) {
  absl::StatusOr<Snapshot> snap = store.Load();
  EXPECT_TRUE(snap.ok()) << snap.status();
  return snap.ok() ? *std::move(snap) : Snapshot{};
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> MustOpen() {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore("sqlite:" + path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  TempDbFile db_;
  const std::string& path_ = db_.path();
};

TEST_F(SqliteStoreTest, StatePersistsAcrossReopen) {
  CommitBatch batch;
  batch.tokens = {FullTokenRow(), OpaqueTokenRow()};
  batch.new_alerts = {FullAlert(), NoResponseAlert()};
  batch.progress = {{"host-a", 3, 17}};
  std::string before;
  {
    std::unique_ptr<Store> store = MustOpen();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Commit(batch).ok());
    before = Describe(LoadOk(*store));
  }
  {
    std::unique_ptr<Store> store = MustOpen();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(Describe(LoadOk(*store)), before);
    // Dedup keys survive too: the same alert again is refused.
    CommitBatch again;
    again.new_alerts = {FullAlert()};
    again.new_alerts[0].id = "another-id";
    EXPECT_EQ(store->Commit(again).code(), absl::StatusCode::kAlreadyExists);
    CommitBatch more;
    more.retired = {OpaqueTokenRow().identity};
    ASSERT_TRUE(store->Commit(more).ok());
  }
  std::unique_ptr<Store> store = MustOpen();
  ASSERT_NE(store, nullptr);
  Snapshot snap = LoadOk(*store);
  ASSERT_EQ(snap.tokens.size(), 1u);
  EXPECT_EQ(Describe(snap.tokens[0]), Describe(FullTokenRow()));
  EXPECT_EQ(snap.alerts.size(), 2u);
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotSqlite) {
  const std::string text =
      "identity,uses\nthis is a CSV file, not a database, and it is long "
      "enough to have a header's worth of bytes in it............\n";
  {
    std::ofstream out(path_, std::ios::binary);
    out << text;
  }
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore("sqlite:" + path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("sqlite:" + path_));
  EXPECT_THAT(store.status().message(), HasSubstr("not a database"));
  // Left exactly as it was.
  std::ifstream in(path_, std::ios::binary);
  std::string after((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  EXPECT_EQ(after, text);
}

TEST_F(SqliteStoreTest, RefusesANewerSchemaVersion) {
  ASSERT_NE(MustOpen(), nullptr);
  Sql(path_, "UPDATE meta SET value = '2' WHERE key = 'schema_version'");
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore("sqlite:" + path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
  EXPECT_THAT(store.status().message(), HasSubstr("schema_version 2 is newer"));

  Sql(path_, "UPDATE meta SET value = 'banana' WHERE key = 'schema_version'");
  store = OpenStore("sqlite:" + path_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("unknown schema_version"));
}

TEST_F(SqliteStoreTest, RefusesSomeoneElsesDatabase) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE users (name TEXT)", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore("sqlite:" + path_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
  EXPECT_THAT(store.status().message(), HasSubstr("not a tokenwatch database"));
  // Untouched: still someone else's one table, not switched to WAL.
  EXPECT_EQ(Sql(path_, "SELECT name FROM sqlite_master"),
            (std::vector<std::vector<std::string>>{{"users"}}));
  EXPECT_EQ(Sql(path_, "PRAGMA journal_mode"),
            (std::vector<std::vector<std::string>>{{"delete"}}));
}

TEST_F(SqliteStoreTest, RefusesPathsItCannotCreate) {
  const std::string missing_dir = ::testing::TempDir() + "no-such-dir-" +
                                  std::to_string(getpid()) + "/state.db";
  absl::StatusOr<std::unique_ptr<Store>> store =
      OpenStore("sqlite:" + missing_dir);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("sqlite:" + missing_dir));

  store = OpenStore("sqlite:" + ::testing::TempDir());  // a directory
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(::testing::TempDir()));
}

TEST_F(SqliteStoreTest, RefusesAReadOnlyFile) {
  ASSERT_NE(MustOpen(), nullptr);
  ASSERT_EQ(chmod(path_.c_str(), 0444), 0);
  // Root may write a read-only file: open it as an unprivileged user (a
  // forked child that drops to nobody), which CI as root exercises too.
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipefd[0]);
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore("sqlite:" + path_);
    std::string msg = store.ok() ? "" : std::string(store.status().message());
    if (write(pipefd[1], msg.data(), msg.size()) < 0) _exit(4);
    _exit(store.ok()                                                     ? 1
          : store.status().code() == absl::StatusCode::kPermissionDenied ? 0
                                                                         : 2);
  }
  close(pipefd[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0)
    msg.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  chmod(path_.c_str(), 0644);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << msg;
  EXPECT_THAT(msg, HasSubstr(path_));
}

// A WAL index in a mapped "-shm" file faults (SIGBUS, no log line) when
// the file system turns read-only or full under the collector: with
// locking_mode=EXCLUSIVE it lives in heap memory and no "-shm" exists.
TEST_F(SqliteStoreTest, WalIndexIsNotAMappedFile) {
  std::unique_ptr<Store> store = MustOpen();
  ASSERT_NE(store, nullptr);
  CommitBatch batch;
  batch.tokens = {FullTokenRow()};
  batch.new_alerts = {FullAlert()};
  ASSERT_TRUE(store->Commit(batch).ok());
  ASSERT_TRUE(store->QueryAlerts(AlertQuery{}).ok());
  struct stat st;
  EXPECT_EQ(stat((path_ + "-wal").c_str(), &st), 0) << "not in WAL mode";
  EXPECT_NE(stat((path_ + "-shm").c_str(), &st), 0)
      << "the WAL index is a mapped file";
}

// /healthz shows why commits fail; a commit that succeeds clears it.
TEST_F(SqliteStoreTest, LastCommitErrorSaysWhyTheLastCommitFailed) {
  std::unique_ptr<Store> store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LastCommitError(), "");
  CommitBatch batch;
  batch.new_alerts = {FullAlert()};
  ASSERT_TRUE(store->Commit(batch).ok());
  ASSERT_FALSE(store->Commit(batch).ok());  // the same alert id again
  EXPECT_THAT(store->LastCommitError(), HasSubstr(path_));
  CommitBatch other;
  other.new_alerts = {NoResponseAlert()};
  ASSERT_TRUE(store->Commit(other).ok());
  EXPECT_EQ(store->LastCommitError(), "");
}

// What an operator sees with `sqlite3 state.db`.
TEST_F(SqliteStoreTest, TablesAreReadableWithPlainSql) {
  std::unique_ptr<Store> store = MustOpen();
  ASSERT_NE(store, nullptr);
  CommitBatch batch;
  batch.tokens = {FullTokenRow(), OpaqueTokenRow()};
  batch.new_alerts = {FullAlert(), NoResponseAlert()};
  batch.progress = {{"host-a", 3, 17}};
  ASSERT_TRUE(store->Commit(batch).ok());
  Alert repeat = FullAlert();
  repeat.count = 9;
  repeat.last_ts_us = kT0 + 60'000'000;
  CommitBatch again;
  again.repeated_alerts = {repeat};
  ASSERT_TRUE(store->Commit(again).ok());
  // The collector holds its file exclusively while it runs
  // (locking_mode=EXCLUSIVE, sqlite_store.h): the operator reads it after.
  store.reset();

  using Rows = std::vector<std::vector<std::string>>;
  EXPECT_EQ(Sql(path_, "SELECT value FROM meta WHERE key = 'schema_version'"),
            (Rows{{"1"}}));
  EXPECT_EQ(Sql(path_, "PRAGMA journal_mode"), (Rows{{"wal"}}));
  // A new file gets 64 KiB pages: the journal is written in a few large
  // pages per commit rather than a hundred small ones.
  EXPECT_EQ(Sql(path_, "PRAGMA page_size"), (Rows{{"65536"}}));

  EXPECT_EQ(
      Sql(path_,
          "SELECT identity, fp, iss, sub, jti, alg, aud, exp, first_seen, "
          "last_seen, uses, services, clients, uses_by_service FROM tokens "
          "ORDER BY identity"),
      (Rows{{"00112233445566778899aabbccddeeff",
             "00112233445566778899aabbccddeeff", "", "", "", "", "[]", "NULL",
             "2026-11-30T10:15:03.120Z", "2026-11-30T10:15:03.120Z", "1", "[]",
             "[]", "{}"},
            {"https://idp.example.com|j-81", "9f2c4b1de0a3f5c6b7a8091a2b3c4d5e",
             "https://idp.example.com", "\xc3\xa5lice", "j-81", "RS256",
             R"(["orders-api","payments-api"])", "1796037303",
             "2026-11-30T10:15:03.120Z", "2026-11-30T10:15:08.120Z", "42",
             R"(["orders","payments","quote\"and\\slash"])",
             R"(["10.0.3.7","2001:db8::1"])",
             R"({"orders":{"none":1,"1xx":0,"2xx":30,"3xx":0,"4xx":1,"5xx":0},)"
             R"("payments":{"none":0,"1xx":0,"2xx":8,"3xx":1,"4xx":0,"5xx":1},)"
             R"("quote\"and\\slash":{"none":0,"1xx":0,"2xx":0,"3xx":0,)"
             R"("4xx":0,"5xx":0}})"}}));
  // The JSON columns are real JSON to SQLite's own functions.
  EXPECT_EQ(Sql(path_,
                "SELECT json_extract(uses_by_service, '$.orders.2xx'), "
                "json_array_length(services), aud ->> '$[1]' FROM tokens "
                "WHERE identity = 'https://idp.example.com|j-81'"),
            (Rows{{"30", "3", "payments-api"}}));

  Alert want = FullAlert();
  want.count = 9;
  want.last_ts_us = repeat.last_ts_us;
  EXPECT_EQ(
      Sql(path_,
          "SELECT id, type, severity, ts, identity, service, status, accepted, "
          "count, last_ts, record FROM alerts ORDER BY ts_us"),
      (Rows{{want.id, "expired_use", "critical", "2026-11-30T10:15:03.120Z",
             want.identity, "orders", "401", "0", "9",
             "2026-11-30T10:16:03.120Z", AlertJson(want)},
            {NoResponseAlert().id, "token_in_url", "low",
             "2026-11-30T10:15:03.120Z", NoResponseAlert().identity, "", "NULL",
             "NULL", "1", "2026-11-30T10:15:03.120Z",
             AlertJson(NoResponseAlert())}}));
  EXPECT_EQ(Sql(path_, "SELECT agent_id, boot_id, seq FROM agent_progress"),
            (Rows{{"host-a", "3", "17"}}));

  // The indexes the queries rely on, and the dedup key as a constraint.
  EXPECT_EQ(Sql(path_,
                "SELECT name, \"unique\" FROM pragma_index_list('alerts') "
                "WHERE origin = 'c' ORDER BY name"),
            (Rows{{"alerts_key", "1"},
                  {"alerts_service_ts", "0"},
                  {"alerts_ts", "0"},
                  {"alerts_type_ts", "0"}}));
  EXPECT_EQ(
      Sql(path_,
          "SELECT group_concat(name) FROM pragma_index_info('alerts_key')"),
      (Rows{{"type,identity,service"}}));
}

}  // namespace
}  // namespace tokenwatch::collector
