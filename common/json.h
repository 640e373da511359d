// JSON string escaping shared by the agent and the collector: quotes,
// backslashes and control characters escaped; invalid UTF-8 becomes U+FFFD,
// so every document written is valid JSON whatever bytes the wire carried.
#ifndef TOKENWATCH_COMMON_JSON_H_
#define TOKENWATCH_COMMON_JSON_H_

#include <string>
#include <string_view>

namespace tokenwatch::util {

// Appends `s` as a JSON string literal, quotes included.
void AppendJsonString(std::string* out, std::string_view s);
// True when `s` is printable ASCII without '"' or backslash: written as is
// between quotes (AppendJsonString's fast path, for writers that lay out
// a whole line at once).
bool IsPlainJsonString(std::string_view s);

// The length of the valid UTF-8 sequence starting at s[i], 0 if none.
size_t Utf8SequenceAt(std::string_view s, size_t i);
bool IsValidUtf8(std::string_view s);
// Appends `s` with every byte that starts no valid sequence replaced by
// U+FFFD: protobuf rejects a message whose string fields are not UTF-8, so
// one hostile request path must not make a whole batch unreadable.
void AppendValidUtf8(std::string* out, std::string_view s);

}  // namespace tokenwatch::util

#endif  // TOKENWATCH_COMMON_JSON_H_
