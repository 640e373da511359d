#include "collector/notify/notifier.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace tokenwatch::collector {
namespace {

Alert Sample() {
  Alert a;
  a.id = "0192-test";
  a.type = AlertType::kExpiredUse;
  a.severity = Severity::kCritical;
  a.ts_us = 1764497703120000;
  a.identity = "https://idp.test|j-81";
  a.token.set_fp("9f2c");
  a.token.set_sub("alice");
  a.service = "orders";
  a.method = "GET";
  a.path = "/v1/orders/42";
  a.status = 200;
  a.accepted = true;
  a.detail = "token expired 10m3s before use and the service accepted it";
  return a;
}

TEST(NotifierTest, AlertmanagerBodyHasLabelsAnnotationsAndTimes) {
  std::string body = AlertmanagerBody(Sample(), absl::Hours(1));
  EXPECT_NE(body.find(R"("alertname":"tokenwatch_expired_use")"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find(R"("severity":"critical")"), std::string::npos);
  EXPECT_NE(body.find(R"("service":"orders")"), std::string::npos);
  EXPECT_NE(body.find(R"("startsAt":"2025-11-30T10:15:03.120Z")"),
            std::string::npos);
  EXPECT_NE(body.find(R"("endsAt":"2025-11-30T11:15:03.120Z")"),
            std::string::npos);
  EXPECT_NE(body.find(R"("accepted":"true")"), std::string::npos);
  EXPECT_EQ(body.front(), '[');
}

TEST(NotifierTest, WebhookSignatureIsHmacSha256) {
  // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
  EXPECT_EQ(WebhookSignature("Jefe", "what do ya want for nothing?"),
            "sha256="
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(NotifierTest, FailingSinkIsRetriedThenDroppedAndCounted) {
  // A port with nothing listening: every attempt fails.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  config::Collector cfg;
  cfg.webhooks.push_back(
      {"http://127.0.0.1:" + std::to_string(port) + "/hook", ""});
  Notifier::Options o;
  o.max_attempts = 3;
  o.backoff_initial = std::chrono::milliseconds(5);
  o.timeout = std::chrono::milliseconds(500);
  auto n = Notifier::Create(cfg, o);
  ASSERT_TRUE(n.ok());
  (*n)->Enqueue(Sample());
  ASSERT_TRUE((*n)->WaitIdle(std::chrono::seconds(10)));
  auto counters = (*n)->Counters();
  uint64_t retry = 0, dropped = 0, ok = 0;
  for (auto& c : counters) {
    if (c.result == "retry") retry = c.value;
    if (c.result == "dropped") dropped = c.value;
    if (c.result == "ok") ok = c.value;
  }
  EXPECT_EQ(ok, 0u);
  EXPECT_EQ(retry, 2u);
  EXPECT_EQ(dropped, 1u);
}

TEST(NotifierTest, BoundedQueueCountsWhatDoesNotFit) {
  config::Collector cfg;
  cfg.webhooks.push_back(
      {"http://127.0.0.1:9/hook", ""});  // discard port: refused
  Notifier::Options o;
  o.max_queue = 2;
  o.max_attempts = 1;
  o.timeout = std::chrono::milliseconds(200);
  auto n = Notifier::Create(cfg, o);
  ASSERT_TRUE(n.ok());
  for (int i = 0; i < 50; ++i) (*n)->Enqueue(Sample());
  ASSERT_TRUE((*n)->WaitIdle(std::chrono::seconds(20)));
  uint64_t dropped = 0;
  for (auto& c : (*n)->Counters()) {
    if (c.result == "dropped") dropped = c.value;
  }
  EXPECT_EQ(dropped, 50u);  // every one: refused by the bound or failed
}

}  // namespace
}  // namespace tokenwatch::collector
