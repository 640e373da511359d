// cross_service: one token identity used at a second service, when the
// token's aud does not cover both (a token minted for orders replayed
// against payments).
#include "absl/strings/str_cat.h"
#include "collector/detect/detector.h"

namespace tokenwatch::collector {
namespace {

class CrossService : public Detector {
 public:
  explicit CrossService(const config::Config& c) : config_(c) {}
  static constexpr AlertType kType = AlertType::kCrossService;
  std::string_view name() const override { return AlertTypeName(kType); }
  void Check(const TokenHistory& h, const v1::UsageEvent& use,
             std::vector<Finding>* out) const override {
    if (h.services.empty()) return;
    const std::string& here = use.service();
    for (std::string_view s : h.services) {
      if (s == here) return;  // not a new service
    }
    bool here_covered = AudienceCovers(config_, here, use.token());
    for (std::string_view before : h.services) {
      if (here_covered && AudienceCovers(config_, before, use.token()))
        continue;
      out->push_back(
          {kType,
           SeverityByOutcome(use, Severity::kHigh, Severity::kMedium,
                             Severity::kHigh),
           absl::StrCat("token first used at ",
                        absl::string_view(before.data(), before.size()),
                        " is now used at ", here,
                        " and its aud does not cover both; ",
                        AcceptedWord(use))});
      return;
    }
  }

 private:
  const config::Config& config_;
};

}  // namespace

std::unique_ptr<Detector> MakeCrossServiceDetector(const config::Config& c) {
  return std::make_unique<CrossService>(c);
}

}  // namespace tokenwatch::collector
