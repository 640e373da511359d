// Hostile traffic at volume, for tests/agent/hostile_test.cc and
// tests/bench/hostile_bench.cc: frames are written into one reused buffer
// (a million SYNs must not become a million vectors) and fed straight to a
// Pipeline, interleaved with legitimate exchanges whose events must survive.
#ifndef TOKENWATCH_TESTS_AGENT_TESTING_HOSTILE_TRAFFIC_H_
#define TOKENWATCH_TESTS_AGENT_TESTING_HOSTILE_TRAFFIC_H_

#include <pcap/dlt.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "agent/capture/packet.h"
#include "agent/decode/decoder.h"
#include "agent/pipeline.h"
#include "tests/testing/heap_in_use.h"  // HeapInUse(), read by the bounds

namespace tokenwatch::testing {

constexpr uint32_t Ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return a << 24 | b << 16 | c << 8 | d;
}

// One TCP connection: client and server address, and the next sequence
// number of each side.
struct Conn {
  uint32_t client_ip = Ip4(10, 9, 0, 1);
  uint16_t client_port = 40000;
  uint32_t server_ip = Ip4(10, 0, 0, 5);
  uint16_t server_port = 8080;
  uint32_t client_seq = 1000;
  uint32_t server_seq = 5000;
};

// Builds Ethernet/IPv4/TCP frames into one buffer and feeds them to a
// pipeline, advancing packet time by `step_us` per frame.
class Feeder {
 public:
  explicit Feeder(Pipeline* pipeline, int64_t start_us = 1764497700000000,
                  int64_t step_us = 1)
      : pipeline_(pipeline), ts_us_(start_us), step_us_(step_us) {}

  void Send(uint32_t src_ip, uint16_t src_port, uint32_t dst_ip,
            uint16_t dst_port, uint32_t seq, uint32_t ack, uint8_t flags,
            std::string_view payload) {
    size_t n = 54 + payload.size();
    if (buf_.size() < n) buf_.resize(n);
    uint8_t* p = buf_.data();
    std::memset(p, 0x02, 12);
    p[12] = 0x08;  // IPv4
    p[13] = 0x00;
    uint8_t* ip = p + 14;
    ip[0] = 0x45;
    ip[1] = 0;
    Put16(ip + 2, static_cast<uint16_t>(40 + payload.size()));
    Put32(ip + 4, 0);
    ip[8] = 64;
    ip[9] = 6;
    Put16(ip + 10, 0);
    Put32(ip + 12, src_ip);
    Put32(ip + 16, dst_ip);
    uint8_t* tcp = ip + 20;
    Put16(tcp, src_port);
    Put16(tcp + 2, dst_port);
    Put32(tcp + 4, seq);
    Put32(tcp + 8, ack);
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    Put16(tcp + 14, 65535);
    Put32(tcp + 16, 0);
    if (!payload.empty()) std::memcpy(tcp + 20, payload.data(), payload.size());
    capture::RawPacket packet{ts_us_, p, static_cast<uint32_t>(n),
                              static_cast<uint32_t>(n), DLT_EN10MB};
    ts_us_ += step_us_;
    ++packets_;
    bytes_ += n;
    pipeline_->OnPacket(packet);
  }

  // Conversation helpers on a Conn (sequence numbers tracked).
  void Syn(Conn& c) {
    Send(c.client_ip, c.client_port, c.server_ip, c.server_port, c.client_seq++,
         0, decode::kTcpSyn, "");
  }
  void Handshake(Conn& c) {
    Syn(c);
    Send(c.server_ip, c.server_port, c.client_ip, c.client_port, c.server_seq++,
         c.client_seq, decode::kTcpSyn | decode::kTcpAck, "");
    Send(c.client_ip, c.client_port, c.server_ip, c.server_port, c.client_seq,
         c.server_seq, decode::kTcpAck, "");
  }
  // Client bytes in segments of at most `mss`.
  void Client(Conn& c, std::string_view data, size_t mss = 1400) {
    for (size_t i = 0; i < data.size(); i += mss) {
      std::string_view piece = data.substr(i, mss);
      Send(c.client_ip, c.client_port, c.server_ip, c.server_port, c.client_seq,
           c.server_seq, decode::kTcpAck | decode::kTcpPsh, piece);
      c.client_seq += piece.size();
    }
  }
  void Server(Conn& c, std::string_view data, size_t mss = 1400) {
    for (size_t i = 0; i < data.size(); i += mss) {
      std::string_view piece = data.substr(i, mss);
      Send(c.server_ip, c.server_port, c.client_ip, c.client_port, c.server_seq,
           c.client_seq, decode::kTcpAck | decode::kTcpPsh, piece);
      c.server_seq += piece.size();
    }
  }
  void Fin(Conn& c) {
    Send(c.client_ip, c.client_port, c.server_ip, c.server_port, c.client_seq++,
         c.server_seq, decode::kTcpFin | decode::kTcpAck, "");
    Send(c.server_ip, c.server_port, c.client_ip, c.client_port, c.server_seq++,
         c.client_seq, decode::kTcpFin | decode::kTcpAck, "");
  }
  // A whole well-behaved exchange: handshake, `request`, a 200, FIN both
  // ways (8 frames for a request that fits one segment).
  void Exchange(Conn c, std::string_view request) {
    Handshake(c);
    Client(c, request);
    Server(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    Fin(c);
  }

  uint64_t packets() const { return packets_; }
  uint64_t bytes() const { return bytes_; }
  int64_t now_us() const { return ts_us_; }

 private:
  static void Put16(uint8_t* p, uint16_t v) {
    p[0] = v >> 8;
    p[1] = v & 0xff;
  }
  static void Put32(uint8_t* p, uint32_t v) {
    Put16(p, v >> 16);
    Put16(p + 2, v & 0xffff);
  }

  Pipeline* pipeline_;
  int64_t ts_us_;
  int64_t step_us_;
  uint64_t packets_ = 0;
  uint64_t bytes_ = 0;
  std::vector<uint8_t> buf_;
};

// The legitimate request interleaved with every attack: a token at a path
// the test can count ("/legit/...").
inline std::string LegitRequest(std::string_view token, uint64_t n) {
  return "GET /legit/" + std::to_string(n) +
         " HTTP/1.1\r\nHost: orders.internal\r\nAuthorization: Bearer " +
         std::string(token) + "\r\n\r\n";
}

// The n-th legitimate connection: its own client address, never one an
// attack uses (10.9.0.0/16).
inline Conn LegitConn(uint64_t n) {
  Conn c;
  c.client_ip = Ip4(10, 9, (n >> 8) & 0xff, n & 0xff);
  c.client_port = static_cast<uint16_t>(20000 + (n % 40000));
  return c;
}

// A deterministic 64-bit mix (splitmix64) for "random" tuples.
inline uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace tokenwatch::testing

#endif  // TOKENWATCH_TESTS_AGENT_TESTING_HOSTILE_TRAFFIC_H_
