#include "agent/token/extractor.h"

#include <algorithm>
#include <array>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "agent/token/jwt.h"
#include "common/strings.h"

namespace tokenwatch::token {
namespace {

constexpr std::string_view kQueryParams[] = {"access_token", "id_token",
                                             "token", "jwt"};
constexpr std::string_view kWsBearerPrefix = "authorization.bearer.";
// Longer values are not decoded or fingerprinted (a 1 MB "token" is an
// attack on the monitor, not a credential); they are counted.
constexpr size_t kMaxTokenBytes = 16 * 1024;
// A request carrying more is hostile: each token costs a decode and an event.
constexpr size_t kMaxTokensPerRequest = 16;

// RFC 6750 2.1 b64token: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/",
// then "=" padding.
constexpr std::array<bool, 256> MakeB64TokenTable() {
  std::array<bool, 256> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (char c : std::string_view("-._~+/"))
    t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kB64Token = MakeB64TokenTable();

#if defined(__SSE2__)
// Sixteen bytes at once: all of them b64token characters? (Signed
// compares: bytes from 0x80 are negative, below every range.)
bool AllB64Token16(const unsigned char* p) {
  __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  auto in = [&v](char lo, char hi) {
    return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(static_cast<char>(lo - 1))),
                         _mm_cmplt_epi8(v, _mm_set1_epi8(static_cast<char>(hi + 1))));
  };
  __m128i ok = _mm_or_si128(in('A', 'Z'), in('a', 'z'));
  ok = _mm_or_si128(ok, in('0', '9'));
  ok = _mm_or_si128(ok, in('-', '/'));  // - . /
  ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8('_')));
  ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8('~')));
  ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8('+')));
  return _mm_movemask_epi8(ok) == 0xffff;
}
#endif

bool IsB64Token(std::string_view v) {
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  size_t n = v.size(), i = 0;
#if defined(__SSE2__)
  while (i + 16 <= n && AllB64Token16(p + i)) i += 16;
#endif
  // Eight lookups per test: a bearer token is hundreds of bytes, every one
  // of them in the set.
  while (i + 8 <= n &&
         (kB64Token[p[i]] & kB64Token[p[i + 1]] & kB64Token[p[i + 2]] &
          kB64Token[p[i + 3]] & kB64Token[p[i + 4]] & kB64Token[p[i + 5]] &
          kB64Token[p[i + 6]] & kB64Token[p[i + 7]])) {
    i += 8;
  }
  while (i < n && kB64Token[p[i]]) ++i;
  while (i < n && p[i] == '=') ++i;
  return i == n;
}

// Index of the first blank (or `extra`), npos if none. One memchr per
// character searched for (string_view::find_first_of does one per byte of
// the haystack instead), each only up to the first found so far.
// CR and LF count as blanks: an obs-folded value keeps its line break.
size_t FindBlank(std::string_view v, char extra = ' ') {
  size_t best = v.size();
  for (char c : {' ', '\t', '\r', '\n', extra}) {
    size_t at = v.substr(0, best).find(c);
    if (at != std::string_view::npos) best = at;
  }
  return best == v.size() ? std::string_view::npos : best;
}

using util::Trim;

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// `v` with %XX sequences decoded; the decoded copy lives in `out`.
std::string_view PercentDecoded(std::string_view v, Extraction* out) {
  if (v.find('%') == std::string_view::npos) return v;
  std::string decoded;
  decoded.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '%' && i + 2 < v.size() && HexVal(v[i + 1]) >= 0 &&
        HexVal(v[i + 2]) >= 0) {
      decoded.push_back(
          static_cast<char>(HexVal(v[i + 1]) * 16 + HexVal(v[i + 2])));
      i += 2;
    } else {
      decoded.push_back(v[i]);  // '+' stays: it is a b64token character
    }
  }
  out->owned.push_back(std::move(decoded));
  return out->owned.back();
}

bool IsQueryParam(std::string_view name) {
  for (std::string_view p : kQueryParams) {
    if (name == p) return true;
  }
  return false;
}

}  // namespace

std::string_view Extractor::PathOf(std::string_view target) {
  if (!target.empty() && target.front() != '/') {
    // absolute-form: scheme://authority/path
    size_t scheme = target.find("://");
    if (scheme != std::string_view::npos) {
      size_t slash = target.find('/', scheme + 3);
      size_t q = target.find('?', scheme + 3);
      if (slash == std::string_view::npos ||
          (q != std::string_view::npos && q < slash)) {
        return "/";
      }
      target.remove_prefix(slash);
    }
  }
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == '?' || target[i] == '#') return target.substr(0, i);
  }
  return target;
}

std::string_view Extractor::QueryOf(std::string_view target) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  return query.substr(0, query.find('#'));
}

void Extractor::Add(v1::TokenLocation loc, std::string_view param,
                    std::string_view value, Extraction* out,
                    std::string_view span, bool known_b64) const {
  if (value.empty()) {
    stats_->Count(Malformed::kEmptyToken);
    return;
  }
  if (value.size() > kMaxTokenBytes) {
    stats_->Count(Drop::kTokenTooLong);
    return;
  }
  if (out->tokens.size() >= kMaxTokensPerRequest) {
    stats_->Count(Drop::kTokensPerRequest);
    return;
  }
  // Still reported: a service may accept what the RFC does not.
  if (!known_b64 && !IsB64Token(value)) stats_->Count(Malformed::kBadTokenChars);
  out->tokens.push_back({loc, param, value, span});
}

void Extractor::FromAuthorization(std::string_view value,
                                  Extraction* out) const {
  value = Trim(value);
  size_t sp = FindBlank(value);
  if (sp == std::string_view::npos) {
    // No scheme: a bare JWT (suricata-verify bug-7390), or a lone "Bearer".
    if (LooksLikeJwt(value)) {
      Add(v1::TOKEN_LOCATION_AUTHORIZATION, "", value, out);
    } else if (util::EqualsIgnoreCase(value, "bearer")) {
      stats_->Count(Malformed::kEmptyToken);
    }
    return;
  }
  std::string_view scheme = value.substr(0, sp);
  if (!util::EqualsIgnoreCase(scheme, "bearer") &&
      !util::EqualsIgnoreCase(scheme, "jwt")) {
    return;  // Basic, Digest, Negotiate, ...: not bearer tokens
  }
  std::string_view token = Trim(value.substr(sp + 1));
  if (IsB64Token(token)) {
    // The usual case: all b64token, so no blank or comma cuts it short and
    // its characters need no second look.
    Add(v1::TOKEN_LOCATION_AUTHORIZATION, "", token, out, {},
        /*known_b64=*/true);
    return;
  }
  // b64token (RFC 6750 2.1) has no blanks: anything after one is not ours.
  token = token.substr(0, FindBlank(token, ','));
  Add(v1::TOKEN_LOCATION_AUTHORIZATION, "", token, out);
}

void Extractor::FromCookie(std::string_view value, Extraction* out) const {
  while (!value.empty()) {
    size_t semi = value.find(';');
    std::string_view pair = Trim(value.substr(0, semi));
    value = semi == std::string_view::npos ? std::string_view()
                                           : value.substr(semi + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = Trim(pair.substr(0, eq));
    std::string_view v = Trim(pair.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"')
      v = v.substr(1, v.size() - 2);
    if (LooksLikeJwt(v)) Add(v1::TOKEN_LOCATION_COOKIE, name, v, out);
  }
}

void Extractor::FromQuery(std::string_view query, Extraction* out) const {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view()
                                          : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = pair.substr(0, eq);
    if (!IsQueryParam(name)) continue;
    Add(v1::TOKEN_LOCATION_QUERY, name,
        PercentDecoded(pair.substr(eq + 1), out), out);
  }
}

// A JWT as a path segment ("/v1/verify/<JWT>"), or in a matrix parameter
// ("/a;access_token=<token>;v=1/b"), percent-encoded or not. Such URLs end
// up in every access log: found here so the event can report them
// (token_in_url) and carry a marker instead of the token in its path.
void Extractor::FromPath(std::string_view path, Extraction* out) const {
  // Every JWT starts "eyJ" (base64 of '{"'); encoded text has a '%'.
  if (path.find("eyJ") == std::string_view::npos &&
      path.find('%') == std::string_view::npos) {
    return;
  }
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find_first_of("/;", pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view piece = path.substr(pos, end - pos);
    bool matrix = pos > 0 && path[pos - 1] == ';';
    pos = end + 1;
    if (piece.size() < 10) continue;
    std::string_view param, raw = piece;
    if (size_t eq = piece.find('='); matrix && eq != std::string_view::npos) {
      param = piece.substr(0, eq);
      raw = piece.substr(eq + 1);
    }
    std::string_view value = PercentDecoded(raw, out);
    // A matrix parameter named like the query's token parameters carries a
    // token whatever its shape; anywhere else only a JWT is recognised.
    if (LooksLikeJwt(value) || (!param.empty() && IsQueryParam(param))) {
      Add(v1::TOKEN_LOCATION_PATH, param, value, out, raw);
    }
  }
}

void Extractor::Extract(const analyzer::Request& req, Extraction* out) const {
  out->Clear();
  std::string_view host = req.authority;
  for (size_t i = 0; i < req.num_headers; ++i) {
    const analyzer::Header& h = req.headers[i];
    if (host.empty() && util::EqualsIgnoreCase(h.name, "host")) {
      host = h.value;
    } else if (util::EqualsIgnoreCase(h.name, "authorization")) {
      FromAuthorization(h.value, out);
    } else if (util::EqualsIgnoreCase(h.name, "cookie")) {
      FromCookie(h.value, out);
    } else if (util::EqualsIgnoreCase(h.name, "sec-websocket-protocol")) {
      std::string_view v = h.value;
      while (!v.empty()) {
        size_t comma = v.find(',');
        std::string_view item = Trim(v.substr(0, comma));
        v = comma == std::string_view::npos ? std::string_view()
                                            : v.substr(comma + 1);
        if (util::StartsWithIgnoreCase(item, kWsBearerPrefix)) {
          Add(v1::TOKEN_LOCATION_WEBSOCKET_PROTOCOL, "",
              item.substr(kWsBearerPrefix.size()), out);
        }
      }
    } else {
      for (const std::string& name : token_headers_) {
        if (util::EqualsIgnoreCase(h.name, name)) {
          std::string_view v = Trim(h.value);
          // Tolerate a scheme word in custom headers too.
          if (util::StartsWithIgnoreCase(v, "bearer ")) v = Trim(v.substr(7));
          Add(v1::TOKEN_LOCATION_HEADER, name, v, out);
        }
      }
    }
  }
  std::string_view query = QueryOf(req.target);
  if (!query.empty()) FromQuery(query, out);
  FromPath(PathOf(req.target), out);
  if (host.find("eyJ") != std::string_view::npos) {
    std::string_view name = host.substr(0, host.rfind(':'));  // port, if any
    if (LooksLikeJwt(Trim(name))) {
      Add(v1::TOKEN_LOCATION_HOST, "", Trim(name), out, Trim(name));
    }
  }
}

}  // namespace tokenwatch::token
