#include "collector/health.h"

#include "absl/strings/str_format.h"

namespace tokenwatch::collector {

std::string HealthJson(IngestService& service) {
  return service.WithEngine([&service](Engine& e) {
    return absl::StrFormat(
        R"({"status":"%s","open_streams":%d,"tokens_tracked":%d,)"
        R"("bytes_per_token":%.1f,"events":%d,"alerts":%d})",
        service.last_commit_ok() ? "ok" : "store_failing",
        service.open_streams(), e.tokens().size(), e.tokens().bytes_per_token(),
        e.stats().events, e.stats().alerts_raised);
  });
}

}  // namespace tokenwatch::collector
