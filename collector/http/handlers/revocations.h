// POST /api/v1/revocations: ["jti",...] or {"jtis":[...]} adds jtis to the
// revocation list; {"revoked":N}. A write endpoint: the server checks the
// bearer token before the body is read.
#ifndef TOKENWATCH_COLLECTOR_HTTP_HANDLERS_REVOCATIONS_H_
#define TOKENWATCH_COLLECTOR_HTTP_HANDLERS_REVOCATIONS_H_

#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "collector/http/response.h"
#include "collector/http/router.h"

namespace tokenwatch::collector::http {

using Revoke = std::function<absl::Status(const std::vector<std::string>&)>;

// A JSON list of non-empty jti strings, bare or as {"jtis":[...]}.
std::variant<std::vector<std::string>, Response> ParseJtis(
    const std::string& body);

Route RevocationsRoute(Revoke revoke);

}  // namespace tokenwatch::collector::http

#endif  // TOKENWATCH_COLLECTOR_HTTP_HANDLERS_REVOCATIONS_H_
