#include <gtest/gtest.h>

#include <map>
#include <optional>

#include "agent/output/event_folder.h"
#include "agent/output/event_json.h"
#include "tests/agent/testing/usage_builder.h"
#include "tokenwatch/v1/ingest.pb.h"

namespace tokenwatch::output {
namespace {

using testing::Use;
using testing::UseBuilder;

constexpr int64_t kT0 = testing::kUseT0;  // 2025-11-30T10:15:00Z

TEST(EventJsonTest, MatchesTheSpecShape) {
  UsageRecord e = UseBuilder()
                      .At(kT0 + 120000)
                      .Folded(/*last_ts_us=*/kT0 + 870000, /*count=*/3)
                      .Aud({"orders-api"})
                      .Alg("RS256")
                      .Location(v1::TOKEN_LOCATION_QUERY, "access_token")
                      .Build();
  std::string out;
  AppendEventJson(e, &out);
  EXPECT_EQ(
      out,
      R"({"ts":"2025-11-30T10:15:00.120Z","last_ts":"2025-11-30T10:15:00.870Z","count":3,)"
      R"("agent":"host-a","service":"orders","method":"GET","path":"/v1/orders/42",)"
      R"("client":"10.0.3.7","server":"10.0.0.5:8080","protocol":"http/1.1","source":"pcap",)"
      R"("status":200,"location":"query","param":"access_token",)"
      R"("token":{"kind":"jwt","fp":"9f2c","aud":["orders-api"],"exp":1764497710,"alg":"RS256"},)"
      R"("findings":["token_in_url"],"finding_details":{"token_in_url":"token in query parameter access_token"}})");
}

// gRPC: the protocol and the trailers' grpc-status, 0 included.
UsageRecord Grpc(std::optional<uint32_t> grpc_status) {
  UsageRecord e = Use(kT0, 200, "/payments.v1.Payments/Refund");
  auto req = std::make_shared<RequestInfo>(*e.request);
  req->method = "POST";
  req->protocol = "grpc";
  e.request = std::move(req);
  e.grpc_status = grpc_status;
  return e;
}

TEST(EventJsonTest, GrpcStatusWhenSet) {
  std::string out;
  AppendEventJson(Grpc(16), &out);
  EXPECT_NE(out.find(R"("protocol":"grpc","source":"pcap","status":200,)"
                     R"("grpc_status":16,"location")"),
            std::string::npos)
      << out;
  out.clear();
  AppendEventJson(Grpc(0), &out);
  EXPECT_NE(out.find(R"("grpc_status":0,)"), std::string::npos) << out;
  out.clear();
  AppendEventJson(Grpc(std::nullopt), &out);  // trailers unseen or undecoded
  EXPECT_EQ(out.find("grpc_status"), std::string::npos) << out;
}

TEST(EventFolderTest, KeyHoldsProtocolAndGrpcStatus) {
  VectorSink sink;
  EventFolder f(/*window_us=*/1000000, 100, &sink);
  f.Add(Grpc(0));
  f.Add(Grpc(0));   // folds
  f.Add(Grpc(16));  // another outcome: its own event
  f.Add(Grpc(std::nullopt));
  UsageRecord h2 = Grpc(0);
  auto req = std::make_shared<RequestInfo>(*h2.request);
  req->protocol = "h2";
  h2.request = std::move(req);
  h2.grpc_status.reset();
  f.Add(std::move(h2));  // same path over plain HTTP/2: its own event
  EXPECT_EQ(sink.events.size(), 4u);
  f.FlushAll();
  ASSERT_EQ(sink.events.size(), 5u);
  EXPECT_EQ(sink.events[4].count(), 1u);
  EXPECT_EQ(sink.events[4].grpc_status(), 0u);
  EXPECT_TRUE(sink.events[1].has_grpc_status());
  EXPECT_EQ(sink.events[1].grpc_status(), 16u);
  EXPECT_FALSE(sink.events[2].has_grpc_status());
  EXPECT_EQ(sink.events[3].protocol(), "h2");
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

// The collector stream's hand-written wire form must parse to exactly the
// message ToProto builds, for every field a use can carry.
TEST(EventJsonTest, BatchWireFormMatchesTheProto) {
  std::vector<UsageRecord> uses;
  uses.push_back(Use(kT0, 200, "/x", {"a", "b"}, "HS256"));
  uses.push_back(Use(kT0, /*status=*/0, ""));  // no response, empty path
  uses.push_back(UseBuilder()  // a negative time, in full
                     .At(-5)
                     .Folded(/*last_ts_us=*/kT0 + 99, /*count=*/300)
                     .Status(401)
                     .Path("/q")
                     .Location(v1::TOKEN_LOCATION_QUERY, "access_token")
                     .Build());
  v1::TokenInfo info;
  info.set_kind(v1::TOKEN_KIND_JWT);
  info.set_fp("00ff");
  info.set_iss("https://idp.test");
  info.set_jti("j\x01\xff");  // bytes as they came
  info.add_scopes("a:b");
  info.set_nbf(0);  // present though zero
  uses.push_back(UseBuilder()
                     .Token(std::move(info))
                     .Findings({{AlertType::kAlgNone, "unsigned"},
                                {AlertType::kNoExpiry, "none"}})
                     .Location(v1::TOKEN_LOCATION_QUERY, "token")
                     .Build());
  uses.push_back(Grpc(0));   // optional: a set zero is on the wire
  uses.push_back(Grpc(16));  // UNAUTHENTICATED
  UsageRecord bare = Use(kT0);  // no protocol or source: nothing written
  auto bare_req = std::make_shared<RequestInfo>(*bare.request);
  bare_req->protocol.clear();
  bare_req->source.clear();
  bare.request = std::move(bare_req);
  uses.push_back(bare);

  std::string wire;
  v1::EventBatch want;
  for (const UsageRecord& u : uses) {
    AppendBatchEvent(u, &wire);
    ToProto(u, want.add_events());
  }
  v1::EventBatch got;
  ASSERT_TRUE(got.ParseFromString(wire));
  ASSERT_EQ(got.events_size(), want.events_size());
  for (int i = 0; i < got.events_size(); ++i) {
    // Map order is unspecified on the wire: compare the maps as maps.
    std::map<std::string, std::string> got_details(
        got.events(i).finding_details().begin(),
        got.events(i).finding_details().end());
    std::map<std::string, std::string> want_details(
        want.events(i).finding_details().begin(),
        want.events(i).finding_details().end());
    EXPECT_EQ(got_details, want_details) << i;
    v1::UsageEvent g = got.events(i), w = want.events(i);
    g.clear_finding_details();
    w.clear_finding_details();
    EXPECT_EQ(g.SerializeAsString(), w.SerializeAsString())
        << i << "\n"
        << g.DebugString() << "\nvs\n"
        << w.DebugString();
  }
  EXPECT_EQ(got.events(3).findings_size(), 3);  // two of the token's + url
  EXPECT_TRUE(got.events(3).token().has_nbf());
  EXPECT_EQ(got.events(0).protocol(), "http/1.1");
  EXPECT_EQ(got.events(0).source(), "pcap");
  EXPECT_FALSE(got.events(0).has_grpc_status());
  EXPECT_EQ(got.events(4).protocol(), "grpc");
  EXPECT_TRUE(got.events(4).has_grpc_status());
  EXPECT_EQ(got.events(4).grpc_status(), 0u);
  EXPECT_EQ(got.events(5).grpc_status(), 16u);
  EXPECT_EQ(got.events(6).protocol(), "");
}

// A request path (or claim) that is not UTF-8 must not make the batch
// unparseable: one hostile request would otherwise block delivery.
TEST(EventJsonTest, BatchWireFormIsAlwaysValidUtf8) {
  UsageRecord u = Use(kT0, 200, "/a\xff\xfe/\xc3\xa9");
  u.location = v1::TOKEN_LOCATION_HEADER;
  u.param = "X-\x80";
  std::string wire;
  AppendBatchEvent(u, &wire);
  v1::EventBatch got;
  ASSERT_TRUE(got.ParseFromString(wire));
  EXPECT_EQ(got.events(0).path(), "/a\uFFFD\uFFFD/\u00e9");
  EXPECT_EQ(got.events(0).param(), "X-\uFFFD");
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
