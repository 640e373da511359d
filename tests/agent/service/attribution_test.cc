#include "agent/service/attribution.h"

#include <gtest/gtest.h>

namespace tokenwatch::service {
namespace {

TEST(AttributorTest, HostAddressAndFallback) {
  config::Service orders{
      "orders", {{"orders.internal"}, {"10.0.0.5:8080"}}, {}};
  config::Service pay{"payments", {{"*.pay.internal"}, {"10.0.0.9"}}, {}};
  Attributor a({orders, pay});
  EXPECT_EQ(a.Attribute("Orders.Internal:8080", "1.2.3.4", 80), "orders");
  EXPECT_EQ(a.Attribute("orders.internal.", "1.2.3.4", 80), "orders");
  EXPECT_EQ(a.Attribute("eu.pay.internal", "1.2.3.4", 80), "payments");
  EXPECT_EQ(a.Attribute("", "10.0.0.5", 8080), "orders");
  EXPECT_EQ(a.Attribute("unknown.host", "10.0.0.9", 1234), "payments");
  EXPECT_EQ(a.Attribute("unknown.host:9000", "1.2.3.4", 9000),
            "unknown.host:9000");
  EXPECT_EQ(a.Attribute("", "1.2.3.4", 80), "1.2.3.4:80");
  EXPECT_EQ(a.Attribute("", "::1", 8080), "[::1]:8080");
  EXPECT_EQ(a.Attribute("[::1]:18081", "::1", 18081), "[::1]:18081");
}

TEST(AttributorTest, HostWithoutPort) {
  EXPECT_EQ(Attributor::HostWithoutPort(" Example.COM:443 "), "example.com");
  EXPECT_EQ(Attributor::HostWithoutPort("[2001:db8::1]:80"), "[2001:db8::1]");
  EXPECT_EQ(Attributor::JoinHostPort("2001:db8::1", 80), "[2001:db8::1]:80");
}

TEST(AttributorTest, GenerationChangesWhenReplaced) {
  config::Service orders{"orders", {{"orders.internal"}, {}}, {}};
  Attributor a({orders});
  uint64_t before = a.generation();
  EXPECT_NE(before, 0u);
  a = Attributor({});  // a reload assigns in place
  EXPECT_NE(a.generation(), before);
  EXPECT_EQ(a.Attribute("orders.internal", "1.2.3.4", 80), "orders.internal:80");
}

}  // namespace
}  // namespace tokenwatch::service
