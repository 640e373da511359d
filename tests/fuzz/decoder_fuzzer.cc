// libFuzzer target: link/network/transport decoding and IP fragment
// reassembly. The input is a run of captured frames, each
//   [linktype selector: 1][length: 2, big-endian][frame bytes]
// decoded as the pipeline does; fragments go to one defragmenter, which
// must stay inside its bounds and hand out segments inside its buffer.
#include <pcap/dlt.h>

#include <cstddef>
#include <cstdint>

#include "agent/decode/decoder.h"
#include "agent/decode/defragmenter.h"
#include "agent/stats.h"
#include "tests/fuzz/fuzz_support.h"

namespace tokenwatch::fuzz {
namespace {

// Every link type Decode knows, plus one it does not.
constexpr int kLinktypes[] = {DLT_EN10MB,
                              DLT_LINUX_SLL,
                              DLT_LINUX_SLL2,
                              DLT_NULL,
                              DLT_LOOP,
                              DLT_RAW,
                              14,
                              101,
                              228,
                              229,
                              147};

void CheckSegment(const decode::TcpSegment& seg, const uint8_t* begin,
                  size_t size) {
  if (seg.payload_len == 0) return;
  FUZZ_CHECK(seg.payload >= begin);
  FUZZ_CHECK(seg.payload + seg.payload_len <= begin + size);
}

}  // namespace
}  // namespace tokenwatch::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenwatch;
  using namespace tokenwatch::fuzz;
  Reader in(data, size);
  AgentStats stats;
  decode::Defragmenter::Limits limits;
  limits.max_datagrams = 4;
  limits.max_total_bytes = 8192;
  limits.timeout_us = 1'000'000;
  decode::Defragmenter defrag(limits, &stats);
  int64_t ts = 1'700'000'000'000'000;
  while (!in.empty()) {
    uint8_t sel = in.U8();
    uint16_t len = in.U16();
    Buffer frame(in.Bytes(len));
    ts += (sel & 0x80) ? 2'000'000 : 1000;  // sometimes past the timeout
    capture::RawPacket p{ts, frame.data(), static_cast<uint32_t>(frame.size()),
                         static_cast<uint32_t>(frame.size()),
                         kLinktypes[(sel & 0x7f) % std::size(kLinktypes)]};
    decode::TcpSegment seg;
    decode::IpFragment frag;
    decode::DecodeResult r = decode::Decode(p, &seg, &frag);
    (void)decode::DecodeResultName(r);
    if (r == decode::DecodeResult::kTcp) {
      CheckSegment(seg, frame.data(), frame.size());
      (void)seg.src.ToString();
      (void)seg.dst.ToString();
    } else if (r == decode::DecodeResult::kIpFragment) {
      if (frag.len > 0) {
        FUZZ_CHECK(frag.data >= frame.data());
        FUZZ_CHECK(frag.data + frag.len <= frame.data() + frame.size());
      }
      if (defrag.Add(frag, ts, &seg)) {
        (void)seg.src.ToString();
        // The payload lives in the defragmenter: read all of it.
        Touch(seg.payload, seg.payload_len);
      }
      FUZZ_CHECK(defrag.in_progress() <= limits.max_datagrams);
      FUZZ_CHECK(defrag.held_bytes() <= limits.max_total_bytes);
    }
    defrag.Expire(ts);
  }
  return 0;
}
