// JSON string escaping shared by the agent and the collector: quotes,
// backslashes and control characters escaped; invalid UTF-8 becomes U+FFFD,
// so every document written is valid JSON whatever bytes the wire carried.
#ifndef TOKENWATCH_AGENT_UTIL_JSON_H_
#define TOKENWATCH_AGENT_UTIL_JSON_H_

#include <string>
#include <string_view>

namespace tokenwatch::util {

// Appends `s` as a JSON string literal, quotes included.
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace tokenwatch::util

#endif  // TOKENWATCH_AGENT_UTIL_JSON_H_
