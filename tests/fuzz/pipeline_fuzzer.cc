// libFuzzer target: the agent's whole data path (decode, defragment, flow
// table, reassembly, HTTP, extraction, JWT decode, folding) on a run of
// frames, each [linktype selector: 1][length: 2, big-endian][frame]; the
// selector's top bit advances packet time past the idle timeout.
#include <pcap/dlt.h>

#include <cstddef>
#include <cstdint>

#include "agent/output/event_sink.h"
#include "agent/pipeline.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenwatch;
  using namespace tokenwatch::fuzz;
  static const config::Config cfg = [] {
    config::Config c = FuzzConfig();
    c.agent.limits.flow_idle_timeout = absl::Seconds(5);
    return c;
  }();
  constexpr int kLinktypes[] = {DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2,
                                DLT_NULL, DLT_RAW};
  Reader in(data, size);
  CheckingSink sink;
  {
    Pipeline pipeline(cfg, "fuzz", TestFingerprinter(), &sink);
    int64_t ts = 1'700'000'000'000'000;
    while (!in.empty()) {
      uint8_t sel = in.U8();
      uint16_t len = in.U16();
      Buffer frame(in.Bytes(len));
      ts += (sel & 0x80) ? 6'000'000 : 1000;
      capture::RawPacket p{ts, frame.data(),
                           static_cast<uint32_t>(frame.size()),
                           static_cast<uint32_t>(frame.size()),
                           kLinktypes[(sel & 0x7f) % std::size(kLinktypes)]};
      pipeline.OnPacket(p);
    }
    pipeline.Finish();
    FUZZ_CHECK(pipeline.stats().reassembly_buffered_bytes == 0);
    FUZZ_CHECK(pipeline.stats().flows_active == 0);
  }
  return 0;
}
