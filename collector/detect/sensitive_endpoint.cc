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
  explicit SensitiveEndpoint(const config::Config& c) : config_(c) {}
  const char* type() const override { return "sensitive_endpoint"; }
  void Check(const TokenHistory&, const v1::UsageEvent& use,
             std::vector<Finding>* out) const override {
    for (const config::SensitiveEndpoint& ep : config_.sensitive_endpoints) {
      if (!ep.service.empty() && ep.service != use.service()) continue;
      if (!ep.method.empty() && ep.method != use.method()) continue;
      if (!PathGlobMatches(ep.path, use.path())) continue;
      std::vector<std::string> missing;
      for (const std::string& want : ep.required_scopes) {
        bool have = false;
        for (const std::string& s : use.token().scopes()) have |= s == want;
        if (!have) missing.push_back(want);
      }
      bool accepted = use.status() != 0 && use.status() < 400;
      std::string severity =
          !missing.empty() && accepted ? "critical" : ep.severity;
      std::string detail = absl::StrCat(
          use.method(), " ", use.path(), " matches sensitive endpoint ",
          ep.method.empty() ? "" : ep.method + " ", ep.path);
      if (!missing.empty()) {
        absl::StrAppend(&detail, "; token lacks required scope ",
                        absl::StrJoin(missing, ", "));
      }
      absl::StrAppend(&detail, "; ", AcceptedWord(use.status()));
      out->push_back({type(), severity, detail});
      return;  // one alert per use
    }
  }

 private:
  const config::Config& config_;
};

}  // namespace

std::unique_ptr<Detector> MakeSensitiveEndpointDetector(
    const config::Config& c) {
  return std::make_unique<SensitiveEndpoint>(c);
}

}  // namespace tokenwatch::collector
