// The whole data path on conversations built in memory: packets in, usage
// events out.
#include "agent/pipeline.h"

#include <gtest/gtest.h>

#include <fstream>

#include "agent/output/event_json.h"
#include "agent/output/event_sink.h"
#include "tests/agent/testing/jwt_builder.h"
#include "tests/agent/testing/packet_builder.h"

namespace tokenwatch {
namespace {

using testing::FlowBuilder;
using testing::MakeJwt;

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest() {
    cfg_.agent.fold_window = absl::ZeroDuration();
    cfg_.agent.token_headers = {"x-api-token"};
    cfg_.services.push_back({"orders", {{"orders.internal"}, {}}, {}});
    fp_ = *token::Fingerprinter::Create("key");
  }
  Pipeline& P() {
    if (!pipeline_)
      pipeline_ = std::make_unique<Pipeline>(cfg_, "host-a", fp_.get(), &sink_);
    return *pipeline_;
  }
  void Run(std::vector<capture::MemoryPacketSource::Frame>& frames,
           bool finish = true) {
    for (auto& f : frames) {
      capture::RawPacket p{f.ts_us, f.bytes.data(),
                           static_cast<uint32_t>(f.bytes.size()),
                           static_cast<uint32_t>(f.bytes.size()), DLT_EN10MB};
      P().OnPacket(p);
    }
    if (finish) P().Finish();
  }
  static std::string Get(std::string path, std::string extra = "") {
    return "GET " + path + " HTTP/1.1\r\nHost: orders.internal\r\n" + extra +
           "\r\n";
  }
  static std::string Ok(int status = 200, std::string body = "ok") {
    return "HTTP/1.1 " + std::to_string(status) +
           " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
           body;
  }

  config::Config cfg_;
  std::unique_ptr<token::Fingerprinter> fp_;
  output::VectorSink sink_;
  std::unique_ptr<Pipeline> pipeline_;
  // {"iss":"https://idp.test","sub":"alice","jti":"j-1","exp":1764501300}
  std::string jwt_ = MakeJwt(
      R"({"iss":"https://idp.test","sub":"alice","jti":"j-1","exp":1764501300})");
};

TEST_F(PipelineTest, TokenUseCarriesItsResponseStatus) {
  FlowBuilder f;
  f.Handshake()
      .Client(
          Get("/v1/orders/42?x=1", "Authorization: Bearer " + jwt_ + "\r\n"))
      .Server(Ok(200))
      .Fin();
  Run(f.frames());
  ASSERT_EQ(sink_.events.size(), 1u);
  const v1::UsageEvent& e = sink_.events[0];
  EXPECT_EQ(e.service(), "orders");
  EXPECT_EQ(e.method(), "GET");
  EXPECT_EQ(e.path(), "/v1/orders/42");
  EXPECT_EQ(e.client(), "10.0.3.7");
  EXPECT_EQ(e.server(), "10.0.0.5:8080");
  EXPECT_EQ(e.status(), 200u);
  EXPECT_EQ(e.agent(), "host-a");
  EXPECT_EQ(e.token().sub(), "alice");
  EXPECT_EQ(e.token().fp(), fp_->Fingerprint(jwt_.substr(0, jwt_.rfind('.'))));
  EXPECT_EQ(P().stats().http_requests, 1u);
  EXPECT_EQ(P().stats().http_responses, 1u);
  EXPECT_EQ(P().stats().flows_closed, 1u);
}

TEST_F(PipelineTest, PipelinedRequestsPairInOrder) {
  FlowBuilder f;
  std::string auth = "Authorization: Bearer " + jwt_ + "\r\n";
  f.Handshake()
      .Client(Get("/a", auth) + Get("/b", auth) + "HEAD /c HTTP/1.1\r\n" +
              auth + "\r\n")
      .Server(Ok(200) + Ok(404, "missing") +
              "HTTP/1.1 401 No\r\nContent-Length: 99\r\n\r\n")
      .Fin();
  Run(f.frames());
  ASSERT_EQ(sink_.events.size(), 3u);
  EXPECT_EQ(sink_.events[0].path(), "/a");
  EXPECT_EQ(sink_.events[0].status(), 200u);
  EXPECT_EQ(sink_.events[1].status(), 404u);
  EXPECT_EQ(sink_.events[2].method(), "HEAD");
  EXPECT_EQ(sink_.events[2].status(), 401u);
}

TEST_F(PipelineTest, KeepAliveWithChunkedAndInterimResponses) {
  FlowBuilder f;
  std::string auth = "Authorization: Bearer " + jwt_ + "\r\n";
  f.Handshake()
      .Client(
          "POST /up HTTP/1.1\r\nHost: x\r\nExpect: "
          "100-continue\r\nContent-Length: 4\r\n" +
          auth + "\r\n")
      .Server("HTTP/1.1 100 Continue\r\n\r\n")
      .Client("data")
      .Server(
          "HTTP/1.1 201 Created\r\nTransfer-Encoding: "
          "chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
      .Client(Get("/next", auth))
      .Server("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n")
      .Client(Get("/after", auth))
      .Server(Ok(204, ""))
      .Fin();
  Run(f.frames());
  ASSERT_EQ(sink_.events.size(), 3u);
  EXPECT_EQ(sink_.events[0].status(), 201u);
  EXPECT_EQ(sink_.events[1].status(), 304u);
  EXPECT_EQ(sink_.events[2].status(), 204u);
  EXPECT_EQ(P().stats().http_responses, 4u);  // the 100 counts as a message
}

TEST_F(PipelineTest, HeadersSplitAcrossSegmentsAndOutOfOrder) {
  FlowBuilder f;
  f.Handshake()
      .ClientInPieces(Get("/split", "Authorization: Bearer " + jwt_ + "\r\n"),
                      7)
      .Server(Ok())
      .Fin();
  auto& frames = f.frames();
  std::swap(frames[4], frames[6]);  // reorder two data segments
  Run(frames);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].path(), "/split");
}

TEST_F(PipelineTest, EveryLocation) {
  FlowBuilder f;
  f.Handshake()
      .Client("GET /cb?access_token=" + jwt_ +
              " HTTP/1.1\r\nHost: orders.internal\r\nCookie: s=" + jwt_ +
              "\r\nX-Api-Token: opaque-7\r\nAuthorization: BEARER "
              "mF_9.B5f-4.1JqM\r\n\r\n")
      .Server(Ok(403))
      .Fin();
  Run(f.frames());
  ASSERT_EQ(sink_.events.size(), 4u);
  std::map<std::string, const v1::UsageEvent*> by;
  for (auto& e : sink_.events) by[output::LocationName(e.location())] = &e;
  EXPECT_EQ(by["query"]->findings(0), "token_in_url");
  EXPECT_EQ(by["query"]->param(), "access_token");
  EXPECT_EQ(by["cookie"]->param(), "s");
  EXPECT_EQ(by["header"]->token().kind(), v1::TOKEN_KIND_OPAQUE);
  EXPECT_EQ(by["authorization"]->token().kind(), v1::TOKEN_KIND_OPAQUE);
  for (auto& e : sink_.events) EXPECT_EQ(e.status(), 403u);
}

TEST_F(PipelineTest, NoResponseMeansNoStatus) {
  FlowBuilder f;
  f.Handshake().Client(
      Get("/lonely", "Authorization: Bearer " + jwt_ + "\r\n"));
  Run(f.frames());
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].status(), 0u);
}

TEST_F(PipelineTest, MidstreamPickupResynchronises) {
  FlowBuilder f;
  f.Client("tail of an earlier body\r\n" +
           Get("/picked", "Authorization: Bearer " + jwt_ + "\r\n"))
      .Server(Ok());
  Run(f.frames());
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].path(), "/picked");
  EXPECT_EQ(sink_.events[0].status(), 200u);
  EXPECT_EQ(P().stats().Get(Anomaly::kTcpMidstreamPickup), 2u);
}

TEST_F(PipelineTest, RstEndsTheFlowAndReportsPending) {
  FlowBuilder f;
  f.Handshake()
      .Client(Get("/x", "Authorization: Bearer " + jwt_ + "\r\n"))
      .Rst();
  Run(f.frames(), /*finish=*/false);
  EXPECT_EQ(sink_.events.size(), 1u);  // emitted at the RST, not at exit
  EXPECT_EQ(P().stats().flows_active, 0u);
}

TEST_F(PipelineTest, IdleFlowsTimeOutOnPacketTime) {
  cfg_.agent.limits.flow_idle_timeout = absl::Seconds(10);
  FlowBuilder a({"10.0.3.7", 40000}),
      b({"10.0.3.8", 40001}, {"10.0.0.5", 8080});
  a.Handshake().Client(Get("/a", "Authorization: Bearer " + jwt_ + "\r\n"));
  b.Wait(60'000'000).Handshake();
  Run(a.frames(), false);
  EXPECT_EQ(P().stats().flows_active, 1u);
  Run(b.frames(), false);
  EXPECT_EQ(P().stats().flows_timed_out, 1u);
  EXPECT_EQ(sink_.events.size(), 1u);
}

TEST_F(PipelineTest, FlowTableIsBoundedAndCountsEvictions) {
  cfg_.agent.limits.max_flows = 4;
  for (uint16_t i = 0; i < 10; ++i) {
    FlowBuilder f({"10.0.3.7", static_cast<uint16_t>(41000 + i)});
    f.Syn();
    Run(f.frames(), false);
  }
  EXPECT_EQ(P().stats().flows_active, 4u);
  EXPECT_EQ(P().stats().Get(Drop::kFlowTableFull), 6u);
}

TEST_F(PipelineTest, PendingRequestsAreBounded) {
  cfg_.agent.limits.max_pending_requests = 2;
  FlowBuilder f;
  std::string reqs;
  for (int i = 0; i < 5; ++i)
    reqs += Get("/r" + std::to_string(i),
                "Authorization: Bearer t" + std::to_string(i) + "\r\n");
  f.Handshake().Client(reqs);
  Run(f.frames());
  EXPECT_EQ(P().stats().Get(Drop::kPendingRequests), 3u);
  EXPECT_EQ(sink_.events.size(), 5u);  // reported without status, not lost
}

TEST_F(PipelineTest, FoldsRepeatedUses) {
  cfg_.agent.fold_window = absl::Seconds(1);
  FlowBuilder f;
  std::string auth = "Authorization: Bearer " + jwt_ + "\r\n";
  f.Handshake();
  for (int i = 0; i < 5; ++i) f.Client(Get("/same", auth)).Server(Ok());
  f.Fin();
  Run(f.frames());
  ASSERT_EQ(sink_.events.size(),
            2u);  // the first use at once, then the repeats
  EXPECT_EQ(sink_.events[0].count(), 1u);
  EXPECT_EQ(sink_.events[1].count(), 4u);
  EXPECT_GT(sink_.events[1].last_ts_us(), sink_.events[1].ts_us());
  EXPECT_EQ(P().stats().token_cache_hits, 4u);
}

TEST_F(PipelineTest, Ipv6AndUpgrade) {
  FlowBuilder f({"::1", 50000}, {"::1", 8443});
  f.Handshake()
      .Client(
          "GET /ws HTTP/1.1\r\nHost: [::1]:8443\r\nUpgrade: "
          "websocket\r\nAuthorization: Bearer " +
          jwt_ + "\r\n\r\n")
      .Server("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
      .Client("\x81\x05GET / HTTP/1.1\r\n\r\n")  // frames, not HTTP
      .Fin();
  Run(f.frames());
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].status(), 101u);
  EXPECT_EQ(sink_.events[0].server(), "[::1]:8443");
  EXPECT_EQ(sink_.events[0].service(), "[::1]:8443");
  EXPECT_EQ(P().stats().http_requests, 1u);
}

// A refused CONNECT leaves the connection in HTTP/1; an accepted one opens
// a tunnel whose cleartext HTTP/1 is parsed afresh (issue 13).
TEST_F(PipelineTest, ConnectRefusedKeepsParsingAcceptedTunnelIsParsed) {
  FlowBuilder f;
  f.Handshake()
      .Client("CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n")
      .Server("HTTP/1.1 407 Proxy Auth\r\nContent-Length: 0\r\n\r\n")
      .Client(Get("/after", "Authorization: Bearer " + jwt_ + "\r\n"))
      .Server(Ok())
      .Client("CONNECT db:5432 HTTP/1.1\r\n\r\n")
      .Server("HTTP/1.1 200 Connection established\r\n\r\n")
      .Client(Get("/inside", "Authorization: Bearer " + jwt_ + "\r\n"))
      .Server(Ok())
      .Fin();
  Run(f.frames());
  ASSERT_EQ(sink_.events.size(), 2u);
  EXPECT_EQ(sink_.events[0].path(), "/after");
  EXPECT_EQ(sink_.events[1].path(), "/inside");
  EXPECT_EQ(sink_.events[1].status(), 200u);
  EXPECT_EQ(P().stats().http_requests, 4u);
}

TEST_F(PipelineTest, WeakSecretFindingIsOnTheFirstAndOnlyUse) {
  // The search runs on a worker; the token's only event must wait for it.
  std::string list = ::testing::TempDir() + "/weak-pipeline.list";
  {
    // "secret" last behind 200k entries: the search takes tens of ms, far
    // longer than the conversation, so an event that did not wait for it
    // would go out without the finding.
    std::ofstream out(list);
    for (int i = 0; i < 200000; ++i) out << "not-the-secret-" << i << "\n";
    out << "secret\n";
  }
  cfg_.detections.weak_secrets_file = list;
  auto checks = token::TokenChecks::Create(cfg_, &P().mutable_stats());
  ASSERT_TRUE(checks.ok());
  pipeline_ = std::make_unique<Pipeline>(cfg_, "host-a", fp_.get(), &sink_,
                                         checks->get());
  // {"iss":"legacy-app","sub":"erin","exp":1764501300}
  std::string weak =
      MakeJwt(R"({"iss":"legacy-app","sub":"erin","exp":1764501300})",
              R"({"alg":"HS256","typ":"JWT"})", "secret");
  for (int i = 0; i < 3; ++i) {
    sink_.events.clear();
    FlowBuilder f({"10.0.3.7", static_cast<uint16_t>(42000 + i)});
    std::string token =
        i == 0 ? weak
               : MakeJwt("{\"iss\":\"legacy-app\",\"n\":" + std::to_string(i) +
                             ",\"exp\":1764501300}",
                         R"({"alg":"HS256","typ":"JWT"})", "secret");
    f.Handshake()
        .Client(Get("/r", "Authorization: Bearer " + token + "\r\n"))
        .Server(Ok())
        .Fin();
    Run(f.frames(), /*finish=*/false);
    P().Finish();
    ASSERT_EQ(sink_.events.size(), 1u) << i;
    ASSERT_EQ(sink_.events[0].findings_size(), 1) << i;
    EXPECT_EQ(sink_.events[0].findings(0), "weak_secret") << i;
  }
}

// A token in the path or the Host never reaches the event: the path
// carries a marker with the fingerprint's first 8 hex digits, the service
// is attributed by address, and each use is reported as token_in_url.
TEST_F(PipelineTest, TokensInThePathAndHostAreRedacted) {
  std::string encoded = jwt_;
  encoded.replace(encoded.find('.'), 1, "%2e");
  FlowBuilder f;
  f.Handshake()
      .Client("GET /v1/verify/" + encoded + ";access_token=" + jwt_ +
              "/done HTTP/1.1\r\nHost: " + jwt_ + "\r\n\r\n")
      .Server(Ok(200))
      .Fin();
  Run(f.frames());
  ASSERT_EQ(sink_.events.size(), 3u);
  std::string fp8 =
      fp_->Fingerprint(jwt_.substr(0, jwt_.rfind('.'))).substr(0, 8);
  std::string marker = "[token:" + fp8 + "]";
  for (const v1::UsageEvent& e : sink_.events) {
    EXPECT_EQ(e.path(),
              "/v1/verify/" + marker + ";access_token=" + marker + "/done");
    EXPECT_EQ(e.service(), "10.0.0.5:8080");
    ASSERT_EQ(e.findings_size(), 1);
    EXPECT_EQ(e.findings(0), "token_in_url");
    std::string text = e.ShortDebugString();
    EXPECT_EQ(text.find("eyJ"), std::string::npos) << text;
  }
  EXPECT_EQ(sink_.events[0].location(), v1::TOKEN_LOCATION_PATH);
  EXPECT_EQ(sink_.events[0].finding_details().at("token_in_url"),
            "token in the URL path");
  EXPECT_EQ(sink_.events[1].finding_details().at("token_in_url"),
            "token in matrix parameter access_token");
  EXPECT_EQ(sink_.events[2].location(), v1::TOKEN_LOCATION_HOST);
  EXPECT_EQ(sink_.events[2].finding_details().at("token_in_url"),
            "token in the Host header");
}

}  // namespace
}  // namespace tokenwatch
