// libFuzzer target: the HTTP/1 parser and the session that pairs requests
// with responses. Input: [mode: 1] then chunks of
//   [ctl: 1][length: 2, big-endian][bytes]
// ctl bit 0 direction; bit 1 a gap of `length` bytes instead of data.
// mode bit 0/1: client side known (0 or 1) or left to the first head;
// bit 2/3: start direction 0/1 resynchronising (mid-stream pick-up).
// Every parsed request goes through the extractor, token cache and JWT
// decoder, as in the agent.
#include <cstddef>
#include <cstdint>

#include "agent/http/session.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenwatch;
  using namespace tokenwatch::fuzz;
  static const config::Config cfg = FuzzConfig();
  Reader in(data, size);
  SessionWorld world(cfg);
  int64_t ts = 1'700'000'000'000'000;
  world.clock.now_us = ts;
  {
    http::HttpSession session(&world.ctx, {"10.0.3.7", 40000},
                              {"10.0.0.5", 8080});
    uint8_t mode = in.U8();
    if (mode & 1) session.SetClientSide((mode >> 1) & 1);
    if (mode & 4) session.StartResync(0);
    if (mode & 8) session.StartResync(1);
    while (!in.empty()) {
      uint8_t ctl = in.U8();
      uint16_t len = in.U16();
      int dir = ctl & 1;
      world.clock.now_us = (ts += 1000);
      if (ctl & 2) {
        session.OnGap(dir, len);
        continue;
      }
      Buffer bytes(in.Bytes(len));
      session.OnData(dir, bytes.data(), bytes.size());
      world.folder.Advance(ts);
    }
    session.Close();
  }
  world.folder.FlushAll();
  return 0;
}
