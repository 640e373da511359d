#include "agent/output/event_json.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace tokenwatch::output {

std::string FormatTimestamp(int64_t ts_us) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMicros(ts_us),
                          absl::UTCTimeZone());
}

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
      ++i;
    } else if (c < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 0xf]);
      ++i;
    } else if (c < 0x80) {
      out->push_back(static_cast<char>(c));
      ++i;
    } else {
      // Validate one UTF-8 sequence (RFC 3629: no overlongs, no surrogates).
      size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
      bool ok = n > 0 && c <= 0xf4 && i + n <= s.size();
      for (size_t k = 1; ok && k < n; ++k) {
        ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
      }
      if (ok && n == 3) {
        unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
        ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
      } else if (ok && n == 4) {
        unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
        ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
      }
      if (ok) {
        out->append(s.data() + i, n);
        i += n;
      } else {
        out->append("\\ufffd");
        ++i;
      }
    }
  }
  out->push_back('"');
}

const char* LocationName(v1::TokenLocation loc) {
  switch (loc) {
    case v1::TOKEN_LOCATION_AUTHORIZATION: return "authorization";
    case v1::TOKEN_LOCATION_COOKIE: return "cookie";
    case v1::TOKEN_LOCATION_QUERY: return "query";
    case v1::TOKEN_LOCATION_HEADER: return "header";
    case v1::TOKEN_LOCATION_WEBSOCKET_PROTOCOL: return "websocket_protocol";
    default: return "unknown";
  }
}

const char* KindName(v1::TokenKind kind) {
  switch (kind) {
    case v1::TOKEN_KIND_JWT: return "jwt";
    case v1::TOKEN_KIND_OPAQUE: return "opaque";
    case v1::TOKEN_KIND_JWE: return "jwe";
    default: return "unknown";
  }
}

namespace {

void Key(std::string* out, std::string_view key) {
  out->push_back(',');
  AppendJsonString(out, key);
  out->push_back(':');
}
void Str(std::string* out, std::string_view key, std::string_view v) {
  Key(out, key);
  AppendJsonString(out, v);
}
template <typename List>
void StrList(std::string* out, std::string_view key, const List& list) {
  Key(out, key);
  out->push_back('[');
  bool first = true;
  for (const std::string& s : list) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, s);
  }
  out->push_back(']');
}

void AppendToken(const v1::TokenInfo& t, std::string* out) {
  out->append("{\"kind\":");
  AppendJsonString(out, KindName(t.kind()));
  Str(out, "fp", t.fp());
  if (!t.jti().empty()) Str(out, "jti", t.jti());
  if (!t.sub().empty()) Str(out, "sub", t.sub());
  if (!t.iss().empty()) Str(out, "iss", t.iss());
  if (t.aud_size() > 0) StrList(out, "aud", t.aud());
  if (t.has_exp()) absl::StrAppend(out, ",\"exp\":", t.exp());
  if (t.has_nbf()) absl::StrAppend(out, ",\"nbf\":", t.nbf());
  if (t.has_iat()) absl::StrAppend(out, ",\"iat\":", t.iat());
  if (t.scopes_size() > 0) StrList(out, "scope", t.scopes());
  if (!t.client_id().empty()) Str(out, "client_id", t.client_id());
  if (!t.alg().empty() || t.kind() == v1::TOKEN_KIND_JWT) Str(out, "alg", t.alg());
  if (!t.kid().empty()) Str(out, "kid", t.kid());
  if (!t.typ().empty()) Str(out, "typ", t.typ());
  if (!t.jku().empty()) Str(out, "jku", t.jku());
  if (!t.x5u().empty()) Str(out, "x5u", t.x5u());
  if (t.has_jwk()) out->append(",\"jwk\":true");
  if (t.crit_size() > 0) StrList(out, "crit", t.crit());
  out->push_back('}');
}

}  // namespace

void AppendEventJson(const v1::UsageEvent& e, std::string* out) {
  out->append("{\"ts\":");
  AppendJsonString(out, FormatTimestamp(e.ts_us()));
  Str(out, "last_ts", FormatTimestamp(e.last_ts_us()));
  absl::StrAppend(out, ",\"count\":", e.count());
  Str(out, "agent", e.agent());
  Str(out, "service", e.service());
  Str(out, "method", e.method());
  Str(out, "path", e.path());
  Str(out, "client", e.client());
  Str(out, "server", e.server());
  if (e.status() == 0) {
    out->append(",\"status\":null");
  } else {
    absl::StrAppend(out, ",\"status\":", e.status());
  }
  Str(out, "location", LocationName(e.location()));
  if (!e.param().empty()) Str(out, "param", e.param());
  Key(out, "token");
  AppendToken(e.token(), out);
  StrList(out, "findings", e.findings());
  out->push_back('}');
}

JsonLinesSink::~JsonLinesSink() {
  Flush();
  if (file_ != stdout) fclose(file_);
}

void JsonLinesSink::Emit(const v1::UsageEvent& event) {
  line_.clear();
  AppendEventJson(event, &line_);
  line_.push_back('\n');
  fwrite(line_.data(), 1, line_.size(), file_);
}

void JsonLinesSink::Flush() { fflush(file_); }

}  // namespace tokenwatch::output
