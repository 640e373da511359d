#include "collector/http/api_server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "collector/alert_json.h"
#include "common/log.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "tests/collector/testing/builders.h"

namespace tokenwatch::collector {
namespace {

// The test links gtest only (no gmock), so substring checks are by hand.
::testing::AssertionResult HasSubstr(std::string_view haystack,
                                     std::string_view needle) {
  if (haystack.find(needle) != std::string_view::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "\"" << haystack << "\" does not contain \"" << needle << "\"";
}

// 2026-11-30T10:15:03Z
constexpr int64_t kNovember30 = 1796033703;
constexpr int64_t kSecond = 1000000;

// An in-memory Store that answers like the real ones (filters, newest
// first, limit) and records what the server asked for.
class FakeStore : public Store {
 public:
  absl::StatusOr<Snapshot> Load() override { return Snapshot{}; }
  absl::Status Commit(const CommitBatch&) override { return absl::OkStatus(); }

  absl::StatusOr<std::vector<Alert>> QueryAlerts(const AlertQuery& q) override {
    std::lock_guard<std::mutex> lock(mu_);
    queries_.push_back(q);
    if (!error_.ok()) return error_;
    std::vector<Alert> out;
    for (const Alert& a : alerts_) {
      if (q.type.has_value() && a.type != *q.type) continue;
      if (!q.service.empty() && a.service != q.service) continue;
      if (a.ts_us < q.since_us) continue;
      out.push_back(a);
    }
    std::stable_sort(
        out.begin(), out.end(),
        [](const Alert& x, const Alert& y) { return x.ts_us > y.ts_us; });
    if (out.size() > q.limit) out.resize(q.limit);
    return out;
  }

  absl::StatusOr<std::optional<TokenRow>> GetToken(
      const std::string& identity) override {
    std::lock_guard<std::mutex> lock(mu_);
    identities_asked_.push_back(identity);
    if (!error_.ok()) return error_;
    auto it = tokens_.find(identity);
    if (it == tokens_.end()) return std::optional<TokenRow>();
    return std::optional<TokenRow>(it->second);
  }

  void AddAlert(Alert a) {
    std::lock_guard<std::mutex> lock(mu_);
    alerts_.push_back(std::move(a));
  }
  void AddToken(TokenRow row) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string id = row.identity;
    tokens_[id] = std::move(row);
  }
  void FailWith(absl::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::move(s);
  }
  std::vector<AlertQuery> queries() {
    std::lock_guard<std::mutex> lock(mu_);
    return queries_;
  }
  std::vector<std::string> identities_asked() {
    std::lock_guard<std::mutex> lock(mu_);
    return identities_asked_;
  }

 private:
  std::mutex mu_;
  std::vector<Alert> alerts_;
  std::map<std::string, TokenRow> tokens_;
  absl::Status error_;
  std::vector<AlertQuery> queries_;
  std::vector<std::string> identities_asked_;
};

// An alert for the token of MakeTokenRow().
Alert MakeAlert(const std::string& id, AlertType type,
                const std::string& service, int64_t ts_us) {
  return test::MakeAlert(id, type, "https://idp.example.com|j-81", service,
                         ts_us);
}

// A JWT identity `iss|jti` as the store keeps it.
TokenRow MakeTokenRow() {
  TokenRow row;
  row.identity = "https://idp.example.com|j-81";
  row.token.set_kind(v1::TOKEN_KIND_JWT);
  row.token.set_fp("9f2c4e1a7b3d5f60718293a4b5c6d7e8");
  row.token.set_iss("https://idp.example.com");
  row.token.set_sub("alice");
  row.token.set_jti("j-81");
  row.token.add_aud("orders-api");
  row.token.set_exp(kNovember30 + 600);
  row.token.set_alg("RS256");
  row.first_seen_us = kNovember30 * kSecond + 120000;
  row.last_seen_us = (kNovember30 + 63) * kSecond + 870000;
  row.uses = 4;
  row.services = {"orders", "billing"};
  row.clients = {"10.0.3.7", "10.0.3.8"};
  row.uses_by_service["orders"] = {0, 0, 3, 0, 1, 0};
  row.uses_by_service["billing"] = {1, 0, 0, 0, 0, 0};
  return row;
}

// ---------------------------------------------------------------------------
// A real HTTP client: libcurl, one easy handle per request.

struct HttpResult {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::string headers;
  std::string content_type;
};

size_t AppendToString(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

const bool kCurlReady = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;

HttpResult Fetch(const std::string& method, const std::string& url,
                 const std::optional<std::string>& body = std::nullopt,
                 const std::vector<std::string>& headers = {}) {
  HttpResult r;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &AppendToString);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r.headers);
  if (body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body->size()));
  }
  if (method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (method != "GET" && method != "POST") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  curl_slist* list = nullptr;
  for (const std::string& h : headers)
    list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  r.code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  char* type = nullptr;
  if (curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK &&
      type != nullptr) {
    r.content_type = type;
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return r;
}

// The body as a JSON document; fails the test if it is not JSON.
simdjson::dom::element ParseJson(simdjson::dom::parser& parser,
                                 const std::string& body) {
  simdjson::dom::element root;
  EXPECT_EQ(parser.parse(body).get(root), simdjson::SUCCESS) << body;
  return root;
}

std::string StringField(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get_string().get(v) != simdjson::SUCCESS) return "<missing>";
  return std::string(v);
}

// The write token of the test servers (a test value, not a secret).
constexpr char kWriteToken[] = "test-write-token-0123456789abcdef";
const std::string kAuthHeader =
    std::string("Authorization: Bearer ") + kWriteToken;

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(kCurlReady); }

  ApiServer::Hooks DefaultHooks() {
    ApiServer::Hooks hooks;
    hooks.health = [] {
      return std::string("{\"status\":\"ok\",\"agents\":2}");
    };
    hooks.metrics = [] {
      return std::string(
          "# TYPE tokenwatch_alerts_total counter\n"
          "tokenwatch_alerts_total 3\n");
    };
    hooks.revoke = [this](const std::vector<std::string>& jtis) {
      std::lock_guard<std::mutex> lock(mu_);
      revocations_.push_back(jtis);
      return revoke_status_;
    };
    return hooks;
  }

  void StartServer() { StartServer(DefaultHooks()); }
  void StartServer(ApiServer::Hooks hooks,
                   std::string write_token = kWriteToken) {
    absl::StatusOr<std::unique_ptr<ApiServer>> server =
        ApiServer::Start("127.0.0.1:0", &store_, std::move(hooks),
                         {.write_token = std::move(write_token)});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_GT(server_->port(), 0);
  }

  std::string Url(std::string_view path) {
    return absl::StrCat("http://127.0.0.1:", server_->port(),
                        std::string(path));
  }
  HttpResult Get(std::string_view path) { return Fetch("GET", Url(path)); }
  HttpResult Post(std::string_view path, const std::string& body) {
    return Fetch("POST", Url(path), body,
                 {"Content-Type: application/json", kAuthHeader});
  }

  // The ids in an {"alerts":[...]} answer, in order.
  std::vector<std::string> AlertIds(const HttpResult& r) {
    simdjson::dom::parser parser;
    simdjson::dom::element root = ParseJson(parser, r.body);
    simdjson::dom::array alerts;
    EXPECT_EQ(root["alerts"].get_array().get(alerts), simdjson::SUCCESS)
        << r.body;
    std::vector<std::string> ids;
    for (simdjson::dom::element a : alerts) ids.push_back(StringField(a, "id"));
    return ids;
  }

  std::string ErrorOf(const HttpResult& r) {
    simdjson::dom::parser parser;
    return StringField(ParseJson(parser, r.body), "error");
  }

  FakeStore store_;
  std::unique_ptr<ApiServer> server_;
  std::mutex mu_;
  std::vector<std::vector<std::string>> revocations_;
  absl::Status revoke_status_;
};

// ---------------------------------------------------------------------------
// Start-up and shutdown.

TEST_F(ApiServerTest, PortZeroBindsAFreePort) {
  StartServer();
  HttpResult r = Get("/healthz");
  ASSERT_EQ(r.code, CURLE_OK) << curl_easy_strerror(r.code);
  EXPECT_EQ(r.status, 200);
}

TEST_F(ApiServerTest, PortInUseIsAnErrorNamingTheAddress) {
  StartServer();
  std::string taken = absl::StrCat("127.0.0.1:", server_->port());
  absl::StatusOr<std::unique_ptr<ApiServer>> second =
      ApiServer::Start(taken, &store_, DefaultHooks());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(HasSubstr(std::string(second.status().message()), taken));
  EXPECT_TRUE(HasSubstr(std::string(second.status().message()),
                        "Address already in use"));
  // The first server is unaffected.
  EXPECT_EQ(Get("/healthz").status, 200);
}

TEST_F(ApiServerTest, BadAddressesAreErrorsNamingTheAddress) {
  for (std::string bad :
       {"nonsense", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:http",
        "example.com:9471", ":9471", "[::1:9471", "[not-v6]:9471",
        "127.0.0.1:80,127.0.0.1:81", ""}) {
    absl::StatusOr<std::unique_ptr<ApiServer>> s =
        ApiServer::Start(bad, &store_, DefaultHooks());
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(HasSubstr(std::string(s.status().message()),
                          absl::StrCat("'", bad, "'")));
  }
}

TEST_F(ApiServerTest, NullStoreIsRefused) {
  EXPECT_FALSE(ApiServer::Start("127.0.0.1:0", nullptr, DefaultHooks()).ok());
}

TEST_F(ApiServerTest, LocalhostMeansLoopback) {
  absl::StatusOr<std::unique_ptr<ApiServer>> s =
      ApiServer::Start("localhost:0", &store_, DefaultHooks());
  ASSERT_TRUE(s.ok()) << s.status();
  HttpResult r =
      Fetch("GET", absl::StrCat("http://127.0.0.1:", (*s)->port(), "/healthz"));
  EXPECT_EQ(r.status, 200);
}

TEST_F(ApiServerTest, Ipv6ListensOrSaysThisBuildCannot) {
  absl::StatusOr<std::unique_ptr<ApiServer>> s =
      ApiServer::Start("[::1]:0", &store_, DefaultHooks());
  if (s.ok()) {
    HttpResult r =
        Fetch("GET", absl::StrCat("http://[::1]:", (*s)->port(), "/healthz"));
    EXPECT_EQ(r.status, 200);
  } else {
    // Debian's civetweb 1.15 is built without IPv6.
    EXPECT_TRUE(HasSubstr(std::string(s.status().message()), "[::1]:0"));
    EXPECT_TRUE(HasSubstr(std::string(s.status().message()), "IPv6"));
  }
}

TEST_F(ApiServerTest, DestructorStopsListening) {
  StartServer();
  std::string url = Url("/healthz");
  ASSERT_EQ(Fetch("GET", url).status, 200);
  server_.reset();
  HttpResult r = Fetch("GET", url);
  EXPECT_EQ(r.code, CURLE_COULDNT_CONNECT);
}

TEST_F(ApiServerTest, DestructorLetsARequestInFlightFinish) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  ApiServer::Hooks hooks = DefaultHooks();
  hooks.revoke = [&](const std::vector<std::string>&) {
    std::unique_lock<std::mutex> lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
    return absl::OkStatus();
  };
  StartServer(std::move(hooks));
  const std::string base = Url("");
  HttpResult in_flight;
  std::thread client([&] {
    in_flight = Fetch("POST", base + "/api/v1/revocations",
                      std::string("[\"j-1\"]"), {kAuthHeader});
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(
        cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered; }));
  }
  std::thread stopper([&] { server_.reset(); });
  // Once stopping, new requests are turned away while the old one waits.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  HttpResult probe;
  do {
    probe = Fetch("GET", base + "/api/v1/alerts");
  } while (probe.status != 503 && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(probe.status, 503);
  EXPECT_EQ(probe.body, "{\"error\":\"shutting down\"}");
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
    cv.notify_all();
  }
  stopper.join();
  client.join();
  EXPECT_EQ(in_flight.status, 200);
  EXPECT_EQ(in_flight.body, "{\"revoked\":1}");
  EXPECT_EQ(Fetch("GET", base + "/healthz").code, CURLE_COULDNT_CONNECT);
}

// ---------------------------------------------------------------------------
// /healthz and /metrics

TEST_F(ApiServerTest, HealthzServesTheHookAsJson) {
  StartServer();
  HttpResult r = Get("/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{\"status\":\"ok\",\"agents\":2}");
  EXPECT_TRUE(HasSubstr(r.headers, "Content-Length: 26"));
}

TEST_F(ApiServerTest, HealthzWithoutHookSaysOk) {
  StartServer(ApiServer::Hooks{});
  HttpResult r = Get("/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"status\":\"ok\"}");
}

TEST_F(ApiServerTest, MetricsServesPrometheusText) {
  StartServer();
  HttpResult r = Get("/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4");
  EXPECT_TRUE(HasSubstr(r.body, "tokenwatch_alerts_total 3\n"));
}

TEST_F(ApiServerTest, MetricsWithoutHookIsNotFound) {
  ApiServer::Hooks hooks = DefaultHooks();
  hooks.metrics = nullptr;
  StartServer(std::move(hooks));
  HttpResult r = Get("/metrics");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/json");
}

TEST_F(ApiServerTest, AHookThatThrowsIsA500NotACrash) {
  ApiServer::Hooks hooks = DefaultHooks();
  hooks.health = []() -> std::string { throw std::runtime_error("boom"); };
  StartServer(std::move(hooks));
  HttpResult r = Get("/healthz");
  EXPECT_EQ(r.status, 500);
  EXPECT_TRUE(HasSubstr(ErrorOf(r), "boom"));
  EXPECT_EQ(Get("/metrics").status, 200);
}

// ---------------------------------------------------------------------------
// /api/v1/alerts

class AlertsTest : public ApiServerTest {
 protected:
  void SetUp() override {
    ApiServerTest::SetUp();
    store_.AddAlert(MakeAlert("a1", AlertType::kExpiredUse, "orders",
                              kNovember30 * kSecond));
    store_.AddAlert(MakeAlert("a2", AlertType::kCrossService, "billing",
                              (kNovember30 + 60) * kSecond));
    store_.AddAlert(MakeAlert("a3", AlertType::kExpiredUse, "billing",
                              (kNovember30 + 120) * kSecond));
    StartServer();
  }
  AlertQuery LastQuery() {
    std::vector<AlertQuery> q = store_.queries();
    EXPECT_FALSE(q.empty());
    return q.empty() ? AlertQuery{} : q.back();
  }
};

TEST_F(AlertsTest, AllAlertsNewestFirstWithDefaults) {
  HttpResult r = Get("/api/v1/alerts");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(AlertIds(r), (std::vector<std::string>{"a3", "a2", "a1"}));
  AlertQuery q = LastQuery();
  EXPECT_FALSE(q.type.has_value());
  EXPECT_EQ(q.service, "");
  EXPECT_EQ(q.since_us, 0);
  EXPECT_EQ(q.limit, 100u);
}

TEST_F(AlertsTest, BodyIsTheStoresAlertsAsAlertJson) {
  HttpResult r = Get("/api/v1/alerts?service=billing");
  ASSERT_EQ(r.status, 200);
  Alert a3 = MakeAlert("a3", AlertType::kExpiredUse, "billing",
                       (kNovember30 + 120) * kSecond);
  Alert a2 = MakeAlert("a2", AlertType::kCrossService, "billing",
                       (kNovember30 + 60) * kSecond);
  EXPECT_EQ(r.body,
            "{\"alerts\":[" + AlertJson(a3) + "," + AlertJson(a2) + "]}");
}

TEST_F(AlertsTest, FiltersReachTheStore) {
  HttpResult r =
      Get("/api/v1/alerts?type=expired_use&service=billing"
          "&since=2026-11-30T10:15:03Z&limit=5");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(AlertIds(r), (std::vector<std::string>{"a3"}));
  AlertQuery q = LastQuery();
  EXPECT_EQ(q.type, AlertType::kExpiredUse);
  EXPECT_EQ(q.service, "billing");
  EXPECT_EQ(q.since_us, kNovember30 * kSecond);
  EXPECT_EQ(q.limit, 5u);
}

TEST_F(AlertsTest, LimitCutsTheNewest) {
  HttpResult r = Get("/api/v1/alerts?limit=2");
  EXPECT_EQ(AlertIds(r), (std::vector<std::string>{"a3", "a2"}));
  EXPECT_EQ(LastQuery().limit, 2u);
  EXPECT_EQ(Get("/api/v1/alerts?limit=1").status, 200);
  EXPECT_EQ(Get("/api/v1/alerts?limit=10000").status, 200);
  EXPECT_EQ(LastQuery().limit, 10000u);
}

TEST_F(AlertsTest, SinceAcceptsRfc3339FractionsOffsetsAndUnixSeconds) {
  struct Case {
    std::string since;
    int64_t us;
  };
  for (const Case& c : std::vector<Case>{
           {"2026-11-30T10:15:03Z", kNovember30 * kSecond},
           {"2026-11-30T10:15:03.120Z", kNovember30 * kSecond + 120000},
           {"2026-11-30T10:15:03.123456Z", kNovember30 * kSecond + 123456},
           // An offset's '+' sent raw, as clients do, and escaped.
           {"2026-11-30T12:15:03+02:00", kNovember30 * kSecond},
           {"2026-11-30T12:15:03%2B02:00", kNovember30 * kSecond},
           {"2026-11-30T10%3A15%3A03Z", kNovember30 * kSecond},
           {"1796033703", kNovember30 * kSecond},
           {"1796033703.5", kNovember30 * kSecond + 500000},
           {"0", 0},
       }) {
    HttpResult r = Get("/api/v1/alerts?since=" + c.since);
    EXPECT_EQ(r.status, 200) << c.since << ": " << r.body;
    EXPECT_EQ(LastQuery().since_us, c.us) << c.since;
  }
}

TEST_F(AlertsTest, BadSinceIs400NamingTheParameter) {
  for (std::string bad :
       {"yesterday", "2026-11-30", "2026-11-30T10:15Z", "2026-13-30T10:15:03Z",
        "-5", "1.2.3", "12345678901234", "2026-11-30T10:15:03"}) {
    HttpResult r = Get("/api/v1/alerts?since=" + bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_TRUE(HasSubstr(ErrorOf(r), "'since'")) << bad;
  }
}

TEST_F(AlertsTest, BadLimitIs400NamingTheParameter) {
  for (std::string bad :
       {"0", "10001", "-1", "abc", "5x", "1e3", "999999999999"}) {
    HttpResult r = Get("/api/v1/alerts?limit=" + bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_TRUE(HasSubstr(ErrorOf(r), "'limit'")) << bad;
  }
  EXPECT_TRUE(store_.queries().empty());
}

TEST_F(AlertsTest, UnknownOrRepeatedParametersAre400) {
  HttpResult r = Get("/api/v1/alerts?servce=orders");
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(HasSubstr(ErrorOf(r), "'servce'"));
  r = Get("/api/v1/alerts?type=a&type=b");
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(HasSubstr(ErrorOf(r), "'type'"));
  r = Get("/api/v1/alerts?service=%zz");
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(HasSubstr(ErrorOf(r), "'service'"));
}

TEST_F(AlertsTest, EmptyValuesMeanNotGiven) {
  HttpResult r = Get("/api/v1/alerts?type=&service=&since=&limit=&");
  EXPECT_EQ(r.status, 200) << r.body;
  AlertQuery q = LastQuery();
  EXPECT_FALSE(q.type.has_value());
  EXPECT_EQ(q.limit, 100u);
}

TEST_F(AlertsTest, ValuesAreFormDecoded) {
  HttpResult r = Get("/api/v1/alerts?service=web+shop%2Fv2");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(LastQuery().service, "web shop/v2");
}

TEST_F(AlertsTest, UnknownTypeIsJustEmpty) {
  HttpResult r = Get("/api/v1/alerts?type=no_such_type");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"alerts\":[]}");
  // A name that is no alert type matches nothing: the store is not asked.
  EXPECT_TRUE(store_.queries().empty());
  // The other parameters are still checked.
  EXPECT_EQ(Get("/api/v1/alerts?type=no_such_type&since=bogus").status, 400);
}

TEST_F(AlertsTest, StoreErrorIs500WithTheMessage) {
  store_.FailWith(
      absl::InternalError("sqlite: database disk image is malformed"));
  HttpResult r = Get("/api/v1/alerts");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(ErrorOf(r), "sqlite: database disk image is malformed");
}

TEST_F(AlertsTest, WrongMethodIs405WithAllow) {
  HttpResult r = Fetch("POST", Url("/api/v1/alerts"), std::string("{}"));
  EXPECT_EQ(r.status, 405);
  EXPECT_TRUE(HasSubstr(r.headers, "Allow: GET"));
  EXPECT_EQ(ErrorOf(r), "method not allowed");
  EXPECT_EQ(Fetch("DELETE", Url("/api/v1/alerts")).status, 405);
  EXPECT_TRUE(store_.queries().empty());
}

// ---------------------------------------------------------------------------
// /api/v1/tokens/{identity}

class TokensTest : public ApiServerTest {
 protected:
  void SetUp() override {
    ApiServerTest::SetUp();
    store_.AddToken(MakeTokenRow());
    TokenRow opaque;
    opaque.identity = "0123456789abcdef0123456789abcdef";
    opaque.token.set_kind(v1::TOKEN_KIND_OPAQUE);
    opaque.token.set_fp(opaque.identity);
    opaque.first_seen_us = kNovember30 * kSecond;
    opaque.last_seen_us = kNovember30 * kSecond;
    opaque.uses = 1;
    store_.AddToken(opaque);
    StartServer();
  }
};

TEST_F(TokensTest, EncodedIssJtiIdentityReturnsTheRow) {
  HttpResult r = Get("/api/v1/tokens/https%3A%2F%2Fidp.example.com%7Cj-81");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body,
            "{\"id\":\"https://idp.example.com|j-81\","
            "\"fp\":\"9f2c4e1a7b3d5f60718293a4b5c6d7e8\","
            "\"iss\":\"https://idp.example.com\",\"sub\":\"alice\","
            "\"jti\":\"j-81\",\"aud\":[\"orders-api\"],\"exp\":1796034303,"
            "\"alg\":\"RS256\",\"first_seen\":\"2026-11-30T10:15:03.120Z\","
            "\"last_seen\":\"2026-11-30T10:16:06.870Z\",\"uses\":4,"
            "\"services\":[\"orders\",\"billing\"],"
            "\"clients\":[\"10.0.3.7\",\"10.0.3.8\"],"
            "\"uses_by_service\":{"
            "\"billing\":{\"none\":1,\"1xx\":0,\"2xx\":0,\"3xx\":0,\"4xx\":0,"
            "\"5xx\":0},"
            "\"orders\":{\"none\":0,\"1xx\":0,\"2xx\":3,\"3xx\":0,\"4xx\":1,"
            "\"5xx\":0}}}");
  EXPECT_EQ(store_.identities_asked().back(), "https://idp.example.com|j-81");
}

TEST_F(TokensTest, PartlyEncodedAndRawIdentitiesWork) {
  // Only the '|' escaped, as many clients do; and nothing escaped at all,
  // where the '//' and ':' must survive untouched.
  for (std::string path :
       {"/api/v1/tokens/https://idp.example.com%7Cj-81",
        "/api/v1/tokens/https://idp.example.com|j-81",
        "/api/v1/tokens/https%3a%2f%2fidp.example.com%7cj-81"}) {
    HttpResult r = Get(path);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    EXPECT_EQ(store_.identities_asked().back(), "https://idp.example.com|j-81")
        << path;
  }
}

TEST_F(TokensTest, PlusInAnIdentityStaysAPlus) {
  HttpResult r = Get("/api/v1/tokens/a+b%20c");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(store_.identities_asked().back(), "a+b c");
}

TEST_F(TokensTest, FingerprintIdentityWithoutExp) {
  HttpResult r = Get("/api/v1/tokens/0123456789abcdef0123456789abcdef");
  ASSERT_EQ(r.status, 200);
  simdjson::dom::parser parser;
  simdjson::dom::element root = ParseJson(parser, r.body);
  EXPECT_TRUE(root["exp"].is_null());
  EXPECT_EQ(StringField(root, "fp"), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(StringField(root, "jti"), "");
}

TEST_F(TokensTest, UnknownTokenIs404) {
  HttpResult r = Get("/api/v1/tokens/https%3A%2F%2Fidp.example.com%7Cnope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "{\"error\":\"unknown token\"}");
  // No identity at all is no resource.
  EXPECT_EQ(Get("/api/v1/tokens/").status, 404);
  EXPECT_EQ(Get("/api/v1/tokens").status, 404);
}

TEST_F(TokensTest, BrokenEscapeIs400) {
  for (std::string path : {"/api/v1/tokens/abc%", "/api/v1/tokens/abc%4",
                           "/api/v1/tokens/abc%g1"}) {
    HttpResult r = Get(path);
    EXPECT_EQ(r.status, 400) << path;
    EXPECT_TRUE(HasSubstr(ErrorOf(r), "identity"));
  }
}

TEST_F(TokensTest, HostileClaimsStayValidJson) {
  TokenRow row = MakeTokenRow();
  row.identity = "evil";
  // A sub with a quote, a backslash, a control byte and invalid UTF-8.
  row.token.set_sub(std::string("a\"b\\c\x01\xff\xc3\xa9", 9));
  row.clients = {"</script>"};
  store_.AddToken(row);
  HttpResult r = Get("/api/v1/tokens/evil");
  ASSERT_EQ(r.status, 200);
  simdjson::dom::parser parser;
  simdjson::dom::element root = ParseJson(parser, r.body);
  EXPECT_EQ(StringField(root, "sub"), "a\"b\\c\x01\xef\xbf\xbd\xc3\xa9");
}

TEST_F(TokensTest, StoreErrorIs500WithTheMessage) {
  store_.FailWith(absl::UnavailableError("store is closing"));
  HttpResult r = Get("/api/v1/tokens/x");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(ErrorOf(r), "store is closing");
  store_.FailWith(absl::InternalError("disk I/O error"));
  r = Get("/api/v1/tokens/x");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(ErrorOf(r), "disk I/O error");
}

TEST_F(TokensTest, WrongMethodIs405) {
  HttpResult r = Fetch("DELETE", Url("/api/v1/tokens/x"));
  EXPECT_EQ(r.status, 405);
  EXPECT_TRUE(HasSubstr(r.headers, "Allow: GET"));
  EXPECT_TRUE(store_.identities_asked().empty());
}

// ---------------------------------------------------------------------------
// POST /api/v1/revocations

TEST_F(ApiServerTest, RevocationsListReachesTheHook) {
  StartServer();
  HttpResult r = Post("/api/v1/revocations", "[\"j-1\",\"j-2\"]");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"revoked\":2}");
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(revocations_.size(), 1u);
  EXPECT_EQ(revocations_[0], (std::vector<std::string>{"j-1", "j-2"}));
}

TEST_F(ApiServerTest, RevocationsObjectFormReachesTheHook) {
  StartServer();
  HttpResult r = Post("/api/v1/revocations", " {\"jtis\": [\"j-\\u00e9\"]} ");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"revoked\":1}");
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(revocations_.size(), 1u);
  EXPECT_EQ(revocations_[0], (std::vector<std::string>{"j-\xc3\xa9"}));
}

TEST_F(ApiServerTest, RevocationsLargeBodyWithExpectContinue) {
  StartServer();
  std::string body = "[";
  for (int i = 0; i < 2000; ++i) {
    absl::StrAppend(&body, i ? "," : "", "\"jti-", i, "\"");
  }
  body.append("]");
  HttpResult r = Fetch("POST", Url("/api/v1/revocations"), body,
                       {"Expect: 100-continue", kAuthHeader});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"revoked\":2000}");
  // Also without a Content-Length: chunked transfer coding.
  r = Fetch("POST", Url("/api/v1/revocations"), body,
            {"Transfer-Encoding: chunked", kAuthHeader});
  EXPECT_EQ(r.status, 200) << r.body;
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(revocations_.size(), 2u);
  EXPECT_EQ(revocations_[1].back(), "jti-1999");
}

TEST_F(ApiServerTest, RevocationsBadBodiesAre400) {
  StartServer();
  for (std::string bad :
       {"", "[", "not json", "[\"j-1\",]", "[1,2]", "[\"ok\",null]",
        "{\"jti\":[\"x\"]}", "{\"jtis\":\"x\"}", "\"j-1\"", "[\"\"]",
        "[\"a\"] trailing"}) {
    HttpResult r = Post("/api/v1/revocations", bad);
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/json");
  }
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_TRUE(revocations_.empty());
}

TEST_F(ApiServerTest, RevocationsOverOneMibIs413) {
  StartServer();
  std::string body = "[\"" + std::string(ApiServer::kMaxBodyBytes, 'x') + "\"]";
  HttpResult r = Fetch("POST", Url("/api/v1/revocations"), body,
                       {"Expect: 100-continue", kAuthHeader});
  EXPECT_EQ(r.status, 413);
  // Chunked: the cap holds while reading.
  r = Fetch("POST", Url("/api/v1/revocations"), body,
            {"Transfer-Encoding: chunked", "Expect:", kAuthHeader});
  EXPECT_EQ(r.status, 413) << curl_easy_strerror(r.code);
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_TRUE(revocations_.empty());
}

TEST_F(ApiServerTest, RevocationsEmptyListIsZero) {
  StartServer();
  HttpResult r = Post("/api/v1/revocations", "[]");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"revoked\":0}");
}

TEST_F(ApiServerTest, RevokeHookErrorIsPassedOn) {
  revoke_status_ = absl::InternalError("revocation list is full");
  StartServer();
  HttpResult r = Post("/api/v1/revocations", "[\"j-1\"]");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(ErrorOf(r), "revocation list is full");
}

TEST_F(ApiServerTest, RevocationsWrongMethodIs405) {
  StartServer();
  HttpResult r = Get("/api/v1/revocations");
  EXPECT_EQ(r.status, 405);
  EXPECT_TRUE(HasSubstr(r.headers, "Allow: POST"));
}

TEST_F(ApiServerTest, RevocationsWithoutTokenAre401WithAChallenge) {
  StartServer();
  HttpResult r =
      Fetch("POST", Url("/api/v1/revocations"), std::string("[\"j-1\"]"));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(ErrorOf(r), "bearer token required");
  EXPECT_TRUE(
      HasSubstr(r.headers, "WWW-Authenticate: Bearer realm=\"tokenwatch\""));
  // Another scheme is no bearer token either.
  r = Fetch("POST", Url("/api/v1/revocations"), std::string("[\"j-1\"]"),
            {std::string("Authorization: Basic ") + kWriteToken});
  EXPECT_EQ(r.status, 401);
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_TRUE(revocations_.empty());
}

TEST_F(ApiServerTest, RevocationsWithAWrongTokenAre401) {
  StartServer();
  const std::string token = kWriteToken;
  for (std::string wrong :
       {std::string("nope"), token + "x", token.substr(0, token.size() - 1),
        std::string(token.size(), 'a')}) {
    HttpResult r =
        Fetch("POST", Url("/api/v1/revocations"), std::string("[\"j-1\"]"),
              {"Authorization: Bearer " + wrong});
    EXPECT_EQ(r.status, 401) << wrong;
    EXPECT_TRUE(HasSubstr(r.headers, "error=\"invalid_token\"")) << wrong;
    // The answer never echoes the token it was given, nor ours.
    EXPECT_FALSE(HasSubstr(r.headers + r.body, token));
  }
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_TRUE(revocations_.empty());
}

TEST_F(ApiServerTest, RevocationsTokenSchemeIsCaseInsensitive) {
  StartServer();
  HttpResult r =
      Fetch("POST", Url("/api/v1/revocations"), std::string("[\"j-1\"]"),
            {std::string("authorization: bEaReR  ") + kWriteToken});
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(ApiServerTest, WritesWithoutAConfiguredTokenAre403) {
  StartServer(DefaultHooks(), /*write_token=*/"");
  HttpResult r = Post("/api/v1/revocations", "[\"j-1\"]");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(ErrorOf(r), "disabled: set collector.http_token_file");
  // Reads stay open.
  EXPECT_EQ(Get("/healthz").status, 200);
  EXPECT_EQ(Get("/api/v1/alerts").status, 200);
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_TRUE(revocations_.empty());
}

TEST_F(ApiServerTest, UnauthenticatedBigBodyIsNotRead) {
  // Authentication comes first: a stranger's body is never parsed, so an
  // oversized one is a 401, not a 413.
  StartServer();
  std::string body = "[\"" + std::string(ApiServer::kMaxBodyBytes, 'x') + "\"]";
  HttpResult r = Fetch("POST", Url("/api/v1/revocations"), body);
  EXPECT_EQ(r.status, 401);
}

TEST_F(ApiServerTest, RevocationsWithoutHookIsNotFound) {
  ApiServer::Hooks hooks = DefaultHooks();
  hooks.revoke = nullptr;
  StartServer(std::move(hooks));
  EXPECT_EQ(Post("/api/v1/revocations", "[\"j-1\"]").status, 404);
}

// ---------------------------------------------------------------------------
// Everything else

TEST_F(ApiServerTest, UnknownPathsAre404Json) {
  StartServer();
  for (std::string path : {"/", "/index.html", "/api/v1/alerts/", "/api/v1",
                           "/healthz/x", "/../etc/passwd", "/api/v2/alerts"}) {
    HttpResult r = Get(path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.body, "{\"error\":\"not found\"}") << path;
  }
}

TEST_F(ApiServerTest, WrongMethodOnFixedPathsIs405) {
  StartServer();
  for (std::string path : {"/healthz", "/metrics"}) {
    HttpResult r = Fetch("PUT", Url(path), std::string("x"));
    EXPECT_EQ(r.status, 405) << path;
    EXPECT_TRUE(HasSubstr(r.headers, "Allow: GET"));
  }
  HttpResult head = Fetch("HEAD", Url("/healthz"));
  EXPECT_EQ(head.status, 405);
  EXPECT_TRUE(head.body.empty());
}

// ---------------------------------------------------------------------------
// Concurrency

TEST_F(ApiServerTest, RequestsRunInParallelOnWorkerThreads) {
  // The health hook returns only once three requests are inside it at
  // once, which a server handling one request at a time never reaches.
  constexpr int kParallel = 3;
  static_assert(kParallel <= ApiServer::kWorkerThreads);
  std::mutex mu;
  std::condition_variable cv;
  int inside = 0;
  ApiServer::Hooks hooks = DefaultHooks();
  hooks.health = [&] {
    std::unique_lock<std::mutex> lock(mu);
    ++inside;
    cv.notify_all();
    bool all = cv.wait_for(lock, std::chrono::seconds(10),
                           [&] { return inside >= kParallel; });
    return std::string(all ? "{\"together\":true}" : "{\"together\":false}");
  };
  StartServer(std::move(hooks));
  std::vector<HttpResult> results(kParallel);
  std::vector<std::thread> clients;
  for (int i = 0; i < kParallel; ++i) {
    clients.emplace_back([&, i] { results[i] = Get("/healthz"); });
  }
  for (std::thread& t : clients) t.join();
  for (const HttpResult& r : results) {
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"together\":true}");
  }
}

TEST_F(ApiServerTest, ManyClientsAtOnce) {
  store_.AddToken(MakeTokenRow());
  store_.AddAlert(
      MakeAlert("a1", AlertType::kExpiredUse, "orders", kNovember30 * kSecond));
  StartServer();
  constexpr int kThreads = 8;
  constexpr int kRequestsEach = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < kRequestsEach; ++i) {
        HttpResult r;
        int expected = 200;
        switch ((t + i) % 5) {
          case 0:
            r = Get("/api/v1/alerts?service=orders&limit=10");
            if (AlertIds(r) != std::vector<std::string>{"a1"}) expected = -1;
            break;
          case 1:
            r = Get("/api/v1/tokens/https%3A%2F%2Fidp.example.com%7Cj-81");
            break;
          case 2:
            r = Get("/healthz");
            break;
          case 3:
            r = Post("/api/v1/revocations",
                     absl::StrCat("[\"t", t, "-", i, "\"]"));
            break;
          case 4:
            r = Get("/api/v1/alerts?since=bogus");
            expected = 400;
            break;
        }
        if (r.status == expected) ++ok;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(ok.load(), kThreads * kRequestsEach);
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(revocations_.size(),
            static_cast<size_t>(kThreads * kRequestsEach / 5));
}

// ---------------------------------------------------------------------------
// Hostile clients (docs/security.md, "Hostile clients: HTTP API and store"),
// over raw sockets: curl would not send these requests.

// A TCP connection to the server that sends what it is told.
class RawClient {
 public:
  explicit RawClient(int port, const char* from = nullptr) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (from != nullptr) {  // another loopback address: another client
      sockaddr_in src{};
      src.sin_family = AF_INET;
      inet_pton(AF_INET, from, &src.sin_addr);
      bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawClient() { close(fd_); }
  bool connected() const { return connected_; }
  bool Send(std::string_view bytes) {
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Everything until the server closes (or resets) the connection, or
  // `timeout` passes: then `*closed` is false.
  std::string ReadUntilClosed(std::chrono::milliseconds timeout, bool* closed) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    *closed = false;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return out;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        *closed = true;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t)
      .count();
}

// RFC 9112 section 6.3: differing Content-Lengths, Content-Length with
// Transfer-Encoding, and (5.1) whitespace before a header's colon are
// refused with a 400 and a close; the write never reaches the hook, even
// with the right token.
TEST_F(ApiServerTest, AmbiguousFramingIs400AndCloses) {
  StartServer();
  const std::string head =
      "POST /api/v1/revocations HTTP/1.1\r\n"
      "Host: x\r\n" +
      kAuthHeader + "\r\n";
  struct Case {
    const char* name;
    std::string request;
  } cases[] = {
      {"two Content-Lengths",
       head + "Content-Length: 9\r\nContent-Length: 7\r\n\r\n[\"j-1\"]xx"},
      {"Content-Length and Transfer-Encoding",
       head + "Content-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n"
              "7\r\n[\"j-1\"]\r\n0\r\n\r\n"},
      {"space before the colon", head + "Content-Length : 7\r\n\r\n[\"j-1\"]"},
  };
  for (const Case& c : cases) {
    RawClient client(server_->port());
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Send(c.request));
    bool closed = false;
    std::string answer =
        client.ReadUntilClosed(std::chrono::seconds(5), &closed);
    EXPECT_TRUE(HasSubstr(answer, "HTTP/1.1 400")) << c.name << ": " << answer;
    EXPECT_TRUE(closed) << c.name;
  }
  EXPECT_EQ(server_->bad_framing(), 3u);
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_TRUE(revocations_.empty());
}

// The slow-POST attack: an unauthenticated POST announcing a gigabyte
// got its 401 and then held its worker while civetweb read the body to
// discard it. Now the connection closes at once after the answer.
TEST_F(ApiServerTest, RefusedRequestClosesWithoutReadingTheBody) {
  StartServer();
  RawClient client(server_->port());
  ASSERT_TRUE(client.connected());
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      client.Send("POST /api/v1/revocations HTTP/1.1\r\nHost: x\r\n"
                  "Content-Length: 1000000000\r\n\r\n[\"j"));
  bool closed = false;
  std::string answer = client.ReadUntilClosed(std::chrono::seconds(8), &closed);
  EXPECT_TRUE(closed) << "the server waited for the body";
  EXPECT_LT(SecondsSince(start), 2.0);
  // The 401 is sent before the close (a reset may swallow it).
  if (!answer.empty()) EXPECT_TRUE(HasSubstr(answer, "HTTP/1.1 401"));
}

// Headers dribbled a byte at a time are cut at the header deadline.
TEST_F(ApiServerTest, SlowHeadersAreCutAtTheDeadline) {
  absl::StatusOr<std::unique_ptr<ApiServer>> server = ApiServer::Start(
      "127.0.0.1:0", &store_, DefaultHooks(),
      {.write_token = kWriteToken, .header_timeout = absl::Seconds(1)});
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = std::move(*server);
  RawClient client(server_->port());
  ASSERT_TRUE(client.connected());
  auto start = std::chrono::steady_clock::now();
  const std::string request =
      "GET /healthz HTTP/1.1\r\nX-Slow: " + std::string(200, 'a') + "\r\n\r\n";
  bool closed = false;
  for (char c : request) {
    if (!client.Send(std::string_view(&c, 1))) {
      closed = true;
      break;
    }
    client.ReadUntilClosed(std::chrono::milliseconds(100), &closed);
    if (closed || SecondsSince(start) > 8) break;
  }
  EXPECT_TRUE(closed);
  // One deadline, plus at most one more that civetweb's last wait adds.
  EXPECT_LT(SecondsSince(start), 3.0);
}

// An authenticated body dribbled slowly gets a 408 at the body deadline.
TEST_F(ApiServerTest, SlowBodyIs408AtTheDeadline) {
  absl::StatusOr<std::unique_ptr<ApiServer>> server = ApiServer::Start(
      "127.0.0.1:0", &store_, DefaultHooks(),
      {.write_token = kWriteToken, .body_timeout = absl::Seconds(1)});
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = std::move(*server);
  RawClient client(server_->port());
  ASSERT_TRUE(client.connected());
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(client.Send("POST /api/v1/revocations HTTP/1.1\r\nHost: x\r\n" +
                          kAuthHeader + "\r\nContent-Length: 100000\r\n\r\n"));
  bool closed = false;
  std::string answer;
  while (!closed && SecondsSince(start) < 20) {
    if (!client.Send("[")) break;  // about 100 bytes a second
    answer += client.ReadUntilClosed(std::chrono::milliseconds(10), &closed);
  }
  EXPECT_TRUE(closed);
  EXPECT_TRUE(HasSubstr(answer, "HTTP/1.1 408")) << answer;
  EXPECT_LT(SecondsSince(start), 4.0);
  EXPECT_EQ(server_->timeouts(), 1u);
}

// Slow clients (each a connection dribbling its headers) do not keep
// /healthz and /metrics from answering: with 4 workers, 8 such clients
// blinded the API until they gave up.
TEST_F(ApiServerTest, HealthzAndMetricsAnswerWhileSlowClientsHoldConnections) {
  StartServer();
  constexpr int kSlowClients = 8;
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < kSlowClients; ++i) {
    slow.push_back(std::make_unique<RawClient>(server_->port(), "127.0.0.2"));
    ASSERT_TRUE(slow.back()->connected());
    ASSERT_TRUE(slow.back()->Send(
        "POST /api/v1/revocations HTTP/1.1\r\nContent-Length: 1000000000\r\n"));
  }
  for (const char* path : {"/healthz", "/metrics"}) {
    auto start = std::chrono::steady_clock::now();
    HttpResult r = Get(path);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_LT(SecondsSince(start), 1.0) << path;
  }
}

// Failed authentications are logged (the client's address, never the
// token), counted in /metrics, and after kMaxAuthFailures an address gets
// 429 with Retry-After, even with the right token.
TEST_F(ApiServerTest, FailedAuthenticationsAreLoggedCountedAndLimited) {
  std::mutex log_mu;
  std::vector<std::string> lines;
  log::SetSinkForTesting([&](log::Level, std::string_view line) {
    std::lock_guard<std::mutex> lock(log_mu);
    lines.emplace_back(line);
  });
  StartServer();
  const std::string wrong = "guess-0123456789abcdef0123456789";
  for (int i = 0; i < ApiServer::kMaxAuthFailures; ++i) {
    HttpResult r =
        Fetch("POST", Url("/api/v1/revocations"), std::string("[\"j-1\"]"),
              {"Authorization: Bearer " + wrong});
    EXPECT_EQ(r.status, 401) << i;
  }
  HttpResult limited = Post("/api/v1/revocations", "[\"j-1\"]");
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_TRUE(HasSubstr(limited.headers, "Retry-After: "));
  HttpResult metrics = Get("/metrics");
  log::SetSinkForTesting(nullptr);
  EXPECT_TRUE(
      HasSubstr(metrics.body,
                absl::StrCat("tokenwatch_collector_api_auth_failures_total ",
                             ApiServer::kMaxAuthFailures)))
      << metrics.body;
  EXPECT_TRUE(HasSubstr(
      metrics.body,
      "tokenwatch_collector_api_refused_total{reason=\"auth_rate_limited\"} 1"))
      << metrics.body;
  std::lock_guard<std::mutex> lock(log_mu);
  ASSERT_FALSE(lines.empty());
  // Rate-limited: one line for the burst, not one per failure.
  EXPECT_LT(lines.size(), 3u);
  EXPECT_TRUE(HasSubstr(lines[0], "failed authentication from 127.0.0.1"))
      << lines[0];
  for (const std::string& line : lines) {
    EXPECT_FALSE(HasSubstr(line, wrong));
    EXPECT_FALSE(HasSubstr(line, kWriteToken));
  }
  std::lock_guard<std::mutex> lock2(mu_);
  EXPECT_TRUE(revocations_.empty());
}

// A jti with a line break or '#' would write lines of its own into the
// revocations file (one jti per line, '#' comments).
TEST_F(ApiServerTest, RevocationJtisThatWouldCorruptTheFileAre400) {
  StartServer();
  for (const std::string& body : std::vector<std::string>{
           R"(["a\nb"])", R"(["a\rb"])", R"(["#all"])", R"(["ok","x # y"])",
           R"(["tab\tx"])", R"([" pad"])",
           "[\"" + std::string(1025, 'j') + "\"]"}) {
    HttpResult r = Post("/api/v1/revocations", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_TRUE(HasSubstr(ErrorOf(r), "jti")) << body << ": " << r.body;
  }
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_TRUE(revocations_.empty());
}

// limit=10000 of large alerts once answered 210 MB.
TEST_F(ApiServerTest, AlertsAnswerIsCappedInBytes) {
  for (int i = 0; i < 5000; ++i) {
    Alert a = MakeAlert(absl::StrCat("a", i), AlertType::kExpiredUse, "orders",
                        kNovember30 * kSecond + i);
    a.detail = std::string(4096, 'd');
    store_.AddAlert(std::move(a));
  }
  StartServer();
  HttpResult r = Get("/api/v1/alerts?limit=10000");
  ASSERT_EQ(r.status, 200);
  EXPECT_LE(r.body.size(), http::kMaxAlertsBytes);
  EXPECT_TRUE(HasSubstr(r.body, "\"truncated\":true"));
  simdjson::dom::parser parser;
  ParseJson(parser, r.body);
}

TEST_F(TokensTest, IdentityIsPercentDecodedOnce) {
  // %2541 is "%41" decoded once; decoded twice it would be "A".
  Get("/api/v1/tokens/j%2541");
  EXPECT_EQ(store_.identities_asked().back(), "j%41");
}

// One address holding connections open gets only its share of the
// workers: its next connection is a 429 at once, before its headers, and
// other clients (here 127.0.0.1) are served meanwhile.
TEST_F(ApiServerTest, ConnectionsPerClientAddressAreCapped) {
  absl::StatusOr<std::unique_ptr<ApiServer>> server = ApiServer::Start(
      "127.0.0.1:0", &store_, DefaultHooks(),
      {.write_token = kWriteToken, .max_connections_per_client = 2});
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = std::move(*server);
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(std::make_unique<RawClient>(server_->port(), "127.0.0.2"));
    ASSERT_TRUE(held.back()->connected());
    ASSERT_TRUE(held.back()->Send("GET /healthz HTTP/1.1\r\n"));
  }
  RawClient third(server_->port(), "127.0.0.2");
  ASSERT_TRUE(third.connected());
  bool closed = false;
  std::string answer = third.ReadUntilClosed(std::chrono::seconds(4), &closed);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(HasSubstr(answer, "HTTP/1.1 429")) << answer;
  // Counted once the worker is back from the refusal the client just read.
  auto counted = std::chrono::steady_clock::now();
  while (server_->client_connections_refused() == 0 &&
         SecondsSince(counted) < 5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(server_->client_connections_refused(), 1u);
  EXPECT_EQ(Get("/healthz").status, 200);
  // The admitted ones finish normally.
  for (auto& c : held) {
    ASSERT_TRUE(c->Send("\r\n"));
    EXPECT_TRUE(HasSubstr(c->ReadUntilClosed(std::chrono::seconds(4), &closed),
                          "HTTP/1.1 200"));
  }
  // Closed connections free their share.
  RawClient later(server_->port(), "127.0.0.2");
  ASSERT_TRUE(later.Send("GET /healthz HTTP/1.1\r\n\r\n"));
  EXPECT_TRUE(HasSubstr(later.ReadUntilClosed(std::chrono::seconds(4), &closed),
                        "HTTP/1.1 200"));
}

// A full page names the cursor of its last alert; `before=` passes it to
// the store; a bad cursor is a 400.
TEST_F(AlertsTest, FullPagesGiveACursorForTheNext) {
  HttpResult r = Get("/api/v1/alerts?limit=2");
  ASSERT_EQ(r.status, 200);
  std::vector<std::string> ids = AlertIds(r);
  ASSERT_EQ(ids.size(), 2u);
  simdjson::dom::parser parser;
  std::string next = StringField(ParseJson(parser, r.body), "next");
  ASSERT_NE(next, "<missing>") << r.body;
  EXPECT_TRUE(HasSubstr(next, "." + ids[1])) << next;
  r = Get("/api/v1/alerts?limit=2&before=" + next);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(store_.queries().back().before.has_value());
  EXPECT_EQ(store_.queries().back().before->second, ids[1]);
  // A page that is not full is the last: no cursor.
  r = Get("/api/v1/alerts?limit=10000");
  EXPECT_FALSE(HasSubstr(r.body, "\"next\""));
  for (const char* bad : {"x", "12", ".id", "12.", "1a.id"}) {
    r = Get(std::string("/api/v1/alerts?before=") + bad);
    EXPECT_EQ(r.status, 400) << bad;
  }
}

}  // namespace
}  // namespace tokenwatch::collector
