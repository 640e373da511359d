// The API's handler table (as Envoy's admin keeps one): each endpoint is a
// route, a method and a path (or a path prefix) with a small handler, so
// adding an endpoint is adding a row, not a branch.
#ifndef TOKENWATCH_COLLECTOR_HTTP_ROUTER_H_
#define TOKENWATCH_COLLECTOR_HTTP_ROUTER_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/http/response.h"

namespace tokenwatch::collector::http {

// A request as a handler sees it. The views point into the connection's
// request line and stay valid while the handler runs.
struct Request {
  std::string_view method;
  std::string_view path;    // raw: not percent-decoded, without the query
  std::string_view suffix;  // a prefix route's rest of the path
  std::string_view query;   // raw, without the '?'
  std::string body;         // read only for routes that take one
};

struct Route {
  std::string method;  // "GET", "POST"
  std::string path;    // exact, or with `prefix`, what the path starts with
  bool prefix = false;
  // Write endpoints need the API's bearer token (checked before the body
  // is read) and take a body of at most the server's limit.
  bool write = false;
  std::function<Response(const Request&)> handler;
};

class Router {
 public:
  void Add(Route route);

  struct Match {
    const Route* route = nullptr;  // null: see `allow`
    std::string_view suffix;
    // No route for the path: empty (a 404). Routes for the path but not
    // the method: the methods they take (a 405's Allow header).
    std::string allow;
  };
  // A prefix route matches only a longer path: its prefix alone is a 404.
  Match Find(std::string_view method, std::string_view path) const;

 private:
  std::vector<Route> routes_;
};

}  // namespace tokenwatch::collector::http

#endif  // TOKENWATCH_COLLECTOR_HTTP_ROUTER_H_
