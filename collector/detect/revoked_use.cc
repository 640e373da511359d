// revoked_use: a token whose jti is on the revocation list is used anywhere
// in the fleet.
#include "collector/detect/revoked_use.h"

#include <sys/stat.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "collector/detect/detector.h"

namespace tokenwatch::collector {
namespace {

int64_t MtimeOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
         st.st_mtim.tv_nsec;
}

std::string Trim(std::string s) {
  while (!s.empty() &&
         (s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

class RevokedUse : public Detector {
 public:
  explicit RevokedUse(RevocationList* list) : list_(list) {}
  static constexpr AlertType kType = AlertType::kRevokedUse;
  std::string_view name() const override { return AlertTypeName(kType); }
  void Check(const TokenHistory&, const v1::UsageEvent& use,
             std::vector<Finding>* out) const override {
    if (list_ == nullptr || use.token().jti().empty() ||
        !list_->Contains(use.token().jti()))
      return;
    bool accepted = UseAccepted(use).value_or(false);
    out->push_back({kType, accepted ? Severity::kCritical : Severity::kHigh,
                    absl::StrCat("jti ", use.token().jti(), " is revoked; ",
                                 AcceptedWord(use))});
  }

 private:
  RevocationList* list_;
};

}  // namespace

absl::Status RevocationList::MaybeReload() {
  if (file_.empty()) return absl::OkStatus();
  int64_t mtime = MtimeOf(file_);
  std::lock_guard<std::mutex> lock(mu_);
  if (mtime == mtime_ns_) return absl::OkStatus();
  std::ifstream in(file_);
  if (!in) {
    mtime_ns_ = mtime;
    return mtime < 0
               ? absl::OkStatus()  // not there (yet): nothing revoked by file
               : absl::NotFoundError(
                     absl::StrCat("cannot read revoked_jtis_file ", file_));
  }
  absl::flat_hash_set<std::string> jtis;
  std::string line;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (!line.empty() && line[0] != '#') jtis.insert(line);
  }
  from_file_ = std::move(jtis);
  mtime_ns_ = mtime;
  return absl::OkStatus();
}

absl::Status RevocationList::Add(const std::vector<std::string>& jtis) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!file_.empty()) {
    std::ofstream out(file_, std::ios::app);
    if (!out)
      return absl::UnavailableError(absl::StrCat("cannot append to ", file_));
    for (const std::string& j : jtis) out << j << "\n";
    out.flush();
    if (!out)
      return absl::UnavailableError(absl::StrCat("cannot append to ", file_));
  }
  for (const std::string& j : jtis) added_.insert(j);
  return absl::OkStatus();
}

bool RevocationList::Contains(const std::string& jti) const {
  std::lock_guard<std::mutex> lock(mu_);
  return from_file_.contains(jti) || added_.contains(jti);
}

size_t RevocationList::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return from_file_.size() + added_.size();
}

std::unique_ptr<Detector> MakeRevokedUseDetector(RevocationList* list) {
  return std::make_unique<RevokedUse>(list);
}

}  // namespace tokenwatch::collector
