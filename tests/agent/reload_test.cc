// SIGHUP reload of the agent's config: a broken file (or an issuer key file
// that does not load) changes nothing and says where; a good file's
// services and token headers take effect from the next packet, and keys
// that need a restart keep their running values and are named.
#include "agent/reload.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "agent/output/event_sink.h"
#include "agent/pipeline.h"
#include "tests/agent/testing/jwt_builder.h"
#include "tests/agent/testing/packet_builder.h"

namespace tokenwatch {
namespace {

using testing::FlowBuilder;

constexpr char kBase[] =
    "services:\n"
    "  - name: orders\n"
    "    match: { hosts: [orders.internal] }\n"
    "agent:\n"
    "  interface: eth0\n"
    "  fold_window: 0s\n";

class AgentReloadTest : public ::testing::Test {
 protected:
  AgentReloadTest() {
    path_ = ::testing::TempDir() + "/agent_reload_test_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() +
            ".yaml";
    Write(kBase);
    cfg_ = *config::LoadConfig(path_);
    fp_ = *token::Fingerprinter::Create("key");
  }
  ~AgentReloadTest() override { std::filesystem::remove(path_); }
  void Write(const std::string& text) { std::ofstream(path_) << text; }

  // One request on a fresh connection; returns the events it made.
  std::vector<v1::UsageEvent> Request(Pipeline& p, uint16_t client_port,
                                      const std::string& header) {
    sink_.events.clear();
    FlowBuilder f({"10.0.3.7", client_port});
    f.Handshake()
        .Client("GET /v1/orders/1 HTTP/1.1\r\nHost: orders.internal\r\n" +
                header + "\r\n\r\n")
        .Server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        .Fin();
    for (auto& fr : f.frames()) {
      capture::RawPacket pkt{
          fr.ts_us, fr.bytes.data(), static_cast<uint32_t>(fr.bytes.size()),
          static_cast<uint32_t>(fr.bytes.size()), DLT_EN10MB};
      p.OnPacket(pkt);
    }
    p.Advance(1764497800000000);
    return sink_.events;
  }

  std::string path_;
  config::Config cfg_;
  std::unique_ptr<token::Fingerprinter> fp_;
  output::VectorSink sink_;
  AgentStats stats_;
};

TEST_F(AgentReloadTest, BrokenFileChangesNothingAndNamesLineAndKey) {
  AgentReloader reloader(path_, cfg_, cfg_);
  Write(std::string(kBase) + "  token_headers: 7\n  bogus_key: 1\n");
  auto gen = reloader.Load(&stats_, nullptr);
  ASSERT_FALSE(gen.ok());
  std::string msg(gen.status().message());
  EXPECT_NE(msg.find(path_ + ":"), std::string::npos) << msg;
  EXPECT_EQ(gen.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AgentReloadTest, IssuerKeyFileThatDoesNotLoadIsAFailure) {
  AgentReloader reloader(path_, cfg_, cfg_);
  Write(std::string(kBase) +
        "issuers:\n  - iss: https://idp.test\n    algorithms: [RS256]\n"
        "    jwks_file: /nonexistent/idp.jwks.json\n");
  auto gen = reloader.Load(&stats_, nullptr);
  ASSERT_FALSE(gen.ok());
  std::string msg(gen.status().message());
  EXPECT_NE(msg.find(path_), std::string::npos) << msg;
  EXPECT_NE(msg.find("/nonexistent/idp.jwks.json"), std::string::npos) << msg;
}

TEST_F(AgentReloadTest, ServicesAndTokenHeadersTakeEffectOnNextPacket) {
  auto checks = *token::TokenChecks::Create(cfg_, &stats_);
  Pipeline p(cfg_, "host-a", fp_.get(), &sink_, checks.get());
  auto before = Request(p, 40001, "Authorization: Bearer opaque-1");
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0].service(), "orders");
  EXPECT_TRUE(Request(p, 40002, "X-New-Token: opaque-2").empty());

  AgentReloader reloader(path_, cfg_, cfg_);
  Write(
      "services:\n"
      "  - name: shop\n"
      "    match: { hosts: [orders.internal] }\n"
      "agent:\n"
      "  interface: eth1\n"
      "  fold_window: 0s\n"
      "  token_headers: [X-New-Token]\n");
  std::vector<std::string> restart;
  auto gen = reloader.Load(&stats_, &restart);
  ASSERT_TRUE(gen.ok()) << gen.status();
  EXPECT_EQ(restart, std::vector<std::string>{"agent.interface"});
  EXPECT_EQ(gen->config->agent.interface, "eth0");  // still the running one
  p.Reconfigure(*gen->config, gen->checks.get());
  checks.reset();

  auto after = Request(p, 40003, "Authorization: Bearer opaque-1");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].service(), "shop");
  auto header = Request(p, 40004, "X-New-Token: opaque-2");
  ASSERT_EQ(header.size(), 1u);
  EXPECT_EQ(header[0].service(), "shop");
  p.Finish();
}

TEST_F(AgentReloadTest, IssuerPolicyAppliesToTokensSeenBefore) {
  Write(std::string(kBase) +
        "issuers:\n  - iss: https://idp.test\n    algorithms: [HS256]\n");
  cfg_ = *config::LoadConfig(path_);
  auto checks = *token::TokenChecks::Create(cfg_, &stats_);
  Pipeline p(cfg_, "host-a", fp_.get(), &sink_, checks.get());
  // {"iss":"https://idp.test","sub":"alice","jti":"j-1","exp":1764501300}
  std::string jwt = testing::MakeJwt(
      R"({"iss":"https://idp.test","sub":"alice","jti":"j-1","exp":1764501300})");
  auto has = [](const v1::UsageEvent& e, const std::string& finding) {
    for (const std::string& f : e.findings())
      if (f == finding) return true;
    return false;
  };
  auto before = Request(p, 40011, "Authorization: Bearer " + jwt);
  ASSERT_EQ(before.size(), 1u);
  EXPECT_FALSE(has(before[0], "alg_not_allowed"));

  AgentReloader reloader(path_, cfg_, cfg_);
  Write(std::string(kBase) +
        "issuers:\n  - iss: https://idp.test\n    algorithms: [RS256]\n");
  auto gen = reloader.Load(&stats_, nullptr);
  ASSERT_TRUE(gen.ok()) << gen.status();
  p.Reconfigure(*gen->config, gen->checks.get());
  checks.reset();
  // The same token again: the cache started afresh, so the new policy
  // applies to it.
  auto after = Request(p, 40012, "Authorization: Bearer " + jwt);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_TRUE(has(after[0], "alg_not_allowed"));
  p.Finish();
}

}  // namespace
}  // namespace tokenwatch
