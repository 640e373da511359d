// fp = hex(HMAC-SHA256(key, input))[0:32] (SPEC "Token identity"), with the
// key schedule done once: each call copies a keyed context.
#ifndef TOKENWATCH_AGENT_TOKEN_FINGERPRINT_H_
#define TOKENWATCH_AGENT_TOKEN_FINGERPRINT_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

struct evp_mac_ctx_st;

namespace tokenwatch::token {

class Fingerprinter {
 public:
  static absl::StatusOr<std::unique_ptr<Fingerprinter>> Create(
      std::string_view key);
  // Reads the key file's bytes exactly as stored. A file that group or
  // others may access in any way (mode & 077) is refused, as ssh refuses
  // such a private key: PermissionDenied, naming the file, its mode and the
  // chmod that fixes it.
  static absl::StatusOr<std::unique_ptr<Fingerprinter>> FromFile(
      const std::string& path);
  ~Fingerprinter();

  std::string Fingerprint(std::string_view input) const;

 private:
  explicit Fingerprinter(evp_mac_ctx_st* keyed) : keyed_(keyed) {}
  evp_mac_ctx_st* keyed_;
};

}  // namespace tokenwatch::token

#endif  // TOKENWATCH_AGENT_TOKEN_FINGERPRINT_H_
