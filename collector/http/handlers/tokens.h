// GET /api/v1/tokens/{identity}: a tracked token as JSON; the identity is
// URL-encoded ("https%3A%2F%2Fidp%7Cj-81", or partly, or raw).
#ifndef TOKENWATCH_COLLECTOR_HTTP_HANDLERS_TOKENS_H_
#define TOKENWATCH_COLLECTOR_HTTP_HANDLERS_TOKENS_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "collector/http/router.h"
#include "collector/model.h"
#include "collector/store/store.h"

namespace tokenwatch::collector::http {

using TokenLookup =
    std::function<std::optional<TokenRow>(const std::string& identity)>;

// The row as JSON: claims, first and last seen, uses by service and class.
std::string TokenRowJson(const TokenRow& row);

// Asks `live` (the engine, which is ahead of the store between
// checkpoints) when set, else `store`, which must outlive the route.
Route TokensRoute(TokenLookup live, Store* store);

}  // namespace tokenwatch::collector::http

#endif  // TOKENWATCH_COLLECTOR_HTTP_HANDLERS_TOKENS_H_
