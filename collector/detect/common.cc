#include <iterator>
#include <limits>
#include <optional>
#include <string_view>

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

namespace {
// grpc/status.h's codes, by number (doc/statuscodes.md of gRPC).
constexpr std::string_view kGrpcCodes[] = {
    "OK",          "CANCELLED",         "UNKNOWN",
    "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS",   "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED",     "OUT_OF_RANGE",
    "UNIMPLEMENTED",    "INTERNAL",          "UNAVAILABLE",
    "DATA_LOSS",        "UNAUTHENTICATED"};
}  // namespace

std::string AcceptedWord(const v1::UsageEvent& use) {
  std::optional<bool> accepted = UseAccepted(use);
  if (!accepted.has_value()) {
    return use.status() == 0 ? "no response was seen"
                             : "no gRPC status was seen";
  }
  if (*accepted) return "the service accepted it";
  if (use.has_grpc_status() && use.grpc_status() != 0 && use.status() < 400) {
    uint32_t code = use.grpc_status();
    return absl::StrCat(
        "the service rejected it (grpc-status ", code,
        code < std::size(kGrpcCodes) ? " " + std::string(kGrpcCodes[code]) : "",
        ")");
  }
  return "the service rejected it";
}

Severity SeverityByOutcome(const v1::UsageEvent& use, Severity accepted,
                           Severity rejected, Severity unknown) {
  std::optional<bool> a = UseAccepted(use);
  if (!a.has_value()) return unknown;
  return *a ? accepted : rejected;
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
