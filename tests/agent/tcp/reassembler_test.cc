#include "agent/tcp/reassembler.h"

#include <gtest/gtest.h>

#include <string>

namespace tokenwatch::tcp {
namespace {

struct Recorder : StreamSink {
  std::string data;
  uint64_t gaps = 0;
  void OnData(const uint8_t* d, size_t n) override {
    data.append(reinterpret_cast<const char*>(d), n);
  }
  void OnGap(uint64_t n) override {
    gaps += n;
    data.append("<gap>");
  }
};

class ReassemblerTest : public ::testing::Test {
 protected:
  void Seg(uint32_t seq, std::string_view s) {
    r_.OnSegment(seq, reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  Recorder sink_;
  ReassemblyBudget budget_;
  AgentStats stats_;
  StreamReassembler r_{&sink_, &budget_, &stats_};
};

TEST_F(ReassemblerTest, InOrderIsDeliveredAtOnce) {
  r_.OnSyn(99);
  Seg(100, "GET ");
  Seg(104, "/ HTTP/1.1");
  EXPECT_EQ(sink_.data, "GET / HTTP/1.1");
  EXPECT_EQ(r_.buffered(), 0u);
}

TEST_F(ReassemblerTest, OutOfOrderWaitsForTheHole) {
  r_.OnSyn(99);
  Seg(104, "BBBB");
  Seg(108, "CCCC");
  EXPECT_EQ(sink_.data, "");
  constexpr uint64_t kHeld = 8 + 2 * StreamReassembler::kBlockOverhead;
  EXPECT_EQ(r_.buffered(), kHeld);
  EXPECT_EQ(budget_.used, kHeld);
  Seg(100, "AAAA");
  EXPECT_EQ(sink_.data, "AAAABBBBCCCC");
  EXPECT_EQ(r_.buffered(), 0u);
  EXPECT_EQ(budget_.used, 0u);
}

TEST_F(ReassemblerTest, RetransmissionIsCountedNotRepeated) {
  r_.OnSyn(99);
  Seg(100, "AAAA");
  Seg(100, "AAAA");
  Seg(102, "AA");
  EXPECT_EQ(sink_.data, "AAAA");
  EXPECT_EQ(stats_.Get(Anomaly::kTcpRetransmission), 2u);
}

TEST_F(ReassemblerTest, OverlapKeepsTheFirstCopy) {
  // suricata-verify eve-overlap: "GOOD" then "EVIL" at the same offset.
  r_.OnSyn(0);
  Seg(2, "GOOD");  // ahead of a 1-byte hole
  Seg(2, "EVIL");
  Seg(3, "XXX");  // partial overlap, different bytes
  Seg(1, "_");
  EXPECT_EQ(sink_.data, "_GOOD");
  EXPECT_EQ(stats_.Get(Anomaly::kTcpOverlapInconsistent), 2u);
}

TEST_F(ReassemblerTest, SegmentSpanningSeveralBlocksFillsOnlyTheHoles) {
  r_.OnSyn(0);
  Seg(3, "cc");
  Seg(7, "ef");
  Seg(2, "bccdeef");  // covers both blocks and the holes around them
  Seg(1, "a");
  EXPECT_EQ(sink_.data, "abccdeef");
}

TEST_F(ReassemblerTest, OverlapWithDeliveredDataDeliversOnlyTheNewTail) {
  r_.OnSyn(0);
  Seg(1, "abcd");
  Seg(3, "cdef");
  EXPECT_EQ(sink_.data, "abcdef");
}

TEST_F(ReassemblerTest, SequenceWrapAround) {
  r_.OnSyn(0xfffffff0u);
  Seg(0xfffffff1u, std::string(15, 'a'));  // up to 2^32
  Seg(0x00000000u, "bbbb");                // wrapped
  Seg(0x00000008u, "dddd");                // out of order after the wrap
  Seg(0x00000004u, "cccc");
  EXPECT_EQ(sink_.data, std::string(15, 'a') + "bbbbccccdddd");
  EXPECT_EQ(r_.delivered(), 27u);
}

TEST_F(ReassemblerTest, MidstreamPickupStartsAtTheFirstSegment) {
  Seg(123456, "HTTP/1.1 200 OK\r\n");
  EXPECT_TRUE(r_.picked_up_midstream());
  EXPECT_EQ(sink_.data, "HTTP/1.1 200 OK\r\n");
  EXPECT_EQ(stats_.Get(Anomaly::kTcpMidstreamPickup), 1u);
}

TEST_F(ReassemblerTest, PerFlowCapForcesAGapAndCountsTheDrop) {
  budget_.flow_cap =
      2 * (4 + StreamReassembler::kBlockOverhead);  // two 4-byte blocks
  r_.OnSyn(0);
  Seg(11, "BBBB");
  Seg(15, "CCCC");
  Seg(19, "DDDD");  // would hold 12 bytes: over the cap
  // The 10-byte hole is given up (and counted); nothing held is lost.
  EXPECT_EQ(stats_.Get(Drop::kReassemblyFlowCap), 10u);
  EXPECT_EQ(sink_.data, "<gap>BBBBCCCCDDDD");
  EXPECT_EQ(sink_.gaps, 10u);
  EXPECT_EQ(budget_.used, 0u);
}

TEST_F(ReassemblerTest, GlobalCapIsSharedAcrossStreams) {
  budget_.global_cap = 4 + StreamReassembler::kBlockOverhead + 2;  // one block
  Recorder other_sink;
  StreamReassembler other(&other_sink, &budget_, &stats_);
  r_.OnSyn(0);
  other.OnSyn(0);
  Seg(5, "AAAA");
  other.OnSegment(5, reinterpret_cast<const uint8_t*>("BBBB"), 4);
  EXPECT_EQ(stats_.Get(Drop::kReassemblyGlobalCap), 4u);
  EXPECT_LE(budget_.used, budget_.global_cap);
}

TEST_F(ReassemblerTest, PeerAckBeyondAHoleReleasesHeldData) {
  r_.OnSyn(0);
  Seg(5, "EEEE");
  r_.OnPeerAck(3);  // the hole is still open: the receiver lacks byte 3..
  EXPECT_EQ(sink_.data, "");
  r_.OnPeerAck(9);  // the receiver has everything: we missed bytes 1..4
  EXPECT_EQ(sink_.data, "<gap>EEEE");
  EXPECT_EQ(sink_.gaps, 4u);
}

TEST_F(ReassemblerTest, InOrderDataDoesNotOverrideHeldCopies) {
  r_.OnSyn(0);
  Seg(6, "AAAAA");       // held first
  Seg(1, "0123456789");  // in order, covering the held block
  EXPECT_EQ(sink_.data, "01234AAAAA");
  EXPECT_EQ(stats_.Get(Anomaly::kTcpOverlapInconsistent), 1u);
}

TEST_F(ReassemblerTest, ManyTinyBlocksAndACapHitNeverRecurse) {
  // A hostile flow: 100k one-byte blocks with holes between them, then one
  // large segment over the cap. Must not overflow the stack.
  budget_.flow_cap = 100000 * (1 + StreamReassembler::kBlockOverhead);
  r_.OnSyn(0);
  for (uint32_t i = 0; i < 100000; ++i) Seg(3 + 2 * i, "x");
  std::string big(60000, 'y');
  Seg(400001, big);
  EXPECT_GT(stats_.Get(Drop::kReassemblyFlowCap), 0u);
  EXPECT_LE(r_.buffered(), budget_.flow_cap);
}

TEST_F(ReassemblerTest, FlushDeliversAcrossHoles) {
  r_.OnSyn(0);
  Seg(3, "cc");
  Seg(9, "ff");
  r_.Flush();
  EXPECT_EQ(sink_.data, "<gap>cc<gap>ff");
  EXPECT_EQ(r_.buffered(), 0u);
}

TEST_F(ReassemblerTest, FarFutureSequenceIsOutOfWindow) {
  r_.OnSyn(0);
  Seg(0x70000000u, "x");
  EXPECT_EQ(stats_.Get(Anomaly::kTcpSeqOutOfWindow), 1u);
  EXPECT_EQ(r_.buffered(), 0u);
}

TEST_F(ReassemblerTest, DestructionReturnsTheBudget) {
  {
    Recorder s;
    StreamReassembler r(&s, &budget_, &stats_);
    r.OnSyn(0);
    r.OnSegment(10, reinterpret_cast<const uint8_t*>("abc"), 3);
    EXPECT_EQ(budget_.used, 3u + StreamReassembler::kBlockOverhead);
  }
  EXPECT_EQ(budget_.used, 0u);
}

}  // namespace
}  // namespace tokenwatch::tcp
