#include "agent/run_loop.h"

#include <chrono>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tokenwatch {
namespace {
int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

absl::Status RunLoop::Run() {
  capture::RawPacket packet;
  uint64_t reads = 0;
  while (!(hooks_.stop_requested && hooks_.stop_requested())) {
    if (hooks_.between_packets) hooks_.between_packets();
    // Timing every read would cost more than a fast source's read.
    bool timed = (reads++ & 63) == 0;
    int64_t t0 = timed ? SteadyNs() : 0;
    absl::StatusOr<capture::PacketSource::Result> r = source_->Next(&packet);
    if (timed) capture_seconds_ += 64 * (SteadyNs() - t0) * 1e-9;
    if (!r.ok()) return r.status();
    if (*r == capture::PacketSource::Result::kEnd) return absl::OkStatus();
    if (*r == capture::PacketSource::Result::kTimeout) {
      pipeline_->Advance(hooks_.wall_clock_us
                             ? hooks_.wall_clock_us()
                             : absl::ToUnixMicros(absl::Now()));
      if (hooks_.idle) hooks_.idle();
      continue;
    }
    pipeline_->OnPacket(packet);
    if ((++packets_ & 0xff) == 0 && hooks_.every_256)
      hooks_.every_256(packets_);
  }
  return absl::OkStatus();
}

}  // namespace tokenwatch
