// HTTP/2 framing (RFC 9113 section 4 and 6): the 9-byte frame header, the
// frame types and flags the analyzer reads, and the plausibility rules used
// to recognise frames without having seen the connection start (protocol
// detection, and resynchronising after a gap or a mid-stream pickup).
#ifndef TOKENWATCH_AGENT_HTTP2_FRAME_H_
#define TOKENWATCH_AGENT_HTTP2_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tokenwatch::http2 {

// RFC 9113 3.4: what a client sends first with prior knowledge (and after
// a 101 to Upgrade: h2c).
inline constexpr std::string_view kClientPreface =
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
inline constexpr size_t kFrameHeaderBytes = 9;
// SETTINGS_MAX_FRAME_SIZE's initial value: what every peer may send before
// (and unless) it learns a larger one.
inline constexpr uint32_t kDefaultMaxFrameSize = 16384;

enum class FrameType : uint8_t {
  kData = 0,
  kHeaders = 1,
  kPriority = 2,
  kRstStream = 3,
  kSettings = 4,
  kPushPromise = 5,
  kPing = 6,
  kGoaway = 7,
  kWindowUpdate = 8,
  kContinuation = 9,
};

namespace flags {
inline constexpr uint8_t kEndStream = 0x1;   // DATA, HEADERS
inline constexpr uint8_t kAck = 0x1;         // SETTINGS, PING
inline constexpr uint8_t kEndHeaders = 0x4;  // HEADERS, PUSH_PROMISE, CONT.
inline constexpr uint8_t kPadded = 0x8;      // DATA, HEADERS, PUSH_PROMISE
inline constexpr uint8_t kPriority = 0x20;   // HEADERS
}  // namespace flags

// SETTINGS parameters the analyzer acts on.
inline constexpr uint16_t kSettingsHeaderTableSize = 0x1;

struct FrameHeader {
  uint32_t length = 0;  // 24 bits
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream = 0;  // 31 bits (the reserved bit is cleared)
  bool reserved_bit = false;

  bool Is(FrameType t) const { return type == static_cast<uint8_t>(t); }
  static FrameHeader Parse(const uint8_t* p) {
    FrameHeader h;
    h.length = uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8 | p[2];
    h.type = p[3];
    h.flags = p[4];
    h.reserved_bit = (p[5] & 0x80) != 0;
    h.stream = (uint32_t{p[5]} & 0x7f) << 24 | uint32_t{p[6]} << 16 |
               uint32_t{p[7]} << 8 | p[8];
    return h;
  }
};

inline uint32_t ReadU32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 |
         p[3];
}

// Whether a frame header breaks a rule RFC 9113 states for its type
// (stream 0 or not, fixed lengths). Unknown types are valid (ignored).
bool ViolatesFrameRules(const FrameHeader& h);

// Strict: a known type, only the flags that type defines, the reserved bit
// clear, the rules above kept and length <= max_len. Real peers send such
// frames; random bytes rarely pass, and never two in a row.
bool IsPlausibleFrame(const FrameHeader& h, uint32_t max_len);

// What a run of plausible frames from `p` looks like.
struct FrameChain {
  size_t frames = 0;       // complete plausible frames
  bool ends_exact = false; // the last complete frame ends at p + len
  bool broken = false;     // an implausible header was met
};
FrameChain CheckFrameChain(const uint8_t* p, size_t len,
                           uint32_t max_len = kDefaultMaxFrameSize);

// True when bytes that start at `p` read as HTTP/2 frames: two plausible
// frames in a row, or one that ends exactly where the bytes end. Used where
// the connection preface was not seen.
bool LooksLikeFrames(const uint8_t* p, size_t len);

}  // namespace tokenwatch::http2

#endif  // TOKENWATCH_AGENT_HTTP2_FRAME_H_
