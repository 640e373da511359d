#include "collector/http/api_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "collector/alert_json.h"
#include "collector/http/bearer_auth.h"
#include "common/alert_type.h"
#include "common/json.h"
#include "common/time_format.h"
#include "simdjson.h"

namespace tokenwatch::collector {

using util::AppendJsonString;

namespace api_server_internal {

// What --http-listen names, parsed.
struct ListenAddress {
  std::string civetweb_ports;  // civetweb's "listening_ports" value
  int family = AF_INET;
  unsigned char addr[16] = {};  // network order; 4 bytes for AF_INET
};

}  // namespace api_server_internal

namespace {

using api_server_internal::ListenAddress;

// Where civetweb's log lines go while this thread runs mg_start2().
thread_local std::string* start_log = nullptr;

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kPrometheusText = "text/plain; version=0.0.4";
constexpr std::string_view kAlertsPath = "/api/v1/alerts";
constexpr std::string_view kTokensPrefix = "/api/v1/tokens/";
constexpr std::string_view kRevocationsPath = "/api/v1/revocations";

struct Response {
  int status = 200;
  std::string_view content_type = kJson;
  std::string body;
  std::string_view allow;             // the Allow header of a 405
  std::string_view www_authenticate;  // the challenge of a 401
};

// ---------------------------------------------------------------------------
// JSON output. Claims and names come from observed tokens, so every string
// is escaped and invalid UTF-8 becomes U+FFFD: the output is always JSON.

template <typename Strings>
void AppendJsonStringArray(std::string* out, const Strings& items) {
  out->push_back('[');
  bool first = true;
  for (const auto& item : items) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, item);
  }
  out->push_back(']');
}

// A SPEC timestamp as a JSON string (it holds nothing to escape).
void AppendJsonTime(std::string* out, int64_t ts_us) {
  out->push_back('"');
  AppendTimestamp(out, ts_us);
  out->push_back('"');
}

Response ErrorResponse(int status, std::string_view message) {
  Response r;
  r.status = status;
  r.body = "{\"error\":";
  AppendJsonString(&r.body, message);
  r.body.push_back('}');
  return r;
}

Response JsonResponse(std::string body) {
  Response r;
  r.body = std::move(body);
  return r;
}

Response MethodNotAllowed(std::string_view allow) {
  Response r = ErrorResponse(405, "method not allowed");
  r.allow = allow;
  return r;
}

// A failed Store or hook call, by canonical code; the message is ours or
// the store's and never holds a raw token (none is ever stored).
Response StatusResponse(const absl::Status& status) {
  int http = 500;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      http = 400;
      break;
    case absl::StatusCode::kUnavailable:
      http = 503;
      break;
    default:
      break;
  }
  return ErrorResponse(http, std::string(status.message()));
}

std::string TokenRowJson(const TokenRow& row) {
  const v1::TokenInfo& t = row.token;
  std::string out = "{\"id\":";
  AppendJsonString(&out, row.identity);
  out.append(",\"fp\":");
  AppendJsonString(&out, t.fp());
  out.append(",\"iss\":");
  AppendJsonString(&out, t.iss());
  out.append(",\"sub\":");
  AppendJsonString(&out, t.sub());
  out.append(",\"jti\":");
  AppendJsonString(&out, t.jti());
  out.append(",\"aud\":");
  AppendJsonStringArray(&out, t.aud());
  out.append(",\"exp\":");
  out.append(t.has_exp() ? absl::StrCat(t.exp()) : "null");
  out.append(",\"alg\":");
  AppendJsonString(&out, t.alg());
  out.append(",\"first_seen\":");
  AppendJsonTime(&out, row.first_seen_us);
  out.append(",\"last_seen\":");
  AppendJsonTime(&out, row.last_seen_us);
  absl::StrAppend(&out, ",\"uses\":", row.uses, ",\"services\":");
  AppendJsonStringArray(&out, row.services);
  out.append(",\"clients\":");
  AppendJsonStringArray(&out, row.clients);
  out.append(",\"uses_by_service\":{");
  static constexpr const char* kClassNames[] = {"none", "1xx", "2xx",
                                                "3xx",  "4xx", "5xx"};
  bool first = true;
  for (const auto& [service, counts] : row.uses_by_service) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(&out, service);
    out.push_back(':');
    for (size_t i = 0; i < counts.size(); ++i) {
      absl::StrAppend(&out, i == 0 ? "{\"" : ",\"", kClassNames[i],
                      "\":", counts[i]);
    }
    out.push_back('}');
  }
  out.append("}}");
  return out;
}

// ---------------------------------------------------------------------------
// Request parsing.

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding; `plus_is_space` adds the form encoding of a
// query string. nullopt on a broken escape.
std::optional<std::string> PercentDecode(std::string_view s,
                                         bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Unix seconds (an optional fraction down to microseconds), or RFC 3339
// with an optional fraction and a Z or numeric offset.
std::optional<int64_t> ParseSince(const std::string& v) {
  std::string_view sv = v;
  size_t dot = sv.find('.');
  std::string_view whole = sv.substr(0, dot);
  std::string_view frac =
      dot == std::string_view::npos ? std::string_view() : sv.substr(dot + 1);
  // 12 digits reach the year 33658; more would overflow microseconds.
  if (AllDigits(whole) && whole.size() <= 12 &&
      (dot == std::string_view::npos || AllDigits(frac))) {
    int64_t us = 0;
    for (char c : whole) us = us * 10 + (c - '0');
    us *= 1000000;
    int64_t scale = 100000;
    for (size_t i = 0; i < frac.size() && scale > 0; ++i, scale /= 10) {
      us += (frac[i] - '0') * scale;
    }
    return us;
  }
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, v, &t, &err)) return std::nullopt;
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) {
    return std::nullopt;
  }
  return absl::ToUnixMicros(t);
}

std::optional<size_t> ParseLimit(std::string_view v) {
  // Five digits cover the maximum; anything longer is out of range anyway.
  if (!AllDigits(v) || v.size() > 5) return std::nullopt;
  size_t n = 0;
  for (char c : v) n = n * 10 + static_cast<size_t>(c - '0');
  if (n < 1 || n > ApiServer::kMaxAlertLimit) return std::nullopt;
  return n;
}

// A query of GET /api/v1/alerts. A type that is no alert type matches no
// alert: the answer is an empty list, as before types were an enum.
struct AlertsRequest {
  AlertQuery query;
  bool unknown_type = false;
};

// Unknown or repeated parameters are refused rather than ignored: a typo
// such as `servce=orders` would otherwise silently widen the answer.
// An empty value means "not given", as an HTML form sends it.
std::variant<AlertsRequest, Response> ParseAlertQuery(std::string_view query) {
  AlertsRequest request;
  AlertQuery& q = request.query;
  enum Param { kType, kService, kSince, kLimit, kParamCount };
  static constexpr std::string_view kNames[kParamCount] = {"type", "service",
                                                           "since", "limit"};
  bool seen[kParamCount] = {};
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view()
                                          : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::optional<std::string> name =
        PercentDecode(pair.substr(0, eq), /*plus_is_space=*/true);
    if (!name) return ErrorResponse(400, "bad query string encoding");
    std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    int index = 0;
    while (index < kParamCount && kNames[index] != *name) ++index;
    if (index == kParamCount) {
      return ErrorResponse(
          400, absl::StrCat("unknown parameter '", *name,
                            "' (expected type, service, since or limit)"));
    }
    if (seen[index]) {
      return ErrorResponse(400,
                           absl::StrCat("parameter '", *name, "' given twice"));
    }
    seen[index] = true;
    // `since` keeps '+' literal: it is the sign of an RFC 3339 offset,
    // which clients rarely escape, and never a space there.
    std::optional<std::string> value =
        PercentDecode(raw_value, /*plus_is_space=*/index != kSince);
    if (!value) {
      return ErrorResponse(
          400, absl::StrCat("bad encoding of parameter '", *name, "'"));
    }
    if (value->empty()) continue;
    switch (index) {
      case kType:
        q.type = ParseAlertType(*value);
        request.unknown_type = !q.type.has_value();
        break;
      case kService:
        q.service = std::move(*value);
        break;
      case kSince: {
        std::optional<int64_t> since = ParseSince(*value);
        if (!since) {
          return ErrorResponse(400,
                               "bad parameter 'since': expected RFC 3339 time "
                               "(2026-11-30T10:15:03Z) or Unix seconds");
        }
        q.since_us = *since;
        break;
      }
      case kLimit: {
        std::optional<size_t> limit = ParseLimit(*value);
        if (!limit) {
          return ErrorResponse(
              400, absl::StrCat("bad parameter 'limit': expected an integer "
                                "from 1 to ",
                                ApiServer::kMaxAlertLimit));
        }
        q.limit = *limit;
        break;
      }
    }
  }
  return request;
}

// A JSON list of jti strings, bare or as {"jtis":[...]}.
std::variant<std::vector<std::string>, Response> ParseJtis(
    const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body).get(root) != simdjson::SUCCESS) {
    return ErrorResponse(400, "body is not valid JSON");
  }
  simdjson::dom::array list;
  if (root.is_object()) {
    if (root["jtis"].get_array().get(list) != simdjson::SUCCESS) {
      return ErrorResponse(400, "expected {\"jtis\":[\"jti\",...]}");
    }
  } else if (root.get_array().get(list) != simdjson::SUCCESS) {
    return ErrorResponse(400,
                         "expected a JSON list of jti strings, or "
                         "{\"jtis\":[...]}");
  }
  std::vector<std::string> jtis;
  jtis.reserve(list.size());
  for (simdjson::dom::element item : list) {
    std::string_view jti;
    if (item.get_string().get(jti) != simdjson::SUCCESS) {
      return ErrorResponse(400, "every jti must be a string");
    }
    if (jti.empty()) return ErrorResponse(400, "empty jti");
    jtis.emplace_back(jti);
  }
  return jtis;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

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

// Reads the whole request body, up to kMaxBodyBytes.
std::optional<Response> ReadBody(mg_connection* conn, std::string* body) {
  const mg_request_info* ri = mg_get_request_info(conn);
  if (ri->content_length > static_cast<long long>(ApiServer::kMaxBodyBytes)) {
    return ErrorResponse(413, "body over 1 MiB");
  }
  // Answered here, not by civetweb, since we took the whole request.
  if (HeaderEquals(conn, "Expect", "100-continue")) {
    mg_printf(conn, "HTTP/1.1 100 Continue\r\n\r\n");
  }
  char buf[16384];
  for (;;) {
    int n = mg_read(conn, buf, sizeof buf);
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
  head.append(ReasonPhrase(r.status));
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
  head.append("\r\n");
  if (!head_only) head.append(r.body);
  mg_write(conn, head.data(), head.size());
}

// Write endpoints: off without a configured token (secure by default, like
// Prometheus' admin API), else `Authorization: Bearer <token>` (RFC 6750).
std::optional<Response> AuthorizeWrite(mg_connection* conn,
                                       const std::string& write_token) {
  if (write_token.empty()) {
    return ErrorResponse(403, "disabled: set collector.http_token_file");
  }
  switch (CheckBearer(mg_get_header(conn, "Authorization"), write_token)) {
    case BearerCheck::kOk:
      return std::nullopt;
    case BearerCheck::kMissing: {
      Response r = ErrorResponse(401, "bearer token required");
      r.www_authenticate = R"(Bearer realm="tokenwatch")";
      return r;
    }
    case BearerCheck::kInvalid:
      break;
  }
  Response r = ErrorResponse(401, "invalid bearer token");
  r.www_authenticate = R"(Bearer realm="tokenwatch", error="invalid_token")";
  return r;
}

// "IPV4:PORT", "[IPV6]:PORT" or "localhost:PORT", checked strictly so
// nothing else reaches civetweb's option syntax (a ',' would add a port).
absl::StatusOr<ListenAddress> ParseListen(const std::string& listen) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad listen address '", listen, "': ", std::string(why)));
  };
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return bad("expected HOST:PORT");
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  if (!AllDigits(port) || port.size() > 5 || std::stoi(port) > 65535) {
    return bad("port must be a number from 0 to 65535");
  }
  ListenAddress out;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    out.family = AF_INET6;
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(),
                  out.addr) != 1) {
      return bad("not an IPv6 address");
    }
    if (!mg_check_feature(MG_FEATURES_IPV6)) {
      return absl::UnimplementedError(
          absl::StrCat("cannot listen on ", listen,
                       ": this civetweb build has no IPv6 support"));
    }
  } else {
    if (host == "localhost") host = "127.0.0.1";
    out.family = AF_INET;
    if (inet_pton(AF_INET, host.c_str(), out.addr) != 1) {
      return bad("host must be an IPv4 address, [IPv6 address] or localhost");
    }
  }
  out.civetweb_ports = absl::StrCat(host, ":", std::stoi(port));
  return out;
}

// civetweb's master thread polls its listening socket with a 2 s timeout
// and looks at the stop flag only between polls, so mg_stop() alone takes
// up to 2 s. Shutting that socket down first wakes the poll at once. The
// socket is found by what it is bound to: a listening TCP socket on our
// exact address and port can only be ours (civetweb sets no SO_REUSEPORT),
// and it stays open until mg_stop() closes it.
void WakeListener(const ListenAddress& listen, int port) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;  // mg_stop still works, only slower
  while (dirent* entry = readdir(dir)) {
    int fd = -1;
    if (sscanf(entry->d_name, "%d", &fd) != 1 || fd == dirfd(dir)) continue;
    int accepting = 0;
    socklen_t len = sizeof accepting;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 ||
        !accepting) {
      continue;
    }
    sockaddr_storage bound{};
    len = sizeof bound;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0 ||
        bound.ss_family != listen.family) {
      continue;
    }
    bool same = false;
    if (bound.ss_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&bound);
      same = ntohs(sin->sin_port) == port &&
             memcmp(&sin->sin_addr, listen.addr, 4) == 0;
    } else {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&bound);
      same = ntohs(sin6->sin6_port) == port &&
             memcmp(&sin6->sin6_addr, listen.addr, 16) == 0;
    }
    if (same) shutdown(fd, SHUT_RDWR);
  }
  closedir(dir);
}

}  // namespace

ApiServer::ApiServer(Store* store, Hooks hooks, Options options)
    : store_(store), hooks_(std::move(hooks)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(
    const std::string& listen, Store* store, Hooks hooks, Options options) {
  if (store == nullptr) {
    return absl::InvalidArgumentError("ApiServer needs a store");
  }
  absl::StatusOr<ListenAddress> address = ParseListen(listen);
  if (!address.ok()) return address.status();

  // Once per process; never undone, since servers may come and go.
  static std::once_flag init_once;
  std::call_once(init_once, [] { mg_init_library(MG_FEATURES_DEFAULT); });

  std::unique_ptr<ApiServer> server(
      new ApiServer(store, std::move(hooks), std::move(options)));
  server->listen_ = std::make_unique<ListenAddress>(*address);
  const std::string threads = absl::StrCat(kWorkerThreads);
  // No document root: nothing on disk is ever served.
  const char* civetweb_options[] = {"listening_ports",
                                    address->civetweb_ports.c_str(),
                                    "num_threads",
                                    threads.c_str(),
                                    "request_timeout_ms",
                                    "10000",
                                    "enable_directory_listing",
                                    "no",
                                    "enable_keep_alive",
                                    "no",
                                    nullptr};
  mg_callbacks callbacks{};
  callbacks.begin_request = &ApiServer::BeginRequest;
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
  WakeListener(*listen_, port_);
  mg_stop(ctx_);
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
    return 503;
  }
  int status = self->Handle(conn);
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    --self->in_flight_;
  }
  self->idle_.notify_all();
  return status;  // handled (1..999); civetweb sends nothing more
}

int ApiServer::Handle(mg_connection* conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  std::string_view method = ri->request_method ? ri->request_method : "";
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
  std::string_view path = target.substr(0, qmark);
  std::string_view query =
      qmark == std::string_view::npos
          ? std::string_view(ri->query_string ? ri->query_string : "")
          : target.substr(qmark + 1);
  const bool is_get = method == "GET";
  const bool head_only = method == "HEAD";

  Response response;
  // A hook or the store throwing must not unwind through civetweb's C
  // frames, which would end the process.
  try {
    if (path == "/healthz") {
      if (!is_get) {
        response = MethodNotAllowed("GET");
      } else {
        response = JsonResponse(hooks_.health ? hooks_.health()
                                              : "{\"status\":\"ok\"}");
      }
    } else if (path == "/metrics" && hooks_.metrics) {
      if (!is_get) {
        response = MethodNotAllowed("GET");
      } else {
        response = JsonResponse(hooks_.metrics());
        response.content_type = kPrometheusText;
      }
    } else if (path == kAlertsPath) {
      if (!is_get) {
        response = MethodNotAllowed("GET");
      } else {
        std::variant<AlertsRequest, Response> q = ParseAlertQuery(query);
        if (auto* error = std::get_if<Response>(&q)) {
          response = std::move(*error);
        } else if (std::get<AlertsRequest>(q).unknown_type) {
          response = JsonResponse("{\"alerts\":[]}");
        } else {
          absl::StatusOr<std::vector<Alert>> alerts =
              store_->QueryAlerts(std::get<AlertsRequest>(q).query);
          if (!alerts.ok()) {
            response = StatusResponse(alerts.status());
          } else {
            std::string body = "{\"alerts\":[";
            for (size_t i = 0; i < alerts->size(); ++i) {
              if (i > 0) body.push_back(',');
              body.append(AlertJson((*alerts)[i]));
            }
            body.append("]}");
            response = JsonResponse(std::move(body));
          }
        }
      }
    } else if (path.size() > kTokensPrefix.size() &&
               path.substr(0, kTokensPrefix.size()) == kTokensPrefix) {
      if (!is_get) {
        response = MethodNotAllowed("GET");
      } else {
        std::optional<std::string> identity = PercentDecode(
            path.substr(kTokensPrefix.size()), /*plus_is_space=*/false);
        if (!identity) {
          response = ErrorResponse(400, "bad encoding of token identity");
        } else {
          absl::StatusOr<std::optional<TokenRow>> row =
              hooks_.token ? hooks_.token(*identity)
                           : store_->GetToken(*identity);
          if (!row.ok()) {
            response = StatusResponse(row.status());
          } else if (!row->has_value()) {
            response = ErrorResponse(404, "unknown token");
          } else {
            response = JsonResponse(TokenRowJson(**row));
          }
        }
      }
    } else if (path == kRevocationsPath && hooks_.revoke) {
      if (method != "POST") {
        response = MethodNotAllowed("POST");
      } else if (std::optional<Response> denied =
                     AuthorizeWrite(conn, options_.write_token)) {
        // Before the body is read: a stranger's megabyte is not parsed.
        response = std::move(*denied);
      } else {
        std::string body;
        if (std::optional<Response> error = ReadBody(conn, &body)) {
          response = std::move(*error);
        } else {
          std::variant<std::vector<std::string>, Response> jtis =
              ParseJtis(body);
          if (auto* error = std::get_if<Response>(&jtis)) {
            response = std::move(*error);
          } else {
            const auto& list = std::get<std::vector<std::string>>(jtis);
            absl::Status status = hooks_.revoke(list);
            response = status.ok() ? JsonResponse(absl::StrCat(
                                         "{\"revoked\":", list.size(), "}"))
                                   : StatusResponse(status);
          }
        }
      }
    } else {
      response = ErrorResponse(404, "not found");
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
