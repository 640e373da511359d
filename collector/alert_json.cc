// AlertJson: the SPEC "Alert record" line, field for field and in order.
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "collector/model.h"

namespace tokenwatch::collector {

namespace {

// A JSON string literal. Control characters are \u-escaped and invalid
// UTF-8 (overlongs, surrogates, truncated sequences) becomes \ufffd, one per
// bad byte, so a hostile claim cannot break the line or the JSON.
void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    // Printable ASCII needs no escaping: append it in one run.
    size_t run = i;
    while (run < s.size()) {
      unsigned char r = static_cast<unsigned char>(s[run]);
      if (r < 0x20 || r >= 0x80 || r == '"' || r == '\\') break;
      ++run;
    }
    if (run > i) {
      out->append(s.data() + i, run - i);
      i = run;
      continue;
    }
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
    } else {
      // One UTF-8 sequence, validated as RFC 3629 section 4 describes.
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

// RFC 3339 in UTC with milliseconds, truncated like the agent's events:
// "2026-11-30T10:15:03.120Z".
void AppendTimestamp(std::string* out, int64_t ts_us) {
  out->push_back('"');
  out->append(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                               absl::FromUnixMicros(ts_us),
                               absl::UTCTimeZone()));
  out->push_back('"');
}

// `,"key":` — every field but an object's first.
void Key(std::string* out, std::string_view key) {
  out->push_back(',');
  AppendJsonString(out, key);
  out->push_back(':');
}

void StringField(std::string* out, std::string_view key,
                 std::string_view value) {
  Key(out, key);
  AppendJsonString(out, value);
}

void AppendToken(std::string* out, const Alert& a) {
  const v1::TokenInfo& t = a.token;
  out->append("{\"id\":");
  AppendJsonString(out, a.identity);
  StringField(out, "fp", t.fp());
  if (!t.jti().empty()) StringField(out, "jti", t.jti());
  if (!t.sub().empty()) StringField(out, "sub", t.sub());
  if (!t.iss().empty()) StringField(out, "iss", t.iss());
  if (t.aud_size() > 0) {
    // Always an array, even for a single-valued `aud` (RFC 7519 4.1.3
    // allows both forms; consumers should need only one).
    Key(out, "aud");
    out->push_back('[');
    for (int i = 0; i < t.aud_size(); ++i) {
      if (i > 0) out->push_back(',');
      AppendJsonString(out, t.aud(i));
    }
    out->push_back(']');
  }
  if (t.has_exp()) absl::StrAppend(out, ",\"exp\":", t.exp());
  if (!t.alg().empty()) StringField(out, "alg", t.alg());
  out->push_back('}');
}

}  // namespace

std::string AlertJson(const Alert& a) {
  std::string out;
  out.reserve(512);
  out.append("{\"id\":");
  AppendJsonString(&out, a.id);
  StringField(&out, "type", a.type);
  StringField(&out, "severity", a.severity);
  Key(&out, "ts");
  AppendTimestamp(&out, a.ts_us);
  Key(&out, "token");
  AppendToken(&out, a);
  StringField(&out, "service", a.service);
  StringField(&out, "method", a.method);
  StringField(&out, "path", a.path);
  StringField(&out, "client", a.client);
  StringField(&out, "agent", a.agent);
  if (a.status == 0) {
    out.append(",\"status\":null");
  } else {
    absl::StrAppend(&out, ",\"status\":", a.status);
  }
  if (!a.accepted.has_value()) {
    out.append(",\"accepted\":null");
  } else {
    out.append(*a.accepted ? ",\"accepted\":true" : ",\"accepted\":false");
  }
  StringField(&out, "detail", a.detail);
  absl::StrAppend(&out, ",\"count\":", a.count);
  Key(&out, "last_ts");
  // An alert that has not repeated may leave last_ts_us unset.
  AppendTimestamp(&out, a.last_ts_us != 0 ? a.last_ts_us : a.ts_us);
  out.push_back('}');
  return out;
}

}  // namespace tokenwatch::collector
