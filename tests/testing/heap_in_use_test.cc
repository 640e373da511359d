// HeapInUse() must see memory come and go in every build the tests run in
// (plain, ASan+UBSan, TSan): the heap bounds of hostile_test rest on it.
#include "tests/testing/heap_in_use.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

namespace tokenwatch::testing {
namespace {

constexpr int64_t kMiB = 1 << 20;

// Keeps the compiler from dropping an allocation whose bytes are unread.
int64_t Touch(std::vector<std::unique_ptr<char[]>>& blocks, size_t size) {
  int64_t sum = 0;
  for (auto& b : blocks) {
    std::memset(b.get(), 1, size);
    sum += b[size - 1];
  }
  return sum;
}

void Measure(size_t block, int count) {
  int64_t before = HeapInUse();
  std::vector<std::unique_ptr<char[]>> blocks;
  blocks.reserve(count);
  for (int i = 0; i < count; ++i) blocks.emplace_back(new char[block]);
  EXPECT_EQ(Touch(blocks, block), count);
  int64_t held = HeapInUse() - before;
  int64_t want = static_cast<int64_t>(block) * count;
  ::testing::Test::RecordProperty("heap_source", HeapSource());
  // Allocator overhead on top, never much less than what was asked for.
  EXPECT_GE(held, want) << HeapSource();
  EXPECT_LT(held, want + want / 8 + kMiB) << HeapSource();
  blocks.clear();
  EXPECT_LT(HeapInUse() - before, kMiB / 4) << HeapSource();
}

TEST(HeapInUseTest, SeesSmallBlocks) { Measure(/*block=*/1000, /*count=*/4096); }

// Served by mmap in glibc, outside the arena's count.
TEST(HeapInUseTest, SeesLargeBlocks) { Measure(/*block=*/8 * kMiB, /*count=*/2); }

}  // namespace
}  // namespace tokenwatch::testing
