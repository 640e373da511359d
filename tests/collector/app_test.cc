// CollectorApp's start-up policy for the ingest link (issue 12, item 1):
// plaintext gRPC off loopback is refused unless the config allows it.
#include "collector/app.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

namespace tokenwatch::collector {
namespace {

int RunOnce(CollectorFlags flags) {
  std::atomic<bool> stop{true}, reload{false};  // serve returns at once
  flags.store = "memory:";
  flags.http_listen = "127.0.0.1:0";
  CollectorApp app(std::move(flags), &stop, &reload);
  return app.Run();
}

std::string WriteConfig(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(CollectorAppTest, PlaintextOffLoopbackIsRefusedAtStart) {
  CollectorFlags flags;
  flags.listen = "0.0.0.0:0";
  EXPECT_EQ(RunOnce(flags), 2);
  flags.listen = "[::]:0";
  EXPECT_EQ(RunOnce(flags), 2);
  flags.listen = "10.1.2.3:0";
  EXPECT_EQ(RunOnce(flags), 2);
}

TEST(CollectorAppTest, LoopbackOrAnExplicitAllowanceStarts) {
  CollectorFlags flags;
  flags.listen = "127.0.0.1:0";
  EXPECT_EQ(RunOnce(flags), 0);
  flags.listen = "0.0.0.0:0";
  flags.config = WriteConfig("allow_plaintext.yaml",
                             "collector:\n  allow_plaintext: true\n");
  EXPECT_EQ(RunOnce(flags), 0);
  // Only true or false.
  flags.config = WriteConfig("allow_plaintext_yes.yaml",
                             "collector:\n  allow_plaintext: yes\n");
  EXPECT_EQ(RunOnce(flags), 2);
}

}  // namespace
}  // namespace tokenwatch::collector
