// Which agent names a client certificate may speak for (mTLS): its
// subject CN, its SAN DNS names and its SAN URIs, compared exactly. With
// no client CA configured there is no identity and any name goes
// (docs/security.md, "Hostile clients: ingest").
#ifndef TOKENWATCH_COLLECTOR_INGEST_PEER_IDENTITY_H_
#define TOKENWATCH_COLLECTOR_INGEST_PEER_IDENTITY_H_

#include <grpcpp/security/auth_context.h>

#include <string>
#include <vector>

namespace tokenwatch::collector {

// The certificate's names: CN, SAN DNS, SAN URI (empty without a
// verified client certificate).
std::vector<std::string> PeerAgentNames(const grpc::AuthContext& context);

// Whether a peer holding `names` may send as `agent_id`.
bool MaySpeakFor(const std::vector<std::string>& names,
                 const std::string& agent_id);

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_INGEST_PEER_IDENTITY_H_
