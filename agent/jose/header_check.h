// header_injection findings (SPEC "Alert types"): JOSE header fields that
// make a careless verifier fetch or trust an attacker's key (jku, x5u,
// embedded jwk: CVE-2018-0114 and kin) or that reach a file path, SQL query
// or shell through kid (the jwt_tool kid attacks: kid "../../dev/null"
// with an empty HMAC key, kid "x' UNION SELECT 'key").
#ifndef TOKENWATCH_AGENT_JOSE_HEADER_CHECK_H_
#define TOKENWATCH_AGENT_JOSE_HEADER_CHECK_H_

#include <string>
#include <string_view>
#include <vector>

#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::jose {

// One reason per finding, each starting with the header field it concerns
// ("jku: ", "x5u: ", "jwk: ", "kid: "); empty for a clean header. Reads
// jku, x5u, has_jwk and kid of `header`. `issuer_host` is the host of the
// issuer (UrlHost(iss)); empty when unknown, and then a jku/x5u is reported
// without the on/off-host judgement. Pure function.
std::vector<std::string> HeaderFindings(const v1::TokenInfo& header,
                                        std::string_view issuer_host);

// The lower-cased host of an absolute ("scheme://") or scheme-relative
// ("//host") URL, without userinfo, port or trailing dot; IPv6 literals keep
// their brackets. Empty when there is none. "https://idp.test@evil.test/"
// and "https://evil.test\@idp.test/" (WHATWG: '\' ends the authority) both
// give "evil.test".
std::string UrlHost(std::string_view url);

}  // namespace tokenwatch::jose

#endif  // TOKENWATCH_AGENT_JOSE_HEADER_CHECK_H_
