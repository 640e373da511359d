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

class IngestService final : public v1::Ingest::CallbackService {
 public:
  explicit IngestService(Engine* engine);
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
  };
  void Post(Task task);
  std::atomic<int> open_streams_{0};

 private:
  void Run();
  void LogCommitOutcome(const absl::Status& s);  // on the engine thread

  Engine* engine_;
  // The engine is used by this thread and the API; never held across a
  // store write.
  std::mutex engine_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool stop_ = false;
  std::atomic<bool> last_commit_ok_{true};
  uint64_t failed_commits_in_row_ = 0;
  std::chrono::steady_clock::time_point last_failure_logged_;
  std::thread thread_;
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_INGEST_INGEST_SERVICE_H_
