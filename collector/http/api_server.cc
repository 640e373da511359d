#include "collector/http/api_server.h"

#include <civetweb.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "collector/http/bearer_auth.h"
#include "collector/http/handlers/health.h"
#include "collector/http/handlers/revocations.h"
#include "collector/http/handlers/tokens.h"
#include "collector/http/listen_address.h"
#include "collector/http/response.h"
#include "common/log.h"

namespace tokenwatch::collector {

using http::ErrorResponse;
using http::Response;

namespace {

// Where civetweb's log lines go while this thread runs mg_start2().
thread_local std::string* start_log = nullptr;

bool HeaderEquals(mg_connection* conn, const char* name, std::string_view v) {
  const char* h = mg_get_header(conn, name);
  if (h == nullptr) return false;
  std::string_view hv = h;
  if (hv.size() != v.size()) return false;
  for (size_t i = 0; i < v.size(); ++i) {
    char a = hv[i] >= 'A' && hv[i] <= 'Z' ? hv[i] + ('a' - 'A') : hv[i];
    if (a != v[i]) return false;
  }
  return true;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? a[i] + ('a' - 'A') : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? b[i] + ('a' - 'A') : b[i];
    if (x != y) return false;
  }
  return true;
}

// RFC 9112: whitespace between a field name and the colon (section 5.1),
// Content-Length with Transfer-Encoding (6.1) and differing Content-Length
// values (6.3) are request smuggling's tools; a server must refuse them.
std::optional<std::string> AmbiguousFraming(const mg_request_info& ri) {
  std::optional<std::string_view> content_length;
  bool transfer_encoding = false;
  for (int i = 0; i < ri.num_headers; ++i) {
    std::string_view name =
        ri.http_headers[i].name ? ri.http_headers[i].name : "";
    std::string_view value =
        ri.http_headers[i].value ? ri.http_headers[i].value : "";
    if (name.empty() || name.find_first_of(" \t") != std::string_view::npos) {
      return "whitespace in a header field name";
    }
    // civetweb 1.15 drops spaces before the colon by overwriting them and
    // the colon with NULs in place ("Name :v" -> "Name\0\0v"), where
    // "Name: v" leaves "Name\0 v": a second NUL before the value is a space
    // that stood before the colon.
    const char* after_name = ri.http_headers[i].name + name.size() + 1;
    if (ri.http_headers[i].value != nullptr &&
        ri.http_headers[i].value > after_name && *after_name == '\0') {
      return "whitespace between a header field name and the colon";
    }
    if (EqualsIgnoreCase(name, "Transfer-Encoding")) transfer_encoding = true;
    if (EqualsIgnoreCase(name, "Content-Length")) {
      if (content_length.has_value() && *content_length != value) {
        return "two Content-Length headers with different values";
      }
      content_length = value;
    }
  }
  if (transfer_encoding && content_length.has_value()) {
    return "Content-Length together with Transfer-Encoding";
  }
  return std::nullopt;
}

// Reads the whole request body, up to kMaxBodyBytes, by `deadline`.
// civetweb's mg_read returns only when its buffer is full or the client
// stalls, so a dribbling client is bounded by the chunk size: small chunks
// (cheap: a revocation list is a few hundred bytes) keep the overshoot of
// the deadline to a chunk's worth of the client's rate.
std::optional<Response> ReadBody(mg_connection* conn, std::string* body,
                                 absl::Time deadline) {
  const mg_request_info* ri = mg_get_request_info(conn);
  if (ri->content_length > static_cast<long long>(ApiServer::kMaxBodyBytes)) {
    return ErrorResponse(413, "body over 1 MiB");
  }
  // Answered here, not by civetweb, since we took the whole request.
  if (HeaderEquals(conn, "Expect", "100-continue")) {
    mg_printf(conn, "HTTP/1.1 100 Continue\r\n\r\n");
  }
  char buf[16384];
  for (size_t chunk = 16;; chunk = std::min(chunk * 2, sizeof buf)) {
    if (absl::Now() > deadline) {
      return ErrorResponse(408, "request body not received in time");
    }
    int n = mg_read(conn, buf, chunk);
    if (n < 0) return ErrorResponse(400, "could not read the request body");
    if (n == 0) break;
    if (body->size() + static_cast<size_t>(n) > ApiServer::kMaxBodyBytes) {
      return ErrorResponse(413, "body over 1 MiB");
    }
    body->append(buf, static_cast<size_t>(n));
  }
  return std::nullopt;
}

void WriteResponse(mg_connection* conn, const Response& r, bool head_only) {
  // Debian's Abseil has its own string_view, so std::string_view pieces
  // are appended rather than passed to StrCat.
  std::string head = absl::StrCat("HTTP/1.1 ", r.status, " ");
  head.append(http::ReasonPhrase(r.status));
  head.append("\r\nContent-Type: ");
  head.append(r.content_type);
  absl::StrAppend(&head, "\r\nContent-Length: ", r.body.size(),
                  "\r\nCache-Control: no-store\r\n"
                  "X-Content-Type-Options: nosniff\r\nConnection: close\r\n");
  if (!r.allow.empty()) {
    head.append("Allow: ");
    head.append(r.allow);
    head.append("\r\n");
  }
  if (!r.www_authenticate.empty()) {
    head.append("WWW-Authenticate: ");
    head.append(r.www_authenticate);
    head.append("\r\n");
  }
  if (r.retry_after_s > 0) {
    absl::StrAppend(&head, "Retry-After: ", r.retry_after_s, "\r\n");
  }
  head.append("\r\n");
  if (!head_only) head.append(r.body);
  mg_write(conn, head.data(), head.size());
}

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

// The endpoints of this server, as the hooks given allow. /metrics gains
// the server's own counters.
http::Router MakeRouter(Store* store, ApiServer::Hooks hooks,
                        std::function<std::string()> api_metrics) {
  http::Router router;
  router.Add(http::HealthRoute(std::move(hooks.health)));
  if (hooks.metrics) {
    router.Add(
        http::MetricsRoute([metrics = std::move(hooks.metrics), api_metrics] {
          return metrics() + api_metrics();
        }));
  }
  router.Add(http::AlertsRoute(store));
  router.Add(http::TokensRoute(std::move(hooks.token), store));
  if (hooks.revoke) {
    router.Add(http::RevocationsRoute(std::move(hooks.revoke)));
  }
  return router;
}

}  // namespace

ApiServer::ApiServer(http::Router router, Options options)
    : router_(std::move(router)), options_(std::move(options)) {}

// Write endpoints: off without a configured token (secure by default, like
// Prometheus' admin API), else `Authorization: Bearer <token>` (RFC 6750).
// Failures are logged with the client's address (never what it sent),
// counted, and limited per address.
std::optional<Response> ApiServer::AuthorizeWrite(mg_connection* conn) {
  if (options_.write_token.empty()) {
    return ErrorResponse(403, "disabled: set collector.http_token_file");
  }
  const std::string address = mg_get_request_info(conn)->remote_addr;
  if (int wait = auth_limiter_.RetryAfterSeconds(address, NowMicros());
      wait > 0) {
    ++auth_rate_limited_;
    Response r = ErrorResponse(429, "too many failed authentications");
    r.retry_after_s = wait;
    return r;
  }
  BearerCheck check =
      CheckBearer(mg_get_header(conn, "Authorization"), options_.write_token);
  if (check == BearerCheck::kOk) return std::nullopt;
  ++auth_failures_;
  auth_limiter_.RecordFailure(address, NowMicros());
  uint64_t held = 0;
  if (auth_log_limit_.Allow(&held)) {
    log::Warning("API: failed authentication from %s (%s)%s", address,
                 check == BearerCheck::kMissing ? "no bearer token"
                                                : "wrong bearer token",
                 held > 0 ? absl::StrCat(" (", held, " more held back)")
                          : std::string());
  }
  if (check == BearerCheck::kMissing) {
    Response r = ErrorResponse(401, "bearer token required");
    r.www_authenticate = R"(Bearer realm="tokenwatch")";
    return r;
  }
  Response r = ErrorResponse(401, "invalid bearer token");
  r.www_authenticate = R"(Bearer realm="tokenwatch", error="invalid_token")";
  return r;
}

std::string ApiServer::ApiMetricsText() const {
  using prometheus::ClientMetric;
  using prometheus::MetricFamily;
  auto counter = [](uint64_t v, std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric m;
    m.label = std::move(labels);
    m.counter.value = static_cast<double>(v);
    return m;
  };
  const auto C = prometheus::MetricType::Counter;
  std::vector<MetricFamily> families = {
      {"tokenwatch_collector_api_auth_failures_total",
       "Write requests to the HTTP API refused for a missing or wrong "
       "bearer token.",
       C,
       {counter(auth_failures())}},
      {"tokenwatch_collector_api_refused_total",
       "HTTP API requests refused before a handler ran, by reason.",
       C,
       {counter(auth_rate_limited(), {{"reason", "auth_rate_limited"}}),
        counter(bad_framing(), {{"reason", "bad_framing"}}),
        counter(timeouts(), {{"reason", "timeout"}}),
        counter(client_connections_refused(),
                {{"reason", "client_connections"}})}}};
  return prometheus::TextSerializer().Serialize(families);
}

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(
    const std::string& listen, Store* store, Hooks hooks, Options options) {
  if (store == nullptr) {
    return absl::InvalidArgumentError("ApiServer needs a store");
  }
  absl::StatusOr<http::ListenAddress> address = http::ParseListen(listen);
  if (!address.ok()) return address.status();

  // Once per process; never undone, since servers may come and go.
  static std::once_flag init_once;
  std::call_once(init_once, [] { mg_init_library(MG_FEATURES_DEFAULT); });

  std::unique_ptr<ApiServer> server(
      new ApiServer(http::Router(), std::move(options)));
  ApiServer* self = server.get();
  server->connection_cap_ = std::make_unique<http::ConnectionCap>(
      server->options_.max_connections_per_client);
  server->router_ = MakeRouter(store, std::move(hooks),
                               [self] { return self->ApiMetricsText(); });
  server->listen_ = std::make_unique<http::ListenAddress>(*address);
  const std::string threads = absl::StrCat(kWorkerThreads);
  const std::string header_timeout_ms =
      absl::StrCat(absl::ToInt64Milliseconds(server->options_.header_timeout));
  // No document root: nothing on disk is ever served.
  const char* civetweb_options[] = {
      "listening_ports", address->civetweb_ports.c_str(), "num_threads",
      threads.c_str(), "request_timeout_ms", header_timeout_ms.c_str(),
      // The raw target reaches Handle(), which
      // decodes the identity once.
      "decode_url", "no", "enable_directory_listing", "no", "enable_keep_alive",
      "no", nullptr};
  mg_callbacks callbacks{};
  callbacks.begin_request = &ApiServer::BeginRequest;
  callbacks.init_connection = &ApiServer::InitConnection;
  // civetweb's own log lines (a client dropping a connection, ...) are
  // noise once running; during start-up, on this thread, they say why a
  // bind failed ("Address already in use"), which mg_error_data does not.
  callbacks.log_message = [](const mg_connection*, const char* message) {
    if (start_log != nullptr && start_log->empty() && message != nullptr) {
      *start_log = message;  // the first line is the cause
    }
    return 1;
  };
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = server.get();
  init.configuration_options = civetweb_options;
  char error_text[256] = "";
  unsigned error_code = 0;
  mg_error_data error{};
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof error_text;
  std::string last_log;
  start_log = &last_log;
  server->ctx_ = mg_start2(&init, &error);
  start_log = nullptr;
  if (server->ctx_ == nullptr) {
    std::string why = last_log.empty() ? error_text : last_log;
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen, ": ",
                     why.empty() ? "civetweb failed" : why));
  }
  mg_server_port bound{};
  if (mg_get_server_ports(server->ctx_, 1, &bound) != 1) {
    return absl::InternalError(
        absl::StrCat("cannot listen on ", listen, ": no port bound"));
  }
  server->port_ = bound.port;
  return server;
}

ApiServer::~ApiServer() {
  if (ctx_ == nullptr) return;
  // Once mg_stop() runs civetweb refuses to write, so a revocation in
  // flight would be applied without its client ever hearing so.
  {
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = true;
    idle_.wait_for(lock, absl::ToChronoMilliseconds(kDrainTimeout),
                   [this] { return in_flight_ == 0; });
  }
  http::WakeListener(*listen_, port_.load());
  mg_stop(ctx_);
}

int ApiServer::InitConnection(const mg_connection* conn, void**) {
  auto* self = static_cast<ApiServer*>(mg_get_user_data(mg_get_context(conn)));
  const int port = self->port_.load();
  if (port == 0) return 0;  // still starting
  static constexpr std::string_view kTooMany =
      "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
      "Content-Length: 49\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
      "{\"error\":\"too many connections from one address\"}";
  if (int refused = self->connection_cap_->Enforce(port, kTooMany);
      refused > 0) {
    self->client_connections_refused_ += static_cast<uint64_t>(refused);
    uint64_t held = 0;
    if (self->connections_log_limit_.Allow(&held)) {
      log::Warning("API: refused %d connection(s) over %d from one address%s",
                   refused, self->options_.max_connections_per_client,
                   held > 0 ? absl::StrCat(" (", held, " more held back)")
                            : std::string());
    }
  }
  return 0;
}

int ApiServer::BeginRequest(mg_connection* conn) {
  auto* self = static_cast<ApiServer*>(mg_get_request_info(conn)->user_data);
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    stopping = self->stopping_;
    if (!stopping) ++self->in_flight_;
  }
  if (stopping) {
    WriteResponse(conn, ErrorResponse(503, "shutting down"),
                  /*head_only=*/false);
    return -1;  // close without reading a body (see below)
  }
  bool body_unread = false;
  int status = self->Handle(conn, &body_unread);
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    --self->in_flight_;
  }
  self->idle_.notify_all();
  // 1..999: handled, and civetweb then reads the rest of the body to
  // discard it, at whatever rate the client sends (the slow-POST attack).
  // A negative value makes civetweb 1.15 close without reading it
  // (handle_request returns at once; keep-alive is off).
  return body_unread ? -1 : status;
}

int ApiServer::Handle(mg_connection* conn, bool* body_unread) {
  const absl::Time start = absl::Now();
  const mg_request_info* ri = mg_get_request_info(conn);
  // -1 (no Content-Length) may still carry a chunked body.
  *body_unread = ri->content_length != 0;
  if (std::optional<std::string> why = AmbiguousFraming(*ri)) {
    ++bad_framing_;
    *body_unread = true;
    WriteResponse(conn, ErrorResponse(400, *why), /*head_only=*/false);
    return 400;
  }
  http::Request request;
  request.method = ri->request_method ? ri->request_method : "";
  // The raw request target: local_uri is already decoded and cleaned of
  // "//" and dot segments, which would break identities like "https://…".
  std::string_view target = ri->request_uri ? ri->request_uri : "";
  if (!target.empty() && target.front() != '/') {
    // Absolute form ("http://host/path"): keep the path.
    size_t scheme = target.find("://");
    size_t path = scheme == std::string_view::npos
                      ? std::string_view::npos
                      : target.find('/', scheme + 3);
    target = path == std::string_view::npos ? std::string_view("/")
                                            : target.substr(path);
  }
  size_t qmark = target.find('?');
  request.path = target.substr(0, qmark);
  request.query =
      qmark == std::string_view::npos
          ? std::string_view(ri->query_string ? ri->query_string : "")
          : target.substr(qmark + 1);
  const bool head_only = request.method == "HEAD";

  Response response;
  http::Router::Match match = router_.Find(request.method, request.path);
  // A handler or the store throwing must not unwind through civetweb's C
  // frames, which would end the process.
  try {
    if (match.route == nullptr) {
      response = match.allow.empty() ? ErrorResponse(404, "not found")
                                     : http::MethodNotAllowed(match.allow);
    } else if (std::optional<Response> denied =
                   match.route->write ? AuthorizeWrite(conn) : std::nullopt) {
      // Before the body is read: a stranger's megabyte is not parsed.
      response = std::move(*denied);
    } else if (std::optional<Response> error =
                   match.route->write ? ReadBody(conn, &request.body,
                                                 start + options_.body_timeout)
                                      : std::nullopt) {
      if (error->status == 408) ++timeouts_;
      response = std::move(*error);
    } else {
      *body_unread = false;
      request.suffix = match.suffix;
      response = match.route->handler(request);
    }
  } catch (const std::exception& e) {
    response = ErrorResponse(500, absl::StrCat("internal error: ", e.what()));
  } catch (...) {
    response = ErrorResponse(500, "internal error");
  }
  WriteResponse(conn, response, head_only);
  return response.status;
}

}  // namespace tokenwatch::collector
