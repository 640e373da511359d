#include "common/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/config_reader.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/parser.h"
#include "yaml-cpp/yaml.h"

namespace tokenwatch::config {
namespace {

// A config bigger than this is a mistake (or /dev/zero); refuse it rather
// than read without bound.
constexpr size_t kMaxConfigBytes = 16 << 20;

// Durations above this are typos, and would overflow `exp + leeway` style
// arithmetic in int64 seconds downstream.
constexpr int64_t kMaxDurationSeconds = int64_t{36500} * 86400;  // 36500d

constexpr char kUnitHint[] = "use s, m, h or d";

// JWS algorithm names (RFC 7518 section 3.1, RFC 8037, RFC 8812). "none" is
// deliberately absent: unsigned tokens are always reported as alg_none.
constexpr absl::string_view kKnownAlgorithms[] = {
    "HS256", "HS384", "HS512",  "RS256", "RS384", "RS512", "ES256",
    "ES384", "ES512", "ES256K", "PS256", "PS384", "PS512", "EdDSA",
};

constexpr absl::string_view kSeverities[] = {"low", "medium", "high",
                                             "critical"};

// Walks the document once, in order, so the first error reported is the
// first one in the file.
class Loader : public YamlReader {
 public:
  Loader(std::string file, std::filesystem::path base_dir)
      : YamlReader(std::move(file), std::move(base_dir)) {}

  absl::Status Load(const YAML::Node& root, Config& config) {
    if (root.IsNull()) return absl::OkStatus();
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(
          file_, ":", LineOf(root, 1),
          ": the top level must be a map of settings, got ", Describe(root)));
    }
    return ReadMap(
        Value{root, "", LineOf(root, 1)},
        {
            {"fingerprint_key_file",
             [&](const Value& v) {
               return ReadPath(v, config.fingerprint_key_file);
             }},
            {"services",
             [&](const Value& v) { return ReadServices(v, config.services); }},
            {"issuers",
             [&](const Value& v) { return ReadIssuers(v, config.issuers); }},
            {"sensitive_endpoints",
             [&](const Value& v) {
               return ReadListOfMaps(v, [&](const Value& item) {
                 return ReadSensitiveEndpoint(
                     item, config.sensitive_endpoints.emplace_back());
               });
             }},
            {"detections",
             [&](const Value& v) {
               return ReadDetections(v, config.detections);
             }},
            {"agent",
             [&](const Value& v) { return ReadAgent(v, config.agent); }},
            {"collector",
             [&](const Value& v) {
               return ReadCollector(v, config.collector);
             }},
        });
  }

 private:
  absl::Status ReadServices(const Value& v, std::vector<Service>& out) {
    std::map<std::string, int, std::less<>> names;  // name -> line
    return ReadListOfMaps(v, [&](const Value& item) {
      Service& service = out.emplace_back();
      return ReadMap(
          item,
          {
              {"name",
               [&](const Value& name) -> absl::Status {
                 if (absl::Status s = ReadNonEmptyString(name, service.name);
                     !s.ok()) {
                   return s;
                 }
                 auto [it, inserted] = names.emplace(service.name, name.line);
                 if (!inserted) {
                   return Fail(
                       name, absl::StrCat("duplicate service name ",
                                          Quote(service.name),
                                          " (first at line ", it->second, ")"));
                 }
                 return absl::OkStatus();
               }},
              {"match",
               [&](const Value& match) {
                 return ReadServiceMatch(match, service.match);
               }},
              {"audiences",
               [&](const Value& audiences) {
                 return ReadStringList(audiences, service.audiences);
               }},
          },
          /*required=*/{"name"});
    });
  }

  absl::Status ReadServiceMatch(const Value& v, ServiceMatch& out) {
    return ReadMap(
        v,
        {
            {"hosts",
             [&](const Value& hosts) {
               return ReadList(hosts, [&](const Value& item) {
                 std::string& host = out.hosts.emplace_back();
                 if (absl::Status s = ReadNonEmptyString(item, host); !s.ok()) {
                   return s;
                 }
                 absl::AsciiStrToLower(&host);
                 return absl::OkStatus();
               });
             }},
            {"addresses",
             [&](const Value& addresses) {
               return ReadList(addresses, [&](const Value& item) {
                 std::string text;
                 if (absl::Status s = ReadNonEmptyString(item, text); !s.ok()) {
                   return s;
                 }
                 std::optional<std::string> address = NormalizeAddress(text);
                 if (!address.has_value()) {
                   return Fail(item, absl::StrCat("bad address ", Quote(text),
                                                  " (expected ip, ip:port or "
                                                  "[ipv6]:port)"));
                 }
                 out.addresses.push_back(*std::move(address));
                 return absl::OkStatus();
               });
             }},
        });
  }

  absl::Status ReadIssuers(const Value& v, std::vector<Issuer>& out) {
    std::map<std::string, int, std::less<>> seen;  // iss -> line
    return ReadListOfMaps(v, [&](const Value& item) {
      Issuer& issuer = out.emplace_back();
      return ReadMap(
          item,
          {
              {"iss",
               [&](const Value& iss) -> absl::Status {
                 if (absl::Status s = ReadNonEmptyString(iss, issuer.iss);
                     !s.ok()) {
                   return s;
                 }
                 auto [it, inserted] = seen.emplace(issuer.iss, iss.line);
                 if (!inserted) {
                   return Fail(
                       iss, absl::StrCat("duplicate issuer ", Quote(issuer.iss),
                                         " (first at line ", it->second, ")"));
                 }
                 return absl::OkStatus();
               }},
              {"algorithms",
               [&](const Value& algorithms) {
                 return ReadList(algorithms, [&](const Value& alg_value) {
                   std::string& alg = issuer.algorithms.emplace_back();
                   if (absl::Status s = ReadNonEmptyString(alg_value, alg);
                       !s.ok()) {
                     return s;
                   }
                   for (absl::string_view known : kKnownAlgorithms) {
                     if (alg == known) return absl::OkStatus();
                   }
                   return Fail(alg_value,
                               absl::StrCat(
                                   "unknown algorithm ", Quote(alg),
                                   " (expected one of: ",
                                   absl::StrJoin(kKnownAlgorithms, ", "), ")"));
                 });
               }},
              {"jwks_file",
               [&](const Value& f) { return ReadPath(f, issuer.jwks_file); }},
              {"pem_file",
               [&](const Value& f) { return ReadPath(f, issuer.pem_file); }},
              {"secret_file",
               [&](const Value& f) { return ReadPath(f, issuer.secret_file); }},
              {"max_lifetime",
               [&](const Value& d) {
                 return ReadDuration(d, issuer.max_lifetime.emplace(),
                                     /*allow_zero=*/false);
               }},
          },
          /*required=*/{"iss"});
    });
  }

  absl::Status ReadSensitiveEndpoint(const Value& v, SensitiveEndpoint& out) {
    return ReadMap(
        v,
        {
            {"service",
             [&](const Value& s) { return ReadString(s, out.service); }},
            {"method",
             [&](const Value& m) -> absl::Status {
               if (absl::Status s = ReadNonEmptyString(m, out.method);
                   !s.ok()) {
                 return s;
               }
               if (!IsToken(out.method)) {
                 return Fail(
                     m, absl::StrCat("bad HTTP method ", Quote(out.method)));
               }
               absl::AsciiStrToUpper(&out.method);
               return absl::OkStatus();
             }},
            {"path", [&](const Value& p) { return ReadEndpointPath(p, out); }},
            {"required_scopes",
             [&](const Value& s) {
               return ReadStringList(s, out.required_scopes);
             }},
            {"severity",
             [&](const Value& s) -> absl::Status {
               if (absl::Status st = ReadString(s, out.severity); !st.ok()) {
                 return st;
               }
               absl::AsciiStrToLower(&out.severity);
               for (absl::string_view known : kSeverities) {
                 if (out.severity == known) return absl::OkStatus();
               }
               return Fail(s, absl::StrCat("bad severity ", Quote(out.severity),
                                           " (expected low, medium, high or "
                                           "critical)"));
             }},
        },
        /*required=*/{"path"});
  }

  absl::Status ReadEndpointPath(const Value& v, SensitiveEndpoint& out) {
    if (absl::Status s = ReadString(v, out.path); !s.ok()) return s;
    if (out.path.empty() || out.path.front() != '/') {
      return Fail(
          v, absl::StrCat("path ", Quote(out.path), " must start with '/'"));
    }
    // Requests are matched on the path alone, so a query never matches.
    if (out.path.find_first_of("?#") != std::string::npos) {
      return Fail(v, absl::StrCat("path ", Quote(out.path),
                                  " must not contain '?' or '#' (paths are "
                                  "matched without the query string)"));
    }
    // A glob stands for whole segments; "/v1/*.json" would silently never
    // match what its author meant.
    absl::string_view rest = absl::string_view(out.path).substr(1);
    while (true) {
      const size_t slash = rest.find('/');
      const absl::string_view segment = rest.substr(0, slash);
      if (segment.find('*') != absl::string_view::npos && segment != "*" &&
          segment != "**") {
        return Fail(v, absl::StrCat("path ", Quote(out.path),
                                    ": '*' and '**' must be a whole segment"));
      }
      if (slash == absl::string_view::npos) break;
      rest = rest.substr(slash + 1);
    }
    return absl::OkStatus();
  }

  absl::Status ReadDetections(const Value& v, Detections& out) {
    return ReadMap(v, {
                          {"clock_leeway",
                           [&](const Value& d) {
                             return ReadDuration(d, out.clock_leeway,
                                                 /*allow_zero=*/true);
                           }},
                          {"default_max_lifetime",
                           [&](const Value& d) {
                             return ReadDuration(d, out.default_max_lifetime,
                                                 /*allow_zero=*/false);
                           }},
                          {"weak_secrets_file",
                           [&](const Value& f) {
                             return ReadPath(f, out.weak_secrets_file);
                           }},
                          {"revoked_jtis_file",
                           [&](const Value& f) {
                             return ReadPath(f, out.revoked_jtis_file);
                           }},
                          {"multi_source",
                           [&](const Value& m) {
                             return ReadMultiSource(m, out.multi_source);
                           }},
                      });
  }

  absl::Status ReadMultiSource(const Value& v, MultiSource& out) {
    return ReadMap(
        v, {
               {"window",
                [&](const Value& d) {
                  return ReadDuration(d, out.window, /*allow_zero=*/false);
                }},
               // One source is every token: "multi" starts at two.
               {"min_sources",
                [&](const Value& n) -> absl::Status {
                  uint64_t count = 0;
                  if (absl::Status s = ReadCount(
                          n, 2, std::numeric_limits<int>::max(), count);
                      !s.ok()) {
                    return s;
                  }
                  out.min_sources = static_cast<int>(count);
                  return absl::OkStatus();
                }},
           });
  }

  absl::Status ReadAgent(const Value& v, Agent& out) {
    return ReadMap(
        v,
        {
            {"interface",
             [&](const Value& s) { return ReadString(s, out.interface); }},
            {"filter",
             [&](const Value& s) { return ReadString(s, out.filter); }},
            {"collector",
             [&](const Value& s) { return ReadString(s, out.collector); }},
            {"agent_id",
             [&](const Value& s) { return ReadString(s, out.agent_id); }},
            {"events_out",
             [&](const Value& s) { return ReadOutput(s, out.events_out); }},
            {"metrics_listen",
             [&](const Value& s) { return ReadString(s, out.metrics_listen); }},
            {"user",
             [&](const Value& s) { return ReadNonEmptyString(s, out.user); }},
            {"token_headers",
             [&](const Value& list) {
               out.token_headers.clear();
               return ReadList(list, [&](const Value& item) -> absl::Status {
                 std::string& header = out.token_headers.emplace_back();
                 if (absl::Status s = ReadNonEmptyString(item, header);
                     !s.ok()) {
                   return s;
                 }
                 if (!IsToken(header)) {
                   return Fail(item,
                               absl::StrCat("bad header name ", Quote(header)));
                 }
                 absl::AsciiStrToLower(&header);
                 return absl::OkStatus();
               });
             }},
            {"fold_window",
             [&](const Value& d) {
               return ReadDuration(d, out.fold_window, /*allow_zero=*/true);
             }},
            {"limits",
             [&](const Value& l) { return ReadLimits(l, out.limits); }},
            {"batch_max_events",
             [&](const Value& n) {
               return ReadCount(n, 1, 1u << 20, out.batch_max_events);
             }},
            {"flush_interval",
             [&](const Value& d) {
               return ReadDuration(d, out.flush_interval, /*allow_zero=*/false);
             }},
            {"queue_max_events",
             [&](const Value& n) {
               return ReadCount(n, 1, std::numeric_limits<uint64_t>::max(),
                                out.queue_max_events);
             }},
            {"drain_timeout",
             [&](const Value& d) {
               return ReadDuration(d, out.drain_timeout, /*allow_zero=*/true);
             }},
            {"tls",
             [&](const Value& t) {
               return ReadAgentTls(t, out.tls.emplace());
             }},
            {"tls_probe",
             [&](const Value& t) { return ReadTlsProbe(t, out.tls_probe); }},
        });
  }

  absl::Status ReadTlsProbe(const Value& v, TlsProbe& out) {
    return ReadMap(
        v,
        {
            {"enabled",
             [&](const Value& b) -> absl::Status {
               std::string s;
               if (absl::Status st = ReadString(b, s); !st.ok()) return st;
               if (s != "true" && s != "false") {
                 return Fail(b, "expected true or false");
               }
               out.enabled = s == "true";
               return absl::OkStatus();
             }},
            {"targets",
             [&](const Value& t) -> absl::Status {
               if (t.node.IsScalar()) {
                 std::string s;
                 if (absl::Status st = ReadString(t, s); !st.ok()) return st;
                 if (s != "auto") {
                   return Fail(t, "expected auto or a list of paths");
                 }
                 out.auto_targets = true;
                 out.targets.clear();
                 return absl::OkStatus();
               }
               out.auto_targets = false;
               out.targets.clear();
               absl::Status st = ReadList(t, [&](const Value& item) {
                 return ReadPath(item, out.targets.emplace_back());
               });
               if (st.ok() && out.targets.empty()) {
                 return Fail(t, "an empty list probes nothing: use auto");
               }
               return st;
             }},
            {"exclude_comm",
             [&](const Value& l) {
               return ReadStringList(l, out.exclude_comm);
             }},
            {"record",
             [&](const Value& f) { return ReadPath(f, out.record); }},
        });
  }

  absl::Status ReadAgentTls(const Value& v, AgentTls& out) {
    if (absl::Status s =
            ReadMap(v,
                    {
                        {"ca_file",
                         [&](const Value& f) {
                           return ReadFileSetting(f, out.ca_file);
                         }},
                        {"cert_file",
                         [&](const Value& f) {
                           return ReadFileSetting(f, out.cert_file);
                         }},
                        {"key_file",
                         [&](const Value& f) {
                           return ReadFileSetting(f, out.key_file);
                         }},
                        {"server_name",
                         [&](const Value& s) {
                           return ReadNonEmptyString(s, out.server_name);
                         }},
                    });
        !s.ok()) {
      return s;
    }
    // A certificate without its key (or the reverse) cannot authenticate.
    if (out.cert_file.empty() != out.key_file.empty()) {
      const bool no_cert = out.cert_file.empty();
      return Fail(
          Value{v.node, ChildPath(v.path, no_cert ? "cert_file" : "key_file"),
                v.line},
          no_cert ? "required key is missing (key_file needs its cert_file)"
                  : "required key is missing (cert_file needs its key_file)");
    }
    return absl::OkStatus();
  }

  absl::Status ReadCollectorTls(const Value& v, CollectorTls& out) {
    return ReadMap(
        v,
        {
            {"cert_file",
             [&](const Value& f) { return ReadFileSetting(f, out.cert_file); }},
            {"key_file",
             [&](const Value& f) { return ReadFileSetting(f, out.key_file); }},
            {"client_ca_file",
             [&](const Value& f) {
               return ReadFileSetting(f, out.client_ca_file);
             }},
        },
        /*required=*/{"cert_file", "key_file"});
  }

  absl::Status ReadLimits(const Value& v, AgentLimits& out) {
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    auto count = [this](uint64_t& field) {
      return [this, field_ptr = &field](const Value& n) {
        return ReadCount(n, 1, kMax, *field_ptr);
      };
    };
    return ReadMap(
        v, {
               {"max_flows", count(out.max_flows)},
               {"flow_buffer_bytes", count(out.flow_buffer_bytes)},
               {"total_buffer_bytes", count(out.total_buffer_bytes)},
               {"max_header_bytes", count(out.max_header_bytes)},
               {"max_pending_requests", count(out.max_pending_requests)},
               {"token_cache_entries", count(out.token_cache_entries)},
               {"flow_idle_timeout",
                [&](const Value& d) {
                  return ReadDuration(d, out.flow_idle_timeout,
                                      /*allow_zero=*/false);
                }},
           });
  }

  absl::Status ReadCollector(const Value& v, Collector& out) {
    return ReadMap(
        v,
        {
            {"listen",
             [&](const Value& s) { return ReadString(s, out.listen); }},
            {"http_listen",
             [&](const Value& s) { return ReadString(s, out.http_listen); }},
            {"store", [&](const Value& s) { return ReadStore(s, out); }},
            {"alerts_out",
             [&](const Value& s) { return ReadOutput(s, out.alerts_out); }},
            {"token_retention",
             [&](const Value& d) {
               return ReadDuration(d, out.token_retention, /*allow_zero=*/true);
             }},
            {"alertmanager",
             [&](const Value& m) {
               AlertmanagerSink& am = out.alertmanager.emplace();
               return ReadMap(
                   m,
                   {
                       {"url",
                        [&](const Value& u) { return ReadHttpUrl(u, am.url); }},
                       {"resolve_after",
                        [&](const Value& d) {
                          return ReadDuration(d, am.resolve_after,
                                              /*allow_zero=*/false);
                        }},
                   },
                   /*required=*/{"url"});
             }},
            {"webhooks",
             [&](const Value& list) {
               out.webhooks.clear();
               return ReadList(list, [&](const Value& item) -> absl::Status {
                 WebhookSink& w = out.webhooks.emplace_back();
                 return ReadMap(item,
                                {
                                    {"url",
                                     [&](const Value& u) {
                                       return ReadHttpUrl(u, w.url);
                                     }},
                                    {"secret_file",
                                     [&](const Value& f) {
                                       return ReadPath(f, w.secret_file);
                                     }},
                                },
                                /*required=*/{"url"});
               });
             }},
            {"tls",
             [&](const Value& t) {
               return ReadCollectorTls(t, out.tls.emplace());
             }},
            {"http_token_file",
             [&](const Value& f) {
               return ReadFileSetting(f, out.http_token_file);
             }},
            // Ingest hardening.
            {"allow_plaintext",
             [&](const Value& b) { return ReadBool(b, out.allow_plaintext); }},
            {"max_clock_skew",
             [&](const Value& d) {
               return ReadDuration(d, out.max_clock_skew, /*allow_zero=*/true);
             }},
            {"limits",
             [&](const Value& m) {
               return ReadCollectorLimits(m, out.limits);
             }},
        });
  }

  absl::Status ReadCollectorLimits(const Value& v, CollectorLimits& out) {
    constexpr uint64_t kMax = uint64_t{1} << 40;
    auto count = [this](uint64_t& field, uint64_t min) {
      return [this, field_ptr = &field, min](const Value& n) {
        return ReadCount(n, min, kMax, *field_ptr);
      };
    };
    return ReadMap(
        v, {
               {"max_tokens", count(out.max_tokens, 16)},
               {"max_services_per_token", count(out.max_services_per_token, 1)},
               {"max_clients_per_token", count(out.max_clients_per_token, 1)},
               {"max_alerts_per_token", count(out.max_alerts_per_token, 1)},
               {"max_string_bytes", count(out.max_string_bytes, 64)},
               {"max_message_bytes", count(out.max_message_bytes, 64 << 10)},
               {"max_inflight_bytes", count(out.max_inflight_bytes, 1 << 20)},
               {"max_streams", count(out.max_streams, 1)},
               {"stream_idle_timeout",
                [&](const Value& d) {
                  return ReadDuration(d, out.stream_idle_timeout,
                                      /*allow_zero=*/false);
                }},
           });
  }

  absl::Status ReadHttpUrl(const Value& v, std::string& out) {
    if (absl::Status s = ReadNonEmptyString(v, out); !s.ok()) return s;
    if (!absl::StartsWith(out, "http://") &&
        !absl::StartsWith(out, "https://")) {
      return Fail(v, absl::StrCat("bad URL ", Quote(out),
                                  " (expected http:// or https://)"));
    }
    return absl::OkStatus();
  }

  absl::Status ReadStore(const Value& v, Collector& out) {
    std::string uri;
    if (absl::Status s = ReadString(v, uri); !s.ok()) return s;
    constexpr absl::string_view kSqlite = "sqlite:";
    if (uri == "memory:") {
      out.store = uri;
      return absl::OkStatus();
    }
    if (absl::StartsWith(uri, kSqlite) && uri.size() > kSqlite.size()) {
      out.store = absl::StrCat(kSqlite, Resolve(uri.substr(kSqlite.size())));
      return absl::OkStatus();
    }
    return Fail(v, absl::StrCat("bad store ", Quote(uri),
                                " (expected sqlite:PATH or memory:)"));
  }
};

std::filesystem::path BaseDir(const std::string& config_path) {
  std::error_code error;
  std::filesystem::path absolute =
      config_path.empty() ? std::filesystem::current_path(error)
                          : std::filesystem::absolute(config_path, error);
  if (error) absolute = config_path;
  if (config_path.empty()) return absolute.lexically_normal();
  return absolute.parent_path().lexically_normal();
}

// Sees a document's events only to learn where it starts.
class DocumentMarks : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { line = mark.line; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
  int line = 0;
};

// yaml-cpp 0.7 never consumes a ',' outside a flow collection (" ,",
// "[a],"): its parser returns empty documents forever and LoadAll never
// returns, growing without bound (found by tests/fuzz/config_fuzzer.cc).
// Every document after the first starts at a "---" or follows a "...", so
// more documents than those markers means the parser is stuck.
absl::Status CheckDocumentsEnd(const std::string& text,
                               const std::string& file) {
  size_t max_documents = 1;
  for (const char* marker : {"---", "..."}) {
    for (size_t at = text.find(marker); at != std::string::npos;
         at = text.find(marker, at + 1)) {
      ++max_documents;
    }
  }
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentMarks marks;
  for (size_t documents = 0; parser.HandleNextDocument(marks);) {
    if (++documents > max_documents) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ":", marks.line + 1,
                       ": YAML syntax error: unexpected ',' outside a flow "
                       "collection ([...] or {...})"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> ParseOrThrow(absl::string_view yaml,
                                    const std::string& path,
                                    const std::string& file) {
  std::vector<YAML::Node> documents;
  try {
    const std::string text(yaml);
    if (absl::Status s = CheckDocumentsEnd(text, file); !s.ok()) return s;
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ":", e.mark.is_null() ? 1 : e.mark.line + 1,
                     ": YAML syntax error: ", e.msg));
  }
  // A trailing "---" makes an empty second document; anything more is a
  // config the reader would think is used and is not.
  for (size_t i = 1; i < documents.size(); ++i) {
    if (!documents[i].IsNull()) {
      return absl::InvalidArgumentError(absl::StrCat(
          file, ":", LineOf(documents[i], 1),
          ": a config file holds one YAML document, found another"));
    }
  }
  Config config;
  config.path = path;
  if (!documents.empty()) {
    Loader loader(file, BaseDir(path));
    if (absl::Status s = loader.Load(documents[0], config); !s.ok()) return s;
  }
  return config;
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(std::string_view std_text) {
  const absl::string_view text(std_text.data(), std_text.size());
  auto bad = [text](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad duration ", Quote(text), ": ", why));
  };
  if (text.empty()) return bad("empty");
  if (text.front() == '-') return bad("negative durations are not allowed");
  int64_t total_seconds = 0;
  int previous_rank = 4;  // above "d", so any unit may come first
  size_t i = 0;
  while (i < text.size()) {
    const size_t digits_start = i;
    while (i < text.size() &&
           absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) {
      ++i;
    }
    const absl::string_view digits =
        text.substr(digits_start, i - digits_start);
    if (digits.empty()) {
      return bad(absl::StrCat("expected a number at ",
                              Quote(text.substr(digits_start))));
    }
    if (i < text.size() && text[i] == '.') {
      return bad("fractions are not supported; write sums like 1h30m");
    }
    const size_t unit_start = i;
    while (i < text.size() &&
           absl::ascii_isalpha(static_cast<unsigned char>(text[i]))) {
      ++i;
    }
    const absl::string_view unit = text.substr(unit_start, i - unit_start);
    if (unit.empty()) {
      if (i == text.size()) {
        return bad(
            absl::StrCat("missing unit after ", digits, " (", kUnitHint, ")"));
      }
      return bad(absl::StrCat("unexpected ", Quote(text.substr(i, 1))));
    }
    int rank;
    int64_t unit_seconds;
    if (unit == "d") {
      rank = 3, unit_seconds = 86400;
    } else if (unit == "h") {
      rank = 2, unit_seconds = 3600;
    } else if (unit == "m") {
      rank = 1, unit_seconds = 60;
    } else if (unit == "s") {
      rank = 0, unit_seconds = 1;
    } else {
      return bad(
          absl::StrCat("unknown unit ", Quote(unit), " (", kUnitHint, ")"));
    }
    if (rank >= previous_rank) {
      return bad("units must go from largest to smallest, each at most once");
    }
    previous_rank = rank;
    int64_t amount = 0;
    if (!absl::SimpleAtoi(digits, &amount) ||
        amount > (kMaxDurationSeconds - total_seconds) / unit_seconds) {
      return bad("too long (at most 36500d)");
    }
    total_seconds += amount * unit_seconds;
  }
  return absl::Seconds(total_seconds);
}

absl::StatusOr<Config> ParseConfig(std::string_view yaml,
                                   const std::string& path) {
  const std::string file = path.empty() ? "<config>" : path;
  // yaml-cpp throws; nothing may escape to the caller.
  try {
    return ParseOrThrow(absl::string_view(yaml.data(), yaml.size()), path,
                        file);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        file, ":", e.mark.is_null() ? 1 : e.mark.line + 1, ": ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": cannot load config: ", e.what()));
  } catch (...) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": cannot load config"));
  }
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot open config: ", std::strerror(errno)));
  }
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    if (text.size() + n > kMaxConfigBytes) {
      std::fclose(f);
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": config is larger than ", kMaxConfigBytes >> 20, " MiB"));
    }
    text.append(buf, n);
  }
  const bool failed = std::ferror(f) != 0;
  const int read_errno = errno;
  std::fclose(f);
  if (failed) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": cannot read config: ", std::strerror(read_errno)));
  }
  return ParseConfig(text, path);
}

}  // namespace tokenwatch::config
