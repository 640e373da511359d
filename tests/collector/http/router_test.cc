// The API's handler table: exact and prefix paths, 404 for no path, 405
// with the methods a path takes.
#include "collector/http/router.h"

#include <gtest/gtest.h>

#include <string>

namespace tokenwatch::collector::http {
namespace {

Route Named(std::string method, std::string path, bool prefix = false) {
  Route r{std::move(method), std::move(path), prefix};
  r.handler = [name = r.method + " " + r.path](const Request&) {
    return JsonResponse(name);
  };
  return r;
}

std::string Call(const Router& router, std::string_view method,
                 std::string_view path) {
  Router::Match m = router.Find(method, path);
  if (m.route == nullptr) return m.allow.empty() ? "404" : "405 " + m.allow;
  Request request;
  request.suffix = m.suffix;
  return m.route->handler(request).body + " [" + std::string(m.suffix) + "]";
}

TEST(RouterTest, ExactAndPrefixPaths) {
  Router router;
  router.Add(Named("GET", "/healthz"));
  router.Add(Named("GET", "/api/v1/tokens/", /*prefix=*/true));
  EXPECT_EQ(Call(router, "GET", "/healthz"), "GET /healthz []");
  EXPECT_EQ(Call(router, "GET", "/api/v1/tokens/a%7Cb"),
            "GET /api/v1/tokens/ [a%7Cb]");
  // A prefix alone names nothing; neither does an exact path plus more.
  EXPECT_EQ(Call(router, "GET", "/api/v1/tokens/"), "404");
  EXPECT_EQ(Call(router, "GET", "/healthz/x"), "404");
  EXPECT_EQ(Call(router, "GET", "/"), "404");
}

TEST(RouterTest, WrongMethodNamesTheMethodsThePathTakes) {
  Router router;
  router.Add(Named("GET", "/healthz"));
  router.Add(Named("POST", "/api/v1/revocations"));
  router.Add(Named("DELETE", "/api/v1/revocations"));
  EXPECT_EQ(Call(router, "HEAD", "/healthz"), "405 GET");
  EXPECT_EQ(Call(router, "GET", "/api/v1/revocations"), "405 POST, DELETE");
  EXPECT_EQ(Call(router, "DELETE", "/api/v1/revocations"),
            "DELETE /api/v1/revocations []");
}

}  // namespace
}  // namespace tokenwatch::collector::http
