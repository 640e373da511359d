// The body of GET /healthz: whether the store takes commits, the agent
// streams open, tokens tracked and their memory, events and alerts so far.
#ifndef TOKENWATCH_COLLECTOR_HEALTH_H_
#define TOKENWATCH_COLLECTOR_HEALTH_H_

#include <string>

#include "collector/ingest/ingest_service.h"
#include "collector/store/store.h"

namespace tokenwatch::collector {

// Reads the engine under the ingest service's lock, which is never held
// across a store write: a slow disk does not slow this down.
// While commits fail, "status" is "store_failing" and "reason" says why
// (the store's error: a read-only or full file system, ...).
std::string HealthJson(IngestService& service, const Store* store = nullptr);

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_HEALTH_H_
