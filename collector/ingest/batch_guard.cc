#include "collector/ingest/batch_guard.h"

#include <algorithm>
#include <string>
#include <vector>

namespace tokenwatch::collector {
namespace {

struct Cutter {
  size_t max;
  uint64_t cut = 0;

  void operator()(std::string* s) {
    if (s->size() <= max) return;
    size_t n = max;
    // Never split a UTF-8 sequence: back up over continuation bytes.
    while (n > 0 && (static_cast<unsigned char>((*s)[n]) & 0xC0) == 0x80) --n;
    s->resize(n);
    ++cut;
  }
  void operator()(google::protobuf::RepeatedPtrField<std::string>* list) {
    if (list->size() > kMaxListEntries) {
      list->DeleteSubrange(kMaxListEntries, list->size() - kMaxListEntries);
      ++cut;
    }
    for (std::string& s : *list) (*this)(&s);
  }
};

}  // namespace

uint64_t GuardBatch(v1::EventBatch* batch, const std::string& agent,
                    size_t max_bytes) {
  Cutter cut{max_bytes};
  for (v1::UsageEvent& e : *batch->mutable_events()) {
    if (e.agent() != agent) e.set_agent(agent);
    for (std::string* s :
         {e.mutable_service(), e.mutable_method(), e.mutable_path(),
          e.mutable_client(), e.mutable_server(), e.mutable_param(),
          e.mutable_protocol(), e.mutable_source()})
      cut(s);
    cut(e.mutable_findings());
    auto* details = e.mutable_finding_details();
    if (details->size() > kMaxListEntries ||
        std::any_of(details->begin(), details->end(), [&](const auto& kv) {
          return kv.first.size() > max_bytes || kv.second.size() > max_bytes;
        })) {
      // Map keys cannot change in place: rebuild the first entries.
      std::vector<std::pair<std::string, std::string>> kept;
      for (const auto& [k, v] : *details) {
        if (kept.size() == kMaxListEntries) break;
        kept.emplace_back(k, v);
      }
      details->clear();
      for (auto& [k, v] : kept) {
        cut(&k);
        cut(&v);
        (*details)[k] = std::move(v);
      }
      ++cut.cut;
    }
    v1::TokenInfo* t = e.mutable_token();
    for (std::string* s :
         {t->mutable_fp(), t->mutable_iss(), t->mutable_sub(), t->mutable_jti(),
          t->mutable_client_id(), t->mutable_alg(), t->mutable_kid(),
          t->mutable_typ(), t->mutable_jku(), t->mutable_x5u()})
      cut(s);
    cut(t->mutable_aud());
    cut(t->mutable_scopes());
    cut(t->mutable_crit());
  }
  return cut.cut;
}

}  // namespace tokenwatch::collector
