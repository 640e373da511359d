// multi_source: one token identity used from at least min_sources client
// addresses within the window (a stolen token used from elsewhere).
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "collector/detect/detector.h"

namespace tokenwatch::collector {
namespace {

class MultiSource : public Detector {
 public:
  explicit MultiSource(const config::Config& c)
      : min_(static_cast<size_t>(c.detections.multi_source.min_sources)),
        window_(c.detections.multi_source.window) {}
  static constexpr AlertType kType = AlertType::kMultiSource;
  std::string_view name() const override { return AlertTypeName(kType); }
  void Check(const TokenHistory& h, const v1::UsageEvent& use,
             std::vector<Finding>* out) const override {
    if (h.recent_sources < min_) return;
    out->push_back({kType, Severity::kMedium,
                    absl::StrCat("token used from ", h.recent_sources,
                                 " client addresses within ",
                                 absl::FormatDuration(window_), ", the latest ",
                                 use.client())});
  }

 private:
  size_t min_;
  absl::Duration window_;
};

}  // namespace

std::unique_ptr<Detector> MakeMultiSourceDetector(const config::Config& c) {
  return std::make_unique<MultiSource>(c);
}

}  // namespace tokenwatch::collector
