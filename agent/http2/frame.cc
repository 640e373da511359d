#include "agent/http2/frame.h"

namespace tokenwatch::http2 {

bool ViolatesFrameRules(const FrameHeader& h) {
  switch (static_cast<FrameType>(h.type)) {
    case FrameType::kData:
    case FrameType::kHeaders:
    case FrameType::kContinuation:
      return h.stream == 0;
    case FrameType::kPushPromise:
      return h.stream == 0 || h.length < 4;
    case FrameType::kPriority:
      return h.stream == 0 || h.length != 5;
    case FrameType::kRstStream:
      return h.stream == 0 || h.length != 4;
    case FrameType::kSettings:
      return h.stream != 0 || h.length % 6 != 0 ||
             ((h.flags & flags::kAck) != 0 && h.length != 0);
    case FrameType::kPing:
      return h.stream != 0 || h.length != 8;
    case FrameType::kGoaway:
      return h.stream != 0 || h.length < 8;
    case FrameType::kWindowUpdate:
      return h.length != 4;
  }
  return false;  // an extension frame type: ignored, not an error
}

namespace {
// The flags each type defines (RFC 9113 section 6).
uint8_t DefinedFlags(uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kData:
      return flags::kEndStream | flags::kPadded;
    case FrameType::kHeaders:
      return flags::kEndStream | flags::kEndHeaders | flags::kPadded |
             flags::kPriority;
    case FrameType::kSettings:
    case FrameType::kPing:
      return flags::kAck;
    case FrameType::kPushPromise:
      return flags::kEndHeaders | flags::kPadded;
    case FrameType::kContinuation:
      return flags::kEndHeaders;
    default:
      return 0;
  }
}
}  // namespace

bool IsPlausibleFrame(const FrameHeader& h, uint32_t max_len) {
  if (h.type > static_cast<uint8_t>(FrameType::kContinuation)) return false;
  if (h.reserved_bit || h.length > max_len) return false;
  if ((h.flags & ~DefinedFlags(h.type)) != 0) return false;
  return !ViolatesFrameRules(h);
}

FrameChain CheckFrameChain(const uint8_t* p, size_t len, uint32_t max_len) {
  FrameChain c;
  size_t pos = 0;
  while (pos + kFrameHeaderBytes <= len) {
    FrameHeader h = FrameHeader::Parse(p + pos);
    if (!IsPlausibleFrame(h, max_len)) {
      c.broken = true;
      return c;
    }
    size_t end = pos + kFrameHeaderBytes + h.length;
    if (end > len) return c;  // plausible so far; the rest is not here yet
    ++c.frames;
    pos = end;
    c.ends_exact = pos == len;
  }
  return c;
}

bool LooksLikeFrames(const uint8_t* p, size_t len) {
  FrameChain c = CheckFrameChain(p, len);
  if (c.broken) return false;
  return c.frames >= 2 || (c.frames == 1 && c.ends_exact);
}

}  // namespace tokenwatch::http2
