#include "agent/tls/probe_runner.h"

#include <chrono>

#include "common/log.h"

namespace tokenwatch::tls {
namespace {
// The ring is read this often (the kernel half does not wake the reader
// per record): the probe's latency, and its wakeups, per second.
constexpr int kPollMs = 10;
constexpr auto kRescanEvery = std::chrono::seconds(2);
}  // namespace

absl::StatusOr<std::unique_ptr<ProbeRunner>> ProbeRunner::Start(
    const ProbeOptions& options, size_t max_queued_bytes) {
  absl::StatusOr<std::unique_ptr<TlsProbe>> probe = TlsProbe::Open(options);
  if (!probe.ok()) return probe.status();
  std::unique_ptr<ProbeRunner> r(
      new ProbeRunner(*std::move(probe), max_queued_bytes));
  r->targets_ = r->probe_->targets().size();
  return r;
}

void ProbeRunner::Run() {
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
}

ProbeRunner::ProbeRunner(std::unique_ptr<TlsProbe> probe, size_t max_bytes)
    : probe_(std::move(probe)), max_bytes_(max_bytes) {}

ProbeRunner::~ProbeRunner() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  probe_.reset();  // detaches every probe
}

void ProbeRunner::Loop() {
  auto last_rescan = std::chrono::steady_clock::now();
  std::function<void(Chunk&)> sink = [this](Chunk& c) {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_bytes_ + c.data.size() > max_bytes_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_bytes_ += c.data.size();
    queue_.push_back(std::move(c));
    queued_.store(queue_.size(), std::memory_order_relaxed);
    cv_.notify_one();
  };
  while (!stop_.load()) {
    if (absl::Status s = probe_->Poll(kPollMs, sink); !s.ok()) {
      log::Error("%s", s.message());
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
    }
    auto now = std::chrono::steady_clock::now();
    if (rescan_.load() && now - last_rescan >= kRescanEvery) {
      last_rescan = now;
      probe_->Rescan();
      targets_ = probe_->targets().size();
    }
  }
}

void ProbeRunner::Drain(const std::function<void(const Chunk&)>& sink) {
  std::deque<Chunk> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(queue_);
    queue_bytes_ = 0;
    queued_.store(0, std::memory_order_relaxed);
  }
  for (const Chunk& c : batch) sink(c);
}

void ProbeRunner::WaitForData(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
               [this] { return !queue_.empty() || stop_.load(); });
}

ProbeCounters ProbeRunner::kernel_counters() const {
  return probe_->counters();
}

}  // namespace tokenwatch::tls
