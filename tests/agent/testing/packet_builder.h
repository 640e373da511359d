// Builders for frames and whole TCP conversations, so a test reads like the
// traffic it feeds: FlowBuilder().Syn().SynAck().Client("GET / ...").Fin().
#ifndef TOKENWATCH_TESTS_AGENT_TESTING_PACKET_BUILDER_H_
#define TOKENWATCH_TESTS_AGENT_TESTING_PACKET_BUILDER_H_

#include <arpa/inet.h>
#include <pcap/dlt.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "agent/capture/packet_source.h"
#include "agent/decode/decoder.h"

namespace tokenwatch::testing {

using capture::MemoryPacketSource;

struct Endpoint {
  std::string ip;  // "10.0.0.1" or "::1"
  uint16_t port;
};

inline void Put16(std::vector<uint8_t>* b, uint16_t v) {
  b->push_back(v >> 8);
  b->push_back(v & 0xff);
}
inline void Put32(std::vector<uint8_t>* b, uint32_t v) {
  Put16(b, v >> 16);
  Put16(b, v & 0xffff);
}

// One TCP/IP packet (no link layer) from `src` to `dst`.
inline std::vector<uint8_t> IpTcp(const Endpoint& src, const Endpoint& dst,
                                  uint32_t seq, uint32_t ack, uint8_t flags,
                                  std::string_view payload) {
  std::vector<uint8_t> tcp;
  Put16(&tcp, src.port);
  Put16(&tcp, dst.port);
  Put32(&tcp, seq);
  Put32(&tcp, ack);
  tcp.push_back(5 << 4);
  tcp.push_back(flags);
  Put16(&tcp, 65535);
  Put32(&tcp, 0);  // checksum, urgent pointer
  tcp.insert(tcp.end(), payload.begin(), payload.end());
  std::vector<uint8_t> ip;
  bool v6 = src.ip.find(':') != std::string::npos;
  if (!v6) {
    ip = {0x45, 0};
    Put16(&ip, static_cast<uint16_t>(20 + tcp.size()));
    Put32(&ip, 0);
    ip.push_back(64);
    ip.push_back(6);
    Put16(&ip, 0);
    uint8_t a[4];
    inet_pton(AF_INET, src.ip.c_str(), a);
    ip.insert(ip.end(), a, a + 4);
    inet_pton(AF_INET, dst.ip.c_str(), a);
    ip.insert(ip.end(), a, a + 4);
  } else {
    ip = {0x60, 0, 0, 0};
    Put16(&ip, static_cast<uint16_t>(tcp.size()));
    ip.push_back(6);
    ip.push_back(64);
    uint8_t a[16];
    inet_pton(AF_INET6, src.ip.c_str(), a);
    ip.insert(ip.end(), a, a + 16);
    inet_pton(AF_INET6, dst.ip.c_str(), a);
    ip.insert(ip.end(), a, a + 16);
  }
  ip.insert(ip.end(), tcp.begin(), tcp.end());
  return ip;
}

// Wraps an IP packet in Ethernet II (optionally VLAN-tagged).
inline std::vector<uint8_t> Ethernet(const std::vector<uint8_t>& ip,
                                     std::vector<uint16_t> vlans = {}) {
  std::vector<uint8_t> f(12, 0x02);
  for (uint16_t vid : vlans) {
    Put16(&f, 0x8100);
    Put16(&f, vid);
  }
  Put16(&f, (ip[0] >> 4) == 6 ? 0x86dd : 0x0800);
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

// A TCP conversation between a client and a server, tracking sequence
// numbers; each call appends one Ethernet frame and advances time by 1 ms.
class FlowBuilder {
 public:
  FlowBuilder(Endpoint client = {"10.0.3.7", 40000},
              Endpoint server = {"10.0.0.5", 8080},
              int64_t start_us = 1764497700000000)
      : c_(std::move(client)), s_(std::move(server)), ts_(start_us) {}

  FlowBuilder& Isn(uint32_t client_isn, uint32_t server_isn) {
    cseq_ = client_isn;
    sseq_ = server_isn;
    return *this;
  }
  FlowBuilder& Syn() {
    Add(c_, s_, cseq_++, 0, decode::kTcpSyn, "");
    return *this;
  }
  FlowBuilder& SynAck() {
    Add(s_, c_, sseq_++, cseq_, decode::kTcpSyn | decode::kTcpAck, "");
    return *this;
  }
  FlowBuilder& Handshake() { return Syn().SynAck().ClientAck(); }
  FlowBuilder& ClientAck() {
    Add(c_, s_, cseq_, sseq_, decode::kTcpAck, "");
    return *this;
  }
  FlowBuilder& Client(std::string_view data) {
    Add(c_, s_, cseq_, sseq_, decode::kTcpAck | decode::kTcpPsh, data);
    cseq_ += data.size();
    return *this;
  }
  FlowBuilder& Server(std::string_view data) {
    Add(s_, c_, sseq_, cseq_, decode::kTcpAck | decode::kTcpPsh, data);
    sseq_ += data.size();
    return *this;
  }
  // Client data cut into `piece`-byte segments.
  FlowBuilder& ClientInPieces(std::string_view data, size_t piece) {
    for (size_t i = 0; i < data.size(); i += piece)
      Client(data.substr(i, piece));
    return *this;
  }
  FlowBuilder& Fin() {
    Add(c_, s_, cseq_++, sseq_, decode::kTcpFin | decode::kTcpAck, "");
    Add(s_, c_, sseq_++, cseq_, decode::kTcpFin | decode::kTcpAck, "");
    return *this;
  }
  FlowBuilder& Rst() {
    Add(c_, s_, cseq_, sseq_, decode::kTcpRst, "");
    return *this;
  }
  FlowBuilder& Wait(int64_t us) {
    ts_ += us;
    return *this;
  }

  std::vector<MemoryPacketSource::Frame>& frames() { return frames_; }
  uint32_t client_seq() const { return cseq_; }
  uint32_t server_seq() const { return sseq_; }

 private:
  void Add(const Endpoint& src, const Endpoint& dst, uint32_t seq, uint32_t ack,
           uint8_t flags, std::string_view data) {
    frames_.push_back({ts_, Ethernet(IpTcp(src, dst, seq, ack, flags, data))});
    ts_ += 1000;
  }

  Endpoint c_, s_;
  int64_t ts_;
  uint32_t cseq_ = 1000, sseq_ = 5000;
  std::vector<MemoryPacketSource::Frame> frames_;
};

}  // namespace tokenwatch::testing

#endif  // TOKENWATCH_TESTS_AGENT_TESTING_PACKET_BUILDER_H_
