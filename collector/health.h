// The body of GET /healthz: whether the store takes commits, the agent
// streams open, tokens tracked and their memory, events and alerts so far.
#ifndef TOKENWATCH_COLLECTOR_HEALTH_H_
#define TOKENWATCH_COLLECTOR_HEALTH_H_

#include <string>

#include "collector/ingest/ingest_service.h"

namespace tokenwatch::collector {

// Reads the engine under the ingest service's lock, which is never held
// across a store write: a slow disk does not slow this down.
std::string HealthJson(IngestService& service);

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_HEALTH_H_
