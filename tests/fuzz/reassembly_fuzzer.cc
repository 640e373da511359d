// libFuzzer target: TCP reassembly and the flow table, fed direction-tagged
// chunks. Input: [isn client: 4][isn server: 4] then chunks of
//   [ctl: 1][seq delta: 1, signed][length: 1][payload]
// ctl bit 0 direction, 1 SYN, 2 FIN, 3 RST, 4 ACK, 5 second client port,
// 6 delta in KiB (far out of order / out of window), 7 time jump (expiry).
// The flow table runs the real HTTP session above; a standalone
// reassembler gets the client direction and must account for every byte.
#include <cstddef>
#include <cstdint>

#include "agent/decode/decoder.h"
#include "agent/tcp/flow_table.h"
#include "agent/tcp/reassembler.h"
#include "tests/fuzz/fuzz_support.h"

namespace tokenwatch::fuzz {
namespace {

class CountingSink : public tcp::StreamSink {
 public:
  void OnData(const uint8_t* data, size_t len) override {
    FUZZ_CHECK(len > 0);
    Touch(data, len);
    bytes += len;
  }
  void OnGap(uint64_t len) override { gaps += len; }
  uint64_t bytes = 0, gaps = 0;
};

decode::IpAddress V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  decode::IpAddress ip;
  ip.bytes[10] = ip.bytes[11] = 0xff;
  ip.bytes[12] = a, ip.bytes[13] = b, ip.bytes[14] = c, ip.bytes[15] = d;
  return ip;
}

}  // namespace
}  // namespace tokenwatch::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenwatch;
  using namespace tokenwatch::fuzz;
  Reader in(data, size);
  uint32_t next[2] = {in.U32(), in.U32()};
  config::Config cfg = FuzzConfig();
  AgentStats stats;
  tcp::ReassemblyBudget budget{2048, 6144, 0};
  tcp::ReassemblyBudget solo_budget{2048, 6144, 0};
  CountingSink solo_sink;
  {
    SessionWorld world(cfg);
    tcp::FlowTable flows(4, 5'000'000, &world.analyzers, &budget, &world.stats);
    tcp::StreamReassembler solo(&solo_sink, &solo_budget, &stats);
    int64_t ts = 1'700'000'000'000'000;
    std::vector<Buffer> keep;  // in-order data is handed on from the packet
    while (!in.empty()) {
      uint8_t ctl = in.U8();
      int8_t delta = static_cast<int8_t>(in.U8());
      uint8_t len = in.U8();
      Buffer payload(in.Bytes(len));
      int dir = ctl & 1;
      uint32_t seq = next[dir] +
                     static_cast<uint32_t>((ctl & 0x40) ? delta * 1024 : delta);
      ts += (ctl & 0x80) ? 6'000'000 : 1000;
      world.clock.now_us = ts;
      decode::TcpSegment seg;
      decode::IpAddress client = V4(10, 0, 3, 7), server = V4(10, 0, 0, 5);
      uint16_t cport = (ctl & 0x20) ? 40001 : 40000, sport = 80;
      seg.src = dir ? server : client;
      seg.dst = dir ? client : server;
      seg.src_port = dir ? sport : cport;
      seg.dst_port = dir ? cport : sport;
      seg.seq = seq;
      seg.ack = next[1 - dir];
      seg.flags = static_cast<uint8_t>(((ctl & 2) ? decode::kTcpSyn : 0) |
                                       ((ctl & 4) ? decode::kTcpFin : 0) |
                                       ((ctl & 8) ? decode::kTcpRst : 0) |
                                       ((ctl & 16) ? decode::kTcpAck : 0));
      seg.payload = payload.data();
      seg.payload_len = static_cast<uint32_t>(payload.size());
      seg.ts_us = ts;
      flows.OnSegment(seg);
      flows.Expire(ts - 5'000'000);
      world.folder.Advance(ts);
      FUZZ_CHECK(flows.size() <= 4);
      if (dir == 0) {
        if (ctl & 2) {
          solo.OnSyn(seq);
          if (payload.size() > 0)
            solo.OnSegment(seq + 1, payload.data(), payload.size());
        } else if (payload.size() > 0) {
          solo.OnSegment(seq, payload.data(), payload.size());
        }
      } else if (ctl & 16) {
        solo.OnPeerAck(seg.ack);
      }
      uint32_t end =
          seq + static_cast<uint32_t>(payload.size()) + ((ctl & 2) ? 1 : 0);
      if (static_cast<int32_t>(end - next[dir]) > 0) next[dir] = end;
    }
    solo.Flush();
    FUZZ_CHECK(solo_sink.bytes + solo_sink.gaps == solo.delivered());
    FUZZ_CHECK(solo.buffered() == 0);
    flows.CloseAll();
    world.folder.FlushAll();
  }
  // Every held byte was given back to the shared budgets.
  FUZZ_CHECK(budget.used == 0);
  FUZZ_CHECK(solo_budget.used == 0);
  return 0;
}
