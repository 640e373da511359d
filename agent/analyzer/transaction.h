// What a protocol analyzer raises: a request, and later its completion
// (the status of the response, or none). HTTP/1 today; HTTP/2 and gRPC
// raise the same records, so the token layer above never knows which
// protocol or source carried a request.
#ifndef TOKENWATCH_AGENT_ANALYZER_TRANSACTION_H_
#define TOKENWATCH_AGENT_ANALYZER_TRANSACTION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "agent/analyzer/stream.h"

namespace tokenwatch::analyzer {

struct Header {
  std::string_view name;
  std::string_view value;
};

enum class Protocol : uint8_t { kHttp1, kHttp2, kGrpc };

// A request head. Every view points into the analyzer's buffers and is
// valid only during the OnRequest call that receives it.
struct Request {
  Protocol protocol = Protocol::kHttp1;
  Source source = Source::kPcap;
  std::string_view method;
  std::string_view target;     // origin-, absolute- or authority-form
  std::string_view authority;  // HTTP/2's :authority; HTTP/1 leaves it
                               // empty (its Host is a header: see Host())
  const Header* headers = nullptr;
  size_t num_headers = 0;
  const Endpoint* client = nullptr;
  const Endpoint* server = nullptr;
  int64_t ts_us = 0;

  // The first header with this name (ASCII case-insensitive), or empty.
  std::string_view Find(std::string_view name) const;
  // :authority, else the Host header. Looked up only when asked: most
  // requests carry no token and nobody asks.
  std::string_view Host() const {
    return !authority.empty() ? authority : Find("host");
  }
};

// The names events carry ("protocol", "source").
const char* ProtocolName(Protocol p);  // "http/1.1" | "h2" | "grpc"
const char* SourceName(Source s);      // "pcap" | "tls_probe"

// How the request ended.
struct Completion {
  uint32_t status = 0;  // 0: no response seen
  int64_t ts_us = 0;
  // gRPC: the grpc-status of the trailers, when one was seen and decoded.
  std::optional<uint32_t> grpc_status;
};

// What an observer keeps of a request until its completion; the analyzer
// holds it and completes it exactly once (at the latest when the
// connection closes).
class PendingRequest {
 public:
  virtual ~PendingRequest() = default;
  virtual void Complete(const Completion& done) = 0;
};

// Consumes what analyzers raise (the token layer).
class TransactionObserver {
 public:
  virtual ~TransactionObserver() = default;
  // Null when the observer has no interest in this request's outcome.
  virtual std::unique_ptr<PendingRequest> OnRequest(const Request& request) = 0;
};

}  // namespace tokenwatch::analyzer

#endif  // TOKENWATCH_AGENT_ANALYZER_TRANSACTION_H_
