#include "agent/decode/decoder.h"

#include <arpa/inet.h>
#include <pcap/dlt.h>

#include <cstring>

namespace tokenwatch::decode {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint16_t kEtherVlan = 0x8100;
constexpr uint16_t kEtherQinQ = 0x88a8;
constexpr uint16_t kEtherQinQOld = 0x9100;
constexpr uint16_t kEtherPppoeSession = 0x8864;
constexpr uint16_t kEtherMpls = 0x8847;
constexpr uint16_t kPppIpv4 = 0x0021, kPppIpv6 = 0x0057;
constexpr int kMaxVlanTags = 4;
constexpr int kMaxMplsLabels = 8;
constexpr int kMaxIpv6ExtHeaders = 8;
// pcap link types that carry bare IP; DLT_RAW differs across platforms.
constexpr int kLinktypeRaw = 101, kLinktypeIpv4 = 228, kLinktypeIpv6 = 229;
constexpr int kDltRawBsd = 14;

uint16_t Be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t Be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 |
         p[3];
}

}  // namespace

DecodeResult DecodeTcp(const uint8_t* p, uint32_t len, TcpSegment* out) {
  if (len < 20) return DecodeResult::kTruncated;
  uint32_t off = (p[12] >> 4) * 4u;
  if (off < 20) return DecodeResult::kBadTcpHeader;
  if (off > len) return DecodeResult::kTruncated;
  out->src_port = Be16(p);
  out->dst_port = Be16(p + 2);
  out->seq = Be32(p + 4);
  out->ack = Be32(p + 8);
  out->flags = p[13];
  out->payload = p + off;
  out->payload_len = len - off;
  return DecodeResult::kTcp;
}

namespace {

DecodeResult DecodeIpv4(const uint8_t* p, uint32_t len, TcpSegment* out,
                        IpFragment* frag) {
  if (len < 20) return DecodeResult::kTruncated;
  if ((p[0] >> 4) != 4) return DecodeResult::kBadIpHeader;
  uint32_t ihl = (p[0] & 0x0f) * 4u;
  uint32_t total = Be16(p + 2);
  // TSO super-segments captured on the sender carry total length 0: the
  // frame is the packet.
  if (total == 0) total = len;
  if (ihl < 20 || total < ihl) return DecodeResult::kBadIpHeader;
  // Ethernet pads short frames: trust the IP length, not the frame length.
  // A total beyond caplen is a snaplen cut: decode what is there.
  if (total < len) len = total;
  if (ihl > len) return DecodeResult::kTruncated;
  uint16_t frag_field = Be16(p + 6);
  std::memset(out->src.bytes, 0, 10);
  out->src.bytes[10] = out->src.bytes[11] = 0xff;
  std::memcpy(out->src.bytes + 12, p + 12, 4);
  std::memset(out->dst.bytes, 0, 10);
  out->dst.bytes[10] = out->dst.bytes[11] = 0xff;
  std::memcpy(out->dst.bytes + 12, p + 16, 4);
  if ((frag_field & 0x3fff) != 0) {
    if (frag != nullptr) {
      frag->src = out->src;
      frag->dst = out->dst;
      frag->id = Be16(p + 4);
      frag->offset = (frag_field & 0x1fffu) * 8u;
      frag->more = (frag_field & 0x2000) != 0;
      frag->protocol = p[9];
      frag->data = p + ihl;
      frag->len = len - ihl;
    }
    return DecodeResult::kIpFragment;
  }
  if (p[9] != 6) return DecodeResult::kNotTcp;
  return DecodeTcp(p + ihl, len - ihl, out);
}

DecodeResult DecodeIpv6(const uint8_t* p, uint32_t len, TcpSegment* out,
                        IpFragment* frag) {
  if (len < 40) return DecodeResult::kTruncated;
  if ((p[0] >> 4) != 6) return DecodeResult::kBadIpHeader;
  uint32_t payload = Be16(p + 4);
  // Payload length 0 is a jumbogram (hop-by-hop option): use the frame.
  if (payload != 0 && payload + 40 < len) len = payload + 40;
  std::memcpy(out->src.bytes, p + 8, 16);
  std::memcpy(out->dst.bytes, p + 24, 16);
  uint8_t next = p[6];
  uint32_t off = 40;
  for (int i = 0; i < kMaxIpv6ExtHeaders; ++i) {
    switch (next) {
      case 6:
        return DecodeTcp(p + off, len - off, out);
      case 0:     // hop-by-hop
      case 43:    // routing
      case 60: {  // destination options
        if (off + 8 > len) return DecodeResult::kTruncated;
        uint32_t ext = (p[off + 1] + 1u) * 8u;
        next = p[off];
        off += ext;
        if (off > len) return DecodeResult::kTruncated;
        break;
      }
      case 44: {
        if (off + 8 > len) return DecodeResult::kTruncated;
        if (frag != nullptr) {
          uint16_t fo = Be16(p + off + 2);
          frag->src = out->src;
          frag->dst = out->dst;
          frag->id = Be32(p + off + 4);
          frag->offset = fo & 0xfff8u;
          frag->more = (fo & 1) != 0;
          frag->protocol = p[off];
          frag->data = p + off + 8;
          frag->len = len - off - 8;
        }
        return DecodeResult::kIpFragment;
      }
      default:
        return DecodeResult::kNotTcp;
    }
  }
  return DecodeResult::kBadIpHeader;
}

DecodeResult DecodeByVersion(const uint8_t* p, uint32_t len, TcpSegment* out,
                             IpFragment* frag);

DecodeResult DecodeByEthertype(uint16_t type, const uint8_t* p, uint32_t len,
                               TcpSegment* out, IpFragment* frag) {
  switch (type) {
    case kEtherIpv4:
      return DecodeIpv4(p, len, out, frag);
    case kEtherIpv6:
      return DecodeIpv6(p, len, out, frag);
    case kEtherPppoeSession: {
      // 6-byte PPPoE header, then the 2-byte PPP protocol.
      if (len < 8) return DecodeResult::kTruncated;
      uint16_t proto = Be16(p + 6);
      if (proto == kPppIpv4) return DecodeIpv4(p + 8, len - 8, out, frag);
      if (proto == kPppIpv6) return DecodeIpv6(p + 8, len - 8, out, frag);
      return DecodeResult::kNotIp;
    }
    case kEtherMpls: {
      // Pop labels to the bottom of the stack; the payload's version
      // nibble says what follows.
      uint32_t off = 0;
      for (int i = 0; i < kMaxMplsLabels; ++i) {
        if (off + 4 > len) return DecodeResult::kTruncated;
        bool bottom = p[off + 2] & 0x01;
        off += 4;
        if (bottom) return DecodeByVersion(p + off, len - off, out, frag);
      }
      return DecodeResult::kNotIp;
    }
    default:
      return DecodeResult::kNotIp;
  }
}

DecodeResult DecodeByVersion(const uint8_t* p, uint32_t len, TcpSegment* out,
                             IpFragment* frag) {
  if (len < 1) return DecodeResult::kTruncated;
  switch (p[0] >> 4) {
    case 4:
      return DecodeIpv4(p, len, out, frag);
    case 6:
      return DecodeIpv6(p, len, out, frag);
    default:
      return DecodeResult::kNotIp;
  }
}

}  // namespace

bool IpAddress::is_v4() const {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0,    0,
                                          0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(bytes, kPrefix, 12) == 0;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (is_v4()) {
    inet_ntop(AF_INET, bytes + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, bytes, buf, sizeof buf);
  }
  return buf;
}

bool IpAddress::operator==(const IpAddress& o) const {
  return std::memcmp(bytes, o.bytes, 16) == 0;
}

DecodeResult Decode(const capture::RawPacket& packet, TcpSegment* out,
                    IpFragment* frag) {
  const uint8_t* p = packet.data;
  uint32_t len = packet.caplen;
  out->ts_us = packet.ts_us;
  switch (packet.linktype) {
    case DLT_EN10MB: {
      if (len < 14) return DecodeResult::kTruncated;
      uint16_t type = Be16(p + 12);
      uint32_t off = 14;
      for (int i = 0;
           i < kMaxVlanTags &&
           (type == kEtherVlan || type == kEtherQinQ || type == kEtherQinQOld);
           ++i) {
        if (off + 4 > len) return DecodeResult::kTruncated;
        type = Be16(p + off + 2);
        off += 4;
      }
      return DecodeByEthertype(type, p + off, len - off, out, frag);
    }
    case DLT_LINUX_SLL: {
      if (len < 16) return DecodeResult::kTruncated;
      return DecodeByEthertype(Be16(p + 14), p + 16, len - 16, out, frag);
    }
    case DLT_LINUX_SLL2: {
      if (len < 20) return DecodeResult::kTruncated;
      return DecodeByEthertype(Be16(p), p + 20, len - 20, out, frag);
    }
    case DLT_NULL:
    case DLT_LOOP: {
      // The address family is in the capturing host's byte order for
      // DLT_NULL and in network order for DLT_LOOP: the IP version nibble
      // decides, which copes with both.
      if (len < 4) return DecodeResult::kTruncated;
      return DecodeByVersion(p + 4, len - 4, out, frag);
    }
    case DLT_RAW:
    case kDltRawBsd:
    case kLinktypeRaw:
      return DecodeByVersion(p, len, out, frag);
    case kLinktypeIpv4:
      return DecodeIpv4(p, len, out, frag);
    case kLinktypeIpv6:
      return DecodeIpv6(p, len, out, frag);
    default:
      return DecodeResult::kUnsupportedLinktype;
  }
}

}  // namespace tokenwatch::decode
