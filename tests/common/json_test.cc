// common/json and common/time_format: the escaping and the timestamp every
// output line is made of, byte for byte (their fast paths must write what
// the general ones do).
#include "common/json.h"

#include <gtest/gtest.h>

#include "common/time_format.h"

namespace tokenwatch {
namespace {

std::string Json(std::string_view s) {
  std::string out = "x";  // appended, never overwritten
  util::AppendJsonString(&out, s);
  return out;
}

TEST(AppendJsonStringTest, PlainAsciiIsQuotedAsIs) {
  EXPECT_EQ(Json(""), "x\"\"");
  EXPECT_EQ(Json("GET"), "x\"GET\"");
  EXPECT_EQ(Json("/v1/orders/1?a=b c~\x7f"), "x\"/v1/orders/1?a=b c~\x7f\"");
  std::string longer(5000, 'a');
  EXPECT_EQ(Json(longer), "x\"" + longer + "\"");
}

TEST(AppendJsonStringTest, EscapesAndInvalidUtf8) {
  EXPECT_EQ(Json("a\"b\\c"), "x\"a\\\"b\\\\c\"");
  EXPECT_EQ(Json(std::string("\x00\x1f\n", 3)), "x\"\\u0000\\u001f\\u000a\"");
  EXPECT_EQ(Json("caf\xc3\xa9"), "x\"caf\xc3\xa9\"");          // valid UTF-8
  EXPECT_EQ(Json("bad\xc3(\xff"), "x\"bad\\ufffd(\\ufffd\"");  // invalid
  EXPECT_EQ(Json("\"first"), "x\"\\\"first\"");
}

TEST(AppendTimestampTest, MillisecondsUtcAndCachedSeconds) {
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTimestamp(1764497703120456), "2025-11-30T10:15:03.120Z");
  // The same second again (the cached date), then the next one.
  EXPECT_EQ(FormatTimestamp(1764497703999999), "2025-11-30T10:15:03.999Z");
  EXPECT_EQ(FormatTimestamp(1764497704007000), "2025-11-30T10:15:04.007Z");
  // Before the epoch: rounds down, as absl does.
  EXPECT_EQ(FormatTimestamp(-1), "1969-12-31T23:59:59.999Z");
  std::string out = "ts=";
  AppendTimestamp(&out, 1764497703050000);
  EXPECT_EQ(out, "ts=2025-11-30T10:15:03.050Z");
}

}  // namespace
}  // namespace tokenwatch
