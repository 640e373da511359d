// A parsed HTTP/1.x message head. Views point into the parser's bytes and
// are valid only for the duration of the callback that receives them.
#ifndef TOKENWATCH_AGENT_HTTP_MESSAGE_H_
#define TOKENWATCH_AGENT_HTTP_MESSAGE_H_

#include <array>
#include <cstddef>
#include <string_view>

namespace tokenwatch::http {

struct Header {
  std::string_view name;
  std::string_view value;
};

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

}  // namespace tokenwatch::http

#endif  // TOKENWATCH_AGENT_HTTP_MESSAGE_H_
