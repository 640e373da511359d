#include "collector/engine.h"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace tokenwatch::collector {
namespace {

std::string ProgressKey(const std::string& agent, uint64_t boot) {
  return absl::StrCat(agent, "|", boot);
}

// (type, identity, service) as one string: the type's byte, the
// identity's length, then both names, so no two triples share a key.
std::string AlertKey(AlertType type, const std::string& identity,
                     const std::string& service) {
  std::string key;
  key.reserve(1 + 4 + identity.size() + service.size());
  key.push_back(static_cast<char>(type));
  uint32_t n = static_cast<uint32_t>(identity.size());
  key.append(reinterpret_cast<const char*>(&n), sizeof n);
  key.append(identity);
  key.append(service);
  return key;
}

// Finds or adds `key` without building a std::string when it is there.
template <typename Map>
typename Map::mapped_type& Slot(Map& map, const std::string& key) {
  auto it = map.find(absl::string_view(key.data(), key.size()));
  if (it == map.end()) it = map.try_emplace(key).first;
  return it->second;
}

constexpr int64_t kRetireEveryUs =
    60'000'000;  // sweep once a minute of traffic

}  // namespace

Engine::Engine(const config::Config& config, Store* store,
               std::function<void(const Alert&)> on_alert,
               RevocationList* revocations)
    : config_(config),
      store_(store),
      on_alert_(std::move(on_alert)),
      revocations_(revocations),
      detectors_(MakeDetectors(config, revocations)),
      tokens_(std::max<size_t>(8, config.detections.multi_source.min_sources)),
      multi_source_window_us_(
          absl::ToInt64Microseconds(config.detections.multi_source.window)),
      retention_us_(
          absl::ToInt64Microseconds(config.collector.token_retention)) {}

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
  ++stats_.config_reloads_ok;
}

absl::Status Engine::Restore() {
  absl::StatusOr<Snapshot> snap = store_->Load();
  if (!snap.ok()) return snap.status();
  for (const TokenRow& row : snap->tokens) {
    tokens_.Restore(row);
    now_us_ = std::max(now_us_, row.last_seen_us);
  }
  for (const Alert& a : snap->alerts) {
    alerts_[AlertKey(a.type, a.identity, a.service)] = {a.id, a.count,
                                                        a.last_ts_us, false};
  }
  for (const AgentProgress& p : snap->progress) {
    applied_[ProgressKey(p.agent_id, p.boot_id)] = p;
    prepared_[ProgressKey(p.agent_id, p.boot_id)] = p;
    committed_[ProgressKey(p.agent_id, p.boot_id)] = p;
  }
  // Batches stored after the last checkpoint: their alerts and progress are
  // already in the store, their effect on tokens is not.
  v1::EventBatch batch;
  for (const JournalEntry& j : snap->journal) {
    journal_bytes_ += j.batch.size();
    if (IsJournalRecord(j.batch)) {
      absl::Status s = ReadJournalRecord(
          j.batch, [this](const JournalUse& u) { return ReplayUse(u); });
      if (!s.ok()) {
        return absl::DataLossError(
            absl::StrCat("store journal: a batch of agent \"", j.agent_id,
                         "\": ", s.message()));
      }
      continue;
    }
    // A batch as received, journaled by an earlier version.
    if (!batch.ParseFromString(j.batch)) {
      return absl::DataLossError(
          absl::StrCat("store journal: a batch of agent \"", j.agent_id,
                       "\" cannot be parsed (the store file is corrupt)"));
    }
    for (const v1::UsageEvent& e : batch.events()) ReplayEvent(e);
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

void Engine::ReplayEvent(const v1::UsageEvent& e) {
  now_us_ = std::max(now_us_, std::max(e.ts_us(), e.last_ts_us()));
  bool created = false;
  TokenTable::Ref ref;
  TokenState& s = tokens_.Upsert(e.token(), &created, &ref);
  tokens_.RecordUse(s, e);
  dirty_tokens_.insert(ref);
}

std::optional<TokenRow> Engine::GetToken(const std::string& identity) const {
  const TokenState* s = tokens_.Find(identity);
  if (s == nullptr) return std::nullopt;
  return tokens_.ToRow(*s);
}

uint64_t Engine::StoredThrough(const std::string& agent, uint64_t boot) const {
  auto it = committed_.find(ProgressKey(agent, boot));
  return it == committed_.end() ? 0 : it->second.seq;
}

bool Engine::Apply(const std::string& agent, uint64_t boot,
                   const v1::EventBatch& batch) {
  AgentProgress& p = applied_[ProgressKey(agent, boot)];
  if (batch.seq() <= p.seq) {
    ++stats_.duplicate_batches;
    return false;
  }
  p.agent_id = agent;
  p.boot_id = boot;
  p.seq = batch.seq();
  ++stats_.batches;
  stats_.events_by_agent[agent] += batch.events_size();
  ++stats_.batches_by_agent[agent];
  journal_writer_.Begin();
  for (const v1::UsageEvent& e : batch.events()) ApplyEvent(agent, e);
  std::string record = journal_writer_.Finish();
  if (!record.empty()) {
    journal_bytes_ += record.size();
    journal_.push_back({agent, boot, std::move(record)});
  }
  pending_dirty_ = true;
  if (now_us_ - last_retire_us_ >= kRetireEveryUs) RetireTokens(now_us_);
  if (revocations_ != nullptr)
    revocations_->MaybeReload().IgnoreError();  // a stat per batch
  return true;
}

void Engine::ApplyEvent(const std::string& agent, const v1::UsageEvent& e) {
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
      std::string_view name = d->name();
      stats_.detector_seconds[std::string(name)] +=
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
    if (f.type == AlertType::kExpiredUse) {
      int accepted = e.status() == 0 ? 0 : e.status() < 400 ? 1 : 2;
      Slot(stats_.expired_uses, e.service())[accepted] += e.count();
    }
    Raise(f, identity, agent, e);
  }
  uint32_t st = e.status();
  Slot(stats_.uses_by_service,
       e.service())[st >= 100 && st <= 599 ? st / 100 : 0] += e.count();

  uint32_t service_id = tokens_.Intern(e.service());
  uint32_t client_id = tokens_.Intern(e.client());
  tokens_.RecordUse(s, e, service_id, client_id);
  journal_writer_.Add(e, s, created, claims_read, service_id, client_id,
                      tokens_.strings());
  dirty_tokens_.insert(ref);
}

std::string Engine::NewAlertId(int64_t ts_us) {
  // UUIDv7 layout: 48-bit ms timestamp, version 7, then random bits (with
  // a counter mixed in so ids from one process never collide).
  uint8_t b[16];
  uint64_t ms = static_cast<uint64_t>(ts_us / 1000);
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  RAND_bytes(b + 6, 10);
  uint64_t c = ++id_counter_;
  b[6] = static_cast<uint8_t>(0x70 | (b[6] & 0x0f));
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));
  b[14] ^= static_cast<uint8_t>(c >> 8);
  b[15] ^= static_cast<uint8_t>(c);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0xf]);
  }
  return out;
}

void Engine::Raise(const Finding& f, const std::string& identity,
                   const std::string& agent, const v1::UsageEvent& e) {
  std::string key = AlertKey(f.type, identity, e.service());
  // Every alerting use counts in the metric (alerts over time); only the
  // first one of a (type, identity, service) is a new alert record.
  Slot(stats_.alerts_by_service, e.service())[static_cast<size_t>(
      f.type)][static_cast<size_t>(f.severity)] += e.count();
  auto it = alerts_.find(key);
  if (it != alerts_.end()) {
    AlertKeyInfo& info = it->second;
    info.count += e.count();
    info.last_ts_us = std::max(info.last_ts_us, e.last_ts_us());
    if (!info.dirty) {
      info.dirty = true;
      dirty_alert_keys_.push_back(key);
    }
    ++stats_.alerts_repeated;
    return;
  }
  Alert a;
  a.id = NewAlertId(e.ts_us());
  a.type = f.type;
  a.severity = f.severity;
  a.ts_us = e.ts_us();
  a.last_ts_us = e.last_ts_us();
  a.count = e.count();
  a.identity = identity;
  a.token = e.token();
  a.service = e.service();
  a.method = e.method();
  a.path = e.path();
  a.client = e.client();
  a.agent = agent;
  a.status = e.status();
  if (e.status() != 0) a.accepted = e.status() < 400;
  a.detail = f.detail;
  alerts_[key] = {a.id, a.count, a.last_ts_us, false};
  new_alerts_.push_back(std::move(a));
  ++stats_.alerts_raised;
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
  if (auto p = Prepare(checkpoint)) unstored_.push_back(std::move(p));
  while (!unstored_.empty()) {
    PreparedCommit& p = *unstored_.front();
    auto t0 = std::chrono::steady_clock::now();
    absl::Status s = store_->Commit(p.batch);
    Finished(
        p, s,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count());
    if (!s.ok()) return s;  // retried first at the next call
    unstored_.pop_front();
  }
  return absl::OkStatus();
}

std::unique_ptr<Engine::PreparedCommit> Engine::Prepare(bool checkpoint) {
  bool tokens_changed = !dirty_tokens_.empty() || !retired_.empty();
  if (!pending_dirty_ && !(checkpoint && tokens_changed)) return nullptr;
  auto p = std::make_unique<PreparedCommit>();
  CommitBatch& batch = p->batch;
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
    // The batches journaled since the last checkpoint are in these rows:
    // the checkpoint empties the journal table.
    dirty_tokens_.clear();
    retired_.clear();
    journal_bytes_ = 0;
    journal_.clear();
  } else {
    batch.journal = std::move(journal_);
    journal_.clear();
  }
  // New alerts carry their latest counters; repeats of them in the same
  // commit need no separate update.
  absl::flat_hash_map<std::string, bool> new_ids;
  for (Alert& a : new_alerts_) {
    const AlertKeyInfo& info = alerts_[AlertKey(a.type, a.identity, a.service)];
    a.count = info.count;
    a.last_ts_us = info.last_ts_us;
    new_ids[a.id] = true;
  }
  batch.new_alerts = std::move(new_alerts_);
  new_alerts_.clear();
  for (const std::string& key : dirty_alert_keys_) {
    AlertKeyInfo& info = alerts_[key];
    info.dirty = false;
    if (new_ids.contains(info.id)) continue;
    Alert a;
    a.id = info.id;
    a.count = info.count;
    a.last_ts_us = info.last_ts_us;
    batch.repeated_alerts.push_back(std::move(a));
  }
  dirty_alert_keys_.clear();
  for (const auto& [key, progress] : applied_) {
    AgentProgress& was = prepared_[key];
    if (was.seq != progress.seq) {
      batch.progress.push_back(progress);
      was = progress;
    }
  }
  pending_dirty_ = false;
  return p;
}

void Engine::Finished(const PreparedCommit& p, const absl::Status& status,
                      double secs) {
  stats_.commit_seconds_sum += secs;
  for (size_t i = 0; i < stats_.commit_buckets.size(); ++i) {
    if (secs <= EngineStats::kCommitBounds[i]) ++stats_.commit_buckets[i];
  }
  if (!status.ok()) {
    ++stats_.commit_failures;
    return;
  }
  ++stats_.commits;
  for (const AgentProgress& progress : p.batch.progress) {
    committed_[ProgressKey(progress.agent_id, progress.boot_id)] = progress;
  }
  if (on_alert_) {
    for (const Alert& a : p.batch.new_alerts) on_alert_(a);
  }
}

}  // namespace tokenwatch::collector
