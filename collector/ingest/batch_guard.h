// What an agent's batch may carry into the collector's state, enforced
// as it arrives: every string is cut to a size (subject, path, finding
// detail, ...), lists and maps to a count, and every event names the
// stream's agent, whatever the sender wrote in it.
#ifndef TOKENWATCH_COLLECTOR_INGEST_BATCH_GUARD_H_
#define TOKENWATCH_COLLECTOR_INGEST_BATCH_GUARD_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenwatch/v1/ingest.pb.h"

namespace tokenwatch::collector {

// Entries kept of a repeated field or map (aud, scopes, findings, ...).
inline constexpr int kMaxListEntries = 32;

// Cuts each string of `batch` to at most `max_bytes` (at a UTF-8 character
// boundary) and each list to kMaxListEntries; sets each event's `agent` to
// `agent`. Returns how many strings and lists were cut.
uint64_t GuardBatch(v1::EventBatch* batch, const std::string& agent,
                    size_t max_bytes);

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_INGEST_BATCH_GUARD_H_
