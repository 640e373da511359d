#include "agent/jose/key_set.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <string>

#include "tests/agent/jose/jose_test_util.h"

namespace tokenwatch::jose {
namespace {

using testing::GenerateKey;
using testing::PublicJwk;
using testing::PublicPem;

const std::string kGolang =
    std::string(TOKENWATCH_SHARED_DATA) + "/jwt-vectors/golang-jwt-keys/";

TEST(KeySetTest, JwksWithEveryKeyType) {
  PkeyRef rsa = GenerateKey("RSA");
  PkeyRef p256 = GenerateKey("P-256");
  PkeyRef p384 = GenerateKey("P-384");
  PkeyRef p521 = GenerateKey("P-521");
  PkeyRef ed = GenerateKey("Ed25519");
  std::string jwks = "{\"keys\":[" + PublicJwk(rsa.get(), "rsa-1", "RS256") +
                     "," + PublicJwk(p256.get(), "ec-256") + "," +
                     PublicJwk(p384.get(), "ec-384") + "," +
                     PublicJwk(p521.get(), "ec-521") + "," +
                     PublicJwk(ed.get(), "ed-1") +
                     R"(,{"kty":"oct","kid":"hs-1","k":"c2VjcmV0"}]})";
  absl::StatusOr<KeySet> set = KeySet::FromJwks(jwks);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->size(), 6u);
  EXPECT_TRUE(set->skipped().empty());

  const Key* k = set->Find("rsa-1");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->kty, KeyType::kRsa);
  EXPECT_EQ(k->alg, "RS256");
  EXPECT_EQ(k->bits, 2048);
  EXPECT_NE(k->pkey.get(), nullptr);
  ASSERT_NE(set->Find("ec-384"), nullptr);
  EXPECT_EQ(set->Find("ec-384")->crv, "P-384");
  EXPECT_EQ(set->Find("ec-521")->crv, "P-521");
  EXPECT_EQ(set->Find("ec-521")->bits, 521);
  EXPECT_EQ(set->Find("ed-1")->kty, KeyType::kOkp);
  EXPECT_EQ(set->Find("ed-1")->crv, "Ed25519");
  EXPECT_EQ(set->Find("hs-1")->kty, KeyType::kOct);
  EXPECT_EQ(set->Find("hs-1")->secret, "secret");
  EXPECT_EQ(set->Find("nope"), nullptr);
}

TEST(KeySetTest, UnsupportedAndBadEntriesAreSkippedAndCounted) {
  PkeyRef rsa = GenerateKey("RSA");
  std::string good = PublicJwk(rsa.get(), "good");
  std::string jwks = "{\"keys\":[" + good + R"(,
    {"kty":"foo","kid":"a"},
    {"kty":"EC","kid":"b","crv":"secp256k1","x":"AA","y":"AA"},
    {"kty":"OKP","kid":"c","crv":"X25519","x":"3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08"},
    {"kty":"RSA","kid":"d","use":"enc","n":"AQAB","e":"AQAB"},
    {"kty":"OKP","kid":"e","crv":"Ed25519","key_ops":["encrypt"],"x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
    {"kty":"RSA","kid":"f","n":"not base64!","e":"AQAB"},
    {"kty":"EC","kid":"g","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"},
    {"kty":"RSA","kid":"h","n":"AQAB","e":"AQAB"},
    {"kid":"i"},
    42
  ]})";
  absl::StatusOr<KeySet> set = KeySet::FromJwks(jwks);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->size(), 1u);
  ASSERT_EQ(set->skipped().size(), 10u);
  for (const SkippedKey& s : set->skipped()) {
    SCOPED_TRACE(s.kid + ": " + s.reason);
    EXPECT_FALSE(s.reason.empty());
  }
  EXPECT_EQ(set->skipped()[0].kid, "a");
  EXPECT_EQ(set->skipped()[0].reason, "unsupported kty 'foo'");
  EXPECT_EQ(set->skipped()[1].reason, "unsupported crv 'secp256k1'");
  EXPECT_NE(set->skipped()[2].reason.find("X25519"), std::string::npos);
  EXPECT_EQ(set->skipped()[3].reason, "use is 'enc', not 'sig'");
  EXPECT_EQ(set->skipped()[4].reason, "key_ops lacks 'verify'");
  EXPECT_EQ(set->skipped()[6].reason, "EC point is not on the curve");
  EXPECT_NE(set->skipped()[7].reason.find("bits"), std::string::npos);
  EXPECT_EQ(set->skipped()[8].reason, "no kty");
  EXPECT_EQ(set->skipped()[9].reason, "not a JSON object");
  EXPECT_NE(set->Find("good"), nullptr);
}

TEST(KeySetTest, SingleJwkAndErrors) {
  // RFC 7515 A.3's key, private member d included: only the public part is
  // kept.
  absl::StatusOr<KeySet> one = KeySet::FromJwks(
      R"({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
      R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"})");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->size(), 1u);
  EXPECT_EQ(one->keys()[0].kid, "");

  for (std::string_view bad : {"", "not json", "[]", "{\"keys\":{}}",
                               "{\"foo\":1}", "{\"keys\":[", "\"str\""}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(KeySet::FromJwks(bad).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  absl::StatusOr<KeySet> empty = KeySet::FromJwks("{\"keys\":[]}");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(KeySetTest, EcCoordinatesWithDroppedLeadingZerosArePadded) {
  // Find a P-256 key whose x starts with a zero byte, then drop that byte.
  for (int i = 0; i < 2000; ++i) {
    PkeyRef k = GenerateKey("P-256");
    std::string x = testing::BnParam(k.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32);
    if (x[0] != '\0') continue;
    std::string y = testing::BnParam(k.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    std::string jwk = R"({"kty":"EC","crv":"P-256","x":")" +
                      testing::B64(x.substr(1)) + R"(","y":")" +
                      testing::B64(y) + "\"}";
    absl::StatusOr<KeySet> set = KeySet::FromJwks(jwk);
    ASSERT_TRUE(set.ok());
    EXPECT_EQ(set->size(), 1u);
    EXPECT_EQ(EVP_PKEY_eq(set->keys()[0].pkey.get(), k.get()), 1);
    return;
  }
  GTEST_SKIP() << "no key with a leading zero byte in 2000 tries";
}

TEST(KeySetTest, PemPublicKeysCertificatesAndPkcs1) {
  PkeyRef rsa = GenerateKey("RSA");
  PkeyRef ec = GenerateKey("P-384");
  PkeyRef ed = GenerateKey("Ed25519");
  // PKCS#1 "RSA PUBLIC KEY", as `openssl rsa -RSAPublicKey_out` writes.
  unsigned char* der = nullptr;
  int der_len = i2d_PublicKey(rsa.get(), &der);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio(bio, "RSA PUBLIC KEY", "", der, der_len);
  OPENSSL_free(der);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pkcs1(data, static_cast<size_t>(len));
  BIO_free(bio);

  std::string pem = PublicPem(ec.get()) + "junk between blocks\n" +
                    testing::SelfSignedCertPem(ed.get()) + pkcs1 +
                    testing::SelfSignedCertPem(rsa.get());
  absl::StatusOr<KeySet> set = KeySet::FromPem(pem);
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->size(), 4u);
  EXPECT_EQ(set->keys()[0].kty, KeyType::kEc);
  EXPECT_EQ(set->keys()[0].crv, "P-384");
  EXPECT_EQ(set->keys()[1].kty, KeyType::kOkp);
  EXPECT_EQ(set->keys()[1].crv, "Ed25519");
  EXPECT_EQ(set->keys()[2].kty, KeyType::kRsa);
  EXPECT_EQ(set->keys()[3].kty, KeyType::kRsa);
  EXPECT_EQ(EVP_PKEY_eq(set->keys()[2].pkey.get(), rsa.get()), 1);
  EXPECT_EQ(EVP_PKEY_eq(set->keys()[3].pkey.get(), rsa.get()), 1);
  EXPECT_EQ(set->keys()[0].kid, "");
}

TEST(KeySetTest, GolangJwtPublicPemFiles) {
  struct Case {
    const char* file;
    KeyType kty;
    const char* crv;
  } cases[] = {
      {"sample_key.pub", KeyType::kRsa, ""},
      {"ec256-public.pem", KeyType::kEc, "P-256"},
      {"ec384-public.pem", KeyType::kEc, "P-384"},
      {"ec512-public.pem", KeyType::kEc, "P-521"},
      {"ed25519-public.pem", KeyType::kOkp, "Ed25519"},
      {"examplePaddedKey-public.pem", KeyType::kEc, "P-256"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    absl::StatusOr<KeySet> set = KeySet::FromPemFile(kGolang + c.file);
    ASSERT_TRUE(set.ok()) << set.status();
    ASSERT_EQ(set->size(), 1u);
    EXPECT_EQ(set->keys()[0].kty, c.kty);
    EXPECT_EQ(set->keys()[0].crv, c.crv);
  }
}

TEST(KeySetTest, PrivateKeysAndGarbageAreRefused) {
  for (const char* file : {"sample_key", "ec256-private.pem",
                           "ed25519-private.pem", "privateSecure.pem"}) {
    SCOPED_TRACE(file);
    absl::StatusOr<KeySet> set = KeySet::FromPemFile(kGolang + file);
    EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(set.status().message().find("private"), std::string::npos);
  }
  EXPECT_FALSE(KeySet::FromPem("").ok());
  EXPECT_FALSE(KeySet::FromPem("hello").ok());
  EXPECT_FALSE(
      KeySet::FromPem(
          "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n")
          .ok());
  // A well-formed block with garbage DER is skipped, not fatal.
  absl::StatusOr<KeySet> junk = KeySet::FromPem(
      "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
  ASSERT_TRUE(junk.ok());
  EXPECT_TRUE(junk->empty());
  EXPECT_EQ(junk->skipped().size(), 1u);
  EXPECT_EQ(KeySet::FromPemFile("/nonexistent/key.pem").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(KeySetTest, HmacSecretsMergeAndCopies) {
  KeySet set;
  set.AddHmacSecret("");  // ignored
  EXPECT_TRUE(set.empty());
  set.AddHmacSecret("s3cr3t");
  set.AddHmacSecret("other", "kid-2");
  absl::StatusOr<KeySet> pem =
      KeySet::FromPem(PublicPem(GenerateKey("P-256").get()));
  ASSERT_TRUE(pem.ok());
  set.Merge(*pem);
  ASSERT_EQ(set.size(), 3u);
  EXPECT_EQ(set.keys()[0].secret, "s3cr3t");
  EXPECT_EQ(set.keys()[0].bits, 48);
  EXPECT_EQ(set.Find("kid-2")->secret, "other");

  // Copies share the EVP_PKEY; the original may go away.
  KeySet copy;
  {
    KeySet tmp = set;
    copy = tmp;
  }
  EXPECT_EQ(copy.keys()[2].pkey.get(), set.keys()[2].pkey.get());
  KeySet moved = std::move(copy);
  EXPECT_EQ(moved.size(), 3u);
  EXPECT_EQ(KeyTypeName(moved.keys()[2].kty), "EC");
}

TEST(KeySetTest, JwksFileFromShippedVectors) {
  absl::StatusOr<KeySet> set =
      KeySet::FromJwksFile(std::string(TOKENWATCH_SHARED_DATA) +
                           "/jwt-vectors/rfc7515-appendix-a/a.2.1.jwk+json");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->size(), 1u);
  EXPECT_EQ(set->keys()[0].bits, 2048);
  EXPECT_EQ(KeySet::FromJwksFile("/nonexistent.json").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tokenwatch::jose
