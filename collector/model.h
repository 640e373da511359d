// The collector's records: an alert (SPEC "Alert record"), a tracked
// token as stored and served by the API, and an agent's delivery progress.
#ifndef TOKENWATCH_COLLECTOR_MODEL_H_
#define TOKENWATCH_COLLECTOR_MODEL_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/alert_type.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::collector {

struct Alert {
  std::string id;  // time-ordered unique id (UUIDv7 text form)
  AlertType type = AlertType::kCrossService;
  Severity severity = Severity::kMedium;
  int64_t ts_us = 0;     // observation time of the use that raised it
  std::string identity;  // token identity: "iss|jti", or the fp
  v1::TokenInfo token;   // fp, jti, sub, iss, aud, exp, alg are reported
  std::string service, method, path, client, agent;
  uint32_t status = 0;           // 0: no response seen
  std::optional<bool> accepted;  // UseAccepted() of the raising use
  std::string protocol;          // "http/1.1" | "h2" | "grpc"; "" if unknown
  std::optional<uint32_t> grpc_status;  // gRPC: the trailers' grpc-status
  std::string detail;
  // Repeats of the same (type, identity, service) update these, not the
  // alert stream.
  uint64_t count = 1;
  int64_t last_ts_us = 0;
};

// Whether the service accepted a use: nullopt when no response was seen.
// HTTP: status < 400. gRPC: the HTTP status < 400 and grpc-status 0; a
// gRPC call whose trailers were not seen (reset, capture ended) has no
// verdict, since its outcome lives in the trailers (SPEC "Where traffic is
// seen").
inline std::optional<bool> UseAccepted(const v1::UsageEvent& e) {
  if (e.status() == 0) return std::nullopt;
  if (e.status() >= 400) return false;
  if (e.has_grpc_status()) return e.grpc_status() == 0;
  if (e.protocol() == "grpc") return std::nullopt;
  return true;
}

// Uses by HTTP status class: index 0 = no response, 1..5 = 1xx..5xx.
using StatusClassCounts = std::array<uint64_t, 6>;

// A tracked token as the store keeps it and the API shows it.
struct TokenRow {
  std::string identity;
  v1::TokenInfo token;  // claims and header as last seen (never raw)
  int64_t first_seen_us = 0;
  int64_t last_seen_us = 0;
  uint64_t uses = 0;
  std::vector<std::string> services;  // in order of first use
  std::vector<std::string> clients;   // bounded, most recent last
  std::map<std::string, StatusClassCounts> uses_by_service;
};

// How far one agent's stream has been durably stored. An agent numbers
// its batches from 1 in each run (`boot_id` tells runs apart).
struct AgentProgress {
  std::string agent_id;
  uint64_t boot_id = 0;
  uint64_t seq = 0;  // every batch <= seq is stored
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_MODEL_H_
