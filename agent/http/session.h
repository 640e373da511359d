// HTTP over one TCP connection: a parser per direction, requests paired
// with their responses in order (pipelining included), and each token use
// turned into a usage event once its response status is known.
#ifndef TOKENWATCH_AGENT_HTTP_SESSION_H_
#define TOKENWATCH_AGENT_HTTP_SESSION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "agent/http/parser.h"
#include "agent/output/event_folder.h"
#include "agent/service/attribution.h"
#include "agent/stats.h"
#include "agent/token/extractor.h"
#include "agent/token/token_cache.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::http {

// What every session of one pipeline shares.
struct SessionContext {
  std::string agent_id;
  size_t max_header_bytes = 64 * 1024;
  size_t max_pending_requests = 64;
  AgentStats* stats = nullptr;
  const token::Extractor* extractor = nullptr;
  token::TokenCache* tokens = nullptr;
  const service::Attributor* attributor = nullptr;
  output::EventFolder* folder = nullptr;
  token::Extraction extraction;  // scratch for the request being handled
  int64_t now_us = 0;            // packet time of the segment being processed
  MessageHead head_scratch;      // shared by every parser of the pipeline
};

struct Endpoint {
  std::string ip;  // text form
  uint16_t port = 0;
};

class HttpSession : public Handler {
 public:
  // Direction 0 is the side that sent the flow's first packet.
  HttpSession(SessionContext* ctx, Endpoint side0, Endpoint side1);
  ~HttpSession() override = default;

  // The client is known from the handshake; otherwise the first message
  // head decides.
  void SetClientSide(int dir);
  void OnData(int dir, const uint8_t* data, size_t len);
  void OnGap(int dir, uint64_t len);
  void StartResync(int dir) { parsers_[dir].StartResync(); }
  // End of connection: requests still waiting are reported without status.
  void Close();

  BodyRule OnMessageHead(HttpParser& parser, const MessageHead& head) override;
  void OnLostSync(HttpParser& parser) override;
  void OnOpaqueProtocol(HttpParser& parser) override {
    parsers_[&parser == &parsers_[0] ? 1 : 0].EnterTunnel();
  }

 private:
  struct Pending {
    bool tracked = true;           // false once answered (or never tracked)
    uint32_t untracked_after = 0;  // untracked requests queued behind it
    bool is_head = false;
    bool is_connect = false;
    std::vector<output::UsageRecord> uses;
  };
  BodyRule OnRequest(int dir, const MessageHead& head);
  BodyRule OnResponse(int dir, const MessageHead& head);
  void Complete(Pending& p, uint32_t status);

  SessionContext* ctx_;
  Endpoint ends_[2];
  int client_ = -1;  // direction of the client, -1 while unknown
  HttpParser parsers_[2];
  std::vector<Pending> pending_;  // usually 0 or 1: no deque block per flow
};

}  // namespace tokenwatch::http

#endif  // TOKENWATCH_AGENT_HTTP_SESSION_H_
