// The collector's HTTP API (SPEC "Binaries", `--http-listen`): health,
// Prometheus metrics, alert queries, token look-ups and revocations, served
// by civetweb worker threads over a `Store`. This is the server: civetweb's
// lifecycle, draining at shutdown, the write token, the body limit and the
// response's wire form; the endpoints are rows of a handler table
// (collector/http/router.h), each in collector/http/handlers/.
#ifndef TOKENWATCH_COLLECTOR_HTTP_API_SERVER_H_
#define TOKENWATCH_COLLECTOR_HTTP_API_SERVER_H_

#include <atomic>
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
#include "collector/http/client_limiter.h"
#include "collector/http/connection_cap.h"
#include "collector/http/handlers/alerts.h"
#include "collector/http/router.h"
#include "collector/store/store.h"
#include "common/log.h"

struct mg_connection;
struct mg_context;

namespace tokenwatch::collector {

namespace http {
struct ListenAddress;
}  // namespace http

// Outside ApiServer so that `Options options = {}` may default it.
struct ApiServerOptions {
  // civetweb's request_timeout_ms: the whole header block, from accept.
  static constexpr absl::Duration kHeaderTimeout = absl::Seconds(5);
  static constexpr absl::Duration kBodyTimeout = absl::Seconds(10);
  // The bearer token write endpoints require; empty: they answer 403.
  std::string write_token;
  // The whole header block must arrive within header_timeout of the
  // connection (civetweb may overshoot by up to one more), a body within
  // body_timeout of the request's start.
  absl::Duration header_timeout = kHeaderTimeout;
  absl::Duration body_timeout = kBodyTimeout;
  // Connections open at once from one client address; more are answered
  // 429 and closed before their headers are read (http/connection_cap.h).
  int max_connections_per_client = 16;
};

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
// Hostile clients (docs/security.md, "Hostile clients: HTTP API and
// store"): a request whose framing RFC 9112 calls ambiguous (two differing
// Content-Lengths, Content-Length with Transfer-Encoding, whitespace in a
// header name) gets a 400; a refused request (401, 413, 429, 400) is
// answered and the connection closed without reading the body; headers
// must arrive within kHeaderTimeout, a body within kBodyTimeout (408);
// after kMaxAuthFailures failed authentications within kAuthFailureWindow
// an address gets 429 with Retry-After. Failures are logged (address, never
// the token; rate-limited) and counted in /metrics.
//
// The store and the hooks are called from up to `kWorkerThreads` civetweb
// threads at once, so they must be thread-safe. Both must outlive the
// server.
class ApiServer {
 public:
  // Enough workers that slow clients, each bounded by the deadlines below,
  // cannot hold them all while /healthz and /metrics wait (civetweb holds
  // a worker from accept to close).
  static constexpr int kWorkerThreads = 64;
  static constexpr absl::Duration kHeaderTimeout =
      ApiServerOptions::kHeaderTimeout;
  static constexpr absl::Duration kBodyTimeout = ApiServerOptions::kBodyTimeout;

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

  using Options = ApiServerOptions;

  static constexpr size_t kMaxBodyBytes = 1 << 20;
  static constexpr int kMaxAuthFailures = 10;
  static constexpr absl::Duration kAuthFailureWindow = absl::Seconds(60);
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
  int port() const { return port_.load(); }

  // For /metrics: failed authentications of write requests, and requests
  // refused before a handler ran (framing, deadline, rate limit).
  uint64_t auth_failures() const { return auth_failures_.load(); }
  uint64_t auth_rate_limited() const { return auth_rate_limited_.load(); }
  uint64_t bad_framing() const { return bad_framing_.load(); }
  uint64_t timeouts() const { return timeouts_.load(); }
  uint64_t client_connections_refused() const {
    return client_connections_refused_.load();
  }

 private:
  ApiServer(http::Router router, Options options);

  static int BeginRequest(mg_connection* conn);
  // civetweb's init_connection: a worker took a new connection.
  static int InitConnection(const mg_connection* conn, void** conn_data);
  // Returns the HTTP status sent; `*body_unread` when the connection must
  // close without civetweb draining the rest of the request.
  int Handle(mg_connection* conn, bool* body_unread);
  std::optional<http::Response> AuthorizeWrite(mg_connection* conn);
  std::string ApiMetricsText() const;

  http::Router router_;
  const Options options_;
  http::AuthFailureLimiter auth_limiter_{
      kMaxAuthFailures, absl::ToInt64Microseconds(kAuthFailureWindow)};
  std::atomic<uint64_t> auth_failures_{0};
  std::atomic<uint64_t> auth_rate_limited_{0};
  std::atomic<uint64_t> bad_framing_{0};
  std::atomic<uint64_t> timeouts_{0};
  std::atomic<uint64_t> client_connections_refused_{0};
  std::unique_ptr<http::ConnectionCap> connection_cap_;
  // One log line per 10 s each: a hostile client must not flood the log.
  log::RateLimit auth_log_limit_;
  log::RateLimit connections_log_limit_;
  // std primitives rather than absl::Mutex: ThreadSanitizer sees pthreads,
  // not Debian's uninstrumented Abseil (make test-tsan runs these tests).
  std::mutex mu_;
  std::condition_variable idle_;  // in_flight_ reached 0
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<http::ListenAddress> listen_;
  mg_context* ctx_ = nullptr;
  // Set once listening; read by workers (InitConnection).
  std::atomic<int> port_{0};
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_HTTP_API_SERVER_H_
