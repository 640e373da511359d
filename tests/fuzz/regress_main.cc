// Replays a fuzz corpus without libFuzzer: runs LLVMFuzzerTestOneInput over
// every file in the directories (or files) given. A crash, an abort or an
// input running over 20 s fails the run and names the input; an empty or
// missing corpus fails too (the test would otherwise prove nothing).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

constexpr unsigned kSecondsPerInput = 20;
char g_current[4096] = "";

void OnFatalSignal(int sig) {
  // Async-signal-safe only: write(2), then die by the same signal.
  const char* what = sig == SIGALRM ? "fuzz_regress: TIMEOUT on input "
                                    : "fuzz_regress: CRASH on input ";
  (void)!write(2, what, strlen(what));
  (void)!write(2, g_current, strlen(g_current));
  (void)!write(2, "\n", 1);
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  std::vector<std::filesystem::path> inputs;
  for (int i = 1; i < argc; ++i) {
    std::error_code ec;
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p, ec)) {
      for (const auto& e : std::filesystem::directory_iterator(p, ec)) {
        if (e.is_regular_file()) inputs.push_back(e.path());
      }
    } else if (std::filesystem::is_regular_file(p, ec)) {
      inputs.push_back(p);
    } else {
      fprintf(stderr, "fuzz_regress: %s: no such file or directory\n", argv[i]);
      return 2;
    }
  }
  if (inputs.empty()) {
    fprintf(stderr, "fuzz_regress: no inputs found\n");
    return 2;
  }
  std::sort(inputs.begin(), inputs.end());
  for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGALRM}) {
    signal(sig, OnFatalSignal);
  }
  size_t bytes = 0;
  for (const auto& path : inputs) {
    snprintf(g_current, sizeof(g_current), "%s", path.c_str());
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      fprintf(stderr, "fuzz_regress: cannot read %s\n", path.c_str());
      return 2;
    }
    std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    // An exact-size heap copy, as libFuzzer passes it.
    std::unique_ptr<uint8_t[]> copy(
        new uint8_t[std::max<size_t>(1, data.size())]);
    std::copy(data.begin(), data.end(), copy.get());
    alarm(kSecondsPerInput);
    LLVMFuzzerTestOneInput(copy.get(), data.size());
    alarm(0);
    bytes += data.size();
  }
  printf("fuzz_regress: %zu inputs (%zu bytes) ran without a crash\n",
         inputs.size(), bytes);
  return 0;
}
