// AlertJson: the SPEC "Alert record" line, field for field and in order.
#include "collector/alert_json.h"

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/json.h"
#include "common/time_format.h"

namespace tokenwatch::collector {

using util::AppendJsonString;

namespace {

// A timestamp as a JSON string (it holds nothing to escape).
void AppendQuotedTimestamp(std::string* out, int64_t ts_us) {
  out->push_back('"');
  AppendTimestamp(out, ts_us);
  out->push_back('"');
}

// `,"key":` — every field but an object's first.
void Key(std::string* out, std::string_view key) {
  out->push_back(',');
  AppendJsonString(out, key);
  out->push_back(':');
}

void StringField(std::string* out, std::string_view key,
                 std::string_view value) {
  Key(out, key);
  AppendJsonString(out, value);
}

void AppendToken(std::string* out, const Alert& a) {
  const v1::TokenInfo& t = a.token;
  out->append("{\"id\":");
  AppendJsonString(out, a.identity);
  StringField(out, "fp", t.fp());
  if (!t.jti().empty()) StringField(out, "jti", t.jti());
  if (!t.sub().empty()) StringField(out, "sub", t.sub());
  if (!t.iss().empty()) StringField(out, "iss", t.iss());
  if (t.aud_size() > 0) {
    // Always an array, even for a single-valued `aud` (RFC 7519 4.1.3
    // allows both forms; consumers should need only one).
    Key(out, "aud");
    out->push_back('[');
    for (int i = 0; i < t.aud_size(); ++i) {
      if (i > 0) out->push_back(',');
      AppendJsonString(out, t.aud(i));
    }
    out->push_back(']');
  }
  if (t.has_exp()) absl::StrAppend(out, ",\"exp\":", t.exp());
  if (!t.alg().empty()) StringField(out, "alg", t.alg());
  out->push_back('}');
}

}  // namespace

std::string AlertJson(const Alert& a) {
  std::string out;
  out.reserve(512);
  out.append("{\"id\":");
  AppendJsonString(&out, a.id);
  StringField(&out, "type", AlertTypeName(a.type));
  StringField(&out, "severity", SeverityName(a.severity));
  Key(&out, "ts");
  AppendQuotedTimestamp(&out, a.ts_us);
  Key(&out, "token");
  AppendToken(&out, a);
  StringField(&out, "service", a.service);
  StringField(&out, "method", a.method);
  StringField(&out, "path", a.path);
  StringField(&out, "client", a.client);
  StringField(&out, "agent", a.agent);
  // Issue 13: how the use was carried; grpc_status only for gRPC.
  if (!a.protocol.empty()) StringField(&out, "protocol", a.protocol);
  if (a.status == 0) {
    out.append(",\"status\":null");
  } else {
    absl::StrAppend(&out, ",\"status\":", a.status);
  }
  if (a.grpc_status.has_value()) {
    absl::StrAppend(&out, ",\"grpc_status\":", *a.grpc_status);
  }
  if (!a.accepted.has_value()) {
    out.append(",\"accepted\":null");
  } else {
    out.append(*a.accepted ? ",\"accepted\":true" : ",\"accepted\":false");
  }
  StringField(&out, "detail", a.detail);
  absl::StrAppend(&out, ",\"count\":", a.count);
  Key(&out, "last_ts");
  // An alert that has not repeated may leave last_ts_us unset.
  AppendQuotedTimestamp(&out, a.last_ts_us != 0 ? a.last_ts_us : a.ts_us);
  out.push_back('}');
  return out;
}

}  // namespace tokenwatch::collector
