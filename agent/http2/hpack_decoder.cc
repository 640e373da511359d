#include "agent/http2/hpack_decoder.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/base/attributes.h"

namespace tokenwatch::http2 {
namespace {

constexpr uint32_t kStaticEntries = 61;  // RFC 7541 Appendix A
// nghttp2's initial table size (SETTINGS_HEADER_TABLE_SIZE's default).
constexpr size_t kDefaultTableBytes = 4096;

// ReadInt's continuation bytes: `v` is the full prefix.
bool ReadIntTail(const uint8_t* p, size_t len, size_t* pos, uint64_t v,
                 uint64_t* out) {
  for (int shift = 0;; shift += 7) {
    if (*pos >= len || shift > 28) return false;
    uint8_t b = p[(*pos)++];
    v += uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) break;
  }
  if (v > 0xffffffffu) return false;
  *out = v;
  return true;
}

// RFC 7541 5.1: an integer with an N-bit prefix. Values over 2^32 are no
// real index or length: rejected. Nearly every one fits its prefix: that
// case is inlined into the block walk.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool ReadInt(const uint8_t* p, size_t len,
                                                 size_t* pos, int prefix,
                                                 uint64_t* out) {
  if (*pos >= len) return false;
  uint64_t mask = (uint64_t{1} << prefix) - 1;
  uint64_t v = p[(*pos)++] & mask;
  if (v < mask) {
    *out = v;
    return true;
  }
  return ReadIntTail(p, len, pos, v, out);
}

// RFC 7541 5.2: a string literal (H bit, 7-bit prefix length, bytes).
bool SkipString(const uint8_t* p, size_t len, size_t* pos) {
  uint64_t n = 0;
  if (!ReadInt(p, len, pos, 7, &n) || n > len - *pos) return false;
  *pos += n;
  return true;
}

void PutInt(uint64_t v, int prefix, uint8_t first_bits, std::string* out) {
  uint64_t mask = (uint64_t{1} << prefix) - 1;
  if (v < mask) {
    out->push_back(static_cast<char>(first_bits | v));
    return;
  }
  out->push_back(static_cast<char>(first_bits | mask));
  v -= mask;
  while (v >= 0x80) {
    out->push_back(static_cast<char>(0x80 | (v & 0x7f)));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Allocation header: the size, so free() can count (nghttp2_mem's free
// gets no size). 16 bytes keep malloc's alignment.
constexpr size_t kAllocHeader = 16;

}  // namespace

bool HeaderList::Add(std::string_view name, std::string_view value,
                     size_t max_bytes) {
  size_t cost = name.size() + value.size() + 32;
  if (truncated_ || bytes_ + cost > max_bytes) {
    truncated_ = true;
    return false;
  }
  bytes_ += cost;
  Span s;
  size_t need = used_ + name.size() + value.size();
  if (need > capacity_) {
    size_t cap = std::max({need, 2 * capacity_, size_t{1024}});
    std::unique_ptr<char[]> grown(new char[cap]);
    if (used_ > 0) std::memcpy(grown.get(), storage_.get(), used_);
    storage_ = std::move(grown);
    capacity_ = cap;
  }
  s.name = static_cast<uint32_t>(used_);
  s.name_len = static_cast<uint32_t>(name.size());
  s.value = static_cast<uint32_t>(used_ + name.size());
  s.value_len = static_cast<uint32_t>(value.size());
  if (!name.empty())
    std::memcpy(storage_.get() + s.name, name.data(), name.size());
  if (!value.empty())
    std::memcpy(storage_.get() + s.value, value.data(), value.size());
  used_ = need;
  spans_.push_back(s);
  return true;
}

void HeaderList::Shrink(size_t keep_bytes) {
  if (capacity_ > keep_bytes) {
    storage_.reset();
    used_ = capacity_ = 0;
  }
  if (spans_.capacity() * sizeof(Span) > keep_bytes) {
    spans_.clear();
    spans_.shrink_to_fit();
  }
}

size_t HpackDecoder::BlockBytes(size_t size) {
  if (size > kPoolMaxBlock) return size;
  return std::max<size_t>(1, (size + kPoolGrain - 1) / kPoolGrain) * kPoolGrain;
}

void* HpackDecoder::Malloc(size_t size, void* self) {
  auto* d = static_cast<HpackDecoder*>(self);
  size_t block = BlockBytes(size);
  uint8_t* p = nullptr;
  if (block <= kPoolMaxBlock) {
    PoolBlock*& head = d->pool_[block / kPoolGrain - 1];
    if (head != nullptr) {
      p = reinterpret_cast<uint8_t*>(head);
      head = head->next;
      d->pooled_ -= block + kAllocHeader;
    }
  }
  if (p == nullptr) {
    p = static_cast<uint8_t*>(std::malloc(block + kAllocHeader));
    if (p == nullptr) return nullptr;
  }
  std::memcpy(p, &size, sizeof size);
  d->allocated_ += size;
  return p + kAllocHeader;
}

void HpackDecoder::Free(void* ptr, void* self) {
  if (ptr == nullptr) return;
  auto* d = static_cast<HpackDecoder*>(self);
  uint8_t* p = static_cast<uint8_t*>(ptr) - kAllocHeader;
  size_t size;
  std::memcpy(&size, p, sizeof size);
  d->allocated_ -= size;
  size_t block = BlockBytes(size);
  if (block <= kPoolMaxBlock &&
      d->pooled_ + block + kAllocHeader <= kPoolMaxBytes) {
    // Kept for the next insert: a table in steady state frees an entry
    // for every one it adds.
    auto* b = reinterpret_cast<PoolBlock*>(p);
    PoolBlock*& head = d->pool_[block / kPoolGrain - 1];
    b->next = head;
    head = b;
    d->pooled_ += block + kAllocHeader;
    return;
  }
  std::free(p);
}

void HpackDecoder::DrainPool() {
  for (PoolBlock*& head : pool_) {
    while (head != nullptr) {
      PoolBlock* next = head->next;
      std::free(head);
      head = next;
    }
  }
  pooled_ = 0;
}

void* HpackDecoder::Calloc(size_t n, size_t size, void* self) {
  if (size != 0 && n > SIZE_MAX / size) return nullptr;
  void* p = Malloc(n * size, self);
  if (p != nullptr) std::memset(p, 0, n * size);
  return p;
}

void* HpackDecoder::Realloc(void* ptr, size_t size, void* self) {
  if (ptr == nullptr) return Malloc(size, self);
  auto* d = static_cast<HpackDecoder*>(self);
  uint8_t* old = static_cast<uint8_t*>(ptr) - kAllocHeader;
  size_t old_size;
  std::memcpy(&old_size, old, sizeof old_size);
  if (BlockBytes(old_size) <= kPoolMaxBlock ||
      BlockBytes(size) <= kPoolMaxBlock) {
    // A pool-sized block on either side: move it (nghttp2 seldom grows one).
    if (BlockBytes(size) == BlockBytes(old_size)) {
      std::memcpy(old, &size, sizeof size);
      d->allocated_ = d->allocated_ - old_size + size;
      return ptr;
    }
    void* p = Malloc(size, self);
    if (p == nullptr) return nullptr;
    std::memcpy(p, ptr, std::min(size, old_size));
    Free(ptr, self);
    return p;
  }
  auto* p = static_cast<uint8_t*>(std::realloc(old, size + kAllocHeader));
  if (p == nullptr) return nullptr;
  std::memcpy(p, &size, sizeof size);
  d->allocated_ = d->allocated_ - old_size + size;
  return p + kAllocHeader;
}

HpackDecoder::HpackDecoder(Limits limits, AgentStats* stats)
    : limits_(limits), stats_(stats) {
  mem_ = nghttp2_mem{this, &Malloc, &Free, &Calloc, &Realloc};
  settings_table_bytes_ = std::min(kDefaultTableBytes, limits_.max_table_bytes);
  NewInflater();
}

HpackDecoder::~HpackDecoder() {
  if (inflater_ != nullptr) nghttp2_hd_inflate_del(inflater_);
  DrainPool();
}

void HpackDecoder::NewInflater() {
  if (inflater_ != nullptr) nghttp2_hd_inflate_del(inflater_);
  inflater_ = nullptr;
  DrainPool();  // a forgotten table gives its memory back
  table_settled_ = false;
  if (nghttp2_hd_inflate_new2(&inflater_, &mem_) != 0) {
    inflater_ = nullptr;  // out of memory: every block fails, counted
    return;
  }
  nghttp2_hd_inflate_change_table_size(inflater_, settings_table_bytes_);
  if (settings_table_bytes_ < kDefaultTableBytes) {
    // nghttp2 now waits for the size update that lowered table; the
    // encoder sent it long ago. Play it to the inflater as an empty block.
    synth_.clear();
    PutInt(settings_table_bytes_, 5, 0x20, &synth_);
    nghttp2_nv nv;
    int fl = 0;
    nghttp2_hd_inflate_hd2(inflater_, &nv, &fl,
                           reinterpret_cast<const uint8_t*>(synth_.data()),
                           synth_.size(), /*in_final=*/1);
    nghttp2_hd_inflate_end_headers(inflater_);
  }
}

void HpackDecoder::Reset() { NewInflater(); }

size_t HpackDecoder::dynamic_entries() const {
  if (inflater_ == nullptr) return 0;
  size_t n = nghttp2_hd_inflate_get_num_table_entries(inflater_);
  return n > kStaticEntries ? n - kStaticEntries : 0;
}

void HpackDecoder::SetSettingsTableSize(uint32_t bytes) {
  if (bytes > limits_.max_table_bytes) {
    stats_->Count(Anomaly::kHttp2HpackTableSize);
  }
  settings_table_bytes_ = std::min<size_t>(bytes, limits_.max_table_bytes);
  table_settled_ = false;
  if (inflater_ != nullptr) {
    nghttp2_hd_inflate_change_table_size(inflater_, settings_table_bytes_);
  }
}

bool HpackDecoder::Scan(const uint8_t* p, size_t len) {
  reps_.clear();
  size_t pos = 0;
  while (pos < len) {
    Rep r{};
    r.offset = static_cast<uint32_t>(pos);
    uint8_t b = p[pos];
    uint64_t v = 0;
    if (b & 0x80) {
      r.kind = Kind::kIndexed;
      if (!ReadInt(p, len, &pos, 7, &v) || v == 0) return false;
      r.index = static_cast<uint32_t>(v);
    } else if (b & 0x40 || (b & 0xe0) == 0) {
      // 01: with incremental indexing (6-bit index); 0000/0001: without
      // indexing / never indexed (4-bit index).
      bool indexed = (b & 0x40) != 0;
      r.kind = indexed ? Kind::kLiteralIndexed : Kind::kLiteral;
      if (!ReadInt(p, len, &pos, indexed ? 6 : 4, &v)) return false;
      r.index = static_cast<uint32_t>(v);
      if (r.index == 0 && !SkipString(p, len, &pos)) return false;
      r.value_at = static_cast<uint32_t>(pos);
      if (!SkipString(p, len, &pos)) return false;
    } else {
      r.kind = Kind::kSizeUpdate;  // 001
      if (!ReadInt(p, len, &pos, 5, &v)) return false;
      r.size_value = v;
    }
    r.len = static_cast<uint32_t>(pos - r.offset);
    reps_.push_back(r);
  }
  return true;
}

bool HpackDecoder::IsUnknown(uint32_t index) const {
  if (index <= kStaticEntries) return false;
  const nghttp2_nv* e = nghttp2_hd_inflate_get_table_entry(inflater_, index);
  if (e == nullptr) return true;  // older than anything seen
  return std::string_view(reinterpret_cast<const char*>(e->name), e->namelen) ==
         kPlaceholderName;
}

void HpackDecoder::Fail(Result* r) {
  stats_->Count(Anomaly::kHttp2HpackError);
  r->error = true;
  NewInflater();
}

bool HpackDecoder::Feed(const uint8_t* in, size_t len, bool final,
                        HeaderList* out, Result* r) {
  while (true) {
    nghttp2_nv nv;
    int fl = 0;
    ssize_t rv =
        nghttp2_hd_inflate_hd2(inflater_, &nv, &fl, in, len, final ? 1 : 0);
    if (rv < 0) {
      Fail(r);
      return false;
    }
    in += rv;
    len -= static_cast<size_t>(rv);
    if (fl & NGHTTP2_HD_INFLATE_EMIT) {
      std::string_view name(reinterpret_cast<const char*>(nv.name), nv.namelen);
      if (name == kPlaceholderName) {
        ++r->unknown;
      } else {
        out->Add(name,
                 std::string_view(reinterpret_cast<const char*>(nv.value),
                                  nv.valuelen),
                 limits_.max_list_bytes);
      }
    }
    if (fl & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inflater_);
      return true;
    }
    if ((fl & NGHTTP2_HD_INFLATE_EMIT) == 0 && len == 0) return true;
  }
}

bool HpackDecoder::InsertPlaceholder(const uint8_t* value_string, size_t len,
                                     Result* r) {
  synth_.clear();
  synth_.push_back(0x40);  // literal with incremental indexing, new name
  PutInt(kPlaceholderName.size(), 7, 0x00, &synth_);
  synth_.append(kPlaceholderName);
  // The value as the encoder wrote it: the entry's size comes out close.
  synth_.append(reinterpret_cast<const char*>(value_string), len);
  HeaderList ignored;
  Result inner;
  bool ok = Feed(reinterpret_cast<const uint8_t*>(synth_.data()), synth_.size(),
                 /*final=*/false, &ignored, &inner);
  if (!ok) r->error = true;
  return ok;
}

size_t HpackDecoder::memo_bytes() const {
  size_t n = memo_.capacity() * sizeof(MemoEntry);
  for (const MemoEntry& m : memo_) {
    n += m.rep.capacity() + m.name.capacity() + m.value.capacity() +
         m.plain.capacity();
  }
  return n;
}

bool HpackDecoder::Memoizable(const Rep& rep) const {
  return (rep.kind == Kind::kLiteral || rep.kind == Kind::kLiteralIndexed) &&
         rep.index <= kStaticEntries && rep.len >= kMemoMinRepBytes &&
         rep.len <= kMemoMaxRepBytes;
}

HpackDecoder::MemoEntry* HpackDecoder::FindMemo(const uint8_t* rep,
                                                size_t len) {
  for (MemoEntry& m : memo_) {
    if (m.rep.size() == len && std::memcmp(m.rep.data(), rep, len) == 0)
      return &m;
  }
  return nullptr;
}

void HpackDecoder::Remember(const Rep& r, const uint8_t* rep, size_t len,
                            std::string_view name, std::string_view value) {
  if (FindMemo(rep, len) != nullptr) return;  // twice in one block
  MemoEntry* slot;
  if (memo_.size() < kMemoSlots) {
    slot = &memo_.emplace_back();
  } else {
    // Second chance (CLOCK): an entry used since the hand last passed is
    // kept, so a token on every request outlives a stream of new paths.
    while (memo_[memo_hand_].used) {
      memo_[memo_hand_].used = false;
      memo_hand_ = (memo_hand_ + 1) % kMemoSlots;
    }
    slot = &memo_[memo_hand_];
    memo_hand_ = (memo_hand_ + 1) % kMemoSlots;
  }
  // assign(): a slot's buffers are reused; each stays under twice the
  // longest entry it held.
  slot->rep.assign(reinterpret_cast<const char*>(rep), len);
  slot->name.assign(name);
  slot->value.assign(value);
  slot->plain.clear();
  if (r.kind == Kind::kLiteralIndexed) {
    // The same insert without Huffman coding, for nghttp2 to copy.
    PutInt(r.index, 6, 0x40, &slot->plain);
    if (r.index == 0) {
      PutInt(name.size(), 7, 0x00, &slot->plain);
      slot->plain.append(name);
    }
    PutInt(value.size(), 7, 0x00, &slot->plain);
    slot->plain.append(value);
  }
  slot->used = false;
}

void HpackDecoder::DecodeKnown(const uint8_t* block, size_t len, bool use_memo,
                               HeaderList* out, Result* r) {
  // Representations [run, i) wait to be fed to nghttp2 in one call; each
  // emits exactly one field (no size update or placeholder here), so the
  // fields a run adds line up with its representations. The memo changes
  // only once the block is done (entries found in it stay put).
  size_t run = 0;
  size_t pending = 0;  // misses of the current run: the tail of learned_
  learned_.clear();
  plain_.clear();
  auto flush = [&](size_t end, bool final) {
    if (run == end) return true;
    size_t first_field = out->size();
    const Rep& a = reps_[run];
    const Rep& b = reps_[end - 1];
    bool ok;
    if (plain_.empty()) {
      ok = Feed(block + a.offset, b.offset + b.len - a.offset, final, out, r);
    } else {
      // The run as the encoder wrote it, but each remembered insert spelled
      // without Huffman coding: nghttp2 adds the same entry, and copies it.
      synth_.clear();
      size_t from = a.offset;  // block bytes not yet copied
      for (const PlainInsert& pi : plain_) {
        const Rep& rep = reps_[pi.rep];
        synth_.append(reinterpret_cast<const char*>(block + from),
                      rep.offset - from);
        synth_.append(pi.memo->plain);
        from = rep.offset + rep.len;
      }
      synth_.append(reinterpret_cast<const char*>(block + from),
                    b.offset + b.len - from);
      plain_.clear();
      ok = Feed(reinterpret_cast<const uint8_t*>(synth_.data()), synth_.size(),
                final, out, r);
    }
    // A field dropped (the list bound, a placeholder's name sent by the
    // peer) breaks the line-up: nothing is learned from this run.
    if (ok && !out->truncated() && out->size() - first_field == end - run) {
      for (size_t k = learned_.size() - pending; k < learned_.size(); ++k)
        learned_[k].field = first_field + (learned_[k].rep - run);
    } else {
      learned_.resize(learned_.size() - pending);
    }
    pending = 0;
    run = end;
    return ok;
  };
  bool ok = true;
  for (size_t i = 0; ok && i < reps_.size(); ++i) {
    const Rep& rep = reps_[i];
    if (use_memo && rep.kind == Kind::kIndexed && run == i) {
      // No run waiting: the field is read from nghttp2's table as its
      // inflater would emit it (an indexed field changes no table).
      const nghttp2_nv* e =
          nghttp2_hd_inflate_get_table_entry(inflater_, rep.index);
      if (e != nullptr) {
        out->Add(std::string_view(reinterpret_cast<const char*>(e->name),
                                  e->namelen),
                 std::string_view(reinterpret_cast<const char*>(e->value),
                                  e->valuelen),
                 limits_.max_list_bytes);
        run = i + 1;
        continue;
      }
    }
    if (!Memoizable(rep)) continue;  // joins the run
    MemoEntry* m = use_memo ? FindMemo(block + rep.offset, rep.len) : nullptr;
    if (m == nullptr) {
      learned_.push_back({static_cast<uint32_t>(i), 0});
      ++pending;
      continue;
    }
    ++memo_hits_;
    m->used = true;
    if (rep.kind == Kind::kLiteralIndexed) {
      plain_.push_back({i, m});  // the table must take it: joins the run
      continue;
    }
    ok = flush(i, /*final=*/false);
    if (!ok) break;
    out->Add(m->name, m->value, limits_.max_list_bytes);
    run = i + 1;
  }
  if (ok) {
    if (run == 0) {
      // Nothing remembered: the whole block in one call, as nghttp2 expects.
      ok = flush(reps_.size(), /*final=*/true);
      if (ok) table_settled_ = true;
    } else {
      ok = flush(reps_.size(), /*final=*/false);
      if (ok) nghttp2_hd_inflate_end_headers(inflater_);
    }
  }
  if (!ok) return;  // the inflater was restarted
  for (const Learned& l : learned_) {
    const Rep& m = reps_[l.rep];
    Remember(m, block + m.offset, m.len, out->name(l.field),
             out->value(l.field));
  }
}

HpackDecoder::Result HpackDecoder::Decode(const uint8_t* block, size_t len,
                                          HeaderList* out) {
  out->Clear();
  Result r;
  if (inflater_ == nullptr) {
    NewInflater();
    if (inflater_ == nullptr) {
      Fail(&r);
      return r;
    }
  }
  if (!Scan(block, len)) {
    Fail(&r);  // a truncated or absurd representation: the table is lost
    return r;
  }
  // Fast path: every reference resolves (counting this block's own inserts)
  // and no size update needs clamping: one pass through nghttp2.
  bool fast = true;
  uint32_t inserted = 0;
  for (const Rep& rep : reps_) {
    if (rep.kind == Kind::kSizeUpdate) {
      if (rep.size_value > settings_table_bytes_) fast = false;
      continue;
    }
    if (rep.index > kStaticEntries) {
      uint32_t dyn = rep.index - kStaticEntries;  // 1 = newest
      if (dyn > inserted && IsUnknown(rep.index - inserted)) fast = false;
    }
    if (!fast) break;
    if (rep.kind == Kind::kLiteralIndexed) ++inserted;
  }
  if (fast) {
    if (len == 0) {
      nghttp2_hd_inflate_end_headers(inflater_);
    } else {
      // Remembered literals may bypass nghttp2 only where it expects no
      // size update: the table has settled and the block carries none.
      bool use_memo = table_settled_;
      for (const Rep& rep : reps_) {
        if (rep.kind == Kind::kSizeUpdate) use_memo = false;
      }
      DecodeKnown(block, len, use_memo, out, &r);
    }
  } else {
    // One representation at a time, each checked against the live table.
    for (const Rep& rep : reps_) {
      const uint8_t* at = block + rep.offset;
      bool ok = true;
      switch (rep.kind) {
        case Kind::kSizeUpdate:
          if (rep.size_value > settings_table_bytes_) {
            if (rep.size_value > limits_.max_table_bytes)
              stats_->Count(Anomaly::kHttp2HpackTableSize);
            synth_.clear();
            PutInt(settings_table_bytes_, 5, 0x20, &synth_);
            ok = Feed(reinterpret_cast<const uint8_t*>(synth_.data()),
                      synth_.size(), false, out, &r);
          } else {
            ok = Feed(at, rep.len, false, out, &r);
          }
          break;
        case Kind::kIndexed:
          if (IsUnknown(rep.index)) {
            ++r.unknown;
          } else {
            ok = Feed(at, rep.len, false, out, &r);
          }
          break;
        case Kind::kLiteralIndexed:
          if (rep.index != 0 && IsUnknown(rep.index)) {
            ++r.unknown;
            ok = InsertPlaceholder(block + rep.value_at,
                                   rep.offset + rep.len - rep.value_at, &r);
          } else {
            ok = Feed(at, rep.len, false, out, &r);
          }
          break;
        case Kind::kLiteral:
          if (rep.index != 0 && IsUnknown(rep.index)) {
            ++r.unknown;
          } else {
            ok = Feed(at, rep.len, false, out, &r);
          }
          break;
      }
      if (!ok) break;  // the inflater was restarted: the rest is lost
    }
    if (!r.error) nghttp2_hd_inflate_end_headers(inflater_);
  }
  if (r.unknown > 0) stats_->Count(Anomaly::kHttp2HpackUnknownIndex);
  if (out->truncated()) stats_->Count(Drop::kHttp2HeaderList);
  return r;
}

}  // namespace tokenwatch::http2
