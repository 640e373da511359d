// Test-time key generation and JWS signing with OpenSSL, so the jose tests
// need no token constants: every algorithm signs with a fresh key and the
// verifier must accept exactly those bytes.
#ifndef TOKENWATCH_TESTS_AGENT_JOSE_JOSE_TEST_UTIL_H_
#define TOKENWATCH_TESTS_AGENT_JOSE_JOSE_TEST_UTIL_H_

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "agent/jose/base64url.h"
#include "agent/jose/key_set.h"

namespace tokenwatch::jose::testing {

inline std::string B64(std::string_view s) { return jose::Base64UrlEncode(s); }

inline std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// kind: "RSA" (2048), "P-256", "P-384", "P-521", "Ed25519", "Ed448".
inline PkeyRef GenerateKey(std::string_view kind) {
  if (kind == "RSA") {
    return PkeyRef(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  }
  if (kind == "Ed25519") {
    return PkeyRef(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  }
  if (kind == "Ed448")
    return PkeyRef(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED448"));
  std::string crv(kind);
  return PkeyRef(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", crv.c_str()));
}

inline std::string BnParam(EVP_PKEY* pkey, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) return "";
  std::string out(pad > 0 ? pad : BN_num_bytes(bn), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()),
               static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

inline int EcFieldBytes(EVP_PKEY* pkey) {
  return (EVP_PKEY_get_bits(pkey) + 7) / 8;
}

inline std::string EcCrv(EVP_PKEY* pkey) {
  switch (EVP_PKEY_get_bits(pkey)) {
    case 256:
      return "P-256";
    case 384:
      return "P-384";
    default:
      return "P-521";
  }
}

// The public JWK of a generated key, as an IdP would publish it.
inline std::string PublicJwk(EVP_PKEY* pkey, std::string_view kid,
                             std::string_view alg = "") {
  std::string members = "\"kid\":\"" + std::string(kid) + "\"";
  if (!alg.empty()) members += ",\"alg\":\"" + std::string(alg) + "\"";
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
      return "{\"kty\":\"RSA\"," + members + ",\"use\":\"sig\",\"n\":\"" +
             B64(BnParam(pkey, OSSL_PKEY_PARAM_RSA_N)) + "\",\"e\":\"" +
             B64(BnParam(pkey, OSSL_PKEY_PARAM_RSA_E)) + "\"}";
    case EVP_PKEY_EC: {
      int n = EcFieldBytes(pkey);
      return "{\"kty\":\"EC\"," + members + ",\"crv\":\"" + EcCrv(pkey) +
             "\",\"x\":\"" + B64(BnParam(pkey, OSSL_PKEY_PARAM_EC_PUB_X, n)) +
             "\",\"y\":\"" + B64(BnParam(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, n)) +
             "\"}";
    }
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448: {
      unsigned char raw[57];
      size_t len = sizeof raw;
      EVP_PKEY_get_raw_public_key(pkey, raw, &len);
      const char* crv =
          EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED448 ? "Ed448" : "Ed25519";
      return "{\"kty\":\"OKP\"," + members + ",\"crv\":\"" + crv +
             "\",\"x\":\"" +
             B64(std::string_view(reinterpret_cast<char*>(raw), len)) + "\"}";
    }
  }
  return "{}";
}

inline std::string PublicPem(EVP_PKEY* pkey) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, pkey);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

// A self-signed certificate for `pkey` (SHA-256, or none for Ed25519).
inline std::string SelfSignedCertPem(EVP_PKEY* pkey) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, pkey);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("idp.test"),
                             -1, -1, 0);
  X509_set_issuer_name(x, name);
  bool eddsa = EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519 ||
               EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED448;
  X509_sign(x, pkey, eddsa ? nullptr : EVP_sha256());
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  X509_free(x);
  return out;
}

inline PkeyRef ReadPrivatePem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return PkeyRef(pkey);
}

inline const char* MdFor(std::string_view alg) {
  if (alg.ends_with("256")) return "SHA256";
  if (alg.ends_with("384")) return "SHA384";
  return "SHA512";
}

// The raw JWS signature of `input` under `alg` ("HS*" use `secret`).
inline std::string SignInput(std::string_view alg, std::string_view input,
                             EVP_PKEY* pkey, std::string_view secret = "") {
  const auto* msg = reinterpret_cast<const unsigned char*>(input.data());
  if (alg.starts_with("HS")) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t len = 0;
    EVP_Q_mac(nullptr, "HMAC", nullptr, MdFor(alg), nullptr, secret.data(),
              secret.size(), msg, input.size(), mac, sizeof mac, &len);
    return std::string(reinterpret_cast<char*>(mac), len);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* md =
      alg.starts_with("Ed") ? nullptr : EVP_get_digestbyname(MdFor(alg));
  EVP_DigestSignInit(ctx, &pctx, md, nullptr, pkey);
  if (alg.starts_with("PS")) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md);
  }
  size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, msg, input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, msg,
                 input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (alg.starts_with("ES")) {
    // DER -> JOSE r||s, each padded to the field size (RFC 7518 3.4).
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    int n = EcFieldBytes(pkey);
    std::string raw(2 * n, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es),
                 reinterpret_cast<unsigned char*>(raw.data()), n);
    BN_bn2binpad(ECDSA_SIG_get0_s(es),
                 reinterpret_cast<unsigned char*>(raw.data()) + n, n);
    ECDSA_SIG_free(es);
    return raw;
  }
  return sig;
}

// A compact JWS with header {"alg":alg[,"kid":kid],"typ":"JWT"}.
inline std::string SignJwt(std::string_view alg, std::string_view kid,
                           std::string_view payload_json, EVP_PKEY* pkey,
                           std::string_view secret = "") {
  std::string header = "{\"alg\":\"" + std::string(alg) + "\"";
  if (!kid.empty()) header += ",\"kid\":\"" + std::string(kid) + "\"";
  header += ",\"typ\":\"JWT\"}";
  std::string input = B64(header) + "." + B64(payload_json);
  return input + "." + B64(SignInput(alg, input, pkey, secret));
}

// Flips one bit of the decoded part `part` (0 header, 1 payload, 2
// signature) and re-encodes it.
inline std::string FlipBit(std::string_view token, int part, size_t byte = 0,
                           int bit = 0) {
  std::string parts[3];
  size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    size_t dot = token.find('.', start);
    parts[i] = std::string(
        token.substr(start, dot == std::string_view::npos ? dot : dot - start));
    start = dot + 1;
  }
  std::string raw;
  jose::Base64UrlDecode(parts[part], &raw);
  if (raw.empty()) raw.push_back('\0');
  raw[byte % raw.size()] ^= static_cast<char>(1 << bit);
  parts[part] = B64(raw);
  return parts[0] + "." + parts[1] + "." + parts[2];
}

}  // namespace tokenwatch::jose::testing

#endif  // TOKENWATCH_TESTS_AGENT_JOSE_JOSE_TEST_UTIL_H_
