// Builders shared by the collector's tests: a use of a token as an agent
// reports it, a batch of uses, and an alert as the engine raises it and
// the store keeps it. Tests change the few fields they are about.
#ifndef TOKENWATCH_TESTS_COLLECTOR_TESTING_BUILDERS_H_
#define TOKENWATCH_TESTS_COLLECTOR_TESTING_BUILDERS_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "collector/model.h"
#include "common/alert_type.h"
#include "tokenwatch/v1/event.pb.h"
#include "tokenwatch/v1/ingest.pb.h"

namespace tokenwatch {
// Test failures name alert types and severities.
inline void PrintTo(AlertType t, std::ostream* os) { *os << AlertTypeName(t); }
inline void PrintTo(Severity s, std::ostream* os) { *os << SeverityName(s); }
}  // namespace tokenwatch

namespace tokenwatch::collector::test {

// 2025-11-30T10:15:03Z, the exp of the token Use() reports.
inline constexpr int64_t kExp = 1764497703;

// One use at `service`, observed at `ts_s` (Unix seconds), of a JWT
// (HS256, fp 00112233445566778899aabbccddeeff) whose payload is
//   {"iss":"https://idp.test","sub":"alice","aud":["orders-api"],
//    "exp":1764497703,"jti":"<jti>"}
inline v1::UsageEvent Use(const std::string& service, int64_t ts_s,
                          const std::string& client = "10.0.3.7",
                          uint32_t status = 200,
                          const std::string& jti = "j-1") {
  v1::UsageEvent e;
  e.set_ts_us(ts_s * 1000000);
  e.set_last_ts_us(ts_s * 1000000);
  e.set_count(1);
  e.set_agent("host-a");
  e.set_service(service);
  e.set_method("GET");
  e.set_path("/v1/x");
  e.set_client(client);
  e.set_server("10.0.0.5:8080");
  e.set_status(status);
  v1::TokenInfo* t = e.mutable_token();
  t->set_kind(v1::TOKEN_KIND_JWT);
  t->set_fp("00112233445566778899aabbccddeeff");
  t->set_iss("https://idp.test");
  t->set_sub("alice");
  t->set_jti(jti);
  t->set_exp(kExp);
  t->add_aud("orders-api");
  t->set_alg("HS256");
  return e;
}

// Batch `seq` of an agent's run.
inline v1::EventBatch Batch(uint64_t seq, std::vector<v1::UsageEvent> events) {
  v1::EventBatch b;
  b.set_seq(seq);
  for (auto& e : events) *b.add_events() = std::move(e);
  return b;
}

// A high-severity alert of `type` for `identity` at `service`, raised by
// an accepted GET from host-a; the token is known by its fingerprint
// "fp-<identity>" only.
inline Alert MakeAlert(const std::string& id, AlertType type,
                       const std::string& identity, const std::string& service,
                       int64_t ts_us) {
  Alert a;
  a.id = id;
  a.type = type;
  a.severity = Severity::kHigh;
  a.ts_us = ts_us;
  a.identity = identity;
  a.token.set_kind(v1::TOKEN_KIND_JWT);
  a.token.set_fp("fp-" + identity);
  a.service = service;
  a.method = "GET";
  a.path = "/v1/orders/42";
  a.client = "10.0.3.7";
  a.agent = "host-a";
  a.status = 200;
  a.accepted = true;
  a.detail = "d";
  a.last_ts_us = ts_us;
  return a;
}

}  // namespace tokenwatch::collector::test

#endif  // TOKENWATCH_TESTS_COLLECTOR_TESTING_BUILDERS_H_
