#include "agent/decode/defragmenter.h"

#include <gtest/gtest.h>

#include "tests/agent/testing/packet_builder.h"

namespace tokenwatch::decode {
namespace {

// Splits the TCP part of an IPv4 packet into IP fragments of `piece` bytes
// (a multiple of 8), returning the fragment views into `tcp`.
std::vector<IpFragment> Fragments(const std::vector<uint8_t>& tcp,
                                  uint32_t piece, uint32_t id) {
  std::vector<IpFragment> out;
  for (uint32_t off = 0; off < tcp.size(); off += piece) {
    IpFragment f;
    f.src.bytes[10] = f.src.bytes[11] = 0xff;
    f.src.bytes[15] = 7;
    f.dst.bytes[10] = f.dst.bytes[11] = 0xff;
    f.dst.bytes[15] = 5;
    f.id = id;
    f.offset = off;
    f.len = std::min<uint32_t>(piece, static_cast<uint32_t>(tcp.size()) - off);
    f.more = off + f.len < tcp.size();
    f.protocol = 6;
    f.data = tcp.data() + off;
    out.push_back(f);
  }
  return out;
}

class DefragmenterTest : public ::testing::Test {
 protected:
  DefragmenterTest() {
    auto ip = testing::IpTcp(
        {"10.0.0.7", 40000}, {"10.0.0.5", 80}, 1, 1, kTcpAck,
        "GET /fragmented HTTP/1.1\r\nAuthorization: Bearer abc\r\n\r\n");
    tcp_.assign(ip.begin() + 20, ip.end());
  }
  std::string Payload(const TcpSegment& s) {
    return std::string(reinterpret_cast<const char*>(s.payload), s.payload_len);
  }
  AgentStats stats_;
  Defragmenter d_{Defragmenter::Limits{}, &stats_};
  std::vector<uint8_t> tcp_;
};

TEST_F(DefragmenterTest, InOrderAndOutOfOrder) {
  auto frags = Fragments(tcp_, 16, 1);
  TcpSegment seg;
  for (size_t i = 0; i + 1 < frags.size(); ++i)
    EXPECT_FALSE(d_.Add(frags[i], 1, &seg));
  ASSERT_TRUE(d_.Add(frags.back(), 1, &seg));
  EXPECT_EQ(Payload(seg),
            "GET /fragmented HTTP/1.1\r\nAuthorization: Bearer abc\r\n\r\n");
  EXPECT_EQ(seg.dst_port, 80);

  frags = Fragments(tcp_, 8, 2);
  std::reverse(frags.begin(), frags.end());
  bool done = false;
  for (auto& f : frags) done = d_.Add(f, 1, &seg);
  ASSERT_TRUE(done);
  EXPECT_EQ(seg.payload_len, tcp_.size() - 20);
  EXPECT_EQ(d_.in_progress(), 0u);
  EXPECT_EQ(d_.held_bytes(), 0u);
}

TEST_F(DefragmenterTest, OverlapKeepsTheFirstCopy) {
  auto frags = Fragments(tcp_, 24, 3);
  std::vector<uint8_t> evil(tcp_);
  for (size_t i = 24; i < evil.size(); ++i) evil[i] = 'X';
  auto evil_frags = Fragments(evil, 24, 3);
  TcpSegment seg;
  EXPECT_FALSE(d_.Add(frags[0], 1, &seg));
  EXPECT_FALSE(d_.Add(frags[1], 1, &seg));
  EXPECT_FALSE(d_.Add(evil_frags[1], 1, &seg));  // same offset, other bytes
  bool done = false;
  for (size_t i = 2; i < frags.size(); ++i) done = d_.Add(frags[i], 1, &seg);
  ASSERT_TRUE(done);
  EXPECT_EQ(Payload(seg).find('X'), std::string::npos);
  EXPECT_GE(stats_.Get(Anomaly::kIpFragmentOverlap), 1u);
}

TEST_F(DefragmenterTest, BoundedAndTimedOut) {
  Defragmenter small(Defragmenter::Limits{2, 65535, 1 << 20, 1000}, &stats_);
  TcpSegment seg;
  for (uint32_t id = 0; id < 5; ++id)
    small.Add(Fragments(tcp_, 16, id)[0], 1, &seg);
  EXPECT_EQ(small.in_progress(), 2u);
  EXPECT_EQ(stats_.Get(Drop::kFragmentLimit), 3u);
  small.Expire(5000);
  EXPECT_EQ(small.in_progress(), 0u);
  EXPECT_EQ(stats_.Get(Drop::kFragmentTimeout), 2u);
  IpFragment huge = Fragments(tcp_, 16, 9)[0];
  huge.offset = 65528;
  EXPECT_FALSE(small.Add(huge, 1, &seg));
  EXPECT_EQ(stats_.Get(Drop::kFragmentLimit), 4u);
}

}  // namespace
}  // namespace tokenwatch::decode
