// The raw-token checks of the agent with keys generated at test time.
#include "agent/token/token_checks.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/output/event_json.h"
#include "agent/token/jwt.h"
#include "tests/agent/jose/jose_test_util.h"

namespace tokenwatch::token {
namespace {

using jose::testing::GenerateKey;
using jose::testing::PublicJwk;
using jose::testing::SignJwt;

constexpr int64_t kIat = 1764496803;

class TokenChecksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rsa_ = GenerateKey("RSA");
    // A folder of its own: CTest runs these tests as parallel processes.
    std::string tmpl = ::testing::TempDir() + "/token_checks_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/idp.jwks")
        << "{\"keys\":[" << PublicJwk(rsa_.get(), "rsa-1", "RS256") << "]}";
    std::ofstream(dir_ + "/weak.list") << "password\nsecret\nchangeme\n";
    config::Issuer idp;
    idp.iss = "https://idp.test";
    idp.algorithms = {"RS256"};
    idp.jwks_file = dir_ + "/idp.jwks";
    idp.max_lifetime = absl::Hours(1);
    config::Issuer legacy;
    legacy.iss = "legacy-app";
    legacy.algorithms = {"HS256"};
    cfg_.issuers = {idp, legacy};
    cfg_.detections.weak_secrets_file = dir_ + "/weak.list";
    auto c = TokenChecks::Create(cfg_, &stats_);
    ASSERT_TRUE(c.ok()) << c.status();
    checks_ = *std::move(c);
  }
  std::vector<std::string> Types(const std::string& token) {
    v1::TokenInfo info;
    decoder_.Decode(token, &info);
    std::vector<std::string> out;
    for (auto& f : checks_->Check(token, info))
      out.emplace_back(AlertTypeName(f.type));
    return out;
  }
  std::string Rs(std::string payload, std::string kid = "rsa-1") {
    return SignJwt("RS256", kid, payload, rsa_.get());
  }

  jose::PkeyRef rsa_;
  std::string dir_;
  config::Config cfg_;
  AgentStats stats_;
  JwtDecoder decoder_{&stats_};
  std::unique_ptr<TokenChecks> checks_;
};

// {"iss":"https://idp.test","sub":"alice","iat":1764496803,"exp":1764497703}
const std::string kGood =
    R"({"iss":"https://idp.test","sub":"alice","iat":1764496803,"exp":1764497703})";

TEST_F(TokenChecksTest, ValidTokenHasNoFindings) {
  EXPECT_TRUE(Types(Rs(kGood)).empty());
}

TEST_F(TokenChecksTest, SignatureAlgorithmAndHeaderFailures) {
  std::string good = Rs(kGood);
  std::string tampered = jose::testing::FlipBit(good, 2, 10);
  EXPECT_EQ(Types(tampered), std::vector<std::string>{"invalid_signature"});
  EXPECT_EQ(Types(Rs(kGood, "rsa-9")),
            std::vector<std::string>{"invalid_signature"});
  // alg none, any case, and an empty signature.
  std::string none = jose::testing::B64(R"({"alg":"NoNe"})") + "." +
                     jose::testing::B64(kGood) + ".";
  EXPECT_EQ(Types(none), std::vector<std::string>{"alg_none"});
  EXPECT_EQ(Types(good.substr(0, good.rfind('.') + 1)),
            std::vector<std::string>{"alg_none"});
  // HS256 from an RS256-only issuer: algorithm confusion.
  std::string confused =
      SignJwt("HS256", "", kGood, nullptr, "public-key-bytes");
  auto t = Types(confused);
  EXPECT_NE(std::find(t.begin(), t.end(), "alg_not_allowed"), t.end());
  // jku off the issuer's host.
  std::string header =
      R"({"alg":"RS256","kid":"rsa-1","jku":"https://evil.example/jwks.json"})";
  std::string input =
      jose::testing::B64(header) + "." + jose::testing::B64(kGood);
  std::string jku =
      input + "." +
      jose::testing::B64(jose::testing::SignInput("RS256", input, rsa_.get()));
  EXPECT_EQ(Types(jku), std::vector<std::string>{"header_injection"});
}

TEST_F(TokenChecksTest, Lifetimes) {
  // {"iss":"https://idp.test","sub":"bob","iat":1764496803}
  EXPECT_EQ(
      Types(Rs(R"({"iss":"https://idp.test","sub":"bob","iat":1764496803})")),
      std::vector<std::string>{"no_expiry"});
  // 30 days against the issuer's max_lifetime of 1h.
  std::string long_lived =
      R"({"iss":"https://idp.test","iat":1764496803,"exp":)" +
      std::to_string(kIat + 30 * 86400) + "}";
  EXPECT_EQ(Types(Rs(long_lived)), std::vector<std::string>{"long_lived"});
  // Exactly max_lifetime is allowed.
  std::string edge = R"({"iss":"https://idp.test","iat":1764496803,"exp":)" +
                     std::to_string(kIat + 3600) + "}";
  EXPECT_TRUE(Types(Rs(edge)).empty());
}

TEST_F(TokenChecksTest, WeakSecretFoundOnTheWorker) {
  // {"iss":"legacy-app","sub":"carol","iat":1764496803,"exp":1764497703}
  std::string token = SignJwt(
      "HS256", "",
      R"({"iss":"legacy-app","sub":"carol","iat":1764496803,"exp":1764497703})",
      nullptr, "secret");
  v1::TokenInfo info;
  decoder_.Decode(token, &info);
  auto record = output::MakeTokenRecord(info, checks_->Check(token, info));
  ASSERT_TRUE(checks_->QueueWeakSecret(token, record));
  EXPECT_TRUE(record->weak_pending());
  // The worker posts its verdict; only the owner's thread writes it into
  // the record, so the record stays pending until it is delivered.
  for (int i = 0; i < 1000 && !checks_->Idle(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(record->weak_pending());
  EXPECT_EQ(checks_->DeliverVerdicts(), 1u);
  EXPECT_EQ(record->weak_state, output::TokenRecord::kWeakFound);
  EXPECT_NE(record->weak_detail.find("line 2"), std::string::npos)
      << record->weak_detail;
  EXPECT_EQ(record->weak_detail.find("secret\""),
            std::string::npos);  // never the secret itself

  std::string strong =
      SignJwt("HS256", "", R"({"iss":"legacy-app","exp":1764497703})", nullptr,
              "a-long-random-secret-not-in-any-list");
  decoder_.Decode(strong, &info);
  auto record2 = output::MakeTokenRecord(info);
  ASSERT_TRUE(checks_->QueueWeakSecret(strong, record2));
  checks_->Drain(std::chrono::seconds(10));
  EXPECT_EQ(record2->weak_state, output::TokenRecord::kWeakClear);
  // Not an HMAC token: nothing to search.
  v1::TokenInfo rs;
  decoder_.Decode(Rs(kGood), &rs);
  EXPECT_FALSE(
      checks_->QueueWeakSecret(Rs(kGood), output::MakeTokenRecord(rs)));
}

// A config reload replaces the checks: searches queued on the old ones move
// to the new ones (or end clear when the new config has no list), so no
// record stays pending and no held event waits forever.
TEST_F(TokenChecksTest, PendingSearchesSurviveAReload) {
  // 200 tokens {"iss":"legacy-app","exp":1764497703,"jti":"<prefix><i>"},
  // HS256 with "secret", queued for the weak-secret search on `checks`.
  auto queue_weak = [this](TokenChecks* checks, const std::string& prefix) {
    std::vector<output::MutableTokenRef> records;
    for (int i = 0; i < 200; ++i) {
      std::string token = SignJwt(
          "HS256", "",
          absl::StrCat(R"({"iss":"legacy-app","exp":1764497703,"jti":")",
                       prefix, i, R"("})"),
          nullptr, "secret");
      v1::TokenInfo info;
      decoder_.Decode(token, &info);
      records.push_back(output::MakeTokenRecord(info));
      EXPECT_TRUE(checks->QueueWeakSecret(token, records.back()));
    }
    return records;
  };
  std::vector<output::MutableTokenRef> records = queue_weak(checks_.get(), "w");
  auto next = TokenChecks::Create(cfg_, &stats_);
  ASSERT_TRUE(next.ok());
  (*next)->AdoptPending(checks_.get());
  checks_.reset();  // waits only for the search in flight
  (*next)->Drain(std::chrono::seconds(30));
  for (const auto& r : records)
    ASSERT_EQ(r->weak_state, output::TokenRecord::kWeakFound);

  // Reloaded to a config without a weak-secrets list: nothing to search.
  std::vector<output::MutableTokenRef> more = queue_weak(next->get(), "v");
  config::Config no_list = cfg_;
  no_list.detections.weak_secrets_file.clear();
  auto bare = TokenChecks::Create(no_list, &stats_);
  ASSERT_TRUE(bare.ok());
  (*bare)->AdoptPending(next->get());
  next->reset();
  (*bare)->DeliverVerdicts();
  for (const auto& r : more) ASSERT_FALSE(r->weak_pending());
}

TEST_F(TokenChecksTest, KeysAreReloadedWhenTheFileChanges) {
  jose::PkeyRef other = GenerateKey("P-256");
  std::string es = SignJwt("ES256", "ec-1", kGood, other.get());
  EXPECT_EQ(Types(es).size(),
            2u);  // alg_not_allowed, invalid_signature (kid unknown)
  cfg_.issuers[0].algorithms = {"RS256", "ES256"};
  auto c = TokenChecks::Create(cfg_, &stats_);
  ASSERT_TRUE(c.ok());
  checks_ = *std::move(c);
  std::ofstream(dir_ + "/idp.jwks")
      << "{\"keys\":[" << PublicJwk(rsa_.get(), "rsa-1", "RS256") << ","
      << PublicJwk(other.get(), "ec-1", "ES256") << "]}";
  checks_->MaybeReload(/*force=*/true);
  EXPECT_TRUE(Types(es).empty());
}

}  // namespace
}  // namespace tokenwatch::token
