// One small logging facility for both binaries: a level, the program's name
// and one line on stderr ("tokenwatch-agent: warning: ..."). Library code
// logs through here, never with raw fprintf, so levels, rate limits and a
// test's capture apply everywhere. Messages never carry raw tokens.
#ifndef TOKENWATCH_COMMON_LOG_H_
#define TOKENWATCH_COMMON_LOG_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"

namespace tokenwatch::log {

enum class Level : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Set once at start-up ("tokenwatch-agent").
void SetProgramName(std::string_view name);
void SetMinLevel(Level level);
bool Enabled(Level level);
// Tests capture lines here instead of stderr; nullptr restores stderr.
using Sink = std::function<void(Level, std::string_view line)>;
void SetSinkForTesting(Sink sink);

void Write(Level level, std::string_view message);
// The one line a binary prints when a start-up step fails, before it exits:
// "tokenwatch-agent: FILE:LINE: key 'k': why" (error level, no tag, so the
// line starts with what it names).
void StartupFailure(std::string_view message);

template <typename... Args>
void Debug(const absl::FormatSpec<Args...>& format, const Args&... args) {
  if (Enabled(Level::kDebug))
    Write(Level::kDebug, absl::StrFormat(format, args...));
}
template <typename... Args>
void Info(const absl::FormatSpec<Args...>& format, const Args&... args) {
  if (Enabled(Level::kInfo))
    Write(Level::kInfo, absl::StrFormat(format, args...));
}
template <typename... Args>
void Warning(const absl::FormatSpec<Args...>& format, const Args&... args) {
  if (Enabled(Level::kWarning))
    Write(Level::kWarning, absl::StrFormat(format, args...));
}
template <typename... Args>
void Error(const absl::FormatSpec<Args...>& format, const Args&... args) {
  if (Enabled(Level::kError))
    Write(Level::kError, absl::StrFormat(format, args...));
}

// At most one line per `interval_us` from one call site (a hostile peer
// must not turn the log into a flood); the lines held back are counted and
// reported with the next one written. Thread-safe.
class RateLimit {
 public:
  explicit RateLimit(int64_t interval_us = 10'000'000)
      : interval_us_(interval_us) {}
  // True when a line may be written now; `*suppressed` is set to the number
  // held back since the last one.
  bool Allow(uint64_t* suppressed);

 private:
  int64_t interval_us_;
  std::atomic<int64_t> next_us_{0};
  std::atomic<uint64_t> held_{0};
};

}  // namespace tokenwatch::log

#endif  // TOKENWATCH_COMMON_LOG_H_
