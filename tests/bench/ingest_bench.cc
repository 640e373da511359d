// Load generator for the collector: S concurrent agent streams (the agent's
// own CollectorSink, so the real client path), each sending N usage events
// drawn from T distinct tokens across a few services, waiting until every
// event is acknowledged (durably stored). Prints events/s end to end.
//
//   ingest_bench HOST:PORT [--streams S] [--events N] [--tokens T]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/output/collector_sink.h"
#include "agent/output/event_json.h"
#include "agent/output/usage_record.h"
#include "tests/bench/bench_tokens.h"

using tokenwatch::output::CollectorSink;
using tokenwatch::output::CollectorSinkOptions;
using tokenwatch::output::UsageRecord;

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr,
            "usage: ingest_bench HOST:PORT [--streams S] [--events N] "
            "[--tokens T]\n");
    return 2;
  }
  std::string target = argv[1];
  int streams = 4, tokens = 20000;
  long events = 500000;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--streams")) streams = atoi(argv[i + 1]);
    if (!strcmp(argv[i], "--events")) events = atol(argv[i + 1]);
    if (!strcmp(argv[i], "--tokens")) tokens = atoi(argv[i + 1]);
  }
  // Realistic records, prepared up front so the clock measures delivery.
  const char* const* services = tokenwatch::bench::kServices;
  std::vector<std::shared_ptr<tokenwatch::output::RequestInfo>> requests;
  for (int s = 0; s < 4; ++s) {
    for (int c = 0; c < 16; ++c) {
      auto r = std::make_shared<tokenwatch::output::RequestInfo>();
      r->agent = "bench";
      r->service = services[s];
      r->method = "GET";
      r->path =
          "/v1/" + std::string(services[s]) + "/" + std::to_string(1000 + c);
      r->client = "10.1." + std::to_string(s) + "." + std::to_string(c);
      r->server = "10.0.0." + std::to_string(5 + s) + ":8080";
      requests.push_back(r);
    }
  }
  std::vector<tokenwatch::output::TokenRef> token_refs;
  const int64_t now_s = tokenwatch::bench::kBenchNow;
  for (int t = 0; t < tokens; ++t) {
    token_refs.push_back(
        tokenwatch::output::MakeTokenRecord(tokenwatch::bench::BenchToken(t)));
  }
  long per_stream = events / streams;
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  std::vector<int> ok(streams, 0);
  for (int s = 0; s < streams; ++s) {
    threads.emplace_back([&, s] {
      CollectorSinkOptions o;
      o.target = target;
      o.agent_id = "bench-agent-" + std::to_string(s);
      o.batch_max_events = 2048;
      o.queue_max_events = 1 << 22;
      CollectorSink sink(o);
      UsageRecord r;
      uint64_t x = 88172645463325252ull + s;
      for (long i = 0; i < per_stream; ++i) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int t = static_cast<int>(x % tokens);
        r.ts_us = r.last_ts_us = (now_s + 60) * 1000000 + i;
        r.status = (x >> 20) % 10 == 0 ? 401 : 200;
        r.location = tokenwatch::v1::TOKEN_LOCATION_AUTHORIZATION;
        r.token = token_refs[t];
        r.request =
            requests[(t % 4) * 16 + (t / 4) % 16];  // a token keeps its client
        sink.Emit(r);
      }
      ok[s] = sink.Drain(std::chrono::minutes(5)) ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  long total = per_stream * streams;
  int good = 0;
  for (int v : ok) good += v;
  printf(
      "ingest: %ld events over %d streams, %d tokens: %.2f s, %.0f events/s "
      "acknowledged%s\n",
      total, streams, tokens, secs, total / secs,
      good == streams ? "" : " (NOT all acknowledged)");
  return good == streams ? 0 : 1;
}
