// not_yet_valid: used before nbf, or carrying an iat in the future, beyond
// the leeway (a forged or mis-minted token, or a badly wrong clock).
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "collector/detect/detector.h"

namespace tokenwatch::collector {
namespace {

class NotYetValid : public Detector {
 public:
  explicit NotYetValid(const config::Config& c)
      : leeway_us_(absl::ToInt64Microseconds(c.detections.clock_leeway)) {}
  static constexpr AlertType kType = AlertType::kNotYetValid;
  std::string_view name() const override { return AlertTypeName(kType); }
  void Check(const TokenHistory&, const v1::UsageEvent& use,
             std::vector<Finding>* out) const override {
    const v1::TokenInfo& t = use.token();
    Severity severity = SeverityByOutcome(use, Severity::kHigh, Severity::kLow,
                          Severity::kMedium);
    const int64_t latest_us = SaturatingAdd(use.ts_us(), leeway_us_);
    if (t.has_nbf() && latest_us < SecondsToUs(t.nbf())) {
      out->push_back(
          {kType, severity,
           absl::StrCat(
               "token used ",
               HumanDuration(SaturatingSub(t.nbf(), use.ts_us() / 1000000)),
               " before its nbf and ", AcceptedWord(use))});
      return;
    }
    if (t.has_iat() && latest_us < SecondsToUs(t.iat())) {
      out->push_back(
          {kType, severity,
           absl::StrCat(
               "token issued ",
               HumanDuration(SaturatingSub(t.iat(), use.ts_us() / 1000000)),
               " in the future (iat) and ", AcceptedWord(use))});
    }
  }

 private:
  int64_t leeway_us_;
};

}  // namespace

std::unique_ptr<Detector> MakeNotYetValidDetector(const config::Config& c) {
  return std::make_unique<NotYetValid>(c);
}

}  // namespace tokenwatch::collector
