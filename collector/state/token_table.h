// Per-token state for every tracked identity, kept compact: strings that
// repeat across tokens (issuers, subjects, audiences, services, client
// addresses) are interned; a token holds small ids. Measured in
// `bytes_per_token()` and reported by the benchmark.
#ifndef TOKENWATCH_COLLECTOR_STATE_TOKEN_TABLE_H_
#define TOKENWATCH_COLLECTOR_STATE_TOKEN_TABLE_H_

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
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

// One tracked token, about 176 bytes. The identity is not stored as a
// string: it is (iss, jti) for a JWT with a jti, else the fingerprint, so the
// jti is the only per-token string on the heap.
struct TokenState {
  static constexpr int64_t kNone = INT64_MIN;
  struct ServiceUses {
    uint32_t service;
    std::array<uint32_t, 6> by_class;  // none, 1xx..5xx
  };
  struct ClientSeen {
    uint32_t client;
    uint32_t last_s;  // observation time, whole seconds (rounded up)
  };

  bool by_jti() const { return jti_len != 0; }
  std::string_view jti() const { return {jti_bytes.get(), jti_len}; }

  std::array<uint8_t, 16> fp{};
  uint32_t iss = 0, sub = 0, alg = 0, kid = 0, typ = 0, aud = 0, scopes = 0,
           client_id = 0;
  uint32_t jti_len = 0;  // 0: tracked by fp
  uint8_t kind = 0;
  // The journal carries the claims of this token since the last checkpoint
  // (the engine's; in padding, no extra bytes).
  bool claims_journaled = false;
  std::unique_ptr<char[]> jti_bytes;
  int64_t exp = kNone, nbf = kNone, iat = kNone;
  int64_t first_seen_us = 0, last_seen_us = 0;
  uint64_t uses = 0;
  absl::InlinedVector<ServiceUses, 1> services;  // in order of first use
  absl::InlinedVector<ClientSeen, 2> clients;    // bounded, oldest evicted
};

// Tokens by identity. States live in fixed-size chunks (no per-token
// allocation, no rehash moves) and the index is a set of 4-byte slot numbers
// hashed through the state they name, so an index entry costs 5 bytes
// instead of a 32-byte identity string plus its heap copy.
class TokenTable {
 public:
  using Ref = uint32_t;

  // Past `max_services_per_token` a token's new services are not kept
  // (services_over_cap() counts the uses); past `max_clients_per_token`
  // the client seen longest ago makes way.
  explicit TokenTable(size_t max_clients_per_token = 8,
                      size_t max_services_per_token = SIZE_MAX);
  uint64_t services_over_cap() const { return services_over_cap_; }
  // The index's hasher points at this table: never copied or moved.
  TokenTable(const TokenTable&) = delete;
  TokenTable& operator=(const TokenTable&) = delete;

  // Finds or creates the token's state; `created` tells which. Claims are
  // (re)read only when the fingerprint changed: the same fp is the same
  // signing input, so the same claims.
  // `claims_read` (optional): the state's claims were (re)read from
  // `token`, i.e. it was created or came with a new fingerprint.
  TokenState& Upsert(const v1::TokenInfo& token, bool* created, Ref* ref,
                     bool* claims_read = nullptr);
  // By the parts of an identity, exactly (no parsing of "iss|jti").
  std::optional<Ref> FindJwt(std::string_view iss, std::string_view jti) const;
  std::optional<Ref> FindFp(const std::array<uint8_t, 16>& fp) const;
  // The token Upsert(token) would update, if tracked.
  std::optional<Ref> FindToken(const v1::TokenInfo& token) const;
  // Interned strings (iss, services, clients): ids are stable for the
  // table's lifetime.
  const Interner& strings() const { return strings_; }
  uint32_t Intern(std::string_view s) { return strings_.Intern(s); }
  // By identity string ("iss|jti" or fp hex), for the API and tests.
  TokenState* Find(std::string_view identity) const;
  TokenState& At(Ref ref) { return Slot(ref); }
  const TokenState& At(Ref ref) const { return Slot(ref); }
  void Erase(Ref ref);
  std::string Identity(const TokenState& s) const;

  // Records one (folded) use after detection has looked at the history.
  void RecordUse(TokenState& s, const v1::UsageEvent& use);
  // The same with the service and client already interned.
  void RecordUse(TokenState& s, const v1::UsageEvent& use, uint32_t service,
                 uint32_t client);
  // Distinct clients seen since `since_us`, counting `client` as seen now.
  size_t RecentSources(const TokenState& s, std::string_view client,
                       int64_t since_us) const;
  // Views into interned strings (stable for the table's life).
  void ServiceNames(const TokenState& s,
                    std::vector<std::string_view>* out) const;

  TokenRow ToRow(const TokenState& s) const;
  void Restore(const TokenRow& row);
  v1::TokenInfo Claims(const TokenState& s) const;

  size_t size() const { return index_.size(); }
  // Heap bytes per tracked token: index slots with their spare capacity,
  // state chunks, the jti copies and spilled inline vectors. Interned
  // strings are shared across tokens and not counted.
  double bytes_per_token() const;
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (Ref ref : index_) fn(ref, Slot(ref));
  }

 private:
  static constexpr int kChunkBits = 10;
  static constexpr uint32_t kChunkSize = 1u << kChunkBits;

  // What identifies a token, as a lookup key or read from a state.
  struct Key {
    bool by_jti;
    std::string_view iss, jti;
    std::array<uint8_t, 16> fp;
  };
  struct IndexHash {
    using is_transparent = void;
    const TokenTable* table;
    size_t operator()(Ref ref) const { return (*this)(table->KeyOf(ref)); }
    size_t operator()(const Key& k) const;
  };
  struct IndexEq {
    using is_transparent = void;
    const TokenTable* table;
    bool operator()(Ref a, Ref b) const { return a == b; }
    bool operator()(Ref a, const Key& b) const { return table->Matches(a, b); }
    bool operator()(const Key& a, Ref b) const { return table->Matches(b, a); }
    static bool Same(const Key& a, const Key& b);
  };

  TokenState& Slot(Ref ref) const {
    return chunks_[ref >> kChunkBits][ref & (kChunkSize - 1)];
  }
  Key KeyOf(Ref ref) const;
  // Same(KeyOf(ref), key) without building the key.
  bool Matches(Ref ref, const Key& key) const;
  Key KeyOf(const v1::TokenInfo& token) const;
  Ref Allocate();
  void ReadClaims(TokenState& s, const v1::TokenInfo& t);
  uint32_t InternList(
      const google::protobuf::RepeatedPtrField<std::string>& list);
  std::vector<std::string> ListOf(uint32_t id) const;

  size_t max_clients_;
  size_t max_services_;
  uint64_t services_over_cap_ = 0;
  std::vector<std::unique_ptr<TokenState[]>> chunks_;
  uint32_t next_ = 0;      // first never-used slot
  std::vector<Ref> free_;  // slots of erased tokens
  absl::flat_hash_set<Ref, IndexHash, IndexEq> index_;
  Interner strings_;
  Interner lists_;  // aud and scope lists, joined with '\x1f'
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_STATE_TOKEN_TABLE_H_
