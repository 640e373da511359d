// Mints JWTs at test time (HS256 with OpenSSL), so no test depends on a
// token constant or on a date far away.
#ifndef TOKENWATCH_TESTS_AGENT_TESTING_JWT_BUILDER_H_
#define TOKENWATCH_TESTS_AGENT_TESTING_JWT_BUILDER_H_

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <string_view>

#include "agent/jose/base64url.h"

namespace tokenwatch::testing {

inline std::string MakeJwt(
    std::string_view payload_json,
    std::string_view header_json = R"({"alg":"HS256","typ":"JWT"})",
    std::string_view key = "test-key") {
  std::string input = jose::Base64UrlEncode(header_json) + "." +
                      jose::Base64UrlEncode(payload_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
       &len);
  return input + "." +
         jose::Base64UrlEncode(
             std::string_view(reinterpret_cast<char*>(mac), len));
}

}  // namespace tokenwatch::testing

#endif  // TOKENWATCH_TESTS_AGENT_TESTING_JWT_BUILDER_H_
