#include "agent/token/fingerprint.h"

#include <gtest/gtest.h>

#include "agent/token/token_cache.h"
#include "tests/agent/testing/jwt_builder.h"

namespace tokenwatch::token {
namespace {

TEST(FingerprinterTest, MatchesRfc4231TestCase1) {
  // HMAC-SHA256(0x0b * 20, "Hi There") = b0344c61d8db38535ca8afceaf0bf12b...
  auto fp = Fingerprinter::Create(std::string(20, '\x0b'));
  ASSERT_TRUE(fp.ok());
  EXPECT_EQ((*fp)->Fingerprint("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b");
  // Repeated calls reuse the keyed context correctly.
  EXPECT_EQ((*fp)->Fingerprint("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b");
}

TEST(FingerprinterTest, RejectsEmptyAndMissingKeys) {
  EXPECT_FALSE(Fingerprinter::Create("").ok());
  EXPECT_FALSE(Fingerprinter::FromFile("/nonexistent/key").ok());
}

TEST(TokenCacheTest, DecodesOnceAndIgnoresTheSignatureForIdentity) {
  auto fp = Fingerprinter::Create("k");
  ASSERT_TRUE(fp.ok());
  AgentStats stats;
  TokenCache cache(fp->get(), 4, &stats);
  // {"sub":"alice","jti":"j1"}
  std::string t = testing::MakeJwt(R"({"sub":"alice","jti":"j1"})");
  DecodedToken a = cache.Lookup(t);
  DecodedToken b = cache.Lookup(t);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(stats.token_cache_misses, 1u);
  EXPECT_EQ(stats.token_cache_hits, 1u);
  EXPECT_EQ(a->info.fp(), (*fp)->Fingerprint(t.substr(0, t.rfind('.'))));
  // A malleated signature is the same identity (SPEC).
  DecodedToken c = cache.Lookup(t.substr(0, t.rfind('.')) + ".AAAA");
  EXPECT_EQ(c->info.fp(), a->info.fp());
}

TEST(TokenCacheTest, StaysBounded) {
  auto fp = Fingerprinter::Create("k");
  ASSERT_TRUE(fp.ok());
  AgentStats stats;
  TokenCache cache(fp->get(), 8, &stats);
  for (int i = 0; i < 1000; ++i) cache.Lookup("opaque-" + std::to_string(i));
  EXPECT_LE(cache.size(), 16u);
  EXPECT_EQ(stats.tokens[size_t(TokenKindStat::kOpaque)], 1000u);
}

}  // namespace
}  // namespace tokenwatch::token
