// The token layer's view of the traffic: it consumes the transactions that
// protocol analyzers raise, finds the tokens each request carries, decodes
// them once (TokenCache), attributes the request to a service, and hands
// every token use, completed with the response's status, to the event
// folder. It knows no protocol: HTTP/1 and HTTP/2 requests look alike here.
#ifndef TOKENWATCH_AGENT_TOKEN_USAGE_TRACKER_H_
#define TOKENWATCH_AGENT_TOKEN_USAGE_TRACKER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/analyzer/transaction.h"
#include "agent/output/event_folder.h"
#include "agent/service/attribution.h"
#include "agent/stats.h"
#include "agent/token/extractor.h"
#include "agent/token/token_cache.h"

namespace tokenwatch::token {

class UsageTracker : public analyzer::TransactionObserver {
 public:
  // Every pointer must outlive the tracker; the pointees may be replaced
  // in place (a config reload) between two requests.
  UsageTracker(std::string agent_id, const Extractor* extractor,
               TokenCache* tokens, const service::Attributor* attributor,
               output::EventFolder* folder, AgentStats* stats)
      : agent_id_(std::move(agent_id)),
        extractor_(extractor),
        tokens_(tokens),
        attributor_(attributor),
        folder_(folder),
        stats_(stats) {}

  std::unique_ptr<analyzer::PendingRequest> OnRequest(
      const analyzer::Request& request) override;

 private:
  class PendingUses;
  std::string RedactedPath(std::string_view path,
                           const std::vector<output::UsageRecord>& uses);

  std::string agent_id_;
  const Extractor* extractor_;
  TokenCache* tokens_;
  const service::Attributor* attributor_;
  output::EventFolder* folder_;
  AgentStats* stats_;
  Extraction extraction_;  // scratch for the request being handled
  // The last attribution: a connection's requests name the same host and
  // server, so it is worked out once (until the attributor is replaced).
  struct LastService {
    uint64_t generation = 0;  // of the attributor that answered; 0: none
    std::string host, ip;
    uint16_t port = 0;
    std::string service, server;
  };
  LastService last_;
};

}  // namespace tokenwatch::token

#endif  // TOKENWATCH_AGENT_TOKEN_USAGE_TRACKER_H_
