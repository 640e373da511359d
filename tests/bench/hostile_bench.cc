// Throughput of the agent's pipeline under hostile traffic, against normal
// API traffic measured in the same run. Each case keeps one Pipeline with
// the caps of tests/agent/hostile_test.cc and feeds it the attack in its
// steady state (table full, caps hit); the table at the end gives each
// case's packets/s and bytes/s as a fraction of normal traffic's.
//
//   build/tests/bench/hostile_bench [--benchmark_min_time=1]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/jose/base64url.h"
#include "agent/pipeline.h"
#include "tests/agent/testing/hostile_traffic.h"
#include "tests/agent/testing/jwt_builder.h"

namespace tokenwatch {
namespace {

using testing::Conn;
using testing::Feeder;
using testing::Ip4;

class NullSink : public output::EventSink {
 public:
  void Emit(const output::UsageRecord&) override { ++events; }
  uint64_t events = 0;
};

config::Config BenchConfig() {
  config::Config cfg;
  cfg.agent.fold_window = absl::ZeroDuration();
  cfg.services.push_back({"orders", {{"orders.internal"}, {}}, {}});
  auto& l = cfg.agent.limits;
  l.max_flows = 4096;
  l.flow_buffer_bytes = 64 * 1024;
  l.total_buffer_bytes = 1 << 20;
  l.max_header_bytes = 16 * 1024;
  l.token_cache_entries = 1024;
  return cfg;
}

// One pipeline and its feeder, as each benchmark run uses them.
struct Bench {
  config::Config cfg = BenchConfig();
  std::unique_ptr<token::Fingerprinter> fp =
      *token::Fingerprinter::Create("bench-key");
  NullSink sink;
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<Feeder> feed;
  Bench() {
    pipeline = std::make_unique<Pipeline>(cfg, "bench", fp.get(), &sink);
    feed = std::make_unique<Feeder>(pipeline.get());
  }
  void Report(benchmark::State& state) {
    state.counters["packets/s"] = benchmark::Counter(
        static_cast<double>(feed->packets()), benchmark::Counter::kIsRate);
    state.counters["bytes/s"] = benchmark::Counter(
        static_cast<double>(feed->bytes()), benchmark::Counter::kIsRate);
  }
};

const std::vector<std::string>& Tokens() {
  static const auto* tokens = [] {
    auto* v = new std::vector<std::string>;
    for (int i = 0; i < 64; ++i) {
      // {"iss":"https://idp.bench","sub":"user-I","aud":["orders-api"],
      //  "exp":1764500403,"jti":"b-I"}
      v->push_back(testing::MakeJwt(
          R"({"iss":"https://idp.bench","sub":"user-)" + std::to_string(i) +
          R"(","aud":["orders-api"],"exp":1764500403,"jti":"b-)" +
          std::to_string(i) + R"("})"));
    }
    return v;
  }();
  return *tokens;
}

std::string Request(uint64_t n, const std::string& token) {
  return "GET /v1/orders/" + std::to_string(n) +
         " HTTP/1.1\r\nHost: orders.internal\r\nUser-Agent: bench/1.0\r\n"
         "Accept: application/json\r\nAuthorization: Bearer " +
         token + "\r\n\r\n";
}

// Normal: whole keep-alive-free exchanges (handshake, request with one of
// 64 tokens, 200, FIN both ways).
void BM_Normal(benchmark::State& state) {
  Bench b;
  uint64_t n = 0;
  for (auto _ : state) {
    b.feed->Exchange(testing::LegitConn(n % 50000),
                     Request(n, Tokens()[n % 64]));
    ++n;
  }
  b.Report(state);
}
BENCHMARK(BM_Normal);

// SYNs from new tuples: the table is full, each one evicts a flow.
void BM_SynFlood(benchmark::State& state) {
  Bench b;
  uint32_t i = 0;
  for (auto _ : state) {
    b.feed->Send(Ip4(11, 0, 0, 0) + i, static_cast<uint16_t>(1024 + i % 60000),
                 Ip4(10, 0, 0, 5), 8080, i * 2654435761u, 0, decode::kTcpSyn,
                 "");
    ++i;
  }
  b.Report(state);
}
BENCHMARK(BM_SynFlood);

// SYNs whose tuples keep src+dst and sport+dport constant.
void BM_HashCollisionTuples(benchmark::State& state) {
  Bench b;
  uint32_t i = 0;
  for (auto _ : state) {
    uint32_t k = (i >> 16) & 0xff;
    uint16_t j = static_cast<uint16_t>(i);
    b.feed->Send(Ip4(10, 1, 0, 0) + k, j, Ip4(10, 200, 0, 0) - k,
                 static_cast<uint16_t>(0xffff - j), 1, 0, decode::kTcpSyn, "");
    ++i;
  }
  b.Report(state);
}
BENCHMARK(BM_HashCollisionTuples);

// 1-byte segments, every other byte missing, on four flows at their cap.
void BM_TinyOutOfOrderSegments(benchmark::State& state) {
  Bench b;
  Conn conns[4];
  for (int f = 0; f < 4; ++f) {
    conns[f].client_ip = Ip4(12, 0, 0, f + 1);
    b.feed->Handshake(conns[f]);
  }
  uint64_t k = 0;
  for (auto _ : state) {
    Conn& c = conns[k % 4];
    b.feed->Send(c.client_ip, c.client_port, c.server_ip, c.server_port,
                 c.client_seq + static_cast<uint32_t>(2 * (k / 4) + 1),
                 c.server_seq, decode::kTcpAck, "x");
    ++k;
  }
  b.Report(state);
}
BENCHMARK(BM_TinyOutOfOrderSegments);

// Full-size segments of a header line that never ends.
void BM_EndlessHeaderLine(benchmark::State& state) {
  Bench b;
  Conn c;
  c.client_ip = Ip4(13, 0, 0, 1);
  b.feed->Handshake(c);
  b.feed->Client(c, "GET / HTTP/1.1\r\nHost: orders.internal\r\nX-Huge: ");
  const std::string chunk(1400, 'a');
  for (auto _ : state) b.feed->Client(c, chunk);
  b.Report(state);
}
BENCHMARK(BM_EndlessHeaderLine);

// Full-size segments of short header lines that never end.
void BM_EndlessHeaderLines(benchmark::State& state) {
  Bench b;
  Conn c;
  c.client_ip = Ip4(13, 0, 0, 2);
  b.feed->Handshake(c);
  b.feed->Client(c, "GET / HTTP/1.1\r\nHost: orders.internal\r\n");
  std::string lines;
  while (lines.size() < 1380) lines += "X-Filler: v\r\n";
  for (auto _ : state) b.feed->Client(c, lines);
  b.Report(state);
}
BENCHMARK(BM_EndlessHeaderLines);

// Full-size segments of 1-byte chunks (233 per segment), without end.
void BM_EndlessTinyChunks(benchmark::State& state) {
  Bench b;
  Conn c;
  c.client_ip = Ip4(14, 0, 0, 1);
  b.feed->Handshake(c);
  b.feed->Client(c,
                 "POST /up HTTP/1.1\r\nHost: orders.internal\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n");
  std::string chunks;
  for (int i = 0; i < 233; ++i) chunks += "1\r\nx\r\n";
  for (auto _ : state) b.feed->Client(c, chunks);
  b.Report(state);
}
BENCHMARK(BM_EndlessTinyChunks);

// Requests whose head (a 64 KiB bearer value) is over max_header_bytes.
void BM_OversizedTokenHeads(benchmark::State& state) {
  Bench b;
  Conn c;
  c.client_ip = Ip4(15, 0, 0, 1);
  b.feed->Handshake(c);
  const std::string req = Request(1, std::string(64 * 1024, 'T'));
  for (auto _ : state) b.feed->Client(c, req);
  b.Report(state);
}
BENCHMARK(BM_OversizedTokenHeads);

// A distinct JWT on every request: one decode and HMAC each.
void BM_DistinctTokenChurn(benchmark::State& state) {
  Bench b;
  Conn c;
  c.client_ip = Ip4(16, 0, 0, 1);
  b.feed->Handshake(c);
  const std::string header = Tokens()[0].substr(0, Tokens()[0].find('.') + 1);
  uint64_t i = 0;
  for (auto _ : state) {
    std::string token =
        header +
        jose::Base64UrlEncode("{\"sub\":\"u" + std::to_string(i++) + "\"}") +
        ".c2lnbmF0dXJl";
    b.feed->Client(c, Request(i, token));
    b.feed->Server(c, "HTTP/1.1 204 No\r\n\r\n");
  }
  b.Report(state);
}
BENCHMARK(BM_DistinctTokenChurn);

// Pipelined requests never answered (8 per segment).
void BM_UnansweredPipelined(benchmark::State& state) {
  Bench b;
  Conn c;
  c.client_ip = Ip4(17, 0, 0, 1);
  b.feed->Handshake(c);
  std::string batch;
  for (int i = 0; i < 8; ++i) batch += Request(i, Tokens()[i]);
  for (auto _ : state) b.feed->Client(c, batch, /*mss=*/batch.size());
  b.Report(state);
}
BENCHMARK(BM_UnansweredPipelined);

// Prints the usual table, then each case relative to BM_Normal.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration) continue;
      auto p = r.counters.find("packets/s");
      auto b = r.counters.find("bytes/s");
      if (p == r.counters.end() || b == r.counters.end()) continue;
      rates_[r.benchmark_name()] = {p->second.value, b->second.value};
    }
    ConsoleReporter::ReportRuns(runs);
  }
  void PrintRatios() const {
    auto normal = rates_.find("BM_Normal");
    if (normal == rates_.end()) return;
    std::printf("\n%-28s %14s %14s %12s %12s\n", "case", "packets/s", "MB/s",
                "pkts/normal", "bytes/normal");
    for (const auto& [name, rate] : rates_) {
      std::printf("%-28s %14.0f %14.1f %12.2f %12.2f\n", name.c_str(),
                  rate.first, rate.second / 1e6,
                  rate.first / normal->second.first,
                  rate.second / normal->second.second);
    }
  }

 private:
  std::map<std::string, std::pair<double, double>> rates_;
};

}  // namespace
}  // namespace tokenwatch

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  tokenwatch::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
