// The TLS probe's recording (agent/tls/recording.h): what is written reads
// back the same; a damaged file is an error naming where, never a crash.
#include "agent/tls/recording.h"

#include <gtest/gtest.h>

#include <fstream>

namespace tokenwatch::tls {
namespace {

Chunk Sample(int i) {
  Chunk c;
  c.kind = i % 3 == 0   ? Chunk::Kind::kData
           : i % 3 == 1 ? Chunk::Kind::kBind
                        : Chunk::Kind::kClose;
  c.dir = i % 2 ? Chunk::Dir::kRead : Chunk::Dir::kWrite;
  c.ts_us = 1764500000000000 + i;
  c.ssl = 0xdeadbeef00 + i;
  c.pid = 4000 + i;
  c.comm = "nginx";
  c.bound = i % 2 == 0;
  c.local.ip = "10.0.0.5";
  c.local.port = 443;
  c.remote.ip = "::1";
  c.remote.port = 50000 + i;
  c.truncated = i == 3;
  c.data =
      std::string(static_cast<size_t>(i) * 100, static_cast<char>('a' + i));
  c.orig_len = static_cast<uint32_t>(c.data.size() + (c.truncated ? 7 : 0));
  return c;
}

TEST(RecordingTest, WhatIsWrittenReadsBackTheSame) {
  std::string path = ::testing::TempDir() + "/rec.twprobe";
  {
    auto w = RecordingWriter::Create(path);
    ASSERT_TRUE(w.ok()) << w.status();
    for (int i = 0; i < 6; ++i) ASSERT_TRUE((*w)->Write(Sample(i)).ok());
  }
  EXPECT_TRUE(IsRecording(path));
  auto r = RecordingReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status();
  Chunk c;
  for (int i = 0; i < 6; ++i) {
    auto more = (*r)->Next(&c);
    ASSERT_TRUE(more.ok() && *more) << i;
    Chunk want = Sample(i);
    EXPECT_EQ(c.kind, want.kind);
    EXPECT_EQ(c.dir, want.dir);
    EXPECT_EQ(c.ts_us, want.ts_us);
    EXPECT_EQ(c.ssl, want.ssl);
    EXPECT_EQ(c.pid, want.pid);
    EXPECT_EQ(c.comm, want.comm);
    EXPECT_EQ(c.bound, want.bound);
    EXPECT_EQ(c.local.ip, want.local.ip);
    EXPECT_EQ(c.remote.port, want.remote.port);
    EXPECT_EQ(c.truncated, want.truncated);
    EXPECT_EQ(c.orig_len, want.orig_len);
    EXPECT_EQ(c.data, want.data);
  }
  auto end = (*r)->Next(&c);
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(*end);
}

TEST(RecordingTest, DamagedFilesAreErrorsNamingTheOffset) {
  std::string path = ::testing::TempDir() + "/damaged.twprobe";
  {
    auto w = RecordingWriter::Create(path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(Sample(2)).ok());
  }
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  // Cut short, a size larger than any record, and a bad kind.
  for (std::string bad :
       {bytes.substr(0, bytes.size() - 3),
        bytes.substr(0, 9) + std::string("\xff\xff\xff\x7f", 4), [&] {
          std::string b = bytes;
          b[13] = 9;
          return b;
        }()}) {
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << bad;
    }
    auto r = RecordingReader::Open(path);
    ASSERT_TRUE(r.ok());
    Chunk c;
    auto more = (*r)->Next(&c);
    ASSERT_FALSE(more.ok());
    EXPECT_NE(more.status().message().find("offset 9"), std::string::npos)
        << more.status();
  }
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "not a recording";
  }
  EXPECT_FALSE(IsRecording(path));
  EXPECT_FALSE(RecordingReader::Open(path).ok());
}

}  // namespace
}  // namespace tokenwatch::tls
