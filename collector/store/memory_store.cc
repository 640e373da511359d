#include "collector/store/memory_store.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace tokenwatch::collector {

namespace {

// QueryAlerts never returns more than this, whatever the caller asks.
constexpr size_t kMaxAlertQueryLimit = 10000;

absl::Status CommitError(absl::StatusCode code, const std::string& what) {
  return absl::Status(code, absl::StrCat("memory: commit: ", what));
}

}  // namespace

absl::Status MemoryStore::Validate(const CommitBatch& batch) const {
  std::set<std::string> new_ids;
  std::set<AlertKey> new_keys;
  for (const Alert& a : batch.new_alerts) {
    if (alerts_.contains(a.id) || !new_ids.insert(a.id).second) {
      return CommitError(absl::StatusCode::kAlreadyExists,
                         absl::StrCat("alert id \"", a.id, "\" exists"));
    }
    AlertKey key{a.type, a.identity, a.service};
    if (alert_keys_.contains(key) || !new_keys.insert(key).second) {
      return CommitError(
          absl::StatusCode::kAlreadyExists,
          absl::StrCat("an alert for type \"",
                       std::string(AlertTypeName(a.type)), "\", identity \"",
                       a.identity, "\", service \"", a.service, "\" exists"));
    }
  }
  for (const Alert& a : batch.repeated_alerts) {
    if (!alerts_.contains(a.id) && !new_ids.contains(a.id)) {
      return CommitError(
          absl::StatusCode::kNotFound,
          absl::StrCat("repeated alert id \"", a.id, "\" was never stored"));
    }
  }
  return absl::OkStatus();
}

absl::Status MemoryStore::Commit(const CommitBatch& batch) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (absl::Status s = Validate(batch); !s.ok()) return s;
  // Nothing below can fail: the batch applies whole. The order matches
  // SqliteStore, so a batch both upserting and retiring a token deletes it.
  for (const TokenRow& row : batch.tokens) tokens_[row.identity] = row;
  for (const Alert& a : batch.new_alerts) {
    alerts_[a.id] = a;
    alert_keys_.insert({a.type, a.identity, a.service});
    by_time_.insert({a.ts_us, a.id});
  }
  for (const Alert& a : batch.repeated_alerts) {
    Alert& stored = alerts_[a.id];
    stored.count = a.count;
    stored.last_ts_us = a.last_ts_us;
  }
  for (const AgentProgress& p : batch.progress) {
    progress_[{p.agent_id, p.boot_id}] = p.seq;
  }
  for (const std::string& identity : batch.retired) tokens_.erase(identity);
  if (batch.checkpoint) {
    journal_.clear();
  } else {
    journal_.insert(journal_.end(), batch.journal.begin(), batch.journal.end());
  }
  return absl::OkStatus();
}

absl::StatusOr<Snapshot> MemoryStore::Load() {
  std::shared_lock<std::shared_mutex> lock(mu_);
  Snapshot snap;
  snap.tokens.reserve(tokens_.size());
  for (const auto& [identity, row] : tokens_) snap.tokens.push_back(row);
  snap.alerts.reserve(alerts_.size());
  for (const auto& [ts_us, id] : by_time_)
    snap.alerts.push_back(alerts_.at(id));
  for (const auto& [key, seq] : progress_) {
    snap.progress.push_back({key.first, key.second, seq});
  }
  snap.journal = journal_;
  return snap;
}

absl::StatusOr<std::vector<Alert>> MemoryStore::QueryAlerts(
    const AlertQuery& q) {
  const size_t limit = std::min(q.limit, kMaxAlertQueryLimit);
  std::vector<Alert> out;
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto start = q.before ? std::make_reverse_iterator(by_time_.lower_bound(
                              {q.before->first, q.before->second}))
                        : by_time_.rbegin();
  for (auto it = start; it != by_time_.rend() && out.size() < limit; ++it) {
    if (it->first < q.since_us) break;
    const Alert& a = alerts_.at(it->second);
    if (q.type.has_value() && a.type != *q.type) continue;
    if (!q.service.empty() && a.service != q.service) continue;
    out.push_back(a);
  }
  return out;
}

absl::StatusOr<std::optional<TokenRow>> MemoryStore::GetToken(
    const std::string& identity) {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = tokens_.find(identity);
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

}  // namespace tokenwatch::collector
