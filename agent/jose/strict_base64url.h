// Canonical base64url (RFC 7515 section 2 / RFC 4648 section 3.5): no
// padding, no characters outside the alphabet, zero unused bits. Signatures
// and key members are decoded this way so that one value has one encoding
// (a re-encoded signature must not pass as another, Wycheproof "base64").
#ifndef TOKENWATCH_AGENT_JOSE_STRICT_BASE64URL_H_
#define TOKENWATCH_AGENT_JOSE_STRICT_BASE64URL_H_

#include <string>
#include <string_view>

#include "agent/jose/base64url.h"

namespace tokenwatch::jose {

// The same test without decoding: only alphabet characters, a possible
// length, zero unused bits in the last character. Empty is canonical.
inline bool IsCanonicalBase64Url(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  if (in.size() % 4 == 1) return false;
  for (char c : in) {
    if (value(c) < 0) return false;
  }
  if (in.empty()) return true;
  int last = value(in.back());
  if (in.size() % 4 == 2) return (last & 0x0f) == 0;
  if (in.size() % 4 == 3) return (last & 0x03) == 0;
  return true;
}

inline bool StrictBase64UrlDecode(std::string_view in, std::string* out) {
  // The lenient decoder accepts '=' and non-zero unused bits; a value that
  // does not re-encode to itself had one of them.
  return jose::Base64UrlDecode(in, out) && jose::Base64UrlEncode(*out) == in;
}

}  // namespace tokenwatch::jose

#endif  // TOKENWATCH_AGENT_JOSE_STRICT_BASE64URL_H_
