#include "agent/stats.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace tokenwatch {
namespace {

// Every value of each counted vocabulary has its own name: a missing case
// would show as reason="unknown" in metrics and the summary.
template <typename Enum, typename NameFn>
void ExpectDistinctNames(NameFn name) {
  std::set<std::string> seen;
  for (size_t i = 0; i < static_cast<size_t>(Enum::kCount); ++i) {
    std::string n = name(static_cast<Enum>(i));
    EXPECT_NE(n, "unknown") << "value " << i;
    EXPECT_TRUE(seen.insert(n).second) << "duplicate name " << n;
  }
}

TEST(StatsTest, EveryCountedValueHasItsOwnName) {
  ExpectDistinctNames<Drop>(DropName);
  ExpectDistinctNames<Anomaly>(AnomalyName);
  ExpectDistinctNames<Malformed>(MalformedName);
  ExpectDistinctNames<decode::DecodeResult>(decode::DecodeResultName);
}

}  // namespace
}  // namespace tokenwatch
