#include <gtest/gtest.h>

#include "agent/output/event_folder.h"
#include "agent/output/event_json.h"

namespace tokenwatch::output {
namespace {

constexpr int64_t kT0 = 1764497700000000;  // 2025-11-30T10:15:00Z

UsageRecord Use(int64_t ts_us, uint32_t status = 200,
                std::string path = "/v1/orders/42",
                std::vector<std::string> aud = {}, std::string alg = "") {
  auto req = std::make_shared<RequestInfo>();
  req->agent = "host-a";
  req->service = "orders";
  req->method = "GET";
  req->path = std::move(path);
  req->client = "10.0.3.7";
  req->server = "10.0.0.5:8080";
  v1::TokenInfo token;
  token.set_kind(v1::TOKEN_KIND_JWT);
  token.set_fp("9f2c");
  token.set_exp(kT0 / 1000000 + 10);
  for (auto& a : aud) token.add_aud(a);
  token.set_alg(alg);
  UsageRecord e;
  e.ts_us = e.last_ts_us = ts_us;
  e.status = status;
  e.location = v1::TOKEN_LOCATION_AUTHORIZATION;
  e.request = std::move(req);
  e.token = MakeTokenRecord(std::move(token));
  return e;
}

TEST(EventJsonTest, MatchesTheSpecShape) {
  UsageRecord e =
      Use(kT0 + 120000, 200, "/v1/orders/42", {"orders-api"}, "RS256");
  e.last_ts_us = kT0 + 870000;
  e.count = 3;
  e.location = v1::TOKEN_LOCATION_QUERY;
  e.param = "access_token";
  std::string out;
  AppendEventJson(e, &out);
  EXPECT_EQ(
      out,
      R"({"ts":"2025-11-30T10:15:00.120Z","last_ts":"2025-11-30T10:15:00.870Z","count":3,)"
      R"("agent":"host-a","service":"orders","method":"GET","path":"/v1/orders/42",)"
      R"("client":"10.0.3.7","server":"10.0.0.5:8080","status":200,"location":"query","param":"access_token",)"
      R"("token":{"kind":"jwt","fp":"9f2c","aud":["orders-api"],"exp":1764497710,"alg":"RS256"},)"
      R"("findings":["token_in_url"],"finding_details":{"token_in_url":"token in query parameter access_token"}})");
}

TEST(EventJsonTest, NoResponseIsNullAndStringsAreEscaped) {
  UsageRecord e = Use(kT0, /*status=*/0, "/a\"b\\c\x01\xff\xc3\xa9");
  std::string out;
  AppendEventJson(e, &out);
  EXPECT_NE(out.find(R"("status":null)"), std::string::npos);
  EXPECT_NE(out.find(R"("path":"/a\"b\\c\u0001\ufffdé")"), std::string::npos)
      << out;
}

TEST(EventFolderTest, FirstUseAtOnceRepeatsFolded) {
  VectorSink sink;
  EventFolder f(/*window_us=*/1000000, 100, &sink);
  f.Add(Use(kT0));
  EXPECT_EQ(sink.events.size(), 1u);  // the first use does not wait
  f.Add(Use(kT0 + 300000));
  f.Add(Use(kT0 + 900000));
  f.Add(Use(kT0 + 500000, /*status=*/401));  // a different status: its own key
  EXPECT_EQ(sink.events.size(), 2u);
  f.Advance(kT0 + 999999);
  EXPECT_EQ(sink.events.size(), 2u);
  f.Advance(kT0 + 2000001);
  ASSERT_EQ(sink.events.size(), 3u);
  EXPECT_EQ(sink.events[0].count(), 1u);
  EXPECT_EQ(sink.events[1].status(), 401u);
  EXPECT_EQ(sink.events[2].count(), 2u);  // the repeats
  EXPECT_EQ(sink.events[2].ts_us(), kT0 + 300000);
  EXPECT_EQ(sink.events[2].last_ts_us(), kT0 + 900000);
  EXPECT_EQ(f.emitted(), 3u);
}

TEST(EventFolderTest, NeverFoldsAcrossExpiry) {
  VectorSink sink;
  EventFolder f(/*window_us=*/60000000, 100, &sink);
  f.Add(Use(kT0 + 9000000));   // 1 s before exp
  f.Add(Use(kT0 + 9500000));   // folds with it
  f.Add(Use(kT0 + 11000000));  // 1 s after exp: never folded with those
  f.FlushAll();
  ASSERT_EQ(sink.events.size(), 3u);
  EXPECT_EQ(sink.events[0].ts_us(), kT0 + 9000000);
  EXPECT_EQ(sink.events[1].count(), 1u);
  EXPECT_EQ(sink.events[1].ts_us(), kT0 + 9500000);
  EXPECT_EQ(sink.events[2].ts_us(), kT0 + 11000000);
}

TEST(EventJsonTest, ProtoCarriesTheSameContent) {
  UsageRecord e = Use(kT0, 200, "/x", {"a"}, "HS256");
  e.location = v1::TOKEN_LOCATION_QUERY;
  v1::UsageEvent p = ToProto(e);
  EXPECT_EQ(p.path(), "/x");
  EXPECT_EQ(p.token().aud(0), "a");
  EXPECT_EQ(p.agent(), "host-a");
  ASSERT_EQ(p.findings_size(), 1);
  EXPECT_EQ(p.findings(0), "token_in_url");
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
  for (int i = 0; i < 5; ++i) f.Add(Use(kT0, 200, "/p" + std::to_string(i)));
  EXPECT_LE(f.open(), 2u);
  f.FlushAll();
  EXPECT_EQ(sink.events.size(), 5u);
}

}  // namespace
}  // namespace tokenwatch::output
