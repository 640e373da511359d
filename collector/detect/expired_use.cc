// expired_use: used after exp + leeway. Critical when the service accepted
// it (it does not check expiry), low when it rejected it.
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "collector/detect/detector.h"

namespace tokenwatch::collector {
namespace {

class ExpiredUse : public Detector {
 public:
  explicit ExpiredUse(const config::Config& c)
      : leeway_s_(absl::ToInt64Seconds(c.detections.clock_leeway)) {}
  static constexpr AlertType kType = AlertType::kExpiredUse;
  std::string_view name() const override { return AlertTypeName(kType); }
  void Check(const TokenHistory&, const v1::UsageEvent& use,
             std::vector<Finding>* out) const override {
    if (!use.token().has_exp()) return;
    // Seconds are compared at microsecond precision: exactly exp + leeway
    // is still valid.
    int64_t late_us = SaturatingSub(
        use.ts_us(), SecondsToUs(SaturatingAdd(use.token().exp(), leeway_s_)));
    if (late_us <= 0) return;
    int64_t late_s = SaturatingSub(use.ts_us() / 1000000, use.token().exp());
    Severity severity = SeverityByOutcome(use, Severity::kCritical, Severity::kLow,
                          Severity::kMedium);
    out->push_back(
        {kType, severity,
         absl::StrCat("token expired ", HumanDuration(late_s),
                      " before use and ", AcceptedWord(use))});
  }

 private:
  int64_t leeway_s_;
};

}  // namespace

std::unique_ptr<Detector> MakeExpiredUseDetector(const config::Config& c) {
  return std::make_unique<ExpiredUse>(c);
}

}  // namespace tokenwatch::collector
