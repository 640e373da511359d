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

std::unique_ptr<analyzer::PendingRequest> UsageTracker::OnRequest(
    const analyzer::Request& request) {
  extractor_->Extract(request, &extraction_);
  if (extraction_.tokens.empty()) return nullptr;

  const analyzer::Endpoint& client = *request.client;
  const analyzer::Endpoint& server = *request.server;
  auto req = std::make_shared<output::RequestInfo>();
  req->agent = agent_id_;
  req->service = attributor_->Attribute(request.Host(), server.ip, server.port);
  req->method.assign(request.method);
  req->path.assign(Extractor::PathOf(request.target));
  req->client = client.ip;
  req->server = service::Attributor::JoinHostPort(server.ip, server.port);
  req->protocol = analyzer::ProtocolName(request.protocol);
  req->source = analyzer::SourceName(request.source);

  auto pending = std::make_unique<PendingUses>(folder_);
  pending->uses.reserve(extraction_.tokens.size());
  for (const FoundToken& found : extraction_.tokens) {
    ++stats_->token_uses;
    output::UsageRecord& u = pending->uses.emplace_back();
    u.ts_us = u.last_ts_us = request.ts_us;
    u.location = found.location;
    u.param.assign(found.param);
    u.request = req;
    u.token = tokens_->Lookup(found.value);
  }
  return pending;
}

}  // namespace tokenwatch::token
