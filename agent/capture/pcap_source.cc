#include "agent/capture/pcap_source.h"

#include <poll.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tokenwatch::capture {
namespace {
// Large enough for 64 KiB TSO/GRO super-frames seen on loopback and `any`.
constexpr int kSnapLen = 262144;
constexpr int kReadTimeoutMs = 100;
constexpr int kLiveBufferBytes = 32 << 20;
constexpr size_t kFileBufferBytes = 1 << 20;
}  // namespace

PcapSource::PcapSource(pcap_t* handle, bool live, uint64_t file_size)
    : handle_(handle),
      live_(live),
      linktype_(pcap_datalink(handle)),
      file_size_(file_size) {}

PcapSource::~PcapSource() {
  if (handle_ != nullptr) pcap_close(handle_);
}

absl::StatusOr<std::unique_ptr<PcapSource>> PcapSource::OpenLive(
    const std::string& interface, const std::string& filter) {
  char err[PCAP_ERRBUF_SIZE] = {0};
  pcap_t* p = pcap_create(interface.c_str(), err);
  if (p == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open interface ", interface, ": ", err));
  }
  pcap_set_snaplen(p, kSnapLen);
  pcap_set_promisc(p, 0);
  pcap_set_timeout(p, kReadTimeoutMs);
  pcap_set_buffer_size(p, kLiveBufferBytes);
  // Deliver packets as they arrive: alerts should not wait for a full buffer.
  pcap_set_immediate_mode(p, 1);
  int rc = pcap_activate(p);
  if (rc < 0) {
    std::string msg =
        absl::StrCat("cannot capture on ", interface, ": ", pcap_geterr(p));
    pcap_close(p);
    return rc == PCAP_ERROR_PERM_DENIED ? absl::PermissionDeniedError(msg)
                                        : absl::UnavailableError(msg);
  }
  // Non-blocking, and we poll ourselves: in immediate mode libpcap's read
  // timeout does not fire, and an idle interface must not stall shutdown or
  // the flushing of folded events.
  if (pcap_setnonblock(p, 1, err) != 0) {
    pcap_close(p);
    return absl::InternalError(
        absl::StrCat("cannot make capture non-blocking: ", err));
  }
  std::unique_ptr<PcapSource> src(new PcapSource(p, /*live=*/true, 0));
  if (absl::Status s = src->ApplyFilter(filter); !s.ok()) return s;
  return src;
}

absl::StatusOr<std::unique_ptr<PcapSource>> PcapSource::OpenFile(
    const std::string& path, const std::string& filter) {
  char err[PCAP_ERRBUF_SIZE] = {0};
  pcap_t* p = nullptr;
  uint64_t size = 0;
  if (path == "-") {
    p = pcap_fopen_offline_with_tstamp_precision(
        stdin, PCAP_TSTAMP_PRECISION_MICRO, err);
  } else {
    struct stat st;
    if (stat(path.c_str(), &st) == 0) size = static_cast<uint64_t>(st.st_size);
    FILE* f = fopen(path.c_str(), "rb");
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read ", path, ": ", strerror(errno)));
    }
    // Large reads: a replay is bound by how fast the file streams in.
    setvbuf(f, nullptr, _IOFBF, kFileBufferBytes);
    p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_MICRO,
                                                 err);
    if (p == nullptr) fclose(f);
  }
  if (p == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", path, ": ", err));
  }
  std::unique_ptr<PcapSource> src(new PcapSource(p, /*live=*/false, size));
  if (absl::Status s = src->ApplyFilter(filter); !s.ok()) return s;
  return src;
}

absl::Status PcapSource::ApplyFilter(const std::string& filter) {
  if (filter.empty()) return absl::OkStatus();
  bpf_program prog;
  if (pcap_compile(handle_, &prog, filter.c_str(), /*optimize=*/1,
                   PCAP_NETMASK_UNKNOWN) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad filter '", filter, "': ", pcap_geterr(handle_)));
  }
  int rc = pcap_setfilter(handle_, &prog);
  pcap_freecode(&prog);
  if (rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot set filter '", filter, "': ", pcap_geterr(handle_)));
  }
  return absl::OkStatus();
}

absl::StatusOr<PacketSource::Result> PcapSource::Next(RawPacket* packet) {
  pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  int rc = pcap_next_ex(handle_, &hdr, &data);
  if (rc == 0 && live_) {
    pollfd pfd{pcap_get_selectable_fd(handle_), POLLIN, 0};
    if (poll(&pfd, 1, kReadTimeoutMs) <= 0)
      return Result::kTimeout;  // or EINTR
    rc = pcap_next_ex(handle_, &hdr, &data);
  }
  if (rc == 1) {
    packet->ts_us = static_cast<int64_t>(hdr->ts.tv_sec) * 1000000 +
                    static_cast<int64_t>(hdr->ts.tv_usec);
    packet->data = data;
    packet->caplen = hdr->caplen;
    packet->wirelen = hdr->len;
    packet->linktype = linktype_;
    ++stats_.received;
    if (hdr->caplen < hdr->len) ++stats_.truncated;
    return Result::kPacket;
  }
  if (rc == 0) return Result::kTimeout;
  if (rc == PCAP_ERROR_BREAK) return Result::kEnd;
  // A truncated file ends the read; pcap says what went wrong.
  return absl::DataLossError(
      absl::StrCat("capture read failed: ", pcap_geterr(handle_)));
}

CaptureStats PcapSource::Stats() const {
  CaptureStats out = stats_;
  if (live_) {
    pcap_stat ps;
    if (pcap_stats(handle_, &ps) == 0) {
      out.kernel_dropped = ps.ps_drop;
      out.iface_dropped = ps.ps_ifdrop;
    }
  }
  return out;
}

SourceProgress PcapSource::Progress() const {
  SourceProgress p;
  p.bytes_total = file_size_;
  if (!live_ && file_size_ > 0) {
    FILE* f = pcap_file(handle_);
    if (f != nullptr) {
      long pos = ftell(f);
      if (pos > 0) p.bytes_read = static_cast<uint64_t>(pos);
    }
  }
  return p;
}

}  // namespace tokenwatch::capture
