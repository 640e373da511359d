// Protocol detection from the first bytes, never the port: the preface,
// a server's SETTINGS first, an h2c upgrade (the upgrade request answered
// on stream 1), frames met mid-stream, HTTP/1 otherwise, and CONNECT
// tunnels detected afresh.
#include "agent/protocols/detector.h"

#include <gtest/gtest.h>

#include "tests/agent/testing/h2_builder.h"

namespace tokenwatch::protocols {
namespace {

using testing::Data;
using testing::H2Encoder;
using testing::Headers;
using testing::Preface;
using testing::RecordingObserver;
using testing::Settings;

// {"sub":"bob"}
constexpr char kBearer[] = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2ln";

class DetectorTest : public ::testing::Test {
 protected:
  DetectorTest() {
    h1_.stats = h2_.stats = &stats_;
    h1_.observer = h2_.observer = &obs_;
    h1_.clock = h2_.clock = &clock_;
    det_ = std::make_unique<ProtocolDetector>(
        Analyzers{&h1_, &h2_}, analyzer::Endpoint{"127.0.0.1", 50000},
        analyzer::Endpoint{"127.0.0.1", 8080});
  }
  void Feed(int dir, const std::string& b) {
    det_->OnData(dir, reinterpret_cast<const uint8_t*>(b.data()), b.size());
  }
  std::string H2Request(H2Encoder& enc, const std::string& path) {
    return enc.Encode({{":method", "GET"},
                       {":scheme", "http"},
                       {":path", path},
                       {":authority", "api.test"},
                       {"authorization", kBearer}});
  }

  AgentStats stats_;
  RecordingObserver obs_;
  analyzer::PacketClock clock_;
  http::SessionContext h1_;
  http2::Http2Context h2_;
  std::unique_ptr<ProtocolDetector> det_;
  H2Encoder client_, server_;
};

TEST_F(DetectorTest, PrefaceMeansHttp2EvenInPieces) {
  det_->SetClientSide(0);
  std::string bytes = Preface() + Settings({}) +
                      Headers(1, H2Request(client_, "/a"), true);
  Feed(0, bytes.substr(0, 3));  // "PRI": not yet decided
  EXPECT_EQ(det_->kind(), ProtocolDetector::Kind::kUndecided);
  Feed(0, bytes.substr(3));
  EXPECT_EQ(det_->kind(), ProtocolDetector::Kind::kHttp2);
  ASSERT_EQ(obs_.seen.size(), 1u);
  EXPECT_EQ(obs_.seen[0].target, "/a");
  EXPECT_EQ(obs_.seen[0].client_ip, "127.0.0.1");
  EXPECT_EQ(stats_.http_requests, 0u);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2Preface), 0u);
}

TEST_F(DetectorTest, ServerSettingsFirstMeansHttp2) {
  // An h2c server may write its SETTINGS before the client's preface
  // arrives; the handshake said who the client is.
  det_->SetClientSide(0);
  Feed(1, Settings({{3, 128}}));
  EXPECT_EQ(det_->kind(), ProtocolDetector::Kind::kHttp2);
  Feed(0, Preface() + Settings({}) + Headers(1, H2Request(client_, "/b"), true));
  Feed(1, Headers(1, server_.Encode({{":status", "200"}}), true));
  ASSERT_EQ(obs_.seen.size(), 1u);
  EXPECT_EQ(obs_.seen[0].done.status, 200u);
}

TEST_F(DetectorTest, Http1StaysHttp1) {
  det_->SetClientSide(0);
  Feed(0, "GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: " + std::string(kBearer) +
              "\r\n\r\n");
  EXPECT_EQ(det_->kind(), ProtocolDetector::Kind::kHttp1);
  Feed(1, "HTTP/1.1 204 No Content\r\n\r\n");
  ASSERT_EQ(obs_.seen.size(), 1u);
  EXPECT_EQ(obs_.seen[0].protocol, analyzer::Protocol::kHttp1);
  EXPECT_EQ(obs_.seen[0].done.status, 204u);
}

// RFC 7540 3.2: the upgrade request is stream 1; its answer comes in
// HTTP/2 on stream 1, and that status is the request's.
TEST_F(DetectorTest, H2cUpgradeAnswersTheUpgradeRequestOnStream1) {
  det_->SetClientSide(0);
  Feed(0,
       "GET /upgrade HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade, "
       "HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
       "Authorization: " +
           std::string(kBearer) + "\r\n\r\n");
  ASSERT_EQ(obs_.seen.size(), 1u);
  EXPECT_EQ(obs_.seen[0].protocol, analyzer::Protocol::kHttp1);
  // The 101 and the server's first frames in one segment.
  Feed(1,
       "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
       "Upgrade: h2c\r\n\r\n" +
           Settings({{3, 100}}) +
           Headers(1, server_.Encode({{":status", "403"}}), false));
  EXPECT_EQ(det_->kind(), ProtocolDetector::Kind::kHttp2);
  EXPECT_FALSE(obs_.seen[0].completed);  // not with 101
  Feed(0, Preface() + Settings({}) + Settings({}, true));
  Feed(1, Data(1, "denied", true));
  ASSERT_TRUE(obs_.seen[0].completed);
  EXPECT_EQ(obs_.seen[0].done.status, 403u);
  // The connection goes on in HTTP/2.
  Feed(0, Headers(3, H2Request(client_, "/next"), true));
  ASSERT_EQ(obs_.seen.size(), 2u);
  EXPECT_EQ(obs_.seen[1].protocol, analyzer::Protocol::kHttp2);
  EXPECT_EQ(obs_.seen[1].target, "/next");
  EXPECT_EQ(stats_.undecoded_bytes, 0u);
}

TEST_F(DetectorTest, MidstreamFramesMeanHttp2) {
  det_->StartResync(0);
  det_->StartResync(1);
  // A HEADERS frame followed by a DATA frame, as the capture's first
  // segment of a long-lived gRPC connection.
  Feed(0, Headers(41, H2Request(client_, "/c"), false) + Data(41, "xx", true));
  EXPECT_EQ(det_->kind(), ProtocolDetector::Kind::kHttp2);
  ASSERT_EQ(obs_.seen.size(), 1u);
  EXPECT_EQ(obs_.Header(0, "authorization"), kBearer);
}

TEST_F(DetectorTest, MidstreamHttp1IsStillHttp1) {
  det_->StartResync(0);
  det_->StartResync(1);
  Feed(1, "ody of an earlier response\r\n");
  EXPECT_EQ(det_->kind(), ProtocolDetector::Kind::kHttp1);
  Feed(0, "GET /y HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(stats_.http_requests, 1u);
  EXPECT_GT(stats_.undecoded_bytes, 0u);  // the response tail was skipped
}

TEST_F(DetectorTest, H2cInsideAConnectTunnel) {
  det_->SetClientSide(0);
  Feed(0, "CONNECT backend:6233 HTTP/1.1\r\nHost: backend:6233\r\n\r\n");
  Feed(1, "HTTP/1.1 200 Connection established\r\n\r\n");
  Feed(0, Preface() + Settings({}) + Headers(1, H2Request(client_, "/t"), true));
  ASSERT_EQ(obs_.seen.size(), 2u);  // the CONNECT and the tunnelled request
  EXPECT_EQ(obs_.seen[1].protocol, analyzer::Protocol::kHttp2);
  EXPECT_EQ(obs_.seen[1].target, "/t");
  EXPECT_EQ(stats_.undecoded_bytes, 0u);
}

// Issue 13 (suricata-verify http-connect-fragmented): cleartext HTTP/1 in
// a CONNECT tunnel is parsed, even when its method arrives byte by byte.
TEST_F(DetectorTest, Http1InsideAConnectTunnelIsParsed) {
  det_->SetClientSide(0);
  Feed(0, "CONNECT db:5432 HTTP/1.1\r\n\r\n");
  Feed(1, "HTTP/1.1 200 Connection established\r\n\r\n");
  Feed(0, "G");
  Feed(0, "ET");
  Feed(0, " /inside HTTP/1.1\r\nHost: db\r\n\r\n");
  Feed(1, "HTTP/1.1 204 No Content\r\n\r\n");
  ASSERT_EQ(obs_.seen.size(), 2u);
  EXPECT_EQ(obs_.seen[1].target, "/inside");
  EXPECT_EQ(obs_.seen[1].protocol, analyzer::Protocol::kHttp1);
  EXPECT_EQ(stats_.undecoded_bytes, 0u);
}

// TLS to the target (the usual CONNECT) is not fed to the HTTP/1 parser:
// no malformed-request anomalies, every byte counted as undecoded.
TEST_F(DetectorTest, TlsInsideAConnectTunnelStaysOpaque) {
  det_->SetClientSide(0);
  Feed(0, "CONNECT db:443 HTTP/1.1\r\n\r\n");
  Feed(1, "HTTP/1.1 200 Connection established\r\n\r\n");
  std::string hello("\x16\x03\x01\x00\x05hello", 10);
  Feed(0, hello);
  std::string server("\x16\x03\x03\x00\x02hi", 7);
  Feed(1, server);
  EXPECT_EQ(obs_.seen.size(), 1u);
  EXPECT_EQ(stats_.undecoded_bytes, hello.size() + server.size());
  EXPECT_EQ(stats_.Get(Anomaly::kHttpBadRequestLine), 0u);
}

TEST_F(DetectorTest, WebSocketTunnelBytesAreCountedAsUndecoded) {
  det_->SetClientSide(0);
  Feed(0, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
  Feed(1, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nabc");
  Feed(0, std::string("\x81\x05hello", 7));
  EXPECT_EQ(stats_.undecoded_bytes, 10u);
}

}  // namespace
}  // namespace tokenwatch::protocols
