#include "agent/output/collector_sink.h"

#include <openssl/rand.h>

#include <algorithm>
#include <random>
#include <string>

namespace tokenwatch::output {
namespace {

std::string StatusName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    default:
      return "code " + std::to_string(static_cast<int>(code));
  }
}

}  // namespace

class CollectorSink::Stream
    : public grpc::ClientBidiReactor<v1::AgentFrame, v1::CollectorMessage> {
 public:
  Stream(CollectorSink* sink, const std::string& agent_id, uint64_t boot_id)
      : sink_(sink) {
    hello_.mutable_hello()->set_agent_id(agent_id);
    hello_.mutable_hello()->set_boot_id(boot_id);
  }
  // Called once the sink has published this stream: a call that fails at
  // once must find itself current in OnStreamDone.
  void Start() {
    sink_->stub_->async()->Stream(&context_, this);
    // A hold keeps the call alive until the read side has ended: gRPC
    // tears the call down before OnDone, and a StartWrite from another
    // thread (Kick) must never reach a finished call. Writes start only
    // under mu_ while !closing_; the hold goes only after closing_ is set.
    AddHold();
    StartRead(&ack_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = true;
    }
    StartWrite(&hello_);
    StartCall();
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;  // from now on other threads may Kick
  }
  // A batch became available while this stream was idle.
  void Kick() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || writing_ || closing_) return;
    WriteNextLocked();
  }
  void Cancel() { context_.TryCancel(); }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok || closing_) return;  // the stream is broken; OnDone follows
    WriteNextLocked();
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      // The stream is over: no write may start from now on.
      {
        std::lock_guard<std::mutex> lock(mu_);
        closing_ = true;
      }
      RemoveHold();
      return;
    }
    if (ack_.has_ack()) sink_->OnAck(ack_.ack().stored_through());
    StartRead(&ack_);
  }
  void OnDone(const grpc::Status& status) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    // Last: from here on the sink may destroy this reactor, on its own
    // thread. Never on this one: the ClientContext may hold the channel's
    // last reference, and a channel torn down on gRPC's callback thread
    // joins that very thread and frees its completion queue under it.
    sink_->OnStreamDone(this, status);
  }

 private:
  void WriteNextLocked() {
    current_ = sink_->NextToSend(this);
    if (current_ == nullptr) return;
    writing_ = true;
    StartWrite(current_.get());
  }

  CollectorSink* sink_;
  grpc::ClientContext context_;
  v1::AgentFrame hello_;
  v1::CollectorMessage ack_;
  std::mutex mu_;
  bool started_ = false;  // the call is bound and started
  bool closing_ = false;  // the read side ended; the hold is gone
  bool writing_ = false;
  bool done_ = false;
  std::shared_ptr<const v1::AgentFrame> current_;  // alive while written
};

CollectorSink::CollectorSink(CollectorSinkOptions options)
    : opt_(std::move(options)) {
  RAND_bytes(reinterpret_cast<unsigned char*>(&boot_id_), sizeof boot_id_);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(opt_.backoff_max.count()));
  if (!opt_.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(opt_.tls_server_name);
  }
  channel_ = grpc::CreateCustomChannel(opt_.target,
                                       opt_.credentials != nullptr
                                           ? opt_.credentials
                                           : grpc::InsecureChannelCredentials(),
                                       args);
  stub_ = v1::Ingest::NewStub(channel_);
  thread_ = std::thread([this] { Run(); });
}

CollectorSink::~CollectorSink() {
  std::shared_ptr<Stream> s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (!stream_done_) s = stream_;
  }
  if (s != nullptr) s->Cancel();
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The stream's memory must outlive its OnDone.
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stream_done_; });
  stream_.reset();
}

void CollectorSink::Emit(const UsageRecord& record) {
  std::lock_guard<std::mutex> lock(mu_);
  if (queued_events_ >= opt_.queue_max_events) {
    ++stats_.dropped;  // collector away longer than the queue holds
    return;
  }
  if (open_count_ == 0) open_since_ = std::chrono::steady_clock::now();
  AppendBatchEvent(record, &open_events_);
  ++open_count_;
  ++queued_events_;
  ++stats_.queued;
  if (open_count_ >= opt_.batch_max_events) SealLocked();
}

void CollectorSink::SealLocked() {
  if (open_count_ == 0) return;
  auto msg = std::make_shared<v1::AgentFrame>();
  uint64_t seq = next_seq_++;
  // EventBatch: seq (field 1, varint), then the events as appended.
  std::string* batch = msg->mutable_batch();
  batch->reserve(11 + open_events_.size());
  batch->push_back(static_cast<char>(1 << 3));
  for (uint64_t v = seq;; v >>= 7) {
    if (v < 0x80) {
      batch->push_back(static_cast<char>(v));
      break;
    }
    batch->push_back(static_cast<char>(v | 0x80));
  }
  batch->append(open_events_);
  size_t n = open_count_;
  open_events_.clear();
  open_count_ = 0;
  queue_.push_back({seq, n, open_since_, std::move(msg)});
  if (stream_ != nullptr && !stream_done_) {
    std::shared_ptr<Stream> s = stream_;
    // Kick outside our lock: the stream calls back into NextToSend.
    mu_.unlock();
    s->Kick();
    mu_.lock();
  }
}

void CollectorSink::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  SealLocked();
}

std::shared_ptr<const v1::AgentFrame> CollectorSink::NextToSend(
    const Stream* s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (s != stream_.get() || send_pos_ >= queue_.size()) return nullptr;
  const Batch& b = queue_[send_pos_++];
  stats_.sent += b.events;
  return b.message;
}

void CollectorSink::OnAck(uint64_t stored_through) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.connected = true;
  while (!queue_.empty() && queue_.front().seq <= stored_through) {
    stats_.acked += queue_.front().events;
    queued_events_ -= queue_.front().events;
    queue_.pop_front();
    if (send_pos_ > 0) --send_pos_;
  }
  cv_.notify_all();
}

void CollectorSink::OnStreamDone(const Stream* s, const grpc::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (s == stream_.get()) {
    stream_done_ = true;
    stats_.connected = false;
    // Our own cancel at shutdown is no failure worth reporting.
    if (!status.ok() &&
        !(stop_ && status.error_code() == grpc::StatusCode::CANCELLED)) {
      stats_.last_error =
          StatusName(status.error_code()) + ": " + status.error_message();
    }
  }
  cv_.notify_all();
}

bool CollectorSink::Drain(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  SealLocked();
  return cv_.wait_for(lock, timeout,
                      [this] { return queue_.empty() && open_count_ == 0; });
}

DeliveryStats CollectorSink::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  DeliveryStats out = stats_;
  out.unacked_events = queued_events_;
  out.unacked_batches = queue_.size();
  auto now = std::chrono::steady_clock::now();
  if (!queue_.empty()) {
    out.oldest_unacked_age_seconds =
        std::chrono::duration<double>(now - queue_.front().opened).count();
  } else if (open_count_ > 0) {
    out.oldest_unacked_age_seconds =
        std::chrono::duration<double>(now - open_since_).count();
  }
  return out;
}

void CollectorSink::Run() {
  std::mt19937_64 rng(boot_id_);
  auto backoff = opt_.backoff_initial;
  std::unique_lock<std::mutex> lock(mu_);
  bool first = true;
  while (!stop_) {
    if (stream_done_) {
      // (Re)connect: everything unacknowledged is sent again; the
      // collector drops what it already stored.
      if (!first) {
        ++stats_.reconnects;
        // Full jitter: a fleet of agents does not reconnect in step.
        auto wait =
            std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(
                backoff.count() / 2, backoff.count())(rng));
        cv_.wait_for(lock, wait, [this] { return stop_; });
        if (stop_) break;
        backoff = std::min(backoff * 2, opt_.backoff_max);
      }
      first = false;
      auto s = std::make_shared<Stream>(this, opt_.agent_id, boot_id_);
      stream_ = s;  // the old stream (OnDone already run) is released here
      send_pos_ = 0;
      stream_done_ = false;
      lock.unlock();
      s->Start();
      s->Kick();
      lock.lock();
    }
    if (stats_.connected) backoff = opt_.backoff_initial;
    // Time-based flush: the oldest event waits at most flush_interval.
    cv_.wait_for(lock, opt_.flush_interval / 2);
    if (open_count_ > 0 &&
        std::chrono::steady_clock::now() - open_since_ >= opt_.flush_interval) {
      SealLocked();
    }
  }
}

}  // namespace tokenwatch::output
