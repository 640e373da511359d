#include "common/time_format.h"

#include <cstdio>

#include "absl/time/time.h"

namespace tokenwatch {

void AppendTimestamp(std::string* out, int64_t ts_us) {
  // Outputs write times in near order: format the date and time once per
  // second (per thread) and append only the milliseconds.
  thread_local int64_t cached_sec = INT64_MIN;
  thread_local char cached[40];
  // Floor division without overflow, for any int64 (times come off the wire).
  int64_t sec = ts_us / 1000000;
  int64_t rem = ts_us % 1000000;
  if (rem < 0) {
    --sec;
    rem += 1000000;
  }
  int64_t ms = rem / 1000;
  if (sec != cached_sec) {
    std::string t = absl::FormatTime(
        "%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(sec), absl::UTCTimeZone());
    snprintf(cached, sizeof cached, "%s", t.c_str());
    cached_sec = sec;
  }
  char buf[56];
  int n = snprintf(buf, sizeof buf, "%s.%03dZ", cached, static_cast<int>(ms));
  if (n > 0)
    out->append(buf, static_cast<size_t>(n) < sizeof buf ? n : sizeof buf - 1);
}

std::string FormatTimestamp(int64_t ts_us) {
  std::string out;
  AppendTimestamp(&out, ts_us);
  return out;
}

}  // namespace tokenwatch
