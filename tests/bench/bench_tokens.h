// The token mix both collector benchmarks use (ingest_bench over gRPC,
// engine_bench on the engine alone), so their figures compare: token t is a
// JWT for one of four services, one of 5,000 subjects, valid for an hour
// from kBenchNow.
#ifndef TOKENWATCH_TESTS_BENCH_BENCH_TOKENS_H_
#define TOKENWATCH_TESTS_BENCH_BENCH_TOKENS_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::bench {

inline constexpr const char* kServices[] = {"orders", "payments", "inventory",
                                            "users"};
inline constexpr int64_t kBenchNow = 1764460800;  // 2025-11-30T00:00:00Z

inline v1::TokenInfo BenchToken(int t) {
  v1::TokenInfo info;
  info.set_kind(v1::TOKEN_KIND_JWT);
  char fp[33];
  snprintf(fp, sizeof fp, "%032x", t * 2654435761u);
  info.set_fp(fp);
  info.set_iss("https://idp.bench");
  info.set_sub("user-" + std::to_string(t % 5000));
  info.set_jti("jti-" + std::to_string(t));
  info.add_aud(std::string(kServices[t % 4]) + "-api");
  info.set_exp(kBenchNow + 3600);
  info.set_iat(kBenchNow);
  info.set_alg("RS256");
  info.add_scopes("read");
  return info;
}

}  // namespace tokenwatch::bench

#endif  // TOKENWATCH_TESTS_BENCH_BENCH_TOKENS_H_
