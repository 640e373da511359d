#include "agent/output/usage_record.h"

#include "common/json.h"

namespace tokenwatch::output {
namespace {

// Protobuf wire format (encoding.md): a key is (field << 3 | wire type).
constexpr uint32_t kVarint = 0, kLen = 2;

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// proto3: zero and empty fields are not written.
void PutUint(uint32_t field, uint64_t v, std::string* out) {
  if (v == 0) return;
  PutVarint(field << 3 | kVarint, out);
  PutVarint(v, out);
}

void PutBytes(uint32_t field, std::string_view v, std::string* out) {
  if (v.empty()) return;
  PutVarint(field << 3 | kLen, out);
  PutVarint(v.size(), out);
  out->append(v);
}

// A proto3 string must be UTF-8 or the collector cannot parse the batch:
// bytes from the wire (a path, a header name) are made valid first.
std::string_view Utf8(std::string_view v, std::string* scratch) {
  if (util::IsValidUtf8(v)) return v;
  scratch->clear();
  util::AppendValidUtf8(scratch, v);
  return *scratch;
}

// Length-delimited fields always written (a map entry's key and value, a
// submessage present but empty).
void PutLen(uint32_t field, std::string_view v, std::string* out) {
  PutVarint(field << 3 | kLen, out);
  PutVarint(v.size(), out);
  out->append(v);
}

}  // namespace

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
  ForEachFinding(r, [&e](AlertType type, const std::string& detail) {
    std::string name(AlertTypeName(type));
    e.add_findings(name);
    (*e.mutable_finding_details())[name] = detail;
  });
  e.set_protocol(r.request->protocol);
  if (r.grpc_status.has_value()) e.set_grpc_status(*r.grpc_status);
  e.set_source(r.request->source);
  if (r.request->pid != 0) {
    v1::Process* p = e.mutable_process();
    p->set_pid(r.request->pid);
    p->set_comm(r.request->comm);
    p->set_exe(r.request->exe);
  }
}

}  // namespace tokenwatch::output

namespace tokenwatch::output {

void AppendBatchEvent(const UsageRecord& r, std::string* out) {
  // The body first (its length prefixes it), in a buffer reused per thread.
  static thread_local std::string body;
  body.clear();
  // Field numbers and order as in tokenwatch/v1/event.proto (UsageEvent),
  // which is also the order protobuf serializes in.
  PutUint(1, static_cast<uint64_t>(r.ts_us), &body);
  PutUint(2, static_cast<uint64_t>(r.last_ts_us), &body);
  PutUint(3, r.count, &body);
  const RequestInfo& q = *r.request;
  std::string scratch;
  PutBytes(4, Utf8(q.agent, &scratch), &body);
  PutBytes(5, Utf8(q.service, &scratch), &body);
  PutBytes(6, Utf8(q.method, &scratch), &body);
  PutBytes(7, Utf8(q.path, &scratch), &body);
  PutBytes(8, Utf8(q.client, &scratch), &body);
  PutBytes(9, Utf8(q.server, &scratch), &body);
  PutUint(10, r.status, &body);
  PutUint(11, static_cast<uint64_t>(r.location), &body);
  PutBytes(12, Utf8(r.param, &scratch), &body);
  PutLen(13, r.token->info_bytes, &body);
  std::string entry;
  ForEachFinding(r, [&](AlertType type, const std::string&) {
    PutLen(14, AlertTypeName(type), &body);
  });
  ForEachFinding(r, [&](AlertType type, const std::string& detail) {
    entry.clear();
    PutLen(1, AlertTypeName(type), &entry);
    PutLen(2, Utf8(detail, &scratch), &entry);
    PutLen(15, entry, &body);
  });
  PutBytes(16, q.protocol, &body);
  if (r.grpc_status.has_value()) {
    // optional: explicit presence, so a set 0 (OK) is written too.
    PutVarint(17 << 3 | kVarint, &body);
    PutVarint(*r.grpc_status, &body);
  }
  PutBytes(18, q.source, &body);
  if (q.pid != 0) {
    entry.clear();
    PutUint(1, q.pid, &entry);
    PutBytes(2, Utf8(q.comm, &scratch), &entry);
    PutBytes(3, Utf8(q.exe, &scratch), &entry);
    PutLen(19, entry, &body);
  }
  PutVarint(2 << 3 | kLen, out);
  PutVarint(body.size(), out);
  out->append(body);
}

}  // namespace tokenwatch::output
