#include "agent/http/session.h"

#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace tokenwatch::http {

HttpSession::HttpSession(SessionContext* ctx, Endpoint side0, Endpoint side1)
    : ctx_(ctx),
      ends_{std::move(side0), std::move(side1)},
      parsers_{HttpParser(Role::kUnknown, this, ctx->stats,
                          ctx->max_header_bytes, &ctx->head_scratch),
               HttpParser(Role::kUnknown, this, ctx->stats,
                          ctx->max_header_bytes, &ctx->head_scratch)} {}

void HttpSession::SetClientSide(int dir) {
  if (client_ >= 0) return;
  client_ = dir;
  parsers_[dir].set_role(Role::kRequest);
  parsers_[1 - dir].set_role(Role::kResponse);
}

void HttpSession::OnData(int dir, const uint8_t* data, size_t len) {
  parsers_[dir].Feed(data, len);
}

void HttpSession::OnGap(int dir, uint64_t len) { parsers_[dir].OnGap(len); }

BodyRule HttpSession::OnMessageHead(HttpParser& parser,
                                    const MessageHead& head) {
  int dir = &parser == &parsers_[0] ? 0 : 1;
  if (client_ < 0) SetClientSide(head.is_request ? dir : 1 - dir);
  if (head.is_request != (dir == client_)) {
    // A request from the server side (or the reverse): the guess was wrong
    // or the traffic is not HTTP as we know it. Ignore the message.
    return BodyRule::kFromHeaders;
  }
  return head.is_request ? OnRequest(dir, head) : OnResponse(dir, head);
}

BodyRule HttpSession::OnRequest(int dir, const MessageHead& head) {
  ++ctx_->stats->http_requests;
  // Over the bound, a request is not tracked: its token uses are reported
  // now without a status, and one response slot is reserved behind the last
  // tracked request so later responses still pair with the right requests.
  bool untracked = pending_.size() >= ctx_->max_pending_requests;
  Pending overflow;
  Pending& p = untracked ? overflow : pending_.emplace_back();
  if (untracked) {
    ctx_->stats->Count(Drop::kPendingRequests);
    ++pending_.back().untracked_after;
  }
  p.is_head = head.method == "HEAD";
  p.is_connect = head.method == "CONNECT";
  p.upgrade_h2c = switch_ != nullptr &&
                  util::ContainsIgnoreCase(head.Find("upgrade"), "h2c");

  analyzer::Request req = ToRequest(head);
  req.source = ctx_->source;
  req.client = &ends_[dir];
  req.server = &ends_[1 - dir];
  req.ts_us = ctx_->clock->now_us;
  p.observed = ctx_->observer->OnRequest(req);

  if (untracked) {
    Complete(p, 0);
    return BodyRule::kFromHeaders;
  }
  if (head.version_major == 0) {
    // HTTP/0.9: the answer is a bare body up to the close.
    Complete(p, 0);
    pending_.pop_back();
    parsers_[1 - dir].EnterTunnel();
    return BodyRule::kNone;
  }
  // A CONNECT tunnels only once the proxy says 2xx; until then the client
  // may go on (or the proxy refuses) in HTTP.
  return BodyRule::kFromHeaders;
}

BodyRule HttpSession::OnResponse(int dir, const MessageHead& head) {
  ++ctx_->stats->http_responses;
  int status = head.status;
  if (status >= 100 && status < 200 && status != 101) {
    return BodyRule::kNone;  // interim (100 Continue): the final one follows
  }
  if (pending_.empty()) {
    ctx_->stats->Count(Anomaly::kHttpResponseWithoutRequest);
    if (status == 101) return BodyRule::kTunnel;
    return status == 204 || status == 304 ? BodyRule::kNone
                                          : BodyRule::kFromHeaders;
  }
  Pending& front = pending_.front();
  if (!front.tracked) {
    // The response of a request we could not track: consume the slot.
    if (--front.untracked_after == 0) pending_.erase(pending_.begin());
    return status == 204 || status == 304 ? BodyRule::kNone
                                          : BodyRule::kFromHeaders;
  }
  if (status == 101 && front.upgrade_h2c) {
    // HTTP/2 from here; the request's answer comes on stream 1.
    switch_->OnHttp2Upgrade(client_, std::move(front.observed));
  }
  Complete(front, static_cast<uint32_t>(status));
  bool is_head = front.is_head, is_connect = front.is_connect;
  front.tracked = false;
  if (front.untracked_after == 0) pending_.erase(pending_.begin());
  if (is_connect && status >= 200 && status < 300 && switch_ != nullptr) {
    switch_->OnConnectTunnel(client_);
  }
  if (status == 101 || (is_connect && status >= 200 && status < 300)) {
    parsers_[1 - dir].EnterTunnel();
    return BodyRule::kTunnel;
  }
  if (is_head || status == 204 || status == 304) return BodyRule::kNone;
  return BodyRule::kFromHeaders;
}

void HttpSession::Complete(Pending& p, uint32_t status) {
  if (p.observed == nullptr) return;
  p.observed->Complete({status, ctx_->clock->now_us});
  p.observed.reset();
}

void HttpSession::OnLostSync(HttpParser& parser) {
  if (client_ < 0 || &parser != &parsers_[1 - client_]) return;
  // Responses were lost: which request the next one answers is unknown.
  // Report what is pending without a status rather than shift every later
  // status onto the wrong request.
  CompletePending();
}

void HttpSession::OnTunnelData(HttpParser& parser, const uint8_t* data,
                               size_t len) {
  int dir = &parser == &parsers_[0] ? 0 : 1;
  if (switch_ != nullptr) {
    switch_->OnTunnelData(dir, data, len);
  } else {
    ctx_->stats->undecoded_bytes += len;
  }
}

void HttpSession::Close() {
  parsers_[0].Finish();
  parsers_[1].Finish();
  CompletePending();
}

void HttpSession::CompletePending() {
  for (Pending& p : pending_) Complete(p, 0);
  pending_.clear();
}

}  // namespace tokenwatch::http
