// The commit log: batches count once per agent run, commits are stored in
// the order they were prepared, a failed one stays first, and progress is
// acknowledged only once stored.
#include "collector/state/commit_log.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "collector/store/memory_store.h"
#include "tests/collector/testing/stores.h"

namespace tokenwatch::collector {
namespace {

TEST(CommitLogTest, ABatchCountsOncePerAgentRun) {
  CommitLog log;
  EXPECT_TRUE(log.Apply("host-a", 1, 1));
  EXPECT_FALSE(log.Apply("host-a", 1, 1));  // a resend
  EXPECT_TRUE(log.Apply("host-a", 1, 2));
  EXPECT_FALSE(log.Apply("host-a", 1, 2));
  EXPECT_TRUE(log.Apply("host-a", 2, 1));  // a new run starts again at 1
  EXPECT_TRUE(log.Apply("host-b", 1, 1));
  log.Restore({"host-c", 9, 5});
  EXPECT_FALSE(log.Apply("host-c", 9, 5));
  EXPECT_TRUE(log.Apply("host-c", 9, 6));
  EXPECT_EQ(log.StoredThrough("host-c", 9), 5u);
  EXPECT_EQ(log.StoredThrough("host-a", 1), 0u);  // applied, not stored
}

// Issue 12, item 6: a forged Hello with a victim's boot_id and seq 2^63
// made every later batch of the victim look like a resend (acknowledged,
// never stored). A known run's batches must be contiguous.
TEST(CommitLogTest, AGapOrAJumpInAKnownRunIsRefused) {
  CommitLog log;
  bool gap = false;
  ASSERT_TRUE(log.Apply("victim", 77, 1, &gap));
  ASSERT_TRUE(log.Apply("victim", 77, 2, &gap));
  EXPECT_FALSE(log.Apply("victim", 77, uint64_t{1} << 63, &gap));
  EXPECT_TRUE(gap);
  EXPECT_FALSE(log.Apply("victim", 77, 4, &gap));  // a gap of one
  EXPECT_TRUE(gap);
  // The victim's next batch is still new, not a "resend".
  EXPECT_TRUE(log.Apply("victim", 77, 3, &gap));
  EXPECT_FALSE(gap);
  EXPECT_FALSE(log.Apply("victim", 77, 3, &gap));  // a resend is no gap
  EXPECT_FALSE(gap);
  // A run with no record (a lost store) may start anywhere, then contiguous.
  log.Restore({"host-c", 9, 5});
  EXPECT_FALSE(log.Apply("host-c", 9, 7, &gap));
  EXPECT_TRUE(gap);
  EXPECT_TRUE(log.Apply("host-d", 3, 40, &gap));
  EXPECT_TRUE(log.Apply("host-d", 3, 41, &gap));
}

TEST(CommitLogTest, AFailedCommitStaysFirstAndProgressWaitsForIt) {
  MemoryStore memory;
  test::FlakyStore store(&memory);
  CommitLog log;
  std::vector<uint64_t> announced;  // the seq each stored commit made durable
  auto stored = [&](const CommitBatch& b) {
    announced.push_back(b.progress.empty() ? 0 : b.progress[0].seq);
  };

  ASSERT_TRUE(log.Apply("host-a", 1, 1));
  log.Journal("host-a", 1, "record-1");
  CommitBatch first;
  first.checkpoint = false;
  log.Prepare(&first);
  ASSERT_EQ(first.journal.size(), 1u);
  ASSERT_EQ(first.progress.size(), 1u);
  log.Queue(std::move(first));

  store.failing = true;
  CommitWrite w = log.Write(&store, stored);
  EXPECT_FALSE(w.status.ok());
  EXPECT_EQ(w.seconds.size(), 1u);
  EXPECT_TRUE(w.stored.empty());
  log.Written(w);
  EXPECT_EQ(log.StoredThrough("host-a", 1), 0u);
  EXPECT_TRUE(log.HasQueued());

  ASSERT_TRUE(log.Apply("host-a", 1, 2));
  log.Journal("host-a", 1, "record-2");
  CommitBatch second;
  second.checkpoint = false;
  log.Prepare(&second);
  log.Queue(std::move(second));
  w = log.Write(&store, stored);  // still failing: the first is tried
  EXPECT_EQ(w.seconds.size(), 1u);
  EXPECT_EQ(store.attempts, 2);

  store.failing = false;
  w = log.Write(&store, stored);
  ASSERT_TRUE(w.status.ok());
  EXPECT_EQ(w.seconds.size(), 2u);
  EXPECT_EQ(announced, (std::vector<uint64_t>{1, 2}));  // in order
  EXPECT_EQ(log.StoredThrough("host-a", 1), 0u);        // until Written
  log.Written(w);
  EXPECT_EQ(log.StoredThrough("host-a", 1), 2u);
  EXPECT_FALSE(log.HasQueued());
  absl::StatusOr<Snapshot> snap = memory.Load();
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->journal.size(), 2u);
  EXPECT_EQ(snap->journal[0].batch, "record-1");
  EXPECT_EQ(snap->journal[1].batch, "record-2");
}

TEST(CommitLogTest, ACheckpointDropsTheJournal) {
  CommitLog log;
  log.CountStoredJournal(100);  // replayed at start-up
  ASSERT_TRUE(log.Apply("host-a", 1, 1));
  log.Journal("host-a", 1, std::string(50, 'x'));
  EXPECT_EQ(log.journal_bytes(), 150u);
  CommitBatch checkpoint;  // checkpoint by default
  log.Prepare(&checkpoint);
  EXPECT_TRUE(checkpoint.journal.empty());
  EXPECT_EQ(checkpoint.progress.size(), 1u);
  EXPECT_EQ(log.journal_bytes(), 0u);
  CommitBatch next;
  next.checkpoint = false;
  log.Prepare(&next);  // nothing applied since
  EXPECT_TRUE(next.journal.empty());
  EXPECT_TRUE(next.progress.empty());
}

}  // namespace
}  // namespace tokenwatch::collector
