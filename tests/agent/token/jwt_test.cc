#include "agent/token/jwt.h"

#include <gtest/gtest.h>

#include "agent/jose/base64url.h"
#include "tests/agent/testing/jwt_builder.h"

namespace tokenwatch::token {
namespace {

using jose::Base64UrlDecode;
using jose::Base64UrlEncode;
using testing::MakeJwt;

TEST(Base64UrlTest, RoundTripAndRejects) {
  std::string out;
  for (std::string s :
       {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe"}) {
    ASSERT_TRUE(Base64UrlDecode(Base64UrlEncode(s), &out));
    EXPECT_EQ(out, s);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(Base64UrlDecode("a+b", &out));
  EXPECT_FALSE(Base64UrlDecode("abcde", &out));  // impossible length
  EXPECT_TRUE(Base64UrlDecode("Zm8=", &out));    // tolerated padding
  EXPECT_EQ(out, "fo");
}

class JwtTest : public ::testing::Test {
 protected:
  v1::TokenInfo Decode(std::string_view token) {
    v1::TokenInfo info;
    decoder_.Decode(token, &info);
    return info;
  }
  AgentStats stats_;
  JwtDecoder decoder_{&stats_};
};

TEST_F(JwtTest, DecodesEveryClaimAndHeaderField) {
  // {"iss":"https://idp.test","sub":"alice","aud":["orders-api","payments-api"],
  //  "exp":1764497703,"nbf":1764496800,"iat":1764496803,"jti":"j-81",
  //  "scope":"orders:read orders:write","azp":"web"}
  std::string t = MakeJwt(
      R"({"iss":"https://idp.test","sub":"alice","aud":["orders-api","payments-api"],)"
      R"("exp":1764497703,"nbf":1764496800,"iat":1764496803,"jti":"j-81",)"
      R"("scope":"orders:read orders:write","azp":"web"})",
      R"({"alg":"RS256","kid":"rsa-1","typ":"JWT","jku":"https://evil.test/k","x5u":"https://x","jwk":{"kty":"RSA"},"crit":["exp"]})");
  v1::TokenInfo i = Decode(t);
  EXPECT_EQ(i.kind(), v1::TOKEN_KIND_JWT);
  EXPECT_EQ(i.iss(), "https://idp.test");
  EXPECT_EQ(i.sub(), "alice");
  ASSERT_EQ(i.aud_size(), 2);
  EXPECT_EQ(i.aud(1), "payments-api");
  EXPECT_EQ(i.exp(), 1764497703);
  EXPECT_EQ(i.nbf(), 1764496800);
  EXPECT_EQ(i.iat(), 1764496803);
  EXPECT_EQ(i.jti(), "j-81");
  ASSERT_EQ(i.scopes_size(), 2);
  EXPECT_EQ(i.scopes(1), "orders:write");
  EXPECT_EQ(i.client_id(), "web");
  EXPECT_EQ(i.alg(), "RS256");
  EXPECT_EQ(i.kid(), "rsa-1");
  EXPECT_EQ(i.typ(), "JWT");
  EXPECT_EQ(i.jku(), "https://evil.test/k");
  EXPECT_EQ(i.x5u(), "https://x");
  EXPECT_TRUE(i.has_jwk());
  ASSERT_EQ(i.crit_size(), 1);
  EXPECT_EQ(stats_.Get(Malformed::kBadClaimType), 0u);
}

TEST_F(JwtTest, ClaimVariants) {
  // {"aud":"orders-api","exp":1764497703.9,"scp":["a","b"],"client_id":"cli","azp":"x","jti":7}
  v1::TokenInfo i = Decode(MakeJwt(
      R"({"aud":"orders-api","exp":1764497703.9,"scp":["a","b"],"client_id":"cli","azp":"x","jti":7})"));
  ASSERT_EQ(i.aud_size(), 1);
  EXPECT_EQ(i.aud(0), "orders-api");
  EXPECT_EQ(i.exp(), 1764497703);
  EXPECT_EQ(i.scopes_size(), 2);
  EXPECT_EQ(i.client_id(), "cli");
  EXPECT_EQ(i.jti(), "7");
  EXPECT_FALSE(i.has_nbf());
  EXPECT_FALSE(i.has_iat());
}

TEST_F(JwtTest, WrongClaimTypesAreCountedNotFatal) {
  // {"sub":42,"exp":"tomorrow","aud":[1,"ok"],"iss":"i"}
  v1::TokenInfo i = Decode(
      MakeJwt(R"({"sub":42,"exp":"tomorrow","aud":[1,"ok"],"iss":"i"})"));
  EXPECT_EQ(i.kind(), v1::TOKEN_KIND_JWT);
  EXPECT_EQ(i.iss(), "i");
  EXPECT_FALSE(i.has_exp());
  EXPECT_EQ(i.aud_size(), 1);
  EXPECT_EQ(stats_.Get(Malformed::kBadClaimType), 3u);
}

TEST_F(JwtTest, MalformedTokensByReason) {
  EXPECT_EQ(Decode("eyJ!!!.eyJ.sig").kind(), v1::TOKEN_KIND_OPAQUE);
  EXPECT_EQ(stats_.Get(Malformed::kBadBase64), 1u);
  // Header decodes but is not JSON: "eyJub3Q" = {"not
  EXPECT_EQ(Decode(Base64UrlEncode("{\"not json") + ".e30.sig").kind(),
            v1::TOKEN_KIND_OPAQUE);
  EXPECT_EQ(stats_.Get(Malformed::kHeaderNotJson), 1u);
  // Payload not JSON: a JWS with a binary payload stays a JWT.
  v1::TokenInfo i = Decode(Base64UrlEncode(R"({"alg":"HS256"})") + "." +
                           Base64UrlEncode("\x01\x02") + ".sig");
  EXPECT_EQ(i.kind(), v1::TOKEN_KIND_JWT);
  EXPECT_EQ(i.alg(), "HS256");
  EXPECT_EQ(stats_.Get(Malformed::kPayloadNotJson), 1u);
}

TEST_F(JwtTest, HostileJsonNeverCrashes) {
  std::string deep(100000, '[');
  v1::TokenInfo i = Decode(MakeJwt("{\"a\":" + deep + "}"));
  EXPECT_EQ(i.kind(), v1::TOKEN_KIND_JWT);
  EXPECT_EQ(stats_.Get(Malformed::kPayloadNotJson), 1u);
  std::string long_sub(5000, 's');
  i = Decode(MakeJwt("{\"sub\":\"" + long_sub + "\"}"));
  EXPECT_EQ(i.sub().size(), 1024u);
  EXPECT_EQ(stats_.Get(Malformed::kClaimTooLong), 1u);
}

TEST_F(JwtTest, JweKeepsItsHeaderOnly) {
  // {"alg":"RSA-OAEP","enc":"A256GCM"}
  std::string jwe =
      Base64UrlEncode(R"({"alg":"RSA-OAEP","enc":"A256GCM"})") + ".a.b.c.d";
  v1::TokenInfo i = Decode(jwe);
  EXPECT_EQ(i.kind(), v1::TOKEN_KIND_JWE);
  EXPECT_EQ(i.alg(), "RSA-OAEP");
  EXPECT_EQ(FingerprintInput(jwe, i.kind()), jwe);
}

TEST_F(JwtTest, OpaqueTokensWithDotsStayOpaque) {
  EXPECT_EQ(Decode("mF_9.B5f-4.1JqM").kind(), v1::TOKEN_KIND_OPAQUE);
  EXPECT_EQ(Decode("1gsho83nt3bkmykh5aynw6kzgy").kind(), v1::TOKEN_KIND_OPAQUE);
  EXPECT_EQ(stats_.Get(Malformed::kBadBase64), 0u);
}

TEST(LooksLikeJwtTest, Shapes) {
  EXPECT_TRUE(LooksLikeJwt(MakeJwt(R"({"sub":"a"})")));
  EXPECT_FALSE(LooksLikeJwt("mF_9.B5f-4.1JqM"));
  EXPECT_FALSE(LooksLikeJwt("eyJhbGciOiJIUzI1NiJ9"));  // one part
  EXPECT_FALSE(LooksLikeJwt("eyJhbGci OiJ.x.y"));
}

TEST(FingerprintInputTest, SigningInputOfJws) {
  EXPECT_EQ(FingerprintInput("aaa.bbb.ccc", v1::TOKEN_KIND_JWT), "aaa.bbb");
  EXPECT_EQ(FingerprintInput("mF_9.B5f-4.1JqM", v1::TOKEN_KIND_OPAQUE),
            "mF_9.B5f-4.1JqM");
}

}  // namespace
}  // namespace tokenwatch::token
