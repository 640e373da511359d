// The HTTP/1.x analyzer for one connection: a parser per direction,
// requests paired with their responses in order (pipelining included).
// Each request is raised to a TransactionObserver and completed with its
// response's status; the analyzer knows nothing of tokens.
#ifndef TOKENWATCH_AGENT_HTTP_SESSION_H_
#define TOKENWATCH_AGENT_HTTP_SESSION_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "agent/analyzer/stream.h"
#include "agent/analyzer/transaction.h"
#include "agent/http/parser.h"
#include "agent/stats.h"

namespace tokenwatch::http {

// Where a connection leaves HTTP/1: the owner of the session (the
// protocol detector) hears of an h2c upgrade and gets the tunnel's bytes.
class ProtocolSwitch {
 public:
  virtual ~ProtocolSwitch() = default;
  // A 101 answered `Upgrade: h2c`: HTTP/2 follows in both directions, and
  // the upgrade request is its stream 1 (RFC 7540 3.2). `observed` (may be
  // null) is that request's, to complete with stream 1's response.
  virtual void OnHttp2Upgrade(
      int client_dir, std::unique_ptr<analyzer::PendingRequest> observed) = 0;
  // A CONNECT was answered 2xx: the tunnel's bytes may be any protocol,
  // cleartext HTTP included (a proxy's client speaking to its target).
  virtual void OnConnectTunnel(int client_dir) = 0;
  // Bytes HTTP/1 no longer parses (after CONNECT 2xx, 101, a preface).
  virtual void OnTunnelData(int dir, const uint8_t* data, size_t len) = 0;
};

// What every session of one pipeline shares.
struct SessionContext {
  size_t max_header_bytes = 64 * 1024;
  size_t max_pending_requests = 64;
  AgentStats* stats = nullptr;
  analyzer::TransactionObserver* observer = nullptr;
  const analyzer::PacketClock* clock = nullptr;
  analyzer::Source source = analyzer::Source::kPcap;
  MessageHead head_scratch;  // shared by every parser of the pipeline
};

class HttpSession : public analyzer::StreamHandler, public Handler {
 public:
  using Endpoint = analyzer::Endpoint;
  // Direction 0 is the side that sent the flow's first packet.
  HttpSession(SessionContext* ctx, Endpoint side0, Endpoint side1);
  ~HttpSession() override = default;

  // analyzer::StreamHandler. The client is known from the handshake;
  // otherwise the first message head decides.
  void SetClientSide(int dir) override;
  void OnData(int dir, const uint8_t* data, size_t len) override;
  void OnGap(int dir, uint64_t len) override;
  void StartResync(int dir) override { parsers_[dir].StartResync(); }
  // End of connection: requests still waiting complete without status; a
  // head cut off by the end is counted (HttpParser::Finish).
  void Close() override;

  // Handler (the parsers' callbacks).
  BodyRule OnMessageHead(HttpParser& parser, const MessageHead& head) override;
  void OnLostSync(HttpParser& parser) override;
  void OnOpaqueProtocol(HttpParser& parser) override {
    parsers_[&parser == &parsers_[0] ? 1 : 0].EnterTunnel();
  }
  void OnTunnelData(HttpParser& parser, const uint8_t* data,
                    size_t len) override;

  // Who hears of an upgrade and gets tunnel bytes; without one they are
  // counted as undecoded.
  void set_protocol_switch(ProtocolSwitch* to) { switch_ = to; }

 private:
  struct Pending {
    bool tracked = true;           // false once answered (or never tracked)
    uint32_t untracked_after = 0;  // untracked requests queued behind it
    bool is_head = false;
    bool is_connect = false;
    bool upgrade_h2c = false;  // Upgrade: h2c (RFC 7540 3.2)
    std::unique_ptr<analyzer::PendingRequest> observed;  // may be null
  };
  BodyRule OnRequest(int dir, const MessageHead& head);
  BodyRule OnResponse(int dir, const MessageHead& head);
  void Complete(Pending& p, uint32_t status);
  // Every waiting request completes without a status.
  void CompletePending();

  SessionContext* ctx_;
  Endpoint ends_[2];
  int client_ = -1;  // direction of the client, -1 while unknown
  HttpParser parsers_[2];
  std::vector<Pending> pending_;  // usually 0 or 1: no deque block per flow
  ProtocolSwitch* switch_ = nullptr;
};

// The HTTP/1 analyzer as the stream layer sees it: one session per
// connection, all sharing `ctx`, which must outlive them.
class Http1AnalyzerFactory : public analyzer::StreamHandlerFactory {
 public:
  explicit Http1AnalyzerFactory(SessionContext* ctx) : ctx_(ctx) {}
  std::unique_ptr<analyzer::StreamHandler> Create(
      analyzer::Endpoint side0, analyzer::Endpoint side1) override {
    return std::make_unique<HttpSession>(ctx_, std::move(side0),
                                         std::move(side1));
  }

 private:
  SessionContext* ctx_;
};

}  // namespace tokenwatch::http

#endif  // TOKENWATCH_AGENT_HTTP_SESSION_H_
