#include "agent/tls/recording.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace tokenwatch::tls {
namespace {

constexpr size_t kMagicLen = sizeof(kRecordingMagic) - 1;
constexpr uint32_t kMaxRecord = 1u << 20;  // a record is at most 16 KiB of data

void PutU(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out->push_back(static_cast<char>(v >> (8 * i)));
}

void PutStr(std::string* out, const std::string& s, int len_bytes) {
  PutU(out, s.size(), len_bytes);
  out->append(s);
}

// Reads fields of one record, bounded by its size.
class Cursor {
 public:
  explicit Cursor(std::string_view b) : b_(b) {}
  bool U(uint64_t* v, int bytes) {
    if (b_.size() < static_cast<size_t>(bytes)) return false;
    *v = 0;
    for (int i = 0; i < bytes; ++i)
      *v |= uint64_t{static_cast<uint8_t>(b_[i])} << (8 * i);
    b_.remove_prefix(bytes);
    return true;
  }
  bool Str(std::string* s, int len_bytes) {
    uint64_t n;
    if (!U(&n, len_bytes) || b_.size() < n) return false;
    s->assign(b_.data(), n);
    b_.remove_prefix(n);
    return true;
  }
  bool done() const { return b_.empty(); }

 private:
  std::string_view b_;
};

}  // namespace

bool IsRecording(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char magic[kMagicLen];
  bool yes = std::fread(magic, 1, kMagicLen, f) == kMagicLen &&
             std::memcmp(magic, kRecordingMagic, kMagicLen) == 0;
  std::fclose(f);
  return yes;
}

absl::StatusOr<std::unique_ptr<RecordingWriter>> RecordingWriter::Create(
    const std::string& path) {
  // 0600: it holds plaintext, tokens included, as a pcap file would.
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "agent.tls_probe.record: ", path, ": ", std::strerror(errno)));
  }
  FILE* f = fdopen(fd, "wb");
  if (f == nullptr ||
      std::fwrite(kRecordingMagic, 1, kMagicLen, f) != kMagicLen) {
    if (f != nullptr)
      std::fclose(f);
    else
      close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("agent.tls_probe.record: ", path, ": cannot write"));
  }
  return std::unique_ptr<RecordingWriter>(new RecordingWriter(f));
}

RecordingWriter::~RecordingWriter() { std::fclose(f_); }

absl::Status RecordingWriter::Write(const Chunk& c) {
  std::string body;
  PutU(&body, static_cast<uint8_t>(c.kind), 1);
  PutU(&body, static_cast<uint8_t>(c.dir), 1);
  PutU(&body, (c.bound ? 1 : 0) | (c.truncated ? 2 : 0), 1);
  PutU(&body, static_cast<uint64_t>(c.ts_us), 8);
  PutU(&body, c.ssl, 8);
  PutU(&body, c.pid, 4);
  PutU(&body, c.orig_len, 4);
  PutStr(&body, c.comm.substr(0, 255), 1);
  PutStr(&body, c.local.ip.substr(0, 255), 1);
  PutU(&body, c.local.port, 2);
  PutStr(&body, c.remote.ip.substr(0, 255), 1);
  PutU(&body, c.remote.port, 2);
  PutStr(&body, c.data, 4);
  std::string rec;
  PutU(&rec, body.size(), 4);
  rec += body;
  if (std::fwrite(rec.data(), 1, rec.size(), f_) != rec.size()) {
    return absl::DataLossError("agent.tls_probe.record: write failed");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RecordingReader>> RecordingReader::Open(
    const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", std::strerror(errno)));
  }
  char magic[kMagicLen];
  if (std::fread(magic, 1, kMagicLen, f) != kMagicLen ||
      std::memcmp(magic, kRecordingMagic, kMagicLen) != 0) {
    std::fclose(f);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a TLS probe recording"));
  }
  return std::unique_ptr<RecordingReader>(new RecordingReader(f, path));
}

RecordingReader::~RecordingReader() { std::fclose(f_); }

absl::StatusOr<bool> RecordingReader::Next(Chunk* c) {
  unsigned char len[4];
  size_t got = std::fread(len, 1, 4, f_);
  if (got == 0) return false;
  auto damaged = [&](const char* what) {
    return absl::DataLossError(
        absl::StrCat(path_, ": record at offset ", offset_, ": ", what));
  };
  if (got != 4) return damaged("cut short");
  uint32_t n = len[0] | len[1] << 8 | len[2] << 16 | uint32_t{len[3]} << 24;
  if (n > kMaxRecord) return damaged("larger than any record");
  std::string body(n, '\0');
  if (std::fread(body.data(), 1, n, f_) != n) return damaged("cut short");
  Cursor cur(body);
  uint64_t kind, dir, flags, ts, ssl, pid, orig, lport, rport;
  if (!cur.U(&kind, 1) || !cur.U(&dir, 1) || !cur.U(&flags, 1) ||
      !cur.U(&ts, 8) || !cur.U(&ssl, 8) || !cur.U(&pid, 4) ||
      !cur.U(&orig, 4) || !cur.Str(&c->comm, 1) || !cur.Str(&c->local.ip, 1) ||
      !cur.U(&lport, 2) || !cur.Str(&c->remote.ip, 1) || !cur.U(&rport, 2) ||
      !cur.Str(&c->data, 4) || !cur.done() ||
      kind > static_cast<uint8_t>(Chunk::Kind::kClose) ||
      dir > static_cast<uint8_t>(Chunk::Dir::kRead)) {
    return damaged("malformed");
  }
  c->kind = static_cast<Chunk::Kind>(kind);
  c->dir = static_cast<Chunk::Dir>(dir);
  c->bound = flags & 1;
  c->truncated = flags & 2;
  c->ts_us = static_cast<int64_t>(ts);
  c->ssl = ssl;
  c->pid = static_cast<uint32_t>(pid);
  c->orig_len = static_cast<uint32_t>(orig);
  c->local.port = static_cast<uint16_t>(lport);
  c->remote.port = static_cast<uint16_t>(rport);
  c->local.process.reset();
  c->remote.process.reset();
  offset_ += 4 + n;
  return true;
}

}  // namespace tokenwatch::tls
