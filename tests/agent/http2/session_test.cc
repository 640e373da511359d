// The HTTP/2 analyzer on bytes written by a real HPACK encoder (nghttp2's
// deflater) and hand-made frames: pairing, gRPC status, framing variants,
// completion paths, and joining a connection mid-way without guessing.
#include "agent/http2/session.h"

#include <gtest/gtest.h>

#include "tests/agent/testing/h2_builder.h"

namespace tokenwatch::http2 {
namespace {

using testing::Data;
using testing::Fields;
using testing::Frame;
using testing::H2Encoder;
using testing::Headers;
using testing::Preface;
using testing::RecordingObserver;
using testing::RstStream;
using testing::Settings;

// {"sub":"alice"} (not decoded here: the analyzer only carries headers)
constexpr char kBearer[] = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";

Fields Request(std::string path, std::string content_type = "",
               std::string auth = kBearer) {
  Fields f = {{":method", "POST"},
              {":scheme", "http"},
              {":path", std::move(path)},
              {":authority", "orders.test:8080"}};
  if (!content_type.empty()) f.push_back({"content-type", content_type});
  f.push_back({"authorization", auth});
  f.push_back({"user-agent", "test/1"});
  return f;
}

class Http2SessionTest : public ::testing::Test {
 protected:
  Http2SessionTest() {
    ctx_.stats = &stats_;
    ctx_.observer = &obs_;
    ctx_.clock = &clock_;
  }
  Http2Session& S(int client_dir = 0) {
    if (!session_)
      session_ = std::make_unique<Http2Session>(
          &ctx_, analyzer::Endpoint{"10.0.0.1", 40000},
          analyzer::Endpoint{"10.0.0.2", 8080}, client_dir);
    return *session_;
  }
  void Client(const std::string& b) { Feed(0, b); }
  void Server(const std::string& b) { Feed(1, b); }
  void Feed(int dir, const std::string& b) {
    clock_.now_us += 1000;
    S().OnData(dir, reinterpret_cast<const uint8_t*>(b.data()), b.size());
  }
  // The usual opening: preface and SETTINGS both ways.
  void Open() {
    Client(Preface() + Settings({{4, 65535}}));
    Server(Settings({{3, 100}}) + Settings({}, /*ack=*/true));
    Client(Settings({}, /*ack=*/true));
  }

  AgentStats stats_;
  RecordingObserver obs_;
  analyzer::PacketClock clock_;
  Http2Context ctx_;
  std::unique_ptr<Http2Session> session_;
  H2Encoder client_enc_, server_enc_;
};

TEST_F(Http2SessionTest, RequestPairedWithItsResponse) {
  Open();
  Client(Headers(1, client_enc_.Encode(Request("/v1/orders?id=4")), true));
  ASSERT_EQ(obs_.seen.size(), 1u);
  const auto& r = obs_.seen[0];
  EXPECT_EQ(r.protocol, analyzer::Protocol::kHttp2);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/v1/orders?id=4");
  EXPECT_EQ(r.authority, "orders.test:8080");
  EXPECT_EQ(obs_.Header(0, "authorization"), kBearer);
  EXPECT_EQ(obs_.Header(0, ":path"), "<absent>");  // pseudo-fields are not headers
  EXPECT_EQ(r.client_ip, "10.0.0.1");
  EXPECT_FALSE(r.completed);
  Server(Headers(1, server_enc_.Encode({{":status", "201"}}), false));
  EXPECT_FALSE(obs_.seen[0].completed);  // the response has not ended
  Server(Data(1, "body", /*end_stream=*/true));
  ASSERT_TRUE(obs_.seen[0].completed);
  EXPECT_EQ(obs_.seen[0].done.status, 201u);
  EXPECT_FALSE(obs_.seen[0].done.grpc_status.has_value());
  EXPECT_EQ(stats_.http2_requests, 1u);
  EXPECT_EQ(stats_.http2_responses, 1u);
  EXPECT_EQ(S().open_streams(), 0u);
}

TEST_F(Http2SessionTest, GrpcStatusFromTheTrailers) {
  Open();
  Client(Headers(1, client_enc_.Encode(Request("/payments.v1.Payments/Refund",
                                               "application/grpc")),
                 false) +
         Data(1, std::string("\0\0\0\0\0", 5), true));
  Client(Headers(3, client_enc_.Encode(Request("/payments.v1.Payments/Get",
                                               "application/grpc+proto")),
                 true));
  ASSERT_EQ(obs_.seen.size(), 2u);
  EXPECT_EQ(obs_.seen[0].protocol, analyzer::Protocol::kGrpc);
  EXPECT_EQ(obs_.seen[1].protocol, analyzer::Protocol::kGrpc);
  // Stream 3 answers first, Trailers-Only (RFC: one HEADERS, END_STREAM).
  Server(Headers(3, server_enc_.Encode({{":status", "200"},
                                        {"content-type", "application/grpc"},
                                        {"grpc-status", "7"}}),
                 true));
  ASSERT_TRUE(obs_.seen[1].completed);
  EXPECT_EQ(obs_.seen[1].done.status, 200u);
  EXPECT_EQ(obs_.seen[1].done.grpc_status, 7u);
  Server(Headers(1, server_enc_.Encode({{":status", "200"}}), false) +
         Data(1, std::string(5, '\0'), false));
  EXPECT_FALSE(obs_.seen[0].completed);
  Server(Headers(1, server_enc_.Encode({{"grpc-status", "16"},
                                        {"grpc-message", "bad token"}}),
                 true));
  ASSERT_TRUE(obs_.seen[0].completed);
  EXPECT_EQ(obs_.seen[0].done.status, 200u);
  EXPECT_EQ(obs_.seen[0].done.grpc_status, 16u);
  EXPECT_EQ(stats_.grpc_requests, 2u);
}

TEST_F(Http2SessionTest, PaddingPriorityContinuationByteByByte) {
  std::string block = client_enc_.Encode(Request("/split"));
  // HEADERS: PADDED (3 bytes of padding) + PRIORITY, carrying the first
  // 10 bytes; the rest in two CONTINUATION frames.
  std::string head;
  head.push_back(3);                        // pad length
  head.append("\x80\x00\x00\x01\x10", 5);   // exclusive dep on 1, weight
  head.append(block.substr(0, 10));
  head.append(3, '\0');
  std::string bytes =
      Preface() +
      Frame(FrameType::kHeaders,
            flags::kPadded | flags::kPriority | flags::kEndStream, 1, head) +
      Frame(FrameType::kContinuation, 0, 1, block.substr(10, 7)) +
      Frame(FrameType::kContinuation, flags::kEndHeaders, 1, block.substr(17));
  for (char c : bytes) Client(std::string(1, c));
  ASSERT_EQ(obs_.seen.size(), 1u);
  EXPECT_EQ(obs_.seen[0].target, "/split");
  EXPECT_EQ(obs_.Header(0, "authorization"), kBearer);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2FrameError), 0u);
}

TEST_F(Http2SessionTest, ResetGoawayAndCloseCompleteWithoutStatus) {
  Open();
  for (uint32_t id : {1u, 3u, 5u, 7u})
    Client(Headers(id, client_enc_.Encode(Request("/s")), true));
  ASSERT_EQ(obs_.seen.size(), 4u);
  Client(RstStream(1));  // the client gives up on stream 1
  EXPECT_TRUE(obs_.seen[0].completed);
  EXPECT_EQ(obs_.seen[0].done.status, 0u);
  Server(Headers(3, server_enc_.Encode({{":status", "200"}}), false));
  // GOAWAY(last=3): streams 5 and 7 were never processed.
  Server(Frame(FrameType::kGoaway, 0, 0, testing::U32(3) + testing::U32(0)));
  EXPECT_TRUE(obs_.seen[2].completed);
  EXPECT_TRUE(obs_.seen[3].completed);
  EXPECT_FALSE(obs_.seen[1].completed);
  S().Close();
  EXPECT_TRUE(obs_.seen[1].completed);
  EXPECT_EQ(obs_.seen[1].done.status, 200u);  // the head came, the end did not
  EXPECT_EQ(obs_.completions, 4u);
}

TEST_F(Http2SessionTest, InterimResponsesWaitForTheFinalOne) {
  Open();
  Client(Headers(1, client_enc_.Encode(Request("/up")), false));
  Server(Headers(1, server_enc_.Encode({{":status", "100"}}), false));
  Server(Headers(1, server_enc_.Encode({{":status", "103"}, {"link", "</a>"}}),
                 false));
  Server(Headers(1, server_enc_.Encode({{":status", "404"}}), true));
  ASSERT_TRUE(obs_.seen[0].completed);
  EXPECT_EQ(obs_.seen[0].done.status, 404u);
}

// Joining mid-way: the encoder's table holds entries the analyzer never saw
// (indices 62.. at the start). Whatever refers to them is absent (never
// guessed) and counted; literals, and entries inserted while watching,
// decode.
TEST_F(Http2SessionTest, MidstreamUnknownEntriesAreNotGuessed) {
  using namespace testing::hpack;
  S(/*client_dir=*/-1).StartResync(0);
  S().StartResync(1);
  // :path from before (62); a new authorization value enters the table.
  Client(Headers(5,
                 Indexed(kMethodPost) + Indexed(kSchemeHttp) + Indexed(62) +
                     LitInc(kAuthorization, kBearer),
                 false) +
         Data(5, std::string(5, '\0'), true));
  ASSERT_EQ(obs_.seen.size(), 1u);
  EXPECT_EQ(obs_.seen[0].method, "POST");  // static table
  EXPECT_EQ(obs_.seen[0].target, "");      // dynamic, from before: unknown
  EXPECT_EQ(obs_.Header(0, "authorization"), kBearer);
  // The old :path is 63 now; the authorization entry 62 is known.
  Client(Headers(7,
                 Indexed(kMethodPost) + Indexed(63) + Indexed(62) +
                     LitInc(kPath, "/new.Service/Call"),
                 true));
  ASSERT_EQ(obs_.seen.size(), 2u);
  EXPECT_EQ(obs_.seen[1].target, "/new.Service/Call");
  EXPECT_EQ(obs_.Header(1, "authorization"), kBearer);
  // :path 62, authorization 63, the old entry 64.
  Client(Headers(9, Indexed(kMethodPost) + Indexed(64) + Indexed(62) +
                        Indexed(63),
                 true));
  ASSERT_EQ(obs_.seen.size(), 3u);
  EXPECT_EQ(obs_.seen[2].target, "/new.Service/Call");
  EXPECT_EQ(obs_.Header(2, "authorization"), kBearer);
  EXPECT_EQ(obs_.seen[2].headers.size(), 1u);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2HpackUnknownIndex), 3u);  // blocks
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2HpackError), 0u);
}

// A literal with incremental indexing whose *name* is from before gets a
// placeholder entry: without it every later index would point one entry
// off, and a reference to the unknown field would read as the next one.
TEST_F(Http2SessionTest, PlaceholderKeepsLaterIndicesAligned) {
  using namespace testing::hpack;
  S(-1).StartResync(0);
  // authorization enters at 62; then x-tenant (name from before, now 64)
  // with a new value enters: a placeholder at 62, authorization at 63.
  Client(Headers(1,
                 Indexed(kMethodGet) + LitInc(kAuthorization, kBearer) +
                     LitInc(64, "globex"),
                 true));
  // 62 is the unknown x-tenant field, 63 the authorization.
  Client(Headers(3, Indexed(kMethodGet) + Indexed(62) + Indexed(63), true));
  ASSERT_EQ(obs_.seen.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(obs_.Count(i, "authorization"), 1u) << i;
    EXPECT_EQ(obs_.Header(i, "authorization"), kBearer) << i;
    EXPECT_EQ(obs_.seen[i].headers.size(), 1u) << i;
  }
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2HpackUnknownIndex), 2u);
}

TEST_F(Http2SessionTest, TableSizeUpdateOverTheCapIsClampedAndCounted) {
  using namespace testing::hpack;
  ctx_.max_table_bytes = 8192;
  Open();
  Client(Headers(1, SizeUpdate(1 << 30) + Indexed(kMethodGet) +
                        LitInc(kPath, "/big"),
                 true));
  Client(Headers(3, Indexed(kMethodGet) + Indexed(62), true));
  ASSERT_EQ(obs_.seen.size(), 2u);
  EXPECT_EQ(obs_.seen[1].target, "/big");
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2HpackTableSize), 1u);
}

TEST_F(Http2SessionTest, SettingsHeaderTableSizeIsHonoured) {
  Open();
  Client(Headers(1, client_enc_.Encode(Request("/a")), true));
  // The server's decoder shrinks the table to 0; the client acknowledges
  // and its encoder starts the next block with a size update.
  Server(Settings({{kSettingsHeaderTableSize, 0}}));
  Client(Settings({}, /*ack=*/true));
  client_enc_.ChangeTableSize(0);
  Client(Headers(3, client_enc_.Encode(Request("/b")), true));
  // Back to 4096: entries again.
  Server(Settings({{kSettingsHeaderTableSize, 4096}}));
  Client(Settings({}, true));
  client_enc_.ChangeTableSize(4096);
  Client(Headers(5, client_enc_.Encode(Request("/c")), true));
  Client(Headers(7, client_enc_.Encode(Request("/c")), true));
  ASSERT_EQ(obs_.seen.size(), 4u);
  EXPECT_EQ(obs_.seen[1].target, "/b");
  EXPECT_EQ(obs_.seen[3].target, "/c");
  EXPECT_EQ(obs_.Header(3, "authorization"), kBearer);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2HpackError), 0u);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2HpackUnknownIndex), 0u);
}

TEST_F(Http2SessionTest, GapInDataIsHarmlessElsewhereItResyncs) {
  Open();
  Client(Headers(1, client_enc_.Encode(Request("/a")), false));
  std::string data = Data(1, std::string(1000, 'x'), true);
  Client(data.substr(0, 100));
  S().OnGap(0, 800);  // inside the DATA payload: nothing lost
  Client(data.substr(900));
  EXPECT_EQ(stats_.Get(Anomaly::kTcpContentGap), 0u);
  // A gap across frame headers: the direction searches for frames again
  // and its table starts afresh (never guessed).
  std::string lost = Headers(3, client_enc_.Encode(Request("/b")), true);
  Client(lost.substr(0, 5));
  S().OnGap(0, 10);
  Client(lost.substr(15) + Headers(5, client_enc_.Encode(Request("/c")), true) +
         Settings({}, true));
  EXPECT_EQ(stats_.Get(Anomaly::kTcpContentGap), 1u);
  ASSERT_EQ(obs_.seen.size(), 2u);
  EXPECT_EQ(obs_.seen[1].method, "POST");
  EXPECT_GT(stats_.undecoded_bytes, 0u);
}

TEST_F(Http2SessionTest, RequestFromTheServerSideIsIgnored) {
  Open();
  Server(Headers(2, server_enc_.Encode(Request("/push")), true));
  EXPECT_EQ(obs_.seen.size(), 0u);
  Client(Frame(FrameType::kRstStream, 0, 0, testing::U32(0)));  // stream 0
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2FrameError), 1u);
}

}  // namespace
}  // namespace tokenwatch::http2
