// base64url without padding (RFC 7515 section 2), lenient about trailing '='.
#ifndef TOKENWATCH_AGENT_JOSE_BASE64URL_H_
#define TOKENWATCH_AGENT_JOSE_BASE64URL_H_

#include <string>
#include <string_view>

namespace tokenwatch::jose {

// Decodes into `out` (replacing its contents); false on a character outside
// the alphabet or an impossible length.
bool Base64UrlDecode(std::string_view in, std::string* out);
std::string Base64UrlEncode(std::string_view in);

}  // namespace tokenwatch::jose

#endif  // TOKENWATCH_AGENT_JOSE_BASE64URL_H_
