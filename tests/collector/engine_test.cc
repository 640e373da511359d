// The engine against a real store: detections raise alerts once per
// (type, identity, service), batches count exactly once, and a restarted
// engine resumes without raising anything twice.
#include "collector/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "collector/store/store.h"
#include "tests/collector/testing/builders.h"
#include "tests/collector/testing/stores.h"

namespace tokenwatch::collector {
namespace {

using test::Batch;
using test::kExp;
using test::Use;

class EngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  EngineTest() {
    cfg_.services.push_back({"orders", {{}, {}}, {"orders-api"}});
    cfg_.services.push_back({"payments", {{}, {}}, {"payments-api"}});
    cfg_.detections.multi_source = {absl::Minutes(5), 3};
    std::string name =
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    uri_ = GetParam() == "sqlite" ? "sqlite:" + ::testing::TempDir() +
                                        "/engine_test_" + name + ".db"
                                  : "memory:";
    if (GetParam() == "sqlite") std::filesystem::remove(uri_.substr(7));
    store_ = *OpenStore(uri_);
  }
  std::unique_ptr<Engine> NewEngine() {
    auto e = std::make_unique<Engine>(
        cfg_, store_.get(), [this](const Alert& a) { raised_.push_back(a); });
    EXPECT_TRUE(e->Restore().ok());
    return e;
  }
  config::Config cfg_;
  std::string uri_;
  std::unique_ptr<Store> store_;
  std::vector<Alert> raised_;
};

TEST_P(EngineTest, RaisesOnceAndCountsRepeats) {
  auto engine = NewEngine();
  EXPECT_TRUE(engine->Apply(
      "host-a", 1,
      Batch(1, {Use("orders", kExp - 100), Use("payments", kExp - 90),
                Use("payments", kExp - 80)})));
  EXPECT_TRUE(engine->Commit().ok());
  // cross_service and audience_mismatch at payments, once each.
  ASSERT_EQ(raised_.size(), 2u);
  std::set<AlertType> types;
  for (auto& a : raised_) types.insert(a.type);
  EXPECT_TRUE(types.count(AlertType::kCrossService));
  EXPECT_TRUE(types.count(AlertType::kAudienceMismatch));
  EXPECT_EQ(raised_[0].identity, "https://idp.test|j-1");
  EXPECT_EQ(raised_[0].service, "payments");
  EXPECT_TRUE(raised_[0].accepted.value());
  AlertQuery q;
  q.type = AlertType::kAudienceMismatch;
  auto stored = store_->QueryAlerts(q);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].count, 2u);  // the repeat updated the counter
}

TEST_P(EngineTest, DuplicateBatchesCountOnce) {
  auto engine = NewEngine();
  EXPECT_TRUE(
      engine->Apply("host-a", 7, Batch(1, {Use("orders", kExp - 100)})));
  EXPECT_FALSE(
      engine->Apply("host-a", 7, Batch(1, {Use("orders", kExp - 100)})));
  EXPECT_TRUE(engine->Apply(
      "host-b", 7, Batch(1, {Use("orders", kExp - 100)})));  // other agent
  EXPECT_TRUE(engine->Commit().ok());
  EXPECT_EQ(engine->StoredThrough("host-a", 7), 1u);
  EXPECT_EQ(engine->StoredThrough("host-a", 8), 0u);  // a new run of the agent
  auto row = store_->GetToken("https://idp.test|j-1");
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->uses, 2u);
}

// Only for stores that outlive the process (memory: does not, by design).
class PersistentEngineTest : public EngineTest {};

TEST_P(PersistentEngineTest, RestartResumesWithoutRaisingTwice) {
  {
    auto engine = NewEngine();
    engine->Apply(
        "host-a", 1,
        Batch(1, {Use("orders", kExp - 100), Use("payments", kExp - 90)}));
    ASSERT_TRUE(engine->Commit().ok());
  }
  size_t before = raised_.size();
  store_.reset();
  store_ = *OpenStore(uri_);
  auto engine = NewEngine();
  EXPECT_EQ(engine->StoredThrough("host-a", 1), 1u);
  EXPECT_FALSE(engine->Apply(
      "host-a", 1, Batch(1, {Use("payments", kExp - 90)})));  // resent
  engine->Apply("host-a", 1, Batch(2, {Use("payments", kExp - 10)}));
  ASSERT_TRUE(engine->Commit().ok());
  EXPECT_EQ(raised_.size(),
            before);  // nothing new: same (type, identity, service)
  auto row = store_->GetToken("https://idp.test|j-1");
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->uses, 3u);
  EXPECT_EQ((*row)->services.size(), 2u);
}

// Between checkpoints a commit journals the batches instead of rewriting
// every token they touched; a restart replays the journal, so the token
// state, the dedup of batches and of alerts all survive.
TEST_P(PersistentEngineTest, JournaledBatchesAreReplayedAfterARestart) {
  {
    auto engine = NewEngine();
    engine->Apply("host-a", 1,
                  Batch(1, {Use("orders", kExp - 100, "10.0.0.1"),
                            Use("payments", kExp - 90, "10.0.0.2")}));
    ASSERT_TRUE(engine->Commit(/*checkpoint=*/false).ok());
    engine->Apply("host-a", 1,
                  Batch(2, {Use("orders", kExp - 80, "10.0.0.1")}));
    ASSERT_TRUE(engine->Commit(/*checkpoint=*/false).ok());
    // Not yet in the tokens table, but alerts and progress are durable.
    auto row = store_->GetToken("https://idp.test|j-1");
    ASSERT_TRUE(row.ok());
    EXPECT_FALSE(row->has_value());
    EXPECT_EQ(engine->GetToken("https://idp.test|j-1")->uses, 3u);
    EXPECT_GT(engine->JournalBytes(), 0u);
    auto snap = store_->Load();
    ASSERT_TRUE(snap.ok());
    EXPECT_EQ(snap->journal.size(), 2u);
  }  // gone without a checkpoint, as after kill -9
  size_t before = raised_.size();
  EXPECT_EQ(before, 2u);  // cross_service, audience_mismatch at payments
  store_.reset();
  store_ = *OpenStore(uri_);
  auto engine = NewEngine();
  EXPECT_EQ(engine->StoredThrough("host-a", 1), 2u);
  auto replayed = engine->GetToken("https://idp.test|j-1");
  ASSERT_TRUE(replayed.has_value());
  EXPECT_EQ(replayed->uses, 3u);
  EXPECT_EQ(replayed->services,
            (std::vector<std::string>{"orders", "payments"}));
  EXPECT_EQ(replayed->clients,
            (std::vector<std::string>{"10.0.0.2", "10.0.0.1"}));  // by time
  // A resent batch is still a duplicate; a new use raises nothing twice but
  // does complete multi_source (three clients within five minutes).
  EXPECT_FALSE(
      engine->Apply("host-a", 1, Batch(2, {Use("orders", kExp - 80)})));
  engine->Apply("host-a", 1,
                Batch(3, {Use("payments", kExp - 70, "10.0.0.4")}));
  ASSERT_TRUE(engine->Commit(/*checkpoint=*/true).ok());
  ASSERT_EQ(raised_.size(), before + 1);
  EXPECT_EQ(raised_.back().type, AlertType::kMultiSource);
  // The checkpoint wrote the tokens and emptied the journal.
  auto row = store_->GetToken("https://idp.test|j-1");
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->uses, 4u);
  EXPECT_EQ(engine->JournalBytes(), 0u);
  auto snap = store_->Load();
  ASSERT_TRUE(snap.ok());
  EXPECT_TRUE(snap->journal.empty());
}

TEST_P(PersistentEngineTest, ACorruptJournalIsAClearError) {
  CommitBatch bad;
  bad.checkpoint = false;
  bad.journal.push_back({"host-a", 1, "\xff\xff\xff not a batch"});
  ASSERT_TRUE(store_->Commit(bad).ok());
  Engine engine(cfg_, store_.get(), nullptr);
  absl::Status s = engine.Restore();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("host-a"), absl::string_view::npos);
}

// The ingest service's pattern: apply and prepare under a lock, write to
// the store without it, finish under it, while the API's threads take the
// lock to read. Under TSan (scripts/sanitize.sh tsan) this shows that
// WriteCommits touches nothing the readers read.
TEST_P(EngineTest, ReadersRunWhileTheStoreWrites) {
  auto engine = NewEngine();
  std::mutex mu;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0}, observed{0};
  std::thread reader([&] {
    while (!done.load()) {
      std::lock_guard<std::mutex> lock(mu);
      // What /healthz, /metrics and /api/v1/tokens/{id} read.
      uint64_t seen = engine->stats().events + engine->tokens().size() +
                      engine->GetToken("https://idp.test|j-1").has_value();
      observed.store(seen);  // kept: what was read is used
      ++reads;
    }
  });
  // The writer starts once the reader runs. Failures are recorded, not
  // returned from, so the reader is always joined.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (reads.load() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  EXPECT_GT(reads.load(), 0u);
  for (uint64_t seq = 1; seq <= 50; ++seq) {
    {
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_TRUE(engine->Apply(
          "host-a", 1,
          Batch(seq, {Use("orders", kExp - 1000 + static_cast<int64_t>(seq)),
                      Use("payments", kExp - 999 + static_cast<int64_t>(seq),
                          "10.0.3.7", 200, absl::StrCat("p-", seq))})));
      engine->PrepareCommit(/*checkpoint=*/seq % 10 == 0);
    }
    CommitWrite write = engine->WriteCommits();
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_TRUE(engine->FinishCommits(write).ok());
    EXPECT_EQ(engine->StoredThrough("host-a", 1), seq);
  }
  done = true;
  reader.join();
  EXPECT_EQ(engine->stats().commits, 50u);
  // j-1 at orders raises nothing; each p-N at payments is a token for
  // orders-api: audience_mismatch once per token.
  EXPECT_EQ(raised_.size(), 50u);
}

TEST_P(EngineTest, MultiSourceWithinTheWindow) {
  auto engine = NewEngine();
  engine->Apply("a", 1,
                Batch(1, {Use("orders", kExp - 1000, "10.0.0.1"),
                          Use("orders", kExp - 900, "10.0.0.2")}));
  engine->Apply(
      "a", 1,
      Batch(2, {Use("orders", kExp - 100, "10.0.0.3")}));  // > 5 min later
  ASSERT_TRUE(engine->Commit().ok());
  EXPECT_TRUE(raised_.empty());
  engine->Apply("a", 1,
                Batch(3, {Use("orders", kExp - 90, "10.0.0.4"),
                          Use("orders", kExp - 80, "10.0.0.5")}));
  ASSERT_TRUE(engine->Commit().ok());
  ASSERT_EQ(raised_.size(), 1u);
  EXPECT_EQ(raised_[0].type, AlertType::kMultiSource);
  EXPECT_EQ(raised_[0].client, "10.0.0.5");  // .3, .4, .5 within 5 min
}

TEST_P(EngineTest, ExpiredTokensAreRetiredAfterRetention) {
  cfg_.collector.token_retention = absl::Hours(1);
  auto engine = NewEngine();
  engine->Apply("a", 1,
                Batch(1, {Use("orders", kExp - 100, "10.0.0.1", 200, "old")}));
  engine->Apply("a", 1,
                Batch(2, {Use("orders", kExp + 7200, "10.0.0.1", 401, "new")}));
  ASSERT_TRUE(engine->Commit().ok());
  EXPECT_EQ(engine->stats().tokens_retired, 1u);
  auto gone = store_->GetToken("https://idp.test|old");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

TEST_P(EngineTest, MemoryPerTokenIsMeasured) {
  auto engine = NewEngine();
  std::vector<v1::UsageEvent> events;
  for (int i = 0; i < 20000; ++i) {
    events.push_back(
        Use("orders", kExp - 100, "10.0.0.1", 200, "jti-" + std::to_string(i)));
  }
  engine->Apply("a", 1, Batch(1, std::move(events)));
  EXPECT_EQ(engine->tokens().size(), 20000u);
  double bytes = engine->tokens().bytes_per_token();
  RecordProperty("bytes_per_token", std::to_string(bytes));
  EXPECT_GT(bytes, 100);
  EXPECT_LT(bytes, 512);
}

// Everything a token row holds, as text (for comparing two engines).
std::string Render(const TokenRow& r) {
  std::string out = absl::StrCat(r.identity, " ", r.token.ShortDebugString(),
                                 " first=", r.first_seen_us,
                                 " last=", r.last_seen_us, " uses=", r.uses);
  for (const auto& s : r.services) absl::StrAppend(&out, " svc=", s);
  // As a set: a restart keeps the recent clients but not when each was
  // last seen (TokenTable::Restore), so their order may differ.
  std::set<std::string> clients(r.clients.begin(), r.clients.end());
  for (const auto& c : clients) absl::StrAppend(&out, " client=", c);
  for (const auto& [svc, counts] : r.uses_by_service) {
    absl::StrAppend(&out, " ", svc, ":");
    for (uint64_t n : counts) absl::StrAppend(&out, n, ",");
  }
  return out;
}

std::map<std::string, std::string> AllTokens(const Engine& engine) {
  std::map<std::string, std::string> out;
  engine.tokens().ForEach([&](TokenTable::Ref, const TokenState& s) {
    std::string id = engine.tokens().Identity(s);
    out[id] = Render(*engine.GetToken(id));
  });
  return out;
}

// The journal holds, per batch, only what replay needs: a restarted engine
// must rebuild every token exactly as the live one has it, across
// checkpoints, new tokens, re-signed tokens (same jti, new fingerprint and
// claims), opaque tokens, out-of-order times, counts and statuses.
TEST_P(PersistentEngineTest, JournalReplayRebuildsEveryTokenExactly) {
  std::map<std::string, std::string> live;
  {
    auto engine = NewEngine();
    uint64_t x = 0x9e3779b97f4a7c15ull;
    auto next = [&x] {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      return x;
    };
    const char* services[] = {"orders", "payments", "inventory"};
    for (uint64_t seq = 1; seq <= 60; ++seq) {
      std::vector<v1::UsageEvent> events;
      for (int i = 0; i < 50; ++i) {
        uint64_t r = next();
        int t = static_cast<int>(r % 120);
        v1::UsageEvent e =
            Use(services[(r >> 8) % 3],
                kExp - 5000 + static_cast<int64_t>(seq * 10) -
                    static_cast<int64_t>((r >> 12) % 30),
                // 8 clients: the bound, never an eviction
                absl::StrCat("10.0.", (r >> 16) % 2, ".", (r >> 20) % 4),
                (r >> 24) % 4 == 0 ? 0 : 200 + (r >> 26) % 300,
                absl::StrCat("jti-", t));
        e.set_count(1 + (r >> 30) % 3);
        e.set_last_ts_us(e.ts_us() + ((r >> 32) % 4) * 1000000);
        e.mutable_token()->set_fp(absl::StrFormat("%032x", t * 7919 + 1));
        if (t % 10 == 0 && seq > 52) {  // after the last checkpoint
          // Re-signed: the same (iss, jti), a new fingerprint and claims.
          e.mutable_token()->set_fp(absl::StrFormat("%032x", t * 7919 + 2));
          e.mutable_token()->set_sub("bob");
        }
        if (t % 7 == 0) {
          // Opaque: named by its fingerprint.
          v1::TokenInfo* tok = e.mutable_token();
          tok->Clear();
          tok->set_kind(v1::TOKEN_KIND_OPAQUE);
          tok->set_fp(absl::StrFormat("%032x", t * 104729 + 3));
        }
        events.push_back(std::move(e));
      }
      ASSERT_TRUE(engine->Apply("host-a", 1, Batch(seq, std::move(events))));
      // A checkpoint now and then; the rest is journaled.
      ASSERT_TRUE(engine->Commit(/*checkpoint=*/seq % 17 == 0).ok());
    }
    EXPECT_GT(engine->JournalBytes(), 0u);
    live = AllTokens(*engine);
  }
  store_.reset();
  store_ = *OpenStore(uri_);
  auto restored = NewEngine();
  EXPECT_EQ(restored->StoredThrough("host-a", 1), 60u);
  std::map<std::string, std::string> again = AllTokens(*restored);
  EXPECT_EQ(again.size(), live.size());
  for (const auto& [id, row] : live) EXPECT_EQ(again[id], row) << id;
}

// "iss|jti" is not injective: ("a|b", "c") and ("a", "b|c") are two
// tokens that share one stored row. A use journaled after a checkpoint must
// not depend on that row: the restart still succeeds and has both.
TEST_P(PersistentEngineTest, TokensSharingAStoredNameStillReplay) {
  auto jwt = [](const std::string& iss, const std::string& jti,
                const std::string& fp) {
    v1::UsageEvent e = Use("orders", kExp - 100);
    e.mutable_token()->set_iss(iss);
    e.mutable_token()->set_jti(jti);
    e.mutable_token()->set_fp(fp);
    return e;
  };
  std::map<std::string, std::string> live;
  {
    auto engine = NewEngine();
    engine->Apply("host-a", 1,
                  Batch(1, {jwt("a|b", "c", std::string(32, '1')),
                            jwt("a", "b|c", std::string(32, '2'))}));
    ASSERT_TRUE(engine->Commit(/*checkpoint=*/true).ok());
    engine->Apply("host-a", 1,
                  Batch(2, {jwt("a|b", "c", std::string(32, '1')),
                            jwt("a", "b|c", std::string(32, '2'))}));
    ASSERT_TRUE(engine->Commit(/*checkpoint=*/false).ok());
    EXPECT_EQ(engine->tokens().size(), 2u);
  }
  store_.reset();
  store_ = *OpenStore(uri_);
  auto engine = std::make_unique<Engine>(cfg_, store_.get(), nullptr);
  ASSERT_TRUE(engine->Restore().ok());
  EXPECT_EQ(engine->StoredThrough("host-a", 1), 2u);
  EXPECT_EQ(engine->tokens().size(), 2u);
}

// A token retired and used again in the same commit (no checkpoint between,
// as when both happen within one group of batches) starts afresh, live and
// after a restart: its old history, still in the stored row, is not merged
// back in.
TEST_P(PersistentEngineTest, ATokenRetiredAndReusedStartsAfreshOnReplay) {
  std::map<std::string, std::string> live;
  const int64_t much_later = kExp + 400 * 86400;  // past any retention
  // The collector's clock then: event times past it plus the allowed skew
  // are refused (issue 12, item 2).
  auto clock = [much_later] { return (much_later + 10) * 1000000; };
  {
    auto engine = NewEngine();
    engine->SetWallClock(clock);
    engine->Apply("host-a", 1, Batch(1, {Use("orders", kExp - 100)}));
    ASSERT_TRUE(engine->Commit(/*checkpoint=*/true).ok());
    // Another token's use moves time on: j-1 is retired at this batch.
    engine->Apply(
        "host-a", 1,
        Batch(2, {Use("orders", much_later, "10.0.3.7", 200, "j-2")}));
    EXPECT_TRUE(engine->HasRetired());
    // j-1 again: a new token of the same name.
    engine->Apply("host-a", 1,
                  Batch(3, {Use("orders", much_later + 1, "10.0.9.9")}));
    ASSERT_TRUE(engine->Commit(/*checkpoint=*/false).ok());
    live = AllTokens(*engine);
    ASSERT_TRUE(live.count("https://idp.test|j-1"));
    EXPECT_EQ(engine->GetToken("https://idp.test|j-1")->uses, 1u);
  }
  store_.reset();
  store_ = *OpenStore(uri_);
  auto restored = NewEngine();
  restored->SetWallClock(clock);
  EXPECT_EQ(AllTokens(*restored), live);
}

using test::FlakyStore;

// A failed commit acknowledges nothing and raises nothing; the next one
// stores the held work first, then what came after it, once each.
TEST_P(PersistentEngineTest, AFailedCommitIsRetriedFirstAndInOrder) {
  FlakyStore flaky(store_.get());
  {
    Engine engine(cfg_, &flaky,
                  [this](const Alert& a) { raised_.push_back(a); });
    ASSERT_TRUE(engine.Restore().ok());
    flaky.failing = true;
    // orders then payments: cross_service and audience_mismatch (the
    // token is for orders-api) at payments.
    engine.Apply(
        "host-a", 1,
        Batch(1, {Use("orders", kExp - 100), Use("payments", kExp - 90)}));
    EXPECT_FALSE(engine.Commit(/*checkpoint=*/false).ok());
    EXPECT_EQ(engine.StoredThrough("host-a", 1), 0u);
    EXPECT_TRUE(raised_.empty()) << "an alert went out before it was stored";
    engine.Apply("host-a", 1, Batch(2, {Use("payments", kExp - 80)}));
    EXPECT_FALSE(engine.Commit(/*checkpoint=*/true).ok());
    EXPECT_EQ(engine.stats().commit_failures, 2u);
    flaky.failing = false;
    ASSERT_TRUE(engine.Commit(/*checkpoint=*/false).ok());
    EXPECT_EQ(engine.StoredThrough("host-a", 1), 2u);
    EXPECT_EQ(raised_.size(), 2u);
    EXPECT_EQ(flaky.attempts, 4);  // 1st failed, then (1st, 2nd) failed,
                                   // then 1st and 2nd stored
  }
  store_.reset();
  store_ = *OpenStore(uri_);
  auto engine = NewEngine();
  EXPECT_EQ(engine->StoredThrough("host-a", 1), 2u);
  auto row = store_->GetToken("https://idp.test|j-1");
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->uses, 3u);
  auto stored = store_->QueryAlerts(AlertQuery{});
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 2u);
  // cross_service fires on the first use at a new service; the mismatch
  // on both uses at payments.
  for (const Alert& a : *stored)
    EXPECT_EQ(a.count, a.type == AlertType::kCrossService ? 1u : 2u)
        << AlertTypeName(a.type);
}

// ---- Hostile clients: ingest (issue 12) ----

// An engine whose wall clock is fixed at `wall_s` (Unix seconds).
std::unique_ptr<Engine> EngineAt(const config::Config& cfg, Store* store,
                                 int64_t wall_s) {
  auto e = std::make_unique<Engine>(cfg, store, nullptr);
  e->SetWallClock([wall_s] { return wall_s * 1000000; });
  EXPECT_TRUE(e->Restore().ok());
  return e;
}

// `n` distinct tokens (jti "t-<i>"), used at `ts_s`.
v1::EventBatch ManyTokens(uint64_t seq, int n, int64_t ts_s) {
  std::vector<v1::UsageEvent> uses;
  for (int i = 0; i < n; ++i)
    uses.push_back(Use("orders", ts_s, "10.0.3.7", 200, absl::StrCat("t-", i)));
  return Batch(seq, std::move(uses));
}

// Item 2: one event at ts_us = INT64_MAX retired every tracked token
// (1,019 -> 2 on the running collector). Now it is refused and counted,
// and retirement stays driven by the collector's clock.
TEST_P(EngineTest, AFarFutureEventIsRefusedAndRetiresNothing) {
  auto engine = EngineAt(cfg_, store_.get(), kExp - 50);
  ASSERT_TRUE(engine->Apply("host-a", 1, ManyTokens(1, 1000, kExp - 100)));
  v1::UsageEvent outlier = Use("orders", 0, "10.6.6.6", 200, "evil");
  outlier.set_ts_us(INT64_MAX);
  outlier.set_last_ts_us(INT64_MAX);
  v1::UsageEvent negative = Use("orders", 0, "10.6.6.6", 200, "evil2");
  negative.set_ts_us(-5);
  v1::UsageEvent ahead = Use("orders", kExp - 50 + 3600, "10.6.6.6", 200, "e3");
  ASSERT_TRUE(engine->Apply("evil", 1, Batch(1, {outlier, negative, ahead})));
  // A next batch would have run the retirement sweep at the outlier's time.
  ASSERT_TRUE(engine->Apply("host-a", 1, ManyTokens(2, 1, kExp - 40)));
  EXPECT_EQ(engine->stats().events_refused_future, 2u);  // INT64_MAX, +1 h
  EXPECT_EQ(engine->stats().events_refused_bad_time, 1u);
  EXPECT_EQ(engine->stats().tokens_retired, 0u);
  EXPECT_EQ(engine->tokens().size(), 1000u);
  ASSERT_TRUE(engine->Commit().ok());
}

// Item 2, after a restart: a time stored before the bound existed (or one
// agent's outlier inside an old store) must not retire the table at start.
TEST_P(PersistentEngineTest, AStoredOutlierTimeDoesNotRetireAtRestart) {
  {
    // A collector whose own clock went far ahead once stored such a time.
    auto engine = EngineAt(cfg_, store_.get(), INT64_MAX / 1000000);
    v1::UsageEvent outlier = Use("orders", 0, "10.6.6.6", 200, "evil");
    outlier.set_ts_us(INT64_MAX);
    outlier.set_last_ts_us(INT64_MAX);
    ASSERT_TRUE(engine->Apply("evil", 1, Batch(1, {outlier})));
    ASSERT_TRUE(engine->Apply("host-a", 1, ManyTokens(1, 100, kExp - 100)));
    ASSERT_TRUE(engine->Commit(/*checkpoint=*/true).ok());
  }
  store_.reset();
  store_ = *OpenStore(uri_);
  auto engine = EngineAt(cfg_, store_.get(), kExp - 50);
  ASSERT_EQ(engine->tokens().size(), 101u);
  ASSERT_TRUE(engine->Apply("host-a", 2, ManyTokens(1, 1, kExp - 40)));
  EXPECT_EQ(engine->stats().tokens_retired, 0u);
  EXPECT_EQ(engine->tokens().size(), 101u);
}

// Item 3: tokens tracked are capped; the expired go first, then the least
// recently used; evicted tokens leave the store too.
TEST_P(EngineTest, TrackedTokensAreCappedLeastRecentlyUsedFirst) {
  cfg_.collector.limits.max_tokens = 16;
  auto engine = EngineAt(cfg_, store_.get(), kExp - 10);
  std::vector<v1::UsageEvent> uses;
  for (int i = 0; i < 16; ++i)
    uses.push_back(
        Use("orders", kExp - 1000 + i, "10.0.3.7", 200, absl::StrCat("t-", i)));
  uses[5].mutable_token()->set_exp(kExp - 500);  // expired: goes first
  uses.push_back(Use("orders", kExp - 100, "10.0.3.7", 200, "t-0"));  // fresh
  ASSERT_TRUE(engine->Apply("host-a", 1, Batch(1, std::move(uses))));
  ASSERT_TRUE(engine->Commit().ok());
  EXPECT_EQ(engine->tokens().size(), 16u);
  ASSERT_TRUE(engine->Apply(
      "host-a", 1,
      Batch(2, {Use("orders", kExp - 90, "10.0.3.7", 200, "new")})));
  ASSERT_TRUE(engine->Commit().ok());
  EXPECT_LE(engine->tokens().size(), 16u);
  EXPECT_EQ(engine->stats().tokens_evicted, 2u);  // 17 - 16 + 16/16
  EXPECT_FALSE(engine->GetToken("https://idp.test|t-5").has_value());
  EXPECT_FALSE(engine->GetToken("https://idp.test|t-1").has_value());
  EXPECT_TRUE(engine->GetToken("https://idp.test|t-0").has_value());
  EXPECT_TRUE(engine->GetToken("https://idp.test|t-2").has_value());
  EXPECT_TRUE(engine->GetToken("https://idp.test|new").has_value());
  auto row = store_->GetToken("https://idp.test|t-5");
  ASSERT_TRUE(row.ok());
  EXPECT_FALSE(row->has_value());
  // Flooding distinct tokens keeps the bound.
  for (uint64_t seq = 3; seq < 13; ++seq)
    ASSERT_TRUE(engine->Apply("evil", 1, ManyTokens(seq - 2, 50, kExp - 50)));
  EXPECT_LE(engine->tokens().size(), 16u);
}

// Item 3: services per token and alerts per token are capped and counted;
// metric labels name configured services only ("other" for the rest).
TEST_P(EngineTest, ServicesAlertsAndLabelsAreBounded) {
  cfg_.collector.limits.max_services_per_token = 4;
  cfg_.collector.limits.max_alerts_per_token = 3;
  // Expired uses: one expired_use alert per service, before the cap.
  auto engine = EngineAt(cfg_, store_.get(), kExp + 200);
  std::vector<v1::UsageEvent> uses;
  for (int i = 0; i < 200; ++i)
    uses.push_back(Use(absl::StrCat("svc-", i), kExp + 100 + i % 50));
  ASSERT_TRUE(engine->Apply("host-a", 1, Batch(1, std::move(uses))));
  ASSERT_TRUE(engine->Commit().ok());
  auto token = engine->GetToken("https://idp.test|j-1");
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->services.size(), 4u);
  EXPECT_EQ(token->uses, 200u);  // every use counts
  EXPECT_EQ(engine->stats().services_over_cap, 196u);
  EXPECT_LE(engine->stats().alerts_raised, 3u);
  EXPECT_GT(engine->stats().alerts_over_cap, 0u);
  auto all = store_->QueryAlerts(AlertQuery{});
  ASSERT_TRUE(all.ok());
  EXPECT_LE(all->size(), 3u);
  std::set<std::string> labels;
  for (const auto& [svc, n] : engine->stats().uses_by_service)
    labels.insert(svc);
  for (const auto& [svc, n] : engine->stats().alerts_by_service)
    labels.insert(svc);
  EXPECT_EQ(labels, (std::set<std::string>{"other"}));
}

// Item 6: a forged Hello with the victim's boot_id and seq 2^63 made the
// victim's next batches "duplicates": acknowledged, never stored.
TEST_P(EngineTest, AJumpInAKnownRunIsRefusedAndTheVictimKeepsCounting) {
  auto engine = EngineAt(cfg_, store_.get(), kExp - 10);
  ASSERT_TRUE(engine->Apply("victim", 42, ManyTokens(1, 1, kExp - 100)));
  ASSERT_TRUE(engine->Commit().ok());
  bool gap = false;
  EXPECT_FALSE(engine->Apply(
      "victim", 42, ManyTokens(uint64_t{1} << 63, 1, kExp - 100), &gap));
  EXPECT_TRUE(gap);
  EXPECT_EQ(engine->stats().batches_out_of_order, 1u);
  for (uint64_t seq = 2; seq <= 21; ++seq) {
    ASSERT_TRUE(
        engine->Apply("victim", 42, ManyTokens(seq, 1, kExp - 90), &gap));
    EXPECT_FALSE(gap);
  }
  ASSERT_TRUE(engine->Commit().ok());
  EXPECT_EQ(engine->StoredThrough("victim", 42), 21u);
  EXPECT_EQ(engine->GetToken("https://idp.test|t-0")->uses, 21u);
}

INSTANTIATE_TEST_SUITE_P(Stores, EngineTest,
                         ::testing::Values("memory", "sqlite"));
INSTANTIATE_TEST_SUITE_P(Stores, PersistentEngineTest,
                         ::testing::Values("sqlite"));

}  // namespace
}  // namespace tokenwatch::collector
