#include "agent/jose/verifier.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <memory>
#include <string>

#include "agent/jose/strict_base64url.h"
#include "common/strings.h"

namespace tokenwatch::jose {
namespace {

// The longest signature of any supported key: RSA-16384 (2048 bytes).
// Anything longer is rejected before decoding.
constexpr size_t kMaxSignatureB64 = 2731;

enum class Family { kRsaPkcs1, kRsaPss, kEcdsa, kEdDsa, kHmac };

struct AlgSpec {
  std::string_view name;
  Family family;
  const char* md;          // digest name; null for EdDSA
  std::string_view crv;    // required curve (EC, or a fully specified OKP alg)
  size_t ec_scalar_bytes;  // r and s length for ECDSA
};

constexpr AlgSpec kAlgs[] = {
    {"RS256", Family::kRsaPkcs1, "SHA2-256", "", 0},
    {"RS384", Family::kRsaPkcs1, "SHA2-384", "", 0},
    {"RS512", Family::kRsaPkcs1, "SHA2-512", "", 0},
    {"PS256", Family::kRsaPss, "SHA2-256", "", 0},
    {"PS384", Family::kRsaPss, "SHA2-384", "", 0},
    {"PS512", Family::kRsaPss, "SHA2-512", "", 0},
    {"ES256", Family::kEcdsa, "SHA2-256", "P-256", 32},
    {"ES384", Family::kEcdsa, "SHA2-384", "P-384", 48},
    {"ES512", Family::kEcdsa, "SHA2-512", "P-521", 66},
    {"EdDSA", Family::kEdDsa, nullptr, "", 0},
    // draft-ietf-jose-fully-specified-algorithms names the curve in the alg.
    {"Ed25519", Family::kEdDsa, nullptr, "Ed25519", 0},
    {"Ed448", Family::kEdDsa, nullptr, "Ed448", 0},
    {"HS256", Family::kHmac, "SHA2-256", "", 0},
    {"HS384", Family::kHmac, "SHA2-384", "", 0},
    {"HS512", Family::kHmac, "SHA2-512", "", 0},
};

const AlgSpec* FindAlg(std::string_view alg) {
  for (const AlgSpec& s : kAlgs) {
    if (s.name == alg) return &s;  // case-sensitive (RFC 7515 4.1.1)
  }
  return nullptr;
}

// Digests and the HMAC implementation are fetched once: an implicit fetch
// per operation costs a locked provider lookup (OpenSSL 3 performance
// notes). Fetched objects are immutable and safe to share between threads.
struct Fetched {
  EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  EVP_MD* sha384 = EVP_MD_fetch(nullptr, "SHA2-384", nullptr);
  EVP_MD* sha512 = EVP_MD_fetch(nullptr, "SHA2-512", nullptr);
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
};

const Fetched& Fetch() {
  static const Fetched* fetched = new Fetched();
  return *fetched;
}

const EVP_MD* Md(const char* name) {
  const Fetched& f = Fetch();
  std::string_view n = name;
  if (n == "SHA2-256") return f.sha256;
  if (n == "SHA2-384") return f.sha384;
  return f.sha512;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

bool KeyFits(const Key& key, const AlgSpec& spec, std::string_view alg) {
  switch (spec.family) {
    case Family::kRsaPkcs1:
    case Family::kRsaPss:
      if (key.kty != KeyType::kRsa) return false;
      break;
    case Family::kEcdsa:
      if (key.kty != KeyType::kEc || key.crv != spec.crv) return false;
      break;
    case Family::kEdDsa:
      if (key.kty != KeyType::kOkp) return false;
      if (!spec.crv.empty() && key.crv != spec.crv) return false;
      break;
    case Family::kHmac:
      if (key.kty != KeyType::kOct) return false;
      break;
  }
  if (key.alg.empty() || key.alg == alg) return true;
  // "ES521" is a misspelling of ES512 found in published JWKs (Wycheproof's
  // RFC 7520 group); the curve check above already binds the key to ES512.
  return key.alg == "ES521" && alg == "ES512";
}

const char* kReasonNone = "";

// The signature check proper. Returns true when valid; on failure, sets
// `reason` to a static description.
bool VerifyWith(const Key& key, const AlgSpec& spec, std::string_view input,
                std::string_view sig, const char** reason) {
  const auto* msg = reinterpret_cast<const unsigned char*>(input.data());
  const auto* sig_bytes = reinterpret_cast<const unsigned char*>(sig.data());

  if (spec.family == Family::kHmac) {
    std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_new(Fetch().hmac));
    char digest[16];
    std::string_view md = spec.md;
    md.copy(digest, md.size());
    digest[md.size()] = '\0';
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end()};
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    if (ctx == nullptr ||
        EVP_MAC_init(ctx.get(),
                     reinterpret_cast<const unsigned char*>(key.secret.data()),
                     key.secret.size(), params) != 1 ||
        EVP_MAC_update(ctx.get(), msg, input.size()) != 1 ||
        EVP_MAC_final(ctx.get(), mac, &mac_len, sizeof mac) != 1) {
      *reason = "HMAC computation failed";
      return false;
    }
    if (sig.size() != mac_len) {
      *reason = "HMAC length differs from the hash length";
      return false;
    }
    // Constant time: a timing oracle on a passive monitor is unlikely, but
    // costs nothing to avoid.
    if (CRYPTO_memcmp(mac, sig_bytes, mac_len) != 0) {
      *reason = "HMAC does not match";
      return false;
    }
    return true;
  }

  EVP_PKEY* pkey = key.pkey.get();
  if (pkey == nullptr) {
    *reason = "key has no public key";
    return false;
  }
  std::string der;  // ECDSA: the DER form OpenSSL verifies
  if (spec.family == Family::kEcdsa) {
    size_t n = spec.ec_scalar_bytes;
    if (sig.size() != 2 * n) {
      *reason = "ECDSA signature is not 2 x the curve size (JOSE r||s)";
      return false;
    }
    auto all_zero = [](std::string_view s) {
      return s.find_first_not_of('\0') == std::string_view::npos;
    };
    // CVE-2022-21449 ("psychic signatures"): r = 0 or s = 0 passed some
    // verifiers. OpenSSL rejects it too; refuse before it gets there.
    if (all_zero(sig.substr(0, n)) || all_zero(sig.substr(n))) {
      *reason = "ECDSA r or s is zero (CVE-2022-21449)";
      return false;
    }
    std::unique_ptr<ECDSA_SIG, EcdsaSigFree> es(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(sig_bytes, static_cast<int>(n), nullptr);
    BIGNUM* s = BN_bin2bn(sig_bytes + n, static_cast<int>(n), nullptr);
    if (es == nullptr || r == nullptr || s == nullptr ||
        ECDSA_SIG_set0(es.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      *reason = "out of memory";
      return false;
    }
    unsigned char* buf = nullptr;
    int len = i2d_ECDSA_SIG(es.get(), &buf);
    if (len <= 0) {
      *reason = "cannot encode the ECDSA signature";
      return false;
    }
    der.assign(reinterpret_cast<char*>(buf), static_cast<size_t>(len));
    OPENSSL_free(buf);
    sig = der;
    sig_bytes = reinterpret_cast<const unsigned char*>(der.data());
  } else if (spec.family == Family::kRsaPkcs1 ||
             spec.family == Family::kRsaPss) {
    if (sig.size() != static_cast<size_t>(EVP_PKEY_get_size(pkey))) {
      *reason = "RSA signature length differs from the modulus length";
      return false;
    }
  }

  std::unique_ptr<EVP_MD_CTX, MdCtxFree> mctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by mctx
  const EVP_MD* md = spec.md == nullptr ? nullptr : Md(spec.md);
  if (mctx == nullptr ||
      EVP_DigestVerifyInit(mctx.get(), &pctx, md, nullptr, pkey) != 1) {
    *reason = "key cannot verify this algorithm";
    return false;
  }
  if (spec.family == Family::kRsaPss) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1) {
      *reason = "key cannot verify RSASSA-PSS";
      return false;
    }
  } else if (spec.family == Family::kRsaPkcs1) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
      *reason = "key cannot verify RSASSA-PKCS1-v1_5";
      return false;
    }
  }
  if (EVP_DigestVerify(mctx.get(), sig_bytes, sig.size(), msg, input.size()) !=
      1) {
    *reason = "signature does not verify";
    return false;
  }
  return true;
}

}  // namespace

std::string_view SignatureVerdictName(SignatureVerdict v) {
  switch (v) {
    case SignatureVerdict::kValid:
      return "valid";
    case SignatureVerdict::kInvalid:
      return "invalid";
    case SignatureVerdict::kUnknownKid:
      return "unknown_kid";
    case SignatureVerdict::kNoKeys:
      return "no_keys";
    case SignatureVerdict::kAlgNone:
      return "alg_none";
    case SignatureVerdict::kUnsupportedAlg:
      return "unsupported_alg";
    case SignatureVerdict::kMalformed:
      return "malformed";
  }
  return "?";
}

bool IsSupportedAlg(std::string_view alg) { return FindAlg(alg) != nullptr; }

bool IsHmacAlg(std::string_view alg) {
  const AlgSpec* spec = FindAlg(alg);
  return spec != nullptr && spec->family == Family::kHmac;
}

SignatureVerdict Verify(std::string_view token, std::string_view alg,
                        std::string_view kid, const KeySet& keys,
                        VerifyDetails* details) {
  VerifyDetails unused;
  VerifyDetails& d = details != nullptr ? *details : unused;
  d = VerifyDetails();
  if (util::EqualsIgnoreCase(alg, "none")) {
    d.reason = "alg is none";
    return SignatureVerdict::kAlgNone;
  }
  size_t dot1 = token.find('.');
  size_t dot2 =
      dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos ||
      token.find('.', dot2 + 1) != std::string_view::npos) {
    d.reason = "not a three-part JWS";
    return SignatureVerdict::kMalformed;
  }
  std::string_view signature_b64 = token.substr(dot2 + 1);
  if (signature_b64.empty()) {
    d.reason = "empty signature";
    return SignatureVerdict::kAlgNone;
  }
  if (dot1 == 0 || alg.empty()) {
    d.reason = dot1 == 0 ? "empty header" : "no alg";
    return SignatureVerdict::kMalformed;
  }
  // The signature covers the characters as sent, but a header or payload
  // that is not canonical base64url is not a JWS (Wycheproof tcIds 368-375:
  // a MAC over "    VGVzdA" must not pass).
  if (!IsCanonicalBase64Url(token.substr(0, dot1)) ||
      !IsCanonicalBase64Url(token.substr(dot1 + 1, dot2 - dot1 - 1))) {
    d.reason = "header or payload is not canonical base64url";
    return SignatureVerdict::kMalformed;
  }
  const AlgSpec* spec = FindAlg(alg);
  if (spec == nullptr) {
    d.reason = "unsupported alg";
    return SignatureVerdict::kUnsupportedAlg;
  }
  if (signature_b64.size() > kMaxSignatureB64) {
    d.reason = "signature longer than any supported key can make";
    return SignatureVerdict::kInvalid;
  }
  std::string signature;
  if (!StrictBase64UrlDecode(signature_b64, &signature)) {
    d.reason = "signature is not canonical base64url";
    return SignatureVerdict::kMalformed;
  }
  if (keys.empty()) {
    d.reason = "no keys configured";
    return SignatureVerdict::kNoKeys;
  }

  bool kid_known = false;
  bool have_kidless = false;
  if (!kid.empty()) {
    for (const Key& k : keys.keys()) {
      kid_known |= k.kid == kid;
      have_kidless |= k.kid.empty();
    }
  }
  std::string_view signing_input = token.substr(0, dot2);
  const char* reason = kReasonNone;
  for (const Key& k : keys.keys()) {
    if (!kid.empty()) {
      // A kid selects its keys; keys that carry no kid stand in for any.
      if (kid_known ? k.kid != kid : !k.kid.empty()) continue;
    }
    if (!KeyFits(k, *spec, alg)) continue;
    ++d.keys_tried;
    if (VerifyWith(k, *spec, signing_input, signature, &reason)) {
      d.reason = "";
      return SignatureVerdict::kValid;
    }
  }
  ERR_clear_error();  // failures leave entries on this thread's queue
  if (d.keys_tried > 0) {
    d.reason = reason;
    return SignatureVerdict::kInvalid;
  }
  if (kid_known) {
    // The token names a key that cannot make this alg: RS/HS-style
    // algorithm confusion, or a key restricted to another alg.
    d.reason = "the key named by kid is not for this alg";
    return SignatureVerdict::kInvalid;
  }
  if (!kid.empty() && !have_kidless) {
    d.reason = "kid not in the key set";
    return SignatureVerdict::kUnknownKid;
  }
  d.reason = "no key for this alg";
  return SignatureVerdict::kNoKeys;
}

}  // namespace tokenwatch::jose
