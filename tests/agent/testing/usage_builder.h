// Usage records as the token layer hands them to output, for tests of the
// output layer, the collector stream and anything that consumes uses. Every
// field starts plausible; a test sets only what it is about:
//
//   UsageRecord u = UseBuilder().At(kT0 + 5).Status(401).Path("/q").Build();
//   UsageRecord v = Use(kT0, /*status=*/0);   // the common shorthand
#ifndef TOKENWATCH_TESTS_AGENT_TESTING_USAGE_BUILDER_H_
#define TOKENWATCH_TESTS_AGENT_TESTING_USAGE_BUILDER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/output/event_json.h"
#include "agent/output/usage_record.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::testing {

// 2025-11-30T10:15:00Z: packet time in the agent's tests.
inline constexpr int64_t kUseT0 = 1764497700000000;

class UseBuilder {
 public:
  // GET /v1/orders/42 from 10.0.3.7 to orders at 10.0.0.5:8080, seen by
  // host-a, status 200; a JWT (fp 9f2c) in the Authorization header that
  // expires 10 s after kUseT0.
  UseBuilder() {
    request_.agent = "host-a";
    request_.service = "orders";
    request_.method = "GET";
    request_.path = "/v1/orders/42";
    request_.client = "10.0.3.7";
    request_.server = "10.0.0.5:8080";
    request_.protocol = "http/1.1";
    request_.source = "pcap";
    token_.set_kind(v1::TOKEN_KIND_JWT);
    token_.set_fp("9f2c");
    token_.set_exp(kUseT0 / 1000000 + 10);
  }

  UseBuilder& At(int64_t ts_us) {
    ts_us_ = ts_us;
    return *this;
  }
  // A folded use: first and last time and how many.
  UseBuilder& Folded(int64_t last_ts_us, uint32_t count) {
    last_ts_us_ = last_ts_us;
    count_ = count;
    return *this;
  }
  // 0: no response seen.
  UseBuilder& Status(uint32_t status) {
    status_ = status;
    return *this;
  }
  UseBuilder& Path(std::string path) {
    request_.path = std::move(path);
    return *this;
  }
  UseBuilder& Service(std::string service) {
    request_.service = std::move(service);
    return *this;
  }
  UseBuilder& Client(std::string ip) {
    request_.client = std::move(ip);
    return *this;
  }
  UseBuilder& Agent(std::string agent) {
    request_.agent = std::move(agent);
    return *this;
  }
  // Shares one RequestInfo among many records, as one request's uses do
  // (Path, Service, Client and Agent are then ignored).
  UseBuilder& Request(std::shared_ptr<const output::RequestInfo> request) {
    shared_request_ = std::move(request);
    return *this;
  }
  UseBuilder& Aud(std::vector<std::string> aud) {
    token_.clear_aud();
    for (auto& a : aud) token_.add_aud(std::move(a));
    return *this;
  }
  UseBuilder& Alg(std::string alg) {
    token_.set_alg(std::move(alg));
    return *this;
  }
  // The decoded token, in place of the default JWT.
  UseBuilder& Token(v1::TokenInfo token) {
    token_ = std::move(token);
    return *this;
  }
  // Agent-side findings on the token (alg_none, no_expiry, ...).
  UseBuilder& Findings(std::vector<output::Finding> findings) {
    findings_ = std::move(findings);
    return *this;
  }
  // Where the token was: e.g. (TOKEN_LOCATION_QUERY, "access_token").
  UseBuilder& Location(v1::TokenLocation location, std::string param = "") {
    location_ = location;
    param_ = std::move(param);
    return *this;
  }

  output::UsageRecord Build() const {
    output::UsageRecord r;
    r.ts_us = ts_us_;
    r.last_ts_us = last_ts_us_ >= 0 ? last_ts_us_ : ts_us_;
    r.count = count_;
    r.status = status_;
    r.location = location_;
    r.param = param_;
    r.request = shared_request_ != nullptr
                    ? shared_request_
                    : std::make_shared<output::RequestInfo>(request_);
    r.token = output::MakeTokenRecord(token_, findings_);
    return r;
  }

 private:
  int64_t ts_us_ = kUseT0;
  int64_t last_ts_us_ = -1;  // -1: the same as ts_us_
  uint32_t count_ = 1;
  uint32_t status_ = 200;
  v1::TokenLocation location_ = v1::TOKEN_LOCATION_AUTHORIZATION;
  std::string param_;
  output::RequestInfo request_;
  std::shared_ptr<const output::RequestInfo> shared_request_;
  v1::TokenInfo token_;
  std::vector<output::Finding> findings_;
};

// The shorthand for the fields tests vary most.
inline output::UsageRecord Use(int64_t ts_us, uint32_t status = 200,
                               std::string path = "/v1/orders/42",
                               std::vector<std::string> aud = {},
                               std::string alg = "") {
  return UseBuilder()
      .At(ts_us)
      .Status(status)
      .Path(std::move(path))
      .Aud(std::move(aud))
      .Alg(std::move(alg))
      .Build();
}

}  // namespace tokenwatch::testing

#endif  // TOKENWATCH_TESTS_AGENT_TESTING_USAGE_BUILDER_H_
