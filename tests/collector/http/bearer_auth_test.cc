#include "collector/http/bearer_auth.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace tokenwatch::collector {
namespace {

// A test value, not a secret.
constexpr char kToken[] = "0123456789abcdef-test.token_~+/==";

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    path_ = (std::filesystem::temp_directory_path() /
             ("bearer_auth_test." + std::to_string(getpid()) + "." +
              std::to_string(counter_++)))
                .string();
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

TEST(ParseBearerTokenTest, TrailingWhiteSpaceIsNotPartOfTheToken) {
  absl::StatusOr<std::string> t = ParseBearerToken(std::string(kToken) + "\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, kToken);
  t = ParseBearerToken(std::string(kToken) + " \r\n\t");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, kToken);
}

TEST(ParseBearerTokenTest, RejectsUnusableTokensWithoutQuotingThem) {
  const std::string long_token(kMaxBearerTokenBytes + 1, 'a');
  for (std::string bad :
       {std::string(""), std::string("\n"), std::string("short-secret1"),
        std::string("has space in-the-middle"),
        std::string("two\nlines-of-token"),
        std::string("quote\"in-the-token-here"),
        std::string("=leading-equals-sign"),
        std::string("equals=in-the-middle-xyz"), long_token}) {
    absl::StatusOr<std::string> t = ParseBearerToken(bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    if (bad.size() > 3) {
      EXPECT_FALSE(absl::StrContains(t.status().message(), bad.substr(0, 8)))
          << t.status();
    }
  }
}

TEST(LoadBearerTokenTest, ReadsTheFile) {
  TempFile file(std::string(kToken) + "\n");
  absl::StatusOr<std::string> t = LoadBearerToken(file.path());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, kToken);
}

TEST(LoadBearerTokenTest, ErrorsNameTheFile) {
  absl::StatusOr<std::string> t = LoadBearerToken("/nonexistent/token");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "cannot read /nonexistent/token: No such file or directory");
  TempFile empty("");
  t = LoadBearerToken(empty.path());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), empty.path() + ": the file is empty");
  t = LoadBearerToken("/");
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(absl::StrContains(t.status().message(), "cannot read /"))
      << t.status();
}

TEST(CheckBearerTest, TheRightTokenPasses) {
  const std::string token = kToken;
  EXPECT_EQ(CheckBearer(("Bearer " + token).c_str(), token), BearerCheck::kOk);
  // RFC 7235: the scheme is case-insensitive; spaces may repeat.
  EXPECT_EQ(CheckBearer(("bearer " + token).c_str(), token), BearerCheck::kOk);
  EXPECT_EQ(CheckBearer(("BEARER   " + token + " ").c_str(), token),
            BearerCheck::kOk);
}

TEST(CheckBearerTest, NoBearerCredentialsAreMissing) {
  const std::string token = kToken;
  EXPECT_EQ(CheckBearer(nullptr, token), BearerCheck::kMissing);
  EXPECT_EQ(CheckBearer("", token), BearerCheck::kMissing);
  EXPECT_EQ(CheckBearer("Bearer", token), BearerCheck::kMissing);
  EXPECT_EQ(CheckBearer(("Basic " + token).c_str(), token),
            BearerCheck::kMissing);
  EXPECT_EQ(CheckBearer(("Bearer" + token).c_str(), token),
            BearerCheck::kMissing);
  EXPECT_EQ(CheckBearer(("Bearerx " + token).c_str(), token),
            BearerCheck::kMissing);
}

TEST(CheckBearerTest, OtherTokensAreInvalid) {
  const std::string token = kToken;
  for (std::string wrong :
       {std::string("x"), token + "x", token.substr(0, token.size() - 1),
        token.substr(1), std::string(token.size(), 'a')}) {
    EXPECT_EQ(CheckBearer(("Bearer " + wrong).c_str(), token),
              BearerCheck::kInvalid)
        << wrong;
  }
  // With no expected token nothing passes, not even an empty one.
  EXPECT_EQ(CheckBearer("Bearer x", ""), BearerCheck::kInvalid);
}

}  // namespace
}  // namespace tokenwatch::collector
