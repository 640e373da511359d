// Every alert the collector has raised, by (type, token identity, service):
// the SPEC's "one alert per (type, token identity, service); repeats update
// counters, not the alert stream". The book says whether a finding is a new
// alert or a repeat, and hands a commit what changed since the last one.
#ifndef TOKENWATCH_COLLECTOR_STATE_ALERT_BOOK_H_
#define TOKENWATCH_COLLECTOR_STATE_ALERT_BOOK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "collector/detect/detector.h"
#include "collector/model.h"
#include "common/alert_type.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::collector {

class AlertBook {
 public:
  // An alert already stored (at start-up): its key and counters.
  void Restore(const Alert& stored);
  // At most this many alerts per token identity; a finding that would
  // raise one more is dropped and counted (over_cap()).
  void set_max_per_identity(size_t n) { max_per_identity_ = n; }
  uint64_t over_cap() const { return over_cap_; }

  // Books finding `f` of use `e` by `agent` of the token `identity`: a new
  // alert (true), or a repeat that adds the use's count to the alert's, or
  // (false, over_cap() grows) a new alert past the token's cap.
  bool Record(const Finding& f, const std::string& identity,
              const std::string& agent, const v1::UsageEvent& e);

  // What changed since the last call: alerts raised, carrying their latest
  // counters, and the counters of the earlier alerts that repeated.
  void TakeChanges(std::vector<Alert>* raised, std::vector<Alert>* repeated);

  size_t size() const { return alerts_.size(); }

 private:
  struct Entry {
    std::string id;
    uint64_t count;
    int64_t last_ts_us;
    bool dirty;  // repeated since the last TakeChanges
  };
  std::string NewAlertId(int64_t ts_us);

  absl::flat_hash_map<std::string, Entry> alerts_;  // by Key()
  std::vector<Alert> raised_;            // since the last TakeChanges
  std::vector<std::string> dirty_keys_;  // of repeated earlier alerts
  uint64_t id_counter_ = 0;
  absl::flat_hash_map<std::string, uint32_t> per_identity_;
  size_t max_per_identity_ = SIZE_MAX;
  uint64_t over_cap_ = 0;
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_STATE_ALERT_BOOK_H_
