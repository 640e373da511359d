// A parsed HTTP/1.x message head. Views point into the parser's bytes and
// are valid only for the duration of the callback that receives them.
#ifndef TOKENWATCH_AGENT_HTTP_MESSAGE_H_
#define TOKENWATCH_AGENT_HTTP_MESSAGE_H_

#include <array>
#include <cstddef>
#include <string_view>

#include "agent/analyzer/transaction.h"

namespace tokenwatch::http {

using Header = analyzer::Header;

struct MessageHead {
  static constexpr size_t kMaxHeaders = 128;

  bool is_request = true;
  std::string_view method;  // requests
  std::string_view target;  // requests: origin-, absolute- or authority-form
  int status = 0;           // responses
  int version_major = 1;
  int version_minor = 1;
  std::array<Header, kMaxHeaders> headers;
  size_t num_headers = 0;

  // The first header with this name (ASCII case-insensitive), or empty.
  std::string_view Find(std::string_view name) const;
  bool Has(std::string_view name) const;
};

// The request as analyzers raise it (method, target, headers); the caller
// adds endpoints, time and source.
inline analyzer::Request ToRequest(const MessageHead& head) {
  analyzer::Request req;
  req.protocol = analyzer::Protocol::kHttp1;
  req.method = head.method;
  req.target = head.target;
  req.headers = head.headers.data();
  req.num_headers = head.num_headers;
  return req;
}

}  // namespace tokenwatch::http

#endif  // TOKENWATCH_AGENT_HTTP_MESSAGE_H_
