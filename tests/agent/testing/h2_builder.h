// HTTP/2 bytes for tests: frames written by hand (so tests can break every
// rule), header blocks encoded by libnghttp2's deflater (a real encoder,
// with its own dynamic table), and an observer that records what an
// analyzer raises.
#ifndef TOKENWATCH_TESTS_AGENT_TESTING_H2_BUILDER_H_
#define TOKENWATCH_TESTS_AGENT_TESTING_H2_BUILDER_H_

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/analyzer/transaction.h"
#include "agent/http2/frame.h"

namespace tokenwatch::testing {

using Fields = std::vector<std::pair<std::string, std::string>>;

// One direction's HPACK encoder.
class H2Encoder {
 public:
  explicit H2Encoder(size_t table_bytes = 4096) {
    nghttp2_hd_deflate_new(&deflater_, table_bytes);
  }
  ~H2Encoder() { nghttp2_hd_deflate_del(deflater_); }
  H2Encoder(const H2Encoder&) = delete;
  H2Encoder& operator=(const H2Encoder&) = delete;

  // `never_index`: names sent as never-indexed literals (no table entry).
  std::string Encode(const Fields& fields,
                     const std::vector<std::string>& never_index = {}) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [n, v] : fields) {
      uint8_t flags = NGHTTP2_NV_FLAG_NONE;
      for (const auto& ni : never_index)
        if (ni == n) flags = NGHTTP2_NV_FLAG_NO_INDEX;
      nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())),
                     n.size(), v.size(), flags});
    }
    size_t bound = nghttp2_hd_deflate_bound(deflater_, nva.data(), nva.size());
    std::string out(bound, '\0');
    ssize_t n = nghttp2_hd_deflate_hd(
        deflater_, reinterpret_cast<uint8_t*>(out.data()), bound, nva.data(),
        nva.size());
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }
  // The encoder's side of SETTINGS_HEADER_TABLE_SIZE: the next block
  // starts with a dynamic table size update.
  void ChangeTableSize(size_t bytes) {
    nghttp2_hd_deflate_change_table_size(deflater_, bytes);
  }

 private:
  nghttp2_hd_deflater* deflater_ = nullptr;
};

// Single HPACK representations, spelled out (RFC 7541 section 6, strings
// without Huffman coding): for tests that must say exactly which index a
// field uses.
namespace hpack {
inline void Int(std::string* out, uint64_t v, int prefix, uint8_t first) {
  uint64_t mask = (uint64_t{1} << prefix) - 1;
  if (v < mask) {
    out->push_back(static_cast<char>(first | v));
    return;
  }
  out->push_back(static_cast<char>(first | mask));
  v -= mask;
  while (v >= 0x80) {
    out->push_back(static_cast<char>(0x80 | (v & 0x7f)));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
inline std::string Str(std::string_view s) {
  std::string out;
  Int(&out, s.size(), 7, 0);
  out.append(s);
  return out;
}
inline std::string Indexed(uint32_t index) {
  std::string out;
  Int(&out, index, 7, 0x80);
  return out;
}
// Literal with incremental indexing, name by index (0: literal name).
inline std::string LitInc(uint32_t name_index, std::string_view value,
                          std::string_view name = {}) {
  std::string out;
  Int(&out, name_index, 6, 0x40);
  if (name_index == 0) out += Str(name);
  return out + Str(value);
}
inline std::string LitNoIndex(uint32_t name_index, std::string_view value) {
  std::string out;
  Int(&out, name_index, 4, 0x00);
  return out + Str(value);
}
inline std::string LitNoIndexNew(std::string_view name, std::string_view value) {
  return std::string(1, '\0') + Str(name) + Str(value);
}
inline std::string SizeUpdate(uint32_t bytes) {
  std::string out;
  Int(&out, bytes, 5, 0x20);
  return out;
}
// Static table indices used in tests.
inline constexpr uint32_t kMethodGet = 2, kMethodPost = 3, kPath = 4,
                          kSchemeHttp = 6, kAuthority = 1, kStatus200 = 8,
                          kAuthorization = 23;
}  // namespace hpack

inline std::string Frame(http2::FrameType type, uint8_t flags,
                         uint32_t stream, std::string_view payload) {
  std::string f;
  uint32_t len = static_cast<uint32_t>(payload.size());
  f.push_back(static_cast<char>(len >> 16));
  f.push_back(static_cast<char>(len >> 8));
  f.push_back(static_cast<char>(len));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  f.push_back(static_cast<char>((stream >> 24) & 0x7f));
  f.push_back(static_cast<char>(stream >> 16));
  f.push_back(static_cast<char>(stream >> 8));
  f.push_back(static_cast<char>(stream));
  f.append(payload);
  return f;
}

inline std::string Settings(std::vector<std::pair<uint16_t, uint32_t>> params,
                            bool ack = false) {
  std::string p;
  for (auto [id, v] : params) {
    p.push_back(static_cast<char>(id >> 8));
    p.push_back(static_cast<char>(id));
    for (int s = 24; s >= 0; s -= 8) p.push_back(static_cast<char>(v >> s));
  }
  return Frame(http2::FrameType::kSettings, ack ? http2::flags::kAck : 0, 0,
               p);
}

inline std::string U32(uint32_t v) {
  std::string p;
  for (int s = 24; s >= 0; s -= 8) p.push_back(static_cast<char>(v >> s));
  return p;
}

inline std::string Headers(uint32_t stream, std::string_view block,
                           bool end_stream, bool end_headers = true) {
  uint8_t fl = (end_stream ? http2::flags::kEndStream : 0) |
               (end_headers ? http2::flags::kEndHeaders : 0);
  return Frame(http2::FrameType::kHeaders, fl, stream, block);
}

inline std::string Data(uint32_t stream, std::string_view payload,
                        bool end_stream) {
  return Frame(http2::FrameType::kData,
               end_stream ? http2::flags::kEndStream : 0, stream, payload);
}

inline std::string RstStream(uint32_t stream, uint32_t code = 8) {
  return Frame(http2::FrameType::kRstStream, 0, stream, U32(code));
}

inline std::string Preface() { return std::string(http2::kClientPreface); }

// Records requests and their completions.
class RecordingObserver : public analyzer::TransactionObserver {
 public:
  struct Seen {
    analyzer::Protocol protocol;
    std::string method, target, authority;
    Fields headers;
    std::string client_ip, server_ip;
    bool completed = false;
    analyzer::Completion done;
  };
  std::unique_ptr<analyzer::PendingRequest> OnRequest(
      const analyzer::Request& r) override {
    Seen s;
    s.protocol = r.protocol;
    s.method.assign(r.method);
    s.target.assign(r.target);
    s.authority.assign(r.authority);
    for (size_t i = 0; i < r.num_headers; ++i)
      s.headers.emplace_back(std::string(r.headers[i].name),
                             std::string(r.headers[i].value));
    s.client_ip = r.client->ip;
    s.server_ip = r.server->ip;
    if (keep_) seen.push_back(std::move(s));
    ++requests;
    return std::make_unique<Pending>(this, keep_ ? seen.size() - 1 : SIZE_MAX);
  }
  // Counting only: a flood must not grow the test's own memory.
  void CountOnly() { keep_ = false; }
  size_t Count(size_t i, const std::string& name) const {
    size_t n = 0;
    for (const auto& [k, v] : seen[i].headers) n += k == name;
    return n;
  }
  std::string Header(size_t i, const std::string& name) const {
    for (const auto& [n, v] : seen[i].headers)
      if (n == name) return v;
    return "<absent>";
  }

  std::vector<Seen> seen;
  size_t requests = 0;
  size_t completions = 0;

 private:
  class Pending : public analyzer::PendingRequest {
   public:
    Pending(RecordingObserver* o, size_t i) : o_(o), i_(i) {}
    void Complete(const analyzer::Completion& done) override {
      ++o_->completions;
      if (i_ == SIZE_MAX) return;
      o_->seen[i_].completed = true;
      o_->seen[i_].done = done;
    }

   private:
    RecordingObserver* o_;
    size_t i_;
  };
  bool keep_ = true;
};

}  // namespace tokenwatch::testing

#endif  // TOKENWATCH_TESTS_AGENT_TESTING_H2_BUILDER_H_
