// Classifies a bearer value and decodes a JWT's JOSE header and claims with
// simdjson. Never throws; malformed input is counted by reason.
#ifndef TOKENWATCH_AGENT_TOKEN_JWT_H_
#define TOKENWATCH_AGENT_TOKEN_JWT_H_

#include <simdjson.h>

#include <string>
#include <string_view>

#include "agent/stats.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::token {

// True for a value shaped like a JWS compact serialisation whose header is
// a JSON object ("eyJ" is base64url of `{"`): used to recognise JWTs in
// cookies and in Authorization headers without a scheme.
bool LooksLikeJwt(std::string_view value);

// The part of a token the fingerprint covers: a JWS's signing input
// (header.payload), otherwise the whole value.
std::string_view FingerprintInput(std::string_view token, v1::TokenKind kind);

class JwtDecoder {
 public:
  explicit JwtDecoder(AgentStats* stats) : stats_(stats) {}
  // Fills kind and, for a JWT, header and claims. `info->fp` is not touched.
  void Decode(std::string_view token, v1::TokenInfo* info);

 private:
  bool DecodeHeader(std::string_view json, v1::TokenInfo* info,
                    bool count_failure);
  void DecodeClaims(std::string_view json, v1::TokenInfo* info);

  AgentStats* stats_;
  simdjson::dom::parser parser_;
  std::string scratch_;
};

}  // namespace tokenwatch::token

#endif  // TOKENWATCH_AGENT_TOKEN_JWT_H_
