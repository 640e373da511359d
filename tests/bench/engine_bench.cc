// The collector's engine thread alone: applies pre-parsed batches of usage
// events (the ingest_bench mix: T tokens over 4 services, 64 clients) and
// commits them the way the ingest service does, journaling between 2-second
// checkpoints, to a real store. Prints events per CPU-second of this thread,
// which bounds what one collector can ingest however fast gRPC delivers.
//
//   engine_bench [--events N] [--tokens T] [--store URI] [--batch B]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "collector/engine.h"
#include "collector/store/store.h"
#include "tests/bench/bench_tokens.h"

using namespace tokenwatch;

static double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  long events = 1000000;
  int tokens = 20000, batch_size = 2048;
  std::string uri = "sqlite:/tmp/engine_bench.db";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--events")) events = atol(argv[i + 1]);
    if (!strcmp(argv[i], "--tokens")) tokens = atoi(argv[i + 1]);
    if (!strcmp(argv[i], "--store")) uri = argv[i + 1];
    if (!strcmp(argv[i], "--batch")) batch_size = atoi(argv[i + 1]);
  }
  if (uri.rfind("sqlite:", 0) == 0) {
    for (const char* ext : {"", "-wal", "-shm"})
      std::filesystem::remove(uri.substr(7) + ext);
  }
  const char* const* services = bench::kServices;
  const int64_t now_s = bench::kBenchNow;
  std::vector<v1::TokenInfo> infos(tokens);
  for (int t = 0; t < tokens; ++t) infos[t] = bench::BenchToken(t);
  std::vector<v1::EventBatch> batches;
  uint64_t x = 88172645463325252ull;
  for (long i = 0; i < events; i += batch_size) {
    v1::EventBatch& b = batches.emplace_back();
    b.set_seq(batches.size());
    for (long j = i; j < std::min(events, i + batch_size); ++j) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      int t = static_cast<int>(x % tokens);
      v1::UsageEvent* e = b.add_events();
      e->set_ts_us((now_s + 60) * 1000000 + j);
      e->set_last_ts_us(e->ts_us());
      e->set_count(1);
      e->set_agent("bench");
      int svc = t % 4, c = (t / 4) % 16;
      e->set_service(services[svc]);
      e->set_method("GET");
      e->set_path(absl::StrFormat("/v1/%s/%d", services[svc], 1000 + c));
      e->set_client(absl::StrFormat("10.1.%d.%d", svc, c));
      e->set_server(absl::StrFormat("10.0.0.%d:8080", 5 + svc));
      e->set_status((x >> 20) % 10 == 0 ? 401 : 200);
      e->set_location(v1::TOKEN_LOCATION_AUTHORIZATION);
      *e->mutable_token() = infos[t];
    }
  }
  config::Config cfg;
  auto store = collector::OpenStore(uri);
  if (!store.ok()) {
    fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  collector::Engine engine(cfg, store->get(), nullptr);
  if (!engine.Restore().ok()) return 1;
  auto wall0 = std::chrono::steady_clock::now();
  auto last_checkpoint = wall0;
  double cpu0 = ThreadCpuSeconds();
  for (size_t i = 0; i < batches.size(); ++i) {
    engine.Apply("bench", 1, batches[i]);
    auto now = std::chrono::steady_clock::now();
    bool checkpoint = now - last_checkpoint >= std::chrono::seconds(10) ||
                      i + 1 == batches.size();
    if (!engine.Commit(checkpoint).ok()) return 1;
    if (checkpoint) last_checkpoint = now;
  }
  double cpu = ThreadCpuSeconds() - cpu0;
  double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0)
          .count();
  printf(
      "engine: %ld events, %d tokens, %s: %.2f s CPU, %.2f s wall, %.0f events "
      "per CPU-second, %.0f events/s wall\n",
      events, tokens, uri.c_str(), cpu, wall, events / cpu, events / wall);
  return 0;
}
