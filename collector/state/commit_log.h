// What the engine has applied and what the store holds, in commit order:
// per agent run, the last batch applied, prepared for a commit, and stored
// (what acknowledgements say); the journal records of the batches since
// the last checkpoint; and the commits prepared but not yet stored, which
// are written in order, a failed one first again at the next attempt.
//
// One thread uses a CommitLog (the engine's). Write() is the store's
// work and needs no lock that guards the rest of the engine: the API's
// threads never read what it touches (see Engine::WriteCommits).
#ifndef TOKENWATCH_COLLECTOR_STATE_COMMIT_LOG_H_
#define TOKENWATCH_COLLECTOR_STATE_COMMIT_LOG_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "collector/model.h"
#include "collector/store/store.h"

namespace tokenwatch::collector {

// What one Write() did.
struct CommitWrite {
  // OK, or the first failure: that commit and those after it stay queued.
  absl::Status status;
  // Each store call's latency in seconds, in order (the last one is the
  // failure when !status.ok()).
  std::vector<double> seconds;
  // The progress the stored commits made durable.
  std::vector<AgentProgress> stored;
};

class CommitLog {
 public:
  // Progress already stored (at start-up).
  void Restore(const AgentProgress& p);
  // Journal bytes already stored (at start-up), which a restart replays.
  void CountStoredJournal(size_t bytes) { journal_bytes_ += bytes; }

  // Batch `seq` of the run (agent, boot) was applied; false when it had
  // been applied before (a resend), which then must not be applied again,
  // or when it is not the next one (`*gap` then says so). A known run's
  // numbers are contiguous: a gap or a jump would make its later batches
  // look like resends, acknowledged without being stored. A run the
  // collector has no record of may start anywhere (its store was lost).
  bool Apply(const std::string& agent, uint64_t boot, uint64_t seq,
             bool* gap = nullptr);
  // The journal record of the batch just applied (not called when empty).
  void Journal(const std::string& agent, uint64_t boot, std::string record);
  // Journal bytes since the last checkpoint: what a restart replays.
  size_t journal_bytes() const { return journal_bytes_; }

  // Adds to `batch` what goes into the next commit: the journal records
  // since the last one (a checkpoint drops them instead: its token rows
  // hold their effect, and it empties the stored journal) and the progress
  // applied since.
  void Prepare(CommitBatch* batch);
  // Queues a prepared commit behind those not yet stored.
  void Queue(CommitBatch batch);
  bool HasQueued() const { return !queued_.empty(); }

  // Writes the queued commits to `store` in order, stopping at the first
  // failure, and calls `stored` with each commit the store took.
  CommitWrite Write(Store* store,
                    const std::function<void(const CommitBatch&)>& stored);
  // Takes in what a Write() made durable.
  void Written(const CommitWrite& write);

  // The highest batch of (agent, boot) that is durably stored.
  uint64_t StoredThrough(const std::string& agent, uint64_t boot) const;

 private:
  // Progress applied (in memory), prepared (in a queued commit) and stored
  // (durable), by "agent|boot".
  absl::flat_hash_map<std::string, AgentProgress> applied_, prepared_, stored_;
  std::vector<JournalEntry> journal_;  // applied, not yet prepared
  size_t journal_bytes_ = 0;           // since the last checkpoint
  std::deque<CommitBatch> queued_;     // prepared, not yet stored
};

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_STATE_COMMIT_LOG_H_
