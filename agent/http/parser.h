// Incremental HTTP/1.0 and 1.1 parser for one direction of a connection.
// Message heads are handed to a Handler; bodies (Content-Length, chunked,
// until close) are skipped by counting, never buffered. Only a head that
// spans segments is copied, up to `max_header_bytes`.
#ifndef TOKENWATCH_AGENT_HTTP_PARSER_H_
#define TOKENWATCH_AGENT_HTTP_PARSER_H_

#include <cstdint>
#include <string>

#include "agent/http/message.h"
#include "agent/stats.h"

namespace tokenwatch::http {

enum class Role : uint8_t { kUnknown, kRequest, kResponse };

// What follows a head, as only the connection knows (it pairs responses
// with requests: a response to HEAD has no body, a 2xx to CONNECT opens a
// tunnel).
enum class BodyRule : uint8_t {
  kFromHeaders,  // Content-Length / chunked / (responses) until close
  kNone,         // HEAD responses, 1xx, 204, 304
  kTunnel,       // stop parsing this direction: CONNECT, 101 Upgrade
  kUntilClose,   // HTTP/0.9 response
};

class HttpParser;

class Handler {
 public:
  virtual ~Handler() = default;
  virtual BodyRule OnMessageHead(HttpParser& parser,
                                 const MessageHead& head) = 0;
  // The connection stopped speaking HTTP/1 on its own (an HTTP/2 preface).
  virtual void OnOpaqueProtocol(HttpParser& parser) {}
  // Framing was lost (a gap or malformed bytes): messages were skipped.
  virtual void OnLostSync(HttpParser& parser) {}
  // Bytes after the parser entered a tunnel (CONNECT 2xx, 101, an HTTP/2
  // preface): another protocol's, which this parser does not read.
  virtual void OnTunnelData(HttpParser& parser, const uint8_t* data,
                            size_t len) {}
};

class HttpParser {
 public:
  // `scratch` receives each parsed head; parsers of one thread share it
  // (a head lives only for its callback), which keeps a flow small.
  HttpParser(Role role, Handler* handler, AgentStats* stats,
             size_t max_header_bytes, MessageHead* scratch)
      : role_(role),
        handler_(handler),
        stats_(stats),
        max_header_bytes_(max_header_bytes),
        head_(scratch) {}

  void Feed(const uint8_t* data, size_t len);
  void OnGap(uint64_t len);
  // The connection ended: a head still being collected is a message given
  // up on, and is counted (kHttpIncompleteHead) rather than lost silently.
  void Finish();

  Role role() const { return role_; }
  void set_role(Role role) { role_ = role; }
  // Start by searching for a message start: the stream was picked up
  // mid-connection.
  void StartResync() {
    state_ = State::kResync;
    has_mark_ = false;
    at_line_start_ = true;
  }
  void EnterTunnel() { state_ = State::kTunnel; }
  // A CONNECT was refused: the client goes on speaking HTTP.
  void LeaveTunnel() {
    if (state_ == State::kTunnel) Reset();
  }
  bool in_tunnel() const { return state_ == State::kTunnel; }
  // The last request head was HTTP/0.9 (its response has no head).
  bool last_was_http09() const { return last_http09_; }

 private:
  enum class State : uint8_t {
    kHead,
    kResync,
    kBody,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kUntilClose,
    kTunnel,
  };

  size_t FeedHead(const uint8_t* data, size_t len);
  size_t FeedResync(const uint8_t* data, size_t len);
  size_t FeedLine(const uint8_t* data, size_t len);  // chunk size/trailers
  void OnLine(std::string_view line);
  // Parses a complete head block; false when it is not HTTP.
  bool ParseHead(std::string_view block, bool allow_http09);
  void SetBodyState(const MessageHead& head, BodyRule rule);
  void Reset() {
    state_ = State::kHead;
    ClearBuffers();
    at_line_start_ = true;
  }
  // Clears, and gives back the memory of a large head (up to
  // max_header_bytes per direction would otherwise stay with the flow).
  void ClearBuffers() {
    if (head_buf_.capacity() > 4096) std::string().swap(head_buf_);
    head_buf_.clear();
    line_buf_.clear();
  }
  void LoseSync(Anomaly why) {
    stats_->Count(why);
    handler_->OnLostSync(*this);
    ClearBuffers();
    has_mark_ = false;
    state_ = State::kResync;
    // The next byte may begin a message (a lost segment ended the last one).
    at_line_start_ = true;
  }

  Role role_;
  Handler* handler_;
  AgentStats* stats_;
  size_t max_header_bytes_;
  State state_ = State::kHead;
  bool at_line_start_ = true;
  bool last_http09_ = false;
  bool chunk_size_seen_ = false;
  bool first_line_checked_ = false;  // head_buf_'s first line seen (HTTP/0.9)
  // Two Content-Length values disagreed: the body was skipped by the
  // shorter one, and what follows is searched for a message start, so a
  // request either reading would frame is seen (smuggling, issue 13).
  bool resync_after_body_ = false;
  // ...and at the longer one's end (stream offset mark_) a message may
  // start that the resync would miss (it looks at line starts only), or
  // that the body of a request framed inside the conflict would swallow.
  bool has_mark_ = false;
  uint64_t mark_ = 0;
  uint64_t offset_ = 0;      // bytes of this direction fed so far
  uint64_t body_start_ = 0;  // offset of the byte after the head parsed last
  uint64_t remaining_ = 0;   // body or chunk bytes still to skip
  std::string head_buf_;     // a head that spans segments
  std::string line_buf_;     // a chunk-size or trailer line that spans segments
  MessageHead* head_;
};

}  // namespace tokenwatch::http

#endif  // TOKENWATCH_AGENT_HTTP_PARSER_H_
