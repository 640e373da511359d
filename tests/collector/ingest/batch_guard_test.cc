// What a batch may carry into the collector: strings cut at a UTF-8
// boundary, lists cut to a count, the stream's agent name on every event
// (issue 12, item 3).
#include "collector/ingest/batch_guard.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/collector/testing/builders.h"

namespace tokenwatch::collector {
namespace {

using test::Batch;
using test::kExp;
using test::Use;

TEST(BatchGuardTest, LongStringsAndListsAreCutAndCounted) {
  v1::UsageEvent e = Use("orders", kExp);
  e.set_path("/" + std::string(100000, 'a'));
  e.mutable_token()->set_sub(std::string(70, 'x') + "\xc3\xa9" +
                             std::string(10, 'y'));  // é across byte 71
  for (int i = 0; i < 1000; ++i) e.mutable_token()->add_aud("aud");
  (*e.mutable_finding_details())["alg_none"] = std::string(5000, 'd');
  e.set_agent("someone-else");
  v1::EventBatch b = Batch(1, {e, Use("orders", kExp)});
  uint64_t cut = GuardBatch(&b, "host-a", /*max_bytes=*/71);
  EXPECT_EQ(cut, 5u);  // path, sub, aud list, the details map and its value
  const v1::UsageEvent& g = b.events(0);
  EXPECT_EQ(g.path().size(), 71u);
  EXPECT_EQ(g.token().sub(), std::string(70, 'x'));  // not half an é
  EXPECT_EQ(g.token().aud_size(), kMaxListEntries);
  EXPECT_EQ(g.finding_details().at("alg_none").size(), 71u);
  EXPECT_EQ(g.agent(), "host-a");
  EXPECT_EQ(b.events(1).agent(), "host-a");
  // The batch still serializes (valid UTF-8 everywhere).
  std::string wire;
  EXPECT_TRUE(b.SerializeToString(&wire));
  v1::EventBatch back;
  EXPECT_TRUE(back.ParseFromString(wire));
}

TEST(BatchGuardTest, AnHonestBatchIsUntouched) {
  v1::EventBatch b = Batch(1, {Use("orders", kExp), Use("payments", kExp)});
  std::string before = b.SerializeAsString();
  EXPECT_EQ(GuardBatch(&b, "host-a", 1024), 0u);
  EXPECT_EQ(b.SerializeAsString(), before);
}

}  // namespace
}  // namespace tokenwatch::collector
