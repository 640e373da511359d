// HpackDecoder: nghttp2's inflater behind a passive observer's rules.
#include "agent/http2/hpack_decoder.h"

#include <gtest/gtest.h>

#include "tests/agent/testing/h2_builder.h"

namespace tokenwatch::http2 {
namespace {

using namespace testing::hpack;
using testing::H2Encoder;

std::string Get(const HeaderList& h, std::string_view name) {
  for (size_t i = 0; i < h.size(); ++i)
    if (h.name(i) == name) return std::string(h.value(i));
  return "<absent>";
}

class HpackDecoderTest : public ::testing::Test {
 protected:
  HpackDecoder::Result Decode(const std::string& block) {
    return d_.Decode(reinterpret_cast<const uint8_t*>(block.data()),
                     block.size(), &out_);
  }
  AgentStats stats_;
  HpackDecoder d_{HpackDecoder::Limits{}, &stats_};
  HeaderList out_;
};

TEST_F(HpackDecoderTest, FollowsARealEncoderAcrossBlocks) {
  H2Encoder enc;
  for (int i = 0; i < 50; ++i) {
    std::string v = "value-" + std::to_string(i % 7);
    auto r = Decode(enc.Encode({{":method", "GET"},
                                {":path", "/p/" + std::to_string(i)},
                                {"x-repeat", v},
                                {"cookie", "session=" + v}}));
    ASSERT_EQ(r.unknown, 0u);
    ASSERT_FALSE(r.error);
    EXPECT_EQ(Get(out_, "x-repeat"), v) << i;
    EXPECT_EQ(Get(out_, ":path"), "/p/" + std::to_string(i));
  }
  EXPECT_GT(d_.dynamic_entries(), 0u);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2HpackUnknownIndex), 0u);
}

TEST_F(HpackDecoderTest, UnknownIndexSkippedNotGuessed) {
  auto r = Decode(Indexed(kMethodGet) + Indexed(62) + LitInc(kPath, "/a") +
                  LitNoIndex(65, "v"));
  EXPECT_EQ(r.unknown, 2u);
  EXPECT_FALSE(r.error);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(Get(out_, ":path"), "/a");
  EXPECT_EQ(d_.dynamic_entries(), 1u);
  r = Decode(Indexed(62));  // what this decoder inserted: known
  EXPECT_EQ(r.unknown, 0u);
  EXPECT_EQ(Get(out_, ":path"), "/a");
}

TEST_F(HpackDecoderTest, MalformedBlockRestartsTheTable) {
  Decode(LitInc(kPath, "/kept"));
  ASSERT_EQ(d_.dynamic_entries(), 1u);
  // A string whose length runs past the block.
  auto r = Decode(std::string("\x44\x7f\x10", 3) + "abc");
  EXPECT_TRUE(r.error);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2HpackError), 1u);
  EXPECT_EQ(d_.dynamic_entries(), 0u);
  // Index 0 is an error too (RFC 7541 6.1).
  r = Decode(Indexed(0));
  EXPECT_TRUE(r.error);
  r = Decode(Indexed(62));  // the old entry is gone: unknown, not guessed
  EXPECT_EQ(r.unknown, 1u);
}

TEST_F(HpackDecoderTest, AllocationsAreCountedAndBounded) {
  size_t base = d_.allocated_bytes();
  EXPECT_GT(base, 0u);  // the inflater itself
  for (int i = 0; i < 1000; ++i)
    Decode(LitInc(0, std::string(200, 'v'), "x-" + std::to_string(i)));
  // A 4096-byte table holds ~17 such entries, whatever was inserted.
  EXPECT_LT(d_.allocated_bytes(), base + 3 * 4096);
  d_.Reset();
  EXPECT_LE(d_.allocated_bytes(), base + 1024);
}

TEST_F(HpackDecoderTest, HeaderListBoundDropsTheRestAndCounts) {
  HpackDecoder small(HpackDecoder::Limits{4096, 200}, &stats_);
  std::string block = LitNoIndex(kAuthorization, "Bearer first");
  for (int i = 0; i < 10; ++i) block += LitNoIndexNew("x-" + std::to_string(i), "0123456789");
  small.Decode(reinterpret_cast<const uint8_t*>(block.data()), block.size(),
               &out_);
  EXPECT_EQ(Get(out_, "authorization"), "Bearer first");
  EXPECT_TRUE(out_.truncated());
  EXPECT_LT(out_.size(), 11u);
  EXPECT_EQ(stats_.Get(Drop::kHttp2HeaderList), 1u);
}

// Fields of one decoded block, in order, as "name: value" lines.
std::string Dump(const HeaderList& h) {
  std::string s;
  for (size_t i = 0; i < h.size(); ++i)
    s.append(h.name(i)).append(": ").append(h.value(i)).append("\n");
  return s;
}

// {"sub":"alice"} (not a real token: only its bytes matter here)
constexpr char kLongBearer[] =
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz";

TEST_F(HpackDecoderTest, RepeatedLiteralIsRememberedAndDecodesTheSame) {
  // nghttp2's deflater (like h2load's) never indexes authorization: every
  // request carries it as a Huffman-coded literal, while :authority and
  // x-seq go into the table and are referenced after.
  H2Encoder enc;
  for (int i = 0; i < 20; ++i) {
    std::string block = enc.Encode({{":method", "GET"},
                                    {":path", "/orders/" + std::to_string(i)},
                                    {":authority", "api.test"},
                                    {"x-seq", std::to_string(i % 3)},
                                    {"authorization", kLongBearer}});
    auto r = Decode(block);
    ASSERT_FALSE(r.error);
    ASSERT_EQ(r.unknown, 0u);
    EXPECT_EQ(Get(out_, "authorization"), kLongBearer) << i;
    EXPECT_EQ(Get(out_, "x-seq"), std::to_string(i % 3)) << i;
    // Every field, in order: the remembered one in its place.
    EXPECT_EQ(Dump(out_), ":method: GET\n:path: /orders/" + std::to_string(i) +
                              "\n:authority: api.test\nx-seq: " +
                              std::to_string(i % 3) + "\nauthorization: " +
                              kLongBearer + "\n")
        << i;
  }
  // The first block teaches the memo; the rest take the token from it.
  EXPECT_GE(d_.memo_hits(), 19u);
  EXPECT_GT(d_.dynamic_entries(), 0u);
}

TEST_F(HpackDecoderTest, MemoNeverHidesAMissingTableSizeUpdate) {
  std::string block = Indexed(kMethodGet) + LitNoIndex(kAuthorization, kLongBearer);
  for (int i = 0; i < 3; ++i) ASSERT_FALSE(Decode(block).error);
  ASSERT_GE(d_.memo_hits(), 1u);
  uint64_t hits = d_.memo_hits();
  // The peer's decoder lowered its table: RFC 7541 4.2 wants a size update
  // at the start of the next block. Without it nghttp2 rejects the block,
  // and a remembered field must not let it through.
  d_.SetSettingsTableSize(1024);
  auto r = Decode(block);
  EXPECT_TRUE(r.error);
  EXPECT_EQ(d_.memo_hits(), hits);
  EXPECT_EQ(stats_.Get(Anomaly::kHttp2HpackError), 1u);
  // With the update it decodes, and the memo is used again after.
  ASSERT_FALSE(Decode(SizeUpdate(1024) + block).error);
  ASSERT_FALSE(Decode(block).error);
  EXPECT_EQ(Get(out_, "authorization"), kLongBearer);
  EXPECT_GT(d_.memo_hits(), hits);
}

TEST_F(HpackDecoderTest, MemoAroundTableInsertsKeepsTheTableInStep) {
  // Remembered literals between inserts and references: the table must see
  // every insert in order, or the references would resolve to other fields.
  std::string lit = LitNoIndex(kAuthorization, kLongBearer);
  for (int i = 0; i < 30; ++i) {
    std::string v = "v" + std::to_string(i);
    std::string block = lit + LitInc(0, v, "x-a") + lit + Indexed(62) +
                        LitInc(kPath, "/p" + v) + Indexed(63) + Indexed(62);
    auto r = Decode(block);
    ASSERT_FALSE(r.error) << i;
    EXPECT_EQ(Dump(out_), "authorization: " + std::string(kLongBearer) +
                              "\nx-a: " + v + "\nauthorization: " +
                              kLongBearer + "\nx-a: " + v + "\n:path: /p" +
                              v + "\nx-a: " + v + "\n:path: /p" + v + "\n")
        << i;
  }
  EXPECT_GT(d_.memo_hits(), 0u);
}

TEST_F(HpackDecoderTest, MemoIsBounded) {
  for (int i = 0; i < 200; ++i) {
    std::string token = std::string(kLongBearer) + std::string(1500, 'a' + i % 26) +
                        std::to_string(i);
    ASSERT_FALSE(Decode(LitNoIndex(kAuthorization, token)).error);
    EXPECT_EQ(Get(out_, "authorization"), token);
  }
  // Four slots of at most 2048 encoded bytes, each with its decoded copy
  // (at most 8/5 as long: Huffman codes have 5 bits or more) and, for an
  // insert, its plain spelling (as long again, and a few bytes), in
  // buffers reused from entry to entry (under twice the longest).
  const size_t kBound =
      4 * (2 * (2048 + 2 * (2048 * 8 / 5 + 8)) + 4 * sizeof(std::string) + 16);
  EXPECT_LE(d_.memo_bytes(), kBound);
  // Larger literals are decoded every time, never kept.
  std::string huge(5000, 'h');
  ASSERT_FALSE(Decode(LitNoIndex(kAuthorization, huge)).error);
  EXPECT_EQ(Get(out_, "authorization"), huge);
  EXPECT_LE(d_.memo_bytes(), kBound);
}

TEST_F(HpackDecoderTest, TokenOnEveryRequestOutlivesChangingPaths) {
  std::string token = LitNoIndex(kAuthorization, kLongBearer);
  for (int i = 0; i < 100; ++i) {
    std::string path = "/orders/" + std::to_string(i);  // never twice
    ASSERT_FALSE(Decode(Indexed(kMethodGet) + LitNoIndex(kPath, path) + token)
                     .error);
    EXPECT_EQ(Dump(out_), ":method: GET\n:path: " + path +
                              "\nauthorization: " + kLongBearer + "\n");
  }
  // From the second block on (the first, decoded whole, teaches the memo)
  // the token comes from the memo every time, whatever the paths evicted.
  EXPECT_EQ(d_.memo_hits(), 99u);
}

TEST_F(HpackDecoderTest, RepeatedInsertStillGoesIntoTheTable) {
  // nginx sends server, date, content-type as inserts on every response:
  // remembered, they are still inserted (spelled plain), so references to
  // them, and the evictions they cause, stay exactly the encoder's.
  std::string block = LitInc(0, "value-of-a-custom-field", "x-name") +
                      LitInc(kPath, "/same/path/every/time") + Indexed(62) +
                      Indexed(63);
  for (int i = 0; i < 60; ++i) {
    auto r = Decode(block);
    ASSERT_FALSE(r.error) << i;
    ASSERT_EQ(r.unknown, 0u) << i;
    EXPECT_EQ(Dump(out_),
              "x-name: value-of-a-custom-field\n:path: /same/path/every/time\n"
              ":path: /same/path/every/time\nx-name: value-of-a-custom-field\n")
        << i;
  }
  EXPECT_GE(d_.memo_hits(), 100u);
  // Entries of 32 + 6 + 23 and 32 + 5 + 21 bytes alternate: 4096 bytes
  // hold 34 pairs; the older ones were evicted, as the encoder's were.
  EXPECT_EQ(d_.dynamic_entries(), 2 * (4096u / (61 + 58)));
}

}  // namespace
}  // namespace tokenwatch::http2
