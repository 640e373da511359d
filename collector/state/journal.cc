#include "collector/state/journal.h"

#include <cstring>
#include <deque>
#include <functional>

#include "absl/strings/str_cat.h"

namespace tokenwatch::collector {
namespace {

constexpr char kMarker = '\0';
constexpr char kVersion = '\x01';
constexpr uint64_t kClaims = 1, kByFp = 2, kCreated = 4;
// The fewest bytes a use takes: flags, an empty claims field, and six
// one-byte varints.
constexpr size_t kMinUseBytes = 8;

void PutVarint(uint64_t v, std::string* out) {
  for (; v >= 0x80; v >>= 7) out->push_back(static_cast<char>(v | 0x80));
  out->push_back(static_cast<char>(v));
}
void PutZigzag(int64_t v, std::string* out) {
  PutVarint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63),
            out);
}
void PutBytes(std::string_view b, std::string* out) {
  PutVarint(b.size(), out);
  out->append(b.data(), b.size());
}

struct Reader {
  const char* p;
  const char* end;
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      uint8_t b = static_cast<uint8_t>(*p++);
      *v |= uint64_t{b & 0x7fu} << shift;
      if (b < 0x80) return true;
    }
    return false;
  }
  bool Zigzag(int64_t* v) {
    uint64_t u;
    if (!Varint(&u)) return false;
    *v = static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1);
    return true;
  }
  bool Bytes(std::string_view* b) {
    uint64_t n;
    if (!Varint(&n) || n > static_cast<uint64_t>(end - p)) return false;
    *b = {p, static_cast<size_t>(n)};
    p += n;
    return true;
  }
  bool Raw(size_t n, std::string_view* b) {
    if (n > static_cast<size_t>(end - p)) return false;
    *b = {p, n};
    p += n;
    return true;
  }
};

}  // namespace

void JournalWriter::Begin() {
  strings_.clear();
  uses_.clear();
  n_strings_ = n_uses_ = 0;
  prev_ts_ = 0;
  if (++record_ == 0) {  // wrapped: old stamps could look current
    std::fill(stamp_of_.begin(), stamp_of_.end(), 0);
    record_ = 1;
  }
}

uint32_t JournalWriter::StringIndex(uint32_t id, const Interner& strings) {
  if (id >= index_of_.size()) {
    index_of_.resize(id + 1024);
    stamp_of_.resize(id + 1024);
  }
  if (stamp_of_[id] != record_) {
    stamp_of_[id] = record_;
    index_of_[id] = n_strings_++;
    PutBytes(strings.Get(id), &strings_);
  }
  return index_of_[id];
}

void JournalWriter::Add(const v1::UsageEvent& use, TokenState& s, bool created,
                        bool claims_read, uint32_t service, uint32_t client,
                        const Interner& strings) {
  ++n_uses_;
  if (claims_read || !s.claims_journaled) {  // claims_read when created
    s.claims_journaled = true;
    PutVarint(created ? kClaims | kCreated : kClaims, &uses_);
    scratch_.clear();
    use.token().SerializeToString(&scratch_);
    PutBytes(scratch_, &uses_);
  } else if (!s.by_jti()) {
    PutVarint(kByFp, &uses_);
    uses_.append(reinterpret_cast<const char*>(s.fp.data()), s.fp.size());
  } else {
    PutVarint(0, &uses_);
    PutVarint(StringIndex(s.iss, strings), &uses_);
    PutBytes(s.jti(), &uses_);
  }
  PutZigzag(static_cast<int64_t>(static_cast<uint64_t>(use.ts_us()) -
                                 static_cast<uint64_t>(prev_ts_)),
            &uses_);
  PutZigzag(static_cast<int64_t>(static_cast<uint64_t>(use.last_ts_us()) -
                                 static_cast<uint64_t>(use.ts_us())),
            &uses_);
  prev_ts_ = use.ts_us();
  PutVarint(use.count(), &uses_);
  PutVarint(use.status(), &uses_);
  PutVarint(StringIndex(service, strings), &uses_);
  PutVarint(StringIndex(client, strings), &uses_);
}

std::string JournalWriter::Finish() {
  if (n_uses_ == 0) return {};
  std::string out;
  out.reserve(2 + 10 + strings_.size() + 10 + uses_.size());
  out.push_back(kMarker);
  out.push_back(kVersion);
  PutVarint(n_strings_, &out);
  out.append(strings_);
  PutVarint(n_uses_, &out);
  out.append(uses_);
  return out;
}

absl::Status ReadJournalRecord(
    std::string_view record,
    const std::function<absl::Status(const JournalUse&)>& fn) {
  auto bad = [](absl::string_view what) {
    return absl::DataLossError(
        absl::StrCat("journal record: ", what, " (the store file is corrupt)"));
  };
  Reader r{record.data(), record.data() + record.size()};
  if (record.size() < 2 || record[0] != kMarker) return bad("no marker");
  if (record[1] != kVersion) return bad("unknown version");
  r.p += 2;
  uint64_t n;
  if (!r.Varint(&n) || n > static_cast<uint64_t>(r.end - r.p))
    return bad("string count");
  std::vector<std::string_view> strings(n);
  for (auto& s : strings) {
    if (!r.Bytes(&s)) return bad("string");
  }
  auto str = [&](uint64_t i, std::string_view* out) {
    if (i >= strings.size()) return false;
    *out = strings[i];
    return true;
  };
  uint64_t m;
  if (!r.Varint(&m) || m > static_cast<uint64_t>(r.end - r.p) / kMinUseBytes)
    return bad("use count");
  // Decode everything first: a corrupt record changes nothing.
  std::vector<JournalUse> uses(m);
  std::deque<v1::TokenInfo> claims;  // stable addresses
  int64_t prev_ts = 0;
  for (JournalUse& u : uses) {
    uint64_t flags;
    if (!r.Varint(&flags) || (flags != 0 && flags != kClaims &&
                              flags != (kClaims | kCreated) && flags != kByFp))
      return bad("flags");
    if (flags & kClaims) {
      u.created = (flags & kCreated) != 0;
      std::string_view b;
      claims.emplace_back();
      if (!r.Bytes(&b) ||
          !claims.back().ParseFromArray(b.data(), static_cast<int>(b.size())))
        return bad("claims");
      u.claims = &claims.back();
    } else if (flags & kByFp) {
      std::string_view b;
      if (!r.Raw(16, &b)) return bad("fingerprint");
      u.by_fp = true;
      memcpy(u.fp.data(), b.data(), 16);
    } else {
      uint64_t iss;
      if (!r.Varint(&iss) || !str(iss, &u.iss) || !r.Bytes(&u.jti) ||
          u.jti.empty())
        return bad("identity");
    }
    int64_t dts, dlast;
    uint64_t count, status, service, client;
    std::string_view svc, cli;
    if (!r.Zigzag(&dts) || !r.Zigzag(&dlast) || !r.Varint(&count) ||
        !r.Varint(&status) || !r.Varint(&service) || !r.Varint(&client) ||
        count > UINT32_MAX || status > UINT32_MAX || !str(service, &svc) ||
        !str(client, &cli))
      return bad("use");
    int64_t ts = static_cast<int64_t>(static_cast<uint64_t>(prev_ts) +
                                      static_cast<uint64_t>(dts));
    prev_ts = ts;
    u.use.set_ts_us(ts);
    u.use.set_last_ts_us(static_cast<int64_t>(static_cast<uint64_t>(ts) +
                                              static_cast<uint64_t>(dlast)));
    u.use.set_count(static_cast<uint32_t>(count));
    u.use.set_status(static_cast<uint32_t>(status));
    u.use.set_service(svc.data(), svc.size());
    u.use.set_client(cli.data(), cli.size());
  }
  if (r.p != r.end) return bad("trailing bytes");
  for (const JournalUse& u : uses) {
    if (absl::Status s = fn(u); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace tokenwatch::collector
