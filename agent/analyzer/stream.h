// The seam between the stream layer (TCP reassembly, and later other
// sources of ordered bytes) and the protocol analyzers, as in Zeek: the
// stream layer hands each connection's bytes, per direction and in order,
// to a handler it was given, and knows nothing of what the bytes mean.
#ifndef TOKENWATCH_AGENT_ANALYZER_STREAM_H_
#define TOKENWATCH_AGENT_ANALYZER_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace tokenwatch::analyzer {

// The process behind an endpoint, when the source knows it (the TLS probe
// sees the process that called OpenSSL; pcap knows none).
struct Process {
  uint32_t pid = 0;
  std::string comm;
  std::string exe;
};

struct Endpoint {
  std::string ip;  // text form: "10.0.0.5" or "::1"
  uint16_t port = 0;
  std::shared_ptr<const Process> process;  // null unless known
};

// How the bytes were seen; carried into every transaction and event.
enum class Source : uint8_t { kPcap, kTlsProbe };

// Packet time of the bytes being handed over: the stream layer's owner
// sets it before each delivery; analyzers read it (never the wall clock).
struct PacketClock {
  int64_t now_us = 0;
};

// One connection's bytes. Direction 0 is the side that sent the
// connection's first packet.
class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // The client's direction, once the handshake tells it.
  virtual void SetClientSide(int dir) = 0;
  virtual void OnData(int dir, const uint8_t* data, size_t len) = 0;
  // `len` bytes of this direction were never seen.
  virtual void OnGap(int dir, uint64_t len) = 0;
  // The connection was already open when watching began: the handler must
  // find a message boundary before it trusts the bytes.
  virtual void StartResync(int dir) = 0;
  // End of the connection: report what is pending.
  virtual void Close() = 0;
};

// Gives each new connection its handler (the protocol analyzer that will
// parse it). Called on the stream layer's thread.
class StreamHandlerFactory {
 public:
  virtual ~StreamHandlerFactory() = default;
  virtual std::unique_ptr<StreamHandler> Create(Endpoint side0,
                                                Endpoint side1) = 0;
};

}  // namespace tokenwatch::analyzer

#endif  // TOKENWATCH_AGENT_ANALYZER_STREAM_H_
