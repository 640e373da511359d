// The YAML configuration shared by agents and the collector (SPEC.md,
// "Config"). Loading validates the whole schema: unknown keys, wrong types
// and bad durations are errors that name the file, the line and the key.
#ifndef TOKENWATCH_COMMON_CONFIG_H_
#define TOKENWATCH_COMMON_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tokenwatch::config {

struct ServiceMatch {
  std::vector<std::string> hosts;      // Host header values, lower-cased
  std::vector<std::string> addresses;  // "ip:port", "[v6]:port" or "ip"
};

struct Service {
  std::string name;
  ServiceMatch match;
  std::vector<std::string> audiences;
};

struct Issuer {
  std::string iss;
  std::vector<std::string> algorithms;
  std::string jwks_file;    // absolute after loading; empty when unset
  std::string pem_file;     // PEM public key; absolute; empty when unset
  std::string secret_file;  // HMAC secret for HS*; absolute; empty if unset
  std::optional<absl::Duration> max_lifetime;
};

struct SensitiveEndpoint {
  std::string service;  // empty: any service
  std::string method;   // empty: any method; upper-cased
  std::string path;     // glob: * one segment, ** zero or more segments
  std::vector<std::string> required_scopes;
  std::string severity = "medium";  // low | medium | high | critical
};

struct MultiSource {
  absl::Duration window = absl::Minutes(5);
  int min_sources = 3;
};

struct Detections {
  absl::Duration clock_leeway = absl::Seconds(30);
  absl::Duration default_max_lifetime = absl::Hours(24);
  std::string weak_secrets_file;  // absolute; empty when unset
  std::string revoked_jtis_file;  // absolute; empty when unset
  MultiSource multi_source;
};

// Bounds of the agent's data path. Every bound, when hit, is counted.
struct AgentLimits {
  uint64_t max_flows = 262144;                // tracked TCP connections
  uint64_t flow_buffer_bytes = 256 * 1024;    // out-of-order bytes per flow
  uint64_t total_buffer_bytes = 64ull << 20;  // out-of-order bytes, all flows
  uint64_t max_header_bytes = 64 * 1024;      // one HTTP header block
  uint64_t max_pending_requests = 64;         // pipelined, awaiting response
  uint64_t token_cache_entries = 65536;       // decoded-token cache
  absl::Duration flow_idle_timeout = absl::Seconds(120);
};

// A file named in the config, with where it was named: start-up errors
// about its contents name the config file, the line and the key.
struct FileSetting {
  std::string path;   // absolute; empty when unset
  std::string where;  // "FILE:LINE: key 'agent.tls.ca_file'"
  bool empty() const { return path.empty(); }
};

// TLS towards the collector (gRPC). Present: the agent speaks TLS only.
struct AgentTls {
  FileSetting ca_file;      // PEM roots for the collector; unset: gRPC's roots
  FileSetting cert_file;    // PEM client chain (mTLS); set with key_file
  FileSetting key_file;     // PEM private key of cert_file
  std::string server_name;  // name checked in the collector's certificate
};

// The TLS probe (agent/tls, issue 14; SPEC "Where traffic is seen").
struct TlsProbe {
  bool enabled = false;                    // --tls-probe
  bool auto_targets = true;                // targets: auto
  std::vector<std::string> targets;        // or these libraries/executables
  std::vector<std::string> exclude_comm;   // process names never reported
  // Beyond SPEC: every probe record also goes to this file (mode 0600; it
  // holds plaintext, like a pcap file), replayable with -r FILE.
  std::string record;
};

struct Agent {
  std::string interface;
  std::string filter;
  std::string collector;
  std::string agent_id;
  std::string events_out;
  std::string metrics_listen;
  // Once the capture is open, run as this user with no capabilities
  // (--user; agent/privilege/drop_privileges.h). Empty: keep the identity.
  std::string user;
  std::vector<std::string> token_headers;         // lower-cased header names
  absl::Duration fold_window = absl::Seconds(1);  // 0s disables folding
  AgentLimits limits;
  // Delivery to the collector.
  uint64_t batch_max_events = 1024;                        // events per batch
  absl::Duration flush_interval = absl::Milliseconds(10);  // oldest event waits
  uint64_t queue_max_events = 1u << 20;  // unacknowledged; overflow is counted
  absl::Duration drain_timeout = absl::Seconds(30);  // -r: wait for acks
  std::optional<AgentTls> tls;
  TlsProbe tls_probe;
};

// Where the collector delivers alerts besides --alerts-out.
struct AlertmanagerSink {
  std::string url;  // base URL, e.g. http://127.0.0.1:9093
  absl::Duration resolve_after = absl::Hours(1);  // endsAt = startsAt + this
};
struct WebhookSink {
  std::string url;
  std::string
      secret_file;  // HMAC-SHA256 key for the signature header; absolute
};

// TLS for gRPC ingest. With client_ca_file, agents must present a
// certificate signed by it (mTLS); without, any client may connect.
struct CollectorTls {
  FileSetting cert_file;  // PEM server chain
  FileSetting key_file;   // PEM private key of cert_file
  FileSetting client_ca_file;
};

// Bounds on what clients can make the collector hold (docs/config.md,
// "collector.limits"); past one, something is refused or evicted, and counted.
struct CollectorLimits {
  uint64_t max_tokens = 1'000'000;  // tracked; least recently used evicted
  uint64_t max_services_per_token = 64;
  uint64_t max_clients_per_token = 16;
  uint64_t max_alerts_per_token = 32;
  uint64_t max_string_bytes = 1024;         // any string field of an event
  uint64_t max_message_bytes = 4u << 20;    // one gRPC frame (a batch)
  uint64_t max_inflight_bytes = 16u << 20;  // all streams' unacked batches
  uint64_t max_streams = 1024;
  absl::Duration stream_idle_timeout = absl::Minutes(10);
};
struct Collector {
  std::string listen = "127.0.0.1:9470";
  std::string http_listen = "127.0.0.1:9471";
  std::string store = "sqlite:tokenwatch.db";
  std::string alerts_out;
  // Tokens are forgotten this long after exp (after last use without exp).
  absl::Duration token_retention = absl::Hours(24);
  std::optional<AlertmanagerSink> alertmanager;
  std::vector<WebhookSink> webhooks;
  std::optional<CollectorTls> tls;
  // Bearer token required by the API's write endpoints; unset: they are off.
  FileSetting http_token_file;
  // Ingest hardening (docs/security.md, "Hostile clients: ingest").
  bool allow_plaintext = false;  // plaintext gRPC off loopback
  absl::Duration max_clock_skew = absl::Minutes(5);
  CollectorLimits limits;
};

struct Config {
  std::string path;                  // the file this was loaded from
  std::string fingerprint_key_file;  // absolute; empty when unset
  std::vector<Service> services;
  std::vector<Issuer> issuers;
  std::vector<SensitiveEndpoint> sensitive_endpoints;
  Detections detections;
  Agent agent;
  Collector collector;
};

// Parses "30s", "5m", "1h", "2d", and sums like "1h30m". Rejects negative
// values, missing units and unknown units.
absl::StatusOr<absl::Duration> ParseDuration(std::string_view text);

// Loads and validates a config file. Relative paths are resolved against the
// folder holding the file. Errors are InvalidArgument with a message of the
// form "FILE:LINE: key 'services[0].match.hosts': expected a list".
absl::StatusOr<Config> LoadConfig(const std::string& path);

// Same, from text already in memory; `path` is used for messages and for
// resolving relative paths.
absl::StatusOr<Config> ParseConfig(std::string_view yaml,
                                   const std::string& path);

}  // namespace tokenwatch::config

#endif  // TOKENWATCH_COMMON_CONFIG_H_
