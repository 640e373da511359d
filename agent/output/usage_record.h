// A token use inside the agent: what the usage event will say, held by
// reference so the per-request path copies no claims. It becomes JSON (or,
// for the collector stream, a v1::UsageEvent) only when emitted.
#ifndef TOKENWATCH_AGENT_OUTPUT_USAGE_RECORD_H_
#define TOKENWATCH_AGENT_OUTPUT_USAGE_RECORD_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/alert_type.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::output {

// What all token uses of one request share.
struct RequestInfo {
  std::string agent;
  std::string service;
  std::string method;
  std::string path;      // without the query string
  std::string client;    // ip
  std::string server;    // ip:port
  std::string protocol;  // "http/1.1" | "h2" | "grpc"
  std::string source;    // "pcap" | "tls_probe"
  // The probed process (TLS probe): pid 0 when unknown.
  uint32_t pid = 0;
  std::string comm, exe;
};

// An agent-side finding about a token: the alert type and why.
struct Finding {
  AlertType type;
  std::string detail;
};

// A decoded token with its JSON rendering done once: every event of the
// token reuses it, and the checks that need the raw token, done once.
struct TokenRecord {
  v1::TokenInfo info;
  std::string json;        // the event's "token" object
  std::string info_bytes;  // `info` serialized: its wire form in every event
  std::vector<Finding> findings;
  // The weak-secret search runs on a worker, which posts its verdict back;
  // the pipeline's thread, which owns every record, writes it here. Events
  // of this token wait (off the packet path) while it is pending.
  enum WeakState : uint8_t {
    kWeakNotApplicable = 0,
    kWeakPending = 1,
    kWeakClear = 2,
    kWeakFound = 3
  };
  WeakState weak_state = kWeakNotApplicable;
  std::string weak_detail;  // when kWeakFound
  bool weak_pending() const { return weak_state == kWeakPending; }
};
// Events read a record through this; only the pipeline's thread, through
// the owning TokenCache's MutableTokenRef, changes one.
using TokenRef = std::shared_ptr<const TokenRecord>;
using MutableTokenRef = std::shared_ptr<TokenRecord>;

struct UsageRecord {
  int64_t ts_us = 0;
  int64_t last_ts_us = 0;
  uint32_t count = 1;
  uint32_t status = 0;                  // 0: no response seen
  std::optional<uint32_t> grpc_status;  // gRPC trailers' grpc-status
  v1::TokenLocation location = v1::TOKEN_LOCATION_UNSPECIFIED;
  std::string param;
  std::shared_ptr<const RequestInfo> request;
  TokenRef token;
};

// The wire form (also what --events-out writes, field for field).
v1::UsageEvent ToProto(const UsageRecord& r);
// The same, filled in place (a batch's next event: no copy).
void ToProto(const UsageRecord& r, v1::UsageEvent* out);
// Appends the event as an `EventBatch.events` entry (field 2, length
// delimited) in protobuf wire form, byte for byte what serializing
// ToProto(r) would give, without building the message: the token's claims
// are copied from `info_bytes`, serialized once per distinct token.
void AppendBatchEvent(const UsageRecord& r, std::string* out);

// Every finding of a use, in a stable order: the token's (and a weak
// secret once found), then token_in_url for a token carried in the URL
// (query, path, matrix parameter or Host).
template <typename Fn>
void ForEachFinding(const UsageRecord& r, Fn fn) {
  for (const Finding& f : r.token->findings) fn(f.type, f.detail);
  if (r.token->weak_state == TokenRecord::kWeakFound) {
    fn(AlertType::kWeakSecret, r.token->weak_detail);
  }
  switch (r.location) {
    case v1::TOKEN_LOCATION_QUERY:
      fn(AlertType::kTokenInUrl, "token in query parameter " + r.param);
      break;
    case v1::TOKEN_LOCATION_PATH:
      fn(AlertType::kTokenInUrl, r.param.empty()
                                     ? std::string("token in the URL path")
                                     : "token in matrix parameter " + r.param);
      break;
    case v1::TOKEN_LOCATION_HOST:
      fn(AlertType::kTokenInUrl, std::string("token in the Host header"));
      break;
    default:
      break;
  }
}

}  // namespace tokenwatch::output

#endif  // TOKENWATCH_AGENT_OUTPUT_USAGE_RECORD_H_
