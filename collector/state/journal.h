// The journal record of one applied batch: between checkpoints a commit
// stores, per batch, only what replaying it into the token table needs,
// instead of the batch as received (docs/delivery.md):
//
//   0x00 0x01                    marker and version
//   varint n, n x (varint len, bytes)     the record's strings: iss,
//                                         services, clients
//   varint m, m x use:
//     varint flags                bit 0: the token's claims follow in
//                                 full (a TokenInfo); bit 1: the token is
//                                 named by its fingerprint; bit 2 (with
//                                 bit 0): the token was created by this use
//                                 (a same-named one before it had been
//                                 retired)
//     claims:   varint len, TokenInfo bytes
//     fp:       16 bytes
//     else:     varint iss (string index), varint len, jti bytes
//     zigzag varint ts_us - previous use's ts_us (0 before the first)
//     zigzag varint last_ts_us - ts_us
//     varint count, varint status, varint service, varint client (string
//     indexes)
//
// A use carries the token's claims when they were read from that event
// (the token was created, or came with a new fingerprint) and at the
// token's first use after a checkpoint; otherwise it names a token that an
// earlier use in the journal has given replay, so replay never depends on
// a stored row (two tokens can share one: the identity "iss|jti" is not
// injective). About 25 bytes per use instead of the 200 or so of the event
// as received.
#ifndef TOKENWATCH_COLLECTOR_STATE_JOURNAL_H_
#define TOKENWATCH_COLLECTOR_STATE_JOURNAL_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "collector/state/token_table.h"
#include "tokenwatch/v1/event.pb.h"

namespace tokenwatch::collector {

class JournalWriter {
 public:
  // Starts a record.
  void Begin();
  // One use, after TokenTable::Upsert and RecordUse: `s` is the token's
  // state, `created` and `claims_read` what Upsert said, `service` and
  // `client` the table's interned ids. Sets s.claims_journaled.
  void Add(const v1::UsageEvent& use, TokenState& s, bool created,
           bool claims_read, uint32_t service, uint32_t client,
           const Interner& strings);
  // The record; empty when no use was added.
  std::string Finish();

 private:
  uint32_t StringIndex(uint32_t id, const Interner& strings);
  std::string strings_, uses_, scratch_;
  uint32_t n_strings_ = 0, n_uses_ = 0;
  int64_t prev_ts_ = 0;
  // Interned id -> index in this record, valid where stamp == record_.
  std::vector<uint32_t> index_of_, stamp_of_;
  uint32_t record_ = 0;
};

// One use read back. `claims` is set when the record carries them;
// otherwise `by_fp` says whether `fp` or (`iss`, `jti`) names the token.
struct JournalUse {
  const v1::TokenInfo* claims = nullptr;
  bool created = false;  // with claims: start the token afresh
  bool by_fp = false;
  std::array<uint8_t, 16> fp{};
  std::string_view iss, jti;
  v1::UsageEvent use;  // ts_us, last_ts_us, count, status, service, client
};

// Calls `fn` for every use of a record, in order. A malformed record is a
// DataLoss error, before any use of it is passed on.
absl::Status ReadJournalRecord(
    std::string_view record,
    const std::function<absl::Status(const JournalUse&)>& fn);

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_STATE_JOURNAL_H_
