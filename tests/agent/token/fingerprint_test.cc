#include "agent/token/fingerprint.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "agent/token/token_cache.h"
#include "tests/agent/testing/jwt_builder.h"

namespace tokenwatch::token {
namespace {

TEST(FingerprinterTest, MatchesRfc4231TestCase1) {
  // HMAC-SHA256(0x0b * 20, "Hi There") = b0344c61d8db38535ca8afceaf0bf12b...
  auto fp = Fingerprinter::Create(std::string(20, '\x0b'));
  ASSERT_TRUE(fp.ok());
  EXPECT_EQ((*fp)->Fingerprint("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b");
  // Repeated calls reuse the keyed context correctly.
  EXPECT_EQ((*fp)->Fingerprint("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b");
}

TEST(FingerprinterTest, RejectsEmptyAndMissingKeys) {
  EXPECT_FALSE(Fingerprinter::Create("").ok());
  EXPECT_FALSE(Fingerprinter::FromFile("/nonexistent/key").ok());
}

// Writes `key` to a fresh file with `mode` and returns its path.
std::string KeyFile(const std::string& name, mode_t mode) {
  std::string dir = ::testing::TempDir() + "/fingerprint_test_keys";
  mkdir(dir.c_str(), 0700);
  std::string path = dir + "/" + name;
  unlink(path.c_str());
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  EXPECT_GE(fd, 0) << path;
  EXPECT_EQ(write(fd, "k", 1), 1);
  close(fd);
  EXPECT_EQ(chmod(path.c_str(), mode), 0);
  return path;
}

TEST(FingerprinterTest, KeyFileMustBeTheOwnersAlone) {
  for (mode_t mode : {0600, 0400}) {
    std::string path = KeyFile("ok.key", mode);
    auto fp = Fingerprinter::FromFile(path);
    ASSERT_TRUE(fp.ok()) << fp.status();
    // The file's bytes are the key.
    EXPECT_EQ((*fp)->Fingerprint("x"),
              (*Fingerprinter::Create("k"))->Fingerprint("x"));
  }
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602, 0610}) {
    std::string path = KeyFile("open.key", mode);
    auto fp = Fingerprinter::FromFile(path);
    ASSERT_FALSE(fp.ok()) << std::oct << mode;
    EXPECT_EQ(fp.status().code(), absl::StatusCode::kPermissionDenied);
    char want[64];
    snprintf(want, sizeof want, "has mode %04o", static_cast<unsigned>(mode));
    EXPECT_EQ(fp.status().message(),
              "fingerprint key file " + path + " " + want +
                  ": it must not be accessible by group or others; run: "
                  "chmod 600 " +
                  path);
  }
  std::string dir = ::testing::TempDir() + "/fingerprint_test_keys";
  EXPECT_EQ(Fingerprinter::FromFile(dir).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string empty = KeyFile("empty.key", 0600);
  ASSERT_EQ(truncate(empty.c_str(), 0), 0);
  EXPECT_EQ(Fingerprinter::FromFile(empty).status().message(),
            "fingerprint key file " + empty + " is empty");
}

TEST(TokenCacheTest, DecodesOnceAndIgnoresTheSignatureForIdentity) {
  auto fp = Fingerprinter::Create("k");
  ASSERT_TRUE(fp.ok());
  AgentStats stats;
  TokenCache cache(fp->get(), 4, &stats);
  // {"sub":"alice","jti":"j1"}
  std::string t = testing::MakeJwt(R"({"sub":"alice","jti":"j1"})");
  DecodedToken a = cache.Lookup(t);
  DecodedToken b = cache.Lookup(t);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(stats.token_cache_misses, 1u);
  EXPECT_EQ(stats.token_cache_hits, 1u);
  EXPECT_EQ(a->info.fp(), (*fp)->Fingerprint(t.substr(0, t.rfind('.'))));
  // A malleated signature is the same identity (SPEC).
  DecodedToken c = cache.Lookup(t.substr(0, t.rfind('.')) + ".AAAA");
  EXPECT_EQ(c->info.fp(), a->info.fp());
}

TEST(TokenCacheTest, StaysBounded) {
  auto fp = Fingerprinter::Create("k");
  ASSERT_TRUE(fp.ok());
  AgentStats stats;
  TokenCache cache(fp->get(), 8, &stats);
  for (int i = 0; i < 1000; ++i) cache.Lookup("opaque-" + std::to_string(i));
  EXPECT_LE(cache.size(), 16u);
  EXPECT_EQ(stats.tokens[size_t(TokenKindStat::kOpaque)], 1000u);
}

}  // namespace
}  // namespace tokenwatch::token
