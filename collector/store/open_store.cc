// OpenStore: the --store URI to a Store.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "collector/store/memory_store.h"
#include "collector/store/sqlite_store.h"
#include "collector/store/store.h"

namespace tokenwatch::collector {

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& uri) {
  constexpr absl::string_view kSqlite = "sqlite:";
  if (uri == "memory:") return std::make_unique<MemoryStore>();
  if (absl::StartsWith(uri, kSqlite)) {
    // SqliteStore's errors already name "sqlite:PATH", which is `uri`.
    absl::StatusOr<std::unique_ptr<SqliteStore>> store =
        SqliteStore::Open(uri.substr(kSqlite.size()));
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(*std::move(store));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "store \"", uri, "\": unknown kind; use sqlite:PATH or memory:"));
}

}  // namespace tokenwatch::collector
