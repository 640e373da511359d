#include "collector/http/bearer_auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tokenwatch::collector {
namespace {

bool IsToken68Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == '~' || c == '+' || c == '/';
}

// RFC 7235 token68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" )
// *"=".
bool IsToken68(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && IsToken68Char(text[i])) ++i;
  if (i == 0) return false;
  while (i < text.size() && text[i] == '=') ++i;
  return i == text.size();
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

void Digest(std::string_view text, unsigned char out[SHA256_DIGEST_LENGTH]) {
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out);
}

}  // namespace

absl::StatusOr<std::string> ParseBearerToken(std::string_view content) {
  while (!content.empty() && IsSpace(content.back())) {
    content.remove_suffix(1);
  }
  if (content.empty()) return absl::InvalidArgumentError("the file is empty");
  if (content.size() < kMinBearerTokenBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the token is shorter than ", kMinBearerTokenBytes,
                     " characters (make one with: openssl rand -hex 32)"));
  }
  if (content.size() > kMaxBearerTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the token is longer than ", kMaxBearerTokenBytes, " characters"));
  }
  if (!IsToken68(content)) {
    return absl::InvalidArgumentError(
        "the token may hold only A-Z a-z 0-9 - . _ ~ + / and a trailing =, "
        "on one line");
  }
  return std::string(content);
}

absl::StatusOr<std::string> LoadBearerToken(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    text.append(buf, n);
    if (text.size() > 2 * kMaxBearerTokenBytes) break;  // too long anyway
  }
  const bool failed = std::ferror(f) != 0;
  const int read_errno = errno;
  std::fclose(f);
  if (failed) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", path, ": ", std::strerror(read_errno)));
  }
  absl::StatusOr<std::string> token = ParseBearerToken(text);
  if (!token.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", token.status().message()));
  }
  return token;
}

BearerCheck CheckBearer(const char* authorization, std::string_view expected) {
  if (authorization == nullptr) return BearerCheck::kMissing;
  std::string_view value = authorization;
  // RFC 7235: the scheme is case-insensitive, then one or more spaces.
  constexpr std::string_view kScheme = "bearer";
  if (value.size() < kScheme.size()) return BearerCheck::kMissing;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = value[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
    if (c != kScheme[i]) return BearerCheck::kMissing;
  }
  value.remove_prefix(kScheme.size());
  if (value.empty() || value.front() != ' ') return BearerCheck::kMissing;
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && IsSpace(value.back())) value.remove_suffix(1);
  if (expected.empty()) return BearerCheck::kInvalid;
  unsigned char got[SHA256_DIGEST_LENGTH];
  unsigned char want[SHA256_DIGEST_LENGTH];
  Digest(value, got);
  Digest(expected, want);
  return CRYPTO_memcmp(got, want, sizeof got) == 0 ? BearerCheck::kOk
                                                   : BearerCheck::kInvalid;
}

}  // namespace tokenwatch::collector
