// libFuzzer target: protocol detection and the HTTP/2 analyzer (frames,
// HPACK through nghttp2 with the unknown-index recovery, streams), with the
// HTTP/1 analyzer behind the same detector (upgrades, CONNECT tunnels).
// Input: [mode: 1] then chunks of [ctl: 1][length: 2, big-endian][bytes];
// ctl bit 0 direction, bit 1 a gap of `length` bytes instead of data.
// mode bit 0/1: client side known (0 or 1) or not; bit 2/3: direction 0/1
// picked up mid-stream. Requests go through the token layer as in the
// agent. Invariants: the connection's memory stays under the figure its
// limits allow, and its streams under their bound.
#include <cstddef>
#include <cstdint>

#include "agent/http2/session.h"
#include "agent/protocols/detector.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenwatch;
  using namespace tokenwatch::fuzz;
  static const config::Config cfg = FuzzConfig();
  Reader in(data, size);
  SessionWorld world(cfg);
  http2::Http2Context h2;
  h2.max_header_bytes = cfg.agent.limits.max_header_bytes;
  h2.max_header_list_bytes = cfg.agent.limits.max_header_bytes;
  h2.max_streams = 8;
  h2.max_table_bytes = 4096;
  h2.max_continuations = 16;
  h2.stats = &world.stats;
  h2.observer = &world.usage;
  h2.clock = &world.clock;
  const size_t bound = 2 * (2 * h2.max_header_bytes + 64 * 1024 + 16 * 1024 +
                            4 * h2.max_table_bytes + 8 * 1024 + 16 * 1024) +
                       h2.max_streams * 128 + 4096;
  int64_t ts = 1'700'000'000'000'000;
  world.clock.now_us = ts;
  {
    protocols::ProtocolDetector det(
        protocols::Analyzers{&world.ctx, &h2}, {"10.0.3.7", 40000},
        {"10.0.0.5", 7070});
    uint8_t mode = in.U8();
    if (mode & 1) det.SetClientSide((mode >> 1) & 1);
    if (mode & 4) det.StartResync(0);
    if (mode & 8) det.StartResync(1);
    while (!in.empty()) {
      uint8_t ctl = in.U8();
      uint16_t len = in.U16();
      int dir = ctl & 1;
      world.clock.now_us = (ts += 1000);
      if (ctl & 2) {
        det.OnGap(dir, len);
        continue;
      }
      Buffer bytes(in.Bytes(len));
      det.OnData(dir, bytes.data(), bytes.size());
      if (const http2::Http2Session* s = det.http2()) {
        FUZZ_CHECK(s->open_streams() <= h2.max_streams);
        FUZZ_CHECK(s->MemoryBytes() <= bound);
      }
      world.folder.Advance(ts);
    }
    det.Close();
    if (const http2::Http2Session* s = det.http2())
      FUZZ_CHECK(s->open_streams() == 0);
  }
  world.folder.FlushAll();
  return 0;
}
