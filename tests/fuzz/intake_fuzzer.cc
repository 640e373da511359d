// libFuzzer target: the collector's event intake. The input is
//   [agent/boot selector: 1][EventBatch, protobuf wire format]
// parsed as the ingest service does, applied to an Engine over a memory:
// store, committed (journaled), applied again (a resend), and restored by a
// second engine from the same store, which must hold every token exactly
// as the first did. A batch an agent can send must never make
// a commit fail: the ingest service would retry it forever.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "collector/engine.h"
#include "collector/store/store.h"
#include "common/config.h"
#include "tests/fuzz/fuzz_support.h"
#include "tokenwatch/v1/ingest.pb.h"

namespace tokenwatch::fuzz {
namespace {

// Every detector on: services with audiences, an issuer policy, a
// sensitive endpoint, multi-source.
constexpr char kConfig[] = R"(
services:
  - name: orders
    match: { hosts: ["orders.demo"] }
    audiences: ["orders-api"]
  - name: payments
    match: { hosts: ["payments.demo"] }
    audiences: ["payments-api"]
issuers:
  - iss: "https://idp.demo"
    algorithms: [HS256]
    max_lifetime: 1h
sensitive_endpoints:
  - service: payments
    method: POST
    path: "/v1/refunds/**"
    required_scopes: ["payments:refund"]
    severity: high
detections:
  clock_leeway: 30s
  multi_source: { window: 5m, min_sources: 2 }
)";

const config::Config& Config() {
  static const config::Config* cfg = [] {
    absl::StatusOr<config::Config> c = config::ParseConfig(kConfig, "");
    if (!c.ok()) {
      fprintf(stderr, "intake_fuzzer: bad built-in config: %s\n",
              std::string(c.status().message()).c_str());
      abort();
    }
    return new config::Config(*std::move(c));
  }();
  return *cfg;
}

// Every token row of an engine, as text.
std::map<std::string, std::string> Rows(const collector::Engine& engine) {
  std::map<std::string, std::string> out;
  engine.tokens().ForEach(
      [&](collector::TokenTable::Ref, const collector::TokenState& s) {
        std::string id = engine.tokens().Identity(s);
        collector::TokenRow r = *engine.GetToken(id);
        std::string text = r.token.SerializeAsString();
        absl::StrAppend(&text, "|", r.first_seen_us, "|", r.last_seen_us, "|",
                        r.uses);
        for (const auto& v : r.services) absl::StrAppend(&text, "|s:", v);
        for (const auto& v : r.clients) absl::StrAppend(&text, "|c:", v);
        for (const auto& [svc, n] : r.uses_by_service) {
          absl::StrAppend(&text, "|u:", svc);
          for (uint64_t k : n) absl::StrAppend(&text, ",", k);
        }
        out[id] = text;
      });
  return out;
}

}  // namespace
}  // namespace tokenwatch::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenwatch;
  using namespace tokenwatch::fuzz;
  if (size == 0) return 0;
  const config::Config& cfg = Config();
  v1::EventBatch batch;
  if (!batch.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  const std::string agent = (data[0] & 1) ? "host-b" : "host-a";
  const uint64_t boot = data[0] >> 1;
  absl::StatusOr<std::unique_ptr<collector::Store>> store =
      collector::OpenStore("memory:");
  FUZZ_CHECK(store.ok());
  size_t alerts = 0;
  // Journaled (not checkpointed) unless a token was retired, as the
  // ingest service does: the restarted engine must then rebuild every
  // token from the journal exactly as the live engine has it.
  bool journaled = false;
  std::map<std::string, std::string> live;
  {
    collector::Engine engine(cfg, store->get(),
                             [&](const collector::Alert&) { ++alerts; });
    FUZZ_CHECK(engine.Restore().ok());
    bool applied = engine.Apply(agent, boot, batch);
    journaled = !engine.HasRetired();
    FUZZ_CHECK(engine.Commit(/*checkpoint=*/!journaled).ok());
    if (applied) {
      FUZZ_CHECK(engine.StoredThrough(agent, boot) >= batch.seq());
    }
    // The agent resends after a reconnect: counted once.
    uint64_t events = engine.stats().events;
    FUZZ_CHECK(!engine.Apply(agent, boot, batch));
    FUZZ_CHECK(engine.stats().events == events);
    FUZZ_CHECK(engine.Commit(/*checkpoint=*/!journaled).ok());
    if (journaled) live = Rows(engine);
  }
  // A restarted collector loads what was stored.
  collector::Engine again(cfg, store->get(), nullptr);
  FUZZ_CHECK(again.Restore().ok());
  if (journaled) FUZZ_CHECK(Rows(again) == live);
  return 0;
}
