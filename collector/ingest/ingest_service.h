// The gRPC ingest service (callback API): one bidirectional stream per
// agent. Batches go to the engine thread, which applies them, commits them
// in groups and acknowledges what is durably stored. A stream has at most
// kMaxInFlight batches awaiting their ack; beyond that it stops reading, so
// a slow store pushes back on agents through gRPC flow control.
#ifndef TOKENWATCH_COLLECTOR_INGEST_INGEST_SERVICE_H_
#define TOKENWATCH_COLLECTOR_INGEST_INGEST_SERVICE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "collector/engine.h"
#include "tokenwatch/v1/ingest.grpc.pb.h"

namespace tokenwatch::collector {

class StreamHandle;

// Sends protobuf's own log lines (a batch with invalid UTF-8 makes one per
// batch) through tokenwatch::log, at most one per 10 s, instead of raw to
// stderr. Call once at start-up, before serving: protobuf's handler is a
// process-wide setting that is not thread-safe to change.
void RouteProtobufLogs();

// Bounds against hostile clients (docs/security.md, "Hostile clients:
// ingest"); config.collector.limits gives them.
struct IngestOptions {
  // Bytes of batches read and not yet acknowledged, all streams together:
  // past it no stream reads (its agent waits in gRPC flow control); a
  // batch whose read had started and that lands past twice it ends its
  // stream, unacknowledged (RESOURCE_EXHAUSTED).
  int64_t max_inflight_bytes = int64_t{16} << 20;
  int max_streams = 1024;  // more are refused with RESOURCE_EXHAUSTED
  // A stream waiting on its client this long is closed (UNAVAILABLE);
  // before its Hello, at most kHelloTimeout.
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(10);
  size_t max_string_bytes = 1024;  // collector/ingest/batch_guard.h
  // mTLS: a Hello may only name an agent its certificate carries.
  bool bind_agent_to_certificate = false;
};

// What the ingest service refused or cut, for /metrics.
struct IngestCounters {
  uint64_t streams_refused = 0;  // over max_streams
  uint64_t streams_idle_closed = 0;
  uint64_t hellos_denied = 0;  // agent_id not in the client certificate
  uint64_t batches_out_of_order = 0;
  uint64_t strings_cut = 0;
  uint64_t budget_waits = 0;  // reads held back by max_inflight_bytes
  uint64_t over_budget = 0;   // batches dropped past twice the budget
  int64_t inflight_bytes = 0;
};

class IngestService final : public v1::Ingest::CallbackService {
 public:
  explicit IngestService(Engine* engine, IngestOptions options = {});
  ~IngestService() override;

  grpc::ServerBidiReactor<v1::AgentFrame, v1::CollectorMessage>* Stream(
      grpc::CallbackServerContext* context) override;

  // Stops the engine thread after a final commit.
  void Shutdown();
  int open_streams() const { return open_streams_.load(); }
  bool last_commit_ok() const { return last_commit_ok_.load(); }
  // Runs `fn` on the engine under the lock the engine thread holds while it
  // applies batches, but not while the store writes (for the API).
  template <typename Fn>
  auto WithEngine(Fn fn) {
    std::lock_guard<std::mutex> lock(engine_mu_);
    return fn(*engine_);
  }

  struct Task {
    std::shared_ptr<StreamHandle> stream;
    std::string agent;
    uint64_t boot = 0;
    bool hello = false;
    // The batch lives on its own arena: parsing and freeing a thousand
    // events is a few block allocations, not thousands of mallocs.
    std::unique_ptr<google::protobuf::Arena> arena;
    const v1::EventBatch* batch = nullptr;
    // The batch's bytes in the in-flight budget, given back with the task.
    struct Charge {
      std::atomic<int64_t>* pool = nullptr;
      int64_t bytes = 0;
      Charge() = default;
      Charge(std::atomic<int64_t>* p, int64_t n) : pool(p), bytes(n) {}
      Charge(Charge&& o) noexcept
          : pool(std::exchange(o.pool, nullptr)), bytes(o.bytes) {}
      Charge& operator=(Charge&& o) noexcept {
        if (this != &o) {
          Release();
          pool = std::exchange(o.pool, nullptr);
          bytes = o.bytes;
        }
        return *this;
      }
      ~Charge() { Release(); }
      void Release() {
        if (pool != nullptr) pool->fetch_sub(bytes);
        pool = nullptr;
      }
    } charge;
  };
  void Post(Task task);
  std::atomic<int> open_streams_{0};

  const IngestOptions& options() const { return options_; }
  IngestCounters counters() const;
  bool OverBudget() const {
    return inflight_bytes_.load() >= options_.max_inflight_bytes;
  }
  // Counters the reactors bump.
  std::atomic<uint64_t> streams_refused_{0}, streams_idle_closed_{0},
      hellos_denied_{0}, strings_cut_{0}, budget_waits_{0}, over_budget_{0};
  std::atomic<int64_t> inflight_bytes_{0};
  void Register(const std::shared_ptr<StreamHandle>& stream);

 private:
  void Run();
  // Every 50 ms: wakes streams held back by the budget, closes idle ones.
  void Sweep();
  void LogCommitOutcome(const absl::Status& s);  // on the engine thread

  Engine* engine_;
  // The engine is used by this thread and the API; never held across a
  // store write.
  std::mutex engine_mu_;
  std::mutex mu_;
  std::condition_variable cv_, cv_sweep_;
  std::deque<Task> queue_;
  bool stop_ = false;
  std::atomic<bool> last_commit_ok_{true};
  uint64_t failed_commits_in_row_ = 0;
  std::chrono::steady_clock::time_point last_failure_logged_;
  std::thread thread_;
  IngestOptions options_;
  std::atomic<uint64_t> batches_out_of_order_{0};
  std::mutex streams_mu_;
  std::vector<std::weak_ptr<StreamHandle>> streams_;
  std::thread sweeper_;
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_INGEST_INGEST_SERVICE_H_
