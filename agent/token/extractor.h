// Finds bearer tokens in a request head, in every location of SPEC "Where
// tokens are found": Authorization (Bearer, JWT, or a bare JWT), cookies
// holding a JWT, the query parameters access_token/id_token/token/jwt,
// configured headers, and the Sec-WebSocket-Protocol bearer convention;
// and, so that they can be redacted and reported, JWTs in the URL path, in
// matrix parameters and in the Host header.
#ifndef TOKENWATCH_AGENT_TOKEN_EXTRACTOR_H_
#define TOKENWATCH_AGENT_TOKEN_EXTRACTOR_H_

#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "agent/analyzer/transaction.h"
#include "agent/stats.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::token {

struct FoundToken {
  v1::TokenLocation location;
  std::string_view param;  // query parameter, cookie or header name
  std::string_view value;  // the raw token
  // PATH and HOST: the token's text as it stands in the request target
  // (or the Host value), percent-encoding included, for redaction.
  std::string_view span;
};

struct Extraction {
  std::vector<FoundToken> tokens;
  std::deque<std::string> owned;  // percent-decoded values live here
  void Clear() {
    tokens.clear();
    owned.clear();
  }
};

class Extractor {
 public:
  // `token_headers`: lower-case names of extra headers that carry tokens.
  explicit Extractor(std::vector<std::string> token_headers, AgentStats* stats)
      : token_headers_(std::move(token_headers)), stats_(stats) {}

  void Extract(const analyzer::Request& request, Extraction* out) const;

  // The path of a request target without query or fragment; absolute-form
  // targets lose their scheme and authority.
  static std::string_view PathOf(std::string_view target);
  static std::string_view QueryOf(std::string_view target);

 private:
  void FromAuthorization(std::string_view value, Extraction* out) const;
  void FromCookie(std::string_view value, Extraction* out) const;
  void FromQuery(std::string_view query, Extraction* out) const;
  void FromPath(std::string_view path, Extraction* out) const;
  // `known_b64`: the caller has checked `value` is a b64token.
  void Add(v1::TokenLocation loc, std::string_view param,
           std::string_view value, Extraction* out,
           std::string_view span = {}, bool known_b64 = false) const;

  std::vector<std::string> token_headers_;
  AgentStats* stats_;
};

}  // namespace tokenwatch::token

#endif  // TOKENWATCH_AGENT_TOKEN_EXTRACTOR_H_
