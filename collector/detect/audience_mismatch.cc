// audience_mismatch: the service declares the audiences it accepts and the
// token names none of them.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/detect/detector.h"

namespace tokenwatch::collector {
namespace {

class AudienceMismatch : public Detector {
 public:
  explicit AudienceMismatch(const config::Config& c) : config_(c) {}
  static constexpr AlertType kType = AlertType::kAudienceMismatch;
  std::string_view name() const override { return AlertTypeName(kType); }
  void Check(const TokenHistory&, const v1::UsageEvent& use,
             std::vector<Finding>* out) const override {
    if (use.token().kind() != v1::TOKEN_KIND_JWT) return;  // opaque: no aud
    for (const config::Service& s : config_.services) {
      if (s.name != use.service() || s.audiences.empty()) continue;
      if (AudienceCovers(config_, s.name, use.token())) return;
      bool accepted = UseAccepted(use).value_or(false);
      std::vector<std::string> aud(use.token().aud().begin(),
                                   use.token().aud().end());
      out->push_back({kType, accepted ? Severity::kHigh : Severity::kMedium,
                      absl::StrCat("token aud [", absl::StrJoin(aud, ", "),
                                   "] names none of ", s.name, "'s audiences [",
                                   absl::StrJoin(s.audiences, ", "), "]; ",
                                   AcceptedWord(use))});
      return;
    }
  }

 private:
  const config::Config& config_;
};

}  // namespace

std::unique_ptr<Detector> MakeAudienceMismatchDetector(
    const config::Config& c) {
  return std::make_unique<AudienceMismatch>(c);
}

}  // namespace tokenwatch::collector
