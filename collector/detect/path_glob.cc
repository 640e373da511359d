#include "collector/detect/path_glob.h"

#include <vector>

namespace tokenwatch::collector {
namespace {

std::vector<std::string_view> Segments(std::string_view p) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) out.push_back(p.substr(i, j - i));  // empty segments collapse
    i = j + 1;
  }
  return out;
}

// Iterative matcher with backtracking over the last `**` (linear in
// practice, never exponential).
bool Match(const std::vector<std::string_view>& pat,
           const std::vector<std::string_view>& path) {
  size_t p = 0, s = 0, star_p = std::string_view::npos, star_s = 0;
  while (s < path.size()) {
    if (p < pat.size() && pat[p] == "**") {
      star_p = p++;
      star_s = s;
    } else if (p < pat.size() && (pat[p] == "*" || pat[p] == path[s])) {
      ++p;
      ++s;
    } else if (star_p != std::string_view::npos) {
      p = star_p + 1;
      s = ++star_s;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == "**") ++p;
  return p == pat.size();
}

}  // namespace

bool PathGlobMatches(std::string_view pattern, std::string_view path) {
  return Match(Segments(pattern), Segments(path));
}

}  // namespace tokenwatch::collector
