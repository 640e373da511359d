// An issuer's verification keys: public keys from a JWKS (RFC 7517) or PEM
// file, and HMAC secrets for HS* issuers. Built once at start-up (or on a
// file change) and then only read, so one KeySet may be shared by threads.
#ifndef TOKENWATCH_AGENT_JOSE_KEY_SET_H_
#define TOKENWATCH_AGENT_JOSE_KEY_SET_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

struct evp_pkey_st;

namespace tokenwatch::jose {

// A counted reference to an OpenSSL EVP_PKEY: copies share the key
// (EVP_PKEY_up_ref), the last one frees it.
class PkeyRef {
 public:
  PkeyRef() = default;
  // Takes ownership of one reference.
  explicit PkeyRef(evp_pkey_st* pkey) : pkey_(pkey) {}
  PkeyRef(const PkeyRef& other);
  PkeyRef& operator=(const PkeyRef& other);
  PkeyRef(PkeyRef&& other) noexcept : pkey_(other.pkey_) {
    other.pkey_ = nullptr;
  }
  PkeyRef& operator=(PkeyRef&& other) noexcept;
  ~PkeyRef();

  evp_pkey_st* get() const { return pkey_; }
  explicit operator bool() const { return pkey_ != nullptr; }

 private:
  evp_pkey_st* pkey_ = nullptr;
};

enum class KeyType { kRsa, kEc, kOkp, kOct };

// "RSA", "EC", "OKP", "oct" as in a JWK's kty.
std::string_view KeyTypeName(KeyType kty);

struct Key {
  std::string kid;  // empty when the source names none (PEM, secret file)
  KeyType kty = KeyType::kRsa;
  std::string alg;     // the JWK's "alg"; empty when it names none
  std::string crv;     // "P-256", "P-384", "P-521", "Ed25519", "Ed448"; else ""
  int bits = 0;        // modulus or field size; secret length * 8 for oct
  PkeyRef pkey;        // the public key; null for oct
  std::string secret;  // the HMAC key; oct only
};

// A JWK or PEM block that was not loaded, and why (for a start-up warning).
struct SkippedKey {
  size_t index = 0;  // position in the JWKS "keys" array or PEM block number
  std::string kid;   // cut to 64 bytes
  std::string reason;
};

class KeySet {
 public:
  KeySet() = default;

  // A JWK Set {"keys":[...]} or a single JWK object. RSA (n, e), EC P-256,
  // P-384, P-521 (crv, x, y) and OKP Ed25519/Ed448 (x) become public keys;
  // oct (k) becomes an HMAC secret. Private members are ignored. Entries with
  // another kty or crv, a "use" other than "sig", "key_ops" without "verify",
  // or bad values are skipped and listed in skipped(): not an error. Errors:
  // InvalidArgument when the text is not JSON or not a JWK / JWK Set.
  static absl::StatusOr<KeySet> FromJwks(std::string_view json);

  // Every "PUBLIC KEY", "RSA PUBLIC KEY" and "CERTIFICATE" block (the
  // certificate's subject key; its validity is not checked). Private keys
  // are refused (InvalidArgument): agents must only hold public keys. Other
  // block types are skipped. Error when no usable block is found.
  static absl::StatusOr<KeySet> FromPem(std::string_view pem);

  static absl::StatusOr<KeySet> FromJwksFile(const std::string& path);
  static absl::StatusOr<KeySet> FromPemFile(const std::string& path);

  // An HMAC secret for HS256/384/512, used as given (no trimming). Empty
  // secrets are ignored.
  void AddHmacSecret(std::string_view secret, std::string_view kid = {});

  // Appends `other`'s keys (an issuer with both jwks_file and pem_file).
  void Merge(const KeySet& other);

  // The first key with this kid, or null.
  const Key* Find(std::string_view kid) const;

  const std::vector<Key>& keys() const { return keys_; }
  const std::vector<SkippedKey>& skipped() const { return skipped_; }
  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }

 private:
  std::vector<Key> keys_;
  std::vector<SkippedKey> skipped_;
};

}  // namespace tokenwatch::jose

#endif  // TOKENWATCH_AGENT_JOSE_KEY_SET_H_
