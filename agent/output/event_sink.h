// Where finished usage events go: a JSON-lines file today, the collector
// stream later. Called on the pipeline's thread.
#ifndef TOKENWATCH_AGENT_OUTPUT_EVENT_SINK_H_
#define TOKENWATCH_AGENT_OUTPUT_EVENT_SINK_H_

#include <vector>

#include "agent/output/usage_record.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::output {

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void Emit(const UsageRecord& record) = 0;
  virtual void Flush() {}
};

// Sends every event to each of several sinks (null entries are skipped).
class TeeSink : public EventSink {
 public:
  explicit TeeSink(std::vector<EventSink*> sinks) {
    for (EventSink* s : sinks) {
      if (s != nullptr) sinks_.push_back(s);
    }
  }
  void Emit(const UsageRecord& r) override {
    for (EventSink* s : sinks_) s->Emit(r);
  }
  void Flush() override {
    for (EventSink* s : sinks_) s->Flush();
  }

 private:
  std::vector<EventSink*> sinks_;
};

// Keeps events in memory, in wire form: for tests.
class VectorSink : public EventSink {
 public:
  void Emit(const UsageRecord& record) override {
    events.push_back(ToProto(record));
  }
  std::vector<v1::UsageEvent> events;
};

}  // namespace tokenwatch::output

#endif  // TOKENWATCH_AGENT_OUTPUT_EVENT_SINK_H_
