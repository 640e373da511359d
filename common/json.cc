#include "common/json.h"

#include <array>
#include <cstring>

namespace tokenwatch::util {

size_t Utf8SequenceAt(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  // One UTF-8 sequence (RFC 3629: no overlongs, no surrogates).
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
  return ok ? n : 0;
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    // ASCII runs first: the common case costs a byte compare.
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = Utf8SequenceAt(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void AppendValidUtf8(std::string* out, std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceAt(s, i);
    if (n == 0) {
      out->append("\xef\xbf\xbd");  // U+FFFD
      ++i;
    } else {
      out->append(s.data() + i, n);
      i += n;
    }
  }
}

namespace {

// Plain printable ASCII: written as is. Everything else (controls, '"',
// '\\', bytes of UTF-8 sequences) ends a plain run.
constexpr std::array<bool, 256> MakePlainTable() {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}
constexpr std::array<bool, 256> kPlain = MakePlainTable();

size_t PlainRunEnd(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  while (i + 8 <= n && (kPlain[p[i]] & kPlain[p[i + 1]] & kPlain[p[i + 2]] &
                        kPlain[p[i + 3]] & kPlain[p[i + 4]] & kPlain[p[i + 5]] &
                        kPlain[p[i + 6]] & kPlain[p[i + 7]])) {
    i += 8;
  }
  while (i < n && kPlain[p[i]]) ++i;
  return i;
}

}  // namespace

bool IsPlainJsonString(std::string_view s) {
  return PlainRunEnd(s, 0) == s.size();
}

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t first_run = PlainRunEnd(s, 0);
  if (first_run == s.size()) {
    // The usual string (an event writes a dozen per line): one write of
    // the quotes and the bytes.
    size_t at = out->size();
    out->resize(at + s.size() + 2);
    char* p = out->data() + at;
    p[0] = '"';
    if (!s.empty()) std::memcpy(p + 1, s.data(), s.size());
    p[s.size() + 1] = '"';
    return;
  }
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    // Plain printable ASCII needs no escaping: append it in one run.
    size_t run = i == 0 ? first_run : PlainRunEnd(s, i);
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
    } else if (c < 0x80) {
      out->push_back(static_cast<char>(c));
      ++i;
    } else {
      size_t n = Utf8SequenceAt(s, i);
      bool ok = n > 0;
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

}  // namespace tokenwatch::util
