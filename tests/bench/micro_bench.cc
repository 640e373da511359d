// Micro-benchmarks of the per-request work: HTTP head parsing, token
// extraction and decode, fingerprinting, and a token-cache hit.
#include <benchmark/benchmark.h>

#include "agent/http/parser.h"
#include "agent/jose/key_set.h"
#include "agent/jose/verifier.h"
#include "agent/jose/weak_secret.h"
#include "agent/pipeline.h"
#include "agent/token/extractor.h"
#include "agent/token/fingerprint.h"
#include "agent/token/jwt.h"
#include "agent/token/token_cache.h"
#include "tests/agent/jose/jose_test_util.h"
#include "tests/agent/testing/jwt_builder.h"
#include "tests/agent/testing/packet_builder.h"

namespace tokenwatch {
namespace {

// {"iss":"https://idp.bench","sub":"user-1234","aud":["orders-api"],
//  "exp":1764500403,"iat":1764496803,"jti":"b-1","scope":"orders:read
//  orders:write"}
const std::string kJwt = testing::MakeJwt(
    R"({"iss":"https://idp.bench","sub":"user-1234","aud":["orders-api"],"exp":1764500403,)"
    R"("iat":1764496803,"jti":"b-1","scope":"orders:read orders:write"})");

const std::string kRequest =
    "GET /v1/orders/12345?expand=items HTTP/1.1\r\n"
    "Host: orders.internal:8080\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0 Safari/537.36\r\n"
    "Accept: application/json\r\nAccept-Encoding: gzip, deflate, "
    "br\r\nAccept-Language: en-US,en;q=0.9\r\n"
    "X-Request-Id: 6f1c2a9e-8d3b-4c55-9e21-0a7b3c4d5e6f\r\nConnection: "
    "keep-alive\r\n"
    "Authorization: Bearer " +
    kJwt + "\r\n\r\n";

struct NullHandler : http::Handler {
  http::BodyRule OnMessageHead(http::HttpParser&,
                               const http::MessageHead& h) override {
    benchmark::DoNotOptimize(h.num_headers);
    return http::BodyRule::kFromHeaders;
  }
};

void BM_HttpParseRequest(benchmark::State& state) {
  AgentStats stats;
  NullHandler handler;
  http::MessageHead scratch;
  http::HttpParser parser(http::Role::kRequest, &handler, &stats, 64 * 1024,
                          &scratch);
  for (auto _ : state) {
    parser.Feed(reinterpret_cast<const uint8_t*>(kRequest.data()),
                kRequest.size());
  }
  state.SetBytesProcessed(state.iterations() * kRequest.size());
}
BENCHMARK(BM_HttpParseRequest);

void BM_ExtractToken(benchmark::State& state) {
  AgentStats stats;
  NullHandler handler;
  http::MessageHead head;
  http::HttpParser parser(http::Role::kRequest, &handler, &stats, 64 * 1024,
                          &head);
  parser.Feed(reinterpret_cast<const uint8_t*>(kRequest.data()),
              kRequest.size());
  token::Extractor extractor({}, &stats);
  token::Extraction out;
  for (auto _ : state) {
    extractor.Extract(http::ToRequest(head), &out);
    benchmark::DoNotOptimize(out.tokens.data());
  }
}
BENCHMARK(BM_ExtractToken);

void BM_JwtDecode(benchmark::State& state) {
  AgentStats stats;
  token::JwtDecoder decoder(&stats);
  for (auto _ : state) {
    v1::TokenInfo info;
    decoder.Decode(kJwt, &info);
    benchmark::DoNotOptimize(info);
  }
}
BENCHMARK(BM_JwtDecode);

void BM_Fingerprint(benchmark::State& state) {
  auto fp = *token::Fingerprinter::Create("bench-key-0123456789abcdef");
  std::string_view input = token::FingerprintInput(kJwt, v1::TOKEN_KIND_JWT);
  for (auto _ : state) benchmark::DoNotOptimize(fp->Fingerprint(input));
}
BENCHMARK(BM_Fingerprint);

void BM_TokenCacheMiss(benchmark::State& state) {
  auto fp = *token::Fingerprinter::Create("bench-key");
  AgentStats stats;
  token::TokenCache cache(fp.get(), 1 << 20, &stats);
  std::vector<std::string> tokens;
  for (int i = 0; i < 4096; ++i) {
    tokens.push_back(testing::MakeJwt(R"({"sub":"u)" + std::to_string(i) +
                                      R"(","exp":1764500403})"));
  }
  size_t i = 0;
  for (auto _ : state) {
    if (i == tokens.size()) {
      state.PauseTiming();
      cache = token::TokenCache(fp.get(), 1 << 20, &stats);
      i = 0;
      state.ResumeTiming();
    }
    benchmark::DoNotOptimize(cache.Lookup(tokens[i++]));
  }
}
BENCHMARK(BM_TokenCacheMiss);

void BM_TokenCacheHit(benchmark::State& state) {
  auto fp = *token::Fingerprinter::Create("bench-key");
  AgentStats stats;
  token::TokenCache cache(fp.get(), 65536, &stats);
  cache.Lookup(kJwt);
  for (auto _ : state) benchmark::DoNotOptimize(cache.Lookup(kJwt));
}
BENCHMARK(BM_TokenCacheHit);

// The whole path, per packet, on keep-alive exchanges (request segment,
// response segment, pure ACK) with 64 distinct tokens.
void BM_PipelinePerPacket(benchmark::State& state) {
  config::Config cfg;
  cfg.agent.fold_window = absl::Seconds(1);
  auto fp = *token::Fingerprinter::Create("bench-key");
  output::VectorSink sink;
  testing::FlowBuilder flow;
  flow.Handshake();
  std::vector<std::string> requests;
  for (int t = 0; t < 64; ++t) {
    std::string r = kRequest;
    r.replace(r.find(kJwt), kJwt.size(),
              testing::MakeJwt(R"({"sub":"user-)" + std::to_string(t) +
                               R"(","exp":1764500403})"));
    requests.push_back(r);
  }
  for (int i = 0; i < 20000; ++i) {
    flow.Client(requests[i % 64])
        .Server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        .ClientAck();
  }
  auto& frames = flow.frames();
  auto pipeline = std::make_unique<Pipeline>(cfg, "bench", fp.get(), &sink);
  size_t i = 0;
  for (auto _ : state) {
    if (i == frames.size()) {
      state.PauseTiming();
      pipeline = std::make_unique<Pipeline>(cfg, "bench", fp.get(), &sink);
      sink.events.clear();
      i = 0;
      state.ResumeTiming();
    }
    auto& f = frames[i++];
    capture::RawPacket p{f.ts_us, f.bytes.data(),
                         static_cast<uint32_t>(f.bytes.size()),
                         static_cast<uint32_t>(f.bytes.size()), 1};
    pipeline->OnPacket(p);
  }
  state.counters["packets/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PipelinePerPacket);

// Signature verification per algorithm (keys generated at start-up).
void BM_Verify(benchmark::State& state, const char* alg, const char* kind) {
  jose::PkeyRef key;
  std::string secret;
  jose::KeySet keys;
  std::string jwks;
  if (std::string_view(kind) == "HMAC") {
    secret = "bench-hmac-secret-0123456789abcdef";
    keys.AddHmacSecret(secret);
  } else {
    key = jose::testing::GenerateKey(kind);
    auto ks = jose::KeySet::FromJwks(
        "{\"keys\":[" + jose::testing::PublicJwk(key.get(), "k1", alg) + "]}");
    keys = *std::move(ks);
  }
  std::string token = jose::testing::SignJwt(
      alg, secret.empty() ? "k1" : "",
      R"({"iss":"https://idp.bench","sub":"u","exp":1764500403})", key.get(),
      secret);
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        jose::Verify(token, alg, secret.empty() ? "k1" : "", keys));
  }
  state.counters["verifications/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_Verify, RS256, "RS256", "RSA");
BENCHMARK_CAPTURE(BM_Verify, PS256, "PS256", "RSA");
BENCHMARK_CAPTURE(BM_Verify, ES256, "ES256", "P-256");
BENCHMARK_CAPTURE(BM_Verify, ES384, "ES384", "P-384");
BENCHMARK_CAPTURE(BM_Verify, ES512, "ES512", "P-521");
BENCHMARK_CAPTURE(BM_Verify, EdDSA, "EdDSA", "Ed25519");
BENCHMARK_CAPTURE(BM_Verify, HS256, "HS256", "HMAC");

// The weak-secret search of one HS256 token whose secret is not on the
// shipped list: every entry is tried (the worst case, per distinct token).
void BM_WeakSecretSearch(benchmark::State& state) {
  auto list = jose::WeakSecretList::FromFile(
      std::string(TOKENWATCH_SHARED_DATA) +
      "/wordlists/wallarm-jwt-secrets/jwt.secrets.list");
  if (!list.ok()) {
    state.SkipWithError("weak-secrets list not found");
    return;
  }
  std::string token = jose::testing::SignJwt(
      "HS256", "", R"({"iss":"https://idp.bench","sub":"u","exp":1764500403})",
      nullptr, "a-strong-secret-that-is-not-listed");
  for (auto _ : state)
    benchmark::DoNotOptimize(list->FindSecretForToken(token, "HS256"));
  state.counters["trials/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * list->size()),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_WeakSecretSearch)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tokenwatch

BENCHMARK_MAIN();
