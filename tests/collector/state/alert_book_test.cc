// One alert per (type, identity, service): the first finding raises it,
// repeats add to its counters, and a commit gets what changed since the
// last one.
#include "collector/state/alert_book.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/collector/testing/builders.h"

namespace tokenwatch::collector {
namespace {

using test::kExp;
using test::Use;

const Finding kExpired{AlertType::kExpiredUse, Severity::kCritical, "late"};

TEST(AlertBookTest, TheFirstFindingRaisesRepeatsCount) {
  AlertBook book;
  v1::UsageEvent first = Use("orders", kExp + 100);
  v1::UsageEvent again = Use("orders", kExp + 200);
  again.set_count(4);
  EXPECT_TRUE(book.Record(kExpired, "https://idp.test|j-1", "host-a", first));
  EXPECT_FALSE(book.Record(kExpired, "https://idp.test|j-1", "host-b", again));
  std::vector<Alert> raised, repeated;
  book.TakeChanges(&raised, &repeated);
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_TRUE(repeated.empty());  // folded into the new alert's counters
  const Alert a = raised[0];  // a copy: TakeChanges refills `raised` below
  EXPECT_EQ(a.type, AlertType::kExpiredUse);
  EXPECT_EQ(a.severity, Severity::kCritical);
  EXPECT_EQ(a.agent, "host-a");
  EXPECT_EQ(a.ts_us, (kExp + 100) * 1000000);
  EXPECT_EQ(a.count, 5u);
  EXPECT_EQ(a.last_ts_us, (kExp + 200) * 1000000);
  EXPECT_TRUE(a.accepted.value());

  // Nothing new until the next use; then only the counters.
  raised.clear();
  book.TakeChanges(&raised, &repeated);
  EXPECT_TRUE(raised.empty() && repeated.empty());
  EXPECT_FALSE(book.Record(kExpired, "https://idp.test|j-1", "host-a",
                           Use("orders", 1)));
  book.TakeChanges(&raised, &repeated);
  ASSERT_EQ(repeated.size(), 1u);
  EXPECT_EQ(repeated[0].id, a.id);
  EXPECT_EQ(repeated[0].count, 6u);
  EXPECT_EQ(repeated[0].last_ts_us, a.last_ts_us);  // never goes back
}

// Issue 12, item 3: one token at 100,000 services raised 100,000 alerts.
TEST(AlertBookTest, AlertsPerTokenAreCappedAndCounted) {
  AlertBook book;
  book.set_max_per_identity(3);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(book.Record(kExpired, "tok", "h",
                          Use("svc-" + std::to_string(i), kExp)),
              i < 3);
  }
  EXPECT_EQ(book.size(), 3u);
  EXPECT_EQ(book.over_cap(), 7u);
  // A repeat of a kept alert still counts; another token has its own cap.
  EXPECT_FALSE(book.Record(kExpired, "tok", "h", Use("svc-0", kExp)));
  EXPECT_EQ(book.over_cap(), 7u);
  EXPECT_TRUE(book.Record(kExpired, "other", "h", Use("svc-0", kExp)));
}

TEST(AlertBookTest, TypeIdentityAndServiceEachMakeANewAlert) {
  AlertBook book;
  const Finding other{AlertType::kCrossService, Severity::kHigh, "x"};
  EXPECT_TRUE(book.Record(kExpired, "a", "h", Use("b|c", kExp)));
  EXPECT_TRUE(book.Record(kExpired, "a|b", "h", Use("c", kExp)));
  EXPECT_TRUE(book.Record(kExpired, "a\x1f", "h", Use("b", kExp)));
  EXPECT_TRUE(book.Record(kExpired, "a", "h",
                          Use("\x1f"
                              "b",
                              kExp)));
  EXPECT_TRUE(book.Record(other, "a", "h", Use("b|c", kExp)));
  EXPECT_EQ(book.size(), 5u);
  std::vector<Alert> raised, repeated;
  book.TakeChanges(&raised, &repeated);
  ASSERT_EQ(raised.size(), 5u);
  EXPECT_NE(raised[0].id, raised[1].id);
}

TEST(AlertBookTest, StoredAlertsRepeatAfterARestart) {
  Alert stored = test::MakeAlert("0192f0c4-6a3e-7b21-9c4d-5e6f7a8b9c0d",
                                 AlertType::kExpiredUse, "https://idp.test|j-1",
                                 "orders", kExp * 1000000);
  stored.count = 7;
  AlertBook book;
  book.Restore(stored);
  EXPECT_FALSE(book.Record(kExpired, "https://idp.test|j-1", "host-a",
                           Use("orders", kExp + 1)));
  std::vector<Alert> raised, repeated;
  book.TakeChanges(&raised, &repeated);
  EXPECT_TRUE(raised.empty());
  ASSERT_EQ(repeated.size(), 1u);
  EXPECT_EQ(repeated[0].id, stored.id);
  EXPECT_EQ(repeated[0].count, 8u);
}

}  // namespace
}  // namespace tokenwatch::collector
