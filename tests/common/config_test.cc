#include "common/config.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace tokenwatch::config {
namespace {

using Strings = std::vector<std::string>;

::testing::AssertionResult HasPart(absl::string_view text,
                                   absl::string_view part) {
  if (absl::StrContains(text, part)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "'" << text << "' does not contain '" << part << "'";
}

::testing::AssertionResult HasPrefix(absl::string_view text,
                                     absl::string_view prefix) {
  if (absl::StartsWith(text, prefix)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "'" << text << "' does not start with '" << prefix << "'";
}

constexpr char kPath[] = "/etc/tokenwatch/tokenwatch.yaml";

// The example from SPEC.md, "Config", verbatim.
constexpr char kSpecExample[] = R"yaml(
fingerprint_key_file: /etc/tokenwatch/fingerprint.key  # HMAC-SHA256 key shared by all agents
services:                       # how traffic is attributed to a service
  - name: orders
    match: { hosts: ["orders.internal"], addresses: ["10.0.0.5:8080"] }  # Host header, dst ip:port
    audiences: ["orders-api"]   # aud values this service should accept
issuers:
  - iss: "https://idp.example.com"
    algorithms: [RS256, ES256]  # anything else is alg_not_allowed
    jwks_file: /etc/tokenwatch/idp.jwks.json   # public keys: signatures are checked on the host
    max_lifetime: 1h
  - iss: "legacy-app"
    algorithms: [HS256]
sensitive_endpoints:
  - service: payments           # optional: any service when absent
    method: POST                # optional
    path: "/v1/refunds/**"      # glob: * = one segment, ** = zero or more (so this matches /v1/refunds too)
    required_scopes: ["payments:refund"]   # optional (scope / scp claim)
    severity: high
detections:
  clock_leeway: 30s
  default_max_lifetime: 24h
  weak_secrets_file: /usr/share/tokenwatch/jwt.secrets.list
  revoked_jtis_file: /etc/tokenwatch/revoked.txt   # one jti per line, re-read on change
  multi_source: { window: 5m, min_sources: 3 }
agent:
  interface: eth0
  filter: "tcp"
  collector: "collector.internal:9470"
collector:
  listen: "0.0.0.0:9470"
  http_listen: "0.0.0.0:9471"
  store: "sqlite:/var/lib/tokenwatch/state.db"
  alerts_out: /var/log/tokenwatch/alerts.jsonl
)yaml";

// Parses `yaml` expecting failure; returns the message.
std::string ErrorOf(std::string_view yaml) {
  absl::StatusOr<Config> config = ParseConfig(yaml, kPath);
  EXPECT_FALSE(config.ok()) << "parsed without error:\n" << yaml;
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

// A directory of its own under the test temp dir, removed afterwards.
class TempDir {
 public:
  explicit TempDir(std::string_view name)
      : path_(std::filesystem::path(::testing::TempDir()) /
              ("config_test_" + std::string(name))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

  std::string Write(std::string_view name, std::string_view content) const {
    const std::filesystem::path file = path_ / name;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream out(file, std::ios::binary);
    out << content;
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

void ExpectDefaults(const Config& config) {
  EXPECT_EQ(config.fingerprint_key_file, "");
  EXPECT_TRUE(config.services.empty());
  EXPECT_TRUE(config.issuers.empty());
  EXPECT_TRUE(config.sensitive_endpoints.empty());

  EXPECT_EQ(config.detections.clock_leeway, absl::Seconds(30));
  EXPECT_EQ(config.detections.default_max_lifetime, absl::Hours(24));
  EXPECT_EQ(config.detections.weak_secrets_file, "");
  EXPECT_EQ(config.detections.revoked_jtis_file, "");
  EXPECT_EQ(config.detections.multi_source.window, absl::Minutes(5));
  EXPECT_EQ(config.detections.multi_source.min_sources, 3);

  EXPECT_EQ(config.agent.interface, "");
  EXPECT_EQ(config.agent.filter, "");
  EXPECT_EQ(config.agent.collector, "");
  EXPECT_EQ(config.agent.agent_id, "");
  EXPECT_EQ(config.agent.events_out, "");
  EXPECT_EQ(config.agent.metrics_listen, "");
  EXPECT_TRUE(config.agent.token_headers.empty());
  EXPECT_EQ(config.agent.fold_window, absl::Seconds(1));
  EXPECT_EQ(config.agent.limits.max_flows, 262144u);
  EXPECT_EQ(config.agent.limits.flow_buffer_bytes, 262144u);
  EXPECT_EQ(config.agent.limits.total_buffer_bytes, 67108864u);
  EXPECT_EQ(config.agent.limits.max_header_bytes, 65536u);
  EXPECT_EQ(config.agent.limits.max_pending_requests, 64u);
  EXPECT_EQ(config.agent.limits.token_cache_entries, 65536u);
  EXPECT_EQ(config.agent.limits.flow_idle_timeout, absl::Seconds(120));

  EXPECT_EQ(config.collector.listen, "127.0.0.1:9470");
  EXPECT_EQ(config.collector.http_listen, "127.0.0.1:9471");
  // The default is the --store default, not a path written in the file, so
  // it is not resolved against the file's folder.
  EXPECT_EQ(config.collector.store, "sqlite:tokenwatch.db");
  EXPECT_EQ(config.collector.alerts_out, "");
}

// ---------------------------------------------------------------------------
// The SPEC example, value by value.

TEST(ConfigTest, SpecExampleLoadsEveryValue) {
  absl::StatusOr<Config> loaded = ParseConfig(kSpecExample, kPath);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Config& c = *loaded;

  EXPECT_EQ(c.path, kPath);
  EXPECT_EQ(c.fingerprint_key_file, "/etc/tokenwatch/fingerprint.key");

  ASSERT_EQ(c.services.size(), 1u);
  EXPECT_EQ(c.services[0].name, "orders");
  EXPECT_EQ(c.services[0].match.hosts, Strings({"orders.internal"}));
  EXPECT_EQ(c.services[0].match.addresses, Strings({"10.0.0.5:8080"}));
  EXPECT_EQ(c.services[0].audiences, Strings({"orders-api"}));

  ASSERT_EQ(c.issuers.size(), 2u);
  EXPECT_EQ(c.issuers[0].iss, "https://idp.example.com");
  EXPECT_EQ(c.issuers[0].algorithms, Strings({"RS256", "ES256"}));
  EXPECT_EQ(c.issuers[0].jwks_file, "/etc/tokenwatch/idp.jwks.json");
  EXPECT_EQ(c.issuers[0].pem_file, "");
  EXPECT_EQ(c.issuers[0].secret_file, "");
  EXPECT_EQ(c.issuers[0].max_lifetime, absl::Hours(1));
  EXPECT_EQ(c.issuers[1].iss, "legacy-app");
  EXPECT_EQ(c.issuers[1].algorithms, Strings({"HS256"}));
  EXPECT_EQ(c.issuers[1].jwks_file, "");
  EXPECT_EQ(c.issuers[1].max_lifetime, std::nullopt);

  ASSERT_EQ(c.sensitive_endpoints.size(), 1u);
  const SensitiveEndpoint& e = c.sensitive_endpoints[0];
  EXPECT_EQ(e.service, "payments");
  EXPECT_EQ(e.method, "POST");
  EXPECT_EQ(e.path, "/v1/refunds/**");
  EXPECT_EQ(e.required_scopes, Strings({"payments:refund"}));
  EXPECT_EQ(e.severity, "high");

  EXPECT_EQ(c.detections.clock_leeway, absl::Seconds(30));
  EXPECT_EQ(c.detections.default_max_lifetime, absl::Hours(24));
  EXPECT_EQ(c.detections.weak_secrets_file,
            "/usr/share/tokenwatch/jwt.secrets.list");
  EXPECT_EQ(c.detections.revoked_jtis_file, "/etc/tokenwatch/revoked.txt");
  EXPECT_EQ(c.detections.multi_source.window, absl::Minutes(5));
  EXPECT_EQ(c.detections.multi_source.min_sources, 3);

  EXPECT_EQ(c.agent.interface, "eth0");
  EXPECT_EQ(c.agent.filter, "tcp");
  EXPECT_EQ(c.agent.collector, "collector.internal:9470");
  EXPECT_EQ(c.agent.agent_id, "");
  EXPECT_EQ(c.agent.fold_window, absl::Seconds(1));

  EXPECT_EQ(c.collector.listen, "0.0.0.0:9470");
  EXPECT_EQ(c.collector.http_listen, "0.0.0.0:9471");
  EXPECT_EQ(c.collector.store, "sqlite:/var/lib/tokenwatch/state.db");
  EXPECT_EQ(c.collector.alerts_out, "/var/log/tokenwatch/alerts.jsonl");
}

TEST(ConfigTest, SpecExampleLoadsFromFile) {
  TempDir dir("spec_file");
  const std::string file = dir.Write("tokenwatch.yaml", kSpecExample);
  absl::StatusOr<Config> loaded = LoadConfig(file);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->path, file);
  EXPECT_EQ(loaded->services[0].name, "orders");
  EXPECT_EQ(loaded->collector.store, "sqlite:/var/lib/tokenwatch/state.db");
}

TEST(ConfigTest, ExtensionsLoad) {
  constexpr char kYaml[] = R"yaml(issuers:
  - iss: legacy-app
    algorithms: [HS256, HS512]
    secret_file: /etc/tokenwatch/legacy.secret
    pem_file: /etc/tokenwatch/legacy.pem
agent:
  agent_id: host-a
  events_out: "-"
  metrics_listen: "127.0.0.1:9999"
  token_headers: [X-Api-Token, X-AUTH]
  fold_window: 0s
  limits:
    max_flows: 1000
    flow_buffer_bytes: 4096
    total_buffer_bytes: 1048576
    max_header_bytes: 8192
    max_pending_requests: 8
    token_cache_entries: 128
    flow_idle_timeout: 2m
)yaml";
  absl::StatusOr<Config> loaded = ParseConfig(kYaml, kPath);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Config& c = *loaded;
  ASSERT_EQ(c.issuers.size(), 1u);
  EXPECT_EQ(c.issuers[0].secret_file, "/etc/tokenwatch/legacy.secret");
  EXPECT_EQ(c.issuers[0].pem_file, "/etc/tokenwatch/legacy.pem");
  EXPECT_EQ(c.agent.agent_id, "host-a");
  EXPECT_EQ(c.agent.events_out, "-");
  EXPECT_EQ(c.agent.metrics_listen, "127.0.0.1:9999");
  EXPECT_EQ(c.agent.token_headers, Strings({"x-api-token", "x-auth"}));
  EXPECT_EQ(c.agent.fold_window, absl::ZeroDuration());
  EXPECT_EQ(c.agent.limits.max_flows, 1000u);
  EXPECT_EQ(c.agent.limits.flow_buffer_bytes, 4096u);
  EXPECT_EQ(c.agent.limits.total_buffer_bytes, 1048576u);
  EXPECT_EQ(c.agent.limits.max_header_bytes, 8192u);
  EXPECT_EQ(c.agent.limits.max_pending_requests, 8u);
  EXPECT_EQ(c.agent.limits.token_cache_entries, 128u);
  EXPECT_EQ(c.agent.limits.flow_idle_timeout, absl::Minutes(2));
}

TEST(ConfigTest, AgentUser) {
  absl::StatusOr<Config> loaded =
      ParseConfig("agent:\n  user: tokenwatch\n", kPath);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->agent.user, "tokenwatch");
  EXPECT_EQ(ErrorOf("agent:\n  user: \"\"\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'agent.user': must not be "
            "empty");
}

TEST(ConfigTest, NormalizesCase) {
  constexpr char kYaml[] = R"yaml(services:
  - name: Orders
    match:
      hosts: [Orders.Internal, API.example.COM]
sensitive_endpoints:
  - method: delete
    path: /v1/users/*
    severity: Critical
)yaml";
  absl::StatusOr<Config> loaded = ParseConfig(kYaml, kPath);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  // Service names are identifiers chosen by the operator: kept as written.
  EXPECT_EQ(loaded->services[0].name, "Orders");
  EXPECT_EQ(loaded->services[0].match.hosts,
            Strings({"orders.internal", "api.example.com"}));
  EXPECT_EQ(loaded->sensitive_endpoints[0].method, "DELETE");
  EXPECT_EQ(loaded->sensitive_endpoints[0].severity, "critical");
  EXPECT_EQ(loaded->sensitive_endpoints[0].service, "");
  EXPECT_TRUE(loaded->sensitive_endpoints[0].required_scopes.empty());
}

TEST(ConfigTest, SensitiveEndpointSeverityDefaultsToMedium) {
  absl::StatusOr<Config> loaded =
      ParseConfig("sensitive_endpoints:\n  - path: /admin\n", kPath);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->sensitive_endpoints[0].severity, "medium");
  EXPECT_EQ(loaded->sensitive_endpoints[0].method, "");
}

TEST(ConfigTest, AddressesAreNormalized) {
  constexpr char kYaml[] = R"yaml(services:
  - name: a
    match:
      addresses: ["10.0.0.5", "10.0.0.5:8080", "[2001:DB8::0001]:443", "::1", "[fe80::1]"]
)yaml";
  absl::StatusOr<Config> loaded = ParseConfig(kYaml, kPath);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->services[0].match.addresses,
            Strings({"10.0.0.5", "10.0.0.5:8080", "[2001:db8::1]:443", "::1",
                     "fe80::1"}));
}

// ---------------------------------------------------------------------------
// Defaults.

TEST(ConfigTest, EmptyTextYieldsDefaults) {
  for (std::string_view text : {"", "\n", "# nothing here\n", "---\n"}) {
    absl::StatusOr<Config> loaded = ParseConfig(text, kPath);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(loaded->path, kPath);
    ExpectDefaults(*loaded);
  }
}

TEST(ConfigTest, EmptyFileYieldsDefaults) {
  TempDir dir("empty");
  const std::string file = dir.Write("empty.yaml", "");
  absl::StatusOr<Config> loaded = LoadConfig(file);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->path, file);
  ExpectDefaults(*loaded);
}

TEST(ConfigTest, EmptySectionsKeepDefaults) {
  constexpr char kYaml[] = R"yaml(services:
issuers:
sensitive_endpoints: []
detections:
  multi_source:
agent:
  limits: {}
collector:
)yaml";
  absl::StatusOr<Config> loaded = ParseConfig(kYaml, kPath);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectDefaults(*loaded);
}

TEST(ConfigTest, PartialSectionKeepsOtherDefaults) {
  absl::StatusOr<Config> loaded =
      ParseConfig("detections:\n  multi_source: { min_sources: 4 }\n", kPath);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->detections.multi_source.min_sources, 4);
  EXPECT_EQ(loaded->detections.multi_source.window, absl::Minutes(5));
  EXPECT_EQ(loaded->detections.clock_leeway, absl::Seconds(30));
}

// ---------------------------------------------------------------------------
// Relative paths.

TEST(ConfigTest, RelativePathsResolveAgainstTheConfigFolder) {
  constexpr char kYaml[] = R"yaml(fingerprint_key_file: keys/fp.key
issuers:
  - iss: a
    jwks_file: a.jwks.json
    pem_file: ./pem/a.pem
    secret_file: ../secrets/a.secret
detections:
  weak_secrets_file: weak.list
  revoked_jtis_file: /abs/revoked.txt
agent:
  events_out: events.jsonl
collector:
  store: sqlite:state/tw.db
  alerts_out: alerts.jsonl
)yaml";
  absl::StatusOr<Config> loaded = ParseConfig(kYaml, "/srv/tw/conf/tw.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Config& c = *loaded;
  EXPECT_EQ(c.fingerprint_key_file, "/srv/tw/conf/keys/fp.key");
  EXPECT_EQ(c.issuers[0].jwks_file, "/srv/tw/conf/a.jwks.json");
  EXPECT_EQ(c.issuers[0].pem_file, "/srv/tw/conf/pem/a.pem");
  EXPECT_EQ(c.issuers[0].secret_file, "/srv/tw/secrets/a.secret");
  EXPECT_EQ(c.detections.weak_secrets_file, "/srv/tw/conf/weak.list");
  EXPECT_EQ(c.detections.revoked_jtis_file, "/abs/revoked.txt");
  EXPECT_EQ(c.agent.events_out, "/srv/tw/conf/events.jsonl");
  EXPECT_EQ(c.collector.store, "sqlite:/srv/tw/conf/state/tw.db");
  EXPECT_EQ(c.collector.alerts_out, "/srv/tw/conf/alerts.jsonl");
}

TEST(ConfigTest, DashMeansStdoutAndAbsolutePathsStay) {
  constexpr char kYaml[] = R"yaml(agent:
  events_out: "-"
collector:
  store: "sqlite:/var/lib//tw.db"
  alerts_out: "-"
)yaml";
  absl::StatusOr<Config> loaded = ParseConfig(kYaml, "/srv/tw/tw.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->agent.events_out, "-");
  EXPECT_EQ(loaded->collector.alerts_out, "-");
  EXPECT_EQ(loaded->collector.store, "sqlite:/var/lib//tw.db");
}

TEST(ConfigTest, MemoryStoreHasNoPath) {
  absl::StatusOr<Config> loaded =
      ParseConfig("collector:\n  store: \"memory:\"\n", kPath);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->collector.store, "memory:");
}

TEST(ConfigTest, RelativeConfigPathGivesAbsolutePaths) {
  absl::StatusOr<Config> loaded =
      ParseConfig("fingerprint_key_file: fp.key\n", "conf/tw.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->fingerprint_key_file,
            (std::filesystem::current_path() / "conf/fp.key").string());
  EXPECT_EQ(loaded->path, "conf/tw.yaml");
}

TEST(ConfigTest, LoadConfigResolvesAgainstTheFilesFolder) {
  TempDir dir("relative");
  const std::string file =
      dir.Write("sub/tw.yaml",
                "fingerprint_key_file: fp.key\ncollector:\n"
                "  store: sqlite:tw.db\n");
  absl::StatusOr<Config> loaded = LoadConfig(file);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->fingerprint_key_file,
            (dir.path() / "sub" / "fp.key").string());
  EXPECT_EQ(loaded->collector.store,
            "sqlite:" + (dir.path() / "sub" / "tw.db").string());
}

TEST(ConfigTest, TransportSecurityKeysLoad) {
  constexpr char kYaml[] = R"yaml(agent:
  tls:
    ca_file: pki/ca.crt
    cert_file: pki/agent.crt
    key_file: /abs/agent.key
    server_name: collector.internal
collector:
  tls: { cert_file: pki/server.crt, key_file: pki/server.key,
         client_ca_file: pki/ca.crt }
  http_token_file: api.token
)yaml";
  absl::StatusOr<Config> loaded = ParseConfig(kYaml, "/srv/tw/tw.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->agent.tls.has_value());
  const AgentTls& a = *loaded->agent.tls;
  EXPECT_EQ(a.ca_file.path, "/srv/tw/pki/ca.crt");
  EXPECT_EQ(a.ca_file.where, "/srv/tw/tw.yaml:3: key 'agent.tls.ca_file'");
  EXPECT_EQ(a.cert_file.path, "/srv/tw/pki/agent.crt");
  EXPECT_EQ(a.key_file.path, "/abs/agent.key");
  EXPECT_EQ(a.key_file.where, "/srv/tw/tw.yaml:5: key 'agent.tls.key_file'");
  EXPECT_EQ(a.server_name, "collector.internal");
  ASSERT_TRUE(loaded->collector.tls.has_value());
  const CollectorTls& c = *loaded->collector.tls;
  EXPECT_EQ(c.cert_file.path, "/srv/tw/pki/server.crt");
  EXPECT_EQ(c.key_file.path, "/srv/tw/pki/server.key");
  EXPECT_EQ(c.client_ca_file.path, "/srv/tw/pki/ca.crt");
  EXPECT_EQ(c.client_ca_file.where,
            "/srv/tw/tw.yaml:9: key 'collector.tls.client_ca_file'");
  EXPECT_EQ(loaded->collector.http_token_file.path, "/srv/tw/api.token");
  EXPECT_EQ(loaded->collector.http_token_file.where,
            "/srv/tw/tw.yaml:10: key 'collector.http_token_file'");
}

TEST(ConfigTest, TransportSecurityIsOffByDefault) {
  absl::StatusOr<Config> loaded = ParseConfig("agent:\ncollector:\n", kPath);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->agent.tls.has_value());
  EXPECT_FALSE(loaded->collector.tls.has_value());
  EXPECT_TRUE(loaded->collector.http_token_file.empty());
  // An agent TLS section with only the CA: TLS without a client cert.
  loaded = ParseConfig("agent:\n  tls: { ca_file: ca.crt }\n", kPath);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->agent.tls.has_value());
  EXPECT_TRUE(loaded->agent.tls->cert_file.empty());
}

// ---------------------------------------------------------------------------
// Errors: each names the file, the line and the key.

TEST(ConfigErrorTest, TransportSecurityErrors) {
  EXPECT_EQ(ErrorOf("agent:\n  tls:\n    cert_file: a.crt\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'agent.tls.key_file': "
            "required key is missing (cert_file needs its key_file)");
  EXPECT_EQ(ErrorOf("agent:\n  tls:\n    key_file: a.key\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'agent.tls.cert_file': "
            "required key is missing (key_file needs its cert_file)");
  EXPECT_EQ(ErrorOf("agent:\n  tls: { ca: x }\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'agent.tls.ca': unknown "
            "key (expected one of: ca_file, cert_file, key_file, "
            "server_name)");
  EXPECT_EQ(ErrorOf("collector:\n  tls:\n    cert_file: s.crt\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'collector.tls.key_file': "
            "required key is missing");
  EXPECT_EQ(ErrorOf("collector:\n  tls:\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'collector.tls.cert_file': "
            "required key is missing");
  EXPECT_EQ(ErrorOf("collector:\n  tls: { cert_file: s.crt, key_file: s.key, "
                    "client_ca: ca.crt }\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'collector.tls.client_ca': "
            "unknown key (expected one of: cert_file, key_file, "
            "client_ca_file)");
  EXPECT_EQ(ErrorOf("collector:\n  http_token_file: \"\"\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key "
            "'collector.http_token_file': must not be empty");
  EXPECT_EQ(ErrorOf("agent:\n  tls: { server_name: [a] }\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'agent.tls.server_name': "
            "expected a string, got a list");
}

TEST(ConfigErrorTest, UnknownTopLevelKey) {
  EXPECT_EQ(ErrorOf("agent:\n  interface: eth0\nservises: []\n"),
            "/etc/tokenwatch/tokenwatch.yaml:3: key 'servises': unknown key "
            "(expected one of: fingerprint_key_file, services, issuers, "
            "sensitive_endpoints, detections, agent, collector)");
}

TEST(ConfigErrorTest, UnknownNestedKey) {
  constexpr char kYaml[] = R"yaml(services:
  - name: orders
  - name: billing
    match:
      hosts: [billing.internal]
      hostz: [typo]
)yaml";
  EXPECT_EQ(ErrorOf(kYaml),
            "/etc/tokenwatch/tokenwatch.yaml:6: key 'services[1].match.hostz': "
            "unknown key (expected one of: hosts, addresses)");
}

TEST(ConfigErrorTest, UnknownKeyInFlowMap) {
  EXPECT_EQ(ErrorOf("detections:\n  multi_source: { window: 5m, min: 3 }\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key "
            "'detections.multi_source.min': unknown key (expected one of: "
            "window, min_sources)");
}

TEST(ConfigErrorTest, DuplicateKey) {
  EXPECT_EQ(ErrorOf("agent:\n  interface: eth0\n  interface: eth1\n"),
            "/etc/tokenwatch/tokenwatch.yaml:3: key 'agent.interface': "
            "duplicate key (first at line 2)");
}

TEST(ConfigErrorTest, StringWhereListExpected) {
  constexpr char kYaml[] = R"yaml(services:
  - name: orders
    match:
      hosts: orders.internal
)yaml";
  EXPECT_EQ(ErrorOf(kYaml),
            "/etc/tokenwatch/tokenwatch.yaml:4: key 'services[0].match.hosts': "
            "expected a list, got a string ('orders.internal')");
}

TEST(ConfigErrorTest, StringWhereMapExpected) {
  EXPECT_EQ(ErrorOf("fingerprint_key_file: fp.key\nagent: eth0\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'agent': expected a map, "
            "got a string ('eth0')");
}

TEST(ConfigErrorTest, MapWhereListExpected) {
  EXPECT_EQ(ErrorOf("services:\n  name: orders\n"),
            "/etc/tokenwatch/tokenwatch.yaml:1: key 'services': expected a "
            "list, got a map");
}

TEST(ConfigErrorTest, ListWhereStringExpected) {
  EXPECT_EQ(ErrorOf("agent:\n  interface: [eth0, eth1]\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'agent.interface': "
            "expected a string, got a list");
}

TEST(ConfigErrorTest, MissingValue) {
  EXPECT_EQ(ErrorOf("agent:\n  interface:\n  filter: tcp\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'agent.interface': "
            "expected a string, got nothing");
}

TEST(ConfigErrorTest, NonIntegerMinSources) {
  EXPECT_EQ(ErrorOf("detections:\n  multi_source:\n    min_sources: 2.5\n"),
            "/etc/tokenwatch/tokenwatch.yaml:3: key "
            "'detections.multi_source.min_sources': expected an integer from "
            "2 to 2147483647, got a string ('2.5')");
  EXPECT_TRUE(
      HasPart(ErrorOf("detections:\n  multi_source:\n    min_sources: three\n"),
              ":3: key 'detections.multi_source.min_sources': "
              "expected an integer from 2 to 2147483647"));
  EXPECT_TRUE(
      HasPart(ErrorOf("detections:\n  multi_source:\n    min_sources: 1\n"),
              ":3: key 'detections.multi_source.min_sources': "
              "expected an integer from 2 to 2147483647"));
  EXPECT_TRUE(
      HasPart(ErrorOf("detections:\n  multi_source:\n    min_sources: [3]\n"),
              "expected an integer from 2 to 2147483647, got a "
              "list"));
}

TEST(ConfigErrorTest, BadLimits) {
  EXPECT_EQ(ErrorOf("agent:\n  limits:\n    max_flows: 0\n"),
            "/etc/tokenwatch/tokenwatch.yaml:3: key 'agent.limits.max_flows': "
            "expected an integer of at least 1, got a string ('0')");
  EXPECT_TRUE(HasPart(ErrorOf("agent:\n  limits:\n    max_header_bytes: -1\n"),
                      ":3: key 'agent.limits.max_header_bytes': expected an "
                      "integer of at least 1"));
  EXPECT_TRUE(
      HasPart(ErrorOf("agent:\n  limits:\n    token_cache_entries: 0x10\n"),
              ":3: key 'agent.limits.token_cache_entries': "));
  EXPECT_TRUE(HasPart(
      ErrorOf("agent:\n  limits:\n    max_flows: 18446744073709551616\n"),
      ":3: key 'agent.limits.max_flows': "));
  EXPECT_TRUE(HasPart(ErrorOf("agent:\n  limits:\n    flow_idle_timeout: 0s\n"),
                      ":3: key 'agent.limits.flow_idle_timeout': must be "
                      "longer than 0s"));
}

TEST(ConfigErrorTest, BadDurations) {
  struct Case {
    std::string_view value;
    std::string_view message;
  };
  const Case kCases[] = {
      {"5", "bad duration '5': missing unit after 5 (use s, m, h or d)"},
      {"-5m", "bad duration '-5m': negative durations are not allowed"},
      {"5x", "bad duration '5x': unknown unit 'x' (use s, m, h or d)"},
      {"10ms", "bad duration '10ms': unknown unit 'ms' (use s, m, h or d)"},
      {"\"\"", "bad duration '': empty"},
      {"m", "bad duration 'm': expected a number at 'm'"},
      {"1.5h",
       "bad duration '1.5h': fractions are not supported; write sums like "
       "1h30m"},
      {"30m1h",
       "bad duration '30m1h': units must go from largest to smallest, each "
       "at most once"},
      {"\"1h 30m\"", "bad duration '1h 30m': expected a number at ' 30m'"},
  };
  for (const Case& c : kCases) {
    EXPECT_EQ(ErrorOf("agent:\n  interface: eth0\ndetections:\n"
                      "  clock_leeway: " +
                      std::string(c.value) + "\n"),
              "/etc/tokenwatch/tokenwatch.yaml:4: key "
              "'detections.clock_leeway': " +
                  std::string(c.message));
  }
}

TEST(ConfigErrorTest, DurationOfWrongType) {
  EXPECT_EQ(ErrorOf("detections:\n  multi_source:\n    window: {m: 5}\n"),
            "/etc/tokenwatch/tokenwatch.yaml:3: key "
            "'detections.multi_source.window': expected a duration like 30s, "
            "5m, 1h30m or 2d, got a map");
}

TEST(ConfigErrorTest, ZeroWhereAPositiveDurationIsNeeded) {
  EXPECT_EQ(ErrorOf("issuers:\n  - iss: a\n    max_lifetime: 0s\n"),
            "/etc/tokenwatch/tokenwatch.yaml:3: key "
            "'issuers[0].max_lifetime': must be longer than 0s");
  EXPECT_TRUE(HasPart(ErrorOf("detections:\n  multi_source: {window: 0m}\n"),
                      ":2: key 'detections.multi_source.window': must be "
                      "longer than 0s"));
  // Zero leeway and zero fold window are legitimate settings.
  EXPECT_TRUE(
      ParseConfig(
          "detections:\n  clock_leeway: 0s\nagent:\n  fold_window: 0s\n", kPath)
          .ok());
}

TEST(ConfigErrorTest, MissingRequiredServiceName) {
  constexpr char kYaml[] = R"yaml(services:
  - name: orders
  - match:
      hosts: [billing.internal]
)yaml";
  EXPECT_EQ(ErrorOf(kYaml),
            "/etc/tokenwatch/tokenwatch.yaml:3: key 'services[1].name': "
            "required key is missing");
}

TEST(ConfigErrorTest, MissingRequiredIss) {
  constexpr char kYaml[] = R"yaml(issuers:
  - iss: a
  - algorithms: [RS256]
    jwks_file: b.jwks
)yaml";
  EXPECT_EQ(ErrorOf(kYaml),
            "/etc/tokenwatch/tokenwatch.yaml:3: key 'issuers[1].iss': "
            "required key is missing");
}

TEST(ConfigErrorTest, EmptyListItem) {
  EXPECT_TRUE(HasPart(ErrorOf("services:\n  -\n"),
                      "key 'services[0]': expected a map, got nothing"));
  EXPECT_TRUE(HasPart(ErrorOf("issuers: [~]\n"),
                      "key 'issuers[0]': expected a map, got nothing"));
  EXPECT_TRUE(HasPart(ErrorOf("sensitive_endpoints: [~]\n"),
                      "key 'sensitive_endpoints[0]': expected a map, got "
                      "nothing"));
  EXPECT_TRUE(HasPart(ErrorOf("agent:\n  token_headers: [~]\n"),
                      "key 'agent.token_headers[0]': expected a string, got "
                      "nothing"));
}

TEST(ConfigErrorTest, DuplicateServiceName) {
  constexpr char kYaml[] = R"yaml(services:
  - name: orders
  - name: billing
  - name: orders
)yaml";
  EXPECT_EQ(ErrorOf(kYaml),
            "/etc/tokenwatch/tokenwatch.yaml:4: key 'services[2].name': "
            "duplicate service name 'orders' (first at line 2)");
}

TEST(ConfigErrorTest, DuplicateIssuer) {
  EXPECT_EQ(ErrorOf("issuers:\n  - iss: a\n  - {iss: a}\n"),
            "/etc/tokenwatch/tokenwatch.yaml:3: key 'issuers[1].iss': "
            "duplicate issuer 'a' (first at line 2)");
}

TEST(ConfigErrorTest, EmptyServiceName) {
  EXPECT_EQ(ErrorOf("services:\n  - name: \"\"\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'services[0].name': must "
            "not be empty");
}

TEST(ConfigErrorTest, BadSeverity) {
  constexpr char kYaml[] = R"yaml(sensitive_endpoints:
  - path: /admin
    severity: urgent
)yaml";
  EXPECT_EQ(ErrorOf(kYaml),
            "/etc/tokenwatch/tokenwatch.yaml:3: key "
            "'sensitive_endpoints[0].severity': bad severity 'urgent' "
            "(expected low, medium, high or critical)");
}

TEST(ConfigErrorTest, BadEndpointPath) {
  EXPECT_EQ(ErrorOf("sensitive_endpoints:\n  - path: v1/refunds\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key "
            "'sensitive_endpoints[0].path': path 'v1/refunds' must start "
            "with '/'");
  EXPECT_EQ(ErrorOf("sensitive_endpoints:\n  - method: GET\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key "
            "'sensitive_endpoints[0].path': required key is missing");
  EXPECT_TRUE(HasPart(ErrorOf("sensitive_endpoints:\n  - path: /a?b=1\n"),
                      "must not contain '?' or '#'"));
  EXPECT_TRUE(HasPart(ErrorOf("sensitive_endpoints:\n  - path: /v1/*.json\n"),
                      "'*' and '**' must be a whole segment"));
  EXPECT_TRUE(
      ParseConfig("sensitive_endpoints:\n  - path: /v1/*/x/**\n", kPath).ok());
}

TEST(ConfigErrorTest, BadMethod) {
  EXPECT_EQ(
      ErrorOf("sensitive_endpoints:\n  - path: /a\n    method: \"GE T\"\n"),
      "/etc/tokenwatch/tokenwatch.yaml:3: key "
      "'sensitive_endpoints[0].method': bad HTTP method 'GE T'");
}

TEST(ConfigErrorTest, BadTokenHeader) {
  EXPECT_EQ(ErrorOf("agent:\n  token_headers: [x-token, \"x token\"]\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'agent.token_headers[1]': "
            "bad header name 'x token'");
}

TEST(ConfigErrorTest, BadStore) {
  EXPECT_EQ(ErrorOf("collector:\n  store: postgres://db/tw\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'collector.store': bad "
            "store 'postgres://db/tw' (expected sqlite:PATH or memory:)");
  EXPECT_TRUE(HasPart(ErrorOf("collector:\n  store: \"sqlite:\"\n"),
                      ":2: key 'collector.store': bad store 'sqlite:'"));
  EXPECT_TRUE(HasPart(ErrorOf("collector:\n  store: \"memory:x\"\n"),
                      ":2: key 'collector.store': bad store 'memory:x'"));
  EXPECT_TRUE(HasPart(ErrorOf("collector:\n  store: tw.db\n"),
                      ":2: key 'collector.store': bad store 'tw.db'"));
}

TEST(ConfigErrorTest, UnknownAlgorithm) {
  EXPECT_TRUE(HasPrefix(
      ErrorOf("issuers:\n  - iss: a\n    algorithms: [RS256, RS265]\n"),
      "/etc/tokenwatch/tokenwatch.yaml:3: key "
      "'issuers[0].algorithms[1]': unknown algorithm "
      "'RS265' (expected one of: HS256,"));
  // Unsigned tokens are always reported; "none" cannot be allowed.
  EXPECT_TRUE(HasPart(ErrorOf("issuers:\n  - iss: a\n    algorithms: [none]\n"),
                      "unknown algorithm 'none'"));
}

TEST(ConfigErrorTest, BadAddress) {
  for (std::string_view address :
       {"orders.internal:80", "10.0.0.5:", "10.0.0.5:0", "10.0.0.5:65536",
        "10.0.0.256", "[::1", "[::1]80", "1.2.3.4:8a"}) {
    EXPECT_EQ(
        ErrorOf("services:\n  - name: a\n    match:\n      addresses: [\"" +
                std::string(address) + "\"]\n"),
        "/etc/tokenwatch/tokenwatch.yaml:4: key "
        "'services[0].match.addresses[0]': bad address '" +
            std::string(address) + "' (expected ip, ip:port or [ipv6]:port)");
  }
}

TEST(ConfigErrorTest, TopLevelMustBeAMap) {
  EXPECT_EQ(ErrorOf("- a\n- b\n"),
            "/etc/tokenwatch/tokenwatch.yaml:1: the top level must be a map "
            "of settings, got a list");
}

TEST(ConfigErrorTest, NonStringKey) {
  EXPECT_EQ(ErrorOf("agent:\n  ? [a, b]\n  : x\n"),
            "/etc/tokenwatch/tokenwatch.yaml:2: key 'agent': keys must be "
            "plain strings, got a list");
}

TEST(ConfigErrorTest, SyntaxErrorNamesFileAndLine) {
  EXPECT_EQ(ErrorOf("agent:\n  interface: eth0\n  filter: [tcp\n"),
            "/etc/tokenwatch/tokenwatch.yaml:4: YAML syntax error: end of "
            "sequence flow not found");
  EXPECT_TRUE(HasPrefix(ErrorOf("agent:\n\tinterface: eth0\n"),
                        "/etc/tokenwatch/tokenwatch.yaml:2: YAML syntax "
                        "error: "));
}

TEST(ConfigErrorTest, SecondDocumentIsAnError) {
  EXPECT_EQ(ErrorOf("agent: {}\n---\ncollector: {}\n"),
            "/etc/tokenwatch/tokenwatch.yaml:3: a config file holds one YAML "
            "document, found another");
  // A trailing separator is harmless.
  EXPECT_TRUE(ParseConfig("agent: {}\n---\n", kPath).ok());
}

// yaml-cpp 0.7 loops forever on a ',' outside a flow collection (found by
// tests/fuzz/config_fuzzer.cc): the loader must stop it with an error.
TEST(ConfigErrorTest, StrayCommaIsAnErrorNotAHang) {
  EXPECT_EQ(ErrorOf(" ,"),
            "/etc/tokenwatch/tokenwatch.yaml:1: YAML syntax error: "
            "unexpected ',' outside a flow collection ([...] or {...})");
  EXPECT_TRUE(HasPrefix(ErrorOf("agent: {}\n[a],\n"),
                        "/etc/tokenwatch/tokenwatch.yaml:"));
  EXPECT_TRUE(
      HasPrefix(ErrorOf("- a\n,\n"), "/etc/tokenwatch/tokenwatch.yaml:"));
  // Commas inside flow collections and scalars are fine.
  EXPECT_TRUE(
      ParseConfig("agent: { token_headers: [a, b] }\n# x, y\n", kPath).ok());
}

TEST(ConfigErrorTest, KeyWithNewlineStaysOnOneLine) {
  const std::string message = ErrorOf("\"a\\nb\": 1\n");
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_TRUE(HasPrefix(message,
                        "/etc/tokenwatch/tokenwatch.yaml:1: key "
                        "'a\\nb': unknown key"));
}

TEST(ConfigErrorTest, MissingFileNamesTheFile) {
  TempDir dir("missing");
  const std::string file = (dir.path() / "nope.yaml").string();
  absl::StatusOr<Config> loaded = LoadConfig(file);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(loaded.status().message(),
            file + ": cannot open config: No such file or directory");
}

TEST(ConfigErrorTest, DirectoryIsNotAConfig) {
  TempDir dir("directory");
  absl::StatusOr<Config> loaded = LoadConfig(dir.path().string());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasPrefix(loaded.status().message(), dir.path().string() + ": "));
}

TEST(ConfigErrorTest, EndlessFileIsRefused) {
  if (!std::filesystem::exists("/dev/zero")) GTEST_SKIP() << "no /dev/zero";
  absl::StatusOr<Config> loaded = LoadConfig("/dev/zero");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().message(),
            "/dev/zero: config is larger than 16 MiB");
}

TEST(ConfigErrorTest, ErrorsFromFilesNameTheFile) {
  TempDir dir("bad_file");
  const std::string file =
      dir.Write("tw.yaml", "collector:\n  listen: 0.0.0.0:9470\n  lisen: x\n");
  absl::StatusOr<Config> loaded = LoadConfig(file);
  ASSERT_FALSE(loaded.ok());
  // The list of keys grows; its start is enough here.
  EXPECT_TRUE(HasPrefix(loaded.status().message(),
                        file +
                            ":3: key 'collector.lisen': unknown key (expected "
                            "one of: listen, http_listen, store, "));
}

// Hostile or broken text yields an error, never an exception or a crash.
TEST(ConfigErrorTest, GarbageNeverThrows) {
  const std::vector<std::string> inputs = {
      std::string(100000, '['),
      std::string(100000, '{'),
      std::string("agent:\0 x\n", 10),
      std::string("\xff\xfe\x00\x01", 4),
      "\xc3\x28: \xa0\xa1\n",
      "&a [*a]",
      "agent: *missing\n",
      "agent: !!binary AAAA\n",
      "? \n",
      ": x\n",
      "'unterminated\n",
      "agent:\n  limits:\n    max_flows: 99999999999999999999999999999\n",
  };
  for (const std::string& input : inputs) {
    absl::StatusOr<Config> loaded(absl::UnknownError("not run"));
    EXPECT_NO_THROW(loaded = ParseConfig(input, kPath));
    EXPECT_FALSE(loaded.ok()) << input.substr(0, 40);
    EXPECT_TRUE(HasPrefix(loaded.status().message(), kPath));
  }
}

// ---------------------------------------------------------------------------
// ParseDuration.

TEST(ParseDurationTest, Accepts) {
  struct Case {
    std::string_view text;
    absl::Duration want;
  };
  const Case kCases[] = {
      {"0s", absl::ZeroDuration()},
      {"0d", absl::ZeroDuration()},
      {"30s", absl::Seconds(30)},
      {"5m", absl::Minutes(5)},
      {"1h", absl::Hours(1)},
      {"2d", absl::Hours(48)},
      {"1h30m", absl::Minutes(90)},
      {"1d2h3m4s", absl::Seconds(86400 + 7200 + 180 + 4)},
      {"90s", absl::Seconds(90)},
      {"007m", absl::Minutes(7)},
      {"36500d", absl::Hours(24 * 36500)},
  };
  for (const Case& c : kCases) {
    absl::StatusOr<absl::Duration> got = ParseDuration(c.text);
    ASSERT_TRUE(got.ok()) << c.text << ": " << got.status();
    EXPECT_EQ(*got, c.want) << c.text;
  }
}

TEST(ParseDurationTest, Rejects) {
  struct Case {
    std::string_view text;
    std::string_view message;
  };
  const Case kCases[] = {
      {"", "bad duration '': empty"},
      {"5", "bad duration '5': missing unit after 5 (use s, m, h or d)"},
      {"1h30", "bad duration '1h30': missing unit after 30 (use s, m, h or d)"},
      {"-1s", "bad duration '-1s': negative durations are not allowed"},
      {"1w", "bad duration '1w': unknown unit 'w' (use s, m, h or d)"},
      {"5M", "bad duration '5M': unknown unit 'M' (use s, m, h or d)"},
      {"1h-5m", "bad duration '1h-5m': expected a number at '-5m'"},
      {"+5m", "bad duration '+5m': expected a number at '+5m'"},
      {" 5m", "bad duration ' 5m': expected a number at ' 5m'"},
      {"5m ", "bad duration '5m ': expected a number at ' '"},
      {"5_000s", "bad duration '5_000s': unexpected '_'"},
      {"1h1h",
       "bad duration '1h1h': units must go from largest to smallest, each at "
       "most once"},
      {"0.5s",
       "bad duration '0.5s': fractions are not supported; write sums like "
       "1h30m"},
      {"36501d", "bad duration '36501d': too long (at most 36500d)"},
      {"36500d1s", "bad duration '36500d1s': too long (at most 36500d)"},
      {"99999999999999999999999s",
       "bad duration '99999999999999999999999s': too long (at most 36500d)"},
  };
  for (const Case& c : kCases) {
    absl::StatusOr<absl::Duration> got = ParseDuration(c.text);
    ASSERT_FALSE(got.ok()) << c.text;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(got.status().message(), std::string(c.message));
  }
}

}  // namespace
}  // namespace tokenwatch::config
