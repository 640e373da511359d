// Under mTLS a client certificate speaks only for the agent names it
// carries: CN, SAN DNS, SAN URI, compared exactly (issue 12, item 1).
// tests/integration/hostile_collector_ingest.py checks the same end to end
// with a real certificate.
#include "collector/ingest/peer_identity.h"

#include <gtest/gtest.h>

namespace tokenwatch::collector {
namespace {

TEST(PeerIdentityTest, OnlyTheCertificatesNamesMaySpeak) {
  std::vector<std::string> names = {"host-a", "host-a.prod.example",
                                    "spiffe://example/agent/host-a"};
  EXPECT_TRUE(MaySpeakFor(names, "host-a"));
  EXPECT_TRUE(MaySpeakFor(names, "spiffe://example/agent/host-a"));
  EXPECT_FALSE(MaySpeakFor(names, "host-b"));
  EXPECT_FALSE(MaySpeakFor(names, "HOST-A"));  // exact, no case folding
  EXPECT_FALSE(MaySpeakFor(names, "host-"));
  EXPECT_FALSE(MaySpeakFor(names, ""));
  EXPECT_FALSE(MaySpeakFor({}, "host-a"));  // no verified certificate
}

}  // namespace
}  // namespace tokenwatch::collector
