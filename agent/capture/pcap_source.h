// libpcap-backed sources: a live interface (`-i`, `any` included) or a pcap /
// pcapng file (`-r`, `-` for stdin), each with an optional BPF filter.
#ifndef TOKENWATCH_AGENT_CAPTURE_PCAP_SOURCE_H_
#define TOKENWATCH_AGENT_CAPTURE_PCAP_SOURCE_H_

#include <pcap/pcap.h>

#include <memory>
#include <string>

#include "agent/capture/packet_source.h"

namespace tokenwatch::capture {

class PcapSource : public PacketSource {
 public:
  static absl::StatusOr<std::unique_ptr<PcapSource>> OpenLive(
      const std::string& interface, const std::string& filter);
  static absl::StatusOr<std::unique_ptr<PcapSource>> OpenFile(
      const std::string& path, const std::string& filter);
  ~PcapSource() override;

  absl::StatusOr<Result> Next(RawPacket* packet) override;
  CaptureStats Stats() const override;
  SourceProgress Progress() const override;
  bool IsLive() const override { return live_; }
  int linktype() const { return linktype_; }

 private:
  PcapSource(pcap_t* handle, bool live, uint64_t file_size);
  absl::Status ApplyFilter(const std::string& filter);

  pcap_t* handle_;
  bool live_;
  int linktype_;
  uint64_t file_size_;
  CaptureStats stats_;
};

}  // namespace tokenwatch::capture

#endif  // TOKENWATCH_AGENT_CAPTURE_PCAP_SOURCE_H_
