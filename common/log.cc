#include "common/log.h"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

namespace tokenwatch::log {
namespace {

struct State {
  std::mutex mu;
  std::string program = "tokenwatch";
  Sink sink;
};

State& GetState() {
  static State* s = new State();  // never destroyed: threads may log at exit
  return *s;
}

std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};

const char* Tag(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug: ";
    case Level::kInfo:
      return "";
    case Level::kWarning:
      return "warning: ";
    case Level::kError:
      return "error: ";
  }
  return "";
}

int64_t MonotonicUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void SetProgramName(std::string_view name) {
  State& s = GetState();
  std::lock_guard<std::mutex> lock(s.mu);
  s.program.assign(name);
}

void SetMinLevel(Level level) { g_min_level = static_cast<int>(level); }

bool Enabled(Level level) { return static_cast<int>(level) >= g_min_level; }

void SetSinkForTesting(Sink sink) {
  State& s = GetState();
  std::lock_guard<std::mutex> lock(s.mu);
  s.sink = std::move(sink);
}

namespace {
void WriteLine(Level level, const char* tag, std::string_view message) {
  State& s = GetState();
  std::lock_guard<std::mutex> lock(s.mu);
  std::string line = s.program;
  line.append(": ").append(tag).append(message);
  if (s.sink) {
    s.sink(level, line);
    return;
  }
  line.push_back('\n');
  fwrite(line.data(), 1, line.size(), stderr);
}
}  // namespace

void Write(Level level, std::string_view message) {
  WriteLine(level, Tag(level), message);
}

void StartupFailure(std::string_view message) {
  WriteLine(Level::kError, "", message);
}

bool RateLimit::Allow(uint64_t* suppressed) {
  int64_t now = MonotonicUs();
  int64_t next = next_us_.load(std::memory_order_relaxed);
  if (now >= next &&
      next_us_.compare_exchange_strong(next, now + interval_us_)) {
    *suppressed = held_.exchange(0);
    return true;
  }
  held_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace tokenwatch::log
