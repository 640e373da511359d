#include "agent/jose/header_check.h"

#include "common/strings.h"

namespace tokenwatch::jose {
namespace {

// Hosts from a header are attacker-chosen: keep what a host name can hold.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 100)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '-' || c == '_' || c == ':' || c == '[' || c == ']';
    out.push_back(ok ? c : '?');
  }
  return out;
}

std::string UrlFinding(std::string_view field, std::string_view url,
                       std::string_view issuer_host) {
  std::string prefix = std::string(field) + ": ";
  std::string host = UrlHost(url);
  if (host.empty()) return prefix + "key URL that names no host";
  std::string shown = Printable(host);
  if (issuer_host.empty()) return prefix + "key URL on host " + shown;
  std::string issuer = UrlHost(issuer_host);
  if (issuer.empty()) {
    // A bare host name was passed: normalise it the same way.
    issuer = UrlHost(std::string("//") + std::string(issuer_host));
  }
  if (host == issuer) {
    return prefix + "key URL on the issuer's host (" + shown + ")";
  }
  return prefix + "key URL off the issuer's host (" + shown + ", issuer " +
         Printable(issuer) + ")";
}

bool Contains(std::string_view s, std::string_view needle) {
  return s.find(needle) != std::string_view::npos;
}

// Standard base64 (with '/' and '+'), as some IdPs use for kid (AWS Cognito:
// "1dtoZlv5dSvqPpzW3s3y+iEjlJgGxKCJtBbMjLUiY0k="). Such a kid may start
// with '/' without being a path.
bool LooksLikeBase64Kid(std::string_view kid) {
  if (kid.size() < 20 || kid.size() % 4 != 0) return false;
  for (char c : kid) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
    if (!ok) return false;
  }
  return true;
}

bool IsAbsolutePath(std::string_view kid) {
  if (util::StartsWithIgnoreCase(kid, "file:")) return true;
  if (kid.size() >= 3 &&
      ((kid[0] >= 'A' && kid[0] <= 'Z') || (kid[0] >= 'a' && kid[0] <= 'z')) &&
      kid[1] == ':' && (kid[2] == '\\' || kid[2] == '/')) {
    return true;  // C:\ or C:/
  }
  if (kid.empty() || (kid[0] != '/' && kid[0] != '\\')) return false;
  return !LooksLikeBase64Kid(kid);
}

// The patterns of `candidates` found in `kid`, space separated.
template <size_t N>
std::string Matches(std::string_view kid,
                    const std::string_view (&candidates)[N], bool ignore_case) {
  std::string found;
  for (std::string_view c : candidates) {
    bool hit =
        ignore_case ? util::ContainsIgnoreCase(kid, c) : Contains(kid, c);
    if (!hit) continue;
    if (!found.empty()) found += ' ';
    // Show the keyword of " or " and " union " without its spaces.
    std::string_view shown = c;
    while (!shown.empty() && shown.front() == ' ') shown.remove_prefix(1);
    while (!shown.empty() && shown.back() == ' ') shown.remove_suffix(1);
    found += shown;
  }
  return found;
}

void KidFindings(std::string_view kid, std::vector<std::string>* out) {
  if (kid.empty()) return;
  static constexpr std::string_view kTraversal[] = {"../", "..\\"};
  std::string traversal = Matches(kid, kTraversal, /*ignore_case=*/false);
  // URL-encoded "..", and a kid that ends in ".." (".." or "a/..").
  if (util::ContainsIgnoreCase(kid, "%2e%2e") ||
      util::ContainsIgnoreCase(kid, ".%2e") ||
      util::ContainsIgnoreCase(kid, "%2e.") || kid == ".." ||
      util::EndsWith(kid, "/..") || util::EndsWith(kid, "\\..")) {
    if (!traversal.empty()) traversal += ' ';
    traversal += "..";
  }
  if (!traversal.empty())
    out->push_back("kid: path traversal (" + traversal + ")");
  if (IsAbsolutePath(kid)) out->push_back("kid: absolute path");
  if (Contains(kid, std::string_view("\0", 1))) {
    out->push_back("kid: NUL byte (truncates a file path)");
  }
  bool control = false;
  for (char c : kid) {
    auto u = static_cast<unsigned char>(c);
    control |= (u != 0 && u < 0x20) || u == 0x7f;
  }
  if (control) out->push_back("kid: control characters (CR, LF, ...)");
  static constexpr std::string_view kSqlCase[] = {"'", "\"", ";", "--", "/*"};
  static constexpr std::string_view kSqlWords[] = {" or ", " union "};
  std::string sql = Matches(kid, kSqlCase, /*ignore_case=*/false);
  std::string words = Matches(kid, kSqlWords, /*ignore_case=*/true);
  if (!words.empty()) sql += (sql.empty() ? "" : " ") + words;
  if (!sql.empty()) out->push_back("kid: SQL metacharacters (" + sql + ")");
  static constexpr std::string_view kShell[] = {"|", "`", "$(", "&&", ">", "<"};
  std::string shell = Matches(kid, kShell, /*ignore_case=*/false);
  if (!shell.empty()) {
    out->push_back("kid: shell metacharacters (" + shell + ")");
  }
}

}  // namespace

std::string UrlHost(std::string_view url) {
  size_t start;
  size_t scheme_end = url.find("://");
  if (util::StartsWith(url, "//")) {
    start = 2;
  } else if (scheme_end != std::string_view::npos && scheme_end > 0 &&
             url.find_first_of("/?#\\") > scheme_end) {
    start = scheme_end + 3;
  } else {
    return "";
  }
  std::string_view authority = url.substr(start);
  // WHATWG URL: '\' ends the authority like '/' for http(s).
  authority = authority.substr(0, authority.find_first_of("/?#\\"));
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) authority.remove_prefix(at + 1);
  std::string_view host;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return "";
    host = authority.substr(0, close + 1);
  } else {
    host = authority.substr(0, authority.find(':'));
  }
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  std::string out(host);
  for (char& c : out) c = util::AsciiLower(c);
  return out;
}

std::vector<std::string> HeaderFindings(const v1::TokenInfo& header,
                                        std::string_view issuer_host) {
  std::vector<std::string> out;
  if (!header.jku().empty()) {
    out.push_back(UrlFinding("jku", header.jku(), issuer_host));
  }
  if (!header.x5u().empty()) {
    out.push_back(UrlFinding("x5u", header.x5u(), issuer_host));
  }
  if (header.has_jwk()) {
    out.push_back("jwk: embedded public key (the token carries its own key)");
  }
  KidFindings(header.kid(), &out);
  return out;
}

}  // namespace tokenwatch::jose
