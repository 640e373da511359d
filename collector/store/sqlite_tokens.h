// The `tokens` table of the `sqlite:` store: one row per tracked identity,
// readable with plain SQL (aud, services, clients and uses_by_service are
// JSON text), plus the serialized TokenInfo the collector reads back.
#ifndef TOKENWATCH_COLLECTOR_STORE_SQLITE_TOKENS_H_
#define TOKENWATCH_COLLECTOR_STORE_SQLITE_TOKENS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/model.h"
#include "collector/store/sqlite_connection.h"

namespace tokenwatch::collector::sqlite {

// Inside the caller's transaction.
absl::Status UpsertTokens(Connection& c, const std::vector<TokenRow>& rows);
absl::Status DeleteTokens(Connection& c,
                          const std::vector<std::string>& identities);

// Every row, by identity.
absl::Status LoadTokens(Connection& c, std::vector<TokenRow>* out);
absl::StatusOr<std::optional<TokenRow>> ReadToken(Connection& c,
                                                  const std::string& identity);

}  // namespace tokenwatch::collector::sqlite

#endif  // TOKENWATCH_COLLECTOR_STORE_SQLITE_TOKENS_H_
