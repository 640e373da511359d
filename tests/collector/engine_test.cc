// The engine against a real store: detections raise alerts once per
// (type, identity, service), batches count exactly once, and a restarted
// engine resumes without raising anything twice.
#include "collector/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "collector/store/store.h"

namespace tokenwatch::collector {
namespace {

constexpr int64_t kExp = 1764497703;

v1::UsageEvent Use(const std::string& service, int64_t ts_s,
                   const std::string& client = "10.0.3.7",
                   uint32_t status = 200, const std::string& jti = "j-1") {
  v1::UsageEvent e;
  e.set_ts_us(ts_s * 1000000);
  e.set_last_ts_us(ts_s * 1000000);
  e.set_count(1);
  e.set_agent("host-a");
  e.set_service(service);
  e.set_method("GET");
  e.set_path("/v1/x");
  e.set_client(client);
  e.set_server("10.0.0.5:8080");
  e.set_status(status);
  v1::TokenInfo* t = e.mutable_token();
  t->set_kind(v1::TOKEN_KIND_JWT);
  t->set_fp("00112233445566778899aabbccddeeff");
  t->set_iss("https://idp.test");
  t->set_sub("alice");
  t->set_jti(jti);
  t->set_exp(kExp);
  t->add_aud("orders-api");
  t->set_alg("HS256");
  return e;
}

v1::EventBatch Batch(uint64_t seq, std::vector<v1::UsageEvent> events) {
  v1::EventBatch b;
  b.set_seq(seq);
  for (auto& e : events) *b.add_events() = std::move(e);
  return b;
}

class EngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  EngineTest() {
    cfg_.services.push_back({"orders", {{}, {}}, {"orders-api"}});
    cfg_.services.push_back({"payments", {{}, {}}, {"payments-api"}});
    cfg_.detections.multi_source = {absl::Minutes(5), 3};
    std::string name =
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    uri_ = GetParam() == "sqlite" ? "sqlite:" + ::testing::TempDir() +
                                        "/engine_test_" + name + ".db"
                                  : "memory:";
    if (GetParam() == "sqlite") std::filesystem::remove(uri_.substr(7));
    store_ = *OpenStore(uri_);
  }
  std::unique_ptr<Engine> NewEngine() {
    auto e = std::make_unique<Engine>(
        cfg_, store_.get(), [this](const Alert& a) { raised_.push_back(a); });
    EXPECT_TRUE(e->Restore().ok());
    return e;
  }
  config::Config cfg_;
  std::string uri_;
  std::unique_ptr<Store> store_;
  std::vector<Alert> raised_;
};

TEST_P(EngineTest, RaisesOnceAndCountsRepeats) {
  auto engine = NewEngine();
  EXPECT_TRUE(engine->Apply(
      "host-a", 1,
      Batch(1, {Use("orders", kExp - 100), Use("payments", kExp - 90),
                Use("payments", kExp - 80)})));
  EXPECT_TRUE(engine->Commit().ok());
  // cross_service and audience_mismatch at payments, once each.
  ASSERT_EQ(raised_.size(), 2u);
  std::set<std::string> types;
  for (auto& a : raised_) types.insert(a.type);
  EXPECT_TRUE(types.count("cross_service"));
  EXPECT_TRUE(types.count("audience_mismatch"));
  EXPECT_EQ(raised_[0].identity, "https://idp.test|j-1");
  EXPECT_EQ(raised_[0].service, "payments");
  EXPECT_TRUE(raised_[0].accepted.value());
  AlertQuery q;
  q.type = "audience_mismatch";
  auto stored = store_->QueryAlerts(q);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].count, 2u);  // the repeat updated the counter
}

TEST_P(EngineTest, DuplicateBatchesCountOnce) {
  auto engine = NewEngine();
  EXPECT_TRUE(
      engine->Apply("host-a", 7, Batch(1, {Use("orders", kExp - 100)})));
  EXPECT_FALSE(
      engine->Apply("host-a", 7, Batch(1, {Use("orders", kExp - 100)})));
  EXPECT_TRUE(engine->Apply(
      "host-b", 7, Batch(1, {Use("orders", kExp - 100)})));  // other agent
  EXPECT_TRUE(engine->Commit().ok());
  EXPECT_EQ(engine->StoredThrough("host-a", 7), 1u);
  EXPECT_EQ(engine->StoredThrough("host-a", 8), 0u);  // a new run of the agent
  auto row = store_->GetToken("https://idp.test|j-1");
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->uses, 2u);
}

// Only for stores that outlive the process (memory: does not, by design).
class PersistentEngineTest : public EngineTest {};

TEST_P(PersistentEngineTest, RestartResumesWithoutRaisingTwice) {
  {
    auto engine = NewEngine();
    engine->Apply(
        "host-a", 1,
        Batch(1, {Use("orders", kExp - 100), Use("payments", kExp - 90)}));
    ASSERT_TRUE(engine->Commit().ok());
  }
  size_t before = raised_.size();
  store_.reset();
  store_ = *OpenStore(uri_);
  auto engine = NewEngine();
  EXPECT_EQ(engine->StoredThrough("host-a", 1), 1u);
  EXPECT_FALSE(engine->Apply(
      "host-a", 1, Batch(1, {Use("payments", kExp - 90)})));  // resent
  engine->Apply("host-a", 1, Batch(2, {Use("payments", kExp - 10)}));
  ASSERT_TRUE(engine->Commit().ok());
  EXPECT_EQ(raised_.size(),
            before);  // nothing new: same (type, identity, service)
  auto row = store_->GetToken("https://idp.test|j-1");
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->uses, 3u);
  EXPECT_EQ((*row)->services.size(), 2u);
}

TEST_P(EngineTest, MultiSourceWithinTheWindow) {
  auto engine = NewEngine();
  engine->Apply("a", 1,
                Batch(1, {Use("orders", kExp - 1000, "10.0.0.1"),
                          Use("orders", kExp - 900, "10.0.0.2")}));
  engine->Apply(
      "a", 1,
      Batch(2, {Use("orders", kExp - 100, "10.0.0.3")}));  // > 5 min later
  ASSERT_TRUE(engine->Commit().ok());
  EXPECT_TRUE(raised_.empty());
  engine->Apply("a", 1,
                Batch(3, {Use("orders", kExp - 90, "10.0.0.4"),
                          Use("orders", kExp - 80, "10.0.0.5")}));
  ASSERT_TRUE(engine->Commit().ok());
  ASSERT_EQ(raised_.size(), 1u);
  EXPECT_EQ(raised_[0].type, "multi_source");
  EXPECT_EQ(raised_[0].client, "10.0.0.5");  // .3, .4, .5 within 5 min
}

TEST_P(EngineTest, ExpiredTokensAreRetiredAfterRetention) {
  cfg_.collector.token_retention = absl::Hours(1);
  auto engine = NewEngine();
  engine->Apply("a", 1,
                Batch(1, {Use("orders", kExp - 100, "10.0.0.1", 200, "old")}));
  engine->Apply("a", 1,
                Batch(2, {Use("orders", kExp + 7200, "10.0.0.1", 401, "new")}));
  ASSERT_TRUE(engine->Commit().ok());
  EXPECT_EQ(engine->stats().tokens_retired, 1u);
  auto gone = store_->GetToken("https://idp.test|old");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

TEST_P(EngineTest, MemoryPerTokenIsMeasured) {
  auto engine = NewEngine();
  std::vector<v1::UsageEvent> events;
  for (int i = 0; i < 20000; ++i) {
    events.push_back(
        Use("orders", kExp - 100, "10.0.0.1", 200, "jti-" + std::to_string(i)));
  }
  engine->Apply("a", 1, Batch(1, std::move(events)));
  EXPECT_EQ(engine->tokens().size(), 20000u);
  double bytes = engine->tokens().bytes_per_token();
  RecordProperty("bytes_per_token", std::to_string(bytes));
  EXPECT_GT(bytes, 100);
  EXPECT_LT(bytes, 512);
}

INSTANTIATE_TEST_SUITE_P(Stores, EngineTest,
                         ::testing::Values("memory", "sqlite"));
INSTANTIATE_TEST_SUITE_P(Stores, PersistentEngineTest,
                         ::testing::Values("sqlite"));

}  // namespace
}  // namespace tokenwatch::collector
