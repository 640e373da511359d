#include "common/alert_type.h"

namespace tokenwatch {
namespace {

struct TypeName {
  AlertType type;
  std::string_view name;
};

// The one name table (SPEC "Alert types", in its order).
constexpr TypeName kTypeNames[kAlertTypeCount] = {
    {AlertType::kCrossService, "cross_service"},
    {AlertType::kAudienceMismatch, "audience_mismatch"},
    {AlertType::kExpiredUse, "expired_use"},
    {AlertType::kNotYetValid, "not_yet_valid"},
    {AlertType::kSensitiveEndpoint, "sensitive_endpoint"},
    {AlertType::kAlgNone, "alg_none"},
    {AlertType::kAlgNotAllowed, "alg_not_allowed"},
    {AlertType::kInvalidSignature, "invalid_signature"},
    {AlertType::kWeakSecret, "weak_secret"},
    {AlertType::kHeaderInjection, "header_injection"},
    {AlertType::kNoExpiry, "no_expiry"},
    {AlertType::kLongLived, "long_lived"},
    {AlertType::kRevokedUse, "revoked_use"},
    {AlertType::kTokenInUrl, "token_in_url"},
    {AlertType::kMultiSource, "multi_source"},
    {AlertType::kRefreshTokenReuse, "refresh_token_reuse"},
    {AlertType::kInsecureTokenCookie, "insecure_token_cookie"},
    {AlertType::kTokenExposure, "token_exposure"},
    {AlertType::kKeyReuse, "key_reuse"},
    {AlertType::kSubjectTokenBurst, "subject_token_burst"},
};

constexpr bool TableInEnumOrder() {
  for (size_t i = 0; i < kAlertTypeCount; ++i) {
    if (static_cast<size_t>(kTypeNames[i].type) != i) return false;
  }
  return true;
}
static_assert(TableInEnumOrder(), "kTypeNames must follow AlertType's order");

constexpr std::string_view kSeverityNames[kSeverityCount] = {
    "low", "medium", "high", "critical"};

}  // namespace

std::string_view AlertTypeName(AlertType t) {
  size_t i = static_cast<size_t>(t);
  return i < kAlertTypeCount ? kTypeNames[i].name : std::string_view("unknown");
}

std::optional<AlertType> ParseAlertType(std::string_view name) {
  for (const TypeName& t : kTypeNames) {
    if (t.name == name) return t.type;
  }
  return std::nullopt;
}

const std::array<AlertType, kAlertTypeCount>& AllAlertTypes() {
  static const std::array<AlertType, kAlertTypeCount> all = [] {
    std::array<AlertType, kAlertTypeCount> a{};
    for (size_t i = 0; i < kAlertTypeCount; ++i) a[i] = kTypeNames[i].type;
    return a;
  }();
  return all;
}

std::string_view SeverityName(Severity s) {
  size_t i = static_cast<size_t>(s);
  return i < kSeverityCount ? kSeverityNames[i] : std::string_view("unknown");
}

std::optional<Severity> ParseSeverity(std::string_view name) {
  for (size_t i = 0; i < kSeverityCount; ++i) {
    if (kSeverityNames[i] == name) return static_cast<Severity>(i);
  }
  return std::nullopt;
}

}  // namespace tokenwatch
