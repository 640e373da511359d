#include "collector/state/token_table.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace tokenwatch::collector {
namespace {

int HexNibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 0;
}

// Observation time in whole seconds, rounded up (fits until 2106).
uint32_t SecondsUp(int64_t us) {
  if (us <= 0) return 0;
  // Rounded up without adding first: an agent's time may be near INT64_MAX.
  int64_t s = us / 1000000 + (us % 1000000 != 0 ? 1 : 0);
  return static_cast<uint32_t>(std::min<int64_t>(s, UINT32_MAX));
}

size_t StatusClass(uint32_t status) {
  if (status < 100 || status > 599) return 0;
  return status / 100;
}

}  // namespace

uint32_t Interner::Intern(std::string_view s) {
  if (s.empty()) return 0;
  absl::string_view key(s.data(), s.size());
  auto it = ids_.find(key);
  if (it != ids_.end()) return it->second;
  uint32_t id = static_cast<uint32_t>(strings_.size());
  strings_.emplace_back(s);
  ids_.emplace(std::string(s), id);
  return id;
}

void IdentityOf(const v1::TokenInfo& token, std::string* out) {
  out->clear();
  if (token.kind() == v1::TOKEN_KIND_JWT && !token.jti().empty()) {
    out->append(token.iss());
    out->push_back('|');
    out->append(token.jti());
  } else {
    out->append(token.fp());
  }
}

std::string IdentityOf(const v1::TokenInfo& token) {
  std::string out;
  IdentityOf(token, &out);
  return out;
}

uint32_t TokenTable::InternList(
    const google::protobuf::RepeatedPtrField<std::string>& list) {
  if (list.empty()) return 0;
  std::string joined;
  for (const std::string& s : list) {
    if (!joined.empty()) joined.push_back('\x1f');
    joined.append(s);
  }
  return lists_.Intern(joined);
}

std::vector<std::string> TokenTable::ListOf(uint32_t id) const {
  std::vector<std::string> out;
  if (id == 0) return out;
  std::string_view s = lists_.Get(id);
  size_t start = 0;
  while (true) {
    size_t sep = s.find('\x1f', start);
    out.emplace_back(
        s.substr(start, sep == std::string_view::npos ? sep : sep - start));
    if (sep == std::string_view::npos) break;
    start = sep + 1;
  }
  return out;
}

TokenTable::TokenTable(size_t max_clients_per_token,
                       size_t max_services_per_token)
    : max_clients_(max_clients_per_token),
      max_services_(max_services_per_token),
      index_(0, IndexHash{this}, IndexEq{this}) {}

static std::array<uint8_t, 16> ParseFp(std::string_view hex) {
  std::array<uint8_t, 16> fp{};
  for (size_t i = 0; i < 16 && 2 * i + 1 < hex.size(); ++i) {
    fp[i] = static_cast<uint8_t>(HexNibble(hex[2 * i]) << 4 |
                                 HexNibble(hex[2 * i + 1]));
  }
  return fp;
}

size_t TokenTable::IndexHash::operator()(const Key& k) const {
  if (k.by_jti) {
    return absl::Hash<std::pair<absl::string_view, absl::string_view>>()(
        {absl::string_view(k.iss.data(), k.iss.size()),
         absl::string_view(k.jti.data(), k.jti.size())});
  }
  return absl::Hash<absl::string_view>()(absl::string_view(
      reinterpret_cast<const char*>(k.fp.data()), k.fp.size()));
}

bool TokenTable::IndexEq::Same(const Key& a, const Key& b) {
  if (a.by_jti != b.by_jti) return false;
  if (a.by_jti) return a.jti == b.jti && a.iss == b.iss;
  return a.fp == b.fp;
}

bool TokenTable::Matches(Ref ref, const Key& key) const {
  // The identity is (iss, jti), whatever the fingerprint: a re-signed token
  // is the same token, the same jti from another issuer is another.
  const TokenState& s = Slot(ref);
  if (s.by_jti() != key.by_jti) return false;
  if (!key.by_jti) return s.fp == key.fp;
  return s.jti() == key.jti && strings_.Get(s.iss) == key.iss;
}

TokenTable::Key TokenTable::KeyOf(Ref ref) const {
  const TokenState& s = Slot(ref);
  return {s.by_jti(), strings_.Get(s.iss), s.jti(), s.fp};
}

TokenTable::Key TokenTable::KeyOf(const v1::TokenInfo& t) const {
  bool by_jti = t.kind() == v1::TOKEN_KIND_JWT && !t.jti().empty();
  return {by_jti, by_jti ? std::string_view(t.iss()) : std::string_view(),
          by_jti ? std::string_view(t.jti()) : std::string_view(),
          ParseFp(t.fp())};
}

TokenTable::Ref TokenTable::Allocate() {
  if (!free_.empty()) {
    Ref ref = free_.back();
    free_.pop_back();
    return ref;
  }
  if ((next_ & (kChunkSize - 1)) == 0)
    chunks_.push_back(std::make_unique<TokenState[]>(kChunkSize));
  return next_++;
}

void TokenTable::ReadClaims(TokenState& s, const v1::TokenInfo& t) {
  s.kind = static_cast<uint8_t>(t.kind());
  s.iss = strings_.Intern(t.iss());
  s.sub = strings_.Intern(t.sub());
  s.alg = strings_.Intern(t.alg());
  s.kid = strings_.Intern(t.kid());
  s.typ = strings_.Intern(t.typ());
  s.client_id = strings_.Intern(t.client_id());
  s.aud = InternList(t.aud());
  s.scopes = InternList(t.scopes());
  s.exp = t.has_exp() ? t.exp() : TokenState::kNone;
  s.nbf = t.has_nbf() ? t.nbf() : TokenState::kNone;
  s.iat = t.has_iat() ? t.iat() : TokenState::kNone;
}

std::optional<TokenTable::Ref> TokenTable::FindJwt(std::string_view iss,
                                                   std::string_view jti) const {
  if (jti.empty()) return std::nullopt;
  auto it = index_.find(Key{true, iss, jti, {}});
  if (it == index_.end()) return std::nullopt;
  return *it;
}

std::optional<TokenTable::Ref> TokenTable::FindFp(
    const std::array<uint8_t, 16>& fp) const {
  auto it = index_.find(Key{false, {}, {}, fp});
  if (it == index_.end()) return std::nullopt;
  return *it;
}

std::optional<TokenTable::Ref> TokenTable::FindToken(
    const v1::TokenInfo& t) const {
  auto it = index_.find(KeyOf(t));
  if (it == index_.end()) return std::nullopt;
  return *it;
}

TokenState& TokenTable::Upsert(const v1::TokenInfo& t, bool* created, Ref* ref,
                               bool* claims_read) {
  Key key = KeyOf(t);
  auto it = index_.find(key);
  if (claims_read != nullptr) *claims_read = true;
  if (it != index_.end()) {
    *created = false;
    *ref = *it;
    TokenState& s = Slot(*ref);
    if (key.fp == s.fp) {  // same signing input: same claims
      if (claims_read != nullptr) *claims_read = false;
      return s;
    }
    s.fp = key.fp;
    ReadClaims(s, t);  // iss and jti are the identity: unchanged
    return s;
  }
  *created = true;
  *ref = Allocate();
  TokenState& s = Slot(*ref);
  s.fp = key.fp;
  ReadClaims(s, t);
  if (key.by_jti) {
    s.jti_len = static_cast<uint32_t>(key.jti.size());
    s.jti_bytes = std::make_unique_for_overwrite<char[]>(key.jti.size());
    memcpy(s.jti_bytes.get(), key.jti.data(), key.jti.size());
  }
  index_.insert(*ref);  // hashed through the state just filled in
  return s;
}

TokenState* TokenTable::Find(std::string_view identity) const {
  // From the API, unauthenticated: bounded work under the engine's lock.
  static constexpr size_t kMaxIdentity = 4096;
  static constexpr int kMaxSplits = 16;
  if (identity.size() > kMaxIdentity) return nullptr;
  // "iss|jti" at a '|' whose prefix is a known issuer, else an fp.
  int splits = 0;
  for (size_t bar = identity.find('|');
       bar != std::string_view::npos && splits < kMaxSplits;
       bar = identity.find('|', bar + 1), ++splits) {
    if (std::optional<Ref> ref =
            FindJwt(identity.substr(0, bar), identity.substr(bar + 1)))
      return &Slot(*ref);
  }
  if (identity.size() != 32) return nullptr;
  std::optional<Ref> ref = FindFp(ParseFp(identity));
  return ref ? &Slot(*ref) : nullptr;
}

void TokenTable::Erase(Ref ref) {
  if (index_.erase(ref) == 0) return;  // hashed through the state: erase first
  Slot(ref) = TokenState{};
  free_.push_back(ref);
}

std::string TokenTable::Identity(const TokenState& s) const {
  static constexpr char kHex[] = "0123456789abcdef";
  if (s.by_jti()) {
    std::string out(strings_.Get(s.iss));
    out.push_back('|');
    out.append(s.jti());
    return out;
  }
  std::string fp(32, '0');
  for (int i = 0; i < 16; ++i) {
    fp[2 * i] = kHex[s.fp[i] >> 4];
    fp[2 * i + 1] = kHex[s.fp[i] & 0xf];
  }
  return fp;
}

void TokenTable::RecordUse(TokenState& s, const v1::UsageEvent& use) {
  RecordUse(s, use, strings_.Intern(use.service()),
            strings_.Intern(use.client()));
}

void TokenTable::RecordUse(TokenState& s, const v1::UsageEvent& use,
                           uint32_t service, uint32_t client) {
  if (s.uses == 0 || use.ts_us() < s.first_seen_us)
    s.first_seen_us = use.ts_us();
  s.last_seen_us = std::max({s.last_seen_us, use.last_ts_us(), use.ts_us()});
  s.uses += use.count();
  auto svc = std::find_if(
      s.services.begin(), s.services.end(),
      [&](const TokenState::ServiceUses& u) { return u.service == service; });
  if (svc == s.services.end() && s.services.size() >= max_services_) {
    ++services_over_cap_;  // the use counts, its service is not kept
  } else {
    if (svc == s.services.end()) {
      s.services.push_back({service, {}});
      svc = s.services.end() - 1;
    }
    svc->by_class[StatusClass(use.status())] += use.count();
  }
  uint32_t seen = SecondsUp(std::max(use.last_ts_us(), use.ts_us()));
  for (auto& c : s.clients) {
    if (c.client == client) {
      c.last_s = std::max(c.last_s, seen);
      return;
    }
  }
  if (s.clients.size() >= max_clients_) {
    auto oldest = std::min_element(
        s.clients.begin(), s.clients.end(),
        [](const auto& a, const auto& b) { return a.last_s < b.last_s; });
    *oldest = {client, seen};
  } else {
    s.clients.push_back({client, seen});
  }
}

size_t TokenTable::RecentSources(const TokenState& s, std::string_view client,
                                 int64_t since_us) const {
  // Client times are kept in whole seconds, rounded up: a client seen less
  // than a second before the window opens may still count.
  size_t n = 1;  // this use's client
  for (const auto& c : s.clients) {
    if (int64_t{c.last_s} * 1000000 >= since_us &&
        strings_.Get(c.client) != client)
      ++n;
  }
  return n;
}

void TokenTable::ServiceNames(const TokenState& s,
                              std::vector<std::string_view>* out) const {
  out->clear();
  for (const auto& u : s.services) out->push_back(strings_.Get(u.service));
}

v1::TokenInfo TokenTable::Claims(const TokenState& s) const {
  v1::TokenInfo t;
  t.set_kind(static_cast<v1::TokenKind>(s.kind));
  std::string fp(32, '0');
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) {
    fp[2 * i] = kHex[s.fp[i] >> 4];
    fp[2 * i + 1] = kHex[s.fp[i] & 0xf];
  }
  t.set_fp(fp);
  t.set_iss(strings_.Get(s.iss));
  t.set_sub(strings_.Get(s.sub));
  if (s.by_jti()) t.set_jti(std::string(s.jti()));
  t.set_alg(strings_.Get(s.alg));
  t.set_kid(strings_.Get(s.kid));
  t.set_typ(strings_.Get(s.typ));
  t.set_client_id(strings_.Get(s.client_id));
  for (auto& a : ListOf(s.aud)) t.add_aud(a);
  for (auto& a : ListOf(s.scopes)) t.add_scopes(a);
  if (s.exp != TokenState::kNone) t.set_exp(s.exp);
  if (s.nbf != TokenState::kNone) t.set_nbf(s.nbf);
  if (s.iat != TokenState::kNone) t.set_iat(s.iat);
  return t;
}

TokenRow TokenTable::ToRow(const TokenState& s) const {
  TokenRow row;
  row.identity = Identity(s);
  row.token = Claims(s);
  row.first_seen_us = s.first_seen_us;
  row.last_seen_us = s.last_seen_us;
  row.uses = s.uses;
  for (const auto& u : s.services) {
    row.services.push_back(strings_.Get(u.service));
    StatusClassCounts counts{};
    for (size_t i = 0; i < 6; ++i) counts[i] = u.by_class[i];
    row.uses_by_service[strings_.Get(u.service)] = counts;
  }
  std::vector<TokenState::ClientSeen> clients(s.clients.begin(),
                                              s.clients.end());
  std::stable_sort(
      clients.begin(), clients.end(),
      [](const auto& a, const auto& b) { return a.last_s < b.last_s; });
  for (const auto& c : clients) row.clients.push_back(strings_.Get(c.client));
  return row;
}

void TokenTable::Restore(const TokenRow& row) {
  bool created;
  Ref ref;
  TokenState& s = Upsert(row.token, &created, &ref);
  s.first_seen_us = row.first_seen_us;
  s.last_seen_us = row.last_seen_us;
  s.uses = row.uses;
  s.services.clear();
  for (const std::string& name : row.services) {
    TokenState::ServiceUses u{strings_.Intern(name), {}};
    auto it = row.uses_by_service.find(name);
    if (it != row.uses_by_service.end()) {
      for (size_t i = 0; i < 6; ++i)
        u.by_class[i] = static_cast<uint32_t>(it->second[i]);
    }
    s.services.push_back(u);
  }
  s.clients.clear();
  // Restored clients count as last seen at the token's last use: enough for
  // the multi-source window across a restart.
  for (const std::string& c : row.clients) {
    if (s.clients.size() < max_clients_)
      s.clients.push_back({strings_.Intern(c), SecondsUp(row.last_seen_us)});
  }
}

double TokenTable::bytes_per_token() const {
  if (index_.empty()) return 0;
  // malloc's chunk for n bytes: n plus an 8-byte header, 16-aligned, >= 32.
  auto chunk = [](size_t n) {
    return std::max<size_t>(32, (n + 8 + 15) & ~15);
  };
  double bytes = static_cast<double>(index_.capacity()) * (sizeof(Ref) + 1) +
                 static_cast<double>(chunks_.size()) *
                     chunk(kChunkSize * sizeof(TokenState)) +
                 static_cast<double>(free_.capacity() * sizeof(Ref)) +
                 static_cast<double>(chunks_.capacity() * sizeof(void*));
  for (Ref ref : index_) {
    const TokenState& s = Slot(ref);
    if (s.jti_len > 0) bytes += chunk(s.jti_len);
    if (s.services.size() > 1)
      bytes += chunk(s.services.capacity() * sizeof(TokenState::ServiceUses));
    if (s.clients.size() > 2)
      bytes += chunk(s.clients.capacity() * sizeof(TokenState::ClientSeen));
  }
  return bytes / static_cast<double>(index_.size());
}

}  // namespace tokenwatch::collector
