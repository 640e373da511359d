#include "collector/http/router.h"

#include <utility>

namespace tokenwatch::collector::http {

void Router::Add(Route route) { routes_.push_back(std::move(route)); }

Router::Match Router::Find(std::string_view method,
                           std::string_view path) const {
  Match m;
  for (const Route& r : routes_) {
    std::string_view suffix;
    if (r.prefix) {
      if (path.size() <= r.path.size() ||
          path.substr(0, r.path.size()) != r.path)
        continue;
      suffix = path.substr(r.path.size());
    } else if (path != r.path) {
      continue;
    }
    if (r.method == method) {
      m.route = &r;
      m.suffix = suffix;
      return m;
    }
    if (!m.allow.empty()) m.allow.append(", ");
    m.allow.append(r.method);
  }
  return m;
}

}  // namespace tokenwatch::collector::http
