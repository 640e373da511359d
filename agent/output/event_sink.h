// Where finished usage events go: a JSON-lines file today, the collector
// stream later. Called on the pipeline's thread.
#ifndef TOKENWATCH_AGENT_OUTPUT_EVENT_SINK_H_
#define TOKENWATCH_AGENT_OUTPUT_EVENT_SINK_H_

#include <vector>

#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::output {

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void Emit(const v1::UsageEvent& event) = 0;
  virtual void Flush() {}
};

// Keeps events in memory: for tests.
class VectorSink : public EventSink {
 public:
  void Emit(const v1::UsageEvent& event) override { events.push_back(event); }
  std::vector<v1::UsageEvent> events;
};

}  // namespace tokenwatch::output

#endif  // TOKENWATCH_AGENT_OUTPUT_EVENT_SINK_H_
