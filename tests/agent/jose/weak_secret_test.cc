#include "agent/jose/weak_secret.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "tests/agent/jose/jose_test_util.h"

namespace tokenwatch::jose {
namespace {

using testing::SignJwt;

const std::string kWallarm = std::string(TOKENWATCH_SHARED_DATA) +
                             "/wordlists/wallarm-jwt-secrets/jwt.secrets.list";

// {"sub":"alice","iat":1764496803}
constexpr std::string_view kClaims = R"({"sub":"alice","iat":1764496803})";

std::string SigningInput(const std::string& token) {
  return token.substr(0, token.rfind('.'));
}

std::string RawSignature(const std::string& token) {
  std::string sig;
  jose::Base64UrlDecode(token.substr(token.rfind('.') + 1), &sig);
  return sig;
}

TEST(WeakSecretListTest, ParsesLinesLikeTheShippedList) {
  // CRLF and LF, a blank first line (as wallarm's list has), blank lines,
  // '#' and spaces kept as part of secrets, a repeat, an overlong line, no
  // final newline.
  std::string text = "\r\nsecret\r\n#######\r\n  spaced \r\n\nsecret\n" +
                     std::string(WeakSecretList::kMaxSecretBytes + 1, 'x') +
                     "\nlast";
  WeakSecretList list = WeakSecretList::FromText(text);
  ASSERT_EQ(list.size(), 5u);
  EXPECT_EQ(list.secret(0), "");  // built in
  EXPECT_EQ(list.line(0), 0u);
  EXPECT_EQ(list.secret(1), "secret");
  EXPECT_EQ(list.line(1), 2u);
  EXPECT_EQ(list.secret(2), "#######");
  EXPECT_EQ(list.secret(3), "  spaced ");
  EXPECT_EQ(list.secret(4), "last");
  EXPECT_EQ(list.line(4), 8u);
  EXPECT_EQ(list.load_stats().lines, 8u);
  EXPECT_EQ(list.load_stats().blank, 2u);
  EXPECT_EQ(list.load_stats().duplicates, 1u);
  EXPECT_EQ(list.load_stats().too_long, 1u);

  EXPECT_EQ(WeakSecretList::FromText("a\nb\n").size(), 3u);
  EXPECT_EQ(WeakSecretList::FromText("a\nb\n").load_stats().lines, 2u);
  EXPECT_EQ(WeakSecretList::FromText("").size(), 1u);
  EXPECT_EQ(WeakSecretList::FromText("\n\r\n").size(), 1u);
  EXPECT_EQ(WeakSecretList::FromFile("/nonexistent").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(WeakSecretListTest, FindsOnlyListedSecrets) {
  WeakSecretList list = WeakSecretList::FromText("alpha\nbeta\ngamma\n");
  for (const char* alg : {"HS256", "HS384", "HS512"}) {
    SCOPED_TRACE(alg);
    std::string token = SignJwt(alg, "", kClaims, nullptr, "gamma");
    EXPECT_EQ(list.FindSecret(SigningInput(token), RawSignature(token), alg),
              3u);
    EXPECT_EQ(list.FindSecretForToken(token, alg), 3u);
    std::string strong = SignJwt(alg, "", kClaims, nullptr, "Zq8#r!vT0pL2@kW9");
    EXPECT_EQ(list.FindSecretForToken(strong, alg), std::nullopt);
  }
  std::string token = SignJwt("HS256", "", kClaims, nullptr, "beta");
  // Wrong alg for the signature length, non-HMAC algs, junk.
  EXPECT_EQ(list.FindSecretForToken(token, "HS512"), std::nullopt);
  EXPECT_EQ(list.FindSecretForToken(token, "RS256"), std::nullopt);
  EXPECT_EQ(list.FindSecretForToken(token, "none"), std::nullopt);
  EXPECT_EQ(list.FindSecretForToken("a.b", "HS256"), std::nullopt);
  EXPECT_EQ(list.FindSecretForToken("a.b.c.d", "HS256"), std::nullopt);
  EXPECT_EQ(list.FindSecretForToken(SigningInput(token) + ".", "HS256"),
            std::nullopt);
  EXPECT_EQ(list.FindSecretForToken(
                SigningInput(token) + "." + std::string(5000, 'A'), "HS256"),
            std::nullopt);
  // A signature whose first 8 bytes match but whose tail differs.
  std::string sig = RawSignature(token);
  sig[31] ^= 1;
  EXPECT_EQ(list.FindSecret(SigningInput(token), sig, "HS256"), std::nullopt);
}

class ShippedListTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<WeakSecretList> loaded = WeakSecretList::FromFile(kWallarm);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    list_ = new WeakSecretList(*std::move(loaded));
  }
  static void TearDownTestSuite() {
    delete list_;
    list_ = nullptr;
  }
  static WeakSecretList* list_;
};
WeakSecretList* ShippedListTest::list_ = nullptr;

TEST_F(ShippedListTest, LoadsWallarmList) {
  const auto& s = list_->load_stats();
  std::printf(
      "%s: %zu lines, %zu secrets, %zu blank, %zu repeats, %zu too long\n",
      kWallarm.c_str(), s.lines, list_->size(), s.blank, s.duplicates,
      s.too_long);
  EXPECT_EQ(s.lines, 103979u);
  EXPECT_GT(list_->size(), 100000u);
  // Every line is a secret, a blank, a repeat or too long (entry 0 is the
  // built-in empty secret).
  EXPECT_EQ(s.lines, list_->size() - 1 + s.blank + s.duplicates + s.too_long);
  for (size_t i = 1; i < list_->size(); ++i) {
    ASSERT_FALSE(list_->secret(i).empty());
    ASSERT_NE(list_->secret(i).back(), '\r');
  }
}

TEST(WeakSecretListTest, FindsTheEmptySecret) {
  // {"alg":"HS256","kid":"../../../../dev/null"}: the jwt_tool kid attack
  // signs with the empty key that reading /dev/null gives.
  WeakSecretList list = WeakSecretList::FromText("secret\n");
  std::string token =
      SignJwt("HS256", "../../../../dev/null", kClaims, nullptr, "");
  std::optional<size_t> found = list.FindSecretForToken(token, "HS256");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, 0u);
  EXPECT_EQ(list.secret(*found), "");
  EXPECT_EQ(list.line(*found), 0u);
}

TEST_F(ShippedListTest, FindsListedSecretsAndNotOthers) {
  for (auto [alg, secret] :
       {std::pair{"HS256", "secret"}, std::pair{"HS384", "your-256-bit-secret"},
        std::pair{"HS512", "changeme"}}) {
    SCOPED_TRACE(secret);
    std::string token = SignJwt(alg, "", kClaims, nullptr, secret);
    std::optional<size_t> found = list_->FindSecretForToken(token, alg);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(list_->secret(*found), secret);
  }
  std::optional<size_t> secret = list_->FindSecretForToken(
      SignJwt("HS256", "", kClaims, nullptr, "secret"), "HS256");
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ(list_->line(*secret),
            40u);  // `grep -n` line of "secret" in the file
  // jwt-cpp's fuzz seed token, signed with "secret".
  std::string sample = testing::ReadFileOrDie(
      std::string(TOKENWATCH_SHARED_DATA) +
      "/jwt-vectors/jwt-cpp-fuzz/token-corpus/valid-sample");
  while (!sample.empty() && (sample.back() == '\n' || sample.back() == '\r'))
    sample.pop_back();
  std::optional<size_t> found = list_->FindSecretForToken(sample, "HS256");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(list_->secret(*found), "secret");
  // The last entry is found too (the whole list is searched).
  std::string last(list_->secret(list_->size() - 1));
  EXPECT_EQ(list_->FindSecretForToken(
                SignJwt("HS256", "", kClaims, nullptr, last), "HS256"),
            list_->size() - 1);
}

TEST_F(ShippedListTest, TrialsPerSecondAndThreads) {
  // A miss tries every secret: trials/s = list size / time. A short token,
  // and one with a typical access-token payload:
  // {"iss":"https://idp.example.com/realms/prod","sub":"...","aud":[...],...}
  std::string typical =
      R"({"iss":"https://idp.example.com/realms/prod","sub":"f1c2a3b4-5d6e-7f80-9a1b-2c3d4e5f6a7b",)"
      R"("aud":["orders-api","payments-api"],"exp":1764497703,"iat":1764496803,"nbf":1764496803,)"
      R"("jti":"0b9c8d7e-6f5a-4b3c-2d1e-0f9a8b7c6d5e","azp":"web-frontend",)"
      R"("scope":"openid profile email orders:read orders:write","sid":"a1b2c3d4e5f6"})";
  for (auto [alg, claims] :
       {std::pair{"HS256", std::string(kClaims)},
        std::pair{"HS384", std::string(kClaims)},
        std::pair{"HS512", std::string(kClaims)}, std::pair{"HS256", typical},
        std::pair{"HS384", typical}, std::pair{"HS512", typical}}) {
    std::string token =
        SignJwt(alg, "", claims, nullptr, "not in any list 7f3a9c");
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(list_->FindSecretForToken(token, alg), std::nullopt);
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    std::printf(
        "%s: %zu trials in %.3f s = %.0f trials/s (signing input %zu bytes)\n",
        alg, list_->size(), secs, list_->size() / secs,
        SigningInput(token).size());
  }
  // Two threads search the same list at once.
  std::string listed = SignJwt("HS256", "", kClaims, nullptr, "secret");
  std::string unlisted =
      SignJwt("HS256", "", kClaims, nullptr, "not in any list 7f3a9c");
  std::optional<size_t> a, b;
  std::thread t1([&] { a = list_->FindSecretForToken(unlisted, "HS256"); });
  std::thread t2([&] { b = list_->FindSecretForToken(listed, "HS256"); });
  t1.join();
  t2.join();
  EXPECT_EQ(a, std::nullopt);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(list_->secret(*b), "secret");
}

}  // namespace
}  // namespace tokenwatch::jose
