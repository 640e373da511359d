// Counters of the agent's data path. Plain integers owned by one pipeline
// (one thread): a test builds one, the summary and metrics read it.
#ifndef TOKENWATCH_AGENT_STATS_H_
#define TOKENWATCH_AGENT_STATS_H_

#include <array>
#include <cstdint>
#include <string>

namespace tokenwatch {

// The bottom of the agent: the vocabulary of what its layers count, and
// the counters. Every layer may include this file; it includes none.
namespace decode {
// What decoding a frame gave (agent/decode/decoder.h).
enum class DecodeResult : uint8_t {
  kTcp,           // a TCP segment: the only result the pipeline uses
  kNotIp,         // ARP, LLDP, ...
  kNotTcp,        // UDP, ICMP, ...
  kTruncated,     // headers cut short by caplen or lying lengths
  kBadIpHeader,   // version/IHL/length nonsense
  kBadTcpHeader,  // data offset nonsense
  kIpFragment,    // IPv4/IPv6 fragment: not reassembled, counted
  kUnsupportedLinktype,
  kCount,
};
const char* DecodeResultName(DecodeResult r);
}  // namespace decode

// Protocol oddities, named as Zeek names its "weirds".
enum class Anomaly : uint8_t {
  kTcpRetransmission,
  kTcpOverlapInconsistent,  // overlapping bytes that differ (first kept)
  kTcpSeqOutOfWindow,
  kTcpContentGap,       // bytes never seen: parser resynchronised
  kTcpMidstreamPickup,  // connection already open when capture began
  kHttpBadRequestLine,
  kHttpBadStatusLine,
  kHttpHeaderTooLarge,
  kHttpTooManyHeaders,
  kHttpBadContentLength,
  kHttpMultipleContentLength,
  kHttpClAndChunked,
  kHttpBadChunkSize,
  kHttpResponseWithoutRequest,
  kHttpVersion09,
  kHttpTunnel,         // CONNECT or Upgrade: parsing stopped
  kHttp2Preface,       // HTTP/2 preface where HTTP/1 was parsed (tunnel)
  kIpFragmentOverlap,  // overlapping or inconsistent IP fragments
  // HTTP/2 (agent/http2): malformed framing or compression, and the attack
  // patterns of issue 13, each counted where the bound is hit.
  kHttp2BadPreface,         // client bytes where the preface should be
  kHttp2FrameError,         // a frame whose length/stream/flags break RFC 9113
  kHttp2Resync,             // frame boundary searched (mid-stream pickup, gap)
  kHttp2HpackUnknownIndex,  // HPACK field from before the capture: not guessed
  kHttp2HpackError,         // block nghttp2 cannot decode: inflater restarted
  kHttp2HpackTableSize,     // table size (SETTINGS or update) over the cap
  kHttp2ContinuationFlood,  // header block over the bound (CVE-2024-27316)
  kHttp2RapidReset,         // streams reset before any answer (CVE-2023-44487)
  kHttp2ControlFlood,       // SETTINGS/PING/empty frames beyond the bound
  kHttp2StreamError,        // HEADERS/trailers on a stream in the wrong state
  // A head the connection ended inside (never completed, never parsed):
  // a message the parser gave up on (issue 13, http-evader 410/412).
  kHttpIncompleteHead,
  kCount,
};
const char* AnomalyName(Anomaly a);

enum class Drop : uint8_t {
  kCaptureKernel,        // pcap_stats: dropped by the kernel
  kCaptureInterface,     // pcap_stats: dropped by the interface
  kFlowTableFull,        // oldest flow evicted to admit a new one
  kReassemblyFlowCap,    // out-of-order bytes over the per-flow cap
  kReassemblyGlobalCap,  // out-of-order bytes over the global cap
  kPendingRequests,      // pipelined requests awaiting a response
  kHeaderBytes,          // header block over max_header_bytes
  kTokenTooLong,         // token over the decode bound: not decoded
  kTokensPerRequest,     // tokens beyond 16 in one request
  kWeakSecretQueue,      // HMAC tokens not searched: worker queue full
  kFragmentTimeout,      // IP datagram never completed
  kFragmentLimit,        // IP fragments over the reassembly bounds
  kHttp2Streams,         // HTTP/2 streams over the per-connection bound
  kHttp2HeaderList,      // decoded HTTP/2 header fields over the list bound
  // TLS probe (agent/tls): records its ring buffer could not take; chunks
  // cut at the per-record cap; bytes of an SSL* whose socket never became
  // known (over the bound, or closed first); connections evicted when the
  // table was full.
  kTlsProbeRing,
  kTlsProbeTruncated,
  kTlsProbeUnbound,
  kTlsProbeConnections,
  kCount,
};
const char* DropName(Drop d);

enum class Malformed : uint8_t {
  kEmptyToken,
  kBadTokenChars,
  kBadBase64,
  kHeaderNotJson,
  kPayloadNotJson,
  kBadClaimType,
  kClaimTooLong,
  kCount,
};
const char* MalformedName(Malformed m);

enum class TokenKindStat : uint8_t { kJwt, kOpaque, kJwe, kCount };

struct AgentStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t tcp_segments = 0;
  uint64_t ip_fragments = 0;
  uint64_t payload_bytes = 0;
  uint64_t flows_created = 0;
  uint64_t flows_active = 0;  // gauge, set by Pipeline from the flow table
  uint64_t flows_closed = 0;
  uint64_t flows_timed_out = 0;
  uint64_t reassembly_buffered_bytes =
      0;  // gauge, set by Pipeline from the budget
  uint64_t http_requests = 0;
  uint64_t http_responses = 0;
  uint64_t http2_requests = 0;   // HTTP/2 streams opened by a request
  uint64_t http2_responses = 0;  // final response heads (:status >= 200)
  uint64_t grpc_requests = 0;    // of http2_requests, gRPC calls
  // Bytes no analyzer understood: skipped while searching for a message or
  // frame boundary, or inside a tunnel nothing parses ("saw nothing" is
  // never silent).
  uint64_t undecoded_bytes = 0;
  // TLS probe: plaintext records and bytes, connections parsed, and
  // connections seen from both ends on this host (parsed once).
  uint64_t tls_probe_chunks = 0;
  uint64_t tls_probe_bytes = 0;
  uint64_t tls_probe_connections = 0;
  uint64_t tls_probe_both_ends = 0;
  uint64_t token_uses = 0;
  uint64_t token_cache_hits = 0;
  uint64_t token_cache_misses = 0;
  uint64_t events = 0;
  std::array<uint64_t, static_cast<size_t>(decode::DecodeResult::kCount)>
      decode{};
  std::array<uint64_t, static_cast<size_t>(Anomaly::kCount)> anomalies{};
  std::array<uint64_t, static_cast<size_t>(Drop::kCount)> drops{};
  std::array<uint64_t, static_cast<size_t>(Malformed::kCount)> malformed{};
  std::array<uint64_t, static_cast<size_t>(TokenKindStat::kCount)> tokens{};

  void Count(Anomaly a) { ++anomalies[static_cast<size_t>(a)]; }
  void Count(Drop d, uint64_t n = 1) { drops[static_cast<size_t>(d)] += n; }
  void Count(Malformed m) { ++malformed[static_cast<size_t>(m)]; }
  uint64_t Get(Anomaly a) const { return anomalies[static_cast<size_t>(a)]; }
  uint64_t Get(Drop d) const { return drops[static_cast<size_t>(d)]; }
  uint64_t Get(Malformed m) const { return malformed[static_cast<size_t>(m)]; }

  // The end-of-run summary: one "name value" line per figure.
  std::string Summary() const;
};

}  // namespace tokenwatch

#endif  // TOKENWATCH_AGENT_STATS_H_
