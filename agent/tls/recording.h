// A recording of the TLS probe's records, the probe's `-w`: written by the
// agent (agent.tls_probe.record), replayed with `-r FILE` through the same
// user-space half, deterministically and without a kernel (issue 14). Like
// a pcap file, it holds the plaintext the probe saw, tokens included: it
// is created mode 0600 and is for debugging and tests, never shipped.
//
// Format: "TWPROBE1\n", then records, little-endian:
//   u32 size of the rest | u8 kind | u8 dir | u8 flags (1 bound, 2 cut)
//   i64 ts_us | u64 ssl | u32 pid | u32 orig_len
//   u8 n, comm | u8 n, local ip | u16 local port | u8 n, remote ip
//   u16 remote port | u32 n, data
#ifndef TOKENWATCH_AGENT_TLS_RECORDING_H_
#define TOKENWATCH_AGENT_TLS_RECORDING_H_

#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/tls/chunk.h"

namespace tokenwatch::tls {

inline constexpr char kRecordingMagic[] = "TWPROBE1\n";

// True when the file at `path` starts with the recording's magic.
bool IsRecording(const std::string& path);

class RecordingWriter {
 public:
  static absl::StatusOr<std::unique_ptr<RecordingWriter>> Create(
      const std::string& path);
  ~RecordingWriter();
  absl::Status Write(const Chunk& c);

 private:
  explicit RecordingWriter(FILE* f) : f_(f) {}
  FILE* f_;
};

class RecordingReader {
 public:
  static absl::StatusOr<std::unique_ptr<RecordingReader>> Open(
      const std::string& path);
  ~RecordingReader();
  // False at the end; a damaged record is an error naming its offset.
  absl::StatusOr<bool> Next(Chunk* c);

 private:
  RecordingReader(FILE* f, std::string path) : f_(f), path_(std::move(path)) {}
  FILE* f_;
  std::string path_;
  uint64_t offset_ = sizeof(kRecordingMagic) - 1;
};

}  // namespace tokenwatch::tls

#endif  // TOKENWATCH_AGENT_TLS_RECORDING_H_
