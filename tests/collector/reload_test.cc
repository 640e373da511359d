// SIGHUP reload of the collector's config: a broken file changes nothing
// and says where it is broken; a good file's sensitive endpoints, services
// and detections take effect in the engine, while keys that need a restart
// keep their running values and are named.
#include "collector/reload.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "collector/engine.h"
#include "collector/store/store.h"
#include "tests/collector/testing/builders.h"

namespace tokenwatch::collector {
namespace {

// A POST to /v1/refunds/7 at payments with a fresh token for payments
// (RS256): {"iss":"https://idp.test","sub":"alice","aud":["payments"],
// "exp":<ts_s + 600>,"jti":"j-<ts_s>"}
v1::UsageEvent Refund(int64_t ts_s) {
  v1::UsageEvent e =
      test::Use("payments", ts_s, "10.0.3.7", 200, "j-" + std::to_string(ts_s));
  e.set_method("POST");
  e.set_path("/v1/refunds/7");
  v1::TokenInfo* t = e.mutable_token();
  t->set_exp(ts_s + 600);
  t->clear_aud();
  t->add_aud("payments");
  t->set_alg("RS256");
  return e;
}

v1::EventBatch Batch(uint64_t seq, v1::UsageEvent e) {
  return test::Batch(seq, {std::move(e)});
}

constexpr char kBase[] =
    "services:\n"
    "  - name: payments\n"
    "    audiences: [payments]\n"
    "collector:\n"
    "  listen: 127.0.0.1:1111\n";

class ReloadTest : public ::testing::Test {
 protected:
  ReloadTest() {
    path_ = ::testing::TempDir() + "/reload_test_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() +
            ".yaml";
    Write(kBase);
    file_ = *config::LoadConfig(path_);
    running_ = file_;
    running_.collector.listen = "127.0.0.1:2222";  // as if --listen
    store_ = *OpenStore("memory:");
  }
  ~ReloadTest() override { std::filesystem::remove(path_); }
  void Write(const std::string& text) { std::ofstream(path_) << text; }
  std::vector<AlertType> AlertTypes() const {
    std::vector<AlertType> out;
    for (const Alert& a : raised_) out.push_back(a.type);
    return out;
  }
  std::string path_;
  config::Config file_, running_;
  std::unique_ptr<Store> store_;
  std::vector<Alert> raised_;
};

TEST_F(ReloadTest, BrokenFileKeepsRunningConfigAndNamesLineAndKey) {
  ConfigReloader reloader(path_, file_, running_);
  Write(std::string(kBase) +
        "sensitive_endpoints:\n  - path: 12\n    bogus: 1\n");
  bool applied = false;
  absl::Status s =
      reloader.Reload([&](const config::Config&) { applied = true; }, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_FALSE(applied);
  std::string msg(s.message());
  EXPECT_NE(msg.find(path_ + ":"), std::string::npos) << msg;
  EXPECT_NE(msg.find("key 'sensitive_endpoints[0]"), std::string::npos) << msg;
  EXPECT_TRUE(reloader.running().sensitive_endpoints.empty());
  EXPECT_EQ(reloader.running().collector.listen, "127.0.0.1:2222");
}

TEST_F(ReloadTest, GoodFileTakesReloadableKeysKeepsRestartKeys) {
  ConfigReloader reloader(path_, file_, running_);
  Write(
      "services:\n"
      "  - name: payments\n"
      "    audiences: [payments]\n"
      "  - name: orders\n"
      "sensitive_endpoints:\n"
      "  - path: /v1/refunds/**\n"
      "    severity: high\n"
      "detections:\n"
      "  clock_leeway: 5s\n"
      "collector:\n"
      "  listen: 127.0.0.1:3333\n"
      "  store: \"memory:\"\n");
  std::vector<std::string> restart;
  config::Config seen;
  ASSERT_TRUE(
      reloader.Reload([&](const config::Config& c) { seen = c; }, &restart)
          .ok());
  EXPECT_EQ(seen.services.size(), 2u);
  ASSERT_EQ(seen.sensitive_endpoints.size(), 1u);
  EXPECT_EQ(seen.detections.clock_leeway, absl::Seconds(5));
  // Running values stay (the flag's, not the file's), and are named.
  EXPECT_EQ(seen.collector.listen, "127.0.0.1:2222");
  EXPECT_EQ(seen.collector.store, running_.collector.store);
  EXPECT_EQ(restart,
            (std::vector<std::string>{"collector.listen", "collector.store"}));
  // A second reload of the same file names nothing new.
  restart.clear();
  ASSERT_TRUE(reloader.Reload([](const config::Config&) {}, &restart).ok());
  EXPECT_TRUE(restart.empty());
}

TEST_F(ReloadTest, EngineRaisesForNewSensitiveEndpointOnlyAfterReconfigure) {
  Engine engine(running_, store_.get(),
                [this](const Alert& a) { raised_.push_back(a); });
  ASSERT_TRUE(engine.Restore().ok());
  ASSERT_TRUE(engine.Apply("host-a", 1, Batch(1, Refund(1000))));
  ASSERT_TRUE(engine.Commit().ok());
  EXPECT_TRUE(AlertTypes().empty());

  ConfigReloader reloader(path_, file_, running_);
  // Broken: nothing changes, the engine is not touched.
  Write(std::string(kBase) + "sensitive_endpoints: {path: [}\n");
  EXPECT_FALSE(
      reloader
          .Reload([&](const config::Config& c) { engine.Reconfigure(c); },
                  nullptr)
          .ok());
  ASSERT_TRUE(engine.Apply("host-a", 1, Batch(2, Refund(1001))));
  ASSERT_TRUE(engine.Commit().ok());
  EXPECT_TRUE(AlertTypes().empty());
  EXPECT_EQ(engine.stats().config_reloads_ok, 0u);

  Write(std::string(kBase) +
        "sensitive_endpoints:\n  - method: POST\n    path: /v1/refunds/**\n"
        "    severity: high\n");
  ASSERT_TRUE(
      reloader
          .Reload([&](const config::Config& c) { engine.Reconfigure(c); },
                  nullptr)
          .ok());
  EXPECT_EQ(engine.stats().config_reloads_ok, 1u);
  ASSERT_TRUE(engine.Apply("host-a", 1, Batch(3, Refund(1002))));
  ASSERT_TRUE(engine.Commit().ok());
  EXPECT_EQ(AlertTypes(),
            std::vector<AlertType>{AlertType::kSensitiveEndpoint});
  EXPECT_EQ(raised_[0].severity, Severity::kHigh);
  // The reloaded config outlives the caller's copy: the detectors refer
  // to the engine's own.
  Write(kBase);
  ASSERT_TRUE(
      reloader
          .Reload([&](const config::Config& c) { engine.Reconfigure(c); },
                  nullptr)
          .ok());
  ASSERT_TRUE(engine.Apply("host-a", 1, Batch(4, Refund(1003))));
  ASSERT_TRUE(engine.Commit().ok());
  EXPECT_EQ(raised_.size(), 1u);
}

}  // namespace
}  // namespace tokenwatch::collector
