// The HTTP/2 analyzer for one connection (RFC 9113): a frame parser per
// direction, an HPACK decoder per direction (hpack_decoder.h), and the
// streams, each pairing the client's request HEADERS with the server's
// response HEADERS and trailers. Each request is raised to the
// TransactionObserver when its header block ends, as Protocol::kHttp2 or,
// with content-type application/grpc*, kGrpc; it completes when the
// response ends (for gRPC with the trailers' grpc-status), on RST_STREAM,
// on GOAWAY for streams the server never processed, or at the close.
// DATA is skipped by length, never copied. Every bound is counted when hit.
#ifndef TOKENWATCH_AGENT_HTTP2_SESSION_H_
#define TOKENWATCH_AGENT_HTTP2_SESSION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/analyzer/stream.h"
#include "agent/analyzer/transaction.h"
#include "agent/http2/frame.h"
#include "agent/http2/hpack_decoder.h"
#include "agent/stats.h"

namespace tokenwatch::http2 {

// What every HTTP/2 session of one pipeline shares: limits, consumers, and
// scratch space (one thread).
struct Http2Context {
  // One header block (HEADERS or PUSH_PROMISE + CONTINUATION) on the wire;
  // beyond it the block is dropped (CONTINUATION floods).
  size_t max_header_bytes = 64 * 1024;
  // Decoded fields kept per block (name + value + 32 each).
  size_t max_header_list_bytes = 64 * 1024;
  // Streams tracked at once per connection; beyond, a request's uses are
  // reported at once without a status.
  size_t max_streams = 128;
  // HPACK dynamic table per direction, whatever the peer announces.
  size_t max_table_bytes = 64 * 1024;
  // CONTINUATION frames in one block before it counts as a flood.
  uint32_t max_continuations = 256;
  // Streams the client resets before any answer, per connection, before
  // it counts as a rapid reset attack.
  uint32_t rapid_reset_threshold = 100;
  // SETTINGS, PING and empty frames in a row without a header block.
  uint32_t control_flood_threshold = 1000;

  AgentStats* stats = nullptr;
  analyzer::TransactionObserver* observer = nullptr;
  const analyzer::PacketClock* clock = nullptr;
  analyzer::Source source = analyzer::Source::kPcap;
  HeaderList headers_scratch;                 // the block being handled
  std::vector<analyzer::Header> view_scratch;  // its regular fields
};

class Http2Session : public analyzer::StreamHandler {
 public:
  using Endpoint = analyzer::Endpoint;
  // Direction 0 is the side that sent the flow's first packet. With
  // `client_dir` >= 0 the client is known (handshake, preface, upgrade).
  Http2Session(Http2Context* ctx, Endpoint side0, Endpoint side1,
               int client_dir = -1);
  ~Http2Session() override;

  // After `Upgrade: h2c` answered by 101 (RFC 9113 3.2 of RFC 7540): the
  // upgrade request is stream 1, half-closed from the client; its response
  // arrives on stream 1. `observed` (may be null) completes with it.
  void AdoptUpgradeRequest(std::unique_ptr<analyzer::PendingRequest> observed);

  // analyzer::StreamHandler.
  void SetClientSide(int dir) override;
  void OnData(int dir, const uint8_t* data, size_t len) override;
  void OnGap(int dir, uint64_t len) override;
  void StartResync(int dir) override;
  void Close() override;

  // Bytes this connection holds (buffers, streams, both HPACK tables), by
  // its own accounting: what the hostile tests bound.
  size_t MemoryBytes() const;
  size_t open_streams() const { return streams_.size(); }

 private:
  enum class State : uint8_t {
    kPreface,  // client: the 24 preface bytes (prior knowledge, upgrade)
    kHeader,   // the 9-byte frame header
    kPayload,  // a frame's payload: buffered, or skipped
    kResync,   // searching for a frame boundary
  };
  struct Direction {
    State state = State::kHeader;
    uint8_t hdr[kFrameHeaderBytes];
    size_t hdr_have = 0;
    size_t preface_have = 0;
    FrameHeader frame;
    uint32_t remaining = 0;    // payload bytes still to come
    uint32_t keep = 0;         // of those, bytes to buffer (then skip)
    std::string payload;       // a frame payload that spans segments
    std::string resync_buf;    // bytes searched for a frame boundary
    // The header block being assembled (HEADERS/PUSH_PROMISE + CONT.).
    std::string block;
    bool in_block = false;
    bool block_dropped = false;
    bool block_end_stream = false;
    bool block_is_push = false;
    uint32_t block_stream = 0;
    uint32_t continuations = 0;
    // SETTINGS_HEADER_TABLE_SIZE this side announced, applied to the other
    // side's decoder when that side acknowledges.
    std::optional<uint32_t> announced_table_size;
    uint32_t control_run = 0;  // control frames since the last block
    bool flood_counted = false;
    std::unique_ptr<HpackDecoder> hpack;
  };
  struct Stream {
    uint32_t id = 0;
    bool grpc = false;
    bool final_head = false;  // the response's final HEADERS was seen
    bool answered = false;    // anything from the server on it
    uint32_t status = 0;
    std::optional<uint32_t> grpc_status;
    std::unique_ptr<analyzer::PendingRequest> observed;
  };

  size_t FeedPreface(Direction& d, const uint8_t* p, size_t n);
  size_t FeedHeader(int dir, const uint8_t* p, size_t n);
  size_t FeedPayload(int dir, const uint8_t* p, size_t n);
  size_t FeedResync(int dir, const uint8_t* p, size_t n);
  void BeginFrame(int dir);
  // A frame whose payload (or its first `keep` bytes) is complete.
  void OnFrame(int dir, const uint8_t* payload, size_t len);
  void OnHeadersFrame(int dir, const uint8_t* p, size_t len);
  void OnContinuation(int dir, const uint8_t* p, size_t len);
  // A complete header block: decoded, then raised as a request or paired
  // with its stream as a response or trailers.
  void EndBlock(int dir, const uint8_t* block, size_t len);
  void OnSettings(int dir, const uint8_t* p, size_t len);
  void OnRstStream(int dir);
  void OnGoaway(int dir, const uint8_t* p, size_t len);
  void OnEndStream(int dir, uint32_t stream);
  void CountControl(int dir);
  void LoseSync(int dir, Anomaly why);

  void OnRequestBlock(int dir, uint32_t stream_id, bool end_stream);
  void OnResponseBlock(int dir, uint32_t stream_id, bool end_stream);
  Stream* Find(uint32_t id);
  void Complete(Stream& s);
  void Erase(uint32_t id);

  Http2Context* ctx_;
  Endpoint ends_[2];
  int client_ = -1;
  Direction dirs_[2];
  std::vector<Stream> streams_;  // open streams; few, so a vector
  uint32_t resets_before_answer_ = 0;
  bool rapid_reset_counted_ = false;
};

// The HTTP/2 analyzer as the stream layer sees it, for connections known to
// speak HTTP/2 (tests, the fuzzer). The pipeline's detector
// (agent/protocols/detector.h) creates sessions itself.
class Http2AnalyzerFactory : public analyzer::StreamHandlerFactory {
 public:
  explicit Http2AnalyzerFactory(Http2Context* ctx) : ctx_(ctx) {}
  std::unique_ptr<analyzer::StreamHandler> Create(
      analyzer::Endpoint side0, analyzer::Endpoint side1) override {
    return std::make_unique<Http2Session>(ctx_, std::move(side0),
                                          std::move(side1));
  }

 private:
  Http2Context* ctx_;
};

}  // namespace tokenwatch::http2

#endif  // TOKENWATCH_AGENT_HTTP2_SESSION_H_
