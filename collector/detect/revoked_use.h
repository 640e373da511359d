// The revocation list: jtis from `detections.revoked_jtis_file` (re-read
// when it changes, without a restart) and from POST /api/v1/revocations
// (appended to that file when one is configured, so they survive a restart).
#ifndef TOKENWATCH_COLLECTOR_DETECT_REVOKED_USE_H_
#define TOKENWATCH_COLLECTOR_DETECT_REVOKED_USE_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"

namespace tokenwatch::collector {

class RevocationList {
 public:
  explicit RevocationList(std::string file) : file_(std::move(file)) {}
  // Reads the file if it changed since the last read (cheap otherwise).
  absl::Status MaybeReload();
  absl::Status Add(const std::vector<std::string>& jtis);
  bool Contains(const std::string& jti) const;
  size_t size() const;

 private:
  std::string file_;
  mutable std::mutex mu_;
  absl::flat_hash_set<std::string> from_file_, added_;
  int64_t mtime_ns_ = -1;
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_DETECT_REVOKED_USE_H_
