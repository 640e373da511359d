#include "agent/token/fingerprint.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tokenwatch::token {

absl::StatusOr<std::unique_ptr<Fingerprinter>> Fingerprinter::Create(
    std::string_view key) {
  if (key.empty())
    return absl::InvalidArgumentError("fingerprint key is empty");
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) return absl::InternalError("OpenSSL has no HMAC");
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (ctx == nullptr ||
      EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()),
                   key.size(), params) != 1) {
    EVP_MAC_CTX_free(ctx);
    return absl::InternalError("cannot initialise HMAC-SHA256");
  }
  return std::unique_ptr<Fingerprinter>(new Fingerprinter(ctx));
}

absl::StatusOr<std::unique_ptr<Fingerprinter>> Fingerprinter::FromFile(
    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(
        absl::StrCat("cannot read fingerprint key file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string key = ss.str();
  if (key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("fingerprint key file ", path, " is empty"));
  }
  return Create(key);
}

Fingerprinter::~Fingerprinter() { EVP_MAC_CTX_free(keyed_); }

std::string Fingerprinter::Fingerprint(std::string_view input) const {
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t out_len = 0;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(keyed_);
  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  EVP_MAC_final(ctx, out, &out_len, sizeof out);
  EVP_MAC_CTX_free(ctx);
  std::string hex(32, '0');
  for (int i = 0; i < 16; ++i) {
    hex[2 * i] = kHex[out[i] >> 4];
    hex[2 * i + 1] = kHex[out[i] & 0xf];
  }
  return hex;
}

}  // namespace tokenwatch::token
