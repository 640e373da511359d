// The collector's HTTP API (SPEC "Binaries", `--http-listen`): health,
// Prometheus metrics, alert queries, token look-ups and revocations, served
// by civetweb worker threads over a `Store`. This is the server: civetweb's
// lifecycle, draining at shutdown, the write token, the body limit and the
// response's wire form; the endpoints are rows of a handler table
// (collector/http/router.h), each in collector/http/handlers/.
#ifndef TOKENWATCH_COLLECTOR_HTTP_API_SERVER_H_
#define TOKENWATCH_COLLECTOR_HTTP_API_SERVER_H_

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "collector/http/handlers/alerts.h"
#include "collector/http/router.h"
#include "collector/store/store.h"

struct mg_connection;
struct mg_context;

namespace tokenwatch::collector {

namespace http {
struct ListenAddress;
}  // namespace http

// Endpoints:
//   GET  /healthz                       hooks.health() as application/json
//   GET  /metrics                       hooks.metrics(), Prometheus text
//   GET  /api/v1/alerts?type=&service=&since=&limit=
//                                       {"alerts":[...]}, newest first
//   GET  /api/v1/tokens/{identity}      the TokenRow; identity URL-encoded
//   POST /api/v1/revocations            ["jti",...] or {"jtis":[...]}
// Write endpoints (POST) need `Authorization: Bearer <options.write_token>`:
// 401 with a WWW-Authenticate challenge without it or with another token,
// 403 when no write token is configured. Reads stay open.
// Errors are JSON {"error":"..."}: 400 bad parameter or body, 404 unknown
// path or token, 405 wrong method (with Allow), 413 body over 1 MiB, 500
// store or hook error (503 for kUnavailable, and while shutting down).
//
// The store and the hooks are called from up to `kWorkerThreads` civetweb
// threads at once, so they must be thread-safe. Both must outlive the
// server.
class ApiServer {
 public:
  struct Hooks {
    // JSON body for /healthz; empty: {"status":"ok"}.
    std::function<std::string()> health;
    // Prometheus text exposition for /metrics; empty: /metrics is a 404.
    std::function<std::string()> metrics;
    // A token's current state (the engine is ahead of the store between
    // checkpoints); empty: read from the store.
    std::function<std::optional<TokenRow>(const std::string& identity)> token;
    // Adds jtis to the revocation list; empty: the endpoint is a 404.
    std::function<absl::Status(const std::vector<std::string>& jtis)> revoke;
  };

  struct Options {
    // The bearer token write endpoints require; empty: they answer 403.
    std::string write_token;
  };

  static constexpr int kWorkerThreads = 4;
  static constexpr size_t kMaxBodyBytes = 1 << 20;
  static constexpr size_t kMaxAlertLimit = http::kMaxAlertLimit;
  static constexpr absl::Duration kDrainTimeout = absl::Seconds(5);

  // `listen` is "IPV4:PORT" or "[IPV6]:PORT" ("localhost" means 127.0.0.1);
  // port 0 picks a free port (see port()). Errors name the address.
  static absl::StatusOr<std::unique_ptr<ApiServer>> Start(
      const std::string& listen, Store* store, Hooks hooks,
      Options options = {});

  // Lets the requests in flight finish (new ones get 503) for up to
  // kDrainTimeout, then stops listening and joins the workers.
  ~ApiServer();

  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // The port actually bound.
  int port() const { return port_; }

 private:
  ApiServer(http::Router router, Options options);

  static int BeginRequest(mg_connection* conn);
  int Handle(mg_connection* conn);  // returns the HTTP status sent

  const http::Router router_;
  const Options options_;
  // std primitives rather than absl::Mutex: ThreadSanitizer sees pthreads,
  // not Debian's uninstrumented Abseil (make test-tsan runs these tests).
  std::mutex mu_;
  std::condition_variable idle_;  // in_flight_ reached 0
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<http::ListenAddress> listen_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_HTTP_API_SERVER_H_
