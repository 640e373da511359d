// Journal records: what the writer puts down, the reader gives back, and a
// damaged record is an error before any of it is used.
#include "collector/state/journal.h"

#include <google/protobuf/stubs/logging.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenwatch/v1/ingest.pb.h"

namespace tokenwatch::collector {
namespace {

struct Written {
  std::string record;
  std::vector<v1::UsageEvent> uses;
};

// Three uses: a new JWT (claims), the same again (by name), an opaque
// token (claims, then by fingerprint).
Written WriteSome() {
  TokenTable table;
  JournalWriter w;
  Written out;
  w.Begin();
  auto add = [&](const v1::TokenInfo& t, int64_t ts, uint32_t count,
                 const std::string& client) {
    v1::UsageEvent e;
    e.set_ts_us(ts);
    e.set_last_ts_us(ts + 5);
    e.set_count(count);
    e.set_status(503);
    e.set_service("orders");
    e.set_client(client);
    *e.mutable_token() = t;
    bool created, claims_read;
    TokenTable::Ref ref;
    TokenState& s = table.Upsert(t, &created, &ref, &claims_read);
    uint32_t svc = table.Intern(e.service()), cli = table.Intern(e.client());
    table.RecordUse(s, e, svc, cli);
    w.Add(e, s, created, claims_read, svc, cli, table.strings());
    out.uses.push_back(e);
  };
  v1::TokenInfo jwt;
  jwt.set_kind(v1::TOKEN_KIND_JWT);
  jwt.set_fp(std::string(32, 'a'));
  jwt.set_iss("https://idp.test");
  jwt.set_jti("j-1");
  v1::TokenInfo opaque;
  opaque.set_kind(v1::TOKEN_KIND_OPAQUE);
  opaque.set_fp("00112233445566778899aabbccddeeff");
  add(jwt, 1'764'460'800'000'000, 1, "10.0.0.1");
  add(jwt, 1'764'460'700'000'000, 3,
      "2001:db8::1");  // earlier: a negative delta
  add(opaque, 1'764'460'900'000'000, 1, "10.0.0.1");
  add(opaque, 1'764'460'900'000'001, 2, "10.0.0.2");
  out.record = w.Finish();
  return out;
}

TEST(JournalTest, RoundTrip) {
  Written w = WriteSome();
  ASSERT_EQ(w.record.substr(0, 2), std::string("\0\1", 2));  // marker, v1
  std::vector<JournalUse> got;
  std::vector<std::string> claims;
  ASSERT_TRUE(ReadJournalRecord(w.record, [&](const JournalUse& u) {
                got.push_back(u);
                claims.push_back(u.claims ? u.claims->ShortDebugString() : "");
                return absl::OkStatus();
              }).ok());
  ASSERT_EQ(got.size(), 4u);
  for (size_t i = 0; i < got.size(); ++i) {
    const v1::UsageEvent& want = w.uses[i];
    EXPECT_EQ(got[i].use.ts_us(), want.ts_us()) << i;
    EXPECT_EQ(got[i].use.last_ts_us(), want.last_ts_us()) << i;
    EXPECT_EQ(got[i].use.count(), want.count()) << i;
    EXPECT_EQ(got[i].use.status(), want.status()) << i;
    EXPECT_EQ(got[i].use.service(), want.service()) << i;
    EXPECT_EQ(got[i].use.client(), want.client()) << i;
  }
  // Claims with the first use of each token, then its name.
  EXPECT_EQ(claims[0], w.uses[0].token().ShortDebugString());
  EXPECT_TRUE(got[0].created);
  EXPECT_EQ(claims[1], "");
  EXPECT_EQ(got[1].iss, "https://idp.test");
  EXPECT_EQ(got[1].jti, "j-1");
  EXPECT_EQ(claims[2], w.uses[2].token().ShortDebugString());
  EXPECT_EQ(claims[3], "");
  EXPECT_TRUE(got[3].by_fp);
  EXPECT_EQ(got[3].fp[0], 0x00);
  EXPECT_EQ(got[3].fp[15], 0xff);
}

TEST(JournalTest, EveryTruncationAndFlippedByteIsAnErrorOrAGoodRecord) {
  Written w = WriteSome();
  for (size_t n = 0; n < w.record.size(); ++n) {
    int calls = 0;
    absl::Status s =
        ReadJournalRecord(w.record.substr(0, n), [&](const JournalUse&) {
          ++calls;
          return absl::OkStatus();
        });
    EXPECT_FALSE(s.ok()) << "truncated to " << n;
    EXPECT_EQ(calls, 0) << "a damaged record passed uses on";
  }
  // Damaged claims make protobuf log each UTF-8 refusal: expected here.
  google::protobuf::LogSilencer quiet;
  for (size_t i = 0; i < w.record.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = w.record;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      // Either refused, or decodes to some well-formed record: no crash,
      // no read past the end (ASan in `make test`).
      (void)ReadJournalRecord(
          bad, [](const JournalUse&) { return absl::OkStatus(); });
    }
  }
}

TEST(JournalTest, AHugeUseCountIsRefusedWithoutAllocatingForIt) {
  // Marker, version, no strings, 2^62 uses, nothing else.
  std::string bad("\x00\x01\x00", 3);
  bad += std::string("\x80\x80\x80\x80\x80\x80\x80\x80\x40", 9);
  absl::Status s = ReadJournalRecord(
      bad, [](const JournalUse&) { return absl::OkStatus(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("use count"), std::string::npos) << s;
}

// Rows that hold an EventBatch as received (a journal format that lived
// for a few hours of development, never released, and is emptied by every
// checkpoint) are not read: they are refused like any corrupt row.
TEST(JournalTest, AnEventBatchIsNotARecord) {
  v1::EventBatch batch;
  batch.set_seq(1);
  batch.add_events()->set_service("orders");
  absl::Status s =
      ReadJournalRecord(batch.SerializeAsString(), [](const JournalUse&) {
        ADD_FAILURE() << "a use was passed on";
        return absl::OkStatus();
      });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("corrupt"), absl::string_view::npos);
}

}  // namespace
}  // namespace tokenwatch::collector
