#include "agent/stats.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tokenwatch {

const char* decode::DecodeResultName(decode::DecodeResult r) {
  switch (r) {
    case decode::DecodeResult::kTcp:
      return "tcp";
    case decode::DecodeResult::kNotIp:
      return "not_ip";
    case decode::DecodeResult::kNotTcp:
      return "not_tcp";
    case decode::DecodeResult::kTruncated:
      return "truncated";
    case decode::DecodeResult::kBadIpHeader:
      return "bad_ip_header";
    case decode::DecodeResult::kBadTcpHeader:
      return "bad_tcp_header";
    case decode::DecodeResult::kIpFragment:
      return "ip_fragment";
    case decode::DecodeResult::kUnsupportedLinktype:
      return "unsupported_linktype";
    case decode::DecodeResult::kCount:
      break;
  }
  return "unknown";
}

const char* AnomalyName(Anomaly a) {
  switch (a) {
    case Anomaly::kTcpRetransmission:
      return "tcp_retransmission";
    case Anomaly::kTcpOverlapInconsistent:
      return "tcp_overlap_inconsistent";
    case Anomaly::kTcpSeqOutOfWindow:
      return "tcp_seq_out_of_window";
    case Anomaly::kTcpContentGap:
      return "tcp_content_gap";
    case Anomaly::kTcpMidstreamPickup:
      return "tcp_midstream_pickup";
    case Anomaly::kHttpBadRequestLine:
      return "http_bad_request_line";
    case Anomaly::kHttpBadStatusLine:
      return "http_bad_status_line";
    case Anomaly::kHttpHeaderTooLarge:
      return "http_header_too_large";
    case Anomaly::kHttpTooManyHeaders:
      return "http_too_many_headers";
    case Anomaly::kHttpBadContentLength:
      return "http_bad_content_length";
    case Anomaly::kHttpMultipleContentLength:
      return "http_multiple_content_length";
    case Anomaly::kHttpClAndChunked:
      return "http_cl_and_chunked";
    case Anomaly::kHttpBadChunkSize:
      return "http_bad_chunk_size";
    case Anomaly::kHttpResponseWithoutRequest:
      return "http_response_without_request";
    case Anomaly::kHttpVersion09:
      return "http_version_0_9";
    case Anomaly::kHttpTunnel:
      return "http_tunnel";
    case Anomaly::kHttp2Preface:
      return "http2_preface";
    case Anomaly::kHttpIncompleteHead:
      return "http_incomplete_head";
    case Anomaly::kIpFragmentOverlap:
      return "ip_fragment_overlap";
    case Anomaly::kHttp2BadPreface:
      return "http2_bad_preface";
    case Anomaly::kHttp2FrameError:
      return "http2_frame_error";
    case Anomaly::kHttp2Resync:
      return "http2_resync";
    case Anomaly::kHttp2HpackUnknownIndex:
      return "http2_hpack_unknown_index";
    case Anomaly::kHttp2HpackError:
      return "http2_hpack_error";
    case Anomaly::kHttp2HpackTableSize:
      return "http2_hpack_table_size";
    case Anomaly::kHttp2ContinuationFlood:
      return "http2_continuation_flood";
    case Anomaly::kHttp2RapidReset:
      return "http2_rapid_reset";
    case Anomaly::kHttp2ControlFlood:
      return "http2_control_flood";
    case Anomaly::kHttp2StreamError:
      return "http2_stream_error";
    case Anomaly::kCount:
      break;
  }
  return "unknown";
}

const char* DropName(Drop d) {
  switch (d) {
    case Drop::kCaptureKernel:
      return "capture_kernel";
    case Drop::kCaptureInterface:
      return "capture_interface";
    case Drop::kFlowTableFull:
      return "flow_table_full";
    case Drop::kReassemblyFlowCap:
      return "reassembly_flow_cap";
    case Drop::kReassemblyGlobalCap:
      return "reassembly_global_cap";
    case Drop::kPendingRequests:
      return "pending_requests";
    case Drop::kHeaderBytes:
      return "header_bytes";
    case Drop::kTokenTooLong:
      return "token_too_long";
    case Drop::kTokensPerRequest:
      return "tokens_per_request";
    case Drop::kWeakSecretQueue:
      return "weak_secret_queue";
    case Drop::kFragmentTimeout:
      return "ip_fragment_timeout";
    case Drop::kFragmentLimit:
      return "ip_fragment_limit";
    case Drop::kHttp2Streams:
      return "http2_streams";
    case Drop::kHttp2HeaderList:
      return "http2_header_list";
    case Drop::kTlsProbeRing:
      return "tls_probe_ring";
    case Drop::kTlsProbeTruncated:
      return "tls_probe_truncated";
    case Drop::kTlsProbeUnbound:
      return "tls_probe_unbound";
    case Drop::kTlsProbeConnections:
      return "tls_probe_connections";
    case Drop::kCount:
      break;
  }
  return "unknown";
}

const char* MalformedName(Malformed m) {
  switch (m) {
    case Malformed::kEmptyToken:
      return "empty_token";
    case Malformed::kBadTokenChars:
      return "bad_token_chars";
    case Malformed::kBadBase64:
      return "bad_base64";
    case Malformed::kHeaderNotJson:
      return "header_not_json";
    case Malformed::kPayloadNotJson:
      return "payload_not_json";
    case Malformed::kBadClaimType:
      return "bad_claim_type";
    case Malformed::kClaimTooLong:
      return "claim_too_long";
    case Malformed::kCount:
      break;
  }
  return "unknown";
}

namespace {
template <typename Enum, size_t N>
std::string Breakdown(const std::array<uint64_t, N>& counts,
                      const char* (*name)(Enum)) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    if (counts[i] == 0) continue;
    absl::StrAppend(&out, out.empty() ? "" : " ", name(static_cast<Enum>(i)),
                    "=", counts[i]);
  }
  return out.empty() ? "none" : out;
}
const char* KindName(TokenKindStat k) {
  switch (k) {
    case TokenKindStat::kJwt:
      return "jwt";
    case TokenKindStat::kOpaque:
      return "opaque";
    case TokenKindStat::kJwe:
      return "jwe";
    case TokenKindStat::kCount:
      break;
  }
  return "unknown";
}
}  // namespace

std::string AgentStats::Summary() const {
  std::string out = "tokenwatch-agent: summary\n";
  auto line = [&out](const char* name, const auto& value) {
    absl::StrAppend(&out,
                    absl::StrFormat("  %-18s %s\n", name, absl::StrCat(value)));
  };
  line("packets", packets);
  line("bytes", bytes);
  line("tcp_segments", tcp_segments);
  line("ip_fragments", ip_fragments);
  line("flows", flows_created);
  line("flows_timed_out", flows_timed_out);
  line("http_requests", http_requests);
  line("http_responses", http_responses);
  line("http2_requests", http2_requests);
  line("http2_responses", http2_responses);
  line("grpc_requests", grpc_requests);
  line("undecoded_bytes", undecoded_bytes);
  if (tls_probe_chunks > 0) {
    line("tls_probe_chunks", tls_probe_chunks);
    line("tls_probe_bytes", tls_probe_bytes);
    line("tls_probe_conns", tls_probe_connections);
    line("tls_both_ends", tls_probe_both_ends);
  }
  line("token_uses", token_uses);
  line("tokens", Breakdown(tokens, &KindName));
  line("malformed_tokens", Breakdown(malformed, &MalformedName));
  line("events", events);
  line("cache_hit_ratio",
       absl::StrFormat("%.3f",
                       token_cache_hits + token_cache_misses == 0
                           ? 0.0
                           : static_cast<double>(token_cache_hits) /
                                 (token_cache_hits + token_cache_misses)));
  line("not_decoded", Breakdown(decode, &decode::DecodeResultName));
  line("anomalies", Breakdown(anomalies, &AnomalyName));
  line("drops", Breakdown(drops, &DropName));
  return out;
}

}  // namespace tokenwatch
