#include "agent/token/token_cache.h"

#include "agent/output/event_json.h"

namespace tokenwatch::token {

void TokenCache::CountKind(const output::TokenRecord& record) {
  switch (record.info.kind()) {
    case v1::TOKEN_KIND_JWT:
      ++stats_->tokens[size_t(TokenKindStat::kJwt)];
      break;
    case v1::TOKEN_KIND_JWE:
      ++stats_->tokens[size_t(TokenKindStat::kJwe)];
      break;
    default:
      ++stats_->tokens[size_t(TokenKindStat::kOpaque)];
      break;
  }
}

DecodedToken TokenCache::Lookup(std::string_view raw_std) {
  if (last_ != nullptr && raw_std == last_raw_) {
    // The token of the previous request again (a connection's usual case):
    // still in young_, so a hit that changes nothing; no hashing.
    ++stats_->token_cache_hits;
    CountKind(*last_);
    return last_;
  }
  // Debian's Abseil has its own string_view: look up through it.
  absl::string_view raw(raw_std.data(), raw_std.size());
  DecodedToken found;
  bool in_young = false;
  if (auto it = young_.find(raw); it != young_.end()) {
    found = it->second;
    in_young = true;
  } else if (auto old = old_.find(raw); old != old_.end()) {
    found = old->second;
    old_.erase(old);
  }
  if (!found) {
    ++stats_->token_cache_misses;
    v1::TokenInfo info;
    decoder_.Decode(raw_std, &info);
    info.set_fp(
        fingerprinter_->Fingerprint(FingerprintInput(raw_std, info.kind())));
    std::vector<output::Finding> findings;
    bool search_weak = false;
    if (checks_ != nullptr)
      findings = checks_->Check(raw_std, info, &search_weak);
    output::MutableTokenRef record =
        output::MakeTokenRecord(std::move(info), std::move(findings));
    if (checks_ != nullptr && search_weak)
      checks_->QueueWeakSecret(raw_std, record);
    found = std::move(record);
  } else {
    ++stats_->token_cache_hits;
  }
  CountKind(*found);
  if (!in_young) {
    if (young_.size() >= capacity_) {
      old_ = std::move(young_);
      young_ = Map();
    }
    young_.emplace(std::string(raw), found);
  }
  // In young_ now, and stays there until the next insertion, which
  // replaces it here.
  last_raw_.assign(raw_std);
  last_ = found;
  return found;
}

}  // namespace tokenwatch::token
