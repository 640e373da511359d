#include "collector/alert_json.h"

#include <string>

#include "gtest/gtest.h"

namespace tokenwatch::collector {
namespace {

// 2026-11-30T10:15:03.120Z
constexpr int64_t kTs = 1796033703120000;

// The SPEC "Alert record" example.
Alert SpecAlert() {
  Alert a;
  a.id = "0192f0c4-6a3e-7b21-9c4d-5e6f7a8b9c0d";
  a.type = AlertType::kExpiredUse;
  a.severity = Severity::kCritical;
  a.ts_us = kTs;
  a.identity = "https://idp.example.com|j-81";
  a.token.set_kind(v1::TOKEN_KIND_JWT);
  a.token.set_fp("9f2c4b1de0a3f5c6b7a8091a2b3c4d5e");
  a.token.set_jti("j-81");
  a.token.set_sub("alice");
  a.token.set_iss("https://idp.example.com");
  a.token.add_aud("orders-api");
  a.token.set_exp(1764497703);
  a.token.set_iat(1764496803);  // not part of the alert record
  a.token.set_kid("rsa-1");     // nor this
  a.token.set_alg("RS256");
  a.service = "orders";
  a.method = "GET";
  a.path = "/v1/orders/42";
  a.client = "10.0.3.7";
  a.agent = "host-a";
  a.status = 200;
  a.accepted = true;
  a.detail = "token expired 10m3s before use and the service accepted it";
  a.count = 1;
  a.last_ts_us = kTs;
  return a;
}

TEST(AlertJsonTest, SpecExampleFieldForField) {
  EXPECT_EQ(
      AlertJson(SpecAlert()),
      R"({"id":"0192f0c4-6a3e-7b21-9c4d-5e6f7a8b9c0d","type":"expired_use",)"
      R"("severity":"critical","ts":"2026-11-30T10:15:03.120Z",)"
      R"("token":{"id":"https://idp.example.com|j-81",)"
      R"("fp":"9f2c4b1de0a3f5c6b7a8091a2b3c4d5e","jti":"j-81","sub":"alice",)"
      R"("iss":"https://idp.example.com","aud":["orders-api"],)"
      R"("exp":1764497703,"alg":"RS256"},)"
      R"("service":"orders","method":"GET","path":"/v1/orders/42",)"
      R"("client":"10.0.3.7","agent":"host-a","status":200,"accepted":true,)"
      R"("detail":"token expired 10m3s before use and the service accepted it",)"
      R"("count":1,"last_ts":"2026-11-30T10:15:03.120Z"})");
}

TEST(AlertJsonTest, NoResponseGivesNullStatusAndAccepted) {
  Alert a = SpecAlert();
  a.status = 0;
  a.accepted = std::nullopt;
  std::string json = AlertJson(a);
  EXPECT_NE(json.find(R"("status":null,"accepted":null,)"), std::string::npos)
      << json;
}

TEST(AlertJsonTest, RejectedIsFalse) {
  Alert a = SpecAlert();
  a.status = 401;
  a.accepted = false;
  EXPECT_NE(AlertJson(a).find(R"("status":401,"accepted":false,)"),
            std::string::npos);
}

// Issue 13: protocol after agent, grpc_status after status; an alert of an
// unknown protocol (an older agent) has neither.
TEST(AlertJsonTest, GrpcAlertCarriesProtocolAndGrpcStatus) {
  Alert a = SpecAlert();
  a.protocol = "grpc";
  a.grpc_status = 16;
  a.accepted = false;
  EXPECT_NE(AlertJson(a).find(
                R"("agent":"host-a","protocol":"grpc","status":200,)"
                R"("grpc_status":16,"accepted":false,)"),
            std::string::npos)
      << AlertJson(a);
  a.protocol = "http/1.1";
  a.grpc_status.reset();
  EXPECT_NE(AlertJson(a).find(R"("protocol":"http/1.1","status":200,"accepted")"),
            std::string::npos);
}

TEST(AlertJsonTest, OpaqueTokenKeepsOnlyIdAndFp) {
  Alert a = SpecAlert();
  a.token.Clear();
  a.token.set_kind(v1::TOKEN_KIND_OPAQUE);
  a.token.set_fp("00112233445566778899aabbccddeeff");
  a.identity = a.token.fp();
  std::string json = AlertJson(a);
  EXPECT_NE(json.find(R"("token":{"id":"00112233445566778899aabbccddeeff",)"
                      R"("fp":"00112233445566778899aabbccddeeff"},)"),
            std::string::npos)
      << json;
}

TEST(AlertJsonTest, AudIsAlwaysAnArrayAndExpZeroIsKept) {
  Alert a = SpecAlert();
  a.token.clear_aud();
  a.token.add_aud("a");
  a.token.add_aud("b");
  a.token.set_exp(0);  // present, if odd: kept, since has_exp says so
  std::string json = AlertJson(a);
  EXPECT_NE(json.find(R"("aud":["a","b"],"exp":0,)"), std::string::npos)
      << json;
  a.token.clear_exp();
  EXPECT_EQ(AlertJson(a).find("\"exp\""), std::string::npos);
}

TEST(AlertJsonTest, TimestampsAreUtcMillisecondsTruncated) {
  Alert a = SpecAlert();
  a.ts_us = kTs + 999;  // .120999 s stays .120
  a.count = 7;
  a.last_ts_us = kTs + 3'750'000;
  std::string json = AlertJson(a);
  EXPECT_NE(json.find(R"("ts":"2026-11-30T10:15:03.120Z")"), std::string::npos);
  EXPECT_NE(json.find(R"("count":7,"last_ts":"2026-11-30T10:15:06.870Z"})"),
            std::string::npos)
      << json;

  a.ts_us = -1;  // before the epoch, floor not truncation toward zero
  a.last_ts_us = 0;
  json = AlertJson(a);
  EXPECT_NE(json.find(R"("ts":"1969-12-31T23:59:59.999Z")"), std::string::npos)
      << json;
}

TEST(AlertJsonTest, UnsetLastTsFallsBackToTs) {
  Alert a = SpecAlert();
  a.last_ts_us = 0;
  EXPECT_NE(AlertJson(a).find(R"("last_ts":"2026-11-30T10:15:03.120Z"})"),
            std::string::npos);
}

TEST(AlertJsonTest, EscapesQuotesBackslashesAndControlCharacters) {
  Alert a = SpecAlert();
  a.path = "/a\"b\\c\n\t\x01\x1f\x7f";
  a.detail = std::string("nul\0byte", 8);
  std::string json = AlertJson(a);
  EXPECT_NE(json.find(R"("path":"/a\"b\\c\u000a\u0009\u0001\u001f)"
                      "\x7f\""),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("detail":"nul\u0000byte")"), std::string::npos)
      << json;
}

TEST(AlertJsonTest, ValidUtf8PassesInvalidBecomesReplacement) {
  Alert a = SpecAlert();
  a.token.set_sub("\xc3\xa5lice \xe2\x82\xac \xf0\x9f\x94\x91");  // åβ€🔑
  a.detail =
      "\xff"              // never valid
      "\xc0\xaf"          // overlong '/'
      "\xed\xa0\x80"      // UTF-16 surrogate D800
      "\xf4\x90\x80\x80"  // above U+10FFFF
      "\xe2\x82";         // truncated at the end
  std::string json = AlertJson(a);
  EXPECT_NE(json.find("\"sub\":\"\xc3\xa5lice \xe2\x82\xac \xf0\x9f\x94\x91\""),
            std::string::npos)
      << json;
  std::string want = "\"detail\":\"";
  for (int i = 0; i < 12; ++i) want += "\\ufffd";
  want += "\"";
  EXPECT_NE(json.find(want), std::string::npos) << json;
}

TEST(AlertJsonTest, HostileStringsStayOnOneLine) {
  Alert a = SpecAlert();
  a.detail = "line1\r\nline2\u2028";
  std::string json = AlertJson(a);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_EQ(json.find('\r'), std::string::npos);
}

}  // namespace
}  // namespace tokenwatch::collector
