#include "collector/state/token_table.h"

#include <malloc.h>

#include <string>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/collector/testing/builders.h"

namespace tokenwatch::collector {
namespace {

constexpr int64_t kT0 = 1764460800;  // 2025-11-30T00:00:00Z

// A JWT as the agent reports it: a UUID-like jti, one of 5,000 subjects.
v1::TokenInfo Jwt(int i, const std::string& iss = "https://idp.test") {
  v1::TokenInfo t;
  t.set_kind(v1::TOKEN_KIND_JWT);
  t.set_fp(absl::StrFormat("%032x", i * 2654435761u + 7));
  t.set_iss(iss);
  t.set_sub(absl::StrCat("user-", i % 5000));
  t.set_jti(absl::StrFormat("%08x-4b1d-4c9a-9e2f-%012x", i, i * 31));
  t.add_aud("orders-api");
  t.add_scopes("orders:read");
  t.set_alg("RS256");
  t.set_exp(kT0 + 3600);
  t.set_iat(kT0);
  return t;
}

v1::TokenInfo Opaque(int i) {
  v1::TokenInfo t;
  t.set_kind(v1::TOKEN_KIND_OPAQUE);
  t.set_fp(absl::StrFormat("%032x", i * 40503u + 1));
  return t;
}

using test::Use;

TEST(TokenTableTest, IdentityIsIssJtiOrFingerprint) {
  TokenTable table;
  bool created;
  TokenTable::Ref a, b, c;
  TokenState& s = table.Upsert(Jwt(1), &created, &a);
  EXPECT_TRUE(created);
  EXPECT_EQ(table.Identity(s),
            "https://idp.test|00000001-4b1d-4c9a-9e2f-00000000001f");
  // The same (iss, jti) re-signed: the same token, claims re-read.
  v1::TokenInfo resigned = Jwt(1);
  resigned.set_fp(std::string(32, 'a'));
  resigned.set_sub("mallory");
  table.Upsert(resigned, &created, &b);
  EXPECT_FALSE(created);
  EXPECT_EQ(a, b);
  EXPECT_EQ(table.Claims(table.At(a)).sub(), "mallory");
  // The same jti from another issuer is another token.
  table.Upsert(Jwt(1, "https://other.test"), &created, &c);
  EXPECT_TRUE(created);
  EXPECT_NE(a, c);
  // Opaque tokens are tracked by fp alone.
  TokenTable::Ref o;
  TokenState& os = table.Upsert(Opaque(5), &created, &o);
  EXPECT_EQ(table.Identity(os), absl::StrFormat("%032x", 5 * 40503u + 1));
  EXPECT_EQ(table.Find(table.Identity(os)), &os);
  EXPECT_EQ(table.Find("https://idp.test|00000001-4b1d-4c9a-9e2f-00000000001f"),
            &table.At(a));
  EXPECT_EQ(table.Find("https://idp.test|nope"), nullptr);
  EXPECT_EQ(table.size(), 3u);
}

TEST(TokenTableTest, ErasedSlotsAreReusedAndStayFindable) {
  TokenTable table;
  bool created;
  std::vector<TokenTable::Ref> refs(3000);
  for (int i = 0; i < 3000; ++i) table.Upsert(Jwt(i), &created, &refs[i]);
  for (int i = 0; i < 3000; i += 2) table.Erase(refs[i]);
  EXPECT_EQ(table.size(), 1500u);
  TokenTable::Ref again;
  table.Upsert(Jwt(100000), &created, &again);
  EXPECT_TRUE(created);
  EXPECT_EQ(again % 2, 0u);  // an erased slot, not a new one
  for (int i = 1; i < 3000; i += 2) {
    TokenTable::Ref r;
    table.Upsert(Jwt(i), &created, &r);
    ASSERT_FALSE(created) << i;
    ASSERT_EQ(r, refs[i]);
  }
}

TEST(TokenTableTest, ClientsAreBoundedAndRecentSourcesCounted) {
  TokenTable table(/*max_clients_per_token=*/3);
  bool created;
  TokenTable::Ref ref;
  TokenState& s = table.Upsert(Jwt(1), &created, &ref);
  for (int c = 0; c < 5; ++c)
    table.RecordUse(s, Use("orders", kT0 + 10 * c, absl::StrCat("10.0.0.", c)));
  EXPECT_EQ(s.clients.size(), 3u);  // the oldest two evicted
  EXPECT_EQ(s.uses, 5u);
  // Seen at +20, +30, +40; a window opening at +25 holds .3 and .4.
  EXPECT_EQ(table.RecentSources(s, "10.9.9.9", (kT0 + 25) * 1000000), 3u);
  EXPECT_EQ(table.RecentSources(s, "10.0.0.4", (kT0 + 25) * 1000000), 2u);
  TokenRow row = table.ToRow(s);
  EXPECT_EQ(row.clients,
            (std::vector<std::string>{"10.0.0.2", "10.0.0.3", "10.0.0.4"}));
  EXPECT_EQ(row.uses_by_service.at("orders")[2], 5u);
}

TEST(TokenTableTest, RestoreRoundTrips) {
  TokenTable a;
  bool created;
  TokenTable::Ref ref;
  TokenState& s = a.Upsert(Jwt(7), &created, &ref);
  a.RecordUse(s, Use("orders", kT0 + 1, "10.0.0.1", 200));
  a.RecordUse(s, Use("payments", kT0 + 2, "10.0.0.2", 403));
  TokenRow row = a.ToRow(s);
  TokenTable b;
  b.Restore(row);
  TokenState* r = b.Find(row.identity);
  ASSERT_NE(r, nullptr);
  TokenRow again = b.ToRow(*r);
  EXPECT_EQ(again.identity, row.identity);
  EXPECT_EQ(again.uses, 2u);
  EXPECT_EQ(again.services, row.services);
  EXPECT_EQ(again.token.SerializeAsString(), row.token.SerializeAsString());
}

// The bound: at most 256 bytes of memory per tracked token. Measured
// twice: the table's own account, and malloc's (which sees every byte,
// interned strings included).
TEST(TokenTableTest, MemoryPerTokenIsAtMost256Bytes) {
  constexpr int kTokens = 100000;
  std::vector<v1::TokenInfo> tokens;
  tokens.reserve(kTokens);
  for (int i = 0; i < kTokens; ++i) tokens.push_back(Jwt(i));
  v1::UsageEvent use = Use("orders", kT0 + 5, "10.1.2.3");
  size_t before = mallinfo2().uordblks;
  {
    TokenTable table;
    bool created;
    TokenTable::Ref ref;
    for (const v1::TokenInfo& t : tokens)
      table.RecordUse(table.Upsert(t, &created, &ref), use);
    size_t after = mallinfo2().uordblks;
    double by_malloc = static_cast<double>(after - before) / kTokens;
    double by_table = table.bytes_per_token();
    RecordProperty("bytes_per_token", std::to_string(by_table));
    RecordProperty("malloc_bytes_per_token", std::to_string(by_malloc));
    printf("bytes per token: %.1f (table's account), %.1f (malloc)\n", by_table,
           by_malloc);
    EXPECT_LE(by_table, 256);
    EXPECT_LE(by_malloc, 256);
    // The account must not undercount what malloc sees by much (it leaves
    // out the interned subjects).
    EXPECT_GT(by_table, 0.85 * by_malloc);
  }
}

}  // namespace
}  // namespace tokenwatch::collector
