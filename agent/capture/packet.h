// A captured frame as the capture layer hands it on: bytes borrowed from the
// source until the next call, plus the observation time.
#ifndef TOKENWATCH_AGENT_CAPTURE_PACKET_H_
#define TOKENWATCH_AGENT_CAPTURE_PACKET_H_

#include <cstdint>

namespace tokenwatch::capture {

struct RawPacket {
  int64_t ts_us = 0;  // packet timestamp, microseconds since the epoch
  const uint8_t* data = nullptr;
  uint32_t caplen = 0;   // bytes present in `data`
  uint32_t wirelen = 0;  // bytes on the wire
  int linktype = 0;      // DLT_* of the source
};

}  // namespace tokenwatch::capture

#endif  // TOKENWATCH_AGENT_CAPTURE_PACKET_H_
