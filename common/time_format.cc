#include "common/time_format.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/time/time.h"

namespace tokenwatch {

void AppendTimestamp(std::string* out, int64_t ts_us) {
  // Outputs write times in near order: format the date and time once per
  // second (per thread) and append only the milliseconds, digit by digit
  // (snprintf cost more than the rest of an event line).
  thread_local int64_t cached_sec = INT64_MIN;
  thread_local char cached[40];
  thread_local size_t cached_len = 0;
  // Floor division without overflow, for any int64 (times come off the wire).
  int64_t sec = ts_us / 1000000;
  int64_t rem = ts_us % 1000000;
  if (rem < 0) {
    --sec;
    rem += 1000000;
  }
  int ms = static_cast<int>(rem / 1000);
  if (sec != cached_sec) {
    std::string t = absl::FormatTime(
        "%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(sec), absl::UTCTimeZone());
    int n = snprintf(cached, sizeof cached, "%s", t.c_str());
    cached_len = n < 0 ? 0 : std::min<size_t>(n, sizeof cached - 1);
    cached_sec = sec;
  }
  char tail[5] = {'.', static_cast<char>('0' + ms / 100),
                  static_cast<char>('0' + ms / 10 % 10),
                  static_cast<char>('0' + ms % 10), 'Z'};
  size_t at = out->size();
  out->resize(at + cached_len + sizeof tail);
  std::memcpy(out->data() + at, cached, cached_len);
  std::memcpy(out->data() + at + cached_len, tail, sizeof tail);
}

std::string FormatTimestamp(int64_t ts_us) {
  std::string out;
  AppendTimestamp(&out, ts_us);
  return out;
}

}  // namespace tokenwatch
