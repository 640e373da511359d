// Runs the TLS probe on a thread of its own: it polls the ring buffer,
// attaches to new targets every few seconds, and queues the chunks for the
// pipeline's thread, which drains them between packets (or, probe alone,
// from ProbeOnlySource's waits). The queue is bounded: what does not fit
// is dropped and counted, never waited for.
#ifndef TOKENWATCH_AGENT_TLS_PROBE_RUNNER_H_
#define TOKENWATCH_AGENT_TLS_PROBE_RUNNER_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"
#include "agent/capture/packet_source.h"
#include "agent/tls/tls_probe.h"

namespace tokenwatch::tls {

class ProbeRunner {
 public:
  // Opens the probe (FailedPrecondition when the kernel or the privileges
  // do not allow it: the agent exits 2). Its thread starts with Run(),
  // after the agent dropped what privileges it drops: a thread started
  // before would keep its capabilities (capset is per thread).
  static absl::StatusOr<std::unique_ptr<ProbeRunner>> Start(
      const ProbeOptions& options, size_t max_queued_bytes = 64u << 20);
  void Run();
  ~ProbeRunner();  // stops the thread, then detaches every probe

  // Hands the queued chunks, in order, to `sink` (pipeline thread).
  void Drain(const std::function<void(const Chunk&)>& sink);
  // Waits up to `timeout_ms` for a chunk to be queued.
  void WaitForData(int timeout_ms);
  bool has_data() const { return queued_.load(std::memory_order_relaxed) > 0; }

  // Chunks dropped here (queue full) and the kernel half's counters.
  uint64_t queue_dropped() const { return dropped_.load(); }
  ProbeCounters kernel_counters() const;
  size_t targets() const { return targets_.load(); }
  // New processes are attached only while the agent keeps CAP_BPF and
  // CAP_PERFMON; after --user drops them, the targets stay as they are.
  void StopRescanning() { rescan_ = false; }

 private:
  explicit ProbeRunner(std::unique_ptr<TlsProbe> probe, size_t max_bytes);
  void Loop();

  std::unique_ptr<TlsProbe> probe_;
  size_t max_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> queue_;
  size_t queue_bytes_ = 0;
  std::atomic<size_t> queued_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<size_t> targets_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> rescan_{true};
  std::thread thread_;
};

// The packet source of an agent that runs on the probe alone: no packets,
// only timeouts, each after waiting (at most `idle_ms`) for the probe.
class ProbeOnlySource : public capture::PacketSource {
 public:
  explicit ProbeOnlySource(ProbeRunner* runner, int idle_ms = 100)
      : runner_(runner), idle_ms_(idle_ms) {}
  absl::StatusOr<Result> Next(capture::RawPacket*) override {
    runner_->WaitForData(idle_ms_);
    return Result::kTimeout;
  }
  bool IsLive() const override { return true; }
  capture::CaptureStats Stats() const override { return {}; }

 private:
  ProbeRunner* runner_;
  int idle_ms_;
};

}  // namespace tokenwatch::tls

#endif  // TOKENWATCH_AGENT_TLS_PROBE_RUNNER_H_
