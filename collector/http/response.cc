#include "collector/http/response.h"

#include <utility>

#include "common/json.h"

namespace tokenwatch::collector::http {

Response JsonResponse(std::string body) {
  Response r;
  r.body = std::move(body);
  return r;
}

Response ErrorResponse(int status, std::string_view message) {
  Response r;
  r.status = status;
  r.body = "{\"error\":";
  util::AppendJsonString(&r.body, message);
  r.body.push_back('}');
  return r;
}

Response MethodNotAllowed(std::string_view allow) {
  Response r = ErrorResponse(405, "method not allowed");
  r.allow = allow;
  return r;
}

Response StatusResponse(const absl::Status& status) {
  int http = 500;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      http = 400;
      break;
    case absl::StatusCode::kUnavailable:
      http = 503;
      break;
    default:
      break;
  }
  return ErrorResponse(http, std::string(status.message()));
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

}  // namespace tokenwatch::collector::http
