#include "collector/http/handlers/tokens.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "collector/http/url.h"
#include "common/json.h"
#include "common/time_format.h"

namespace tokenwatch::collector::http {
namespace {

using util::AppendJsonString;

// Claims and names come from observed tokens, so every string is escaped
// and invalid UTF-8 becomes U+FFFD: the output is always JSON.
template <typename Strings>
void AppendJsonStringArray(std::string* out, const Strings& items) {
  out->push_back('[');
  bool first = true;
  for (const auto& item : items) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, item);
  }
  out->push_back(']');
}

// A SPEC timestamp as a JSON string (it holds nothing to escape).
void AppendJsonTime(std::string* out, int64_t ts_us) {
  out->push_back('"');
  AppendTimestamp(out, ts_us);
  out->push_back('"');
}

}  // namespace

std::string TokenRowJson(const TokenRow& row) {
  const v1::TokenInfo& t = row.token;
  std::string out = "{\"id\":";
  AppendJsonString(&out, row.identity);
  out.append(",\"fp\":");
  AppendJsonString(&out, t.fp());
  out.append(",\"iss\":");
  AppendJsonString(&out, t.iss());
  out.append(",\"sub\":");
  AppendJsonString(&out, t.sub());
  out.append(",\"jti\":");
  AppendJsonString(&out, t.jti());
  out.append(",\"aud\":");
  AppendJsonStringArray(&out, t.aud());
  out.append(",\"exp\":");
  out.append(t.has_exp() ? absl::StrCat(t.exp()) : "null");
  out.append(",\"alg\":");
  AppendJsonString(&out, t.alg());
  out.append(",\"first_seen\":");
  AppendJsonTime(&out, row.first_seen_us);
  out.append(",\"last_seen\":");
  AppendJsonTime(&out, row.last_seen_us);
  absl::StrAppend(&out, ",\"uses\":", row.uses, ",\"services\":");
  AppendJsonStringArray(&out, row.services);
  out.append(",\"clients\":");
  AppendJsonStringArray(&out, row.clients);
  out.append(",\"uses_by_service\":{");
  static constexpr const char* kClassNames[] = {"none", "1xx", "2xx",
                                                "3xx",  "4xx", "5xx"};
  bool first = true;
  for (const auto& [service, counts] : row.uses_by_service) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(&out, service);
    out.push_back(':');
    for (size_t i = 0; i < counts.size(); ++i) {
      absl::StrAppend(&out, i == 0 ? "{\"" : ",\"", kClassNames[i],
                      "\":", counts[i]);
    }
    out.push_back('}');
  }
  out.append("}}");
  return out;
}

Route TokensRoute(TokenLookup live, Store* store) {
  Route r{"GET", "/api/v1/tokens/", /*prefix=*/true};
  r.handler = [live = std::move(live), store](const Request& request) {
    std::optional<std::string> identity =
        PercentDecode(request.suffix, /*plus_is_space=*/false);
    if (!identity) return ErrorResponse(400, "bad encoding of token identity");
    absl::StatusOr<std::optional<TokenRow>> row =
        live ? live(*identity) : store->GetToken(*identity);
    if (!row.ok()) return StatusResponse(row.status());
    if (!row->has_value()) return ErrorResponse(404, "unknown token");
    return JsonResponse(TokenRowJson(**row));
  };
  return r;
}

}  // namespace tokenwatch::collector::http
