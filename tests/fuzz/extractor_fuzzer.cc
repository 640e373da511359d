// libFuzzer target: token extraction from a request head, then the decode
// every found token gets. The input is a head in a loose text form, so the
// fuzzer reaches the extractor without first satisfying the HTTP parser:
//   line 1 "METHOD TARGET", then "name:value" lines (split at '\n').
// Every token found must be a non-empty view into the head or into the
// extraction's own (percent-decoded) storage.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/http/message.h"
#include "agent/token/extractor.h"
#include "agent/token/jwt.h"
#include "tests/fuzz/fuzz_support.h"

namespace tokenwatch::fuzz {
namespace {

bool Inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() &&
         part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace
}  // namespace tokenwatch::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tokenwatch;
  using namespace tokenwatch::fuzz;
  static AgentStats stats;
  static const token::Extractor extractor({"x-api-token", "x-auth"}, &stats);
  static token::JwtDecoder decoder(&stats);
  Buffer buf(std::string_view(reinterpret_cast<const char*>(data), size));
  std::string_view text(reinterpret_cast<const char*>(buf.data()), size);
  static http::MessageHead head;
  head.is_request = true;
  head.num_headers = 0;
  size_t nl = text.find('\n');
  std::string_view line = text.substr(0, nl);
  size_t sp = line.find(' ');
  head.method = line.substr(0, sp);
  head.target =
      sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  while (nl != std::string_view::npos &&
         head.num_headers < http::MessageHead::kMaxHeaders) {
    text.remove_prefix(nl + 1);
    nl = text.find('\n');
    line = text.substr(0, nl);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    head.headers[head.num_headers++] = {line.substr(0, colon),
                                        line.substr(colon + 1)};
  }
  std::string_view whole(reinterpret_cast<const char*>(buf.data()), size);
  (void)token::Extractor::PathOf(head.target);
  (void)token::Extractor::QueryOf(head.target);
  token::Extraction out;
  extractor.Extract(http::ToRequest(head), &out);
  for (const token::FoundToken& t : out.tokens) {
    FUZZ_CHECK(!t.value.empty());
    bool owned = false;
    for (const std::string& s : out.owned) owned |= Inside(t.value, s);
    FUZZ_CHECK(owned || Inside(t.value, whole));
    v1::TokenInfo info;
    decoder.Decode(t.value, &info);
    std::string_view fp_in = token::FingerprintInput(t.value, info.kind());
    FUZZ_CHECK(Inside(fp_in, t.value));
  }
  return 0;
}
