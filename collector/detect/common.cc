#include <limits>

#include "absl/strings/str_cat.h"
#include "collector/detect/detector.h"

namespace tokenwatch::collector {

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_add_overflow(a, b, &r)) return r;
  return b > 0 ? std::numeric_limits<int64_t>::max()
               : std::numeric_limits<int64_t>::min();
}

int64_t SaturatingSub(int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_sub_overflow(a, b, &r)) return r;
  return b < 0 ? std::numeric_limits<int64_t>::max()
               : std::numeric_limits<int64_t>::min();
}

int64_t SecondsToUs(int64_t seconds) {
  int64_t r;
  if (!__builtin_mul_overflow(seconds, int64_t{1000000}, &r)) return r;
  return seconds > 0 ? std::numeric_limits<int64_t>::max()
                     : std::numeric_limits<int64_t>::min();
}

std::string HumanDuration(int64_t s) {
  if (s < 0) s = s == std::numeric_limits<int64_t>::min() ? -(s + 1) : -s;
  std::string out;
  int64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
  if (d > 0) absl::StrAppend(&out, d, "d");
  if (h > 0) absl::StrAppend(&out, h, "h");
  if (m > 0) absl::StrAppend(&out, m, "m");
  if (sec > 0 || out.empty()) absl::StrAppend(&out, sec, "s");
  return out;
}

bool AudienceCovers(const config::Config& config, std::string_view service,
                    const v1::TokenInfo& token) {
  for (const config::Service& s : config.services) {
    if (s.name != service) continue;
    if (s.audiences.empty()) break;
    for (const std::string& want : s.audiences) {
      for (const std::string& have : token.aud()) {
        if (want == have) return true;
      }
    }
    return false;
  }
  for (const std::string& have : token.aud()) {
    if (have == service) return true;
  }
  return false;
}

const char* AcceptedWord(uint32_t status) {
  if (status == 0) return "no response was seen";
  return status < 400 ? "the service accepted it" : "the service rejected it";
}

std::vector<std::unique_ptr<Detector>> MakeDetectors(
    const config::Config& config, RevocationList* revocations) {
  std::vector<std::unique_ptr<Detector>> out;
  out.push_back(MakeCrossServiceDetector(config));
  out.push_back(MakeAudienceMismatchDetector(config));
  out.push_back(MakeExpiredUseDetector(config));
  out.push_back(MakeNotYetValidDetector(config));
  out.push_back(MakeSensitiveEndpointDetector(config));
  out.push_back(MakeMultiSourceDetector(config));
  out.push_back(MakeAgentFindingsDetector(config));
  out.push_back(MakeRevokedUseDetector(revocations));
  return out;
}

}  // namespace tokenwatch::collector
