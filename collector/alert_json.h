// The SPEC "Alert record" as one JSON line: what --alerts-out appends,
// webhooks receive, the store keeps and the API serves.
#ifndef TOKENWATCH_COLLECTOR_ALERT_JSON_H_
#define TOKENWATCH_COLLECTOR_ALERT_JSON_H_

#include <string>

#include "collector/model.h"

namespace tokenwatch::collector {

// One JSON object (no newline), field for field and in the SPEC's order;
// `count` and `last_ts` are added after the SPEC fields.
std::string AlertJson(const Alert& a);

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_ALERT_JSON_H_
