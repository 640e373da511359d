// Writes each TCP connection's reassembled bytes, both directions in the
// order they were delivered, one file per connection (conn_N.txt, N from 1 in
// order of first packet). Used to compare our reassembly with the expected
// streams PcapPlusPlus publishes for its captures.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/capture/pcap_source.h"
#include "agent/decode/decoder.h"
#include "agent/stats.h"
#include "agent/tcp/flow_table.h"
#include "agent/tcp/reassembler.h"

namespace {

using tokenwatch::AgentStats;
using tokenwatch::tcp::FlowKey;
using tokenwatch::tcp::ReassemblyBudget;
using tokenwatch::tcp::StreamReassembler;
using tokenwatch::tcp::StreamSink;

struct Conn;
struct Sink : StreamSink {
  std::string* out = nullptr;
  void OnData(const uint8_t* d, size_t n) override {
    out->append(reinterpret_cast<const char*>(d), n);
  }
  void OnGap(uint64_t) override {}
};

struct Conn {
  Conn(ReassemblyBudget* b, AgentStats* s)
      : reasm{StreamReassembler(&sinks[0], b, s), StreamReassembler(&sinks[1], b, s)} {
    sinks[0].out = sinks[1].out = &data;
  }
  tokenwatch::decode::IpAddress ip0;
  uint16_t port0 = 0;
  std::string data;
  Sink sinks[2];
  StreamReassembler reasm[2];
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: reassemble_dump CAPTURE OUTDIR\n");
    return 2;
  }
  auto src = tokenwatch::capture::PcapSource::OpenFile(argv[1], "");
  if (!src.ok()) {
    fprintf(stderr, "%s\n", std::string(src.status().message()).c_str());
    return 1;
  }
  AgentStats stats;
  ReassemblyBudget budget;
  std::vector<std::unique_ptr<Conn>> conns;
  std::map<std::string, Conn*> by_key;
  tokenwatch::capture::RawPacket p;
  while (true) {
    auto r = (*src)->Next(&p);
    if (!r.ok() || *r != tokenwatch::capture::PacketSource::Result::kPacket) break;
    tokenwatch::decode::TcpSegment seg;
    if (tokenwatch::decode::Decode(p, &seg) != tokenwatch::decode::DecodeResult::kTcp) continue;
    FlowKey k = FlowKey::Of(seg);
    std::string key(reinterpret_cast<const char*>(&k), sizeof k);
    Conn*& c = by_key[key];
    if (c == nullptr) {
      conns.push_back(std::make_unique<Conn>(&budget, &stats));
      c = conns.back().get();
      c->ip0 = seg.src;
      c->port0 = seg.src_port;
    }
    int dir = (seg.src == c->ip0 && seg.src_port == c->port0) ? 0 : 1;
    if (seg.flags & tokenwatch::decode::kTcpSyn) {
      c->reasm[dir].OnSyn(seg.seq);
      if (seg.payload_len) c->reasm[dir].OnSegment(seg.seq + 1, seg.payload, seg.payload_len);
    } else {
      c->reasm[dir].OnSegment(seg.seq, seg.payload, seg.payload_len);
    }
  }
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i]->reasm[0].Flush();
    conns[i]->reasm[1].Flush();
    std::string path = std::string(argv[2]) + "/conn_" + std::to_string(i + 1) + ".txt";
    FILE* f = fopen(path.c_str(), "wb");
    if (f == nullptr) return 1;
    fwrite(conns[i]->data.data(), 1, conns[i]->data.size(), f);
    fclose(f);
  }
  printf("%zu connections\n", conns.size());
  return 0;
}
