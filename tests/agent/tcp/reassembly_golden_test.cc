// PcapPlusPlus publishes, with its TCP-reassembly test captures, the exact
// byte streams a correct reassembler delivers. We must reproduce them byte
// for byte — in capture order, and again after reordering and duplicating
// segments the way PcapPlusPlus' own tests do.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "agent/capture/pcap_source.h"
#include "agent/decode/decoder.h"
#include "agent/tcp/flow_table.h"
#include "agent/tcp/reassembler.h"

namespace tokenwatch::tcp {
namespace {

const std::string kDir = std::string(TOKENWATCH_SHARED_DATA) + "/pcapplusplus/";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Packet {
  std::vector<uint8_t> bytes;
  int linktype;
};

std::vector<Packet> ReadPackets(const std::string& path) {
  std::vector<Packet> out;
  auto src = capture::PcapSource::OpenFile(path, "");
  EXPECT_TRUE(src.ok()) << path;
  if (!src.ok()) return out;
  capture::RawPacket p;
  while (true) {
    auto r = (*src)->Next(&p);
    if (!r.ok() || *r != capture::PacketSource::Result::kPacket) break;
    out.push_back(
        {std::vector<uint8_t>(p.data, p.data + p.caplen), p.linktype});
  }
  return out;
}

// Reassembles every connection; per connection, the bytes of both
// directions in delivery order, and each direction alone.
struct Streams {
  std::vector<std::string> both;
  std::vector<std::array<std::string, 2>> dirs;
};

Streams Reassemble(const std::vector<Packet>& packets) {
  struct Sink : StreamSink {
    std::string* both;
    std::string* mine;
    void OnData(const uint8_t* d, size_t n) override {
      both->append(reinterpret_cast<const char*>(d), n);
      mine->append(reinterpret_cast<const char*>(d), n);
    }
    void OnGap(uint64_t) override {}
  };
  struct Conn {
    decode::IpAddress ip0;
    uint16_t port0;
    std::unique_ptr<Sink> sinks[2];
    std::unique_ptr<StreamReassembler> r[2];
    size_t index;
  };
  AgentStats stats;
  ReassemblyBudget budget;
  std::vector<std::unique_ptr<Conn>> conns;
  std::map<std::string, Conn*> by_key;
  Streams out;
  out.both.reserve(16);
  out.dirs.reserve(16);
  for (const Packet& pkt : packets) {
    capture::RawPacket raw{
        0, pkt.bytes.data(), static_cast<uint32_t>(pkt.bytes.size()),
        static_cast<uint32_t>(pkt.bytes.size()), pkt.linktype};
    decode::TcpSegment seg;
    if (decode::Decode(raw, &seg) != decode::DecodeResult::kTcp) continue;
    FlowKey k = FlowKey::Of(seg);
    Conn*& c = by_key[std::string(reinterpret_cast<const char*>(&k), sizeof k)];
    if (c == nullptr) {
      conns.push_back(std::make_unique<Conn>());
      c = conns.back().get();
      c->ip0 = seg.src;
      c->port0 = seg.src_port;
      c->index = out.both.size();
      out.both.emplace_back();
      out.dirs.emplace_back();
      for (int d = 0; d < 2; ++d) {
        c->sinks[d] = std::make_unique<Sink>();
        c->sinks[d]->both = &out.both[c->index];
        c->sinks[d]->mine = &out.dirs[c->index][d];
        c->r[d] = std::make_unique<StreamReassembler>(c->sinks[d].get(),
                                                      &budget, &stats);
      }
    }
    int dir = (seg.src == c->ip0 && seg.src_port == c->port0) ? 0 : 1;
    if (seg.flags & decode::kTcpSyn) {
      c->r[dir]->OnSyn(seg.seq);
    } else {
      c->r[dir]->OnSegment(seg.seq, seg.payload, seg.payload_len);
    }
  }
  for (auto& c : conns) {
    c->r[0]->Flush();
    c->r[1]->Flush();
  }
  return out;
}

TEST(ReassemblyGoldenTest, SingleStreamsMatchByteForByte) {
  const std::pair<const char*, const char*> cases[] = {
      {"one_tcp_stream.pcap", "one_tcp_stream_output.txt"},
      {"one_tcp_stream_max_seq.pcap",
       "one_tcp_stream_output.txt"},  // wraps 2^32
      {"one_http_stream_fin.pcap", "one_http_stream_fin_output.txt"},
      {"one_http_stream_fin2.pcap", "one_http_stream_fin2_output.txt"},
      {"one_http_stream_rst.pcap",
       "one_http_stream_rst_output.txt"},  // QinQ + PPPoE
      {"one_ipv6_http_stream.pcap", "one_ipv6_http_stream.txt"},
  };
  for (const auto& [pcap, expected] : cases) {
    Streams s = Reassemble(ReadPackets(kDir + pcap));
    ASSERT_EQ(s.both.size(), 1u) << pcap;
    std::string want = ReadFile(kDir + expected);
    ASSERT_FALSE(want.empty()) << expected;
    EXPECT_TRUE(s.both[0] == want)
        << pcap << ": " << s.both[0].size() << " vs " << want.size();
  }
}

TEST(ReassemblyGoldenTest, InterleavedConnectionsEachMatch) {
  Streams s = Reassemble(ReadPackets(kDir + "three_http_streams.pcap"));
  ASSERT_EQ(s.both.size(), 3u);
  // PcapPlusPlus numbers connections its own way; each of ours must equal
  // exactly one of its expected streams.
  std::vector<std::string> want;
  for (int i = 1; i <= 3; ++i) {
    want.push_back(ReadFile(kDir + "three_http_streams_conn_" +
                            std::to_string(i) + "_output.txt"));
  }
  std::vector<bool> used(3, false);
  for (const std::string& got : s.both) {
    auto it = std::find(want.begin(), want.end(), got);
    ASSERT_NE(it, want.end());
    size_t i = it - want.begin();
    EXPECT_FALSE(used[i]);
    used[i] = true;
  }
}

TEST(ReassemblyGoldenTest, ReorderedAndDuplicatedSegmentsGiveTheSameStreams) {
  std::vector<Packet> packets = ReadPackets(kDir + "one_tcp_stream.pcap");
  Streams reference = Reassemble(packets);
  ASSERT_EQ(reference.both[0], ReadFile(kDir + "one_tcp_stream_output.txt"));
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::vector<Packet> shuffled = packets;
    // Keep the handshake first; shuffle within windows of 5 and duplicate
    // some packets, as a lossy, reordering path would.
    for (size_t i = 3; i + 5 <= shuffled.size(); i += 5) {
      std::shuffle(shuffled.begin() + i, shuffled.begin() + i + 5, rng);
    }
    for (size_t i = 3; i < shuffled.size(); i += 4)
      shuffled.insert(shuffled.begin() + i, shuffled[i]);
    Streams s = Reassemble(shuffled);
    ASSERT_EQ(s.dirs.size(), 1u);
    EXPECT_EQ(s.dirs[0][0], reference.dirs[0][0]) << "round " << round;
    EXPECT_EQ(s.dirs[0][1], reference.dirs[0][1]) << "round " << round;
  }
}

}  // namespace
}  // namespace tokenwatch::tcp
