// The agent's capture loop, for any packet source (live, file, memory):
// packets into the pipeline until the source ends or a stop is asked for;
// when a live source is idle, packet time stands still, so the wall clock
// advances the pipeline (idle flows expire, folded events go out).
#ifndef TOKENWATCH_AGENT_RUN_LOOP_H_
#define TOKENWATCH_AGENT_RUN_LOOP_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "agent/capture/packet_source.h"
#include "agent/pipeline.h"

namespace tokenwatch {

struct RunLoopHooks {
  // Checked before every packet; true ends the loop.
  std::function<bool()> stop_requested;
  // Called between two packets (a config reload is applied here).
  std::function<void()> between_packets;
  // A live source had nothing within its timeout, after the pipeline
  // advanced.
  std::function<void()> idle;
  // Every 256 packets (metrics, progress, flushing a live output).
  std::function<void(uint64_t packets)> every_256;
  // Microseconds since the epoch; the wall clock unless a test sets it.
  std::function<int64_t()> wall_clock_us;
};

class RunLoop {
 public:
  RunLoop(capture::PacketSource* source, Pipeline* pipeline, RunLoopHooks hooks)
      : source_(source), pipeline_(pipeline), hooks_(std::move(hooks)) {}

  // Returns when the source ends (OK), a stop is asked for (OK), or the
  // source fails (its error).
  absl::Status Run();

  uint64_t packets() const { return packets_; }
  // Seconds spent waiting on the source, from timing every 64th read.
  double capture_seconds() const { return capture_seconds_; }

 private:
  capture::PacketSource* source_;
  Pipeline* pipeline_;
  RunLoopHooks hooks_;
  uint64_t packets_ = 0;
  double capture_seconds_ = 0;
};

}  // namespace tokenwatch

#endif  // TOKENWATCH_AGENT_RUN_LOOP_H_
