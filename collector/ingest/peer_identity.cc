#include "collector/ingest/peer_identity.h"

#include <grpc/grpc_security_constants.h>

#include <algorithm>

namespace tokenwatch::collector {

std::vector<std::string> PeerAgentNames(const grpc::AuthContext& context) {
  std::vector<std::string> names;
  if (!context.IsPeerAuthenticated()) return names;
  for (const char* property :
       {GRPC_X509_CN_PROPERTY_NAME, GRPC_PEER_DNS_PROPERTY_NAME,
        GRPC_PEER_URI_PROPERTY_NAME}) {
    for (const grpc::string_ref& v : context.FindPropertyValues(property))
      names.emplace_back(v.data(), v.size());
  }
  return names;
}

bool MaySpeakFor(const std::vector<std::string>& names,
                 const std::string& agent_id) {
  return !agent_id.empty() &&
         std::find(names.begin(), names.end(), agent_id) != names.end();
}

}  // namespace tokenwatch::collector
