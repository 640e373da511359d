// The usage event as one JSON line (SPEC "Usage event").
#ifndef TOKENWATCH_AGENT_OUTPUT_EVENT_JSON_H_
#define TOKENWATCH_AGENT_OUTPUT_EVENT_JSON_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "agent/output/event_sink.h"
#include "agent/output/usage_record.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::output {

const char* LocationName(v1::TokenLocation loc);
const char* KindName(v1::TokenKind kind);

// The "token" object of an event, and a TokenRecord carrying it.
std::string TokenJson(const v1::TokenInfo& token);
MutableTokenRef MakeTokenRecord(v1::TokenInfo info,
                                std::vector<Finding> findings = {});

// Appends the event's JSON object (no newline).
void AppendEventJson(const UsageRecord& e, std::string* out);

// Writes JSON lines to a file or stdout ("-").
class JsonLinesSink : public EventSink {
 public:
  // Takes ownership of `file` unless it is stdout.
  explicit JsonLinesSink(FILE* file) : file_(file) {}
  ~JsonLinesSink() override;
  void Emit(const UsageRecord& record) override;
  void Flush() override;

 private:
  FILE* file_;
  std::string line_;
};

}  // namespace tokenwatch::output

#endif  // TOKENWATCH_AGENT_OUTPUT_EVENT_JSON_H_
