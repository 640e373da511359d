#include "collector/health.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/json.h"

namespace tokenwatch::collector {

std::string HealthJson(IngestService& service, const Store* store) {
  const bool ok = service.last_commit_ok();
  std::string reason;
  if (!ok) {
    util::AppendJsonString(
        &reason, store != nullptr ? store->LastCommitError() : std::string());
  }
  return service.WithEngine([&](Engine& e) {
    return absl::StrFormat(
        R"({"status":"%s",%s"open_streams":%d,"tokens_tracked":%d,)"
        R"("bytes_per_token":%.1f,"events":%d,"alerts":%d})",
        ok ? "ok" : "store_failing",
        ok ? "" : absl::StrCat("\"reason\":", reason, ","),
        service.open_streams(), e.tokens().size(), e.tokens().bytes_per_token(),
        e.stats().events, e.stats().alerts_raised);
  });
}

}  // namespace tokenwatch::collector
