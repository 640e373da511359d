// libFuzzer target: the configuration loader on arbitrary YAML. yaml-cpp
// throws on malformed documents and on failed conversions; ParseConfig
// must turn every one into a Status (an escaping exception aborts here).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/config.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenwatch;
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<config::Config> cfg = config::ParseConfig(yaml, "fuzz.yaml");
  if (!cfg.ok()) {
    // Errors name the file (and a line when known).
    FUZZ_CHECK(cfg.status().message().find("fuzz.yaml") !=
               absl::string_view::npos);
  }
  (void)config::ParseDuration(yaml.substr(0, 64));
  return 0;
}
