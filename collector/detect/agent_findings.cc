// The JWT failures the agent proves from the raw token (signature,
// algorithm, weak secret, header abuse, lifetimes, token in URL) arrive as
// findings on usage events; each becomes an alert of the same type.
#include <array>
#include <optional>

#include "absl/strings/str_cat.h"
#include "collector/detect/detector.h"

namespace tokenwatch::collector {
namespace {

struct Rule {
  AlertType type;
  Severity accepted;  // the service accepted the token
  Severity other;     // rejected, or no response seen
};

// A failure that the service accepted is the breach itself; one it
// rejected is an attempt.
constexpr Rule kRules[] = {
    {AlertType::kAlgNone, Severity::kCritical, Severity::kHigh},
    {AlertType::kAlgNotAllowed, Severity::kCritical, Severity::kHigh},
    {AlertType::kInvalidSignature, Severity::kCritical, Severity::kMedium},
    {AlertType::kWeakSecret, Severity::kCritical, Severity::kCritical},
    {AlertType::kHeaderInjection, Severity::kHigh, Severity::kMedium},
    {AlertType::kNoExpiry, Severity::kMedium, Severity::kLow},
    {AlertType::kLongLived, Severity::kLow, Severity::kLow},
    {AlertType::kTokenInUrl, Severity::kMedium, Severity::kMedium},
};

// The rule of each type, or null: the agent reports only the types above,
// and findings of any other type are ignored.
constexpr std::array<const Rule*, kAlertTypeCount> RulesByType() {
  std::array<const Rule*, kAlertTypeCount> out{};
  for (const Rule& r : kRules) out[static_cast<size_t>(r.type)] = &r;
  return out;
}
constexpr std::array<const Rule*, kAlertTypeCount> kRuleOf = RulesByType();

class AgentFindings : public Detector {
 public:
  std::string_view name() const override { return "agent_findings"; }
  void Check(const TokenHistory&, const v1::UsageEvent& use,
             std::vector<Finding>* out) const override {
    // Names arrive from the wire: each is parsed once, here; an unknown
    // name (a newer agent) is ignored.
    for (const std::string& f : use.findings()) {
      std::optional<AlertType> type = ParseAlertType(f);
      if (!type) continue;
      const Rule* r = kRuleOf[static_cast<size_t>(*type)];
      if (r == nullptr) continue;
      bool accepted = UseAccepted(use).value_or(false);
      auto detail = use.finding_details().find(f);
      std::string why =
          detail != use.finding_details().end() ? detail->second : f;
      out->push_back({r->type, accepted ? r->accepted : r->other,
                      absl::StrCat(why, "; ", AcceptedWord(use))});
    }
  }
};

}  // namespace

std::unique_ptr<Detector> MakeAgentFindingsDetector(const config::Config&) {
  return std::make_unique<AgentFindings>();
}

}  // namespace tokenwatch::collector
