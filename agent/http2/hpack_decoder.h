// HPACK decoding (RFC 7541) for one direction of an HTTP/2 connection, with
// libnghttp2's inflater doing every decode (Huffman, static and dynamic
// tables). What this class adds is a passive observer's problem: the
// dynamic table may hold entries created before the agent was watching (a
// connection picked up mid-way, a block lost to a gap). A field that refers
// to such an entry is never guessed: it is skipped and counted, and the
// rest of the block (and later blocks) still decode.
//
// How: each block is first walked at the representation level (prefix
// integers and string lengths only, RFC 7541 section 6). Indices are
// relative to the newest entry, so the inflater's table, holding only the
// entries inserted while watching, numbers them exactly as the encoder's
// does; an index beyond it is from before. A representation that refers to
// such an index is not given to nghttp2; when it is a literal with
// incremental indexing, a placeholder entry (a name no peer sends, encoded
// here as a literal) takes its slot so later indices stay aligned, and a
// reference to a placeholder is unknown too. Entries the inflater evicts
// earlier than the encoder only make more references unknown, never wrong.
//
// Decode once, remember it: a literal that names its field by a static
// index or a literal decodes to the same field whatever the table holds,
// so its decode by nghttp2 is kept, keyed by its encoded bytes. The same
// bytes again, when the literal changes no table (without indexing or
// never indexed, RFC 7541 6.2.2-6.2.3: a client's bearer token on every
// request, which encoders never index), skip the inflater; when it is an
// insert (nginx sends its response fields so every time), nghttp2 still
// makes the insert, from the field spelled without Huffman coding. Blocks
// are fed to nghttp2 around such fields, in order, so its table sees every
// insertion; an indexed field with nothing waiting before it is read from
// nghttp2's table.
#ifndef TOKENWATCH_AGENT_HTTP2_HPACK_DECODER_H_
#define TOKENWATCH_AGENT_HTTP2_HPACK_DECODER_H_

#include <nghttp2/nghttp2.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/analyzer/transaction.h"
#include "agent/stats.h"

namespace tokenwatch::http2 {

// Decoded fields of one block. Storage is reused from block to block.
class HeaderList {
 public:
  void Clear() {
    used_ = 0;
    spans_.clear();
    bytes_ = 0;
    truncated_ = false;
  }
  // False (and nothing kept) once the list would exceed `max_bytes`
  // (RFC 9113's SETTINGS_MAX_HEADER_LIST_SIZE measure: name + value + 32).
  bool Add(std::string_view name, std::string_view value, size_t max_bytes);
  size_t size() const { return spans_.size(); }
  std::string_view name(size_t i) const {
    return {storage_.get() + spans_[i].name, spans_[i].name_len};
  }
  std::string_view value(size_t i) const {
    return {storage_.get() + spans_[i].value, spans_[i].value_len};
  }
  bool truncated() const { return truncated_; }
  size_t capacity_bytes() const {
    return capacity_ + spans_.capacity() * sizeof(Span);
  }
  // Gives back the memory of an unusually large list.
  void Shrink(size_t keep_bytes);

 private:
  struct Span {
    uint32_t name, name_len, value, value_len;
  };
  // Names and values back to back. A plain buffer, not a std::string:
  // appending is one memcpy, without the bookkeeping of append().
  std::unique_ptr<char[]> storage_;
  size_t used_ = 0, capacity_ = 0;
  std::vector<Span> spans_;
  size_t bytes_ = 0;
  bool truncated_ = false;
};

class HpackDecoder {
 public:
  struct Limits {
    // The largest dynamic table this decoder keeps, whatever SETTINGS or a
    // size update ask for (HPACK table-size abuse); the excess is counted.
    size_t max_table_bytes = 64 * 1024;
    // Decoded fields kept per block; the rest are decoded (the table must
    // follow) but dropped, and counted.
    size_t max_list_bytes = 64 * 1024;
  };
  struct Result {
    uint32_t unknown = 0;  // fields skipped: they refer to unseen entries
    bool error = false;    // undecodable: the inflater was restarted
  };

  HpackDecoder(Limits limits, AgentStats* stats);
  ~HpackDecoder();
  HpackDecoder(const HpackDecoder&) = delete;
  HpackDecoder& operator=(const HpackDecoder&) = delete;

  // Decodes one complete header block into `out` (cleared first).
  Result Decode(const uint8_t* block, size_t len, HeaderList* out);
  // SETTINGS_HEADER_TABLE_SIZE the peer's decoder announced (and this
  // encoder acknowledged): at most the cap is honoured.
  void SetSettingsTableSize(uint32_t bytes);
  // Forgets the table: a block was lost (a gap, a block over the bound),
  // so every entry before this point becomes unknown, as at a pickup.
  void Reset();

  // Heap held by nghttp2 for this decoder (its own allocator's count),
  // with the freed blocks kept for reuse (at most kPoolMaxBytes).
  size_t allocated_bytes() const { return allocated_ + pooled_; }
  // Heap held by the remembered literals: kMemoSlots entries of at most
  // kMemoMaxRepBytes encoded bytes, each with its decoded name and value
  // (Huffman codes are 5 bits or more: at most 8/5 as long) and, for an
  // insert, the same again spelled plain; a slot's buffers, reused, stay
  // under twice that.
  size_t memo_bytes() const;
  uint64_t memo_hits() const { return memo_hits_; }
  size_t dynamic_entries() const;

 private:
  enum class Kind : uint8_t {
    kIndexed,
    kLiteralIndexed,  // literal with incremental indexing: adds an entry
    kLiteral,         // without indexing, or never indexed
    kSizeUpdate,
  };
  struct Rep {
    Kind kind;
    uint32_t index;       // name or field index; 0: a literal name follows
    uint32_t offset;      // in the block
    uint32_t len;         // of the whole representation
    uint32_t value_at;    // kLiteralIndexed/kLiteral: the value string
    uint64_t size_value;  // kSizeUpdate
  };
  struct MemoEntry {
    std::string rep;  // the representation's bytes, as encoded
    std::string name, value;
    std::string plain;  // an insert: the same, spelled without Huffman
    bool used = false;  // hit since the replacement hand last passed
  };
  bool Scan(const uint8_t* block, size_t len);
  bool IsUnknown(uint32_t index) const;
  bool Feed(const uint8_t* in, size_t len, bool final, HeaderList* out,
            Result* r);
  // The fast path: every reference resolves. Remembered literals are taken
  // from the memo (`use_memo`), the rest is fed to nghttp2 in runs.
  void DecodeKnown(const uint8_t* block, size_t len, bool use_memo,
                   HeaderList* out, Result* r);
  // A literal whose decode may be remembered (see the class comment).
  bool Memoizable(const Rep& rep) const;
  MemoEntry* FindMemo(const uint8_t* rep, size_t len);
  void Remember(const Rep& r, const uint8_t* rep, size_t len,
                std::string_view name, std::string_view value);
  bool InsertPlaceholder(const uint8_t* value_string, size_t len, Result* r);
  void Fail(Result* r);
  void NewInflater();

  // nghttp2's allocations, counted. Small blocks freed go to per-size free
  // lists (kPoolGrain classes up to kPoolMaxBlock, kPoolMaxBytes in all)
  // rather than back to malloc: every table insert is two allocations.
  static size_t BlockBytes(size_t size);
  void DrainPool();
  static void* Malloc(size_t size, void* self);
  static void Free(void* ptr, void* self);
  static void* Calloc(size_t n, size_t size, void* self);
  static void* Realloc(void* ptr, size_t size, void* self);

  Limits limits_;
  AgentStats* stats_;
  nghttp2_mem mem_;
  size_t allocated_ = 0;
  struct PoolBlock {
    PoolBlock* next;
  };
  static constexpr size_t kPoolGrain = 32;
  static constexpr size_t kPoolMaxBlock = 256;
  static constexpr size_t kPoolMaxBytes = 2048;
  std::array<PoolBlock*, kPoolMaxBlock / kPoolGrain> pool_{};
  size_t pooled_ = 0;  // bytes in pool_, headers included
  nghttp2_hd_inflater* inflater_ = nullptr;
  size_t settings_table_bytes_ = 4096;  // RFC 9113's initial value
  std::vector<Rep> reps_;               // scratch: the block's representations
  std::string synth_;                   // scratch: encoded placeholder/update
  // False from a table-size change (SETTINGS, a new inflater) until a block
  // went to nghttp2 whole: until then nghttp2 may expect a size update
  // first (RFC 7541 4.2), and no block bypasses it.
  bool table_settled_ = false;
  static constexpr size_t kMemoSlots = 4;
  static constexpr size_t kMemoMinRepBytes = 4;
  static constexpr size_t kMemoMaxRepBytes = 2048;
  std::vector<MemoEntry> memo_;
  size_t memo_hand_ = 0;  // the next slot the replacement looks at
  uint64_t memo_hits_ = 0;
  struct Learned {
    uint32_t rep;  // in reps_
    size_t field;  // in the block's HeaderList
  };
  std::vector<Learned> learned_;  // scratch: decodes to remember
  struct PlainInsert {
    size_t rep;  // a remembered literal with incremental indexing
    const MemoEntry* memo;
  };
  std::vector<PlainInsert> plain_;  // scratch: the current run's
};

// The name placeholder entries carry: a control byte, which RFC 9113 8.2.1
// forbids in a field name, so no peer's field is ever taken for one.
inline constexpr std::string_view kPlaceholderName = "\x01tokenwatch-unknown";

}  // namespace tokenwatch::http2

#endif  // TOKENWATCH_AGENT_HTTP2_HPACK_DECODER_H_
