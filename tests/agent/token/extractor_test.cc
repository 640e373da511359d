#include "agent/token/extractor.h"

#include <gtest/gtest.h>

#include "agent/http/message.h"
#include "tests/agent/testing/jwt_builder.h"

namespace tokenwatch::token {
namespace {

class ExtractorTest : public ::testing::Test {
 protected:
  const Extraction& Run(std::string target, std::vector<http::Header> headers) {
    storage_target_ = std::move(target);
    head_.is_request = true;
    head_.method = "GET";
    head_.target = storage_target_;
    head_.num_headers = headers.size();
    for (size_t i = 0; i < headers.size(); ++i) head_.headers[i] = headers[i];
    extractor_.Extract(http::ToRequest(head_), &out_);
    return out_;
  }
  AgentStats stats_;
  Extractor extractor_{{"x-api-token"}, &stats_};
  http::MessageHead head_;
  Extraction out_;
  std::string storage_target_;
  // {"sub":"alice"}
  std::string jwt_ = testing::MakeJwt(R"({"sub":"alice"})");
};

TEST_F(ExtractorTest, AuthorizationSchemes) {
  std::string bearer = "Bearer " + jwt_, upper = "BEARER opaque-1",
              jwt_scheme = "JWT " + jwt_;
  const Extraction& e = Run("/", {{"Authorization", bearer},
                                  {"authorization", upper},
                                  {"Authorization", jwt_scheme},
                                  {"Authorization", jwt_}});
  ASSERT_EQ(e.tokens.size(), 4u);
  EXPECT_EQ(e.tokens[0].value, jwt_);
  EXPECT_EQ(e.tokens[1].value, "opaque-1");
  EXPECT_EQ(e.tokens[2].value, jwt_);
  EXPECT_EQ(e.tokens[3].value, jwt_);  // bare JWT without a scheme (bug-7390)
  for (const auto& t : e.tokens)
    EXPECT_EQ(t.location, v1::TOKEN_LOCATION_AUTHORIZATION);
}

TEST_F(ExtractorTest, NonBearerSchemesAreIgnored) {
  const Extraction& e = Run("/", {{"Authorization", "Basic dXNlcjpwYXNz"},
                                  {"Authorization", "Turbo customAuthDataHere"},
                                  {"Authorization", "opaque-without-scheme"}});
  EXPECT_TRUE(e.tokens.empty());
}

TEST_F(ExtractorTest, OpaqueBearerWithDots) {
  const Extraction& e = Run("/", {{"Authorization", "Bearer mF_9.B5f-4.1JqM"}});
  ASSERT_EQ(e.tokens.size(), 1u);
  EXPECT_EQ(e.tokens[0].value, "mF_9.B5f-4.1JqM");
}

TEST_F(ExtractorTest, EmptyBearerIsCounted) {
  EXPECT_TRUE(Run("/", {{"Authorization", "Bearer"}}).tokens.empty());
  EXPECT_TRUE(Run("/", {{"Authorization", "Bearer   "}}).tokens.empty());
  EXPECT_EQ(stats_.Get(Malformed::kEmptyToken), 2u);
}

TEST_F(ExtractorTest, CookiesHoldingJwts) {
  std::string cookie =
      "theme=dark; session=" + jwt_ + "; quoted=\"" + jwt_ + "\"; other=eyJx";
  const Extraction& e = Run("/", {{"Cookie", cookie}});
  ASSERT_EQ(e.tokens.size(), 2u);
  EXPECT_EQ(e.tokens[0].location, v1::TOKEN_LOCATION_COOKIE);
  EXPECT_EQ(e.tokens[0].param, "session");
  EXPECT_EQ(e.tokens[1].param, "quoted");
  EXPECT_EQ(e.tokens[1].value, jwt_);
}

TEST_F(ExtractorTest, QueryParameters) {
  const Extraction& e = Run("/cb?code=1&access_token=" + jwt_ +
                                "&id_token=a%2Eb&token=t&jwt=j&tokenx=no#frag",
                            {});
  ASSERT_EQ(e.tokens.size(), 4u);
  EXPECT_EQ(e.tokens[0].param, "access_token");
  EXPECT_EQ(e.tokens[0].value, jwt_);
  EXPECT_EQ(e.tokens[1].value, "a.b");  // percent-decoded
  EXPECT_EQ(e.tokens[2].param, "token");
  EXPECT_EQ(e.tokens[3].param, "jwt");
  EXPECT_EQ(e.tokens[3].location, v1::TOKEN_LOCATION_QUERY);
}

TEST_F(ExtractorTest, ConfiguredHeadersAndWebSocketProtocol) {
  std::string ws = "v1, authorization.bearer." + jwt_;
  const Extraction& e = Run("/", {{"X-Api-Token", jwt_},
                                  {"Sec-WebSocket-Protocol", ws},
                                  {"X-Other", jwt_}});
  ASSERT_EQ(e.tokens.size(), 2u);
  EXPECT_EQ(e.tokens[0].location, v1::TOKEN_LOCATION_HEADER);
  EXPECT_EQ(e.tokens[0].param, "x-api-token");
  EXPECT_EQ(e.tokens[1].location, v1::TOKEN_LOCATION_WEBSOCKET_PROTOCOL);
  EXPECT_EQ(e.tokens[1].value, jwt_);
}

TEST_F(ExtractorTest, OversizedAndOddTokensAreCounted) {
  std::string huge = "Bearer " + std::string(20000, 'a');
  EXPECT_TRUE(Run("/", {{"Authorization", huge}}).tokens.empty());
  EXPECT_EQ(stats_.Get(Drop::kTokenTooLong), 1u);
  EXPECT_EQ(Run("/", {{"Authorization", "Bearer a\"b"}}).tokens.size(), 1u);
  EXPECT_EQ(stats_.Get(Malformed::kBadTokenChars), 1u);
}

TEST(PathOfTest, Forms) {
  EXPECT_EQ(Extractor::PathOf("/v1/orders/42?x=1"), "/v1/orders/42");
  EXPECT_EQ(Extractor::PathOf("/a#frag"), "/a");
  EXPECT_EQ(Extractor::PathOf("http://h:8080/p/q?z"), "/p/q");
  EXPECT_EQ(Extractor::PathOf("http://h:8080?z"), "/");
  EXPECT_EQ(Extractor::PathOf("db.internal:5432"), "db.internal:5432");
  EXPECT_EQ(Extractor::QueryOf("/a?b=c#d"), "b=c");
}

// A JWT in the path, a matrix parameter, percent-encoded, or as the Host:
// each is found (so it can be reported as token_in_url and redacted) with
// its span in the target.
TEST_F(ExtractorTest, TokensInThePathAndHost) {
  std::string encoded = jwt_;
  size_t dot = encoded.find('.');
  encoded.replace(dot, 1, "%2E");
  std::string target = "/v1/verify/" + jwt_ + "/x;access_token=opaque-77;v=1" +
                       "/y;sid=" + encoded + "?q=1";
  std::string host = jwt_ + ":8080";  // outlives the header's view
  const Extraction& e = Run(target, {{"Host", host}});
  ASSERT_EQ(e.tokens.size(), 4u);
  EXPECT_EQ(e.tokens[0].location, v1::TOKEN_LOCATION_PATH);
  EXPECT_EQ(e.tokens[0].value, jwt_);
  EXPECT_EQ(e.tokens[0].param, "");
  EXPECT_EQ(e.tokens[0].span, jwt_);
  EXPECT_EQ(e.tokens[0].span.data(), storage_target_.data() + 11);
  EXPECT_EQ(e.tokens[1].param, "access_token");  // any shape: a token name
  EXPECT_EQ(e.tokens[1].value, "opaque-77");
  EXPECT_EQ(e.tokens[2].param, "sid");
  EXPECT_EQ(e.tokens[2].value, jwt_);  // decoded
  EXPECT_EQ(e.tokens[2].span, encoded);
  EXPECT_EQ(e.tokens[3].location, v1::TOKEN_LOCATION_HOST);
  EXPECT_EQ(e.tokens[3].value, jwt_);
}

// Ordinary paths and hosts, and matrix parameters that are not token
// names, carry no token.
TEST_F(ExtractorTest, OrdinaryPathsCarryNoToken) {
  EXPECT_TRUE(Run("/v1/orders/42;jsessionid=ABCDEF0123456789/items%20x",
                  {{"Host", "orders.internal:8080"}})
                  .tokens.empty());
  EXPECT_TRUE(Run("/eyJ/short", {{"Host", "eyJhbGciOi"}}).tokens.empty());
}

TEST_F(ExtractorTest, EveryNonB64TokenByteIsCountedWherever) {
  // The check reads 16 and 8 bytes at a time: a bad byte at any offset,
  // and bytes on either side of each range, must still be found.
  std::string good =
      "AZaz09-._~+/" + std::string(40, 'x') + "==";  // every class, padding
  Run("/", {{"Authorization", "Bearer " + good}});
  ASSERT_EQ(out_.tokens.size(), 1u);
  EXPECT_EQ(stats_.Get(Malformed::kBadTokenChars), 0u);
  uint64_t counted = 0;
  for (char bad : std::string("@[`{\x7f\x80\xff!*:=\"") + std::string(1, '\0')) {
    for (size_t at = 0; at < 40; ++at) {
      std::string token = std::string(40, 'a');
      token[at] = bad;
      if (bad == '=' && at == 39) continue;  // trailing padding is fine
      Run("/", {{"Authorization", "Bearer " + token}});
      ASSERT_EQ(out_.tokens.size(), 1u);
      EXPECT_EQ(stats_.Get(Malformed::kBadTokenChars), ++counted)
          << "byte " << int(static_cast<unsigned char>(bad)) << " at " << at;
    }
  }
}

}  // namespace
}  // namespace tokenwatch::token
