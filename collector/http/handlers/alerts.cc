#include "collector/http/handlers/alerts.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "collector/alert_json.h"
#include "collector/http/url.h"
#include "common/alert_type.h"
#include "common/json.h"

namespace tokenwatch::collector::http {
namespace {

// Unix seconds (an optional fraction down to microseconds), or RFC 3339
// with an optional fraction and a Z or numeric offset.
std::optional<int64_t> ParseSince(const std::string& v) {
  std::string_view sv = v;
  size_t dot = sv.find('.');
  std::string_view whole = sv.substr(0, dot);
  std::string_view frac =
      dot == std::string_view::npos ? std::string_view() : sv.substr(dot + 1);
  // 12 digits reach the year 33658; more would overflow microseconds.
  if (AllDigits(whole) && whole.size() <= 12 &&
      (dot == std::string_view::npos || AllDigits(frac))) {
    int64_t us = 0;
    for (char c : whole) us = us * 10 + (c - '0');
    us *= 1000000;
    int64_t scale = 100000;
    for (size_t i = 0; i < frac.size() && scale > 0; ++i, scale /= 10) {
      us += (frac[i] - '0') * scale;
    }
    return us;
  }
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, v, &t, &err)) return std::nullopt;
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) {
    return std::nullopt;
  }
  return absl::ToUnixMicros(t);
}

// A page cursor, "TS_US.ID" (what "next" said): the last alert sent.
std::optional<std::pair<int64_t, std::string>> ParseCursor(std::string_view v) {
  size_t dot = v.find('.');
  if (dot == std::string_view::npos || dot + 1 >= v.size()) return std::nullopt;
  std::string_view ts = v.substr(0, dot);
  bool negative = !ts.empty() && ts.front() == '-';
  if (negative) ts.remove_prefix(1);
  if (!AllDigits(ts) || ts.size() > 18) return std::nullopt;
  int64_t us = 0;
  for (char c : ts) us = us * 10 + (c - '0');
  return std::make_pair(negative ? -us : us, std::string(v.substr(dot + 1)));
}

std::optional<size_t> ParseLimit(std::string_view v) {
  // Five digits cover the maximum; anything longer is out of range anyway.
  if (!AllDigits(v) || v.size() > 5) return std::nullopt;
  size_t n = 0;
  for (char c : v) n = n * 10 + static_cast<size_t>(c - '0');
  if (n < 1 || n > kMaxAlertLimit) return std::nullopt;
  return n;
}

}  // namespace

// Unknown or repeated parameters are refused rather than ignored: a typo
// such as `servce=orders` would otherwise silently widen the answer.
// An empty value means "not given", as an HTML form sends it.
std::variant<AlertsRequest, Response> ParseAlertQuery(std::string_view query) {
  AlertsRequest request;
  AlertQuery& q = request.query;
  enum Param { kType, kService, kSince, kLimit, kBefore, kParamCount };
  static constexpr std::string_view kNames[kParamCount] = {
      "type", "service", "since", "limit", "before"};
  bool seen[kParamCount] = {};
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view()
                                          : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::optional<std::string> name =
        PercentDecode(pair.substr(0, eq), /*plus_is_space=*/true);
    if (!name) return ErrorResponse(400, "bad query string encoding");
    std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    int index = 0;
    while (index < kParamCount && kNames[index] != *name) ++index;
    if (index == kParamCount) {
      return ErrorResponse(
          400, absl::StrCat("unknown parameter '", *name,
                            "' (expected type, service, since, limit or "
                            "before)"));
    }
    if (seen[index]) {
      return ErrorResponse(400,
                           absl::StrCat("parameter '", *name, "' given twice"));
    }
    seen[index] = true;
    // `since` keeps '+' literal: it is the sign of an RFC 3339 offset,
    // which clients rarely escape, and never a space there.
    std::optional<std::string> value =
        PercentDecode(raw_value, /*plus_is_space=*/index != kSince);
    if (!value) {
      return ErrorResponse(
          400, absl::StrCat("bad encoding of parameter '", *name, "'"));
    }
    if (value->empty()) continue;
    switch (index) {
      case kType:
        q.type = ParseAlertType(*value);
        request.unknown_type = !q.type.has_value();
        break;
      case kService:
        q.service = std::move(*value);
        break;
      case kSince: {
        std::optional<int64_t> since = ParseSince(*value);
        if (!since) {
          return ErrorResponse(400,
                               "bad parameter 'since': expected RFC 3339 time "
                               "(2026-11-30T10:15:03Z) or Unix seconds");
        }
        q.since_us = *since;
        break;
      }
      case kLimit: {
        std::optional<size_t> limit = ParseLimit(*value);
        if (!limit) {
          return ErrorResponse(
              400, absl::StrCat("bad parameter 'limit': expected an integer "
                                "from 1 to ",
                                kMaxAlertLimit));
        }
        q.limit = *limit;
        break;
      }
      case kBefore: {
        q.before = ParseCursor(*value);
        if (!q.before) {
          return ErrorResponse(400,
                               "bad parameter 'before': expected the \"next\" "
                               "of the previous answer");
        }
        break;
      }
    }
  }
  return request;
}

Route AlertsRoute(Store* store) {
  Route r{"GET", "/api/v1/alerts"};
  r.handler = [store](const Request& request) {
    std::variant<AlertsRequest, Response> q = ParseAlertQuery(request.query);
    if (auto* error = std::get_if<Response>(&q)) return std::move(*error);
    const AlertsRequest& parsed = std::get<AlertsRequest>(q);
    if (parsed.unknown_type) return JsonResponse("{\"alerts\":[]}");
    absl::StatusOr<std::vector<Alert>> alerts =
        store->QueryAlerts(parsed.query);
    if (!alerts.ok()) return StatusResponse(alerts.status());
    // The answer stops before kMaxAlertsBytes (limit=10000 of large alerts
    // once made 210 MB): "truncated":true then says so. A full page (or a
    // truncated one) gives "next": the cursor of its last alert, for
    // `before=` (an empty page ends the walk).
    std::string body = "{\"alerts\":[";
    size_t sent = 0;
    for (; sent < alerts->size(); ++sent) {
      std::string one = AlertJson((*alerts)[sent]);
      if (sent > 0 && body.size() + one.size() + 64 > kMaxAlertsBytes) break;
      if (sent > 0) body.push_back(',');
      body.append(one);
    }
    body.append("]");
    if (sent < alerts->size()) body.append(",\"truncated\":true");
    if (sent > 0 && (sent < alerts->size() || sent == parsed.query.limit)) {
      const Alert& last = (*alerts)[sent - 1];
      body.append(",\"next\":");
      util::AppendJsonString(&body, absl::StrCat(last.ts_us, ".", last.id));
    }
    body.append("}");
    return JsonResponse(std::move(body));
  };
  return r;
}

}  // namespace tokenwatch::collector::http
