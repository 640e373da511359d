// The JWT failures the agent proves from the raw token (signature,
// algorithm, weak secret, header abuse, lifetimes, token in URL) arrive as
// findings on usage events; each becomes an alert of the same type.
#include "absl/strings/str_cat.h"
#include "collector/detect/detector.h"

namespace tokenwatch::collector {
namespace {

struct Rule {
  const char* type;
  const char* accepted_severity;  // the service accepted the token
  const char* other_severity;     // rejected, or no response seen
};

// A failure that the service accepted is the breach itself; one it
// rejected is an attempt.
constexpr Rule kRules[] = {
    {"alg_none", "critical", "high"},
    {"alg_not_allowed", "critical", "high"},
    {"invalid_signature", "critical", "medium"},
    {"weak_secret", "critical", "critical"},
    {"header_injection", "high", "medium"},
    {"no_expiry", "medium", "low"},
    {"long_lived", "low", "low"},
    {"token_in_url", "medium", "medium"},
};

class AgentFindings : public Detector {
 public:
  const char* type() const override { return "agent_findings"; }
  void Check(const TokenHistory&, const v1::UsageEvent& use,
             std::vector<Finding>* out) const override {
    for (const std::string& f : use.findings()) {
      for (const Rule& r : kRules) {
        if (f != r.type) continue;
        bool accepted = use.status() != 0 && use.status() < 400;
        auto detail = use.finding_details().find(f);
        std::string why =
            detail != use.finding_details().end() ? detail->second : f;
        out->push_back({r.type,
                        accepted ? r.accepted_severity : r.other_severity,
                        absl::StrCat(why, "; ", AcceptedWord(use.status()))});
      }
    }
  }
};

}  // namespace

std::unique_ptr<Detector> MakeAgentFindingsDetector(const config::Config&) {
  return std::make_unique<AgentFindings>();
}

}  // namespace tokenwatch::collector
