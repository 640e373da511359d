#include "agent/token/jwt.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "agent/jose/base64url.h"

namespace tokenwatch::token {
namespace {

constexpr size_t kMaxClaimBytes = 1024;  // longer string claims are cut
constexpr int kMaxListItems = 64;        // aud, scp and crit entries kept

bool IsB64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

using simdjson::dom::element;

}  // namespace

bool LooksLikeJwt(std::string_view v) {
  if (v.size() < 10 || v.substr(0, 3) != "eyJ") return false;
  int dots = 0;
  for (char c : v) {
    if (c == '.') {
      ++dots;
    } else if (!IsB64UrlChar(c) && c != '=') {
      return false;
    }
  }
  return dots == 2 || dots == 4;
}

std::string_view FingerprintInput(std::string_view token, v1::TokenKind kind) {
  if (kind != v1::TOKEN_KIND_JWT) return token;
  size_t second = token.find('.', token.find('.') + 1);
  return second == std::string_view::npos ? token : token.substr(0, second);
}

void JwtDecoder::Decode(std::string_view token, v1::TokenInfo* info) {
  info->set_kind(v1::TOKEN_KIND_OPAQUE);
  size_t dots = 0;
  for (char c : token) dots += c == '.';
  if (dots != 2 && dots != 4) return;
  // A JWT is what has a JSON-object header, whatever its first bytes (a
  // header with a leading blank is still JSON). Only values that look like
  // JWTs count as malformed when that fails; dotted opaque tokens do not.
  bool looks_jwt = token.substr(0, 3) == "eyJ";
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t dot = token.find('.', start);
    parts.push_back(
        token.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (parts[0].empty() || (parts[1].empty() && dots == 2) ||
      !jose::Base64UrlDecode(parts[0], &scratch_)) {
    if (looks_jwt) stats_->Count(Malformed::kBadBase64);
    return;
  }
  std::string header_json = scratch_;
  if (!DecodeHeader(header_json, info, looks_jwt)) return;
  if (dots == 4) {
    // JWE: the protected header is readable, the claims are not.
    info->set_kind(v1::TOKEN_KIND_JWE);
    return;
  }
  info->set_kind(v1::TOKEN_KIND_JWT);
  if (!jose::Base64UrlDecode(parts[1], &scratch_)) {
    stats_->Count(Malformed::kBadBase64);
    return;
  }
  DecodeClaims(scratch_, info);
}

namespace {

bool GetString(element e, std::string* out, AgentStats* stats) {
  std::string_view s;
  if (e.get_string().get(s) != simdjson::SUCCESS) {
    stats->Count(Malformed::kBadClaimType);
    return false;
  }
  if (s.size() > kMaxClaimBytes) {
    stats->Count(Malformed::kClaimTooLong);
    s = s.substr(0, kMaxClaimBytes);
  }
  out->assign(s);
  return true;
}

// NumericDate (RFC 7519 2): a JSON number, possibly fractional.
bool GetNumericDate(element e, int64_t* out, AgentStats* stats) {
  int64_t i;
  if (e.get_int64().get(i) == simdjson::SUCCESS) {
    *out = i;
    return true;
  }
  double d;
  if (e.get_double().get(d) == simdjson::SUCCESS && std::isfinite(d) &&
      d > static_cast<double>(std::numeric_limits<int64_t>::min()) &&
      d < static_cast<double>(std::numeric_limits<int64_t>::max())) {
    *out = static_cast<int64_t>(std::floor(d));
    return true;
  }
  stats->Count(Malformed::kBadClaimType);
  return false;
}

template <typename AddFn>
void GetStringOrList(element e, AddFn add, AgentStats* stats) {
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) {
    add(s.substr(0, kMaxClaimBytes));
    return;
  }
  simdjson::dom::array arr;
  if (e.get_array().get(arr) != simdjson::SUCCESS) {
    stats->Count(Malformed::kBadClaimType);
    return;
  }
  int n = 0;
  for (element item : arr) {
    if (item.get_string().get(s) != simdjson::SUCCESS) {
      stats->Count(Malformed::kBadClaimType);
      continue;
    }
    if (++n > kMaxListItems) break;
    add(s.substr(0, kMaxClaimBytes));
  }
}

}  // namespace

bool JwtDecoder::DecodeHeader(std::string_view json, v1::TokenInfo* info,
                              bool count_failure) {
  element doc;
  simdjson::dom::object obj;
  if (parser_.parse(json.data(), json.size(), /*realloc_if_needed=*/true)
              .get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(obj) != simdjson::SUCCESS) {
    if (count_failure) stats_->Count(Malformed::kHeaderNotJson);
    return false;
  }
  for (auto field : obj) {
    std::string_view k = field.key;
    if (k == "alg") {
      GetString(field.value, info->mutable_alg(), stats_);
    } else if (k == "kid") {
      // kid is a string by RFC; some services send numbers.
      int64_t n;
      if (field.value.get_int64().get(n) == simdjson::SUCCESS) {
        info->set_kid(std::to_string(n));
      } else {
        GetString(field.value, info->mutable_kid(), stats_);
      }
    } else if (k == "typ") {
      GetString(field.value, info->mutable_typ(), stats_);
    } else if (k == "jku") {
      GetString(field.value, info->mutable_jku(), stats_);
    } else if (k == "x5u") {
      GetString(field.value, info->mutable_x5u(), stats_);
    } else if (k == "jwk") {
      info->set_has_jwk(true);
    } else if (k == "crit") {
      GetStringOrList(
          field.value,
          [info](std::string_view s) { info->add_crit(std::string(s)); },
          stats_);
    }
  }
  return true;
}

void JwtDecoder::DecodeClaims(std::string_view json, v1::TokenInfo* info) {
  element doc;
  simdjson::dom::object obj;
  if (parser_.parse(json.data(), json.size(), /*realloc_if_needed=*/true)
              .get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(obj) != simdjson::SUCCESS) {
    stats_->Count(Malformed::kPayloadNotJson);
    return;
  }
  std::string azp;
  bool have_client_id = false;
  for (auto field : obj) {
    std::string_view k = field.key;
    int64_t t;
    if (k == "iss") {
      GetString(field.value, info->mutable_iss(), stats_);
    } else if (k == "sub") {
      GetString(field.value, info->mutable_sub(), stats_);
    } else if (k == "aud") {
      GetStringOrList(
          field.value,
          [info](std::string_view s) { info->add_aud(std::string(s)); },
          stats_);
    } else if (k == "exp") {
      if (GetNumericDate(field.value, &t, stats_)) info->set_exp(t);
    } else if (k == "nbf") {
      if (GetNumericDate(field.value, &t, stats_)) info->set_nbf(t);
    } else if (k == "iat") {
      if (GetNumericDate(field.value, &t, stats_)) info->set_iat(t);
    } else if (k == "jti") {
      int64_t n;
      if (field.value.get_int64().get(n) == simdjson::SUCCESS) {
        info->set_jti(std::to_string(n));
      } else {
        GetString(field.value, info->mutable_jti(), stats_);
      }
    } else if (k == "scope") {
      std::string scope;
      if (GetString(field.value, &scope, stats_)) {
        std::string_view rest = scope;
        while (!rest.empty() && info->scopes_size() < kMaxListItems) {
          size_t sp = rest.find(' ');
          std::string_view s = rest.substr(0, sp);
          if (!s.empty()) info->add_scopes(std::string(s));
          rest = sp == std::string_view::npos ? std::string_view()
                                              : rest.substr(sp + 1);
        }
      }
    } else if (k == "scp") {
      GetStringOrList(
          field.value,
          [info](std::string_view s) {
            if (info->scopes_size() < kMaxListItems)
              info->add_scopes(std::string(s));
          },
          stats_);
    } else if (k == "client_id") {
      have_client_id =
          GetString(field.value, info->mutable_client_id(), stats_);
    } else if (k == "azp") {
      GetString(field.value, &azp, stats_);
    }
  }
  if (!have_client_id && !azp.empty()) info->set_client_id(azp);
}

}  // namespace tokenwatch::token
