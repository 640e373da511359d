// Streams usage events to the collector over gRPC (callback API). Events are
// batched by size and by time; sealed batches stay queued until the
// collector acknowledges them as durably stored and are resent after every
// reconnect, so nothing is lost while the agent runs. The queue is bounded:
// events that do not fit are dropped and counted. Reconnects back off
// exponentially with jitter.
#ifndef TOKENWATCH_AGENT_OUTPUT_COLLECTOR_SINK_H_
#define TOKENWATCH_AGENT_OUTPUT_COLLECTOR_SINK_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/output/event_sink.h"
#include "tokenwatch/v1/ingest.grpc.pb.h"

namespace tokenwatch::output {

struct CollectorSinkOptions {
  std::string target;  // host:port
  std::string agent_id;
  size_t batch_max_events = 1024;
  std::chrono::milliseconds flush_interval{10};
  uint64_t queue_max_events = 1u << 20;
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  // TLS (agent.tls); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // The name the collector's certificate must carry, when not the target's
  // host (agent.tls.server_name).
  std::string tls_server_name;
};

struct DeliveryStats {
  uint64_t queued = 0;   // events accepted into batches
  uint64_t sent = 0;     // events written to a stream (resends included)
  uint64_t acked = 0;    // events the collector has stored
  uint64_t dropped = 0;  // events refused: queue full
  uint64_t reconnects = 0;
  uint64_t unacked_events = 0;
  uint64_t unacked_batches = 0;
  double oldest_unacked_age_seconds = 0;  // delivery lag
  bool connected = false;
  // Why the last stream ended ("UNAVAILABLE: ... handshake failed"), empty
  // when none failed: what an operator needs when nothing is acknowledged.
  std::string last_error;
};

class CollectorSink : public EventSink {
 public:
  explicit CollectorSink(CollectorSinkOptions options);
  ~CollectorSink() override;

  void Emit(const UsageRecord& record) override;
  // Seals the open batch so it is sent now.
  void Flush() override;
  // Seals, then waits until every batch is acknowledged or `timeout`
  // passes. True when nothing is left unacknowledged.
  bool Drain(std::chrono::milliseconds timeout);
  DeliveryStats Stats() const;

  class Stream;  // one connection attempt (a ClientBidiReactor)

 private:
  struct Batch {
    uint64_t seq;
    size_t events;
    std::chrono::steady_clock::time_point opened;  // its first event's arrival
    std::shared_ptr<const v1::AgentFrame> message;
  };
  void SealLocked();
  void Run();  // connection manager and flush timer
  // Called by streams.
  std::shared_ptr<const v1::AgentFrame> NextToSend(const Stream* s);
  void OnAck(uint64_t stored_through);
  void OnStreamDone(const Stream* s, const grpc::Status& status);

  CollectorSinkOptions opt_;
  uint64_t boot_id_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Ingest::Stub> stub_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // The batch being filled: its events in wire form (EventBatch field 2
  // entries) and how many.
  std::string open_events_;
  size_t open_count_ = 0;
  std::chrono::steady_clock::time_point open_since_;
  std::deque<Batch> queue_;  // sealed, unacknowledged, in seq order
  uint64_t next_seq_ = 1;
  uint64_t queued_events_ = 0;  // in queue_ and open_
  size_t send_pos_ = 0;         // index in queue_ of the next batch to send
  // The live stream. Shared: a caller may Kick it outside mu_ while the
  // connection manager replaces it. It is released only after its OnDone
  // (stream_done_), and never on a gRPC thread.
  std::shared_ptr<Stream> stream_;
  bool stream_done_ = true;
  bool stop_ = false;
  DeliveryStats stats_;
  std::thread thread_;
};

}  // namespace tokenwatch::output

#endif  // TOKENWATCH_AGENT_OUTPUT_COLLECTOR_SINK_H_
