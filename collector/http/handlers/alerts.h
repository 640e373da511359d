// GET /api/v1/alerts?type=&service=&since=&limit=: {"alerts":[...]},
// newest first, from the store.
#ifndef TOKENWATCH_COLLECTOR_HTTP_HANDLERS_ALERTS_H_
#define TOKENWATCH_COLLECTOR_HTTP_HANDLERS_ALERTS_H_

#include <cstddef>
#include <string_view>
#include <variant>

#include "collector/http/response.h"
#include "collector/http/router.h"
#include "collector/store/store.h"

namespace tokenwatch::collector::http {

inline constexpr size_t kMaxAlertLimit = 10000;
// The most bytes one answer of /api/v1/alerts carries (then "truncated").
inline constexpr size_t kMaxAlertsBytes = 8 << 20;

// The query string, parsed. A type that is no alert type matches no alert.
struct AlertsRequest {
  AlertQuery query;
  bool unknown_type = false;
};
// A 400 names the parameter; unknown or repeated parameters are refused.
std::variant<AlertsRequest, Response> ParseAlertQuery(std::string_view query);

// `store` must outlive the route.
Route AlertsRoute(Store* store);

}  // namespace tokenwatch::collector::http

#endif  // TOKENWATCH_COLLECTOR_HTTP_HANDLERS_ALERTS_H_
