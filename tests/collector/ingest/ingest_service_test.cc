// The agent's CollectorSink against the collector's IngestService, in one
// process over real gRPC on loopback: every event acknowledged is applied
// exactly once, and a sink can be created and destroyed again and again
// (a short-lived agent, `-r`) without gRPC tripping over its own threads.
#include "collector/ingest/ingest_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/output/collector_sink.h"
#include "agent/output/event_json.h"
#include "agent/output/usage_record.h"
#include "collector/engine.h"
#include "collector/health.h"
#include "collector/metrics.h"
#include "collector/store/store.h"
#include "common/config.h"
#include "common/log.h"
#include "tests/bench/bench_tokens.h"
#include "tests/collector/testing/stores.h"

namespace tokenwatch::collector {
namespace {

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenStore("memory:");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    gate_ = std::make_unique<test::GatedStore>(store_.get());
    engine_ = std::make_unique<Engine>(config_, gate_.get(), nullptr);
    ASSERT_TRUE(engine_->Restore().ok());
    service_ = std::make_unique<IngestService>(engine_.get(), options_);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    if (service_ != nullptr) service_->Shutdown();
  }

  uint64_t EventsApplied() {
    return service_->WithEngine([](Engine& e) { return e.stats().events; });
  }

  output::CollectorSinkOptions Options(const std::string& agent) {
    output::CollectorSinkOptions o;
    o.target = "127.0.0.1:" + std::to_string(port_);
    o.agent_id = agent;
    o.batch_max_events = 4;
    o.flush_interval = std::chrono::milliseconds(2);
    return o;
  }

  static void EmitSome(output::CollectorSink& sink, int n, int first_token) {
    auto request = std::make_shared<output::RequestInfo>();
    request->agent = "test";
    request->service = "orders";
    request->method = "GET";
    request->path = "/v1/orders/1";
    request->client = "10.0.0.1";
    request->server = "10.0.0.2:8080";
    output::UsageRecord r;
    for (int i = 0; i < n; ++i) {
      r.ts_us = r.last_ts_us = (bench::kBenchNow + 60) * 1000000 + i;
      r.status = 200;
      r.location = v1::TOKEN_LOCATION_AUTHORIZATION;
      r.token = output::MakeTokenRecord(bench::BenchToken(first_token + i));
      r.request = request;
      sink.Emit(r);
    }
  }

  config::Config config_;
  IngestOptions options_;  // a derived fixture sets them before SetUp
  std::unique_ptr<Store> store_;
  std::unique_ptr<test::GatedStore> gate_;  // open unless a test closes it
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<IngestService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(IngestTest, EveryAcknowledgedEventIsAppliedOnce) {
  output::CollectorSink sink(Options("agent-a"));
  EmitSome(sink, 1000, 0);
  ASSERT_TRUE(sink.Drain(std::chrono::seconds(30)));
  output::DeliveryStats st = sink.Stats();
  EXPECT_EQ(st.queued, 1000u);
  EXPECT_EQ(st.acked, 1000u);
  EXPECT_EQ(st.dropped, 0u);
  EXPECT_EQ(EventsApplied(), 1000u);
}

// A sink that is destroyed right after its stream ends must release the
// stream (and with it the channel) on its own thread: released on gRPC's
// callback thread, the channel's teardown joined that very thread and freed
// the completion queue under it ("assertion failed: prior > 0" at exit of
// one ingest_bench run in about ten).
TEST_F(IngestTest, SinksComeAndGo) {
  constexpr int kRounds = 150;
  for (int round = 0; round < kRounds; ++round) {
    output::CollectorSink sink(Options("agent-" + std::to_string(round)));
    EmitSome(sink, 5, round);
    ASSERT_TRUE(sink.Drain(std::chrono::seconds(30))) << "round " << round;
  }
  EXPECT_EQ(EventsApplied(), 5u * kRounds);
}

// The same at process exit, where it showed: a short-lived agent (the
// load generator, four sinks) run again and again must exit 0 every time.
TEST_F(IngestTest, ShortLivedAgentsExitCleanly) {
  std::string cmd = std::string(TOKENWATCH_INGEST_BENCH) +
                    " 127.0.0.1:" + std::to_string(port_) +
                    " --streams 4 --events 2000 --tokens 100 >/dev/null";
  constexpr int kRuns = 60;
  for (int run = 0; run < kRuns; ++run) {
    int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "run " << run << " ended with wait status " << status;
  }
  EXPECT_EQ(EventsApplied(), 2000u * kRuns);
}

// /healthz and /metrics read the engine under the lock the ingest thread
// takes to apply batches. The store's commit (an fsync) happens outside
// that lock, so neither waits while the disk is slow: here a commit is
// held inside the store until the end of the test.
TEST_F(IngestTest, HealthAndMetricsDoNotWaitForTheStore) {
  CollectorMetrics metrics(
      [this](const std::function<void(const Engine&)>& fn) {
        service_->WithEngine([&fn](Engine& e) { fn(e); });
      },
      [this] { return service_->open_streams(); },
      [] { return std::vector<DeliveryCounters>{}; });
  gate_->Close();
  output::CollectorSink sink(Options("agent-a"));
  EmitSome(sink, 10, 0);
  ASSERT_TRUE(gate_->WaitForBlockedCommit(absl::Seconds(30)))
      << "no commit reached the store";
  // Each on a thread of its own, as civetweb's workers call them, with a
  // deadline: on a collector that holds the lock across the commit they
  // return only once the store does.
  std::future<std::string> health =
      std::async(std::launch::async, [this] { return HealthJson(*service_); });
  std::future<std::string> scrape =
      std::async(std::launch::async, [&metrics] { return metrics.Text(); });
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool health_prompt = health.wait_until(deadline) == std::future_status::ready;
  bool scrape_prompt = scrape.wait_until(deadline) == std::future_status::ready;
  gate_->Open();
  EXPECT_TRUE(health_prompt) << "/healthz waited for the store commit";
  EXPECT_TRUE(scrape_prompt) << "/metrics waited for the store commit";
  EXPECT_NE(health.get().find(R"("status":"ok")"), std::string::npos);
  EXPECT_NE(scrape.get().find("tokenwatch_collector_events_received_total"),
            std::string::npos);
  // Once the store is back everything is acknowledged, once.
  ASSERT_TRUE(sink.Drain(std::chrono::seconds(30)));
  EXPECT_EQ(sink.Stats().acked, 10u);
  EXPECT_EQ(EventsApplied(), 10u);
}

// A batch that does not parse (here: invalid UTF-8 in a string field)
// closes its stream; the collector says so, and passes protobuf's own
// line on, each at most once per interval however many arrive.
TEST_F(IngestTest, BatchesThatDoNotParseAreLoggedSparingly) {
  std::mutex mu;
  std::vector<std::string> lines;
  log::SetSinkForTesting([&](log::Level, std::string_view line) {
    std::lock_guard<std::mutex> lock(mu);
    lines.emplace_back(line);
  });
  RouteProtobufLogs();
  auto stub = v1::Ingest::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                          grpc::InsecureChannelCredentials()));
  // EventBatch{seq: 1, events: [{service: "\xff"}]}
  const std::string bad("\x08\x01\x12\x03\x2a\x01\xff", 7);
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext context;
    auto stream = stub->Stream(&context);
    v1::AgentFrame hello;
    hello.mutable_hello()->set_agent_id("bad-agent");
    hello.mutable_hello()->set_boot_id(1);
    ASSERT_TRUE(stream->Write(hello));
    v1::AgentFrame frame;
    frame.set_batch(bad);
    stream->Write(frame);
    stream->WritesDone();
    v1::CollectorMessage answer;
    while (stream->Read(&answer)) {
    }
    EXPECT_EQ(stream->Finish().error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  log::SetSinkForTesting(nullptr);
  int ours = 0, protobufs = 0;
  for (const std::string& line : lines) {
    ours += line.find("bad-agent sent a batch that does not parse") !=
            std::string::npos;
    protobufs += line.find("protobuf (") != std::string::npos;
  }
  EXPECT_EQ(ours, 1) << lines.size() << " lines";
  EXPECT_EQ(protobufs, 1);
  EXPECT_EQ(EventsApplied(), 0u);
}

// ---- Hostile clients: ingest (issue 12, item 4) ----

class BoundedIngestTest : public IngestTest {
 protected:
  static constexpr int64_t kBudget = 1 << 20;
  BoundedIngestTest() {
    options_.max_inflight_bytes = kBudget;
    options_.max_streams = 4;
    options_.idle_timeout = std::chrono::milliseconds(400);
  }
  // `n` uses with a 2,000-byte path: batches of `per_batch` are big.
  static void EmitBig(output::CollectorSink& sink, int n, int first_token) {
    auto request = std::make_shared<output::RequestInfo>();
    request->service = "orders";
    request->method = "GET";
    request->path = "/" + std::string(2000, 'p');
    request->client = "10.0.0.1";
    request->server = "10.0.0.2:8080";
    output::UsageRecord r;
    for (int i = 0; i < n; ++i) {
      r.ts_us = r.last_ts_us = (bench::kBenchNow + 60) * 1000000 + i;
      r.status = 200;
      r.location = v1::TOKEN_LOCATION_AUTHORIZATION;
      r.token = output::MakeTokenRecord(bench::BenchToken(first_token + i));
      r.request = request;
      sink.Emit(r);
    }
  }
};

// The budget's test: streams stay parked longer than the idle timeout.
class BudgetIngestTest : public BoundedIngestTest {
 protected:
  BudgetIngestTest() { options_.idle_timeout = std::chrono::seconds(1); }
};

// While the store does not answer, what several streams have read and not
// had acknowledged stays within one budget for all of them (before: each
// stream held 16 batches of up to 64 MiB: 30 MB -> 6.5 GB of RSS with 3).
TEST_F(BudgetIngestTest, OneByteBudgetHoldsAllStreamsWhileTheStoreHangs) {
  gate_->Close();
  std::vector<std::unique_ptr<output::CollectorSink>> sinks;
  for (int i = 0; i < 3; ++i) {
    output::CollectorSinkOptions o = Options("agent-" + std::to_string(i));
    o.batch_max_events = 200;  // ~450 KB per batch
    sinks.push_back(std::make_unique<output::CollectorSink>(o));
    EmitBig(*sinks.back(), 200 * 20, i * 10000);
    sinks.back()->Flush();
  }
  ASSERT_TRUE(gate_->WaitForBlockedCommit(absl::Seconds(30)));
  // Poll with a deadline for the bound to be broken; it must not be.
  int64_t most = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < deadline) {
    most = std::max(most, service_->counters().inflight_bytes);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // The budget, plus at most one read per stream started before it filled.
  // (Without the budget: 23.7 MB here, 16 batches per stream.)
  EXPECT_LE(most, kBudget + 3 * (2 << 20)) << most;
  std::printf("most bytes in flight, 3 streams, store hung: %lld\n",
              static_cast<long long>(most));
  EXPECT_GT(service_->counters().budget_waits, 0u)
      << "most in flight: " << most;
  gate_->Open();
  for (auto& sink : sinks) ASSERT_TRUE(sink->Drain(std::chrono::seconds(60)));
  // A stream parked by the budget (here for 3 s) is not idle: woken, it
  // reads on (it was closed as idle at once when its idle time counted
  // from its last read before parking).
  EXPECT_EQ(service_->counters().streams_idle_closed, 0u);
  EXPECT_EQ(EventsApplied(), 3u * 200 * 20);
}

// More streams than max_streams are refused; a stream that waits on its
// client past the idle timeout is closed, freeing its place.
TEST_F(BoundedIngestTest, StreamsAreCappedAndIdleOnesClosed) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Ingest::NewStub(channel);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<
      grpc::ClientReaderWriter<v1::AgentFrame, v1::CollectorMessage>>>
      streams;
  for (int i = 0; i < 5; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(stub->Stream(contexts.back().get()));
    v1::AgentFrame hello;
    hello.mutable_hello()->set_agent_id("squatter-" + std::to_string(i));
    streams.back()->Write(hello);
    if (i < 4) {
      v1::CollectorMessage answer;  // the Hello's ack: the stream is open
      ASSERT_TRUE(streams.back()->Read(&answer)) << i;
    }
  }
  grpc::Status refused = streams[4]->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(service_->counters().streams_refused, 1u);
  // Idle: closed by the collector within the timeout (plus a sweep).
  for (int i = 0; i < 4; ++i) {
    v1::CollectorMessage m;
    EXPECT_FALSE(streams[i]->Read(&m));
    EXPECT_EQ(streams[i]->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  // Counted just after the close the clients saw: poll with a deadline.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (service_->counters().streams_idle_closed < 4 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(service_->counters().streams_idle_closed, 4u);
  // Their places are free again: an honest agent is served.
  output::CollectorSink sink(Options("honest"));
  EmitSome(sink, 10, 0);
  ASSERT_TRUE(sink.Drain(std::chrono::seconds(30)));
  EXPECT_EQ(EventsApplied(), 10u);
}

// A batch that jumps ahead in a known run ends the stream with
// FAILED_PRECONDITION and is never acknowledged (issue 12, item 6).
TEST_F(IngestTest, AForgedJumpIsRefusedNotAcknowledged) {
  output::CollectorSink victim(Options("victim"));
  EmitSome(victim, 8, 0);
  ASSERT_TRUE(victim.Drain(std::chrono::seconds(30)));
  // The victim's boot_id is what the store holds; read it back.
  uint64_t boot = 0;
  auto snap = store_->Load();
  ASSERT_TRUE(snap.ok());
  for (const AgentProgress& p : snap->progress)
    if (p.agent_id == "victim") boot = p.boot_id;
  ASSERT_NE(boot, 0u);
  auto stub = v1::Ingest::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                          grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  auto stream = stub->Stream(&ctx);
  v1::AgentFrame hello;
  hello.mutable_hello()->set_agent_id("victim");
  hello.mutable_hello()->set_boot_id(boot);
  ASSERT_TRUE(stream->Write(hello));
  v1::EventBatch jump;
  jump.set_seq(uint64_t{1} << 63);
  v1::AgentFrame frame;
  frame.set_batch(jump.SerializeAsString());
  stream->Write(frame);
  v1::CollectorMessage m;
  uint64_t acked = 0;
  while (stream->Read(&m)) acked = std::max(acked, m.ack().stored_through());
  EXPECT_EQ(stream->Finish().error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_LT(acked, uint64_t{1} << 63);
  EXPECT_EQ(service_->counters().batches_out_of_order, 1u);
}

}  // namespace
}  // namespace tokenwatch::collector
