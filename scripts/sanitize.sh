#!/usr/bin/env bash
# Sanitizer builds and runs, used by `make test`. Each pass picks its tests
# by CTest label (tests/CMakeLists.txt, docs/testing.md):
#   asan: every target built with ASan+UBSan (build-asan/); every CTest test
#         runs against it, unit and integration alike (the integration tests
#         drive the sanitized binaries), except those labelled glibc_heap,
#         whose mallinfo2() figures read 0 under ASan. Any report fails the
#         test.
#   tsan: the tests labelled tsan, built with TSan (build-tsan/, target
#         tokenwatch_tsan_tests: their executables only): the weak-secret
#         worker, the notifier's delivery thread, the HTTP API's workers
#         with the stores behind them, the engine. Not the gRPC reactors:
#         Debian's gRPC and Abseil are not built with TSan, so every callback
#         looks racy to it (hundreds of reports inside libgrpc on a clean
#         run); those run under ASan+UBSan in the integration and fault
#         tests.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: sanitize.sh asan|tsan}
JOBS=${JOBS:-$(nproc)}
SUPP="$PWD/scripts/sanitizers"

case "$kind" in
asan)
  dir=build-asan
  flags=(-DTOKENWATCH_SANITIZE=ON)
  # halt_on_error: the first report ends the process with a failure; the
  # leak checker stays on.
  export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
  export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
  ;;
tsan)
  dir=build-tsan
  flags=(-DTOKENWATCH_TSAN=ON)
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$SUPP/tsan.supp:report_signal_unsafe=0"
  ;;
*)
  echo "sanitize.sh: unknown kind '$kind' (asan or tsan)" >&2
  exit 2
  ;;
esac

cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags[@]}" >/dev/null
if [ "$kind" = asan ]; then
  cmake --build "$dir" -j "$JOBS"
  # Timeouts are scaled by CTest for the slower build.
  (cd "$dir" && ctest --output-on-failure -j "$JOBS" --timeout 1800 -LE '^glibc_heap$')
else
  cmake --build "$dir" -j "$JOBS" --target tokenwatch_tsan_tests
  (cd "$dir" && ctest --output-on-failure -j "$JOBS" --no-tests=error -L '^tsan$')
fi
