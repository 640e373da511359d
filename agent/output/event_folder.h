// Folds uses of one token at one endpoint within a short window into one
// event with a count and first/last observation times. Folding is keyed on
// everything a detection reads (token, service, method, path, client,
// server, status, location) and never spans the token's exp or nbf, so no
// detection loses what it needs. Time is packet time.
#ifndef TOKENWATCH_AGENT_OUTPUT_EVENT_FOLDER_H_
#define TOKENWATCH_AGENT_OUTPUT_EVENT_FOLDER_H_

#include <cstdint>
#include <deque>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "agent/output/event_sink.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::output {

class EventFolder {
 public:
  // `window_us` 0 emits every use as its own event.
  EventFolder(int64_t window_us, size_t max_open, EventSink* sink)
      : window_us_(window_us), max_open_(max_open), sink_(sink) {}

  // Takes one use (count 1, ts_us = last_ts_us = observation time).
  void Add(UsageRecord&& use);
  // Emits folds whose window closed before `now_us`.
  void Advance(int64_t now_us);
  // Emits everything.
  void FlushAll();
  uint64_t emitted() const { return emitted_; }
  size_t open() const { return open_.size(); }

 private:
  struct Open {
    UsageRecord event;
    uint64_t generation;
  };
  // Writes the fold key into key_buf_ (reused: no allocation per use).
  void BuildKey(const UsageRecord& e);
  bool CanFold(const UsageRecord& open, int64_t ts_us) const;
  void Emit(const UsageRecord& e) {
    sink_->Emit(e);
    ++emitted_;
  }

  int64_t window_us_;
  size_t max_open_;
  EventSink* sink_;
  absl::flat_hash_map<std::string, Open> open_;
  std::deque<std::pair<std::string, uint64_t>> order_;  // key, generation
  uint64_t next_generation_ = 0;
  uint64_t emitted_ = 0;
  std::string key_buf_;
};

}  // namespace tokenwatch::output

#endif  // TOKENWATCH_AGENT_OUTPUT_EVENT_FOLDER_H_
