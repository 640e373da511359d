// sensitive_endpoint: a token touches a configured sensitive endpoint.
// Critical when the endpoint requires scopes the token lacks and the
// service accepted the call anyway.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/detect/detector.h"
#include "collector/detect/path_glob.h"

namespace tokenwatch::collector {
namespace {

class SensitiveEndpoint : public Detector {
 public:
  explicit SensitiveEndpoint(const config::Config& c) : config_(c) {
    // The loader accepts only the four names.
    for (const config::SensitiveEndpoint& ep : c.sensitive_endpoints) {
      severities_.push_back(
          ParseSeverity(ep.severity).value_or(Severity::kMedium));
    }
  }
  static constexpr AlertType kType = AlertType::kSensitiveEndpoint;
  std::string_view name() const override { return AlertTypeName(kType); }
  void Check(const TokenHistory&, const v1::UsageEvent& use,
             std::vector<Finding>* out) const override {
    for (size_t i = 0; i < config_.sensitive_endpoints.size(); ++i) {
      const config::SensitiveEndpoint& ep = config_.sensitive_endpoints[i];
      if (!ep.service.empty() && ep.service != use.service()) continue;
      if (!ep.method.empty() && ep.method != use.method()) continue;
      if (!PathGlobMatches(ep.path, use.path())) continue;
      std::vector<std::string> missing;
      for (const std::string& want : ep.required_scopes) {
        bool have = false;
        for (const std::string& s : use.token().scopes()) have |= s == want;
        if (!have) missing.push_back(want);
      }
      bool accepted = UseAccepted(use).value_or(false);
      Severity severity =
          !missing.empty() && accepted ? Severity::kCritical : severities_[i];
      std::string detail = absl::StrCat(
          use.method(), " ", use.path(), " matches sensitive endpoint ",
          ep.method.empty() ? "" : ep.method + " ", ep.path);
      if (!missing.empty()) {
        absl::StrAppend(&detail, "; token lacks required scope ",
                        absl::StrJoin(missing, ", "));
      }
      absl::StrAppend(&detail, "; ", AcceptedWord(use));
      out->push_back({kType, severity, detail});
      return;  // one alert per use
    }
  }

 private:
  const config::Config& config_;
  std::vector<Severity> severities_;  // of config_.sensitive_endpoints
};

}  // namespace

std::unique_ptr<Detector> MakeSensitiveEndpointDetector(
    const config::Config& c) {
  return std::make_unique<SensitiveEndpoint>(c);
}

}  // namespace tokenwatch::collector
