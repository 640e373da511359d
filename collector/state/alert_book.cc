#include "collector/state/alert_book.h"

#include <openssl/rand.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"

namespace tokenwatch::collector {
namespace {

// (type, identity, service) as one string: the type's byte, the
// identity's length, then both names, so no two triples share a key.
std::string Key(AlertType type, const std::string& identity,
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

}  // namespace

void AlertBook::Restore(const Alert& a) {
  const bool added =
      alerts_
          .insert_or_assign(Key(a.type, a.identity, a.service),
                            Entry{a.id, a.count, a.last_ts_us, false})
          .second;
  if (added) ++per_identity_[a.identity];
}

bool AlertBook::Record(const Finding& f, const std::string& identity,
                       const std::string& agent, const v1::UsageEvent& e) {
  std::string key = Key(f.type, identity, e.service());
  auto it = alerts_.find(key);
  if (it != alerts_.end()) {
    Entry& entry = it->second;
    entry.count += e.count();
    entry.last_ts_us = std::max(entry.last_ts_us, e.last_ts_us());
    if (!entry.dirty) {
      entry.dirty = true;
      dirty_keys_.push_back(std::move(key));
    }
    return false;
  }
  uint32_t& n = per_identity_[identity];
  if (n >= max_per_identity_) {
    ++over_cap_;  // one token at 100,000 services: 100,000 alerts before
    return false;
  }
  ++n;
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
  a.accepted = UseAccepted(e);
  a.protocol = e.protocol();
  if (e.has_grpc_status()) a.grpc_status = e.grpc_status();
  a.detail = f.detail;
  alerts_[std::move(key)] = {a.id, a.count, a.last_ts_us, false};
  raised_.push_back(std::move(a));
  return true;
}

void AlertBook::TakeChanges(std::vector<Alert>* raised,
                            std::vector<Alert>* repeated) {
  // New alerts carry their latest counters; repeats of them since they
  // were raised need no separate update.
  absl::flat_hash_set<std::string> new_ids;
  for (Alert& a : raised_) {
    const Entry& entry = alerts_[Key(a.type, a.identity, a.service)];
    a.count = entry.count;
    a.last_ts_us = entry.last_ts_us;
    new_ids.insert(a.id);
  }
  *raised = std::move(raised_);
  raised_.clear();
  for (const std::string& key : dirty_keys_) {
    Entry& entry = alerts_[key];
    entry.dirty = false;
    if (new_ids.contains(entry.id)) continue;
    Alert a;
    a.id = entry.id;
    a.count = entry.count;
    a.last_ts_us = entry.last_ts_us;
    repeated->push_back(std::move(a));
  }
  dirty_keys_.clear();
}

std::string AlertBook::NewAlertId(int64_t ts_us) {
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

}  // namespace tokenwatch::collector
