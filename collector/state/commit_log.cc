#include "collector/state/commit_log.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tokenwatch::collector {
namespace {

std::string ProgressKey(const std::string& agent, uint64_t boot) {
  return absl::StrCat(agent, "|", boot);
}

}  // namespace

void CommitLog::Restore(const AgentProgress& p) {
  std::string key = ProgressKey(p.agent_id, p.boot_id);
  applied_[key] = p;
  prepared_[key] = p;
  stored_[key] = p;
}

bool CommitLog::Apply(const std::string& agent, uint64_t boot, uint64_t seq,
                      bool* gap) {
  AgentProgress& p = applied_[ProgressKey(agent, boot)];
  if (gap != nullptr) *gap = false;
  if (seq <= p.seq) return false;
  if (p.seq != 0 && seq != p.seq + 1) {
    if (gap != nullptr) *gap = true;
    return false;
  }
  p.agent_id = agent;
  p.boot_id = boot;
  p.seq = seq;
  return true;
}

void CommitLog::Journal(const std::string& agent, uint64_t boot,
                        std::string record) {
  journal_bytes_ += record.size();
  journal_.push_back({agent, boot, std::move(record)});
}

void CommitLog::Prepare(CommitBatch* batch) {
  if (batch->checkpoint) {
    journal_bytes_ = 0;
    journal_.clear();
  } else {
    batch->journal = std::move(journal_);
    journal_.clear();
  }
  for (const auto& [key, progress] : applied_) {
    AgentProgress& was = prepared_[key];
    if (was.seq != progress.seq) {
      batch->progress.push_back(progress);
      was = progress;
    }
  }
}

void CommitLog::Queue(CommitBatch batch) {
  queued_.push_back(std::move(batch));
}

CommitWrite CommitLog::Write(
    Store* store, const std::function<void(const CommitBatch&)>& stored) {
  CommitWrite out;
  while (!queued_.empty()) {
    const CommitBatch& batch = queued_.front();
    auto t0 = std::chrono::steady_clock::now();
    out.status = store->Commit(batch);
    out.seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count());
    if (!out.status.ok()) break;  // first again at the next Write
    out.stored.insert(out.stored.end(), batch.progress.begin(),
                      batch.progress.end());
    if (stored) stored(batch);
    queued_.pop_front();
  }
  return out;
}

void CommitLog::Written(const CommitWrite& write) {
  for (const AgentProgress& p : write.stored) {
    stored_[ProgressKey(p.agent_id, p.boot_id)] = p;
  }
}

uint64_t CommitLog::StoredThrough(const std::string& agent,
                                  uint64_t boot) const {
  auto it = stored_.find(ProgressKey(agent, boot));
  return it == stored_.end() ? 0 : it->second.seq;
}

}  // namespace tokenwatch::collector
