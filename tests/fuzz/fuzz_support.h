// Shared by the fuzz targets: a byte reader that splits one input into
// records, exact-size heap copies (so ASan sees any over-read), an invariant
// check that aborts, and the per-pipeline objects an HTTP session needs.
#ifndef TOKENWATCH_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define TOKENWATCH_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/http/session.h"
#include "agent/output/event_folder.h"
#include "agent/output/event_sink.h"
#include "agent/service/attribution.h"
#include "agent/stats.h"
#include "agent/token/extractor.h"
#include "agent/token/fingerprint.h"
#include "agent/token/token_cache.h"
#include "agent/token/usage_tracker.h"
#include "common/config.h"

namespace tokenwatch::fuzz {

// A broken invariant is a finding: abort so libFuzzer (and the regression
// driver) report it. The message never carries input bytes.
#define FUZZ_CHECK(cond)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
              #cond);                                                      \
      abort();                                                             \
    }                                                                      \
  } while (0)

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), left_(size) {}
  bool empty() const { return left_ == 0; }
  size_t left() const { return left_; }
  uint8_t U8() {
    if (left_ == 0) return 0;
    --left_;
    return *p_++;
  }
  uint16_t U16() { return static_cast<uint16_t>(U8() << 8 | U8()); }
  uint32_t U32() { return static_cast<uint32_t>(U16()) << 16 | U16(); }
  // Up to `n` bytes (fewer at the end of the input).
  std::string_view Bytes(size_t n) {
    if (n > left_) n = left_;
    std::string_view v(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    left_ -= n;
    return v;
  }
  std::string_view Rest() { return Bytes(left_); }

 private:
  const uint8_t* p_;
  size_t left_;
};

// An exact-size heap copy: reading one byte past it is an ASan report.
class Buffer {
 public:
  explicit Buffer(std::string_view bytes)
      : data_(new uint8_t[bytes.size() + (bytes.empty() ? 1 : 0)]),
        size_(bytes.size()) {
    if (!bytes.empty()) memcpy(data_.get(), bytes.data(), bytes.size());
  }
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  std::unique_ptr<uint8_t[]> data_;
  size_t size_;
};

// Reads every byte (ASan reports a read outside the object).
inline void Touch(const uint8_t* p, size_t n) {
  uint8_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += p[i];
  static volatile uint8_t sink;
  sink = sum;
}

inline const token::Fingerprinter* TestFingerprinter() {
  static const token::Fingerprinter* fp =
      token::Fingerprinter::Create("fuzz-key")->release();
  return fp;
}

// A config with a service and an extra token header, so attribution and
// every token location are reachable.
inline config::Config FuzzConfig() {
  config::Config cfg;
  cfg.agent.fold_window = absl::Seconds(1);
  cfg.agent.token_headers = {"x-api-token"};
  cfg.services.push_back({"orders", {{"orders.internal"}, {}}, {}});
  cfg.agent.limits.max_flows = 8;
  cfg.agent.limits.flow_buffer_bytes = 4096;
  cfg.agent.limits.total_buffer_bytes = 16384;
  cfg.agent.limits.max_header_bytes = 2048;
  cfg.agent.limits.max_pending_requests = 8;
  return cfg;
}

// Counts events; checks none is empty of what every event must carry.
class CheckingSink : public output::EventSink {
 public:
  void Emit(const output::UsageRecord& r) override { ++events; }
  void Flush() override {}
  size_t events = 0;
};

// The layers above the stream layer, as Pipeline builds them: the HTTP/1
// analyzer's shared context and factory, the token layer, the folder.
struct SessionWorld {
  explicit SessionWorld(const config::Config& cfg)
      : extractor(cfg.agent.token_headers, &stats),
        tokens(TestFingerprinter(), 64, &stats),
        attributor(cfg.services),
        folder(absl::ToInt64Microseconds(cfg.agent.fold_window), 16, &sink),
        usage("fuzz", &extractor, &tokens, &attributor, &folder, &stats),
        analyzers(&ctx) {
    ctx.max_header_bytes = cfg.agent.limits.max_header_bytes;
    ctx.max_pending_requests = cfg.agent.limits.max_pending_requests;
    ctx.stats = &stats;
    ctx.observer = &usage;
    ctx.clock = &clock;
  }
  AgentStats stats;
  CheckingSink sink;
  token::Extractor extractor;
  token::TokenCache tokens;
  service::Attributor attributor;
  output::EventFolder folder;
  token::UsageTracker usage;
  analyzer::PacketClock clock;
  http::SessionContext ctx;
  http::Http1AnalyzerFactory analyzers;
};

}  // namespace tokenwatch::fuzz

#endif  // TOKENWATCH_TESTS_FUZZ_FUZZ_SUPPORT_H_
