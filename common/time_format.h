// The one timestamp format of every output (events, alerts, API, store,
// notifications): RFC 3339 in UTC with milliseconds,
// "2026-11-30T10:15:03.120Z".
#ifndef TOKENWATCH_COMMON_TIME_FORMAT_H_
#define TOKENWATCH_COMMON_TIME_FORMAT_H_

#include <cstdint>
#include <string>

namespace tokenwatch {

// Appends the timestamp of `ts_us` (microseconds since the Unix epoch),
// without quotes. Times before the epoch round down, as absl does.
void AppendTimestamp(std::string* out, int64_t ts_us);
std::string FormatTimestamp(int64_t ts_us);

}  // namespace tokenwatch

#endif  // TOKENWATCH_COMMON_TIME_FORMAT_H_
