// HTTP/2 attacks against the analyzer with small caps (issue 13, "Bounds"):
// each bound is hit, counted, and the connection's memory (its own
// accounting, nghttp2's tables included) stays under a figure that follows
// from the limits, however long the attack runs. Each case also prints its
// cost per byte against clean HTTP/2 traffic (the throughput ratio).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "agent/http2/session.h"
#include "tests/agent/testing/h2_builder.h"

namespace tokenwatch::http2 {
namespace {

using namespace testing::hpack;
using testing::Data;
using testing::Frame;
using testing::Headers;
using testing::Preface;
using testing::RecordingObserver;
using testing::RstStream;
using testing::Settings;

// {"sub":"mallory"}
constexpr char kBearer[] =
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2ln";

// A request with no dynamic references: it decodes whatever came before.
std::string Request(const std::string& path) {
  return Indexed(kMethodPost) + Indexed(kSchemeHttp) + LitNoIndex(kPath, path) +
         LitNoIndex(kAuthority, "api.test") +
         LitNoIndex(kAuthorization, kBearer);
}

class H2Harness {
 public:
  H2Harness() {
    ctx_.stats = &stats_;
    ctx_.observer = &obs_;
    ctx_.clock = &clock_;
    ctx_.max_streams = 16;
    ctx_.max_header_bytes = 4096;
    ctx_.max_header_list_bytes = 4096;
    ctx_.max_table_bytes = 8192;
    ctx_.max_continuations = 64;
    ctx_.rapid_reset_threshold = 50;
    ctx_.control_flood_threshold = 200;
    obs_.CountOnly();
  }
  Http2Session& S() {
    if (!session_) {
      session_ = std::make_unique<Http2Session>(
          &ctx_, analyzer::Endpoint{"10.9.0.1", 40000},
          analyzer::Endpoint{"10.0.0.5", 8080}, /*client_dir=*/0);
      Feed(0, Preface() + Settings({}));
      Feed(1, Settings({}) + Settings({}, true));
      Feed(0, Settings({}, true));
    }
    return *session_;
  }
  void Feed(int dir, const std::string& b) {
    clock_.now_us += 10;
    S().OnData(dir, reinterpret_cast<const uint8_t*>(b.data()), b.size());
  }
  // What the limits allow one connection to hold: two directions' block,
  // payload and resync buffers, both HPACK tables (nghttp2 keeps ~3x the
  // RFC's entry size for tiny entries), the streams.
  size_t Bound() const {
    return 2 * (2 * ctx_.max_header_bytes + 64 * 1024 + 16 * 1024 +
                4 * ctx_.max_table_bytes + 8 * 1024) +
           ctx_.max_streams * 128 + 4096;
  }
  // Feeds `rounds` copies of `chunk` from `dir`, checking the bound as it
  // goes; returns ns per byte.
  double Flood(int dir, const std::string& chunk, size_t rounds) {
    S();
    size_t peak = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < rounds; ++i) {
      Feed(dir, chunk);
      if (i % 64 == 0) peak = std::max(peak, S().MemoryBytes());
    }
    auto ns = std::chrono::duration<double, std::nano>(
                  std::chrono::steady_clock::now() - t0)
                  .count();
    peak = std::max(peak, S().MemoryBytes());
    EXPECT_LE(peak, Bound());
    peak_ = peak;
    return ns / static_cast<double>(chunk.size() * rounds);
  }
  // Clean traffic's cost per byte: request, response, data, trailers.
  double CleanNsPerByte() {
    H2Harness clean;
    uint32_t id = 1;
    clean.S();
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < 200; ++r) {
      std::string c;
      for (int i = 0; i < 64; ++i, id += 2)
        c += Headers(id, Request("/ok"), true);
      clean.Feed(0, c);
    }
    auto ns = std::chrono::duration<double, std::nano>(
                  std::chrono::steady_clock::now() - t0)
                  .count();
    return ns / (200.0 * 64 * Headers(1, Request("/ok"), true).size());
  }
  void Report(const char* name, double ns_per_byte) {
    double clean = CleanNsPerByte();
    std::printf("%s: %.2f ns/byte under attack, %.2f clean (ratio %.2f), "
                "peak %zu bytes (bound %zu)\n",
                name, ns_per_byte, clean, ns_per_byte / clean, peak_, Bound());
  }

  AgentStats stats_;
  RecordingObserver obs_;
  analyzer::PacketClock clock_;
  Http2Context ctx_;
  std::unique_ptr<Http2Session> session_;
  size_t peak_ = 0;
};

class HostileHttp2Test : public ::testing::Test, public H2Harness {};

TEST_F(HostileHttp2Test, ConcurrentStreamsBeyondTheBound) {
  uint32_t id = 1;
  const size_t kStreams = 20000;
  S();
  auto t0 = std::chrono::steady_clock::now();
  size_t bytes = 0;
  for (size_t i = 0; i < kStreams; ++i, id += 2) {
    std::string h = Headers(id, Request("/open"), false);  // never answered
    bytes += h.size();
    Feed(0, h);
    if (i % 1000 == 0) EXPECT_LE(S().MemoryBytes(), Bound());
  }
  double ns = std::chrono::duration<double, std::nano>(
                  std::chrono::steady_clock::now() - t0)
                  .count();
  peak_ = S().MemoryBytes();
  EXPECT_EQ(S().open_streams(), ctx_.max_streams);
  EXPECT_EQ(stats_.Get(Drop::kHttp2Streams), kStreams - ctx_.max_streams);
  // Every request's uses still go out (the untracked ones without status).
  EXPECT_EQ(obs_.requests, kStreams);
  EXPECT_EQ(obs_.completions, kStreams - ctx_.max_streams);
  S().Close();
  EXPECT_EQ(obs_.completions, kStreams);
  Report("concurrent streams", ns / static_cast<double>(bytes));
}

TEST_F(HostileHttp2Test, HeaderListOverTheBoundKeepsTheFirstFields) {
  ctx_.max_header_bytes = 64 * 1024;  // the block fits; its fields do not
  std::string block = Request("/many");
  for (int i = 0; i < 200; ++i)
    block += LitNoIndexNew("x-filler-" + std::to_string(i), std::string(80, 'v'));
  Feed(0, Headers(1, block, true));
  ASSERT_EQ(obs_.requests, 1u);
  EXPECT_EQ(stats_.Get(Drop::kHttp2HeaderList), 1u);
  EXPECT_LE(S().MemoryBytes(), Bound());
}

TEST_F(HostileHttp2Test, ContinuationFloodIsCutAndTheConnectionRecovers) {
  // CVE-2024-27316: a header block that never ends, in 100-byte pieces...
  std::string piece = Frame(FrameType::kContinuation, 0, 1, std::string(100, 'a'));
  Feed(0, Headers(1, Request("/flood"), false, /*end_headers=*/false));
  double ns = Flood(0, piece, 20000);
  EXPECT_EQ(stats_.Get(Drop::kHeaderBytes), 1u);
  EXPECT_GE(stats_.Get(Anomaly::kHttp2ContinuationFlood), 1u);
  Feed(0, Frame(FrameType::kContinuation, flags::kEndHeaders, 1, ""));
  EXPECT_EQ(obs_.requests, 0u);  // the dropped block raised nothing
  // ... and in empty pieces, which cost no bytes but frames.
  Feed(0, Headers(3, Request("/empty"), false, false));
  Flood(0, Frame(FrameType::kContinuation, 0, 3, ""), 100000);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2ContinuationFlood), 2u);
  Feed(0, Frame(FrameType::kContinuation, flags::kEndHeaders, 3, ""));
  // The next request decodes.
  Feed(0, Headers(5, Request("/after"), true));
  ASSERT_EQ(obs_.requests, 1u);
  Report("continuation flood", ns);
}

TEST_F(HostileHttp2Test, HpackTableSizeAbuseStaysAtTheCap) {
  // The server's decoder "allows" 4 GiB; the client asks for 1 GiB and
  // fills the table with large entries.
  Feed(1, Settings({{kSettingsHeaderTableSize, 0xffffffffu}}));
  Feed(0, Settings({}, true));
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2HpackTableSize), 1u);
  Feed(0, Headers(1, SizeUpdate(1u << 30) + Request("/x"), true));
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2HpackTableSize), 2u);
  uint32_t id = 3;
  double ns = 0;
  for (int r = 0; r < 500; ++r) {
    std::string c;
    for (int i = 0; i < 16; ++i, id += 2)
      c += Headers(id,
                   Request("/fill") + LitInc(0, std::string(900, 'v'),
                                             "x-big-" + std::to_string(i)),
                   true);
    ns += Flood(0, c, 1);
  }
  EXPECT_EQ(obs_.requests, 1u + 500 * 16);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2HpackError), 0u);
  Report("hpack table size", ns / 500);
}

TEST_F(HostileHttp2Test, RapidResetIsCountedAndHoldsNothing) {
  // CVE-2023-44487: open and cancel at once, again and again.
  const int kRounds = 2000, kPerRound = 50;
  double ns = 0;
  uint32_t id = 1;
  for (int r = 0; r < kRounds; ++r) {
    std::string c;
    for (int i = 0; i < kPerRound; ++i, id += 2)
      c += Headers(id, Request("/reset"), false) + RstStream(id);
    ns += Flood(0, c, 1);
  }
  EXPECT_EQ(S().open_streams(), 0u);
  EXPECT_EQ(obs_.requests, size_t{kRounds} * kPerRound);
  EXPECT_EQ(obs_.completions, obs_.requests);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2RapidReset), 1u);
  Report("rapid reset", ns / kRounds);
}

TEST_F(HostileHttp2Test, SettingsAndPingFloods) {
  std::string settings = Settings({{1, 4096}, {3, 100}, {4, 65535}, {5, 16384},
                                   {6, 8192}, {2, 0}});
  std::string ping = Frame(FrameType::kPing, 0, 0, "12345678");
  double ns = Flood(0, settings + ping, 100000);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2ControlFlood), 1u);
  ns += Flood(1, ping, 100000);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2ControlFlood), 2u);
  EXPECT_EQ(obs_.requests, 0u);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2FrameError), 0u);
  Report("settings+ping flood", ns / 2);
}

}  // namespace
}  // namespace tokenwatch::http2
