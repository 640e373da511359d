#include "agent/decode/decoder.h"

#include <gtest/gtest.h>
#include <pcap/dlt.h>

#include "tests/agent/testing/packet_builder.h"

namespace tokenwatch::decode {
namespace {

using testing::Endpoint;
using testing::Ethernet;
using testing::IpTcp;

const Endpoint kClient{"10.0.3.7", 40000};
const Endpoint kServer{"10.0.0.5", 8080};

DecodeResult DecodeFrame(int linktype, const std::vector<uint8_t>& frame,
                         TcpSegment* seg) {
  capture::RawPacket p;
  p.data = frame.data();
  p.caplen = p.wirelen = static_cast<uint32_t>(frame.size());
  p.linktype = linktype;
  p.ts_us = 42;
  return Decode(p, seg);
}

TEST(DecoderTest, EthernetIpv4Tcp) {
  TcpSegment seg;
  auto frame =
      Ethernet(IpTcp(kClient, kServer, 7, 9, kTcpAck | kTcpPsh, "hello"));
  ASSERT_EQ(DecodeFrame(DLT_EN10MB, frame, &seg), DecodeResult::kTcp);
  EXPECT_EQ(seg.src.ToString(), "10.0.3.7");
  EXPECT_EQ(seg.dst.ToString(), "10.0.0.5");
  EXPECT_EQ(seg.src_port, 40000);
  EXPECT_EQ(seg.dst_port, 8080);
  EXPECT_EQ(seg.seq, 7u);
  EXPECT_EQ(seg.ack, 9u);
  EXPECT_EQ(seg.flags, kTcpAck | kTcpPsh);
  EXPECT_EQ(
      std::string(reinterpret_cast<const char*>(seg.payload), seg.payload_len),
      "hello");
  EXPECT_EQ(seg.ts_us, 42);
  EXPECT_TRUE(seg.src.is_v4());
}

TEST(DecoderTest, VlanAndQinQ) {
  TcpSegment seg;
  auto frame =
      Ethernet(IpTcp(kClient, kServer, 1, 1, kTcpAck, "x"), {100, 200});
  ASSERT_EQ(DecodeFrame(DLT_EN10MB, frame, &seg), DecodeResult::kTcp);
  EXPECT_EQ(seg.payload_len, 1u);
}

TEST(DecoderTest, EthernetPaddingIsNotPayload) {
  TcpSegment seg;
  auto frame = Ethernet(IpTcp(kClient, kServer, 1, 1, kTcpAck, ""));
  frame.resize(frame.size() + 6, 0);  // minimum frame size padding
  ASSERT_EQ(DecodeFrame(DLT_EN10MB, frame, &seg), DecodeResult::kTcp);
  EXPECT_EQ(seg.payload_len, 0u);
}

TEST(DecoderTest, Ipv6WithExtensionHeader) {
  TcpSegment seg;
  Endpoint c{"2001:db8::7", 40000}, s{"::1", 8080};
  auto ip = IpTcp(c, s, 1, 1, kTcpAck, "abc");
  // Insert an 8-byte destination-options header between IPv6 and TCP.
  std::vector<uint8_t> ext = {6, 0, 1, 4, 0, 0, 0, 0};
  ip[6] = 60;
  ip.insert(ip.begin() + 40, ext.begin(), ext.end());
  uint16_t plen = static_cast<uint16_t>(ip.size() - 40);
  ip[4] = plen >> 8;
  ip[5] = plen & 0xff;
  ASSERT_EQ(DecodeFrame(DLT_RAW, ip, &seg), DecodeResult::kTcp);
  EXPECT_EQ(seg.src.ToString(), "2001:db8::7");
  EXPECT_EQ(seg.dst.ToString(), "::1");
  EXPECT_FALSE(seg.src.is_v4());
  EXPECT_EQ(seg.payload_len, 3u);
}

TEST(DecoderTest, LinuxCookedV1AndV2) {
  TcpSegment seg;
  auto ip = IpTcp(kClient, kServer, 1, 1, kTcpAck, "ab");
  std::vector<uint8_t> sll(14, 0);
  sll.push_back(0x08);
  sll.push_back(0x00);
  sll.insert(sll.end(), ip.begin(), ip.end());
  ASSERT_EQ(DecodeFrame(DLT_LINUX_SLL, sll, &seg), DecodeResult::kTcp);
  EXPECT_EQ(seg.payload_len, 2u);
  std::vector<uint8_t> sll2 = {0x08, 0x00};
  sll2.resize(20, 0);
  sll2.insert(sll2.end(), ip.begin(), ip.end());
  ASSERT_EQ(DecodeFrame(DLT_LINUX_SLL2, sll2, &seg), DecodeResult::kTcp);
  EXPECT_EQ(seg.payload_len, 2u);
}

TEST(DecoderTest, NullAndLoopInEitherByteOrder) {
  TcpSegment seg;
  auto ip = IpTcp(kClient, kServer, 1, 1, kTcpAck, "z");
  std::vector<uint8_t> le = {2, 0, 0, 0}, be = {0, 0, 0, 2};
  le.insert(le.end(), ip.begin(), ip.end());
  be.insert(be.end(), ip.begin(), ip.end());
  EXPECT_EQ(DecodeFrame(DLT_NULL, le, &seg), DecodeResult::kTcp);
  EXPECT_EQ(DecodeFrame(DLT_LOOP, be, &seg), DecodeResult::kTcp);
}

TEST(DecoderTest, PppoeSession) {
  TcpSegment seg;
  auto ip = IpTcp(kClient, kServer, 1, 1, kTcpAck, "p");
  std::vector<uint8_t> f(12, 2);
  testing::Put16(&f, 0x8864);
  std::vector<uint8_t> pppoe = {0x11, 0, 0, 1, 0, 0, 0x00, 0x21};
  f.insert(f.end(), pppoe.begin(), pppoe.end());
  f.insert(f.end(), ip.begin(), ip.end());
  EXPECT_EQ(DecodeFrame(DLT_EN10MB, f, &seg), DecodeResult::kTcp);
}

TEST(DecoderTest, RejectsWhatItCannotUse) {
  TcpSegment seg;
  auto ip = IpTcp(kClient, kServer, 1, 1, kTcpAck, "abc");
  // Truncated at every length short of the TCP header: never reads past.
  for (size_t n = 0; n < 40; ++n) {
    std::vector<uint8_t> cut(ip.begin(), ip.begin() + n);
    EXPECT_NE(DecodeFrame(DLT_RAW, cut, &seg), DecodeResult::kTcp) << n;
  }
  auto frag = ip;
  frag[6] = 0x20;  // more fragments
  EXPECT_EQ(DecodeFrame(DLT_RAW, frag, &seg), DecodeResult::kIpFragment);
  auto udp = ip;
  udp[9] = 17;
  EXPECT_EQ(DecodeFrame(DLT_RAW, udp, &seg), DecodeResult::kNotTcp);
  auto bad_ihl = ip;
  bad_ihl[0] = 0x43;
  EXPECT_EQ(DecodeFrame(DLT_RAW, bad_ihl, &seg), DecodeResult::kBadIpHeader);
  auto bad_off = ip;
  bad_off[20 + 12] = 0x20;  // data offset 8 bytes
  EXPECT_EQ(DecodeFrame(DLT_RAW, bad_off, &seg), DecodeResult::kBadTcpHeader);
  std::vector<uint8_t> arp(12, 0);
  testing::Put16(&arp, 0x0806);
  arp.resize(60, 0);
  EXPECT_EQ(DecodeFrame(DLT_EN10MB, arp, &seg), DecodeResult::kNotIp);
  EXPECT_EQ(DecodeFrame(/*DLT_IEEE802_11=*/105, ip, &seg),
            DecodeResult::kUnsupportedLinktype);
}

}  // namespace
}  // namespace tokenwatch::decode
