// A token use inside the agent: what the usage event will say, held by
// reference so the per-request path copies no claims. It becomes JSON (or,
// for the collector stream, a v1::UsageEvent) only when emitted.
#ifndef TOKENWATCH_AGENT_OUTPUT_USAGE_RECORD_H_
#define TOKENWATCH_AGENT_OUTPUT_USAGE_RECORD_H_

#include <cstdint>
#include <memory>
#include <string>

#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::output {

// What all token uses of one request share.
struct RequestInfo {
  std::string agent;
  std::string service;
  std::string method;
  std::string path;    // without the query string
  std::string client;  // ip
  std::string server;  // ip:port
};

// A decoded token with its JSON rendering done once: every event of the
// token reuses it.
struct TokenRecord {
  v1::TokenInfo info;
  std::string json;  // the event's "token" object
};
using TokenRef = std::shared_ptr<const TokenRecord>;

struct UsageRecord {
  int64_t ts_us = 0;
  int64_t last_ts_us = 0;
  uint32_t count = 1;
  uint32_t status = 0;  // 0: no response seen
  v1::TokenLocation location = v1::TOKEN_LOCATION_UNSPECIFIED;
  std::string param;
  std::shared_ptr<const RequestInfo> request;
  TokenRef token;
};

// The wire form (also what --events-out writes, field for field).
v1::UsageEvent ToProto(const UsageRecord& r);

}  // namespace tokenwatch::output

#endif  // TOKENWATCH_AGENT_OUTPUT_USAGE_RECORD_H_
