#include "collector/http/handlers/health.h"

#include <utility>

namespace tokenwatch::collector::http {

Route HealthRoute(std::function<std::string()> health) {
  Route r{"GET", "/healthz"};
  r.handler = [health = std::move(health)](const Request&) {
    return JsonResponse(health ? health() : "{\"status\":\"ok\"}");
  };
  return r;
}

Route MetricsRoute(std::function<std::string()> metrics) {
  Route r{"GET", "/metrics"};
  r.handler = [metrics = std::move(metrics)](const Request&) {
    Response response = JsonResponse(metrics());
    response.content_type = kPrometheusText;
    return response;
  };
  return r;
}

}  // namespace tokenwatch::collector::http
