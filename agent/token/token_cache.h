// Decode once, remember it: raw token bytes → decoded TokenInfo with its
// fingerprint. Two generations of at most `capacity` entries each: a hit in
// the older one is promoted, and when the newer fills up the older is
// dropped whole. O(1), bounded, no per-entry list.
#ifndef TOKENWATCH_AGENT_TOKEN_TOKEN_CACHE_H_
#define TOKENWATCH_AGENT_TOKEN_TOKEN_CACHE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "agent/output/usage_record.h"
#include "agent/stats.h"
#include "agent/token/fingerprint.h"
#include "agent/token/jwt.h"
#include "agent/token/token_checks.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::token {

using DecodedToken = output::TokenRef;

class TokenCache {
 public:
  // `checks` (optional) runs the raw-token checks on each new token.
  TokenCache(const Fingerprinter* fingerprinter, size_t capacity,
             AgentStats* stats, TokenChecks* checks = nullptr)
      : fingerprinter_(fingerprinter),
        capacity_(capacity),
        stats_(stats),
        decoder_(stats),
        checks_(checks) {}

  // Never null. Counts the token's kind and hit/miss.
  DecodedToken Lookup(std::string_view raw);
  size_t size() const { return young_.size() + old_.size(); }

 private:
  using Map = absl::flat_hash_map<std::string, DecodedToken>;
  void CountKind(const output::TokenRecord& record);
  const Fingerprinter* fingerprinter_;
  size_t capacity_;
  AgentStats* stats_;
  JwtDecoder decoder_;
  TokenChecks* checks_;
  Map young_, old_;
  // The token of the last lookup, always one of young_'s.
  std::string last_raw_;
  DecodedToken last_;
};

}  // namespace tokenwatch::token

#endif  // TOKENWATCH_AGENT_TOKEN_TOKEN_CACHE_H_
