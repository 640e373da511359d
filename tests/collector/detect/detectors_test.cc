// Each detection on its own: the misuse it exists for, and the benign cases
// that must raise nothing.
#include <gtest/gtest.h>

#include <fstream>
#include <limits>

#include "collector/detect/detector.h"
#include "collector/detect/path_glob.h"
#include "collector/detect/revoked_use.h"

namespace tokenwatch::collector {
namespace {

constexpr int64_t kExp = 1764497703;  // token exp, seconds

class DetectorsTest : public ::testing::Test {
 protected:
  DetectorsTest() {
    cfg_.services.push_back(
        {"orders", {{"orders.internal"}, {}}, {"orders-api"}});
    cfg_.services.push_back(
        {"payments", {{"payments.internal"}, {}}, {"payments-api"}});
    cfg_.services.push_back({"legacy", {{"legacy.internal"}, {}}, {}});
    config::SensitiveEndpoint ep;
    ep.service = "payments";
    ep.method = "POST";
    ep.path = "/v1/refunds/**";
    ep.required_scopes = {"payments:refund"};
    ep.severity = "high";
    cfg_.sensitive_endpoints.push_back(ep);
    cfg_.detections.clock_leeway = absl::Seconds(30);
    cfg_.detections.multi_source = {absl::Minutes(5), 3};
  }
  v1::UsageEvent Use(std::string service, int64_t ts_s, uint32_t status = 200,
                     std::vector<std::string> aud = {"orders-api"}) {
    v1::UsageEvent e;
    e.set_ts_us(ts_s * 1000000);
    e.set_last_ts_us(ts_s * 1000000);
    e.set_count(1);
    e.set_service(service);
    e.set_method("GET");
    e.set_path("/v1/orders/42");
    e.set_client("10.0.3.7");
    e.set_status(status);
    v1::TokenInfo* t = e.mutable_token();
    t->set_kind(v1::TOKEN_KIND_JWT);
    t->set_iss("https://idp.test");
    t->set_jti("j-1");
    t->set_exp(kExp);
    for (auto& a : aud) t->add_aud(a);
    return e;
  }
  std::vector<Finding> Run(std::unique_ptr<Detector> d, const v1::UsageEvent& e,
                           TokenHistory h = {}) {
    h.token = &e.token();
    std::vector<Finding> out;
    d->Check(h, e, &out);
    return out;
  }
  config::Config cfg_;
};

TEST_F(DetectorsTest, CrossServiceReplay) {
  TokenHistory h;
  h.services = {"orders"};
  auto f = Run(MakeCrossServiceDetector(cfg_), Use("payments", kExp - 100), h);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].type, AlertType::kCrossService);
  EXPECT_EQ(f[0].severity, Severity::kHigh);
  EXPECT_NE(f[0].detail.find("orders"), std::string::npos);
}

TEST_F(DetectorsTest, CrossServiceBenign) {
  TokenHistory h;
  h.services = {"orders"};
  // Same service again; first use; aud listing both services.
  EXPECT_TRUE(Run(MakeCrossServiceDetector(cfg_), Use("orders", kExp - 100), h)
                  .empty());
  EXPECT_TRUE(
      Run(MakeCrossServiceDetector(cfg_), Use("payments", kExp - 100)).empty());
  EXPECT_TRUE(
      Run(MakeCrossServiceDetector(cfg_),
          Use("payments", kExp - 100, 200, {"orders-api", "payments-api"}), h)
          .empty());
}

TEST_F(DetectorsTest, CrossServiceRejectedIsMedium) {
  TokenHistory h;
  h.services = {"orders"};
  auto f =
      Run(MakeCrossServiceDetector(cfg_), Use("payments", kExp - 100, 401), h);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::kMedium);
}

TEST_F(DetectorsTest, AudienceMismatch) {
  auto f = Run(MakeAudienceMismatchDetector(cfg_), Use("payments", kExp - 100));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].type, AlertType::kAudienceMismatch);
  // Benign: aud matches; service without configured audiences; opaque token.
  EXPECT_TRUE(Run(MakeAudienceMismatchDetector(cfg_), Use("orders", kExp - 100))
                  .empty());
  EXPECT_TRUE(Run(MakeAudienceMismatchDetector(cfg_), Use("legacy", kExp - 100))
                  .empty());
  v1::UsageEvent opaque = Use("payments", kExp - 100);
  opaque.mutable_token()->set_kind(v1::TOKEN_KIND_OPAQUE);
  EXPECT_TRUE(Run(MakeAudienceMismatchDetector(cfg_), opaque).empty());
}

TEST_F(DetectorsTest, ExpiredUseAcceptedVsRejected) {
  auto accepted =
      Run(MakeExpiredUseDetector(cfg_), Use("orders", kExp + 603, 200));
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_EQ(accepted[0].severity, Severity::kCritical);
  EXPECT_EQ(accepted[0].detail,
            "token expired 10m3s before use and the service accepted it");
  auto rejected =
      Run(MakeExpiredUseDetector(cfg_), Use("orders", kExp + 603, 401));
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].severity, Severity::kLow);
  auto unknown =
      Run(MakeExpiredUseDetector(cfg_), Use("orders", kExp + 603, 0));
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_NE(unknown[0].detail.find("no response"), std::string::npos);
}

// gRPC (issue 13): HTTP 200 with grpc-status 16 is a rejection; without
// trailers there is no verdict; grpc-status 0 is acceptance.
TEST_F(DetectorsTest, GrpcStatusDecidesAcceptance) {
  v1::UsageEvent denied = Use("orders", kExp + 603, 200);
  denied.set_protocol("grpc");
  denied.set_grpc_status(16);
  auto f = Run(MakeExpiredUseDetector(cfg_), denied);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::kLow);
  EXPECT_EQ(f[0].detail,
            "token expired 10m3s before use and the service rejected it "
            "(grpc-status 16 UNAUTHENTICATED)");
  EXPECT_EQ(UseAccepted(denied), std::optional<bool>(false));

  v1::UsageEvent ok = denied;
  ok.set_grpc_status(0);
  f = Run(MakeExpiredUseDetector(cfg_), ok);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::kCritical);
  EXPECT_EQ(UseAccepted(ok), std::optional<bool>(true));

  v1::UsageEvent no_trailers = denied;
  no_trailers.clear_grpc_status();
  f = Run(MakeExpiredUseDetector(cfg_), no_trailers);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::kMedium);
  EXPECT_NE(f[0].detail.find("no gRPC status was seen"), std::string::npos);
  EXPECT_EQ(UseAccepted(no_trailers), std::nullopt);

  // An h2 (non-gRPC) 200 is accepted as over HTTP/1.1; a 5xx with any
  // grpc-status is rejected.
  v1::UsageEvent h2 = Use("orders", kExp + 603, 200);
  h2.set_protocol("h2");
  EXPECT_EQ(UseAccepted(h2), std::optional<bool>(true));
  v1::UsageEvent gateway = ok;
  gateway.set_status(503);
  EXPECT_EQ(UseAccepted(gateway), std::optional<bool>(false));

  // Every outcome-weighted detector follows: a revoked-style critical
  // finding on an accepted call becomes lower on grpc-status 7.
  TokenHistory h;
  h.services = {"orders"};
  v1::UsageEvent cross = Use("payments", kExp - 100, 200);
  cross.set_protocol("grpc");
  cross.set_grpc_status(7);
  auto c = Run(MakeCrossServiceDetector(cfg_), cross, h);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].severity, Severity::kMedium);
  EXPECT_NE(c[0].detail.find("PERMISSION_DENIED"), std::string::npos);
}

TEST_F(DetectorsTest, ExpiredUseWithinLeewayIsBenign) {
  EXPECT_TRUE(Run(MakeExpiredUseDetector(cfg_), Use("orders", kExp + 30))
                  .empty());  // exactly
  EXPECT_TRUE(
      Run(MakeExpiredUseDetector(cfg_), Use("orders", kExp - 1)).empty());
  v1::UsageEvent e = Use("orders", kExp + 30);
  e.set_ts_us(e.ts_us() + 1);  // one microsecond past leeway
  EXPECT_EQ(Run(MakeExpiredUseDetector(cfg_), e).size(), 1u);
  v1::UsageEvent no_exp = Use("orders", kExp + 1000);
  no_exp.mutable_token()->clear_exp();
  EXPECT_TRUE(Run(MakeExpiredUseDetector(cfg_), no_exp).empty());
}

TEST_F(DetectorsTest, NotYetValid) {
  v1::UsageEvent e = Use("orders", kExp - 3600);
  e.mutable_token()->set_nbf(kExp - 3600 + 120);
  auto f = Run(MakeNotYetValidDetector(cfg_), e);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].type, AlertType::kNotYetValid);
  e.mutable_token()->set_nbf(kExp - 3600 + 30);  // within leeway
  EXPECT_TRUE(Run(MakeNotYetValidDetector(cfg_), e).empty());
  v1::UsageEvent future_iat = Use("orders", kExp - 3600);
  future_iat.mutable_token()->set_iat(kExp - 3600 + 600);
  EXPECT_EQ(Run(MakeNotYetValidDetector(cfg_), future_iat).size(), 1u);
}

TEST_F(DetectorsTest, SensitiveEndpoint) {
  v1::UsageEvent e = Use("payments", kExp - 100, 201, {"payments-api"});
  e.set_method("POST");
  e.set_path("/v1/refunds/pay_1");
  auto f = Run(MakeSensitiveEndpointDetector(cfg_), e);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::kCritical);  // scope missing and accepted
  e.mutable_token()->add_scopes("payments:refund");
  f = Run(MakeSensitiveEndpointDetector(cfg_), e);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].severity, Severity::kHigh);  // the configured severity
  e.set_path("/v1/refunds");                  // ** matches zero segments
  EXPECT_EQ(Run(MakeSensitiveEndpointDetector(cfg_), e).size(), 1u);
  e.set_method("GET");
  EXPECT_TRUE(Run(MakeSensitiveEndpointDetector(cfg_), e).empty());
  e.set_method("POST");
  e.set_service("orders");
  EXPECT_TRUE(Run(MakeSensitiveEndpointDetector(cfg_), e).empty());
}

TEST_F(DetectorsTest, MultiSource) {
  TokenHistory h;
  h.recent_sources = 3;
  auto f = Run(MakeMultiSourceDetector(cfg_), Use("orders", kExp - 100), h);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].type, AlertType::kMultiSource);
  h.recent_sources = 2;
  EXPECT_TRUE(
      Run(MakeMultiSourceDetector(cfg_), Use("orders", kExp - 100), h).empty());
}

TEST_F(DetectorsTest, AgentFindingsBecomeAlertsWithAcceptedSeverity) {
  v1::UsageEvent e = Use("orders", kExp - 100, 200);
  e.add_findings("alg_none");
  (*e.mutable_finding_details())["alg_none"] = "unsigned token (alg \"none\")";
  e.add_findings("token_in_url");
  (*e.mutable_finding_details())["token_in_url"] =
      "token in query parameter access_token";
  e.add_findings("not_a_known_finding");
  auto f = Run(MakeAgentFindingsDetector(cfg_), e);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].type, AlertType::kAlgNone);
  EXPECT_EQ(f[0].severity, Severity::kCritical);  // accepted
  EXPECT_NE(f[0].detail.find("unsigned token"), std::string::npos);
  EXPECT_EQ(f[1].type, AlertType::kTokenInUrl);
  EXPECT_NE(f[1].detail.find("access_token"),
            std::string::npos);  // which parameter
  e.set_status(401);
  f = Run(MakeAgentFindingsDetector(cfg_), e);
  EXPECT_EQ(f[0].severity, Severity::kHigh);  // rejected: an attempt
  EXPECT_TRUE(
      Run(MakeAgentFindingsDetector(cfg_), Use("orders", kExp - 100)).empty());
}

TEST_F(DetectorsTest, RevokedUseFromFileAndApi) {
  std::string path = ::testing::TempDir() + "/revoked.txt";
  std::ofstream(path) << "# revoked\nj-0\n";
  RevocationList list(path);
  ASSERT_TRUE(list.MaybeReload().ok());
  EXPECT_TRUE(
      Run(MakeRevokedUseDetector(&list), Use("orders", kExp - 100)).empty());
  ASSERT_TRUE(list.Add({"j-1"}).ok());  // POST /api/v1/revocations
  auto f = Run(MakeRevokedUseDetector(&list), Use("orders", kExp - 100));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].type, AlertType::kRevokedUse);
  EXPECT_EQ(f[0].severity, Severity::kCritical);
  // Appended to the file: a restart (a fresh list) still knows it.
  RevocationList again(path);
  ASSERT_TRUE(again.MaybeReload().ok());
  EXPECT_TRUE(again.Contains("j-1"));
  EXPECT_TRUE(again.Contains("j-0"));
  EXPECT_EQ(again.size(), 2u);
}

TEST(PathGlobTest, Segments) {
  EXPECT_TRUE(PathGlobMatches("/v1/refunds/**", "/v1/refunds"));
  EXPECT_TRUE(PathGlobMatches("/v1/refunds/**", "/v1/refunds/a/b/c"));
  EXPECT_FALSE(PathGlobMatches("/v1/refunds/**", "/v1/refund"));
  EXPECT_TRUE(PathGlobMatches("/v1/*/items", "/v1/orders/items"));
  EXPECT_FALSE(PathGlobMatches("/v1/*/items", "/v1/orders/x/items"));
  EXPECT_TRUE(PathGlobMatches("/**/admin", "/a/b/admin"));
  EXPECT_TRUE(PathGlobMatches("/**/admin", "/admin"));
  EXPECT_FALSE(PathGlobMatches("/admin", "/admin/x"));
  EXPECT_TRUE(PathGlobMatches("/", "/"));
}

// exp, nbf, iat and ts_us come from the wire as any int64: no overflow
// (UBSan found exp * 1000000 overflowing via tests/fuzz/intake_fuzzer.cc).
TEST_F(DetectorsTest, ExtremeTimesSaturate) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  v1::UsageEvent far_exp = Use("orders", kExp);
  far_exp.mutable_token()->set_exp(kMax / 1000);  // far future: not expired
  EXPECT_TRUE(Run(MakeExpiredUseDetector(cfg_), far_exp).empty());
  v1::UsageEvent past_exp = Use("orders", kExp);
  past_exp.mutable_token()->set_exp(kMin / 1000);  // far past: expired
  EXPECT_EQ(Run(MakeExpiredUseDetector(cfg_), past_exp).size(), 1u);
  v1::UsageEvent late = Use("orders", kExp);
  late.set_ts_us(kMax);
  late.mutable_token()->set_exp(kMax);
  EXPECT_TRUE(Run(MakeExpiredUseDetector(cfg_), late).empty());
  v1::UsageEvent future_nbf = Use("orders", kExp - 3600);
  future_nbf.mutable_token()->set_nbf(kMax);
  future_nbf.mutable_token()->set_iat(kMin);
  EXPECT_EQ(Run(MakeNotYetValidDetector(cfg_), future_nbf).size(), 1u);
  v1::UsageEvent early = Use("orders", 0);
  early.set_ts_us(kMin);
  early.mutable_token()->set_nbf(kMin);
  early.mutable_token()->set_iat(kMin);
  EXPECT_TRUE(Run(MakeNotYetValidDetector(cfg_), early).empty());
  EXPECT_EQ(SaturatingAdd(kMax, 1), kMax);
  EXPECT_EQ(SaturatingSub(kMin, 1), kMin);
  EXPECT_EQ(SecondsToUs(kMax / 1000), kMax);
  EXPECT_EQ(SecondsToUs(kMin / 1000), kMin);
  EXPECT_EQ(SecondsToUs(-2), -2000000);
  EXPECT_FALSE(HumanDuration(kMin).empty());
}

TEST(HumanDurationTest, Format) {
  EXPECT_EQ(HumanDuration(603), "10m3s");
  EXPECT_EQ(HumanDuration(0), "0s");
  EXPECT_EQ(HumanDuration(90061), "1d1h1m1s");
}

}  // namespace
}  // namespace tokenwatch::collector
