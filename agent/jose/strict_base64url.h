// Canonical base64url (RFC 7515 section 2 / RFC 4648 section 3.5): no
// padding, no characters outside the alphabet, zero unused bits. Signatures
// and key members are decoded this way so that one value has one encoding
// (a re-encoded signature must not pass as another, Wycheproof "base64").
#ifndef TOKENWATCH_AGENT_JOSE_STRICT_BASE64URL_H_
#define TOKENWATCH_AGENT_JOSE_STRICT_BASE64URL_H_

#include <string>
#include <string_view>

#include "agent/token/base64url.h"

namespace tokenwatch::jose {

inline bool StrictBase64UrlDecode(std::string_view in, std::string* out) {
  // The lenient decoder accepts '=' and non-zero unused bits; a value that
  // does not re-encode to itself had one of them.
  return token::Base64UrlDecode(in, out) && token::Base64UrlEncode(*out) == in;
}

}  // namespace tokenwatch::jose

#endif  // TOKENWATCH_AGENT_JOSE_STRICT_BASE64URL_H_
