#include "agent/http/parser.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace tokenwatch::http {
namespace {

struct Seen {
  bool is_request;
  std::string method, target, auth;
  int status;
  int minor;
};

class Recorder : public Handler {
 public:
  BodyRule OnMessageHead(HttpParser&, const MessageHead& h) override {
    seen.push_back({h.is_request, std::string(h.method), std::string(h.target),
                    std::string(h.Find("authorization")), h.status,
                    h.version_minor});
    return rule ? rule(h) : BodyRule::kFromHeaders;
  }
  std::vector<Seen> seen;
  std::function<BodyRule(const MessageHead&)> rule;
};

class ParserTest : public ::testing::Test {
 protected:
  HttpParser& Requests() {
    if (!req_)
      req_ = std::make_unique<HttpParser>(Role::kRequest, &rec_, &stats_, 1024,
                                          &scratch_);
    return *req_;
  }
  HttpParser& Responses() {
    if (!resp_)
      resp_ = std::make_unique<HttpParser>(Role::kResponse, &rec_, &stats_,
                                           1024, &scratch_);
    return *resp_;
  }
  static void Feed(HttpParser& p, std::string_view s) {
    p.Feed(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  static void FeedBytewise(HttpParser& p, std::string_view s) {
    for (char c : s) p.Feed(reinterpret_cast<const uint8_t*>(&c), 1);
  }
  Recorder rec_;
  AgentStats stats_;
  MessageHead scratch_;
  std::unique_ptr<HttpParser> req_, resp_;
};

TEST_F(ParserTest, SimpleRequest) {
  Feed(Requests(),
       "GET /v1/orders/42?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
       "t\r\n\r\n");
  ASSERT_EQ(rec_.seen.size(), 1u);
  EXPECT_TRUE(rec_.seen[0].is_request);
  EXPECT_EQ(rec_.seen[0].method, "GET");
  EXPECT_EQ(rec_.seen[0].target, "/v1/orders/42?x=1");
  EXPECT_EQ(rec_.seen[0].auth, "Bearer t");
  EXPECT_EQ(rec_.seen[0].minor, 1);
}

TEST_F(ParserTest, HeadSplitAcrossEveryByte) {
  FeedBytewise(Requests(),
               "POST /a HTTP/1.0\r\nAuthorization: Bearer "
               "abc\r\nContent-Length: 3\r\n\r\nxyzGET /b HTTP/1.1\r\n\r\n");
  ASSERT_EQ(rec_.seen.size(), 2u);
  EXPECT_EQ(rec_.seen[0].auth, "Bearer abc");
  EXPECT_EQ(rec_.seen[0].minor, 0);
  EXPECT_EQ(rec_.seen[1].target, "/b");
}

TEST_F(ParserTest, PipelinedRequestsInOneSegment) {
  Feed(Requests(),
       "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nPOST /3 "
       "HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /4 HTTP/1.1\r\n\r\n");
  ASSERT_EQ(rec_.seen.size(), 4u);
  EXPECT_EQ(rec_.seen[3].target, "/4");
}

TEST_F(ParserTest, BareLineFeedsAreAccepted) {
  Feed(Requests(), "GET /lf HTTP/1.1\nHost: x\n\nGET /lf2 HTTP/1.1\n\n");
  ASSERT_EQ(rec_.seen.size(), 2u);
}

TEST_F(ParserTest, ChunkedBodyWithExtensionsAndTrailers) {
  Feed(Responses(),
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5;name=value\r\nhello\r\n"
       "A\r\n0123456789\r\n"
       "0\r\nX-Trailer: t\r\n\r\n"
       "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(rec_.seen.size(), 2u);
  EXPECT_EQ(rec_.seen[1].status, 404);
  EXPECT_EQ(stats_.Get(Anomaly::kHttpBadChunkSize), 0u);
}

TEST_F(ParserTest, ChunkedBodyFedBytewise) {
  FeedBytewise(Responses(),
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
               "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
               "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_EQ(rec_.seen.size(), 2u);
  EXPECT_EQ(rec_.seen[1].status, 201);
}

TEST_F(ParserTest, NoBodyRuleSkipsContentLength) {
  // A response to HEAD carries Content-Length but no body.
  rec_.rule = [](const MessageHead& h) {
    return h.status == 200 ? BodyRule::kNone : BodyRule::kFromHeaders;
  };
  Feed(Responses(),
       "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nHTTP/1.1 204 No "
       "Content\r\n\r\n");
  ASSERT_EQ(rec_.seen.size(), 2u);
}

TEST_F(ParserTest, ResponseWithoutLengthRunsToClose) {
  Feed(Responses(), "HTTP/1.0 200 OK\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
  EXPECT_EQ(rec_.seen.size(), 1u);  // the second "head" is body bytes
}

TEST_F(ParserTest, TunnelStopsParsing) {
  rec_.rule = [](const MessageHead& h) {
    return h.method == "CONNECT" ? BodyRule::kTunnel : BodyRule::kFromHeaders;
  };
  Feed(Requests(),
       "CONNECT db:5432 HTTP/1.1\r\n\r\nGET /not-http HTTP/1.1\r\n\r\n");
  EXPECT_EQ(rec_.seen.size(), 1u);
  EXPECT_TRUE(Requests().in_tunnel());
  EXPECT_EQ(stats_.Get(Anomaly::kHttpTunnel), 1u);
  Requests().LeaveTunnel();  // the CONNECT was refused
  Feed(Requests(), "GET /after HTTP/1.1\r\n\r\n");
  EXPECT_EQ(rec_.seen.size(), 2u);
}

TEST_F(ParserTest, HeaderLimitIsEnforcedAndCounted) {
  std::string big =
      "GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n";
  Feed(Requests(), big);
  EXPECT_EQ(rec_.seen.size(), 0u);
  EXPECT_EQ(stats_.Get(Anomaly::kHttpHeaderTooLarge), 1u);
  EXPECT_EQ(stats_.Get(Drop::kHeaderBytes), 1u);
  // The parser recovers at the next message.
  Feed(Requests(), "GET /next HTTP/1.1\r\n\r\n");
  ASSERT_EQ(rec_.seen.size(), 1u);
  EXPECT_EQ(rec_.seen[0].target, "/next");
}

TEST_F(ParserTest, HeaderLimitAcrossSegments) {
  Feed(Requests(), "GET / HTTP/1.1\r\n");
  for (int i = 0; i < 50; ++i)
    Feed(Requests(), "X-Filler: 0123456789012345678901234567890\r\n");
  EXPECT_EQ(stats_.Get(Anomaly::kHttpHeaderTooLarge), 1u);
}

TEST_F(ParserTest, ContentLengthAnomalies) {
  Feed(Requests(),
       "POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc");
  EXPECT_EQ(stats_.Get(Anomaly::kHttpMultipleContentLength), 1u);
  Feed(Requests(),
       "POST /b HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: "
       "chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(stats_.Get(Anomaly::kHttpClAndChunked), 1u);
  Feed(Requests(),
       "POST /c HTTP/1.1\r\nContent-Length: -5\r\n\r\nGET /d HTTP/1.1\r\n\r\n");
  EXPECT_GE(stats_.Get(Anomaly::kHttpBadContentLength), 1u);
  ASSERT_EQ(rec_.seen.size(), 4u);  // /d found by resynchronising
  EXPECT_EQ(rec_.seen[3].target, "/d");
  Feed(Requests(),
       "POST /e HTTP/1.1\r\nContent-Length: "
       "00000000000000000000000000001\r\n\r\n");
  EXPECT_GE(stats_.Get(Anomaly::kHttpBadContentLength), 2u);
}

// Two Content-Length values (issue 13, suricata-verify
// http-multiple-content-length): whichever order they come in, a request
// either reading frames is seen, so a smuggled request's token is not
// missed.
TEST_F(ParserTest, ConflictingContentLengthsShowBothReadings) {
  const std::string smuggled =
      "GET /smuggled HTTP/1.1\r\nAuthorization: Bearer s\r\n\r\n";
  for (const char* order : {"0\r\nContent-Length: 51", "51\r\nContent-Length: 0"}) {
    rec_.seen.clear();
    req_.reset();
    // Shorter reading: the smuggled GET is the next request. Longer: the
    // body is the GET, and /next follows it.
    Feed(Requests(), std::string("POST /a HTTP/1.1\r\nContent-Length: ") +
                         order + "\r\n\r\n" + smuggled +
                         "GET /next HTTP/1.1\r\n\r\n");
    ASSERT_EQ(rec_.seen.size(), 3u) << order;
    EXPECT_EQ(rec_.seen[1].target, "/smuggled");
    EXPECT_EQ(rec_.seen[1].auth, "Bearer s");
    EXPECT_EQ(rec_.seen[2].target, "/next");
  }
  EXPECT_EQ(stats_.Get(Anomaly::kHttpMultipleContentLength), 2u);
  ASSERT_EQ(smuggled.size(), 51u);
}

// The longer reading's message starts mid-line (the shorter body is not
// newline-terminated there): found at its exact offset, across segments.
TEST_F(ParserTest, ConflictingContentLengthsFindTheLongerReadingMidLine) {
  Feed(Requests(),
       "POST /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\nx");
  Feed(Requests(), "xyy");
  Feed(Requests(), "yyyGET /after HTTP/1.1\r\n\r\n");
  ASSERT_EQ(rec_.seen.size(), 2u);
  EXPECT_EQ(rec_.seen[1].target, "/after");
}

// suricata-verify http-multiple-content-length: POST /which with lengths
// 11 and 93. The short reading frames /evil (whose own body then holds
// /bad); the long one makes /which's body end where /bad begins. All three
// are requests to a monitor.
TEST_F(ParserTest, ConflictingContentLengthsSuricataCase) {
  Feed(Requests(),
       "POST /which.php HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length:11\r\n"
       "Content-Length:93\r\n\r\nbar=1&foo=2POST /evil.php HTTP/1.1\r\nHost: "
       "127.0.0.1\r\nContent-Length:98\r\n\r\nevilbar=3&evilfoo=4POST "
       "/bad.php HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length:17\r\n\r\n"
       "badbar=5&badfoo=6");
  ASSERT_EQ(rec_.seen.size(), 3u);
  EXPECT_EQ(rec_.seen[1].target, "/evil.php");
  EXPECT_EQ(rec_.seen[2].target, "/bad.php");
}

// A head the connection ends inside (http-evader 410/412: "\n\r\r\n" is
// no blank line) is counted, not dropped silently.
TEST_F(ParserTest, HeadCutOffByTheEndIsCounted) {
  Feed(Responses(), "HTTP/1.1 200 OK\r\nContent-Length: 3\n\r\r\nabc");
  EXPECT_TRUE(rec_.seen.empty());
  Responses().Finish();
  EXPECT_EQ(stats_.Get(Anomaly::kHttpIncompleteHead), 1u);
  EXPECT_GT(stats_.undecoded_bytes, 0u);
  // A parser between messages has nothing to count.
  Feed(Requests(), "GET / HTTP/1.1\r\n\r\n");
  Requests().Finish();
  EXPECT_EQ(stats_.Get(Anomaly::kHttpIncompleteHead), 1u);
}

TEST_F(ParserTest, ChunkSizeOverflowLosesSyncSafely) {
  Feed(Responses(),
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
       "chunked\r\n\r\n10000000000000000\r\n");
  EXPECT_EQ(stats_.Get(Anomaly::kHttpBadChunkSize), 1u);
  Feed(Responses(), "garbage\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(rec_.seen.size(), 2u);
}

TEST_F(ParserTest, GapInsideBodyKeepsSync) {
  Feed(Requests(), "POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
  Requests().OnGap(5);
  Feed(Requests(), "cde");
  Feed(Requests(), "GET /b HTTP/1.1\r\n\r\n");
  ASSERT_EQ(rec_.seen.size(), 2u);
  EXPECT_EQ(stats_.Get(Anomaly::kTcpContentGap), 0u);
}

TEST_F(ParserTest, GapInsideHeadResynchronises) {
  Feed(Requests(), "GET /a HTTP/1.1\r\nHo");
  Requests().OnGap(100);
  Feed(Requests(), "rest of a lost head\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
  ASSERT_EQ(rec_.seen.size(), 1u);
  EXPECT_EQ(rec_.seen[0].target, "/b");
  EXPECT_EQ(stats_.Get(Anomaly::kTcpContentGap), 1u);
}

TEST_F(ParserTest, MidstreamResyncFindsTheNextRequest) {
  Requests().StartResync();
  Feed(Requests(),
       "ody bytes of an earlier message\r\nGET /found HTTP/1.1\r\n\r\n");
  ASSERT_EQ(rec_.seen.size(), 1u);
  EXPECT_EQ(rec_.seen[0].target, "/found");
}

TEST_F(ParserTest, Http09Request) {
  Feed(Requests(), "GET /cgi-bin/formmail.pl\r\n");
  ASSERT_EQ(rec_.seen.size(), 1u);
  EXPECT_EQ(rec_.seen[0].target, "/cgi-bin/formmail.pl");
  EXPECT_EQ(stats_.Get(Anomaly::kHttpVersion09), 1u);
}

TEST_F(ParserTest, BadRequestLineIsCounted) {
  Feed(Requests(), "\x16\x03\x01 binary junk\r\n\r\n");
  EXPECT_EQ(rec_.seen.size(), 0u);
  EXPECT_EQ(stats_.Get(Anomaly::kHttpBadRequestLine), 1u);
}

TEST_F(ParserTest, ObsoleteLineFoldingJoinsValues) {
  Feed(Responses(),
       "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n "
       "chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(rec_.seen.size(), 2u);  // chunked framing understood
}

TEST_F(ParserTest, UnknownRoleLearnsFromTheFirstHead) {
  HttpParser p(Role::kUnknown, &rec_, &stats_, 1024, &scratch_);
  Feed(p, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(p.role(), Role::kResponse);
}

}  // namespace
}  // namespace tokenwatch::http
