// Per-token state for every tracked identity, kept compact: strings that
// repeat across tokens (issuers, subjects, audiences, services, client
// addresses) are interned; a token holds small ids. Measured in
// `bytes_per_token()` and reported by the benchmark.
#ifndef TOKENWATCH_COLLECTOR_STATE_TOKEN_TABLE_H_
#define TOKENWATCH_COLLECTOR_STATE_TOKEN_TABLE_H_

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "collector/model.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::collector {

// Interned strings: id 0 is the empty string.
class Interner {
 public:
  Interner() { strings_.emplace_back(); }
  uint32_t Intern(std::string_view s);
  const std::string& Get(uint32_t id) const { return strings_[id]; }
  size_t size() const { return strings_.size(); }

 private:
  std::deque<std::string> strings_;  // a deque: references stay valid
  absl::flat_hash_map<std::string, uint32_t> ids_;
};

// The identity of a token (SPEC): "iss|jti" for a JWT with a jti, else fp.
std::string IdentityOf(const v1::TokenInfo& token);
// The same, into a reused buffer.
void IdentityOf(const v1::TokenInfo& token, std::string* out);

struct TokenState {
  static constexpr int64_t kNone = INT64_MIN;
  struct ServiceUses {
    uint32_t service;
    std::array<uint32_t, 6> by_class;  // none, 1xx..5xx
  };
  struct ClientSeen {
    uint32_t client;
    int64_t last_us;
  };

  std::array<uint8_t, 16> fp{};
  // jti is not stored: it is the identity after "iss|".
  uint32_t iss = 0, sub = 0, alg = 0, kid = 0, typ = 0, aud = 0, scopes = 0,
           client_id = 0;
  uint8_t kind = 0;
  int64_t exp = kNone, nbf = kNone, iat = kNone;
  int64_t first_seen_us = 0, last_seen_us = 0;
  uint64_t uses = 0;
  absl::InlinedVector<ServiceUses, 1> services;  // in order of first use
  absl::InlinedVector<ClientSeen, 2> clients;    // bounded, oldest evicted
};

class TokenTable {
 public:
  explicit TokenTable(size_t max_clients_per_token = 8)
      : max_clients_(max_clients_per_token) {}

  // Finds or creates the token's state; `created` tells which. Claims are
  // (re)read only when the fingerprint changed: the same fp is the same
  // signing input, so the same claims.
  TokenState& Upsert(const std::string& identity, const v1::TokenInfo& token,
                     bool* created);
  TokenState* Find(const std::string& identity);
  void Erase(const std::string& identity);

  // Records one (folded) use after detection has looked at the history.
  void RecordUse(TokenState& s, const v1::UsageEvent& use);
  // Distinct clients seen since `since_us`, counting `client` as seen now.
  size_t RecentSources(const TokenState& s, std::string_view client,
                       int64_t since_us) const;
  // Views into interned strings (stable for the table's life).
  void ServiceNames(const TokenState& s,
                    std::vector<std::string_view>* out) const;

  TokenRow ToRow(const std::string& identity, const TokenState& s) const;
  void Restore(const TokenRow& row);
  v1::TokenInfo Claims(const std::string& identity, const TokenState& s) const;

  size_t size() const { return tokens_.size(); }
  // Approximate heap bytes per tracked token (slots plus out-of-line data),
  // interned strings excluded (they are shared).
  double bytes_per_token() const;
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (const auto& [identity, state] : tokens_) fn(identity, state);
  }

 private:
  uint32_t InternList(
      const google::protobuf::RepeatedPtrField<std::string>& list);
  std::vector<std::string> ListOf(uint32_t id) const;

  size_t max_clients_;
  absl::flat_hash_map<std::string, TokenState> tokens_;  // by identity
  Interner strings_;
  Interner lists_;  // aud and scope lists, joined with '\x1f'
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_STATE_TOKEN_TABLE_H_
