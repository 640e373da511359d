// TokenCache: decode once per distinct token; hits, misses and kinds
// counted the same whether a lookup takes the repeat fast path or the maps.
#include "agent/token/token_cache.h"

#include <gtest/gtest.h>

#include "tests/agent/testing/jwt_builder.h"

namespace tokenwatch::token {
namespace {

class TokenCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { fp_ = *Fingerprinter::Create("cache-test-key"); }
  AgentStats stats_;
  std::unique_ptr<Fingerprinter> fp_;
};

TEST_F(TokenCacheTest, RepeatsAndRotationCountAsBefore) {
  // {"sub":"a"} and {"sub":"b"}
  std::string a = testing::MakeJwt(R"({"sub":"a"})");
  std::string b = testing::MakeJwt(R"({"sub":"b"})");
  TokenCache cache(fp_.get(), /*capacity=*/1, &stats_);
  DecodedToken first = cache.Lookup(a);  // miss
  EXPECT_EQ(cache.Lookup(a), first);     // the same token again
  EXPECT_EQ(cache.Lookup(a), first);
  DecodedToken other = cache.Lookup(b);  // miss: a rotates to old
  EXPECT_EQ(cache.Lookup(a), first);     // hit in old, back to young
  EXPECT_EQ(cache.Lookup(b), other);     // hit in old, back to young
  EXPECT_EQ(cache.Lookup(b), other);
  EXPECT_EQ(stats_.token_cache_misses, 2u);
  EXPECT_EQ(stats_.token_cache_hits, 5u);
  EXPECT_EQ(stats_.tokens[size_t(TokenKindStat::kJwt)], 7u);
  EXPECT_EQ(first->info.sub(), "a");
  EXPECT_EQ(other->info.sub(), "b");
  EXPECT_EQ(cache.size(), 2u);
  // Rotated out twice (young of one entry): decoded again, as a miss.
  std::string c = testing::MakeJwt(R"({"sub":"c"})");
  cache.Lookup(c);                    // young {c}, old {b}
  cache.Lookup(b);                    // hit: young {b}, old {c}
  cache.Lookup(c);                    // hit: young {c}, old {b}
  EXPECT_NE(cache.Lookup(a), first);  // a is gone: a new record
  EXPECT_EQ(stats_.token_cache_misses, 4u);
  EXPECT_EQ(stats_.token_cache_hits, 7u);
}

TEST_F(TokenCacheTest, OpaqueTokensCountedByKind) {
  TokenCache cache(fp_.get(), /*capacity=*/16, &stats_);
  cache.Lookup("opaque-token-value");
  cache.Lookup("opaque-token-value");
  EXPECT_EQ(stats_.tokens[size_t(TokenKindStat::kOpaque)], 2u);
  EXPECT_EQ(stats_.token_cache_hits, 1u);
}

}  // namespace
}  // namespace tokenwatch::token
