// Bytes of heap the program holds now, for tests that bound memory. Under
// ASan and TSan malloc is the sanitizer's, and glibc's mallinfo2() reads an
// arena nobody uses (its figures stay 0, so every bound would hold); there
// the sanitizer allocator's own count is read instead. The two differ only
// by malloc's per-chunk overhead, which glibc counts and the sanitizers
// do not. tests/testing/heap_in_use_test.cc checks that each build sees
// small and large blocks come and go.
#ifndef TOKENWATCH_TESTS_TESTING_HEAP_IN_USE_H_
#define TOKENWATCH_TESTS_TESTING_HEAP_IN_USE_H_

#include <malloc.h>

#include <cstddef>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TOKENWATCH_SANITIZER_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TOKENWATCH_SANITIZER_HEAP 1
#endif
#endif

#ifdef TOKENWATCH_SANITIZER_HEAP
// compiler-rt's allocator interface (sanitizer/allocator_interface.h, which
// gcc does not install): bytes handed out and not yet freed.
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace tokenwatch::testing {

// Bytes the allocator has handed out and not had back: the heap a data
// structure really holds, finer than RSS. glibc serves blocks from 128 KiB
// up (a threshold that moves) with mmap and counts them apart from the
// arena: both are added, or a large buffer would go unseen.
inline int64_t HeapInUse() {
#ifdef TOKENWATCH_SANITIZER_HEAP
  return static_cast<int64_t>(__sanitizer_get_current_allocated_bytes());
#else
  struct mallinfo2 m = mallinfo2();
  return static_cast<int64_t>(m.uordblks + m.hblkhd);
#endif
}

// Which allocator HeapInUse() reads, for test output.
constexpr const char* HeapSource() {
#ifdef TOKENWATCH_SANITIZER_HEAP
  return "sanitizer allocator";
#else
  return "glibc mallinfo2";
#endif
}

}  // namespace tokenwatch::testing

#endif  // TOKENWATCH_TESTS_TESTING_HEAP_IN_USE_H_
