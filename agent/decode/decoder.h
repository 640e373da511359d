// Link, network and transport decoding: a captured frame in, a TCP segment
// with its flow tuple out. Never reads past `caplen`; anything it cannot use
// is named by a DecodeResult the caller counts.
#ifndef TOKENWATCH_AGENT_DECODE_DECODER_H_
#define TOKENWATCH_AGENT_DECODE_DECODER_H_

#include <cstdint>
#include <string>

#include "agent/capture/packet.h"
#include "agent/stats.h"  // DecodeResult

namespace tokenwatch::decode {

// An address in 16 bytes; IPv4 is stored as ::ffff:a.b.c.d.
struct IpAddress {
  uint8_t bytes[16] = {0};
  bool is_v4() const;
  std::string ToString() const;  // "10.0.0.5" or "::1"
  bool operator==(const IpAddress& o) const;
};

struct TcpSegment {
  IpAddress src, dst;
  uint16_t src_port = 0, dst_port = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  const uint8_t* payload = nullptr;
  uint32_t payload_len = 0;
  int64_t ts_us = 0;
};

constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04,
                  kTcpPsh = 0x08, kTcpAck = 0x10;

// One IP fragment, as Decode reports it with kIpFragment.
struct IpFragment {
  IpAddress src, dst;
  uint32_t id = 0;
  uint32_t offset = 0;  // bytes
  bool more = false;
  uint8_t protocol = 0;
  const uint8_t* data = nullptr;
  uint32_t len = 0;
};

// `frag` (optional) receives the fragment when the result is kIpFragment.
DecodeResult Decode(const capture::RawPacket& packet, TcpSegment* out,
                    IpFragment* frag = nullptr);
// The TCP header and payload of a reassembled datagram; `out` already holds
// the addresses.
DecodeResult DecodeTcp(const uint8_t* p, uint32_t len, TcpSegment* out);

}  // namespace tokenwatch::decode

#endif  // TOKENWATCH_AGENT_DECODE_DECODER_H_
