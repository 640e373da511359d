// A detection is a small unit: given what is known about a token before
// this use, and the use itself, it says whether the use is suspicious. All
// time is observation time (the packet timestamps in the event).
#ifndef TOKENWATCH_COLLECTOR_DETECT_DETECTOR_H_
#define TOKENWATCH_COLLECTOR_DETECT_DETECTOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "collector/model.h"
#include "common/alert_type.h"
#include "common/config.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::collector {

class RevocationList;

// What the collector knew about the token before this use.
struct TokenHistory {
  const v1::TokenInfo* token = nullptr;    // latest claims (this use's)
  std::vector<std::string_view> services;  // services used before
  // Distinct client addresses seen within the multi-source window ending at
  // this use, this use's client included.
  size_t recent_sources = 1;
};

struct Finding {
  AlertType type;
  Severity severity;
  std::string detail;
};

class Detector {
 public:
  virtual ~Detector() = default;
  // Its label in tokenwatch_collector_detector_seconds_total: the name of
  // the alert type it raises, or "agent_findings" for the detector that
  // turns the agent's findings (several types) into alerts.
  virtual std::string_view name() const = 0;
  virtual void Check(const TokenHistory& history, const v1::UsageEvent& use,
                     std::vector<Finding>* out) const = 0;
};

// The detectors of this build, configured from `config` and the revocation
// list (may be null), which must outlive them.
std::vector<std::unique_ptr<Detector>> MakeDetectors(
    const config::Config& config, RevocationList* revocations = nullptr);

// Individual detectors (exposed for their tests).
std::unique_ptr<Detector> MakeCrossServiceDetector(
    const config::Config& config);
std::unique_ptr<Detector> MakeAudienceMismatchDetector(
    const config::Config& config);
std::unique_ptr<Detector> MakeExpiredUseDetector(const config::Config& config);
std::unique_ptr<Detector> MakeNotYetValidDetector(const config::Config& config);
std::unique_ptr<Detector> MakeSensitiveEndpointDetector(
    const config::Config& config);
std::unique_ptr<Detector> MakeMultiSourceDetector(const config::Config& config);
std::unique_ptr<Detector> MakeAgentFindingsDetector(
    const config::Config& config);
std::unique_ptr<Detector> MakeRevokedUseDetector(RevocationList* revocations);

// Helpers shared by detectors.
// Event times and token claims arrive from the wire as any int64: time
// arithmetic on them saturates instead of overflowing (signed overflow is
// undefined; found by tests/fuzz/intake_fuzzer.cc).
int64_t SaturatingAdd(int64_t a, int64_t b);
int64_t SaturatingSub(int64_t a, int64_t b);
int64_t SecondsToUs(int64_t seconds);
// "10m3s" style, as in SPEC's example detail.
std::string HumanDuration(int64_t seconds);
// true when the service's configured audiences intersect the token's aud.
// A service without configured audiences is covered only by an aud entry
// equal to its name.
bool AudienceCovers(const config::Config& config, std::string_view service,
                    const v1::TokenInfo& token);
// "the service accepted it", "... rejected it (grpc-status 16
// UNAUTHENTICATED)" or "no response was seen", after UseAccepted().
std::string AcceptedWord(const v1::UsageEvent& use);
// The severity of a finding whose weight depends on the outcome: `accepted`
// when the service accepted the use, `rejected` when it refused it, and
// `unknown` when no response (or no gRPC status) was seen.
Severity SeverityByOutcome(const v1::UsageEvent& use, Severity accepted,
                           Severity rejected, Severity unknown);

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_DETECT_DETECTOR_H_
