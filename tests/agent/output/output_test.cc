#include <gtest/gtest.h>

#include "agent/output/event_folder.h"
#include "agent/output/event_json.h"

namespace tokenwatch::output {
namespace {

constexpr int64_t kT0 = 1764497700000000;  // 2025-11-30T10:15:00Z

v1::UsageEvent Use(int64_t ts_us, uint32_t status = 200) {
  v1::UsageEvent e;
  e.set_ts_us(ts_us);
  e.set_last_ts_us(ts_us);
  e.set_count(1);
  e.set_agent("host-a");
  e.set_service("orders");
  e.set_method("GET");
  e.set_path("/v1/orders/42");
  e.set_client("10.0.3.7");
  e.set_server("10.0.0.5:8080");
  e.set_status(status);
  e.set_location(v1::TOKEN_LOCATION_AUTHORIZATION);
  e.mutable_token()->set_kind(v1::TOKEN_KIND_JWT);
  e.mutable_token()->set_fp("9f2c");
  e.mutable_token()->set_exp(kT0 / 1000000 + 10);
  return e;
}

TEST(EventJsonTest, MatchesTheSpecShape) {
  v1::UsageEvent e = Use(kT0 + 120000);
  e.set_last_ts_us(kT0 + 870000);
  e.set_count(3);
  e.mutable_token()->add_aud("orders-api");
  e.mutable_token()->set_alg("RS256");
  e.add_findings("token_in_url");
  std::string out;
  AppendEventJson(e, &out);
  EXPECT_EQ(out,
            R"({"ts":"2025-11-30T10:15:00.120Z","last_ts":"2025-11-30T10:15:00.870Z","count":3,)"
            R"("agent":"host-a","service":"orders","method":"GET","path":"/v1/orders/42",)"
            R"("client":"10.0.3.7","server":"10.0.0.5:8080","status":200,"location":"authorization",)"
            R"("token":{"kind":"jwt","fp":"9f2c","aud":["orders-api"],"exp":1764497710,"alg":"RS256"},)"
            R"("findings":["token_in_url"]})");
}

TEST(EventJsonTest, NoResponseIsNullAndStringsAreEscaped) {
  v1::UsageEvent e = Use(kT0, /*status=*/0);
  e.set_path("/a\"b\\c\x01\xff\xc3\xa9");
  std::string out;
  AppendEventJson(e, &out);
  EXPECT_NE(out.find(R"("status":null)"), std::string::npos);
  EXPECT_NE(out.find(R"("path":"/a\"b\\c\u0001\ufffdé")"), std::string::npos) << out;
}

TEST(EventFolderTest, FoldsWithinTheWindow) {
  VectorSink sink;
  EventFolder f(/*window_us=*/1000000, 100, &sink);
  f.Add(Use(kT0));
  f.Add(Use(kT0 + 300000));
  f.Add(Use(kT0 + 900000));
  f.Add(Use(kT0 + 500000, /*status=*/401));  // a different status: its own event
  f.Advance(kT0 + 999999);
  EXPECT_TRUE(sink.events.empty());
  f.Advance(kT0 + 2000001);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].count(), 3u);
  EXPECT_EQ(sink.events[0].ts_us(), kT0);
  EXPECT_EQ(sink.events[0].last_ts_us(), kT0 + 900000);
  EXPECT_EQ(sink.events[1].status(), 401u);
  EXPECT_EQ(f.emitted(), 2u);
}

TEST(EventFolderTest, NeverFoldsAcrossExpiry) {
  VectorSink sink;
  EventFolder f(/*window_us=*/60000000, 100, &sink);
  f.Add(Use(kT0 + 9000000));   // 1 s before exp
  f.Add(Use(kT0 + 11000000));  // 1 s after exp
  f.FlushAll();
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].count(), 1u);
}

TEST(EventFolderTest, ZeroWindowEmitsEveryUse) {
  VectorSink sink;
  EventFolder f(0, 100, &sink);
  f.Add(Use(kT0));
  f.Add(Use(kT0));
  EXPECT_EQ(sink.events.size(), 2u);
}

TEST(EventFolderTest, BoundedOpenFoldsAreEmittedNotLost) {
  VectorSink sink;
  EventFolder f(1000000, 2, &sink);
  for (int i = 0; i < 5; ++i) {
    v1::UsageEvent e = Use(kT0);
    e.set_path("/p" + std::to_string(i));
    f.Add(std::move(e));
  }
  EXPECT_LE(f.open(), 2u);
  f.FlushAll();
  EXPECT_EQ(sink.events.size(), 5u);
}

}  // namespace
}  // namespace tokenwatch::output
