// Folds uses of one token at one endpoint within a short window. The first
// use of a key is emitted at once (so alerts never wait for a window); the
// repeats that follow within the window become one event with a count and
// first/last observation times. Windows tumble on packet time: every open
// fold is emitted when the window that began with the first of them closes.
// Folding is keyed on everything a detection reads (token, service, method,
// path, client, server, status, location, protocol, source, grpc_status)
// and never spans the token's exp or
// nbf, so no detection loses what it needs.
#ifndef TOKENWATCH_AGENT_OUTPUT_EVENT_FOLDER_H_
#define TOKENWATCH_AGENT_OUTPUT_EVENT_FOLDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/output/event_sink.h"

namespace tokenwatch::output {

class EventFolder {
 public:
  // `window_us` 0 emits every use as its own event. At most `max_open`
  // folds are held; more close the window early (emitted, not lost).
  // `leeway_s`: the detections' clock leeway; folds stop at exp, nbf and
  // iat shifted by it too.
  EventFolder(int64_t window_us, size_t max_open, EventSink* sink,
              int64_t leeway_s = 0)
      : window_us_(window_us),
        max_open_(max_open),
        sink_(sink),
        leeway_s_(leeway_s) {}

  // Takes one use (count 1, ts_us = last_ts_us = observation time).
  void Add(UsageRecord&& use);
  // Emits every fold once packet time reaches the end of their window.
  void Advance(int64_t now_us) {
    if (!open_.empty() && now_us >= window_end_us_) FlushAll();
  }
  // Emits everything, in the order the folds were opened.
  void FlushAll();
  uint64_t emitted() const { return emitted_; }
  size_t open() const { return open_.size(); }

 private:
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
  int64_t leeway_s_;
  std::vector<UsageRecord> open_;                   // in opening order
  absl::flat_hash_map<std::string, size_t> index_;  // fold key → open_ slot
  int64_t window_end_us_ = 0;
  uint64_t emitted_ = 0;
  std::string key_buf_;
};

}  // namespace tokenwatch::output

#endif  // TOKENWATCH_AGENT_OUTPUT_EVENT_FOLDER_H_
