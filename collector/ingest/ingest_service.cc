#include "collector/ingest/ingest_service.h"

#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace tokenwatch::collector {

namespace {
constexpr size_t kMaxInFlight = 16;  // batches per stream awaiting an ack
constexpr size_t kMaxGroup = 64;     // batches applied per commit
constexpr auto kRetryCommit = std::chrono::milliseconds(500);
// Token rows are written back at most this often (or once this much is
// journaled); in between, a commit journals each batch as one row. Bounds
// what a restart replays.
constexpr auto kCheckpointEvery = std::chrono::seconds(10);
constexpr size_t kCheckpointJournalBytes = 64 << 20;

// The tail of a rate-limited line: how many like it were held back.
std::string HeldBack(uint64_t n) {
  return n == 0 ? "" : absl::StrCat(" (", n, " more held back)");
}
}  // namespace

// What the engine thread holds of a stream: it outlives the reactor, which
// detaches itself when gRPC is done with it.
class StreamHandle {
 public:
  using Reactor = grpc::ServerBidiReactor<v1::AgentFrame, v1::CollectorMessage>;
  explicit StreamHandle(Reactor* reactor) : reactor_(reactor) { NewMessage(); }

  // A fresh arena and message for the next read; the previous pair went
  // to the engine with its batch.
  void NewMessage() {
    google::protobuf::ArenaOptions options;
    options.start_block_size = 64 * 1024;
    options.max_block_size = 1 << 20;
    arena_ = std::make_unique<google::protobuf::Arena>(options);
    in_ = google::protobuf::Arena::CreateMessage<v1::AgentFrame>(arena_.get());
  }
  std::unique_ptr<google::protobuf::Arena> TakeArena() {
    return std::move(arena_);
  }

  // The engine stored everything up to `seq` for this stream's agent.
  void Stored(uint64_t seq) {
    std::lock_guard<std::mutex> lock(mu_);
    if (reactor_ == nullptr) return;
    if (seq > ack_pending_) ack_pending_ = seq;
    while (!in_flight_.empty() && in_flight_.front() <= seq)
      in_flight_.pop_front();
    MaybeWriteLocked();
    MaybeReadLocked();
    MaybeFinishLocked();
  }
  // The reactor is about to post batch `seq`: counted before the engine
  // can see it, or an ack quicker than the count would leave it in flight
  // for good (the stream then never finishes).
  void InFlight(uint64_t seq) {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.push_back(seq);
  }
  void ReadAgain() {
    std::lock_guard<std::mutex> lock(mu_);
    reading_ = false;
    MaybeReadLocked();
  }
  void ReadsDone() {
    std::lock_guard<std::mutex> lock(mu_);
    reads_done_ = true;
    reading_ = true;  // never read again
    MaybeFinishLocked();
  }
  void WriteDone(bool ok) {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      write_failed_ = true;
      return;
    }
    MaybeWriteLocked();
    MaybeFinishLocked();
  }
  void Fail(grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (reactor_ != nullptr && !finished_) {
      finished_ = true;
      reactor_->Finish(status);
    }
  }
  void Detach() {
    std::lock_guard<std::mutex> lock(mu_);
    reactor_ = nullptr;
  }
  v1::AgentFrame* in() { return in_; }
  google::protobuf::Arena* arena() { return arena_.get(); }

 private:
  void MaybeWriteLocked() {
    if (reactor_ == nullptr || writing_ || finished_ || write_failed_) return;
    if (ack_pending_ <= ack_sent_ && !(ack_sent_ == 0 && hello_answer_due_))
      return;
    out_.mutable_ack()->set_stored_through(ack_pending_);
    ack_sent_ = ack_pending_;
    hello_answer_due_ = false;
    writing_ = true;
    reactor_->StartWrite(&out_);
  }
  void MaybeReadLocked() {
    if (reactor_ == nullptr || reading_ || finished_ || reads_done_) return;
    if (in_flight_.size() >= kMaxInFlight) return;  // back-pressure
    reading_ = true;
    reactor_->StartRead(in_);
  }
  void MaybeFinishLocked() {
    if (reactor_ == nullptr || finished_ || !reads_done_ || writing_ ||
        !in_flight_.empty())
      return;
    finished_ = true;
    reactor_->Finish(grpc::Status::OK);
  }

  friend class StreamReactor;
  std::mutex mu_;
  Reactor* reactor_;
  std::unique_ptr<google::protobuf::Arena> arena_;
  v1::AgentFrame* in_ = nullptr;  // on arena_
  v1::CollectorMessage out_;
  std::deque<uint64_t> in_flight_;
  uint64_t ack_pending_ = 0, ack_sent_ = 0;
  bool hello_answer_due_ = false;
  bool reading_ = true;  // the reactor starts with a read
  bool writing_ = false, write_failed_ = false, reads_done_ = false,
       finished_ = false;
};

class StreamReactor : public StreamHandle::Reactor {
 public:
  explicit StreamReactor(IngestService* service)
      : service_(service), handle_(std::make_shared<StreamHandle>(this)) {
    ++service_->open_streams_;
    StartRead(handle_->in());
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      handle_->ReadsDone();
      return;
    }
    v1::AgentFrame& msg = *handle_->in();
    if (msg.has_hello()) {
      if (msg.hello().agent_id().empty()) {
        handle_->Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "hello without agent_id"));
        return;
      }
      agent_ = msg.hello().agent_id();
      boot_ = msg.hello().boot_id();
      {
        std::lock_guard<std::mutex> lock(handle_->mu_);
        handle_->hello_answer_due_ = true;
      }
      IngestService::Task t{handle_,        agent_,  boot_,
                            /*hello=*/true, nullptr, nullptr};
      service_->Post(std::move(t));
      handle_->ReadAgain();
      return;
    }
    if (!msg.has_batch() || agent_.empty()) {
      handle_->Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "send hello first, then batches"));
      return;
    }
    // The batch arrives as bytes: parsed here onto the frame's arena.
    auto* batch = google::protobuf::Arena::CreateMessage<v1::EventBatch>(
        handle_->arena());
    if (!batch->ParseFromString(msg.batch())) {
      // An agent's bytes: a flood of them must not flood the log.
      static log::RateLimit limit;
      uint64_t held = 0;
      if (limit.Allow(&held)) {
        log::Warning(
            "agent %s sent a batch that does not parse as EventBatch; its "
            "stream is closed%s",
            agent_, HeldBack(held));
      }
      handle_->Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "a batch that does not parse as EventBatch"));
      return;
    }
    uint64_t seq = batch->seq();
    IngestService::Task t{handle_,         agent_,  boot_,
                          /*hello=*/false, nullptr, batch};
    {
      // Only the reactor reads into the message: hand it over with its arena.
      std::lock_guard<std::mutex> lock(handle_->mu_);
      t.arena = handle_->TakeArena();
      handle_->NewMessage();
    }
    handle_->InFlight(seq);
    service_->Post(std::move(t));
    handle_->ReadAgain();  // unless kMaxInFlight batches await their ack
  }
  void OnWriteDone(bool ok) override { handle_->WriteDone(ok); }
  void OnCancel() override { handle_->Fail(grpc::Status::CANCELLED); }
  void OnDone() override {
    handle_->Detach();
    --service_->open_streams_;
    delete this;
  }

 private:
  IngestService* service_;
  std::shared_ptr<StreamHandle> handle_;
  std::string agent_;
  uint64_t boot_ = 0;
};

namespace {

// Protobuf's own lines (one per batch with invalid UTF-8 in a string
// field, naming the field) reach the log at most once per 10 s.
void ProtobufLogHandler(google::protobuf::LogLevel level, const char* filename,
                        int line, const std::string& message) {
  static log::RateLimit limit;
  uint64_t held = 0;
  if (level < google::protobuf::LOGLEVEL_WARNING || !limit.Allow(&held)) return;
  log::Warning("protobuf (%s:%d): %s%s", filename, line, message,
               HeldBack(held));
}

}  // namespace

void RouteProtobufLogs() {
  google::protobuf::SetLogHandler(&ProtobufLogHandler);
}

IngestService::IngestService(Engine* engine) : engine_(engine) {
  thread_ = std::thread([this] { Run(); });
}

IngestService::~IngestService() { Shutdown(); }

grpc::ServerBidiReactor<v1::AgentFrame, v1::CollectorMessage>*
IngestService::Stream(grpc::CallbackServerContext*) {
  return new StreamReactor(this);
}

void IngestService::Post(Task task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void IngestService::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void IngestService::LogCommitOutcome(const absl::Status& s) {
  // A failing store (disk full, say) is retried every kRetryCommit: say so
  // when it starts, now and then while it lasts, and when it ends, rather
  // than twice a second.
  constexpr auto kRepeatEvery = std::chrono::seconds(30);
  auto now = std::chrono::steady_clock::now();
  if (s.ok()) {
    if (failed_commits_in_row_ > 0) {
      log::Info(
          "store commit succeeded again after %d failed attempts; "
          "acknowledging the held batches",
          failed_commits_in_row_);
    }
    failed_commits_in_row_ = 0;
    return;
  }
  if (++failed_commits_in_row_ == 1 ||
      now - last_failure_logged_ >= kRepeatEvery) {
    last_failure_logged_ = now;
    log::Error(
        "store commit failed (attempt %d; nothing is acknowledged until it "
        "succeeds, agents keep their events; retrying every %d ms): %s",
        failed_commits_in_row_, kRetryCommit.count(), std::string(s.message()));
  }
}

void IngestService::Run() {
  std::vector<Task> waiting;  // applied, awaiting a successful commit
  auto last_checkpoint = std::chrono::steady_clock::now();
  while (true) {
    std::vector<Task> group;
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, kRetryCommit,
                   [&] { return stop_ || !queue_.empty(); });
      stopping = stop_;
      while (!queue_.empty() && group.size() < kMaxGroup) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    const auto now = std::chrono::steady_clock::now();
    bool checkpoint;
    {
      std::lock_guard<std::mutex> lock(engine_mu_);
      for (Task& t : group) {
        if (!t.hello) engine_->Apply(t.agent, t.boot, *t.batch);
        t.batch = nullptr;
      }
      // A retirement is written at once: the journal cannot replay it.
      checkpoint = stopping || now - last_checkpoint >= kCheckpointEvery ||
                   engine_->JournalBytes() >= kCheckpointJournalBytes ||
                   engine_->HasRetired();
      engine_->PrepareCommit(checkpoint);
    }
    for (Task& t : group) waiting.push_back(std::move(t));
    // The store's write and its fsync happen without the engine's lock, so
    // the API (health, metrics, token look-ups) never waits on the disk.
    // Only this thread prepares and writes commits: they stay in order.
    CommitWrite write = engine_->WriteCommits();
    absl::Status s;
    std::vector<uint64_t> stored_through;
    {
      std::lock_guard<std::mutex> lock(engine_mu_);
      s = engine_->FinishCommits(write);
      if (s.ok()) {
        stored_through.reserve(waiting.size());
        for (const Task& t : waiting)
          stored_through.push_back(engine_->StoredThrough(t.agent, t.boot));
      }
    }
    const bool committed = s.ok();
    if (committed && checkpoint) last_checkpoint = now;
    last_commit_ok_ = committed;
    LogCommitOutcome(s);
    if (committed) {
      // Acknowledged only now that the commit is durable.
      for (size_t i = 0; i < waiting.size(); ++i)
        waiting[i].stream->Stored(stored_through[i]);
      waiting.clear();
    }
    if (stopping && committed) {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return;
    }
    if (stopping && !committed)
      return;  // nothing acknowledged is lost: agents resend
  }
}

}  // namespace tokenwatch::collector
