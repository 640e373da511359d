// Bearer-token authentication for the HTTP API's write endpoints
// (`collector.http_token_file`, RFC 6750). The token is compared in
// constant time and never logged, echoed or counted by value.
#ifndef TOKENWATCH_COLLECTOR_HTTP_BEARER_AUTH_H_
#define TOKENWATCH_COLLECTOR_HTTP_BEARER_AUTH_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace tokenwatch::collector {

// Shorter tokens are guessable; longer ones are not tokens.
inline constexpr size_t kMinBearerTokenBytes = 16;
inline constexpr size_t kMaxBearerTokenBytes = 4096;

// Reads the token file: its content without trailing white space (so
// `echo TOKEN > file` works), 16 to 4096 characters of RFC 6750's token68
// alphabet (A-Z a-z 0-9 - . _ ~ + / and trailing =). Errors are
// InvalidArgument; they never quote the file's content.
absl::StatusOr<std::string> LoadBearerToken(const std::string& path);

// Whether the token file's content is a usable token; the same checks.
absl::StatusOr<std::string> ParseBearerToken(std::string_view content);

enum class BearerCheck {
  kOk,
  kMissing,  // no Authorization header, or another scheme
  kInvalid,  // Bearer, with a token that is not ours
};

// Checks an Authorization header value (nullptr: absent) against
// `expected`. Both are hashed with SHA-256 and the digests compared with
// CRYPTO_memcmp, so the time taken does not depend on how much matches,
// nor on the expected token's length.
BearerCheck CheckBearer(const char* authorization, std::string_view expected);

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_HTTP_BEARER_AUTH_H_
