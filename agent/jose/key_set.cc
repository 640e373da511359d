#include "agent/jose/key_set.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <simdjson.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/jose/strict_base64url.h"

namespace tokenwatch::jose {

PkeyRef::PkeyRef(const PkeyRef& other) : pkey_(other.pkey_) {
  if (pkey_ != nullptr) EVP_PKEY_up_ref(pkey_);
}

PkeyRef& PkeyRef::operator=(const PkeyRef& other) {
  if (this != &other) {
    if (other.pkey_ != nullptr) EVP_PKEY_up_ref(other.pkey_);
    EVP_PKEY_free(pkey_);
    pkey_ = other.pkey_;
  }
  return *this;
}

PkeyRef& PkeyRef::operator=(PkeyRef&& other) noexcept {
  if (this != &other) {
    EVP_PKEY_free(pkey_);
    pkey_ = other.pkey_;
    other.pkey_ = nullptr;
  }
  return *this;
}

PkeyRef::~PkeyRef() { EVP_PKEY_free(pkey_); }

std::string_view KeyTypeName(KeyType kty) {
  switch (kty) {
    case KeyType::kRsa:
      return "RSA";
    case KeyType::kEc:
      return "EC";
    case KeyType::kOkp:
      return "OKP";
    case KeyType::kOct:
      return "oct";
  }
  return "?";
}

namespace {

constexpr size_t kMaxJwksBytes = 4 << 20;
constexpr size_t kMaxKeys = 4096;
constexpr size_t kMaxFileBytes = 16 << 20;
// RSA moduli outside this range are either breakable or a resource attack
// (verification cost grows with the modulus).
constexpr int kMinRsaBits = 512;
constexpr int kMaxRsaBits = 16384;

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct CtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct BldFree {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
using CtxPtr = std::unique_ptr<EVP_PKEY_CTX, CtxFree>;

std::string Cut(std::string_view s, size_t n = 64) {
  std::string out(s.substr(0, n));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

struct CurveInfo {
  std::string_view jwk_name;  // crv in a JWK
  const char* ossl_group;     // OpenSSL group name
  size_t field_bytes;
};
constexpr CurveInfo kCurves[] = {
    {"P-256", "prime256v1", 32},
    {"P-384", "secp384r1", 48},
    {"P-521", "secp521r1", 66},
};

const CurveInfo* CurveByJwkName(std::string_view crv) {
  for (const auto& c : kCurves) {
    if (c.jwk_name == crv) return &c;
  }
  return nullptr;
}

const CurveInfo* CurveByGroup(std::string_view group) {
  for (const auto& c : kCurves) {
    if (group == c.ossl_group) return &c;
  }
  // OpenSSL also reports the NIST names for these groups.
  return CurveByJwkName(group);
}

// Returns false when the key's public part is not usable (not on the curve,
// wrong size...).
bool PublicCheck(EVP_PKEY* pkey) {
  CtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  return ctx != nullptr && EVP_PKEY_public_check(ctx.get()) == 1;
}

EVP_PKEY* FromData(const char* type, OSSL_PARAM* params) {
  CtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return nullptr;
  }
  return pkey;
}

// Reads one JWK into `key`; returns an empty string or why it was skipped.
class JwkReader {
 public:
  explicit JwkReader(simdjson::dom::object obj) : obj_(obj) {}

  std::string Read(Key* key) {
    std::string_view kty;
    if (!String("kty", &kty)) return "no kty";
    if (Has("kid")) {
      std::string_view kid;
      int64_t n;
      if (obj_["kid"].get_int64().get(n) == simdjson::SUCCESS) {
        key->kid = std::to_string(n);  // as agent/token/jwt.cc reads a header
      } else if (String("kid", &kid)) {
        key->kid = std::string(kid);
      } else {
        return "kid is not a string";
      }
    }
    if (Has("alg")) {
      std::string_view alg;
      if (!String("alg", &alg)) return "alg is not a string";
      key->alg = std::string(alg);
    }
    if (Has("use")) {
      std::string_view use;
      if (!String("use", &use)) return "use is not a string";
      if (use != "sig")
        return absl::StrCat("use is '", Cut(use), "', not 'sig'");
    }
    if (Has("key_ops")) {
      simdjson::dom::array ops;
      if (obj_["key_ops"].get_array().get(ops) != simdjson::SUCCESS) {
        return "key_ops is not a list";
      }
      bool verify = false;
      for (auto op : ops) {
        std::string_view s;
        if (op.get_string().get(s) == simdjson::SUCCESS && s == "verify") {
          verify = true;
        }
      }
      if (!verify) return "key_ops lacks 'verify'";
    }
    if (kty == "RSA") return ReadRsa(key);
    if (kty == "EC") return ReadEc(key);
    if (kty == "OKP") return ReadOkp(key);
    if (kty == "oct") return ReadOct(key);
    return absl::StrCat("unsupported kty '", Cut(kty), "'");
  }

 private:
  bool Has(const char* name) {
    return obj_[name].error() != simdjson::NO_SUCH_FIELD;
  }
  bool String(const char* name, std::string_view* out) {
    return obj_[name].get_string().get(*out) == simdjson::SUCCESS;
  }
  // A base64url member, strictly decoded and non-empty.
  bool Bytes(const char* name, std::string* out) {
    std::string_view s;
    return String(name, &s) && StrictBase64UrlDecode(s, out) && !out->empty();
  }

  std::string ReadRsa(Key* key) {
    std::string n, e;
    if (!Bytes("n", &n)) return "RSA key without a valid n";
    if (!Bytes("e", &e)) return "RSA key without a valid e";
    auto bin = [](const std::string& s) {
      return BnPtr(BN_bin2bn(reinterpret_cast<const unsigned char*>(s.data()),
                             static_cast<int>(s.size()), nullptr));
    };
    if (n.size() > kMaxRsaBits / 8 + 1 || e.size() > 64) {
      return "RSA n or e too large";
    }
    BnPtr bn_n = bin(n), bn_e = bin(e);
    if (bn_n == nullptr || bn_e == nullptr) return "out of memory";
    int bits = BN_num_bits(bn_n.get());
    if (bits < kMinRsaBits || bits > kMaxRsaBits) {
      return absl::StrCat("RSA modulus of ", bits, " bits is outside ",
                          kMinRsaBits, "..", kMaxRsaBits);
    }
    if (!BN_is_odd(bn_n.get()) || !BN_is_odd(bn_e.get()) ||
        BN_is_one(bn_e.get()) || BN_cmp(bn_e.get(), bn_n.get()) >= 0) {
      return "RSA n or e is not a valid public key";
    }
    std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
    if (bld == nullptr ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) !=
            1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) !=
            1) {
      return "out of memory";
    }
    std::unique_ptr<OSSL_PARAM, ParamFree> params(
        OSSL_PARAM_BLD_to_param(bld.get()));
    if (params == nullptr) return "out of memory";
    EVP_PKEY* pkey = FromData("RSA", params.get());
    if (pkey == nullptr) return "OpenSSL refused the RSA key";
    key->pkey = PkeyRef(pkey);
    key->kty = KeyType::kRsa;
    key->bits = bits;
    return "";
  }

  std::string ReadEc(Key* key) {
    std::string_view crv;
    if (!String("crv", &crv)) return "EC key without crv";
    const CurveInfo* curve = CurveByJwkName(crv);
    if (curve == nullptr)
      return absl::StrCat("unsupported crv '", Cut(crv), "'");
    std::string x, y;
    if (!Bytes("x", &x) || !Bytes("y", &y)) return "EC key without valid x, y";
    // RFC 7518 6.2.1.2 wants the full field size; some encoders drop leading
    // zero bytes, which is unambiguous, so pad those back.
    if (x.size() > curve->field_bytes || y.size() > curve->field_bytes) {
      return "EC x or y longer than the field";
    }
    std::string point(1, '\x04');
    point.append(curve->field_bytes - x.size(), '\0').append(x);
    point.append(curve->field_bytes - y.size(), '\0').append(y);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                         const_cast<char*>(curve->ossl_group),
                                         0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                          point.size()),
        OSSL_PARAM_construct_end()};
    EVP_PKEY* pkey = FromData("EC", params);
    if (pkey == nullptr) return "EC point is not on the curve";
    key->pkey = PkeyRef(pkey);
    if (!PublicCheck(pkey)) return "EC point is not on the curve";
    key->kty = KeyType::kEc;
    key->crv = std::string(curve->jwk_name);
    key->bits = static_cast<int>(EVP_PKEY_get_bits(pkey));
    return "";
  }

  std::string ReadOkp(Key* key) {
    std::string_view crv;
    if (!String("crv", &crv)) return "OKP key without crv";
    const char* type = nullptr;
    size_t len = 0;
    if (crv == "Ed25519") {
      type = "ED25519";
      len = 32;
    } else if (crv == "Ed448") {
      type = "ED448";
      len = 57;
    } else {
      return absl::StrCat("unsupported crv '", Cut(crv),
                          "' (not a signature curve)");
    }
    std::string x;
    if (!Bytes("x", &x) || x.size() != len) return "OKP key without a valid x";
    EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key_ex(
        nullptr, type, nullptr,
        reinterpret_cast<const unsigned char*>(x.data()), x.size());
    if (pkey == nullptr) return "OpenSSL refused the OKP key";
    key->pkey = PkeyRef(pkey);
    key->kty = KeyType::kOkp;
    key->crv = std::string(crv);
    key->bits = static_cast<int>(EVP_PKEY_get_bits(pkey));
    return "";
  }

  std::string ReadOct(Key* key) {
    if (!Bytes("k", &key->secret)) return "oct key without a valid k";
    key->kty = KeyType::kOct;
    key->bits = static_cast<int>(key->secret.size() * 8);
    return "";
  }

  simdjson::dom::object obj_;
};

void AddJwk(simdjson::dom::element e, size_t index, std::vector<Key>* keys,
            std::vector<SkippedKey>* skipped) {
  simdjson::dom::object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) {
    skipped->push_back({index, "", "not a JSON object"});
    return;
  }
  Key key;
  std::string why = JwkReader(obj).Read(&key);
  if (!why.empty()) {
    skipped->push_back({index, Cut(key.kid), std::move(why)});
    ERR_clear_error();
    return;
  }
  keys->push_back(std::move(key));
}

// Fills kty, crv and bits from an EVP_PKEY read from PEM. Returns an empty
// string, or why the key cannot verify any JWS alg.
std::string DescribePkey(EVP_PKEY* pkey, Key* key) {
  key->bits = EVP_PKEY_get_bits(pkey);
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      if (key->bits < kMinRsaBits || key->bits > kMaxRsaBits) {
        return absl::StrCat("RSA modulus of ", key->bits, " bits is outside ",
                            kMinRsaBits, "..", kMaxRsaBits);
      }
      key->kty = KeyType::kRsa;
      return "";
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                         group, sizeof group, &len) != 1) {
        return "EC key without a named curve";
      }
      const CurveInfo* curve = CurveByGroup(group);
      if (curve == nullptr) {
        return absl::StrCat("unsupported curve '", Cut(group), "'");
      }
      key->kty = KeyType::kEc;
      key->crv = std::string(curve->jwk_name);
      return "";
    }
    case EVP_PKEY_ED25519:
      key->kty = KeyType::kOkp;
      key->crv = "Ed25519";
      return "";
    case EVP_PKEY_ED448:
      key->kty = KeyType::kOkp;
      key->crv = "Ed448";
      return "";
    default:
      return "unsupported key type";
  }
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::string data;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > kMaxFileBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is larger than ", kMaxFileBytes, " bytes"));
    }
  }
  return data;
}

}  // namespace

absl::StatusOr<KeySet> KeySet::FromJwks(std::string_view json) {
  if (json.size() > kMaxJwksBytes) {
    return absl::InvalidArgumentError("JWKS larger than 4 MiB");
  }
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size(), /*realloc_if_needed=*/true)
          .get(doc) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("JWKS is not valid JSON");
  }
  simdjson::dom::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("JWKS is not a JSON object");
  }
  KeySet set;
  auto keys_field = obj["keys"];
  if (keys_field.error() == simdjson::NO_SUCH_FIELD) {
    if (obj["kty"].error() == simdjson::NO_SUCH_FIELD) {
      return absl::InvalidArgumentError(
          "JSON is neither a JWK Set (\"keys\") nor a JWK (\"kty\")");
    }
    AddJwk(doc, 0, &set.keys_, &set.skipped_);
    return set;
  }
  simdjson::dom::array arr;
  if (keys_field.get_array().get(arr) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("JWKS \"keys\" is not a list");
  }
  size_t index = 0;
  for (simdjson::dom::element e : arr) {
    if (index >= kMaxKeys) {
      set.skipped_.push_back({index, "", "more than 4096 keys"});
      break;
    }
    AddJwk(e, index++, &set.keys_, &set.skipped_);
  }
  return set;
}

absl::StatusOr<KeySet> KeySet::FromPem(std::string_view pem) {
  if (pem.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError("PEM larger than 16 MiB");
  }
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::ResourceExhaustedError("out of memory");
  KeySet set;
  size_t index = 0;
  for (;; ++index) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) break;
    std::string block_name = name;
    OPENSSL_free(name);
    OPENSSL_free(header);
    const unsigned char* p = data;
    EVP_PKEY* pkey = nullptr;
    bool private_key = block_name.find("PRIVATE KEY") != std::string::npos;
    if (block_name == "PUBLIC KEY") {
      pkey = d2i_PUBKEY(nullptr, &p, len);
    } else if (block_name == "RSA PUBLIC KEY") {
      pkey = d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, len);
    } else if (block_name == "CERTIFICATE" ||
               block_name == "X509 CERTIFICATE") {
      std::unique_ptr<X509, X509Free> cert(d2i_X509(nullptr, &p, len));
      if (cert != nullptr) pkey = X509_get_pubkey(cert.get());
    }
    OPENSSL_free(data);
    if (private_key) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("PEM block ", index, " is a ", block_name,
                       ": give the public key or certificate, agents must "
                       "not hold private keys"));
    }
    if (pkey == nullptr) {
      set.skipped_.push_back({index, "",
                              absl::StrCat("PEM block '", Cut(block_name),
                                           "' holds no usable public key")});
      continue;
    }
    Key key;
    key.pkey = PkeyRef(pkey);
    std::string why = DescribePkey(pkey, &key);
    if (!why.empty()) {
      set.skipped_.push_back({index, "", std::move(why)});
      continue;
    }
    set.keys_.push_back(std::move(key));
  }
  ERR_clear_error();  // PEM_read_bio ends with "no start line"
  if (index == 0) {
    return absl::InvalidArgumentError("no PEM block found");
  }
  return set;
}

absl::StatusOr<KeySet> KeySet::FromJwksFile(const std::string& path) {
  absl::StatusOr<std::string> data = ReadFile(path);
  if (!data.ok()) return data.status();
  absl::StatusOr<KeySet> set = FromJwks(*data);
  if (!set.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", set.status().message()));
  }
  return set;
}

absl::StatusOr<KeySet> KeySet::FromPemFile(const std::string& path) {
  absl::StatusOr<std::string> data = ReadFile(path);
  if (!data.ok()) return data.status();
  absl::StatusOr<KeySet> set = FromPem(*data);
  if (!set.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", set.status().message()));
  }
  return set;
}

void KeySet::AddHmacSecret(std::string_view secret, std::string_view kid) {
  if (secret.empty()) return;
  Key key;
  key.kid = std::string(kid);
  key.kty = KeyType::kOct;
  key.secret = std::string(secret);
  key.bits = static_cast<int>(secret.size() * 8);
  keys_.push_back(std::move(key));
}

void KeySet::Merge(const KeySet& other) {
  keys_.insert(keys_.end(), other.keys_.begin(), other.keys_.end());
  skipped_.insert(skipped_.end(), other.skipped_.begin(), other.skipped_.end());
}

const Key* KeySet::Find(std::string_view kid) const {
  for (const Key& k : keys_) {
    if (k.kid == kid) return &k;
  }
  return nullptr;
}

}  // namespace tokenwatch::jose
