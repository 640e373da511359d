#include "collector/engine.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace tokenwatch::collector {
namespace {

constexpr int64_t kRetireEveryUs =
    60'000'000;  // sweep once a minute of traffic

// Finds or adds `key` without building a std::string when it is there.
template <typename Map>
typename Map::mapped_type& Slot(Map& map, std::string_view key) {
  absl::string_view k(key.data(), key.size());
  auto it = map.find(k);
  if (it == map.end()) it = map.try_emplace(std::string(key)).first;
  return it->second;
}

}  // namespace

Engine::Engine(const config::Config& config, Store* store,
               std::function<void(const Alert&)> on_alert,
               RevocationList* revocations)
    : store_(store),
      on_alert_(std::move(on_alert)),
      revocations_(revocations),
      detectors_(MakeDetectors(config, revocations)),
      multi_source_window_us_(
          absl::ToInt64Microseconds(config.detections.multi_source.window)),
      retention_us_(
          absl::ToInt64Microseconds(config.collector.token_retention)),
      tokens_(std::max<size_t>(config.collector.limits.max_clients_per_token,
                               config.detections.multi_source.min_sources),
              config.collector.limits.max_services_per_token) {
  wall_clock_ = [] { return absl::ToUnixMicros(absl::Now()); };
  TakeLimits(config);
  alerts_.set_max_per_identity(config.collector.limits.max_alerts_per_token);
}

void Engine::TakeLimits(const config::Config& config) {
  max_skew_us_ = absl::ToInt64Microseconds(config.collector.max_clock_skew);
  max_tokens_ = config.collector.limits.max_tokens;
  service_labels_.clear();
  for (const config::Service& svc : config.services)
    service_labels_.insert(svc.name);
}

const std::string& Engine::ServiceLabel(const std::string& service) const {
  static const std::string kOther = "other";
  return service_labels_.contains(service) ? service : kOther;
}

const std::string& Engine::AgentLabel(const std::string& agent) {
  // Agent names are not configured: the first ones seen keep their label.
  constexpr size_t kMaxAgentLabels = 256;
  static const std::string kOther = "other";
  if (agent_labels_.contains(agent)) return agent;
  if (agent_labels_.size() >= kMaxAgentLabels) return kOther;
  agent_labels_.insert(agent);
  return agent;
}

int64_t Engine::BoundedNow() const {
  return std::min(now_us_, SaturatingAdd(wall_clock_(), max_skew_us_));
}

void Engine::Reconfigure(const config::Config& config) {
  // The new detectors refer to the new copy; the old copy goes only after
  // the old detectors that refer to it.
  auto next = std::make_unique<const config::Config>(config);
  std::vector<std::unique_ptr<Detector>> detectors =
      MakeDetectors(*next, revocations_);
  detectors_.swap(detectors);
  detectors.clear();
  reloaded_config_.swap(next);
  multi_source_window_us_ =
      absl::ToInt64Microseconds(config.detections.multi_source.window);
  retention_us_ = absl::ToInt64Microseconds(config.collector.token_retention);
  TakeLimits(config);
  ++stats_.config_reloads_ok;
}

absl::Status Engine::Restore() {
  absl::StatusOr<Snapshot> snap = store_->Load();
  if (!snap.ok()) return snap.status();
  for (const TokenRow& row : snap->tokens) {
    tokens_.Restore(row);
    now_us_ = std::max(now_us_, row.last_seen_us);
  }
  for (const Alert& a : snap->alerts) alerts_.Restore(a);
  for (const AgentProgress& p : snap->progress) commit_log_.Restore(p);
  // A store written before event times were bounded may hold one far in
  // the future: it must not retire every token at each start.
  now_us_ = BoundedNow();
  // Batches stored after the last checkpoint: their alerts and progress are
  // already in the store, their effect on tokens is not.
  for (const JournalEntry& j : snap->journal) {
    commit_log_.CountStoredJournal(j.batch.size());
    absl::Status s = ReadJournalRecord(
        j.batch, [this](const JournalUse& u) { return ReplayUse(u); });
    if (!s.ok()) {
      return absl::DataLossError(
          absl::StrCat("store journal: a batch of agent \"", j.agent_id,
                       "\": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status Engine::ReplayUse(const JournalUse& u) {
  const v1::UsageEvent& e = u.use;
  now_us_ = std::max(now_us_, std::max(e.ts_us(), e.last_ts_us()));
  TokenTable::Ref ref;
  if (u.claims != nullptr) {
    bool created = false;
    if (u.created) {
      // Live, this use started the token afresh (an earlier one of the
      // same name had been retired): so does replay.
      if (std::optional<TokenTable::Ref> old = tokens_.FindToken(*u.claims)) {
        dirty_tokens_.erase(*old);
        tokens_.Erase(*old);
      }
    }
    tokens_.Upsert(*u.claims, &created, &ref);
  } else {
    std::optional<TokenTable::Ref> found =
        u.by_fp ? tokens_.FindFp(u.fp) : tokens_.FindJwt(u.iss, u.jti);
    if (!found) {
      return absl::DataLossError(
          "journal record: a use of a token neither stored nor journaled "
          "before it (the store file is corrupt)");
    }
    ref = *found;
  }
  tokens_.RecordUse(tokens_.At(ref), e);
  dirty_tokens_.insert(ref);
  return absl::OkStatus();
}

std::optional<TokenRow> Engine::GetToken(const std::string& identity) const {
  const TokenState* s = tokens_.Find(identity);
  if (s == nullptr) return std::nullopt;
  return tokens_.ToRow(*s);
}

bool Engine::Apply(const std::string& agent, uint64_t boot,
                   const v1::EventBatch& batch, bool* gap) {
  bool out_of_order = false;
  if (!commit_log_.Apply(agent, boot, batch.seq(), &out_of_order)) {
    ++(out_of_order ? stats_.batches_out_of_order : stats_.duplicate_batches);
    if (gap != nullptr) *gap = out_of_order;
    return false;
  }
  if (gap != nullptr) *gap = false;
  ++stats_.batches;
  const std::string& agent_label = AgentLabel(agent);
  ++stats_.batches_by_agent[agent_label];
  batch_wall_us_ = wall_clock_();
  journal_writer_.Begin();
  const uint64_t events_before = stats_.events;  // refused ones do not count
  for (const v1::UsageEvent& e : batch.events()) ApplyEvent(agent, e);
  stats_.events_by_agent[agent_label] += stats_.events - events_before;
  std::string record = journal_writer_.Finish();
  if (!record.empty()) commit_log_.Journal(agent, boot, std::move(record));
  pending_dirty_ = true;
  if (const int64_t now = BoundedNow(); now - last_retire_us_ >= kRetireEveryUs)
    RetireTokens(now);
  if (revocations_ != nullptr)
    revocations_->MaybeReload().IgnoreError();  // a stat per batch
  return true;
}

void Engine::ApplyEvent(const std::string& agent, const v1::UsageEvent& e) {
  // The sender's clock must not drive the collector's: one event at
  // INT64_MAX retired every tracked token (issue 12, item 2).
  if (e.ts_us() < 0 || e.last_ts_us() < 0 ||
      (e.last_ts_us() != 0 && e.last_ts_us() < e.ts_us())) {
    ++stats_.events_refused_bad_time;
    return;
  }
  if (std::max(e.ts_us(), e.last_ts_us()) >
      SaturatingAdd(batch_wall_us_, max_skew_us_)) {
    ++stats_.events_refused_future;
    return;
  }
  ++stats_.events;
  stats_.uses += e.count();
  now_us_ = std::max(now_us_, std::max(e.ts_us(), e.last_ts_us()));
  bool created = false, claims_read = false;
  TokenTable::Ref ref;
  TokenState& s = tokens_.Upsert(e.token(), &created, &ref, &claims_read);
  if (created && !retired_.empty()) retired_.erase(tokens_.Identity(s));

  TokenHistory& history = history_;
  history.token = &e.token();
  history.services.clear();
  if (!created) tokens_.ServiceNames(s, &history.services);
  history.recent_sources =
      created ? 1
              : tokens_.RecentSources(s, e.client(),
                                      e.ts_us() - multi_source_window_us_);
  findings_.clear();
  if ((++sample_ & 63) == 0) {
    // Detector time, sampled: a clock read per detector per event would
    // cost more than most detectors.
    for (const auto& d : detectors_) {
      auto t0 = std::chrono::steady_clock::now();
      d->Check(history, e, &findings_);
      Slot(stats_.detector_seconds, d->name()) +=
          64 *
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
    }
  } else {
    for (const auto& d : detectors_) d->Check(history, e, &findings_);
  }
  std::string& identity = identity_buf_;
  if (!findings_.empty()) identity = tokens_.Identity(s);
  for (const Finding& f : findings_) {
    CountFinding(f, e);
    const uint64_t over_cap = alerts_.over_cap();
    if (alerts_.Record(f, identity, agent, e)) {
      ++stats_.alerts_raised;
    } else if (alerts_.over_cap() == over_cap) {
      ++stats_.alerts_repeated;
    } else {
      ++stats_.alerts_over_cap;
    }
  }
  uint32_t st = e.status();
  Slot(stats_.uses_by_service,
       ServiceLabel(e.service()))[st >= 100 && st <= 599 ? st / 100 : 0] +=
      e.count();

  uint32_t service_id = tokens_.Intern(e.service());
  uint32_t client_id = tokens_.Intern(e.client());
  tokens_.RecordUse(s, e, service_id, client_id);
  journal_writer_.Add(e, s, created, claims_read, service_id, client_id,
                      tokens_.strings());
  dirty_tokens_.insert(ref);
  stats_.services_over_cap = tokens_.services_over_cap();
  if (created && tokens_.size() > max_tokens_) EvictTokens(ref);
}

// Over limits.max_tokens: a sixteenth of the table goes at once (one scan
// per many new tokens), expired tokens first, then the least recently
// used. An evicted token leaves the store like a retired one.
void Engine::EvictTokens(TokenTable::Ref keep) {
  const int64_t now = BoundedNow();
  std::vector<std::pair<std::pair<bool, int64_t>, TokenTable::Ref>> order;
  order.reserve(tokens_.size());
  tokens_.ForEach([&](TokenTable::Ref ref, const TokenState& s) {
    if (ref == keep) return;
    const bool live = s.exp == TokenState::kNone || SecondsToUs(s.exp) >= now;
    order.push_back({{live, s.last_seen_us}, ref});
  });
  size_t n = std::min(
      order.size(),
      std::max<size_t>(1, tokens_.size() - max_tokens_ + max_tokens_ / 16));
  std::nth_element(order.begin(), order.begin() + (n - 1), order.end());
  for (size_t i = 0; i < n; ++i) {
    TokenTable::Ref ref = order[i].second;
    retired_.insert(tokens_.Identity(tokens_.At(ref)));
    dirty_tokens_.erase(ref);
    tokens_.Erase(ref);
    ++stats_.tokens_evicted;
  }
}

void Engine::CountFinding(const Finding& f, const v1::UsageEvent& e) {
  // Every alerting use counts in the metric (alerts over time); only the
  // first one of a (type, identity, service) is a new alert record.
  Slot(stats_.alerts_by_service, ServiceLabel(e.service()))[static_cast<size_t>(
      f.type)][static_cast<size_t>(f.severity)] += e.count();
  if (f.type == AlertType::kExpiredUse) {
    std::optional<bool> verdict = UseAccepted(e);
    int accepted = !verdict.has_value() ? 0 : *verdict ? 1 : 2;
    Slot(stats_.expired_uses, ServiceLabel(e.service()))[accepted] += e.count();
  }
}

void Engine::RetireTokens(int64_t now_us) {
  last_retire_us_ = now_us;
  std::vector<TokenTable::Ref> retire;
  tokens_.ForEach([&](TokenTable::Ref ref, const TokenState& s) {
    int64_t anchor =
        s.exp != TokenState::kNone ? SecondsToUs(s.exp) : s.last_seen_us;
    // A token still in use after its exp is kept while it is used.
    anchor = std::max(anchor, s.last_seen_us);
    if (SaturatingAdd(anchor, retention_us_) < now_us) retire.push_back(ref);
  });
  for (TokenTable::Ref ref : retire) {
    retired_.insert(tokens_.Identity(tokens_.At(ref)));
    dirty_tokens_.erase(ref);
    tokens_.Erase(ref);
    ++stats_.tokens_retired;
  }
}

absl::Status Engine::Commit(bool checkpoint) {
  PrepareCommit(checkpoint);
  return FinishCommits(WriteCommits());
}

void Engine::PrepareCommit(bool checkpoint) {
  bool tokens_changed = !dirty_tokens_.empty() || !retired_.empty();
  if (!pending_dirty_ && !(checkpoint && tokens_changed)) return;
  CommitBatch batch;
  batch.checkpoint = checkpoint;
  if (checkpoint) {
    batch.tokens.reserve(dirty_tokens_.size());
    for (TokenTable::Ref ref : dirty_tokens_) {
      TokenState& s = tokens_.At(ref);
      batch.tokens.push_back(tokens_.ToRow(s));
      // The journal starts afresh: a token's next use carries its claims.
      s.claims_journaled = false;
    }
    batch.retired.assign(retired_.begin(), retired_.end());
    dirty_tokens_.clear();
    retired_.clear();
  }
  commit_log_.Prepare(&batch);
  alerts_.TakeChanges(&batch.new_alerts, &batch.repeated_alerts);
  pending_dirty_ = false;
  commit_log_.Queue(std::move(batch));
}

CommitWrite Engine::WriteCommits() {
  return commit_log_.Write(store_, [this](const CommitBatch& stored) {
    if (!on_alert_) return;
    for (const Alert& a : stored.new_alerts) on_alert_(a);
  });
}

absl::Status Engine::FinishCommits(const CommitWrite& write) {
  for (double secs : write.seconds) {
    stats_.commit_seconds_sum += secs;
    for (size_t i = 0; i < stats_.commit_buckets.size(); ++i) {
      if (secs <= EngineStats::kCommitBounds[i]) ++stats_.commit_buckets[i];
    }
  }
  uint64_t attempts = write.seconds.size();
  if (!write.status.ok()) {
    ++stats_.commit_failures;
    --attempts;
  }
  stats_.commits += attempts;
  commit_log_.Written(write);
  return write.status;
}

}  // namespace tokenwatch::collector
