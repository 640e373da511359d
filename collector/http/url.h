// Pieces of request targets: percent-decoding and digit checks.
#ifndef TOKENWATCH_COLLECTOR_HTTP_URL_H_
#define TOKENWATCH_COLLECTOR_HTTP_URL_H_

#include <optional>
#include <string>
#include <string_view>

namespace tokenwatch::collector::http {

// RFC 3986 percent-decoding; `plus_is_space` adds the form encoding of a
// query string. nullopt on a broken escape.
std::optional<std::string> PercentDecode(std::string_view s,
                                         bool plus_is_space);

// One or more ASCII digits and nothing else.
bool AllDigits(std::string_view s);

}  // namespace tokenwatch::collector::http

#endif  // TOKENWATCH_COLLECTOR_HTTP_URL_H_
