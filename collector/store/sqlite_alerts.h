// The `alerts` table of the `sqlite:` store: one row per (type, identity,
// service), its columns readable with plain SQL, and `record`, the SPEC
// alert line, kept current as repeats update the counters.
#ifndef TOKENWATCH_COLLECTOR_STORE_SQLITE_ALERTS_H_
#define TOKENWATCH_COLLECTOR_STORE_SQLITE_ALERTS_H_

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "collector/model.h"
#include "collector/store/sqlite_connection.h"
#include "collector/store/store.h"

namespace tokenwatch::collector::sqlite {

// Inside the caller's transaction. A second alert with the same id or
// (type, identity, service) fails (kAlreadyExists), as does an update of an
// id never stored (kNotFound).
absl::Status InsertAlerts(Connection& c, const std::vector<Alert>& alerts);
// count and last_ts_us, by id.
absl::Status UpdateAlertCounters(Connection& c,
                                 const std::vector<Alert>& alerts);

// Every alert, oldest first.
absl::Status LoadAlerts(Connection& c, std::vector<Alert>* out);
// Those matching `q`, newest first, at most `limit`.
absl::Status QueryAlerts(Connection& c, const AlertQuery& q, size_t limit,
                         std::vector<Alert>* out);

}  // namespace tokenwatch::collector::sqlite

#endif  // TOKENWATCH_COLLECTOR_STORE_SQLITE_ALERTS_H_
