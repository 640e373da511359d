// The alert vocabulary shared by the agent (findings it proves from the raw
// token) and the collector (alerts it raises): one enum, one name table
// (SPEC "Alert types"). Names cross the wire and reach stores, metrics and
// alert records; code compares the enum, never the strings.
#ifndef TOKENWATCH_COMMON_ALERT_TYPE_H_
#define TOKENWATCH_COMMON_ALERT_TYPE_H_

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace tokenwatch {

enum class AlertType : uint8_t {
  kCrossService,
  kAudienceMismatch,
  kExpiredUse,
  kNotYetValid,
  kSensitiveEndpoint,
  kAlgNone,
  kAlgNotAllowed,
  kInvalidSignature,
  kWeakSecret,
  kHeaderInjection,
  kNoExpiry,
  kLongLived,
  kRevokedUse,
  kTokenInUrl,
  kMultiSource,
  kRefreshTokenReuse,
  kInsecureTokenCookie,
  kTokenExposure,
  kKeyReuse,
  kSubjectTokenBurst,
};
inline constexpr size_t kAlertTypeCount = 20;

enum class Severity : uint8_t { kLow, kMedium, kHigh, kCritical };
inline constexpr size_t kSeverityCount = 4;

// SPEC's name: "expired_use", "alg_none", ...
std::string_view AlertTypeName(AlertType t);
std::optional<AlertType> ParseAlertType(std::string_view name);
// Every type in SPEC's table order (for metrics that pre-create series).
const std::array<AlertType, kAlertTypeCount>& AllAlertTypes();

// "low" | "medium" | "high" | "critical".
std::string_view SeverityName(Severity s);
std::optional<Severity> ParseSeverity(std::string_view name);

}  // namespace tokenwatch

#endif  // TOKENWATCH_COMMON_ALERT_TYPE_H_
