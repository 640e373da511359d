#include "agent/analyzer/transaction.h"

#include "common/strings.h"

namespace tokenwatch::analyzer {

const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kHttp1:
      return "http/1.1";
    case Protocol::kHttp2:
      return "h2";
    case Protocol::kGrpc:
      return "grpc";
  }
  return "unknown";
}

const char* SourceName(Source s) {
  switch (s) {
    case Source::kPcap:
      return "pcap";
    case Source::kTlsProbe:
      return "tls_probe";
  }
  return "unknown";
}

std::string_view Request::Find(std::string_view name) const {
  for (size_t i = 0; i < num_headers; ++i) {
    if (util::EqualsIgnoreCase(headers[i].name, name)) return headers[i].value;
  }
  return {};
}

}  // namespace tokenwatch::analyzer
