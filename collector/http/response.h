// What an API handler answers: a status, a body and the few headers that
// vary. Errors are JSON {"error":"..."}.
#ifndef TOKENWATCH_COLLECTOR_HTTP_RESPONSE_H_
#define TOKENWATCH_COLLECTOR_HTTP_RESPONSE_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace tokenwatch::collector::http {

inline constexpr std::string_view kJson = "application/json";
inline constexpr std::string_view kPrometheusText = "text/plain; version=0.0.4";

struct Response {
  int status = 200;
  std::string_view content_type = kJson;  // static strings only
  std::string body;
  std::string_view allow;             // the Allow header of a 405
  std::string_view www_authenticate;  // the challenge of a 401
  int retry_after_s = 0;              // > 0: the Retry-After of a 429
};

Response JsonResponse(std::string body);
Response ErrorResponse(int status, std::string_view message);
Response MethodNotAllowed(std::string_view allow);
// A failed Store or hook call, by canonical code: 400 for InvalidArgument
// and OutOfRange, 503 for Unavailable, else 500. The message is ours or
// the store's and never holds a raw token (none is ever stored).
Response StatusResponse(const absl::Status& status);

// "OK", "Not Found", ... for the status line.
std::string_view ReasonPhrase(int status);

}  // namespace tokenwatch::collector::http

#endif  // TOKENWATCH_COLLECTOR_HTTP_RESPONSE_H_
