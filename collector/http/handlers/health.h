// GET /healthz and GET /metrics: what the collector's hooks say, as JSON
// and as Prometheus text.
#ifndef TOKENWATCH_COLLECTOR_HTTP_HANDLERS_HEALTH_H_
#define TOKENWATCH_COLLECTOR_HTTP_HANDLERS_HEALTH_H_

#include <functional>
#include <string>

#include "collector/http/router.h"

namespace tokenwatch::collector::http {

// `health` gives the JSON body; without it the body is {"status":"ok"}.
Route HealthRoute(std::function<std::string()> health);
// `metrics` gives the exposition text; it must be set.
Route MetricsRoute(std::function<std::string()> metrics);

}  // namespace tokenwatch::collector::http

#endif  // TOKENWATCH_COLLECTOR_HTTP_HANDLERS_HEALTH_H_
