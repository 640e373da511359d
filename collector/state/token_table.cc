#include "collector/state/token_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tokenwatch::collector {
namespace {

int HexNibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 0;
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

TokenState& TokenTable::Upsert(const std::string& identity,
                               const v1::TokenInfo& t, bool* created) {
  auto [it, inserted] = tokens_.try_emplace(identity);
  *created = inserted;
  TokenState& s = it->second;
  std::array<uint8_t, 16> fp{};
  for (size_t i = 0; i < 16 && 2 * i + 1 < t.fp().size(); ++i) {
    fp[i] = static_cast<uint8_t>(HexNibble(t.fp()[2 * i]) << 4 |
                                 HexNibble(t.fp()[2 * i + 1]));
  }
  if (!inserted && fp == s.fp) return s;  // same signing input: same claims
  s.fp = fp;
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
  return s;
}

TokenState* TokenTable::Find(const std::string& identity) {
  auto it = tokens_.find(identity);
  return it == tokens_.end() ? nullptr : &it->second;
}

void TokenTable::Erase(const std::string& identity) { tokens_.erase(identity); }

void TokenTable::RecordUse(TokenState& s, const v1::UsageEvent& use) {
  if (s.uses == 0 || use.ts_us() < s.first_seen_us)
    s.first_seen_us = use.ts_us();
  s.last_seen_us = std::max({s.last_seen_us, use.last_ts_us(), use.ts_us()});
  s.uses += use.count();
  uint32_t service = strings_.Intern(use.service());
  auto svc = std::find_if(
      s.services.begin(), s.services.end(),
      [&](const TokenState::ServiceUses& u) { return u.service == service; });
  if (svc == s.services.end()) {
    s.services.push_back({service, {}});
    svc = s.services.end() - 1;
  }
  svc->by_class[StatusClass(use.status())] += use.count();
  uint32_t client = strings_.Intern(use.client());
  int64_t seen = std::max(use.last_ts_us(), use.ts_us());
  for (auto& c : s.clients) {
    if (c.client == client) {
      c.last_us = std::max(c.last_us, seen);
      return;
    }
  }
  if (s.clients.size() >= max_clients_) {
    auto oldest = std::min_element(
        s.clients.begin(), s.clients.end(),
        [](const auto& a, const auto& b) { return a.last_us < b.last_us; });
    *oldest = {client, seen};
  } else {
    s.clients.push_back({client, seen});
  }
}

size_t TokenTable::RecentSources(const TokenState& s, std::string_view client,
                                 int64_t since_us) const {
  size_t n = 1;  // this use's client
  for (const auto& c : s.clients) {
    if (c.last_us >= since_us && strings_.Get(c.client) != client) ++n;
  }
  return n;
}

void TokenTable::ServiceNames(const TokenState& s,
                              std::vector<std::string_view>* out) const {
  out->clear();
  for (const auto& u : s.services) out->push_back(strings_.Get(u.service));
}

v1::TokenInfo TokenTable::Claims(const std::string& identity,
                                 const TokenState& s) const {
  static constexpr char kHex[] = "0123456789abcdef";
  v1::TokenInfo t;
  t.set_kind(static_cast<v1::TokenKind>(s.kind));
  std::string fp(32, '0');
  for (int i = 0; i < 16; ++i) {
    fp[2 * i] = kHex[s.fp[i] >> 4];
    fp[2 * i + 1] = kHex[s.fp[i] & 0xf];
  }
  t.set_fp(fp);
  t.set_iss(strings_.Get(s.iss));
  t.set_sub(strings_.Get(s.sub));
  const std::string& iss = strings_.Get(s.iss);
  if (s.kind == v1::TOKEN_KIND_JWT && identity.size() > iss.size() &&
      identity.compare(0, iss.size(), iss) == 0 &&
      identity[iss.size()] == '|') {
    t.set_jti(identity.substr(iss.size() + 1));
  }
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

TokenRow TokenTable::ToRow(const std::string& identity,
                           const TokenState& s) const {
  TokenRow row;
  row.identity = identity;
  row.token = Claims(identity, s);
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
  std::sort(clients.begin(), clients.end(),
            [](const auto& a, const auto& b) { return a.last_us < b.last_us; });
  for (const auto& c : clients) row.clients.push_back(strings_.Get(c.client));
  return row;
}

void TokenTable::Restore(const TokenRow& row) {
  bool created;
  TokenState& s = Upsert(row.identity, row.token, &created);
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
      s.clients.push_back({strings_.Intern(c), row.last_seen_us});
  }
}

double TokenTable::bytes_per_token() const {
  if (tokens_.empty()) return 0;
  // Slots (with the table's spare capacity and control bytes), plus heap
  // behind each identity string and spilled inline vectors.
  double bytes = static_cast<double>(tokens_.capacity()) *
                 (sizeof(std::pair<const std::string, TokenState>) + 1);
  for (const auto& [identity, s] : tokens_) {
    if (identity.capacity() > 15) bytes += identity.capacity() + 1;
    if (s.services.size() > 1)
      bytes += s.services.capacity() * sizeof(TokenState::ServiceUses);
    if (s.clients.size() > 2)
      bytes += s.clients.capacity() * sizeof(TokenState::ClientSeen);
  }
  return bytes / static_cast<double>(tokens_.size());
}

}  // namespace tokenwatch::collector
