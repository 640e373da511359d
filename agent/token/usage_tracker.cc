#include "agent/token/usage_tracker.h"

#include <utility>
#include <vector>

namespace tokenwatch::token {

// The uses of one request, waiting for its response.
class UsageTracker::PendingUses : public analyzer::PendingRequest {
 public:
  explicit PendingUses(output::EventFolder* folder) : folder_(folder) {}
  void Complete(const analyzer::Completion& done) override {
    for (output::UsageRecord& u : uses) {
      u.status = done.status;
      u.grpc_status = done.grpc_status;
      folder_->Add(std::move(u));
    }
    uses.clear();
  }
  std::vector<output::UsageRecord> uses;

 private:
  output::EventFolder* folder_;
};

// `path` with each token found in it replaced by "[token:<first 8 hex
// digits of its fingerprint>]": the event says which token, not what it is.
std::string UsageTracker::RedactedPath(
    std::string_view path, const std::vector<output::UsageRecord>& uses) {
  std::string out;
  size_t done = 0;  // bytes of `path` copied or replaced
  for (size_t i = 0; i < extraction_.tokens.size(); ++i) {
    const FoundToken& found = extraction_.tokens[i];
    if (found.location != v1::TOKEN_LOCATION_PATH) continue;
    // Spans point into the request target, in order of appearance.
    size_t at = static_cast<size_t>(found.span.data() - path.data());
    if (at < done || at + found.span.size() > path.size()) continue;
    out.append(path.substr(done, at - done));
    out.append("[token:").append(uses[i].token->info.fp().substr(0, 8));
    out.push_back(']');
    done = at + found.span.size();
  }
  out.append(path.substr(done));
  return out;
}

std::unique_ptr<analyzer::PendingRequest> UsageTracker::OnRequest(
    const analyzer::Request& request) {
  extractor_->Extract(request, &extraction_);
  if (extraction_.tokens.empty()) return nullptr;

  const analyzer::Endpoint& client = *request.client;
  const analyzer::Endpoint& server = *request.server;
  auto pending = std::make_unique<PendingUses>(folder_);
  pending->uses.reserve(extraction_.tokens.size());
  bool in_path = false, in_host = false;
  for (const FoundToken& found : extraction_.tokens) {
    ++stats_->token_uses;
    output::UsageRecord& u = pending->uses.emplace_back();
    u.ts_us = u.last_ts_us = request.ts_us;
    u.location = found.location;
    u.param.assign(found.param);
    u.token = tokens_->Lookup(found.value);
    in_path |= found.location == v1::TOKEN_LOCATION_PATH;
    in_host |= found.location == v1::TOKEN_LOCATION_HOST;
  }

  auto req = std::make_shared<output::RequestInfo>();
  req->agent = agent_id_;
  // A Host that is a token names no service: attribute by address, so the
  // token reaches neither the event nor the collector's metric labels.
  std::string_view host = in_host ? std::string_view() : request.Host();
  if (last_.generation != attributor_->generation() ||
      last_.port != server.port || last_.ip != server.ip ||
      last_.host != host) {
    last_.generation = attributor_->generation();
    last_.host.assign(host);
    last_.ip.assign(server.ip);
    last_.port = server.port;
    last_.service = attributor_->Attribute(host, server.ip, server.port);
    last_.server = service::Attributor::JoinHostPort(server.ip, server.port);
  }
  req->service = last_.service;
  req->method.assign(request.method);
  std::string_view path = Extractor::PathOf(request.target);
  if (in_path) {
    req->path = RedactedPath(path, pending->uses);
  } else {
    req->path.assign(path);
  }
  req->client = client.ip;
  req->server = last_.server;
  req->protocol = analyzer::ProtocolName(request.protocol);
  req->source = analyzer::SourceName(request.source);
  const analyzer::Process* process =
      client.process ? client.process.get() : server.process.get();
  if (process != nullptr) {
    req->pid = process->pid;
    req->comm = process->comm;
    req->exe = process->exe;
  }
  for (output::UsageRecord& u : pending->uses) u.request = req;
  return pending;
}

}  // namespace tokenwatch::token
