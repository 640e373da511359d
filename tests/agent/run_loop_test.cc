// The capture loop and the agent app on in-memory packet sources: no pcap,
// no interface, the same code path as a live or file capture.
#include "agent/run_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <fstream>
#include <string>

#include "agent/app.h"
#include "agent/output/event_sink.h"
#include "tests/agent/testing/jwt_builder.h"
#include "tests/agent/testing/packet_builder.h"

namespace tokenwatch {
namespace {

using capture::MemoryPacketSource;
using capture::PacketSource;
using testing::FlowBuilder;
using testing::MakeJwt;

// {"iss":"https://idp.test","sub":"alice","jti":"j-1","exp":1764501300}
const std::string kJwt = MakeJwt(
    R"({"iss":"https://idp.test","sub":"alice","jti":"j-1","exp":1764501300})");

std::string Get(const std::string& path) {
  return "GET " + path +
         " HTTP/1.1\r\nHost: orders.internal\r\nAuthorization: Bearer " +
         kJwt + "\r\n\r\n";
}
const char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// Plays a script: frames, then timeouts (a live source gone quiet), then
// an error or the end.
class ScriptedSource : public PacketSource {
 public:
  explicit ScriptedSource(std::vector<MemoryPacketSource::Frame> frames)
      : memory_(DLT_EN10MB, std::move(frames)) {}
  absl::StatusOr<Result> Next(capture::RawPacket* packet) override {
    absl::StatusOr<Result> r = memory_.Next(packet);
    if (!r.ok() || *r != Result::kEnd) return r;
    if (timeouts_left > 0) {
      --timeouts_left;
      return Result::kTimeout;
    }
    if (!error.ok()) return error;
    return Result::kEnd;
  }
  capture::CaptureStats Stats() const override { return memory_.Stats(); }
  bool IsLive() const override { return true; }

  int timeouts_left = 0;
  absl::Status error;

 private:
  MemoryPacketSource memory_;
};

class RunLoopTest : public ::testing::Test {
 protected:
  RunLoopTest() {
    cfg_.agent.fold_window = absl::ZeroDuration();
    cfg_.services.push_back({"orders", {{"orders.internal"}, {}}, {}});
    fp_ = *token::Fingerprinter::Create("key");
    pipeline_ = std::make_unique<Pipeline>(cfg_, "host-a", fp_.get(), &sink_);
  }
  config::Config cfg_;
  std::unique_ptr<token::Fingerprinter> fp_;
  output::VectorSink sink_;
  std::unique_ptr<Pipeline> pipeline_;
};

TEST_F(RunLoopTest, RunsASourceToItsEnd) {
  FlowBuilder f;
  f.Handshake().Client(Get("/v1/orders/1")).Server(kOk).Fin();
  size_t frames = f.frames().size();
  MemoryPacketSource src(DLT_EN10MB, f.frames());
  RunLoop loop(&src, pipeline_.get(), {});
  ASSERT_TRUE(loop.Run().ok());
  pipeline_->Finish();
  EXPECT_EQ(loop.packets(), frames);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].status(), 200u);
  EXPECT_EQ(sink_.events[0].service(), "orders");
}

TEST_F(RunLoopTest, StopsWhenAsked) {
  FlowBuilder f;
  f.Handshake();
  for (int i = 0; i < 50; ++i) f.Client(Get("/v1/orders/" + std::to_string(i)));
  MemoryPacketSource src(DLT_EN10MB, f.frames());
  RunLoopHooks hooks;
  int between = 0;
  hooks.between_packets = [&] { ++between; };
  hooks.stop_requested = [&] { return between >= 10; };
  RunLoop loop(&src, pipeline_.get(), std::move(hooks));
  ASSERT_TRUE(loop.Run().ok());
  EXPECT_EQ(loop.packets(), 10u);
}

// A quiet live source: the wall clock, not packet time, expires the idle
// connection, so its unanswered request is reported before the source ends.
TEST_F(RunLoopTest, IdleSourceAdvancesOnTheWallClock) {
  FlowBuilder f;
  f.Handshake().Client(Get("/v1/orders/7"));
  int64_t last_ts = f.frames().back().ts_us;
  ScriptedSource src(f.frames());
  src.timeouts_left = 3;
  RunLoopHooks hooks;
  int idles = 0;
  size_t events_at_first_idle = 0;
  hooks.idle = [&] {
    if (idles++ == 0) events_at_first_idle = sink_.events.size();
  };
  hooks.wall_clock_us = [&] { return last_ts + 3600LL * 1000000; };
  RunLoop loop(&src, pipeline_.get(), std::move(hooks));
  ASSERT_TRUE(loop.Run().ok());
  EXPECT_EQ(idles, 3);
  ASSERT_EQ(events_at_first_idle, 1u);
  EXPECT_EQ(sink_.events[0].status(), 0u);  // no response: expired idle
  EXPECT_EQ(pipeline_->stats().flows_timed_out, 1u);
}

TEST_F(RunLoopTest, ASourceErrorEndsTheLoopWithIt) {
  FlowBuilder f;
  f.Handshake();
  ScriptedSource src(f.frames());
  src.error = absl::DataLossError("capture file truncated");
  RunLoop loop(&src, pipeline_.get(), {});
  absl::Status s = loop.Run();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(loop.packets(), 3u);
}

// The whole app, start-up to teardown, on a given source: events reach the
// JSON-lines output and the exit code is 0.
TEST(AgentAppTest, RunsOnAGivenSource) {
  FlowBuilder f;
  f.Handshake().Client(Get("/v1/orders/1")).Server(kOk).Fin();
  std::string dir = ::testing::TempDir();
  std::string events = dir + "/run_loop_test_events.jsonl";
  std::string key = dir + "/run_loop_test_fingerprint.key";
  {
    std::ofstream(key) << "0123456789abcdef0123456789abcdef";
  }
  ASSERT_EQ(chmod(key.c_str(), 0600), 0);
  std::string cfg = dir + "/run_loop_test.yaml";
  std::ofstream(cfg) << "fingerprint_key_file: " << key
                     << "\nagent:\n  metrics_listen: \"off\"\n";
  AgentFlags flags;
  flags.config = cfg;
  flags.events_out = events;
  flags.agent_id = "host-a";
  std::atomic<bool> stop{false}, reload{false};
  AgentApp app(flags, &stop, &reload);
  app.UseSource(std::make_unique<MemoryPacketSource>(DLT_EN10MB, f.frames()));
  EXPECT_EQ(app.Run(), 0);
  std::ifstream in(events);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_NE(line.find("\"agent\":\"host-a\""), std::string::npos) << line;
    EXPECT_NE(line.find("\"status\":200"), std::string::npos) << line;
    EXPECT_EQ(line.find(kJwt), std::string::npos);  // never the raw token
  }
  EXPECT_EQ(lines, 1);
}

// A start-up error is exit 2 with nothing run: a config that does not load.
TEST(AgentAppTest, ABrokenConfigIsExit2) {
  std::string cfg = ::testing::TempDir() + "/run_loop_test_broken.yaml";
  std::ofstream(cfg) << "agent: [\n";
  AgentFlags flags;
  flags.config = cfg;
  std::atomic<bool> stop{false}, reload{false};
  AgentApp app(flags, &stop, &reload);
  app.UseSource(std::make_unique<MemoryPacketSource>(
      DLT_EN10MB, std::vector<MemoryPacketSource::Frame>{}));
  EXPECT_EQ(app.Run(), 2);
}

}  // namespace
}  // namespace tokenwatch
