#include "agent/output/event_json.h"

#include <cstring>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/json.h"
#include "common/time_format.h"

namespace tokenwatch::output {

using util::AppendJsonString;

const char* LocationName(v1::TokenLocation loc) {
  switch (loc) {
    case v1::TOKEN_LOCATION_AUTHORIZATION:
      return "authorization";
    case v1::TOKEN_LOCATION_COOKIE:
      return "cookie";
    case v1::TOKEN_LOCATION_QUERY:
      return "query";
    case v1::TOKEN_LOCATION_HEADER:
      return "header";
    case v1::TOKEN_LOCATION_WEBSOCKET_PROTOCOL:
      return "websocket_protocol";
    case v1::TOKEN_LOCATION_PATH:
      return "path";
    case v1::TOKEN_LOCATION_HOST:
      return "host";
    default:
      return "unknown";
  }
}

const char* KindName(v1::TokenKind kind) {
  switch (kind) {
    case v1::TOKEN_KIND_JWT:
      return "jwt";
    case v1::TOKEN_KIND_OPAQUE:
      return "opaque";
    case v1::TOKEN_KIND_JWE:
      return "jwe";
    default:
      return "unknown";
  }
}

namespace {

// `key` as the line carries it, comma, quotes and colon included: keys are
// constants, written rather than escaped again for every event. A plain
// value (nearly every one) goes in with its key in one write.
void Str(std::string* out, std::string_view key, std::string_view v) {
  if (!util::IsPlainJsonString(v)) {
    out->append(key);
    AppendJsonString(out, v);
    return;
  }
  size_t at = out->size();
  out->resize(at + key.size() + v.size() + 2);
  char* p = out->data() + at;
  std::memcpy(p, key.data(), key.size());
  p += key.size();
  *p++ = '"';
  if (!v.empty()) std::memcpy(p, v.data(), v.size());
  p[v.size()] = '"';
}
// `key` (as the line carries it) and an unsigned number: one write, no
// formatting library (three per event).
void Uint(std::string* out, std::string_view key, uint64_t v) {
  char digits[20];
  size_t n = 0;
  do {
    digits[sizeof digits - ++n] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  size_t at = out->size();
  out->resize(at + key.size() + n);
  std::memcpy(out->data() + at, key.data(), key.size());
  std::memcpy(out->data() + at + key.size(), digits + sizeof digits - n, n);
}

// Several key/value pairs: when every value is plain (the usual event),
// all of them in one write.
struct KeyValue {
  std::string_view key, value;
};
void Strs(std::string* out, std::initializer_list<KeyValue> fields) {
  size_t need = 0;
  for (const KeyValue& f : fields) {
    if (!util::IsPlainJsonString(f.value)) {
      for (const KeyValue& g : fields) Str(out, g.key, g.value);
      return;
    }
    need += f.key.size() + f.value.size() + 2;
  }
  size_t at = out->size();
  out->resize(at + need);
  char* p = out->data() + at;
  for (const KeyValue& f : fields) {
    std::memcpy(p, f.key.data(), f.key.size());
    p += f.key.size();
    *p++ = '"';
    if (!f.value.empty()) std::memcpy(p, f.value.data(), f.value.size());
    p += f.value.size();
    *p++ = '"';
  }
}

template <typename List>
void StrList(std::string* out, std::string_view key, const List& list) {
  out->append(key);
  out->push_back('[');
  bool first = true;
  for (const std::string& s : list) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, s);
  }
  out->push_back(']');
}

void AppendToken(const v1::TokenInfo& t, std::string* out) {
  out->append("{\"kind\":");
  AppendJsonString(out, KindName(t.kind()));
  Str(out, ",\"fp\":", t.fp());
  if (!t.jti().empty()) Str(out, ",\"jti\":", t.jti());
  if (!t.sub().empty()) Str(out, ",\"sub\":", t.sub());
  if (!t.iss().empty()) Str(out, ",\"iss\":", t.iss());
  if (t.aud_size() > 0) StrList(out, ",\"aud\":", t.aud());
  if (t.has_exp()) absl::StrAppend(out, ",\"exp\":", t.exp());
  if (t.has_nbf()) absl::StrAppend(out, ",\"nbf\":", t.nbf());
  if (t.has_iat()) absl::StrAppend(out, ",\"iat\":", t.iat());
  if (t.scopes_size() > 0) StrList(out, ",\"scope\":", t.scopes());
  if (!t.client_id().empty()) Str(out, ",\"client_id\":", t.client_id());
  if (!t.alg().empty() || t.kind() == v1::TOKEN_KIND_JWT)
    Str(out, ",\"alg\":", t.alg());
  if (!t.kid().empty()) Str(out, ",\"kid\":", t.kid());
  if (!t.typ().empty()) Str(out, ",\"typ\":", t.typ());
  if (!t.jku().empty()) Str(out, ",\"jku\":", t.jku());
  if (!t.x5u().empty()) Str(out, ",\"x5u\":", t.x5u());
  if (t.has_jwk()) out->append(",\"jwk\":true");
  if (t.crit_size() > 0) StrList(out, ",\"crit\":", t.crit());
  out->push_back('}');
}

}  // namespace

void AppendEventJson(const UsageRecord& e, std::string* out) {
  const RequestInfo& r = *e.request;
  // One allocation at most for the line (the token object is most of it).
  out->reserve(out->size() + e.token->json.size() + 512);
  out->append("{\"ts\":\"");
  AppendTimestamp(out, e.ts_us);
  out->append("\",\"last_ts\":\"");
  AppendTimestamp(out, e.last_ts_us);
  out->push_back('"');
  Uint(out, ",\"count\":", e.count);
  Strs(out, {{",\"agent\":", r.agent},
             {",\"service\":", r.service},
             {",\"method\":", r.method},
             {",\"path\":", r.path},
             {",\"client\":", r.client},
             {",\"server\":", r.server},
             {",\"protocol\":", r.protocol},
             {",\"source\":", r.source}});
  if (r.pid != 0) {
    Uint(out, ",\"process\":{\"pid\":", r.pid);
    Strs(out, {{",\"comm\":", r.comm}, {",\"exe\":", r.exe}});
    out->push_back('}');
  }
  if (e.status == 0) {
    out->append(",\"status\":null");
  } else {
    Uint(out, ",\"status\":", e.status);
  }
  if (e.grpc_status.has_value()) {
    Uint(out, ",\"grpc_status\":", *e.grpc_status);
  }
  Str(out, ",\"location\":", LocationName(e.location));
  if (!e.param.empty()) Str(out, ",\"param\":", e.param);
  out->append(",\"token\":");
  out->append(e.token->json);
  out->append(",\"findings\":[");
  bool first = true;
  ForEachFinding(e, [&](AlertType type, const std::string&) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, AlertTypeName(type));
  });
  out->push_back(']');
  if (!first) {
    out->append(",\"finding_details\":{");
    first = true;
    ForEachFinding(e, [&](AlertType type, const std::string& detail) {
      if (!first) out->push_back(',');
      first = false;
      AppendJsonString(out, AlertTypeName(type));
      out->push_back(':');
      AppendJsonString(out, detail);
    });
    out->push_back('}');
  }
  out->push_back('}');
}

std::string TokenJson(const v1::TokenInfo& token) {
  std::string out;
  AppendToken(token, &out);
  return out;
}

namespace {

// Claims are UTF-8 once JSON-decoded, but the collector must be able to
// parse every batch whatever a token carried: proto3 strings must be UTF-8.
void MakeStringsUtf8(google::protobuf::Message* m) {
  const google::protobuf::Descriptor* d = m->GetDescriptor();
  const google::protobuf::Reflection* r = m->GetReflection();
  auto clean = [](const std::string& v) {
    std::string out;
    util::AppendValidUtf8(&out, v);
    return out;
  };
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    if (f->type() != google::protobuf::FieldDescriptor::TYPE_STRING) continue;
    if (f->is_repeated()) {
      for (int k = 0; k < r->FieldSize(*m, f); ++k) {
        std::string v = r->GetRepeatedString(*m, f, k);
        if (!util::IsValidUtf8(v)) r->SetRepeatedString(m, f, k, clean(v));
      }
    } else {
      std::string v = r->GetString(*m, f);
      if (!util::IsValidUtf8(v)) r->SetString(m, f, clean(v));
    }
  }
}

}  // namespace

MutableTokenRef MakeTokenRecord(v1::TokenInfo info,
                                std::vector<Finding> findings) {
  auto r = std::make_shared<TokenRecord>();
  r->json = TokenJson(info);
  MakeStringsUtf8(&info);
  info.SerializeToString(&r->info_bytes);
  r->info = std::move(info);
  r->findings = std::move(findings);
  return r;
}

JsonLinesSink::~JsonLinesSink() {
  Flush();
  if (file_ != stdout) fclose(file_);
}

void JsonLinesSink::Emit(const UsageRecord& record) {
  line_.clear();
  AppendEventJson(record, &line_);
  line_.push_back('\n');
  fwrite(line_.data(), 1, line_.size(), file_);
}

void JsonLinesSink::Flush() { fflush(file_); }

}  // namespace tokenwatch::output
