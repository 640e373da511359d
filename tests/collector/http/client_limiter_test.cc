#include "collector/http/client_limiter.h"

#include "gtest/gtest.h"

namespace tokenwatch::collector::http {
namespace {

constexpr int64_t kSecond = 1'000'000;

TEST(AuthFailureLimiterTest, BlocksAnAddressAfterMaxFailuresForTheWindow) {
  AuthFailureLimiter limiter(/*max_failures=*/3, /*window_us=*/60 * kSecond);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(limiter.RetryAfterSeconds("10.0.0.1", i * kSecond), 0);
    limiter.RecordFailure("10.0.0.1", i * kSecond);
  }
  EXPECT_EQ(limiter.RetryAfterSeconds("10.0.0.1", 3 * kSecond), 57);
  // Another address is not affected.
  EXPECT_EQ(limiter.RetryAfterSeconds("10.0.0.2", 3 * kSecond), 0);
  // The window ends.
  EXPECT_EQ(limiter.RetryAfterSeconds("10.0.0.1", 60 * kSecond), 0);
  limiter.RecordFailure("10.0.0.1", 61 * kSecond);
  EXPECT_EQ(limiter.RetryAfterSeconds("10.0.0.1", 61 * kSecond), 0);
}

TEST(AuthFailureLimiterTest, MemoryIsBoundedAndOverflowSharesOneBudget) {
  AuthFailureLimiter limiter(/*max_failures=*/2, /*window_us=*/60 * kSecond,
                             /*max_clients=*/4);
  for (int i = 0; i < 100; ++i) {
    limiter.RecordFailure("10.0.1." + std::to_string(i), kSecond);
  }
  EXPECT_EQ(limiter.clients_for_testing(), 4u);
  // 96 addresses over the bound shared one budget, now spent.
  EXPECT_GT(limiter.RetryAfterSeconds("10.0.2.1", 2 * kSecond), 0);
  // Once the window passed, expired entries make room again.
  limiter.RecordFailure("10.0.3.1", 70 * kSecond);
  EXPECT_EQ(limiter.RetryAfterSeconds("10.0.3.1", 70 * kSecond), 0);
  EXPECT_LE(limiter.clients_for_testing(), 4u);
}

}  // namespace
}  // namespace tokenwatch::collector::http
