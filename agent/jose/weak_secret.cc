#include "agent/jose/weak_secret.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <fstream>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/jose/strict_base64url.h"

namespace tokenwatch::jose {
namespace {

constexpr size_t kMaxFileBytes = size_t{1} << 30;

struct MacCtxFree {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};

// Digest name and output length for an HS* alg; null name otherwise.
struct HmacAlg {
  const char* digest;
  size_t length;
};
HmacAlg HmacFor(std::string_view alg) {
  if (alg == "HS256") return {"SHA2-256", 32};
  if (alg == "HS384") return {"SHA2-384", 48};
  if (alg == "HS512") return {"SHA2-512", 64};
  return {nullptr, 0};
}

}  // namespace

WeakSecretList::WeakSecretList()
    : mac_(EVP_MAC_fetch(nullptr, "HMAC", nullptr)) {}

WeakSecretList::WeakSecretList(WeakSecretList&& other) noexcept
    : blob_(std::move(other.blob_)),
      entries_(std::move(other.entries_)),
      stats_(other.stats_),
      mac_(other.mac_) {
  other.mac_ = nullptr;
}

WeakSecretList& WeakSecretList::operator=(WeakSecretList&& other) noexcept {
  if (this != &other) {
    EVP_MAC_free(mac_);
    blob_ = std::move(other.blob_);
    entries_ = std::move(other.entries_);
    stats_ = other.stats_;
    mac_ = other.mac_;
    other.mac_ = nullptr;
  }
  return *this;
}

WeakSecretList::~WeakSecretList() { EVP_MAC_free(mac_); }

WeakSecretList WeakSecretList::FromText(std::string_view text) {
  WeakSecretList list;
  list.blob_.reserve(text.size());
  std::unordered_set<std::string_view> seen;  // views into `text`
  list.entries_.push_back({0, 0, 0});         // the empty secret
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text =
        nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      ++list.stats_.blank;
      continue;
    }
    if (line.size() > kMaxSecretBytes) {
      ++list.stats_.too_long;
      continue;
    }
    if (list.entries_.size() > kMaxSecrets) {
      ++list.stats_.over_limit;
      continue;
    }
    if (!seen.insert(line).second) {
      ++list.stats_.duplicates;
      continue;
    }
    list.entries_.push_back({list.blob_.size(),
                             static_cast<uint32_t>(line.size()),
                             static_cast<uint32_t>(line_no)});
    list.blob_.append(line);
  }
  list.stats_.lines = line_no;
  list.blob_.shrink_to_fit();
  list.entries_.shrink_to_fit();
  return list;
}

absl::StatusOr<WeakSecretList> WeakSecretList::FromFile(
    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::string data;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > kMaxFileBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is larger than 1 GiB"));
    }
  }
  WeakSecretList list = FromText(data);
  if (list.mac_ == nullptr) {
    return absl::InternalError("OpenSSL has no HMAC");
  }
  return list;
}

std::optional<size_t> WeakSecretList::FindSecret(std::string_view signing_input,
                                                 std::string_view signature_raw,
                                                 std::string_view alg) const {
  HmacAlg h = HmacFor(alg);
  if (h.digest == nullptr || signature_raw.size() != h.length ||
      mac_ == nullptr) {
    return std::nullopt;
  }
  // One context for the whole search: the digest is set once, each trial
  // only re-keys it (EVP_MAC_init with a key and no params).
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_new(mac_));
  char digest[16];
  std::strncpy(digest, h.digest, sizeof digest - 1);
  digest[sizeof digest - 1] = '\0';
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (ctx == nullptr || EVP_MAC_CTX_set_params(ctx.get(), params) != 1) {
    return std::nullopt;
  }
  const auto* msg =
      reinterpret_cast<const unsigned char*>(signing_input.data());
  const auto* want =
      reinterpret_cast<const unsigned char*>(signature_raw.data());
  uint64_t want_prefix;
  std::memcpy(&want_prefix, want, sizeof want_prefix);
  const auto* blob = reinterpret_cast<const unsigned char*>(blob_.data());
  unsigned char mac[EVP_MAX_MD_SIZE];
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    size_t mac_len = 0;
    if (EVP_MAC_init(ctx.get(), blob + e.offset, e.length, nullptr) != 1 ||
        EVP_MAC_update(ctx.get(), msg, signing_input.size()) != 1 ||
        EVP_MAC_final(ctx.get(), mac, &mac_len, sizeof mac) != 1) {
      continue;
    }
    // Nearly every trial differs in the first 8 bytes: one integer compare
    // decides it; the full comparison runs only on a candidate.
    uint64_t got_prefix;
    std::memcpy(&got_prefix, mac, sizeof got_prefix);
    if (got_prefix == want_prefix && mac_len == h.length &&
        CRYPTO_memcmp(mac, want, mac_len) == 0) {
      return i;
    }
  }
  return std::nullopt;
}

std::optional<size_t> WeakSecretList::FindSecretForToken(
    std::string_view token, std::string_view alg) const {
  size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return std::nullopt;
  size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos ||
      token.find('.', dot2 + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view sig_b64 = token.substr(dot2 + 1);
  if (sig_b64.size() > 128) return std::nullopt;  // longer than HS512
  std::string sig;
  if (!StrictBase64UrlDecode(sig_b64, &sig)) return std::nullopt;
  return FindSecret(token.substr(0, dot2), sig, alg);
}

}  // namespace tokenwatch::jose
