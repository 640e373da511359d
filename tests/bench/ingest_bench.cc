// Load generator for the collector: S concurrent agent streams, each
// sending N usage events drawn from T distinct tokens across a few
// services, waiting until every event is acknowledged (durably stored).
// Prints events/s end to end.
//
//   ingest_bench HOST:PORT [--streams S] [--events N] [--tokens T]
//                [--via sink|frames]
//
// --via frames (the default) encodes every batch before the clock starts,
// with the agent's own encoder (AppendBatchEvent: the bytes an agent
// sends), then streams them: the clock measures the collector, and the
// generator's share of the two cores is small. --via sink sends through
// the agent's CollectorSink instead, encoding while the clock runs (the
// whole agent-side delivery path, at the generator's CPU cost).
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "agent/output/collector_sink.h"
#include "agent/output/event_json.h"
#include "agent/output/usage_record.h"
#include "tests/bench/bench_tokens.h"
#include "tokenwatch/v1/ingest.grpc.pb.h"

using tokenwatch::output::CollectorSink;
using tokenwatch::output::CollectorSinkOptions;
using tokenwatch::output::UsageRecord;
namespace v1 = tokenwatch::v1;

namespace {

constexpr size_t kBatchEvents = 2048;

// One agent stream of pre-encoded frames: hello, then every batch in
// order, as fast as gRPC flow control lets it write; done when the last
// batch is acknowledged.
class FrameStream
    : public grpc::ClientBidiReactor<v1::AgentFrame, v1::CollectorMessage> {
 public:
  FrameStream(v1::Ingest::Stub* stub, std::vector<v1::AgentFrame> frames)
      : frames_(std::move(frames)) {
    last_seq_ = frames_.size() - 1;  // frames_[0] is the hello
    stub->async()->Stream(&context_, this);
    StartRead(&ack_);
    StartWrite(&frames_[0]);
    StartCall();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return;  // the stream failed; OnDone reports it
    std::lock_guard<std::mutex> lock(mu_);
    if (++next_ < frames_.size()) {
      StartWrite(&frames_[next_]);
    } else {
      writes_finished_ = true;
      MaybeWritesDoneLocked();
    }
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ack_.has_ack()) stored_ = ack_.ack().stored_through();
      MaybeWritesDoneLocked();
    }
    StartRead(&ack_);
  }
  void OnDone(const grpc::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    ok_ = status.ok() && stored_ >= last_seq_;
    if (!status.ok())
      fprintf(stderr, "ingest_bench: stream failed: %s\n",
              status.error_message().c_str());
    done_ = true;
    cv_.notify_all();
  }
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    return ok_;
  }

 private:
  // Everything written and stored: the collector may end the stream. Not
  // before the last write completes (no writes-done beside a write).
  void MaybeWritesDoneLocked() {
    if (writes_finished_ && stored_ >= last_seq_ && !writes_done_sent_) {
      writes_done_sent_ = true;
      StartWritesDone();
    }
  }

  grpc::ClientContext context_;
  std::vector<v1::AgentFrame> frames_;
  size_t next_ = 0;
  uint64_t last_seq_;
  v1::CollectorMessage ack_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t stored_ = 0;
  bool writes_finished_ = false, writes_done_sent_ = false;
  bool done_ = false, ok_ = false;
};

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Appends `v` as a protobuf varint.
void AppendVarint(uint64_t v, std::string* out) {
  for (; v >= 0x80; v >>= 7) out->push_back(static_cast<char>(v | 0x80));
  out->push_back(static_cast<char>(v));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr,
            "usage: ingest_bench HOST:PORT [--streams S] [--events N] "
            "[--tokens T] [--via sink|frames]\n");
    return 2;
  }
  std::string target = argv[1];
  int streams = 4, tokens = 20000;
  long events = 500000;
  std::string via = "frames";
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--streams")) streams = atoi(argv[i + 1]);
    if (!strcmp(argv[i], "--events")) events = atol(argv[i + 1]);
    if (!strcmp(argv[i], "--tokens")) tokens = atoi(argv[i + 1]);
    if (!strcmp(argv[i], "--via")) via = argv[i + 1];
  }
  if (via != "frames" && via != "sink") {
    fprintf(stderr, "ingest_bench: --via takes sink or frames\n");
    return 2;
  }
  // Realistic records, prepared up front.
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
  // A stream's i-th record (x: its generator state), the same in both modes.
  auto record = [&](long i, uint64_t* x, UsageRecord* r) {
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    int t = static_cast<int>(*x % tokens);
    r->ts_us = r->last_ts_us = (now_s + 60) * 1000000 + i;
    r->status = (*x >> 20) % 10 == 0 ? 401 : 200;
    r->location = tokenwatch::v1::TOKEN_LOCATION_AUTHORIZATION;
    r->token = token_refs[t];
    r->request =
        requests[(t % 4) * 16 + (t / 4) % 16];  // a token keeps its client
  };
  auto agent_id = [](int s) { return "bench-agent-" + std::to_string(s); };

  std::vector<std::vector<v1::AgentFrame>> frames(streams);
  uint64_t boot_id = std::random_device{}();
  boot_id = boot_id << 32 | std::random_device{}();
  size_t wire_bytes = 0;
  if (via == "frames") {
    for (int s = 0; s < streams; ++s) {
      v1::AgentFrame hello;
      hello.mutable_hello()->set_agent_id(agent_id(s));
      hello.mutable_hello()->set_boot_id(boot_id + s);  // a new agent run
      frames[s].push_back(std::move(hello));
      uint64_t x = 88172645463325252ull + s;
      std::string events_bytes;
      UsageRecord r;
      uint64_t seq = 0;
      for (long i = 0; i < per_stream; ++i) {
        record(i, &x, &r);
        tokenwatch::output::AppendBatchEvent(r, &events_bytes);
        if ((i + 1) % kBatchEvents == 0 || i + 1 == per_stream) {
          v1::AgentFrame f;
          std::string* b = f.mutable_batch();
          b->push_back(static_cast<char>(1 << 3));  // EventBatch.seq
          AppendVarint(++seq, b);
          b->append(events_bytes);
          wire_bytes += b->size();
          events_bytes.clear();
          frames[s].push_back(std::move(f));
        }
      }
    }
  }

  double cpu0 = CpuSeconds();
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  std::vector<int> ok(streams, 0);
  if (via == "frames") {
    // One channel per stream, as separate agents would have.
    for (int s = 0; s < streams; ++s) {
      threads.emplace_back([&, s] {
        grpc::ChannelArguments args;
        args.SetInt("tokenwatch.bench.stream", s);  // no shared connection
        auto ch = grpc::CreateCustomChannel(
            target, grpc::InsecureChannelCredentials(), args);
        auto st = v1::Ingest::NewStub(ch);
        {
          FrameStream stream(st.get(), std::move(frames[s]));
          ok[s] = stream.Wait() ? 1 : 0;
        }
      });
    }
  } else {
    for (int s = 0; s < streams; ++s) {
      threads.emplace_back([&, s] {
        CollectorSinkOptions o;
        o.target = target;
        o.agent_id = agent_id(s);
        o.batch_max_events = kBatchEvents;
        o.queue_max_events = 1 << 22;
        CollectorSink sink(o);
        UsageRecord r;
        uint64_t x = 88172645463325252ull + s;
        for (long i = 0; i < per_stream; ++i) {
          record(i, &x, &r);
          sink.Emit(r);
        }
        ok[s] = sink.Drain(std::chrono::minutes(5)) ? 1 : 0;
      });
    }
  }
  for (auto& t : threads) t.join();
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  double cpu = CpuSeconds() - cpu0;
  long total = per_stream * streams;
  int good = 0;
  for (int v : ok) good += v;
  printf(
      "ingest (via %s): %ld events over %d streams, %d tokens: %.2f s, %.0f "
      "events/s acknowledged%s\n",
      via.c_str(), total, streams, tokens, secs, total / secs,
      good == streams ? "" : " (NOT all acknowledged)");
  printf("ingest: the generator used %.2f CPU-s while the clock ran\n", cpu);
  if (wire_bytes > 0)
    printf("ingest: %.0f bytes per event on the wire\n",
           static_cast<double>(wire_bytes) / total);
  return good == streams ? 0 : 1;
}
