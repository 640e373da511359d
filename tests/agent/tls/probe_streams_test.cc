// The TLS probe's user-space half without a kernel: probe records made by
// hand (as the ring buffer would deliver them) through the pipeline, so
// every rule of connection identity and binding is tested deterministically
// (issue 14, "a recorded probe stream replays through the user-space half").
#include "agent/tls/probe_streams.h"

#include <gtest/gtest.h>

#include "agent/output/event_json.h"
#include "agent/output/event_sink.h"
#include "agent/pipeline.h"
#include "tests/agent/testing/jwt_builder.h"

namespace tokenwatch::tls {
namespace {

using tokenwatch::testing::MakeJwt;

constexpr int64_t kT0 = 1764500000000000;  // before the JWT's exp

analyzer::Endpoint Ep(const char* ip, uint16_t port) {
  analyzer::Endpoint e;
  e.ip = ip;
  e.port = port;
  return e;
}

class ProbeStreamsTest : public ::testing::Test {
 protected:
  ProbeStreamsTest() {
    cfg_.agent.fold_window = absl::ZeroDuration();
    cfg_.services.push_back({"orders", {{"orders.internal"}, {}}, {}});
    fp_ = *token::Fingerprinter::Create("key");
    pipeline_ = std::make_unique<Pipeline>(cfg_, "host-a", fp_.get(), &sink_);
  }

  // A record of process `pid` on SSL* `ssl`; `local`/`remote` empty: the
  // socket is not known yet.
  Chunk Data(uint32_t pid, uint64_t ssl, Chunk::Dir dir, std::string bytes,
             analyzer::Endpoint local = {}, analyzer::Endpoint remote = {}) {
    Chunk c;
    c.kind = Chunk::Kind::kData;
    c.dir = dir;
    c.ts_us = kT0 + (++tick_) * 1000;
    c.ssl = ssl;
    c.pid = pid;
    c.comm = pid == kServer ? "nginx" : "curl";
    c.bound = !local.ip.empty();
    c.local = std::move(local);
    c.remote = std::move(remote);
    c.orig_len = static_cast<uint32_t>(bytes.size());
    c.data = std::move(bytes);
    return c;
  }
  Chunk Bind(uint32_t pid, uint64_t ssl, analyzer::Endpoint local,
             analyzer::Endpoint remote) {
    Chunk c = Data(pid, ssl, Chunk::Dir::kWrite, "", std::move(local),
                   std::move(remote));
    c.kind = Chunk::Kind::kBind;
    return c;
  }
  Chunk Close(uint32_t pid, uint64_t ssl) {
    Chunk c = Data(pid, ssl, Chunk::Dir::kWrite, "");
    c.kind = Chunk::Kind::kClose;
    return c;
  }
  std::string Request(const std::string& path) {
    return "GET " + path +
           " HTTP/1.1\r\nHost: orders.internal\r\nAuthorization: Bearer " +
           jwt_ + "\r\n\r\n";
  }
  static std::string Ok(int status = 200) {
    return "HTTP/1.1 " + std::to_string(status) +
           " X\r\nContent-Length: 2\r\n\r\nok";
  }
  void Feed(const Chunk& c) { pipeline_->OnTlsChunk(c); }

  static constexpr uint32_t kServer = 100, kClient = 200;
  const analyzer::Endpoint server_ = Ep("10.0.0.5", 443);
  const analyzer::Endpoint client_ = Ep("10.0.3.7", 51000);
  config::Config cfg_;
  std::unique_ptr<token::Fingerprinter> fp_;
  output::VectorSink sink_;
  std::unique_ptr<Pipeline> pipeline_;
  std::string jwt_ = MakeJwt(R"({"sub":"alice","exp":1764501300})");
  int tick_ = 0;
};

// nginx-style: every call knows its socket. The server reads the request,
// writes the answer: one use, with source, process, client and status.
TEST_F(ProbeStreamsTest, ServerSideUseCarriesSourceProcessAndStatus) {
  Feed(Data(kServer, 0xa, Chunk::Dir::kRead, Request("/v1/orders/1"), server_,
            client_));
  Feed(Data(kServer, 0xa, Chunk::Dir::kWrite, Ok(), server_, client_));
  pipeline_->Finish();
  ASSERT_EQ(sink_.events.size(), 1u);
  const v1::UsageEvent& e = sink_.events[0];
  EXPECT_EQ(e.source(), "tls_probe");
  EXPECT_EQ(e.protocol(), "http/1.1");
  EXPECT_EQ(e.service(), "orders");
  EXPECT_EQ(e.client(), "10.0.3.7");
  EXPECT_EQ(e.server(), "10.0.0.5:443");
  EXPECT_EQ(e.status(), 200u);
  EXPECT_EQ(e.process().pid(), kServer);
  EXPECT_EQ(e.process().comm(), "nginx");
  EXPECT_EQ(pipeline_->stats().tls_probe_connections, 1u);
}

// node-style: a write whose socket is not known yet is held until the BIND
// the kernel half sends when the thread's next send reveals it.
TEST_F(ProbeStreamsTest, UnboundWritesWaitForTheirBindInOrder) {
  std::string req = Request("/v1/orders/2");
  Feed(Data(kClient, 0xb, Chunk::Dir::kWrite, req.substr(0, 10)));
  Feed(Data(kClient, 0xb, Chunk::Dir::kWrite, req.substr(10)));
  EXPECT_TRUE(sink_.events.empty());
  Feed(Bind(kClient, 0xb, client_, server_));
  Feed(Data(kClient, 0xb, Chunk::Dir::kRead, Ok(401), client_, server_));
  pipeline_->Finish();
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].path(), "/v1/orders/2");
  EXPECT_EQ(sink_.events[0].status(), 401u);
  EXPECT_EQ(sink_.events[0].client(), "10.0.3.7");
  EXPECT_EQ(sink_.events[0].process().comm(), "curl");
}

// Client and server on this host, both probed: the request is one use.
TEST_F(ProbeStreamsTest, BothEndsOnThisHostAreOneUse) {
  std::string req = Request("/v1/orders/3");
  Feed(Data(kClient, 0xc, Chunk::Dir::kWrite, req, client_, server_));
  Feed(Data(kServer, 0xd, Chunk::Dir::kRead, req, server_, client_));
  Feed(Data(kServer, 0xd, Chunk::Dir::kWrite, Ok(), server_, client_));
  Feed(Data(kClient, 0xc, Chunk::Dir::kRead, Ok(), client_, server_));
  pipeline_->Finish();
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].status(), 200u);
  EXPECT_EQ(pipeline_->stats().tls_probe_both_ends, 1u);
}

// An SSL* freed and reused for another connection starts afresh: no
// request of the first connection is paired with the second's answer.
TEST_F(ProbeStreamsTest, ReusedSslStartsANewConnection) {
  Feed(Data(kServer, 0xe, Chunk::Dir::kRead, Request("/a"), server_, client_));
  Feed(Data(kServer, 0xe, Chunk::Dir::kRead, Request("/b"), server_,
            Ep("10.0.3.8", 52000)));
  Feed(Data(kServer, 0xe, Chunk::Dir::kWrite, Ok(), server_,
            Ep("10.0.3.8", 52000)));
  pipeline_->Finish();
  ASSERT_EQ(sink_.events.size(), 2u);
  EXPECT_EQ(sink_.events[0].path(), "/a");
  EXPECT_EQ(sink_.events[0].status(), 0u);  // its connection ended unanswered
  EXPECT_EQ(sink_.events[1].path(), "/b");
  EXPECT_EQ(sink_.events[1].status(), 200u);
  EXPECT_EQ(sink_.events[1].client(), "10.0.3.8");
}

// SSL_free ends the connection: what is pending completes without status,
// and the table keeps nothing.
TEST_F(ProbeStreamsTest, CloseEndsTheConnection) {
  Feed(Data(kServer, 0xf, Chunk::Dir::kRead, Request("/c"), server_, client_));
  Feed(Close(kServer, 0xf));
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].status(), 0u);
}

// A chunk cut in the kernel (a call over the per-record cap) is a gap: the
// parser resynchronises and the next request is still seen.
TEST_F(ProbeStreamsTest, TruncatedChunkIsAGapAndCounted) {
  Chunk big = Data(kServer, 0x10, Chunk::Dir::kRead,
                   "POST /upload HTTP/1.1\r\nHost: orders.internal\r\n"
                   "Content-Length: 40000\r\n\r\n" +
                       std::string(100, 'x'),
                   server_, client_);
  big.truncated = true;
  big.orig_len = static_cast<uint32_t>(big.data.size()) + 39900;
  Feed(big);
  Feed(Data(kServer, 0x10, Chunk::Dir::kRead, Request("/after"), server_,
            client_));
  pipeline_->Finish();
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].path(), "/after");
  EXPECT_EQ(
      pipeline_->stats().drops[static_cast<size_t>(Drop::kTlsProbeTruncated)],
      1u);
}

// Bounds: bytes held for an unbound SSL* and connections tracked.
TEST(ProbeStreamsBoundsTest, UnboundBytesAndConnectionsAreBoundedAndCounted) {
  struct Null : analyzer::StreamHandlerFactory {
    std::unique_ptr<analyzer::StreamHandler> Create(
        analyzer::Endpoint, analyzer::Endpoint) override {
      return nullptr;
    }
  } factory;
  AgentStats stats;
  ProbeStreams streams(&factory, &stats,
                       {/*max_connections=*/4,
                        /*max_unbound_bytes=*/1000,
                        /*idle_timeout_us=*/1000000},
                       [](uint32_t) { return std::string("/bin/x"); });
  Chunk c;
  c.kind = Chunk::Kind::kData;
  c.pid = 1;
  c.ssl = 1;
  c.data.assign(600, 'a');
  streams.OnChunk(c);
  streams.OnChunk(c);  // 1200 > 1000: dropped
  EXPECT_EQ(stats.drops[static_cast<size_t>(Drop::kTlsProbeUnbound)], 1u);
  for (uint64_t ssl = 2; ssl <= 10; ++ssl) {
    c.ssl = ssl;
    c.data = "x";
    streams.OnChunk(c);
  }
  EXPECT_EQ(streams.size(), 4u);
  EXPECT_EQ(stats.drops[static_cast<size_t>(Drop::kTlsProbeConnections)], 6u);
  c.ts_us = 10'000'000;
  streams.Expire(c.ts_us);
  EXPECT_EQ(streams.size(), 0u);
}

}  // namespace
}  // namespace tokenwatch::tls
