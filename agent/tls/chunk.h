// One record of the TLS probe, decoded in user space: plaintext a process
// wrote to or read from OpenSSL, or a change of what an SSL* is bound to.
// The probe (tls_probe.h) makes them from its ring buffer; tests and the
// replay seam make them by hand (probe_streams_test.cc).
#ifndef TOKENWATCH_AGENT_TLS_CHUNK_H_
#define TOKENWATCH_AGENT_TLS_CHUNK_H_

#include <cstdint>
#include <string>

#include "agent/analyzer/stream.h"

namespace tokenwatch::tls {

struct Chunk {
  enum class Kind : uint8_t { kData, kBind, kClose };
  enum class Dir : uint8_t { kWrite, kRead };  // as the process did it

  Kind kind = Kind::kData;
  Dir dir = Dir::kWrite;
  int64_t ts_us = 0;  // wall clock, microseconds since the epoch
  uint64_t ssl = 0;   // with pid, the connection's identity
  uint32_t pid = 0;
  std::string comm;
  // The socket behind the SSL*, this process's end first; `bound` false
  // when not known yet (a kBind follows).
  bool bound = false;
  analyzer::Endpoint local, remote;
  bool truncated = false;  // data is the first part of a longer call
  uint32_t orig_len = 0;   // bytes the call moved
  std::string data;
};

}  // namespace tokenwatch::tls

#endif  // TOKENWATCH_AGENT_TLS_CHUNK_H_
