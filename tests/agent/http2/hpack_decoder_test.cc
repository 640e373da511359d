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

}  // namespace
}  // namespace tokenwatch::http2
