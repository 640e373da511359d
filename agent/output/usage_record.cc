#include "agent/output/usage_record.h"

namespace tokenwatch::output {

v1::UsageEvent ToProto(const UsageRecord& r) {
  v1::UsageEvent e;
  ToProto(r, &e);
  return e;
}

void ToProto(const UsageRecord& r, v1::UsageEvent* out) {
  v1::UsageEvent& e = *out;
  e.set_ts_us(r.ts_us);
  e.set_last_ts_us(r.last_ts_us);
  e.set_count(r.count);
  e.set_agent(r.request->agent);
  e.set_service(r.request->service);
  e.set_method(r.request->method);
  e.set_path(r.request->path);
  e.set_client(r.request->client);
  e.set_server(r.request->server);
  e.set_status(r.status);
  e.set_location(r.location);
  e.set_param(r.param);
  *e.mutable_token() = r.token->info;
  ForEachFinding(r, [&e](const std::string& type, const std::string& detail) {
    e.add_findings(type);
    (*e.mutable_finding_details())[type] = detail;
  });
}

}  // namespace tokenwatch::output
