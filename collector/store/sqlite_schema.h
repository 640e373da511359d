// The `sqlite:` store's tables (schema version 1), created in a new file
// and checked in an existing one before anything is written to it.
//
//   tokens          one row per tracked identity; aud, services, clients and
//                   uses_by_service are JSON text; token_blob is the
//                   serialized TokenInfo (claims only, never a raw token)
//   alerts          one row per (type, identity, service); `record` is the
//                   SPEC alert line (AlertJson), kept current on repeats
//   agent_progress  (agent_id, boot_id) -> seq
//   journal         one record per batch applied since the last checkpoint
//                   of the tokens table (collector/state/journal.h)
//   meta            schema_version
// Times are stored twice: RFC 3339 text for people, microseconds for code.
// 64-bit unsigned values (uses, count, boot_id, seq) are stored as their
// two's-complement int64 bit pattern, so huge boot ids read back exactly
// (and look negative in the CLI).
#ifndef TOKENWATCH_COLLECTOR_STORE_SQLITE_SCHEMA_H_
#define TOKENWATCH_COLLECTOR_STORE_SQLITE_SCHEMA_H_

#include "absl/status/status.h"
#include "collector/store/sqlite_connection.h"

namespace tokenwatch::collector::sqlite {

inline constexpr int kSchemaVersion = 1;

// Refuses files this version must not write to: someone else's database,
// a tokenwatch schema it does not know (newer, or an unknown
// schema_version), or a known one with tables or columns missing. An empty
// file is a new store. Changes nothing.
absl::Status CheckSchema(Connection& c);

// Checks the file again (another process may have won the race) and
// creates what is missing, in one write transaction. The first write also
// proves the file, its folder (for -wal and -shm) and the disk writable, at
// start-up rather than at the first commit.
absl::Status CreateSchema(Connection& c);

}  // namespace tokenwatch::collector::sqlite

#endif  // TOKENWATCH_COLLECTOR_STORE_SQLITE_SCHEMA_H_
