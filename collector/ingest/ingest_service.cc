#include "collector/ingest/ingest_service.h"

#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/ingest/batch_guard.h"
#include "collector/ingest/peer_identity.h"
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
// A stream must say Hello this soon (or within idle_timeout if shorter).
constexpr auto kHelloTimeout = std::chrono::seconds(10);

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
  StreamHandle(Reactor* reactor, IngestService* service)
      : reactor_(reactor),
        service_(service),
        last_active_(std::chrono::steady_clock::now()) {
    NewMessage();
  }

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
    last_active_ = std::chrono::steady_clock::now();
    MaybeReadLocked();
  }
  // From the sweeper: reads again once the budget allows; true when the
  // stream was closed for waiting on its client too long.
  bool Tick(std::chrono::steady_clock::time_point now) {
    std::lock_guard<std::mutex> lock(mu_);
    if (reactor_ == nullptr || finished_) return false;
    if (parked_ && !service_->OverBudget()) {
      parked_ = false;
      MaybeReadLocked();
    }
    auto limit = service_->options().idle_timeout;
    if (!hello_seen_)
      limit = std::min<std::chrono::milliseconds>(limit, kHelloTimeout);
    if (reading_ && !reads_done_ && in_flight_.empty() && !writing_ &&
        now - last_active_ > limit) {
      finished_ = true;
      reactor_->Finish(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "idle stream closed"));
      return true;
    }
    return false;
  }
  bool finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
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
    if (service_->OverBudget()) {  // all streams' batches: the sweeper wakes it
      if (!parked_) ++service_->budget_waits_;
      parked_ = true;
      return;
    }
    reading_ = true;
    // Waiting on the client starts now (not when a stream parked by the
    // budget last read, or the sweeper would close it as idle on waking).
    last_active_ = std::chrono::steady_clock::now();
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
  IngestService* service_;
  std::chrono::steady_clock::time_point last_active_;
  bool parked_ = false;  // held back by the in-flight budget
  bool hello_seen_ = false;
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
  StreamReactor(IngestService* service, std::vector<std::string> peer_names)
      : service_(service),
        handle_(std::make_shared<StreamHandle>(this, service)),
        peer_names_(std::move(peer_names)) {
    ++service_->open_streams_;
    service_->Register(handle_);
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
      if (service_->options().bind_agent_to_certificate &&
          !MaySpeakFor(peer_names_, msg.hello().agent_id())) {
        // A certificate speaks only for the agent names it carries.
        ++service_->hellos_denied_;
        static log::RateLimit limit;
        uint64_t held = 0;
        if (limit.Allow(&held)) {
          log::Warning(
              "a client certificate for [%s] sent a Hello as agent \"%s\"; "
              "stream refused%s",
              absl::StrJoin(peer_names_, ", "),
              msg.hello().agent_id().substr(0, 128), HeldBack(held));
        }
        handle_->Fail(
            grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                         "agent_id is not a name in the client certificate"));
        return;
      }
      agent_ = msg.hello().agent_id();
      boot_ = msg.hello().boot_id();
      {
        std::lock_guard<std::mutex> lock(handle_->mu_);
        handle_->hello_answer_due_ = true;
        handle_->hello_seen_ = true;
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
    if (uint64_t cut =
            GuardBatch(batch, agent_, service_->options().max_string_bytes))
      service_->strings_cut_ += cut;
    const int64_t bytes =
        static_cast<int64_t>(handle_->arena()->SpaceAllocated());
    if (service_->inflight_bytes_.load() + bytes >
        2 * service_->options().max_inflight_bytes) {
      // Reads started before the budget filled still bring their batch
      // (many streams at once: one frame each). Twice the budget is a hard
      // bound: past it the batch is dropped unacknowledged, the agent
      // resends it after reconnecting.
      ++service_->over_budget_;
      handle_->Fail(
          grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       "collector busy: batches in flight over budget"));
      return;
    }
    uint64_t seq = batch->seq();
    IngestService::Task t{handle_,         agent_,  boot_,
                          /*hello=*/false, nullptr, batch};
    t.charge = {&service_->inflight_bytes_, bytes};
    service_->inflight_bytes_ += bytes;
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
  std::vector<std::string> peer_names_;  // of the client certificate
  std::string agent_;
  uint64_t boot_ = 0;
};

// Over max_streams: refused at once, costing no more than this.
class RefusedStream : public StreamHandle::Reactor {
 public:
  RefusedStream() {
    Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "too many ingest streams"));
  }
  void OnDone() override { delete this; }
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

IngestService::IngestService(Engine* engine, IngestOptions options)
    : engine_(engine), options_(options) {
  thread_ = std::thread([this] { Run(); });
  sweeper_ = std::thread([this] { Sweep(); });
}

IngestService::~IngestService() { Shutdown(); }

grpc::ServerBidiReactor<v1::AgentFrame, v1::CollectorMessage>*
IngestService::Stream(grpc::CallbackServerContext* context) {
  if (open_streams_.load() >= options_.max_streams) {
    ++streams_refused_;
    return new RefusedStream();
  }
  std::vector<std::string> names;
  if (options_.bind_agent_to_certificate) {
    if (std::shared_ptr<const grpc::AuthContext> auth = context->auth_context())
      names = PeerAgentNames(*auth);
  }
  return new StreamReactor(this, std::move(names));
}

void IngestService::Register(const std::shared_ptr<StreamHandle>& stream) {
  std::lock_guard<std::mutex> lock(streams_mu_);
  streams_.push_back(stream);
}

IngestCounters IngestService::counters() const {
  IngestCounters c;
  c.streams_refused = streams_refused_.load();
  c.streams_idle_closed = streams_idle_closed_.load();
  c.hellos_denied = hellos_denied_.load();
  c.batches_out_of_order = batches_out_of_order_.load();
  c.strings_cut = strings_cut_.load();
  c.budget_waits = budget_waits_.load();
  c.over_budget = over_budget_.load();
  c.inflight_bytes = inflight_bytes_.load();
  return c;
}

void IngestService::Sweep() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_sweep_.wait_for(lock, std::chrono::milliseconds(50),
                             [this] { return stop_; }))
        return;
    }
    std::vector<std::shared_ptr<StreamHandle>> live;
    {
      std::lock_guard<std::mutex> lock(streams_mu_);
      auto end = std::remove_if(
          streams_.begin(), streams_.end(),
          [](const std::weak_ptr<StreamHandle>& w) { return w.expired(); });
      streams_.erase(end, streams_.end());
      live.reserve(streams_.size());
      for (const auto& w : streams_)
        if (auto h = w.lock()) live.push_back(std::move(h));
    }
    const auto now = std::chrono::steady_clock::now();
    for (const auto& h : live) {
      if (h->Tick(now)) ++streams_idle_closed_;
    }
  }
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
  cv_sweep_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (sweeper_.joinable()) sweeper_.join();
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
        // A stream already refused sends nothing more to the engine.
        if (!t.hello && !t.stream->finished()) {
          bool gap = false;
          engine_->Apply(t.agent, t.boot, *t.batch, &gap);
          if (gap) {
            // Never acknowledged: a jump would make the run's later
            // batches look like resends (issue 12, item 6).
            ++batches_out_of_order_;
            t.stream->Fail(
                grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                             "batch seq is not the next of this agent run"));
          }
        }
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
