// The weak_secret check: is an HS256/384/512 token signed with a secret from
// a public wordlist (detections.weak_secrets_file, e.g. wallarm's
// jwt.secrets.list, ~104k entries)? Brute force over the list, one HMAC per
// entry, so it belongs on a worker thread with the result cached per token.
//
// Immutable after loading: FindSecret is const and keeps its per-call state
// on the stack, so any number of threads may search one list at once.
#ifndef TOKENWATCH_AGENT_JOSE_WEAK_SECRET_H_
#define TOKENWATCH_AGENT_JOSE_WEAK_SECRET_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

struct evp_mac_st;

namespace tokenwatch::jose {

class WeakSecretList {
 public:
  // One secret per line, bytes as they are (spaces and '#' are part of a
  // secret: the list holds "#######" and " secret"). LF or CRLF line ends,
  // a final line with or without a newline. Blank lines, lines longer than
  // kMaxSecretBytes and repeats are skipped and counted in load_stats().
  // Entry 0 is always the empty secret (line 0): the key a kid of
  // "../../dev/null" makes a file-reading verifier use, and what an unset
  // environment variable gives.
  static absl::StatusOr<WeakSecretList> FromFile(const std::string& path);
  static WeakSecretList FromText(std::string_view text);

  static constexpr size_t kMaxSecretBytes = 4096;
  static constexpr size_t kMaxSecrets = 10'000'000;

  WeakSecretList(WeakSecretList&&) noexcept;
  WeakSecretList& operator=(WeakSecretList&&) noexcept;
  WeakSecretList(const WeakSecretList&) = delete;
  WeakSecretList& operator=(const WeakSecretList&) = delete;
  ~WeakSecretList();

  // The index of the first secret whose HMAC of `signing_input`
  // (header.payload, as on the wire) equals `signature_raw` (the decoded
  // signature), or nullopt. `alg` is HS256, HS384 or HS512; any other alg,
  // or a signature of the wrong length, gives nullopt at once.
  std::optional<size_t> FindSecret(std::string_view signing_input,
                                   std::string_view signature_raw,
                                   std::string_view alg) const;

  // The same from a compact JWS: splits it and decodes the signature.
  std::optional<size_t> FindSecretForToken(std::string_view token,
                                           std::string_view alg) const;

  // Secrets tried per token, the empty one included.
  size_t size() const { return entries_.size(); }
  std::string_view secret(size_t index) const {
    const Entry& e = entries_[index];
    return std::string_view(blob_).substr(e.offset, e.length);
  }
  // 1-based line of the secret in the file, for an alert's detail (so the
  // secret itself need not be repeated); 0 for the built-in empty secret.
  size_t line(size_t index) const { return entries_[index].line; }

  struct LoadStats {
    size_t lines = 0;
    size_t blank = 0;
    size_t too_long = 0;
    size_t duplicates = 0;
    size_t over_limit = 0;  // lines past kMaxSecrets
  };
  const LoadStats& load_stats() const { return stats_; }

 private:
  WeakSecretList();

  struct Entry {
    uint64_t offset;
    uint32_t length;
    uint32_t line;
  };
  std::string blob_;  // every secret, back to back (one allocation)
  std::vector<Entry> entries_;
  LoadStats stats_;
  evp_mac_st* mac_ = nullptr;  // HMAC, fetched once
};

}  // namespace tokenwatch::jose

#endif  // TOKENWATCH_AGENT_JOSE_WEAK_SECRET_H_
